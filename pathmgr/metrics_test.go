package pathmgr

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// TestManagerEventCountsAndTracked: events are counted by type, their sum
// is Counters.Events, and Tracked counts the subflows by state.
func TestManagerEventCountsAndTracked(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseBackup}}}, nil)
	r.ev.send(created(tok), established(tok))
	eventually(t, "two creates", func() bool { return len(r.k.ops("create")) == 2 })
	r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)})
	eventually(t, "three events", func() bool { c, _ := r.m.Counts(); return c.Events == 3 })

	want := []EventCount{
		{Type: genl.EventCreated, N: 1},
		{Type: genl.EventEstablished, N: 1},
		{Type: genl.EventSubEstablished, N: 1},
	}
	if diff := cmp.Diff(want, r.m.EventCounts()); diff != "" {
		t.Errorf("EventCounts (-want +got):\n%s", diff)
	}
	// The initial subflow and the one established are up; the backup one
	// asked for is pending.
	want2 := TrackedCounts{Connections: 1, Subflows: map[SubflowState]int{SubflowUp: 2, SubflowPending: 1}}
	if diff := cmp.Diff(want2, r.m.Tracked()); diff != "" {
		t.Errorf("Tracked (-want +got):\n%s", diff)
	}
}
