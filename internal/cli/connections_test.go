package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

func sockOf(state diag.State, local, remote string) diag.Socket {
	return diag.Socket{Family: unix.AF_INET, State: state,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote)}
}

// connFixture: a client connection with an initial and a backup subflow
// (listed in the wrong order), a fallen-back one on an old kernel, a
// listener twice (v4 and v6 dumps), and a subflow whose connection is gone.
func connFixture() ([]diag.Connection, []diag.Subflow) {
	conns := []diag.Connection{
		{Socket: sockOf(diag.StateListen, "0.0.0.0:8080", "0.0.0.0:0"), Info: &diag.Info{}},
		{Socket: sockOf(diag.StateListen, "0.0.0.0:8080", "0.0.0.0:0"), Info: &diag.Info{}},
		{Socket: sockOf(diag.StateEstablished, "10.0.2.1:40000", "10.0.9.9:443"), Info: &diag.Info{Token: 0x0000beef, Flags: diag.InfoFallback, Len: 48}},
		{Socket: diag.Socket{Family: unix.AF_INET6, State: diag.StateEstablished,
			Local: netip.MustParseAddrPort("[::ffff:10.0.1.1]:43210"), Remote: netip.MustParseAddrPort("[::ffff:10.0.1.2]:8080")},
			Info: &diag.Info{Token: 0xd00436b6, Flags: diag.InfoRemoteKeyReceived, BytesSent: 1 << 20, BytesReceived: 1500, BytesRetrans: 0, Len: 96}},
		{Socket: sockOf(diag.StateSynSent, "10.0.1.1:43999", "10.0.1.2:8080")},
	}
	sfs := []diag.Subflow{
		{Socket: sockOf(diag.StateEstablished, "10.0.2.1:50123", "10.0.1.2:8080"), TokenLocal: 0xd00436b6, IDLocal: 2,
			Flags: diag.FlagJoinLocal | diag.FlagBackupLocal, TCP: &diag.TCPInfo{RTT: 1500, RTTVar: 250, Len: 248}},
		{Socket: sockOf(diag.StateEstablished, "10.0.1.1:43210", "10.0.1.2:8080"), TokenLocal: 0xd00436b6,
			Flags: diag.FlagMPCapableLocal | diag.FlagMPCapableRemote, TCP: &diag.TCPInfo{RTT: 120, RTTVar: 60, Len: 248}},
		{Socket: sockOf(diag.StateEstablished, "10.0.2.1:40000", "10.0.9.9:443"), TokenLocal: 0xbeef, Flags: diag.FlagMPCapableLocal},
		{Socket: sockOf(diag.StateFinWait1, "10.0.3.1:1", "10.0.3.2:2"), TokenLocal: 0x1234},
	}
	return conns, sfs
}

func u64p(v uint64) *uint64 { return &v }
func u32p(v uint32) *uint32 { return &v }

func TestGroupConnections(t *testing.T) {
	got := groupConnections(connFixture())
	want := ConnectionsJSON{
		Listeners: []string{"0.0.0.0:8080"},
		Connections: []ConnJSON{
			{Token: "d00436b6", Local: "10.0.1.1:43210", Remote: "10.0.1.2:8080", State: "ESTAB", SubflowCount: 2,
				BytesSent: u64p(1 << 20), BytesReceived: u64p(1500), BytesRetrans: u64p(0),
				Subflows: []SubflowJSON{
					{Local: "10.0.1.1:43210", Remote: "10.0.1.2:8080", State: "ESTAB", Initial: true, Flags: "Mm", RTTus: u32p(120), RTTVarUs: u32p(60)},
					{Local: "10.0.2.1:50123", Remote: "10.0.1.2:8080", State: "ESTAB", Backup: true, LocalID: 2, Flags: "jb", RTTus: u32p(1500), RTTVarUs: u32p(250)},
				}},
			{Local: "10.0.1.1:43999", Remote: "10.0.1.2:8080", State: "SYN-SENT", Subflows: []SubflowJSON{}},
			{Token: "0000beef", Local: "10.0.2.1:40000", Remote: "10.0.9.9:443", State: "ESTAB", Fallback: true, SubflowCount: 1,
				Subflows: []SubflowJSON{{Local: "10.0.2.1:40000", Remote: "10.0.9.9:443", State: "ESTAB", Initial: true, Flags: "m"}}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groupConnections (-want +got):\n%s", diff)
	}
}

func TestWriteConnections(t *testing.T) {
	var b bytes.Buffer
	if err := writeConnections(&b, groupConnections(connFixture())); err != nil {
		t.Fatal(err)
	}
	const want = `TOKEN     STATE     LOCAL               REMOTE         DETAILS
d00436b6  ESTAB     10.0.1.1:43210  ->  10.0.1.2:8080  2 subflows, sent 1.0 MiB, received 1.5 KiB, retransmitted 0 B
  ├─      ESTAB     10.0.1.1:43210  ->  10.0.1.2:8080  initial, ids 0/0, rtt 0.120 ms ± 0.060 ms
  └─      ESTAB     10.0.2.1:50123  ->  10.0.1.2:8080  joined, backup, ids 2/0, rtt 1.500 ms ± 0.250 ms
-         SYN-SENT  10.0.1.1:43999  ->  10.0.1.2:8080  0 subflows
0000beef  ESTAB     10.0.2.1:40000  ->  10.0.9.9:443   1 subflow, fell back to TCP
  └─      ESTAB     10.0.2.1:40000  ->  10.0.9.9:443   initial, ids 0/0
listening: 0.0.0.0:8080
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("writeConnections (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := writeConnections(&b, groupConnections(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "no MPTCP connections\n" {
		t.Errorf("no connections: %q", got)
	}
}

// TestConnectionsJSONKeys pins the documented JSON field names.
func TestConnectionsJSONKeys(t *testing.T) {
	b, err := json.Marshal(groupConnections(connFixture()))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Connections []map[string]json.RawMessage `json:"connections"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range v.Connections[0] {
		keys = append(keys, k)
	}
	var sfs []map[string]json.RawMessage
	if err := json.Unmarshal(v.Connections[0]["subflows"], &sfs); err != nil {
		t.Fatal(err)
	}
	for k := range sfs[0] {
		keys = append(keys, "subflows[]."+k)
	}
	want := []string{"bytes_received", "bytes_retrans", "bytes_sent", "fallback", "local", "remote", "state", "subflow_count", "subflows",
		"subflows[].backup", "subflows[].flags", "subflows[].initial", "subflows[].local", "subflows[].local_id", "subflows[].remote",
		"subflows[].remote_id", "subflows[].rtt_us", "subflows[].rttvar_us", "subflows[].state", "token"}
	if diff := cmp.Diff(want, keys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

func TestConnectionsUsage(t *testing.T) {
	for _, tt := range []cliCase{
		{name: "extra argument", args: "connections now",
			want: result{Stderr: "Error: connections: unexpected argument \"now\"\nUsage:\n" + ConnectionsUsage, Code: 255}},
		{name: "unknown flag", args: "connections -x",
			want: result{Stderr: "Error: connections: flag provided but not defined: -x\nUsage:\n" + ConnectionsUsage, Code: 255}},
	} {
		runCases(t, []cliCase{tt})
	}
}
