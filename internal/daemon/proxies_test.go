package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"

	"github.com/mptcpd-go/mptcpd-go/datapath"
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

func TestProxyPaths(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/m.toml":                      {Data: []byte("mode = \"kernel\"\n")},
		"etc/interfaces.d/10-ignore.toml": {Data: []byte("ignore = true\n[match]\nname = \"docker*\"\n")},
		"etc/interfaces.d/20-lte.toml": {Data: []byte(
			"[match]\nname = \"wwan*\"\n[endpoint]\nflags = \"subflow\"\nmetered = true\nalso_without_default_route = true\n")},
		"etc/interfaces.d/30-wifi.toml": {Data: []byte(
			"[match]\nname = \"wlan*\"\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nalso_without_default_route = true\n")},
		"etc/interfaces.d/40-eth.toml": {Data: []byte(
			"[match]\nname = \"eth*\"\n[endpoint]\nflags = \"signal\"\n")},
	}
	cfg, err := policy.LoadFS(fsys, "/etc/m.toml")
	if err != nil {
		t.Fatal(err)
	}
	v4 := func(s string) []endpoints.Addr { return []endpoints.Addr{{Prefix: netip.MustParsePrefix(s)}} }
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		{Index: 1, Name: "lo", Kind: "device", Loopback: true, Addrs: v4("127.0.0.1/8"), DefaultV4: true},
		{Index: 2, Name: "wwan0", Kind: "device", Addrs: v4("100.64.0.2/24")},
		{Index: 3, Name: "eth0", Kind: "device", Addrs: v4("192.0.2.2/24"), DefaultV4: true},
		{Index: 4, Name: "eth1", Kind: "device", Addrs: v4("198.51.100.2/24")}, // no default route
		{Index: 5, Name: "wlan0", Kind: "device", Addrs: v4("203.0.113.2/24")},
		{Index: 6, Name: "docker0", Kind: "bridge", Addrs: v4("172.17.0.1/16"), DefaultV4: true},
		{Index: 7, Name: "eth2", Kind: "device", DefaultV4: true}, // no address
		{Index: 8, Name: "tun0", Kind: "tun", Addrs: v4("10.8.0.2/24"), DefaultV4: true},
	}}
	want := []datapath.Path{
		{Device: "eth0"},
		{Device: "wwan0", Backup: true},
		{Device: "wlan0", Backup: true},
	}
	if diff := cmp.Diff(want, ProxyPaths(cfg, snap), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("ProxyPaths (-want +got):\n%s", diff)
	}
}

// TestRunWithoutMPTCP: on a kernel without MPTCP the daemon refuses to
// start unless the policy declares proxies, which it then runs alone.
func TestRunWithoutMPTCP(t *testing.T) {
	noMPTCP := func() error { return fmt.Errorf("%w: this kernel was built without MPTCP", ErrNoMPTCP) }
	dir := t.TempDir()
	main := filepath.Join(dir, "mptcpd-go.toml")
	writeFile(t, main, "control_socket = \""+filepath.Join(dir, "ctl.sock")+"\"\n")
	err := Run(t.Context(), Options{ConfigPath: main, Logger: zap.NewNop(), CheckKernel: noMPTCP})
	if !errors.Is(err, ErrNoMPTCP) {
		t.Errorf("Run without MPTCP and without proxies = %v, want ErrNoMPTCP", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	writeFile(t, main, "control_socket = \""+filepath.Join(dir, "ctl.sock")+"\"\n"+
		"[[proxy]]\nrole = \"server\"\nlisten = \""+addr+"\"\nto = \"127.0.0.1:9\"\n")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: main, Logger: zap.NewNop(), CheckKernel: noMPTCP}) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended before its proxy listened: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy server never listened on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Lstat(filepath.Join(dir, "ctl.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a proxies-only daemon made a control socket (Lstat: %v); it has nothing to report", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
}
