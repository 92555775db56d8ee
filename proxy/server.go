package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// Timeouts of the server's per-connection set-up.
const (
	// headerTimeout bounds the wait for the stream header, so a client
	// that connects and stays silent does not hold a slot for ever.
	headerTimeout = 10 * time.Second
	// dialTimeout bounds the connection to the destination.
	dialTimeout = 10 * time.Second
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Listen is the data-path listen address, e.g. ":7000".
	Listen string
	// To is the HOST:PORT plain TCP destination for non-transparent
	// clients; "" serves transparent clients only.
	To string
	// Announce are extra addresses, "ADDR" (Listen's port) or
	// "ADDR:PORT": the server listens there too and announces them to
	// every client (ADD_ADDR), which joins them.
	Announce []string
	// PSK is an optional pre-shared key; when set, clients without the
	// same key are refused.
	PSK []byte
	// Allow are the destinations a transparent client may ask for;
	// empty allows none.
	Allow []netip.Prefix
	// Logger receives connection events; nil discards them.
	Logger *zap.Logger
}

// Server is the data-path end of the proxy: it accepts data-path
// connections and relays each to its destination over plain TCP.
type Server struct {
	cfg      ServerConfig
	log      *zap.Logger
	announce []netip.AddrPort // port 0: Listen's port
	t        *tracker
	// listening, if set, learns the bound address (tests listen on
	// port 0).
	listening func(net.Addr)
}

// NewServer checks cfg; it does not listen yet (Run does).
func NewServer(cfg ServerConfig) (*Server, error) {
	if _, err := splitPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("proxy server: listen address %q: %w (want HOST:PORT or :PORT)", cfg.Listen, err)
	}
	if cfg.To != "" {
		if _, err := splitPort(cfg.To); err != nil {
			return nil, fmt.Errorf("proxy server: destination %q: %w (want HOST:PORT)", cfg.To, err)
		}
		if p, _ := splitPort(cfg.To); p == 0 {
			return nil, fmt.Errorf("proxy server: destination %q: port 0 cannot be connected to", cfg.To)
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, t: newTracker()}
	s.cfg.Allow = slices.Clone(cfg.Allow)
	s.cfg.PSK = slices.Clone(cfg.PSK)
	if s.log == nil {
		s.log = zap.NewNop()
	}
	for _, a := range cfg.Announce {
		ap, err := parseAnnounce(a)
		if err != nil {
			return nil, fmt.Errorf("proxy server: %w", err)
		}
		s.announce = append(s.announce, ap)
	}
	for i, p := range cfg.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("proxy server: allowed prefix #%d is invalid", i+1)
		}
		s.cfg.Allow[i] = p.Masked()
	}
	return s, nil
}

// parseAnnounce takes "ADDR" (port 0: the listen port) or "ADDR:PORT".
func parseAnnounce(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("announce %q: give a port other than 0, or none for the listen port", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("announce %q: want an IP address or ADDR:PORT ([ADDR]:PORT for IPv6)", s)
	}
	if a.IsUnspecified() || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("announce %q: announce an address clients can reach, not a wildcard or zoned one", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}

// splitPort checks HOST:PORT and returns the port.
func splitPort(hostport string) (uint16, error) {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return uint16(p), nil
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats { return s.t.stats() }

// Run listens on Listen and the announced addresses and serves until ctx
// is done; then it closes the listeners, aborts the connections still
// open and returns nil. It returns an error if it cannot listen.
func (s *Server) Run(ctx context.Context) error {
	// The data path is the multipath layer; kernel MPTCP underneath
	// would only add a second one.
	ln, err := listenTCP(ctx, "proxy server", s.cfg.Listen)
	if err != nil {
		return err
	}
	main := ln.Addr().(*net.TCPAddr)
	var extra []net.Listener
	closeAll := func() {
		_ = ln.Close()
		for _, l := range extra {
			_ = l.Close()
		}
	}
	announce := make([]netip.AddrPort, 0, len(s.announce))
	for _, ap := range s.announce {
		if ap.Port() == 0 {
			ap = netip.AddrPortFrom(ap.Addr(), uint16(main.Port))
		}
		announce = append(announce, ap)
		// A wildcard listener on the same port already accepts there (and
		// a second bind would fail).
		if main.IP.IsUnspecified() && ap.Port() == uint16(main.Port) {
			continue
		}
		l, err := listenTCP(ctx, "proxy server", ap.String())
		if err != nil {
			closeAll()
			return fmt.Errorf("%w; is the announced address configured on this host?", err)
		}
		extra = append(extra, l)
	}
	dl := datapath.NewListener(ln, &datapath.ServerConfig{
		Config:         datapath.Config{PSK: s.cfg.PSK, Logger: s.log},
		ExtraListeners: extra,
		Announce:       announce,
	})
	s.log.Info("proxy server listening", zap.Stringer("addr", main), zap.Stringers("announce", announce),
		zap.String("to", s.cfg.To), zap.Stringers("allow", s.cfg.Allow), zap.Bool("psk", len(s.cfg.PSK) > 0))
	if s.listening != nil {
		s.listening(main)
	}
	for {
		dc, err := dl.AcceptConn(ctx)
		if err != nil {
			_ = dl.Close()
			s.t.shutdown()
			if ctx.Err() != nil || errors.Is(err, datapath.ErrListenerClosed) {
				s.log.Info("proxy server stopped")
				return nil
			}
			return fmt.Errorf("proxy server: accepting: %w", err)
		}
		if !s.t.start() {
			_ = dc.Abort()
			continue
		}
		go s.serve(ctx, dc)
	}
}

// serve relays one data-path connection.
func (s *Server) serve(ctx context.Context, dc *datapath.Conn) {
	defer s.t.wg.Done()
	log := s.log.With(zap.Stringer("peer", dc.RemoteAddr()))
	// Until the relay runs, shutdown reaches this connection only here.
	stop := context.AfterFunc(ctx, func() { _ = dc.Abort() })
	refuse := func(msg string, fields ...zap.Field) {
		stop()
		s.t.refuse()
		log.Warn(msg, fields...)
		_ = dc.Abort()
	}
	_ = dc.SetReadDeadline(time.Now().Add(headerTimeout))
	dst, err := readHeader(dc)
	_ = dc.SetReadDeadline(time.Time{})
	if err != nil {
		refuse("connection refused: bad stream header", zap.Error(err))
		return
	}
	target := dst.String()
	switch {
	case !dst.IsValid() && s.cfg.To == "":
		refuse("connection refused: client asked for the default target but none is set (--to)")
		return
	case !dst.IsValid():
		target = s.cfg.To
	case !s.allowed(dst.Addr()):
		refuse("connection refused: destination not allowed (add it with --allow)", zap.Stringer("dst", dst))
		return
	}
	log = log.With(zap.String("dst", target))
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		refuse("connection refused: cannot reach destination", zap.Error(err))
		return
	}
	stop()
	r := &relay{tc: nc.(*net.TCPConn), dc: dc}
	if !s.t.add(r) {
		return
	}
	log.Info("connection open")
	err = r.run()
	s.t.done(r)
	logEnd(log, r, err)
}

func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// logEnd logs the end of a relay, at Warn when it was not an ordinary end.
func logEnd(log *zap.Logger, r *relay, err error) {
	fields := []zap.Field{zap.Uint64("bytes_in", r.in.Load()), zap.Uint64("bytes_out", r.out.Load())}
	if err != nil {
		fields = append(fields, zap.Error(err))
	}
	if benign(err) {
		log.Info("connection closed", fields...)
	} else {
		log.Warn("connection failed", fields...)
	}
}

// listenTCP listens on addr with a plain TCP socket (Go makes listeners
// MPTCP by default); who names the proxy in the error.
func listenTCP(ctx context.Context, who, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w (is another process using the port?)", who, addr, err)
	}
	return ln, nil
}
