package main

import "time"

// Stall analysis parameters.
const (
	// stallBin is the sampling interval of the received bytes.
	stallBin = 10 * time.Millisecond
	// stallFrac: a bin with fewer bytes than this share of the pre-cut
	// rate counts as stalled.
	stallFrac = 0.10
	// stallLead is how long before the cut the analysis window starts.
	stallLead = 500 * time.Millisecond
	// rateWindow is the span of the pre-cut and post-cut rates.
	rateWindow = 2 * time.Second
)

// stallStats describes the receive rate around a link cut.
type stallStats struct {
	// PreMbps is the rate over rateWindow before the cut, PostMbps over
	// the last rateWindow of the transfer, or less to exclude the cut
	// and the stall.
	PreMbps, PostMbps float64
	// Stall is the longest run of stallBin intervals, from stallLead
	// before the cut to the end, that each received less than
	// stallFrac of the pre-cut rate; StallStart is its start relative to
	// the cut.
	Stall, StallStart time.Duration
	// MaxGap is the longest time without any read in the same window.
	MaxGap time.Duration
}

// analyseStall computes stallStats from the reads of a transfer whose
// link was cut at cut and which ended (EOF or error) at end, both
// relative to the first byte.
func analyseStall(reads []readRec, cut, end time.Duration) stallStats {
	var s stallStats
	bytesIn := func(from, to time.Duration) int64 {
		var n int64
		for _, r := range reads {
			if r.At >= from && r.At < to {
				n += int64(r.N)
			}
		}
		return n
	}
	rate := func(from, to time.Duration) float64 {
		from = max(from, 0)
		if to <= from {
			return 0
		}
		return float64(bytesIn(from, to)) * 8 / (to - from).Seconds() / 1e6
	}
	s.PreMbps = rate(cut-rateWindow, cut)

	start := max(cut-stallLead, 0)
	if end <= start {
		return s
	}
	nbins := int((end - start + stallBin - 1) / stallBin)
	bins := make([]int64, nbins)
	last := start
	for _, r := range reads {
		if r.At < start || r.At > end {
			continue
		}
		i := min(int((r.At-start)/stallBin), nbins-1)
		bins[i] += int64(r.N)
		s.MaxGap = max(s.MaxGap, r.At-last)
		last = r.At
	}
	s.MaxGap = max(s.MaxGap, end-last)
	threshold := s.PreMbps * 1e6 / 8 * stallBin.Seconds() * stallFrac
	run, best, bestAt := 0, 0, 0
	for i, b := range bins {
		if float64(b) < threshold {
			run++
			if run > best {
				best, bestAt = run, i-run+1
			}
		} else {
			run = 0
		}
	}
	s.Stall = time.Duration(best) * stallBin
	s.StallStart = start + time.Duration(bestAt)*stallBin - cut
	// After the cut and after the stall, at most the last rateWindow.
	s.PostMbps = rate(max(cut+s.StallStart+s.Stall, end-rateWindow), end)
	return s
}
