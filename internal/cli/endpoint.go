package cli

import (
	"fmt"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// addrCmd says which request an endpoint option list is for; the checks of
// ipmptcp.c's mptcp_parse_opt depend on it.
type addrCmd int

const (
	cmdAdd addrCmd = iota
	cmdDelete
	cmdChange
	cmdShow
)

// flagName is an entry of ipmptcp.c's flag table.
type flagName struct {
	name string
	flag genl.Flags
}

// endpointFlagNames is ipmptcp.c's flag table, in its order: these names
// are matched exactly, never abbreviated.
func endpointFlagNames() [8]flagName {
	return [8]flagName{
		{"signal", genl.FlagSignal},
		{"subflow", genl.FlagSubflow},
		{"backup", genl.FlagBackup},
		{"fullmesh", genl.FlagFullmesh},
		{"implicit", genl.FlagImplicit},
		{"laminar", genl.FlagLaminar},
		{"nobackup", 0},
		{"nofullmesh", 0},
	}
}

func endpointFlag(word string) (genl.Flags, bool) {
	for _, f := range endpointFlagNames() {
		if f.name == word {
			return f.flag, true
		}
	}
	return 0, false
}

// addrOpts is a parsed endpoint option list.
type addrOpts struct {
	id      uint8
	idSet   bool
	addr    ipAddr
	addrSet bool
	port    uint16
	flags   genl.Flags
	ifindex int
}

// parseAddrOpts is mptcp_parse_opt: the same keywords, checks and order of
// checks, so that the same error wins.
func (s *session) parseAddrOpts(argv []string, cmd addrCmd) (addrOpts, error) {
	var o addrOpts
	a := &args{v: argv}
	for ; a.more(); a.fwd() {
		w := a.cur()
		if f, ok := endpointFlag(w); ok {
			o.flags |= f
			if cmd == cmdAdd && o.flags&genl.FlagSignal != 0 && o.flags&genl.FlagFullmesh != 0 {
				return o, invarg("flags mustn't have both signal and fullmesh", w,
					"fullmesh creates subflows from a subflow endpoint to every address the peer announced; a signal endpoint only announces itself: use \"signal\" or \"subflow fullmesh\"")
			}
			if cmd == cmdChange && o.flags&^(genl.FlagBackup|genl.FlagFullmesh) != 0 {
				return o, invarg("invalid flags, backup and fullmesh only", w)
			}
			continue
		}
		switch {
		case matches(w, "id"):
			v, err := a.next()
			if err != nil {
				return o, err
			}
			id, ok := getU8(v)
			if !ok {
				return o, invarg("invalid ID\n", v)
			}
			o.id, o.idSet = id, true
		case matches(w, "dev"):
			v, err := a.next()
			if err != nil {
				return o, err
			}
			if !checkIfname(v) {
				return o, invarg("invalid interface name\n", v)
			}
			o.ifindex = s.ifIndex(v)
			if o.ifindex == 0 {
				return o, invarg("device does not exist\n", v)
			}
		case matches(w, "port"):
			v, err := a.next()
			if err != nil {
				return o, err
			}
			p, ok := getU16(v)
			if !ok {
				return o, invarg("expected port", v)
			}
			o.port = p
		default:
			addr, ok := parseAddr(w)
			if !ok {
				return o, badAddress(w)
			}
			o.addr, o.addrSet = addr, true
		}
	}

	if !o.addrSet && cmd == cmdAdd {
		return o, missarg("ADDRESS")
	}
	switch {
	case !o.idSet && cmd == cmdDelete:
		return o, missarg("ID")
	case o.idSet && cmd == cmdDelete:
		if o.id != 0 && o.addrSet {
			return o, invarg("invalid for non-zero id address\n", "ADDRESS")
		} else if o.id == 0 && !o.addrSet {
			return o, invarg("address is needed for deleting id 0 address\n", "ID")
		}
	case o.idSet && o.id == 0:
		return o, invarg("cannot be 0\n", "ID")
	}
	if cmd == cmdAdd && o.port != 0 && o.flags&genl.FlagSignal == 0 {
		return o, invarg("flags must have signal when using port", "port",
			"only signal endpoints take a port: the kernel listens on it for joins to the announced address; add \"signal\" or drop \"port\"")
	}
	if cmd == cmdChange && o.idSet && o.port != 0 {
		return o, invarg("port can't be used with id", "port")
	}
	return o, nil
}

// unspecRefused is the kernel's answer when an address argument was
// "any", "all" or "default": ip sends it as an address of no family and
// length 0, which the mptcp_pm attribute policy rejects. The request is not
// sent; the answer is the same.
func unspecRefused(o addrOpts) error {
	return &cmdError{code: exitKernel, msg: "Error: binary attribute size out of range.\n",
		hints: []string{fmt.Sprintf("%q is not an address: give the endpoint's IPv4 or IPv6 address", o.addr.unspec)},
		err:   fmt.Errorf("address %q has no family: %w", o.addr.unspec, unix.EINVAL)}
}

func (o addrOpts) endpoint() genl.Endpoint {
	return genl.Endpoint{ID: o.id, Addr: o.addr.addr, Port: o.port, Flags: o.flags, Ifindex: o.ifindex}
}

// endpoint runs "endpoint add|change|delete|show|flush"; bare "endpoint"
// shows all.
func (s *session) endpoint(argv []string) error {
	be, err := s.backend()
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return s.endpointDump(be)
	}
	sub, rest := argv[0], argv[1:]
	switch {
	case matches(sub, "add"):
		return s.endpointModify(be, rest, cmdAdd)
	case matches(sub, "change"):
		return s.endpointModify(be, rest, cmdChange)
	case matches(sub, "delete"):
		return s.endpointModify(be, rest, cmdDelete)
	case matches(sub, "show"):
		if len(rest) == 0 {
			return s.endpointDump(be)
		}
		return s.endpointGet(be, rest)
	case matches(sub, "flush"):
		// ip ignores anything after "flush".
		if err := be.FlushEndpoints(); err != nil {
			return kernelError("flush endpoints", err)
		}
		return nil
	}
	return unknownCommand(sub)
}

func (s *session) endpointModify(be Backend, argv []string, cmd addrCmd) error {
	o, err := s.parseAddrOpts(argv, cmd)
	if err != nil {
		return err
	}
	if o.addrSet && o.addr.unspec != "" {
		return unspecRefused(o)
	}
	switch cmd {
	case cmdAdd:
		ep := o.endpoint()
		if err := be.AddEndpoint(ep); err != nil {
			return kernelError(fmt.Sprintf("add endpoint %s", ep.Addr), err, addHints(ep, err)...)
		}
	case cmdDelete:
		if o.id != 0 {
			err = be.DeleteEndpoint(o.id)
		} else {
			err = be.DeleteEndpointAddr(0, o.addr.addr)
		}
		if err != nil {
			return kernelError(fmt.Sprintf("delete endpoint id %d", o.id), err)
		}
	case cmdChange:
		ref := genl.Endpoint{ID: o.id, Addr: o.addr.addr, Port: o.port}
		if err := be.SetEndpointFlags(ref, o.flags); err != nil {
			return kernelError("change endpoint flags", err)
		}
	}
	return nil
}

// addHints explains the kernel's cryptic answers to an endpoint add
// ("too many addresses or duplicate one: -34").
func addHints(ep genl.Endpoint, err error) []string {
	where := ntop(ep.Addr)
	if ep.Port != 0 {
		where = fmt.Sprintf("%s port %d", where, ep.Port)
	}
	switch errnoOf(err) {
	case unix.ERANGE:
		return []string{fmt.Sprintf("the kernel allows at most %d endpoints per network namespace: delete one (endpoint delete id ID) or flush them", genl.MaxEndpoints)}
	case unix.EBUSY:
		return []string{fmt.Sprintf("endpoint id %d is already in use: pick another id, or leave id out to let the kernel choose", ep.ID)}
	case unix.EEXIST:
		return []string{fmt.Sprintf("an endpoint for %s already exists: change it with \"endpoint change\", or delete it first", where)}
	case unix.EADDRINUSE:
		if ep.Port != 0 {
			return []string{fmt.Sprintf("a signal endpoint with a port listens on it, and %s is already in use by another socket: pick a free port", where)}
		}
	case unix.EADDRNOTAVAIL:
		if ep.Port != 0 {
			return []string{fmt.Sprintf("a signal endpoint with a port listens on it, and %s is not an address of this host: add the address to an interface first", ntop(ep.Addr))}
		}
	}
	return nil
}

func (s *session) endpointDump(be Backend) error {
	eps, err := be.Endpoints()
	p := s.newPrinter()
	p.openList()
	for _, ep := range eps {
		s.printEndpoint(p, ep)
	}
	if err != nil {
		// Like ip: the array is closed after "Dump terminated".
		p.closeList()
		s.emit(p)
		e := kernelError("dump endpoints", err).(*cmdError)
		e.msg += "Dump terminated\n"
		return e
	}
	p.closeList()
	s.emit(p)
	return nil
}

func (s *session) endpointGet(be Backend, argv []string) error {
	o, err := s.parseAddrOpts(argv, cmdShow)
	if err != nil {
		return err
	}
	if o.addrSet && o.addr.unspec != "" {
		return unspecRefused(o)
	}
	ep, err := be.Endpoint(o.id)
	if err != nil {
		return kernelError(fmt.Sprintf("get endpoint id %d", o.id), err)
	}
	p := s.newPrinter()
	p.openList()
	s.printEndpoint(p, ep)
	p.closeList()
	s.emit(p)
	return nil
}

// printEndpoint is print_mptcp_addrinfo: "ADDR [port N] id N FLAGS [dev
// NAME] " with a trailing space, or one JSON object.
func (s *session) printEndpoint(p *printer, ep genl.Endpoint) {
	p.openObject()
	if ep.Addr.IsValid() {
		p.str("address", "%s ", ntop(ep.Addr))
	}
	if ep.Port != 0 {
		p.uint("port", "port %d ", uint64(ep.Port))
	}
	p.uint("id", "id %d ", uint64(ep.ID))
	printFlags(p, ep.Flags)
	if ep.Ifindex != 0 {
		p.text("dev ")
		p.str("dev", "%s ", s.ifName(ep.Ifindex))
	}
	p.nl()
	p.closeObject()
}

// printFlags is print_mptcp_addr_flags: known names in ip's order, then the
// other bits as "rawflags %02x".
func printFlags(p *printer, f genl.Flags) {
	for _, fn := range endpointFlagNames() {
		if fn.flag == 0 {
			continue
		}
		if f&fn.flag != 0 {
			p.text(fn.name + " ")
			p.trueJSON(fn.name)
		}
		f &^= fn.flag
	}
	if f != 0 {
		p.str("rawflags", "rawflags %s ", fmt.Sprintf("%02x", uint32(f)))
	}
}
