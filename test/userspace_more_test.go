package test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// TestUserspaceDaemonServerSignals runs the daemon on the server side: its
// interface file marks the link-2 interface "signal", so it announces that
// address to the client (in-kernel path manager, no endpoints), which
// joins it; the address going away makes it send REMOVE_ADDR.
func TestUserspaceDaemonServerSignals(t *testing.T) {
	t.Parallel()
	harness.RequireKernel(t)
	cli(t)
	top := harness.Pair(t, 2)
	l1, l2 := top.Links[0], top.Links[1]
	s := &daemonSetup{ns: top.Server, peer: top.Client, dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "mptcpd-go.toml")
	s.socket = filepath.Join(s.dir, "control.sock")
	s.state = filepath.Join(s.dir, "state.json")
	s.writeMain(t, "mode = \"userspace\"\n")
	s.writeIface(t, "10-signal.toml", "[match]\nname = [\""+l2.ServerIf+"\"]\n[endpoint]\nflags = [\"signal\"]\nalso_without_default_route = true\n")
	s.writeIface(t, "20-veth.toml", usVethFile)
	s.gc = harness.DialGenl(t, top.Server)
	waitRunning(t, top.Server, l1.ServerIf, l2.ServerIf)

	// The client: in-kernel path manager, accepting two announcements and
	// two extra subflows, with no endpoints of its own.
	two := uint32(2)
	if err := harness.DialGenl(t, top.Client).SetLimits(genl.LimitsUpdate{Subflows: &two, AddAddrAccepted: &two}); err != nil {
		t.Fatal(err)
	}
	cl := harness.Subscribe(t, top.Client, "client")

	d := s.start(t)
	if st := d.waitReady(t); st.Mode != "userspace" {
		t.Fatalf("status mode %q, want userspace", st.Mode)
	}
	ln := top.Server.ListenMPTCP(t, "0.0.0.0:0")
	server := netip.AddrPortFrom(l1.ServerV4, ln.Addr().(*net.TCPAddr).AddrPort().Port())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	conn, srv := harness.Connect(ctx, t, top.Client, l1.ClientV4.String(), ln, server.String())
	harness.Exchange(t, conn, srv, "hello")
	ctok := cl.Established(t, conn.LocalAddr().(*net.TCPAddr).AddrPort())

	ann := cl.WaitFor(t, 0, "ANNOUNCED of "+l2.ServerV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Token == ctok && e.Remote.Addr().Unmap() == l2.ServerV4
	}).(*genl.Announced)
	if ann.RemoteID == 0 {
		t.Errorf("announced with id 0")
	}
	cl.WaitFor(t, 0, "SUB_ESTABLISHED to "+l2.ServerV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == ctok && e.Remote.Addr().Unmap() == l2.ServerV4
	})
	harness.Exchange(t, conn, srv, "over two subflows")
	d.waitStatus(t, "one announcement", func(st daemon.Status) bool {
		return st.PathManager != nil && st.PathManager.Actions.Announce == 1
	})

	mark := cl.Mark()
	top.Server.DelAddr(t, l2.ServerIf, netip.PrefixFrom(l2.ServerV4, 24).String())
	cl.WaitFor(t, mark, "REMOVED of the announced id", func(ev genl.Event) bool {
		e, ok := ev.(*genl.Removed)
		return ok && e.Token == ctok && e.RemoteID == ann.RemoteID
	})
	st := d.waitStatus(t, "the removal counted", func(st daemon.Status) bool {
		return st.PathManager.Actions.Remove == 1
	})
	if f := st.PathManager.Failures; f != (daemon.ActionCounts{}) {
		t.Errorf("failed actions %+v", f)
	}
	harness.Exchange(t, conn, srv, "after the removal")
	d.stop(t, syscall.SIGTERM)
}

// TestUserspaceDaemonCostMetered: under the cost preset the subflow from
// the metered link-2 interface is opened as backup.
func TestUserspaceDaemonCostMetered(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\npreset = \"cost\"\n")
	l2 := u.top.Links[1]
	u.s.writeIface(t, "05-metered.toml", "[match]\nname = [\""+l2.ClientIf+"\"]\n[endpoint]\nflags = [\"subflow\"]\nmetered = true\nalso_without_default_route = true\n")
	sl := harness.Subscribe(t, u.top.Server, "server")
	d := u.s.start(t)
	d.waitReady(t)
	u.connect(t)
	stok := sl.Established(t, u.server)
	u.joinFrom(t, l2.ClientV4)
	// The client's own SUB_ESTABLISHED carries the peer's backup bit; the
	// server's carries the one of the client's MP_JOIN.
	sest := sl.WaitFor(t, 0, "server SUB_ESTABLISHED from "+l2.ClientV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == stok && e.Remote.Addr().Unmap() == l2.ClientV4
	}).(*genl.SubflowEstablished)
	if !sest.Backup {
		t.Errorf("the join from the metered interface is not backup: server %s", harness.Describe(sest))
	}
	c := u.waitSubflows(t, d, 2)
	for _, sf := range c.Subflows {
		if sf.Initial == sf.Backup {
			t.Errorf("subflow %+v: want the initial one regular and the metered one backup", sf)
		}
	}
	exchange(t, u.conn, u.srv, "over the metered path too")
}

// TestUserspaceDaemonSSPI: the sspi preset opens one subflow per
// interface, and no more when the server announces another address.
func TestUserspaceDaemonSSPI(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\npreset = \"sspi\"\n")
	sl := harness.Subscribe(t, u.top.Server, "server")
	l2 := u.top.Links[1]
	d := u.s.start(t)
	d.waitReady(t)
	u.connect(t)
	stok := sl.Established(t, u.server)
	u.joinFrom(t, l2.ClientV4)
	u.waitSubflows(t, d, 2)

	// The server announces its link-2 address: both client interfaces
	// could reach it, but each has its subflow already.
	before := d.status(t).PathManager
	genlPM{}.announce(t, u.top.Server, stok, genl.Endpoint{ID: 9, Addr: l2.ServerV4})
	mark := u.cl.Mark()
	u.cl.WaitFor(t, 0, "ANNOUNCED of "+l2.ServerV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Token == u.token && e.Remote.Addr().Unmap() == l2.ServerV4
	})
	// The daemon handled the announcement (and decided on it).
	d.waitStatus(t, "the ANNOUNCED event handled", func(st daemon.Status) bool {
		return st.PathManager.Events > before.Events
	})
	exchange(t, u.conn, u.srv, "after the announcement")
	if ev, ok := u.cl.Within(t, mark, 0, func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == u.token
	}); ok {
		t.Errorf("got %s, want no third subflow", harness.Describe(ev))
	}
	st := d.status(t)
	if a := st.PathManager.Actions; a.CreateSubflow != 1 {
		t.Errorf("actions %+v, want exactly one CreateSubflow", a)
	}
	if n := u.subflows(t); n != 2 {
		t.Errorf("sock_diag lists %d subflows, want 2 (one per interface)", n)
	}
}

// waitLog waits until the daemon's log has substr.
func (p *daemonProc) waitLog(t *testing.T, substr string) {
	t.Helper()
	p.waitFor(t, "the log line "+substr, func() (bool, string) {
		log := p.logText()
		return strings.Contains(log, substr), log
	})
}

// TestUserspaceDaemonAutoWithRule: mode "auto" with a [[rule]] picks the
// userspace path manager, and SIGTERM puts the sysctl back.
func TestUserspaceDaemonAutoWithRule(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\n")
	u.s.writeMain(t, "mode = \"auto\"\n[[rule]]\ndst = \""+u.top.Links[0].V4Prefix.String()+"\"\naction = \"multipath\"\n")
	key := pmSysctl()
	before := u.top.Client.ReadSysctl(t, key)
	d := u.s.start(t)
	if st := d.waitReady(t); st.Mode != "userspace" || st.PathManager == nil {
		t.Fatalf("status mode %q, path manager %v; want userspace", st.Mode, st.PathManager)
	}
	if got := u.top.Client.ReadSysctl(t, "net.mptcp.pm_type"); got != "1" {
		t.Errorf("net.mptcp.pm_type = %q while the daemon runs, want 1", got)
	}
	d.waitLog(t, "auto: the policy asks for per-connection rules")
	u.connect(t)
	u.joinFrom(t, u.top.Links[1].ClientV4)
	u.waitSubflows(t, d, 2)

	d.stop(t, syscall.SIGTERM)
	if got := u.top.Client.ReadSysctl(t, key); got != before {
		t.Errorf("%s = %q after SIGTERM, want the previous %q", key, got, before)
	}
}

// TestUserspaceDaemonAutoWithoutRules: mode "auto" with no per-connection
// keys runs the in-kernel path manager: endpoints appear, the sysctl stays.
func TestUserspaceDaemonAutoWithoutRules(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"auto\"\n")
	key := pmSysctl()
	before := u.top.Client.ReadSysctl(t, key)
	d := u.s.start(t)
	if st := d.waitReady(t); st.Mode != "kernel" || st.PathManager != nil {
		t.Fatalf("status mode %q, path manager %v; want kernel", st.Mode, st.PathManager)
	}
	d.waitLog(t, "auto: the policy has no [[rule]]")
	l1, l2 := u.top.Links[0], u.top.Links[1]
	idx1, idx2 := u.top.Client.LinkIndex(t, l1.ClientIf), u.top.Client.LinkIndex(t, l2.ClientIf)
	d.waitFor(t, "subflow endpoints for both links", func() (bool, string) {
		eps := u.s.endpoints(t)
		var got1, got2 bool
		var b strings.Builder
		for _, e := range eps {
			b.WriteString(e.Addr.String() + " " + e.Flags.String() + "\n")
			got1 = got1 || e.Addr == l1.ClientV4 && e.Ifindex == idx1 && e.Flags&genl.FlagSubflow != 0
			got2 = got2 || e.Addr == l2.ClientV4 && e.Ifindex == idx2 && e.Flags&genl.FlagSubflow != 0
		}
		return got1 && got2, b.String()
	})
	if got := u.top.Client.ReadSysctl(t, key); got != before {
		t.Errorf("%s = %q in kernel mode, want it left at %q", key, got, before)
	}
	d.stop(t, syscall.SIGTERM)
}
