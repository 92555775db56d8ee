package endpoints

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// startWatcher runs a Watcher on ns until the test ends.
func startWatcher(t testing.TB, ns *harness.NS, cfg WatcherConfig) *Watcher {
	t.Helper()
	cfg.NetNS = &ns.NsHandle
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return w.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
		w.Close()
	})
	return w
}

// addAddrDAD adds cidr to ifname without IFA_F_NODAD, so an IPv6 address
// goes through duplicate address detection (harness.AddAddr skips it).
func addAddrDAD(t testing.TB, ns *harness.NS, ifname, cidr string) {
	t.Helper()
	link, err := ns.Handle.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(cidr)
	ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := ns.Handle.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
		t.Fatalf("add %s to %s: %v", cidr, ifname, err)
	}
}

func TestWatcherFollowsLinksAddressesAndRoutes(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	ns := harness.NewNS(t)
	peer := harness.NewNS(t)
	harness.Veth(t, ns, "veth0", peer, "veth0p")
	idx := ns.LinkIndex(t, "veth0")

	w := startWatcher(t, ns, WatcherConfig{})
	link := func() Link {
		l, _ := w.Snapshot().LinkByIndex(idx)
		return l
	}
	waitLink := func(what string, cond func(Link) bool) {
		t.Helper()
		eventually(t, what, func() bool { return cond(link()) })
	}
	addr := func(l Link, a string) (Addr, bool) { return l.Addr(ip(a)) }
	has := func(a string) func(Link) bool {
		return func(l Link) bool { _, ok := addr(l, a); return ok }
	}
	not := func(f func(Link) bool) func(Link) bool { return func(l Link) bool { return !f(l) } }

	// The snapshot is valid before any event (NewWatcher listed).
	if lo, ok := w.Snapshot().LinkByName("lo"); !ok || !lo.Loopback || !lo.Running {
		t.Errorf("lo = %+v, %v; want a running loopback link", lo, ok)
	}
	waitLink("veth0 up and running", func(l Link) bool {
		return l.Name == "veth0" && l.Kind == "veth" && l.Up && l.Running && !l.Loopback
	})

	t.Run("ipv4 address added and removed", func(t *testing.T) {
		ns.AddAddr(t, "veth0", "10.1.0.1/24")
		waitLink("10.1.0.1 to appear", has("10.1.0.1"))
		a, _ := addr(link(), "10.1.0.1")
		if want := (Addr{Prefix: netip.MustParsePrefix("10.1.0.1/24")}); a != want {
			t.Errorf("10.1.0.1 = %+v, want %+v", a, want)
		}
		if !a.IsGlobal() || !a.Usable() {
			t.Errorf("10.1.0.1 should be global and usable: %+v", a)
		}
		ns.DelAddr(t, "veth0", "10.1.0.1/24")
		waitLink("10.1.0.1 to go", not(has("10.1.0.1")))
	})

	t.Run("ipv6 without DAD is usable at once", func(t *testing.T) {
		ns.AddAddr(t, "veth0", "fd00:1::1/64") // IFA_F_NODAD
		waitLink("fd00:1::1 to appear", has("fd00:1::1"))
		a, _ := addr(link(), "fd00:1::1")
		if a.Tentative || !a.Usable() || a.Prefix.Bits() != 64 {
			t.Errorf("fd00:1::1 = %+v; want usable /64", a)
		}
	})

	t.Run("ipv6 with DAD is tentative first", func(t *testing.T) {
		addAddrDAD(t, ns, "veth0", "fd00:2::1/64")
		// DAD takes about a second (one probe, retrans_time 1 s), far
		// longer than the watcher needs to see the address.
		waitLink("fd00:2::1 to appear", has("fd00:2::1"))
		if a, _ := addr(link(), "fd00:2::1"); !a.Tentative || a.Usable() {
			t.Errorf("fd00:2::1 first seen as %+v; want tentative", a)
		}
		waitLink("DAD of fd00:2::1 to finish", func(l Link) bool {
			a, ok := addr(l, "fd00:2::1")
			return ok && !a.Tentative && a.Usable() && !a.DADFailed
		})
	})

	t.Run("link-local address", func(t *testing.T) {
		waitLink("a fe80:: address", func(l Link) bool {
			for _, a := range l.Addrs {
				if a.LinkLocal && !a.IsGlobal() && a.Prefix.Addr().Is6() {
					return true
				}
			}
			return false
		})
	})

	t.Run("carrier lost and back", func(t *testing.T) {
		peer.LinkDown(t, "veth0p")
		waitLink("veth0 to lose carrier", func(l Link) bool { return l.Up && !l.Running })
		peer.LinkUp(t, "veth0p")
		waitLink("veth0 to run again", func(l Link) bool { return l.Up && l.Running })
	})

	t.Run("default routes", func(t *testing.T) {
		ns.AddAddr(t, "veth0", "10.1.0.1/24")
		ns.AddDefaultRoute(t, "veth0", "10.1.0.254")
		waitLink("an IPv4 default route", func(l Link) bool { return l.DefaultV4 && !l.DefaultV6 })
		ns.AddDefaultRoute(t, "veth0", "fd00:1::fe")
		waitLink("an IPv6 default route", func(l Link) bool { return l.DefaultV4 && l.DefaultV6 })

		gw := net.ParseIP("10.1.0.254")
		if err := ns.Handle.RouteDel(&netlink.Route{LinkIndex: idx, Gw: gw, Family: unix.AF_INET}); err != nil {
			t.Fatal(err)
		}
		waitLink("the IPv4 default route to go", func(l Link) bool { return !l.DefaultV4 && l.DefaultV6 })
		ns.AddDefaultRoute(t, "veth0", "10.1.0.254")
		waitLink("the IPv4 default route back", func(l Link) bool { return l.DefaultV4 })
	})

	t.Run("link down and up", func(t *testing.T) {
		ns.LinkDown(t, "veth0")
		// The kernel drops the link's routes (IPv4 ones without telling)
		// and, with keep_addr_on_down=0, its IPv6 addresses.
		waitLink("veth0 down, its routes gone", func(l Link) bool {
			return !l.Up && !l.Running && !l.DefaultV4 && !l.DefaultV6
		})
		if l := link(); !has("10.1.0.1")(l) || has("fd00:1::1")(l) {
			t.Errorf("addresses after down: %+v; want 10.1.0.1 kept, fd00:1::1 gone", l.Addrs)
		}
		ns.LinkUp(t, "veth0")
		waitLink("veth0 up again", func(l Link) bool { return l.Up && l.Running })
	})

	t.Run("changes are notified", func(t *testing.T) {
		// Drain, then one change must produce a notification.
		select {
		case <-w.Changed():
		default:
		}
		ns.AddAddr(t, "veth0", "10.1.0.7/24")
		eventually(t, "a change notification", func() bool {
			select {
			case <-w.Changed():
				return true
			default:
				return false
			}
		})
		waitLink("10.1.0.7", has("10.1.0.7"))
	})
}

// TestWatcherRecoversFromOverflow floods a watcher with a tiny socket
// buffer: when events are lost it must resubscribe and re-list, so the
// final snapshot is complete either way.
func TestWatcherRecoversFromOverflow(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	ns := harness.NewNS(t)
	peer := harness.NewNS(t)
	harness.Veth(t, ns, "veth0", peer, "veth0p")
	idx := ns.LinkIndex(t, "veth0")
	w := startWatcher(t, ns, WatcherConfig{ReceiveBufferSize: 1024})

	const n = 300
	link, err := ns.Handle.LinkByIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 2, byte(i/250), byte(i%250+1)), Mask: net.CIDRMask(32, 32)}}
		if err := ns.Handle.AddrAdd(link, a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, fmt.Sprintf("all %d addresses in the snapshot", n), func() bool {
		l, _ := w.Snapshot().LinkByIndex(idx)
		return len(l.Addrs) >= n
	})
	t.Logf("resubscriptions after overflow: %d", w.resubscribes.Load())
}
