package proxy

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzReadHeader: any input gives a header or an error, never a panic;
// the reader never takes more than MaxHeaderSize bytes; and what it
// accepts encodes and decodes back to itself.
func FuzzReadHeader(f *testing.F) {
	for _, dst := range []netip.AddrPort{{}, netip.MustParseAddrPort("192.0.2.7:443"), netip.MustParseAddrPort("[2001:db8::1]:80")} {
		f.Add(appendHeader(nil, dst))
	}
	f.Add([]byte{'M', 'P', 1, 6, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7, 0, 80})
	f.Add([]byte{'M', 'P', 2, 0, 0})
	f.Add([]byte{'M', 'P', 1, 4, 18})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		dst, err := readHeader(r)
		if read := len(in) - r.Len(); read > MaxHeaderSize {
			t.Fatalf("read %d bytes, more than MaxHeaderSize %d", read, MaxHeaderSize)
		}
		if err != nil {
			return
		}
		again, err := readHeader(bytes.NewReader(appendHeader(nil, dst)))
		want := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		if err != nil || again != want {
			t.Fatalf("header for %v decodes to %v, %v", dst, again, err)
		}
	})
}
