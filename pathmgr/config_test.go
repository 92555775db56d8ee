package pathmgr

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	for _, p := range Presets() {
		if err := (Config{Preset: p}).Validate(); err != nil {
			t.Errorf("preset %s: %v", p, err)
		}
	}
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Preset: "fast"}, `unknown preset "fast"`},
		{Config{MaxSubflows: 300}, "max subflows 300"},
		{Config{Interfaces: []IfaceRule{{Use: UseBackup}}}, "matches nothing"},
		{Config{Interfaces: []IfaceRule{{Names: []string{"eth["}}}}, `bad pattern "eth["`},
		{Config{Interfaces: []IfaceRule{{Names: []string{"x"}, Use: 9}}}, "unknown use"},
		{Config{Rules: []ConnRule{{Ports: []PortRange{{500, 400}}}}}, "port range 500-400 is empty"},
		{Config{Rules: []ConnRule{{Side: 7}}}, "unknown side"},
		{Config{Rules: []ConnRule{{Action: 7}}}, "unknown action"},
		{Config{Retry: RetryPolicy{MaxAttempts: -1}}, "retry"},
	} {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
		}
	}
}

func TestConnRuleMatches(t *testing.T) {
	r := ConnRule{Dst: pfx("203.0.113.0/24"), Ports: []PortRange{Port(443), {8000, 8100}}}
	for _, tt := range []struct {
		side Side
		peer string
		port uint16
		want bool
	}{
		{ClientSide, "203.0.113.9", 443, true},
		{ServerSide, "203.0.113.9", 8050, true},
		{ClientSide, "::ffff:203.0.113.9", 443, true},
		{ClientSide, "203.0.113.9", 80, false},
		{ClientSide, "203.0.114.9", 443, false},
		{ClientSide, "2001:db8::1", 443, false},
	} {
		if got := r.matches(tt.side, ip(tt.peer), tt.port); got != tt.want {
			t.Errorf("matches(%s, %s, %d) = %v, want %v", tt.side, tt.peer, tt.port, got, tt.want)
		}
	}
	if (ConnRule{Side: ServerSide}).matches(ClientSide, ip("1.2.3.4"), 1) {
		t.Error("server rule matched a client connection")
	}
}

func TestNewLocalView(t *testing.T) {
	snap := endpoints.Snapshot{Links: []endpoints.Link{
		{Index: 1, Name: "lo", Running: true, Loopback: true, Addrs: []endpoints.Addr{{Prefix: pfx("127.0.0.1/8")}}},
		{Index: 5, Name: "wwan0", Running: true, Addrs: []endpoints.Addr{{Prefix: pfx("10.9.0.2/30")}}},
		{Index: 2, Name: "eth0", Running: true, DefaultV4: true, Addrs: []endpoints.Addr{
			{Prefix: pfx("10.0.1.9/24"), Deprecated: true},
			{Prefix: pfx("10.0.1.1/24")},
			{Prefix: pfx("fe80::1/64"), LinkLocal: true},
			{Prefix: pfx("fd00:1::5/64"), Tentative: true},
			{Prefix: pfx("fd00:1::6/64"), DADFailed: true},
			{Prefix: pfx("2001:db8::1/64")},
		}},
		{Index: 3, Name: "wlan0", Up: true, Running: false, Addrs: []endpoints.Addr{{Prefix: pfx("10.0.2.1/24")}}},
		{Index: 4, Name: "dummy0", Running: true},
	}}
	cfg := Config{Preset: PresetCost, Interfaces: []IfaceRule{
		{Names: []string{"wwan*"}, Metered: true, Signal: true, Port: 8443},
	}}
	want := LocalView{Ifaces: []LocalIface{
		{Index: 2, Name: "eth0", Use: UseSubflow, Addrs: addrs("10.0.1.1", "2001:db8::1", "10.0.1.9")},
		{Index: 5, Name: "wwan0", Use: UseBackup, Signal: true, Port: 8443, Addrs: addrs("10.9.0.2")},
	}}
	got := NewLocalView(snap, cfg)
	if diff := cmp.Diff(want, got, cmpNetip); diff != "" {
		t.Errorf("NewLocalView (-want +got):\n%s", diff)
	}
	if !got.Equal(want) || got.Equal(LocalView{}) {
		t.Error("Equal is wrong")
	}
	if ifc, ok := got.IfaceOf(ip("::ffff:10.9.0.2")); !ok || ifc.Name != "wwan0" {
		t.Errorf("IfaceOf(mapped) = %v %v", ifc, ok)
	}
	if a, ok := got.Ifaces[0].first(false); !ok || a != ip("2001:db8::1") {
		t.Errorf("first v6 = %v", a)
	}
}

func TestPresets(t *testing.T) {
	metered := IfaceFacts{Name: "wwan0", Metered: true}
	plain := IfaceFacts{Name: "eth0", DefaultRoute: true}
	for _, tt := range []struct {
		p              Preset
		plain, metered Use
		one            bool
	}{
		{"", UseSubflow, UseSubflow, false},
		{PresetThroughput, UseSubflow, UseSubflow, false},
		{PresetBackup, UseBackup, UseBackup, false},
		{PresetCost, UseSubflow, UseBackup, false},
		{PresetSSPI, UseSubflow, UseSubflow, true},
	} {
		if got := [2]Use{tt.p.Use(plain), tt.p.Use(metered)}; got != [2]Use{tt.plain, tt.metered} {
			t.Errorf("%q: uses %v, want %v %v", tt.p, got, tt.plain, tt.metered)
		}
		if tt.p.OnePerInterface() != tt.one {
			t.Errorf("%q: OnePerInterface %v", tt.p, !tt.one)
		}
	}
}

func TestStrings(t *testing.T) {
	for got, want := range map[string]string{
		UseDefault.String(): "default", UseSubflow.String(): "subflow", UseBackup.String(): "backup", UseNever.String(): "never",
		Use(9).String(): "use(9)", AnySide.String(): "any", ClientSide.String(): "client", ServerSide.String(): "server",
		Side(9).String(): "side(9)", Multipath.String(): "multipath", Never.String(): "never", RuleAction(9).String(): "action(9)",
		SubflowPending.String(): "pending", SubflowUp.String(): "up", SubflowFailed.String(): "failed",
		SubflowClosing.String(): "closing", SubflowAbandoned.String(): "abandoned", SubflowState(0).String(): "state(0)",
		AnnouncePending.String(): "pending", AnnounceDone.String(): "announced", AnnounceFailed.String(): "failed",
		AnnounceRemoving.String(): "removing", AnnounceState(0).String(): "state(0)",
		create("10.0.2.1", 1, 3, "203.0.113.9:443", true).String(): "create subflow 10.0.2.1 id 1 ifindex 3 -> 203.0.113.9:443 backup on token d00436b6",
		Remove{Token: 1, ID: 2}.String():                           "remove id 2 on token 00000001",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
