package datapath

import (
	"net"
	"testing"
	"time"
)

// FuzzConnInput feeds arbitrary bytes to an established client subflow:
// the connection must fail or carry on, never panic or hang.
func FuzzConnInput(f *testing.F) {
	f.Add([]byte{0xff, 0, 0, 0})
	f.Add([]byte{3, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{4, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{9, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 7, 1, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			fakeServer(t, b)
			go func() { // drain PONGs and ACKs
				buf := make([]byte, 4096)
				for {
					if _, err := b.Read(buf); err != nil {
						return
					}
				}
			}()
			_ = b.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = b.Write(in)
		}()
		c, err := Client(t.Context(), a, &Config{Heartbeat: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		<-done
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		buf := make([]byte, 1024)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		_ = b.Close()
		_ = c.Abort()
	})
}
