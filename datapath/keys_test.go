package datapath

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestKeyVector(t *testing.T) {
	k := Key(17022874994304293516)
	if got, want := k.Token(), uint32(1005942451); got != want {
		t.Errorf("Token() = %d, want %d", got, want)
	}
	if got, want := k.IDSN(), uint64(15658731986754736550); got != want {
		t.Errorf("IDSN() = %d, want %d", got, want)
	}
}

func TestNewKey(t *testing.T) {
	k, err := NewKey(bytes.NewReader([]byte{0xec, 0x3c, 0x3b, 0x3e, 0x2c, 0x52, 0x5d, 0x8c}))
	if err != nil || k != 0xec3c3b3e2c525d8c {
		t.Fatalf("NewKey = %#x, %v", uint64(k), err)
	}
	if _, err := NewKey(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Fatal("NewKey on short reader: want error")
	}
	if _, err := NewKey(nil); err != nil {
		t.Fatalf("NewKey(nil): %v", err)
	}
}

func TestJoinMACs(t *testing.T) {
	a, b := Key(0x0102030405060708), Key(0x1112131415161718)
	ra, rb := uint32(0xaabbccdd), uint32(0x11223344)
	synack := JoinSynAckMAC(b, a, rb, ra)
	ack := JoinAckMAC(a, b, ra, rb)
	if len(synack) != JoinSynAckMACSize || len(ack) != JoinAckMACSize {
		t.Fatalf("sizes %d %d", len(synack), len(ack))
	}
	// Both sides compute the same values from their own point of view.
	if !VerifyMAC(JoinSynAckMAC(b, a, rb, ra), synack) || !VerifyMAC(JoinAckMAC(a, b, ra, rb), ack) {
		t.Fatal("MACs do not verify")
	}
	// Direction matters: swapping roles must not verify.
	if VerifyMAC(JoinSynAckMAC(a, b, ra, rb), synack) {
		t.Error("swapped-direction SYN/ACK MAC verified")
	}
	if VerifyMAC(JoinAckMAC(a, b, ra, rb+1), ack) {
		t.Error("wrong nonce verified")
	}
	if VerifyMAC(ack, ack[:8]) || VerifyMAC(nil, nil) {
		t.Error("truncated or empty MAC verified")
	}
}

func TestPSKMAC(t *testing.T) {
	psk := []byte("secret")
	a, b := Key(1), Key(2)
	m := PSKMAC(psk, a, b)
	if len(m) != PSKMACSize || !VerifyMAC(PSKMAC(psk, a, b), m) {
		t.Fatal("PSK MAC does not verify")
	}
	for name, other := range map[string][]byte{
		"wrong psk":       PSKMAC([]byte("secreT"), a, b),
		"wrong direction": PSKMAC(psk, b, a),
		"other key":       PSKMAC(psk, a, 3),
	} {
		if VerifyMAC(other, m) {
			t.Errorf("%s verified", name)
		}
	}
}

func TestAddAddrMAC(t *testing.T) {
	a, b := Key(5), Key(6)
	addr := netip.MustParseAddr("192.0.2.1")
	m := AddAddrMAC(a, b, 1, addr, 443)
	if len(m) != AddAddrMACSize {
		t.Fatalf("len %d", len(m))
	}
	if VerifyMAC(AddAddrMAC(a, b, 1, addr, 444), m) || VerifyMAC(AddAddrMAC(a, b, 2, addr, 443), m) {
		t.Error("MAC over different address verified")
	}
}

func TestReplayGuard(t *testing.T) {
	g := NewReplayGuard(2)
	if err := g.Check(1, 10); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(1, 10); !errors.Is(err, ErrReplay) {
		t.Fatalf("repeat: got %v, want ErrReplay", err)
	}
	if err := g.Check(2, 10); err != nil {
		t.Fatalf("same nonce, other token: %v", err)
	}
	if err := g.Check(1, 11); err != nil { // evicts (1,10)
		t.Fatal(err)
	}
	if g.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (bounded)", g.Len())
	}
	if err := g.Check(1, 10); err != nil {
		t.Fatalf("evicted entry should be forgotten: %v", err)
	}
}
