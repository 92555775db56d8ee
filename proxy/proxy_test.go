package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

func TestHeaderRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		dst  netip.AddrPort
		want []byte
	}{
		{"default", netip.AddrPort{}, []byte{'M', 'P', 1, 0, 0}},
		{"ipv4", netip.MustParseAddrPort("192.0.2.7:443"), []byte{'M', 'P', 1, 4, 6, 192, 0, 2, 7, 1, 187}},
		{"ipv4-mapped is sent as ipv4", netip.MustParseAddrPort("[::ffff:192.0.2.7]:443"), []byte{'M', 'P', 1, 4, 6, 192, 0, 2, 7, 1, 187}},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::1]:80"),
			[]byte{'M', 'P', 1, 6, 18, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendHeader(nil, tt.dst)
			if diff := cmp.Diff(tt.want, b); diff != "" {
				t.Fatalf("appendHeader (-want +got):\n%s", diff)
			}
			// Trailing application bytes must stay unread.
			r := bytes.NewReader(append(b, "payload"...))
			got, err := readHeader(r)
			if err != nil {
				t.Fatal(err)
			}
			want := netip.AddrPortFrom(tt.dst.Addr().Unmap(), tt.dst.Port())
			if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
				t.Errorf("readHeader (-want +got):\n%s", diff)
			}
			if r.Len() != len("payload") {
				t.Errorf("readHeader left %d bytes, want %d", r.Len(), len("payload"))
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "reading 5 header bytes"},
		{"short", []byte{'M', 'P', 1}, "reading 5 header bytes"},
		{"magic", []byte("GET / HTTP/1.1\r\n"), "magic"},
		{"version", []byte{'M', 'P', 2, 0, 0}, "version 2"},
		{"kind", []byte{'M', 'P', 1, 9, 0}, "unknown destination kind 9"},
		{"length", []byte{'M', 'P', 1, 4, 18}, "kind 4 with 18 body bytes, want 6"},
		{"default with body", []byte{'M', 'P', 1, 0, 6}, "kind 0 with 6 body bytes"},
		{"truncated body", []byte{'M', 'P', 1, 4, 6, 10, 0}, "reading destination"},
		{"port 0", []byte{'M', 'P', 1, 4, 6, 10, 0, 0, 1, 0, 0}, "not connectable"},
		{"unspecified", []byte{'M', 'P', 1, 4, 6, 0, 0, 0, 0, 0, 80}, "not connectable"},
		// 0.0.0.0 reaches the server's own loopback services.
		{"ipv4-mapped unspecified", []byte{'M', 'P', 1, 6, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 80}, "not connectable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readHeader(bytes.NewReader(tt.in))
			if !errors.Is(err, ErrBadHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("readHeader(%q) = %v, want ErrBadHeader containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in      string
		backup  bool
		want    datapath.Path
		wantErr string
	}{
		{in: "eth0", want: datapath.Path{Device: "eth0"}},
		{in: "wwan0", backup: true, want: datapath.Path{Device: "wwan0", Backup: true}},
		{in: "192.0.2.1", want: datapath.Path{LocalAddr: netip.MustParseAddr("192.0.2.1")}},
		{in: "::ffff:192.0.2.1", want: datapath.Path{LocalAddr: netip.MustParseAddr("192.0.2.1")}},
		{in: "2001:db8::1", backup: true, want: datapath.Path{LocalAddr: netip.MustParseAddr("2001:db8::1"), Backup: true}},
		{in: "", wantErr: "neither"},
		{in: "a-very-long-interface-name", wantErr: "neither"},
		{in: "eth0/1", wantErr: "neither"},
		{in: "0.0.0.0", wantErr: "unicast"},
		{in: "ff02::1", wantErr: "unicast"},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in, tt.backup)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePath(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
			t.Errorf("ParsePath(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestReadPSKFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    []byte
		wantErr string
	}{
		{name: "plain", content: "secret", mode: 0o600, want: []byte("secret")},
		{name: "newline trimmed", content: "secret\n", mode: 0o600, want: []byte("secret")},
		{name: "crlf trimmed", content: "secret\r\n", mode: 0o640, want: []byte("secret")},
		{name: "only one newline trimmed", content: "secret\n\n", mode: 0o600, want: []byte("secret\n")},
		{name: "empty", content: "", mode: 0o600, wantErr: "is empty"},
		{name: "just a newline", content: "\n", mode: 0o600, wantErr: "is empty"},
		{name: "world readable", content: "secret", mode: 0o644, wantErr: "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(name, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(name, tt.mode); err != nil { // umask
				t.Fatal(err)
			}
			got, err := ReadPSKFile(name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadPSKFile = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadPSKFile (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := ReadPSKFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestNewServerErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ServerConfig
		wantErr string
	}{
		{"no listen", ServerConfig{To: "127.0.0.1:80"}, "listen address"},
		{"listen without port", ServerConfig{Listen: "127.0.0.1"}, "listen address"},
		{"bad to", ServerConfig{Listen: ":7000", To: "nowhere"}, "destination"},
		{"to port 0", ServerConfig{Listen: ":7000", To: "127.0.0.1:0"}, "port 0"},
		{"bad announce", ServerConfig{Listen: ":7000", Announce: []string{"eth0"}}, "announce \"eth0\""},
		{"wildcard announce", ServerConfig{Listen: ":7000", Announce: []string{"0.0.0.0"}}, "wildcard"},
		{"announce port 0", ServerConfig{Listen: ":7000", Announce: []string{"192.0.2.1:0"}}, "port other than 0"},
		{"bad allow", ServerConfig{Listen: ":7000", Allow: []netip.Prefix{{}}}, "prefix #1"},
	}
	for _, tt := range tests {
		if _, err := NewServer(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: NewServer error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/24")}
	s, err := NewServer(ServerConfig{Listen: ":7000", Announce: []string{"192.0.2.1", "[2001:db8::1]:7001"}, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	wantAnn := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:0"), netip.MustParseAddrPort("[2001:db8::1]:7001")}
	if diff := cmp.Diff(wantAnn, s.announce, cmpNetip); diff != "" {
		t.Errorf("announce (-want +got):\n%s", diff)
	}
	if allow[0].Bits() != 24 || allow[0].Addr() != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("NewServer changed the caller's Allow: %v", allow)
	}
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string
	}{
		{"no listen", ClientConfig{Server: "192.0.2.1:7000"}, "listen address"},
		{"no server", ClientConfig{Listen: ":1080"}, "server address"},
		{"server port 0", ClientConfig{Listen: ":1080", Server: "192.0.2.1:0"}, "port 0"},
		{"empty path", ClientConfig{Listen: ":1080", Server: "192.0.2.1:7000", Paths: []datapath.Path{{}}}, "path #1"},
	}
	for _, tt := range tests {
		if _, err := NewClient(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: NewClient error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

// sink accepts connections, reads each to EOF and answers with the
// SHA-256 of what it read, then closes: a client that half-closes gets
// the digest back only if both half-closes crossed the proxy.
func sink(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h := sha256.New()
				if _, err := io.Copy(h, c); err != nil {
					return
				}
				_, _ = c.Write(h.Sum(nil))
			}()
		}
	}()
	return ln
}

// running starts a Server and a Client on loopback and returns the
// client's address and a function that stops both and returns their Run
// errors.
type running struct {
	client, server      net.Addr
	srv                 *Server
	cli                 *Client
	stop                func() (error, error)
	serverLogs, cliLogs *observer.ObservedLogs
}

func start(t *testing.T, scfg ServerConfig, ccfg ClientConfig) *running {
	t.Helper()
	score, slogs := observer.New(zap.DebugLevel)
	ccore, clogs := observer.New(zap.DebugLevel)
	scfg.Listen = "127.0.0.1:0"
	scfg.Logger = zap.New(score)
	srv, err := NewServer(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, serverLogs: slogs, cliLogs: clogs}
	addrs := make(chan net.Addr, 2)
	srv.listening = func(a net.Addr) { addrs <- a }
	errs := make(chan error, 2)
	go func() { errs <- srv.Run(ctx) }()
	r.server = <-addrs
	ccfg.Listen = "127.0.0.1:0"
	ccfg.Server = r.server.String()
	ccfg.Logger = zap.New(ccore)
	cli, err := NewClient(ccfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r.cli = cli
	cli.listening = func(a net.Addr) { addrs <- a }
	cerrs := make(chan error, 1)
	go func() { cerrs <- cli.Run(ctx) }()
	r.client = <-addrs
	var once sync.Once
	var serr, cerr error
	r.stop = func() (error, error) {
		once.Do(func() {
			cancel()
			serr, cerr = <-errs, <-cerrs
		})
		return serr, cerr
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// transfer sends n random bytes through addr, half-closes and returns
// whether the digest that comes back matches.
func transfer(t *testing.T, addr net.Addr, n int) error {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, n)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	if _, err := c.Write(data); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want[:]) {
		return errors.New("digest mismatch or no digest: " + string(got))
	}
	return nil
}

func TestEndToEndLoopback(t *testing.T) {
	before := runtime.NumGoroutine()
	snk := sink(t)
	psk := []byte("k")
	r := start(t,
		ServerConfig{To: snk.Addr().String(), PSK: psk},
		ClientConfig{PSK: psk, Paths: []datapath.Path{
			{LocalAddr: netip.MustParseAddr("127.0.0.1")}, {LocalAddr: netip.MustParseAddr("127.0.0.2")}}})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- transfer(t, r.client, 3<<20) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st := r.cli.Stats()
	if st.Accepted != 4 || st.BytesIn != 4*(3<<20) || st.BytesOut != 4*sha256.Size {
		t.Errorf("client stats = %+v, want 4 accepted, %d in, %d out", st, 4*(3<<20), 4*sha256.Size)
	}
	var locals []netip.Addr
	for _, p := range st.Paths {
		locals = append(locals, p.Local)
		if p.Subflows != 4 {
			t.Errorf("path %v: %d subflows, want 4", p.Local, p.Subflows)
		}
	}
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, locals, cmpNetip); diff != "" {
		t.Errorf("client path locals (-want +got):\n%s", diff)
	}
	if serr, cerr := r.stop(); serr != nil || cerr != nil {
		t.Errorf("Run returned %v (server), %v (client), want nil", serr, cerr)
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails when goroutines outlive the proxy: every relay
// must be gone once Run returned.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 { // the sink's accept loop and its listener
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRefusals(t *testing.T) {
	snk := sink(t)
	allowed := snk.Addr().(*net.TCPAddr).AddrPort()
	tests := []struct {
		name    string
		scfg    ServerConfig
		dst     netip.AddrPort
		psk     []byte
		wantLog string // on the server, or the client for set-up failures
		client  bool
	}{
		{name: "forbidden destination", scfg: ServerConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			dst: allowed, wantLog: "destination not allowed"},
		{name: "no allow list", scfg: ServerConfig{To: snk.Addr().String()}, dst: allowed, wantLog: "destination not allowed"},
		{name: "no default target", scfg: ServerConfig{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			wantLog: "none is set (--to)"},
		{name: "unreachable", scfg: ServerConfig{To: "127.0.0.1:1"}, wantLog: "cannot reach destination"},
		{name: "wrong psk", scfg: ServerConfig{To: snk.Addr().String(), PSK: []byte("a")}, psk: []byte("b"),
			wantLog: "cannot set up the data path", client: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := start(t, tt.scfg, ClientConfig{PSK: tt.psk})
			// Speak the header by hand for explicit destinations.
			var err error
			if tt.dst.IsValid() {
				err = explicit(r.server.String(), tt.dst)
			} else {
				err = transfer(t, r.client, 1000)
			}
			if err == nil {
				t.Fatal("transfer succeeded, want refusal")
			}
			logs := r.serverLogs
			if tt.client {
				logs = r.cliLogs
			}
			waitLog(t, logs, tt.wantLog)
			r.stop()
			if st := r.srv.Stats(); !tt.client && st.Refused != 1 {
				t.Errorf("server Refused = %d, want 1", st.Refused)
			}
		})
	}
}

// explicit asks the server for dst over a raw data-path connection and
// reports how the stream ended.
func explicit(server string, dst netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dc, err := datapath.Dial(ctx, nil, server)
	if err != nil {
		return err
	}
	defer dc.Close()
	if _, err := dc.Write(append(appendHeader(nil, dst), "hello"...)); err != nil {
		return err
	}
	_ = dc.CloseWrite()
	_ = dc.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(dc)
	return err
}

func waitLog(t *testing.T, logs *observer.ObservedLogs, substr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range logs.All() {
			text := e.Message
			for _, f := range e.Context {
				text += " " + f.Key + "=" + f.String
				if f.Interface != nil {
					if err, ok := f.Interface.(error); ok {
						text += err.Error()
					}
				}
			}
			if strings.Contains(text, substr) {
				return
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, e := range logs.All() {
				all = append(all, e.Message)
			}
			t.Fatalf("no log entry with %q; got %q", substr, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
