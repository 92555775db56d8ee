package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/ansi"
	"golang.org/x/sys/unix"
)

// monitor prints path manager events until the context ends (SIGINT or
// SIGTERM), then closes the JSON array with -j and returns success.
// On a terminal it colours the event names and keeps a progress line
// under the events; piped, its output is exactly ip's.
func (s *session) monitor(argv []string) error {
	be, err := s.backend()
	if err != nil {
		return err
	}
	when := colorAuto
	for _, a := range argv {
		v, ok := strings.CutPrefix(a, "--color")
		if !ok || v != "" && v[0] != '=' {
			return unknownCommand(a)
		}
		if err := when.Set(strings.TrimPrefix(v, "=")); err != nil {
			return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: monitor: %v.\n", err)}
		}
	}
	color := !s.opts.json && s.useColor(when)
	prog := &progress{w: s.stdout, on: !s.opts.json && s.stdoutIsTerminal()}
	sub, err := be.Subscribe(s.opts.rcvbuf)
	if err != nil {
		var hints []string
		if e := errnoOf(err); e == unix.EPERM || e == unix.EACCES {
			hints = append(hints, "joining the mptcp_pm_events group needs CAP_NET_ADMIN in the network namespace: run as root")
		}
		// ip's monitor returns 1 here, which ip turns into exit status 255.
		return &cmdError{code: exitUsage, msg: "Error: can't subscribe to mptcp events: " + kernelText(err) + "\n",
			hints: hints, err: fmt.Errorf("subscribe to mptcp events: %w", err)}
	}
	defer sub.Close()

	ctx, cancel := s.stopContext()
	defer cancel()
	context.AfterFunc(ctx, func() { sub.Close() }) // unblocks Next

	p := s.newPrinter()
	p.openList()
	s.emit(p)
	events := 0
	prog.show(events)
	s.stdout.Flush()
	defer func() {
		prog.clear()
		s.stdout.Flush()
	}()
	for {
		ev, err := sub.Next()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, genl.ErrEventsLost) {
				prog.clear()
				s.stdout.Flush()
				// ip's rtnl_listen prints this and goes on listening.
				fmt.Fprintf(s.stderr, "netlink receive error %s (%d)\n", strerror(unix.ENOBUFS), int(unix.ENOBUFS))
				s.stderr.Flush()
				prog.show(events)
				s.stdout.Flush()
				continue
			}
			prog.clear()
			p.closeList()
			s.emit(p)
			// ip's monitor returns 2 on a receive error: exit status 254.
			return &cmdError{code: exitListenRx, msg: "Error: receiving mptcp events failed: " + kernelText(err) + "\n",
				err: fmt.Errorf("receive mptcp events: %w", err)}
		}
		prog.clear()
		s.printEvent(p, ev, color)
		s.emit(p)
		events++
		prog.show(events)
		s.stdout.Flush()
	}
	prog.clear()
	p.closeList()
	s.emit(p)
	return nil
}

// eventName is ipmptcp.c's event_to_str table.
func eventName(t genl.EventType) (string, bool) {
	switch t {
	case genl.EventCreated, genl.EventEstablished, genl.EventClosed, genl.EventAnnounced,
		genl.EventRemoved, genl.EventSubEstablished, genl.EventSubClosed, genl.EventSubPriority,
		genl.EventListenerCreated, genl.EventListenerClosed:
		return t.String(), true
	}
	return "", false
}

// printEvent is mptcp_monitor_msg: the attributes that arrived, in ip's
// order. color colours the event name by kind (text mode only).
func (s *session) printEvent(p *printer, ev genl.Event, color bool) {
	f := ev.Fields()
	has := f.Present.Has
	p.openObject()
	defer func() {
		p.nl()
		p.closeObject()
	}()
	if s.opts.timestamp {
		printTimestamp(p, s.now(), s.opts.tshort)
	}
	name, known := eventName(ev.Type())
	if !known {
		p.str("event", "[%s]", fmt.Sprintf("UNKNOWN %d", uint8(ev.Type())))
		return
	}
	sgr := ""
	if color {
		sgr = eventColor(ev.Type())
	}
	if sgr != "" {
		p.text(sgr)
	}
	p.str("event", "[%16s]", name)
	if sgr != "" {
		p.text(ansi.Reset)
	}
	if has(genl.AttrToken) {
		p.hex("token", fmt.Sprintf(" token=%08x", f.Token), uint64(f.Token))
	}
	if has(genl.AttrRemID) {
		p.uint("remid", " remid=%d", uint64(f.RemoteID))
	}
	if has(genl.AttrLocID) {
		p.uint("locid", " locid=%d", uint64(f.LocalID))
	}
	printEventAddr(p, has(genl.AttrSaddr4), "saddr4", f.Local.Addr())
	printEventAddr(p, has(genl.AttrDaddr4), "daddr4", f.Remote.Addr())
	printEventAddr(p, has(genl.AttrSaddr6), "saddr6", f.Local.Addr())
	printEventAddr(p, has(genl.AttrDaddr6), "daddr6", f.Remote.Addr())
	if has(genl.AttrSport) {
		p.uint("sport", " sport=%d", uint64(f.Local.Port()))
	}
	if has(genl.AttrDport) {
		p.uint("dport", " dport=%d", uint64(f.Remote.Port()))
	}
	if has(genl.AttrBackup) {
		p.uint("backup", " backup=%d", uint64(f.Backup))
	}
	if has(genl.AttrError) {
		p.uint("error", " error=%d", uint64(f.Error))
	}
	if has(genl.AttrTimeout) {
		p.uint("timeout", " timeout=%d", uint64(f.Timeout))
	}
	if has(genl.AttrIfIdx) {
		p.int("ifindex", " ifindex=%d", int64(int32(f.Ifindex)))
		if f.Ifindex != 0 {
			p.text(" dev=")
			p.str("dev", "%s", s.ifName(f.Ifindex))
		}
	}
	if has(genl.AttrResetReason) {
		p.uint("reset_reason", " reset_reason=%d", uint64(f.ResetReason))
	}
	if has(genl.AttrResetFlags) {
		p.hex("reset_flags", " reset_flags="+hex0x(uint64(f.ResetFlags)), uint64(f.ResetFlags))
	}
	var flags genl.EventFlags
	if has(genl.AttrFlags) {
		flags = f.Flags
	}
	if flags&genl.EventFlagServerSide != 0 || has(genl.AttrServerSide) && f.ServerSide != 0 {
		flags &^= genl.EventFlagServerSide
		p.text(" server_side")
		p.trueJSON("server_side")
	}
	if flags&genl.EventFlagDenyJoinID0 != 0 {
		flags &^= genl.EventFlagDenyJoinID0
		p.text(" deny_join_id0")
		p.trueJSON("deny_join_id0")
	}
	if flags != 0 {
		p.hex("flags", " flags="+hex0x(uint64(flags)), uint64(flags))
	}
}

func printEventAddr(p *printer, present bool, key string, a netip.Addr) {
	if !present || !a.IsValid() {
		return
	}
	p.text(" " + key + "=")
	p.str(key, "%s", ntop(a))
}

// printTimestamp is iproute2's print_timestamp: asctime and microseconds
// for -t, ISO 8601 for -ts.
func printTimestamp(p *printer, t time.Time, short bool) {
	usec := t.Nanosecond() / 1000
	if short {
		ts := fmt.Sprintf("%s.%06d", t.Format("2006-01-02T15:04:05"), usec)
		p.str("timestamp_short", "[%s] ", ts)
		return
	}
	ts := fmt.Sprintf("%.3s %.3s%3d %02d:%02d:%02d %d %d usec",
		t.Weekday(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Year(), usec)
	p.str("timestamp", "Timestamp: %s\n", ts)
}

// eventColor: green for a connection starting, red for one ending, cyan
// for subflows and addresses appearing, yellow for a priority change.
func eventColor(t genl.EventType) string {
	switch t {
	case genl.EventCreated, genl.EventEstablished, genl.EventListenerCreated:
		return ansi.Green
	case genl.EventClosed, genl.EventSubClosed, genl.EventRemoved, genl.EventListenerClosed:
		return ansi.Red
	case genl.EventSubEstablished, genl.EventAnnounced:
		return ansi.Cyan
	case genl.EventSubPriority:
		return ansi.Yellow
	}
	return ""
}

// colorWhen is the value of --color: when output is coloured. The zero
// value is colorAuto.
type colorWhen string

// Colour choices, as ls(1) and ip(8) spell them.
const (
	colorAuto   colorWhen = ""
	colorAlways colorWhen = "always"
	colorNever  colorWhen = "never"
)

// String implements flag.Value.
func (c *colorWhen) String() string {
	if *c == colorAuto {
		return "auto"
	}
	return string(*c)
}

// Set implements flag.Value; a bare --color means always.
func (c *colorWhen) Set(v string) error {
	switch v {
	case "", "true", "always":
		*c = colorAlways
	case "auto":
		*c = colorAuto
	case "false", "never":
		*c = colorNever
	default:
		return fmt.Errorf("--color takes always, auto or never, not %q", v)
	}
	return nil
}

// IsBoolFlag lets --color stand alone in a flag set.
func (c *colorWhen) IsBoolFlag() bool { return true }

// useColor decides whether to colour: always and never are obeyed; auto
// colours a terminal unless NO_COLOR is set (https://no-color.org) or
// TERM is dumb.
func (s *session) useColor(when colorWhen) bool {
	switch when {
	case colorAlways:
		return true
	case colorNever:
		return false
	}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return s.stdoutIsTerminal()
}

// stdoutIsTerminal reports whether the output goes to a terminal. It is
// the check golang.org/x/term's IsTerminal makes on Linux (TCGETS
// succeeds), done with x/sys to need no new module.
func (s *session) stdoutIsTerminal() bool {
	f, ok := s.env.Stdout.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress is a transient status line under the output on a terminal:
// it is erased before anything else is printed, so it never ends up in
// the output proper. Off, it does nothing.
type progress struct {
	w     *bufio.Writer
	on    bool
	shown bool
}

// show replaces the line with the count of events so far.
func (pr *progress) show(events int) {
	if !pr.on {
		return
	}
	pr.clear()
	what := "waiting for MPTCP events"
	if events > 0 {
		what = fmt.Sprintf("%d events so far", events)
		if events == 1 {
			what = "1 event so far"
		}
	}
	pr.w.WriteString(ansi.Dim + "-- " + what + "; Ctrl-C stops --" + ansi.Reset)
	pr.shown = true
}

// clear erases the line if it is shown.
func (pr *progress) clear() {
	if pr.shown {
		pr.w.WriteString("\r\033[K")
		pr.shown = false
	}
}
