package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file holds the strict decoding helpers: they take values out of the
// tree built by parseTOML, check their TOML types and report unknown keys.
// What the values mean is checked afterwards, by the validate functions.

// decoder collects the problems of one file.
type decoder struct {
	file string
	errs Errors
	// topKeys are the top-level keys of the file's schema: such a key
	// found in a table was most likely written below a [header] by
	// mistake, which TOML reads as part of that table.
	topKeys []string
}

func (d *decoder) errorf(at pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: at.line, Col: at.col, Msg: fmt.Sprintf(format, args...)})
}

// field is a key a table may have, and what to do with its entry.
type field struct {
	key string
	set func(e *entry)
}

// fields calls the matching field's set for each entry of t and reports
// the keys that have none; where names the table in messages ("" for the
// top level). reserved keys are for later versions and get a message of
// their own.
func (d *decoder) fields(t *table, where string, reserved []string, fs ...field) {
	for _, e := range t.entries {
		i := slices.IndexFunc(fs, func(f field) bool { return f.key == e.key })
		if i >= 0 {
			fs[i].set(e)
			continue
		}
		if slices.Contains(reserved, e.key) {
			d.errorf(e.pos, "%s is reserved for a later version of mptcpd-go and not supported yet; remove it", e.key)
			continue
		}
		keys := make([]string, len(fs))
		for i, f := range fs {
			keys[i] = f.key
		}
		in := ""
		if where != "" {
			in = " in " + where
		}
		hint := "remove it"
		if best := closest(e.key, keys); best != "" {
			hint = "did you mean " + quote(best) + "?"
		}
		if where != "" && slices.Contains(d.topKeys, e.key) {
			hint = e.key + " belongs at the top level: move it above the first [table] line"
		}
		d.errorf(e.pos, "unknown key %s%s; %s (known keys: %s)", quote(e.key), in, hint, strings.Join(keys, ", "))
	}
}

// typeName names the TOML type of v for messages.
func typeName(v *value) string {
	switch v.kind {
	case unstable.String:
		return "a string"
	case unstable.Bool:
		return "a boolean"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Array:
		return "a list"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.ArrayTable:
		return "a list of tables"
	default:
		return "a date or time"
	}
}

func (d *decoder) wrongType(e *entry, want string) {
	d.errorf(e.val.pos, "%s: want %s, not %s", e.key, want, typeName(e.val))
}

// strVal is a string and where it was written.
type strVal struct {
	s   string
	pos pos
}

// intVal is an integer and where it was written.
type intVal struct {
	n   int64
	pos pos
}

// boolVal is a boolean and where it was written.
type boolVal struct {
	b   bool
	pos pos
}

// listVal is a list of strings and where it was written.
type listVal struct {
	items []strVal
	pos   pos
	// broken is set when the key had the wrong type (already reported):
	// the key was there, but there is nothing to check.
	broken bool
}

// str returns e's string value; nil if it is not a string.
func (d *decoder) str(e *entry) *strVal {
	if e.val.kind != unstable.String {
		d.wrongType(e, "a string")
		return nil
	}
	return &strVal{e.val.text, e.val.pos}
}

// boolean returns e's boolean value; nil if it is not one.
func (d *decoder) boolean(e *entry) *boolVal {
	if e.val.kind != unstable.Bool {
		d.wrongType(e, "true or false")
		return nil
	}
	return &boolVal{e.val.text == "true", e.val.pos}
}

// integer returns e's integer value; nil if it is not one or does not fit
// in 64 bits.
func (d *decoder) integer(e *entry, want string) *intVal {
	if e.val.kind != unstable.Integer {
		d.wrongType(e, want)
		return nil
	}
	n, ok := parseInt(e.val.text)
	if !ok {
		d.errorf(e.val.pos, "%s: %s is too large; want %s", e.key, e.val.text, want)
		return nil
	}
	return &intVal{n, e.val.pos}
}

// parseInt parses a TOML integer that go-toml's scanner has checked the
// syntax of: decimal with sign, or 0x, 0o, 0b, all with underscores.
func parseInt(text string) (int64, bool) {
	s := strings.ReplaceAll(text, "_", "")
	base := 10
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if base != 10 {
			s = s[2:]
		}
	}
	n, err := strconv.ParseInt(s, base, 64)
	return n, err == nil
}

// table returns e's table; nil if it is not one.
func (d *decoder) table(e *entry) *table {
	if e.val.table == nil || e.val.kind == unstable.ArrayTable {
		d.errorf(e.val.pos, "%s: want a table, written [%s] on a line of its own, not %s", e.key, e.key, typeName(e.val))
		return nil
	}
	return e.val.table
}

// list returns e's strings: a list of strings, or a single string taken as
// a list of one. want describes the list for messages. Elements that are
// not strings are reported and left out; a value of another type is
// reported and gives a broken list.
func (d *decoder) list(e *entry, want string) *listVal {
	l := &listVal{pos: e.val.pos}
	switch e.val.kind {
	case unstable.String:
		l.items = []strVal{{e.val.text, e.val.pos}}
	case unstable.Array:
		for i, v := range e.val.elems {
			if v.kind != unstable.String {
				d.errorf(v.pos, "%s: element %d is %s; want %s", e.key, i+1, typeName(v), want)
				continue
			}
			l.items = append(l.items, strVal{v.text, v.pos})
		}
	default:
		d.wrongType(e, want)
		l.broken = true
	}
	return l
}

// duplicates reports the items listed more than once.
func (d *decoder) duplicates(key string, l *listVal) {
	seen := make(map[string]bool, len(l.items))
	for _, it := range l.items {
		if seen[it.s] {
			d.errorf(it.pos, "%s: %s is listed twice; drop one", key, quote(it.s))
		}
		seen[it.s] = true
	}
}

// joinList returns "a, b <conj> c".
func joinList(words []string, conj string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// quotedOrList returns `"a", "b" or "c"`.
func quotedOrList(words []string) string { return joinList(quoteAll(words), "or") }

// quotedAndList returns `"a", "b" and "c"`.
func quotedAndList(words []string) string { return joinList(quoteAll(words), "and") }

func quoteAll(words []string) []string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = quote(w)
	}
	return q
}

// closest returns the option closest to s if it is close enough to be a
// likely typo of it, else "".
func closest(s string, options []string) string {
	best, bestDist := "", 3
	for _, o := range options {
		if d := editDistance(strings.ToLower(s), o); d < bestDist {
			best, bestDist = o, d
		}
	}
	if len(s) < 2 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes;
// short option names make anything cleverer pointless.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // no typo is that long; keep the cost bounded
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
