package genl

import (
	"errors"
	"os"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Sentinel errors. An *Error returned by the client matches one of them and
// also the kernel's errno with errors.Is.
var (
	// ErrExists: the endpoint (address) already exists.
	ErrExists = errors.New("mptcp endpoint already exists")
	// ErrNotFound: no such endpoint, address id or connection token.
	ErrNotFound = errors.New("mptcp endpoint or connection not found")
	// ErrIDInUse: the requested endpoint id is taken.
	ErrIDInUse = errors.New("mptcp endpoint id already in use")
	// ErrTooManyEndpoints: the kernel keeps at most MaxEndpoints endpoints.
	ErrTooManyEndpoints = errors.New("too many mptcp endpoints: the kernel allows at most 8 endpoints per network namespace")
	// ErrNotSupported: the kernel does not support the request.
	ErrNotSupported = errors.New("operation not supported by this kernel's mptcp path manager")
	// ErrPermission: the caller lacks CAP_NET_ADMIN.
	ErrPermission = errors.New("permission denied: mptcp path manager changes need CAP_NET_ADMIN")
	// ErrMPTCPUnavailable: the kernel has no mptcp_pm generic netlink family.
	ErrMPTCPUnavailable = errors.New("the kernel has no MPTCP path manager (generic netlink family mptcp_pm is missing; is CONFIG_MPTCP enabled?)")
	// ErrEventsLost: the event socket overflowed (ENOBUFS) and events were
	// dropped. The subscription keeps working; callers should resync their
	// state from a dump.
	ErrEventsLost = errors.New("mptcp events lost: socket receive buffer overflowed, resync required")
)

// Error is a failed mptcp_pm request.
type Error struct {
	// Op is what was attempted, e.g. "add endpoint".
	Op string
	// Kind is one of the sentinel errors, or nil when none applies.
	Kind error
	// Errno is the kernel's error number, 0 when there is none.
	Errno unix.Errno
	// Message is the kernel's extended acknowledgement text, if any.
	Message string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Message != "":
		b.WriteString(e.Message)
		if e.Errno != 0 {
			b.WriteString(" (")
			b.WriteString(e.Errno.Error())
			b.WriteString(")")
		}
	case e.Errno != 0:
		b.WriteString(e.Errno.Error())
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is match both the sentinel and the errno.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// wrapError translates an error from the netlink layer for the command cmd
// into an *Error. It is the one place where errno becomes a sentinel.
func wrapError(op string, cmd Command, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Err: err}
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		e.Message = oe.Message
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		e.Errno = errno
	}
	e.Kind = classify(cmd, e.Errno, e.Message)
	return e
}

func classify(cmd Command, errno unix.Errno, msg string) error {
	lmsg := strings.ToLower(msg)
	switch errno {
	case unix.EEXIST:
		return ErrExists
	case unix.ENOENT:
		return ErrNotFound
	case unix.EBUSY:
		if cmd == CmdAddAddr {
			return ErrIDInUse
		}
	case unix.ERANGE:
		if cmd == CmdAddAddr {
			return ErrTooManyEndpoints
		}
	case unix.EOPNOTSUPP, unix.EPROTONOSUPPORT, 524: // 524: the kernel-internal ENOTSUPP
		return ErrNotSupported
	case unix.EPERM, unix.EACCES:
		return ErrPermission
	case unix.EINVAL:
		// The kernel reports unknown ids and tokens as EINVAL; its
		// extended ack says which.
		if strings.Contains(lmsg, "not found") || strings.Contains(lmsg, "invalid token") ||
			strings.Contains(lmsg, "unknown token") || strings.Contains(lmsg, "no such") {
			return ErrNotFound
		}
	}
	return nil
}

// isFamilyMissing reports whether a family lookup failed because the family
// is not registered.
func isFamilyMissing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT)
}
