package policy

import (
	"math"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Family is an address family, as [match] family names it.
type Family string

// The families of [match] family.
const (
	FamilyIPv4 Family = "ipv4"
	FamilyIPv6 Family = "ipv6"
)

// AddrKinds is a set of kinds of addresses, as [endpoint] skip lists them.
type AddrKinds uint8

// The kinds of addresses that skip can name.
const (
	// AddrLinkLocal is fe80::/10 and 169.254.0.0/16, or any address the
	// kernel gave link scope.
	AddrLinkLocal AddrKinds = 1 << iota
	// AddrULA is an IPv6 unique local address, fc00::/7.
	AddrULA
	// AddrTemporary is an IPv6 privacy address (RFC 8981).
	AddrTemporary
	// AddrDeprecated is an address whose preferred lifetime is over.
	AddrDeprecated
	// AddrTentative is an IPv6 address whose duplicate address detection
	// has not ended yet.
	AddrTentative

	// AllAddrKinds is every kind: the default of skip.
	AllAddrKinds = AddrLinkLocal | AddrULA | AddrTemporary | AddrDeprecated | AddrTentative
)

// addrKindName returns the word skip uses for a single kind.
func addrKindName(k AddrKinds) string {
	switch k {
	case AddrLinkLocal:
		return "link-local"
	case AddrULA:
		return "ula"
	case AddrTemporary:
		return "temporary"
	case AddrDeprecated:
		return "deprecated"
	case AddrTentative:
		return "tentative"
	}
	return ""
}

// Names returns the words of the kinds in k, in the order of AllAddrKinds.
func (k AddrKinds) Names() []string {
	var names []string
	for bit := AddrLinkLocal; bit <= AddrTentative; bit <<= 1 {
		if k&bit != 0 {
			names = append(names, addrKindName(bit))
		}
	}
	return names
}

// String returns the kinds separated by spaces, or "none".
func (k AddrKinds) String() string {
	if k&AllAddrKinds == 0 {
		return "none"
	}
	return strings.Join(k.Names(), " ")
}

// Interface is the policy of one interface file.
type Interface struct {
	// File is the file's path.
	File string
	// Names are shell globs (path.Match) of interface names; one must
	// match.
	Names []string
	// Kinds are link kinds ("veth", "vlan", "device" for hardware…); if
	// any, one must match.
	Kinds []string
	// Families get endpoints; none means both. Families take no part in
	// Match (a Link has no addresses): the first file whose names and
	// kinds fit applies to the interface, and Wants then refuses the
	// addresses of the other family.
	Families []Family
	// Ignore gives the matched interfaces no endpoints; the endpoint
	// fields are then zero.
	Ignore bool
	// Flags are the endpoints' flags.
	Flags genl.Flags
	// Port is announced with FlagSignal; 0 for none.
	Port uint16
	// AlsoWithoutDefaultRoute gives a family endpoints even while the
	// interface has no default route for it.
	AlsoWithoutDefaultRoute bool
	// Skip are the kinds of addresses that get no endpoints.
	Skip AddrKinds
	// Priority decides which endpoints the kernel's cap of
	// genl.MaxEndpoints keeps: higher wins.
	Priority int
	// Metered marks interfaces that cost per byte; the userspace path
	// manager's cost preset opens only backup subflows from them.
	Metered bool
}

// Link is what the daemon knows of an interface when choosing its policy.
type Link struct {
	// Name is the interface name.
	Name string
	// Kind is rtnetlink's IFLA_INFO_KIND ("veth", "vlan", "wireguard"…);
	// "" or "device" for hardware, which kind = "device" or "ether"
	// matches.
	Kind string
	// Loopback is set for loopback interfaces, which no policy matches.
	Loopback bool
}

// Match returns the policy of the first interface file that matches l, or
// nil if none does. A loopback link never matches: endpoints on it would be
// of no use to any peer.
func (c *Config) Match(l Link) *Interface {
	if l.Loopback {
		return nil
	}
	for _, p := range c.Interfaces {
		if p.matches(l) {
			return p
		}
	}
	return nil
}

func (p *Interface) matches(l Link) bool {
	named := slices.ContainsFunc(p.Names, func(g string) bool {
		ok, _ := path.Match(g, l.Name) // validated on load
		return ok
	})
	if !named {
		return false
	}
	return len(p.Kinds) == 0 || slices.ContainsFunc(p.Kinds, func(k string) bool {
		return normKind(k) == normKind(l.Kind)
	})
}

// normKind maps the names of hardware links to one: netlink gives them no
// kind, vishvananda/netlink calls them "device", and "ether" is what
// systemd-networkd's Type= says.
func normKind(k string) string {
	switch k {
	case "", "device", "ether":
		return "device"
	}
	return k
}

// Addr is what the daemon knows of an address from netlink.
type Addr struct {
	// Prefix is the address and its prefix length.
	Prefix netip.Prefix
	// LinkLocal is set for addresses with link scope.
	LinkLocal bool
	// Temporary is IFA_F_TEMPORARY: an IPv6 privacy address.
	Temporary bool
	// Deprecated is IFA_F_DEPRECATED: the preferred lifetime is over.
	Deprecated bool
	// Tentative is IFA_F_TENTATIVE: duplicate address detection runs.
	Tentative bool
}

// isULA reports whether a is in fc00::/7, the IPv6 unique local addresses
// (RFC 4193).
func isULA(a netip.Addr) bool { return a.Is6() && a.As16()[0]&0xfe == 0xfc }

// Wants says whether a (an address of an interface p applies to) should
// have an endpoint. hasDefaultRoute is whether the interface has a default
// route for a's family. When not, why says in plain words why, for
// `mptcpd-go policy check` and status.
func (p *Interface) Wants(a Addr, hasDefaultRoute bool) (ok bool, why string) {
	ip := a.Prefix.Addr().Unmap()
	family := FamilyIPv4
	if ip.Is6() {
		family = FamilyIPv6
	}
	switch {
	case p.Ignore:
		return false, "the interface is ignored (ignore = true in " + p.File + ")"
	case !ip.IsValid():
		return false, "not an IP address"
	case ip.IsLoopback():
		return false, "loopback address: no peer could reach it"
	case ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false, "not a unicast address"
	case len(p.Families) > 0 && !slices.Contains(p.Families, family):
		return false, "an " + string(family) + " address, but family in " + p.File + " lists only " + string(p.Families[0])
	}
	skips := []struct {
		kind AddrKinds
		is   bool
		what string
	}{
		{AddrLinkLocal, a.LinkLocal || ip.IsLinkLocalUnicast(), "link-local address"},
		{AddrULA, isULA(ip), "unique local address (fc00::/7)"},
		{AddrTemporary, a.Temporary, "temporary (privacy) address"},
		{AddrDeprecated, a.Deprecated, "deprecated address (its preferred lifetime is over)"},
		{AddrTentative, a.Tentative, "tentative address (duplicate address detection has not ended)"},
	}
	for _, s := range skips {
		if s.is && p.Skip&s.kind != 0 {
			return false, s.what + ", which skip in " + p.File + " leaves out"
		}
	}
	if !hasDefaultRoute && !p.AlsoWithoutDefaultRoute {
		return false, "the interface has no " + string(family) + " default route (set also_without_default_route = true in " + p.File + " to use it anyway)"
	}
	return true, ""
}

// rawInterface is an interface file as written, before validation. The
// broken flags record a key of the wrong type, so that its absence is not
// reported as well.
type rawInterface struct {
	ignore       *boolVal
	ignoreBroken bool
	match        *rawMatch
	endpoint     *rawEndpoint
}

type rawMatch struct {
	at                 pos
	broken             bool
	name, kind, family *listVal
}

type rawEndpoint struct {
	at                      pos
	broken                  bool
	flags, skip             *listVal
	port, priority          *intVal
	portKey                 pos
	alsoWithoutDefaultRoute *boolVal
	metered                 *boolVal
}

// parseInterface parses and validates an interface file. It returns nil
// and the problems if there are any.
func parseInterface(file string, data []byte) (*Interface, Errors) {
	root, errs, ok := parseTOML(file, data)
	d := &decoder{file: file, errs: errs}
	var p *Interface
	if ok {
		r := d.decodeInterface(root)
		p = d.validateInterface(&r)
	}
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		return nil, d.errs
	}
	return p, nil
}

// decodeInterface takes an interface file's keys out of root, checking
// their types.
func (d *decoder) decodeInterface(root *table) rawInterface {
	var r rawInterface
	d.topKeys = []string{"ignore", "match", "endpoint"}
	list := func(key, want string, dst **listVal) field {
		return field{key, func(e *entry) { *dst = d.list(e, want) }}
	}
	d.fields(root, "", nil,
		field{"ignore", func(e *entry) {
			r.ignore = d.boolean(e)
			r.ignoreBroken = r.ignore == nil
		}},
		field{"match", func(e *entry) {
			m := &rawMatch{at: e.val.pos}
			r.match = m
			t := d.table(e)
			if t == nil {
				m.broken = true
				return
			}
			d.fields(t, "[match]", nil,
				list("name", `a list of globs, like ["eth*"]`, &m.name),
				list("kind", `a list of link kinds, like ["veth"]`, &m.kind),
				list("family", `"ipv4", "ipv6" or a list of them`, &m.family),
			)
		}},
		field{"endpoint", func(e *entry) {
			ep := &rawEndpoint{at: e.val.pos}
			r.endpoint = ep
			t := d.table(e)
			if t == nil {
				ep.broken = true
				return
			}
			d.fields(t, "[endpoint]", nil,
				list("flags", `a list of flags, like ["subflow"]`, &ep.flags),
				field{"port", func(e *entry) {
					ep.port, ep.portKey = d.integer(e, "a port number 1..65535"), e.pos
				}},
				field{"also_without_default_route", func(e *entry) { ep.alsoWithoutDefaultRoute = d.boolean(e) }},
				list("skip", `a list of address kinds, like ["link-local"]`, &ep.skip),
				field{"priority", func(e *entry) { ep.priority = d.integer(e, "an integer") }},
				field{"metered", func(e *entry) { ep.metered = d.boolean(e) }},
			)
		}},
	)
	return r
}

// validateInterface checks the values of r and returns them as an
// Interface.
func (d *decoder) validateInterface(r *rawInterface) *Interface {
	p := &Interface{File: d.file, Skip: AllAddrKinds}
	if r.ignore != nil {
		p.Ignore = r.ignore.b
	}
	switch m := r.match; {
	case m == nil:
		d.errorf(pos{1, 1}, `no [match] table; add one with name = ["eth*"] (globs of the names of the interfaces this file is for)`)
	case m.broken:
	case m.name == nil:
		d.errorf(m.at, `[match] has no name; add name = ["eth*"] (globs of the names of the interfaces this file is for)`)
	}
	if m := r.match; m != nil {
		if m.name != nil && !m.name.broken {
			p.Names = d.globs(m.name)
		}
		if m.kind != nil && !m.kind.broken {
			p.Kinds = d.kinds(m.kind)
		}
		if m.family != nil && !m.family.broken {
			p.Families = d.families(m.family)
		}
	}

	ep := r.endpoint
	switch {
	case p.Ignore && ep != nil:
		d.errorf(ep.at, "[endpoint] cannot be used with ignore = true: ignored interfaces get no endpoints; remove one of them")
		return p
	case p.Ignore:
		return p
	case ep == nil && !r.ignoreBroken:
		d.errorf(pos{1, 1}, `no [endpoint] table; add one with flags = ["subflow"], or set ignore = true to give the interfaces this file matches no endpoints`)
		return p
	case ep == nil || ep.broken:
		return p
	}

	flagsOK := false
	switch {
	case ep.flags == nil:
		d.errorf(ep.at, `[endpoint] has no flags; add them, like flags = ["subflow"] (the flags are %s)`, quotedAndList(endpointFlags()))
	case !ep.flags.broken:
		p.Flags = d.flags(ep.flags)
		flagsOK = true
	}
	if v := ep.port; v != nil {
		switch {
		case v.n < 1 || v.n > math.MaxUint16:
			d.errorf(v.pos, "port: %d is out of range; use 1..65535", v.n)
		case flagsOK && p.Flags&genl.FlagSignal == 0:
			d.errorf(ep.portKey, `port: only used with the "signal" flag (the kernel refuses it otherwise); add "signal" to flags or remove port`)
		default:
			p.Port = uint16(v.n)
		}
	}
	if v := ep.alsoWithoutDefaultRoute; v != nil {
		p.AlsoWithoutDefaultRoute = v.b
	}
	if ep.skip != nil && !ep.skip.broken {
		p.Skip = d.skip(ep.skip)
	}
	if v := ep.metered; v != nil {
		p.Metered = v.b
	}
	if v := ep.priority; v != nil {
		// int32 so that a policy means the same on 32-bit machines.
		if v.n < math.MinInt32 || v.n > math.MaxInt32 {
			d.errorf(v.pos, "priority: %d is out of range; use %d..%d", v.n, math.MinInt32, math.MaxInt32)
		} else {
			p.Priority = int(v.n)
		}
	}
	return p
}

// maxIfName is the longest interface name Linux allows (IFNAMSIZ - 1).
const maxIfName = 15

// globs validates [match] name.
func (d *decoder) globs(l *listVal) []string {
	if len(l.items) == 0 {
		d.errorf(l.pos, `name: an empty list matches no interface; add a glob such as "eth*"`)
		return nil
	}
	d.duplicates("name", l)
	var names []string
	for _, g := range l.items {
		switch {
		case g.s == "":
			d.errorf(g.pos, "name: an empty glob matches no interface; remove it")
			continue
		case !validGlob(g.s):
			d.errorf(g.pos, `name: %s is not a valid glob (path.Match syntax: *, ?, [a-z], [^a-z], \ escapes); close the brackets, or escape [ and \ with \`, quote(g.s))
			continue
		}
		if i := strings.IndexAny(g.s, "/: \t\n\r\v\f"); i >= 0 {
			d.errorf(g.pos, "name: %s can never match: interface names cannot contain %s; remove it", quote(g.s), quote(g.s[i:i+1]))
			continue
		}
		if !strings.ContainsAny(g.s, `*?[\`) && len(g.s) > maxIfName {
			d.errorf(g.pos, "name: %s can never match: interface names are at most %d bytes long; shorten it", quote(g.s), maxIfName)
			continue
		}
		names = append(names, g.s)
	}
	return names
}

// validGlob reports whether path.Match accepts g; it checks the whole
// pattern even when the name does not match.
func validGlob(g string) bool {
	_, err := path.Match(g, "")
	return err == nil
}

// kinds validates [match] kind. Any kind the kernel may add is accepted,
// so only the spelling is checked.
func (d *decoder) kinds(l *listVal) []string {
	if len(l.items) == 0 {
		d.errorf(l.pos, "kind: an empty list matches no interface; list kinds, or remove kind to match any")
		return nil
	}
	d.duplicates("kind", l)
	var kinds []string
	for _, k := range l.items {
		if k.s == "" || strings.TrimLeft(k.s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			d.errorf(k.pos, `kind: %s is not a link kind; kinds are lower case, like "device" (or "ether"), "veth", "vlan" or "wireguard"`, quote(k.s))
			continue
		}
		kinds = append(kinds, k.s)
	}
	return kinds
}

// families validates [match] family.
func (d *decoder) families(l *listVal) []Family {
	if len(l.items) == 0 {
		d.errorf(l.pos, `family: an empty list gives no address an endpoint; use "ipv4", "ipv6", or remove family for both`)
		return nil
	}
	d.duplicates("family", l)
	var fams []Family
	options := []string{string(FamilyIPv4), string(FamilyIPv6)}
	for _, f := range l.items {
		if !slices.Contains(options, f.s) {
			hint := "use " + quotedOrList(options)
			if best := closest(f.s, options); best != "" {
				hint = "did you mean " + quote(best) + "?"
			}
			d.errorf(f.pos, "family: %s is not an address family; %s", quote(f.s), hint)
			continue
		}
		if !slices.Contains(fams, Family(f.s)) {
			fams = append(fams, Family(f.s))
		}
	}
	return fams
}

// endpointFlags returns the flag words [endpoint] flags accepts: those of
// NetworkManager and nmstate. "implicit" is the kernel's to set.
func endpointFlags() []string {
	return []string{"signal", "subflow", "backup", "fullmesh", "laminar"}
}

// flags validates [endpoint] flags.
func (d *decoder) flags(l *listVal) genl.Flags {
	if len(l.items) == 0 {
		d.errorf(l.pos, `flags: an empty list makes endpoints that do nothing; list some of %s, or set ignore = true to give interfaces no endpoints`, quotedOrList(endpointFlags()))
		return 0
	}
	d.duplicates("flags", l)
	var flags genl.Flags
	for _, f := range l.items {
		if f.s == "implicit" {
			d.errorf(f.pos, `flags: "implicit" is set by the kernel on endpoints it made itself; use %s`, quotedOrList(endpointFlags()))
			continue
		}
		v, err := genl.ParseFlag(f.s)
		if err != nil || !slices.Contains(endpointFlags(), f.s) {
			hint := "use " + quotedOrList(endpointFlags())
			if best := closest(f.s, endpointFlags()); best != "" {
				hint = "did you mean " + quote(best) + "?"
			}
			d.errorf(f.pos, "flags: unknown flag %s; %s", quote(f.s), hint)
			continue
		}
		flags |= v
	}
	if flags&genl.FlagSignal != 0 && flags&genl.FlagFullmesh != 0 {
		d.errorf(l.pos, `flags: "signal" and "fullmesh" cannot be combined (the kernel refuses it); drop one`)
	}
	return flags
}

// skip validates [endpoint] skip. An empty list skips nothing.
func (d *decoder) skip(l *listVal) AddrKinds {
	d.duplicates("skip", l)
	var kinds AddrKinds
	options := AllAddrKinds.Names()
outer:
	for _, s := range l.items {
		for bit := AddrLinkLocal; bit <= AddrTentative; bit <<= 1 {
			if addrKindName(bit) == s.s {
				kinds |= bit
				continue outer
			}
		}
		hint := "use " + quotedOrList(options)
		if best := closest(s.s, options); best != "" {
			hint = "did you mean " + quote(best) + "?"
		}
		d.errorf(s.pos, "skip: unknown address kind %s; %s", quote(s.s), hint)
	}
	return kinds
}
