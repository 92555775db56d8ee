package endpoints

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

const (
	sig      = genl.FlagSignal
	sub      = genl.FlagSubflow
	backup   = genl.FlagBackup
	fullmesh = genl.FlagFullmesh
	implicit = genl.FlagImplicit
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// kep is a kernel endpoint.
func kep(id uint8, addr string, flags genl.Flags, ifindex int) genl.Endpoint {
	return genl.Endpoint{ID: id, Addr: ip(addr), Flags: flags, Ifindex: ifindex}
}

// want is a Want.
func want(iface string, ifindex int, addr string, flags genl.Flags, prio int) Want {
	return Want{Iface: iface, Ifindex: ifindex, Addr: ip(addr), Flags: flags, Priority: prio}
}

// ownedOf records kernel endpoints as ours, with their current flags.
func ownedOf(eps ...genl.Endpoint) *Owned {
	o := NewOwned()
	for _, ep := range eps {
		o.Set(OwnedEndpoint{Addr: ep.Addr, Port: ep.Port, ID: ep.ID, Flags: ep.Flags, Ifindex: ep.Ifindex})
	}
	return o
}

func addOp(iface string, ifindex int, addr string, flags genl.Flags) Op {
	return Op{Kind: OpAdd, Iface: iface, Endpoint: genl.Endpoint{Addr: ip(addr), Flags: flags, Ifindex: ifindex}}
}

func delOp(iface string, ep genl.Endpoint) Op {
	return Op{Kind: OpDelete, Iface: iface, Endpoint: ep}
}

func setOp(iface string, ep genl.Endpoint, flags genl.Flags) Op {
	ep.Flags = flags
	return Op{Kind: OpSetFlags, Iface: iface, Endpoint: ep}
}

// ignoreReason leaves the free-text reasons out of op comparisons; the
// cases that care check them separately.
var ignoreReason = cmpopts.IgnoreFields(Op{}, "Reason")

// equateAddrs lets cmp compare netip values (unexported fields).
var equateAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

type planCase struct {
	name   string
	want   []Want
	actual []genl.Endpoint
	owned  *Owned
	max    int

	wantOps     []Op
	wantForeign []string // Report.Foreign notes
	wantCapped  []string // Report.Capped notes
	wantSkipped []string // Report.Skipped notes
	wantReasons []string // op reasons, when set
}

func planCases() []planCase {
	// Endpoints that appear in several cases.
	e1 := kep(1, "10.0.1.1", sub, 2)
	e2 := kep(2, "10.0.2.1", sub|backup, 3)
	return []planCase{
		{
			name: "empty kernel: adds in priority order",
			want: []Want{
				want("eth2", 3, "10.0.2.1", sub|backup, 0),
				want("eth1", 2, "fd00:1::1", sub, 0),
				want("eth1", 2, "10.0.1.1", sub, 0),
				want("eth3", 4, "10.0.3.1", sub, 5),
			},
			wantOps: []Op{
				addOp("eth3", 4, "10.0.3.1", sub),
				addOp("eth1", 2, "10.0.1.1", sub),
				addOp("eth1", 2, "fd00:1::1", sub),
				addOp("eth2", 3, "10.0.2.1", sub|backup),
			},
		},
		{
			name:   "identical: nothing to do",
			want:   []Want{want("eth1", 2, "10.0.1.1", sub, 0), want("eth2", 3, "10.0.2.1", sub|backup, 0)},
			actual: []genl.Endpoint{e1, e2},
			owned:  ownedOf(e1, e2),
		},
		{
			name:        "backup toggled: set-flags, not delete and add",
			want:        []Want{want("eth1", 2, "10.0.1.1", sub|backup, 0)},
			actual:      []genl.Endpoint{e1},
			owned:       ownedOf(e1),
			wantOps:     []Op{setOp("eth1", e1, sub|backup)},
			wantReasons: []string{`the policy changed the flags from "subflow" to "subflow backup"`},
		},
		{
			name:    "fullmesh added: set-flags",
			want:    []Want{want("eth1", 2, "10.0.1.1", sub|fullmesh, 0)},
			actual:  []genl.Endpoint{e1},
			owned:   ownedOf(e1),
			wantOps: []Op{setOp("eth1", e1, sub|fullmesh)},
		},
		{
			name:   "signal to subflow: delete and add",
			want:   []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			actual: []genl.Endpoint{kep(1, "10.0.1.1", sig, 2)},
			owned:  ownedOf(kep(1, "10.0.1.1", sig, 2)),
			wantOps: []Op{
				delOp("eth1", kep(1, "10.0.1.1", sig, 2)),
				addOp("eth1", 2, "10.0.1.1", sub),
			},
			wantReasons: []string{
				`the policy changed the flags from "signal" to "subflow", which needs delete and add`,
				"re-added with the new settings",
			},
		},
		{
			name:   "interface index changed: delete and add",
			want:   []Want{want("eth5", 5, "10.0.1.1", sub, 0)},
			actual: []genl.Endpoint{e1},
			owned:  ownedOf(e1),
			wantOps: []Op{
				delOp("eth5", e1),
				addOp("eth5", 5, "10.0.1.1", sub),
			},
		},
		{
			name:        "foreign endpoint with the wanted address: untouched and reported",
			want:        []Want{want("eth1", 2, "10.0.0.5", sub, 0)},
			actual:      []genl.Endpoint{kep(7, "10.0.0.5", sig, 0)},
			wantForeign: []string{"10.0.0.5 on eth1 is managed by someone else (id 7); left alone"},
		},
		{
			name:        "foreign endpoint nobody wants: untouched and reported",
			actual:      []genl.Endpoint{kep(3, "10.9.9.9", sig, 0)},
			wantForeign: []string{"10.9.9.9 (id 3) was not created by mptcpd-go; left alone"},
		},
		{
			name:        "owned endpoint deleted by hand: re-added",
			want:        []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			owned:       ownedOf(e1),
			wantOps:     []Op{addOp("eth1", 2, "10.0.1.1", sub)},
			wantReasons: []string{"re-added: our endpoint (id 1) was deleted outside mptcpd-go"},
		},
		{
			name:        "owned backup flag cleared by someone: put back in place",
			want:        []Want{want("eth1", 2, "10.0.1.1", sub|backup, 0)},
			actual:      []genl.Endpoint{e1},
			owned:       ownedOf(kep(1, "10.0.1.1", sub|backup, 2)),
			wantOps:     []Op{setOp("eth1", e1, sub|backup)},
			wantReasons: []string{`someone else changed the flags from "subflow" to "subflow backup"`},
		},
		{
			name:   "owned signal flag added by someone: put back with delete and add",
			want:   []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			actual: []genl.Endpoint{kep(1, "10.0.1.1", sub|sig, 2)},
			owned:  ownedOf(e1),
			wantOps: []Op{
				delOp("eth1", kep(1, "10.0.1.1", sub|sig, 2)),
				addOp("eth1", 2, "10.0.1.1", sub),
			},
		},
		{
			name:        "address gone: delete",
			want:        []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			actual:      []genl.Endpoint{e1, e2},
			owned:       ownedOf(e1, e2),
			wantOps:     []Op{delOp("", e2)},
			wantReasons: []string{"no longer wanted"},
		},
		{
			name: "cap: priorities decide, foreign endpoints take slots",
			want: []Want{
				want("eth3", 13, "192.0.2.9", sub, 0),
				want("eth8", 18, "10.0.8.1", sub, 0),
				want("eth7", 17, "10.0.7.1", sub, 1),
				want("eth6", 16, "10.0.6.1", sub, 5),
				want("eth5", 15, "10.0.5.1", sub, 5),
				want("eth4", 14, "10.0.4.1", sub, 5),
				want("eth2", 12, "10.0.2.1", sub, 10),
				want("eth1", 11, "10.0.1.1", sub, 10),
			},
			actual: []genl.Endpoint{kep(1, "10.9.0.1", sig, 0), kep(2, "10.9.0.2", sig, 0)},
			wantOps: []Op{
				addOp("eth1", 11, "10.0.1.1", sub),
				addOp("eth2", 12, "10.0.2.1", sub),
				addOp("eth4", 14, "10.0.4.1", sub),
				addOp("eth5", 15, "10.0.5.1", sub),
				addOp("eth6", 16, "10.0.6.1", sub),
				addOp("eth7", 17, "10.0.7.1", sub),
			},
			wantForeign: []string{
				"10.9.0.1 (id 1) was not created by mptcpd-go; left alone",
				"10.9.0.2 (id 2) was not created by mptcpd-go; left alone",
			},
			wantCapped: []string{
				"eth3 192.0.2.9 not added: the kernel allows at most 8 endpoints and 8 are in use (2 foreign)",
				"eth8 10.0.8.1 not added: the kernel allows at most 8 endpoints and 8 are in use (2 foreign)",
			},
		},
		{
			name: "cap: a higher-priority want takes an owned slot, delete first",
			max:  2,
			want: []Want{
				want("eth1", 2, "10.0.1.1", sub, 0),
				want("eth2", 3, "10.0.2.1", sub|backup, 0),
				want("eth3", 4, "10.0.3.1", sub, 9),
			},
			actual: []genl.Endpoint{e1, e2},
			owned:  ownedOf(e1, e2),
			wantOps: []Op{
				delOp("", e2),
				addOp("eth3", 4, "10.0.3.1", sub),
			},
			wantCapped: []string{"eth2 10.0.2.1 removed: the kernel allows at most 2 endpoints and 2 are in use (0 foreign)"},
		},
		{
			name: "cap: all slots foreign",
			max:  2,
			want: []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			actual: []genl.Endpoint{
				kep(1, "10.9.0.1", sig, 0), kep(2, "10.9.0.2", sig, 0),
			},
			wantForeign: []string{
				"10.9.0.1 (id 1) was not created by mptcpd-go; left alone",
				"10.9.0.2 (id 2) was not created by mptcpd-go; left alone",
			},
			wantCapped: []string{"eth1 10.0.1.1 not added: the kernel allows at most 2 endpoints and 2 are in use (2 foreign)"},
		},
		{
			name: "order: set-flags, adds, replacements, deletes",
			want: []Want{
				want("eth1", 2, "10.0.1.1", sub|backup, 0),
				want("eth2", 3, "10.0.2.1", sub, 0),
				want("eth4", 5, "10.0.4.1", sub, 0),
			},
			actual: []genl.Endpoint{e1, kep(2, "10.0.2.1", sig, 3), kep(3, "10.0.3.1", sub, 4)},
			owned:  ownedOf(e1, kep(2, "10.0.2.1", sig, 3), kep(3, "10.0.3.1", sub, 4)),
			wantOps: []Op{
				setOp("eth1", e1, sub|backup),
				addOp("eth4", 5, "10.0.4.1", sub),
				delOp("eth2", kep(2, "10.0.2.1", sig, 3)),
				addOp("eth2", 3, "10.0.2.1", sub),
				delOp("", kep(3, "10.0.3.1", sub, 4)),
			},
		},
		{
			name: "adoption after restart: address and id must both match",
			want: []Want{
				want("eth1", 2, "10.0.1.1", sub, 0),
				want("eth2", 3, "10.0.2.1", sub, 0),
				want("eth4", 5, "10.0.4.1", sub, 0),
			},
			actual: []genl.Endpoint{
				kep(1, "10.0.1.1", sub, 2), // still ours
				kep(2, "10.0.3.1", sig, 0), // our id 2 now holds another address
				kep(9, "10.0.4.1", sub, 5), // our address re-created under another id
			},
			owned: ownedOf(kep(1, "10.0.1.1", sub, 2), kep(2, "10.0.2.1", sub, 3), kep(4, "10.0.4.1", sub, 5)),
			wantOps: []Op{
				addOp("eth2", 3, "10.0.2.1", sub),
			},
			wantForeign: []string{
				"10.0.3.1 (id 2) was not created by mptcpd-go; left alone",
				"10.0.4.1 on eth4 is managed by someone else (id 9); left alone",
			},
		},
		{
			name:    "implicit endpoint: taken over by an add, even when full",
			max:     1,
			want:    []Want{want("eth1", 2, "10.0.1.1", sub, 0)},
			actual:  []genl.Endpoint{kep(5, "10.0.1.1", implicit, 0)},
			wantOps: []Op{addOp("eth1", 2, "10.0.1.1", sub)},
			wantReasons: []string{
				"replaces the implicit endpoint the kernel created (id 5)",
			},
		},
		{
			name:        "implicit endpoint nobody wants: left alone",
			actual:      []genl.Endpoint{kep(5, "10.0.1.1", implicit, 0)},
			wantForeign: []string{"10.0.1.1 (id 5) is an implicit endpoint the kernel created; left alone"},
		},
		{
			name: "invalid and duplicate wants are skipped",
			want: []Want{
				{Iface: "eth9", Flags: sub},
				want("eth2", 3, "10.0.1.1", sub, 0),
				want("eth1", 2, "10.0.1.1", sub, 1),
			},
			wantOps: []Op{addOp("eth1", 2, "10.0.1.1", sub)},
			wantSkipped: []string{
				"eth9: no address; ignored",
				"eth2 10.0.1.1: the same address is wanted on eth1 with higher precedence; ignored",
			},
		},
		{
			name:   "port makes a different endpoint",
			want:   []Want{{Iface: "eth1", Ifindex: 2, Addr: ip("10.0.1.1"), Port: 8080, Flags: sig}},
			actual: []genl.Endpoint{e1},
			owned:  ownedOf(e1),
			wantOps: []Op{
				{Kind: OpAdd, Iface: "eth1", Endpoint: genl.Endpoint{Addr: ip("10.0.1.1"), Port: 8080, Flags: sig, Ifindex: 2}},
				delOp("", e1),
			},
		},
		{
			name:   "IPv4-mapped want matches the IPv4 endpoint",
			want:   []Want{want("eth1", 2, "::ffff:10.0.1.1", sub, 0)},
			actual: []genl.Endpoint{e1},
			owned:  ownedOf(e1),
		},
		{
			name:   "implicit flag in a want is ignored",
			want:   []Want{want("eth1", 2, "10.0.1.1", sub|implicit, 0)},
			actual: []genl.Endpoint{e1},
			owned:  ownedOf(e1),
		},
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range planCases() {
		t.Run(tc.name, func(t *testing.T) {
			ops, rep := Plan(tc.want, tc.actual, tc.owned, tc.max)
			if diff := cmp.Diff(tc.wantOps, ops, ignoreReason, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ops (-want +got):\n%s", diff)
			}
			if tc.wantReasons != nil {
				var got []string
				for _, op := range ops {
					got = append(got, op.Reason)
				}
				if diff := cmp.Diff(tc.wantReasons, got); diff != "" {
					t.Errorf("reasons (-want +got):\n%s", diff)
				}
			}
			notes := func(n int, f func(int) string) []string {
				var s []string
				for i := range n {
					s = append(s, f(i))
				}
				return s
			}
			if diff := cmp.Diff(tc.wantForeign, notes(len(rep.Foreign), func(i int) string { return rep.Foreign[i].Note })); diff != "" {
				t.Errorf("foreign notes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCapped, notes(len(rep.Capped), func(i int) string { return rep.Capped[i].Note })); diff != "" {
				t.Errorf("capped notes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkipped, notes(len(rep.Skipped), func(i int) string { return rep.Skipped[i].Note })); diff != "" {
				t.Errorf("skipped notes (-want +got):\n%s", diff)
			}
			if rep.Summary == "" {
				t.Error("empty summary")
			}
		})
	}
}

// TestPlanApplies runs every case's ops against the fake kernel: each must
// succeed in order without exceeding the limit, foreign endpoints must stay
// as they were, and planning again on the result must find nothing to do.
func TestPlanApplies(t *testing.T) {
	for _, tc := range planCases() {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = genl.MaxEndpoints
			}
			k := newFakeKernel(tc.actual...)
			k.max = max
			owned := tc.owned.Clone()
			owned.prune(tc.actual)
			ops, _ := Plan(tc.want, tc.actual, tc.owned, tc.max)
			owned = applyOps(t, k, owned, ops)
			if k.peak > max {
				t.Errorf("the kernel held %d endpoints at once, limit %d", k.peak, max)
			}

			after := k.dump()
			for _, ep := range tc.actual {
				if tc.owned.owns(ep) || ep.Flags&implicit != 0 {
					continue
				}
				found := false
				for _, a := range after {
					found = found || a == ep
				}
				if !found {
					t.Errorf("foreign endpoint %+v was changed or removed; kernel now %+v", ep, after)
				}
			}
			again, rep := Plan(tc.want, after, owned, tc.max)
			if len(again) != 0 {
				t.Errorf("not converged: second plan %+v (%s)", again, rep.Summary)
			}
			if !strings.HasPrefix(rep.Summary, "in sync") {
				t.Errorf("second summary = %q, want it to start with \"in sync\"", rep.Summary)
			}
		})
	}
}

// applyOps applies ops to k as the Reconciler does and returns the
// resulting ownership.
func applyOps(t testing.TB, k *fakeKernel, owned *Owned, ops []Op) *Owned {
	t.Helper()
	for _, op := range ops {
		ep := op.Endpoint
		var err error
		switch op.Kind {
		case OpAdd:
			if err = k.AddEndpoint(ep); err == nil {
				for _, a := range k.dump() {
					if a.Addr == normAddr(ep.Addr) && a.Port == ep.Port {
						owned.Set(OwnedEndpoint{Addr: a.Addr, Port: a.Port, ID: a.ID, Flags: ep.Flags, Ifindex: ep.Ifindex})
					}
				}
			}
		case OpDelete:
			if err = k.DeleteEndpoint(ep.ID); err == nil {
				owned.Delete(ep.Addr, ep.Port)
			}
		case OpSetFlags:
			if err = k.SetEndpointFlags(genl.Endpoint{ID: ep.ID}, ep.Flags); err == nil {
				rec, _ := owned.Lookup(ep.Addr, ep.Port)
				rec.Flags = ep.Flags
				owned.Set(rec)
			}
		}
		if err != nil {
			t.Fatalf("%s %s: %v", op.Kind, addrPort(ep.Addr, ep.Port), err)
		}
	}
	return owned
}

func TestPlanSummary(t *testing.T) {
	e1 := kep(1, "10.0.1.1", sub, 2)
	_, rep := Plan([]Want{want("eth1", 2, "10.0.1.1", sub, 0), want("eth2", 3, "10.0.2.1", sub, 0)},
		[]genl.Endpoint{e1, kep(4, "10.0.0.5", sig, 0)}, ownedOf(e1), 2)
	if got, want := rep.Summary, "in sync; 2 of 2 endpoints in use (1 ours, 1 foreign); 1 capped"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	_, rep = Plan([]Want{want("eth1", 2, "10.0.1.1", sub, 0)}, nil, nil, 0)
	if got, want := rep.Summary, "1 to add; 1 of 8 endpoints in use (1 ours, 0 foreign)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

// TestPlanTieBreakStable: with equal priorities the input order must not
// matter.
func TestPlanTieBreakStable(t *testing.T) {
	var ws []Want
	for i := range 12 {
		ws = append(ws, want(fmt.Sprintf("eth%02d", i%4), i%4+2, fmt.Sprintf("10.0.%d.%d", i%4, i), sub, 0))
	}
	first, _ := Plan(ws, nil, nil, 0)
	for i := range ws {
		rot := append(append([]Want(nil), ws[i:]...), ws[:i]...)
		got, _ := Plan(rot, nil, nil, 0)
		if diff := cmp.Diff(first, got, equateAddrs); diff != "" {
			t.Fatalf("rotation %d changed the plan (-first +got):\n%s", i, diff)
		}
	}
	if len(first) != genl.MaxEndpoints {
		t.Errorf("%d ops, want %d", len(first), genl.MaxEndpoints)
	}
}

func TestPlanDoesNotModifyOwned(t *testing.T) {
	e1 := kep(1, "10.0.1.1", sub, 2)
	owned := ownedOf(e1, kep(2, "10.0.2.1", sub, 3))
	before := owned.Clone()
	Plan(nil, []genl.Endpoint{e1}, owned, 0)
	if !owned.Equal(before) {
		t.Errorf("Plan modified owned: %+v, was %+v", owned.List(), before.List())
	}
}
