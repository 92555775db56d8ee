package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
)

// ioTimeout bounds every dial and echo, so a stuck connection counts as
// failed instead of stalling the run.
const ioTimeout = 5 * time.Second

// ping is what a client sends and the server echoes.
var ping = []byte("mptcpd-go bench\n")

// echoServer accepts MPTCP connections in the server namespace, echoes
// the ping and closes its end when the client closes.
type echoServer struct {
	ln   net.Listener
	open atomic.Int64 // connections not closed yet
	wg   sync.WaitGroup
}

// listen starts an echo server on addr (port 0: a free one) inside ns.
func listen(ns *nstopo.NS, addr netip.AddrPort) (*echoServer, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	s := &echoServer{}
	err := ns.Do(func() error {
		var err error
		// tcp4: peers are reported as IPv4, not IPv4-mapped.
		s.ln, err = lc.Listen(context.Background(), "tcp4", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in netns %s: %w", addr, ns.Name, err)
	}
	if err := requireMPTCP(s.ln.(*net.TCPListener)); err != nil {
		_ = s.ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.wg.Go(s.accept)
	return s, nil
}

// port is the port the server listens on.
func (s *echoServer) port() uint16 { return s.ln.Addr().(*net.TCPAddr).AddrPort().Port() }

func (s *echoServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off instead of spinning.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		s.open.Add(1)
		// One goroutine per connection is cheap here: it sleeps in the
		// netpoller for the whole hold time.
		go s.serve(c)
	}
}

func (s *echoServer) serve(c net.Conn) {
	defer s.open.Add(-1)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout + time.Minute))
	buf := make([]byte, len(ping))
	if _, err := io.ReadFull(c, buf); err != nil {
		return
	}
	if _, err := c.Write(buf); err != nil {
		return
	}
	// Hold until the client closes.
	_, _ = io.Copy(io.Discard, c)
}

// close stops accepting; connections still open finish on their own.
func (s *echoServer) close() error { return s.ln.Close() }

// loadSpec is one run's load.
type loadSpec struct {
	ns      *nstopo.NS     // the client namespace
	raddr   netip.AddrPort // the server's path-1 address and port
	rate    int            // new connections per second
	dur     time.Duration  // how long new connections are started
	hold    time.Duration  // how long each connection stays open
	dialers int            // dialing goroutines
}

// loadResult counts what the load generator saw.
type loadResult struct {
	Attempted int `json:"attempted"`
	Succeeded int `json:"succeeded"`
	// NotMPTCP connected but fell back to TCP (counted in Succeeded).
	NotMPTCP int `json:"not_mptcp"`
	// Failures by error, e.g. "dial: connection refused".
	Failures map[string]int `json:"failures,omitempty"`
	// StartRate is the achieved rate of connection starts.
	StartRate float64 `json:"start_rate"`
	// LagP99 is the 99th percentile delay of a dial behind its schedule;
	// Late counts dials more than lateAfter behind (open-loop load
	// that the generator could not keep up with).
	LagP99 float64 `json:"start_lag_p99_us"`
	Late   int     `json:"late_starts"`
}

// lateAfter is when a dial counts as late.
const lateAfter = 20 * time.Millisecond

// runLoad starts spec.rate connections per second for spec.dur, open
// loop: a pacer hands out start times at the rate, a fixed pool of
// dialers connects, exchanges the ping and passes the connection to a
// single closer that closes it after spec.hold. It returns once every
// connection is closed.
func runLoad(ctx context.Context, spec loadSpec) loadResult {
	total := int(float64(spec.rate) * spec.dur.Seconds())
	slots := make(chan time.Time, 4096)
	closer := newCloser()
	closing := make(chan struct{})
	go func() {
		defer close(closing)
		closer.run(ctx)
	}()
	var (
		mu   sync.Mutex
		res  = loadResult{Attempted: total, Failures: map[string]int{}}
		lags = make([]time.Duration, 0, total)
	)
	fail := func(what string, err error) {
		mu.Lock()
		res.Failures[what+": "+errText(err)]++
		mu.Unlock()
	}
	var dialers sync.WaitGroup
	for range spec.dialers {
		dialers.Go(func() {
			// Sockets are created by the thread that dials: keep this
			// one in the client namespace for good (it is discarded when
			// the goroutine ends).
			if err := spec.ns.Enter(); err != nil {
				for range slots {
					fail("enter netns", err)
				}
				return
			}
			d := net.Dialer{Timeout: ioTimeout, Control: reuseAddr}
			d.SetMultipathTCP(true)
			buf := make([]byte, len(ping))
			for at := range slots {
				lag := time.Since(at)
				c, err := d.Dial("tcp4", spec.raddr.String())
				mu.Lock()
				lags = append(lags, lag)
				mu.Unlock()
				if err != nil {
					fail("dial", err)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(ioTimeout))
				if _, err := c.Write(ping); err != nil {
					fail("write", err)
					_ = c.Close()
					continue
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					fail("read echo", err)
					_ = c.Close()
					continue
				}
				mptcp, _ := c.(*net.TCPConn).MultipathTCP()
				mu.Lock()
				res.Succeeded++
				if !mptcp {
					res.NotMPTCP++
				}
				mu.Unlock()
				closer.add(c, time.Now().Add(spec.hold))
			}
		})
	}

	// The pacer: a ticker wakes it every millisecond and it hands out
	// every start time that is due, so the rate holds on average without
	// a timer per connection.
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	sent := 0
pace:
	for sent < total {
		select {
		case <-ctx.Done():
			break pace
		case now := <-tick.C:
			for sent < total {
				at := start.Add(time.Duration(int64(sent) * int64(time.Second) / int64(spec.rate)))
				if at.After(now) {
					break
				}
				// Blocks when every dialer is busy: that shows as lag.
				select {
				case slots <- at:
					sent++
				case <-ctx.Done():
					break pace
				}
			}
		}
	}
	tick.Stop()
	close(slots)
	dialers.Wait()
	elapsed := time.Since(start)
	closer.finish()
	<-closing

	res.Attempted = sent
	if elapsed > 0 {
		res.StartRate = float64(len(lags)) / elapsed.Seconds()
	}
	slices.Sort(lags)
	res.LagP99 = float64(percentile(lags, 99).Nanoseconds()) / 1e3
	for _, l := range lags {
		if l > lateAfter {
			res.Late++
		}
	}
	if len(res.Failures) == 0 {
		res.Failures = nil
	}
	return res
}

// reuseAddr sets SO_REUSEADDR. MPTCP applies it to the initial subflow
// only (Linux's sync_socket_options does not copy sk_reuse to the
// subflows it opens later, which it binds to port 0 itself), so it cannot
// keep the extra subflows' port search clear of TIME_WAIT; the wide port
// range and fresh namespaces per run do.
func reuseAddr(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// errText shortens an error to its cause, so failures group well.
func errText(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}

// requireMPTCP checks SO_PROTOCOL: Go silently creates a TCP socket when
// MPTCP is unavailable, which would measure the wrong thing.
func requireMPTCP(v syscall.Conn) error {
	rc, err := v.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	var proto int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		proto, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("read SO_PROTOCOL: %w", serr)
	}
	if proto != unix.IPPROTO_MPTCP {
		return fmt.Errorf("got a socket of protocol %d, not MPTCP: is net.mptcp.enabled=1?", proto)
	}
	return nil
}

// closer closes connections at their deadlines from one goroutine, so
// that held connections cost no goroutine each.
type closer struct {
	mu     sync.Mutex
	h      deadlineHeap
	noMore bool // finish was called
	wake   chan struct{}
}

func newCloser() *closer { return &closer{wake: make(chan struct{}, 1)} }

// add schedules conn's close at at.
func (c *closer) add(conn net.Conn, at time.Time) {
	c.mu.Lock()
	heap.Push(&c.h, held{conn, at})
	c.mu.Unlock()
	c.poke()
}

// finish says nothing more will be added: run returns once the rest is
// closed.
func (c *closer) finish() {
	c.mu.Lock()
	c.noMore = true
	c.mu.Unlock()
	c.poke()
}

func (c *closer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run closes connections as they fall due, until finish was called and
// none is left; when ctx ends it closes the rest at once.
func (c *closer) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		for len(c.h) > 0 && !c.h[0].at.After(now) {
			_ = heap.Pop(&c.h).(held).c.Close()
		}
		next := time.Hour
		if len(c.h) > 0 {
			next = c.h[0].at.Sub(now)
		}
		done := c.noMore && len(c.h) == 0
		c.mu.Unlock()
		if done {
			return
		}
		timer.Reset(next)
		select {
		case <-ctx.Done():
			c.mu.Lock()
			for _, h := range c.h {
				_ = h.c.Close()
			}
			c.h = nil
			c.mu.Unlock()
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// held is a connection and when to close it.
type held struct {
	c  net.Conn
	at time.Time
}

// deadlineHeap is a min-heap by deadline: dials finish slightly out of
// order, so a plain FIFO would close some late.
type deadlineHeap []held

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(held)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
