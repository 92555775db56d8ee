package policy

import (
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestMatch checks lexical order, first match wins, and name, kind and
// loopback matching, on testdata/full.
func TestMatch(t *testing.T) {
	fsys := fstest.MapFS{}
	mount(t, fsys, "full", "etc/mptcpd-go")
	mount(t, fsys, "full/policies", "srv/mptcp/policies")
	c, err := LoadFS(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	const dir = "/srv/mptcp/policies/"
	for _, tc := range []struct {
		link Link
		want string // the file of the policy that applies; "" for none
	}{
		{Link{Name: "veth12ab", Kind: "veth"}, dir + "10-containers.toml"},
		{Link{Name: "docker0", Kind: "bridge"}, dir + "10-containers.toml"},
		// br-* is ignored even though 99-all would match it: first wins.
		{Link{Name: "br-lan", Kind: "bridge"}, dir + "10-containers.toml"},
		{Link{Name: "wwan0"}, dir + "20-lte.toml"},
		// wwan? is one character.
		{Link{Name: "wwan10"}, dir + "99-all.toml"},
		// 30-server wants hardware or vlan links; netlink gives hardware
		// no kind, and "device" and "ether" are other names for it.
		{Link{Name: "eth0"}, dir + "30-server.toml"},
		{Link{Name: "eth0", Kind: "device"}, dir + "30-server.toml"},
		{Link{Name: "eth0", Kind: "ether"}, dir + "30-server.toml"},
		{Link{Name: "eth0.7", Kind: "vlan"}, dir + "30-server.toml"},
		{Link{Name: "enp3s0"}, dir + "30-server.toml"},
		{Link{Name: "eth9", Kind: "macvlan"}, dir + "99-all.toml"},
		{Link{Name: "wg0", Kind: "wireguard"}, dir + "40-vpn.toml"},
		{Link{Name: "wg0", Kind: "tun"}, dir + "99-all.toml"},
		{Link{Name: "lo", Loopback: true}, ""},
		{Link{Name: "eth0", Loopback: true}, ""},
	} {
		var got string
		if p := c.Match(tc.link); p != nil {
			got = p.File
		}
		if got != tc.want {
			t.Errorf("Match(%+v) = %q, want %q", tc.link, got, tc.want)
		}
	}
}

// TestMatchGlobs checks path.Match globs, escapes and classes included.
func TestMatchGlobs(t *testing.T) {
	for _, tc := range []struct {
		glob string
		name string
		want bool
	}{
		{"*", "anything", true},
		{"eth*", "eth0", true},
		{"eth*", "veth0", false},
		{"eth?", "eth10", false},
		{"eth[0-3]", "eth2", true},
		{"eth[0-3]", "eth4", false},
		{"eth[^0-3]", "eth4", true},
		{`br\*`, "br*", true},
		{`br\*`, "br0", false},
		{"wlan0", "wlan0", true},
		{"wlan0", "wlan01", false},
	} {
		c := &Config{Interfaces: []*Interface{{File: "x", Names: []string{tc.glob}}}}
		if got := c.Match(Link{Name: tc.name}) != nil; got != tc.want {
			t.Errorf("glob %q matches %q = %v, want %v", tc.glob, tc.name, got, tc.want)
		}
	}
}

func TestMatchEmbeddedDefault(t *testing.T) {
	c, err := LoadFS(fstest.MapFS{}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Link{{Name: "eth0"}, {Name: "wlp2s0"}, {Name: "veth1", Kind: "veth"}, {Name: "wg0", Kind: "wireguard"}} {
		if p := c.Match(l); p == nil || p.File != "embedded:99-default.toml" {
			t.Errorf("Match(%+v) = %v, want the built-in policy", l, p)
		}
	}
	if p := c.Match(Link{Name: "lo", Loopback: true}); p != nil {
		t.Errorf("Match(lo) = %v, want nil", p)
	}
	// Global addresses with a default route get endpoints; others not.
	p := c.Match(Link{Name: "eth0"})
	if ok, why := p.Wants(Addr{Prefix: netip.MustParsePrefix("192.0.2.10/24")}, true); !ok {
		t.Errorf("built-in policy refuses a global address: %s", why)
	}
	if ok, _ := p.Wants(Addr{Prefix: netip.MustParsePrefix("192.0.2.10/24")}, false); ok {
		t.Errorf("built-in policy wants an address without a default route")
	}
	if ok, _ := p.Wants(Addr{Prefix: netip.MustParsePrefix("fe80::1/64")}, true); ok {
		t.Errorf("built-in policy wants a link-local address")
	}
}

func TestWants(t *testing.T) {
	const file = "/etc/mptcpd-go/interfaces.d/10-eth.toml"
	all := Interface{File: file, Skip: AllAddrKinds}
	none := Interface{File: file, Skip: 0, AlsoWithoutDefaultRoute: true}
	v4only := Interface{File: file, Skip: AllAddrKinds, Families: []Family{FamilyIPv4}}
	v6only := Interface{File: file, Skip: AllAddrKinds, Families: []Family{FamilyIPv6}}
	ignored := Interface{File: file, Ignore: true}
	onlyULA := Interface{File: file, Skip: AddrULA}
	pfx := netip.MustParsePrefix

	type want struct {
		OK  bool
		Why string
	}
	for _, tc := range []struct {
		name  string
		p     Interface
		a     Addr
		route bool
		want  want
	}{
		{"global IPv4", all, Addr{Prefix: pfx("192.0.2.10/24")}, true, want{true, ""}},
		{"global IPv6", all, Addr{Prefix: pfx("2001:db8::10/64")}, true, want{true, ""}},
		{"IPv4-mapped IPv6 is IPv4", v4only, Addr{Prefix: pfx("::ffff:192.0.2.10/120")}, true, want{true, ""}},
		{"private IPv4 is not skipped", all, Addr{Prefix: pfx("10.1.2.3/8")}, true, want{true, ""}},

		{"no default route", all, Addr{Prefix: pfx("192.0.2.10/24")}, false,
			want{false, "the interface has no ipv4 default route (set also_without_default_route = true in " + file + " to use it anyway)"}},
		{"no IPv6 default route", all, Addr{Prefix: pfx("2001:db8::10/64")}, false,
			want{false, "the interface has no ipv6 default route (set also_without_default_route = true in " + file + " to use it anyway)"}},
		{"also without default route", none, Addr{Prefix: pfx("192.0.2.10/24")}, false, want{true, ""}},

		{"family ipv4 only", v4only, Addr{Prefix: pfx("2001:db8::10/64")}, true,
			want{false, "an ipv6 address, but family in " + file + " lists only ipv4"}},
		{"family ipv6 only", v6only, Addr{Prefix: pfx("192.0.2.10/24")}, true,
			want{false, "an ipv4 address, but family in " + file + " lists only ipv6"}},

		{"IPv6 link-local by address", all, Addr{Prefix: pfx("fe80::1/64")}, true,
			want{false, "link-local address, which skip in " + file + " leaves out"}},
		{"IPv4 link-local by address", all, Addr{Prefix: pfx("169.254.7.7/16")}, true,
			want{false, "link-local address, which skip in " + file + " leaves out"}},
		{"link scope from netlink", all, Addr{Prefix: pfx("192.0.2.10/24"), LinkLocal: true}, true,
			want{false, "link-local address, which skip in " + file + " leaves out"}},
		{"ULA fd00::/8", all, Addr{Prefix: pfx("fd12:3456::1/64")}, true,
			want{false, "unique local address (fc00::/7), which skip in " + file + " leaves out"}},
		{"ULA fc00::/8", all, Addr{Prefix: pfx("fc00::1/64")}, true,
			want{false, "unique local address (fc00::/7), which skip in " + file + " leaves out"}},
		{"fe00:: is not a ULA", onlyULA, Addr{Prefix: pfx("fe00::1/64")}, true, want{true, ""}},
		{"temporary", all, Addr{Prefix: pfx("2001:db8::beef/64"), Temporary: true}, true,
			want{false, "temporary (privacy) address, which skip in " + file + " leaves out"}},
		{"deprecated", all, Addr{Prefix: pfx("2001:db8::10/64"), Deprecated: true}, true,
			want{false, "deprecated address (its preferred lifetime is over), which skip in " + file + " leaves out"}},
		{"tentative", all, Addr{Prefix: pfx("2001:db8::10/64"), Tentative: true}, true,
			want{false, "tentative address (duplicate address detection has not ended), which skip in " + file + " leaves out"}},

		// skip = [] lets every kind through.
		{"skip none: link-local", none, Addr{Prefix: pfx("fe80::1/64")}, true, want{true, ""}},
		{"skip none: ULA", none, Addr{Prefix: pfx("fd00::1/64")}, true, want{true, ""}},
		{"skip none: temporary", none, Addr{Prefix: pfx("2001:db8::1/64"), Temporary: true}, true, want{true, ""}},
		{"skip none: deprecated", none, Addr{Prefix: pfx("2001:db8::1/64"), Deprecated: true}, true, want{true, ""}},
		{"skip none: tentative", none, Addr{Prefix: pfx("2001:db8::1/64"), Tentative: true}, true, want{true, ""}},
		{"skip ula only: tentative passes", onlyULA, Addr{Prefix: pfx("2001:db8::1/64"), Tentative: true}, true, want{true, ""}},

		// Never, whatever skip says.
		{"loopback IPv4", none, Addr{Prefix: pfx("127.0.0.1/8")}, true, want{false, "loopback address: no peer could reach it"}},
		{"loopback IPv6", none, Addr{Prefix: pfx("::1/128")}, true, want{false, "loopback address: no peer could reach it"}},
		{"multicast", none, Addr{Prefix: pfx("ff02::1/128")}, true, want{false, "not a unicast address"}},
		{"unspecified", none, Addr{Prefix: pfx("0.0.0.0/0")}, true, want{false, "not a unicast address"}},
		{"no address", none, Addr{}, true, want{false, "not an IP address"}},
		{"ignored", ignored, Addr{Prefix: pfx("192.0.2.10/24")}, true,
			want{false, "the interface is ignored (ignore = true in " + file + ")"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := tc.p.Wants(tc.a, tc.route)
			if diff := cmp.Diff(tc.want, want{ok, why}); diff != "" {
				t.Errorf("Wants(%+v, %v) mismatch (-want +got):\n%s", tc.a, tc.route, diff)
			}
		})
	}
}

func TestAddrKindsString(t *testing.T) {
	for k, want := range map[AddrKinds]string{
		0:                             "none",
		AllAddrKinds:                  "link-local ula temporary deprecated tentative",
		AddrTentative | AddrLinkLocal: "link-local tentative",
	} {
		if got := k.String(); got != want {
			t.Errorf("AddrKinds(%#x).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
