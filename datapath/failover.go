package datapath

import (
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Stale-subflow detection, modelled on the kernel's: a subflow whose path
// went dark does not error for minutes (TCP keeps retransmitting), so
// waiting for DeadAfter would stall the stream for seconds. Instead, while
// data flows every subflow is PINGed every StaleAfter/2; one that leaves a
// PING unanswered for max(StaleAfter, 4 RTT) -- and, on TCP, whose kernel
// agrees (RTO backoff, or no ACK for as long with segments in flight) --
// becomes stale: its unacknowledged DATA is reinjected on the others and
// it gets no new data, but it stays open. Its PONG makes it fresh again;
// DeadAfter without any frame still kills it.

// monitor sends PINGs, detects stale and dead subflows and repeats the
// DATA_ACK. It ticks every Heartbeat while idle and every StaleAfter/4
// while data flows.
func (c *Conn) monitor() {
	defer c.wg.Done()
	t := time.NewTimer(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.monitorWake:
		case <-t.C:
		}
		c.refreshKernelInfo()
		c.mu.Lock()
		next := c.tick(time.Now())
		c.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// refreshKernelInfo reads TCP_INFO of every TCP subflow while data
// flows, without holding mu during the syscalls.
func (c *Conn) refreshKernelInfo() {
	c.mu.Lock()
	var subs []*subflow
	if c.fast {
		subs = slices.Clone(c.subflows)
	}
	c.mu.Unlock()
	infos := make([]kernelInfo, len(subs))
	oks := make([]bool, len(subs))
	for i, sf := range subs {
		if sf.tcp != nil {
			infos[i], oks[i] = tcpInfo(sf.tcp)
		}
	}
	c.mu.Lock()
	for i, sf := range subs {
		if oks[i] {
			sf.ki, sf.kiOK = infos[i], true
		}
	}
	c.mu.Unlock()
}

// tick does one round of monitoring and returns when the next is due.
// Caller holds mu.
func (c *Conn) tick(now time.Time) time.Duration {
	if c.tornDown {
		return c.cfg.Heartbeat
	}
	active := c.cfg.StaleAfter > 0 &&
		(c.snd.Una() != c.snd.end() || now.Sub(c.lastData) < c.cfg.Heartbeat)
	c.fast = active
	every, next := c.cfg.Heartbeat, c.cfg.Heartbeat
	if active {
		every, next = min(every, c.cfg.StaleAfter/2), min(next, c.cfg.StaleAfter/4)
	}
	subs := slices.Clone(c.subflows)
	for _, sf := range subs {
		if silent := now.Sub(sf.lastRecv); silent > c.cfg.DeadAfter {
			c.failSubflow(sf, fmt.Errorf("%w: subflow %d silent for %v", ErrSubflowDead, sf.id, silent.Round(time.Millisecond)))
			continue
		}
		if now.Sub(sf.lastPing) >= every {
			sf.ctrl, _ = AppendFrame(sf.ctrl, &Ping{Timestamp: uint64(now.Sub(c.epoch))})
			sf.lastPing = now
			if sf.probeSent.IsZero() {
				sf.probeSent = now
			}
			sf.kick.fire()
		}
		if c.cfg.StaleAfter > 0 && !sf.stale && c.isStale(sf, now) && c.othersFresh(sf) {
			c.markStale(sf, now)
		}
	}
	if c.gotData && now.Sub(c.ackRepeat) >= c.cfg.Heartbeat {
		c.ackRepeat = now
		c.requestAck() // repeat the ACK in case one was lost
	}
	return max(next, time.Millisecond)
}

// isStale reports whether sf left a PING unanswered for too long and, on
// TCP, the kernel sees the path stall too (so that a PONG merely queued
// behind data on a slow but working path does not count). Caller holds mu.
func (c *Conn) isStale(sf *subflow, now time.Time) bool {
	if sf.probeSent.IsZero() {
		return false
	}
	limit := max(c.cfg.StaleAfter, 4*max(sf.rtt, sf.ki.rtt))
	if now.Sub(sf.probeSent) <= limit {
		return false
	}
	if sf.kiOK && c.fast {
		return sf.ki.retransmits > 0 || (sf.ki.unacked > 0 && sf.ki.lastAck > limit)
	}
	return true
}

// othersFresh reports whether another live subflow is not stale, i.e.
// reinjecting sf's data somewhere would help. Caller holds mu.
func (c *Conn) othersFresh(sf *subflow) bool {
	for _, s := range c.subflows {
		if s != sf && !s.stale {
			return true
		}
	}
	return false
}

// markStale reinjects sf's unacknowledged data elsewhere and stops
// scheduling on it, without closing it. Caller holds mu.
func (c *Conn) markStale(sf *subflow, now time.Time) {
	sf.stale, sf.staleSince = true, now
	lost := c.snd.Reinject(sf.id)
	// Frames not yet taken by the writer are dropped: their ranges were
	// just queued for reinjection.
	sf.data, sf.pending = sf.data[:0], 0
	c.log.Warn("subflow stale; reinjecting its data elsewhere", zap.Int("subflow", sf.id),
		zap.Duration("unanswered", now.Sub(sf.probeSent)), zap.Int("reinjected ranges", len(lost)))
	if c.gotData {
		c.requestAck() // the last one may be stuck on sf
	}
	c.notify()
}

// pong handles a PONG: RTT sample, and proof that sf delivers in both
// directions. Caller holds mu.
func (c *Conn) pong(sf *subflow, f *Pong, now time.Time) {
	sentAt := c.epoch.Add(time.Duration(f.Timestamp))
	if rtt := now.Sub(sentAt); rtt >= 0 && rtt < time.Hour {
		sf.rtt = rtt
	}
	if !sf.probeSent.IsZero() && !sentAt.Before(sf.probeSent) {
		sf.probeSent = time.Time{}
		if sf.lastPing.After(sentAt) {
			sf.probeSent = sf.lastPing // a later PING is still out
		}
	}
	if sf.stale && !sentAt.Before(sf.staleSince) {
		sf.stale = false
		c.log.Info("subflow fresh again", zap.Int("subflow", sf.id), zap.Duration("stale for", now.Sub(sf.staleSince)))
		c.notify()
	}
}
