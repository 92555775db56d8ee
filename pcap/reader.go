package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// Link-layer header types (LINKTYPE_* values from the pcap specification)
// understood by Reader.
const (
	LinkTypeNull     = 0   // BSD loopback: 4-byte address family in host order
	LinkTypeEthernet = 1   // Ethernet II, optionally 802.1Q / 802.1ad tagged
	LinkTypeRaw      = 101 // raw IPv4 or IPv6
	LinkTypeLinuxSLL = 113 // Linux "cooked" capture v1 (tcpdump -i any)
	LinkTypeIPv4     = 228
	LinkTypeIPv6     = 229
	LinkTypeLinuxSL2 = 276 // Linux "cooked" capture v2 (newer tcpdump -i any)
)

// TCP header flag bits as they appear in the low byte of the flags field.
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// Packet is one TCP segment read from a capture.
type Packet struct {
	// Time is the capture timestamp.
	Time time.Time
	// Src and Dst are the endpoints of the segment.
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	// Flags holds the TCP flag bits (TCPFlag*).
	Flags  uint8
	Window uint16
	// PayloadLen is the TCP payload length taken from the IP header, so
	// it is right even when the capture was truncated by a snap length.
	PayloadLen int
	// Payload is the captured part of the payload, possibly shorter
	// than PayloadLen.
	Payload []byte
	// Options is the raw TCP options area (after the 20-byte header).
	Options []byte
}

// Has reports whether all the given TCP flag bits are set.
func (p Packet) Has(flags uint8) bool { return p.Flags&flags == flags }

// packetSource is the part of pcapgo's readers that Reader needs.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Reader streams TCP segments out of a pcap or pcapng file. It keeps no
// state between packets beyond the file reader's buffer.
type Reader struct {
	src      packetSource
	ng       *pcapgo.NgReader // nil for classic pcap
	linkType int              // classic pcap only
	skipped  int
}

// NewReader detects whether r holds a classic pcap (either byte order,
// micro- or nanosecond timestamps) or a pcapng file and prepares to read
// it.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read capture file magic: %w", err)
	}
	if binary.BigEndian.Uint32(magic) == 0x0a0d0d0a {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, fmt.Errorf("open pcapng: %w", err)
		}
		return &Reader{src: ng, ng: ng}, nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("open pcap: %w", err)
	}
	return &Reader{src: pr, linkType: int(pr.LinkType())}, nil
}

// Skipped returns how many packets so far were not TCP segments or could
// not be parsed (unknown link type, IP fragments, truncated headers).
func (r *Reader) Skipped() int { return r.skipped }

// Next returns the next TCP segment, skipping everything else. At the end
// of the file it returns io.EOF. Payload and Options alias the reader's
// buffer and are only valid until the following call to Next.
func (r *Reader) Next() (Packet, error) {
	for {
		data, ci, err := r.src.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Packet{}, io.EOF
			}
			return Packet{}, fmt.Errorf("read packet: %w", err)
		}
		lt := r.linkType
		if r.ng != nil {
			iface, err := r.ng.Interface(ci.InterfaceIndex)
			if err != nil {
				r.skipped++
				continue
			}
			lt = int(iface.LinkType)
		}
		p, ok := DecodeFrame(lt, data)
		if !ok {
			r.skipped++
			continue
		}
		p.Time = ci.Timestamp
		return p, nil
	}
}

// DecodeFrame parses one captured frame of the given link type down to
// its TCP segment. It reports false for anything that is not a complete
// TCP header over IPv4 or IPv6 (non-first IP fragments included). The
// returned Packet aliases data and has no timestamp.
func DecodeFrame(linkType int, data []byte) (Packet, bool) {
	var proto uint16 // an EtherType; 0 means "look at the IP version"
	switch linkType {
	case LinkTypeEthernet:
		if len(data) < 14 {
			return Packet{}, false
		}
		proto, data = binary.BigEndian.Uint16(data[12:14]), data[14:]
		for proto == 0x8100 || proto == 0x88a8 {
			if len(data) < 4 {
				return Packet{}, false
			}
			proto, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
		}
	case LinkTypeLinuxSLL:
		if len(data) < 16 {
			return Packet{}, false
		}
		proto, data = binary.BigEndian.Uint16(data[14:16]), data[16:]
	case LinkTypeLinuxSL2:
		if len(data) < 20 {
			return Packet{}, false
		}
		proto, data = binary.BigEndian.Uint16(data[0:2]), data[20:]
	case LinkTypeNull:
		if len(data) < 4 {
			return Packet{}, false
		}
		data = data[4:]
	case LinkTypeRaw, LinkTypeIPv4, LinkTypeIPv6:
	default:
		return Packet{}, false
	}
	switch proto {
	case 0:
		if len(data) == 0 {
			return Packet{}, false
		}
		switch data[0] >> 4 {
		case 4:
			return decodeIPv4(data)
		case 6:
			return decodeIPv6(data)
		}
		return Packet{}, false
	case 0x0800:
		return decodeIPv4(data)
	case 0x86dd:
		return decodeIPv6(data)
	}
	return Packet{}, false
}

func decodeIPv4(b []byte) (Packet, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return Packet{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl || b[9] != 6 {
		return Packet{}, false
	}
	// Only unfragmented datagrams or first fragments carry a TCP header
	// we can trust; with MF set the payload length would be wrong too.
	frag := binary.BigEndian.Uint16(b[6:8])
	if frag&0x3fff != 0 {
		return Packet{}, false
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total == 0 { // TSO/GRO segments captured before segmentation
		total = len(b)
	}
	if total < ihl {
		return Packet{}, false
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	return decodeTCP(src, dst, b[ihl:], total-ihl)
}

func decodeIPv6(b []byte) (Packet, bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return Packet{}, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen == 0 { // jumbogram or GSO: trust the capture
		plen = len(b) - 40
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	next := b[6]
	b = b[40:]
	// Walk extension headers until TCP; give up on anything else.
	for next != 6 {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 8 {
				return Packet{}, false
			}
			n := (int(b[1]) + 1) * 8
			if len(b) < n || plen < n {
				return Packet{}, false
			}
			next, b, plen = b[0], b[n:], plen-n
		case 44: // fragment
			if len(b) < 8 || plen < 8 {
				return Packet{}, false
			}
			if binary.BigEndian.Uint16(b[2:4])&0xfff9 != 0 {
				return Packet{}, false // offset non-zero or more fragments
			}
			next, b, plen = b[0], b[8:], plen-8
		default:
			return Packet{}, false
		}
	}
	return decodeTCP(src, dst, b, plen)
}

// decodeTCP parses the TCP header in b; segLen is the segment length
// (header plus payload) according to the IP header.
func decodeTCP(src, dst netip.Addr, b []byte, segLen int) (Packet, bool) {
	if len(b) < 20 {
		return Packet{}, false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || len(b) < off || segLen < off {
		return Packet{}, false
	}
	p := Packet{
		Src:        netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2])),
		Dst:        netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4])),
		Seq:        binary.BigEndian.Uint32(b[4:8]),
		Ack:        binary.BigEndian.Uint32(b[8:12]),
		Flags:      b[13],
		Window:     binary.BigEndian.Uint16(b[14:16]),
		Options:    b[20:off:off],
		PayloadLen: segLen - off,
	}
	pay := b[off:]
	if len(pay) > p.PayloadLen {
		pay = pay[:p.PayloadLen] // drop Ethernet padding
	}
	p.Payload = pay
	return p, true
}
