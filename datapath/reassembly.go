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

type segment struct {
	start uint64
	data  []byte
}

// Reassembler is the receive side of a connection: it accepts DATA from
// any subflow in any order, drops bytes it already has, and delivers the
// stream in order exactly once. Buffered out-of-order data is bounded by
// the window. It is not safe for concurrent use.
type Reassembler struct {
	next     uint64    // next DSN to deliver; the cumulative ack
	window   int       // bytes beyond next the peer may send
	segs     []segment // out of order, sorted, non-overlapping, after next
	buffered int
	fin      bool
	finDSN   uint64
	done     bool
}

// NewReassembler returns a reassembler expecting idsn first and buffering
// at most window bytes ahead of the delivered stream (at least 1).
func NewReassembler(idsn uint64, window int) *Reassembler {
	return &Reassembler{next: idsn, window: max(window, 1)}
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
	rel := seqDiff(d.DSN, r.next)
	end := rel + int64(len(d.Payload))
	if end > int64(r.window) {
		return nil, fmt.Errorf("%w: DSN %d+%d, acked %d, window %d", ErrWindowExceeded, d.DSN, len(d.Payload), r.next, r.window)
	}
	if err := r.checkFIN(d, end); err != nil {
		return nil, err
	}
	if r.done {
		return nil, nil // everything already delivered
	}
	p := d.Payload
	if rel < 0 { // drop the already delivered prefix
		p = p[min(int64(len(p)), -rel):]
		rel = 0
	}
	if len(p) > 0 {
		r.insert(rel, p)
	}
	return r.deliver(), nil
}

func (r *Reassembler) checkFIN(d *Data, end int64) error {
	finRel := seqDiff(r.finDSN, r.next)
	switch {
	case d.Fin && r.fin && d.DSN+uint64(len(d.Payload)) != r.finDSN:
		return fmt.Errorf("%w: FIN at %d, earlier FIN at %d", ErrBadFIN, d.DSN+uint64(len(d.Payload)), r.finDSN)
	case d.Fin && !r.fin:
		if end < 0 || (len(r.segs) > 0 && r.segEnd(len(r.segs)-1) > end) {
			return fmt.Errorf("%w: FIN at %d before data already received", ErrBadFIN, d.DSN+uint64(len(d.Payload)))
		}
		r.fin, r.finDSN = true, d.DSN+uint64(len(d.Payload))
	case !d.Fin && r.fin && !r.done && end > finRel:
		return fmt.Errorf("%w: data up to %d beyond FIN at %d", ErrBadFIN, d.DSN+uint64(len(d.Payload)), r.finDSN)
	}
	return nil
}

// segEnd is the end of segs[i] relative to next.
func (r *Reassembler) segEnd(i int) int64 {
	return seqDiff(r.segs[i].start, r.next) + int64(len(r.segs[i].data))
}

// insert stores the parts of p (at rel, relative to next) not held yet.
func (r *Reassembler) insert(rel int64, p []byte) {
	cur, end := rel, rel+int64(len(p))
	var add []segment
	piece := func(from, to int64) {
		b := slices.Clone(p[from-rel : to-rel])
		add = append(add, segment{start: r.next + uint64(from), data: b})
		r.buffered += len(b)
	}
	for i := range r.segs {
		s, e := seqDiff(r.segs[i].start, r.next), r.segEnd(i)
		if e <= cur {
			continue
		}
		if s >= end {
			break
		}
		if s > cur {
			piece(cur, s)
		}
		cur = max(cur, e)
	}
	if cur < end {
		piece(cur, end)
	}
	if len(add) == 0 {
		return
	}
	r.segs = append(r.segs, add...)
	slices.SortFunc(r.segs, func(a, b segment) int {
		return int(min(max(seqDiff(a.start, b.start), -1), 1))
	})
}

func (r *Reassembler) deliver() []byte {
	var out []byte
	n := 0
	for n < len(r.segs) && r.segs[n].start == r.next {
		out = append(out, r.segs[n].data...)
		r.next += uint64(len(r.segs[n].data))
		r.buffered -= len(r.segs[n].data)
		n++
	}
	r.segs = slices.Delete(r.segs, 0, n)
	if r.fin && r.next == r.finDSN {
		r.next++ // DATA_FIN occupies one DSN, as in RFC 8684
		r.done = true
	}
	return out
}
