package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// Ports of the signal endpoints the monitor tests add and delete, only to
// cause LISTENER_CREATED and LISTENER_CLOSED: probePort to learn that a
// monitor has joined the event group, barrierPort to learn that it printed
// everything up to a point.
const (
	probePort   = 20001
	barrierPort = 20002
)

// syncBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutine and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// monitorProc is a running "mptcpd-go -n NS monitor".
type monitorProc struct {
	desc   string // the command line, for messages
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed when the process exited
	err    error         // what Wait returned; read after done
}

// startMonitor starts "mptcpd-go OPTS -n NS monitor". It is killed when
// the test ends if it still runs.
func startMonitor(t *testing.T, ns *harness.NS, opts ...string) *monitorProc {
	t.Helper()
	args := concat(opts, []string{"-n", ns.Name, "monitor"})
	m := &monitorProc{desc: cmdline("mptcpd-go", args), done: make(chan struct{})}
	m.cmd = exec.Command(cli(t), args...)
	m.cmd.Env = subprocessEnv()
	m.cmd.Stdout, m.cmd.Stderr = &m.stdout, &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", m.desc, err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	return m
}

// waitOutput polls the monitor's stdout until cond holds, for at most
// limit. It fails the test if the monitor exits first.
func (m *monitorProc) waitOutput(t *testing.T, limit time.Duration, cond func(stdout string) bool) bool {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond(m.stdout.String()) {
			return true
		}
		select {
		case <-m.done:
			t.Fatalf("%s exited early (%v)\nstdout:\n%s\nstderr:\n%s", m.desc, m.err, indent(m.stdout.String()), indent(m.stderr.String()))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// stop sends SIGINT, waits, checks the exit status is 0 and returns
// stdout.
func (m *monitorProc) stop(t *testing.T) string {
	t.Helper()
	if err := m.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupting %s: %v", m.desc, err)
	}
	select {
	case <-m.done:
	case <-time.After(testTimeout):
		t.Fatalf("%s did not exit within %v of SIGINT", m.desc, testTimeout)
	}
	if m.err != nil {
		t.Errorf("%s after SIGINT: %v, want exit status 0\nstderr:\n%s", m.desc, m.err, indent(m.stderr.String()))
	}
	checkNoRace(t, m.desc, m.stderr.String())
	return m.stdout.String()
}

// listenerBlip adds a signal endpoint with a port on addr and deletes it
// again, which makes the path manager open and close a listener.
func listenerBlip(t *testing.T, c *genl.Client, a netip.Addr, port uint16) {
	t.Helper()
	ep := addEndpoint(t, "listener blip", c, genl.Endpoint{Addr: a, Port: port, Flags: genl.FlagSignal})
	if err := c.DeleteEndpoint(ep.ID); err != nil {
		t.Fatalf("DeleteEndpoint(%d): %v", ep.ID, err)
	}
}

// waitMonitorJoined returns once the monitor has printed the events of a
// probe listener, i.e. once it has joined the event group (it prints
// nothing when it starts). Every probe's events are printed in full before
// this returns.
func waitMonitorJoined(t *testing.T, m *monitorProc, c *genl.Client, a netip.Addr) {
	t.Helper()
	closed := func(out string) bool { return strings.Contains(out, "LISTENER_CLOSED") }
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		listenerBlip(t, c, a, probePort)
		if m.waitOutput(t, time.Second, closed) {
			return
		}
	}
	t.Fatalf("%s printed no LISTENER_CLOSED for probe listeners within %v\nstdout:\n%s\nstderr:\n%s",
		m.desc, testTimeout, indent(m.stdout.String()), indent(m.stderr.String()))
}

// barrier makes a listener blip and waits until both the API log and the
// monitor have it: then both have seen the same events. It returns the
// position of the barrier's LISTENER_CLOSED in the log.
func barrier(t *testing.T, l *harness.EventLog, m *monitorProc, c *genl.Client, a netip.Addr) int {
	t.Helper()
	from := l.Mark()
	listenerBlip(t, c, a, barrierPort)
	want := netip.AddrPortFrom(a, barrierPort)
	l.WaitFor(t, from, "LISTENER_CLOSED of the barrier "+want.String(), func(ev genl.Event) bool {
		e, ok := ev.(*genl.ListenerClosed)
		return ok && e.Local == want
	})
	idx := len(l.Seen()) - 1
	for l.Seen()[idx].Type() != genl.EventListenerClosed {
		idx--
	}
	// Both the text (" sport=N") and the JSON ("sport":N) forms.
	re := regexp.MustCompile(fmt.Sprintf(`sport(=|":)%d\b`, barrierPort))
	if !m.waitOutput(t, testTimeout, func(out string) bool {
		return len(re.FindAllStringIndex(out, -1)) >= 2
	}) {
		t.Fatalf("%s did not print the barrier listener's events within %v\nstdout:\n%s", m.desc, testTimeout, indent(m.stdout.String()))
	}
	return idx
}

// monitorMode is how the monitor is run and how its output splits into
// one record per event.
type monitorMode struct {
	name string
	opts []string
	// records splits the output of a monitor that was stopped.
	records func(t *testing.T, out string) []string
	// format renders an event as the record the monitor must print.
	format func(ev genl.Event, ifname func(int) string) string
	// isProbe reports whether a record is one of a probe listener.
	isProbe func(record string) bool
}

// textLines splits text output into lines, checking it ends in a newline.
func textLines(t *testing.T, out string) []string {
	t.Helper()
	if out == "" {
		return nil
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("monitor output does not end with a newline:\n%s", indent(out))
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// timestampRE is the line iproute2 prints before each event with -t.
var timestampRE = regexp.MustCompile(`^Timestamp: (Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4} [0-9]{1,6} usec$`)

var monitorModes = []monitorMode{
	{
		name:    "text",
		records: textLines,
		format:  monitorLine,
		isProbe: func(r string) bool { return strings.Contains(r, fmt.Sprintf(" sport=%d", probePort)) },
	},
	{
		name: "timestamp",
		opts: []string{"-t"},
		records: func(t *testing.T, out string) []string {
			t.Helper()
			lines := textLines(t, out)
			var recs []string
			for i := 0; i < len(lines); i += 2 {
				if !timestampRE.MatchString(lines[i]) {
					t.Errorf("line %d of the -t output, %q, is no timestamp line like iproute2's \"Timestamp: Wed Nov 25 19:49:44 2026 982513 usec\"", i+1, lines[i])
					return recs
				}
				if i+1 == len(lines) {
					t.Errorf("the -t output ends with a timestamp line")
					return recs
				}
				recs = append(recs, lines[i+1])
			}
			return recs
		},
		format:  monitorLine,
		isProbe: func(r string) bool { return strings.Contains(r, fmt.Sprintf(" sport=%d", probePort)) },
	},
	{
		name: "json",
		opts: []string{"-j"},
		records: func(t *testing.T, out string) []string {
			t.Helper()
			var objs []json.RawMessage
			if err := json.Unmarshal([]byte(out), &objs); err != nil {
				t.Errorf("-j monitor output is not a JSON array: %v\n%s", err, indent(out))
				return nil
			}
			recs := make([]string, len(objs))
			for i, o := range objs {
				recs[i] = canonicalJSON(t, o)
			}
			return recs
		},
		format: monitorJSON,
		isProbe: func(r string) bool {
			return strings.Contains(r, fmt.Sprintf(`"sport":%d`, probePort))
		},
	},
}

// canonicalJSON re-encodes a JSON object with sorted keys.
func canonicalJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Errorf("monitor JSON element %s is not an object: %v", raw, err)
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// monitorLine renders an event the way iproute2's "ip mptcp monitor"
// does: the name right-aligned in 16 columns in brackets, then the
// attributes that are present, in iproute2's order.
func monitorLine(ev genl.Event, ifname func(int) string) string {
	f := ev.Fields()
	if _, ok := ev.(*genl.UnknownEvent); ok {
		return fmt.Sprintf("[UNKNOWN %d]", uint8(f.Type))
	}
	p := f.Present
	var b strings.Builder
	fmt.Fprintf(&b, "[%16s]", f.Type)
	if p.Has(genl.AttrToken) {
		fmt.Fprintf(&b, " token=%08x", f.Token)
	}
	if p.Has(genl.AttrRemID) {
		fmt.Fprintf(&b, " remid=%d", f.RemoteID)
	}
	if p.Has(genl.AttrLocID) {
		fmt.Fprintf(&b, " locid=%d", f.LocalID)
	}
	for _, a := range []struct {
		attr genl.EventAttr
		key  string
		addr netip.Addr
	}{
		{genl.AttrSaddr4, "saddr4", f.Local.Addr()},
		{genl.AttrDaddr4, "daddr4", f.Remote.Addr()},
		{genl.AttrSaddr6, "saddr6", f.Local.Addr()},
		{genl.AttrDaddr6, "daddr6", f.Remote.Addr()},
	} {
		if p.Has(a.attr) {
			fmt.Fprintf(&b, " %s=%s", a.key, a.addr)
		}
	}
	if p.Has(genl.AttrSport) {
		fmt.Fprintf(&b, " sport=%d", f.Local.Port())
	}
	if p.Has(genl.AttrDport) {
		fmt.Fprintf(&b, " dport=%d", f.Remote.Port())
	}
	if p.Has(genl.AttrBackup) {
		fmt.Fprintf(&b, " backup=%d", f.Backup)
	}
	if p.Has(genl.AttrError) {
		fmt.Fprintf(&b, " error=%d", f.Error)
	}
	if p.Has(genl.AttrTimeout) {
		fmt.Fprintf(&b, " timeout=%d", f.Timeout)
	}
	if p.Has(genl.AttrIfIdx) {
		fmt.Fprintf(&b, " ifindex=%d", f.Ifindex)
		if name := ifname(f.Ifindex); name != "" {
			fmt.Fprintf(&b, " dev=%s", name)
		}
	}
	if p.Has(genl.AttrResetReason) {
		fmt.Fprintf(&b, " reset_reason=%d", f.ResetReason)
	}
	if p.Has(genl.AttrResetFlags) {
		fmt.Fprintf(&b, " reset_flags=%s", cHexAlt(uint64(f.ResetFlags)))
	}
	flags := f.Flags
	if flags&genl.EventFlagServerSide != 0 || (p.Has(genl.AttrServerSide) && f.ServerSide != 0) {
		flags &^= genl.EventFlagServerSide
		b.WriteString(" server_side")
	}
	if flags&genl.EventFlagDenyJoinID0 != 0 {
		flags &^= genl.EventFlagDenyJoinID0
		b.WriteString(" deny_join_id0")
	}
	if flags != 0 {
		fmt.Fprintf(&b, " flags=%s", cHexAlt(uint64(flags)))
	}
	return b.String()
}

// cHexAlt is C's "%#x": like Go's, except that zero is "0".
func cHexAlt(v uint64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}

// monitorJSON renders an event as the JSON object of iproute2's
// "ip -j mptcp monitor", canonicalised like canonicalJSON.
func monitorJSON(ev genl.Event, ifname func(int) string) string {
	f := ev.Fields()
	p := f.Present
	o := map[string]any{"event": f.Type.String()}
	if p.Has(genl.AttrToken) {
		o["token"] = cHexAlt(uint64(f.Token))
	}
	if p.Has(genl.AttrRemID) {
		o["remid"] = f.RemoteID
	}
	if p.Has(genl.AttrLocID) {
		o["locid"] = f.LocalID
	}
	if p.Has(genl.AttrSaddr4) {
		o["saddr4"] = f.Local.Addr().String()
	}
	if p.Has(genl.AttrDaddr4) {
		o["daddr4"] = f.Remote.Addr().String()
	}
	if p.Has(genl.AttrSaddr6) {
		o["saddr6"] = f.Local.Addr().String()
	}
	if p.Has(genl.AttrDaddr6) {
		o["daddr6"] = f.Remote.Addr().String()
	}
	if p.Has(genl.AttrSport) {
		o["sport"] = f.Local.Port()
	}
	if p.Has(genl.AttrDport) {
		o["dport"] = f.Remote.Port()
	}
	if p.Has(genl.AttrBackup) {
		o["backup"] = f.Backup
	}
	if p.Has(genl.AttrError) {
		o["error"] = f.Error
	}
	if p.Has(genl.AttrTimeout) {
		o["timeout"] = f.Timeout
	}
	if p.Has(genl.AttrIfIdx) {
		o["ifindex"] = f.Ifindex
		if name := ifname(f.Ifindex); name != "" {
			o["dev"] = name
		}
	}
	if p.Has(genl.AttrResetReason) {
		o["reset_reason"] = f.ResetReason
	}
	if p.Has(genl.AttrResetFlags) {
		o["reset_flags"] = cHexAlt(uint64(f.ResetFlags))
	}
	flags := f.Flags
	if flags&genl.EventFlagServerSide != 0 || (p.Has(genl.AttrServerSide) && f.ServerSide != 0) {
		flags &^= genl.EventFlagServerSide
		o["server_side"] = true
	}
	if flags&genl.EventFlagDenyJoinID0 != 0 {
		flags &^= genl.EventFlagDenyJoinID0
		o["deny_join_id0"] = true
	}
	if flags != 0 {
		o["flags"] = cHexAlt(uint64(flags))
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ifnames returns a function giving the name of an interface of ns by
// index, "" when there is none.
func ifnames(ns *harness.NS) func(int) string {
	return func(index int) string {
		if index == 0 {
			return ""
		}
		link, err := ns.Handle.LinkByIndex(index)
		if err != nil {
			return ""
		}
		return link.Attrs().Name
	}
}

// TestEventsMonitor runs the connection scenario of TestEventsGenl while
// "mptcpd-go -n NS monitor" runs in both namespaces (plain, with -t and
// with -j), stops the monitors with SIGINT and checks that they printed
// exactly the events the genl API saw, in iproute2's format.
func TestEventsMonitor(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	for _, mode := range monitorModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := newConnScenario(t)
			l1 := s.top.Links[0]
			sides := []struct {
				label string
				ns    *harness.NS
				c     *genl.Client
				a     netip.Addr // for the probe and barrier listeners
				mon   *monitorProc
				log   *harness.EventLog
			}{
				{label: "client", ns: s.top.Client, c: s.client, a: l1.ClientV4},
				{label: "server", ns: s.top.Server, c: s.server, a: l1.ServerV4},
			}
			for i := range sides {
				sides[i].mon = startMonitor(t, sides[i].ns, mode.opts...)
			}
			for i := range sides {
				waitMonitorJoined(t, sides[i].mon, sides[i].c, sides[i].a)
				sides[i].log = harness.Subscribe(t, sides[i].ns, sides[i].label)
			}
			tok := s.run(t, sides[0].log, sides[1].log)

			for _, side := range sides {
				last := barrier(t, side.log, side.mon, side.c, side.a)
				out := side.mon.stop(t)
				recs := mode.records(t, out)
				for len(recs) > 0 && mode.isProbe(recs[0]) {
					recs = recs[1:]
				}
				var want []string
				for _, ev := range side.log.Seen()[:last+1] {
					want = append(want, mode.format(ev, ifnames(side.ns)))
				}
				if len(recs) > len(want) {
					recs = recs[:len(want)] // what came after the barrier
				}
				if diff := cmp.Diff(want, recs); diff != "" {
					t.Errorf("%s: %s printed other events than the API saw (-want +got):\n%s\nwhole output:\n%s",
						side.label, side.mon.desc, diff, indent(out))
				}
				token := tok.client
				if side.label == "server" {
					token = tok.server
				}
				if mode.name != "json" && !strings.Contains(out, fmt.Sprintf(" token=%08x", token)) {
					t.Errorf("%s: %s never printed the connection's token %08x", side.label, side.mon.desc, token)
				}
			}
		})
	}
}
