package endpoints

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// waitTimeout bounds every wait for an asynchronous outcome; tests poll
// until then and never sleep to assert.
const waitTimeout = 10 * time.Second

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sortStrings compares string slices as sets.
var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func testLink(idx int, name string, addrs ...string) Link {
	l := Link{Index: idx, Name: name, Kind: "veth", Up: true, Running: true}
	for _, a := range addrs {
		l.Addrs = append(l.Addrs, Addr{Prefix: netip.MustParsePrefix(a)})
	}
	return l
}

func snapOf(links ...Link) Snapshot { return Snapshot{Links: links} }

// testDesired wants every global address as a subflow endpoint, backup on
// eth2. Like a real policy it need not check link state: the Reconciler
// does.
func testDesired(s Snapshot) ([]Want, LimitsWant) {
	var ws []Want
	for _, l := range s.Links {
		for _, a := range l.Addrs {
			if !a.IsGlobal() {
				continue
			}
			f := sub
			if l.Name == "eth2" {
				f |= backup
			}
			ws = append(ws, Want{Iface: l.Name, Ifindex: l.Index, Addr: a.Prefix.Addr(), Flags: f})
		}
	}
	return ws, LimitsWant{}
}

func twoLinks() Snapshot {
	return snapOf(
		testLink(2, "eth1", "10.0.1.1/24", "fd00:1::1/64", "fe80::1/64"),
		testLink(3, "eth2", "10.0.2.1/24"),
	)
}

func newTestReconciler(t *testing.T, cfg Config) *Reconciler {
	t.Helper()
	if cfg.Desired == nil {
		cfg.Desired = testDesired
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = time.Hour
	}
	r, err := NewReconciler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// kernelState renders the kernel's endpoints as "addr flags" lines.
func kernelState(eps []genl.Endpoint) []string {
	var s []string
	for _, ep := range eps {
		s = append(s, ep.Addr.String()+" "+ep.Flags.String())
	}
	return s
}

// runReconciler runs r in the background until the test ends.
func runReconciler(t *testing.T, r *Reconciler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	g.Go(func() error { return r.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestReconcilerAppliesAndSaves(t *testing.T) {
	k := newFakeKernel()
	path := filepath.Join(t.TempDir(), "owned.json")
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), StatePath: path})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.1.1 subflow", "fd00:1::1 subflow", "10.0.2.1 subflow backup"}
	if diff := cmp.Diff(want, kernelState(k.dump())); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
	st := r.Status()
	if len(st.Owned) != 3 || len(st.Applied) != 3 || len(st.Errors) != 0 || st.Reconciles != 1 {
		t.Errorf("status %+v: want 3 owned, 3 applied, no errors, 1 reconcile", st)
	}
	if !strings.HasPrefix(st.Report.Summary, "applied 3 changes; 3 of 8 endpoints in use (3 ours, 0 foreign)") {
		t.Errorf("summary %q", st.Report.Summary)
	}
	saved, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st.Owned, saved.List(), equateAddrs); diff != "" {
		t.Errorf("state file (-status +file):\n%s", diff)
	}
	for _, e := range saved.List() {
		if e.ID == 0 || e.Iface == "" {
			t.Errorf("saved record %+v lacks the kernel id or interface", e)
		}
	}

	// Nothing changed: the next reconcile only reads.
	k.takeCalls()
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := k.takeCalls(); len(calls) != 0 {
		t.Errorf("no-op reconcile made calls %v", calls)
	}
	if st := r.Status(); !strings.HasPrefix(st.Report.Summary, "in sync") || st.Applied != nil {
		t.Errorf("no-op status: summary %q, applied %v", st.Report.Summary, st.Applied)
	}
}

// TestReconcilerCoalesces: triggers and change notifications that arrive
// while a reconcile runs cause exactly one more, and a trigger when idle
// starts one at once (the resync period is an hour).
func TestReconcilerCoalesces(t *testing.T) {
	k := newFakeKernel()
	src := newFakeSource(twoLinks())
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	k.beforeDump = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	r := newTestReconciler(t, Config{Kernel: k, Source: src})
	type idleState struct {
		reconciles     uint64
		pendingTrigger int
		pendingChange  int
	}
	idle := make(chan idleState, 16)
	// Runs on Run's goroutine just before it waits: nothing can slip in
	// between reading the pending signals and the wait.
	r.onIdle = func() {
		idle <- idleState{r.Status().Reconciles, len(r.trigger), len(src.changed)}
	}
	runReconciler(t, r)

	<-entered // the first reconcile is stuck in the kernel dump
	for range 10 {
		r.Trigger()
		src.notify()
	}
	close(release)

	next := func() idleState {
		t.Helper()
		select {
		case s := <-idle:
			return s
		case <-time.After(waitTimeout):
			t.Fatal("Run did not become idle")
		}
		return idleState{}
	}
	if s := next(); s.reconciles != 1 {
		t.Fatalf("first idle after %d reconciles, want 1", s.reconciles)
	}
	if s := next(); s != (idleState{reconciles: 2}) {
		t.Fatalf("after the burst: %+v, want exactly 2 reconciles and nothing pending", s)
	}

	// Idle: one trigger runs one reconcile right away.
	start := time.Now()
	r.Trigger()
	if s := next(); s.reconciles != 3 {
		t.Fatalf("after one trigger: %d reconciles, want 3", s.reconciles)
	}
	t.Logf("idle trigger → reconcile done in %v", time.Since(start))
	select {
	case s := <-idle:
		t.Fatalf("unexpected extra reconcile: %+v", s)
	default:
	}
}

func TestReconcilerResyncFixesDrift(t *testing.T) {
	k := newFakeKernel(kep(9, "10.9.9.9", sig, 0))
	src := newFakeSource(twoLinks())
	r := newTestReconciler(t, Config{Kernel: k, Source: src, ResyncInterval: 20 * time.Millisecond})
	runReconciler(t, r)
	eventually(t, "the first reconcile", func() bool { return r.Status().Reconciles >= 1 })
	want := []string{"10.9.9.9 signal", "10.0.1.1 subflow", "fd00:1::1 subflow", "10.0.2.1 subflow backup"}
	if diff := cmp.Diff(want, kernelState(k.dump()), sortStrings); diff != "" {
		t.Fatalf("kernel (-want +got):\n%s", diff)
	}

	// Drift nobody announces: our endpoints deleted and changed by hand.
	// Only the periodic resync can notice.
	refreshes := src.refreshCount()
	k.handDelete(ip("10.0.1.1"))
	k.handSetFlags(ip("10.0.2.1"), sub)
	eventually(t, "the periodic resync to restore the endpoints", func() bool {
		return cmp.Equal(want, kernelState(k.dump()), sortStrings)
	})
	eventually(t, "a resync to re-list the source", func() bool { return src.refreshCount() > refreshes })
}

func TestReconcilerCollectsErrors(t *testing.T) {
	k := newFakeKernel()
	k.failAdd = map[netip.Addr]error{ip("fd00:1::1"): kerr("add endpoint", genl.ErrPermission, 1)}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks())})
	err := r.Reconcile(t.Context())
	if !errors.Is(err, genl.ErrPermission) {
		t.Fatalf("Reconcile = %v, want ErrPermission", err)
	}
	st := r.Status()
	if len(st.Errors) != 1 || !errors.Is(st.Errors[0], genl.ErrPermission) || !strings.Contains(st.Errors[0].Error(), "eth1 fd00:1::1") {
		t.Errorf("Status.Errors = %v, want one ErrPermission naming eth1 fd00:1::1", st.Errors)
	}
	// The other changes still happened.
	if diff := cmp.Diff([]string{"10.0.1.1 subflow", "10.0.2.1 subflow backup"}, kernelState(k.dump())); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(st.Report.Summary, "applied 2 of 3 changes") {
		t.Errorf("summary %q", st.Report.Summary)
	}

	// Fixed: the next reconcile retries and clears the errors.
	k.mu.Lock()
	k.failAdd = nil
	k.mu.Unlock()
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); len(st.Errors) != 0 || len(st.Owned) != 3 {
		t.Errorf("after the fix: errors %v, owned %d; want none, 3", st.Errors, len(st.Owned))
	}
}

func TestReconcilerDumpFailure(t *testing.T) {
	k := newFakeKernel()
	k.failDump = map[int]error{1: kerr("dump endpoints", genl.ErrPermission, 1)}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks())})
	if err := r.Reconcile(t.Context()); !errors.Is(err, genl.ErrPermission) {
		t.Fatalf("Reconcile = %v, want ErrPermission", err)
	}
	if calls := k.takeCalls(); len(calls) != 0 {
		t.Errorf("made changes without a dump: %v", calls)
	}
}

// TestReconcilerLearnsIDsLater: when the dump after adding fails, the adds
// are adopted from the next dump instead of being lost (and turning
// foreign).
func TestReconcilerLearnsIDsLater(t *testing.T) {
	k := newFakeKernel()
	k.failDump = map[int]error{2: errors.New("transient")}
	path := filepath.Join(t.TempDir(), "owned.json")
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), StatePath: path})
	if err := r.Reconcile(t.Context()); err == nil {
		t.Fatal("Reconcile: want the failed dump reported")
	}
	if len(r.trigger) != 1 {
		t.Error("no rerun requested after the failed dump")
	}
	k.takeCalls()
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := k.takeCalls(); len(calls) != 0 {
		t.Errorf("second reconcile made calls %v, want none (the endpoints are ours)", calls)
	}
	if st := r.Status(); len(st.Owned) != 3 || len(st.Report.Foreign) != 0 {
		t.Errorf("owned %+v, foreign %+v; want 3 owned, none foreign", st.Owned, st.Report.Foreign)
	}
}

// TestReconcilerRaceErrExists: someone adds the address between our dump and
// our add. The add fails with ErrExists, a rerun follows, and the endpoint is
// then reported as someone else's.
func TestReconcilerRaceErrExists(t *testing.T) {
	k := newFakeKernel()
	var once sync.Once
	k.beforeAdd = func(ep genl.Endpoint) {
		if ep.Addr == ip("10.0.2.1") {
			once.Do(func() { k.handAdd(kep(0, "10.0.2.1", sig, 0)) })
		}
	}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks())})
	if err := r.Reconcile(t.Context()); !errors.Is(err, genl.ErrExists) {
		t.Fatalf("Reconcile = %v, want ErrExists", err)
	}
	if len(r.trigger) != 1 {
		t.Fatal("no rerun requested after ErrExists")
	}
	<-r.trigger
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if len(st.Report.Foreign) != 1 || !strings.Contains(st.Report.Foreign[0].Note, "10.0.2.1 on eth2 is managed by someone else") {
		t.Errorf("foreign report %+v", st.Report.Foreign)
	}
	if len(r.trigger) != 0 {
		t.Error("settled, but another rerun was requested")
	}
}

func TestReconcilerCleanupRemovesOnlyOwned(t *testing.T) {
	foreign := kep(7, "10.9.9.9", sig, 0)
	k := newFakeKernel(foreign)
	path := filepath.Join(t.TempDir(), "owned.json")
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), StatePath: path})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(k.dump()); n != 4 {
		t.Fatalf("%d endpoints before cleanup, want 4", n)
	}
	if err := r.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]genl.Endpoint{foreign}, k.dump(), equateAddrs); diff != "" {
		t.Errorf("after cleanup (-want +got):\n%s", diff)
	}
	saved, err := Load(path)
	if err != nil || saved.Len() != 0 {
		t.Errorf("state after cleanup: %+v, %v; want empty", saved.List(), err)
	}
	if st := r.Status(); len(st.Owned) != 0 {
		t.Errorf("status still lists owned %+v", st.Owned)
	}
}

// TestReconcilerAdoptsAfterRestart: a new Reconciler reading the state file
// takes over the endpoints the old one created, and only those.
func TestReconcilerAdoptsAfterRestart(t *testing.T) {
	k := newFakeKernel()
	path := filepath.Join(t.TempDir(), "owned.json")
	src := newFakeSource(twoLinks())
	r1 := newTestReconciler(t, Config{Kernel: k, Source: src, StatePath: path})
	if err := r1.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	// While "down": someone deletes one of ours and re-creates it (new id).
	k.handDelete(ip("10.0.2.1"))
	k.handAdd(kep(0, "10.0.2.1", sub|backup, 3))
	k.takeCalls()

	r2 := newTestReconciler(t, Config{Kernel: k, Source: src, StatePath: path})
	if err := r2.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := k.takeCalls(); len(calls) != 0 {
		t.Errorf("restarted reconciler made calls %v, want none", calls)
	}
	st := r2.Status()
	var owned []string
	for _, e := range st.Owned {
		owned = append(owned, e.Addr.String())
	}
	if diff := cmp.Diff([]string{"10.0.1.1", "fd00:1::1"}, owned); diff != "" {
		t.Errorf("adopted (-want +got):\n%s", diff)
	}
	if len(st.Report.Foreign) != 1 || st.Report.Foreign[0].Endpoint.Addr != ip("10.0.2.1") {
		t.Errorf("foreign %+v, want the re-created 10.0.2.1", st.Report.Foreign)
	}
	// The state file forgot the endpoint that is no longer ours.
	saved, err := Load(path)
	if err != nil || saved.Len() != 2 {
		t.Errorf("state file: %+v, %v; want 2 records", saved.List(), err)
	}
	// Cleanup leaves the re-created one alone.
	if err := r2.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.2.1 subflow backup"}, kernelState(k.dump())); diff != "" {
		t.Errorf("after cleanup (-want +got):\n%s", diff)
	}
}

func TestReconcilerCorruptStateStartsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owned.json")
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := newFakeKernel(kep(1, "10.0.1.1", sub, 2))
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), StatePath: path})
	err := r.Reconcile(t.Context())
	if !errors.Is(err, ErrCorruptState) {
		t.Errorf("first reconcile = %v, want the state-file error reported", err)
	}
	// 10.0.1.1 looks foreign now and is left alone; the rest is added.
	if diff := cmp.Diff([]string{"10.0.1.1 subflow", "10.0.2.1 subflow backup", "fd00:1::1 subflow"}, kernelState(k.dump()), sortStrings); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
	if err := r.Reconcile(t.Context()); err != nil {
		t.Errorf("second reconcile = %v; the load error is reported once", err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("the state file was not rewritten: %v", err)
	}
}

func TestReconcilerLimits(t *testing.T) {
	k := newFakeKernel()
	four := uint32(4)
	desired := func(s Snapshot) ([]Want, LimitsWant) {
		ws, _ := testDesired(s)
		return ws, LimitsWant{Subflows: &four}
	}
	k.limits = genl.Limits{Subflows: 2, AddAddrAccepted: 3}
	r := newTestReconciler(t, Config{Kernel: k, Source: newFakeSource(twoLinks()), Desired: desired})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := r.Status().Limits; got != (genl.Limits{Subflows: 4, AddAddrAccepted: 3}) {
		t.Errorf("limits %+v, want subflows 4 and add_addr_accepted left at 3", got)
	}
	k.takeCalls()
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := k.takeCalls(); len(calls) != 0 {
		t.Errorf("equal limits were set again: %v", calls)
	}
}

func TestReconcilerSkipsUnusable(t *testing.T) {
	k := newFakeKernel()
	down := testLink(4, "eth3", "10.0.3.1/24")
	down.Up, down.Running = false, false
	nocarrier := testLink(5, "eth4", "10.0.4.1/24")
	nocarrier.Running = false
	dad := testLink(6, "eth5", "fd00:5::1/64", "fd00:5::2/64")
	dad.Addrs[0].Tentative = true
	dad.Addrs[1].DADFailed, dad.Addrs[1].Tentative = true, true
	src := newFakeSource(snapOf(testLink(2, "eth1", "10.0.1.1/24"), down, nocarrier, dad))
	stale := func(s Snapshot) ([]Want, LimitsWant) {
		ws, lw := testDesired(s)
		// A policy that lags behind: an address that is gone, a link that
		// is gone.
		ws = append(ws, want("eth1", 2, "10.0.1.99", sub, 0), want("eth9", 99, "10.0.9.1", sub, 0))
		return ws, lw
	}
	r := newTestReconciler(t, Config{Kernel: k, Source: src, Desired: stale})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.1.1 subflow"}, kernelState(k.dump())); diff != "" {
		t.Errorf("kernel (-want +got):\n%s", diff)
	}
	var notes []string
	for _, s := range r.Status().Report.Skipped {
		notes = append(notes, s.Note)
	}
	wantNotes := []string{
		"eth3 10.0.3.1: eth3 is down; waiting for it",
		"eth4 10.0.4.1: eth4 has no carrier; waiting for it",
		"eth5 fd00:5::1: duplicate address detection has not finished; waiting for it",
		"eth5 fd00:5::2: duplicate address detection failed: another host uses this address",
		"eth1 10.0.1.99: the address is not on eth1; waiting for it",
		"eth9 10.0.9.1: the interface does not exist; waiting for it",
	}
	if diff := cmp.Diff(wantNotes, notes, sortStrings); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}

	// The link goes down: its endpoint goes.
	l := testLink(2, "eth1", "10.0.1.1/24")
	l.Running = false
	src.set(snapOf(l))
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eps := k.dump(); len(eps) != 0 {
		t.Errorf("endpoints on a link without carrier: %v", eps)
	}
}

func TestNewReconcilerRequires(t *testing.T) {
	for name, cfg := range map[string]Config{
		"kernel":  {Source: newFakeSource(Snapshot{}), Desired: testDesired},
		"source":  {Kernel: newFakeKernel(), Desired: testDesired},
		"desired": {Kernel: newFakeKernel(), Source: newFakeSource(Snapshot{})},
	} {
		if _, err := NewReconciler(cfg); err == nil || !strings.Contains(strings.ToLower(err.Error()), name) {
			t.Errorf("without %s: err = %v", name, err)
		}
	}
}

// TestStatusIsACopy: callers cannot change the Reconciler's status.
func TestStatusIsACopy(t *testing.T) {
	r := newTestReconciler(t, Config{Kernel: newFakeKernel(), Source: newFakeSource(twoLinks())})
	if err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	st.Owned[0].ID = 99
	st.Applied[0].Iface = "changed"
	if again := r.Status(); again.Owned[0].ID == 99 || again.Applied[0].Iface == "changed" {
		t.Error("Status returned shared slices")
	}
}
