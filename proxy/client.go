package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Listen is the local TCP address applications connect to, e.g.
	// "127.0.0.1:1080" (in transparent mode, the port nftables
	// redirects to).
	Listen string
	// Server is the proxy server's data-path address, HOST:PORT.
	Server string
	// Paths are the local paths of every data-path connection; the first
	// carries the initial subflow. Empty: one path the routing table
	// picks.
	Paths []datapath.Path
	// PSK is the server's pre-shared key, if it has one.
	PSK []byte
	// Transparent takes connections redirected by nftables and asks the
	// server for their original destination; connections that were not
	// redirected go to the server's default target.
	Transparent bool
	// Logger receives connection events; nil discards them.
	Logger *zap.Logger
}

// Client is the application end of the proxy: it accepts plain TCP
// connections and carries each over its own data-path connection to the
// Server.
type Client struct {
	cfg ClientConfig
	log *zap.Logger
	t   *tracker
	// listening, if set, learns the bound address (tests listen on
	// port 0).
	listening func(net.Addr)
}

// NewClient checks cfg; it does not listen yet (Run does).
func NewClient(cfg ClientConfig) (*Client, error) {
	if _, err := splitPort(cfg.Listen); err != nil {
		return nil, fmt.Errorf("proxy client: listen address %q: %w (want HOST:PORT, e.g. 127.0.0.1:1080)", cfg.Listen, err)
	}
	if p, err := splitPort(cfg.Server); err != nil || p == 0 {
		if err == nil {
			err = errors.New("port 0 cannot be connected to")
		}
		return nil, fmt.Errorf("proxy client: server address %q: %w (want HOST:PORT of the proxy server)", cfg.Server, err)
	}
	for i, p := range cfg.Paths {
		if !p.LocalAddr.IsValid() && p.Device == "" {
			return nil, fmt.Errorf("proxy client: path #%d has neither an interface nor an address", i+1)
		}
	}
	c := &Client{cfg: cfg, log: cfg.Logger, t: newTracker()}
	c.cfg.Paths = slices.Clone(cfg.Paths)
	c.cfg.PSK = slices.Clone(cfg.PSK)
	if c.log == nil {
		c.log = zap.NewNop()
	}
	return c, nil
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats { return c.t.stats() }

// Run listens on Listen and serves until ctx is done; then it closes the
// listener, aborts the connections still open and returns nil. It
// returns an error if it cannot listen.
func (c *Client) Run(ctx context.Context) error {
	// SO_ORIGINAL_DST needs a plain TCP socket, and applications gain
	// nothing from MPTCP on a local hop.
	ln, err := listenTCP(ctx, "proxy client", c.cfg.Listen)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	c.log.Info("proxy client listening", zap.Stringer("addr", ln.Addr()), zap.String("server", c.cfg.Server),
		zap.Strings("paths", pathNames(c.cfg.Paths)), zap.Bool("transparent", c.cfg.Transparent), zap.Bool("psk", len(c.cfg.PSK) > 0))
	if c.listening != nil {
		c.listening(ln.Addr())
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			_ = ln.Close()
			c.t.shutdown()
			if ctx.Err() != nil {
				c.log.Info("proxy client stopped")
				return nil
			}
			return fmt.Errorf("proxy client: accepting on %s: %w", c.cfg.Listen, err)
		}
		if !c.t.start() {
			_ = nc.Close()
			continue
		}
		go c.serve(ctx, nc.(*net.TCPConn))
	}
}

// serve carries one application connection to the server.
func (c *Client) serve(ctx context.Context, tc *net.TCPConn) {
	defer c.t.wg.Done()
	log := c.log.With(zap.Stringer("src", tc.RemoteAddr()))
	var dst netip.AddrPort
	if c.cfg.Transparent {
		dst = c.originalDst(tc, log)
	}
	if dst.IsValid() {
		log = log.With(zap.Stringer("dst", dst))
	} else {
		log = log.With(zap.String("dst", "default"))
	}
	dc, err := c.dial(ctx, log)
	if err != nil {
		c.t.refuse()
		if ctx.Err() == nil {
			log.Error("connection refused: cannot set up the data path to the proxy server",
				zap.String("server", c.cfg.Server), zap.Error(err))
		}
		_ = tc.SetLinger(0)
		_ = tc.Close()
		return
	}
	r := &relay{tc: tc, dc: dc}
	if !c.t.add(r) {
		return
	}
	// Queued before any application byte, in the same stream.
	if _, err := dc.Write(appendHeader(nil, dst)); err != nil {
		r.abort(fmt.Errorf("proxy client: sending the stream header: %w", err))
	}
	log.Info("connection open", zap.Int("subflows", len(dc.Stats().Subflows)))
	err = r.run()
	c.t.done(r)
	logEnd(log, r, err)
}

// dial opens the data-path connection; datapath.Dial starts it on
// whichever path reaches the server.
func (c *Client) dial(ctx context.Context, log *zap.Logger) (*datapath.Conn, error) {
	return datapath.Dial(ctx, &datapath.ClientConfig{
		Config: datapath.Config{PSK: c.cfg.PSK, JoinAnnounced: true, Logger: log},
		Paths:  c.cfg.Paths,
	}, c.cfg.Server)
}

// originalDst returns where a redirected connection was going, or the
// zero AddrPort (the default target) for one that was not redirected.
func (c *Client) originalDst(tc *net.TCPConn, log *zap.Logger) netip.AddrPort {
	od, err := originalDst(tc)
	if err != nil {
		log.Debug("no original destination; using the default target", zap.Error(err))
		return netip.AddrPort{}
	}
	local := tc.LocalAddr().(*net.TCPAddr).AddrPort()
	if od.Addr().Unmap() == local.Addr().Unmap() && od.Port() == local.Port() {
		return netip.AddrPort{} // connected to us directly
	}
	return od
}

// pathNames renders paths for logs.
func pathNames(ps []datapath.Path) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.Device
		if p.LocalAddr.IsValid() {
			s = p.LocalAddr.String()
		}
		if p.Backup {
			s += " (backup)"
		}
		out = append(out, s)
	}
	return out
}
