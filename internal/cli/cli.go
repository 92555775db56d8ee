// Package cli implements the mptcpd-go command line: the "ip mptcp"
// commands of iproute2 (endpoint, limits, monitor) with byte-identical
// output, userspace path manager verbs (pm), and ip-style batch files.
//
// Run is the whole program; cmd/mptcpd-go only wires it to the process.
// Everything it touches outside the package comes through Env, so tests
// run it against a fake Backend without a kernel.
//
// Where iproute2 prints plain text for "ip -j mptcp limits", this package
// prints a JSON object, {"add_addr_accepted":N,"subflows":N}.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env is what Run uses from the outside world.
type Env struct {
	// Stdin is read by "-batch -".
	Stdin io.Reader
	// Stdout receives the command output, Stderr errors and hints.
	Stdout, Stderr io.Writer
	// Dial opens the path manager backend in a network namespace ("" for
	// the process's own). It is called at most once per Run.
	Dial func(netns string) (Backend, error)
	// Links opens the interface resolver for the namespace; nil or a
	// failure makes names resolve only through iproute2's "ifN" fallback.
	Links func(netns string) (Links, error)
	// Now is the clock for -t; nil means time.Now.
	Now func() time.Time
	// StopSignals, when set, is called as monitor starts and its context
	// ends the monitor too; the program catches SIGINT and SIGTERM there
	// only, so other commands die of them as ip's do.
	StopSignals func() (context.Context, context.CancelFunc)
	// Version is printed by -V.
	Version string
}

// DefaultEnv is the environment of the real program.
func DefaultEnv(stdin io.Reader, stdout, stderr io.Writer, version string) Env {
	return Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Dial: DialGenl, Links: OpenLinks, Now: time.Now, Version: version}
}

// options are the global options before the command.
type options struct {
	netns     string
	json      bool
	pretty    bool
	timestamp bool
	tshort    bool
	force     bool
	batch     string
	hasBatch  bool
	rcvbuf    int
}

// session is one Run: the options and the lazily opened backend and
// resolver, shared by all commands of a batch (one netlink socket).
type session struct {
	ctx     context.Context
	env     Env
	opts    options
	stdout  *bufio.Writer
	stderr  *bufio.Writer
	be      Backend
	dialErr error
	links   Links
	linksOK bool
}

// Run runs one mptcpd-go command line (without the program name) and
// returns the exit status. Ending ctx (or Env.StopSignals's context) ends
// "monitor", which then succeeds.
func Run(ctx context.Context, env Env, args []string) int {
	s := &session{ctx: ctx, env: env, stdout: bufio.NewWriter(env.Stdout), stderr: bufio.NewWriter(env.Stderr)}
	defer s.close()
	return s.run(args)
}

func (s *session) close() {
	s.stdout.Flush()
	s.stderr.Flush()
	if s.be != nil {
		s.be.Close()
	}
	if s.links != nil {
		s.links.Close()
	}
}

// fail prints err on stderr and returns its exit status.
func (s *session) fail(err error) int {
	s.stdout.Flush()
	code := writeError(s.stderr, err)
	s.stderr.Flush()
	return code
}

func (s *session) run(args []string) int {
	rest, stop, err := s.parseOptions(args)
	if err != nil {
		return s.fail(err)
	}
	if stop >= 0 {
		return stop
	}
	if s.opts.hasBatch {
		return s.runBatch(s.opts.batch)
	}
	if len(rest) == 0 {
		s.stderr.WriteString(Usage)
		return exitUsage
	}
	if err := s.dispatch(rest); err != nil {
		return s.fail(err)
	}
	return exitOK
}

// command is a top-level command. Commands are matched by prefix in table
// order, so a new command goes at the end to keep existing abbreviations.
type command struct {
	name string
	run  func(s *session, args []string) error
}

func commands() []command {
	return []command{
		{"help", (*session).help},
		{"endpoint", (*session).endpoint},
		{"limits", (*session).limits},
		{"monitor", (*session).monitor},
		{"pm", (*session).pm},
		{"daemon", (*session).daemonCmd},
		{"status", (*session).status},
		{"reload", (*session).reload},
		{"policy", (*session).policyCmd},
		{"pcap", (*session).pcapCmd},
		{"proxy", (*session).proxyCmd},
		{"completion", (*session).completionCmd},
		{"connections", (*session).connections},
	}
}

// dispatch runs one command: args[0] names it.
func (s *session) dispatch(args []string) error {
	for _, c := range commands() {
		if matches(args[0], c.name) {
			if path, d, ok := helpRequest(c.name, args[1:]); ok {
				return s.printHelp(path, d)
			}
			return c.run(s, args[1:])
		}
	}
	return unknownCommand(args[0])
}

// help is "ip mptcp help": the usage on stderr and status 255, as ip
// does. The -h/-help options print it on stdout and succeed. "help
// COMMAND" for one of mptcpd-go's own commands prints that command's help
// on stdout instead (see helpTopic).
func (s *session) help(args []string) error {
	if path, d, ok := helpTopic(args); ok {
		return s.printHelp(path, d)
	}
	return &cmdError{code: exitUsage, msg: Usage}
}

// backend opens the backend on first use, like ip's genl_init_handle.
func (s *session) backend() (Backend, error) {
	if s.be != nil {
		return s.be, nil
	}
	if s.dialErr != nil {
		return nil, s.dialErr
	}
	be, err := s.env.Dial(s.opts.netns)
	var pe *os.PathError
	if err != nil && s.opts.netns != "" && errors.As(err, &pe) {
		// ip fails in netns_switch with exit(-1).
		text := pe.Err.Error()
		if errno, ok := pe.Err.(unix.Errno); ok {
			text = strerror(errno)
		}
		s.dialErr = &cmdError{code: exitUsage, err: err,
			msg:   fmt.Sprintf("Error: cannot open network namespace \"%s\": %s.\n", s.opts.netns, text),
			hints: []string{"list the namespaces with \"ip netns list\"; -n takes a name under /run/netns or a path"}}
		return nil, s.dialErr
	}
	if err != nil {
		where := "this network namespace"
		if s.opts.netns != "" {
			where = fmt.Sprintf("network namespace %q", s.opts.netns)
		}
		s.dialErr = failure(exitFailure, fmt.Errorf("cannot reach the MPTCP path manager in %s: %w", where, err))
		return nil, s.dialErr
	}
	s.be = be
	return be, nil
}

// ifIndex resolves an interface name as ip's ll_name_to_index does.
func (s *session) ifIndex(name string) int {
	if l := s.resolver(); l != nil {
		if i := l.IndexByName(name); i != 0 {
			return i
		}
	}
	return ifIndexFromName(name)
}

// ifName resolves an interface index as ip's ll_index_to_name does.
func (s *session) ifName(index int) string {
	if l := s.resolver(); l != nil {
		if n, ok := l.NameByIndex(index); ok {
			return n
		}
	}
	return ifNameFallback(index)
}

func (s *session) resolver() Links {
	if !s.linksOK {
		s.linksOK = true
		if s.env.Links != nil {
			if l, err := s.env.Links(s.opts.netns); err == nil {
				s.links = l
			}
		}
	}
	return s.links
}

func (s *session) now() time.Time {
	if s.env.Now != nil {
		return s.env.Now()
	}
	return time.Now()
}

func (s *session) newPrinter() *printer { return newPrinter(s.opts.json, s.opts.pretty) }

// emit writes what p printed to stdout.
func (s *session) emit(p *printer) {
	s.stdout.Write(p.take())
}

// args walks a command's arguments the way ip's argc/argv macros do.
type args struct {
	v []string
	i int
}

func (a *args) more() bool  { return a.i < len(a.v) }
func (a *args) cur() string { return a.v[a.i] }
func (a *args) fwd()        { a.i++ }

// next is NEXT_ARG: the keyword's value, or the "not complete" error.
func (a *args) next() (string, error) {
	a.i++
	if a.i >= len(a.v) {
		return "", incomplete()
	}
	return a.v[a.i], nil
}

// globalOpt is one of ip's options, in ip's order so that abbreviations
// resolve the same way ("-f" is -family, not -force).
type globalOpt struct {
	name  string
	alt   string // a second spelling tried with it
	exact bool   // compared whole, not as a prefix
	arg   string // missarg key when the option takes a value
	// nextArg: the option takes a value, and lacking it is ip's
	// NEXT_ARG failure rather than missarg.
	nextArg bool
	// set applies the option; a non-negative stop ends the program with
	// that status (-Version, -help).
	set func(s *session, val string) (stop int, err error)
}

func ignored(*session, string) (int, error) { return -1, nil }

func unsupported(name string) func(*session, string) (int, error) {
	return func(*session, string) (int, error) {
		return -1, &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: option \"%s\" is not supported by mptcpd-go.\n", name)}
	}
}

func globalOpts() []globalOpt {
	flag := func(f func(o *options)) func(*session, string) (int, error) {
		return func(s *session, _ string) (int, error) { f(&s.opts); return -1, nil }
	}
	return []globalOpt{
		{name: "-loops", arg: "loop count", set: ignored},
		{name: "-family", arg: "family type", set: func(s *session, v string) (int, error) {
			if v == "help" {
				s.stderr.WriteString(Usage)
				return exitUsage, nil
			}
			switch v {
			case "inet", "inet6", "link", "mpls", "bridge":
				return -1, nil
			}
			return -1, invarg("invalid protocol family", v)
		}},
		{name: "-4", exact: true, set: ignored},
		{name: "-6", exact: true, set: ignored},
		{name: "-0", exact: true, set: ignored},
		{name: "-M", exact: true, set: ignored},
		{name: "-B", exact: true, set: ignored},
		{name: "-human", alt: "-human-readable", set: ignored},
		{name: "-iec", set: ignored},
		{name: "-stats", alt: "-statistics", set: ignored},
		{name: "-details", set: ignored},
		{name: "-resolve", set: unsupported("-resolve")},
		{name: "-oneline", set: unsupported("-oneline")},
		{name: "-timestamp", set: flag(func(o *options) { o.timestamp = true })},
		{name: "-tshort", set: flag(func(o *options) { o.timestamp, o.tshort = true, true })},
		{name: "-Version", set: func(s *session, _ string) (int, error) {
			fmt.Fprintf(s.stdout, "mptcpd-go %s\n", s.env.Version)
			return exitOK, nil
		}},
		{name: "-force", set: flag(func(o *options) { o.force = true })},
		{name: "-batch", arg: "batch file", set: func(s *session, v string) (int, error) {
			s.opts.batch, s.opts.hasBatch = v, true
			return -1, nil
		}},
		{name: "-brief", set: ignored},
		{name: "-json", set: flag(func(o *options) { o.json = true })},
		{name: "-pretty", set: flag(func(o *options) { o.pretty = true })},
		{name: "-rcvbuf", arg: "rcvbuf size", set: func(s *session, v string) (int, error) {
			n, ok := getU32(v)
			if !ok || n > 1<<31-1 {
				return -1, &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: invalid rcvbuf size '%s'.\n", v)}
			}
			s.opts.rcvbuf = int(n)
			return -1, nil
		}},
		{name: "-help", set: func(s *session, _ string) (int, error) {
			s.stdout.WriteString(Usage)
			return exitOK, nil
		}},
		{name: "-netns", nextArg: true, set: func(s *session, v string) (int, error) {
			s.opts.netns = v
			return -1, nil
		}},
		{name: "-Numeric", set: ignored},
		{name: "-all", set: ignored},
		{name: "-echo", exact: true, set: ignored},
	}
}

// isColorOpt is ip's matches_color: -c[olor][=always|auto|never]. Output is
// never colored here.
func isColorOpt(opt string) bool {
	name, val, _ := strings.Cut(opt, "=")
	if !matches(name, "-color") {
		return false
	}
	switch val {
	case "", "always", "auto", "never":
		return true
	}
	return false
}

// parseOptions consumes the global options. stop is the exit status when an
// option ends the program (-V, -help), else -1.
func (s *session) parseOptions(argv []string) (rest []string, stop int, err error) {
	i := 0
	for ; i < len(argv); i++ {
		opt := argv[i]
		if opt == "--" {
			i++
			break
		}
		if opt == "" || opt[0] != '-' {
			break
		}
		if len(opt) > 1 && opt[1] == '-' {
			opt = opt[1:]
		}
		if opt == "-h" {
			s.stdout.WriteString(Usage)
			return nil, exitOK, nil
		}
		var found *globalOpt
		opts := globalOpts()
		for k := range opts {
			o := &opts[k]
			if o.exact && opt == o.name || !o.exact && (matches(opt, o.name) || o.alt != "" && matches(opt, o.alt)) {
				found = o
				break
			}
			// Color sits between -rcvbuf and -help in ip's order.
			if o.name == "-rcvbuf" && isColorOpt(opt) {
				found = &globalOpt{name: "-color", set: ignored}
				break
			}
		}
		if found == nil {
			return nil, -1, &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: option \"%s\" is unknown, try \"mptcpd-go -help\".\n", opt)}
		}
		val := ""
		if found.arg != "" || found.nextArg {
			if i+1 >= len(argv) {
				if found.nextArg {
					return nil, -1, incomplete()
				}
				return nil, -1, missarg(found.arg)
			}
			i++
			val = argv[i]
		}
		st, err := found.set(s, val)
		if err != nil || st >= 0 {
			return nil, st, err
		}
	}
	return argv[i:], -1, nil
}

// stopContext is s.ctx, also ended by Env.StopSignals's context when set:
// what long-running commands (monitor, pcap capture, proxy) run until.
func (s *session) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(s.ctx)
	if s.env.StopSignals == nil {
		return ctx, cancel
	}
	sigCtx, stopSignals := s.env.StopSignals()
	context.AfterFunc(sigCtx, cancel)
	return ctx, func() {
		stopSignals()
		cancel()
	}
}
