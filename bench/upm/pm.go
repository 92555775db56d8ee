package main

import (
	"errors"
	"fmt"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/genl"
)

// kernelLimit is the in-kernel path manager's subflows and
// add_addr_accepted limit on both sides, enough for the extra subflows
// of either variant.
const kernelLimit = 2

// hosts is the topology with a genl client per namespace.
type hosts struct {
	pair           *nstopo.Pair
	client, server *genl.Client
	// ifindex of the path-2 interfaces.
	clientIf2, serverIf2 int
}

// newHosts opens the genl clients and tunes the client namespace for
// many short connections.
func newHosts(pair *nstopo.Pair) (*hosts, error) {
	h := &hosts{pair: pair}
	var err error
	if h.client, err = genl.Dial(&genl.Config{NetNS: pair.Client.Name}); err != nil {
		return nil, fmt.Errorf("genl in the client namespace: %w", err)
	}
	if h.server, err = genl.Dial(&genl.Config{NetNS: pair.Server.Name}); err != nil {
		_ = h.client.Close()
		return nil, fmt.Errorf("genl in the server namespace: %w", err)
	}
	if !h.client.SupportsUserspacePM() {
		h.close()
		return nil, errors.New("this kernel lacks the userspace path manager commands (5.19+)")
	}
	l2 := pair.Links[1]
	if h.clientIf2, err = pair.Client.LinkIndex(l2.ClientIf); err == nil {
		h.serverIf2, err = pair.Server.LinkIndex(l2.ServerIf)
	}
	if err != nil {
		h.close()
		return nil, err
	}
	// 10000 connections in 10 s, each leaving TIME_WAIT subflows behind:
	// a wide port range and reuse of TIME_WAIT ports for new connections,
	// in this namespace only.
	for _, kv := range [][2]string{
		{"net.ipv4.ip_local_port_range", "1024 65535"},
		{"net.ipv4.tcp_tw_reuse", "1"},
	} {
		if err := pair.Client.Sysctl(kv[0], kv[1]); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

func (h *hosts) close() {
	_ = h.client.Close()
	_ = h.server.Close()
}

// setPM picks the path manager of the namespace's new MPTCP sockets:
// net.mptcp.path_manager (6.15+) or else net.mptcp.pm_type.
func setPM(ns *nstopo.NS, userspace bool) error {
	if nstopo.SysctlExists("net.mptcp.path_manager") {
		v := "kernel"
		if userspace {
			v = "userspace"
		}
		return ns.Sysctl("net.mptcp.path_manager", v)
	}
	v := "0"
	if userspace {
		v = "1"
	}
	return ns.Sysctl("net.mptcp.pm_type", v)
}

// reset gives both namespaces the in-kernel path manager with no
// endpoints and the limits.
func (h *hosts) reset() error {
	lim := uint32(kernelLimit)
	for _, side := range []struct {
		ns *nstopo.NS
		c  *genl.Client
	}{{h.pair.Client, h.client}, {h.pair.Server, h.server}} {
		if err := setPM(side.ns, false); err != nil {
			return err
		}
		if err := side.c.FlushEndpoints(); err != nil {
			return fmt.Errorf("flush endpoints in %s: %w", side.ns.Name, err)
		}
		if err := side.c.SetLimits(genl.LimitsUpdate{Subflows: &lim, AddAddrAccepted: &lim}); err != nil {
			return fmt.Errorf("set limits in %s: %w", side.ns.Name, err)
		}
	}
	return nil
}

// inKernel sets up the reference: a subflow endpoint on the client's
// path-2 address and, with signal, a signal endpoint on the server's.
func (h *hosts) inKernel(signal bool) error {
	if err := h.reset(); err != nil {
		return err
	}
	l2 := h.pair.Links[1]
	if err := h.client.AddEndpoint(genl.Endpoint{Addr: l2.ClientV4, Flags: genl.FlagSubflow, Ifindex: h.clientIf2}); err != nil {
		return fmt.Errorf("client subflow endpoint %s: %w", l2.ClientV4, err)
	}
	if signal {
		if err := h.server.AddEndpoint(genl.Endpoint{Addr: l2.ServerV4, Flags: genl.FlagSignal, Ifindex: h.serverIf2}); err != nil {
			return fmt.Errorf("server signal endpoint %s: %w", l2.ServerV4, err)
		}
	}
	return nil
}

// userspace hands the client (and with signal the server) to the
// userspace path manager; the server otherwise keeps the in-kernel one,
// which accepts the joins up to its limit.
func (h *hosts) userspace(signal bool) error {
	if err := h.reset(); err != nil {
		return err
	}
	if err := setPM(h.pair.Client, true); err != nil {
		return err
	}
	if signal {
		return setPM(h.pair.Server, true)
	}
	return nil
}
