package metrics

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNetstat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []NetstatSection
		wantErr string // "" for success
	}{
		{
			name: "two sections",
			in:   "TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPCapableFallbackACK MPCapableFallbackSYNACK\nMPTcpExt: 7 18446744073709551615\n",
			want: []NetstatSection{
				{Name: "TcpExt", Fields: []NetstatField{{"A", 1}, {"B", 2}}},
				{Name: "MPTcpExt", Fields: []NetstatField{{"MPCapableFallbackACK", 7}, {"MPCapableFallbackSYNACK", 18446744073709551615}}},
			},
		},
		{
			name: "no final newline, extra blanks",
			in:   "IpExt:  InNoRoutes\tInOctets \nIpExt: 0  42 ",
			want: []NetstatSection{{Name: "IpExt", Fields: []NetstatField{{"InNoRoutes", 0}, {"InOctets", 42}}}},
		},
		{
			name: "a section without counters",
			in:   "Empty:\nEmpty:\n",
			want: []NetstatSection{{Name: "Empty", Fields: []NetstatField{}}},
		},
		{name: "empty", in: "", wantErr: "malformed netstat counters: empty input"},
		{name: "only a newline", in: "\n", wantErr: "malformed netstat counters: empty input"},
		{name: "header without values", in: "A: x\nA: 1\nB: y\n", wantErr: "malformed netstat counters: line 3: a header line without a value line"},
		{name: "no colon", in: "A x\nA: 1\n", wantErr: `malformed netstat counters: line 1: no "Name:" prefix`},
		{name: "no colon in values", in: "A: x\nA 1\n", wantErr: `malformed netstat counters: line 2: no "Name:" prefix`},
		{name: "empty name", in: ": x\n: 1\n", wantErr: "malformed netstat counters: line 1: empty section name"},
		{name: "blank in name", in: "A B: x\nA B: 1\n", wantErr: `malformed netstat counters: line 1: section name "A B" is not made of letters, digits and _`},
		{name: "names differ", in: "A: x\nB: 1\n", wantErr: `malformed netstat counters: line 2: values of "B" follow the header of "A"`},
		{name: "too few values", in: "A: x y\nA: 1\n", wantErr: `malformed netstat counters: line 2: 1 values for the 2 counters of "A"`},
		{name: "too many values", in: "A: x\nA: 1 2\n", wantErr: `malformed netstat counters: line 2: 2 values for the 1 counters of "A"`},
		{name: "negative", in: "A: x\nA: -1\n", wantErr: `malformed netstat counters: line 2: value 1 of "A" (x) is "-1", not an unsigned integer`},
		{name: "plus sign", in: "A: x\nA: +1\n", wantErr: `malformed netstat counters: line 2: value 1 of "A" (x) is "+1", not an unsigned integer`},
		{name: "overflow", in: "A: x\nA: 18446744073709551616\n", wantErr: `malformed netstat counters: line 2: value 1 of "A" (x) is "18446744073709551616", not an unsigned integer`},
		{name: "not a number", in: "A: x y\nA: 1 z\n", wantErr: `malformed netstat counters: line 2: value 2 of "A" (y) is "z", not an unsigned integer`},
		{name: "repeated section", in: "A: x\nA: 1\nA: x\nA: 1\n", wantErr: `malformed netstat counters: line 3: a second "A" section`},
		{name: "repeated counter", in: "A: x x\nA: 1 2\n", wantErr: `malformed netstat counters: line 1: counter "x" of "A" appears twice`},
		{name: "odd counter name", in: "A: x-y\nA: 1\n", wantErr: `malformed netstat counters: line 1: counter name "x-y" of "A" is not made of letters, digits and _`},
		{name: "empty line inside", in: "A: x\nA: 1\n\nB: y\nB: 2\n", wantErr: `malformed netstat counters: line 3: no "Name:" prefix`},
		{name: "CRLF", in: "A: x\r\nA: 1\r\n", wantErr: `malformed netstat counters: line 1: counter name "x\r" of "A" is not made of letters, digits and _`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNetstat([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrNetstat) {
					t.Fatalf("ParseNetstat error = %v, want %q wrapping ErrNetstat", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNetstat: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseNetstat (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseNetstatKernel parses a real /proc/net/netstat of Linux 6.18
// and finds the fallback counters that reveal middleboxes.
func TestParseNetstatKernel(t *testing.T) {
	data, err := os.ReadFile("testdata/netstat-linux-6.18.txt")
	if err != nil {
		t.Fatal(err)
	}
	secs, err := ParseNetstat(data)
	if err != nil {
		t.Fatalf("ParseNetstat: %v", err)
	}
	var names []string
	for _, s := range secs {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"TcpExt", "IpExt", "MPTcpExt"}, names); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	ext, ok := Section(secs, MPTCPExtSection)
	if !ok {
		t.Fatal("no MPTcpExt section")
	}
	have := map[string]bool{}
	for _, f := range ext.Fields {
		have[f.Name] = true
	}
	for _, want := range []string{"MPCapableFallbackACK", "MPCapableFallbackSYNACK", "MPFallbackTokenInit", "DssFallback", "MPJoinSynRx"} {
		if !have[want] {
			t.Errorf("MPTcpExt lacks %s", want)
		}
	}
}

// FuzzParseNetstat: ParseNetstat never panics, and what it accepts reads
// back the same after formatting it again.
func FuzzParseNetstat(f *testing.F) {
	if data, err := os.ReadFile("testdata/netstat-linux-6.18.txt"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, err := ParseNetstat(data)
		if err != nil {
			if !errors.Is(err, ErrNetstat) {
				t.Fatalf("error %v does not wrap ErrNetstat", err)
			}
			return
		}
		again, err := ParseNetstat(formatNetstat(secs))
		if err != nil {
			t.Fatalf("the formatted result does not parse: %v", err)
		}
		if diff := cmp.Diff(secs, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// formatNetstat writes sections as the kernel does.
func formatNetstat(secs []NetstatSection) []byte {
	var b bytes.Buffer
	for _, s := range secs {
		var names, values strings.Builder
		for _, f := range s.Fields {
			names.WriteString(" " + f.Name)
			values.WriteString(" " + strconv.FormatUint(f.Value, 10))
		}
		b.WriteString(s.Name + ":" + names.String() + "\n" + s.Name + ":" + values.String() + "\n")
	}
	return b.Bytes()
}
