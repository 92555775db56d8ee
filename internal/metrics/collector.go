// Package metrics serves mptcpd-go's Prometheus metrics: a Collector that
// reads snapshots of the daemon's parts at scrape time, the kernel's
// MPTcpExt counters from /proc/net/netstat, and an HTTP Server for
// /metrics. It uses a registry of its own, never the global default one.
//
// Every metric is named mptcpd_*; see the descriptions in NewCollector for
// the list. A part the daemon does not run (the reconciler in userspace
// mode, the path manager in kernel mode, proxies) has a nil source and its
// metrics are left out.
package metrics

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MPTCPExtSection is the section of /proc/net/netstat with the kernel's
// MPTCP counters.
const MPTCPExtSection = "MPTcpExt"

// Event sources, the values of mptcpd_events_total's source label.
const (
	// SourceMPTCP is the kernel's mptcp_pm generic netlink events, which
	// only the userspace path manager subscribes to.
	SourceMPTCP = "mptcp"
	// SourceRtnetlink is the link, address and route notifications the
	// interface watcher follows in every mode.
	SourceRtnetlink = "rtnetlink"
)

// Sources are what a Collector reads at each scrape. A nil func leaves
// its metrics out.
type Sources struct {
	// Mode is the path manager mode, for mptcpd_info.
	Mode string
	// Endpoints counts the in-kernel path manager's endpoints by
	// interface (kernel mode).
	Endpoints func() []EndpointCount
	// Reconciler is the endpoint reconciler's totals (kernel mode).
	Reconciler func() ReconcilerStats
	// Watcher is the interface watcher's totals.
	Watcher func() WatcherStats
	// PathManager is the userspace path manager's state and totals.
	PathManager func() PathManagerStats
	// Proxies are the [[proxy]] tables' proxies.
	Proxies func() []ProxyStats
	// Netstat returns the contents of /proc/net/netstat of the daemon's
	// network namespace.
	Netstat func() ([]byte, error)
}

// EndpointCount counts the endpoints of one interface; Iface is "" for
// endpoints bound to no interface.
type EndpointCount struct {
	Iface          string
	Owned, Foreign int
}

// ReconcilerStats are the endpoint reconciler's totals since the start.
type ReconcilerStats struct {
	// Runs counts reconciles, Failed those with errors, Errors the
	// failed kernel calls.
	Runs, Failed, Errors uint64
	// TotalDuration is the time all runs took.
	TotalDuration time.Duration
	// Last is when the last run started; zero before the first.
	Last time.Time
}

// WatcherStats are the interface watcher's totals.
type WatcherStats struct {
	// Link, Addr and Route count rtnetlink notifications.
	Link, Addr, Route uint64
	// Resubscribes counts lost subscriptions made again.
	Resubscribes uint64
}

// PathManagerStats are the userspace path manager's state and totals.
type PathManagerStats struct {
	// Connections are the tracked connections; Subflows their subflows
	// by state ("up", "pending", ...).
	Connections int
	Subflows    map[string]int
	// Untracked counts connections left alone because of the bound.
	Untracked uint64
	// Events counts the mptcp_pm events handled by type ("CREATED",
	// ...); EventsLost the receive buffer overflows (ENOBUFS), EventErrors
	// the events that could not be decoded.
	Events                  map[string]uint64
	EventsLost, EventErrors uint64
	// Resyncs counts rebuilds of the connection state from sock_diag (at
	// the start and after lost events), ResyncFailures the failed ones.
	Resyncs, ResyncFailures uint64
	// Actions and ActionFailures count the kernel calls made and refused
	// by kind ("create_subflow", ...).
	Actions, ActionFailures map[string]uint64
}

// ProxyStats are one proxy's totals; Role and Listen identify it.
type ProxyStats struct {
	Role, Listen      string
	Active            int
	Accepted, Refused uint64
	BytesIn, BytesOut uint64
	Paths             []ProxyPath
}

// ProxyPath counts the data-path subflows between two addresses.
type ProxyPath struct {
	Local, Remote            string
	Subflows                 uint64
	BytesSent, BytesReceived uint64
}

// Collector is a prometheus.Collector of the daemon's metrics, read from
// its Sources at each scrape.
type Collector struct {
	src Sources

	info                                      *prometheus.Desc
	endpoints                                 *prometheus.Desc
	reconciles, reconcileFailed, reconcileErr *prometheus.Desc
	reconcileDuration, reconcileLast          *prometheus.Desc
	events, eventsLost, eventErrors           *prometheus.Desc
	pmResyncs, pmResyncFailures               *prometheus.Desc
	pmConns, pmSubflows, pmUntracked          *prometheus.Desc
	pmActions, pmActionFailures               *prometheus.Desc
	proxyActive, proxyAccepted, proxyRefused  *prometheus.Desc
	proxyBytes, proxyPathSubflows             *prometheus.Desc
	proxyPathBytes                            *prometheus.Desc
	mptcpExt, mptcpExtGauge                   *prometheus.Desc
}

// mptcpExtGauge reports the MPTcpExt fields that are levels, not counts:
// they go down too, so they are exported as gauges.
func mptcpExtGauge(name string) bool { return name == "MPCurrEstab" }

// NewCollector returns a Collector of src.
func NewCollector(src Sources) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mptcpd_"+name, help, labels, nil)
	}
	proxy := []string{"role", "listen"}
	path := []string{"role", "listen", "local", "remote"}
	return &Collector{
		src:  src,
		info: d("info", "Always 1; mode is the path manager the daemon drives (kernel or userspace).", "mode"),
		endpoints: d("endpoints", "In-kernel path manager endpoints by interface (iface is empty when bound to none); "+
			"owner is mptcpd for those the daemon added, foreign for those someone else did. Kernel mode only.", "iface", "owner"),
		reconciles:      d("reconciles_total", "Endpoint reconciles run. Kernel mode only."),
		reconcileFailed: d("reconcile_failures_total", "Endpoint reconciles that had at least one error. Kernel mode only."),
		reconcileErr:    d("reconcile_errors_total", "Kernel calls that failed during endpoint reconciles. Kernel mode only."),
		reconcileDuration: d("reconcile_duration_seconds", "Time the endpoint reconciles took (count and sum, no quantiles). "+
			"Kernel mode only."),
		reconcileLast: d("reconcile_last_timestamp_seconds", "When the last endpoint reconcile started, in Unix seconds. Kernel mode only."),
		events: d("events_total", "Events received by source and type: source mptcp is the kernel's MPTCP path manager events "+
			"(userspace mode only: in kernel mode the daemon does not subscribe to them), source rtnetlink the link, addr and "+
			"route notifications the interface watcher follows (initial listings included).", "source", "type"),
		eventsLost: d("events_lost_total", "Times events were lost: for mptcp a receive buffer overflow (ENOBUFS), "+
			"each followed by a resync; for rtnetlink a lost subscription, made again with a full re-list.", "source"),
		eventErrors: d("event_errors_total", "MPTCP path manager events that could not be decoded and were skipped.", "source"),
		pmResyncs: d("pm_resyncs_total", "Rebuilds of the userspace path manager's connection state from sock_diag: "+
			"one at the start, then one after each loss of events."),
		pmResyncFailures: d("pm_resync_failures_total", "Rebuilds of the userspace path manager's state that failed."),
		pmConns:          d("pm_connections", "MPTCP connections the userspace path manager tracks."),
		pmSubflows:       d("pm_subflows", "Subflows of the tracked connections by state (pending, up, failed, closing, abandoned).", "state"),
		pmUntracked:      d("pm_untracked_connections_total", "Connections the userspace path manager left alone because it tracked too many."),
		pmActions: d("pm_actions_total", "Calls the userspace path manager made to the kernel by action "+
			"(create_subflow, destroy_subflow, announce, remove, set_backup).", "action"),
		pmActionFailures: d("pm_action_failures_total", "Calls of the userspace path manager the kernel refused, by action; "+
			`action="create_subflow" counts the subflows that could not be created.`, "action"),
		proxyActive:   d("proxy_connections", "Connections a [[proxy]] relays now.", proxy...),
		proxyAccepted: d("proxy_accepted_total", "Connections a [[proxy]] took in.", proxy...),
		proxyRefused:  d("proxy_refused_total", "Connections a [[proxy]] dropped before relaying any byte.", proxy...),
		proxyBytes: d("proxy_bytes_total", "Bytes a [[proxy]] relayed: direction in is from the plain TCP side into the data path, "+
			"out the other way.", append(proxy, "direction")...),
		proxyPathSubflows: d("proxy_path_subflows_total", "Data-path subflows a [[proxy]] opened or accepted between two addresses.", path...),
		proxyPathBytes: d("proxy_path_bytes_total", "Data-path payload bytes between two addresses, by direction (sent, received), "+
			"retransmissions included.", append(path, "direction")...),
		mptcpExt: d("kernel_mptcpext_total", "The kernel's MPTCP counters: each field of the MPTcpExt lines of /proc/net/netstat "+
			"in the daemon's network namespace, by name (e.g. MPCapableFallbackACK, which grows when a middlebox strips MPTCP options); "+
			"the fields that are levels are in mptcpd_kernel_mptcpext_current.", "counter"),
		mptcpExtGauge: d("kernel_mptcpext_current", "The MPTcpExt fields of /proc/net/netstat that are levels rather than counts "+
			"(MPCurrEstab: MPTCP connections established now).", "counter"),
	}
}

// descs lists every Desc, for Describe.
func (c *Collector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{c.info, c.endpoints, c.reconciles, c.reconcileFailed, c.reconcileErr, c.reconcileDuration,
		c.reconcileLast, c.events, c.eventsLost, c.eventErrors, c.pmResyncs, c.pmResyncFailures, c.pmConns, c.pmSubflows,
		c.pmUntracked, c.pmActions, c.pmActionFailures, c.proxyActive, c.proxyAccepted, c.proxyRefused, c.proxyBytes,
		c.proxyPathSubflows, c.proxyPathBytes, c.mptcpExt, c.mptcpExtGauge}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads every source once.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.info, 1, c.src.Mode)
	if f := c.src.Endpoints; f != nil {
		for _, e := range f() {
			gauge(c.endpoints, float64(e.Owned), e.Iface, "mptcpd")
			gauge(c.endpoints, float64(e.Foreign), e.Iface, "foreign")
		}
	}
	if f := c.src.Reconciler; f != nil {
		r := f()
		counter(c.reconciles, r.Runs)
		counter(c.reconcileFailed, r.Failed)
		counter(c.reconcileErr, r.Errors)
		ch <- prometheus.MustNewConstSummary(c.reconcileDuration, r.Runs, r.TotalDuration.Seconds(), nil)
		if !r.Last.IsZero() {
			gauge(c.reconcileLast, float64(r.Last.UnixNano())/1e9)
		}
	}
	if f := c.src.Watcher; f != nil {
		w := f()
		counter(c.events, w.Link, SourceRtnetlink, "link")
		counter(c.events, w.Addr, SourceRtnetlink, "addr")
		counter(c.events, w.Route, SourceRtnetlink, "route")
		counter(c.eventsLost, w.Resubscribes, SourceRtnetlink)
	}
	if f := c.src.PathManager; f != nil {
		p := f()
		for _, k := range sortedKeys(p.Events) {
			counter(c.events, p.Events[k], SourceMPTCP, k)
		}
		counter(c.eventsLost, p.EventsLost, SourceMPTCP)
		counter(c.eventErrors, p.EventErrors, SourceMPTCP)
		counter(c.pmResyncs, p.Resyncs)
		counter(c.pmResyncFailures, p.ResyncFailures)
		gauge(c.pmConns, float64(p.Connections))
		for _, k := range sortedKeys(p.Subflows) {
			gauge(c.pmSubflows, float64(p.Subflows[k]), k)
		}
		counter(c.pmUntracked, p.Untracked)
		for _, k := range sortedKeys(p.Actions) {
			counter(c.pmActions, p.Actions[k], k)
		}
		for _, k := range sortedKeys(p.ActionFailures) {
			counter(c.pmActionFailures, p.ActionFailures[k], k)
		}
	}
	if f := c.src.Proxies; f != nil {
		for _, p := range f() {
			gauge(c.proxyActive, float64(p.Active), p.Role, p.Listen)
			counter(c.proxyAccepted, p.Accepted, p.Role, p.Listen)
			counter(c.proxyRefused, p.Refused, p.Role, p.Listen)
			counter(c.proxyBytes, p.BytesIn, p.Role, p.Listen, "in")
			counter(c.proxyBytes, p.BytesOut, p.Role, p.Listen, "out")
			for _, pa := range p.Paths {
				counter(c.proxyPathSubflows, pa.Subflows, p.Role, p.Listen, pa.Local, pa.Remote)
				counter(c.proxyPathBytes, pa.BytesSent, p.Role, p.Listen, pa.Local, pa.Remote, "sent")
				counter(c.proxyPathBytes, pa.BytesReceived, p.Role, p.Listen, pa.Local, pa.Remote, "received")
			}
		}
	}
	if f := c.src.Netstat; f != nil {
		c.collectNetstat(ch, f)
	}
}

// collectNetstat exports the MPTcpExt counters; a kernel without MPTCP
// has none, which is not an error. A file that cannot be read or parsed
// is reported to the scrape as an invalid metric, so the rest is still
// served (with promhttp.ContinueOnError) and the error logged.
func (c *Collector) collectNetstat(ch chan<- prometheus.Metric, read func() ([]byte, error)) {
	data, err := read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.mptcpExt, fmt.Errorf("read the kernel's MPTCP counters: %w", err))
		return
	}
	secs, err := ParseNetstat(data)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.mptcpExt, fmt.Errorf("parse the kernel's MPTCP counters: %w; please report this with the file's contents", err))
		return
	}
	sec, ok := Section(secs, MPTCPExtSection)
	if !ok {
		return
	}
	for _, f := range sec.Fields {
		if mptcpExtGauge(f.Name) {
			ch <- prometheus.MustNewConstMetric(c.mptcpExtGauge, prometheus.GaugeValue, float64(f.Value), f.Name)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.mptcpExt, prometheus.CounterValue, float64(f.Value), f.Name)
	}
}

// sortedKeys returns m's keys in order, so scrapes list series stably.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
