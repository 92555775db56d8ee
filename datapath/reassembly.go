package datapath

import (
	"errors"
	"fmt"
	"slices"
)

// Reassembly and send-buffer errors; returned errors wrap one of these.
var (
	// ErrWindowExceeded reports data beyond the receive window, i.e. a peer
	// sending more than the receiver agreed to buffer.
	ErrWindowExceeded = errors.New("datapath: receive window exceeded")
	// ErrBadFIN reports a DATA_FIN that contradicts earlier data or FIN.
	ErrBadFIN = errors.New("datapath: inconsistent DATA_FIN")
)

// seqDiff is a-b in 64-bit serial arithmetic, so DSN wrap-around works.
func seqDiff(a, b uint64) int64 { return int64(a - b) }

// Reassembler is the receive side of a connection: it accepts DATA from
// any subflow in any order, drops bytes it already has, and delivers the
// stream in order exactly once. Buffered out-of-order data is bounded by
// the window. It is not safe for concurrent use.
//
// Bytes are copied once, into a ring indexed by DSN that starts at the
// oldest byte not yet consumed; an interval set records which ranges
// beyond the in-order point arrived.
type Reassembler struct {
	rd     uint64 // first DSN not consumed yet; ring[head] holds it
	next   uint64 // next DSN to complete in order; the cumulative ack
	window int    // bytes beyond rd the peer may send
	ring   []byte
	head   int
	ooo    []Range // received beyond next: sorted, disjoint, not adjacent
	// buffered counts the bytes in ooo.
	buffered int
	fin      bool
	finDSN   uint64
	done     bool
}

// NewReassembler returns a reassembler expecting idsn first and buffering
// at most window bytes ahead of the delivered stream (at least 1).
func NewReassembler(idsn uint64, window int) *Reassembler {
	return &Reassembler{rd: idsn, next: idsn, window: max(window, 1)}
}

// Ack is the cumulative DATA_ACK value: every DSN below it was delivered.
func (r *Reassembler) Ack() uint64 { return r.next }

// Done reports whether DATA_FIN was reached: the stream is complete.
func (r *Reassembler) Done() bool { return r.done }

// Buffered is the number of out-of-order bytes held.
func (r *Reassembler) Buffered() int { return r.buffered }

// Push takes one DATA frame and returns the bytes that became deliverable
// in order (a fresh slice, possibly empty). Duplicates and overlaps are
// dropped. On error nothing is stored; the connection should be reset.
func (r *Reassembler) Push(d *Data) ([]byte, error) {
	if err := r.store(d); err != nil {
		return nil, err
	}
	n := r.unread()
	if n == 0 {
		return nil, nil
	}
	out := make([]byte, n)
	r.read(out)
	return out, nil
}

// store copies the new bytes of d into the ring without consuming
// anything; the in-order ones become readable (unread, peek, consume).
func (r *Reassembler) store(d *Data) error {
	rel := seqDiff(d.DSN, r.next)
	end := rel + int64(len(d.Payload))
	if seqDiff(d.DSN, r.rd)+int64(len(d.Payload)) > int64(r.window) {
		return fmt.Errorf("%w: DSN %d+%d, acked %d, window %d", ErrWindowExceeded, d.DSN, len(d.Payload), r.rd, r.window)
	}
	if err := r.checkFIN(d, end); err != nil {
		return err
	}
	if r.done {
		return nil // everything already delivered
	}
	p, start := d.Payload, d.DSN
	if rel < 0 { // drop the already delivered prefix
		p = p[min(int64(len(p)), -rel):]
		start = r.next
	}
	if len(p) > 0 {
		r.insert(start, p)
	}
	if len(r.ooo) > 0 && r.ooo[0].Start == r.next {
		r.buffered -= int(r.ooo[0].End - r.ooo[0].Start)
		r.next = r.ooo[0].End
		r.ooo = slices.Delete(r.ooo, 0, 1)
	}
	if r.fin && r.next == r.finDSN {
		r.next++ // DATA_FIN occupies one DSN, as in RFC 8684
		r.done = true
	}
	return nil
}

func (r *Reassembler) checkFIN(d *Data, end int64) error {
	finRel := seqDiff(r.finDSN, r.next)
	switch {
	case d.Fin && r.fin && d.DSN+uint64(len(d.Payload)) != r.finDSN:
		return fmt.Errorf("%w: FIN at %d, earlier FIN at %d", ErrBadFIN, d.DSN+uint64(len(d.Payload)), r.finDSN)
	case d.Fin && !r.fin:
		if end < 0 || (len(r.ooo) > 0 && seqDiff(r.ooo[len(r.ooo)-1].End, r.next) > end) {
			return fmt.Errorf("%w: FIN at %d before data already received", ErrBadFIN, d.DSN+uint64(len(d.Payload)))
		}
		r.fin, r.finDSN = true, d.DSN+uint64(len(d.Payload))
	case !d.Fin && r.fin && !r.done && end > finRel:
		return fmt.Errorf("%w: data up to %d beyond FIN at %d", ErrBadFIN, d.DSN+uint64(len(d.Payload)), r.finDSN)
	}
	return nil
}

// insert copies the parts of p (at DSN start >= next) not held yet into
// the ring and records them.
func (r *Reassembler) insert(start uint64, p []byte) {
	end := start + uint64(len(p))
	r.grow(int(seqDiff(end, r.rd)))
	cur := start
	put := func(from, to uint64) {
		r.copyIn(from, p[seqDiff(from, start):seqDiff(to, start)])
		r.buffered += int(to - from)
	}
	i := 0
	for ; i < len(r.ooo) && seqDiff(r.ooo[i].End, start) < 0; i++ {
	}
	j := i
	for ; j < len(r.ooo) && seqDiff(r.ooo[j].Start, end) <= 0; j++ {
		if seqDiff(r.ooo[j].Start, cur) > 0 {
			put(cur, r.ooo[j].Start)
		}
		if seqDiff(r.ooo[j].End, cur) > 0 {
			cur = r.ooo[j].End
		}
	}
	if seqDiff(end, cur) > 0 {
		put(cur, end)
	}
	// Ranges i..j-1 touch [start, end): merge them into one.
	m := Range{start, end}
	if j > i {
		if seqDiff(r.ooo[i].Start, m.Start) < 0 {
			m.Start = r.ooo[i].Start
		}
		if seqDiff(r.ooo[j-1].End, m.End) > 0 {
			m.End = r.ooo[j-1].End
		}
	}
	r.ooo = slices.Replace(r.ooo, i, j, m)
}

// grow makes the ring hold at least need bytes from rd (need <= window).
func (r *Reassembler) grow(need int) {
	if need <= len(r.ring) {
		return
	}
	c := min(max(2*len(r.ring), need, minRing), r.window)
	ring := make([]byte, c)
	if len(r.ring) > 0 {
		k := copy(ring, r.ring[r.head:])
		copy(ring[k:], r.ring[:r.head])
	}
	r.ring, r.head = ring, 0
}

func (r *Reassembler) copyIn(dsn uint64, p []byte) {
	at := (r.head + int(seqDiff(dsn, r.rd))) % len(r.ring)
	k := copy(r.ring[at:], p)
	copy(r.ring, p[k:])
}

// unread is the number of in-order bytes not consumed yet.
func (r *Reassembler) unread() int {
	n := seqDiff(r.next, r.rd)
	if r.done {
		n-- // the DATA_FIN's DSN is no byte
	}
	return int(n)
}

// read consumes up to len(p) in-order bytes into p.
func (r *Reassembler) read(p []byte) int {
	n := min(len(p), r.unread())
	if n == 0 {
		return 0
	}
	k := copy(p[:n], r.ring[r.head:])
	copy(p[k:n], r.ring)
	r.rd += uint64(n)
	if r.head = (r.head + n) % len(r.ring); r.unread() == 0 && len(r.ooo) == 0 {
		r.head = 0 // keep the next bytes contiguous
	}
	return n
}

// consumed is the DSN up to which the application has read, counting the
// DATA_FIN once everything before it was read: what a receiver that only
// acknowledges consumed data advertises.
func (r *Reassembler) consumed() uint64 {
	if r.done && r.rd == r.finDSN {
		return r.next
	}
	return r.rd
}
