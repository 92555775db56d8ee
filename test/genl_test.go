package test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// allCommands are the mptcp_pm commands every kernel this project supports
// (≥ 5.19, the userspace path manager) registers.
var allCommands = []genl.Command{
	genl.CmdAddAddr, genl.CmdDelAddr, genl.CmdGetAddr, genl.CmdFlushAddrs,
	genl.CmdSetLimits, genl.CmdGetLimits, genl.CmdSetFlags,
	genl.CmdAnnounce, genl.CmdRemove, genl.CmdSubflowCreate, genl.CmdSubflowDestroy,
}

func TestGenlFeatureDetection(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	c := harness.DialGenl(t, harness.NewNS(t))

	for _, cmd := range allCommands {
		if !c.Supports(cmd) {
			t.Errorf("Supports(%v) = false, want true on this kernel", cmd)
		}
	}
	if !c.SupportsUserspacePM() {
		t.Error("SupportsUserspacePM() = false, want true on this kernel")
	}
	got := c.Commands()
	for _, cmd := range allCommands {
		if !slices.Contains(got, cmd) {
			t.Errorf("Commands() = %v, lacks %v", got, cmd)
		}
	}
}

func TestGenlDialUnknownNamespace(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	name := harness.NamePrefix + "does-not-exist"
	c, err := genl.Dial(&genl.Config{NetNS: name})
	if err == nil {
		c.Close()
		t.Fatalf("genl.Dial(NetNS %q) succeeded, want an error", name)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("genl.Dial(NetNS %q) = %v, want an error matching fs.ErrNotExist", name, err)
	}
}

// TestGenlEndpoints walks through every in-kernel path manager command on
// one namespace: add, get, dump, change flags, delete, flush.
func TestGenlEndpoints(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	forEachSocketKind(t, testGenlEndpoints)
}

// forEachSocketKind runs test in parallel subtests with genl clients on
// the runtime's poller and with blocking sockets (genl.Config.Blocking).
func forEachSocketKind(t *testing.T, test func(t *testing.T, blocking bool)) {
	for _, blocking := range []bool{false, true} {
		name := "poller"
		if blocking {
			name = "blocking"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, blocking)
		})
	}
}

func testGenlEndpoints(t *testing.T, blocking bool) {
	ns := harness.NewNS(t)
	harness.Veth(t, ns, "vetha", ns, "vethb")
	// A signal endpoint with a port gets a listening socket, which needs a
	// local address.
	ns.AddAddr(t, "vetha", "10.9.0.1/24")
	ifindex := ns.LinkIndex(t, "vetha")
	c := harness.DialGenlConfig(t, &genl.Config{NetNS: ns.Name, Blocking: blocking})

	if got, err := c.Endpoints(); err != nil || len(got) != 0 {
		t.Fatalf("Endpoints() in a fresh namespace = %v, %v; want none", got, err)
	}

	adds := []struct {
		name string
		add  genl.Endpoint
		want genl.Endpoint // as the kernel reports it
	}{
		{
			name: "v4 without flags",
			add:  genl.Endpoint{Addr: addr("10.0.1.1")},
			want: genl.Endpoint{ID: 1, Addr: addr("10.0.1.1")},
		},
		{
			name: "v6 subflow",
			add:  genl.Endpoint{Addr: addr("fd00:1::1"), Flags: genl.FlagSubflow},
			want: genl.Endpoint{ID: 2, Addr: addr("fd00:1::1"), Flags: genl.FlagSubflow},
		},
		{
			name: "explicit id",
			add:  genl.Endpoint{ID: 42, Addr: addr("10.0.1.2"), Flags: genl.FlagSignal | genl.FlagBackup},
			want: genl.Endpoint{ID: 42, Addr: addr("10.0.1.2"), Flags: genl.FlagSignal | genl.FlagBackup},
		},
		{
			// The next free id follows the highest one used so far.
			name: "dev",
			add:  genl.Endpoint{Addr: addr("10.0.1.3"), Flags: genl.FlagSubflow | genl.FlagFullmesh, Ifindex: ifindex},
			want: genl.Endpoint{ID: 43, Addr: addr("10.0.1.3"), Flags: genl.FlagSubflow | genl.FlagFullmesh, Ifindex: ifindex},
		},
		{
			name: "signal with port",
			add:  genl.Endpoint{Addr: addr("10.9.0.1"), Port: 10100, Flags: genl.FlagSignal},
			want: genl.Endpoint{ID: 44, Addr: addr("10.9.0.1"), Port: 10100, Flags: genl.FlagSignal},
		},
		{
			name: "v6 signal subflow backup with id",
			add:  genl.Endpoint{ID: 7, Addr: addr("fd00:2::1"), Flags: genl.FlagSignal | genl.FlagSubflow | genl.FlagBackup},
			want: genl.Endpoint{ID: 7, Addr: addr("fd00:2::1"), Flags: genl.FlagSignal | genl.FlagSubflow | genl.FlagBackup},
		},
	}
	var all []genl.Endpoint
	for _, a := range adds {
		if err := c.AddEndpoint(a.add); err != nil {
			t.Fatalf("%s: AddEndpoint(%+v): %v", a.name, a.add, err)
		}
		got, err := c.Endpoint(a.want.ID)
		if err != nil {
			t.Fatalf("%s: Endpoint(%d) after adding %+v: %v", a.name, a.want.ID, a.add, err)
		}
		if diff := cmp.Diff(a.want, got, cmpNetip()); diff != "" {
			t.Errorf("%s: Endpoint(%d) after adding %+v (-want +got):\n%s", a.name, a.want.ID, a.add, diff)
		}
		all = append(all, a.want)
	}
	byID := func(a, b genl.Endpoint) int { return int(a.ID) - int(b.ID) }
	slices.SortFunc(all, byID)
	checkDump := func(step string, want []genl.Endpoint) {
		t.Helper()
		got, err := c.Endpoints()
		if err != nil {
			t.Fatalf("%s: Endpoints(): %v", step, err)
		}
		// The kernel dumps in id order.
		if diff := cmp.Diff(want, got, cmpNetip()); diff != "" {
			t.Errorf("%s: Endpoints() (-want +got):\n%s", step, diff)
		}
	}
	checkDump("after the adds", all)

	// Flag changes, by id and by address (and port); each replaces both
	// backup and fullmesh, as "ip mptcp endpoint change" does.
	changes := []struct {
		name  string
		ref   genl.Endpoint
		flags genl.Flags
		id    uint8
		want  genl.Flags
	}{
		{"backup by id", genl.Endpoint{ID: 2}, genl.FlagBackup, 2, genl.FlagSubflow | genl.FlagBackup},
		{"nobackup by id", genl.Endpoint{ID: 2}, 0, 2, genl.FlagSubflow},
		{"fullmesh by v6 address", genl.Endpoint{Addr: addr("fd00:1::1")}, genl.FlagFullmesh, 2, genl.FlagSubflow | genl.FlagFullmesh},
		{"backup fullmesh by v6 address", genl.Endpoint{Addr: addr("fd00:1::1")}, genl.FlagBackup | genl.FlagFullmesh, 2, genl.FlagSubflow | genl.FlagBackup | genl.FlagFullmesh},
		{"nofullmesh by id", genl.Endpoint{ID: 2}, genl.FlagBackup, 2, genl.FlagSubflow | genl.FlagBackup},
		{"nobackup nofullmesh by address", genl.Endpoint{Addr: addr("fd00:1::1")}, 0, 2, genl.FlagSubflow},
		{"backup by v4 address", genl.Endpoint{Addr: addr("10.0.1.1")}, genl.FlagBackup, 1, genl.FlagBackup},
		{"nobackup by v4 address", genl.Endpoint{Addr: addr("10.0.1.1")}, 0, 1, 0},
		{"nofullmesh on a dev endpoint", genl.Endpoint{ID: 43}, 0, 43, genl.FlagSubflow},
		{"backup by address and port", genl.Endpoint{Addr: addr("10.9.0.1"), Port: 10100}, genl.FlagBackup, 44, genl.FlagSignal | genl.FlagBackup},
		{"nobackup of a signal endpoint by id", genl.Endpoint{ID: 42}, 0, 42, genl.FlagSignal},
	}
	for _, ch := range changes {
		if err := c.SetEndpointFlags(ch.ref, ch.flags); err != nil {
			t.Fatalf("%s: SetEndpointFlags(%+v, %v): %v", ch.name, ch.ref, ch.flags, err)
		}
		got, err := c.Endpoint(ch.id)
		if err != nil {
			t.Fatalf("%s: Endpoint(%d): %v", ch.name, ch.id, err)
		}
		if got.Flags != ch.want {
			t.Errorf("%s: SetEndpointFlags(%+v, %q) left flags %q, want %q", ch.name, ch.ref, ch.flags, got.Flags, ch.want)
		}
		for i := range all {
			if all[i].ID == ch.id {
				all[i].Flags = ch.want
			}
		}
	}
	checkDump("after the flag changes", all)

	// Delete by id.
	if err := c.DeleteEndpoint(42); err != nil {
		t.Fatalf("DeleteEndpoint(42): %v", err)
	}
	if ep, err := c.Endpoint(42); !errors.Is(err, genl.ErrNotFound) {
		t.Errorf("Endpoint(42) after deleting it = %+v, %v; want ErrNotFound", ep, err)
	}
	all = slices.DeleteFunc(all, func(ep genl.Endpoint) bool { return ep.ID == 42 })
	checkDump("after deleting id 42", all)

	// id 0 with an address closes the subflows of connections whose
	// initial address it is; there are none, which is no error, and the
	// endpoints stay.
	if err := c.DeleteEndpointAddr(0, addr("10.0.1.1")); err != nil {
		t.Errorf("DeleteEndpointAddr(0, 10.0.1.1) without connections: %v, want success", err)
	}
	checkDump("after deleting id 0 10.0.1.1", all)

	if err := c.FlushEndpoints(); err != nil {
		t.Fatalf("FlushEndpoints(): %v", err)
	}
	checkDump("after the flush", []genl.Endpoint{})
	// The port endpoint's listener is gone with it: the same address and
	// port can be added again.
	re := genl.Endpoint{Addr: addr("10.9.0.1"), Port: 10100, Flags: genl.FlagSignal}
	if err := c.AddEndpoint(re); err != nil {
		t.Errorf("AddEndpoint(%+v) after the flush: %v", re, err)
	}
}

func TestGenlLimits(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	c := harness.DialGenl(t, harness.NewNS(t))

	steps := []struct {
		name   string
		update genl.LimitsUpdate
		want   genl.Limits
	}{
		{"defaults", genl.LimitsUpdate{}, genl.Limits{Subflows: 2, AddAddrAccepted: 0}},
		{"subflows only", genl.LimitsUpdate{Subflows: u32(5)}, genl.Limits{Subflows: 5, AddAddrAccepted: 0}},
		{"add_addr_accepted only", genl.LimitsUpdate{AddAddrAccepted: u32(3)}, genl.Limits{Subflows: 5, AddAddrAccepted: 3}},
		{"nothing", genl.LimitsUpdate{}, genl.Limits{Subflows: 5, AddAddrAccepted: 3}},
		{"both at the maximum", genl.LimitsUpdate{Subflows: u32(genl.MaxLimit), AddAddrAccepted: u32(genl.MaxLimit)}, genl.Limits{Subflows: 8, AddAddrAccepted: 8}},
		{"both zero", genl.LimitsUpdate{Subflows: u32(0), AddAddrAccepted: u32(0)}, genl.Limits{}},
		{"add_addr_accepted again", genl.LimitsUpdate{AddAddrAccepted: u32(1)}, genl.Limits{AddAddrAccepted: 1}},
	}
	for _, s := range steps {
		if s.name != "defaults" {
			if err := c.SetLimits(s.update); err != nil {
				t.Fatalf("%s: SetLimits: %v", s.name, err)
			}
		}
		got, err := c.Limits()
		if err != nil {
			t.Fatalf("%s: Limits(): %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, got, cmpNetip()); diff != "" {
			t.Errorf("%s: Limits() (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestGenlErrors checks that every kernel refusal comes back as an error
// matching the documented sentinel and the kernel's errno, with the
// kernel's text.
func TestGenlErrors(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	forEachSocketKind(t, testGenlErrors)
}

func testGenlErrors(t *testing.T, blocking bool) {
	ns := harness.NewNS(t)
	c := harness.DialGenlConfig(t, &genl.Config{NetNS: ns.Name, Blocking: blocking})
	for _, ep := range []genl.Endpoint{
		{Addr: addr("10.0.1.1")},                                  // id 1
		{Addr: addr("fd00:1::1"), Flags: genl.FlagSignal},         // id 2
		{Addr: addr("10.0.1.3"), Flags: genl.FlagSubflow, ID: 10}, // id 10
		{Addr: addr("10.0.1.4"), Flags: genl.FlagSignal, ID: 11},  // id 11
	} {
		if err := c.AddEndpoint(ep); err != nil {
			t.Fatalf("setting up: AddEndpoint(%+v): %v", ep, err)
		}
	}
	before, err := c.Endpoints()
	if err != nil {
		t.Fatalf("Endpoints(): %v", err)
	}

	const unknownToken = 0x0badc0de
	tests := []struct {
		name      string
		op        func() error
		kind      error // nil: no sentinel applies
		errno     unix.Errno
		inMessage string // part of the kernel's text in Error()
	}{
		{
			name:  "duplicate v4 address",
			op:    func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr("10.0.1.1"), Flags: genl.FlagSubflow}) },
			kind:  genl.ErrExists,
			errno: unix.EEXIST,
		},
		{
			name:  "duplicate v6 address",
			op:    func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr("fd00:1::1")}) },
			kind:  genl.ErrExists,
			errno: unix.EEXIST,
		},
		{
			name:  "id in use",
			op:    func() error { return c.AddEndpoint(genl.Endpoint{ID: 10, Addr: addr("10.0.1.99")}) },
			kind:  genl.ErrIDInUse,
			errno: unix.EBUSY,
		},
		{
			name:      "get unknown id",
			op:        func() error { _, err := c.Endpoint(77); return err },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "address not found",
		},
		{
			name:      "delete unknown id",
			op:        func() error { return c.DeleteEndpoint(77) },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "address not found",
		},
		{
			name:      "change flags of unknown id",
			op:        func() error { return c.SetEndpointFlags(genl.Endpoint{ID: 77}, genl.FlagBackup) },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "address not found",
		},
		{
			name:      "change flags of unknown address",
			op:        func() error { return c.SetEndpointFlags(genl.Endpoint{Addr: addr("10.0.1.77")}, genl.FlagBackup) },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "address not found",
		},
		{
			name:      "fullmesh on a signal endpoint",
			op:        func() error { return c.SetEndpointFlags(genl.Endpoint{ID: 11}, genl.FlagFullmesh) },
			errno:     unix.EINVAL,
			inMessage: "invalid addr flags",
		},
		{
			name: "port without signal",
			op: func() error {
				return c.AddEndpoint(genl.Endpoint{Addr: addr("10.0.1.6"), Port: 1234, Flags: genl.FlagSubflow})
			},
			errno:     unix.EINVAL,
			inMessage: "signal",
		},
		{
			name: "signal and fullmesh",
			op: func() error {
				return c.AddEndpoint(genl.Endpoint{Addr: addr("10.0.1.6"), Flags: genl.FlagSignal | genl.FlagFullmesh})
			},
			errno:     unix.EINVAL,
			inMessage: "fullmesh",
		},
		{
			// Only the kernel sets the implicit flag.
			name:      "implicit flag",
			op:        func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr("10.0.1.6"), Flags: genl.FlagImplicit}) },
			errno:     unix.EINVAL,
			inMessage: "IMPLICIT",
		},
		{
			name:      "subflows limit 9",
			op:        func() error { return c.SetLimits(genl.LimitsUpdate{Subflows: u32(9)}) },
			errno:     unix.EINVAL,
			inMessage: "limit greater than maximum (8)",
		},
		{
			name:      "add_addr_accepted limit 9",
			op:        func() error { return c.SetLimits(genl.LimitsUpdate{AddAddrAccepted: u32(9)}) },
			errno:     unix.EINVAL,
			inMessage: "limit greater than maximum (8)",
		},
		{
			name:      "announce on an unknown token",
			op:        func() error { return c.Announce(unknownToken, genl.Endpoint{ID: 5, Addr: addr("10.0.1.1")}) },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "invalid token",
		},
		{
			name:      "remove on an unknown token",
			op:        func() error { return c.Remove(unknownToken, 5) },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "invalid token",
		},
		{
			name: "create subflow on an unknown token",
			op: func() error {
				return c.CreateSubflow(unknownToken, genl.Endpoint{ID: 5, Addr: addr("10.0.1.1")}, netip.MustParseAddrPort("10.0.1.2:80"))
			},
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "invalid token",
		},
		{
			name: "destroy subflow on an unknown token",
			op: func() error {
				return c.DestroySubflow(unknownToken, netip.MustParseAddrPort("10.0.1.1:1000"), netip.MustParseAddrPort("10.0.1.2:80"))
			},
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "invalid token",
		},
		{
			name:      "addresses of an unknown token",
			op:        func() error { _, err := c.ConnEndpoints(unknownToken); return err },
			kind:      genl.ErrNotFound,
			errno:     unix.EINVAL,
			inMessage: "invalid token",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil {
				t.Fatalf("succeeded, want errno %v (%d)", tc.errno, tc.errno)
			}
			var ge *genl.Error
			if !errors.As(err, &ge) {
				t.Errorf("error %q (%T) is not a *genl.Error", err, err)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("error %q does not match errno %d (%v)", err, tc.errno, tc.errno)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %q does not match sentinel %q", err, tc.kind)
			}
			if tc.kind == nil {
				for _, s := range []error{genl.ErrExists, genl.ErrNotFound, genl.ErrIDInUse, genl.ErrTooManyEndpoints} {
					if errors.Is(err, s) {
						t.Errorf("error %q matches sentinel %q, want none", err, s)
					}
				}
			}
			if !strings.Contains(err.Error(), tc.inMessage) {
				t.Errorf("error %q does not contain the kernel's text %q", err, tc.inMessage)
			}
		})
	}

	// Nothing changed.
	after, err := c.Endpoints()
	if err != nil {
		t.Fatalf("Endpoints(): %v", err)
	}
	if diff := cmp.Diff(before, after, cmpNetip()); diff != "" {
		t.Errorf("the failed requests changed the endpoints (-before +after):\n%s", diff)
	}
	if l, err := c.Limits(); err != nil || l != (genl.Limits{Subflows: 2}) {
		t.Errorf("Limits() after refused changes = %+v, %v; want the defaults {Subflows:2 AddAddrAccepted:0}", l, err)
	}
}

func TestGenlTooManyEndpoints(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	c := harness.DialGenl(t, harness.NewNS(t))
	for i := 1; i <= genl.MaxEndpoints; i++ {
		ep := genl.Endpoint{Addr: addr(fmt.Sprintf("10.0.1.%d", i)), Flags: genl.FlagSignal}
		if err := c.AddEndpoint(ep); err != nil {
			t.Fatalf("AddEndpoint(%+v) (number %d of %d): %v", ep, i, genl.MaxEndpoints, err)
		}
	}
	ninth := genl.Endpoint{Addr: addr("10.0.1.9"), Flags: genl.FlagSignal}
	err := c.AddEndpoint(ninth)
	if !errors.Is(err, genl.ErrTooManyEndpoints) || !errors.Is(err, unix.ERANGE) {
		t.Errorf("AddEndpoint(%+v) beyond %d endpoints = %v, want ErrTooManyEndpoints and ERANGE", ninth, genl.MaxEndpoints, err)
	}
	eps, err := c.Endpoints()
	if err != nil {
		t.Fatalf("Endpoints(): %v", err)
	}
	if len(eps) != genl.MaxEndpoints {
		t.Errorf("Endpoints() lists %d endpoints, want %d: %+v", len(eps), genl.MaxEndpoints, eps)
	}
	// A freed slot can be used again.
	if err := c.DeleteEndpoint(3); err != nil {
		t.Fatalf("DeleteEndpoint(3): %v", err)
	}
	if err := c.AddEndpoint(ninth); err != nil {
		t.Errorf("AddEndpoint(%+v) after freeing a slot: %v", ninth, err)
	}
}

// TestGenlNamespaceIsolation checks that clients bound by name (or by file
// descriptor) see only their own namespace.
func TestGenlNamespaceIsolation(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	nsA, nsB := harness.NewNS(t), harness.NewNS(t)
	a := harness.DialGenl(t, nsA)
	b := harness.DialGenl(t, nsB)
	byFD, err := genl.Dial(&genl.Config{NetNSFD: int(nsB.NsHandle)})
	if err != nil {
		t.Fatalf("genl.Dial(NetNSFD of %s): %v", nsB.Name, err)
	}
	t.Cleanup(func() { _ = byFD.Close() })

	epA := genl.Endpoint{Addr: addr("10.0.1.1"), Flags: genl.FlagSubflow}
	if err := a.AddEndpoint(epA); err != nil {
		t.Fatalf("AddEndpoint(%+v) in %s: %v", epA, nsA.Name, err)
	}
	if err := a.SetLimits(genl.LimitsUpdate{Subflows: u32(7), AddAddrAccepted: u32(6)}); err != nil {
		t.Fatalf("SetLimits in %s: %v", nsA.Name, err)
	}
	// The same address in B is no duplicate.
	epB := genl.Endpoint{Addr: addr("10.0.1.1"), Flags: genl.FlagSignal, ID: 9}
	if err := b.AddEndpoint(epB); err != nil {
		t.Fatalf("AddEndpoint(%+v) in %s: %v", epB, nsB.Name, err)
	}

	want := map[string]struct {
		c      *genl.Client
		eps    []genl.Endpoint
		limits genl.Limits
	}{
		"A by name": {a, []genl.Endpoint{{ID: 1, Addr: addr("10.0.1.1"), Flags: genl.FlagSubflow}}, genl.Limits{Subflows: 7, AddAddrAccepted: 6}},
		"B by name": {b, []genl.Endpoint{{ID: 9, Addr: addr("10.0.1.1"), Flags: genl.FlagSignal}}, genl.Limits{Subflows: 2}},
		"B by fd":   {byFD, []genl.Endpoint{{ID: 9, Addr: addr("10.0.1.1"), Flags: genl.FlagSignal}}, genl.Limits{Subflows: 2}},
	}
	for name, w := range want {
		got, err := w.c.Endpoints()
		if err != nil {
			t.Fatalf("%s: Endpoints(): %v", name, err)
		}
		if diff := cmp.Diff(w.eps, got, cmpNetip()); diff != "" {
			t.Errorf("%s: Endpoints() (-want +got):\n%s", name, diff)
		}
		l, err := w.c.Limits()
		if err != nil {
			t.Fatalf("%s: Limits(): %v", name, err)
		}
		if l != w.limits {
			t.Errorf("%s: Limits() = %+v, want %+v", name, l, w.limits)
		}
	}
	if err := b.FlushEndpoints(); err != nil {
		t.Fatalf("FlushEndpoints in %s: %v", nsB.Name, err)
	}
	if got, err := a.Endpoints(); err != nil || len(got) != 1 {
		t.Errorf("after flushing %s, Endpoints() in %s = %+v, %v; want the one endpoint", nsB.Name, nsA.Name, got, err)
	}
}
