package pathmgr

import (
	"net/netip"
	"slices"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
)

// Rebuild reconstructs connection states from the kernel: the MPTCP
// sockets and subflows sock_diag lists, and, for each token, the local
// addresses the userspace path manager keeps for it (endpoints; nil, or
// an entry missing, when unknown). Listeners and connections without a
// token are skipped; connections that fell back to TCP are Unmanaged.
//
// What the kernel does not expose is lost: the peer's announced addresses
// that no subflow uses yet, and the backoff of failed attempts.
func Rebuild(conns []diag.Connection, subflows []diag.Subflow, endpoints map[uint32][]genl.Endpoint) []ConnState {
	type listener struct {
		addr netip.Addr
		port uint16
	}
	var listeners []listener
	for _, c := range conns {
		if c.State == diag.StateListen {
			listeners = append(listeners, listener{c.Local.Addr().Unmap(), c.Local.Port()})
		}
	}
	byToken := make(map[uint32][]diag.Subflow)
	for _, sf := range subflows {
		byToken[sf.TokenLocal] = append(byToken[sf.TokenLocal], sf)
	}

	var out []ConnState
	for _, c := range conns {
		if c.State == diag.StateListen || c.Info == nil || c.Info.Token == 0 {
			continue
		}
		st := ConnState{
			Token:       c.Info.Token,
			Local:       c.Local,
			Remote:      c.Remote,
			Established: c.State == diag.StateEstablished && c.Info.Flags&diag.InfoRemoteKeyReceived != 0,
			Unmanaged:   c.Info.Flags&diag.InfoFallback != 0,
		}
		// The side: the initial subflow of the client requested
		// MP_CAPABLE itself; without one, a listener on the local port
		// means this host accepted the connection.
		st.Side = ClientSide
		sideKnown := false
		for _, sf := range byToken[st.Token] {
			if sf.Flags&(diag.FlagMPCapableLocal|diag.FlagMPCapableRemote) != 0 {
				sideKnown = true
				if sf.Flags&diag.FlagMPCapableLocal == 0 {
					st.Side = ServerSide
				}
			}
		}
		if !sideKnown && slices.ContainsFunc(listeners, func(l listener) bool {
			return l.port == c.Local.Port() && (!l.addr.IsValid() || l.addr.IsUnspecified() || l.addr == c.Local.Addr().Unmap())
		}) {
			st.Side = ServerSide
		}

		// The kernel's id bindings first: they are the truth.
		for _, ep := range endpoints[st.Token] {
			addr := ep.Addr.Unmap()
			st.bindID(ep.ID, addr, ep.Port)
			if ep.Flags&genl.FlagSignal != 0 && st.findAnnounce(addr, ep.Port) == nil {
				st.Announced = append(st.Announced, Announcement{ID: ep.ID, Addr: addr, Port: ep.Port, Ifindex: ep.Ifindex, State: AnnounceDone})
			}
		}
		for _, sf := range byToken[st.Token] {
			s := Subflow{
				Local: sf.Local, Remote: sf.Remote, LocalID: sf.IDLocal, RemoteID: sf.IDRemote,
				Ifindex: sf.Ifindex, Backup: sf.Flags&diag.FlagBackupLocal != 0, PeerBackup: sf.Flags&diag.FlagBackupRemote != 0,
				Initial: sf.Flags&(diag.FlagMPCapableLocal|diag.FlagMPCapableRemote) != 0,
				Ours:    sf.Flags&diag.FlagJoinLocal != 0,
			}
			switch sf.State {
			case diag.StateSynSent, diag.StateSynRecv:
				s.State = SubflowPending
			case diag.StateEstablished, diag.StateCloseWait:
				s.State = SubflowUp
			default:
				s.State = SubflowClosing
			}
			st.Subflows = append(st.Subflows, s)
			if s.RemoteID != 0 && !slices.ContainsFunc(st.RemoteAddrs, func(ra RemoteAddr) bool { return ra.ID == s.RemoteID }) {
				// The peer's address behind a remote id must have been
				// announced (or joined from); keep it as announced.
				st.RemoteAddrs = append(st.RemoteAddrs, RemoteAddr{ID: s.RemoteID, Addr: sf.Remote})
			}
			if s.LocalID != 0 {
				port := sf.Local.Port()
				if s.Ours || port == c.Local.Port() {
					port = 0
				}
				st.bindID(s.LocalID, sf.Local.Addr().Unmap(), port)
			}
		}
		// The initial subflow first, then by address, for stable output.
		slices.SortStableFunc(st.Subflows, func(a, b Subflow) int {
			if a.Initial != b.Initial {
				if a.Initial {
					return -1
				}
				return 1
			}
			if c := a.Local.Compare(b.Local); c != 0 {
				return c
			}
			return a.Remote.Compare(b.Remote)
		})
		slices.SortFunc(st.RemoteAddrs, func(a, b RemoteAddr) int { return int(a.ID) - int(b.ID) })

		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ConnState) int {
		switch {
		case a.Token < b.Token:
			return -1
		case a.Token > b.Token:
			return 1
		}
		return 0
	})
	return out
}
