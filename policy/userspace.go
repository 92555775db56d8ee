package policy

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file holds the main file's keys for the userspace path manager:
// preset, max_subflows and the [[rule]] tables. The policy package keeps
// its own types for them, so that it needs nothing of the path manager;
// the daemon converts them.

// Presets are the values of the main file's preset key, after the
// throughput-versus-cost idea; the daemon checks that the path manager
// knows the same ones.
func Presets() []string { return []string{"throughput", "backup", "cost", "sspi"} }

// DefaultPreset applies when the main file sets no preset.
const DefaultPreset = "throughput"

// MaxSubflowsLimit is the most extra subflows per connection max_subflows
// allows: the in-kernel path manager's own cap.
const MaxSubflowsLimit = 8

// Side is the end of a connection a rule is for.
type Side string

// The values of a rule's side key.
const (
	SideAny    Side = "any"
	SideClient Side = "client"
	SideServer Side = "server"
)

// RuleAction is what a rule does with the connections it matches.
type RuleAction string

// The values of a rule's action key.
const (
	// ActionMultipath manages the connection: extra subflows on the
	// client side, announcements on the server side.
	ActionMultipath RuleAction = "multipath"
	// ActionNever leaves the connection with its initial subflow.
	ActionNever RuleAction = "never"
)

// PortRange is an inclusive range of ports; one port has First == Last.
type PortRange struct{ First, Last uint16 }

// String returns "443" or "8000-8999".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// ConnRule is one [[rule]] table: which connections it matches and what
// to do with them. The first matching rule wins; connections no rule
// matches are managed (multipath).
type ConnRule struct {
	// File and Line are where the rule starts, for messages.
	File string
	Line int
	// Dst are the prefixes the peer's address may be in; none matches
	// every peer.
	Dst []netip.Prefix
	// Ports are the service ports (the peer's on the client side, this
	// host's on the server side); none matches every port.
	Ports []PortRange
	// Side is the end the rule is for.
	Side Side
	// Action is what to do with matching connections.
	Action RuleAction
	// MaxSubflows overrides the main file's max_subflows when positive.
	MaxSubflows int
}

// WantsPerConnection reports whether the policy asks for what only the
// userspace path manager can do: rules, a preset other than the default,
// or a per-connection subflow cap. mode = "auto" picks the userspace path
// manager only then.
func (c *Config) WantsPerConnection() bool {
	return len(c.Rules) > 0 || c.Preset != DefaultPreset || c.MaxSubflows > 0
}

// rawRule is one [[rule]] table as written.
type rawRule struct {
	at                pos
	dst               *listVal
	ports             *entry
	side, action      *strVal
	maxSubflows       *intVal
	maxSubflowsBroken bool
}

// rules decodes the [[rule]] tables.
func (d *decoder) rules(e *entry) []rawRule {
	if e.val.kind != unstable.ArrayTable {
		d.errorf(e.val.pos, "rule: want [[rule]] tables, each on lines of its own, not %s", typeName(e.val))
		return nil
	}
	var out []rawRule
	for _, el := range e.val.elems {
		r := rawRule{at: el.pos}
		d.fields(el.table, "[[rule]]", nil,
			field{"dst", func(e *entry) { r.dst = d.list(e, `a prefix or a list of them, like ["192.0.2.0/24"]`) }},
			field{"ports", func(e *entry) { r.ports = e }},
			field{"side", func(e *entry) { r.side = d.str(e) }},
			field{"action", func(e *entry) { r.action = d.str(e) }},
			field{"max_subflows", func(e *entry) {
				r.maxSubflows = d.integer(e, "an integer 1.."+strconv.Itoa(MaxSubflowsLimit))
				r.maxSubflowsBroken = r.maxSubflows == nil
			}},
		)
		out = append(out, r)
	}
	return out
}

// validateRule checks one rule; ok is false when it had problems.
func (d *decoder) validateRule(r rawRule) (ConnRule, bool) {
	n := len(d.errs)
	c := ConnRule{File: d.file, Line: r.at.line, Side: SideAny, Action: ActionMultipath}
	if r.dst != nil && !r.dst.broken {
		if len(r.dst.items) == 0 {
			d.errorf(r.dst.pos, "dst: an empty list matches no peer; list prefixes, or remove dst to match every peer")
		}
		d.duplicates("dst", r.dst)
		for _, it := range r.dst.items {
			p, err := netip.ParsePrefix(it.s)
			if err != nil {
				a, aerr := netip.ParseAddr(it.s)
				if aerr != nil || a.Zone() != "" {
					d.errorf(it.pos, `dst: %s is not a prefix; write it like "192.0.2.0/24" or "2001:db8::/32"`, quote(it.s))
					continue
				}
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
			if p.Masked() != p {
				d.errorf(it.pos, "dst: %s has host bits set; did you mean %s?", quote(it.s), quote(p.Masked().String()))
				continue
			}
			c.Dst = append(c.Dst, p)
		}
	}
	if r.ports != nil {
		c.Ports = d.ports(r.ports)
	}
	if v := d.oneOf("side", r.side, []string{string(SideClient), string(SideServer), string(SideAny)}, "side"); v != "" {
		c.Side = Side(v)
	}
	if r.action == nil {
		d.errorf(r.at, `[[rule]] has no action; add action = "multipath" or action = "never"`)
	} else if v := d.oneOf("action", r.action, []string{string(ActionMultipath), string(ActionNever)}, "rule action"); v != "" {
		c.Action = RuleAction(v)
	}
	if v := r.maxSubflows; v != nil {
		if m, ok := d.maxSubflows(v); ok {
			c.MaxSubflows = m
		}
	}
	return c, len(d.errs) == n
}

// maxSubflows checks a max_subflows value.
func (d *decoder) maxSubflows(v *intVal) (int, bool) {
	if v.n < 1 || v.n > MaxSubflowsLimit {
		d.errorf(v.pos, "max_subflows: %d is out of range; use 1..%d (extra subflows per connection)", v.n, MaxSubflowsLimit)
		return 0, false
	}
	return int(v.n), true
}

// ports validates a rule's ports: a list of port numbers and "a-b" range
// strings (a single one may stand alone).
func (d *decoder) ports(e *entry) []PortRange {
	const want = `a list of ports and ranges, like [443, "8000-8999"]`
	elems := []*value{e.val}
	switch e.val.kind {
	case unstable.Array:
		elems = e.val.elems
		if len(elems) == 0 {
			d.errorf(e.val.pos, "ports: an empty list matches no port; list ports, or remove ports to match every port")
		}
	case unstable.Integer, unstable.String:
	default:
		d.wrongType(e, want)
		return nil
	}
	var out []PortRange
	for i, v := range elems {
		switch v.kind {
		case unstable.Integer:
			n, ok := parseInt(v.text)
			if !ok || n < 1 || n > 65535 {
				d.errorf(v.pos, "ports: %s is out of range; use 1..65535", v.text)
				continue
			}
			out = append(out, PortRange{uint16(n), uint16(n)})
		case unstable.String:
			r, ok := parsePortRange(v.text)
			if !ok {
				d.errorf(v.pos, `ports: %s is not a port range; write it like "8000-8999" (both ends 1..65535, the first not above the second)`, quote(v.text))
				continue
			}
			out = append(out, r)
		default:
			d.errorf(v.pos, "ports: element %d is %s; want %s", i+1, typeName(v), want)
		}
	}
	return out
}

// parsePortRange parses "a-b" or "a".
func parsePortRange(s string) (PortRange, bool) {
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		last = first
	}
	a, err1 := strconv.ParseUint(strings.TrimSpace(first), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(last), 10, 16)
	if err1 != nil || err2 != nil || a < 1 || a > b {
		return PortRange{}, false
	}
	return PortRange{uint16(a), uint16(b)}, true
}

// validateUserspace checks preset, max_subflows and the rules into c.
// In kernel mode they would do nothing, which is reported rather than
// ignored (once per key, and only for values that are valid otherwise).
func (d *decoder) validateUserspace(r *rawMain, c *Config) {
	hint := `only used by the userspace path manager; set mode = "userspace" (or "auto"), or remove it`
	kernel := c.Mode == ModeKernel
	if v := d.oneOf("preset", r.preset, Presets(), "preset"); v != "" {
		c.Preset = v
		if kernel {
			d.errorf(r.preset.pos, "preset: %s", hint)
		}
	}
	if v := r.maxSubflows; v != nil {
		if m, ok := d.maxSubflows(v); ok {
			c.MaxSubflows = m
			if kernel {
				d.errorf(v.pos, "max_subflows: %s", hint)
			}
		}
	}
	for _, rr := range r.rules {
		if cr, ok := d.validateRule(rr); ok {
			c.Rules = append(c.Rules, cr)
		}
	}
	if kernel && len(r.rules) > 0 {
		d.errorf(r.rules[0].at, "[[rule]]: %s", hint)
	}
}
