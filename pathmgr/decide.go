package pathmgr

import (
	"fmt"
	"net/netip"
	"time"
)

// Action is one userspace path manager command for the kernel: a
// CreateSubflow, DestroySubflow, Announce, Remove or SetBackup value.
type Action interface {
	// Conn returns the token of the connection the action is for.
	Conn() uint32
	// String describes the action for logs.
	String() string
	isAction()
}

// LocalEndpoint is the local end of a subflow to create.
type LocalEndpoint struct {
	Addr netip.Addr
	// ID is the address id on the connection (never 0).
	ID uint8
	// Ifindex binds the subflow to the interface.
	Ifindex int
	Backup  bool
}

// CreateSubflow opens a subflow from Local to Remote.
type CreateSubflow struct {
	Token  uint32
	Local  LocalEndpoint
	Remote netip.AddrPort
}

// DestroySubflow closes the subflow between the two ends (ports included).
type DestroySubflow struct {
	Token         uint32
	Local, Remote netip.AddrPort
}

// Announce sends ADD_ADDR for a local address.
type Announce struct {
	Token   uint32
	Addr    netip.Addr
	ID      uint8
	Port    uint16
	Ifindex int
}

// Remove sends REMOVE_ADDR for a local address id; the kernel closes the
// subflows using it.
type Remove struct {
	Token uint32
	ID    uint8
}

// SetBackup changes the backup flag of a subflow (MP_PRIO).
type SetBackup struct {
	Token         uint32
	Local, Remote netip.AddrPort
	Backup        bool
}

// Conn implements Action.
func (a CreateSubflow) Conn() uint32 { return a.Token }

// Conn implements Action.
func (a DestroySubflow) Conn() uint32 { return a.Token }

// Conn implements Action.
func (a Announce) Conn() uint32 { return a.Token }

// Conn implements Action.
func (a Remove) Conn() uint32 { return a.Token }

// Conn implements Action.
func (a SetBackup) Conn() uint32 { return a.Token }

func (CreateSubflow) isAction()  {}
func (DestroySubflow) isAction() {}
func (Announce) isAction()       {}
func (Remove) isAction()         {}
func (SetBackup) isAction()      {}

// String implements Action.
func (a CreateSubflow) String() string {
	b := ""
	if a.Local.Backup {
		b = " backup"
	}
	return fmt.Sprintf("create subflow %s id %d ifindex %d -> %s%s on token %08x", a.Local.Addr, a.Local.ID, a.Local.Ifindex, a.Remote, b, a.Token)
}

// String implements Action.
func (a DestroySubflow) String() string {
	return fmt.Sprintf("destroy subflow %s -> %s on token %08x", a.Local, a.Remote, a.Token)
}

// String implements Action.
func (a Announce) String() string {
	return fmt.Sprintf("announce %s id %d port %d on token %08x", a.Addr, a.ID, a.Port, a.Token)
}

// String implements Action.
func (a Remove) String() string { return fmt.Sprintf("remove id %d on token %08x", a.ID, a.Token) }

// String implements Action.
func (a SetBackup) String() string {
	return fmt.Sprintf("set backup=%v on subflow %s -> %s on token %08x", a.Backup, a.Local, a.Remote, a.Token)
}

// Decide returns what to ask of the kernel for one connection, given the
// local interfaces and the policy, at time now. It is a pure function of
// its arguments and costs O(interfaces × peer addresses + subflows).
//
// Client side: a subflow from each allowed interface to the peer's
// initial address (except from the interface of the initial subflow) and
// to each address the peer announced, up to the subflow cap, backup where
// the interface's use is backup; failed subflows again once their backoff
// expired; destroy for subflows whose address or interface went away; a
// backup change where the interface's use changed. Server side: announce
// the addresses of interfaces marked Signal and remove them when they
// disappear. In-flight actions count, so nothing is asked twice.
func Decide(conn ConnState, local LocalView, cfg Config, now time.Time) []Action {
	if !conn.Established || conn.Unmanaged || conn.Side == AnySide {
		return nil
	}
	if a := conn.Local.Addr().Unmap(); a.IsLoopback() || a.IsLinkLocalUnicast() {
		// Host-internal or link-local: no other interface can reach it.
		return nil
	}
	peer, port := conn.Remote.Addr(), conn.Remote.Port()
	if conn.Side == ServerSide {
		port = conn.Local.Port()
	}
	action, maxSub := cfg.connRule(conn.Side, peer, port)

	var acts []Action
	for i := range conn.Subflows {
		sf := &conn.Subflows[i]
		if !sf.Ours || sf.State != SubflowUp || sf.RetryAt.After(now) {
			continue
		}
		ifc, ok := local.IfaceOf(sf.Local.Addr())
		if !ok || ifc.Use == UseNever || action == Never {
			acts = append(acts, DestroySubflow{Token: conn.Token, Local: sf.Local, Remote: sf.Remote})
			continue
		}
		if want := ifc.Use == UseBackup; sf.Backup != want && !sf.PrioPending {
			acts = append(acts, SetBackup{Token: conn.Token, Local: sf.Local, Remote: sf.Remote, Backup: want})
		}
	}
	ids := idAlloc{conn: &conn}
	if conn.Side == ServerSide {
		return decideServer(acts, &conn, local, action, maxSub, &ids, now)
	}
	if action == Never {
		return acts
	}
	return decideClient(acts, &conn, local, cfg.Preset.OnePerInterface(), maxSub, &ids, now)
}

// decideClient adds the client side's subflow creations.
func decideClient(acts []Action, conn *ConnState, local LocalView, onePerIface bool, maxSub int, ids *idAlloc, now time.Time) []Action {
	initLocal, initRemote := conn.Local.Addr().Unmap(), unmapAP(conn.Remote)
	v4 := initLocal.Is4()
	initIface, _ := local.IfaceOf(initLocal)

	// The peer's addresses: the initial one first, then the announced
	// ones of the connection's family, by id.
	remotes := make([]netip.AddrPort, 0, 1+len(conn.RemoteAddrs))
	if !conn.DenyJoinID0 {
		remotes = append(remotes, initRemote)
	}
	for _, ra := range conn.RemoteAddrs {
		a := ra.Addr.Addr().Unmap()
		if a.Is4() != v4 {
			continue
		}
		p := ra.Addr.Port()
		if p == 0 {
			p = initRemote.Port()
		}
		r := netip.AddrPortFrom(a, p)
		if !containsAP(remotes, r) {
			remotes = append(remotes, r)
		}
	}
	if len(remotes) == 0 {
		return acts
	}

	budget := maxSub - extraSubflows(conn, local, remotes)
	for _, ifc := range local.Ifaces {
		if ifc.Use == UseNever {
			continue
		}
		la, ok := ifc.first(v4)
		if !ok {
			continue
		}
		if onePerIface && ifaceHasSubflow(conn, ifc, initIface.Index) {
			// Its one subflow exists or is pending; a failed one is
			// retried below.
			if sf := failedOn(conn, ifc); sf != nil && due(sf, now) {
				a := sf.Local.Addr().Unmap()
				if id := ids.get(a, 0); id != 0 {
					acts = append(acts, createFor(conn, a, id, ifc, sf.Remote))
				}
			}
			continue
		}
		for _, r := range remotes {
			if ifc.Index == initIface.Index && initIface.Index != 0 && r == initRemote {
				continue // the initial subflow's path
			}
			if sf := conn.findPath(pathKey{la, r}); sf != nil {
				if sf.State == SubflowFailed && sf.Ours && due(sf, now) {
					// The bound id, or a new one if the kernel refused it.
					if id := ids.get(la, 0); id != 0 {
						acts = append(acts, createFor(conn, la, id, ifc, sf.Remote))
					}
					if onePerIface {
						break
					}
				}
				continue
			}
			if budget <= 0 {
				return acts
			}
			id := ids.get(la, 0)
			if id == 0 {
				return acts // no free address id left
			}
			acts = append(acts, createFor(conn, la, id, ifc, r))
			budget--
			if onePerIface {
				break
			}
		}
	}
	return acts
}

func createFor(conn *ConnState, la netip.Addr, id uint8, ifc LocalIface, remote netip.AddrPort) CreateSubflow {
	return CreateSubflow{Token: conn.Token, Remote: unmapAP(remote),
		Local: LocalEndpoint{Addr: la, ID: id, Ifindex: ifc.Index, Backup: ifc.Use == UseBackup}}
}

func due(sf *Subflow, now time.Time) bool { return !sf.RetryAt.After(now) }

// extraSubflows counts the subflows beyond the initial one that exist, are
// pending, or wait for a retry on a path still possible.
func extraSubflows(conn *ConnState, local LocalView, remotes []netip.AddrPort) int {
	n := 0
	for i := range conn.Subflows {
		sf := &conn.Subflows[i]
		if sf.Initial {
			continue
		}
		switch sf.State {
		case SubflowPending, SubflowUp:
			n++
		case SubflowFailed:
			if _, ok := local.IfaceOf(sf.Local.Addr()); ok && containsAP(remotes, unmapAP(sf.Remote)) {
				n++
			}
		}
	}
	return n
}

// ifaceHasSubflow reports whether any subflow (or pending or failed
// attempt) uses the interface.
func ifaceHasSubflow(conn *ConnState, ifc LocalIface, initIface int) bool {
	if ifc.Index == initIface && initIface != 0 {
		return true
	}
	for i := range conn.Subflows {
		sf := &conn.Subflows[i]
		if sf.State == SubflowClosing || sf.State == SubflowAbandoned {
			continue
		}
		if sf.Ifindex == ifc.Index && ifc.Index != 0 {
			return true
		}
		for _, a := range ifc.Addrs {
			if sf.Local.Addr().Unmap() == a {
				return true
			}
		}
	}
	return false
}

// failedOn returns our failed subflow on the interface, if any.
func failedOn(conn *ConnState, ifc LocalIface) *Subflow {
	for i := range conn.Subflows {
		sf := &conn.Subflows[i]
		if !sf.Ours || sf.State != SubflowFailed {
			continue
		}
		if sf.Ifindex == ifc.Index {
			return sf
		}
	}
	return nil
}

// decideServer adds the server side's announcements and removals.
func decideServer(acts []Action, conn *ConnState, local LocalView, action RuleAction, maxSub int, ids *idAlloc, now time.Time) []Action {
	initLocal := conn.Local.Addr().Unmap()
	v4 := initLocal.Is4()
	count := 0
	for i := range conn.Announced {
		a := &conn.Announced[i]
		if a.State == AnnounceRemoving {
			continue
		}
		ifc, ok := local.IfaceOf(a.Addr)
		if a.State != AnnouncePending && (!ok || !ifc.Signal || ifc.Use == UseNever || action == Never) {
			acts = append(acts, Remove{Token: conn.Token, ID: a.ID})
			continue
		}
		count++
	}
	if action == Never {
		return acts
	}
	for _, ifc := range local.Ifaces {
		if !ifc.Signal || ifc.Use == UseNever {
			continue
		}
		la, ok := ifc.first(v4)
		if !ok || la == initLocal {
			continue
		}
		if a := conn.findAnnounce(la, ifc.Port); a != nil {
			if a.State == AnnounceFailed && !a.RetryAt.After(now) {
				acts = append(acts, Announce{Token: conn.Token, Addr: la, ID: a.ID, Port: ifc.Port, Ifindex: ifc.Index})
			}
			continue
		}
		if count >= maxSub {
			break
		}
		id := ids.get(la, ifc.Port)
		if id == 0 {
			break
		}
		acts = append(acts, Announce{Token: conn.Token, Addr: la, ID: id, Port: ifc.Port, Ifindex: ifc.Index})
		count++
	}
	return acts
}

// idAlloc hands out local address ids for one connection, in one
// decision: the bound id of an address, else the smallest id in use by
// nothing.
type idAlloc struct {
	conn  *ConnState
	used  *[256]bool
	fresh []LocalID
}

func (a *idAlloc) get(addr netip.Addr, port uint16) uint8 {
	if id, ok := a.conn.idOf(addr, port); ok {
		return id
	}
	for _, l := range a.fresh {
		if l.Addr == addr && l.Port == port {
			return l.ID
		}
	}
	if a.used == nil {
		a.used = new([256]bool)
		a.conn.usedIDs(a.used)
	}
	for id := 1; id < 256; id++ {
		if !a.used[id] {
			a.used[id] = true
			a.fresh = append(a.fresh, LocalID{ID: uint8(id), Addr: addr, Port: port})
			return uint8(id)
		}
	}
	return 0
}

func containsAP(s []netip.AddrPort, ap netip.AddrPort) bool {
	for _, x := range s {
		if x == ap {
			return true
		}
	}
	return false
}

// Backoff returns the delay before attempt number attempt+1 after attempt
// failures (attempt ≥ 1): p.Initial doubled per failure, capped at p.Max,
// with ±20 % jitter drawn deterministically from seed, so that the
// connections of a busy host that failed together do not retry together.
func Backoff(p RetryPolicy, attempt int, seed uint64) time.Duration {
	p = p.withDefaults()
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	// splitmix64 of the seed: a uniform value for the jitter.
	z := seed + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	frac := float64(z>>11) / float64(1<<53) // [0, 1)
	return time.Duration(float64(d) * (0.8 + 0.4*frac))
}

// seedOf mixes what identifies an attempt into a jitter seed.
func seedOf(token uint32, p pathKey, attempt int) uint64 {
	h := uint64(token)<<32 | uint64(attempt)
	b := p.local.As16()
	for _, x := range b {
		h = h*1099511628211 ^ uint64(x)
	}
	r := p.remote.Addr().As16()
	for _, x := range r {
		h = h*1099511628211 ^ uint64(x)
	}
	return h ^ uint64(p.remote.Port())
}
