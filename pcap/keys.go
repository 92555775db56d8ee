package pcap

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// KeyToken returns the connection token derived from an MPTCP v1 key: the
// most significant 32 bits of SHA-256 over the key in network byte order.
func KeyToken(key uint64) uint32 { return datapath.Key(key).Token() }

// KeyIDSN returns the initial data sequence number derived from an MPTCP
// v1 key: the least significant 64 bits of SHA-256 over the key.
func KeyIDSN(key uint64) uint64 { return datapath.Key(key).IDSN() }

// joinHMACv0 is RFC 6824's MP_JOIN HMAC: HMAC-SHA1 keyed with k1 || k2
// over n1 || n2 (v1's HMAC-SHA256 is datapath's JoinSynAckMAC and
// JoinAckMAC, which share RFC 8684's construction).
func joinHMACv0(k1, k2 uint64, n1, n2 uint32) []byte {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:8], k1)
	binary.BigEndian.PutUint64(k[8:], k2)
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[:4], n1)
	binary.BigEndian.PutUint32(msg[4:], n2)
	m := hmac.New(sha1.New, k[:])
	m.Write(msg[:])
	return m.Sum(nil)
}

// versionToken is KeyToken for either protocol version: RFC 6824 (v0)
// hashes the key with SHA-1.
func versionToken(version uint8, key uint64) uint32 {
	if version != 0 {
		return KeyToken(key)
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], key)
	s := sha1.Sum(k[:])
	return binary.BigEndian.Uint32(s[:4])
}

// ResponderJoinHMAC returns the truncated HMAC the responder (B) puts in
// its MP_JOIN SYN/ACK: the leftmost 64 bits of
// HMAC(Key-B || Key-A, R-B || R-A). keyA and nonceA belong to the
// initiator of the subflow (the host that sent the MP_JOIN SYN).
func ResponderJoinHMAC(keyA, keyB uint64, nonceA, nonceB uint32) uint64 {
	return binary.BigEndian.Uint64(datapath.JoinSynAckMAC(datapath.Key(keyB), datapath.Key(keyA), nonceB, nonceA))
}

// InitiatorJoinHMAC returns the 160-bit HMAC the initiator (A) puts in
// its MP_JOIN third ACK: the leftmost 160 bits of
// HMAC(Key-A || Key-B, R-A || R-B).
func InitiatorJoinHMAC(keyA, keyB uint64, nonceA, nonceB uint32) []byte {
	return datapath.JoinAckMAC(datapath.Key(keyA), datapath.Key(keyB), nonceA, nonceB)
}

// ResponderJoinHMACv0 is ResponderJoinHMAC for MPTCP version 0 (RFC 6824
// §3.2): HMAC-SHA1 instead of HMAC-SHA256, truncated to the leftmost 64
// bits.
func ResponderJoinHMACv0(keyA, keyB uint64, nonceA, nonceB uint32) uint64 {
	return binary.BigEndian.Uint64(joinHMACv0(keyB, keyA, nonceB, nonceA))
}

// InitiatorJoinHMACv0 is InitiatorJoinHMAC for MPTCP version 0: the full
// 160-bit HMAC-SHA1(Key-A || Key-B, R-A || R-B).
func InitiatorJoinHMACv0(keyA, keyB uint64, nonceA, nonceB uint32) []byte {
	return joinHMACv0(keyA, keyB, nonceA, nonceB)
}

// AddAddrHMAC returns the truncated HMAC of an ADD_ADDR option sent by the
// holder of senderKey to the holder of receiverKey: HMAC-SHA256 with key
// (sender key || receiver key) over (address ID || address || port).
//
// RFC 8684 §3.4.1 takes the rightmost 64 bits of the HMAC (Linux does the
// same), unlike MP_JOIN's leftmost. The port is always two bytes of the
// message; an option without a port hashes port 0, as Linux does.
func AddAddrHMAC(senderKey, receiverKey uint64, addrID uint8, addr netip.Addr, port uint16) uint64 {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:8], senderKey)
	binary.BigEndian.PutUint64(k[8:], receiverKey)
	msg := make([]byte, 0, 1+16+2)
	msg = append(msg, addrID)
	msg = append(msg, addr.Unmap().AsSlice()...)
	msg = binary.BigEndian.AppendUint16(msg, port)
	m := hmac.New(sha256.New, k[:])
	m.Write(msg)
	h := m.Sum(nil)
	return binary.BigEndian.Uint64(h[len(h)-8:])
}

// DSSChecksum returns the value of the DSS checksum field for a mapping
// (RFC 8684 §3.3.1): the one's complement of the one's complement sum of
// a pseudo-header (64-bit DSN, 32-bit subflow sequence number relative to
// the subflow ISN, 16-bit data-level length, 16 zero bits) followed by the
// mapped payload.
func DSSChecksum(dsn uint64, subflowSeq uint32, dataLen uint16, payload []byte) uint16 {
	var ph [16]byte
	binary.BigEndian.PutUint64(ph[:8], dsn)
	binary.BigEndian.PutUint32(ph[8:12], subflowSeq)
	binary.BigEndian.PutUint16(ph[12:14], dataLen)
	s := onesSum(0, ph[:])
	s = onesSum(s, payload)
	return ^fold(s)
}

// VerifyDSSChecksum reports whether csum is the correct DSS checksum for
// the mapping and its payload.
func VerifyDSSChecksum(dsn uint64, subflowSeq uint32, dataLen uint16, payload []byte, csum uint16) bool {
	return DSSChecksum(dsn, subflowSeq, dataLen, payload) == csum
}

// onesSum adds b as big-endian 16-bit words to s, padding an odd final
// byte with zero. The carries are folded later by fold.
func onesSum(s uint64, b []byte) uint64 {
	// Summing 32-bit words and folding later gives the same one's
	// complement sum as 16-bit words, with half the additions.
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s > 0xffff {
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}
