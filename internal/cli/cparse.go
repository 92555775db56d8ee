package cli

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// This file reproduces the argument parsing of iproute2's lib/utils.c, so
// that every argument ip accepts is accepted here with the same value, and
// every argument it refuses is refused.

// matches reports whether word is a non-empty prefix of keyword: iproute2's
// abbreviation rule ("ad" for "add", but "" for nothing).
func matches(word, keyword string) bool {
	return word != "" && strings.HasPrefix(keyword, word)
}

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// strtoul behaves like C's strtoul on a 64-bit system: leading white space,
// an optional sign, a base prefix when base is 0 or 16, then digits. It
// returns the value, how many bytes were consumed (0 when there were no
// digits) and whether the value overflowed (the value is then MaxUint64).
func strtoul(s string, base int) (v uint64, n int, overflow bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hexPrefix := i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && digitVal(s[i+2]) < 16
	switch {
	case (base == 0 || base == 16) && hexPrefix:
		base = 16
		i += 2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	}
	start := i
	for ; i < len(s); i++ {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		if !overflow {
			if v > (math.MaxUint64-uint64(d))/uint64(base) {
				overflow = true
			} else {
				v = v*uint64(base) + uint64(d)
			}
		}
	}
	if i == start {
		return 0, 0, false
	}
	if overflow {
		return math.MaxUint64, i, true
	}
	if neg {
		v = -v
	}
	return v, i, false
}

// getUint is iproute2's get_u8/get_u16/get_u32 with base 0: the whole
// argument must be a number no larger than max.
func getUint(arg string, max uint64) (uint64, bool) {
	if arg == "" {
		return 0, false
	}
	v, n, overflow := strtoul(arg, 0)
	if n == 0 || n != len(arg) || overflow || v > max {
		return 0, false
	}
	return v, true
}

func getU8(arg string) (uint8, bool) {
	v, ok := getUint(arg, math.MaxUint8)
	return uint8(v), ok
}

func getU16(arg string) (uint16, bool) {
	v, ok := getUint(arg, math.MaxUint16)
	return uint16(v), ok
}

func getU32(arg string) (uint32, bool) {
	v, ok := getUint(arg, math.MaxUint32)
	return uint32(v), ok
}

// ipAddr is an address argument as iproute2's get_addr reads it. The words
// "default", "all" and "any" are accepted without an address family; the
// kernel then refuses the request.
type ipAddr struct {
	addr   netip.Addr
	unspec string // the keyword, when the address is one of the words above
}

func (a ipAddr) String() string {
	if a.unspec != "" {
		return a.unspec
	}
	return a.addr.String()
}

// parseAddr is get_addr(..., AF_UNSPEC): an IPv6 address when the argument
// has a colon, else the legacy IPv4 form where "10.8" means 10.8.0.0 and
// each part may be octal or hex.
func parseAddr(arg string) (ipAddr, bool) {
	switch arg {
	case "default", "all", "any":
		return ipAddr{unspec: arg}, true
	}
	if strings.Contains(arg, ":") {
		// inet_pton knows no zones; netip does.
		if strings.Contains(arg, "%") {
			return ipAddr{}, false
		}
		a, err := netip.ParseAddr(arg)
		if err != nil || !a.Is6() {
			return ipAddr{}, false
		}
		return ipAddr{addr: a}, true
	}
	var b [4]byte
	cp := arg
	for i := 0; i < 4; i++ {
		v, n, _ := strtoul(cp, 0)
		if v > 255 || n == 0 {
			return ipAddr{}, false
		}
		b[i] = byte(v)
		rest := cp[n:]
		if rest == "" {
			break
		}
		if i == 3 || rest[0] != '.' {
			return ipAddr{}, false
		}
		cp = rest[1:]
	}
	return ipAddr{addr: netip.AddrFrom4(b)}, true
}

// checkIfname is iproute2's check_ifname, the kernel's dev_valid_name.
func checkIfname(name string) bool {
	if name == "" || len(name) >= ifNameSize || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || isCSpace(name[i]) {
			return false
		}
	}
	return true
}

// ifNameSize is IFNAMSIZ, including the terminating NUL.
const ifNameSize = 16

// ifIndexFromName is the last fallback of iproute2's ll_name_to_index:
// sscanf(name, "if%u").
func ifIndexFromName(name string) int {
	if !strings.HasPrefix(name, "if") {
		return 0
	}
	v, n, _ := strtoul(name[2:], 10)
	if n == 0 {
		return 0
	}
	return int(uint32(v))
}

// ifNameFallback is iproute2's name for an interface index it cannot
// resolve.
func ifNameFallback(index int) string {
	return "if" + strconv.FormatUint(uint64(uint32(index)), 10)
}

// ntop formats an address like glibc's inet_ntop: IPv4 dotted quad; IPv6
// with the longest run of zero groups (two or more) shortened and the last
// 32 bits dotted for IPv4-compatible and IPv4-mapped addresses.
func ntop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i := 0; i < 8; i++ {
		if w[i] == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			fmt.Fprintf(&sb, "%d.%d.%d.%d", b[12], b[13], b[14], b[15])
			return sb.String()
		}
		fmt.Fprintf(&sb, "%x", w[i])
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

// hex0x formats v like C's printf("%#x"): no prefix for zero.
func hex0x(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}
