package datapath

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// fakeSubflow is an in-memory subflow carrying encoded frames.
type fakeSubflow struct {
	id    int
	alive bool
	wire  [][]byte
}

// TestTransferOverLossySubflows pushes a stream through SendBuffer, the
// codec and Reassembler over fake subflows that reorder, duplicate, drop
// (a drop kills the subflow, as a TCP subflow only loses data by dying) and
// die with data in flight. The receiver must get every byte once, in order.
func TestTransferOverLossySubflows(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x6d70746370))
		data := make([]byte, 128<<10+int(rng.IntN(4096)))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		idsn := rng.Uint64()
		const window = 16 << 10
		s := NewSendBuffer(idsn, window)
		r := NewReassembler(idsn, window)

		var subflows []*fakeSubflow
		spawn := func() { subflows = append(subflows, &fakeSubflow{id: len(subflows), alive: true}) }
		for range 3 {
			spawn()
		}
		kill := func(sf *fakeSubflow) {
			sf.alive = false
			s.FailSubflow(sf.id)
			if rng.IntN(2) == 0 {
				sf.wire = nil // lost with the connection; otherwise delivered late
			}
			spawn()
		}
		var acks []uint64
		var received bytes.Buffer
		written, kills := 0, 0
		for step := 0; !(s.Done() && r.Done()); step++ {
			if step > 1_000_000 {
				t.Fatalf("seed %d: no progress: una %d, ack %d", seed, s.Una()-idsn, r.Ack()-idsn)
			}
			switch a := rng.IntN(100); {
			case a < 15: // application writes
				if written < len(data) {
					n, _ := s.Write(data[written:min(len(data), written+rng.IntN(3000)+1)])
					written += n
					if written == len(data) {
						s.Close()
					}
				}
			case a < 45: // scheduler sends on a random live subflow
				sf := subflows[rng.IntN(len(subflows))]
				if !sf.alive {
					continue
				}
				d, ok := s.Next(sf.id, rng.IntN(2000)+1)
				if !ok {
					continue
				}
				b, err := AppendFrame(nil, d)
				if err != nil {
					t.Fatal(err)
				}
				sf.wire = append(sf.wire, b)
				if rng.IntN(20) == 0 { // duplicate
					sf.wire = append(sf.wire, b)
				}
			case a < 85: // a frame arrives, maybe out of order, maybe dropped
				sf := subflows[rng.IntN(len(subflows))]
				if len(sf.wire) == 0 {
					continue
				}
				i := 0
				if rng.IntN(4) == 0 {
					i = rng.IntN(len(sf.wire))
				}
				b := sf.wire[i]
				sf.wire = append(sf.wire[:i], sf.wire[i+1:]...)
				if sf.alive && rng.IntN(100) == 0 {
					kill(sf) // the dropped frame took the subflow down
					kills++
					continue
				}
				f, err := Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				out, err := r.Push(f.(*Data))
				if err != nil {
					t.Fatalf("seed %d: Push: %v", seed, err)
				}
				received.Write(out)
				acks = append(acks, r.Ack())
			case a < 97: // a DATA_ACK arrives, possibly stale
				if len(acks) == 0 {
					continue
				}
				i := rng.IntN(len(acks))
				if err := s.Ack(acks[i]); err != nil {
					t.Fatalf("seed %d: Ack: %v", seed, err)
				}
				acks = append(acks[:i], acks[i+1:]...)
			default: // a live subflow dies with data in flight
				sf := subflows[rng.IntN(len(subflows))]
				if sf.alive && len(sf.wire) > 0 {
					kill(sf)
					kills++
				}
			}
		}
		if received.Len() != len(data) || sha256.Sum256(received.Bytes()) != sha256.Sum256(data) {
			t.Fatalf("seed %d: received %d bytes, sent %d; content differs", seed, received.Len(), len(data))
		}
		if kills == 0 {
			t.Errorf("seed %d: no subflow died; test is not exercising reinjection", seed)
		}
	}
}
