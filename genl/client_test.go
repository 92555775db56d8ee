package genl

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Header flags of the three kinds of request.
const (
	ackFlags  = netlink.Request | netlink.Acknowledge // commands without a reply
	getFlags  = netlink.Request                       // commands with one reply
	dumpFlags = netlink.Request | netlink.Dump        // dumps
)

// TestClientRequests checks, for every client method, the request it sends
// (command, header flags, attributes decoded back) and how it decodes the
// kernel's reply.
func TestClientRequests(t *testing.T) {
	ep1 := Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1"), Flags: FlagSignal | FlagSubflow}
	ep2 := Endpoint{ID: 2, Addr: netip.MustParseAddr("2001:db8::2"), Port: 8443, Flags: FlagSignal | FlagBackup, Ifindex: 7}
	tests := []struct {
		name string
		// reply answers the request; nil acknowledges it.
		reply []genetlink.Message
		call  func(c *Client) (any, error)
		want  pmRequest
		// wantResult is what call returns besides the error.
		wantResult any
	}{
		{
			name: "AddEndpoint IPv4 with every field",
			call: func(c *Client) (any, error) {
				return nil, c.AddEndpoint(Endpoint{ID: 5, Addr: netip.MustParseAddr("10.0.0.1"), Port: 8080,
					Flags: FlagSignal | FlagBackup, Ifindex: 3})
			},
			want: pmRequest{Cmd: CmdAddAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: with(v4("10.0.0.1"), func(a *addrAttrs) {
				a.ID = ptr[uint8](5)
				a.Port = ptr[uint16](8080)
				a.Flags = ptr(uint32(FlagSignal | FlagBackup))
				a.IfIdx = ptr[int32](3)
			})}},
		},
		{
			name: "AddEndpoint IPv6 leaves zero fields out",
			call: func(c *Client) (any, error) {
				return nil, c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("2001:db8::1")})
			},
			want: pmRequest{Cmd: CmdAddAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: ptr(v6("2001:db8::1"))}},
		},
		{
			name: "AddEndpoint sends an IPv4-mapped address as IPv4",
			call: func(c *Client) (any, error) {
				return nil, c.AddEndpoint(Endpoint{ID: 9, Addr: netip.MustParseAddr("::ffff:192.0.2.1"), Flags: FlagSubflow | FlagFullmesh})
			},
			want: pmRequest{Cmd: CmdAddAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: with(v4("192.0.2.1"), func(a *addrAttrs) {
				a.ID = ptr[uint8](9)
				a.Flags = ptr(uint32(FlagSubflow | FlagFullmesh))
			})}},
		},
		{
			name: "DeleteEndpoint",
			call: func(c *Client) (any, error) { return nil, c.DeleteEndpoint(4) },
			want: pmRequest{Cmd: CmdDelAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: &addrAttrs{ID: ptr[uint8](4)}}},
		},
		{
			name: "DeleteEndpoint id 0 still sends the id",
			call: func(c *Client) (any, error) { return nil, c.DeleteEndpoint(0) },
			want: pmRequest{Cmd: CmdDelAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: &addrAttrs{ID: ptr[uint8](0)}}},
		},
		{
			name: "DeleteEndpointAddr id 0",
			call: func(c *Client) (any, error) {
				return nil, c.DeleteEndpointAddr(0, netip.MustParseAddr("10.0.0.2"))
			},
			want: pmRequest{Cmd: CmdDelAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: with(v4("10.0.0.2"), func(a *addrAttrs) {
				a.ID = ptr[uint8](0)
			})}},
		},
		{
			name: "DeleteEndpointAddr IPv6",
			call: func(c *Client) (any, error) {
				return nil, c.DeleteEndpointAddr(3, netip.MustParseAddr("2001:db8::3"))
			},
			want: pmRequest{Cmd: CmdDelAddr, Flags: ackFlags, Attrs: reqAttrs{Addr: with(v6("2001:db8::3"), func(a *addrAttrs) {
				a.ID = ptr[uint8](3)
			})}},
		},
		{
			name:       "Endpoint",
			reply:      []genetlink.Message{endpointReply(ep2)},
			call:       func(c *Client) (any, error) { return c.Endpoint(2) },
			want:       pmRequest{Cmd: CmdGetAddr, Flags: getFlags, Attrs: reqAttrs{Addr: &addrAttrs{ID: ptr[uint8](2)}}},
			wantResult: ep2,
		},
		{
			name:       "Endpoint id 0 still sends the id",
			reply:      []genetlink.Message{endpointReply(Endpoint{Addr: netip.MustParseAddr("10.9.9.9")})},
			call:       func(c *Client) (any, error) { return c.Endpoint(0) },
			want:       pmRequest{Cmd: CmdGetAddr, Flags: getFlags, Attrs: reqAttrs{Addr: &addrAttrs{ID: ptr[uint8](0)}}},
			wantResult: Endpoint{Addr: netip.MustParseAddr("10.9.9.9")},
		},
		{
			name:       "Endpoints",
			reply:      []genetlink.Message{endpointReply(ep1), endpointReply(ep2)},
			call:       func(c *Client) (any, error) { return c.Endpoints() },
			want:       pmRequest{Cmd: CmdGetAddr, Flags: dumpFlags},
			wantResult: []Endpoint{ep1, ep2},
		},
		{
			name:       "Endpoints empty",
			call:       func(c *Client) (any, error) { return c.Endpoints() },
			want:       pmRequest{Cmd: CmdGetAddr, Flags: dumpFlags},
			wantResult: []Endpoint{},
		},
		{
			name: "FlushEndpoints",
			call: func(c *Client) (any, error) { return nil, c.FlushEndpoints() },
			want: pmRequest{Cmd: CmdFlushAddrs, Flags: ackFlags},
		},
		{
			name: "SetEndpointFlags by id drops the ifindex",
			call: func(c *Client) (any, error) {
				return nil, c.SetEndpointFlags(Endpoint{ID: 3, Ifindex: 9, Flags: FlagSignal}, FlagBackup|FlagFullmesh)
			},
			want: pmRequest{Cmd: CmdSetFlags, Flags: ackFlags, Attrs: reqAttrs{Addr: &addrAttrs{
				ID: ptr[uint8](3), Flags: ptr(uint32(FlagBackup | FlagFullmesh)),
			}}},
		},
		{
			name: "SetEndpointFlags by address and port",
			call: func(c *Client) (any, error) {
				return nil, c.SetEndpointFlags(Endpoint{Addr: netip.MustParseAddr("2001:db8::9"), Port: 10100}, FlagBackup)
			},
			want: pmRequest{Cmd: CmdSetFlags, Flags: ackFlags, Attrs: reqAttrs{Addr: with(v6("2001:db8::9"), func(a *addrAttrs) {
				a.Port = ptr[uint16](10100)
				a.Flags = ptr(uint32(FlagBackup))
			})}},
		},
		{
			name: "SetEndpointFlags clearing every flag",
			call: func(c *Client) (any, error) { return nil, c.SetEndpointFlags(Endpoint{ID: 3}, 0) },
			// The kernel reads the missing flags attribute as 0.
			want: pmRequest{Cmd: CmdSetFlags, Flags: ackFlags, Attrs: reqAttrs{Addr: &addrAttrs{ID: ptr[uint8](3)}}},
		},
		{
			name:       "Limits",
			reply:      []genetlink.Message{limitsReply(Limits{Subflows: 2, AddAddrAccepted: 8})},
			call:       func(c *Client) (any, error) { return c.Limits() },
			want:       pmRequest{Cmd: CmdGetLimits, Flags: getFlags},
			wantResult: Limits{Subflows: 2, AddAddrAccepted: 8},
		},
		{
			name: "SetLimits both",
			call: func(c *Client) (any, error) {
				return nil, c.SetLimits(LimitsUpdate{Subflows: ptr[uint32](4), AddAddrAccepted: ptr[uint32](3)})
			},
			want: pmRequest{Cmd: CmdSetLimits, Flags: ackFlags, Attrs: reqAttrs{Subflows: ptr[uint32](4), RcvAddAddrs: ptr[uint32](3)}},
		},
		{
			name: "SetLimits subflows only",
			call: func(c *Client) (any, error) { return nil, c.SetLimits(LimitsUpdate{Subflows: ptr[uint32](0)}) },
			want: pmRequest{Cmd: CmdSetLimits, Flags: ackFlags, Attrs: reqAttrs{Subflows: ptr[uint32](0)}},
		},
		{
			name: "SetLimits add_addr_accepted only",
			call: func(c *Client) (any, error) { return nil, c.SetLimits(LimitsUpdate{AddAddrAccepted: ptr[uint32](8)}) },
			want: pmRequest{Cmd: CmdSetLimits, Flags: ackFlags, Attrs: reqAttrs{RcvAddAddrs: ptr[uint32](8)}},
		},
		{
			name: "SetLimits nothing",
			call: func(c *Client) (any, error) { return nil, c.SetLimits(LimitsUpdate{}) },
			want: pmRequest{Cmd: CmdSetLimits, Flags: ackFlags},
		},
		{
			name: "Announce adds the signal flag",
			call: func(c *Client) (any, error) {
				return nil, c.Announce(0xdeadbeef, Endpoint{ID: 7, Addr: netip.MustParseAddr("10.0.1.1"), Port: 20000})
			},
			want: pmRequest{Cmd: CmdAnnounce, Flags: ackFlags, Attrs: reqAttrs{Token: ptr[uint32](0xdeadbeef), Addr: with(v4("10.0.1.1"), func(a *addrAttrs) {
				a.ID = ptr[uint8](7)
				a.Port = ptr[uint16](20000)
				a.Flags = ptr(uint32(FlagSignal))
			})}},
		},
		{
			name: "Announce IPv6 keeps other flags",
			call: func(c *Client) (any, error) {
				return nil, c.Announce(1, Endpoint{ID: 8, Addr: netip.MustParseAddr("2001:db8::8"), Flags: FlagBackup, Ifindex: 4})
			},
			want: pmRequest{Cmd: CmdAnnounce, Flags: ackFlags, Attrs: reqAttrs{Token: ptr[uint32](1), Addr: with(v6("2001:db8::8"), func(a *addrAttrs) {
				a.ID = ptr[uint8](8)
				a.Flags = ptr(uint32(FlagSignal | FlagBackup))
				a.IfIdx = ptr[int32](4)
			})}},
		},
		{
			name: "Remove",
			call: func(c *Client) (any, error) { return nil, c.Remove(0x01020304, 7) },
			want: pmRequest{Cmd: CmdRemove, Flags: ackFlags, Attrs: reqAttrs{Token: ptr[uint32](0x01020304), LocID: ptr[uint8](7)}},
		},
		{
			name: "CreateSubflow IPv4",
			call: func(c *Client) (any, error) {
				return nil, c.CreateSubflow(42, Endpoint{ID: 3, Addr: netip.MustParseAddr("10.0.1.1"), Flags: FlagBackup, Ifindex: 2},
					netip.MustParseAddrPort("10.0.2.2:443"))
			},
			want: pmRequest{Cmd: CmdSubflowCreate, Flags: ackFlags, Attrs: reqAttrs{
				Token: ptr[uint32](42),
				Addr: with(v4("10.0.1.1"), func(a *addrAttrs) {
					a.ID = ptr[uint8](3)
					a.Flags = ptr(uint32(FlagBackup))
					a.IfIdx = ptr[int32](2)
				}),
				AddrRemote: with(v4("10.0.2.2"), func(a *addrAttrs) { a.Port = ptr[uint16](443) }),
			}},
		},
		{
			name: "CreateSubflow IPv6",
			call: func(c *Client) (any, error) {
				return nil, c.CreateSubflow(43, Endpoint{ID: 4, Addr: netip.MustParseAddr("2001:db8::1")},
					netip.MustParseAddrPort("[2001:db8::2]:8080"))
			},
			want: pmRequest{Cmd: CmdSubflowCreate, Flags: ackFlags, Attrs: reqAttrs{
				Token:      ptr[uint32](43),
				Addr:       with(v6("2001:db8::1"), func(a *addrAttrs) { a.ID = ptr[uint8](4) }),
				AddrRemote: with(v6("2001:db8::2"), func(a *addrAttrs) { a.Port = ptr[uint16](8080) }),
			}},
		},
		{
			name: "DestroySubflow",
			call: func(c *Client) (any, error) {
				return nil, c.DestroySubflow(44, netip.MustParseAddrPort("10.0.1.1:40000"), netip.MustParseAddrPort("10.0.2.2:443"))
			},
			want: pmRequest{Cmd: CmdSubflowDestroy, Flags: ackFlags, Attrs: reqAttrs{
				Token:      ptr[uint32](44),
				Addr:       with(v4("10.0.1.1"), func(a *addrAttrs) { a.Port = ptr[uint16](40000) }),
				AddrRemote: with(v4("10.0.2.2"), func(a *addrAttrs) { a.Port = ptr[uint16](443) }),
			}},
		},
		{
			name: "SetSubflowFlags with remote",
			call: func(c *Client) (any, error) {
				return nil, c.SetSubflowFlags(45, Endpoint{ID: 2, Addr: netip.MustParseAddr("10.0.1.1"), Port: 40001},
					netip.MustParseAddrPort("10.0.2.2:443"), FlagBackup)
			},
			want: pmRequest{Cmd: CmdSetFlags, Flags: ackFlags, Attrs: reqAttrs{
				Token: ptr[uint32](45),
				Addr: with(v4("10.0.1.1"), func(a *addrAttrs) {
					a.ID = ptr[uint8](2)
					a.Port = ptr[uint16](40001)
					a.Flags = ptr(uint32(FlagBackup))
				}),
				AddrRemote: with(v4("10.0.2.2"), func(a *addrAttrs) { a.Port = ptr[uint16](443) }),
			}},
		},
		{
			name: "SetSubflowFlags without remote",
			call: func(c *Client) (any, error) {
				return nil, c.SetSubflowFlags(46, Endpoint{Addr: netip.MustParseAddr("2001:db8::1")}, netip.AddrPort{}, FlagBackup)
			},
			want: pmRequest{Cmd: CmdSetFlags, Flags: ackFlags, Attrs: reqAttrs{
				Token: ptr[uint32](46),
				Addr:  with(v6("2001:db8::1"), func(a *addrAttrs) { a.Flags = ptr(uint32(FlagBackup)) }),
			}},
		},
		{
			name:  "ConnEndpoint",
			reply: []genetlink.Message{endpointReply(Endpoint{ID: 5, Addr: netip.MustParseAddr("10.0.3.3"), Flags: FlagSignal})},
			call:  func(c *Client) (any, error) { return c.ConnEndpoint(0xcafe, 5) },
			want: pmRequest{Cmd: CmdGetAddr, Flags: getFlags, Attrs: reqAttrs{
				Token: ptr[uint32](0xcafe), Addr: &addrAttrs{ID: ptr[uint8](5)},
			}},
			wantResult: Endpoint{ID: 5, Addr: netip.MustParseAddr("10.0.3.3"), Flags: FlagSignal},
		},
		{
			name:       "ConnEndpoints",
			reply:      []genetlink.Message{endpointReply(ep1), endpointReply(ep2)},
			call:       func(c *Client) (any, error) { return c.ConnEndpoints(0xcafe) },
			want:       pmRequest{Cmd: CmdGetAddr, Flags: dumpFlags, Attrs: reqAttrs{Token: ptr[uint32](0xcafe)}},
			wantResult: []Endpoint{ep1, ep2},
		},
	}
	for _, tt := range tests {
		// Run each case on a genltest connection and on one framed like
		// the kernel (multi-part dumps with NLMSG_DONE).
		for _, mode := range []string{"genltest", "raw"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				k := newFakeKernel(t, func(pmRequest) ([]genetlink.Message, error) { return tt.reply, nil })
				c := k.dial()
				if mode == "raw" {
					c = k.dialRaw()
				}
				got, err := tt.call(c)
				if err != nil {
					t.Fatalf("call: %v", err)
				}
				if diff := cmp.Diff([]pmRequest{tt.want}, k.reqs); diff != "" {
					t.Errorf("requests (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantResult, got, cmpNetip); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// with returns a pointer to a copy of a changed by f.
func with(a addrAttrs, f func(*addrAttrs)) *addrAttrs {
	f(&a)
	return &a
}

// TestAddEndpointNeedsAddress checks that an endpoint without an address is
// rejected before anything is sent.
func TestAddEndpointNeedsAddress(t *testing.T) {
	k := newFakeKernel(t, nil)
	err := k.dial().AddEndpoint(Endpoint{ID: 1, Flags: FlagSignal})
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("AddEndpoint without address: got %v, want an error matching EINVAL", err)
	}
	if len(k.reqs) != 0 {
		t.Errorf("AddEndpoint without address sent %d requests, want none", len(k.reqs))
	}
}

// TestClientBadReplies checks that replies of the wrong number or shape are
// errors, not zero values.
func TestClientBadReplies(t *testing.T) {
	// An address nest whose only attribute claims 12 bytes but has 8.
	badNest := genetlink.Message{Data: nlAttr(attrAddr|netlink.Nested,
		withLen(nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...), 12)...)}
	noAddr := genetlink.Message{Data: nlAttr(attrToken, nlU32(1)...)}
	shortAddr := genetlink.Message{Data: nlAttr(attrAddr|netlink.Nested, nlAttrs(
		nlAttr(addrAttrFamily, nlU16(unix.AF_INET)...),
		nlAttr(addrAttrAddr4, 10, 0, 0),
	)...)}
	badLimits := genetlink.Message{Data: nlAttr(attrSubflows, 1, 0)}
	ok := endpointReply(Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1")})

	tests := []struct {
		name    string
		reply   []genetlink.Message
		call    func(c *Client) error
		wantErr string
	}{
		{"Endpoint two replies", []genetlink.Message{ok, ok}, func(c *Client) error { _, err := c.Endpoint(1); return err }, "got 2 replies, want 1"},
		{"Endpoint no address", []genetlink.Message{noAddr}, func(c *Client) error { _, err := c.Endpoint(1); return err }, "no address attribute"},
		{"Endpoint bad nest", []genetlink.Message{badNest}, func(c *Client) error { _, err := c.Endpoint(1); return err }, "decode reply"},
		{"Endpoint short address", []genetlink.Message{shortAddr}, func(c *Client) error { _, err := c.Endpoint(1); return err }, "3 bytes, want 4"},
		{"ConnEndpoint bad nest", []genetlink.Message{badNest}, func(c *Client) error { _, err := c.ConnEndpoint(1, 1); return err }, "decode reply"},
		{"Endpoints one bad reply", []genetlink.Message{ok, badNest}, func(c *Client) error { _, err := c.Endpoints(); return err }, "dump endpoints: decode reply"},
		{"ConnEndpoints one bad reply", []genetlink.Message{shortAddr, ok}, func(c *Client) error { _, err := c.ConnEndpoints(1); return err }, "decode reply"},
		{"Limits no reply", nil, func(c *Client) error { _, err := c.Limits(); return err }, "got 0 replies, want 1"},
		{"Limits short attribute", []genetlink.Message{badLimits}, func(c *Client) error { _, err := c.Limits(); return err }, "decode reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeKernel(t, func(pmRequest) ([]genetlink.Message, error) { return tt.reply, nil })
			err := tt.call(k.dial())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// sentinels are the exported errors a kernel error can be classified as.
var sentinels = []error{ErrExists, ErrNotFound, ErrIDInUse, ErrTooManyEndpoints, ErrNotSupported, ErrPermission}

// TestClientKernelErrors checks that each errno the kernel answers with maps
// to the right sentinel, still matches the errno, and keeps the kernel's
// extended-ack message. Replies without a message go through genltest;
// those with one, and every dump error, go through dialRaw (see
// kernelError).
func TestClientKernelErrors(t *testing.T) {
	tests := []struct {
		name   string
		call   func(c *Client) error
		errno  unix.Errno
		extack string
		// want is the sentinel the error must match; nil: none of them.
		want error
		// dump is set for dumps, whose errors need dialRaw.
		dump bool
	}{
		{"add existing", addV4, unix.EEXIST, "", ErrExists, false},
		{"delete unknown", func(c *Client) error { return c.DeleteEndpoint(9) }, unix.ENOENT, "", ErrNotFound, false},
		{"add with id in use", addV4, unix.EBUSY, "", ErrIDInUse, false},
		{"EBUSY elsewhere", func(c *Client) error { return c.FlushEndpoints() }, unix.EBUSY, "", nil, false},
		{"add ninth endpoint", addV4, unix.ERANGE, "", ErrTooManyEndpoints, false},
		{"ERANGE elsewhere", func(c *Client) error { return c.SetLimits(LimitsUpdate{Subflows: ptr[uint32](9)}) }, unix.ERANGE, "", nil, false},
		{"announce unsupported", func(c *Client) error { return c.Announce(1, Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1")}) }, unix.EOPNOTSUPP, "", ErrNotSupported, false},
		{"flush without CAP_NET_ADMIN", func(c *Client) error { return c.FlushEndpoints() }, unix.EPERM, "", ErrPermission, false},
		{"EACCES", func(c *Client) error { return c.FlushEndpoints() }, unix.EACCES, "", ErrPermission, false},
		{"EINVAL without message", addV4, unix.EINVAL, "", nil, false},
		{"EINVAL address not found", func(c *Client) error { return c.DeleteEndpoint(9) }, unix.EINVAL, "address not found", ErrNotFound, false},
		{"EINVAL invalid token", func(c *Client) error { return c.Remove(0xbad, 1) }, unix.EINVAL, "invalid token", ErrNotFound, false},
		{"EINVAL other message", addV4, unix.EINVAL, "missing family", nil, false},
		{"EINVAL limit too high", func(c *Client) error { return c.SetLimits(LimitsUpdate{Subflows: ptr[uint32](9)}) }, unix.EINVAL, "limit greater than maximum (8)", nil, false},
		// The texts Linux 6.18 sends with EEXIST, EBUSY and ERANGE on add:
		// the errno decides, not the words.
		{"EEXIST with message", addV4, unix.EEXIST, "too many addresses or duplicate one: -17", ErrExists, false},
		{"EBUSY with message", addV4, unix.EBUSY, "too many addresses or duplicate one: -16", ErrIDInUse, false},
		{"ERANGE with message", addV4, unix.ERANGE, "too many addresses or duplicate one: -34", ErrTooManyEndpoints, false},
		{"dump without CAP_NET_ADMIN", func(c *Client) error { _, err := c.Endpoints(); return err }, unix.EPERM, "", ErrPermission, true},
		{"dump of unknown token", func(c *Client) error { _, err := c.ConnEndpoints(0xbad); return err }, unix.EINVAL, "invalid token", ErrNotFound, true},
		{"get limits without message", func(c *Client) error { _, err := c.Limits(); return err }, unix.EOPNOTSUPP, "", ErrNotSupported, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k *fakeKernel
			var c *Client
			if tt.extack == "" && !tt.dump {
				k = newFakeKernel(t, func(pmRequest) ([]genetlink.Message, error) { return nil, genltest.Error(int(tt.errno)) })
				c = k.dial()
			} else {
				k = newFakeKernel(t, func(pmRequest) ([]genetlink.Message, error) {
					return nil, &kernelError{errno: tt.errno, msg: tt.extack}
				})
				c = k.dialRaw()
			}
			err := tt.call(c)
			checkKernelError(t, err, tt.errno, tt.extack, tt.want)
			if len(k.reqs) != 1 {
				t.Errorf("sent %d requests, want 1", len(k.reqs))
			}
		})
	}
}

func addV4(c *Client) error {
	return c.AddEndpoint(Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1"), Flags: FlagSignal})
}

// checkKernelError checks that err is an *Error matching errno and exactly
// the sentinel want (nil: none), with extack in its text.
func checkKernelError(t *testing.T, err error, errno unix.Errno, extack string, want error) {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	if !errors.Is(err, errno) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, errno)
	}
	for _, s := range sentinels {
		if got, w := errors.Is(err, s), s == want; got != w {
			t.Errorf("errors.Is(%v, %q) = %t, want %t", err, s, got, w)
		}
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Errno != errno || e.Message != extack || e.Kind != want {
		t.Errorf("got Errno %v, Message %q, Kind %v; want %v, %q, %v", e.Errno, e.Message, e.Kind, errno, extack, want)
	}
	if !strings.Contains(err.Error(), extack) || !strings.Contains(err.Error(), errno.Error()) {
		t.Errorf("error text %q lacks the kernel's message %q or errno text %q", err, extack, errno.Error())
	}
}

// TestFeatureDetection checks what the client makes of the family's
// registered operations.
func TestFeatureDetection(t *testing.T) {
	userspaceCalls := map[string]func(c *Client) error{
		"Announce": func(c *Client) error { return c.Announce(1, Endpoint{ID: 1, Addr: netip.MustParseAddr("10.0.0.1")}) },
		"Remove":   func(c *Client) error { return c.Remove(1, 1) },
		"CreateSubflow": func(c *Client) error {
			return c.CreateSubflow(1, Endpoint{Addr: netip.MustParseAddr("10.0.0.1")}, netip.MustParseAddrPort("10.0.0.2:1"))
		},
		"DestroySubflow": func(c *Client) error {
			return c.DestroySubflow(1, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:1"))
		},
	}

	t.Run("in-kernel path manager only", func(t *testing.T) {
		k := newFakeKernel(t, nil)
		k.fam.ops = inKernelCommands
		c := k.dial()
		if c.SupportsUserspacePM() {
			t.Error("SupportsUserspacePM() = true, want false")
		}
		if diff := cmp.Diff(inKernelCommands, c.Commands()); diff != "" {
			t.Errorf("Commands() (-want +got):\n%s", diff)
		}
		for _, cmd := range allCommands {
			if got, want := c.Supports(cmd), slices.Contains(inKernelCommands, cmd); got != want {
				t.Errorf("Supports(%s) = %t, want %t", cmd, got, want)
			}
		}
		for name, call := range userspaceCalls {
			err := call(c)
			if !errors.Is(err, ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) {
				t.Errorf("%s: got %v, want an error matching ErrNotSupported and EOPNOTSUPP", name, err)
			}
		}
		if len(k.reqs) != 0 {
			t.Errorf("unsupported calls sent %d requests, want none: %+v", len(k.reqs), k.reqs)
		}
		// The in-kernel commands still work.
		if err := c.FlushEndpoints(); err != nil {
			t.Errorf("FlushEndpoints: %v", err)
		}
		if len(k.reqs) != 1 {
			t.Errorf("FlushEndpoints sent %d requests, want 1", len(k.reqs))
		}
	})

	t.Run("userspace path manager", func(t *testing.T) {
		k := newFakeKernel(t, nil)
		c := k.dial()
		if !c.SupportsUserspacePM() {
			t.Error("SupportsUserspacePM() = false, want true")
		}
		if diff := cmp.Diff(allCommands, c.Commands()); diff != "" {
			t.Errorf("Commands() (-want +got):\n%s", diff)
		}
		for name, call := range userspaceCalls {
			if err := call(c); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if len(k.reqs) != len(userspaceCalls) {
			t.Errorf("sent %d requests, want %d", len(k.reqs), len(userspaceCalls))
		}
	})

	t.Run("no operations reported", func(t *testing.T) {
		// A controller that reports no operations says nothing about
		// support; requests are sent and the kernel decides.
		k := newFakeKernel(t, nil)
		k.fam.ops = nil
		c := k.dial()
		if c.SupportsUserspacePM() {
			t.Error("SupportsUserspacePM() = true, want false")
		}
		if err := c.Remove(1, 1); err != nil {
			t.Errorf("Remove: %v", err)
		}
		if len(k.reqs) != 1 {
			t.Errorf("sent %d requests, want 1", len(k.reqs))
		}
	})

	t.Run("family without events group", func(t *testing.T) {
		k := newFakeKernel(t, nil)
		delete(k.fam.groups, eventGroupName)
		_, err := k.dial().Subscribe(nil)
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("Subscribe: got %v, want an error matching ErrNotSupported", err)
		}
	})
}

// TestResolveFamily checks the family lookup through the controller.
func TestResolveFamily(t *testing.T) {
	t.Run("reply decoded", func(t *testing.T) {
		k := newFakeKernel(t, nil)
		c := k.dial()
		want := family{
			id:      fakeFamilyID,
			version: familyVersion,
			groups:  map[string]uint32{"mptcp_pm_cmds": fakeCmdGroupID, eventGroupName: fakeEventGroupID},
			ops:     map[Command]bool{},
		}
		for _, cmd := range allCommands {
			want.ops[cmd] = true
		}
		if diff := cmp.Diff(want, c.fam, cmp.AllowUnexported(family{})); diff != "" {
			t.Errorf("family (-want +got):\n%s", diff)
		}
	})

	tests := []struct {
		name     string
		errno    unix.Errno
		wantMiss bool
	}{
		{"missing family", unix.ENOENT, true},
		{"permission denied", unix.EPERM, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeKernel(t, nil)
			k.famErr = tt.errno
			c, err := newClient(genltest.Dial(k.serve))
			if err == nil {
				c.Close()
				t.Fatal("newClient succeeded, want an error")
			}
			if got := errors.Is(err, ErrMPTCPUnavailable); got != tt.wantMiss {
				t.Errorf("errors.Is(%v, ErrMPTCPUnavailable) = %t, want %t", err, got, tt.wantMiss)
			}
			if !tt.wantMiss && !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.errno)
			}
		})
	}

	t.Run("reply without family id", func(t *testing.T) {
		conn := genltest.Dial(func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return []genetlink.Message{{Data: nlAttr(unix.CTRL_ATTR_FAMILY_NAME, []byte("mptcp_pm\x00")...)}}, nil
		})
		if c, err := newClient(conn); err == nil {
			c.Close()
			t.Error("newClient succeeded, want an error")
		}
	})
}

// TestOpenNetNS checks how a Config selects the namespace.
func TestOpenNetNS(t *testing.T) {
	fd, owns, err := openNetNS(&Config{})
	if fd != -1 || owns || err != nil {
		t.Errorf("zero Config: got (%d, %t, %v), want (-1, false, nil)", fd, owns, err)
	}
	fd, owns, err = openNetNS(&Config{NetNS: "ignored", NetNSFD: 42})
	if fd != 42 || owns || err != nil {
		t.Errorf("NetNSFD: got (%d, %t, %v), want (42, false, nil)", fd, owns, err)
	}
	_, _, err = openNetNS(&Config{NetNS: "mptcpd-go-test-no-such-namespace"})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "/run/netns/mptcpd-go-test-no-such-namespace") {
		t.Errorf("missing named namespace: got %v, want ENOENT naming /run/netns/...", err)
	}
	fd, owns, err = openNetNS(&Config{NetNS: "/proc/self/ns/net"})
	if err != nil || !owns || fd < 0 {
		t.Fatalf("namespace path: got (%d, %t, %v), want an owned fd", fd, owns, err)
	}
	unix.Close(fd)
}
