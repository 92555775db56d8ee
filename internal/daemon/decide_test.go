package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// testDir is where loadConfig puts the policy files.
const testDir = "/etc/mptcpd-go"

// loadConfig loads a policy from memory: main is the main file's text and
// ifaces maps interface file names (in interfaces.d) to their text.
func loadConfig(t *testing.T, main string, ifaces map[string]string) *policy.Config {
	t.Helper()
	fsys := fstest.MapFS{
		"etc/mptcpd-go/mptcpd-go.toml": &fstest.MapFile{Data: []byte(main)},
	}
	for name, text := range ifaces {
		fsys["etc/mptcpd-go/interfaces.d/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	cfg, err := policy.LoadFS(fsys, testDir+"/mptcpd-go.toml")
	if err != nil {
		t.Fatalf("loading the test policy: %v", err)
	}
	return cfg
}

// ifaceFile is the path loadConfig gives the interface file name.
func ifaceFile(name string) string { return testDir + "/interfaces.d/" + name }

// addr returns an endpoints.Addr for a CIDR literal.
func addr(cidr string) endpoints.Addr {
	return endpoints.Addr{Prefix: netip.MustParsePrefix(cidr)}
}

// link returns an up, running link of kind "device" with the addresses.
func link(index int, name string, addrs ...endpoints.Addr) endpoints.Link {
	return endpoints.Link{Index: index, Name: name, Kind: "device", Up: true, Running: true, Addrs: addrs}
}

// withDefault sets the default-route facts of l.
func withDefault(l endpoints.Link, v4, v6 bool) endpoints.Link {
	l.DefaultV4, l.DefaultV6 = v4, v6
	return l
}

func lo() endpoints.Link {
	return endpoints.Link{Index: 1, Name: "lo", Kind: "device", Up: true, Running: true, Loopback: true,
		DefaultV4: true, DefaultV6: true, // as if; loopback must still get nothing
		Addrs: []endpoints.Addr{addr("127.0.0.1/8"), addr("::1/128")}}
}

func want(iface string, index int, ip string, flags genl.Flags) endpoints.Want {
	return endpoints.Want{Iface: iface, Ifindex: index, Addr: netip.MustParseAddr(ip), Flags: flags}
}

func limits(subflows, accepted uint32) endpoints.LimitsWant {
	return endpoints.LimitsWant{Subflows: &subflows, AddAddrAccepted: &accepted}
}

// verdict is one address's outcome in a plan, for comparison.
type verdict struct {
	Iface  string
	Policy string // the matched file, "" for none
	Addr   string
	Wanted bool
}

func verdicts(plans []IfacePlan) []verdict {
	var vs []verdict
	for _, p := range plans {
		file := ""
		if p.Policy != nil {
			file = p.Policy.File
		}
		for _, a := range p.Addrs {
			vs = append(vs, verdict{p.Link.Name, file, a.Addr.Prefix.String(), a.Wanted})
		}
	}
	return vs
}

var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

const subflowAll = `
[match]
name = ["*"]
[endpoint]
flags = ["subflow"]
also_without_default_route = true
`

func TestDecide(t *testing.T) {
	const (
		fSubflow  = genl.FlagSubflow
		fBackup   = genl.FlagBackup
		fSignal   = genl.FlagSignal
		fFullmesh = genl.FlagFullmesh
	)
	tests := []struct {
		name   string
		main   string
		ifaces map[string]string
		snap   endpoints.Snapshot
		wants  []endpoints.Want
		limits endpoints.LimitsWant
		// verdicts, when set, are compared with every address's outcome.
		verdicts []verdict
		// why maps "iface addr/len" to a text the reason must contain.
		why map[string]string
	}{
		{
			name: "flags, port, priority and ifindex come from the matching file",
			ifaces: map[string]string{
				"10-wlan.toml": `
[match]
name = ["wlan*"]
[endpoint]
flags = ["subflow", "backup"]
priority = 10
also_without_default_route = true
`,
				"20-eth.toml": `
[match]
name = ["eth*"]
[endpoint]
flags = ["signal"]
port = 8080
priority = -3
`,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				lo(),
				withDefault(link(2, "eth0", addr("192.0.2.10/24"), addr("2001:db8::10/64")), true, false),
				link(3, "wlan0", addr("198.51.100.7/24")),
			}},
			wants: []endpoints.Want{
				{Iface: "eth0", Ifindex: 2, Addr: netip.MustParseAddr("192.0.2.10"), Port: 8080, Flags: fSignal, Priority: -3},
				{Iface: "wlan0", Ifindex: 3, Addr: netip.MustParseAddr("198.51.100.7"), Flags: fSubflow | fBackup, Priority: 10},
			},
			// auto: 2 wants (the minimum anyway); 1 of them subflow.
			limits: limits(2, 1),
			verdicts: []verdict{
				{"lo", "", "127.0.0.1/8", false},
				{"lo", "", "::1/128", false},
				{"eth0", ifaceFile("20-eth.toml"), "192.0.2.10/24", true},
				{"eth0", ifaceFile("20-eth.toml"), "2001:db8::10/64", false},
				{"wlan0", ifaceFile("10-wlan.toml"), "198.51.100.7/24", true},
			},
			why: map[string]string{
				"lo 127.0.0.1/8":       "loopback interface",
				"eth0 2001:db8::10/64": "no ipv6 default route",
			},
		},
		{
			name: "first match wins across files, in lexical order",
			ifaces: map[string]string{
				"10-eth1.toml": `
[match]
name = ["eth1"]
[endpoint]
flags = ["subflow", "backup"]
also_without_default_route = true
`,
				"20-eth.toml": `
[match]
name = ["eth*"]
[endpoint]
flags = ["subflow", "fullmesh"]
also_without_default_route = true
`,
				"30-eth1-again.toml": `
[match]
name = ["eth1"]
[endpoint]
flags = ["signal"]
also_without_default_route = true
`,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				link(2, "eth1", addr("192.0.2.1/24")),
				link(3, "eth2", addr("192.0.2.2/24")),
			}},
			wants: []endpoints.Want{
				want("eth1", 2, "192.0.2.1", fSubflow|fBackup),
				want("eth2", 3, "192.0.2.2", fSubflow|fFullmesh),
			},
			limits: limits(2, 2),
			verdicts: []verdict{
				{"eth1", ifaceFile("10-eth1.toml"), "192.0.2.1/24", true},
				{"eth2", ifaceFile("20-eth.toml"), "192.0.2.2/24", true},
			},
		},
		{
			name: "an ignore file wins over a later match",
			ifaces: map[string]string{
				"10-docker.toml": "ignore = true\n[match]\nname = [\"docker*\"]\n",
				"99-all.toml":    subflowAll,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				link(2, "docker0", addr("172.17.0.1/16")),
				link(3, "eth0", addr("192.0.2.1/24")),
			}},
			wants:  []endpoints.Want{want("eth0", 3, "192.0.2.1", fSubflow)},
			limits: limits(2, 1),
			verdicts: []verdict{
				{"docker0", ifaceFile("10-docker.toml"), "172.17.0.1/16", false},
				{"eth0", ifaceFile("99-all.toml"), "192.0.2.1/24", true},
			},
			why: map[string]string{"docker0 172.17.0.1/16": "the interface is ignored"},
		},
		{
			name: "no file matches",
			ifaces: map[string]string{
				"10-eth.toml": "[match]\nname = [\"eth*\"]\n[endpoint]\nflags = [\"subflow\"]\n",
			},
			snap:     endpoints.Snapshot{Links: []endpoints.Link{withDefault(link(2, "wlan0", addr("192.0.2.1/24")), true, true)}},
			limits:   limits(2, 1),
			verdicts: []verdict{{"wlan0", "", "192.0.2.1/24", false}},
			why:      map[string]string{"wlan0 192.0.2.1/24": "no policy file matches"},
		},
		{
			name: "default route needed per family unless also_without_default_route",
			ifaces: map[string]string{
				"10-eth.toml": "[match]\nname = [\"eth*\"]\n[endpoint]\nflags = [\"subflow\"]\n",
				"20-wlan.toml": `
[match]
name = ["wlan*"]
[endpoint]
flags = ["subflow"]
also_without_default_route = true
`,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				withDefault(link(2, "eth0", addr("192.0.2.1/24"), addr("2001:db8:1::1/64")), true, false),
				withDefault(link(3, "eth1", addr("192.0.2.2/24"), addr("2001:db8:2::1/64")), false, true),
				link(4, "eth2", addr("192.0.2.3/24")),
				link(5, "wlan0", addr("192.0.2.4/24"), addr("2001:db8:4::1/64")),
			}},
			wants: []endpoints.Want{
				want("eth0", 2, "192.0.2.1", fSubflow),
				want("eth1", 3, "2001:db8:2::1", fSubflow),
				want("wlan0", 5, "192.0.2.4", fSubflow),
				want("wlan0", 5, "2001:db8:4::1", fSubflow),
			},
			limits: limits(4, 4),
			why: map[string]string{
				"eth0 2001:db8:1::1/64": "no ipv6 default route",
				"eth1 192.0.2.2/24":     "no ipv4 default route",
				"eth2 192.0.2.3/24":     "also_without_default_route = true",
			},
		},
		{
			name:   "default skip leaves out link-local, ULA, temporary, deprecated and tentative addresses",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap: endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0",
				addr("169.254.7.7/16"),
				addr("192.0.2.1/24"),
				addr("2001:db8::1/64"),
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::2/64"), Temporary: true},
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::3/64"), Deprecated: true},
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::4/64"), Tentative: true},
				addr("fd00:1::1/64"),
				endpoints.Addr{Prefix: netip.MustParsePrefix("fe80::1/64"), LinkLocal: true},
				// link scope from the kernel counts as link-local too
				endpoints.Addr{Prefix: netip.MustParsePrefix("10.0.0.1/8"), LinkLocal: true},
			)}},
			wants: []endpoints.Want{
				want("eth0", 2, "192.0.2.1", fSubflow),
				want("eth0", 2, "2001:db8::1", fSubflow),
			},
			limits: limits(2, 2),
			why: map[string]string{
				"eth0 169.254.7.7/16": "link-local",
				"eth0 2001:db8::2/64": "temporary",
				"eth0 2001:db8::3/64": "deprecated",
				"eth0 2001:db8::4/64": "tentative",
				"eth0 fd00:1::1/64":   "unique local",
				"eth0 fe80::1/64":     "link-local",
				"eth0 10.0.0.1/8":     "link-local",
			},
		},
		{
			name: "skip lists only some kinds",
			ifaces: map[string]string{"10-eth.toml": `
[match]
name = ["eth*"]
[endpoint]
flags = ["subflow"]
also_without_default_route = true
skip = ["ula", "tentative"]
`},
			snap: endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0",
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::2/64"), Temporary: true},
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::3/64"), Deprecated: true},
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::4/64"), Tentative: true},
				addr("fd00:1::1/64"),
				endpoints.Addr{Prefix: netip.MustParsePrefix("fe80::1/64"), LinkLocal: true},
			)}},
			wants: []endpoints.Want{
				want("eth0", 2, "2001:db8::2", fSubflow),
				want("eth0", 2, "2001:db8::3", fSubflow),
				want("eth0", 2, "fe80::1", fSubflow),
			},
			limits: limits(3, 3),
		},
		{
			name: "an empty skip skips nothing",
			ifaces: map[string]string{"10-eth.toml": `
[match]
name = ["eth*"]
[endpoint]
flags = ["subflow"]
also_without_default_route = true
skip = []
`},
			snap: endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0",
				endpoints.Addr{Prefix: netip.MustParsePrefix("2001:db8::4/64"), Tentative: true},
				addr("fd00:1::1/64"),
			)}},
			wants: []endpoints.Want{
				want("eth0", 2, "2001:db8::4", fSubflow),
				want("eth0", 2, "fd00:1::1", fSubflow),
			},
			limits: limits(2, 2),
		},
		{
			name:   "loopback never, even when a file matches every name",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				lo(),
				// a second loopback-flagged link with a global address
				{Index: 7, Name: "lo2", Kind: "device", Up: true, Running: true, Loopback: true,
					Addrs: []endpoints.Addr{addr("192.0.2.99/32")}},
				// a loopback address on an ordinary link
				link(8, "eth0", addr("127.0.0.2/8")),
			}},
			limits: limits(2, 1),
			verdicts: []verdict{
				{"lo", "", "127.0.0.1/8", false},
				{"lo", "", "::1/128", false},
				{"lo2", "", "192.0.2.99/32", false},
				{"eth0", ifaceFile("99-all.toml"), "127.0.0.2/8", false},
			},
			why: map[string]string{
				"lo2 192.0.2.99/32": "loopback interface",
				"eth0 127.0.0.2/8":  "loopback address",
			},
		},
		{
			name: "family and kind",
			ifaces: map[string]string{
				"10-veth.toml": `
[match]
name = ["*"]
kind = ["veth"]
family = "ipv6"
[endpoint]
flags = ["subflow"]
also_without_default_route = true
`,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				{Index: 2, Name: "veth0", Kind: "veth", Up: true, Running: true,
					Addrs: []endpoints.Addr{addr("192.0.2.1/24"), addr("2001:db8::1/64")}},
				link(3, "eth0", addr("2001:db8:1::1/64")),
			}},
			wants:  []endpoints.Want{want("veth0", 2, "2001:db8::1", fSubflow)},
			limits: limits(2, 1),
			verdicts: []verdict{
				{"veth0", ifaceFile("10-veth.toml"), "192.0.2.1/24", false},
				{"veth0", ifaceFile("10-veth.toml"), "2001:db8::1/64", true},
				{"eth0", "", "2001:db8:1::1/64", false},
			},
			why: map[string]string{"veth0 192.0.2.1/24": "family"},
		},
		{
			name:   "link state is the reconciler's business, not the policy's",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				{Index: 2, Name: "eth0", Kind: "device", Addrs: []endpoints.Addr{addr("192.0.2.1/24")}},
			}},
			wants:  []endpoints.Want{want("eth0", 2, "192.0.2.1", fSubflow)},
			limits: limits(2, 1),
		},
		{
			name: "auto limits: one subflow per want, add_addr_accepted per subflow or fullmesh want",
			ifaces: map[string]string{
				"10-sig.toml": `
[match]
name = ["sig*"]
[endpoint]
flags = ["signal"]
also_without_default_route = true
`,
				"20-mesh.toml": `
[match]
name = ["mesh*"]
[endpoint]
flags = ["fullmesh"]
also_without_default_route = true
`,
				"30-sub.toml": `
[match]
name = ["sub*"]
[endpoint]
flags = ["subflow", "backup"]
also_without_default_route = true
`,
			},
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				link(2, "sig0", addr("192.0.2.1/24"), addr("192.0.2.2/24"), addr("192.0.2.3/24")),
				link(3, "mesh0", addr("198.51.100.1/24")),
				link(4, "sub0", addr("203.0.113.1/24")),
			}},
			wants: []endpoints.Want{
				want("sig0", 2, "192.0.2.1", fSignal),
				want("sig0", 2, "192.0.2.2", fSignal),
				want("sig0", 2, "192.0.2.3", fSignal),
				want("mesh0", 3, "198.51.100.1", fFullmesh),
				want("sub0", 4, "203.0.113.1", fSubflow|fBackup),
			},
			limits: limits(5, 2),
		},
		{
			name:   "auto limits: signal endpoints alone still accept one address",
			ifaces: map[string]string{"10-sig.toml": "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"signal\"]\nalso_without_default_route = true\n"},
			snap:   endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0", addr("192.0.2.1/24"))}},
			wants:  []endpoints.Want{want("eth0", 2, "192.0.2.1", fSignal)},
			limits: limits(2, 1),
		},
		{
			name:   "auto limits: no wants at all",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap:   endpoints.Snapshot{Links: []endpoints.Link{lo()}},
			limits: limits(2, 1),
		},
		{
			name:   "auto limits are capped at 8",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap: endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0",
				addr("192.0.2.1/24"), addr("192.0.2.2/24"), addr("192.0.2.3/24"), addr("192.0.2.4/24"),
				addr("192.0.2.5/24"), addr("192.0.2.6/24"), addr("192.0.2.7/24"), addr("192.0.2.8/24"),
				addr("192.0.2.9/24"), addr("192.0.2.10/24"),
			)}},
			wants: []endpoints.Want{
				want("eth0", 2, "192.0.2.1", fSubflow), want("eth0", 2, "192.0.2.2", fSubflow),
				want("eth0", 2, "192.0.2.3", fSubflow), want("eth0", 2, "192.0.2.4", fSubflow),
				want("eth0", 2, "192.0.2.5", fSubflow), want("eth0", 2, "192.0.2.6", fSubflow),
				want("eth0", 2, "192.0.2.7", fSubflow), want("eth0", 2, "192.0.2.8", fSubflow),
				want("eth0", 2, "192.0.2.9", fSubflow), want("eth0", 2, "192.0.2.10", fSubflow),
			},
			limits: limits(8, 8),
		},
		{
			name:   "fixed limits are taken as given",
			main:   "[limits]\nsubflows = 0\nadd_addr_accepted = 7\n",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap:   endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0", addr("192.0.2.1/24"), addr("192.0.2.2/24"), addr("192.0.2.3/24"))}},
			wants: []endpoints.Want{
				want("eth0", 2, "192.0.2.1", fSubflow),
				want("eth0", 2, "192.0.2.2", fSubflow),
				want("eth0", 2, "192.0.2.3", fSubflow),
			},
			limits: limits(0, 7),
		},
		{
			name:   "one fixed limit, one auto",
			main:   "[limits]\nsubflows = 6\n",
			ifaces: map[string]string{"99-all.toml": subflowAll},
			snap:   endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0", addr("192.0.2.1/24"), addr("192.0.2.2/24"), addr("192.0.2.3/24"))}},
			wants: []endpoints.Want{
				want("eth0", 2, "192.0.2.1", fSubflow),
				want("eth0", 2, "192.0.2.2", fSubflow),
				want("eth0", 2, "192.0.2.3", fSubflow),
			},
			limits: limits(6, 3),
		},
		{
			name: "an explicit main file without interface files gives nothing",
			snap: endpoints.Snapshot{Links: []endpoints.Link{
				withDefault(link(2, "eth0", addr("192.0.2.1/24")), true, true),
			}},
			limits:   limits(2, 1),
			verdicts: []verdict{{"eth0", "", "192.0.2.1/24", false}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t, tc.main, tc.ifaces)
			plans, wants, lw := Decide(cfg, tc.snap)
			if diff := cmp.Diff(tc.wants, wants, cmpNetip, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("wants mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.limits, lw); diff != "" {
				t.Errorf("limits mismatch (-want +got):\n%s", diff)
			}
			if tc.verdicts != nil {
				if diff := cmp.Diff(tc.verdicts, verdicts(plans)); diff != "" {
					t.Errorf("verdicts mismatch (-want +got):\n%s", diff)
				}
			}
			checkPlans(t, tc.snap, plans, tc.why)
		})
	}
}

// checkPlans checks what every test case must satisfy: one plan per link in
// order, one verdict per address, a reason exactly for the addresses that
// get no endpoint, and the reasons of why.
func checkPlans(t *testing.T, snap endpoints.Snapshot, plans []IfacePlan, why map[string]string) {
	t.Helper()
	if len(plans) != len(snap.Links) {
		t.Fatalf("%d plans for %d links", len(plans), len(snap.Links))
	}
	seen := make(map[string]bool)
	for i, p := range plans {
		if diff := cmp.Diff(snap.Links[i], p.Link, cmpNetip); diff != "" {
			t.Errorf("plan %d: link mismatch (-want +got):\n%s", i, diff)
		}
		if len(p.Addrs) != len(p.Link.Addrs) {
			t.Errorf("%s: %d verdicts for %d addresses", p.Link.Name, len(p.Addrs), len(p.Link.Addrs))
		}
		for _, a := range p.Addrs {
			k := p.Link.Name + " " + a.Addr.Prefix.String()
			if a.Wanted != (a.Why == "") {
				t.Errorf("%s: wanted %v with reason %q", k, a.Wanted, a.Why)
			}
			if w, ok := why[k]; ok {
				seen[k] = true
				if !strings.Contains(a.Why, w) {
					t.Errorf("%s: reason %q does not mention %q", k, a.Why, w)
				}
			}
		}
	}
	for k := range why {
		if !seen[k] {
			t.Errorf("no verdict for %s", k)
		}
	}
}

// TestDecideEmbeddedDefault runs Decide on the built-in policy: no main
// file at the default path, no interface files.
func TestDecideEmbeddedDefault(t *testing.T) {
	cfg, err := policy.LoadFS(fstest.MapFS{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Embedded {
		t.Fatalf("Embedded = false, want true")
	}
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		lo(),
		withDefault(link(2, "eth0", addr("192.0.2.1/24"), addr("2001:db8::1/64"),
			endpoints.Addr{Prefix: netip.MustParsePrefix("fe80::1/64"), LinkLocal: true}), true, true),
		link(3, "wlan0", addr("198.51.100.1/24")),
	}}
	plans, wants, lw := Decide(cfg, snap)
	wantWants := []endpoints.Want{
		want("eth0", 2, "192.0.2.1", genl.FlagSubflow),
		want("eth0", 2, "2001:db8::1", genl.FlagSubflow),
	}
	if diff := cmp.Diff(wantWants, wants, cmpNetip); diff != "" {
		t.Errorf("wants mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(limits(2, 2), lw); diff != "" {
		t.Errorf("limits mismatch (-want +got):\n%s", diff)
	}
	checkPlans(t, snap, plans, map[string]string{
		"eth0 fe80::1/64":       "link-local",
		"wlan0 198.51.100.1/24": "no ipv4 default route",
	})
	if got := plans[1].Policy.File; got != policy.EmbeddedPrefix+"99-default.toml" {
		t.Errorf("eth0's policy is %q, want the embedded default", got)
	}
}

// TestDecideDoesNotModifySnapshot: Decide is pure.
func TestDecideDoesNotModifySnapshot(t *testing.T) {
	cfg := loadConfig(t, "", map[string]string{"99-all.toml": subflowAll})
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		lo(), link(2, "eth0", addr("192.0.2.1/24"), addr("2001:db8::1/64")),
	}}
	before := snap.Clone()
	_, w1, l1 := Decide(cfg, snap)
	_, w2, l2 := Decide(cfg, snap)
	if !snap.Equal(before) {
		t.Errorf("Decide modified its snapshot")
	}
	if diff := cmp.Diff(w1, w2, cmpNetip); diff != "" {
		t.Errorf("two calls differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(l1, l2); diff != "" {
		t.Errorf("two calls differ in limits (-first +second):\n%s", diff)
	}
}

func TestLimitsClamp(t *testing.T) {
	auto := loadConfig(t, "", nil)
	for _, tc := range []struct {
		wants, subflowWants int
		sub, acc            uint32
	}{
		{0, 0, 2, 1},
		{1, 1, 2, 1},
		{2, 0, 2, 1},
		{3, 2, 3, 2},
		{8, 8, 8, 8},
		{9, 9, 8, 8},
		{200, 100, 8, 8},
	} {
		got := Limits(auto, tc.wants, tc.subflowWants)
		if diff := cmp.Diff(limits(tc.sub, tc.acc), got); diff != "" {
			t.Errorf("Limits(auto, %d, %d) mismatch (-want +got):\n%s", tc.wants, tc.subflowWants, diff)
		}
	}
}
