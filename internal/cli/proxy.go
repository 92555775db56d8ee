package cli

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mptcpd-go/mptcpd-go/datapath"
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/internal/daemon"
	"github.com/mptcpd-go/mptcpd-go/policy"
	"github.com/mptcpd-go/mptcpd-go/proxy"
)

// proxyUsage is the grammar of the proxy commands, from their help
// definitions.
func proxyUsage() string {
	d, _ := findDoc("proxy")
	var b strings.Builder
	for _, syn := range synopses(d) {
		b.WriteString(wrapSynopsis("       ", syn, 80))
	}
	b.WriteString(`The server needs --to, or --allow when it serves transparent clients only.
Both run until SIGINT or SIGTERM and log to stderr. See docs/proxy.md.
`)
	return b.String()
}

// proxyCmd is `mptcpd-go proxy server|client`.
func (s *session) proxyCmd(args []string) error {
	if len(args) == 0 {
		return proxyUsageError("proxy needs a subcommand: server or client")
	}
	if err := s.noNetns("proxy"); err != nil {
		return err
	}
	var run func(context.Context, *zap.Logger) error
	switch {
	case matches(args[0], "server"):
		cfg, err := parseProxyServer(args[1:])
		if err != nil {
			return err
		}
		run = func(ctx context.Context, log *zap.Logger) error {
			cfg.Logger = log
			srv, err := proxy.NewServer(cfg)
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		}
	case matches(args[0], "client"):
		cfg, err := parseProxyClient(args[1:], localSnapshot)
		if err != nil {
			return err
		}
		run = func(ctx context.Context, log *zap.Logger) error {
			cfg.Logger = log
			c, err := proxy.NewClient(cfg)
			if err != nil {
				return err
			}
			return c.Run(ctx)
		}
	default:
		return proxyUsageError(fmt.Sprintf("unknown proxy subcommand %q; try \"server\" or \"client\"", args[0]))
	}
	s.stdout.Flush()
	ctx, cancel := s.stopContext()
	defer cancel()
	log := proxyLogger(s.env.Stderr)
	defer func() { _ = log.Sync() }()
	if err := run(ctx, log); err != nil {
		return failure(exitFailure, err)
	}
	return nil
}

// proxyLogger logs to w in the daemon's console format.
func proxyLogger(w interface{ Write([]byte) (int, error) }) *zap.Logger {
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(ecfg), zapcore.AddSync(w), zapcore.InfoLevel))
}

func proxyUsageError(msg string) error {
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: %s.\nUsage:\n%s", msg, proxyUsage())}
}

// parseProxyFlags is parseFlags with the proxy grammar in the message.
func parseProxyFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return proxyUsageError(fmt.Sprintf("%s: %v", fs.Name(), err))
	}
	if fs.NArg() > 0 {
		return proxyUsageError(fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0)))
	}
	return nil
}

// repeated is a flag that may be given several times.
func repeated(fs *flag.FlagSet, name, usage string) *[]string {
	var v []string
	fs.Func(name, usage, func(s string) error {
		v = append(v, s)
		return nil
	})
	return &v
}

// parseProxyServer parses `proxy server` flags and reads the key file.
func parseProxyServer(args []string) (proxy.ServerConfig, error) {
	fs := newFlagSet("proxy server")
	listen := fs.String("listen", "", "data-path listen address, e.g. :7000")
	to := fs.String("to", "", "HOST:PORT to relay non-transparent clients to")
	announce := repeated(fs, "announce", "extra address to listen on and announce: ADDR or ADDR:PORT")
	allow := repeated(fs, "allow", "prefix transparent clients may connect to")
	pskFile := fs.String("psk-file", "", "file holding the pre-shared key")
	if err := parseProxyFlags(fs, args); err != nil {
		return proxy.ServerConfig{}, err
	}
	var cfg proxy.ServerConfig
	switch {
	case *listen == "":
		return cfg, proxyUsageError("proxy server needs --listen ADDR, e.g. --listen :7000")
	case *to == "" && len(*allow) == 0:
		return cfg, proxyUsageError("proxy server needs --to HOST:PORT, or --allow PREFIX to serve transparent clients only")
	}
	cfg = proxy.ServerConfig{Listen: *listen, To: *to, Announce: *announce}
	for _, a := range *allow {
		p, err := parseAllow(a)
		if err != nil {
			return proxy.ServerConfig{}, err
		}
		cfg.Allow = append(cfg.Allow, p)
	}
	if *pskFile != "" {
		psk, err := proxy.ReadPSKFile(*pskFile)
		if err != nil {
			return proxy.ServerConfig{}, failure(exitFailure, err)
		}
		cfg.PSK = psk
	}
	// NewServer's checks, now, so that a bad address is a usage error.
	if _, err := proxy.NewServer(cfg); err != nil {
		return proxy.ServerConfig{}, proxyUsageError(err.Error())
	}
	return cfg, nil
}

// parseAllow takes a prefix, or a single address as a host prefix.
func parseAllow(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, proxyUsageError(fmt.Sprintf("--allow %q is not a prefix (e.g. 192.0.2.0/24) or an address", s))
}

// localSnapshot lists this namespace's links and addresses.
func localSnapshot() (endpoints.Snapshot, error) {
	wt, err := endpoints.NewWatcher(endpoints.WatcherConfig{})
	if err != nil {
		return endpoints.Snapshot{}, fmt.Errorf("listing links and addresses: %w", err)
	}
	defer wt.Close()
	return wt.Snapshot(), nil
}

// parseProxyClient parses `proxy client` flags, reads the key file and,
// with --config, takes paths from the policy for the links and addresses
// snapshot lists.
func parseProxyClient(args []string, snapshot func() (endpoints.Snapshot, error)) (proxy.ClientConfig, error) {
	fs := newFlagSet("proxy client")
	listen := fs.String("listen", "", "local address applications connect to, e.g. 127.0.0.1:1080")
	server := fs.String("server", "", "proxy server's data-path address HOST:PORT")
	via := repeated(fs, "via", "interface or local address of an active path")
	backup := repeated(fs, "backup", "interface or local address of a backup path")
	config := fs.String("config", "", "main policy file whose interface files give the paths")
	pskFile := fs.String("psk-file", "", "file holding the pre-shared key")
	transparent := fs.Bool("transparent", false, "take nftables-redirected connections and send their original destination")
	if err := parseProxyFlags(fs, args); err != nil {
		return proxy.ClientConfig{}, err
	}
	switch {
	case *listen == "":
		return proxy.ClientConfig{}, proxyUsageError("proxy client needs --listen ADDR, e.g. --listen 127.0.0.1:1080")
	case *server == "":
		return proxy.ClientConfig{}, proxyUsageError("proxy client needs --server HOST:PORT, the proxy server's --listen address")
	}
	cfg := proxy.ClientConfig{Listen: *listen, Server: *server, Transparent: *transparent}
	var lists [][]datapath.Path
	for i, vals := range [][]string{*via, *backup} {
		var ps []datapath.Path
		for _, v := range vals {
			p, err := proxy.ParsePath(v, i == 1)
			if err != nil {
				return proxy.ClientConfig{}, proxyUsageError(err.Error())
			}
			ps = append(ps, p)
		}
		lists = append(lists, ps)
	}
	if *config != "" {
		pol, err := policy.Load(*config)
		if err != nil {
			return proxy.ClientConfig{}, policyFailure(fmt.Errorf("loading the policy for --config: %w", err))
		}
		snap, err := snapshot()
		if err != nil {
			return proxy.ClientConfig{}, failure(exitFailure, err)
		}
		fromPolicy := daemon.ProxyPaths(pol, snap)
		if len(fromPolicy) == 0 {
			return proxy.ClientConfig{}, failure(exitFailure, fmt.Errorf("the policy in %s gives no interface subflow or signal endpoints, so it gives no paths: check it with \"mptcpd-go policy check --config %s\"", *config, *config))
		}
		// The command line wins over the policy for the same interface.
		lists = append(lists, fromPolicy)
	}
	cfg.Paths = mergePaths(lists...)
	if *pskFile != "" {
		psk, err := proxy.ReadPSKFile(*pskFile)
		if err != nil {
			return proxy.ClientConfig{}, failure(exitFailure, err)
		}
		cfg.PSK = psk
	}
	if _, err := proxy.NewClient(cfg); err != nil {
		return proxy.ClientConfig{}, proxyUsageError(err.Error())
	}
	return cfg, nil
}

// mergePaths concatenates path lists, dropping repeats of an interface or
// address (the first mention wins), and puts active paths before backup
// ones: the first path carries the initial subflow, which cannot be a
// backup.
func mergePaths(lists ...[]datapath.Path) []datapath.Path {
	var out []datapath.Path
	for _, l := range lists {
		for _, p := range l {
			if !slices.ContainsFunc(out, func(q datapath.Path) bool {
				return q.Device == p.Device && q.LocalAddr == p.LocalAddr
			}) {
				out = append(out, p)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b datapath.Path) int {
		switch {
		case a.Backup == b.Backup:
			return 0
		case b.Backup:
			return -1
		}
		return 1
	})
	return out
}
