package daemon

import (
	"cmp"
	"net/netip"
	"os"
	"slices"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/internal/metrics"
	"github.com/mptcpd-go/mptcpd-go/pathmgr"
)

// netstatPath holds the kernel's counters of the process's network
// namespace, the one whose MPTCP the daemon manages.
const netstatPath = "/proc/self/net/netstat"

// listenMetrics binds the metrics endpoint of metrics_listen (addr), read
// from d's parts at each scrape; the parts must be set already.
func (d *daemon) listenMetrics(addr string) (*metrics.Server, error) {
	reg, err := metrics.NewRegistry(d.metricsSources())
	if err != nil {
		return nil, err
	}
	return metrics.Listen(addr, reg, d.log.Named("metrics"))
}

// metricsSources adapts the daemon's parts to the metrics package; the
// parts it does not run have nil sources.
func (d *daemon) metricsSources() metrics.Sources {
	mode := string(d.mode)
	if mode == "" {
		mode = "proxy-only"
	}
	src := metrics.Sources{
		Mode:    mode,
		Netstat: func() ([]byte, error) { return os.ReadFile(netstatPath) },
	}
	if w := d.watcher; w != nil {
		src.Watcher = func() metrics.WatcherStats {
			c := w.Counts()
			return metrics.WatcherStats{Link: c.Link, Addr: c.Addr, Route: c.Route, Resubscribes: c.Resubscribes}
		}
	}
	if rec := d.rec; rec != nil {
		src.Reconciler = func() metrics.ReconcilerStats {
			st := rec.Status()
			return metrics.ReconcilerStats{Runs: st.Reconciles, Failed: st.FailedReconciles, Errors: st.ErrorsTotal,
				TotalDuration: st.TotalDuration, Last: st.LastReconcile}
		}
		src.Endpoints = func() []metrics.EndpointCount {
			var snap endpoints.Snapshot
			if d.watcher != nil {
				snap = d.watcher.Snapshot()
			}
			return endpointCounts(rec.Status(), snap)
		}
	}
	if pm := d.pm; pm != nil {
		src.PathManager = func() metrics.PathManagerStats { return pmStats(pm) }
	}
	if len(d.running) > 0 {
		src.Proxies = func() []metrics.ProxyStats { return proxyStats(d.running) }
	}
	return src
}

// endpointCounts counts the owned and foreign endpoints of st by the
// current name of their interface (the recorded one when it is gone).
func endpointCounts(st endpoints.Status, snap endpoints.Snapshot) []metrics.EndpointCount {
	name := func(ifindex int, recorded string) string {
		if l, ok := snap.LinkByIndex(ifindex); ok && ifindex != 0 {
			return l.Name
		}
		return recorded
	}
	by := map[string]*metrics.EndpointCount{}
	get := func(iface string) *metrics.EndpointCount {
		c := by[iface]
		if c == nil {
			c = &metrics.EndpointCount{Iface: iface}
			by[iface] = c
		}
		return c
	}
	for _, o := range st.Owned {
		get(name(o.Ifindex, o.Iface)).Owned++
	}
	for _, f := range st.Report.Foreign {
		get(name(f.Endpoint.Ifindex, "")).Foreign++
	}
	out := make([]metrics.EndpointCount, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b metrics.EndpointCount) int { return cmp.Compare(a.Iface, b.Iface) })
	return out
}

// pmStats reads the userspace path manager's counters and state.
func pmStats(pm *pathmgr.Manager) metrics.PathManagerStats {
	c, _ := pm.Counts()
	tr := pm.Tracked()
	s := metrics.PathManagerStats{
		Connections: tr.Connections, Subflows: map[string]int{}, Untracked: tr.Untracked,
		Events: map[string]uint64{}, EventsLost: c.EventsLost, EventErrors: c.EventErrors,
		Resyncs: c.Rebuilds, ResyncFailures: c.RebuildFailures,
		Actions: actionMap(c.Actions), ActionFailures: actionMap(c.Failures),
	}
	for state, n := range tr.Subflows {
		s.Subflows[state.String()] = n
	}
	for _, e := range pm.EventCounts() {
		s.Events[e.Type.String()] = e.N
	}
	return s
}

// actionMap keys action counts by the action label's values.
func actionMap(a pathmgr.ActionCounts) map[string]uint64 {
	return map[string]uint64{
		"create_subflow": a.CreateSubflow, "destroy_subflow": a.DestroySubflow, "announce": a.Announce,
		"remove": a.Remove, "set_backup": a.SetBackup,
	}
}

// proxyStats reads the proxies' counters.
func proxyStats(ps []runningProxy) []metrics.ProxyStats {
	out := make([]metrics.ProxyStats, 0, len(ps))
	for _, p := range ps {
		st := p.Stats()
		m := metrics.ProxyStats{Role: p.role, Listen: p.listen, Active: st.Active, Accepted: st.Accepted, Refused: st.Refused,
			BytesIn: st.BytesIn, BytesOut: st.BytesOut}
		for _, pa := range st.Paths {
			m.Paths = append(m.Paths, metrics.ProxyPath{Local: ipLabel(pa.Local), Remote: ipLabel(pa.Remote),
				Subflows: pa.Subflows, BytesSent: pa.BytesSent, BytesReceived: pa.BytesReceived})
		}
		out = append(out, m)
	}
	return out
}

// ipLabel is an address as a label value; "" when unknown.
func ipLabel(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
