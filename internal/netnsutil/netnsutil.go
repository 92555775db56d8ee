// Package netnsutil creates sockets in another network namespace without
// moving any goroutine of the caller into it.
package netnsutil

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Socket calls socket(2) with domain, typ and proto in the namespace nsFD
// refers to, or in the caller's when nsFD < 0. A socket keeps the
// namespace it was created in.
func Socket(nsFD, domain, typ, proto int) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(domain, typ, proto)
		return fd, os.NewSyscallError("socket", err)
	}
	if nsFD < 0 {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	// A thread of its own enters the namespace; one that cannot return to
	// its namespace stays locked, so the runtime discards it.
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("open this thread's network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("enter network namespace: %w", os.NewSyscallError("setns", err))}
			return
		}
		fd, err := open()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}
