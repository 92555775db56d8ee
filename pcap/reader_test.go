package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// tcpHeader builds a TCP header with the given options (padded to 4 bytes).
func tcpHeader(p Packet) []byte {
	opts := append([]byte(nil), p.Options...)
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := make([]byte, 20, 20+len(opts))
	binary.BigEndian.PutUint16(h[0:], p.Src.Port())
	binary.BigEndian.PutUint16(h[2:], p.Dst.Port())
	binary.BigEndian.PutUint32(h[4:], p.Seq)
	binary.BigEndian.PutUint32(h[8:], p.Ack)
	h[12] = byte((20 + len(opts)) / 4 << 4)
	h[13] = p.Flags
	binary.BigEndian.PutUint16(h[14:], p.Window)
	return append(h, opts...)
}

// ipPacket wraps p in an IPv4 or IPv6 header.
func ipPacket(p Packet) []byte {
	t := append(tcpHeader(p), p.Payload...)
	if p.Src.Addr().Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(t)))
		h[8], h[9] = 64, 6
		copy(h[12:], p.Src.Addr().AsSlice())
		copy(h[16:], p.Dst.Addr().AsSlice())
		return append(h, t...)
	}
	// One hop-by-hop extension header in front of TCP, to exercise the walk.
	h := make([]byte, 48)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(t)))
	h[6], h[7] = 0, 64
	copy(h[8:], p.Src.Addr().AsSlice())
	copy(h[24:], p.Dst.Addr().AsSlice())
	h[40] = 6 // next header TCP, length 0 => 8 bytes
	return append(h, t...)
}

func ethertype(ip []byte) []byte {
	if ip[0]>>4 == 4 {
		return []byte{0x08, 0x00}
	}
	return []byte{0x86, 0xdd}
}

// frame adds the link-layer header of the given type.
func frame(lt int, ip []byte) []byte {
	switch lt {
	case LinkTypeEthernet: // with an 802.1Q tag
		return cat(seq(12), []byte{0x81, 0x00, 0, 5}, ethertype(ip), ip)
	case LinkTypeLinuxSLL:
		return cat(make([]byte, 14), ethertype(ip), ip)
	case LinkTypeLinuxSL2:
		return cat(ethertype(ip), make([]byte, 18), ip)
	case LinkTypeNull:
		return cat([]byte{2, 0, 0, 0}, ip)
	}
	return ip
}

func testPackets() []Packet {
	return []Packet{
		seg(0, "10.0.0.1:40000", "10.0.1.1:80", syn, 1000, 0, nil, []byte{2, 4, 5, 0xb4}, capSYN(0x01)),
		seg(1, "10.0.1.1:80", "10.0.0.1:40000", synack, 5000, 1001, nil, capKey(0x01, 77)),
		seg(2, "[2001:db8::1]:1", "[2001:db8::2]:2", psh, 1, 2, []byte("payload"), dssMap(1, 2, 3, 7)),
	}
}

// normalise makes a read packet comparable with the one it was built
// from: options gain padding on the wire.
func normalise(p Packet) Packet {
	for len(p.Options)%4 != 0 {
		p.Options = append(p.Options, 0)
	}
	if len(p.Payload) == 0 {
		p.Payload = nil
	}
	p.Options = append([]byte(nil), p.Options...)
	p.Payload = append([]byte(nil), p.Payload...)
	if len(p.Payload) == 0 {
		p.Payload = nil
	}
	return p
}

func readAll(t *testing.T, data []byte) ([]Packet, int) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var got []Packet
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, normalise(p))
	}
	return got, r.Skipped()
}

func TestReaderPcap(t *testing.T) {
	for _, lt := range []int{LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSL2, LinkTypeRaw, LinkTypeNull} {
		var buf bytes.Buffer
		w := pcapgo.NewWriterNanos(&buf)
		if err := w.WriteFileHeader(65535, layers.LinkType(lt)); err != nil {
			t.Fatal(err)
		}
		want := testPackets()
		for _, p := range want {
			f := frame(lt, ipPacket(p))
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(f), Length: len(f)}, f); err != nil {
				t.Fatal(err)
			}
		}
		// A non-TCP frame (UDP over IPv4) must be skipped.
		udp := cat([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0}, make([]byte, 16))
		f := frame(lt, udp)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at(9), CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i] = normalise(want[i])
		}
		got, skipped := readAll(t, buf.Bytes())
		if diff := cmp.Diff(want, got, addrCmp()); diff != "" {
			t.Errorf("link type %d: packets mismatch (-want +got):\n%s", lt, diff)
		}
		if skipped != 1 {
			t.Errorf("link type %d: skipped = %d, want 1", lt, skipped)
		}
	}
}

func TestReaderPcapng(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkType(LinkTypeLinuxSL2))
	if err != nil {
		t.Fatal(err)
	}
	want := testPackets()
	for _, p := range want {
		f := frame(LinkTypeLinuxSL2, ipPacket(p))
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(f), Length: len(f)}, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i] = normalise(want[i])
	}
	got, _ := readAll(t, buf.Bytes())
	if diff := cmp.Diff(want, got, addrCmp()); diff != "" {
		t.Errorf("pcapng packets mismatch (-want +got):\n%s", diff)
	}
	// The same file through the analyzer.
	a := NewAnalyzer()
	for _, p := range got {
		a.Packet(p)
	}
	if s := a.Summary(); len(s.Connections) != 1 || s.Connections[0].ServerKey != "000000000000004d" {
		t.Errorf("summary from pcapng = %+v", s)
	}
}

func TestReaderErrors(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Error("NewReader on 2 bytes: want error")
	}
	if _, err := NewReader(bytes.NewReader(seq(40))); err == nil {
		t.Error("NewReader on garbage: want error")
	}
}

func TestDecodeFrameSnaplen(t *testing.T) {
	p := seg(0, "10.0.0.1:1", "10.0.0.2:2", psh, 1, 1, make([]byte, 1000))
	f := ipPacket(p)[:60] // headers plus 20 bytes of payload
	got, ok := DecodeFrame(LinkTypeRaw, f)
	if !ok {
		t.Fatal("DecodeFrame rejected a truncated capture")
	}
	if got.PayloadLen != 1000 || len(got.Payload) != 20 {
		t.Errorf("PayloadLen %d, captured %d; want 1000, 20", got.PayloadLen, len(got.Payload))
	}
	// Every shorter prefix of a frame must be rejected or parsed, never panic.
	full := frame(LinkTypeEthernet, ipPacket(testPackets()[2]))
	for n := range full {
		DecodeFrame(LinkTypeEthernet, full[:n])
	}
	if _, ok := DecodeFrame(999, full); ok {
		t.Error("unknown link type accepted")
	}
}
