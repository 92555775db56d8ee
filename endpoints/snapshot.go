package endpoints

import (
	"net/netip"
	"slices"
)

// Snapshot is the system's links, their addresses and default routes at one
// moment, as the Watcher last listed them. It is a value: the Watcher hands
// out copies, so callers may keep or modify it.
type Snapshot struct {
	// Links are sorted by index.
	Links []Link
}

// Link is one network interface and what matters about it for MPTCP.
type Link struct {
	// Index is the kernel's interface index.
	Index int
	// Name is the interface name, e.g. "eth0".
	Name string
	// Kind is the link type as rtnetlink reports it: "veth", "bridge",
	// "vlan", ... and "device" for plain hardware (and loopback).
	Kind string
	// Up is the administrative state (IFF_UP).
	Up bool
	// Running means up and operationally usable (IFF_RUNNING: carrier and
	// oper state up or unknown). A link that is not running gets no
	// endpoints.
	Running bool
	// Loopback is set for lo and other IFF_LOOPBACK links.
	Loopback bool
	// DefaultV4 and DefaultV6 report a default route through this link in
	// the main table (also as one nexthop of a multipath route).
	DefaultV4, DefaultV6 bool
	// Addrs are the link's addresses, sorted by address.
	Addrs []Addr
}

// Addr is one address of a link with the facts a policy decides on.
type Addr struct {
	// Prefix is the address with its prefix length, e.g. 192.0.2.1/24.
	Prefix netip.Prefix
	// LinkLocal is set for 169.254.0.0/16 and fe80::/10.
	LinkLocal bool
	// Temporary is an IPv6 privacy address (IFA_F_TEMPORARY).
	Temporary bool
	// Deprecated is set when the preferred lifetime ran out
	// (IFA_F_DEPRECATED or preferred lifetime 0): existing connections may
	// use it, new ones should not.
	Deprecated bool
	// Tentative means duplicate address detection has not finished
	// (IFA_F_TENTATIVE); the address cannot be used yet.
	Tentative bool
	// DADFailed means duplicate address detection found the address in use
	// elsewhere (IFA_F_DADFAILED); it will never become usable.
	DADFailed bool
}

// IsGlobal reports whether the address can reach beyond the link: global
// unicast (private ranges included), not link-local, not loopback.
func (a Addr) IsGlobal() bool {
	return a.Prefix.Addr().IsGlobalUnicast() && !a.LinkLocal
}

// Usable reports whether the kernel can use the address for new subflows
// now: DAD finished and did not fail. Deprecated addresses still work, so
// they count as usable; whether to prefer them is the policy's choice.
func (a Addr) Usable() bool {
	return !a.Tentative && !a.DADFailed
}

// LinkByIndex returns the link with the given index.
func (s Snapshot) LinkByIndex(index int) (Link, bool) {
	i, ok := slices.BinarySearchFunc(s.Links, index, func(l Link, idx int) int { return l.Index - idx })
	if !ok {
		return Link{}, false
	}
	return s.Links[i], true
}

// LinkByName returns the link with the given name.
func (s Snapshot) LinkByName(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Addr returns the link's address addr (compared without zone and prefix
// length).
func (l Link) Addr(addr netip.Addr) (Addr, bool) {
	addr = normAddr(addr)
	for _, a := range l.Addrs {
		if normAddr(a.Prefix.Addr()) == addr {
			return a, true
		}
	}
	return Addr{}, false
}

// Clone returns a deep copy.
func (s Snapshot) Clone() Snapshot {
	if s.Links == nil {
		return Snapshot{}
	}
	links := make([]Link, len(s.Links))
	for i, l := range s.Links {
		l.Addrs = slices.Clone(l.Addrs)
		links[i] = l
	}
	return Snapshot{Links: links}
}

// Equal reports whether two snapshots describe the same state.
func (s Snapshot) Equal(o Snapshot) bool {
	return slices.EqualFunc(s.Links, o.Links, func(a, b Link) bool {
		return a.Index == b.Index && a.Name == b.Name && a.Kind == b.Kind &&
			a.Up == b.Up && a.Running == b.Running && a.Loopback == b.Loopback &&
			a.DefaultV4 == b.DefaultV4 && a.DefaultV6 == b.DefaultV6 &&
			slices.Equal(a.Addrs, b.Addrs)
	})
}

// normAddr is the form addresses are compared in: IPv4-mapped IPv6
// addresses as IPv4 (the kernel reports AF_INET endpoints as IPv4), no zone
// (endpoints have none).
func normAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}
