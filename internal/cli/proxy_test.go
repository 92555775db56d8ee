package cli

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpd-go/mptcpd-go/datapath"
	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/proxy"
)

var proxyCmp = cmp.Options{
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(proxy.ServerConfig{}, "Logger"),
	cmpopts.IgnoreFields(proxy.ClientConfig{}, "Logger"),
}

// proxyFiles writes a key file and a policy into a temporary directory
// and returns the paths of both.
func proxyFiles(t *testing.T) (psk, config string) {
	t.Helper()
	dir := t.TempDir()
	psk = filepath.Join(dir, "psk")
	if err := os.WriteFile(psk, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config = filepath.Join(dir, "mptcpd-go.toml")
	files := map[string]string{
		config: "mode = \"kernel\"\n",
		filepath.Join(dir, "interfaces.d", "10-eth.toml"): "[match]\nname = \"eth*\"\n[endpoint]\nflags = \"subflow\"\nalso_without_default_route = true\n",
		filepath.Join(dir, "interfaces.d", "20-lte.toml"): "[match]\nname = \"wwan*\"\n[endpoint]\nflags = [\"subflow\", \"backup\"]\nalso_without_default_route = true\n",
	}
	for name, data := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return psk, config
}

func TestParseProxyServer(t *testing.T) {
	psk, _ := proxyFiles(t)
	tests := []struct {
		name    string
		args    string
		want    proxy.ServerConfig
		wantErr string
		code    int
	}{
		{name: "minimal", args: "--listen :7000 --to 127.0.0.1:22",
			want: proxy.ServerConfig{Listen: ":7000", To: "127.0.0.1:22"}},
		{name: "everything", args: "--listen :7000 --to db:5432 --announce 192.0.2.1 --announce [2001:db8::1]:7001 " +
			"--allow 10.0.0.0/8 --allow 192.0.2.7 --allow 10.1.2.3/16 --psk-file " + psk,
			want: proxy.ServerConfig{Listen: ":7000", To: "db:5432", Announce: []string{"192.0.2.1", "[2001:db8::1]:7001"},
				Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
					netip.MustParsePrefix("10.1.0.0/16")},
				PSK: []byte("s3cret")}},
		{name: "transparent only", args: "-listen :7000 -allow 2001:db8::/32",
			want: proxy.ServerConfig{Listen: ":7000", Allow: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}},
		{name: "no listen", args: "--to 127.0.0.1:22", wantErr: "needs --listen ADDR", code: exitUsage},
		{name: "no target", args: "--listen :7000", wantErr: "needs --to HOST:PORT, or --allow", code: exitUsage},
		{name: "bad allow", args: "--listen :7000 --allow nonsense", wantErr: "--allow \"nonsense\" is not a prefix", code: exitUsage},
		{name: "bad announce", args: "--listen :7000 --to h:1 --announce eth0", wantErr: "announce \"eth0\"", code: exitUsage},
		{name: "bad listen", args: "--listen 7000 --to h:1", wantErr: "listen address \"7000\"", code: exitUsage},
		{name: "unknown flag", args: "--listen :7000 --via eth0", wantErr: "flag provided but not defined: -via", code: exitUsage},
		{name: "stray argument", args: "--listen :7000 --to h:1 extra", wantErr: "unexpected argument \"extra\"", code: exitUsage},
		{name: "missing key file", args: "--listen :7000 --to h:1 --psk-file /nonexistent/psk", wantErr: "no such file", code: exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProxyServer(strings.Fields(tt.args))
			if tt.wantErr != "" {
				checkCmdError(t, err, tt.wantErr, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, proxyCmp); diff != "" {
				t.Errorf("parseProxyServer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProxyClient(t *testing.T) {
	psk, config := proxyFiles(t)
	ifaces := func() (endpoints.Snapshot, error) {
		a := []endpoints.Addr{{Prefix: netip.MustParsePrefix("192.0.2.2/24")}}
		return endpoints.Snapshot{Links: []endpoints.Link{
			{Index: 2, Name: "wwan0", Kind: "device", Addrs: a},
			{Index: 3, Name: "eth0", Kind: "device", Addrs: a},
			{Index: 4, Name: "eth1", Kind: "device", Addrs: a},
			{Index: 5, Name: "wlan0", Kind: "device", Addrs: a},
		}}, nil
	}
	noIfaces := func() (endpoints.Snapshot, error) { return endpoints.Snapshot{}, errors.New("not called") }
	tests := []struct {
		name    string
		args    string
		ifaces  func() (endpoints.Snapshot, error)
		want    proxy.ClientConfig
		wantErr string
		code    int
	}{
		{name: "minimal", args: "--listen 127.0.0.1:1080 --server 192.0.2.1:7000",
			want: proxy.ClientConfig{Listen: "127.0.0.1:1080", Server: "192.0.2.1:7000"}},
		{name: "paths", args: "--listen :1080 --server s:7000 --backup wwan0 --via eth0 --via 192.0.2.9 --transparent --psk-file " + psk,
			want: proxy.ClientConfig{Listen: ":1080", Server: "s:7000", Transparent: true, PSK: []byte("s3cret"),
				Paths: []datapath.Path{{Device: "eth0"}, {LocalAddr: netip.MustParseAddr("192.0.2.9")}, {Device: "wwan0", Backup: true}}}},
		{name: "config", args: "--listen :1080 --server s:7000 --config " + config, ifaces: ifaces,
			want: proxy.ClientConfig{Listen: ":1080", Server: "s:7000",
				Paths: []datapath.Path{{Device: "eth0"}, {Device: "eth1"}, {Device: "wwan0", Backup: true}}}},
		{name: "config and flags: flags first, no repeats", args: "--listen :1080 --server s:7000 --via eth1 --backup eth0 --config " + config,
			ifaces: ifaces,
			want: proxy.ClientConfig{Listen: ":1080", Server: "s:7000",
				Paths: []datapath.Path{{Device: "eth1"}, {Device: "eth0", Backup: true}, {Device: "wwan0", Backup: true}}}},
		{name: "no listen", args: "--server s:7000", wantErr: "needs --listen ADDR", code: exitUsage},
		{name: "no server", args: "--listen :1080", wantErr: "needs --server HOST:PORT", code: exitUsage},
		{name: "bad path", args: "--listen :1080 --server s:7000 --via eth0/1", wantErr: "neither an IP address nor an interface", code: exitUsage},
		{name: "bad server", args: "--listen :1080 --server s", wantErr: "server address \"s\"", code: exitUsage},
		{name: "missing config", args: "--listen :1080 --server s:7000 --config /nonexistent.toml", ifaces: noIfaces,
			wantErr: "/nonexistent.toml", code: exitFailure},
		{name: "config without paths", args: "--listen :1080 --server s:7000 --config " + config,
			ifaces: func() (endpoints.Snapshot, error) { return endpoints.Snapshot{}, nil }, wantErr: "gives no paths", code: exitFailure},
		{name: "interfaces fail", args: "--listen :1080 --server s:7000 --config " + config,
			ifaces: func() (endpoints.Snapshot, error) { return endpoints.Snapshot{}, errors.New("netlink says no") }, wantErr: "netlink says no", code: exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.ifaces
			if fn == nil {
				fn = noIfaces
			}
			got, err := parseProxyClient(strings.Fields(tt.args), fn)
			if tt.wantErr != "" {
				checkCmdError(t, err, tt.wantErr, tt.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, proxyCmp); diff != "" {
				t.Errorf("parseProxyClient (-want +got):\n%s", diff)
			}
		})
	}
}

func checkCmdError(t *testing.T, err error, want string, code int) {
	t.Helper()
	var ce *cmdError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a cmdError containing %q", err, want)
	}
	if !strings.Contains(ce.msg, want) || ce.code != code {
		t.Errorf("error = %q (exit %d), want it to contain %q (exit %d)", ce.msg, ce.code, want, code)
	}
}

func TestProxyCommand(t *testing.T) {
	usage := "Usage:\n" + proxyUsage()
	tests := []cliCase{
		{name: "no subcommand", args: "proxy",
			want: result{Stderr: "Error: proxy needs a subcommand: server or client.\n" + usage, Code: exitUsage}},
		{name: "unknown subcommand", args: "proxy relay",
			want: result{Stderr: "Error: unknown proxy subcommand \"relay\"; try \"server\" or \"client\".\n" + usage, Code: exitUsage}},
		{name: "server needs listen", args: "proxy server --to 127.0.0.1:22",
			want: result{Stderr: "Error: proxy server needs --listen ADDR, e.g. --listen :7000.\n" + usage, Code: exitUsage}},
		{name: "abbreviated client needs server", args: "proxy c --listen :1080",
			want: result{Stderr: "Error: proxy client needs --server HOST:PORT, the proxy server's --listen address.\n" + usage, Code: exitUsage}},
		{name: "no -n", args: "-n ns1 proxy server --listen :7000",
			want: result{Stderr: "Error: -n is not supported by proxy: run it inside the namespace with \"ip netns exec ns1 mptcpd-go proxy\".\n", Code: exitUsage}},
	}
	runCases(t, tests)
}

func TestMergePaths(t *testing.T) {
	eth0, eth1 := datapath.Path{Device: "eth0"}, datapath.Path{Device: "eth1"}
	bak := datapath.Path{Device: "wwan0", Backup: true}
	addr := datapath.Path{LocalAddr: netip.MustParseAddr("192.0.2.1")}
	tests := []struct {
		name  string
		lists [][]datapath.Path
		want  []datapath.Path
	}{
		{"empty", nil, nil},
		{"backup moves last", [][]datapath.Path{{bak, eth0}, {addr}}, []datapath.Path{eth0, addr, bak}},
		{"first mention wins", [][]datapath.Path{{eth0}, {eth1, {Device: "eth0", Backup: true}}}, []datapath.Path{eth0, eth1}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, mergePaths(tt.lists...), proxyCmp); diff != "" {
			t.Errorf("%s: mergePaths (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestUsageHasProxy(t *testing.T) {
	for _, want := range []string{"proxy server --listen ADDR", "proxy client --listen ADDR --server HOST:PORT"} {
		if !strings.Contains(Usage, want) {
			t.Errorf("Usage lacks %q", want)
		}
	}
}
