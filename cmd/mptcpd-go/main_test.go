package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/cli"
)

// build compiles the command once per test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mptcpd-go")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type run struct {
	Stdout, Stderr string
	Code           int
}

func runBin(t *testing.T, bin string, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return run{out.String(), errb.String(), code}
}

// TestExitStatus checks that the binary hands cli.Run's status to the
// process, including ip's 255.
func TestExitStatus(t *testing.T) {
	bin := build(t)
	tests := []struct {
		args []string
		want run
	}{
		{[]string{"help"}, run{Stderr: cli.Usage, Code: 255}},
		{[]string{"--help"}, run{Stdout: cli.Usage}},
		{nil, run{Stderr: cli.Usage, Code: 255}},
		{[]string{"endpoint", "add", "10.0.0.1", "id", "0"}, run{Code: 255}},
		{[]string{"-n", "mptcpd-go-no-such-netns", "endpoint", "show"}, run{Code: 255}},
	}
	for _, tt := range tests {
		got := runBin(t, bin, tt.args...)
		if tt.want.Stderr == "" && tt.want.Code != 0 {
			// Only the status matters here; the text is the cli tests' job.
			got.Stderr = ""
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("mptcpd-go %s mismatch (-want +got):\n%s", strings.Join(tt.args, " "), diff)
		}
	}
}

// TestMonitorSignal checks that monitor ends on SIGINT and SIGTERM with
// status 0 and a closed JSON array. It needs root and MPTCP.
func TestMonitorSignal(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root: needs a network namespace")
	}
	if c, err := genl.Dial(nil); err != nil {
		skipOrFail(t, fmt.Sprintf("no MPTCP path manager: %v", err))
	} else {
		c.Close()
	}
	bin := build(t)
	ns := fmt.Sprintf("mptcpd-main-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		var out, errb bytes.Buffer
		c := exec.Command(bin, "-n", ns, "-j", "monitor")
		c.Stdout, c.Stderr = &lockedBuffer{b: &out}, &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// "[" is printed once the subscription is in place.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.HasPrefix(c.Stdout.(*lockedBuffer).String(), "[") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := c.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := c.Wait()
		if err != nil {
			t.Errorf("monitor after %v: %v (stderr %q)", sig, err, errb.String())
		}
		if got := c.Stdout.(*lockedBuffer).String(); got != "[]\n" {
			t.Errorf("monitor -j after %v printed %q, want %q", sig, got, "[]\n")
		}
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("MPTCPD_REQUIRE_KERNEL") == "1" {
		t.Fatal("MPTCPD_REQUIRE_KERNEL=1 but " + why)
	}
	t.Skip(why)
}

// lockedBuffer lets the test read what the child wrote so far.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
