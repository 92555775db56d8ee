package cli

import (
	"fmt"
	"strings"
)

// cmdDoc documents one command or subcommand. The table of them,
// commandDocs, is the one source of the per-command help, the man page
// mptcpd-go(8) and the shell completion scripts; Usage is checked against
// it by the tests.
type cmdDoc struct {
	// name is the word that selects the command ("add" under "endpoint").
	name string
	// synopsis is the grammar of a leaf command after "mptcpd-go ", in
	// Usage's notation, one alternative per element.
	synopsis []string
	// summary is one line, without a final period.
	summary string
	// desc is the description: paragraphs separated by blank lines.
	desc string
	// options are the keywords (ip style) or flags (with their dashes).
	options []optDoc
	// examples are complete command lines with what they do.
	examples []exampleDoc
	// subs are the subcommands, in the order that abbreviations resolve.
	subs []cmdDoc
	// ipCompat marks iproute2's "ip mptcp" commands: "help" keeps ip's
	// behaviour for them; only -h and --help give their help.
	ipCompat bool
	// goFlags marks commands parsed with Go's flag package: -h or --help
	// anywhere on their line asks for their help.
	goFlags bool
}

// optDoc documents one option or keyword of a command.
type optDoc struct {
	// name is the option as typed: "dev", "-j", "--listen".
	name string
	// arg is the placeholder of its value, "" when it takes none.
	arg string
	// desc says what it does, in one or two sentences.
	desc string
	// comp says what completes its value.
	comp compKind
	// words are fixed values offered for its value, besides comp's.
	words []string
}

// compKind is what the completion scripts offer for an option's value.
type compKind int

const (
	// compNone offers nothing but the option's words.
	compNone compKind = iota
	// compIface offers the interface names of the host.
	compIface
	// compFile offers file names.
	compFile
)

// exampleDoc is one example command line.
type exampleDoc struct {
	cmd  string // after "mptcpd-go "
	desc string // what it does
}

// globalOptionDocs documents the options before the command (ip's).
func globalOptionDocs() []optDoc {
	return []optDoc{
		{name: "-n", arg: "NETNS", desc: "Run in the named network namespace (a name under /run/netns, or a path). -netns is the long form."},
		{name: "-j", desc: "JSON output, as ip -j prints it. -json is the long form."},
		{name: "-p", desc: "With -j, indent the JSON. -pretty is the long form."},
		{name: "-t", desc: "monitor: print a timestamp before each event. -timestamp is the long form."},
		{name: "-ts", desc: "monitor: the short form of the timestamp. -tshort is the long form."},
		{name: "-b", arg: "FILE", comp: compFile, desc: "Run one command per line of FILE (\"-\" for standard input) over one netlink socket, skipping blank lines and # comments; stop at the first failure (\"Command failed FILE:LINE\") unless -force. -batch is the long form."},
		{name: "-force", desc: "With -batch, go on after a failed command; the exit status is still 1."},
		{name: "-rc", arg: "SIZE", desc: "Receive buffer size of monitor's netlink socket. -rcvbuf is the long form."},
		{name: "-V", desc: "Print the version and exit. -Version is the long form."},
		{name: "-h", desc: "Print the usage on standard output and exit. -help and --help are the same."},
	}
}

// endpointFlagDocs are the FLAG-LIST keywords of "endpoint add".
func endpointFlagDocs() []optDoc {
	return []optDoc{
		{name: "signal", desc: "Announce the address to the peer (ADD_ADDR), so that it opens a subflow to it; for servers."},
		{name: "subflow", desc: "Open an additional subflow from the address to the peer; for clients."},
		{name: "backup", desc: "Subflows from the address carry data only when no other subflow can."},
		{name: "fullmesh", desc: "With subflow: open a subflow from the address to every address the peer announced. Not with signal."},
		{name: "laminar", desc: "Use the address for subflows to addresses the peer announces (Linux 6.18+)."},
	}
}

// pmTokenOpt is the token keyword of the pm verbs.
func pmTokenOpt() optDoc {
	return optDoc{name: "token", arg: "TOKEN", desc: "The connection's token in hex, as monitor prints it (0x optional)."}
}

// commandDocs is the table of every command, in the order of commands().
func commandDocs() []cmdDoc {
	flags := endpointFlagDocs()
	dev := optDoc{name: "dev", arg: "NAME", comp: compIface, desc: "The interface the address belongs to."}
	token := pmTokenOpt()
	configOpt := optDoc{name: "--config", arg: "PATH", comp: compFile, desc: "The main policy file; default /etc/mptcpd-go/mptcpd-go.toml, and without it the built-in policy."}
	colorOpt := optDoc{name: "--color", arg: "[=WHEN]", words: []string{"always", "auto", "never"},
		desc: "Colour and progress: always, never, or auto (the default: only on a terminal, and not with NO_COLOR or TERM=dumb)."}
	socketOpts := []optDoc{
		{name: "--socket", arg: "PATH", comp: compFile, desc: "The daemon's control socket; default the control_socket of the policy, /run/mptcpd-go/control.sock."},
		{name: "--config", arg: "PATH", comp: compFile, desc: "Take the control socket from this main policy file."},
	}
	return []cmdDoc{
		{
			name:     "help",
			synopsis: []string{"help [ COMMAND [ SUBCOMMAND ] ]"},
			summary:  "Print the usage, or a command's help",
			desc: `Without a command, "help" prints the usage on standard error and exits
with status 255, as "ip mptcp help" does; so does "help" followed by one of
ip's commands (endpoint, limits, monitor). For mptcpd-go's own commands,
"help COMMAND" prints the command's help on standard output. Any command
followed by -h or --help prints its help on standard output.`,
			examples: []exampleDoc{
				{"help proxy client", "the options of the proxy client"},
				{"endpoint --help", "the endpoint commands, their keywords and examples"},
			},
		},
		{
			name:     "endpoint",
			ipCompat: true,
			summary:  "Manage the in-kernel path manager's endpoints, as ip mptcp endpoint",
			desc: `Endpoints are the local addresses the in-kernel path manager uses for
MPTCP: to open additional subflows from (subflow), to announce to the peer
(signal), as backup paths. The kernel keeps at most 8 per network namespace.
Keywords, abbreviations, output and exit status are those of iproute2's
"ip mptcp endpoint"; bare "endpoint" is "endpoint show". When mptcpd-go
daemon runs, it manages the endpoints itself: change its policy instead.`,
			subs: []cmdDoc{
				{
					name:     "add",
					synopsis: []string{"endpoint add ADDRESS [ dev NAME ] [ id ID ] [ port NR ] [ FLAG-LIST ]"},
					summary:  "Add an endpoint",
					desc:     `Add ADDRESS as an endpoint with the flags of FLAG-LIST (none: the kernel uses it for nothing but the initial subflow's id).`,
					options: append([]optDoc{
						dev,
						{name: "id", arg: "ID", desc: "The endpoint id, 1 to 255; the kernel picks one when absent."},
						{name: "port", arg: "NR", desc: "With signal: listen on this port and announce it."},
					}, flags...),
					examples: []exampleDoc{
						{"endpoint add 192.0.2.10 dev eth1 subflow", "open extra subflows from eth1's address"},
						{"endpoint add 198.51.100.2 id 5 signal", "announce a second address to clients"},
					},
				},
				{
					name:     "delete",
					synopsis: []string{"endpoint delete id ID [ ADDRESS ]"},
					summary:  "Delete an endpoint",
					desc:     `Delete the endpoint with id ID; id 0 with ADDRESS closes the subflows of that address.`,
					options: []optDoc{
						{name: "id", arg: "ID", desc: "The id of the endpoint, as endpoint show prints it."},
					},
					examples: []exampleDoc{{"endpoint delete id 5", "delete endpoint 5"}},
				},
				{
					name:     "change",
					synopsis: []string{"endpoint change [ id ID ] [ ADDRESS ] [ port NR ] CHANGE-OPT"},
					summary:  "Change an endpoint's flags",
					desc:     `Change the backup or fullmesh flag of the endpoint given by id or by address (and port); existing subflows follow.`,
					options: []optDoc{
						{name: "id", arg: "ID", desc: "The endpoint's id."},
						{name: "port", arg: "NR", desc: "The endpoint's port, with ADDRESS."},
						{name: "backup", desc: "Make the endpoint a backup path."},
						{name: "nobackup", desc: "Make it a regular path."},
						{name: "fullmesh", desc: "Set the fullmesh flag."},
						{name: "nofullmesh", desc: "Clear the fullmesh flag."},
					},
					examples: []exampleDoc{{"endpoint change id 2 backup", "keep endpoint 2 for when the others fail"}},
				},
				{
					name:     "show",
					synopsis: []string{"endpoint show [ id ID ]"},
					summary:  "List the endpoints, or the one with id ID",
					options:  []optDoc{{name: "id", arg: "ID", desc: "Show only this endpoint."}},
					examples: []exampleDoc{{"-j -p endpoint show", "the endpoints as indented JSON"}},
				},
				{
					name:     "flush",
					synopsis: []string{"endpoint flush"},
					summary:  "Delete every endpoint",
				},
			},
		},
		{
			name:     "limits",
			ipCompat: true,
			summary:  "Show or set the in-kernel path manager's limits, as ip mptcp limits",
			desc: `The limits bound, per connection, the additional subflows the in-kernel
path manager creates and the ADD_ADDR announcements it accepts (0 to 8).
Bare "limits" is "limits show". -j prints a JSON object,
{"add_addr_accepted":N,"subflows":N}, where ip prints text.`,
			subs: []cmdDoc{
				{
					name:     "set",
					synopsis: []string{"limits set [ subflows NR ] [ add_addr_accepted NR ]"},
					summary:  "Set the limits",
					options: []optDoc{
						{name: "subflows", arg: "NR", desc: "Additional subflows per connection, 0 to 8."},
						{name: "add_addr_accepted", arg: "NR", desc: "Addresses accepted from the peer's ADD_ADDR per connection, 0 to 8."},
					},
					examples: []exampleDoc{{"limits set subflows 4 add_addr_accepted 4", "allow four extra subflows"}},
				},
				{
					name:     "show",
					synopsis: []string{"limits show"},
					summary:  "Print the limits",
				},
			},
		},
		{
			name:     "monitor",
			ipCompat: true,
			synopsis: []string{"monitor [ --color[=WHEN] ]"},
			summary:  "Print MPTCP events as they happen, as ip mptcp monitor",
			desc: `Print the kernel's MPTCP events (connections created, established and
closed, addresses announced and removed, subflows opened, closed and
changed) until interrupted. -t or -ts adds timestamps, -j prints a JSON
array that is closed on SIGINT or SIGTERM. Needs CAP_NET_ADMIN. On a
terminal event names are coloured and a progress line shows; piped, the
output is exactly ip's.`,
			options: []optDoc{colorOpt},
			examples: []exampleDoc{
				{"-t monitor", "events with timestamps"},
				{"-n blue -j monitor", "the events of network namespace blue as JSON"},
			},
		},
		{
			name:    "pm",
			summary: "Drive the userspace path manager connection by connection",
			desc: `With net.mptcp.path_manager=userspace (pm_type=1 before Linux 6.15) the
kernel leaves each connection's addresses and subflows to user space
(Linux 5.19+). These verbs act on one connection, given by its token as
monitor prints it. Keywords may be abbreviated as with ip.`,
			subs: []cmdDoc{
				{
					name:     "announce",
					synopsis: []string{"pm announce ADDRESS id ID [ port NR ] [ dev NAME ] token TOKEN"},
					summary:  "Announce a local address to the peer",
					options: []optDoc{
						{name: "id", arg: "ID", desc: "The address id, 1 to 255."},
						{name: "port", arg: "NR", desc: "The port to announce."},
						dev, token,
					},
					examples: []exampleDoc{{"pm announce 198.51.100.2 id 2 token 0a1b2c3d", "announce 198.51.100.2 as id 2"}},
				},
				{
					name:     "remove",
					synopsis: []string{"pm remove id ID token TOKEN"},
					summary:  "Withdraw an announced address",
					options:  []optDoc{{name: "id", arg: "ID", desc: "The address id."}, token},
				},
				{
					name:    "subflow",
					summary: "Open or close a subflow",
					subs: []cmdDoc{
						{
							name:     "create",
							synopsis: []string{"pm subflow create ADDRESS [ id ID ] [ port NR ] [ dev NAME ] [ backup ] remote ADDRESS rport NR token TOKEN"},
							summary:  "Open a subflow from ADDRESS to the peer's remote address",
							options: []optDoc{
								{name: "id", arg: "ID", desc: "The local address id."},
								{name: "port", arg: "NR", desc: "The local port."},
								dev,
								{name: "backup", desc: "Open it as a backup subflow."},
								{name: "remote", arg: "ADDRESS", desc: "The peer's address."},
								{name: "rport", arg: "NR", desc: "The peer's port."},
								token,
							},
							examples: []exampleDoc{{"pm subflow create 192.0.2.10 id 3 remote 203.0.113.1 rport 443 token 0a1b2c3d", "a second subflow over 192.0.2.10"}},
						},
						{
							name:     "destroy",
							synopsis: []string{"pm subflow destroy ADDRESS port NR remote ADDRESS rport NR token TOKEN"},
							summary:  "Close a subflow",
							options: []optDoc{
								{name: "port", arg: "NR", desc: "The local port."},
								{name: "remote", arg: "ADDRESS", desc: "The peer's address."},
								{name: "rport", arg: "NR", desc: "The peer's port."},
								token,
							},
						},
					},
				},
				{
					name:     "set",
					synopsis: []string{"pm set ADDRESS [ port NR ] backup|nobackup [ remote ADDRESS rport NR ] token TOKEN"},
					summary:  "Mark a subflow backup or not",
					options: []optDoc{
						{name: "port", arg: "NR", desc: "The local port."},
						{name: "backup", desc: "Make the subflows of ADDRESS backup."},
						{name: "nobackup", desc: "Make them regular."},
						{name: "remote", arg: "ADDRESS", desc: "Only the subflow to this peer address."},
						{name: "rport", arg: "NR", desc: "The peer's port."},
						token,
					},
				},
				{
					name:     "show",
					synopsis: []string{"pm show token TOKEN [ id ID ]"},
					summary:  "List a connection's local addresses (Linux 6.7+)",
					options:  []optDoc{token, {name: "id", arg: "ID", desc: "Only this address id."}},
				},
			},
		},
		{
			name:     "daemon",
			goFlags:  true,
			synopsis: []string{"daemon [ --config PATH ]"},
			summary:  "Keep the kernel's endpoints and limits as the policy says",
			desc: `Run the path manager daemon in the foreground until SIGINT or SIGTERM:
it follows links and addresses and adds, changes and removes MPTCP endpoints
and limits as the policy files say (mptcpd-go.toml(5)); with mode
"userspace" it decides subflows connection by connection. SIGHUP or
"mptcpd-go reload" rereads the policy; a policy with errors is refused and
the old one stays. It notifies systemd (Type=notify, watchdog) and serves
"status" on its control socket. Normally started by mptcpd-go.service.`,
			options: []optDoc{configOpt},
			examples: []exampleDoc{
				{"daemon --config /etc/mptcpd-go/mptcpd-go.toml", "run in the foreground"},
			},
		},
		{
			name:     "status",
			goFlags:  true,
			synopsis: []string{"status [ -j ] [ --color[=WHEN] ] [ --socket PATH | --config PATH ]"},
			summary:  "Show what the running daemon manages",
			desc: `Ask the running daemon for its state. First a summary in plain words:
what is multipath right now, on which interfaces, and what is wrong with
how to fix it; then the details: mode, policy, interfaces, the endpoints
it added and the last reload's outcome. Needs root or the group
mptcpd-go (the control socket is 0660).`,
			options: append([]optDoc{{name: "-j", desc: "JSON output; with the global -p, indented."}, colorOpt}, socketOpts...),
			examples: []exampleDoc{
				{"status", "the daemon's state"},
				{"-p status -j", "the same as indented JSON"},
			},
		},
		{
			name:     "reload",
			goFlags:  true,
			synopsis: []string{"reload [ --socket PATH | --config PATH ]"},
			summary:  "Make the running daemon reread its policy",
			desc: `Like SIGHUP, but waits for the outcome: a policy with errors is refused,
the old one stays, and reload fails with the errors. systemctl reload
mptcpd-go runs this.`,
			options:  socketOpts,
			examples: []exampleDoc{{"reload", "apply the changed policy"}},
		},
		{
			name:    "policy",
			summary: "Check the policy files",
			subs: []cmdDoc{
				{
					name:     "check",
					goFlags:  true,
					synopsis: []string{"policy check [ --config PATH ]"},
					summary:  "Parse and validate the policy and show what it gives",
					desc: `Read the main file and the interface files as the daemon would, print
every error with file:line:col (status 1), or describe the policy in force.`,
					options:  []optDoc{configOpt},
					examples: []exampleDoc{{"policy check", "check /etc/mptcpd-go before systemctl reload mptcpd-go"}},
				},
			},
		},
		{
			name:    "pcap",
			summary: "Record MPTCP traffic and explain captures",
			subs: []cmdDoc{
				{
					name:     "summary",
					goFlags:  true,
					synopsis: []string{"pcap summary [ -j ] FILE"},
					summary:  "Print one block per MPTCP connection of a capture",
					desc: `Read a pcap or pcapng FILE and print each MPTCP connection: keys and
tokens, subflows with their MP_JOIN HMAC check and data bytes, ADD_ADDR and
REMOVE_ADDR, resets, reinjections, DSS checksums, MP_FAIL, fastclose and
fallback.`,
					options:  []optDoc{{name: "-j", desc: "JSON output."}},
					examples: []exampleDoc{{"pcap summary mptcp.pcap", "explain a capture"}},
				},
				{
					name:     "events",
					goFlags:  true,
					synopsis: []string{"pcap events [ -j ] FILE"},
					summary:  "Print a capture as a timeline of monitor-style events",
					options:  []optDoc{{name: "-j", desc: "A JSON array with absolute and relative timestamps."}},
					examples: []exampleDoc{{"pcap events -j mptcp.pcap", "the timeline as JSON"}},
				},
				{
					name:     "capture",
					goFlags:  true,
					synopsis: []string{"pcap capture -i IFACE|any -w FILE [ -c N ] [ --mptcp-only ] [ --snaplen N ]"},
					summary:  "Record packets to a pcap or pcapng file",
					desc: `Capture in pure Go (AF_PACKET; needs CAP_NET_RAW) until interrupted or
-c packets; with the global -n in a network namespace.`,
					options: []optDoc{
						{name: "-i", arg: "IFACE", comp: compIface, words: []string{"any"}, desc: "The interface; any records all of them with Linux cooked v2 headers."},
						{name: "-w", arg: "FILE", comp: compFile, desc: "The file to write: pcapng when its name ends in .pcapng, else pcap."},
						{name: "-c", arg: "N", desc: "Stop after N packets (0: until interrupted)."},
						{name: "--mptcp-only", desc: "Keep only TCP segments with an MPTCP option (filtered in the kernel)."},
						{name: "--snaplen", arg: "N", desc: "Bytes kept per packet."},
					},
					examples: []exampleDoc{{"pcap capture -i any -w mptcp.pcap --mptcp-only", "record the MPTCP traffic of every interface"}},
				},
			},
		},
		{
			name:    "proxy",
			summary: "Carry TCP over several paths without kernel MPTCP",
			desc: `A userspace data path with MPTCP's semantics over plain TCP subflows, for
hosts whose kernel has no MPTCP; both ends run mptcpd-go. Both commands run
until SIGINT or SIGTERM and log to standard error.`,
			subs: []cmdDoc{
				{
					name:     "server",
					goFlags:  true,
					synopsis: []string{"proxy server --listen ADDR [ --to HOST:PORT ] [ --announce ADDR ]... [ --allow PREFIX ]... [ --psk-file FILE ]"},
					summary:  "Accept proxied connections and relay them",
					desc:     `The server needs --to, or --allow when it serves transparent clients only.`,
					options: []optDoc{
						{name: "--listen", arg: "ADDR", desc: "The data-path address to listen on, e.g. :7000."},
						{name: "--to", arg: "HOST:PORT", desc: "Where to relay connections that are not transparent."},
						{name: "--announce", arg: "ADDR", desc: "Another address (ADDR or ADDR:PORT) to listen on and announce to clients; repeatable."},
						{name: "--allow", arg: "PREFIX", desc: "A prefix transparent clients may connect to; repeatable."},
						{name: "--psk-file", arg: "FILE", comp: compFile, desc: "A file holding the pre-shared key."},
					},
					examples: []exampleDoc{{"proxy server --listen 198.51.100.10:7000 --announce 203.0.113.10 --to 127.0.0.1:8080 --psk-file proxy.psk", "serve a local service over two uplinks"}},
				},
				{
					name:     "client",
					goFlags:  true,
					synopsis: []string{"proxy client --listen ADDR --server HOST:PORT [ --via IFACE|ADDR ]... [ --backup IFACE|ADDR ]... [ --config FILE ] [ --psk-file FILE ] [ --transparent ]"},
					summary:  "Take local connections and carry them to a proxy server",
					desc:     `Binding a path to an interface needs CAP_NET_RAW.`,
					options: []optDoc{
						{name: "--listen", arg: "ADDR", desc: "The local address applications connect to, e.g. 127.0.0.1:1080."},
						{name: "--server", arg: "HOST:PORT", desc: "The proxy server's --listen address."},
						{name: "--via", arg: "IFACE|ADDR", comp: compIface, desc: "An interface or local address of an active path; repeatable."},
						{name: "--backup", arg: "IFACE|ADDR", comp: compIface, desc: "An interface or local address of a backup path; repeatable."},
						{name: "--config", arg: "FILE", comp: compFile, desc: "A main policy file whose interface files give the paths."},
						{name: "--psk-file", arg: "FILE", comp: compFile, desc: "A file holding the pre-shared key."},
						{name: "--transparent", desc: "Take nftables-redirected connections and send their original destination."},
					},
					examples: []exampleDoc{{"proxy client --listen 127.0.0.1:1080 --server 198.51.100.10:7000 --via wlan0 --backup wwan0 --psk-file proxy.psk", "Wi-Fi, with LTE as backup"}},
				},
			},
		},
		{
			name:     "completion",
			synopsis: []string{"completion bash|zsh"},
			summary:  "Print a shell completion script",
			desc: `The script completes commands, options, endpoint keywords and interface
names (read at completion time). The zsh script is meant for a file named
_mptcpd-go in a directory of $fpath.`,
			options: []optDoc{
				{name: "bash", desc: "The bash completion script."},
				{name: "zsh", desc: "The zsh completion script."},
			},
			examples: []exampleDoc{
				{"completion bash > /etc/bash_completion.d/mptcpd-go", "install it for bash"},
				{"completion zsh > /usr/local/share/zsh/site-functions/_mptcpd-go", "install it for zsh"},
			},
		},
		{
			name:     "connections",
			goFlags:  true,
			synopsis: []string{"connections [ -j ]"},
			summary:  "List the MPTCP connections and their subflows",
			desc: `Read the MPTCP sockets of the network namespace and their subflows from
the kernel (sock_diag; no daemon needed): each connection's token, addresses,
state and byte counters, and each subflow's addresses, state, ids, backup
flag and round-trip time. Listening sockets are listed apart. With the
global -n, in that network namespace.`,
			options: []optDoc{{name: "-j", desc: "JSON output, with stable field names for scripts; with the global -p, indented."}},
			examples: []exampleDoc{
				{"connections", "the connections and their subflows"},
				{"-n blue connections -j", "those of network namespace blue as JSON"},
			},
		},
	}
}

// findDoc returns the documentation of the top-level command name.
func findDoc(name string) (cmdDoc, bool) {
	for _, d := range commandDocs() {
		if d.name == name {
			return d, true
		}
	}
	return cmdDoc{}, false
}

// subDoc is the subcommand of d that word selects, by prefix in table
// order as the commands themselves match.
func subDoc(d cmdDoc, word string) (cmdDoc, bool) {
	for _, s := range d.subs {
		if matches(word, s.name) {
			return s, true
		}
	}
	return cmdDoc{}, false
}

// isHelpFlag reports whether word asks for help.
func isHelpFlag(word string) bool {
	return word == "-h" || word == "-help" || word == "--help"
}

// helpRequest reports whether the arguments of the top-level command name
// ask for its help (or a subcommand's): -h or --help where a subcommand
// would go, "help" there for mptcpd-go's own commands, or -h/--help
// anywhere for the commands parsed with Go flags. It returns the path of
// command words and the documentation to print.
func helpRequest(name string, args []string) (path []string, d cmdDoc, ok bool) {
	d, ok = findDoc(name)
	if !ok {
		return nil, cmdDoc{}, false
	}
	path = []string{d.name}
	ipCompat := d.ipCompat
	for i, a := range args {
		if isHelpFlag(a) || a == "help" && !ipCompat {
			return path, d, true
		}
		if len(d.subs) == 0 {
			if d.goFlags {
				for _, a := range args[i:] {
					if a == "--" {
						break
					}
					if isHelpFlag(a) {
						return path, d, true
					}
				}
			}
			return nil, cmdDoc{}, false
		}
		sub, found := subDoc(d, a)
		if !found {
			return nil, cmdDoc{}, false
		}
		d = sub
		path = append(path, d.name)
	}
	return nil, cmdDoc{}, false
}

// helpTopic resolves "help WORDS" for mptcpd-go's own commands. For ip's
// commands and unknown words it reports false: "help" then prints the
// usage as ip does.
func helpTopic(args []string) (path []string, d cmdDoc, ok bool) {
	if len(args) == 0 {
		return nil, cmdDoc{}, false
	}
	for _, c := range commands() {
		if matches(args[0], c.name) {
			d, ok = findDoc(c.name)
			break
		}
	}
	if !ok || d.ipCompat {
		return nil, cmdDoc{}, false
	}
	path = []string{d.name}
	for _, a := range args[1:] {
		sub, found := subDoc(d, a)
		if !found {
			break
		}
		d = sub
		path = append(path, d.name)
	}
	return path, d, true
}

// leaves returns the runnable commands under d (d itself when it has no
// subcommands), depth first.
func leaves(d cmdDoc) []cmdDoc {
	if len(d.subs) == 0 {
		return []cmdDoc{d}
	}
	var out []cmdDoc
	for _, s := range d.subs {
		out = append(out, leaves(s)...)
	}
	return out
}

// synopses returns the grammar lines of every runnable command under d.
func synopses(d cmdDoc) []string {
	var out []string
	for _, l := range leaves(d) {
		out = append(out, l.synopsis...)
	}
	return out
}

// grammarGroups splits a synopsis into the units that a line break may
// not split: bracketed groups ("[ dev NAME ]", "[ --via IFACE ]...") and
// single words.
func grammarGroups(syn string) []string {
	var groups []string
	var cur []string
	depth := 0
	for _, w := range strings.Fields(syn) {
		cur = append(cur, w)
		switch {
		case w == "[":
			depth++
		case strings.HasPrefix(w, "]"):
			depth--
		}
		if depth == 0 {
			groups = append(groups, strings.Join(cur, " "))
			cur = nil
		}
	}
	if len(cur) > 0 {
		groups = append(groups, strings.Join(cur, " "))
	}
	return groups
}

// wrapSynopsis formats "mptcpd-go " + syn after prefix, breaking lines
// before width between groups and indenting continuation lines under the
// first argument of the subcommand.
func wrapSynopsis(prefix, syn string, width int) string {
	groups := grammarGroups(syn)
	// Indent under the first group that is not a command word.
	head := prefix + "mptcpd-go"
	n := 0
	for n < len(groups) && isCommandWord(groups[n]) {
		head += " " + groups[n]
		n++
	}
	indent := strings.Repeat(" ", len(head))
	var b strings.Builder
	line := head
	for i, g := range groups[n:] {
		if i > 0 && len(line)+1+len(g) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		line += " " + g
	}
	b.WriteString(line + "\n")
	return b.String()
}

// isCommandWord reports whether a synopsis group is a literal command word
// (lower case, no brackets or placeholders).
func isCommandWord(g string) bool {
	return g != "" && strings.ToLower(g) == g && !strings.ContainsAny(g, "[]|-.") && !strings.Contains(g, " ")
}

// wrapText fills text (paragraphs separated by blank lines) to width with
// the given indent.
func wrapText(text, indent string, width int) string {
	var b strings.Builder
	for i, para := range paragraphs(text) {
		if i > 0 {
			b.WriteString("\n")
		}
		line := indent
		for _, w := range strings.Fields(para) {
			if line != indent && len(line)+1+len(w) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if line != indent {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// paragraphs splits text at blank lines and drops empty paragraphs.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// optionLabel is how an option is shown: "dev NAME", "--listen ADDR".
func optionLabel(o optDoc) string {
	if o.arg == "" {
		return o.name
	}
	return o.name + " " + o.arg
}

// helpText is the help of the command at path, as -h and --help print it.
func helpText(path []string, d cmdDoc) string {
	const width = 79
	var b strings.Builder
	for i, syn := range synopses(d) {
		prefix := "       "
		if i == 0 {
			prefix = "Usage: "
		}
		b.WriteString(wrapSynopsis(prefix, syn, width))
	}
	b.WriteString("\n" + wrapText(d.summary+".", "", width))
	if d.desc != "" {
		b.WriteString("\n" + wrapText(d.desc, "", width))
	}
	if len(d.subs) > 0 {
		b.WriteString("\nCommands:\n")
		for _, s := range d.subs {
			fmt.Fprintf(&b, "  %-12s %s\n", s.name, s.summary)
		}
	}
	writeOptions := func(title string, opts []optDoc) {
		if len(opts) == 0 {
			return
		}
		b.WriteString("\n" + title + ":\n")
		for _, o := range opts {
			label := "  " + optionLabel(o)
			if len(label) < 24 {
				b.WriteString(label + strings.Repeat(" ", 24-len(label)) + strings.TrimLeft(wrapText(o.desc, strings.Repeat(" ", 24), width), " "))
			} else {
				b.WriteString(label + "\n" + wrapText(o.desc, strings.Repeat(" ", 24), width))
			}
		}
	}
	var examples []exampleDoc
	for _, l := range leaves(d) {
		if len(d.subs) > 0 {
			writeOptions(fmt.Sprintf("Options of %s", strings.Join(append(append([]string{}, path...), subPath(d, l)...), " ")), l.options)
		} else {
			writeOptions("Options", l.options)
		}
	}
	examples = append(examples, collectExamples(d)...)
	if len(examples) > 0 {
		b.WriteString("\nExamples:\n")
		for _, e := range examples {
			for _, l := range wrapCommand("mptcpd-go "+e.cmd, width-2) {
				b.WriteString("  " + l + "\n")
			}
			b.WriteString(wrapText(e.desc, "      ", width))
		}
	}
	b.WriteString("\nSee mptcpd-go(8) and mptcpd-go.toml(5).\n")
	return b.String()
}

// subPath is the words from d down to its descendant leaf l.
func subPath(d, l cmdDoc) []string {
	for _, s := range d.subs {
		if len(s.subs) == 0 {
			if s.name == l.name && strings.Join(s.synopsis, "") == strings.Join(l.synopsis, "") {
				return []string{s.name}
			}
			continue
		}
		if p := subPath(s, l); p != nil {
			return append([]string{s.name}, p...)
		}
	}
	return nil
}

// wrapCommand breaks a long example command line into shell continuation
// lines of at most width columns where it can, the later ones indented.
func wrapCommand(cmd string, width int) []string {
	var groups []string
	fields := strings.Fields(cmd)
	for i := 0; i < len(fields); i++ {
		g := fields[i]
		// An option stays with its value.
		if strings.HasPrefix(g, "-") && i+1 < len(fields) && !strings.HasPrefix(fields[i+1], "-") {
			i++
			g += " " + fields[i]
		}
		groups = append(groups, g)
	}
	var lines []string
	line := ""
	for _, w := range groups {
		if line != "" && len(line)+1+len(w)+2 > width {
			lines = append(lines, line+" \\")
			line = "    " + w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// collectExamples returns the examples of d and all its subcommands.
func collectExamples(d cmdDoc) []exampleDoc {
	out := append([]exampleDoc{}, d.examples...)
	for _, s := range d.subs {
		out = append(out, collectExamples(s)...)
	}
	return out
}

// printHelp writes the help of the command at path on stdout.
func (s *session) printHelp(path []string, d cmdDoc) error {
	s.stdout.WriteString(helpText(path, d))
	return nil
}
