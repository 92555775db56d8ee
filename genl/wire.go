package genl

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Names of the family and its event group.
const (
	familyName     = "mptcp_pm"
	familyVersion  = 1
	eventGroupName = "mptcp_pm_events"
)

// Top-level attributes of commands (MPTCP_PM_ATTR_*).
const (
	attrAddr        = 1
	attrRcvAddAddrs = 2
	attrSubflows    = 3
	attrToken       = 4
	attrLocID       = 5
	attrAddrRemote  = 6
)

// Attributes of the address nest (MPTCP_PM_ADDR_ATTR_*).
const (
	addrAttrFamily = 1
	addrAttrID     = 2
	addrAttrAddr4  = 3
	addrAttrAddr6  = 4
	addrAttrPort   = 5
	addrAttrFlags  = 6
	addrAttrIfIdx  = 7
)

// addrOpts says which optional fields of an address nest are sent.
type addrOpts struct {
	// forceID sends the id even when it is 0 (delete of id 0 by address).
	forceID bool
}

// encodeAddr returns the encoder of an address nest. Zero fields are left
// out, as iproute2 does; the kernel reads a missing attribute as zero.
func encodeAddr(ep Endpoint, o addrOpts) func(*netlink.AttributeEncoder) error {
	return func(ae *netlink.AttributeEncoder) error {
		if ep.ID != 0 || o.forceID {
			ae.Uint8(addrAttrID, ep.ID)
		}
		if ep.Flags != 0 {
			ae.Uint32(addrAttrFlags, uint32(ep.Flags))
		}
		if ep.Ifindex != 0 {
			ae.Int32(addrAttrIfIdx, int32(ep.Ifindex))
		}
		if ep.Port != 0 {
			// Host byte order inside the address nest, unlike events.
			ae.Uint16(addrAttrPort, ep.Port)
		}
		if ep.Addr.IsValid() {
			a := ep.Addr.Unmap()
			if a.Is4() {
				b := a.As4()
				ae.Uint16(addrAttrFamily, unix.AF_INET)
				ae.Bytes(addrAttrAddr4, b[:])
			} else {
				b := a.As16()
				ae.Uint16(addrAttrFamily, unix.AF_INET6)
				ae.Bytes(addrAttrAddr6, b[:])
			}
		}
		return nil
	}
}

// decodeAddr decodes an address nest. Unknown attributes are skipped.
func decodeAddr(ep *Endpoint) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		var family uint16
		var a4, a6 []byte
		for ad.Next() {
			switch ad.Type() {
			case addrAttrFamily:
				family = ad.Uint16()
			case addrAttrID:
				ep.ID = ad.Uint8()
			case addrAttrAddr4:
				a4 = ad.Bytes()
			case addrAttrAddr6:
				a6 = ad.Bytes()
			case addrAttrPort:
				ep.Port = ad.Uint16()
			case addrAttrFlags:
				ep.Flags = Flags(ad.Uint32())
			case addrAttrIfIdx:
				ep.Ifindex = int(ad.Int32())
			}
		}
		if err := ad.Err(); err != nil {
			return err
		}
		var err error
		switch {
		case family == unix.AF_INET6 && a6 != nil:
			ep.Addr, err = addrFromBytes(a6, 16)
		case a4 != nil && family != unix.AF_INET6:
			ep.Addr, err = addrFromBytes(a4, 4)
		case a6 != nil:
			ep.Addr, err = addrFromBytes(a6, 16)
		}
		return err
	}
}

// addrFromBytes converts a 4- or 16-byte address attribute.
func addrFromBytes(b []byte, want int) (netip.Addr, error) {
	if len(b) != want {
		return netip.Addr{}, fmt.Errorf("address attribute has %d bytes, want %d", len(b), want)
	}
	a, _ := netip.AddrFromSlice(b)
	return a, nil
}

// decodeEndpointMessage decodes a GET_ADDR reply.
func decodeEndpointMessage(b []byte) (Endpoint, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Endpoint{}, err
	}
	var ep Endpoint
	found := false
	for ad.Next() {
		if ad.Type() == attrAddr {
			found = true
			ad.Nested(decodeAddr(&ep))
		}
	}
	if err := ad.Err(); err != nil {
		return Endpoint{}, err
	}
	if !found {
		return Endpoint{}, errors.New("reply has no address attribute")
	}
	return ep, nil
}

// decodeLimitsMessage decodes a GET_LIMITS reply.
func decodeLimitsMessage(b []byte) (Limits, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Limits{}, err
	}
	var l Limits
	for ad.Next() {
		switch ad.Type() {
		case attrRcvAddAddrs:
			l.AddAddrAccepted = ad.Uint32()
		case attrSubflows:
			l.Subflows = ad.Uint32()
		}
	}
	return l, ad.Err()
}
