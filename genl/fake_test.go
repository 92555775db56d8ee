package genl

// This file holds the test doubles shared by the package's tests: a fake
// kernel that answers the generic netlink controller and mptcp_pm requests,
// a decoder that turns a request back into plain attribute values, and
// helpers that build netlink attributes byte by byte.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// fakeFamilyID is the id the fake controller gives mptcp_pm. Any value but
// GENL_ID_CTRL (0x10) works; the kernel picks it at boot.
const fakeFamilyID = 0x1b

// Group ids the fake controller reports.
const (
	fakeCmdGroupID   = 0x0c
	fakeEventGroupID = 0x0d
)

// allCommands are the commands of a kernel with the userspace path manager
// (5.19+).
var allCommands = []Command{
	CmdAddAddr, CmdDelAddr, CmdGetAddr, CmdFlushAddrs, CmdSetLimits, CmdGetLimits,
	CmdSetFlags, CmdAnnounce, CmdRemove, CmdSubflowCreate, CmdSubflowDestroy,
}

// inKernelCommands are the commands of a kernel with only the in-kernel path
// manager (5.7 .. 5.18).
var inKernelCommands = allCommands[:7]

// fakeFamily is what the fake controller says about mptcp_pm.
type fakeFamily struct {
	id      uint16
	version uint8
	ops     []Command
	groups  map[string]uint32
}

// fullFamily is mptcp_pm as a current kernel registers it.
func fullFamily() fakeFamily {
	return fakeFamily{
		id:      fakeFamilyID,
		version: familyVersion,
		ops:     allCommands,
		groups: map[string]uint32{
			"mptcp_pm_cmds": fakeCmdGroupID,
			eventGroupName:  fakeEventGroupID,
		},
	}
}

// encodeFamilyReply encodes the payload of a CTRL_CMD_NEWFAMILY message the
// way the kernel's ctrl_fill_info does: operations and multicast groups are
// arrays of nests numbered from 1.
func encodeFamilyReply(f fakeFamily) []byte {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, f.id)
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, familyName)
	ae.Uint32(unix.CTRL_ATTR_VERSION, uint32(f.version))
	ae.Uint32(unix.CTRL_ATTR_HDRSIZE, 0)
	ae.Uint32(unix.CTRL_ATTR_MAXATTR, attrAddrRemote)
	if len(f.ops) > 0 {
		ae.Nested(unix.CTRL_ATTR_OPS, func(nae *netlink.AttributeEncoder) error {
			for i, op := range f.ops {
				nae.Nested(uint16(i+1), func(oae *netlink.AttributeEncoder) error {
					oae.Uint32(unix.CTRL_ATTR_OP_ID, uint32(op))
					oae.Uint32(unix.CTRL_ATTR_OP_FLAGS, 0x0a) // GENL_ADMIN_PERM|GENL_CMD_CAP_DO
					return nil
				})
			}
			return nil
		})
	}
	if len(f.groups) > 0 {
		ae.Nested(unix.CTRL_ATTR_MCAST_GROUPS, func(nae *netlink.AttributeEncoder) error {
			i := uint16(1)
			for name, id := range f.groups {
				nae.Nested(i, func(gae *netlink.AttributeEncoder) error {
					gae.Uint32(unix.CTRL_ATTR_MCAST_GRP_ID, id)
					gae.String(unix.CTRL_ATTR_MCAST_GRP_NAME, name)
					return nil
				})
				i++
			}
			return nil
		})
	}
	b, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// pmRequest is an mptcp_pm request as the fake kernel received it.
type pmRequest struct {
	Cmd   Command
	Flags netlink.HeaderFlags
	Attrs reqAttrs
}

// reqAttrs are the top-level attributes of a request; nil means absent.
type reqAttrs struct {
	Addr        *addrAttrs
	RcvAddAddrs *uint32
	Subflows    *uint32
	Token       *uint32
	LocID       *uint8
	AddrRemote  *addrAttrs
}

// addrAttrs are the attributes of an address nest; nil means absent.
type addrAttrs struct {
	Family *uint16
	ID     *uint8
	Addr4  []byte
	Addr6  []byte
	Port   *uint16 // decoded in host byte order, as the kernel's nla_get_u16
	Flags  *uint32
	IfIdx  *int32
}

// ptr returns a pointer to v, for building expected attributes.
func ptr[T any](v T) *T { return &v }

// v4 and v6 are the expected address nests of an IPv4 or IPv6 address.
func v4(s string) addrAttrs {
	a := netip.MustParseAddr(s).As4()
	return addrAttrs{Family: ptr[uint16](unix.AF_INET), Addr4: a[:]}
}

func v6(s string) addrAttrs {
	a := netip.MustParseAddr(s).As16()
	return addrAttrs{Family: ptr[uint16](unix.AF_INET6), Addr6: a[:]}
}

// decodeRequest decodes a request's attributes strictly: wrong sizes,
// duplicates, nests without NLA_F_NESTED and unknown attributes are errors.
// It does not use the package's decoders, so that they are not checked
// against themselves.
func decodeRequest(b []byte) (reqAttrs, error) {
	var r reqAttrs
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return r, err
	}
	var errs []error
	dup := func(seen bool) {
		if seen {
			errs = append(errs, fmt.Errorf("duplicate attribute %d", ad.Type()))
		}
	}
	for ad.Next() {
		switch ad.Type() {
		case attrAddr, attrAddrRemote:
			if ad.TypeFlags()&netlink.Nested == 0 {
				errs = append(errs, fmt.Errorf("attribute %d lacks NLA_F_NESTED", ad.Type()))
			}
			dst := &r.Addr
			if ad.Type() == attrAddrRemote {
				dst = &r.AddrRemote
			}
			dup(*dst != nil)
			a, err := decodeAddrAttrs(ad.Bytes())
			if err != nil {
				errs = append(errs, fmt.Errorf("attribute %d: %w", ad.Type(), err))
			}
			*dst = &a
		case attrRcvAddAddrs:
			dup(r.RcvAddAddrs != nil)
			r.RcvAddAddrs = ptr(ad.Uint32())
		case attrSubflows:
			dup(r.Subflows != nil)
			r.Subflows = ptr(ad.Uint32())
		case attrToken:
			dup(r.Token != nil)
			r.Token = ptr(ad.Uint32())
		case attrLocID:
			dup(r.LocID != nil)
			r.LocID = ptr(ad.Uint8())
		default:
			errs = append(errs, fmt.Errorf("unexpected attribute %d", ad.Type()))
		}
	}
	errs = append(errs, ad.Err())
	return r, errors.Join(errs...)
}

func decodeAddrAttrs(b []byte) (addrAttrs, error) {
	var a addrAttrs
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return a, err
	}
	var errs []error
	for ad.Next() {
		switch ad.Type() {
		case addrAttrFamily:
			a.Family = ptr(ad.Uint16())
		case addrAttrID:
			a.ID = ptr(ad.Uint8())
		case addrAttrAddr4:
			if a.Addr4 = ad.Bytes(); len(a.Addr4) != 4 {
				errs = append(errs, fmt.Errorf("addr4 has %d bytes", len(a.Addr4)))
			}
		case addrAttrAddr6:
			if a.Addr6 = ad.Bytes(); len(a.Addr6) != 16 {
				errs = append(errs, fmt.Errorf("addr6 has %d bytes", len(a.Addr6)))
			}
		case addrAttrPort:
			a.Port = ptr(ad.Uint16())
		case addrAttrFlags:
			a.Flags = ptr(ad.Uint32())
		case addrAttrIfIdx:
			a.IfIdx = ptr(ad.Int32())
		default:
			errs = append(errs, fmt.Errorf("unexpected address attribute %d", ad.Type()))
		}
	}
	errs = append(errs, ad.Err())
	return a, errors.Join(errs...)
}

// replyFunc answers one mptcp_pm request. Returning no messages and no error
// acknowledges it.
type replyFunc func(req pmRequest) ([]genetlink.Message, error)

// fakeKernel answers the generic netlink controller and mptcp_pm. Its serve
// method is a genltest.Func. It is used from one goroutine only.
type fakeKernel struct {
	t   *testing.T
	fam fakeFamily
	// famErr, when set, is the controller's answer to the family lookup.
	famErr unix.Errno
	// reply answers mptcp_pm requests; nil acknowledges them all.
	reply replyFunc
	// reqs are the mptcp_pm requests received, in order.
	reqs []pmRequest
}

func newFakeKernel(t *testing.T, reply replyFunc) *fakeKernel {
	return &fakeKernel{t: t, fam: fullFamily(), reply: reply}
}

// serve implements genltest.Func.
func (k *fakeKernel) serve(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
	k.t.Helper()
	switch nreq.Header.Type {
	case unix.GENL_ID_CTRL:
		return k.serveController(greq, nreq)
	case netlink.HeaderType(k.fam.id):
	default:
		k.t.Errorf("request to unexpected family %#x (header %+v)", nreq.Header.Type, nreq.Header)
		return nil, genltest.Error(int(unix.ENOENT))
	}
	if greq.Header.Version != familyVersion {
		k.t.Errorf("%s request has version %d, want %d", Command(greq.Header.Command), greq.Header.Version, familyVersion)
	}
	attrs, err := decodeRequest(greq.Data)
	if err != nil {
		k.t.Errorf("%s request: %v", Command(greq.Header.Command), err)
	}
	req := pmRequest{Cmd: Command(greq.Header.Command), Flags: nreq.Header.Flags, Attrs: attrs}
	k.reqs = append(k.reqs, req)
	var msgs []genetlink.Message
	if k.reply != nil {
		msgs, err = k.reply(req)
	}
	if err == nil && len(msgs) == 0 {
		// An acknowledgement. genltest cannot send NLMSG_ERROR 0; io.EOF
		// makes the fake socket return no messages and no error.
		return nil, io.EOF
	}
	return msgs, err
}

func (k *fakeKernel) serveController(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
	k.t.Helper()
	if greq.Header.Command != unix.CTRL_CMD_GETFAMILY {
		k.t.Errorf("controller command %d, want CTRL_CMD_GETFAMILY", greq.Header.Command)
	}
	if nreq.Header.Flags != netlink.Request {
		k.t.Errorf("controller request flags %s, want %s", nreq.Header.Flags, netlink.Request)
	}
	ad, err := netlink.NewAttributeDecoder(greq.Data)
	if err != nil {
		k.t.Fatalf("controller request: %v", err)
	}
	var name string
	for ad.Next() {
		if ad.Type() == unix.CTRL_ATTR_FAMILY_NAME {
			name = ad.String()
		}
	}
	if name != familyName {
		k.t.Errorf("controller asked for family %q, want %q", name, familyName)
	}
	if k.famErr != 0 {
		return nil, genltest.Error(int(k.famErr))
	}
	return []genetlink.Message{{
		Header: genetlink.Header{Command: unix.CTRL_CMD_NEWFAMILY, Version: 2},
		Data:   encodeFamilyReply(k.fam),
	}}, nil
}

// dial returns a client on a genltest connection served by k.
func (k *fakeKernel) dial() *Client {
	k.t.Helper()
	c, err := newClient(genltest.Dial(k.serve))
	if err != nil {
		k.t.Fatalf("newClient: %v", err)
	}
	k.t.Cleanup(func() { c.Close() })
	return c
}

// kernelError is an error answer built like the kernel's netlink_ack(): the
// negative errno, the whole request, then NLMSGERR_ATTR_MSG when there is an
// extended-ack message. The reply's header flags are NLM_F_ACK_TLVS when a
// message is attached and 0 otherwise.
//
// genltest.Error cannot attach a message, and it copies the request's header
// flags into the error reply. For a dump, NLM_F_DUMP (0x300) then reads as
// NLM_F_CAPPED|NLM_F_ACK_TLVS, and the netlink package fails to parse the
// reply instead of returning the errno: dump errors need the reply flags
// cleared, which is what this type does. Use it with dialRaw.
type kernelError struct {
	errno unix.Errno
	msg   string
}

func (e *kernelError) Error() string { return fmt.Sprintf("kernel error %v %q", e.errno, e.msg) }

// message builds the NLMSG_ERROR answer to req.
func (e *kernelError) message(req netlink.Message) (netlink.Message, error) {
	orig, err := req.MarshalBinary()
	if err != nil {
		return netlink.Message{}, err
	}
	data := binary.NativeEndian.AppendUint32(nil, uint32(-int32(e.errno)))
	data = append(data, orig...)
	var flags netlink.HeaderFlags
	if e.msg != "" {
		flags |= netlink.AcknowledgeTLVs
		data = append(data, nlAttr(unix.NLMSGERR_ATTR_MSG, append([]byte(e.msg), 0)...)...)
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.Error, Flags: flags, Sequence: req.Header.Sequence, PID: req.Header.PID},
		Data:   data,
	}, nil
}

// dialRaw returns a client whose connection frames k's answers the way the
// kernel does, which genltest cannot: a *kernelError from k.reply becomes an
// NLMSG_ERROR with extended ack, and dump replies are multi-part messages
// ending with NLMSG_DONE.
func (k *fakeKernel) dialRaw() *Client {
	k.t.Helper()
	conn := genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		if len(reqs) != 1 {
			return nil, fmt.Errorf("got %d requests, want 1", len(reqs))
		}
		req := reqs[0]
		var greq genetlink.Message
		if err := greq.UnmarshalBinary(req.Data); err != nil {
			return nil, err
		}
		gmsgs, err := k.serve(greq, req)
		var ke *kernelError
		if errors.As(err, &ke) {
			m, err := ke.message(req)
			return []netlink.Message{m}, err
		}
		if err != nil {
			return nil, err
		}
		var msgs []netlink.Message
		for _, gm := range gmsgs {
			b, err := gm.MarshalBinary()
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, netlink.Message{
				Header: netlink.Header{Type: req.Header.Type, Sequence: req.Header.Sequence, PID: req.Header.PID},
				Data:   b,
			})
		}
		if req.Header.Flags&netlink.Dump == netlink.Dump {
			msgs = append(msgs, netlink.Message{
				Header: netlink.Header{Type: netlink.Done, Sequence: req.Header.Sequence, PID: req.Header.PID},
				Data:   make([]byte, 4), // the dump's final status: 0
			})
			return nltest.Multipart(msgs)
		}
		return msgs, nil
	}))
	c, err := newClient(conn)
	if err != nil {
		k.t.Fatalf("newClient: %v", err)
	}
	k.t.Cleanup(func() { c.Close() })
	return c
}

// endpointReply encodes a GET_ADDR answer the way the kernel's
// mptcp_nl_fill_addr does: family, id, flags, port in host byte order and
// ifindex only when set, then the address.
func endpointReply(ep Endpoint) genetlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrAddr, func(nae *netlink.AttributeEncoder) error {
		fam := uint16(unix.AF_INET6)
		if ep.Addr.Is4() {
			fam = unix.AF_INET
		}
		nae.Uint16(addrAttrFamily, fam)
		nae.Uint8(addrAttrID, ep.ID)
		nae.Uint32(addrAttrFlags, uint32(ep.Flags))
		if ep.Port != 0 {
			nae.Uint16(addrAttrPort, ep.Port)
		}
		if ep.Ifindex != 0 {
			nae.Int32(addrAttrIfIdx, int32(ep.Ifindex))
		}
		nae.Bytes(map[uint16]uint16{unix.AF_INET: addrAttrAddr4, unix.AF_INET6: addrAttrAddr6}[fam], ep.Addr.AsSlice())
		return nil
	})
	return genetlink.Message{Header: genetlink.Header{Command: uint8(CmdGetAddr), Version: familyVersion}, Data: mustEncode(ae)}
}

// limitsReply encodes a GET_LIMITS answer.
func limitsReply(l Limits) genetlink.Message {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrRcvAddAddrs, l.AddAddrAccepted)
	ae.Uint32(attrSubflows, l.Subflows)
	return genetlink.Message{Header: genetlink.Header{Command: uint8(CmdGetLimits), Version: familyVersion}, Data: mustEncode(ae)}
}

func mustEncode(ae *netlink.AttributeEncoder) []byte {
	b, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// nlAttr returns one netlink attribute built by hand: a native-endian u16
// length (header included, padding excluded), a u16 type, the payload and
// zero padding to a multiple of 4 bytes.
func nlAttr(typ uint16, payload ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// withLen overwrites the length field of a hand-built attribute.
func withLen(attr []byte, n uint16) []byte {
	binary.NativeEndian.PutUint16(attr, n)
	return attr
}

// nlAttrs concatenates attributes.
func nlAttrs(attrs ...[]byte) []byte {
	var b []byte
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// Payload helpers: host byte order unless the name says otherwise.
func nlU16(v uint16) []byte  { return binary.NativeEndian.AppendUint16(nil, v) }
func nlU32(v uint32) []byte  { return binary.NativeEndian.AppendUint32(nil, v) }
func nlBE16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// nlIP returns the 4 or 16 bytes of an address literal, in network order.
func nlIP(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

// cmpNetip makes cmp compare net/netip values with ==.
var cmpNetip = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}
