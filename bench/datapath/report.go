package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// Targets of issue 5.
const (
	targetShapedRatio   = 1.8 // datapath / TCP on two shaped links
	targetUnshapedRatio = 0.5 // datapath / kernel MPTCP on veth
	targetStall         = time.Second
)

// cutResult is a link-cut transfer with its stall analysis.
type cutResult struct {
	*transferResult
	stallStats
}

// report is everything one run measured.
type report struct {
	Start              time.Time
	Opts               options
	Kernel             string
	CPUs               int
	LoadStart, LoadEnd string
	Shaped, Unshaped   []*transferResult
	Cut                []*cutResult
	Mem                *memResult
	Elapsed            time.Duration
	// Interrupted says why a run stopped early (Ctrl-C or an error).
	Interrupted string
}

func newReport(o options) *report {
	return &report{Start: time.Now(), Opts: o, Kernel: readTrim("/proc/sys/kernel/osrelease"), CPUs: runtime.NumCPU(), LoadStart: loadAvg()}
}

// finish records the end of the run.
func (r *report) finish() {
	r.LoadEnd = loadAvg()
	r.Elapsed = time.Since(r.Start)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// find returns the result of variant v, or nil.
func find(rs []*transferResult, v string) *transferResult {
	for _, r := range rs {
		if r.Variant == v {
			return r
		}
	}
	return nil
}

// median returns the run of variant v with the median rate among the
// runs without error, and those runs sorted by rate; with no good run it
// returns a failed one (or nil) for the error display.
func median(rs []*transferResult, v string) (*transferResult, []*transferResult) {
	var good []*transferResult
	var failed *transferResult
	for _, r := range rs {
		switch {
		case r.Variant != v:
		case r.Err == nil:
			good = append(good, r)
		case failed == nil:
			failed = r
		}
	}
	if len(good) == 0 {
		return failed, nil
	}
	slices.SortFunc(good, func(a, b *transferResult) int { return cmp.Compare(a.Mbps(), b.Mbps()) })
	return good[len(good)/2], good
}

// ratio is a/b of two good results' rates; ok is false when either is
// missing or failed.
func ratio(a, b *transferResult) (float64, bool) {
	if a == nil || b == nil || a.Err != nil || b.Err != nil || b.Mbps() == 0 {
		return 0, false
	}
	return a.Mbps() / b.Mbps(), true
}

// linkShares formats the share of the client's received bytes per link.
func linkShares(rx []uint64) (string, string) {
	var sum uint64
	for _, v := range rx {
		sum += v
	}
	if len(rx) < 2 || sum == 0 {
		return "-", "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(rx[0])/float64(sum)), fmt.Sprintf("%.0f%%", 100*float64(rx[1])/float64(sum))
}

func status(err error) string {
	if err != nil {
		return "ERROR (below)"
	}
	return "ok"
}

// cpuPerGB formats CPU seconds per 1e9 bytes, with the user/sys split.
func cpuPerGB(c cpuTimes, bytes int64) (total, split string) {
	if bytes <= 0 {
		return "-", "-"
	}
	gb := float64(bytes) / 1e9
	return fmt.Sprintf("%.2f", c.Total().Seconds()/gb), fmt.Sprintf("%.2f/%.2f", c.User.Seconds()/gb, c.Sys.Seconds()/gb)
}

// orDefault formats a datapath setting that is 0 when defaulted.
func orDefault[T comparable](v, def T, format func(T) string) string {
	var zero T
	if v == zero {
		return format(def) + " (default)"
	}
	return format(v)
}

// write prints the report.
func (r *report) write(w io.Writer) {
	o := r.Opts
	fmt.Fprintf(w, "\nmptcpd-go datapath benchmark, %s, %v\n", r.Start.UTC().Format(time.RFC3339), r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "kernel %s, %d CPUs, load average %s at start, %s at end (other work on the machine makes the figures noisy)\n", r.Kernel, r.CPUs, r.LoadStart, r.LoadEnd)
	fmt.Fprintf(w, "two namespaces joined by two veth links (10.0.1.0/24, 10.0.2.0/24); data flows server -> client in %d KiB writes, read into %d KiB buffers, every byte checked\n", ioSize>>10, ioSize>>10)
	fmt.Fprintf(w, "server end in its own process, client end in the benchmark process; kernel MPTCP: client subflow endpoint on link 2, limits subflows=2\n")
	fmt.Fprintf(w, "datapath: one Path per link (address + device), window %s, heartbeat %s, dead-after %s, max payload %s\n",
		orDefault(o.dp.window, datapath.DefaultWindow, func(v int) string { return fmt.Sprintf("%d KiB", v>>10) }),
		orDefault(o.dp.heartbeat, datapath.DefaultHeartbeat, time.Duration.String),
		orDefault(o.dp.deadAfter, 3*datapath.DefaultHeartbeat, time.Duration.String),
		orDefault(o.dp.maxPayload, datapath.DefaultMaxPayload, func(v int) string { return fmt.Sprintf("%d KiB", v>>10) }))

	if r.Interrupted != "" {
		fmt.Fprintf(w, "INCOMPLETE RUN (%s): sections after the failure were not measured\n", r.Interrupted)
	}
	var notes []string
	note := func(section string, res *transferResult) {
		if res != nil && res.Err != nil {
			notes = append(notes, fmt.Sprintf("%s %s: %v", section, res.Variant, res.Err))
		}
	}

	fmt.Fprintf(w, "\n1. Shaped links: tbf %s burst %s latency %s on both ends of each link, %v per variant\n", o.rate, o.burst, o.latency, o.shapedDuration)
	if !o.has("shaped") {
		fmt.Fprintf(w, "   not run\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  VARIANT\tMBIT/S\tVS-TCP\tLINK1\tLINK2\tMB\tMULTIPATH\tSTATUS\t\n")
		tcp := find(r.Shaped, varTCP)
		for _, res := range r.Shaped {
			rt := "-"
			if v, ok := ratio(res, tcp); ok {
				rt = fmt.Sprintf("%.2f", v)
			}
			l1, l2 := linkShares(res.LinkRx)
			fmt.Fprintf(tw, "  %s\t%.1f\t%s\t%s\t%s\t%.0f\t%s\t%s\t\n", res.Variant, res.Mbps(), rt, l1, l2, float64(res.Bytes)/1e6, dash(res.Multipath), status(res.Err))
			note("shaped", res)
		}
		_ = tw.Flush()
	}

	fmt.Fprintf(w, "\n2. Link cut: shaped as in 1, client's link-2 interface set down %v after the first byte of a %v transfer\n", o.cutAt, o.cutDuration)
	fmt.Fprintf(w, "   stall = longest run of %v intervals with less than %.0f%% of the pre-cut rate, from %v before the cut (STALL-AT: its start,\n", stallBin, stallFrac*100, stallLead)
	fmt.Fprintf(w, "   relative to the cut); PRE: rate over %v before the cut; POST: over the last %v, after the stall\n", rateWindow, rateWindow)
	if !o.has("cut") {
		fmt.Fprintf(w, "   not run\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  VARIANT\tPRE-MBIT/S\tPOST-MBIT/S\tSTALL\tSTALL-AT\tMAX-READ-GAP\tMB\tSHA-256\tMULTIPATH\tSTATUS\t\n")
		for _, c := range r.Cut {
			sha := "differ"
			if c.SHAEqual() {
				sha = "equal"
			}
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%v\t%+v\t%v\t%.0f\t%s\t%s\t%s\t\n", c.Variant, c.PreMbps, c.PostMbps, c.Stall, c.StallStart,
				c.MaxGap.Round(time.Millisecond), float64(c.Bytes)/1e6, sha, dash(c.Multipath), status(c.Err))
			note("cut", c.transferResult)
		}
		_ = tw.Flush()
	}

	fmt.Fprintf(w, "\n3. Unshaped veth, %v per variant and run, %d rounds of the variants in turn; the median run is shown\n", o.unshapedDuration, o.unshapedRepeat)
	if !o.has("unshaped") {
		fmt.Fprintf(w, "   not run\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  VARIANT\tGBIT/S\tMIN-MAX\tRUNS-OK\tVS-KERNEL-MPTCP\tVS-TCP\tLINK1\tLINK2\tMB\tMULTIPATH\tSTATUS\t\n")
		mp, _ := median(r.Unshaped, varMPTCP)
		tcp, _ := median(r.Unshaped, varTCP)
		for _, v := range []string{varTCP, varMPTCP, varDatapath} {
			res, good := median(r.Unshaped, v)
			if res == nil {
				continue
			}
			rm, rt := "-", "-"
			if v, ok := ratio(res, mp); ok {
				rm = fmt.Sprintf("%.2f", v)
			}
			if v, ok := ratio(res, tcp); ok {
				rt = fmt.Sprintf("%.2f", v)
			}
			rng := "-"
			if len(good) > 0 {
				rng = fmt.Sprintf("%.2f-%.2f", good[0].Mbps()/1000, good[len(good)-1].Mbps()/1000)
			}
			runs := 0
			for _, x := range r.Unshaped {
				if x.Variant == v {
					runs++
					note("unshaped", x)
				}
			}
			l1, l2 := linkShares(res.LinkRx)
			fmt.Fprintf(tw, "  %s\t%.2f\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t\n", res.Variant, res.Mbps()/1000, rng, len(good), runs, rm, rt, l1, l2, float64(res.Bytes)/1e6, dash(res.Multipath), status(res.Err))
		}
		_ = tw.Flush()

		fmt.Fprintf(w, "\n4. CPU per GB (10^9 bytes), all good unshaped runs together: process CPU seconds (user/sys), each side its own process\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  VARIANT\tCLIENT(RECV)-S/GB\tUSER/SYS\tSERVER(SEND)-S/GB\tUSER/SYS\tBOTH-S/GB\tCPU-UTIL\t\n")
		for _, v := range []string{varTCP, varMPTCP, varDatapath} {
			_, good := median(r.Unshaped, v)
			if len(good) == 0 {
				continue
			}
			var cl, sv cpuTimes
			var bytes int64
			var elapsed time.Duration
			for _, x := range good {
				cl.User, cl.Sys = cl.User+x.Client.User, cl.Sys+x.Client.Sys
				sv.User, sv.Sys = sv.User+x.Server.User, sv.Sys+x.Server.Sys
				bytes += x.Bytes
				elapsed += x.Elapsed
			}
			ct, cs := cpuPerGB(cl, bytes)
			st, ss := cpuPerGB(sv, bytes)
			bt, _ := cpuPerGB(cpuTimes{cl.User + sv.User, cl.Sys + sv.Sys}, bytes)
			util := "-"
			if elapsed > 0 {
				util = fmt.Sprintf("%.0f%%", 100*(cl.Total()+sv.Total()).Seconds()/elapsed.Seconds())
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v, ct, cs, st, ss, bt, util)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "   CPU-UTIL: both processes' CPU time over the transfer time, in %% of one core (%d available)\n", r.CPUs)
		fmt.Fprintf(w, "   the client's figure includes checking every byte against the expected stream (a memcmp, the same for every variant)\n")
	}

	fmt.Fprintf(w, "\n5. Memory per idle datapath connection (%d connections, two subflows each), after a forced GC on each side\n", o.conns)
	switch m := r.Mem; {
	case !o.has("rss"):
		fmt.Fprintf(w, "   not run\n")
	case m == nil:
		fmt.Fprintf(w, "   not measured\n")
	default:
		fmt.Fprintf(w, "   opened %d in %v, %d with both subflows\n", m.Opened, m.OpenTime.Round(time.Millisecond), m.TwoSubflows)
		if m.Opened > 0 && m.ClientAfter.RSS > 0 && m.ServerAfter.RSS > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "  SIDE\tRSS-KIB/CONN\tHEAP-KIB/CONN\tSTACK-KIB/CONN\tGOROUTINES/CONN\tRSS-BEFORE-MIB\tRSS-AFTER-MIB\t\n")
			for _, s := range []struct {
				name          string
				before, after memSnapshot
			}{{"client", m.ClientBefore, m.ClientAfter}, {"server", m.ServerBefore, m.ServerAfter}} {
				rss, heap, stack, g := perConn(s.before, s.after, m.Opened)
				fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", s.name, rss, heap, stack, g, float64(s.before.RSS)/(1<<20), float64(s.after.RSS)/(1<<20))
			}
			_ = tw.Flush()
			fmt.Fprintf(w, "   HEAP counts allocated bytes, RSS only touched pages (an allocated but unused buffer is in HEAP, not RSS);\n")
			fmt.Fprintf(w, "   the server side includes the benchmark's own handler goroutine per connection (one small read loop)\n")
		}
		if m.Err != nil {
			notes = append(notes, fmt.Sprintf("memory: %v", m.Err))
		}
	}

	fmt.Fprintf(w, "\nTargets\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	verdict := func(ran bool, ok bool, name, value string) {
		v := "FAIL"
		switch {
		case !ran:
			v, value = "SKIP", "not run"
		case ok:
			v = "PASS"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v, name, value)
	}
	{
		v, ok := ratio(find(r.Shaped, varDatapath), find(r.Shaped, varTCP))
		verdict(o.has("shaped"), ok && v >= targetShapedRatio, fmt.Sprintf("shaped: datapath / TCP >= %.1f", targetShapedRatio), fmtRatio(v, ok))
		dm, _ := median(r.Unshaped, varDatapath)
		km, _ := median(r.Unshaped, varMPTCP)
		v, ok = ratio(dm, km)
		verdict(o.has("unshaped"), ok && v >= targetUnshapedRatio, fmt.Sprintf("unshaped: datapath / kernel MPTCP >= %.1f", targetUnshapedRatio), fmtRatio(v, ok))
		var dc *cutResult
		for _, c := range r.Cut {
			if c.Variant == varDatapath {
				dc = c
			}
		}
		stallOK, shaOK, stall, sha := false, false, "not measured", "not measured"
		if dc != nil && dc.CutAt > 0 {
			stallOK = dc.Err == nil && dc.Stall < targetStall
			stall = dc.Stall.String()
			if dc.Err != nil {
				stall += " (transfer failed)"
			}
			shaOK = dc.SHAEqual()
			sha = fmt.Sprintf("client %.16s… server %.16s…", dc.SHAClient, dc.SHAServer)
		}
		verdict(o.has("cut"), stallOK, fmt.Sprintf("link cut: datapath stall < %v", targetStall), stall)
		verdict(o.has("cut"), shaOK, "link cut: datapath SHA-256 received == sent", sha)
	}
	_ = tw.Flush()
	var refs []string
	if v, ok := ratio(find(r.Shaped, varMPTCP), find(r.Shaped, varTCP)); ok {
		refs = append(refs, fmt.Sprintf("shaped kernel MPTCP / TCP %.2f", v))
	}
	for _, c := range r.Cut {
		if c.Variant == varMPTCP && c.CutAt > 0 {
			refs = append(refs, fmt.Sprintf("kernel MPTCP link-cut stall %v (SHA equal %v)", c.Stall, c.SHAEqual()))
		}
	}
	if len(refs) > 0 {
		fmt.Fprintf(w, "  reference, no target: %s\n", strings.Join(refs, "; "))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "\nErrors\n")
		for _, n := range notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

func fmtRatio(v float64, ok bool) string {
	if !ok {
		return "not measured"
	}
	return fmt.Sprintf("%.2f", v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
