package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Ports the server process listens on (all addresses of its namespace).
const (
	portTCP      = 5201
	portMPTCP    = 5202
	portDatapath = 5203
)

// ioSize is the size of every write on the sender and of the read buffer
// on the receiver.
const ioSize = 256 << 10

// patternPeriod is the period of the transferred byte stream. It is not a
// multiple of any frame or write size, so reordered or duplicated chunks
// change the stream (and are caught by the pattern check), while the
// sender needs no per-byte work to produce it.
const patternPeriod = 1<<20 + 7

// patternSeed makes both processes generate the same pattern.
const patternSeed = "mptcpd-go datapath bench pattern"

// requestSize is the length of a request on the wire.
const requestSize = 32

// requestMagic starts every request, so a stray connection is refused.
const requestMagic = 0x44504231 // "DPB1"

// Request operations.
const (
	opSend = 1 // the server sends the stream
	opHold = 2 // the server holds the connection idle until EOF
)

// request is what the client sends on a new connection, before anything
// else, on every kind of connection (TCP, kernel MPTCP, datapath).
type request struct {
	Op  uint8
	SHA bool // both ends hash the stream with SHA-256
	ID  uint64
	// Duration bounds the sending time, Limit the bytes (0: no limit);
	// the server stops at whichever comes first.
	Duration time.Duration
	Limit    uint64
}

func (r request) encode() []byte {
	b := make([]byte, requestSize)
	binary.BigEndian.PutUint32(b[0:], requestMagic)
	b[4] = r.Op
	if r.SHA {
		b[5] = 1
	}
	binary.BigEndian.PutUint64(b[8:], r.ID)
	binary.BigEndian.PutUint64(b[16:], uint64(r.Duration))
	binary.BigEndian.PutUint64(b[24:], r.Limit)
	return b
}

// readRequest reads and checks one request.
func readRequest(rd io.Reader) (request, error) {
	b := make([]byte, requestSize)
	if _, err := io.ReadFull(rd, b); err != nil {
		return request{}, fmt.Errorf("read request: %w", err)
	}
	if binary.BigEndian.Uint32(b) != requestMagic {
		return request{}, errors.New("read request: bad magic")
	}
	r := request{
		Op:       b[4],
		SHA:      b[5] == 1,
		ID:       binary.BigEndian.Uint64(b[8:]),
		Duration: time.Duration(binary.BigEndian.Uint64(b[16:])),
		Limit:    binary.BigEndian.Uint64(b[24:]),
	}
	if r.Op != opSend && r.Op != opHold {
		return request{}, fmt.Errorf("read request: unknown op %d", r.Op)
	}
	return r, nil
}

// pattern is the periodic stream both ends know: byte i of a transfer is
// buf[i%patternPeriod]. buf holds one period plus ioSize more bytes, so
// ioSize bytes from any offset are contiguous.
type pattern struct{ buf []byte }

func newPattern() pattern {
	r := rand.New(rand.NewChaCha8([32]byte([]byte(patternSeed))))
	b := make([]byte, patternPeriod+ioSize)
	for i := 0; i < patternPeriod; i += 8 { // the buffer has room past the period
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	copy(b[patternPeriod:], b[:ioSize])
	return pattern{buf: b}
}

// chunk returns the n ≤ ioSize bytes at stream offset off.
func (p pattern) chunk(off uint64, n int) []byte {
	o := int(off % patternPeriod)
	return p.buf[o : o+n]
}

// check reports whether b equals the stream at offset off.
func (p pattern) check(off uint64, b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), ioSize)
		if !bytes.Equal(b[:n], p.chunk(off, n)) {
			return false
		}
		b = b[n:]
		off += uint64(n)
	}
	return true
}

// cpuTimes is user and system CPU time.
type cpuTimes struct{ User, Sys time.Duration }

func (c cpuTimes) sub(d cpuTimes) cpuTimes { return cpuTimes{c.User - d.User, c.Sys - d.Sys} }

// Total is user plus system time.
func (c cpuTimes) Total() time.Duration { return c.User + c.Sys }

// processCPU returns the CPU time of the calling process, all threads.
func processCPU() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	return cpuTimes{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// selfRSS returns the resident set size of the calling process in bytes,
// from /proc/self/status.
func selfRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: parse %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss: no VmRSS in /proc/self/status")
}
