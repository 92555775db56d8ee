package datapath

import (
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
	DefaultMaxPayload       = 16 << 10
)

// subflowQueueLimit bounds the DATA bytes waiting for one subflow's writer
// so that most unsent data stays schedulable on any subflow.
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
	// Heartbeat is the PING interval per subflow (default 1 s).
	Heartbeat time.Duration
	// DeadAfter declares a subflow dead after this long without any frame
	// from the peer (default 3 heartbeats).
	DeadAfter time.Duration
	// HandshakeTimeout bounds CAPABLE and JOIN exchanges (default 10 s).
	HandshakeTimeout time.Duration
	// Linger is how long Close waits for the peer to acknowledge the data
	// and DATA_FIN before tearing the subflows down (default 5 s).
	Linger time.Duration
	// MaxPayload is the DATA payload per frame (default 16 KiB).
	MaxPayload int
	// Scheduler makes the per-connection scheduler (default
	// NewLowestDrainTime).
	Scheduler func() Scheduler
	// Logger receives subflow events and refusals; nil discards them.
	Logger *zap.Logger
	// JoinAnnounced makes a client join the addresses the server
	// announces with ADD_ADDR (MAC verified), one subflow each.
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

type subflow struct {
	id     int
	addrID uint8
	nc     net.Conn
	tcp    *net.TCPConn // nil unless nc is TCP
	dec    *Decoder
	backup bool
	dead   bool
	quit   chan struct{} // closed when dead

	ctrl    [][]byte // control frames, sent before data
	data    [][]byte // DATA frames
	queued  int      // DATA payload bytes queued or being written
	started time.Time

	remoteAddrID  int // announced address id this subflow joined, -1: none
	lastRecv      time.Time
	rtt           time.Duration
	sent, recv    uint64 // DATA payload bytes
	framesWritten uint64
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

	wg   sync.WaitGroup // subflow readers/writers and heartbeat
	done chan struct{}  // closed at teardown

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	subflows   []*subflow    // alive
	all        []*subflow    // for Stats
	nextID     int
	nextAddrID uint8
	snd        *SendBuffer
	rcv        *Reassembler
	readBuf    []byte
	lastAck    uint64
	ackPending bool
	ctrlAny    [][]byte       // control frames for any active subflow
	joined     map[uint8]bool // announced address ids joined or being joined
	gotData    bool
	err        error // terminal; Write fails with it, Read after the buffer
	reset      bool  // err is an abort: Read fails at once
	closed     bool
	tornDown   bool
	readDL     time.Time
	writeDL    time.Time
	first      *subflow
}

func newConn(cfg Config, local, remote Key, isClient bool) *Conn {
	c := &Conn{
		cfg: cfg, log: cfg.Logger, local: local, remote: remote, isClient: isClient,
		sched: cfg.Scheduler(), epoch: time.Now(), done: make(chan struct{}),
		changed: make(chan struct{}),
		// As in MPTCP the first data byte has DSN IDSN+1.
		snd: NewSendBuffer(local.IDSN()+1, cfg.Window),
		rcv: NewReassembler(remote.IDSN()+1, cfg.Window),
	}
	c.lastAck = c.rcv.Ack()
	c.wg.Add(1)
	go c.heartbeat()
	return c
}

// notify wakes everything waiting for a state change. Caller holds mu.
func (c *Conn) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// wait releases mu until the state changes or dl passes. Caller holds mu.
func (c *Conn) wait(dl time.Time) error {
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
	ch := c.changed
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-ch:
	case <-timeout:
	}
	return nil
}

// attach adds an established subflow and starts its goroutines.
func (c *Conn) attach(nc net.Conn, dec *Decoder, backup bool, addrID uint8, remoteAddrID int) (*subflow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.closed {
		return nil, fmt.Errorf("datapath: adding subflow: connection closed")
	}
	now := time.Now()
	sf := &subflow{id: c.nextID, addrID: addrID, nc: nc, dec: dec, backup: backup,
		quit: make(chan struct{}), started: now, lastRecv: now, remoteAddrID: remoteAddrID}
	c.nextID++
	if tc, ok := nc.(*net.TCPConn); ok {
		sf.tcp = tc
		if err := tuneTCP(tc); err != nil {
			c.log.Debug("setting TCP_NOTSENT_LOWAT", zap.Error(err))
		}
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
	for _, sf := range c.subflows {
		sf.dead = true
		close(sf.quit)
		_ = sf.nc.Close()
	}
	c.subflows = nil
	c.notify()
}

// usable returns the subflows the scheduler may use: the active ones, or
// the backups when no active subflow is alive. Caller holds mu.
func (c *Conn) usable() []*subflow {
	var act, bak []*subflow
	for _, sf := range c.subflows {
		if sf.backup {
			bak = append(bak, sf)
		} else {
			act = append(act, sf)
		}
	}
	if len(act) > 0 {
		return act
	}
	return bak
}

func (c *Conn) info(sf *subflow) SubflowInfo {
	in := SubflowInfo{ID: sf.id, Backup: sf.backup, Queued: sf.queued,
		Full: sf.queued >= subflowQueueLimit, RTT: sf.rtt}
	if sf.tcp != nil {
		if ki, ok := tcpInfo(sf.tcp); ok {
			in.Queued += ki.notsent
			in.RTT, in.DeliveryRate = ki.rtt, ki.rate
			return in
		}
	}
	if el := time.Since(sf.started).Seconds(); el > 0 && sf.sent > 0 {
		in.DeliveryRate = float64(sf.sent) / el
	}
	return in
}

// schedule moves data from the send buffer onto subflow queues for as
// long as the scheduler finds room. Caller holds mu.
func (c *Conn) schedule() {
	if c.err != nil {
		return
	}
	for {
		cands := c.usable()
		if len(cands) == 0 {
			return
		}
		infos := make([]SubflowInfo, len(cands))
		for i, sf := range cands {
			infos[i] = c.info(sf)
		}
		picks := c.sched.Pick(infos)
		if len(picks) == 0 {
			return
		}
		first := cands[picks[0]]
		d, ok := c.snd.Next(first.id, c.cfg.MaxPayload)
		if !ok {
			return
		}
		b, err := AppendFrame(nil, d)
		if err != nil { // cannot happen: Next bounds the payload
			c.fail(fmt.Errorf("datapath: encoding DATA: %w", err))
			return
		}
		for _, i := range picks {
			if i < 0 || i >= len(cands) {
				continue
			}
			sf := cands[i]
			sf.data = append(sf.data, b)
			sf.queued += len(d.Payload)
		}
	}
}

// ackCarrier reports whether sf may carry a DATA_ACK: backups only when no
// active subflow lives, so they stay idle. Caller holds mu.
func (c *Conn) ackCarrier(sf *subflow) bool {
	if !sf.backup {
		return true
	}
	for _, s := range c.subflows {
		if !s.backup {
			return false
		}
	}
	return true
}

// advertisedAck acknowledges only what the application has read, so the
// peer's unacknowledged data bounds our receive buffer too. Caller holds mu.
func (c *Conn) advertisedAck() uint64 {
	a := c.rcv.Ack() - uint64(len(c.readBuf))
	if c.rcv.Done() && len(c.readBuf) > 0 {
		a-- // the DATA_FIN's DSN is not consumed yet
	}
	return a
}

// maybeAck queues a DATA_ACK when enough was consumed to matter: a quarter
// window, or everything. Caller holds mu.
func (c *Conn) maybeAck() {
	a := c.advertisedAck()
	if a == c.lastAck {
		return
	}
	if len(c.readBuf) == 0 || seqDiff(a, c.lastAck) >= int64(c.cfg.Window/4) {
		c.ackPending = true
		c.notify()
	}
}

func (c *Conn) writeLoop(sf *subflow) {
	defer c.wg.Done()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if sf.dead {
			return
		}
		c.schedule()
		if c.ackPending && c.ackCarrier(sf) {
			a := c.advertisedAck()
			b, _ := AppendFrame(nil, &DataAck{Ack: a})
			sf.ctrl = append(sf.ctrl, b)
			c.lastAck, c.ackPending = a, false
		}
		if len(c.ctrlAny) > 0 && c.ackCarrier(sf) {
			sf.ctrl = append(sf.ctrl, c.ctrlAny...)
			c.ctrlAny = nil
		}
		if len(sf.ctrl)+len(sf.data) == 0 {
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-sf.quit:
			}
			c.mu.Lock()
			continue
		}
		bufs := make(net.Buffers, 0, len(sf.ctrl)+len(sf.data))
		bufs = append(append(bufs, sf.ctrl...), sf.data...)
		n := len(bufs)
		payload := sf.queued
		sf.ctrl, sf.data = nil, nil
		c.mu.Unlock()
		_, err := bufs.WriteTo(sf.nc)
		c.mu.Lock()
		if err != nil {
			c.failSubflow(sf, fmt.Errorf("writing subflow %d: %w", sf.id, err))
			return
		}
		// Only frames queued before the write left; later ones stay counted.
		sf.queued -= payload
		sf.sent += uint64(payload)
		sf.framesWritten += uint64(n)
		c.notify()
	}
}

func (c *Conn) readLoop(sf *subflow) {
	defer c.wg.Done()
	for {
		f, err := sf.dec.Decode()
		c.mu.Lock()
		if err == nil {
			err = c.handle(sf, f)
		} else {
			err = fmt.Errorf("reading subflow %d: %w", sf.id, err)
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

// handle processes one frame from sf. A returned error closes the
// subflow; stream-level violations end the whole connection. Caller holds
// mu.
func (c *Conn) handle(sf *subflow, f Frame) error {
	sf.lastRecv = time.Now()
	switch f := f.(type) {
	case *Data:
		sf.recv += uint64(len(f.Payload))
		c.gotData = true
		out, err := c.rcv.Push(f)
		if err != nil {
			c.fail(fmt.Errorf("datapath: peer sent bad DATA on subflow %d: %w", sf.id, err))
			return nil
		}
		if len(out) > 0 || c.rcv.Done() {
			c.readBuf = append(c.readBuf, out...)
			c.notify()
		}
		if len(out) == 0 && !c.rcv.Done() {
			// A duplicate may mean our ACK was lost with a subflow.
			if seqDiff(f.DSN, c.rcv.Ack()) < 0 {
				c.ackPending = true
				c.notify()
			}
		}
		c.maybeAck()
	case *DataAck:
		if err := c.snd.Ack(f.Ack); err != nil {
			c.fail(fmt.Errorf("datapath: peer sent bad DATA_ACK: %w", err))
			return nil
		}
		c.notify()
	case *Ping:
		b, _ := AppendFrame(nil, &Pong{Timestamp: f.Timestamp})
		sf.ctrl = append(sf.ctrl, b)
		c.notify()
	case *Pong:
		if rtt := time.Since(c.epoch) - time.Duration(f.Timestamp); rtt >= 0 && rtt < time.Hour {
			sf.rtt = rtt
		}
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
		for _, s := range slices.Clone(c.subflows) {
			if s.remoteAddrID >= 0 && slices.Contains(f.IDs, uint8(s.remoteAddrID)) {
				c.failSubflow(s, fmt.Errorf("peer removed address id %d", s.remoteAddrID))
			}
		}
		for _, id := range f.IDs {
			delete(c.joined, id)
		}
	default:
		return fmt.Errorf("%w: %v on established subflow %d", ErrProtocol, f.Type(), sf.id)
	}
	return nil
}

func (c *Conn) heartbeat() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		now := time.Now()
		for _, sf := range slices.Clone(c.subflows) {
			if now.Sub(sf.lastRecv) > c.cfg.DeadAfter {
				c.failSubflow(sf, fmt.Errorf("%w: subflow %d silent for %v", ErrSubflowDead, sf.id, now.Sub(sf.lastRecv).Round(time.Millisecond)))
				continue
			}
			b, _ := AppendFrame(nil, &Ping{Timestamp: uint64(now.Sub(c.epoch))})
			sf.ctrl = append(sf.ctrl, b)
		}
		if c.gotData {
			c.ackPending = true // repeat the ACK in case one was lost
		}
		c.notify()
		c.mu.Unlock()
	}
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
		case len(c.readBuf) > 0:
			n := copy(p, c.readBuf)
			c.readBuf = c.readBuf[n:]
			if len(c.readBuf) == 0 {
				c.readBuf = nil
			}
			c.maybeAck()
			return n, nil
		case c.rcv.Done():
			return 0, io.EOF
		case c.err != nil:
			return 0, c.err
		case len(p) == 0:
			return 0, nil
		}
		if err := c.wait(c.readDL); err != nil {
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
			c.notify()
		}
		if total == len(p) {
			return total, nil
		}
		if err != nil && !errors.Is(err, ErrSendBufferFull) {
			return total, fmt.Errorf("datapath: write: %w", err)
		}
		if err := c.wait(c.writeDL); err != nil {
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
	c.notify()
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
	c.notify()
	dl := time.Now().Add(c.cfg.Linger)
	for !c.snd.Done() && c.err == nil {
		if c.wait(dl) != nil {
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
			BytesSent: sf.sent, BytesReceived: sf.recv, RTT: sf.rtt})
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
	c.notify()
	return nil
}

// SetReadDeadline makes pending and future Reads fail with
// os.ErrDeadlineExceeded after t; zero means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDL = t
	c.notify()
	return nil
}

// SetWriteDeadline makes pending and future Writes fail with
// os.ErrDeadlineExceeded after t; zero means no deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeDL = t
	c.notify()
	return nil
}

// LocalKey is this side's connection key.
func (c *Conn) LocalKey() Key { return c.local }

// RemoteKey is the peer's connection key.
func (c *Conn) RemoteKey() Key { return c.remote }
