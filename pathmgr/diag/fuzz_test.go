package diag

// Fuzz targets for the sock_diag decoders. Run one at a time, e.g.
//
//	go test ./pathmgr/diag -run '^$' -fuzz '^FuzzDecodeSubflow$' -fuzztime 60s
//
// The seeds below and the files under testdata/fuzz/<target>/ (replies
// captured from a Linux 6.18 kernel with MPTCPD_DIAG_CAPTURE, see
// kernel_test.go) also run as ordinary tests.

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeConnection: no panic; a decoded socket re-encodes to the same
// header; attributes after the header never change the socket part.
func FuzzDecodeConnection(f *testing.F) {
	f.Add(cat(msgBytes(sock4), attr(inetDiagInfo, infoBytes(fullInfo)...)))
	f.Add(msgBytes(sock6))
	f.Add(cat(msgBytes(sockMapped), attr(inetDiagInfo, 1, 2, 3)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeConnection(b)
		if err != nil {
			return
		}
		checkSocket(t, c.Socket, b)
		if c.Info != nil && c.Info.Token != 0 && len(b) < sizeofMsg+4+16 {
			t.Errorf("token %08x decoded from an INET_DIAG_INFO too short to hold one", c.Info.Token)
		}
	})
}

// FuzzDecodeSubflow: no panic; ok only with the mptcp ULP; the socket part
// round-trips.
func FuzzDecodeSubflow(f *testing.F) {
	f.Add(cat(msgBytes(sock4), ulp("mptcp", cat(attr(subflowAttrTokenLoc, u32(1)...), attr(subflowAttrIDLoc, 2)))))
	f.Add(cat(msgBytes(sock4), attr(inetDiagInfo, tcpInfoBytes(fullTCP)...), ulp("mptcp", cat(attr(subflowAttrTokenLoc, u32(1)...), attr(subflowAttrFlags, u32(0x30)...)))))
	f.Add(cat(msgBytes(sock6), attr(inetDiagInfo, tcpInfoBytes(fullTCP)[:100]...)))
	f.Add(cat(msgBytes(sock6), ulp("tls", nil)))
	f.Add(cat(msgBytes(sock4), ulp("mptcp", nil)))
	f.Add(msgBytes(sockMapped))
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, ok, err := decodeSubflow(b)
		if err != nil {
			if ok {
				t.Errorf("ok with error %v", err)
			}
			return
		}
		checkSocket(t, sf.Socket, b)
		if sf.TCP != nil && sf.TCP.Len > len(b)-sizeofMsg {
			t.Errorf("tcp_info of %d bytes in a %d-byte message", sf.TCP.Len, len(b))
		}
		if !ok && (sf.TokenLocal != 0 && len(b) == sizeofMsg) {
			t.Errorf("token decoded from a bare header")
		}
	})
}

// checkSocket re-encodes s and compares it with the header it came from,
// ignoring the bytes the decoder does not keep (timer, retrans, expires,
// queues, and the unused address bytes of IPv4).
func checkSocket(t *testing.T, s Socket, b []byte) {
	t.Helper()
	again, _, err := decodeSocket(msgBytes(s))
	if err != nil {
		t.Fatalf("re-decoding %+v: %v", s, err)
	}
	if diff := cmp.Diff(s, again, cmpNetip); diff != "" {
		t.Errorf("socket does not round-trip (-decoded +re-decoded):\n%s", diff)
	}
	if b[0] != s.Family || State(b[1]) != s.State {
		t.Errorf("family/state %d/%d from % x", s.Family, s.State, b[:2])
	}
}
