package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/pcap"
	"github.com/mptcpd-go/mptcpd-go/pcap/capture"
)

// pcapCmd is `mptcpd-go pcap SUBCOMMAND`.
func (s *session) pcapCmd(args []string) error {
	if len(args) == 0 {
		return &cmdError{code: exitUsage, msg: "Error: pcap needs a subcommand: capture.\n"}
	}
	switch {
	case matches(args[0], "summary"):
		return s.pcapSummary(args[1:])
	case matches(args[0], "capture"):
		return s.pcapCapture(args[1:])
	}
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: unknown pcap subcommand %q; try \"summary\" or \"capture\".\n", args[0])}
}

// pcapSummary is `pcap summary FILE [-j]`: one block per MPTCP connection,
// then the connections that fell back to TCP.
func (s *session) pcapSummary(args []string) error {
	// FILE comes last; the flags before it.
	if len(args) == 0 || strings.HasPrefix(args[len(args)-1], "-") {
		return &cmdError{code: exitUsage, msg: "Error: pcap summary needs one capture FILE, after the options.\n"}
	}
	path := args[len(args)-1]
	fs := newFlagSet("pcap summary")
	asJSON := fs.Bool("j", false, "print JSON")
	if err := parseFlags(fs, args[:len(args)-1]); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return failure(exitFailure, err)
	}
	defer f.Close()
	r, err := pcap.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return failure(exitFailure, fmt.Errorf("read %s: %w", path, err))
	}
	a := pcap.NewAnalyzer()
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return failure(exitFailure, fmt.Errorf("read %s: %w", path, err))
		}
		a.Packet(p)
	}
	sum := a.Summary()
	if *asJSON || s.opts.json {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return failure(exitFailure, err)
		}
		s.stdout.Write(append(b, '\n'))
		return nil
	}
	w := s.stdout
	for _, c := range sum.Connections {
		fmt.Fprintf(w, "mptcp v%d %s -> %s client token %s key %s server token %s key %s%s\n",
			c.Version, c.Client, c.Server, orDash(c.ClientToken), orDash(c.ClientKey), orDash(c.ServerToken), orDash(c.ServerKey),
			map[bool]string{true: " checksum", false: ""}[c.Checksum])
		for _, sf := range c.Subflows {
			kind := "initial"
			if sf.Join {
				kind = "join hmac " + sf.HMAC
			}
			fmt.Fprintf(w, "  subflow %s -> %s id %d%s %s data %d bytes\n", sf.Src, sf.Dst, sf.AddrID,
				map[bool]string{true: " backup", false: ""}[sf.Backup], kind, sf.DataBytes)
		}
		for _, aa := range c.AddAddr {
			fmt.Fprintf(w, "  add_addr %+v\n", aa)
		}
		for _, ra := range c.RemoveAddr {
			fmt.Fprintf(w, "  remove_addr %+v\n", ra)
		}
		fmt.Fprintf(w, "  reinjections %d (%d bytes) hmac ok %d failed %d unverified %d checksums ok %d failed %d\n",
			c.Reinjections, c.ReinjectedBytes, c.HMACVerified, c.HMACFailures, c.HMACUnverified, c.ChecksumVerified, c.ChecksumFailures)
		if c.Fallback {
			fmt.Fprintf(w, "  fell back to TCP: %s\n", c.FallbackReason)
		}
	}
	for _, fb := range sum.FallbackConnections {
		fmt.Fprintf(w, "fallback %s -> %s: %s\n", fb.Client, fb.Server, fb.Reason)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// pcapCapture is `pcap capture -i IFACE -w FILE [-c N] [--mptcp-only]
// [--snaplen N]`: it records until N packets or SIGINT/SIGTERM, then
// flushes the file.
func (s *session) pcapCapture(args []string) error {
	fs := newFlagSet("pcap capture")
	iface := fs.String("i", "", "interface to capture on")
	file := fs.String("w", "", "file to write: pcapng when it ends in .pcapng, else pcap")
	count := fs.Int("c", 0, "stop after this many packets (0: until interrupted)")
	mptcpOnly := fs.Bool("mptcp-only", false, "keep only TCP segments with an MPTCP option (filtered in the kernel)")
	snaplen := fs.Int("snaplen", capture.DefaultSnaplen, "bytes kept per packet")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *iface == "" || *file == "" {
		return &cmdError{code: exitUsage, msg: "Error: pcap capture needs -i IFACE and -w FILE.\n"}
	}
	if *snaplen <= 0 || *count < 0 {
		return &cmdError{code: exitUsage, msg: "Error: --snaplen must be positive and -c not negative.\n"}
	}
	cfg := capture.Config{Interface: *iface, Snaplen: *snaplen, MPTCPOnly: *mptcpOnly}
	if s.opts.netns != "" {
		path := s.opts.netns
		if !strings.ContainsRune(path, '/') {
			path = filepath.Join("/run/netns", path)
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &cmdError{code: exitFailure, msg: fmt.Sprintf("Error: cannot open network namespace \"%s\": %v.\n", s.opts.netns, err)}
		}
		defer unix.Close(fd)
		cfg.NetNSFD = fd
	}
	src, err := capture.Open(cfg)
	if err != nil {
		return failure(exitFailure, err)
	}
	defer src.Close()
	out, err := capture.Create(*file, src.LinkType(), src.Snaplen(), *iface)
	if err != nil {
		return failure(exitFailure, err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if s.env.StopSignals != nil {
		sigCtx, stop := s.env.StopSignals()
		defer stop()
		context.AfterFunc(sigCtx, cancel)
	}
	n, err := capture.Run(ctx, src, out, *count)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintf(s.env.Stderr, "%d packets captured on %s into %s\n", n, *iface, *file)
	if err != nil && !errors.Is(err, context.Canceled) {
		return failure(exitFailure, err)
	}
	return nil
}
