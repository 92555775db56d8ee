package pathmgr

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

func TestRebuild(t *testing.T) {
	sock := func(state diag.State, local, remote string) diag.Socket {
		return diag.Socket{Family: unix.AF_INET, State: state, Local: ap(local), Remote: ap(remote)}
	}
	conns := []diag.Connection{
		{Socket: sock(diag.StateListen, "0.0.0.0:443", "0.0.0.0:0"), Info: &diag.Info{}},
		// A client connection with a join of ours and a SYN in flight.
		{Socket: sock(diag.StateEstablished, "10.0.1.1:40000", "203.0.113.9:443"),
			Info: &diag.Info{Token: 0x10, Flags: diag.InfoRemoteKeyReceived}},
		// A server connection (the listener's port), announced id 3.
		{Socket: sock(diag.StateEstablished, "10.0.1.1:443", "198.51.100.20:50000"),
			Info: &diag.Info{Token: 0x20, Flags: diag.InfoRemoteKeyReceived}},
		// Fell back to TCP.
		{Socket: sock(diag.StateEstablished, "10.0.1.1:40001", "203.0.113.9:80"),
			Info: &diag.Info{Token: 0x30, Flags: diag.InfoFallback}},
		// Not fully established yet.
		{Socket: sock(diag.StateEstablished, "10.0.1.1:40002", "203.0.113.9:443"), Info: &diag.Info{Token: 0x40}},
		// No info: skipped.
		{Socket: sock(diag.StateEstablished, "10.0.1.1:40003", "203.0.113.9:443")},
	}
	sfs := []diag.Subflow{
		{Socket: sock(diag.StateEstablished, "10.0.1.1:40000", "203.0.113.9:443"), TokenLocal: 0x10,
			Flags: diag.FlagMPCapableLocal | diag.FlagMPCapableRemote},
		{Socket: diag.Socket{Family: unix.AF_INET, State: diag.StateEstablished, Local: ap("10.0.2.1:5001"), Remote: ap("198.51.100.7:443"), Ifindex: 3},
			TokenLocal: 0x10, IDLocal: 1, IDRemote: 4, Flags: diag.FlagJoinLocal | diag.FlagJoinRemote | diag.FlagBackupLocal},
		{Socket: sock(diag.StateSynSent, "10.0.3.1:5002", "203.0.113.9:443"), TokenLocal: 0x10, IDLocal: 2, Flags: diag.FlagJoinLocal},
		{Socket: sock(diag.StateEstablished, "10.0.1.1:443", "198.51.100.20:50000"), TokenLocal: 0x20, Flags: diag.FlagMPCapableRemote},
		{Socket: sock(diag.StateEstablished, "10.0.2.1:443", "198.51.100.20:50001"), TokenLocal: 0x20, IDLocal: 3, IDRemote: 1,
			Flags: diag.FlagJoinRemote | diag.FlagBackupRemote},
	}
	eps := map[uint32][]genl.Endpoint{
		0x10: {{ID: 1, Addr: ip("10.0.2.1"), Flags: genl.FlagSubflow}, {ID: 7, Addr: ip("10.0.9.9"), Flags: genl.FlagSubflow}},
		0x20: {{ID: 3, Addr: ip("10.0.2.1"), Flags: genl.FlagSignal}},
	}
	want := []ConnState{
		{Token: 0x10, Side: ClientSide, Established: true, Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"),
			RemoteAddrs: []RemoteAddr{{ID: 4, Addr: ap("198.51.100.7:443")}},
			Subflows: []Subflow{
				{Local: ap("10.0.1.1:40000"), Remote: ap("203.0.113.9:443"), State: SubflowUp, Initial: true},
				{Local: ap("10.0.2.1:5001"), Remote: ap("198.51.100.7:443"), LocalID: 1, RemoteID: 4, Ifindex: 3, Backup: true, State: SubflowUp, Ours: true},
				{Local: ap("10.0.3.1:5002"), Remote: ap("203.0.113.9:443"), LocalID: 2, State: SubflowPending, Ours: true},
			},
			IDs: []LocalID{{ID: 1, Addr: ip("10.0.2.1")}, {ID: 7, Addr: ip("10.0.9.9")}, {ID: 2, Addr: ip("10.0.3.1")}}},
		{Token: 0x20, Side: ServerSide, Established: true, Local: ap("10.0.1.1:443"), Remote: ap("198.51.100.20:50000"),
			RemoteAddrs: []RemoteAddr{{ID: 1, Addr: ap("198.51.100.20:50001")}},
			Subflows: []Subflow{
				{Local: ap("10.0.1.1:443"), Remote: ap("198.51.100.20:50000"), State: SubflowUp, Initial: true},
				{Local: ap("10.0.2.1:443"), Remote: ap("198.51.100.20:50001"), LocalID: 3, RemoteID: 1, PeerBackup: true, State: SubflowUp},
			},
			Announced: []Announcement{{ID: 3, Addr: ip("10.0.2.1"), State: AnnounceDone}},
			IDs:       []LocalID{{ID: 3, Addr: ip("10.0.2.1")}}},
		{Token: 0x30, Side: ClientSide, Unmanaged: true, Local: ap("10.0.1.1:40001"), Remote: ap("203.0.113.9:80")},
		{Token: 0x40, Side: ClientSide, Local: ap("10.0.1.1:40002"), Remote: ap("203.0.113.9:443")},
	}
	got := Rebuild(conns, sfs, eps)
	if diff := cmp.Diff(want, got, cmpState...); diff != "" {
		t.Errorf("Rebuild (-want +got):\n%s", diff)
	}
}
