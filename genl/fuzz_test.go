package genl

// Fuzz targets for the decoders of everything the kernel sends: events,
// GET_ADDR and GET_LIMITS replies, and the controller's family description.
// Run one at a time, e.g.
//
//	go test ./genl -run '^$' -fuzz '^FuzzDecodeEvent$' -fuzztime 60s
//
// The seeds below and the files under testdata/fuzz/<target>/ (among them
// messages captured from a Linux 6.18 kernel) also run as ordinary tests.

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// FuzzDecodeEvent decodes arbitrary events. Besides not panicking, a decoded
// event must have the right type, keep every attribute its type carries in
// Fields() (checked against a model of the typed structs), report zero for
// every attribute that was absent, and ignore an unknown attribute appended
// to it.
func FuzzDecodeEvent(f *testing.F) {
	for _, tt := range eventTests {
		f.Add(tt.cmd, tt.attrs)
	}
	f.Add(uint8(EventClosed), []byte{})
	f.Add(uint8(EventCreated), evBytes(AttrSaddr4, 10, 0, 0))
	f.Add(uint8(EventListenerClosed), evBytes(AttrSport, 0x1f))
	f.Add(uint8(EventSubClosed), append(evToken(1), 8, 0))
	f.Add(uint8(EventAnnounced), withLen(evToken(1), 40))

	f.Fuzz(func(t *testing.T, cmd uint8, attrs []byte) {
		ev, err := DecodeEvent(cmd, attrs)
		raw, rawErr := decodeEventFields(EventType(cmd), attrs)
		if (err == nil) != (rawErr == nil) {
			t.Fatalf("DecodeEvent error %v, decodeEventFields error %v", err, rawErr)
		}
		if err != nil {
			if ev != nil {
				t.Fatalf("DecodeEvent returned %#v with error %v", ev, err)
			}
			return
		}
		if ev.Type() != EventType(cmd) {
			t.Errorf("Type() = %v, want %v", ev.Type(), EventType(cmd))
		}
		if _, unknown := ev.(*UnknownEvent); unknown == knownEventTypes[EventType(cmd)] {
			t.Errorf("event type %v decoded to %T", EventType(cmd), ev)
		}
		got := ev.Fields()
		if diff := cmp.Diff(modelFields(raw), got, cmpNetip); diff != "" {
			t.Errorf("Fields() (-model +got):\n%s", diff)
		}
		checkAbsentIsZero(t, got)

		// Unknown attributes change nothing, including types above 255
		// whose low byte is a known attribute.
		if len(attrs)%4 == 0 {
			more := slices.Clone(attrs)
			for a := range lastEventAttr + 1 {
				more = append(more, nlAttr(0x100|uint16(a), 1, 2, 3, 4)...)
			}
			more = append(more, nlAttr(uint16(lastEventAttr)+1, 1)...)
			ev2, err := DecodeEvent(cmd, more)
			if err != nil {
				t.Fatalf("with unknown attributes appended: %v", err)
			}
			if diff := cmp.Diff(ev, ev2, cmpNetip); diff != "" {
				t.Errorf("unknown attributes changed the event (-without +with):\n%s", diff)
			}
		}
	})
}

// knownEventTypes are the event types with a typed struct.
var knownEventTypes = map[EventType]bool{
	EventCreated: true, EventEstablished: true, EventClosed: true, EventAnnounced: true, EventRemoved: true,
	EventSubEstablished: true, EventSubClosed: true, EventSubPriority: true,
	EventListenerCreated: true, EventListenerClosed: true,
}

// modelFields returns what Fields() of the typed event decoded into raw
// must return: the attributes its struct keeps, with Backup and the old
// server-side attribute reduced to 0 or 1, and Family, when the event had
// one, derived from the addresses as the kernel derives it.
func modelFields(raw EventFields) EventFields {
	m := EventFields{Type: raw.Type, Present: raw.Present}
	family := func(addrs ...netip.Addr) uint16 {
		if !raw.Present.Has(AttrFamily) {
			return 0
		}
		for _, a := range addrs {
			switch {
			case a.Is4():
				return unix.AF_INET
			case a.IsValid():
				return unix.AF_INET6
			}
		}
		return 0
	}
	oneIf := func(b bool) uint8 {
		if b {
			return 1
		}
		return 0
	}
	switch raw.Type {
	case EventCreated, EventEstablished:
		m.Token, m.Local, m.Remote, m.Flags, m.Timeout = raw.Token, raw.Local, raw.Remote, raw.Flags, raw.Timeout
		m.Family = family(raw.Local.Addr(), raw.Remote.Addr())
		m.ServerSide = oneIf(raw.Present.Has(AttrServerSide) && (raw.ServerSide != 0 || raw.Flags&EventFlagServerSide != 0))
	case EventClosed:
		m.Token = raw.Token
	case EventAnnounced:
		m.Token, m.RemoteID, m.Remote, m.Timeout = raw.Token, raw.RemoteID, raw.Remote, raw.Timeout
		m.Family = family(raw.Remote.Addr())
	case EventRemoved:
		m.Token, m.RemoteID = raw.Token, raw.RemoteID
	case EventSubEstablished, EventSubClosed, EventSubPriority:
		m.Token, m.LocalID, m.RemoteID, m.Local, m.Remote = raw.Token, raw.LocalID, raw.RemoteID, raw.Local, raw.Remote
		m.Error, m.Ifindex, m.ResetReason, m.ResetFlags = raw.Error, raw.Ifindex, raw.ResetReason, raw.ResetFlags
		m.Backup = oneIf(raw.Backup != 0)
		m.Family = family(raw.Local.Addr(), raw.Remote.Addr())
	case EventListenerCreated, EventListenerClosed:
		m.Local = raw.Local
		m.Family = family(raw.Local.Addr())
	default:
		return raw
	}
	return m
}

// checkAbsentIsZero checks EventFields' promise that the fields of absent
// attributes are zero.
func checkAbsentIsZero(t *testing.T, f EventFields) {
	t.Helper()
	has := f.Present.Has
	checks := []struct {
		name    string
		present bool
		zero    bool
	}{
		{"token", has(AttrToken), f.Token == 0},
		{"family", has(AttrFamily), f.Family == 0},
		{"local id", has(AttrLocID), f.LocalID == 0},
		{"remote id", has(AttrRemID), f.RemoteID == 0},
		{"local address", has(AttrSaddr4) || has(AttrSaddr6), !f.Local.Addr().IsValid()},
		{"local port", has(AttrSport), f.Local.Port() == 0},
		{"remote address", has(AttrDaddr4) || has(AttrDaddr6), !f.Remote.Addr().IsValid()},
		{"remote port", has(AttrDport), f.Remote.Port() == 0},
		{"backup", has(AttrBackup), f.Backup == 0},
		{"error", has(AttrError), f.Error == 0},
		{"flags", has(AttrFlags), f.Flags == 0},
		{"timeout", has(AttrTimeout), f.Timeout == 0},
		{"ifindex", has(AttrIfIdx), f.Ifindex == 0},
		{"reset reason", has(AttrResetReason), f.ResetReason == 0},
		{"reset flags", has(AttrResetFlags), f.ResetFlags == 0},
		{"server side", has(AttrServerSide), f.ServerSide == 0},
	}
	for _, c := range checks {
		if !c.present && !c.zero {
			t.Errorf("%s is set but its attribute was absent: %+v", c.name, f)
		}
	}
	for a := range EventAttr(64) {
		if has(a) && (a == 0 || a > lastEventAttr) {
			t.Errorf("Present has unknown attribute %d", a)
		}
	}
}

// FuzzDecodeEndpointMessage decodes arbitrary GET_ADDR replies. A decoded
// endpoint, encoded again with encodeAddr, must decode to itself, except
// that an IPv4-mapped address comes back as IPv4: encodeAddr sends those as
// AF_INET on purpose, and the kernel treats both forms as one address.
func FuzzDecodeEndpointMessage(f *testing.F) {
	for _, ep := range []Endpoint{
		{ID: 1, Addr: netip.MustParseAddr("10.0.0.1"), Flags: FlagSignal | FlagSubflow},
		{ID: 2, Addr: netip.MustParseAddr("2001:db8::2"), Port: 8443, Flags: FlagSignal | FlagBackup, Ifindex: 7},
		{ID: 3, Addr: netip.MustParseAddr("::ffff:10.0.0.3"), Flags: FlagImplicit},
	} {
		f.Add(endpointReply(ep).Data)
	}
	fam4 := nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...)
	f.Add(addrNestAttr(fam4, nlAttr(addrAttrAddr4, 10, 0, 0)))
	f.Add(addrNestAttr(withLen(nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...), 12)))
	f.Add(addrNestAttr(nlAttr(addrAttrFamily, nlU16(unix.AF_INET6)...), nlAttr(addrAttrAddr4, nlIP("10.0.0.1")...),
		nlAttr(addrAttrAddr6, nlIP("2001:db8::1")...)))
	f.Add(nlAttr(attrToken, nlU32(1)...))

	f.Fuzz(func(t *testing.T, b []byte) {
		ep, err := decodeEndpointMessage(b)
		if err != nil {
			return
		}
		want := ep
		want.Addr = ep.Addr.Unmap()
		for _, o := range []addrOpts{{}, {forceID: true}} {
			got := roundTripEndpoint(t, ep, o)
			if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
				t.Errorf("decode → encodeAddr(%+v) → decode (-want +got):\n%s", o, diff)
			}
		}
	})
}

// FuzzDecodeLimitsMessage decodes arbitrary GET_LIMITS replies; decoded
// limits, encoded again, must decode to themselves.
func FuzzDecodeLimitsMessage(f *testing.F) {
	f.Add(limitsReply(Limits{Subflows: 2, AddAddrAccepted: 8}).Data)
	f.Add(nlAttr(attrSubflows, nlU32(3)...))
	f.Add(nlAttr(attrSubflows, 1, 0))
	f.Add([]byte{4, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeLimitsMessage(b)
		if err != nil {
			return
		}
		got, err := decodeLimitsMessage(limitsReply(l).Data)
		if err != nil || got != l {
			t.Errorf("decode → encode → decode = %+v, %v; want %+v", got, err, l)
		}
	})
}

// FuzzDecodeFamily decodes arbitrary controller replies. A decoded family
// has an id, only op ids that fit a Command and only named groups, and
// encoded again the way the kernel's controller does, decodes to itself.
func FuzzDecodeFamily(f *testing.F) {
	f.Add(encodeFamilyReply(fullFamily()))
	inKernel := fullFamily()
	inKernel.ops = inKernelCommands
	delete(inKernel.groups, eventGroupName)
	f.Add(encodeFamilyReply(inKernel))
	f.Add(nlAttrs(nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU16(0x20)...),
		nlAttr(unix.CTRL_ATTR_OPS|netlink.Nested, nlAttr(1|netlink.Nested, nlAttr(unix.CTRL_ATTR_OP_ID, 1, 0)...)...)))
	f.Add(nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU32(0x20)...))

	f.Fuzz(func(t *testing.T, b []byte) {
		fam, err := decodeFamily(b)
		if err != nil {
			return
		}
		if fam.id == 0 {
			t.Error("decoded family has id 0")
		}
		if _, ok := fam.groups[""]; ok {
			t.Error("decoded family has a group without a name")
		}
		ff := fakeFamily{id: fam.id, version: fam.version, groups: fam.groups}
		for c := range fam.ops {
			ff.ops = append(ff.ops, c)
		}
		slices.Sort(ff.ops)
		got, err := decodeFamily(encodeFamilyReply(ff))
		if err != nil {
			t.Fatalf("decode → encode → decode: %v", err)
		}
		if diff := cmp.Diff(fam, got, cmp.AllowUnexported(family{})); diff != "" {
			t.Errorf("decode → encode → decode (-want +got):\n%s", diff)
		}
	})
}
