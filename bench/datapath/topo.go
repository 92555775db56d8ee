package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/genl"
)

// topology is the two namespaces with two links, set up for the
// kernel MPTCP reference: a subflow endpoint on the client's link-2
// address (bound to its interface) and subflow limits on both sides.
type topology struct {
	pair *nstopo.Pair
}

// newTopology builds the namespaces; on error everything is removed.
func newTopology() (t *topology, err error) {
	pair, err := nstopo.NewPair(2)
	if err != nil {
		return nil, fmt.Errorf("namespaces: %w", err)
	}
	t = &topology{pair: pair}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
			t = nil
		}
	}()
	// Subflow 2 of every variant leaves through link 2 towards the
	// server's link-1 address (bound to the device), so the answers
	// arrive on an interface that is not the route back to their source:
	// no reverse-path filter. ARP answers for any local address by
	// default (arp_ignore 0), which such on-link dials rely on.
	for _, ns := range []*nstopo.NS{pair.Client, pair.Server} {
		for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"} {
			if err := ns.Sysctl(key, "0"); err != nil {
				return nil, err
			}
		}
		for _, l := range pair.Links {
			ifname := l.ClientIf
			if ns == pair.Server {
				ifname = l.ServerIf
			}
			if err := ns.Sysctl("net/ipv4/conf/"+ifname+"/rp_filter", "0"); err != nil {
				return nil, err
			}
		}
		if err := ns.Sysctl("net.mptcp.enabled", "1"); err != nil {
			return nil, err
		}
	}
	if err := t.kernelMPTCP(); err != nil {
		return nil, err
	}
	return t, nil
}

// kernelMPTCP configures the in-kernel path manager: limits 2 on both
// sides, a subflow endpoint for the client's link-2 address.
func (t *topology) kernelMPTCP() error {
	lim := uint32(2)
	for _, ns := range []*nstopo.NS{t.pair.Client, t.pair.Server} {
		c, err := genl.Dial(&genl.Config{NetNS: ns.Name})
		if err != nil {
			return fmt.Errorf("genl in %s: %w", ns.Name, err)
		}
		err = c.SetLimits(genl.LimitsUpdate{Subflows: &lim, AddAddrAccepted: &lim})
		if err == nil && ns == t.pair.Client {
			l2 := t.pair.Links[1]
			var idx int
			if idx, err = ns.LinkIndex(l2.ClientIf); err == nil {
				err = c.AddEndpoint(genl.Endpoint{Addr: l2.ClientV4, Flags: genl.FlagSubflow, Ifindex: idx})
			}
		}
		err = errors.Join(err, c.Close())
		if err != nil {
			return fmt.Errorf("mptcp endpoints in %s: %w", ns.Name, err)
		}
	}
	return nil
}

// shape puts a tbf qdisc on both ends of every link (both directions);
// rate "" removes them.
func (t *topology) shape(ctx context.Context, rate, burst, latency string) error {
	for _, l := range t.pair.Links {
		for _, end := range []struct {
			ns     *nstopo.NS
			ifname string
		}{{t.pair.Client, l.ClientIf}, {t.pair.Server, l.ServerIf}} {
			args := []string{"qdisc", "del", "dev", end.ifname, "root"}
			if rate != "" {
				args = []string{"qdisc", "replace", "dev", end.ifname, "root", "tbf", "rate", rate, "burst", burst, "latency", latency}
			}
			_, stderr, code, err := end.ns.Run(ctx, "tc", args...)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr))
			}
			if err != nil {
				return fmt.Errorf("tc %s in %s: %w", strings.Join(args, " "), end.ns.Name, err)
			}
		}
	}
	return nil
}

// rxBytes returns the bytes received by the client's link interfaces.
func (t *topology) rxBytes() ([]uint64, error) {
	var out []uint64
	for _, l := range t.pair.Links {
		link, err := t.pair.Client.Handle.LinkByName(l.ClientIf)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", l.ClientIf, err)
		}
		var v uint64
		if s := link.Attrs().Statistics; s != nil {
			v = s.RxBytes
		}
		out = append(out, v)
	}
	return out, nil
}

// setLink sets the client end of link i (0-based) up or down.
func (t *topology) setLink(i int, up bool) error {
	name := t.pair.Links[i].ClientIf
	link, err := t.pair.Client.Handle.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if up {
		err = t.pair.Client.Handle.LinkSetUp(link)
	} else {
		err = t.pair.Client.Handle.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("set %s up=%v: %w", name, up, err)
	}
	return nil
}

// restoreLink brings link i back and waits until the client has its
// connected route again.
func (t *topology) restoreLink(ctx context.Context, i int) error {
	if err := t.setLink(i, true); err != nil {
		return err
	}
	l := t.pair.Links[i]
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		routes, err := t.pair.Client.Handle.RouteGet(l.ServerV4.AsSlice())
		if err == nil && len(routes) > 0 {
			idx, _ := t.pair.Client.LinkIndex(l.ClientIf)
			if routes[0].LinkIndex == idx {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("link %s: no route after bringing it up", l.ClientIf)
}

func (t *topology) close() error { return t.pair.Close() }
