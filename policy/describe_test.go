package policy

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestDescribe(t *testing.T) {
	example := fstest.MapFS{}
	mount(t, example, "example", "etc/mptcpd-go")
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{
			name: "the example of the issue",
			fsys: example,
			want: `Main file: /etc/mptcpd-go/mptcpd-go.toml
  mode              kernel
  limits            subflows 4, add_addr_accepted 4
  control socket    /run/mptcpd-go/control.sock
  state file        /run/mptcpd-go/state.json
  log               level info, format console
  on stop           remove the endpoints mptcpd-go added
Interface files in /etc/mptcpd-go/interfaces.d (the first that matches applies):
  /etc/mptcpd-go/interfaces.d/10-wlan.toml
    match           name wlan* or eth1
    endpoints       flags subflow backup, priority 0
    addresses       ipv4 and ipv6, also without a default route
    skip            link-local ula temporary deprecated tentative
Interfaces no file matches, and loopback interfaces, get no endpoints.
`,
		},
		{
			name: "built-in defaults",
			fsys: fstest.MapFS{},
			want: `Main file: /etc/mptcpd-go/mptcpd-go.toml does not exist; using the built-in defaults
  mode              kernel
  limits            subflows auto, add_addr_accepted auto (auto: derived from the endpoints, at most 8)
  control socket    /run/mptcpd-go/control.sock
  state file        /run/mptcpd-go/state.json
  log               level info, format console
  on stop           remove the endpoints mptcpd-go added
Interface files: /etc/mptcpd-go/interfaces.d does not exist; using the built-in interface policy:
  embedded:99-default.toml
    match           name *
    endpoints       flags subflow, priority 0
    addresses       ipv4 and ipv6, while the interface has a default route for the family
    skip            link-local ula temporary deprecated tentative
Interfaces no file matches, and loopback interfaces, get no endpoints.
`,
		},
		{
			name: "main file without policy_dir",
			fsys: etc(map[string]string{"mptcpd-go.toml": "on_stop = \"keep\"\n[limits]\nsubflows = 2\n"}),
			want: `Main file: /etc/mptcpd-go/mptcpd-go.toml
  mode              kernel
  limits            subflows 2, add_addr_accepted auto (auto: derived from the endpoints, at most 8)
  control socket    /run/mptcpd-go/control.sock
  state file        /run/mptcpd-go/state.json
  log               level info, format console
  on stop           keep the endpoints mptcpd-go added
Interface files: /etc/mptcpd-go/interfaces.d does not exist, so no interface gets endpoints
`,
		},
		{
			name: "empty policy_dir",
			fsys: etc(map[string]string{"mptcpd-go.toml": "", "interfaces.d/README": ""}),
			want: `Main file: /etc/mptcpd-go/mptcpd-go.toml
  mode              kernel
  limits            subflows auto, add_addr_accepted auto (auto: derived from the endpoints, at most 8)
  control socket    /run/mptcpd-go/control.sock
  state file        /run/mptcpd-go/state.json
  log               level info, format console
  on stop           remove the endpoints mptcpd-go added
Interface files: none in /etc/mptcpd-go/interfaces.d, so no interface gets endpoints
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadFS(tc.fsys, "")
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := c.Describe(&b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("Describe mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDescribeFull covers what the other cases do not: ignore, port,
// kind, a single family and skip = [].
func TestDescribeFull(t *testing.T) {
	fsys := fstest.MapFS{}
	mount(t, fsys, "full", "etc/mptcpd-go")
	mount(t, fsys, "full/policies", "srv/mptcp/policies")
	c, err := LoadFS(fsys, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.Describe(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  limits            subflows auto, add_addr_accepted 0 (auto: derived from the endpoints, at most 8)\n",
		"  on stop           keep the endpoints mptcpd-go added\n",
		"Interface files in /srv/mptcp/policies (the first that matches applies):\n",
		"  /srv/mptcp/policies/10-containers.toml\n    match           name veth* or docker* or br-*\n    ignore          these interfaces get no endpoints\n",
		"    addresses       ipv4 only, also without a default route\n",
		"    match           name eth* or en*, kind device or vlan\n    endpoints       flags signal subflow, port 8080, priority 10\n",
		"    skip            none\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Describe output lacks %q; it is:\n%s", want, b.String())
		}
	}
}
