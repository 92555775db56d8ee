package pcap

import (
	"fmt"
	"net/netip"
	"time"
)

// EventType names a connection-level or subflow-level event found in a
// capture. Where the kernel's mptcp_pm netlink events have a counterpart
// the name is the one `mptcpd-go monitor` prints.
type EventType string

// Event types, in the order they usually occur.
const (
	// EventCreated: an MP_CAPABLE SYN opened a connection.
	EventCreated EventType = "CREATED"
	// EventEstablished: the client's third ACK carried both keys.
	EventEstablished EventType = "ESTABLISHED"
	// EventAnnounced: an ADD_ADDR (not an echo) announced an address.
	EventAnnounced EventType = "ANNOUNCED"
	// EventRemoved: a REMOVE_ADDR withdrew an address ID (one event per
	// ID).
	EventRemoved EventType = "REMOVED"
	// EventSubEstablished: an MP_JOIN handshake completed (third ACK
	// with the initiator's HMAC seen, HMACs valid or not checkable).
	EventSubEstablished EventType = "SF_ESTABLISHED"
	// EventJoinFailed: an MP_JOIN handshake failed: refused, reset, or
	// with an HMAC that does not verify.
	EventJoinFailed EventType = "SF_JOIN_FAILED"
	// EventSubPriority: an MP_PRIO changed a subflow's backup flag.
	EventSubPriority EventType = "SF_PRIO"
	// EventSubClosed: a subflow ended with a RST (plain or carrying
	// MP_TCPRST) or with FINs in both directions.
	EventSubClosed EventType = "SF_CLOSED"
	// EventMPFail: an MP_FAIL option was seen.
	EventMPFail EventType = "MP_FAIL"
	// EventFallback: the connection fell back to plain TCP.
	EventFallback EventType = "FALLBACK"
	// EventFastclose: an MP_FASTCLOSE aborted the connection.
	EventFastclose EventType = "FASTCLOSE"
	// EventClosed: every subflow of the connection has closed.
	EventClosed EventType = "CLOSED"
)

// Event is one entry of the timeline the Analyzer builds while it reads a
// capture (see Analyzer.HandleEvents). Fields that do not apply to an
// event are left zero (nil for the optional numbers) and omitted from
// JSON.
//
// JSON field names:
//
//	time          capture timestamp, RFC 3339 with nanoseconds
//	rel           seconds since the first TCP segment of the capture
//	event         the EventType, e.g. "SF_ESTABLISHED"
//	token         the client's (connection initiator's) token, 8 hex digits
//	server_token  the server's token, on ESTABLISHED
//	version       MPTCP version, on CREATED
//	from          "client" or "server": which side sent the packet
//	saddr4/saddr6, sport   source of the subflow or packet
//	daddr4/daddr6, dport   destination; for ANNOUNCED the announced
//	                       address and port
//	locid         address ID of a joining subflow's initiator
//	remid         address ID of the responder; for ANNOUNCED and REMOVED
//	              the ID announced or removed
//	backup        0 or 1, on SF_ESTABLISHED and SF_PRIO
//	rst           true when a RST closed the subflow
//	reset_reason, reset_reason_name, reset_flags   from MP_TCPRST
//	dsn           the MP_FAIL data sequence number
//	reason        why a join failed, a subflow closed or the
//	              connection fell back
type Event struct {
	Time            time.Time `json:"time"`
	Rel             float64   `json:"rel"`
	Type            EventType `json:"event"`
	Token           string    `json:"token,omitempty"`
	ServerToken     string    `json:"server_token,omitempty"`
	Version         *uint8    `json:"version,omitempty"`
	From            string    `json:"from,omitempty"`
	Saddr4          string    `json:"saddr4,omitempty"`
	Daddr4          string    `json:"daddr4,omitempty"`
	Saddr6          string    `json:"saddr6,omitempty"`
	Daddr6          string    `json:"daddr6,omitempty"`
	Sport           uint16    `json:"sport,omitempty"`
	Dport           uint16    `json:"dport,omitempty"`
	LocID           *uint8    `json:"locid,omitempty"`
	RemID           *uint8    `json:"remid,omitempty"`
	Backup          *uint8    `json:"backup,omitempty"`
	RST             bool      `json:"rst,omitempty"`
	ResetReason     *uint8    `json:"reset_reason,omitempty"`
	ResetReasonName string    `json:"reset_reason_name,omitempty"`
	ResetFlags      *uint8    `json:"reset_flags,omitempty"`
	DSN             *uint64   `json:"dsn,omitempty"`
	Reason          string    `json:"reason,omitempty"`
}

// setAddrs fills the address and port fields; an invalid address (as
// for an ANNOUNCED without one) is left out.
func (e *Event) setAddrs(src, dst netip.AddrPort) {
	put := func(a netip.Addr, v4, v6 *string) {
		switch {
		case !a.IsValid():
		case a.Unmap().Is4():
			*v4 = a.Unmap().String()
		default:
			*v6 = a.String()
		}
	}
	put(src.Addr(), &e.Saddr4, &e.Saddr6)
	put(dst.Addr(), &e.Daddr4, &e.Daddr6)
	e.Sport, e.Dport = src.Port(), dst.Port()
}

// String renders the event the way `mptcpd-go monitor` prints kernel
// events: the name in brackets, then key=value pairs, without the
// timestamp.
func (e Event) String() string {
	b := fmt.Appendf(nil, "[%16s]", string(e.Type))
	str := func(k, v string) {
		if v != "" {
			b = fmt.Appendf(b, " %s=%s", k, v)
		}
	}
	u8 := func(k string, v *uint8) {
		if v != nil {
			b = fmt.Appendf(b, " %s=%d", k, *v)
		}
	}
	str("token", e.Token)
	str("server_token", e.ServerToken)
	u8("version", e.Version)
	u8("remid", e.RemID)
	u8("locid", e.LocID)
	str("saddr4", e.Saddr4)
	str("daddr4", e.Daddr4)
	str("saddr6", e.Saddr6)
	str("daddr6", e.Daddr6)
	if e.Sport != 0 {
		b = fmt.Appendf(b, " sport=%d", e.Sport)
	}
	if e.Dport != 0 {
		b = fmt.Appendf(b, " dport=%d", e.Dport)
	}
	u8("backup", e.Backup)
	str("from", e.From)
	if e.RST {
		b = append(b, " rst"...)
	}
	u8("reset_reason", e.ResetReason)
	if e.ResetFlags != nil {
		b = fmt.Appendf(b, " reset_flags=0x%x", *e.ResetFlags)
	}
	if e.DSN != nil {
		b = fmt.Appendf(b, " dsn=%d", *e.DSN)
	}
	if e.Reason != "" {
		b = fmt.Appendf(b, " reason=%q", e.Reason)
	}
	return string(b)
}

// ptr8 returns a pointer to v, for the optional Event fields.
func ptr8(v uint8) *uint8 { return &v }

func bool8(b bool) *uint8 {
	if b {
		return ptr8(1)
	}
	return ptr8(0)
}

// HandleEvents makes the Analyzer call fn with every event as soon as the
// packet causing it is fed to Packet, in capture order. A nil fn turns
// event generation off (the default), which saves the formatting work
// when only the Summary is wanted.
func (a *Analyzer) HandleEvents(fn func(Event)) { a.onEvent = fn }

// newEvent starts an event of type t at time at for connection c, with
// its token when known. It returns nil when nobody listens.
func (a *Analyzer) newEvent(c *conn, t EventType, at time.Time) *Event {
	if a.onEvent == nil {
		return nil
	}
	e := &Event{Time: at, Rel: at.Sub(a.start).Seconds(), Type: t}
	if c.haveClient {
		e.Token = fmt.Sprintf("%08x", versionToken(c.version, c.clientKey))
	}
	return e
}

// emit hands e (from newEvent) to the handler; nil is ignored.
func (a *Analyzer) emit(e *Event) {
	if e != nil {
		a.onEvent(*e)
	}
}

// subflowEvent is newEvent for an event about sf: its addresses as seen
// from the subflow's initiator.
func (a *Analyzer) subflowEvent(sf *subflow, t EventType, at time.Time) *Event {
	e := a.newEvent(sf.conn, t, at)
	if e != nil {
		e.setAddrs(sf.initiator, sf.responder)
		e.From = side(sf.initiatorIsClient)
	}
	return e
}
