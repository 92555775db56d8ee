package datapath

import (
	"errors"
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
