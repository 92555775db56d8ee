// Command gendocs writes the manual pages generated from mptcpd-go's
// command table into a directory:
//
//	go run ./internal/cli/cmd/gendocs -dir docs/man
//
// With -completions DIR it also writes the bash and zsh completion
// scripts there (mptcpd-go.bash, _mptcpd-go).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mptcpd-go/mptcpd-go/internal/cli"
)

func main() {
	dir := flag.String("dir", "docs/man", "directory for the manual pages")
	comp := flag.String("completions", "", "directory for the completion scripts (none when empty)")
	flag.Parse()
	if err := run(*dir, *comp); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// run writes the pages into dir and, when compDir is set, the scripts.
func run(dir, compDir string) error {
	files := map[string]string{}
	for _, p := range cli.ManPages() {
		files[filepath.Join(dir, p.Name)] = p.Text
	}
	if compDir != "" {
		for shell, name := range map[string]string{"bash": "mptcpd-go.bash", "zsh": "_mptcpd-go"} {
			s, err := cli.Completion(shell)
			if err != nil {
				return err
			}
			files[filepath.Join(compDir, name)] = s
		}
	}
	for path, text := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
