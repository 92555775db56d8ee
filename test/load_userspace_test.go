package test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

// TestLoadUserspaceEventFlood: in userspace mode with the MPTCP event
// socket at the kernel's minimum buffer, a burst of new connections
// overflows it; the path manager notices (events_lost), rebuilds its state
// from sock_diag, and every connection still ends with its second subflow.
func TestLoadUserspaceEventFlood(t *testing.T) {
	t.Parallel()
	u := newUSScenario(t, "mode = \"userspace\"\npreset = \"throughput\"\n")
	d := u.s.start(t, "MPTCPD_TEST_NETLINK_RCVBUF=1")
	d.waitReady(t)

	l1 := u.top.Links[0]
	ln := u.top.Server.ListenMPTCP(t, "0.0.0.0:0")
	server := netip.AddrPortFrom(l1.ServerV4, ln.Addr().(*net.TCPAddr).AddrPort().Port())
	// The server echoes one byte: data makes each connection fully
	// established at the MPTCP level, which the kernel requires before
	// it opens a subflow.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go func() {
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err == nil {
					_, _ = c.Write(b[:])
				}
			}()
		}
	}()
	const conns = 200
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	dials := make(chan struct{}, conns)
	for range conns {
		dials <- struct{}{}
	}
	close(dials)
	var mu sync.Mutex
	var clients []net.Conn
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range dials {
				c, err := u.top.Client.DialMPTCP(ctx, t, l1.ClientV4.String()+":0", server.String())
				if err == nil {
					var b [1]byte
					_ = c.SetDeadline(time.Now().Add(testTimeout))
					if _, err = c.Write([]byte{1}); err == nil {
						_, err = io.ReadFull(c, b[:])
					}
				}
				if err != nil {
					t.Errorf("connection to %s: %v", server, err)
					return
				}
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, c := range clients {
		t.Cleanup(func() { _ = c.Close() })
	}
	if t.Failed() {
		return
	}

	st := d.waitStatus(t, "lost events and a rebuild", func(st daemon.Status) bool {
		return st.PathManager != nil && st.PathManager.EventsLost > 0 && st.PathManager.Rebuilds >= 2
	})
	t.Logf("events %d, lost %d, rebuilds %d", st.PathManager.Events, st.PathManager.EventsLost, st.PathManager.Rebuilds)
	// Every connection ends with two subflows, whatever events were lost.
	d.waitFor(t, "two subflows on every connection", func() (bool, string) {
		n, err := subflowsPerConn(u.top.Client.Name)
		if err != nil {
			return false, err.Error()
		}
		two := 0
		for _, k := range n {
			if k == 2 {
				two++
			}
		}
		return len(n) == conns && two == conns, fmt.Sprintf("connections with two subflows: %d of %d", two, len(n))
	})
}

// subflowsPerConn counts the subflows of each MPTCP connection of a
// namespace, by local token, as sock_diag lists them.
func subflowsPerConn(netns string) (map[uint32]int, error) {
	dc, err := diag.Dial(&diag.Config{NetNS: netns})
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	sfs, err := dc.Subflows()
	if err != nil {
		return nil, err
	}
	n := make(map[uint32]int)
	for _, sf := range sfs {
		n[sf.TokenLocal]++
	}
	return n, nil
}
