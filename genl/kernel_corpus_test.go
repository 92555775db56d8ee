package genl

// The files testdata/fuzz/*/kernel-6.18-* are messages captured from a Linux
// 6.18 kernel (x86-64) in a scratch network namespace: the controller's
// description of mptcp_pm, GET_ADDR and GET_LIMITS replies, and the events of
// MPTCP connections over IPv4, IPv6 and IPv4-mapped IPv6, with signal
// endpoints (with and without port) and an endpoint switched to backup. They
// seed the fuzz targets and are checked here against exact expectations.

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readCorpusFile parses a seed file in the "go test fuzz v1" format,
// supporting the value kinds the seeds here use: byte, uint8 and []byte.
func readCorpusFile(t *testing.T, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: first line %q", path, lines[0])
	}
	var vals []any
	for _, l := range lines[1:] {
		typ, lit, ok := strings.Cut(strings.TrimSuffix(l, ")"), "(")
		if !ok {
			t.Fatalf("%s: bad line %q", path, l)
		}
		switch typ {
		case "byte":
			v, _, tail, err := strconv.UnquoteChar(strings.Trim(lit, "'"), '\'')
			if err != nil || tail != "" || v > 0xff {
				t.Fatalf("%s: bad byte %q", path, lit)
			}
			vals = append(vals, byte(v))
		case "uint8":
			v, err := strconv.ParseUint(lit, 0, 8)
			if err != nil {
				t.Fatalf("%s: bad uint8 %q", path, lit)
			}
			vals = append(vals, uint8(v))
		case "[]byte":
			s, err := strconv.Unquote(lit)
			if err != nil {
				t.Fatalf("%s: bad []byte %q: %v", path, lit, err)
			}
			vals = append(vals, []byte(s))
		default:
			t.Fatalf("%s: unsupported type %q", path, typ)
		}
	}
	return vals
}

// kernelCorpus returns the captured seeds of a fuzz target by file name.
func kernelCorpus(t *testing.T, target string) map[string][]any {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the captures are from a little-endian host")
	}
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "kernel-6.18-*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captured seeds for %s: %v", target, err)
	}
	seeds := map[string][]any{}
	for _, p := range paths {
		seeds[strings.TrimPrefix(filepath.Base(p), "kernel-6.18-")] = readCorpusFile(t, p)
	}
	return seeds
}

// TestKernelEvents decodes every captured event: each decodes to its typed
// struct, and Fields() gives back exactly what was decoded, so the typed
// events lose nothing a real kernel sends.
func TestKernelEvents(t *testing.T) {
	seen := map[EventType]bool{}
	for name, vals := range kernelCorpus(t, "FuzzDecodeEvent") {
		t.Run(name, func(t *testing.T) {
			cmd, attrs := vals[0].(byte), vals[1].([]byte)
			ev, err := DecodeEvent(cmd, attrs)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if _, unknown := ev.(*UnknownEvent); unknown {
				t.Fatalf("event type %d decoded as unknown", cmd)
			}
			if !strings.HasPrefix(name, ev.Type().String()+"-") && name != ev.Type().String() {
				t.Errorf("file %s decoded as %v", name, ev.Type())
			}
			raw, err := decodeEventFields(EventType(cmd), attrs)
			if err != nil {
				t.Fatalf("decodeEventFields: %v", err)
			}
			if diff := cmp.Diff(raw, ev.Fields(), cmpNetip); diff != "" {
				t.Errorf("Fields() (-decoded +got):\n%s", diff)
			}
		})
		seen[EventType(vals[0].(byte))] = true
	}
	if len(seen) != len(knownEventTypes) {
		t.Errorf("captured event types %v, want all of %v", seen, knownEventTypes)
	}
}

// TestKernelEventDetails checks a few captured events field by field.
func TestKernelEventDetails(t *testing.T) {
	seeds := kernelCorpus(t, "FuzzDecodeEvent")
	decode := func(name string) Event {
		t.Helper()
		vals, ok := seeds[name]
		if !ok {
			t.Fatalf("no seed %s", name)
		}
		ev, err := DecodeEvent(vals[0].(byte), vals[1].([]byte))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return ev
	}

	// 6.18 sends the old server-side attribute and the flags bit, and the
	// ids of the initial subflow (both 0) on CREATED.
	srv := decode("CREATED-ipv6-server").(*Created)
	if !srv.ServerSide || srv.Flags != EventFlagServerSide || srv.Local.Port() != 8081 ||
		srv.Attrs != attrSet(append(connAttrs6, AttrServerSide, AttrFlags)...) {
		t.Errorf("server-side CREATED: %+v", srv)
	}
	cli := decode("ESTABLISHED-ipv4").(*Established)
	if cli.ServerSide || cli.Flags != 0 || cli.Remote.Port() != 8080 || cli.Attrs != attrSet(connAttrs4...) {
		t.Errorf("client-side ESTABLISHED: %+v", cli)
	}
	// ANNOUNCED has no family attribute, and the dport of the connection
	// when the peer announced no port.
	ann := decode("ANNOUNCED-ipv4-port").(*Announced)
	if ann.Remote != netip.MustParseAddrPort("10.0.3.1:10100") || ann.Attrs != attrSet(AttrToken, AttrRemID, AttrDport, AttrDaddr4) {
		t.Errorf("ANNOUNCED: %+v", ann)
	}
	if f := ann.Fields(); f.Family != 0 {
		t.Errorf("ANNOUNCED Fields().Family = %d, want 0 (no family attribute)", f.Family)
	}
	prio := decode("SF_PRIO-ipv4mapped").(*SubflowPriority)
	if !prio.Backup || !prio.Local.Addr().Is4In6() || prio.Attrs != attrSet(subAttrs6...) {
		t.Errorf("SF_PRIO: %+v", prio)
	}
	sfc := decode("SF_CLOSED-ipv4-error").(*SubflowClosed)
	if sfc.Error != 111 || !sfc.Attrs.Has(AttrError) { // ECONNREFUSED: nothing listens there
		t.Errorf("SF_CLOSED: %+v", sfc)
	}
	lis := decode("LISTENER_CREATED-ipv4-port").(*ListenerCreated)
	if lis.Local != netip.MustParseAddrPort("10.0.3.1:10100") {
		t.Errorf("LISTENER_CREATED: %+v", lis)
	}
}

// TestKernelReplies decodes the captured controller, GET_ADDR and GET_LIMITS
// replies.
func TestKernelReplies(t *testing.T) {
	fam := kernelCorpus(t, "FuzzDecodeFamily")["mptcp_pm"]
	f, err := decodeFamily(fam[0].([]byte))
	if err != nil {
		t.Fatalf("decodeFamily: %v", err)
	}
	c := &Client{fam: f}
	if !c.SupportsUserspacePM() || len(c.Commands()) != len(allCommands) || f.version != familyVersion {
		t.Errorf("family: %+v", f)
	}
	for _, g := range []string{"mptcp_pm_cmds", eventGroupName} {
		if _, ok := f.groups[g]; !ok {
			t.Errorf("family lacks group %q: %v", g, f.groups)
		}
	}

	eps := kernelCorpus(t, "FuzzDecodeEndpointMessage")
	want := map[string]Endpoint{
		// Added with ifindex 1 (lo).
		"ipv4-port-ifindex": {ID: 4, Addr: netip.MustParseAddr("10.0.4.1"), Port: 10200, Flags: FlagSignal | FlagBackup, Ifindex: 1},
		"ipv6":              {ID: 5, Addr: netip.MustParseAddr("2001:db8:2::5"), Flags: FlagSubflow | FlagFullmesh},
		// Added with "ip mptcp endpoint add ::ffff:10.0.4.6".
		"ipv4-mapped": {ID: 6, Addr: netip.MustParseAddr("::ffff:10.0.4.6"), Flags: FlagSubflow},
	}
	for name, w := range want {
		got, err := decodeEndpointMessage(eps[name][0].([]byte))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(w, got, cmpNetip); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}

	l, err := decodeLimitsMessage(kernelCorpus(t, "FuzzDecodeLimitsMessage")["limits"][0].([]byte))
	if want := (Limits{Subflows: 4, AddAddrAccepted: 4}); err != nil || l != want {
		t.Errorf("limits = %+v, %v; want %+v", l, err, want)
	}
}

// TestReadCorpusFile checks the seed file parser on the formats Go writes.
func TestReadCorpusFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "seed")
	content := "go test fuzz v1\nbyte('\\x0f')\nuint8(200)\n[]byte(\"\\x00a\\xff\")\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got := readCorpusFile(t, p)
	want := []any{byte(15), uint8(200), []byte{0, 'a', 0xff}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("readCorpusFile (-want +got):\n%s", diff)
	}
}
