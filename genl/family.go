package genl

import (
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// family is what the generic netlink controller says about mptcp_pm.
type family struct {
	id      uint16
	version uint8
	groups  map[string]uint32
	// ops holds the commands the kernel registered.
	ops map[Command]bool
}

// getFamily asks the controller for mptcp_pm, including its operations,
// which genetlink.Conn.GetFamily does not report.
func getFamily(c *genetlink.Conn) (family, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, familyName)
	b, err := ae.Encode()
	if err != nil {
		return family{}, err
	}
	msgs, err := c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETFAMILY, Version: 1},
		Data:   b,
	}, unix.GENL_ID_CTRL, netlink.Request)
	if err != nil {
		if isFamilyMissing(err) {
			return family{}, fmt.Errorf("resolve generic netlink family %q: %w", familyName, ErrMPTCPUnavailable)
		}
		return family{}, fmt.Errorf("resolve generic netlink family %q: %w", familyName, err)
	}
	if len(msgs) != 1 {
		return family{}, fmt.Errorf("resolve generic netlink family %q: got %d replies, want 1", familyName, len(msgs))
	}
	f, err := decodeFamily(msgs[0].Data)
	if err != nil {
		return family{}, fmt.Errorf("decode generic netlink family %q: %w", familyName, err)
	}
	return f, nil
}

// decodeFamily decodes a CTRL_CMD_NEWFAMILY message.
func decodeFamily(b []byte) (family, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return family{}, err
	}
	f := family{groups: map[string]uint32{}, ops: map[Command]bool{}}
	for ad.Next() {
		switch ad.Type() {
		case unix.CTRL_ATTR_FAMILY_ID:
			f.id = ad.Uint16()
		case unix.CTRL_ATTR_VERSION:
			// The kernel sends a u32; only the low byte is meaningful.
			f.version = uint8(ad.Uint32())
		case unix.CTRL_ATTR_MCAST_GROUPS:
			ad.Nested(decodeGroups(f.groups))
		case unix.CTRL_ATTR_OPS:
			ad.Nested(decodeOps(f.ops))
		}
	}
	if err := ad.Err(); err != nil {
		return family{}, err
	}
	if f.id == 0 {
		return family{}, errors.New("controller reply has no family id")
	}
	return f, nil
}

// decodeGroups decodes the array of multicast group nests.
func decodeGroups(groups map[string]uint32) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			var id uint32
			var name string
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case unix.CTRL_ATTR_MCAST_GRP_ID:
						id = nad.Uint32()
					case unix.CTRL_ATTR_MCAST_GRP_NAME:
						name = nad.String()
					}
				}
				return nad.Err()
			})
			if name != "" {
				groups[name] = id
			}
		}
		return ad.Err()
	}
}

// decodeOps decodes the array of operation nests.
func decodeOps(ops map[Command]bool) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.CTRL_ATTR_OP_ID {
						if id := nad.Uint32(); id <= 0xff {
							ops[Command(id)] = true
						}
					}
				}
				return nad.Err()
			})
		}
		return ad.Err()
	}
}
