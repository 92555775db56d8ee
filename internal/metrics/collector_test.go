package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap/zaptest"
)

// fakeSources are Sources with fixed values.
func fakeSources() Sources {
	return Sources{
		Mode: "kernel",
		Endpoints: func() []EndpointCount {
			return []EndpointCount{{Iface: "eth0", Owned: 2}, {Iface: "", Foreign: 1}}
		},
		Reconciler: func() ReconcilerStats {
			return ReconcilerStats{Runs: 4, Failed: 1, Errors: 3, TotalDuration: 1500 * time.Millisecond, Last: time.Unix(1700000000, 500000000)}
		},
		Watcher: func() WatcherStats { return WatcherStats{Link: 5, Addr: 7, Route: 9, Resubscribes: 1} },
		PathManager: func() PathManagerStats {
			return PathManagerStats{
				Connections: 2, Subflows: map[string]int{"up": 3, "pending": 1}, Untracked: 6,
				Events: map[string]uint64{"CREATED": 2, "SF_ESTABLISHED": 3}, EventsLost: 1, EventErrors: 0,
				Resyncs: 2, ResyncFailures: 0,
				Actions: map[string]uint64{"create_subflow": 4}, ActionFailures: map[string]uint64{"create_subflow": 1},
			}
		},
		Proxies: func() []ProxyStats {
			return []ProxyStats{{Role: "server", Listen: ":7000", Active: 1, Accepted: 2, Refused: 1, BytesIn: 10, BytesOut: 20,
				Paths: []ProxyPath{{Local: "10.0.0.1", Remote: "10.0.0.2", Subflows: 2, BytesSent: 30, BytesReceived: 40}}}}
		},
		Netstat: func() ([]byte, error) {
			return []byte("TcpExt: A\nTcpExt: 1\nMPTcpExt: MPCapableFallbackACK MPCapableFallbackSYNACK MPCurrEstab\nMPTcpExt: 3 4 2\n"), nil
		},
	}
}

// TestCollector checks every metric of fake sources, with its HELP text
// left out (testutil compares it; the descriptions are in collector.go).
func TestCollector(t *testing.T) {
	c := NewCollector(fakeSources())
	want := `
# TYPE mptcpd_endpoints gauge
mptcpd_endpoints{iface="",owner="foreign"} 1
mptcpd_endpoints{iface="",owner="mptcpd"} 0
mptcpd_endpoints{iface="eth0",owner="foreign"} 0
mptcpd_endpoints{iface="eth0",owner="mptcpd"} 2
# TYPE mptcpd_event_errors_total counter
mptcpd_event_errors_total{source="mptcp"} 0
# TYPE mptcpd_events_lost_total counter
mptcpd_events_lost_total{source="mptcp"} 1
mptcpd_events_lost_total{source="rtnetlink"} 1
# TYPE mptcpd_events_total counter
mptcpd_events_total{source="mptcp",type="CREATED"} 2
mptcpd_events_total{source="mptcp",type="SF_ESTABLISHED"} 3
mptcpd_events_total{source="rtnetlink",type="addr"} 7
mptcpd_events_total{source="rtnetlink",type="link"} 5
mptcpd_events_total{source="rtnetlink",type="route"} 9
# TYPE mptcpd_info gauge
mptcpd_info{mode="kernel"} 1
# TYPE mptcpd_kernel_mptcpext_current gauge
mptcpd_kernel_mptcpext_current{counter="MPCurrEstab"} 2
# TYPE mptcpd_kernel_mptcpext_total counter
mptcpd_kernel_mptcpext_total{counter="MPCapableFallbackACK"} 3
mptcpd_kernel_mptcpext_total{counter="MPCapableFallbackSYNACK"} 4
# TYPE mptcpd_pm_action_failures_total counter
mptcpd_pm_action_failures_total{action="create_subflow"} 1
# TYPE mptcpd_pm_actions_total counter
mptcpd_pm_actions_total{action="create_subflow"} 4
# TYPE mptcpd_pm_connections gauge
mptcpd_pm_connections 2
# TYPE mptcpd_pm_resync_failures_total counter
mptcpd_pm_resync_failures_total 0
# TYPE mptcpd_pm_resyncs_total counter
mptcpd_pm_resyncs_total 2
# TYPE mptcpd_pm_subflows gauge
mptcpd_pm_subflows{state="pending"} 1
mptcpd_pm_subflows{state="up"} 3
# TYPE mptcpd_pm_untracked_connections_total counter
mptcpd_pm_untracked_connections_total 6
# TYPE mptcpd_proxy_accepted_total counter
mptcpd_proxy_accepted_total{listen=":7000",role="server"} 2
# TYPE mptcpd_proxy_bytes_total counter
mptcpd_proxy_bytes_total{direction="in",listen=":7000",role="server"} 10
mptcpd_proxy_bytes_total{direction="out",listen=":7000",role="server"} 20
# TYPE mptcpd_proxy_connections gauge
mptcpd_proxy_connections{listen=":7000",role="server"} 1
# TYPE mptcpd_proxy_path_bytes_total counter
mptcpd_proxy_path_bytes_total{direction="received",listen=":7000",local="10.0.0.1",remote="10.0.0.2",role="server"} 40
mptcpd_proxy_path_bytes_total{direction="sent",listen=":7000",local="10.0.0.1",remote="10.0.0.2",role="server"} 30
# TYPE mptcpd_proxy_path_subflows_total counter
mptcpd_proxy_path_subflows_total{listen=":7000",local="10.0.0.1",remote="10.0.0.2",role="server"} 2
# TYPE mptcpd_proxy_refused_total counter
mptcpd_proxy_refused_total{listen=":7000",role="server"} 1
# TYPE mptcpd_reconcile_duration_seconds summary
mptcpd_reconcile_duration_seconds_sum 1.5
mptcpd_reconcile_duration_seconds_count 4
# TYPE mptcpd_reconcile_errors_total counter
mptcpd_reconcile_errors_total 3
# TYPE mptcpd_reconcile_failures_total counter
mptcpd_reconcile_failures_total 1
# TYPE mptcpd_reconcile_last_timestamp_seconds gauge
mptcpd_reconcile_last_timestamp_seconds 1.7000000005e+09
# TYPE mptcpd_reconciles_total counter
mptcpd_reconciles_total 4
`
	got := withoutHelp(t, c)
	if diff := cmp.Diff(strings.TrimSpace(want), strings.TrimSpace(got)); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	// The linter checks names, units and HELP texts.
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// withoutHelp gathers c with a pedantic registry, which checks the
// metrics' consistency, in the text format without the # HELP lines.
func withoutHelp(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	for l := range strings.SplitSeq(b.String(), "\n") {
		if !strings.HasPrefix(l, "# HELP ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestCollectorPartial: without sources, only mptcpd_info; a kernel
// without MPTcpExt gives no kernel counters, and a netstat file that cannot
// be read or parsed is an error of the scrape, not a panic.
func TestCollectorPartial(t *testing.T) {
	for _, tc := range []struct {
		name    string
		netstat func() ([]byte, error)
		wantErr string
	}{
		{name: "no netstat"},
		{name: "no MPTcpExt", netstat: func() ([]byte, error) { return []byte("TcpExt: A\nTcpExt: 1\n"), nil }},
		{name: "unreadable", netstat: func() ([]byte, error) { return nil, errors.New("boom") }, wantErr: "read the kernel's MPTCP counters: boom"},
		{name: "garbage", netstat: func() ([]byte, error) { return []byte("MPTcpExt: A\n"), nil }, wantErr: "parse the kernel's MPTCP counters: malformed netstat counters: line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCollector(Sources{Mode: "userspace", Netstat: tc.netstat})
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c)
			mfs, err := reg.Gather()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Gather error = %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			var names []string
			for _, mf := range mfs {
				names = append(names, mf.GetName())
			}
			if diff := cmp.Diff([]string{"mptcpd_info"}, names); diff != "" {
				t.Errorf("families (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServer scrapes a Server over HTTP and stops it.
func TestServer(t *testing.T) {
	src := fakeSources()
	src.Netstat = func() ([]byte, error) { return nil, errors.New("boom") }
	reg, err := NewRegistry(src)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + s.Addr().String() + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A failing source does not hide the others.
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{"mptcpd_info{mode=\"kernel\"} 1", "mptcpd_reconciles_total 4", "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the scrape lacks %q:\n%s", want, body)
		}
	}
	if resp, err := http.Get("http://" + s.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET / = %d, want 404", resp.StatusCode)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := http.Get("http://" + s.Addr().String() + Path); err == nil {
		t.Error("the server still answers after Run returned")
	}
}

// TestListenInUse: a port in use fails Listen with a hint.
func TestListenInUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t)
	s, err := Listen("127.0.0.1:0", reg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	_, err = Listen(s.Addr().String(), reg, log)
	if err == nil || !strings.Contains(err.Error(), "choose a free port, or remove metrics_listen") {
		t.Errorf("Listen on a used port: %v", err)
	}
}
