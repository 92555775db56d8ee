package daemon

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpd-go/mptcpd-go/endpoints"
	"github.com/mptcpd-go/mptcpd-go/genl"
	"github.com/mptcpd-go/mptcpd-go/internal/metrics"
)

// TestEndpointCounts: endpoints are counted by the interface's current
// name, the recorded one when it is gone, and "" when bound to none.
func TestEndpointCounts(t *testing.T) {
	snap := endpoints.Snapshot{Links: []endpoints.Link{link(2, "eth0"), link(3, "wlan-renamed")}}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		st   endpoints.Status
		want []metrics.EndpointCount
	}{
		{name: "none", want: []metrics.EndpointCount{}},
		{
			name: "owned and foreign",
			st: endpoints.Status{
				Owned: []endpoints.OwnedEndpoint{
					{Addr: a("10.0.0.1"), Ifindex: 2, Iface: "eth0"},
					{Addr: a("fd00::1"), Ifindex: 2, Iface: "eth0"},
					{Addr: a("10.0.1.1"), Ifindex: 3, Iface: "wlan0"},
					{Addr: a("10.0.9.1"), Ifindex: 9, Iface: "gone0"},
				},
				Report: endpoints.Report{Foreign: []endpoints.Foreign{
					{Endpoint: genl.Endpoint{Addr: a("10.0.0.7"), Ifindex: 2}},
					{Endpoint: genl.Endpoint{Addr: a("192.0.2.1")}},
				}},
			},
			want: []metrics.EndpointCount{
				{Iface: "", Foreign: 1},
				{Iface: "eth0", Owned: 2, Foreign: 1},
				{Iface: "gone0", Owned: 1},
				{Iface: "wlan-renamed", Owned: 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, endpointCounts(tc.st, snap)); diff != "" {
				t.Errorf("endpointCounts (-want +got):\n%s", diff)
			}
		})
	}
}
