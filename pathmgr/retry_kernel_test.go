package pathmgr_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// tc runs tc with args inside ns and fails the test unless it exits 0.
func tc(t *testing.T, ns *harness.NS, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), harness.Timeout)
	defer cancel()
	stdout, stderr, code, err := ns.Run(ctx, "tc", args...)
	if err != nil || code != 0 {
		t.Fatalf("tc %s in %s: exit %d, %v\n%s%s", strings.Join(args, " "), ns.Name, code, err, stdout, stderr)
	}
}

// subflowOf returns the Manager's view of the client's subflow from local
// (any port), if it tracks one.
func subflowOf(m *pathmgr.Manager, token uint32, local netip.Addr) (pathmgr.SubflowStatus, bool) {
	for _, c := range m.Status().Connections {
		if c.Token != tokenHex(token) {
			continue
		}
		for _, sf := range c.Subflows {
			if !sf.Initial && sf.Local.Addr().Unmap() == local {
				return sf, true
			}
		}
	}
	return pathmgr.SubflowStatus{}, false
}

// TestKernelRetryBacksOff: the server drops everything it sends on its
// link-2 veth, so the client's extra subflow over link 2 fails; the
// Manager retries it with backoff (a handful of attempts, no storm), and
// once the filter is gone a retry gets through.
func TestKernelRetryBacksOff(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	l2 := s.top.Links[1]
	// Neighbour resolution over link 2 fails fast (ARP is dropped too),
	// which fails the join's SYN with EHOSTUNREACH.
	s.top.Client.Sysctl(t, "net.ipv4.neigh."+l2.ClientIf+".retrans_time_ms", "100")
	s.top.Client.Sysctl(t, "net.ipv4.neigh."+l2.ClientIf+".mcast_solicit", "1")
	s.top.Client.Sysctl(t, "net.ipv4.neigh."+l2.ClientIf+".ucast_solicit", "1")
	s.top.Client.Sysctl(t, "net.ipv4.tcp_syn_retries", "1")
	// This kernel has neither tc actions (gact) nor matchall, so an
	// ingress filter cannot drop; a pfifo of length 0 as the root qdisc of
	// the server's link-2 veth drops everything the server sends there
	// (ARP replies, SYN-ACKs), which kills link 2 as surely.
	tc(t, s.top.Server, "qdisc", "add", "dev", l2.ServerIf, "root", "pfifo", "limit", "0")

	m := startManager(t, s.top.Client, pathmgr.Config{Retry: pathmgr.RetryPolicy{Initial: 50 * time.Millisecond, Max: 400 * time.Millisecond}})
	s.connect(t)

	// At least two failed attempts, each retried.
	var sf pathmgr.SubflowStatus
	waitUntil(t, "two failed attempts over link 2", func() bool {
		var ok bool
		sf, ok = subflowOf(m, s.ctok, l2.ClientV4)
		return ok && sf.Failures >= 2
	})
	st := m.Status()
	creates := st.Counters.Actions.CreateSubflow
	if creates >= 20 {
		t.Errorf("%d create attempts after %d failures: a retry storm", creates, sf.Failures)
	}
	// Every attempt but the first follows a failure, refused by the
	// kernel (Counters.Failures) or closed (the subflow's Failures).
	if failed := uint64(sf.Failures) + st.Counters.Failures.CreateSubflow; creates > failed+1 {
		t.Errorf("%d create attempts after %d failures (%d refused): retried without waiting for a failure", creates, sf.Failures, st.Counters.Failures.CreateSubflow)
	}
	if _, ok := s.cl.Within(t, 0, 0, func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.ctok && e.Local.Addr().Unmap() == l2.ClientV4
	}); ok {
		t.Fatal("a subflow over link 2 got established through the drop filter")
	}
	t.Logf("before lifting the filter: %d creates, subflow %+v, failures %+v", creates, sf, st.Counters.Failures)

	// The path heals: a retry establishes the subflow.
	mark := s.cl.Mark()
	tc(t, s.top.Server, "qdisc", "del", "dev", l2.ServerIf, "root")
	s.cl.WaitFor(t, mark, "SUB_ESTABLISHED over link 2 after the filter is gone", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.ctok && e.Local.Addr().Unmap() == l2.ClientV4
	})
	waitUntil(t, "the subflow up in Status", func() bool {
		sf, ok := subflowOf(m, s.ctok, l2.ClientV4)
		return ok && sf.State == pathmgr.SubflowUp
	})
	harness.Exchange(t, s.conn, s.srv, "over the healed path")
}

// TestKernelNoCreateWhileInterfaceDown: link 2 goes down mid-connection;
// its subflow closes, and while it stays down the Manager asks for no new
// subflow, however many times it decides again.
func TestKernelNoCreateWhileInterfaceDown(t *testing.T) {
	t.Parallel()
	s := newTopology(t)
	m := startManager(t, s.top.Client, pathmgr.Config{Retry: pathmgr.RetryPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	s.connect(t)
	l1, l2 := s.top.Links[0], s.top.Links[1]
	est := s.subEstablished(t, s.cl, s.ctok, l2.ClientV4, s.server)

	mark := s.cl.Mark()
	s.top.Client.LinkDown(t, l2.ClientIf)
	s.cl.WaitFor(t, mark, "SUB_CLOSED of the link-2 subflow", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowClosed)
		return ok && e.Token == s.ctok && e.Local == est.Local
	})
	waitUntil(t, "the link-2 subflow gone from Status", func() bool {
		sf, ok := subflowOf(m, s.ctok, l2.ClientV4)
		return !ok || sf.State != pathmgr.SubflowUp && sf.State != pathmgr.SubflowPending
	})
	before, _ := m.Counts()

	// Make the Manager decide again a few times with link 2 still down:
	// address changes on link 1 change its local view each time.
	for i := range 3 {
		c, _ := m.Counts()
		addr := netip.AddrFrom4([4]byte{10, 0, 1, byte(100 + i)})
		s.top.Client.AddAddr(t, l1.ClientIf, netip.PrefixFrom(addr, 24).String())
		waitUntil(t, "a decision after an address change", func() bool {
			now, _ := m.Counts()
			return now.Decisions > c.Decisions
		})
		harness.Exchange(t, s.conn, s.srv, "while link 2 is down")
	}
	after, _ := m.Counts()
	if after.Actions.CreateSubflow != before.Actions.CreateSubflow {
		t.Errorf("create attempts went from %d to %d while link 2 was down", before.Actions.CreateSubflow, after.Actions.CreateSubflow)
	}
	if ev, ok := s.cl.Within(t, mark, 0, func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.ctok && e.Local.Addr().Unmap() == l2.ClientV4
	}); ok {
		t.Errorf("got %s while link 2 was down", harness.Describe(ev))
	}

	// Back up: a new subflow over link 2.
	mark = s.cl.Mark()
	s.top.Client.LinkUp(t, l2.ClientIf)
	s.cl.WaitFor(t, mark, "a new SUB_ESTABLISHED over link 2", func(ev genl.Event) bool {
		e, ok := ev.(*genl.SubflowEstablished)
		return ok && e.Token == s.ctok && e.Local.Addr().Unmap() == l2.ClientV4
	})
}
