// Package nstopo builds the throw-away network namespaces of the
// benchmarks: two hosts joined by veth pairs. The namespaces themselves
// come from test/harness (its error-returning Open/AddVeth layer), so the
// benchmarks and the tests share one implementation of the safety rules:
// unique names, links created from inside the namespaces, net.* sysctls
// only, no route to the outside world.
package nstopo

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// Prefix starts the name of every namespace (and temporary directory) of
// the benchmarks; leftovers of a killed run are easy to find and remove
// with `ip netns del`.
const Prefix = harness.NamePrefix

// NS is a named network namespace; Close removes it.
type NS struct{ *harness.NS }

// NewNS creates a namespace whose name ends in "-bench-" + label, with lo
// up.
func NewNS(label string) (*NS, error) {
	n, err := harness.Open("bench-" + label)
	if err != nil {
		return nil, err
	}
	return &NS{n}, nil
}

// Enter moves the calling goroutine's thread into the namespace for good:
// it locks the goroutine to its thread and never unlocks it, so the thread
// is discarded when the goroutine ends. It suits long-lived workers that
// create sockets in the namespace.
func (n *NS) Enter() error {
	runtime.LockOSThread()
	if err := netns.Set(n.NsHandle); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	return nil
}

// Sysctl writes a net.* sysctl (dotted form) inside the namespace.
func (n *NS) Sysctl(key, value string) error { return n.WriteSysctl(key, value) }

// SysctlExists reports whether the net.* key exists (in every namespace
// or in none).
func SysctlExists(key string) bool {
	_, err := os.Stat("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return err == nil
}

// LinkUp sets ifname up.
func (n *NS) LinkUp(ifname string) error { return n.SetLinkUp(ifname) }

// LinkIndex returns the index of ifname.
func (n *NS) LinkIndex(ifname string) (int, error) {
	l, err := n.Handle.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("look up %s in netns %s: %w", ifname, n.Name, err)
	}
	return l.Attrs().Index, nil
}

// AddAddr adds the address p (host bits kept) to ifname.
func (n *NS) AddAddr(ifname string, p netip.Prefix) error { return n.AddPrefix(ifname, p) }

// Link is one veth pair of a Pair: link i (1-based) is 10.0.i.0/24 with
// host 1 on the client and 2 on the server, like test/harness.Pair.
type Link struct {
	ClientIf, ServerIf string
	ClientV4, ServerV4 netip.Addr
}

// Pair is two namespaces joined by veth pairs.
type Pair struct {
	Client, Server *NS
	Links          []Link
}

// NewPair creates the client and server namespaces joined by links veth
// pairs, IPv4 only (each link its own /24, so no routes are needed). On
// error everything created is removed.
func NewPair(links int) (p *Pair, err error) {
	if links < 1 || links > 8 {
		return nil, fmt.Errorf("pair: %d links, want 1..8", links)
	}
	p = &Pair{}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if p.Client, err = NewNS("client"); err != nil {
		return nil, err
	}
	if p.Server, err = NewNS("server"); err != nil {
		return nil, err
	}
	for i := 1; i <= links; i++ {
		l := Link{
			ClientIf: fmt.Sprintf("veth%dc", i), ServerIf: fmt.Sprintf("veth%ds", i),
			ClientV4: netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), ServerV4: netip.AddrFrom4([4]byte{10, 0, byte(i), 2}),
		}
		if err := harness.AddVeth(p.Client.NS, l.ClientIf, p.Server.NS, l.ServerIf); err != nil {
			return nil, err
		}
		if err := p.Client.AddAddr(l.ClientIf, netip.PrefixFrom(l.ClientV4, 24)); err != nil {
			return nil, err
		}
		if err := p.Server.AddAddr(l.ServerIf, netip.PrefixFrom(l.ServerV4, 24)); err != nil {
			return nil, err
		}
		p.Links = append(p.Links, l)
	}
	return p, nil
}

// Close removes both namespaces (and so the links); it may be called more
// than once.
func (p *Pair) Close() error {
	var errs []error
	for _, n := range []**NS{&p.Client, &p.Server} {
		if *n != nil {
			errs = append(errs, (*n).Close())
			*n = nil
		}
	}
	return errors.Join(errs...)
}
