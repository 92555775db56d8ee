package genl

import (
	"errors"
	"iter"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// eventMsg is one event as a generic netlink message.
func eventMsg(t EventType, attrs []byte) genetlink.Message {
	return genetlink.Message{Header: genetlink.Header{Command: uint8(t), Version: familyVersion}, Data: attrs}
}

// badEventMsg is an event whose token attribute is 2 bytes long.
var badEventMsg = eventMsg(EventClosed, nlAttr(uint16(AttrToken), 1, 2))

// mcastRead is what one read of the event socket returns.
type mcastRead struct {
	msgs []genetlink.Message
	err  error
}

// genltestSubscription returns a Subscription on a genltest connection
// whose successive reads return reads. genltest leaves the netlink header
// type of received messages at 0 where the kernel puts the family id, so the
// subscription is given family id 0.
func genltestSubscription(t *testing.T, reads ...mcastRead) *Subscription {
	conn := genltest.Dial(func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		if nreq.Header.Type != 0 || greq.Header.Command != 0 || len(greq.Data) != 0 {
			t.Errorf("subscription sent a request: %+v %+v", nreq, greq)
		}
		if len(reads) == 0 {
			t.Fatal("subscription read more than the test provided")
		}
		r := reads[0]
		reads = reads[1:]
		return r.msgs, r.err
	})
	t.Cleanup(func() {
		conn.Close()
		if len(reads) != 0 {
			t.Errorf("%d reads were not consumed", len(reads))
		}
	})
	return &Subscription{c: conn, familyID: 0}
}

var (
	created  = eventMsg(EventCreated, nlAttrs(evToken(1), connPart(local4, remote4, 0, 0)))
	closed   = eventMsg(EventClosed, evToken(1))
	removed  = eventMsg(EventRemoved, nlAttrs(evToken(2), evU8(AttrRemID, 3)))
	listener = eventMsg(EventListenerCreated, nlAttrs(evU16(AttrFamily, afInet), evBytes(AttrSport, nlBE16(10100)...),
		evBytes(AttrSaddr4, nlIP("10.0.5.1")...)))

	wantCreated  = &Created{Connection{Token: 1, Local: local4, Remote: remote4, Attrs: attrSet(connAttrs4...)}}
	wantClosed   = &Closed{Token: 1, Attrs: attrSet(AttrToken)}
	wantRemoved  = &Removed{Token: 2, RemoteID: 3, Attrs: attrSet(AttrToken, AttrRemID)}
	wantListener = &ListenerCreated{Listener{Local: netip.MustParseAddrPort("10.0.5.1:10100"),
		Attrs: attrSet(AttrFamily, AttrSport, AttrSaddr4)}}
)

// TestSubscriptionReceive reads multicast events from a genltest connection.
func TestSubscriptionReceive(t *testing.T) {
	s := genltestSubscription(t,
		mcastRead{msgs: []genetlink.Message{created, closed}},
		mcastRead{err: unix.ENOBUFS},
		mcastRead{msgs: []genetlink.Message{badEventMsg, removed}},
		mcastRead{msgs: []genetlink.Message{badEventMsg}},
		mcastRead{msgs: []genetlink.Message{listener}},
	)

	got, err := s.Receive()
	if err != nil {
		t.Fatalf("first Receive: %v", err)
	}
	if diff := cmp.Diff([]Event{wantCreated, wantClosed}, got, cmpNetip); diff != "" {
		t.Errorf("first Receive (-want +got):\n%s", diff)
	}

	_, err = s.Receive()
	checkEventsLost(t, err)

	// The subscription keeps working after the overflow; an undecodable
	// event is skipped when others in the same read decode.
	got, err = s.Receive()
	if err != nil {
		t.Fatalf("Receive after overflow: %v", err)
	}
	if diff := cmp.Diff([]Event{wantRemoved}, got, cmpNetip); diff != "" {
		t.Errorf("Receive after overflow (-want +got):\n%s", diff)
	}

	// A read with nothing decodable reports the decoding error.
	if got, err := s.Receive(); err == nil || errors.Is(err, ErrEventsLost) {
		t.Errorf("Receive of a bad event = %v, %v; want a decoding error", got, err)
	}

	got, err = s.Receive()
	if err != nil {
		t.Fatalf("last Receive: %v", err)
	}
	if diff := cmp.Diff([]Event{wantListener}, got, cmpNetip); diff != "" {
		t.Errorf("last Receive (-want +got):\n%s", diff)
	}
}

// checkEventsLost checks the error of a read that hit ENOBUFS.
func checkEventsLost(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrEventsLost) || !errors.Is(err, unix.ENOBUFS) {
		t.Errorf("Receive on overflow = %v, want an error matching ErrEventsLost and ENOBUFS", err)
	}
	if want := "receive mptcp events: no buffer space available: " + ErrEventsLost.Error(); err == nil || err.Error() != want {
		t.Errorf("Receive on overflow: error text %q, want %q", err, want)
	}
}

// TestSubscriptionNext checks that Next hands out the events of one read in
// order before reading again.
func TestSubscriptionNext(t *testing.T) {
	s := genltestSubscription(t,
		mcastRead{msgs: []genetlink.Message{created, closed}},
		mcastRead{msgs: []genetlink.Message{removed}},
		mcastRead{err: unix.ENOBUFS},
	)
	var got []Event
	for range 3 {
		ev, err := s.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, ev)
	}
	if diff := cmp.Diff([]Event{wantCreated, wantClosed, wantRemoved}, got, cmpNetip); diff != "" {
		t.Errorf("Next (-want +got):\n%s", diff)
	}
	_, err := s.Next()
	checkEventsLost(t, err)
}

// mcastSocket is a netlink.Socket for multicast tests: it records group
// joins and the receive buffer size, and each read returns the next batch of
// netlink messages. Unlike genltest it keeps the header type, so the family
// filter can be tested.
type mcastSocket struct {
	t       *testing.T
	joinErr error
	joined  []uint32
	readBuf int
	reads   []mcastNLRead
}

type mcastNLRead struct {
	msgs []netlink.Message
	err  error
}

func (s *mcastSocket) Close() error { return nil }

func (s *mcastSocket) Send(m netlink.Message) error {
	s.t.Errorf("subscription sent %+v", m)
	return errors.ErrUnsupported
}

func (s *mcastSocket) SendMessages(m []netlink.Message) error {
	s.t.Errorf("subscription sent %+v", m)
	return errors.ErrUnsupported
}

func (s *mcastSocket) Receive() ([]netlink.Message, error) {
	if len(s.reads) == 0 {
		s.t.Fatal("subscription read more than the test provided")
	}
	r := s.reads[0]
	s.reads = s.reads[1:]
	return r.msgs, r.err
}

func (s *mcastSocket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		msgs, err := s.Receive()
		if err != nil {
			yield(netlink.Message{}, err)
			return
		}
		for _, m := range msgs {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func (s *mcastSocket) JoinGroup(g uint32) error {
	if s.joinErr != nil {
		return s.joinErr
	}
	s.joined = append(s.joined, g)
	return nil
}

func (s *mcastSocket) LeaveGroup(uint32) error   { return nil }
func (s *mcastSocket) SetReadBuffer(n int) error { s.readBuf = n; return nil }
func (s *mcastSocket) SetWriteBuffer(int) error  { return nil }
func (s *mcastSocket) ReadBuffer() (int, error)  { return s.readBuf, nil }
func (s *mcastSocket) WriteBuffer() (int, error) { return 0, nil }
func (s *mcastSocket) conn() *genetlink.Conn     { return genetlink.NewConn(netlink.NewConn(s, 1)) }
func (s *mcastSocket) add(msgs ...netlink.Message) {
	s.reads = append(s.reads, mcastNLRead{msgs: msgs})
}

// nlEvent frames an event the way the kernel multicasts it: header type is
// the family id, sequence and port id are 0.
func nlEvent(familyID uint16, m genetlink.Message) netlink.Message {
	b, err := m.MarshalBinary()
	if err != nil {
		panic(err)
	}
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(familyID)}, Data: b}
}

// TestNewSubscription checks the group join, the receive buffer option and
// the family filter.
func TestNewSubscription(t *testing.T) {
	sock := &mcastSocket{t: t}
	s, err := newSubscription(sock.conn(), fakeFamilyID, fakeEventGroupID, &SubscribeOptions{ReadBuffer: 1 << 20})
	if err != nil {
		t.Fatalf("newSubscription: %v", err)
	}
	defer s.Close()
	if diff := cmp.Diff([]uint32{fakeEventGroupID}, sock.joined); diff != "" {
		t.Errorf("joined groups (-want +got):\n%s", diff)
	}
	if sock.readBuf != 1<<20 {
		t.Errorf("receive buffer %d, want %d", sock.readBuf, 1<<20)
	}

	// Messages of other families are skipped; a read with only those is
	// not returned at all.
	const otherFamily = fakeFamilyID + 1
	sock.add(nlEvent(fakeFamilyID, created), nlEvent(otherFamily, closed), nlEvent(fakeFamilyID, removed))
	sock.add(nlEvent(otherFamily, created))
	sock.add(nlEvent(fakeFamilyID, listener))
	sock.reads = append(sock.reads, mcastNLRead{err: os.NewSyscallError("recvmsg", unix.ENOBUFS)})

	got, err := s.Receive()
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if diff := cmp.Diff([]Event{wantCreated, wantRemoved}, got, cmpNetip); diff != "" {
		t.Errorf("first Receive (-want +got):\n%s", diff)
	}
	got, err = s.Receive()
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if diff := cmp.Diff([]Event{wantListener}, got, cmpNetip); diff != "" {
		t.Errorf("second Receive (-want +got):\n%s", diff)
	}
	_, err = s.Receive()
	checkEventsLost(t, err)
	if len(sock.reads) != 0 {
		t.Errorf("%d reads were not consumed", len(sock.reads))
	}
}

// TestNewSubscriptionJoinFails checks that a refused group join (joining
// mptcp_pm_events needs CAP_NET_ADMIN) is translated like other kernel
// errors.
func TestNewSubscriptionJoinFails(t *testing.T) {
	sock := &mcastSocket{t: t, joinErr: os.NewSyscallError("setsockopt", unix.EPERM)}
	s, err := newSubscription(sock.conn(), fakeFamilyID, fakeEventGroupID, nil)
	if err == nil {
		s.Close()
		t.Fatal("newSubscription succeeded, want an error")
	}
	if !errors.Is(err, ErrPermission) || !errors.Is(err, unix.EPERM) {
		t.Errorf("newSubscription = %v, want an error matching ErrPermission and EPERM", err)
	}
	if sock.readBuf != 0 {
		t.Errorf("receive buffer set to %d without the option", sock.readBuf)
	}
}
