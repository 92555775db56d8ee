package pathmgr

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// MaxConnections bounds the tracked connections
	// (DefaultMaxConnections when 0); connections beyond it are left to
	// their initial subflow, with a log line.
	MaxConnections int
	// Retry is the backoff after failures.
	Retry RetryPolicy
	// Logger gets the limit warnings; zap.NewNop() when nil.
	Logger *zap.Logger
}

// Tracker keeps the state of every MPTCP connection from mptcp_pm events,
// keyed by token. It also records the actions asked of the kernel and
// their outcome, so that decisions never ask twice. It is not safe for
// concurrent use; the Manager serializes access.
type Tracker struct {
	conns map[uint32]*ConnState
	max   int
	retry RetryPolicy
	log   *zap.Logger

	// dropped counts connections not tracked because of the bound;
	// droppedLogged is how many of them were logged about.
	dropped       uint64
	droppedLogged uint64
	lastDropLog   time.Time
}

// dropLogInterval rate-limits the log line about the connection bound.
const dropLogInterval = 10 * time.Second

// NewTracker returns an empty tracker.
func NewTracker(cfg TrackerConfig) *Tracker {
	t := &Tracker{
		conns: make(map[uint32]*ConnState),
		max:   cfg.MaxConnections,
		retry: cfg.Retry.withDefaults(),
		log:   cfg.Logger,
	}
	if t.max <= 0 {
		t.max = DefaultMaxConnections
	}
	if t.log == nil {
		t.log = zap.NewNop()
	}
	return t
}

// Len returns the number of tracked connections.
func (t *Tracker) Len() int { return len(t.conns) }

// Dropped returns how many connections were not tracked because of the
// bound.
func (t *Tracker) Dropped() uint64 { return t.dropped }

// Get returns a copy of the connection's state.
func (t *Tracker) Get(token uint32) (ConnState, bool) {
	c, ok := t.conns[token]
	if !ok {
		return ConnState{}, false
	}
	return c.Clone(), true
}

// Tokens returns the tracked tokens, sorted.
func (t *Tracker) Tokens() []uint32 {
	toks := make([]uint32, 0, len(t.conns))
	for tok := range t.conns {
		toks = append(toks, tok)
	}
	slices.Sort(toks)
	return toks
}

// conn returns the live state (for the Manager).
func (t *Tracker) conn(token uint32) *ConnState { return t.conns[token] }

// add starts tracking a connection, unless the bound is reached.
func (t *Tracker) add(c *genl.Connection, now time.Time) *ConnState {
	if len(t.conns) >= t.max {
		t.dropped++
		if t.droppedLogged == 0 || now.Sub(t.lastDropLog) >= dropLogInterval {
			t.log.Warn("too many MPTCP connections to track; new ones keep their initial subflow only",
				zap.Int("max_connections", t.max), zap.Uint64("untracked", t.dropped),
				zap.String("token", tokenString(c.Token)))
			t.droppedLogged = t.dropped
			t.lastDropLog = now
		}
		return nil
	}
	st := &ConnState{Token: c.Token, Created: now}
	t.conns[c.Token] = st
	return st
}

// setConn fills what CREATED and ESTABLISHED say.
func setConn(st *ConnState, c *genl.Connection) {
	st.Side = ClientSide
	if c.ServerSide {
		st.Side = ServerSide
	}
	if c.Local.IsValid() {
		st.Local, st.Remote = c.Local, c.Remote
	}
	st.DenyJoinID0 = c.Flags&genl.EventFlagDenyJoinID0 != 0
	if len(st.Subflows) == 0 && c.Local.IsValid() {
		st.Subflows = append(st.Subflows, Subflow{Local: c.Local, Remote: c.Remote, State: SubflowUp, Initial: true})
	}
}

// Apply folds an event into the state. It returns the connection's token
// and whether a decision for it may be due now.
func (t *Tracker) Apply(ev genl.Event, now time.Time) (token uint32, decide bool) {
	switch e := ev.(type) {
	case *genl.Created:
		st := t.conns[e.Token]
		if st == nil {
			if st = t.add(&e.Connection, now); st == nil {
				return e.Token, false
			}
		}
		setConn(st, &e.Connection)
		return e.Token, false
	case *genl.Established:
		st := t.conns[e.Token]
		if st == nil {
			if st = t.add(&e.Connection, now); st == nil {
				return e.Token, false
			}
		}
		setConn(st, &e.Connection)
		st.Established = true
		return e.Token, true
	case *genl.Closed:
		delete(t.conns, e.Token)
		return e.Token, false
	case *genl.Announced:
		st := t.conns[e.Token]
		if st == nil {
			return e.Token, false
		}
		ra := RemoteAddr{ID: e.RemoteID, Addr: e.Remote}
		for i := range st.RemoteAddrs {
			if st.RemoteAddrs[i].ID == e.RemoteID {
				st.RemoteAddrs[i] = ra
				return e.Token, true
			}
		}
		st.RemoteAddrs = append(st.RemoteAddrs, ra)
		slices.SortFunc(st.RemoteAddrs, func(a, b RemoteAddr) int { return int(a.ID) - int(b.ID) })
		return e.Token, true
	case *genl.Removed:
		st := t.conns[e.Token]
		if st == nil {
			return e.Token, false
		}
		var gone netip.Addr
		st.RemoteAddrs = slices.DeleteFunc(st.RemoteAddrs, func(ra RemoteAddr) bool {
			if ra.ID == e.RemoteID {
				gone = ra.Addr.Addr().Unmap()
				return true
			}
			return false
		})
		// The kernel closes the subflows to the address; forget the
		// attempts waiting to retry it so a new announcement starts
		// afresh.
		st.Subflows = slices.DeleteFunc(st.Subflows, func(sf Subflow) bool {
			return sf.Ours && (sf.State == SubflowFailed || sf.State == SubflowAbandoned) &&
				(sf.RemoteID == e.RemoteID && sf.RemoteID != 0 || sf.Remote.Addr().Unmap() == gone)
		})
		return e.Token, true
	case *genl.SubflowEstablished:
		return e.Token, t.subEstablished(&e.Subflow, now)
	case *genl.SubflowClosed:
		return e.Token, t.subClosed(&e.Subflow, now)
	case *genl.SubflowPriority:
		st := t.conns[e.Token]
		if st == nil {
			return e.Token, false
		}
		if sf := st.findExact(e.Local, e.Remote); sf != nil {
			sf.PeerBackup = e.Backup
		}
		return e.Token, false
	}
	return 0, false
}

func (t *Tracker) subEstablished(e *genl.Subflow, now time.Time) bool {
	st := t.conns[e.Token]
	if st == nil {
		return false
	}
	sf := st.findExact(e.Local, e.Remote)
	if sf == nil {
		// A subflow this host asked for: pending, local port unknown.
		p := pathKey{e.Local.Addr().Unmap(), unmapAP(e.Remote)}
		for i := range st.Subflows {
			c := &st.Subflows[i]
			if c.path() == p && c.Local.Port() == 0 && (c.State == SubflowPending || c.State == SubflowFailed) {
				sf = c
				break
			}
		}
	}
	if sf == nil {
		st.Subflows = append(st.Subflows, Subflow{})
		sf = &st.Subflows[len(st.Subflows)-1]
	}
	if sf.State != SubflowUp {
		sf.Since = now
	}
	sf.Local, sf.Remote = e.Local, e.Remote
	sf.LocalID, sf.RemoteID = e.LocalID, e.RemoteID
	sf.PeerBackup = e.Backup
	if e.Ifindex != 0 {
		sf.Ifindex = e.Ifindex
	}
	sf.State = SubflowUp
	sf.RetryAt = time.Time{}
	if e.LocalID != 0 && !sf.Ours {
		// A join the peer made to one of our addresses: the kernel bound
		// an id to that address for this connection.
		port := e.Local.Port()
		if port == st.Local.Port() {
			port = 0
		}
		st.bindID(e.LocalID, e.Local.Addr().Unmap(), port)
	}
	// Decide again: the interface may have gone, or changed its use,
	// while the subflow was pending, when nothing could be done about it.
	return true
}

func (t *Tracker) subClosed(e *genl.Subflow, now time.Time) bool {
	st := t.conns[e.Token]
	if st == nil {
		return false
	}
	sf := st.findExact(e.Local, e.Remote)
	if sf == nil {
		// An attempt that never got established.
		p := pathKey{e.Local.Addr().Unmap(), unmapAP(e.Remote)}
		for i := range st.Subflows {
			c := &st.Subflows[i]
			if c.path() == p && c.Local.Port() == 0 {
				sf = c
				break
			}
		}
	}
	if sf == nil {
		return false
	}
	switch {
	case !sf.Ours:
		// The initial subflow or one the peer made: nothing to retry.
		st.removeSubflow(sf)
		return false
	case sf.State == SubflowClosing:
		st.removeSubflow(sf)
		return true
	case sf.State == SubflowFailed || sf.State == SubflowAbandoned:
		return false // already counted (the create call failed too)
	}
	if sf.State == SubflowUp && now.Sub(sf.Since) >= t.retry.Max {
		sf.Failures = 0 // it worked for a good while: start afresh
	}
	sf.Local = netip.AddrPortFrom(sf.Local.Addr(), 0)
	t.fail(st, sf, now)
	return true
}

// fail records a failed attempt and schedules the next one.
func (t *Tracker) fail(st *ConnState, sf *Subflow, now time.Time) {
	sf.Failures++
	sf.Since = now
	if t.retry.MaxAttempts > 0 && sf.Failures >= t.retry.MaxAttempts {
		sf.State = SubflowAbandoned
		sf.RetryAt = time.Time{}
		return
	}
	sf.State = SubflowFailed
	sf.RetryAt = now.Add(Backoff(t.retry, sf.Failures, seedOf(st.Token, sf.path(), sf.Failures)))
}

// Begin records actions about to be sent to the kernel, so that the next
// decision counts them.
func (t *Tracker) Begin(acts []Action, now time.Time) {
	for _, a := range acts {
		st := t.conns[a.Conn()]
		if st == nil {
			continue
		}
		switch a := a.(type) {
		case CreateSubflow:
			st.bindID(a.Local.ID, a.Local.Addr, 0)
			p := pathKey{a.Local.Addr, a.Remote}
			if sf := st.findPath(p); sf != nil && sf.Ours && sf.State == SubflowFailed {
				sf.State, sf.Since = SubflowPending, now
				sf.Backup, sf.Ifindex, sf.LocalID = a.Local.Backup, a.Local.Ifindex, a.Local.ID
				continue
			}
			st.Subflows = append(st.Subflows, Subflow{
				Local: netip.AddrPortFrom(a.Local.Addr, 0), Remote: a.Remote, LocalID: a.Local.ID,
				Ifindex: a.Local.Ifindex, Backup: a.Local.Backup, State: SubflowPending, Ours: true, Since: now,
			})
		case DestroySubflow:
			if sf := st.findExact(a.Local, a.Remote); sf != nil {
				sf.State, sf.Since = SubflowClosing, now
			}
		case Announce:
			st.bindID(a.ID, a.Addr, a.Port)
			if an := st.findAnnounce(a.Addr, a.Port); an != nil {
				an.State = AnnouncePending
				continue
			}
			st.Announced = append(st.Announced, Announcement{ID: a.ID, Addr: a.Addr, Port: a.Port, Ifindex: a.Ifindex, State: AnnouncePending})
		case Remove:
			if an := st.findAnnounceID(a.ID); an != nil {
				an.State = AnnounceRemoving
			}
		case SetBackup:
			if sf := st.findExact(a.Local, a.Remote); sf != nil {
				sf.PrioPending = true
			}
		}
	}
}

// Finish records the kernel's answer to an action. It reports whether
// the connection needs a new decision (or a retry timer).
func (t *Tracker) Finish(a Action, err error, now time.Time) bool {
	st := t.conns[a.Conn()]
	if st == nil {
		return false
	}
	if err != nil && isUnmanaged(err) {
		// Another path manager runs this connection: stop for good.
		st.Unmanaged = true
		return false
	}
	if err != nil && isInvalidToken(err) {
		delete(t.conns, a.Conn()) // the connection is gone
		return false
	}
	switch a := a.(type) {
	case CreateSubflow:
		if err == nil {
			return false
		}
		sf := st.findPath(pathKey{a.Local.Addr, a.Remote})
		if sf == nil || sf.State != SubflowPending || sf.Local.Port() != 0 {
			return false // established or closed meanwhile
		}
		if isIDMismatch(err) {
			st.unbindID(a.Local.Addr, 0)
		}
		t.fail(st, sf, now)
		return true
	case DestroySubflow:
		sf := st.findExact(a.Local, a.Remote)
		if sf == nil || err == nil {
			return false // SUB_CLOSED will remove it, or did
		}
		if errors.Is(err, unix.ESRCH) || errors.Is(err, genl.ErrNotFound) {
			st.removeSubflow(sf)
			return false
		}
		sf.State = SubflowUp
		sf.RetryAt = now.Add(Backoff(t.retry, 1, seedOf(st.Token, sf.path(), 1)))
		return true
	case Announce:
		an := st.findAnnounce(a.Addr, a.Port)
		if an == nil {
			return false
		}
		if err == nil {
			// Decide again: the address may have gone meanwhile.
			an.State, an.Failures = AnnounceDone, 0
			return true
		}
		if isIDMismatch(err) {
			// The kernel binds the address or the id otherwise: try
			// another id next time.
			st.unbindID(a.Addr, a.Port)
			st.Announced = slices.DeleteFunc(st.Announced, func(x Announcement) bool { return x.Addr == a.Addr && x.Port == a.Port })
			return true
		}
		an.Failures++
		an.State = AnnounceFailed
		an.RetryAt = now.Add(Backoff(t.retry, an.Failures, seedOf(st.Token, pathKey{local: a.Addr}, an.Failures)))
		return true
	case Remove:
		// Done, or the kernel did not have it: either way it is gone. The
		// address may be back already.
		st.Announced = slices.DeleteFunc(st.Announced, func(x Announcement) bool { return x.ID == a.ID })
		return true
	case SetBackup:
		sf := st.findExact(a.Local, a.Remote)
		if sf == nil {
			return false
		}
		sf.PrioPending = false
		if err == nil {
			sf.Backup = a.Backup
			sf.RetryAt = time.Time{}
			return true // the use may have changed again
		}
		sf.RetryAt = now.Add(Backoff(t.retry, 1, seedOf(st.Token, sf.path(), 1)))
		return true
	}
	return false
}

// Replace installs the connections rebuilt from the kernel: those the
// kernel no longer has are dropped, new ones are added (within the bound),
// and for those known already the kernel's view of subflows wins while
// this tracker's memory of pending, failed and given-up attempts, of the
// peer's announced addresses and of id bindings is kept.
func (t *Tracker) Replace(conns []ConnState, now time.Time) {
	fresh := make(map[uint32]*ConnState, len(conns))
	for i := range conns {
		c := conns[i].Clone()
		if old := t.conns[c.Token]; old != nil {
			merge(&c, old)
		} else if len(fresh) >= t.max {
			t.dropped++
			continue
		}
		if c.Created.IsZero() {
			c.Created = now
		}
		fresh[c.Token] = &c
	}
	t.conns = fresh
}

// merge keeps in c (from the kernel) what only old (this tracker) knew.
func merge(c, old *ConnState) {
	c.Created = old.Created
	c.Unmanaged = c.Unmanaged || old.Unmanaged
	c.DenyJoinID0 = c.DenyJoinID0 || old.DenyJoinID0
	for _, ra := range old.RemoteAddrs {
		if !slices.ContainsFunc(c.RemoteAddrs, func(x RemoteAddr) bool { return x.ID == ra.ID }) {
			c.RemoteAddrs = append(c.RemoteAddrs, ra)
		}
	}
	slices.SortFunc(c.RemoteAddrs, func(a, b RemoteAddr) int { return int(a.ID) - int(b.ID) })
	for _, sf := range old.Subflows {
		switch sf.State {
		case SubflowPending, SubflowFailed, SubflowAbandoned:
			if sf.Ours && c.findPath(sf.path()) == nil {
				c.Subflows = append(c.Subflows, sf)
			}
		case SubflowUp, SubflowClosing:
			if n := c.findExact(sf.Local, sf.Remote); n != nil {
				n.Ours = n.Ours || sf.Ours
				n.Failures, n.Since = sf.Failures, sf.Since
				n.Backup = sf.Backup
			}
		}
	}
	for _, l := range old.IDs {
		c.bindID(l.ID, l.Addr, l.Port)
	}
	for _, a := range old.Announced {
		if c.findAnnounce(a.Addr, a.Port) == nil && a.State != AnnounceDone && a.State != AnnounceRemoving {
			c.Announced = append(c.Announced, a)
		}
	}
}

// isUnmanaged reports the kernel's refusal for connections of another
// path manager.
func isUnmanaged(err error) bool {
	var ge *genl.Error
	return errors.As(err, &ge) && strings.Contains(ge.Message, "userspace PM not selected")
}

// isInvalidToken reports an unknown connection token.
func isInvalidToken(err error) bool {
	var ge *genl.Error
	return errors.As(err, &ge) && strings.Contains(ge.Message, "invalid token")
}

// isIDMismatch reports the kernel binding the address or id otherwise.
func isIDMismatch(err error) bool {
	var ge *genl.Error
	return errors.As(err, &ge) && strings.Contains(ge.Message, "did not match address and id")
}
