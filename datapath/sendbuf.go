package datapath

import (
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
}

// SendBuffer is the send side of a connection: it assigns DSNs to written
// bytes, hands segments to subflows, keeps everything until DATA_ACK and,
// when a subflow fails, queues that subflow's unacknowledged ranges for
// reinjection on another one. It is not safe for concurrent use.
type SendBuffer struct {
	una      uint64 // oldest unacknowledged DSN
	sndNxt   uint64 // first DSN never handed to a subflow
	buf      []byte // bytes from una on
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
	n := min(len(p), s.limit-len(s.buf))
	s.buf = append(s.buf, p[:n]...)
	if n < len(p) {
		return n, fmt.Errorf("%w: %d of %d bytes queued", ErrSendBufferFull, n, len(p))
	}
	return n, nil
}

// Close queues DATA_FIN after the written bytes. Closing twice is a no-op.
func (s *SendBuffer) Close() {
	if !s.fin {
		s.fin, s.finDSN = true, s.una+uint64(len(s.buf))
	}
}

// end is the DSN after everything queued, counting the FIN's DSN.
func (s *SendBuffer) end() uint64 {
	if s.fin {
		return s.finDSN + 1
	}
	return s.una + uint64(len(s.buf))
}

// Una is the oldest unacknowledged DSN.
func (s *SendBuffer) Una() uint64 { return s.una }

// Unacked is the number of queued bytes not yet acknowledged.
func (s *SendBuffer) Unacked() int { return len(s.buf) }

// Done reports whether the stream and its DATA_FIN were acknowledged.
func (s *SendBuffer) Done() bool { return s.fin && s.una == s.end() }

// Next returns the next segment of at most maxPayload bytes to send on
// subflow, reinjections first, and records it as in flight there. It
// returns false when there is nothing to send.
func (s *SendBuffer) Next(subflow, maxPayload int) (*Data, bool) {
	maxPayload = min(max(maxPayload, 1), MaxDataPayload)
	for len(s.reinject) > 0 {
		r := s.reinject[0]
		if seqDiff(r.Start, s.una) < 0 {
			r.Start = s.una
		}
		if seqDiff(r.End, r.Start) <= 0 {
			s.reinject = s.reinject[1:]
			continue
		}
		e := s.cut(r, maxPayload)
		if e == r.End {
			s.reinject = s.reinject[1:]
		} else {
			s.reinject[0].Start = e
		}
		return s.segment(Range{r.Start, e}, subflow), true
	}
	if s.sndNxt == s.end() {
		return nil, false
	}
	e := s.cut(Range{s.sndNxt, s.end()}, maxPayload)
	d := s.segment(Range{s.sndNxt, e}, subflow)
	s.sndNxt = e
	return d, true
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

func (s *SendBuffer) segment(r Range, subflow int) *Data {
	s.inflight = append(s.inflight, flight{r, subflow})
	dataEnd := r.End
	fin := s.fin && r.End == s.finDSN+1
	if fin {
		dataEnd--
	}
	from, to := seqDiff(r.Start, s.una), seqDiff(dataEnd, s.una)
	var p []byte
	if to > from {
		p = slices.Clone(s.buf[from:to])
	}
	return &Data{DSN: r.Start, Fin: fin, Payload: p}
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
	s.buf = s.buf[min(n, int64(len(s.buf))):]
	if len(s.buf) == 0 {
		s.buf = nil // let the backing array go
	}
	s.una = ack
	s.inflight = slices.DeleteFunc(s.inflight, func(f flight) bool {
		return seqDiff(f.End, ack) <= 0
	})
	return nil
}

// FailSubflow forgets subflow and returns its unacknowledged ranges, which
// are queued so that Next reinjects them (on whichever subflow asks next).
func (s *SendBuffer) FailSubflow(subflow int) []Range {
	var lost []Range
	s.inflight = slices.DeleteFunc(s.inflight, func(f flight) bool {
		if f.subflow != subflow {
			return false
		}
		if seqDiff(f.End, s.una) > 0 {
			r := f.Range
			if seqDiff(r.Start, s.una) < 0 {
				r.Start = s.una
			}
			lost = append(lost, r)
		}
		return true
	})
	s.reinject = append(s.reinject, lost...)
	slices.SortFunc(s.reinject, func(a, b Range) int {
		return int(min(max(seqDiff(a.Start, b.Start), -1), 1))
	})
	return lost
}
