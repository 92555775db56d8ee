package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// Exit statuses, as ip returns them: ip's main returns -(command's result),
// and invarg/missarg call exit(-1).
const (
	exitOK       = 0
	exitFailure  = 1   // bad address, MPTCP unavailable, batch failure
	exitKernel   = 2   // the kernel refused a request
	exitUsage    = 255 // argument error or unknown namespace: exit(-1)
	exitListenRx = 254 // monitor receive error: ip's monitor returns 2, negated
)

// cmdError is a failed command: what to print on stderr and the exit
// status. The message is complete (iproute2's exact text where ip has one);
// hints follow it on lines of their own.
type cmdError struct {
	code  int
	msg   string // printed as is; ends with a newline
	hints []string
	err   error // the cause, for errors.Is/As
}

func (e *cmdError) Error() string {
	s := strings.TrimSpace(strings.TrimPrefix(e.msg, "Error: "))
	if e.err != nil && !strings.Contains(s, e.err.Error()) {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *cmdError) Unwrap() error { return e.err }

// invarg is iproute2's invarg(): msg may end with its own newline, as some
// of ipmptcp.c's messages do, which gives a blank line.
func invarg(msg, arg string, hints ...string) error {
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: argument \"%s\" is wrong: %s\n", arg, msg), hints: hints}
}

// missarg is iproute2's missarg().
func missarg(key string) error {
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: argument \"%s\" is required\n", key)}
}

// incomplete is iproute2's incomplete_command(), when a keyword lacks its
// value.
func incomplete() error {
	return &cmdError{code: exitUsage, msg: "Error: command line is not complete, try \"mptcpd-go help\".\n"}
}

// unknownCommand is ip mptcp's message for a word that is no subcommand.
func unknownCommand(word string) error {
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: command \"%s\" is unknown, try \"mptcpd-go help\".\n", word)}
}

// badAddress is get_addr's failure, which exits 1.
func badAddress(arg string) error {
	return &cmdError{code: exitFailure, msg: fmt.Sprintf("Error: any valid address is expected rather than \"%s\".\n", arg)}
}

// failure is an error of our own with the given status.
func failure(code int, err error, hints ...string) error {
	return &cmdError{code: code, msg: "Error: " + err.Error() + "\n", hints: hints, err: err}
}

// kernelError reports a refused request as ip does: the kernel's extended
// ack text ending with a period, or the errno's text when there is none.
// op says what failed, for the wrapped Go error.
func kernelError(op string, err error, hints ...string) error {
	return &cmdError{code: exitKernel, msg: "Error: " + kernelText(err) + "\n", hints: hints,
		err: fmt.Errorf("%s: %w", op, err)}
}

// kernelText is the part after "Error: " of ip's message for err.
func kernelText(err error) string {
	var ge *genl.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Message != "":
			return withPeriod(ge.Message)
		case ge.Errno != 0:
			return withPeriod(strerror(ge.Errno))
		}
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return withPeriod(strerror(errno))
	}
	return withPeriod(err.Error())
}

func withPeriod(s string) string {
	if s == "" || strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// strerror is glibc's strerror: Go's errno texts are glibc's, lower-cased.
func strerror(e unix.Errno) string {
	s := e.Error()
	if strings.HasPrefix(s, "errno ") {
		return fmt.Sprintf("Unknown error %d", int(e))
	}
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// errnoOf returns the kernel's errno carried by err, 0 if none.
func errnoOf(err error) unix.Errno {
	var ge *genl.Error
	if errors.As(err, &ge) && ge.Errno != 0 {
		return ge.Errno
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// kernelMessage returns the kernel's extended ack text, if any.
func kernelMessage(err error) string {
	var ge *genl.Error
	if errors.As(err, &ge) {
		return ge.Message
	}
	return ""
}

// writeError prints err as ip would, then the hints.
func writeError(w interface{ WriteString(string) (int, error) }, err error) int {
	var ce *cmdError
	if !errors.As(err, &ce) {
		ce = &cmdError{code: exitFailure, msg: "Error: " + err.Error() + "\n"}
	}
	w.WriteString(ce.msg)
	for _, h := range ce.hints {
		w.WriteString("hint: " + h + "\n")
	}
	return ce.code
}
