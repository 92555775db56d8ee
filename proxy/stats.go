package proxy

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// Stats is a snapshot of a Server's or Client's counters since Run began.
type Stats struct {
	// Active is the number of connections being proxied now.
	Active int
	// Accepted counts connections taken in (application connections on
	// the client, data-path connections on the server).
	Accepted uint64
	// Refused counts connections dropped before any byte was relayed:
	// data-path set-up failures, bad headers, forbidden destinations,
	// unreachable targets.
	Refused uint64
	// BytesIn counts bytes read from the plain TCP side and sent into
	// the data path; BytesOut bytes from the data path written to TCP.
	BytesIn, BytesOut uint64
	// Paths are the data-path subflows grouped by their local and remote
	// addresses, sorted.
	Paths []PathStats
}

// PathStats counts the subflows between one local and one remote address.
type PathStats struct {
	Local, Remote netip.Addr
	// Subflows counts the subflows opened over this path, live or failed.
	Subflows uint64
	// BytesSent and BytesReceived are DATA payload bytes, reinjections
	// and duplicates included.
	BytesSent, BytesReceived uint64
}

type pathKey struct{ local, remote netip.Addr }

// tracker keeps the live relays of a Server or Client and the counters of
// the finished ones; Stats merges both.
type tracker struct {
	mu       sync.Mutex
	live     map[*relay]struct{}
	closed   bool
	accepted uint64
	refused  uint64
	in, out  uint64
	paths    map[pathKey]*PathStats
	wg       sync.WaitGroup // connection goroutines
}

func newTracker() *tracker {
	return &tracker{live: make(map[*relay]struct{}), paths: make(map[pathKey]*PathStats)}
}

// start counts one accepted connection and registers its goroutine; it
// returns false once shutdown began.
func (t *tracker) start() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.accepted++
	t.wg.Add(1)
	return true
}

func (t *tracker) refuse() {
	t.mu.Lock()
	t.refused++
	t.mu.Unlock()
}

// add registers r; it returns false (and aborts r) when shutdown began.
func (t *tracker) add(r *relay) bool {
	t.mu.Lock()
	if !t.closed {
		t.live[r] = struct{}{}
		t.mu.Unlock()
		return true
	}
	t.mu.Unlock()
	r.abort(errShutdown)
	return false
}

// done folds a finished relay into the totals.
func (t *tracker) done(r *relay) {
	st := r.dc.Stats()
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, r)
	t.in += r.in.Load()
	t.out += r.out.Load()
	addPaths(t.paths, st)
}

// shutdown aborts the live relays and waits for every connection
// goroutine.
func (t *tracker) shutdown() {
	t.mu.Lock()
	t.closed = true
	live := make([]*relay, 0, len(t.live))
	for r := range t.live {
		live = append(live, r)
	}
	t.mu.Unlock()
	for _, r := range live {
		r.abort(errShutdown)
	}
	t.wg.Wait()
}

func (t *tracker) stats() Stats {
	t.mu.Lock()
	live := make([]*relay, 0, len(t.live))
	for r := range t.live {
		live = append(live, r)
	}
	s := Stats{Active: len(live), Accepted: t.accepted, Refused: t.refused, BytesIn: t.in, BytesOut: t.out}
	paths := make(map[pathKey]*PathStats, len(t.paths))
	for k, p := range t.paths {
		cp := *p
		paths[k] = &cp
	}
	t.mu.Unlock()
	// Conn.Stats takes the connection's lock: not under ours.
	for _, r := range live {
		s.BytesIn += r.in.Load()
		s.BytesOut += r.out.Load()
		addPaths(paths, r.dc.Stats())
	}
	for _, p := range paths {
		s.Paths = append(s.Paths, *p)
	}
	slices.SortFunc(s.Paths, func(a, b PathStats) int {
		return cmp.Or(a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
	})
	return s
}

func addPaths(m map[pathKey]*PathStats, st datapath.Stats) {
	for _, sf := range st.Subflows {
		k := pathKey{addrOf(sf.LocalAddr), addrOf(sf.RemoteAddr)}
		p := m[k]
		if p == nil {
			p = &PathStats{Local: k.local, Remote: k.remote}
			m[k] = p
		}
		p.Subflows++
		p.BytesSent += sf.BytesSent
		p.BytesReceived += sf.BytesReceived
	}
}

// addrOf is the IP of a TCP address, unmapped; the zero Addr otherwise.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
