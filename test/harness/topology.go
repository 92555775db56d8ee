package harness

import (
	"fmt"
	"net/netip"
	"testing"
)

// MaxLinks is the largest number of links Pair accepts; more paths than
// this are not useful for MPTCP tests and only slow set-up down.
const MaxLinks = 4

// subnetOctet is the second octet of every Pair IPv4 subnet. It can be a
// constant because each Pair has its own namespaces: parallel tests reuse
// the same subnets without clashing.
const subnetOctet = 0

// Topology is two hosts, Client and Server, joined by point-to-point links.
type Topology struct {
	Client *NS
	Server *NS
	// Links[i] is link number i+1.
	Links []Link
}

// Link describes one veth pair of a Topology and the addresses on it.
// Link number i (1-based) uses 10.0.i.0/24 and fd00:i::/64, with host part
// 1 on the client side and 2 on the server side.
type Link struct {
	ClientIf, ServerIf string     // interface names, e.g. "veth1c", "veth1s"
	ClientV4, ServerV4 netip.Addr // 10.0.i.1, 10.0.i.2
	ClientV6, ServerV6 netip.Addr // fd00:i::1, fd00:i::2
	V4Prefix, V6Prefix netip.Prefix
}

// Pair creates two namespaces, "client" and "server" (with unique names,
// see NS.Name), joined by links veth pairs (1..MaxLinks), each with one IPv4
// and one IPv6 (NODAD) address per side as described on Link. Each link
// is its own connected subnet, so no routes are needed. It fails the test
// on error; everything is removed in t.Cleanup.
func Pair(t testing.TB, links int) *Topology {
	t.Helper()
	if links < 1 || links > MaxLinks {
		t.Fatalf("harness: Pair needs 1..%d links, got %d", MaxLinks, links)
	}
	top := &Topology{
		Client: newNS(t, "client"),
		Server: newNS(t, "server"),
	}
	for i := 1; i <= links; i++ {
		l := Link{
			ClientIf: fmt.Sprintf("veth%dc", i),
			ServerIf: fmt.Sprintf("veth%ds", i),
			ClientV4: netip.AddrFrom4([4]byte{10, subnetOctet, byte(i), 1}),
			ServerV4: netip.AddrFrom4([4]byte{10, subnetOctet, byte(i), 2}),
			ClientV6: netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, byte(i), 15: 1}),
			ServerV6: netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, byte(i), 15: 2}),
		}
		l.V4Prefix = netip.PrefixFrom(l.ClientV4, 24).Masked()
		l.V6Prefix = netip.PrefixFrom(l.ClientV6, 64).Masked()
		Veth(t, top.Client, l.ClientIf, top.Server, l.ServerIf)
		top.Client.AddAddr(t, l.ClientIf, netip.PrefixFrom(l.ClientV4, 24).String())
		top.Server.AddAddr(t, l.ServerIf, netip.PrefixFrom(l.ServerV4, 24).String())
		top.Client.AddAddr(t, l.ClientIf, netip.PrefixFrom(l.ClientV6, 64).String())
		top.Server.AddAddr(t, l.ServerIf, netip.PrefixFrom(l.ServerV6, 64).String())
		top.Links = append(top.Links, l)
	}
	return top
}
