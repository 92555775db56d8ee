package nlsock

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// open returns a blocking socket wrapped as a generic netlink connection;
// any user may talk to nlctrl.
func open(t *testing.T) (*Socket, *genetlink.Conn) {
	t.Helper()
	s, err := Open(-1)
	if err != nil {
		t.Fatalf("Open(-1): %v", err)
	}
	c := genetlink.NewConn(netlink.NewConn(s, s.PID()))
	t.Cleanup(func() { _ = c.Close() })
	return s, c
}

func TestFamiliesMatchPollerSocket(t *testing.T) {
	_, c := open(t)
	ref, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatalf("genetlink.Dial: %v", err)
	}
	defer ref.Close()

	// A dump spans several datagrams and ends with NLMSG_DONE.
	names := func(c *genetlink.Conn) []string {
		fams, err := c.ListFamilies()
		if err != nil {
			t.Fatalf("ListFamilies: %v", err)
		}
		var n []string
		for _, f := range fams {
			n = append(n, f.Name)
		}
		slices.Sort(n)
		return n
	}
	if diff := cmp.Diff(names(ref), names(c)); diff != "" {
		t.Errorf("families (-poller +blocking):\n%s", diff)
	}
	f, err := c.GetFamily("nlctrl")
	if err != nil || f.ID != unix.GENL_ID_CTRL {
		t.Errorf("GetFamily(nlctrl) = %+v, %v; want id %d", f, err, unix.GENL_ID_CTRL)
	}
	// Errors come back as errno with the kernel's extended ack.
	if _, err := c.GetFamily("no-such-family"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("GetFamily(no-such-family) = %v; want ENOENT", err)
	}
}

func TestReadDeadline(t *testing.T) {
	s, _ := open(t)
	if err := s.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Receive(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive with a passed deadline = %v; want os.ErrDeadlineExceeded", err)
	}
	// A cleared deadline blocks again (until Close, below).
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := s.deadline.Load(); got != 0 {
		t.Errorf("deadline after clearing = %d; want 0", got)
	}
}

func TestCloseWakesReader(t *testing.T) {
	s, _ := open(t)
	got := make(chan error, 1)
	go func() {
		_, err := s.Receive()
		got <- err
	}()
	// Let the reader block; the test holds either way.
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Receive after Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * idleWake):
		t.Fatal("Receive still blocked after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if err := s.Send(netlink.Message{Header: netlink.Header{Length: unix.NLMSG_HDRLEN, Type: unix.NLMSG_NOOP}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close = %v; want net.ErrClosed", err)
	}
	if err := s.JoinGroup(1); !errors.Is(err, net.ErrClosed) {
		t.Errorf("JoinGroup after Close = %v; want net.ErrClosed", err)
	}
}

func TestOptionsAndBuffers(t *testing.T) {
	s, _ := open(t)
	for _, o := range []netlink.ConnOption{netlink.ExtendedAcknowledge, netlink.GetStrictCheck, netlink.NoENOBUFS} {
		if err := s.SetOption(o, true); err != nil {
			t.Errorf("SetOption(%d): %v", o, err)
		}
	}
	if err := s.SetOption(netlink.ConnOption(99), true); err == nil {
		t.Error("SetOption(99) succeeded; want an error")
	}
	if err := s.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	if n, err := s.ReadBuffer(); err != nil || n < 1<<19 {
		t.Errorf("ReadBuffer() = %d, %v; want at least what was asked (doubled by the kernel, or rmem_max)", n, err)
	}
	if err := s.SetWriteBuffer(1 << 16); err != nil {
		t.Errorf("SetWriteBuffer: %v", err)
	}
	if _, err := s.WriteBuffer(); err != nil {
		t.Errorf("WriteBuffer: %v", err)
	}
}

// datagram builds messages as the kernel would send them in one read.
func datagram(payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		h := make([]byte, unix.NLMSG_HDRLEN)
		binary.NativeEndian.PutUint32(h[0:], uint32(len(h)+len(p)))
		binary.NativeEndian.PutUint16(h[4:], 0x1c)
		binary.NativeEndian.PutUint32(h[8:], uint32(i+1))
		b = append(b, h...)
		b = append(b, p...)
		for len(b)%unix.NLMSG_ALIGNTO != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte // payloads
		wantErr bool
	}{
		{name: "empty"},
		{name: "one", in: datagram([]byte{1, 2, 3, 4}), want: [][]byte{{1, 2, 3, 4}}},
		{name: "padded", in: datagram([]byte{1}, []byte{2, 3}), want: [][]byte{{1}, {2, 3}}},
		{name: "short header", in: []byte{1, 2, 3}, wantErr: true},
		{name: "length beyond the data", in: datagram([]byte{1})[:unix.NLMSG_HDRLEN], wantErr: true},
		{name: "length below a header", in: func() []byte {
			b := datagram(nil)
			binary.NativeEndian.PutUint32(b, 4)
			return b
		}(), wantErr: true},
		{name: "good then truncated", in: append(datagram([]byte{7}), 0, 0), want: [][]byte{{7}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]byte
			var err error
			for m, e := range messages(tt.in) {
				if e != nil {
					err = e
					break
				}
				got = append(got, m.Data)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v; want error %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("payloads (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzMessages(f *testing.F) {
	f.Add(datagram([]byte{1, 2, 3, 4}))
	f.Add(datagram([]byte{1}, []byte{2, 3}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		for m, err := range messages(b) {
			if err != nil {
				break
			}
			// Each message fits the input, and they never overlap.
			n += int(m.Header.Length)
			if n > len(b)+unix.NLMSG_ALIGNTO*len(b) || int(m.Header.Length) < unix.NLMSG_HDRLEN {
				t.Fatalf("message of length %d from %d bytes", m.Header.Length, len(b))
			}
		}
	})
}
