package cli

import (
	"fmt"
	"sort"
	"strings"
)

// completionCmd is `mptcpd-go completion bash|zsh`.
func (s *session) completionCmd(args []string) error {
	if len(args) != 1 {
		return &cmdError{code: exitUsage, msg: "Error: completion needs one shell: bash or zsh.\n"}
	}
	var shell string
	for _, sh := range []string{"bash", "zsh"} {
		if matches(args[0], sh) {
			shell = sh
		}
	}
	if shell == "" {
		return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: no completion for shell %q; try \"bash\" or \"zsh\".\n", args[0])}
	}
	script, err := Completion(shell)
	if err != nil {
		return &cmdError{code: exitUsage, msg: "Error: " + err.Error() + "\n"}
	}
	s.stdout.WriteString(script)
	return nil
}

// Completion returns the completion script for shell, "bash" or "zsh",
// generated from the command table.
func Completion(shell string) (string, error) {
	switch shell {
	case "bash":
		return completionData() + bashDriver, nil
	case "zsh":
		return "#compdef mptcpd-go\n" + completionData() + zshDriver, nil
	}
	return "", fmt.Errorf("no completion for shell %q", shell)
}

// shellCase is one branch of a generated case statement.
type shellCase struct{ pattern, value string }

// writeCase writes a shell function that prints the value of the branch
// matching its arguments.
func writeCase(b *strings.Builder, name, comment, subject string, cases []shellCase) {
	fmt.Fprintf(b, "\n# %s\n%s() {\n\tcase \"%s\" in\n", comment, name, subject)
	for _, c := range cases {
		fmt.Fprintf(b, "\t%s) echo %s ;;\n", shellQuote(c.pattern), shellQuote(c.value))
	}
	b.WriteString("\tesac\n}\n")
}

// shellQuote quotes s for sh in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completionData is the part of the scripts shared by bash and zsh: shell
// functions that answer from the command table.
func completionData() string {
	var b strings.Builder
	b.WriteString(`# Completion for mptcpd-go, generated from its command table by
# "mptcpd-go completion". Do not edit.
`)
	docs := commandDocs()
	var top []string
	for _, d := range docs {
		top = append(top, d.name)
	}
	subs := []shellCase{{"", strings.Join(top, " ")}, {"help", strings.Join(top, " ")}}
	var opts, args []shellCase
	var walk func(path []string, d cmdDoc)
	walk = func(path []string, d cmdDoc) {
		p := strings.Join(path, " ")
		if len(d.subs) > 0 {
			var names []string
			for _, s := range d.subs {
				names = append(names, s.name)
				walk(append(append([]string{}, path...), s.name), s)
			}
			subs = append(subs, shellCase{p, strings.Join(names, " ")})
			return
		}
		var names []string
		for _, o := range d.options {
			if !contains(names, o.name) {
				names = append(names, o.name)
			}
			if o.arg != "" {
				args = append(args, shellCase{p + " " + o.name, compWord(o)})
			}
		}
		kind := "keywords"
		if d.goFlags {
			kind = "flags"
			names = append(names, "--help")
		}
		opts = append(opts, shellCase{p, kind + " " + strings.Join(names, " ")})
	}
	for _, d := range docs {
		if d.name != "help" {
			walk([]string{d.name}, d)
		}
	}
	// Duplicate option names (pm's dev and token) give the same case twice;
	// keep the first.
	args = dedupCases(args)
	var gopts []string
	gargs := []shellCase{}
	for _, o := range globalOptionDocs() {
		gopts = append(gopts, o.name)
		if o.arg != "" {
			gargs = append(gargs, shellCase{o.name, compWord(o)})
		}
	}
	gopts = append(gopts, "--help")
	sort.SliceStable(gargs, func(i, j int) bool { return gargs[i].pattern < gargs[j].pattern })
	writeCase(&b, "_mptcpd_go_subs", "_mptcpd_go_subs PATH: the subcommands of the command PATH (\"\": the top level)", "$1", subs)
	writeCase(&b, "_mptcpd_go_opts", "_mptcpd_go_opts PATH: \"keywords\" or \"flags\", then the options of the command PATH", "$1", opts)
	writeCase(&b, "_mptcpd_go_arg", "_mptcpd_go_arg PATH OPTION: how to complete the value of OPTION (iface [WORDS], file, none); nothing when it takes none", "$1 $2", args)
	fmt.Fprintf(&b, "\n# _mptcpd_go_gopts: the global options\n_mptcpd_go_gopts() {\n\techo %s\n}\n", shellQuote(strings.Join(gopts, " ")))
	b.WriteString(`
# _mptcpd_go_garg OPTION: how to complete the value of a global option,
# which may be abbreviated as in ip (-n, -net, -netns, --netns); fails
# when OPTION takes no value.
_mptcpd_go_garg() {
	local o="$1"
	case "$o" in --*) o="${o#-}" ;; esac
	case "$o" in -?*) ;; *) return 1 ;; esac
	case "-netns" in "$o"*) echo netns; return 0 ;; esac
	case "-batch" in "$o"*) echo file; return 0 ;; esac
	case "-loops" in "$o"*) echo none; return 0 ;; esac
	case "-family" in "$o"*) echo 'words inet inet6 link mpls bridge help'; return 0 ;; esac
	case "$o" in -rc*) case "-rcvbuf" in "$o"*) echo none; return 0 ;; esac ;; esac
	return 1
}

# _mptcpd_go_ifaces: the interface names, at completion time.
_mptcpd_go_ifaces() {
	ls /sys/class/net 2>/dev/null
}

# _mptcpd_go_netns: the named network namespaces.
_mptcpd_go_netns() {
	ls /run/netns 2>/dev/null
}

# _mptcpd_go_walk WORD...: the command path the words select (printed),
# after the global options; the words are those before the cursor.
_mptcpd_go_walk() {
	local cmdpath="" w s found subs skip=""
	for w in "$@"; do
		if [ -n "$skip" ]; then
			skip=""
			continue
		fi
		if [ -z "$cmdpath" ]; then
			if _mptcpd_go_garg "$w" >/dev/null; then
				skip=1
				continue
			fi
			case "$w" in -*) continue ;; esac
		fi
		subs=$(_mptcpd_go_subs "$cmdpath")
		found=""
		for s in $(echo $subs); do
			case "$s" in "$w"*) found="$s"; break ;; esac
		done
		if [ -z "$found" ]; then
			break
		fi
		cmdpath="${cmdpath:+$cmdpath }$found"
		[ "$cmdpath" = help ] && continue
		case "$cmdpath" in help\ *) cmdpath="${cmdpath#help }" ;; esac
	done
	echo "$cmdpath"
}

# _mptcpd_go_words PATH PREV CUR: the kind of candidates and the words to
# offer: "words W...", "iface W...", "file", "netns" or "none".
_mptcpd_go_words() {
	local cmdpath="$1" prev="$2" cur="$3" kind opts
	if [ -z "$cmdpath" ] && kind=$(_mptcpd_go_garg "$prev"); then
		echo "$kind"
		return
	fi
	if [ -n "$prev" ] && [ -n "$cmdpath" ]; then
		kind=$(_mptcpd_go_arg "$cmdpath" "$prev")
		if [ -n "$kind" ]; then
			echo "$kind"
			return
		fi
	fi
	case "$cur" in
	-*)
		if [ -z "$cmdpath" ]; then
			echo "words $(_mptcpd_go_gopts)"
			return
		fi ;;
	esac
	kind=$(_mptcpd_go_subs "$cmdpath")
	if [ -n "$kind" ]; then
		echo "words $kind"
		return
	fi
	opts=$(_mptcpd_go_opts "$cmdpath")
	case "$opts" in
	flags\ *)
		case "$cur" in
		-*|"") echo "words ${opts#flags }" ;;
		*) echo file ;;
		esac ;;
	keywords\ *) echo "words ${opts#keywords }" ;;
	*) echo none ;;
	esac
}
`)
	return b.String()
}

// compWord is the completion kind of an option's value.
func compWord(o optDoc) string {
	words := strings.Join(o.words, " ")
	switch o.comp {
	case compIface:
		return strings.TrimSpace("iface " + words)
	case compFile:
		return "file"
	case compNone:
		if words != "" {
			return "words " + words
		}
	}
	return "none"
}

// contains reports whether list holds s.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// dedupCases drops cases whose pattern came before.
func dedupCases(cases []shellCase) []shellCase {
	var out []shellCase
	seen := map[string]bool{}
	for _, c := range cases {
		if !seen[c.pattern] {
			seen[c.pattern] = true
			out = append(out, c)
		}
	}
	return out
}

// bashDriver is the bash side of the completion script.
const bashDriver = `
# _mptcpd_go: the bash completion function of mptcpd-go.
_mptcpd_go() {
	local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmdpath spec
	[ "$COMP_CWORD" -gt 1 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
	cmdpath=$(_mptcpd_go_walk "${COMP_WORDS[@]:1:COMP_CWORD-1}")
	spec=$(_mptcpd_go_words "$cmdpath" "$prev" "$cur")
	COMPREPLY=()
	case "$spec" in
	words\ *) COMPREPLY=($(compgen -W "${spec#words }" -- "$cur")) ;;
	iface*) COMPREPLY=($(compgen -W "$(_mptcpd_go_ifaces) ${spec#iface}" -- "$cur")) ;;
	netns) COMPREPLY=($(compgen -W "$(_mptcpd_go_netns)" -- "$cur")) ;;
	file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}
complete -F _mptcpd_go mptcpd-go
`

// zshDriver is the zsh side of the completion script.
const zshDriver = `
# _mptcpd_go: the zsh completion function of mptcpd-go.
_mptcpd_go() {
	local cur="${words[CURRENT]}" prev="" cmdpath spec
	(( CURRENT > 2 )) && prev="${words[CURRENT-1]}"
	cmdpath=$(_mptcpd_go_walk "${(@)words[2,CURRENT-1]}")
	spec=$(_mptcpd_go_words "$cmdpath" "$prev" "$cur")
	case "$spec" in
	words\ *) compadd -- ${=${spec#words }} ;;
	iface*) compadd -- $(_mptcpd_go_ifaces) ${=${spec#iface}} ;;
	netns) compadd -- $(_mptcpd_go_netns) ;;
	file) _files ;;
	esac
}

# Autoloaded from $fpath as _mptcpd-go, the file is the completion function
# itself; sourced, it registers _mptcpd_go.
if [ "$funcstack[1]" = "_mptcpd-go" ]; then
	_mptcpd_go "$@"
else
	compdef _mptcpd_go mptcpd-go
fi
`
