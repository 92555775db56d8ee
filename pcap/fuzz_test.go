package pcap

import (
	"errors"
	"testing"
)

// FuzzDecodeOption checks that arbitrary bytes never panic the decoder,
// that failures wrap a package sentinel, and that the option walker and
// the analyzer cope with the same bytes as a TCP options area.
func FuzzDecodeOption(f *testing.F) {
	for _, s := range [][]byte{
		opt(0x01, 0x81),
		capKeys(0x01, 1, 2),
		joinSYN(1, 2, 3, true),
		joinSYNACK(1, 2, 3),
		joinACK(seq(20)),
		dssMap(1, 2, 3, 4),
		dssMapCsum(1, 2, 3, 4),
		addAddr4(1, "10.0.0.1", 5),
		opt(0x40, 1, 2),
		opt(0x51),
		opt(0x81, 0x06),
	} {
		f.Add(s)
	}
	sentinels := []error{ErrTruncated, ErrBadLength, ErrNotMPTCP, ErrUnknownSubtype, ErrUnsupportedVersion}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOption(b)
		if err != nil {
			if o != nil {
				t.Fatalf("option %#v returned with error %v", o, err)
			}
			known := false
			for _, s := range sentinels {
				known = known || errors.Is(err, s)
			}
			if !known {
				t.Fatalf("error %v wraps no sentinel", err)
			}
		} else if o.Subtype() != Subtype(b[2]>>4) {
			t.Fatalf("Subtype() = %v for byte 0x%02x", o.Subtype(), b[2])
		}
		// The allocation-free DSS decoder agrees with DecodeOption.
		var d DSS
		if decodeDSSInto(&d, b) {
			if got, ok := o.(*DSS); !ok || *got != d {
				t.Fatalf("decodeDSSInto = %+v, DecodeOption = %#v, %v", d, o, err)
			}
		} else if _, ok := o.(*DSS); ok {
			t.Fatalf("decodeDSSInto refused a DSS DecodeOption accepted: %#v", o)
		}
		raw, _ := MPTCPOptions(b)
		for _, r := range raw {
			_, _ = DecodeOption(r)
		}
		a := NewAnalyzer()
		a.HandleEvents(func(e Event) { _ = e.String() })
		a.Packet(Packet{Flags: TCPFlagSYN, Options: b})
		a.Packet(Packet{Flags: TCPFlagSYN | TCPFlagACK, Options: b})
		a.Packet(Packet{Flags: TCPFlagACK, PayloadLen: 10, Options: b})
		a.Packet(Packet{Flags: TCPFlagACK | TCPFlagFIN | TCPFlagRST, PayloadLen: 3, Payload: []byte{1, 2, 3}, Options: b})
		a.Summary()
	})
}

// FuzzDecodeFrame: a captured frame of any link type gives a TCP segment
// or false, never a panic or a slice beyond the frame, and an Analyzer
// fed the segment does not panic either.
func FuzzDecodeFrame(f *testing.F) {
	for _, lt := range []int{LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSL2, LinkTypeNull, LinkTypeRaw} {
		for _, p := range testPackets() {
			f.Add(lt, frame(lt, ipPacket(p)))
		}
	}
	f.Add(LinkTypeRaw, []byte{0x45})
	f.Add(LinkTypeEthernet, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00})
	f.Fuzz(func(t *testing.T, linkType int, data []byte) {
		p, ok := DecodeFrame(linkType, data)
		if !ok {
			return
		}
		if len(p.Options) > len(data) || len(p.Payload) > len(data) {
			t.Fatalf("segment larger than its %d-byte frame: %d option, %d payload bytes", len(data), len(p.Options), len(p.Payload))
		}
		a := NewAnalyzer()
		a.Packet(p)
		_ = a.Summary()
	})
}
