package pcap

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// collect runs pkts through a new Analyzer and returns its events.
func collect(pkts []Packet) ([]Event, *Analyzer) {
	var evs []Event
	a := NewAnalyzer()
	a.HandleEvents(func(e Event) { evs = append(evs, e) })
	for _, p := range pkts {
		a.Packet(p)
	}
	return evs, a
}

func u8p(v uint8) *uint8 { return &v }

func TestAnalyzerEvents(t *testing.T) {
	const kc, ks uint64 = 0x1a2b3c4d5e6f7081, 0x9988776655443322
	const c1, c2, c3, srv = "10.0.0.1:40000", "10.0.0.2:40001", "10.0.0.3:40002", "10.0.1.1:80"
	const ra, rb uint32 = 0x11111111, 0x22222222
	ic, is := KeyIDSN(kc), KeyIDSN(ks)
	cTok, sTok := fmt.Sprintf("%08x", KeyToken(kc)), fmt.Sprintf("%08x", KeyToken(ks))
	hm := AddAddrHMAC(ks, kc, 1, netip.MustParseAddr("10.0.2.1"), 0)
	const rstFlag = uint8(TCPFlagRST | TCPFlagACK)
	pkts := []Packet{
		seg(1000, c1, srv, syn, 1000, 0, nil, capSYN(0x01)),
		seg(1001, srv, c1, synack, 5000, 1001, nil, capKey(0x01, ks)),
		seg(1002, c1, srv, ack, 1001, 5001, nil, capKeys(0x01, kc, ks)),
		seg(1003, c1, srv, psh, 1001, 5001, make([]byte, 10), dssMap(is+1, ic+1, 1, 10)),
		// Announced twice (a retransmission): one event.
		seg(1005, srv, c1, ack, 5001, 1011, nil, addAddr4(1, "10.0.2.1", hm)),
		seg(1006, srv, c1, ack, 5001, 1011, nil, addAddr4(1, "10.0.2.1", hm)),
		// A join that completes, as backup.
		seg(1010, c2, srv, syn, 7000, 0, nil, joinSYN(KeyToken(ks), ra, 2, true)),
		seg(1011, srv, c2, synack, 9000, 7001, nil, joinSYNACK(ResponderJoinHMAC(kc, ks, ra, rb), rb, 1)),
		seg(1012, c2, srv, ack, 7001, 9001, nil, joinACK(InitiatorJoinHMAC(kc, ks, ra, rb))),
		// Its third ACK repeated: no second event.
		seg(1013, c2, srv, ack, 7001, 9001, nil, joinACK(InitiatorJoinHMAC(kc, ks, ra, rb))),
		seg(1014, c2, srv, ack, 7001, 9001, nil, opt(0x50)),
		// A join the server refuses, then one it resets.
		seg(1020, c3, srv, syn, 100, 0, nil, joinSYN(KeyToken(ks), ra, 3, false)),
		seg(1021, srv, c3, synack, 200, 101, nil),
		seg(1022, "10.0.0.3:40003", srv, syn, 100, 0, nil, joinSYN(KeyToken(ks), ra, 3, false)),
		seg(1023, srv, "10.0.0.3:40003", rstFlag, 0, 101, nil, opt(0x80, 0x03)),
		seg(1030, srv, c1, ack, 5001, 1011, nil, opt(0x40, 1)),
		seg(1031, c1, srv, ack, 1011, 5001, nil, opt(cat([]byte{0x60, 0}, be64(ic+5))...)),
		// The join closes with FINs, the initial subflow with a plain RST.
		seg(1040, c2, srv, TCPFlagFIN|TCPFlagACK, 7001, 9001, nil),
		seg(1041, srv, c2, TCPFlagFIN|TCPFlagACK, 9001, 7002, nil),
		seg(1042, c1, srv, rstFlag, 1011, 5001, nil),
		seg(1043, c1, srv, rstFlag, 1011, 5001, nil),
	}
	got, a := collect(pkts)
	v1 := u8p(1)
	want := []Event{
		{Time: at(1000), Rel: 0, Type: EventCreated, Version: v1, Saddr4: "10.0.0.1", Daddr4: "10.0.1.1", Sport: 40000, Dport: 80},
		{Time: at(1002), Rel: 0.002, Type: EventEstablished, Token: cTok, ServerToken: sTok, Saddr4: "10.0.0.1", Daddr4: "10.0.1.1", Sport: 40000, Dport: 80},
		{Time: at(1005), Rel: 0.005, Type: EventAnnounced, Token: cTok, From: "server", Daddr4: "10.0.2.1", RemID: u8p(1)},
		{Time: at(1012), Rel: 0.012, Type: EventSubEstablished, Token: cTok, From: "client", Saddr4: "10.0.0.2", Daddr4: "10.0.1.1", Sport: 40001, Dport: 80,
			LocID: u8p(2), RemID: u8p(1), Backup: u8p(1)},
		{Time: at(1014), Rel: 0.014, Type: EventSubPriority, Token: cTok, From: "client", Saddr4: "10.0.0.2", Daddr4: "10.0.1.1", Sport: 40001, Dport: 80, Backup: u8p(0)},
		{Time: at(1021), Rel: 0.021, Type: EventJoinFailed, Token: cTok, From: "client", Saddr4: "10.0.0.3", Daddr4: "10.0.1.1", Sport: 40002, Dport: 80,
			LocID: u8p(3), Reason: "SYN/ACK without MP_JOIN"},
		{Time: at(1023), Rel: 0.023, Type: EventJoinFailed, Token: cTok, From: "client", Saddr4: "10.0.0.3", Daddr4: "10.0.1.1", Sport: 40003, Dport: 80,
			RST: true, Reason: "reset by server", ResetReason: u8p(3), ResetReasonName: "administratively prohibited", ResetFlags: u8p(0)},
		{Time: at(1030), Rel: 0.030, Type: EventRemoved, Token: cTok, From: "server", RemID: u8p(1)},
		{Time: at(1031), Rel: 0.031, Type: EventMPFail, Token: cTok, From: "client", Saddr4: "10.0.0.1", Daddr4: "10.0.1.1", Sport: 40000, Dport: 80, DSN: ptr64(ic + 5)},
		{Time: at(1041), Rel: 0.041, Type: EventSubClosed, Token: cTok, From: "client", Saddr4: "10.0.0.2", Daddr4: "10.0.1.1", Sport: 40001, Dport: 80, Reason: "fin"},
		{Time: at(1042), Rel: 0.042, Type: EventSubClosed, Token: cTok, From: "client", Saddr4: "10.0.0.1", Daddr4: "10.0.1.1", Sport: 40000, Dport: 80, RST: true, Reason: "reset by client"},
		{Time: at(1042), Rel: 0.042, Type: EventClosed, Token: cTok, Saddr4: "10.0.0.1", Daddr4: "10.0.1.1", Sport: 40000, Dport: 80},
	}
	approxRel := cmp.Comparer(func(x, y float64) bool { d := x - y; return d < 1e-9 && d > -1e-9 })
	if diff := cmp.Diff(want, got, approxRel); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}
	// The plain RST is in the summary's resets, once, next to MP_TCPRST.
	resets := a.Summary().Connections[0].Resets
	wantResets := []ResetSummary{
		{Src: srv, Dst: "10.0.0.3:40003", Reason: 3, ReasonName: "administratively prohibited", Time: at(1023)},
		{Src: c1, Dst: srv, Plain: true, ReasonName: "plain TCP RST", Time: at(1042)},
	}
	if diff := cmp.Diff(wantResets, resets); diff != "" {
		t.Errorf("resets mismatch (-want +got):\n%s", diff)
	}
}

func ptr64(v uint64) *uint64 { return &v }

func TestAnalyzerEventsFallbackFastclose(t *testing.T) {
	const kc, ks uint64 = 0xabc, 0xdef
	const c, s = "[2001:db8::1]:4", "[2001:db8::2]:2"
	pkts := []Packet{
		seg(0, c, s, syn, 10, 0, nil, capSYN(0x01)),
		seg(1, s, c, synack, 20, 11, nil, capKey(0x01, ks)),
		seg(2, c, s, ack, 11, 21, nil, capKeys(0x01, kc, ks)),
		seg(3, s, c, psh, 21, 11, []byte("hi")),
		seg(4, c, s, ack, 11, 23, nil, opt(cat([]byte{0x70, 0}, be64(ks))...)),
		seg(5, c, s, ack, 11, 23, nil, opt(cat([]byte{0x70, 0}, be64(ks))...)),
	}
	got, _ := collect(pkts)
	var types []EventType
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []EventType{EventCreated, EventEstablished, EventFallback, EventFastclose}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Fatalf("event types (-want +got):\n%s", diff)
	}
	if e := got[2]; e.Reason != "MPTCP options disappeared mid-connection" || e.Saddr6 != "2001:db8::1" || e.Sport != 4 {
		t.Errorf("fallback event %+v", e)
	}
}

func TestEventString(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Type: EventCreated, Version: u8p(1), Saddr4: "10.0.0.1", Daddr4: "10.0.0.2", Sport: 1, Dport: 2},
			"[         CREATED] version=1 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=1 dport=2"},
		{Event{Type: EventSubClosed, Token: "0a0b0c0d", Saddr6: "::1", Daddr6: "::2", Sport: 1, Dport: 2, From: "server", RST: true,
			ResetReason: u8p(1), ResetFlags: u8p(1), Reason: "reset by server"},
			`[       SF_CLOSED] token=0a0b0c0d saddr6=::1 daddr6=::2 sport=1 dport=2 from=server rst reset_reason=1 reset_flags=0x1 reason="reset by server"`},
		{Event{Type: EventAnnounced, Token: "01020304", RemID: u8p(2), Daddr4: "10.0.2.2", Dport: 8080},
			"[       ANNOUNCED] token=01020304 remid=2 daddr4=10.0.2.2 dport=8080"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.ev.String()); diff != "" {
			t.Errorf("String (-want +got):\n%s", diff)
		}
	}
}

func TestEventJSON(t *testing.T) {
	e := Event{Time: at(5), Rel: 0.005, Type: EventSubPriority, Token: "01020304", Backup: u8p(0), Saddr4: "10.0.0.1", Sport: 9}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05.005Z","rel":0.005,"event":"SF_PRIO","token":"01020304","saddr4":"10.0.0.1","sport":9,"backup":0}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// TestChecksumMultiSegment: a checksummed mapping whose payload arrives
// in three segments (one retransmitted, one at an odd offset) verifies;
// one with a segment missing from the capture counts as unverified.
func TestChecksumMultiSegment(t *testing.T) {
	const kc, ks uint64 = 0x55, 0x66
	const c, s = "10.1.0.1:5000", "10.1.0.2:6000"
	ic := KeyIDSN(kc)
	payload := []byte("a mapping of thirty-one bytes!!")
	dsn := ic + 1
	good := DSSChecksum(dsn, 1, uint16(len(payload)), payload)
	hs := []Packet{
		seg(0, c, s, syn, 100, 0, nil, capSYN(0x81)),
		seg(1, s, c, synack, 200, 101, nil, capKey(0x81, ks)),
		seg(2, c, s, ack, 101, 201, nil, capKeys(0x81, kc, ks)),
	}
	tests := []struct {
		name string
		pkts []Packet
		want [3]int // verified, failed, unverified
	}{
		{"split", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:7], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(4, c, s, psh, 101, 201, payload[:7]), // retransmission
			seg(5, c, s, psh, 108, 201, payload[7:20]),
			seg(6, c, s, psh, 118, 201, payload[17:]), // overlaps by 3
		}, [3]int{1, 0, 0}},
		{"corrupt", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:7], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(5, c, s, psh, 108, 201, []byte("X"+string(payload[8:]))),
		}, [3]int{0, 1, 0}},
		{"gap", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:7], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(5, c, s, psh, 110, 201, payload[9:]),
		}, [3]int{0, 0, 1}},
		// A retransmission with the mapping again completes it.
		{"resent", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:7], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(5, c, s, psh, 101, 201, payload, dssMapCsum(dsn, 1, uint16(len(payload)), good)),
		}, [3]int{1, 0, 0}},
		// Segments of a TSO batch all repeat the mapping; a finished
		// mapping sent again from its start is checked again, one of
		// its middle segments is not.
		{"repeated", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:10], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(4, c, s, psh, 111, 201, payload[10:], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(5, c, s, psh, 111, 201, payload[10:], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(6, c, s, psh, 101, 201, payload, dssMapCsum(dsn, 1, uint16(len(payload)), good)),
		}, [3]int{2, 0, 0}},
		// A new mapping further on leaves the first one incomplete.
		{"replaced", []Packet{
			seg(3, c, s, psh, 101, 201, payload[:7], dssMapCsum(dsn, 1, uint16(len(payload)), good)),
			seg(5, c, s, psh, 140, 201, payload, dssMapCsum(dsn+39, 40, uint16(len(payload)), DSSChecksum(dsn+39, 40, uint16(len(payload)), payload))),
		}, [3]int{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, a := collect(append(append([]Packet(nil), hs...), tt.pkts...))
			cs := a.Summary().Connections[0]
			got := [3]int{cs.ChecksumVerified, cs.ChecksumFailures, cs.ChecksumUnverified}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verified/failed/unverified (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJoinHMACv0: version 0 joins are checked with HMAC-SHA1.
func TestJoinHMACv0(t *testing.T) {
	const kc, ks uint64 = 0x0102030405060708, 0x1112131415161718
	const c1, c2, srv = "10.0.0.1:1", "10.0.0.2:2", "10.0.0.9:80"
	const ra, rb uint32 = 0xaaaa, 0xbbbb
	cap0 := func(k uint64) []byte { return opt(cat([]byte{0x00, 0x81}, be64(k))...) }
	for _, tt := range []struct {
		name string
		ack  []byte
		want string
	}{
		{"valid", InitiatorJoinHMACv0(kc, ks, ra, rb), HMACValid},
		{"v1 hmac", InitiatorJoinHMAC(kc, ks, ra, rb), HMACInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, a := collect([]Packet{
				seg(0, c1, srv, syn, 1, 0, nil, cap0(kc)),
				seg(1, srv, c1, synack, 1, 2, nil, cap0(ks)),
				seg(2, c1, srv, ack, 2, 2, nil, opt(cat([]byte{0x00, 0x81}, be64(kc), be64(ks))...)),
				seg(3, c2, srv, syn, 1, 0, nil, joinSYN(versionToken(0, ks), ra, 1, false)),
				seg(4, srv, c2, synack, 1, 2, nil, joinSYNACK(ResponderJoinHMACv0(kc, ks, ra, rb), rb, 0)),
				seg(5, c2, srv, ack, 2, 2, nil, joinACK(tt.ack)),
			})
			cs := a.Summary().Connections[0]
			if len(cs.Subflows) != 2 {
				t.Fatalf("%d subflows, want 2", len(cs.Subflows))
			}
			if diff := cmp.Diff(tt.want, cs.Subflows[1].HMAC); diff != "" {
				t.Errorf("HMAC (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJoinHMACv0Vector checks the SHA-1 HMAC against a value computed
// independently with `openssl dgst -sha1 -mac HMAC -macopt hexkey:...`.
func TestJoinHMACv0Vector(t *testing.T) {
	got := fmt.Sprintf("%x", InitiatorJoinHMACv0(0x0102030405060708, 0x1112131415161718, 0xaaaa, 0xbbbb))
	want := "c378386c4d20dc4182f32678b9b986a6b951abda"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HMAC-SHA1 (-want +got):\n%s", diff)
	}
}
