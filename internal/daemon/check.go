package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// Check is `mptcpd-go policy check`: it loads the policy and, when it is
// valid, prints it and what it would do with the links and addresses of
// this network namespace right now. A policy error is returned as is (a
// policy.Errors lists every problem with file:line:col).
func Check(w io.Writer, configPath string) error {
	cfg, err := policy.Load(configPath)
	if err != nil {
		return err
	}
	if err := cfg.Describe(w); err != nil {
		return err
	}
	wt, err := endpoints.NewWatcher(endpoints.WatcherConfig{})
	if err != nil {
		return fmt.Errorf("list links and addresses: %w", err)
	}
	defer wt.Close()
	return writePlan(w, cfg, wt.Snapshot())
}

// writePlan prints which interface matched which file and the endpoints and
// limits the policy asks for.
func writePlan(w io.Writer, cfg *policy.Config, snap endpoints.Snapshot) error {
	if cfg.Mode != policy.ModeKernel {
		if err := writeUserspacePlan(w, cfg, snap); err != nil {
			return err
		}
		if cfg.Mode == policy.ModeUserspace {
			return nil
		}
		// auto: the kernel decides at start; show both.
		if _, err := io.WriteString(w, "\nif auto picks the in-kernel path manager (no userspace path manager, or no per-connection rules):"); err != nil {
			return err
		}
	}
	plans, wants, lw := Decide(cfg, snap)
	var b strings.Builder
	b.WriteString("\nplan for the interfaces present now:\n")
	for _, p := range plans {
		if p.Link.Loopback {
			continue
		}
		switch {
		case p.Policy == nil:
			fmt.Fprintf(&b, "  %s: no policy file matches; no endpoints\n", p.Link.Name)
			continue
		case p.Policy.Ignore:
			fmt.Fprintf(&b, "  %s: ignored by %s\n", p.Link.Name, p.Policy.File)
			continue
		}
		fmt.Fprintf(&b, "  %s: %s\n", p.Link.Name, p.Policy.File)
		if !p.Link.Running {
			b.WriteString("    the link is down or has no carrier: its endpoints wait until it is up\n")
		}
		if len(p.Addrs) == 0 {
			b.WriteString("    no addresses\n")
		}
		for _, a := range p.Addrs {
			if a.Wanted {
				fmt.Fprintf(&b, "    %s: endpoint %s%s\n", a.Addr.Prefix.Addr(), p.Policy.Flags, portText(p.Policy.Port))
			} else {
				fmt.Fprintf(&b, "    %s: no endpoint: %s\n", a.Addr.Prefix.Addr(), a.Why)
			}
		}
	}
	fmt.Fprintf(&b, "endpoints wanted: %d (the kernel keeps at most 8; priority decides)\n", len(wants))
	fmt.Fprintf(&b, "limits: subflows %d, add_addr_accepted %d\n", *lw.Subflows, *lw.AddAddrAccepted)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeUserspacePlan prints what the userspace path manager would do with
// each interface present now: its use under the preset, and the addresses
// it would open subflows from (or announce).
func writeUserspacePlan(w io.Writer, cfg *policy.Config, snap endpoints.Snapshot) error {
	kinds := map[string]string{}
	for _, l := range snap.Links {
		kinds[l.Name] = l.Kind
	}
	pc := PathManagerConfig(cfg, func(name string) string { return kinds[name] })
	view := pathmgr.NewLocalView(filterSnapshot(cfg, snap), pc)
	var b strings.Builder
	fmt.Fprintf(&b, "\nuserspace path manager plan (preset %s) for the interfaces present now:\n", cfg.Preset)
	for _, l := range snap.Links {
		if l.Loopback {
			continue
		}
		ifc, ok := findIface(view, l.Index)
		if !ok {
			why := "no usable address the policy wants (see the plan below), or the link is down"
			if p := cfg.Match(policy.Link{Name: l.Name, Kind: l.Kind}); p == nil {
				why = "no policy file matches"
			} else if p.Ignore {
				why = "ignored by " + p.File
			}
			fmt.Fprintf(&b, "  %s: not used: %s\n", l.Name, why)
			continue
		}
		extra := ""
		if ifc.Signal {
			extra = ", announced on the server side" + portText(ifc.Port)
		}
		addrs := make([]string, len(ifc.Addrs))
		for i, a := range ifc.Addrs {
			addrs[i] = a.String()
		}
		fmt.Fprintf(&b, "  %s: use %s%s; addresses %s\n", l.Name, ifc.Use, extra, strings.Join(addrs, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func findIface(v pathmgr.LocalView, index int) (pathmgr.LocalIface, bool) {
	for _, ifc := range v.Ifaces {
		if ifc.Index == index {
			return ifc, true
		}
	}
	return pathmgr.LocalIface{}, false
}
