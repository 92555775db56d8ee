package daemon

import (
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/policy"
)

// IfacePlan is what the policy says about one link: which file matched and,
// per address, whether it gets an endpoint and why not.
type IfacePlan struct {
	Link   endpoints.Link
	Policy *policy.Interface // nil: no file matched
	Addrs  []AddrPlan
}

// AddrPlan is the policy's verdict on one address.
type AddrPlan struct {
	Addr   endpoints.Addr
	Wanted bool
	Why    string // why not, in plain words
}

// Decide applies the policy to a snapshot of links and addresses: the
// per-link verdicts, the wanted endpoints and the wanted limits. It is a
// pure function, shared by the daemon and `policy check`.
func Decide(cfg *policy.Config, snap endpoints.Snapshot) ([]IfacePlan, []endpoints.Want, endpoints.LimitsWant) {
	var plans []IfacePlan
	var wants []endpoints.Want
	subflowWants := 0
	for _, l := range snap.Links {
		p := cfg.Match(policy.Link{Name: l.Name, Kind: l.Kind, Loopback: l.Loopback})
		ip := IfacePlan{Link: l, Policy: p}
		for _, a := range l.Addrs {
			ap := AddrPlan{Addr: a}
			switch {
			case l.Loopback:
				ap.Why = "loopback interface"
			case p == nil:
				ap.Why = "no policy file matches this interface"
			default:
				hasDefault := l.DefaultV4
				if a.Prefix.Addr().Unmap().Is6() {
					hasDefault = l.DefaultV6
				}
				ap.Wanted, ap.Why = p.Wants(policy.Addr{
					Prefix:     a.Prefix,
					LinkLocal:  a.LinkLocal,
					Temporary:  a.Temporary,
					Deprecated: a.Deprecated,
					Tentative:  a.Tentative,
				}, hasDefault)
			}
			if ap.Wanted {
				wants = append(wants, endpoints.Want{
					Iface:    l.Name,
					Ifindex:  l.Index,
					Addr:     a.Prefix.Addr().Unmap(),
					Port:     p.Port,
					Flags:    p.Flags,
					Priority: p.Priority,
				})
				if p.Flags&(genl.FlagSubflow|genl.FlagFullmesh) != 0 {
					subflowWants++
				}
			}
			ip.Addrs = append(ip.Addrs, ap)
		}
		plans = append(plans, ip)
	}
	return plans, wants, Limits(cfg, len(wants), subflowWants)
}

// Limits resolves the policy's limits. "auto" derives them from the wanted
// endpoints: subflows is one per endpoint (at least the kernel's default
// of 2), add_addr_accepted one per subflow endpoint (at least 1, so the
// peer's announcements can be used from the initial address); both at most
// genl.MaxLimit.
func Limits(cfg *policy.Config, wants, subflowWants int) endpoints.LimitsWant {
	sub := cfg.Subflows.Resolve(clamp(wants, 2, genl.MaxLimit))
	acc := cfg.AddAddrAccepted.Resolve(clamp(subflowWants, 1, genl.MaxLimit))
	return endpoints.LimitsWant{Subflows: &sub, AddAddrAccepted: &acc}
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}
