package cli

// Usage is the command grammar, printed by "mptcpd-go help". The endpoint,
// limits and monitor commands are iproute2's "ip mptcp" ones; pm drives the
// userspace path manager (Linux 5.19+; "pm show" needs 6.7+).
const Usage = `Usage: mptcpd-go [ OPTIONS ] COMMAND
       mptcpd-go [ -force ] -batch FILE
COMMAND := endpoint add ADDRESS [ dev NAME ] [ id ID ]
                        [ port NR ] [ FLAG-LIST ]
         | endpoint delete id ID [ ADDRESS ]
         | endpoint change [ id ID ] [ ADDRESS ] [ port NR ] CHANGE-OPT
         | endpoint show [ id ID ]
         | endpoint flush
         | limits set [ subflows NR ] [ add_addr_accepted NR ]
         | limits show
         | monitor [ --color[=WHEN] ]
         | pm announce ADDRESS id ID [ port NR ] [ dev NAME ] token TOKEN
         | pm remove id ID token TOKEN
         | pm subflow create ADDRESS [ id ID ] [ port NR ] [ dev NAME ] [ backup ]
                             remote ADDRESS rport NR token TOKEN
         | pm subflow destroy ADDRESS port NR remote ADDRESS rport NR token TOKEN
         | pm set ADDRESS [ port NR ] backup|nobackup [ remote ADDRESS rport NR ]
                  token TOKEN
         | pm show token TOKEN [ id ID ]
         | daemon [ --config PATH ]
         | status [ -j ] [ --color[=WHEN] ] [ --socket PATH | --config PATH ]
         | reload [ --socket PATH | --config PATH ]
         | policy check [ --config PATH ]
         | pcap summary [ -j ] FILE
         | pcap events [ -j ] FILE
         | pcap capture -i IFACE|any -w FILE [ -c N ] [ --mptcp-only ]
                        [ --snaplen N ]
         | proxy server --listen ADDR [ --to HOST:PORT ] [ --announce ADDR ]...
                        [ --allow PREFIX ]... [ --psk-file FILE ]
         | proxy client --listen ADDR --server HOST:PORT [ --via IFACE|ADDR ]...
                        [ --backup IFACE|ADDR ]... [ --config FILE ]
                        [ --psk-file FILE ] [ --transparent ]
         | completion bash|zsh
         | connections [ -j ]
         | help [ COMMAND [ SUBCOMMAND ] ]
FLAG-LIST := [ FLAG-LIST ] FLAG
FLAG := [ signal | subflow | laminar | backup | fullmesh ]
CHANGE-OPT := [ backup | nobackup | fullmesh | nofullmesh ]
TOKEN := a connection token in hex, as monitor prints it (0x optional)
OPTIONS := { -n[etns] NAME | -j[son] | -p[retty] | -t[imestamp] | -ts[hort] |
             -b[atch] FILE | -force | -rc[vbuf] SIZE | -V[ersion] | -h[elp] }

mptcpd-go manages Linux Multipath TCP: ip mptcp's commands, a policy daemon
that keeps the kernel's endpoints and limits, an MPTCP proxy and captures.
"help" prints this on stderr with status 255, as "ip mptcp help" does;
-h and --help print it on stdout and succeed. "COMMAND --help" (and "help
COMMAND" for commands that are not ip's) prints a command's description,
options and examples; mptcpd-go(8) and mptcpd-go.toml(5) have them all.
Commands, subcommands and keywords may be abbreviated as with ip
("endpoint add" is "e a"). Bare "endpoint" and "limits" show. Output is
byte for byte that of iproute2's "ip mptcp", except that "-j limits" prints
a JSON object, {"add_addr_accepted":N,"subflows":N}, where ip prints text.
-n runs in the named network namespace (under /run/netns, or a path).
-batch runs one command per line of FILE ("-" for standard input) over one
netlink socket, skipping blank lines and # comments; it stops at the first
failure ("Command failed FILE:LINE") unless -force is given.
Exit status, as ip's: 0 success, 1 bad address, MPTCP unavailable or a
failed batch, 2 refused by the kernel, 255 usage error or unknown namespace.
Examples:
  mptcpd-go endpoint add 192.0.2.10 dev eth1 subflow
  mptcpd-go limits set subflows 4 add_addr_accepted 4
  mptcpd-go -t monitor
  mptcpd-go policy check && systemctl enable --now mptcpd-go
  mptcpd-go status
`
