package main

import (
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
)

// tracer times the manager process's path through pathmgr from the
// outside, by wrapping the Events and Kernel it is given: when the
// Manager's reader took a connection's ESTABLISHED, when a worker began
// and ended the connection's first kernel call (CreateSubflow on the
// client, Announce on the server), and how long every such call took.
// pathmgr is not modified; the cost is a clock read and a map operation
// per event. Times are kept as wall-clock nanoseconds so the benchmark
// can line them up with its own recorder's (same host clock).
type tracer struct {
	mu    sync.Mutex
	est   map[uint32]int64 // ESTABLISHED read, until the first action begins
	first map[uint32]*firstCall
	call  []time.Duration // every CreateSubflow/Announce round trip
	errs  int
}

// firstCall is the timeline of a connection's first kernel call.
type firstCall struct {
	Est, Begin, End int64 // wall-clock ns
}

func newTracer() *tracer {
	return &tracer{est: map[uint32]int64{}, first: map[uint32]*firstCall{}}
}

// established notes that the Manager read tok's ESTABLISHED.
func (t *tracer) established(tok uint32, at time.Time) {
	t.mu.Lock()
	t.est[tok] = at.UnixNano()
	t.mu.Unlock()
}

// closed forgets a connection that got no action.
func (t *tracer) closed(tok uint32) {
	t.mu.Lock()
	delete(t.est, tok)
	t.mu.Unlock()
}

// begin notes a kernel call for tok starting at at; it returns the
// record to complete when it is the connection's first.
func (t *tracer) begin(tok uint32, at time.Time) *firstCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.est[tok]
	if !ok {
		return nil
	}
	delete(t.est, tok)
	f := &firstCall{Est: e, Begin: at.UnixNano()}
	t.first[tok] = f
	return f
}

// end notes a kernel call that began at start and ended at now.
func (t *tracer) end(f *firstCall, start, now time.Time, err error) {
	t.mu.Lock()
	t.call = append(t.call, now.Sub(start))
	if f != nil {
		f.End = now.UnixNano()
	}
	if err != nil {
		t.errs++
	}
	t.mu.Unlock()
}

// traceSummary is what a manager process reports about its path.
type traceSummary struct {
	// Queue: ESTABLISHED read by the Manager → its first kernel call for
	// the connection begun (decision, loop and worker queue).
	Queue latencySummary `json:"est_to_call"`
	// Call: every CreateSubflow/Announce round trip.
	Call     latencySummary `json:"call"`
	CallErrs int            `json:"call_errors"`
	// First are the timelines of each connection's first call, by token,
	// for the benchmark to line up with its recorder; not in the report.
	First map[uint32]*firstCall `json:"first,omitempty"`
}

func (t *tracer) summary() traceSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	queue := make([]time.Duration, 0, len(t.first))
	for _, f := range t.first {
		queue = append(queue, time.Duration(f.Begin-f.Est))
	}
	return traceSummary{Queue: summarize(queue), Call: summarize(t.call), CallErrs: t.errs, First: t.first}
}

// tracedEvents stamps the events the Manager reads.
type tracedEvents struct {
	pathmgr.Events
	t *tracer
}

func (e tracedEvents) Next() (genl.Event, error) {
	ev, err := e.Events.Next()
	switch ev := ev.(type) {
	case *genl.Established:
		e.t.established(ev.Token, time.Now())
	case *genl.Closed:
		e.t.closed(ev.Token)
	}
	return ev, err
}

// tracedKernel times the calls that open subflows and announce
// addresses.
type tracedKernel struct {
	pathmgr.Kernel
	t *tracer
}

func (k tracedKernel) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	start := time.Now()
	f := k.t.begin(token, start)
	err := k.Kernel.CreateSubflow(token, local, remote)
	k.t.end(f, start, time.Now(), err)
	return err
}

func (k tracedKernel) Announce(token uint32, local genl.Endpoint) error {
	start := time.Now()
	f := k.t.begin(token, start)
	err := k.Kernel.Announce(token, local)
	k.t.end(f, start, time.Now(), err)
	return err
}

// Close closes the wrapped Kernel when it is an io.Closer, as the
// Manager does with the per-worker ones.
func (k tracedKernel) Close() error {
	if c, ok := k.Kernel.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
