package main

// The server end of every transfer runs in its own process (this binary
// re-executed with the hidden -serve flag inside the server namespace),
// so its CPU time and memory are measured apart from the client's. It
// prints one JSON message per line on stdout and takes commands on
// stdin; it exits when stdin closes, so it never outlives the benchmark.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
	"github.com/mptcpd-go/mptcpd-go/bench/internal/proc"
	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// Timeouts of the server side.
const (
	// requestTimeout bounds reading a request on a new connection.
	requestTimeout = 10 * time.Second
	// sendGrace is added to a request's duration for the whole transfer
	// (sending, then waiting for the client's close).
	sendGrace = 30 * time.Second
	// serverStartTimeout bounds the server process's start.
	serverStartTimeout = 15 * time.Second
	// serverStopTimeout is how long a server process may take to exit
	// after its stdin closed before it is killed.
	serverStopTimeout = 5 * time.Second
)

// serverMessage is one line of the server process's stdout.
type serverMessage struct {
	// Type is "ready", "result" (a send finished), "mem" (answer to the
	// mem command) or "error" (a connection failed before its request).
	Type string `json:"type"`
	ID   uint64 `json:"id,omitempty"`
	Kind string `json:"kind,omitempty"`
	// Bytes sent, SHA-256 of them (when requested), CPU time of the
	// whole process from the request to the client's close.
	Bytes  int64  `json:"bytes,omitempty"`
	SHA    string `json:"sha,omitempty"`
	UserNs int64  `json:"user_ns,omitempty"`
	SysNs  int64  `json:"sys_ns,omitempty"`
	Err    string `json:"err,omitempty"`
	// Memory after a forced GC, for "mem".
	RSS        int64  `json:"rss,omitempty"`
	HeapAlloc  uint64 `json:"heap_alloc,omitempty"`
	StackInuse uint64 `json:"stack_inuse,omitempty"`
	Goroutines int    `json:"goroutines,omitempty"`
	Holding    int64  `json:"holding,omitempty"`
}

// memSnapshot is the memory of one process after a forced GC.
type memSnapshot struct {
	RSS        int64
	HeapAlloc  uint64
	StackInuse uint64
	Goroutines int
}

// takeMem forces a GC, returns freed memory to the OS and measures.
func takeMem() (memSnapshot, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := selfRSS()
	return memSnapshot{RSS: rss, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}, err
}

// dpOptions are the datapath settings of both ends.
type dpOptions struct {
	window     int
	heartbeat  time.Duration
	deadAfter  time.Duration
	maxPayload int
}

// config is the datapath.Config of either end (zero fields: defaults).
func (o dpOptions) config() datapath.Config {
	return datapath.Config{Window: o.window, Heartbeat: o.heartbeat, DeadAfter: o.deadAfter, MaxPayload: o.maxPayload}
}

// args are the flags that pass o to the server process.
func (o dpOptions) args() []string {
	return []string{
		"-dp-window", strconv.Itoa(o.window),
		"-dp-heartbeat", o.heartbeat.String(),
		"-dp-dead-after", o.deadAfter.String(),
		"-dp-max-payload", strconv.Itoa(o.maxPayload),
	}
}

// streamConn is what both ends need of a connection of any kind.
type streamConn interface {
	net.Conn
	CloseWrite() error
}

// lineWriter prints JSON messages, one per line, from many goroutines.
type lineWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *lineWriter) send(m serverMessage) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(m)
}

// server is the state of the server process.
type server struct {
	out     *lineWriter
	pat     pattern
	holding atomic.Int64
}

// runServer is the -serve mode: listen for TCP, kernel MPTCP and
// datapath connections on all addresses, serve requests, answer
// commands on stdin until it closes.
func runServer(dp dpOptions) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &server{out: &lineWriter{enc: json.NewEncoder(os.Stdout)}, pat: newPattern()}

	var plain, mptcp net.ListenConfig
	mptcp.SetMultipathTCP(true)
	lt, err := plain.Listen(ctx, "tcp4", fmt.Sprintf("0.0.0.0:%d", portTCP))
	if err != nil {
		return fmt.Errorf("listen tcp: %w", err)
	}
	defer lt.Close()
	lm, err := mptcp.Listen(ctx, "tcp4", fmt.Sprintf("0.0.0.0:%d", portMPTCP))
	if err != nil {
		return fmt.Errorf("listen mptcp: %w", err)
	}
	defer lm.Close()
	ld, err := datapath.Listen(ctx, "tcp4", fmt.Sprintf("0.0.0.0:%d", portDatapath), &datapath.ServerConfig{Config: dp.config(), Backlog: 256})
	if err != nil {
		return fmt.Errorf("listen datapath: %w", err)
	}
	defer ld.Close()

	var wg sync.WaitGroup
	for _, l := range []struct {
		kind string
		ln   net.Listener
	}{{"tcp", lt}, {"mptcp", lm}, {"datapath", ld}} {
		wg.Go(func() {
			for {
				c, err := l.ln.Accept()
				if err != nil {
					return // closed
				}
				sc, ok := c.(streamConn)
				if !ok {
					_ = c.Close()
					continue
				}
				go s.handle(l.kind, sc)
			}
		})
	}
	s.out.send(serverMessage{Type: "ready"})

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			m, err := takeMem()
			msg := serverMessage{Type: "mem", RSS: m.RSS, HeapAlloc: m.HeapAlloc, StackInuse: m.StackInuse, Goroutines: m.Goroutines, Holding: s.holding.Load()}
			if err != nil {
				msg.Err = err.Error()
			}
			s.out.send(msg)
		default:
			s.out.send(serverMessage{Type: "error", Err: fmt.Sprintf("unknown command %q", sc.Text())})
		}
	}
	// stdin closed: the benchmark is done (or gone).
	cancel()
	_ = lt.Close()
	_ = lm.Close()
	_ = ld.Close()
	wg.Wait()
	return nil
}

// handle serves one connection.
func (s *server) handle(kind string, c streamConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(requestTimeout))
	req, err := readRequest(c)
	if err != nil {
		s.out.send(serverMessage{Type: "error", Kind: kind, Err: err.Error()})
		return
	}
	switch req.Op {
	case opHold:
		_ = c.SetDeadline(time.Time{})
		s.holding.Add(1)
		defer s.holding.Add(-1)
		var b [64]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	case opSend:
		s.out.send(s.send(kind, c, req))
	}
}

// send sends the stream as req asks, half-closes, waits for the client
// to close and reports.
func (s *server) send(kind string, c streamConn, req request) serverMessage {
	msg := serverMessage{Type: "result", ID: req.ID, Kind: kind}
	_ = c.SetDeadline(time.Now().Add(req.Duration + sendGrace))
	cpu0 := processCPU()
	var h hash.Hash
	if req.SHA {
		h = sha256.New()
	}
	start := time.Now()
	var off uint64
	var err error
	for time.Since(start) < req.Duration && (req.Limit == 0 || off < req.Limit) {
		n := ioSize
		if req.Limit > 0 && req.Limit-off < uint64(n) {
			n = int(req.Limit - off)
		}
		b := s.pat.chunk(off, n)
		var w int
		w, err = c.Write(b)
		if h != nil {
			h.Write(b[:w])
		}
		off += uint64(w)
		if err != nil {
			err = fmt.Errorf("write after %d bytes: %w", off, err)
			break
		}
	}
	if err == nil {
		if err = c.CloseWrite(); err != nil {
			err = fmt.Errorf("close write: %w", err)
		}
	}
	if err == nil {
		// The client closes once it has read everything.
		var b [64]byte
		if _, rerr := c.Read(b[:]); !errors.Is(rerr, io.EOF) {
			err = fmt.Errorf("waiting for the client's close: %w", rerr)
		}
	}
	cpu := processCPU().sub(cpu0)
	msg.Bytes = int64(off)
	msg.UserNs, msg.SysNs = int64(cpu.User), int64(cpu.Sys)
	if h != nil {
		msg.SHA = hex.EncodeToString(h.Sum(nil))
	}
	if err != nil {
		msg.Err = err.Error()
	}
	return msg
}

// serverProc is the running server process, seen from the benchmark.
type serverProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	msgs   chan serverMessage
	done   chan struct{} // stdout reached EOF: the process ended
	stderr *proc.TailBuffer
}

// startServer re-executes this binary with -serve in ns and waits until
// it listens.
func startServer(ctx context.Context, ns *nstopo.NS, dp dpOptions) (*serverProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command(self, append([]string{"-serve"}, dp.args()...)...)
	p := &serverProc{cmd: cmd, msgs: make(chan serverMessage, 1<<14), done: make(chan struct{}), stderr: &proc.TailBuffer{Max: 16 << 10}}
	cmd.Stderr = p.stderr
	// Own process group: Ctrl-C reaches only the benchmark, which stops
	// the server by closing its stdin. No Pdeathsig: it would fire when
	// the namespace-switching thread that forked exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("server stdout: %w", err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("server stdin: %w", err)
	}
	if err := ns.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("start server process in %s: %w", ns.Name, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m serverMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = serverMessage{Type: "error", Err: fmt.Sprintf("bad line %q: %v", sc.Text(), err)}
			}
			select {
			case p.msgs <- m:
			default: // nobody listens; drop rather than block the server
			}
		}
	}()
	if _, err := p.wait(ctx, serverStartTimeout, func(m serverMessage) bool { return m.Type == "ready" }); err != nil {
		return nil, errors.Join(fmt.Errorf("server process did not start: %w", err), p.stop())
	}
	return p, nil
}

// wait returns the next message for which match is true, dropping the
// others, or fails after timeout, when ctx ends or the process exits.
func (p *serverProc) wait(ctx context.Context, timeout time.Duration, match func(serverMessage) bool) (serverMessage, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m := <-p.msgs:
			if match(m) {
				return m, nil
			}
		case <-p.done:
			return serverMessage{}, fmt.Errorf("server process exited; stderr: %s", p.stderr.String())
		case <-t.C:
			return serverMessage{}, fmt.Errorf("no answer from the server process within %v", timeout)
		case <-ctx.Done():
			return serverMessage{}, ctx.Err()
		}
	}
}

// result waits for the result of request id.
func (p *serverProc) result(ctx context.Context, id uint64, timeout time.Duration) (serverMessage, error) {
	return p.wait(ctx, timeout, func(m serverMessage) bool { return m.Type == "result" && m.ID == id })
}

// mem asks the server process for its memory figures.
func (p *serverProc) mem(ctx context.Context) (serverMessage, error) {
	if _, err := io.WriteString(p.stdin, "mem\n"); err != nil {
		return serverMessage{}, fmt.Errorf("server command: %w", err)
	}
	m, err := p.wait(ctx, 10*time.Second, func(m serverMessage) bool { return m.Type == "mem" })
	if err == nil && m.Err != "" {
		err = fmt.Errorf("server memory: %s", m.Err)
	}
	return m, err
}

// pid is the server process's id.
func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// stop closes the server's stdin, which makes it exit, and kills it if
// it does not within serverStopTimeout.
func (p *serverProc) stop() error {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(serverStopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	err := p.cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("server process: %w; stderr: %s", err, p.stderr.String())
	}
	return nil
}
