// Package policy parses and validates mptcpd-go's policy files and answers,
// as pure functions, which policy applies to an interface or an address.
//
// It is the "policy" half of the daemon, kept apart from the mechanism:
// data flows one way, policy → desired state → diff → genl calls, and this
// package imports nothing of the daemon. It never touches the kernel.
//
// # Files
//
// The main file, DefaultPath unless --config says otherwise:
//
//	mode = "kernel"                 # or "userspace", "auto"
//	policy_dir = "interfaces.d"     # relative to this file's directory
//	control_socket = "/run/mptcpd-go/control.sock"
//	state_file = "/run/mptcpd-go/state.json"   # default: next to the socket
//	log_level = "info"              # debug, info, warn, error
//	log_format = "console"          # console, json
//	on_stop = "remove"              # or "keep": owned endpoints on stop
//	metrics_listen = "9464"         # Prometheus /metrics; off if absent
//	[limits]
//	subflows = 4                    # 0..8, or "auto" (the default)
//	add_addr_accepted = "auto"
//
// metrics_listen serves Prometheus metrics on http://ADDRESS:PORT/metrics:
// a bare port ("9464" or ":9464") listens on 127.0.0.1 only; write an
// address ("[::1]:9464", "0.0.0.0:9464") to listen elsewhere. Changes take
// effect at the next restart.
//
// With mode "userspace" or "auto" (errors in kernel mode, where they would
// do nothing), the userspace path manager's keys:
//
//	preset = "throughput"           # backup, cost, sspi
//	max_subflows = 4                # extra subflows per connection, 1..8
//	[[rule]]                        # the first matching rule applies
//	dst = ["192.0.2.0/24"]          # peer prefixes; any if absent
//	ports = [443, "8000-8999"]      # service ports; any if absent
//	side = "client"                 # or "server", "any" (the default)
//	action = "never"                # or "multipath"; required
//	max_subflows = 1                # overrides the main one
//
// In any mode, [[proxy]] tables declare userspace data-path proxies
// (mptcpd-go proxy) for the daemon to run, for peers or kernels without
// MPTCP:
//
//	[[proxy]]
//	role = "server"                 # or "client"; required
//	listen = ":7000"                # required; ADDRESS:PORT, address optional
//	psk_file = "/etc/mptcpd-go/proxy.psk"   # optional pre-shared key
//	to = "127.0.0.1:80"             # server: where connections go
//	announce = ["198.51.100.7"]     # server: more addresses to join ("ADDR[:PORT]")
//	allow = ["10.0.0.0/8"]          # server: destinations transparent clients may ask for
//	server = "203.0.113.7:7000"     # client: the proxy server, required
//	via = ["eth0", "192.0.2.10"]    # client: paths (interfaces or local addresses)
//	backup = ["wwan0"]              # client: backup paths
//	transparent = false             # client: take nftables-redirected connections
//
// A client with neither via nor backup takes its paths from the interface
// files: one per interface whose policy gives it an endpoint.
//
// Interface files, policy_dir/*.toml, are read in lexical order and the
// first whose [match] fits an interface applies to it (systemd-networkd's
// convention):
//
//	[match]
//	name = ["wlan*", "eth1"]        # shell globs (path.Match), required
//	kind = ["device", "veth"]       # link kinds; any if absent
//	family = "ipv4"                 # or "ipv6", or both in a list (default)
//	[endpoint]
//	flags = ["subflow", "backup"]   # signal, subflow, backup, fullmesh, laminar
//	port = 8080                     # only with signal
//	also_without_default_route = false
//	skip = ["link-local", "ula", "temporary", "deprecated", "tentative"]
//	priority = 0                    # higher wins the kernel's 8 endpoints
//	metered = false                 # the cost preset makes it backup only
//
// A file with ignore = true at the top and no [endpoint] gives the
// interfaces it matches no endpoints. Wherever a list is expected, a single
// string is taken as a list of one.
//
// Parsing is strict: unknown keys, wrong types and values the kernel would
// refuse are errors, each with file:line:col and a plain message that says
// what to do, and all of them are reported at once (see Errors).
//
// # Defaults
//
// When Load is given no path and DefaultPath does not exist, a built-in
// main file applies (all defaults, limits "auto"), and if policy_dir holds
// no interface files either, a built-in interface file gives every
// non-loopback interface with a default route "subflow" endpoints for its
// global addresses. Both are TOML files embedded in the package and parsed
// by the same code. A main file that exists, or an explicit path, turns the
// built-in defaults off: then no interface files means no endpoints.
package policy
