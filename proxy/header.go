package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// The stream header, written by the client before any application byte:
//
//	magic "MP" (2) | version u8 | kind u8 | length u8 | body (length bytes)
//
// kind 0 (default target) has no body; kinds 4 and 6 carry an IPv4 or
// IPv6 destination as address | port u16, big-endian. The length is
// redundant with the kind on purpose: a reader can bound and check it
// before reading, and a future version can add kinds a v1 reader skips
// cleanly by refusing them.
const (
	headerMagic0  = 'M'
	headerMagic1  = 'P'
	headerVersion = 1
	// headerFixed is the part before the body.
	headerFixed = 5
	// maxHeaderBody bounds what a server reads before knowing the
	// destination.
	maxHeaderBody = 18
	// MaxHeaderSize is the largest stream header.
	MaxHeaderSize = headerFixed + maxHeaderBody
)

// Kinds of destination in the stream header.
const (
	kindDefault = 0
	kindIPv4    = 4
	kindIPv6    = 6
)

// ErrBadHeader reports a stream header that cannot be parsed; the server
// refuses such streams.
var ErrBadHeader = errors.New("proxy: bad stream header")

// appendHeader appends the header for dst; an invalid dst asks for the
// server's default target.
func appendHeader(b []byte, dst netip.AddrPort) []byte {
	if !dst.IsValid() {
		return append(b, headerMagic0, headerMagic1, headerVersion, kindDefault, 0)
	}
	a := dst.Addr().Unmap()
	kind := byte(kindIPv4)
	if a.Is6() {
		kind = kindIPv6
	}
	raw := a.AsSlice()
	b = append(b, headerMagic0, headerMagic1, headerVersion, kind, byte(len(raw)+2))
	b = append(b, raw...)
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// readHeader reads one header from r. It returns the zero AddrPort for the
// default target. It never reads more than MaxHeaderSize bytes.
func readHeader(r io.Reader) (netip.AddrPort, error) {
	var fixed [headerFixed]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: reading %d header bytes: %w", ErrBadHeader, headerFixed, err)
	}
	if fixed[0] != headerMagic0 || fixed[1] != headerMagic1 {
		return netip.AddrPort{}, fmt.Errorf("%w: magic %#x, want \"MP\" (is the peer an mptcpd-go proxy client?)", ErrBadHeader, fixed[:2])
	}
	if fixed[2] != headerVersion {
		return netip.AddrPort{}, fmt.Errorf("%w: version %d, this server speaks %d (upgrade the older side)", ErrBadHeader, fixed[2], headerVersion)
	}
	kind, n := fixed[3], int(fixed[4])
	w, ok := bodyLen(kind)
	switch {
	case !ok:
		return netip.AddrPort{}, fmt.Errorf("%w: unknown destination kind %d", ErrBadHeader, kind)
	case n != w:
		return netip.AddrPort{}, fmt.Errorf("%w: kind %d with %d body bytes, want %d", ErrBadHeader, kind, n, w)
	case kind == kindDefault:
		return netip.AddrPort{}, nil
	}
	var body [maxHeaderBody]byte
	if _, err := io.ReadFull(r, body[:n]); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: reading destination: %w", ErrBadHeader, err)
	}
	a, _ := netip.AddrFromSlice(body[:n-2])
	// An IPv4-mapped IPv6 address is checked (and dialled) as IPv4, or
	// ::ffff:0.0.0.0 would get past the unspecified check.
	a = a.Unmap()
	port := binary.BigEndian.Uint16(body[n-2 : n])
	if port == 0 || a.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%w: destination %v is not connectable", ErrBadHeader, netip.AddrPortFrom(a, port))
	}
	return netip.AddrPortFrom(a, port), nil
}

// bodyLen is the body length of a destination kind.
func bodyLen(kind byte) (int, bool) {
	switch kind {
	case kindDefault:
		return 0, true
	case kindIPv4:
		return 4 + 2, true
	case kindIPv6:
		return 16 + 2, true
	}
	return 0, false
}
