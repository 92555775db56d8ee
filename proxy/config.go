package proxy

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mptcpd-go/mptcpd-go/datapath"
)

// ParsePath turns a --via or --backup value into a path: an IP literal
// binds the source address, anything else names an interface
// (SO_BINDTODEVICE, which needs CAP_NET_RAW).
func ParsePath(s string, backup bool) (datapath.Path, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.IsUnspecified() || a.IsMulticast() {
			return datapath.Path{}, fmt.Errorf("path %q: give a local unicast address or an interface name", s)
		}
		return datapath.Path{LocalAddr: a.Unmap(), Backup: backup}, nil
	}
	// IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and
	// white space in names.
	if s == "" || len(s) > unix.IFNAMSIZ-1 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return datapath.Path{}, fmt.Errorf("path %q is neither an IP address nor an interface name", s)
	}
	return datapath.Path{Device: s, Backup: backup}, nil
}

// ReadPSKFile reads a pre-shared key from name. One trailing newline is
// not part of the key. It refuses an empty file and one that every user
// can read, since the key is what keeps the server from being an open
// relay.
func ReadPSKFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("reading the pre-shared key: %w", err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("pre-shared key file %s is readable by every user (mode %#o): run \"chmod 600 %s\" (and consider a new key)", name, fi.Mode().Perm(), name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the pre-shared key: %w", err)
	}
	b = trimNewline(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("pre-shared key file %s is empty: put the same secret in it on both hosts, e.g. \"head -c 32 /dev/urandom | base64 > %s\"", name, name)
	}
	return b, nil
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
