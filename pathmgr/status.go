package pathmgr

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Action kinds, the index of the per-kind counters.
const (
	kindCreate = iota
	kindDestroy
	kindAnnounce
	kindRemove
	kindSetBackup
	numKinds
)

func actionKind(a Action) int {
	switch a.(type) {
	case CreateSubflow:
		return kindCreate
	case DestroySubflow:
		return kindDestroy
	case Announce:
		return kindAnnounce
	case Remove:
		return kindRemove
	}
	return kindSetBackup
}

// counters are updated from the loop and the workers without the lock.
type counters struct {
	events, eventsLost, eventErrors atomic.Uint64
	decisions                       atomic.Uint64
	rebuilds, rebuildFailures       atomic.Uint64
	actions, failures               [numKinds]atomic.Uint64
	// byType counts events by genl.EventType, which is a uint8: an
	// array needs no lock on the event reader's path.
	byType [256]atomic.Uint64
}

// ActionCounts counts actions by kind.
type ActionCounts struct {
	CreateSubflow, DestroySubflow, Announce, Remove, SetBackup uint64
}

// Total is the sum over the kinds.
func (c ActionCounts) Total() uint64 {
	return c.CreateSubflow + c.DestroySubflow + c.Announce + c.Remove + c.SetBackup
}

func loadCounts(a *[numKinds]atomic.Uint64) ActionCounts {
	return ActionCounts{
		CreateSubflow: a[kindCreate].Load(), DestroySubflow: a[kindDestroy].Load(), Announce: a[kindAnnounce].Load(),
		Remove: a[kindRemove].Load(), SetBackup: a[kindSetBackup].Load(),
	}
}

// Counters are the Manager's running totals since it was created.
type Counters struct {
	// Events handled; EventsLost counts the overflows of the event
	// socket, EventErrors the events that could not be decoded.
	Events, EventsLost, EventErrors uint64
	// Decisions is how many times Decide ran.
	Decisions uint64
	// Rebuilds from sock_diag, and how many of them failed.
	Rebuilds, RebuildFailures uint64
	// Actions sent to the kernel, and how many of them it refused.
	Actions, Failures ActionCounts
}

// Counts returns the counters and the number of tracked connections
// without listing the connections.
func (m *Manager) Counts() (Counters, int) {
	m.mu.Lock()
	n := m.tracker.Len()
	m.mu.Unlock()
	return m.counters(), n
}

func (m *Manager) counters() Counters {
	return Counters{
		Events: m.c.events.Load(), EventsLost: m.c.eventsLost.Load(), EventErrors: m.c.eventErrors.Load(),
		Decisions: m.c.decisions.Load(), Rebuilds: m.c.rebuilds.Load(), RebuildFailures: m.c.rebuildFailures.Load(),
		Actions: loadCounts(&m.c.actions), Failures: loadCounts(&m.c.failures),
	}
}

// EventCount is how many events of one type the Manager handled.
type EventCount struct {
	Type genl.EventType
	N    uint64
}

// EventCounts returns the events handled so far by type, for the types
// seen at least once, in the order of their numbers. Their sum is
// Counters.Events.
func (m *Manager) EventCounts() []EventCount {
	var out []EventCount
	for i := range m.c.byType {
		if n := m.c.byType[i].Load(); n > 0 {
			out = append(out, EventCount{Type: genl.EventType(i), N: n})
		}
	}
	return out
}

// TrackedCounts are the sizes of a Manager's state.
type TrackedCounts struct {
	// Connections are the tracked connections, Subflows their subflows
	// by state.
	Connections int
	Subflows    map[SubflowState]int
	// Untracked counts connections left alone because of the bound.
	Untracked uint64
}

// Tracked counts the tracked connections and their subflows, without
// copying them as Status does.
func (m *Manager) Tracked() TrackedCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := TrackedCounts{Connections: m.tracker.Len(), Subflows: make(map[SubflowState]int), Untracked: m.tracker.Dropped()}
	for _, st := range m.tracker.conns {
		for _, sf := range st.Subflows {
			c.Subflows[sf.State]++
		}
	}
	return c
}

// Status is a snapshot of the Manager for `status` and tests.
type Status struct {
	// Connections are the tracked connections, by token.
	Connections []ConnStatus
	// Untracked counts connections left alone because of the bound.
	Untracked uint64
	Counters  Counters
	// Interfaces is the current local view.
	Interfaces []LocalIface
	// LastRebuild is when the state was last rebuilt from the kernel;
	// RebuildError the error of the last failed attempt since.
	LastRebuild  time.Time
	RebuildError error
}

// ConnStatus describes one connection.
type ConnStatus struct {
	// Token as ip mptcp prints it, 8 hex digits.
	Token         string
	Side          Side
	Established   bool
	Unmanaged     bool
	Local, Remote netip.AddrPort
	Subflows      []SubflowStatus
	// RemoteAddrs are the peer's announced addresses.
	RemoteAddrs []RemoteAddr
	// Announced are this host's announced addresses.
	Announced []Announcement
}

// SubflowStatus describes one subflow.
type SubflowStatus struct {
	Local, Remote      netip.AddrPort
	LocalID, RemoteID  uint8
	Ifindex            int
	Backup, PeerBackup bool
	State              SubflowState
	Initial, Ours      bool
	Failures           int
	RetryAt            time.Time
}

// Status lists the tracked connections and the counters.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		Untracked:    m.tracker.Dropped(),
		Counters:     m.counters(),
		Interfaces:   slices.Clone(m.view.Ifaces),
		LastRebuild:  m.lastRebuild,
		RebuildError: m.rebuildErr,
	}
	s.Connections = make([]ConnStatus, 0, m.tracker.Len())
	for _, tok := range m.tracker.Tokens() {
		st := m.tracker.conns[tok]
		cs := ConnStatus{
			Token: tokenString(tok), Side: st.Side, Established: st.Established, Unmanaged: st.Unmanaged,
			Local: st.Local, Remote: st.Remote,
			RemoteAddrs: slices.Clone(st.RemoteAddrs), Announced: slices.Clone(st.Announced),
		}
		for _, sf := range st.Subflows {
			cs.Subflows = append(cs.Subflows, SubflowStatus{
				Local: sf.Local, Remote: sf.Remote, LocalID: sf.LocalID, RemoteID: sf.RemoteID, Ifindex: sf.Ifindex,
				Backup: sf.Backup, PeerBackup: sf.PeerBackup, State: sf.State, Initial: sf.Initial, Ours: sf.Ours,
				Failures: sf.Failures, RetryAt: sf.RetryAt,
			})
		}
		s.Connections = append(s.Connections, cs)
	}
	return s
}
