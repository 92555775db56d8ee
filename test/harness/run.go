package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// Run runs the program name with args inside the namespace, waits for it
// and returns its output and exit code. The process is started from a
// thread switched into the namespace, so it inherits that namespace (only
// the network namespace: it shares the host's mount namespace, unlike
// `ip netns exec`, so /sys shows the host's devices).
//
// A non-zero exit is reported through exitCode, not err; exitCode is -1
// when the process was killed by a signal, e.g. because ctx was done. err
// reports only that the harness could not start (or wait for) the process.
func (n *NS) Run(ctx context.Context, name string, args ...string) (stdout, stderr string, exitCode int, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	// fork/exec happens on the calling (locked, switched) thread, and the
	// child keeps the namespace; waiting can happen from anywhere.
	if err := n.Do(cmd.Start); err != nil {
		return "", "", -1, fmt.Errorf("starting %s in netns %s: %w", name, n.Name, err)
	}
	werr := cmd.Wait()
	if exitErr := (*exec.ExitError)(nil); werr != nil && !errors.As(werr, &exitErr) {
		return outBuf.String(), errBuf.String(), cmd.ProcessState.ExitCode(), fmt.Errorf("waiting for %s in netns %s: %w", name, n.Name, werr)
	}
	return outBuf.String(), errBuf.String(), cmd.ProcessState.ExitCode(), nil
}
