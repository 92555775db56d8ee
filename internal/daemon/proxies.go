package daemon

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/mptcpd-go/mptcpd-go/datapath"
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/metrics"
	"github.com/mptcpd-go/mptcpd-go/policy"
	"github.com/mptcpd-go/mptcpd-go/proxy"
)

// runner is a long-running part: a proxy.
type runner interface {
	Run(ctx context.Context) error
	// Stats are its counters, for metrics.
	Stats() proxy.Stats
}

// runningProxy is a [[proxy]] table's proxy, with what identifies it in
// metrics.
type runningProxy struct {
	runner
	role, listen string
}

// ProxyPaths are the paths of a proxy client that names none: one per
// interface to whose addresses the policy gives a subflow or signal
// endpoint now, bound to the interface, backup when the policy says backup
// or metered. Active paths come first: the first carries the initial
// subflow.
func ProxyPaths(cfg *policy.Config, snap endpoints.Snapshot) []datapath.Path {
	plans, _, _ := Decide(cfg, snap)
	var active, backup []datapath.Path
	for _, p := range plans {
		if p.Policy == nil || p.Policy.Flags&(genl.FlagSubflow|genl.FlagSignal) == 0 ||
			!slices.ContainsFunc(p.Addrs, func(a AddrPlan) bool { return a.Wanted }) {
			continue
		}
		path := datapath.Path{Device: p.Link.Name, Backup: p.Policy.Flags&genl.FlagBackup != 0 || p.Policy.Metered}
		if path.Backup {
			backup = append(backup, path)
		} else {
			active = append(active, path)
		}
	}
	return append(active, backup...)
}

// buildProxies makes the proxies of the [[proxy]] tables; clients without
// via or backup take their paths from the interfaces in snap.
func buildProxies(cfg *policy.Config, snap endpoints.Snapshot, log *zap.Logger) ([]runningProxy, error) {
	var out []runningProxy
	for _, p := range cfg.Proxies {
		at := fmt.Sprintf("%s:%d", p.File, p.Line)
		plog := log.Named("proxy").With(zap.String("role", string(p.Role)), zap.String("listen", p.Listen))
		var psk []byte
		if p.PSKFile != "" {
			var err error
			if psk, err = proxy.ReadPSKFile(p.PSKFile); err != nil {
				return nil, fmt.Errorf("[[proxy]] at %s: %w", at, err)
			}
		}
		var r runner
		var err error
		switch p.Role {
		case policy.ProxyServer:
			r, err = proxy.NewServer(proxy.ServerConfig{Listen: p.Listen, To: p.To, Announce: p.Announce,
				PSK: psk, Allow: p.Allow, Logger: plog})
		default:
			var paths []datapath.Path
			for _, l := range []struct {
				names  []string
				backup bool
			}{{p.Via, false}, {p.Backup, true}} {
				for _, name := range l.names {
					path, perr := proxy.ParsePath(name, l.backup)
					if perr != nil {
						return nil, fmt.Errorf("[[proxy]] at %s: %w", at, perr)
					}
					paths = append(paths, path)
				}
			}
			if len(paths) == 0 {
				paths = ProxyPaths(cfg, snap)
				if len(paths) == 0 {
					plog.Warn("no interface has an address the interface files give an endpoint; the proxy uses the default route only")
				}
				plog.Info("paths from the interface files", zap.Int("paths", len(paths)))
			}
			r, err = proxy.NewClient(proxy.ClientConfig{Listen: p.Listen, Server: p.Server, Paths: paths,
				PSK: psk, Transparent: p.Transparent, Logger: plog})
		}
		if err != nil {
			return nil, fmt.Errorf("[[proxy]] at %s: %w", at, err)
		}
		out = append(out, runningProxy{runner: r, role: string(p.Role), listen: p.Listen})
	}
	return out, nil
}

// proxiesEqual reports whether two policies declare the same proxies.
func proxiesEqual(a, b []policy.Proxy) bool {
	return slices.EqualFunc(a, b, func(x, y policy.Proxy) bool {
		x.File, x.Line, y.File, y.Line = "", 0, "", 0
		return reflect.DeepEqual(x, y)
	})
}

// runProxiesOnly is the daemon on a kernel without MPTCP (why says so):
// it runs the [[proxy]] tables' proxies until ctx ends or a stop signal.
// There is nothing to reconcile and no control socket.
func (d *daemon) runProxiesOnly(ctx context.Context, why error, sigs <-chan os.Signal) error {
	d.log.Warn("no MPTCP in this kernel: the daemon runs only the [[proxy]] tables' userspace proxies", zap.Error(why))
	w, err := endpoints.NewWatcher(endpoints.WatcherConfig{Logger: d.log})
	if err != nil {
		return err
	}
	snap := w.Snapshot()
	_ = w.Close()
	proxies, err := buildProxies(d.cfg, snap, d.log)
	if err != nil {
		return err
	}
	d.running = proxies
	var msrv *metrics.Server
	if addr := d.cfg.MetricsListen; addr != "" {
		if msrv, err = d.listenMetrics(addr); err != nil {
			return err
		}
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	notify(d.log, sddaemon.SdNotifyReady, "STATUS="+d.statusLine())
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range proxies {
		g.Go(func() error { return p.Run(gctx) })
	}
	if msrv != nil {
		g.Go(func() error { return msrv.Run(gctx) })
	}
	g.Go(func() error { return d.watchdog(gctx, 0) })
	if sigs != nil {
		g.Go(func() error { return d.signals(gctx, stop, sigs) })
	}
	err = g.Wait()
	notify(d.log, sddaemon.SdNotifyStopping)
	d.log.Info("stopping")
	return err
}
