package harness

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// testTimeout bounds every network operation so a broken set-up fails
// quickly instead of hanging the test binary.
const testTimeout = 10 * time.Second

func TestPairConnectivity(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 2)

	tests := []struct {
		name  string
		link  int
		ipv6  bool
		mptcp bool
	}{
		{name: "link1/v4/tcp", link: 0},
		{name: "link2/v4/tcp", link: 1},
		{name: "link1/v6/tcp", link: 0, ipv6: true},
		{name: "link2/v6/tcp", link: 1, ipv6: true},
		{name: "link1/v4/mptcp", link: 0, mptcp: true},
		{name: "link2/v4/mptcp", link: 1, mptcp: true},
		{name: "link1/v6/mptcp", link: 0, ipv6: true, mptcp: true},
		{name: "link2/v6/mptcp", link: 1, ipv6: true, mptcp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := top.Links[tc.link]
			caddr, saddr := l.ClientV4, l.ServerV4
			if tc.ipv6 {
				caddr, saddr = l.ClientV6, l.ServerV6
			}
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()

			ln := listen(t, top.Server, netip.AddrPortFrom(saddr, 0), tc.mptcp)
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					t.Errorf("accept: %v", err)
					close(accepted)
					return
				}
				accepted <- c
			}()

			conn := dial(ctx, t, top.Client, caddr, ln.Addr().String(), tc.mptcp)
			if err := conn.SetDeadline(time.Now().Add(testTimeout)); err != nil {
				t.Fatalf("SetDeadline: %v", err)
			}
			srv, ok := <-accepted
			if !ok {
				t.Fatal("no connection accepted")
			}
			defer srv.Close()

			// The server must see the client address of this very link,
			// proving the traffic used the intended veth pair.
			gotPeer := srv.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
			if diff := cmp.Diff(caddr, gotPeer, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("peer address seen by server (-want +got):\n%s", diff)
			}
			for _, c := range []net.Conn{conn, srv} {
				got, err := c.(*net.TCPConn).MultipathTCP()
				if err != nil {
					t.Fatalf("MultipathTCP: %v", err)
				}
				if got != tc.mptcp {
					t.Errorf("%s side MultipathTCP() = %v, want %v", c.LocalAddr(), got, tc.mptcp)
				}
			}

			const msg = "hello over the veth\n"
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			if err := srv.SetDeadline(time.Now().Add(testTimeout)); err != nil {
				t.Fatalf("SetDeadline: %v", err)
			}
			got, err := io.ReadAll(srv)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if diff := cmp.Diff(msg, string(got)); diff != "" {
				t.Errorf("received data (-want +got):\n%s", diff)
			}
		})
	}
}

// listen opens a listener inside ns: MPTCP through the harness, plain TCP
// through Do directly (which also exercises Do).
func listen(t *testing.T, ns *NS, ap netip.AddrPort, mptcp bool) net.Listener {
	t.Helper()
	if mptcp {
		return ns.ListenMPTCP(t, ap.String())
	}
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ap.String())
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func dial(ctx context.Context, t *testing.T, ns *NS, local netip.Addr, raddr string, mptcp bool) net.Conn {
	t.Helper()
	if mptcp {
		c, err := ns.DialMPTCP(ctx, t, local.String(), raddr)
		if err != nil {
			t.Fatalf("DialMPTCP: %v", err)
		}
		return c
	}
	var c net.Conn
	err := ns.Do(func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
		var err error
		c, err = d.DialContext(ctx, "tcp", raddr)
		return err
	})
	if err != nil {
		t.Fatalf("dial in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestTopologyAddresses(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 3)

	tests := []struct {
		ns   *NS
		link func(Link) string
		want func(Link) []string
	}{
		{
			ns:   top.Client,
			link: func(l Link) string { return l.ClientIf },
			want: func(l Link) []string { return []string{l.ClientV4.String() + "/24", l.ClientV6.String() + "/64"} },
		},
		{
			ns:   top.Server,
			link: func(l Link) string { return l.ServerIf },
			want: func(l Link) []string { return []string{l.ServerV4.String() + "/24", l.ServerV6.String() + "/64"} },
		},
	}
	if diff := cmp.Diff([]string{"10.0.3.1", "fd00:3::2"},
		[]string{top.Links[2].ClientV4.String(), top.Links[2].ServerV6.String()}); diff != "" {
		t.Errorf("link 3 addresses (-want +got):\n%s", diff)
	}
	for _, tc := range tests {
		for _, l := range top.Links {
			ifname := tc.link(l)
			link, err := tc.ns.Handle.LinkByName(ifname)
			if err != nil {
				t.Fatalf("LinkByName(%s): %v", ifname, err)
			}
			if link.Attrs().OperState != netlink.OperUp {
				t.Errorf("%s oper state = %v, want up", ifname, link.Attrs().OperState)
			}
			if got, want := tc.ns.LinkIndex(t, ifname), link.Attrs().Index; got != want {
				t.Errorf("LinkIndex(%s) = %d, want %d", ifname, got, want)
			}
			addrs, err := tc.ns.Handle.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				t.Fatalf("AddrList(%s): %v", ifname, err)
			}
			var got []string
			for _, a := range addrs {
				if a.IP.IsLinkLocalUnicast() {
					continue
				}
				got = append(got, a.IPNet.String())
				if a.IP.To4() == nil && a.Flags&unix.IFA_F_TENTATIVE != 0 {
					t.Errorf("%s: %s is tentative despite NODAD", ifname, a.IPNet)
				}
			}
			if diff := cmp.Diff(tc.want(l), got); diff != "" {
				t.Errorf("addresses on %s in %s (-want +got):\n%s", ifname, tc.ns.Name, diff)
			}
		}
	}
}

func TestLinkAddrRouteHelpers(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 1)
	c := top.Client
	const ifname = "veth1c"

	c.AddAddr(t, ifname, "192.0.2.1/24")
	c.AddAddr(t, ifname, "2001:db8::1/64")
	c.DelAddr(t, ifname, "192.0.2.1/24")
	c.AddRoute(t, "198.51.100.0/24", "10.0.1.2")
	c.AddRoute(t, "2001:db8:1::/48", "fd00:1::2")
	c.AddDefaultRoute(t, ifname, "10.0.1.2")
	c.AddDefaultRoute(t, ifname, "fd00:1::2")

	link, err := c.Handle.LinkByName(ifname)
	if err != nil {
		t.Fatalf("LinkByName: %v", err)
	}
	addrs, err := c.Handle.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("AddrList: %v", err)
	}
	gotAddrs := map[string]bool{}
	for _, a := range addrs {
		gotAddrs[a.IPNet.String()] = true
	}
	wantAddrs := map[string]bool{"2001:db8::1/64": true, "192.0.2.1/24": false}
	for a, want := range wantAddrs {
		if gotAddrs[a] != want {
			t.Errorf("address %s present = %v, want %v", a, gotAddrs[a], want)
		}
	}

	routes := []struct {
		dst, wantGw string
	}{
		{dst: "198.51.100.7", wantGw: "10.0.1.2"},
		{dst: "2001:db8:1::7", wantGw: "fd00:1::2"},
		{dst: "203.0.113.9", wantGw: "10.0.1.2"},     // via the default route
		{dst: "2001:db8:ff::9", wantGw: "fd00:1::2"}, // via the default route
	}
	for _, r := range routes {
		got, err := c.Handle.RouteGet(net.ParseIP(r.dst))
		if err != nil {
			t.Errorf("RouteGet(%s): %v", r.dst, err)
			continue
		}
		if diff := cmp.Diff([]string{r.wantGw, ifname}, []string{got[0].Gw.String(), linkName(t, c, got[0].LinkIndex)}); diff != "" {
			t.Errorf("route to %s [gw dev] (-want +got):\n%s", r.dst, diff)
		}
	}

	// The same destinations must stay unroutable in the host namespace:
	// the helpers changed nothing there (no route to 198.51.100.0/24 via
	// our gateway can exist on the host).
	if hostRoutes, err := netlink.RouteGet(net.ParseIP("198.51.100.7")); err == nil {
		for _, r := range hostRoutes {
			if r.Gw.Equal(net.ParseIP("10.0.1.2")) {
				t.Errorf("host namespace has a route via the test gateway: %v", r)
			}
		}
	}

	c.LinkDown(t, ifname)
	if l, err := c.Handle.LinkByName(ifname); err != nil || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("after LinkDown: link %v, err %v; want down", l, err)
	}
	c.LinkUp(t, ifname)
	if l, err := c.Handle.LinkByName(ifname); err != nil || l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("after LinkUp: link %v, err %v; want up", l, err)
	}
}

func linkName(t *testing.T, ns *NS, index int) string {
	t.Helper()
	l, err := ns.Handle.LinkByIndex(index)
	if err != nil {
		t.Fatalf("LinkByIndex(%d): %v", index, err)
	}
	return l.Attrs().Name
}

func TestSysctl(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 1)
	hostForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatalf("reading host ip_forward: %v", err)
	}

	if got := top.Client.ReadSysctl(t, "net.mptcp.enabled"); got != "1" {
		t.Errorf("net.mptcp.enabled = %q in a fresh namespace, want 1", got)
	}

	tests := []struct {
		key, value string
		// serverKey is the same setting on the server, whose veth has a
		// different name.
		serverKey string
	}{
		{key: "net.mptcp.enabled", value: "0"},
		{key: "net.ipv4.ip_forward", value: "1"},
		{key: "net.mptcp.add_addr_timeout", value: "7"},
		{key: "net/ipv4/conf/veth1c/rp_filter", value: "2", serverKey: "net/ipv4/conf/veth1s/rp_filter"},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.key, "/", "."), func(t *testing.T) {
			serverKey := tc.key
			if tc.serverKey != "" {
				serverKey = tc.serverKey
			}
			before := top.Server.ReadSysctl(t, serverKey)
			if before == tc.value {
				t.Fatalf("server already has %s=%s; pick a value that is a change", serverKey, before)
			}
			top.Client.Sysctl(t, tc.key, tc.value)
			if diff := cmp.Diff(tc.value, top.Client.ReadSysctl(t, tc.key)); diff != "" {
				t.Errorf("client value after write (-want +got):\n%s", diff)
			}
			// Per-namespace: the other namespace must not see the change.
			if diff := cmp.Diff(before, top.Server.ReadSysctl(t, serverKey)); diff != "" {
				t.Errorf("server value changed by a client write (-want +got):\n%s", diff)
			}
		})
	}

	hostForwardAfter, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatalf("reading host ip_forward: %v", err)
	}
	if diff := cmp.Diff(string(hostForward), string(hostForwardAfter)); diff != "" {
		t.Errorf("host net.ipv4.ip_forward changed (-want +got):\n%s", diff)
	}

	if err := top.Client.writeSysctl("kernel.hostname", "x"); err == nil {
		t.Error("writing kernel.hostname succeeded, want refusal (global sysctl)")
	}
	if err := top.Client.writeSysctl("net.mptcp.no_such_key", "1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("writing a missing key: err = %v, want fs.ErrNotExist", err)
	}
}

func TestSysctlPath(t *testing.T) {
	// Pure string handling: no kernel needed.
	tests := []struct {
		key     string
		want    string
		wantErr bool
	}{
		{key: "net.mptcp.enabled", want: "/proc/sys/net/mptcp/enabled"},
		{key: "net/ipv4/conf/eth0.100/rp_filter", want: "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
		{key: "", wantErr: true},
		{key: "net..mptcp", wantErr: true},
		{key: "net/../../etc/passwd", wantErr: true},
		{key: "/net/mptcp", wantErr: true},
	}
	for _, tc := range tests {
		got, err := sysctlPath(tc.key)
		if (err != nil) != tc.wantErr {
			t.Errorf("sysctlPath(%q) error = %v, wantErr %v", tc.key, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("sysctlPath(%q) (-want +got):\n%s", tc.key, diff)
		}
	}
}

func TestLiteralTCPAddr(t *testing.T) {
	// Pure parsing: no kernel needed.
	tests := []struct {
		in       string
		needPort bool
		want     string
		wantErr  bool
	}{
		{in: "10.0.1.1:80", needPort: true, want: "10.0.1.1:80"},
		{in: "[fd00:1::1]:443", needPort: true, want: "[fd00:1::1]:443"},
		{in: ":0", needPort: true, want: ":0"},
		{in: "10.0.1.1", needPort: false, want: "10.0.1.1:0"},
		{in: "fd00:1::1", needPort: false, want: "[fd00:1::1]:0"},
		{in: "10.0.1.1", needPort: true, wantErr: true},
		{in: "localhost:80", needPort: true, wantErr: true},
		{in: "example.com:80", needPort: true, wantErr: true},
		{in: "10.0.1.1:http", needPort: true, wantErr: true},
		{in: "10.0.1.1:70000", needPort: true, wantErr: true},
	}
	for _, tc := range tests {
		got, err := literalTCPAddr(tc.in, tc.needPort)
		if (err != nil) != tc.wantErr {
			t.Errorf("literalTCPAddr(%q, %v) error = %v, wantErr %v", tc.in, tc.needPort, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tc.want, got.String()); diff != "" {
			t.Errorf("literalTCPAddr(%q, %v) (-want +got):\n%s", tc.in, tc.needPort, diff)
		}
	}
}

func TestRun(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	t.Run("pm_type", func(t *testing.T) {
		// Set a non-default value first, so reading it back proves the
		// process really ran inside the namespace.
		top.Client.Sysctl(t, "net.mptcp.pm_type", "1")
		stdout, stderr, code, err := top.Client.Run(ctx, "cat", "/proc/sys/net/mptcp/pm_type")
		if err != nil || code != 0 {
			t.Fatalf("Run(cat) = code %d, err %v, stderr %q", code, err, stderr)
		}
		if diff := cmp.Diff("1", strings.TrimSpace(stdout)); diff != "" {
			t.Errorf("pm_type seen by cat in the client (-want +got):\n%s", diff)
		}
		stdout, _, _, err = top.Server.Run(ctx, "cat", "/proc/sys/net/mptcp/pm_type")
		if err != nil {
			t.Fatalf("Run(cat) in server: %v", err)
		}
		if diff := cmp.Diff("0", strings.TrimSpace(stdout)); diff != "" {
			t.Errorf("pm_type seen by cat in the server (-want +got):\n%s", diff)
		}
	})

	t.Run("ip link", func(t *testing.T) {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Skip("ip(8) not installed")
		}
		tests := []struct {
			ns          *NS
			want, avoid []string
		}{
			{ns: top.Client, want: []string{"lo", "veth1c", "veth2c"}, avoid: []string{"veth1s", "veth2s"}},
			{ns: top.Server, want: []string{"lo", "veth1s", "veth2s"}, avoid: []string{"veth1c", "veth2c"}},
		}
		for _, tc := range tests {
			stdout, stderr, code, err := tc.ns.Run(ctx, "ip", "-o", "link", "show")
			if err != nil || code != 0 {
				t.Fatalf("Run(ip link) = code %d, err %v, stderr %q", code, err, stderr)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
				// "2: veth1c@if2: <...> ..." -> "veth1c"
				f := strings.Fields(line)
				if len(f) < 2 {
					continue
				}
				got = append(got, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("links in %s (-want +got):\n%s", tc.ns.Name, diff)
			}
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		tests := []struct {
			name     string
			args     []string
			wantCode int
			wantOut  string
			wantErr  bool
		}{
			{name: "true", args: []string{"true"}, wantCode: 0},
			{name: "exit 3", args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, wantCode: 3, wantOut: "out\n"},
			{name: "missing program", args: []string{"/nonexistent/program"}, wantCode: -1, wantErr: true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				stdout, _, code, err := top.Client.Run(ctx, tc.args[0], tc.args[1:]...)
				if (err != nil) != tc.wantErr {
					t.Fatalf("Run error = %v, wantErr %v", err, tc.wantErr)
				}
				if diff := cmp.Diff([]any{tc.wantCode, tc.wantOut}, []any{code, stdout}); diff != "" {
					t.Errorf("exit code and stdout (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestNamespacesRemovedAfterTest(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	var paths []string
	var veths []string
	t.Run("create", func(t *testing.T) {
		top := Pair(t, 2)
		extra := NewNS(t)
		for _, n := range []*NS{top.Client, top.Server, extra} {
			if !strings.HasPrefix(n.Name, NamePrefix) {
				t.Errorf("namespace name %q lacks prefix %q", n.Name, NamePrefix)
			}
			if _, err := os.Stat(n.Path()); err != nil {
				t.Fatalf("namespace %s missing while in use: %v", n.Path(), err)
			}
			paths = append(paths, n.Path())
		}
		for _, l := range top.Links {
			veths = append(veths, l.ClientIf, l.ServerIf)
		}
	})
	if len(paths) != 3 {
		t.Fatalf("sub-test recorded %d namespaces, want 3", len(paths))
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists after the sub-test (err %v)", p, err)
		}
	}
	// Nothing may have leaked into the host namespace either.
	for _, name := range veths {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s exists in the host namespace", name)
		}
	}
}

func TestDoKeepsCallerNamespace(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	n := NewNS(t)
	// Not /proc/self/ns/net: that is the main thread's, and the main
	// thread may be running a parallel test's Do at this very moment.
	hostIno := callerNSInode(t)

	var inside uint64
	for range 20 {
		err := n.Do(func() error {
			var err error
			inside, err = threadNSInode()
			return err
		})
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if want := nsInode(t, n.Path()); inside != want {
		t.Errorf("inode inside Do = %d, want the namespace's %d", inside, want)
	}
	if inside == hostIno {
		t.Errorf("Do ran in the host namespace")
	}
	// The calling goroutine, whatever thread it is on, is untouched.
	if got := callerNSInode(t); got != hostIno {
		t.Errorf("caller thread is in netns inode %d, want %d as before Do", got, hostIno)
	}

	wantErr := errors.New("boom")
	if err := n.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do error = %v, want %v", err, wantErr)
	}
	func() {
		defer func() {
			if r := recover(); r != "panic inside" {
				t.Errorf("recovered %v, want the panic from fn", r)
			}
		}()
		_ = n.Do(func() error { panic("panic inside") })
	}()
	if err := n.Do(func() error { runtime.Goexit(); return nil }); err == nil {
		t.Error("Do with runtime.Goexit returned nil error")
	}
}

func threadNSInode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// callerNSInode returns the namespace of the thread running the caller.
func callerNSInode(t *testing.T) uint64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ino, err := threadNSInode()
	if err != nil {
		t.Fatalf("stat /proc/thread-self/ns/net: %v", err)
	}
	return ino
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestKernelAvailable(t *testing.T) {
	RequireKernel(t)
	ok, reason := KernelAvailable()
	if diff := cmp.Diff([]any{true, ""}, []any{ok, reason}); diff != "" {
		t.Errorf("KernelAvailable() (-want +got):\n%s", diff)
	}
}

func TestPairRejectsBadLinkCount(t *testing.T) {
	RequireKernel(t)
	for _, links := range []int{0, MaxLinks + 1} {
		ft := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Pair(ft, links)
		}()
		<-done
		if !ft.fatal {
			t.Errorf("Pair(%d) did not fail the test", links)
		}
	}
}

// fatalRecorder turns Fatalf into a recorded flag plus runtime.Goexit, so
// tests can check that a helper rejects bad input.
type fatalRecorder struct {
	testing.TB
	fatal bool
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = true
	f.TB.Logf("(expected) "+format, args...)
	runtime.Goexit()
}

func TestMPTCPErrors(t *testing.T) {
	RequireKernel(t)
	t.Parallel()
	top := Pair(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	tests := []struct {
		name         string
		laddr, raddr string
	}{
		{name: "nothing listening", raddr: "10.0.1.2:1"},
		{name: "hostname instead of IP", raddr: "localhost:80"},
		{name: "unroutable from the namespace", raddr: "192.0.2.1:80"},
		{name: "local address not on this host", laddr: "10.0.1.2", raddr: "10.0.1.2:1"},
		{name: "missing port", raddr: "10.0.1.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := top.Client.DialMPTCP(ctx, t, tc.laddr, tc.raddr)
			if err == nil {
				t.Fatalf("DialMPTCP(%q, %q) succeeded (local %v), want error", tc.laddr, tc.raddr, c.LocalAddr())
			}
			t.Logf("expected error: %v", err)
		})
	}

	t.Run("MPTCP disabled", func(t *testing.T) {
		// With net.mptcp.enabled=0 Go silently falls back to TCP; the
		// harness must notice instead of handing out a TCP socket.
		n := NewNS(t)
		n.Sysctl(t, "net.mptcp.enabled", "0")
		ln, err := n.listenMPTCP("127.0.0.1:0")
		if err == nil {
			_ = ln.Close()
			t.Fatal("listenMPTCP succeeded with MPTCP disabled, want error")
		}
		t.Logf("expected error: %v", err)
	})
}
