package genl

import (
	"errors"
	"fmt"
	"os"
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

// drainIdle is how long Drain waits for one more message before it takes
// the socket for empty.
const drainIdle = 2 * time.Millisecond

// Drain discards the events waiting in the socket and those Next has
// buffered, for at most limit. Call it after ErrEventsLost, before taking
// the fresh state that replaces the lost events: the kernel reports no
// further loss until the socket's queue has been emptied, so events lost
// while the old ones still waited would otherwise go unnoticed. It
// clears the read deadline.
func (s *Subscription) Drain(limit time.Duration) error {
	s.pending = nil
	defer s.c.SetReadDeadline(time.Time{})
	for end := time.Now().Add(limit); time.Now().Before(end); {
		if err := s.c.SetReadDeadline(time.Now().Add(drainIdle)); err != nil {
			return fmt.Errorf("drain mptcp events: %w", err)
		}
		_, _, err := s.c.Receive()
		switch {
		case err == nil, errors.Is(err, unix.ENOBUFS):
			// More dropped: the state taken next covers them too.
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		default:
			return fmt.Errorf("drain mptcp events: %w", err)
		}
	}
	return nil
}

// SetDeadline sets the read deadline; a zero time means none.
func (s *Subscription) SetDeadline(t time.Time) error { return s.c.SetReadDeadline(t) }

// Close closes the subscription, unblocking a pending Receive.
func (s *Subscription) Close() error { return s.c.Close() }
