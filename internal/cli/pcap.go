package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
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
		return &cmdError{code: exitUsage, msg: "Error: pcap needs a subcommand: summary, events or capture.\n"}
	}
	switch {
	case matches(args[0], "summary"):
		return s.pcapSummary(args[1:])
	case matches(args[0], "events"):
		return s.pcapEvents(args[1:])
	case matches(args[0], "capture"):
		return s.pcapCapture(args[1:])
	}
	return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: unknown pcap subcommand %q; try \"summary\", \"events\" or \"capture\".\n", args[0])}
}

// fileArgs parses the boolean flags of `pcap summary|events` and returns
// the one capture FILE, which may come before or after them.
func fileArgs(fs *flag.FlagSet, args []string) (string, error) {
	var flags, files []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
		} else {
			files = append(files, a)
		}
	}
	if len(files) != 1 {
		return "", &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: %s needs exactly one capture FILE.\n", fs.Name())}
	}
	return files[0], parseFlags(fs, flags)
}

// analyze feeds every TCP segment of the capture at path to a.
func analyze(path string, a *pcap.Analyzer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	r, err := pcap.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		a.Packet(p)
	}
}

// pcapSummary is `pcap summary [-j] FILE`: one block per MPTCP connection,
// then the connections that fell back to TCP.
func (s *session) pcapSummary(args []string) error {
	fs := newFlagSet("pcap summary")
	asJSON := fs.Bool("j", false, "print JSON")
	path, err := fileArgs(fs, args)
	if err != nil {
		return err
	}
	a := pcap.NewAnalyzer()
	if err := analyze(path, a); err != nil {
		return failure(exitFailure, err)
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
			echo := ""
			if aa.Echo {
				echo = " echo"
			}
			fmt.Fprintf(w, "  add_addr from %s id %d %s", aa.From, aa.AddrID, aa.Addr)
			if aa.Port != 0 {
				fmt.Fprintf(w, " port %d", aa.Port)
			}
			fmt.Fprintf(w, "%s%s\n", echo, map[bool]string{true: " hmac " + aa.HMAC, false: ""}[aa.HMAC != ""])
		}
		for _, ra := range c.RemoveAddr {
			fmt.Fprintf(w, "  remove_addr from %s ids %v\n", ra.From, ra.AddrIDs)
		}
		for _, r := range c.Resets {
			kind := fmt.Sprintf("MP_TCPRST reason %d (%s)", r.Reason, r.ReasonName)
			if r.Plain {
				kind = "plain RST"
			} else if r.Transient {
				kind += " transient"
			}
			fmt.Fprintf(w, "  reset %s -> %s %s\n", r.Src, r.Dst, kind)
		}
		fmt.Fprintf(w, "  reinjections %d (%d bytes) hmac ok %d failed %d unverified %d checksums ok %d failed %d unverified %d\n",
			c.Reinjections, c.ReinjectedBytes, c.HMACVerified, c.HMACFailures, c.HMACUnverified, c.ChecksumVerified, c.ChecksumFailures, c.ChecksumUnverified)
		if c.MPFail > 0 || c.Fastclose {
			fmt.Fprintf(w, "  mp_fail %d fastclose %v\n", c.MPFail, c.Fastclose)
		}
		if c.Fallback {
			fmt.Fprintf(w, "  fell back to TCP: %s\n", c.FallbackReason)
		}
	}
	for _, fb := range sum.FallbackConnections {
		fmt.Fprintf(w, "fallback %s -> %s: %s\n", fb.Client, fb.Server, fb.Reason)
	}
	return nil
}

// pcapEvents is `pcap events [-j] FILE`: the capture as a timeline of
// MPTCP events in the style of `monitor`, each line prefixed with the
// seconds since the first packet. -j prints a JSON array, one event
// object per line (field names in the pcap package documentation). The
// events are printed as the capture is read, so memory stays bounded.
func (s *session) pcapEvents(args []string) error {
	fs := newFlagSet("pcap events")
	asJSON := fs.Bool("j", false, "print JSON")
	path, err := fileArgs(fs, args)
	if err != nil {
		return err
	}
	js := *asJSON || s.opts.json
	w := s.stdout
	var werr error
	n := 0
	a := pcap.NewAnalyzer()
	a.HandleEvents(func(e pcap.Event) {
		if werr != nil {
			return
		}
		if !js {
			_, werr = fmt.Fprintf(w, "%12.6f %s\n", e.Rel, e)
			return
		}
		b, err := json.Marshal(e)
		if err != nil {
			werr = err
			return
		}
		sep := ",\n"
		if n == 0 {
			sep = "[\n"
		}
		n++
		w.WriteString(sep)
		_, werr = w.Write(b)
	})
	err = analyze(path, a)
	if js {
		if n == 0 {
			w.WriteString("[")
		}
		w.WriteString("\n]\n")
	}
	if err == nil {
		err = werr
	}
	if err != nil {
		return failure(exitFailure, err)
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
	iface := fs.String("i", "", "interface to capture on (\"any\": all of them, Linux cooked v2 headers)")
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
	ctx, cancel := s.stopContext()
	defer cancel()
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
