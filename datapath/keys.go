package datapath

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
)

// Key is a connection key as exchanged by CAPABLE (RFC 8684 MP_CAPABLE key).
type Key uint64

// Sizes of the truncated MACs carried in JOIN frames.
const (
	JoinSynAckMACSize = 8  // leftmost 64 bits, responder -> initiator
	JoinAckMACSize    = 20 // leftmost 160 bits, initiator -> responder
	PSKMACSize        = sha256.Size
	AddAddrMACSize    = 8 // rightmost 64 bits, as RFC 8684 ADD_ADDR
)

// ErrReplay reports a JOIN nonce that was already seen for the same token.
var ErrReplay = errors.New("datapath: replayed join nonce")

// NewKey draws a random key from r (crypto/rand.Reader when r is nil).
func NewKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("datapath: generating key: %w", err)
	}
	return Key(binary.BigEndian.Uint64(b[:])), nil
}

func (k Key) digest() [sha256.Size]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(k))
	return sha256.Sum256(b[:])
}

// Token is the 32-bit connection identifier derived from k: the most
// significant 32 bits of SHA-256(key).
func (k Key) Token() uint32 {
	d := k.digest()
	return binary.BigEndian.Uint32(d[:4])
}

// IDSN is the initial data sequence number derived from k: the least
// significant 64 bits of SHA-256(key).
func (k Key) IDSN() uint64 {
	d := k.digest()
	return binary.BigEndian.Uint64(d[sha256.Size-8:])
}

func keyPair(a, b Key) []byte {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:8], uint64(a))
	binary.BigEndian.PutUint64(k[8:], uint64(b))
	return k[:]
}

// joinMAC is HMAC-SHA256(Key-self||Key-peer, R-self||R-peer), as RFC 8684.
func joinMAC(self, peer Key, selfNonce, peerNonce uint32) []byte {
	m := hmac.New(sha256.New, keyPair(self, peer))
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[:4], selfNonce)
	binary.BigEndian.PutUint32(msg[4:], peerNonce)
	m.Write(msg[:])
	return m.Sum(nil)
}

// JoinSynAckMAC is the responder's 64-bit MAC in its JOIN reply (RFC 8684
// HMAC-B in the SYN/ACK): keyed with responder||initiator keys over
// responder||initiator nonces, truncated to the leftmost 64 bits.
func JoinSynAckMAC(responder, initiator Key, responderNonce, initiatorNonce uint32) []byte {
	return joinMAC(responder, initiator, responderNonce, initiatorNonce)[:JoinSynAckMACSize]
}

// JoinAckMAC is the initiator's 160-bit MAC in its final JOIN (RFC 8684
// HMAC-A in the third ACK): keyed with initiator||responder keys over
// initiator||responder nonces, truncated to the leftmost 160 bits.
func JoinAckMAC(initiator, responder Key, initiatorNonce, responderNonce uint32) []byte {
	return joinMAC(initiator, responder, initiatorNonce, responderNonce)[:JoinAckMACSize]
}

// VerifyMAC reports whether got equals want, in constant time so a peer
// cannot learn a MAC byte by byte. Empty MACs never verify.
func VerifyMAC(want, got []byte) bool {
	return len(want) > 0 && subtle.ConstantTimeCompare(want, got) == 1
}

// PSKMAC authenticates the initial set-up with a pre-shared secret so that
// a server is not an open relay: HMAC-SHA256(psk, label||sender||receiver).
// The sender/receiver order binds the direction; the receiver's fresh key
// makes each MAC single-use.
func PSKMAC(psk []byte, sender, receiver Key) []byte {
	m := hmac.New(sha256.New, psk)
	m.Write([]byte("mptcpd-go capable v1"))
	m.Write(keyPair(sender, receiver))
	return m.Sum(nil)
}

// AddAddrMAC is the 64-bit MAC of an ADD_ADDR, as RFC 8684: HMAC-SHA256
// keyed with sender||receiver keys over id||address||port, rightmost 64 bits.
func AddAddrMAC(sender, receiver Key, id uint8, addr netip.Addr, port uint16) []byte {
	m := hmac.New(sha256.New, keyPair(sender, receiver))
	msg := append([]byte{id}, addr.AsSlice()...)
	msg = binary.BigEndian.AppendUint16(msg, port)
	m.Write(msg)
	sum := m.Sum(nil)
	return sum[len(sum)-AddAddrMACSize:]
}

// ReplayGuard remembers the most recent JOIN (token, nonce) pairs and
// rejects repeats. Memory is bounded: the oldest entry is forgotten once
// capacity is reached. It is safe for concurrent use.
type ReplayGuard struct {
	mu   sync.Mutex
	seen map[uint64]struct{}
	ring []uint64 // insertion order, for eviction
	next int
}

// NewReplayGuard returns a guard remembering up to capacity nonces
// (at least 1).
func NewReplayGuard(capacity int) *ReplayGuard {
	capacity = max(capacity, 1)
	return &ReplayGuard{seen: make(map[uint64]struct{}, capacity), ring: make([]uint64, 0, capacity)}
}

// Check records (token, nonce) and returns ErrReplay if it was seen before.
func (g *ReplayGuard) Check(token, nonce uint32) error {
	id := uint64(token)<<32 | uint64(nonce)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[id]; ok {
		return fmt.Errorf("%w: token %d nonce %d", ErrReplay, token, nonce)
	}
	if len(g.ring) < cap(g.ring) {
		g.ring = append(g.ring, id)
	} else {
		delete(g.seen, g.ring[g.next])
		g.ring[g.next] = id
		g.next = (g.next + 1) % len(g.ring)
	}
	g.seen[id] = struct{}{}
	return nil
}

// Len reports how many nonces are currently remembered.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}
