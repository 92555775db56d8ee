package main

import (
	"bytes"
	"testing"
	"time"
)

func TestAnalyseStall(t *testing.T) {
	// 1 ms reads of 12500 bytes (100 Mbit/s) for 5 s, nothing from 3.2 s
	// to 3.7 s; cut at 3 s.
	var reads []readRec
	for at := time.Duration(0); at < 5*time.Second; at += time.Millisecond {
		if at >= 3200*time.Millisecond && at < 3700*time.Millisecond {
			continue
		}
		reads = append(reads, readRec{At: at, N: 12500})
	}
	s := analyseStall(reads, 3*time.Second, 5*time.Second)
	if s.PreMbps < 99 || s.PreMbps > 101 {
		t.Errorf("PreMbps = %v, want 100", s.PreMbps)
	}
	if s.Stall != 500*time.Millisecond || s.StallStart != 200*time.Millisecond {
		t.Errorf("Stall = %v at %v, want 500ms at 200ms", s.Stall, s.StallStart)
	}
	if s.MaxGap != 501*time.Millisecond {
		t.Errorf("MaxGap = %v, want 501ms", s.MaxGap)
	}
}

func TestPattern(t *testing.T) {
	p := newPattern()
	b := append([]byte(nil), p.chunk(patternPeriod-5, 100)...)
	if !p.check(patternPeriod-5, b) || !p.check(2*patternPeriod-5, b) {
		t.Fatal("chunk does not match itself")
	}
	if p.check(patternPeriod-4, b) {
		t.Fatal("shifted chunk matches")
	}
	r := request{Op: opSend, SHA: true, ID: 7, Duration: time.Second, Limit: 9}
	got, err := readRequest(bytes.NewReader(r.encode()))
	if err != nil || got != r {
		t.Fatalf("request round trip: %+v, %v", got, err)
	}
}
