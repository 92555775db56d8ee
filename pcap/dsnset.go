package pcap

import "sort"

// maxIntervals bounds the per-direction interval set so that a capture
// missing the data ACKs (which normally prune it) cannot grow it without
// limit; the oldest ranges are forgotten first.
const maxIntervals = 4096

// dsnInterval is a half-open range [start, end) of data sequence numbers
// together with the set of subflows (bit i = subflow index i) that have
// carried all of it.
type dsnInterval struct {
	start, end uint64
	mask       uint64
}

// dsnSet records which subflows carried which part of one direction's
// data sequence space. Intervals are sorted, disjoint and non-empty.
type dsnSet struct {
	iv []dsnInterval
}

// add records that subflow bit carried [start, end). It returns how many
// of those bytes this subflow had not carried before (fresh) and how many
// of the fresh bytes had already been carried by another subflow
// (reinjected).
func (s *dsnSet) add(start, end, bit uint64) (fresh, reinjected uint64) {
	if end <= start {
		return 0, 0
	}
	// Fast path for the common case: new data past everything seen.
	if n := len(s.iv); n == 0 || start >= s.iv[n-1].end {
		if n > 0 && s.iv[n-1].end == start && s.iv[n-1].mask == bit {
			s.iv[n-1].end = end
		} else {
			s.iv = append(s.iv, dsnInterval{start, end, bit})
			if len(s.iv) > maxIntervals {
				s.iv = append(s.iv[:0], s.iv[len(s.iv)-maxIntervals:]...)
			}
		}
		return end - start, 0
	}
	// First interval that ends after start.
	i := sort.Search(len(s.iv), func(k int) bool { return s.iv[k].end > start })
	var pieces []dsnInterval
	cur := start
	j := i
	for ; j < len(s.iv) && s.iv[j].start < end; j++ {
		v := s.iv[j]
		if v.start < cur {
			// Part of v before the new range keeps its mask.
			pieces = append(pieces, dsnInterval{v.start, cur, v.mask})
		} else if v.start > cur {
			pieces = append(pieces, dsnInterval{cur, v.start, bit})
			fresh += v.start - cur
			cur = v.start
		}
		ovEnd := min(v.end, end)
		if v.mask&bit == 0 {
			fresh += ovEnd - cur
			if v.mask != 0 {
				reinjected += ovEnd - cur
			}
		}
		pieces = append(pieces, dsnInterval{cur, ovEnd, v.mask | bit})
		if v.end > end {
			pieces = append(pieces, dsnInterval{end, v.end, v.mask})
		}
		cur = ovEnd
	}
	if cur < end {
		pieces = append(pieces, dsnInterval{cur, end, bit})
		fresh += end - cur
	}
	// Splice pieces in place of s.iv[i:j], then merge neighbours with
	// equal masks so steady single-subflow traffic stays one interval.
	tail := append([]dsnInterval(nil), s.iv[j:]...)
	s.iv = append(s.iv[:i], pieces...)
	s.iv = append(s.iv, tail...)
	s.merge(max(i-1, 0), min(i+len(pieces)+1, len(s.iv)))
	if len(s.iv) > maxIntervals {
		s.iv = append(s.iv[:0], s.iv[len(s.iv)-maxIntervals:]...)
	}
	return fresh, reinjected
}

// merge joins touching intervals with equal masks within iv[lo:hi].
func (s *dsnSet) merge(lo, hi int) {
	out := s.iv[:lo]
	for k := lo; k < len(s.iv); k++ {
		v := s.iv[k]
		if k < hi && len(out) > 0 {
			last := &out[len(out)-1]
			if last.end == v.start && last.mask == v.mask {
				last.end = v.end
				continue
			}
		}
		out = append(out, v)
	}
	s.iv = out
}

// prune forgets everything below ack: data the peer has acknowledged at
// the data level is not expected to be sent again.
func (s *dsnSet) prune(ack uint64) {
	i := sort.Search(len(s.iv), func(k int) bool { return s.iv[k].end > ack })
	if i > 0 {
		s.iv = append(s.iv[:0], s.iv[i:]...)
	}
}
