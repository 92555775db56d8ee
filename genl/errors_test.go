package genl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestWrapError checks the errno to sentinel translation on errors shaped
// like the ones the netlink package returns: an *netlink.OpError whose Err
// is the errno and whose Message is the kernel's extended ack.
func TestWrapError(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		err  error
		// want is the sentinel the error must match; nil: none of them.
		want      error
		wantErrno unix.Errno
		wantText  string
	}{
		{"EEXIST", CmdAddAddr, opError(unix.EEXIST, ""), ErrExists, unix.EEXIST,
			"op: file exists: mptcp endpoint already exists"},
		{"ENOENT", CmdDelAddr, opError(unix.ENOENT, ""), ErrNotFound, unix.ENOENT,
			"op: no such file or directory: mptcp endpoint or connection not found"},
		{"EBUSY on add", CmdAddAddr, opError(unix.EBUSY, ""), ErrIDInUse, unix.EBUSY,
			"op: device or resource busy: mptcp endpoint id already in use"},
		{"EBUSY on delete", CmdDelAddr, opError(unix.EBUSY, ""), nil, unix.EBUSY,
			"op: device or resource busy"},
		{"ERANGE on add", CmdAddAddr, opError(unix.ERANGE, ""), ErrTooManyEndpoints, unix.ERANGE,
			"op: numerical result out of range: " + ErrTooManyEndpoints.Error()},
		{"ERANGE on set limits", CmdSetLimits, opError(unix.ERANGE, ""), nil, unix.ERANGE,
			"op: numerical result out of range"},
		{"EOPNOTSUPP", CmdAnnounce, opError(unix.EOPNOTSUPP, ""), ErrNotSupported, unix.EOPNOTSUPP,
			"op: operation not supported: " + ErrNotSupported.Error()},
		{"EPROTONOSUPPORT", CmdAnnounce, opError(unix.EPROTONOSUPPORT, ""), ErrNotSupported, unix.EPROTONOSUPPORT, ""},
		{"kernel ENOTSUPP", CmdSubflowCreate, opError(unix.Errno(524), ""), ErrNotSupported, unix.Errno(524), ""},
		{"EPERM", CmdFlushAddrs, opError(unix.EPERM, ""), ErrPermission, unix.EPERM,
			"op: operation not permitted: " + ErrPermission.Error()},
		{"EACCES", CmdFlushAddrs, opError(unix.EACCES, ""), ErrPermission, unix.EACCES, ""},
		{"EINVAL address not found", CmdDelAddr, opError(unix.EINVAL, "address not found"), ErrNotFound, unix.EINVAL,
			"op: address not found (invalid argument): mptcp endpoint or connection not found"},
		{"EINVAL invalid token", CmdAnnounce, opError(unix.EINVAL, "invalid token: 1234"), ErrNotFound, unix.EINVAL,
			"op: invalid token: 1234 (invalid argument): mptcp endpoint or connection not found"},
		{"EINVAL unknown token", CmdRemove, opError(unix.EINVAL, "Unknown Token"), ErrNotFound, unix.EINVAL, ""},
		{"EINVAL no such", CmdSubflowDestroy, opError(unix.EINVAL, "no such subflow"), ErrNotFound, unix.EINVAL, ""},
		{"EINVAL other message", CmdAddAddr, opError(unix.EINVAL, "missing family"), nil, unix.EINVAL,
			"op: missing family (invalid argument)"},
		{"EINVAL no message", CmdAddAddr, opError(unix.EINVAL, ""), nil, unix.EINVAL, "op: invalid argument"},
		{"errno in a syscall error", CmdGetAddr, &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.EPERM)},
			ErrPermission, unix.EPERM, ""},
		{"wrapped", CmdAddAddr, fmt.Errorf("context: %w", opError(unix.EEXIST, "dup")), ErrExists, unix.EEXIST,
			"op: dup (file exists): mptcp endpoint already exists"},
		{"no errno", CmdAddAddr, errors.New("boom"), nil, 0, "op: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wrapError("op", tt.cmd, tt.err)
			for _, s := range append(sentinels, ErrMPTCPUnavailable, ErrEventsLost) {
				if got, want := errors.Is(err, s), s == tt.want; got != want {
					t.Errorf("errors.Is(%v, %q) = %t, want %t", err, s, got, want)
				}
			}
			if tt.wantErrno != 0 && !errors.Is(err, tt.wantErrno) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantErrno)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("errors.Is(%v, original error) = false, want true", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Errno != tt.wantErrno {
				t.Fatalf("got %#v, want an *Error with Errno %v", err, tt.wantErrno)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.wantText)
			}
		})
	}
	if err := wrapError("op", CmdAddAddr, nil); err != nil {
		t.Errorf("wrapError(nil) = %v, want nil", err)
	}
}

// opError returns the error the netlink package makes of an NLMSG_ERROR.
func opError(errno unix.Errno, msg string) error {
	return &netlink.OpError{Op: "receive", Err: errno, Message: msg}
}

// TestErrorsMatchStdlib checks that an *Error carrying an errno also matches
// the standard library's portable errors, through the errno.
func TestErrorsMatchStdlib(t *testing.T) {
	if err := wrapError("op", CmdAddAddr, opError(unix.EEXIST, "")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("errors.Is(%v, fs.ErrExist) = false, want true", err)
	}
	if err := wrapError("op", CmdFlushAddrs, opError(unix.EPERM, "")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false, want true", err)
	}
}

// TestErrorText checks Error() for each combination of fields.
func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "add endpoint", Errno: unix.EINVAL, Message: "an address is required"},
			"add endpoint: an address is required (invalid argument)"},
		{&Error{Op: "add endpoint", Message: "only a message"}, "add endpoint: only a message"},
		{&Error{Op: "add endpoint", Errno: unix.EEXIST, Kind: ErrExists},
			"add endpoint: file exists: " + ErrExists.Error()},
		{&Error{Op: "receive", Err: errors.New("inner")}, "receive: inner"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestIsFamilyMissing checks which lookup errors mean "no such family".
func TestIsFamilyMissing(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{opError(unix.ENOENT, ""), true},
		{fs.ErrNotExist, true},
		{opError(unix.EPERM, ""), false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := isFamilyMissing(tt.err); got != tt.want {
			t.Errorf("isFamilyMissing(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}
