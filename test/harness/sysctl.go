package harness

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Sysctl writes value to the sysctl key (e.g. "net.mptcp.enabled", or the
// slash form "net/ipv4/conf/eth0.100/rp_filter" for names containing dots)
// inside the namespace. It fails the test on error.
//
// The file is opened from a thread switched into the namespace because
// /proc/sys/net resolves to the opener's namespace. Only net.* keys are
// accepted: other sysctls are global, and writing them would change the
// host.
func (n *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	if err := n.writeSysctl(key, value); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// ReadSysctl returns the value of the sysctl key inside the namespace, with
// surrounding white space trimmed. Any key may be read. It fails the test on
// error.
func (n *NS) ReadSysctl(t testing.TB, key string) string {
	t.Helper()
	v, err := n.readSysctl(key)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return v
}

// WriteSysctl is Sysctl returning its error, for programs without a
// testing.TB.
func (n *NS) WriteSysctl(key, value string) error { return n.writeSysctl(key, value) }

func (n *NS) writeSysctl(key, value string) error {
	path, err := sysctlPath(key)
	if err != nil {
		return fmt.Errorf("writing sysctl in netns %s: %w", n.Name, err)
	}
	if !strings.HasPrefix(path, "/proc/sys/net/") {
		return fmt.Errorf("writing sysctl %q in netns %s: only net.* keys are per-namespace, refusing to change the host", key, n.Name)
	}
	err = n.Do(func() error {
		// No O_CREATE/O_TRUNC: a missing key must fail, not be created.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(value); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("writing sysctl %s=%q in netns %s: %w", key, value, n.Name, err)
	}
	return nil
}

func (n *NS) readSysctl(key string) (string, error) {
	path, err := sysctlPath(key)
	if err != nil {
		return "", fmt.Errorf("reading sysctl in netns %s: %w", n.Name, err)
	}
	var b []byte
	err = n.Do(func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s in netns %s: %w", key, n.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// sysctlPath maps a sysctl key to its file under /proc/sys, the way
// sysctl(8) does: dots separate components unless the key contains a slash.
// Empty, "." and ".." components are rejected so a key cannot escape
// /proc/sys.
func sysctlPath(key string) (string, error) {
	sep := "."
	if strings.Contains(key, "/") {
		sep = "/"
	}
	parts := strings.Split(key, sep)
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("invalid sysctl key %q", key)
		}
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}
