package harness

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// ListenMPTCP returns an MPTCP listener on addr ("ip:port" or ":port", IP
// literals only; port 0 picks a free port, which the listener's Addr method
// reports) inside the namespace.
// It fails the test on error, including when the kernel silently gave a
// plain TCP socket (Go falls back to TCP when MPTCP sockets cannot be
// created). The listener is closed in t.Cleanup.
func (n *NS) ListenMPTCP(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := n.listenMPTCP(addr)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// DialMPTCP connects from inside the namespace to raddr ("ip:port") with an
// MPTCP socket, binding to laddr first unless laddr is "" ("ip" or
// "ip:port"). Addresses must be IP literals, so nothing is ever resolved
// through DNS. Errors are returned rather than fatal so tests can check
// that a connection fails. The socket is guaranteed to be an MPTCP socket;
// whether MPTCP was negotiated with the peer (or fell back to TCP) is
// reported by (*net.TCPConn).MultipathTCP. The connection is closed in
// t.Cleanup.
func (n *NS) DialMPTCP(ctx context.Context, t testing.TB, laddr, raddr string) (net.Conn, error) {
	t.Helper()
	conn, err := n.dialMPTCP(ctx, laddr, raddr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, nil
}

func (n *NS) listenMPTCP(addr string) (net.Listener, error) {
	tcpAddr, err := literalTCPAddr(addr, true)
	if err != nil {
		return nil, fmt.Errorf("listening on MPTCP %q in netns %s: %w", addr, n.Name, err)
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	var ln net.Listener
	err = n.Do(func() error {
		var err error
		// Background: Listen does not block, and the listener's lifetime is
		// bound to the test via t.Cleanup, not to a context.
		ln, err = lc.Listen(context.Background(), tcpNetwork(tcpAddr), tcpAddr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on MPTCP %s in netns %s: %w", addr, n.Name, err)
	}
	if err := requireMPTCPSocket(ln); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("listening on MPTCP %s in netns %s: %w", addr, n.Name, err)
	}
	return ln, nil
}

func (n *NS) dialMPTCP(ctx context.Context, laddr, raddr string) (net.Conn, error) {
	var d net.Dialer
	d.SetMultipathTCP(true)
	if laddr != "" {
		local, err := literalTCPAddr(laddr, false)
		if err != nil {
			return nil, fmt.Errorf("dialing MPTCP in netns %s: local address: %w", n.Name, err)
		}
		d.LocalAddr = local
	}
	remote, err := literalTCPAddr(raddr, true)
	if err != nil {
		return nil, fmt.Errorf("dialing MPTCP in netns %s: remote address: %w", n.Name, err)
	}
	if remote.IP == nil || remote.Port == 0 {
		return nil, fmt.Errorf("dialing MPTCP in netns %s: remote address %q needs an IP and a port", n.Name, raddr)
	}
	what := "dialing MPTCP to " + raddr
	if laddr != "" {
		what = fmt.Sprintf("dialing MPTCP %s -> %s", laddr, raddr)
	}
	var conn net.Conn
	err = n.Do(func() error {
		var err error
		conn, err = d.DialContext(ctx, "tcp", remote.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s in netns %s: %w", what, n.Name, err)
	}
	if err := requireMPTCPSocket(conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%s in netns %s: %w", what, n.Name, err)
	}
	return conn, nil
}

// requireMPTCPSocket checks SO_PROTOCOL, because Go quietly creates a TCP
// socket when the MPTCP one cannot be created, which would make MPTCP tests
// pass for the wrong reason.
func requireMPTCPSocket(v any) error {
	c, ok := v.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T gives no access to its socket", v)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("getting raw socket: %w", err)
	}
	var proto int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		proto, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); err != nil {
		return fmt.Errorf("accessing raw socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("reading SO_PROTOCOL: %w", serr)
	}
	if proto != unix.IPPROTO_MPTCP {
		return fmt.Errorf("got a socket of protocol %d, not MPTCP (%d): does the kernel allow MPTCP (net.mptcp.enabled)?", proto, unix.IPPROTO_MPTCP)
	}
	return nil
}

// literalTCPAddr parses "ip:port", "[ipv6]:port" or ":port" without any
// name resolution, which could otherwise send DNS queries from a goroutine
// outside the namespace. With needPort false a bare IP is accepted too
// (port 0).
// tcpNetwork picks "tcp4" for IPv4 literals (including 0.0.0.0) so that
// the socket is not dual-stack and peers are not reported as
// IPv4-mapped IPv6 addresses; "tcp" otherwise.
func tcpNetwork(a *net.TCPAddr) string {
	if a.IP != nil && a.IP.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

func literalTCPAddr(s string, needPort bool) (*net.TCPAddr, error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if needPort {
			return nil, fmt.Errorf("parsing %q: %w", s, err)
		}
		host, portStr = s, "0"
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("parsing port of %q: %w", s, err)
	}
	if host == "" {
		return &net.TCPAddr{Port: int(port)}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: only IP literals are allowed: %w", s, err)
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))), nil
}
