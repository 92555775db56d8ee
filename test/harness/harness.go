// Package harness builds throw-away network namespaces for integration
// tests of mptcpd-go.
//
// Everything is done in-process through netlink (vishvananda/netlink and
// vishvananda/netns); nothing shells out to ip(8) for set-up. Every object
// the harness creates is removed through t.Cleanup, so a failing or
// panicking test does not leave namespaces or links behind.
//
// Safety rules the package follows:
//
//   - Namespaces get unique names (NamePrefix + random hex), so tests may run
//     in parallel, also across several test binaries.
//   - The host's own network namespace is never modified: links are created
//     by netlink sockets that live inside the test namespaces, and sysctls are
//     written from a thread switched into the namespace.
//   - Test namespaces have no link to the outside world, and socket helpers
//     only accept literal IP addresses (no DNS), so no traffic can leave the
//     machine.
//
// Tests using the package need root and an MPTCP-capable kernel; call
// RequireKernel first.
package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NamePrefix starts the name of every namespace the harness creates, so
// leftovers (e.g. from a killed test binary) are easy to recognise and
// remove with `ip netns del`.
const NamePrefix = "mptcpdgo-"

// RequireKernelEnv is the environment variable that turns the skip in
// RequireKernel into a failure. CI sets it so that a misconfigured runner
// cannot silently skip every integration test.
const RequireKernelEnv = "MPTCPD_REQUIRE_KERNEL"

// netnsDir is where named network namespaces are bind-mounted; it is the
// same directory ip-netns(8) and vishvananda/netns use.
const netnsDir = "/run/netns"

// mptcpEnabledPath exists only when the running kernel was built with MPTCP.
const mptcpEnabledPath = "/proc/sys/net/mptcp/enabled"

// KernelAvailable reports whether the integration tests can run here: they
// need root (creating namespaces and links) and a kernel with MPTCP. When ok
// is false, reason says what is missing.
func KernelAvailable() (ok bool, reason string) {
	if euid := os.Geteuid(); euid != 0 {
		return false, fmt.Sprintf("needs root to create network namespaces (euid is %d)", euid)
	}
	if _, err := os.Stat(mptcpEnabledPath); err != nil {
		return false, fmt.Sprintf("kernel lacks MPTCP support (%s: %v)", mptcpEnabledPath, err)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return false, fmt.Sprintf("kernel lacks network namespace support: %v", err)
	}
	return true, ""
}

// RequireKernel skips the test when KernelAvailable reports false, so that
// `go test ./...` stays green for unprivileged developers. When the
// environment variable MPTCPD_REQUIRE_KERNEL is "1" it fails the test
// instead, so CI notices when the tests did not really run.
func RequireKernel(t testing.TB) {
	t.Helper()
	ok, reason := KernelAvailable()
	if ok {
		return
	}
	if os.Getenv(RequireKernelEnv) == "1" {
		t.Fatalf("harness: %s (%s=1, so this is fatal)", reason, RequireKernelEnv)
	}
	t.Skipf("harness: %s (set %s=1 to fail instead of skipping)", reason, RequireKernelEnv)
}

// NS is a named network namespace owned by one test. It is created by NewNS
// and removed, together with everything inside it, when the test ends.
type NS struct {
	// Name is the namespace's name under /run/netns, so it can also be
	// inspected with `ip netns exec NAME ...` while debugging.
	Name string

	// Handle is a netlink handle whose sockets live inside the namespace,
	// for operations the helpers do not cover. The harness closes it.
	Handle *netlink.Handle

	// NsHandle is an open file descriptor of the namespace. The harness
	// closes it.
	NsHandle netns.NsHandle
}

// Path returns the namespace's bind-mount path, /run/netns/NAME, which
// other tools (ip -n, nsenter --net=) accept.
func (n *NS) Path() string {
	return filepath.Join(netnsDir, n.Name)
}

// NewNS creates a fresh named network namespace with lo up, and registers
// its removal with t.Cleanup. It fails the test on error.
func NewNS(t testing.TB) *NS {
	t.Helper()
	return newNS(t, "")
}

// newNS is NewNS with a readable label appended to the unique name, so that
// `ip netns list` while debugging shows which side is which.
func newNS(t testing.TB, label string) *NS {
	t.Helper()
	n, err := createNS(uniqueName(label))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	// Registered before anything else can fail, so the namespace is
	// removed even if the rest of the set-up below fails the test.
	t.Cleanup(func() {
		if err := n.destroy(); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	if err := n.setup(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	return n
}

// Open is NewNS for programs without a testing.TB, such as the benchmarks:
// it creates a namespace named NamePrefix + random hex + "-" + label with lo
// up. The caller removes it with Close.
func Open(label string) (*NS, error) {
	n, err := createNS(uniqueName(label))
	if err != nil {
		return nil, err
	}
	if err := n.setup(); err != nil {
		return nil, errors.Join(err, n.destroy())
	}
	return n, nil
}

// Close removes a namespace made by Open.
func (n *NS) Close() error { return n.destroy() }

// setup opens the netlink handle and brings lo up.
func (n *NS) setup() error {
	// Creating the handle from a thread inside the namespace (rather than
	// netlink.NewHandleAt) keeps the thread-switching in one place, Do,
	// which refuses to hand back a thread stuck in the wrong namespace.
	err := n.Do(func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("creating netlink handle: %w", err)
		}
		n.Handle = h
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns %s: %w", n.Name, err)
	}
	// A new namespace has lo down; many things (binding to 127.0.0.1,
	// local routes for the addresses we add) expect it up.
	return n.linkUp("lo")
}

// uniqueName returns NamePrefix plus 48 random bits (and the label), which
// makes clashes between parallel tests and test binaries negligible.
func uniqueName(label string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails since Go 1.24.
	name := NamePrefix + hex.EncodeToString(b[:])
	if label != "" {
		name += "-" + label
	}
	return name
}

// createNS creates the named namespace. netns.NewNamed moves the calling
// thread into the new namespace, so it runs on a dedicated, locked
// goroutine that moves back before unlocking; if moving back fails the
// goroutine exits still locked and the runtime discards the thread.
func createNS(name string) (*NS, error) {
	path := filepath.Join(netnsDir, name)
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		// Never adopt (and later delete) somebody else's namespace.
		return nil, fmt.Errorf("creating netns %s: %s already exists or cannot be checked (%v)", name, path, err)
	}

	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{h: netns.None(), err: fmt.Errorf("getting current netns: %w", err)}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if err != nil {
			err = fmt.Errorf("netns.NewNamed: %w", err)
		}
		// NewNamed may fail after it already unshared, so always move back.
		if serr := netns.Set(orig); serr != nil {
			// Stay locked: the thread dies with this goroutine.
			ch <- result{h: h, err: errors.Join(err, fmt.Errorf("switching thread back to the original netns: %w", serr))}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{h: h, err: err}
	}()
	res := <-ch
	if res.err != nil {
		if res.h.IsOpen() {
			_ = res.h.Close()
		}
		// Best effort: NewNamed can leave the mount point behind. The Lstat
		// above showed the name was free, so whatever is there is ours.
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return nil, fmt.Errorf("creating netns %s: %w", name, res.err)
	}
	return &NS{Name: name, NsHandle: res.h}, nil
}

// destroy closes the handles and unmounts the namespace. The kernel frees
// the namespace, and the links in it, once the last reference is gone.
func (n *NS) destroy() error {
	if n.Handle != nil {
		n.Handle.Close()
		n.Handle = nil
	}
	var errs []error
	if n.NsHandle.IsOpen() {
		if err := n.NsHandle.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing netns %s handle: %w", n.Name, err))
		}
	}
	if err := netns.DeleteNamed(n.Name); err != nil {
		errs = append(errs, fmt.Errorf("deleting netns %s: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// Do runs fn on an OS thread switched into the namespace and returns fn's
// error. Sockets fn creates stay in the namespace after Do returns.
//
// fn runs on a dedicated goroutine locked to its thread: goroutines it
// starts run on other threads, i.e. NOT in the namespace, and it must not
// call t.FailNow (return an error instead). If switching back fails the
// goroutine exits still locked, so the runtime throws the thread away
// instead of reusing it in the wrong namespace. A panic in fn is re-raised
// in the caller.
func (n *NS) Do(fn func() error) error {
	if !n.NsHandle.IsOpen() {
		return fmt.Errorf("netns %s is already closed", n.Name)
	}
	type result struct {
		err      error
		panicked bool
		value    any
	}
	ch := make(chan result, 1)
	go func() {
		res := result{panicked: true}
		defer func() {
			if res.panicked {
				res.value = recover()
			}
			ch <- res
		}()
		res.err = n.doLocked(fn)
		res.panicked = false
	}()
	res := <-ch
	if res.panicked {
		if res.value == nil {
			// recover returns nil only for runtime.Goexit, e.g. t.FailNow.
			return fmt.Errorf("function run in netns %s called runtime.Goexit (t.FailNow?); return an error instead", n.Name)
		}
		panic(res.value)
	}
	return res.err
}

// doLocked does the switching for Do on the current goroutine.
func (n *NS) doLocked(fn func() error) (err error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(n.NsHandle); err != nil {
		// setns failed, so the thread is still where it was: safe to reuse.
		runtime.UnlockOSThread()
		return fmt.Errorf("switching thread into netns %s: %w", n.Name, err)
	}
	// Deferred so that it also runs when fn panics.
	defer func() {
		if serr := netns.Set(orig); serr != nil {
			// Keep the thread locked so it dies with the goroutine.
			err = errors.Join(err, fmt.Errorf("switching thread back from netns %s: %w", n.Name, serr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}
