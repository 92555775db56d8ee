package datapath

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func roundTripFrames() []struct {
	name  string
	frame Frame
} {
	return []struct {
		name  string
		frame Frame
	}{
		{"capable", &Capable{Version: Version, Key: 0x0102030405060708}},
		{"capable psk", &Capable{Version: Version, PSKRequired: true, Key: 1, MAC: seq(PSKMACSize)}},
		{"join syn", &Join{Token: 7, Nonce: 9, AddrID: 3}},
		{"join synack backup", &Join{Token: 7, Nonce: 9, AddrID: 3, Backup: true, MAC: seq(JoinSynAckMACSize)}},
		{"join ack", &Join{Token: 1<<32 - 1, Nonce: 1, MAC: seq(JoinAckMACSize)}},
		{"data", &Data{DSN: 1<<64 - 1, Payload: []byte("hello")}},
		{"data fin empty", &Data{DSN: 42, Fin: true}},
		{"data max", &Data{DSN: 1, Payload: seq(MaxDataPayload)}},
		{"data ack", &DataAck{Ack: 1 << 40}},
		{"add addr v4", &AddAddr{ID: 1, Addr: netip.MustParseAddr("192.0.2.7"), Port: 443}},
		{"add addr v6 mac", &AddAddr{ID: 2, Addr: netip.MustParseAddr("2001:db8::1"), Port: 8080, MAC: seq(AddAddrMACSize)}},
		{"add addr v4-mapped", &AddAddr{ID: 3, Addr: netip.MustParseAddr("::ffff:192.0.2.7")}},
		{"remove addr", &RemoveAddr{IDs: []uint8{1, 2, 255}}},
		{"prio backup", &Prio{Backup: true}},
		{"prio regular", &Prio{}},
		{"fastclose", &FastClose{Key: 99}},
		{"ping", &Ping{Timestamp: 123456789}},
		{"pong", &Pong{Timestamp: 123456789}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	for _, tc := range roundTripFrames() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendFrame(nil, tc.frame)
			if err != nil {
				t.Fatalf("AppendFrame: %v", err)
			}
			got, err := Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.frame, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if err := Encode(&stream, tc.frame); err != nil {
				t.Fatalf("Encode: %v", err)
			}
		})
	}
	// The same frames back to back decode as a stream, then clean EOF.
	d := NewDecoder(&stream, 0)
	for _, tc := range roundTripFrames() {
		f, err := d.Decode()
		if err != nil || f.Type() != tc.frame.Type() {
			t.Fatalf("stream %s: got %v, %v", tc.name, f, err)
		}
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("end of stream: got %v, want io.EOF", err)
	}
}

func TestFrameWireFormat(t *testing.T) {
	b, err := AppendFrame(nil, &Data{DSN: 0x0102030405060708, Fin: true, Payload: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{byte(TypeData), 0x01, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 'h', 'i'}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("DATA encoding (-want +got):\n%s", diff)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame Frame
		want  error
	}{
		{"capable v0", &Capable{Key: 1}, ErrMalformed},
		{"capable short mac", &Capable{Version: 1, MAC: seq(5)}, ErrMalformed},
		{"join bad mac", &Join{MAC: seq(32)}, ErrMalformed},
		{"data too big", &Data{Payload: seq(MaxDataPayload + 1)}, ErrFrameTooLarge},
		{"add addr invalid", &AddAddr{ID: 1}, ErrMalformed},
		{"add addr zone", &AddAddr{Addr: netip.MustParseAddr("fe80::1%eth0")}, ErrMalformed},
		{"add addr bad mac", &AddAddr{Addr: netip.MustParseAddr("192.0.2.1"), MAC: seq(3)}, ErrMalformed},
		{"remove none", &RemoveAddr{}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Encode(io.Discard, tc.frame); !errors.Is(err, tc.want) {
				t.Errorf("Encode = %v, want %v", err, tc.want)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestEncodeWriteError(t *testing.T) {
	if err := Encode(failWriter{}, &Ping{}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v, want wrapped io.ErrClosedPipe", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	hdr := func(t FrameType, flags byte, n uint16, body ...byte) []byte {
		return append([]byte{byte(t), flags, byte(n >> 8), byte(n)}, body...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"empty", nil, 0, io.EOF},
		{"short header", []byte{3, 0}, 0, ErrTruncated},
		{"short body", hdr(TypeData, 0, 10, 1, 2, 3), 0, ErrTruncated},
		{"too large for limit", hdr(TypeData, 0, 100), 64, ErrFrameTooLarge},
		{"unknown type 0", hdr(0, 0, 0), 0, ErrUnknownType},
		{"unknown type 200", hdr(200, 0, 0), 0, ErrUnknownType},
		{"unknown flag", hdr(TypePing, 0x01, 8, 0, 0, 0, 0, 0, 0, 0, 0), 0, ErrMalformed},
		{"data fin unknown flag", hdr(TypeData, 0x03, 8, 0, 0, 0, 0, 0, 0, 0, 0), 0, ErrMalformed},
		{"data short dsn", hdr(TypeData, 0, 4, 0, 0, 0, 0), 0, ErrMalformed},
		{"ack trailing", hdr(TypeDataAck, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, ErrMalformed},
		{"capable v0", hdr(TypeCapable, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1), 0, ErrMalformed},
		{"capable odd mac", hdr(TypeCapable, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9), 0, ErrMalformed},
		{"join odd mac", hdr(TypeJoin, 0, 10, 0, 0, 0, 1, 0, 0, 0, 2, 3, 9), 0, ErrMalformed},
		{"add addr family", hdr(TypeAddAddr, 0, 8, 1, 5, 1, 2, 3, 4, 0, 80), 0, ErrMalformed},
		{"add addr short", hdr(TypeAddAddr, 0, 1, 1), 0, ErrMalformed},
		{"add addr odd tail", hdr(TypeAddAddr, 0, 9, 1, 4, 1, 2, 3, 4, 0, 80, 7), 0, ErrMalformed},
		{"remove empty", hdr(TypeRemoveAddr, 0, 0), 0, ErrMalformed},
		{"prio body", hdr(TypePrio, 0, 1, 0), 0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewDecoder(bytes.NewReader(tc.in), tc.max).Decode()
			if !errors.Is(err, tc.want) || f != nil {
				t.Errorf("Decode = %v, %v; want nil, %v", f, err, tc.want)
			}
		})
	}
	if !errors.Is(ErrTruncated, io.ErrUnexpectedEOF) {
		t.Error("ErrTruncated should wrap io.ErrUnexpectedEOF")
	}
}

func TestDecodeReadError(t *testing.T) {
	r := io.MultiReader(bytes.NewReader([]byte{byte(TypePing), 0, 0, 8, 1}), errReader{})
	if _, err := Decode(r); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v, want wrapped io.ErrClosedPipe", err)
	}
	if _, err := Decode(errReader{}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("header: got %v, want wrapped io.ErrClosedPipe", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestFrameTypeString(t *testing.T) {
	if TypeDataAck.String() != "DATA_ACK" || FrameType(0).String() != "FrameType(0)" || FrameType(99).String() != "FrameType(99)" {
		t.Error("unexpected FrameType names")
	}
}

// FuzzDecodeFrame checks that decoding never panics, never returns a frame
// with an error, and that every accepted frame re-encodes to the same bytes
// (one canonical encoding per frame).
func FuzzDecodeFrame(f *testing.F) {
	for _, tc := range roundTripFrames() {
		if tc.frame.Type() == TypeData && len(tc.frame.(*Data).Payload) > 100 {
			continue
		}
		b, err := AppendFrame(nil, tc.frame)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in), 1024)
		// The subflow decoder reads ahead in small pieces here so that
		// frames straddle its buffer; it must agree with the plain one.
		bd := newBufferedDecoder(iotest.HalfReader(bytes.NewReader(in)))
		bd.max = 1024
		var consumed int
		for {
			fr, err := d.Decode()
			bfr, berr := bd.Decode()
			if got, want := errClass(berr), errClass(err); got != want {
				t.Fatalf("buffered decoder: error %v, plain decoder: %v", berr, err)
			}
			if err != nil {
				if fr != nil || bfr != nil {
					t.Fatalf("frame %v returned with error %v", fr, err)
				}
				return
			}
			if diff := cmp.Diff(fr, bfr, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Fatalf("buffered decoder (-plain +buffered):\n%s", diff)
			}
			b, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encoding decoded %#v: %v", fr, err)
			}
			if end := consumed + len(b); end > len(in) || !bytes.Equal(b, in[consumed:end]) {
				t.Fatalf("re-encoding %#v = %x, input %x", fr, b, in[consumed:])
			}
			consumed += len(b)
		}
	})
}

// errClass maps a Decode error to the sentinel it wraps.
func errClass(err error) error {
	for _, e := range []error{io.EOF, ErrTruncated, ErrFrameTooLarge, ErrUnknownType, ErrMalformed} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}
