package genl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFlagsString(t *testing.T) {
	tests := []struct {
		f           Flags
		want        string
		wantNames   []string
		wantUnknown Flags
	}{
		{0, "", nil, 0},
		{FlagSignal, "signal", []string{"signal"}, 0},
		{FlagSignal | FlagSubflow | FlagBackup | FlagFullmesh | FlagImplicit | FlagLaminar,
			"signal subflow backup fullmesh implicit laminar",
			[]string{"signal", "subflow", "backup", "fullmesh", "implicit", "laminar"}, 0},
		{FlagBackup | FlagSignal, "signal backup", []string{"signal", "backup"}, 0},
		{FlagSubflow | 1<<8 | 1<<31, "subflow 0x80000100", []string{"subflow"}, 1<<8 | 1<<31},
		{1 << 6, "0x40", nil, 1 << 6},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint32(tt.f), got, tt.want)
		}
		names, unknown := tt.f.Names()
		if diff := cmp.Diff(tt.wantNames, names); diff != "" {
			t.Errorf("Flags(%#x).Names() names (-want +got):\n%s", uint32(tt.f), diff)
		}
		if unknown != tt.wantUnknown {
			t.Errorf("Flags(%#x).Names() unknown = %#x, want %#x", uint32(tt.f), uint32(unknown), uint32(tt.wantUnknown))
		}
	}
}

func TestParseFlag(t *testing.T) {
	for _, fn := range flagNames {
		got, err := ParseFlag(fn.name)
		if err != nil || got != fn.flag {
			t.Errorf("ParseFlag(%q) = %v, %v; want %v, nil", fn.name, got, err, fn.flag)
		}
		// Every name parses back to its flag.
		if s := fn.flag.String(); s != fn.name {
			t.Errorf("%#x.String() = %q, want %q", uint32(fn.flag), s, fn.name)
		}
	}
	for _, bad := range []string{"", "Signal", "nobackup", "signal,subflow", "0x1"} {
		if got, err := ParseFlag(bad); err == nil {
			t.Errorf("ParseFlag(%q) = %v, nil; want an error", bad, got)
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		in      string
		want    Flags
		wantErr bool
	}{
		{"", 0, false},
		{" , ", 0, false},
		{"signal", FlagSignal, false},
		{"signal subflow", FlagSignal | FlagSubflow, false},
		{"signal,backup", FlagSignal | FlagBackup, false},
		{" fullmesh,, laminar  implicit ", FlagFullmesh | FlagLaminar | FlagImplicit, false},
		{"signal signal", FlagSignal, false},
		{"signal bogus", 0, true},
		{"signal\tsubflow", 0, true}, // only spaces and commas separate
	}
	for _, tt := range tests {
		got, err := ParseFlags(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	// String and ParseFlags round trip for every combination of known flags.
	for f := Flags(0); f < 1<<len(flagNames); f++ {
		got, err := ParseFlags(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFlags(%q) = %v, %v; want %v", f.String(), got, err, f)
		}
	}
}

func TestCommandString(t *testing.T) {
	want := map[Command]string{
		CmdAddAddr:        "add-addr",
		CmdDelAddr:        "del-addr",
		CmdGetAddr:        "get-addr",
		CmdFlushAddrs:     "flush-addrs",
		CmdSetLimits:      "set-limits",
		CmdGetLimits:      "get-limits",
		CmdSetFlags:       "set-flags",
		CmdAnnounce:       "announce",
		CmdRemove:         "remove",
		CmdSubflowCreate:  "subflow-create",
		CmdSubflowDestroy: "subflow-destroy",
		0:                 "command(0)",
		12:                "command(12)",
		255:               "command(255)",
	}
	for c, w := range want {
		if got := c.String(); got != w {
			t.Errorf("Command(%d).String() = %q, want %q", uint8(c), got, w)
		}
	}
	// The constants have the kernel's values.
	for i, c := range allCommands {
		if int(c) != i+1 {
			t.Errorf("%s = %d, want %d", c, c, i+1)
		}
	}
}

func TestEventTypeString(t *testing.T) {
	want := map[EventType]string{
		EventCreated:         "CREATED",
		EventEstablished:     "ESTABLISHED",
		EventClosed:          "CLOSED",
		EventAnnounced:       "ANNOUNCED",
		EventRemoved:         "REMOVED",
		EventSubEstablished:  "SF_ESTABLISHED",
		EventSubClosed:       "SF_CLOSED",
		EventSubPriority:     "SF_PRIO",
		EventListenerCreated: "LISTENER_CREATED",
		EventListenerClosed:  "LISTENER_CLOSED",
		0:                    "UNKNOWN 0",
		4:                    "UNKNOWN 4",
		200:                  "UNKNOWN 200",
	}
	for e, w := range want {
		if got := e.String(); got != w {
			t.Errorf("EventType(%d).String() = %q, want %q", uint8(e), got, w)
		}
	}
	// The constants have the kernel's values (MPTCP_EVENT_*).
	values := map[EventType]uint8{
		EventCreated: 1, EventEstablished: 2, EventClosed: 3, EventAnnounced: 6, EventRemoved: 7,
		EventSubEstablished: 10, EventSubClosed: 11, EventSubPriority: 13,
		EventListenerCreated: 15, EventListenerClosed: 16,
	}
	for e, v := range values {
		if uint8(e) != v {
			t.Errorf("%s = %d, want %d", e, uint8(e), v)
		}
	}
}

func TestAttrSet(t *testing.T) {
	var s AttrSet
	s = s.With(AttrToken).With(AttrServerSide).With(63).With(64).With(255)
	for a := EventAttr(0); a < 255; a++ {
		want := a == AttrToken || a == AttrServerSide || a == 63
		if got := s.Has(a); got != want {
			t.Errorf("Has(%d) = %t, want %t", a, got, want)
		}
	}
}
