package pcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// bulkCapture writes a classic Ethernet pcap of one MPTCP connection:
// the handshake, then n data segments of mss bytes (only the first 100
// captured, as with a snap length) with a DSS mapping each, alternating
// over two subflows, each answered by a pure ACK with a data ACK.
func bulkCapture(w io.Writer, n int) error {
	const kc, ks uint64 = 0x0102030405060708, 0x1112131415161718
	const mss = 1448
	const c1, c2, srv = "10.0.1.1:40000", "10.0.2.1:40001", "10.0.1.2:80"
	ic, is := KeyIDSN(kc), KeyIDSN(ks)
	le := binary.LittleEndian
	h := make([]byte, 24)
	le.PutUint32(h[0:], 0xa1b2c3d4)
	le.PutUint16(h[4:], 2)
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[16:], 65535)
	le.PutUint32(h[20:], LinkTypeEthernet)
	if _, err := w.Write(h); err != nil {
		return err
	}
	var rec []byte
	write := func(i int, p Packet, captured int) error {
		ip := ipPacket(p)
		full := len(ip) + 14
		frame := append(append(make([]byte, 12, full), 0x08, 0x00), ip...)
		if captured > 0 && captured < len(frame) {
			frame = frame[:captured]
		}
		rec = rec[:0]
		rec = le.AppendUint32(rec, uint32(1_700_000_000+i/100000))
		rec = le.AppendUint32(rec, uint32(i%100000*10))
		rec = le.AppendUint32(rec, uint32(len(frame)))
		rec = le.AppendUint32(rec, uint32(full))
		if _, err := w.Write(rec); err != nil {
			return err
		}
		_, err := w.Write(frame)
		return err
	}
	hs := []Packet{
		seg(0, c1, srv, syn, 1000, 0, nil, capSYN(0x01)),
		seg(0, srv, c1, synack, 5000, 1001, nil, capKey(0x01, ks)),
		seg(0, c1, srv, ack, 1001, 5001, nil, capKeys(0x01, kc, ks)),
		seg(0, c2, srv, syn, 7000, 0, nil, joinSYN(KeyToken(ks), 1, 2, false)),
		seg(0, srv, c2, synack, 9000, 7001, nil, joinSYNACK(ResponderJoinHMAC(kc, ks, 1, 2), 2, 0)),
		seg(0, c2, srv, ack, 7001, 9001, nil, joinACK(InitiatorJoinHMAC(kc, ks, 1, 2))),
	}
	for i, p := range hs {
		if err := write(i, p, 0); err != nil {
			return err
		}
	}
	payload := make([]byte, mss)
	seqs := [2]uint32{1001, 7001}
	for i := range n / 2 {
		k := i % 2
		src := []string{c1, c2}[k]
		dsn := ic + 1 + uint64(i)*mss
		ssn := seqs[k] - []uint32{1000, 7000}[k]
		d := seg(0, src, srv, psh, seqs[k], 0, payload, dssMap(is+1, dsn, ssn, mss))
		if err := write(2*i, d, 100); err != nil {
			return err
		}
		seqs[k] += mss
		a := seg(0, srv, src, ack, 0, seqs[k], nil, dssAck(dsn+mss))
		if err := write(2*i+1, a, 0); err != nil {
			return err
		}
	}
	return nil
}

// analyzeAll runs a capture through a Reader and an Analyzer.
func analyzeAll(r io.Reader) (int, *Analyzer, error) {
	rd, err := NewReader(r)
	if err != nil {
		return 0, nil, err
	}
	a := NewAnalyzer()
	n := 0
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return n, a, nil
		}
		if err != nil {
			return n, a, err
		}
		a.Packet(p)
		n++
	}
}

// BenchmarkReaderAnalyzer measures reading and analysing a bulk
// transfer; it reports packets per second.
func BenchmarkReaderAnalyzer(b *testing.B) {
	var buf bytes.Buffer
	const pkts = 200000
	if err := bulkCapture(&buf, pkts); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for b.Loop() {
		n, a, err := analyzeAll(bytes.NewReader(buf.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		if n < pkts {
			b.Fatalf("%d packets read, want %d", n, pkts)
		}
		_ = a.Summary()
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "pkts/s")
}

// TestAnalyzerMemoryBounded streams a long capture (generated on the fly,
// never held in memory) through the reader and analyzer and checks that
// the heap stays small: state is per connection, not per packet.
func TestAnalyzerMemoryBounded(t *testing.T) {
	pkts := 500_000
	if testing.Short() {
		pkts = 100_000
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(bulkCapture(pw, pkts)) }()
	rd, err := NewReader(pr)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer()
	var peak uint64
	var ms runtime.MemStats
	for i := 0; ; i++ {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a.Packet(p)
		if i%100_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	cs := a.Summary().Connections
	if len(cs) != 1 || len(cs[0].Subflows) != 2 || cs[0].Subflows[0].DataBytes+cs[0].Subflows[1].DataBytes != uint64(pkts/2)*1448 {
		t.Fatalf("unexpected summary %+v", cs)
	}
	// A few MiB for the runtime, buffers and the generator; a leak of
	// even a few bytes per packet would be far more.
	if peak > 32<<20 {
		t.Errorf("heap in use peaked at %d MiB over %d packets, want under 32 MiB", peak>>20, pkts)
	}
}
