package pathmgr

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

// Events is the stream of mptcp_pm events; *genl.Subscription satisfies
// it. Next returns an error matching genl.ErrEventsLost after the kernel
// dropped events, and keeps working afterwards.
type Events interface {
	Next() (genl.Event, error)
	Close() error
}

// drainer is an Events that can discard what waits in its socket
// (*genl.Subscription): after a loss, the rebuild replaces those events.
type drainer interface {
	Drain(limit time.Duration) error
}

// drainLimit bounds the drain after a loss; under a steady flood the
// queue may never be empty, and the rebuild must still happen.
const drainLimit = 500 * time.Millisecond

// Kernel is the userspace path manager's side of the kernel;
// *genl.Client satisfies it.
type Kernel interface {
	Announce(token uint32, local genl.Endpoint) error
	Remove(token uint32, id uint8) error
	CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error
	DestroySubflow(token uint32, local, remote netip.AddrPort) error
	SetSubflowFlags(token uint32, local genl.Endpoint, remote netip.AddrPort, flags genl.Flags) error
	ConnEndpoints(token uint32) ([]genl.Endpoint, error)
}

// Source is the view of local links and addresses; *endpoints.Watcher
// satisfies it.
type Source interface {
	Snapshot() endpoints.Snapshot
	// Changed receives a value after the snapshot changed (values may be
	// coalesced; nil means never).
	Changed() <-chan struct{}
}

// Lister lists the kernel's MPTCP sockets; *diag.Conn satisfies it.
type Lister interface {
	Connections() ([]diag.Connection, error)
	Subflows() ([]diag.Subflow, error)
}

// ManagerConfig configures a Manager. Kernel, Events and Source are
// required.
type ManagerConfig struct {
	// Policy is the initial policy; SetConfig changes it later.
	Policy Config
	Kernel Kernel
	// NewKernel, when set, gives every worker its own Kernel (a
	// *genl.Client serializes its round trips on one socket, so parallel
	// workers need their own); those that are io.Closers are closed when
	// Run returns. Kernel still serves the rebuilds.
	NewKernel func() (Kernel, error)
	// Events is read by Run, which closes it when it returns. Give the
	// subscription a large receive buffer on a busy host
	// (genl.SubscribeOptions.ReadBuffer): an overflow costs a rebuild.
	Events Events
	Source Source
	// Lister rebuilds the state at start and after lost events; nil
	// disables both (with a warning when events are lost).
	Lister Lister
	// Logger gets one line per action at debug level and trouble at
	// warn; zap.NewNop() when nil.
	Logger *zap.Logger
	// Workers is the number of goroutines making kernel calls
	// (DefaultWorkers when 0). Actions of one connection always go
	// through the same worker, in order.
	Workers int
	// MaxConnections bounds the tracked connections.
	MaxConnections int
	// Clock returns the current time for decisions and backoff; time.Now
	// when nil. Retry timers still wait in real time.
	Clock func() time.Time
}

// DefaultWorkers is the default number of kernel-call goroutines. A call
// can block for milliseconds on a busy connection's socket lock, holding up
// every connection queued behind it on the same worker: more workers keep
// that local (bench/upm at 1000/s: queue p99 1.5 ms with 2 workers, 0.8 ms
// with 8).
const DefaultWorkers = 4

// Manager runs the userspace path manager: it follows mptcp_pm events and
// local address changes, keeps a Tracker, runs Decide for the connections
// an event concerns, and carries out the actions.
//
// The event reader decides at once and makes the resulting kernel calls
// itself when the connection's worker is idle: a new connection's
// subflows are asked for without handing the event to another goroutine,
// which on a quiet host costs more than the call. Everything else (calls
// queued behind others, retries, interface and policy changes) goes
// through the loop and a few worker goroutines.
type Manager struct {
	kern      Kernel
	newKernel func() (Kernel, error)
	events    Events
	src       Source
	lister    Lister
	log       *zap.Logger
	workers   int
	now       func() time.Time
	running   atomic.Bool
	stopped   atomic.Bool
	cfgCh     chan Config
	// timersChanged wakes the loop when a retry is scheduled earlier
	// than the ones it sleeps for.
	timersChanged chan struct{}

	// mu guards the state below. The decision loop holds it only for
	// in-memory work, never across a kernel call; Status takes it to copy.
	mu          sync.Mutex
	cfg         Config
	view        LocalView
	tracker     *Tracker
	timers      timerHeap
	lastRebuild time.Time
	rebuildErr  error

	c counters
}

// NewManager checks cfg and returns a Manager; Run starts it.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	switch {
	case cfg.Kernel == nil:
		return nil, errors.New("path manager: a Kernel is required")
	case cfg.Events == nil:
		return nil, errors.New("path manager: an event source is required")
	case cfg.Source == nil:
		return nil, errors.New("path manager: a local address source is required")
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("path manager policy: %w", err)
	}
	m := &Manager{
		kern: cfg.Kernel, newKernel: cfg.NewKernel, events: cfg.Events, src: cfg.Source, lister: cfg.Lister,
		log: cfg.Logger, workers: cfg.Workers, now: cfg.Clock, cfg: cfg.Policy,
		cfgCh: make(chan Config, 1), timersChanged: make(chan struct{}, 1),
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.workers <= 0 {
		m.workers = DefaultWorkers
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.tracker = NewTracker(TrackerConfig{MaxConnections: cfg.MaxConnections, Retry: cfg.Policy.Retry, Logger: m.log})
	m.view = NewLocalView(m.src.Snapshot(), m.cfg)
	return m, nil
}

// SetConfig replaces the policy; every connection is decided again.
func (m *Manager) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("path manager policy: %w", err)
	}
	if m.running.Load() && !m.stopped.Load() {
		// The loop applies it; a newer one replaces one not yet taken.
		for {
			select {
			case m.cfgCh <- cfg:
				return nil
			default:
			}
			select {
			case <-m.cfgCh:
			default:
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg
	m.tracker.retry = cfg.Retry.withDefaults()
	m.view = NewLocalView(m.src.Snapshot(), cfg)
	return nil
}

// completion is a worker's answer about an action.
type completion struct {
	a   Action
	err error
}

// Run manages connections until ctx is done; it then returns nil. It
// returns an error when the event stream fails for good. Run may be called
// once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("path manager: Run called twice")
	}
	defer m.stopped.Store(true)
	parent := ctx
	g, ctx := errgroup.WithContext(ctx)
	done := make(chan completion, 1024)
	queues := make([]*jobQueue, m.workers)
	for i := range queues {
		queues[i] = newJobQueue()
		k := m.kern
		if m.newKernel != nil {
			nk, err := m.newKernel()
			if err != nil {
				for _, q := range queues[:i] {
					closeKernel(q.kern)
				}
				_ = m.events.Close()
				return fmt.Errorf("path manager: open kernel connection for worker %d: %w", i, err)
			}
			k = nk
		}
		queues[i].kern = k
	}
	g.Go(func() error {
		<-ctx.Done()
		// Unblocks the reader's Next.
		_ = m.events.Close()
		return nil
	})
	g.Go(func() error { return m.read(ctx, queues) })
	for _, q := range queues {
		g.Go(func() error {
			m.work(ctx, q, done)
			return nil
		})
	}
	g.Go(func() error { return m.loop(ctx, done, queues) })
	err := g.Wait()
	if m.newKernel != nil {
		for _, q := range queues {
			closeKernel(q.kern)
		}
	}
	if parent.Err() != nil {
		return nil
	}
	return err
}

func closeKernel(k Kernel) {
	if c, ok := k.(io.Closer); ok {
		_ = c.Close()
	}
}

// read follows the events: it rebuilds the state first (events wait in
// the socket meanwhile), then applies each event, decides, and carries
// out the actions whose worker is idle itself.
func (m *Manager) read(ctx context.Context, queues []*jobQueue) error {
	var out []Action
	// Not nil: the reader may claim workers.
	inline, next := make([]claimed, 0, 4), make([]claimed, 0, 4)
	var errs []error
	// resync replaces the state with the kernel's and queues what follows.
	resync := func() {
		m.rebuild(&out)
		m.mu.Lock()
		m.dispatch(out, queues, nil)
		m.mu.Unlock()
		out = out[:0]
	}
	if m.lister != nil {
		resync()
	}
	for {
		ev, err := m.events.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			switch {
			case errors.Is(err, genl.ErrEventsLost):
				m.c.eventsLost.Add(1)
				if m.lister == nil {
					m.log.Warn("mptcp events were lost and no socket lister is configured: connections opened meanwhile stay unmanaged")
					continue
				}
				m.log.Warn("mptcp events were lost; rebuilding connection state from the kernel")
				// The kernel reports the next loss only once the queue
				// was empty; the rebuild covers what is discarded.
				if d, ok := m.events.(drainer); ok {
					if err := d.Drain(drainLimit); err != nil {
						m.log.Warn("cannot drain the mptcp event socket before the rebuild", zap.Error(err))
					}
				}
				resync()
				continue
			case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, io.EOF):
				return fmt.Errorf("path manager: mptcp events: %w", err)
			default:
				// An undecodable event: skip it, without spinning on a
				// socket that keeps failing.
				m.c.eventErrors.Add(1)
				m.log.Warn("cannot read an mptcp event; skipping it", zap.Error(err))
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
		}
		m.mu.Lock()
		m.handle(ev, m.now(), &out)
		inline = m.dispatch(out, queues, inline)
		m.mu.Unlock()
		out = out[:0]
		// The reader records its own calls' answers too: handing them to
		// the loop would wake another thread while the kernel is still
		// busy with the join just asked for.
		for len(inline) > 0 {
			errs = errs[:0]
			for _, c := range inline {
				errs = append(errs, execute(c.q.kern, c.a))
				c.q.release()
			}
			m.mu.Lock()
			now := m.now()
			for i, c := range inline {
				m.finish(completion{c.a, errs[i]}, now, &out)
			}
			next = m.dispatch(out, queues, next[:0])
			m.mu.Unlock()
			out = out[:0]
			inline, next = next, inline[:0]
		}
	}
}

// maxBatch bounds the completions handled under one lock acquisition.
const maxBatch = 256

// claimed is an action the reader makes itself on q's kernel connection.
type claimed struct {
	a Action
	q *jobQueue
}

// dispatch counts the actions and hands each to its connection's worker,
// or, when inline is not nil and the worker is idle, claims the worker and
// returns the action for the caller to carry out (m.mu held, so that the
// calls of a connection keep the order of the decisions).
func (m *Manager) dispatch(out []Action, queues []*jobQueue, inline []claimed) []claimed {
	for _, a := range out {
		m.c.actions[actionKind(a)].Add(1)
		q := queues[int(a.Conn()%uint32(len(queues)))]
		if inline != nil && q.claim() {
			inline = append(inline, claimed{a, q})
			continue
		}
		q.push(a)
	}
	return inline
}

// loop handles what events do not: completions, retry timers, local
// address and policy changes.
func (m *Manager) loop(ctx context.Context, done <-chan completion, queues []*jobQueue) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var out []Action
	// dispatch hands out the actions (m.mu held).
	dispatch := func() {
		m.dispatch(out, queues, nil)
		out = out[:0]
	}
	for {
		m.mu.Lock()
		wake := m.timers.next()
		m.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(m.now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.timersChanged:
		case c := <-done:
			m.mu.Lock()
			now := m.now()
			m.finish(c, now, &out)
		more:
			for range maxBatch {
				select {
				case c := <-done:
					m.finish(c, now, &out)
				default:
					break more
				}
			}
			dispatch()
			m.mu.Unlock()
		case <-m.src.Changed():
			m.mu.Lock()
			view := NewLocalView(m.src.Snapshot(), m.cfg)
			if !view.Equal(m.view) {
				m.view = view
				m.log.Info("local interfaces changed; deciding every connection again", zap.Int("interfaces", len(view.Ifaces)))
				m.decideAll(m.now(), &out)
			}
			dispatch()
			m.mu.Unlock()
		case cfg := <-m.cfgCh:
			m.mu.Lock()
			m.cfg = cfg
			m.tracker.retry = cfg.Retry.withDefaults()
			m.view = NewLocalView(m.src.Snapshot(), cfg)
			m.decideAll(m.now(), &out)
			dispatch()
			m.mu.Unlock()
		case <-timer.C:
			m.mu.Lock()
			now := m.now()
			for {
				tm, ok := m.timers.popDue(now)
				if !ok {
					break
				}
				st := m.tracker.conn(tm.token)
				if st == nil || !st.timerAt.Equal(tm.at) {
					continue // closed, or rescheduled
				}
				st.timerAt = time.Time{}
				m.decide(st, now, &out)
			}
			dispatch()
			m.mu.Unlock()
		}
	}
}

// handle applies one event and decides for its connection (m.mu held).
func (m *Manager) handle(ev genl.Event, now time.Time, out *[]Action) {
	m.c.events.Add(1)
	m.c.byType[ev.Type()].Add(1)
	token, decide := m.tracker.Apply(ev, now)
	if ce := m.log.Check(zap.DebugLevel, "mptcp event"); ce != nil {
		f := ev.Fields()
		ce.Write(zap.Stringer("event", f.Type), zap.String("token", tokenString(f.Token)),
			zap.Stringer("addr", f.Local), zap.Stringer("remote", f.Remote), zap.Uint8("remote_id", f.RemoteID))
	}
	if !decide {
		return
	}
	if st := m.tracker.conn(token); st != nil {
		m.decide(st, now, out)
	}
}

// decide runs Decide for one connection, records the actions and
// schedules its next retry (m.mu held).
func (m *Manager) decide(st *ConnState, now time.Time, out *[]Action) {
	m.c.decisions.Add(1)
	acts := Decide(*st, m.view, m.cfg, now)
	if len(acts) > 0 {
		m.tracker.Begin(acts, now)
		*out = append(*out, acts...)
	}
	if next := st.nextRetry(now); !next.IsZero() && (st.timerAt.IsZero() || !st.timerAt.After(now) || next.Before(st.timerAt)) {
		st.timerAt = next
		heap.Push(&m.timers, timerEntry{at: next, token: st.Token})
		if m.timers[0].at.Equal(next) {
			// The loop sleeps until the earliest timer it knew of.
			select {
			case m.timersChanged <- struct{}{}:
			default:
			}
		}
	}
}

// decideAll decides for every connection (m.mu held): after a change of
// the local addresses, the policy, or a rebuild.
func (m *Manager) decideAll(now time.Time, out *[]Action) {
	for _, st := range m.tracker.conns {
		m.decide(st, now, out)
	}
}

// finish records a worker's answer (m.mu held).
func (m *Manager) finish(c completion, now time.Time, out *[]Action) {
	kind := actionKind(c.a)
	if c.err != nil {
		m.c.failures[kind].Add(1)
		lvl := zap.WarnLevel
		if isInvalidToken(c.err) || errors.Is(c.err, genl.ErrNotFound) {
			lvl = zap.DebugLevel // the connection closed meanwhile
		}
		if ce := m.log.Check(lvl, "path manager action failed"); ce != nil {
			ce.Write(append(m.actionFields(c.a), zap.Error(c.err))...)
		}
	} else if ce := m.log.Check(zap.DebugLevel, "path manager action done"); ce != nil {
		ce.Write(m.actionFields(c.a)...)
	}
	if m.tracker.Finish(c.a, c.err, now) {
		if st := m.tracker.conn(c.a.Conn()); st != nil {
			m.decide(st, now, out)
		}
	}
}

// actionFields are the log fields of an action: token, addr (the local
// address) and iface (its interface, when known), and the action (m.mu
// held).
func (m *Manager) actionFields(a Action) []zap.Field {
	var addr netip.Addr
	switch a := a.(type) {
	case CreateSubflow:
		addr = a.Local.Addr
	case DestroySubflow:
		addr = a.Local.Addr()
	case Announce:
		addr = a.Addr
	case SetBackup:
		addr = a.Local.Addr()
	}
	fields := []zap.Field{zap.String("token", tokenString(a.Conn()))}
	if addr.IsValid() {
		fields = append(fields, zap.Stringer("addr", addr))
		if ifc, ok := m.view.IfaceOf(addr); ok {
			fields = append(fields, zap.String("iface", ifc.Name))
		}
	}
	return append(fields, zap.Stringer("action", a))
}

// rebuild replaces the tracked state with the kernel's, then decides for
// every connection. It runs on the event reader; events wait in the
// socket meanwhile.
func (m *Manager) rebuild(out *[]Action) {
	m.c.rebuilds.Add(1)
	start := m.now()
	conns, err := m.lister.Connections()
	var sfs []diag.Subflow
	if err == nil {
		sfs, err = m.lister.Subflows()
	}
	if err != nil {
		m.c.rebuildFailures.Add(1)
		m.log.Warn("cannot list MPTCP sockets to rebuild the connection state", zap.Error(err))
		m.mu.Lock()
		m.rebuildErr = err
		m.mu.Unlock()
		return
	}
	eps := make(map[uint32][]genl.Endpoint)
	for _, c := range conns {
		if c.State == diag.StateListen || c.Info == nil || c.Info.Token == 0 || c.Info.Flags&diag.InfoFallback != 0 {
			continue
		}
		// One round trip per connection; errors (mostly: closed
		// meanwhile) leave the bindings to what the subflows show.
		if e, err := m.kern.ConnEndpoints(c.Info.Token); err == nil {
			eps[c.Info.Token] = e
		}
	}
	states := Rebuild(conns, sfs, eps)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.tracker.Replace(states, now)
	m.lastRebuild, m.rebuildErr = now, nil
	m.decideAll(now, out)
	m.log.Info("rebuilt MPTCP connection state from the kernel",
		zap.Int("connections", m.tracker.Len()), zap.Duration("took", now.Sub(start)))
}

// work carries out actions for one queue.
func (m *Manager) work(ctx context.Context, q *jobQueue, done chan<- completion) {
	for {
		batch := q.wait(ctx)
		if batch == nil {
			return
		}
		for i, a := range batch {
			err := execute(q.kern, a)
			select {
			case done <- completion{a, err}:
			case <-ctx.Done():
				return
			}
			if i == len(batch)-1 {
				q.release()
			}
		}
	}
}

// execute makes the kernel call for a.
func execute(k Kernel, a Action) error {
	switch a := a.(type) {
	case CreateSubflow:
		var flags genl.Flags
		if a.Local.Backup {
			flags = genl.FlagBackup
		}
		return k.CreateSubflow(a.Token, genl.Endpoint{ID: a.Local.ID, Addr: a.Local.Addr, Ifindex: a.Local.Ifindex, Flags: flags}, a.Remote)
	case DestroySubflow:
		return k.DestroySubflow(a.Token, a.Local, a.Remote)
	case Announce:
		return k.Announce(a.Token, genl.Endpoint{ID: a.ID, Addr: a.Addr, Port: a.Port})
	case Remove:
		return k.Remove(a.Token, a.ID)
	case SetBackup:
		var flags genl.Flags
		if a.Backup {
			flags = genl.FlagBackup
		}
		return k.SetSubflowFlags(a.Token, genl.Endpoint{Addr: a.Local.Addr(), Port: a.Local.Port()}, a.Remote, flags)
	}
	return fmt.Errorf("unknown action %T", a)
}

// jobQueue is an unbounded FIFO of actions for one worker: the loop never
// blocks on a slow kernel. Its kernel connection is used by one goroutine
// at a time, the worker or the event reader, whichever claimed it.
type jobQueue struct {
	kern   Kernel
	mu     sync.Mutex
	jobs   []Action
	busy   bool // claimed: a call on kern is under way
	signal chan struct{}
}

func newJobQueue() *jobQueue { return &jobQueue{signal: make(chan struct{}, 1)} }

func (q *jobQueue) push(a Action) {
	q.mu.Lock()
	q.jobs = append(q.jobs, a)
	q.mu.Unlock()
	q.wake()
}

func (q *jobQueue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// claim takes the queue for a call outside the worker when nothing is
// queued or under way, so that the call cannot overtake earlier ones.
func (q *jobQueue) claim() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.busy || len(q.jobs) > 0 {
		return false
	}
	q.busy = true
	return true
}

// release ends a claim (or the worker's batch) and lets the worker take
// what was queued meanwhile.
func (q *jobQueue) release() {
	q.mu.Lock()
	q.busy = false
	pending := len(q.jobs) > 0
	q.mu.Unlock()
	if pending {
		q.wake()
	}
}

// wait claims the queue and returns its actions, waiting for some; nil
// when ctx is done. The caller releases the queue after the calls.
func (q *jobQueue) wait(ctx context.Context) []Action {
	for {
		q.mu.Lock()
		if !q.busy && len(q.jobs) > 0 {
			jobs := q.jobs
			q.jobs = nil
			q.busy = true
			q.mu.Unlock()
			return jobs
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil
		}
	}
}

// timerEntry asks for a decision for token at at.
type timerEntry struct {
	at    time.Time
	token uint32
}

// timerHeap is a min-heap of retry wake-ups; stale entries (the connection
// closed or was rescheduled) are skipped when popped.
type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (h *timerHeap) next() time.Time {
	if len(*h) == 0 {
		return time.Time{}
	}
	return (*h)[0].at
}

func (h *timerHeap) popDue(now time.Time) (timerEntry, bool) {
	if len(*h) == 0 || (*h)[0].at.After(now) {
		return timerEntry{}, false
	}
	return heap.Pop(h).(timerEntry), true
}

// tokenString is the form tokens take in logs and status: 8 hex digits,
// as ip mptcp prints them.
func tokenString(t uint32) string { return fmt.Sprintf("%08x", t) }
