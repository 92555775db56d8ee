package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const (
	mainFile  = "/etc/mptcpd-go/mptcpd-go.toml"
	ifaceFile = "/etc/mptcpd-go/interfaces.d/10-wlan.toml"
)

// TestErrors checks each kind of mistake: its position and its message.
// Each case writes text to one file (the other file is valid) and lists
// the errors as "line:col: message", all in that file.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // mainFile or ifaceFile
		text string
		want []string
	}{
		{
			name: "unknown key",
			file: mainFile,
			text: "mod = \"kernel\"",
			want: []string{`1:1: unknown key "mod"; did you mean "mode"? (known keys: mode, limits, policy_dir, control_socket, state_file, log_level, log_format, on_stop, preset, max_subflows, rule, proxy, metrics_listen)`},
		},
		{
			name: "preset unknown",
			file: mainFile,
			text: "mode = \"userspace\"\npreset = \"laptop\"",
			want: []string{`2:10: preset: "laptop" is not a preset; use "throughput", "backup", "cost" or "sspi"`},
		},
		{
			name: "preset typo",
			file: mainFile,
			text: "mode = \"userspace\"\npreset = \"bakup\"",
			want: []string{`2:10: preset: "bakup" is not a preset; did you mean "backup"?`},
		},
		{
			name: "preset in kernel mode",
			file: mainFile,
			text: "preset = \"backup\"\nmax_subflows = 2\n[[rule]]\naction = \"never\"",
			want: []string{
				`1:10: preset: only used by the userspace path manager; set mode = "userspace" (or "auto"), or remove it`,
				`2:16: max_subflows: only used by the userspace path manager; set mode = "userspace" (or "auto"), or remove it`,
				`3:1: [[rule]]: only used by the userspace path manager; set mode = "userspace" (or "auto"), or remove it`,
			},
		},
		{
			name: "max_subflows range and type",
			file: mainFile,
			text: "mode = \"auto\"\nmax_subflows = 9\n[[rule]]\naction = \"never\"\nmax_subflows = \"2\"",
			want: []string{
				`2:16: max_subflows: 9 is out of range; use 1..8 (extra subflows per connection)`,
				`5:16: max_subflows: want an integer 1..8, not a string`,
			},
		},
		{
			name: "rule not an array of tables",
			file: mainFile,
			text: "mode = \"userspace\"\n[rule]\naction = \"never\"",
			want: []string{`2:1: rule: want [[rule]] tables, each on lines of its own, not a table`},
		},
		{
			name: "rule values",
			file: mainFile,
			text: "mode = \"userspace\"\n[[rule]]\ndst = [\"10.0.0.1/8\", \"nope\", 5]\nports = [0, \"9-3\", true]\nside = \"clent\"\naction = \"maybe\"\nfoo = 1\n[[rule]]\nports = {}\n",
			want: []string{
				`3:8: dst: "10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?`,
				`3:22: dst: "nope" is not a prefix; write it like "192.0.2.0/24" or "2001:db8::/32"`,
				`3:30: dst: element 3 is an integer; want a prefix or a list of them, like ["192.0.2.0/24"]`,
				`4:10: ports: 0 is out of range; use 1..65535`,
				`4:13: ports: "9-3" is not a port range; write it like "8000-8999" (both ends 1..65535, the first not above the second)`,
				`4:20: ports: element 3 is a boolean; want a list of ports and ranges, like [443, "8000-8999"]`,
				`5:8: side: "clent" is not a side; did you mean "client"?`,
				`6:10: action: "maybe" is not a rule action; use "multipath" or "never"`,
				`7:1: unknown key "foo" in [[rule]]; remove it (known keys: dst, ports, side, action, max_subflows)`,
				`8:1: [[rule]] has no action; add action = "multipath" or action = "never"`,
				`9:9: ports: want a list of ports and ranges, like [443, "8000-8999"], not a table`,
			},
		},
		{
			name: "metered type",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"subflow\"]\nmetered = \"yes\"",
			want: []string{`5:11: metered: want true or false, not a string`},
		},
		{
			name: "mode type",
			file: mainFile,
			text: "mode = 1",
			want: []string{`1:8: mode: want a string, not an integer`},
		},
		{
			name: "mode typo",
			file: mainFile,
			text: "mode = \"kernal\"",
			want: []string{`1:8: mode: "kernal" is not a mode; did you mean "kernel"?`},
		},
		{
			name: "mode unknown",
			file: mainFile,
			text: "mode = \"mptcpd\"",
			want: []string{`1:8: mode: "mptcpd" is not a mode; use "kernel", "userspace" or "auto"`},
		},
		{
			name: "limit above 8",
			file: mainFile,
			text: "[limits]\nsubflows = 9",
			want: []string{`2:12: subflows: 9 is above 8, the most the kernel accepts; use 0..8 or "auto"`},
		},
		{
			name: "limit negative",
			file: mainFile,
			text: "[limits]\nadd_addr_accepted = -1",
			want: []string{`2:21: add_addr_accepted: -1 is negative; want an integer 0..8 or "auto"`},
		},
		{
			name: "limit string",
			file: mainFile,
			text: "[limits]\nsubflows = \"max\"",
			want: []string{`2:12: subflows: "max" is not a number; want an integer 0..8 or "auto"`},
		},
		{
			name: "limit bool",
			file: mainFile,
			text: "[limits]\nsubflows = true",
			want: []string{`2:12: subflows: want an integer 0..8 or "auto", not a boolean`},
		},
		{
			name: "limit float",
			file: mainFile,
			text: "[limits]\nsubflows = 1.5",
			want: []string{`2:12: subflows: want an integer 0..8 or "auto", not a float`},
		},
		{
			name: "limit too large",
			file: mainFile,
			text: "[limits]\nsubflows = 99999999999999999999",
			want: []string{`2:12: subflows: 99999999999999999999 is too large; want an integer 0..8 or "auto"`},
		},
		{
			name: "limit hex above 8",
			file: mainFile,
			text: "[limits]\nsubflows = 0x10",
			want: []string{`2:12: subflows: 16 is above 8, the most the kernel accepts; use 0..8 or "auto"`},
		},
		{
			name: "limits not a table",
			file: mainFile,
			text: "limits = 4",
			want: []string{`1:10: limits: want a table, written [limits] on a line of its own, not an integer`},
		},
		{
			name: "limits array of tables",
			file: mainFile,
			text: "[[limits]]\nsubflows = 1",
			want: []string{`1:1: limits: want a table, written [limits] on a line of its own, not a list of tables`},
		},
		{
			name: "unknown key in limits",
			file: mainFile,
			text: "[limits]\nsubflow = 4",
			want: []string{`2:1: unknown key "subflow" in [limits]; did you mean "subflows"? (known keys: subflows, add_addr_accepted)`},
		},
		{
			name: "duplicate key",
			file: mainFile,
			text: "mode = \"kernel\"\nmode = \"auto\"",
			want: []string{`2:1: duplicate key "mode" (first set at 1:1); remove one`},
		},
		{
			name: "duplicate key dotted",
			file: mainFile,
			text: "limits.subflows = 1\n[limits]\nsubflows = 2",
			want: []string{`2:1: table [limits] was already defined by dotted keys at 1:1; define it in one place`},
		},
		{
			name: "duplicate table",
			file: mainFile,
			text: "[limits]\nsubflows = 1\n[limits]\nadd_addr_accepted = 1",
			want: []string{`3:1: table [limits] is defined twice (first at 1:1); merge the two`},
		},
		{
			name: "policy_dir empty",
			file: mainFile,
			text: "policy_dir = \"\"",
			want: []string{`1:14: policy_dir: empty; give a directory such as "interfaces.d" (relative to /etc/mptcpd-go)`},
		},
		{
			name: "control_socket relative",
			file: mainFile,
			text: "control_socket = \"ctl.sock\"",
			want: []string{`1:18: control_socket: "ctl.sock" is not an absolute path; write it in full, like "/run/mptcpd-go/control.sock"`},
		},
		{
			name: "control_socket too long",
			file: mainFile,
			text: "control_socket = \"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"",
			want: []string{`1:18: control_socket: the path is 113 bytes long, but a Unix socket path can have at most 107; use a shorter one`},
		},
		{
			name: "state_file relative",
			file: mainFile,
			text: "state_file = \"state.json\"",
			want: []string{`1:14: state_file: "state.json" is not an absolute path; write it in full, like "/run/mptcpd-go/state.json"`},
		},
		{
			name: "log_level",
			file: mainFile,
			text: "log_level = \"verbose\"",
			want: []string{`1:13: log_level: "verbose" is not a log level; use "debug", "info", "warn" or "error"`},
		},
		{
			name: "log_level typo",
			file: mainFile,
			text: "log_level = \"warning\"",
			want: []string{`1:13: log_level: "warning" is not a log level; use "debug", "info", "warn" or "error"`},
		},
		{
			name: "log_format",
			file: mainFile,
			text: "log_format = \"text\"",
			want: []string{`1:14: log_format: "text" is not a log format; use "console" or "json"`},
		},
		{
			name: "on_stop",
			file: mainFile,
			text: "on_stop = \"flush\"",
			want: []string{`1:11: on_stop: "flush" is not a stop action; use "remove" or "keep"`},
		},
		{
			name: "syntax",
			file: mainFile,
			text: "mode = \n",
			want: []string{`1:8: TOML syntax: unexpected character U+000A at start of value`},
		},
		{
			name: "syntax unterminated",
			file: mainFile,
			text: "mode = \"kernel",
			want: []string{`1:14: TOML syntax: unterminated basic string`},
		},
		{
			name: "invalid utf8",
			file: mainFile,
			text: "mode = \"k\xffernel\"",
			want: []string{`1:10: the file is not valid UTF-8, as TOML requires; save it as UTF-8`},
		},
		{
			name: "bom is accepted, positions after it",
			file: mainFile,
			text: "\ufeffmode = \"x\"",
			want: []string{`1:8: mode: "x" is not a mode; use "kernel", "userspace" or "auto"`},
		},
		{
			name: "value then table",
			file: mainFile,
			text: "limits = 1\n[limits]",
			want: []string{
				`1:10: limits: want a table, written [limits] on a line of its own, not an integer`,
				`2:1: [limits] conflicts with "limits" set at 1:1; rename one`,
			},
		},
		{
			name: "inline extended",
			file: mainFile,
			text: "limits = { subflows = 1 }\n[limits]\nadd_addr_accepted = 1",
			want: []string{`2:1: table "limits" was written inline at 1:10 and cannot be extended; add the keys inside its { }`},
		},
		{
			name: "inline extended dotted",
			file: mainFile,
			text: "limits = { subflows = 1 }\nlimits.add_addr_accepted = 1",
			want: []string{`2:1: table "limits" was written inline at 1:10 and cannot be extended; add the keys inside its { }`},
		},
		{
			name: "dotted through value",
			file: mainFile,
			text: "mode = \"kernel\"\nmode.x = 1",
			want: []string{`2:1: key "mode" was already set at 1:1 and is not a table; set it once`},
		},
		{
			name: "policy_dir not a directory",
			file: mainFile,
			text: "policy_dir = \"mptcpd-go.toml\"",
			want: []string{`1:14: policy_dir: cannot read /etc/mptcpd-go/mptcpd-go.toml: not implemented; point it at a directory`},
		},
		{
			name: "signal with fullmesh, the example of the issue",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n\n[endpoint]\nflags = [\"signal\", \"fullmesh\"]",
			want: []string{`5:9: flags: "signal" and "fullmesh" cannot be combined (the kernel refuses it); drop one`},
		},
		{
			name: "unknown flag",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"subflows\"]",
			want: []string{`4:10: flags: unknown flag "subflows"; did you mean "subflow"?`},
		},
		{
			name: "unknown flag far",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"enabled\"]",
			want: []string{`4:10: flags: unknown flag "enabled"; use "signal", "subflow", "backup", "fullmesh" or "laminar"`},
		},
		{
			name: "implicit flag",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"implicit\"]",
			want: []string{`4:10: flags: "implicit" is set by the kernel on endpoints it made itself; use "signal", "subflow", "backup", "fullmesh" or "laminar"`},
		},
		{
			name: "flags empty",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = []",
			want: []string{`4:9: flags: an empty list makes endpoints that do nothing; list some of "signal", "subflow", "backup", "fullmesh" or "laminar", or set ignore = true to give interfaces no endpoints`},
		},
		{
			name: "flags missing",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nport = 80",
			want: []string{`3:1: [endpoint] has no flags; add them, like flags = ["subflow"] (the flags are "signal", "subflow", "backup", "fullmesh" and "laminar")`},
		},
		{
			name: "flags type",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = 3",
			want: []string{`4:9: flags: want a list of flags, like ["subflow"], not an integer`},
		},
		{
			name: "flags element type",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"subflow\", 3, [\"backup\"]]",
			want: []string{
				`4:9: flags: element 3 is a list; want a list of flags, like ["subflow"]`,
				`4:21: flags: element 2 is an integer; want a list of flags, like ["subflow"]`,
			},
		},
		{
			name: "flags duplicate",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"subflow\", \"backup\", \"subflow\"]",
			want: []string{`4:31: flags: "subflow" is listed twice; drop one`},
		},
		{
			name: "port without signal",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"subflow\"]\nport = 8080",
			want: []string{`5:1: port: only used with the "signal" flag (the kernel refuses it otherwise); add "signal" to flags or remove port`},
		},
		{
			name: "port zero",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"signal\"]\nport = 0",
			want: []string{`5:8: port: 0 is out of range; use 1..65535`},
		},
		{
			name: "port too big",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"signal\"]\nport = 70000",
			want: []string{`5:8: port: 70000 is out of range; use 1..65535`},
		},
		{
			name: "port type",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan*\"]\n[endpoint]\nflags = [\"signal\"]\nport = \"http\"",
			want: []string{`5:8: port: want a port number 1..65535, not a string`},
		},
		{
			name: "bad glob",
			file: ifaceFile,
			text: "[match]\nname = [\"eth0\", \"wlan[\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:17: name: "wlan[" is not a valid glob (path.Match syntax: *, ?, [a-z], [^a-z], \ escapes); close the brackets, or escape [ and \ with \`},
		},
		{
			name: "bad glob escape",
			file: ifaceFile,
			text: "[match]\nname = ['eth\\']\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:9: name: "eth\\" is not a valid glob (path.Match syntax: *, ?, [a-z], [^a-z], \ escapes); close the brackets, or escape [ and \ with \`},
		},
		{
			name: "empty glob",
			file: ifaceFile,
			text: "[match]\nname = [\"\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:9: name: an empty glob matches no interface; remove it`},
		},
		{
			name: "glob with slash",
			file: ifaceFile,
			text: "[match]\nname = [\"eth0/1\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:9: name: "eth0/1" can never match: interface names cannot contain "/"; remove it`},
		},
		{
			name: "glob with colon",
			file: ifaceFile,
			text: "[match]\nname = [\"eth0:1\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:9: name: "eth0:1" can never match: interface names cannot contain ":"; remove it`},
		},
		{
			name: "name too long",
			file: ifaceFile,
			text: "[match]\nname = [\"enp0s31f6abcdefgh\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:9: name: "enp0s31f6abcdefgh" can never match: interface names are at most 15 bytes long; shorten it`},
		},
		{
			name: "name empty list",
			file: ifaceFile,
			text: "[match]\nname = []\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:8: name: an empty list matches no interface; add a glob such as "eth*"`},
		},
		{
			name: "name as string is fine but int is not",
			file: ifaceFile,
			text: "[match]\nname = 5\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`2:8: name: want a list of globs, like ["eth*"], not an integer`},
		},
		{
			name: "empty match",
			file: ifaceFile,
			text: "[match]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`1:1: [match] has no name; add name = ["eth*"] (globs of the names of the interfaces this file is for)`},
		},
		{
			name: "match only kind",
			file: ifaceFile,
			text: "[match]\nkind = [\"veth\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`1:1: [match] has no name; add name = ["eth*"] (globs of the names of the interfaces this file is for)`},
		},
		{
			name: "no match",
			file: ifaceFile,
			text: "[endpoint]\nflags = [\"subflow\"]",
			want: []string{`1:1: no [match] table; add one with name = ["eth*"] (globs of the names of the interfaces this file is for)`},
		},
		{
			name: "empty file",
			file: ifaceFile,
			text: "",
			want: []string{
				`1:1: no [match] table; add one with name = ["eth*"] (globs of the names of the interfaces this file is for)`,
				`1:1: no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`,
			},
		},
		{
			name: "kind bad",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nkind = [\"Veth\", \"\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{
				`3:9: kind: "Veth" is not a link kind; kinds are lower case, like "device" (or "ether"), "veth", "vlan" or "wireguard"`,
				`3:17: kind: "" is not a link kind; kinds are lower case, like "device" (or "ether"), "veth", "vlan" or "wireguard"`,
			},
		},
		{
			name: "kind empty list",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nkind = []\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:8: kind: an empty list matches no interface; list kinds, or remove kind to match any`},
		},
		{
			name: "family bad",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nfamily = \"inet\"\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:10: family: "inet" is not an address family; use "ipv4" or "ipv6"`},
		},
		{
			name: "family case",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nfamily = [\"ipv4\", \"IPv6\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:19: family: "IPv6" is not an address family; did you mean "ipv6"?`},
		},
		{
			name: "family empty",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nfamily = []\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:10: family: an empty list gives no address an endpoint; use "ipv4", "ipv6", or remove family for both`},
		},
		{
			name: "family duplicate",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nfamily = [\"ipv6\", \"ipv6\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:19: family: "ipv6" is listed twice; drop one`},
		},
		{
			name: "ignore with endpoint",
			file: ifaceFile,
			text: "ignore = true\n[match]\nname = [\"docker*\"]\n\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`5:1: [endpoint] cannot be used with ignore = true: ignored interfaces get no endpoints; remove one of them`},
		},
		{
			name: "ignore type",
			file: ifaceFile,
			text: "ignore = \"yes\"\n[match]\nname = [\"docker*\"]",
			want: []string{`1:10: ignore: want true or false, not a string`},
		},
		{
			name: "ignore false without endpoint",
			file: ifaceFile,
			text: "ignore = false\n[match]\nname = [\"docker*\"]",
			want: []string{`1:1: no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`},
		},
		{
			name: "no endpoint",
			file: ifaceFile,
			text: "[match]\nname = [\"docker*\"]",
			want: []string{`1:1: no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`},
		},
		{
			name: "skip unknown",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]\nskip = [\"linklocal\", \"private\"]",
			want: []string{
				`5:9: skip: unknown address kind "linklocal"; did you mean "link-local"?`,
				`5:22: skip: unknown address kind "private"; use "link-local", "ula", "temporary", "deprecated" or "tentative"`,
			},
		},
		{
			name: "skip type",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]\nskip = true",
			want: []string{`5:8: skip: want a list of address kinds, like ["link-local"], not a boolean`},
		},
		{
			name: "priority range",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]\npriority = 3000000000",
			want: []string{`5:12: priority: 3000000000 is out of range; use -2147483648..2147483647`},
		},
		{
			name: "priority type",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]\npriority = \"high\"",
			want: []string{`5:12: priority: want an integer, not a string`},
		},
		{
			name: "also_without type",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]\nalso_without_default_route = \"yes\"",
			want: []string{`5:30: also_without_default_route: want true or false, not a string`},
		},
		{
			name: "unknown top key",
			file: ifaceFile,
			text: "[Match]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{
				`1:1: unknown key "Match"; did you mean "match"? (known keys: ignore, match, endpoint)`,
				`1:1: no [match] table; add one with name = ["eth*"] (globs of the names of the interfaces this file is for)`,
			},
		},
		{
			name: "unknown endpoint key",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[endpoint]\nflag = [\"subflow\"]",
			want: []string{
				`3:1: [endpoint] has no flags; add them, like flags = ["subflow"] (the flags are "signal", "subflow", "backup", "fullmesh" and "laminar")`,
				`4:1: unknown key "flag" in [endpoint]; did you mean "flags"? (known keys: flags, port, also_without_default_route, skip, priority, metered)`,
			},
		},
		{
			name: "unknown match key",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\ntype = \"wlan\"\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:1: unknown key "type" in [match]; remove it (known keys: name, kind, family)`},
		},
		{
			name: "match array of tables",
			file: ifaceFile,
			text: "[[match]]\nname = [\"*\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`1:1: match: want a table, written [match] on a line of its own, not a list of tables`},
		},
		{
			name: "endpoint not a table",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\nendpoint = [\"subflow\"]",
			want: []string{
				`1:1: no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`,
				`3:1: unknown key "endpoint" in [match]; endpoint belongs at the top level: move it above the first [table] line (known keys: name, kind, family)`,
			},
		},
		{
			name: "duplicate table header",
			file: ifaceFile,
			text: "[match]\nname = [\"*\"]\n[match]\nname = [\"x\"]\n[endpoint]\nflags = [\"subflow\"]",
			want: []string{`3:1: table [match] is defined twice (first at 1:1); merge the two`},
		},
		{
			name: "dotted into header table",
			file: ifaceFile,
			text: "[endpoint.x]\n[endpoint]\nflags = [\"subflow\"]\nx.y = 1\n[match]\nname = [\"*\"]",
			want: []string{
				`1:1: unknown key "x" in [endpoint]; remove it (known keys: flags, port, also_without_default_route, skip, priority, metered)`,
				`4:1: table [endpoint.x] was defined at 1:1; put this key in that table instead`,
			},
		},
		{
			name: "many errors in one file",
			file: ifaceFile,
			text: "[match]\nname = [\"wlan[\"]\nfamily = \"inet\"\n[endpoint]\nflags = [\"signal\", \"fullmesh\", \"nope\"]\nport = 0\nbogus = 1",
			want: []string{
				`2:9: name: "wlan[" is not a valid glob (path.Match syntax: *, ?, [a-z], [^a-z], \ escapes); close the brackets, or escape [ and \ with \`,
				`3:10: family: "inet" is not an address family; use "ipv4" or "ipv6"`,
				`5:9: flags: "signal" and "fullmesh" cannot be combined (the kernel refuses it); drop one`,
				`5:32: flags: unknown flag "nope"; use "signal", "subflow", "backup", "fullmesh" or "laminar"`,
				`6:8: port: 0 is out of range; use 1..65535`,
				`7:1: unknown key "bogus" in [endpoint]; remove it (known keys: flags, port, also_without_default_route, skip, priority, metered)`,
			},
		},
		{
			name: "top-level key below a header",
			file: ifaceFile,
			text: "[match]\nname = [\"docker*\"]\nignore = true",
			want: []string{
				`1:1: no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`,
				`3:1: unknown key "ignore" in [match]; ignore belongs at the top level: move it above the first [table] line (known keys: name, kind, family)`,
			},
		},
		{
			name: "top-level key below limits",
			file: mainFile,
			text: "[limits]\nsubflows = 2\nmode = \"kernel\"",
			want: []string{`3:1: unknown key "mode" in [limits]; mode belongs at the top level: move it above the first [table] line (known keys: subflows, add_addr_accepted)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"mptcpd-go.toml": "", "interfaces.d/10-wlan.toml": okInterface}
			if tc.file == mainFile {
				files["mptcpd-go.toml"] = tc.text
			} else {
				files["interfaces.d/10-wlan.toml"] = tc.text
			}
			c, err := LoadFS(etc(files), "")
			if c != nil {
				t.Errorf("LoadFS returned a Config with the error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadFS error = %v (%T), want Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				if e.File != tc.file {
					t.Errorf("error in file %q, want %q: %v", e.File, tc.file, e)
				}
				got = append(got, fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// okInterface is a valid interface file.
const okInterface = `
[match]
name = ["eth0"]
[endpoint]
flags = ["subflow"]
`

// TestErrorsAcrossFiles loads testdata/errors, which has mistakes in the
// main file and in several interface files: all are reported, file by file
// in the order the files are read, each where it was made.
func TestErrorsAcrossFiles(t *testing.T) {
	fsys := fstest.MapFS{}
	mount(t, fsys, "errors", "etc/mptcpd-go")
	_, err := LoadFS(fsys, "")
	const dir = "/etc/mptcpd-go/interfaces.d/"
	want := []string{
		mainFile + `:2:8: mode: "kernal" is not a mode; did you mean "kernel"?`,
		mainFile + `:5:12: subflows: 9 is above 8, the most the kernel accepts; use 0..8 or "auto"`,
		mainFile + `:6:1: unknown key "add_addr_acepted" in [limits]; did you mean "add_addr_accepted"? (known keys: subflows, add_addr_accepted)`,
		dir + `10-wlan.toml:5:9: flags: "signal" and "fullmesh" cannot be combined (the kernel refuses it); drop one`,
		dir + `10-wlan.toml:6:8: port: 70000 is out of range; use 1..65535`,
		dir + `20-eth.toml:4:9: name: "eth[0-9" is not a valid glob (path.Match syntax: *, ?, [a-z], [^a-z], \ escapes); close the brackets, or escape [ and \ with \`,
		dir + `20-eth.toml:6:1: [endpoint] cannot be used with ignore = true: ignored interfaces get no endpoints; remove one of them`,
		dir + `40-syntax.toml:3:1: TOML syntax: expected ',' or ']' after array value`,
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("LoadFS error = %v (%T), want Errors", err, err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(strings.Join(want, "\n"), err.Error()); diff != "" {
		t.Errorf("Errors.Error() mismatch (-want +got):\n%s", diff)
	}

	// errors.As finds the first *Error through Errors.
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(err, *Error) = %v, want the first error", first)
	}
}
