// Command churn measures how `mptcpd-go daemon` (kernel mode) copes with
// address churn and with event floods that overflow its rtnetlink socket
// (issue 7). Each scenario runs a fresh daemon in a fresh namespace with
// veth pairs into a peer namespace and a three-tier policy (priorities
// decide who gets the kernel's 8 endpoint slots), makes the address
// changes from this process through netlink, and reports:
//
//   - converge: time from the last address change until the kernel's
//     endpoints equal what the policy wants for the final addresses
//     (polled every 2 ms through genl);
//   - reconciles: the daemon's reconciles during the run (its status);
//   - resyncs: rtnetlink subscriptions it lost and rebuilt (its log);
//   - RSS before the churn, peak (VmHWM) and after, and its CPU time.
//
// Scenarios: "churn" paces the events evenly over --duration with the
// default receive buffer; "flood" sends them as fast as possible into a
// receive buffer the kernel's minimum (the daemon's
// MPTCPD_TEST_NETLINK_RCVBUF hook), so it overflows.
//
// Run it as root from the repository root (bench/churn.sh builds it):
//
//	go run ./bench/churn --daemon /path/to/mptcpd-go
//
// Nothing asserts on the figures; a scenario fails only when the daemon
// does not converge at all within --timeout.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// options are the command-line flags.
type options struct {
	daemon    string
	scenarios []string
	events    int
	ifaces    int
	pool      int
	duration  time.Duration
	runs      int
	seed      uint64
	timeout   time.Duration
	keepLogs  bool
}

func main() {
	var o options
	var scenarios string
	flag.StringVar(&o.daemon, "daemon", "", "mptcpd-go binary to run (default: build ./cmd/mptcpd-go)")
	flag.StringVar(&scenarios, "scenario", "churn,flood", "comma-separated scenarios: churn, flood")
	flag.IntVar(&o.events, "events", 2000, "address add/remove events per run")
	flag.IntVar(&o.ifaces, "ifaces", 8, "interfaces (veth pairs)")
	flag.IntVar(&o.pool, "pool", 6, "addresses per interface that come and go")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "churn: spread the events over this long")
	flag.IntVar(&o.runs, "runs", 1, "runs per scenario")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the event sequence (run i uses seed+i)")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "give up waiting for convergence after this long")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep the daemons' logs (the path is printed)")
	flag.Parse()
	o.scenarios = strings.Split(scenarios, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces); use bench/churn.sh")
	}
	for _, s := range o.scenarios {
		if s != "churn" && s != "flood" {
			return fmt.Errorf("unknown scenario %q (want churn or flood)", s)
		}
	}
	work, err := os.MkdirTemp("", nstopo.Prefix)
	if err != nil {
		return err
	}
	defer func() {
		if !o.keepLogs {
			os.RemoveAll(work)
		}
	}()
	if o.daemon == "" {
		o.daemon = filepath.Join(work, "mptcpd-go")
		fmt.Fprintln(os.Stderr, "churn: building ./cmd/mptcpd-go")
		if out, err := exec.Command("go", "build", "-o", o.daemon, "./cmd/mptcpd-go").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/mptcpd-go: %w\n%s", err, out)
		}
	}
	var results []result
	for _, sc := range o.scenarios {
		for i := range o.runs {
			dir := filepath.Join(work, fmt.Sprintf("%s-%d", sc, i+1))
			fmt.Fprintf(os.Stderr, "churn: run %s %d/%d\n", sc, i+1, o.runs)
			r, err := runScenario(o, sc, o.seed+uint64(i), dir)
			if err != nil {
				return fmt.Errorf("%s run %d: %w (daemon log in %s)", sc, i+1, err, dir)
			}
			fmt.Fprintf(os.Stderr, "churn:   %s\n", r.line())
			results = append(results, r)
		}
	}
	report(o, results)
	if o.keepLogs {
		fmt.Printf("\ndaemon logs kept in %s\n", work)
	}
	return nil
}

// result is one run's figures.
type result struct {
	scenario         string
	events           int
	sendTime         time.Duration // first to last event
	converge         time.Duration // last event to the policy's endpoints
	reconciles       uint64
	resyncs          int
	rssBefore, rssHW int64
	rssAfter         int64
	cpu              time.Duration // user+system during the run
	wanted, slots    int
}

func (r result) line() string {
	return fmt.Sprintf("%s: %d events in %v, converged %v after the last, %d reconciles, %d resyncs, RSS %s/%s/%s, CPU %v",
		r.scenario, r.events, r.sendTime.Round(time.Millisecond), r.converge.Round(time.Millisecond), r.reconciles, r.resyncs,
		mib(r.rssBefore), mib(r.rssHW), mib(r.rssAfter), r.cpu.Round(time.Millisecond))
}

func report(o options, rs []result) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	fmt.Printf("mptcpd-go daemon churn/flood benchmark, %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("kernel %s, %d CPUs; %d interfaces (veth), %d addresses each come and go (IPv4 and IPv6), %d events per run\n",
		unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(), o.ifaces, o.pool, o.events)
	fmt.Printf("policy: 3 files, priorities 20/10/0; the kernel keeps %d endpoints\n", genl.MaxEndpoints)
	fmt.Printf("churn: events paced over %v, default receive buffer; flood: unpaced, receive buffer at the kernel's minimum\n", o.duration)
	fmt.Printf("converge = last event -> kernel endpoints equal the policy's (genl, polled every 2 ms)\n")
	fmt.Printf("resyncs = lost rtnetlink subscriptions (ENOBUFS) the daemon rebuilt with a full re-list\n\n")
	fmt.Printf("%-8s %7s %9s %10s %10s %8s %8s %10s %10s %10s %9s\n",
		"scenario", "events", "sent in", "converge", "reconciles", "resyncs", "wanted", "RSS before", "RSS peak", "RSS after", "CPU")
	for _, r := range rs {
		fmt.Printf("%-8s %7d %9s %10s %10d %8d %8s %10s %10s %10s %9s\n",
			r.scenario, r.events, r.sendTime.Round(time.Millisecond), r.converge.Round(time.Millisecond), r.reconciles, r.resyncs,
			fmt.Sprintf("%d/%d", r.slots, r.wanted), mib(r.rssBefore), mib(r.rssHW), mib(r.rssAfter), r.cpu.Round(time.Millisecond))
	}
	fmt.Printf("(wanted = endpoints in the kernel / endpoints the policy wants for the final addresses)\n")
}

// tier is one interface file of the policy.
type tier struct {
	file, glob string
	priority   int
	flags      genl.Flags
	toml       string
}

// tiers is the policy: three files, from high priority to a low-priority
// catch-all whose endpoints are backups.
func tiers() []tier {
	return []tier{
		{"10-high.toml", "ld[01]", 20, genl.FlagSubflow, `"subflow"`},
		{"20-mid.toml", "ld[23]", 10, genl.FlagSubflow, `"subflow"`},
		{"30-low.toml", "ld*", 0, genl.FlagSubflow | genl.FlagBackup, `"subflow", "backup"`},
	}
}

// iface is one interface of a run.
type iface struct {
	name     string
	index    int
	priority int
	flags    genl.Flags
	link     netlink.Link
}

// event is one address change.
type event struct {
	iface  int
	prefix netip.Prefix
	add    bool
}

// poolPrefix is the j-th address of interface i (as in test/load_*).
func poolPrefix(i, j int) netip.Prefix {
	if j%3 == 2 {
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::1/64", 0x100+i, j))
	}
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", 100+i, j))
}

// plan toggles random pool addresses n times and returns the events and
// the final addresses per interface.
func plan(seed uint64, ifaces, pool, n int) ([]event, [][]netip.Prefix) {
	rng := rand.New(rand.NewPCG(seed, 7))
	present := make([][]bool, ifaces)
	for i := range present {
		present[i] = make([]bool, pool)
	}
	evs := make([]event, 0, n)
	for range n {
		i, j := rng.IntN(ifaces), rng.IntN(pool)
		present[i][j] = !present[i][j]
		evs = append(evs, event{i, poolPrefix(i, j), present[i][j]})
	}
	final := make([][]netip.Prefix, ifaces)
	for i := range present {
		for j, ok := range present[i] {
			if ok {
				final[i] = append(final[i], poolPrefix(i, j))
			}
		}
	}
	return evs, final
}

// expected is the endpoints the kernel should end with, sorted by
// address, and how many the policy wants in all.
func expected(ifs []iface, final [][]netip.Prefix) ([]genl.Endpoint, int) {
	type want struct {
		ifc  iface
		addr netip.Addr
	}
	var ws []want
	for i, ifc := range ifs {
		for _, p := range final[i] {
			ws = append(ws, want{ifc, p.Addr()})
		}
	}
	// endpoints.Plan's order: priority, interface name, address.
	slices.SortFunc(ws, func(a, b want) int {
		return cmp.Or(cmp.Compare(b.ifc.priority, a.ifc.priority), strings.Compare(a.ifc.name, b.ifc.name), a.addr.Compare(b.addr))
	})
	eps := make([]genl.Endpoint, 0, genl.MaxEndpoints)
	for _, w := range ws[:min(len(ws), genl.MaxEndpoints)] {
		eps = append(eps, genl.Endpoint{Addr: w.addr, Flags: w.ifc.flags, Ifindex: w.ifc.index})
	}
	sortEndpoints(eps)
	return eps, len(ws)
}

func sortEndpoints(eps []genl.Endpoint) {
	slices.SortFunc(eps, func(a, b genl.Endpoint) int { return a.Addr.Compare(b.Addr) })
}

// runScenario runs one scenario in fresh namespaces; dir receives the
// policy, control socket, state file and log.
func runScenario(o options, scenario string, seed uint64, dir string) (res result, err error) {
	res.scenario = scenario
	ns, err := nstopo.NewNS("churn")
	if err != nil {
		return res, err
	}
	defer ns.Close()
	peer, err := nstopo.NewNS("peer")
	if err != nil {
		return res, err
	}
	defer peer.Close()

	ifs := make([]iface, o.ifaces)
	for i := range ifs {
		name := fmt.Sprintf("ld%d", i)
		if err := nstopoVeth(ns, peer, name); err != nil {
			return res, err
		}
		l, err := ns.Handle.LinkByName(name)
		if err != nil {
			return res, err
		}
		ifs[i] = iface{name: name, index: l.Attrs().Index, link: l}
		for _, t := range tiers() {
			if ok, _ := path.Match(t.glob, name); ok {
				ifs[i].priority, ifs[i].flags = t.priority, t.flags
				break
			}
		}
	}
	if err := waitRunning(ns, ifs, o.timeout); err != nil {
		return res, err
	}

	socket := filepath.Join(dir, "control.sock")
	config := filepath.Join(dir, "mptcpd-go.toml")
	if err := writePolicy(dir, config, socket); err != nil {
		return res, err
	}
	env := os.Environ()
	if scenario == "flood" {
		env = append(env, "MPTCPD_TEST_NETLINK_RCVBUF=1")
	}
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command(o.daemon, "daemon", "--config", config)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := ns.Do(cmd.Start); err != nil {
		return res, fmt.Errorf("start the daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid

	gc, err := genl.Dial(&genl.Config{NetNS: ns.Name})
	if err != nil {
		return res, err
	}
	defer gc.Close()
	var st0 daemon.Status
	if err := poll(o.timeout, exited, func() (bool, error) {
		var err error
		st0, err = daemon.QueryStatus(socket)
		return err == nil, nil
	}); err != nil {
		return res, fmt.Errorf("the daemon did not answer on %s: %w", socket, err)
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	if res.rssBefore, _, err = memory(pid); err != nil {
		return res, err
	}

	evs, final := plan(seed, o.ifaces, o.pool, o.events)
	want, nwanted := expected(ifs, final)
	res.events, res.wanted, res.slots = len(evs), nwanted, len(want)
	pace := o.duration
	if scenario == "flood" {
		pace = 0
	}
	start := time.Now()
	for k, ev := range evs {
		if pace > 0 {
			if d := time.Until(start.Add(pace * time.Duration(k) / time.Duration(len(evs)))); d > 0 {
				time.Sleep(d)
			}
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ev.prefix.Addr().AsSlice(), Mask: net.CIDRMask(ev.prefix.Bits(), ev.prefix.Addr().BitLen())}}
		if ev.prefix.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if ev.add {
			err = ns.Handle.AddrAdd(ifs[ev.iface].link, a)
		} else {
			err = ns.Handle.AddrDel(ifs[ev.iface].link, a)
		}
		if err != nil {
			return res, fmt.Errorf("event %d (add=%v %s on %s): %w", k, ev.add, ev.prefix, ifs[ev.iface].name, err)
		}
	}
	last := time.Now()
	res.sendTime = last.Sub(start)

	var got []genl.Endpoint
	if err := poll(o.timeout, exited, func() (bool, error) {
		eps, err := gc.Endpoints()
		if err != nil {
			return false, err
		}
		got = eps
		return sameEndpoints(want, eps), nil
	}); err != nil {
		return res, fmt.Errorf("no convergence: %w; kernel endpoints %v, want %v", err, got, want)
	}
	res.converge = time.Since(last)

	// The reconcile that made the last change publishes its status just
	// after; wait for the daemon to own exactly those endpoints.
	var st daemon.Status
	if err := poll(o.timeout, exited, func() (bool, error) {
		var err error
		st, err = daemon.QueryStatus(socket)
		return err == nil && len(st.Owned) == len(want) && len(st.Foreign) == 0, err
	}); err != nil {
		return res, fmt.Errorf("the status does not show the endpoints owned: %w", err)
	}
	res.reconciles = st.Reconciles - st0.Reconciles
	cpu1, err := cpuTime(pid)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	if res.rssAfter, res.rssHW, err = memory(pid); err != nil {
		return res, err
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		return res, err
	}
	res.resyncs = strings.Count(string(log), "lost the rtnetlink subscription")
	return res, nil
}

// nstopoVeth creates a veth pair named name on both sides, both up.
func nstopoVeth(ns, peer *nstopo.NS, name string) error {
	return harness.AddVeth(ns.NS, name, peer.NS, name)
}

// sameEndpoints compares ids aside; want is sorted.
func sameEndpoints(want, got []genl.Endpoint) bool {
	if len(want) != len(got) {
		return false
	}
	g := slices.Clone(got)
	for i := range g {
		g[i].ID = 0
		g[i].Flags &^= genl.FlagImplicit
	}
	sortEndpoints(g)
	return slices.Equal(want, g)
}

// writePolicy writes the main file and the three interface files.
func writePolicy(dir, config, socket string) error {
	if err := os.MkdirAll(filepath.Join(dir, "interfaces.d"), 0o755); err != nil {
		return err
	}
	main := fmt.Sprintf("control_socket = %q\nstate_file = %q\nlog_level = \"info\"\n", socket, filepath.Join(dir, "state.json"))
	if err := os.WriteFile(config, []byte(main), 0o644); err != nil {
		return err
	}
	for _, t := range tiers() {
		text := fmt.Sprintf("[match]\nname = [%q]\n\n[endpoint]\nflags = [%s]\npriority = %d\nalso_without_default_route = true\n",
			t.glob, t.toml, t.priority)
		if err := os.WriteFile(filepath.Join(dir, "interfaces.d", t.file), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// poll calls cond every 2 ms until it reports true, it fails, the daemon
// exits or timeout passes.
func poll(timeout time.Duration, exited <-chan error, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("timed out after %v (last error: %v)", timeout, lastErr)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitRunning waits until every interface has its carrier.
func waitRunning(ns *nstopo.NS, ifs []iface, timeout time.Duration) error {
	return poll(timeout, nil, func() (bool, error) {
		for _, ifc := range ifs {
			l, err := ns.Handle.LinkByIndex(ifc.index)
			if err != nil {
				return false, err
			}
			if l.Attrs().RawFlags&unix.IFF_RUNNING == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// memory returns VmRSS and VmHWM of pid in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read the daemon's memory use: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.Fields(val)[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %q: %w", pid, line, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// cpuTime is pid's user+system time from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the daemon's CPU time: %w", err)
	}
	// The command name may contain spaces; fields count from after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// utime and stime are fields 14 and 15 of stat(5), 12 and 13 here.
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
