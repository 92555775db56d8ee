package datapath

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func alive(st Stats) int {
	n := 0
	for _, sf := range st.Subflows {
		if !sf.Dead {
			n++
		}
	}
	return n
}

func TestAddRemoveAddr(t *testing.T) {
	checkGoroutines(t)
	extra, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	extraAP := extra.Addr().(*net.TCPAddr).AddrPort()
	l := listen(t, &ServerConfig{ExtraListeners: []net.Listener{extra}, Announce: []netip.AddrPort{extraAP}})
	c, err := Dial(testCtx(t), &ClientConfig{Config: Config{JoinAnnounced: true}}, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, l)
	waitFor(t, "join of the announced address", func() bool { return alive(s.Stats()) == 2 })
	st := c.Stats()
	if got := st.Subflows[1].RemoteAddr.(*net.TCPAddr).AddrPort(); got != extraAP {
		t.Errorf("joined %v, announced %v", got, extraAP)
	}
	if err := s.RemoveAddr(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "removal of the announced address", func() bool { return alive(c.Stats()) == 1 })
	transfer(t, c, s, randBytes(t, 256<<10), nil)
	transfer(t, s, c, []byte("bye"), nil)
	closeBoth(t, c, s)
}

func TestAddAddrBadMACIgnored(t *testing.T) {
	checkGoroutines(t)
	core, logs := observer.New(zapcore.DebugLevel)
	a, b := net.Pipe()
	keys := make(chan Key, 1)
	go func() {
		_, ck := fakeServer(t, b)
		keys <- ck
	}()
	c, err := Client(testCtx(t), a, &Config{Heartbeat: time.Hour, JoinAnnounced: true, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	<-keys
	go func() { _, _ = b.Read(make([]byte, 1<<16)) }()
	addr := netip.MustParseAddr("127.0.0.1")
	bad := &AddAddr{ID: 1, Addr: addr, Port: 1, MAC: AddAddrMAC(c.LocalKey(), c.RemoteKey(), 1, addr, 1)} // wrong key order
	if err := Encode(b, bad); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "log of the refused ADD_ADDR", func() bool {
		return logs.FilterMessage("ignoring ADD_ADDR with missing or wrong MAC").Len() == 1
	})
	_ = b.Close()
	_ = c.Abort()
}

// TestHeartbeat checks that PONGs measure RTT and that a silent peer gets
// its subflow declared dead.
func TestHeartbeat(t *testing.T) {
	checkGoroutines(t)
	hb := Config{Heartbeat: 10 * time.Millisecond}
	l := listen(t, &ServerConfig{Config: hb})
	c, s, _ := dialPair(t, l, &hb)
	waitFor(t, "RTT sample", func() bool { return c.Stats().Subflows[0].RTT > 0 })
	closeBoth(t, c, s)

	// A peer that completes the handshake and then says nothing.
	a, b := net.Pipe()
	go fakeServer(t, b)
	c, err := Client(testCtx(t), a, &Config{Heartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { // swallow PINGs without answering
		buf := make([]byte, 1024)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrSubflowDead) || !errors.Is(err, ErrNoSubflows) {
		t.Errorf("Read = %v, want ErrNoSubflows wrapping ErrSubflowDead", err)
	}
	_ = b.Close()
	_ = c.Close()
}

func TestSetBackup(t *testing.T) {
	checkGoroutines(t)
	l := listen(t, nil)
	c, s, _ := dialPair(t, l, nil, false)
	if err := c.SetBackup(1, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PRIO at the server", func() bool { return s.Stats().Subflows[1].Backup })
	data := randBytes(t, 512<<10)
	transfer(t, c, s, data, nil)
	transfer(t, s, c, data, nil)
	for _, conn := range []*Conn{c, s} {
		if got := conn.Stats().Subflows[1].BytesSent; got != 0 {
			t.Errorf("subflow marked backup carried %d bytes", got)
		}
	}
	if err := c.SetBackup(7, true); err == nil {
		t.Error("SetBackup on a missing subflow succeeded")
	}
	closeBoth(t, c, s)
}
