package genl

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// addrNestAttr wraps address attributes in an MPTCP_PM_ATTR_ADDR nest.
func addrNestAttr(attrs ...[]byte) []byte {
	return nlAttr(attrAddr|netlink.Nested, nlAttrs(attrs...)...)
}

func TestDecodeEndpointMessage(t *testing.T) {
	fam4 := nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...)
	fam6 := nlAttr(addrAttrFamily, nlU16(unix.AF_INET6)...)
	a4 := nlAttr(addrAttrAddr4, nlIP("10.0.0.1")...)
	a6 := nlAttr(addrAttrAddr6, nlIP("2001:db8::1")...)
	tests := []struct {
		name string
		b    []byte
		want Endpoint
	}{
		{
			name: "IPv4 with every field",
			b: addrNestAttr(fam4, nlAttr(addrAttrID, 3), nlAttr(addrAttrFlags, nlU32(uint32(FlagSignal|FlagBackup))...),
				nlAttr(addrAttrPort, nlU16(10100)...), nlAttr(addrAttrIfIdx, nlU32(4)...), a4),
			want: Endpoint{ID: 3, Addr: netip.MustParseAddr("10.0.0.1"), Port: 10100, Flags: FlagSignal | FlagBackup, Ifindex: 4},
		},
		{
			name: "IPv6",
			b:    addrNestAttr(fam6, nlAttr(addrAttrID, 200), nlAttr(addrAttrFlags, nlU32(uint32(FlagImplicit))...), a6),
			want: Endpoint{ID: 200, Addr: netip.MustParseAddr("2001:db8::1"), Flags: FlagImplicit},
		},
		{
			name: "IPv4-mapped IPv6 stays as the kernel reports it",
			b:    addrNestAttr(fam6, nlAttr(addrAttrID, 3), nlAttr(addrAttrAddr6, nlIP("::ffff:10.0.0.1")...)),
			want: Endpoint{ID: 3, Addr: netip.MustParseAddr("::ffff:10.0.0.1")},
		},
		{
			name: "family selects between two addresses (IPv4)",
			b:    addrNestAttr(fam4, a6, a4),
			want: Endpoint{Addr: netip.MustParseAddr("10.0.0.1")},
		},
		{
			name: "family selects between two addresses (IPv6)",
			b:    addrNestAttr(fam6, a4, a6),
			want: Endpoint{Addr: netip.MustParseAddr("2001:db8::1")},
		},
		{
			name: "no family",
			b:    addrNestAttr(a6),
			want: Endpoint{Addr: netip.MustParseAddr("2001:db8::1")},
		},
		{
			name: "negative ifindex",
			b:    addrNestAttr(fam4, a4, nlAttr(addrAttrIfIdx, nlU32(0xfffffffe)...)),
			want: Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Ifindex: -2},
		},
		{
			name: "unknown attributes skipped",
			b: nlAttrs(nlAttr(attrToken, nlU32(7)...),
				addrNestAttr(nlAttr(99, 1, 2, 3), fam4, nlAttr(addrAttrID, 1), a4, nlAttr(0x4000|8, 1))),
			want: Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1")},
		},
		{
			name: "address nest without NLA_F_NESTED",
			b:    nlAttr(attrAddr, nlAttrs(fam4, nlAttr(addrAttrID, 9), a4)...),
			want: Endpoint{ID: 9, Addr: netip.MustParseAddr("10.0.0.1")},
		},
		{
			name: "address-less nest",
			b:    addrNestAttr(nlAttr(addrAttrID, 9)),
			want: Endpoint{ID: 9},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEndpointMessage(tt.b)
			if err != nil {
				t.Fatalf("decodeEndpointMessage: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("decodeEndpointMessage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeEndpointMessageMalformed checks that malformed GET_ADDR replies
// give an error, never a panic.
func TestDecodeEndpointMessageMalformed(t *testing.T) {
	fam4 := nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no address attribute", nlAttr(attrToken, nlU32(1)...)},
		{"truncated header", []byte{8, 0, 1}},
		{"nest longer than the message", withLen(addrNestAttr(fam4), 32)},
		{"nested attribute longer than the nest", addrNestAttr(withLen(nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...), 12))},
		{"nested attribute shorter than a header", addrNestAttr(withLen(nlAttr(addrAttrID, 1), 3))},
		{"nest holding 3 bytes", nlAttr(attrAddr|netlink.Nested, 1, 2, 3)},
		{"short IPv4 address", addrNestAttr(fam4, nlAttr(addrAttrAddr4, 10, 0, 0))},
		{"long IPv4 address", addrNestAttr(nlAttr(addrAttrAddr4, 10, 0, 0, 1, 0))},
		{"short IPv6 address", addrNestAttr(nlAttr(addrAttrFamily, nlU16(unix.AF_INET6)...), nlAttr(addrAttrAddr6, make([]byte, 15)...))},
		{"1-byte port", addrNestAttr(fam4, nlAttr(addrAttrPort, 1))},
		{"2-byte flags", addrNestAttr(nlAttr(addrAttrFlags, 1, 0))},
		{"8-byte ifindex", addrNestAttr(nlAttr(addrAttrIfIdx, make([]byte, 8)...))},
		{"2-byte id", addrNestAttr(nlAttr(addrAttrID, 1, 0))},
		{"4-byte family", addrNestAttr(nlAttr(addrAttrFamily, nlU32(2)...))},
		{"good nest then garbage", nlAttrs(addrNestAttr(fam4), []byte{0xff})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ep, err := decodeEndpointMessage(tt.b); err == nil {
				t.Errorf("decodeEndpointMessage = %+v, nil; want an error", ep)
			}
		})
	}
}

// TestEncodeAddrRoundTrip checks that decodeAddr reads back what encodeAddr
// writes.
func TestEncodeAddrRoundTrip(t *testing.T) {
	tests := []Endpoint{
		{},
		{ID: 1},
		{ID: 255, Addr: netip.MustParseAddr("10.0.0.1"), Port: 65535, Flags: FlagSignal | FlagLaminar | 1<<31, Ifindex: 12},
		{Addr: netip.MustParseAddr("2001:db8::1"), Port: 1},
		{Addr: netip.MustParseAddr("::"), Ifindex: -1},
		{Addr: netip.MustParseAddr("0.0.0.0"), Flags: FlagBackup},
	}
	for _, ep := range tests {
		got := roundTripEndpoint(t, ep, addrOpts{})
		if diff := cmp.Diff(ep, got, cmpNetip); diff != "" {
			t.Errorf("encodeAddr → decodeAddr (-want +got):\n%s", diff)
		}
	}
	// An IPv4-mapped address is sent as IPv4; the kernel treats both forms
	// as the same address.
	mapped := Endpoint{ID: 2, Addr: netip.MustParseAddr("::ffff:10.0.0.1")}
	got := roundTripEndpoint(t, mapped, addrOpts{})
	if want := (Endpoint{ID: 2, Addr: netip.MustParseAddr("10.0.0.1")}); got != want {
		t.Errorf("mapped address: got %+v, want %+v", got, want)
	}
}

// roundTripEndpoint encodes ep into a GET_ADDR-shaped message and decodes it.
func roundTripEndpoint(t testing.TB, ep Endpoint, o addrOpts) Endpoint {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	addrNest(ae, attrAddr, ep, o)
	b, err := ae.Encode()
	if err != nil {
		t.Fatalf("encode %+v: %v", ep, err)
	}
	got, err := decodeEndpointMessage(b)
	if err != nil {
		t.Fatalf("decode %+v: %v", ep, err)
	}
	return got
}

func TestDecodeLimitsMessage(t *testing.T) {
	got, err := decodeLimitsMessage(nlAttrs(nlAttr(attrSubflows, nlU32(3)...), nlAttr(99, 1), nlAttr(attrRcvAddAddrs, nlU32(8)...)))
	if want := (Limits{Subflows: 3, AddAddrAccepted: 8}); err != nil || got != want {
		t.Errorf("decodeLimitsMessage = %+v, %v; want %+v, nil", got, err, want)
	}
	got, err = decodeLimitsMessage(nil)
	if err != nil || got != (Limits{}) {
		t.Errorf("decodeLimitsMessage(nil) = %+v, %v; want zero, nil", got, err)
	}
	for _, b := range [][]byte{
		nlAttr(attrSubflows, 1, 0),
		nlAttr(attrRcvAddAddrs, make([]byte, 8)...),
		{4, 0},
		withLen(nlAttr(attrSubflows, nlU32(1)...), 40),
	} {
		if l, err := decodeLimitsMessage(b); err == nil {
			t.Errorf("decodeLimitsMessage(%x) = %+v, nil; want an error", b, l)
		}
	}
}

func TestDecodeFamily(t *testing.T) {
	f := fullFamily()
	got, err := decodeFamily(encodeFamilyReply(f))
	if err != nil {
		t.Fatalf("decodeFamily: %v", err)
	}
	want := family{id: f.id, version: familyVersion, groups: f.groups, ops: map[Command]bool{}}
	for _, c := range f.ops {
		want.ops[c] = true
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(family{})); diff != "" {
		t.Errorf("decodeFamily (-want +got):\n%s", diff)
	}

	// Op ids that do not fit a Command are ignored; groups without a name
	// are dropped.
	b := nlAttrs(
		nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU16(0x20)...),
		nlAttr(unix.CTRL_ATTR_OPS|netlink.Nested, nlAttrs(
			nlAttr(1|netlink.Nested, nlAttr(unix.CTRL_ATTR_OP_ID, nlU32(3)...)...),
			nlAttr(2|netlink.Nested, nlAttr(unix.CTRL_ATTR_OP_ID, nlU32(0x104)...)...),
		)...),
		nlAttr(unix.CTRL_ATTR_MCAST_GROUPS|netlink.Nested, nlAttrs(
			nlAttr(1|netlink.Nested, nlAttr(unix.CTRL_ATTR_MCAST_GRP_ID, nlU32(5)...)...),
			nlAttr(2|netlink.Nested, nlAttrs(nlAttr(unix.CTRL_ATTR_MCAST_GRP_ID, nlU32(6)...),
				nlAttr(unix.CTRL_ATTR_MCAST_GRP_NAME, []byte("g\x00")...))...),
		)...),
	)
	got, err = decodeFamily(b)
	if err != nil {
		t.Fatalf("decodeFamily: %v", err)
	}
	want = family{id: 0x20, groups: map[string]uint32{"g": 6}, ops: map[Command]bool{3: true}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(family{})); diff != "" {
		t.Errorf("decodeFamily (-want +got):\n%s", diff)
	}
}

// TestDecodeFamilyMalformed checks that malformed controller replies give an
// error, never a panic.
func TestDecodeFamilyMalformed(t *testing.T) {
	id := nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU16(0x20)...)
	op := func(inner ...[]byte) []byte {
		return nlAttr(unix.CTRL_ATTR_OPS|netlink.Nested, nlAttr(1|netlink.Nested, nlAttrs(inner...)...)...)
	}
	grp := func(inner ...[]byte) []byte {
		return nlAttr(unix.CTRL_ATTR_MCAST_GROUPS|netlink.Nested, nlAttr(1|netlink.Nested, nlAttrs(inner...)...)...)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no family id", nlAttr(unix.CTRL_ATTR_FAMILY_NAME, []byte("mptcp_pm\x00")...)},
		{"family id 0", nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU16(0)...)},
		{"4-byte family id", nlAttr(unix.CTRL_ATTR_FAMILY_ID, nlU32(0x20)...)},
		{"2-byte version", nlAttrs(id, nlAttr(unix.CTRL_ATTR_VERSION, 1, 0))},
		{"truncated header", append(id, 1, 0)},
		{"attribute longer than the message", withLen(id, 9)},
		{"ops array holding 3 bytes", nlAttrs(id, nlAttr(unix.CTRL_ATTR_OPS, 1, 2, 3))},
		{"op nest longer than the array", nlAttrs(id, nlAttr(unix.CTRL_ATTR_OPS, withLen(nlAttr(1, nlAttr(unix.CTRL_ATTR_OP_ID, nlU32(1)...)...), 40)...))},
		{"op nest holding 2 bytes", nlAttrs(id, nlAttr(unix.CTRL_ATTR_OPS, nlAttr(1, 1, 2)...))},
		{"2-byte op id", nlAttrs(id, op(nlAttr(unix.CTRL_ATTR_OP_ID, 1, 0)))},
		{"op id longer than the op nest", nlAttrs(id, op(withLen(nlAttr(unix.CTRL_ATTR_OP_ID, nlU32(1)...), 12)))},
		{"groups array holding 3 bytes", nlAttrs(id, nlAttr(unix.CTRL_ATTR_MCAST_GROUPS, 1, 2, 3))},
		{"group nest holding 1 byte", nlAttrs(id, nlAttr(unix.CTRL_ATTR_MCAST_GROUPS, nlAttr(1, 7)...))},
		{"2-byte group id", nlAttrs(id, grp(nlAttr(unix.CTRL_ATTR_MCAST_GRP_ID, 1, 0), nlAttr(unix.CTRL_ATTR_MCAST_GRP_NAME, 'g', 0)))},
		{"group name longer than the group nest", nlAttrs(id, grp(withLen(nlAttr(unix.CTRL_ATTR_MCAST_GRP_NAME, 'g', 0), 20)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := decodeFamily(tt.b); err == nil {
				t.Errorf("decodeFamily = %+v, nil; want an error", f)
			}
		})
	}
}
