package policy

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// TestMetricsListen checks metrics_listen's normalized value, and each
// kind of mistake with its file:line:col message.
func TestMetricsListen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		text     string // the main file
		want     string // Config.MetricsListen when wantErrs is empty
		wantErrs []string
	}{
		{name: "absent: off", text: "mode = \"kernel\"\n", want: ""},
		{name: "bare port", text: `metrics_listen = "9464"`, want: "127.0.0.1:9464"},
		{name: "colon port", text: `metrics_listen = ":9464"`, want: "127.0.0.1:9464"},
		{name: "explicit IPv4", text: `metrics_listen = "192.0.2.1:9100"`, want: "192.0.2.1:9100"},
		{name: "any IPv4", text: `metrics_listen = "0.0.0.0:9464"`, want: "0.0.0.0:9464"},
		{name: "IPv6 loopback", text: `metrics_listen = "[::1]:9464"`, want: "[::1]:9464"},
		{name: "IPv6 any", text: `metrics_listen = "[::]:9464"`, want: "[::]:9464"},
		{name: "after other keys", text: "log_level = \"warn\"\nmetrics_listen = \"65535\"", want: "127.0.0.1:65535"},
		{
			name:     "empty",
			text:     `metrics_listen = ""`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: empty; write a port like "9464" (on 127.0.0.1) or ADDRESS:PORT like "[::1]:9464"; remove the key to turn metrics off`},
		},
		{
			name:     "integer",
			text:     "\nmetrics_listen = 9464",
			wantErrs: []string{mainFile + `:2:18: metrics_listen: want a string, not an integer`},
		},
		{
			name:     "port zero",
			text:     `metrics_listen = "0"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: port "0" is not 1..65535; a scraper needs a fixed port, like 9464`},
		},
		{
			name:     "port too big",
			text:     `metrics_listen = "127.0.0.1:70000"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: port "70000" is not 1..65535; a scraper needs a fixed port, like 9464`},
		},
		{
			name:     "named port",
			text:     `metrics_listen = ":http"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: port "http" is not 1..65535; a scraper needs a fixed port, like 9464`},
		},
		{
			name:     "host name",
			text:     `metrics_listen = "localhost:9464"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: "localhost" is not an IP address; use one, like "127.0.0.1:9464" or "[::1]:9464"`},
		},
		{
			name:     "IPv6 without brackets",
			text:     `metrics_listen = "::1:9464"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: "::1:9464" is not a port or ADDRESS:PORT; write a port like "9464" (on 127.0.0.1) or ADDRESS:PORT like "[::1]:9464"; remove the key to turn metrics off`},
		},
		{
			name:     "address without port",
			text:     `metrics_listen = "127.0.0.1"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: "127.0.0.1" is not a port or ADDRESS:PORT; write a port like "9464" (on 127.0.0.1) or ADDRESS:PORT like "[::1]:9464"; remove the key to turn metrics off`},
		},
		{
			name:     "URL",
			text:     `metrics_listen = "http://127.0.0.1:9464/metrics"`,
			wantErrs: []string{mainFile + `:1:18: metrics_listen: "http://127.0.0.1:9464/metrics" is not a port or ADDRESS:PORT; write a port like "9464" (on 127.0.0.1) or ADDRESS:PORT like "[::1]:9464"; remove the key to turn metrics off`},
		},
		{
			name:     "in a table",
			text:     "[limits]\nmetrics_listen = \"9464\"",
			wantErrs: []string{mainFile + `:2:1: unknown key "metrics_listen" in [limits]; metrics_listen belongs at the top level: move it above the first [table] line (known keys: subflows, add_addr_accepted)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"etc/mptcpd-go/mptcpd-go.toml":     {Data: []byte(tc.text)},
				"etc/mptcpd-go/interfaces.d/.keep": {},
			}
			cfg, err := LoadFS(fsys, mainFile)
			var got []string
			var errs Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatalf("LoadFS: %v (%T), want Errors", err, err)
			}
			if diff := cmp.Diff(tc.wantErrs, got); diff != "" {
				t.Fatalf("errors mismatch (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, cfg.MetricsListen); diff != "" {
				t.Errorf("MetricsListen mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
