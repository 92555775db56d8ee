package test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// pollInterval is how often the daemon tests look at the kernel or the
// daemon while waiting for a state; no test asserts on how long it takes.
const pollInterval = 10 * time.Millisecond

// daemonSetup is a namespace for a daemon under test, a peer namespace for
// the other ends of its veths, and a temporary directory with its policy,
// control socket, state file and logs (never the default /run paths).
type daemonSetup struct {
	ns, peer *harness.NS
	dir      string
	config   string // the main file
	socket   string // control_socket
	state    string // state_file
	gc       *genl.Client
	starts   atomic.Int32
}

// newDaemonSetup creates the namespaces and writes the main file (with
// control_socket, state_file and log_level set, then mainExtra) and the
// interface files, name → text, into interfaces.d.
func newDaemonSetup(t *testing.T, mainExtra string, ifaces map[string]string) *daemonSetup {
	t.Helper()
	cli(t)
	s := &daemonSetup{ns: harness.NewNS(t), peer: harness.NewNS(t), dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "mptcpd-go.toml")
	s.socket = filepath.Join(s.dir, "control.sock")
	s.state = filepath.Join(s.dir, "state.json")
	s.writeMain(t, mainExtra)
	for name, text := range ifaces {
		s.writeIface(t, name, text)
	}
	s.gc = harness.DialGenl(t, s.ns)
	return s
}

// writeMain (re)writes the main file.
func (s *daemonSetup) writeMain(t *testing.T, extra string) {
	t.Helper()
	text := fmt.Sprintf("control_socket = %q\nstate_file = %q\nlog_level = \"debug\"\n%s", s.socket, s.state, extra)
	writeTestFile(t, s.config, text)
}

// ifacePath is the path of the interface file name.
func (s *daemonSetup) ifacePath(name string) string {
	return filepath.Join(s.dir, "interfaces.d", name)
}

// writeIface (re)writes an interface file.
func (s *daemonSetup) writeIface(t *testing.T, name, text string) {
	t.Helper()
	writeTestFile(t, s.ifacePath(name), text)
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write and rename, so a daemon reloading meanwhile never reads half.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// veth creates a veth pair named name on both sides, the daemon's end in
// s.ns, and returns its ifindex there.
func (s *daemonSetup) veth(t *testing.T, name string) int {
	t.Helper()
	harness.Veth(t, s.ns, name, s.peer, name)
	return s.ns.LinkIndex(t, name)
}

// ipMptcp runs "ip -n NS mptcp args..." and fails the test unless it
// exits 0.
func (s *daemonSetup) ipMptcp(t *testing.T, args ...string) {
	t.Helper()
	r := run(t, nil, "ip", append([]string{"-n", s.ns.Name, "mptcp"}, args...)...)
	if r.Code != exitOK {
		t.Fatalf("ip -n %s mptcp %s: %v", s.ns.Name, strings.Join(args, " "), r)
	}
}

// endpoints returns the kernel's endpoints, sorted by address and port.
func (s *daemonSetup) endpoints(t *testing.T) []genl.Endpoint {
	t.Helper()
	eps, err := s.gc.Endpoints()
	if err != nil {
		t.Fatalf("listing endpoints in %s: %v", s.ns.Name, err)
	}
	slices.SortFunc(eps, func(a, b genl.Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return eps
}

// limits returns the kernel's limits.
func (s *daemonSetup) limits(t *testing.T) genl.Limits {
	t.Helper()
	l, err := s.gc.Limits()
	if err != nil {
		t.Fatalf("reading limits in %s: %v", s.ns.Name, err)
	}
	return l
}

// ep is an expected endpoint (the id is the kernel's choice).
func ep(addr string, flags genl.Flags, ifindex int) genl.Endpoint {
	return genl.Endpoint{Addr: netip.MustParseAddr(addr), Flags: flags, Ifindex: ifindex}
}

// withoutIDs returns eps with the ids cleared.
func withoutIDs(eps []genl.Endpoint) []genl.Endpoint {
	out := slices.Clone(eps)
	for i := range out {
		out[i].ID = 0
	}
	return out
}

// daemonProc is a running `mptcpd-go daemon` inside a daemonSetup's
// namespace.
type daemonProc struct {
	s    *daemonSetup
	cmd  *exec.Cmd
	log  string        // file with its stdout and stderr
	done chan struct{} // closed when it exited
	err  error         // from Wait, valid after done
}

// start starts the daemon with the setup's main file and env added to the
// environment. It is killed (SIGKILL) when the test ends if it still runs;
// its log is shown when the test failed.
func (s *daemonSetup) start(t *testing.T, env ...string) *daemonProc {
	t.Helper()
	return s.startArgs(t, env, "daemon", "--config", s.config)
}

// startArgs starts mptcpd-go with args inside the namespace, as start does.
func (s *daemonSetup) startArgs(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	n := s.starts.Add(1)
	p := &daemonProc{s: s, log: filepath.Join(s.dir, fmt.Sprintf("daemon-%d.log", n)), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	p.cmd = exec.Command(cli(t), args...)
	p.cmd.Env = append(daemonEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// fork happens on a thread switched into the namespace: the daemon
	// and all its threads live there (see harness.NS.Run).
	if err := s.ns.Do(p.cmd.Start); err != nil {
		t.Fatalf("starting mptcpd-go %s in %s: %v", strings.Join(args, " "), s.ns.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(testTimeout):
				t.Errorf("daemon pid %d did not die of SIGKILL", p.cmd.Process.Pid)
			}
		}
		log := p.logText()
		checkNoRace(t, "mptcpd-go daemon", log)
		if t.Failed() {
			t.Logf("log of mptcpd-go %s (pid %d):\n%s", strings.Join(args, " "), p.cmd.Process.Pid, indent(log))
		}
	})
	return p
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *daemonProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// fatalf fails the test with the daemon's state.
func (p *daemonProc) fatalf(t *testing.T, format string, args ...any) {
	t.Helper()
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	t.Fatalf("%s\n(daemon pid %d %s)", fmt.Sprintf(format, args...), p.cmd.Process.Pid, state)
}

// waitFor polls cond until it reports true, failing the test when the
// deadline passes or the daemon exits first. cond's string describes the
// state it saw, for the failure message.
func (p *daemonProc) waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if p.exited() {
			p.fatalf(t, "the daemon exited while waiting for %s; last state:\n%s", what, indent(state))
		}
		if time.Now().After(deadline) {
			p.fatalf(t, "timed out after %v waiting for %s; last state:\n%s", testTimeout, what, indent(state))
		}
		time.Sleep(pollInterval)
	}
}

// status asks the daemon for its status over the control socket.
func (p *daemonProc) status(t *testing.T) daemon.Status {
	t.Helper()
	st, err := daemon.QueryStatus(p.s.socket)
	if err != nil {
		p.fatalf(t, "status: %v", err)
	}
	return st
}

// waitReady waits until the daemon answers on its control socket.
func (p *daemonProc) waitReady(t *testing.T) daemon.Status {
	t.Helper()
	var st daemon.Status
	p.waitFor(t, "the control socket", func() (bool, string) {
		var err error
		st, err = daemon.QueryStatus(p.s.socket)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if st.PID != p.cmd.Process.Pid {
		p.fatalf(t, "the daemon on %s has pid %d, want %d: another daemon?", p.s.socket, st.PID, p.cmd.Process.Pid)
	}
	return st
}

// waitStatus polls the status until cond accepts it.
func (p *daemonProc) waitStatus(t *testing.T, what string, cond func(daemon.Status) bool) daemon.Status {
	t.Helper()
	var st daemon.Status
	p.waitFor(t, what, func() (bool, string) {
		var err error
		st, err = daemon.QueryStatus(p.s.socket)
		if err != nil {
			return false, err.Error()
		}
		return cond(st), fmt.Sprintf("%+v", st)
	})
	return st
}

// waitReconciledSince waits until the daemon finished a reconcile that
// started after since (something must trigger one).
func (p *daemonProc) waitReconciledSince(t *testing.T, since time.Time) daemon.Status {
	t.Helper()
	return p.waitStatus(t, "a reconcile", func(st daemon.Status) bool {
		return st.LastReconcile.After(since)
	})
}

// waitEndpoints waits until the kernel's endpoints, ids aside, are want
// (in any order), and returns them with their ids, sorted by address.
func (p *daemonProc) waitEndpoints(t *testing.T, want ...genl.Endpoint) []genl.Endpoint {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b genl.Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	var got []genl.Endpoint
	p.waitFor(t, "the endpoints", func() (bool, string) {
		got = p.s.endpoints(t)
		diff := gocmp.Diff(want, withoutIDs(got), cmpNetip(), cmpopts.EquateEmpty())
		return diff == "", "endpoints (-want +got):\n" + diff
	})
	return got
}

// waitLimits waits until the kernel's limits are want.
func (p *daemonProc) waitLimits(t *testing.T, want genl.Limits) {
	t.Helper()
	p.waitFor(t, "the limits", func() (bool, string) {
		got := p.s.limits(t)
		return got == want, fmt.Sprintf("limits %+v, want %+v", got, want)
	})
}

// signal sends sig to the daemon.
func (p *daemonProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.fatalf(t, "sending %v: %v", sig, err)
	}
}

// wait waits for the daemon to exit and returns its exit status (-1 when a
// signal killed it).
func (p *daemonProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(testTimeout):
		p.fatalf(t, "the daemon did not exit within %v", testTimeout)
	}
	var exitErr *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exitErr) {
		t.Fatalf("waiting for the daemon: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends sig and waits for a clean exit (status 0).
func (p *daemonProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.signal(t, sig)
	if code := p.wait(t); code != exitOK {
		t.Fatalf("the daemon exited with status %d after %v, want 0 (%v)", code, sig, p.cmd.ProcessState)
	}
	if _, err := os.Lstat(p.s.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the control socket %s is still there after a clean stop (Lstat: %v)", p.s.socket, err)
	}
}

// runInNS runs mptcpd-go with args inside ns (not through -n: `daemon`
// and `policy check` work in the namespace they run in) and returns what
// it gave.
func runInNS(t *testing.T, ns *harness.NS, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), args...)
	cmd.Env = daemonEnv()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("starting mptcpd-go %s in %s: %v", strings.Join(args, " "), ns.Name, err)
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running mptcpd-go %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("mptcpd-go %s did not finish within %v; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), testTimeout, stdout.String(), stderr.String())
	}
	checkNoRace(t, "mptcpd-go "+strings.Join(args, " "), stderr.String())
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
}

// mptcpdgoHost runs mptcpd-go with args in the test's own namespace (for
// status and reload, which reach the daemon through its socket).
func mptcpdgoHost(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, cli(t), args...)
}

// daemonEnv is subprocessEnv without what systemd sets for its services,
// in case the tests run under systemd: the daemons under test must talk to
// the test's notification socket or to none.
func daemonEnv() []string {
	return slices.DeleteFunc(subprocessEnv(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			return true
		}
		return false
	})
}

// waitRunning waits until the links are operationally up in ns (IFF_RUNNING
// follows the carrier a moment after harness.Veth set both ends up), so
// that output which mentions link state is predictable.
func waitRunning(t *testing.T, ns *harness.NS, names ...string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for _, name := range names {
		for {
			l, err := ns.Handle.LinkByName(name)
			if err != nil {
				t.Fatalf("looking up %s in %s: %v", name, ns.Name, err)
			}
			if l.Attrs().RawFlags&unix.IFF_RUNNING != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s in %s is not running after %v", name, ns.Name, testTimeout)
			}
			time.Sleep(pollInterval)
		}
	}
}
