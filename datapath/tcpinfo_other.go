//go:build !linux

package datapath

import (
	"errors"
	"net"
	"syscall"
	"time"
)

type kernelInfo struct {
	rtt         time.Duration
	rate        float64
	notsent     int
	retransmits int
	unacked     int
	lastAck     time.Duration
}

func tuneTCP(*net.TCPConn) error { return nil }

func tcpInfo(*net.TCPConn) (kernelInfo, bool) { return kernelInfo{}, false }

func bindToDevice(string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return errors.New("datapath: binding to a device needs Linux")
	}
}
