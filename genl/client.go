package genl

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"github.com/mptcpd-go/mptcpd-go/genl/internal/nlsock"
	"golang.org/x/sys/unix"
)

// Config selects the network namespace a Client works in. The zero value
// means the calling thread's namespace.
type Config struct {
	// NetNS names a namespace under /run/netns/, or is a path to a
	// namespace file (e.g. /proc/PID/ns/net).
	NetNS string
	// NetNSFD is an open namespace file descriptor; it wins over NetNS.
	NetNSFD int
	// Blocking makes the client and its subscriptions wait in blocking
	// system calls instead of the Go runtime's network poller. A reader
	// then holds an OS thread while it waits, but is woken by the kernel
	// directly: a path manager answers events several times sooner
	// (bench/upm). Closing a subscription wakes its reader at once when
	// the process has CAP_NET_ADMIN, else within a second.
	Blocking bool
}

// Client talks to the kernel's mptcp_pm generic netlink family. It is safe
// for concurrent use. Close it when done.
type Client struct {
	c        *genetlink.Conn
	fam      family
	nsFD     int // the namespace the client is bound to, -1 for the caller's
	ownsFD   bool
	blocking bool
}

// Dial opens a Client in the namespace cfg selects (nil: the caller's).
// The calling thread's namespace is switched only while the socket is
// created. It returns an error matching ErrMPTCPUnavailable when the kernel
// has no mptcp_pm family.
func Dial(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	nsFD, owns, err := openNetNS(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := dialConn(nsFD, cfg.Blocking)
	if err != nil {
		if owns {
			unix.Close(nsFD)
		}
		return nil, fmt.Errorf("open generic netlink socket: %w", err)
	}
	c, err := newClient(conn)
	if err != nil {
		if owns {
			unix.Close(nsFD)
		}
		return nil, err
	}
	c.nsFD, c.ownsFD, c.blocking = nsFD, owns, cfg.Blocking
	return c, nil
}

// dialConn opens a strict generic netlink connection in the namespace
// nsFD (-1: the caller's), on the runtime's poller or blocking.
func dialConn(nsFD int, blocking bool) (*genetlink.Conn, error) {
	if !blocking {
		ncfg := &netlink.Config{Strict: true}
		if nsFD >= 0 {
			ncfg.NetNS = nsFD
		}
		return genetlink.Dial(ncfg)
	}
	s, err := nlsock.Open(nsFD)
	if err != nil {
		return nil, err
	}
	nc := netlink.NewConn(s, s.PID())
	for _, o := range []netlink.ConnOption{netlink.ExtendedAcknowledge, netlink.GetStrictCheck} {
		if err := nc.SetOption(o, true); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return genetlink.NewConn(nc), nil
}

// openNetNS returns the namespace fd to use, or -1 for the caller's.
func openNetNS(cfg *Config) (fd int, owns bool, err error) {
	if cfg.NetNSFD > 0 {
		return cfg.NetNSFD, false, nil
	}
	if cfg.NetNS == "" {
		return -1, false, nil
	}
	path := cfg.NetNS
	if !strings.ContainsRune(path, '/') {
		path = filepath.Join("/run/netns", path)
	}
	fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, fmt.Errorf("open network namespace %q: %w", cfg.NetNS, &os.PathError{Op: "open", Path: path, Err: err})
	}
	return fd, true, nil
}

// newClient wraps an open connection and resolves the family.
func newClient(conn *genetlink.Conn) (*Client, error) {
	f, err := getFamily(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &Client{c: conn, fam: f, nsFD: -1}, nil
}

// Close releases the client's socket.
func (c *Client) Close() error {
	err := c.c.Close()
	if c.ownsFD {
		unix.Close(c.nsFD)
		c.ownsFD = false
	}
	return err
}

// Supports reports whether the running kernel implements cmd, from the
// family's registered operations. The userspace path manager needs
// CmdAnnounce, CmdRemove, CmdSubflowCreate and CmdSubflowDestroy (5.19+).
func (c *Client) Supports(cmd Command) bool { return c.fam.ops[cmd] }

// Commands returns every command the running kernel implements.
func (c *Client) Commands() []Command {
	var cmds []Command
	for cmd := Command(1); cmd != 0; cmd++ {
		if c.fam.ops[cmd] {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// SupportsUserspacePM reports whether the kernel has the userspace path
// manager commands.
func (c *Client) SupportsUserspacePM() bool {
	return c.Supports(CmdAnnounce) && c.Supports(CmdRemove) &&
		c.Supports(CmdSubflowCreate) && c.Supports(CmdSubflowDestroy)
}

// request is one command with its attributes.
type request struct {
	op    string
	cmd   Command
	flags netlink.HeaderFlags
	attrs func(*netlink.AttributeEncoder)
	// replies is set for commands that answer with data (get, dump).
	replies bool
}

// do sends a request and returns the replies' payloads.
func (c *Client) do(r request) ([]genetlink.Message, error) {
	var data []byte
	if r.attrs != nil {
		ae := netlink.NewAttributeEncoder()
		r.attrs(ae)
		b, err := ae.Encode()
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", r.op, err)
		}
		data = b
	}
	msg := genetlink.Message{
		Header: genetlink.Header{Command: uint8(r.cmd), Version: familyVersion},
		Data:   data,
	}
	flags := netlink.Request | r.flags
	if !r.replies {
		// Commands without a reply need an ACK to report success; asking
		// for one on a command with a reply would leave it unread.
		flags |= netlink.Acknowledge
	}
	if !c.Supports(r.cmd) && len(c.fam.ops) > 0 {
		return nil, &Error{Op: r.op, Kind: ErrNotSupported, Errno: unix.EOPNOTSUPP,
			Message: fmt.Sprintf("this kernel lacks the %s command", r.cmd)}
	}
	msgs, err := c.c.Execute(msg, c.fam.id, flags)
	if err != nil {
		return nil, wrapError(r.op, r.cmd, err)
	}
	return msgs, nil
}

// addrNest adds an address nest of type t.
func addrNest(ae *netlink.AttributeEncoder, t uint16, ep Endpoint, o addrOpts) {
	ae.Nested(t, encodeAddr(ep, o))
}

// AddEndpoint adds an endpoint to the in-kernel path manager. ep.ID 0 lets
// the kernel choose the id.
func (c *Client) AddEndpoint(ep Endpoint) error {
	if !ep.Addr.IsValid() {
		return &Error{Op: "add endpoint", Errno: unix.EINVAL, Message: "an address is required"}
	}
	_, err := c.do(request{op: "add endpoint", cmd: CmdAddAddr, attrs: func(ae *netlink.AttributeEncoder) {
		addrNest(ae, attrAddr, ep, addrOpts{})
	}})
	return err
}

// DeleteEndpoint deletes the endpoint with the given id (1..255).
func (c *Client) DeleteEndpoint(id uint8) error {
	_, err := c.do(request{op: fmt.Sprintf("delete endpoint id %d", id), cmd: CmdDelAddr, attrs: func(ae *netlink.AttributeEncoder) {
		addrNest(ae, attrAddr, Endpoint{ID: id}, addrOpts{forceID: true})
	}})
	return err
}

// DeleteEndpointAddr deletes by address: with id 0 the kernel closes the
// subflows of the initial address addr, as "ip mptcp endpoint delete id 0
// ADDR" does.
func (c *Client) DeleteEndpointAddr(id uint8, addr netip.Addr) error {
	_, err := c.do(request{op: fmt.Sprintf("delete endpoint %s", addr), cmd: CmdDelAddr, attrs: func(ae *netlink.AttributeEncoder) {
		addrNest(ae, attrAddr, Endpoint{ID: id, Addr: addr}, addrOpts{forceID: true})
	}})
	return err
}

// Endpoint returns the endpoint with the given id.
func (c *Client) Endpoint(id uint8) (Endpoint, error) {
	op := fmt.Sprintf("get endpoint id %d", id)
	msgs, err := c.do(request{op: op, cmd: CmdGetAddr, replies: true, attrs: func(ae *netlink.AttributeEncoder) {
		addrNest(ae, attrAddr, Endpoint{ID: id}, addrOpts{forceID: true})
	}})
	if err != nil {
		return Endpoint{}, err
	}
	return singleEndpoint(op, msgs)
}

func singleEndpoint(op string, msgs []genetlink.Message) (Endpoint, error) {
	if len(msgs) != 1 {
		return Endpoint{}, fmt.Errorf("%s: got %d replies, want 1", op, len(msgs))
	}
	ep, err := decodeEndpointMessage(msgs[0].Data)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: decode reply: %w", op, err)
	}
	return ep, nil
}

// Endpoints dumps every endpoint of the in-kernel path manager.
func (c *Client) Endpoints() ([]Endpoint, error) {
	msgs, err := c.do(request{op: "dump endpoints", cmd: CmdGetAddr, replies: true, flags: netlink.Dump})
	if err != nil {
		return nil, err
	}
	return decodeEndpoints("dump endpoints", msgs)
}

func decodeEndpoints(op string, msgs []genetlink.Message) ([]Endpoint, error) {
	eps := make([]Endpoint, 0, len(msgs))
	for _, m := range msgs {
		ep, err := decodeEndpointMessage(m.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: decode reply: %w", op, err)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// FlushEndpoints deletes every endpoint.
func (c *Client) FlushEndpoints() error {
	_, err := c.do(request{op: "flush endpoints", cmd: CmdFlushAddrs})
	return err
}

// SetEndpointFlags changes the backup and fullmesh flags of the endpoint
// selected by ref.ID, or, when it is 0, by ref.Addr and ref.Port. Other
// flags in flags are rejected by the kernel.
func (c *Client) SetEndpointFlags(ref Endpoint, flags Flags) error {
	ref.Flags = flags
	ref.Ifindex = 0
	_, err := c.do(request{op: "change endpoint flags", cmd: CmdSetFlags, attrs: func(ae *netlink.AttributeEncoder) {
		addrNest(ae, attrAddr, ref, addrOpts{})
	}})
	return err
}

// Limits returns the in-kernel path manager's limits.
func (c *Client) Limits() (Limits, error) {
	msgs, err := c.do(request{op: "get limits", cmd: CmdGetLimits, replies: true})
	if err != nil {
		return Limits{}, err
	}
	if len(msgs) != 1 {
		return Limits{}, fmt.Errorf("get limits: got %d replies, want 1", len(msgs))
	}
	l, err := decodeLimitsMessage(msgs[0].Data)
	if err != nil {
		return Limits{}, fmt.Errorf("get limits: decode reply: %w", err)
	}
	return l, nil
}

// SetLimits sets the limits that u names, leaving the others unchanged. The
// kernel accepts at most MaxLimit for each.
func (c *Client) SetLimits(u LimitsUpdate) error {
	_, err := c.do(request{op: "set limits", cmd: CmdSetLimits, attrs: func(ae *netlink.AttributeEncoder) {
		if u.AddAddrAccepted != nil {
			ae.Uint32(attrRcvAddAddrs, *u.AddAddrAccepted)
		}
		if u.Subflows != nil {
			ae.Uint32(attrSubflows, *u.Subflows)
		}
	}})
	return err
}

// Announce makes the connection with the given token announce local
// (ADD_ADDR); userspace path manager only. local.ID must be non-zero; the
// signal flag is added.
func (c *Client) Announce(token uint32, local Endpoint) error {
	local.Flags |= FlagSignal
	_, err := c.do(request{op: fmt.Sprintf("announce %s on token %08x", local.Addr, token), cmd: CmdAnnounce, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		addrNest(ae, attrAddr, local, addrOpts{})
	}})
	return err
}

// Remove withdraws the local address id from the connection (REMOVE_ADDR)
// and closes its subflows; userspace path manager only.
func (c *Client) Remove(token uint32, id uint8) error {
	_, err := c.do(request{op: fmt.Sprintf("remove id %d on token %08x", id, token), cmd: CmdRemove, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		ae.Uint8(attrLocID, id)
	}})
	return err
}

// CreateSubflow opens a subflow of the connection from local to remote;
// userspace path manager only. remote needs an address and a port.
func (c *Client) CreateSubflow(token uint32, local Endpoint, remote netip.AddrPort) error {
	_, err := c.do(request{op: fmt.Sprintf("create subflow %s -> %s on token %08x", local.Addr, remote, token), cmd: CmdSubflowCreate, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		addrNest(ae, attrAddr, local, addrOpts{})
		addrNest(ae, attrAddrRemote, Endpoint{Addr: remote.Addr(), Port: remote.Port()}, addrOpts{})
	}})
	return err
}

// DestroySubflow closes the subflow local -> remote of the connection;
// userspace path manager only. Both ends need address and port.
func (c *Client) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	_, err := c.do(request{op: fmt.Sprintf("destroy subflow %s -> %s on token %08x", local, remote, token), cmd: CmdSubflowDestroy, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		addrNest(ae, attrAddr, Endpoint{Addr: local.Addr(), Port: local.Port()}, addrOpts{})
		addrNest(ae, attrAddrRemote, Endpoint{Addr: remote.Addr(), Port: remote.Port()}, addrOpts{})
	}})
	return err
}

// SetSubflowFlags sets the backup flag (the only one the kernel takes) of the
// connection's subflow local -> remote; userspace path manager only. A zero
// remote changes every subflow from local.
func (c *Client) SetSubflowFlags(token uint32, local Endpoint, remote netip.AddrPort, flags Flags) error {
	local.Flags = flags
	_, err := c.do(request{op: fmt.Sprintf("set flags on token %08x", token), cmd: CmdSetFlags, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		addrNest(ae, attrAddr, local, addrOpts{})
		if remote.Addr().IsValid() {
			addrNest(ae, attrAddrRemote, Endpoint{Addr: remote.Addr(), Port: remote.Port()}, addrOpts{})
		}
	}})
	return err
}

// ConnEndpoint returns the local address with the given id of a connection
// managed by the userspace path manager (kernel ≥ 6.7).
func (c *Client) ConnEndpoint(token uint32, id uint8) (Endpoint, error) {
	op := fmt.Sprintf("get address id %d of token %08x", id, token)
	msgs, err := c.do(request{op: op, cmd: CmdGetAddr, replies: true, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
		addrNest(ae, attrAddr, Endpoint{ID: id}, addrOpts{forceID: true})
	}})
	if err != nil {
		return Endpoint{}, err
	}
	return singleEndpoint(op, msgs)
}

// ConnEndpoints dumps the local addresses of a connection managed by the
// userspace path manager (kernel ≥ 6.7).
func (c *Client) ConnEndpoints(token uint32) ([]Endpoint, error) {
	op := fmt.Sprintf("dump addresses of token %08x", token)
	msgs, err := c.do(request{op: op, cmd: CmdGetAddr, replies: true, flags: netlink.Dump, attrs: func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrToken, token)
	}})
	if err != nil {
		return nil, err
	}
	return decodeEndpoints(op, msgs)
}
