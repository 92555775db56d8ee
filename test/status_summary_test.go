package test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// TestStatusSummary: a real daemon with one interface in use and one
// without a default route. The summary comes first, says what is
// multipath and what to do about veth2, and piped output has no colour
// (unless forced); -j carries the same problem.
func TestStatusSummary(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, "[limits]\nsubflows = 2\n", map[string]string{
		"10-a.toml": ifaceFile("veth1*", []string{"subflow"}, alsoWithout),
		"20-b.toml": ifaceFile("veth2*", []string{"subflow"}, ""),
	})
	if1 := s.veth(t, "veth1")
	s.veth(t, "veth2")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	s.ns.AddAddr(t, "veth2", "10.2.0.1/24")
	waitRunning(t, s.ns, "veth1", "veth2")
	d := s.start(t)
	d.waitReady(t)
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1))
	d.waitLimits(t, genl.Limits{Subflows: 2, AddAddrAccepted: 1})
	d.waitStatus(t, "the status to show the endpoint", func(st daemon.Status) bool { return len(st.Owned) == 1 })

	r := mptcpdgoHost(t, "status", "--socket", s.socket)
	if r.Code != exitOK {
		t.Fatalf("status: %v", r)
	}
	t.Logf("status:\n%s", r.Stdout)
	summary, details, ok := strings.Cut(r.Stdout, "\n\n")
	if !ok || !strings.HasPrefix(details, "mptcpd-go daemon (pid ") {
		t.Fatalf("status does not start with a summary followed by the details:\n%s", r.Stdout)
	}
	for _, want := range []string{
		"Multipath: on, kernel path manager: 1 endpoint on 1 of 2 interfaces (veth1)\n",
		"  veth1  in use: 10.1.0.1 (subflow)\n",
		"  veth2  not in use: no default route, so it gets no endpoint\n",
		"  ! veth2 has no default route, so it gets no endpoint.\n",
		"    Fix: if it should carry subflows anyway, set also_without_default_route = true in " + s.ifacePath("20-b.toml") + ".\n",
	} {
		if !strings.Contains(summary+"\n", want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if strings.ContainsRune(r.Stdout, 0x1b) {
		t.Errorf("piped status has escape sequences:\n%q", r.Stdout)
	}
	if r := mptcpdgoHost(t, "status", "--color=always", "--socket", s.socket); !strings.Contains(r.Stdout, "\x1b[") {
		t.Errorf("status --color=always has no colour: %v", r)
	}

	r = mptcpdgoHost(t, "status", "-j", "--socket", s.socket)
	var st daemon.Status
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status -j: %v\n%s", err, r.Stdout)
	}
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0].What, "veth2 has no default route") {
		t.Errorf("status -j problems = %+v, want the one about veth2", st.Problems)
	}
}
