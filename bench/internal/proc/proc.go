// Package proc holds what the benchmark programs need around the
// processes they run: a bounded buffer for a child's output and a context
// that ends on the first Ctrl-C.
package proc

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

// TailBuffer keeps the last Max bytes written to it; safe for concurrent
// use, so it can be a child process's Stderr.
type TailBuffer struct {
	Max int

	mu sync.Mutex
	b  []byte
}

// Write implements io.Writer.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.Max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// LastLines returns up to n last non-empty lines, joined by " | ".
func (t *TailBuffer) LastLines(n int) string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(t.String()), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}

// InterruptContext ends on the first SIGINT or SIGTERM, so the benchmark
// can clean up; a second one ends the process without cleaning up.
func InterruptContext() context.Context {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx
}

// CheckRootMPTCP says why a benchmark cannot run here: it needs root (does
// says what for) and a kernel with MPTCP; script is the wrapper that
// builds as the user and runs the benchmark with sudo.
func CheckRootMPTCP(does, script string) error {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Errorf("must run as root (it %s); euid is %d\n  try %s, which builds as you and runs the benchmark with sudo", does, euid, script)
	}
	if _, err := os.Stat("/proc/sys/net/mptcp/enabled"); err != nil {
		return fmt.Errorf("this kernel has no MPTCP (%w)", err)
	}
	return nil
}
