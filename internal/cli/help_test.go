package cli

import (
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// docAt returns the documentation of the command at path, failing the
// test when the table has none.
func docAt(t *testing.T, path ...string) cmdDoc {
	t.Helper()
	d, ok := findDoc(path[0])
	if !ok {
		t.Fatalf("no documentation for %q", path[0])
	}
	for _, w := range path[1:] {
		if d, ok = subDoc(d, w); !ok {
			t.Fatalf("no documentation for %q", strings.Join(path, " "))
		}
	}
	return d
}

func TestCommandHelp(t *testing.T) {
	help := func(path ...string) result {
		return result{Stdout: helpText(path, docAt(t, path...))}
	}
	ipUsage := result{Stderr: Usage, Code: 255}
	tests := []cliCase{
		{name: "endpoint --help", args: "endpoint --help", want: help("endpoint")},
		{name: "endpoint -h", args: "endpoint -h", want: help("endpoint")},
		{name: "abbreviated subcommand", args: "e a -h", want: help("endpoint", "add")},
		{name: "limits set --help", args: "limits set --help", want: help("limits", "set")},
		{name: "monitor -help", args: "monitor -help", want: help("monitor")},
		{name: "help daemon", args: "help daemon", want: help("daemon")},
		{name: "help abbreviated", args: "he pro cl", want: help("proxy", "client")},
		{name: "help with an unknown subcommand", args: "help proxy nonsense", want: help("proxy")},
		{name: "proxy client --help", args: "proxy client --help", want: help("proxy", "client")},
		{name: "--help after flags", args: "proxy client --listen :1 --help", want: help("proxy", "client")},
		{name: "status -j -h", args: "status -j -h", want: help("status")},
		{name: "policy check --help", args: "policy check --help", want: help("policy", "check")},
		{name: "pcap help", args: "pcap help", want: help("pcap")},
		{name: "pm help", args: "pm help", want: help("pm")},
		{name: "pm subflow --help", args: "pm subflow --help", want: help("pm", "subflow")},
		{name: "completion --help", args: "completion --help", want: help("completion")},
		{name: "help help", args: "help help", want: help("help")},
		// ip's commands keep ip's behaviour for "help".
		{name: "help endpoint is ip's usage", args: "help endpoint", want: ipUsage},
		{name: "help limits is ip's usage", args: "help limits set", want: ipUsage},
		{name: "help unknown is ip's usage", args: "help frobnicate", want: ipUsage},
		{name: "endpoint help is ip's error", args: "endpoint help",
			want: result{Stderr: "Error: command \"help\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "help as an argument is no help request", args: "endpoint add 10.0.0.1 -h",
			want: result{Stderr: "Error: any valid address is expected rather than \"-h\".\n", Code: 1}},
	}
	runCases(t, tests)
}

func TestHelpText(t *testing.T) {
	got := helpText([]string{"limits", "set"}, docAt(t, "limits", "set"))
	want := `Usage: mptcpd-go limits set [ subflows NR ] [ add_addr_accepted NR ]

Set the limits.

Options:
  subflows NR           Additional subflows per connection, 0 to 8.
  add_addr_accepted NR  Addresses accepted from the peer's ADD_ADDR per
                        connection, 0 to 8.

Examples:
  mptcpd-go limits set subflows 4 add_addr_accepted 4
      allow four extra subflows

See mptcpd-go(8) and mptcpd-go.toml(5).
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("help of limits set mismatch (-want +got):\n%s", diff)
	}
}

// TestEveryCommandDocumented checks that the command table and the
// documentation table name the same commands, in the same order.
func TestEveryCommandDocumented(t *testing.T) {
	var want, got []string
	for _, c := range commands() {
		want = append(want, c.name)
	}
	for _, d := range commandDocs() {
		got = append(got, d.name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commandDocs differs from commands() (-want +got):\n%s", diff)
	}
	for _, d := range commandDocs() {
		if d.summary == "" {
			t.Errorf("%s has no summary", d.name)
		}
		for _, l := range leaves(d) {
			if len(l.synopsis) == 0 || l.summary == "" {
				t.Errorf("%s %s lacks a synopsis or a summary", d.name, l.name)
			}
		}
	}
}

// usageAlternatives returns the COMMAND alternatives of Usage, each with
// its continuation lines joined and spaces normalized.
func usageAlternatives(usage string) []string {
	var alts []string
	in := false
	for _, line := range strings.Split(usage, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "COMMAND := "):
			in = true
			alts = append(alts, strings.TrimPrefix(line, "COMMAND := "))
		case !in:
		case strings.Contains(line, ":="):
			in = false
		case strings.HasPrefix(trimmed, "| "):
			alts = append(alts, strings.TrimPrefix(trimmed, "| "))
		default:
			alts[len(alts)-1] += " " + trimmed
		}
	}
	for i, a := range alts {
		alts[i] = strings.Join(strings.Fields(a), " ")
	}
	return alts
}

// TestUsageMatchesTable checks that Usage's grammar has exactly the
// synopses of the documentation table.
func TestUsageMatchesTable(t *testing.T) {
	var want []string
	for _, d := range commandDocs() {
		for _, s := range synopses(d) {
			want = append(want, strings.Join(strings.Fields(s), " "))
		}
	}
	got := usageAlternatives(Usage)
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Usage's COMMAND grammar differs from commandDocs (-want +got):\n%s", diff)
	}
}

func TestWrapSynopsis(t *testing.T) {
	tests := []struct {
		prefix, syn string
		width       int
		want        string
	}{
		{"", "limits show", 79, "mptcpd-go limits show\n"},
		{"Usage: ", "proxy server --listen ADDR [ --to HOST:PORT ] [ --announce ADDR ]... [ --allow PREFIX ]...", 64,
			"Usage: mptcpd-go proxy server --listen ADDR [ --to HOST:PORT ]\n" +
				"                              [ --announce ADDR ]...\n" +
				"                              [ --allow PREFIX ]...\n"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, wrapSynopsis(tt.prefix, tt.syn, tt.width)); diff != "" {
			t.Errorf("wrapSynopsis(%q) mismatch (-want +got):\n%s", tt.syn, diff)
		}
	}
}
