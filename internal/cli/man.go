package cli

import (
	"fmt"
	"strings"
)

// ManPage is one generated manual page.
type ManPage struct {
	// Name is the file name, e.g. "mptcpd-go.8".
	Name string
	// Text is the roff source.
	Text string
}

// ManPages returns the manual pages generated from the command table and
// the policy file documentation: mptcpd-go(8) and mptcpd-go.toml(5).
func ManPages() []ManPage {
	return []ManPage{
		{Name: "mptcpd-go.8", Text: commandManPage()},
		{Name: "mptcpd-go.toml.5", Text: policyManPage()},
	}
}

// manHeader starts every generated page.
const manHeader = `.\" Generated from internal/cli by "go run ./internal/cli/cmd/gendocs"; do not edit.
`

// roffEscape escapes text for a roff text line: backslashes and dashes.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLines protects lines that roff would take for requests.
func roffLines(text string) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// roffParagraphs renders text (paragraphs separated by blank lines) as
// filled roff paragraphs, the first without a .PP of its own.
func roffParagraphs(b *strings.Builder, text string) {
	for i, p := range paragraphs(text) {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		b.WriteString(roffLines(wrapText(roffEscape(p), "", 72)))
	}
}

// roffVerbatim renders lines unfilled and indented.
func roffVerbatim(b *strings.Builder, lines []string) {
	b.WriteString(".RS 4\n")
	roffNoFill(b, lines)
	b.WriteString(".RE\n")
}

// roffNoFill renders lines unfilled.
func roffNoFill(b *strings.Builder, lines []string) {
	b.WriteString(".nf\n")
	for _, l := range lines {
		b.WriteString(roffLines(roffEscape(l)))
	}
	b.WriteString(".fi\n")
}

// roffTitle starts a page: the .TH line, no hyphenation, ragged right.
func roffTitle(b *strings.Builder, name, section, volume string) {
	b.WriteString(manHeader)
	fmt.Fprintf(b, ".TH %s %s \"\" \"mptcpd\\-go\" \"%s\"\n.nh\n.ad l\n", roffEscape(name), section, volume)
}

// roffOption renders one option as a tagged paragraph.
func roffOption(b *strings.Builder, o optDoc) {
	b.WriteString(".TP\n")
	if o.arg != "" {
		fmt.Fprintf(b, "\\fB%s\\fR \\fI%s\\fR\n", roffEscape(o.name), roffEscape(o.arg))
	} else {
		fmt.Fprintf(b, "\\fB%s\\fR\n", roffEscape(o.name))
	}
	b.WriteString(roffLines(wrapText(roffEscape(o.desc), "", 72)))
}

// roffExamples renders examples as command lines with their purpose.
func roffExamples(b *strings.Builder, examples []exampleDoc) {
	for _, e := range examples {
		b.WriteString(".PP\n")
		b.WriteString(roffLines(wrapText(roffEscape(strings.TrimSuffix(capitalize(e.desc), ".")+":"), "", 72)))
		roffVerbatim(b, wrapCommand("mptcpd-go "+e.cmd, 66))
	}
}

// capitalize upper-cases the first letter of s.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// commandManPage is mptcpd-go(8).
func commandManPage() string {
	var b strings.Builder
	roffTitle(&b, "MPTCPD-GO", "8", "System Administration")
	b.WriteString(".SH NAME\nmptcpd\\-go \\- Multipath TCP path manager and ip mptcp replacement\n")
	b.WriteString(".SH SYNOPSIS\n")
	var syn []string
	syn = append(syn, "mptcpd-go [ OPTIONS ] COMMAND", "mptcpd-go [ -force ] -batch FILE")
	for _, d := range commandDocs() {
		for _, s := range synopses(d) {
			syn = append(syn, strings.Split(strings.TrimSuffix(wrapSynopsis("", s, 72), "\n"), "\n")...)
		}
	}
	roffNoFill(&b, syn)
	b.WriteString(".SH DESCRIPTION\n")
	roffParagraphs(&b, `mptcpd-go manages Linux Multipath TCP (MPTCP). Its endpoint, limits and
monitor commands are those of iproute2's "ip mptcp", with the same keywords,
abbreviations, output (text and JSON) and exit status, so scripts can switch
without changes. The pm commands drive the userspace path manager
connection by connection.

mptcpd-go daemon keeps the kernel's endpoints and limits as a policy says
(see mptcpd-go.toml(5)); status, reload and policy check talk to it or check
its policy. proxy carries TCP connections over several paths where the
kernel has no MPTCP, and pcap records and explains MPTCP traffic.

Commands, subcommands and keywords may be abbreviated as with ip
("endpoint add" is "e a"). Any command followed by -h or --help prints its
description, options and examples.`)
	b.WriteString(".SH OPTIONS\nThe options come before the command; as with ip, they may be abbreviated and start with one dash or two.\n")
	for _, o := range globalOptionDocs() {
		roffOption(&b, o)
	}
	b.WriteString(".SH COMMANDS\n")
	for _, d := range commandDocs() {
		fmt.Fprintf(&b, ".SS %s\n", roffEscape(d.name))
		roffParagraphs(&b, d.summary+".")
		if d.desc != "" {
			b.WriteString(".PP\n")
			roffParagraphs(&b, d.desc)
		}
		for _, l := range leaves(d) {
			b.WriteString(".PP\n")
			var lines []string
			for _, s := range l.synopsis {
				lines = append(lines, strings.Split(strings.TrimSuffix(wrapSynopsis("", s, 66), "\n"), "\n")...)
			}
			roffVerbatim(&b, lines)
			if l.name != d.name {
				b.WriteString(".PP\n")
				roffParagraphs(&b, l.summary+".")
				if l.desc != "" {
					b.WriteString(".PP\n")
					roffParagraphs(&b, l.desc)
				}
			}
			if len(l.options) > 0 {
				b.WriteString(".RS\n")
				for _, o := range l.options {
					roffOption(&b, o)
				}
				b.WriteString(".RE\n")
			}
		}
		roffExamples(&b, collectExamples(d))
	}
	b.WriteString(".SH EXIT STATUS\n")
	roffParagraphs(&b, `As ip's: 0 on success, 1 for a bad address, MPTCP unavailable or a failed
batch, 2 when the kernel refused the request, 255 for a usage error or an
unknown network namespace. The daemon-side commands exit 1 on failure
(policy errors included) and 255 on a usage error.`)
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/etc/mptcpd-go/mptcpd-go.toml", "The main policy file; see mptcpd-go.toml(5)."},
		{"/etc/mptcpd-go/interfaces.d/*.toml", "The interface files."},
		{"/run/mptcpd-go/control.sock", "The daemon's control socket (group mptcpd-go, mode 0660)."},
		{"/run/mptcpd-go/state.json", "The endpoints the daemon added."},
	} {
		b.WriteString(".TP\n")
		fmt.Fprintf(&b, "\\fI%s\\fR\n%s\n", roffEscape(f[0]), roffEscape(f[1]))
	}
	b.WriteString(".SH EXAMPLES\n")
	roffExamples(&b, []exampleDoc{
		{"policy check", "check the policy, then start the daemon with systemctl enable --now mptcpd-go"},
		{"status", "see the endpoints the daemon manages"},
		{"-j -p endpoint show", "the endpoints as indented JSON, as ip -j -p mptcp endpoint show"},
		{"endp sh", "abbreviations as in ip"},
	})
	b.WriteString(".SH SEE ALSO\n")
	b.WriteString("\\fBmptcpd\\-go.toml\\fR(5), \\fBip\\-mptcp\\fR(8), \\fBsystemctl\\fR(1), \\fBsystemd.service\\fR(5)\n")
	return b.String()
}

// tomlKey documents one key of the policy files.
type tomlKey struct {
	name  string // the key
	value string // its values
	def   string // its default, "" when it has none
	desc  string
}

// tomlSection is one part of mptcpd-go.toml(5).
type tomlSection struct {
	title string // .SS heading
	intro string
	keys  []tomlKey
}

// policyDocs documents the policy files' keys, from policy/doc.go and
// systemd/mptcpd-go.toml.
func policyDocs() []tomlSection {
	return []tomlSection{
		{
			title: "Main file",
			intro: `The top-level keys of the main file.`,
			keys: []tomlKey{
				{"mode", `"kernel", "userspace" or "auto"`, `"kernel"`, `Which path manager to drive: the in-kernel one (endpoints and limits), the userspace one (the daemon decides per connection; Linux 5.19+), or "auto": userspace when the kernel supports it and the policy asks for per-connection decisions (a [[rule]], a preset other than "throughput", or max_subflows).`},
				{"policy_dir", "a directory", `"interfaces.d"`, `Where the interface files are, relative to the main file's directory.`},
				{"control_socket", "a path", `"/run/mptcpd-go/control.sock"`, `Where mptcpd-go status and reload find the daemon. The systemd unit lets the daemon write only under /run/mptcpd-go, and its ExecReload names this path: change both or neither.`},
				{"state_file", "a path", `state.json next to control_socket`, `The endpoints the daemon added, so that it never touches others' and takes its own back after a restart.`},
				{"log_level", `"debug", "info", "warn" or "error"`, `"info"`, `Takes effect on reload.`},
				{"log_format", `"console" or "json"`, `"console"`, `JSON logs one object per line. Takes effect on restart.`},
				{"on_stop", `"remove" or "keep"`, `"remove"`, `What happens to the endpoints the daemon added when it stops: removed, or kept until the next start takes them back.`},
				{"metrics_listen", "ADDRESS:PORT", "off", `Address to serve Prometheus metrics on, off by default.`},
			},
		},
		{
			title: "[limits]",
			intro: `The in-kernel path manager's limits per connection.`,
			keys: []tomlKey{
				{"subflows", `0 to 8, or "auto"`, `"auto"`, `Additional subflows per connection; "auto" is one per endpoint, at least 2.`},
				{"add_addr_accepted", `0 to 8, or "auto"`, `"auto"`, `Addresses accepted from the peer's announcements; "auto" is one per subflow endpoint, at least 1.`},
			},
		},
		{
			title: "Userspace path manager keys",
			intro: `With mode "userspace" or "auto" only; in kernel mode, where they would do nothing, they are errors.`,
			keys: []tomlKey{
				{"preset", `"throughput", "backup", "cost" or "sspi"`, `"throughput"`, `throughput: a regular subflow from every usable interface to every address of the peer; backup: every extra subflow is a backup; cost: interfaces with metered = true give backup subflows only; sspi: one subflow per interface.`},
				{"max_subflows", "1 to 8", "", `Extra subflows per connection.`},
			},
		},
		{
			title: "[[rule]]",
			intro: `Per-connection rules of the userspace path manager, one table each; the first that matches a connection applies, and connections no rule matches are managed.`,
			keys: []tomlKey{
				{"dst", "a prefix or a list of them", "any", `The peer's address.`},
				{"ports", `numbers and "a-b" ranges`, "any", `The peer's port on the client side, ours on the server side.`},
				{"side", `"client", "server" or "any"`, `"any"`, `Which end of the connection we are.`},
				{"action", `"multipath" or "never"`, "", `Required: manage the connection, or leave it single-path.`},
				{"max_subflows", "1 to 8", "", `Overrides the main file's max_subflows.`},
			},
		},
		{
			title: "[[proxy]]",
			intro: `In any mode, userspace data-path proxies for the daemon to run (as mptcpd-go proxy does), for peers or kernels without MPTCP. With any of them, install proxy.conf from the examples (see EXAMPLES) as /etc/systemd/system/mptcpd-go.service.d/proxy.conf: the unit alone allows the daemon no IP sockets.`,
			keys: []tomlKey{
				{"role", `"server" or "client"`, "", `Required.`},
				{"listen", "[ADDRESS]:PORT", "", `Required: where the proxy listens.`},
				{"psk_file", "a path", "", `A file holding the pre-shared key.`},
				{"to", "HOST:PORT", "", `Server: where connections go.`},
				{"announce", "a list of ADDRESS[:PORT]", "", `Server: more addresses to listen on and announce.`},
				{"allow", "a list of prefixes", "", `Server: destinations transparent clients may ask for.`},
				{"server", "HOST:PORT", "", `Client, required: the proxy server.`},
				{"via", "a list of interfaces or local addresses", "", `Client: the paths. A client with neither via nor backup takes one path per interface that the interface files give an endpoint.`},
				{"backup", "a list of interfaces or local addresses", "", `Client: backup paths.`},
				{"transparent", "true or false", "false", `Client: take nftables-redirected connections.`},
			},
		},
		{
			title: "Interface files: [match]",
			intro: `The files policy_dir/*.toml are read in lexical order, and the first whose [match] fits an interface applies to it (systemd-networkd's convention). A file with ignore = true at the top and no [endpoint] gives the interfaces it matches no endpoints.`,
			keys: []tomlKey{
				{"name", "a list of shell globs", "", `Required: interface names, e.g. ["wlan*", "eth1"].`},
				{"kind", "a list of link kinds", "any", `E.g. ["device", "veth"].`},
				{"family", `"ipv4", "ipv6" or both in a list`, "both", `The address families to use.`},
			},
		},
		{
			title: "Interface files: [endpoint]",
			intro: `The endpoints the matched interfaces' addresses get.`,
			keys: []tomlKey{
				{"flags", `a list of "signal", "subflow", "backup", "fullmesh", "laminar"`, "", `The endpoint flags, as ip mptcp endpoint add takes them.`},
				{"port", "a port", "none", `Only with signal.`},
				{"also_without_default_route", "true or false", "false", `Use the interface even while it has no default route for the address's family.`},
				{"skip", `a list of "link-local", "ula", "temporary", "deprecated", "tentative"`, "all of them", `Addresses not to use.`},
				{"priority", "a number", "0", `Higher wins the kernel's 8 endpoints.`},
				{"metered", "true or false", "false", `The cost preset makes the interface backup only.`},
			},
		},
	}
}

// policyManPage is mptcpd-go.toml(5).
func policyManPage() string {
	var b strings.Builder
	roffTitle(&b, "MPTCPD-GO.TOML", "5", "File Formats")
	b.WriteString(".SH NAME\nmptcpd\\-go.toml \\- the policy files of mptcpd\\-go\n")
	b.WriteString(".SH SYNOPSIS\n/etc/mptcpd\\-go/mptcpd\\-go.toml\n.br\n/etc/mptcpd\\-go/interfaces.d/*.toml\n")
	b.WriteString(".SH DESCRIPTION\n")
	roffParagraphs(&b, `mptcpd-go daemon keeps the kernel's MPTCP endpoints and limits as these TOML
files say. The main file (/etc/mptcpd-go/mptcpd-go.toml, or the --config
path) sets the mode, the limits and where the interface files are; the
interface files say which interfaces' addresses become endpoints and with
which flags.

Without the main file, built-in defaults apply: limits "auto", and every
interface except loopback gets subflow endpoints for its global addresses
while it has a default route for their family. A main file that exists, or
an explicit --config, turns the built-in defaults off: then only the
interface files give interfaces endpoints (the package installs
interfaces.d/99-default.toml, the built-in interface policy as a file).

Parsing is strict: unknown keys, wrong types and values the kernel would
refuse are errors, each with file:line:col and what to do, all reported at
once. Wherever a list is expected, a single string is taken as a list of
one. Check a change with mptcpd-go policy check, apply it with systemctl
reload mptcpd-go (or mptcpd-go reload); a policy with errors is refused and
the old one stays in force.`)
	sh := ""
	for _, sec := range policyDocs() {
		want := "MAIN FILE"
		if strings.HasPrefix(sec.title, "Interface files") {
			want = "INTERFACE FILES"
		}
		if want != sh {
			fmt.Fprintf(&b, ".SH %s\n", want)
			sh = want
		}
		fmt.Fprintf(&b, ".SS \"%s\"\n", roffEscape(strings.TrimPrefix(sec.title, "Interface files: ")))
		roffParagraphs(&b, sec.intro)
		for _, k := range sec.keys {
			b.WriteString(".TP\n")
			fmt.Fprintf(&b, "\\fB%s\\fR = \\fI%s\\fR\n", roffEscape(k.name), roffEscape(k.value))
			desc := k.desc
			if k.def != "" {
				desc += " Default: " + k.def + "."
			}
			b.WriteString(roffLines(wrapText(roffEscape(desc), "", 72)))
		}
	}
	b.WriteString(".SH EXAMPLES\n")
	roffParagraphs(&b, `A laptop: Wi-Fi gets subflow endpoints, LTE backup ones that carry data
only when Wi-Fi fails. /etc/mptcpd-go/mptcpd-go.toml:`)
	roffVerbatim(&b, []string{"[limits]", `subflows = "auto"`})
	b.WriteString(".PP\n/etc/mptcpd\\-go/interfaces.d/10\\-wlan.toml:\n")
	roffVerbatim(&b, []string{"[match]", `name = ["wlan*", "wl*"]`, "[endpoint]", `flags = ["subflow"]`})
	b.WriteString(".PP\n/etc/mptcpd\\-go/interfaces.d/20\\-wwan.toml:\n")
	roffVerbatim(&b, []string{"[match]", `name = ["wwan*", "ww*"]`, "[endpoint]", `flags = ["subflow", "backup"]`})
	b.WriteString(".PP\n")
	roffParagraphs(&b, `More complete examples (laptop, server, metered, proxy-client,
proxy-server), each a whole /etc/mptcpd-go, with the unit's proxy.conf
drop-in and mptcpd-go.toml listing every key, are in
/usr/share/doc/mptcpd-go/examples (the Debian package) or
/usr/local/share/doc/mptcpd-go/examples (make install); in the source tree,
in systemd/.`)
	b.WriteString(".SH FILES\n")
	for _, f := range [][2]string{
		{"/etc/mptcpd-go/mptcpd-go.toml", "The main file; every key is listed in it, commented out, with its default."},
		{"/etc/mptcpd-go/interfaces.d/", "The interface files."},
	} {
		fmt.Fprintf(&b, ".TP\n\\fI%s\\fR\n%s\n", roffEscape(f[0]), roffEscape(f[1]))
	}
	b.WriteString(".SH SEE ALSO\n\\fBmptcpd\\-go\\fR(8), \\fBip\\-mptcp\\fR(8)\n")
	return b.String()
}
