package test

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// Figures of the churn (issue 7); bench/churn runs the same scenario and
// reports timings.
const (
	churnIfaces   = 8
	churnPool     = 6 // addresses per interface that come and go
	churnEvents   = 2000
	churnDuration = 10 * time.Second
)

// TestLoadAddressChurn: 2,000 address additions and removals on 8
// interfaces within about 10 s end in a known address set; the daemon
// then has exactly the endpoints the policy's priorities give the
// kernel's 8 slots, owns all of them and nothing else, its state file
// agrees, and its memory did not grow without bound.
func TestLoadAddressChurn(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s, ifs := newLoadSetup(t, churnIfaces)
	plan := newChurnPlan(1, churnIfaces, churnPool, churnEvents)
	final := plan.finalAfter(len(plan.events))
	all := wanted(ifs, final)
	if len(all) <= genl.MaxEndpoints {
		// The seed is fixed; this guards the test's design: the cap and
		// the priorities must matter.
		t.Fatalf("the plan ends with %d wanted endpoints; want more than %d", len(all), genl.MaxEndpoints)
	}
	d := s.start(t)
	d.waitReady(t)
	d.waitEndpoints(t)
	before, _ := vmRSS(t, d.cmd.Process.Pid)

	plan.apply(t, s, ifs, churnDuration)
	st := checkConverged(t, d, firstSlots(all), len(all))

	after, peak := vmRSS(t, d.cmd.Process.Pid)
	t.Logf("daemon: %d reconciles; RSS before %s, after %s, peak %s", st.Reconciles, mib(before), mib(after), mib(peak))
	// Generous: only unbounded growth should fail this (figures: bench/churn).
	// The race detector's shadow memory grows with the heap, several times.
	factor, extra := int64(2), int64(20<<20)
	if raceEnabled {
		factor, extra = 4, 40<<20
	}
	if limit := factor*before + extra; after > limit {
		t.Errorf("daemon RSS grew from %s to %s, more than %d× + %s", mib(before), mib(after), factor, mib(extra))
	}
	if strings.Contains(d.logText(), "lost the rtnetlink subscription") {
		t.Logf("note: the daemon overflowed its default netlink buffer during the churn and resynced")
	}
}

// lostSubscription is the Watcher's log line when its rtnetlink socket
// overflowed (or failed otherwise) and it resubscribes and re-lists.
const lostSubscription = "lost the rtnetlink subscription; resubscribing and re-listing"

// TestLoadNetlinkFlood: with the daemon's rtnetlink receive buffer made
// tiny (the MPTCPD_TEST_NETLINK_RCVBUF hook), unpaced address changes
// overflow it; the daemon notices (ENOBUFS), resubscribes, re-lists
// everything and still ends with exactly the policy's endpoints.
func TestLoadNetlinkFlood(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s, ifs := newLoadSetup(t, churnIfaces)
	// Far more events than needed: bursts are applied until the daemon
	// has logged an overflow, and the rest are left out.
	plan := newChurnPlan(2, churnIfaces, churnPool, 5*churnEvents)
	// 1 byte: the kernel raises it to its minimum, a few messages.
	d := s.start(t, "MPTCPD_TEST_NETLINK_RCVBUF=1")
	d.waitReady(t)
	d.waitEndpoints(t)

	applied := 0
	for applied < len(plan.events) && !strings.Contains(d.logText(), lostSubscription) {
		next := min(applied+churnEvents, len(plan.events))
		plan.applyRange(t, s, ifs, applied, next, 0)
		applied = next
	}
	d.waitLog(t, lostSubscription)
	if !strings.Contains(d.logText(), "no buffer space available") {
		t.Errorf("the daemon lost its subscription, but not for ENOBUFS (no \"no buffer space available\" in its log)")
	}
	all := wanted(ifs, plan.finalAfter(applied))
	st := checkConverged(t, d, firstSlots(all), len(all))
	t.Logf("%d events applied; %d resubscriptions logged; %d reconciles", applied,
		strings.Count(d.logText(), lostSubscription), st.Reconciles)
}

// TestLoadKillRestart: after kill -9 the restarted daemon takes its
// endpoints back from the state file (it logs that, status shows them
// owned, their ids do not change: nothing is re-created or duplicated),
// catches up with what changed while it was dead, and never touches
// endpoints added by others before, during or after its death.
func TestLoadKillRestart(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s, ifs := newLoadSetup(t, 3)
	ld0, ld1, ld2 := ifs[0], ifs[1], ifs[2]
	s.ns.AddAddr(t, "ld0", "10.100.0.1/24")
	s.ns.AddAddr(t, "ld0", "10.100.1.1/24")
	s.ns.AddAddr(t, "ld1", "10.101.0.1/24")
	s.ns.AddAddr(t, "ld2", "2001:db8:102::1/64")
	// Foreign before the daemon: one the policy does not want, one it
	// wants (it stays the other manager's).
	s.ipMptcp(t, "endpoint", "add", "10.99.0.1", "signal")
	s.ipMptcp(t, "endpoint", "add", "10.101.0.1", "subflow")
	foreign := []genl.Endpoint{ep("10.99.0.1", fSignal, 0), ep("10.101.0.1", fSubflow, 0)}
	owned := []genl.Endpoint{
		ep("10.100.0.1", ld0.flags, ld0.index),
		ep("10.100.1.1", ld0.flags, ld0.index),
		ep("2001:db8:102::1", ld2.flags, ld2.index),
	}

	d := s.start(t)
	d.waitReady(t)
	ids := idsOf(d.waitEndpoints(t, joinEndpoints(foreign, owned)...))
	d.waitStatus(t, "3 owned endpoints", func(st daemon.Status) bool { return len(st.Owned) == 3 })

	// kill -9: no cleanup, the endpoints stay.
	d.signal(t, syscall.SIGKILL)
	if code := d.wait(t); code != -1 {
		t.Fatalf("the daemon exited with %d after SIGKILL, want -1 (killed)", code)
	}
	checkNoDuplicates(t, s.endpoints(t))
	// While it is dead: a foreign endpoint through genl, one wanted
	// address goes (its endpoint is now the dead daemon's leftover), a
	// new one comes.
	if err := s.gc.AddEndpoint(genl.Endpoint{Addr: addr("10.98.0.1"), Flags: genl.FlagSignal}); err != nil {
		t.Fatalf("adding a foreign endpoint: %v", err)
	}
	foreign = append(foreign, ep("10.98.0.1", fSignal, 0))
	s.ns.DelAddr(t, "ld0", "10.100.1.1/24")
	s.ns.AddAddr(t, "ld1", "10.101.5.1/24")
	owned = []genl.Endpoint{
		ep("10.100.0.1", ld0.flags, ld0.index),
		ep("10.101.5.1", ld1.flags, ld1.index),
		ep("2001:db8:102::1", ld2.flags, ld2.index),
	}

	d = s.start(t)
	d.waitReady(t)
	d.waitLog(t, "adopting endpoints recorded in the state file")
	eps := d.waitEndpoints(t, joinEndpoints(foreign, owned)...)
	checkNoDuplicates(t, eps)
	checkIDs(t, eps, ids) // adopted and foreign ones kept their ids
	for _, e := range eps {
		ids[e.Addr.String()] = e.ID
	}
	st := d.waitStatus(t, "3 owned and 3 foreign endpoints", func(st daemon.Status) bool {
		return len(st.Owned) == 3 && len(st.Foreign) == 3
	})
	checkOwned(t, st, ids, owned)

	// Foreign again while it runs, and an address for it.
	s.ipMptcp(t, "endpoint", "add", "10.97.0.1", "subflow")
	foreign = append(foreign, ep("10.97.0.1", fSubflow, 0))
	s.ns.AddAddr(t, "ld2", "10.102.0.1/24")
	owned = append(owned, ep("10.102.0.1", ld2.flags, ld2.index))
	eps = d.waitEndpoints(t, joinEndpoints(foreign, owned)...)
	checkIDs(t, eps, ids)
	for _, e := range eps {
		ids[e.Addr.String()] = e.ID
	}
	// A second kill -9 as soon as the new endpoint is in the kernel,
	// possibly before the save after the add: the add was recorded as
	// pending before it was made, so the restart still takes it back.
	d.signal(t, syscall.SIGKILL)
	d.wait(t)
	d = s.start(t)
	d.waitReady(t)
	st = d.waitStatus(t, "4 owned and 4 foreign endpoints", func(st daemon.Status) bool {
		return len(st.Owned) == 4 && len(st.Foreign) == 4
	})
	eps = s.endpoints(t)
	if diff := gocmp.Diff(sortedEndpoints(joinEndpoints(foreign, owned)), withoutIDs(eps), cmpNetip()); diff != "" {
		t.Errorf("endpoints after the second restart (-want +got):\n%s", diff)
	}
	checkIDs(t, eps, ids)
	checkOwned(t, st, ids, owned)

	// A clean stop removes only its own.
	d.stop(t, syscall.SIGTERM)
	eps = s.endpoints(t)
	if diff := gocmp.Diff(sortedEndpoints(foreign), withoutIDs(eps), cmpNetip()); diff != "" {
		t.Errorf("endpoints after the stop (-want +got):\n%s", diff)
	}
	checkIDs(t, eps, ids)
}

// joinEndpoints returns the endpoints of all lists in one new slice.
func joinEndpoints(lists ...[]genl.Endpoint) []genl.Endpoint {
	var out []genl.Endpoint
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// idsOf maps address → id.
func idsOf(eps []genl.Endpoint) map[string]uint8 {
	ids := map[string]uint8{}
	for _, e := range eps {
		ids[e.Addr.String()] = e.ID
	}
	return ids
}

// checkNoDuplicates fails when two endpoints share an address and port.
func checkNoDuplicates(t *testing.T, eps []genl.Endpoint) {
	t.Helper()
	seen := map[netip.AddrPort]uint8{}
	for _, e := range eps {
		k := netip.AddrPortFrom(e.Addr, e.Port)
		if id, dup := seen[k]; dup {
			t.Errorf("endpoints %d and %d are both for %s", id, e.ID, k)
		}
		seen[k] = e.ID
	}
}

// checkOwned compares the status's owned endpoints, with ids, to want.
func checkOwned(t *testing.T, st daemon.Status, ids map[string]uint8, want []genl.Endpoint) {
	t.Helper()
	var w, got []string
	for _, e := range want {
		w = append(w, fmt.Sprintf("%d %s", ids[e.Addr.String()], e.Addr))
	}
	for _, o := range st.Owned {
		got = append(got, fmt.Sprintf("%d %s", o.ID, o.Addr))
	}
	less := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := gocmp.Diff(w, got, less); diff != "" {
		t.Errorf("owned endpoints in the status (-want +got):\n%s", diff)
	}
}
