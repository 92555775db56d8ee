package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// testTimeout bounds every wait for the kernel, a connection or a
// subprocess, so that a broken product fails a test instead of hanging the
// binary. It is generous because -race and parallel tests slow things down;
// no test asserts on timing.
const testTimeout = 30 * time.Second

// Exit codes of ip(8) and mptcpd-go.
const (
	exitOK     = 0
	exitKernel = 2   // the kernel refused the request
	exitUsage  = 255 // the command line is wrong
)

// dialGenl returns a genl client bound to the namespace by name, closed

// cmpNetip lets cmp compare the net/netip types, which have unexported
// fields, with ==.
func cmpNetip() cmp.Option {
	return cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})
}

// u32 returns a pointer to v, for genl.LimitsUpdate.
func u32(v uint32) *uint32 { return &v }

// addr parses an IP literal, panicking on a typo in the test itself.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// result is what one run of a command gave.
type result struct {
	Stdout, Stderr string
	Code           int
}

// run runs name with args (no namespace switch: callers pass -n NAME)
// with a deadline, and returns its output and exit code. stdin, if not
// nil, is fed to the process.
func run(t testing.TB, stdin []byte, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = subprocessEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %s: %v", cmdline(name, args), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; stdout:\n%s\nstderr:\n%s", cmdline(name, args), testTimeout, stdout.String(), stderr.String())
	}
	checkNoRace(t, cmdline(name, args), stderr.String())
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// subprocessEnv is the environment of the commands the tests run: the
// test's own, plus, for a race-enabled mptcpd-go, no pause at exit (the
// race runtime sleeps a second by default, which would make every command
// take that long).
func subprocessEnv() []string {
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), "GORACE="+gorace)
}

// checkNoRace fails the test when a race-enabled command reported a data
// race (its exit status shows that only when it would have exited 0).
func checkNoRace(t testing.TB, what, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race:\n%s", what, indent(stderr))
	}
}

// cmdline renders a command for failure messages.
func cmdline(name string, args []string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

// mptcpdgo runs "mptcpd-go -n NS args...".
func mptcpdgo(t testing.TB, ns *harness.NS, args ...string) result {
	t.Helper()
	return run(t, nil, cli(t), append([]string{"-n", ns.Name}, args...)...)
}

// mustMptcpdgo runs "mptcpd-go -n NS args..." and fails the test unless it
// exits 0. It returns stdout.
func mustMptcpdgo(t testing.TB, ns *harness.NS, args ...string) string {
	t.Helper()
	r := mptcpdgo(t, ns, args...)
	if r.Code != exitOK {
		t.Fatalf("mptcpd-go -n %s %s: exit %d, want 0\nstdout:\n%s\nstderr:\n%s",
			ns.Name, strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// describe renders a result for failure messages.
func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, indent(r.Stdout), indent(r.Stderr))
}

// indent prefixes every line with a tab, so multi-line output stands out in
// a failure message; it shows empty output as (empty).
func indent(s string) string {
	if s == "" {
		return "\t(empty)"
	}
	return "\t" + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n\t")
}
