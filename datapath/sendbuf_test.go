package datapath

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSendBuffer(t *testing.T) {
	var base uint64 = 1<<64 - 3
	s := NewSendBuffer(base, 8)
	if n, err := s.Write([]byte("abcdefghij")); n != 8 || !errors.Is(err, ErrSendBufferFull) {
		t.Fatalf("Write = %d, %v; want 8, ErrSendBufferFull", n, err)
	}
	d1, _ := s.Next(1, 3)
	d2, _ := s.Next(2, 3)
	d3, _ := s.Next(1, 10)
	want := []*Data{
		{DSN: base, Payload: []byte("abc")},
		{DSN: base + 3, Payload: []byte("def")},
		{DSN: base + 6, Payload: []byte("gh")},
	}
	if diff := cmp.Diff(want, []*Data{d1, d2, d3}); diff != "" {
		t.Fatalf("segments (-want +got):\n%s", diff)
	}
	if d, ok := s.Next(1, 10); ok {
		t.Fatalf("nothing left to send, got %+v", d)
	}
	if err := s.Ack(base + 9); !errors.Is(err, ErrInvalidAck) {
		t.Fatalf("ack beyond sent: %v", err)
	}
	if err := s.Ack(base + 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(base + 1); err != nil || s.Una() != base+2 || s.Unacked() != 6 {
		t.Fatalf("stale ack: err %v, una base+%d, unacked %d", err, s.Una()-base, s.Unacked())
	}
	// Subflow 1 dies: its unacked ranges come back, minus the acked part.
	lost := s.FailSubflow(1)
	if diff := cmp.Diff([]Range{{base + 2, base + 3}, {base + 6, base + 8}}, lost); diff != "" {
		t.Fatalf("lost ranges (-want +got):\n%s", diff)
	}
	r1, _ := s.Next(2, 10)
	r2, _ := s.Next(2, 1)
	r3, _ := s.Next(2, 1)
	want = []*Data{
		{DSN: base + 2, Payload: []byte("c")},
		{DSN: base + 6, Payload: []byte("g")},
		{DSN: base + 7, Payload: []byte("h")},
	}
	if diff := cmp.Diff(want, []*Data{r1, r2, r3}); diff != "" {
		t.Fatalf("reinjected (-want +got):\n%s", diff)
	}
	// The ack freed room for two more bytes.
	if n, err := s.Write([]byte("ijk")); n != 2 || !errors.Is(err, ErrSendBufferFull) {
		t.Fatalf("Write = %d, %v; want 2, ErrSendBufferFull", n, err)
	}
	if err := s.Ack(base + 8); err != nil || s.Unacked() != 2 {
		t.Fatalf("ack sent data: %v, unacked %d", err, s.Unacked())
	}
	s.Close()
	s.Close()
	if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	// The FIN's DSN rides with the last byte when the payload reaches it.
	fin, _ := s.Next(3, 2)
	if diff := cmp.Diff(&Data{DSN: base + 8, Payload: []byte("ij"), Fin: true}, fin); diff != "" {
		t.Fatalf("fin segment (-want +got):\n%s", diff)
	}
	if s.Done() {
		t.Fatal("Done before FIN acked")
	}
	if err := s.Ack(base + 11); err != nil || !s.Done() {
		t.Fatalf("ack FIN: %v, done %v", err, s.Done())
	}
}

func TestSendBufferBareFin(t *testing.T) {
	s := NewSendBuffer(10, 4)
	s.Close()
	d, ok := s.Next(0, 100)
	if !ok || d.DSN != 10 || !d.Fin || d.Payload != nil {
		t.Fatalf("Next = %+v, %v", d, ok)
	}
	if got := s.FailSubflow(0); len(got) != 1 || got[0] != (Range{10, 11}) {
		t.Fatalf("FailSubflow = %v", got)
	}
	d, ok = s.Next(1, 100)
	if !ok || !d.Fin || s.Ack(11) != nil || !s.Done() {
		t.Fatalf("reinjected FIN = %+v, %v, done %v", d, ok, s.Done())
	}
}

func TestSendBufferReinject(t *testing.T) {
	s := NewSendBuffer(100, 64)
	if _, err := s.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	s.Next(1, 4) // 100-104 on the subflow that stalls
	s.Next(2, 4) // 104-108 elsewhere
	s.Next(1, 4) // 108-110
	if err := s.Ack(102); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Range{{102, 104}, {108, 110}}, s.Reinject(1)); diff != "" {
		t.Fatalf("Reinject (-want +got):\n%s", diff)
	}
	if got := s.Reinject(1); got != nil {
		t.Errorf("second Reinject = %v, want nothing: already queued", got)
	}
	r1, _ := s.Next(2, 10)
	r2, _ := s.Next(2, 10)
	want := []*Data{{DSN: 102, Payload: []byte("23")}, {DSN: 108, Payload: []byte("89")}}
	if diff := cmp.Diff(want, []*Data{r1, r2}); diff != "" {
		t.Fatalf("reinjected (-want +got):\n%s", diff)
	}
	// The stalled subflow dies after all: what was already reinjected is
	// not queued again.
	if got := s.FailSubflow(1); got != nil {
		t.Errorf("FailSubflow after Reinject = %v, want nothing", got)
	}
	if d, ok := s.Next(2, 10); ok {
		t.Errorf("nothing left to send, got %+v", d)
	}
}

// TestSendBufferWrap runs writes, segments and acks through a small
// buffer so its ring wraps many times; every segment must carry the bytes
// written at its DSN, whether built by Next or encoded by appendNext.
func TestSendBufferWrap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]byte, 100_000)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	base := uint64(1<<64 - 30_000)
	s := NewSendBuffer(base, 1000)
	written, acked := 0, 0
	var frame []byte
	for acked < len(src) {
		n, _ := s.Write(src[written:min(len(src), written+rng.IntN(700))])
		written += n
		for {
			var d *Data
			var ok bool
			if rng.IntN(2) == 0 {
				d, ok = s.Next(0, rng.IntN(300)+1)
			} else {
				var err error
				frame, _, ok = s.appendNext(frame[:0], 0, rng.IntN(300)+1)
				if ok {
					var f Frame
					if f, err = Decode(bytes.NewReader(frame)); err != nil {
						t.Fatal(err)
					}
					d = f.(*Data)
				}
			}
			if !ok {
				break
			}
			off := int(d.DSN - base)
			if !bytes.Equal(d.Payload, src[off:off+len(d.Payload)]) {
				t.Fatalf("segment at %d carries the wrong bytes", off)
			}
		}
		acked += rng.IntN(written - acked + 1)
		if err := s.Ack(base + uint64(acked)); err != nil {
			t.Fatal(err)
		}
	}
}
