package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even is the lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the min", hundred, 0.001, time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestSummarizeSorts(t *testing.T) {
	s := summarize([]time.Duration{3 * time.Microsecond, time.Microsecond, 2 * time.Microsecond})
	if s.N != 3 || s.P50 != 2 || s.Max != 3 {
		t.Errorf("summarize = %+v, want n 3, p50 2µs, max 3µs", s)
	}
	if s := summarize(nil); s != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v", s)
	}
}

func TestParseStatCPU(t *testing.T) {
	// comm with a space and a parenthesis; utime 250, stime 50 ticks.
	stat := []byte("1234 (upm (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 300 18446744073709551615")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Second / time.Duration(clockTicks())
	if got.User != 250*tick || got.Sys != 50*tick || got.Total() != 300*tick {
		t.Errorf("parseStatCPU = %+v, want user 250 and sys 50 ticks", got)
	}
	if _, err := parseStatCPU([]byte("1234 (short) S 1")); err == nil {
		t.Error("short stat: no error")
	}
}

func TestParseStatusMem(t *testing.T) {
	status := []byte("Name:\tupm\nVmPeak:\t 900 kB\nVmHWM:\t   14216 kB\nVmRSS:\t   13900 kB\nThreads:\t7\n")
	got, err := parseStatusMem(status)
	if err != nil {
		t.Fatal(err)
	}
	if got != (memKB{HWM: 14216, RSS: 13900}) {
		t.Errorf("parseStatusMem = %+v", got)
	}
	if _, err := parseStatusMem([]byte("Name:\tupm\n")); err == nil {
		t.Error("no VmHWM: no error")
	}
}

func TestParseCtxSwitches(t *testing.T) {
	if got := parseCtxSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t10\nnonvoluntary_ctxt_switches:\t5\n")); got != 15 {
		t.Errorf("parseCtxSwitches = %d, want 15", got)
	}
}

func TestHostCPU(t *testing.T) {
	a, err := parseHostCPU([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseHostCPU([]byte("cpu  200 0 100 1300 50 0 0 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// 150 busy of 650 elapsed ticks.
	if got, want := busyPct(a, b), 100*150.0/650; got != want {
		t.Errorf("busyPct = %v, want %v", got, want)
	}
}

func TestNetCounters(t *testing.T) {
	c := netCounters{}
	in := "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\nMPTcpExt: MPJoinSynRx\nMPTcpExt: 7\n"
	if err := parseNetCounters([]byte(in), c); err != nil {
		t.Fatal(err)
	}
	if c["TcpExt.ListenDrops"] != 2 || c["MPTcpExt.MPJoinSynRx"] != 7 {
		t.Errorf("parsed %v", c)
	}
	later := netCounters{"TcpExt.SyncookiesSent": 1, "TcpExt.ListenDrops": 5, "MPTcpExt.MPJoinSynRx": 9, "TcpExt.Other": 3}
	d := later.delta(c)
	if len(d) != 2 || d["TcpExt.ListenDrops"] != 3 || d["MPTcpExt.MPJoinSynRx"] != 2 {
		t.Errorf("delta = %v, want ListenDrops +3 and MPJoinSynRx +2", d)
	}
	if err := parseNetCounters([]byte("TcpExt: A B\nTcpExt: 1\n"), netCounters{}); err == nil {
		t.Error("mismatched lines: no error")
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("250, 1000")
	if err != nil || len(got) != 2 || got[0] != 250 || got[1] != 1000 {
		t.Errorf("parseRates = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "x", "250,,1000"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q): no error", bad)
		}
	}
}
