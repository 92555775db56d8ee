package pcap

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeyDerivation(t *testing.T) {
	const key = 17022874994304293516
	type result struct {
		Token uint32
		IDSN  uint64
	}
	want := result{Token: 1005942451, IDSN: 15658731986754736550}
	got := result{Token: KeyToken(key), IDSN: KeyIDSN(key)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("key %d mismatch (-want +got):\n%s", uint64(key), diff)
	}
	if v := versionToken(1, key); v != want.Token {
		t.Errorf("versionToken(1) = %d, want %d", v, want.Token)
	}
	if versionToken(0, key) == want.Token {
		t.Errorf("versionToken(0) should use SHA-1 and differ from the v1 token")
	}
}

// refHMAC is an independent spelling of HMAC-SHA256 over big-endian
// fields, used to check the package's helpers.
func refHMAC(key []byte, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func TestJoinHMAC(t *testing.T) {
	const keyA, keyB = 0x1111222233334444, 0x5555666677778888
	const ra, rb = 0xaabbccdd, 0x01020304
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{
			"responder SYN/ACK, leftmost 64 bits of HMAC(KeyB||KeyA, RB||RA)",
			binary.BigEndian.AppendUint64(nil, ResponderJoinHMAC(keyA, keyB, ra, rb)),
			refHMAC(cat(be64(keyB), be64(keyA)), cat(be32(rb), be32(ra)))[:8],
		},
		{
			"initiator ACK, leftmost 160 bits of HMAC(KeyA||KeyB, RA||RB)",
			InitiatorJoinHMAC(keyA, keyB, ra, rb),
			refHMAC(cat(be64(keyA), be64(keyB)), cat(be32(ra), be32(rb)))[:20],
		},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.got); diff != "" {
			t.Errorf("%s mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	// Swapping roles must change the result, or the check is useless.
	if ResponderJoinHMAC(keyA, keyB, ra, rb) == ResponderJoinHMAC(keyB, keyA, rb, ra) {
		t.Error("ResponderJoinHMAC is symmetric in its roles")
	}
}

func TestAddAddrHMAC(t *testing.T) {
	const ks, kr = 0x0102030405060708, 0x8877665544332211
	tests := []struct {
		name string
		id   uint8
		addr netip.Addr
		port uint16
		msg  []byte
	}{
		{"v4 no port", 1, netip.MustParseAddr("192.0.2.1"), 0, []byte{1, 192, 0, 2, 1, 0, 0}},
		{"v4 port", 2, netip.MustParseAddr("192.0.2.1"), 8080, []byte{2, 192, 0, 2, 1, 0x1f, 0x90}},
		{"v4-mapped is hashed as v4", 1, netip.MustParseAddr("::ffff:192.0.2.1"), 0, []byte{1, 192, 0, 2, 1, 0, 0}},
		{"v6", 3, netip.MustParseAddr("2001:db8::5"), 443, cat([]byte{3}, netip.MustParseAddr("2001:db8::5").AsSlice(), be16(443))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := refHMAC(cat(be64(ks), be64(kr)), tt.msg)
			want := binary.BigEndian.Uint64(full[24:]) // rightmost 64 bits
			got := AddAddrHMAC(ks, kr, tt.id, tt.addr, tt.port)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AddAddrHMAC mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDSSChecksum(t *testing.T) {
	tests := []struct {
		name    string
		dsn     uint64
		ssn     uint32
		payload []byte
	}{
		{"empty", 1, 1, nil},
		{"even", 0x0102030405060708, 1, []byte("hello world!")},
		{"odd", 0xfffffffffffffff0, 12345, []byte("odd payload")},
		{"large", 42, 7, seq(200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := uint16(len(tt.payload))
			c := DSSChecksum(tt.dsn, tt.ssn, n, tt.payload)
			// With the checksum in place the one's complement sum of
			// pseudo-header and payload must be all ones.
			ph := cat(be64(tt.dsn), be32(tt.ssn), be16(n), be16(c))
			if got := fold(onesSum(onesSum(0, ph), tt.payload)); got != 0xffff {
				t.Errorf("sum with checksum 0x%04x = 0x%04x, want 0xffff", c, got)
			}
			if !VerifyDSSChecksum(tt.dsn, tt.ssn, n, tt.payload, c) {
				t.Error("VerifyDSSChecksum rejected its own checksum")
			}
			if VerifyDSSChecksum(tt.dsn+1, tt.ssn, n, tt.payload, c) {
				t.Error("VerifyDSSChecksum accepted a checksum for another DSN")
			}
		})
	}
}
