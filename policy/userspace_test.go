package policy

import (
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestLoadUserspaceExample loads the userspace policy of the README as
// written: preset, per-interface files, and no rules.
func TestLoadUserspaceExample(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/mptcpd-go/mptcpd-go.toml": {Data: []byte("mode = \"userspace\"\npreset = \"throughput\"\n")},
		"etc/mptcpd-go/interfaces.d/10-veth.toml": {Data: []byte(
			"[match]\nname = [\"veth*\", \"eth*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = true\n")},
	}
	cfg, err := LoadFS(fsys, mainFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeUserspace || cfg.Preset != "throughput" || cfg.MaxSubflows != 0 || len(cfg.Rules) != 0 {
		t.Errorf("mode %q preset %q max_subflows %d rules %v", cfg.Mode, cfg.Preset, cfg.MaxSubflows, cfg.Rules)
	}
	if cfg.WantsPerConnection() {
		t.Error("WantsPerConnection() = true for the default preset without rules")
	}
	if len(cfg.Interfaces) != 1 || !cfg.Interfaces[0].AlsoWithoutDefaultRoute || cfg.Interfaces[0].Metered {
		t.Errorf("interfaces: %+v", cfg.Interfaces)
	}
}

// TestLoadRules checks every form of the [[rule]] keys and the defaults.
func TestLoadRules(t *testing.T) {
	main := `mode = "auto"
preset = "cost"
max_subflows = 4

[[rule]]
dst = "192.0.2.0/24"
ports = [443, "8000-8999"]
side = "client"
action = "never"

[[rule]]
dst = ["2001:db8::/32", "198.51.100.7"]
ports = "22"
action = "multipath"
max_subflows = 1

[[rule]]
action = "multipath"
`
	fsys := fstest.MapFS{
		"etc/mptcpd-go/mptcpd-go.toml": {Data: []byte(main)},
		"etc/mptcpd-go/interfaces.d/10-wwan.toml": {Data: []byte(
			"[match]\nname = [\"wwan*\"]\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nmetered = true\n")},
	}
	cfg, err := LoadFS(fsys, mainFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []ConnRule{
		{File: mainFile, Line: 5, Dst: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			Ports: []PortRange{{443, 443}, {8000, 8999}}, Side: SideClient, Action: ActionNever},
		{File: mainFile, Line: 11, Dst: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.7/32")},
			Ports: []PortRange{{22, 22}}, Side: SideAny, Action: ActionMultipath, MaxSubflows: 1},
		{File: mainFile, Line: 17, Side: SideAny, Action: ActionMultipath},
	}
	if diff := cmp.Diff(want, cfg.Rules, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if cfg.Preset != "cost" || cfg.MaxSubflows != 4 || !cfg.WantsPerConnection() {
		t.Errorf("preset %q max_subflows %d WantsPerConnection %v", cfg.Preset, cfg.MaxSubflows, cfg.WantsPerConnection())
	}
	if !cfg.Interfaces[0].Metered {
		t.Error("metered = true not loaded")
	}
}

func TestParsePortRange(t *testing.T) {
	for s, want := range map[string]PortRange{"1": {1, 1}, "80-80": {80, 80}, " 1 - 65535 ": {1, 65535}} {
		if got, ok := parsePortRange(s); !ok || got != want {
			t.Errorf("parsePortRange(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "0", "0-1", "5-4", "65536", "a-b", "1-", "-1", "1-2-3"} {
		if got, ok := parsePortRange(s); ok {
			t.Errorf("parsePortRange(%q) = %v, want an error", s, got)
		}
	}
}
