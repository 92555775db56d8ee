package endpoints

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

// TestReconcilerTotals: the totals for metrics add up over reconciles,
// counting the failed calls and the reconciles that had any.
func TestReconcilerTotals(t *testing.T) {
	k := newFakeKernel()
	k.failAdd = map[netip.Addr]error{ip("10.0.2.1"): errors.New("refused")}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks())})
	type totals struct{ Reconciles, Failed, Errors uint64 }
	for _, step := range []struct {
		name string
		fail bool
		want totals
	}{
		{"first, failing", true, totals{1, 1, 1}},
		{"second, failing", true, totals{2, 2, 2}},
		{"clean", false, totals{3, 2, 2}},
	} {
		if !step.fail {
			k.failAdd = nil
		}
		_ = r.Reconcile(t.Context()) // the error is in Status
		st := r.Status()
		if diff := cmp.Diff(step.want, totals{st.Reconciles, st.FailedReconciles, st.ErrorsTotal}); diff != "" {
			t.Errorf("%s: totals (-want +got):\n%s", step.name, diff)
		}
		if st.TotalDuration < st.Duration {
			t.Errorf("%s: TotalDuration %v is below the last Duration %v", step.name, st.TotalDuration, st.Duration)
		}
	}
}

// TestWatcherCounts: notifications are counted by kind, closed channels
// are not, and a followState without counters counts nothing.
func TestWatcherCounts(t *testing.T) {
	w := &Watcher{}
	f := &followState{counts: &w.events}
	f.onLink(true)
	f.onAddr(true)
	f.onAddr(true)
	f.onRoute(netlink.RouteUpdate{}, true)
	f.onRoute(netlink.RouteUpdate{}, false)
	f.onLink(false)
	(&followState{}).onLink(true)
	w.resubscribes.Add(2)
	if diff := cmp.Diff(WatcherCounts{Link: 1, Addr: 2, Route: 1, Resubscribes: 2}, w.Counts()); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
}
