package endpoints

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// NetNS is the network namespace to watch; nil for the caller's. The
	// caller keeps it open while the Watcher runs (it is used again on
	// every resubscription) and closes it afterwards. The sockets are
	// created inside it from a briefly switched, locked OS thread; the rest
	// of the process stays where it is.
	NetNS *netns.NsHandle
	// Logger gets subscription trouble; zap.NewNop() when nil.
	Logger *zap.Logger
	// ReceiveBufferSize sets the subscription sockets' receive buffer in
	// bytes (0: the system default; capped by net.core.rmem_max). A buffer
	// that overflows costs a resubscription and a full re-list, nothing
	// else.
	ReceiveBufferSize int
}

// Watcher follows the links, addresses and default routes of a namespace
// through rtnetlink subscriptions and keeps a Snapshot of them. Events are
// only hints: each one makes the Watcher re-list what it touches (links,
// addresses, routes), because single events are not complete (the kernel
// drops IPv4 routes of a link that goes down without telling, for one).
// Events that arrive together cause one re-list.
type Watcher struct {
	nsp     *netns.NsHandle
	rcvbuf  int
	h       *netlink.Handle
	log     *zap.Logger
	changed chan struct{}

	// resubscribes counts lost subscriptions, for tests and metrics.
	resubscribes atomic.Int64
	// events counts the notifications received, for metrics.
	events eventCounters

	// listMu serializes re-lists and guards the parts below.
	listMu sync.Mutex
	links  []Link // without Addrs and default-route facts
	addrs  map[int][]Addr
	def4   map[int]bool
	def6   map[int]bool

	snapMu sync.RWMutex
	snap   Snapshot
}

// eventCounters count rtnetlink notifications by kind; the follow loop
// adds, metrics read.
type eventCounters struct {
	link, addr, route atomic.Uint64
}

// WatcherCounts are a Watcher's running totals since it was created.
type WatcherCounts struct {
	// Link, Addr and Route count the rtnetlink notifications received,
	// the initial listing of each subscription included; Route counts all
	// routes, not only the default ones that matter.
	Link, Addr, Route uint64
	// Resubscribes counts the subscriptions lost (a receive buffer
	// overflow, typically) and made again, each with a full re-list.
	Resubscribes uint64
}

// Counts returns the Watcher's counters.
func (w *Watcher) Counts() WatcherCounts {
	return WatcherCounts{
		Link: w.events.link.Load(), Addr: w.events.addr.Load(), Route: w.events.route.Load(),
		Resubscribes: uint64(w.resubscribes.Load()),
	}
}

// What a re-list covers.
type dirtySet uint8

const (
	dirtyLinks dirtySet = 1 << iota
	dirtyAddrs
	dirtyRoutes
	dirtyAll = dirtyLinks | dirtyAddrs | dirtyRoutes
)

// relistRetry is how long to wait before repeating a re-list that failed
// (typically ErrDumpInterrupted: things changed during the dump).
const relistRetry = 20 * time.Millisecond

// NewWatcher opens a netlink handle in the namespace and lists its links,
// addresses and routes once, so Snapshot is valid before Run. Close it
// when done.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	ns := netns.None()
	if cfg.NetNS != nil {
		ns = *cfg.NetNS
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("watch links and addresses: open rtnetlink socket in the namespace: %w", err)
	}
	w := &Watcher{
		nsp:     cfg.NetNS,
		rcvbuf:  cfg.ReceiveBufferSize,
		h:       h,
		log:     cfg.Logger,
		changed: make(chan struct{}, 1),
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	if err := w.relistRetrying(dirtyAll); err != nil {
		h.Close()
		return nil, err
	}
	return w, nil
}

// Close releases the netlink handle. Call it after Run returned.
func (w *Watcher) Close() error {
	w.h.Close()
	return nil
}

// Snapshot returns a copy of the current view.
func (w *Watcher) Snapshot() Snapshot {
	w.snapMu.RLock()
	defer w.snapMu.RUnlock()
	return w.snap.Clone()
}

// Changed receives a value after the snapshot changed; several changes may
// collapse into one value.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// Refresh re-lists everything now, whatever the events said.
func (w *Watcher) Refresh() error { return w.relistRetrying(dirtyAll) }

// Run follows the namespace until ctx is cancelled, then returns nil. When
// a subscription fails (e.g. the socket buffer overflowed and events were
// lost) it resubscribes and re-lists everything. It returns an error only
// when it cannot subscribe at all at the start.
func (w *Watcher) Run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	for first := true; ; first = false {
		started := time.Now()
		err := w.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var se subscribeError
		if first && errors.As(err, &se) {
			return err
		}
		w.resubscribes.Add(1)
		if time.Since(started) > 10*time.Second {
			backoff = 50 * time.Millisecond
		}
		w.log.Warn("lost the rtnetlink subscription; resubscribing and re-listing",
			zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// subscribeError is a failure to subscribe (as opposed to losing a working
// subscription).
type subscribeError struct{ error }

func (e subscribeError) Unwrap() error { return e.error }

// follow subscribes, re-lists and then re-lists again on each batch of
// events, until ctx is done or a subscription ends.
func (w *Watcher) follow(ctx context.Context) error {
	done := make(chan struct{})
	linkCh := make(chan netlink.LinkUpdate, 64)
	addrCh := make(chan netlink.AddrUpdate, 64)
	routeCh := make(chan netlink.RouteUpdate, 64)
	// The library calls ErrorCallback from its own goroutine; never block it.
	errCh := make(chan error, 16)
	onErr := func(err error) {
		select {
		case errCh <- err:
		default:
		}
	}
	var drains []func()
	defer func() {
		close(done)
		// The library's goroutines block sending to the channels until
		// they notice the closed socket: drain so they can exit.
		for _, d := range drains {
			d()
		}
	}()

	if err := netlink.LinkSubscribeWithOptions(linkCh, done, netlink.LinkSubscribeOptions{
		Namespace: w.nsp, ErrorCallback: onErr, ListExisting: true,
		ReceiveBufferSize: w.rcvbuf,
	}); err != nil {
		return subscribeError{fmt.Errorf("subscribe to link changes: %w", err)}
	}
	drains = append(drains, func() {
		for range linkCh {
		}
	})
	if err := netlink.AddrSubscribeWithOptions(addrCh, done, netlink.AddrSubscribeOptions{
		Namespace: w.nsp, ErrorCallback: onErr, ListExisting: true,
		ReceiveBufferSize: w.rcvbuf,
	}); err != nil {
		return subscribeError{fmt.Errorf("subscribe to address changes: %w", err)}
	}
	drains = append(drains, func() {
		for range addrCh {
		}
	})
	if err := netlink.RouteSubscribeWithOptions(routeCh, done, netlink.RouteSubscribeOptions{
		Namespace: w.nsp, ErrorCallback: onErr, ListExisting: true,
		ReceiveBufferSize: w.rcvbuf,
	}); err != nil {
		return subscribeError{fmt.Errorf("subscribe to route changes: %w", err)}
	}
	drains = append(drains, func() {
		for range routeCh {
		}
	})

	// Everything before the subscriptions is in this re-list; everything
	// after arrives as events.
	st := &followState{dirty: dirtyAll, counts: &w.events}
	var retry <-chan time.Time
	delay := relistRetry
	for {
		if st.dirty != 0 && retry == nil {
			if err := w.relist(st.dirty); err != nil {
				// Interrupted dumps are routine under churn; anything
				// else is worth a warning, and a slower retry.
				log := w.log.Warn
				if errors.Is(err, netlink.ErrDumpInterrupted) {
					log = w.log.Debug
				}
				log("re-listing links and addresses failed; retrying", zap.Error(err), zap.Duration("retry_in", delay))
				retry = time.After(delay)
				delay = min(2*delay, time.Second)
			} else {
				st.dirty = 0
				delay = relistRetry
			}
		}
		ok := true
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			retry = nil
		case _, open := <-linkCh:
			ok = st.onLink(open)
		case _, open := <-addrCh:
			ok = st.onAddr(open)
		case u, open := <-routeCh:
			ok = st.onRoute(u, open)
		case err := <-errCh:
			st.onError(err)
		}
		// Take in what else is already queued, so a burst costs one re-list.
	batch:
		for ok {
			select {
			case _, open := <-linkCh:
				ok = st.onLink(open)
			case _, open := <-addrCh:
				ok = st.onAddr(open)
			case u, open := <-routeCh:
				ok = st.onRoute(u, open)
			case err := <-errCh:
				st.onError(err)
			default:
				break batch
			}
		}
		if !ok {
			err := st.lastErr
			if err == nil {
				err = errors.New("subscription closed")
			}
			return fmt.Errorf("rtnetlink subscription ended: %w", err)
		}
	}
}

// followState collects what a batch of events made stale. Events carry no
// data we use: they only say what to re-list. The on* methods return false
// when the subscription's channel was closed.
type followState struct {
	dirty   dirtySet
	lastErr error
	// counts, when set, counts the notifications received.
	counts *eventCounters
}

// count adds one to the counter pick chooses, unless the channel was
// closed or there are no counters.
func (f *followState) count(pick func(*eventCounters) *atomic.Uint64, open bool) {
	if open && f.counts != nil {
		pick(f.counts).Add(1)
	}
}

// onLink: a link change can also drop routes and (IPv6) addresses
// silently, so everything is re-listed.
func (f *followState) onLink(open bool) bool {
	f.count(func(c *eventCounters) *atomic.Uint64 { return &c.link }, open)
	f.dirty |= dirtyAll
	return open
}

// onAddr: removing an address can remove routes through it.
func (f *followState) onAddr(open bool) bool {
	f.count(func(c *eventCounters) *atomic.Uint64 { return &c.addr }, open)
	f.dirty |= dirtyAddrs | dirtyRoutes
	return open
}

// onRoute: only default routes of the main table matter.
func (f *followState) onRoute(u netlink.RouteUpdate, open bool) bool {
	f.count(func(c *eventCounters) *atomic.Uint64 { return &c.route }, open)
	if open && isDefaultRoute(u.Route) {
		f.dirty |= dirtyRoutes
	}
	return open
}

// onError notes the library's complaint; an interrupted dump (things
// changed while listing) means the listing may be incomplete.
func (f *followState) onError(err error) {
	f.lastErr = err
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		f.dirty |= dirtyAll
	}
}

// isDefaultRoute reports whether a route event can change the default-route
// facts: a unicast default route of the main table.
func isDefaultRoute(r netlink.Route) bool {
	if r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

// relistRetrying re-lists, repeating a few times when a dump was
// interrupted by concurrent changes.
func (w *Watcher) relistRetrying(what dirtySet) error {
	var err error
	for range 5 {
		if err = w.relist(what); err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
		time.Sleep(relistRetry)
	}
	return err
}

// relist dumps what is dirty, rebuilds the snapshot and notifies Changed
// when it differs.
func (w *Watcher) relist(what dirtySet) error {
	w.listMu.Lock()
	defer w.listMu.Unlock()
	if what&dirtyLinks != 0 {
		nl, err := w.h.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		links := make([]Link, 0, len(nl))
		for _, l := range nl {
			a := l.Attrs()
			up := a.RawFlags&unix.IFF_UP != 0
			links = append(links, Link{
				Index:    a.Index,
				Name:     a.Name,
				Kind:     l.Type(),
				Up:       up,
				Running:  up && a.RawFlags&unix.IFF_RUNNING != 0,
				Loopback: a.RawFlags&unix.IFF_LOOPBACK != 0,
			})
		}
		slices.SortFunc(links, func(a, b Link) int { return cmp.Compare(a.Index, b.Index) })
		w.links = links
	}
	if what&dirtyAddrs != 0 {
		nl, err := w.h.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		addrs := make(map[int][]Addr)
		for _, a := range nl {
			if ad, ok := convertAddr(a); ok {
				addrs[a.LinkIndex] = append(addrs[a.LinkIndex], ad)
			}
		}
		for _, l := range addrs {
			slices.SortFunc(l, func(a, b Addr) int {
				return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
			})
		}
		w.addrs = addrs
	}
	if what&dirtyRoutes != 0 {
		def4, def6 := make(map[int]bool), make(map[int]bool)
		// Without RT_FILTER_TABLE only the main table is listed.
		err := w.h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{}, 0, func(r netlink.Route) bool {
			if !isDefaultRoute(r) {
				return true
			}
			// Routes through nexthop objects (nhid) carry no link and
			// are not seen here.
			m := def4
			if r.Family == unix.AF_INET6 {
				m = def6
			}
			if r.LinkIndex > 0 {
				m[r.LinkIndex] = true
			}
			for _, nh := range r.MultiPath {
				m[nh.LinkIndex] = true
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		w.def4, w.def6 = def4, def6
	}

	snap := Snapshot{Links: make([]Link, len(w.links))}
	for i, l := range w.links {
		l.Addrs = slices.Clone(w.addrs[l.Index])
		l.DefaultV4, l.DefaultV6 = w.def4[l.Index], w.def6[l.Index]
		snap.Links[i] = l
	}
	w.snapMu.Lock()
	same := w.snap.Equal(snap)
	if !same {
		w.snap = snap
	}
	w.snapMu.Unlock()
	if !same {
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	return nil
}

// convertAddr turns an rtnetlink address into an Addr.
func convertAddr(a netlink.Addr) (Addr, bool) {
	if a.IPNet == nil {
		return Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return Addr{}, false
	}
	ip = ip.Unmap()
	bits, _ := a.Mask.Size()
	f := uint32(a.Flags)
	return Addr{
		Prefix:    netip.PrefixFrom(ip, bits),
		LinkLocal: ip.IsLinkLocalUnicast(),
		// IFA_F_TEMPORARY means a privacy address only for IPv6; for IPv4
		// the same bit is IFA_F_SECONDARY, set on every further address of
		// a subnet.
		Temporary: ip.Is6() && f&unix.IFA_F_TEMPORARY != 0,
		// A preferred lifetime of 0 is deprecated too; ValidLft is 0 only
		// when the kernel sent no lifetimes at all.
		Deprecated: f&unix.IFA_F_DEPRECATED != 0 || (a.PreferedLft == 0 && a.ValidLft != 0),
		// Optimistic DAD (RFC 4429) makes a tentative address usable.
		Tentative: f&unix.IFA_F_TENTATIVE != 0 && f&unix.IFA_F_OPTIMISTIC == 0,
		DADFailed: f&unix.IFA_F_DADFAILED != 0,
	}, true
}
