package pathmgr

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

func evConn(token uint32, local, remote string, server bool) genl.Connection {
	c := genl.Connection{Token: token, Local: ap(local), Remote: ap(remote), ServerSide: server}
	if server {
		c.Flags = genl.EventFlagServerSide
	}
	return c
}

func created(token uint32) *genl.Created {
	return &genl.Created{Connection: evConn(token, "10.0.1.1:40000", "203.0.113.9:443", false)}
}

func established(token uint32) *genl.Established {
	return &genl.Established{Connection: evConn(token, "10.0.1.1:40000", "203.0.113.9:443", false)}
}

func subEv(token uint32, local, remote string, lid, rid uint8) genl.Subflow {
	return genl.Subflow{Token: token, Local: ap(local), Remote: ap(remote), LocalID: lid, RemoteID: rid}
}

var cmpState = []cmp.Option{cmpNetip, cmp.AllowUnexported(ConnState{})}

func TestTrackerLifecycle(t *testing.T) {
	tr := NewTracker(TrackerConfig{Retry: RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second}})
	steps := []struct {
		ev         genl.Event
		now        time.Time
		wantDecide bool
	}{
		{created(tok), at(0), false},
		{established(tok), at(1), true},
		{&genl.Announced{Token: tok, RemoteID: 3, Remote: ap("198.51.100.7:0")}, at(2), true},
		{&genl.Announced{Token: tok, RemoteID: 2, Remote: ap("198.51.100.8:8443")}, at(2), true},
		{&genl.Announced{Token: 0x999, RemoteID: 2, Remote: ap("198.51.100.8:8443")}, at(2), false}, // unknown token
	}
	for i, s := range steps {
		if _, d := tr.Apply(s.ev, s.now); d != s.wantDecide {
			t.Errorf("step %d (%s): decide %v, want %v", i, s.ev.Type(), d, s.wantDecide)
		}
	}
	// The Manager asks for two subflows.
	tr.Begin([]Action{
		create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		create("10.0.3.1", 2, 4, "203.0.113.9:443", true),
	}, at(3))
	// One comes up; the other is refused by the peer.
	tr.Apply(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, at(4))
	if _, d := tr.Apply(&genl.SubflowClosed{Subflow: subEv(tok, "10.0.3.1:5002", "203.0.113.9:443", 2, 0)}, at(5)); !d {
		t.Error("a failed subflow of ours asks for no decision")
	}
	// The peer joins from elsewhere to us (not ours) and withdraws id 2.
	tr.Apply(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.1.1:40000", "198.51.100.7:6000", 0, 3)}, at(6))
	tr.Apply(&genl.Removed{Token: tok, RemoteID: 2}, at(7))

	got, ok := tr.Get(tok)
	if !ok {
		t.Fatal("connection not tracked")
	}
	want := ConnState{
		Token: tok, Side: ClientSide, Established: true,
		Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"),
		RemoteAddrs: []RemoteAddr{{ID: 3, Addr: ap("198.51.100.7:0")}},
		IDs:         []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 2, Addr: ip("10.0.3.1")}},
		Created:     at(0),
		Subflows: []Subflow{
			{Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"), State: SubflowUp, Initial: true},
			{Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443"), LocalID: 1, Ifindex: 3, State: SubflowUp, Ours: true, Since: at(4)},
			{Local: ap("10.0.3.1:0"), Remote: ap("203.0.113.9:443"), LocalID: 2, Ifindex: 4, Backup: true, State: SubflowFailed, Ours: true,
				Failures: 1, Since: at(5), RetryAt: at(5).Add(Backoff(tr.retry, 1, seedOf(tok, pathKey{ip("10.0.3.1"), ap("203.0.113.9:443")}, 1)))},
			{Local: ap("10.0.1.1:40000"), Remote: ap("198.51.100.7:6000"), RemoteID: 3, State: SubflowUp, Since: at(6)},
		},
	}
	if diff := cmp.Diff(want, got, cmpState...); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if r := got.Subflows[2].RetryAt.Sub(at(5)); r < 80*time.Millisecond || r > 120*time.Millisecond {
		t.Errorf("first retry after %v, want 100ms ±20%%", r)
	}

	// A destroy we asked for closes without a retry.
	tr.Begin([]Action{DestroySubflow{Token: tok, Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443")}}, at(8))
	tr.Apply(&genl.SubflowClosed{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, at(9))
	// The peer's subflow closes: forgotten.
	tr.Apply(&genl.SubflowClosed{Subflow: subEv(tok, "10.0.1.1:40000", "198.51.100.7:6000", 0, 3)}, at(9))
	got, _ = tr.Get(tok)
	if len(got.Subflows) != 2 || !got.Subflows[0].Initial || got.Subflows[1].State != SubflowFailed {
		t.Errorf("after closes: %+v", got.Subflows)
	}

	// CLOSED frees the memory.
	tr.Apply(&genl.Closed{Token: tok}, at(10))
	if tr.Len() != 0 {
		t.Errorf("Len() = %d after CLOSED, want 0", tr.Len())
	}
	if _, ok := tr.Get(tok); ok {
		t.Error("closed connection still tracked")
	}
}

// TestTrackerRetryCountdown: failures in a row grow the backoff; a
// subflow that stayed up long resets it; MaxAttempts gives up.
func TestTrackerRetryCountdown(t *testing.T) {
	p := RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, MaxAttempts: 4}
	tr := NewTracker(TrackerConfig{Retry: p})
	tr.Apply(established(tok), t0)
	c := create("10.0.2.1", 1, 3, "203.0.113.9:443", false)
	now := t0
	var delays []time.Duration
	for range 3 {
		tr.Begin([]Action{c}, now)
		tr.Apply(&genl.SubflowClosed{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, now)
		st := tr.conn(tok)
		sf := st.findPath(pathKey{ip("10.0.2.1"), ap("203.0.113.9:443")})
		delays = append(delays, sf.RetryAt.Sub(now))
		now = sf.RetryAt
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] < delays[i-1]*3/2 {
			t.Errorf("delays %v do not grow", delays)
		}
	}
	// It comes up and stays up for longer than Max: the count restarts.
	tr.Begin([]Action{c}, now)
	tr.Apply(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, now)
	now = now.Add(time.Minute)
	tr.Apply(&genl.SubflowClosed{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, now)
	sf := tr.conn(tok).findPath(pathKey{ip("10.0.2.1"), ap("203.0.113.9:443")})
	if sf.Failures != 1 || sf.State != SubflowFailed {
		t.Errorf("after a long life: failures %d state %s, want 1 failed", sf.Failures, sf.State)
	}
	// Three more failures in a row reach MaxAttempts.
	for range 3 {
		tr.Begin([]Action{c}, now)
		if !tr.Finish(c, errors.New("boom"), now) {
			t.Error("Finish of a failed create asks for no decision")
		}
	}
	if sf.State != SubflowAbandoned {
		t.Errorf("after %d failures: %s, want abandoned", sf.Failures, sf.State)
	}
}

func TestTrackerFinish(t *testing.T) {
	c := create("10.0.2.1", 1, 3, "203.0.113.9:443", false)
	ann := Announce{Token: tok, Addr: ip("10.0.2.1"), ID: 1}
	unmanaged := &genl.Error{Op: "x", Errno: unix.EINVAL, Message: "invalid request; userspace PM not selected"}
	gone := &genl.Error{Op: "x", Errno: unix.EINVAL, Message: "invalid token", Kind: genl.ErrNotFound}
	mismatch := &genl.Error{Op: "x", Errno: unix.EINVAL, Message: "did not match address and id"}
	setup := func() *Tracker {
		tr := NewTracker(TrackerConfig{})
		tr.Apply(established(tok), t0)
		return tr
	}

	tr := setup()
	tr.Begin([]Action{c}, t0)
	tr.Finish(c, unmanaged, t0)
	if st := tr.conn(tok); !st.Unmanaged {
		t.Error("userspace PM not selected: not marked unmanaged")
	}

	tr = setup()
	tr.Begin([]Action{c}, t0)
	tr.Finish(c, gone, t0)
	if tr.Len() != 0 {
		t.Error("invalid token: connection kept")
	}

	tr = setup()
	tr.Begin([]Action{c}, t0)
	tr.Finish(c, nil, t0)
	if sf := tr.conn(tok).Subflows[1]; sf.State != SubflowPending {
		t.Errorf("create accepted: %s, want pending until SUB_ESTABLISHED", sf.State)
	}
	tr.Finish(c, mismatch, t0)
	if _, ok := tr.conn(tok).idOf(ip("10.0.2.1"), 0); ok {
		t.Error("id mismatch: binding kept")
	}
	if d := Decide(*tr.conn(tok), NewLocalView(snapshot(), Config{}), Config{}, at(10_000)); len(d) == 0 ||
		d[0].(CreateSubflow).Local.ID == 1 {
		t.Errorf("after an id mismatch the next decision uses id 1 again: %v", d)
	}

	// Announcements.
	tr = setup()
	tr.Begin([]Action{ann}, t0)
	tr.Finish(ann, nil, t0)
	if a := tr.conn(tok).Announced[0]; a.State != AnnounceDone {
		t.Errorf("announce accepted: %s", a.State)
	}
	tr.Begin([]Action{Remove{Token: tok, ID: 1}}, t0)
	if a := tr.conn(tok).Announced[0]; a.State != AnnounceRemoving {
		t.Errorf("remove asked: %s", a.State)
	}
	tr.Finish(Remove{Token: tok, ID: 1}, errors.New("not found"), t0)
	if n := len(tr.conn(tok).Announced); n != 0 {
		t.Errorf("after remove: %d announcements", n)
	}
	tr.Begin([]Action{ann}, t0)
	tr.Finish(ann, errors.New("ENOMEM"), t0)
	if a := tr.conn(tok).Announced[0]; a.State != AnnounceFailed || !a.RetryAt.After(t0) {
		t.Errorf("announce failed: %+v", a)
	}

	// Destroy and backup changes.
	tr = setup()
	tr.Begin([]Action{c}, t0)
	tr.Apply(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)}, t0)
	sb := SetBackup{Token: tok, Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443"), Backup: true}
	tr.Begin([]Action{sb}, t0)
	if !tr.conn(tok).Subflows[1].PrioPending {
		t.Error("set backup in flight not recorded")
	}
	tr.Finish(sb, nil, t0)
	if sf := tr.conn(tok).Subflows[1]; !sf.Backup || sf.PrioPending {
		t.Errorf("set backup done: %+v", sf)
	}
	d := DestroySubflow{Token: tok, Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443")}
	tr.Begin([]Action{d}, t0)
	tr.Finish(d, errors.New("EBUSY"), t0)
	if sf := tr.conn(tok).Subflows[1]; sf.State != SubflowUp || !sf.RetryAt.After(t0) {
		t.Errorf("destroy failed: %+v, want up with a retry time", sf)
	}
	tr.Begin([]Action{d}, t0)
	tr.Finish(d, unix.ESRCH, t0)
	if n := len(tr.conn(tok).Subflows); n != 1 {
		t.Errorf("destroy of a subflow the kernel does not have: %d subflows left, want 1", n)
	}
}

// TestTrackerBound: past MaxConnections new connections are not tracked,
// with a rate-limited warning; CLOSED makes room again.
func TestTrackerBound(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	tr := NewTracker(TrackerConfig{MaxConnections: 2, Logger: zap.New(core)})
	for i := range uint32(5) {
		tr.Apply(created(100+i), at(int(i)))
	}
	tr.Apply(established(200), at(5))
	if tr.Len() != 2 || tr.Dropped() != 4 {
		t.Errorf("Len %d Dropped %d, want 2 and 4", tr.Len(), tr.Dropped())
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d warnings, want 1 (rate-limited)", n)
	} else if f := logs.All()[0].ContextMap(); f["max_connections"] != int64(2) || f["token"] != "00000066" {
		t.Errorf("warning fields %v", f)
	}
	tr.Apply(created(300), at(5).Add(dropLogInterval))
	if n := logs.Len(); n != 2 {
		t.Errorf("%d warnings after the interval, want 2", n)
	}
	tr.Apply(&genl.Closed{Token: 100}, at(6))
	tr.Apply(created(400), at(7))
	if _, ok := tr.Get(400); !ok {
		t.Error("no room after CLOSED")
	}
	// Events of untracked connections are ignored.
	if _, d := tr.Apply(&genl.Announced{Token: 200, RemoteID: 1, Remote: ap("1.2.3.4:0")}, at(8)); d {
		t.Error("decision asked for an untracked connection")
	}
}

func TestTrackerServerSideAndIDs(t *testing.T) {
	tr := NewTracker(TrackerConfig{})
	tr.Apply(&genl.Established{Connection: evConn(tok, "[::ffff:10.0.1.1]:443", "[::ffff:198.51.100.20]:50000", true)}, t0)
	// The peer joins to an address we did not announce: the kernel gave
	// it id 1 for this connection.
	tr.Apply(&genl.SubflowEstablished{Subflow: subEv(tok, "[::ffff:10.0.2.1]:443", "[::ffff:198.51.100.20]:50001", 1, 2)}, t0)
	st, _ := tr.Get(tok)
	if st.Side != ServerSide {
		t.Errorf("side %s", st.Side)
	}
	if diff := cmp.Diff([]LocalID{{ID: 1, Addr: ip("10.0.2.1")}}, st.IDs, cmpNetip); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	// The priority event updates the peer's backup wish.
	tr.Apply(&genl.SubflowPriority{Subflow: genl.Subflow{Token: tok, Local: ap("10.0.2.1:443"), Remote: ap("198.51.100.20:50001"), Backup: true}}, t0)
	if st, _ := tr.Get(tok); !st.Subflows[1].PeerBackup {
		t.Error("SUB_PRIORITY not applied (mapped and plain addresses must match)")
	}
}

func TestTrackerReplace(t *testing.T) {
	tr := NewTracker(TrackerConfig{MaxConnections: 3})
	tr.Apply(established(1), t0)
	tr.Apply(established(2), t0)
	tr.Apply(&genl.Announced{Token: 1, RemoteID: 5, Remote: ap("198.51.100.7:0")}, t0)
	tr.Begin([]Action{CreateSubflow{Token: 1, Local: LocalEndpoint{Addr: ip("10.0.2.1"), ID: 1, Ifindex: 3}, Remote: ap("203.0.113.9:443")}}, t0)
	tr.conn(1).Subflows[1].State = SubflowFailed
	tr.conn(1).Subflows[1].Failures = 3

	// The kernel has 1 (with a new subflow the events missed) and 3;
	// 2 closed while events were lost.
	kernel := []ConnState{
		{Token: 1, Side: ClientSide, Established: true, Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"),
			Subflows: []Subflow{
				{Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"), State: SubflowUp, Initial: true},
				{Local: ap("10.0.3.1:7000"), Remote: ap("203.0.113.9:443"), LocalID: 2, State: SubflowUp, Ours: true},
			},
			IDs: []LocalID{{ID: 2, Addr: ip("10.0.3.1")}}},
		{Token: 3, Side: ServerSide, Established: true, Local: ap("10.0.1.1:443"), Remote: ap("198.51.100.1:1")},
	}
	tr.Replace(kernel, at(1))
	if got := tr.Tokens(); !cmp.Equal(got, []uint32{1, 3}) {
		t.Errorf("tokens %v, want [1 3]", got)
	}
	st, _ := tr.Get(1)
	if len(st.Subflows) != 3 || st.Subflows[2].State != SubflowFailed || st.Subflows[2].Failures != 3 {
		t.Errorf("subflows after merge: %+v (want the kernel's two and the remembered failed attempt)", st.Subflows)
	}
	if len(st.RemoteAddrs) != 1 || st.RemoteAddrs[0].ID != 5 {
		t.Errorf("announced addresses forgotten: %+v", st.RemoteAddrs)
	}
	if diff := cmp.Diff([]LocalID{{ID: 2, Addr: ip("10.0.3.1")}, {ID: 1, Addr: ip("10.0.2.1")}}, st.IDs, cmpNetip); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if st.Created != t0 {
		t.Errorf("created %v, want the original %v", st.Created, t0)
	}
	if st3, _ := tr.Get(3); st3.Created != at(1) {
		t.Errorf("new connection created %v", st3.Created)
	}
}
