package policy

import (
	"fmt"
	"io"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
)

// Describe writes a summary of c for people, as `mptcpd-go policy check`
// shows it: the files in force, the main settings, and each interface file's
// match and endpoint settings in the order they apply.
func (c *Config) Describe(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-17s %s\n", label, fmt.Sprintf(format, args...))
	}

	if c.Embedded {
		fmt.Fprintf(&b, "Main file: %s does not exist; using the built-in defaults\n", c.Path)
	} else {
		fmt.Fprintf(&b, "Main file: %s\n", c.Path)
	}
	line("mode", "%s", c.Mode)
	limits := fmt.Sprintf("subflows %s, add_addr_accepted %s", c.Subflows, c.AddAddrAccepted)
	if c.Subflows.Auto || c.AddAddrAccepted.Auto {
		limits += fmt.Sprintf(" (auto: derived from the endpoints, at most %d)", genl.MaxLimit)
	}
	line("limits", "%s", limits)
	line("control socket", "%s", c.ControlSocket)
	line("state file", "%s", c.StateFile)
	line("log", "level %s, format %s", c.LogLevel, c.LogFormat)
	switch c.OnStop {
	case StopKeep:
		line("on stop", "keep the endpoints mptcpd-go added")
	default:
		line("on stop", "remove the endpoints mptcpd-go added")
	}
	if c.Mode != ModeKernel {
		c.describeUserspace(&b, line)
	}
	for _, p := range c.Proxies {
		line("proxy "+string(p.Role), "%s", p.summary())
	}

	ondisk := 0
	for _, p := range c.Interfaces {
		if !strings.HasPrefix(p.File, EmbeddedPrefix) {
			ondisk++
		}
	}
	switch {
	case ondisk > 0:
		fmt.Fprintf(&b, "Interface files in %s (the first that matches applies):\n", c.PolicyDir)
	case c.PolicyDirMissing && len(c.Interfaces) > 0:
		fmt.Fprintf(&b, "Interface files: %s does not exist; using the built-in interface policy:\n", c.PolicyDir)
	case len(c.Interfaces) > 0:
		fmt.Fprintf(&b, "Interface files: none in %s; using the built-in interface policy:\n", c.PolicyDir)
	case c.PolicyDirMissing:
		fmt.Fprintf(&b, "Interface files: %s does not exist, so no interface gets endpoints\n", c.PolicyDir)
	default:
		fmt.Fprintf(&b, "Interface files: none in %s, so no interface gets endpoints\n", c.PolicyDir)
	}
	for _, p := range c.Interfaces {
		p.describe(&b)
	}
	if len(c.Interfaces) > 0 {
		b.WriteString("Interfaces no file matches, and loopback interfaces, get no endpoints.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// describe writes one interface file's part of Describe.
func (p *Interface) describe(b *strings.Builder) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(b, "    %-15s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(b, "  %s\n", p.File)
	match := "name " + strings.Join(p.Names, " or ")
	if len(p.Kinds) > 0 {
		match += ", kind " + strings.Join(p.Kinds, " or ")
	}
	line("match", "%s", match)
	if p.Ignore {
		line("ignore", "these interfaces get no endpoints")
		return
	}
	endpoint := "flags " + p.Flags.String()
	if p.Port != 0 {
		endpoint += fmt.Sprintf(", port %d", p.Port)
	}
	line("endpoints", "%s, priority %d", endpoint, p.Priority)
	families := "ipv4 and ipv6"
	if len(p.Families) == 1 {
		families = string(p.Families[0]) + " only"
	}
	if p.AlsoWithoutDefaultRoute {
		line("addresses", "%s, also without a default route", families)
	} else {
		line("addresses", "%s, while the interface has a default route for the family", families)
	}
	line("skip", "%s", p.Skip)
	if p.Metered {
		line("metered", "yes (the cost preset opens only backup subflows from it)")
	}
}

// describeUserspace writes the userspace path manager's settings.
func (c *Config) describeUserspace(b *strings.Builder, line func(label, format string, args ...any)) {
	line("preset", "%s", c.Preset)
	if c.MaxSubflows > 0 {
		line("max subflows", "%d per connection", c.MaxSubflows)
	} else {
		line("max subflows", "%d per connection (default)", MaxSubflowsLimit)
	}
	if len(c.Rules) == 0 {
		b.WriteString("Connection rules: none; every connection is managed\n")
		return
	}
	b.WriteString("Connection rules (the first that matches applies; other connections are managed):\n")
	for i, r := range c.Rules {
		fmt.Fprintf(b, "  %d. %s:%d: %s\n", i+1, r.File, r.Line, r.Describe())
	}
}

// Describe says in one line what the rule matches and does.
func (r ConnRule) Describe() string {
	var parts []string
	if r.Side != SideAny {
		parts = append(parts, "side "+string(r.Side))
	}
	if len(r.Dst) > 0 {
		dst := make([]string, len(r.Dst))
		for i, p := range r.Dst {
			dst[i] = p.String()
		}
		parts = append(parts, "dst "+strings.Join(dst, " or "))
	}
	if len(r.Ports) > 0 {
		ports := make([]string, len(r.Ports))
		for i, p := range r.Ports {
			ports[i] = p.String()
		}
		parts = append(parts, "ports "+strings.Join(ports, ", "))
	}
	match := "every connection"
	if len(parts) > 0 {
		match = strings.Join(parts, ", ")
	}
	s := match + " → " + string(r.Action)
	if r.MaxSubflows > 0 {
		s += fmt.Sprintf(" (at most %d extra subflows)", r.MaxSubflows)
	}
	return s
}

// summary is one proxy in a line.
func (p Proxy) summary() string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	add("listen %s", p.Listen)
	if p.Role == ProxyServer {
		if p.To != "" {
			add("to %s", p.To)
		}
		if len(p.Announce) > 0 {
			add("announce %s", strings.Join(p.Announce, " "))
		}
		if len(p.Allow) > 0 {
			var as []string
			for _, a := range p.Allow {
				as = append(as, a.String())
			}
			add("transparent clients may reach %s", strings.Join(as, " "))
		}
	} else {
		add("server %s", p.Server)
		switch {
		case len(p.Via)+len(p.Backup) == 0:
			add("paths from the interface files")
		case len(p.Backup) == 0:
			add("via %s", strings.Join(p.Via, " "))
		default:
			add("via %s, backup %s", strings.Join(p.Via, " "), strings.Join(p.Backup, " "))
		}
		if p.Transparent {
			add("transparent")
		}
	}
	if p.PSKFile != "" {
		add("key %s", p.PSKFile)
	} else {
		add("no pre-shared key")
	}
	return strings.Join(parts, ", ")
}
