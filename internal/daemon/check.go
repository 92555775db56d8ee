package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
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
