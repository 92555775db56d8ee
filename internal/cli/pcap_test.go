package cli

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/pcap"
)

// testSeg is one TCP segment of a synthetic capture.
type testSeg struct {
	ms       int
	src, dst string
	flags    uint8
	seq      uint32
	opts     []byte
}

// mpOpt builds an MPTCP option from its body (subtype byte onwards).
func mpOpt(body ...byte) []byte { return append([]byte{30, byte(2 + len(body))}, body...) }

func be64b(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// writeCapture writes segs as a raw-IPv4 (LINKTYPE_RAW) classic pcap file.
func writeCapture(t *testing.T, segs []testSeg) string {
	t.Helper()
	le := binary.LittleEndian
	b := make([]byte, 24)
	le.PutUint32(b[0:], 0xa1b2c3d4)
	le.PutUint16(b[4:], 2)
	le.PutUint16(b[6:], 4)
	le.PutUint32(b[16:], 65535)
	le.PutUint32(b[20:], pcap.LinkTypeRaw)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range segs {
		src, dst := netip.MustParseAddrPort(s.src), netip.MustParseAddrPort(s.dst)
		opts := append([]byte(nil), s.opts...)
		for len(opts)%4 != 0 {
			opts = append(opts, 0)
		}
		tcp := make([]byte, 20)
		binary.BigEndian.PutUint16(tcp[0:], src.Port())
		binary.BigEndian.PutUint16(tcp[2:], dst.Port())
		binary.BigEndian.PutUint32(tcp[4:], s.seq)
		tcp[12] = byte((20 + len(opts)) / 4 << 4)
		tcp[13] = s.flags
		tcp = append(tcp, opts...)
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		copy(ip[12:], src.Addr().AsSlice())
		copy(ip[16:], dst.Addr().AsSlice())
		frame := append(ip, tcp...)
		ts := base.Add(time.Duration(s.ms) * time.Millisecond)
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(ts.Unix()))
		le.PutUint32(rec[4:], uint32(ts.Nanosecond()/1000))
		le.PutUint32(rec[8:], uint32(len(frame)))
		le.PutUint32(rec[12:], uint32(len(frame)))
		b = append(append(b, rec...), frame...)
	}
	path := filepath.Join(t.TempDir(), "test.pcap")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPcapEventsAndSummary(t *testing.T) {
	const kc, ks uint64 = 0x1122334455667788, 0x99aabbccddeeff00
	const c, s = "10.0.0.1:40000", "10.0.1.1:80"
	syn, synack, ack, rst := uint8(pcap.TCPFlagSYN), uint8(pcap.TCPFlagSYN|pcap.TCPFlagACK), uint8(pcap.TCPFlagACK), uint8(pcap.TCPFlagRST)
	file := writeCapture(t, []testSeg{
		{0, c, s, syn, 1, mpOpt(0x01, 0x01)},
		{1, s, c, synack, 1, mpOpt(append([]byte{0x01, 0x01}, be64b(ks)...)...)},
		{2, c, s, ack, 2, mpOpt(append(append([]byte{0x01, 0x01}, be64b(kc)...), be64b(ks)...)...)},
		{250, s, c, ack, 2, mpOpt(0x30, 0x01, 10, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)},
		{1500, c, s, rst, 2, nil},
	})
	cTok := jsonToken(pcap.KeyToken(kc))
	sTok := jsonToken(pcap.KeyToken(ks))
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"events", []string{"pcap", "events", file}, exitOK, "" +
			"    0.000000 [         CREATED] version=1 saddr4=10.0.0.1 daddr4=10.0.1.1 sport=40000 dport=80\n" +
			"    0.002000 [     ESTABLISHED] token=" + cTok + " server_token=" + sTok + " saddr4=10.0.0.1 daddr4=10.0.1.1 sport=40000 dport=80\n" +
			"    0.250000 [       ANNOUNCED] token=" + cTok + " remid=1 daddr4=10.0.2.2 from=server\n" +
			"    1.500000 [       SF_CLOSED] token=" + cTok + " saddr4=10.0.0.1 daddr4=10.0.1.1 sport=40000 dport=80 from=client rst reason=\"reset by client\"\n" +
			"    1.500000 [          CLOSED] token=" + cTok + " saddr4=10.0.0.1 daddr4=10.0.1.1 sport=40000 dport=80\n"},
		{"flags after file", []string{"pcap", "ev", file, "-j"}, exitOK, ""},
		{"summary", []string{"pcap", "summary", file}, exitOK, "" +
			"mptcp v1 10.0.0.1:40000 -> 10.0.1.1:80 client token " + cTok + " key 1122334455667788 server token " + sTok + " key 99aabbccddeeff00\n" +
			"  subflow 10.0.0.1:40000 -> 10.0.1.1:80 id 0 initial data 0 bytes\n" +
			"  add_addr from server id 1 10.0.2.2 hmac invalid\n" +
			"  reset 10.0.0.1:40000 -> 10.0.1.1:80 plain RST\n" +
			"  reinjections 0 (0 bytes) hmac ok 0 failed 1 unverified 0 checksums ok 0 failed 0 unverified 0\n"},
		{"no file", []string{"pcap", "events", "-j"}, exitUsage, ""},
		{"two files", []string{"pcap", "events", file, file}, exitUsage, ""},
		{"missing file", []string{"pcap", "events", filepath.Join(t.TempDir(), "nope.pcap")}, exitFailure, ""},
		{"bad flag", []string{"pcap", "events", "-x", file}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runFake(t, &fakeBackend{}, "", tt.args...)
			if r.Code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", r.Code, tt.code, r.Stdout, r.Stderr)
			}
			if tt.want == "" {
				return
			}
			if diff := cmp.Diff(tt.want, r.Stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}

	// -j: a JSON array of events with absolute and relative times.
	r := runFake(t, &fakeBackend{}, "", "pcap", "events", "-j", file)
	var evs []struct {
		Time   time.Time `json:"time"`
		Rel    float64   `json:"rel"`
		Event  string    `json:"event"`
		Token  string    `json:"token"`
		RemID  *int      `json:"remid"`
		Daddr4 string    `json:"daddr4"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		t.Fatalf("pcap events -j: %v\n%s", err, r.Stdout)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Event)
	}
	if diff := cmp.Diff([]string{"CREATED", "ESTABLISHED", "ANNOUNCED", "SF_CLOSED", "CLOSED"}, names); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if e := evs[2]; e.Rel != 0.25 || e.Daddr4 != "10.0.2.2" || e.RemID == nil || *e.RemID != 1 || e.Token != cTok ||
		!e.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 250e6, time.UTC)) {
		t.Errorf("ANNOUNCED event %+v", e)
	}

	// An empty capture gives an empty array.
	empty := writeCapture(t, nil)
	r = runFake(t, &fakeBackend{}, "", "pcap", "events", "-j", empty)
	if diff := cmp.Diff("[\n]\n", r.Stdout); diff != "" || r.Code != exitOK {
		t.Errorf("empty capture: exit %d, stdout (-want +got):\n%s", r.Code, diff)
	}
}

// jsonToken renders a token as the events and summary do.
func jsonToken(v uint32) string { return fmt.Sprintf("%08x", v) }
