package pathmgr

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"time"
)

// Use says what an interface is used for by the connections this host
// manages.
type Use uint8

// Interface uses. The zero value lets the preset decide.
const (
	// UseDefault leaves the choice to the preset (in an IfaceRule).
	UseDefault Use = iota
	// UseSubflow opens regular subflows from the interface.
	UseSubflow
	// UseBackup opens subflows from the interface marked backup: the
	// kernel sends on them only when no regular subflow works.
	UseBackup
	// UseNever keeps the interface out of every connection.
	UseNever
)

// String returns "default", "subflow", "backup" or "never".
func (u Use) String() string {
	switch u {
	case UseDefault:
		return "default"
	case UseSubflow:
		return "subflow"
	case UseBackup:
		return "backup"
	case UseNever:
		return "never"
	}
	return fmt.Sprintf("use(%d)", uint8(u))
}

// Side is the end of a connection this host is.
type Side uint8

// Sides. AnySide is only meaningful in a ConnRule.
const (
	// AnySide matches both ends (in a ConnRule).
	AnySide Side = iota
	// ClientSide: this host opened the connection; it opens the extra
	// subflows.
	ClientSide
	// ServerSide: this host accepted the connection; it announces
	// addresses.
	ServerSide
)

// String returns "any", "client" or "server".
func (s Side) String() string {
	switch s {
	case AnySide:
		return "any"
	case ClientSide:
		return "client"
	case ServerSide:
		return "server"
	}
	return fmt.Sprintf("side(%d)", uint8(s))
}

// RuleAction is what a ConnRule does with the connections it matches.
type RuleAction uint8

// Rule actions; the zero value is Multipath.
const (
	// Multipath manages the connection: extra subflows (client side) or
	// announcements (server side).
	Multipath RuleAction = iota
	// Never leaves the connection with its initial subflow only.
	Never
)

// String returns "multipath" or "never".
func (a RuleAction) String() string {
	switch a {
	case Multipath:
		return "multipath"
	case Never:
		return "never"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Preset names a built-in policy, after the throughput-versus-cost idea.
// The zero value is PresetThroughput.
type Preset string

// The presets.
const (
	// PresetThroughput opens a regular subflow from every usable interface
	// to every address of the peer.
	PresetThroughput Preset = "throughput"
	// PresetBackup keeps the initial path regular and opens every further
	// path as backup.
	PresetBackup Preset = "backup"
	// PresetCost opens regular subflows from unmetered interfaces and
	// backup subflows from metered ones.
	PresetCost Preset = "cost"
	// PresetSSPI opens one regular subflow per interface (the interface of
	// the initial subflow has one already), like mptcpd's sspi plugin.
	PresetSSPI Preset = "sspi"
)

// Presets lists the presets, for help texts and validation.
func Presets() []Preset {
	return []Preset{PresetThroughput, PresetBackup, PresetCost, PresetSSPI}
}

// IfaceFacts is what a preset knows about an interface.
type IfaceFacts struct {
	Name  string
	Index int
	// Kind is the link type, e.g. "veth", "device".
	Kind string
	// Metered comes from the interface rule (Metered).
	Metered bool
	// DefaultRoute: the interface carries a default route (IPv4 or IPv6).
	DefaultRoute bool
}

// Use resolves the interface's use under the preset. Unknown presets
// behave as PresetThroughput (Validate rejects them).
func (p Preset) Use(f IfaceFacts) Use {
	switch p {
	case PresetBackup:
		return UseBackup
	case PresetCost:
		if f.Metered {
			return UseBackup
		}
	}
	return UseSubflow
}

// OnePerInterface reports whether the preset opens at most one subflow per
// local interface (sspi) rather than one per interface and peer address.
func (p Preset) OnePerInterface() bool { return p == PresetSSPI }

func (p Preset) valid() bool {
	return p == "" || p == PresetThroughput || p == PresetBackup || p == PresetCost || p == PresetSSPI
}

// IfaceRule sets the use of the interfaces it matches; the first matching
// rule wins, and an explicit Use overrides the preset.
type IfaceRule struct {
	// Names are shell globs (path.Match syntax) of interface names, e.g.
	// "wwan*".
	Names []string
	// Match, when set, is asked as well; either matching is enough.
	Match func(name string) bool
	// Use is the interface's use; UseDefault leaves it to the preset.
	Use Use
	// Signal makes the server side announce the interface's address to
	// peers (ADD_ADDR).
	Signal bool
	// Metered marks an interface that costs per byte (for PresetCost).
	Metered bool
	// Port is announced with the address; 0 for the connection's port.
	// Something must listen on it.
	Port uint16
}

func (r IfaceRule) matches(name string) bool {
	for _, g := range r.Names {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return r.Match != nil && r.Match(name)
}

// PortRange is an inclusive range of ports; a single port has First ==
// Last.
type PortRange struct{ First, Last uint16 }

// Port returns the range holding only p.
func Port(p uint16) PortRange { return PortRange{p, p} }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return r.First <= p && p <= r.Last }

// ConnRule decides which connections are managed; the first matching rule
// wins and connections no rule matches are managed (Multipath).
type ConnRule struct {
	// Dst is the prefix the peer's address must be in; the zero Prefix
	// matches every peer. IPv4-mapped peers match IPv4 prefixes.
	Dst netip.Prefix
	// Ports are the service ports the rule matches: the peer's port on
	// the client side, this host's port on the server side. Empty
	// matches every port.
	Ports []PortRange
	// Side restricts the rule to one end; AnySide matches both.
	Side Side
	// Action is what to do with matching connections.
	Action RuleAction
	// MaxSubflows overrides Config.MaxSubflows when positive.
	MaxSubflows int
}

func (r ConnRule) matches(side Side, peer netip.Addr, port uint16) bool {
	if r.Side != AnySide && r.Side != side {
		return false
	}
	if r.Dst.IsValid() && !r.Dst.Contains(peer.Unmap()) {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for _, pr := range r.Ports {
		if pr.Contains(port) {
			return true
		}
	}
	return false
}

// RetryPolicy is the capped exponential backoff between attempts to open
// a subflow (or announce an address) that failed.
type RetryPolicy struct {
	// Initial is the first delay (DefaultRetryInitial when 0); it doubles
	// after every failure up to Max (DefaultRetryMax when 0). A subflow
	// that stayed up for Max starts again from Initial.
	Initial, Max time.Duration
	// MaxAttempts stops retrying a path after that many failures in a
	// row; 0 retries as long as the interface has its address.
	MaxAttempts int
}

// Defaults.
const (
	DefaultRetryInitial = 250 * time.Millisecond
	DefaultRetryMax     = 30 * time.Second
	// DefaultMaxSubflows is the most extra subflows per connection (and,
	// on the server side, announced addresses) when Config.MaxSubflows
	// is 0; it is the kernel's own cap for the in-kernel path manager.
	DefaultMaxSubflows = 8
	// DefaultMaxConnections bounds the tracked connections.
	DefaultMaxConnections = 1 << 16
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Initial <= 0 {
		p.Initial = DefaultRetryInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultRetryMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return p
}

// Config is the userspace path manager's policy, typed; the policy package
// fills it from the configuration file.
type Config struct {
	// Interfaces are the per-interface rules; the first match wins.
	Interfaces []IfaceRule
	// Rules select connections; the first match wins.
	Rules []ConnRule
	// MaxSubflows is the most extra subflows per connection (client side)
	// and announced addresses (server side); DefaultMaxSubflows when 0.
	MaxSubflows int
	// Preset resolves the use of interfaces no rule sets explicitly.
	Preset Preset
	// Retry is the backoff after failed subflows.
	Retry RetryPolicy
}

// Validate reports the first problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if !c.Preset.valid() {
		errs = append(errs, fmt.Errorf("unknown preset %q: want one of %v", c.Preset, Presets()))
	}
	if c.MaxSubflows < 0 || c.MaxSubflows > 255 {
		errs = append(errs, fmt.Errorf("max subflows %d: want 0..255", c.MaxSubflows))
	}
	for i, r := range c.Interfaces {
		if len(r.Names) == 0 && r.Match == nil {
			errs = append(errs, fmt.Errorf("interface rule %d matches nothing: give Names or Match", i+1))
		}
		for _, g := range r.Names {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, fmt.Errorf("interface rule %d: bad pattern %q: %w", i+1, g, err))
			}
		}
		if r.Use > UseNever {
			errs = append(errs, fmt.Errorf("interface rule %d: unknown use %d", i+1, r.Use))
		}
	}
	for i, r := range c.Rules {
		for _, pr := range r.Ports {
			if pr.First > pr.Last {
				errs = append(errs, fmt.Errorf("connection rule %d: port range %d-%d is empty", i+1, pr.First, pr.Last))
			}
		}
		if r.Side > ServerSide {
			errs = append(errs, fmt.Errorf("connection rule %d: unknown side %d", i+1, r.Side))
		}
		if r.Action > Never {
			errs = append(errs, fmt.Errorf("connection rule %d: unknown action %d", i+1, r.Action))
		}
		if r.MaxSubflows < 0 || r.MaxSubflows > 255 {
			errs = append(errs, fmt.Errorf("connection rule %d: max subflows %d: want 0..255", i+1, r.MaxSubflows))
		}
	}
	if c.Retry.Initial < 0 || c.Retry.Max < 0 || c.Retry.MaxAttempts < 0 {
		errs = append(errs, errors.New("retry: negative durations or attempts"))
	}
	return errors.Join(errs...)
}

// ifaceRule returns the first interface rule matching name.
func (c *Config) ifaceRule(name string) (IfaceRule, bool) {
	for _, r := range c.Interfaces {
		if r.matches(name) {
			return r, true
		}
	}
	return IfaceRule{}, false
}

// connRule resolves the action and subflow cap for a connection.
func (c *Config) connRule(side Side, peer netip.Addr, port uint16) (RuleAction, int) {
	maxSub := c.MaxSubflows
	if maxSub <= 0 {
		maxSub = DefaultMaxSubflows
	}
	for _, r := range c.Rules {
		if r.matches(side, peer, port) {
			if r.MaxSubflows > 0 {
				maxSub = r.MaxSubflows
			}
			return r.Action, maxSub
		}
	}
	return Multipath, maxSub
}
