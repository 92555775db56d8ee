package daemon

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// nopKernel is a path manager with nothing in it that accepts everything.
type nopKernel struct{}

func (nopKernel) Endpoints() ([]genl.Endpoint, error)              { return nil, nil }
func (nopKernel) AddEndpoint(genl.Endpoint) error                  { return nil }
func (nopKernel) DeleteEndpoint(uint8) error                       { return nil }
func (nopKernel) SetEndpointFlags(genl.Endpoint, genl.Flags) error { return nil }
func (nopKernel) Limits() (genl.Limits, error)                     { return genl.Limits{}, nil }
func (nopKernel) SetLimits(genl.LimitsUpdate) error                { return nil }

// staticSource is a Source whose snapshot never changes.
type staticSource struct{ snap endpoints.Snapshot }

func (s staticSource) Snapshot() endpoints.Snapshot { return s.snap.Clone() }
func (staticSource) Changed() <-chan struct{}       { return nil }
func (staticSource) Refresh() error                 { return nil }

// notifyListener listens on a unixgram socket, sets NOTIFY_SOCKET to it
// for the test and returns a function that reads the next message.
func notifyListener(t *testing.T) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading a notification: %v", err)
		}
		return string(buf[:n])
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReload: a broken policy is refused as a whole and the old one stays
// in force, with the error in the status; a fixed one replaces it. systemd
// hears RELOADING=1 and READY=1 either way.
func TestReload(t *testing.T) {
	next := notifyListener(t)
	dir := t.TempDir()
	main := filepath.Join(dir, "mptcpd-go.toml")
	ifile := filepath.Join(dir, "interfaces.d", "10-eth.toml")
	writeFile(t, main, "control_socket = \""+filepath.Join(dir, "ctl.sock")+"\"\n")
	writeFile(t, ifile, "[match]\nname = [\"eth*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = true\n")
	cfg, err := policy.Load(main)
	if err != nil {
		t.Fatal(err)
	}
	snap := endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0", addr("192.0.2.1/24"))}}
	level := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	d := &daemon{path: main, cfg: cfg, log: zap.NewNop(), level: level}
	d.rec, err = endpoints.NewReconciler(endpoints.Config{Kernel: nopKernel{}, Source: staticSource{snap}, Desired: d.desired})
	if err != nil {
		t.Fatal(err)
	}
	flagsNow := func() genl.Flags {
		t.Helper()
		ws, _ := d.desired(snap)
		if len(ws) != 1 {
			t.Fatalf("wants %+v, want one", ws)
		}
		return ws[0].Flags
	}
	monotonic := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`)

	// Broken: signal and fullmesh, on line 4.
	writeFile(t, ifile, "[match]\nname = [\"eth*\"]\n[endpoint]\nflags = [\"signal\", \"fullmesh\"]\n")
	err = d.reload()
	if err == nil {
		t.Fatal("reload of a broken policy succeeded")
	}
	if !strings.Contains(err.Error(), ifile+":4:9: ") {
		t.Errorf("reload error %q does not name %s:4:9", err, ifile)
	}
	var perrs policy.Errors
	if !errors.As(err, &perrs) {
		t.Errorf("reload error %v does not wrap policy.Errors", err)
	}
	if d.config() != cfg {
		t.Errorf("a refused reload replaced the policy")
	}
	if got := flagsNow(); got != genl.FlagSubflow {
		t.Errorf("after a refused reload the flags are %v, want subflow", got)
	}
	if msg := next(); !monotonic.MatchString(msg) {
		t.Errorf("first notification %q, want RELOADING=1 with MONOTONIC_USEC", msg)
	}
	if msg := next(); msg != "READY=1" {
		t.Errorf("second notification %q, want READY=1", msg)
	}
	d.mu.Lock()
	rerr := d.reloadErr
	d.mu.Unlock()
	if rerr == nil || !strings.Contains(rerr.Error(), ifile+":4:9: ") {
		t.Errorf("the daemon keeps reload error %v, want the policy's", rerr)
	}
	st := buildStatus(d.config(), snap, d.rec.Status(), rerr)
	if !strings.HasPrefix(st.ReloadError, ifile+":4:9: flags:") {
		t.Errorf("status last_reload_error = %q", st.ReloadError)
	}

	// Fixed, with another log level.
	writeFile(t, main, "log_level = \"debug\"\ncontrol_socket = \""+filepath.Join(dir, "ctl.sock")+"\"\n")
	writeFile(t, ifile, "[match]\nname = [\"eth*\"]\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nalso_without_default_route = true\n")
	if err := d.reload(); err != nil {
		t.Fatalf("reload of the fixed policy: %v", err)
	}
	if d.config() == cfg {
		t.Errorf("the fixed policy did not replace the old one")
	}
	if got := flagsNow(); got != genl.FlagSubflow|genl.FlagBackup {
		t.Errorf("after the reload the flags are %v, want subflow backup", got)
	}
	if got := level.Level(); got != zapcore.DebugLevel {
		t.Errorf("log level %v after the reload, want debug", got)
	}
	d.mu.Lock()
	rerr = d.reloadErr
	d.mu.Unlock()
	if rerr != nil {
		t.Errorf("a successful reload kept the old error: %v", rerr)
	}
	if msg := next(); !monotonic.MatchString(msg) {
		t.Errorf("notification %q, want RELOADING=1 with MONOTONIC_USEC", msg)
	}
	if msg := next(); msg != "READY=1" {
		t.Errorf("notification %q, want READY=1", msg)
	}
}

// TestRunPolicyErrors: Run refuses a policy it cannot load before it
// touches anything, with every error.
func TestRunPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.toml")
	err := Run(t.Context(), Options{ConfigPath: missing, Logger: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), missing+": no such file") {
		t.Errorf("Run with a missing explicit config = %v, want a no-such-file error naming it", err)
	}

	main := filepath.Join(dir, "mptcpd-go.toml")
	writeFile(t, main, "mode = \"kernal\"\n[limits]\nsubflows = 9\n")
	err = Run(t.Context(), Options{ConfigPath: main, Logger: zap.NewNop()})
	var perrs policy.Errors
	if !errors.As(err, &perrs) {
		t.Fatalf("Run with a broken config = %v, want policy.Errors", err)
	}
	var got []string
	for _, e := range perrs {
		got = append(got, e.Error()[:strings.Index(e.Error(), ": ")])
	}
	if diff := cmp.Diff([]string{main + ":1:8", main + ":3:12"}, got); diff != "" {
		t.Errorf("error positions mismatch (-want +got):\n%s", diff)
	}

	writeFile(t, main, "mode = \"userspace\"\ncontrol_socket = \""+filepath.Join(dir, "ctl.sock")+"\"\n")
	// An empty SysctlDir: Run must fail before it switches this (the
	// test's own) namespace to the userspace path manager.
	err = Run(t.Context(), Options{ConfigPath: main, Logger: zap.NewNop(), SysctlDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "path manager") {
		t.Errorf("Run in userspace mode without the sysctl = %v, want a path manager error", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "ctl.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run created its control socket although it refused to start (Lstat: %v)", err)
	}
}
