package policy

import (
	"net"
	"net/netip"
	"strconv"
)

// DefaultMetricsHost is where metrics_listen binds when it gives only a
// port: metrics describe the host's connections, so they stay on the
// loopback unless the file names another address.
const DefaultMetricsHost = "127.0.0.1"

// metricsExample is the hint of metrics_listen's messages.
const metricsExample = `write a port like "9464" (on ` + DefaultMetricsHost + `) or ADDRESS:PORT like "[::1]:9464"; remove the key to turn metrics off`

// metricsListen validates metrics_listen and returns it as ADDRESS:PORT,
// with DefaultMetricsHost for "PORT" and ":PORT"; it reports v and returns
// "" when it is not valid.
func (d *decoder) metricsListen(v *strVal) string {
	if v.s == "" {
		d.errorf(v.pos, "metrics_listen: empty; %s", metricsExample)
		return ""
	}
	host, port := "", v.s
	if _, err := strconv.ParseUint(v.s, 10, 64); err != nil {
		var serr error
		host, port, serr = net.SplitHostPort(v.s)
		if serr != nil {
			d.errorf(v.pos, "metrics_listen: %s is not a port or ADDRESS:PORT; %s", quote(v.s), metricsExample)
			return ""
		}
	}
	if !validPort(port) {
		d.errorf(v.pos, "metrics_listen: port %s is not 1..65535; a scraper needs a fixed port, like 9464", quote(port))
		return ""
	}
	if host == "" {
		host = DefaultMetricsHost
	}
	// An IP address, not a name: a name would be resolved at every start
	// and could bind somewhere unexpected.
	addr, err := netip.ParseAddr(host)
	if err != nil {
		d.errorf(v.pos, "metrics_listen: %s is not an IP address; use one, like %s or \"[::1]:%s\"", quote(host), quote(DefaultMetricsHost+":"+port), port)
		return ""
	}
	return netip.AddrPortFrom(addr, mustPort(port)).String()
}

// mustPort converts a port validPort accepted.
func mustPort(s string) uint16 {
	n, _ := strconv.ParseUint(s, 10, 16)
	return uint16(n)
}
