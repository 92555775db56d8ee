package policy

import (
	"bytes"
	"errors"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file turns TOML text into a small tree of tables and values that
// remember where each key and value was written. go-toml's unstable parser
// gives the syntax tree with byte offsets; the TOML rules that span
// expressions (duplicate keys, tables defined twice, closed inline tables)
// are checked here, so that every problem gets a position and all of them
// are reported, not just the first.

// pos is a 1-based line and byte column.
type pos struct{ line, col int }

// tableHow records how a table came to exist, which decides whether a later
// header or dotted key may define or extend it.
type tableHow uint8

const (
	implicitTable tableHow = iota // parent of a [a.b] header, not yet defined
	headerTable                   // defined by a [a] header
	dottedTable                   // defined by a dotted key, a.b = 1
	inlineTable                   // a = {b = 1}; closed once written
)

// table is a TOML table: its entries in the order they were written.
type table struct {
	name    string // dotted path, for messages; "" for the root
	how     tableHow
	closed  bool // an inline table, or a table inside one
	defined pos  // where it was defined (header, dotted key or "{")
	entries []*entry
	byKey   map[string]*entry
}

// entry is one key of a table and its value.
type entry struct {
	key string
	pos pos // of the key
	val *value
}

// value is a TOML value. Tables (from headers, dotted keys or inline) have
// table set; arrays of tables ([[a]]) have kind ArrayTable and their tables
// as elems.
type value struct {
	kind  unstable.Kind
	pos   pos
	text  string // decoded string, or the literal text of other scalars
	elems []*value
	table *table
}

func newTable(name string, how tableHow, at pos) *table {
	return &table{name: name, how: how, defined: at, byKey: map[string]*entry{}}
}

func (t *table) add(e *entry) {
	t.entries = append(t.entries, e)
	t.byKey[e.key] = e
}

// lookup returns the entry with the given key, or nil.
func (t *table) lookup(key string) *entry { return t.byKey[key] }

// tomlDoc builds the tree of one file.
type tomlDoc struct {
	file  string
	data  []byte
	lines []int // offset at which each line starts
	root  *table
	cur   *table // where key/values go: the root or the last header's table
	errs  Errors
}

// parseTOML parses src. It returns the root table and the problems found;
// syntaxOK reports whether the text was valid TOML at all (if not, the
// tree is incomplete and should not be checked against the schema, which
// would only add confusing follow-up errors).
func parseTOML(file string, src []byte) (root *table, errs Errors, syntaxOK bool) {
	// A full slice expression makes cap(data) == len(data), which lets the
	// offset of a subslice be computed from its capacity (see offsetOf).
	data := src[:len(src):len(src)]
	// Editors on some systems start UTF-8 files with a byte order mark;
	// TOML does not allow it but it is invisible, so accept it.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	d := &tomlDoc{file: file, data: data, lines: lineStarts(data)}
	d.root = newTable("", headerTable, pos{1, 1})
	d.cur = d.root

	if off := invalidUTF8(data); off >= 0 {
		d.errorAt(d.posAt(off), "the file is not valid UTF-8, as TOML requires; save it as UTF-8")
		return d.root, d.errs, false
	}

	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		d.expression(p.Expression())
	}
	if err := p.Error(); err != nil {
		off := len(data)
		msg := err.Error()
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			off = d.offsetOf(pe.Highlight)
			msg = pe.Message
		}
		d.errorAt(d.posAt(off), "TOML syntax: "+msg)
		return d.root, d.errs, false
	}
	return d.root, d.errs, true
}

// invalidUTF8 returns the offset of the first byte that is not valid UTF-8,
// or -1.
func invalidUTF8(b []byte) int {
	for off := 0; off < len(b); {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n == 1 {
			return off
		}
		off += n
	}
	return -1
}

func lineStarts(data []byte) []int {
	lines := []int{0}
	for i, c := range data {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// offsetOf returns the offset in d.data of b, a subslice of it; the end of
// the data if b is not one.
func (d *tomlDoc) offsetOf(b []byte) int {
	off := cap(d.data) - cap(b)
	if b == nil || off < 0 || off > len(d.data) {
		return len(d.data)
	}
	return off
}

// posAt turns a byte offset into a line and column.
func (d *tomlDoc) posAt(off int) pos {
	off = max(0, min(off, len(d.data)))
	line := sort.Search(len(d.lines), func(i int) bool { return d.lines[i] > off })
	return pos{line, off - d.lines[line-1] + 1}
}

func (d *tomlDoc) rangePos(r unstable.Range) pos { return d.posAt(int(r.Offset)) }

func (d *tomlDoc) errorAt(at pos, msg string) {
	d.errs = append(d.errs, &Error{File: d.file, Line: at.line, Col: at.col, Msg: msg})
}

// keyPart is one part of a possibly dotted key.
type keyPart struct {
	name string
	pos  pos
	end  int // offset just past the key part, quotes included
}

func (d *tomlDoc) keyParts(n *unstable.Node) []keyPart {
	var parts []keyPart
	it := n.Key()
	for it.Next() {
		k := it.Node()
		parts = append(parts, keyPart{
			name: string(k.Data),
			pos:  d.rangePos(k.Raw),
			end:  int(k.Raw.Offset + k.Raw.Length),
		})
	}
	return parts
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func (d *tomlDoc) expression(n *unstable.Node) {
	switch n.Kind {
	case unstable.KeyValue:
		d.keyValue(d.cur, n)
	case unstable.Table:
		d.header(n, false)
	case unstable.ArrayTable:
		d.header(n, true)
	}
}

// keyValue adds the key/value n to t, creating the tables of a dotted key.
func (d *tomlDoc) keyValue(t *table, n *unstable.Node) {
	parts := d.keyParts(n)
	if len(parts) == 0 {
		return
	}
	for _, k := range parts[:len(parts)-1] {
		e := t.lookup(k.name)
		if e == nil {
			sub := newTable(join(t.name, k.name), dottedTable, k.pos)
			t.add(&entry{key: k.name, pos: k.pos, val: &value{kind: unstable.Table, pos: k.pos, table: sub}})
			t = sub
			continue
		}
		sub := e.val.table
		switch {
		case sub == nil || e.val.kind == unstable.ArrayTable:
			d.errorAt(k.pos, "key "+quote(join(t.name, k.name))+" was already set at "+e.pos.String()+" and is not a table; set it once")
			return
		case sub.closed:
			d.errorAt(k.pos, "table "+quote(sub.name)+" was written inline at "+sub.defined.String()+" and cannot be extended; add the keys inside its { }")
			return
		case sub.how != dottedTable:
			d.errorAt(k.pos, "table ["+sub.name+"] was defined at "+sub.defined.String()+"; put this key in that table instead")
			return
		}
		t = sub
	}
	last := parts[len(parts)-1]
	if e := t.lookup(last.name); e != nil {
		d.errorAt(last.pos, "duplicate key "+quote(join(t.name, last.name))+" (first set at "+e.pos.String()+"); remove one")
		return
	}
	v := d.value(n.Value(), d.valueStart(last.end), join(t.name, last.name))
	t.add(&entry{key: last.name, pos: last.pos, val: v})
}

// valueStart returns the position of the value that follows the key ending
// at keyEnd: go-toml records no range for arrays, so it is found here by
// skipping `ws = ws`, which is all TOML allows between a key and its value.
func (d *tomlDoc) valueStart(keyEnd int) pos {
	i := keyEnd
	for i < len(d.data) && (d.data[i] == ' ' || d.data[i] == '\t') {
		i++
	}
	if i < len(d.data) && d.data[i] == '=' {
		i++
	}
	for i < len(d.data) && (d.data[i] == ' ' || d.data[i] == '\t') {
		i++
	}
	return d.posAt(i)
}

// value converts a value node. at is where the value starts if known (it
// is only used for arrays, which have no range); name is the key's path.
func (d *tomlDoc) value(n *unstable.Node, at pos, name string) *value {
	switch n.Kind {
	case unstable.Array:
		v := &value{kind: unstable.Array, pos: at}
		it := n.Children()
		for it.Next() {
			// A nested array's own start is not recorded: use ours.
			v.elems = append(v.elems, d.value(it.Node(), at, name))
		}
		return v
	case unstable.InlineTable:
		at = d.rangePos(n.Raw)
		t := newTable(name, inlineTable, at)
		it := n.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				d.keyValue(t, kv)
			}
		}
		closeTable(t)
		return &value{kind: unstable.InlineTable, pos: at, table: t}
	default:
		v := &value{kind: n.Kind, pos: d.rangePos(n.Raw), text: string(n.Data)}
		return v
	}
}

// closeTable marks an inline table and every table in it as closed.
func closeTable(t *table) {
	t.closed = true
	for _, e := range t.entries {
		if e.val.table != nil {
			closeTable(e.val.table)
		}
	}
}

// header handles [a.b] (or [[a.b]] if array) and makes its table current.
func (d *tomlDoc) header(n *unstable.Node, array bool) {
	parts := d.keyParts(n)
	// Keys after a bad header go to a table nobody looks at, so that they
	// cause no follow-up errors against the table before it.
	d.cur = newTable("", headerTable, pos{1, 1})
	if len(parts) == 0 {
		return
	}
	at := d.bracketPos(parts[0])
	t := d.root
	for _, k := range parts[:len(parts)-1] {
		e := t.lookup(k.name)
		if e == nil {
			sub := newTable(join(t.name, k.name), implicitTable, k.pos)
			t.add(&entry{key: k.name, pos: k.pos, val: &value{kind: unstable.Table, pos: k.pos, table: sub}})
			t = sub
			continue
		}
		switch {
		case e.val.kind == unstable.ArrayTable:
			// [[a]] then [a.b]: b goes into the last element of a.
			t = e.val.elems[len(e.val.elems)-1].table
		case e.val.table == nil:
			d.errorAt(k.pos, "key "+quote(join(t.name, k.name))+" was already set at "+e.pos.String()+" and is not a table; set it once")
			return
		case e.val.table.closed:
			d.errorAt(k.pos, "table "+quote(e.val.table.name)+" was written inline at "+e.val.table.defined.String()+" and cannot be extended; add the keys inside its { }")
			return
		default:
			t = e.val.table
		}
	}
	last := parts[len(parts)-1]
	name := join(t.name, last.name)
	e := t.lookup(last.name)
	if array {
		sub := newTable(name, headerTable, at)
		elem := &value{kind: unstable.Table, pos: at, table: sub}
		switch {
		case e == nil:
			t.add(&entry{key: last.name, pos: last.pos, val: &value{kind: unstable.ArrayTable, pos: at, elems: []*value{elem}}})
		case e.val.kind == unstable.ArrayTable:
			e.val.elems = append(e.val.elems, elem)
		default:
			d.errorAt(at, "[["+name+"]] conflicts with "+quote(name)+" set at "+e.pos.String()+"; rename one")
			return
		}
		d.cur = sub
		return
	}
	if e == nil {
		sub := newTable(name, headerTable, at)
		t.add(&entry{key: last.name, pos: at, val: &value{kind: unstable.Table, pos: at, table: sub}})
		d.cur = sub
		return
	}
	sub := e.val.table
	switch {
	case sub == nil || e.val.kind == unstable.ArrayTable:
		d.errorAt(at, "["+name+"] conflicts with "+quote(name)+" set at "+e.pos.String()+"; rename one")
	case sub.closed:
		d.errorAt(at, "table "+quote(name)+" was written inline at "+sub.defined.String()+" and cannot be extended; add the keys inside its { }")
	case sub.how == implicitTable:
		sub.how, sub.defined = headerTable, at
		e.pos, e.val.pos = at, at
		d.cur = sub
	case sub.how == headerTable:
		d.errorAt(at, "table ["+name+"] is defined twice (first at "+sub.defined.String()+"); merge the two")
	default:
		d.errorAt(at, "table ["+name+"] was already defined by dotted keys at "+sub.defined.String()+"; define it in one place")
	}
}

// bracketPos returns the position of the "[" (or "[[") before the first
// key of a header: TOML allows only spaces and tabs between them.
func (d *tomlDoc) bracketPos(first keyPart) pos {
	off := d.lines[first.pos.line-1] + first.pos.col - 1
	for off > 0 && (d.data[off-1] == ' ' || d.data[off-1] == '\t') {
		off--
	}
	for i := 0; i < 2 && off > 0 && d.data[off-1] == '['; i++ {
		off--
	}
	return d.posAt(off)
}

func (p pos) String() string { return strconv.Itoa(p.line) + ":" + strconv.Itoa(p.col) }

// quote quotes s for a message, as a TOML basic string would look.
func quote(s string) string { return strconv.Quote(s) }
