// Package daemon is `mptcpd-go daemon`: it keeps the kernel's MPTCP
// endpoints and limits equal to what the policy files say for the links and
// addresses that exist, serves status on a control socket, reloads the
// policy on SIGHUP and talks to systemd (sd_notify, watchdog).
//
// The pieces come from elsewhere: policy/ parses the files, endpoints/
// watches links and reconciles, genl/ talks to the kernel. This package
// wires them together; Decide is the one place where policy meets the
// system's state.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/metrics"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// ErrNoMPTCP is returned when the kernel cannot do MPTCP here.
var ErrNoMPTCP = errors.New("MPTCP is not available")

// Options configure Run.
type Options struct {
	// ConfigPath is the main policy file; "" means policy.DefaultPath, with
	// the built-in default policy when it does not exist.
	ConfigPath string
	// Stderr receives the log when Logger is nil.
	Stderr io.Writer
	// Logger, when set, is used instead of one built from the policy's
	// log_level and log_format.
	Logger *zap.Logger
	// Signals makes Run handle SIGHUP (reload) and SIGTERM/SIGINT (stop).
	Signals bool
	// ResyncInterval overrides the reconciler's periodic resync (tests).
	ResyncInterval time.Duration
	// SysctlDir overrides /proc/sys/net/mptcp, where userspace mode
	// selects the path manager (tests).
	SysctlDir string
	// CheckKernel replaces the check for kernel MPTCP, CheckKernel
	// (tests).
	CheckKernel func() error
	// NetlinkReceiveBuffer sets the receive buffer, in bytes, of the
	// rtnetlink subscriptions and (userspace mode) of the MPTCP event
	// socket; 0 keeps the defaults. Tests make it tiny so that event
	// floods overflow it (ENOBUFS) and the resync paths run.
	NetlinkReceiveBuffer int
}

// subscribeBuffer is the event socket's receive buffer in userspace mode:
// an overflow costs a rebuild from sock_diag.
const subscribeBuffer = 8 << 20

// startUserspace selects the userspace path manager in this namespace and
// builds the Manager. restore puts the previous path manager back; on an
// error it has been put back already.
func (d *daemon) startUserspace(client *genl.Client, dir string, rcvbuf int) (pm *pathmgr.Manager, restore func() error, err error) {
	if dir == "" {
		dir = sysctlDir
	}
	if rcvbuf == 0 {
		rcvbuf = subscribeBuffer
	}
	// Subscribed before the switch, so no event of a new connection is
	// missed. The event reader and the workers wait in blocking system
	// calls: that answers a new connection several times sooner than the
	// runtime's poller does (bench/upm).
	evClient, err := genl.Dial(&genl.Config{Blocking: true})
	if err != nil {
		return nil, nil, fmt.Errorf("open the MPTCP path manager for events: %w", err)
	}
	sub, err := evClient.Subscribe(&genl.SubscribeOptions{ReadBuffer: rcvbuf})
	// The subscription has a socket of its own.
	_ = evClient.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe to MPTCP events: %w", err)
	}
	dc, err := diag.Dial(nil)
	if err != nil {
		sub.Close()
		return nil, nil, fmt.Errorf("open sock_diag to list MPTCP connections: %w", err)
	}
	setting, err := useUserspacePM(dir)
	if err != nil {
		sub.Close()
		dc.Close()
		return nil, nil, err
	}
	d.log.Info("userspace path manager selected for new connections", zap.String("sysctl", setting.file), zap.String("previous", setting.prev))
	restore = func() error {
		err := setting.restore()
		if err == nil {
			d.log.Info("path manager sysctl restored", zap.String("sysctl", setting.file), zap.String("value", setting.prev))
		}
		return errors.Join(err, dc.Close())
	}
	d.src = newPolicySource(d.watcher, d.config)
	pm, err = pathmgr.NewManager(pathmgr.ManagerConfig{
		Policy:    PathManagerConfig(d.config(), d.src.kind),
		Kernel:    client,
		NewKernel: func() (pathmgr.Kernel, error) { return genl.Dial(&genl.Config{Blocking: true}) },
		Events:    sub,
		Source:    d.src,
		Lister:    dc,
		Logger:    d.log.Named("pathmgr"),
	})
	if err != nil {
		sub.Close()
		return nil, nil, errors.Join(fmt.Errorf("start the userspace path manager: %w", err), restore())
	}
	if usable := countAddrs(d.src.Snapshot()); usable == 0 {
		// Otherwise the daemon runs and silently opens no subflow at all.
		d.log.Warn("no interface has an address the policy lets the path manager use, so no extra subflows will be opened; check the files in policy_dir (and also_without_default_route when there is no default route)")
	}
	return pm, restore, nil
}

// countAddrs counts the addresses of a snapshot's links.
func countAddrs(s endpoints.Snapshot) int {
	n := 0
	for _, l := range s.Links {
		n += len(l.Addrs)
	}
	return n
}

// mptcpEnabledPath is the per-namespace switch; it exists only with MPTCP.
const mptcpEnabledPath = "/proc/sys/net/mptcp/enabled"

// CheckKernel says in plain words why MPTCP cannot be managed here, or
// returns nil.
func CheckKernel() error {
	b, err := os.ReadFile(mptcpEnabledPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: this kernel was built without MPTCP (no %s); mptcpd-go's userspace data path gives multipath without kernel support: run `mptcpd-go proxy`, or declare [[proxy]] tables in the main policy file for the daemon to run", ErrNoMPTCP, mptcpEnabledPath)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", mptcpEnabledPath, err)
	}
	if strings.TrimSpace(string(b)) == "0" {
		return fmt.Errorf("%w: MPTCP is disabled in this network namespace (net.mptcp.enabled=0); enable it with: sysctl -w net.mptcp.enabled=1", ErrNoMPTCP)
	}
	return nil
}

// daemon is one running instance.
type daemon struct {
	path  string
	log   *zap.Logger
	level zap.AtomicLevel

	watcher *endpoints.Watcher
	// At most one of rec (kernel mode) and pm (userspace mode) is set;
	// neither when the kernel has no MPTCP and only proxies run.
	rec  *endpoints.Reconciler
	pm   *pathmgr.Manager
	src  *policySource
	mode policy.Mode
	// running are the [[proxy]] tables' proxies; the metrics read their
	// counters.
	running []runningProxy

	mu        sync.Mutex
	cfg       *policy.Config
	reloadErr error
}

// Run runs the daemon until ctx ends (or SIGTERM/SIGINT with
// Options.Signals), then removes the endpoints it owns unless the policy
// says on_stop = "keep".
func Run(ctx context.Context, opts Options) error {
	// Signals are caught from the start: the default action of SIGHUP and
	// SIGTERM ends the process at once, without the cleanup, so one sent
	// right after READY=1 (systemctl reload, a quick stop) must not arrive
	// before the handler exists. Those that come early wait in the channel.
	var sigs chan os.Signal
	if opts.Signals {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)
	}
	cfg, err := policy.Load(opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	rcvbuf := opts.NetlinkReceiveBuffer
	d := &daemon{path: opts.ConfigPath, cfg: cfg}
	log, level, err := newLogger(cfg, opts)
	if err != nil {
		return err
	}
	d.log, d.level = log, level
	defer log.Sync() //nolint:errcheck // nothing useful to do on a failed flush

	check := opts.CheckKernel
	if check == nil {
		check = CheckKernel
	}
	err = check()
	var client *genl.Client
	if err == nil {
		client, err = genl.Dial(nil)
		if errors.Is(err, genl.ErrMPTCPUnavailable) {
			err = fmt.Errorf("%w: %w", ErrNoMPTCP, err)
		} else if err != nil {
			return fmt.Errorf("open the MPTCP path manager: %w", err)
		}
	}
	if err != nil {
		if !errors.Is(err, ErrNoMPTCP) || len(cfg.Proxies) == 0 {
			return err
		}
		return d.runProxiesOnly(ctx, err, sigs)
	}
	defer client.Close()
	mode, why, err := ChooseMode(cfg, client.SupportsUserspacePM())
	if err != nil {
		return err
	}
	d.mode = mode
	log.Info("path manager chosen", zap.String("mode", string(mode)), zap.String("why", why))

	// The control socket first: it briefly changes the umask, which must
	// not race with other goroutines creating files.
	ctl, err := listenControl(cfg.ControlSocket, d, log)
	if err != nil {
		return err
	}
	d.watcher, err = endpoints.NewWatcher(endpoints.WatcherConfig{Logger: log, ReceiveBufferSize: rcvbuf})
	if err != nil {
		ctl.ln.Close()
		return err
	}
	defer d.watcher.Close()
	proxies, err := buildProxies(cfg, d.watcher.Snapshot(), log)
	if err != nil {
		ctl.ln.Close()
		return err
	}
	d.running = proxies
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var summary string
	if mode == policy.ModeUserspace {
		pm, restore, err := d.startUserspace(client, opts.SysctlDir, rcvbuf)
		if err != nil {
			ctl.ln.Close()
			return err
		}
		// Deferred calls run after g.Wait below: the manager has stopped.
		defer func() {
			if err := restore(); err != nil {
				log.Error("restoring the path manager sysctl failed", zap.Error(err))
			}
		}()
		d.pm = pm
		summary = "userspace path manager, preset " + cfg.Preset
	} else {
		d.rec, err = endpoints.NewReconciler(endpoints.Config{
			Kernel:         client,
			Source:         d.watcher,
			Desired:        d.desired,
			StatePath:      cfg.StateFile,
			ResyncInterval: opts.ResyncInterval,
			Logger:         log,
		})
		if err != nil {
			ctl.ln.Close()
			return err
		}
		if err := d.rec.Reconcile(ctx); err != nil {
			log.Warn("first reconcile had errors", zap.Error(err))
		}
		summary = d.rec.Status().Report.Summary
	}
	// Bound before READY=1, once the parts it reads exist: a port in use
	// fails the start instead of the first scrape.
	var msrv *metrics.Server
	if cfg.MetricsListen != "" {
		if msrv, err = d.listenMetrics(cfg.MetricsListen); err != nil {
			ctl.ln.Close()
			return err
		}
	}
	log.Info("mptcpd-go daemon started", zap.String("config", cfg.Path), zap.Bool("embedded_policy", cfg.Embedded),
		zap.String("control_socket", cfg.ControlSocket), zap.String("mode", string(mode)), zap.String("summary", summary))
	notify(log, sddaemon.SdNotifyReady, "STATUS="+d.statusLine())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.watcher.Run(gctx) })
	if d.pm != nil {
		g.Go(func() error { return d.pm.Run(gctx) })
	} else {
		g.Go(func() error { return d.rec.Run(gctx) })
	}
	g.Go(func() error { return ctl.Run(gctx) })
	if msrv != nil {
		g.Go(func() error { return msrv.Run(gctx) })
	}
	for _, p := range proxies {
		g.Go(func() error { return p.Run(gctx) })
	}
	resync := opts.ResyncInterval
	if resync == 0 {
		resync = endpoints.DefaultResyncInterval
	}
	g.Go(func() error { return d.watchdog(gctx, resync) })
	if opts.Signals {
		g.Go(func() error { return d.signals(gctx, stop, sigs) })
	}
	runErr := g.Wait()

	notify(log, sddaemon.SdNotifyStopping)
	log.Info("stopping")
	if d.rec != nil && d.config().OnStop != policy.StopKeep {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.rec.Cleanup(cctx); err != nil {
			log.Error("removing owned endpoints failed", zap.Error(err))
			runErr = errors.Join(runErr, err)
		}
	}
	return runErr
}

// desired is the reconciler's view of the policy in force.
func (d *daemon) desired(s endpoints.Snapshot) ([]endpoints.Want, endpoints.LimitsWant) {
	_, wants, limits := Decide(d.config(), s)
	return wants, limits
}

func (d *daemon) config() *policy.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// status implements handler.
func (d *daemon) status() Status {
	d.mu.Lock()
	cfg, rerr := d.cfg, d.reloadErr
	d.mu.Unlock()
	var rs endpoints.Status
	if d.rec != nil {
		rs = d.rec.Status()
	}
	st := buildStatus(cfg, d.watcher.Snapshot(), rs, rerr)
	st.PID = os.Getpid()
	st.Mode = string(d.mode)
	if d.pm != nil {
		ps := d.pm.Status()
		st.PathManager = pmStatus(ps)
		uses := map[int]string{}
		for _, ifc := range ps.Interfaces {
			uses[ifc.Index] = ifc.Use.String()
		}
		for i := range st.Interfaces {
			st.Interfaces[i].Use = uses[st.Interfaces[i].Index]
		}
	}
	return st
}

// reload implements handler: the new policy replaces the old one only when
// it is valid as a whole.
func (d *daemon) reload() error {
	notify(d.log, sddaemon.SdNotifyReloading, fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec()))
	defer notify(d.log, sddaemon.SdNotifyReady)
	cfg, err := policy.Load(d.path)
	d.mu.Lock()
	old := d.cfg
	if err == nil {
		d.cfg = cfg
	}
	d.reloadErr = err
	d.mu.Unlock()
	if err != nil {
		d.log.Error("reload refused, the previous policy stays in force", zap.Error(err))
		return fmt.Errorf("reload refused, the previous policy stays in force: %w", err)
	}
	if cfg.ControlSocket != old.ControlSocket || cfg.StateFile != old.StateFile || cfg.Mode != old.Mode ||
		cfg.LogFormat != old.LogFormat || cfg.MetricsListen != old.MetricsListen {
		d.log.Warn("control_socket, state_file, mode, log_format and metrics_listen changes take effect at the next restart")
	}
	if !proxiesEqual(cfg.Proxies, old.Proxies) {
		d.log.Warn("[[proxy]] changes take effect at the next restart")
	}
	if lvl, err := zapcore.ParseLevel(cfg.LogLevel); err == nil {
		d.level.SetLevel(lvl)
	}
	d.log.Info("policy reloaded", zap.String("config", cfg.Path), zap.Int("interface_files", len(cfg.Interfaces)))
	if d.pm != nil {
		// d.cfg is already the new policy, which the source filters with.
		if err := d.pm.SetConfig(PathManagerConfig(cfg, d.src.kind)); err != nil {
			d.log.Error("the path manager refused the policy", zap.Error(err))
			return fmt.Errorf("the path manager refused the policy: %w", err)
		}
		return nil
	}
	if d.rec != nil {
		d.rec.Trigger()
	}
	return nil
}

// signals turns SIGHUP into reloads and SIGTERM/SIGINT into a stop; ch is
// subscribed to them.
func (d *daemon) signals(ctx context.Context, stop context.CancelFunc, ch <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-ch:
			if sig == syscall.SIGHUP {
				_ = d.reload() // logged; the old policy stays
				continue
			}
			d.log.Info("signal received", zap.String("signal", sig.String()))
			stop()
			return nil
		}
	}
}

// watchdog pings systemd at half the WatchdogSec interval, and updates the
// status line, while the reconciler keeps making progress: it reconciles at
// least every resync interval, so a last reconcile older than two of them
// means it is stuck, and systemd should restart the daemon.
func (d *daemon) watchdog(ctx context.Context, resync time.Duration) error {
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// The path manager has no periodic work to watch; it ends
			// the daemon when it fails for good.
			if d.rec != nil {
				st := d.rec.Status()
				if resync > 0 && time.Since(st.LastReconcile) > 2*resync+every {
					d.log.Error("the reconciler is stuck; not answering the watchdog so systemd restarts the daemon",
						zap.Time("last_reconcile", st.LastReconcile))
					continue
				}
			}
			notify(d.log, sddaemon.SdNotifyWatchdog, "STATUS="+d.statusLine())
		}
	}
}

// notify sends state lines to systemd; it does nothing outside systemd.
func notify(log *zap.Logger, lines ...string) {
	if _, err := sddaemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		log.Debug("sd_notify failed", zap.Error(err))
	}
}

// statusLine is the one-line status for systemd.
func (d *daemon) statusLine() string {
	var s string
	switch {
	case d.pm != nil:
		c, n := d.pm.Counts()
		s = fmt.Sprintf("userspace path manager: %d connections, %d actions, %d failed", n, c.Actions.Total(), c.Failures.Total())
	case d.rec != nil:
		s = statusLine(d.rec.Status())
	default:
		s = "no MPTCP in the kernel"
	}
	if n := len(d.running); n > 0 {
		s += fmt.Sprintf("; %d userspace proxies", n)
	}
	return s
}

func statusLine(st endpoints.Status) string {
	s := fmt.Sprintf("%d endpoints managed", len(st.Owned))
	if n := len(st.Errors); n > 0 {
		s += fmt.Sprintf(", %d errors in the last reconcile", n)
	}
	return s
}

// monotonicUsec is CLOCK_MONOTONIC, which systemd wants with RELOADING=1.
func monotonicUsec() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// newLogger builds the zap logger the policy asks for.
func newLogger(cfg *policy.Config, opts Options) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		lvl = zapcore.InfoLevel
	}
	level := zap.NewAtomicLevelAt(lvl)
	if opts.Logger != nil {
		return opts.Logger, level, nil
	}
	w := opts.Stderr
	if w == nil {
		w = os.Stderr
	}
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(ecfg)
	} else {
		ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ecfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), level)), level, nil
}
