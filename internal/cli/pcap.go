package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/pcap/capture"
)

// pcapCmd is `mptcpd-go pcap SUBCOMMAND`.
func (s *session) pcapCmd(args []string) error {
	if len(args) == 0 {
		return &cmdError{code: exitUsage, msg: "Error: pcap needs a subcommand: capture.\n"}
	}
	switch {
	case matches(args[0], "capture"):
		return s.pcapCapture(args[1:])
	}
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: unknown pcap subcommand %q; try \"capture\".\n", args[0])}
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
