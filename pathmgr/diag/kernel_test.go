package diag

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// captureEnv names a directory; when set, TestKernelListsConnection writes
// the kernel's replies there as fuzz seeds (testdata/fuzz/<target>/).
const captureEnv = "MPTCPD_DIAG_CAPTURE"

// TestKernelListsConnection: a live MPTCP connection whose client opened a
// second subflow through the userspace path manager. Both ends must list
// the connection with its token and both subflows with their ids.
func TestKernelListsConnection(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := harness.Pair(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), harness.Timeout)
	defer cancel()
	// A second subflow over link 2, backup, to the server's link-1 address.
	c := harness.OpenTwoSubflows(ctx, t, top)
	const clientID = 5
	ctok, stok, est := c.ClientToken, c.ServerToken, c.Second
	clientAddr, serverAddr := c.ClientAddr, c.ServerAddr

	for _, side := range []struct {
		name          string
		ns            *harness.NS
		token         uint32
		local, remote netip.AddrPort
		listener      bool
		subflows      []Subflow
	}{
		{"client", top.Client, ctok, clientAddr, serverAddr, false, []Subflow{
			{Socket: Socket{Local: clientAddr, Remote: serverAddr}, TokenLocal: ctok, IDLocal: 0, IDRemote: 0,
				Flags: FlagMPCapableRemote | FlagMPCapableLocal},
			{Socket: Socket{Local: est.Local, Remote: serverAddr}, TokenLocal: ctok, TokenRemote: stok, IDLocal: clientID, IDRemote: 0,
				Flags: FlagJoinLocal | FlagJoinRemote | FlagBackupLocal},
		}},
		{"server", top.Server, stok, serverAddr, clientAddr, true, []Subflow{
			{Socket: Socket{Local: serverAddr, Remote: clientAddr}, TokenLocal: stok, IDLocal: 0, IDRemote: 0,
				Flags: FlagMPCapableRemote},
			{Socket: Socket{Local: serverAddr, Remote: est.Local}, TokenLocal: stok, IDLocal: 0, IDRemote: clientID,
				Flags: FlagJoinRemote | FlagBackupRemote},
		}},
	} {
		t.Run(side.name, func(t *testing.T) {
			c, err := Dial(&Config{NetNS: side.ns.Name})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			conns, err := c.Connections()
			if err != nil {
				t.Fatalf("Connections: %v", err)
			}
			var found, listener bool
			for _, cn := range conns {
				t.Logf("connection %s %s -> %s info %+v", cn.State, cn.Local, cn.Remote, cn.Info)
				if cn.State == StateListen && cn.Local.Port() == serverAddr.Port() {
					listener = true
				}
				if cn.Info == nil || cn.Info.Token != side.token {
					continue
				}
				found = true
				if cn.State != StateEstablished || cn.Family != unix.AF_INET ||
					cn.Local != side.local || cn.Remote != side.remote {
					t.Errorf("connection %08x: %s %d %s -> %s, want ESTAB AF_INET %s -> %s",
						side.token, cn.State, cn.Family, cn.Local, cn.Remote, side.local, side.remote)
				}
				if cn.Info.Flags&InfoFallback != 0 || cn.Info.Flags&InfoRemoteKeyReceived == 0 {
					t.Errorf("connection %08x: flags %#x, want remote key received and no fallback", side.token, cn.Info.Flags)
				}
				if cn.Info.Subflows != 1 && side.name == "client" {
					t.Errorf("connection %08x: %d extra subflows, want 1", side.token, cn.Info.Subflows)
				}
			}
			if !found {
				t.Errorf("no connection with token %08x", side.token)
			}
			if listener != side.listener {
				t.Errorf("listener on port %d listed: %v, want %v", serverAddr.Port(), listener, side.listener)
			}

			sfs, err := c.Subflows()
			if err != nil {
				t.Fatalf("Subflows: %v", err)
			}
			var mine []Subflow
			for _, sf := range sfs {
				t.Logf("subflow %s %s -> %s tokens %08x/%08x ids %d/%d flags %s", sf.State, sf.Local, sf.Remote,
					sf.TokenLocal, sf.TokenRemote, sf.IDLocal, sf.IDRemote, sf.Flags)
				if sf.TokenLocal == side.token {
					mine = append(mine, sf)
				}
			}
			if len(mine) != len(side.subflows) {
				t.Fatalf("%d subflows with token %08x, want %d", len(mine), side.token, len(side.subflows))
			}
			for _, want := range side.subflows {
				ok := false
				for _, got := range mine {
					if got.Local != want.Local || got.Remote != want.Remote {
						continue
					}
					ok = true
					// Only the flags that do not depend on timing.
					const stable = FlagMPCapableRemote | FlagJoinLocal | FlagJoinRemote | FlagBackupLocal | FlagBackupRemote
					if got.IDLocal != want.IDLocal || got.IDRemote != want.IDRemote || got.Flags&stable != want.Flags&stable ||
						got.State != StateEstablished {
						t.Errorf("subflow %s -> %s: %s ids %d/%d flags %s, want ESTAB ids %d/%d flags %s",
							got.Local, got.Remote, got.State, got.IDLocal, got.IDRemote, got.Flags,
							want.IDLocal, want.IDRemote, want.Flags&stable)
					}
					if want.TokenRemote != 0 && got.TokenRemote != want.TokenRemote {
						t.Errorf("subflow %s -> %s: remote token %08x, want %08x", got.Local, got.Remote, got.TokenRemote, want.TokenRemote)
					}
				}
				if !ok {
					t.Errorf("no subflow %s -> %s", want.Local, want.Remote)
				}
			}
			compareWithSS(t, side.ns, conns, sfs)
			if dir := os.Getenv(captureEnv); dir != "" {
				capture(t, c, dir, side.name)
			}
		})
	}
}

// capture writes every reply of both dumps as a fuzz seed file.
func capture(t *testing.T, c *Conn, dir, side string) {
	for _, d := range []struct {
		target   string
		family   uint8
		protocol uint32
		states   uint32
	}{
		{"FuzzDecodeConnection", unix.AF_INET, unix.IPPROTO_MPTCP, allStates},
		{"FuzzDecodeSubflow", unix.AF_INET, unix.IPPROTO_TCP, subflowStates},
	} {
		msgs, err := c.dump(d.family, d.protocol, d.states)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		if err := os.MkdirAll(filepath.Join(dir, d.target), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			name := filepath.Join(dir, d.target, fmt.Sprintf("kernel-6.18-%s-%d", side, i))
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", m.Data)
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ssSubflowRe matches the ULP part of `ss -tie` for a subflow.
var ssSubflowRe = regexp.MustCompile(`tcp-ulp-mptcp flags:(\S*) token:([0-9a-f]+)\(id:(\d+)\)/([0-9a-f]+)\(id:(\d+)\)`)

// ssTokenRe matches the token in the info line of `ss -Mi`.
var ssTokenRe = regexp.MustCompile(`subflows:(\d+).* token:([0-9a-f]+) `)

// compareWithSS checks the lists against ss(8), the reference decoder of
// the same kernel replies, when ss is installed.
func compareWithSS(t *testing.T, ns *harness.NS, conns []Connection, sfs []Subflow) {
	t.Helper()
	if _, err := exec.LookPath("ss"); err != nil {
		t.Log("ss(8) not installed; skipping the comparison with it")
		return
	}
	run := func(args ...string) []string {
		out, errOut, code, err := ns.Run(context.Background(), "ss", args...)
		if err != nil || code != 0 {
			t.Fatalf("ss %v: exit %d, %v\n%s", args, code, err, errOut)
		}
		return strings.Split(out, "\n")
	}
	// "State Recv-Q Send-Q Local Peer" lines, each followed by its details.
	pairs := func(lines []string, re *regexp.Regexp) map[string][]string {
		m := map[string][]string{}
		for i := 1; i+1 < len(lines); i++ {
			f := strings.Fields(lines[i])
			if len(f) < 5 || strings.HasPrefix(lines[i], "\t") {
				continue
			}
			if sm := re.FindStringSubmatch(lines[i+1]); sm != nil {
				m[f[3]+" "+f[4]] = sm[1:]
			}
		}
		return m
	}
	want := map[string][]string{}
	for _, c := range conns {
		if c.Info != nil && c.State == StateEstablished {
			want[c.Local.String()+" "+c.Remote.String()] = []string{fmt.Sprint(c.Info.Subflows), fmt.Sprintf("%x", c.Info.Token)}
		}
	}
	if diff := cmp.Diff(want, pairs(run("-Mni"), ssTokenRe)); diff != "" {
		t.Errorf("Connections vs ss -Mni (-ours +ss):\n%s", diff)
	}
	want = map[string][]string{}
	for _, sf := range sfs {
		want[sf.Local.String()+" "+sf.Remote.String()] = []string{sf.Flags.String(),
			fmt.Sprintf("%x", sf.TokenRemote), fmt.Sprint(sf.IDRemote), fmt.Sprintf("%x", sf.TokenLocal), fmt.Sprint(sf.IDLocal)}
	}
	got := pairs(run("-tnie"), ssSubflowRe)
	for k, v := range got {
		// ss prints a zero remote token as "0000".
		if v[1] == "0000" {
			got[k][1] = "0"
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subflows vs ss -tnie (-ours +ss):\n%s", diff)
	}
}
