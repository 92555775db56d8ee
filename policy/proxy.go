package policy

import (
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file holds the main file's [[proxy]] tables: userspace data-path
// proxies (mptcpd-go proxy) that the daemon runs, for peers or kernels
// without MPTCP. Like the rules, they are plain types here; the daemon
// turns them into the proxy package's configuration.

// ProxyRole is which end of the data path a proxy is.
type ProxyRole string

// The values of a proxy's role key.
const (
	// ProxyClient takes applications' TCP connections and carries them
	// over several paths to a proxy server.
	ProxyClient ProxyRole = "client"
	// ProxyServer accepts data-path connections and forwards each to a
	// TCP destination.
	ProxyServer ProxyRole = "server"
)

// Proxy is one [[proxy]] table.
type Proxy struct {
	// File and Line are where the table starts, for messages.
	File string
	Line int
	// Role is the end of the data path this proxy is.
	Role ProxyRole
	// Listen is the address applications (client) or proxy clients
	// (server) connect to, HOST:PORT with HOST an IP address or empty.
	Listen string
	// PSKFile, if set, holds the pre-shared key both ends must share.
	PSKFile string

	// To is the server's TCP destination for ordinary clients.
	To string
	// Announce are more server addresses ("ADDR" or "ADDR:PORT") that
	// clients may join and are told about.
	Announce []string
	// Allow are the destinations transparent clients may ask the server
	// for.
	Allow []netip.Prefix

	// Server is the proxy server's address, for clients.
	Server string
	// Via and Backup are the client's paths: interface names or local
	// addresses. With neither, the client takes its paths from the
	// interface files.
	Via, Backup []string
	// Transparent makes a client take connections redirected to it by
	// nftables and carry their original destination to the server.
	Transparent bool
}

// rawProxy is one [[proxy]] table as written.
type rawProxy struct {
	at                             pos
	role, listen, pskFile, to, srv *strVal
	announce, allow, via, backup   *listVal
	transparent                    *boolVal
	roleOnly                       map[string]pos // keys set, for the role check
}

// proxies decodes the [[proxy]] tables.
func (d *decoder) proxies(e *entry) []rawProxy {
	if e.val.kind != unstable.ArrayTable {
		d.errorf(e.val.pos, "proxy: want [[proxy]] tables, each on lines of its own, not %s", typeName(e.val))
		return nil
	}
	var out []rawProxy
	for _, el := range e.val.elems {
		r := rawProxy{at: el.pos, roleOnly: map[string]pos{}}
		str := func(key string, dst **strVal) field {
			return field{key, func(e *entry) { *dst = d.str(e); r.roleOnly[key] = e.pos }}
		}
		list := func(key, want string, dst **listVal) field {
			return field{key, func(e *entry) { *dst = d.list(e, want); r.roleOnly[key] = e.pos }}
		}
		d.fields(el.table, "[[proxy]]", nil,
			str("role", &r.role),
			str("listen", &r.listen),
			str("psk_file", &r.pskFile),
			str("to", &r.to),
			str("server", &r.srv),
			list("announce", `addresses, like ["198.51.100.7", "[2001:db8::7]:7001"]`, &r.announce),
			list("allow", `prefixes, like ["10.0.0.0/8"]`, &r.allow),
			list("via", `interfaces or local addresses, like ["eth0", "wlan0"]`, &r.via),
			list("backup", `interfaces or local addresses, like ["wwan0"]`, &r.backup),
			field{"transparent", func(e *entry) { r.transparent = d.boolean(e); r.roleOnly["transparent"] = e.pos }},
		)
		out = append(out, r)
	}
	return out
}

// proxyKeyRole returns the role a key is only for, if any.
func proxyKeyRole(key string) (ProxyRole, bool) {
	switch key {
	case "to", "announce", "allow":
		return ProxyServer, true
	case "server", "via", "backup", "transparent":
		return ProxyClient, true
	}
	return "", false
}

// validateProxies checks the [[proxy]] tables into c.
func (d *decoder) validateProxies(raws []rawProxy, c *Config) {
	listens := map[string]bool{}
	for _, r := range raws {
		n := len(d.errs)
		p := Proxy{File: d.file, Line: r.at.line}
		if r.role == nil {
			d.errorf(r.at, `[[proxy]] has no role; add role = "client" or role = "server"`)
			continue
		}
		v := d.oneOf("role", r.role, []string{string(ProxyClient), string(ProxyServer)}, "proxy role")
		if v == "" {
			continue
		}
		p.Role = ProxyRole(v)
		for key, at := range r.roleOnly {
			if want, ok := proxyKeyRole(key); ok && want != p.Role {
				d.errorf(at, "%s: only for role = %s; remove it here", key, quote(string(want)))
			}
		}
		if r.listen == nil {
			d.errorf(r.at, `[[proxy]] has no listen address; add one, like listen = %s`, quote(map[ProxyRole]string{ProxyClient: "127.0.0.1:1080", ProxyServer: ":7000"}[p.Role]))
		} else if d.listenAddr(r.listen) {
			p.Listen = r.listen.s
			if listens[p.Listen] {
				d.errorf(r.listen.pos, "listen: %s is used by an earlier [[proxy]]; give each proxy its own address", quote(p.Listen))
			}
			listens[p.Listen] = true
		}
		if r.pskFile != nil && d.absPath("psk_file", r.pskFile, "/etc/mptcpd-go/proxy.psk") {
			p.PSKFile = path.Clean(r.pskFile.s)
		}
		if p.Role == ProxyServer {
			d.validateProxyServer(r, &p)
		} else {
			d.validateProxyClient(r, &p)
		}
		if len(d.errs) == n {
			c.Proxies = append(c.Proxies, p)
		}
	}
}

func (d *decoder) validateProxyServer(r rawProxy, p *Proxy) {
	if r.to != nil && d.hostPort("to", r.to, "127.0.0.1:80") {
		p.To = r.to.s
	}
	if r.announce != nil && !r.announce.broken {
		d.duplicates("announce", r.announce)
		for _, it := range r.announce.items {
			if _, err := netip.ParseAddr(it.s); err == nil {
				p.Announce = append(p.Announce, it.s)
				continue
			}
			if ap, err := netip.ParseAddrPort(it.s); err == nil && ap.Port() != 0 {
				p.Announce = append(p.Announce, it.s)
				continue
			}
			d.errorf(it.pos, `announce: %s is not an address; write "198.51.100.7", or with a port "198.51.100.7:7001" or "[2001:db8::7]:7001"`, quote(it.s))
		}
	}
	if r.allow != nil && !r.allow.broken {
		d.duplicates("allow", r.allow)
		for _, it := range r.allow.items {
			pf, err := netip.ParsePrefix(it.s)
			switch {
			case err != nil:
				d.errorf(it.pos, `allow: %s is not a prefix; write it like "10.0.0.0/8" or "2001:db8::/32"`, quote(it.s))
			case pf.Masked() != pf:
				d.errorf(it.pos, "allow: %s has host bits set; did you mean %s?", quote(it.s), quote(pf.Masked().String()))
			default:
				p.Allow = append(p.Allow, pf)
			}
		}
	}
	if r.to == nil && (r.allow == nil || len(r.allow.items) == 0) && !r.allow.isBroken() {
		d.errorf(r.at, `[[proxy]] server has nowhere to send connections; add to = "HOST:PORT", or allow = [prefixes] for transparent clients`)
	}
}

func (d *decoder) validateProxyClient(r rawProxy, p *Proxy) {
	if r.srv == nil {
		d.errorf(r.at, `[[proxy]] client has no server; add server = "HOST:PORT", the proxy server's address`)
	} else if d.hostPort("server", r.srv, "203.0.113.7:7000") {
		p.Server = r.srv.s
	}
	seen := map[string]bool{}
	for _, l := range []struct {
		key  string
		v    *listVal
		dest *[]string
	}{{"via", r.via, &p.Via}, {"backup", r.backup, &p.Backup}} {
		if l.v == nil || l.v.broken {
			continue
		}
		for _, it := range l.v.items {
			if !validPath(it.s) {
				d.errorf(it.pos, `%s: %s is neither an interface name nor an IP address; write it like "eth0" or "192.0.2.10"`, l.key, quote(it.s))
				continue
			}
			if seen[it.s] {
				d.errorf(it.pos, "%s: %s is listed twice (in via or backup); drop one", l.key, quote(it.s))
				continue
			}
			seen[it.s] = true
			*l.dest = append(*l.dest, it.s)
		}
	}
	if r.transparent != nil {
		p.Transparent = r.transparent.b
	}
}

// isBroken reports a list that had the wrong type; nil is not broken.
func (l *listVal) isBroken() bool { return l != nil && l.broken }

// validPath reports whether s is an IP address or could be an interface
// name (1..15 bytes, no slash, colon or white space, not . or ..).
func validPath(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n")
}

// listenAddr reports v unless it is HOST:PORT with HOST an IP address or
// empty and PORT 1..65535.
func (d *decoder) listenAddr(v *strVal) bool {
	host, port, err := net.SplitHostPort(v.s)
	if err == nil && host != "" {
		if _, perr := netip.ParseAddr(host); perr != nil {
			err = perr
		}
	}
	if err == nil && !validPort(port) {
		err = strconv.ErrRange
	}
	if err != nil {
		d.errorf(v.pos, `listen: %s is not ADDRESS:PORT; write it like "127.0.0.1:1080", ":7000" or "[::1]:1080"`, quote(v.s))
		return false
	}
	return true
}

// hostPort reports v unless it is HOST:PORT with a non-empty HOST and PORT
// 1..65535.
func (d *decoder) hostPort(key string, v *strVal, example string) bool {
	host, port, err := net.SplitHostPort(v.s)
	if err != nil || host == "" || !validPort(port) {
		d.errorf(v.pos, "%s: %s is not HOST:PORT; write it like %s", key, quote(v.s), quote(example))
		return false
	}
	return true
}

func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n >= 1
}
