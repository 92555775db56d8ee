package diag

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

var cmpNetip = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// msgBytes builds struct inet_diag_msg for s, as the kernel lays it out.
func msgBytes(s Socket) []byte {
	b := make([]byte, sizeofMsg)
	b[0], b[1] = s.Family, byte(s.State)
	id := b[4 : 4+sizeofSockID]
	binary.BigEndian.PutUint16(id[0:], s.Local.Port())
	binary.BigEndian.PutUint16(id[2:], s.Remote.Port())
	if s.Family == unix.AF_INET {
		l, r := s.Local.Addr().As4(), s.Remote.Addr().As4()
		copy(id[4:], l[:])
		copy(id[20:], r[:])
	} else {
		l, r := s.Local.Addr().As16(), s.Remote.Addr().As16()
		copy(id[4:], l[:])
		copy(id[20:], r[:])
	}
	binary.NativeEndian.PutUint32(id[36:], uint32(s.Ifindex))
	binary.NativeEndian.PutUint32(id[40:], uint32(s.Cookie))
	binary.NativeEndian.PutUint32(id[44:], uint32(s.Cookie>>32))
	binary.NativeEndian.PutUint32(b[64:], s.UID)
	binary.NativeEndian.PutUint32(b[68:], s.Inode)
	return b
}

// attr builds one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data ...byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// infoBytes builds struct mptcp_info (the 96-byte 6.18 layout).
func infoBytes(i Info) []byte {
	b := make([]byte, 96)
	ne := binary.NativeEndian
	b[0], b[1], b[2], b[3], b[4], b[5] = i.Subflows, i.AddAddrSignal, i.AddAddrAccepted, i.SubflowsMax, i.AddAddrSignalMax, i.AddAddrAcceptedMax
	ne.PutUint32(b[8:], uint32(i.Flags))
	ne.PutUint32(b[12:], i.Token)
	ne.PutUint64(b[16:], i.WriteSeq)
	ne.PutUint64(b[24:], i.SndUna)
	ne.PutUint64(b[32:], i.RcvNxt)
	b[40], b[41] = i.LocalAddrUsed, i.LocalAddrMax
	if i.CsumEnabled {
		b[42] = 1
	}
	ne.PutUint32(b[44:], i.Retransmits)
	ne.PutUint64(b[48:], i.BytesRetrans)
	ne.PutUint64(b[56:], i.BytesSent)
	ne.PutUint64(b[64:], i.BytesReceived)
	ne.PutUint64(b[72:], i.BytesAcked)
	b[80], b[81], b[82] = i.SubflowsTotal, i.EndpLaminarMax, i.EndpFullmeshMax
	ne.PutUint32(b[84:], i.LastDataSent)
	ne.PutUint32(b[88:], i.LastDataRecv)
	ne.PutUint32(b[92:], i.LastAckRecv)
	return b
}

var (
	sock4 = Socket{
		Family: unix.AF_INET, State: StateEstablished,
		Local:   netip.MustParseAddrPort("10.0.1.1:40000"),
		Remote:  netip.MustParseAddrPort("203.0.113.9:443"),
		Ifindex: 3, Cookie: 0x1122334455667788, UID: 1000, Inode: 4242,
	}
	sock6 = Socket{
		Family: unix.AF_INET6, State: StateSynSent,
		Local:  netip.MustParseAddrPort("[fd00:1::1]:51000"),
		Remote: netip.MustParseAddrPort("[2001:db8::2]:8443"),
	}
	sockMapped = Socket{
		Family: unix.AF_INET6, State: StateEstablished,
		Local:  netip.MustParseAddrPort("[::ffff:10.0.1.2]:443"),
		Remote: netip.MustParseAddrPort("[::ffff:10.0.1.1]:40000"),
	}
	fullInfo = Info{
		Subflows: 2, AddAddrSignal: 1, AddAddrAccepted: 3, SubflowsMax: 8, AddAddrSignalMax: 4, AddAddrAcceptedMax: 5,
		Flags: InfoRemoteKeyReceived, Token: 0xd00436b6, WriteSeq: 1, SndUna: 2, RcvNxt: 3,
		LocalAddrUsed: 1, LocalAddrMax: 2, CsumEnabled: true, Retransmits: 7, BytesRetrans: 8, BytesSent: 9,
		BytesReceived: 10, BytesAcked: 11, SubflowsTotal: 3, EndpLaminarMax: 1, EndpFullmeshMax: 2,
		LastDataSent: 12, LastDataRecv: 13, LastAckRecv: 14, Len: 96,
	}
)

// withLen is fullInfo as decoded from n bytes.
func withLen(n int) *Info {
	i := fullInfo
	i.Len = n
	return &i
}

func TestDecodeConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want Connection
	}{
		{"ipv4 with info", cat(msgBytes(sock4), attr(inetDiagInfo, infoBytes(fullInfo)...)),
			Connection{Socket: sock4, Info: &fullInfo}},
		{"ipv6 without attributes", msgBytes(sock6), Connection{Socket: sock6}},
		{"v4-mapped stays mapped", msgBytes(sockMapped), Connection{Socket: sockMapped}},
		{"older kernel's short info", cat(msgBytes(sock4), attr(inetDiagInfo, infoBytes(fullInfo)[:43]...)),
			Connection{Socket: sock4, Info: &Info{
				Subflows: 2, AddAddrSignal: 1, AddAddrAccepted: 3, SubflowsMax: 8, AddAddrSignalMax: 4, AddAddrAcceptedMax: 5,
				Flags: InfoRemoteKeyReceived, Token: 0xd00436b6, WriteSeq: 1, SndUna: 2, RcvNxt: 3,
				LocalAddrUsed: 1, LocalAddrMax: 2, CsumEnabled: true, Len: 43,
			}}},
		{"newer kernel's longer info", cat(msgBytes(sock4), attr(inetDiagInfo, append(infoBytes(fullInfo), 1, 2, 3, 4)...)),
			Connection{Socket: sock4, Info: withLen(100)}},
		{"other attributes skipped", cat(msgBytes(sock4), attr(inetDiagULPInfo, 1, 2, 3), attr(inetDiagInfo, infoBytes(fullInfo)...), attr(99)),
			Connection{Socket: sock4, Info: &fullInfo}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeConnection(tt.in)
			if err != nil {
				t.Fatalf("decodeConnection: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("decodeConnection (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	bad := msgBytes(sock4)
	bad[0] = 7
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", msgBytes(sock4)[:sizeofMsg-1]},
		{"unknown family", bad},
		{"truncated attribute", cat(msgBytes(sock4), attr(inetDiagInfo, 1, 2, 3, 4)[:6])},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := decodeConnection(tt.in); err == nil {
				t.Errorf("decodeConnection = %+v, want an error", c)
			}
			if sf, _, err := decodeSubflow(tt.in); err == nil {
				t.Errorf("decodeSubflow = %+v, want an error", sf)
			}
		})
	}
	// A broken nest inside INET_DIAG_ULP_INFO is an error for subflows.
	brokenNest := cat(msgBytes(sock4), attr(inetDiagULPInfo|1<<15, cat(attr(inetULPInfoName, 'm', 'p', 't', 'c', 'p', 0), attr(inetULPInfoMPTCP|1<<15, 9, 0, 1, 0, 1))...))
	if sf, ok, err := decodeSubflow(brokenNest); err == nil || ok {
		t.Errorf("decodeSubflow(broken nest) = %+v, %v, %v; want an error", sf, ok, err)
	}
	if _, err := decodeConnection(nil); !errors.Is(err, errShort) {
		t.Errorf("decodeConnection(nil) = %v, want errShort", err)
	}
}

// ulp builds INET_DIAG_ULP_INFO with the given name and MPTCP nest.
func ulp(name string, mptcp []byte) []byte {
	inner := attr(inetULPInfoName, append([]byte(name), 0)...)
	if mptcp != nil {
		inner = append(inner, attr(inetULPInfoMPTCP|1<<15, mptcp...)...)
	}
	return attr(inetDiagULPInfo|1<<15, inner...)
}

func TestDecodeSubflow(t *testing.T) {
	sfAttrs := cat(
		attr(subflowAttrTokenRem, u32(0x1d76d1a7)...),
		attr(subflowAttrTokenLoc, u32(0xd00436b6)...),
		attr(3, u32(5)...),                    // RELWRITE_SEQ
		attr(4, 0, 0, 0, 0, 0, 0, 0, 1),       // MAP_SEQ (u64)
		attr(subflowAttrFlags, u32(0x1ac)...), // j J b e v
		attr(subflowAttrIDRem, 0),
		attr(subflowAttrIDLoc, 5),
		attr(99, 1, 2),
	)
	want := Subflow{Socket: sock4, TokenLocal: 0xd00436b6, TokenRemote: 0x1d76d1a7, IDLocal: 5,
		Flags: FlagJoinLocal | FlagJoinRemote | FlagBackupLocal | FlagConnected | FlagMapValid}
	wantTCP := want
	wantTCP.TCP = &fullTCP
	for _, tt := range []struct {
		name   string
		in     []byte
		want   Subflow
		wantOK bool
	}{
		{"subflow", cat(msgBytes(sock4), attr(inetDiagInfo, tcpInfoBytes(fullTCP)...), ulp("mptcp", sfAttrs)), wantTCP, true},
		{"subflow without tcp_info", cat(msgBytes(sock4), ulp("mptcp", sfAttrs)), want, true},
		{"nest without NLA_F_NESTED", cat(msgBytes(sock4), attr(inetDiagULPInfo, cat(attr(inetULPInfoName, 'm', 'p', 't', 'c', 'p', 0), attr(inetULPInfoMPTCP, sfAttrs...))...)), want, true},
		{"plain TCP", cat(msgBytes(sock4), attr(inetDiagInfo, make([]byte, 232)...)), Subflow{Socket: sock4, TCP: &TCPInfo{Len: 232}}, false},
		{"other ULP", cat(msgBytes(sock4), ulp("tls", nil)), Subflow{Socket: sock4}, false},
		{"mptcp listener (no subflow nest)", cat(msgBytes(sock4), ulp("mptcp", nil)), Subflow{Socket: sock4}, false},
		{"no attributes", msgBytes(sock6), Subflow{Socket: sock6}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := decodeSubflow(tt.in)
			if err != nil {
				t.Fatalf("decodeSubflow: %v", err)
			}
			if ok != tt.wantOK {
				t.Errorf("decodeSubflow ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got, cmpNetip); diff != "" {
				t.Errorf("decodeSubflow (-want +got):\n%s", diff)
			}
		})
	}
}

// fullTCP is a tcp_info with every kept field set, as a 6.18 kernel sends
// it (248 bytes).
var fullTCP = TCPInfo{State: StateEstablished, RTT: 1500, RTTVar: 250, MinRTT: 900, SndCwnd: 10, TotalRetrans: 3,
	BytesAcked: 1000, BytesReceived: 2000, BytesSent: 3000, BytesRetrans: 40, Len: 248}

// tcpInfoBytes builds struct tcp_info for i, i.Len bytes long.
func tcpInfoBytes(i TCPInfo) []byte {
	b := make([]byte, max(i.Len, sizeofTCPInfo))
	ne := binary.NativeEndian
	b[0] = byte(i.State)
	ne.PutUint32(b[tcpiRTT:], i.RTT)
	ne.PutUint32(b[tcpiRTTVar:], i.RTTVar)
	ne.PutUint32(b[tcpiMinRTT:], i.MinRTT)
	ne.PutUint32(b[tcpiSndCwnd:], i.SndCwnd)
	ne.PutUint32(b[tcpiTotalRetrans:], i.TotalRetrans)
	ne.PutUint64(b[tcpiBytesAcked:], i.BytesAcked)
	ne.PutUint64(b[tcpiBytesReceived:], i.BytesReceived)
	ne.PutUint64(b[tcpiBytesSent:], i.BytesSent)
	ne.PutUint64(b[tcpiBytesRetrans:], i.BytesRetrans)
	return b[:i.Len]
}

func TestDecodeTCPInfo(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
		want TCPInfo
	}{
		{"6.18", tcpInfoBytes(fullTCP), fullTCP},
		{"empty", nil, TCPInfo{}},
		// Linux 4.x: no min_rtt, no bytes_sent.
		{"old kernel", tcpInfoBytes(fullTCP)[:tcpiMinRTT], TCPInfo{State: StateEstablished, RTT: 1500, RTTVar: 250,
			SndCwnd: 10, TotalRetrans: 3, BytesAcked: 1000, BytesReceived: 2000, Len: tcpiMinRTT}},
		{"cut before rtt", tcpInfoBytes(fullTCP)[:tcpiRTT], TCPInfo{State: StateEstablished, Len: tcpiRTT}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, decodeTCPInfo(tt.in)); diff != "" {
				t.Errorf("decodeTCPInfo (-want +got):\n%s", diff)
			}
		})
	}
	if !fullTCP.HasBytesSent() || (TCPInfo{Len: tcpiMinRTT}).HasBytesSent() {
		t.Errorf("HasBytesSent wrong")
	}
	if !fullInfo.HasBytes() || withLen(43).HasBytes() {
		t.Errorf("Info.HasBytes wrong")
	}
}

func TestSubflowFlagsString(t *testing.T) {
	for f, want := range map[SubflowFlags]string{
		0: "",
		FlagMPCapableRemote | FlagMPCapableLocal | FlagFullyEstablished | FlagConnected: "Mmec",
		FlagJoinLocal | FlagJoinRemote | FlagBackupLocal | 1<<12:                        "Jjb+0x1000",
	} {
		if got := f.String(); got != want {
			t.Errorf("SubflowFlags(%#x).String() = %q, want %q", uint32(f), got, want)
		}
	}
	if got := StateEstablished.String(); got != "ESTAB" {
		t.Errorf("StateEstablished = %q", got)
	}
	if got := State(99).String(); got != "state(99)" {
		t.Errorf("State(99) = %q", got)
	}
}

func TestEncodeRequest(t *testing.T) {
	b := encodeRequest(unix.AF_INET6, unix.IPPROTO_MPTCP, allStates)
	if len(b) != sizeofReq+8 {
		t.Fatalf("MPTCP request has %d bytes, want %d", len(b), sizeofReq+8)
	}
	if b[0] != unix.AF_INET6 || b[1] != unix.IPPROTO_MPTCP&0xff || b[2] != 1<<(inetDiagInfo-1) {
		t.Errorf("header % x", b[:4])
	}
	if got := binary.NativeEndian.Uint32(b[4:]); got != allStates {
		t.Errorf("states %#x", got)
	}
	if got := binary.NativeEndian.Uint32(b[sizeofReq+4:]); got != unix.IPPROTO_MPTCP ||
		binary.NativeEndian.Uint16(b[sizeofReq+2:]) != inetDiagReqProtocol {
		t.Errorf("protocol attribute % x", b[sizeofReq:])
	}
	if b := encodeRequest(unix.AF_INET, unix.IPPROTO_TCP, subflowStates); len(b) != sizeofReq || b[1] != unix.IPPROTO_TCP {
		t.Errorf("TCP request % x", b)
	}
}
