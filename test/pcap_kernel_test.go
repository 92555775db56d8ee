package test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// mptcpInfo is the part of struct mptcp_info (include/uapi/linux/mptcp.h)
// the test compares the capture with.
type mptcpInfo struct {
	Subflows     uint8
	Token        uint32
	CsumEnabled  uint8
	Retransmits  uint32
	BytesRetrans uint64
	BytesSent    uint64
}

// Socket option of MPTCP_INFO: level SOL_MPTCP (284), name 1.
const (
	solMPTCP  = 284
	optMPInfo = 1
)

// readMPTCPInfo reads MPTCP_INFO from an MPTCP socket.
func readMPTCPInfo(c net.Conn) (mptcpInfo, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return mptcpInfo{}, fmt.Errorf("%T is not a *net.TCPConn", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return mptcpInfo{}, err
	}
	var buf [256]byte
	n := uint32(len(buf))
	var serr error
	if err := raw.Control(func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, solMPTCP, optMPInfo,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e != 0 {
			serr = e
		}
	}); err != nil {
		return mptcpInfo{}, err
	}
	if serr != nil {
		return mptcpInfo{}, fmt.Errorf("getsockopt(SOL_MPTCP, MPTCP_INFO): %w", serr)
	}
	if n < 64 {
		return mptcpInfo{}, fmt.Errorf("MPTCP_INFO returned %d bytes", n)
	}
	ne := binary.NativeEndian
	// Offsets of struct mptcp_info's fields (natural alignment).
	return mptcpInfo{
		Subflows:     buf[0],
		Token:        ne.Uint32(buf[12:]),
		CsumEnabled:  buf[42],
		Retransmits:  ne.Uint32(buf[44:]),
		BytesRetrans: ne.Uint64(buf[48:]),
		BytesSent:    ne.Uint64(buf[56:]),
	}, nil
}

// pcapSummaryJSON is the part of `pcap summary -j` the test checks.
type pcapSummaryJSON struct {
	Connections []struct {
		Client             string `json:"client"`
		Server             string `json:"server"`
		ClientToken        string `json:"client_token"`
		ServerToken        string `json:"server_token"`
		Established        bool   `json:"established"`
		Checksum           bool   `json:"checksum"`
		Reinjections       int    `json:"reinjections"`
		ReinjectedBytes    uint64 `json:"reinjected_bytes"`
		Fallback           bool   `json:"fallback"`
		HMACFailures       int    `json:"hmac_failures"`
		ChecksumVerified   int    `json:"checksum_verified"`
		ChecksumFailures   int    `json:"checksum_failures"`
		ChecksumUnverified int    `json:"checksum_unverified"`
		OptionErrors       int    `json:"option_errors"`
		Subflows           []struct {
			Src       string `json:"src"`
			Dst       string `json:"dst"`
			Join      bool   `json:"join"`
			HMAC      string `json:"hmac"`
			DataBytes uint64 `json:"data_bytes"`
		} `json:"subflows"`
		AddAddr []struct {
			From   string `json:"from"`
			AddrID uint8  `json:"addr_id"`
			Addr   string `json:"addr"`
			Echo   bool   `json:"echo"`
			HMAC   string `json:"hmac"`
		} `json:"add_addr"`
	} `json:"connections"`
	Fallback []json.RawMessage `json:"fallback_connections"`
}

// pcapEventJSON is one element of `pcap events -j`.
type pcapEventJSON struct {
	Time   time.Time `json:"time"`
	Rel    float64   `json:"rel"`
	Event  string    `json:"event"`
	Token  string    `json:"token"`
	Daddr4 string    `json:"daddr4"`
	Saddr4 string    `json:"saddr4"`
	Sport  uint16    `json:"sport"`
	RemID  *uint8    `json:"remid"`
	Backup *uint8    `json:"backup"`
}

// pcapKeepEnv names a directory where TestPcapKernelScenario leaves a
// copy of its capture, when set.
const pcapKeepEnv = "MPTCPD_PCAP_KEEP"

// pcapRequireNft returns the path of nft(8), which the test uses to blackhole
// a path; it skips (or fails with MPTCPD_REQUIRE_KERNEL=1) without it.
func pcapRequireNft(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nft")
	if err == nil {
		return p
	}
	if os.Getenv(harness.RequireKernelEnv) == "1" {
		t.Fatalf("nft(8) is needed to cut a path (Debian package nftables): %v", err)
	}
	t.Skipf("nft(8) is needed to cut a path (Debian package nftables): %v", err)
	return ""
}

// TestPcapKernelScenario captures a real MPTCP connection in the server's
// namespace (pcap capture -i any) while it joins subflows, announces an
// address, changes a subflow's priority and loses a path mid-transfer, and
// checks `pcap summary -j` and `pcap events -j` of the capture against
// what the sockets and the path manager report.
//
// The path is cut with an nft drop rule on the server's link-1 interface
// first: AF_PACKET sees incoming packets before netfilter drops them, so
// both the lost original and the kernel's reinjection on link 2 are in
// the capture (after a plain LinkDown the lost copies would never reach
// any capture point). The link is then also set down.
func TestPcapKernelScenario(t *testing.T) {
	harness.RequireKernel(t)
	nft := pcapRequireNft(t)
	t.Parallel()
	top := harness.Pair(t, 2)
	l1, l2 := top.Links[0], top.Links[1]
	ctx, cancel := context.WithTimeout(t.Context(), 3*testTimeout)
	defer cancel()

	for _, ns := range []*harness.NS{top.Client, top.Server} {
		ns.Sysctl(t, "net.mptcp.checksum_enabled", "1")
	}
	client, server := harness.DialGenl(t, top.Client), harness.DialGenl(t, top.Server)
	for side, c := range map[string]*genl.Client{"client": client, "server": server} {
		if err := c.SetLimits(genl.LimitsUpdate{Subflows: u32(2), AddAddrAccepted: u32(2)}); err != nil {
			t.Fatalf("%s: SetLimits: %v", side, err)
		}
	}
	serverEP := addEndpoint(t, "server", server, genl.Endpoint{Addr: l2.ServerV4, Flags: genl.FlagSignal})
	clientEP := addEndpoint(t, "client", client, genl.Endpoint{Addr: l2.ClientV4, Flags: genl.FlagSubflow,
		Ifindex: top.Client.LinkIndex(t, l2.ClientIf)})
	serverLog := harness.Subscribe(t, top.Server, "server")

	// The capture, on every interface of the server's namespace.
	file := filepath.Join(t.TempDir(), "scenario.pcap")
	capCmd := exec.CommandContext(ctx, cli(t), "-n", top.Server.Name, "pcap", "capture", "-i", "any", "-w", file)
	capCmd.Env = subprocessEnv()
	var capOut strings.Builder // read only after Wait
	capCmd.Stdout, capCmd.Stderr = &capOut, &capOut
	if err := capCmd.Start(); err != nil {
		t.Fatal(err)
	}
	capDone := make(chan error, 1)
	go func() { capDone <- capCmd.Wait() }()
	defer func() {
		if capCmd.ProcessState == nil {
			_ = capCmd.Process.Kill()
			<-capDone
		}
	}()
	// The file is created once the packet socket is bound.
	for {
		if _, err := os.Stat(file); err == nil {
			break
		}
		select {
		case err := <-capDone:
			t.Fatalf("pcap capture exited early: %v\n%s", err, capOut.String())
		case <-ctx.Done():
			t.Fatal("pcap capture did not create its file")
		case <-time.After(10 * time.Millisecond):
		}
	}

	// The listener takes any address, so joins to the announced
	// address are accepted.
	ln := top.Server.ListenMPTCP(t, "0.0.0.0:0")
	port := ln.Addr().(*net.TCPAddr).Port
	conn, srv := harness.Connect(ctx, t, top.Client, l1.ClientV4.String(), ln, netip.AddrPortFrom(l1.ServerV4, uint16(port)).String())
	deadline := time.Now().Add(3 * testTimeout)
	_ = conn.SetDeadline(deadline)
	_ = srv.SetDeadline(deadline)
	if mp, err := conn.(*net.TCPConn).MultipathTCP(); err != nil || !mp {
		t.Fatalf("the connection did not negotiate MPTCP (MultipathTCP() = %v, %v)", mp, err)
	}

	// The server reads everything; the client writes in phases.
	received := make(chan int, 64)
	go func() {
		buf := make([]byte, 1<<16)
		for {
			n, err := srv.Read(buf)
			if n > 0 {
				received <- n
			}
			if err != nil {
				close(received)
				return
			}
		}
	}()
	total, got := 0, 0
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	send := func(what string) {
		t.Helper()
		if _, err := conn.Write(payload); err != nil {
			t.Fatalf("%s: write: %v", what, err)
		}
		total += len(payload)
		for got < total {
			select {
			case n, ok := <-received:
				if !ok {
					t.Fatalf("%s: the server's read ended after %d of %d bytes", what, got, total)
				}
				got += n
			case <-ctx.Done():
				t.Fatalf("%s: the server got %d of %d bytes", what, got, total)
			}
		}
	}
	send("phase 1")

	// Wait for both joins (the subflow endpoint and the announced
	// address), recording the subflow count as ground truth.
	var info mptcpInfo
	for {
		var err error
		if info, err = readMPTCPInfo(conn); err != nil {
			t.Fatal(err)
		}
		if info.Subflows >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the client has %d additional subflows, want 2", info.Subflows)
		case <-time.After(20 * time.Millisecond):
		}
	}
	clientToken := fmt.Sprintf("%08x", info.Token)
	srvInfo, err := readMPTCPInfo(srv)
	if err != nil {
		t.Fatal(err)
	}
	serverToken := fmt.Sprintf("%08x", srvInfo.Token)
	if info.CsumEnabled != 1 {
		t.Errorf("MPTCP_INFO: checksums not enabled on the client (%d)", info.CsumEnabled)
	}
	subflowsBefore := int(info.Subflows)

	// Backup on the client's link-2 endpoint: MP_PRIO on its subflows.
	mark := serverLog.Mark()
	if err := client.SetEndpointFlags(genl.Endpoint{ID: clientEP.ID}, genl.FlagBackup); err != nil {
		t.Fatalf("client: SetEndpointFlags(id %d, backup): %v", clientEP.ID, err)
	}
	serverLog.WaitFor(t, mark, "SUB_PRIORITY after the backup change", func(ev genl.Event) bool {
		_, ok := ev.(*genl.SubflowPriority)
		return ok
	})
	send("phase 2")

	// Cut link 1 mid-transfer: the data the client sends there is lost
	// after the capture saw it, so the kernel must reinject it on the
	// backup subflows of link 2.
	for _, args := range [][]string{
		{"add", "table", "inet", "pcapcut"},
		{"add chain inet pcapcut in { type filter hook prerouting priority -300; policy accept; }"},
		{"add chain inet pcapcut out { type filter hook output priority -300; policy accept; }"},
		{"add", "rule", "inet", "pcapcut", "in", "iifname", l1.ServerIf, "drop"},
		{"add", "rule", "inet", "pcapcut", "out", "oifname", l1.ServerIf, "drop"},
	} {
		if stdout, stderr, code, err := top.Server.Run(ctx, nft, args...); err != nil || code != 0 {
			t.Fatalf("nft %s: exit %d, %v\n%s%s", strings.Join(args, " "), code, err, stdout, stderr)
		}
	}
	send("phase 3 (link 1 cut)")
	top.Client.LinkDown(t, l1.ClientIf)
	send("phase 4 (link 1 down)")
	after, err := readMPTCPInfo(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("client MPTCP_INFO after the cut: %+v", after)

	// Close, give the FINs a moment to be captured, stop the capture.
	conn.Close()
	for range received {
	}
	srv.Close()
	time.Sleep(200 * time.Millisecond) // only so the capture shows the close; nothing depends on it
	_ = capCmd.Process.Signal(os.Interrupt)
	select {
	case err := <-capDone:
		if err != nil {
			t.Fatalf("pcap capture: %v\n%s", err, capOut.String())
		}
	case <-ctx.Done():
		t.Fatal("pcap capture did not stop on SIGINT")
	}
	t.Logf("pcap capture: %s", strings.TrimSpace(capOut.String()))
	// For debugging and documentation, the capture can be kept.
	if dir := os.Getenv(pcapKeepEnv); dir != "" {
		if b, err := os.ReadFile(file); err == nil {
			kept := filepath.Join(dir, "mptcp-scenario.pcap")
			if err := os.WriteFile(kept, b, 0o644); err != nil {
				t.Errorf("keeping the capture: %v", err)
			} else {
				t.Logf("capture kept in %s", kept)
			}
		}
	}

	// The summary.
	r := run(t, nil, cli(t), "pcap", "summary", "-j", file)
	if r.Code != exitOK {
		t.Fatalf("pcap summary -j: %v", r)
	}
	var sum pcapSummaryJSON
	if err := json.Unmarshal([]byte(r.Stdout), &sum); err != nil {
		t.Fatalf("pcap summary -j: %v\n%s", err, r.Stdout)
	}
	if len(sum.Connections) != 1 {
		t.Fatalf("%d connections in the summary, want 1:\n%s", len(sum.Connections), r.Stdout)
	}
	c := sum.Connections[0]
	defer func() {
		if t.Failed() {
			text := run(t, nil, cli(t), "pcap", "summary", file)
			t.Logf("summary:\n%s", text.Stdout)
		}
	}()
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"client token = client MPTCP_INFO token " + clientToken, c.ClientToken == clientToken, c.ClientToken},
		{"server token = server MPTCP_INFO token " + serverToken, c.ServerToken == serverToken, c.ServerToken},
		{"established", c.Established, c.Established},
		{"checksum negotiated", c.Checksum, c.Checksum},
		{"checksums verified > 0", c.ChecksumVerified > 0, c.ChecksumVerified},
		{"no checksum failures", c.ChecksumFailures == 0, c.ChecksumFailures},
		{"no fallback", !c.Fallback && len(sum.Fallback) == 0, sum.Fallback},
		{"no HMAC failures", c.HMACFailures == 0, c.HMACFailures},
		{"no option errors", c.OptionErrors == 0, c.OptionErrors},
		{"reinjections >= 1 after the cut", c.Reinjections >= 1, c.Reinjections},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("summary: want %s; got %v", ch.what, ch.got)
		}
	}
	joins := 0
	var dataBytes uint64
	for _, sf := range c.Subflows {
		dataBytes += sf.DataBytes
		if sf.Join && sf.HMAC == "valid" {
			joins++
		}
	}
	if joins < subflowsBefore {
		t.Errorf("summary: %d joins with a valid HMAC, want at least the %d the client reported", joins, subflowsBefore)
	}
	// Every byte the application sent is in the capture once, plus the
	// reinjected copies; the server sent no data.
	if dataBytes-c.ReinjectedBytes != uint64(total) {
		t.Errorf("summary: %d data bytes over all subflows - %d reinjected = %d, want the %d the client sent",
			dataBytes, c.ReinjectedBytes, dataBytes-c.ReinjectedBytes, total)
	}
	announced := false
	for _, aa := range c.AddAddr {
		if aa.From == "server" && !aa.Echo && aa.Addr == l2.ServerV4.String() && aa.AddrID == serverEP.ID && aa.HMAC == "valid" {
			announced = true
		}
	}
	if !announced {
		t.Errorf("summary: no valid ADD_ADDR of %s id %d from the server: %+v", l2.ServerV4, serverEP.ID, c.AddAddr)
	}

	// The events.
	r = run(t, nil, cli(t), "pcap", "events", "-j", file)
	if r.Code != exitOK {
		t.Fatalf("pcap events -j: %v", r)
	}
	var evs []pcapEventJSON
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		t.Fatalf("pcap events -j: %v\n%s", err, r.Stdout)
	}
	count := map[string]int{}
	var last time.Time
	for i, e := range evs {
		count[e.Event]++
		if e.Time.Before(last) {
			t.Errorf("event %d (%s) at %v is before the previous one at %v", i, e.Event, e.Time, last)
		}
		last = e.Time
		if e.Event != "CREATED" && e.Token != clientToken {
			t.Errorf("event %d %s has token %q, want %s", i, e.Event, e.Token, clientToken)
		}
		switch e.Event {
		case "ANNOUNCED":
			if e.Daddr4 != l2.ServerV4.String() || e.RemID == nil || *e.RemID != serverEP.ID {
				t.Errorf("ANNOUNCED %+v: want daddr4 %s remid %d", e, l2.ServerV4, serverEP.ID)
			}
		case "SF_PRIO":
			if e.Backup == nil || *e.Backup != 1 {
				t.Errorf("SF_PRIO %+v: want backup=1", e)
			}
		}
	}
	for _, want := range []struct {
		name string
		min  int
	}{{"CREATED", 1}, {"ESTABLISHED", 1}, {"ANNOUNCED", 1}, {"SF_ESTABLISHED", subflowsBefore}, {"SF_PRIO", 1}} {
		if count[want.name] < want.min {
			t.Errorf("events: %d %s, want at least %d", count[want.name], want.name, want.min)
		}
	}
	for _, bad := range []string{"FALLBACK", "MP_FAIL", "SF_JOIN_FAILED", "FASTCLOSE"} {
		if count[bad] != 0 {
			t.Errorf("events: %d %s, want none", count[bad], bad)
		}
	}
	if t.Failed() {
		text := run(t, nil, cli(t), "pcap", "events", file)
		t.Logf("events:\n%s", text.Stdout)
	}
}
