package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// runBatch is ip -batch: one command per line, all over the session's one
// backend. It stops at the first failing command unless -force. Like ip it
// prints "Command failed FILE:LINE" and exits 1 when a command failed; an
// argument error (which ends ip at once with its own status) also stops
// the batch with that status when -force is not given.
func (s *session) runBatch(name string) int {
	var in io.Reader = s.env.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			text := err.Error()
			var errno unix.Errno
			if errors.As(err, &errno) {
				text = strerror(errno)
			}
			return s.fail(&cmdError{code: exitFailure, err: err,
				msg: fmt.Sprintf("Error: cannot open file \"%s\" for reading: %s.\n", name, text)})
		}
		defer f.Close()
		in = f
	}
	if in == nil {
		in = strings.NewReader("")
	}
	r := bufio.NewReader(in)
	status := exitOK
	lineNo := 0
	for {
		line, ok, err := readCmdLine(r, &lineNo)
		if err != nil {
			s.fail(err)
			break
		}
		if !ok {
			break
		}
		argv, err := splitArgs(line)
		if err != nil {
			return s.fail(err)
		}
		if len(argv) == 0 {
			continue
		}
		err = s.dispatch(argv)
		if err == nil {
			continue
		}
		code := s.fail(err)
		fmt.Fprintf(s.stderr, "Command failed %s:%d\n", name, lineNo)
		s.stderr.Flush()
		if s.dialErr != nil {
			// No backend: every further command would fail the same way,
			// and ip would have exited before reading the file.
			return code
		}
		status = exitFailure
		if !s.opts.force {
			if code == exitUsage {
				return code
			}
			break
		}
	}
	s.stdout.Flush()
	return status
}

// readCmdLine is ip's getcmdline: one line, cut at '#', joined with the
// next when it ends with a backslash. lineNo counts physical lines.
func readCmdLine(r *bufio.Reader, lineNo *int) (string, bool, error) {
	line, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", false, nil
		}
		return "", false, failure(exitFailure, fmt.Errorf("read batch file: %w", err))
	}
	*lineNo++
	line = cutComment(line)
	for strings.HasSuffix(line, "\\\n") {
		next, err := r.ReadString('\n')
		if err != nil && (err != io.EOF || next == "") {
			return "", false, &cmdError{code: exitFailure, msg: "Error: missing continuation line.\n"}
		}
		*lineNo++
		line = strings.TrimSuffix(line, "\\\n") + cutComment(next)
	}
	return line, true, nil
}

func cutComment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// splitArgs is ip's makeargs: words split at blanks, a word that starts
// with a quote runs to the same quote.
func splitArgs(line string) ([]string, error) {
	const ws = " \t\r\n"
	var argv []string
	for {
		line = strings.TrimLeft(line, ws)
		if line == "" {
			return argv, nil
		}
		if q := line[0]; q == '\'' || q == '"' {
			end := strings.IndexByte(line[1:], q)
			if end < 0 {
				return nil, &cmdError{code: exitFailure, msg: "Error: unterminated quoted string.\n"}
			}
			argv = append(argv, line[1:1+end])
			line = line[2+end:]
			continue
		}
		end := strings.IndexAny(line, ws)
		if end < 0 {
			return append(argv, line), nil
		}
		argv = append(argv, line[:end])
		line = line[end+1:]
	}
}
