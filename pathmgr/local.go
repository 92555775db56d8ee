package pathmgr

import (
	"net/netip"
	"slices"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
)

// LocalView is what Decide knows of this host: the interfaces that can
// carry subflows right now, with their usable addresses and their policy.
// It is a value built once per change of the links or addresses and shared
// by every decision; nobody modifies it afterwards.
type LocalView struct {
	// Ifaces are sorted by index.
	Ifaces []LocalIface
}

// LocalIface is one interface of a LocalView.
type LocalIface struct {
	Index int
	Name  string
	// Use is the resolved use (never UseDefault).
	Use Use
	// Signal: announce the interface's addresses on the server side.
	Signal bool
	// Port to announce with, 0 for the connection's.
	Port uint16
	// Addrs are the usable global addresses, IPv4 and IPv6, preferred
	// first (not deprecated, then by address).
	Addrs []netip.Addr
}

// NewLocalView builds the view of snap under cfg: links that are running
// and not loopback, with their global addresses that finished duplicate
// address detection.
func NewLocalView(snap endpoints.Snapshot, cfg Config) LocalView {
	var v LocalView
	for _, l := range snap.Links {
		if !l.Running || l.Loopback {
			continue
		}
		type cand struct {
			addr       netip.Addr
			deprecated bool
		}
		var cands []cand
		for _, a := range l.Addrs {
			if !a.IsGlobal() || !a.Usable() {
				continue
			}
			cands = append(cands, cand{a.Prefix.Addr().Unmap().WithZone(""), a.Deprecated})
		}
		if len(cands) == 0 {
			continue
		}
		slices.SortStableFunc(cands, func(a, b cand) int {
			if a.deprecated != b.deprecated {
				if a.deprecated {
					return 1
				}
				return -1
			}
			return a.addr.Compare(b.addr)
		})
		ifc := LocalIface{Index: l.Index, Name: l.Name}
		for _, c := range cands {
			ifc.Addrs = append(ifc.Addrs, c.addr)
		}
		rule, ok := cfg.ifaceRule(l.Name)
		ifc.Use = rule.Use
		if ifc.Use == UseDefault {
			ifc.Use = cfg.Preset.Use(IfaceFacts{
				Name: l.Name, Index: l.Index, Kind: l.Kind, Metered: rule.Metered,
				DefaultRoute: l.DefaultV4 || l.DefaultV6,
			})
		}
		if ok {
			ifc.Signal, ifc.Port = rule.Signal, rule.Port
		}
		v.Ifaces = append(v.Ifaces, ifc)
	}
	slices.SortFunc(v.Ifaces, func(a, b LocalIface) int { return a.Index - b.Index })
	return v
}

// IfaceOf returns the interface that has addr (compared unmapped).
func (v LocalView) IfaceOf(addr netip.Addr) (LocalIface, bool) {
	addr = addr.Unmap()
	for _, ifc := range v.Ifaces {
		if slices.Contains(ifc.Addrs, addr) {
			return ifc, true
		}
	}
	return LocalIface{}, false
}

// Equal reports whether two views would give the same decisions.
func (v LocalView) Equal(o LocalView) bool {
	return slices.EqualFunc(v.Ifaces, o.Ifaces, func(a, b LocalIface) bool {
		return a.Index == b.Index && a.Name == b.Name && a.Use == b.Use && a.Signal == b.Signal &&
			a.Port == b.Port && slices.Equal(a.Addrs, b.Addrs)
	})
}

// first returns the interface's preferred address of the family (IPv4 when
// v4).
func (ifc LocalIface) first(v4 bool) (netip.Addr, bool) {
	for _, a := range ifc.Addrs {
		if a.Is4() == v4 {
			return a, true
		}
	}
	return netip.Addr{}, false
}
