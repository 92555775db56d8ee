package pcap

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the base time of the synthetic captures.
func t0() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func at(ms int) time.Time { return t0().Add(time.Duration(ms) * time.Millisecond) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// seg builds a packet; opts are concatenated raw options.
func seg(ms int, src, dst string, flags uint8, seqNo, ackNo uint32, payload []byte, opts ...[]byte) Packet {
	return Packet{
		Time: at(ms), Src: ap(src), Dst: ap(dst), Flags: flags, Seq: seqNo, Ack: ackNo,
		PayloadLen: len(payload), Payload: payload, Options: cat(opts...),
	}
}

func capSYN(flags byte) []byte { return opt(0x01, flags) }

func capKey(flags byte, k uint64) []byte { return opt(cat([]byte{0x01, flags}, be64(k))...) }

func capKeys(flags byte, a, b uint64) []byte {
	return opt(cat([]byte{0x01, flags}, be64(a), be64(b))...)
}

func joinSYN(token, nonce uint32, id byte, backup bool) []byte {
	b := byte(0x10)
	if backup {
		b |= 1
	}
	return opt(cat([]byte{b, id}, be32(token), be32(nonce))...)
}

func joinSYNACK(h uint64, nonce uint32, id byte) []byte {
	return opt(cat([]byte{0x10, id}, be64(h), be32(nonce))...)
}

func joinACK(h []byte) []byte { return opt(cat([]byte{0x10, 0}, h)...) }

// dssMap is a DSS with a 64-bit data ACK and a 64-bit mapping without a
// checksum.
func dssMap(ack, dsn uint64, ssn uint32, n uint16) []byte {
	return opt(cat([]byte{0x20, 0x0f}, be64(ack), be64(dsn), be32(ssn), be16(n))...)
}

func dssMapCsum(dsn uint64, ssn uint32, n uint16, c uint16) []byte {
	return opt(cat([]byte{0x20, 0x0c}, be64(dsn), be32(ssn), be16(n), be16(c))...)
}

func dssAck(ack uint64) []byte { return opt(cat([]byte{0x20, 0x03}, be64(ack))...) }

func addAddr4(id byte, addr string, h uint64) []byte {
	return opt(cat([]byte{0x30, id}, netip.MustParseAddr(addr).AsSlice(), be64(h))...)
}

const (
	syn    = TCPFlagSYN
	synack = TCPFlagSYN | TCPFlagACK
	ack    = TCPFlagACK
	psh    = TCPFlagACK | TCPFlagPSH
)

func TestAnalyzerMultipath(t *testing.T) {
	const kc, ks uint64 = 0x1a2b3c4d5e6f7081, 0x9988776655443322
	const c1, c2, srv, srv2 = "10.0.0.1:40000", "10.0.0.2:40001", "10.0.1.1:80", "10.0.2.1:80"
	const ra, rb uint32 = 0x11111111, 0x22222222
	ic, is := KeyIDSN(kc), KeyIDSN(ks)
	sTok := KeyToken(ks)
	good := AddAddrHMAC(ks, kc, 1, netip.MustParseAddr("10.0.2.1"), 0)
	data := make([]byte, 100)

	pkts := []Packet{
		seg(0, c1, srv, syn, 1000, 0, nil, capSYN(0x01)),
		seg(1, srv, c1, synack, 5000, 1001, nil, capKey(0x01, ks)),
		seg(2, c1, srv, ack, 1001, 5001, nil, capKeys(0x01, kc, ks)),
		// 100 bytes on the initial subflow.
		seg(3, c1, srv, psh, 1001, 5001, data, dssMap(is+1, ic+1, 1, 100)),
		// The same segment again (TCP retransmission): not a reinjection.
		seg(4, c1, srv, psh, 1001, 5001, data, dssMap(is+1, ic+1, 1, 100)),
		// The server announces a second address, then a bogus one.
		seg(5, srv, c1, ack, 5001, 1101, nil, addAddr4(1, "10.0.2.1", good), dssAck(ic+101)),
		seg(6, srv, c1, ack, 5001, 1101, nil, addAddr4(2, "10.0.3.1", good)),
		// Join from a second client address to the server's token.
		seg(10, c2, srv, syn, 7000, 0, nil, joinSYN(sTok, ra, 2, true)),
		seg(11, srv, c2, synack, 9000, 7001, nil, joinSYNACK(ResponderJoinHMAC(kc, ks, ra, rb), rb, 0)),
		seg(12, c2, srv, ack, 7001, 9001, nil, joinACK(InitiatorJoinHMAC(kc, ks, ra, rb))),
		// 200 new bytes on the join.
		seg(13, c2, srv, psh, 7001, 9001, make([]byte, 200), dssMap(is+1, ic+101, 1, 200)),
		// DSN bytes 50..149 with a mapping that straddles the boundary of
		// the first two: 50..99 were the initial subflow's, so 50 bytes
		// are reinjected; 100..149 this subflow already carried.
		seg(14, c2, srv, psh, 7201, 9001, make([]byte, 100), dssMap(is+1, ic+51, 201, 100)),
		// MP_PRIO clears backup; server resets the join.
		seg(15, c2, srv, ack, 7301, 9001, nil, opt(0x50), dssAck(is+1)),
		seg(16, srv, c2, TCPFlagRST|TCPFlagACK, 9001, 7301, nil, opt(0x80, 0x05)),
		seg(17, srv, c1, ack, 5001, 1101, nil, opt(0x40, 2)),
	}
	a := NewAnalyzer()
	for _, p := range pkts {
		a.Packet(p)
	}
	want := Summary{
		Connections: []ConnSummary{{
			Client: c1, Server: srv, Version: 1,
			ClientKey: fmt.Sprintf("%016x", kc), ServerKey: fmt.Sprintf("%016x", ks),
			ClientToken: fmt.Sprintf("%08x", KeyToken(kc)), ServerToken: fmt.Sprintf("%08x", sTok),
			Established: true,
			Subflows: []SubflowSummary{
				{Src: c1, Dst: srv, DataBytes: 100, First: at(0), Last: at(17)},
				{Src: c2, Dst: srv, AddrID: 2, Join: true, HMAC: HMACValid, DataBytes: 250, First: at(10), Last: at(16)},
			},
			AddAddr: []AddAddrSummary{
				{From: "server", AddrID: 1, Addr: "10.0.2.1", HMAC: HMACValid, Time: at(5)},
				{From: "server", AddrID: 2, Addr: "10.0.3.1", HMAC: HMACInvalid, Time: at(6)},
			},
			RemoveAddr:      []RemoveAddrSummary{{From: "server", AddrIDs: []int{2}, Time: at(17)}},
			Reinjections:    1,
			ReinjectedBytes: 50,
			HMACVerified:    2,
			HMACFailures:    1,
			Resets: []ResetSummary{{
				Src: srv, Dst: c2, Reason: 5, ReasonName: "unacceptable performance", Time: at(16),
			}},
			First: at(0), Last: at(17),
		}},
		FallbackConnections: []FallbackSummary{},
	}
	_ = srv2
	got := a.Summary()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summary mismatch (-want +got):\n%s", diff)
	}
}

func TestAnalyzerJoinBadHMAC(t *testing.T) {
	const kc, ks uint64 = 1, 2
	const c1, c2, srv = "[2001:db8::1]:1000", "[2001:db8::2]:1001", "[2001:db8::9]:443"
	a := NewAnalyzer()
	for _, p := range []Packet{
		seg(0, c1, srv, syn, 1, 0, nil, capSYN(0x01)),
		seg(1, srv, c1, synack, 1, 2, nil, capKey(0x01, ks)),
		seg(2, c1, srv, ack, 2, 2, nil, capKeys(0x01, kc, ks)),
		seg(3, c2, srv, syn, 1, 0, nil, joinSYN(KeyToken(ks), 7, 1, false)),
		seg(4, srv, c2, synack, 1, 2, nil, joinSYNACK(0xdead, 8, 0)),
		// A join to an unknown token is ignored.
		seg(5, "[2001:db8::3]:5", srv, syn, 1, 0, nil, joinSYN(12345, 7, 1, false)),
	} {
		a.Packet(p)
	}
	got := a.Summary().Connections[0]
	type res struct {
		Subflows int
		HMAC     string
		Failures int
	}
	want := res{Subflows: 2, HMAC: HMACInvalid, Failures: 1}
	if diff := cmp.Diff(want, res{len(got.Subflows), got.Subflows[1].HMAC, got.HMACFailures}); diff != "" {
		t.Errorf("join mismatch (-want +got):\n%s", diff)
	}
}

func TestAnalyzerFallback(t *testing.T) {
	const kc, ks uint64 = 0xabc, 0xdef
	a := NewAnalyzer()
	for _, p := range []Packet{
		// Refused at the handshake: SYN/ACK without MP_CAPABLE.
		seg(0, "10.0.0.1:1", "10.0.0.2:2", syn, 10, 0, nil, capSYN(0x01)),
		seg(1, "10.0.0.2:2", "10.0.0.1:1", synack, 20, 11, nil),
		seg(2, "10.0.0.1:1", "10.0.0.2:2", psh, 11, 21, []byte("x")),
		// Plain TCP is not reported at all.
		seg(3, "10.0.0.1:3", "10.0.0.2:2", syn, 10, 0, nil),
		seg(4, "10.0.0.2:2", "10.0.0.1:3", synack, 20, 11, nil),
		// MPTCP, then data without any MPTCP option.
		seg(5, "10.0.0.1:4", "10.0.0.2:2", syn, 10, 0, nil, capSYN(0x01)),
		seg(6, "10.0.0.2:2", "10.0.0.1:4", synack, 20, 11, nil, capKey(0x01, ks)),
		seg(7, "10.0.0.1:4", "10.0.0.2:2", ack, 11, 21, nil, capKeys(0x01, kc, ks)),
		seg(8, "10.0.0.2:2", "10.0.0.1:4", psh, 21, 11, []byte("hi")),
	} {
		a.Packet(p)
	}
	got := a.Summary()
	wantFB := []FallbackSummary{
		{Client: "10.0.0.1:1", Server: "10.0.0.2:2", Reason: "SYN/ACK without MP_CAPABLE", Time: at(1)},
		{Client: "10.0.0.1:4", Server: "10.0.0.2:2", Reason: "MPTCP options disappeared mid-connection", Time: at(8)},
	}
	if diff := cmp.Diff(wantFB, got.FallbackConnections); diff != "" {
		t.Errorf("fallbacks mismatch (-want +got):\n%s", diff)
	}
	if len(got.Connections) != 1 || !got.Connections[0].Fallback {
		t.Errorf("want one connection marked fallback, got %+v", got.Connections)
	}
}

func TestAnalyzerChecksum(t *testing.T) {
	const kc, ks uint64 = 0x55, 0x66
	const c, s = "10.1.0.1:5000", "10.1.0.2:6000"
	ic := KeyIDSN(kc)
	p1, p2 := []byte("first data"), []byte("second!")
	good := DSSChecksum(ic+1+uint64(len(p1)), uint32(1+len(p1)), uint16(len(p2)), p2)
	a := NewAnalyzer()
	for _, p := range []Packet{
		seg(0, c, s, syn, 100, 0, nil, capSYN(0x81)),
		seg(1, s, c, synack, 200, 101, nil, capKey(0x01, ks)),
		// Third ACK carrying data (length 24), checksummed.
		seg(2, c, s, psh, 101, 201, p1, opt(cat([]byte{0x01, 0x81}, be64(kc), be64(ks), be16(uint16(len(p1))),
			be16(DSSChecksum(ic+1, 1, uint16(len(p1)), p1)))...)),
		seg(3, c, s, psh, 111, 201, p2, dssMapCsum(ic+11, 11, uint16(len(p2)), good)),
		seg(4, c, s, psh, 111, 201, p2, dssMapCsum(ic+11, 11, uint16(len(p2)), good^1)),
		// An infinite mapping means fallback.
		seg(5, c, s, psh, 118, 201, p2, dssMapCsum(ic+18, 18, 0, 0)),
	} {
		a.Packet(p)
	}
	got := a.Summary().Connections[0]
	type res struct {
		Checksum         bool
		Verified, Failed int
		DataBytes        uint64
		Fallback         string
	}
	want := res{true, 2, 1, 17, "infinite mapping"}
	if diff := cmp.Diff(want, res{got.Checksum, got.ChecksumVerified, got.ChecksumFailures, got.Subflows[0].DataBytes, got.FallbackReason}); diff != "" {
		t.Errorf("checksum mismatch (-want +got):\n%s", diff)
	}
}

func TestSummaryJSON(t *testing.T) {
	a := NewAnalyzer()
	a.Packet(seg(0, "10.0.0.1:1", "10.0.0.2:2", syn, 1, 0, nil, capSYN(0x01)))
	a.Packet(seg(1, "10.0.0.2:2", "10.0.0.1:1", synack, 1, 2, nil, capKey(0x01, 0x0102)))
	b, err := json.Marshal(a.Summary())
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Connections []map[string]any `json:"connections"`
		Fallback    []any            `json:"fallback_connections"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Connections) != 1 || m.Fallback == nil {
		t.Fatalf("unexpected JSON %s", b)
	}
	c := m.Connections[0]
	for _, k := range []string{"client_key", "server_key", "client_token", "server_token", "subflows", "add_addr", "remove_addr", "reinjections", "fallback", "hmac_failures", "checksum", "resets"} {
		if _, ok := c[k]; !ok {
			t.Errorf("JSON connection lacks %q: %s", k, b)
		}
	}
	if got, want := c["server_token"], fmt.Sprintf("%08x", KeyToken(0x0102)); got != want {
		t.Errorf("server_token = %v, want %v", got, want)
	}
	sf := c["subflows"].([]any)[0].(map[string]any)
	for _, k := range []string{"src", "dst", "addr_id", "backup", "data_bytes", "first", "last"} {
		if _, ok := sf[k]; !ok {
			t.Errorf("JSON subflow lacks %q: %s", k, b)
		}
	}
}

func TestDSNSet(t *testing.T) {
	type step struct {
		start, end, bit uint64
		fresh, re       uint64
	}
	steps := []step{
		{0, 100, 1, 100, 0},
		{0, 100, 1, 0, 0},     // same subflow: retransmission
		{100, 200, 2, 100, 0}, // new data elsewhere
		{50, 150, 2, 50, 50},  // half of it was subflow 1's
		{40, 160, 1, 60, 60},  // 40..100 dup, 100..160 fresh for 1 and sent by 2
		{300, 310, 1, 10, 0},  // gap
		{290, 320, 2, 30, 10},
	}
	var s dsnSet
	for i, st := range steps {
		f, r := s.add(st.start, st.end, st.bit)
		if f != st.fresh || r != st.re {
			t.Errorf("step %d add(%d,%d,%d) = %d,%d; want %d,%d", i, st.start, st.end, st.bit, f, r, st.fresh, st.re)
		}
	}
	want := []dsnInterval{{0, 50, 1}, {50, 160, 3}, {160, 200, 2}, {290, 300, 2}, {300, 310, 3}, {310, 320, 2}}
	if diff := cmp.Diff(want, s.iv, cmp.AllowUnexported(dsnInterval{})); diff != "" {
		t.Errorf("intervals mismatch (-want +got):\n%s", diff)
	}
	s.prune(200)
	want = want[3:]
	if diff := cmp.Diff(want, s.iv, cmp.AllowUnexported(dsnInterval{})); diff != "" {
		t.Errorf("after prune (-want +got):\n%s", diff)
	}
}

func TestWiden(t *testing.T) {
	d := direction{ref: 0x1_fffffff0, haveRef: true}
	tests := []struct {
		in   uint64
		want uint64
	}{
		{0xfffffff8, 0x1_fffffff8},
		{0x00000010, 0x2_00000010}, // wrapped forward
		{0x7ffffff0, 0x1_7ffffff0},
	}
	for _, tt := range tests {
		if got := d.widen(tt.in, false); got != tt.want {
			t.Errorf("widen(%#x) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}
