package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// copyBufSize is the chunk size of both copy directions: a few DATA
// frames per write keeps the scheduler busy without holding much memory
// per connection.
const copyBufSize = 64 << 10

// errShutdown ends the connections still open when Run returns.
var errShutdown = errors.New("proxy: shutting down")

// relay is one proxied connection: the application's (or destination's)
// TCP connection and its data-path connection.
type relay struct {
	tc *net.TCPConn
	dc *datapath.Conn

	in, out atomic.Uint64 // bytes TCP→data path, data path→TCP

	once sync.Once
	err  error // first error that tore the relay down; set once
}

// abort tears both sides down at once, the data path with FASTCLOSE and
// TCP with RST, so that both copies return. Only the first call counts.
func (r *relay) abort(err error) {
	r.once.Do(func() {
		r.err = err
		_ = r.dc.Abort()
		_ = r.tc.SetLinger(0) // RST: the application must not see a clean end
		_ = r.tc.Close()
	})
}

// run copies both ways until both directions ended, carrying half-closes
// across: EOF from TCP becomes DATA_FIN (CloseWrite), EOF from the data
// path a TCP FIN. It returns the error that tore the relay down, nil when
// both sides closed cleanly; nothing of the relay runs after it returns.
func (r *relay) run() error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := copyCounting(r.dc, r.tc, &r.in); err != nil {
			r.abort(err)
		} else if err := r.dc.CloseWrite(); err != nil {
			r.abort(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := copyCounting(r.tc, r.dc, &r.out); err != nil {
			r.abort(err)
		} else if err := r.tc.CloseWrite(); err != nil {
			r.abort(err)
		}
	}()
	wg.Wait()
	// After wg.Wait no goroutine can call abort any more except the
	// owner's shutdown, which the once makes harmless.
	closed := false
	r.once.Do(func() { closed = true })
	if closed {
		// Both directions ended cleanly: Close waits (up to the data
		// path's Linger) for the peer to acknowledge our DATA_FIN.
		_ = r.dc.Close()
		_ = r.tc.Close()
		return nil
	}
	return r.err
}

// copyCounting copies src to dst like io.Copy, keeping n current while it
// runs so that Stats sees long transfers progress. EOF is no error.
func copyCounting(dst io.Writer, src io.Reader, n *atomic.Uint64) error {
	buf := make([]byte, copyBufSize)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n.Add(uint64(nw))
			if werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// benign reports errors that are an ordinary end of a connection, logged
// at Info rather than Warn.
func benign(err error) bool {
	return err == nil || errors.Is(err, errShutdown) || errors.Is(err, datapath.ErrFastClosed) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, datapath.ErrAborted)
}
