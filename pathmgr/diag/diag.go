package diag

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Config selects the network namespace a Conn works in. The zero value
// means the calling thread's namespace.
type Config struct {
	// NetNS names a namespace under /run/netns/, or is a path to a
	// namespace file (e.g. /proc/PID/ns/net).
	NetNS string
	// NetNSFD is an open namespace file descriptor; it wins over NetNS.
	// The caller keeps it open.
	NetNSFD int
}

// Conn is a socket diagnostics connection. Its methods serialize on the
// socket; it is safe for concurrent use. Close it when done.
type Conn struct {
	c *netlink.Conn
}

// Dial opens a sock_diag socket in the namespace cfg selects (nil: the
// caller's).
func Dial(cfg *Config) (*Conn, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	ncfg := &netlink.Config{}
	switch {
	case cfg.NetNSFD > 0:
		ncfg.NetNS = cfg.NetNSFD
	case cfg.NetNS != "":
		path := cfg.NetNS
		if !strings.ContainsRune(path, '/') {
			path = filepath.Join("/run/netns", path)
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open network namespace %q: %w", cfg.NetNS, &os.PathError{Op: "open", Path: path, Err: err})
		}
		// The socket keeps the namespace alive; the fd is only needed
		// while it is created.
		defer unix.Close(fd)
		ncfg.NetNS = fd
	}
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, ncfg)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close releases the socket.
func (c *Conn) Close() error { return c.c.Close() }

// allStates asks for sockets in every state.
const allStates = ^uint32(0)

// subflowStates leaves out listeners and the mini sockets (TIME-WAIT,
// NEW-SYN-RECV), which carry no subflow information.
const subflowStates = allStates &^ (1<<StateListen | 1<<StateTimeWait | 1<<StateNewSynRecv)

// Connections lists the MPTCP sockets of both address families, listeners
// included (their Info has token 0).
func (c *Conn) Connections() ([]Connection, error) {
	var conns []Connection
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := c.dump(fam, unix.IPPROTO_MPTCP, allStates)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			conn, err := decodeConnection(m.Data)
			if err != nil {
				return nil, fmt.Errorf("list MPTCP sockets: %w", err)
			}
			conns = append(conns, conn)
		}
	}
	return conns, nil
}

// Subflows lists the TCP sockets of both address families that are MPTCP
// subflows. On a busy host this walks every TCP socket.
func (c *Conn) Subflows() ([]Subflow, error) {
	var sfs []Subflow
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		msgs, err := c.dump(fam, unix.IPPROTO_TCP, subflowStates)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			sf, ok, err := decodeSubflow(m.Data)
			if err != nil {
				return nil, fmt.Errorf("list MPTCP subflows: %w", err)
			}
			if ok {
				sfs = append(sfs, sf)
			}
		}
	}
	return sfs, nil
}

// dump runs one SOCK_DIAG_BY_FAMILY dump.
func (c *Conn) dump(family uint8, protocol uint32, states uint32) ([]netlink.Message, error) {
	msgs, err := c.c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   encodeRequest(family, protocol, states),
	})
	if err != nil {
		what := "TCP"
		if protocol == unix.IPPROTO_MPTCP {
			what = "MPTCP"
		}
		fam := "IPv4"
		if family == unix.AF_INET6 {
			fam = "IPv6"
		}
		return nil, fmt.Errorf("sock_diag dump of %s %s sockets: %w", fam, what, err)
	}
	return msgs, nil
}
