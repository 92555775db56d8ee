package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpd-go/mptcpd-go/genl"
)

// mount copies the files under testdata/dir into fsys under at (an fs.FS
// name such as "etc/mptcpd-go").
func mount(t *testing.T, fsys fstest.MapFS, dir, at string) {
	t.Helper()
	root := filepath.Join("testdata", dir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fsys[at+"/"+filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// etc returns a file system with the given files in /etc/mptcpd-go.
func etc(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys["etc/mptcpd-go/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func TestLoadExample(t *testing.T) {
	fsys := fstest.MapFS{}
	mount(t, fsys, "example", "etc/mptcpd-go")
	got, err := LoadFS(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:            "/etc/mptcpd-go/mptcpd-go.toml",
		Mode:            ModeKernel,
		Subflows:        Limit{Value: 4},
		AddAddrAccepted: Limit{Value: 4},
		PolicyDir:       "/etc/mptcpd-go/interfaces.d",
		ControlSocket:   "/run/mptcpd-go/control.sock",
		StateFile:       "/run/mptcpd-go/state.json",
		LogLevel:        "info",
		LogFormat:       "console",
		OnStop:          StopRemove,
		Preset:          DefaultPreset,
		Interfaces: []*Interface{{
			File:                    "/etc/mptcpd-go/interfaces.d/10-wlan.toml",
			Names:                   []string{"wlan*", "eth1"},
			Flags:                   genl.FlagSubflow | genl.FlagBackup,
			AlsoWithoutDefaultRoute: true,
			Skip:                    AllAddrKinds,
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadFS mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadFull(t *testing.T) {
	fsys := fstest.MapFS{}
	mount(t, fsys, "full", "etc/mptcpd-go")
	mount(t, fsys, "full/policies", "srv/mptcp/policies")
	got, err := LoadFS(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	const dir = "/srv/mptcp/policies/"
	want := &Config{
		Path:            "/etc/mptcpd-go/mptcpd-go.toml",
		Mode:            ModeUserspace,
		Subflows:        Limit{Auto: true},
		AddAddrAccepted: Limit{Value: 0},
		PolicyDir:       "/srv/mptcp/policies",
		ControlSocket:   "/run/mptcpd-go-blue/control.sock",
		StateFile:       "/run/mptcpd-go-blue/state.json",
		LogLevel:        "debug",
		LogFormat:       "json",
		OnStop:          StopKeep,
		Preset:          DefaultPreset,
		Interfaces: []*Interface{
			{
				File:   dir + "10-containers.toml",
				Names:  []string{"veth*", "docker*", "br-*"},
				Ignore: true,
				Skip:   AllAddrKinds,
			},
			{
				File:                    dir + "20-lte.toml",
				Names:                   []string{"wwan?"},
				Families:                []Family{FamilyIPv4},
				Flags:                   genl.FlagSubflow | genl.FlagBackup,
				AlsoWithoutDefaultRoute: true,
				Skip:                    AllAddrKinds,
				Priority:                -10,
			},
			{
				File:     dir + "30-server.toml",
				Names:    []string{"eth*", "en*"},
				Kinds:    []string{"device", "vlan"},
				Families: []Family{FamilyIPv6, FamilyIPv4},
				Flags:    genl.FlagSignal | genl.FlagSubflow,
				Port:     8080,
				Skip:     AddrLinkLocal | AddrTentative,
				Priority: 10,
			},
			{
				File:  dir + "40-vpn.toml",
				Names: []string{"wg*"},
				Kinds: []string{"wireguard"},
				Flags: genl.FlagSubflow | genl.FlagFullmesh,
				Skip:  0,
			},
			{
				File:  dir + "99-all.toml",
				Names: []string{"*"},
				Flags: genl.FlagSubflow,
				Skip:  AllAddrKinds,
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadFS mismatch (-want +got):\n%s", diff)
	}
}

// builtinInterface returns what the embedded 99-default.toml parses into.
func builtinInterface() *Interface {
	return &Interface{
		File:  "embedded:99-default.toml",
		Names: []string{"*"},
		Flags: genl.FlagSubflow,
		Skip:  AllAddrKinds,
	}
}

func TestLoadEmbeddedDefault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []*Interface
		dirOK bool
	}{
		{name: "no files at all", want: []*Interface{builtinInterface()}},
		{
			name:  "empty interfaces.d",
			files: map[string]string{"interfaces.d/notes.txt": "not a policy"},
			want:  []*Interface{builtinInterface()},
			dirOK: true,
		},
		{
			// Files the admin wrote replace the built-in interface policy.
			name: "interface files without a main file",
			files: map[string]string{"interfaces.d/10-eth.toml": `
[match]
name = ["eth0"]
[endpoint]
flags = ["signal"]
`},
			want: []*Interface{{
				File:  "/etc/mptcpd-go/interfaces.d/10-eth.toml",
				Names: []string{"eth0"},
				Flags: genl.FlagSignal,
				Skip:  AllAddrKinds,
			}},
			dirOK: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadFS(etc(tc.files), "")
			if err != nil {
				t.Fatal(err)
			}
			want := &Config{
				Path:             "/etc/mptcpd-go/mptcpd-go.toml",
				Mode:             ModeKernel,
				Subflows:         Limit{Auto: true},
				AddAddrAccepted:  Limit{Auto: true},
				PolicyDir:        "/etc/mptcpd-go/interfaces.d",
				PolicyDirMissing: !tc.dirOK,
				ControlSocket:    "/run/mptcpd-go/control.sock",
				StateFile:        "/run/mptcpd-go/state.json",
				LogLevel:         "info",
				LogFormat:        "console",
				OnStop:           StopRemove,
				Preset:           DefaultPreset,
				Interfaces:       tc.want,
				Embedded:         true,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("LoadFS mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadMainWithoutPolicyDir(t *testing.T) {
	got, err := LoadFS(etc(map[string]string{"mptcpd-go.toml": ""}), "")
	if err != nil {
		t.Fatal(err)
	}
	// An empty main file is all defaults, and since it exists the built-in
	// interface policy does not apply.
	want := &Config{
		Path:             "/etc/mptcpd-go/mptcpd-go.toml",
		Mode:             ModeKernel,
		Subflows:         Limit{Auto: true},
		AddAddrAccepted:  Limit{Auto: true},
		PolicyDir:        "/etc/mptcpd-go/interfaces.d",
		PolicyDirMissing: true,
		ControlSocket:    "/run/mptcpd-go/control.sock",
		StateFile:        "/run/mptcpd-go/state.json",
		LogLevel:         "info",
		LogFormat:        "console",
		OnStop:           StopRemove,
		Preset:           DefaultPreset,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadFS mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadPaths(t *testing.T) {
	for _, tc := range []struct {
		name, path, main     string
		policyDir, stateFile string
	}{
		{
			name:      "relative policy_dir is relative to the main file",
			path:      "/opt/m/conf/main.toml",
			main:      `policy_dir = "../policies/./x"`,
			policyDir: "/opt/m/policies/x",
			stateFile: "/run/mptcpd-go/state.json",
		},
		{
			name:      "absolute policy_dir",
			path:      "/opt/m/main.toml",
			main:      `policy_dir = "/srv/p/"`,
			policyDir: "/srv/p",
			stateFile: "/run/mptcpd-go/state.json",
		},
		{
			name:      "state file follows the control socket",
			path:      "/opt/m/main.toml",
			main:      `control_socket = "/run/two/ctl.sock"`,
			policyDir: "/opt/m/interfaces.d",
			stateFile: "/run/two/state.json",
		},
		{
			name:      "explicit state file",
			path:      "/opt/m/main.toml",
			main:      "control_socket = \"/run/two/ctl.sock\"\nstate_file = \"/var/lib/m//s.json\"",
			policyDir: "/opt/m/interfaces.d",
			stateFile: "/var/lib/m/s.json",
		},
		{
			name:      "relative main file",
			path:      "conf/main.toml",
			main:      "",
			policyDir: "conf/interfaces.d",
			stateFile: "/run/mptcpd-go/state.json",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{strings.TrimPrefix(tc.path, "/"): {Data: []byte(tc.main)}}
			c, err := LoadFS(fsys, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{c.Path, c.PolicyDir, c.StateFile}
			want := [3]string{tc.path, tc.policyDir, tc.stateFile}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Path, PolicyDir, StateFile mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadExplicitPathMissing(t *testing.T) {
	_, err := LoadFS(etc(nil), "/etc/mptcpd-go/other.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFS error = %v, want one that is fs.ErrNotExist", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("LoadFS error %T is not an *Error", err)
	}
	want := "/etc/mptcpd-go/other.toml: no such file; create it, or leave out --config to use /etc/mptcpd-go/mptcpd-go.toml or the built-in defaults"
	if diff := cmp.Diff(want, e.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

// TestLoadOS runs Load on real files, with an absolute and a relative path.
func TestLoadOS(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"mptcpd-go.toml":           "[limits]\nsubflows = 2\n",
		"interfaces.d/10-eth.toml": "[match]\nname = [\"eth0\"]\n[endpoint]\nflags = [\"subflow\"]\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(filepath.Join(dir, "mptcpd-go.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subflows != (Limit{Value: 2}) || len(c.Interfaces) != 1 || c.Interfaces[0].File != filepath.Join(dir, "interfaces.d/10-eth.toml") {
		t.Errorf("Load = %+v, interfaces %+v", c, c.Interfaces)
	}

	t.Chdir(dir)
	c, err = Load("mptcpd-go.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != filepath.Join(dir, "mptcpd-go.toml") {
		t.Errorf("Load(relative).Path = %q, want it absolute", c.Path)
	}

	_, err = Load("missing.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLimitResolve(t *testing.T) {
	for _, tc := range []struct {
		l       Limit
		derived int
		want    uint32
	}{
		{Limit{Value: 3}, 7, 3},
		{Limit{Auto: true}, 5, 5},
		{Limit{Auto: true}, 12, genl.MaxLimit},
		{Limit{Auto: true}, -1, 0},
	} {
		if got := tc.l.Resolve(tc.derived); got != tc.want {
			t.Errorf("%v.Resolve(%d) = %d, want %d", tc.l, tc.derived, got, tc.want)
		}
	}
}
