package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// listenerPort is the port of the signal endpoint the scenario adds to the
// server to make the path manager open a listener. It is below the
// ephemeral range, so it cannot clash with the test's own sockets.
const listenerPort = 20000

// connScenario is a real MPTCP connection between two namespaces over two
// links, driven by the in-kernel path managers:
//
//   - both sides allow 2 subflows and 2 accepted ADD_ADDRs;
//   - the server has a signal endpoint on its link-2 address, which it
//     announces to the client (ANNOUNCED);
//   - the client has a subflow endpoint on its link-2 address bound to its
//     link-2 veth, from which it opens a second subflow to the server's
//     initial address (SUB_ESTABLISHED, with the veth's ifindex);
//   - the connection itself is made over link 1, to a listener bound to the
//     server's link-1 address.
type connScenario struct {
	top            *harness.Topology
	client, server *genl.Client
	// clientEP and serverEP are the endpoints above, with the ids the
	// kernel gave them.
	clientEP, serverEP genl.Endpoint
	clientIfindex      int
}

// newConnScenario sets up the namespaces, limits and endpoints. It causes
// no events, so monitors can be started afterwards.
func newConnScenario(t *testing.T) *connScenario {
	t.Helper()
	top := harness.Pair(t, 2)
	s := &connScenario{top: top, client: harness.DialGenl(t, top.Client), server: harness.DialGenl(t, top.Server)}
	l2 := top.Links[1]
	s.clientIfindex = top.Client.LinkIndex(t, l2.ClientIf)
	for side, c := range map[string]*genl.Client{"client": s.client, "server": s.server} {
		if err := c.SetLimits(genl.LimitsUpdate{Subflows: u32(2), AddAddrAccepted: u32(2)}); err != nil {
			t.Fatalf("%s: SetLimits(2, 2): %v", side, err)
		}
	}
	s.serverEP = addEndpoint(t, "server", s.server, genl.Endpoint{Addr: l2.ServerV4, Flags: genl.FlagSignal})
	s.clientEP = addEndpoint(t, "client", s.client, genl.Endpoint{Addr: l2.ClientV4, Flags: genl.FlagSubflow, Ifindex: s.clientIfindex})
	return s
}

// addEndpoint adds ep and returns it as the kernel has it (with its id).
func addEndpoint(t testing.TB, side string, c *genl.Client, ep genl.Endpoint) genl.Endpoint {
	t.Helper()
	if err := c.AddEndpoint(ep); err != nil {
		t.Fatalf("%s: AddEndpoint(%+v): %v", side, ep, err)
	}
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatalf("%s: Endpoints(): %v", side, err)
	}
	for _, got := range eps {
		if got.Addr == ep.Addr && got.Port == ep.Port {
			return got
		}
	}
	t.Fatalf("%s: endpoint %+v not in the dump after adding it: %+v", side, ep, eps)
	return genl.Endpoint{}
}

// scenarioTokens are the connection's tokens, one per side.
type scenarioTokens struct {
	client, server uint32
}

// run makes the connection and walks it through every event type,
// asserting on each event in the two logs, which must have been subscribed
// before. It returns the tokens.
func (s *connScenario) run(t *testing.T, cl, sl *harness.EventLog) scenarioTokens {
	t.Helper()
	l1, l2 := s.top.Links[0], s.top.Links[1]
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	// Listener: the kernel reports every MPTCP listener.
	ln := s.top.Server.ListenMPTCP(t, netip.AddrPortFrom(l1.ServerV4, 0).String())
	lnAddr := ln.Addr().(*net.TCPAddr).AddrPort()
	sl.WaitFor(t, 0, "LISTENER_CREATED of the test's listener "+lnAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.ListenerCreated)
		return ok && e.Local == lnAddr
	})

	// Connection over link 1.
	conn, srv := harness.Connect(ctx, t, s.top.Client, l1.ClientV4.String(), ln, lnAddr.String())
	deadline := time.Now().Add(testTimeout)
	_ = conn.SetDeadline(deadline)
	_ = srv.SetDeadline(deadline)
	if mp, err := conn.(*net.TCPConn).MultipathTCP(); err != nil || !mp {
		t.Fatalf("the connection did not negotiate MPTCP (MultipathTCP() = %v, %v)", mp, err)
	}
	exchange(t, conn, srv, "hello over link 1")
	clientAddr := conn.LocalAddr().(*net.TCPAddr).AddrPort()

	// CREATED and ESTABLISHED, with the token that names the connection
	// on each side from now on.
	var tok scenarioTokens
	for _, side := range []struct {
		log           *harness.EventLog
		local, remote netip.AddrPort
		serverSide    bool
		token         *uint32
	}{
		{cl, clientAddr, lnAddr, false, &tok.client},
		{sl, lnAddr, clientAddr, true, &tok.server},
	} {
		for _, typ := range []genl.EventType{genl.EventCreated, genl.EventEstablished} {
			ev := side.log.WaitFor(t, 0, fmt.Sprintf("%v of %s -> %s", typ, side.local, side.remote), func(ev genl.Event) bool {
				var c genl.Connection
				switch e := ev.(type) {
				case *genl.Created:
					c = e.Connection
				case *genl.Established:
					c = e.Connection
				default:
					return false
				}
				return ev.Type() == typ && c.Local == side.local && c.Remote == side.remote
			})
			f := ev.Fields()
			if f.Token == 0 || !f.Present.Has(genl.AttrToken) {
				t.Errorf("%s: %s has no token", side.log.Label(), harness.Describe(ev))
			}
			if *side.token == 0 {
				*side.token = f.Token
			} else if f.Token != *side.token {
				t.Errorf("%s: %s: token differs from CREATED's %08x", side.log.Label(), harness.Describe(ev), *side.token)
			}
			var serverSide bool
			switch e := ev.(type) {
			case *genl.Created:
				serverSide = e.ServerSide
			case *genl.Established:
				serverSide = e.ServerSide
			}
			if serverSide != side.serverSide {
				t.Errorf("%s: %s: ServerSide = %v, want %v", side.log.Label(), harness.Describe(ev), serverSide, side.serverSide)
			}
		}
	}

	// The client learns the server's link-2 address.
	ann := cl.WaitFor(t, 0, fmt.Sprintf("ANNOUNCED of %s id %d", l2.ServerV4, s.serverEP.ID), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Remote.Addr() == l2.ServerV4
	}).(*genl.Announced)
	if ann.Token != tok.client || ann.RemoteID != s.serverEP.ID {
		t.Errorf("client: %s: want token %08x remid %d", harness.Describe(ann), tok.client, s.serverEP.ID)
	}
	if p := ann.Remote.Port(); p != 0 && p != lnAddr.Port() {
		t.Errorf("client: %s: port %d is neither absent nor the connection's %d", harness.Describe(ann), p, lnAddr.Port())
	}

	// The client's subflow endpoint opens a subflow over link 2 to the
	// server's initial address; both ends report it.
	csub := cl.WaitFor(t, 0, fmt.Sprintf("SUB_ESTABLISHED from the subflow endpoint %s", s.clientEP.Addr), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Local.Addr() == s.clientEP.Addr && e.Remote == lnAddr
	}).(*genl.SubflowEstablished)
	checkSubflow(t, "client", csub.Subflow, genl.Subflow{
		Token: tok.client, LocalID: s.clientEP.ID, RemoteID: 0,
		Local: netip.AddrPortFrom(s.clientEP.Addr, csub.Local.Port()), Remote: lnAddr,
		Ifindex: s.clientIfindex,
	})
	if csub.Local.Port() == 0 {
		t.Errorf("client: %s has no source port", harness.Describe(csub))
	}
	joined := csub.Local // the subflow's client end
	ssub := sl.WaitFor(t, 0, "SUB_ESTABLISHED of the join from "+joined.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Remote == joined
	}).(*genl.SubflowEstablished)
	checkSubflow(t, "server", ssub.Subflow, genl.Subflow{
		Token: tok.server, LocalID: 0, RemoteID: s.clientEP.ID, Local: lnAddr, Remote: joined,
	})

	// The client also tries a subflow to the announced address, at the
	// listener's port; the listener is bound to the link-1 address, so the
	// server refuses it. Waiting for its end also keeps it from being the
	// subflow that gets the MP_PRIO below.
	refused := cl.WaitFor(t, 0, "SUB_CLOSED of the refused join to "+l2.ServerV4.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Remote.Addr() == l2.ServerV4
	}).(*genl.SubflowClosed)
	if refused.Token != tok.client || refused.Remote.Port() != lnAddr.Port() || refused.RemoteID != s.serverEP.ID ||
		!refused.Attrs.Has(genl.AttrError) || unix.Errno(refused.Error) != unix.ECONNREFUSED {
		t.Errorf("client: %s: want token %08x, remote port %d, remid %d and error %d (ECONNREFUSED)",
			harness.Describe(refused), tok.client, lnAddr.Port(), s.serverEP.ID, unix.ECONNREFUSED)
	}

	// Backup: the client's endpoint changes, it sends MP_PRIO on the
	// subflow, and the server reports the new priority.
	mark := sl.Mark()
	if err := s.client.SetEndpointFlags(genl.Endpoint{ID: s.clientEP.ID}, genl.FlagBackup); err != nil {
		t.Fatalf("client: SetEndpointFlags(id %d, backup): %v", s.clientEP.ID, err)
	}
	prio := sl.WaitFor(t, mark, "SUB_PRIORITY of the join from "+joined.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowPriority)
		return ok && e.Remote == joined
	}).(*genl.SubflowPriority)
	checkSubflow(t, "server", prio.Subflow, genl.Subflow{
		Token: tok.server, LocalID: 0, RemoteID: s.clientEP.ID, Local: lnAddr, Remote: joined, Backup: true,
	})

	// A signal endpoint with a port makes the server's path manager listen
	// on it and announce it; deleting it closes the listener and withdraws
	// the address.
	portEP := addEndpoint(t, "server", s.server, genl.Endpoint{Addr: l1.ServerV4, Port: listenerPort, Flags: genl.FlagSignal})
	portAddr := netip.AddrPortFrom(l1.ServerV4, listenerPort)
	sl.WaitFor(t, mark, "LISTENER_CREATED of the port endpoint "+portAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.ListenerCreated)
		return ok && e.Local == portAddr
	})
	portAnn := cl.WaitFor(t, 0, "ANNOUNCED of the port endpoint "+portAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Announced)
		return ok && e.Remote == portAddr
	}).(*genl.Announced)
	if portAnn.Token != tok.client || portAnn.RemoteID != portEP.ID {
		t.Errorf("client: %s: want token %08x remid %d", harness.Describe(portAnn), tok.client, portEP.ID)
	}
	cmark := cl.Mark()
	if err := s.server.DeleteEndpoint(portEP.ID); err != nil {
		t.Fatalf("server: DeleteEndpoint(%d): %v", portEP.ID, err)
	}
	sl.WaitFor(t, mark, "LISTENER_CLOSED of the port endpoint "+portAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.ListenerClosed)
		return ok && e.Local == portAddr
	})
	waitRemoved(t, cl, cmark, tok.client, portEP.ID)

	// The server withdraws its link-2 address: REMOVED on the client.
	cmark = cl.Mark()
	if err := s.server.DeleteEndpoint(s.serverEP.ID); err != nil {
		t.Fatalf("server: DeleteEndpoint(%d): %v", s.serverEP.ID, err)
	}
	waitRemoved(t, cl, cmark, tok.client, s.serverEP.ID)

	// "delete id 0 ADDRESS" closes the initial subflow; the connection
	// lives on over link 2.
	cmark, smark := cl.Mark(), sl.Mark()
	if err := s.client.DeleteEndpointAddr(0, l1.ClientV4); err != nil {
		t.Fatalf("client: DeleteEndpointAddr(0, %s): %v", l1.ClientV4, err)
	}
	initial := cl.WaitFor(t, cmark, "SUB_CLOSED of the initial subflow "+clientAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Local == clientAddr
	}).(*genl.SubflowClosed)
	checkSubflow(t, "client", initial.Subflow, genl.Subflow{
		Token: tok.client, Local: clientAddr, Remote: lnAddr,
	})
	waitRemoved(t, sl, smark, tok.server, 0)
	exchange(t, conn, srv, "hello over link 2")

	// Deleting the client's endpoint closes its subflow and withdraws the
	// address from the server.
	cmark, smark = cl.Mark(), sl.Mark()
	if err := s.client.DeleteEndpoint(s.clientEP.ID); err != nil {
		t.Fatalf("client: DeleteEndpoint(%d): %v", s.clientEP.ID, err)
	}
	closed := cl.WaitFor(t, cmark, "SUB_CLOSED of the subflow "+joined.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Local == joined
	}).(*genl.SubflowClosed)
	// Backup reports the peer's wish (MP_PRIO received), not this side's,
	// so it stays false here.
	checkSubflow(t, "client", closed.Subflow, genl.Subflow{
		Token: tok.client, LocalID: s.clientEP.ID, Local: joined, Remote: lnAddr, Ifindex: s.clientIfindex,
	})
	waitRemoved(t, sl, smark, tok.server, s.clientEP.ID)
	sl.WaitFor(t, smark, "SUB_CLOSED of the join from "+joined.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Remote == joined && e.Token == tok.server
	})

	// Closing: CLOSED on both sides.
	cmark, smark = cl.Mark(), sl.Mark()
	_ = conn.Close()
	_ = srv.Close()
	for _, side := range []struct {
		log   *harness.EventLog
		mark  int
		token uint32
	}{{cl, cmark, tok.client}, {sl, smark, tok.server}} {
		side.log.WaitFor(t, side.mark, fmt.Sprintf("CLOSED of token %08x", side.token), func(ev genl.Event) bool {
			e, ok := ev.(*genl.Closed)
			return ok && e.Token == side.token
		})
	}
	// The test's listener goes too.
	_ = ln.Close()
	sl.WaitFor(t, smark, "LISTENER_CLOSED of the test's listener "+lnAddr.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.ListenerClosed)
		return ok && e.Local == lnAddr
	})

	// One connection per side: every event with a token has that side's.
	for _, side := range []struct {
		log   *harness.EventLog
		token uint32
	}{{cl, tok.client}, {sl, tok.server}} {
		for _, ev := range side.log.Seen() {
			f := ev.Fields()
			if f.Present.Has(genl.AttrToken) != (ev.Type() != genl.EventListenerCreated && ev.Type() != genl.EventListenerClosed) {
				t.Errorf("%s: %s: a token is expected on connection events only", side.log.Label(), harness.Describe(ev))
			}
			if f.Present.Has(genl.AttrToken) && f.Token != side.token {
				t.Errorf("%s: %s: token differs from the connection's %08x", side.log.Label(), harness.Describe(ev), side.token)
			}
		}
	}
	return tok
}

// waitRemoved waits for REMOVED of id on the connection token.
func waitRemoved(t *testing.T, l *harness.EventLog, from int, token uint32, id uint8) {
	t.Helper()
	l.WaitFor(t, from, fmt.Sprintf("REMOVED token=%08x remid=%d", token, id), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Removed)
		return ok && e.Token == token && e.RemoteID == id && e.Attrs.Has(genl.AttrRemID)
	})
}

// checkSubflow compares the fields of a subflow event that the scenario
// determines; Error, reset reason and flags and the attribute set are not
// compared.
func checkSubflow(t *testing.T, side string, got, want genl.Subflow) {
	t.Helper()
	got.Error, got.ResetReason, got.ResetFlags, got.Attrs = 0, 0, 0, 0
	want.Attrs = 0
	if got != want {
		t.Errorf("%s: subflow event\n got %+v\nwant %+v", side, got, want)
	}
}

// exchange sends msg from the client to the server and back.
func exchange(t *testing.T, client, server net.Conn, msg string) {
	t.Helper()
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"client -> server", client, server}, {"server -> client", server, client}} {
		if _, err := io.WriteString(dir.from, msg); err != nil {
			t.Fatalf("%s: writing %q: %v", dir.name, msg, err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.to, buf); err != nil {
			t.Fatalf("%s: reading %q: %v", dir.name, msg, err)
		}
		if string(buf) != msg {
			t.Fatalf("%s: got %q, want %q", dir.name, buf, msg)
		}
	}
}

// allEventTypes are the ten event types the scenario must produce.
var allEventTypes = []genl.EventType{
	genl.EventCreated, genl.EventEstablished, genl.EventClosed, genl.EventAnnounced, genl.EventRemoved,
	genl.EventSubEstablished, genl.EventSubClosed, genl.EventSubPriority,
	genl.EventListenerCreated, genl.EventListenerClosed,
}

// checkAllTypesSeen fails the test unless every event type appears in the
// logs together.
func checkAllTypesSeen(t *testing.T, logs ...*harness.EventLog) {
	t.Helper()
	seen := map[genl.EventType]bool{}
	for _, l := range logs {
		for _, ev := range l.Seen() {
			seen[ev.Type()] = true
		}
	}
	for _, typ := range allEventTypes {
		if !seen[typ] {
			t.Errorf("no %v event in the scenario", typ)
		}
	}
	if t.Failed() {
		for _, l := range logs {
			t.Logf("%s events:\n%s", l.Label(), l.Dump())
		}
	}
}

func TestEventsGenl(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newConnScenario(t)
	cl, sl := harness.Subscribe(t, s.top.Client, "client"), harness.Subscribe(t, s.top.Server, "server")
	s.run(t, cl, sl)
	checkAllTypesSeen(t, cl, sl)
}

// TestEventsDrainAfterLoss: after ErrEventsLost, Drain empties the socket,
// so the next event is a new one (not an old event that waited) and the
// kernel can report the next loss. Both socket kinds.
func TestEventsDrainAfterLoss(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			t.Parallel()
			top := harness.Pair(t, 1)
			l1 := top.Links[0]
			sub, err := harness.DialGenlConfig(t, &genl.Config{NetNS: top.Client.Name, Blocking: blocking}).
				Subscribe(&genl.SubscribeOptions{ReadBuffer: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Close() })
			ln := top.Server.ListenMPTCP(t, "0.0.0.0:0")
			server := netip.AddrPortFrom(l1.ServerV4, ln.Addr().(*net.TCPAddr).AddrPort().Port())
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			dial := func() netip.AddrPort {
				c, err := top.Client.DialMPTCP(ctx, t, l1.ClientV4.String()+":0", server.String())
				if err != nil {
					t.Fatalf("dial %s: %v", server, err)
				}
				return harness.Unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
			}
			// Far more events than the smallest buffer holds, unread.
			for range 50 {
				dial()
			}
			_ = sub.SetDeadline(time.Now().Add(testTimeout))
			var lost bool
			for !lost {
				if _, err := sub.Next(); errors.Is(err, genl.ErrEventsLost) {
					lost = true
				} else if err != nil {
					t.Fatalf("waiting for the loss: %v", err)
				}
			}
			if err := sub.Drain(time.Second); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			local := dial()
			_ = sub.SetDeadline(time.Now().Add(testTimeout))
			ev, err := sub.Next()
			if err != nil {
				t.Fatalf("the event after Drain: %v", err)
			}
			if c, ok := ev.(*genl.Created); !ok || harness.Unmap(c.Local) != local {
				t.Errorf("first event after Drain: %v, want CREATED of the new connection from %s", ev, local)
			}
		})
	}
}
