package endpoints

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Kernel is what the Reconciler needs from the kernel's path manager;
// *genl.Client satisfies it.
type Kernel interface {
	Endpoints() ([]genl.Endpoint, error)
	AddEndpoint(ep genl.Endpoint) error
	DeleteEndpoint(id uint8) error
	SetEndpointFlags(ref genl.Endpoint, flags genl.Flags) error
	Limits() (genl.Limits, error)
	SetLimits(u genl.LimitsUpdate) error
}

// Source is the Reconciler's view of links and addresses; *Watcher
// satisfies it.
type Source interface {
	// Snapshot returns the current view.
	Snapshot() Snapshot
	// Changed receives a value after the view changed. Values may be
	// coalesced; a nil channel means no notifications.
	Changed() <-chan struct{}
	// Refresh re-lists everything from the kernel, for the periodic resync.
	Refresh() error
}

// Desired turns a snapshot into the wanted endpoints and limits. The daemon
// supplies it (policy decisions); it must not block.
type Desired func(Snapshot) ([]Want, LimitsWant)

// LimitsWant are the wanted path-manager limits; a nil field leaves that
// limit as it is.
type LimitsWant struct {
	Subflows        *uint32
	AddAddrAccepted *uint32
}

// DefaultResyncInterval is how often a Reconciler re-reads everything to
// catch drift nobody told it about.
const DefaultResyncInterval = 30 * time.Second

// Config configures a Reconciler. Kernel, Source and Desired are required.
type Config struct {
	Kernel  Kernel
	Source  Source
	Desired Desired
	// StatePath is the owned-endpoint state file; "" keeps ownership in
	// memory only.
	StatePath string
	// Owned is the initial ownership, usually from LoadOrEmpty. When nil
	// and StatePath is set, NewReconciler loads it with LoadOrEmpty and
	// logs (and reports in Status) a load error.
	Owned *Owned
	// ResyncInterval is the period of the drift-catching resync:
	// DefaultResyncInterval when 0, none when negative.
	ResyncInterval time.Duration
	// MaxEndpoints is the kernel's endpoint limit; genl.MaxEndpoints when 0.
	MaxEndpoints int
	// Logger receives one line per change; zap.NewNop() when nil.
	Logger *zap.Logger
}

// Status is the outcome of the last reconcile, for `status`.
type Status struct {
	// LastReconcile is when it started and Duration how long it took.
	LastReconcile time.Time
	Duration      time.Duration
	// Reconciles counts completed reconciles.
	Reconciles uint64
	// Errors are the failures of the last reconcile (one per failed call;
	// the others still ran).
	Errors []error
	// Applied are the operations that succeeded in the last reconcile.
	Applied []Op
	// Owned are the endpoints we manage now.
	Owned []OwnedEndpoint
	// Report explains what was left alone (foreign endpoints, capped and
	// skipped wants) and why.
	Report Report
	// Limits are the kernel's limits as last read or set.
	Limits genl.Limits
	// Totals since the Reconciler was created, for metrics: the reconciles
	// that had errors, their failed calls, and the time all reconciles
	// took (Duration summed).
	FailedReconciles, ErrorsTotal uint64
	TotalDuration                 time.Duration
}

// clone deep-copies the slices so readers cannot race with the next update.
func (s Status) clone() Status {
	s.Errors = slices.Clone(s.Errors)
	s.Applied = slices.Clone(s.Applied)
	s.Owned = slices.Clone(s.Owned)
	s.Report.Foreign = slices.Clone(s.Report.Foreign)
	s.Report.Capped = slices.Clone(s.Report.Capped)
	s.Report.Skipped = slices.Clone(s.Report.Skipped)
	return s
}

// Reconciler keeps the kernel's endpoints and limits equal to what Desired
// says, whenever something changes. Create it with NewReconciler and call
// Run.
//
// Before planning it drops the wants the kernel could not use: the link
// (by Ifindex, else Iface) is missing, down or without carrier, or the
// address is not on it, still tentative or failed DAD. They appear in
// Report.Skipped, and endpoints follow their links even when the policy
// does not look at link state.
type Reconciler struct {
	k        Kernel
	src      Source
	desired  Desired
	path     string
	interval time.Duration
	max      int
	log      *zap.Logger

	// trigger holds at most one pending request: everything that arrives
	// while a reconcile runs collapses into one more run.
	trigger chan struct{}

	// mu serializes reconciles and Cleanup and guards the fields below.
	mu        sync.Mutex
	owned     *Owned
	saveDirty bool                  // the state file is behind owned
	pending   map[key]OwnedEndpoint // added, id not yet seen in a dump
	retried   bool                  // the last reconcile already asked for a rerun
	loadErr   error                 // state-file error to report once

	statusMu sync.Mutex
	status   Status

	// onIdle, when set (tests), runs each time Run is about to wait.
	onIdle func()
}

// NewReconciler checks cfg and returns a Reconciler.
func NewReconciler(cfg Config) (*Reconciler, error) {
	switch {
	case cfg.Kernel == nil:
		return nil, errors.New("endpoints: Config.Kernel is required (e.g. a *genl.Client)")
	case cfg.Source == nil:
		return nil, errors.New("endpoints: Config.Source is required (e.g. a *Watcher)")
	case cfg.Desired == nil:
		return nil, errors.New("endpoints: Config.Desired is required")
	}
	r := &Reconciler{
		k:        cfg.Kernel,
		src:      cfg.Source,
		desired:  cfg.Desired,
		path:     cfg.StatePath,
		interval: cfg.ResyncInterval,
		max:      cfg.MaxEndpoints,
		log:      cfg.Logger,
		trigger:  make(chan struct{}, 1),
		owned:    cfg.Owned,
		pending:  make(map[key]OwnedEndpoint),
	}
	if r.interval == 0 {
		r.interval = DefaultResyncInterval
	}
	if r.max <= 0 {
		r.max = genl.MaxEndpoints
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.owned == nil {
		if r.path != "" {
			o, pending, err := loadStateOrEmpty(r.path)
			// Adds a crash interrupted: the first dump adopts those that
			// were made and nobody else owns.
			for _, e := range pending {
				r.pending[keyOf(e.Addr, e.Port)] = e
			}
			if err != nil {
				r.log.Warn("starting with no owned endpoints", zap.String("path", r.path), zap.Error(err))
				r.loadErr = err
			} else if o.Len()+len(pending) > 0 {
				// After a crash or restart this is the only trace that the
				// endpoints were taken back rather than re-created; those
				// gone meanwhile are dropped (and logged) by the first
				// reconcile.
				r.log.Info("adopting endpoints recorded in the state file",
					zap.String("path", r.path), zap.Int("endpoints", o.Len()), zap.Int("pending_adds", len(pending)))
			}
			r.owned = o
		} else {
			r.owned = NewOwned()
		}
	} else {
		r.owned = r.owned.Clone()
	}
	return r, nil
}

// Trigger asks for a reconcile without waiting for it. When idle, Run starts
// one at once; triggers that arrive during a reconcile cause exactly one
// more right after it.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Status returns a copy of the outcome of the last reconcile.
func (r *Reconciler) Status() Status {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.status.clone()
}

// Run reconciles at once, then on every Trigger, every change the Source
// reports and every ResyncInterval (which also re-lists the Source), until
// ctx is cancelled; it then returns nil. Failures are reported in Status
// and logged, never returned: the next run retries.
func (r *Reconciler) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	changed := r.src.Changed()
	resync := true // the first run re-lists too
	for {
		if ctx.Err() != nil {
			return nil
		}
		r.reconcile(ctx, resync)
		if r.onIdle != nil {
			r.onIdle()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
			resync = false
		case <-changed:
			resync = false
		case <-tick:
			resync = true
		}
		// Whatever else is already pending is covered by the next run.
	drain:
		for {
			select {
			case <-r.trigger:
			case <-changed:
			case <-tick:
				resync = true
			default:
				break drain
			}
		}
	}
}

// Reconcile runs one reconcile now, on the Source's current snapshot, and
// returns its errors joined. It waits for a reconcile already running.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	st := r.reconcile(ctx, false)
	return errors.Join(st.Errors...)
}

// Cleanup deletes every endpoint this Reconciler owns and leaves all others.
// The daemon calls it on stop (unless configured to keep its endpoints),
// after Run has returned.
func (r *Reconciler) Cleanup(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actual, err := r.k.Endpoints()
	if err != nil {
		return fmt.Errorf("clean up endpoints: list the kernel's endpoints: %w", err)
	}
	owned := r.owned.Clone()
	r.adoptPending(owned, actual)
	owned.prune(actual)
	var errs []error
	for _, e := range owned.List() {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("clean up endpoints: stopped before deleting %s: %w", addrPort(e.Addr, e.Port), err))
			break
		}
		err := r.k.DeleteEndpoint(e.ID)
		if err != nil && !errors.Is(err, genl.ErrNotFound) {
			r.log.Warn("cannot delete endpoint", fields(e.Iface, e.Addr, e.ID, zap.Error(err))...)
			errs = append(errs, fmt.Errorf("clean up endpoint %s on %s (id %d): %w; delete it by hand with `ip mptcp endpoint delete id %d`",
				addrPort(e.Addr, e.Port), e.Iface, e.ID, err, e.ID))
			continue
		}
		r.log.Info("endpoint deleted", fields(e.Iface, e.Addr, e.ID, zap.String("reason", "cleanup on stop"))...)
		owned.Delete(e.Addr, e.Port)
	}
	if err := r.commitOwned(owned); err != nil {
		errs = append(errs, err)
	}
	r.statusMu.Lock()
	r.status.Owned = owned.List()
	r.statusMu.Unlock()
	return errors.Join(errs...)
}

// fields are the log fields of one endpoint, with stable keys.
func fields(iface string, addr netip.Addr, id uint8, extra ...zap.Field) []zap.Field {
	f := make([]zap.Field, 0, 3+len(extra))
	f = append(f, zap.String("iface", iface), zap.Stringer("addr", addr))
	if id != 0 {
		f = append(f, zap.Uint8("endpoint_id", id))
	}
	return append(f, extra...)
}

// reconcile is one pass: snapshot → desired → dump → Plan → apply → save →
// publish. It returns the published status.
func (r *Reconciler) reconcile(ctx context.Context, resync bool) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	var errs []error
	if r.loadErr != nil {
		errs = append(errs, r.loadErr)
		r.loadErr = nil
	}
	again := false

	if resync {
		if err := r.src.Refresh(); err != nil {
			errs = append(errs, fmt.Errorf("re-list links and addresses: %w", err))
		}
	}
	snap := r.src.Snapshot()
	wants, lw := r.desired(snap)
	wants, skipped := usableWants(snap, wants)

	actual, err := r.k.Endpoints()
	if err != nil {
		errs = append(errs, fmt.Errorf("list the kernel's endpoints: %w; nothing was changed, the next reconcile retries", err))
		return r.publish(start, errs, nil, nil, nil, genl.Limits{}, false)
	}
	owned := r.owned.Clone()
	r.adoptPending(owned, actual)
	// Plan sees the stale records too, to say why it re-adds an endpoint;
	// it owns only endpoints whose id matches, so they change nothing else.
	ops, rep := Plan(wants, actual, owned, r.max)
	for _, e := range owned.prune(actual) {
		r.log.Info("endpoint no longer ours: deleted or re-created outside mptcpd-go",
			fields(e.Iface, e.Addr, e.ID)...)
	}
	rep.Skipped = append(skipped, rep.Skipped...)
	if len(ops) > 0 {
		r.log.Debug("reconcile plan", zap.String("summary", rep.Summary), zap.Int("ops", len(ops)))
	}

	if err := r.recordIntents(owned, ops); err != nil {
		errs = append(errs, err)
	}
	var applied []Op
	added := make(map[key]Op)
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("reconcile stopped with %d changes left: %w", len(ops)-len(applied), err))
			break
		}
		ep := op.Endpoint
		k := keyOf(ep.Addr, ep.Port)
		switch op.Kind {
		case OpSetFlags:
			err = r.k.SetEndpointFlags(genl.Endpoint{ID: ep.ID}, ep.Flags)
			if err == nil {
				rec, _ := owned.Lookup(ep.Addr, ep.Port)
				rec.Flags = ep.Flags
				owned.Set(rec)
				r.log.Info("endpoint flags changed", fields(op.Iface, ep.Addr, ep.ID,
					zap.Stringer("flags", ep.Flags), zap.String("reason", op.Reason))...)
			} else if errors.Is(err, genl.ErrNotFound) {
				owned.Delete(ep.Addr, ep.Port)
				again = true
			}
		case OpDelete:
			err = r.k.DeleteEndpoint(ep.ID)
			if err == nil || errors.Is(err, genl.ErrNotFound) {
				// Gone either way.
				owned.Delete(ep.Addr, ep.Port)
			}
			if err == nil {
				r.log.Info("endpoint deleted", fields(op.Iface, ep.Addr, ep.ID, zap.String("reason", op.Reason))...)
			}
		case OpAdd:
			err = r.k.AddEndpoint(ep)
			switch {
			case err == nil:
				added[k] = op
			case errors.Is(err, genl.ErrExists):
				// Someone added it since our dump: the next dump shows
				// whose it is.
				again = true
			case errors.Is(err, genl.ErrTooManyEndpoints):
				again = true
				rep.Capped = append(rep.Capped, Capped{
					Want: Want{Iface: op.Iface, Ifindex: ep.Ifindex, Addr: ep.Addr, Port: ep.Port, Flags: ep.Flags},
					Note: fmt.Sprintf("%s not added: the kernel refused, it already has %d endpoints (someone else added one?)",
						describe(op.Iface, ep.Addr, ep.Port), r.max),
				})
			}
		}
		if err != nil {
			if !(op.Kind == OpDelete && errors.Is(err, genl.ErrNotFound)) {
				r.log.Warn("endpoint change failed", fields(op.Iface, ep.Addr, ep.ID,
					zap.Stringer("op", op.Kind), zap.String("reason", op.Reason), zap.Error(err))...)
				errs = append(errs, opError(op, err))
			}
			continue
		}
		applied = append(applied, op)
	}

	// The kernel does not answer an add with the id it chose: learn it
	// from a dump. Until then the adds stay pending (see adoptPending).
	if len(added) > 0 {
		for k, op := range added {
			r.pending[k] = OwnedEndpoint{Addr: op.Endpoint.Addr, Port: op.Endpoint.Port,
				Flags: op.Endpoint.Flags, Ifindex: op.Endpoint.Ifindex, Iface: op.Iface}
		}
		after, err := r.k.Endpoints()
		if err != nil {
			errs = append(errs, fmt.Errorf("list the kernel's endpoints after adding: %w", err))
			again = true
		} else {
			r.adoptPending(owned, after)
			for k, op := range added {
				rec, ok := owned.Lookup(k.addr, k.port)
				if !ok {
					again = true
					continue
				}
				r.log.Info("endpoint added", fields(op.Iface, op.Endpoint.Addr, rec.ID,
					zap.Stringer("flags", op.Endpoint.Flags), zap.String("reason", op.Reason))...)
			}
		}
	}

	limits, lerr := r.applyLimits(lw)
	if lerr != nil {
		errs = append(errs, lerr)
	}

	if err := r.commitOwned(owned); err != nil {
		errs = append(errs, err)
	}
	rep.Summary = summaryAfter(rep.Summary, len(applied), len(ops))

	// A race with someone else (ErrExists, a vanished endpoint) settles
	// with one more look; asking only once avoids spinning if it persists.
	if again && !r.retried {
		r.retried = true
		r.Trigger()
	} else if !again {
		r.retried = false
	}
	return r.publish(start, errs, applied, owned, &rep, limits, true)
}

// summaryAfter rewrites the plan's summary ("2 to add, 1 to delete; 5 of 8
// endpoints in use ...") for status, once the ops ran: the part before the
// first "; " is replaced by what was done.
func summaryAfter(planSummary string, applied, planned int) string {
	if planned == 0 {
		return planSummary
	}
	_, rest, _ := strings.Cut(planSummary, "; ")
	head := fmt.Sprintf("applied %d changes", applied)
	if applied != planned {
		head = fmt.Sprintf("applied %d of %d changes", applied, planned)
	}
	return head + "; " + rest
}

// opError wraps a failed op with what it was about.
func opError(op Op, err error) error {
	ep := op.Endpoint
	what := describe(op.Iface, ep.Addr, ep.Port)
	switch op.Kind {
	case OpAdd:
		hint := "it is retried on the next reconcile"
		if errors.Is(err, genl.ErrExists) {
			hint = "someone else added it meanwhile; it will be left to them"
		}
		return fmt.Errorf("add endpoint %s (%s): %w; %s", what, ep.Flags, err, hint)
	case OpDelete:
		return fmt.Errorf("delete endpoint %s (id %d): %w; it is retried on the next reconcile", what, ep.ID, err)
	default:
		return fmt.Errorf("set flags of endpoint %s (id %d) to %q: %w; it is retried on the next reconcile", what, ep.ID, ep.Flags, err)
	}
}

// recordIntents writes the adds among ops to the state file as pending
// before they are made, so that a crash right after an add does not turn
// the endpoint into someone else's at the next start. The file is
// rewritten without them by the commit that follows. Call with r.mu held.
func (r *Reconciler) recordIntents(owned *Owned, ops []Op) error {
	if r.path == "" {
		return nil
	}
	var pending []OwnedEndpoint
	for _, op := range ops {
		if op.Kind == OpAdd {
			ep := op.Endpoint
			pending = append(pending, OwnedEndpoint{Addr: normAddr(ep.Addr), Port: ep.Port, Flags: ep.Flags,
				Ifindex: ep.Ifindex, Iface: op.Iface})
		}
	}
	if len(pending) == 0 {
		return nil
	}
	r.saveDirty = true
	if err := owned.saveState(r.path, pending); err != nil {
		return fmt.Errorf("%w; adding anyway, but a crash before the next save would leave the new endpoints unowned", err)
	}
	return nil
}

// adoptPending records the ids of endpoints we added once a dump shows
// them. Only an endpoint that nobody owns yet is adopted.
func (r *Reconciler) adoptPending(owned *Owned, actual []genl.Endpoint) {
	if len(r.pending) == 0 {
		return
	}
	for _, ep := range actual {
		k := keyOf(ep.Addr, ep.Port)
		rec, ok := r.pending[k]
		if !ok {
			continue
		}
		if _, taken := owned.Lookup(ep.Addr, ep.Port); !taken {
			rec.ID = ep.ID
			owned.Set(rec)
		}
	}
	// Pending adds the dump does not show were deleted again by someone
	// else; either way, they are settled.
	clear(r.pending)
}

// applyLimits reads the kernel's limits and sets those lw names that
// differ.
func (r *Reconciler) applyLimits(lw LimitsWant) (genl.Limits, error) {
	cur, err := r.k.Limits()
	if err != nil {
		return cur, fmt.Errorf("read the kernel's mptcp limits: %w", err)
	}
	var u genl.LimitsUpdate
	if lw.Subflows != nil && *lw.Subflows != cur.Subflows {
		u.Subflows = lw.Subflows
	}
	if lw.AddAddrAccepted != nil && *lw.AddAddrAccepted != cur.AddAddrAccepted {
		u.AddAddrAccepted = lw.AddAddrAccepted
	}
	if u.Subflows == nil && u.AddAddrAccepted == nil {
		return cur, nil
	}
	if err := r.k.SetLimits(u); err != nil {
		return cur, fmt.Errorf("set the kernel's mptcp limits (subflows %s, add_addr_accepted %s): %w; the kernel accepts 0..%d",
			optU32(lw.Subflows), optU32(lw.AddAddrAccepted), err, genl.MaxLimit)
	}
	old := cur
	if u.Subflows != nil {
		cur.Subflows = *u.Subflows
	}
	if u.AddAddrAccepted != nil {
		cur.AddAddrAccepted = *u.AddAddrAccepted
	}
	r.log.Info("limits changed",
		zap.Uint32("subflows", cur.Subflows), zap.Uint32("old_subflows", old.Subflows),
		zap.Uint32("add_addr_accepted", cur.AddAddrAccepted), zap.Uint32("old_add_addr_accepted", old.AddAddrAccepted))
	return cur, nil
}

func optU32(p *uint32) string {
	if p == nil {
		return "unchanged"
	}
	return fmt.Sprint(*p)
}

// commitOwned makes owned current and writes the state file when it
// changed (or an earlier write failed). Call with r.mu held.
func (r *Reconciler) commitOwned(owned *Owned) error {
	if !owned.Equal(r.owned) {
		r.saveDirty = true
	}
	r.owned = owned
	if !r.saveDirty || r.path == "" {
		return nil
	}
	if err := owned.Save(r.path); err != nil {
		return fmt.Errorf("%w; ownership is kept in memory and saving is retried", err)
	}
	r.saveDirty = false
	return nil
}

// publish stores the status of a reconcile. ok is false when the
// reconcile stopped before it could plan.
func (r *Reconciler) publish(start time.Time, errs []error, applied []Op, owned *Owned, rep *Report, limits genl.Limits, ok bool) Status {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	st := &r.status
	st.LastReconcile = start
	st.Duration = time.Since(start)
	st.Reconciles++
	st.TotalDuration += st.Duration
	if len(errs) > 0 {
		st.FailedReconciles++
		st.ErrorsTotal += uint64(len(errs))
	}
	st.Errors = errs
	st.Applied = applied
	if ok {
		st.Owned = owned.List()
		st.Report = *rep
		st.Limits = limits
	}
	return st.clone()
}

// usableWants drops the wants the kernel could not use now: the interface
// is missing or not running, the address is not on it, or DAD has not
// finished (or failed). The policy may not check this itself, and an
// endpoint on a dead path only delays subflows.
func usableWants(s Snapshot, ws []Want) (usable []Want, skipped []Skipped) {
	usable = make([]Want, 0, len(ws))
	for _, w := range ws {
		if note := unusable(s, w); note != "" {
			skipped = append(skipped, Skipped{Want: w, Note: w.String() + ": " + note})
			continue
		}
		usable = append(usable, w)
	}
	return usable, skipped
}

func unusable(s Snapshot, w Want) string {
	var (
		l  Link
		ok bool
	)
	switch {
	case w.Ifindex != 0:
		l, ok = s.LinkByIndex(w.Ifindex)
	case w.Iface != "":
		l, ok = s.LinkByName(w.Iface)
	default:
		for _, c := range s.Links {
			if _, has := c.Addr(w.Addr); has {
				l, ok = c, true
				break
			}
		}
		if !ok {
			return "no interface has this address; waiting for it"
		}
	}
	if !ok {
		return "the interface does not exist; waiting for it"
	}
	if !l.Up {
		return fmt.Sprintf("%s is down; waiting for it", l.Name)
	}
	if !l.Running {
		return fmt.Sprintf("%s has no carrier; waiting for it", l.Name)
	}
	a, ok := l.Addr(w.Addr)
	switch {
	case !ok:
		return fmt.Sprintf("the address is not on %s; waiting for it", l.Name)
	case a.DADFailed:
		return "duplicate address detection failed: another host uses this address"
	case a.Tentative:
		return "duplicate address detection has not finished; waiting for it"
	}
	return ""
}
