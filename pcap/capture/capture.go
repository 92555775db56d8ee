// Package capture records packets from a network interface into a pcap
// or pcapng file in pure Go (AF_PACKET, no libpcap), optionally keeping
// only TCP segments that carry an MPTCP option.
package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/internal/netnsutil"
)

// DefaultSnaplen keeps whole packets of any usual MTU, and GSO batches.
const DefaultSnaplen = 262144

// AnyInterface captures on every interface of the namespace, like
// tcpdump -i any. Frames are stored with a Linux cooked v2 (SLL2) header,
// which records the interface and direction of each packet.
const AnyInterface = "any"

// rcvbuf is the socket receive buffer a capture asks for.
const rcvbuf = 32 << 20

// sll2Len is the size of the Linux cooked v2 header.
const sll2Len = 20

// Config selects what to capture.
type Config struct {
	// Interface is the name of the link to capture on, or AnyInterface
	// for all of the namespace's links (Linux cooked v2 link type).
	Interface string
	// NetNSFD is an open network namespace file to capture in; 0 or
	// less means the caller's namespace.
	NetNSFD int
	// Snaplen bounds the bytes kept per packet (DefaultSnaplen when 0).
	Snaplen int
	// MPTCPOnly keeps only TCP segments with an MPTCP option, filtered
	// in the kernel.
	MPTCPOnly bool
}

// Packet is one captured frame. Data is valid until the next Read.
type Packet struct {
	Time time.Time
	// Length is the frame's length on the wire; len(Data) may be less.
	Length int
	Data   []byte
}

// Source reads packets from an interface.
type Source struct {
	fd       int
	any      bool // cooked capture on every interface: SLL2 headers built here
	linkType LinkType
	snaplen  int
	buf      []byte
	oob      []byte
}

// Open starts capturing on cfg.Interface.
func Open(cfg Config) (*Source, error) {
	snaplen := cfg.Snaplen
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	nsFD := cfg.NetNSFD
	if nsFD <= 0 {
		nsFD = -1
	}
	any := cfg.Interface == AnyInterface
	// Interfaces differ in link-layer headers, so "any" reads from the
	// network header on (SOCK_DGRAM) and writes its own SLL2 header.
	typ := unix.SOCK_RAW
	if any {
		typ = unix.SOCK_DGRAM
	}
	fd, err := netnsutil.Socket(nsFD, unix.AF_PACKET, typ|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("capture on %s: open a packet socket (needs CAP_NET_RAW): %w", cfg.Interface, err)
	}
	s := &Source{fd: fd, any: any, snaplen: snaplen, buf: make([]byte, snaplen), oob: make([]byte, 128)}
	if any {
		s.buf = make([]byte, sll2Len+snaplen)
	}
	if err := s.setup(cfg, snaplen); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("capture on %s: %w", cfg.Interface, err)
	}
	return s, nil
}

func (s *Source) setup(cfg Config, snaplen int) error {
	if s.any {
		s.linkType = LinkTypeLinuxSLL2
		return s.finish(cfg, 0, 0, snaplen)
	}
	// The interface is looked up in the socket's namespace.
	ifr, err := unix.NewIfreq(cfg.Interface)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s.fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return fmt.Errorf("no interface %q: %w", cfg.Interface, err)
	}
	ifindex := int(ifr.Uint32())
	if err := unix.IoctlIfreq(s.fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return fmt.Errorf("link type of %q: %w", cfg.Interface, err)
	}
	// The hardware type is the first field of the address in the ifreq.
	hw := binary.NativeEndian.Uint16(ifrData(ifr)[:2])
	switch hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		s.linkType = LinkTypeEthernet
	case unix.ARPHRD_NONE, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_IPGRE, unix.ARPHRD_SIT:
		s.linkType = LinkTypeRaw
	default:
		return fmt.Errorf("interface %q has hardware type %d, which this capture does not handle (Ethernet, loopback and raw IP links are)", cfg.Interface, hw)
	}
	var link uint32
	if s.linkType == LinkTypeEthernet {
		link = 14
	}
	return s.finish(cfg, ifindex, link, snaplen)
}

// finish attaches the filter, asks for timestamps and binds to ifindex
// (0: every interface). link is the length of the link-layer header the
// filter sees.
func (s *Source) finish(cfg Config, ifindex int, link uint32, snaplen int) error {
	if cfg.MPTCPOnly {
		prog, err := mptcpFilter(link, uint32(snaplen))
		if err != nil {
			return err
		}
		if err := attach(s.fd, prog); err != nil {
			return err
		}
	}
	// A large receive buffer rides out bursts (GSO batches of 64 KiB)
	// while the writer is busy; without CAP_NET_ADMIN the kernel's
	// smaller limit applies, which is fine.
	if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_TIMESTAMPNS", err)
	}
	// Wake up now and then to notice cancellation.
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	if err := unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	// Frames queued between socket() and bind() or the filter may come
	// from any interface or fail the filter: drop them.
	for {
		_, _, err := unix.Recvfrom(s.fd, s.buf, unix.MSG_DONTWAIT)
		if err != nil {
			break
		}
	}
	return nil
}

// ifrData is the union part of an ifreq.
func ifrData(ifr *unix.Ifreq) []byte {
	b := (*[unix.IFNAMSIZ + 24]byte)(unsafe.Pointer(ifr))
	return b[unix.IFNAMSIZ:]
}

// attach installs a classic BPF program on the socket.
func attach(fd int, prog []bpf.RawInstruction) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attach the MPTCP filter: %w", os.NewSyscallError("setsockopt SO_ATTACH_FILTER", err))
	}
	return nil
}

// LinkType is the capture's link-layer header type.
func (s *Source) LinkType() LinkType { return s.linkType }

// Snaplen is the most bytes kept per packet.
func (s *Source) Snaplen() int { return s.snaplen }

// Read returns the next packet; it returns ctx's error once ctx is done.
func (s *Source) Read(ctx context.Context) (Packet, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Packet{}, err
		}
		if s.any {
			p, ok, err := s.readCooked()
			if ok || err != nil {
				return p, err
			}
			continue
		}
		// MSG_TRUNC: n is the frame's full length even when cut short.
		n, oobn, _, _, err := unix.Recvmsg(s.fd, s.buf, s.oob, unix.MSG_TRUNC)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return Packet{}, fmt.Errorf("read a packet: %w", os.NewSyscallError("recvmsg", err))
		}
		p := Packet{Length: n, Data: s.buf[:min(n, len(s.buf))], Time: time.Now()}
		if ts, ok := timestamp(s.oob[:oobn]); ok {
			p.Time = ts
		}
		return p, nil
	}
}

// readCooked reads one packet of an "any" capture and puts an SLL2
// header built from the sender address in front of it. ok is false when
// the read timed out or was interrupted before a packet came.
func (s *Source) readCooked() (p Packet, ok bool, err error) {
	n, oobn, _, from, err := unix.Recvmsg(s.fd, s.buf[sll2Len:], s.oob, unix.MSG_TRUNC)
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return Packet{}, false, nil
	case err != nil:
		return Packet{}, false, fmt.Errorf("read a packet: %w", os.NewSyscallError("recvmsg", err))
	}
	h := s.buf[:sll2Len]
	clear(h)
	if ll, ok := from.(*unix.SockaddrLinklayer); ok {
		binary.BigEndian.PutUint16(h[0:], htons(ll.Protocol))
		binary.BigEndian.PutUint32(h[4:], uint32(ll.Ifindex))
		binary.BigEndian.PutUint16(h[8:], ll.Hatype)
		h[10] = ll.Pkttype
		h[11] = min(ll.Halen, 8)
		copy(h[12:20], ll.Addr[:])
	}
	p = Packet{Length: sll2Len + n, Data: s.buf[:sll2Len+min(n, len(s.buf)-sll2Len)], Time: time.Now()}
	if ts, ok := timestamp(s.oob[:oobn]); ok {
		p.Time = ts
	}
	return p, true, nil
}

// timestamp finds the kernel's receive time among the control messages.
func timestamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return time.Unix(sec, nsec), true
		}
	}
	return time.Time{}, false
}

// Close stops the capture.
func (s *Source) Close() error {
	return os.NewSyscallError("close", unix.Close(s.fd))
}

// Run copies packets from s to w until count packets were written (0: no
// limit) or ctx is done; it then flushes w. It returns the number of
// packets written.
func Run(ctx context.Context, s *Source, w Writer, count int) (int, error) {
	n := 0
	for count <= 0 || n < count {
		p, err := s.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return n, errors.Join(err, w.Flush())
		}
		if err := w.WritePacket(p); err != nil {
			return n, err
		}
		n++
	}
	return n, w.Flush()
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
