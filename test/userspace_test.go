package test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// useUserspacePM makes new MPTCP sockets of ns use the userspace path
// manager: net.mptcp.path_manager=userspace where the kernel has it
// (6.15+), else the older net.mptcp.pm_type=1.
func useUserspacePM(t testing.TB, ns *harness.NS) {
	t.Helper()
	// The sysctl files exist in every namespace or in none, so the test
	// binary's own namespace tells which one this kernel has.
	if _, err := os.Stat("/proc/sys/net/mptcp/path_manager"); err == nil {
		ns.Sysctl(t, "net.mptcp.path_manager", "userspace")
		if got := ns.ReadSysctl(t, "net.mptcp.pm_type"); got != "1" {
			t.Fatalf("net.mptcp.path_manager=userspace left net.mptcp.pm_type at %q, want 1", got)
		}
		return
	}
	ns.Sysctl(t, "net.mptcp.pm_type", "1")
}

// userspacePM drives the userspace path manager commands, through the
// genl API or through the mptcpd-go command, so one scenario covers both.
type userspacePM interface {
	announce(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint)
	remove(t *testing.T, ns *harness.NS, token uint32, id uint8)
	createSubflow(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint, remote netip.AddrPort)
	destroySubflow(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort)
	setBackup(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort, backup bool)
	// checkLocal checks that the connection's local addresses (and the one
	// with want's id) include want.
	checkLocal(t *testing.T, ns *harness.NS, token uint32, want genl.Endpoint)
}

// genlPM is userspacePM through the genl API; blocking selects
// genl.Config.Blocking for its clients and the scenario's subscriptions.
type genlPM struct{ blocking bool }

func (g genlPM) client(t *testing.T, ns *harness.NS) *genl.Client {
	return harness.DialGenlConfig(t, &genl.Config{NetNS: ns.Name, Blocking: g.blocking})
}

func (g genlPM) announce(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint) {
	t.Helper()
	if err := g.client(t, ns).Announce(token, local); err != nil {
		t.Fatalf("Announce(%08x, %+v): %v", token, local, err)
	}
}

func (g genlPM) remove(t *testing.T, ns *harness.NS, token uint32, id uint8) {
	t.Helper()
	if err := g.client(t, ns).Remove(token, id); err != nil {
		t.Fatalf("Remove(%08x, %d): %v", token, id, err)
	}
}

func (g genlPM) createSubflow(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint, remote netip.AddrPort) {
	t.Helper()
	if err := g.client(t, ns).CreateSubflow(token, local, remote); err != nil {
		t.Fatalf("CreateSubflow(%08x, %+v, %s): %v", token, local, remote, err)
	}
}

func (g genlPM) destroySubflow(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort) {
	t.Helper()
	if err := g.client(t, ns).DestroySubflow(token, local, remote); err != nil {
		t.Fatalf("DestroySubflow(%08x, %s, %s): %v", token, local, remote, err)
	}
}

func (g genlPM) setBackup(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort, backup bool) {
	t.Helper()
	var flags genl.Flags
	if backup {
		flags = genl.FlagBackup
	}
	ep := genl.Endpoint{Addr: local.Addr(), Port: local.Port()}
	if err := g.client(t, ns).SetSubflowFlags(token, ep, remote, flags); err != nil {
		t.Fatalf("SetSubflowFlags(%08x, %+v, %s, %v): %v", token, ep, remote, flags, err)
	}
}

func (g genlPM) checkLocal(t *testing.T, ns *harness.NS, token uint32, want genl.Endpoint) {
	t.Helper()
	c := g.client(t, ns)
	eps, err := c.ConnEndpoints(token)
	if err != nil {
		t.Fatalf("ConnEndpoints(%08x): %v", token, err)
	}
	found := false
	for _, ep := range eps {
		if ep.ID == want.ID {
			found = true
			if ep.Addr != want.Addr || ep.Flags != want.Flags {
				t.Errorf("ConnEndpoints(%08x) lists %+v, want %+v", token, ep, want)
			}
		}
	}
	if !found {
		t.Errorf("ConnEndpoints(%08x) = %+v, lacks %+v", token, eps, want)
	}
	ep, err := c.ConnEndpoint(token, want.ID)
	if err != nil {
		t.Fatalf("ConnEndpoint(%08x, %d): %v", token, want.ID, err)
	}
	if ep.ID != want.ID || ep.Addr != want.Addr || ep.Flags != want.Flags {
		t.Errorf("ConnEndpoint(%08x, %d) = %+v, want %+v", token, want.ID, ep, want)
	}
}

// cliPM is userspacePM through "mptcpd-go -n NS pm ...".
type cliPM struct{}

func tokenArg(token uint32) string { return fmt.Sprintf("%08x", token) }

func (cliPM) announce(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint) {
	t.Helper()
	args := []string{"pm", "announce", local.Addr.String(), "id", fmt.Sprint(local.ID)}
	if local.Port != 0 {
		args = append(args, "port", fmt.Sprint(local.Port))
	}
	mustMptcpdgo(t, ns, append(args, "token", tokenArg(token))...)
}

func (cliPM) remove(t *testing.T, ns *harness.NS, token uint32, id uint8) {
	t.Helper()
	mustMptcpdgo(t, ns, "pm", "remove", "id", fmt.Sprint(id), "token", tokenArg(token))
}

func (cliPM) createSubflow(t *testing.T, ns *harness.NS, token uint32, local genl.Endpoint, remote netip.AddrPort) {
	t.Helper()
	args := []string{"pm", "subflow", "create", local.Addr.String()}
	if local.ID != 0 {
		args = append(args, "id", fmt.Sprint(local.ID))
	}
	if local.Port != 0 {
		args = append(args, "port", fmt.Sprint(local.Port))
	}
	if local.Flags&genl.FlagBackup != 0 {
		args = append(args, "backup")
	}
	args = append(args, "remote", remote.Addr().String(), "rport", fmt.Sprint(remote.Port()), "token", tokenArg(token))
	mustMptcpdgo(t, ns, args...)
}

func (cliPM) destroySubflow(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort) {
	t.Helper()
	mustMptcpdgo(t, ns, "pm", "subflow", "destroy", local.Addr().String(), "port", fmt.Sprint(local.Port()),
		"remote", remote.Addr().String(), "rport", fmt.Sprint(remote.Port()), "token", tokenArg(token))
}

func (cliPM) setBackup(t *testing.T, ns *harness.NS, token uint32, local, remote netip.AddrPort, backup bool) {
	t.Helper()
	flag := "nobackup"
	if backup {
		flag = "backup"
	}
	mustMptcpdgo(t, ns, "pm", "set", local.Addr().String(), "port", fmt.Sprint(local.Port()), flag,
		"remote", remote.Addr().String(), "rport", fmt.Sprint(remote.Port()), "token", tokenArg(token))
}

func (cliPM) checkLocal(t *testing.T, ns *harness.NS, token uint32, want genl.Endpoint) {
	t.Helper()
	// The address is printed as "endpoint show" prints an endpoint.
	line := strings.TrimSpace(fmt.Sprintf("%s id %d %s", want.Addr, want.ID, want.Flags))
	for _, args := range [][]string{
		{"pm", "show", "token", tokenArg(token)},
		{"pm", "show", "token", tokenArg(token), "id", fmt.Sprint(want.ID)},
	} {
		out := mustMptcpdgo(t, ns, args...)
		found := false
		for l := range strings.Lines(out) {
			if strings.TrimRight(l, " \n") == line {
				found = true
			}
		}
		if !found {
			t.Errorf("mptcpd-go -n %s %s printed\n%s\nwant a line %q", ns.Name, strings.Join(args, " "), indent(out), line+" ")
		}
	}
}

func TestUserspacePM(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		pm   userspacePM
	}{
		{"genl", genlPM{}},
		{"genl blocking", genlPM{blocking: true}},
		{"cli", cliPM{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "cli" {
				cli(t)
			}
			runUserspacePM(t, tc.pm)
		})
	}
}

// runUserspacePM: a connection between two namespaces whose sockets use
// the userspace path manager, which pm drives by hand: the server
// announces its link-2 address, the client opens a subflow to it over
// link 2, marks it backup, lists its addresses, closes the subflow, and the
// server withdraws the address.
func runUserspacePM(t *testing.T, pm userspacePM) {
	top := harness.Pair(t, 2)
	useUserspacePM(t, top.Client)
	useUserspacePM(t, top.Server)
	blocking := false
	if g, ok := pm.(genlPM); ok {
		blocking = g.blocking
	}
	cl := harness.SubscribeConfig(t, &genl.Config{NetNS: top.Client.Name, Blocking: blocking}, "client")
	sl := harness.SubscribeConfig(t, &genl.Config{NetNS: top.Server.Name, Blocking: blocking}, "server")
	l1, l2 := top.Links[0], top.Links[1]
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	// The server listens on all its addresses, so that it accepts the
	// join to its link-2 address; the connection is made over link 1. The
	// listener is dual-stack, so the server's events carry v4-mapped IPv6
	// addresses, which the checks below unmap.
	ln := top.Server.ListenMPTCP(t, ":0")
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	serverAddr := netip.AddrPortFrom(l1.ServerV4, port)
	conn, srv := harness.Connect(ctx, t, top.Client, l1.ClientV4.String(), ln, serverAddr.String())
	deadline := time.Now().Add(testTimeout)
	_ = conn.SetDeadline(deadline)
	_ = srv.SetDeadline(deadline)
	exchange(t, conn, srv, "hello")
	clientAddr := conn.LocalAddr().(*net.TCPAddr).AddrPort()

	// The tokens, from ESTABLISHED: the userspace path manager may act
	// only once the connection is established.
	token := func(l *harness.EventLog, local netip.AddrPort) uint32 {
		ev := l.WaitFor(t, 0, "ESTABLISHED from "+local.String(), func(ev genl.Event) bool {
			e, ok := ev.(*genl.Established)
			return ok && unmap(e.Local) == local
		})
		return ev.Fields().Token
	}
	ctok, stok := token(cl, clientAddr), token(sl, serverAddr)

	// ANNOUNCE: the server's link-2 address as id 2.
	const serverID, clientID = 2, 3
	pm.announce(t, top.Server, stok, genl.Endpoint{ID: serverID, Addr: l2.ServerV4})
	ann := cl.WaitFor(t, 0, fmt.Sprintf("ANNOUNCED of %s", l2.ServerV4), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Remote.Addr() == l2.ServerV4
	}).(*genl.Announced)
	if ann.Token != ctok || ann.RemoteID != serverID {
		t.Errorf("client: %s: want token %08x remid %d", harness.Describe(ann), ctok, serverID)
	}
	// The server's path manager keeps the announced address.
	pm.checkLocal(t, top.Server, stok, genl.Endpoint{ID: serverID, Addr: l2.ServerV4, Flags: genl.FlagSignal})

	// SUBFLOW_CREATE from the client's link-2 address to the server's.
	remote := netip.AddrPortFrom(l2.ServerV4, port)
	pm.createSubflow(t, top.Client, ctok, genl.Endpoint{ID: clientID, Addr: l2.ClientV4}, remote)
	est := cl.WaitFor(t, 0, "SUB_ESTABLISHED to "+remote.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Remote == remote
	}).(*genl.SubflowEstablished)
	local := est.Local
	checkSubflow(t, "client", est.Subflow, genl.Subflow{
		Token: ctok, LocalID: clientID, RemoteID: serverID, Local: netip.AddrPortFrom(l2.ClientV4, local.Port()), Remote: remote,
	})
	sest := sl.WaitFor(t, 0, "SUB_ESTABLISHED from "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && unmap(e.Remote) == local
	}).(*genl.SubflowEstablished)
	checkSubflow(t, "server", unmapSubflow(sest.Subflow), genl.Subflow{
		Token: stok, LocalID: serverID, RemoteID: clientID, Local: remote, Remote: local,
	})
	pm.checkLocal(t, top.Client, ctok, genl.Endpoint{ID: clientID, Addr: l2.ClientV4, Flags: genl.FlagSubflow})

	// SET backup: MP_PRIO on the subflow, reported by the server.
	smark := sl.Mark()
	pm.setBackup(t, top.Client, ctok, local, remote, true)
	prio := sl.WaitFor(t, smark, "SUB_PRIORITY from "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowPriority)
		return ok && unmap(e.Remote) == local
	}).(*genl.SubflowPriority)
	checkSubflow(t, "server", unmapSubflow(prio.Subflow), genl.Subflow{
		Token: stok, LocalID: serverID, RemoteID: clientID, Local: remote, Remote: local, Backup: true,
	})
	pm.checkLocal(t, top.Client, ctok, genl.Endpoint{ID: clientID, Addr: l2.ClientV4, Flags: genl.FlagSubflow | genl.FlagBackup})

	// SUBFLOW_DESTROY: SUB_CLOSED on both ends.
	cmark, smark := cl.Mark(), sl.Mark()
	pm.destroySubflow(t, top.Client, ctok, local, remote)
	closed := cl.WaitFor(t, cmark, "SUB_CLOSED of "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Local == local
	}).(*genl.SubflowClosed)
	checkSubflow(t, "client", closed.Subflow, genl.Subflow{
		Token: ctok, LocalID: clientID, RemoteID: serverID, Local: local, Remote: remote,
	})
	sl.WaitFor(t, smark, "SUB_CLOSED from "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && unmap(e.Remote) == local && e.Token == stok
	})

	// REMOVE: the server withdraws id 2.
	cmark = cl.Mark()
	pm.remove(t, top.Server, stok, serverID)
	waitRemoved(t, cl, cmark, ctok, serverID)

	// The connection still works over its first subflow.
	exchange(t, conn, srv, "still there")
	cmark, smark = cl.Mark(), sl.Mark()
	_ = conn.Close()
	_ = srv.Close()
	for _, side := range []struct {
		log   *harness.EventLog
		mark  int
		token uint32
	}{{cl, cmark, ctok}, {sl, smark, stok}} {
		side.log.WaitFor(t, side.mark, fmt.Sprintf("CLOSED of token %08x", side.token), func(ev genl.Event) bool {
			e, ok := ev.(*genl.Closed)
			return ok && e.Token == side.token
		})
	}
}

// unmap turns a v4-mapped IPv6 address, as the events of a dual-stack
// socket carry, into the IPv4 address.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// unmapSubflow unmaps the addresses of a subflow event.
func unmapSubflow(s genl.Subflow) genl.Subflow {
	s.Local, s.Remote = unmap(s.Local), unmap(s.Remote)
	return s
}
