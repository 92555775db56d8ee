package policy

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"testing/fstest"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// FuzzLoad loads arbitrary bytes as the main file and as an interface
// file. Loading must never panic; every error must point into its file
// (line ≥ 1, col ≥ 1, within the text); and a policy that loads must be one
// the kernel accepts and that Describe, Match and Wants can use.
func FuzzLoad(f *testing.F) {
	// The seeds are in testdata/fuzz/FuzzLoad.
	f.Fuzz(func(t *testing.T, mainText, ifaceText []byte) {
		const ifaceFile = "/etc/mptcpd-go/interfaces.d/10-fuzz.toml"
		fsys := fstest.MapFS{
			"etc/mptcpd-go/mptcpd-go.toml":            {Data: mainText},
			"etc/mptcpd-go/interfaces.d/10-fuzz.toml": {Data: ifaceText},
		}
		c, err := LoadFS(fsys, "")
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("LoadFS error %v (%T) is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				var text []byte
				switch e.File {
				case mainFile:
					text = mainText
				case ifaceFile:
					text = ifaceText
				default:
					t.Fatalf("error in unexpected file: %v", e)
				}
				if !inside(text, e.Line, e.Col) {
					t.Errorf("error position %d:%d is not in the file: %v", e.Line, e.Col, e)
				}
				if e.Msg == "" {
					t.Errorf("error without a message: %#v", e)
				}
			}
			return
		}

		if err := c.Describe(io.Discard); err != nil {
			t.Fatal(err)
		}
		for _, l := range []Link{{Name: "eth0"}, {Name: "wlan0", Kind: "device"}, {Name: "lo", Loopback: true}} {
			p := c.Match(l)
			if p == nil {
				continue
			}
			for _, a := range []string{"192.0.2.1/24", "fe80::1/64", "fd00::1/64", "127.0.0.1/8"} {
				p.Wants(Addr{Prefix: netip.MustParsePrefix(a), Temporary: true}, false)
			}
		}
		for _, l := range []Limit{c.Subflows, c.AddAddrAccepted} {
			if !l.Auto && l.Value > genl.MaxLimit {
				t.Errorf("limit %d above %d loaded", l.Value, genl.MaxLimit)
			}
		}
		for _, p := range c.Interfaces {
			if p.Flags&genl.FlagSignal != 0 && p.Flags&genl.FlagFullmesh != 0 {
				t.Errorf("%s: signal and fullmesh loaded", p.File)
			}
			if p.Port != 0 && p.Flags&genl.FlagSignal == 0 {
				t.Errorf("%s: port without signal loaded", p.File)
			}
			if p.Ignore && p.Flags != 0 {
				t.Errorf("%s: ignore with flags loaded", p.File)
			}
			if !p.Ignore && p.Flags&^(genl.FlagSignal|genl.FlagSubflow|genl.FlagBackup|genl.FlagFullmesh|genl.FlagLaminar) != 0 {
				t.Errorf("%s: flags %v loaded", p.File, p.Flags)
			}
			if len(p.Names) == 0 {
				t.Errorf("%s: no names loaded", p.File)
			}
			for _, g := range p.Names {
				if !validGlob(g) {
					t.Errorf("%s: bad glob %q loaded", p.File, g)
				}
			}
		}
	})
}

// inside reports whether line:col is a position in text: on one of its
// lines, at most one past the line's end. A UTF-8 byte order mark, which
// the parser skips, does not count.
func inside(text []byte, line, col int) bool {
	text = bytes.TrimPrefix(text, []byte("\ufeff"))
	lines := bytes.Split(text, []byte("\n"))
	return line >= 1 && line <= len(lines) && col >= 1 && col <= len(lines[line-1])+1
}
