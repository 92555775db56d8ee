package datapath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ServerConfig configures a Listener.
type ServerConfig struct {
	Config
	// ExtraListeners accept JOINs (and new connections) besides the main
	// address; the Listener closes them when it is closed.
	ExtraListeners []net.Listener
	// ReplayCapacity is how many JOIN nonces the replay guard remembers
	// (default 65536).
	ReplayCapacity int
	// Backlog is how many set-up connections wait for Accept (default 16).
	Backlog int
	// Announce lists addresses (typically those of ExtraListeners)
	// announced to every new connection with ADD_ADDR, ids 1, 2, ...
	Announce []netip.AddrPort
}

// Path is one local path for the client: the first one carries the
// initial subflow, each further one a joined subflow.
type Path struct {
	// LocalAddr binds the subflow's source address (zero: any).
	LocalAddr netip.Addr
	// Device binds the subflow to an interface (SO_BINDTODEVICE; needs
	// CAP_NET_RAW). Empty: any.
	Device string
	// Backup marks the path's subflows as backup: they carry data only
	// when no active subflow is left. Dial starts the connection on the
	// first non-backup path (on the first path if all are backups, which
	// then carries data normally).
	Backup bool
}

// ClientConfig configures Dial.
type ClientConfig struct {
	Config
	// Paths lists the local paths; empty means one unbound path.
	Paths []Path
	// RejoinDelay is how long the client waits before re-opening the
	// subflow of a path that died, or that could not join during Dial
	// (default DefaultRejoinDelay); the delay doubles after each failed
	// attempt up to RejoinMaxDelay (default DefaultRejoinMaxDelay).
	// Negative disables re-opening.
	RejoinDelay    time.Duration
	RejoinMaxDelay time.Duration
}

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("datapath: listener closed")

// Listener accepts connections and routes JOINs to them by token. It
// implements net.Listener.
type Listener struct {
	cfg      Config
	log      *zap.Logger
	guard    *ReplayGuard
	announce []netip.AddrPort
	accepted chan *Conn
	done     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	lns     []net.Listener
	conns   map[uint32]*Conn // by local token; nil value = reserved
	pending map[net.Conn]struct{}
	changed chan struct{} // closed and replaced when conns changes
	closed  bool
}

// Listen listens on network/addr (e.g. "tcp", "127.0.0.1:0") and on
// cfg.ExtraListeners.
func Listen(ctx context.Context, network, addr string, cfg *ServerConfig) (*Listener, error) {
	var lc net.ListenConfig
	// Subflows are plain TCP by design; Go would make them MPTCP where
	// the kernel supports it.
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("datapath: listening on %s: %w", addr, err)
	}
	return NewListener(ln, cfg), nil
}

// NewListener serves on ln (any net.Listener) and cfg.ExtraListeners.
func NewListener(ln net.Listener, cfg *ServerConfig) *Listener {
	var sc ServerConfig
	if cfg != nil {
		sc = *cfg
	}
	if sc.ReplayCapacity <= 0 {
		sc.ReplayCapacity = 1 << 16
	}
	if sc.Backlog <= 0 {
		sc.Backlog = 16
	}
	l := &Listener{cfg: sc.withDefaults(), guard: NewReplayGuard(sc.ReplayCapacity),
		accepted: make(chan *Conn, sc.Backlog), done: make(chan struct{}),
		conns: make(map[uint32]*Conn), pending: make(map[net.Conn]struct{}),
		changed: make(chan struct{})}
	l.log = l.cfg.Logger
	l.announce = slices.Clone(sc.Announce)
	for _, x := range append([]net.Listener{ln}, sc.ExtraListeners...) {
		_ = l.AddListener(x)
	}
	return l
}

// AddListener accepts subflows on ln too, typically on another address
// for JOINs. The Listener closes ln when it is closed.
func (l *Listener) AddListener(ln net.Listener) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = ln.Close()
		return ErrListenerClosed
	}
	l.lns = append(l.lns, ln)
	l.wg.Add(1)
	go l.acceptLoop(ln)
	return nil
}

func (l *Listener) acceptLoop(ln net.Listener) {
	defer l.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-l.done:
			default:
				l.log.Error("accept failed; listener stops", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = nc.Close()
			return
		}
		l.pending[nc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(nc)
	}
}

// serve runs the set-up of one incoming subflow: CAPABLE makes a new
// connection, JOIN adds to an existing one; anything else is refused.
func (l *Listener) serve(nc net.Conn) {
	defer l.wg.Done()
	err := l.setup(nc)
	l.mu.Lock()
	delete(l.pending, nc)
	l.mu.Unlock()
	if err != nil {
		_ = nc.Close()
		l.log.Warn("subflow refused", zap.Stringer("remote", nc.RemoteAddr()), zap.Error(err))
	}
}

func (l *Listener) setup(nc net.Conn) error {
	stop := deadlineFor(context.Background(), nc, l.cfg.HandshakeTimeout)
	defer stop()
	dec := newBufferedDecoder(nc)
	f, err := dec.Decode()
	if err != nil {
		return fmt.Errorf("reading first frame: %w", err)
	}
	switch f := f.(type) {
	case *Capable:
		var reserved uint32
		b, err := serverHandshake(nc, dec, f, l.cfg, func(k Key) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			if _, taken := l.conns[k.Token()]; taken {
				return false
			}
			l.conns[k.Token()] = nil
			reserved = k.Token()
			return true
		})
		if err != nil {
			if b != 0 {
				l.forget(reserved, nil)
			}
			return err
		}
		stop()
		c := newConn(l.cfg, b, f.Key, false)
		token := b.Token()
		c.onClose = func() { l.forget(token, c) }
		l.mu.Lock()
		l.conns[token] = c
		l.notifyLocked()
		l.mu.Unlock()
		if _, err := c.attach(nc, dec, false, 0, -1, nil); err != nil {
			_ = c.Abort()
			return err
		}
		for i, ap := range l.announce {
			if err := c.AnnounceAddr(uint8(i+1), ap); err != nil {
				l.log.Warn("announcing address", zap.Stringer("addr", ap), zap.Error(err))
			}
		}
		select {
		case l.accepted <- c:
		case <-l.done:
			_ = c.Abort()
		}
		return nil
	case *Join:
		c, err := serverJoin(nc, dec, f, l.guard, l.lookup)
		if err != nil {
			return err
		}
		stop()
		if _, err := c.attach(nc, dec, f.Backup, f.AddrID, -1, nil); err != nil {
			return fmt.Errorf("%w: %w", ErrJoinRefused, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: first frame is %v", ErrProtocol, f.Type())
	}
}

// lookup finds the connection for a JOIN's token. A client may join as
// soon as it sent its third CAPABLE, possibly before this side finished
// that handshake, so a token still being set up is waited for.
func (l *Listener) lookup(token uint32) *Conn {
	timer := time.NewTimer(l.cfg.HandshakeTimeout)
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		c, ok := l.conns[token]
		if !ok || c != nil {
			return c
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
		case <-l.done:
		}
		l.mu.Lock()
		select {
		case <-timer.C:
			return l.conns[token]
		case <-l.done:
			return nil
		default:
		}
	}
}

// notifyLocked wakes lookups waiting for a token. Caller holds mu.
func (l *Listener) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// forget drops token if it still maps to c.
func (l *Listener) forget(token uint32, c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[token] == c {
		delete(l.conns, token)
		l.notifyLocked()
	}
}

// AcceptConn waits for the next set-up connection.
func (l *Listener) AcceptConn(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.accepted:
		return c, nil
	case <-l.done:
		return nil, ErrListenerClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("datapath: accept: %w", ctx.Err())
	}
}

// Accept implements net.Listener; the net.Conn is a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptConn(context.Background())
}

// Addr is the address of the first listener.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lns[0].Addr()
}

// Close stops accepting, aborts set-ups in progress and connections not
// yet accepted, and waits for its goroutines. Accepted connections stay
// up but can no longer gain subflows.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrListenerClosed
	}
	l.closed = true
	close(l.done)
	for _, ln := range l.lns {
		_ = ln.Close()
	}
	for nc := range l.pending {
		_ = nc.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	for {
		select {
		case c := <-l.accepted:
			_ = c.Abort()
		default:
			return nil
		}
	}
}

// dialFirst connects the initial subflow: over the active paths in order,
// then the backup ones, the first that reaches server wins, so a
// connection can start while a link is down. Each attempt is bounded by
// the handshake timeout: a path that drops SYNs must not hold it for
// minutes.
func dialFirst(ctx context.Context, paths []Path, server string, cfg Config) (int, net.Conn, error) {
	order := make([]int, 0, len(paths))
	for _, backup := range []bool{false, true} {
		for i, p := range paths {
			if p.Backup == backup {
				order = append(order, i)
			}
		}
	}
	var errs []error
	for _, i := range order {
		dctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
		nc, err := dialPath(dctx, paths[i], server)
		cancel()
		if err == nil {
			if len(errs) > 0 {
				cfg.Logger.Warn("path unusable; another carries the initial subflow", zap.Errors("errors", errs))
			}
			return i, nc, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return 0, nil, errors.Join(errs...)
}

// Dial connects to server over the first non-backup path of cfg.Paths
// that reaches it (see dialFirst) and joins one more subflow from each
// further path. With JoinAnnounced,
// each path also joins each address the server announces (full mesh). A
// path that fails to join is logged and, unless RejoinDelay is negative,
// retried in the background, as is any subflow that dies later; the
// connection is returned as long as the first subflow is up.
func Dial(ctx context.Context, cfg *ClientConfig, server string) (*Conn, error) {
	var cc ClientConfig
	if cfg != nil {
		cc = *cfg
	}
	paths := slices.Clone(cc.Paths)
	if len(paths) == 0 {
		paths = []Path{{}}
	}
	di := &dialInfo{paths: paths, rejoinMin: cc.RejoinDelay, rejoinMax: cc.RejoinMaxDelay}
	if di.rejoinMin == 0 {
		di.rejoinMin = DefaultRejoinDelay
	}
	if di.rejoinMax <= 0 {
		di.rejoinMax = DefaultRejoinMaxDelay
	}
	di.rejoinMax = max(di.rejoinMax, di.rejoinMin)
	cfgd := cc.Config.withDefaults()
	first, nc, err := dialFirst(ctx, paths, server, cfgd)
	if err != nil {
		return nil, err
	}
	rt := &route{key: routeKey{-1, first}, addr: server}
	c, err := clientHandshake(ctx, nc, cfgd, di, rt)
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("datapath: connecting to %s: %w", server, err)
	}
	for i, p := range paths {
		if i == first {
			continue
		}
		c.mu.Lock()
		rt := c.addRoute(routeKey{-1, i}, server, p.Backup)
		c.mu.Unlock()
		if rt == nil {
			continue
		}
		if err := c.openRoute(ctx, rt); err != nil {
			c.log.Warn("joining path failed", zap.Stringer("local", p.LocalAddr), zap.String("device", p.Device), zap.Error(err))
			c.mu.Lock()
			if c.retries(rt) {
				c.startRoute(rt, di.rejoinMin)
			}
			c.mu.Unlock()
		}
	}
	return c, nil
}
