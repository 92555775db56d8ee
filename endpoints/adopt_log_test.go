package endpoints

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// TestNewReconcilerLogsAdoption: a state file with records is announced
// once at start, so a restart after a crash shows that the endpoints were
// taken back; an empty or missing state says nothing.
func TestNewReconcilerLogsAdoption(t *testing.T) {
	const msg = "adopting endpoints recorded in the state file"
	tests := []struct {
		name  string
		saved []OwnedEndpoint // nil: no state file
		want  []int64         // "endpoints" fields of the adoption lines
	}{
		{name: "no state file"},
		{name: "empty", saved: []OwnedEndpoint{}},
		{name: "two endpoints", saved: []OwnedEndpoint{
			{Addr: netip.MustParseAddr("10.0.0.1"), ID: 1, Flags: genl.FlagSubflow, Ifindex: 2, Iface: "eth1"},
			{Addr: netip.MustParseAddr("10.0.0.2"), ID: 2, Flags: genl.FlagSubflow, Ifindex: 3, Iface: "eth2"},
		}, want: []int64{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if tc.saved != nil {
				if err := NewOwned(tc.saved...).Save(path); err != nil {
					t.Fatal(err)
				}
			}
			core, logs := observer.New(zap.InfoLevel)
			r, err := NewReconciler(Config{Kernel: newFakeKernel(), Source: newFakeSource(twoLinks()),
				Desired: testDesired, StatePath: path, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range logs.FilterMessage(msg).All() {
				got = append(got, e.ContextMap()["endpoints"].(int64))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("adoption log lines, endpoints field (-want +got):\n%s", diff)
			}
			if n := r.owned.Len(); n != len(tc.saved) {
				t.Errorf("owned after start: %d records, want %d", n, len(tc.saved))
			}
		})
	}
}

// TestCrashAfterAdd: the adds are in the state file before they are
// made, so a daemon killed between an add and the save after it takes the
// endpoint back at the next start instead of calling it someone else's.
func TestCrashAfterAdd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	k := newFakeKernel()
	var seen [][]OwnedEndpoint // pending as the file had it at each add
	k.beforeAdd = func(genl.Endpoint) {
		_, pending, err := loadState(path)
		if err != nil {
			t.Errorf("state file at add time: %v", err)
		}
		seen = append(seen, pending)
	}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), StatePath: path})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantAdds := len(k.dump())
	if wantAdds == 0 || len(seen) != wantAdds {
		t.Fatalf("%d adds seen by the hook, kernel has %d endpoints", len(seen), wantAdds)
	}
	for i, p := range seen {
		if len(p) != wantAdds {
			t.Errorf("add %d: state file listed %d pending adds, want all %d", i+1, len(p), wantAdds)
		}
	}
	if _, pending, _ := loadState(path); len(pending) != 0 {
		t.Errorf("after the reconcile the state file still lists %d pending adds", len(pending))
	}

	// The crash: the endpoints are in the kernel, the state file is the one
	// written before the adds.
	crashed := newFakeKernel(k.dump()...)
	if err := NewOwned().saveState(path, seen[0]); err != nil {
		t.Fatal(err)
	}
	r2 := newTestReconciler(t, Config{Kernel: crashed, Source: newFakeSource(twoLinks()), StatePath: path})
	if err := r2.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := crashed.takeCalls(); len(calls) != 0 {
		t.Errorf("after the restart the reconciler changed the kernel: %v, want nothing (the endpoints are its own)", calls)
	}
	var want, got []uint8
	for _, ep := range crashed.dump() {
		want = append(want, ep.ID)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range saved.List() {
		got = append(got, e.ID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owned ids after the restart (-want +got):\n%s", diff)
	}
}
