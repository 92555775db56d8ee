package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mptcpd-go/mptcpd-go/test/harness"
)

// pcapPacket is one record of a classic pcap file.
type pcapPacket struct{ data []byte }

// readPcap reads a nanosecond-resolution, little-endian pcap file as
// written by "pcap capture".
func readPcap(t *testing.T, path string) (linkType uint32, pkts []pcapPacket) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b23c4d {
		t.Fatalf("%s: not a nanosecond pcap file (%d bytes)", path, len(b))
	}
	linkType = le.Uint32(b[20:])
	b = b[24:]
	for len(b) > 0 {
		if len(b) < 16 {
			t.Fatalf("%s: %d bytes left, a truncated record", path, len(b))
		}
		n := int(le.Uint32(b[8:]))
		if len(b) < 16+n {
			t.Fatalf("%s: record of %d bytes, %d left", path, n, len(b)-16)
		}
		pkts = append(pkts, pcapPacket{data: b[16 : 16+n]})
		b = b[16+n:]
	}
	return linkType, pkts
}

// tcpOf returns the ports and whether an Ethernet/IPv4 frame is TCP with
// an MPTCP option.
func tcpOf(frame []byte) (sport, dport uint16, mptcp, ok bool) {
	if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return 0, 0, false, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	if ip[9] != 6 || len(ip) < ihl+20 {
		return 0, 0, false, false
	}
	tcp := ip[ihl:]
	hl := int(tcp[12]>>4) * 4
	if len(tcp) < hl {
		return 0, 0, false, false
	}
	for o := tcp[20:hl]; len(o) > 0; {
		switch {
		case o[0] == 0:
			o = nil
		case o[0] == 1:
			o = o[1:]
		case len(o) < 2 || o[1] < 2 || int(o[1]) > len(o):
			o = nil
		default:
			if o[0] == 30 {
				mptcp = true
			}
			o = o[o[1]:]
		}
	}
	return binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:]), mptcp, true
}

// TestPcapCaptureMPTCPOnly: "pcap capture --mptcp-only" in a namespace
// records the MPTCP connection's segments and none of a plain TCP
// connection on the same link, and stops by itself after -c packets.
func TestPcapCaptureMPTCPOnly(t *testing.T) {
	harness.RequireKernel(t)
	t.Parallel()
	top := harness.Pair(t, 1)
	l1 := top.Links[0]
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	// A plain TCP listener on the server, next to the MPTCP one.
	var plain net.Listener
	if err := top.Server.Do(func() error {
		lc := net.ListenConfig{}
		lc.SetMultipathTCP(false)
		var err error
		plain, err = lc.Listen(ctx, "tcp", l1.ServerV4.String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	mp := top.Server.ListenMPTCP(t, l1.ServerV4.String()+":0")
	go func() {
		for {
			c, err := mp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	plainPort := uint16(plain.Addr().(*net.TCPAddr).Port)
	mpPort := uint16(mp.Addr().(*net.TCPAddr).Port)

	const want = 6
	file := filepath.Join(t.TempDir(), "mptcp.pcap")
	cmd := exec.CommandContext(ctx, cli(t), "-n", top.Client.Name, "pcap", "capture", "-i", l1.ClientIf,
		"-w", file, "-c", "6", "--mptcp-only")
	var out bytes.Buffer // read only after Wait
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Connect both ways until the capture has its packets: it may start
	// after the first connections.
	dialPlain := func() {
		_ = top.Client.Do(func() error {
			d := net.Dialer{Timeout: time.Second}
			d.SetMultipathTCP(false)
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(l1.ServerV4.String(), strconv.Itoa(int(plainPort))))
			if err == nil {
				c.Close()
			}
			return nil
		})
	}
	var err error
loop:
	for {
		dialPlain()
		if c, derr := top.Client.DialMPTCP(ctx, t, "", net.JoinHostPort(l1.ServerV4.String(), strconv.Itoa(int(mpPort)))); derr == nil {
			c.Close()
		}
		dialPlain()
		select {
		case err = <-exited:
			break loop
		case <-ctx.Done():
			<-exited
			t.Fatalf("pcap capture -c %d did not stop; output:\n%s", want, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatalf("pcap capture: %v; output:\n%s", err, out.String())
	}
	lt, pkts := readPcap(t, file)
	if lt != 1 {
		t.Errorf("link type %d, want 1 (Ethernet)", lt)
	}
	if len(pkts) != want {
		t.Errorf("%d packets in the file, want %d", len(pkts), want)
	}
	for i, p := range pkts {
		sport, dport, mptcp, ok := tcpOf(p.data)
		switch {
		case !ok:
			t.Errorf("packet %d is not IPv4 TCP: % x", i, p.data[:min(len(p.data), 40)])
		case !mptcp:
			t.Errorf("packet %d (%d -> %d) has no MPTCP option", i, sport, dport)
		case sport == plainPort || dport == plainPort:
			t.Errorf("packet %d belongs to the plain TCP connection", i)
		}
	}

	// The summary of that file: the MPTCP connection to the server's
	// port, with its client's key and token once the handshake is in.
	var sum struct {
		Connections []struct {
			Server      string `json:"server"`
			ClientToken string `json:"client_token"`
			Subflows    []struct {
				Src, Dst string
			} `json:"subflows"`
		} `json:"connections"`
		Fallback []json.RawMessage `json:"fallback_connections"`
	}
	r := run(t, nil, cli(t), "pcap", "summary", "-j", file)
	if r.Code != exitOK {
		t.Fatalf("pcap summary -j: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &sum); err != nil {
		t.Fatalf("pcap summary -j printed no JSON (%v):\n%s", err, r.Stdout)
	}
	server := net.JoinHostPort(l1.ServerV4.String(), strconv.Itoa(int(mpPort)))
	if len(sum.Connections) == 0 {
		t.Fatalf("no MPTCP connection in the summary:\n%s", r.Stdout)
	}
	for _, c := range sum.Connections {
		if c.Server != server || len(c.ClientToken) != 8 || len(c.Subflows) != 1 {
			t.Errorf("connection %+v: want server %s, an 8-digit client token, one subflow", c, server)
		}
	}
	if len(sum.Fallback) != 0 {
		t.Errorf("fallback connections in an MPTCP-only capture: %s", sum.Fallback)
	}
}
