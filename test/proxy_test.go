package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/datapath"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// The proxy tests run "mptcpd-go proxy server" in the server namespace
// and "mptcpd-go proxy client" in the client namespace, with a digest
// sink (plain TCP) behind the server. Ports are fixed: every test has its
// own namespaces.
const (
	dataPort   = "7000"
	clientAddr = "127.0.0.1:1080"
	sinkAddr   = "127.0.0.1:9000"
)

// TestProxyTwoPaths: a transfer through client proxy → two paths (the
// second joined to the server's announced address) → server proxy →
// sink arrives intact, and each link carries a real share.
func TestProxyTwoPaths(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := harness.Pair(t, 2)
	l1, l2 := top.Links[0], top.Links[1]
	sink := newDigestSink(t, top.Server, sinkAddr)
	psk := writePSK(t, "two-paths")
	srv := startProxy(t, top.Server, "server", "--listen", l1.ServerV4.String()+":"+dataPort, "--to", sinkAddr,
		"--announce", l2.ServerV4.String(), "--psk-file", psk)
	srv.waitLog(t, "proxy server listening")
	cl := startProxy(t, top.Client, "client", "--listen", clientAddr, "--server", l1.ServerV4.String()+":"+dataPort,
		"--via", l1.ClientV4.String(), "--psk-file", psk)
	cl.waitLog(t, "proxy client listening")

	tx1, tx2 := txBytes(t, top.Client, l1.ClientIf), txBytes(t, top.Client, l2.ClientIf)
	const size = 48 << 20
	// Start writing only once the announced path joined, so both share.
	res := transfer(t, top.Client, clientAddr, size, transferOpts{pauseAt: 1, pause: func() {
		cl.waitLog(t, "subflow up", l2.ServerV4.String())
	}})
	if !res.ok() {
		t.Fatalf("transfer: %v", res)
	}
	d1, d2 := txBytes(t, top.Client, l1.ClientIf)-tx1, txBytes(t, top.Client, l2.ClientIf)-tx2
	t.Logf("tx bytes: %s %d, %s %d", l1.ClientIf, d1, l2.ClientIf, d2)
	for _, d := range []struct {
		ifname string
		n      uint64
	}{{l1.ClientIf, d1}, {l2.ClientIf, d2}} {
		if d.n < size/10 {
			t.Errorf("%s sent %d bytes of a %d-byte transfer, want at least 10%%", d.ifname, d.n, size)
		}
	}
	if got := sink.received.Load(); got != size {
		t.Errorf("sink received %d bytes, want %d", got, size)
	}
}

// TestProxyLinkDown: the link of the initial subflow goes down in the
// middle of a transfer; the transfer completes over the other one.
func TestProxyLinkDown(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := twoUplinks(t)
	l1, l2 := top.Links[0], top.Links[1]
	newDigestSink(t, top.Server, sinkAddr)
	srv := startProxy(t, top.Server, "server", "--listen", serviceAddr+":"+dataPort, "--to", sinkAddr)
	srv.waitLog(t, "proxy server listening")
	cl := startProxy(t, top.Client, "client", "--listen", clientAddr, "--server", serviceAddr+":"+dataPort,
		"--via", l1.ClientIf, "--via", l2.ClientIf)
	cl.waitLog(t, "proxy client listening")

	const size = 48 << 20
	res := transfer(t, top.Client, clientAddr, size, transferOpts{pauseAt: 8 << 20, pause: func() {
		top.Client.LinkDown(t, l1.ClientIf)
	}})
	if !res.ok() {
		t.Fatalf("transfer with %s down: %v", l1.ClientIf, res)
	}
}

// TestProxyBackup: a --backup path stays idle but for heartbeats while
// the primary is up, and carries the rest of the transfer once the
// primary goes down.
func TestProxyBackup(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := twoUplinks(t)
	l1, l2 := top.Links[0], top.Links[1]
	sink := newDigestSink(t, top.Server, sinkAddr)
	srv := startProxy(t, top.Server, "server", "--listen", serviceAddr+":"+dataPort, "--to", sinkAddr)
	srv.waitLog(t, "proxy server listening")
	cl := startProxy(t, top.Client, "client", "--listen", clientAddr, "--server", serviceAddr+":"+dataPort,
		"--via", l1.ClientIf, "--backup", l2.ClientIf)
	cl.waitLog(t, "proxy client listening")

	const half = 16 << 20
	var idle uint64
	tx2 := txBytes(t, top.Client, l2.ClientIf)
	res := transfer(t, top.Client, clientAddr, 2*half, transferOpts{pauseAt: half, pause: func() {
		// Wait for the first half to arrive: it must all have gone over
		// the primary.
		deadline := time.Now().Add(proxyTimeout)
		for sink.received.Load() < half && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		idle = txBytes(t, top.Client, l2.ClientIf) - tx2
		top.Client.LinkDown(t, l1.ClientIf)
	}})
	if !res.ok() {
		t.Fatalf("transfer: %v", res)
	}
	// Heartbeats (a PING a second) and the JOIN; far below one DATA frame
	// per second.
	const idleLimit = 64 << 10
	if idle > idleLimit {
		t.Errorf("backup %s sent %d bytes while the primary was up, want at most %d", l2.ClientIf, idle, idleLimit)
	}
	if took := txBytes(t, top.Client, l2.ClientIf) - tx2 - idle; took < half*9/10 {
		t.Errorf("backup %s sent %d bytes after the primary went down, want at least %d", l2.ClientIf, took, half*9/10)
	}
}

// TestProxyRefusesBadPeers: a client with the wrong key is refused and
// nothing reaches the sink; garbage, an oversized frame and a forged
// JOIN on the data-path port are refused with a clear log line; the
// server then still serves a good client.
func TestProxyRefusesBadPeers(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := harness.Pair(t, 1)
	l1 := top.Links[0]
	server := l1.ServerV4.String() + ":" + dataPort
	sink := newDigestSink(t, top.Server, sinkAddr)
	srv := startProxy(t, top.Server, "server", "--listen", server, "--to", sinkAddr, "--psk-file", writePSK(t, "right"))
	srv.waitLog(t, "proxy server listening")

	t.Run("wrong key", func(t *testing.T) {
		bad := startProxy(t, top.Client, "client", "--listen", "127.0.0.1:1081", "--server", server,
			"--psk-file", writePSK(t, "wrong"))
		bad.waitLog(t, "proxy client listening")
		if res := transfer(t, top.Client, "127.0.0.1:1081", 1<<20, transferOpts{}); res.ok() {
			t.Fatalf("transfer with the wrong key succeeded: %v", res)
		}
		bad.waitLog(t, "cannot set up the data path", "pre-shared key", "different pre-shared key?")
		// The client notices the server's MAC first and hangs up, so the
		// server sees the handshake end early.
		srv.waitLog(t, "subflow refused", "handshake failed")
		if n := sink.conns.Load(); n != 0 {
			t.Errorf("sink saw %d connections, want 0", n)
		}
	})

	t.Run("no key", func(t *testing.T) {
		bad := startProxy(t, top.Client, "client", "--listen", "127.0.0.1:1083", "--server", server)
		bad.waitLog(t, "proxy client listening")
		if res := transfer(t, top.Client, "127.0.0.1:1083", 1<<20, transferOpts{}); res.ok() {
			t.Fatalf("transfer without a key succeeded: %v", res)
		}
		bad.waitLog(t, "cannot set up the data path", "server requires a pre-shared key")
		if n := sink.conns.Load(); n != 0 {
			t.Errorf("sink saw %d connections, want 0", n)
		}
	})

	// raw sends b on a fresh TCP connection to the data-path port and
	// waits for the server to close it.
	raw := func(t *testing.T, b []byte) {
		t.Helper()
		c := dialIn(t, top.Client, server)
		_, _ = c.Write(b)
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	}
	t.Run("garbage", func(t *testing.T) {
		b := make([]byte, 4096)
		_, _ = rand.Read(b)
		b[0] = 0xff // an unknown frame type, whatever the rest
		raw(t, b)
		srv.waitLog(t, "subflow refused", "unknown frame type")
	})
	t.Run("oversized frame", func(t *testing.T) {
		// A CAPABLE of the largest length the header allows: 65535 body
		// bytes where 9 or 41 are valid.
		b := append([]byte{byte(datapath.TypeCapable), 0, 0xff, 0xff}, bytes.Repeat([]byte{1}, datapath.MaxBodySize)...)
		raw(t, b)
		srv.waitLog(t, "subflow refused", "CAPABLE length")
	})
	t.Run("forged join", func(t *testing.T) {
		// A real connection gives a valid token; the JOIN's final MAC is
		// forged.
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		var dc *datapath.Conn
		if err := top.Client.Do(func() error {
			var err error
			dc, err = datapath.Dial(ctx, &datapath.ClientConfig{Config: datapath.Config{PSK: []byte("right")}}, server)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer dc.Abort()
		token := dc.RemoteKey().Token()
		c := dialIn(t, top.Client, server)
		if err := datapath.Encode(c, &datapath.Join{Token: token, Nonce: 42, AddrID: 9}); err != nil {
			t.Fatal(err)
		}
		if _, err := datapath.Decode(c); err != nil {
			t.Fatalf("reading the server's JOIN reply: %v", err)
		}
		forged := bytes.Repeat([]byte{0xaa}, datapath.JoinAckMACSize)
		if err := datapath.Encode(c, &datapath.Join{Token: token, Nonce: 42, AddrID: 9, MAC: forged}); err != nil {
			t.Fatal(err)
		}
		if f, err := datapath.Decode(c); err == nil {
			t.Errorf("server answered a forged JOIN with %v, want the subflow closed", f.Type())
		}
		srv.waitLog(t, "subflow refused", "JOIN MAC does not verify")
	})
	t.Run("good client afterwards", func(t *testing.T) {
		good := startProxy(t, top.Client, "client", "--listen", clientAddr, "--server", server, "--psk-file", writePSK(t, "right"))
		good.waitLog(t, "proxy client listening")
		if res := transfer(t, top.Client, clientAddr, 4<<20, transferOpts{}); !res.ok() {
			t.Fatalf("transfer after the bad peers: %v", res)
		}
	})
	if n := srv.countLog("panic"); n != 0 {
		t.Errorf("server log mentions panic %d times", n)
	}
}

// TestProxyTransparent: nftables in the client namespace redirects
// connections to the server side's sink to the transparent client; the
// server delivers to the original destination when --allow covers it
// and refuses it otherwise. Both IPv4 and IPv6.
func TestProxyTransparent(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	nft := proxyNft(t)
	top := harness.Pair(t, 2)
	l1, l2 := top.Links[0], top.Links[1]
	// Allowed: link 1's server addresses. Not allowed: link 2's.
	sink := newDigestSink(t, top.Server, ":9000")
	srv := startProxy(t, top.Server, "server", "--listen", l1.ServerV4.String()+":"+dataPort,
		"--allow", l1.ServerV4.String()+"/32", "--allow", l1.V6Prefix.String())
	srv.waitLog(t, "proxy server listening")
	cl := startProxy(t, top.Client, "client", "--listen", "[::]:1082", "--server", l1.ServerV4.String()+":"+dataPort,
		"--transparent")
	cl.waitLog(t, "proxy client listening")

	rules := fmt.Sprintf(`table inet mptcpd_proxy {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr { %s, %s } tcp dport 9000 redirect to :1082
		ip6 daddr { %s, %s } tcp dport 9000 redirect to :1082
	}
}
`, l1.ServerV4, l2.ServerV4, l1.ServerV6, l2.ServerV6)
	file := filepath.Join(t.TempDir(), "proxy.nft")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if out, errOut, code, err := top.Client.Run(ctx, nft, "-f", file); err != nil || code != 0 {
		t.Fatalf("nft -f %s: exit %d, %v\n%s%s", file, code, err, out, errOut)
	}

	for _, tc := range []struct {
		name     string
		allowed  string
		refused  string
		wantConn uint64
	}{
		{"ipv4", net.JoinHostPort(l1.ServerV4.String(), "9000"), net.JoinHostPort(l2.ServerV4.String(), "9000"), 1},
		{"ipv6", net.JoinHostPort(l1.ServerV6.String(), "9000"), net.JoinHostPort(l2.ServerV6.String(), "9000"), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := transfer(t, top.Client, tc.allowed, 4<<20, transferOpts{}); !res.ok() {
				t.Fatalf("transfer to %s: %v", tc.allowed, res)
			}
			srv.waitLog(t, "connection open", "dst", tc.allowed)
			if res := transfer(t, top.Client, tc.refused, 1<<20, transferOpts{}); res.ok() {
				t.Fatalf("transfer to %s (not allowed) succeeded", tc.refused)
			}
			srv.waitLog(t, "destination not allowed", tc.refused)
			// The sink saw the allowed connections only.
			if n := sink.conns.Load(); n != tc.wantConn {
				t.Errorf("sink saw %d connections, want %d", n, tc.wantConn)
			}
		})
	}
}

// proxyNft returns the path of nft(8), skipping (or failing under
// MPTCPD_REQUIRE_KERNEL=1) when it is not installed.
func proxyNft(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nft")
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("nft(8) is needed to redirect connections to the transparent proxy (Debian package nftables): %v", err)
	if strings.TrimSpace(os.Getenv(harness.RequireKernelEnv)) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestProxyFromDaemon: the daemon runs a [[proxy]] client whose paths come
// from its interface files (link 1 active, link 2 backup), and a transfer
// through it arrives intact.
func TestProxyFromDaemon(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := twoUplinks(t)
	l1, l2 := top.Links[0], top.Links[1]
	newDigestSink(t, top.Server, sinkAddr)
	srv := startProxy(t, top.Server, "server", "--listen", serviceAddr+":"+dataPort, "--to", sinkAddr)
	srv.waitLog(t, "proxy server listening")

	dir := t.TempDir()
	main := filepath.Join(dir, "mptcpd-go.toml")
	writeTestFile(t, main, fmt.Sprintf(`control_socket = %q
[[proxy]]
role = "client"
listen = %q
server = "%s:%s"
`, filepath.Join(dir, "control.sock"), clientAddr, serviceAddr, dataPort))
	for name, text := range map[string]string{
		"10-active.toml": fmt.Sprintf("[match]\nname = %q\n[endpoint]\nflags = \"subflow\"\nalso_without_default_route = true\n", l1.ClientIf),
		"20-backup.toml": fmt.Sprintf("[match]\nname = %q\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nalso_without_default_route = true\n", l2.ClientIf),
	} {
		writeTestFile(t, filepath.Join(dir, "interfaces.d", name), text)
	}
	d := startCLI(t, top.Client, "daemon", "--config", main)
	d.waitLog(t, "paths from the interface files", `"paths": 2`)
	d.waitLog(t, "proxy client listening", l1.ClientIf, l2.ClientIf+" (backup)")
	if res := transfer(t, top.Client, clientAddr, 8<<20, transferOpts{}); !res.ok() {
		t.Fatalf("transfer through the daemon's proxy: %v", res)
	}
}
