package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// Timeouts of the client side.
const (
	// dialTimeout bounds setting up a connection (all its subflows).
	dialTimeout = 10 * time.Second
	// recvGrace is added to a transfer's duration before the client
	// gives up reading: a hung transfer fails instead of hanging.
	recvGrace = 20 * time.Second
	// resultTimeout bounds the wait for the server's report after the
	// client has read everything.
	resultTimeout = 15 * time.Second
)

// The variants compared.
const (
	varTCP      = "tcp"
	varMPTCP    = "kernel-mptcp"
	varDatapath = "datapath"
)

// dialer opens connections of one variant from the client namespace.
type dialer struct {
	topo *topology
	dp   dpOptions
}

// dial opens a connection of the given variant to the server's link-1
// address. It runs in the client namespace.
func (d *dialer) dial(ctx context.Context, variant string) (streamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	l1, l2 := d.topo.pair.Links[0], d.topo.pair.Links[1]
	var c streamConn
	err := d.topo.pair.Client.Do(func() error {
		switch variant {
		case varTCP, varMPTCP:
			port := portTCP
			nd := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(l1.ClientV4, 0))}
			if variant == varMPTCP {
				port = portMPTCP
				nd.SetMultipathTCP(true)
			}
			nc, err := nd.DialContext(ctx, "tcp4", netip.AddrPortFrom(l1.ServerV4, uint16(port)).String())
			if err != nil {
				return err
			}
			c = nc.(*net.TCPConn)
			return nil
		case varDatapath:
			cfg := &datapath.ClientConfig{Config: d.dp.config(), Paths: []datapath.Path{
				{LocalAddr: l1.ClientV4, Device: l1.ClientIf},
				{LocalAddr: l2.ClientV4, Device: l2.ClientIf},
			}}
			dc, err := datapath.Dial(ctx, cfg, netip.AddrPortFrom(l1.ServerV4, portDatapath).String())
			if err != nil {
				return err
			}
			c = dc
			return nil
		}
		return fmt.Errorf("unknown variant %q", variant)
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", variant, err)
	}
	return c, nil
}

// readRec is one Read on the receiver: when (since the first byte) and
// how much.
type readRec struct {
	At time.Duration
	N  int
}

// transferSpec is one measured transfer, server to client.
type transferSpec struct {
	Variant  string
	ID       uint64
	Duration time.Duration
	SHA      bool
	// Track records every read (for the stall analysis).
	Track bool
	// CutAfter, with Cut set, calls Cut that long after the first byte.
	CutAfter time.Duration
	Cut      func() error
}

// transferResult is what one transfer measured.
type transferResult struct {
	Variant string
	Bytes   int64
	// Elapsed runs from the first byte received to EOF.
	Elapsed time.Duration
	// Client and Server CPU time of the whole process (each side its
	// own), from the request to the end of the transfer.
	Client, Server cpuTimes
	// LinkRx are the bytes the client's interfaces received, per link.
	LinkRx []uint64
	// PatternOK: every byte matched the expected stream.
	PatternOK bool
	// SHA of what the client read and what the server sent (with
	// spec.SHA).
	SHAClient, SHAServer string
	// Multipath: for kernel MPTCP whether the socket really is MPTCP;
	// for the datapath the number of subflows.
	Multipath string
	Reads     []readRec
	// CutAt is when the link went down, since the first byte.
	CutAt time.Duration
	Err   error
}

// Mbps is the goodput in Mbit/s.
func (r *transferResult) Mbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e6
}

// SHAEqual reports whether both SHA-256 sums were taken and match.
func (r *transferResult) SHAEqual() bool { return r.SHAClient != "" && r.SHAClient == r.SHAServer }

// transfer runs one transfer: the server sends for spec.Duration, the
// client reads everything, checks it and closes.
func transfer(ctx context.Context, d *dialer, srv *serverProc, pat pattern, spec transferSpec) (res *transferResult) {
	res = &transferResult{Variant: spec.Variant}
	dead := 0 // datapath subflows dead at the end of the transfer
	rx0, err := d.topo.rxBytes()
	if err != nil {
		res.Err = err
		return res
	}
	c, err := d.dial(ctx, spec.Variant)
	if err != nil {
		res.Err = err
		return res
	}
	defer c.Close()
	switch cc := c.(type) {
	case *net.TCPConn:
		if spec.Variant == varMPTCP {
			mp, err := cc.MultipathTCP()
			res.Multipath = fmt.Sprintf("mptcp=%v", mp)
			if err != nil {
				res.Multipath = "mptcp=?"
			}
		}
	case *datapath.Conn:
		n := len(cc.Stats().Subflows)
		defer func() {
			res.Multipath = fmt.Sprintf("%d subflows, %d dead at end", n, dead)
		}()
	}
	// A hung transfer fails at the deadline, Ctrl-C at once.
	_ = c.SetDeadline(time.Now().Add(spec.Duration + recvGrace))
	stopAfter := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stopAfter()

	cpu0 := processCPU()
	req := request{Op: opSend, SHA: spec.SHA, ID: spec.ID, Duration: spec.Duration}
	if _, err := c.Write(req.encode()); err != nil {
		res.Err = fmt.Errorf("send request: %w", err)
		return res
	}
	var h hash.Hash
	if spec.SHA {
		h = sha256.New()
	}
	buf := make([]byte, ioSize)
	res.PatternOK = true
	var first time.Time
	type cutResult struct {
		at  time.Duration
		err error
	}
	var cutTimer *time.Timer
	cutDone := make(chan cutResult, 1)
	var off uint64
	for {
		n, rerr := c.Read(buf)
		now := time.Now()
		if n > 0 {
			if first.IsZero() {
				first = now
				if spec.Cut != nil {
					t0 := first
					cutTimer = time.AfterFunc(spec.CutAfter, func() {
						at := time.Since(t0)
						cutDone <- cutResult{at, spec.Cut()}
					})
				}
			}
			b := buf[:n]
			if res.PatternOK && !pat.check(off, b) {
				res.PatternOK = false
			}
			if h != nil {
				h.Write(b)
			}
			off += uint64(n)
			if spec.Track {
				res.Reads = append(res.Reads, readRec{At: now.Sub(first), N: n})
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = fmt.Errorf("read after %d bytes: %w", off, rerr)
			}
			if !first.IsZero() {
				res.Elapsed = now.Sub(first)
			}
			break
		}
	}
	res.Bytes = int64(off)
	if dc, ok := c.(*datapath.Conn); ok {
		// Before Close, which ends every subflow.
		for _, s := range dc.Stats().Subflows {
			if s.Dead {
				dead++
			}
		}
	}
	if h != nil {
		res.SHAClient = hex.EncodeToString(h.Sum(nil))
	}
	if cutTimer != nil {
		if cutTimer.Stop() {
			err = errors.Join(err, errors.New("the transfer ended before the link cut"))
		} else {
			// The cut started; it is one netlink call.
			select {
			case cr := <-cutDone:
				res.CutAt = cr.at
				err = errors.Join(err, cr.err)
			case <-time.After(5 * time.Second):
				err = errors.Join(err, errors.New("the link cut did not finish"))
			}
		}
	}
	cerr := c.Close()
	res.Client = processCPU().sub(cpu0)
	if err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if rx1, rerr := d.topo.rxBytes(); rerr == nil {
		for i := range rx1 {
			res.LinkRx = append(res.LinkRx, rx1[i]-rx0[i])
		}
	}
	m, serr := srv.result(ctx, spec.ID, resultTimeout)
	if serr != nil {
		err = errors.Join(err, fmt.Errorf("server: %w", serr))
	} else {
		res.Server = cpuTimes{time.Duration(m.UserNs), time.Duration(m.SysNs)}
		res.SHAServer = m.SHA
		if m.Err != "" {
			err = errors.Join(err, fmt.Errorf("server: %s", m.Err))
		}
		if m.Bytes != res.Bytes {
			err = errors.Join(err, fmt.Errorf("server sent %d bytes, client read %d", m.Bytes, res.Bytes))
		}
	}
	if !res.PatternOK {
		err = errors.Join(err, errors.New("received bytes differ from the sent stream"))
	}
	res.Err = err
	return res
}
