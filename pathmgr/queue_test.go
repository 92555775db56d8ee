package pathmgr

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestJobQueueClaim: the event reader may make a call on a worker's
// connection only when nothing is queued or under way there, and what is
// queued meanwhile waits for the claim to end, so a connection's calls
// keep their order.
func TestJobQueueClaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	a1 := Remove{Token: 1, ID: 1}
	a2 := Remove{Token: 1, ID: 2}
	a3 := Remove{Token: 1, ID: 3}

	q := newJobQueue()
	if !q.claim() {
		t.Fatal("claim of an idle, empty queue failed")
	}
	if q.claim() {
		t.Fatal("second claim succeeded while the first is under way")
	}
	q.push(a1)
	got := make(chan []Action, 1)
	go func() { got <- q.wait(ctx) }()
	select {
	case b := <-got:
		t.Fatalf("worker took %v while the queue was claimed", b)
	case <-time.After(20 * time.Millisecond):
	}
	q.release()
	if diff := cmp.Diff([]Action{a1}, <-got); diff != "" {
		t.Errorf("worker's batch after release (-want +got):\n%s", diff)
	}
	// The worker holds the queue until it releases it.
	if q.claim() {
		t.Error("claim succeeded while the worker runs its batch")
	}
	q.release()
	q.push(a2)
	if q.claim() {
		t.Error("claim succeeded with an action queued; it would overtake it")
	}
	q.push(a3)
	if diff := cmp.Diff([]Action{a2, a3}, q.wait(ctx)); diff != "" {
		t.Errorf("queued batch (-want +got):\n%s", diff)
	}
	q.release()
	if !q.claim() {
		t.Error("claim of a drained, released queue failed")
	}
	cancel()
	if b := q.wait(ctx); b != nil {
		t.Errorf("wait after cancel = %v; want nil", b)
	}
}
