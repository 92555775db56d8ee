package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// holdTimeout bounds the wait for the server to hold every idle
// connection.
const holdTimeout = 20 * time.Second

// memResult is the memory measurement: N idle datapath connections.
type memResult struct {
	N int
	// Opened connections, of which TwoSubflows had both subflows.
	Opened, TwoSubflows int
	OpenTime            time.Duration
	// Before and after opening, each after a forced GC.
	ClientBefore, ClientAfter memSnapshot
	ServerBefore, ServerAfter memSnapshot
	Err                       error
}

// measureMem opens n idle datapath connections, each with two
// subflows, and measures both processes before and after.
func measureMem(ctx context.Context, d *dialer, srv *serverProc, n int) *memResult {
	r := &memResult{N: n}
	var err error
	if r.ClientBefore, err = takeMem(); err != nil {
		r.Err = err
		return r
	}
	sb, err := srv.mem(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	r.ServerBefore = snapshotOf(sb)

	conns := make([]*datapath.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Abort()
		}
	}()
	req := request{Op: opHold}.encode()
	start := time.Now()
	for range n {
		if ctx.Err() != nil {
			r.Err = ctx.Err()
			return r
		}
		c, err := d.dial(ctx, varDatapath)
		if err != nil {
			r.Err = fmt.Errorf("connection %d: %w", len(conns)+1, err)
			break
		}
		dc := c.(*datapath.Conn)
		conns = append(conns, dc)
		_ = dc.SetWriteDeadline(time.Now().Add(dialTimeout))
		if _, err := dc.Write(req); err != nil {
			r.Err = fmt.Errorf("connection %d: request: %w", len(conns), err)
			break
		}
		_ = dc.SetWriteDeadline(time.Time{})
		if len(dc.Stats().Subflows) == 2 {
			r.TwoSubflows++
		}
	}
	r.OpenTime = time.Since(start)
	r.Opened = len(conns)
	if r.Opened == 0 {
		return r
	}
	deadline := time.Now().Add(holdTimeout)
	for {
		m, err := srv.mem(ctx)
		if err != nil {
			r.Err = errors.Join(r.Err, err)
			return r
		}
		if m.Holding >= int64(r.Opened) {
			break
		}
		if time.Now().After(deadline) {
			r.Err = errors.Join(r.Err, fmt.Errorf("the server holds %d of %d connections after %v", m.Holding, r.Opened, holdTimeout))
			return r
		}
		sleep(ctx, 200*time.Millisecond)
	}
	// A heartbeat round, so that every subflow did its periodic work.
	sleep(ctx, 1500*time.Millisecond)
	if r.ClientAfter, err = takeMem(); err != nil {
		r.Err = errors.Join(r.Err, err)
	}
	sa, err := srv.mem(ctx)
	if err != nil {
		r.Err = errors.Join(r.Err, err)
	}
	r.ServerAfter = snapshotOf(sa)
	runtime.KeepAlive(conns)
	return r
}

func snapshotOf(m serverMessage) memSnapshot {
	return memSnapshot{RSS: m.RSS, HeapAlloc: m.HeapAlloc, StackInuse: m.StackInuse, Goroutines: m.Goroutines}
}

// perConn is (after - before) / n for each figure, in KiB (goroutines
// as a count).
func perConn(before, after memSnapshot, n int) (rssKiB, heapKiB, stackKiB, goroutines float64) {
	f := func(b, a float64) float64 { return (a - b) / float64(n) }
	return f(float64(before.RSS), float64(after.RSS)) / 1024,
		f(float64(before.HeapAlloc), float64(after.HeapAlloc)) / 1024,
		f(float64(before.StackInuse), float64(after.StackInuse)) / 1024,
		f(float64(before.Goroutines), float64(after.Goroutines))
}
