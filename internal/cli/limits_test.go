package cli

import (
	"testing"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

func TestLimits(t *testing.T) {
	lim := func() *fakeBackend { return &fakeBackend{limits: genl.Limits{AddAddrAccepted: 4, Subflows: 3}} }
	tests := []cliCase{
		// Text as printed by iproute2 6.1's ip.
		{name: "bare limits shows", args: "limits", fake: lim(), calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 4 subflows 3 \n"}},
		{name: "show", args: "limits show", fake: lim(), calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 4 subflows 3 \n"}},
		{name: "show parses and ignores limits", args: "limits show subflows 7", fake: lim(), calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 4 subflows 3 \n"}},
		{name: "show checks them", args: "limits show subflows x", fake: lim(),
			want: result{Stderr: "Error: argument \"x\" is wrong: invalid subflows\n\n", Code: 255}},
		{name: "u32 printed with %d", args: "limits", fake: &fakeBackend{limits: genl.Limits{AddAddrAccepted: 1<<32 - 1}}, calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted -1 subflows 0 \n"}},
		{name: "json object", args: "-j limits", fake: lim(), calls: []string{"Limits()"},
			want: result{Stdout: `{"add_addr_accepted":4,"subflows":3}` + "\n"}},
		{name: "pretty json object", args: "-j -p limits show", fake: lim(), calls: []string{"Limits()"},
			want: result{Stdout: "{\n    \"add_addr_accepted\": 4,\n    \"subflows\": 3\n}\n"}},
		{name: "set both", args: "limits set subflows 2 add_addr_accepted 0x8",
			calls: []string{"SetLimits(subflows=2 add_addr_accepted=8)"}},
		{name: "set abbreviated: s is set, then subflows", args: "l s s 1 a 2",
			calls: []string{"SetLimits(subflows=1 add_addr_accepted=2)"}},
		{name: "set nothing", args: "limits set", calls: []string{"SetLimits(subflows=nil add_addr_accepted=nil)"}},
		{name: "set unknown limit", args: "limits set foo 1",
			want: result{Stderr: "Error: argument \"foo\" is wrong: unknown limit\n", Code: 255}},
		{name: "set bad value", args: "limits set add_addr_accepted -1",
			want: result{Stderr: "Error: argument \"-1\" is wrong: invalid add_addr_accepted\n\n", Code: 255}},
		{name: "set missing value", args: "limits set subflows",
			want: result{Stderr: "Error: command line is not complete, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "set above the maximum", args: "limits set subflows 9",
			fake:  &fakeBackend{errs: map[string]error{"SetLimits": kerr("set limits", unix.EINVAL, "limit greater than maximum (8)")}},
			calls: []string{"SetLimits(subflows=9 add_addr_accepted=nil)"},
			want: result{Stderr: "Error: limit greater than maximum (8).\n" +
				"hint: the kernel allows at most 8 for both subflows and add_addr_accepted\n", Code: 2}},
		{name: "unknown subcommand", args: "limits get",
			want: result{Stderr: "Error: command \"get\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
	}
	runCases(t, tests)
}
