package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// metricsPort is the daemon's metrics port in its namespace, on loopback
// (metrics_listen = "9464" means 127.0.0.1:9464): each test's daemon has
// a namespace of its own, so the port is always free.
const metricsPort = "9464"

// TestMetricsKernelMode starts the daemon with metrics_listen, gives it an
// endpoint to own and one someone else added, opens an MPTCP connection,
// and scrapes /metrics from inside the namespace: the endpoint counts, the
// reconcile counters, the rtnetlink events and the kernel's MPTcpExt
// counters (the fallback ones included) are there with sensible values.
func TestMetricsKernelMode(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	s := newDaemonSetup(t, fmt.Sprintf("metrics_listen = %q\n", metricsPort), map[string]string{
		"10-veth.toml": ifaceFile("veth1*", []string{"subflow"}, alsoWithout),
	})
	if1 := s.veth(t, "veth1")
	s.ns.AddAddr(t, "veth1", "10.1.0.1/24")
	// Someone else's endpoint, on no interface.
	s.ipMptcp(t, "endpoint", "add", "10.9.0.1", "id", "50", "signal")
	d := s.start(t)
	d.waitReady(t)
	d.waitEndpoints(t, ep("10.1.0.1", fSubflow, if1), ep("10.9.0.1", fSignal, 0))

	// An MPTCP handshake on loopback moves the kernel's counters.
	ln := s.ns.ListenMPTCP(t, "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := s.ns.DialMPTCP(ctx, t, "", ln.Addr().String()); err != nil {
		t.Fatalf("MPTCP connection on loopback: %v", err)
	}

	var m map[string]float64
	var lastText string
	d.waitFor(t, "metrics with both endpoints and the handshake", func() (bool, string) {
		var text string
		var err error
		m, text, err = scrapeInNS(ctx, s.ns, "127.0.0.1:"+metricsPort)
		lastText = text
		if err != nil {
			return false, err.Error()
		}
		return m[`mptcpd_endpoints{iface="veth1",owner="mptcpd"}`] == 1 &&
			m[`mptcpd_endpoints{iface="",owner="foreign"}`] == 1 &&
			m[`mptcpd_kernel_mptcpext_total{counter="MPCapableSYNRX"}`] >= 1, text
	})

	for _, c := range []struct {
		key      string
		ok       func(float64) bool
		sensible string
	}{
		{`mptcpd_info{mode="kernel"}`, eq(1), "1"},
		{`mptcpd_endpoints{iface="veth1",owner="foreign"}`, eq(0), "0"},
		{`mptcpd_reconciles_total`, atLeast(1), ">= 1"},
		{`mptcpd_reconcile_duration_seconds_count`, atLeast(1), ">= 1"},
		{`mptcpd_reconcile_duration_seconds_sum`, func(v float64) bool { return v > 0 }, "> 0"},
		{`mptcpd_reconcile_failures_total`, eq(0), "0"},
		{`mptcpd_reconcile_errors_total`, eq(0), "0"},
		{`mptcpd_reconcile_last_timestamp_seconds`, atLeast(1e9), "a Unix time"},
		{`mptcpd_events_total{source="rtnetlink",type="addr"}`, atLeast(1), ">= 1"},
		{`mptcpd_events_total{source="rtnetlink",type="link"}`, atLeast(1), ">= 1"},
		{`mptcpd_events_lost_total{source="rtnetlink"}`, eq(0), "0"},
		{`mptcpd_kernel_mptcpext_total{counter="MPCapableSYNTX"}`, atLeast(1), ">= 1"},
		{`mptcpd_kernel_mptcpext_total{counter="MPCapableFallbackACK"}`, eq(0), "0 (no middlebox on loopback)"},
		{`mptcpd_kernel_mptcpext_total{counter="MPCapableFallbackSYNACK"}`, eq(0), "0 (no middlebox on loopback)"},
		{`mptcpd_kernel_mptcpext_current{counter="MPCurrEstab"}`, atLeast(1), ">= 1"},
		{`process_open_fds`, atLeast(1), ">= 1"},
	} {
		v, found := m[c.key]
		if !found || !c.ok(v) {
			t.Errorf("%s = %v (found %v), want %s", c.key, v, found, c.sensible)
		}
	}
	if testing.Verbose() {
		t.Logf("scrape:\n%s", lastText)
	}
	// No path manager and no proxies in kernel mode.
	for key := range m {
		if strings.HasPrefix(key, "mptcpd_pm_") || strings.HasPrefix(key, "mptcpd_proxy_") {
			t.Errorf("kernel mode exports %s", key)
		}
	}
}

func eq(want float64) func(float64) bool     { return func(v float64) bool { return v == want } }
func atLeast(min float64) func(float64) bool { return func(v float64) bool { return v >= min } }

// scrapeInNS gets http://addr/metrics with a connection made inside ns
// and returns the samples by "name{labels}", and the text.
func scrapeInNS(ctx context.Context, ns *harness.NS, addr string) (map[string]float64, string, error) {
	tr := &http.Transport{
		// The socket is created on a thread inside the namespace.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, string(body), fmt.Errorf("scrape: status %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, string(body), fmt.Errorf("scrape: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, string(body), fmt.Errorf("scrape: bad value in %q: %w", line, err)
		}
		m[line[:i]] = v
	}
	return m, string(body), nil
}
