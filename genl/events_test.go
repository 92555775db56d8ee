package genl

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attrSet returns the set of the given attributes.
func attrSet(attrs ...EventAttr) AttrSet {
	var s AttrSet
	for _, a := range attrs {
		s = s.With(a)
	}
	return s
}

// Attribute sets of the events as the kernel sends them.
var (
	// mptcp_event_created() + mptcp_event_add_subflow(), IPv4.
	connAttrs4 = []EventAttr{AttrToken, AttrFamily, AttrSaddr4, AttrDaddr4, AttrSport, AttrDport, AttrLocID, AttrRemID}
	connAttrs6 = []EventAttr{AttrToken, AttrFamily, AttrSaddr6, AttrDaddr6, AttrSport, AttrDport, AttrLocID, AttrRemID}
	// mptcp_event_put_token_and_ssk() without the optional attributes.
	subAttrs4 = append(connAttrs4[:len(connAttrs4):len(connAttrs4)], AttrBackup)
	subAttrs6 = append(connAttrs6[:len(connAttrs6):len(connAttrs6)], AttrBackup)
)

// plus returns attrs with more added.
func plus(attrs []EventAttr, more ...EventAttr) AttrSet {
	return attrSet(attrs...) | attrSet(more...)
}

// Addresses and ports used in the event tests.
var (
	local4  = netip.MustParseAddrPort("10.0.0.1:40000")
	remote4 = netip.MustParseAddrPort("10.0.0.2:8080")
	local6  = netip.MustParseAddrPort("[2001:db8::1]:40001")
	remote6 = netip.MustParseAddrPort("[2001:db8::2]:443")
)

// connPart returns the attributes mptcp_event_add_subflow() puts for the
// subflow local -> remote: family, addresses, ports (network byte order)
// and the two address ids.
func connPart(local, remote netip.AddrPort, locID, remID uint8) []byte {
	fam, sa, da := uint16(afInet), AttrSaddr4, AttrDaddr4
	if !local.Addr().Is4() {
		fam, sa, da = afInet6, AttrSaddr6, AttrDaddr6
	}
	return nlAttrs(
		nlAttr(uint16(AttrFamily), nlU16(fam)...),
		nlAttr(uint16(sa), local.Addr().AsSlice()...),
		nlAttr(uint16(da), remote.Addr().AsSlice()...),
		nlAttr(uint16(AttrSport), nlBE16(local.Port())...),
		nlAttr(uint16(AttrDport), nlBE16(remote.Port())...),
		nlAttr(uint16(AttrLocID), locID),
		nlAttr(uint16(AttrRemID), remID),
	)
}

// Helpers for single attributes.
func evToken(v uint32) []byte               { return nlAttr(uint16(AttrToken), nlU32(v)...) }
func evU8(a EventAttr, v uint8) []byte      { return nlAttr(uint16(a), v) }
func evU16(a EventAttr, v uint16) []byte    { return nlAttr(uint16(a), nlU16(v)...) }
func evU32(a EventAttr, v uint32) []byte    { return nlAttr(uint16(a), nlU32(v)...) }
func evBytes(a EventAttr, b ...byte) []byte { return nlAttr(uint16(a), b...) }

const tok = 0x8badf00d

// eventTests are well-formed events, each with the typed value it decodes
// to.
var eventTests = []struct {
	name  string
	cmd   uint8
	attrs []byte
	want  Event
}{
	{
		name: "CREATED IPv4 server side, old attribute and flags",
		cmd:  uint8(EventCreated),
		attrs: nlAttrs(evToken(tok), evU8(AttrServerSide, 1),
			evU16(AttrFlags, uint16(EventFlagServerSide|EventFlagDenyJoinID0)), connPart(local4, remote4, 0, 0)),
		want: &Created{Connection{Token: tok, Local: local4, Remote: remote4, ServerSide: true,
			Flags: EventFlagServerSide | EventFlagDenyJoinID0, Attrs: plus(connAttrs4, AttrServerSide, AttrFlags)}},
	},
	{
		name:  "CREATED IPv6 client side",
		cmd:   uint8(EventCreated),
		attrs: nlAttrs(evToken(tok), connPart(local6, remote6, 0, 0)),
		want:  &Created{Connection{Token: tok, Local: local6, Remote: remote6, Attrs: attrSet(connAttrs6...)}},
	},
	{
		name:  "ESTABLISHED server side from the flags bit alone",
		cmd:   uint8(EventEstablished),
		attrs: nlAttrs(evToken(tok), evU16(AttrFlags, uint16(EventFlagServerSide)), connPart(local4, remote4, 0, 0)),
		want: &Established{Connection{Token: tok, Local: local4, Remote: remote4, ServerSide: true,
			Flags: EventFlagServerSide, Attrs: plus(connAttrs4, AttrFlags)}},
	},
	{
		name:  "ESTABLISHED server side from the old attribute alone",
		cmd:   uint8(EventEstablished),
		attrs: nlAttrs(evToken(tok), evU8(AttrServerSide, 1), connPart(local6, remote6, 0, 0)),
		want: &Established{Connection{Token: tok, Local: local6, Remote: remote6, ServerSide: true,
			Attrs: plus(connAttrs6, AttrServerSide)}},
	},
	{
		name:  "ESTABLISHED client side, old kernel sending server_side 0",
		cmd:   uint8(EventEstablished),
		attrs: nlAttrs(evToken(tok), evU8(AttrServerSide, 0), connPart(local4, remote4, 0, 0)),
		want:  &Established{Connection{Token: tok, Local: local4, Remote: remote4, Attrs: plus(connAttrs4, AttrServerSide)}},
	},
	{
		name: "ESTABLISHED deny_join_id0 with timeout",
		cmd:  uint8(EventEstablished),
		attrs: nlAttrs(evToken(tok), evU16(AttrFlags, uint16(EventFlagDenyJoinID0)), evU32(AttrTimeout, 120),
			connPart(local4, remote4, 0, 0)),
		want: &Established{Connection{Token: tok, Local: local4, Remote: remote4, Flags: EventFlagDenyJoinID0,
			Timeout: 120, Attrs: plus(connAttrs4, AttrFlags, AttrTimeout)}},
	},
	{
		name:  "CLOSED",
		cmd:   uint8(EventClosed),
		attrs: evToken(tok),
		want:  &Closed{Token: tok, Attrs: attrSet(AttrToken)},
	},
	{
		name:  "CLOSED without attributes",
		cmd:   uint8(EventClosed),
		attrs: nil,
		want:  &Closed{},
	},
	{
		name: "ANNOUNCED IPv4 with dport, as the kernel sends it (no family)",
		cmd:  uint8(EventAnnounced),
		attrs: nlAttrs(evToken(tok), evU8(AttrRemID, 2), evBytes(AttrDport, nlBE16(8080)...),
			evBytes(AttrDaddr4, nlIP("192.0.2.7")...)),
		want: &Announced{Token: tok, RemoteID: 2, Remote: netip.MustParseAddrPort("192.0.2.7:8080"),
			Attrs: attrSet(AttrToken, AttrRemID, AttrDport, AttrDaddr4)},
	},
	{
		name: "ANNOUNCED IPv6 with family, without dport",
		cmd:  uint8(EventAnnounced),
		attrs: nlAttrs(evToken(tok), evU8(AttrRemID, 3), evU16(AttrFamily, afInet6),
			evBytes(AttrDaddr6, nlIP("2001:db8::7")...)),
		want: &Announced{Token: tok, RemoteID: 3, Remote: netip.MustParseAddrPort("[2001:db8::7]:0"),
			Attrs: attrSet(AttrToken, AttrRemID, AttrFamily, AttrDaddr6)},
	},
	{
		name: "ANNOUNCED IPv4 with family and port 0",
		cmd:  uint8(EventAnnounced),
		attrs: nlAttrs(evToken(tok), evU8(AttrRemID, 4), evU16(AttrFamily, afInet),
			evBytes(AttrDport, 0, 0), evBytes(AttrDaddr4, nlIP("192.0.2.8")...)),
		want: &Announced{Token: tok, RemoteID: 4, Remote: netip.MustParseAddrPort("192.0.2.8:0"),
			Attrs: attrSet(AttrToken, AttrRemID, AttrFamily, AttrDport, AttrDaddr4)},
	},
	{
		name:  "REMOVED",
		cmd:   uint8(EventRemoved),
		attrs: nlAttrs(evToken(tok), evU8(AttrRemID, 5)),
		want:  &Removed{Token: tok, RemoteID: 5, Attrs: attrSet(AttrToken, AttrRemID)},
	},
	{
		name: "SF_ESTABLISHED IPv4 bound to an interface",
		cmd:  uint8(EventSubEstablished),
		attrs: nlAttrs(evToken(tok), connPart(local4, remote4, 1, 0), evU8(AttrBackup, 0),
			evU32(AttrIfIdx, 3)),
		want: &SubflowEstablished{Subflow{Token: tok, LocalID: 1, Local: local4, Remote: remote4, Ifindex: 3,
			Attrs: plus(subAttrs4, AttrIfIdx)}},
	},
	{
		name: "SF_ESTABLISHED IPv4-mapped addresses on an IPv6 socket",
		cmd:  uint8(EventSubEstablished),
		attrs: nlAttrs(evToken(tok), connPart(netip.MustParseAddrPort("[::ffff:10.0.0.1]:40002"),
			netip.MustParseAddrPort("[::ffff:10.0.0.2]:80"), 2, 1), evU8(AttrBackup, 1)),
		want: &SubflowEstablished{Subflow{Token: tok, LocalID: 2, RemoteID: 1, Backup: true,
			Local:  netip.MustParseAddrPort("[::ffff:10.0.0.1]:40002"),
			Remote: netip.MustParseAddrPort("[::ffff:10.0.0.2]:80"),
			Attrs:  attrSet(subAttrs6...)}},
	},
	{
		name: "SF_CLOSED IPv4 with error and reset",
		cmd:  uint8(EventSubClosed),
		attrs: nlAttrs(evToken(tok), connPart(local4, remote4, 3, 2), evU8(AttrBackup, 0), evU8(AttrError, 111),
			evU32(AttrResetReason, 4), evU32(AttrResetFlags, 1)),
		want: &SubflowClosed{Subflow{Token: tok, LocalID: 3, RemoteID: 2, Local: local4, Remote: remote4,
			Error: 111, ResetReason: 4, ResetFlags: 1,
			Attrs: plus(subAttrs4, AttrError, AttrResetReason, AttrResetFlags)}},
	},
	{
		name:  "SF_CLOSED IPv6 without error",
		cmd:   uint8(EventSubClosed),
		attrs: nlAttrs(evToken(tok), connPart(local6, remote6, 4, 0), evU8(AttrBackup, 1)),
		want: &SubflowClosed{Subflow{Token: tok, LocalID: 4, Local: local6, Remote: remote6, Backup: true,
			Attrs: attrSet(subAttrs6...)}},
	},
	{
		name:  "SF_PRIO",
		cmd:   uint8(EventSubPriority),
		attrs: nlAttrs(evToken(tok), connPart(local6, remote6, 5, 6), evU8(AttrBackup, 1), evU32(AttrIfIdx, 9)),
		want: &SubflowPriority{Subflow{Token: tok, LocalID: 5, RemoteID: 6, Local: local6, Remote: remote6,
			Backup: true, Ifindex: 9, Attrs: plus(subAttrs6, AttrIfIdx)}},
	},
	{
		name: "LISTENER_CREATED IPv4",
		cmd:  uint8(EventListenerCreated),
		attrs: nlAttrs(evU16(AttrFamily, afInet), evBytes(AttrSport, nlBE16(10100)...),
			evBytes(AttrSaddr4, nlIP("10.0.5.1")...)),
		want: &ListenerCreated{Listener{Local: netip.MustParseAddrPort("10.0.5.1:10100"),
			Attrs: attrSet(AttrFamily, AttrSport, AttrSaddr4)}},
	},
	{
		name: "LISTENER_CLOSED IPv6",
		cmd:  uint8(EventListenerClosed),
		attrs: nlAttrs(evU16(AttrFamily, afInet6), evBytes(AttrSport, nlBE16(10101)...),
			evBytes(AttrSaddr6, nlIP("2001:db8::5")...)),
		want: &ListenerClosed{Listener{Local: netip.MustParseAddrPort("[2001:db8::5]:10101"),
			Attrs: attrSet(AttrFamily, AttrSport, AttrSaddr6)}},
	},
	{
		name: "unknown attributes are skipped",
		cmd:  uint8(EventClosed),
		attrs: nlAttrs(
			nlAttr(0), // MPTCP_ATTR_UNSPEC
			evToken(tok),
			nlAttr(99, 1, 2, 3, 4, 5),
			// Types above 255 must not alias known attributes (0x101
			// would be the token, 0x105 saddr4 with a bad length).
			nlAttr(0x101, nlU32(1)...),
			nlAttr(0x105, 1, 2, 3),
			nlAttr(uint16(lastEventAttr)+1, 0), // past the last known attribute
		),
		want: &Closed{Token: tok, Attrs: attrSet(AttrToken)},
	},
	{
		name:  "unknown event type keeps the known attributes",
		cmd:   4, // MPTCP_EVENT_UNSPEC+4 has no name
		attrs: nlAttrs(evToken(tok), evU8(AttrRemID, 1), evU16(AttrFamily, afInet), evBytes(AttrDaddr4, nlIP("10.1.1.1")...)),
		want: &UnknownEvent{Raw: EventFields{Type: 4, Token: tok, RemoteID: 1, Family: afInet,
			Remote:  netip.AddrPortFrom(netip.MustParseAddr("10.1.1.1"), 0),
			Present: attrSet(AttrToken, AttrRemID, AttrFamily, AttrDaddr4)}},
	},
	{
		name: "unknown event type 0 with every attribute",
		cmd:  0,
		attrs: nlAttrs(evToken(1), connPart(local4, remote4, 2, 3), evU8(AttrBackup, 1), evU8(AttrError, 4),
			evU16(AttrFlags, 5), evU32(AttrTimeout, 6), evU32(AttrIfIdx, 0xffffffff), evU32(AttrResetReason, 8),
			evU32(AttrResetFlags, 9), evU8(AttrServerSide, 10)),
		want: &UnknownEvent{Raw: EventFields{Type: 0, Token: 1, Family: afInet, LocalID: 2, RemoteID: 3,
			Local: local4, Remote: remote4, Backup: 1, Error: 4, Flags: 5, Timeout: 6, Ifindex: -1,
			ResetReason: 8, ResetFlags: 9, ServerSide: 10,
			Present: plus(connAttrs4, AttrBackup, AttrError, AttrFlags, AttrTimeout, AttrIfIdx,
				AttrResetReason, AttrResetFlags, AttrServerSide)}},
	},
}

// lastEventAttr is the last event attribute this package knows.
const lastEventAttr = AttrServerSide

// TestDecodeEvent decodes each well-formed event into its typed value.
func TestDecodeEvent(t *testing.T) {
	seen := map[EventType]bool{}
	for _, tt := range eventTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEvent(tt.cmd, tt.attrs)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("DecodeEvent (-want +got):\n%s", diff)
			}
			if got.Type() != EventType(tt.cmd) {
				t.Errorf("Type() = %v, want %v", got.Type(), EventType(tt.cmd))
			}
		})
		seen[EventType(tt.cmd)] = true
	}
	for _, typ := range []EventType{EventCreated, EventEstablished, EventClosed, EventAnnounced, EventRemoved,
		EventSubEstablished, EventSubClosed, EventSubPriority, EventListenerCreated, EventListenerClosed} {
		if !seen[typ] {
			t.Errorf("no test decodes %v", typ)
		}
	}
}

// TestEventFieldsRoundTrip checks that Fields() of a typed event gives back
// exactly the attributes it was decoded from, Present bits included: the
// typed events lose nothing the kernel sends.
func TestEventFieldsRoundTrip(t *testing.T) {
	for _, tt := range eventTests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := decodeEventFields(EventType(tt.cmd), tt.attrs)
			if err != nil {
				t.Fatalf("decodeEventFields: %v", err)
			}
			ev, err := DecodeEvent(tt.cmd, tt.attrs)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if diff := cmp.Diff(raw, ev.Fields(), cmpNetip); diff != "" {
				t.Errorf("Fields() (-decoded +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeEventMalformed checks that malformed attributes give an error
// and no event, never a panic or a partial event.
func TestDecodeEventMalformed(t *testing.T) {
	valid := nlAttrs(evToken(tok), connPart(local4, remote4, 1, 2))
	tests := []struct {
		name  string
		cmd   EventType
		attrs []byte
	}{
		{"truncated attribute header", EventClosed, append(evToken(tok), 8, 0)},
		{"lone byte", EventCreated, []byte{1}},
		{"attribute longer than the message", EventClosed, withLen(evToken(tok), 12)},
		{"attribute length below the header size", EventClosed, nlAttrs(valid, withLen(evToken(tok), 2))},
		{"truncated last attribute header", EventSubEstablished, valid[:len(valid)-6]},
		{"truncated attribute payload", EventClosed, evToken(tok)[:6]},
		{"short saddr4", EventCreated, nlAttrs(valid, evBytes(AttrSaddr4, 10, 0, 0))},
		{"long daddr4", EventSubClosed, nlAttrs(valid, evBytes(AttrDaddr4, 10, 0, 0, 1, 2))},
		{"short saddr6", EventListenerCreated, evBytes(AttrSaddr6, make([]byte, 15)...)},
		{"IPv4 address in daddr6", EventAnnounced, evBytes(AttrDaddr6, nlIP("10.0.0.1")...)},
		{"1-byte sport", EventListenerClosed, evBytes(AttrSport, 0x1f)},
		{"4-byte dport", EventAnnounced, evBytes(AttrDport, nlU32(80)...)},
		{"empty dport", EventAnnounced, evBytes(AttrDport)},
		{"2-byte token", EventClosed, evBytes(AttrToken, 1, 2)},
		{"1-byte family", EventCreated, evBytes(AttrFamily, 2)},
		{"2-byte loc id", EventSubEstablished, evBytes(AttrLocID, 1, 0)},
		{"empty rem id", EventRemoved, evBytes(AttrRemID)},
		{"2-byte backup", EventSubPriority, evBytes(AttrBackup, 1, 0)},
		{"4-byte error", EventSubClosed, evBytes(AttrError, nlU32(1)...)},
		{"4-byte flags", EventCreated, evBytes(AttrFlags, nlU32(1)...)},
		{"2-byte timeout", EventEstablished, evBytes(AttrTimeout, 1, 0)},
		{"2-byte ifindex", EventSubEstablished, evBytes(AttrIfIdx, 1, 0)},
		{"1-byte reset reason", EventSubClosed, evBytes(AttrResetReason, 1)},
		{"8-byte reset flags", EventSubClosed, evBytes(AttrResetFlags, make([]byte, 8)...)},
		{"4-byte server side", EventCreated, evBytes(AttrServerSide, nlU32(1)...)},
		{"short token in an unknown event", 99, evBytes(AttrToken, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeEvent(uint8(tt.cmd), tt.attrs)
			if err == nil {
				t.Fatalf("DecodeEvent = %#v, nil; want an error", ev)
			}
			if ev != nil {
				t.Errorf("DecodeEvent returned event %#v with error %v, want nil", ev, err)
			}
			if want := "decode mptcp event " + tt.cmd.String(); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the event (%q)", err, want)
			}
		})
	}
}
