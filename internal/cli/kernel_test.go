package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// requireKernel skips the test unless it can drive a real MPTCP kernel and
// iproute2's ip; with MPTCPD_REQUIRE_KERNEL=1 it fails instead.
func requireKernel(t *testing.T) {
	t.Helper()
	skip := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("MPTCPD_REQUIRE_KERNEL") == "1" {
			t.Fatalf("MPTCPD_REQUIRE_KERNEL=1 but "+format, a...)
		}
		t.Skipf(format, a...)
	}
	if os.Geteuid() != 0 {
		skip("not root: network namespaces need CAP_SYS_ADMIN")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("iproute2's ip is not installed: %v", err)
	}
	c, err := genl.Dial(nil)
	if err != nil {
		skip("no MPTCP path manager: %v", err)
	}
	c.Close()
	if out, err := exec.Command("ip", "mptcp", "limits", "show").CombinedOutput(); err != nil {
		skip("ip has no working mptcp command: %v: %s", err, out)
	}
}

// newNetns creates a network namespace with a unique name, removed when the
// test ends however it ends.
func newNetns(t *testing.T, tag string) string {
	t.Helper()
	name := fmt.Sprintf("mptcpd-cli-%s-%d-%d", tag, os.Getpid(), time.Now().UnixNano()%1e9)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	for _, args := range [][]string{
		{"-n", name, "link", "set", "lo", "up"},
		{"-n", name, "addr", "add", "10.0.0.4/32", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return name
}

type outcome struct {
	Stdout string
	Code   int
}

func runIP(t *testing.T, ns string, opts, cmd []string) outcome {
	t.Helper()
	args := append(append(append([]string{"-n", ns}, opts...), "mptcp"), cmd...)
	var out bytes.Buffer
	c := exec.Command("ip", args...)
	c.Stdout = &out
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ip %s: %v", strings.Join(args, " "), err)
	}
	return outcome{out.String(), code}
}

func runReal(ns string, opts, cmd []string) outcome {
	var out, errb bytes.Buffer
	env := DefaultEnv(strings.NewReader(""), &out, &errb, "test")
	code := Run(context.Background(), env, append(append([]string{"-n", ns}, opts...), cmd...))
	return outcome{out.String(), code}
}

// TestKernelMatchesIP runs the same commands with ip and with this package
// in two fresh namespaces and compares stdout byte for byte and the exit
// status. Only what iproute2 6.1 knows is used (no laminar, implicit or id
// 0 checks, no JSON limits).
func TestKernelMatchesIP(t *testing.T) {
	requireKernel(t)
	nsIP, nsGo := newNetns(t, "ip"), newNetns(t, "go")
	steps := []string{
		"endpoint show",
		"-j | endpoint show",
		"-j -p | endpoint show",
		"limits",
		"endpoint add 10.0.0.1 signal",
		"endpoint add 10.0.0.2 subflow backup fullmesh id 7",
		"endpoint add 10.0.0.4 dev lo signal port 1234",
		"e a 2001:db8::1 signal",
		"endpoint add 10.0.0.5 dev lo subflow",
		"endpoint add 10.8 id 010",
		"endpoint show",
		"-j | endpoint show",
		"-j -p | endpoint show",
		"endpoint show id 7",
		"-j | endpoint show id 8",
		"-j -p | e s i 9",
		"endpoint",
		"endpoint change id 7 nobackup",
		"endpoint change 10.0.0.1 backup",
		"endpoint change id 1 signal",
		"endpoint show",
		"endpoint add 10.0.0.1",
		"endpoint add 10.0.0.6 id 7",
		"endpoint add 10.0.0.6 signal fullmesh",
		"endpoint add 10.0.0.6 port 5",
		"endpoint add foo",
		"endpoint add 10.0.0.6 dev nosuchdev",
		"endpoint add 10.0.0.4 signal port 1234 id 30",
		"endpoint add 10.0.0.99 signal port 1235",
		"endpoint add 10.0.0.11",
		"endpoint add 10.0.0.12",
		"endpoint add 10.0.0.13",
		"endpoint add 10.0.0.14",
		"endpoint show",
		"endpoint delete id 1",
		"endpoint delete id 1",
		"endpoint delete 10.0.0.2",
		"endpoint delete id 0 10.0.0.9",
		"endpoint delete id 7 10.0.0.2",
		"endpoint show id 99",
		"endpoint show",
		"limits set subflows 3 add_addr_accepted 4",
		"limits show",
		"l s a 1",
		"limits",
		"limits set subflows 9",
		"limits set foo 1",
		"limits show",
		"endpoint flush",
		"endpoint show",
		"-j | endpoint show",
		"-j -p | endpoint show",
		"endpoint foo",
	}
	for i, step := range steps {
		var opts []string
		cmd := step
		if o, c, ok := strings.Cut(step, " | "); ok {
			opts, cmd = strings.Fields(o), c
		}
		want := runIP(t, nsIP, opts, strings.Fields(cmd))
		got := runReal(nsGo, opts, strings.Fields(cmd))
		if diff := cmpOutcome(want, got); diff != "" {
			t.Errorf("step %d %q: mptcpd-go differs from ip (-ip +mptcpd-go):\n%s", i, step, diff)
		}
	}
}

func cmpOutcome(want, got outcome) string {
	if want == got {
		return ""
	}
	return fmt.Sprintf("- stdout %q exit %d\n+ stdout %q exit %d", want.Stdout, want.Code, got.Stdout, got.Code)
}
