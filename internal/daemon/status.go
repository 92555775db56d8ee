package daemon

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/ansi"
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
	// Problems is what the summary lists as wrong, with what to do; the
	// client fills it from the fields above (Diagnose), so it is there
	// whatever the daemon's version.
	Problems []Problem `json:"problems"`
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
	// Capped: the kernel's endpoint table is full (rather than the
	// interface not being ready).
	Capped bool `json:"capped,omitempty"`
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
		st.NotAdded = append(st.NotAdded, NotAdded{Iface: c.Want.Iface, Addr: c.Want.Addr.String(), Reason: c.Note, Capped: true})
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

// Problem is one thing the summary reports as wrong: what is wrong and
// what to do about it.
type Problem struct {
	What string `json:"what"`
	Fix  string `json:"fix,omitempty"`
}

// painter colours text when on; off, it returns the text unchanged, so
// piped output stays plain.
type painter bool

func (p painter) paint(sgr, s string) string {
	if !p || s == "" {
		return s
	}
	return sgr + s + ansi.Reset
}

// ifaceUse is the summary's verdict on one interface.
type ifaceUse int

const (
	ifaceInUse ifaceUse = iota
	ifaceNotUsed
	ifaceIgnored
)

// ifaceLine is one interface line of the summary.
type ifaceLine struct {
	name string
	use  ifaceUse
	text string
}

// WriteReport prints the summary followed by the detailed status
// (WriteText). color adds ANSI colours to the summary; callers enable it
// only for a terminal.
func (st Status) WriteReport(w io.Writer, color bool) error {
	if err := st.WriteSummary(w, color); err != nil {
		return err
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return err
	}
	return st.WriteText(w)
}

// WriteSummary prints what a newcomer needs first: whether multipath is
// on, which interfaces carry it and why the others do not, and what is
// wrong with what to do about it.
func (st Status) WriteSummary(w io.Writer, color bool) error {
	p := painter(color)
	var b strings.Builder
	lines := st.interfaceLines()
	on, head := st.headline(lines)
	verdict := p.paint(ansi.Bold+ansi.Red, "off")
	if on {
		verdict = p.paint(ansi.Bold+ansi.Green, "on")
	}
	fmt.Fprintf(&b, "Multipath: %s, %s\n", verdict, head)
	width := 0
	for _, l := range lines {
		width = max(width, len(l.name))
	}
	for _, l := range lines {
		var word string
		switch l.use {
		case ifaceInUse:
			word = p.paint(ansi.Green, "in use")
		case ifaceIgnored:
			word = p.paint(ansi.Dim, "ignored")
		default:
			word = p.paint(ansi.Yellow, "not in use")
		}
		fmt.Fprintf(&b, "  %-*s  %s: %s\n", width, l.name, word, l.text)
	}
	probs := st.Problems
	if probs == nil {
		probs = st.Diagnose()
	}
	if len(probs) == 0 {
		fmt.Fprintf(&b, "%s\n", p.paint(ansi.Green, "No problems found."))
	} else {
		fmt.Fprintf(&b, "%s\n", p.paint(ansi.Bold+ansi.Red, fmt.Sprintf("Problems (%d):", len(probs))))
		for _, pr := range probs {
			fmt.Fprintf(&b, "  %s %s\n", p.paint(ansi.Red, "!"), pr.What)
			if pr.Fix != "" {
				fmt.Fprintf(&b, "    %s %s\n", p.paint(ansi.Bold, "Fix:"), pr.Fix)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// headline says whether multipath is on and what carries it.
func (st Status) headline(lines []ifaceLine) (on bool, text string) {
	var used []string
	for _, l := range lines {
		if l.use == ifaceInUse {
			used = append(used, l.name)
		}
	}
	where := fmt.Sprintf("%d of %s", len(used), plural(len(lines), "interface"))
	if len(lines) == 0 {
		where = "no interfaces"
	}
	if len(used) > 0 {
		where += " (" + strings.Join(used, ", ") + ")"
	}
	if ps := st.PathManager; ps != nil {
		sfs := 0
		for _, c := range ps.Connections {
			sfs += len(c.Subflows)
		}
		text = fmt.Sprintf("userspace path manager: %s with %s; %s usable", plural(len(ps.Connections), "connection"),
			plural(sfs, "subflow"), where)
		return len(used) > 0, text
	}
	if len(st.Owned) == 0 {
		return false, fmt.Sprintf("%s path manager: no endpoint in the kernel, so MPTCP connections use a single path", st.Mode)
	}
	return true, fmt.Sprintf("%s path manager: %s on %s", st.Mode, plural(len(st.Owned), "endpoint"), where)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "s") {
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// isLoopback: lo never gets an endpoint and is left out of the summary.
func (is IfaceStatus) isLoopback() bool {
	if is.Name == "lo" {
		return true
	}
	for _, a := range is.Addrs {
		if a.Why != "loopback interface" {
			return false
		}
	}
	return len(is.Addrs) > 0
}

// noDefaultRoute: the policy leaves the interface's addresses out only
// because it has no default route.
func (is IfaceStatus) noDefaultRoute() bool {
	if is.Policy == "" || is.Ignored || is.DefaultV4 || is.DefaultV6 {
		return false
	}
	for _, a := range is.Addrs {
		if a.Wanted {
			return false
		}
	}
	for _, a := range is.Addrs {
		if strings.Contains(a.Why, "also_without_default_route") {
			return true
		}
	}
	return false
}

// interfaceLines gives each interface but loopback its summary line.
func (st Status) interfaceLines() []ifaceLine {
	owned := map[string][]EndpointStatus{}
	for _, e := range st.Owned {
		owned[e.Iface] = append(owned[e.Iface], e)
	}
	notAdded := map[string][]NotAdded{}
	for _, n := range st.NotAdded {
		notAdded[n.Iface] = append(notAdded[n.Iface], n)
	}
	subflows := st.subflowsByIface()
	var lines []ifaceLine
	for _, is := range st.Interfaces {
		if is.isLoopback() {
			continue
		}
		l := ifaceLine{name: is.Name, use: ifaceNotUsed}
		wanted := 0
		for _, a := range is.Addrs {
			if a.Wanted {
				wanted++
			}
		}
		switch {
		case is.Ignored:
			l.use, l.text = ifaceIgnored, "ignore = true in "+is.Policy
		case st.PathManager != nil:
			l.use, l.text = st.userspaceIfaceText(is, wanted, subflows[is.Name])
		case len(owned[is.Name]) > 0:
			l.use = ifaceInUse
			var eps []string
			for _, e := range owned[is.Name] {
				eps = append(eps, fmt.Sprintf("%s%s (%s)", e.Addr, portText(e.Port), strings.Join(e.Flags, " ")))
			}
			l.text = strings.Join(eps, ", ")
			if n := len(notAdded[is.Name]); n > 0 {
				l.text += fmt.Sprintf("; %s not added (see below)", plural(n, "more address"))
			}
		case len(notAdded[is.Name]) > 0:
			l.text = notAddedReason(notAdded[is.Name][0])
		case wanted > 0:
			l.text = "wanted, not in the kernel yet"
		default:
			l.text = notUsedReason(is)
		}
		lines = append(lines, l)
	}
	return lines
}

// userspaceIfaceText is an interface's line in userspace mode, where the
// path manager opens subflows itself instead of kernel endpoints.
func (st Status) userspaceIfaceText(is IfaceStatus, wanted, subflows int) (ifaceUse, string) {
	if is.Use == "never" {
		return ifaceNotUsed, "use = never in the policy"
	}
	if wanted == 0 || !is.Running {
		return ifaceNotUsed, notUsedReason(is)
	}
	use := ""
	if is.Use != "" {
		use = " (use " + is.Use + ")"
	}
	if subflows == 0 {
		return ifaceInUse, "ready for subflows" + use + ", none open now"
	}
	return ifaceInUse, plural(subflows, "subflow") + " open" + use
}

// subflowsByIface counts the userspace path manager's subflows by the
// interface owning their local address.
func (st Status) subflowsByIface() map[string]int {
	n := map[string]int{}
	if st.PathManager == nil {
		return n
	}
	for _, c := range st.PathManager.Connections {
		for _, sf := range c.Subflows {
			ap, err := netip.ParseAddrPort(sf.Local)
			if err != nil {
				continue
			}
			for _, is := range st.Interfaces {
				if is.hasAddr(ap.Addr().Unmap()) {
					n[is.Name]++
					break
				}
			}
		}
	}
	return n
}

func (is IfaceStatus) hasAddr(a netip.Addr) bool {
	for _, as := range is.Addrs {
		if p, err := netip.ParsePrefix(as.Addr); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// notAddedReason drops the "iface addr:" the reconciler's notes start
// with, which the summary line already says.
func notAddedReason(n NotAdded) string {
	r := n.Reason
	if strings.HasPrefix(r, n.Iface+" ") {
		if _, rest, ok := strings.Cut(r, ": "); ok {
			r = rest
		}
	}
	return n.Addr + ": " + r
}

// notUsedReason says why an interface has no endpoint, in order of what
// to fix first.
func notUsedReason(is IfaceStatus) string {
	switch {
	case !is.Up:
		return "the interface is down"
	case !is.Running:
		return "no carrier (cable or radio link down)"
	case len(is.Addrs) == 0:
		return "no IP address"
	case is.Policy == "":
		return "no policy file matches it"
	case is.noDefaultRoute():
		return "no default route, so it gets no endpoint"
	}
	// The first address's reason; link-local ones are the least telling.
	why := ""
	for _, a := range is.Addrs {
		if a.Wanted {
			continue
		}
		if why == "" || !strings.Contains(a.Why, "link-local") {
			why = a.Why
			if !strings.Contains(why, "link-local") {
				break
			}
		}
	}
	return why
}

// Diagnose lists what is wrong, most important first, each with what to
// do. It uses only the other fields, so a client can run it on any
// daemon's status.
func (st Status) Diagnose() []Problem {
	var ps []Problem
	if st.ReloadError != "" {
		ps = append(ps, Problem{
			What: "The last reload was refused, so the previous policy is still in force: " + st.ReloadError,
			Fix:  `correct the file, check it with "mptcpd-go policy check", then run "mptcpd-go reload".`,
		})
	}
	for _, e := range st.Errors {
		ps = append(ps, Problem{
			What: "The last reconcile failed: " + e,
			Fix:  `the daemon retries on the next change; the daemon log ("journalctl -u mptcpd-go") has the details.`,
		})
	}
	if pm := st.PathManager; pm != nil && pm.RebuildErr != "" {
		ps = append(ps, Problem{
			What: "The userspace path manager could not rebuild its view of the connections: " + pm.RebuildErr,
			Fix:  "it tries again after the next lost event; check that the daemon runs with CAP_NET_ADMIN.",
		})
	}
	if pm := st.PathManager; pm != nil {
		if n := pm.Failures.CreateSubflow + pm.Failures.DestroySubflow + pm.Failures.Announce + pm.Failures.Remove + pm.Failures.SetBackup; n > 0 {
			ps = append(ps, Problem{
				What: fmt.Sprintf("The kernel refused %s of the userspace path manager.", plural(int(n), "command")),
				Fix:  `the daemon log ("journalctl -u mptcpd-go") names each refused command and the kernel's reason.`,
			})
		}
	}
	ps = append(ps, st.cappedProblem()...)
	for _, is := range st.Interfaces {
		if is.Running && is.Use != "never" && is.noDefaultRoute() {
			ps = append(ps, Problem{
				What: is.Name + " has no default route, so it gets no endpoint.",
				Fix:  "if it should carry subflows anyway, set also_without_default_route = true in " + is.Policy + ".",
			})
		}
	}
	ps = append(ps, st.limitsProblem()...)
	if st.noInterfaceUsable() {
		ps = append(ps, Problem{
			What: "No interface is usable for multipath, so MPTCP connections stay on a single path.",
			Fix:  "see why for each interface above; without a policy file only interfaces with a default route get endpoints (\"mptcpd-go policy check\" shows the policy in force).",
		})
	}
	return ps
}

// cappedProblem reports the kernel's endpoint table being full.
func (st Status) cappedProblem() []Problem {
	var capped []string
	for _, n := range st.NotAdded {
		if n.Capped {
			capped = append(capped, n.Iface+" "+n.Addr)
		}
	}
	if len(capped) == 0 {
		return nil
	}
	what := fmt.Sprintf("The kernel's %d endpoints are full: %s not added (%s)", genl.MaxEndpoints,
		plural(len(capped), "wanted address"), strings.Join(capped, ", "))
	if n := len(st.Foreign); n > 0 {
		what += fmt.Sprintf("; endpoints mptcpd-go does not manage take %d of them", n)
	}
	return []Problem{{
		What: what + ".",
		Fix:  `delete endpoints you do not need ("mptcpd-go endpoint show" lists them), or set ignore = true for interfaces that need no multipath.`,
	}}
}

// limitsProblem reports kernel limits lower than the endpoints need.
func (st Status) limitsProblem() []Problem {
	if st.PathManager != nil {
		return nil
	}
	subflowEPs := 0
	for _, list := range [][]EndpointStatus{st.Owned, st.Foreign} {
		for _, e := range list {
			for _, f := range e.Flags {
				if f == "subflow" {
					subflowEPs++
				}
			}
		}
	}
	if uint32(subflowEPs) <= st.Limits.Subflows {
		return nil
	}
	return []Problem{{
		What: fmt.Sprintf("The kernel allows %s per connection, but there are %s: some are never used.",
			plural(int(st.Limits.Subflows), "additional subflow"), plural(subflowEPs, "subflow endpoint")),
		Fix: fmt.Sprintf(`set subflows = %d (or "auto") under [limits] in %s and run "mptcpd-go reload".`, subflowEPs, st.Config),
	}}
}

// noInterfaceUsable: nothing carries, or is about to carry, multipath.
func (st Status) noInterfaceUsable() bool {
	if len(st.Owned) > 0 || len(st.NotAdded) > 0 {
		return false
	}
	for _, l := range st.interfaceLines() {
		if l.use == ifaceInUse {
			return false
		}
	}
	return true
}
