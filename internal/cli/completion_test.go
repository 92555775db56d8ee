package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeScript writes the completion script for shell to a temporary file.
func writeScript(t *testing.T, shell string) string {
	t.Helper()
	script, err := Completion(shell)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mptcpd-go."+shell)
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestCompletionCommand(t *testing.T) {
	bash, _ := Completion("bash")
	zsh, _ := Completion("zsh")
	tests := []cliCase{
		{name: "bash", args: "completion bash", want: result{Stdout: bash}},
		{name: "zsh abbreviated", args: "comp z", want: result{Stdout: zsh}},
		{name: "no shell", args: "completion",
			want: result{Stderr: "Error: completion needs one shell: bash or zsh.\n", Code: 255}},
		{name: "unknown shell", args: "completion fish",
			want: result{Stderr: "Error: no completion for shell \"fish\"; try \"bash\" or \"zsh\".\n", Code: 255}},
	}
	runCases(t, tests)
}

// TestCompletionBash runs the bash completion function on COMP_WORDS the
// way bash's programmable completion does and compares COMPREPLY.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	file := writeScript(t, "bash")
	if out, err := exec.Command(bash, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	hasLo := false
	if _, err := os.Stat("/sys/class/net/lo"); err == nil {
		hasLo = true
	}
	tests := []struct {
		words string // the command line; the last word is completed
		want  []string
	}{
		{"mptcpd-go end", []string{"endpoint"}},
		{"mptcpd-go proxy client --", []string{"--listen", "--server", "--via", "--backup", "--config", "--psk-file", "--transparent", "--help"}},
		{"mptcpd-go proxy client --l", []string{"--listen"}},
		{"mptcpd-go p", []string{"pm", "policy", "pcap", "proxy"}},
		{"mptcpd-go -j -p e", []string{"endpoint"}},
		{"mptcpd-go -n blue endpoint a", []string{"add"}},
		{"mptcpd-go e a 10.0.0.1 s", []string{"signal", "subflow"}},
		{"mptcpd-go endpoint change id 2 nob", []string{"nobackup"}},
		{"mptcpd-go pm subflow c", []string{"create"}},
		{"mptcpd-go help proxy c", []string{"client"}},
		{"mptcpd-go completion ", []string{"bash", "zsh"}},
		{"mptcpd-go -V", []string{"-V"}},
		{"mptcpd-go limits set subflows ", nil},
	}
	if hasLo {
		tests = append(tests,
			struct {
				words string
				want  []string
			}{"mptcpd-go endpoint add 10.0.0.1 dev l", []string{"lo"}},
			struct {
				words string
				want  []string
			}{"mptcpd-go pcap capture -i an", []string{"any"}})
	}
	for _, tt := range tests {
		words := strings.Fields(tt.words)
		if strings.HasSuffix(tt.words, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, shellQuote(w))
		}
		harness := "source " + shellQuote(file) + "\n" +
			"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
			"COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n" +
			"_mptcpd_go\n" +
			"for w in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$w\"; done\n"
		out, err := exec.Command(bash, "-c", harness).Output()
		if err != nil {
			t.Errorf("%q: %v", tt.words, err)
			continue
		}
		var got []string
		if s := strings.TrimSpace(string(out)); s != "" {
			got = strings.Split(s, "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("completing %q mismatch (-want +got):\n%s", tt.words, diff)
		}
	}
}

// TestCompletionZsh checks the zsh script's syntax and runs its shared
// functions under zsh.
func TestCompletionZsh(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh (apt-get install zsh)")
	}
	file := writeScript(t, "zsh")
	if out, err := exec.Command(zsh, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	var top []string
	for _, d := range commandDocs() {
		top = append(top, d.name)
	}
	tests := []struct {
		words, prev, cur string
		want             string
	}{
		{"", "", "end", "words " + strings.Join(top, " ")},
		{"proxy client", "client", "--", "words --listen --server --via --backup --config --psk-file --transparent --help"},
		{"-n blue e a 10.0.0.1", "10.0.0.1", "d", "words dev id port signal subflow backup fullmesh laminar"},
		{"endpoint add 10.0.0.1 dev", "dev", "", "iface"},
	}
	for _, tt := range tests {
		script := "compdef() { :; }\nsource " + shellQuote(file) + "\n" +
			"p=$(_mptcpd_go_walk " + tt.words + ")\n" +
			"_mptcpd_go_words \"$p\" " + shellQuote(tt.prev) + " " + shellQuote(tt.cur) + "\n"
		out, err := exec.Command(zsh, "-f", "-c", script).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", tt.words, err, out)
			continue
		}
		if diff := cmp.Diff(tt.want, strings.TrimSpace(string(out))); diff != "" {
			t.Errorf("zsh: completing %q after %q mismatch (-want +got):\n%s", tt.cur, tt.words, diff)
		}
	}
}
