package genl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// EventType is the kind of an mptcp_pm event (MPTCP_EVENT_*).
type EventType uint8

// The event types the kernel sends.
const (
	EventCreated         EventType = 1
	EventEstablished     EventType = 2
	EventClosed          EventType = 3
	EventAnnounced       EventType = 6
	EventRemoved         EventType = 7
	EventSubEstablished  EventType = 10
	EventSubClosed       EventType = 11
	EventSubPriority     EventType = 13
	EventListenerCreated EventType = 15
	EventListenerClosed  EventType = 16
)

// String returns the name iproute2's "ip mptcp monitor" uses, or
// "UNKNOWN n".
func (t EventType) String() string {
	switch t {
	case EventCreated:
		return "CREATED"
	case EventEstablished:
		return "ESTABLISHED"
	case EventClosed:
		return "CLOSED"
	case EventAnnounced:
		return "ANNOUNCED"
	case EventRemoved:
		return "REMOVED"
	case EventSubEstablished:
		return "SF_ESTABLISHED"
	case EventSubClosed:
		return "SF_CLOSED"
	case EventSubPriority:
		return "SF_PRIO"
	case EventListenerCreated:
		return "LISTENER_CREATED"
	case EventListenerClosed:
		return "LISTENER_CLOSED"
	}
	return fmt.Sprintf("UNKNOWN %d", uint8(t))
}

// EventAttr is an event attribute number (MPTCP_ATTR_*).
type EventAttr uint8

// Event attributes.
const (
	AttrToken       EventAttr = 1
	AttrFamily      EventAttr = 2
	AttrLocID       EventAttr = 3
	AttrRemID       EventAttr = 4
	AttrSaddr4      EventAttr = 5
	AttrSaddr6      EventAttr = 6
	AttrDaddr4      EventAttr = 7
	AttrDaddr6      EventAttr = 8
	AttrSport       EventAttr = 9
	AttrDport       EventAttr = 10
	AttrBackup      EventAttr = 11
	AttrError       EventAttr = 12
	AttrFlags       EventAttr = 13
	AttrTimeout     EventAttr = 14
	AttrIfIdx       EventAttr = 15
	AttrResetReason EventAttr = 16
	AttrResetFlags  EventAttr = 17
	AttrServerSide  EventAttr = 18
)

// AttrSet records which attributes an event carried.
type AttrSet uint64

// Has reports whether a is in the set.
func (s AttrSet) Has(a EventAttr) bool { return a < 64 && s&(1<<a) != 0 }

// With returns the set with a added.
func (s AttrSet) With(a EventAttr) AttrSet {
	if a >= 64 {
		return s
	}
	return s | 1<<a
}

// EventFlags is the flags attribute of CREATED and ESTABLISHED
// (MPTCP_PM_EV_FLAG_*).
type EventFlags uint16

// Event flags.
const (
	// EventFlagDenyJoinID0: the peer refuses joins to its initial address.
	EventFlagDenyJoinID0 EventFlags = 1 << 0
	// EventFlagServerSide: this host accepted the connection.
	EventFlagServerSide EventFlags = 1 << 1
)

// EventFields is every attribute an event can carry. Present says which
// ones the kernel sent; the others are zero.
type EventFields struct {
	Type        EventType
	Token       uint32
	Family      uint16
	LocalID     uint8
	RemoteID    uint8
	Local       netip.AddrPort // saddr4|saddr6 and sport
	Remote      netip.AddrPort // daddr4|daddr6 and dport
	Backup      uint8
	Error       uint8
	Flags       EventFlags
	Timeout     uint32
	Ifindex     int
	ResetReason uint32
	ResetFlags  uint32
	ServerSide  uint8 // the older server-side attribute
	Present     AttrSet
}

// Event is one of the typed event structs: *Created, *Established,
// *Closed, *Announced, *Removed, *SubflowEstablished, *SubflowClosed,
// *SubflowPriority, *ListenerCreated, *ListenerClosed or *UnknownEvent.
type Event interface {
	// Type is the event's kind.
	Type() EventType
	// Fields returns every attribute the event carried.
	Fields() EventFields
}

// Connection is what CREATED and ESTABLISHED say about a connection.
type Connection struct {
	Token  uint32
	Local  netip.AddrPort
	Remote netip.AddrPort
	// ServerSide is true when this host accepted the connection.
	ServerSide bool
	// Flags is the raw flags attribute.
	Flags EventFlags
	// Timeout is the timeout attribute, if sent.
	Timeout uint32
	Attrs   AttrSet
}

// Created: a new MPTCP connection (MPTCP_EVENT_CREATED).
type Created struct{ Connection }

// Established: the connection is established and may open subflows.
type Established struct{ Connection }

// Closed: the connection is gone.
type Closed struct {
	Token uint32
	Attrs AttrSet
}

// Announced: the peer announced an address (ADD_ADDR). Remote's port is 0
// when the peer did not name one.
type Announced struct {
	Token    uint32
	RemoteID uint8
	Remote   netip.AddrPort
	Timeout  uint32
	Attrs    AttrSet
}

// Removed: the peer removed an address (REMOVE_ADDR).
type Removed struct {
	Token    uint32
	RemoteID uint8
	Attrs    AttrSet
}

// Subflow is what the SUB_* events say about a subflow.
type Subflow struct {
	Token    uint32
	LocalID  uint8
	RemoteID uint8
	Local    netip.AddrPort
	Remote   netip.AddrPort
	Backup   bool
	// Error is the subflow's socket error (sk_err), if any.
	Error   uint8
	Ifindex int
	// ResetReason and ResetFlags are the MP_TCPRST reason and flags of a
	// closed subflow.
	ResetReason uint32
	ResetFlags  uint32
	Attrs       AttrSet
}

// SubflowEstablished: a subflow was established (MPTCP_EVENT_SUB_ESTABLISHED).
type SubflowEstablished struct{ Subflow }

// SubflowClosed: a subflow was closed (MPTCP_EVENT_SUB_CLOSED).
type SubflowClosed struct{ Subflow }

// SubflowPriority: a subflow's backup state changed (MPTCP_EVENT_SUB_PRIORITY).
type SubflowPriority struct{ Subflow }

// Listener is what the LISTENER_* events say.
type Listener struct {
	Local netip.AddrPort
	Attrs AttrSet
}

// ListenerCreated: the path manager created a listener (for a signal
// endpoint with a port).
type ListenerCreated struct{ Listener }

// ListenerClosed: such a listener was closed.
type ListenerClosed struct{ Listener }

// UnknownEvent is an event type this package does not know; its known
// attributes are kept.
type UnknownEvent struct{ Raw EventFields }

// Type implements Event.
func (*Created) Type() EventType { return EventCreated }

// Type implements Event.
func (*Established) Type() EventType { return EventEstablished }

// Type implements Event.
func (*Closed) Type() EventType { return EventClosed }

// Type implements Event.
func (*Announced) Type() EventType { return EventAnnounced }

// Type implements Event.
func (*Removed) Type() EventType { return EventRemoved }

// Type implements Event.
func (*SubflowEstablished) Type() EventType { return EventSubEstablished }

// Type implements Event.
func (*SubflowClosed) Type() EventType { return EventSubClosed }

// Type implements Event.
func (*SubflowPriority) Type() EventType { return EventSubPriority }

// Type implements Event.
func (*ListenerCreated) Type() EventType { return EventListenerCreated }

// Type implements Event.
func (*ListenerClosed) Type() EventType { return EventListenerClosed }

// Type implements Event.
func (e *UnknownEvent) Type() EventType { return e.Raw.Type }

func (c Connection) fields(t EventType) EventFields {
	f := EventFields{Type: t, Token: c.Token, Local: c.Local, Remote: c.Remote, Flags: c.Flags, Timeout: c.Timeout, Present: c.Attrs}
	if c.ServerSide && c.Attrs.Has(AttrServerSide) {
		f.ServerSide = 1
	}
	f.Family = familyOf(c.Attrs, c.Local.Addr(), c.Remote.Addr())
	return f
}

func (s Subflow) fields(t EventType) EventFields {
	f := EventFields{Type: t, Token: s.Token, LocalID: s.LocalID, RemoteID: s.RemoteID, Local: s.Local, Remote: s.Remote,
		Error: s.Error, Ifindex: s.Ifindex, ResetReason: s.ResetReason, ResetFlags: s.ResetFlags, Present: s.Attrs}
	if s.Backup {
		f.Backup = 1
	}
	f.Family = familyOf(s.Attrs, s.Local.Addr(), s.Remote.Addr())
	return f
}

// Fields implements Event.
func (e *Created) Fields() EventFields { return e.fields(EventCreated) }

// Fields implements Event.
func (e *Established) Fields() EventFields { return e.fields(EventEstablished) }

// Fields implements Event.
func (e *Closed) Fields() EventFields {
	return EventFields{Type: EventClosed, Token: e.Token, Present: e.Attrs}
}

// Fields implements Event.
func (e *Announced) Fields() EventFields {
	return EventFields{Type: EventAnnounced, Token: e.Token, RemoteID: e.RemoteID, Remote: e.Remote,
		Timeout: e.Timeout, Family: familyOf(e.Attrs, e.Remote.Addr()), Present: e.Attrs}
}

// Fields implements Event.
func (e *Removed) Fields() EventFields {
	return EventFields{Type: EventRemoved, Token: e.Token, RemoteID: e.RemoteID, Present: e.Attrs}
}

// Fields implements Event.
func (e *SubflowEstablished) Fields() EventFields { return e.fields(EventSubEstablished) }

// Fields implements Event.
func (e *SubflowClosed) Fields() EventFields { return e.fields(EventSubClosed) }

// Fields implements Event.
func (e *SubflowPriority) Fields() EventFields { return e.fields(EventSubPriority) }

// Fields implements Event.
func (e *ListenerCreated) Fields() EventFields {
	return EventFields{Type: EventListenerCreated, Local: e.Local, Family: familyOf(e.Attrs, e.Local.Addr()), Present: e.Attrs}
}

// Fields implements Event.
func (e *ListenerClosed) Fields() EventFields {
	return EventFields{Type: EventListenerClosed, Local: e.Local, Family: familyOf(e.Attrs, e.Local.Addr()), Present: e.Attrs}
}

// Fields implements Event.
func (e *UnknownEvent) Fields() EventFields { return e.Raw }

// familyOf returns the address family of the first valid address, the way
// the kernel fills the family attribute, or 0 when the event had no family
// attribute (ANNOUNCED never has one).
func familyOf(present AttrSet, addrs ...netip.Addr) uint16 {
	if !present.Has(AttrFamily) {
		return 0
	}
	for _, a := range addrs {
		if a.IsValid() {
			if a.Is4() {
				return afInet
			}
			return afInet6
		}
	}
	return 0
}

const (
	afInet  = 2
	afInet6 = 10
)

// DecodeEvent decodes one mptcp_pm event: the generic netlink command and
// the attributes after the generic netlink header. Unknown attributes are
// skipped; malformed ones give an error.
func DecodeEvent(cmd uint8, attrs []byte) (Event, error) {
	f, err := decodeEventFields(EventType(cmd), attrs)
	if err != nil {
		return nil, fmt.Errorf("decode mptcp event %s: %w", EventType(cmd), err)
	}
	return newEvent(f), nil
}

func decodeEventFields(t EventType, b []byte) (EventFields, error) {
	f := EventFields{Type: t}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return f, err
	}
	var saddr, daddr netip.Addr
	var sport, dport uint16
	for ad.Next() {
		if ad.Type() > 0xff {
			// Not an event attribute; as an EventAttr it would alias one.
			continue
		}
		a := EventAttr(ad.Type())
		switch a {
		case AttrToken:
			f.Token = ad.Uint32()
		case AttrFamily:
			f.Family = ad.Uint16()
		case AttrLocID:
			f.LocalID = ad.Uint8()
		case AttrRemID:
			f.RemoteID = ad.Uint8()
		case AttrSaddr4, AttrDaddr4:
			v, err := addrFromBytes(ad.Bytes(), 4)
			if err != nil {
				return f, fmt.Errorf("attribute %d: %w", a, err)
			}
			if a == AttrSaddr4 {
				saddr = v
			} else {
				daddr = v
			}
		case AttrSaddr6, AttrDaddr6:
			b := ad.Bytes()
			if len(b) < 16 {
				return f, fmt.Errorf("attribute %d: IPv6 address has %d bytes, want 16", a, len(b))
			}
			v := netip.AddrFrom16([16]byte(b[:16]))
			if a == AttrSaddr6 {
				saddr = v
			} else {
				daddr = v
			}
		case AttrSport, AttrDport:
			// Network byte order in events, unlike the address nest.
			b := ad.Bytes()
			if len(b) != 2 {
				return f, fmt.Errorf("attribute %d: port has %d bytes, want 2", a, len(b))
			}
			v := binary.BigEndian.Uint16(b)
			if a == AttrSport {
				sport = v
			} else {
				dport = v
			}
		case AttrBackup:
			f.Backup = ad.Uint8()
		case AttrError:
			f.Error = ad.Uint8()
		case AttrFlags:
			f.Flags = EventFlags(ad.Uint16())
		case AttrTimeout:
			f.Timeout = ad.Uint32()
		case AttrIfIdx:
			f.Ifindex = int(int32(ad.Uint32()))
		case AttrResetReason:
			f.ResetReason = ad.Uint32()
		case AttrResetFlags:
			f.ResetFlags = ad.Uint32()
		case AttrServerSide:
			f.ServerSide = ad.Uint8()
		default:
			continue
		}
		f.Present = f.Present.With(a)
	}
	if err := ad.Err(); err != nil {
		return f, err
	}
	if saddr.IsValid() || sport != 0 {
		f.Local = netip.AddrPortFrom(saddr, sport)
	}
	if daddr.IsValid() || dport != 0 {
		f.Remote = netip.AddrPortFrom(daddr, dport)
	}
	return f, nil
}

// newEvent builds the typed event for f.
func newEvent(f EventFields) Event {
	conn := func() Connection {
		return Connection{Token: f.Token, Local: f.Local, Remote: f.Remote, Flags: f.Flags, Timeout: f.Timeout,
			ServerSide: f.ServerSide != 0 || f.Flags&EventFlagServerSide != 0, Attrs: f.Present}
	}
	sub := func() Subflow {
		return Subflow{Token: f.Token, LocalID: f.LocalID, RemoteID: f.RemoteID, Local: f.Local, Remote: f.Remote,
			Backup: f.Backup != 0, Error: f.Error, Ifindex: f.Ifindex, ResetReason: f.ResetReason,
			ResetFlags: f.ResetFlags, Attrs: f.Present}
	}
	switch f.Type {
	case EventCreated:
		return &Created{conn()}
	case EventEstablished:
		return &Established{conn()}
	case EventClosed:
		return &Closed{Token: f.Token, Attrs: f.Present}
	case EventAnnounced:
		return &Announced{Token: f.Token, RemoteID: f.RemoteID, Remote: f.Remote, Timeout: f.Timeout, Attrs: f.Present}
	case EventRemoved:
		return &Removed{Token: f.Token, RemoteID: f.RemoteID, Attrs: f.Present}
	case EventSubEstablished:
		return &SubflowEstablished{sub()}
	case EventSubClosed:
		return &SubflowClosed{sub()}
	case EventSubPriority:
		return &SubflowPriority{sub()}
	case EventListenerCreated:
		return &ListenerCreated{Listener{Local: f.Local, Attrs: f.Present}}
	case EventListenerClosed:
		return &ListenerClosed{Listener{Local: f.Local, Attrs: f.Present}}
	}
	return &UnknownEvent{Raw: f}
}
