package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/bpf"
)

// tcpSegment builds an IPv4 or IPv6 TCP segment (no link header) with
// the given TCP options, padded to 4 bytes.
func tcpSegment(v6 bool, proto byte, opts []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	tcp := make([]byte, 20+len(opts))
	tcp[12] = byte((20+len(opts))/4) << 4
	copy(tcp[20:], opts)
	if v6 {
		ip := make([]byte, 40)
		ip[0] = 0x60
		ip[6] = proto
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		return append(ip, tcp...)
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	ip[9] = proto
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
	return append(ip, tcp...)
}

func ethernet(ethertype uint16, payload []byte) []byte {
	f := make([]byte, 14)
	binary.BigEndian.PutUint16(f[12:], ethertype)
	return append(f, payload...)
}

func TestMPTCPFilter(t *testing.T) {
	mpCapable := []byte{30, 12, 0x01, 0x81, 1, 2, 3, 4, 5, 6, 7, 8}
	timestamps := []byte{8, 10, 0, 0, 0, 1, 0, 0, 0, 2}
	nops := func(n int) []byte { return bytes.Repeat([]byte{1}, n) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	ipv4Frag := func() []byte {
		s := tcpSegment(false, 6, mpCapable)
		s[7] = 1 // fragment offset 8: no TCP header here
		return s
	}
	ipv4Options := func() []byte {
		// IHL 6: a 4-byte IP option before TCP.
		s := tcpSegment(false, 6, cat(nops(2), mpCapable))
		out := append([]byte{}, s[:20]...)
		out[0] = 0x46
		out = append(out, 1, 1, 1, 0)
		return append(out, s[20:]...)
	}
	tests := []struct {
		name   string
		raw    []byte // network-layer packet
		ether  uint16
		accept bool
	}{
		{"v4 MP_CAPABLE", tcpSegment(false, 6, mpCapable), 0x0800, true},
		{"v4 after NOPs and timestamps", tcpSegment(false, 6, cat(nops(2), timestamps, mpCapable)), 0x0800, true},
		{"v4 after 27 NOPs", tcpSegment(false, 6, cat(nops(27), []byte{30, 4, 0x50, 0})), 0x0800, true},
		{"v4 with IP options", ipv4Options(), 0x0800, true},
		{"v4 timestamps only", tcpSegment(false, 6, cat(nops(2), timestamps)), 0x0800, false},
		{"v4 no options", tcpSegment(false, 6, nil), 0x0800, false},
		{"v4 end of options before kind 30", tcpSegment(false, 6, cat([]byte{0, 0, 0, 0}, mpCapable)), 0x0800, false},
		{"v4 zero-length option", tcpSegment(false, 6, cat([]byte{5, 0}, mpCapable)), 0x0800, false},
		{"v4 later fragment", ipv4Frag(), 0x0800, false},
		{"v4 UDP", tcpSegment(false, 17, mpCapable), 0x0800, false},
		{"v6 MP_CAPABLE", tcpSegment(true, 6, cat(nops(1), mpCapable)), 0x86dd, true},
		{"v6 without MPTCP", tcpSegment(true, 6, timestamps), 0x86dd, false},
		{"v6 hop-by-hop header", tcpSegment(true, 0, mpCapable), 0x86dd, false},
		{"ARP", make([]byte, 28), 0x0806, false},
		{"truncated", tcpSegment(false, 6, mpCapable)[:30], 0x0800, false},
	}
	for _, link := range []struct {
		name string
		hdr  uint32
	}{{"ethernet", 14}, {"raw", 0}} {
		prog, err := mptcpFilter(link.hdr, 65535)
		if err != nil {
			t.Fatalf("%s: mptcpFilter: %v", link.name, err)
		}
		if len(prog) > 4096 {
			t.Fatalf("%s: %d instructions; the kernel takes at most 4096", link.name, len(prog))
		}
		ins, ok := bpf.Disassemble(prog)
		if !ok {
			t.Fatalf("%s: program does not disassemble", link.name)
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			t.Fatalf("%s: bpf.NewVM: %v", link.name, err)
		}
		for _, tt := range tests {
			if link.hdr == 0 && tt.ether == 0x0806 {
				continue
			}
			pkt := tt.raw
			if link.hdr > 0 {
				pkt = ethernet(tt.ether, pkt)
			}
			n, err := vm.Run(pkt)
			if err != nil {
				t.Errorf("%s/%s: run: %v", link.name, tt.name, err)
				continue
			}
			if got := n > 0; got != tt.accept {
				t.Errorf("%s/%s: accepted = %t, want %t", link.name, tt.name, got, tt.accept)
			}
		}
	}
}

func TestPcapWriter(t *testing.T) {
	var b bytes.Buffer
	w, err := NewPcapWriter(&b, LinkTypeEthernet, 4)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	if err := w.WritePacket(Packet{Time: ts, Length: 6, Data: []byte{1, 2, 3, 4, 5, 6}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := []byte{}
	want = le.AppendUint32(want, 0xa1b23c4d)
	want = le.AppendUint16(want, 2)
	want = le.AppendUint16(want, 4)
	want = append(want, make([]byte, 8)...)
	want = le.AppendUint32(want, 4)
	want = le.AppendUint32(want, 1)
	want = le.AppendUint32(want, 1700000000)
	want = le.AppendUint32(want, 123456789)
	want = le.AppendUint32(want, 4) // cut to the snaplen
	want = le.AppendUint32(want, 6)
	want = append(want, 1, 2, 3, 4)
	if diff := cmp.Diff(want, b.Bytes()); diff != "" {
		t.Errorf("pcap bytes (-want +got):\n%s", diff)
	}
}

// pcapngBlocks splits a pcapng stream into (type, body) pairs, checking
// each block's two length fields.
func pcapngBlocks(t *testing.T, b []byte) (types []uint32, bodies [][]byte) {
	t.Helper()
	le := binary.LittleEndian
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d bytes left, too few for a block", len(b))
		}
		typ, l := le.Uint32(b), int(le.Uint32(b[4:]))
		if l%4 != 0 || l < 12 || l > len(b) || int(le.Uint32(b[l-4:])) != l {
			t.Fatalf("block of type %#x: bad length %d", typ, l)
		}
		types = append(types, typ)
		bodies = append(bodies, b[8:l-4])
		b = b[l:]
	}
	return types, bodies
}

func TestPcapngWriter(t *testing.T) {
	var b bytes.Buffer
	w, err := NewPcapngWriter(&b, LinkTypeRaw, 1500, "veth0")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(0, 0x0000_0123_4567_89ab)
	if err := w.WritePacket(Packet{Time: ts, Length: 5, Data: []byte{0x45, 1, 2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	types, bodies := pcapngBlocks(t, b.Bytes())
	if diff := cmp.Diff([]uint32{blockSection, blockInterface, blockPacket}, types); diff != "" {
		t.Fatalf("block types (-want +got):\n%s", diff)
	}
	le := binary.LittleEndian
	if got := le.Uint32(bodies[0]); got != 0x1a2b3c4d {
		t.Errorf("byte-order magic %#x", got)
	}
	if lt := le.Uint16(bodies[1]); lt != uint16(LinkTypeRaw) {
		t.Errorf("interface link type %d, want %d", lt, LinkTypeRaw)
	}
	if !bytes.Contains(bodies[1], []byte("veth0")) || !bytes.Contains(bodies[1], []byte{optIfTSResol, 0, 1, 0, 9}) {
		t.Errorf("interface block %x lacks the name or the nanosecond resolution", bodies[1])
	}
	epb := bodies[2]
	ns := uint64(le.Uint32(epb[4:]))<<32 | uint64(le.Uint32(epb[8:]))
	if ns != uint64(ts.UnixNano()) || le.Uint32(epb[12:]) != 5 || le.Uint32(epb[16:]) != 5 {
		t.Errorf("packet block header %x", epb[:20])
	}
	if diff := cmp.Diff([]byte{0x45, 1, 2, 3, 4, 0, 0, 0}, epb[20:]); diff != "" {
		t.Errorf("packet data with padding (-want +got):\n%s", diff)
	}
}
