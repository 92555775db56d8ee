package datapath

import (
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkThroughputLoopback measures one-way stream throughput over 1
// and 2 TCP subflows on loopback:
//
//	go test ./datapath -run '^$' -bench Throughput -benchtime 3s
func BenchmarkThroughputLoopback(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("%dsub", n), func(b *testing.B) {
			ctx := context.Background()
			l, err := Listen(ctx, "tcp", "127.0.0.1:0", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			c, err := Dial(ctx, &ClientConfig{Paths: make([]Path, n)}, l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s, err := l.AcceptConn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 256<<10)
			b.SetBytes(int64(len(buf)))
			type result struct {
				n   int64
				err error
			}
			done := make(chan result, 1)
			go func() {
				k, err := io.Copy(io.Discard, s)
				done <- result{k, err}
			}()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.CloseWrite(); err != nil {
				b.Fatal(err)
			}
			r := <-done
			b.StopTimer()
			if r.err != nil || r.n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d bytes (%v), sent %d", r.n, r.err, int64(b.N)*int64(len(buf)))
			}
			closeErr := make(chan error, 1)
			go func() { closeErr <- s.Close() }()
			if err := c.Close(); err != nil {
				b.Error(err)
			}
			if err := <-closeErr; err != nil {
				b.Error(err)
			}
		})
	}
}

// TestHotPathAllocs checks that moving a DATA frame from the send buffer
// through the encoder, the subflow decoder and the receive ring to the
// reader allocates nothing once the buffers are warm.
func TestHotPathAllocs(t *testing.T) {
	const window = 1 << 20
	snd := NewSendBuffer(7, window)
	rcv := NewReassembler(7, window)
	chunk := seq(40 << 10)
	var wire []byte
	var src readerOf
	dec := newBufferedDecoder(&src)
	out := make([]byte, 64<<10)
	step := func() {
		if _, err := snd.Write(chunk); err != nil {
			t.Fatal(err)
		}
		wire = wire[:0]
		for {
			var ok bool
			if wire, _, ok = snd.appendNext(wire, 0, DefaultMaxPayload); !ok {
				break
			}
		}
		src.b = wire
		for len(src.b) > 0 || dec.frameBuffered() {
			f, err := dec.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if err := rcv.store(f.(*Data)); err != nil {
				t.Fatal(err)
			}
		}
		for rcv.unread() > 0 {
			rcv.read(out)
		}
		if err := snd.Ack(rcv.consumed()); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm up: rings and buffers reach their size
		step()
	}
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("hot path: %v allocations per run, want 0", n)
	}
}

// readerOf is an io.Reader over b that the test refills in place.
type readerOf struct{ b []byte }

func (r *readerOf) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
