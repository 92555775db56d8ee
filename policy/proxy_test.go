package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestProxies loads valid [[proxy]] tables.
func TestProxies(t *testing.T) {
	const text = `
[[proxy]]
role = "server"
listen = ":7000"
to = "127.0.0.1:80"
announce = ["198.51.100.7", "[2001:db8::7]:7001"]
allow = "10.0.0.0/8"
psk_file = "/etc/mptcpd-go/proxy.psk"

[[proxy]]
role = "client"
listen = "127.0.0.1:1080"
server = "proxy.example.net:7000"
via = ["eth0", "192.0.2.10"]
backup = "wwan0"
transparent = true
`
	c, err := LoadFS(etc(map[string]string{"mptcpd-go.toml": text}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Proxy{
		{File: mainFile, Line: 2, Role: ProxyServer, Listen: ":7000", PSKFile: "/etc/mptcpd-go/proxy.psk",
			To: "127.0.0.1:80", Announce: []string{"198.51.100.7", "[2001:db8::7]:7001"},
			Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{File: mainFile, Line: 10, Role: ProxyClient, Listen: "127.0.0.1:1080", Server: "proxy.example.net:7000",
			Via: []string{"eth0", "192.0.2.10"}, Backup: []string{"wwan0"}, Transparent: true},
	}
	if diff := cmp.Diff(want, c.Proxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Proxies mismatch (-want +got):\n%s", diff)
	}
	var b strings.Builder
	if err := c.Describe(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"  proxy server      listen :7000, to 127.0.0.1:80, announce 198.51.100.7 [2001:db8::7]:7001, transparent clients may reach 10.0.0.0/8, key /etc/mptcpd-go/proxy.psk\n",
		"  proxy client      listen 127.0.0.1:1080, server proxy.example.net:7000, via eth0 192.0.2.10, backup wwan0, transparent, no pre-shared key\n",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("Describe output lacks %q; it is:\n%s", line, b.String())
		}
	}
}

// TestProxyErrors checks each mistake in a [[proxy]] table: position and
// message.
func TestProxyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{
			name: "no role",
			text: "[[proxy]]\nlisten = \":7000\"",
			want: []string{`1:1: [[proxy]] has no role; add role = "client" or role = "server"`},
		},
		{
			name: "role typo",
			text: "[[proxy]]\nrole = \"sever\"",
			want: []string{`2:8: role: "sever" is not a proxy role; did you mean "server"?`},
		},
		{
			name: "server without destination or listen",
			text: "[[proxy]]\nrole = \"server\"",
			want: []string{
				`1:1: [[proxy]] has no listen address; add one, like listen = ":7000"`,
				`1:1: [[proxy]] server has nowhere to send connections; add to = "HOST:PORT", or allow = [prefixes] for transparent clients`,
			},
		},
		{
			name: "client keys on a server",
			text: "[[proxy]]\nrole = \"server\"\nlisten = \":7000\"\nto = \"127.0.0.1:80\"\nvia = \"eth0\"\ntransparent = true",
			want: []string{
				`5:1: via: only for role = "client"; remove it here`,
				`6:1: transparent: only for role = "client"; remove it here`,
			},
		},
		{
			name: "bad addresses",
			text: "[[proxy]]\nrole = \"server\"\nlisten = \"localhost:7000\"\nto = \"127.0.0.1\"\nannounce = [\"198.51.100.7:0\"]\nallow = [\"10.0.0.1/8\", \"ten\"]\npsk_file = \"proxy.psk\"",
			want: []string{
				`3:10: listen: "localhost:7000" is not ADDRESS:PORT; write it like "127.0.0.1:1080", ":7000" or "[::1]:1080"`,
				`4:6: to: "127.0.0.1" is not HOST:PORT; write it like "127.0.0.1:80"`,
				`5:13: announce: "198.51.100.7:0" is not an address; write "198.51.100.7", or with a port "198.51.100.7:7001" or "[2001:db8::7]:7001"`,
				`6:10: allow: "10.0.0.1/8" has host bits set; did you mean "10.0.0.0/8"?`,
				`6:24: allow: "ten" is not a prefix; write it like "10.0.0.0/8" or "2001:db8::/32"`,
				`7:12: psk_file: "proxy.psk" is not an absolute path; write it in full, like "/etc/mptcpd-go/proxy.psk"`,
			},
		},
		{
			name: "client mistakes",
			text: "[[proxy]]\nrole = \"client\"\nlisten = \"127.0.0.1:1080\"\nvia = [\"eth0\", \"a/b\"]\nbackup = \"eth0\"\nto = \"x:1\"",
			want: []string{
				`1:1: [[proxy]] client has no server; add server = "HOST:PORT", the proxy server's address`,
				`4:16: via: "a/b" is neither an interface name nor an IP address; write it like "eth0" or "192.0.2.10"`,
				`5:10: backup: "eth0" is listed twice (in via or backup); drop one`,
				`6:1: to: only for role = "server"; remove it here`,
			},
		},
		{
			name: "same listen twice",
			text: "[[proxy]]\nrole = \"server\"\nlisten = \":7000\"\nto = \"127.0.0.1:80\"\n[[proxy]]\nrole = \"server\"\nlisten = \":7000\"\nto = \"127.0.0.1:81\"",
			want: []string{`7:10: listen: ":7000" is used by an earlier [[proxy]]; give each proxy its own address`},
		},
		{
			name: "not an array of tables",
			text: "proxy = \"client\"",
			want: []string{`1:9: proxy: want [[proxy]] tables, each on lines of its own, not a string`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFS(etc(map[string]string{"mptcpd-go.toml": tc.text}), "")
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadFS error = %v (%T), want Errors", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
