// Command upm is the load benchmark of mptcpd-go's userspace path manager.
//
// Every run gets two fresh network namespaces (mptcpdgo-*-bench-*) joined
// by two veth paths, 10.0.1.0/24 and 10.0.2.0/24, an MPTCP echo server on
// the server side (listening on all addresses, so that joins to an
// announced address find it) and a load generator on the client side
// that dials the server's path-1 address at a fixed rate: write a few
// bytes, read the echo, hold the connection, close it. The same load
// runs with
//
//   - the in-kernel path manager, the reference: a subflow endpoint on
//     the client's path-2 address, limits subflows=2 add_addr_accepted=2
//     on both sides, and with --signal on a signal endpoint on the
//     server's path-2 address;
//   - mptcpd-go's userspace path manager (throughput preset) for the
//     client namespace, and with --signal on for the server namespace
//     too, announcing its path-2 address.
//
// For each it reports the share of connections whose extra subflow was
// established within the join window of the connection's ESTABLISHED
// event, the latency between the two events (both read by one event
// subscription in the client namespace), and for the userspace path
// manager its process's CPU time, context switches and memory. That runs
// as the real daemon (`mptcpd-go daemon`, mode = "userspace") when it
// supports that mode, else as pathmgr.Manager in a re-executed copy of
// this binary (the hidden --manager-ns mode), which also traces where the
// time goes (see tracer).
//
// Usage (root; bench/upm.sh builds as the user and runs it with sudo):
//
//	go run ./bench/upm [--rates 250,1000] [--duration 10s] [--signal both|on|off] [--json]
//
// The numbers are benchmark results with target verdicts, never test
// assertions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/bench/internal/proc"
)

// options are the benchmark's flags.
type options struct {
	rates       []int
	duration    time.Duration
	hold        time.Duration
	window      time.Duration
	signal      string // both, on, off
	pms         string // both, kernel, userspace
	dialers     int
	maxSubflows int
	workers     int
	rcvbuf      int
	gomaxprocs  int    // GOMAXPROCS of the manager processes; 0 leaves it
	daemon      string // auto, off, or a path
	profile     string // directory for CPU profiles of the managers
	sharedNetns bool   // one pair of namespaces for every run
	json        bool
}

func main() {
	var mo managerOptions
	var o options
	fs := flag.NewFlagSet("upm", flag.ContinueOnError)
	mo.addFlags(fs)
	rates := fs.String("rates", "250,1000", "new connections per second, comma-separated; one run per rate")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long new connections are started, per run")
	fs.DurationVar(&o.hold, "hold", time.Second, "how long each connection stays open after its echo")
	fs.DurationVar(&o.window, "window", 2*time.Second, "a connection counts as joined when its extra subflow is established within this time of ESTABLISHED")
	fs.StringVar(&o.signal, "signal", "both", "server announces its path-2 address: on, off, or both (one run of each)")
	fs.StringVar(&o.pms, "pm", "both", "path managers to run: kernel, userspace, or both")
	fs.IntVar(&o.dialers, "dialers", 64, "dialing goroutines of the load generator")
	fs.IntVar(&o.maxSubflows, "max-subflows", kernelLimit, "userspace path manager's extra subflow cap (the in-kernel limit is 2)")
	fs.IntVar(&o.workers, "workers", 0, "userspace path manager's kernel-call workers (0: pathmgr's default); re-exec mode only")
	fs.IntVar(&o.rcvbuf, "rcvbuf", 8<<20, "receive buffer of the userspace path manager's event socket; re-exec mode only")
	fs.IntVar(&o.gomaxprocs, "manager-gomaxprocs", 0, "GOMAXPROCS of the userspace path manager processes (0: Go's default, the CPU count)")
	fs.StringVar(&o.daemon, "daemon", "auto", "userspace path manager: auto (build ./cmd/mptcpd-go and use it if it runs mode = \"userspace\"), off (always re-exec this binary), or the path of an mptcpd-go binary")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of every re-exec'd manager process into this directory (go tool pprof)")
	fs.BoolVar(&o.sharedNetns, "shared-netns", false, "run everything in one pair of namespaces instead of fresh ones per run (TIME_WAIT subflows then pile up from run to run)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/upm [flags]   (as root)\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasPrefix(f.Name, "manager-") && f.Name != "manager-gomaxprocs" {
				return // internal
			}
			fmt.Fprintf(fs.Output(), "  --%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
		})
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if mo.ns != "" {
		if err := runManager(mo); err != nil {
			fmt.Fprintf(os.Stderr, "upm manager: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := proc.CheckRootMPTCP("creates network namespaces and veth links and sets their MPTCP sysctls", "bench/upm.sh"); err != nil {
		fmt.Fprintf(os.Stderr, "upm: %v\n", err)
		os.Exit(2)
	}
	var err error
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err == nil {
			err = os.MkdirAll(o.profile, 0o755)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "upm: --profile: %v\n", err)
			os.Exit(2)
		}
	}
	if o.rates, err = parseRates(*rates); err != nil {
		fmt.Fprintf(os.Stderr, "upm: --rates: %v\n", err)
		os.Exit(2)
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "upm: %v\n", err)
		os.Exit(2)
	}

	ctx := proc.InterruptContext()
	rep, err := run(ctx, o)
	if rep != nil {
		if o.json {
			err = errors.Join(err, rep.writeJSON(os.Stdout))
		} else {
			rep.writeText(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "upm: %v\n", err)
		os.Exit(1)
	}
}

// parseRates parses "250,1000".
func parseRates(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 || v > 20000 {
			return nil, fmt.Errorf("%q: want positive rates up to 20000, comma-separated", s)
		}
		out = append(out, v)
	}
	return out, nil
}

func (o *options) check() error {
	switch {
	case o.signal != "both" && o.signal != "on" && o.signal != "off":
		return fmt.Errorf("--signal %q: want on, off or both", o.signal)
	case o.pms != "both" && o.pms != "kernel" && o.pms != "userspace":
		return fmt.Errorf("--pm %q: want kernel, userspace or both", o.pms)
	case o.duration <= 0 || o.hold < 0 || o.window <= 0:
		return errors.New("--duration and --window must be positive, --hold not negative")
	case o.dialers < 1 || o.dialers > 4096:
		return fmt.Errorf("--dialers %d: want 1..4096", o.dialers)
	case o.gomaxprocs < 0:
		return fmt.Errorf("--manager-gomaxprocs %d: want 0 or more", o.gomaxprocs)
	case o.maxSubflows < 0 || o.maxSubflows > 255:
		return fmt.Errorf("--max-subflows %d: want 0..255", o.maxSubflows)
	}
	return nil
}

// progress reports what the benchmark is doing, on stderr.
var progress io.Writer = os.Stderr

func logf(format string, args ...any) {
	fmt.Fprintf(progress, "upm: "+format+"\n", args...)
}

// run runs every variant and rate, each in fresh namespaces (or all in
// one pair with --shared-netns), and tears everything down, also when ctx
// ends early. The report holds the runs done so far.
func run(ctx context.Context, o options) (rep *report, err error) {
	dir, err := os.MkdirTemp("", nstopo.Prefix)
	if err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(dir)

	b := &bench{o: o, dir: dir}
	rep = newReport(o)
	// topo returns the namespaces for the next run and what to call when
	// it is done with them.
	var shared *topology
	topo := func() (*topology, func() error, error) {
		if shared != nil {
			return shared, func() error { return nil }, nil
		}
		t, err := newTopology()
		if err != nil {
			return nil, nil, err
		}
		logf("namespaces %s and %s, paths %s-%s and %s-%s", t.pair.Client.Name, t.pair.Server.Name,
			t.pair.Links[0].ClientV4, t.pair.Links[0].ServerV4, t.pair.Links[1].ClientV4, t.pair.Links[1].ServerV4)
		return t, t.close, nil
	}
	if o.sharedNetns {
		t, done, err := topo()
		if err != nil {
			return nil, err
		}
		shared = t
		defer func() {
			shared = nil
			err = errors.Join(err, done())
		}()
	}

	if o.pms != "kernel" {
		t, done, err := topo()
		if err != nil {
			return nil, err
		}
		b.use(t)
		b.kind, rep.Manager = b.pickManager(ctx)
		if err := done(); err != nil {
			return nil, err
		}
		logf("userspace path manager: %s", rep.Manager)
	}

	var specs []runSpec
	for _, sig := range signalVariants(o.signal) {
		for _, rate := range o.rates {
			if o.pms != "userspace" {
				specs = append(specs, runSpec{PM: pmKernel, Signal: sig, Rate: rate})
			}
			if o.pms != "kernel" {
				specs = append(specs, runSpec{PM: pmUserspace, Signal: sig, Rate: rate})
			}
		}
	}
	for i, s := range specs {
		if ctx.Err() != nil {
			break
		}
		busy := waitQuiet(ctx)
		t, done, err := topo()
		if err != nil {
			rep.finish()
			return rep, err
		}
		b.use(t)
		logf("run %d/%d: %s, signal %s, %d conn/s for %v", i+1, len(specs), s.PM, onOff(s.Signal), s.Rate, o.duration)
		r, err := b.run(ctx, s)
		r.StartBusyPct = busy
		err = errors.Join(err, done())
		if err != nil {
			rep.finish()
			return rep, fmt.Errorf("run %d (%s, signal %s, %d/s): %w", i+1, s.PM, onOff(s.Signal), s.Rate, err)
		}
		logf("  %d/%d connections ok, %.2f%% joined within %v, p50 %s, p99 %s, events lost %d",
			r.Load.Succeeded, r.Load.Attempted, r.JoinedPct, o.window, fmtUs(r.Join.Latency.P50), fmtUs(r.Join.Latency.P99), r.Join.EventsLost)
		rep.Runs = append(rep.Runs, r)
	}
	rep.finish()
	if ctx.Err() != nil {
		return rep, errors.New("interrupted")
	}
	return rep, nil
}

func signalVariants(s string) []bool {
	switch s {
	case "on":
		return []bool{true}
	case "off":
		return []bool{false}
	}
	return []bool{false, true}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
