package cli

import (
	"fmt"

	"github.com/mptcpd-go/mptcpd-go/genl"
	"golang.org/x/sys/unix"
)

// limits runs "limits set|show"; bare "limits" shows.
func (s *session) limits(argv []string) error {
	be, err := s.backend()
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return s.limitsShow(be, nil)
	}
	sub, rest := argv[0], argv[1:]
	switch {
	case matches(sub, "set"):
		u, err := parseLimits(rest)
		if err != nil {
			return err
		}
		if err := be.SetLimits(u); err != nil {
			return kernelError("set limits", err, limitsHints(u, err)...)
		}
		return nil
	case matches(sub, "show"):
		return s.limitsShow(be, rest)
	}
	// ip falls through to its "monitor" check here, so "ip mptcp limits
	// mon" starts a monitor; that accident is not reproduced.
	return unknownCommand(sub)
}

// parseLimits is mptcp_parse_limit. "limits show" parses its arguments
// too, and ignores them, as ip does.
func parseLimits(argv []string) (genl.LimitsUpdate, error) {
	var u genl.LimitsUpdate
	a := &args{v: argv}
	for ; a.more(); a.fwd() {
		w := a.cur()
		switch {
		case matches(w, "subflows"):
			v, err := a.next()
			if err != nil {
				return u, err
			}
			n, ok := getU32(v)
			if !ok {
				return u, invarg("invalid subflows\n", v)
			}
			u.Subflows = &n
		case matches(w, "add_addr_accepted"):
			v, err := a.next()
			if err != nil {
				return u, err
			}
			n, ok := getU32(v)
			if !ok {
				return u, invarg("invalid add_addr_accepted\n", v)
			}
			u.AddAddrAccepted = &n
		default:
			return u, invarg("unknown limit", w)
		}
	}
	return u, nil
}

func limitsHints(u genl.LimitsUpdate, err error) []string {
	if errnoOf(err) != unix.EINVAL {
		return nil
	}
	for _, v := range []*uint32{u.Subflows, u.AddAddrAccepted} {
		if v != nil && *v > genl.MaxLimit {
			return []string{fmt.Sprintf("the kernel allows at most %d for both subflows and add_addr_accepted", genl.MaxLimit)}
		}
	}
	return nil
}

func (s *session) limitsShow(be Backend, argv []string) error {
	if _, err := parseLimits(argv); err != nil {
		return err
	}
	l, err := be.Limits()
	if err != nil {
		return kernelError("get limits", err)
	}
	s.emit(formatLimits(l, s.opts.json, s.opts.pretty))
	return nil
}

// formatLimits prints the limits as ip does in text mode. For -j, where ip
// prints the same text, it prints one JSON object (pretty with -p) with
// the same member order.
func formatLimits(l genl.Limits, json, pretty bool) *printer {
	p := newPrinter(json, pretty)
	p.openObject()
	for _, m := range []struct {
		key string
		v   uint32
	}{{"add_addr_accepted", l.AddAddrAccepted}, {"subflows", l.Subflows}} {
		if p.isJSON() {
			p.uint(m.key, "", uint64(m.v))
		} else {
			// ip prints these u32 with %d.
			p.text(fmt.Sprintf("%s %d ", m.key, int32(m.v)))
		}
	}
	p.nl()
	p.closeObject()
	if p.isJSON() {
		p.jw.destroy()
	}
	return p
}
