package pathmgr

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// SubflowState is where one subflow of a connection stands.
type SubflowState uint8

// Subflow states.
const (
	// SubflowPending: creation was asked for (or the kernel shows a
	// handshake); no SUB_ESTABLISHED yet.
	SubflowPending SubflowState = iota + 1
	// SubflowUp: established.
	SubflowUp
	// SubflowFailed: closed or refused; retried at RetryAt.
	SubflowFailed
	// SubflowClosing: destruction was asked for.
	SubflowClosing
	// SubflowAbandoned: failed RetryPolicy.MaxAttempts times; not retried.
	SubflowAbandoned
)

// String returns the state's name.
func (s SubflowState) String() string {
	switch s {
	case SubflowPending:
		return "pending"
	case SubflowUp:
		return "up"
	case SubflowFailed:
		return "failed"
	case SubflowClosing:
		return "closing"
	case SubflowAbandoned:
		return "abandoned"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Subflow is one subflow of a connection, or one this host wants.
type Subflow struct {
	// Local and Remote are the ends as the kernel reports them (an
	// AF_INET6 subflow of IPv4 reports IPv4-mapped addresses); the local
	// port is 0 until the subflow is established.
	Local, Remote     netip.AddrPort
	LocalID, RemoteID uint8
	Ifindex           int
	// Backup is what this host asked for; PeerBackup what the peer asked
	// for.
	Backup, PeerBackup bool
	State              SubflowState
	// Initial is the connection's first subflow.
	Initial bool
	// Ours: this path manager opened it (or, after a rebuild, this host
	// sent the MP_JOIN).
	Ours bool
	// Failures counts failed attempts in a row; RetryAt is when the next
	// attempt (or, for SetBackup and DestroySubflow, the next try) may be
	// made.
	Failures int
	RetryAt  time.Time
	// Since is when the subflow entered its state.
	Since time.Time
	// PrioPending: a SetBackup is in flight.
	PrioPending bool
}

// pathKey is the pair that identifies a subflow for this package: unmapped
// local address and remote address and port.
type pathKey struct {
	local  netip.Addr
	remote netip.AddrPort
}

func (s *Subflow) path() pathKey {
	return pathKey{s.Local.Addr().Unmap(), unmapAP(s.Remote)}
}

// RemoteAddr is an address the peer announced (ADD_ADDR). Its port is 0
// when the peer named none: the connection's port applies.
type RemoteAddr struct {
	ID   uint8
	Addr netip.AddrPort
}

// AnnounceState is where an announcement of a local address stands.
type AnnounceState uint8

// Announcement states.
const (
	AnnouncePending AnnounceState = iota + 1
	AnnounceDone
	AnnounceFailed
	AnnounceRemoving
)

// String returns the state's name.
func (s AnnounceState) String() string {
	switch s {
	case AnnouncePending:
		return "pending"
	case AnnounceDone:
		return "announced"
	case AnnounceFailed:
		return "failed"
	case AnnounceRemoving:
		return "removing"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Announcement is a local address this host announced (or is announcing)
// on a connection.
type Announcement struct {
	ID       uint8
	Addr     netip.Addr
	Port     uint16
	Ifindex  int
	State    AnnounceState
	Failures int
	RetryAt  time.Time
}

// LocalID binds a local address (and port, 0 for none) to its address id
// on one connection. The userspace path manager refuses a second id for an
// address, or a second address for an id, so the binding is kept for the
// connection's life. An invalid Addr reserves an id the kernel refused.
type LocalID struct {
	ID   uint8
	Addr netip.Addr
	Port uint16
}

// ConnState is what the path manager knows about one MPTCP connection.
type ConnState struct {
	Token uint32
	Side  Side
	// Established: the kernel sent ESTABLISHED; only then may subflows be
	// added or addresses announced.
	Established bool
	// Local and Remote are the initial subflow's ends, as reported.
	Local, Remote netip.AddrPort
	// DenyJoinID0: the peer refuses joins to its initial address.
	DenyJoinID0 bool
	// Unmanaged: the kernel says another path manager runs this
	// connection, or it fell back to TCP; nothing is done for it.
	Unmanaged bool
	// RemoteAddrs are the peer's announced addresses, by id.
	RemoteAddrs []RemoteAddr
	Subflows    []Subflow
	Announced   []Announcement
	IDs         []LocalID
	// Created is when the path manager learned of the connection.
	Created time.Time

	// timerAt is the retry wake-up the Manager scheduled for it.
	timerAt time.Time
}

// Clone returns a deep copy.
func (c *ConnState) Clone() ConnState {
	n := *c
	n.RemoteAddrs = slices.Clone(c.RemoteAddrs)
	n.Subflows = slices.Clone(c.Subflows)
	n.Announced = slices.Clone(c.Announced)
	n.IDs = slices.Clone(c.IDs)
	return n
}

// findPath returns the subflow for the path, preferring a live one.
func (c *ConnState) findPath(p pathKey) *Subflow {
	var found *Subflow
	for i := range c.Subflows {
		sf := &c.Subflows[i]
		if sf.path() == p {
			if sf.State == SubflowUp || sf.State == SubflowPending {
				return sf
			}
			if found == nil {
				found = sf
			}
		}
	}
	return found
}

// findExact returns the subflow with exactly these ends (ports included,
// addresses compared unmapped).
func (c *ConnState) findExact(local, remote netip.AddrPort) *Subflow {
	local, remote = unmapAP(local), unmapAP(remote)
	for i := range c.Subflows {
		sf := &c.Subflows[i]
		if unmapAP(sf.Local) == local && unmapAP(sf.Remote) == remote {
			return sf
		}
	}
	return nil
}

func (c *ConnState) removeSubflow(sf *Subflow) {
	for i := range c.Subflows {
		if &c.Subflows[i] == sf {
			c.Subflows = slices.Delete(c.Subflows, i, i+1)
			return
		}
	}
}

func (c *ConnState) findAnnounce(addr netip.Addr, port uint16) *Announcement {
	for i := range c.Announced {
		if c.Announced[i].Addr == addr && c.Announced[i].Port == port {
			return &c.Announced[i]
		}
	}
	return nil
}

func (c *ConnState) findAnnounceID(id uint8) *Announcement {
	for i := range c.Announced {
		if c.Announced[i].ID == id {
			return &c.Announced[i]
		}
	}
	return nil
}

// idOf returns the id bound to addr and port.
func (c *ConnState) idOf(addr netip.Addr, port uint16) (uint8, bool) {
	for _, l := range c.IDs {
		if l.Addr == addr && l.Port == port {
			return l.ID, true
		}
	}
	return 0, false
}

// bindID records addr/port ↔ id unless either is bound already.
func (c *ConnState) bindID(id uint8, addr netip.Addr, port uint16) {
	if id == 0 {
		return
	}
	for _, l := range c.IDs {
		if l.ID == id || (addr.IsValid() && l.Addr == addr && l.Port == port) {
			return
		}
	}
	c.IDs = append(c.IDs, LocalID{ID: id, Addr: addr, Port: port})
}

// unbindID forgets the binding of addr/port and reserves its id.
func (c *ConnState) unbindID(addr netip.Addr, port uint16) {
	for i := range c.IDs {
		if c.IDs[i].Addr == addr && c.IDs[i].Port == port {
			c.IDs[i].Addr, c.IDs[i].Port = netip.Addr{}, 0
		}
	}
}

// usedIDs marks every local id the connection uses or reserved.
func (c *ConnState) usedIDs(used *[256]bool) {
	used[0] = true
	for _, l := range c.IDs {
		used[l.ID] = true
	}
	for _, sf := range c.Subflows {
		used[sf.LocalID] = true
	}
	for _, a := range c.Announced {
		used[a.ID] = true
	}
}

// nextRetry returns the earliest RetryAt after now of anything waiting,
// or the zero time.
func (c *ConnState) nextRetry(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, sf := range c.Subflows {
		if sf.State == SubflowFailed || sf.State == SubflowUp {
			consider(sf.RetryAt)
		}
	}
	for _, a := range c.Announced {
		if a.State == AnnounceFailed {
			consider(a.RetryAt)
		}
	}
	return next
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
