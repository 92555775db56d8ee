// Package nlsock is a generic netlink socket read and written with plain
// blocking system calls instead of the Go runtime's network poller.
//
// A goroutine waiting in the poller is woken through epoll and then
// scheduled, often by waking another OS thread; one blocked in recvfrom is
// woken by the kernel directly. On a quiet host that is the difference
// between tens and hundreds of microseconds from an mptcp_pm event to the
// path manager's answer. The price is one OS thread per waiting reader.
//
// Socket implements the netlink.Socket interface and the optional ones
// that netlink.Conn uses (groups, options, buffers, deadlines).
package nlsock

import (
	"encoding/binary"
	"fmt"
	"iter"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"

	"github.com/mptcpd-go/mptcpd-go/internal/netnsutil"
	"golang.org/x/sys/unix"
)

// bufSize holds any one netlink datagram: the kernel caps dump messages
// at 32 KiB.
const bufSize = 64 << 10

// idleWake bounds how long a read blocks without a deadline, so that Close
// never depends on the self-addressed wake-up alone (sending it needs
// CAP_NET_ADMIN).
const idleWake = time.Second

// Socket is a blocking netlink socket. Send and Receive may be used from
// different goroutines; Close wakes a blocked Receive.
type Socket struct {
	fd  int
	pid uint32

	closed atomic.Bool
	// inUse is held shared by readers and writers while they use fd and
	// exclusively by Close, so the descriptor is never closed under a
	// system call (and then reused by another open).
	inUse sync.RWMutex

	// deadline is the read deadline in Unix nanoseconds, 0 for none.
	deadline atomic.Int64

	rmu     sync.Mutex // one reader at a time; guards the fields below
	buf     []byte
	timeout time.Duration // SO_RCVTIMEO currently set
}

// Open creates a NETLINK_GENERIC socket, in the network namespace nsFD
// refers to when nsFD >= 0, and binds it.
func Open(nsFD int) (*Socket, error) {
	fd, err := socketIn(nsFD)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("getsockname", err)
	}
	nl, ok := sa.(*unix.SockaddrNetlink)
	if !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket has a %T address", sa)
	}
	s := &Socket{fd: fd, pid: nl.Pid, buf: make([]byte, bufSize)}
	if err := s.setTimeout(idleWake); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

// socketIn creates the socket in the namespace nsFD (-1: the caller's).
func socketIn(nsFD int) (int, error) {
	return netnsutil.Socket(nsFD, unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
}

// PID is the socket's netlink port id.
func (s *Socket) PID() uint32 { return s.pid }

// acquire marks fd in use; it fails once Close began.
func (s *Socket) acquire() error {
	s.inUse.RLock()
	if s.closed.Load() {
		s.inUse.RUnlock()
		return net.ErrClosed
	}
	return nil
}

// Close closes the socket, waking a reader blocked in Receive.
func (s *Socket) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	// A message to ourselves ends a blocked recvfrom at once; without the
	// right to send it, idleWake does within a second.
	noop := make([]byte, unix.NLMSG_HDRLEN)
	putHeader(noop, unix.NLMSG_NOOP, 0, 0, s.pid)
	_ = unix.Sendto(s.fd, noop, unix.MSG_DONTWAIT, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: s.pid})
	s.inUse.Lock()
	defer s.inUse.Unlock()
	return os.NewSyscallError("close", unix.Close(s.fd))
}

// Send sends one message.
func (s *Socket) Send(m netlink.Message) error {
	return s.SendMessages([]netlink.Message{m})
}

// SendMessages sends messages in one datagram.
func (s *Socket) SendMessages(ms []netlink.Message) error {
	var b []byte
	for _, m := range ms {
		mb, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		b = append(b, mb...)
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.inUse.RUnlock()
	for {
		err := unix.Sendto(s.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		return os.NewSyscallError("sendto", err)
	}
}

// Receive reads one datagram's messages, blocking until one arrives, the
// read deadline passes (os.ErrDeadlineExceeded) or the socket is closed
// (net.ErrClosed).
func (s *Socket) Receive() ([]netlink.Message, error) {
	var msgs []netlink.Message
	for m, err := range s.ReceiveIter() {
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// ReceiveIter is Receive as an iterator.
func (s *Socket) ReceiveIter() iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		b, err := s.read()
		if err != nil {
			yield(netlink.Message{}, err)
			return
		}
		for m, err := range messages(b) {
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// messages splits a datagram into its messages; a malformed one ends the
// sequence with an error.
func messages(b []byte) iter.Seq2[netlink.Message, error] {
	return func(yield func(netlink.Message, error) bool) {
		for len(b) > 0 {
			if len(b) < unix.NLMSG_HDRLEN {
				yield(netlink.Message{}, fmt.Errorf("netlink: %d bytes left, too short for a message header", len(b)))
				return
			}
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				yield(netlink.Message{}, fmt.Errorf("netlink: message length %d does not fit the %d bytes left", l, len(b)))
				return
			}
			// The decoder wants the padding too; a last message may
			// lack it.
			msg := b[:min(align(l), len(b))]
			if len(msg) != align(l) {
				msg = append(make([]byte, 0, align(l)), msg...)[:align(l)]
			}
			var m netlink.Message
			if err := m.UnmarshalBinary(msg); err != nil {
				yield(netlink.Message{}, err)
				return
			}
			if !yield(m, nil) {
				return
			}
			b = b[min(align(l), len(b)):]
		}
	}
}

// read returns a copy of the next datagram from the kernel.
func (s *Socket) read() ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.inUse.RUnlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for {
		if s.closed.Load() {
			return nil, net.ErrClosed
		}
		wait := idleWake
		if dl := s.deadline.Load(); dl != 0 {
			left := time.Until(time.Unix(0, dl))
			if left <= 0 {
				return nil, os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if err := s.setTimeout(wait); err != nil {
			return nil, err
		}
		n, _, flags, from, err := unix.Recvmsg(s.fd, s.buf, nil, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			continue // timeout: check closed and the deadline
		case err != nil:
			return nil, os.NewSyscallError("recvmsg", err)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); ok && nl.Pid != 0 {
			continue // Close's wake-up, or a stray user-space sender
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, fmt.Errorf("netlink: a %d-byte buffer truncated a message", len(s.buf))
		}
		return append([]byte(nil), s.buf[:n]...), nil
	}
}

// setTimeout sets SO_RCVTIMEO when it differs from the current one (s.rmu
// held, or the socket not yet shared).
func (s *Socket) setTimeout(d time.Duration) error {
	// Round to what the kernel keeps, so that equal timeouts compare
	// equal and a short one is not rounded down to "forever".
	d = max(d.Truncate(time.Microsecond), time.Microsecond)
	if d == s.timeout {
		return nil
	}
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	s.timeout = d
	return nil
}

// SetDeadline sets the read deadline; writes do not block for long.
func (s *Socket) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

// SetReadDeadline sets when a blocked Receive gives up; the zero time
// means never. It takes effect for the next wait: a read already blocked
// notices it within a second.
func (s *Socket) SetReadDeadline(t time.Time) error {
	var dl int64
	if !t.IsZero() {
		dl = max(t.UnixNano(), 1)
	}
	s.deadline.Store(dl)
	return nil
}

// SetWriteDeadline is accepted and ignored: sends to the kernel do not
// wait for buffer space.
func (s *Socket) SetWriteDeadline(time.Time) error { return nil }

// JoinGroup joins a multicast group.
func (s *Socket) JoinGroup(group uint32) error {
	return s.setInt(unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group), "NETLINK_ADD_MEMBERSHIP")
}

// LeaveGroup leaves a multicast group.
func (s *Socket) LeaveGroup(group uint32) error {
	return s.setInt(unix.SOL_NETLINK, unix.NETLINK_DROP_MEMBERSHIP, int(group), "NETLINK_DROP_MEMBERSHIP")
}

// SetOption sets a boolean netlink socket option.
func (s *Socket) SetOption(o netlink.ConnOption, enable bool) error {
	var opt int
	switch o {
	case netlink.PacketInfo:
		opt = unix.NETLINK_PKTINFO
	case netlink.BroadcastError:
		opt = unix.NETLINK_BROADCAST_ERROR
	case netlink.NoENOBUFS:
		opt = unix.NETLINK_NO_ENOBUFS
	case netlink.ListenAllNSID:
		opt = unix.NETLINK_LISTEN_ALL_NSID
	case netlink.CapAcknowledge:
		opt = unix.NETLINK_CAP_ACK
	case netlink.ExtendedAcknowledge:
		opt = unix.NETLINK_EXT_ACK
	case netlink.GetStrictCheck:
		opt = unix.NETLINK_GET_STRICT_CHK
	default:
		return fmt.Errorf("netlink: unknown option %d", o)
	}
	v := 0
	if enable {
		v = 1
	}
	return s.setInt(unix.SOL_NETLINK, opt, v, fmt.Sprintf("netlink option %d", opt))
}

// SetReadBuffer sets the receive buffer, beyond rmem_max when allowed.
func (s *Socket) SetReadBuffer(n int) error {
	if err := s.setInt(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n, "SO_RCVBUFFORCE"); err == nil {
		return nil
	}
	return s.setInt(unix.SOL_SOCKET, unix.SO_RCVBUF, n, "SO_RCVBUF")
}

// SetWriteBuffer sets the send buffer.
func (s *Socket) SetWriteBuffer(n int) error {
	return s.setInt(unix.SOL_SOCKET, unix.SO_SNDBUF, n, "SO_SNDBUF")
}

// ReadBuffer is the receive buffer's size.
func (s *Socket) ReadBuffer() (int, error) {
	return s.getInt(unix.SOL_SOCKET, unix.SO_RCVBUF, "SO_RCVBUF")
}

// WriteBuffer is the send buffer's size.
func (s *Socket) WriteBuffer() (int, error) {
	return s.getInt(unix.SOL_SOCKET, unix.SO_SNDBUF, "SO_SNDBUF")
}

func (s *Socket) setInt(level, opt, v int, name string) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.inUse.RUnlock()
	return os.NewSyscallError("setsockopt "+name, unix.SetsockoptInt(s.fd, level, opt, v))
}

func (s *Socket) getInt(level, opt int, name string) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.inUse.RUnlock()
	v, err := unix.GetsockoptInt(s.fd, level, opt)
	return v, os.NewSyscallError("getsockopt "+name, err)
}

// align rounds a message length up to netlink's 4-byte alignment.
func align(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// putHeader writes a netlink message header into b.
func putHeader(b []byte, typ, flags uint16, seq, pid uint32) {
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], pid)
}
