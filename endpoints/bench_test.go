package endpoints

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// hasEndpoint reports whether the kernel has an endpoint for addr.
func hasEndpoint(b *testing.B, c *genl.Client, addr string) bool {
	eps, err := c.Endpoints()
	if err != nil {
		b.Fatal(err)
	}
	a := ip(addr)
	return slices.ContainsFunc(eps, func(ep genl.Endpoint) bool { return ep.Addr == a })
}

// reportPercentiles adds p50 and p99 of the samples as metrics.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	p := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))].Microseconds())
	}
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

// BenchmarkAddrToEndpoint measures the daemon's reaction time: from adding
// an address (rtnetlink) to its endpoint showing in the kernel's dump, with
// a running Watcher and Reconciler. Removing the address again (and the
// slow endpoint delete) is not timed.
func BenchmarkAddrToEndpoint(b *testing.B) {
	harness.RequireKernel(b)
	ns := harness.NewNS(b)
	peer := harness.NewNS(b)
	harness.Veth(b, ns, "veth1", peer, "veth1p")
	w := startWatcher(b, ns, WatcherConfig{})
	// busy is set while a reconcile runs, so each round can start with an
	// idle daemon: otherwise the slow delete of the previous round (an RCU
	// grace period) would be timed too.
	var busy atomic.Bool
	desired := func(s Snapshot) ([]Want, LimitsWant) {
		busy.Store(true)
		return vethDesired(s)
	}
	r, err := NewReconciler(Config{Kernel: dialNS(b, ns), Source: w, Desired: desired, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	r.onIdle = func() { busy.Store(false) }
	idle := func() bool { return !busy.Load() && len(r.trigger) == 0 && len(w.changed) == 0 }
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return r.Run(ctx) })
	b.Cleanup(func() {
		cancel()
		_ = g.Wait()
	})
	poll := dialNS(b, ns) // its own socket, not queued behind the reconciler's
	link, err := ns.Handle.LinkByName("veth1")
	if err != nil {
		b.Fatal(err)
	}
	const addr = "10.1.0.1"
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(addr), Mask: net.CIDRMask(24, 32)}}

	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := ns.Handle.AddrAdd(link, a); err != nil {
			b.Fatal(err)
		}
		for !hasEndpoint(b, poll, addr) {
		}
		samples = append(samples, time.Since(start))

		b.StopTimer()
		if err := ns.Handle.AddrDel(link, a); err != nil {
			b.Fatal(err)
		}
		eventually(b, "the endpoint to be removed and the reconciler idle", func() bool {
			return !hasEndpoint(b, poll, addr) && idle()
		})
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, samples)
}

// BenchmarkFullReconcile8x4 times one reconcile of 8 interfaces with 4
// addresses each (32 wants for 8 slots) against the real kernel: from an
// empty endpoint table with a fresh Reconciler (8 adds), and when
// everything is already in place (no-op).
func BenchmarkFullReconcile8x4(b *testing.B) {
	harness.RequireKernel(b)
	ns := harness.NewNS(b)
	peer := harness.NewNS(b)
	for i := 1; i <= 8; i++ {
		harness.Veth(b, ns, fmt.Sprintf("veth%d", i), peer, fmt.Sprintf("veth%dp", i))
		for j := 1; j <= 4; j++ {
			ns.AddAddr(b, fmt.Sprintf("veth%d", i), fmt.Sprintf("10.%d.0.%d/24", i, j))
		}
	}
	c := dialNS(b, ns)
	w := startWatcher(b, ns, WatcherConfig{})
	eventually(b, "32 wants", func() bool {
		ws, _ := vethDesired(w.Snapshot())
		kept, _ := usableWants(w.Snapshot(), ws)
		return len(kept) == 32
	})
	ctx := context.Background()
	newRec := func(b *testing.B, statePath string) *Reconciler {
		r, err := NewReconciler(Config{Kernel: c, Source: w, Desired: vethDesired, StatePath: statePath, Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	fromEmpty := func(b *testing.B, statePath func() string) {
		samples := make([]time.Duration, 0, b.N)
		for range b.N {
			b.StopTimer()
			if err := c.FlushEndpoints(); err != nil {
				b.Fatal(err)
			}
			r := newRec(b, statePath())
			b.StartTimer()
			start := time.Now()
			if err := r.Reconcile(ctx); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			b.StopTimer()
			if st := r.Status(); len(st.Owned) != 8 || len(st.Report.Capped) != 24 {
				b.Fatalf("owned %d, capped %d; want 8 and 24", len(st.Owned), len(st.Report.Capped))
			}
			b.StartTimer()
		}
		b.StopTimer()
		reportPercentiles(b, samples)
	}
	b.Run("from-empty", func(b *testing.B) {
		fromEmpty(b, func() string { return "" })
	})
	b.Run("from-empty-with-state-file", func(b *testing.B) {
		dir := b.TempDir()
		fromEmpty(b, func() string { return filepath.Join(dir, fmt.Sprint(time.Now().UnixNano()), "owned.json") })
	})
	b.Run("no-op", func(b *testing.B) {
		r := newRec(b, "")
		if err := r.Reconcile(ctx); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if err := r.Reconcile(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if st := r.Status(); st.Applied != nil {
			b.Fatalf("no-op reconcile applied %v", st.Applied)
		}
	})
}

// BenchmarkPlan8x4 is the pure planning part of a reconcile: 32 wants, 8
// slots, everything in place.
func BenchmarkPlan8x4(b *testing.B) {
	var ws []Want
	for i := 1; i <= 8; i++ {
		for j := 1; j <= 4; j++ {
			ws = append(ws, want(fmt.Sprintf("veth%d", i), i+1, fmt.Sprintf("10.%d.0.%d", i, j), genl.FlagSubflow, 0))
		}
	}
	ops, _ := Plan(ws, nil, nil, 0)
	k := newFakeKernel()
	owned := applyOps(b, k, NewOwned(), ops)
	actual := k.dump()
	b.ReportAllocs()
	for b.Loop() {
		if ops, _ := Plan(ws, actual, owned, 0); len(ops) != 0 {
			b.Fatal(ops)
		}
	}
}

// BenchmarkWatcherRefresh is the cost of one full re-list (links,
// addresses, routes) of a namespace with 8 veth links and 32 addresses;
// events cost at most this.
func BenchmarkWatcherRefresh(b *testing.B) {
	harness.RequireKernel(b)
	ns := harness.NewNS(b)
	peer := harness.NewNS(b)
	for i := 1; i <= 8; i++ {
		harness.Veth(b, ns, fmt.Sprintf("veth%d", i), peer, fmt.Sprintf("veth%dp", i))
		for j := 1; j <= 4; j++ {
			ns.AddAddr(b, fmt.Sprintf("veth%d", i), fmt.Sprintf("10.%d.0.%d/24", i, j))
		}
	}
	w, err := NewWatcher(WatcherConfig{NetNS: &ns.NsHandle})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Refresh(); err != nil {
			b.Fatal(err)
		}
	}
}
