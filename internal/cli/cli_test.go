package cli

import (
	"strings"
	"testing"
)

func TestGlobal(t *testing.T) {
	usage := result{Stdout: Usage}
	tests := []cliCase{
		{name: "help command as ip's", args: "help", want: result{Stderr: Usage, Code: 255}},
		{name: "help abbreviated", args: "he endpoint", want: result{Stderr: Usage, Code: 255}},
		{name: "-h", args: "-h", want: usage},
		{name: "--help", args: "--help", want: usage},
		{name: "-help", args: "-help endpoint show", want: usage},
		{name: "no command", args: "", want: result{Stderr: Usage, Code: 255}},
		{name: "options only", args: "-j", want: result{Stderr: Usage, Code: 255}},
		{name: "version", args: "-V", want: result{Stdout: "mptcpd-go v0.0.0-test\n"}},
		{name: "unknown command", args: "frobnicate",
			want: result{Stderr: "Error: command \"frobnicate\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "unknown option", args: "-x endpoint",
			want: result{Stderr: "Error: option \"-x\" is unknown, try \"mptcpd-go -help\".\n", Code: 255}},
		{name: "double dash option", args: "--json limits", fake: &fakeBackend{}, calls: []string{"Limits()"},
			want: result{Stdout: `{"add_addr_accepted":0,"subflows":0}` + "\n"}},
		{name: "-- ends options", args: "-- limits", fake: &fakeBackend{}, calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 0 subflows 0 \n"}},
		{name: "ip options that change nothing", args: "-4 -s -d -N -a -br -c -color=never -iec -hu -loops 3 -f inet6 -echo limits",
			fake: &fakeBackend{}, calls: []string{"Limits()"}, want: result{Stdout: "add_addr_accepted 0 subflows 0 \n"}},
		{name: "-f is -family as in ip", args: "-f limits",
			want: result{Stderr: "Error: argument \"limits\" is wrong: invalid protocol family\n", Code: 255}},
		{name: "-resolve unsupported", args: "-r endpoint show",
			want: result{Stderr: "Error: option \"-resolve\" is not supported by mptcpd-go.\n", Code: 255}},
		{name: "-netns needs a name", args: "-n",
			want: result{Stderr: "Error: command line is not complete, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "bad rcvbuf", args: "-rcvbuf x monitor",
			want: result{Stderr: "Error: invalid rcvbuf size 'x'.\n", Code: 255}},
		{name: "abbreviations resolve in ip's order: m is monitor", args: "-j m", fake: &fakeBackend{},
			calls: []string{"Subscribe(0)"}, want: result{Stdout: "[]\n"}},
		{name: "l is limits", args: "l", fake: &fakeBackend{}, calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 0 subflows 0 \n"}},
	}
	runCases(t, tests)
}

func TestUsageGrammar(t *testing.T) {
	for _, want := range []string{
		"pm announce ADDRESS id ID [ port NR ] [ dev NAME ] token TOKEN",
		"pm remove id ID token TOKEN",
		"pm subflow destroy ADDRESS port NR remote ADDRESS rport NR token TOKEN",
		"pm show token TOKEN [ id ID ]",
		`{"add_addr_accepted":N,"subflows":N}`,
	} {
		if !strings.Contains(Usage, want) {
			t.Errorf("Usage lacks %q", want)
		}
	}
}
