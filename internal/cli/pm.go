package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// pmOpts is a parsed option list of a pm verb.
type pmOpts struct {
	addr      netip.Addr
	addrSet   bool
	remote    netip.Addr
	remoteSet bool
	id        uint8
	idSet     bool
	port      uint16
	portSet   bool
	rport     uint16
	rportSet  bool
	ifindex   int
	token     uint32
	tokenSet  bool
	backup    bool // the last of backup|nobackup given
	prioSet   bool
}

// pmVerb is one userspace path manager verb. allowed lists the keywords it
// takes; the others are refused with "not used by".
type pmVerb struct {
	name    string
	allowed string
	run     func(s *session, be Backend, o pmOpts) error
}

func pmVerbs() []pmVerb {
	return []pmVerb{
		{"announce", "ADDRESS id port dev token", (*session).pmAnnounce},
		{"remove", "id token", (*session).pmRemove},
		{"subflow create", "ADDRESS id port dev backup remote rport token", (*session).pmSubflowCreate},
		{"subflow destroy", "ADDRESS port remote rport token", (*session).pmSubflowDestroy},
		{"set", "ADDRESS port backup nobackup remote rport token", (*session).pmSet},
		{"show", "id token", (*session).pmShow},
	}
}

// pm runs the userspace path manager verbs. Subcommands and keywords are
// matched by prefix in table order ("s" is "subflow", "se" "set", "sh"
// "show"), like ip's.
func (s *session) pm(argv []string) error {
	be, err := s.backend()
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return incomplete()
	}
	sub, rest := argv[0], argv[1:]
	var verb string
	switch {
	case matches(sub, "announce"):
		verb = "announce"
	case matches(sub, "remove"):
		verb = "remove"
	case matches(sub, "subflow"):
		if len(rest) == 0 {
			return incomplete()
		}
		switch {
		case matches(rest[0], "create"):
			verb = "subflow create"
		case matches(rest[0], "destroy"):
			verb = "subflow destroy"
		default:
			return unknownCommand(rest[0])
		}
		rest = rest[1:]
	case matches(sub, "set"):
		verb = "set"
	case matches(sub, "show"):
		verb = "show"
	default:
		return unknownCommand(sub)
	}
	for _, v := range pmVerbs() {
		if v.name != verb {
			continue
		}
		o, err := s.parsePMOpts(rest, v)
		if err != nil {
			return err
		}
		if !be.SupportsUserspacePM() {
			return &cmdError{code: exitKernel, msg: "Error: this kernel lacks the userspace path manager (needs Linux 5.19+).\n",
				err: fmt.Errorf("pm %s: %w", verb, genl.ErrNotSupported)}
		}
		return v.run(s, be, o)
	}
	return unknownCommand(sub)
}

// parsePMOpts reads a pm verb's options: backup|nobackup by exact name,
// keywords by prefix, anything else an address (as ip's get_addr).
func (s *session) parsePMOpts(argv []string, v pmVerb) (pmOpts, error) {
	var o pmOpts
	allowed := strings.Fields(v.allowed)
	use := func(kw, word string) error {
		for _, a := range allowed {
			if a == kw {
				return nil
			}
		}
		return invarg(fmt.Sprintf("not used by \"pm %s\"", v.name), word)
	}
	a := &args{v: argv}
	for ; a.more(); a.fwd() {
		w := a.cur()
		if w == "backup" || w == "nobackup" {
			if err := use(w, w); err != nil {
				return o, err
			}
			o.backup, o.prioSet = w == "backup", true
			continue
		}
		kw := ""
		for _, k := range []string{"id", "dev", "port", "token", "remote", "rport"} {
			if matches(w, k) {
				kw = k
				break
			}
		}
		if kw == "" {
			addr, err := pmAddr(w, w)
			if err != nil {
				return o, err
			}
			if err := use("ADDRESS", w); err != nil {
				return o, err
			}
			o.addr, o.addrSet = addr, true
			continue
		}
		if err := use(kw, w); err != nil {
			return o, err
		}
		val, err := a.next()
		if err != nil {
			return o, err
		}
		switch kw {
		case "id":
			id, ok := getU8(val)
			if !ok {
				return o, invarg("invalid ID", val)
			}
			o.id, o.idSet = id, true
		case "dev":
			if !checkIfname(val) {
				return o, invarg("invalid interface name", val)
			}
			if o.ifindex = s.ifIndex(val); o.ifindex == 0 {
				return o, invarg("device does not exist", val)
			}
		case "port", "rport":
			p, ok := getU16(val)
			if !ok {
				return o, invarg("expected port", val)
			}
			if kw == "port" {
				o.port, o.portSet = p, true
			} else {
				o.rport, o.rportSet = p, true
			}
		case "token":
			t, ok := parseToken(val)
			if !ok {
				return o, invarg("invalid token: want up to 8 hex digits, as \"monitor\" prints it", val)
			}
			o.token, o.tokenSet = t, true
		case "remote":
			addr, err := pmAddr(val, val)
			if err != nil {
				return o, err
			}
			o.remote, o.remoteSet = addr, true
		}
	}
	return o, o.check(v.name)
}

// pmAddr parses an address like get_addr but refuses the family-less
// words ("any"), which no pm request can use.
func pmAddr(word, arg string) (netip.Addr, error) {
	a, ok := parseAddr(word)
	if !ok {
		return netip.Addr{}, badAddress(word)
	}
	if a.unspec != "" {
		return netip.Addr{}, invarg("an IPv4 or IPv6 address is needed", arg)
	}
	return a.addr, nil
}

// parseToken reads a connection token: hex, with or without 0x.
func parseToken(s string) (uint32, bool) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if h == "" || len(h) > 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(h, 16, 32)
	return uint32(v), err == nil
}

// check applies a verb's required arguments, in grammar order.
func (o pmOpts) check(verb string) error {
	need := func(ok bool, key string) error {
		if !ok {
			return missarg(key)
		}
		return nil
	}
	var errs []error
	switch verb {
	case "announce":
		errs = []error{need(o.addrSet, "ADDRESS"), need(o.idSet, "ID")}
		if o.idSet && o.id == 0 {
			errs = append(errs, invarg("cannot be 0: the initial address is announced with the connection", "ID"))
		}
	case "remove":
		errs = []error{need(o.idSet, "ID")}
	case "subflow create":
		errs = []error{need(o.addrSet, "ADDRESS"), need(o.remoteSet, "remote"), need(o.rportSet, "rport")}
	case "subflow destroy":
		errs = []error{need(o.addrSet, "ADDRESS"), need(o.portSet, "port"), need(o.remoteSet, "remote"), need(o.rportSet, "rport")}
	case "set":
		errs = []error{need(o.addrSet, "ADDRESS"), need(o.prioSet, "backup|nobackup")}
		if o.remoteSet != o.rportSet {
			errs = append(errs, need(o.remoteSet, "remote"), need(o.rportSet, "rport"))
		}
	}
	errs = append(errs, need(o.tokenSet, "TOKEN"))
	if (verb == "subflow create" || verb == "subflow destroy" || verb == "set") && o.addrSet && o.remoteSet &&
		o.addr.Is4() != o.remote.Is4() {
		errs = append(errs, invarg("local and remote addresses must be of the same family", "remote"))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *session) pmAnnounce(be Backend, o pmOpts) error {
	ep := genl.Endpoint{ID: o.id, Addr: o.addr, Port: o.port, Ifindex: o.ifindex}
	if err := be.Announce(o.token, ep); err != nil {
		return kernelError(fmt.Sprintf("announce %s on token %08x", ntop(o.addr), o.token), err, pmHints(o, err)...)
	}
	return nil
}

func (s *session) pmRemove(be Backend, o pmOpts) error {
	if err := be.Remove(o.token, o.id); err != nil {
		return kernelError(fmt.Sprintf("remove id %d on token %08x", o.id, o.token), err, pmHints(o, err)...)
	}
	return nil
}

func (s *session) pmSubflowCreate(be Backend, o pmOpts) error {
	local := genl.Endpoint{ID: o.id, Addr: o.addr, Port: o.port, Ifindex: o.ifindex}
	if o.backup {
		local.Flags = genl.FlagBackup
	}
	remote := netip.AddrPortFrom(o.remote, o.rport)
	if err := be.CreateSubflow(o.token, local, remote); err != nil {
		return kernelError(fmt.Sprintf("create subflow on token %08x", o.token), err, pmHints(o, err)...)
	}
	return nil
}

func (s *session) pmSubflowDestroy(be Backend, o pmOpts) error {
	local := netip.AddrPortFrom(o.addr, o.port)
	remote := netip.AddrPortFrom(o.remote, o.rport)
	if err := be.DestroySubflow(o.token, local, remote); err != nil {
		return kernelError(fmt.Sprintf("destroy subflow on token %08x", o.token), err, pmHints(o, err)...)
	}
	return nil
}

func (s *session) pmSet(be Backend, o pmOpts) error {
	var flags genl.Flags
	if o.backup {
		flags = genl.FlagBackup
	}
	var remote netip.AddrPort
	if o.remoteSet {
		remote = netip.AddrPortFrom(o.remote, o.rport)
	}
	local := genl.Endpoint{Addr: o.addr, Port: o.port}
	if err := be.SetSubflowFlags(o.token, local, remote, flags); err != nil {
		hints := pmHints(o, err)
		if hints == nil && !o.remoteSet && errnoOf(err) == unix.EINVAL {
			hints = []string{"this kernel needs the subflow's remote end: add \"remote ADDRESS rport NR\""}
		}
		return kernelError(fmt.Sprintf("set subflow flags on token %08x", o.token), err, hints...)
	}
	return nil
}

// pmShow prints a connection's local addresses like "endpoint show".
func (s *session) pmShow(be Backend, o pmOpts) error {
	var eps []genl.Endpoint
	if o.idSet {
		ep, err := be.ConnEndpoint(o.token, o.id)
		if err != nil {
			return kernelError(fmt.Sprintf("get address id %d of token %08x", o.id, o.token), err, pmHints(o, err)...)
		}
		eps = []genl.Endpoint{ep}
	} else {
		var err error
		eps, err = be.ConnEndpoints(o.token)
		if err != nil {
			e := kernelError(fmt.Sprintf("dump addresses of token %08x", o.token), err, pmHints(o, err)...).(*cmdError)
			e.msg += "Dump terminated\n"
			p := s.newPrinter()
			p.openList()
			p.closeList()
			s.emit(p)
			return e
		}
	}
	p := s.newPrinter()
	p.openList()
	for _, ep := range eps {
		s.printEndpoint(p, ep)
	}
	p.closeList()
	s.emit(p)
	return nil
}

// pmHints explains the kernel's answers about tokens.
func pmHints(o pmOpts, err error) []string {
	msg := strings.ToLower(kernelMessage(err))
	switch {
	case strings.Contains(msg, "invalid token") || strings.Contains(msg, "unknown token"):
		return []string{fmt.Sprintf("no MPTCP connection in this network namespace has token %08x: tokens are printed by \"mptcpd-go monitor\"", o.token)}
	case strings.Contains(msg, "userspace pm not selected") || strings.Contains(msg, "not selected"):
		return []string{fmt.Sprintf("connection %08x is handled by the in-kernel path manager: set sysctl net.mptcp.pm_type=1 before the connection starts to manage it with pm verbs", o.token)}
	case errnoOf(err) == unix.EPERM:
		return []string{"the userspace path manager commands need CAP_NET_ADMIN: run as root"}
	}
	return nil
}
