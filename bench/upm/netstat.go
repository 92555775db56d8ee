package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
)

// netCounters are a namespace's SNMP counters ("TcpExt.ListenDrops"),
// from /proc/net/netstat and /proc/net/snmp.
type netCounters map[string]int64

// readNetCounters reads the counters of ns. The files are read through
// /proc/thread-self: /proc/net follows the process's main thread, which
// stays in the host namespace.
func readNetCounters(ns *nstopo.NS) (netCounters, error) {
	c := netCounters{}
	err := ns.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/netstat", "/proc/thread-self/net/snmp"} {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := parseNetCounters(b, c); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		b, err := os.ReadFile("/proc/thread-self/net/sockstat")
		if err != nil {
			return err
		}
		parseSockstat(b, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read counters of netns %s: %w", ns.Name, err)
	}
	return c, nil
}

// parseNetCounters adds the counters of a netstat/snmp file to c: pairs
// of lines, "Prefix: Name1 Name2 ..." then "Prefix: 1 2 ...".
func parseNetCounters(b []byte, c netCounters) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		names := strings.Fields(sc.Text())
		if len(names) == 0 {
			continue
		}
		if !sc.Scan() {
			return fmt.Errorf("%s: header without values", names[0])
		}
		vals := strings.Fields(sc.Text())
		if len(vals) != len(names) || vals[0] != names[0] {
			return fmt.Errorf("malformed lines %q / %q", names, vals)
		}
		prefix := strings.TrimSuffix(names[0], ":")
		for i := 1; i < len(names); i++ {
			v, err := strconv.ParseInt(vals[i], 10, 64)
			if err != nil {
				continue // e.g. Tcp MaxConn is -1 only in theory; skip odd ones
			}
			c[prefix+"."+names[i]] = v
		}
	}
	return sc.Err()
}

// parseSockstat adds the gauges of /proc/net/sockstat to c, e.g.
// "sockstat.TCP.tw" from "TCP: inuse 3 orphan 0 tw 37737 alloc 3010 mem 2".
func parseSockstat(b []byte, c netCounters) {
	for l := range strings.SplitSeq(string(b), "\n") {
		proto, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseInt(f[i+1], 10, 64); err == nil {
				c["sockstat."+proto+"."+f[i]] = v
			}
		}
	}
}

// interestingCounters are reported when they moved during a run, besides
// every MPTcpExt counter: the signs of dropped or retried handshakes and
// of TIME_WAIT trouble.
var interestingCounters = []string{
	"TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPReqQFullDrop", "TcpExt.TCPReqQFullDoCookies",
	"TcpExt.SyncookiesSent", "TcpExt.SyncookiesFailed", "TcpExt.TCPTimeWaitOverflow", "TcpExt.TCPSynRetrans",
	"TcpExt.TCPBacklogDrop", "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TW", "TcpExt.TWRecycled",
	"TcpExt.PAWSEstab", "TcpExt.TCPTimeouts", "Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.RetransSegs", "Tcp.OutRsts",
}

// delta returns the counters that moved from a to b: every MPTcpExt one
// and interestingCounters.
func (b netCounters) delta(a netCounters) map[string]int64 {
	out := map[string]int64{}
	for k, v := range b {
		d := v - a[k]
		if d == 0 {
			continue
		}
		if strings.HasPrefix(k, "MPTcpExt.") {
			out[k] = d
		}
	}
	for _, k := range interestingCounters {
		if d := b[k] - a[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
