// Command datapath benchmarks mptcpd-go's userspace multipath data path
// (package datapath) against plain TCP and kernel MPTCP.
//
// Every run builds two fresh network namespaces (mptcpdgo-*-bench-client
// and -server) joined by two veth links, 10.0.1.0/24 and 10.0.2.0/24. The
// server end runs in its own process (this binary re-executed with the
// hidden -serve flag inside the server namespace), so CPU time and memory
// are measured per side; the client end runs in the benchmark process.
// Data flows from the server to the client in 256 KiB writes and is read
// into 256 KiB buffers; the client checks every byte against the known
// stream. The variants are
//
//   - tcp: one plain TCP connection over link 1;
//   - kernel-mptcp: kernel MPTCP, the client's in-kernel path manager
//     having a subflow endpoint for its link-2 address (bound to the
//     link-2 interface) and limits subflows=2 on both sides;
//   - datapath: datapath.Dial with one Path per link (source address and
//     SO_BINDTODEVICE), default datapath.Config unless the -dp-* flags
//     say otherwise.
//
// It measures, in one run and in this order:
//
//  1. shaped: each link limited to 100 Mbit/s by tbf on both ends; each
//     variant sends for -shaped-duration; Mbit/s, the share of the bytes
//     each link carried, the ratios datapath/TCP (target ≥ 1.8) and
//     kernel-MPTCP/TCP;
//  2. link cut: still shaped, the datapath (and kernel MPTCP as the
//     reference) sends for -cut-duration and the client's link-2
//     interface goes down -cut-at after the first byte; the stall (the
//     longest run of 10 ms intervals receiving less than 10% of the
//     pre-cut rate; target < 1 s), the longest gap between reads, the
//     rates before and after, and SHA-256 of received == sent;
//  3. unshaped veth: each variant for -unshaped-duration, -unshaped-repeat
//     rounds taken in turn (the median run counts, as the machine's load
//     varies); Gbit/s and datapath/kernel-MPTCP (target ≥ 0.5), plus CPU
//     seconds per GB (over all good runs) of the client process and of
//     the server process (getrusage, user and system; the kernel's
//     socket work is charged to the process making the system calls, and
//     softirq work partly to whoever is running);
//  4. memory: -conns idle datapath connections with two subflows each;
//     RSS, Go heap and goroutine stacks per connection, per side, after a
//     forced GC.
//
// The report lists the figures and PASS/FAIL per target; a measurement
// that failed (error or timeout) fails its targets. The program exits 0
// whatever the verdicts, non-zero only when it could not run at all.
//
// Usage (root; it creates namespaces and removes them when it ends, also
// on Ctrl-C):
//
//	go run ./bench/datapath [-quick] [-o bench/datapath-results.txt]
//
// or bench/datapath.sh, which builds as the calling user and runs it as
// root. The default run takes about 105 seconds; -quick about 35.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/proc"
)

// options are the benchmark's flags.
type options struct {
	sections         []string
	shapedDuration   time.Duration
	unshapedDuration time.Duration
	unshapedRepeat   int
	cutDuration      time.Duration
	cutAt            time.Duration
	cutKernel        bool
	conns            int
	rate             string
	burst            string
	latency          string
	out              string
	dp               dpOptions
}

// sectionNames are the measurements, in the order they run.
func sectionNames() []string { return []string{"shaped", "cut", "unshaped", "rss"} }

func main() {
	var o options
	var serve, quick bool
	allSections := sectionNames()
	fs := flag.NewFlagSet("datapath", flag.ContinueOnError)
	fs.BoolVar(&serve, "serve", false, "internal: run as the server process")
	fs.BoolVar(&quick, "quick", false, "short run for a quick check (durations and -conns that are not set explicitly shrink)")
	sections := fs.String("sections", strings.Join(allSections, ","), "measurements to run, comma-separated: "+strings.Join(allSections, ","))
	fs.DurationVar(&o.shapedDuration, "shaped-duration", 10*time.Second, "sending time per variant on the shaped links")
	fs.DurationVar(&o.unshapedDuration, "unshaped-duration", 5*time.Second, "sending time per variant on the unshaped links")
	fs.IntVar(&o.unshapedRepeat, "unshaped-repeat", 3, "rounds of the unshaped variants (taken in turn); the median run counts")
	fs.DurationVar(&o.cutDuration, "cut-duration", 10*time.Second, "sending time of the link-cut transfers")
	fs.DurationVar(&o.cutAt, "cut-at", 3*time.Second, "when link 2 goes down, after the first byte")
	fs.BoolVar(&o.cutKernel, "cut-kernel", true, "also cut a kernel MPTCP transfer, as the reference")
	fs.IntVar(&o.conns, "conns", 200, "idle datapath connections for the memory measurement")
	fs.StringVar(&o.rate, "rate", "100mbit", "tbf rate per link and direction")
	fs.StringVar(&o.burst, "tbf-burst", "64kb", "tbf burst")
	fs.StringVar(&o.latency, "tbf-latency", "20ms", "tbf latency (queue length)")
	fs.StringVar(&o.out, "o", "", "also write the whole output (progress and report) to this file")
	fs.IntVar(&o.dp.window, "dp-window", 0, "datapath Config.Window in bytes (0: default)")
	fs.DurationVar(&o.dp.heartbeat, "dp-heartbeat", 0, "datapath Config.Heartbeat (0: default)")
	fs.DurationVar(&o.dp.deadAfter, "dp-dead-after", 0, "datapath Config.DeadAfter (0: default)")
	fs.IntVar(&o.dp.maxPayload, "dp-max-payload", 0, "datapath Config.MaxPayload (0: default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/datapath [flags]   (as root)\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "serve" {
				fmt.Fprintf(fs.Output(), "  -%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
			}
		})
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if serve {
		if err := runServer(o.dp); err != nil {
			fmt.Fprintf(os.Stderr, "datapath server: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"shaped-duration": "3s", "unshaped-duration": "2s", "cut-duration": "6s", "cut-at": "2s", "conns": "50", "unshaped-repeat": "1"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	for s := range strings.SplitSeq(*sections, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) {
			fmt.Fprintf(os.Stderr, "datapath: -sections: unknown %q (want some of %s)\n", s, strings.Join(allSections, ","))
			os.Exit(2)
		}
		o.sections = append(o.sections, s)
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "datapath: %v\n", err)
		os.Exit(2)
	}
	if err := proc.CheckRootMPTCP("creates network namespaces, veth links and qdiscs", "bench/datapath.sh"); err != nil {
		fmt.Fprintf(os.Stderr, "datapath: %v\n", err)
		os.Exit(2)
	}

	ctx := proc.InterruptContext()
	lg := &logger{w: os.Stderr}
	rep, err := run(ctx, o, lg)
	if err != nil && rep != nil {
		rep.Interrupted = err.Error()
		rep.finish()
	}
	var out bytes.Buffer
	if rep != nil {
		rep.write(&out)
	}
	_, _ = os.Stdout.Write(out.Bytes())
	if o.out != "" {
		werr := os.WriteFile(o.out, append(lg.buf.Bytes(), out.Bytes()...), 0o644)
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("-o: %w", werr))
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "datapath: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case o.shapedDuration <= 0 || o.unshapedDuration <= 0 || o.cutDuration <= 0:
		return errors.New("durations must be positive")
	case o.cutAt <= stallLead || o.cutAt >= o.cutDuration-time.Second:
		return fmt.Errorf("-cut-at %v: want more than %v and at least 1s before -cut-duration %v", o.cutAt, stallLead, o.cutDuration)
	case o.unshapedRepeat < 1 || o.unshapedRepeat > 20:
		return fmt.Errorf("-unshaped-repeat %d: want 1..20", o.unshapedRepeat)
	case o.conns < 1 || o.conns > 5000:
		return fmt.Errorf("-conns %d: want 1..5000", o.conns)
	case o.dp.window < 0 || o.dp.maxPayload < 0 || o.dp.heartbeat < 0 || o.dp.deadAfter < 0:
		return errors.New("-dp-* values must not be negative")
	}
	return nil
}

// logger prints progress on w and keeps a copy for -o.
type logger struct {
	w   io.Writer
	buf bytes.Buffer
}

func (l *logger) logf(format string, args ...any) {
	line := fmt.Sprintf("datapath: "+format+"\n", args...)
	_, _ = io.WriteString(l.w, line)
	l.buf.WriteString(line)
}

// has reports whether section s runs.
func (o *options) has(s string) bool { return slices.Contains(o.sections, s) }

// run sets everything up, runs the sections and tears everything down,
// also when ctx ends early. The report holds what was measured.
func run(ctx context.Context, o options, lg *logger) (rep *report, err error) {
	rep = newReport(o)
	topo, err := newTopology()
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, topo.close()) }()
	p := topo.pair
	lg.logf("namespaces %s and %s, links %s-%s (%s) and %s-%s (%s)", p.Client.Name, p.Server.Name,
		p.Links[0].ClientV4, p.Links[0].ServerV4, p.Links[0].ClientIf, p.Links[1].ClientV4, p.Links[1].ServerV4, p.Links[1].ClientIf)
	srv, err := startServer(ctx, p.Server, o.dp)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	lg.logf("server process %d in %s", srv.pid(), p.Server.Name)

	d := &dialer{topo: topo, dp: o.dp}
	pat := newPattern()
	var nextID uint64
	xfer := func(spec transferSpec) *transferResult {
		nextID++
		spec.ID = nextID
		r := transfer(ctx, d, srv, pat, spec)
		msg := fmt.Sprintf("  %-12s %8.1f Mbit/s  %d bytes  cpu client %v server %v  link rx %v  %s",
			r.Variant, r.Mbps(), r.Bytes, r.Client.Total().Round(time.Millisecond), r.Server.Total().Round(time.Millisecond), r.LinkRx, r.Multipath)
		if r.Err != nil {
			msg += "  ERROR: " + r.Err.Error()
		}
		lg.logf("%s", msg)
		// Let the subflows close and the queues drain.
		sleep(ctx, 500*time.Millisecond)
		return r
	}
	variants := []string{varTCP, varMPTCP, varDatapath}

	if o.has("shaped") || o.has("cut") {
		if err := topo.shape(ctx, o.rate, o.burst, o.latency); err != nil {
			return rep, err
		}
	}
	if o.has("shaped") {
		lg.logf("shaped (tbf %s burst %s latency %s per link and direction), %v per variant", o.rate, o.burst, o.latency, o.shapedDuration)
		for _, v := range variants {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Shaped = append(rep.Shaped, xfer(transferSpec{Variant: v, Duration: o.shapedDuration}))
		}
	}
	if o.has("cut") {
		cutVariants := []string{varDatapath}
		if o.cutKernel {
			cutVariants = append(cutVariants, varMPTCP)
		}
		lg.logf("link cut: %s down %v after the first byte of a %v transfer", p.Links[1].ClientIf, o.cutAt, o.cutDuration)
		for _, v := range cutVariants {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			r := xfer(transferSpec{Variant: v, Duration: o.cutDuration, SHA: true, Track: true, CutAfter: o.cutAt,
				Cut: func() error { return topo.setLink(1, false) }})
			c := &cutResult{transferResult: r}
			if r.CutAt > 0 {
				end := r.Elapsed
				if end == 0 && len(r.Reads) > 0 {
					end = r.Reads[len(r.Reads)-1].At
				}
				c.stallStats = analyseStall(r.Reads, r.CutAt, end)
				lg.logf("  %s: stall %v (starting %v after the cut), longest read gap %v, %.1f -> %.1f Mbit/s, sha equal %v",
					v, c.Stall, c.StallStart, c.MaxGap.Round(time.Millisecond), c.PreMbps, c.PostMbps, r.SHAEqual())
			}
			r.Reads = nil
			rep.Cut = append(rep.Cut, c)
			if err := topo.restoreLink(ctx, 1); err != nil {
				return rep, err
			}
			// Give the in-kernel path manager and ARP a moment.
			sleep(ctx, time.Second)
		}
	}
	if o.has("shaped") || o.has("cut") {
		if err := topo.shape(ctx, "", "", ""); err != nil {
			return rep, err
		}
	}
	if o.has("unshaped") {
		lg.logf("unshaped veth, %v per variant, %d rounds", o.unshapedDuration, o.unshapedRepeat)
		for range o.unshapedRepeat {
			for _, v := range variants {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				rep.Unshaped = append(rep.Unshaped, xfer(transferSpec{Variant: v, Duration: o.unshapedDuration}))
			}
		}
	}
	if o.has("rss") {
		lg.logf("memory: %d idle datapath connections", o.conns)
		rep.Mem = measureMem(ctx, d, srv, o.conns)
		if rep.Mem.Err != nil {
			lg.logf("  ERROR: %v", rep.Mem.Err)
		}
	}
	rep.finish()
	return rep, ctx.Err()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
