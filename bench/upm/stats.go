package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, or 0 when it is empty: the smallest value with at least p % of
// the values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencySummary is the distribution of one run's join latencies.
type latencySummary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
	Max float64 `json:"max_us"`
}

// summarize sorts lat in place and returns its percentiles in µs.
func summarize(lat []time.Duration) latencySummary {
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	s := latencySummary{N: len(lat)}
	if len(lat) > 0 {
		s.P50, s.P90, s.P99, s.Max = us(percentile(lat, 50)), us(percentile(lat, 90)), us(percentile(lat, 99)), us(lat[len(lat)-1])
	}
	return s
}

// fmtUs renders microseconds compactly: 87µs, 1.24ms, 312ms, 2.1s.
func fmtUs(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 100_000:
		return fmt.Sprintf("%.2fms", us/1000)
	case us < 1_000_000:
		return fmt.Sprintf("%.0fms", us/1000)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times,
// from the auxiliary vector (100 on every mainstream architecture).
func clockTicks() int64 {
	const atClkTck = 17
	if auxv, err := unix.Auxv(); err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100
}

// cpuTimes is a process's CPU time so far, all threads.
type cpuTimes struct {
	User, Sys time.Duration
}

// Total is user plus system time.
func (c cpuTimes) Total() time.Duration { return c.User + c.Sys }

// Sub is the difference c - o.
func (c cpuTimes) Sub(o cpuTimes) cpuTimes { return cpuTimes{c.User - o.User, c.Sys - o.Sys} }

// parseStatCPU returns utime and stime from the contents of
// /proc/PID/stat.
func parseStatCPU(stat []byte) (cpuTimes, error) {
	// comm (field 2) may hold spaces and parentheses: split after the
	// last ')'. The rest starts with field 3 (state); utime and stime are
	// fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return cpuTimes{}, fmt.Errorf("stat has %d fields after comm, want ≥ 13", len(f))
	}
	var ticks [2]int64
	for j, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("stat: utime/stime %q: %w", s, err)
		}
		ticks[j] = v
	}
	unit := time.Second / time.Duration(clockTicks())
	return cpuTimes{User: time.Duration(ticks[0]) * unit, Sys: time.Duration(ticks[1]) * unit}, nil
}

// procCPU returns the CPU time pid used so far.
func procCPU(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	c, err := parseStatCPU(b)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return c, nil
}

// procCtxSwitches sums the voluntary and involuntary context switches of
// pid's threads (threads that ended are not counted).
func procCtxSwitches(pid int) (int64, error) {
	dirs, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	var n int64
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, d.Name()))
		if err != nil {
			continue // the thread ended
		}
		n += parseCtxSwitches(b)
	}
	return n, nil
}

// parseCtxSwitches adds voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches from the contents of a status file.
func parseCtxSwitches(status []byte) int64 {
	var n int64
	for l := range strings.SplitSeq(string(status), "\n") {
		key, val, ok := strings.Cut(l, ":")
		if ok && (key == "voluntary_ctxt_switches" || key == "nonvoluntary_ctxt_switches") {
			v, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
			n += v
		}
	}
	return n
}

// memKB is a process's peak and current resident set size in KiB.
type memKB struct {
	HWM, RSS int64
}

// parseStatusMem returns VmHWM and VmRSS from the contents of
// /proc/PID/status.
func parseStatusMem(status []byte) (memKB, error) {
	var m memKB
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status: %s: unexpected %q", key, val)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status: %s: %w", key, err)
		}
		if key == "VmHWM" {
			m.HWM = v
		} else {
			m.RSS = v
		}
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("status: VmHWM or VmRSS missing")
	}
	return m, nil
}

// procMem reads pid's VmHWM and VmRSS.
func procMem(pid int) (memKB, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memKB{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	m, err := parseStatusMem(b)
	if err != nil {
		return m, fmt.Errorf("pid %d: %w", pid, err)
	}
	return m, nil
}

// hostCPU is a sample of /proc/stat's aggregate line, for the share of
// both cores that was busy during a run (other work on the machine
// included).
type hostCPU struct{ busy, total int64 }

func readHostCPU() (hostCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseHostCPU(b)
}

// parseHostCPU reads the "cpu " line: user nice system idle iowait irq
// softirq steal ...; idle and iowait count as not busy.
func parseHostCPU(b []byte) (hostCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return hostCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var h hostCPU
	for i, s := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return hostCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		h.total += v
		if i != 3 && i != 4 {
			h.busy += v
		}
	}
	return h, nil
}

// busyPct is the busy share of all CPUs between two samples, in % of the
// whole machine.
func busyPct(a, b hostCPU) float64 {
	if b.total <= a.total {
		return 0
	}
	return 100 * float64(b.busy-a.busy) / float64(b.total-a.total)
}
