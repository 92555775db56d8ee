// Package nstopo builds the throw-away network namespaces of the
// benchmarks: two hosts joined by veth pairs, set up in-process through
// netlink (no ip(8)).
//
// It is a small, error-returning counterpart of test/harness, whose
// helpers take a testing.TB and so cannot serve a plain program. The
// safety rules are the same: unique namespace names (Prefix + random hex),
// links created from inside the namespaces so the host's own namespace is
// never touched, net.* sysctls only, and no route to the outside world.
package nstopo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package creates, so that
// leftovers of a killed benchmark are easy to find and remove with
// `ip netns del`.
const Prefix = "mptcpdgo-bench-"

// netnsDir is where named namespaces are bind-mounted (as ip-netns does).
const netnsDir = "/run/netns"

// NS is a named network namespace; Close removes it.
type NS struct {
	// Name is the name under /run/netns.
	Name string
	// Handle is a netlink handle whose socket lives in the namespace.
	Handle *netlink.Handle
	// NsHandle is an open descriptor of the namespace.
	NsHandle netns.NsHandle
}

// NewNS creates a namespace named Prefix + random hex + "-" + label, with
// lo up.
func NewNS(label string) (*NS, error) {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	name := Prefix + hex.EncodeToString(b[:])
	if label != "" {
		name += "-" + label
	}
	path := filepath.Join(netnsDir, name)
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		// Never adopt, and later delete, somebody else's namespace.
		return nil, fmt.Errorf("create netns %s: %s exists or cannot be checked (%v)", name, path, err)
	}
	h, err := newNamed(name)
	if err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	n := &NS{Name: name, NsHandle: h}
	n.Handle, err = netlink.NewHandleAt(h)
	if err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("netlink handle in netns %s: %w", name, err)
	}
	if err := n.LinkUp("lo"); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// newNamed runs netns.NewNamed, which moves the calling thread into the
// new namespace, on a locked thread that moves back; if that fails the
// goroutine exits still locked and the runtime discards the thread.
func newNamed(name string) (netns.NsHandle, error) {
	type result struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{netns.None(), fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if err != nil {
			err = fmt.Errorf("netns.NewNamed: %w", err)
		}
		// NewNamed may fail after it unshared: always move back.
		if serr := netns.Set(orig); serr != nil {
			ch <- result{h, errors.Join(err, fmt.Errorf("switch back to the original netns: %w", serr))}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{h, err}
	}()
	r := <-ch
	if r.err != nil && r.h.IsOpen() {
		_ = r.h.Close()
	}
	return r.h, r.err
}

// Close closes the handles and deletes the namespace; the kernel frees it
// with its links once the last socket and process in it are gone.
func (n *NS) Close() error {
	if n.Handle != nil {
		n.Handle.Close()
		n.Handle = nil
	}
	var errs []error
	if n.NsHandle.IsOpen() {
		if err := n.NsHandle.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close netns %s handle: %w", n.Name, err))
		}
	}
	if err := netns.DeleteNamed(n.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("delete netns %s: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// Path is the namespace's bind mount, /run/netns/NAME.
func (n *NS) Path() string { return filepath.Join(netnsDir, n.Name) }

// Do runs fn on an OS thread switched into the namespace. Sockets and
// processes fn creates stay in the namespace; goroutines it starts do
// not. If switching back fails the thread is discarded.
func (n *NS) Do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.NsHandle); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			// Stay locked: the thread dies with this goroutine.
			ch <- errors.Join(err, fmt.Errorf("leave netns %s: %w", n.Name, serr))
			return
		}
		runtime.UnlockOSThread()
		ch <- err
	}()
	return <-ch
}

// Enter moves the calling goroutine's thread into the namespace for good:
// it locks the goroutine to its thread and never unlocks it, so the thread
// is discarded when the goroutine ends. It suits long-lived workers that
// create sockets in the namespace.
func (n *NS) Enter() error {
	runtime.LockOSThread()
	if err := netns.Set(n.NsHandle); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	return nil
}

// Sysctl writes a net.* sysctl (dotted form) inside the namespace; other
// keys are global and refused.
func (n *NS) Sysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if !strings.HasPrefix(path, "/proc/sys/net/") || strings.Contains(key, "..") {
		return fmt.Errorf("sysctl %s: only net.* keys are per-namespace", key)
	}
	err := n.Do(func() error {
		// /proc/sys/net resolves to the opener's namespace.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(value); err != nil {
			_ = f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return fmt.Errorf("sysctl %s=%q in netns %s: %w", key, value, n.Name, err)
	}
	return nil
}

// SysctlExists reports whether the net.* key exists (in every namespace
// or in none).
func SysctlExists(key string) bool {
	_, err := os.Stat("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	return err == nil
}

// LinkUp sets ifname up.
func (n *NS) LinkUp(ifname string) error {
	l, err := n.Handle.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("look up %s in netns %s: %w", ifname, n.Name, err)
	}
	if err := n.Handle.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in netns %s: %w", ifname, n.Name, err)
	}
	return nil
}

// LinkIndex returns the index of ifname.
func (n *NS) LinkIndex(ifname string) (int, error) {
	l, err := n.Handle.LinkByName(ifname)
	if err != nil {
		return 0, fmt.Errorf("look up %s in netns %s: %w", ifname, n.Name, err)
	}
	return l.Attrs().Index, nil
}

// AddAddr adds the address p (host bits kept) to ifname.
func (n *NS) AddAddr(ifname string, p netip.Prefix) error {
	l, err := n.Handle.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("look up %s in netns %s: %w", ifname, n.Name, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := n.Handle.AddrAdd(l, a); err != nil {
		return fmt.Errorf("add %s to %s in netns %s: %w", p, ifname, n.Name, err)
	}
	return nil
}

// Link is one veth pair of a Pair: link i (1-based) is 10.0.i.0/24 with
// host 1 on the client and 2 on the server, like test/harness.Pair.
type Link struct {
	ClientIf, ServerIf string
	ClientV4, ServerV4 netip.Addr
}

// Pair is two namespaces joined by veth pairs.
type Pair struct {
	Client, Server *NS
	Links          []Link
}

// NewPair creates the client and server namespaces joined by links veth
// pairs, IPv4 only (each link its own /24, so no routes are needed). On
// error everything created is removed.
func NewPair(links int) (p *Pair, err error) {
	if links < 1 || links > 8 {
		return nil, fmt.Errorf("pair: %d links, want 1..8", links)
	}
	p = &Pair{}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if p.Client, err = NewNS("client"); err != nil {
		return nil, err
	}
	if p.Server, err = NewNS("server"); err != nil {
		return nil, err
	}
	for i := 1; i <= links; i++ {
		l := Link{
			ClientIf: fmt.Sprintf("veth%dc", i), ServerIf: fmt.Sprintf("veth%ds", i),
			ClientV4: netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), ServerV4: netip.AddrFrom4([4]byte{10, 0, byte(i), 2}),
		}
		// Created from the client's handle with the peer put straight
		// into the server: the pair never shows up in the host namespace.
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: l.ClientIf},
			PeerName:      l.ServerIf,
			PeerNamespace: netlink.NsFd(p.Server.NsHandle),
		}
		if err := p.Client.Handle.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("create veth %s <-> %s: %w", l.ClientIf, l.ServerIf, err)
		}
		if err := p.Client.AddAddr(l.ClientIf, netip.PrefixFrom(l.ClientV4, 24)); err != nil {
			return nil, err
		}
		if err := p.Server.AddAddr(l.ServerIf, netip.PrefixFrom(l.ServerV4, 24)); err != nil {
			return nil, err
		}
		if err := p.Client.LinkUp(l.ClientIf); err != nil {
			return nil, err
		}
		if err := p.Server.LinkUp(l.ServerIf); err != nil {
			return nil, err
		}
		p.Links = append(p.Links, l)
	}
	return p, nil
}

// Close removes both namespaces (and so the links); it may be called more
// than once.
func (p *Pair) Close() error {
	var errs []error
	for _, n := range []**NS{&p.Client, &p.Server} {
		if *n != nil {
			errs = append(errs, (*n).Close())
			*n = nil
		}
	}
	return errors.Join(errs...)
}
