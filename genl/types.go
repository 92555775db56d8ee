package genl

import (
	"fmt"
	"net/netip"
	"strings"
)

// Flags are the endpoint flags of the in-kernel path manager
// (MPTCP_PM_ADDR_FLAG_*).
type Flags uint32

// Endpoint flags, in the kernel's bit order.
const (
	// FlagSignal announces the address to peers with ADD_ADDR.
	FlagSignal Flags = 1 << 0
	// FlagSubflow creates subflows from this address to the peer.
	FlagSubflow Flags = 1 << 1
	// FlagBackup marks subflows using this address as backup.
	FlagBackup Flags = 1 << 2
	// FlagFullmesh creates subflows to every address the peer announced.
	FlagFullmesh Flags = 1 << 3
	// FlagImplicit is set by the kernel on endpoints it created itself.
	FlagImplicit Flags = 1 << 4
	// FlagLaminar creates subflows to announced addresses (kernel ≥ 6.18).
	FlagLaminar Flags = 1 << 5
)

// flagNames lists the flags in the order iproute2 prints them.
var flagNames = [...]struct {
	flag Flags
	name string
}{
	{FlagSignal, "signal"},
	{FlagSubflow, "subflow"},
	{FlagBackup, "backup"},
	{FlagFullmesh, "fullmesh"},
	{FlagImplicit, "implicit"},
	{FlagLaminar, "laminar"},
}

// Names returns the names of the known flags that are set, in iproute2's
// order, and the bits that have no name.
func (f Flags) Names() (names []string, unknown Flags) {
	for _, fn := range flagNames {
		if f&fn.flag != 0 {
			names = append(names, fn.name)
			f &^= fn.flag
		}
	}
	return names, f
}

// String returns the flag names separated by spaces, with unknown bits as
// "0x..".
func (f Flags) String() string {
	names, unknown := f.Names()
	if unknown != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(unknown)))
	}
	return strings.Join(names, " ")
}

// ParseFlag returns the flag with the given name ("signal", "subflow",
// "backup", "fullmesh", "implicit" or "laminar").
func ParseFlag(name string) (Flags, error) {
	for _, fn := range flagNames {
		if fn.name == name {
			return fn.flag, nil
		}
	}
	return 0, fmt.Errorf("unknown endpoint flag %q: want one of signal, subflow, backup, fullmesh, implicit, laminar", name)
}

// ParseFlags parses flag names separated by spaces or commas.
func ParseFlags(s string) (Flags, error) {
	var f Flags
	for _, name := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, err := ParseFlag(name)
		if err != nil {
			return 0, err
		}
		f |= v
	}
	return f, nil
}

// MaxEndpoints is the number of endpoints the in-kernel path manager keeps
// per network namespace (MPTCP_PM_ADDR_MAX).
const MaxEndpoints = 8

// MaxLimit is the largest value the kernel accepts for either limit.
const MaxLimit = 8

// Endpoint is an address of the in-kernel path manager, or a local address
// of a connection managed by the userspace path manager.
type Endpoint struct {
	// ID is the address identifier, 1..255; 0 lets the kernel choose on add.
	ID uint8
	// Addr is the IPv4 or IPv6 address.
	Addr netip.Addr
	// Port is used with FlagSignal (and for userspace subflows); 0 for none.
	Port uint16
	// Flags are the endpoint's flags.
	Flags Flags
	// Ifindex binds subflows to an interface; 0 for none.
	Ifindex int
}

// Limits are the in-kernel path manager's per-namespace limits.
type Limits struct {
	// Subflows is the most additional subflows per connection.
	Subflows uint32
	// AddAddrAccepted is the most ADD_ADDR announcements accepted per
	// connection.
	AddAddrAccepted uint32
}

// LimitsUpdate changes the limits that are not nil and leaves the others
// alone.
type LimitsUpdate struct {
	Subflows        *uint32
	AddAddrAccepted *uint32
}

// Command is a command of the mptcp_pm family.
type Command uint8

// The commands of the mptcp_pm family (MPTCP_PM_CMD_*).
const (
	CmdAddAddr        Command = 1
	CmdDelAddr        Command = 2
	CmdGetAddr        Command = 3
	CmdFlushAddrs     Command = 4
	CmdSetLimits      Command = 5
	CmdGetLimits      Command = 6
	CmdSetFlags       Command = 7
	CmdAnnounce       Command = 8
	CmdRemove         Command = 9
	CmdSubflowCreate  Command = 10
	CmdSubflowDestroy Command = 11
)

// String returns the command's name as in the kernel's YNL spec.
func (c Command) String() string {
	switch c {
	case CmdAddAddr:
		return "add-addr"
	case CmdDelAddr:
		return "del-addr"
	case CmdGetAddr:
		return "get-addr"
	case CmdFlushAddrs:
		return "flush-addrs"
	case CmdSetLimits:
		return "set-limits"
	case CmdGetLimits:
		return "get-limits"
	case CmdSetFlags:
		return "set-flags"
	case CmdAnnounce:
		return "announce"
	case CmdRemove:
		return "remove"
	case CmdSubflowCreate:
		return "subflow-create"
	case CmdSubflowDestroy:
		return "subflow-destroy"
	}
	return fmt.Sprintf("command(%d)", uint8(c))
}
