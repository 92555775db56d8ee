// Command pcap generates a capture of kernel MPTCP traffic for the
// `pcap summary` benchmark (bench/pcap.sh): a bulk transfer over two veth
// paths between two throw-away namespaces, with segmentation offloads
// off so that every TCP segment is its own packet, recorded with
// `mptcpd-go pcap capture -i any` in the server's namespace.
//
// It needs root, iproute2 and ethtool. The namespaces are removed when it
// ends, also on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpd-go/mptcpd-go/bench/internal/nstopo"
)

func main() {
	out := flag.String("w", "/tmp/mptcp-bench.pcap", "capture file to write")
	cliPath := flag.String("cli", "mptcpd-go", "the mptcpd-go binary")
	size := flag.Int64("bytes", 600<<20, "bytes the client sends")
	snaplen := flag.Int("snaplen", 160, "bytes kept per packet (headers and options)")
	mtu := flag.Int("mtu", 1500, "MTU of the veth links")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *out, *cliPath, *size, *snaplen, *mtu); err != nil {
		fmt.Fprintln(os.Stderr, "pcap bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, cliPath string, size int64, snaplen, mtu int) error {
	p, err := nstopo.NewPair(2)
	if err != nil {
		return err
	}
	defer p.Close()
	sh := func(ns *nstopo.NS, name string, args ...string) error {
		o, e, code, err := ns.Run(ctx, name, args...)
		if err != nil || code != 0 {
			return fmt.Errorf("%s %s in %s: exit %d %v: %s%s", name, strings.Join(args, " "), ns.Name, code, err, o, e)
		}
		return nil
	}
	for _, l := range p.Links {
		for _, side := range []struct {
			ns *nstopo.NS
			If string
		}{{p.Client, l.ClientIf}, {p.Server, l.ServerIf}} {
			if err := sh(side.ns, "ip", "link", "set", side.If, "mtu", fmt.Sprint(mtu)); err != nil {
				return err
			}
			// One packet per segment, as on a real wire.
			if err := sh(side.ns, "ethtool", "-K", side.If, "tso", "off", "gso", "off", "gro", "off"); err != nil {
				return err
			}
		}
	}
	for _, ns := range []*nstopo.NS{p.Client, p.Server} {
		if err := sh(ns, "ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2"); err != nil {
			return err
		}
	}
	if err := sh(p.Server, "ip", "mptcp", "endpoint", "add", p.Links[1].ServerV4.String(), "signal"); err != nil {
		return err
	}

	capCmd := exec.CommandContext(ctx, cliPath, "-n", p.Server.Name, "pcap", "capture", "-i", "any",
		"-w", out, "--snaplen", fmt.Sprint(snaplen), "--mptcp-only")
	var capErr strings.Builder
	capCmd.Stdout, capCmd.Stderr = os.Stdout, &capErr
	_ = os.Remove(out)
	if err := capCmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- capCmd.Wait() }()
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		select {
		case err := <-done:
			return fmt.Errorf("pcap capture exited: %v: %s", err, capErr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}

	var ln net.Listener
	if err := p.Server.Do(func() error {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		var err error
		ln, err = lc.Listen(ctx, "tcp", "0.0.0.0:0")
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	var conn net.Conn
	raddr := net.JoinHostPort(p.Links[0].ServerV4.String(), fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	if err := p.Client.Do(func() error {
		d := net.Dialer{Timeout: 10 * time.Second}
		d.SetMultipathTCP(true)
		var err error
		conn, err = d.DialContext(ctx, "tcp", raddr)
		return err
	}); err != nil {
		return err
	}
	start := time.Now()
	buf := make([]byte, 1<<16)
	for sent := int64(0); sent < size; {
		n, err := conn.Write(buf[:min(int64(len(buf)), size-sent)])
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		sent += int64(n)
	}
	conn.Close()
	n := <-got
	fmt.Fprintf(os.Stderr, "transferred %d bytes in %v\n", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // let the capture drain its socket
	_ = capCmd.Process.Signal(os.Interrupt)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("pcap capture: %w: %s", err, capErr.String())
	}
	fmt.Fprint(os.Stderr, capErr.String())
	return nil
}
