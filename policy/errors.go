package policy

import (
	"fmt"
	"strings"
)

// Error is one problem in a policy file, with the place it was found.
type Error struct {
	// File is the file's path as it was opened ("embedded:…" for the
	// built-in defaults).
	File string
	// Line and Col are 1-based; Col counts bytes, as Go's tools do. Both
	// are 0 when the problem concerns the file as a whole (it cannot be
	// read, say).
	Line, Col int
	// Msg says what is wrong and what to do about it.
	Msg string
	// Err is the underlying error, if any (an *fs.PathError when a file
	// cannot be read).
	Err error
}

// Error returns "file:line:col: msg", or "file: msg" without a position.
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Unwrap returns the underlying error, so that errors.Is(err,
// fs.ErrNotExist) works through it.
func (e *Error) Unwrap() error { return e.Err }

// Errors are all the problems found while loading a policy, in file order
// and, within a file, in position order. Load returns them all at once so
// that one run of `mptcpd-go policy check` shows everything to fix.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so that errors.As(err, &e) with e an *Error
// finds the first one.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}
