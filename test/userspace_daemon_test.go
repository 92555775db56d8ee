package test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// The userspace mode tests run the real daemon in the client namespace of
// a two-link Pair; the server namespace uses the userspace path manager
// too (nobody drives it, so it only accepts the joins). The client
// connects over link 1; link 2 is the path the daemon adds.

// usScenario is one such set-up.
type usScenario struct {
	top    *harness.Topology
	s      *daemonSetup
	cl     *harness.EventLog
	conn   net.Conn
	srv    net.Conn
	token  uint32 // the client's
	server netip.AddrPort
}

// usVethFile is the interface file of the README's example.
const usVethFile = "[match]\nname = [\"veth*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = true\n"

// newUSScenario writes the main file (mainExtra after the test settings)
// and the veth interface file.
func newUSScenario(t *testing.T, mainExtra string) *usScenario {
	t.Helper()
	harness.RequireKernel(t)
	cli(t)
	top := harness.Pair(t, 2)
	useUserspacePM(t, top.Server)
	s := &daemonSetup{ns: top.Client, peer: top.Server, dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "mptcpd-go.toml")
	s.socket = filepath.Join(s.dir, "control.sock")
	s.state = filepath.Join(s.dir, "state.json")
	s.writeMain(t, mainExtra)
	s.writeIface(t, "10-veth.toml", usVethFile)
	s.gc = harness.DialGenl(t, top.Client)
	waitRunning(t, top.Client, top.Links[0].ClientIf, top.Links[1].ClientIf)
	return &usScenario{top: top, s: s, cl: harness.Subscribe(t, top.Client, "client")}
}

// pmSysctl is the sysctl that selects the path manager on this kernel.
func pmSysctl() string {
	if _, err := os.Stat("/proc/sys/net/mptcp/path_manager"); err == nil {
		return "net.mptcp.path_manager"
	}
	return "net.mptcp.pm_type"
}

// connect opens an MPTCP connection over link 1 and waits for the
// client's ESTABLISHED event.
func (u *usScenario) connect(t *testing.T) {
	t.Helper()
	l1 := u.top.Links[0]
	ln := u.top.Server.ListenMPTCP(t, "0.0.0.0:0")
	u.server = netip.AddrPortFrom(l1.ServerV4, ln.Addr().(*net.TCPAddr).AddrPort().Port())
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	mark := u.cl.Mark()
	conn, err := u.top.Client.DialMPTCP(ctx, t, l1.ClientV4.String()+":0", u.server.String())
	if err != nil {
		t.Fatalf("dial %s: %v", u.server, err)
	}
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = srv.Close() })
	u.conn, u.srv = conn, srv
	exchange(t, conn, srv, "hello")
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	ev := u.cl.WaitFor(t, mark, "ESTABLISHED "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Established)
		return ok && e.Local.Addr().Unmap() == local.Addr() && e.Local.Port() == local.Port()
	})
	u.token = ev.(*genl.Established).Token
}

// joinFrom waits for the client's SUB_ESTABLISHED from addr.
func (u *usScenario) joinFrom(t *testing.T, addr netip.Addr) *genl.SubflowEstablished {
	t.Helper()
	return u.cl.WaitFor(t, 0, "SUB_ESTABLISHED from "+addr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == u.token && e.Local.Addr().Unmap() == addr
	}).(*genl.SubflowEstablished)
}

// subflows counts the connection's subflows as sock_diag lists them.
func (u *usScenario) subflows(t *testing.T) int {
	t.Helper()
	dc, err := diag.Dial(&diag.Config{NetNS: u.top.Client.Name})
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
		if sf.TokenLocal == u.token {
			n++
		}
	}
	return n
}

// tracked returns the daemon's view of the connection.
func (u *usScenario) tracked(st daemon.Status) (daemon.ConnStatus, bool) {
	if st.PathManager == nil {
		return daemon.ConnStatus{}, false
	}
	for _, c := range st.PathManager.Connections {
		if c.Token == fmt.Sprintf("%08x", u.token) {
			return c, true
		}
	}
	return daemon.ConnStatus{}, false
}

// waitSubflows waits until the daemon tracks the connection with n
// subflows.
func (u *usScenario) waitSubflows(t *testing.T, d *daemonProc, n int) daemon.ConnStatus {
	t.Helper()
	var c daemon.ConnStatus
	d.waitStatus(t, fmt.Sprintf("the connection with %d subflows", n), func(st daemon.Status) bool {
		var ok bool
		c, ok = u.tracked(st)
		return ok && len(c.Subflows) == n
	})
	return c
}

func TestUserspaceDaemonThroughput(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\npreset = \"throughput\"\n")
	key := pmSysctl()
	before := u.top.Client.ReadSysctl(t, key)
	d := u.s.start(t)
	st := d.waitReady(t)
	if st.Mode != "userspace" || st.PathManager == nil {
		t.Fatalf("status mode %q, path manager %v; want userspace", st.Mode, st.PathManager)
	}
	if got, want := u.top.Client.ReadSysctl(t, "net.mptcp.pm_type"), "1"; got != want {
		t.Errorf("net.mptcp.pm_type = %q while the daemon runs, want %q", got, want)
	}
	u.connect(t)
	l2 := u.top.Links[1]
	if e := u.joinFrom(t, l2.ClientV4); e.Backup {
		t.Errorf("the second subflow is backup under the throughput preset")
	}
	c := u.waitSubflows(t, d, 2)
	if c.Side != "client" || c.Remote != u.server.String() {
		t.Errorf("status: %+v", c)
	}
	exchange(t, u.conn, u.srv, "over two subflows")
	if n := u.subflows(t); n != 2 {
		t.Errorf("sock_diag lists %d subflows, want 2", n)
	}
	r := mptcpdgoHost(t, "status", "--socket", u.s.socket)
	if r.Code != exitOK {
		t.Fatalf("status: %v", r)
	}
	t.Logf("status:\n%s", r.Stdout)

	d.stop(t, syscall.SIGTERM)
	if got := u.top.Client.ReadSysctl(t, key); got != before {
		t.Errorf("%s = %q after SIGTERM, want the previous %q", key, got, before)
	}
}

func TestUserspaceDaemonBackup(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\npreset = \"backup\"\n")
	d := u.s.start(t)
	d.waitReady(t)
	u.connect(t)
	l2 := u.top.Links[1]
	u.joinFrom(t, l2.ClientV4)
	c := u.waitSubflows(t, d, 2)
	for _, sf := range c.Subflows {
		if sf.Initial == sf.Backup {
			t.Errorf("subflow %+v: want the initial one regular and the other backup", sf)
		}
	}
}

func TestUserspaceDaemonNeverRule(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\n")
	u.s.writeMain(t, "mode = \"userspace\"\n[[rule]]\ndst = \""+u.top.Links[0].V4Prefix.String()+"\"\naction = \"never\"\n")
	d := u.s.start(t)
	d.waitReady(t)
	u.connect(t)
	u.waitSubflows(t, d, 1)
	// Give a wrong decision the time to show.
	time.Sleep(time.Second)
	if n := u.subflows(t); n != 1 {
		t.Errorf("sock_diag lists %d subflows, want only the initial one", n)
	}
	st := d.status(t)
	if a := st.PathManager.Actions; a.CreateSubflow != 0 {
		t.Errorf("actions %+v, want none", a)
	}
}

func TestUserspaceDaemonRestart(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\n")
	d := u.s.start(t)
	d.waitReady(t)
	u.connect(t)
	u.joinFrom(t, u.top.Links[1].ClientV4)
	u.waitSubflows(t, d, 2)
	d.stop(t, syscall.SIGTERM)

	// The connection outlives the daemon; the next one rebuilds its state
	// from the kernel and opens nothing twice.
	d2 := u.s.start(t)
	d2.waitReady(t)
	u.waitSubflows(t, d2, 2)
	time.Sleep(time.Second)
	exchange(t, u.conn, u.srv, "after the restart")
	if n := u.subflows(t); n != 2 {
		t.Errorf("sock_diag lists %d subflows after the restart, want 2", n)
	}
	st := d2.status(t)
	if a := st.PathManager.Actions; a.CreateSubflow != 0 {
		t.Errorf("the restarted daemon sent %+v, want no CreateSubflow", a)
	}
	if st.PathManager.Rebuilds == 0 {
		t.Error("the restarted daemon did not rebuild its state")
	}
}
