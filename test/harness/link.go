package harness

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Veth creates a veth pair with end aName in namespace a and end bName in
// namespace b, and brings both ends up. a and b may be the same namespace.
// The pair is created through a's netlink handle with the peer placed
// directly into b, so it never appears in the host namespace. It fails the
// test on error; the pair is deleted in t.Cleanup (and would disappear with
// either namespace anyway).
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	if err := addVeth(a, aName, b, bName); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		// Explicit delete so a test that outlives its veth (Veth called in a
		// subtest) does not keep the pair around until the namespace goes.
		if !a.NsHandle.IsOpen() {
			return
		}
		link, err := a.Handle.LinkByName(aName)
		if err != nil {
			if !errors.As(err, &netlink.LinkNotFoundError{}) {
				t.Errorf("harness: looking up veth %s in netns %s for deletion: %v", aName, a.Name, err)
			}
			return
		}
		if err := a.Handle.LinkDel(link); err != nil {
			t.Errorf("harness: deleting veth %s in netns %s: %v", aName, a.Name, err)
		}
	})
	if err := a.linkUp(aName); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := b.linkUp(bName); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// addVeth creates the pair through a's handle with the peer placed
// directly into b.
func addVeth(a *NS, aName string, b *NS, bName string) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(b.NsHandle),
	}
	if err := a.Handle.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth %s (netns %s) <-> %s (netns %s): %w", aName, a.Name, bName, b.Name, err)
	}
	return nil
}

// AddVeth is Veth for programs without a testing.TB: the pair goes away
// with either namespace.
func AddVeth(a *NS, aName string, b *NS, bName string) error {
	if err := addVeth(a, aName, b, bName); err != nil {
		return err
	}
	return errors.Join(a.linkUp(aName), b.linkUp(bName))
}

// SetLinkUp is LinkUp returning its error, for programs without a
// testing.TB.
func (n *NS) SetLinkUp(ifname string) error { return n.linkUp(ifname) }

// AddPrefix is AddAddr returning its error, for programs without a
// testing.TB.
func (n *NS) AddPrefix(ifname string, p netip.Prefix) error {
	return n.addrChange(ifname, p.String(), true)
}

// LinkIndex returns the interface index of ifname inside the namespace. It
// fails the test on error.
func (n *NS) LinkIndex(t testing.TB, ifname string) int {
	t.Helper()
	link, err := n.link(ifname)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return link.Attrs().Index
}

// LinkUp sets ifname up (e.g. to restore a link after LinkDown). It fails
// the test on error.
func (n *NS) LinkUp(t testing.TB, ifname string) {
	t.Helper()
	if err := n.linkUp(ifname); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// LinkDown sets ifname down, e.g. to simulate losing a path. It fails the
// test on error.
func (n *NS) LinkDown(t testing.TB, ifname string) {
	t.Helper()
	link, err := n.link(ifname)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	if err := n.Handle.LinkSetDown(link); err != nil {
		t.Fatalf("harness: setting %s down in netns %s: %v", ifname, n.Name, err)
	}
}

// AddAddr adds cidr (e.g. "10.0.1.1/24" or "fd00:1::1/64") to ifname. IPv6
// addresses get IFA_F_NODAD so they are usable at once instead of staying
// tentative for about a second. It fails the test on error.
func (n *NS) AddAddr(t testing.TB, ifname, cidr string) {
	t.Helper()
	if err := n.addrChange(ifname, cidr, true); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// DelAddr removes cidr, as given to AddAddr, from ifname. It fails the test
// on error.
func (n *NS) DelAddr(t testing.TB, ifname, cidr string) {
	t.Helper()
	if err := n.addrChange(ifname, cidr, false); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// AddRoute adds a route to dst (a CIDR) via the gateway gw (an address of
// the same family) in the namespace's main table. The kernel picks the
// outgoing interface from gw, which must be on a connected subnet. It fails
// the test on error.
func (n *NS) AddRoute(t testing.TB, dst, gw string) {
	t.Helper()
	prefix, err := netip.ParsePrefix(dst)
	if err != nil {
		t.Fatalf("harness: adding route in netns %s: parsing destination: %v", n.Name, err)
	}
	gwAddr, err := parseGateway(gw, prefix.Addr().Is4())
	if err != nil {
		t.Fatalf("harness: adding route to %s in netns %s: %v", dst, n.Name, err)
	}
	route := &netlink.Route{Dst: prefixToIPNet(prefix.Masked()), Gw: gwAddr.AsSlice()}
	if err := n.Handle.RouteAdd(route); err != nil {
		t.Fatalf("harness: adding route to %s via %s in netns %s: %v", dst, gw, n.Name, err)
	}
}

// AddDefaultRoute adds a default route via gw out of ifname; the family
// (IPv4 or IPv6) follows gw. It fails the test on error.
func (n *NS) AddDefaultRoute(t testing.TB, ifname, gw string) {
	t.Helper()
	gwAddr, err := netip.ParseAddr(gw)
	if err != nil {
		t.Fatalf("harness: adding default route in netns %s: parsing gateway: %v", n.Name, err)
	}
	link, err := n.link(ifname)
	if err != nil {
		t.Fatalf("harness: adding default route: %v", err)
	}
	// Dst nil means 0.0.0.0/0 or ::/0; netlink derives the family from Gw.
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gwAddr.AsSlice()}
	if err := n.Handle.RouteAdd(route); err != nil {
		t.Fatalf("harness: adding default route via %s dev %s in netns %s: %v", gw, ifname, n.Name, err)
	}
}

// link looks ifname up inside the namespace.
func (n *NS) link(ifname string) (netlink.Link, error) {
	link, err := n.Handle.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("looking up link %s in netns %s: %w", ifname, n.Name, err)
	}
	return link, nil
}

// linkUp is LinkUp without a testing.TB, for use during set-up.
func (n *NS) linkUp(ifname string) error {
	link, err := n.link(ifname)
	if err != nil {
		return err
	}
	if err := n.Handle.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up in netns %s: %w", ifname, n.Name, err)
	}
	return nil
}

// addrChange adds (add true) or deletes cidr on ifname.
func (n *NS) addrChange(ifname, cidr string, add bool) error {
	op := "adding"
	if !add {
		op = "deleting"
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("%s address on %s in netns %s: %w", op, ifname, n.Name, err)
	}
	link, err := n.link(ifname)
	if err != nil {
		return fmt.Errorf("%s address %s: %w", op, cidr, err)
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(prefix)}
	if prefix.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if add {
		err = n.Handle.AddrAdd(link, addr)
	} else {
		err = n.Handle.AddrDel(link, addr)
	}
	if err != nil {
		return fmt.Errorf("%s address %s on %s in netns %s: %w", op, cidr, ifname, n.Name, err)
	}
	return nil
}

// parseGateway parses gw and checks it has the family of the destination,
// which the kernel would otherwise reject with a less helpful error.
func parseGateway(gw string, want4 bool) (netip.Addr, error) {
	addr, err := netip.ParseAddr(gw)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("parsing gateway: %w", err)
	}
	if addr.Is4() != want4 {
		return netip.Addr{}, fmt.Errorf("gateway %s is not of the destination's address family", gw)
	}
	return addr, nil
}

// prefixToIPNet converts to the type netlink uses, keeping the host bits
// (an address "10.0.1.1/24" must stay 10.0.1.1, not become 10.0.1.0).
func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}
