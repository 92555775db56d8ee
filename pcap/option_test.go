package pcap

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addrCmp lets cmp compare netip values, whose fields are unexported.
func addrCmp() cmp.Option {
	return cmp.Options{
		cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
		cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y }),
	}
}

// opt builds an MPTCP option: kind, computed length, then body.
func opt(body ...byte) []byte {
	return append([]byte{OptionKind, byte(len(body) + 2)}, body...)
}

func be64(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0xa0 + i)
	}
	return b
}

func TestDecodeOption(t *testing.T) {
	const k1, k2 = 0x0102030405060708, 0x1112131415161718
	tests := []struct {
		name string
		in   []byte
		want Option
	}{
		{"capable v1 SYN", opt(0x01, 0x81), &MPCapable{Version: 1, Flags: 0x81, Checksum: true, HMACSHA256: true}},
		{"capable v1 SYN/ACK", opt(cat([]byte{0x01, 0x01}, be64(k1))...),
			&MPCapable{Version: 1, Flags: 0x01, HMACSHA256: true, SenderKey: k1, HasSenderKey: true}},
		{"capable v1 ACK", opt(cat([]byte{0x01, 0x41}, be64(k1), be64(k2))...),
			&MPCapable{Version: 1, Flags: 0x41, Extensibility: true, HMACSHA256: true, SenderKey: k1, HasSenderKey: true, ReceiverKey: k2, HasReceiverKey: true}},
		{"capable v1 ACK with data", opt(cat([]byte{0x01, 0x21}, be64(k1), be64(k2), be16(1400))...),
			&MPCapable{Version: 1, Flags: 0x21, NoSrcAddr: true, HMACSHA256: true, SenderKey: k1, HasSenderKey: true, ReceiverKey: k2, HasReceiverKey: true, DataLen: 1400, HasDataLen: true}},
		{"capable v1 ACK with data and checksum", opt(cat([]byte{0x01, 0x81}, be64(k1), be64(k2), be16(10), be16(0xbeef))...),
			&MPCapable{Version: 1, Flags: 0x81, Checksum: true, HMACSHA256: true, SenderKey: k1, HasSenderKey: true, ReceiverKey: k2, HasReceiverKey: true, DataLen: 10, HasDataLen: true, DataChecksum: 0xbeef, HasChecksum: true}},
		{"capable v0 SYN", opt(cat([]byte{0x00, 0x81}, be64(k1))...),
			&MPCapable{Version: 0, Flags: 0x81, Checksum: true, HMACSHA256: true, SenderKey: k1, HasSenderKey: true}},
		{"capable v0 ACK", opt(cat([]byte{0x00, 0x01}, be64(k1), be64(k2))...),
			&MPCapable{Version: 0, Flags: 0x01, HMACSHA256: true, SenderKey: k1, HasSenderKey: true, ReceiverKey: k2, HasReceiverKey: true}},
		{"join SYN backup", opt(cat([]byte{0x11, 0x05}, be32(0xdeadbeef), be32(0x01020304))...),
			&MPJoin{Form: JoinSYN, Backup: true, AddrID: 5, Token: 0xdeadbeef, Nonce: 0x01020304}},
		{"join SYN/ACK", opt(cat([]byte{0x10, 0x07}, be64(k2), be32(0xcafef00d))...),
			&MPJoin{Form: JoinSYNACK, AddrID: 7, TruncatedHMAC: k2, Nonce: 0xcafef00d}},
		{"join ACK", opt(cat([]byte{0x10, 0x00}, seq(20))...),
			&MPJoin{Form: JoinACK, HMAC: seq(20)}},
		{"dss ack32 only", opt(cat([]byte{0x20, 0x01}, be32(77))...),
			&DSS{Flags: 0x01, HasDataACK: true, DataACK: 77}},
		{"dss ack64 only", opt(cat([]byte{0x20, 0x03}, be64(k1))...),
			&DSS{Flags: 0x03, HasDataACK: true, DataACK64: true, DataACK: k1}},
		{"dss map64 no csum", opt(cat([]byte{0x20, 0x0c}, be64(k2), be32(9), be16(100))...),
			&DSS{Flags: 0x0c, HasMapping: true, DSN64: true, DSN: k2, SubflowSeq: 9, DataLen: 100}},
		{"dss map32 csum", opt(cat([]byte{0x20, 0x04}, be32(1234), be32(1), be16(5), be16(0xabcd))...),
			&DSS{Flags: 0x04, HasMapping: true, DSN: 1234, SubflowSeq: 1, DataLen: 5, HasChecksum: true, Checksum: 0xabcd}},
		{"dss ack64 map64 csum fin", opt(cat([]byte{0x20, 0x1f}, be64(k1), be64(k2), be32(0), be16(1), be16(0x1111))...),
			&DSS{Flags: 0x1f, DataFIN: true, HasDataACK: true, DataACK64: true, DataACK: k1, HasMapping: true, DSN64: true, DSN: k2, DataLen: 1, HasChecksum: true, Checksum: 0x1111}},
		{"dss no flags", opt(0x20, 0x00), &DSS{}},
		{"add_addr v4", opt(cat([]byte{0x30, 0x02, 10, 0, 0, 2}, be64(k1))...),
			&AddAddr{AddrID: 2, Addr: netip.MustParseAddr("10.0.0.2"), HasHMAC: true, HMAC: k1}},
		{"add_addr v4 port", opt(cat([]byte{0x30, 0x02, 10, 0, 0, 2}, be16(8080), be64(k1))...),
			&AddAddr{AddrID: 2, Addr: netip.MustParseAddr("10.0.0.2"), HasPort: true, Port: 8080, HasHMAC: true, HMAC: k1}},
		{"add_addr v6", opt(cat([]byte{0x30, 0x03}, netip.MustParseAddr("2001:db8::1").AsSlice(), be64(k2))...),
			&AddAddr{AddrID: 3, Addr: netip.MustParseAddr("2001:db8::1"), HasHMAC: true, HMAC: k2}},
		{"add_addr v6 port", opt(cat([]byte{0x30, 0x03}, netip.MustParseAddr("2001:db8::1").AsSlice(), be16(443), be64(k2))...),
			&AddAddr{AddrID: 3, Addr: netip.MustParseAddr("2001:db8::1"), HasPort: true, Port: 443, HasHMAC: true, HMAC: k2}},
		{"add_addr v4 echo", opt(0x31, 0x02, 10, 0, 0, 2),
			&AddAddr{Echo: true, AddrID: 2, Addr: netip.MustParseAddr("10.0.0.2")}},
		{"add_addr v4 echo port", opt(0x31, 0x02, 10, 0, 0, 2, 0x1f, 0x90),
			&AddAddr{Echo: true, AddrID: 2, Addr: netip.MustParseAddr("10.0.0.2"), HasPort: true, Port: 8080}},
		{"add_addr v6 echo", opt(cat([]byte{0x31, 0x09}, netip.MustParseAddr("fe80::2").AsSlice())...),
			&AddAddr{Echo: true, AddrID: 9, Addr: netip.MustParseAddr("fe80::2")}},
		{"add_addr v6 echo port", opt(cat([]byte{0x31, 0x09}, netip.MustParseAddr("fe80::2").AsSlice(), be16(1))...),
			&AddAddr{Echo: true, AddrID: 9, Addr: netip.MustParseAddr("fe80::2"), HasPort: true, Port: 1}},
		{"remove_addr one", opt(0x40, 0x04), &RemoveAddr{AddrIDs: []uint8{4}}},
		{"remove_addr three", opt(0x40, 1, 2, 3), &RemoveAddr{AddrIDs: []uint8{1, 2, 3}}},
		{"prio backup", opt(0x51), &MPPrio{Backup: true}},
		{"prio v0 with id", opt(0x50, 0x06), &MPPrio{HasAddrID: true, AddrID: 6}},
		{"fail", opt(cat([]byte{0x60, 0x00}, be64(k1))...), &MPFail{DSN: k1}},
		{"fastclose", opt(cat([]byte{0x70, 0x00}, be64(k2))...), &MPFastclose{ReceiverKey: k2}},
		{"tcprst transient", opt(0x81, 0x06), &MPTCPRst{Flags: 0x1, Transient: true, Reason: ResetMiddleboxInterference}},
		{"tcprst UVW", opt(0x8e, 0x02), &MPTCPRst{Flags: 0xe, Reason: ResetLackOfResources}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeOption(tt.in)
			if err != nil {
				t.Fatalf("DecodeOption(% x): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp()); diff != "" {
				t.Errorf("DecodeOption(% x) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if got.Subtype() != tt.want.Subtype() {
				t.Errorf("Subtype() = %v, want %v", got.Subtype(), tt.want.Subtype())
			}
		})
	}
}

func TestDecodeOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"kind only", []byte{30}, ErrTruncated},
		{"wrong kind", []byte{2, 4, 5, 0xb4}, ErrNotMPTCP},
		{"length 2", []byte{30, 2}, ErrBadLength},
		{"length 0", []byte{30, 0, 0}, ErrBadLength},
		{"length beyond data", []byte{30, 12, 0x01, 0x01}, ErrTruncated},
		{"trailing bytes", []byte{30, 4, 0x01, 0x01, 0}, ErrBadLength},
		{"capable no flags", opt(0x01), ErrTruncated},
		{"capable v1 len 8", opt(0x01, 0x01, 1, 2, 3, 4), ErrBadLength},
		{"capable v1 len 16", opt(cat([]byte{0x01, 0x01}, seq(12))...), ErrBadLength},
		{"capable v0 len 4", opt(0x00, 0x01), ErrBadLength},
		{"capable v0 len 22", opt(cat([]byte{0x00, 0x01}, seq(18))...), ErrBadLength},
		{"capable v2", opt(0x02, 0x01), ErrUnsupportedVersion},
		{"join len 3", opt(0x10), ErrBadLength},
		{"join len 13", opt(cat([]byte{0x10, 0x00}, seq(9))...), ErrBadLength},
		{"join len 20", opt(cat([]byte{0x10, 0x00}, seq(16))...), ErrBadLength},
		{"dss no flags byte", opt(0x20), ErrTruncated},
		{"dss ack flag, short", opt(0x20, 0x01, 1, 2), ErrBadLength},
		{"dss ack64 flag, 4 bytes", opt(cat([]byte{0x20, 0x03}, seq(4))...), ErrBadLength},
		{"dss map32, too short", opt(cat([]byte{0x20, 0x04}, seq(8))...), ErrBadLength},
		{"dss map32, one extra byte", opt(cat([]byte{0x20, 0x04}, seq(11))...), ErrBadLength},
		{"dss map64, too long", opt(cat([]byte{0x20, 0x0c}, seq(20))...), ErrBadLength},
		{"dss no flags, extra", opt(0x20, 0x00, 0), ErrBadLength},
		{"add_addr no id", opt(0x30), ErrTruncated},
		{"add_addr v4 without hmac", opt(0x30, 1, 10, 0, 0, 1), ErrBadLength},
		{"add_addr echo with hmac", opt(cat([]byte{0x31, 0x01, 10, 0, 0, 1}, seq(8))...), ErrBadLength},
		{"add_addr 5 byte address", opt(cat([]byte{0x31, 0x01}, seq(5))...), ErrBadLength},
		{"remove_addr empty", opt(0x40), ErrBadLength},
		{"prio too long", opt(0x51, 1, 2), ErrBadLength},
		{"fail short", opt(0x60, 0, 1, 2, 3), ErrBadLength},
		{"fastclose long", opt(cat([]byte{0x70, 0}, seq(9))...), ErrBadLength},
		{"tcprst short", opt(0x80), ErrBadLength},
		{"tcprst long", opt(0x80, 1, 2), ErrBadLength},
		{"experimental", opt(0xf0, 0), ErrUnknownSubtype},
		{"subtype 9", opt(0x90, 0), ErrUnknownSubtype},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeOption(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeOption(% x) = %v, %v; want error %v", tt.in, got, err, tt.want)
			}
			if got != nil {
				t.Errorf("DecodeOption(% x) returned option %#v with error", tt.in, got)
			}
		})
	}
}

// TestDecodeOptionTruncations cuts every valid option at every length and
// checks that each prefix is rejected rather than misread.
func TestDecodeOptionTruncations(t *testing.T) {
	valid := [][]byte{
		opt(cat([]byte{0x01, 0x81}, seq(16), be16(10), be16(1))...),
		opt(cat([]byte{0x10, 0x00}, seq(20))...),
		opt(cat([]byte{0x20, 0x1f}, seq(22))...),
		opt(cat([]byte{0x30, 0x03}, seq(26))...),
		opt(cat([]byte{0x60, 0x00}, seq(8))...),
	}
	for _, v := range valid {
		if _, err := DecodeOption(v); err != nil {
			t.Fatalf("DecodeOption(% x): %v", v, err)
		}
		for n := 0; n < len(v); n++ {
			if _, err := DecodeOption(v[:n]); !errors.Is(err, ErrTruncated) {
				t.Errorf("DecodeOption(% x) = %v, want ErrTruncated", v[:n], err)
			}
		}
	}
}

func TestMPTCPOptions(t *testing.T) {
	dss := opt(0x20, 0x01, 0, 0, 0, 1)
	rst := opt(0x81, 0x01)
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr error
	}{
		{"empty", nil, nil, nil},
		{"mss nop dss", cat([]byte{2, 4, 5, 0xb4, 1, 1}, dss), [][]byte{dss}, nil},
		{"two mptcp then eol", cat(dss, rst, []byte{0, 30, 99}), [][]byte{dss, rst}, nil},
		{"timestamps only", []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, nil, nil},
		{"zero length", cat(dss, []byte{8, 0}), [][]byte{dss}, ErrBadLength},
		{"overrun", cat(dss, []byte{30, 12, 0x20}), [][]byte{dss}, ErrTruncated},
		{"lone kind", []byte{1, 30}, nil, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MPTCPOptions(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("MPTCPOptions error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MPTCPOptions(% x) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNames(t *testing.T) {
	got := []string{
		SubtypeDSS.String(), Subtype(12).String(), JoinSYNACK.String(),
		ResetTooMuchOutstanding.String(), ResetReason(0x42).String(),
	}
	want := []string{"DSS", "subtype(12)", "SYN/ACK", "too much outstanding data", "reason 0x42"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names mismatch (-want +got):\n%s", diff)
	}
}
