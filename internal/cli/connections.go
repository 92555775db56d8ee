package cli

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mptcpd-go/mptcpd-go/pathmgr/diag"
	"golang.org/x/sys/unix"
)

// ConnectionsUsage is the grammar of `mptcpd-go connections`.
const ConnectionsUsage = `       mptcpd-go [ -n NETNS ] connections [ -j ]
`

// ConnectionsJSON is what `connections -j` prints. Its field names are
// stable: scripts may rely on them.
type ConnectionsJSON struct {
	// Connections are the MPTCP connections, listeners excluded.
	Connections []ConnJSON `json:"connections"`
	// Listeners are the local addresses of listening MPTCP sockets.
	Listeners []string `json:"listeners"`
}

// ConnJSON is one MPTCP connection.
type ConnJSON struct {
	// Token is the connection's local token in hex, as monitor prints it
	// and pm commands take it.
	Token  string `json:"token"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	// State is the socket state as ss(8) names it (ESTAB, SYN-SENT, ...).
	State string `json:"state"`
	// Fallback: the connection fell back to plain TCP.
	Fallback bool `json:"fallback"`
	// SubflowCount is len(Subflows).
	SubflowCount int `json:"subflow_count"`
	// The byte counters are absent when the kernel does not report them
	// (before Linux 6.5).
	BytesSent     *uint64       `json:"bytes_sent,omitempty"`
	BytesReceived *uint64       `json:"bytes_received,omitempty"`
	BytesRetrans  *uint64       `json:"bytes_retrans,omitempty"`
	Subflows      []SubflowJSON `json:"subflows"`
}

// SubflowJSON is one subflow (a TCP socket) of a connection.
type SubflowJSON struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
	State  string `json:"state"`
	// Initial: the subflow that opened the connection (MP_CAPABLE);
	// the others joined it (MP_JOIN).
	Initial bool `json:"initial"`
	// Backup: either end asked for the subflow to be used only when no
	// other one works.
	Backup   bool  `json:"backup"`
	LocalID  uint8 `json:"local_id"`
	RemoteID uint8 `json:"remote_id"`
	// Flags are the MPTCP subflow flags as ss(8) prints them.
	Flags string `json:"flags"`
	// RTTus and RTTVarUs are the smoothed round-trip time and its
	// variance in microseconds; absent without tcp_info.
	RTTus    *uint32 `json:"rtt_us,omitempty"`
	RTTVarUs *uint32 `json:"rttvar_us,omitempty"`
}

// connections is `mptcpd-go connections`: the MPTCP sockets of the
// namespace and their subflows, read from the kernel (no daemon needed).
func (s *session) connections(args []string) error {
	fs := newFlagSet("connections")
	jsonOut := fs.Bool("j", s.opts.json, "JSON output")
	if err := fs.Parse(args); err != nil {
		return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: connections: %v\nUsage:\n%s", err, ConnectionsUsage)}
	}
	if fs.NArg() > 0 {
		return &cmdError{code: exitUsage, msg: fmt.Sprintf("Error: connections: unexpected argument %q\nUsage:\n%s", fs.Arg(0), ConnectionsUsage)}
	}
	conns, sfs, err := s.readSockDiag()
	if err != nil {
		return err
	}
	out := groupConnections(conns, sfs)
	if *jsonOut {
		enc := json.NewEncoder(s.stdout)
		if s.opts.pretty {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(out)
	}
	return writeConnections(s.stdout, out)
}

// readSockDiag dumps the MPTCP sockets and the subflows.
func (s *session) readSockDiag() ([]diag.Connection, []diag.Subflow, error) {
	c, err := diag.Dial(&diag.Config{NetNS: s.opts.netns})
	var pe *os.PathError
	if err != nil && s.opts.netns != "" && errors.As(err, &pe) {
		text := pe.Err.Error()
		if errno, ok := pe.Err.(unix.Errno); ok {
			text = strerror(errno)
		}
		return nil, nil, &cmdError{code: exitUsage, err: err,
			msg:   fmt.Sprintf("Error: cannot open network namespace \"%s\": %s.\n", s.opts.netns, text),
			hints: []string{"list the namespaces with \"ip netns list\"; -n takes a name under /run/netns or a path"}}
	}
	if err != nil {
		return nil, nil, failure(exitFailure, fmt.Errorf("list MPTCP connections: %w", err))
	}
	defer c.Close()
	conns, err := c.Connections()
	if err != nil {
		return nil, nil, failure(exitFailure, fmt.Errorf("list MPTCP connections (does this kernel have MPTCP? see /proc/sys/net/mptcp/enabled): %w", err))
	}
	sfs, err := c.Subflows()
	if err != nil {
		return nil, nil, failure(exitFailure, fmt.Errorf("list MPTCP subflows: %w", err))
	}
	return conns, sfs, nil
}

// groupConnections pairs each connection with its subflows by token and
// sorts both for stable output. Subflows of a connection that closed
// between the two dumps are dropped.
func groupConnections(conns []diag.Connection, sfs []diag.Subflow) ConnectionsJSON {
	out := ConnectionsJSON{Connections: []ConnJSON{}, Listeners: []string{}}
	byToken := map[uint32][]diag.Subflow{}
	for _, sf := range sfs {
		byToken[sf.TokenLocal] = append(byToken[sf.TokenLocal], sf)
	}
	for _, c := range conns {
		if c.State == diag.StateListen {
			out.Listeners = append(out.Listeners, addrPortText(c.Local))
			continue
		}
		cj := ConnJSON{Local: addrPortText(c.Local), Remote: addrPortText(c.Remote), State: c.State.String(), Subflows: []SubflowJSON{}}
		if c.Info != nil {
			cj.Token = fmt.Sprintf("%08x", c.Info.Token)
			cj.Fallback = c.Info.Flags&diag.InfoFallback != 0
			if c.Info.HasBytes() {
				sent, recv, retr := c.Info.BytesSent, c.Info.BytesReceived, c.Info.BytesRetrans
				cj.BytesSent, cj.BytesReceived, cj.BytesRetrans = &sent, &recv, &retr
			}
			// A token of 0 is a connection not yet keyed: no subflow
			// can be told to belong to it.
			if c.Info.Token != 0 {
				for _, sf := range byToken[c.Info.Token] {
					cj.Subflows = append(cj.Subflows, subflowJSON(sf))
				}
			}
		}
		slices.SortFunc(cj.Subflows, func(a, b SubflowJSON) int {
			if a.Initial != b.Initial {
				if a.Initial {
					return -1
				}
				return 1
			}
			return cmp.Or(cmp.Compare(a.Local, b.Local), cmp.Compare(a.Remote, b.Remote))
		})
		cj.SubflowCount = len(cj.Subflows)
		out.Connections = append(out.Connections, cj)
	}
	slices.SortFunc(out.Connections, func(a, b ConnJSON) int {
		return cmp.Or(cmp.Compare(a.Local, b.Local), cmp.Compare(a.Remote, b.Remote), cmp.Compare(a.Token, b.Token))
	})
	slices.Sort(out.Listeners)
	out.Listeners = slices.Compact(out.Listeners)
	return out
}

func subflowJSON(sf diag.Subflow) SubflowJSON {
	sj := SubflowJSON{Local: addrPortText(sf.Local), Remote: addrPortText(sf.Remote), State: sf.State.String(),
		Initial: sf.Flags&(diag.FlagMPCapableLocal|diag.FlagMPCapableRemote) != 0, Backup: sf.Backup(),
		LocalID: sf.IDLocal, RemoteID: sf.IDRemote, Flags: sf.Flags.String()}
	if sf.TCP != nil && sf.TCP.Len >= 76 { // tcpi_rtt and tcpi_rttvar
		rtt, rttvar := sf.TCP.RTT, sf.TCP.RTTVar
		sj.RTTus, sj.RTTVarUs = &rtt, &rttvar
	}
	return sj
}

// addrPortText prints an address and port, IPv4-mapped ones as IPv4.
func addrPortText(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "*"
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// writeConnections prints the connections as an aligned table: one line
// per connection, its subflows indented under it.
func writeConnections(w io.Writer, cs ConnectionsJSON) error {
	var b strings.Builder
	if len(cs.Connections) == 0 {
		b.WriteString("no MPTCP connections\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOKEN\tSTATE\tLOCAL\t\tREMOTE\tDETAILS")
		for _, c := range cs.Connections {
			token := c.Token
			if token == "" {
				token = "-"
			}
			details := []string{plural(c.SubflowCount, "subflow")}
			if c.Fallback {
				details = append(details, "fell back to TCP")
			}
			if c.BytesSent != nil {
				details = append(details, "sent "+byteCount(*c.BytesSent), "received "+byteCount(*c.BytesReceived),
					"retransmitted "+byteCount(*c.BytesRetrans))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t->\t%s\t%s\n", token, c.State, c.Local, c.Remote, strings.Join(details, ", "))
			for i, sf := range c.Subflows {
				branch := "├─"
				if i == len(c.Subflows)-1 {
					branch = "└─"
				}
				var tags []string
				if sf.Initial {
					tags = append(tags, "initial")
				} else {
					tags = append(tags, "joined")
				}
				if sf.Backup {
					tags = append(tags, "backup")
				}
				tags = append(tags, fmt.Sprintf("ids %d/%d", sf.LocalID, sf.RemoteID))
				if sf.RTTus != nil {
					tags = append(tags, fmt.Sprintf("rtt %s ± %s", usText(*sf.RTTus), usText(*sf.RTTVarUs)))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t->\t%s\t%s\n", branch, sf.State, sf.Local, sf.Remote, strings.Join(tags, ", "))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(cs.Listeners) > 0 {
		fmt.Fprintf(&b, "listening: %s\n", strings.Join(cs.Listeners, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// byteCount prints bytes with a binary unit, exact below 1 KiB.
func byteCount(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 {
			return fmt.Sprintf("%.1f %s", f, unit)
		}
	}
	return fmt.Sprintf("%.1f PiB", f/1024)
}

// usText prints microseconds as milliseconds.
func usText(us uint32) string {
	return fmt.Sprintf("%.3f ms", float64(us)/1000)
}
