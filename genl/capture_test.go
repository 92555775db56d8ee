//go:build capture

package genl

// TestCaptureKernelCorpus regenerates testdata/fuzz/*/kernel-<release>-*
// from the running kernel. It changes the network namespace it runs in
// (addresses on lo, MPTCP endpoints and limits), so it refuses to run unless
// that namespace has no interface but lo. Run it as root in a scratch
// namespace:
//
//	go test -c -tags capture -o /tmp/genl-capture.test ./genl
//	cd genl && unshare -n /tmp/genl-capture.test -test.run TestCaptureKernelCorpus -test.v
//
// then review the diff of testdata/ (file names include the kernel release;
// the tests in kernel_corpus_test.go expect the 6.18 captures).

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestCaptureKernelCorpus(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil || len(ifs) != 1 || ifs[0].Name != "lo" {
		t.Fatalf("refusing to run outside a scratch network namespace (interfaces %v, %v); use unshare -n", ifs, err)
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	release = strings.Join(strings.SplitN(release, ".", 3)[:2], ".") // "6.18"

	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Logf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(target, name string, vals ...any) {
		t.Helper()
		dir := filepath.Join("testdata", "fuzz", target)
		must(os.MkdirAll(dir, 0o755))
		s := "go test fuzz v1\n"
		for _, v := range vals {
			switch v := v.(type) {
			case byte:
				s += fmt.Sprintf("byte(%q)\n", v)
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			}
		}
		must(os.WriteFile(filepath.Join(dir, "kernel-"+release+"-"+name), []byte(s), 0o644))
	}

	ip("link", "set", "lo", "up")
	for _, a := range []string{"10.0.1.1/24", "10.0.2.1/24", "10.0.3.1/24", "10.0.4.1/24"} {
		ip("addr", "add", a, "dev", "lo")
	}
	for _, a := range []string{"2001:db8:1::1/64", "2001:db8:2::1/64"} {
		ip("-6", "addr", "add", a, "dev", "lo", "nodad")
	}
	ip("mptcp", "limits", "set", "subflow", "4", "add_addr_accepted", "4")

	conn, err := genetlink.Dial(&netlink.Config{Strict: true})
	must(err)
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, familyName)
	msgs, err := conn.Execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETFAMILY, Version: 1},
		Data:   mustEncode(ae),
	}, unix.GENL_ID_CTRL, netlink.Request)
	must(err)
	write("FuzzDecodeFamily", "mptcp_pm", msgs[0].Data)

	c, err := newClient(conn)
	must(err)
	defer c.Close()
	lo, err := net.InterfaceByName("lo")
	must(err)
	must(c.AddEndpoint(Endpoint{ID: 4, Addr: netip.MustParseAddr("10.0.4.1"), Port: 10200, Flags: FlagSignal | FlagBackup, Ifindex: lo.Index}))
	must(c.AddEndpoint(Endpoint{ID: 5, Addr: netip.MustParseAddr("2001:db8:2::5"), Flags: FlagSubflow | FlagFullmesh}))
	ip("mptcp", "endpoint", "add", "::ffff:10.0.4.6", "id", "6", "subflow") // the client would send AF_INET
	msgs, err = conn.Execute(genetlink.Message{Header: genetlink.Header{Command: uint8(CmdGetAddr), Version: familyVersion}},
		c.fam.id, netlink.Request|netlink.Dump)
	must(err)
	for i, name := range []string{"ipv4-port-ifindex", "ipv6", "ipv4-mapped"} {
		write("FuzzDecodeEndpointMessage", name, msgs[i].Data)
	}
	msgs, err = conn.Execute(genetlink.Message{Header: genetlink.Header{Command: uint8(CmdGetLimits), Version: familyVersion}},
		c.fam.id, netlink.Request)
	must(err)
	write("FuzzDecodeLimitsMessage", "limits", msgs[0].Data)
	must(c.FlushEndpoints())

	// Events: keep the first event of each shape.
	sub, err := genetlink.Dial(&netlink.Config{Strict: true})
	must(err)
	must(sub.JoinGroup(c.fam.groups[eventGroupName]))
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msgs, _, err := sub.Receive()
			if err != nil {
				return
			}
			mu.Lock()
			for _, m := range msgs {
				if name := eventShape(m.Header.Command, m.Data); !seen[name] {
					seen[name] = true
					write("FuzzDecodeEvent", name, m.Header.Command, m.Data)
				}
			}
			mu.Unlock()
		}
	}()

	// run connects over MPTCP to srv (listening on lis) with the signal
	// endpoint sig (and sigPort with a port), switches the endpoints to
	// backup, removes them and closes.
	run := func(lis, srv, sig, sigPort string) {
		ip("mptcp", "endpoint", "add", sig, "dev", "lo", "signal")
		if sigPort != "" {
			ip("mptcp", "endpoint", "add", sigPort, "dev", "lo", "signal", "port", "10100")
		}
		time.Sleep(200 * time.Millisecond)
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err := lc.Listen(context.Background(), "tcp", lis)
		must(err)
		go func() {
			if s, err := ln.Accept(); err == nil {
				io.Copy(io.Discard, s)
				s.Close()
			}
		}()
		var d net.Dialer
		d.SetMultipathTCP(true)
		cc, err := d.Dial("tcp", srv)
		must(err)
		cc.Write([]byte("hello"))
		time.Sleep(time.Second)
		ip("mptcp", "endpoint", "change", "id", "1", "backup")
		ip("mptcp", "endpoint", "change", "id", "2", "backup")
		time.Sleep(500 * time.Millisecond)
		ip("mptcp", "endpoint", "delete", "id", "0", sig)
		ip("mptcp", "endpoint", "flush")
		time.Sleep(500 * time.Millisecond)
		cc.Close()
		ln.Close()
		time.Sleep(500 * time.Millisecond)
	}
	run("0.0.0.0:8080", "10.0.1.1:8080", "10.0.2.1", "10.0.3.1")
	run("[::]:8081", "[2001:db8:1::1]:8081", "2001:db8:2::1", "")
	run(":8082", "10.0.1.1:8082", "10.0.2.1", "")         // IPv4-mapped on the server side
	run("10.0.1.1:8083", "10.0.1.1:8083", "10.0.2.1", "") // subflows to 10.0.2.1 are refused
	sub.Close()
	<-done
	t.Logf("captured %d event shapes", len(seen))
}

// eventShape names an event by type, address kind and notable attributes,
// e.g. "SF_CLOSED-ipv4-error".
func eventShape(cmd uint8, b []byte) string {
	f, err := decodeEventFields(EventType(cmd), b)
	if err != nil {
		return fmt.Sprintf("%s-undecodable", EventType(cmd))
	}
	name := EventType(cmd).String()
	a := f.Local.Addr()
	if !a.IsValid() {
		a = f.Remote.Addr()
	}
	switch {
	case a.Is4In6():
		name += "-ipv4mapped"
	case a.Is6():
		name += "-ipv6"
	case a.Is4():
		name += "-ipv4"
	}
	if f.Present.Has(AttrServerSide) {
		name += "-server"
	}
	if f.Present.Has(AttrError) {
		name += "-error"
	}
	if f.Local.Port() == 10100 || f.Remote.Port() == 10100 {
		name += "-port"
	}
	return name
}
