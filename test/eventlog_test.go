package test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// eventLog collects the mptcp_pm events of one namespace through a genl
// Subscription. A goroutine reads the subscription; the test goroutine
// alone calls waitFor, which keeps every event it saw in order.
type eventLog struct {
	label string // "client" or "server", for messages
	ns    *harness.NS
	ch    chan genl.Event
	errc  chan error
	seen  []genl.Event
}

// subscribe starts collecting the events of ns. The subscription is joined
// when subscribe returns, so events caused afterwards are not missed.
func subscribe(t testing.TB, ns *harness.NS, label string) *eventLog {
	t.Helper()
	sub, err := dialGenl(t, ns).Subscribe(nil)
	if err != nil {
		t.Fatalf("%s: Subscribe: %v", label, err)
	}
	l := &eventLog{label: label, ns: ns, ch: make(chan genl.Event, 256), errc: make(chan error, 1)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := sub.Next()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// ErrEventsLost and anything else: the test cannot trust
				// its view any more.
				l.errc <- err
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

// mark returns a position in the log: waitFor(mark, ...) considers only
// events that arrived after it.
func (l *eventLog) mark() int { return len(l.seen) }

// waitFor returns the first event at or after position from that matches,
// waiting for new events until testTimeout. It fails the test, listing the
// events seen, when none comes.
func (l *eventLog) waitFor(t testing.TB, from int, desc string, match func(genl.Event) bool) genl.Event {
	t.Helper()
	for _, ev := range l.seen[from:] {
		if match(ev) {
			return ev
		}
	}
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for {
		select {
		case ev := <-l.ch:
			l.seen = append(l.seen, ev)
			if match(ev) {
				return ev
			}
		case err := <-l.errc:
			t.Fatalf("%s: waiting for %s: receiving events: %v\nevents so far:\n%s", l.label, desc, err, l.dump())
		case <-timer.C:
			t.Fatalf("%s: no %s within %v\nevents so far:\n%s", l.label, desc, testTimeout, l.dump())
		}
	}
}

// dump renders the events seen, one per line, for failure messages.
func (l *eventLog) dump() string {
	var b strings.Builder
	for i, ev := range l.seen {
		fmt.Fprintf(&b, "\t%d: %s\n", i, describeEvent(ev))
	}
	if b.Len() == 0 {
		return "\t(none)\n"
	}
	return b.String()
}

// describeEvent renders every attribute an event carried.
func describeEvent(ev genl.Event) string {
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
