package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Targets.
const (
	// targetJoinedPct is the share of connections that must get their
	// extra subflow within the window, at every rate.
	targetJoinedPct = 99.0
	// targetP50Ratio bounds the userspace p50 against the in-kernel p50
	// of the same variant and rate.
	targetP50Ratio = 3.0
)

// report is everything a benchmark run prints.
type report struct {
	Config   reportConfig `json:"config"`
	Kernel   string       `json:"kernel"`
	CPUs     int          `json:"cpus"`
	Manager  string       `json:"userspace_manager,omitempty"`
	Started  time.Time    `json:"started"`
	Runs     []runResult  `json:"runs"`
	Verdicts []verdict    `json:"verdicts"`
}

// reportConfig echoes the settings.
type reportConfig struct {
	Rates       []int  `json:"rates"`
	Duration    string `json:"duration"`
	Hold        string `json:"hold"`
	Window      string `json:"join_window"`
	Signal      string `json:"signal"`
	PMs         string `json:"pm"`
	Dialers     int    `json:"dialers"`
	MaxSubflows int    `json:"max_subflows"`
	Workers     int    `json:"workers"`
	RcvBuf      int    `json:"manager_rcvbuf"`
	GOMAXPROCS  int    `json:"manager_gomaxprocs,omitempty"`
	SharedNetns bool   `json:"shared_netns"`
	KernelLimit int    `json:"kernel_limits"`
}

// verdict is one target, met or not.
type verdict struct {
	Target string `json:"target"`
	Value  string `json:"value"`
	Pass   bool   `json:"pass"`
}

func newReport(o options) *report {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return &report{
		Config: reportConfig{Rates: o.rates, Duration: o.duration.String(), Hold: o.hold.String(), Window: o.window.String(),
			Signal: o.signal, PMs: o.pms, Dialers: o.dialers, MaxSubflows: o.maxSubflows, Workers: o.workers, RcvBuf: o.rcvbuf, GOMAXPROCS: o.gomaxprocs, SharedNetns: o.sharedNetns,
			KernelLimit: kernelLimit},
		Kernel:  unix.ByteSliceToString(u.Release[:]),
		CPUs:    runtime.NumCPU(),
		Started: time.Now(),
	}
}

// finish computes the verdicts: every userspace run against the joined
// target, and against the in-kernel run of the same variant and rate.
func (r *report) finish() {
	r.Verdicts = nil
	for _, u := range r.Runs {
		if u.PM != pmUserspace || u.Interrupted {
			continue
		}
		where := fmt.Sprintf("userspace, signal %s, %d/s", onOff(u.Signal), u.Rate)
		r.Verdicts = append(r.Verdicts, verdict{
			Target: fmt.Sprintf("joined within window ≥ %.0f%% (%s)", targetJoinedPct, where),
			Value:  fmt.Sprintf("%.2f%%", u.JoinedPct),
			Pass:   u.JoinedPct >= targetJoinedPct,
		})
		for _, k := range r.Runs {
			if k.PM != pmKernel || k.Signal != u.Signal || k.Rate != u.Rate || k.Interrupted {
				continue
			}
			ratio := 0.0
			if k.Join.Latency.P50 > 0 {
				ratio = u.Join.Latency.P50 / k.Join.Latency.P50
			}
			r.Verdicts = append(r.Verdicts, verdict{
				Target: fmt.Sprintf("p50 ≤ %.0f× in-kernel p50 (%s)", targetP50Ratio, where),
				Value:  fmt.Sprintf("%s vs %s = %.2f×", fmtUs(u.Join.Latency.P50), fmtUs(k.Join.Latency.P50), ratio),
				Pass:   u.Join.Latency.N > 0 && k.Join.Latency.N > 0 && ratio <= targetP50Ratio,
			})
		}
	}
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func (r *report) writeText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "mptcpd-go userspace path manager load benchmark, %s\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "kernel %s, %d CPUs; %v of new connections per run, each held %v; joined = extra subflow established within %v of ESTABLISHED\n",
		r.Kernel, r.CPUs, c.Duration, c.Hold, c.Window)
	netnsNote := "fresh namespaces per run"
	if c.SharedNetns {
		netnsNote = "one pair of namespaces for all runs (--shared-netns)"
	}
	fmt.Fprintf(w, "%s; %d dialers; the server listens on all addresses, clients dial path 1\n", netnsNote, c.Dialers)
	fmt.Fprintf(w, "in-kernel: subflow endpoint on client path 2, limits subflows=%d add_addr_accepted=%d; signal on: server signal endpoint on path 2\n",
		c.KernelLimit, c.KernelLimit)
	if r.Manager != "" {
		fmt.Fprintf(w, "userspace: %s, max subflows %d", r.Manager, c.MaxSubflows)
		if c.GOMAXPROCS > 0 {
			fmt.Fprintf(w, ", GOMAXPROCS=%d", c.GOMAXPROCS)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PM\tSIGNAL\tRATE/s\tCONNS\tOK\tEST-EV\tJOINED\tLATE\tSUBS/CONN\tP50\tP90\tP99\tMAX\tSAME-READ\tEV-LOST\tSF-ERR\tLAG-P99\tMGR-CPU\tMS/1K\tHWM-MiB\tRSS-MiB\tBENCH-CPU\tHOST-BUSY\tTW-END\t")
	for _, x := range r.Runs {
		mgr := [4]string{"-", "-", "-", "-"}
		if len(x.Managers) > 0 {
			// The client's manager, which opens the subflows; the
			// server's is in the table below.
			m := x.Managers[0]
			mgr = [4]string{fmt.Sprintf("%.1f%%", m.CPUPct), fmt.Sprintf("%.0f", m.MsPer1k), mib(m.VmHWMKB), mib(m.VmRSSKB)}
		}
		same := 0.0
		if x.Join.Latency.N > 0 {
			same = 100 * float64(x.Join.SameRead) / float64(x.Join.Latency.N)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.2f%%\t%d\t%.2f\t%s\t%s\t%s\t%s\t%.0f%%\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t%d\t\n",
			x.PM, onOff(x.Signal), x.Rate, x.Load.Attempted, x.Load.Succeeded, x.Join.Established, x.JoinedPct, x.Join.Late,
			x.Join.SubflowsPerConn, fmtUs(x.Join.Latency.P50), fmtUs(x.Join.Latency.P90), fmtUs(x.Join.Latency.P99), fmtUs(x.Join.Latency.Max),
			same, x.Join.EventsLost, x.Join.SubflowErrors, fmtUs(x.Load.LagP99), mgr[0], mgr[1], mgr[2], mgr[3], x.BenchCPUPct, x.HostBusyPct, x.ClientTimeWait)
	}
	_ = tw.Flush()

	var procs []string
	for _, x := range r.Runs {
		for _, m := range x.Managers {
			perConn := 0.0
			if x.Load.Attempted > 0 {
				perConn = float64(m.CtxSwitches) / float64(x.Load.Attempted)
			}
			line := fmt.Sprintf("%s\t%d\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f%%\t%.0f\t%.1f\t%s\t%s\t",
				onOff(x.Signal), x.Rate, m.Side, m.PID, m.CPUMs, m.UserMs, m.SysMs, m.CPUPct, m.MsPer1k, perConn, mib(m.VmHWMKB), mib(m.VmRSSKB))
			if k := m.Counters; k != nil {
				line += fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t", k.Events, k.EventsLost, k.Rebuilds,
					k.Actions.CreateSubflow+k.Actions.Announce, k.Failures.Total(), k.Actions.DestroySubflow)
			} else {
				line += "-\t-\t-\t-\t-\t-\t"
			}
			if t := m.Trace; t != nil {
				line += fmt.Sprintf("%s\t%s\t%s\t%s\t", fmtUs(t.Queue.P50), fmtUs(t.Queue.P99), fmtUs(t.Call.P50), fmtUs(t.Call.P99))
			} else {
				line += "-\t-\t-\t-\t"
			}
			procs = append(procs, line)
		}
	}
	if len(procs) > 0 {
		fmt.Fprintf(w, "\nuserspace path manager processes (%s)\n", r.Manager)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "SIGNAL\tRATE/s\tSIDE\tPID\tCPU-MS\tUSER\tSYS\tCPU\tMS/1K\tCSW/CONN\tHWM-MiB\tRSS-MiB\tEVENTS\tEV-LOST\tREBUILDS\tACTIONS\tFAILED\tDESTROY\tQUEUE-P50\tQUEUE-P99\tCALL-P50\tCALL-P99\t")
		for _, l := range procs {
			fmt.Fprintln(tw, l)
		}
		_ = tw.Flush()
	}

	var bds []string
	for _, x := range r.Runs {
		if d := x.Breakdown; d != nil {
			bds = append(bds, fmt.Sprintf("%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t", onOff(x.Signal), x.Rate, d.N,
				fmtUs(d.Wake.P50), fmtUs(d.Wake.P99), fmtUs(d.Queue.P50), fmtUs(d.Queue.P99),
				fmtUs(d.ToSub.P50), fmtUs(d.ToSub.P99), fmtUs(d.Call.P50), fmtUs(d.Call.P99)))
		}
	}
	if len(bds) > 0 {
		fmt.Fprintln(w, "\nwhere the userspace join time goes (client manager; WAKE recorder -> manager read ESTABLISHED, QUEUE -> CreateSubflow begun,")
		fmt.Fprintln(w, "TO-SUB -> recorder read SUB_ESTABLISHED, CALL the CreateSubflow round trip)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "SIGNAL\tRATE/s\tN\tWAKE-P50\tWAKE-P99\tQUEUE-P50\tQUEUE-P99\tTO-SUB-P50\tTO-SUB-P99\tCALL-P50\tCALL-P99\t")
		for _, l := range bds {
			fmt.Fprintln(tw, l)
		}
		_ = tw.Flush()
	}

	var notes []string
	for _, x := range r.Runs {
		where := fmt.Sprintf("%s, signal %s, %d/s", x.PM, onOff(x.Signal), x.Rate)
		if x.Interrupted {
			notes = append(notes, where+": interrupted, partial figures")
		}
		if x.StartBusyPct >= 25 {
			notes = append(notes, fmt.Sprintf("%s: the machine was %.0f%% busy when the run started (other work?)", where, x.StartBusyPct))
		}
		if x.Load.Late > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d dials started more than %v behind schedule (load generator saturated)", where, x.Load.Late, lateAfter))
		}
		if x.Load.NotMPTCP > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d connections fell back to TCP", where, x.Load.NotMPTCP))
		}
		for what, n := range x.Load.Failures {
			notes = append(notes, fmt.Sprintf("%s: %d × %s", where, n, what))
		}
		if x.Join.Orphans > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d SUB_ESTABLISHED events of connections without a seen ESTABLISHED", where, x.Join.Orphans))
		}
		for _, side := range []string{"client", "server"} {
			if t := troubleCounters(x.Netstat[side]); t != "" {
				notes = append(notes, fmt.Sprintf("%s: %s netns counters: %s", where, side, t))
			}
		}
		for _, m := range x.Managers {
			for _, l := range m.Warnings {
				notes = append(notes, fmt.Sprintf("%s: %s manager: %s", where, m.Side, l))
			}
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}

	if len(r.Verdicts) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, v := range r.Verdicts {
			mark := "PASS"
			if !v.Pass {
				mark = "MISS"
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", mark, v.Target, v.Value)
		}
	}
	fmt.Fprintln(w, strings.Repeat("-", 8))
	fmt.Fprintln(w, "columns: EST-EV ESTABLISHED events seen; JOINED share of connections with an extra subflow within the window; LATE joined after it;")
	fmt.Fprintln(w, "  P50..MAX latency ESTABLISHED -> first extra SUB_ESTABLISHED; SF-ERR subflows closed with an error; LAG-P99 dial start behind schedule;")
	fmt.Fprintln(w, "  SAME-READ joins whose two events came in one read of the recorder (latency below its resolution, counted as 0);")
	fmt.Fprintln(w, "  TW-END TCP sockets in TIME_WAIT in the client namespace at the end of the run;")
	fmt.Fprintln(w, "  MGR-CPU client manager's utime+stime in % of one core, MS/1K per 1000 connections; BENCH-CPU this process; HOST-BUSY both cores (/proc/stat, approximate);")
	fmt.Fprintln(w, "  CSW/CONN manager context switches per connection; ACTIONS CreateSubflow+Announce calls; QUEUE ESTABLISHED read by the manager ->")
	fmt.Fprintln(w, "  its first call for the connection begun; CALL CreateSubflow/Announce netlink round trip.")
}

// mib renders KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

// troubleWords mark the SNMP counters shown in the text report: those of
// dropped, failed or retried handshakes. The JSON report has them all.
var troubleWords = []string{"Overflow", "Drop", "Err", "Fail", "NoToken", "Rst", "Reset", "Timeout", "Retrans", "Reject",
	"Fallback", "Mismatch", "Cookies", "Abort", "Recycled"}

// troubleCounters renders the counters of d that signal trouble, sorted.
func troubleCounters(d map[string]int64) string {
	var out []string
	for k, v := range d {
		for _, w := range troubleWords {
			if strings.Contains(k, w) {
				out = append(out, fmt.Sprintf("%s %+d", k, v))
				break
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
