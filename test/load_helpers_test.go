package test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
)

// The load tests (load_*_test.go) drive the real daemon with many address
// changes and then check the end state, never how long it took: timing
// figures are bench/churn's business.

// loadIface is one interface of a load test and what the policy says
// about it.
type loadIface struct {
	name     string
	priority int
	flags    genl.Flags
	index    int // in the daemon's namespace, set once the veth exists
}

// loadTier is one interface file of the load policy: a glob, its priority
// and flags.
type loadTier struct {
	file, glob string
	priority   int
	flags      []string
}

// loadTiers is the load policy: three files whose priorities decide which
// wants get the kernel's 8 endpoint slots (higher first, then interface
// name, then address: endpoints.Plan's order).
var loadTiers = []loadTier{
	{file: "10-high.toml", glob: "ld[01]", priority: 20, flags: []string{"subflow"}},
	{file: "20-mid.toml", glob: "ld[23]", priority: 10, flags: []string{"subflow"}},
	{file: "30-low.toml", glob: "ld*", priority: 0, flags: []string{"subflow", "backup"}},
}

// loadPolicy returns the interface files of loadTiers.
func loadPolicy() map[string]string {
	files := map[string]string{}
	for _, tier := range loadTiers {
		files[tier.file] = ifaceFile(tier.glob, tier.flags, fmt.Sprintf("priority = %d\n", tier.priority)+alsoWithout)
	}
	return files
}

// newLoadSetup creates a daemon setup with the load policy and n veths
// named ld0..ld<n-1>.
func newLoadSetup(t *testing.T, n int) (*daemonSetup, []loadIface) {
	t.Helper()
	s := newDaemonSetup(t, "", loadPolicy())
	ifs := make([]loadIface, n)
	names := make([]string, n)
	for i := range ifs {
		name := fmt.Sprintf("ld%d", i)
		ifs[i] = loadIface{name: name, index: s.veth(t, name)}
		names[i] = name
		ifs[i].priority, ifs[i].flags = tierOf(t, name)
	}
	waitRunning(t, s.ns, names...)
	return s, ifs
}

// tierOf is the priority and flags loadTiers give an interface: the first
// matching file, like policy.Config.Match.
func tierOf(t *testing.T, name string) (int, genl.Flags) {
	t.Helper()
	for _, tier := range loadTiers {
		ok, err := path.Match(tier.glob, name)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue
		}
		var f genl.Flags
		for _, fl := range tier.flags {
			switch fl {
			case "subflow":
				f |= genl.FlagSubflow
			case "backup":
				f |= genl.FlagBackup
			default:
				t.Fatalf("tierOf: flag %q not handled", fl)
			}
		}
		return tier.priority, f
	}
	t.Fatalf("no load policy file matches %s", name)
	return 0, 0
}

// addrEvent is one address change.
type addrEvent struct {
	iface  int // index into the interfaces
	prefix netip.Prefix
	add    bool
}

// churnPlan is a reproducible sequence of address changes on
// interfaces that start without addresses from the pool.
type churnPlan struct {
	ifaces, perIface int
	events           []addrEvent
}

// poolPrefix is the j-th address of interface i: IPv4 addresses in
// subnets of their own (deleting a primary IPv4 address takes its
// secondaries with it, which the plan could not model), a few IPv6 ones
// (added without DAD, see harness).
func poolPrefix(i, j int) netip.Prefix {
	if j%3 == 2 {
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::1/64", 0x100+i, j))
	}
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", 100+i, j))
}

// newChurnPlan toggles random addresses of a pool of perIface per
// interface, n times: each event adds an absent address or removes a
// present one, so every event is a real change the kernel reports.
func newChurnPlan(seed uint64, ifaces, perIface, n int) churnPlan {
	rng := rand.New(rand.NewPCG(seed, 7))
	present := make([][]bool, ifaces)
	for i := range present {
		present[i] = make([]bool, perIface)
	}
	p := churnPlan{ifaces: ifaces, perIface: perIface, events: make([]addrEvent, 0, n)}
	for range n {
		i, j := rng.IntN(ifaces), rng.IntN(perIface)
		present[i][j] = !present[i][j]
		p.events = append(p.events, addrEvent{iface: i, prefix: poolPrefix(i, j), add: present[i][j]})
	}
	return p
}

// finalAfter is the address set, per interface and sorted, after the
// first n events.
func (p churnPlan) finalAfter(n int) [][]netip.Prefix {
	present := map[netip.Prefix]bool{}
	for _, ev := range p.events[:n] {
		present[ev.prefix] = ev.add
	}
	final := make([][]netip.Prefix, p.ifaces)
	for i := range final {
		for j := range p.perIface {
			if pf := poolPrefix(i, j); present[pf] {
				final[i] = append(final[i], pf)
			}
		}
		slices.SortFunc(final[i], comparePrefix)
	}
	return final
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// apply makes the changes in s.ns through one netlink handle, spread
// evenly over about over (0: as fast as possible). It returns when the
// last change was made.
func (p churnPlan) apply(t *testing.T, s *daemonSetup, ifs []loadIface, over time.Duration) {
	t.Helper()
	p.applyRange(t, s, ifs, 0, len(p.events), over)
}

// applyRange makes the changes from..to-1, as apply.
func (p churnPlan) applyRange(t *testing.T, s *daemonSetup, ifs []loadIface, from, to int, over time.Duration) {
	t.Helper()
	links := make([]netlink.Link, len(ifs))
	for i, ifc := range ifs {
		l, err := s.ns.Handle.LinkByIndex(ifc.index)
		if err != nil {
			t.Fatalf("looking up %s: %v", ifc.name, err)
		}
		links[i] = l
	}
	start := time.Now()
	events := p.events[from:to]
	for k, ev := range events {
		if over > 0 {
			// Paced against the start, so a slow call does not push
			// every later event back.
			if d := time.Until(start.Add(over * time.Duration(k) / time.Duration(len(events)))); d > 0 {
				time.Sleep(d)
			}
		}
		a := &netlink.Addr{IPNet: prefixIPNet(ev.prefix)}
		if ev.prefix.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		var err error
		if ev.add {
			err = s.ns.Handle.AddrAdd(links[ev.iface], a)
		} else {
			err = s.ns.Handle.AddrDel(links[ev.iface], a)
		}
		if err != nil {
			t.Fatalf("event %d (add=%v %s on %s): %v", from+k, ev.add, ev.prefix, ifs[ev.iface].name, err)
		}
	}
	t.Logf("%d address events on %d interfaces in %v", len(events), len(ifs), time.Since(start).Round(time.Millisecond))
}

// prefixIPNet converts for vishvananda/netlink.
func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// wanted is every endpoint the load policy wants for the addresses, in
// endpoints.Plan's order: priority, then interface name, then address.
func wanted(ifs []loadIface, final [][]netip.Prefix) []genl.Endpoint {
	type want struct {
		ifc  loadIface
		addr netip.Addr
	}
	var ws []want
	for i, ifc := range ifs {
		for _, pf := range final[i] {
			ws = append(ws, want{ifc, pf.Addr()})
		}
	}
	slices.SortStableFunc(ws, func(a, b want) int {
		return cmp.Or(cmp.Compare(b.ifc.priority, a.ifc.priority), strings.Compare(a.ifc.name, b.ifc.name), a.addr.Compare(b.addr))
	})
	eps := make([]genl.Endpoint, len(ws))
	for k, w := range ws {
		eps[k] = genl.Endpoint{Addr: w.addr, Flags: w.ifc.flags, Ifindex: w.ifc.index}
	}
	return eps
}

// firstSlots is the endpoints the kernel should end with: the first
// genl.MaxEndpoints wants (no foreign endpoints take slots).
func firstSlots(wanted []genl.Endpoint) []genl.Endpoint {
	return wanted[:min(len(wanted), genl.MaxEndpoints)]
}

// checkConverged waits until the kernel's endpoints are want (ids aside)
// and then checks, after one more reconcile that a reload forces, that
// the daemon agrees: its status owns exactly them (ids included), reports
// the capped rest as not added and no errors, and its state file records
// the same endpoints with the same ids. It returns the final status.
func checkConverged(t *testing.T, d *daemonProc, want []genl.Endpoint, wantedTotal int) daemon.Status {
	t.Helper()
	want = sortedEndpoints(want) // as the kernel's are listed
	got := d.waitEndpoints(t, want...)
	// A reconcile that starts now sees the final addresses: after it, the
	// status and the state file describe the end state.
	since := time.Now()
	if r := mptcpdgoHost(t, "reload", "--socket", d.s.socket); r.Code != exitOK {
		t.Fatalf("reload: %v", r)
	}
	st := d.waitReconciledSince(t, since)
	if diff := gocmp.Diff(want, withoutIDs(d.s.endpoints(t)), cmpNetip(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("endpoints changed after the forced reconcile (-want +got):\n%s", diff)
	}

	kernel := make([]string, len(got))
	for i, e := range got {
		kernel[i] = fmt.Sprintf("%d %s", e.ID, e.Addr)
	}
	var owned []string
	for _, o := range st.Owned {
		owned = append(owned, fmt.Sprintf("%d %s", o.ID, o.Addr))
	}
	byAddr := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := gocmp.Diff(kernel, owned, byAddr, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("owned endpoints in the status (-kernel +status):\n%s", diff)
	}
	if len(st.Foreign) != 0 {
		t.Errorf("foreign endpoints in the status: %+v, want none (leaked?)", st.Foreign)
	}
	if len(st.Errors) != 0 {
		t.Errorf("errors in the last reconcile: %q", st.Errors)
	}
	if n := wantedTotal - len(want); len(st.NotAdded) != n {
		t.Errorf("status lists %d wanted endpoints as not added, want %d (capped): %+v", len(st.NotAdded), n, st.NotAdded)
	}

	saved, err := endpoints.Load(d.s.state)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	var inFile []string
	for _, o := range saved.List() {
		inFile = append(inFile, fmt.Sprintf("%d %s", o.ID, o.Addr))
	}
	if diff := gocmp.Diff(kernel, inFile, byAddr, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("state file %s (-kernel +file):\n%s", d.s.state, diff)
	}
	return st
}

// vmRSS returns the resident set size of pid in bytes, and the peak
// (VmHWM), from /proc/PID/status.
func vmRSS(t *testing.T, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's memory use: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "12345 kB"
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/status: %s: %v", pid, line, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak
}

// mib renders bytes as MiB.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
