package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// manDir is where the generated pages are committed.
const manDir = "../../docs/man"

// TestManPagesUpToDate checks that docs/man holds what the generator
// writes today.
func TestManPagesUpToDate(t *testing.T) {
	for _, p := range ManPages() {
		committed, err := os.ReadFile(filepath.Join(manDir, p.Name))
		if err != nil {
			t.Errorf("%v; run go run ./internal/cli/cmd/gendocs -dir docs/man", err)
			continue
		}
		if diff := cmp.Diff(string(committed), p.Text); diff != "" {
			t.Errorf("docs/man/%s is out of date; run go run ./internal/cli/cmd/gendocs -dir docs/man (-committed +generated):\n%s", p.Name, diff)
		}
	}
}

// TestManPagesRender formats the pages with groff, and man -l when it is
// there, with all warnings on, and wants no diagnostics.
func TestManPagesRender(t *testing.T) {
	tools := []struct {
		name string
		args func(file string) []string
		env  []string
	}{
		{"groff", func(f string) []string { return []string{"-man", "-Tutf8", "-ww", "-z", f} }, nil},
		{"man", func(f string) []string { return []string{"--warnings", "-E", "UTF-8", "-l", f} }, []string{"MANWIDTH=80", "MANPAGER=cat", "PAGER=cat"}},
	}
	ran := 0
	for _, tool := range tools {
		path, err := exec.LookPath(tool.name)
		if err != nil {
			continue
		}
		ran++
		for _, p := range ManPages() {
			file := filepath.Join(t.TempDir(), p.Name)
			if err := os.WriteFile(file, []byte(p.Text), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(path, tool.args(file)...)
			cmd.Env = append(os.Environ(), tool.env...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("%s %s: %v\n%s", tool.name, p.Name, err, stderr.String())
			}
			if tool.name == "man" {
				for i, line := range strings.Split(stdout.String(), "\n") {
					if n := len([]rune(line)); n > 80 {
						t.Errorf("%s line %d is %d columns wide: %q", p.Name, i+1, n, line)
					}
				}
			}
		}
	}
	if ran == 0 {
		t.Skip("neither groff nor man is installed (apt-get install groff-base man-db)")
	}
}

func TestRoffEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"--listen", `\-\-listen`},
		{`a\b`, `a\eb`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, roffEscape(tt.in)); diff != "" {
			t.Errorf("roffEscape(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	if diff := cmp.Diff(".nf\n\\&.pcapng\nx\n.fi\n", func() string {
		var b strings.Builder
		roffNoFill(&b, []string{".pcapng", "x"})
		return b.String()
	}()); diff != "" {
		t.Errorf("roffNoFill mismatch (-want +got):\n%s", diff)
	}
}
