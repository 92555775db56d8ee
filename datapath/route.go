package datapath

import (
	"context"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
)

// Defaults for ClientConfig fields left zero.
const (
	DefaultRejoinDelay    = time.Second
	DefaultRejoinMaxDelay = 30 * time.Second
)

// routeKey names one (remote address, local path) combination of a client
// connection; addrID is the announced address id, -1 for the address Dial
// was given.
type routeKey struct{ addrID, path int }

// route is a combination the client keeps a subflow on, as MPTCP's
// fullmesh path manager does.
type route struct {
	key    routeKey
	addr   string // host:port to dial
	backup bool
	upOnce bool // had a subflow once: worth re-opening after failures
}

// dialInfo is what a connection made by Dial keeps to open subflows later.
type dialInfo struct {
	paths                []Path
	rejoinMin, rejoinMax time.Duration // rejoinMin < 0: never re-open
}

// paths returns the client's local paths: those given to Dial, else one
// unbound path.
func (c *Conn) paths() []Path {
	if c.dial != nil {
		return c.dial.paths
	}
	return []Path{{}}
}

// addRoute registers a new route unless its key is taken. Caller holds mu.
func (c *Conn) addRoute(key routeKey, addr string, backup bool) *route {
	if c.routes[key] != nil {
		return nil
	}
	if c.routes == nil {
		c.routes = make(map[routeKey]*route)
	}
	rt := &route{key: key, addr: addr, backup: backup}
	c.routes[key] = rt
	return rt
}

// startRoute opens rt in the background after delay. Counted in wg while
// mu is held and the connection is not torn down, so Close's Wait sees
// it. Caller holds mu.
func (c *Conn) startRoute(rt *route, delay time.Duration) {
	if c.tornDown || c.closed {
		return
	}
	c.wg.Add(1)
	go c.runRoute(rt, delay)
}

// reopen re-opens the route of a subflow that died, if rejoining is on.
// Caller holds mu.
func (c *Conn) reopen(rt *route) {
	if c.dial == nil || c.dial.rejoinMin < 0 || c.routes[rt.key] != rt {
		return
	}
	c.startRoute(rt, c.dial.rejoinMin)
}

// retries reports whether a failed attempt on rt is retried: routes that
// worked once, and the paths given to Dial, are; an announced address that
// a path never reached is skipped. Caller holds mu.
func (c *Conn) retries(rt *route) bool {
	return c.routes[rt.key] == rt && c.dial != nil && c.dial.rejoinMin >= 0 &&
		(rt.upOnce || rt.key.addrID < 0)
}

func (c *Conn) runRoute(rt *route, delay time.Duration) {
	defer c.wg.Done()
	log := c.log.With(zap.String("addr", rt.addr), zap.Int("path", rt.key.path))
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-c.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		c.mu.Lock()
		live := c.routes[rt.key] == rt && !c.tornDown && !c.closed
		c.mu.Unlock()
		if !live {
			return
		}
		err := c.openRoute(context.Background(), rt)
		if err == nil {
			return
		}
		c.mu.Lock()
		retry := c.retries(rt)
		if !retry && c.routes[rt.key] == rt {
			delete(c.routes, rt.key) // a new ADD_ADDR may try again
		}
		var lo, hi time.Duration
		if c.dial != nil {
			lo, hi = c.dial.rejoinMin, c.dial.rejoinMax
		}
		c.mu.Unlock()
		if !retry {
			log.Warn("joining path failed; skipped", zap.Error(err))
			return
		}
		delay = min(max(2*delay, lo), hi)
		log.Info("joining path failed; retrying", zap.Duration("in", delay), zap.Error(err))
	}
}

// openRoute dials rt from its local path and joins the new subflow.
func (c *Conn) openRoute(ctx context.Context, rt *route) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	p := Path{}
	if ps := c.paths(); rt.key.path < len(ps) {
		p = ps[rt.key.path]
	}
	nc, err := dialPath(ctx, p, rt.addr)
	if err != nil {
		return err
	}
	if err := c.join(ctx, nc, rt.backup, rt.key.addrID, rt); err != nil {
		_ = nc.Close()
		return fmt.Errorf("datapath: joining %s (local %v, device %q): %w", rt.addr, p.LocalAddr, p.Device, err)
	}
	return nil
}

func dialPath(ctx context.Context, p Path, server string) (net.Conn, error) {
	var d net.Dialer
	if p.LocalAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: p.LocalAddr.AsSlice(), Zone: p.LocalAddr.Zone()}
	}
	if p.Device != "" {
		d.Control = bindToDevice(p.Device)
	}
	nc, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("datapath: dialing %s (local %v, device %q): %w", server, p.LocalAddr, p.Device, err)
	}
	return nc, nil
}
