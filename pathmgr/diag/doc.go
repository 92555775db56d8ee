// Package diag lists MPTCP connections and their subflows through the
// kernel's socket diagnostics (NETLINK_SOCK_DIAG), the interface `ss -M`
// and `ss -tie` use.
//
// Connections are the MPTCP sockets themselves (IPPROTO_MPTCP, 262), with
// the kernel's struct mptcp_info (token, subflow counts, flags). Subflows
// are the TCP sockets that carry the "mptcp" upper-layer protocol; their
// INET_DIAG_ULP_INFO nest names the connection by its local token and
// gives the address ids and the MPTCP_SUBFLOW_FLAG_* bits.
//
// The path manager uses both lists to rebuild its view of every connection
// after it lost events or restarted. Everything is decoded in Go from the
// wire format; no cgo.
package diag
