package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
)

// Wire layout of every frame (big-endian):
//
//	type u8 | flags u8 | length u16 | body (length bytes)
//
// Flags are type-specific; unknown bits, unknown types, bad lengths and
// trailing body bytes are rejected so each frame has one encoding.
const (
	HeaderSize = 4
	// MaxBodySize is the largest body the 16-bit length can describe.
	MaxBodySize = math.MaxUint16
	// MaxFrameSize is the largest encoded frame.
	MaxFrameSize = HeaderSize + MaxBodySize
	// MaxDataPayload is the largest DATA payload in one frame.
	MaxDataPayload = MaxBodySize - 8
	// Version is the protocol version carried in CAPABLE.
	Version = 1
)

// FrameType identifies a frame on the wire.
type FrameType uint8

// Frame types.
const (
	TypeCapable FrameType = iota + 1
	TypeJoin
	TypeData
	TypeDataAck
	TypeAddAddr
	TypeRemoveAddr
	TypePrio
	TypeFastClose
	TypePing
	TypePong
)

func (t FrameType) String() string {
	names := [...]string{"", "CAPABLE", "JOIN", "DATA", "DATA_ACK", "ADD_ADDR", "REMOVE_ADDR", "PRIO", "FASTCLOSE", "PING", "PONG"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Header flag bits.
const (
	flagPSKRequired = 0x01 // CAPABLE
	flagBackup      = 0x01 // JOIN, PRIO
	flagFin         = 0x01 // DATA
)

// Codec errors; returned errors wrap one of these.
var (
	ErrFrameTooLarge = errors.New("datapath: frame too large")
	ErrUnknownType   = errors.New("datapath: unknown frame type")
	ErrMalformed     = errors.New("datapath: malformed frame")
	// ErrTruncated reports a stream that ended inside a frame; it also
	// wraps io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("datapath: truncated frame: %w", io.ErrUnexpectedEOF)
)

// Frame is one protocol message. The concrete types are the exported
// structs in this file; the interface is sealed.
type Frame interface {
	Type() FrameType
	flags() uint8
	appendBody(b []byte) ([]byte, error)
}

// Capable opens a connection (RFC 8684 MP_CAPABLE). MAC is empty or a
// PSKMAC over (Key, peer's key).
type Capable struct {
	Version     uint8
	PSKRequired bool // sender requires the peer to send a PSK MAC
	Key         Key
	MAC         []byte
}

// Join adds a subflow to an existing connection (RFC 8684 MP_JOIN). MAC is
// empty in the initiator's first JOIN, JoinSynAckMACSize bytes in the
// responder's reply and JoinAckMACSize bytes in the initiator's final JOIN.
type Join struct {
	Token  uint32
	Nonce  uint32
	AddrID uint8
	Backup bool
	MAC    []byte
}

// Data carries stream bytes at a 64-bit data sequence number (RFC 8684
// DSS mapping). Fin marks DATA_FIN, which occupies the DSN right after the
// payload.
type Data struct {
	DSN     uint64
	Fin     bool
	Payload []byte
}

// DataAck cumulatively acknowledges every DSN below Ack (RFC 8684 DATA_ACK).
type DataAck struct {
	Ack uint64
}

// AddAddr advertises an address (RFC 8684 ADD_ADDR). MAC is empty or
// AddAddrMACSize bytes from AddAddrMAC. Port 0 means "same port".
type AddAddr struct {
	ID   uint8
	Addr netip.Addr
	Port uint16
	MAC  []byte
}

// RemoveAddr withdraws addresses by ID (RFC 8684 REMOVE_ADDR).
type RemoveAddr struct {
	IDs []uint8
}

// Prio changes the backup priority of the subflow it is sent on (RFC 8684
// MP_PRIO).
type Prio struct {
	Backup bool
}

// FastClose aborts the whole connection at once (RFC 8684 MP_FASTCLOSE);
// Key is the receiver's key, proving the sender knows it.
type FastClose struct {
	Key Key
}

// Ping is a heartbeat; the peer echoes Timestamp in a Pong.
type Ping struct {
	Timestamp uint64
}

// Pong answers a Ping with its Timestamp.
type Pong struct {
	Timestamp uint64
}

// Type implements Frame.
func (*Capable) Type() FrameType { return TypeCapable }

// Type implements Frame.
func (*Join) Type() FrameType { return TypeJoin }

// Type implements Frame.
func (*Data) Type() FrameType { return TypeData }

// Type implements Frame.
func (*DataAck) Type() FrameType { return TypeDataAck }

// Type implements Frame.
func (*AddAddr) Type() FrameType { return TypeAddAddr }

// Type implements Frame.
func (*RemoveAddr) Type() FrameType { return TypeRemoveAddr }

// Type implements Frame.
func (*Prio) Type() FrameType { return TypePrio }

// Type implements Frame.
func (*FastClose) Type() FrameType { return TypeFastClose }

// Type implements Frame.
func (*Ping) Type() FrameType { return TypePing }

// Type implements Frame.
func (*Pong) Type() FrameType { return TypePong }

func flagIf(c bool, f uint8) uint8 {
	if c {
		return f
	}
	return 0
}

func (f *Capable) flags() uint8                        { return flagIf(f.PSKRequired, flagPSKRequired) }
func (f *Join) flags() uint8                           { return flagIf(f.Backup, flagBackup) }
func (f *Data) flags() uint8                           { return flagIf(f.Fin, flagFin) }
func (f *Prio) flags() uint8                           { return flagIf(f.Backup, flagBackup) }
func (*DataAck) flags() uint8                          { return 0 }
func (*AddAddr) flags() uint8                          { return 0 }
func (*RemoveAddr) flags() uint8                       { return 0 }
func (*FastClose) flags() uint8                        { return 0 }
func (*Ping) flags() uint8                             { return 0 }
func (*Pong) flags() uint8                             { return 0 }
func (f *DataAck) appendBody(b []byte) ([]byte, error) { return be64(b, f.Ack), nil }
func (f *FastClose) appendBody(b []byte) ([]byte, error) {
	return be64(b, uint64(f.Key)), nil
}
func (f *Ping) appendBody(b []byte) ([]byte, error) { return be64(b, f.Timestamp), nil }
func (f *Pong) appendBody(b []byte) ([]byte, error) { return be64(b, f.Timestamp), nil }
func (*Prio) appendBody(b []byte) ([]byte, error)   { return b, nil }

func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// CAPABLE body: version u8 | key u64 | mac (0 or 32 bytes).
func (f *Capable) appendBody(b []byte) ([]byte, error) {
	if f.Version == 0 {
		return nil, fmt.Errorf("%w: CAPABLE version 0", ErrMalformed)
	}
	if n := len(f.MAC); n != 0 && n != PSKMACSize {
		return nil, fmt.Errorf("%w: CAPABLE MAC length %d", ErrMalformed, n)
	}
	b = append(b, f.Version)
	return append(be64(b, uint64(f.Key)), f.MAC...), nil
}

// JOIN body: token u32 | nonce u32 | addr id u8 | mac (0, 8 or 20 bytes).
func (f *Join) appendBody(b []byte) ([]byte, error) {
	if n := len(f.MAC); n != 0 && n != JoinSynAckMACSize && n != JoinAckMACSize {
		return nil, fmt.Errorf("%w: JOIN MAC length %d", ErrMalformed, n)
	}
	b = binary.BigEndian.AppendUint32(b, f.Token)
	b = binary.BigEndian.AppendUint32(b, f.Nonce)
	return append(append(b, f.AddrID), f.MAC...), nil
}

// DATA body: dsn u64 | payload (rest of the frame).
func (f *Data) appendBody(b []byte) ([]byte, error) {
	if len(f.Payload) > MaxDataPayload {
		return nil, fmt.Errorf("%w: DATA payload %d > %d", ErrFrameTooLarge, len(f.Payload), MaxDataPayload)
	}
	return append(be64(b, f.DSN), f.Payload...), nil
}

// ADD_ADDR body: id u8 | family u8 (4 or 6) | addr (4 or 16) | port u16 |
// mac (0 or 8 bytes).
func (f *AddAddr) appendBody(b []byte) ([]byte, error) {
	if !f.Addr.IsValid() || f.Addr.Zone() != "" {
		return nil, fmt.Errorf("%w: ADD_ADDR address %q", ErrMalformed, f.Addr)
	}
	if n := len(f.MAC); n != 0 && n != AddAddrMACSize {
		return nil, fmt.Errorf("%w: ADD_ADDR MAC length %d", ErrMalformed, n)
	}
	fam := byte(6)
	if f.Addr.Is4() {
		fam = 4
	}
	b = append(append(b, f.ID, fam), f.Addr.AsSlice()...)
	return append(binary.BigEndian.AppendUint16(b, f.Port), f.MAC...), nil
}

// REMOVE_ADDR body: one or more ids, one byte each.
func (f *RemoveAddr) appendBody(b []byte) ([]byte, error) {
	if len(f.IDs) == 0 {
		return nil, fmt.Errorf("%w: REMOVE_ADDR without ids", ErrMalformed)
	}
	return append(b, f.IDs...), nil
}

// AppendFrame appends the encoding of f to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	start := len(b)
	b = append(b, byte(f.Type()), f.flags(), 0, 0)
	b, err := f.appendBody(b)
	if err != nil {
		return nil, fmt.Errorf("encoding %v: %w", f.Type(), err)
	}
	n := len(b) - start - HeaderSize
	if n > MaxBodySize {
		return nil, fmt.Errorf("encoding %v: %w: body %d > %d", f.Type(), ErrFrameTooLarge, n, MaxBodySize)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(n))
	return b, nil
}

// Encode writes f to w as a single Write call.
func Encode(w io.Writer, f Frame) error {
	b, err := AppendFrame(make([]byte, 0, 64), f)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing %v: %w", f.Type(), err)
	}
	return nil
}

// Decoder reads frames from a stream. By default it reads exactly one
// frame per Decode and allocates at most one body per frame, never larger
// than its maximum frame size.
type Decoder struct {
	r   io.Reader
	max int
	hdr [HeaderSize]byte

	// Buffered mode (newBufferedDecoder): reads ahead into buf, and DATA
	// payloads alias buf until the next Decode.
	buf        []byte
	bufMax     int
	rpos, wpos int
	rerr       error
	data       Data
}

// NewDecoder returns a decoder reading from r that rejects frames larger
// than maxFrame bytes (header included); values outside
// [HeaderSize, MaxFrameSize] mean MaxFrameSize.
func NewDecoder(r io.Reader, maxFrame int) *Decoder {
	if maxFrame < HeaderSize || maxFrame > MaxFrameSize {
		maxFrame = MaxFrameSize
	}
	return &Decoder{r: r, max: maxFrame}
}

// Buffer sizes of subflow decoders: small until a large frame shows up,
// so that handshakes (and refused connections) stay cheap.
const (
	decoderInitBuf = 4 << 10
	decoderMaxBuf  = 256 << 10
)

// newBufferedDecoder returns a decoder for a subflow: it reads ahead in
// large chunks into a reusable buffer and returns DATA frames (the *Data
// itself and its payload) that are valid only until the next Decode. The
// decoder must own r: bytes it read ahead are not given back.
func newBufferedDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, max: MaxFrameSize, buf: make([]byte, decoderInitBuf), bufMax: decoderMaxBuf}
}

// Decode reads one frame from r, allowing frames up to MaxFrameSize.
// Prefer a Decoder for streams: it reuses its header buffer.
func Decode(r io.Reader) (Frame, error) {
	return NewDecoder(r, MaxFrameSize).Decode()
}

// Decode reads the next frame. It returns io.EOF only at a clean frame
// boundary; ErrTruncated for a stream ending mid-frame; ErrFrameTooLarge,
// ErrUnknownType or ErrMalformed for invalid input. The stream is not
// resynchronised after an error: the caller should drop the subflow.
func (d *Decoder) Decode() (Frame, error) {
	if d.buf != nil {
		return d.decodeBuffered()
	}
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: in header", ErrTruncated)
		}
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	t, flags, n, err := d.checkHeader(d.hdr[:])
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(d.r, body); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: %v body wants %d bytes", ErrTruncated, t, n)
		}
		return nil, fmt.Errorf("reading %v body: %w", t, err)
	}
	f, err := parseBody(t, flags, body)
	if err != nil {
		return nil, fmt.Errorf("decoding %v: %w", t, err)
	}
	return f, nil
}

// checkHeader validates a header before its body is read, so garbage
// fails fast.
func (d *Decoder) checkHeader(h []byte) (FrameType, uint8, int, error) {
	t, flags := FrameType(h[0]), h[1]
	n := int(binary.BigEndian.Uint16(h[2:]))
	if HeaderSize+n > d.max {
		return 0, 0, 0, fmt.Errorf("%w: %v frame of %d bytes, limit %d", ErrFrameTooLarge, t, HeaderSize+n, d.max)
	}
	if t < TypeCapable || t > TypePong {
		return 0, 0, 0, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
	}
	return t, flags, n, nil
}

func (d *Decoder) decodeBuffered() (Frame, error) {
	if err := d.fill(HeaderSize); err != nil {
		if err == io.EOF && d.wpos == d.rpos {
			return nil, io.EOF
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: in header", ErrTruncated)
		}
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	t, flags, n, err := d.checkHeader(d.buf[d.rpos : d.rpos+HeaderSize])
	if err != nil {
		return nil, err
	}
	if err := d.fill(HeaderSize + n); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: %v body wants %d bytes", ErrTruncated, t, n)
		}
		return nil, fmt.Errorf("reading %v body: %w", t, err)
	}
	body := d.buf[d.rpos+HeaderSize : d.rpos+HeaderSize+n]
	d.rpos += HeaderSize + n
	if t == TypeData {
		if err := parseData(flags, body, &d.data); err != nil {
			return nil, fmt.Errorf("decoding %v: %w", t, err)
		}
		return &d.data, nil
	}
	switch t {
	case TypeCapable, TypeJoin, TypeAddAddr, TypeRemoveAddr:
		body = bytes.Clone(body) // these frames keep slices of their body
	}
	f, err := parseBody(t, flags, body)
	if err != nil {
		return nil, fmt.Errorf("decoding %v: %w", t, err)
	}
	return f, nil
}

// fill makes at least need bytes available at buf[rpos:], reading ahead
// as much as fits.
func (d *Decoder) fill(need int) error {
	for d.wpos-d.rpos < need {
		if d.rerr != nil {
			err := d.rerr
			d.rerr = nil
			return err
		}
		if d.rpos == d.wpos {
			d.rpos, d.wpos = 0, 0
		}
		if d.rpos+need > len(d.buf) {
			if need > len(d.buf) || len(d.buf) < d.bufMax {
				b := make([]byte, max(need, d.bufMax))
				d.wpos = copy(b, d.buf[d.rpos:d.wpos])
				d.buf, d.rpos = b, 0
			} else {
				d.wpos = copy(d.buf, d.buf[d.rpos:d.wpos])
				d.rpos = 0
			}
		}
		n, err := d.r.Read(d.buf[d.wpos:])
		d.wpos += n
		d.rerr = err
	}
	return nil
}

// frameBuffered reports whether a whole frame is already buffered, so
// the next Decode will not block.
func (d *Decoder) frameBuffered() bool {
	if d.buf == nil || d.wpos-d.rpos < HeaderSize {
		return false
	}
	n := int(binary.BigEndian.Uint16(d.buf[d.rpos+2:]))
	return d.wpos-d.rpos >= HeaderSize+n
}

// parseData decodes a DATA body into f; the payload aliases b.
func parseData(flags uint8, b []byte, f *Data) error {
	if flags&^flagFin != 0 {
		return fmt.Errorf("%w: unknown flags %#02x", ErrMalformed, flags)
	}
	if len(b) < 8 {
		return fmt.Errorf("%w: DATA shorter than DSN (body %d bytes)", ErrMalformed, len(b))
	}
	*f = Data{DSN: binary.BigEndian.Uint64(b), Fin: flags&flagFin != 0, Payload: nonEmpty(b[8:])}
	return nil
}

func parseBody(t FrameType, flags uint8, b []byte) (Frame, error) {
	allowed := uint8(0)
	switch t {
	case TypeCapable, TypeJoin, TypeData, TypePrio:
		allowed = 0x01
	}
	if flags&^allowed != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#02x", ErrMalformed, flags)
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: %s (body %d bytes)", ErrMalformed, what, len(b))
	}
	u64 := func() (uint64, error) {
		if len(b) != 8 {
			return 0, bad("want 8-byte body")
		}
		return binary.BigEndian.Uint64(b), nil
	}
	switch t {
	case TypeCapable:
		if len(b) != 9 && len(b) != 9+PSKMACSize {
			return nil, bad("CAPABLE length")
		}
		if b[0] == 0 {
			return nil, bad("version 0")
		}
		return &Capable{Version: b[0], PSKRequired: flags&flagPSKRequired != 0,
			Key: Key(binary.BigEndian.Uint64(b[1:9])), MAC: nonEmpty(b[9:])}, nil
	case TypeJoin:
		if m := len(b) - 9; m != 0 && m != JoinSynAckMACSize && m != JoinAckMACSize {
			return nil, bad("JOIN length")
		}
		return &Join{Token: binary.BigEndian.Uint32(b), Nonce: binary.BigEndian.Uint32(b[4:]),
			AddrID: b[8], Backup: flags&flagBackup != 0, MAC: nonEmpty(b[9:])}, nil
	case TypeData:
		f := new(Data)
		return f, parseData(flags, b, f)
	case TypeDataAck:
		v, err := u64()
		return &DataAck{Ack: v}, err
	case TypeAddAddr:
		if len(b) < 2 {
			return nil, bad("ADD_ADDR too short")
		}
		var alen int
		switch b[1] {
		case 4:
			alen = 4
		case 6:
			alen = 16
		default:
			return nil, bad(fmt.Sprintf("address family %d", b[1]))
		}
		if m := len(b) - 2 - alen - 2; m != 0 && m != AddAddrMACSize {
			return nil, bad("ADD_ADDR length")
		}
		addr, _ := netip.AddrFromSlice(b[2 : 2+alen])
		rest := b[2+alen:]
		return &AddAddr{ID: b[0], Addr: addr, Port: binary.BigEndian.Uint16(rest), MAC: nonEmpty(rest[2:])}, nil
	case TypeRemoveAddr:
		if len(b) == 0 {
			return nil, bad("REMOVE_ADDR without ids")
		}
		return &RemoveAddr{IDs: b}, nil
	case TypePrio:
		if len(b) != 0 {
			return nil, bad("PRIO has no body")
		}
		return &Prio{Backup: flags&flagBackup != 0}, nil
	case TypeFastClose:
		v, err := u64()
		return &FastClose{Key: Key(v)}, err
	case TypePing:
		v, err := u64()
		return &Ping{Timestamp: v}, err
	case TypePong:
		v, err := u64()
		return &Pong{Timestamp: v}, err
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
}

// nonEmpty maps empty slices to nil so decoded frames compare equal to
// frames built without the optional field.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
