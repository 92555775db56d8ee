package pcap

import (
	"github.com/mptcpd-go/mptcpd-go/datapath"

	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
)

// KeyToken returns the connection token derived from an MPTCP v1 key: the
// most significant 32 bits of SHA-256 over the key in network byte order.
func KeyToken(key uint64) uint32 { return datapath.Key(key).Token() }

// KeyIDSN returns the initial data sequence number derived from an MPTCP
// v1 key: the least significant 64 bits of SHA-256 over the key.
func KeyIDSN(key uint64) uint64 { return datapath.Key(key).IDSN() }

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
