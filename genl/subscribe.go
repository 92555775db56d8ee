package genl

import (
	"errors"
	"fmt"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Subscription receives mptcp_pm events on its own socket. Joining the
// group needs CAP_NET_ADMIN.
type Subscription struct {
	c        *genetlink.Conn
	familyID uint16
	pending  []Event
}

// SubscribeOptions tunes a subscription.
type SubscribeOptions struct {
	// ReadBuffer sets the socket receive buffer in bytes; 0 keeps the
	// default. A small buffer makes ErrEventsLost more likely.
	ReadBuffer int
}

// Subscribe opens a new socket in the client's namespace joined to the
// mptcp_pm_events group. opts may be nil.
func (c *Client) Subscribe(opts *SubscribeOptions) (*Subscription, error) {
	gid, ok := c.fam.groups[eventGroupName]
	if !ok {
		return nil, fmt.Errorf("subscribe to mptcp events: the kernel's %s family has no %q group: %w",
			familyName, eventGroupName, ErrNotSupported)
	}
	conn, err := dialConn(c.nsFD, c.blocking)
	if err != nil {
		return nil, fmt.Errorf("subscribe to mptcp events: open socket: %w", err)
	}
	s, err := newSubscription(conn, c.fam.id, gid, opts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func newSubscription(conn *genetlink.Conn, familyID uint16, group uint32, opts *SubscribeOptions) (*Subscription, error) {
	if opts != nil && opts.ReadBuffer > 0 {
		if err := conn.SetReadBuffer(opts.ReadBuffer); err != nil {
			return nil, fmt.Errorf("subscribe to mptcp events: set receive buffer: %w", err)
		}
	}
	if err := conn.JoinGroup(group); err != nil {
		return nil, wrapError("subscribe to mptcp events (join group "+eventGroupName+")", 0, err)
	}
	return &Subscription{c: conn, familyID: familyID}, nil
}

// Receive blocks until at least one event arrives and returns the events of
// one read. Messages of other families and undecodable events are skipped;
// decoding errors are returned only when nothing decoded. After events were
// dropped it returns an error matching ErrEventsLost; the subscription then
// keeps working and the caller should resync. After Close or an expired
// deadline it returns an error matching net.ErrClosed or
// os.ErrDeadlineExceeded.
func (s *Subscription) Receive() ([]Event, error) {
	for {
		msgs, nmsgs, err := s.c.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				return nil, &Error{Op: "receive mptcp events", Kind: ErrEventsLost, Errno: unix.ENOBUFS, Err: err}
			}
			return nil, fmt.Errorf("receive mptcp events: %w", err)
		}
		evs, err := s.decode(msgs, nmsgs)
		if len(evs) > 0 {
			return evs, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (s *Subscription) decode(msgs []genetlink.Message, nmsgs []netlink.Message) ([]Event, error) {
	evs := make([]Event, 0, len(msgs))
	var firstErr error
	for i, m := range msgs {
		if i < len(nmsgs) && uint16(nmsgs[i].Header.Type) != s.familyID {
			continue
		}
		ev, err := DecodeEvent(m.Header.Command, m.Data)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		evs = append(evs, ev)
	}
	return evs, firstErr
}

// Next returns the next event, buffering the rest of a read.
func (s *Subscription) Next() (Event, error) {
	for len(s.pending) == 0 {
		evs, err := s.Receive()
		if err != nil {
			return nil, err
		}
		s.pending = evs
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev, nil
}

// SetDeadline sets the read deadline; a zero time means none.
func (s *Subscription) SetDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }

// Close closes the subscription, unblocking a pending Receive.
func (s *Subscription) Close() error { return s.c.Close() }
