package diag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// State is a socket state as the kernel numbers TCP states (TCP_*).
type State uint8

// The TCP states; MPTCP sockets use the same numbers.
const (
	StateEstablished State = 1
	StateSynSent     State = 2
	StateSynRecv     State = 3
	StateFinWait1    State = 4
	StateFinWait2    State = 5
	StateTimeWait    State = 6
	StateClose       State = 7
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateListen      State = 10
	StateClosing     State = 11
	StateNewSynRecv  State = 12
)

// stateNames are the names ss(8) prints.
var stateNames = [...]string{
	StateEstablished: "ESTAB",
	StateSynSent:     "SYN-SENT",
	StateSynRecv:     "SYN-RECV",
	StateFinWait1:    "FIN-WAIT-1",
	StateFinWait2:    "FIN-WAIT-2",
	StateTimeWait:    "TIME-WAIT",
	StateClose:       "UNCONN",
	StateCloseWait:   "CLOSE-WAIT",
	StateLastAck:     "LAST-ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
	StateNewSynRecv:  "NEW-SYN-RECV",
}

// String returns the name ss(8) uses, or "state(n)".
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Socket is what struct inet_diag_msg says about any socket.
type Socket struct {
	// Family is unix.AF_INET or unix.AF_INET6. An AF_INET6 socket that
	// talks IPv4 reports IPv4-mapped IPv6 addresses.
	Family uint8
	State  State
	// Local and Remote are the socket's ends (for an MPTCP socket, those
	// of its first subflow).
	Local  netip.AddrPort
	Remote netip.AddrPort
	// Ifindex is the device the socket is bound to, 0 for none.
	Ifindex int
	// Cookie is the kernel's socket cookie.
	Cookie uint64
	UID    uint32
	Inode  uint32
}

// InfoFlags are the bits of mptcp_info.mptcpi_flags (MPTCP_INFO_FLAG_*).
type InfoFlags uint32

// Connection flags.
const (
	// InfoFallback: the connection fell back to plain TCP.
	InfoFallback InfoFlags = 1 << 0
	// InfoRemoteKeyReceived: the peer's key arrived, so the connection can
	// be fully established.
	InfoRemoteKeyReceived InfoFlags = 1 << 1
)

// Info is struct mptcp_info: each field is the kernel's mptcpi_ field of
// the same name (Subflows is mptcpi_subflows, the extra subflows; Token is
// the connection's local token, the one mptcp_pm uses). Fields a kernel
// does not send (older kernels send a shorter struct) are zero.
type Info struct {
	Subflows           uint8
	AddAddrSignal      uint8
	AddAddrAccepted    uint8
	SubflowsMax        uint8
	AddAddrSignalMax   uint8
	AddAddrAcceptedMax uint8
	Flags              InfoFlags
	Token              uint32
	WriteSeq           uint64
	SndUna             uint64
	RcvNxt             uint64
	LocalAddrUsed      uint8
	LocalAddrMax       uint8
	CsumEnabled        bool
	Retransmits        uint32
	BytesRetrans       uint64
	BytesSent          uint64
	BytesReceived      uint64
	BytesAcked         uint64
	SubflowsTotal      uint8
	EndpLaminarMax     uint8
	EndpFullmeshMax    uint8
	LastDataSent       uint32
	LastDataRecv       uint32
	LastAckRecv        uint32
	// Len is how many bytes of struct mptcp_info the kernel sent, so that
	// a zero counter can be told from one the kernel does not know
	// (HasBytes).
	Len int
}

// infoBytesEnd is the end of mptcpi_bytes_acked: kernels that send less
// than this do not count the bytes of a connection.
const infoBytesEnd = 80

// HasBytes reports whether the kernel sent the byte counters
// (BytesRetrans, BytesSent, BytesReceived, BytesAcked; Linux 6.5+).
func (i Info) HasBytes() bool { return i.Len >= infoBytesEnd }

// Connection is one MPTCP socket: an established connection, one being
// set up or closed, or a listener.
type Connection struct {
	Socket
	// Info is nil when the kernel sent no INET_DIAG_INFO.
	Info *Info
}

// SubflowFlags are the MPTCP_SUBFLOW_FLAG_* bits of a subflow.
type SubflowFlags uint32

// Subflow flags, in the kernel's bit order.
const (
	// FlagMPCapableRemote: the peer sent MP_CAPABLE (this is the first
	// subflow).
	FlagMPCapableRemote SubflowFlags = 1 << 0
	// FlagMPCapableLocal: this host requested MP_CAPABLE.
	FlagMPCapableLocal SubflowFlags = 1 << 1
	// FlagJoinRemote: the peer joined with MP_JOIN.
	FlagJoinRemote SubflowFlags = 1 << 2
	// FlagJoinLocal: this host joined with MP_JOIN.
	FlagJoinLocal SubflowFlags = 1 << 3
	// FlagBackupRemote: the peer asked for this subflow to be a backup.
	FlagBackupRemote SubflowFlags = 1 << 4
	// FlagBackupLocal: this host asked for this subflow to be a backup.
	FlagBackupLocal SubflowFlags = 1 << 5
	// FlagFullyEstablished: the subflow is fully established.
	FlagFullyEstablished SubflowFlags = 1 << 6
	// FlagConnected: the TCP handshake finished.
	FlagConnected SubflowFlags = 1 << 7
	// FlagMapValid: a DSS mapping is in use.
	FlagMapValid SubflowFlags = 1 << 8
)

// subflowFlagLetters are the letters ss(8) prints for the flags, in bit
// order.
const subflowFlagLetters = "MmJjBbecv"

// String returns the flags as ss(8) prints them, e.g. "Jjec", with unknown
// bits as "+0x..".
func (f SubflowFlags) String() string {
	var b strings.Builder
	for i := range len(subflowFlagLetters) {
		if f&(1<<i) != 0 {
			b.WriteByte(subflowFlagLetters[i])
		}
	}
	if rest := f &^ (1<<len(subflowFlagLetters) - 1); rest != 0 {
		fmt.Fprintf(&b, "+%#x", uint32(rest))
	}
	return b.String()
}

// Subflow is one TCP socket carrying the mptcp upper-layer protocol.
type Subflow struct {
	Socket
	// TokenLocal is the token of the connection on this host, the one
	// mptcp_pm events and commands use; TokenRemote is the peer's.
	TokenLocal, TokenRemote uint32
	// IDLocal and IDRemote are the address ids of the two ends.
	IDLocal, IDRemote uint8
	Flags             SubflowFlags
	// TCP is the subflow's struct tcp_info, nil when the kernel sent none.
	TCP *TCPInfo
}

// TCPInfo is the part of struct tcp_info (include/uapi/linux/tcp.h) that
// describes a subflow's path. Times are in microseconds. Fields a kernel
// does not send are zero; Len says how much it sent.
type TCPInfo struct {
	// State is tcpi_state, the same as the socket's.
	State State
	// RTT and RTTVar are the smoothed round-trip time and its variance,
	// MinRTT the lowest seen.
	RTT, RTTVar, MinRTT uint32
	// SndCwnd is the congestion window in segments.
	SndCwnd uint32
	// TotalRetrans counts retransmitted segments.
	TotalRetrans uint32
	// BytesAcked, BytesReceived, BytesSent and BytesRetrans count payload
	// bytes (tcpi_bytes_*).
	BytesAcked, BytesReceived, BytesSent, BytesRetrans uint64
	// Len is how many bytes of struct tcp_info the kernel sent.
	Len int
}

// Offsets in struct tcp_info of the fields TCPInfo keeps.
const (
	tcpiRTT           = 68
	tcpiRTTVar        = 72
	tcpiSndCwnd       = 80
	tcpiTotalRetrans  = 100
	tcpiBytesAcked    = 120
	tcpiBytesReceived = 128
	tcpiMinRTT        = 148
	tcpiBytesSent     = 200
	tcpiBytesRetrans  = 208
	sizeofTCPInfo     = 216 // up to the last field kept
)

// HasBytesSent reports whether the kernel sent tcpi_bytes_sent and
// tcpi_bytes_retrans (Linux 5.5+).
func (i TCPInfo) HasBytesSent() bool { return i.Len >= sizeofTCPInfo }

// Backup reports whether either end asked for the subflow to be a backup.
func (s Subflow) Backup() bool { return s.Flags&(FlagBackupLocal|FlagBackupRemote) != 0 }

// Wire constants from include/uapi/linux/inet_diag.h and mptcp.h.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY

	inetDiagInfo    = 2  // INET_DIAG_INFO
	inetDiagULPInfo = 19 // INET_DIAG_ULP_INFO

	inetDiagReqProtocol = 3 // INET_DIAG_REQ_PROTOCOL

	inetULPInfoName  = 1 // INET_ULP_INFO_NAME
	inetULPInfoMPTCP = 3 // INET_ULP_INFO_MPTCP

	subflowAttrTokenRem = 1  // MPTCP_SUBFLOW_ATTR_TOKEN_REM
	subflowAttrTokenLoc = 2  // MPTCP_SUBFLOW_ATTR_TOKEN_LOC
	subflowAttrFlags    = 8  // MPTCP_SUBFLOW_ATTR_FLAGS
	subflowAttrIDRem    = 9  // MPTCP_SUBFLOW_ATTR_ID_REM
	subflowAttrIDLoc    = 10 // MPTCP_SUBFLOW_ATTR_ID_LOC

	// sizeofSockID and sizeofMsg are the sizes of struct inet_diag_sockid
	// and struct inet_diag_msg; sizeofReq of struct inet_diag_req_v2.
	sizeofSockID = 48
	sizeofMsg    = 72
	sizeofReq    = 56

	ulpNameMPTCP = "mptcp"
)

// errShort is returned for a message shorter than struct inet_diag_msg.
var errShort = errors.New("sock_diag message shorter than struct inet_diag_msg")

// decodeSocket decodes struct inet_diag_msg at the start of b and returns
// it with the attributes that follow.
func decodeSocket(b []byte) (Socket, []byte, error) {
	if len(b) < sizeofMsg {
		return Socket{}, nil, fmt.Errorf("%w: %d bytes, want %d", errShort, len(b), sizeofMsg)
	}
	s := Socket{Family: b[0], State: State(b[1])}
	id := b[4 : 4+sizeofSockID]
	sport := binary.BigEndian.Uint16(id[0:2])
	dport := binary.BigEndian.Uint16(id[2:4])
	var src, dst netip.Addr
	switch s.Family {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(id[4:8]))
		dst = netip.AddrFrom4([4]byte(id[20:24]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(id[4:20]))
		dst = netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return Socket{}, nil, fmt.Errorf("sock_diag message of address family %d, want AF_INET or AF_INET6", s.Family)
	}
	s.Local = netip.AddrPortFrom(src, sport)
	s.Remote = netip.AddrPortFrom(dst, dport)
	s.Ifindex = int(binary.NativeEndian.Uint32(id[36:40]))
	s.Cookie = uint64(binary.NativeEndian.Uint32(id[40:44])) | uint64(binary.NativeEndian.Uint32(id[44:48]))<<32
	// idiag_expires, rqueue and wqueue (12 bytes) are not kept.
	s.UID = binary.NativeEndian.Uint32(b[64:68])
	s.Inode = binary.NativeEndian.Uint32(b[68:72])
	return s, b[sizeofMsg:], nil
}

// decodeConnection decodes one reply to an IPPROTO_MPTCP dump.
func decodeConnection(b []byte) (Connection, error) {
	s, attrs, err := decodeSocket(b)
	if err != nil {
		return Connection{}, err
	}
	c := Connection{Socket: s}
	if len(attrs) == 0 {
		return c, nil
	}
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return Connection{}, fmt.Errorf("MPTCP socket attributes: %w", err)
	}
	for ad.Next() {
		if ad.Type() == inetDiagInfo {
			info := decodeInfo(ad.Bytes())
			c.Info = &info
		}
	}
	if err := ad.Err(); err != nil {
		return Connection{}, fmt.Errorf("MPTCP socket attributes: %w", err)
	}
	return c, nil
}

// decodeInfo decodes struct mptcp_info, as much of it as b holds: older
// kernels send a shorter struct, newer ones may send a longer one.
func decodeInfo(b []byte) Info {
	// Pad to the full size known here so every field reads as zero when
	// absent.
	var buf [96]byte
	copy(buf[:], b)
	ne := binary.NativeEndian
	return Info{
		Subflows:           buf[0],
		AddAddrSignal:      buf[1],
		AddAddrAccepted:    buf[2],
		SubflowsMax:        buf[3],
		AddAddrSignalMax:   buf[4],
		AddAddrAcceptedMax: buf[5],
		Flags:              InfoFlags(ne.Uint32(buf[8:])),
		Token:              ne.Uint32(buf[12:]),
		WriteSeq:           ne.Uint64(buf[16:]),
		SndUna:             ne.Uint64(buf[24:]),
		RcvNxt:             ne.Uint64(buf[32:]),
		LocalAddrUsed:      buf[40],
		LocalAddrMax:       buf[41],
		CsumEnabled:        buf[42] != 0,
		Retransmits:        ne.Uint32(buf[44:]),
		BytesRetrans:       ne.Uint64(buf[48:]),
		BytesSent:          ne.Uint64(buf[56:]),
		BytesReceived:      ne.Uint64(buf[64:]),
		BytesAcked:         ne.Uint64(buf[72:]),
		SubflowsTotal:      buf[80],
		EndpLaminarMax:     buf[81],
		EndpFullmeshMax:    buf[82],
		LastDataSent:       ne.Uint32(buf[84:]),
		LastDataRecv:       ne.Uint32(buf[88:]),
		LastAckRecv:        ne.Uint32(buf[92:]),
		Len:                len(b),
	}
}

// decodeSubflow decodes one reply to a TCP dump. ok is false for a TCP
// socket that is not an MPTCP subflow (no "mptcp" ULP, or, for listeners,
// no subflow information).
func decodeSubflow(b []byte) (sf Subflow, ok bool, err error) {
	s, attrs, err := decodeSocket(b)
	if err != nil {
		return Subflow{}, false, err
	}
	sf.Socket = s
	if len(attrs) == 0 {
		return sf, false, nil
	}
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return Subflow{}, false, fmt.Errorf("TCP socket attributes: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case inetDiagInfo:
			ti := decodeTCPInfo(ad.Bytes())
			sf.TCP = &ti
		case inetDiagULPInfo:
			ad.Nested(decodeULPInfo(&sf, &ok))
		}
	}
	if err := ad.Err(); err != nil {
		return Subflow{}, false, fmt.Errorf("TCP socket attributes: %w", err)
	}
	return sf, ok, nil
}

// decodeULPInfo decodes the INET_DIAG_ULP_INFO nest; *ok is set when it
// names the mptcp ULP and carries its subflow nest.
func decodeULPInfo(sf *Subflow, ok *bool) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		var name string
		var found bool
		for ad.Next() {
			switch ad.Type() {
			case inetULPInfoName:
				name = ad.String()
			case inetULPInfoMPTCP:
				found = true
				ad.Nested(decodeSubflowAttrs(sf))
			}
		}
		*ok = found && name == ulpNameMPTCP
		return nil
	}
}

// decodeTCPInfo decodes struct tcp_info, as much of it as b holds.
func decodeTCPInfo(b []byte) TCPInfo {
	var buf [sizeofTCPInfo]byte
	copy(buf[:], b)
	ne := binary.NativeEndian
	return TCPInfo{
		State:         State(buf[0]),
		RTT:           ne.Uint32(buf[tcpiRTT:]),
		RTTVar:        ne.Uint32(buf[tcpiRTTVar:]),
		MinRTT:        ne.Uint32(buf[tcpiMinRTT:]),
		SndCwnd:       ne.Uint32(buf[tcpiSndCwnd:]),
		TotalRetrans:  ne.Uint32(buf[tcpiTotalRetrans:]),
		BytesAcked:    ne.Uint64(buf[tcpiBytesAcked:]),
		BytesReceived: ne.Uint64(buf[tcpiBytesReceived:]),
		BytesSent:     ne.Uint64(buf[tcpiBytesSent:]),
		BytesRetrans:  ne.Uint64(buf[tcpiBytesRetrans:]),
		Len:           len(b),
	}
}

// decodeSubflowAttrs decodes the INET_ULP_INFO_MPTCP nest.
func decodeSubflowAttrs(sf *Subflow) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case subflowAttrTokenRem:
				sf.TokenRemote = ad.Uint32()
			case subflowAttrTokenLoc:
				sf.TokenLocal = ad.Uint32()
			case subflowAttrFlags:
				sf.Flags = SubflowFlags(ad.Uint32())
			case subflowAttrIDRem:
				sf.IDRemote = ad.Uint8()
			case subflowAttrIDLoc:
				sf.IDLocal = ad.Uint8()
			}
		}
		return nil
	}
}

// encodeRequest returns struct inet_diag_req_v2 for a dump of protocol in
// family, asking for INET_DIAG_INFO (which also brings the ULP info) and
// the states in the bit mask states, followed by the
// INET_DIAG_REQ_PROTOCOL attribute when protocol does not fit the
// header's 8 bits (IPPROTO_MPTCP).
func encodeRequest(family uint8, protocol uint32, states uint32) []byte {
	b := make([]byte, sizeofReq, sizeofReq+8)
	b[0] = family
	b[1] = uint8(protocol) // truncated for MPTCP; the attribute wins
	b[2] = 1 << (inetDiagInfo - 1)
	binary.NativeEndian.PutUint32(b[4:8], states)
	// idiag_cookie: INET_DIAG_NOCOOKIE, as ss sends.
	binary.NativeEndian.PutUint32(b[8+40:], ^uint32(0))
	binary.NativeEndian.PutUint32(b[8+44:], ^uint32(0))
	if protocol > 0xff {
		var attr [8]byte
		binary.NativeEndian.PutUint16(attr[0:2], 8)
		binary.NativeEndian.PutUint16(attr[2:4], inetDiagReqProtocol)
		binary.NativeEndian.PutUint32(attr[4:8], protocol)
		b = append(b, attr[:]...)
	}
	return b
}
