package endpoints

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// fakeKernel imitates the in-kernel path manager's endpoint table: ids
// chosen by rotation, at most max entries, addresses unique by address and
// port, implicit entries replaced by a plain add, set-flags limited to
// backup and fullmesh.
type fakeKernel struct {
	mu     sync.Mutex
	eps    []genl.Endpoint
	nextID uint8
	max    int
	limits genl.Limits
	peak   int      // most endpoints ever held at once
	calls  []string // "add 10.0.0.1", "delete 3", "set-flags 3", "set-limits"

	// failAdd makes AddEndpoint of an address fail with the error.
	failAdd map[netip.Addr]error
	// beforeDump, when set, runs at the start of Endpoints (unlocked).
	beforeDump func()
	// failDump makes the n-th call of Endpoints (1-based) fail.
	failDump map[int]error
	dumps    int
	// beforeAdd, when set, runs at the start of AddEndpoint (unlocked).
	beforeAdd func(genl.Endpoint)
}

func newFakeKernel(eps ...genl.Endpoint) *fakeKernel {
	k := &fakeKernel{max: genl.MaxEndpoints, nextID: 1}
	for _, ep := range eps {
		k.eps = append(k.eps, ep)
		k.nextID = max(k.nextID, ep.ID+1)
	}
	k.sort()
	k.peak = len(k.eps)
	return k
}

func (k *fakeKernel) sort() {
	slices.SortFunc(k.eps, func(a, b genl.Endpoint) int { return cmp.Compare(a.ID, b.ID) })
}

func kerr(op string, kind error, errno unix.Errno) error {
	return &genl.Error{Op: op, Kind: kind, Errno: errno}
}

func (k *fakeKernel) Endpoints() ([]genl.Endpoint, error) {
	if f := k.beforeDump; f != nil {
		f()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dumps++
	if err := k.failDump[k.dumps]; err != nil {
		return nil, err
	}
	return slices.Clone(k.eps), nil
}

func (k *fakeKernel) AddEndpoint(ep genl.Endpoint) error {
	if f := k.beforeAdd; f != nil {
		f(ep)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, "add "+addrPort(ep.Addr, ep.Port))
	if err := k.failAdd[ep.Addr]; err != nil {
		return err
	}
	ep.Addr = ep.Addr.Unmap()
	for i, cur := range k.eps {
		if cur.Addr == ep.Addr && cur.Port == ep.Port {
			if cur.Flags&genl.FlagImplicit == 0 || ep.ID != 0 {
				return kerr("add endpoint", genl.ErrExists, unix.EEXIST)
			}
			ep.ID = cur.ID
			k.eps[i] = ep
			return nil
		}
	}
	if len(k.eps) >= k.max {
		return kerr("add endpoint", genl.ErrTooManyEndpoints, unix.ERANGE)
	}
	if ep.ID == 0 {
		for k.idUsed(k.nextID) {
			k.nextID++
		}
		ep.ID = k.nextID
		k.nextID++
	} else if k.idUsed(ep.ID) {
		return kerr("add endpoint", genl.ErrIDInUse, unix.EBUSY)
	}
	k.eps = append(k.eps, ep)
	k.sort()
	k.peak = max(k.peak, len(k.eps))
	return nil
}

func (k *fakeKernel) idUsed(id uint8) bool {
	return id == 0 || slices.ContainsFunc(k.eps, func(e genl.Endpoint) bool { return e.ID == id })
}

func (k *fakeKernel) DeleteEndpoint(id uint8) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, fmt.Sprintf("delete %d", id))
	i := slices.IndexFunc(k.eps, func(e genl.Endpoint) bool { return e.ID == id })
	if i < 0 {
		return kerr(fmt.Sprintf("delete endpoint id %d", id), genl.ErrNotFound, unix.EINVAL)
	}
	k.eps = slices.Delete(k.eps, i, i+1)
	return nil
}

func (k *fakeKernel) SetEndpointFlags(ref genl.Endpoint, flags genl.Flags) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, fmt.Sprintf("set-flags %d", ref.ID))
	i := slices.IndexFunc(k.eps, func(e genl.Endpoint) bool { return e.ID == ref.ID })
	if i < 0 {
		return kerr("change endpoint flags", genl.ErrNotFound, unix.EINVAL)
	}
	if flags&genl.FlagFullmesh != 0 && k.eps[i].Flags&(genl.FlagSignal|genl.FlagImplicit) != 0 {
		return kerr("change endpoint flags", nil, unix.EINVAL)
	}
	k.eps[i].Flags = k.eps[i].Flags&^mutableFlags | flags&mutableFlags
	return nil
}

func (k *fakeKernel) Limits() (genl.Limits, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.limits, nil
}

func (k *fakeKernel) SetLimits(u genl.LimitsUpdate) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, "set-limits")
	if u.Subflows != nil {
		k.limits.Subflows = *u.Subflows
	}
	if u.AddAddrAccepted != nil {
		k.limits.AddAddrAccepted = *u.AddAddrAccepted
	}
	return nil
}

// dump returns the endpoints without going through hooks.
func (k *fakeKernel) dump() []genl.Endpoint {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.eps)
}

// handAdd adds an endpoint as an administrator would.
func (k *fakeKernel) handAdd(ep genl.Endpoint) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ep.ID == 0 {
		for k.idUsed(k.nextID) {
			k.nextID++
		}
		ep.ID = k.nextID
		k.nextID++
	}
	k.eps = append(k.eps, ep)
	k.sort()
}

// handDelete deletes the endpoint with the address, as an administrator
// would.
func (k *fakeKernel) handDelete(addr netip.Addr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.eps = slices.DeleteFunc(k.eps, func(e genl.Endpoint) bool { return e.Addr == addr })
}

// handSetFlags overwrites the flags of the endpoint with the address.
func (k *fakeKernel) handSetFlags(addr netip.Addr, f genl.Flags) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range k.eps {
		if k.eps[i].Addr == addr {
			k.eps[i].Flags = f
		}
	}
}

func (k *fakeKernel) takeCalls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.calls
	k.calls = nil
	return c
}

// fakeSource is a Source the test sets by hand.
type fakeSource struct {
	mu        sync.Mutex
	snap      Snapshot
	refreshes int
	changed   chan struct{}
}

func newFakeSource(s Snapshot) *fakeSource {
	return &fakeSource{snap: s, changed: make(chan struct{}, 1)}
}

func (s *fakeSource) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap.Clone()
}

func (s *fakeSource) Changed() <-chan struct{} { return s.changed }

func (s *fakeSource) Refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshes++
	return nil
}

func (s *fakeSource) refreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// set replaces the snapshot and notifies, like the Watcher.
func (s *fakeSource) set(snap Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	s.notify()
}

func (s *fakeSource) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}
