package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrNetstat is wrapped by every error of ParseNetstat.
var ErrNetstat = errors.New("malformed netstat counters")

// NetstatSection is one pair of lines of /proc/net/netstat: a header line
// "Name: Field1 Field2 ..." and a value line "Name: 1 2 ...".
type NetstatSection struct {
	Name   string
	Fields []NetstatField
}

// NetstatField is one counter of a section.
type NetstatField struct {
	Name  string
	Value uint64
}

// Section returns the section called name, and whether there is one.
func Section(sections []NetstatSection, name string) (NetstatSection, bool) {
	for _, s := range sections {
		if s.Name == name {
			return s, true
		}
	}
	return NetstatSection{}, false
}

// ParseNetstat parses the format of /proc/net/netstat (and /proc/net/snmp
// without negative values): pairs of lines with the same "Name:" prefix,
// the first naming the counters and the second giving their unsigned
// values. It is strict, since a misread counter would be a wrong metric:
// an unpaired line, differing names or counts, a value that is not an
// unsigned integer, an empty or repeated name, or empty input is an error
// wrapping ErrNetstat, saying which line is wrong.
func ParseNetstat(data []byte) ([]NetstatSection, error) {
	// The kernel ends every line with a newline; the last one is optional
	// here.
	data = bytes.TrimSuffix(data, []byte("\n"))
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNetstat)
	}
	lines := bytes.Split(data, []byte("\n"))
	var out []NetstatSection
	seen := make(map[string]bool)
	for i := 0; i < len(lines); i += 2 {
		hdrNo, valNo := i+1, i+2
		name, names, err := splitLine(lines[i])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrNetstat, hdrNo, err)
		}
		if i+1 == len(lines) {
			return nil, fmt.Errorf("%w: line %d: a header line without a value line", ErrNetstat, hdrNo)
		}
		vname, values, err := splitLine(lines[i+1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrNetstat, valNo, err)
		}
		if vname != name {
			return nil, fmt.Errorf("%w: line %d: values of %q follow the header of %q", ErrNetstat, valNo, vname, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: line %d: a second %q section", ErrNetstat, hdrNo, name)
		}
		seen[name] = true
		if len(names) != len(values) {
			return nil, fmt.Errorf("%w: line %d: %d values for the %d counters of %q", ErrNetstat, valNo, len(values), len(names), name)
		}
		sec := NetstatSection{Name: name, Fields: make([]NetstatField, len(names))}
		fieldSeen := make(map[string]bool, len(names))
		for j, f := range names {
			fname := string(f)
			if !validName(f) {
				return nil, fmt.Errorf("%w: line %d: counter name %q of %q is not made of letters, digits and _", ErrNetstat, hdrNo, fname, name)
			}
			if fieldSeen[fname] {
				return nil, fmt.Errorf("%w: line %d: counter %q of %q appears twice", ErrNetstat, hdrNo, fname, name)
			}
			fieldSeen[fname] = true
			v, err := strconv.ParseUint(string(values[j]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: value %d of %q (%s) is %q, not an unsigned integer", ErrNetstat, valNo, j+1, name, fname, values[j])
			}
			sec.Fields[j] = NetstatField{Name: fname, Value: v}
		}
		out = append(out, sec)
	}
	return out, nil
}

// splitLine splits "Name: a b c" into the name and the words after the
// colon; the name must be a validName.
func splitLine(line []byte) (string, [][]byte, error) {
	name, rest, ok := bytes.Cut(line, []byte(":"))
	switch {
	case !ok:
		return "", nil, errors.New(`no "Name:" prefix`)
	case len(name) == 0:
		return "", nil, errors.New("empty section name")
	case !validName(name):
		return "", nil, fmt.Errorf("section name %q is not made of letters, digits and _", name)
	}
	// Split on the blanks the kernel writes only: any other byte, a
	// carriage return say, is then part of a word, and refused.
	words := bytes.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' })
	return string(name), words, nil
}

// validName reports whether s is a non-empty run of ASCII letters, digits
// and _, as the kernel's names are: anything else is not netstat, and
// would not make a valid label value either.
func validName(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
