package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// loadPolicy loads a main file and interface files, name → text.
func loadPolicy(t *testing.T, main string, ifaces map[string]string) *policy.Config {
	t.Helper()
	fsys := fstest.MapFS{"etc/m/main.toml": {Data: []byte(main)}}
	for name, text := range ifaces {
		fsys["etc/m/interfaces.d/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	cfg, err := policy.LoadFS(fsys, "/etc/m/main.toml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestChooseMode(t *testing.T) {
	for _, tc := range []struct {
		name, main string
		supports   bool
		want       policy.Mode
		wantErr    string
	}{
		{"kernel", `mode = "kernel"`, true, policy.ModeKernel, ""},
		{"userspace", `mode = "userspace"`, true, policy.ModeUserspace, ""},
		{"userspace unsupported", `mode = "userspace"`, false, "", "has no userspace MPTCP path manager"},
		{"auto without rules", `mode = "auto"`, true, policy.ModeKernel, ""},
		{"auto default preset", "mode = \"auto\"\npreset = \"throughput\"", true, policy.ModeKernel, ""},
		{"auto preset", "mode = \"auto\"\npreset = \"backup\"", true, policy.ModeUserspace, ""},
		{"auto max_subflows", "mode = \"auto\"\nmax_subflows = 2", true, policy.ModeUserspace, ""},
		{"auto rule", "mode = \"auto\"\n[[rule]]\naction = \"never\"", true, policy.ModeUserspace, ""},
		{"auto rule unsupported", "mode = \"auto\"\n[[rule]]\naction = \"never\"", false, policy.ModeKernel, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadPolicy(t, tc.main, nil)
			got, why, err := ChooseMode(cfg, tc.supports)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ChooseMode error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || why == "" {
				t.Errorf("ChooseMode = %q, %q, %v; want %q and a reason", got, why, err, tc.want)
			}
		})
	}
}

// TestPresetsInSync keeps the policy's preset names those of the path
// manager.
func TestPresetsInSync(t *testing.T) {
	var want []string
	for _, p := range pathmgr.Presets() {
		want = append(want, string(p))
	}
	if got := policy.Presets(); !slices.Equal(got, want) {
		t.Errorf("policy.Presets() = %v, pathmgr.Presets() = %v", got, want)
	}
}

func TestPathManagerConfig(t *testing.T) {
	cfg := loadPolicy(t, `mode = "userspace"
preset = "cost"
max_subflows = 3
[[rule]]
dst = ["192.0.2.0/24", "2001:db8::/32"]
ports = [443, "8000-8999"]
side = "client"
action = "never"
[[rule]]
side = "server"
action = "multipath"
max_subflows = 1
`, map[string]string{
		"10-veth.toml":  "[match]\nname = [\"veth*\"]\nkind = [\"veth\"]\n[endpoint]\nflags = [\"subflow\"]\n",
		"20-wwan.toml":  "[match]\nname = [\"wwan*\", \"veth9\"]\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nmetered = true\n",
		"30-srv.toml":   "[match]\nname = [\"srv*\"]\n[endpoint]\nflags = [\"signal\"]\nport = 8080\n",
		"40-ign.toml":   "ignore = true\n[match]\nname = [\"docker*\"]\n",
		"50-other.toml": "[match]\nname = [\"eth*\"]\nkind = [\"device\"]\n[endpoint]\nflags = [\"subflow\"]\n",
	})
	kinds := map[string]string{"veth0": "veth", "veth9": "device", "wwan0": "device", "srv0": "device", "docker0": "bridge", "eth0": "device", "eth1": "vlan"}
	pc := PathManagerConfig(cfg, func(n string) string { return kinds[n] })
	if err := pc.Validate(); err != nil {
		t.Fatal(err)
	}
	if pc.Preset != pathmgr.PresetCost || pc.MaxSubflows != 3 {
		t.Errorf("preset %q max subflows %d", pc.Preset, pc.MaxSubflows)
	}
	snap := endpoints.Snapshot{}
	for i, name := range []string{"docker0", "eth0", "eth1", "srv0", "veth0", "veth9", "wwan0", "lo9"} {
		snap.Links = append(snap.Links, endpoints.Link{Index: i + 1, Name: name, Kind: kinds[name], Up: true, Running: true,
			Addrs: []endpoints.Addr{{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24)}}})
	}
	view := pathmgr.NewLocalView(snap, pc)
	got := map[string]string{}
	for _, ifc := range view.Ifaces {
		s := ifc.Use.String()
		if ifc.Signal {
			s += " signal " + portText(ifc.Port)
		}
		got[ifc.Name] = s
	}
	want := map[string]string{
		"docker0": "never",                     // ignore = true
		"eth0":    "subflow",                   // kind matches; cost preset, unmetered
		"eth1":    "never",                     // kind vlan: no file matches
		"srv0":    "subflow signal  port 8080", // signal only: the preset decides
		"veth0":   "subflow",
		"veth9":   "backup", // veth glob but not kind veth: the next file
		"wwan0":   "backup",
		"lo9":     "never", // no file
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: use %q, want %q", name, got[name], w)
		}
	}
	if len(pc.Rules) != 3 {
		t.Fatalf("rules: %+v, want 3 (two prefixes of the first rule, then the second)", pc.Rules)
	}
	r0, r1, r2 := pc.Rules[0], pc.Rules[1], pc.Rules[2]
	if r0.Dst != netip.MustParsePrefix("192.0.2.0/24") || r1.Dst != netip.MustParsePrefix("2001:db8::/32") ||
		r0.Action != pathmgr.Never || r1.Action != pathmgr.Never || r0.Side != pathmgr.ClientSide ||
		!slices.Equal(r0.Ports, []pathmgr.PortRange{{First: 443, Last: 443}, {First: 8000, Last: 8999}}) {
		t.Errorf("first rule converted to %+v, %+v", r0, r1)
	}
	if r2.Dst.IsValid() || r2.Side != pathmgr.ServerSide || r2.Action != pathmgr.Multipath || r2.MaxSubflows != 1 {
		t.Errorf("second rule converted to %+v", r2)
	}
}

// TestFilterSnapshot: the path manager sees only the addresses kernel mode
// would give endpoints.
func TestFilterSnapshot(t *testing.T) {
	cfg := loadPolicy(t, `mode = "userspace"`, map[string]string{
		"10-a.toml": "[match]\nname = [\"a*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = true\n",
		"20-b.toml": "[match]\nname = [\"b*\"]\n[endpoint]\nflags = [\"subflow\"]\n",
	})
	addrs := []endpoints.Addr{{Prefix: netip.MustParsePrefix("10.1.0.1/24")}, {Prefix: netip.MustParsePrefix("fd00::1/64")}}
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		{Index: 1, Name: "a0", Running: true, Addrs: addrs},
		{Index: 2, Name: "b0", Running: true, Addrs: addrs},
		{Index: 3, Name: "b1", Running: true, DefaultV4: true, Addrs: addrs},
		{Index: 4, Name: "c0", Running: true, Addrs: addrs},
	}}
	out := filterSnapshot(cfg, snap)
	want := map[string]int{"a0": 1, "b0": 0, "b1": 1, "c0": 0} // ULA skipped by default
	for _, l := range out.Links {
		if len(l.Addrs) != want[l.Name] {
			t.Errorf("%s: %d addresses %v, want %d", l.Name, len(l.Addrs), l.Addrs, want[l.Name])
		}
	}
	if len(snap.Links[0].Addrs) != 2 {
		t.Error("filterSnapshot changed the watcher's snapshot")
	}
}

func TestUseUserspacePM(t *testing.T) {
	t.Run("path_manager", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "path_manager")
		writeFile(t, file, "kernel\n")
		s, err := useUserspacePM(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, file, "userspace")
		if err := s.restore(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, file, "kernel")
	})
	t.Run("pm_type", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "pm_type")
		writeFile(t, file, "0\n")
		s, err := useUserspacePM(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, file, "1")
		if err := s.restore(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, file, "0")
	})
	t.Run("neither", func(t *testing.T) {
		if _, err := useUserspacePM(t.TempDir()); err == nil {
			t.Error("no error without the sysctl files")
		}
	})
}

func checkFile(t *testing.T, name, want string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}
