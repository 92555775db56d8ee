package datapath

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// blackHole wraps one end of a subflow. Once cut it behaves like a path
// whose link went down: nothing it is given is delivered, nothing arrives,
// and nothing fails until it is closed.
type blackHole struct {
	net.Conn
	cutOnce, closeOnce sync.Once
	cut, closed        chan struct{}
}

func newBlackHole(nc net.Conn) *blackHole {
	return &blackHole{Conn: nc, cut: make(chan struct{}), closed: make(chan struct{})}
}

func (b *blackHole) Cut() { b.cutOnce.Do(func() { close(b.cut) }) }

func (b *blackHole) isCut() bool {
	select {
	case <-b.cut:
		return true
	default:
		return false
	}
}

func (b *blackHole) Read(p []byte) (int, error) {
	if !b.isCut() {
		n, err := b.Conn.Read(p)
		if !b.isCut() {
			return n, err
		}
	}
	<-b.closed // whatever arrived is lost
	return 0, net.ErrClosed
}

func (b *blackHole) Write(p []byte) (int, error) {
	if b.isCut() {
		return len(p), nil // queued for a link that is gone
	}
	return b.Conn.Write(p)
}

func (b *blackHole) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return b.Conn.Close()
}

// holeListener wraps every accepted connection in a blackHole and hands it
// to the test too.
type holeListener struct {
	net.Listener
	accepted chan *blackHole
}

func (l *holeListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	b := newBlackHole(nc)
	l.accepted <- b
	return b, nil
}

// TestStaleSubflowFailover cuts one of two subflows mid-transfer without
// closing it, at both ends. The stream must complete on the other one,
// intact, long before the cut subflow could be declared dead: its data is
// reinjected once it is found stale.
func TestStaleSubflowFailover(t *testing.T) {
	for _, tt := range []struct {
		name        string
		clientSends bool
	}{
		{"client sends", true},
		{"server sends", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			core, logs := observer.New(zapcore.InfoLevel)
			// DeadAfter is far beyond the read deadline below: only
			// stale detection can save the transfer.
			cfg := Config{Logger: zap.New(core), DeadAfter: time.Minute}
			tl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hl := &holeListener{Listener: tl, accepted: make(chan *blackHole, 2)}
			l := NewListener(hl, &ServerConfig{Config: cfg})
			t.Cleanup(func() { _ = l.Close() })
			c, err := Client(testCtx(t), tcpDial(t, l), &cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := accept(t, l)
			<-hl.accepted
			hole := newBlackHole(tcpDial(t, l))
			if err := c.AddSubflow(testCtx(t), hole, false); err != nil {
				t.Fatal(err)
			}
			serverHole := <-hl.accepted
			waitFor(t, "the join at the server", func() bool { return len(s.Stats().Subflows) == 2 })

			w, r := s, c
			if tt.clientSends {
				w, r = c, s
			}
			data := randBytes(t, 64<<20)
			_ = r.SetReadDeadline(time.Now().Add(30 * time.Second))
			var cutAt time.Time
			var stall time.Duration
			last := time.Now()
			transferEach(t, w, r, data, func(n, k int) {
				now := time.Now()
				if !cutAt.IsZero() {
					stall = max(stall, now.Sub(last))
				}
				last = now
				if cutAt.IsZero() && n+k >= len(data)/4 {
					hole.Cut()
					serverHole.Cut()
					cutAt = now
				}
			})
			t.Logf("longest stall between reads after the cut: %v; transfer after the cut took %v",
				stall.Round(time.Millisecond), time.Since(cutAt).Round(time.Millisecond))
			if got := logs.FilterMessage("subflow stale; reinjecting its data elsewhere").Len(); got == 0 {
				t.Error("no subflow was found stale")
			}
			if st := w.Stats(); st.Subflows[1].Dead || !st.Subflows[1].Stale || st.Subflows[0].Stale {
				t.Errorf("sender's subflows after the cut: %+v", st.Subflows)
			}
			// The reader closes first: its DATA_FIN must be acknowledged
			// while the writer still runs, now that the only other path
			// is a black hole.
			if err := r.Close(); err != nil {
				t.Error(err)
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// routes describes subflows for comparisons: local IP -> remote address.
func routes(st Stats, alive bool) []string {
	var out []string
	for _, sf := range st.Subflows {
		if alive && sf.Dead {
			continue
		}
		la := sf.LocalAddr.(*net.TCPAddr).AddrPort().Addr()
		out = append(out, fmt.Sprintf("%v->%v backup=%v", la, sf.RemoteAddr, sf.Backup))
	}
	slices.Sort(out)
	return out
}

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
)

func TestDialFullMesh(t *testing.T) {
	checkGoroutines(t)
	extra, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	extraAP := extra.Addr().(*net.TCPAddr).AddrPort()
	l := listen(t, &ServerConfig{ExtraListeners: []net.Listener{extra}, Announce: []netip.AddrPort{extraAP}})
	c, err := Dial(testCtx(t), &ClientConfig{
		Config: Config{JoinAnnounced: true},
		Paths:  []Path{{LocalAddr: lo1}, {LocalAddr: lo2, Backup: true}},
	}, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, l)
	waitFor(t, "four subflows", func() bool { return alive(s.Stats()) == 4 })
	main := l.Addr().String()
	want := []string{
		fmt.Sprintf("127.0.0.1->%s backup=false", extraAP),
		fmt.Sprintf("127.0.0.1->%s backup=false", main),
		fmt.Sprintf("127.0.0.2->%s backup=true", extraAP),
		fmt.Sprintf("127.0.0.2->%s backup=true", main),
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, routes(c.Stats(), true)); diff != "" {
		t.Errorf("client subflows (-want +got):\n%s", diff)
	}
	s.mu.Lock()
	if tc, ok := s.all[0].nc.(*net.TCPConn); ok {
		if mp, err := tc.MultipathTCP(); err == nil && mp {
			t.Error("server subflow is kernel MPTCP; the data path wants plain TCP")
		}
	}
	s.mu.Unlock()
	transfer(t, c, s, randBytes(t, 1<<20), nil)
	closeBoth(t, c, s)
}

func TestDialBackupPaths(t *testing.T) {
	tests := []struct {
		name  string
		paths []Path
		want  []string // first subflow, then the joined one
	}{
		{"backup first", []Path{{LocalAddr: lo2, Backup: true}, {LocalAddr: lo1}},
			[]string{"127.0.0.1 backup=false", "127.0.0.2 backup=true"}},
		{"all backup", []Path{{LocalAddr: lo1, Backup: true}, {LocalAddr: lo2, Backup: true}},
			[]string{"127.0.0.1 backup=false", "127.0.0.2 backup=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			l := listen(t, nil)
			c, err := Dial(testCtx(t), &ClientConfig{Paths: tt.paths}, l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s := accept(t, l)
			var got []string
			for _, sf := range c.Stats().Subflows {
				got = append(got, fmt.Sprintf("%v backup=%v", sf.LocalAddr.(*net.TCPAddr).AddrPort().Addr(), sf.Backup))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("subflows (-want +got):\n%s", diff)
			}
			data := randBytes(t, 256<<10)
			transfer(t, c, s, data, nil)
			if sent := c.Stats().Subflows[1].BytesSent; sent != 0 {
				t.Errorf("backup path carried %d bytes while the first path lived", sent)
			}
			closeBoth(t, c, s)
		})
	}
}

// TestRejoin kills a path's subflow; the client must open a new one on
// that path, and keep using it.
func TestRejoin(t *testing.T) {
	checkGoroutines(t)
	core, logs := observer.New(zapcore.InfoLevel)
	l := listen(t, nil)
	c, err := Dial(testCtx(t), &ClientConfig{
		Config:      Config{Logger: zap.New(core)},
		Paths:       []Path{{LocalAddr: lo1}, {LocalAddr: lo2}},
		RejoinDelay: 10 * time.Millisecond,
	}, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := accept(t, l)
	waitFor(t, "the join at the server", func() bool { return alive(s.Stats()) == 2 })
	for round := range 2 {
		s.mu.Lock()
		victim := s.subflows[len(s.subflows)-1]
		_ = victim.nc.Close() // the client sees its path's subflow die
		s.mu.Unlock()
		waitFor(t, "the rejoin", func() bool {
			st := c.Stats()
			return len(st.Subflows) == 3+round && alive(st) == 2
		})
	}
	want := []string{
		fmt.Sprintf("127.0.0.1->%s backup=false", l.Addr()),
		fmt.Sprintf("127.0.0.2->%s backup=false", l.Addr()),
	}
	if diff := cmp.Diff(want, routes(c.Stats(), true)); diff != "" {
		t.Errorf("live subflows after rejoins (-want +got):\n%s", diff)
	}
	waitFor(t, "the server to attach the rejoin", func() bool { return alive(s.Stats()) == 2 })
	transfer(t, c, s, randBytes(t, 1<<20), nil)
	if c.Stats().Subflows[3].BytesSent == 0 {
		t.Error("rejoined subflow unused")
	}
	closeBoth(t, c, s)
	if logs.FilterMessage("subflow failed").Len() < 2 {
		t.Errorf("want the two kills logged, got %v", logs.All())
	}
}
