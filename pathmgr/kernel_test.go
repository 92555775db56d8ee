package pathmgr_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// startManager runs a Manager with policy in ns, with a real genl client,
// event subscription, address watcher and sock_diag lister, until the test
// ends. It returns once the Manager did its start-up rebuild.
func startManager(t testing.TB, ns *harness.NS, policy pathmgr.Config) *pathmgr.Manager {
	t.Helper()
	m, _ := startStoppableManager(t, ns, policy)
	return m
}

// startStoppableManager is startManager that also returns a function
// stopping the Manager before the test ends.
func startStoppableManager(t testing.TB, ns *harness.NS, policy pathmgr.Config) (*pathmgr.Manager, func()) {
	t.Helper()
	log := zaptest.NewLogger(t).Named(ns.Name)
	if _, bench := t.(*testing.B); bench {
		log = zap.NewNop() // one debug line per event would swamp the output
	}
	client, err := genl.Dial(&genl.Config{NetNS: ns.Name})
	if err != nil {
		t.Fatalf("genl.Dial: %v", err)
	}
	sub, err := client.Subscribe(&genl.SubscribeOptions{ReadBuffer: 1 << 20})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	nsh := ns.NsHandle
	w, err := endpoints.NewWatcher(endpoints.WatcherConfig{NetNS: &nsh, Logger: log})
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	dc, err := diag.Dial(&diag.Config{NetNS: ns.Name})
	if err != nil {
		t.Fatalf("diag.Dial: %v", err)
	}
	m, err := pathmgr.NewManager(pathmgr.ManagerConfig{
		Policy: policy, Kernel: client, Events: sub, Source: w, Lister: dc, Logger: log,
		NewKernel: func() (pathmgr.Kernel, error) { return genl.Dial(&genl.Config{NetNS: ns.Name}) },
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return w.Run(ctx) })
	g.Go(func() error { return m.Run(ctx) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := g.Wait(); err != nil {
				t.Errorf("manager or watcher: %v", err)
			}
			_ = w.Close()
			_ = dc.Close()
			_ = client.Close()
		})
	}
	t.Cleanup(stop)
	waitUntil(t, "the start-up rebuild", func() bool { return !m.Status().LastRebuild.IsZero() })
	return m, stop
}

// waitUntil polls cond until it holds, failing the test after the timeout.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(harness.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, harness.Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scenario is a connection over link 1 of a two-link topology whose
// sockets use the userspace path manager.
type scenario struct {
	top            *harness.Topology
	cl, sl         *harness.EventLog
	conn, srv      net.Conn
	client, server netip.AddrPort
	ctok, stok     uint32
}

// newTopology makes the namespaces, userspace PM in both, event logs.
func newTopology(t *testing.T) *scenario {
	harness.RequireKernel(t)
	top := harness.Pair(t, 2)
	harness.UseUserspacePM(t, top.Client)
	harness.UseUserspacePM(t, top.Server)
	return &scenario{top: top,
		cl: harness.Subscribe(t, top.Client, "client"), sl: harness.Subscribe(t, top.Server, "server")}
}

// connect opens the connection over link 1 and waits for ESTABLISHED on
// both ends.
func (s *scenario) connect(t *testing.T) {
	t.Helper()
	l1 := s.top.Links[0]
	ctx, cancel := context.WithTimeout(t.Context(), harness.Timeout)
	defer cancel()
	ln := s.top.Server.ListenMPTCP(t, "0.0.0.0:0")
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	s.server = netip.AddrPortFrom(l1.ServerV4, port)
	s.conn, s.srv = harness.Connect(ctx, t, s.top.Client, l1.ClientV4.String(), ln, s.server.String())
	harness.Exchange(t, s.conn, s.srv, "hello")
	s.client = s.conn.LocalAddr().(*net.TCPAddr).AddrPort()
	s.ctok, s.stok = s.cl.Established(t, s.client), s.sl.Established(t, s.server)
}

// subEstablished waits for SUB_ESTABLISHED of the client's token whose
// local address is from and remote address to.
func (s *scenario) subEstablished(t *testing.T, log *harness.EventLog, token uint32, from netip.Addr, to netip.AddrPort) *genl.SubflowEstablished {
	t.Helper()
	return log.WaitFor(t, 0, "SUB_ESTABLISHED "+from.String()+" -> "+to.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == token && e.Local.Addr().Unmap() == from && harness.Unmap(e.Remote) == to
	}).(*genl.SubflowEstablished)
}

func TestKernelThroughputOpensSecondSubflow(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	m := startManager(t, s.top.Client, pathmgr.Config{Preset: pathmgr.PresetThroughput})
	s.connect(t)
	l2 := s.top.Links[1]

	est := s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, s.server)
	if est.LocalID == 0 || est.Backup {
		t.Errorf("subflow: local id %d backup %v, want a non-zero id and no backup", est.LocalID, est.Backup)
	}
	if idx := s.top.Client.LinkIndex(t, l2.ClientIf); est.Ifindex != idx {
		t.Errorf("subflow bound to ifindex %d, want %d (%s)", est.Ifindex, idx, l2.ClientIf)
	}
	// The server sees the join.
	sest := s.sl.WaitFor(t, 0, "server SUB_ESTABLISHED", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.stok && harness.Unmap(e.Remote).Addr() == l2.ClientV4
	}).(*genl.SubflowEstablished)
	if sest.Backup {
		t.Errorf("server sees the join as backup")
	}
	// The data still flows, and nothing else was opened: link 1 to the
	// server's only address is the initial path.
	harness.Exchange(t, s.conn, s.srv, "over two subflows")
	waitUntil(t, "the subflow in Status", func() bool {
		for _, c := range m.Status().Connections {
			if c.Token == tokenHex(s.ctok) && len(c.Subflows) == 2 && c.Subflows[1].State == pathmgr.SubflowUp {
				return true
			}
		}
		return false
	})
	st := m.Status()
	if got := st.Counters.Actions; got.CreateSubflow != 1 || got.Total() != 1 {
		t.Errorf("actions %+v, want exactly one CreateSubflow", got)
	}
	if st.Counters.Failures.Total() != 0 {
		t.Errorf("failures %+v", st.Counters.Failures)
	}

	// sock_diag agrees.
	dc, err := diag.Dial(&diag.Config{NetNS: s.top.Client.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	sfs, err := dc.Subflows()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sf := range sfs {
		if sf.TokenLocal == s.ctok {
			n++
		}
	}
	if n != 2 {
		t.Errorf("sock_diag lists %d subflows of %08x, want 2", n, s.ctok)
	}

	// The connection closes: the Manager forgets it.
	_ = s.conn.Close()
	_ = s.srv.Close()
	waitUntil(t, "the closed connection to be forgotten", func() bool { _, n := m.Counts(); return n == 0 })
}

func TestKernelBackupPresetMarksBackup(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	startManager(t, s.top.Client, pathmgr.Config{Preset: pathmgr.PresetBackup})
	s.connect(t)
	l2 := s.top.Links[1]
	s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, s.server)
	// The server's event carries the backup bit of the client's MP_JOIN.
	sest := s.sl.WaitFor(t, 0, "server SUB_ESTABLISHED", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.stok && harness.Unmap(e.Remote).Addr() == l2.ClientV4
	}).(*genl.SubflowEstablished)
	if !sest.Backup {
		t.Errorf("server: %s, want backup=1", harness.Describe(sest))
	}
	dc, err := diag.Dial(&diag.Config{NetNS: s.top.Client.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	sfs, err := dc.Subflows()
	if err != nil {
		t.Fatal(err)
	}
	for _, sf := range sfs {
		if sf.TokenLocal == s.ctok && sf.Local.Addr() == l2.ClientV4 && sf.Flags&diag.FlagBackupLocal == 0 {
			t.Errorf("client subflow %s -> %s flags %s, want backup (b)", sf.Local, sf.Remote, sf.Flags)
		}
	}
}

func TestKernelNeverRuleLeavesConnectionAlone(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	l1 := s.top.Links[0]
	m := startManager(t, s.top.Client, pathmgr.Config{Rules: []pathmgr.ConnRule{
		{Dst: netip.PrefixFrom(l1.ServerV4, 32), Action: pathmgr.Never},
	}})
	s.connect(t)
	waitUntil(t, "the connection tracked", func() bool {
		_, n := m.Counts()
		return n == 1
	})
	if ev, ok := s.cl.Within(t, 0, time.Second, func(ev genl.Event) bool {
		_, ok := ev.(*genl.SubflowEstablished)
		return ok
	}); ok {
		t.Errorf("got %s, want no extra subflow", harness.Describe(ev))
	}
	if got := m.Status().Counters.Actions; got.Total() != 0 {
		t.Errorf("actions %+v, want none", got)
	}
}

func TestKernelLinkDownDestroysSubflow(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	m := startManager(t, s.top.Client, pathmgr.Config{Retry: pathmgr.RetryPolicy{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	s.connect(t)
	l2 := s.top.Links[1]
	est := s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, s.server)

	mark := s.cl.Mark()
	s.top.Client.LinkDown(t, l2.ClientIf)
	s.cl.WaitFor(t, mark, "SUB_CLOSED of the link-2 subflow", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Token == s.ctok && e.Local == est.Local
	})
	// No retries while the link is down, even with a fast backoff.
	time.Sleep(time.Second)
	st := m.Status()
	if got := st.Counters.Actions; got.CreateSubflow != 1 || got.DestroySubflow != 1 {
		t.Errorf("actions %+v, want one create and one destroy", got)
	}
	harness.Exchange(t, s.conn, s.srv, "still there")

	// Back up: a new subflow over link 2.
	mark = s.cl.Mark()
	s.top.Client.LinkUp(t, l2.ClientIf)
	s.cl.WaitFor(t, mark, "a new SUB_ESTABLISHED over link 2", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.ctok && e.Local.Addr() == l2.ClientV4
	})
}

func TestKernelServerAnnounces(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	l2 := s.top.Links[1]
	sm := startManager(t, s.top.Server, pathmgr.Config{Interfaces: []pathmgr.IfaceRule{
		{Names: []string{l2.ServerIf}, Signal: true},
	}})
	cm := startManager(t, s.top.Client, pathmgr.Config{})
	s.connect(t)
	ann := s.cl.WaitFor(t, 0, "ANNOUNCED of "+l2.ServerV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Token == s.ctok && e.Remote.Addr() == l2.ServerV4
	}).(*genl.Announced)
	if ann.RemoteID == 0 {
		t.Errorf("announced with id 0")
	}
	// The client's manager opens subflows to the new address too.
	to := netip.AddrPortFrom(l2.ServerV4, s.server.Port())
	s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, to)
	s.subEstablished(t, s.cl, s.ctok, s.client.Addr(), to)

	// The address goes away on the server: REMOVE_ADDR reaches the client.
	mark := s.cl.Mark()
	s.top.Server.DelAddr(t, l2.ServerIf, netip.PrefixFrom(l2.ServerV4, 24).String())
	s.cl.WaitFor(t, mark, "REMOVED", func(ev genl.Event) bool {
		e, ok := ev.(*genl.Removed)
		return ok && e.Token == s.ctok && e.RemoteID == ann.RemoteID
	})
	waitUntil(t, "the server's counters", func() bool {
		got := sm.Status().Counters.Actions
		return got.Announce == 1 && got.Remove == 1 && got.Total() == 2
	})
	harness.Exchange(t, s.conn, s.srv, "after the removal")
	_ = cm
}

// TestKernelRestartRebuilds: a new Manager started on a host with a
// managed connection learns it from sock_diag and the kernel's address
// list: it opens nothing twice, and still knows which subflow is its own.
func TestKernelRestartRebuilds(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	_, stop := startStoppableManager(t, s.top.Client, pathmgr.Config{})
	s.connect(t)
	l2 := s.top.Links[1]
	est := s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, s.server)
	stop()

	m := startManager(t, s.top.Client, pathmgr.Config{})
	st := m.Status()
	if len(st.Connections) != 1 {
		t.Fatalf("after the restart: %+v", st.Connections)
	}
	c := st.Connections[0]
	if c.Token != tokenHex(s.ctok) || c.Side != pathmgr.ClientSide || !c.Established || len(c.Subflows) != 2 ||
		!c.Subflows[0].Initial || !c.Subflows[1].Ours || c.Subflows[1].Local != est.Local || c.Subflows[1].LocalID != est.LocalID {
		t.Errorf("rebuilt %+v", c)
	}
	time.Sleep(200 * time.Millisecond)
	if got := m.Status().Counters.Actions; got.Total() != 0 {
		t.Errorf("actions after the restart %+v, want none", got)
	}
	// It is ours: link 2 going down destroys it.
	mark := s.cl.Mark()
	s.top.Client.LinkDown(t, l2.ClientIf)
	s.cl.WaitFor(t, mark, "SUB_CLOSED of the link-2 subflow", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Token == s.ctok && e.Local == est.Local
	})
	waitUntil(t, "the destroy counted", func() bool { return m.Status().Counters.Actions.DestroySubflow == 1 })
}

func tokenHex(t uint32) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = hex[t&0xf]
		t >>= 4
	}
	return string(b)
}

// BenchmarkKernelJoinLatency compares the time from a connection's
// ESTABLISHED event to the SUB_ESTABLISHED of its second subflow under the
// in-kernel path manager (a subflow endpoint on link 2) and under this
// package's Manager (throughput preset). It reports the median as
// p50-µs; run with e.g. -bench KernelJoinLatency -benchtime 200x.
func BenchmarkKernelJoinLatency(b *testing.B) {
	for _, mode := range []string{"in-kernel", "userspace"} {
		b.Run(mode, func(b *testing.B) {
			harness.RequireKernel(b)
			top := harness.Pair(b, 2)
			l1, l2 := top.Links[0], top.Links[1]
			if mode == "userspace" {
				harness.UseUserspacePM(b, top.Client)
				harness.UseUserspacePM(b, top.Server)
				startManager(b, top.Client, pathmgr.Config{})
			} else {
				one := uint32(1)
				for _, ns := range []*harness.NS{top.Client, top.Server} {
					if err := harness.DialGenl(b, ns).SetLimits(genl.LimitsUpdate{Subflows: &one, AddAddrAccepted: &one}); err != nil {
						b.Fatal(err)
					}
				}
				if err := harness.DialGenl(b, top.Client).AddEndpoint(genl.Endpoint{
					Addr: l2.ClientV4, Flags: genl.FlagSubflow, Ifindex: top.Client.LinkIndex(b, l2.ClientIf)}); err != nil {
					b.Fatal(err)
				}
			}
			// Stamp events as they arrive, on a goroutine of their own.
			sub, err := harness.DialGenl(b, top.Client).Subscribe(&genl.SubscribeOptions{ReadBuffer: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			type stamped struct {
				ev genl.Event
				at time.Time
			}
			evs := make(chan stamped, 4096)
			go func() {
				for {
					ev, err := sub.Next()
					if err != nil {
						close(evs)
						return
					}
					evs <- stamped{ev, time.Now()}
				}
			}()
			b.Cleanup(func() { _ = sub.Close() })
			ln := top.Server.ListenMPTCP(b, "0.0.0.0:0")
			raddr := netip.AddrPortFrom(l1.ServerV4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), harness.Timeout)
				conn, srv := harness.Connect(ctx, b, top.Client, l1.ClientV4.String(), ln, raddr)
				cancel()
				harness.Exchange(b, conn, srv, "x")
				var token uint32
				var estAt time.Time
				deadline := time.After(harness.Timeout)
			wait:
				for {
					select {
					case s, ok := <-evs:
						if !ok {
							b.Fatal("event stream ended")
						}
						switch e := s.ev.(type) {
						case *genl.Established:
							if harness.Unmap(e.Local) == conn.LocalAddr().(*net.TCPAddr).AddrPort() {
								token, estAt = e.Token, s.at
							}
						case *genl.SubflowEstablished:
							if token != 0 && e.Token == token {
								lat = append(lat, s.at.Sub(estAt))
								break wait
							}
						}
					case <-deadline:
						b.Fatalf("connection %d: no second subflow within %v", len(lat), harness.Timeout)
					}
				}
				_ = conn.Close()
				_ = srv.Close()
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
		})
	}
}
