package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/bench/internal/proc"
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

// managerFlag is the hidden flag that turns the binary into a path manager
// process for one namespace.
const managerFlag = "manager-ns"

// resultPrefix starts the line on which a manager process reports its
// counters and trace when it stops.
const resultPrefix = "RESULT "

// managerResult is what a re-exec'd manager process reports.
type managerResult struct {
	Counters pathmgr.Counters `json:"counters"`
	Trace    traceSummary     `json:"trace"`
}

// managerOptions configure a path manager process.
type managerOptions struct {
	ns          string // namespace name
	signalIface string // interface whose address the server side announces
	maxSubflows int
	workers     int
	readBuffer  int
	cpuProfile  string // file for a CPU profile of the process
}

// addFlags declares the manager process's flags on fs.
func (o *managerOptions) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ns, managerFlag, "", "internal: run pathmgr.Manager for this namespace")
	fs.StringVar(&o.signalIface, "manager-signal", "", "internal: announce this interface's address (server side)")
	fs.IntVar(&o.maxSubflows, "manager-max-subflows", 0, "internal: pathmgr.Config.MaxSubflows")
	fs.IntVar(&o.workers, "manager-workers", 0, "internal: pathmgr.ManagerConfig.Workers")
	fs.IntVar(&o.readBuffer, "manager-rcvbuf", 8<<20, "internal: event socket receive buffer")
	fs.StringVar(&o.cpuProfile, "manager-cpuprofile", "", "internal: write a CPU profile to this file")
}

// args are the flags that start a manager process with o.
func (o *managerOptions) args() []string {
	a := []string{"--" + managerFlag, o.ns, "--manager-max-subflows", fmt.Sprint(o.maxSubflows),
		"--manager-workers", fmt.Sprint(o.workers), "--manager-rcvbuf", fmt.Sprint(o.readBuffer)}
	if o.signalIface != "" {
		a = append(a, "--manager-signal", o.signalIface)
	}
	if o.cpuProfile != "" {
		a = append(a, "--manager-cpuprofile", o.cpuProfile)
	}
	return a
}

// runManager is the manager process: pathmgr.Manager with the throughput
// preset for one namespace, wired like the daemon would (genl client per
// worker, event subscription, address watcher, sock_diag lister). It
// reports READY=1 on $NOTIFY_SOCKET after the start-up rebuild, stops on
// SIGTERM, SIGINT or when stdin closes (the parent died), and then prints
// its counters and a trace of its latency (see tracer) on stdout.
func runManager(o managerOptions) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()

	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zapcore.WarnLevel)
	logCfg.Encoding = "console"
	logCfg.Sampling = nil
	log, err := logCfg.Build()
	if err != nil {
		return fmt.Errorf("logger: %w", err)
	}
	log = log.Named(o.ns)

	policy := pathmgr.Config{Preset: pathmgr.PresetThroughput, MaxSubflows: o.maxSubflows}
	if o.signalIface != "" {
		policy.Interfaces = []pathmgr.IfaceRule{{Names: []string{o.signalIface}, Signal: true}}
	}
	// Blocking sockets, as the daemon uses in userspace mode.
	gcfg := &genl.Config{NetNS: o.ns, Blocking: true}
	client, err := genl.Dial(gcfg)
	if err != nil {
		return fmt.Errorf("genl in netns %s: %w", o.ns, err)
	}
	defer client.Close()
	sub, err := client.Subscribe(&genl.SubscribeOptions{ReadBuffer: o.readBuffer})
	if err != nil {
		return fmt.Errorf("subscribe in netns %s: %w", o.ns, err)
	}
	nsh, err := netns.GetFromName(o.ns)
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("open netns %s: %w", o.ns, err)
	}
	defer nsh.Close()
	w, err := endpoints.NewWatcher(endpoints.WatcherConfig{NetNS: &nsh, Logger: log})
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("address watcher in netns %s: %w", o.ns, err)
	}
	defer w.Close()
	dc, err := diag.Dial(&diag.Config{NetNS: o.ns})
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("sock_diag in netns %s: %w", o.ns, err)
	}
	defer dc.Close()
	tr := newTracer()
	m, err := pathmgr.NewManager(pathmgr.ManagerConfig{
		Policy: policy, Kernel: tracedKernel{client, tr}, Events: tracedEvents{sub, tr}, Source: w, Lister: dc,
		Logger: log, Workers: o.workers,
		NewKernel: func() (pathmgr.Kernel, error) {
			c, err := genl.Dial(gcfg)
			if err != nil {
				return nil, err
			}
			return tracedKernel{c, tr}, nil
		},
	})
	if err != nil {
		_ = sub.Close()
		return fmt.Errorf("path manager: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return m.Run(gctx) })
	g.Go(func() error {
		// Ready once the start-up rebuild is done: from then on every
		// new connection is seen.
		for m.Status().LastRebuild.IsZero() {
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(5 * time.Millisecond):
			}
		}
		if _, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
			return fmt.Errorf("notify readiness: %w", err)
		}
		return nil
	})
	err = g.Wait()
	res := managerResult{Trace: tr.summary()}
	res.Counters, _ = m.Counts()
	b, _ := json.Marshal(res)
	fmt.Printf("%s%s\n", resultPrefix, b)
	_ = log.Sync()
	return err
}

// managerKind says how the userspace path manager runs.
type managerKind string

const (
	kindDaemon  managerKind = "daemon"
	kindProcess managerKind = "re-exec"
)

// managerSpec is one path manager process to start.
type managerSpec struct {
	kind       managerKind
	label      string // "client" or "server", for names and messages
	ns         *nstopo.NS
	opts       managerOptions
	daemon     string // the mptcpd-go binary (kindDaemon)
	dir        string // scratch directory for sockets and config files
	gomaxprocs int    // GOMAXPROCS of the process, 0 to leave it
}

// managerProc is a running path manager process.
type managerProc struct {
	spec   managerSpec
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr *proc.TailBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// startManager starts a path manager process and waits until it is
// ready (READY=1 on the notify socket), it exits, or timeout passes.
func startManager(ctx context.Context, spec managerSpec, timeout time.Duration) (*managerProc, error) {
	notifyPath := filepath.Join(spec.dir, "notify-"+spec.label+".sock")
	_ = os.Remove(notifyPath)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	defer notify.Close()

	p := &managerProc{spec: spec, stderr: &proc.TailBuffer{Max: 64 << 10}, exited: make(chan struct{})}
	var cmd *exec.Cmd
	switch spec.kind {
	case kindDaemon:
		cfg, err := writeDaemonConfig(spec)
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(spec.daemon, "daemon", "--config", cfg)
	default:
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
		cmd = exec.Command(self, spec.opts.args()...)
	}
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath)
	if spec.gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", spec.gomaxprocs))
	}
	cmd.Stdout = &p.stdout
	cmd.Stderr = p.stderr
	// Own process group: a Ctrl-C reaches only the benchmark, which then
	// stops the managers in order. No Pdeathsig: it fires when the thread
	// that forked exits, and the namespace-switching threads do; the
	// re-exec'd manager stops when its stdin closes instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("manager stdin: %w", err)
	}
	p.cmd = cmd
	// Started from a thread in the namespace, as `ip netns exec` would:
	// the daemon works in its own namespace. The re-exec'd manager names
	// its namespace explicitly and would not need it.
	if err := spec.ns.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("start %s path manager (%s): %w", spec.label, spec.kind, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				ready <- err
				return
			}
			for l := range strings.SplitSeq(string(buf[:n]), "\n") {
				if l == "READY=1" {
					ready <- nil
					return
				}
			}
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-ready:
		if err == nil {
			return p, nil
		}
		_ = p.kill()
		return nil, fmt.Errorf("%s path manager (%s): notify socket: %w", spec.label, spec.kind, err)
	case <-p.exited:
		return nil, fmt.Errorf("%s path manager (%s) exited before it was ready (%v): %s", spec.label, spec.kind, p.err, p.stderr.LastLines(5))
	case <-timer.C:
		_ = p.kill()
		return nil, fmt.Errorf("%s path manager (%s) not ready within %v: %s", spec.label, spec.kind, timeout, p.stderr.LastLines(5))
	case <-ctx.Done():
		_ = p.kill()
		return nil, ctx.Err()
	}
}

// pid is the manager process's id.
func (p *managerProc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to stop (SIGTERM and EOF on stdin) and waits for
// it; it returns what the re-exec'd manager prints, if anything.
func (p *managerProc) stop() (*managerResult, error) {
	var res *managerResult
	if p.spec.kind == kindDaemon {
		// The daemon reports over its control socket, so ask first.
		if c, err := daemonCounters(p.spec); err == nil {
			res = &managerResult{Counters: *c}
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("%s path manager did not stop within 15s; killed", p.spec.label)
	}
	sc := bufio.NewScanner(bytes.NewReader(p.stdout.Bytes()))
	sc.Buffer(nil, 64<<20) // the trace line holds every connection
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			var r managerResult
			if err := json.Unmarshal([]byte(rest), &r); err == nil {
				res = &r
			}
		}
	}
	if p.err != nil {
		return res, fmt.Errorf("%s path manager: %w: %s", p.spec.label, p.err, p.stderr.LastLines(5))
	}
	return res, nil
}

// kill ends the process at once.
func (p *managerProc) kill() error {
	_ = p.cmd.Process.Kill()
	_ = p.stdin.Close()
	<-p.exited
	return nil
}

// warnings returns the process's log lines at warn level and above.
func (p *managerProc) warnings() []string {
	var out []string
	for l := range strings.SplitSeq(p.stderr.String(), "\n") {
		if strings.Contains(l, "\tWARN\t") || strings.Contains(l, "\tERROR\t") {
			out = append(out, l)
		}
	}
	return out
}

// writeDaemonConfig writes the main file and an interface file for the
// real daemon in userspace mode. In that mode interfaces no file matches
// are never used, and the veth links have no default route: the client's
// file takes every veth with also_without_default_route, the server's
// marks the path-2 interface signal.
func writeDaemonConfig(spec managerSpec) (string, error) {
	dir := filepath.Join(spec.dir, spec.label+".d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("daemon config: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode = \"userspace\"\npreset = \"throughput\"\n")
	if spec.opts.maxSubflows > 0 {
		fmt.Fprintf(&b, "max_subflows = %d\n", spec.opts.maxSubflows)
	}
	fmt.Fprintf(&b, "policy_dir = %q\ncontrol_socket = %q\nstate_file = %q\nlog_level = \"warn\"\n",
		dir, daemonSocket(spec), filepath.Join(spec.dir, spec.label+".state.json"))
	iface := "[match]\nname = [\"veth*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = true\n"
	if spec.opts.signalIface != "" {
		iface = fmt.Sprintf("[match]\nname = [%q]\n[endpoint]\nflags = [\"signal\"]\nalso_without_default_route = true\n", spec.opts.signalIface)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-bench.toml"), []byte(iface), 0o644); err != nil {
		return "", fmt.Errorf("daemon config: %w", err)
	}
	path := filepath.Join(spec.dir, spec.label+".toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("daemon config: %w", err)
	}
	return path, nil
}

// daemonSocket is the daemon's control socket.
func daemonSocket(spec managerSpec) string { return filepath.Join(spec.dir, spec.label+".sock") }

// daemonCounters asks the daemon for its path manager counters with
// `mptcpd-go status -j`.
func daemonCounters(spec managerSpec) (*pathmgr.Counters, error) {
	out, err := exec.Command(spec.daemon, "status", "-j", "--socket", daemonSocket(spec)).Output()
	if err != nil {
		return nil, fmt.Errorf("mptcpd-go status: %w", err)
	}
	type actions struct {
		CreateSubflow  uint64 `json:"create_subflow"`
		DestroySubflow uint64 `json:"destroy_subflow"`
		Announce       uint64 `json:"announce"`
		Remove         uint64 `json:"remove"`
		SetBackup      uint64 `json:"set_backup"`
	}
	var st struct {
		PM *struct {
			Events     uint64  `json:"events"`
			EventsLost uint64  `json:"events_lost"`
			Rebuilds   uint64  `json:"rebuilds"`
			Actions    actions `json:"actions"`
			Failures   actions `json:"failures"`
		} `json:"path_manager"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("mptcpd-go status: %w", err)
	}
	if st.PM == nil {
		return nil, fmt.Errorf("mptcpd-go status: no path_manager section")
	}
	conv := func(a actions) pathmgr.ActionCounts {
		return pathmgr.ActionCounts{CreateSubflow: a.CreateSubflow, DestroySubflow: a.DestroySubflow, Announce: a.Announce, Remove: a.Remove, SetBackup: a.SetBackup}
	}
	return &pathmgr.Counters{Events: st.PM.Events, EventsLost: st.PM.EventsLost, Rebuilds: st.PM.Rebuilds,
		Actions: conv(st.PM.Actions), Failures: conv(st.PM.Failures)}, nil
}

// buildDaemon builds cmd/mptcpd-go into dir with the go tool, from the
// module the benchmark runs in.
func buildDaemon(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "mptcpd-go")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/mptcpd-go/mptcpd-go/cmd/mptcpd-go")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mptcpd-go: %w: %s", err, bytes.TrimSpace(b))
	}
	return out, nil
}
