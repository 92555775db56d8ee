package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/mptcpd-go/mptcpd-go/policy"
)

// The tests of this package do not run in parallel: listenControl changes
// the process's umask for a moment, which would change the mode of files
// other tests create meanwhile (the daemon calls it before it starts any
// goroutine).

// fakeHandler answers control requests with canned values.
type fakeHandler struct {
	mu        sync.Mutex
	st        Status
	reloadErr error
	reloads   int
}

func (h *fakeHandler) status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

func (h *fakeHandler) reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reloads++
	return h.reloadErr
}

func (h *fakeHandler) reloadCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reloads
}

// serveControl listens on path with h and serves until the test ends; it
// checks then that Run returned nil and removed the socket.
func serveControl(t *testing.T, path string, h handler) *controlServer {
	t.Helper()
	s, err := listenControl(path, h, zap.NewNop())
	if err != nil {
		t.Fatalf("listenControl: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controlServer.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("controlServer.Run did not return after its context ended")
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the control socket is still there after the server stopped (Lstat: %v)", err)
		}
	})
	return s
}

// socketPath returns a socket path in a fresh temporary directory.
func socketPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "control.sock")
}

func TestControlStatusRoundTrip(t *testing.T) {
	path := socketPath(t)
	h := &fakeHandler{st: representativeStatus(t)}
	serveControl(t, path, h)
	got, err := QueryStatus(path)
	if err != nil {
		t.Fatalf("QueryStatus: %v", err)
	}
	if diff := cmp.Diff(representativeStatus(t), got); diff != "" {
		t.Errorf("QueryStatus mismatch (-want +got):\n%s", diff)
	}
	if n := h.reloadCount(); n != 0 {
		t.Errorf("status caused %d reloads", n)
	}
}

func TestControlReload(t *testing.T) {
	path := socketPath(t)
	h := &fakeHandler{}
	serveControl(t, path, h)
	if err := RequestReload(path); err != nil {
		t.Fatalf("RequestReload: %v", err)
	}
	if n := h.reloadCount(); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
}

func TestControlReloadError(t *testing.T) {
	path := socketPath(t)
	perr := policy.Errors{
		{File: "/etc/mptcpd-go/interfaces.d/10-a.toml", Line: 4, Col: 9, Msg: `flags: "signal" and "fullmesh" cannot be combined`},
		{File: "/etc/mptcpd-go/interfaces.d/20-b.toml", Line: 1, Col: 1, Msg: "no [match] table"},
	}
	h := &fakeHandler{reloadErr: perr}
	serveControl(t, path, h)
	err := RequestReload(path)
	if err == nil {
		t.Fatal("RequestReload succeeded, want the handler's error")
	}
	for _, e := range perr {
		if !strings.Contains(err.Error(), e.Error()) {
			t.Errorf("RequestReload error does not contain %q:\n%v", e.Error(), err)
		}
	}
	if !strings.Contains(err.Error(), "reload refused by the daemon") {
		t.Errorf("RequestReload error does not say the daemon refused: %v", err)
	}
	if n := h.reloadCount(); n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
}

func TestControlUnknownCommand(t *testing.T) {
	path := socketPath(t)
	h := &fakeHandler{}
	serveControl(t, path, h)
	_, err := call(path, "restart")
	if err == nil || !strings.Contains(err.Error(), `unknown command "restart": want status or reload`) {
		t.Errorf("call(restart) = %v, want an unknown-command error", err)
	}
	if n := h.reloadCount(); n != 0 {
		t.Errorf("an unknown command caused %d reloads", n)
	}
}

func TestControlBadRequest(t *testing.T) {
	path := socketPath(t)
	serveControl(t, path, &fakeHandler{})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("status please\n")); err != nil {
		t.Fatal(err)
	}
	var r response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&r); err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if r.OK || !strings.HasPrefix(r.Error, "bad request: ") || r.Status != nil {
		t.Errorf("response = %+v, want a bad-request error", r)
	}
}

func TestControlSocketMode(t *testing.T) {
	// The socket's directory does not exist yet: it is created 0755.
	dir := filepath.Join(t.TempDir(), "run", "mptcpd-go")
	path := filepath.Join(dir, "control.sock")
	serveControl(t, path, &fakeHandler{})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is %v, want a socket", path, fi.Mode().Type())
	}
	if got := fi.Mode().Perm(); got != 0o660 {
		t.Errorf("socket mode %#o, want 0660", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Up to the umask, which 0755 does not usually meet.
	if got := di.Mode().Perm(); got&^0o755 != 0 {
		t.Errorf("socket directory mode %#o, want at most 0755", got)
	}
	// The process's umask is back to what it was: a new file gets the
	// same mode as one created before listenControl.
	before := filepath.Join(t.TempDir(), "before")
	after := filepath.Join(dir, "after")
	for _, p := range []string{before, after} {
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	bi, _ := os.Stat(before)
	ai, _ := os.Stat(after)
	if bi.Mode().Perm() != ai.Mode().Perm() {
		t.Errorf("a file created after listenControl has mode %#o, one created before %#o: the umask was not restored",
			ai.Mode().Perm(), bi.Mode().Perm())
	}
}

func TestControlSecondListenFails(t *testing.T) {
	path := socketPath(t)
	h := &fakeHandler{st: Status{PID: 1}}
	serveControl(t, path, h)
	s, err := listenControl(path, &fakeHandler{}, zap.NewNop())
	if err == nil {
		s.ln.Close()
		t.Fatal("a second listenControl on a live socket succeeded")
	}
	if !strings.Contains(err.Error(), "is another mptcpd-go daemon running?") || !strings.Contains(err.Error(), path) {
		t.Errorf("second listenControl: %v, want it to name the socket and ask about another daemon", err)
	}
	// The first server is unharmed.
	st, err := QueryStatus(path)
	if err != nil {
		t.Fatalf("QueryStatus after the failed second listen: %v", err)
	}
	if st.PID != 1 {
		t.Errorf("the status came from someone else: %+v", st)
	}
}

func TestControlStaleSocketReplaced(t *testing.T) {
	path := socketPath(t)
	// A socket file nobody listens on, as a killed daemon leaves behind.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket file is missing: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket accepts connections")
	}
	h := &fakeHandler{st: Status{PID: 7}}
	serveControl(t, path, h)
	st, err := QueryStatus(path)
	if err != nil {
		t.Fatalf("QueryStatus on the replaced socket: %v", err)
	}
	if st.PID != 7 {
		t.Errorf("status PID %d, want 7", st.PID)
	}
}

func TestControlNoDaemon(t *testing.T) {
	path := socketPath(t)
	_, err := QueryStatus(path)
	if err == nil || !strings.Contains(err.Error(), "is `mptcpd-go daemon` running?") {
		t.Errorf("QueryStatus without a daemon = %v, want a hint to start it", err)
	}
	err = RequestReload(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("RequestReload without a daemon = %v, want an error naming the socket", err)
	}
}

// TestControlConcurrent: several clients at once, each gets its answer.
func TestControlConcurrent(t *testing.T) {
	path := socketPath(t)
	h := &fakeHandler{st: Status{PID: 99, Summary: "in sync"}}
	serveControl(t, path, h)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 10 {
		wg.Go(func() {
			st, err := QueryStatus(path)
			if err == nil && st.PID != 99 {
				err = errors.New("wrong status")
			}
			errs <- err
		})
		wg.Go(func() { errs <- RequestReload(path) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := h.reloadCount(); n != 10 {
		t.Errorf("%d reloads, want 10", n)
	}
}

// TestControlRefusesToReplaceNonSocket: a control_socket that names a file
// or a directory is an error, and the file stays.
func TestControlRefusesToReplaceNonSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "precious")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "subdir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, sub} {
		s, err := listenControl(path, &fakeHandler{}, zap.NewNop())
		if err == nil {
			s.ln.Close()
			t.Errorf("listenControl(%s) succeeded", path)
			continue
		}
		if !strings.Contains(err.Error(), "is not a socket") {
			t.Errorf("listenControl(%s) = %v, want a not-a-socket error", path, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the file is gone or changed: %q, %v", b, err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Errorf("the directory is gone: %v", err)
	}
}
