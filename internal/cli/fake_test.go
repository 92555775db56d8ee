package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// fakeBackend records the requests it gets and answers from its fields.
type fakeBackend struct {
	eps         []genl.Endpoint
	limits      genl.Limits
	errs        map[string]error // by method name
	calls       []string
	noUserspace bool
	events      []any // genl.Event or error, for Subscribe
	cancel      context.CancelFunc
	closed      int
}

func (f *fakeBackend) call(name, format string, a ...any) error {
	f.calls = append(f.calls, name+"("+fmt.Sprintf(format, a...)+")")
	return f.errs[name]
}

func epString(ep genl.Endpoint) string {
	return fmt.Sprintf("id=%d addr=%v port=%d flags=%q ifindex=%d", ep.ID, ep.Addr, ep.Port, ep.Flags.String(), ep.Ifindex)
}

func (f *fakeBackend) AddEndpoint(ep genl.Endpoint) error {
	return f.call("AddEndpoint", "%s", epString(ep))
}
func (f *fakeBackend) DeleteEndpoint(id uint8) error { return f.call("DeleteEndpoint", "%d", id) }
func (f *fakeBackend) DeleteEndpointAddr(id uint8, a netip.Addr) error {
	return f.call("DeleteEndpointAddr", "%d %v", id, a)
}
func (f *fakeBackend) Endpoint(id uint8) (genl.Endpoint, error) {
	if err := f.call("Endpoint", "%d", id); err != nil {
		return genl.Endpoint{}, err
	}
	for _, ep := range f.eps {
		if ep.ID == id {
			return ep, nil
		}
	}
	return genl.Endpoint{}, &genl.Error{Op: "get endpoint", Errno: unix.EINVAL, Message: "address not found", Kind: genl.ErrNotFound}
}
func (f *fakeBackend) Endpoints() ([]genl.Endpoint, error) {
	if err := f.call("Endpoints", ""); err != nil {
		return nil, err
	}
	return f.eps, nil
}
func (f *fakeBackend) FlushEndpoints() error { return f.call("FlushEndpoints", "") }
func (f *fakeBackend) SetEndpointFlags(ref genl.Endpoint, flags genl.Flags) error {
	return f.call("SetEndpointFlags", "%s %q", epString(ref), flags.String())
}
func (f *fakeBackend) Limits() (genl.Limits, error) {
	return f.limits, f.call("Limits", "")
}
func (f *fakeBackend) SetLimits(u genl.LimitsUpdate) error {
	s := func(p *uint32) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return f.call("SetLimits", "subflows=%s add_addr_accepted=%s", s(u.Subflows), s(u.AddAddrAccepted))
}
func (f *fakeBackend) SupportsUserspacePM() bool { return !f.noUserspace }
func (f *fakeBackend) Announce(token uint32, local genl.Endpoint) error {
	return f.call("Announce", "%08x %s", token, epString(local))
}
func (f *fakeBackend) Remove(token uint32, id uint8) error {
	return f.call("Remove", "%08x %d", token, id)
}
func (f *fakeBackend) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	return f.call("CreateSubflow", "%08x %s remote=%v", token, epString(local), remote)
}
func (f *fakeBackend) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	return f.call("DestroySubflow", "%08x %v %v", token, local, remote)
}
func (f *fakeBackend) SetSubflowFlags(token uint32, local genl.Endpoint, remote netip.AddrPort, flags genl.Flags) error {
	return f.call("SetSubflowFlags", "%08x %s remote=%v %q", token, epString(local), remote, flags.String())
}
func (f *fakeBackend) ConnEndpoint(token uint32, id uint8) (genl.Endpoint, error) {
	if err := f.call("ConnEndpoint", "%08x %d", token, id); err != nil {
		return genl.Endpoint{}, err
	}
	for _, ep := range f.eps {
		if ep.ID == id {
			return ep, nil
		}
	}
	return genl.Endpoint{}, &genl.Error{Op: "get", Errno: unix.EINVAL, Message: "address with id 9 not found"}
}
func (f *fakeBackend) ConnEndpoints(token uint32) ([]genl.Endpoint, error) {
	if err := f.call("ConnEndpoints", "%08x", token); err != nil {
		return nil, err
	}
	return f.eps, nil
}
func (f *fakeBackend) Subscribe(readBuffer int) (EventSource, error) {
	if err := f.call("Subscribe", "%d", readBuffer); err != nil {
		return nil, err
	}
	return &fakeSub{items: f.events, cancel: f.cancel, done: make(chan struct{})}, nil
}
func (f *fakeBackend) Close() error { f.closed++; return nil }

// fakeSub hands out its items, then ends the monitor as a signal would.
type fakeSub struct {
	items  []any
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (s *fakeSub) Next() (genl.Event, error) {
	if len(s.items) > 0 {
		it := s.items[0]
		s.items = s.items[1:]
		if err, ok := it.(error); ok {
			return nil, err
		}
		return it.(genl.Event), nil
	}
	if s.cancel != nil {
		s.cancel()
	}
	<-s.done
	return nil, net.ErrClosed
}

func (s *fakeSub) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// fakeLinks knows a few interfaces.
type fakeLinks map[string]int

func (l fakeLinks) IndexByName(name string) int { return l[name] }
func (l fakeLinks) NameByIndex(index int) (string, bool) {
	for n, i := range l {
		if i == index {
			return n, true
		}
	}
	return "", false
}
func (l fakeLinks) Close() error { return nil }

// result is what a Run printed and returned.
type result struct {
	Stdout string
	Stderr string
	Code   int
}

// fixedNow is the clock of the tests: 2024-03-05 07:08:09.000042 UTC.
func fixedNow() time.Time { return time.Date(2024, 3, 5, 7, 8, 9, 42000, time.UTC) }

// runFake runs the command line against fb, with interfaces lo(1) and
// eth1(3) and the fixed clock. Dial must be called at most once.
func runFake(t *testing.T, fb *fakeBackend, stdin string, argv ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	dials := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fb.cancel = cancel
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Dial: func(ns string) (Backend, error) {
			dials++
			if dials > 1 {
				t.Errorf("Dial called %d times, want at most once", dials)
			}
			if ns == "missing" {
				return nil, fmt.Errorf("open network namespace %q: %w", ns, &os.PathError{Op: "open", Path: "/run/netns/" + ns, Err: unix.ENOENT})
			}
			return fb, nil
		},
		Links:   func(string) (Links, error) { return fakeLinks{"lo": 1, "eth1": 3}, nil },
		Now:     fixedNow,
		Version: "v0.0.0-test",
	}
	code := Run(ctx, env, argv)
	return result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}
