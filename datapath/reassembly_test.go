package datapath

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReassembler(t *testing.T) {
	var base uint64 = 1<<64 - 4 // DSNs wrap around during the test
	type push struct {
		off     uint64
		payload string
		fin     bool
		want    string // delivered by this push
		wantErr error
	}
	for _, tc := range []struct {
		name     string
		window   int
		pushes   []push
		wantAck  uint64 // relative to base
		wantDone bool
	}{
		{"in order", 16, []push{{0, "abc", false, "abc", nil}, {3, "de", false, "de", nil}}, 5, false},
		{"reorder", 16, []push{{3, "de", false, "", nil}, {0, "abc", false, "abcde", nil}}, 5, false},
		{"duplicate", 16, []push{{0, "abc", false, "abc", nil}, {0, "abc", false, "", nil}}, 3, false},
		{"overlap both sides", 16, []push{
			{2, "cd", false, "", nil}, {6, "gh", false, "", nil}, {1, "bcdefghi", false, "", nil}, {0, "a", false, "abcdefghi", nil},
		}, 9, false},
		{"old prefix trimmed", 16, []push{{0, "abc", false, "abc", nil}, {1, "bcdef", false, "def", nil}}, 6, false},
		{"fin empty", 16, []push{{0, "ab", false, "ab", nil}, {2, "", true, "", nil}}, 3, true},
		{"fin with data out of order", 16, []push{{2, "c", true, "", nil}, {0, "ab", false, "abc", nil}}, 4, true},
		{"duplicate fin after done", 16, []push{{0, "a", true, "a", nil}, {0, "a", true, "", nil}}, 2, true},
		{"window exceeded", 4, []push{{2, "cde", false, "", ErrWindowExceeded}}, 0, false},
		{"window exact", 4, []push{{2, "cd", false, "", nil}}, 0, false},
		{"conflicting fin", 16, []push{{0, "a", true, "a", nil}, {0, "ab", true, "", ErrBadFIN}}, 2, true},
		{"data past fin", 16, []push{{5, "", true, "", nil}, {4, "xy", false, "", ErrBadFIN}}, 0, false},
		{"fin before buffered data", 16, []push{{4, "xy", false, "", nil}, {3, "", true, "", ErrBadFIN}}, 0, false},
		{"fin before delivered data", 16, []push{{0, "abc", false, "abc", nil}, {1, "", true, "", ErrBadFIN}}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReassembler(base, tc.window)
			for i, p := range tc.pushes {
				got, err := r.Push(&Data{DSN: base + p.off, Payload: []byte(p.payload), Fin: p.fin})
				if !errors.Is(err, p.wantErr) {
					t.Fatalf("push %d: err %v, want %v", i, err, p.wantErr)
				}
				if diff := cmp.Diff(p.want, string(got)); diff != "" {
					t.Errorf("push %d delivered (-want +got):\n%s", i, diff)
				}
			}
			if got := r.Ack() - base; got != tc.wantAck {
				t.Errorf("Ack = base+%d, want base+%d", got, tc.wantAck)
			}
			if r.Done() != tc.wantDone {
				t.Errorf("Done = %v, want %v", r.Done(), tc.wantDone)
			}
		})
	}
}

func TestReassemblerBuffered(t *testing.T) {
	r := NewReassembler(0, 8)
	for _, off := range []uint64{6, 2, 4, 2} {
		if _, err := r.Push(&Data{DSN: off, Payload: []byte("xx")}); err != nil {
			t.Fatal(err)
		}
	}
	if r.Buffered() != 6 {
		t.Fatalf("Buffered = %d, want 6 (duplicates not stored twice)", r.Buffered())
	}
	got, err := r.Push(&Data{DSN: 0, Payload: []byte("ab")})
	if err != nil || len(got) != 8 || r.Buffered() != 0 {
		t.Fatalf("got %q, %v, buffered %d", got, err, r.Buffered())
	}
}

// TestReassemblerRing stores random, overlapping, out-of-order pieces of a
// stream while a slow reader consumes it in random amounts, so the ring
// wraps, grows and holds unread and out-of-order data at once. What is
// read must be the stream; the window is measured from the reader.
func TestReassemblerRing(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		const window = 3000
		src := make([]byte, 100_000)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		base := uint64(1<<64 - 50_000) // wraps mid-test
		r := NewReassembler(base, window)
		var got []byte
		buf := make([]byte, 700)
		for step := 0; len(got) < len(src); step++ {
			if step > 1_000_000 {
				t.Fatalf("seed %d: stuck at %d bytes", seed, len(got))
			}
			rd := len(got)
			if rng.IntN(3) == 0 {
				n := r.read(buf[:rng.IntN(len(buf))+1])
				got = append(got, buf[:n]...)
				continue
			}
			off := rd - 500 + rng.IntN(window+500)
			n := rng.IntN(900) + 1
			off = max(off, 0)
			end := min(off+n, rd+window, len(src))
			if end <= off {
				continue
			}
			if err := r.store(&Data{DSN: base + uint64(off), Payload: src[off:end]}); err != nil {
				t.Fatalf("seed %d: store [%d,%d) with reader at %d: %v", seed, off, end, rd, err)
			}
		}
		if diff := cmp.Diff(src, got); diff != "" {
			t.Fatalf("seed %d: stream differs", seed)
		}
		if len(r.ring) > window {
			t.Errorf("seed %d: ring grew to %d > window %d", seed, len(r.ring), window)
		}
		if err := r.store(&Data{DSN: base + uint64(len(src)), Payload: make([]byte, window+1)}); !errors.Is(err, ErrWindowExceeded) {
			t.Errorf("seed %d: beyond window: %v, want ErrWindowExceeded", seed, err)
		}
	}
}
