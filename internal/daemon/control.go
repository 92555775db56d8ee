package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// request is one control-socket request; a connection carries one.
type request struct {
	Command string `json:"command"` // "status" or "reload"
}

// response answers a request.
type response struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// handler serves control requests.
type handler interface {
	status() Status
	reload() error
}

// controlServer listens on the daemon's unix socket.
type controlServer struct {
	ln   *net.UnixListener
	path string
	h    handler
	log  *zap.Logger
}

// listenControl creates the socket (mode 0660, parent directory 0755),
// replacing a stale socket file nobody listens on.
func listenControl(path string, h handler, log *zap.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the control socket's directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: is another mptcpd-go daemon running? Use another control_socket for a second daemon", path)
	}
	// Only a socket can be stale: anything else at the path (a mistyped
	// control_socket) is not ours to delete.
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("control socket %s: the path exists and is not a socket; remove it or set control_socket to another path", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	// The umask makes the socket 0660 from the start, so there is no window
	// in which others could connect.
	old := unix.Umask(0o117)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	return &controlServer{ln: ln, path: path, h: h, log: log}, nil
}

// Run serves until ctx ends.
func (s *controlServer) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept on control socket: %w", err)
		}
		go s.serve(c)
	}
}

// serve answers one connection after checking who is on the other end.
func (s *controlServer) serve(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var req request
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		writeResponse(c, response{Error: "bad request: " + err.Error()})
		return
	}
	if err := s.authorize(c, req.Command); err != nil {
		s.log.Warn("control request refused", zap.String("command", req.Command), zap.Error(err))
		writeResponse(c, response{Error: err.Error()})
		return
	}
	switch req.Command {
	case "status":
		st := s.h.status()
		writeResponse(c, response{OK: true, Status: &st})
	case "reload":
		if err := s.h.reload(); err != nil {
			writeResponse(c, response{Error: err.Error()})
			return
		}
		writeResponse(c, response{OK: true})
	default:
		writeResponse(c, response{Error: fmt.Sprintf("unknown command %q: want status or reload", req.Command)})
	}
}

// authorize checks the peer's credentials: root and the daemon's own user
// may do anything; members of the socket's group (it is 0660) may read the
// status.
func (s *controlServer) authorize(c *net.UnixConn, cmd string) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var groups []uint32
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if cerr == nil {
			// Without SO_PEERGROUPS (before Linux 4.13) only the primary
			// group counts; that is no reason to refuse root.
			groups, _ = peerGroups(int(fd))
		}
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("read peer credentials: %w", cerr)
	}
	if cred.Uid == 0 || int(cred.Uid) == os.Geteuid() {
		return nil
	}
	if cmd == "status" {
		var st unix.Stat_t
		if err := unix.Stat(s.path, &st); err == nil && (st.Gid == cred.Gid || slices.Contains(groups, st.Gid)) {
			return nil
		}
	}
	return fmt.Errorf("permission denied for uid %d: %s needs root", cred.Uid, cmd)
}

// peerGroups returns the peer's supplementary groups (SO_PEERGROUPS), so
// that members of the socket's group may read the status even when it is
// not their primary group.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 32)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch errno {
		case 0:
			return buf[:n/4], nil
		case unix.ERANGE:
			// n now holds the size needed.
			buf = make([]uint32, n/4+1)
		default:
			return nil, errno
		}
	}
}

func writeResponse(c net.Conn, r response) {
	_ = json.NewEncoder(c).Encode(r)
}

// QueryStatus asks the daemon listening on socket for its status.
func QueryStatus(socket string) (Status, error) {
	r, err := call(socket, "status")
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, errors.New("the daemon sent no status")
	}
	return *r.Status, nil
}

// RequestReload asks the daemon to reload its policy; a bad policy is
// refused and its errors returned, the old one stays in force.
func RequestReload(socket string) error {
	_, err := call(socket, "reload")
	return err
}

func call(socket, cmd string) (response, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return response{}, fmt.Errorf("connect to the daemon at %s: %w (is `mptcpd-go daemon` running? pick its socket with --socket or --config)", socket, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewEncoder(c).Encode(request{Command: cmd}); err != nil {
		return response{}, fmt.Errorf("send %s request: %w", cmd, err)
	}
	var r response
	if err := json.NewDecoder(c).Decode(&r); err != nil {
		return response{}, fmt.Errorf("read %s response: %w", cmd, err)
	}
	if !r.OK {
		return r, fmt.Errorf("%s refused by the daemon: %s", cmd, r.Error)
	}
	return r, nil
}
