package datapath

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"go.uber.org/zap"
)

// AnnounceAddr sends ADD_ADDR for ap under id (1-255) with its MAC, so a
// client configured with JoinAnnounced joins it. Port 0 means the port of
// the first subflow.
func (c *Conn) AnnounceAddr(id uint8, ap netip.AddrPort) error {
	f := &AddAddr{ID: id, Addr: ap.Addr().Unmap(), Port: ap.Port()}
	f.MAC = AddAddrMAC(c.local, c.remote, f.ID, f.Addr, f.Port)
	return c.queueControl(f)
}

// RemoveAddr sends REMOVE_ADDR for the given ids; the peer closes the
// subflows it joined to them (their data is reinjected elsewhere).
func (c *Conn) RemoveAddr(ids ...uint8) error {
	return c.queueControl(&RemoveAddr{IDs: ids})
}

func (c *Conn) queueControl(f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return fmt.Errorf("datapath: %v: %w", f.Type(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("datapath: sending %v: %w", f.Type(), c.err)
	}
	c.ctrlAny = append(c.ctrlAny, b)
	c.notify()
	return nil
}

// addAddr handles an ADD_ADDR: a client with JoinAnnounced joins the
// address once its MAC verifies. Caller holds mu.
func (c *Conn) addAddr(f *AddAddr) {
	log := c.log.With(zap.Uint8("id", f.ID), zap.Stringer("addr", f.Addr), zap.Uint16("port", f.Port))
	if !VerifyMAC(AddAddrMAC(c.remote, c.local, f.ID, f.Addr, f.Port), f.MAC) {
		log.Warn("ignoring ADD_ADDR with missing or wrong MAC")
		return
	}
	if !c.isClient || !c.cfg.JoinAnnounced || c.tornDown || c.joined[f.ID] {
		log.Debug("not joining announced address")
		return
	}
	port := f.Port
	if port == 0 {
		if ta, ok := c.first.nc.RemoteAddr().(*net.TCPAddr); ok {
			port = uint16(ta.Port)
		}
	}
	if c.joined == nil {
		c.joined = make(map[uint8]bool)
	}
	c.joined[f.ID] = true
	// Counted in wg while mu is held and the connection is not torn down,
	// so Close's Wait sees it.
	c.wg.Add(1)
	go c.joinAnnounced(f.ID, netip.AddrPortFrom(f.Addr, port), log)
}

func (c *Conn) joinAnnounced(id uint8, ap netip.AddrPort, log *zap.Logger) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", ap.String())
	if err == nil {
		err = c.join(ctx, nc, false, int(id))
		if err != nil {
			_ = nc.Close()
		}
	}
	if err != nil {
		log.Warn("joining announced address failed", zap.Error(err))
		c.mu.Lock()
		delete(c.joined, id)
		c.mu.Unlock()
	}
}

// SetBackup changes the priority of subflow id (as in Stats) on both
// ends: it sends PRIO on that subflow (RFC 8684 MP_PRIO) and applies the
// flag locally. Backup subflows carry data only when no active one lives.
func (c *Conn) SetBackup(id int, backup bool) error {
	b, err := AppendFrame(nil, &Prio{Backup: backup})
	if err != nil {
		return fmt.Errorf("datapath: PRIO: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sf := range c.subflows {
		if sf.id == id {
			sf.backup = backup
			sf.ctrl = append(sf.ctrl, b)
			c.notify()
			return nil
		}
	}
	return fmt.Errorf("datapath: PRIO: no live subflow %d", id)
}
