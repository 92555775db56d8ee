package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// eventReadBuffer is the receive buffer of the benchmark's own event
// socket: far more than a run's bursts, so that its numbers do not depend
// on how fast it is scheduled (losses are still counted and reported).
const eventReadBuffer = 32 << 20

// connTrace is what the client namespace's events say about one
// connection. Both times come from the same subscription and clock,
// taken as the events are read.
type connTrace struct {
	est      time.Time // ESTABLISHED
	firstSub time.Time // first SUB_ESTABLISHED (the initial subflow has none)
	subs     int       // SUB_ESTABLISHED events
	subErrs  int       // SUB_CLOSED carrying a socket error
	closed   bool      // CLOSED
	// estRead and subRead number the reads that brought the two events.
	estRead, subRead uint64
}

// recorder follows the mptcp_pm events of the client namespace on one
// subscription and keeps a trace per connection of the current run.
type recorder struct {
	sub     *genl.Subscription
	closing atomic.Bool

	mu sync.Mutex
	// port is the current run's server port: ESTABLISHED events of other
	// connections (the previous run's stragglers) are ignored.
	port    uint16
	conns   map[uint32]*connTrace
	orphans int // SUB_ESTABLISHED of unknown connections
	lost    int // ErrEventsLost
	errs    int // other receive errors (undecodable events)
	done    chan struct{}
	err     error
}

// newRecorder subscribes in the client's namespace and starts reading.
func newRecorder(c *genl.Client) (*recorder, error) {
	sub, err := c.Subscribe(&genl.SubscribeOptions{ReadBuffer: eventReadBuffer})
	if err != nil {
		return nil, fmt.Errorf("subscribe to the client's mptcp events: %w", err)
	}
	r := &recorder{sub: sub, conns: map[uint32]*connTrace{}, done: make(chan struct{})}
	go r.read()
	return r, nil
}

// read stamps and files events until the subscription closes. It does
// as little as possible per event so it keeps up with the kernel. Events
// of one read share its time stamp: the recorder cannot tell apart what
// the kernel queued before it woke up, and it counts such joins.
func (r *recorder) read() {
	defer close(r.done)
	for seq := uint64(1); ; seq++ {
		evs, err := r.sub.Receive()
		now := time.Now()
		if err != nil {
			switch {
			case r.closing.Load():
				return
			case errors.Is(err, genl.ErrEventsLost):
				r.mu.Lock()
				r.lost++
				r.mu.Unlock()
				continue
			case errors.Is(err, net.ErrClosed):
				return
			}
			r.mu.Lock()
			r.errs++
			n := r.errs
			r.mu.Unlock()
			if n > 1000 {
				r.err = fmt.Errorf("mptcp events: too many errors, last: %w", err)
				return
			}
			continue
		}
		r.mu.Lock()
		for _, ev := range evs {
			r.file(ev, now, seq)
		}
		r.mu.Unlock()
	}
}

// file records one event read at now by read number seq (r.mu held).
func (r *recorder) file(ev genl.Event, now time.Time, seq uint64) {
	switch e := ev.(type) {
	case *genl.Established:
		if r.port != 0 && e.Remote.Port() == r.port && !e.ServerSide {
			t := r.trace(e.Token)
			t.est, t.estRead = now, seq
		}
	case *genl.SubflowEstablished:
		if t, ok := r.conns[e.Token]; ok {
			if t.subs == 0 {
				t.firstSub, t.subRead = now, seq
			}
			t.subs++
		} else if r.port != 0 {
			r.orphans++
		}
	case *genl.SubflowClosed:
		if t, ok := r.conns[e.Token]; ok && e.Error != 0 {
			t.subErrs++
		}
	case *genl.Closed:
		if t, ok := r.conns[e.Token]; ok {
			t.closed = true
		}
	}
}

// trace returns the token's trace, creating it (r.mu held).
func (r *recorder) trace(token uint32) *connTrace {
	t, ok := r.conns[token]
	if !ok {
		t = &connTrace{}
		r.conns[token] = t
	}
	return t
}

// start begins a run whose connections go to the server port.
func (r *recorder) start(port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.port, r.conns, r.orphans, r.lost, r.errs = port, map[uint32]*connTrace{}, 0, 0, 0
}

// open counts the run's connections not closed yet.
func (r *recorder) open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.conns {
		if !t.closed {
			n++
		}
	}
	return n
}

// joinStats is the event side of a run's result.
type joinStats struct {
	// Established counts the run's ESTABLISHED events.
	Established int `json:"established_events"`
	// Joined got their first extra subflow within the window; Late got
	// it after; the rest never did.
	Joined int `json:"joined"`
	Late   int `json:"late"`
	// SubflowsPerConn is the mean number of extra subflows established.
	SubflowsPerConn float64 `json:"extra_subflows_per_conn"`
	// SubflowErrors counts SUB_CLOSED events with a socket error (failed
	// or reset joins).
	SubflowErrors int `json:"subflow_errors"`
	// SameRead counts joins whose ESTABLISHED and SUB_ESTABLISHED came
	// in one read: their latency was below the recorder's resolution
	// and counts as 0.
	SameRead int `json:"same_read"`
	// Orphans are SUB_ESTABLISHED events of connections whose ESTABLISHED
	// was not seen (lost, or from another run).
	Orphans     int `json:"orphan_subflow_events"`
	EventsLost  int `json:"events_lost"`
	EventErrors int `json:"event_errors"`
	// Latency is ESTABLISHED → first extra SUB_ESTABLISHED of the
	// connections that got one.
	Latency latencySummary `json:"latency"`
}

// joinTimes are when the recorder read a connection's ESTABLISHED and its
// first SUB_ESTABLISHED.
type joinTimes struct{ est, sub time.Time }

// finish ends the run and computes its figures; it also returns the
// times of every joined connection by token.
func (r *recorder) finish(window time.Duration) (joinStats, map[uint32]joinTimes) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := joinStats{Orphans: r.orphans, EventsLost: r.lost, EventErrors: r.errs}
	times := make(map[uint32]joinTimes, len(r.conns))
	lat := make([]time.Duration, 0, len(r.conns))
	subs := 0
	for tok, t := range r.conns {
		if t.est.IsZero() {
			continue
		}
		s.Established++
		s.SubflowErrors += t.subErrs
		subs += t.subs
		if t.subs == 0 {
			continue
		}
		d := t.firstSub.Sub(t.est)
		lat = append(lat, d)
		times[tok] = joinTimes{t.est, t.firstSub}
		if t.estRead == t.subRead {
			s.SameRead++
		}
		if d <= window {
			s.Joined++
		} else {
			s.Late++
		}
	}
	if s.Established > 0 {
		s.SubflowsPerConn = float64(subs) / float64(s.Established)
	}
	s.Latency = summarize(lat)
	r.port = 0
	return s, times
}

// close stops reading.
func (r *recorder) close() error {
	r.closing.Store(true)
	err := r.sub.Close()
	<-r.done
	return errors.Join(err, r.err)
}
