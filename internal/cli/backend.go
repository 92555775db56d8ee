package cli

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Backend is what the commands need from the kernel's MPTCP path manager.
// The methods are *genl.Client's, which documents them; Subscribe differs
// only in returning an interface. NewGenlBackend adapts a client; tests use
// a fake.
type Backend interface {
	AddEndpoint(ep genl.Endpoint) error
	DeleteEndpoint(id uint8) error
	DeleteEndpointAddr(id uint8, addr netip.Addr) error
	Endpoint(id uint8) (genl.Endpoint, error)
	Endpoints() ([]genl.Endpoint, error)
	FlushEndpoints() error
	SetEndpointFlags(ref genl.Endpoint, flags genl.Flags) error
	Limits() (genl.Limits, error)
	SetLimits(u genl.LimitsUpdate) error

	SupportsUserspacePM() bool
	Announce(token uint32, local genl.Endpoint) error
	Remove(token uint32, id uint8) error
	CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error
	DestroySubflow(token uint32, local, remote netip.AddrPort) error
	SetSubflowFlags(token uint32, local genl.Endpoint, remote netip.AddrPort, flags genl.Flags) error
	ConnEndpoint(token uint32, id uint8) (genl.Endpoint, error)
	ConnEndpoints(token uint32) ([]genl.Endpoint, error)

	// Subscribe joins the event group; readBuffer 0 keeps the default
	// socket receive buffer.
	Subscribe(readBuffer int) (EventSource, error)
	Close() error
}

// EventSource yields path manager events until it is closed.
type EventSource interface {
	// Next blocks for the next event. After Close it returns an error.
	Next() (genl.Event, error)
	Close() error
}

// Links resolves interface names and indexes in the target namespace.
type Links interface {
	// IndexByName returns the index of the interface (or alternative
	// name) name, or 0 when there is none.
	IndexByName(name string) int
	// NameByIndex returns the interface's name, false when there is none.
	NameByIndex(index int) (string, bool)
	Close() error
}

// genlBackend adapts *genl.Client to Backend.
type genlBackend struct{ *genl.Client }

// NewGenlBackend wraps an open genl client.
func NewGenlBackend(c *genl.Client) Backend { return genlBackend{c} }

func (b genlBackend) Subscribe(readBuffer int) (EventSource, error) {
	var opts *genl.SubscribeOptions
	if readBuffer > 0 {
		opts = &genl.SubscribeOptions{ReadBuffer: readBuffer}
	}
	s, err := b.Client.Subscribe(opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// DialGenl opens the kernel backend in the named namespace ("" for the
// process's own): a namespace name under /run/netns or a path.
func DialGenl(ns string) (Backend, error) {
	c, err := genl.Dial(&genl.Config{NetNS: ns})
	if err != nil {
		return nil, err
	}
	return genlBackend{c}, nil
}

// netlinkLinks resolves interfaces with an rtnetlink socket opened in the
// target namespace; the process's namespace is left alone.
type netlinkLinks struct{ h *netlink.Handle }

// OpenLinks opens the interface resolver for the namespace ns ("" for the
// process's own), named like DialGenl's.
func OpenLinks(ns string) (Links, error) {
	target := netns.None()
	if ns != "" {
		var err error
		if strings.ContainsRune(ns, '/') {
			target, err = netns.GetFromPath(ns)
		} else {
			target, err = netns.GetFromName(ns)
		}
		if err != nil {
			return nil, fmt.Errorf("open network namespace %q to resolve interfaces: %w", ns, err)
		}
		defer target.Close()
	}
	h, err := netlink.NewHandleAt(target, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket to resolve interfaces: %w", err)
	}
	return netlinkLinks{h}, nil
}

func (l netlinkLinks) IndexByName(name string) int {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return 0
	}
	return link.Attrs().Index
}

func (l netlinkLinks) NameByIndex(index int) (string, bool) {
	link, err := l.h.LinkByIndex(index)
	if err != nil {
		return "", false
	}
	return link.Attrs().Name, true
}

func (l netlinkLinks) Close() error {
	l.h.Close()
	return nil
}
