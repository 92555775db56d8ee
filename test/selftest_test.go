package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// cliStep is one mptcpd-go command line and what it must print and exit
// with. Every step's stdout is compared, so commands that change state must
// print nothing, like ip(8).
type cliStep struct {
	args string // split on spaces
	out  string // exact stdout
	code int
	// errHas, if set, must appear in stderr.
	errHas string
}

// runSteps runs the steps in order in ns, failing (and going on) on every
// difference.
func runSteps(t *testing.T, ns *harness.NS, steps []cliStep) {
	t.Helper()
	for _, s := range steps {
		args := strings.Fields(s.args)
		r := mptcpdgo(t, ns, args...)
		if r.Code != s.code || r.Stdout != s.out {
			t.Errorf("mptcpd-go -n %s %s:\ngot  %s\nwant exit %d\nstdout:\n%s", ns.Name, s.args, r, s.code, indent(s.out))
			continue
		}
		if s.code != exitOK && strings.TrimSpace(r.Stderr) == "" {
			t.Errorf("mptcpd-go -n %s %s: exit %d without a word on stderr", ns.Name, s.args, r.Code)
		}
		if s.errHas != "" && !strings.Contains(r.Stderr, s.errHas) {
			t.Errorf("mptcpd-go -n %s %s: stderr\n%s\nlacks %q", ns.Name, s.args, indent(r.Stderr), s.errHas)
		}
	}
}

// lines joins endpoint lines as "endpoint show" prints them: each with a
// trailing space and a newline.
func lines(ls ...string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l)
		b.WriteString(" \n")
	}
	return b.String()
}

// TestSelftestPMNetlink runs, through the mptcpd-go command, the sequence
// of the kernel's selftest for the path manager netlink API
// (tools/testing/selftests/net/mptcp/pm_netlink.sh): defaults, add/get/
// dump/delete, duplicates, id allocation and wrap-around, the endpoint and
// limit hard limits, and flag changes.
func TestSelftestPMNetlink(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	cli(t)
	ns := harness.NewNS(t)

	const defaultLimits = "add_addr_accepted 0 subflows 2 \n"
	runSteps(t, ns, []cliStep{
		// Defaults.
		{args: "endpoint show", out: ""},
		{args: "limits show", out: defaultLimits},

		// Simple add, get, dump.
		{args: "endpoint add 10.0.1.1"},
		{args: "endpoint add 10.0.1.2 subflow dev lo"},
		{args: "endpoint add 10.0.1.3 signal backup"},
		{args: "endpoint show id 1", out: lines("10.0.1.1 id 1")},
		{args: "endpoint show", out: lines(
			"10.0.1.1 id 1",
			"10.0.1.2 id 2 subflow dev lo",
			"10.0.1.3 id 3 signal backup",
		)},

		// Delete.
		{args: "endpoint delete id 2"},
		{args: "endpoint show id 2", code: exitKernel},
		{args: "endpoint show", out: lines(
			"10.0.1.1 id 1",
			"10.0.1.3 id 3 signal backup",
		)},

		// Duplicate address: refused, and no id consumed.
		{args: "endpoint add 10.0.1.3", code: exitKernel},
		{args: "endpoint show id 4", code: exitKernel},

		// Id increment.
		{args: "endpoint add 10.0.1.4 signal"},
		{args: "endpoint show id 4", out: lines("10.0.1.4 id 4 signal")},

		// Hard limit of 8 endpoints.
		{args: "endpoint add 10.0.1.5 signal"},
		{args: "endpoint add 10.0.1.6 signal"},
		{args: "endpoint add 10.0.1.7 signal"},
		{args: "endpoint add 10.0.1.8 signal"},
		{args: "endpoint add 10.0.1.9 signal"},
		{args: "endpoint show id 9", out: lines("10.0.1.9 id 9 signal")},
		// Beyond the kernel's terse text, a hint in plain words.
		{args: "endpoint add 10.0.1.10 signal", code: exitKernel, errHas: "at most 8 endpoints"},
		{args: "endpoint show id 10", code: exitKernel},
		{args: "endpoint delete id 9"},
	})
	if t.Failed() {
		return
	}

	// Id wrap-around: ids 10..255 are each used once; the next id wraps to
	// the lowest free one. One batch file keeps it fast.
	var batch strings.Builder
	for i := 10; i <= 255; i++ {
		fmt.Fprintf(&batch, "endpoint add 10.0.0.9 id %d\nendpoint delete id %d\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "wrap-around.batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mptcpdgo(t, ns, "-b", file); r.Code != exitOK || r.Stdout != "" {
		t.Fatalf("mptcpd-go -n %s -b FILE with %d add/delete pairs: %s\nwant exit 0 and no output", ns.Name, 255-10+1, r)
	}

	runSteps(t, ns, []cliStep{
		{args: "endpoint show", out: lines(
			"10.0.1.1 id 1",
			"10.0.1.3 id 3 signal backup",
			"10.0.1.4 id 4 signal",
			"10.0.1.5 id 5 signal",
			"10.0.1.6 id 6 signal",
			"10.0.1.7 id 7 signal",
			"10.0.1.8 id 8 signal",
		)},

		// Flush.
		{args: "endpoint flush"},
		{args: "endpoint show", out: ""},

		// Limits above the hard limit are refused and change nothing.
		{args: "limits set add_addr_accepted 9 subflows 1", code: exitKernel},
		{args: "limits show", out: defaultLimits},
		{args: "limits set add_addr_accepted 1 subflows 9", code: exitKernel},
		{args: "limits show", out: defaultLimits},
		{args: "limits set subflows 9", code: exitKernel},
		{args: "limits set add_addr_accepted 9", code: exitKernel},
		{args: "limits show", out: defaultLimits},
		{args: "limits set add_addr_accepted 8 subflows 8"},
		{args: "limits show", out: "add_addr_accepted 8 subflows 8 \n"},

		// Set ids: the next id follows the highest one, then wraps to the
		// lowest free one.
		{args: "endpoint flush"},
		{args: "endpoint add 10.0.1.1"},
		{args: "endpoint add 10.0.1.2"},
		{args: "endpoint add 10.0.1.3 id 100"},
		{args: "endpoint add 10.0.1.4"},
		{args: "endpoint add 10.0.1.5 id 254"},
		{args: "endpoint add 10.0.1.6"},
		{args: "endpoint add 10.0.1.7"},
		{args: "endpoint add 10.0.1.8"},
		{args: "endpoint show", out: lines(
			"10.0.1.1 id 1",
			"10.0.1.2 id 2",
			"10.0.1.7 id 3",
			"10.0.1.8 id 4",
			"10.0.1.3 id 100",
			"10.0.1.4 id 101",
			"10.0.1.5 id 254",
			"10.0.1.6 id 255",
		)},

		// Wrap-around ids.
		{args: "endpoint flush"},
		{args: "endpoint add 10.0.0.1"},
		{args: "endpoint add 10.0.0.2 id 254"},
		{args: "endpoint add 10.0.0.3"},
		{args: "endpoint add 10.0.0.4"},
		{args: "endpoint add 10.0.0.5 id 253"},
		{args: "endpoint add 10.0.0.6"},
		{args: "endpoint add 10.0.0.7"},
		{args: "endpoint add 10.0.0.8"},
		{args: "endpoint show", out: lines(
			"10.0.0.1 id 1",
			"10.0.0.4 id 2",
			"10.0.0.6 id 3",
			"10.0.0.7 id 4",
			"10.0.0.8 id 5",
			"10.0.0.5 id 253",
			"10.0.0.2 id 254",
			"10.0.0.3 id 255",
		)},

		// Set flags, by address and by id.
		{args: "endpoint flush"},
		{args: "endpoint add 10.0.1.1 subflow"},
		{args: "endpoint change 10.0.1.1 backup"},
		{args: "endpoint show", out: lines("10.0.1.1 id 1 subflow backup")},
		{args: "endpoint change 10.0.1.1 nobackup"},
		{args: "endpoint show", out: lines("10.0.1.1 id 1 subflow")},
		{args: "endpoint change id 1 fullmesh"},
		{args: "endpoint show", out: lines("10.0.1.1 id 1 subflow fullmesh")},
		{args: "endpoint change id 1 nofullmesh"},
		{args: "endpoint show", out: lines("10.0.1.1 id 1 subflow")},
		{args: "endpoint change id 1 backup fullmesh"},
		{args: "endpoint show", out: lines("10.0.1.1 id 1 subflow backup fullmesh")},
	})
}
