package pathmgr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

// fakeEvents is an event stream the test feeds.
type fakeEvents struct {
	ch     chan evOrErr
	closed chan struct{}
	once   sync.Once
}

type evOrErr struct {
	ev  genl.Event
	err error
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{ch: make(chan evOrErr, 1<<16), closed: make(chan struct{})}
}

func (f *fakeEvents) Next() (genl.Event, error) {
	select {
	case it := <-f.ch:
		return it.ev, it.err
	case <-f.closed:
		return nil, fmt.Errorf("fake: %w", net.ErrClosed)
	}
}

func (f *fakeEvents) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeEvents) send(evs ...genl.Event) {
	for _, ev := range evs {
		f.ch <- evOrErr{ev: ev}
	}
}

func (f *fakeEvents) fail(err error) { f.ch <- evOrErr{err: err} }

// call is one kernel call the fake recorded.
type call struct {
	op      string
	token   uint32
	local   genl.Endpoint
	localAP netip.AddrPort
	remote  netip.AddrPort
	id      uint8
	flags   genl.Flags
	at      time.Time
}

// fakeKernel records calls; fail decides errors, and after, when set, is
// called (outside the lock) after each call, e.g. to emit the events the
// kernel would.
type fakeKernel struct {
	mu    sync.Mutex
	calls []call
	fail  func(call) error
	after func(call, error)
	eps   map[uint32][]genl.Endpoint
}

func (k *fakeKernel) do(c call) error {
	k.mu.Lock()
	c.at = time.Now()
	k.calls = append(k.calls, c)
	fail, after := k.fail, k.after
	k.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(c)
	}
	if after != nil {
		after(c, err)
	}
	return err
}

func (k *fakeKernel) Announce(token uint32, local genl.Endpoint) error {
	return k.do(call{op: "announce", token: token, local: local})
}
func (k *fakeKernel) Remove(token uint32, id uint8) error {
	return k.do(call{op: "remove", token: token, id: id})
}
func (k *fakeKernel) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	return k.do(call{op: "create", token: token, local: local, remote: remote})
}
func (k *fakeKernel) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	return k.do(call{op: "destroy", token: token, localAP: local, remote: remote})
}
func (k *fakeKernel) SetSubflowFlags(token uint32, local genl.Endpoint, remote netip.AddrPort, flags genl.Flags) error {
	return k.do(call{op: "setflags", token: token, localAP: netip.AddrPortFrom(local.Addr, local.Port), remote: remote, flags: flags})
}
func (k *fakeKernel) ConnEndpoints(token uint32) ([]genl.Endpoint, error) {
	k.do(call{op: "endpoints", token: token})
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.eps[token], nil
}

func (k *fakeKernel) ops(op string) []call {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []call
	for _, c := range k.calls {
		if op == "" || c.op == op {
			out = append(out, c)
		}
	}
	return out
}

// fakeSource is a local view the test changes.
type fakeSource struct {
	mu      sync.Mutex
	snap    endpoints.Snapshot
	changed chan struct{}
}

func newFakeSource(s endpoints.Snapshot) *fakeSource {
	return &fakeSource{snap: s, changed: make(chan struct{}, 1)}
}

func (s *fakeSource) Snapshot() endpoints.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.Clone()
}

func (s *fakeSource) Changed() <-chan struct{} { return s.changed }

func (s *fakeSource) set(fn func(*endpoints.Snapshot)) {
	s.mu.Lock()
	fn(&s.snap)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// fakeLister returns fixed sockets.
type fakeLister struct {
	mu    sync.Mutex
	conns []diag.Connection
	sfs   []diag.Subflow
	calls int
}

func (l *fakeLister) Connections() ([]diag.Connection, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return slices.Clone(l.conns), nil
}

func (l *fakeLister) Subflows() ([]diag.Subflow, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.sfs), nil
}

func (l *fakeLister) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// rig runs a Manager on fakes until the test ends.
type rig struct {
	m   *Manager
	ev  *fakeEvents
	k   *fakeKernel
	src *fakeSource
	ls  *fakeLister
}

func startRig(t testing.TB, cfg Config, mod func(*ManagerConfig)) *rig {
	t.Helper()
	r := &rig{ev: newFakeEvents(), k: &fakeKernel{}, src: newFakeSource(snapshot()), ls: &fakeLister{}}
	mc := ManagerConfig{Policy: cfg, Kernel: r.k, Events: r.ev, Source: r.src, Lister: r.ls}
	if tl, ok := t.(*testing.T); ok {
		mc.Logger = zaptest.NewLogger(tl, zaptest.Level(zap.InfoLevel))
	}
	if mod != nil {
		mod(&mc)
	}
	m, err := NewManager(mc)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestManagerOpensSubflows(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseBackup}}}, nil)
	r.ev.send(created(tok), established(tok))
	eventually(t, "two creates", func() bool { return len(r.k.ops("create")) == 2 })
	got := r.k.ops("create")
	want := []call{
		{op: "create", token: tok, local: genl.Endpoint{ID: 1, Addr: ip("10.0.2.1"), Ifindex: 3}, remote: ap("203.0.113.9:443")},
		{op: "create", token: tok, local: genl.Endpoint{ID: 2, Addr: ip("10.0.3.1"), Ifindex: 4, Flags: genl.FlagBackup}, remote: ap("203.0.113.9:443")},
	}
	for i := range got {
		got[i].at = time.Time{}
	}
	if d := diffCalls(want, got); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)})
	eventually(t, "the subflow up in Status", func() bool {
		st := r.m.Status()
		return len(st.Connections) == 1 && len(st.Connections[0].Subflows) == 3 && st.Connections[0].Subflows[1].State == SubflowUp
	})
	st := r.m.Status()
	c := st.Connections[0]
	if c.Token != "d00436b6" || c.Side != ClientSide || !c.Established || c.Subflows[1].Local != ap("10.0.2.1:5001") ||
		!c.Subflows[2].Backup || c.Subflows[2].State != SubflowPending {
		t.Errorf("status %+v", c)
	}
	if st.Counters.Actions.CreateSubflow != 2 || st.Counters.Events != 3 || st.Counters.Failures.Total() != 0 {
		t.Errorf("counters %+v", st.Counters)
	}
	if len(st.Interfaces) != 3 {
		t.Errorf("interfaces %+v", st.Interfaces)
	}
	// No more calls for events that change nothing.
	r.ev.send(&genl.SubflowPriority{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)})
	r.ev.send(&genl.Closed{Token: tok})
	eventually(t, "the connection forgotten", func() bool { _, n := r.m.Counts(); return n == 0 })
	if n := len(r.k.ops("create")); n != 2 {
		t.Errorf("%d creates, want 2", n)
	}
}

func diffCalls(want, got []call) string {
	if len(want) != len(got) {
		return fmt.Sprintf("want %d calls %+v\ngot %d calls %+v", len(want), want, len(got), got)
	}
	for i := range want {
		if want[i] != got[i] {
			return fmt.Sprintf("call %d: want %+v\ngot %+v", i, want[i], got[i])
		}
	}
	return ""
}

// TestManagerRetries: a refused subflow is retried after the backoff, as
// often as it fails, and the failures are counted.
func TestManagerRetries(t *testing.T) {
	cfg := Config{Retry: RetryPolicy{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond},
		Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}
	r := startRig(t, cfg, nil)
	// The kernel accepts the first two and the peer resets them; the
	// third call fails at once; the fourth works.
	n := 0
	r.k.mu.Lock()
	r.k.fail = func(c call) error {
		if c.op != "create" {
			return nil
		}
		n++
		if n == 3 {
			return &genl.Error{Op: "create", Message: "no route"}
		}
		return nil
	}
	r.k.after = func(c call, err error) {
		if c.op == "create" && err == nil && n <= 2 {
			sf := subEv(tok, fmt.Sprintf("10.0.2.1:%d", 5000+n), "203.0.113.9:443", 1, 0)
			sf.Error = 104
			r.ev.send(&genl.SubflowClosed{Subflow: sf})
		}
		if c.op == "create" && err == nil && n == 4 {
			r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5004", "203.0.113.9:443", 1, 0)})
		}
	}
	r.k.mu.Unlock()
	r.ev.send(established(tok))
	eventually(t, "four attempts", func() bool { return len(r.k.ops("create")) == 4 })
	calls := r.k.ops("create")
	for i := 1; i < len(calls); i++ {
		gap := calls[i].at.Sub(calls[i-1].at)
		if gap < 15*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, want ≥ the backoff", i+1, gap)
		}
		if calls[i].local.ID != 1 {
			t.Errorf("attempt %d with id %d, want the same id 1", i+1, calls[i].local.ID)
		}
	}
	eventually(t, "the subflow up", func() bool {
		st := r.m.Status()
		return len(st.Connections) == 1 && len(st.Connections[0].Subflows) == 2 && st.Connections[0].Subflows[1].State == SubflowUp
	})
	time.Sleep(200 * time.Millisecond)
	if n := len(r.k.ops("create")); n != 4 {
		t.Errorf("%d creates after success, want 4", n)
	}
	if f := r.m.Status().Counters.Failures.CreateSubflow; f != 1 {
		t.Errorf("%d failed create calls, want 1 (the other two failed later, as events)", f)
	}
}

// TestManagerFollowsAddresses: a lost address destroys its subflow and
// stops retries; its return brings the subflow back.
func TestManagerFollowsAddresses(t *testing.T) {
	cfg := Config{Retry: RetryPolicy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond},
		Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}
	r := startRig(t, cfg, nil)
	r.k.mu.Lock()
	r.k.after = func(c call, err error) {
		switch c.op {
		case "create":
			r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", c.local.ID, 0)})
		case "destroy":
			r.ev.send(&genl.SubflowClosed{Subflow: subEv(tok, c.localAP.String(), c.remote.String(), 1, 0)})
		}
	}
	r.k.mu.Unlock()
	r.ev.send(established(tok))
	eventually(t, "the subflow up", func() bool {
		st := r.m.Status()
		return len(st.Connections) == 1 && len(st.Connections[0].Subflows) == 2 && st.Connections[0].Subflows[1].State == SubflowUp
	})
	r.src.set(func(s *endpoints.Snapshot) { s.Links[2].Running = false })
	eventually(t, "a destroy", func() bool { return len(r.k.ops("destroy")) == 1 })
	if d := r.k.ops("destroy")[0]; d.localAP != ap("10.0.2.1:5001") || d.remote != ap("203.0.113.9:443") {
		t.Errorf("destroy %+v", d)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(r.k.ops("create")); n != 1 {
		t.Errorf("%d creates while the link is down, want 1", n)
	}
	r.src.set(func(s *endpoints.Snapshot) { s.Links[2].Running = true })
	eventually(t, "a new create", func() bool { return len(r.k.ops("create")) == 2 })
	if c := r.k.ops("create")[1]; c.local.ID != 1 {
		t.Errorf("the address came back with id %d, want its id 1", c.local.ID)
	}
}

// TestManagerLinkLostWhilePending: an interface that goes away while its
// subflow is still pending (nothing to destroy yet, no local port) gets the
// subflow destroyed once it comes up.
func TestManagerLinkLostWhilePending(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}, nil)
	r.ev.send(established(tok))
	eventually(t, "a create", func() bool { return len(r.k.ops("create")) == 1 })
	r.src.set(func(s *endpoints.Snapshot) { s.Links[2].Running = false })
	eventually(t, "the view without wlan0", func() bool { return len(r.m.Status().Interfaces) == 2 })
	if n := len(r.k.ops("destroy")); n != 0 {
		t.Fatalf("%d destroys of a pending subflow", n)
	}
	r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)})
	eventually(t, "a destroy", func() bool { return len(r.k.ops("destroy")) == 1 })
}

// TestManagerAddressLostWhileAnnouncing: an address removed while its
// announcement is in flight is withdrawn once the kernel answers.
func TestManagerAddressLostWhileAnnouncing(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wlan0"}, Signal: true}}}, nil)
	release := make(chan struct{})
	r.k.mu.Lock()
	r.k.fail = func(c call) error {
		if c.op == "announce" {
			<-release
		}
		return nil
	}
	r.k.mu.Unlock()
	r.ev.send(&genl.Established{Connection: evConn(tok, "10.0.1.1:443", "198.51.100.20:50000", true)})
	eventually(t, "an announce", func() bool { return len(r.k.ops("announce")) == 1 })
	r.src.set(func(s *endpoints.Snapshot) { s.Links[2].Addrs = nil })
	eventually(t, "the view without wlan0", func() bool { return len(r.m.Status().Interfaces) == 2 })
	close(release)
	eventually(t, "a remove", func() bool { return len(r.k.ops("remove")) == 1 })
}

func TestManagerServerSide(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wlan0"}, Signal: true}}}, nil)
	r.ev.send(&genl.Established{Connection: evConn(tok, "10.0.1.1:443", "198.51.100.20:50000", true)})
	eventually(t, "an announce", func() bool { return len(r.k.ops("announce")) == 1 })
	if a := r.k.ops("announce")[0]; a.local != (genl.Endpoint{ID: 1, Addr: ip("10.0.2.1")}) {
		t.Errorf("announce %+v", a.local)
	}
	r.src.set(func(s *endpoints.Snapshot) { s.Links[2].Addrs = nil })
	eventually(t, "a remove", func() bool { return len(r.k.ops("remove")) == 1 })
	if rm := r.k.ops("remove")[0]; rm.id != 1 || rm.token != tok {
		t.Errorf("remove %+v", rm)
	}
	eventually(t, "the announcement forgotten", func() bool {
		st := r.m.Status()
		return len(st.Connections) == 1 && len(st.Connections[0].Announced) == 0
	})
}

// TestManagerRebuildsAfterLostEvents: ErrEventsLost makes the Manager
// list the kernel's sockets, drop what closed and manage what it missed.
func TestManagerRebuildsAfterLostEvents(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}, nil)
	eventually(t, "the start-up rebuild", func() bool { return r.ls.count() == 1 })
	r.ev.send(established(1))
	eventually(t, "a create for 1", func() bool { return len(r.k.ops("create")) == 1 })

	// Meanwhile connection 1 closed and 2 opened, unseen.
	r.ls.mu.Lock()
	r.ls.conns = []diag.Connection{{
		Socket: diag.Socket{State: diag.StateEstablished, Local: ap("10.0.1.1:40002"), Remote: ap("203.0.113.9:443")},
		Info:   &diag.Info{Token: 2, Flags: diag.InfoRemoteKeyReceived},
	}}
	r.ls.sfs = []diag.Subflow{{
		Socket:     diag.Socket{State: diag.StateEstablished, Local: ap("10.0.1.1:40002"), Remote: ap("203.0.113.9:443")},
		TokenLocal: 2, Flags: diag.FlagMPCapableLocal | diag.FlagMPCapableRemote,
	}}
	r.ls.mu.Unlock()
	r.k.mu.Lock()
	r.k.eps = map[uint32][]genl.Endpoint{2: {{ID: 1, Addr: ip("10.0.9.9")}}}
	r.k.mu.Unlock()
	r.ev.fail(&genl.Error{Op: "receive", Kind: genl.ErrEventsLost})
	eventually(t, "the rebuild", func() bool { return r.ls.count() == 2 })
	eventually(t, "a create for 2", func() bool { return len(r.k.ops("create")) == 2 })
	if c := r.k.ops("create")[1]; c.token != 2 || c.local.ID != 2 {
		t.Errorf("create %+v, want token 2 with id 2 (1 is the kernel's)", c)
	}
	if e := r.k.ops("endpoints"); len(e) != 1 || e[0].token != 2 {
		t.Errorf("ConnEndpoints calls %+v", e)
	}
	st := r.m.Status()
	if len(st.Connections) != 1 || st.Connections[0].Token != "00000002" || st.Counters.EventsLost != 1 || st.Counters.Rebuilds != 2 {
		t.Errorf("status %+v", st)
	}
}

func TestManagerSetConfig(t *testing.T) {
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}, nil)
	r.ev.send(established(tok))
	eventually(t, "a create", func() bool { return len(r.k.ops("create")) == 1 })
	r.ev.send(&genl.SubflowEstablished{Subflow: subEv(tok, "10.0.2.1:5001", "203.0.113.9:443", 1, 0)})
	eventually(t, "the subflow up", func() bool {
		st := r.m.Status()
		return len(st.Connections) == 1 && len(st.Connections[0].Subflows) == 2 && st.Connections[0].Subflows[1].State == SubflowUp
	})
	if err := r.m.SetConfig(Config{Preset: "bogus"}); err == nil {
		t.Error("SetConfig accepted a bad config")
	}
	if err := r.m.SetConfig(Config{Preset: PresetBackup, Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a backup change", func() bool { return len(r.k.ops("setflags")) == 1 })
	if c := r.k.ops("setflags")[0]; c.flags != genl.FlagBackup || c.localAP != ap("10.0.2.1:5001") {
		t.Errorf("set flags %+v", c)
	}
	if err := r.m.SetConfig(Config{Rules: []ConnRule{{Action: Never}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a destroy", func() bool { return len(r.k.ops("destroy")) == 1 })
}

func TestManagerRunErrors(t *testing.T) {
	if _, err := NewManager(ManagerConfig{}); err == nil {
		t.Error("NewManager without a kernel")
	}
	ev := newFakeEvents()
	m, err := NewManager(ManagerConfig{Kernel: &fakeKernel{}, Events: ev, Source: newFakeSource(snapshot())})
	if err != nil {
		t.Fatal(err)
	}
	ev.fail(errors.New("undecodable")) // skipped
	ev.fail(fmt.Errorf("gone: %w", net.ErrClosed))
	err = m.Run(context.Background())
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Run = %v, want the closed stream's error", err)
	}
	if m.Status().Counters.EventErrors != 1 {
		t.Errorf("counters %+v", m.Status().Counters)
	}
	if err := m.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
	_, err = NewManager(ManagerConfig{Kernel: &fakeKernel{}, Events: ev, Source: newFakeSource(snapshot()),
		Policy: Config{MaxSubflows: -1}})
	if err == nil {
		t.Error("NewManager accepted a bad policy")
	}
}

// TestManagerBusyHost: thousands of connections in a burst each get their
// subflow once; actions of a connection stay on one worker.
func TestManagerBusyHost(t *testing.T) {
	const n = 5000
	r := startRig(t, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}},
		func(mc *ManagerConfig) {
			mc.Workers = 4
			mc.NewKernel = nil
		})
	for i := range uint32(n) {
		r.ev.send(created(1000+i), established(1000+i))
	}
	eventually(t, "a create per connection", func() bool { return len(r.k.ops("create")) >= n })
	seen := map[uint32]int{}
	for _, c := range r.k.ops("create") {
		seen[c.token]++
	}
	for tok, k := range seen {
		if k != 1 {
			t.Errorf("token %d: %d creates", tok, k)
		}
	}
	if len(seen) != n {
		t.Errorf("%d tokens got a create, want %d", len(seen), n)
	}
	if _, tracked := r.m.Counts(); tracked != n {
		t.Errorf("%d tracked", tracked)
	}
}

// BenchmarkManagerEstablished measures ESTABLISHED → CreateSubflow through
// the decision loop and the workers with a kernel that answers at once.
func BenchmarkManagerEstablished(b *testing.B) {
	done := make(chan struct{}, 1024)
	r := startRig(b, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}},
		func(mc *ManagerConfig) { mc.Lister = nil })
	r.k.mu.Lock()
	r.k.after = func(call, error) { done <- struct{}{} }
	r.k.mu.Unlock()
	b.ResetTimer()
	for i := range b.N {
		tok := uint32(i + 1)
		r.ev.send(established(tok))
		<-done
		r.ev.send(&genl.Closed{Token: tok})
	}
}

// The real types satisfy the interfaces.
var (
	_ Events = (*genl.Subscription)(nil)
	_ Kernel = (*genl.Client)(nil)
	_ Source = (*endpoints.Watcher)(nil)
	_ Lister = (*diag.Conn)(nil)
)
