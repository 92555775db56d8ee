package cli

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatches(t *testing.T) {
	tests := []struct {
		word, keyword string
		want          bool
	}{
		{"a", "add", true},
		{"add", "add", true},
		{"adds", "add", false},
		{"", "add", false},
		{"del", "delete", true},
		{"x", "add", false},
	}
	for _, tt := range tests {
		if got := matches(tt.word, tt.keyword); got != tt.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tt.word, tt.keyword, got, tt.want)
		}
	}
}

// TestGetUint checks get_u8/get_u16/get_u32 with base 0, which is strtoul.
func TestGetUint(t *testing.T) {
	type res struct {
		V  uint64
		OK bool
	}
	tests := []struct {
		arg  string
		max  uint64
		want res
	}{
		{"0", 255, res{0, true}},
		{"255", 255, res{255, true}},
		{"256", 255, res{0, false}},
		{"0x10", 255, res{16, true}},
		{"0X1f", 255, res{31, true}},
		{"010", 255, res{8, true}}, // octal
		{"08", 255, res{0, false}}, // not octal
		{"0x", 255, res{0, false}}, // "0" then trailing "x"
		{" 7", 255, res{7, true}},  // strtoul skips leading space
		{"+7", 255, res{7, true}},
		{"-0", 255, res{0, true}},  // negated zero
		{"-1", 255, res{0, false}}, // ULONG_MAX
		{"7 ", 255, res{0, false}}, // trailing garbage
		{"", 255, res{0, false}},
		{"abc", 255, res{0, false}},
		{"65535", 65535, res{65535, true}},
		{"65536", 65535, res{0, false}},
		{"4294967295", 1<<32 - 1, res{1<<32 - 1, true}},
		{"4294967296", 1<<32 - 1, res{0, false}},
		{"-4294967295", 1<<32 - 1, res{0, false}},
		{"99999999999999999999999", 1<<32 - 1, res{0, false}}, // overflow
	}
	for _, tt := range tests {
		v, ok := getUint(tt.arg, tt.max)
		if diff := cmp.Diff(tt.want, res{v, ok}); diff != "" {
			t.Errorf("getUint(%q, %d) mismatch (-want +got):\n%s", tt.arg, tt.max, diff)
		}
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		arg  string
		want string // "" for refused
	}{
		{"10.0.0.1", "10.0.0.1"},
		{"10.8", "10.8.0.0"}, // ip's legacy form
		{"10", "10.0.0.0"},
		{"0x0a.0.0.010", "10.0.0.8"},
		{"010.1.1.1", "8.1.1.1"},
		{"256.1.1.1", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.", ""},
		{"1..2", ""},
		{"-0.1.2.3", "0.1.2.3"},
		{"foo", ""},
		{"2001:db8::1", "2001:db8::1"},
		{"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
		{"fe80::1%eth0", ""}, // inet_pton has no zones
		{"::01.2.3.4", ""},
		{"12345::", ""},
		{"1::2::3", ""},
		{":1::", ""},
		{"any", "any"},
		{"all", "all"},
		{"default", "default"},
	}
	for _, tt := range tests {
		a, ok := parseAddr(tt.arg)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("parseAddr(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}

// TestNtop compares with glibc's inet_ntop (expected values printed by
// Python's socket.inet_ntop, which calls it).
func TestNtop(t *testing.T) {
	tests := map[string]string{
		"::":                   "::",
		"::1":                  "::1",
		"::1.2.3.4":            "::1.2.3.4",
		"::ffff:1.2.3.4":       "::ffff:1.2.3.4",
		"::ffff:0:0":           "::ffff:0.0.0.0",
		"2001:db8::1":          "2001:db8::1",
		"2001:db8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
		"2001:0:0:1::1":        "2001:0:0:1::1",
		"1:0:2:0:3:0:4:0":      "1:0:2:0:3:0:4:0",
		"fe80::":               "fe80::",
		"0:0:1::":              "0:0:1::",
		"::0.1.0.0":            "::0.1.0.0",
		"::ffff":               "::ffff",
		"::1:0:0":              "::1:0:0",
		"1:2:3:4:5:6:7::":      "1:2:3:4:5:6:7:0",
		"::1:2:3:4:5:6:7":      "0:1:2:3:4:5:6:7",
		"2001:db8:0:1:1:1:1:1": "2001:db8:0:1:1:1:1:1",
		"10.1.2.3":             "10.1.2.3",
	}
	for in, want := range tests {
		if got := ntop(netip.MustParseAddr(in)); got != want {
			t.Errorf("ntop(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckIfname(t *testing.T) {
	tests := map[string]bool{
		"eth0":             true,
		"":                 false,
		".":                false,
		"..":               false,
		"a/b":              false,
		"a b":              false,
		"123456789012345":  true,
		"1234567890123456": false,
	}
	for in, want := range tests {
		if got := checkIfname(in); got != want {
			t.Errorf("checkIfname(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestIfNameFallbacks(t *testing.T) {
	if got := ifIndexFromName("if42"); got != 42 {
		t.Errorf("ifIndexFromName(if42) = %d, want 42", got)
	}
	if got := ifIndexFromName("if42x"); got != 42 { // sscanf stops at the x
		t.Errorf("ifIndexFromName(if42x) = %d, want 42", got)
	}
	if got := ifIndexFromName("eth0"); got != 0 {
		t.Errorf("ifIndexFromName(eth0) = %d, want 0", got)
	}
	if got := ifNameFallback(-1); got != "if4294967295" {
		t.Errorf("ifNameFallback(-1) = %q", got)
	}
}

func TestHex0x(t *testing.T) {
	for v, want := range map[uint64]string{0: "0", 1: "0x1", 0xabc: "0xabc"} {
		if got := hex0x(v); got != want {
			t.Errorf("hex0x(%d) = %q, want %q", v, got, want)
		}
	}
}
