//go:build !linux

package proxy

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst needs Linux conntrack; elsewhere transparent mode always
// uses the default target.
func originalDst(*net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("proxy: transparent mode needs Linux (SO_ORIGINAL_DST)")
}
