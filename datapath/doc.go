// Package datapath is the pure core of a userspace multipath data path with
// MPTCP semantics, for hosts whose kernel lacks MPTCP: one byte stream is
// carried over several ordinary TCP subflows using a framed protocol.
//
// The protocol is NOT wire-compatible with kernel MPTCP (RFC 8684); it
// borrows its key/token derivation, join authentication, data sequence
// numbering and signalling so that the semantics match. docs/datapath.md
// maps every frame to its RFC 8684 counterpart and lists what differs.
//
// The pure core does no I/O beyond io.Reader/io.Writer framing: keys and
// authentication (keys.go), the frame codec (frame.go), receive-side
// reassembly (Reassembler) and send-side buffering with reinjection
// (SendBuffer). The session layer on top (Conn, Dial, Listener, the
// Scheduler implementations) runs it over real subflows: any net.Conn,
// in production TCP connections.
package datapath
