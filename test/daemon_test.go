package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/policy"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// The daemon tests run `mptcpd-go daemon` as a process inside a fresh
// namespace, with its policy, control socket and state file in the test's
// temporary directory, and watch what it does to the kernel's endpoints
// and limits. Each waits for states, never for time.

// ifaceFile returns an interface file matching glob with the flags, plus
// extra lines in [endpoint].
func ifaceFile(glob string, flags []string, extra string) string {
	q := make([]string, len(flags))
	for i, f := range flags {
		q[i] = fmt.Sprintf("%q", f)
	}
	return fmt.Sprintf("[match]\nname = [%q]\n\n[endpoint]\nflags = [%s]\n%s", glob, strings.Join(q, ", "), extra)
}

const alsoWithout = "also_without_default_route = true\n"

const (
	fSignal  = genl.FlagSignal
	fSubflow = genl.FlagSubflow
	fBackup  = genl.FlagBackup
)

// TestDaemonTwoPolicies: two interfaces with different policy files;
// endpoints follow the addresses with each file's flags, the default-route
// rule applies where the file asks for it, and the limits are the main
// file's (one fixed, one "auto").
func TestDaemonTwoPolicies(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "[limits]\nsubflows = 5\nadd_addr_accepted = \"auto\"\n", map[string]string{
		"10-a.toml": ifaceFile("veth1*", []string{"subflow"}, ""),
		"20-b.toml": ifaceFile("veth2*", []string{"subflow", "backup"}, "priority = 10\n"+alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	if2 := s.veth(t, "veth2")
	d := s.start(t)
	d.waitReady(t)
	d.waitEndpoints(t)
	// auto: no subflow endpoints, but at least 1.
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 1})

	// veth1 has no default route yet: 10-a does not want its address. It
	// is added first, so the dump that shows veth2's address shows it too.
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	d.waitEndpoints(t, ep("10.2.0.1", fSubflow|fBackup, if2))
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 1})
	st := d.status(t)
	if a, ok := statusAddr(st, "veth1", "10.1.0.1/24"); !ok || a.Wanted || !strings.Contains(a.Why, "no ipv4 default route") {
		t.Errorf("veth1 10.1.0.1/24 in the status: %+v (found %v), want unwanted for lack of a default route", a, ok)
	}

	// With a default route it is wanted.
	s.ns.AddDefaultRoute(t, "veth1", "10.1.0.254")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSubflow|fBackup, if2))
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 2})

	// IPv6: veth1 has no IPv6 default route, veth2 needs none.
	s.ns.AddAddr(t, "veth1", "2001:db8:1::1/64")
	s.ns.AddAddr(t, "veth2", "2001:db8:2::1/64")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSubflow|fBackup, if2),
		ep("2001:db8:2::1", fSubflow|fBackup, if2))
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 3})

	// A second address on veth1, in another subnet (deleting a primary
	// IPv4 address deletes its secondaries too).
	s.ns.AddAddr(t, "veth1", "10.1.1.1/24")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.1.1.1", fSubflow, if1),
		ep("10.2.0.1", fSubflow|fBackup, if2), ep("2001:db8:2::1", fSubflow|fBackup, if2))
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 4})

	// Removals, on both interfaces; 10.1.0.1, which the default route
	// goes through, last.
	s.ns.DelAddr(t, "veth2", "10.2.0.1/24")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.1.1.1", fSubflow, if1),
		ep("2001:db8:2::1", fSubflow|fBackup, if2))
	s.ns.DelAddr(t, "veth1", "10.1.1.1/24")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("2001:db8:2::1", fSubflow|fBackup, if2))
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 2})
	s.ns.DelAddr(t, "veth2", "2001:db8:2::1/64")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1))
	s.ns.DelAddr(t, "veth1", "10.1.0.1/24")
	d.waitEndpoints(t)
	d.waitLimits(t, genl.Limits{Subflows: 5, AddAddrAccepted: 1})
}

// statusAddr finds an address of an interface in a status.
func statusAddr(st daemon.Status, iface, prefix string) (daemon.AddrStatus, bool) {
	for _, is := range st.Interfaces {
		if is.Name != iface {
			continue
		}
		for _, a := range is.Addrs {
			if a.Addr == prefix {
				return a, true
			}
		}
	}
	return daemon.AddrStatus{}, false
}

// TestDaemonLinkDownUp: the endpoints of a link that goes down (or loses
// its carrier) go, and come back when it is up again; the other link's
// endpoint stays as it is. IPv4 only: the kernel flushes IPv6 addresses of
// a link that goes down.
func TestDaemonLinkDownUp(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-veth.toml": ifaceFile("veth*", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	if2 := s.veth(t, "veth2")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	// A secondary address: IFA_F_SECONDARY, the bit IPv6 uses for
	// temporary addresses, which the default skip leaves out.
	s.ns.AddAddr(t, "veth1", "10.1.0.2/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	d := s.start(t)
	d.waitReady(t)
	all := []genl.Endpoint{ep("10.1.0.1", fSubflow, if1), ep("10.1.0.2", fSubflow, if1), ep("10.2.0.1", fSubflow, if2)}
	before := d.waitEndpoints(t, all...)
	veth2ID := before[2].ID

	s.ns.LinkDown(t, "veth1")
	after := d.waitEndpoints(t, ep("10.2.0.1", fSubflow, if2))
	if after[0].ID != veth2ID {
		t.Errorf("veth2's endpoint changed id from %d to %d while veth1 went down", veth2ID, after[0].ID)
	}
	st := d.waitStatus(t, "veth1's addresses reported as waiting", func(st daemon.Status) bool {
		return notAddedMentions(st, "10.1.0.1", "veth1 is down") && notAddedMentions(st, "10.1.0.2", "veth1 is down")
	})
	if len(st.Owned) != 1 || st.Owned[0].Addr != "10.2.0.1" {
		t.Errorf("owned endpoints while veth1 is down: %+v", st.Owned)
	}

	s.ns.LinkUp(t, "veth1")
	d.waitEndpoints(t, all...)

	// No carrier: the peer end goes down.
	s.peer.LinkDown(t, "veth2")
	d.waitEndpoints(t, all[:2]...)
	d.waitStatus(t, "veth2's address reported as waiting for a carrier", func(st daemon.Status) bool {
		return notAddedMentions(st, "10.2.0.1", "veth2 has no carrier")
	})
	s.peer.LinkUp(t, "veth2")
	d.waitEndpoints(t, all...)
}

// notAddedMentions reports whether the status lists addr as wanted but not
// in the kernel, for a reason containing why.
func notAddedMentions(st daemon.Status, addr, why string) bool {
	return slices.ContainsFunc(st.NotAdded, func(n daemon.NotAdded) bool {
		return n.Addr == addr && strings.Contains(n.Reason, why)
	})
}

// addrFlags returns the IFA_F_* flags of addr on ifname, and whether it is
// there.
func addrFlags(t *testing.T, ns *harness.NS, ifname string, addr netip.Addr) (int, bool) {
	t.Helper()
	link, err := ns.Handle.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := ns.Handle.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("listing the addresses of %s: %v", ifname, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return a.Flags, true
		}
	}
	return 0, false
}

// addAddrWithDAD adds an IPv6 address without IFA_F_NODAD (harness.AddAddr
// sets it), so that duplicate address detection runs.
func addAddrWithDAD(t *testing.T, ns *harness.NS, ifname, cidr string) {
	t.Helper()
	link, err := ns.Handle.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle.AddrAdd(link, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, ifname, err)
	}
}

// TestDaemonIPv6DAD: an IPv6 address gets no endpoint while duplicate
// address detection runs, and one once it succeeded; one whose DAD failed
// never gets one.
func TestDaemonIPv6DAD(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	// Three probes a second apart: DAD takes about 3 s, long enough to
	// see the tentative state however slow the test runs. Both ends are
	// up (harness.Veth), so the link has a carrier and DAD can run.
	s.ns.Sysctl(t, "net/ipv6/conf/veth1/accept_dad", "1")
	s.ns.Sysctl(t, "net/ipv6/conf/veth1/dad_transmits", "3")
	d := s.start(t)
	d.waitReady(t)

	a := netip.MustParseAddr("2001:db8:1::1")
	addAddrWithDAD(t, s.ns, "veth1", "2001:db8:1::1/64")
	sawTentative := false
	d.waitFor(t, "DAD to end", func() (bool, string) {
		// Endpoints and status first, the address's flags last: an
		// address that is still tentative was tentative before too.
		eps := s.endpoints(t)
		st := d.status(t)
		flags, ok := addrFlags(t, s.ns, "veth1", a)
		if !ok {
			t.Fatalf("%s disappeared from veth1", a)
		}
		if flags&unix.IFA_F_DADFAILED != 0 {
			t.Fatalf("DAD of %s failed (flags %#x): is the address in use elsewhere?", a, flags)
		}
		if flags&unix.IFA_F_TENTATIVE == 0 {
			return true, ""
		}
		sawTentative = true
		if slices.ContainsFunc(eps, func(e genl.Endpoint) bool { return e.Addr == a }) {
			t.Fatalf("%s has an endpoint while it is tentative: %+v", a, eps)
		}
		if sa, ok := statusAddr(st, "veth1", "2001:db8:1::1/64"); ok && (sa.Wanted || !strings.Contains(sa.Why, "tentative")) {
			t.Errorf("the status shows tentative %s as %+v, want unwanted because tentative", a, sa)
		}
		return false, fmt.Sprintf("flags %#x", flags)
	})
	if !sawTentative {
		t.Fatalf("%s was never seen tentative: DAD did not run", a)
	}
	d.waitEndpoints(t, ep("2001:db8:1::1", fSubflow, if1))

	// DAD fails: the peer has the address already and answers the probes.
	dup := netip.MustParseAddr("2001:db8:1::99")
	s.peer.AddAddr(t, "veth1", "2001:db8:1::99/64")
	addAddrWithDAD(t, s.ns, "veth1", "2001:db8:1::99/64")
	d.waitFor(t, "DAD of the duplicate to fail", func() (bool, string) {
		flags, ok := addrFlags(t, s.ns, "veth1", dup)
		return ok && flags&unix.IFA_F_DADFAILED != 0, fmt.Sprintf("flags %#x (present %v)", flags, ok)
	})
	// Witness: an address added afterwards gets its endpoint, so the
	// daemon has seen the failed one by then.
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("2001:db8:1::1", fSubflow, if1))
}

// TestDaemonForeignEndpoints: endpoints someone else added, before the
// daemon started or while it runs, survive its reconciles, a reload and
// its stop, also one for an address the policy wants; status lists them as
// foreign.
func TestDaemonForeignEndpoints(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth1", "10.1.0.5/24")
	// Before the daemon: one for an address on no interface, one for an
	// address the policy wants.
	s.ipMptcp(t, "endpoint", "add", "10.99.0.1", "signal")
	s.ipMptcp(t, "endpoint", "add", "10.1.0.5", "signal")
	d := s.start(t)
	d.waitReady(t)
	foreign := []genl.Endpoint{ep("10.1.0.5", fSignal, 0), ep("10.99.0.1", fSignal, 0)}
	eps := d.waitEndpoints(t, append(slices.Clone(foreign), ep("10.1.0.1", fSubflow, if1))...)
	foreignIDs := map[string]uint8{}
	for _, e := range eps {
		if e.Flags == fSignal {
			foreignIDs[e.Addr.String()] = e.ID
		}
	}

	// While it runs.
	s.ipMptcp(t, "endpoint", "add", "10.98.0.1", "subflow", "backup")
	foreign = append(foreign, ep("10.98.0.1", fSubflow|fBackup, 0))
	// Reconciles: an address comes and goes.
	s.ns.AddAddr(t, "veth1", "10.1.0.7/24")
	d.waitEndpoints(t, append(slices.Clone(foreign), ep("10.1.0.1", fSubflow, if1), ep("10.1.0.7", fSubflow, if1))...)
	s.ns.DelAddr(t, "veth1", "10.1.0.7/24")
	eps = d.waitEndpoints(t, append(slices.Clone(foreign), ep("10.1.0.1", fSubflow, if1))...)
	for _, e := range eps {
		if id, ok := foreignIDs[e.Addr.String()]; ok && id != e.ID {
			t.Errorf("foreign endpoint %s changed id from %d to %d", e.Addr, id, e.ID)
		}
		if e.Addr.String() == "10.98.0.1" {
			foreignIDs["10.98.0.1"] = e.ID
		}
	}

	// status -j lists them as foreign. (The status is published when a
	// reconcile ends, a moment after the kernel shows its changes.)
	d.waitStatus(t, "the deleted endpoint gone from the status", func(st daemon.Status) bool {
		return len(st.Owned) == 1 && len(st.Foreign) == 3
	})
	r := mptcpdgoHost(t, "status", "-j", "--socket", s.socket)
	if r.Code != exitOK {
		t.Fatalf("status -j: %v", r)
	}
	var st daemon.Status
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status -j output is not a Status: %v\n%s", err, r.Stdout)
	}
	var gotForeign []string
	for _, f := range st.Foreign {
		gotForeign = append(gotForeign, fmt.Sprintf("%d %s %s %s", f.ID, f.Addr, strings.Join(f.Flags, ","), f.Iface))
	}
	wantForeign := []string{
		fmt.Sprintf("%d 10.99.0.1 signal ", foreignIDs["10.99.0.1"]),
		fmt.Sprintf("%d 10.1.0.5 signal veth1", foreignIDs["10.1.0.5"]),
		fmt.Sprintf("%d 10.98.0.1 subflow,backup ", foreignIDs["10.98.0.1"]),
	}
	slices.Sort(gotForeign)
	slices.Sort(wantForeign)
	if diff := cmp.Diff(wantForeign, gotForeign); diff != "" {
		t.Errorf("foreign endpoints in status -j (-want +got):\n%s", diff)
	}
	for _, f := range st.Foreign {
		if f.Addr == "10.1.0.5" && !strings.Contains(f.Note, "managed by someone else") {
			t.Errorf("the note of the wanted foreign endpoint: %q", f.Note)
		}
	}
	if len(st.Owned) != 1 || st.Owned[0].Addr != "10.1.0.1" {
		t.Errorf("owned endpoints: %+v, want only 10.1.0.1", st.Owned)
	}

	// A reload (the same policy) and the reconcile it starts.
	since := time.Now()
	if r := mptcpdgoHost(t, "reload", "--socket", s.socket); r.Code != exitOK {
		t.Fatalf("reload: %v", r)
	}
	d.waitReconciledSince(t, since)
	eps = d.waitEndpoints(t, append(slices.Clone(foreign), ep("10.1.0.1", fSubflow, if1))...)
	checkIDs(t, eps, foreignIDs)

	// The stop removes only the daemon's own.
	d.stop(t, syscall.SIGTERM)
	eps = s.endpoints(t)
	if diff := cmp.Diff(sortedEndpoints(foreign), withoutIDs(eps), cmpNetip()); diff != "" {
		t.Errorf("endpoints after the stop (-want +got):\n%s", diff)
	}
	checkIDs(t, eps, foreignIDs)
}

func sortedEndpoints(eps []genl.Endpoint) []genl.Endpoint {
	eps = slices.Clone(eps)
	slices.SortFunc(eps, func(a, b genl.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return eps
}

// checkIDs checks that the endpoints with the addresses in ids kept them.
func checkIDs(t *testing.T, eps []genl.Endpoint, ids map[string]uint8) {
	t.Helper()
	for _, e := range eps {
		if id, ok := ids[e.Addr.String()]; ok && id != e.ID {
			t.Errorf("endpoint %s has id %d, want %d (it was re-created)", e.Addr, e.ID, id)
		}
	}
}

// TestDaemonReload: a broken policy is refused on SIGHUP and on `reload`
// (exit 1 with file:line:col), the old one stays in force and status shows
// the error; the fixed one applies, with flag changes made in place.
func TestDaemonReload(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-a.toml": ifaceFile("veth1*", []string{"subflow"}, alsoWithout),
		"20-b.toml": ifaceFile("veth2*", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	if2 := s.veth(t, "veth2")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.2/24")
	d := s.start(t)
	d.waitReady(t)
	before := d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSubflow, if2), ep("10.2.0.2", fSubflow, if2))

	// Broken: signal and fullmesh cannot be combined (line 5, col 9).
	s.writeIface(t, "20-b.toml", ifaceFile("veth2*", []string{"signal", "fullmesh"}, alsoWithout))
	wantPos := s.ifacePath("20-b.toml") + ":5:9: "
	d.signal(t, syscall.SIGHUP)
	st := d.waitStatus(t, "the refused reload in the status", func(st daemon.Status) bool { return st.ReloadError != "" })
	if !strings.HasPrefix(st.ReloadError, wantPos) || !strings.Contains(st.ReloadError, `"signal" and "fullmesh"`) {
		t.Errorf("last_reload_error = %q, want it at %s", st.ReloadError, wantPos)
	}
	if r := mptcpdgoHost(t, "reload", "--socket", s.socket); r.Code != 1 || !strings.Contains(r.Stderr, wantPos) || !strings.HasPrefix(r.Stderr, "Error: ") {
		t.Errorf("reload of the broken policy: %v\nwant exit 1 with the error at %s", r, wantPos)
	}
	r := mptcpdgoHost(t, "status", "-j", "--socket", s.socket)
	if r.Code != exitOK {
		t.Fatalf("status -j: %v", r)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil {
		t.Fatal(err)
	}
	if e, _ := js["last_reload_error"].(string); !strings.HasPrefix(e, wantPos) {
		t.Errorf("status -j last_reload_error = %q, want it at %s", e, wantPos)
	}
	if got := s.endpoints(t); !cmp.Equal(before, got, cmpNetip()) {
		t.Errorf("a refused reload changed the endpoints (-before +after):\n%s", cmp.Diff(before, got, cmpNetip()))
	}
	// The old policy is still the one in force: it wants new addresses.
	s.ns.AddAddr(t, "veth2", "10.2.0.3/24")
	eps := d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSubflow, if2), ep("10.2.0.2", fSubflow, if2), ep("10.2.0.3", fSubflow, if2))
	ids := map[string]uint8{}
	for _, e := range eps {
		ids[e.Addr.String()] = e.ID
	}

	// Fixed, with backup: changed in place through `reload`.
	s.writeIface(t, "20-b.toml", ifaceFile("veth2*", []string{"subflow", "backup"}, alsoWithout))
	if r := mptcpdgoHost(t, "reload", "--socket", s.socket); r.Code != exitOK {
		t.Fatalf("reload of the fixed policy: %v", r)
	}
	eps = d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSubflow|fBackup, if2),
		ep("10.2.0.2", fSubflow|fBackup, if2), ep("10.2.0.3", fSubflow|fBackup, if2))
	checkIDs(t, eps, ids)
	if st := d.status(t); st.ReloadError != "" {
		t.Errorf("last_reload_error after a successful reload: %q", st.ReloadError)
	}

	// And through SIGHUP: veth1 becomes backup too.
	s.writeIface(t, "10-a.toml", ifaceFile("veth1*", []string{"subflow", "backup"}, alsoWithout))
	d.signal(t, syscall.SIGHUP)
	eps = d.waitEndpoints(t, ep("10.1.0.1", fSubflow|fBackup, if1), ep("10.2.0.1", fSubflow|fBackup, if2),
		ep("10.2.0.2", fSubflow|fBackup, if2), ep("10.2.0.3", fSubflow|fBackup, if2))
	checkIDs(t, eps, ids)

	// A file that disappears takes its endpoints along.
	if err := os.Remove(s.ifacePath("20-b.toml")); err != nil {
		t.Fatal(err)
	}
	d.signal(t, syscall.SIGHUP)
	eps = d.waitEndpoints(t, ep("10.1.0.1", fSubflow|fBackup, if1))
	checkIDs(t, eps, ids)
	d.stop(t, syscall.SIGTERM)
}

// TestDaemonStop: SIGTERM removes the daemon's endpoints and leaves the
// others, exit status 0; with on_stop = "keep" they stay, and the next
// daemon takes them over from the state file.
func TestDaemonStop(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	t.Run("remove", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "", map[string]string{
			"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
		})
		if1 := s.veth(t, "veth1")
		s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
		s.ns.AddAddr(t, "veth1", "2001:db8:1::1/64")
		s.ipMptcp(t, "endpoint", "add", "10.99.0.1", "signal")
		d := s.start(t)
		d.waitReady(t)
		d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("2001:db8:1::1", fSubflow, if1), ep("10.99.0.1", fSignal, 0))
		d.stop(t, syscall.SIGTERM)
		if got := withoutIDs(s.endpoints(t)); !cmp.Equal([]genl.Endpoint{ep("10.99.0.1", fSignal, 0)}, got, cmpNetip()) {
			t.Errorf("endpoints after SIGTERM: %+v, want only the foreign one", got)
		}
	})
	t.Run("keep", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "on_stop = \"keep\"\n", map[string]string{
			"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
		})
		if1 := s.veth(t, "veth1")
		s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
		s.ns.AddAddr(t, "veth1", "10.1.0.2/24")
		s.ipMptcp(t, "endpoint", "add", "10.99.0.1", "signal")
		d := s.start(t)
		d.waitReady(t)
		want := []genl.Endpoint{ep("10.1.0.1", fSubflow, if1), ep("10.1.0.2", fSubflow, if1), ep("10.99.0.1", fSignal, 0)}
		kept := d.waitEndpoints(t, want...)
		d.stop(t, syscall.SIGTERM)
		if got := s.endpoints(t); !cmp.Equal(kept, got, cmpNetip()) {
			t.Errorf("on_stop = keep changed the endpoints (-before +after):\n%s", cmp.Diff(kept, got, cmpNetip()))
		}

		// The next daemon owns them again (the state file says so): it
		// lists them as its own, and removes them when told to.
		s.writeMain(t, "on_stop = \"remove\"\n")
		d2 := s.start(t)
		d2.waitReady(t)
		st := d2.waitStatus(t, "the kept endpoints owned again", func(st daemon.Status) bool { return len(st.Owned) == 2 })
		for _, o := range st.Owned {
			if !slices.ContainsFunc(kept, func(e genl.Endpoint) bool { return e.ID == o.ID && e.Addr.String() == o.Addr }) {
				t.Errorf("owned endpoint %+v is not one of the kept ones %+v", o, kept)
			}
		}
		if got := s.endpoints(t); !cmp.Equal(kept, got, cmpNetip()) {
			t.Errorf("the second daemon changed the kept endpoints (-before +after):\n%s", cmp.Diff(kept, got, cmpNetip()))
		}
		d2.stop(t, syscall.SIGINT)
		if got := withoutIDs(s.endpoints(t)); !cmp.Equal([]genl.Endpoint{ep("10.99.0.1", fSignal, 0)}, got, cmpNetip()) {
			t.Errorf("endpoints after SIGINT: %+v, want only the foreign one", got)
		}
	})
}

// TestDaemonStatus: `status -j` through --socket and through --config
// reports the interfaces, the daemon's endpoints, the limits and the
// policy files; the text form shows the same.
func TestDaemonStatus(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "[limits]\nsubflows = 3\n", map[string]string{
		"10-a.toml":  ifaceFile("veth1*", []string{"subflow"}, alsoWithout),
		"20-b.toml":  ifaceFile("veth2*", []string{"signal"}, alsoWithout),
		"30-ig.toml": "ignore = true\n[match]\nname = [\"veth3\"]\n",
	})
	if1 := s.veth(t, "veth1")
	if2 := s.veth(t, "veth2")
	s.veth(t, "veth3")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	s.ns.AddAddr(t, "veth3", "10.3.0.1/24")
	waitRunning(t, s.ns, "veth1", "veth2", "veth3")
	d := s.start(t)
	d.waitReady(t)
	eps := d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.2.0.1", fSignal, if2))
	d.waitLimits(t, genl.Limits{Subflows: 3, AddAddrAccepted: 1})
	// The status is published when a reconcile ends, a moment after the
	// kernel shows its changes.
	d.waitStatus(t, "the status to show the endpoints", func(st daemon.Status) bool {
		return len(st.Owned) == 2 && st.Limits.Subflows == 3 && st.Limits.AddAddrAccepted == 1
	})

	for _, how := range [][]string{{"--socket", s.socket}, {"--config", s.config}} {
		t.Run(how[0], func(t *testing.T) {
			r := mptcpdgoHost(t, append([]string{"status", "-j"}, how...)...)
			if r.Code != exitOK {
				t.Fatalf("status -j %s: %v", strings.Join(how, " "), r)
			}
			var st daemon.Status
			if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
				t.Fatalf("status -j output is not a Status: %v\n%s", err, r.Stdout)
			}
			if st.PID != d.cmd.Process.Pid || st.Mode != "kernel" || st.Config != s.config || st.Embedded {
				t.Errorf("status: pid %d mode %q config %q embedded %v, want pid %d, kernel, %s, false",
					st.PID, st.Mode, st.Config, st.Embedded, d.cmd.Process.Pid, s.config)
			}
			wantFiles := []string{s.config, s.ifacePath("10-a.toml"), s.ifacePath("20-b.toml"), s.ifacePath("30-ig.toml")}
			if diff := cmp.Diff(wantFiles, st.PolicyFiles); diff != "" {
				t.Errorf("policy_files (-want +got):\n%s", diff)
			}
			wantLimits := daemon.LimitsStatus{Subflows: 3, AddAddrAccepted: 1, PolicySubflows: "3", PolicyAddAddrAccept: "auto (1)"}
			if diff := cmp.Diff(wantLimits, st.Limits); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
			var owned []string
			for _, o := range st.Owned {
				owned = append(owned, fmt.Sprintf("%d %s %s %s", o.ID, o.Addr, strings.Join(o.Flags, ","), o.Iface))
			}
			wantOwned := []string{
				fmt.Sprintf("%d 10.1.0.1 subflow veth1", eps[0].ID),
				fmt.Sprintf("%d 10.2.0.1 signal veth2", eps[1].ID),
			}
			slices.Sort(owned)
			if diff := cmp.Diff(wantOwned, owned); diff != "" {
				t.Errorf("owned_endpoints (-want +got):\n%s", diff)
			}
			if len(st.Foreign) != 0 || len(st.NotAdded) != 0 || len(st.Errors) != 0 || st.ReloadError != "" {
				t.Errorf("foreign %v, not added %v, errors %v, reload error %q: want none", st.Foreign, st.NotAdded, st.Errors, st.ReloadError)
			}
			if st.Reconciles == 0 || st.LastReconcile.IsZero() {
				t.Errorf("reconciles %d, last %v: want at least one", st.Reconciles, st.LastReconcile)
			}
			type ifrow struct {
				Name, Kind, Policy   string
				Up, Running, Ignored bool
				Addr                 string
				Wanted               bool
			}
			var got []ifrow
			for _, is := range st.Interfaces {
				for _, a := range is.Addrs {
					if strings.HasPrefix(a.Addr, "fe80:") {
						continue // link-local, their addresses are random
					}
					got = append(got, ifrow{is.Name, is.Kind, is.Policy, is.Up, is.Running, is.Ignored, a.Addr, a.Wanted})
				}
			}
			want := []ifrow{
				{"lo", "device", "", true, true, false, "127.0.0.1/8", false},
				{"lo", "device", "", true, true, false, "::1/128", false},
				{"veth1", "veth", s.ifacePath("10-a.toml"), true, true, false, "10.1.0.1/24", true},
				{"veth2", "veth", s.ifacePath("20-b.toml"), true, true, false, "10.2.0.1/24", true},
				{"veth3", "veth", s.ifacePath("30-ig.toml"), true, true, true, "10.3.0.1/24", false},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("interfaces (-want +got):\n%s", diff)
			}
		})
	}

	r := mptcpdgoHost(t, "status", "--socket", s.socket)
	if r.Code != exitOK {
		t.Fatalf("status: %v", r)
	}
	for _, line := range []string{
		fmt.Sprintf("mptcpd-go daemon (pid %d), mode kernel, policy %s\n", d.cmd.Process.Pid, s.config),
		"limits: subflows 3 (policy 3), add_addr_accepted 1 (policy auto (1))\n",
		fmt.Sprintf("  veth1 (up): %s\n    10.1.0.1/24: endpoint\n", s.ifacePath("10-a.toml")),
		fmt.Sprintf("  veth3 (up): %s (ignored)\n", s.ifacePath("30-ig.toml")),
		fmt.Sprintf("endpoints managed by mptcpd-go:\n  id %d 10.1.0.1 subflow on veth1\n  id %d 10.2.0.1 signal on veth2\n", eps[0].ID, eps[1].ID),
	} {
		if !strings.Contains(r.Stdout, line) {
			t.Errorf("status does not show %q:\n%s", line, r.Stdout)
		}
	}
	// Without a daemon: exit 1 and a hint.
	d.stop(t, syscall.SIGTERM)
	if r := mptcpdgoHost(t, "status", "--socket", s.socket); r.Code != 1 || !strings.Contains(r.Stderr, "is `mptcpd-go daemon` running?") {
		t.Errorf("status without a daemon: %v", r)
	}
}

// notifications listens on a unixgram socket for sd_notify messages.
type notifications struct {
	path string
	ch   chan string
}

func listenNotify(t *testing.T, dir string) *notifications {
	t.Helper()
	// A path socket: the daemon runs in another network namespace, where
	// an abstract one ("@...") would not be reachable, but the file system
	// is shared.
	n := &notifications{path: filepath.Join(dir, "notify.sock"), ch: make(chan string, 1024)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		defer close(n.ch)
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.ch <- string(buf[:k])
		}
	}()
	return n
}

// next returns the next message from d that is not a watchdog ping,
// counting the pings it skipped. Messages already sent are returned even
// when d has exited since.
func (n *notifications) next(t *testing.T, d *daemonProc, pings *int) string {
	t.Helper()
	timeout := time.After(testTimeout)
	exited := d.done
	for {
		select {
		case m, ok := <-n.ch:
			if !ok {
				t.Fatal("the notification socket was closed")
			}
			if strings.HasPrefix(m, "WATCHDOG=1") {
				*pings++
				continue
			}
			return m
		case <-exited:
			// Take what it sent before it went, then give up.
			exited = nil
			timeout = time.After(time.Second)
		case <-timeout:
			if exited == nil {
				d.fatalf(t, "the daemon exited without sending the next notification")
			}
			d.fatalf(t, "no further notification within %v", testTimeout)
			return ""
		}
	}
}

// first returns the first message from d, watchdog pings included.
func (n *notifications) first(t *testing.T, d *daemonProc) string {
	t.Helper()
	select {
	case m := <-n.ch:
		return m
	case <-d.done:
		d.fatalf(t, "the daemon exited before it sent a notification")
	case <-time.After(testTimeout):
		d.fatalf(t, "no notification within %v", testTimeout)
	}
	return ""
}

// TestDaemonSdNotify: READY=1 with a status line once the first reconcile
// is done, watchdog pings at half of WATCHDOG_USEC, RELOADING=1 and
// READY=1 around a reload, STOPPING=1 at the stop.
func TestDaemonSdNotify(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	n := listenNotify(t, s.dir)
	// No WATCHDOG_PID: go-systemd then takes the watchdog as meant for
	// this process (the pid is known only after the start).
	d := s.start(t, "NOTIFY_SOCKET="+n.path, "WATCHDOG_USEC=200000")

	if first := n.first(t, d); first != "READY=1\nSTATUS=1 endpoints managed" {
		t.Errorf("first notification %q, want READY=1 with the status line", first)
	}
	// The endpoint is there by the time READY=1 is sent.
	if got := withoutIDs(s.endpoints(t)); !cmp.Equal([]genl.Endpoint{ep("10.1.0.1", fSubflow, if1)}, got, cmpNetip()) {
		t.Errorf("endpoints at READY=1: %+v", got)
	}

	// Pings keep coming; each carries the status line.
	for range 3 {
		if m := n.first(t, d); m != "WATCHDOG=1\nSTATUS=1 endpoints managed" {
			t.Errorf("notification %q, want a watchdog ping", m)
		}
	}

	pings := 0
	d.signal(t, syscall.SIGHUP)
	if m := n.next(t, d, &pings); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*$`).MatchString(m) {
		t.Errorf("notification after SIGHUP %q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	if m := n.next(t, d, &pings); m != "READY=1" {
		t.Errorf("notification after RELOADING=1 %q, want READY=1", m)
	}
	// The same for a reload through the control socket.
	if r := mptcpdgoHost(t, "reload", "--socket", s.socket); r.Code != exitOK {
		t.Fatalf("reload: %v", r)
	}
	if m := n.next(t, d, &pings); !strings.HasPrefix(m, "RELOADING=1\n") {
		t.Errorf("notification after reload %q, want RELOADING=1", m)
	}
	if m := n.next(t, d, &pings); m != "READY=1" {
		t.Errorf("notification after RELOADING=1 %q, want READY=1", m)
	}

	d.signal(t, syscall.SIGTERM)
	if m := n.next(t, d, &pings); m != "STOPPING=1" {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", m)
	}
	if code := d.wait(t); code != exitOK {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// TestDaemonSignalAtReady: a SIGHUP that arrives the moment READY=1 was
// sent is a reload, not the end of the daemon (the default action of
// SIGHUP), and a SIGTERM then is a clean stop that removes the endpoints.
func TestDaemonSignalAtReady(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "", map[string]string{
		"10-veth.toml": ifaceFile("veth1", []string{"subflow"}, alsoWithout),
	})
	s.veth(t, "veth1")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	n := listenNotify(t, s.dir)
	// Before the fix, one start in three died of a signal sent then.
	for i := range 12 {
		d := s.start(t, "NOTIFY_SOCKET="+n.path)
		pings := 0
		if m := n.next(t, d, &pings); !strings.HasPrefix(m, "READY=1\n") {
			t.Fatalf("start %d: first notification %q, want READY=1", i, m)
		}
		if i%2 == 0 {
			d.signal(t, syscall.SIGHUP)
			if m := n.next(t, d, &pings); !strings.HasPrefix(m, "RELOADING=1\n") {
				t.Fatalf("start %d: after SIGHUP at READY=1: %q, want RELOADING=1", i, m)
			}
			if m := n.next(t, d, &pings); m != "READY=1" {
				t.Fatalf("start %d: %q, want READY=1", i, m)
			}
		}
		d.stop(t, syscall.SIGTERM)
		if m := n.next(t, d, &pings); m != "STOPPING=1" {
			t.Fatalf("start %d: %q, want STOPPING=1", i, m)
		}
		if eps := s.endpoints(t); len(eps) != 0 {
			t.Fatalf("start %d: endpoints left after the stop: %+v", i, eps)
		}
	}
}

// TestDaemonConfigProblems: the daemon refuses to start, with exit status
// 1 and a message that says why, on a missing explicit config, a broken
// one, a disabled MPTCP and a control socket in use; a main file without
// interface files makes it manage nothing.
func TestDaemonConfigProblems(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()

	t.Run("missing explicit config", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "", nil)
		missing := filepath.Join(s.dir, "missing.toml")
		r := runInNS(t, s.ns, "daemon", "--config", missing)
		want := "Error: " + missing + ": no such file; create it, or leave out --config to use " + policy.DefaultPath + " or the built-in defaults\n"
		if r.Code != 1 || r.Stderr != want {
			t.Errorf("daemon --config %s: %v\nwant exit 1 and:\n%s", missing, r, indent(want))
		}
	})

	t.Run("broken config", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "[limits]\nsubflows = 9\n", map[string]string{
			"10-a.toml": ifaceFile("veth1", []string{"subflow", "bakup"}, ""),
			"20-b.toml": "[match]\nname = [\"veth2\"]\n",
		})
		r := runInNS(t, s.ns, "daemon", "--config", s.config)
		want := []string{
			"Error: " + s.config + ":5:12: subflows: 9 is above 8",
			"Error: " + s.ifacePath("10-a.toml") + ":5:21: flags: unknown flag \"bakup\"; did you mean \"backup\"?",
			"Error: " + s.ifacePath("20-b.toml") + ":1:1: no [endpoint] table",
		}
		checkErrorLines(t, r, want)
		if _, err := os.Lstat(s.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a daemon that refused to start left its control socket (Lstat: %v)", err)
		}
	})

	t.Run("MPTCP disabled", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "", map[string]string{"10-a.toml": ifaceFile("*", []string{"subflow"}, alsoWithout)})
		s.ns.Sysctl(t, "net.mptcp.enabled", "0")
		r := runInNS(t, s.ns, "daemon", "--config", s.config)
		if r.Code != 1 || !strings.Contains(r.Stderr, "net.mptcp.enabled") || !strings.Contains(r.Stderr, "sysctl -w net.mptcp.enabled=1") {
			t.Errorf("daemon with net.mptcp.enabled=0: %v\nwant exit 1 naming net.mptcp.enabled", r)
		}
		if _, err := os.Lstat(s.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a daemon that refused to start left its control socket (Lstat: %v)", err)
		}
	})

	t.Run("socket in use", func(t *testing.T) {
		t.Parallel()
		s := newDaemonSetup(t, "", nil)
		d := s.start(t)
		d.waitReady(t)
		// A second daemon with the same control socket, in another
		// namespace: the socket is a file, shared by all namespaces.
		r := runInNS(t, s.peer, "daemon", "--config", s.config)
		if r.Code != 1 || !strings.Contains(r.Stderr, "control socket "+s.socket+" is in use: is another mptcpd-go daemon running?") {
			t.Errorf("a second daemon on the same socket: %v", r)
		}
		// The first one is unharmed.
		d.waitReady(t)
		d.stop(t, syscall.SIGTERM)
	})

	t.Run("no interface files", func(t *testing.T) {
		t.Parallel()
		// Only control_socket (the state file goes next to it): an
		// explicit main file turns the built-in defaults off, so no
		// interface gets endpoints, default route or not.
		s := newDaemonSetup(t, "", nil)
		writeTestFile(t, s.config, fmt.Sprintf("control_socket = %q\n", s.socket))
		s.veth(t, "veth1")
		s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
		s.ns.AddDefaultRoute(t, "veth1", "10.1.0.254")

		r := runInNS(t, s.ns, "policy", "check", "--config", s.config)
		if r.Code != exitOK {
			t.Fatalf("policy check: %v", r)
		}
		for _, line := range []string{
			"Main file: " + s.config + "\n",
			"Interface files: " + filepath.Join(s.dir, "interfaces.d") + " does not exist, so no interface gets endpoints\n",
			"  veth1: no policy file matches; no endpoints\n",
			"endpoints wanted: 0 ",
			"limits: subflows 2, add_addr_accepted 1\n",
		} {
			if !strings.Contains(r.Stdout, line) {
				t.Errorf("policy check does not say %q:\n%s", line, r.Stdout)
			}
		}

		d := s.start(t)
		st := d.waitReady(t)
		if st.Embedded || len(st.Owned) != 0 || !slices.Equal(st.PolicyFiles, []string{s.config}) {
			t.Errorf("status: embedded %v, owned %v, files %v; want the main file only and nothing owned", st.Embedded, st.Owned, st.PolicyFiles)
		}
		if a, ok := statusAddr(st, "veth1", "10.1.0.1/24"); !ok || a.Wanted || !strings.Contains(a.Why, "no policy file matches") {
			t.Errorf("veth1 10.1.0.1/24 in the status: %+v (found %v)", a, ok)
		}
		// The first reconcile, done before the socket answered, saw
		// the address and left the kernel alone.
		if eps := s.endpoints(t); len(eps) != 0 {
			t.Errorf("endpoints: %+v, want none", eps)
		}
		d.waitLimits(t, genl.Limits{Subflows: 2, AddAddrAccepted: 1})
		d.stop(t, syscall.SIGTERM)
	})
}

// checkErrorLines checks a policy failure: exit 1, nothing on stdout, and
// stderr's lines starting with want, in order.
func checkErrorLines(t *testing.T, r result, want []string) {
	t.Helper()
	if r.Code != 1 || r.Stdout != "" {
		t.Errorf("want exit 1 and no output, got %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%d error lines, want %d:\n%s", len(lines), len(want), indent(r.Stderr))
		return
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error line %d:\n\t%s\nwant it to start with\n\t%s", i+1, lines[i], w)
		}
	}
}

// TestPolicyCheck: `policy check --config` prints the policy and the plan
// for the namespace's interfaces (exit 0), or every error with
// file:line:col (exit 1).
func TestPolicyCheck(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "[limits]\nsubflows = 4\n", map[string]string{
		"10-a.toml": ifaceFile("veth1*", []string{"subflow"}, ""),
		"20-b.toml": ifaceFile("veth2*", []string{"subflow", "backup"}, alsoWithout),
	})
	s.veth(t, "veth1")
	s.veth(t, "veth2")
	s.veth(t, "eth9")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	s.ns.LinkDown(t, "veth2")
	waitRunning(t, s.ns, "veth1", "eth9")

	r := runInNS(t, s.ns, "policy", "check", "--config", s.config)
	if r.Code != exitOK || r.Stderr != "" {
		t.Fatalf("policy check of a valid policy: %v", r)
	}
	for _, want := range []string{
		"Main file: " + s.config + "\n",
		"  limits            subflows 4, add_addr_accepted auto",
		"Interface files in " + filepath.Join(s.dir, "interfaces.d") + " (the first that matches applies):\n",
		"  " + s.ifacePath("10-a.toml") + "\n    match           name veth1*\n",
		"\nplan for the interfaces present now:\n",
		"  veth1: " + s.ifacePath("10-a.toml") + "\n    10.1.0.1: no endpoint: the interface has no ipv4 default route",
		"  veth2: " + s.ifacePath("20-b.toml") + "\n    the link is down or has no carrier: its endpoints wait until it is up\n    10.2.0.1: endpoint subflow backup\n",
		"  eth9: no policy file matches; no endpoints\n",
		"endpoints wanted: 1 ",
		"limits: subflows 4, add_addr_accepted 1\n",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("policy check output does not contain %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "  lo:") {
		t.Errorf("the plan shows lo:\n%s", r.Stdout)
	}
	// It only looks: nothing changed in the kernel.
	if eps := s.endpoints(t); len(eps) != 0 {
		t.Errorf("policy check added endpoints: %+v", eps)
	}

	// Broken, in several files: every error at once.
	s.writeMain(t, "mode = \"kernal\"\n[limits]\nsubflows = \"many\"\n")
	s.writeIface(t, "10-a.toml", ifaceFile("veth1*", []string{"signal", "fullmesh"}, "port = 0\n"))
	s.writeIface(t, "20-b.toml", "[match]\nname = [\"veth2*\"]\n[endpoint]\nflags = [\"subflow\"]\nprio = 3\n")
	r = runInNS(t, s.ns, "policy", "check", "--config", s.config)
	checkErrorLines(t, r, []string{
		"Error: " + s.config + ":4:8: mode: \"kernal\" is not a mode; did you mean \"kernel\"?",
		"Error: " + s.config + ":6:12: subflows: \"many\" is not a number",
		"Error: " + s.ifacePath("10-a.toml") + ":5:9: flags: \"signal\" and \"fullmesh\" cannot be combined",
		"Error: " + s.ifacePath("10-a.toml") + ":6:8: port: 0 is out of range",
		"Error: " + s.ifacePath("20-b.toml") + ":5:1: ",
	})
	if !strings.Contains(r.Stderr, "prio") {
		t.Errorf("the unknown key is not named:\n%s", r.Stderr)
	}
}

// TestPolicyCheckEmbeddedDefault: without --config and without a main
// file at the default path, the built-in policy gives interfaces with a
// default route subflow endpoints. Only the plan is checked: a daemon
// with the built-in policy would use the default control socket in /run.
func TestPolicyCheckEmbeddedDefault(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	if dir := filepath.Dir(policy.DefaultPath); !notExist(dir) {
		t.Skipf("%s exists on this machine: the built-in defaults may not apply", dir)
	}
	s := newDaemonSetup(t, "", nil)
	s.veth(t, "veth1")
	s.veth(t, "veth2")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	s.ns.AddDefaultRoute(t, "veth1", "10.1.0.254")
	waitRunning(t, s.ns, "veth1", "veth2")
	r := runInNS(t, s.ns, "policy", "check")
	if r.Code != exitOK {
		t.Fatalf("policy check: %v", r)
	}
	for _, want := range []string{
		"Main file: " + policy.DefaultPath + " does not exist; using the built-in defaults\n",
		"  veth1: " + policy.EmbeddedPrefix + "99-default.toml\n    10.1.0.1: endpoint subflow\n",
		"  veth2: " + policy.EmbeddedPrefix + "99-default.toml\n    10.2.0.1: no endpoint: the interface has no ipv4 default route",
		"endpoints wanted: 1 ",
		"limits: subflows 2, add_addr_accepted 1\n",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("policy check output does not contain %q:\n%s", want, r.Stdout)
		}
	}
}

func notExist(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

// TestDaemonStatusPermissions: the socket is 0660; its group may read the
// status, as primary or as supplementary group, but only root reloads.
func TestDaemonStatusPermissions(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	const nobody = 65534
	s := newDaemonSetup(t, "", nil)
	d := s.start(t)
	d.waitReady(t)
	var st unix.Stat_t
	if err := unix.Stat(s.socket, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o660 {
		t.Errorf("control socket mode %#o, want 0660", st.Mode&0o777)
	}
	// Let nobody reach the socket and run a copy of the command.
	for _, dir := range []string{filepath.Dir(s.dir), s.dir} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A hard link, not a copy: a file written by this process could be
	// held open by another test's child between fork and exec, and exec
	// would fail with ETXTBSY.
	bin := filepath.Join(s.dir, "mptcpd-go")
	if err := os.Link(cli(t), bin); err != nil {
		t.Skipf("cannot link the mptcpd-go binary to a directory others may reach: %v", err)
	}
	for _, tc := range []struct {
		name   string
		cred   syscall.Credential
		cmd    string
		code   int
		stderr string
	}{
		{"supplementary group", syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{st.Gid}}, "status", exitOK, ""},
		{"primary group", syscall.Credential{Uid: nobody, Gid: st.Gid, Groups: []uint32{}}, "status", exitOK, ""},
		{"other group", syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}, "status", 1, "permission denied"},
		{"reload by the group", syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{st.Gid}}, "reload", 1, "permission denied for uid 65534: reload needs root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.cmd, "--socket", s.socket)
			cmd.Env = daemonEnv()
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &tc.cred}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatalf("running mptcpd-go %s as %+v: %v", tc.cmd, tc.cred, err)
			}
			r := result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.stderr) {
				t.Errorf("mptcpd-go %s as %+v: %v\nwant exit %d with %q", tc.cmd, tc.cred, r, tc.code, tc.stderr)
			}
			if tc.code == exitOK && tc.cmd == "status" && !strings.Contains(r.Stdout, fmt.Sprintf("(pid %d)", d.cmd.Process.Pid)) {
				t.Errorf("status as %+v does not show the daemon:\n%s", tc.cred, r.Stdout)
			}
		})
	}
}
