package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// TestCLIBatchDifferential compares "-b FILE" with ip(8)'s: the same
// commands (prefixed with "mptcp" for ip) in two fresh namespaces; stdout,
// the exit code and the endpoints left afterwards must match. ip stops at
// the first failing line: a kernel refusal ends the batch with exit 1, a
// usage error exits at once with that error's code.
func TestCLIBatchDifferential(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatalf("needs ip(8) from iproute2: %v", err)
	}
	tests := []struct {
		name  string
		lines []string // nil: the batch file does not exist
	}{
		{
			name: "all succeed",
			lines: []string{
				"endpoint add 10.0.1.1 subflow",
				"",
				"# a comment",
				"endpoint add 10.0.1.2 id 7 signal backup",
				"limits set subflows 4",
				"endpoint show",
				"limits show",
				"endpoint delete id 1",
				"endpoint show",
			},
		},
		{
			name: "kernel refusal stops the batch",
			lines: []string{
				"endpoint add 10.0.1.1",
				"endpoint show",
				"endpoint add 10.0.1.1",
				"endpoint add 10.0.1.2",
				"endpoint show",
			},
		},
		{
			name: "usage error stops the batch",
			lines: []string{
				"endpoint add 10.0.1.1",
				"endpoint add 10.0.1.2 id 999",
				"endpoint add 10.0.1.3",
			},
		},
		{
			name: "unknown word stops the batch",
			lines: []string{
				"endpoint add 10.0.1.1",
				"endpoint add 10.0.1.2 bogus",
				"endpoint add 10.0.1.3",
			},
		},
		{
			name:  "missing file",
			lines: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ipFile, ourFile := filepath.Join(dir, "ip.batch"), filepath.Join(dir, "mptcpd-go.batch")
			if tc.lines != nil {
				var ipLines []string
				for _, l := range tc.lines {
					if l != "" && !strings.HasPrefix(l, "#") {
						l = "mptcp " + l
					}
					ipLines = append(ipLines, l)
				}
				writeFile(t, ipFile, strings.Join(ipLines, "\n")+"\n")
				writeFile(t, ourFile, strings.Join(tc.lines, "\n")+"\n")
			}
			ipNS, ourNS := harness.NewNS(t), harness.NewNS(t)
			want := run(t, nil, ipPath, "-n", ipNS.Name, "-b", ipFile)
			got := run(t, nil, cli(t), "-n", ourNS.Name, "-b", ourFile)
			if got.Code != want.Code || got.Stdout != want.Stdout {
				t.Errorf("batch\n%s\nip -n NS1 -b FILE: %s\nmptcpd-go -n NS2 -b FILE: %s", indent(strings.Join(tc.lines, "\n")), want, got)
			}
			wantEPs := run(t, nil, ipPath, "-n", ipNS.Name, "mptcp", "endpoint", "show")
			gotEPs := run(t, nil, cli(t), "-n", ourNS.Name, "endpoint", "show")
			if diff := cmp.Diff(wantEPs.Stdout, gotEPs.Stdout); diff != "" {
				t.Errorf("endpoints after the batch differ (-ip +mptcpd-go):\n%s", diff)
			}
		})
	}
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCLINamespaceOption checks that -n selects the namespace and that an
// unknown one fails as in ip(8).
func TestCLINamespaceOption(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	nsA, nsB := harness.NewNS(t), harness.NewNS(t)
	mustMptcpdgo(t, nsA, "endpoint", "add", "10.0.1.1", "signal")
	mustMptcpdgo(t, nsA, "limits", "set", "subflows", "5")

	if out := mustMptcpdgo(t, nsB, "endpoint", "show"); out != "" {
		t.Errorf("endpoint show in %s lists the endpoints of %s:\n%s", nsB.Name, nsA.Name, indent(out))
	}
	if out := mustMptcpdgo(t, nsB, "limits", "show"); out != "add_addr_accepted 0 subflows 2 \n" {
		t.Errorf("limits show in %s = %q, want the defaults", nsB.Name, out)
	}
	// The change really went to A: check with the genl client.
	eps, err := harness.DialGenl(t, nsA).Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	want := []genl.Endpoint{{ID: 1, Addr: addr("10.0.1.1"), Flags: genl.FlagSignal}}
	if diff := cmp.Diff(want, eps, cmpNetip()); diff != "" {
		t.Errorf("endpoints of %s after mptcpd-go -n %s endpoint add (-want +got):\n%s", nsA.Name, nsA.Name, diff)
	}

	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatalf("needs ip(8) from iproute2: %v", err)
	}
	missing := harness.NamePrefix + "no-such-namespace"
	wantR := run(t, nil, ipPath, "-n", missing, "mptcp", "endpoint", "show")
	gotR := run(t, nil, cli(t), "-n", missing, "endpoint", "show")
	if gotR.Code != wantR.Code || gotR.Stdout != wantR.Stdout {
		t.Errorf("with an unknown namespace:\nip: %s\nmptcpd-go: %s", wantR, gotR)
	}
	if !strings.Contains(gotR.Stderr, missing) {
		t.Errorf("mptcpd-go -n %s: stderr %q does not name the namespace", missing, gotR.Stderr)
	}
}

// TestCLITooManyEndpointsHint checks that the refusal of a ninth endpoint
// explains the limit in plain words, beyond the kernel's terse text.
func TestCLITooManyEndpointsHint(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	ns := harness.NewNS(t)
	for i := 1; i <= genl.MaxEndpoints; i++ {
		mustMptcpdgo(t, ns, "endpoint", "add", fmt.Sprintf("10.0.1.%d", i), "signal")
	}
	r := mptcpdgo(t, ns, "endpoint", "add", "10.0.1.9", "signal")
	if r.Code != exitKernel {
		t.Fatalf("a ninth endpoint: %s\nwant exit %d", r, exitKernel)
	}
	if !strings.Contains(r.Stderr, "at most 8") {
		t.Errorf("a ninth endpoint: stderr\n%s\nlacks a plain-words hint about the limit of 8 endpoints (e.g. %q)", indent(r.Stderr), genl.ErrTooManyEndpoints)
	}
}

// TestCLIJSONLimits checks the JSON that mptcpd-go prints for limits
// (iproute2 6.1 prints text there, so the differential test leaves it out).
func TestCLIJSONLimits(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	ns := harness.NewNS(t)
	mustMptcpdgo(t, ns, "limits", "set", "subflows", "3", "add_addr_accepted", "4")
	for _, opts := range [][]string{{"-j"}, {"-j", "-p"}} {
		out := mustMptcpdgo(t, ns, append(opts, "limits", "show")...)
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			// One object in an array, like "endpoint show", is fine too.
			var arr []map[string]any
			if err2 := json.Unmarshal([]byte(out), &arr); err2 != nil || len(arr) != 1 {
				t.Errorf("mptcpd-go %s limits show printed no JSON object: %v\n%s", strings.Join(opts, " "), err, indent(out))
				continue
			}
			got = arr[0]
		}
		want := map[string]any{"add_addr_accepted": 4.0, "subflows": 3.0}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mptcpd-go %s limits show (-want +got):\n%s", strings.Join(opts, " "), diff)
		}
	}
}
