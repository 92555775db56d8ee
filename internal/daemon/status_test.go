package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/ansi"
)

// representativeStatus is a status with something in every section: a
// loopback, a matched, an ignored, an unmatched and a link without carrier;
// owned and foreign endpoints, capped and skipped wants, errors and a
// refused reload.
func representativeStatus(t *testing.T) Status {
	t.Helper()
	cfg := loadConfig(t, "[limits]\nsubflows = 4\n", map[string]string{
		"10-eth.toml": `
[match]
name = ["eth*"]
[endpoint]
flags = ["subflow", "backup"]
`,
		"20-wlan.toml": `
[match]
name = ["wlan*"]
[endpoint]
flags = ["signal"]
port = 8080
also_without_default_route = true
`,
		"30-docker.toml": "ignore = true\n[match]\nname = [\"docker*\"]\n",
	})
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		lo(),
		withDefault(link(2, "eth0", addr("192.0.2.10/24"), addr("2001:db8::10/64"),
			endpoints.Addr{Prefix: netip.MustParsePrefix("fe80::10/64"), LinkLocal: true}), true, false),
		{Index: 3, Name: "wlan0", Kind: "device", Up: true, Addrs: []endpoints.Addr{addr("198.51.100.7/24")}},
		{Index: 4, Name: "docker0", Kind: "bridge", Addrs: []endpoints.Addr{addr("172.17.0.1/16")}},
		{Index: 5, Name: "tun0", Kind: "tun", Up: true, Running: true},
	}}
	wlan := endpoints.Want{Iface: "wlan0", Ifindex: 3, Addr: netip.MustParseAddr("198.51.100.7"), Port: 8080, Flags: genl.FlagSignal}
	rs := endpoints.Status{
		LastReconcile: time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC),
		Duration:      1234 * time.Microsecond,
		Reconciles:    42,
		Errors:        []error{errors.New("set the kernel's mptcp limits: operation not permitted")},
		Owned: []endpoints.OwnedEndpoint{{
			Addr: netip.MustParseAddr("192.0.2.10"), ID: 3, Flags: genl.FlagSubflow | genl.FlagBackup, Ifindex: 2, Iface: "eth0",
		}},
		Report: endpoints.Report{
			Foreign: []endpoints.Foreign{{
				Endpoint: genl.Endpoint{ID: 1, Addr: netip.MustParseAddr("10.9.9.9"), Port: 443, Flags: genl.FlagSignal},
				Note:     "10.9.9.9 port 443 (id 1) was not created by mptcpd-go; left alone",
			}},
			Capped: []endpoints.Capped{{
				Want: endpoints.Want{Iface: "eth0", Ifindex: 2, Addr: netip.MustParseAddr("192.0.2.11"), Flags: genl.FlagSubflow},
				Note: "eth0 192.0.2.11 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)",
			}},
			Skipped: []endpoints.Skipped{{Want: wlan, Note: "wlan0 198.51.100.7 port 8080: wlan0 has no carrier; waiting for it"}},
			Summary: "in sync; 2 of 8 endpoints in use (1 ours, 1 foreign); 1 capped",
		},
		Limits: genl.Limits{Subflows: 4, AddAddrAccepted: 1},
	}
	st := buildStatus(cfg, snap, rs, errors.New("/etc/mptcpd-go/interfaces.d/40-x.toml:3:9: flags: unknown flag \"bakup\"; did you mean \"backup\"?"))
	st.PID = 4242
	return st
}

func TestStatusText(t *testing.T) {
	st := representativeStatus(t)
	var b bytes.Buffer
	if err := st.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	const want = `mptcpd-go daemon (pid 4242), mode kernel, policy /etc/mptcpd-go/mptcpd-go.toml
limits: subflows 4 (policy 4), add_addr_accepted 1 (policy auto (1))
last reconcile: 2025-03-04T05:06:07Z (1.2 ms), 42 so far
in sync; 2 of 8 endpoints in use (1 ours, 1 foreign); 1 capped

interfaces:
  lo (up): no matching policy
    127.0.0.1/8: no endpoint: loopback interface
    ::1/128: no endpoint: loopback interface
  eth0 (up): /etc/mptcpd-go/interfaces.d/10-eth.toml
    192.0.2.10/24: endpoint
    2001:db8::10/64: no endpoint: the interface has no ipv6 default route (set also_without_default_route = true in /etc/mptcpd-go/interfaces.d/10-eth.toml to use it anyway)
    fe80::10/64: no endpoint: link-local address, which skip in /etc/mptcpd-go/interfaces.d/10-eth.toml leaves out
  wlan0 (up, no carrier): /etc/mptcpd-go/interfaces.d/20-wlan.toml
    198.51.100.7/24: endpoint
  docker0 (down): /etc/mptcpd-go/interfaces.d/30-docker.toml (ignored)
    172.17.0.1/16: no endpoint: the interface is ignored (ignore = true in /etc/mptcpd-go/interfaces.d/30-docker.toml)
  tun0 (up): no matching policy

endpoints managed by mptcpd-go:
  id 3 192.0.2.10 subflow backup on eth0

endpoints managed by someone else (left alone, but they take slots):
  id 1 10.9.9.9 port 443 signal

wanted but not in the kernel:
  eth0 192.0.2.11: eth0 192.0.2.11 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)
  wlan0 198.51.100.7: wlan0 198.51.100.7 port 8080: wlan0 has no carrier; waiting for it

errors:
  set the kernel's mptcp limits: operation not permitted
  last reload refused (previous policy stays in force): /etc/mptcpd-go/interfaces.d/40-x.toml:3:9: flags: unknown flag "bakup"; did you mean "backup"?
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteText mismatch (-want +got):\n%s", diff)
	}
}

// TestStatusTextEmpty: a daemon that has not reconciled yet, with the
// built-in policy and nothing to manage.
func TestStatusTextEmpty(t *testing.T) {
	st := Status{PID: 1, Mode: "kernel", Config: "/etc/mptcpd-go/mptcpd-go.toml", Embedded: true,
		Limits: LimitsStatus{Subflows: 2, AddAddrAccepted: 1, PolicySubflows: "auto (2)", PolicyAddAddrAccept: "auto (1)"}}
	var b bytes.Buffer
	if err := st.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	const want = `mptcpd-go daemon (pid 1), mode kernel, policy /etc/mptcpd-go/mptcpd-go.toml (not found: built-in default policy)
limits: subflows 2 (policy auto (2)), add_addr_accepted 1 (policy auto (1))

interfaces:

endpoints managed by mptcpd-go:
  none
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteText mismatch (-want +got):\n%s", diff)
	}
}

func TestBuildStatus(t *testing.T) {
	st := representativeStatus(t)
	want := Status{
		PID:    4242,
		Mode:   "kernel",
		Config: "/etc/mptcpd-go/mptcpd-go.toml",
		PolicyFiles: []string{
			"/etc/mptcpd-go/mptcpd-go.toml",
			ifaceFile("10-eth.toml"),
			ifaceFile("20-wlan.toml"),
			ifaceFile("30-docker.toml"),
		},
		// 2 wants (eth0 192.0.2.10 and wlan0, whose missing carrier is the
		// reconciler's business), 1 of them subflow.
		Limits: LimitsStatus{Subflows: 4, AddAddrAccepted: 1, PolicySubflows: "4", PolicyAddAddrAccept: "auto (1)"},
		Owned: []EndpointStatus{
			{ID: 3, Addr: "192.0.2.10", Flags: []string{"subflow", "backup"}, Iface: "eth0"},
		},
		Foreign: []EndpointStatus{
			{ID: 1, Addr: "10.9.9.9", Port: 443, Flags: []string{"signal"},
				Note: "10.9.9.9 port 443 (id 1) was not created by mptcpd-go; left alone"},
		},
		NotAdded: []NotAdded{
			{Iface: "eth0", Addr: "192.0.2.11", Reason: "eth0 192.0.2.11 not added: the kernel allows at most 8 endpoints and 8 are in use (1 foreign)", Capped: true},
			{Iface: "wlan0", Addr: "198.51.100.7", Reason: "wlan0 198.51.100.7 port 8080: wlan0 has no carrier; waiting for it"},
		},
		Summary:       "in sync; 2 of 8 endpoints in use (1 ours, 1 foreign); 1 capped",
		LastReconcile: time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC),
		ReconcileMS:   1.234,
		Reconciles:    42,
		Errors:        []string{"set the kernel's mptcp limits: operation not permitted"},
		ReloadError:   "/etc/mptcpd-go/interfaces.d/40-x.toml:3:9: flags: unknown flag \"bakup\"; did you mean \"backup\"?",
	}
	// The interfaces are checked by TestStatusText; here only their shape.
	got := st
	got.Interfaces = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buildStatus mismatch (-want +got):\n%s", diff)
	}
	var names []string
	for _, is := range st.Interfaces {
		names = append(names, is.Name)
	}
	if diff := cmp.Diff([]string{"lo", "eth0", "wlan0", "docker0", "tun0"}, names); diff != "" {
		t.Errorf("interfaces mismatch (-want +got):\n%s", diff)
	}
	eth0 := st.Interfaces[1]
	wantEth0 := IfaceStatus{Name: "eth0", Index: 2, Kind: "device", Up: true, Running: true, DefaultV4: true,
		Policy: ifaceFile("10-eth.toml"), Addrs: eth0.Addrs}
	if diff := cmp.Diff(wantEth0, eth0); diff != "" {
		t.Errorf("eth0 mismatch (-want +got):\n%s", diff)
	}
	if docker := st.Interfaces[3]; !docker.Ignored || docker.Policy != ifaceFile("30-docker.toml") {
		t.Errorf("docker0: ignored %v by %q, want ignored by 30-docker.toml", docker.Ignored, docker.Policy)
	}
}

// TestStatusJSONKeys pins the JSON keys of `status -j`: scripts rely on
// them. Empty lists must be [] (not null), so that they can be iterated.
func TestStatusJSONKeys(t *testing.T) {
	b, err := json.Marshal(representativeStatus(t))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	got := jsonKeys(v)
	want := []string{
		"config",
		"embedded_policy",
		"errors",
		"errors[]",
		"foreign_endpoints",
		"foreign_endpoints[].addr",
		"foreign_endpoints[].endpoint_id",
		"foreign_endpoints[].flags",
		"foreign_endpoints[].flags[]",
		"foreign_endpoints[].note",
		"foreign_endpoints[].port",
		"interfaces",
		"interfaces[].addresses",
		"interfaces[].addresses[].addr",
		"interfaces[].addresses[].wanted",
		"interfaces[].addresses[].why",
		"interfaces[].default_route_v4",
		"interfaces[].default_route_v6",
		"interfaces[].iface",
		"interfaces[].ifindex",
		"interfaces[].ignored",
		"interfaces[].kind",
		"interfaces[].policy",
		"interfaces[].running",
		"interfaces[].up",
		"last_reconcile",
		"last_reconcile_ms",
		"last_reload_error",
		"limits",
		"limits.add_addr_accepted",
		"limits.policy_add_addr_accepted",
		"limits.policy_subflows",
		"limits.subflows",
		"mode",
		"not_added",
		"not_added[].addr",
		"not_added[].capped",
		"not_added[].iface",
		"not_added[].reason",
		"owned_endpoints",
		"owned_endpoints[].addr",
		"owned_endpoints[].endpoint_id",
		"owned_endpoints[].flags",
		"owned_endpoints[].flags[]",
		"owned_endpoints[].iface",
		"pid",
		"policy_files",
		"policy_files[]",
		"problems",
		"reconciles",
		"summary",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON keys of Status changed (-want +got):\n%s", diff)
	}

	// Round trip: what `status -j` prints decodes into the same Status.
	var back Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(representativeStatus(t), back); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
}

// TestStatusJSONEmptyLists: with nothing to report, the lists are [] and
// the optional keys are absent.
func TestStatusJSONEmptyLists(t *testing.T) {
	cfg := loadConfig(t, "", nil)
	st := buildStatus(cfg, endpoints.Snapshot{}, endpoints.Status{}, nil)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"interfaces", "owned_endpoints", "foreign_endpoints", "not_added", "errors"} {
		if got := string(m[k]); got != "[]" {
			t.Errorf("%s = %s, want []", k, got)
		}
	}
	if _, ok := m["last_reload_error"]; ok {
		t.Errorf("last_reload_error present without a reload error: %s", b)
	}
	// An owned endpoint without flags still lists them as [].
	st = buildStatus(cfg, endpoints.Snapshot{}, endpoints.Status{Owned: []endpoints.OwnedEndpoint{{Addr: netip.MustParseAddr("192.0.2.1"), ID: 1}}}, nil)
	b, err = json.Marshal(st.Owned)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[{"endpoint_id":1,"addr":"192.0.2.1","flags":[]}]`; got != want {
		t.Errorf("owned endpoints = %s, want %s", got, want)
	}
}

// jsonKeys returns the paths of all object keys in v, sorted: "." joins
// levels and "[]" stands for the elements of an array ("errors[]" for an
// array of scalars).
func jsonKeys(v any) []string {
	set := make(map[string]bool)
	var walk func(v any, prefix string)
	walk = func(v any, prefix string) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				set[p] = true
				walk(e, p)
			}
		case []any:
			for _, e := range v {
				switch e.(type) {
				case map[string]any, []any:
				default:
					set[prefix+"[]"] = true
				}
				walk(e, prefix+"[]")
			}
		}
	}
	walk(v, "")
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// summaryFixtures are the situations the summary must explain, built the
// way the daemon builds its status.
func summaryFixtures(t *testing.T) map[string]Status {
	t.Helper()
	ethPolicy := map[string]string{"10-eth.toml": "[match]\nname = [\"eth*\", \"wlan*\"]\n[endpoint]\nflags = [\"subflow\"]\n"}
	eth0 := withDefault(link(2, "eth0", addr("192.0.2.10/24")), true, false)
	wlan0 := withDefault(link(3, "wlan0", addr("198.51.100.7/24")), true, false)
	owned := func(id uint8, ip, iface string, ifindex int) endpoints.OwnedEndpoint {
		return endpoints.OwnedEndpoint{Addr: netip.MustParseAddr(ip), ID: id, Flags: genl.FlagSubflow, Ifindex: ifindex, Iface: iface}
	}
	healthyRS := endpoints.Status{
		Reconciles: 3,
		Owned:      []endpoints.OwnedEndpoint{owned(1, "192.0.2.10", "eth0", 2), owned(2, "198.51.100.7", "wlan0", 3)},
		Limits:     genl.Limits{Subflows: 2, AddAddrAccepted: 2},
		Report:     endpoints.Report{Summary: "in sync; 2 of 8 endpoints in use (2 ours)"},
	}
	fx := map[string]Status{}

	cfg := loadConfig(t, "", ethPolicy)
	snap := endpoints.Snapshot{Links: []endpoints.Link{lo(), eth0, wlan0}}
	fx["healthy kernel"] = buildStatus(cfg, snap, healthyRS, nil)

	fx["refused reload"] = buildStatus(cfg, snap, healthyRS,
		errors.New(`/etc/mptcpd-go/interfaces.d/10-eth.toml:4:10: flags: unknown flag "subflw"; did you mean "subflow"?`))

	noRoute := withDefault(wlan0, false, false)
	rs := healthyRS
	rs.Owned = rs.Owned[:1]
	rs.Limits = genl.Limits{Subflows: 1, AddAddrAccepted: 1}
	fx["no default route"] = buildStatus(cfg, endpoints.Snapshot{Links: []endpoints.Link{lo(), eth0, noRoute}}, rs, nil)

	// Eight foreign endpoints fill the table: none of ours fit, and the
	// kernel's subflow limit is below the subflow endpoints there are.
	rs = endpoints.Status{Limits: genl.Limits{Subflows: 2, AddAddrAccepted: 0}}
	for i := range 8 {
		rs.Report.Foreign = append(rs.Report.Foreign, endpoints.Foreign{
			Endpoint: genl.Endpoint{ID: uint8(i + 1), Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Flags: genl.FlagSubflow},
			Note:     "not created by mptcpd-go; left alone"})
	}
	for _, w := range []endpoints.Want{want("eth0", 2, "192.0.2.10", genl.FlagSubflow), want("wlan0", 3, "198.51.100.7", genl.FlagSubflow)} {
		rs.Report.Capped = append(rs.Report.Capped, endpoints.Capped{Want: w,
			Note: w.Iface + " " + w.Addr.String() + " not added: the kernel allows at most 8 endpoints and 8 are in use (8 foreign)"})
	}
	rs.Errors = []error{errors.New("add endpoint 192.0.2.10: no space left on device")}
	fx["endpoint cap"] = buildStatus(cfg, snap, rs, nil)

	ucfg := loadConfig(t, "mode = \"userspace\"\n", ethPolicy)
	st := buildStatus(ucfg, endpoints.Snapshot{Links: []endpoints.Link{lo(), eth0, wlan0, withDefault(link(4, "eth1", addr("203.0.113.5/24")), false, false)}},
		endpoints.Status{}, nil)
	st.Interfaces[1].Use, st.Interfaces[2].Use, st.Interfaces[3].Use = "subflow", "backup", "never"
	st.PathManager = &PMStatus{Connections: []ConnStatus{{
		Token: "0a0b0c0d", Side: "client", Established: true, Local: "192.0.2.10:40000", Remote: "203.0.113.80:443",
		Subflows: []SubflowStatus{
			{Local: "192.0.2.10:40000", Remote: "203.0.113.80:443", State: "established", Initial: true},
			{Local: "198.51.100.7:40001", Remote: "203.0.113.80:443", State: "established", Backup: true},
		},
	}}, Events: 7}
	fx["userspace"] = st

	fx["nothing usable"] = buildStatus(loadConfig(t, "", nil),
		endpoints.Snapshot{Links: []endpoints.Link{lo(), {Index: 2, Name: "eth0", Kind: "device", Up: true, Addrs: []endpoints.Addr{addr("192.0.2.10/24")}}}},
		endpoints.Status{Limits: genl.Limits{Subflows: 2}}, nil)
	return fx
}

func TestStatusSummary(t *testing.T) {
	fx := summaryFixtures(t)
	for _, tt := range []struct {
		name, want string
	}{
		{"healthy kernel", `Multipath: on, kernel path manager: 2 endpoints on 2 of 2 interfaces (eth0, wlan0)
  eth0   in use: 192.0.2.10 (subflow)
  wlan0  in use: 198.51.100.7 (subflow)
No problems found.
`},
		{"userspace", `Multipath: on, userspace path manager: 1 connection with 2 subflows; 2 of 3 interfaces (eth0, wlan0) usable
  eth0   in use: 1 subflow open (use subflow)
  wlan0  in use: 1 subflow open (use backup)
  eth1   not in use: use = never in the policy
No problems found.
`},
		{"refused reload", `Multipath: on, kernel path manager: 2 endpoints on 2 of 2 interfaces (eth0, wlan0)
  eth0   in use: 192.0.2.10 (subflow)
  wlan0  in use: 198.51.100.7 (subflow)
Problems (1):
  ! The last reload was refused, so the previous policy is still in force: /etc/mptcpd-go/interfaces.d/10-eth.toml:4:10: flags: unknown flag "subflw"; did you mean "subflow"?
    Fix: correct the file, check it with "mptcpd-go policy check", then run "mptcpd-go reload".
`},
		{"no default route", `Multipath: on, kernel path manager: 1 endpoint on 1 of 2 interfaces (eth0)
  eth0   in use: 192.0.2.10 (subflow)
  wlan0  not in use: no default route, so it gets no endpoint
Problems (1):
  ! wlan0 has no default route, so it gets no endpoint.
    Fix: if it should carry subflows anyway, set also_without_default_route = true in /etc/mptcpd-go/interfaces.d/10-eth.toml.
`},
		{"endpoint cap", `Multipath: off, kernel path manager: no endpoint in the kernel, so MPTCP connections use a single path
  eth0   not in use: 192.0.2.10: the kernel allows at most 8 endpoints and 8 are in use (8 foreign)
  wlan0  not in use: 198.51.100.7: the kernel allows at most 8 endpoints and 8 are in use (8 foreign)
Problems (3):
  ! The last reconcile failed: add endpoint 192.0.2.10: no space left on device
    Fix: the daemon retries on the next change; the daemon log ("journalctl -u mptcpd-go") has the details.
  ! The kernel's 8 endpoints are full: 2 wanted addresses not added (eth0 192.0.2.10, wlan0 198.51.100.7); endpoints mptcpd-go does not manage take 8 of them.
    Fix: delete endpoints you do not need ("mptcpd-go endpoint show" lists them), or set ignore = true for interfaces that need no multipath.
  ! The kernel allows 2 additional subflows per connection, but there are 8 subflow endpoints: some are never used.
    Fix: set subflows = 8 (or "auto") under [limits] in /etc/mptcpd-go/mptcpd-go.toml and run "mptcpd-go reload".
`},
		{"nothing usable", `Multipath: off, kernel path manager: no endpoint in the kernel, so MPTCP connections use a single path
  eth0  not in use: no carrier (cable or radio link down)
Problems (1):
  ! No interface is usable for multipath, so MPTCP connections stay on a single path.
    Fix: see why for each interface above; without a policy file only interfaces with a default route get endpoints ("mptcpd-go policy check" shows the policy in force).
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := fx[tt.name].WriteSummary(&b, false); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("WriteSummary (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStatusSummaryColor: colour only when asked, and then only as SGR
// sequences around words, so stripping them gives the plain text.
func TestStatusSummaryColor(t *testing.T) {
	for name, st := range summaryFixtures(t) {
		t.Run(name, func(t *testing.T) {
			var plain, color bytes.Buffer
			if err := st.WriteSummary(&plain, false); err != nil {
				t.Fatal(err)
			}
			if err := st.WriteSummary(&color, true); err != nil {
				t.Fatal(err)
			}
			if bytes.ContainsRune(plain.Bytes(), 0x1b) {
				t.Errorf("plain summary has escape sequences:\n%q", plain.String())
			}
			if !bytes.Contains(color.Bytes(), []byte(ansi.Reset)) {
				t.Errorf("coloured summary has no colour:\n%q", color.String())
			}
			if diff := cmp.Diff(plain.String(), sgrRe.ReplaceAllString(color.String(), "")); diff != "" {
				t.Errorf("coloured summary without its colours differs from the plain one (-plain +stripped):\n%s", diff)
			}
		})
	}
	var b bytes.Buffer
	st := summaryFixtures(t)["healthy kernel"]
	if err := st.WriteSummary(&b, true); err != nil {
		t.Fatal(err)
	}
	if want := "Multipath: " + ansi.Bold + ansi.Green + "on" + ansi.Reset + ","; !strings.HasPrefix(b.String(), want) {
		t.Errorf("coloured headline %q, want prefix %q", b.String(), want)
	}
}

var sgrRe = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestStatusReport: the summary first, then the detailed text unchanged.
func TestStatusReport(t *testing.T) {
	st := representativeStatus(t)
	var sum, text, report bytes.Buffer
	if err := st.WriteSummary(&sum, false); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteReport(&report, false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sum.String()+"\n"+text.String(), report.String()); diff != "" {
		t.Errorf("WriteReport (-want +got):\n%s", diff)
	}
	const wantSummary = `Multipath: on, kernel path manager: 1 endpoint on 1 of 4 interfaces (eth0)
  eth0     in use: 192.0.2.10 (subflow backup); 1 more address not added (see below)
  wlan0    not in use: 198.51.100.7: wlan0 has no carrier; waiting for it
  docker0  ignored: ignore = true in /etc/mptcpd-go/interfaces.d/30-docker.toml
  tun0     not in use: no IP address
Problems (3):
  ! The last reload was refused, so the previous policy is still in force: /etc/mptcpd-go/interfaces.d/40-x.toml:3:9: flags: unknown flag "bakup"; did you mean "backup"?
    Fix: correct the file, check it with "mptcpd-go policy check", then run "mptcpd-go reload".
  ! The last reconcile failed: set the kernel's mptcp limits: operation not permitted
    Fix: the daemon retries on the next change; the daemon log ("journalctl -u mptcpd-go") has the details.
  ! The kernel's 8 endpoints are full: 1 wanted address not added (eth0 192.0.2.11); endpoints mptcpd-go does not manage take 1 of them.
    Fix: delete endpoints you do not need ("mptcpd-go endpoint show" lists them), or set ignore = true for interfaces that need no multipath.
`
	if diff := cmp.Diff(wantSummary, sum.String()); diff != "" {
		t.Errorf("summary of the representative status (-want +got):\n%s", diff)
	}
	// Problems filled by the client win over Diagnose.
	st.Problems = []Problem{}
	sum.Reset()
	if err := st.WriteSummary(&sum, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "No problems found.") {
		t.Errorf("summary with Problems = [] lists problems:\n%s", sum.String())
	}
}
