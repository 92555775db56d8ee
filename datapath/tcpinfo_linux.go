package datapath

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// notsentLowat keeps little unsent data in the kernel so that data stays
// in our queues, where the scheduler can still move it to another subflow.
const notsentLowat = 128 << 10

// tuneTCP sets TCP_NOTSENT_LOWAT; failures only cost scheduling quality.
func tuneTCP(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notsentLowat)
	}); err != nil {
		return err
	}
	return serr
}

// kernelInfo is the part of TCP_INFO the scheduler and the stale-subflow
// detection use.
type kernelInfo struct {
	rtt     time.Duration
	rate    float64 // bytes/s
	notsent int
	// RTO retransmissions in a row, segments in flight, and time since
	// the last ACK: evidence whether the path still delivers.
	retransmits int
	unacked     int
	lastAck     time.Duration
}

func tcpInfo(c *net.TCPConn) (kernelInfo, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return kernelInfo{}, false
	}
	var ti *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		ti, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return kernelInfo{}, false
	}
	return kernelInfo{
		rtt:     time.Duration(ti.Rtt) * time.Microsecond,
		rate:    float64(ti.Delivery_rate),
		notsent: int(ti.Notsent_bytes),

		retransmits: int(ti.Retransmits),
		unacked:     int(ti.Unacked),
		lastAck:     time.Duration(ti.Last_ack_recv) * time.Millisecond,
	}, true
}

// bindToDevice returns a net.Dialer Control function applying
// SO_BINDTODEVICE.
func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
		}); err != nil {
			return err
		}
		return serr
	}
}
