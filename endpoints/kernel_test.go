package endpoints

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// vethDesired wants every global address of veth links as a subflow
// endpoint bound to its link, backup on the second link (veth2).
func vethDesired(s Snapshot) ([]Want, LimitsWant) {
	var ws []Want
	for _, l := range s.Links {
		if l.Kind != "veth" {
			continue
		}
		for _, a := range l.Addrs {
			if !a.IsGlobal() {
				continue
			}
			f := genl.FlagSubflow
			if l.Name == "veth2" {
				f |= genl.FlagBackup
			}
			ws = append(ws, Want{Iface: l.Name, Ifindex: l.Index, Addr: a.Prefix.Addr(), Flags: f})
		}
	}
	return ws, LimitsWant{}
}

// dialNS opens a genl client in the namespace.
func dialNS(t testing.TB, ns *harness.NS) *genl.Client {
	t.Helper()
	c, err := genl.Dial(&genl.Config{NetNS: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelLines renders the kernel's endpoints as "addr flags dev NAME"
// (dev only when bound).
func kernelLines(t testing.TB, c *genl.Client, names map[int]string) []string {
	t.Helper()
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, ep := range eps {
		line := ep.Addr.String() + " " + ep.Flags.String()
		if ep.Ifindex != 0 {
			line += " dev " + names[ep.Ifindex]
		}
		s = append(s, line)
	}
	return s
}

// TestReconcilerAgainstKernel drives the Watcher and Reconciler with the
// real kernel in a fresh namespace.
func TestReconcilerAgainstKernel(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	ns := harness.NewNS(t)
	peer := harness.NewNS(t)
	harness.Veth(t, ns, "veth1", peer, "veth1p")
	harness.Veth(t, ns, "veth2", peer, "veth2p")
	names := map[int]string{ns.LinkIndex(t, "veth1"): "veth1", ns.LinkIndex(t, "veth2"): "veth2"}
	c := dialNS(t, ns)

	// Someone configured an endpoint by hand before the daemon started,
	// for an address the policy will want too.
	if err := c.AddEndpoint(genl.Endpoint{Addr: ip("10.3.0.1"), Flags: genl.FlagSignal}); err != nil {
		t.Fatal(err)
	}

	w := startWatcher(t, ns, WatcherConfig{})
	path := filepath.Join(t.TempDir(), "owned.json")
	r, err := NewReconciler(Config{Kernel: c, Source: w, Desired: vethDesired, StatePath: path, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return r.Run(ctx) })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := g.Wait(); err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	waitKernel := func(what string, want ...string) {
		t.Helper()
		eventually(t, what, func() bool {
			return cmp.Equal(want, kernelLines(t, c, names), sortStrings)
		})
	}
	const hand = "10.3.0.1 signal"

	ns.AddAddr(t, "veth1", "10.1.0.1/24")
	ns.AddAddr(t, "veth2", "10.2.0.1/24")
	ns.AddAddr(t, "veth1", "fd00:1::1/64")
	ns.AddAddr(t, "veth1", "10.3.0.1/24") // the hand-made endpoint's address
	waitKernel("endpoints for the new addresses",
		hand, "10.1.0.1 subflow dev veth1", "10.2.0.1 subflow backup dev veth2", "fd00:1::1 subflow dev veth1")

	// The hand-made endpoint is left alone and reported.
	before := r.Status().Reconciles
	r.Trigger()
	eventually(t, "another reconcile", func() bool { return r.Status().Reconciles > before })
	st := r.Status()
	if len(st.Report.Foreign) != 1 || st.Report.Foreign[0].Note != "10.3.0.1 on veth1 is managed by someone else (id 1); left alone" {
		t.Errorf("foreign report %+v", st.Report.Foreign)
	}
	if len(st.Owned) != 3 || len(st.Errors) != 0 {
		t.Errorf("status: owned %+v, errors %v; want 3 owned, no errors", st.Owned, st.Errors)
	}
	if saved, err := Load(path); err != nil || saved.Len() != 3 {
		t.Errorf("state file: %+v, %v; want 3 records", saved.List(), err)
	}

	ns.DelAddr(t, "veth1", "10.1.0.1/24")
	waitKernel("the endpoint of the removed address to go",
		hand, "10.2.0.1 subflow backup dev veth2", "fd00:1::1 subflow dev veth1")

	ns.LinkDown(t, "veth2")
	waitKernel("the endpoint of the downed link to go",
		hand, "fd00:1::1 subflow dev veth1")
	ns.LinkUp(t, "veth2")
	waitKernel("the endpoint back with the link (its IPv4 address survived)",
		hand, "10.2.0.1 subflow backup dev veth2", "fd00:1::1 subflow dev veth1")

	peer.LinkDown(t, "veth2p")
	waitKernel("the endpoint of the link without carrier to go",
		hand, "fd00:1::1 subflow dev veth1")
	peer.LinkUp(t, "veth2p")
	waitKernel("the endpoint back with the carrier",
		hand, "10.2.0.1 subflow backup dev veth2", "fd00:1::1 subflow dev veth1")

	// Someone deletes one of ours by hand: it comes back.
	for _, e := range r.Status().Owned {
		if e.Addr == ip("fd00:1::1") {
			if err := c.DeleteEndpoint(e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.Trigger()
	waitKernel("the deleted endpoint to be re-added",
		hand, "10.2.0.1 subflow backup dev veth2", "fd00:1::1 subflow dev veth1")

	// Stop, then clean up: only ours go.
	stop()
	if err := r.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitKernel("only the hand-made endpoint after cleanup", hand)
	if saved, err := Load(path); err != nil || saved.Len() != 0 {
		t.Errorf("state file after cleanup: %+v, %v; want empty", saved.List(), err)
	}
}

// TestReconcilerAgainstKernelCap: more addresses than the kernel has slots;
// the highest-priority ones get endpoints and the kernel never refuses.
func TestReconcilerAgainstKernelCap(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	ns := harness.NewNS(t)
	peer := harness.NewNS(t)
	harness.Veth(t, ns, "veth1", peer, "veth1p")
	c := dialNS(t, ns)
	if err := c.AddEndpoint(genl.Endpoint{Addr: ip("192.0.2.1"), Flags: genl.FlagSignal}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		ns.AddAddr(t, "veth1", fmt.Sprintf("10.1.0.%d/24", i))
	}
	w := startWatcher(t, ns, WatcherConfig{})
	// Priority: the higher the last octet, the more wanted.
	desired := func(s Snapshot) ([]Want, LimitsWant) {
		ws, lw := vethDesired(s)
		for i := range ws {
			ws[i].Priority = int(ws[i].Addr.As4()[3])
		}
		return ws, lw
	}
	r, err := NewReconciler(Config{Kernel: c, Source: w, Desired: desired, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := kernelLines(t, c, map[int]string{ns.LinkIndex(t, "veth1"): "veth1"})
	var want []string
	for i := 4; i <= 10; i++ {
		want = append(want, fmt.Sprintf("10.1.0.%d subflow dev veth1", i))
	}
	want = append(want, "192.0.2.1 signal")
	if diff := cmp.Diff(want, got, sortStrings); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
	st := r.Status()
	var capped []string
	for _, cp := range st.Report.Capped {
		capped = append(capped, cp.Note)
	}
	wantCapped := []string{
		"veth1 10.1.0.3 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)",
		"veth1 10.1.0.2 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)",
		"veth1 10.1.0.1 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)",
	}
	if diff := cmp.Diff(wantCapped, capped); diff != "" {
		t.Errorf("capped (-want +got):\n%s", diff)
	}
	if !strings.Contains(st.Report.Summary, "8 of 8 endpoints in use (7 ours, 1 foreign); 3 capped") {
		t.Errorf("summary %q", st.Report.Summary)
	}
	if err := r.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
}
