package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// connectionsOut is the part of `connections -j` the test checks.
type connectionsOut struct {
	Connections []struct {
		Token        string `json:"token"`
		Local        string `json:"local"`
		Remote       string `json:"remote"`
		State        string `json:"state"`
		SubflowCount int    `json:"subflow_count"`
		Subflows     []struct {
			Local   string  `json:"local"`
			Remote  string  `json:"remote"`
			State   string  `json:"state"`
			Initial bool    `json:"initial"`
			Backup  bool    `json:"backup"`
			RTTus   *uint32 `json:"rtt_us"`
		} `json:"subflows"`
	} `json:"connections"`
	Listeners []string `json:"listeners"`
}

// TestConnections: a live MPTCP connection with a second, backup subflow
// opened through the userspace path manager. `connections -j` must list it
// on both ends with the token MPTCP_INFO gives and both subflows.
func TestConnections(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := harness.Pair(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c := harness.OpenTwoSubflows(ctx, t, top)
	conn, srv := c.Client, c.Server
	clientAddr, serverAddr := c.ClientAddr, c.ServerAddr
	harness.Exchange(t, conn, srv, "over two subflows")
	second := harness.Unmap(c.Second.Local)

	for _, side := range []struct {
		name          string
		ns            *harness.NS
		sock          net.Conn
		local, remote netip.AddrPort
		subflows      [][2]string // local, remote
		listener      bool
	}{
		{"client", top.Client, conn, clientAddr, serverAddr,
			[][2]string{{clientAddr.String(), serverAddr.String()}, {second.String(), serverAddr.String()}}, false},
		{"server", top.Server, srv, serverAddr, clientAddr,
			[][2]string{{serverAddr.String(), clientAddr.String()}, {serverAddr.String(), second.String()}}, true},
	} {
		t.Run(side.name, func(t *testing.T) {
			info, err := readMPTCPInfo(side.sock)
			if err != nil {
				t.Fatalf("MPTCP_INFO: %v", err)
			}
			token := fmt.Sprintf("%08x", info.Token)
			// Both subflows are established (the events said so); the
			// poll only covers the kernel's own bookkeeping lag.
			var out connectionsOut
			var raw string
			deadline := time.Now().Add(testTimeout)
			for {
				raw = mustMptcpdgo(t, side.ns, "connections", "-j")
				out = connectionsOut{}
				if err := json.Unmarshal([]byte(raw), &out); err != nil {
					t.Fatalf("connections -j is not JSON: %v\n%s", err, raw)
				}
				if n := subflowsOf(out, token); n == 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			var found bool
			for _, c := range out.Connections {
				if c.Token != token {
					continue
				}
				found = true
				if c.Local != side.local.String() || c.Remote != side.remote.String() || c.State != "ESTAB" {
					t.Errorf("connection %s: %s %s -> %s, want ESTAB %s -> %s", token, c.State, c.Local, c.Remote, side.local, side.remote)
				}
				if c.SubflowCount != 2 || len(c.Subflows) != 2 {
					t.Fatalf("connection %s: subflow_count %d with %d subflows, want 2:\n%s", token, c.SubflowCount, len(c.Subflows), raw)
				}
				for i, want := range side.subflows {
					sf := c.Subflows[i]
					if sf.Local != want[0] || sf.Remote != want[1] || sf.State != "ESTAB" {
						t.Errorf("subflow %d: %s %s -> %s, want ESTAB %s -> %s", i, sf.State, sf.Local, sf.Remote, want[0], want[1])
					}
					if sf.Initial != (i == 0) || sf.Backup != (i == 1) {
						t.Errorf("subflow %d: initial %v backup %v, want %v %v", i, sf.Initial, sf.Backup, i == 0, i == 1)
					}
					if sf.RTTus == nil {
						t.Errorf("subflow %d: no rtt_us", i)
					}
				}
			}
			if !found {
				t.Fatalf("no connection with MPTCP_INFO's token %s:\n%s", token, raw)
			}
			if want := fmt.Sprintf("0.0.0.0:%d", serverAddr.Port()); side.listener != strings.Contains(strings.Join(out.Listeners, " "), want) {
				t.Errorf("listeners %v: listener %s listed should be %v", out.Listeners, want, side.listener)
			}

			// The text form names the same token and both subflows.
			text := mustMptcpdgo(t, side.ns, "connections")
			t.Logf("connections:\n%s", text)
			for _, want := range []string{token + "  ESTAB", side.subflows[1][0]} {
				if !strings.Contains(text, want) {
					t.Errorf("connections text lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// subflowsOf is the number of subflows listed for token.
func subflowsOf(out connectionsOut, token string) int {
	for _, c := range out.Connections {
		if c.Token == token {
			return len(c.Subflows)
		}
	}
	return 0
}

// TestConnectionsNoNetns: -n with a namespace that does not exist fails
// as the other commands do.
func TestConnectionsNoNetns(t *testing.T) {
	r := run(t, nil, cli(t), "-n", "mptcpdgo-does-not-exist", "connections")
	if r.Code != exitUsage || !strings.Contains(r.Stderr, `cannot open network namespace "mptcpdgo-does-not-exist"`) {
		t.Errorf("connections in a missing namespace: %v", r)
	}
}
