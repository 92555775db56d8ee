package cli

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// ev builds an event the way the kernel sends it and decodes it with genl,
// so the printer sees exactly the attributes that were present.
func ev(t *testing.T, typ genl.EventType, attrs func(ae *netlink.AttributeEncoder)) genl.Event {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	if attrs != nil {
		attrs(ae)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	e, err := genl.DecodeEvent(uint8(typ), b)
	if err != nil {
		t.Fatalf("decode event: %v", err)
	}
	return e
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func v4(s string) []byte {
	var a [4]byte
	fmt.Sscanf(s, "%d.%d.%d.%d", &a[0], &a[1], &a[2], &a[3])
	return a[:]
}

func v6(t *testing.T, s string) []byte {
	a, ok := parseAddr(s)
	if !ok {
		t.Fatalf("bad address %s", s)
	}
	b := a.addr.As16()
	return b[:]
}

// monitorEvents is one event of each kind, with the attributes the kernel
// sends, plus the odd cases of ipmptcp.c's printer.
func monitorEvents(t *testing.T) []any {
	conn := func(ae *netlink.AttributeEncoder) {
		ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
		ae.Uint16(uint16(genl.AttrFamily), unix.AF_INET)
		ae.Bytes(uint16(genl.AttrSaddr4), v4("10.0.0.1"))
		ae.Bytes(uint16(genl.AttrDaddr4), v4("10.0.0.2"))
		ae.Bytes(uint16(genl.AttrSport), be16(40000))
		ae.Bytes(uint16(genl.AttrDport), be16(80))
		ae.Uint8(uint16(genl.AttrLocID), 0)
		ae.Uint8(uint16(genl.AttrRemID), 0)
	}
	return []any{
		ev(t, genl.EventCreated, func(ae *netlink.AttributeEncoder) {
			conn(ae)
			ae.Uint16(uint16(genl.AttrFlags), uint16(genl.EventFlagServerSide))
		}),
		ev(t, genl.EventEstablished, func(ae *netlink.AttributeEncoder) {
			conn(ae)
			ae.Uint8(uint16(genl.AttrServerSide), 1)
			ae.Uint16(uint16(genl.AttrFlags), uint16(genl.EventFlagDenyJoinID0)|0x4)
		}),
		ev(t, genl.EventAnnounced, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
			ae.Uint8(uint16(genl.AttrRemID), 2)
			ae.Uint16(uint16(genl.AttrFamily), unix.AF_INET6)
			ae.Bytes(uint16(genl.AttrDaddr6), v6(t, "2001:db8::2"))
			ae.Bytes(uint16(genl.AttrDport), be16(8080))
		}),
		ev(t, genl.EventRemoved, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
			ae.Uint8(uint16(genl.AttrRemID), 2)
		}),
		ev(t, genl.EventSubEstablished, func(ae *netlink.AttributeEncoder) {
			conn(ae)
			ae.Uint8(uint16(genl.AttrLocID), 1)
			ae.Uint8(uint16(genl.AttrBackup), 1)
			ae.Uint32(uint16(genl.AttrIfIdx), 3)
		}),
		genlLost(),
		ev(t, genl.EventSubClosed, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
			ae.Bytes(uint16(genl.AttrSaddr6), v6(t, "::ffff:10.0.0.1"))
			ae.Bytes(uint16(genl.AttrDaddr6), v6(t, "2001:db8::2"))
			ae.Bytes(uint16(genl.AttrSport), be16(1))
			ae.Bytes(uint16(genl.AttrDport), be16(2))
			ae.Uint8(uint16(genl.AttrBackup), 0)
			ae.Uint8(uint16(genl.AttrError), 111)
			ae.Uint32(uint16(genl.AttrIfIdx), 99)
			ae.Uint32(uint16(genl.AttrResetReason), 1)
			ae.Uint32(uint16(genl.AttrResetFlags), 5)
		}),
		ev(t, genl.EventSubPriority, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0)
			ae.Uint8(uint16(genl.AttrBackup), 1)
			ae.Uint32(uint16(genl.AttrIfIdx), 0)
			ae.Uint32(uint16(genl.AttrResetFlags), 0)
		}),
		ev(t, genl.EventListenerCreated, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(uint16(genl.AttrFamily), unix.AF_INET)
			ae.Bytes(uint16(genl.AttrSaddr4), v4("10.0.0.4"))
			ae.Bytes(uint16(genl.AttrSport), be16(1234))
		}),
		ev(t, genl.EventListenerClosed, func(ae *netlink.AttributeEncoder) {
			ae.Uint16(uint16(genl.AttrFamily), unix.AF_INET6)
			ae.Bytes(uint16(genl.AttrSaddr6), v6(t, "2001:db8::4"))
			ae.Bytes(uint16(genl.AttrSport), be16(1234))
		}),
		ev(t, genl.EventClosed, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
		}),
		ev(t, 42, func(ae *netlink.AttributeEncoder) {
			ae.Uint32(uint16(genl.AttrToken), 0x0a0b0c0d)
		}),
	}
}

func genlLost() error {
	return fmt.Errorf("receive mptcp events: %w", &genl.Error{Op: "receive mptcp events", Kind: genl.ErrEventsLost, Errno: unix.ENOBUFS})
}

const lostLine = "netlink receive error No buffer space available (105)\n"

// TestMonitorOutput checks the event printer byte for byte. iproute2 6.1
// prints "[%14s]" and no JSON for monitor, so the expected bytes follow
// the current ipmptcp.c's mptcp_monitor_msg ("[%16s]", print_0xhex as a
// "%#x" string in JSON, ...) and json_writer.c.
func TestMonitorOutput(t *testing.T) {
	evs := monitorEvents(t)
	text := "[         CREATED] token=0a0b0c0d remid=0 locid=0 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=40000 dport=80 server_side\n" +
		"[     ESTABLISHED] token=0a0b0c0d remid=0 locid=0 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=40000 dport=80 server_side deny_join_id0 flags=0x4\n" +
		"[       ANNOUNCED] token=0a0b0c0d remid=2 daddr6=2001:db8::2 dport=8080\n" +
		"[         REMOVED] token=0a0b0c0d remid=2\n" +
		"[  SF_ESTABLISHED] token=0a0b0c0d remid=0 locid=1 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=40000 dport=80 backup=1 ifindex=3 dev=eth1\n" +
		"[       SF_CLOSED] token=0a0b0c0d saddr6=::ffff:10.0.0.1 daddr6=2001:db8::2 sport=1 dport=2 backup=0 error=111 ifindex=99 dev=if99 reset_reason=1 reset_flags=0x5\n" +
		"[         SF_PRIO] token=00000000 backup=1 ifindex=0 reset_flags=0\n" +
		"[LISTENER_CREATED] saddr4=10.0.0.4 sport=1234\n" +
		"[ LISTENER_CLOSED] saddr6=2001:db8::4 sport=1234\n" +
		"[          CLOSED] token=0a0b0c0d\n" +
		"[UNKNOWN 42]\n"
	jsonObjs := []string{
		`{"event":"CREATED","token":"0xa0b0c0d","remid":0,"locid":0,"saddr4":"10.0.0.1","daddr4":"10.0.0.2","sport":40000,"dport":80,"server_side":true}`,
		`{"event":"ESTABLISHED","token":"0xa0b0c0d","remid":0,"locid":0,"saddr4":"10.0.0.1","daddr4":"10.0.0.2","sport":40000,"dport":80,"server_side":true,"deny_join_id0":true,"flags":"0x4"}`,
		`{"event":"ANNOUNCED","token":"0xa0b0c0d","remid":2,"daddr6":"2001:db8::2","dport":8080}`,
		`{"event":"REMOVED","token":"0xa0b0c0d","remid":2}`,
		`{"event":"SF_ESTABLISHED","token":"0xa0b0c0d","remid":0,"locid":1,"saddr4":"10.0.0.1","daddr4":"10.0.0.2","sport":40000,"dport":80,"backup":1,"ifindex":3,"dev":"eth1"}`,
		`{"event":"SF_CLOSED","token":"0xa0b0c0d","saddr6":"::ffff:10.0.0.1","daddr6":"2001:db8::2","sport":1,"dport":2,"backup":0,"error":111,"ifindex":99,"dev":"if99","reset_reason":1,"reset_flags":"0x5"}`,
		`{"event":"SF_PRIO","token":"0","backup":1,"ifindex":0,"reset_flags":"0"}`,
		`{"event":"LISTENER_CREATED","saddr4":"10.0.0.4","sport":1234}`,
		`{"event":"LISTENER_CLOSED","saddr6":"2001:db8::4","sport":1234}`,
		`{"event":"CLOSED","token":"0xa0b0c0d"}`,
		`{"event":"UNKNOWN 42"}`,
	}
	json := "["
	for i, o := range jsonObjs {
		if i > 0 {
			json += ","
		}
		json += o
	}
	json += "]\n"

	tests := []cliCase{
		{name: "text", args: "monitor", fake: &fakeBackend{events: evs}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: text, Stderr: lostLine}},
		{name: "json", args: "-j monitor", fake: &fakeBackend{events: evs}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: json, Stderr: lostLine}},
		{name: "rcvbuf", args: "-rc 65536 mon", fake: &fakeBackend{events: evs[3:4]}, calls: []string{"Subscribe(65536)"},
			want: result{Stdout: "[         REMOVED] token=0a0b0c0d remid=2\n"}},
		{name: "timestamp", args: "-t monitor", fake: &fakeBackend{events: evs[10:12]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "Timestamp: Tue Mar  5 07:08:09 2024 42 usec\n[          CLOSED] token=0a0b0c0d\n" +
				"Timestamp: Tue Mar  5 07:08:09 2024 42 usec\n[UNKNOWN 42]\n"}},
		{name: "short timestamp", args: "-ts monitor", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "[2024-03-05T07:08:09.000042] [          CLOSED] token=0a0b0c0d\n"}},
		{name: "timestamp json", args: "-t -j monitor", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: `[{"timestamp":"Tue Mar  5 07:08:09 2024 42 usec","event":"CLOSED","token":"0xa0b0c0d"}]` + "\n"}},
		{name: "pretty json with short timestamp", args: "-ts -j -p monitor", fake: &fakeBackend{events: evs[9:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "[ {\n" +
				"        \"timestamp_short\": \"2024-03-05T07:08:09.000042\",\n" +
				"        \"event\": \"LISTENER_CLOSED\",\n" +
				"        \"saddr6\": \"2001:db8::4\",\n" +
				"        \"sport\": 1234\n" +
				"    },{\n" +
				"        \"timestamp_short\": \"2024-03-05T07:08:09.000042\",\n" +
				"        \"event\": \"CLOSED\",\n" +
				"        \"token\": \"0xa0b0c0d\"\n" +
				"    } ]\n"}},
		{name: "no events json", args: "-j monitor", calls: []string{"Subscribe(0)"}, want: result{Stdout: "[]\n"}},
		{name: "no events pretty json", args: "-j -p monitor", calls: []string{"Subscribe(0)"}, want: result{Stdout: "[ ]\n"}},
		{name: "subscribe refused", args: "monitor",
			fake:  &fakeBackend{errs: map[string]error{"Subscribe": kerr("subscribe", unix.EPERM, "")}},
			calls: []string{"Subscribe(0)"},
			want: result{Stderr: "Error: can't subscribe to mptcp events: Operation not permitted.\n" +
				"hint: joining the mptcp_pm_events group needs CAP_NET_ADMIN in the network namespace: run as root\n", Code: 255}},
		{name: "receive error", args: "-j monitor", fake: &fakeBackend{events: []any{evs[10], fmt.Errorf("receive: %w", unix.EBADF)}},
			calls: []string{"Subscribe(0)"},
			want: result{Stdout: `[{"event":"CLOSED","token":"0xa0b0c0d"}]` + "\n",
				Stderr: "Error: receiving mptcp events failed: Bad file descriptor.\n", Code: 254}},
		{name: "arguments refused", args: "monitor now",
			want: result{Stderr: "Error: command \"now\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
		// Piped output is plain unless colour is forced.
		{name: "colour forced", args: "monitor --color=always", fake: &fakeBackend{events: []any{evs[0], evs[3], evs[6], evs[10]}}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "\x1b[32m[         CREATED]\x1b[0m token=0a0b0c0d remid=0 locid=0 saddr4=10.0.0.1 daddr4=10.0.0.2 sport=40000 dport=80 server_side\n" +
				"\x1b[31m[         REMOVED]\x1b[0m token=0a0b0c0d remid=2\n" +
				"\x1b[31m[       SF_CLOSED]\x1b[0m token=0a0b0c0d saddr6=::ffff:10.0.0.1 daddr6=2001:db8::2 sport=1 dport=2 backup=0 error=111 ifindex=99 dev=if99 reset_reason=1 reset_flags=0x5\n" +
				"\x1b[31m[          CLOSED]\x1b[0m token=0a0b0c0d\n"}},
		{name: "bare colour flag", args: "monitor --color", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "\x1b[31m[          CLOSED]\x1b[0m token=0a0b0c0d\n"}},
		{name: "colour auto when piped", args: "monitor --color=auto", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "[          CLOSED] token=0a0b0c0d\n"}},
		{name: "colour never", args: "monitor --color=never", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: "[          CLOSED] token=0a0b0c0d\n"}},
		{name: "no colour in json", args: "-j monitor --color=always", fake: &fakeBackend{events: evs[10:11]}, calls: []string{"Subscribe(0)"},
			want: result{Stdout: `[{"event":"CLOSED","token":"0xa0b0c0d"}]` + "\n"}},
		{name: "bad colour", args: "monitor --color=sometimes",
			want: result{Stderr: "Error: monitor: --color takes always, auto or never, not \"sometimes\".\n", Code: 255}},
		{name: "colour prefix only", args: "monitor --colorful",
			want: result{Stderr: "Error: command \"--colorful\" is unknown, try \"mptcpd-go help\".\n", Code: 255}},
	}
	runCases(t, tests)
}

// TestUseColor: --color wins; auto honours NO_COLOR and TERM=dumb, and
// colours only a terminal (never a buffer).
func TestUseColor(t *testing.T) {
	for _, tt := range []struct {
		name    string
		when    colorWhen
		noColor string
		term    string
		want    bool
	}{
		{"always", colorAlways, "", "xterm", true},
		{"always beats NO_COLOR", colorAlways, "1", "xterm", true},
		{"never", colorNever, "", "xterm", false},
		{"auto on a pipe", colorAuto, "", "xterm", false},
		{"auto with NO_COLOR", colorAuto, "1", "xterm", false},
		{"auto with TERM=dumb", colorAuto, "", "dumb", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			t.Setenv("TERM", tt.term)
			s := &session{env: Env{Stdout: &bytes.Buffer{}}}
			if got := s.useColor(tt.when); got != tt.want {
				t.Errorf("useColor(%s) = %v, want %v", tt.when.String(), got, tt.want)
			}
		})
	}
	var w colorWhen
	for _, v := range []string{"always", "auto", "never", "true", "false", ""} {
		if err := w.Set(v); err != nil {
			t.Errorf("Set(%q): %v", v, err)
		}
	}
}
