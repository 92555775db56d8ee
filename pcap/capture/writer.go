package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// LinkType is a pcap LINKTYPE_ value.
type LinkType uint16

// Link types a Source produces.
const (
	LinkTypeEthernet LinkType = 1
	LinkTypeRaw      LinkType = 101
	// LinkTypeLinuxSLL2 is Linux cooked capture v2, used for captures
	// on AnyInterface.
	LinkTypeLinuxSLL2 LinkType = 276
)

// Writer stores packets in a capture file.
type Writer interface {
	WritePacket(p Packet) error
	// Flush writes out what is buffered.
	Flush() error
}

// pcapWriter writes the classic pcap format with nanosecond timestamps.
type pcapWriter struct {
	w       *bufio.Writer
	snaplen int
	hdr     [16]byte
}

// NewPcapWriter writes the pcap file header to w and returns a Writer for
// the packets.
func NewPcapWriter(w io.Writer, lt LinkType, snaplen int) (Writer, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d) // nanosecond resolution
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], uint32(lt))
	if _, err := bw.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write the pcap header: %w", err)
	}
	return &pcapWriter{w: bw, snaplen: snaplen}, nil
}

func (pw *pcapWriter) WritePacket(p Packet) error {
	data := p.Data[:min(len(p.Data), pw.snaplen)]
	ns := p.Time.UnixNano()
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(ns/1e9))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(ns%1e9))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(max(p.Length, len(data))))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("write a packet: %w", err)
	}
	if _, err := pw.w.Write(data); err != nil {
		return fmt.Errorf("write a packet: %w", err)
	}
	return nil
}

func (pw *pcapWriter) Flush() error { return pw.w.Flush() }

// pcapngWriter writes pcapng: one section, one interface, enhanced packet
// blocks with nanosecond timestamps.
type pcapngWriter struct {
	w       *bufio.Writer
	snaplen int
}

// pcapng block types and options.
const (
	blockSection   = 0x0a0d0d0a
	blockInterface = 0x00000001
	blockPacket    = 0x00000006
	optEnd         = 0
	optIfName      = 2
	optIfTSResol   = 9
)

// NewPcapngWriter writes the section and interface blocks (ifname names
// the interface) to w and returns a Writer for the packets.
func NewPcapngWriter(w io.Writer, lt LinkType, snaplen int, ifname string) (Writer, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	shb := make([]byte, 16)
	binary.LittleEndian.PutUint32(shb[0:], 0x1a2b3c4d)
	binary.LittleEndian.PutUint16(shb[4:], 1)
	binary.LittleEndian.PutUint16(shb[6:], 0)
	binary.LittleEndian.PutUint64(shb[8:], ^uint64(0)) // section length unknown
	idb := make([]byte, 8)
	binary.LittleEndian.PutUint16(idb[0:], uint16(lt))
	binary.LittleEndian.PutUint32(idb[4:], uint32(snaplen))
	if ifname != "" {
		idb = appendOption(idb, optIfName, []byte(ifname))
	}
	idb = appendOption(idb, optIfTSResol, []byte{9}) // 10^-9 s
	idb = appendOption(idb, optEnd, nil)
	for _, b := range []struct {
		typ  uint32
		body []byte
	}{{blockSection, shb}, {blockInterface, idb}} {
		if err := writeBlock(bw, b.typ, b.body, nil); err != nil {
			return nil, fmt.Errorf("write the pcapng header: %w", err)
		}
	}
	return &pcapngWriter{w: bw, snaplen: snaplen}, nil
}

func appendOption(b []byte, code uint16, val []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(val)))
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// writeBlock writes a block: type, total length, body, data padded to 4
// bytes, total length again.
func writeBlock(w io.Writer, typ uint32, body, data []byte) error {
	pad := (4 - len(data)%4) % 4
	total := 12 + len(body) + len(data) + pad
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint32(h[4:], uint32(total))
	var zeros [3]byte
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(total))
	for _, part := range [][]byte{h[:], body, data, zeros[:pad], tail[:]} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

func (pw *pcapngWriter) WritePacket(p Packet) error {
	data := p.Data[:min(len(p.Data), pw.snaplen)]
	var epb [20]byte
	ns := uint64(p.Time.UnixNano())
	binary.LittleEndian.PutUint32(epb[0:], 0) // interface 0
	binary.LittleEndian.PutUint32(epb[4:], uint32(ns>>32))
	binary.LittleEndian.PutUint32(epb[8:], uint32(ns))
	binary.LittleEndian.PutUint32(epb[12:], uint32(len(data)))
	binary.LittleEndian.PutUint32(epb[16:], uint32(max(p.Length, len(data))))
	if err := writeBlock(pw.w, blockPacket, epb[:], data); err != nil {
		return fmt.Errorf("write a packet: %w", err)
	}
	return nil
}

func (pw *pcapngWriter) Flush() error { return pw.w.Flush() }

// File is a capture file being written.
type File struct {
	Writer
	f *os.File
}

// Create creates path and writes its header: pcapng when the name ends
// in .pcapng, else pcap.
func Create(path string, lt LinkType, snaplen int, ifname string) (*File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create the capture file: %w", err)
	}
	var w Writer
	if strings.EqualFold(filepath.Ext(path), ".pcapng") {
		w, err = NewPcapngWriter(f, lt, snaplen, ifname)
	} else {
		w, err = NewPcapWriter(f, lt, snaplen)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{Writer: w, f: f}, nil
}

// Close flushes and closes the file.
func (f *File) Close() error {
	err := f.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return err
}
