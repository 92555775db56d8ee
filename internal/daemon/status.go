package daemon

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// Status is what `mptcpd-go status` shows, as sent over the control socket.
// Field names are the stable JSON keys of `status -j`.
type Status struct {
	PID           int              `json:"pid"`
	Mode          string           `json:"mode"`
	Config        string           `json:"config"`
	Embedded      bool             `json:"embedded_policy"`
	PolicyFiles   []string         `json:"policy_files"`
	Limits        LimitsStatus     `json:"limits"`
	Interfaces    []IfaceStatus    `json:"interfaces"`
	Owned         []EndpointStatus `json:"owned_endpoints"`
	Foreign       []EndpointStatus `json:"foreign_endpoints"`
	NotAdded      []NotAdded       `json:"not_added"`
	Summary       string           `json:"summary"`
	LastReconcile time.Time        `json:"last_reconcile"`
	ReconcileMS   float64          `json:"last_reconcile_ms"`
	Reconciles    uint64           `json:"reconciles"`
	Errors        []string         `json:"errors"`
	ReloadError   string           `json:"last_reload_error,omitempty"`
	// PathManager is set in userspace mode.
	PathManager *PMStatus `json:"path_manager,omitempty"`
}

// LimitsStatus are the kernel's limits and what the policy asks for.
type LimitsStatus struct {
	Subflows            uint32 `json:"subflows"`
	AddAddrAccepted     uint32 `json:"add_addr_accepted"`
	PolicySubflows      string `json:"policy_subflows"`
	PolicyAddAddrAccept string `json:"policy_add_addr_accepted"`
}

// IfaceStatus is one interface: its state, matched policy and addresses.
type IfaceStatus struct {
	Name      string `json:"iface"`
	Index     int    `json:"ifindex"`
	Kind      string `json:"kind"`
	Up        bool   `json:"up"`
	Running   bool   `json:"running"`
	DefaultV4 bool   `json:"default_route_v4"`
	DefaultV6 bool   `json:"default_route_v6"`
	Policy    string `json:"policy"`
	Ignored   bool   `json:"ignored"`
	// Use is the userspace path manager's use of the interface.
	Use   string       `json:"use,omitempty"`
	Addrs []AddrStatus `json:"addresses"`
}

// AddrStatus is one address and the policy's verdict.
type AddrStatus struct {
	Addr   string `json:"addr"`
	Wanted bool   `json:"wanted"`
	Why    string `json:"why,omitempty"`
}

// EndpointStatus is a kernel endpoint.
type EndpointStatus struct {
	ID    uint8    `json:"endpoint_id"`
	Addr  string   `json:"addr"`
	Port  uint16   `json:"port,omitempty"`
	Flags []string `json:"flags"`
	Iface string   `json:"iface,omitempty"`
	Note  string   `json:"note,omitempty"`
}

// NotAdded is a wanted endpoint that is not in the kernel, and why.
type NotAdded struct {
	Iface  string `json:"iface"`
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
}

// buildStatus assembles a Status from the policy, the watcher's snapshot
// and the reconciler's last outcome.
func buildStatus(cfg *policy.Config, snap endpoints.Snapshot, rs endpoints.Status, reloadErr error) Status {
	plans, _, lw := Decide(cfg, snap)
	st := Status{
		Mode:          string(cfg.Mode),
		Config:        cfg.Path,
		Embedded:      cfg.Embedded,
		PolicyFiles:   policyFiles(cfg),
		Summary:       rs.Report.Summary,
		LastReconcile: rs.LastReconcile,
		ReconcileMS:   float64(rs.Duration.Microseconds()) / 1000,
		Reconciles:    rs.Reconciles,
		Limits: LimitsStatus{
			Subflows:            rs.Limits.Subflows,
			AddAddrAccepted:     rs.Limits.AddAddrAccepted,
			PolicySubflows:      limitWant(cfg.Subflows, lw.Subflows),
			PolicyAddAddrAccept: limitWant(cfg.AddAddrAccepted, lw.AddAddrAccepted),
		},
		Interfaces: []IfaceStatus{},
		Owned:      []EndpointStatus{},
		Foreign:    []EndpointStatus{},
		NotAdded:   []NotAdded{},
		Errors:     []string{},
	}
	if reloadErr != nil {
		st.ReloadError = reloadErr.Error()
	}
	for _, p := range plans {
		is := IfaceStatus{Name: p.Link.Name, Index: p.Link.Index, Kind: p.Link.Kind, Up: p.Link.Up,
			Running: p.Link.Running, DefaultV4: p.Link.DefaultV4, DefaultV6: p.Link.DefaultV6, Addrs: []AddrStatus{}}
		if p.Policy != nil {
			is.Policy, is.Ignored = p.Policy.File, p.Policy.Ignore
		}
		for _, a := range p.Addrs {
			is.Addrs = append(is.Addrs, AddrStatus{Addr: a.Addr.Prefix.String(), Wanted: a.Wanted, Why: a.Why})
		}
		st.Interfaces = append(st.Interfaces, is)
	}
	for _, o := range rs.Owned {
		st.Owned = append(st.Owned, EndpointStatus{ID: o.ID, Addr: o.Addr.String(), Port: o.Port, Flags: flagNames(o.Flags), Iface: o.Iface})
	}
	for _, f := range rs.Report.Foreign {
		st.Foreign = append(st.Foreign, EndpointStatus{ID: f.Endpoint.ID, Addr: f.Endpoint.Addr.String(), Port: f.Endpoint.Port,
			Flags: flagNames(f.Endpoint.Flags), Iface: f.WantedOn, Note: f.Note})
	}
	for _, c := range rs.Report.Capped {
		st.NotAdded = append(st.NotAdded, NotAdded{Iface: c.Want.Iface, Addr: c.Want.Addr.String(), Reason: c.Note})
	}
	for _, s := range rs.Report.Skipped {
		st.NotAdded = append(st.NotAdded, NotAdded{Iface: s.Want.Iface, Addr: s.Want.Addr.String(), Reason: s.Note})
	}
	for _, err := range rs.Errors {
		st.Errors = append(st.Errors, err.Error())
	}
	return st
}

func policyFiles(cfg *policy.Config) []string {
	files := []string{cfg.Path}
	for _, p := range cfg.Interfaces {
		files = append(files, p.File)
	}
	return files
}

func limitWant(l policy.Limit, resolved *uint32) string {
	if resolved == nil {
		return l.String()
	}
	if l.Auto {
		return fmt.Sprintf("auto (%d)", *resolved)
	}
	return l.String()
}

func flagNames(f genl.Flags) []string {
	names, _ := f.Names()
	if names == nil {
		names = []string{}
	}
	return names
}

// WriteText prints a Status for people.
func (st Status) WriteText(w io.Writer) error {
	var b strings.Builder
	src := st.Config
	if st.Embedded {
		src += " (not found: built-in default policy)"
	}
	fmt.Fprintf(&b, "mptcpd-go daemon (pid %d), mode %s, policy %s\n", st.PID, st.Mode, src)
	fmt.Fprintf(&b, "limits: subflows %d (policy %s), add_addr_accepted %d (policy %s)\n",
		st.Limits.Subflows, st.Limits.PolicySubflows, st.Limits.AddAddrAccepted, st.Limits.PolicyAddAddrAccept)
	if !st.LastReconcile.IsZero() {
		fmt.Fprintf(&b, "last reconcile: %s (%.1f ms), %d so far\n", st.LastReconcile.Format(time.RFC3339), st.ReconcileMS, st.Reconciles)
	}
	if st.Summary != "" {
		fmt.Fprintf(&b, "%s\n", st.Summary)
	}
	b.WriteString("\ninterfaces:\n")
	for _, is := range st.Interfaces {
		state := "down"
		switch {
		case is.Running:
			state = "up"
		case is.Up:
			state = "up, no carrier"
		}
		pol := is.Policy
		switch {
		case pol == "":
			pol = "no matching policy"
		case is.Ignored:
			pol += " (ignored)"
		}
		if is.Use != "" {
			pol += ", use " + is.Use
		}
		fmt.Fprintf(&b, "  %s (%s): %s\n", is.Name, state, pol)
		for _, a := range is.Addrs {
			if a.Wanted {
				fmt.Fprintf(&b, "    %s: endpoint\n", a.Addr)
			} else {
				fmt.Fprintf(&b, "    %s: no endpoint: %s\n", a.Addr, a.Why)
			}
		}
	}
	if st.PathManager != nil {
		st.PathManager.writeText(&b)
		st.writeErrors(&b)
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("\nendpoints managed by mptcpd-go:\n")
	if len(st.Owned) == 0 {
		b.WriteString("  none\n")
	}
	for _, e := range st.Owned {
		fmt.Fprintf(&b, "  id %d %s%s %s on %s\n", e.ID, e.Addr, portText(e.Port), strings.Join(e.Flags, " "), e.Iface)
	}
	if len(st.Foreign) > 0 {
		b.WriteString("\nendpoints managed by someone else (left alone, but they take slots):\n")
		for _, e := range st.Foreign {
			fmt.Fprintf(&b, "  id %d %s%s %s\n", e.ID, e.Addr, portText(e.Port), strings.Join(e.Flags, " "))
		}
	}
	if len(st.NotAdded) > 0 {
		b.WriteString("\nwanted but not in the kernel:\n")
		for _, n := range st.NotAdded {
			fmt.Fprintf(&b, "  %s %s: %s\n", n.Iface, n.Addr, n.Reason)
		}
	}
	st.writeErrors(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeErrors prints the reconcile errors and a refused reload.
func (st Status) writeErrors(b *strings.Builder) {
	if len(st.Errors) > 0 || st.ReloadError != "" {
		b.WriteString("\nerrors:\n")
		for _, e := range st.Errors {
			fmt.Fprintf(b, "  %s\n", e)
		}
		if st.ReloadError != "" {
			fmt.Fprintf(b, "  last reload refused (previous policy stays in force): %s\n", st.ReloadError)
		}
	}
}

func portText(p uint16) string {
	if p == 0 {
		return ""
	}
	return fmt.Sprintf(" port %d", p)
}
