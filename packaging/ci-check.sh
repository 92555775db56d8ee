#!/bin/sh
# CI check of the Debian package: build it, install it with dpkg -i (twice,
# to check that reinstalling and the maintainer scripts are idempotent and
# that an edited conffile is kept), then check the installed files: the
# binary runs and checks the default policy, systemd-analyze verify accepts
# the installed unit, man renders the pages without warnings, the
# completion scripts parse. Meant for throw-away machines (it installs the
# package as root and leaves it installed); running it again is fine.
#
# Needs, besides Go: make, dpkg, systemd (for
# systemd-analyze and systemd-sysusers), man-db and groff-base, bash.
# zsh is used when present.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
step() { printf '\n=== %s\n' "$*"; }
fail() { echo "ci-check: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs the package)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

step "build the package"
BUILDDIR=${BUILDDIR:-$scratch/build}
export BUILDDIR
deb=$(packaging/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "build-deb.sh made no package"
dpkg-deb --info "$deb" >/dev/null

step "install it"
dpkg -i "$deb"
dpkg -s mptcpd-go | grep -q '^Status: install ok installed$' || fail "mptcpd-go is not installed"
getent passwd mptcpd-go >/dev/null || fail "postinst did not create the user mptcpd-go"

step "reinstall over an edited conffile"
conf=/etc/mptcpd-go/mptcpd-go.toml
marker="# ci-check: a local change that dpkg must keep"
grep -qxF "$marker" "$conf" || echo "$marker" >> "$conf"
dpkg -i --force-confold "$deb"
grep -qxF "$marker" "$conf" || fail "reinstalling overwrote the edited $conf"

step "the installed binary"
[ -x /usr/sbin/mptcpd-go ] || fail "no /usr/sbin/mptcpd-go"
/usr/sbin/mptcpd-go -V
/usr/sbin/mptcpd-go --help >/dev/null
/usr/sbin/mptcpd-go policy check

step "the installed unit"
unit=/lib/systemd/system/mptcpd-go.service
[ -f "$unit" ] || fail "no $unit"
grep -qx 'ExecStart=/usr/sbin/mptcpd-go daemon' "$unit" || fail "the unit does not run /usr/sbin/mptcpd-go"
grep -q '/usr/local/' "$unit" && fail "the unit still names /usr/local"
# Verified in a scratch root holding the system's units, the installed
# unit and binary (as systemd/systemd_test.go's TestUnitVerify does), so
# that it works without a running systemd.
units=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -e "$d/sysinit.target" ]; then units=$d; break; fi
done
[ -n "$units" ] || fail "no systemd unit directory with sysinit.target (install systemd)"
root=$scratch/root
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/sbin"
cp -a "$units" "$root/usr/lib/systemd/system"
cp "$unit" "$root/etc/systemd/system/mptcpd-go.service"
cp /usr/sbin/mptcpd-go "$root/usr/sbin/mptcpd-go"
out=$(systemd-analyze verify --no-pager --root="$root" /etc/systemd/system/mptcpd-go.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

step "the man pages"
for page in /usr/share/man/man8/mptcpd-go.8.gz /usr/share/man/man5/mptcpd-go.toml.5.gz; do
	[ -f "$page" ] || fail "no $page"
	out=$(MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) || fail "man -l $page: $out"
	[ -z "$out" ] || fail "man -l $page warns: $out"
done

step "the completion scripts"
bash -n /usr/share/bash-completion/completions/mptcpd-go
if command -v zsh >/dev/null 2>&1; then
	zsh -n /usr/share/zsh/vendor-completions/_mptcpd-go
fi

echo
echo "ci-check: OK ($deb)"
