package datapath

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Connection errors; returned errors wrap one of these.
var (
	// ErrFastClosed reports that the peer aborted the connection with a
	// valid FASTCLOSE.
	ErrFastClosed = errors.New("datapath: connection reset by peer (FASTCLOSE)")
	// ErrAborted reports that this side aborted the connection (Abort).
	ErrAborted = errors.New("datapath: connection aborted")
	// ErrNoSubflows reports that the last subflow of a connection failed.
	ErrNoSubflows = errors.New("datapath: no subflow left")
	// ErrProtocol reports a frame that is valid on the wire but not allowed
	// at this point (e.g. CAPABLE on an established subflow).
	ErrProtocol = errors.New("datapath: protocol violation")
	// ErrSubflowDead reports a subflow that missed its heartbeats.
	ErrSubflowDead = errors.New("datapath: subflow missed heartbeats")
)

// Defaults for Config fields left zero.
const (
	DefaultWindow           = 4 << 20
	DefaultHeartbeat        = time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultLinger           = 5 * time.Second
	// DefaultMaxPayload fills a frame close to MaxFrameSize: fewer frames
	// mean fewer syscalls, lock round trips and wake-ups per byte.
	DefaultMaxPayload = 63 << 10
	DefaultStaleAfter = 200 * time.Millisecond
)

// subflowQueueLimit bounds the DATA bytes waiting for one subflow's writer
// (besides the batch being written) so that most unsent data stays
// schedulable on any subflow.
const subflowQueueLimit = 4 * DefaultMaxPayload

// Config holds the settings shared by clients and servers. Zero fields take
// the documented defaults.
type Config struct {
	// PSK, if set, authenticates the CAPABLE handshake (see
	// docs/datapath.md); a server with a PSK refuses clients without it.
	PSK []byte
	// Window bounds the unacknowledged bytes in flight and the receive
	// buffer (default DefaultWindow). Both ends must use the same value:
	// there is no window field on the wire.
	Window int
	// Heartbeat is the PING interval per idle subflow (default 1 s).
	Heartbeat time.Duration
	// DeadAfter declares a subflow dead after this long without any frame
	// from the peer (default 3 heartbeats).
	DeadAfter time.Duration
	// StaleAfter is how long a PING may stay unanswered (at least 4 RTTs)
	// before its subflow counts as stale: its unacknowledged DATA is
	// reinjected on the other subflows and it gets no new data until it
	// answers again; it is not closed before DeadAfter. While data flows,
	// PINGs go out every StaleAfter/2. Default DefaultStaleAfter;
	// negative disables stale detection.
	StaleAfter time.Duration
	// HandshakeTimeout bounds CAPABLE and JOIN exchanges (default 10 s).
	HandshakeTimeout time.Duration
	// Linger is how long Close waits for the peer to acknowledge the data
	// and DATA_FIN before tearing the subflows down (default 5 s).
	Linger time.Duration
	// MaxPayload is the DATA payload per frame (default
	// DefaultMaxPayload, at most MaxDataPayload).
	MaxPayload int
	// Scheduler makes the per-connection scheduler (default
	// NewLowestDrainTime).
	Scheduler func() Scheduler
	// Logger receives subflow events and refusals; nil discards them.
	Logger *zap.Logger
	// JoinAnnounced makes a client join the addresses the server
	// announces with ADD_ADDR (MAC verified), one subflow per local path.
	JoinAnnounced bool
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.Window <= 0 {
		d.Window = DefaultWindow
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = DefaultHeartbeat
	}
	if d.DeadAfter <= 0 {
		d.DeadAfter = 3 * d.Heartbeat
	}
	if d.StaleAfter == 0 {
		d.StaleAfter = DefaultStaleAfter
	}
	if d.HandshakeTimeout <= 0 {
		d.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if d.Linger <= 0 {
		d.Linger = DefaultLinger
	}
	if d.MaxPayload <= 0 || d.MaxPayload > MaxDataPayload {
		d.MaxPayload = DefaultMaxPayload
	}
	if d.Scheduler == nil {
		d.Scheduler = NewLowestDrainTime
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	return d
}

// signal wakes the goroutines waiting on it under Conn.mu. The channel is
// made only when someone waits, so firing an unwatched signal is free.
type signal struct{ ch chan struct{} }

func (s *signal) wait() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

type subflow struct {
	id     int
	addrID uint8
	nc     net.Conn
	tcp    *net.TCPConn // nil unless nc is TCP
	dec    *Decoder
	backup bool
	dead   bool
	quit   chan struct{} // closed when dead
	kick   signal        // wakes the writer
	route  *route        // how the client re-opens it; nil: it does not

	// Frames for the writer, which swaps each for its spare buffer and
	// writes it without the lock: no other goroutine touches bytes being
	// written.
	ctrl    []byte // control frames, sent before data
	data    []byte // DATA frames
	pending int    // DATA payload bytes in data
	writing int    // DATA payload bytes being written
	started time.Time

	ki   kernelInfo // last TCP_INFO; refreshed after writes and by the monitor
	kiOK bool

	remoteAddrID int // announced address id this subflow joined, -1: none
	lastRecv     time.Time
	lastPing     time.Time
	probeSent    time.Time // an unanswered PING went out then; zero: none
	stale        bool
	staleSince   time.Time
	rtt          time.Duration
	sent, recv   uint64 // DATA payload bytes
}

// SubflowStats describes one subflow of a connection, alive or not.
type SubflowStats struct {
	ID            int
	Backup        bool
	Dead          bool
	LocalAddr     net.Addr
	RemoteAddr    net.Addr
	BytesSent     uint64 // DATA payload bytes written, reinjections included
	BytesReceived uint64 // DATA payload bytes read, duplicates included
	RTT           time.Duration
	// Stale reports a live subflow that stopped answering PINGs in time
	// (see Config.StaleAfter): it carries no new data for now.
	Stale bool
}

// Stats is a snapshot of a connection's subflows.
type Stats struct {
	Scheduler string
	Subflows  []SubflowStats
}

// Conn is one reliable byte stream carried over one or more subflows. It
// implements net.Conn; all methods are safe for concurrent use.
type Conn struct {
	cfg      Config
	log      *zap.Logger
	local    Key
	remote   Key
	isClient bool
	sched    Scheduler
	epoch    time.Time // PING timestamps are nanoseconds since epoch
	onClose  func()
	dial     *dialInfo // set by Dial: how to open more subflows

	wg          sync.WaitGroup // subflow readers/writers, monitor, joins
	done        chan struct{}  // closed at teardown
	ctx         context.Context
	cancel      context.CancelFunc // cancels ctx at teardown
	monitorWake chan struct{}      // wakes the monitor when data starts to flow

	mu         sync.Mutex
	readable   signal     // data, EOF, error or read deadline
	writable   signal     // send-buffer room, acks, error or write deadline
	subflows   []*subflow // alive
	all        []*subflow // for Stats
	cands      []*subflow // scratch for usable
	infos      []SubflowInfo
	nextID     int
	nextAddrID uint8
	snd        *SendBuffer
	rcv        *Reassembler
	lastAck    uint64
	ackPending bool
	ackRepeat  time.Time
	ctrlAny    [][]byte // control frames for any active subflow
	routes     map[routeKey]*route
	gotData    bool
	lastData   time.Time // DATA last received
	fast       bool      // the monitor runs at the probe interval
	err        error     // terminal; Write fails with it, Read after the buffer
	reset      bool      // err is an abort: Read fails at once
	closed     bool
	tornDown   bool
	readDL     time.Time
	writeDL    time.Time
	first      *subflow
}

func newConn(cfg Config, local, remote Key, isClient bool) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		cfg: cfg, log: cfg.Logger, local: local, remote: remote, isClient: isClient,
		sched: cfg.Scheduler(), epoch: time.Now(), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, monitorWake: make(chan struct{}, 1),
		// As in MPTCP the first data byte has DSN IDSN+1.
		snd: NewSendBuffer(local.IDSN()+1, cfg.Window),
		rcv: NewReassembler(remote.IDSN()+1, cfg.Window),
	}
	c.lastAck = c.rcv.Ack()
	c.wg.Add(1)
	go c.monitor()
	return c
}

// notify wakes every waiter: for rare events (subflows coming and going,
// teardown, priority changes). Caller holds mu.
func (c *Conn) notify() {
	c.readable.fire()
	c.writable.fire()
	for _, sf := range c.subflows {
		sf.kick.fire()
	}
}

// wait releases mu until sig fires or dl passes. Caller holds mu.
func (c *Conn) wait(dl time.Time, sig *signal) error {
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	ch := sig.wait()
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-ch:
	case <-timeout:
	}
	return nil
}

// attach adds an established subflow and starts its goroutines.
func (c *Conn) attach(nc net.Conn, dec *Decoder, backup bool, addrID uint8, remoteAddrID int, rt *route) (*subflow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.closed {
		return nil, fmt.Errorf("datapath: adding subflow: connection closed")
	}
	now := time.Now()
	sf := &subflow{id: c.nextID, addrID: addrID, nc: nc, dec: dec, backup: backup, route: rt,
		quit: make(chan struct{}), started: now, lastRecv: now, lastPing: now, remoteAddrID: remoteAddrID}
	c.nextID++
	if tc, ok := nc.(*net.TCPConn); ok {
		sf.tcp = tc
		if err := tuneTCP(tc); err != nil {
			c.log.Debug("setting TCP_NOTSENT_LOWAT", zap.Error(err))
		}
	}
	if rt != nil {
		rt.upOnce = true
	}
	if c.first == nil {
		c.first = sf
	}
	c.subflows = append(c.subflows, sf)
	c.all = append(c.all, sf)
	c.log.Info("subflow up", zap.Int("subflow", sf.id), zap.Bool("backup", backup),
		zap.Stringer("remote", nc.RemoteAddr()))
	c.wg.Add(2)
	go c.readLoop(sf)
	go c.writeLoop(sf)
	c.notify()
	return sf, nil
}

// failSubflow drops sf and queues its unacknowledged data for reinjection.
// Caller holds mu.
func (c *Conn) failSubflow(sf *subflow, err error) {
	if sf.dead {
		return
	}
	sf.dead = true
	close(sf.quit)
	_ = sf.nc.Close()
	c.subflows = slices.DeleteFunc(c.subflows, func(s *subflow) bool { return s == sf })
	lost := c.snd.FailSubflow(sf.id)
	if c.err == nil {
		c.log.Warn("subflow failed", zap.Int("subflow", sf.id), zap.Int("reinjected ranges", len(lost)), zap.Error(err))
	}
	if len(c.subflows) == 0 {
		c.fail(fmt.Errorf("%w: %w", ErrNoSubflows, err))
	}
	if sf.route != nil {
		c.reopen(sf.route)
	}
	c.notify()
}

// fail ends the connection with err and closes every subflow. It does not
// wait for the goroutines (it may run on one of them). Caller holds mu.
func (c *Conn) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	if c.tornDown {
		return
	}
	c.tornDown = true
	close(c.done)
	c.cancel()
	for _, sf := range c.subflows {
		sf.dead = true
		close(sf.quit)
		_ = sf.nc.Close()
	}
	c.notify()
	c.subflows = nil
}

// rank orders subflows for carrying data and acks: fresh before stale,
// active before backup.
func rank(sf *subflow) int {
	r := 0
	if sf.backup {
		r++
	}
	if sf.stale {
		r += 2
	}
	return r
}

// usable returns the subflows the scheduler may use: those of the best
// rank, e.g. the fresh active ones, else fresh backups, else stale ones.
// The slice is reused by the next call. Caller holds mu.
func (c *Conn) usable() []*subflow {
	best := 4
	for _, sf := range c.subflows {
		best = min(best, rank(sf))
	}
	c.cands = c.cands[:0]
	for _, sf := range c.subflows {
		if rank(sf) == best {
			c.cands = append(c.cands, sf)
		}
	}
	return c.cands
}

// ackCarrier reports whether sf may carry a DATA_ACK or connection-level
// control frame: backups only when no active subflow lives, so they stay
// idle, and stale ones only when nothing better is left. Caller holds mu.
func (c *Conn) ackCarrier(sf *subflow) bool {
	for _, s := range c.subflows {
		if rank(s) < rank(sf) {
			return false
		}
	}
	return true
}

// requestAck makes the next writer that may carry it send a DATA_ACK, and
// wakes one such writer. Caller holds mu.
func (c *Conn) requestAck() {
	c.ackPending = true
	var best *subflow
	for _, sf := range c.subflows {
		if best == nil || rank(sf) < rank(best) || (rank(sf) == rank(best) && sf.pending < best.pending) {
			best = sf
		}
	}
	if best != nil {
		best.kick.fire()
	}
}

func (c *Conn) info(sf *subflow) SubflowInfo {
	in := SubflowInfo{ID: sf.id, Backup: sf.backup, Queued: sf.pending + sf.writing,
		Full: sf.pending >= subflowQueueLimit, RTT: sf.rtt}
	if sf.kiOK {
		in.Queued += sf.ki.notsent
		in.RTT, in.DeliveryRate = sf.ki.rtt, sf.ki.rate
		return in
	}
	if el := time.Since(sf.started).Seconds(); el > 0 && sf.sent > 0 {
		in.DeliveryRate = float64(sf.sent) / el
	}
	return in
}

// schedule moves data from the send buffer onto subflow queues for as
// long as the scheduler finds room, encoding each DATA frame straight into
// the queue. Caller holds mu.
func (c *Conn) schedule() {
	if c.err != nil {
		return
	}
	for {
		cands := c.usable()
		if len(cands) == 0 {
			return
		}
		infos := c.infos[:0]
		for _, sf := range cands {
			infos = append(infos, c.info(sf))
		}
		c.infos = infos
		picks := c.sched.Pick(infos)
		if len(picks) == 0 || picks[0] < 0 || picks[0] >= len(cands) {
			return
		}
		first := cands[picks[0]]
		at := len(first.data)
		var n int
		var ok bool
		first.data, n, ok = c.snd.appendNext(first.data, first.id, c.cfg.MaxPayload)
		if !ok {
			return
		}
		first.pending += n
		first.kick.fire()
		for _, i := range picks[1:] {
			if i < 0 || i >= len(cands) || cands[i] == first {
				continue
			}
			sf := cands[i]
			sf.data = append(sf.data, first.data[at:]...)
			sf.pending += n
			sf.kick.fire()
		}
		c.wakeMonitor()
	}
}

// wakeMonitor switches the monitor to the fast probe interval once data
// flows. Caller holds mu.
func (c *Conn) wakeMonitor() {
	if !c.fast && c.cfg.StaleAfter > 0 {
		c.fast = true
		select {
		case c.monitorWake <- struct{}{}:
		default:
		}
	}
}

// maybeAck asks for a DATA_ACK when enough was consumed to matter: a
// quarter window, or everything. DATA_ACK acknowledges only what the
// application has read, so the peer's unacknowledged data bounds our
// receive buffer too. Caller holds mu.
func (c *Conn) maybeAck() {
	a := c.rcv.consumed()
	if a == c.lastAck {
		return
	}
	if c.rcv.unread() == 0 || seqDiff(a, c.lastAck) >= int64(c.cfg.Window/4) {
		c.requestAck()
	}
}

func (c *Conn) writeLoop(sf *subflow) {
	defer c.wg.Done()
	var ctrl, data []byte // spare buffers, then the batch being written
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if sf.dead {
			return
		}
		c.schedule()
		if c.ackPending && c.ackCarrier(sf) {
			a := c.rcv.consumed()
			sf.ctrl, _ = AppendFrame(sf.ctrl, &DataAck{Ack: a})
			c.lastAck, c.ackPending = a, false
		}
		if len(c.ctrlAny) > 0 && c.ackCarrier(sf) {
			for _, b := range c.ctrlAny {
				sf.ctrl = append(sf.ctrl, b...)
			}
			c.ctrlAny = nil
		}
		if len(sf.ctrl)+len(sf.data) == 0 {
			ch := sf.kick.wait()
			c.mu.Unlock()
			select {
			case <-ch:
			case <-sf.quit:
			}
			c.mu.Lock()
			continue
		}
		ctrl, sf.ctrl = sf.ctrl, ctrl[:0]
		data, sf.data = sf.data, data[:0]
		payload := sf.pending
		sf.writing, sf.pending = payload, 0
		c.mu.Unlock()
		var err error
		switch {
		case len(ctrl) > 0 && len(data) > 0:
			bufs := net.Buffers{ctrl, data}
			_, err = bufs.WriteTo(sf.nc)
		case len(ctrl) > 0:
			_, err = sf.nc.Write(ctrl)
		default:
			_, err = sf.nc.Write(data)
		}
		var ki kernelInfo
		kiOK := false
		if err == nil && sf.tcp != nil {
			ki, kiOK = tcpInfo(sf.tcp)
		}
		c.mu.Lock()
		sf.writing = 0
		if err != nil {
			c.failSubflow(sf, fmt.Errorf("writing subflow %d: %w", sf.id, err))
			return
		}
		if kiOK {
			sf.ki, sf.kiOK = ki, true
		}
		sf.sent += uint64(payload)
	}
}

func (c *Conn) readLoop(sf *subflow) {
	defer c.wg.Done()
	for {
		f, err := sf.dec.Decode()
		now := time.Now()
		c.mu.Lock()
		// Frames already buffered are handled in the same critical
		// section: Decode cannot block on them.
		for {
			if err != nil {
				err = fmt.Errorf("reading subflow %d: %w", sf.id, err)
				break
			}
			if err = c.handle(sf, f, now); err != nil || sf.dead || !sf.dec.frameBuffered() {
				break
			}
			f, err = sf.dec.Decode()
		}
		if err != nil {
			c.failSubflow(sf, err)
			c.mu.Unlock()
			return
		}
		dead := sf.dead
		c.mu.Unlock()
		if dead {
			return
		}
	}
}

// handle processes one frame from sf; a DATA payload is only valid during
// the call. A returned error closes the subflow; stream-level violations
// end the whole connection. Caller holds mu.
func (c *Conn) handle(sf *subflow, f Frame, now time.Time) error {
	sf.lastRecv = now
	switch f := f.(type) {
	case *Data:
		sf.recv += uint64(len(f.Payload))
		c.gotData, c.lastData = true, now
		c.wakeMonitor()
		before, wasDone := c.rcv.unread(), c.rcv.Done()
		if err := c.rcv.store(f); err != nil {
			c.fail(fmt.Errorf("datapath: peer sent bad DATA on subflow %d: %w", sf.id, err))
			return nil
		}
		if c.rcv.unread() > before || c.rcv.Done() != wasDone {
			c.readable.fire()
		} else if !c.rcv.Done() && seqDiff(f.DSN, c.rcv.Ack()) < 0 {
			// A duplicate may mean our ACK was lost with a subflow.
			c.requestAck()
		}
		c.maybeAck()
	case *DataAck:
		if err := c.snd.Ack(f.Ack); err != nil {
			c.fail(fmt.Errorf("datapath: peer sent bad DATA_ACK: %w", err))
			return nil
		}
		c.writable.fire()
	case *Ping:
		sf.ctrl, _ = AppendFrame(sf.ctrl, &Pong{Timestamp: f.Timestamp})
		sf.kick.fire()
	case *Pong:
		c.pong(sf, f, now)
	case *Prio:
		sf.backup = f.Backup
		c.notify()
	case *FastClose:
		if f.Key != c.local {
			c.log.Warn("ignoring FASTCLOSE with wrong key", zap.Int("subflow", sf.id))
			return nil
		}
		c.reset = true
		c.fail(ErrFastClosed)
	case *AddAddr:
		c.addAddr(f)
	case *RemoveAddr:
		c.removeAddr(f.IDs)
	default:
		return fmt.Errorf("%w: %v on established subflow %d", ErrProtocol, f.Type(), sf.id)
	}
	return nil
}

// Read reads stream data. It returns io.EOF after the peer's DATA_FIN and
// all data before it were read.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case c.closed:
			return 0, fmt.Errorf("datapath: read: %w", net.ErrClosed)
		case c.reset:
			return 0, c.err
		case c.rcv.unread() > 0:
			n := c.rcv.read(p)
			c.maybeAck()
			return n, nil
		case c.rcv.Done():
			return 0, io.EOF
		case c.err != nil:
			return 0, c.err
		case len(p) == 0:
			return 0, nil
		}
		if err := c.wait(c.readDL, &c.readable); err != nil {
			return 0, err
		}
	}
}

// Write queues p for sending, blocking while the window is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for {
		switch {
		case c.closed:
			return total, fmt.Errorf("datapath: write: %w", net.ErrClosed)
		case c.err != nil:
			return total, c.err
		}
		n, err := c.snd.Write(p[total:])
		total += n
		if n > 0 {
			c.schedule()
		}
		if total == len(p) {
			return total, nil
		}
		if err != nil && !errors.Is(err, ErrSendBufferFull) {
			return total, fmt.Errorf("datapath: write: %w", err)
		}
		if err := c.wait(c.writeDL, &c.writable); err != nil {
			return total, err
		}
	}
}

// CloseWrite sends DATA_FIN after the data written so far: the peer's Read
// returns io.EOF once it has read everything; this side can still read.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("datapath: close write: %w", net.ErrClosed)
	}
	c.snd.Close()
	c.schedule()
	return nil
}

// Close sends DATA_FIN, waits up to Config.Linger for the peer to
// acknowledge everything, then closes all subflows.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("datapath: close: %w", net.ErrClosed)
	}
	c.closed = true
	c.snd.Close()
	c.schedule()
	c.notify()
	dl := time.Now().Add(c.cfg.Linger)
	for !c.snd.Done() && c.err == nil {
		if c.wait(dl, &c.writable) != nil {
			c.log.Info("closing with unacknowledged data", zap.Int("bytes", c.snd.Unacked()))
			break
		}
	}
	c.fail(fmt.Errorf("datapath: %w", net.ErrClosed))
	c.mu.Unlock()
	c.wg.Wait()
	if c.onClose != nil {
		c.onClose()
	}
	return nil
}

// Abort tears the connection down at once (RFC 8684 MP_FASTCLOSE): it
// sends FASTCLOSE with the peer's key on every subflow and closes them,
// discarding unsent and unread data. The peer's Read and Write then fail
// with ErrFastClosed.
func (c *Conn) Abort() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("datapath: abort: %w", net.ErrClosed)
	}
	c.closed = true
	subs := slices.Clone(c.subflows)
	c.mu.Unlock()
	b, _ := AppendFrame(nil, &FastClose{Key: c.remote})
	// Written outside the writer goroutines: each Write is one whole frame,
	// so it cannot split another frame; the deadline also unblocks a
	// writer stuck on a peer that stopped reading.
	for _, sf := range subs {
		_ = sf.nc.SetWriteDeadline(time.Now().Add(c.cfg.HandshakeTimeout / 10))
		_, _ = sf.nc.Write(b)
	}
	c.mu.Lock()
	c.reset = true
	c.fail(ErrAborted)
	c.mu.Unlock()
	c.wg.Wait()
	if c.onClose != nil {
		c.onClose()
	}
	return nil
}

// Stats returns per-subflow counters, failed subflows included.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{Scheduler: c.sched.Name()}
	for _, sf := range c.all {
		st.Subflows = append(st.Subflows, SubflowStats{ID: sf.id, Backup: sf.backup, Dead: sf.dead,
			LocalAddr: sf.nc.LocalAddr(), RemoteAddr: sf.nc.RemoteAddr(),
			BytesSent: sf.sent, BytesReceived: sf.recv, RTT: sf.rtt, Stale: sf.stale && !sf.dead})
	}
	return st
}

// LocalAddr is the local address of the first subflow.
func (c *Conn) LocalAddr() net.Addr { return c.first.nc.LocalAddr() }

// RemoteAddr is the remote address of the first subflow.
func (c *Conn) RemoteAddr() net.Addr { return c.first.nc.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL, c.writeDL = t, t
	c.readable.fire()
	c.writable.fire()
	return nil
}

// SetReadDeadline makes pending and future Reads fail with
// os.ErrDeadlineExceeded after t; zero means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL = t
	c.readable.fire()
	return nil
}

// SetWriteDeadline makes pending and future Writes fail with
// os.ErrDeadlineExceeded after t; zero means no deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeDL = t
	c.writable.fire()
	return nil
}

// LocalKey is this side's connection key.
func (c *Conn) LocalKey() Key { return c.local }

// RemoteKey is the peer's connection key.
func (c *Conn) RemoteKey() Key { return c.remote }
