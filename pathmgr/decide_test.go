package pathmgr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
)

var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }
func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func pfx(s string) netip.Prefix  { return netip.MustParsePrefix(s) }
func at(ms int) time.Time        { return t0.Add(time.Duration(ms) * time.Millisecond) }
func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ip(s))
	}
	return out
}

// t0 is the tests' "now".
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const tok = 0xd00436b6

// The client host of the tests: eth0 (carries the initial subflow),
// wlan0, and wwan0 (metered); dual-stack.
func snapshot() endpoints.Snapshot {
	link := func(idx int, name string, as ...string) endpoints.Link {
		l := endpoints.Link{Index: idx, Name: name, Kind: "device", Up: true, Running: true}
		for _, a := range as {
			l.Addrs = append(l.Addrs, endpoints.Addr{Prefix: pfx(a)})
		}
		return l
	}
	return endpoints.Snapshot{Links: []endpoints.Link{
		{Index: 1, Name: "lo", Up: true, Running: true, Loopback: true,
			Addrs: []endpoints.Addr{{Prefix: pfx("127.0.0.1/8")}}},
		link(2, "eth0", "10.0.1.1/24", "fd00:1::1/64"),
		link(3, "wlan0", "10.0.2.1/24", "fd00:2::1/64"),
		link(4, "wwan0", "10.0.3.1/24"),
	}}
}

// client is an established client connection over eth0.
func client() ConnState {
	return ConnState{
		Token: tok, Side: ClientSide, Established: true,
		Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"),
		Subflows: []Subflow{{Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"), State: SubflowUp, Initial: true}},
	}
}

func create(local string, id uint8, ifindex int, remote string, backup bool) CreateSubflow {
	return CreateSubflow{Token: tok, Local: LocalEndpoint{Addr: ip(local), ID: id, Ifindex: ifindex, Backup: backup}, Remote: ap(remote)}
}

// with returns c changed by fn.
func with(c ConnState, fn func(*ConnState)) ConnState {
	fn(&c)
	return c
}

func announced(c *ConnState) {
	c.RemoteAddrs = []RemoteAddr{{ID: 1, Addr: ap("198.51.100.7:0")}}
}

func TestDecideClient(t *testing.T) {
	metered := IfaceRule{Names: []string{"wwan*"}, Metered: true}
	for _, tt := range []struct {
		name string
		conn ConnState
		cfg  Config
		want []Action
	}{
		{"not established yet", with(client(), func(c *ConnState) { c.Established = false }), Config{}, nil},
		{"unmanaged", with(client(), func(c *ConnState) { c.Unmanaged = true }), Config{}, nil},
		{"loopback connection", with(client(), func(c *ConnState) {
			c.Local, c.Remote = ap("127.0.0.1:40000"), ap("127.0.0.1:443")
		}), Config{}, nil},
		{"link-local connection", with(client(), func(c *ConnState) {
			c.Local, c.Remote = ap("[fe80::1%eth0]:40000"), ap("[fe80::2%eth0]:443")
		}), Config{}, nil},
		{"throughput: every other interface to the peer", client(), Config{Preset: PresetThroughput}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", false),
		}},
		{"zero preset is throughput", client(), Config{}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", false),
		}},
		{"throughput: full mesh with an announced address (port 0 = the connection's)", with(client(), announced), Config{}, []Action{
			create("10.0.1.1", 1, 2, "198.51.100.7:443", false),
			create("10.0.2.1", 2, 3, "203.0.113.9:443", false),
			create("10.0.2.1", 2, 3, "198.51.100.7:443", false),
			create("10.0.3.1", 3, 4, "203.0.113.9:443", false),
			create("10.0.3.1", 3, 4, "198.51.100.7:443", false),
		}},
		{"announced address with its own port", with(client(), func(c *ConnState) {
			c.RemoteAddrs = []RemoteAddr{{ID: 4, Addr: ap("198.51.100.7:8443")}}
		}), Config{MaxSubflows: 1}, []Action{
			create("10.0.1.1", 1, 2, "198.51.100.7:8443", false),
		}},
		{"backup preset: every further path is backup", client(), Config{Preset: PresetBackup}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", true),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", true),
		}},
		{"cost preset: metered interfaces are backup", client(), Config{Preset: PresetCost, Interfaces: []IfaceRule{metered}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", true),
		}},
		{"cost preset without metered interfaces", client(), Config{Preset: PresetCost}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", false),
		}},
		{"sspi: one subflow per interface, initial interface has one", with(client(), announced), Config{Preset: PresetSSPI}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 2, 4, "203.0.113.9:443", false),
		}},
		{"sspi: interface with a subflow gets no second", with(client(), func(c *ConnState) {
			announced(c)
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.2.1:0"), Remote: ap("198.51.100.7:443"), LocalID: 1, Ifindex: 3, State: SubflowPending, Ours: true})
		}), Config{Preset: PresetSSPI}, []Action{
			create("10.0.3.1", 2, 4, "203.0.113.9:443", false),
		}},
		{"explicit rule overrides the preset", client(), Config{Preset: PresetBackup, Interfaces: []IfaceRule{
			{Names: []string{"wlan0"}, Use: UseSubflow}, {Names: []string{"wwan0"}, Use: UseNever},
		}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"Match function", client(), Config{Interfaces: []IfaceRule{
			{Match: func(n string) bool { return n != "wlan0" }, Use: UseNever},
		}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"never for the peer's prefix", client(), Config{Rules: []ConnRule{{Dst: pfx("203.0.113.0/24"), Action: Never}}}, nil},
		{"rule for another prefix", client(), Config{MaxSubflows: 1, Rules: []ConnRule{{Dst: pfx("192.0.2.0/24"), Action: Never}}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"multipath only to 443 of the prefix: 443", client(), Config{MaxSubflows: 1, Rules: []ConnRule{
			{Dst: pfx("203.0.113.0/24"), Ports: []PortRange{Port(443)}},
			{Action: Never},
		}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"multipath only to 443 of the prefix: 80", with(client(), func(c *ConnState) {
			c.Remote = ap("203.0.113.9:80")
			c.Subflows[0].Remote = c.Remote
		}), Config{Rules: []ConnRule{
			{Dst: pfx("203.0.113.0/24"), Ports: []PortRange{Port(443)}},
			{Action: Never},
		}}, nil},
		{"port range and side", client(), Config{Rules: []ConnRule{
			{Side: ServerSide, Action: Never},
			{Ports: []PortRange{{400, 500}}, MaxSubflows: 1},
		}}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"max subflows", with(client(), announced), Config{MaxSubflows: 2}, []Action{
			create("10.0.1.1", 1, 2, "198.51.100.7:443", false),
			create("10.0.2.1", 2, 3, "203.0.113.9:443", false),
		}},
		{"pending creations count against the cap", with(client(), func(c *ConnState) {
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.2.1:0"), Remote: ap("203.0.113.9:443"), LocalID: 1, Ifindex: 3, State: SubflowPending, Ours: true})
		}), Config{MaxSubflows: 1}, nil},
		{"no duplicates of pending or established subflows", with(client(), func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 2, Addr: ip("10.0.3.1")}}
			c.Subflows = append(c.Subflows,
				Subflow{Local: ap("10.0.2.1:0"), Remote: ap("203.0.113.9:443"), LocalID: 1, Ifindex: 3, State: SubflowPending, Ours: true},
				Subflow{Local: ap("10.0.3.1:5555"), Remote: ap("203.0.113.9:443"), LocalID: 2, Ifindex: 4, State: SubflowUp, Ours: true})
		}), Config{}, nil},
		{"a subflow the peer made counts as the path", with(client(), func(c *ConnState) {
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.2.1:443"), Remote: ap("203.0.113.9:443"), LocalID: 7, State: SubflowUp})
		}), Config{}, []Action{
			create("10.0.3.1", 1, 4, "203.0.113.9:443", false),
		}},
		{"ids avoid those in use or bound", with(client(), func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("192.0.2.99")}, {ID: 3}}
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.9.9:1"), Remote: ap("203.0.113.9:443"), LocalID: 2, State: SubflowUp})
		}), Config{}, []Action{
			create("10.0.2.1", 4, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 5, 4, "203.0.113.9:443", false),
		}},
		{"a bound id is reused for its address", with(client(), func(c *ConnState) {
			c.IDs = []LocalID{{ID: 9, Addr: ip("10.0.3.1")}}
		}), Config{}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
			create("10.0.3.1", 9, 4, "203.0.113.9:443", false),
		}},
		{"deny join id 0: only announced addresses", with(client(), func(c *ConnState) {
			announced(c)
			c.DenyJoinID0 = true
		}), Config{MaxSubflows: 2}, []Action{
			create("10.0.1.1", 1, 2, "198.51.100.7:443", false),
			create("10.0.2.1", 2, 3, "198.51.100.7:443", false),
		}},
		{"ipv6 connection uses ipv6 addresses and peers only", ConnState{
			Token: tok, Side: ClientSide, Established: true,
			Local: ap("[fd00:1::1]:40000"), Remote: ap("[2001:db8::1]:443"),
			RemoteAddrs: []RemoteAddr{{ID: 1, Addr: ap("198.51.100.7:0")}, {ID: 2, Addr: ap("[2001:db8::2]:0")}},
		}, Config{}, []Action{
			create("fd00:1::1", 1, 2, "[2001:db8::2]:443", false),
			create("fd00:2::1", 2, 3, "[2001:db8::1]:443", false),
			create("fd00:2::1", 2, 3, "[2001:db8::2]:443", false),
		}},
		{"ipv4-mapped initial subflow (dual-stack socket)", with(client(), func(c *ConnState) {
			c.Local, c.Remote = ap("[::ffff:10.0.1.1]:40000"), ap("[::ffff:203.0.113.9]:443")
			c.Subflows[0].Local, c.Subflows[0].Remote = c.Local, c.Remote
		}), Config{MaxSubflows: 1}, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			view := NewLocalView(snapshot(), tt.cfg)
			got := Decide(tt.conn, view, tt.cfg, t0)
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideRetries: failed subflows wait for their backoff, then are
// retried with the same id, while their interface has its address.
func TestDecideRetries(t *testing.T) {
	failed := func(retryAt time.Time, state SubflowState) ConnState {
		return with(client(), func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}}
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.2.1:0"), Remote: ap("203.0.113.9:443"), LocalID: 1, Ifindex: 3,
				State: state, Ours: true, Failures: 3, RetryAt: retryAt})
		})
	}
	noWWAN := []IfaceRule{{Names: []string{"wwan0"}, Use: UseNever}}
	cfg := Config{Interfaces: noWWAN}
	for _, tt := range []struct {
		name string
		conn ConnState
		cfg  Config
		now  time.Time
		snap func(endpoints.Snapshot) endpoints.Snapshot
		want []Action
	}{
		{"backoff not over", failed(at(500), SubflowFailed), cfg, at(499), nil, nil},
		{"backoff over: retry with the same id", failed(at(500), SubflowFailed), cfg, at(500), nil, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
		{"abandoned: never again", failed(at(500), SubflowAbandoned), cfg, at(10_000), nil, nil},
		{"interface lost its address: no retry", failed(at(500), SubflowFailed), cfg, at(10_000), func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[2].Addrs = s.Links[2].Addrs[1:] // only fd00:2::1 left
			return s
		}, nil},
		{"interface down: no retry", failed(at(500), SubflowFailed), cfg, at(10_000), func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[2].Running = false
			return s
		}, nil},
		{"a failed path waiting counts against the cap", with(failed(at(500), SubflowFailed), func(c *ConnState) {
			announced(c)
		}), Config{Interfaces: noWWAN, MaxSubflows: 3}, at(100), nil, []Action{
			create("10.0.1.1", 2, 2, "198.51.100.7:443", false),
			create("10.0.2.1", 1, 3, "198.51.100.7:443", false),
		}},
		{"sspi: the failed subflow is the interface's one", failed(at(500), SubflowFailed), Config{Interfaces: noWWAN, Preset: PresetSSPI}, at(600), nil, []Action{
			create("10.0.2.1", 1, 3, "203.0.113.9:443", false),
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot()
			if tt.snap != nil {
				snap = tt.snap(snap)
			}
			got := Decide(tt.conn, NewLocalView(snap, tt.cfg), tt.cfg, tt.now)
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideLocalChanges: subflows whose address or interface went away
// are destroyed; a change of use flips the backup flag.
func TestDecideLocalChanges(t *testing.T) {
	up := with(client(), func(c *ConnState) {
		c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 2, Addr: ip("10.0.3.1")}}
		c.Subflows = append(c.Subflows,
			Subflow{Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443"), LocalID: 1, Ifindex: 3, State: SubflowUp, Ours: true},
			Subflow{Local: ap("10.0.3.1:5002"), Remote: ap("203.0.113.9:443"), LocalID: 2, Ifindex: 4, State: SubflowUp, Ours: true})
	})
	destroy := func(local string) DestroySubflow {
		return DestroySubflow{Token: tok, Local: ap(local), Remote: ap("203.0.113.9:443")}
	}
	for _, tt := range []struct {
		name string
		conn ConnState
		cfg  Config
		snap func(endpoints.Snapshot) endpoints.Snapshot
		want []Action
	}{
		{"all in place", up, Config{}, nil, nil},
		{"address removed", up, Config{}, func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[3].Addrs = nil
			return s
		}, []Action{destroy("10.0.3.1:5002")}},
		{"link down", up, Config{}, func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[2].Running = false
			return s
		}, []Action{destroy("10.0.2.1:5001")}},
		{"link gone entirely", up, Config{}, func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links = s.Links[:3]
			return s
		}, []Action{destroy("10.0.3.1:5002")}},
		{"interface now never", up, Config{Interfaces: []IfaceRule{{Names: []string{"wlan0"}, Use: UseNever}}}, nil,
			[]Action{destroy("10.0.2.1:5001")}},
		{"connection now never", up, Config{Rules: []ConnRule{{Action: Never}}}, nil,
			[]Action{destroy("10.0.2.1:5001"), destroy("10.0.3.1:5002")}},
		{"the initial subflow and the peer's are left alone", with(client(), func(c *ConnState) {
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.2.1:443"), Remote: ap("203.0.113.9:1234"), State: SubflowUp})
		}), Config{Interfaces: []IfaceRule{{Names: []string{"*"}, Use: UseNever}}}, nil, nil},
		{"closing subflows are not destroyed twice", with(up, func(c *ConnState) {
			c.Subflows = append([]Subflow(nil), c.Subflows...)
			c.Subflows[2].State = SubflowClosing
		}), Config{}, func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[3].Addrs = nil
			return s
		}, nil},
		{"use changed to backup", up, Config{Interfaces: []IfaceRule{{Names: []string{"wwan0"}, Use: UseBackup}}}, nil,
			[]Action{SetBackup{Token: tok, Local: ap("10.0.3.1:5002"), Remote: ap("203.0.113.9:443"), Backup: true}}},
		{"backup change in flight", with(up, func(c *ConnState) {
			c.Subflows = append([]Subflow(nil), c.Subflows...)
			c.Subflows[2].PrioPending = true
		}), Config{Preset: PresetBackup}, nil,
			[]Action{SetBackup{Token: tok, Local: ap("10.0.2.1:5001"), Remote: ap("203.0.113.9:443"), Backup: true}}},
		{"a failed backup change waits", with(up, func(c *ConnState) {
			c.Subflows = append([]Subflow(nil), c.Subflows...)
			c.Subflows[1].RetryAt = at(100)
		}), Config{Preset: PresetBackup}, nil,
			[]Action{SetBackup{Token: tok, Local: ap("10.0.3.1:5002"), Remote: ap("203.0.113.9:443"), Backup: true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot()
			if tt.snap != nil {
				snap = tt.snap(snap)
			}
			got := Decide(tt.conn, NewLocalView(snap, tt.cfg), tt.cfg, t0)
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideServer(t *testing.T) {
	server := ConnState{
		Token: tok, Side: ServerSide, Established: true,
		Local: ap("10.0.1.1:443"), Remote: ap("198.51.100.20:50000"),
		Subflows: []Subflow{{Local: ap("10.0.1.1:443"), Remote: ap("198.51.100.20:50000"), State: SubflowUp, Initial: true}},
	}
	signalAll := Config{Interfaces: []IfaceRule{{Names: []string{"eth*", "wlan*", "wwan*"}, Signal: true}}}
	announce := func(addr string, id uint8, ifindex int, port uint16) Announce {
		return Announce{Token: tok, Addr: ip(addr), ID: id, Port: port, Ifindex: ifindex}
	}
	for _, tt := range []struct {
		name string
		conn ConnState
		cfg  Config
		snap func(endpoints.Snapshot) endpoints.Snapshot
		want []Action
	}{
		{"nothing to signal", server, Config{}, nil, nil},
		{"announce signal interfaces but the initial address", server, signalAll, nil, []Action{
			announce("10.0.2.1", 1, 3, 0), announce("10.0.3.1", 2, 4, 0),
		}},
		{"with a port", server, Config{Interfaces: []IfaceRule{{Names: []string{"wlan0"}, Signal: true, Port: 8443}}}, nil, []Action{
			announce("10.0.2.1", 1, 3, 8443),
		}},
		{"never-use interfaces are not announced", server, Config{Interfaces: []IfaceRule{
			{Names: []string{"wwan0"}, Signal: true, Use: UseNever}, {Names: []string{"*"}, Signal: true},
		}}, nil, []Action{announce("10.0.2.1", 1, 3, 0)}},
		{"cap", server, Config{Interfaces: signalAll.Interfaces, MaxSubflows: 1}, nil, []Action{announce("10.0.2.1", 1, 3, 0)}},
		{"announced or pending already", with(server, func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 5, Addr: ip("10.0.3.1")}}
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnounceDone}, {ID: 5, Addr: ip("10.0.3.1"), State: AnnouncePending}}
		}), signalAll, nil, nil},
		{"failed announcement retried after its backoff", with(server, func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 5, Addr: ip("10.0.3.1")}}
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnounceFailed, RetryAt: at(1)},
				{ID: 5, Addr: ip("10.0.3.1"), State: AnnounceFailed, RetryAt: t0}}
		}), signalAll, nil, []Action{announce("10.0.3.1", 5, 4, 0)}},
		{"address gone: remove", with(server, func(c *ConnState) {
			c.IDs = []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 2, Addr: ip("10.0.3.1")}}
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnounceDone}, {ID: 2, Addr: ip("10.0.3.1"), State: AnnounceDone}}
		}), signalAll, func(s endpoints.Snapshot) endpoints.Snapshot {
			s.Links[2].Addrs = s.Links[2].Addrs[1:]
			return s
		}, []Action{Remove{Token: tok, ID: 1}}},
		{"no longer signalled: remove", with(server, func(c *ConnState) {
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnounceFailed}}
		}), Config{}, nil, []Action{Remove{Token: tok, ID: 1}}},
		{"pending and removing ones are left to finish", with(server, func(c *ConnState) {
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnouncePending}, {ID: 2, Addr: ip("10.0.3.1"), State: AnnounceRemoving}}
		}), Config{}, nil, nil},
		{"never rule: remove and announce nothing", with(server, func(c *ConnState) {
			c.Announced = []Announcement{{ID: 1, Addr: ip("10.0.2.1"), State: AnnounceDone}}
		}), Config{Interfaces: signalAll.Interfaces, Rules: []ConnRule{{Dst: pfx("198.51.100.0/24"), Action: Never}}}, nil,
			[]Action{Remove{Token: tok, ID: 1}}},
		{"server rule matches the local port", server, Config{Interfaces: signalAll.Interfaces, Rules: []ConnRule{
			{Side: ServerSide, Ports: []PortRange{Port(443)}, Action: Never},
		}}, nil, nil},
		{"ids avoid those the peer's joins use", with(server, func(c *ConnState) {
			c.Subflows = append(c.Subflows, Subflow{Local: ap("10.0.9.9:443"), Remote: ap("198.51.100.20:50001"), LocalID: 1, State: SubflowUp})
		}), Config{Interfaces: []IfaceRule{{Names: []string{"wlan0"}, Signal: true}}}, nil, []Action{announce("10.0.2.1", 2, 3, 0)}},
		{"the server opens no subflows", with(server, announced), Config{}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			snap := snapshot()
			if tt.snap != nil {
				snap = tt.snap(snap)
			}
			got := Decide(tt.conn, NewLocalView(snap, tt.cfg), tt.cfg, t0)
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideIsPure: Decide does not modify the state it is given.
func TestDecideIsPure(t *testing.T) {
	c := with(client(), announced)
	before := c.Clone()
	Decide(c, NewLocalView(snapshot(), Config{}), Config{}, t0)
	if diff := cmp.Diff(before, c, cmpNetip, cmp.AllowUnexported(ConnState{})); diff != "" {
		t.Errorf("Decide changed its argument (-before +after):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Initial: 250 * time.Millisecond, Max: 30 * time.Second}
	for attempt, want := range map[int]time.Duration{
		1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second, 5: 4 * time.Second,
		8: 30 * time.Second, 20: 30 * time.Second, 1000: 30 * time.Second,
	} {
		for seed := range uint64(50) {
			got := Backoff(p, attempt, seed)
			if got < want*8/10 || got > want*12/10 {
				t.Errorf("Backoff(attempt %d, seed %d) = %v, want %v ±20%%", attempt, seed, got, want)
			}
		}
	}
	if a, b := Backoff(p, 3, 7), Backoff(p, 3, 7); a != b {
		t.Error("Backoff is not deterministic")
	}
	distinct := map[time.Duration]bool{}
	for seed := range uint64(20) {
		distinct[Backoff(p, 3, seed)] = true
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct delays for 20 seeds: no jitter", len(distinct))
	}
	if got := Backoff(RetryPolicy{}, 1, 0); got < DefaultRetryInitial*8/10 || got > DefaultRetryInitial*12/10 {
		t.Errorf("default policy: %v", got)
	}
}
