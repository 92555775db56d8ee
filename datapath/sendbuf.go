package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Send-buffer errors; returned errors wrap one of these.
var (
	ErrSendBufferFull = errors.New("datapath: send buffer full")
	ErrClosed         = errors.New("datapath: stream closed for writing")
	ErrInvalidAck     = errors.New("datapath: DATA_ACK for data never sent")
)

// Range is a half-open span [Start, End) of data sequence numbers.
type Range struct {
	Start, End uint64
}

type flight struct {
	Range
	subflow int
	// reinjected: already queued for resending elsewhere (Reinject), so a
	// later FailSubflow does not queue it again.
	reinjected bool
}

// minRing is the initial ring size; rings grow by doubling up to their
// limit so that idle connections stay small.
const minRing = 64 << 10

// SendBuffer is the send side of a connection: it assigns DSNs to written
// bytes, hands segments to subflows, keeps everything until DATA_ACK and,
// when a subflow fails or stalls, queues that subflow's unacknowledged
// ranges for reinjection on another one. It is not safe for concurrent use.
type SendBuffer struct {
	una    uint64 // oldest unacknowledged DSN
	sndNxt uint64 // first DSN never handed to a subflow
	// ring holds the n bytes from una on, starting at ring[head] and
	// wrapping; it is never resliced, so writes never move old data.
	ring     []byte
	head, n  int
	limit    int
	fin      bool     // DATA_FIN queued at finDSN
	finDSN   uint64   // fixed by Close: no writes follow
	inflight []flight // handed out, not acked
	reinject []Range  // to resend first, sorted
}

// NewSendBuffer returns a buffer whose first byte gets DSN idsn and which
// holds at most limit unacknowledged bytes (at least 1). The peer's
// receive window must be at least limit.
func NewSendBuffer(idsn uint64, limit int) *SendBuffer {
	return &SendBuffer{una: idsn, sndNxt: idsn, limit: max(limit, 1)}
}

// Write queues p and returns how much fit; when not all of p fits it
// returns ErrSendBufferFull, and the caller retries after an Ack.
func (s *SendBuffer) Write(p []byte) (int, error) {
	if s.fin {
		return 0, ErrClosed
	}
	n := min(len(p), s.limit-s.n)
	if n > 0 {
		s.grow(s.n + n)
		at := (s.head + s.n) % len(s.ring)
		k := copy(s.ring[at:], p[:n])
		copy(s.ring, p[k:n])
		s.n += n
	}
	if n < len(p) {
		return n, fmt.Errorf("%w: %d of %d bytes queued", ErrSendBufferFull, n, len(p))
	}
	return n, nil
}

// grow makes the ring hold at least need bytes (need <= limit).
func (s *SendBuffer) grow(need int) {
	if need <= len(s.ring) {
		return
	}
	c := min(max(2*len(s.ring), need, minRing), s.limit)
	r := make([]byte, c)
	s.copyOut(r[:s.n], 0)
	s.ring, s.head = r, 0
}

// copyOut copies the len(dst) bytes at offset off from una into dst.
func (s *SendBuffer) copyOut(dst []byte, off int) {
	if len(dst) == 0 {
		return
	}
	at := (s.head + off) % len(s.ring)
	k := copy(dst, s.ring[at:])
	copy(dst[k:], s.ring)
}

// appendBytes appends the n bytes at offset off from una to dst.
func (s *SendBuffer) appendBytes(dst []byte, off, n int) []byte {
	if n == 0 {
		return dst
	}
	at := (s.head + off) % len(s.ring)
	first := min(n, len(s.ring)-at)
	dst = append(dst, s.ring[at:at+first]...)
	return append(dst, s.ring[:n-first]...)
}

// Close queues DATA_FIN after the written bytes. Closing twice is a no-op.
func (s *SendBuffer) Close() {
	if !s.fin {
		s.fin, s.finDSN = true, s.una+uint64(s.n)
	}
}

// end is the DSN after everything queued, counting the FIN's DSN.
func (s *SendBuffer) end() uint64 {
	if s.fin {
		return s.finDSN + 1
	}
	return s.una + uint64(s.n)
}

// Una is the oldest unacknowledged DSN.
func (s *SendBuffer) Una() uint64 { return s.una }

// Unacked is the number of queued bytes not yet acknowledged.
func (s *SendBuffer) Unacked() int { return s.n }

// Done reports whether the stream and its DATA_FIN were acknowledged.
func (s *SendBuffer) Done() bool { return s.fin && s.una == s.end() }

// Next returns the next segment of at most maxPayload bytes to send on
// subflow, reinjections first, and records it as in flight there. It
// returns false when there is nothing to send. The payload is a copy.
func (s *SendBuffer) Next(subflow, maxPayload int) (*Data, bool) {
	r, fin, ok := s.next(subflow, maxPayload)
	if !ok {
		return nil, false
	}
	from, n := s.span(r, fin)
	var p []byte
	if n > 0 {
		p = make([]byte, n)
		s.copyOut(p, from)
	}
	return &Data{DSN: r.Start, Fin: fin, Payload: p}, true
}

// appendNext is Next encoding the DATA frame straight onto dst, with no
// intermediate copy. It returns the extended dst and the payload length.
func (s *SendBuffer) appendNext(dst []byte, subflow, maxPayload int) ([]byte, int, bool) {
	r, fin, ok := s.next(subflow, maxPayload)
	if !ok {
		return dst, 0, false
	}
	from, n := s.span(r, fin)
	var hdr [HeaderSize + 8]byte
	hdr[0], hdr[1] = byte(TypeData), flagIf(fin, flagFin)
	binary.BigEndian.PutUint16(hdr[2:], uint16(8+n))
	binary.BigEndian.PutUint64(hdr[4:], r.Start)
	dst = append(dst, hdr[:]...)
	return s.appendBytes(dst, from, n), n, true
}

// span returns the payload of segment r as an offset from una and a length.
func (s *SendBuffer) span(r Range, fin bool) (int, int) {
	dataEnd := r.End
	if fin {
		dataEnd--
	}
	from, to := seqDiff(r.Start, s.una), seqDiff(dataEnd, s.una)
	return int(from), int(max(to-from, 0))
}

func (s *SendBuffer) next(subflow, maxPayload int) (Range, bool, bool) {
	maxPayload = min(max(maxPayload, 1), MaxDataPayload)
	for len(s.reinject) > 0 {
		r := s.reinject[0]
		if seqDiff(r.Start, s.una) < 0 {
			r.Start = s.una
		}
		if seqDiff(r.End, r.Start) <= 0 {
			s.reinject = slices.Delete(s.reinject, 0, 1)
			continue
		}
		e := s.cut(r, maxPayload)
		if e == r.End {
			s.reinject = slices.Delete(s.reinject, 0, 1)
		} else {
			s.reinject[0].Start = e
		}
		return s.record(Range{r.Start, e}, subflow)
	}
	if s.sndNxt == s.end() {
		return Range{}, false, false
	}
	e := s.cut(Range{s.sndNxt, s.end()}, maxPayload)
	r, fin, ok := s.record(Range{s.sndNxt, e}, subflow)
	s.sndNxt = e
	return r, fin, ok
}

// cut returns where a segment starting at r.Start ends, given the payload
// limit; the FIN's DSN rides along when the payload reaches it.
func (s *SendBuffer) cut(r Range, maxPayload int) uint64 {
	e := r.Start + uint64(maxPayload)
	if seqDiff(e, r.End) >= 0 {
		return r.End
	}
	if s.fin && e == s.finDSN && r.End == e+1 {
		return r.End
	}
	return e
}

func (s *SendBuffer) record(r Range, subflow int) (Range, bool, bool) {
	s.inflight = append(s.inflight, flight{Range: r, subflow: subflow})
	return r, s.fin && r.End == s.finDSN+1, true
}

// Ack applies a cumulative DATA_ACK, releasing acknowledged bytes. Stale
// acks are ignored; acks beyond what was sent return ErrInvalidAck.
func (s *SendBuffer) Ack(ack uint64) error {
	if seqDiff(ack, s.sndNxt) > 0 {
		return fmt.Errorf("%w: ack %d, sent up to %d", ErrInvalidAck, ack, s.sndNxt)
	}
	n := seqDiff(ack, s.una)
	if n <= 0 {
		return nil
	}
	k := int(min(n, int64(s.n)))
	if s.n -= k; s.n == 0 {
		s.head = 0
	} else {
		s.head = (s.head + k) % len(s.ring)
	}
	s.una = ack
	s.inflight = slices.DeleteFunc(s.inflight, func(f flight) bool {
		return seqDiff(f.End, ack) <= 0
	})
	return nil
}

// FailSubflow forgets subflow and returns its unacknowledged ranges, which
// are queued so that Next reinjects them (on whichever subflow asks next).
// Ranges already queued by Reinject are not returned again.
func (s *SendBuffer) FailSubflow(subflow int) []Range {
	return s.take(subflow, true)
}

// Reinject queues subflow's unacknowledged ranges for resending elsewhere
// but keeps them in flight there too: for a subflow that stalled without
// failing, whichever copy arrives first wins and the receiver drops the
// other. It returns the ranges queued.
func (s *SendBuffer) Reinject(subflow int) []Range {
	return s.take(subflow, false)
}

func (s *SendBuffer) take(subflow int, forget bool) []Range {
	var lost []Range
	s.inflight = slices.DeleteFunc(s.inflight, func(f flight) bool {
		if f.subflow != subflow {
			return false
		}
		if !f.reinjected && seqDiff(f.End, s.una) > 0 {
			r := f.Range
			if seqDiff(r.Start, s.una) < 0 {
				r.Start = s.una
			}
			lost = append(lost, r)
		}
		return forget
	})
	if !forget {
		for i := range s.inflight {
			if s.inflight[i].subflow == subflow {
				s.inflight[i].reinjected = true
			}
		}
	}
	s.reinject = append(s.reinject, lost...)
	slices.SortFunc(s.reinject, func(a, b Range) int {
		return int(min(max(seqDiff(a.Start, b.Start), -1), 1))
	})
	return lost
}
