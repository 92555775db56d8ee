package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

func TestBatch(t *testing.T) {
	failDelete := func() *fakeBackend {
		return &fakeBackend{
			limits: genl.Limits{Subflows: 2},
			errs:   map[string]error{"DeleteEndpoint": kerr("delete", unix.EINVAL, "address not found")},
		}
	}
	tests := []cliCase{
		{name: "commands share one backend", args: "-batch -", stdin: "endpoint add 10.0.0.1 signal\nlimits\n",
			fake:  &fakeBackend{limits: genl.Limits{Subflows: 2}},
			calls: []string{`AddEndpoint(id=0 addr=10.0.0.1 port=0 flags="signal" ifindex=0)`, "Limits()"},
			want:  result{Stdout: "add_addr_accepted 0 subflows 2 \n"}},
		{name: "comments, blanks, quotes, continuation", args: "-b -",
			stdin: "# setup\n\n  endpoint add \"10.0.0.1\" 'signal' # trailing\nendpoint \\\n add 10.0.0.2 \\\n subflow\n\t\n",
			calls: []string{`AddEndpoint(id=0 addr=10.0.0.1 port=0 flags="signal" ifindex=0)`,
				`AddEndpoint(id=0 addr=10.0.0.2 port=0 flags="subflow" ifindex=0)`}},
		{name: "kernel error stops", args: "-batch -", stdin: "limits\nendpoint delete id 1\nendpoint flush\n",
			fake:  failDelete(),
			calls: []string{"Limits()", "DeleteEndpoint(1)"},
			want: result{Stdout: "add_addr_accepted 0 subflows 2 \n",
				Stderr: "Error: address not found.\nCommand failed -:2\n", Code: 1}},
		{name: "force goes on", args: "-force -batch -", stdin: "endpoint delete id 1\nendpoint delete id 2\nendpoint flush\n",
			fake:  failDelete(),
			calls: []string{"DeleteEndpoint(1)", "DeleteEndpoint(2)", "FlushEndpoints()"},
			want: result{Stderr: "Error: address not found.\nCommand failed -:1\n" +
				"Error: address not found.\nCommand failed -:2\n", Code: 1}},
		{name: "argument error stops with its status", args: "-batch -", stdin: "endpoint add 10.0.0.1 id 0\nendpoint flush\n",
			want: result{Stderr: "Error: argument \"ID\" is wrong: cannot be 0\n\nCommand failed -:1\n", Code: 255}},
		{name: "line numbers count continuations", args: "-batch -", stdin: "endpoint \\\nflush\nendpoint add bad\n",
			calls: []string{"FlushEndpoints()"},
			want:  result{Stderr: "Error: any valid address is expected rather than \"bad\".\nCommand failed -:3\n", Code: 1}},
		{name: "force goes on after argument errors", args: "-force -batch -", stdin: "endpoint add 10.0.0.1 id 0\nendpoint flush\n",
			calls: []string{"FlushEndpoints()"},
			want:  result{Stderr: "Error: argument \"ID\" is wrong: cannot be 0\n\nCommand failed -:1\n", Code: 1}},
		{name: "unknown command", args: "-batch -", stdin: "frobnicate\n",
			want: result{Stderr: "Error: command \"frobnicate\" is unknown, try \"mptcpd-go help\".\nCommand failed -:1\n", Code: 255}},
		{name: "unterminated quote", args: "-batch -", stdin: "endpoint add \"10.0.0.1\n",
			want: result{Stderr: "Error: unterminated quoted string.\n", Code: 1}},
		{name: "missing continuation", args: "-batch -", stdin: "limits\nendpoint \\\n",
			fake: &fakeBackend{}, calls: []string{"Limits()"},
			want: result{Stdout: "add_addr_accepted 0 subflows 0 \n", Stderr: "Error: missing continuation line.\n"}},
		{name: "json per command", args: "-j -batch -", stdin: "limits\nendpoint show\n",
			fake: &fakeBackend{}, calls: []string{"Limits()", "Endpoints()"},
			want: result{Stdout: `{"add_addr_accepted":0,"subflows":0}` + "\n[]\n"}},
		{name: "namespace missing stops even with force", args: "-n missing -force -batch -", stdin: "limits\nlimits\n",
			want: result{Stderr: "Error: cannot open network namespace \"missing\": No such file or directory.\n" +
				"hint: list the namespaces with \"ip netns list\"; -n takes a name under /run/netns or a path\n" +
				"Command failed -:1\n", Code: 255}},
		{name: "file missing", args: "-batch /nonexistent/batch",
			want: result{Stderr: "Error: cannot open file \"/nonexistent/batch\" for reading: No such file or directory.\n", Code: 1}},
		{name: "batch needs a file", args: "-batch",
			want: result{Stderr: "Error: argument \"batch file\" is required\n", Code: 255}},
	}
	runCases(t, tests)
}

func TestBatchFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(name, []byte("endpoint flush\nendpoint delete id 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{errs: map[string]error{"DeleteEndpoint": kerr("delete", unix.EINVAL, "address not found")}}
	got := runFake(t, fb, "", "-batch", name)
	want := result{Stderr: "Error: address not found.\nCommand failed " + name + ":2\n", Code: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batch from a file mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"FlushEndpoints()", "DeleteEndpoint(3)"}, fb.calls); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
	if fb.closed != 1 {
		t.Errorf("backend closed %d times, want 1", fb.closed)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := map[string][]string{
		"":                       nil,
		"  a  b\tc\r\n":          {"a", "b", "c"},
		`a "b c" 'd "e' f`:       {"a", "b c", `d "e`, "f"},
		`"ab"cd`:                 {"ab", "cd"},
		`x"y`:                    {`x"y`},
		`endpoint add "" signal`: {"endpoint", "add", "", "signal"},
	}
	for in, want := range tests {
		got, err := splitArgs(in)
		if err != nil {
			t.Errorf("splitArgs(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("splitArgs(%q) mismatch (-want +got):\n%s", in, diff)
		}
	}
}
