package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// ChooseMode resolves the policy's mode against what the kernel can do
// (supportsUserspace: genl.Client.SupportsUserspacePM). It returns the
// mode to run, kernel or userspace, and why, for the log; an error when
// the policy asks for the userspace path manager and the kernel lacks it.
func ChooseMode(cfg *policy.Config, supportsUserspace bool) (policy.Mode, string, error) {
	switch cfg.Mode {
	case policy.ModeUserspace:
		if !supportsUserspace {
			return "", "", fmt.Errorf(`mode = "userspace" in %s, but this kernel has no userspace MPTCP path manager (Linux 5.19 or later has it); use mode = "kernel" or "auto"`, cfg.Path)
		}
		return policy.ModeUserspace, `mode = "userspace"`, nil
	case policy.ModeAuto:
		switch {
		case !cfg.WantsPerConnection():
			return policy.ModeKernel, "auto: the policy has no [[rule]], max_subflows or preset other than " + policy.DefaultPreset + ", which the in-kernel path manager covers", nil
		case !supportsUserspace:
			return policy.ModeKernel, "auto: the policy asks for per-connection rules, but this kernel has no userspace path manager; rules, preset and max_subflows are not applied", nil
		}
		return policy.ModeUserspace, "auto: the policy asks for per-connection rules (preset, max_subflows or [[rule]]) and the kernel has the userspace path manager", nil
	}
	return policy.ModeKernel, `mode = "kernel"`, nil
}

// PathManagerConfig converts the policy for the userspace path manager.
// kind returns the link kind of an interface by name (for interface files
// that match kinds); nil takes every kind as "device".
//
// Interface files map as: ignore = true → UseNever; "backup" → UseBackup;
// otherwise the preset decides; "signal" makes the server side announce
// the addresses (with port). Interfaces no file matches are never used.
// Which addresses are usable (family, skip, default route) is not here:
// the daemon filters the snapshot with the policy (see policySource).
func PathManagerConfig(cfg *policy.Config, kind func(name string) string) pathmgr.Config {
	if kind == nil {
		kind = func(string) string { return "device" }
	}
	pc := pathmgr.Config{Preset: pathmgr.Preset(cfg.Preset), MaxSubflows: cfg.MaxSubflows}
	for _, p := range cfg.Interfaces {
		r := pathmgr.IfaceRule{Metered: p.Metered}
		// The first file that matches applies, as in kernel mode (names
		// and kinds): globs alone would take what an earlier file took.
		r.Match = func(name string) bool {
			return cfg.Match(policy.Link{Name: name, Kind: kind(name)}) == p
		}
		switch {
		case p.Ignore:
			r.Use = pathmgr.UseNever
		case p.Flags&genl.FlagBackup != 0:
			r.Use = pathmgr.UseBackup
		}
		if !p.Ignore && p.Flags&genl.FlagSignal != 0 {
			r.Signal, r.Port = true, p.Port
		}
		pc.Interfaces = append(pc.Interfaces, r)
	}
	pc.Interfaces = append(pc.Interfaces, pathmgr.IfaceRule{Names: []string{"*"}, Use: pathmgr.UseNever})
	for _, r := range cfg.Rules {
		cr := pathmgr.ConnRule{MaxSubflows: r.MaxSubflows}
		for _, pr := range r.Ports {
			cr.Ports = append(cr.Ports, pathmgr.PortRange{First: pr.First, Last: pr.Last})
		}
		switch r.Side {
		case policy.SideClient:
			cr.Side = pathmgr.ClientSide
		case policy.SideServer:
			cr.Side = pathmgr.ServerSide
		}
		if r.Action == policy.ActionNever {
			cr.Action = pathmgr.Never
		}
		if len(r.Dst) == 0 {
			pc.Rules = append(pc.Rules, cr)
			continue
		}
		// One path manager rule per prefix, in a row: the first match
		// still wins.
		for _, dst := range r.Dst {
			c := cr
			c.Dst = dst
			pc.Rules = append(pc.Rules, c)
		}
	}
	return pc
}

// policySource is the path manager's view of the links: the watcher's
// snapshot with only the addresses the policy wants (the same verdict as
// kernel mode's endpoints: family, skip, default route, ignore). It also
// remembers the link kinds for PathManagerConfig's kind.
type policySource struct {
	src    pathmgr.Source
	policy func() *policy.Config

	mu    sync.Mutex
	kinds map[string]string
}

func newPolicySource(src pathmgr.Source, cfg func() *policy.Config) *policySource {
	return &policySource{src: src, policy: cfg, kinds: map[string]string{}}
}

// Snapshot implements pathmgr.Source.
func (s *policySource) Snapshot() endpoints.Snapshot {
	snap := filterSnapshot(s.policy(), s.src.Snapshot())
	kinds := make(map[string]string, len(snap.Links))
	for _, l := range snap.Links {
		kinds[l.Name] = l.Kind
	}
	s.mu.Lock()
	s.kinds = kinds
	s.mu.Unlock()
	return snap
}

// Changed implements pathmgr.Source.
func (s *policySource) Changed() <-chan struct{} { return s.src.Changed() }

// kind returns the kind of the link named name in the last snapshot.
func (s *policySource) kind(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kinds[name]
}

// filterSnapshot keeps, of every link, the addresses the policy wants. The
// snapshot's slices are shared with the watcher, so new ones are made.
func filterSnapshot(cfg *policy.Config, snap endpoints.Snapshot) endpoints.Snapshot {
	plans, _, _ := Decide(cfg, snap)
	out := endpoints.Snapshot{Links: make([]endpoints.Link, 0, len(plans))}
	for _, p := range plans {
		l := p.Link
		l.Addrs = nil
		for _, a := range p.Addrs {
			if a.Wanted {
				l.Addrs = append(l.Addrs, a.Addr)
			}
		}
		out.Links = append(out.Links, l)
	}
	return out
}

// The sysctls that choose the path manager of new MPTCP connections in a
// network namespace: path_manager (Linux 6.15+) or the older pm_type.
const (
	sysctlDir       = "/proc/sys/net/mptcp"
	pathManagerFile = "path_manager"
	pmTypeFile      = "pm_type"
)

// pmSetting is a path manager sysctl as it was before the daemon changed
// it.
type pmSetting struct {
	file, prev string
}

// useUserspacePM makes new MPTCP connections of this namespace use the
// userspace path manager and returns the previous setting, to be restored
// with restore.
func useUserspacePM(dir string) (*pmSetting, error) {
	s := &pmSetting{file: filepath.Join(dir, pathManagerFile)}
	value := "userspace"
	prev, err := os.ReadFile(s.file)
	if errors.Is(err, os.ErrNotExist) {
		s.file, value = filepath.Join(dir, pmTypeFile), "1"
		prev, err = os.ReadFile(s.file)
	}
	if err != nil {
		return nil, fmt.Errorf("read the path manager sysctl: %w (is this kernel built with MPTCP?)", err)
	}
	s.prev = strings.TrimSpace(string(prev))
	if err := os.WriteFile(s.file, []byte(value), 0o644); err != nil {
		return nil, fmt.Errorf("select the userspace path manager (write %s to %s): %w; the daemon needs CAP_NET_ADMIN", value, s.file, err)
	}
	return s, nil
}

// restore writes the previous value back.
func (s *pmSetting) restore() error {
	if err := os.WriteFile(s.file, []byte(s.prev), 0o644); err != nil {
		return fmt.Errorf("restore %s to %q: %w; set it by hand with sysctl", s.file, s.prev, err)
	}
	return nil
}

// PMStatus is the userspace path manager's part of Status.
type PMStatus struct {
	Connections []ConnStatus `json:"connections"`
	Untracked   uint64       `json:"untracked"`
	Events      uint64       `json:"events"`
	EventsLost  uint64       `json:"events_lost"`
	Rebuilds    uint64       `json:"rebuilds"`
	Actions     ActionCounts `json:"actions"`
	Failures    ActionCounts `json:"failures"`
	RebuildErr  string       `json:"rebuild_error,omitempty"`
}

// ActionCounts counts the path manager's kernel commands by kind.
type ActionCounts struct {
	CreateSubflow  uint64 `json:"create_subflow"`
	DestroySubflow uint64 `json:"destroy_subflow"`
	Announce       uint64 `json:"announce"`
	Remove         uint64 `json:"remove"`
	SetBackup      uint64 `json:"set_backup"`
}

// ConnStatus is one tracked MPTCP connection.
type ConnStatus struct {
	Token       string          `json:"token"`
	Side        string          `json:"side"`
	Established bool            `json:"established"`
	Unmanaged   bool            `json:"unmanaged"`
	Local       string          `json:"local"`
	Remote      string          `json:"remote"`
	Subflows    []SubflowStatus `json:"subflows"`
}

// SubflowStatus is one subflow of a connection.
type SubflowStatus struct {
	Local   string `json:"local"`
	Remote  string `json:"remote"`
	Backup  bool   `json:"backup"`
	State   string `json:"state"`
	Initial bool   `json:"initial"`
}

func actionCounts(c pathmgr.ActionCounts) ActionCounts {
	return ActionCounts{CreateSubflow: c.CreateSubflow, DestroySubflow: c.DestroySubflow,
		Announce: c.Announce, Remove: c.Remove, SetBackup: c.SetBackup}
}

// pmStatus converts the path manager's status.
func pmStatus(s pathmgr.Status) *PMStatus {
	ps := &PMStatus{
		Connections: []ConnStatus{}, Untracked: s.Untracked,
		Events: s.Counters.Events, EventsLost: s.Counters.EventsLost, Rebuilds: s.Counters.Rebuilds,
		Actions: actionCounts(s.Counters.Actions), Failures: actionCounts(s.Counters.Failures),
	}
	if s.RebuildError != nil {
		ps.RebuildErr = s.RebuildError.Error()
	}
	for _, c := range s.Connections {
		cs := ConnStatus{Token: c.Token, Side: c.Side.String(), Established: c.Established, Unmanaged: c.Unmanaged,
			Local: addrPort(c.Local), Remote: addrPort(c.Remote), Subflows: []SubflowStatus{}}
		for _, sf := range c.Subflows {
			cs.Subflows = append(cs.Subflows, SubflowStatus{Local: addrPort(sf.Local), Remote: addrPort(sf.Remote),
				Backup: sf.Backup, State: sf.State.String(), Initial: sf.Initial})
		}
		ps.Connections = append(ps.Connections, cs)
	}
	return ps
}

func addrPort(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// writeText prints the path manager's part of a Status.
func (ps *PMStatus) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "\nuserspace path manager: %d connections tracked", len(ps.Connections))
	if ps.Untracked > 0 {
		fmt.Fprintf(b, " (%d left alone: too many)", ps.Untracked)
	}
	fmt.Fprintf(b, ", %d events (%d lost), %d rebuilds\n", ps.Events, ps.EventsLost, ps.Rebuilds)
	a, f := ps.Actions, ps.Failures
	fmt.Fprintf(b, "actions (failed): create subflow %d (%d), destroy subflow %d (%d), announce %d (%d), remove %d (%d), set backup %d (%d)\n",
		a.CreateSubflow, f.CreateSubflow, a.DestroySubflow, f.DestroySubflow, a.Announce, f.Announce, a.Remove, f.Remove, a.SetBackup, f.SetBackup)
	if ps.RebuildErr != "" {
		fmt.Fprintf(b, "last rebuild failed: %s\n", ps.RebuildErr)
	}
	for _, c := range ps.Connections {
		state := "established"
		if !c.Established {
			state = "not established"
		}
		if c.Unmanaged {
			state += ", run by another path manager"
		}
		fmt.Fprintf(b, "  token %s %s %s -> %s (%s)\n", c.Token, c.Side, c.Local, c.Remote, state)
		for _, sf := range c.Subflows {
			var tags []string
			if sf.Initial {
				tags = append(tags, "initial")
			}
			if sf.Backup {
				tags = append(tags, "backup")
			}
			tags = append(tags, sf.State)
			fmt.Fprintf(b, "    subflow %s -> %s %s\n", sf.Local, sf.Remote, strings.Join(tags, " "))
		}
	}
}
