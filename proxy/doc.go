// Package proxy carries ordinary TCP connections over the multipath data
// path of package datapath, so that applications gain several paths
// without a kernel that speaks MPTCP.
//
// It has two roles:
//
//   - The client (Client) runs next to the applications. It accepts plain
//     TCP connections on a local address and opens one data-path
//     connection to the server per application connection, over the
//     configured paths (interfaces or source addresses). In transparent
//     mode it takes connections redirected to it by an nftables "redirect"
//     rule and sends along their original destination.
//   - The server (Server) terminates the data path. For each connection it
//     reads the stream header, connects to the default target (To) or to
//     the client's original destination when that is inside the allowed
//     prefixes, and copies bytes both ways.
//
// Every data-path stream starts with a small header (see header.go and
// docs/proxy.md) that says where the bytes go; after it the stream is the
// application's, byte for byte, with half-close carried as DATA_FIN.
package proxy
