package cli

import (
	"bytes"
	"fmt"
	"strconv"
)

// jsonWriter is a streaming JSON writer with the exact output of iproute2's
// lib/json_writer.c, including its pretty-printing ("[ {" and "},{"), so that
// -j and -j -p print the same bytes as ip.
type jsonWriter struct {
	out    *bytes.Buffer
	depth  int
	pretty bool
	sep    byte // 0 or ','
}

func (w *jsonWriter) indent() {
	for i := 0; i < w.depth; i++ {
		w.out.WriteString("    ")
	}
}

// eol ends the line and indents, when pretty printing.
func (w *jsonWriter) eol() {
	if !w.pretty {
		return
	}
	w.out.WriteByte('\n')
	w.indent()
}

// eor writes the separator owed by the previous element.
func (w *jsonWriter) eor() {
	if w.sep != 0 {
		w.out.WriteByte(w.sep)
	}
	w.sep = ','
}

func (w *jsonWriter) puts(s string) {
	w.out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\t':
			w.out.WriteString(`\t`)
		case '\n':
			w.out.WriteString(`\n`)
		case '\r':
			w.out.WriteString(`\r`)
		case '\f':
			w.out.WriteString(`\f`)
		case '\b':
			w.out.WriteString(`\b`)
		case '\\':
			w.out.WriteString(`\\`)
		case '"':
			w.out.WriteString(`\"`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(w.out, `\u%04x`, c)
			} else {
				w.out.WriteByte(c)
			}
		}
	}
	w.out.WriteByte('"')
}

func (w *jsonWriter) begin(c byte) {
	w.eor()
	w.out.WriteByte(c)
	w.depth++
	w.sep = 0
}

func (w *jsonWriter) end(c byte) {
	w.depth--
	if w.sep != 0 {
		w.eol()
	}
	w.out.WriteByte(c)
	w.sep = ','
}

func (w *jsonWriter) name(n string) {
	w.eor()
	w.eol()
	w.sep = 0
	w.puts(n)
	w.out.WriteByte(':')
	if w.pretty {
		w.out.WriteByte(' ')
	}
}

func (w *jsonWriter) string(s string) {
	w.eor()
	w.puts(s)
}

func (w *jsonWriter) raw(s string) {
	w.eor()
	w.out.WriteString(s)
}

func (w *jsonWriter) startObject() { w.begin('{') }
func (w *jsonWriter) endObject()   { w.end('}') }

func (w *jsonWriter) startArray() {
	w.begin('[')
	if w.pretty {
		w.out.WriteByte(' ')
	}
}

func (w *jsonWriter) endArray() {
	if w.pretty && w.sep != 0 {
		w.out.WriteByte(' ')
	}
	w.sep = 0
	w.end(']')
}

// destroy is jsonw_destroy: the stream ends with a newline.
func (w *jsonWriter) destroy() { w.out.WriteByte('\n') }

// printer is iproute2's json_print layer: each value is printed either as
// text with a format or as a JSON member, so one piece of code yields both
// outputs in the same order.
type printer struct {
	buf bytes.Buffer
	jw  *jsonWriter // nil for text output
}

func newPrinter(json, pretty bool) *printer {
	p := &printer{}
	if json {
		p.jw = &jsonWriter{out: &p.buf, pretty: pretty}
	}
	return p
}

func (p *printer) isJSON() bool { return p.jw != nil }

// text prints s in text mode only (PRINT_FP).
func (p *printer) text(s string) {
	if p.jw == nil {
		p.buf.WriteString(s)
	}
}

// str prints a string member, or the string through format in text mode.
func (p *printer) str(key, format, v string) {
	if p.jw != nil {
		p.jw.name(key)
		p.jw.string(v)
		return
	}
	fmt.Fprintf(&p.buf, format, v)
}

// uint prints an unsigned member; format takes the value as %d.
func (p *printer) uint(key, format string, v uint64) {
	if p.jw != nil {
		p.jw.name(key)
		p.jw.raw(strconv.FormatUint(v, 10))
		return
	}
	fmt.Fprintf(&p.buf, format, v)
}

// int prints a signed member; format takes the value as %d.
func (p *printer) int(key, format string, v int64) {
	if p.jw != nil {
		p.jw.name(key)
		p.jw.raw(strconv.FormatInt(v, 10))
		return
	}
	fmt.Fprintf(&p.buf, format, v)
}

// trueJSON prints key: true in JSON mode only.
func (p *printer) trueJSON(key string) {
	if p.jw != nil {
		p.jw.name(key)
		p.jw.raw("true")
	}
}

// hex is print_0xhex: a "%#x" string in JSON, the already formatted text
// otherwise.
func (p *printer) hex(key, text string, v uint64) {
	if p.jw != nil {
		p.str(key, "", hex0x(v))
		return
	}
	p.buf.WriteString(text)
}

// nl ends a record in text mode.
func (p *printer) nl() { p.text("\n") }

func (p *printer) openObject() {
	if p.jw != nil {
		p.jw.startObject()
	}
}

func (p *printer) closeObject() {
	if p.jw != nil {
		p.jw.endObject()
	}
}

// openList starts the array that iproute2's new_json_obj opens.
func (p *printer) openList() {
	if p.jw != nil {
		p.jw.startArray()
	}
}

// closeList ends it, as delete_json_obj does.
func (p *printer) closeList() {
	if p.jw != nil {
		p.jw.endArray()
		p.jw.destroy()
	}
}

// take returns what was printed so far and empties the buffer; the JSON
// writer's state is kept for streams.
func (p *printer) take() []byte {
	b := bytes.Clone(p.buf.Bytes())
	p.buf.Reset()
	return b
}
