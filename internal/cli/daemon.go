package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/internal/ansi"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// DaemonUsage is the grammar of the daemon-side commands.
const DaemonUsage = `       mptcpd-go daemon [ --config PATH ]
       mptcpd-go status [ -j ] [ --color[=always|auto|never] ]
                        [ --socket PATH | --config PATH ]
       mptcpd-go reload [ --socket PATH | --config PATH ]
       mptcpd-go policy check [ --config PATH ]
--config defaults to ` + policy.DefaultPath + `; without that file the
built-in default policy applies (every interface with a default route gets
subflow endpoints for its global addresses).
`

// newFlagSet is a flag set that reports errors as a usage error of cmd.
func newFlagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: %s: %v\nUsage:\n%s", fs.Name(), err, DaemonUsage)}
	}
	if fs.NArg() > 0 {
		return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: %s: unexpected argument %q\nUsage:\n%s", fs.Name(), fs.Arg(0), DaemonUsage)}
	}
	return nil
}

// noNetns refuses -n for commands that work on the namespace they run in.
func (s *session) noNetns(cmd string) error {
	if s.opts.netns == "" {
		return nil
	}
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: -n is not supported by %s: run it inside the namespace with \"ip netns exec %s mptcpd-go %s\".\n", cmd, s.opts.netns, cmd)}
}

// daemonCmd is `mptcpd-go daemon`: it runs until SIGTERM or SIGINT.
func (s *session) daemonCmd(args []string) error {
	fs := newFlagSet("daemon")
	config := fs.String("config", "", "main policy file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := s.noNetns("daemon"); err != nil {
		return err
	}
	rcvbuf, err := testReceiveBuffer()
	if err != nil {
		return failure(exitFailure, err)
	}
	s.stdout.Flush()
	err = daemon.Run(s.ctx, daemon.Options{ConfigPath: *config, Stderr: s.env.Stderr, Signals: true,
		NetlinkReceiveBuffer: rcvbuf})
	if err != nil {
		return policyFailure(err)
	}
	return nil
}

// rcvbufEnv lets the tests that run the daemon as a process give it a tiny
// netlink receive buffer (daemon.Options.NetlinkReceiveBuffer), so that
// event floods overflow it; nothing else sets it.
const rcvbufEnv = "MPTCPD_TEST_NETLINK_RCVBUF"

// testReceiveBuffer reads rcvbufEnv; 0 when unset.
func testReceiveBuffer() (int, error) {
	v := os.Getenv(rcvbufEnv)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a number of bytes", rcvbufEnv, v)
	}
	return n, nil
}

// policyFailure prints every policy error on its own line.
func policyFailure(err error) error {
	var perrs policy.Errors
	if errors.As(err, &perrs) {
		var b strings.Builder
		for _, e := range perrs {
			b.WriteString("Error: " + e.Error() + "\n")
		}
		return &cmdError{code: exitFailure, msg: b.String(), err: err}
	}
	return failure(exitFailure, err)
}

// socketFlags adds --socket and --config and returns the socket to use.
func socketFlags(fs *flag.FlagSet) func() (string, error) {
	socket := fs.String("socket", "", "control socket of the daemon")
	config := fs.String("config", "", "main policy file (its control_socket is used)")
	return func() (string, error) {
		if *socket != "" {
			return *socket, nil
		}
		cfg, err := policy.Load(*config)
		if err == nil {
			return cfg.ControlSocket, nil
		}
		if *config == "" {
			// A broken policy is when status matters most (it shows the
			// refused reload): try the default socket.
			return policy.DefaultControlSocket, nil
		}
		return "", policyFailure(fmt.Errorf("find the control socket (or give it with --socket): %w", err))
	}
}

// status is `mptcpd-go status`: a summary (coloured on a terminal), then
// the details; with -j the Status as JSON, problems included.
func (s *session) status(args []string) error {
	fs := newFlagSet("status")
	jsonOut := fs.Bool("j", s.opts.json, "JSON output")
	var when colorWhen
	fs.Var(&when, "color", "colour the summary: always, auto (on a terminal) or never")
	socket := socketFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := socket()
	if err != nil {
		return err
	}
	prog := &progress{w: s.stdout, on: !*jsonOut && s.stdoutIsTerminal()}
	if prog.on {
		prog.w.WriteString(ansi.Dim + "asking the mptcpd-go daemon at " + path + " ..." + ansi.Reset)
		prog.shown = true
		s.stdout.Flush()
	}
	st, err := daemon.QueryStatus(path)
	prog.clear()
	if err != nil {
		return failure(exitFailure, err)
	}
	// Computed here, not by the daemon, so any daemon version gets them.
	st.Problems = st.Diagnose()
	if st.Problems == nil {
		st.Problems = []daemon.Problem{}
	}
	if *jsonOut {
		enc := json.NewEncoder(s.stdout)
		if s.opts.pretty {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(st)
	}
	return st.WriteReport(s.stdout, s.useColor(when))
}

// reload is `mptcpd-go reload`, the same as SIGHUP but with the answer.
func (s *session) reload(args []string) error {
	fs := newFlagSet("reload")
	socket := socketFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path, err := socket()
	if err != nil {
		return err
	}
	if err := daemon.RequestReload(path); err != nil {
		return failure(exitFailure, err)
	}
	return nil
}

// policyCmd is `mptcpd-go policy check`.
func (s *session) policyCmd(args []string) error {
	if len(args) == 0 || !matches(args[0], "check") {
		return &cmdError{code: exitUsage, msg: "Error: policy: want \"policy check [ --config PATH ]\"\n"}
	}
	fs := newFlagSet("policy check")
	config := fs.String("config", "", "main policy file")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := s.noNetns("policy check"); err != nil {
		return err
	}
	if err := daemon.Check(s.stdout, *config); err != nil {
		return policyFailure(err)
	}
	return nil
}
