package proxy

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// ip6tSoOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/
// ip6_tables.h, which x/sys/unix does not export.
const ip6tSoOriginalDst = 80

// originalDst returns the destination a connection had before an
// nftables (or iptables) redirect/DNAT rewrote it, from conntrack.
func originalDst(tc *net.TCPConn) (netip.AddrPort, error) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	v6 := false
	if la, ok := tc.LocalAddr().(*net.TCPAddr); ok {
		v6 = la.AddrPort().Addr().Is6() && !la.AddrPort().Addr().Is4In6()
	}
	ap, err := origDstFamily(rc, v6)
	if err != nil {
		// A dual-stack socket may carry either family: try the other.
		if ap2, err2 := origDstFamily(rc, !v6); err2 == nil {
			return ap2, nil
		}
		return netip.AddrPort{}, fmt.Errorf("proxy: reading SO_ORIGINAL_DST (is the connection redirected by nftables, with conntrack?): %w", err)
	}
	return ap, nil
}

// origDstFamily asks conntrack for the IPv6 or the IPv4 original
// destination.
func origDstFamily(rc syscall.RawConn, v6 bool) (netip.AddrPort, error) {
	var ap netip.AddrPort
	var serr error
	err := rc.Control(func(fd uintptr) {
		if v6 {
			// IPv6MTUInfo starts with a sockaddr_in6, exactly what the
			// kernel copies out.
			var mi *unix.IPv6MTUInfo
			mi, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, ip6tSoOriginalDst)
			if serr == nil {
				a := netip.AddrFrom16(mi.Addr.Addr)
				// Port holds the network-order bytes as the kernel wrote
				// them; recover those bytes first.
				var pb [2]byte
				binary.NativeEndian.PutUint16(pb[:], mi.Addr.Port)
				port := binary.BigEndian.Uint16(pb[:])
				ap = netip.AddrPortFrom(a, port)
			}
			return
		}
		// IPv6Mreq's 20 bytes hold the 16-byte sockaddr_in the kernel
		// copies out: family u16, port u16 (network order), address.
		var mr *unix.IPv6Mreq
		mr, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
		if serr == nil {
			b := mr.Multiaddr
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:4]))
		}
	})
	if err == nil {
		err = serr
	}
	return ap, err
}
