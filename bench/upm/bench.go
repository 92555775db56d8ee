package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
)

// The path managers compared.
const (
	pmKernel    = "in-kernel"
	pmUserspace = "userspace"
)

// Waits of a run.
const (
	// readyTimeout bounds a manager's start.
	readyTimeout = 15 * time.Second
	// drainTimeout bounds the wait for the last connections to close.
	drainTimeout = 15 * time.Second
	// settle lets the last events arrive before the figures are taken.
	settle = 200 * time.Millisecond
)

// runSpec is one measurement: a path manager, a signal variant, a rate.
type runSpec struct {
	PM     string
	Signal bool
	Rate   int
}

// runResult is one measurement's figures.
type runResult struct {
	PM     string `json:"pm"`
	Signal bool   `json:"signal"`
	Rate   int    `json:"rate"`
	// Interrupted runs stopped early (Ctrl-C); no verdict uses them.
	Interrupted bool `json:"interrupted,omitempty"`
	// Manager is how the userspace path manager ran.
	Manager managerKind `json:"manager,omitempty"`
	Load    loadResult  `json:"load"`
	Join    joinStats   `json:"join"`
	// JoinedPct is Join.Joined over the connections that succeeded.
	JoinedPct float64 `json:"joined_pct"`
	// Seconds is the measurement window: first dial to the last event.
	Seconds float64 `json:"seconds"`
	// BenchCPUPct is this process's CPU time (load generator, echo
	// server, event recorder) in % of one core; HostBusyPct is the busy
	// share of the whole machine, other work included, from the
	// tick-sampled /proc/stat (approximate; it can read lower than the
	// processes' own, exact, times).
	BenchCPUPct float64        `json:"bench_cpu_pct"`
	HostBusyPct float64        `json:"host_busy_pct"`
	Managers    []managerStats `json:"managers,omitempty"`
	// ClientTimeWait is the number of TCP sockets (subflows) in
	// TIME_WAIT in the client namespace at the end of the run.
	ClientTimeWait int64 `json:"client_time_wait"`
	// StartBusyPct is how busy the machine was just before the run.
	StartBusyPct float64 `json:"start_busy_pct"`
	// Breakdown splits the userspace latency (re-exec mode only).
	Breakdown *breakdown `json:"breakdown,omitempty"`
	// Netstat are the SNMP counters that moved during the run, per
	// namespace ("client", "server"): handshake drops, retransmissions,
	// every MPTcpExt counter.
	Netstat map[string]map[string]int64 `json:"netstat,omitempty"`
}

// managerStats is one userspace path manager process's cost in a run.
type managerStats struct {
	Side string `json:"side"`
	PID  int    `json:"pid"`
	// CPUMs is utime+stime over the run (UserMs and SysMs its parts);
	// CPUPct the same in % of one core; MsPer1k per 1000 connections
	// attempted.
	CPUMs   float64 `json:"cpu_ms"`
	UserMs  float64 `json:"user_ms"`
	SysMs   float64 `json:"sys_ms"`
	CPUPct  float64 `json:"cpu_pct"`
	MsPer1k float64 `json:"cpu_ms_per_1000_conns"`
	// VmHWMKB is the peak resident set, VmRSSKB the one at the end.
	VmHWMKB int64 `json:"vm_hwm_kib"`
	VmRSSKB int64 `json:"vm_rss_kib"`
	// CtxSwitches counts the process's context switches over the run,
	// all threads.
	CtxSwitches int64 `json:"ctx_switches"`
	// Counters and Trace are the Manager's own report (re-exec mode).
	Counters *pathmgr.Counters `json:"counters,omitempty"`
	Trace    *traceSummary     `json:"trace,omitempty"`
	// Warnings are its log lines at warn level and above.
	Warnings []string `json:"warnings,omitempty"`
}

// bench runs measurements.
type bench struct {
	o      options
	dir    string
	kind   managerKind
	daemon string // the mptcpd-go binary when kind is kindDaemon
	// h and rec are the topology of the current run (see use).
	h   *hosts
	rec *recorder
}

// topology is a pair of namespaces with their genl clients and the
// recorder of the client's events.
type topology struct {
	pair *nstopo.Pair
	h    *hosts
	rec  *recorder
}

// newTopology creates the namespaces, joined by two veth paths.
func newTopology() (t *topology, err error) {
	t = &topology{}
	if t.pair, err = nstopo.NewPair(2); err != nil {
		return nil, fmt.Errorf("namespaces: %w", err)
	}
	if t.h, err = newHosts(t.pair); err != nil {
		_ = t.pair.Close()
		return nil, err
	}
	if t.rec, err = newRecorder(t.h.client); err != nil {
		t.h.close()
		_ = t.pair.Close()
		return nil, err
	}
	return t, nil
}

// close removes the namespaces.
func (t *topology) close() error {
	err := t.rec.close()
	t.h.close()
	if cerr := t.pair.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("remove namespaces: %w", cerr))
	}
	return err
}

// use makes t the topology of the next runs.
func (b *bench) use(t *topology) { b.h, b.rec = t.h, t.rec }

// waitQuiet waits, up to quietTimeout, until the machine is less than
// quietBusyPct busy, so that one run's aftermath (the kernel freeing the
// previous namespaces and their TIME_WAIT sockets) does not fall into the
// next. It returns the last busy share seen.
func waitQuiet(ctx context.Context) float64 {
	const (
		quietBusyPct = 25.0
		quietTimeout = 10 * time.Second
		sample       = 250 * time.Millisecond
	)
	deadline := time.Now().Add(quietTimeout)
	last := 0.0
	prev, err := readHostCPU()
	if err != nil {
		return 0
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(sample)
		cur, err := readHostCPU()
		if err != nil {
			return 0
		}
		last = busyPct(prev, cur)
		if last < quietBusyPct {
			break
		}
		prev = cur
	}
	return last
}

// pickManager decides how the userspace path manager runs: the real
// daemon when it starts in mode = "userspace", else pathmgr.Manager in a
// re-executed copy of this binary. The second result describes it.
func (b *bench) pickManager(ctx context.Context) (managerKind, string) {
	const reexec = "pathmgr.Manager (throughput preset) in a re-executed upm process"
	path := b.o.daemon
	switch path {
	case "off":
		return kindProcess, reexec + " (--daemon off)"
	case "auto":
		var err error
		if path, err = buildDaemon(ctx, b.dir); err != nil {
			return kindProcess, fmt.Sprintf("%s (could not build the daemon: %v)", reexec, err)
		}
	}
	if err := b.h.userspace(false); err != nil {
		return kindProcess, fmt.Sprintf("%s (%v)", reexec, err)
	}
	p, err := startManager(ctx, b.managerSpec(kindDaemon, path, "client", "", ""), readyTimeout)
	if err != nil {
		return kindProcess, fmt.Sprintf("%s; the daemon does not run mode = \"userspace\" here: %v", reexec, err)
	}
	if _, err := p.stop(); err != nil {
		return kindProcess, fmt.Sprintf("%s; the daemon started in mode = \"userspace\" but did not stop cleanly: %v", reexec, err)
	}
	b.daemon = path
	return kindDaemon, fmt.Sprintf("mptcpd-go daemon (%s), mode = \"userspace\", preset = \"throughput\"", path)
}

// managerSpec describes the manager process of one side; profile names
// its CPU profile file, if any.
func (b *bench) managerSpec(kind managerKind, daemon, side, signalIface, profile string) managerSpec {
	ns := b.h.pair.Client
	if side == "server" {
		ns = b.h.pair.Server
	}
	return managerSpec{kind: kind, label: side, ns: ns, daemon: daemon, dir: b.dir, gomaxprocs: b.o.gomaxprocs, opts: managerOptions{
		ns: ns.Name, signalIface: signalIface, maxSubflows: b.o.maxSubflows, workers: b.o.workers, readBuffer: b.o.rcvbuf,
		cpuProfile: profile,
	}}
}

// profile is the CPU profile file of a manager process in run s, or ""
// without --profile (or with the daemon).
func (b *bench) profile(s runSpec, side string) string {
	if b.o.profile == "" || b.kind != kindProcess {
		return ""
	}
	return filepath.Join(b.o.profile, fmt.Sprintf("%s-signal-%s-%d-%s.pprof", s.PM, onOff(s.Signal), s.Rate, side))
}

// run does one measurement.
func (b *bench) run(ctx context.Context, s runSpec) (res runResult, err error) {
	res = runResult{PM: s.PM, Signal: s.Signal, Rate: s.Rate}
	var procs []*managerProc
	defer func() {
		for _, p := range procs {
			_ = p.kill() // only those not stopped below
		}
	}()
	if s.PM == pmKernel {
		err = b.h.inKernel(s.Signal)
	} else {
		res.Manager = b.kind
		err = b.h.userspace(s.Signal)
		if err == nil {
			var p *managerProc
			p, err = startManager(ctx, b.managerSpec(b.kind, b.daemon, "client", "", b.profile(s, "client")), readyTimeout)
			if err == nil {
				procs = append(procs, p)
				if s.Signal {
					p, err = startManager(ctx, b.managerSpec(b.kind, b.daemon, "server", b.h.pair.Links[1].ServerIf, b.profile(s, "server")), readyTimeout)
					if err == nil {
						procs = append(procs, p)
					}
				}
			}
		}
	}
	if err != nil {
		return res, err
	}

	// The server listens on every address so that joins to the
	// announced path-2 address find it; clients dial path 1's.
	srv, err := listen(b.h.pair.Server, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		return res, err
	}
	defer srv.close()
	raddr := netip.AddrPortFrom(b.h.pair.Links[0].ServerV4, srv.port())
	b.rec.start(srv.port())

	cpu0 := make([]cpuTimes, len(procs))
	sw0 := make([]int64, len(procs))
	for i, p := range procs {
		if cpu0[i], err = procCPU(p.pid()); err != nil {
			return res, err
		}
		if sw0[i], err = procCtxSwitches(p.pid()); err != nil {
			return res, err
		}
	}
	self0, err := procCPU(os.Getpid())
	if err != nil {
		return res, err
	}
	host0, err := readHostCPU()
	if err != nil {
		return res, err
	}
	cnet0, err := readNetCounters(b.h.pair.Client)
	if err != nil {
		return res, err
	}
	snet0, err := readNetCounters(b.h.pair.Server)
	if err != nil {
		return res, err
	}
	t0 := time.Now()

	res.Load = runLoad(ctx, loadSpec{ns: b.h.pair.Client, raddr: raddr, rate: s.Rate, dur: b.o.duration, hold: b.o.hold, dialers: b.o.dialers})
	res.Interrupted = ctx.Err() != nil

	// The client closed everything; wait for the server's ends and the
	// CLOSED events, so the managers' work for the closes is counted too.
	deadline := time.Now().Add(drainTimeout)
	for (srv.open.Load() > 0 || b.rec.open() > 0) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(settle)

	wall := time.Since(t0)
	res.Seconds = wall.Seconds()
	for i, p := range procs {
		cpu1, err := procCPU(p.pid())
		if err != nil {
			return res, err
		}
		mem, err := procMem(p.pid())
		if err != nil {
			return res, err
		}
		sw1, err := procCtxSwitches(p.pid())
		if err != nil {
			return res, err
		}
		cpu := cpu1.Sub(cpu0[i])
		ms := managerStats{Side: p.spec.label, PID: p.pid(), CPUMs: msOf(cpu.Total()), UserMs: msOf(cpu.User), SysMs: msOf(cpu.Sys),
			CPUPct: 100 * cpu.Total().Seconds() / wall.Seconds(), VmHWMKB: mem.HWM, VmRSSKB: mem.RSS, CtxSwitches: sw1 - sw0[i]}
		if res.Load.Attempted > 0 {
			ms.MsPer1k = ms.CPUMs / (float64(res.Load.Attempted) / 1000)
		}
		res.Managers = append(res.Managers, ms)
	}
	if self1, err := procCPU(os.Getpid()); err == nil {
		res.BenchCPUPct = 100 * self1.Sub(self0).Total().Seconds() / wall.Seconds()
	}
	if host1, err := readHostCPU(); err == nil {
		res.HostBusyPct = busyPct(host0, host1)
	}
	var times map[uint32]joinTimes
	res.Join, times = b.rec.finish(b.o.window)
	res.Netstat = map[string]map[string]int64{}
	if c, err := readNetCounters(b.h.pair.Client); err == nil {
		res.Netstat["client"] = c.delta(cnet0)
		res.ClientTimeWait = c["sockstat.TCP.tw"]
	}
	if c, err := readNetCounters(b.h.pair.Server); err == nil {
		res.Netstat["server"] = c.delta(snet0)
	}
	if n := max(res.Load.Succeeded, res.Join.Established); n > 0 {
		res.JoinedPct = 100 * float64(res.Join.Joined) / float64(n)
	}

	var errs []error
	for i, p := range procs {
		r, err := p.stop()
		if r != nil {
			res.Managers[i].Counters, res.Managers[i].Trace = &r.Counters, &r.Trace
		}
		res.Managers[i].Warnings = firstN(p.warnings(), 10)
		errs = append(errs, err)
	}
	procs = nil
	if len(res.Managers) > 0 && res.Managers[0].Trace != nil {
		res.Breakdown = newBreakdown(res.Managers[0].Trace.First, times)
	}
	for _, m := range res.Managers {
		if m.Trace != nil {
			m.Trace.First = nil // raw data, not for the report
		}
	}
	return res, errors.Join(errs...)
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

// breakdown splits a userspace join into the manager's steps, lining up
// the client manager's timeline of each connection's first
// CreateSubflow with the recorder's events (both on the host's wall
// clock; the two processes read it independently, so single values
// carry a few µs of noise, percentiles are sound).
type breakdown struct {
	N int `json:"n"`
	// Wake: recorder read ESTABLISHED → the manager read it.
	Wake latencySummary `json:"wake"`
	// Queue: the manager read ESTABLISHED → it began CreateSubflow.
	Queue latencySummary `json:"queue"`
	// ToSub: CreateSubflow begun → the recorder read SUB_ESTABLISHED (the
	// join completes inside the call on veth).
	ToSub latencySummary `json:"call_to_sub_established"`
	// Call: the first CreateSubflow's round trip.
	Call latencySummary `json:"call"`
}

func newBreakdown(first map[uint32]*firstCall, times map[uint32]joinTimes) *breakdown {
	var wake, queue, toSub, call []time.Duration
	for tok, f := range first {
		t, ok := times[tok]
		if !ok || f.End == 0 {
			continue
		}
		wake = append(wake, time.Duration(f.Est-t.est.UnixNano()))
		queue = append(queue, time.Duration(f.Begin-f.Est))
		toSub = append(toSub, time.Duration(t.sub.UnixNano()-f.Begin))
		call = append(call, time.Duration(f.End-f.Begin))
	}
	if len(wake) == 0 {
		return nil
	}
	return &breakdown{N: len(wake), Wake: summarize(wake), Queue: summarize(queue), ToSub: summarize(toSub), Call: summarize(call)}
}
