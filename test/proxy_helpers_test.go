package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// proxyTimeout bounds one proxied transfer. Transfers run through a
// race-enabled binary on a loaded machine, and the data path's failover
// takes a few seconds, so it is generous; no test asserts on time.
const proxyTimeout = 120 * time.Second

// proxyProc is a running "mptcpd-go proxy ..." process.
type proxyProc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
}

// startProxy starts "mptcpd-go proxy role args..." inside ns. It is stopped
// with SIGTERM (then SIGKILL) when the test ends, and its log is shown
// if the test failed.
func startProxy(t *testing.T, ns *harness.NS, role string, args ...string) *proxyProc {
	t.Helper()
	return startCLI(t, ns, append([]string{"proxy", role}, args...)...)
}

// startCLI starts "mptcpd-go args..." inside ns, as startProxy does.
func startCLI(t *testing.T, ns *harness.NS, args ...string) *proxyProc {
	t.Helper()
	name := strings.Join(args, " ")
	p := &proxyProc{name: name, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(cli(t), args...)
	p.cmd.Env = subprocessEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	// Started from a thread in ns, so the process lives there.
	if err := ns.Do(p.cmd.Start); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, indent(p.stderr.String()))
		}
		checkNoRace(t, name, p.stderr.String())
	})
	return p
}

// stop ends the process: SIGTERM, and SIGKILL if it does not exit.
func (p *proxyProc) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", p.name, code)
		}
	case <-time.After(testTimeout):
		t.Errorf("%s did not stop within %v of SIGTERM; killing it", p.name, testTimeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitLog waits until the process logged a line containing all of words.
func (p *proxyProc) waitLog(t *testing.T, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		for line := range strings.SplitSeq(p.stderr.String(), "\n") {
			if containsAll(line, words) {
				return line
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before logging %q:\n%s", p.name, p.cmd.ProcessState, words, indent(p.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q within %v:\n%s", p.name, words, testTimeout, indent(p.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countLog counts the lines containing all of words.
func (p *proxyProc) countLog(words ...string) int {
	n := 0
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		if containsAll(line, words) {
			n++
		}
	}
	return n
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// digestSink is a plain TCP server that reads each connection to EOF,
// answers with the SHA-256 of what it read and closes.
type digestSink struct {
	ln       net.Listener
	received atomic.Uint64 // bytes, all connections
	conns    atomic.Uint64
}

func newDigestSink(t *testing.T, ns *harness.NS, addr string) *digestSink {
	t.Helper()
	s := &digestSink{}
	if err := ns.Do(func() error {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		var err error
		s.ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("sink on %s: %v", addr, err)
	}
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(proxyTimeout))
				h := sha256.New()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					h.Write(buf[:n])
					s.received.Add(uint64(n))
					if err != nil {
						if err != io.EOF {
							return
						}
						break
					}
				}
				_, _ = c.Write(h.Sum(nil))
			}()
		}
	}()
	return s
}

// transferResult is what one application connection saw.
type transferResult struct {
	sent, reply []byte // SHA-256 of the data sent, and what came back
	err         error
}

// ok reports whether the sink's digest came back equal to the sent one.
func (r transferResult) ok() bool { return r.err == nil && bytes.Equal(r.sent, r.reply) }

func (r transferResult) String() string {
	return fmt.Sprintf("sent sha256 %x, got back %x, error %v", r.sent, r.reply, r.err)
}

// transferOpts shapes a transfer: pause is called once after pauseAt
// bytes were written (e.g. to take a link down mid-transfer).
type transferOpts struct {
	pauseAt int
	pause   func()
}

// transfer connects from ns to addr, sends size random bytes, half-closes
// and reads the reply: through the proxies and the digest sink, the
// reply is the SHA-256 of the data only if every byte and both
// half-closes crossed.
func transfer(t *testing.T, ns *harness.NS, addr string, size int, o transferOpts) transferResult {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, testTimeout)
		return err
	}); err != nil {
		return transferResult{err: fmt.Errorf("connecting to %s: %w", addr, err)}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(proxyTimeout))
	h := sha256.New()
	chunk := make([]byte, 256<<10)
	var res transferResult
	for written := 0; written < size; {
		n := min(len(chunk), size-written)
		_, _ = rand.Read(chunk[:n])
		h.Write(chunk[:n])
		if _, err := c.Write(chunk[:n]); err != nil {
			res.err = fmt.Errorf("writing at byte %d: %w", written, err)
			break
		}
		if o.pause != nil && written < o.pauseAt && written+n >= o.pauseAt {
			o.pause()
		}
		written += n
	}
	res.sent = h.Sum(nil)
	if res.err != nil {
		return res
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		res.err = err
		return res
	}
	res.reply, res.err = io.ReadAll(c)
	return res
}

// txBytes is the transmitted byte counter of ifname in ns.
func txBytes(t *testing.T, ns *harness.NS, ifname string) uint64 {
	t.Helper()
	l, err := ns.Handle.LinkByName(ifname)
	if err != nil {
		t.Fatalf("%s in %s: %v", ifname, ns.Name, err)
	}
	return l.Attrs().Statistics.TxBytes
}

// serviceAddr is the proxy server's data-path address in the two-uplink
// topology: on the server's loopback, routed over both links, so a path
// bound to either client interface reaches it.
const serviceAddr = "10.9.9.9"

// twoUplinks builds a client with two links to the server, and the
// server's serviceAddr reachable over both (link 1 preferred).
func twoUplinks(t *testing.T) *harness.Topology {
	t.Helper()
	top := harness.Pair(t, 2)
	top.Server.AddAddr(t, "lo", serviceAddr+"/32")
	dst := netip.MustParsePrefix(serviceAddr + "/32")
	for i, l := range top.Links {
		r := &netlink.Route{
			Dst:       &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)},
			Gw:        l.ServerV4.AsSlice(),
			LinkIndex: top.Client.LinkIndex(t, l.ClientIf),
			Priority:  10 * (i + 1),
		}
		if err := top.Client.Handle.RouteAdd(r); err != nil {
			t.Fatalf("route to %s via %s: %v", serviceAddr, l.ClientIf, err)
		}
	}
	return top
}

// writePSK writes a key file readable by its owner only.
func writePSK(t *testing.T, key string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(name, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// dialIn opens a plain TCP connection from ns to addr, with testTimeout
// as its deadline; it is closed when the test ends.
func dialIn(t *testing.T, ns *harness.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, testTimeout)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	return c
}
