package cli

import (
	"net/netip"
	"testing"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

func TestPM(t *testing.T) {
	const tok = "token 0a0b0c0d"
	missing := func(key string) result {
		return result{Stderr: "Error: argument \"" + key + "\" is required\n", Code: 255}
	}
	tests := []cliCase{
		{name: "announce", args: "pm announce 10.0.0.5 id 5 port 8080 dev eth1 " + tok,
			calls: []string{`Announce(0a0b0c0d id=5 addr=10.0.0.5 port=8080 flags="" ifindex=3)`}},
		{name: "announce abbreviated, 0x token", args: "pm a 2001:db8::5 i 5 t 0xA0B0C0D",
			calls: []string{`Announce(0a0b0c0d id=5 addr=2001:db8::5 port=0 flags="" ifindex=0)`}},
		{name: "announce needs id", args: "pm announce 10.0.0.5 " + tok, want: missing("ID")},
		{name: "announce needs address", args: "pm announce id 5 " + tok, want: missing("ADDRESS")},
		{name: "announce needs token", args: "pm announce 10.0.0.5 id 5", want: missing("TOKEN")},
		{name: "announce id 0", args: "pm announce 10.0.0.5 id 0 " + tok,
			want: result{Stderr: "Error: argument \"ID\" is wrong: cannot be 0: the initial address is announced with the connection\n", Code: 255}},
		{name: "announce takes no remote", args: "pm announce 10.0.0.5 id 5 remote 10.0.0.9 " + tok,
			want: result{Stderr: "Error: argument \"remote\" is wrong: not used by \"pm announce\"\n", Code: 255}},
		{name: "bad token", args: "pm announce 10.0.0.5 id 5 token 123456789",
			want: result{Stderr: "Error: argument \"123456789\" is wrong: invalid token: want up to 8 hex digits, as \"monitor\" prints it\n", Code: 255}},
		{name: "bad token word", args: "pm remove id 1 token xyz",
			want: result{Stderr: "Error: argument \"xyz\" is wrong: invalid token: want up to 8 hex digits, as \"monitor\" prints it\n", Code: 255}},

		{name: "remove", args: "pm remove id 5 " + tok, calls: []string{"Remove(0a0b0c0d 5)"}},
		{name: "remove id 0", args: "pm rem id 0 " + tok, calls: []string{"Remove(0a0b0c0d 0)"}},
		{name: "remove needs id", args: "pm remove " + tok, want: missing("ID")},
		{name: "remove takes no address", args: "pm remove 10.0.0.1 id 1 " + tok,
			want: result{Stderr: "Error: argument \"10.0.0.1\" is wrong: not used by \"pm remove\"\n", Code: 255}},

		{name: "subflow create", args: "pm subflow create 10.0.0.5 id 5 port 0 dev eth1 backup remote 10.0.0.9 rport 80 " + tok,
			calls: []string{`CreateSubflow(0a0b0c0d id=5 addr=10.0.0.5 port=0 flags="backup" ifindex=3 remote=10.0.0.9:80)`}},
		{name: "subflow create abbreviated", args: "pm s c 10.0.0.5 r 10.0.0.9 rp 80 t a0b0c0d",
			calls: []string{`CreateSubflow(0a0b0c0d id=0 addr=10.0.0.5 port=0 flags="" ifindex=0 remote=10.0.0.9:80)`}},
		{name: "subflow create needs rport", args: "pm subflow create 10.0.0.5 remote 10.0.0.9 " + tok, want: missing("rport")},
		{name: "subflow create needs remote", args: "pm subflow create 10.0.0.5 rport 80 " + tok, want: missing("remote")},
		{name: "subflow create families", args: "pm subflow create 10.0.0.5 remote 2001:db8::9 rport 80 " + tok,
			want: result{Stderr: "Error: argument \"remote\" is wrong: local and remote addresses must be of the same family\n", Code: 255}},
		{name: "subflow create refuses any", args: "pm subflow create any remote 10.0.0.9 rport 80 " + tok,
			want: result{Stderr: "Error: argument \"any\" is wrong: an IPv4 or IPv6 address is needed\n", Code: 255}},
		{name: "subflow create bad address", args: "pm subflow create 10.0.0.5 remote foo rport 80 " + tok,
			want: result{Stderr: "Error: any valid address is expected rather than \"foo\".\n", Code: 1}},
		{name: "subflow destroy", args: "pm subflow destroy 10.0.0.5 port 40000 remote 10.0.0.9 rport 80 " + tok,
			calls: []string{"DestroySubflow(0a0b0c0d 10.0.0.5:40000 10.0.0.9:80)"}},
		{name: "subflow destroy needs port", args: "pm subflow destroy 10.0.0.5 remote 10.0.0.9 rport 80 " + tok, want: missing("port")},
		{name: "subflow destroy takes no id", args: "pm subflow destroy 10.0.0.5 id 1 " + tok,
			want: result{Stderr: "Error: argument \"id\" is wrong: not used by \"pm subflow destroy\"\n", Code: 255}},
		{name: "subflow without verb", args: "pm subflow",
			want: result{Stderr: "Error: command line is not complete, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "subflow unknown verb", args: "pm subflow open",
			want: result{Stderr: "Error: command \"open\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},

		{name: "set backup", args: "pm set 10.0.0.5 port 40000 backup remote 10.0.0.9 rport 80 " + tok,
			calls: []string{`SetSubflowFlags(0a0b0c0d id=0 addr=10.0.0.5 port=40000 flags="" ifindex=0 remote=10.0.0.9:80 "backup")`}},
		{name: "set nobackup without remote", args: "pm se 10.0.0.5 nobackup " + tok,
			calls: []string{`SetSubflowFlags(0a0b0c0d id=0 addr=10.0.0.5 port=0 flags="" ifindex=0 remote=invalid AddrPort "")`}},
		{name: "set needs backup or nobackup", args: "pm set 10.0.0.5 " + tok, want: missing("backup|nobackup")},
		{name: "set remote needs rport", args: "pm set 10.0.0.5 backup remote 10.0.0.9 " + tok, want: missing("rport")},
		{name: "set rport needs remote", args: "pm set 10.0.0.5 backup rport 80 " + tok, want: missing("remote")},
		{name: "set kernel wants remote", args: "pm set 10.0.0.5 backup " + tok,
			fake:  &fakeBackend{errs: map[string]error{"SetSubflowFlags": kerr("set", unix.EINVAL, "")}},
			calls: []string{`SetSubflowFlags(0a0b0c0d id=0 addr=10.0.0.5 port=0 flags="" ifindex=0 remote=invalid AddrPort "backup")`},
			want: result{Stderr: "Error: Invalid argument.\n" +
				"hint: this kernel needs the subflow's remote end: add \"remote ADDRESS rport NR\"\n", Code: 2}},

		{name: "show", args: "pm show " + tok,
			fake:  &fakeBackend{eps: []genl.Endpoint{{ID: 5, Addr: netip.MustParseAddr("10.0.0.5"), Flags: genl.FlagSignal}}},
			calls: []string{"ConnEndpoints(0a0b0c0d)"},
			want:  result{Stdout: "10.0.0.5 id 5 signal \n"}},
		{name: "show one json", args: "-j pm sh t 0a0b0c0d id 5",
			fake:  &fakeBackend{eps: []genl.Endpoint{{ID: 5, Addr: netip.MustParseAddr("10.0.0.5"), Flags: genl.FlagSignal}}},
			calls: []string{"ConnEndpoint(0a0b0c0d 5)"},
			want:  result{Stdout: `[{"address":"10.0.0.5","id":5,"signal":true}]` + "\n"}},
		{name: "show needs token", args: "pm show", want: missing("TOKEN")},
		{name: "show unknown token", args: "pm show token 12345678",
			fake:  &fakeBackend{errs: map[string]error{"ConnEndpoints": kerr("dump", unix.EINVAL, "invalid token")}},
			calls: []string{"ConnEndpoints(12345678)"},
			want: result{Stderr: "Error: invalid token.\nDump terminated\n" +
				"hint: no MPTCP connection in this network namespace has token 12345678: tokens are printed by \"mptcpd-go monitor\"\n", Code: 2}},
		{name: "in-kernel pm connection", args: "pm remove id 1 " + tok,
			fake:  &fakeBackend{errs: map[string]error{"Remove": kerr("remove", unix.EINVAL, "userspace PM not selected")}},
			calls: []string{"Remove(0a0b0c0d 1)"},
			want: result{Stderr: "Error: userspace PM not selected.\n" +
				"hint: connection 0a0b0c0d is handled by the in-kernel path manager: set sysctl net.mptcp.pm_type=1 before the connection starts to manage it with pm verbs\n", Code: 2}},
		{name: "kernel without userspace pm", args: "pm remove id 1 " + tok, fake: &fakeBackend{noUserspace: true},
			want: result{Stderr: "Error: this kernel lacks the userspace path manager (needs Linux 5.19+).\n", Code: 2}},
		{name: "pm without verb", args: "pm",
			want: result{Stderr: "Error: command line is not complete, try \"mptcpd-go help\".\n", Code: 255}},
		{name: "pm unknown verb", args: "pm list",
			want: result{Stderr: "Error: command \"list\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
	}
	runCases(t, tests)
}
