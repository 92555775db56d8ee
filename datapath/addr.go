package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"slices"

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
// address from each of its paths once the MAC verifies. Caller holds mu.
func (c *Conn) addAddr(f *AddAddr) {
	log := c.log.With(zap.Uint8("id", f.ID), zap.Stringer("addr", f.Addr), zap.Uint16("port", f.Port))
	if !VerifyMAC(AddAddrMAC(c.remote, c.local, f.ID, f.Addr, f.Port), f.MAC) {
		log.Warn("ignoring ADD_ADDR with missing or wrong MAC")
		return
	}
	if !c.isClient || !c.cfg.JoinAnnounced || c.tornDown {
		log.Debug("not joining announced address")
		return
	}
	port := f.Port
	if port == 0 {
		if ta, ok := c.first.nc.RemoteAddr().(*net.TCPAddr); ok {
			port = uint16(ta.Port)
		}
	}
	addr := netip.AddrPortFrom(f.Addr, port).String()
	for i, p := range c.paths() {
		if rt := c.addRoute(routeKey{int(f.ID), i}, addr, p.Backup); rt != nil {
			c.startRoute(rt, 0)
		}
	}
}

// removeAddr handles a REMOVE_ADDR: subflows joined to those addresses
// close for good (their data is reinjected elsewhere). Caller holds mu.
func (c *Conn) removeAddr(ids []uint8) {
	for _, s := range slices.Clone(c.subflows) {
		if s.remoteAddrID >= 0 && slices.Contains(ids, uint8(s.remoteAddrID)) {
			s.route = nil
			c.failSubflow(s, fmt.Errorf("peer removed address id %d", s.remoteAddrID))
		}
	}
	for k := range c.routes {
		if k.addrID >= 0 && slices.Contains(ids, uint8(k.addrID)) {
			delete(c.routes, k)
		}
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
			sf.ctrl = append(sf.ctrl, b...)
			c.notify()
			return nil
		}
	}
	return fmt.Errorf("datapath: PRIO: no live subflow %d", id)
}
