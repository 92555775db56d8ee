// Package pcap decodes Multipath TCP (RFC 8684, and RFC 6824 version 0
// for MP_CAPABLE) from packet capture files and summarises the MPTCP
// connections found in them.
//
// The package is split in three layers: DecodeOption turns the raw bytes
// of one TCP option of kind 30 into a typed Option; Reader streams TCP
// segments out of pcap and pcapng files; Analyzer consumes those segments
// one at a time and builds a per-connection Summary and, when asked with
// HandleEvents, a timeline of Events (their JSON field names are listed on
// Event). Live capture is in the capture subpackage.
package pcap

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// OptionKind is the TCP option kind assigned to Multipath TCP.
const OptionKind = 30

// Error is the type of the sentinel errors returned by this package. It is
// a string type so that the sentinels can be constants; compare with
// errors.Is.
type Error string

// Error implements the error interface.
func (e Error) Error() string { return string(e) }

// Sentinel errors wrapped by DecodeOption and the TCP option walker.
const (
	// ErrTruncated reports that fewer bytes were available than the
	// option's length field or fixed layout requires.
	ErrTruncated Error = "truncated option"
	// ErrBadLength reports a length field that is not valid for the
	// option's subtype, version or flags.
	ErrBadLength Error = "invalid option length"
	// ErrNotMPTCP reports an option whose kind is not OptionKind.
	ErrNotMPTCP Error = "not an MPTCP option"
	// ErrUnknownSubtype reports an MPTCP subtype this package does not
	// know how to decode (including MP_EXPERIMENTAL).
	ErrUnknownSubtype Error = "unknown MPTCP subtype"
	// ErrUnsupportedVersion reports an MP_CAPABLE version other than 0 or 1.
	ErrUnsupportedVersion Error = "unsupported MP_CAPABLE version"
)

// Subtype is the 4-bit MPTCP option subtype.
type Subtype uint8

// MPTCP option subtypes (RFC 8684 §7.2).
const (
	SubtypeMPCapable   Subtype = 0x0
	SubtypeMPJoin      Subtype = 0x1
	SubtypeDSS         Subtype = 0x2
	SubtypeAddAddr     Subtype = 0x3
	SubtypeRemoveAddr  Subtype = 0x4
	SubtypeMPPrio      Subtype = 0x5
	SubtypeMPFail      Subtype = 0x6
	SubtypeMPFastclose Subtype = 0x7
	SubtypeMPTCPRst    Subtype = 0x8
	// SubtypeExperimental is reserved for private use; it is recognised
	// by String but DecodeOption reports it as ErrUnknownSubtype.
	SubtypeExperimental Subtype = 0xf
)

// String returns the RFC name of the subtype.
func (s Subtype) String() string {
	switch s {
	case SubtypeMPCapable:
		return "MP_CAPABLE"
	case SubtypeMPJoin:
		return "MP_JOIN"
	case SubtypeDSS:
		return "DSS"
	case SubtypeAddAddr:
		return "ADD_ADDR"
	case SubtypeRemoveAddr:
		return "REMOVE_ADDR"
	case SubtypeMPPrio:
		return "MP_PRIO"
	case SubtypeMPFail:
		return "MP_FAIL"
	case SubtypeMPFastclose:
		return "MP_FASTCLOSE"
	case SubtypeMPTCPRst:
		return "MP_TCPRST"
	case SubtypeExperimental:
		return "MP_EXPERIMENTAL"
	}
	return fmt.Sprintf("subtype(%d)", uint8(s))
}

// Option is one decoded MPTCP option. The concrete type is a pointer to
// one of MPCapable, MPJoin, DSS, AddAddr, RemoveAddr, MPPrio, MPFail,
// MPFastclose or MPTCPRst.
type Option interface {
	// Subtype reports which MPTCP option this is.
	Subtype() Subtype
}

// MP_CAPABLE flag bits (RFC 8684 §3.1), in the fourth byte of the option.
const (
	CapableFlagA = 0x80 // checksum required
	CapableFlagB = 0x40 // extensibility
	CapableFlagC = 0x20 // do not attempt to connect to the source address
	CapableFlagH = 0x01 // HMAC-SHA256 (v1) / HMAC-SHA1 (v0)
)

// MPCapable is the MP_CAPABLE option. Which keys are present depends on
// the option length: 4 (v1 SYN), 12 (sender key: v1 SYN/ACK, v0 SYN and
// SYN/ACK), 20 (both keys: third ACK), 22 or 24 (v1 ACK carrying data,
// with the data-level length and, for 24, the DSS checksum).
type MPCapable struct {
	Version uint8
	// Flags is the raw flag byte; the named booleans below decode it.
	Flags          uint8
	Checksum       bool // flag A: DSS checksums requested
	Extensibility  bool // flag B
	NoSrcAddr      bool // flag C
	HMACSHA256     bool // flag H
	SenderKey      uint64
	HasSenderKey   bool
	ReceiverKey    uint64
	HasReceiverKey bool
	DataLen        uint16
	HasDataLen     bool
	DataChecksum   uint16
	HasChecksum    bool
}

// Subtype implements Option.
func (*MPCapable) Subtype() Subtype { return SubtypeMPCapable }

// JoinForm tells which handshake packet an MP_JOIN belongs to, which the
// option length alone determines.
type JoinForm uint8

// MP_JOIN forms.
const (
	JoinSYN    JoinForm = iota + 1 // length 12: token and nonce
	JoinSYNACK                     // length 16: truncated HMAC and nonce
	JoinACK                        // length 24: 160-bit HMAC
)

// String names the form.
func (f JoinForm) String() string {
	switch f {
	case JoinSYN:
		return "SYN"
	case JoinSYNACK:
		return "SYN/ACK"
	case JoinACK:
		return "ACK"
	}
	return fmt.Sprintf("JoinForm(%d)", uint8(f))
}

// MPJoin is the MP_JOIN option in any of its three forms. Fields not
// carried by the form are zero.
type MPJoin struct {
	Form   JoinForm
	Backup bool  // SYN and SYN/ACK only
	AddrID uint8 // SYN and SYN/ACK only
	Token  uint32
	Nonce  uint32
	// TruncatedHMAC is the leftmost 64 bits of the responder's HMAC
	// (SYN/ACK form).
	TruncatedHMAC uint64
	// HMAC is the leftmost 160 bits of the initiator's HMAC (ACK form).
	HMAC []byte
}

// Subtype implements Option.
func (*MPJoin) Subtype() Subtype { return SubtypeMPJoin }

// DSS flag bits (RFC 8684 §3.3), in the fourth byte of the option.
const (
	DSSFlagDataFIN  = 0x10 // F
	DSSFlagDSN8     = 0x08 // m: DSN is 8 octets
	DSSFlagMapping  = 0x04 // M: DSN, SSN, data-level length (and checksum) present
	DSSFlagDataACK8 = 0x02 // a: data ACK is 8 octets
	DSSFlagDataACK  = 0x01 // A: data ACK present
)

// DSS is the Data Sequence Signal option.
type DSS struct {
	Flags      uint8
	DataFIN    bool
	HasDataACK bool
	DataACK64  bool
	DataACK    uint64
	HasMapping bool
	DSN64      bool
	DSN        uint64
	// SubflowSeq is relative to the subflow's initial sequence number.
	SubflowSeq uint32
	DataLen    uint16
	// HasChecksum records whether the option carried the 2-byte
	// checksum; whether one was expected depends on the connection.
	HasChecksum bool
	Checksum    uint16
}

// Subtype implements Option.
func (*DSS) Subtype() Subtype { return SubtypeDSS }

// AddAddr is the ADD_ADDR option.
type AddAddr struct {
	Echo    bool
	AddrID  uint8
	Addr    netip.Addr
	HasPort bool
	Port    uint16
	// HMAC is the truncated HMAC, present only when Echo is false.
	HasHMAC bool
	HMAC    uint64
}

// Subtype implements Option.
func (*AddAddr) Subtype() Subtype { return SubtypeAddAddr }

// RemoveAddr is the REMOVE_ADDR option.
type RemoveAddr struct {
	AddrIDs []uint8
}

// Subtype implements Option.
func (*RemoveAddr) Subtype() Subtype { return SubtypeRemoveAddr }

// MPPrio is the MP_PRIO option. RFC 6824 allowed an address ID; RFC 8684
// dropped it, so it is optional here.
type MPPrio struct {
	Backup    bool
	HasAddrID bool
	AddrID    uint8
}

// Subtype implements Option.
func (*MPPrio) Subtype() Subtype { return SubtypeMPPrio }

// MPFail is the MP_FAIL option.
type MPFail struct {
	DSN uint64
}

// Subtype implements Option.
func (*MPFail) Subtype() Subtype { return SubtypeMPFail }

// MPFastclose is the MP_FASTCLOSE option.
type MPFastclose struct {
	ReceiverKey uint64
}

// Subtype implements Option.
func (*MPFastclose) Subtype() Subtype { return SubtypeMPFastclose }

// MP_TCPRST flag bits (RFC 8684 §3.6), in the low nibble of the third byte.
const (
	RstFlagU = 0x08
	RstFlagV = 0x04
	RstFlagW = 0x02
	RstFlagT = 0x01 // transient error: the subflow may be retried
)

// ResetReason is the MP_TCPRST reason code.
type ResetReason uint8

// Reset reason codes (RFC 8684 §3.6).
const (
	ResetUnspecified           ResetReason = 0x00
	ResetMPTCPError            ResetReason = 0x01
	ResetLackOfResources       ResetReason = 0x02
	ResetAdminProhibited       ResetReason = 0x03
	ResetTooMuchOutstanding    ResetReason = 0x04
	ResetUnacceptablePerf      ResetReason = 0x05
	ResetMiddleboxInterference ResetReason = 0x06
)

// String returns a short human-readable name of the reason.
func (r ResetReason) String() string {
	switch r {
	case ResetUnspecified:
		return "unspecified error"
	case ResetMPTCPError:
		return "MPTCP-specific error"
	case ResetLackOfResources:
		return "lack of resources"
	case ResetAdminProhibited:
		return "administratively prohibited"
	case ResetTooMuchOutstanding:
		return "too much outstanding data"
	case ResetUnacceptablePerf:
		return "unacceptable performance"
	case ResetMiddleboxInterference:
		return "middlebox interference"
	}
	return fmt.Sprintf("reason 0x%02x", uint8(r))
}

// MPTCPRst is the MP_TCPRST option.
type MPTCPRst struct {
	Flags     uint8 // low nibble: U, V, W, T
	Transient bool  // flag T
	Reason    ResetReason
}

// Subtype implements Option.
func (*MPTCPRst) Subtype() Subtype { return SubtypeMPTCPRst }

// DecodeOption decodes exactly one MPTCP option: b must start with the
// kind byte (30) and be exactly as long as the option's length byte says.
// It never panics; malformed input yields an error wrapping one of the
// package's sentinel errors.
func DecodeOption(b []byte) (Option, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("decode MPTCP option: %d bytes, need kind and length: %w", len(b), ErrTruncated)
	}
	if b[0] != OptionKind {
		return nil, fmt.Errorf("decode MPTCP option: kind %d: %w", b[0], ErrNotMPTCP)
	}
	n := int(b[1])
	if n < 3 {
		return nil, fmt.Errorf("decode MPTCP option: length %d too short for a subtype: %w", n, ErrBadLength)
	}
	if len(b) < n {
		return nil, fmt.Errorf("decode MPTCP option: length field %d but %d bytes: %w", n, len(b), ErrTruncated)
	}
	if len(b) > n {
		return nil, fmt.Errorf("decode MPTCP option: %d trailing bytes after length %d: %w", len(b)-n, n, ErrBadLength)
	}
	st := Subtype(b[2] >> 4)
	var (
		o   Option
		err error
	)
	switch st {
	case SubtypeMPCapable:
		o, err = decodeCapable(b)
	case SubtypeMPJoin:
		o, err = decodeJoin(b)
	case SubtypeDSS:
		o, err = decodeDSS(b)
	case SubtypeAddAddr:
		o, err = decodeAddAddr(b)
	case SubtypeRemoveAddr:
		o, err = decodeRemoveAddr(b)
	case SubtypeMPPrio:
		o, err = decodePrio(b)
	case SubtypeMPFail:
		o, err = decodeFail(b)
	case SubtypeMPFastclose:
		o, err = decodeFastclose(b)
	case SubtypeMPTCPRst:
		o, err = decodeRst(b)
	default:
		return nil, fmt.Errorf("decode MPTCP option: %v: %w", st, ErrUnknownSubtype)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %v: %w", st, err)
	}
	return o, nil
}

func badLen(n int, why string) error {
	return fmt.Errorf("length %d %s: %w", n, why, ErrBadLength)
}

func decodeCapable(b []byte) (Option, error) {
	n := len(b)
	if n < 4 {
		return nil, fmt.Errorf("length %d, flags byte missing: %w", n, ErrTruncated)
	}
	c := &MPCapable{Version: b[2] & 0x0f, Flags: b[3]}
	c.Checksum = c.Flags&CapableFlagA != 0
	c.Extensibility = c.Flags&CapableFlagB != 0
	c.NoSrcAddr = c.Flags&CapableFlagC != 0
	c.HMACSHA256 = c.Flags&CapableFlagH != 0
	switch c.Version {
	case 0:
		// RFC 6824 always carries at least the sender key.
		if n != 12 && n != 20 {
			return nil, badLen(n, "for version 0 (want 12 or 20)")
		}
	case 1:
		if n != 4 && n != 12 && n != 20 && n != 22 && n != 24 {
			return nil, badLen(n, "for version 1 (want 4, 12, 20, 22 or 24)")
		}
	default:
		return nil, fmt.Errorf("version %d: %w", c.Version, ErrUnsupportedVersion)
	}
	if n >= 12 {
		c.SenderKey, c.HasSenderKey = binary.BigEndian.Uint64(b[4:12]), true
	}
	if n >= 20 {
		c.ReceiverKey, c.HasReceiverKey = binary.BigEndian.Uint64(b[12:20]), true
	}
	if n >= 22 {
		c.DataLen, c.HasDataLen = binary.BigEndian.Uint16(b[20:22]), true
	}
	if n == 24 {
		c.DataChecksum, c.HasChecksum = binary.BigEndian.Uint16(b[22:24]), true
	}
	return c, nil
}

func decodeJoin(b []byte) (Option, error) {
	n := len(b)
	j := &MPJoin{}
	switch n {
	case 12:
		j.Form = JoinSYN
		j.Backup = b[2]&0x01 != 0
		j.AddrID = b[3]
		j.Token = binary.BigEndian.Uint32(b[4:8])
		j.Nonce = binary.BigEndian.Uint32(b[8:12])
	case 16:
		j.Form = JoinSYNACK
		j.Backup = b[2]&0x01 != 0
		j.AddrID = b[3]
		j.TruncatedHMAC = binary.BigEndian.Uint64(b[4:12])
		j.Nonce = binary.BigEndian.Uint32(b[12:16])
	case 24:
		j.Form = JoinACK
		j.HMAC = append([]byte(nil), b[4:24]...)
	default:
		return nil, badLen(n, "(want 12, 16 or 24)")
	}
	return j, nil
}

// dssLen returns the option length implied by the DSS flags, without and
// with the optional mapping checksum.
func dssLen(flags uint8) (plain, withCsum int) {
	n := 4
	if flags&DSSFlagDataACK != 0 {
		if flags&DSSFlagDataACK8 != 0 {
			n += 8
		} else {
			n += 4
		}
	}
	if flags&DSSFlagMapping == 0 {
		return n, n
	}
	if flags&DSSFlagDSN8 != 0 {
		n += 8
	} else {
		n += 4
	}
	n += 4 + 2 // subflow sequence number, data-level length
	return n, n + 2
}

func decodeDSS(b []byte) (Option, error) {
	n := len(b)
	if n < 4 {
		return nil, fmt.Errorf("length %d, flags byte missing: %w", n, ErrTruncated)
	}
	f := b[3]
	plain, withCsum := dssLen(f)
	if n != plain && n != withCsum {
		if plain == withCsum {
			return nil, badLen(n, fmt.Sprintf("for flags 0x%02x (want %d)", f, plain))
		}
		return nil, badLen(n, fmt.Sprintf("for flags 0x%02x (want %d or %d)", f, plain, withCsum))
	}
	d := &DSS{}
	fillDSS(d, b)
	return d, nil
}

// fillDSS decodes a DSS option, whose length the caller has checked
// against its flags, into *d, which it overwrites.
func fillDSS(d *DSS, b []byte) {
	f := b[3]
	*d = DSS{Flags: f, DataFIN: f&DSSFlagDataFIN != 0}
	p := b[4:]
	if f&DSSFlagDataACK != 0 {
		d.HasDataACK = true
		if f&DSSFlagDataACK8 != 0 {
			d.DataACK64 = true
			d.DataACK = binary.BigEndian.Uint64(p)
			p = p[8:]
		} else {
			d.DataACK = uint64(binary.BigEndian.Uint32(p))
			p = p[4:]
		}
	}
	if f&DSSFlagMapping != 0 {
		d.HasMapping = true
		if f&DSSFlagDSN8 != 0 {
			d.DSN64 = true
			d.DSN = binary.BigEndian.Uint64(p)
			p = p[8:]
		} else {
			d.DSN = uint64(binary.BigEndian.Uint32(p))
			p = p[4:]
		}
		d.SubflowSeq = binary.BigEndian.Uint32(p)
		d.DataLen = binary.BigEndian.Uint16(p[4:])
		p = p[6:]
		if len(p) == 2 {
			d.HasChecksum = true
			d.Checksum = binary.BigEndian.Uint16(p)
		}
	}
}

// decodeDSSInto is DecodeOption for a DSS option into caller-owned
// memory, so the analyzer's per-packet fast path does not allocate. b
// must start with the kind byte and be exactly the option's length.
func decodeDSSInto(d *DSS, b []byte) bool {
	if len(b) < 4 || b[0] != OptionKind || int(b[1]) != len(b) || Subtype(b[2]>>4) != SubtypeDSS {
		return false
	}
	plain, withCsum := dssLen(b[3])
	if len(b) != plain && len(b) != withCsum {
		return false
	}
	fillDSS(d, b)
	return true
}

func decodeAddAddr(b []byte) (Option, error) {
	n := len(b)
	if n < 4 {
		return nil, fmt.Errorf("length %d, address ID missing: %w", n, ErrTruncated)
	}
	a := &AddAddr{Echo: b[2]&0x01 != 0, AddrID: b[3]}
	body := n - 4
	if !a.Echo {
		body -= 8
	}
	var alen int
	switch body {
	case 4, 6:
		alen = 4
	case 16, 18:
		alen = 16
	default:
		if a.Echo {
			return nil, badLen(n, "for echo (want 8, 10, 20 or 22)")
		}
		return nil, badLen(n, "(want 16, 18, 28 or 30)")
	}
	a.Addr, _ = netip.AddrFromSlice(b[4 : 4+alen])
	p := b[4+alen:]
	if body > alen {
		a.HasPort = true
		a.Port = binary.BigEndian.Uint16(p)
		p = p[2:]
	}
	if !a.Echo {
		a.HasHMAC = true
		a.HMAC = binary.BigEndian.Uint64(p)
	}
	return a, nil
}

func decodeRemoveAddr(b []byte) (Option, error) {
	if len(b) < 4 {
		return nil, badLen(len(b), "(want at least 4: one address ID)")
	}
	return &RemoveAddr{AddrIDs: append([]uint8(nil), b[3:]...)}, nil
}

func decodePrio(b []byte) (Option, error) {
	p := &MPPrio{Backup: b[2]&0x01 != 0}
	switch len(b) {
	case 3:
	case 4:
		p.HasAddrID, p.AddrID = true, b[3]
	default:
		return nil, badLen(len(b), "(want 3 or 4)")
	}
	return p, nil
}

func decodeFail(b []byte) (Option, error) {
	if len(b) != 12 {
		return nil, badLen(len(b), "(want 12)")
	}
	return &MPFail{DSN: binary.BigEndian.Uint64(b[4:12])}, nil
}

func decodeFastclose(b []byte) (Option, error) {
	if len(b) != 12 {
		return nil, badLen(len(b), "(want 12)")
	}
	return &MPFastclose{ReceiverKey: binary.BigEndian.Uint64(b[4:12])}, nil
}

func decodeRst(b []byte) (Option, error) {
	if len(b) != 4 {
		return nil, badLen(len(b), "(want 4)")
	}
	f := b[2] & 0x0f
	return &MPTCPRst{Flags: f, Transient: f&RstFlagT != 0, Reason: ResetReason(b[3])}, nil
}

// MPTCPOptions walks the options area of a TCP header (the bytes after
// the fixed 20-byte header) and returns the raw bytes of every option of
// kind 30, each sliced to its own length and sharing memory with opts.
// A malformed option list (a length byte of 0 or 1, or an option running
// past the end) is reported as an error together with the MPTCP options
// found before it.
func MPTCPOptions(opts []byte) ([][]byte, error) {
	return appendMPTCPOptions(nil, opts)
}

// appendMPTCPOptions is MPTCPOptions appending to out, so the analyzer
// can reuse one slice for every packet.
func appendMPTCPOptions(out [][]byte, opts []byte) ([][]byte, error) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of option list
			return out, nil
		case 1: // no-operation padding
			i++
			continue
		}
		if i+1 >= len(opts) {
			return out, fmt.Errorf("TCP option kind %d at offset %d: length byte missing: %w", opts[i], i, ErrTruncated)
		}
		l := int(opts[i+1])
		if l < 2 {
			return out, fmt.Errorf("TCP option kind %d at offset %d: length %d: %w", opts[i], i, l, ErrBadLength)
		}
		if i+l > len(opts) {
			return out, fmt.Errorf("TCP option kind %d at offset %d: length %d exceeds %d remaining bytes: %w", opts[i], i, l, len(opts)-i, ErrTruncated)
		}
		if opts[i] == OptionKind {
			out = append(out, opts[i:i+l:i+l])
		}
		i += l
	}
	return out, nil
}
