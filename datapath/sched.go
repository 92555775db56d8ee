package datapath

import "time"

// SubflowInfo is what a Scheduler sees of one usable subflow.
type SubflowInfo struct {
	ID     int  // subflow id, as in Stats
	Backup bool // backup priority (only offered when no active subflow lives)
	// Queued is the number of bytes handed to the subflow but not yet sent
	// on the wire: frames waiting for its writer plus, on TCP, the kernel's
	// not-yet-sent bytes (TCP_INFO tcpi_notsent_bytes).
	Queued int
	// Full reports that the subflow's own queue is at its limit; picking
	// it anyway is allowed but delays the frame behind that queue.
	Full bool
	// RTT is the smoothed round-trip time (TCP_INFO, else PING/PONG), 0 if
	// unknown yet.
	RTT time.Duration
	// DeliveryRate in bytes per second (TCP_INFO, else bytes written over
	// the subflow's lifetime), 0 if unknown yet.
	DeliveryRate float64
}

// Scheduler chooses the subflow(s) that carry the next DATA frame. Pick is
// called with the connection lock held and must not block; it returns
// indexes into subflows. No index means "wait until something changes"; more
// than one means the frame is sent on each (redundant scheduling). The
// connection never offers backup subflows while an active one lives.
type Scheduler interface {
	Pick(subflows []SubflowInfo) []int
	// Name identifies the scheduler in logs.
	Name() string
}

// NewLowestDrainTime returns the default scheduler: the non-full subflow
// whose queued bytes would drain soonest wins.
func NewLowestDrainTime() Scheduler { return lowestDrain{} }

// NewRoundRobin returns a scheduler cycling through the non-full subflows.
func NewRoundRobin() Scheduler { return &roundRobin{} }

// NewRedundant returns a scheduler sending every frame on every subflow
// once all of them have room; the receiver drops the duplicates.
func NewRedundant() Scheduler { return redundant{} }

type lowestDrain struct{}

func (lowestDrain) Name() string { return "lowest-drain-time" }

// drainTime estimates when a new frame would start leaving: queued bytes
// over the delivery rate; without a rate, one RTT per queued frame; with
// neither, the byte count itself so emptier subflows still win.
func drainTime(s SubflowInfo) time.Duration {
	switch {
	case s.DeliveryRate > 0:
		return time.Duration(float64(s.Queued) / s.DeliveryRate * float64(time.Second))
	case s.RTT > 0:
		return s.RTT * time.Duration(1+s.Queued/MaxDataPayload)
	default:
		return time.Duration(s.Queued)
	}
}

func (lowestDrain) Pick(subflows []SubflowInfo) []int {
	best := -1
	var bestD time.Duration
	for i, s := range subflows {
		if s.Full {
			continue
		}
		d := drainTime(s)
		if best < 0 || d < bestD || (d == bestD && s.RTT < subflows[best].RTT) {
			best, bestD = i, d
		}
	}
	if best < 0 {
		return nil
	}
	return []int{best}
}

type roundRobin struct{ last int }

func (*roundRobin) Name() string { return "roundrobin" }

func (r *roundRobin) Pick(subflows []SubflowInfo) []int {
	// Cycle by subflow id rather than slice position: the slice changes
	// as subflows come and go.
	best, wrap := -1, -1
	for i, s := range subflows {
		if s.Full {
			continue
		}
		if s.ID > r.last && (best < 0 || s.ID < subflows[best].ID) {
			best = i
		}
		if wrap < 0 || s.ID < subflows[wrap].ID {
			wrap = i
		}
	}
	if best < 0 {
		best = wrap
	}
	if best < 0 {
		return nil
	}
	r.last = subflows[best].ID
	return []int{best}
}

type redundant struct{}

func (redundant) Name() string { return "redundant" }

func (redundant) Pick(subflows []SubflowInfo) []int {
	out := make([]int, 0, len(subflows))
	for i, s := range subflows {
		if s.Full {
			return nil // wait so that every subflow gets every frame
		}
		out = append(out, i)
	}
	return out
}
