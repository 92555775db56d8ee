// Package systemd_test checks what systemd/ ships: the example policies
// load and say what their comments claim, the unit file keeps the settings
// the daemon relies on, and systemd itself accepts the unit and rates its
// exposure at most maxExposure.
package systemd_test

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/cli"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// dropIns relax the unit for [[proxy]] tables and metrics_listen.
var dropIns = []string{"proxy.conf", "metrics.conf"}

const (
	unitFile = "mptcpd-go.service"

	// binPath is where the README's install steps put the binary.
	binPath = "/usr/local/sbin/mptcpd-go"
	// maxExposure is the most `systemd-analyze security` may rate the unit.
	maxExposure = 1.5
	// requireEnv set to 1 makes a missing systemd tool fail the test
	// instead of skipping it (CI).
	requireEnv = "MPTCPD_REQUIRE_SYSTEMD"
)

// policyCheck runs `mptcpd-go policy check --config main` and fails unless
// it exits 0.
func policyCheck(t *testing.T, main string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), cli.DefaultEnv(nil, &out, &errb, "test"), []string{"policy", "check", "--config", main})
	if code != 0 {
		t.Fatalf("policy check --config %s: exit %d\n%s%s", main, code, out.String(), errb.String())
	}
}

// load loads a policy and checks that the unit lets the daemon create its
// control socket and state file.
func load(t *testing.T, main string) *policy.Config {
	t.Helper()
	cfg, err := policy.Load(main)
	if err != nil {
		t.Fatalf("policy.Load(%s): %v", main, err)
	}
	run := runtimeDir(t)
	for _, p := range []string{cfg.ControlSocket, cfg.StateFile} {
		if path.Dir(p) != run {
			t.Errorf("%s: %s is outside %s, the only directory the unit lets the daemon write", main, p, run)
		}
	}
	return cfg
}

// match returns the policy for a (hardware) interface, failing if none.
func match(t *testing.T, cfg *policy.Config, name string) *policy.Interface {
	t.Helper()
	p := cfg.Match(policy.Link{Name: name})
	if p == nil {
		t.Fatalf("%s: no interface file matches %s", cfg.Path, name)
	}
	return p
}

func TestExamples(t *testing.T) {
	tests := []struct {
		dir   string
		check func(t *testing.T, cfg *policy.Config)
	}{
		{"laptop", func(t *testing.T, cfg *policy.Config) {
			for _, name := range []string{"wlan0", "wlp2s0"} {
				p := match(t, cfg, name)
				if p.Ignore || p.Flags != genl.FlagSubflow {
					t.Errorf("%s: %s has flags %v (ignore %v), want subflow only", p.File, name, p.Flags, p.Ignore)
				}
			}
			for _, name := range []string{"wwan0", "wwp0s20u4"} {
				p := match(t, cfg, name)
				if filepath.Base(p.File) != "20-wwan.toml" || p.Flags != genl.FlagSubflow|genl.FlagBackup {
					t.Errorf("%s: %s has flags %v, want subflow backup from 20-wwan.toml", p.File, name, p.Flags)
				}
			}
			if p := cfg.Match(policy.Link{Name: "eth0"}); p != nil {
				t.Errorf("%s matches eth0; the laptop example is for Wi-Fi and LTE only", p.File)
			}
		}},
		{"server", func(t *testing.T, cfg *policy.Config) {
			if p := match(t, cfg, "eth0"); !p.Ignore {
				t.Errorf("%s: the first uplink eth0 should be ignored (clients already connect to it)", p.File)
			}
			p := match(t, cfg, "eth1")
			if p.Flags != genl.FlagSignal || !p.AlsoWithoutDefaultRoute {
				t.Errorf("%s: eth1 has flags %v, also_without_default_route %v; want signal, true", p.File, p.Flags, p.AlsoWithoutDefaultRoute)
			}
			if cfg.AddAddrAccepted != (policy.Limit{Value: 0}) {
				t.Errorf("add_addr_accepted = %v, want 0 on a server", cfg.AddAddrAccepted)
			}
		}},
		{"metered", func(t *testing.T, cfg *policy.Config) {
			p := match(t, cfg, "wwan0")
			if !p.Ignore {
				t.Errorf("%s: the metered wwan0 is not ignored", p.File)
			}
			if ok, _ := p.Wants(policy.Addr{Prefix: netip.MustParsePrefix("203.0.113.7/24")}, true); ok {
				t.Errorf("%s: wwan0 would get an endpoint", p.File)
			}
			if p := match(t, cfg, "eth0"); p.Ignore || p.Flags != genl.FlagSubflow {
				t.Errorf("%s: eth0 has flags %v (ignore %v), want subflow", p.File, p.Flags, p.Ignore)
			}
		}},
		{"proxy-client", func(t *testing.T, cfg *policy.Config) {
			if len(cfg.Proxies) != 1 || cfg.Proxies[0].Role != policy.ProxyClient || len(cfg.Proxies[0].Via)+len(cfg.Proxies[0].Backup) != 0 {
				t.Fatalf("proxies %+v, want one client taking its paths from interfaces.d", cfg.Proxies)
			}
			if p := match(t, cfg, "wwan0"); p.Flags&genl.FlagBackup == 0 {
				t.Errorf("%s: wwan0 has flags %v; the proxy's LTE path should be backup", p.File, p.Flags)
			}
		}},
		{"proxy-server", func(t *testing.T, cfg *policy.Config) {
			if len(cfg.Proxies) != 1 || cfg.Proxies[0].Role != policy.ProxyServer || len(cfg.Proxies[0].Announce) != 1 {
				t.Fatalf("proxies %+v, want one server announcing its second uplink", cfg.Proxies)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			main := filepath.Join("examples", tt.dir, "mptcpd-go.toml")
			cfg := load(t, main)
			if cfg.Embedded || len(cfg.Interfaces) == 0 {
				t.Fatalf("%s: loaded no interface files", main)
			}
			tt.check(t, cfg)
			policyCheck(t, main)
		})
	}
}

// TestDefaultConfig checks that mptcpd-go.toml and interfaces.d/ behave as
// the built-in defaults do, which installing them replaces.
func TestDefaultConfig(t *testing.T) {
	got := load(t, "mptcpd-go.toml")
	want, err := policy.LoadFS(fstest.MapFS{}, "")
	if err != nil || !want.Embedded {
		t.Fatalf("built-in defaults: %v (embedded %v)", err, want != nil && want.Embedded)
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(policy.Config{}, "Path", "PolicyDir", "PolicyDirMissing", "Embedded"),
		cmpopts.IgnoreFields(policy.Interface{}, "File"),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("mptcpd-go.toml with interfaces.d/ differs from the built-in defaults (-built-in +file):\n%s", diff)
	}
	policyCheck(t, "mptcpd-go.toml")
}

// unit is a parsed unit file: section, key, and each assignment's value in
// order.
type unit map[string]map[string][]string

// parseUnit reads a unit file as systemd does for what the tests need:
// sections, key=value, comments, and lines continued with a backslash.
func parseUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	var cont strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont.Len() == 0 && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(l + " ")
			continue
		}
		line = cont.String() + line
		cont.Reset()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a section or key=value: %q", file, n, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is a key's effective value for single-valued settings.
func (u unit) last(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// runtimeDir is where the unit lets the daemon write: /run/RuntimeDirectory.
func runtimeDir(t *testing.T) string {
	t.Helper()
	return "/run/" + parseUnit(t, unitFile).last("Service", "RuntimeDirectory")
}

func TestUnit(t *testing.T) {
	u := parseUnit(t, unitFile)
	svc := func(key string) string { return u.last("Service", key) }
	for key, want := range map[string]string{
		"Type":                     "notify", // the daemon sends READY=1
		"NotifyAccess":             "main",
		"User":                     "mptcpd-go", // mptcpd-go.sysusers creates it
		"RuntimeDirectory":         "mptcpd-go",
		"RuntimeDirectoryMode":     "0755", // the socket's group must reach it
		"RuntimeDirectoryPreserve": "yes",  // the state file outlives restarts
	} {
		if got := svc(key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if w := svc("WatchdogSec"); w == "" || w == "0" || w == "infinity" {
		t.Errorf("WatchdogSec=%q: the daemon pings the watchdog, set a timeout", w)
	}
	if f := strings.Fields(svc("ExecStart")); len(f) < 2 || f[0] != binPath || f[1] != "daemon" {
		t.Errorf("ExecStart=%q, want %s daemon", svc("ExecStart"), binPath)
	}
	if r := svc("ExecReload"); r == "" {
		t.Error("no ExecReload: systemctl reload would not reach the daemon")
	} else if f := strings.Fields(r); slices.Contains(f, "reload") {
		if i := slices.Index(f, "--socket"); i < 0 || i+1 >= len(f) || f[i+1] != policy.DefaultControlSocket {
			t.Errorf("ExecReload=%q does not name the default control socket %s", r, policy.DefaultControlSocket)
		}
	}
	if d := path.Dir(policy.DefaultControlSocket); d != runtimeDir(t) {
		t.Errorf("the default control socket is in %s, but RuntimeDirectory makes %s", d, runtimeDir(t))
	}
	for _, key := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		var caps []string
		for _, v := range u["Service"][key] {
			caps = append(caps, strings.Fields(v)...)
		}
		if !slices.Equal(caps, []string{"CAP_NET_ADMIN"}) {
			t.Errorf("%s=%v, want exactly CAP_NET_ADMIN", key, caps)
		}
	}
	families := strings.Fields(svc("RestrictAddressFamilies"))
	for _, f := range []string{"AF_NETLINK", "AF_UNIX"} {
		if !slices.Contains(families, f) {
			t.Errorf("RestrictAddressFamilies=%v lacks %s, which the daemon needs", families, f)
		}
	}
	// Settings that look like hardening but would break the daemon.
	if svc("ProcSubset") == "pid" {
		t.Error("ProcSubset=pid hides /proc/sys/net/mptcp/enabled, so the daemon would report no MPTCP")
	}
	for _, key := range []string{"PrivateNetwork", "PrivateUsers"} {
		if v := svc(key); v != "" && v != "no" && v != "false" {
			t.Errorf("%s=%s: the daemon must reach the host's network namespace with CAP_NET_ADMIN that counts there", key, v)
		}
	}
	if svc("DynamicUser") == "yes" {
		t.Error("DynamicUser=yes with RuntimeDirectoryPreserve= puts the socket under /run/private (0700), out of the group's reach")
	}
}

// TestSysusers checks that mptcpd-go.sysusers creates the unit's User= and
// Group= (a "u" line makes a group of the same name), and that
// systemd-sysusers accepts it.
func TestSysusers(t *testing.T) {
	const file = "mptcpd-go.sysusers"
	u := parseUnit(t, unitFile)
	user, group := u.last("Service", "User"), u.last("Service", "Group")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for l := range strings.Lines(string(data)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "u" {
			users = append(users, f[1])
		}
	}
	if !slices.Equal(users, []string{user}) || group != user {
		t.Errorf("%s creates users %v; the unit runs as %s:%s", file, users, user, group)
	}
	sysusers := need(t, "systemd-sysusers")
	// Installed as the README says, into a scratch root.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/sysusers.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/sysusers.d/mptcpd-go.conf"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sysusers, "--root="+root, "--dry-run").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Creating user '"+user+"'") {
		t.Errorf("systemd-sysusers --dry-run %s: %v\n%s", file, err, out)
	}
}

// need returns the path of one of systemd's tools, or skips the test (fails
// it with MPTCPD_REQUIRE_SYSTEMD=1).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		msg := tool + " is not installed (apt-get install systemd)"
		if os.Getenv(requireEnv) == "1" {
			t.Fatal(requireEnv + "=1 but " + msg)
		}
		t.Skip(msg + "; skipping systemd's own check")
	}
	return p
}

// exposureRE finds the score in systemd-analyze security's summary line.
var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)

func TestUnitSecurity(t *testing.T) {
	sa := need(t, "systemd-analyze")
	abs, err := filepath.Abs(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// --threshold is on the scale 0..100, ten times the exposure shown.
	threshold := strconv.Itoa(int(maxExposure * 10))
	cmd := exec.Command(sa, "security", "--offline=yes", "--no-pager", "--threshold="+threshold, abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in its output (%v)\n%s%s", err, out, stderr.Bytes())
	}
	exposure, _ := strconv.ParseFloat(string(m[1]), 64)
	if exposure > maxExposure || err != nil {
		t.Errorf("exposure %.1f, want at most %.1f (%v); the remaining exposures:\n%s", exposure, maxExposure, err, exposed(out))
	}
	if stderr.Len() > 0 {
		t.Errorf("systemd-analyze security complained:\n%s", stderr.Bytes())
	}
	t.Logf("exposure %.1f; remaining:\n%s", exposure, exposed(out))
}

// exposed returns the lines of settings that add to the exposure.
func exposed(out []byte) string {
	var b strings.Builder
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "✗") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestUnitVerify runs systemd-analyze verify on the unit installed into a
// scratch root, with the system's units and a stand-in for the binary, so
// that nothing is installed on this machine. Unknown or misspelt settings
// are only warned about by systemd, so any output fails the test.
func TestUnitVerify(t *testing.T) {
	sa := need(t, "systemd-analyze")
	var units string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			units = d
			break
		}
	}
	if units == "" {
		t.Skip("no systemd unit directory with sysinit.target to verify against")
	}
	root := t.TempDir()
	for _, d := range []string{"usr/lib/systemd", "etc/systemd/system", filepath.Dir(binPath[1:])} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// cp -a keeps the unit directory's alias symlinks.
	if out, err := exec.Command("cp", "-a", units, filepath.Join(root, "usr/lib/systemd/system")).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", units, err, out)
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system", unitFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, binPath), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	verify := func(what string) {
		out, err := exec.Command(sa, "verify", "--no-pager", "--man=no", "--root="+root, "/etc/systemd/system/"+unitFile).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify (%s): %v\n%s", what, err, out)
		}
	}
	verify("the unit")
	// The drop-ins for [[proxy]] tables and metrics_listen, one by one.
	dir := filepath.Join(root, "etc/systemd/system", unitFile+".d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range dropIns {
		dropin, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), dropin, 0o644); err != nil {
			t.Fatal(err)
		}
		verify("with " + name)
	}
}
