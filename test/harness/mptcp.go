package harness

// Helpers for tests that run MPTCP connections between namespaces: a genl
// client in a namespace, connect and exchange, the userspace path manager
// switch, and a log of mptcp_pm events to wait on.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Timeout bounds every wait for the kernel, so that a broken product fails
// a test instead of hanging it. It is generous for -race and parallel
// tests; no test asserts on timing with it.
const Timeout = 30 * time.Second

// UseUserspacePM makes new MPTCP sockets of ns use the userspace path
// manager: net.mptcp.path_manager=userspace where the kernel has it
// (6.15+), else net.mptcp.pm_type=1. Call it before creating sockets.
func UseUserspacePM(t testing.TB, ns *NS) {
	t.Helper()
	// The sysctl files exist in every namespace or in none.
	if _, err := os.Stat("/proc/sys/net/mptcp/path_manager"); err == nil {
		ns.Sysctl(t, "net.mptcp.path_manager", "userspace")
		return
	}
	ns.Sysctl(t, "net.mptcp.pm_type", "1")
}

// DialGenl returns a genl client in ns, closed when the test ends.
func DialGenl(t testing.TB, ns *NS) *genl.Client {
	t.Helper()
	return DialGenlConfig(t, &genl.Config{NetNS: ns.Name})
}

// DialGenlConfig opens a genl client with cfg; it is closed when the test
// ends.
func DialGenlConfig(t testing.TB, cfg *genl.Config) *genl.Client {
	t.Helper()
	c, err := genl.Dial(cfg)
	if err != nil {
		t.Fatalf("genl.Dial(%+v): %v", *cfg, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Connect dials ln (at raddr) from laddr inside ns with MPTCP and returns
// both ends; both are closed when the test ends.
func Connect(ctx context.Context, t testing.TB, ns *NS, laddr string, ln net.Listener, raddr string) (client, server net.Conn) {
	t.Helper()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err := ns.DialMPTCP(ctx, t, laddr, raddr)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	var a accepted
	select {
	case a = <-ch:
	case <-ctx.Done():
		t.Fatalf("the server accepted no connection: %v", ctx.Err())
	}
	if a.err != nil {
		t.Fatalf("accepting: %v", a.err)
	}
	t.Cleanup(func() { _ = a.c.Close() })
	deadline := time.Now().Add(Timeout)
	_ = client.SetDeadline(deadline)
	_ = a.c.SetDeadline(deadline)
	return client, a.c
}

// Exchange sends msg both ways; a connection becomes fully established
// (and gets its ESTABLISHED event) only once data flowed.
func Exchange(t testing.TB, client, server net.Conn, msg string) {
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
	}
}

// EventLog collects the mptcp_pm events of one namespace. A goroutine
// reads the subscription; only the test goroutine calls WaitFor.
type EventLog struct {
	label string
	ch    chan genl.Event
	errc  chan error
	seen  []genl.Event
}

// Subscribe starts collecting the events of ns; the group is joined when
// it returns.
func Subscribe(t testing.TB, ns *NS, label string) *EventLog {
	t.Helper()
	return SubscribeConfig(t, &genl.Config{NetNS: ns.Name}, label)
}

// SubscribeConfig is Subscribe through a client opened with cfg (e.g.
// Blocking); the subscription's Close must end the reader for the test
// to finish.
func SubscribeConfig(t testing.TB, cfg *genl.Config, label string) *EventLog {
	t.Helper()
	sub, err := DialGenlConfig(t, cfg).Subscribe(nil)
	if err != nil {
		t.Fatalf("%s: Subscribe: %v", label, err)
	}
	l := &EventLog{label: label, ch: make(chan genl.Event, 1024), errc: make(chan error, 1)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := sub.Next()
			if err != nil {
				// ErrEventsLost and anything else: the test cannot trust
				// its view any more.
				if !errors.Is(err, net.ErrClosed) {
					l.errc <- err
				}
				return
			}
			select {
			case l.ch <- ev:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		_ = sub.Close()
		<-done
	})
	return l
}

// Label is the name given to Subscribe, for messages.
func (l *EventLog) Label() string { return l.label }

// Mark returns a position: WaitFor(mark, ...) looks only at later events.
func (l *EventLog) Mark() int { return len(l.seen) }

// Seen returns the events seen so far.
func (l *EventLog) Seen() []genl.Event { return l.seen }

// Drain takes in the events that arrived by now without waiting.
func (l *EventLog) Drain() {
	for {
		select {
		case ev := <-l.ch:
			l.seen = append(l.seen, ev)
		default:
			return
		}
	}
}

// WaitFor returns the first event at or after from that matches, waiting
// up to Timeout; it fails the test, listing the events, when none comes.
func (l *EventLog) WaitFor(t testing.TB, from int, desc string, match func(genl.Event) bool) genl.Event {
	t.Helper()
	ev, ok := l.Within(t, from, Timeout, match)
	if !ok {
		t.Fatalf("%s: no %s within %v\nevents so far:\n%s", l.label, desc, Timeout, l.Dump())
	}
	return ev
}

// Within is WaitFor that reports a timeout instead of failing.
func (l *EventLog) Within(t testing.TB, from int, d time.Duration, match func(genl.Event) bool) (genl.Event, bool) {
	t.Helper()
	for _, ev := range l.seen[from:] {
		if match(ev) {
			return ev, true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-l.ch:
			l.seen = append(l.seen, ev)
			if match(ev) {
				return ev, true
			}
		case err := <-l.errc:
			t.Fatalf("%s: receiving events: %v\nevents so far:\n%s", l.label, err, l.Dump())
		case <-timer.C:
			return nil, false
		}
	}
}

// Dump renders the events seen, one per line.
func (l *EventLog) Dump() string {
	var b strings.Builder
	for i, ev := range l.seen {
		fmt.Fprintf(&b, "\t%d: %s\n", i, Describe(ev))
	}
	if b.Len() == 0 {
		return "\t(none)\n"
	}
	return b.String()
}

// Describe renders an event's attributes.
func Describe(ev genl.Event) string {
	f := ev.Fields()
	var b strings.Builder
	b.WriteString(f.Type.String())
	p := f.Present
	if p.Has(genl.AttrToken) {
		fmt.Fprintf(&b, " token=%08x", f.Token)
	}
	if p.Has(genl.AttrLocID) {
		fmt.Fprintf(&b, " locid=%d", f.LocalID)
	}
	if p.Has(genl.AttrRemID) {
		fmt.Fprintf(&b, " remid=%d", f.RemoteID)
	}
	if f.Local.IsValid() || f.Local.Port() != 0 {
		fmt.Fprintf(&b, " local=%s", f.Local)
	}
	if f.Remote.IsValid() || f.Remote.Port() != 0 {
		fmt.Fprintf(&b, " remote=%s", f.Remote)
	}
	if p.Has(genl.AttrBackup) {
		fmt.Fprintf(&b, " backup=%d", f.Backup)
	}
	if p.Has(genl.AttrError) {
		fmt.Fprintf(&b, " error=%d", f.Error)
	}
	if p.Has(genl.AttrFlags) {
		fmt.Fprintf(&b, " flags=%#x", uint16(f.Flags))
	}
	if p.Has(genl.AttrTimeout) {
		fmt.Fprintf(&b, " timeout=%d", f.Timeout)
	}
	if p.Has(genl.AttrIfIdx) {
		fmt.Fprintf(&b, " ifindex=%d", f.Ifindex)
	}
	if p.Has(genl.AttrResetReason) {
		fmt.Fprintf(&b, " reset_reason=%d", f.ResetReason)
	}
	if p.Has(genl.AttrResetFlags) {
		fmt.Fprintf(&b, " reset_flags=%#x", f.ResetFlags)
	}
	if p.Has(genl.AttrServerSide) {
		fmt.Fprintf(&b, " server_side=%d", f.ServerSide)
	}
	return b.String()
}

// Established waits for the ESTABLISHED event of the connection whose
// local end is local (IPv4-mapped addresses compare as IPv4) and returns
// its token.
func (l *EventLog) Established(t testing.TB, local netip.AddrPort) uint32 {
	t.Helper()
	ev := l.WaitFor(t, 0, "ESTABLISHED from "+local.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.Established)
		return ok && Unmap(e.Local) == local
	})
	return ev.Fields().Token
}

// Unmap turns an IPv4-mapped IPv6 address into the IPv4 one.
func Unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TwoSubflows is an MPTCP connection across a Pair with two links whose
// client opened a second, backup subflow from its link-2 address (address
// id 5) to the server's link-1 address through the userspace path manager.
type TwoSubflows struct {
	// Client and Server are the two ends' sockets.
	Client, Server net.Conn
	// ClientAddr and ServerAddr are the initial subflow's ends.
	ClientAddr, ServerAddr netip.AddrPort
	// ClientToken and ServerToken are the tokens of ESTABLISHED.
	ClientToken, ServerToken uint32
	// Second is the client's SUB_ESTABLISHED of the second subflow.
	Second *genl.SubflowEstablished
}

// OpenTwoSubflows switches both namespaces of top (two links) to the
// userspace path manager and opens a TwoSubflows connection; "hello" has
// crossed it before the second subflow opens.
func OpenTwoSubflows(ctx context.Context, t testing.TB, top *Topology) TwoSubflows {
	t.Helper()
	UseUserspacePM(t, top.Client)
	UseUserspacePM(t, top.Server)
	cl, sl := Subscribe(t, top.Client, "client"), Subscribe(t, top.Server, "server")
	l1, l2 := top.Links[0], top.Links[1]
	ln := top.Server.ListenMPTCP(t, "0.0.0.0:0")
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	c := TwoSubflows{ServerAddr: netip.AddrPortFrom(l1.ServerV4, port)}
	c.Client, c.Server = Connect(ctx, t, top.Client, l1.ClientV4.String(), ln, c.ServerAddr.String())
	Exchange(t, c.Client, c.Server, "hello")
	c.ClientAddr = Unmap(c.Client.LocalAddr().(*net.TCPAddr).AddrPort())
	c.ClientToken, c.ServerToken = cl.Established(t, c.ClientAddr), sl.Established(t, c.ServerAddr)
	if err := DialGenl(t, top.Client).CreateSubflow(c.ClientToken,
		genl.Endpoint{ID: 5, Addr: l2.ClientV4, Flags: genl.FlagBackup}, c.ServerAddr); err != nil {
		t.Fatalf("CreateSubflow: %v", err)
	}
	isSubEstablished := func(ev genl.Event) bool {
		_, ok := ev.(*genl.SubflowEstablished)
		return ok
	}
	c.Second = cl.WaitFor(t, 0, "client SUB_ESTABLISHED", isSubEstablished).(*genl.SubflowEstablished)
	sl.WaitFor(t, 0, "server SUB_ESTABLISHED", isSubEstablished)
	return c
}
