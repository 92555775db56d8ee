#!/bin/sh
# Builds the Debian package of mptcpd-go with dpkg-deb, from this checkout,
# and prints the path of the .deb on its last line of output.
#
#   packaging/build-deb.sh                 build/mptcpd-go_0.1.0~dev_amd64.deb
#   VERSION=0.2.0 packaging/build-deb.sh
#
# Needs go (modules come from the Go module proxy or the module cache),
# make, dpkg-deb and fakeroot (optional: without it the files are owned by
# whoever runs the script, which is fine as root). The package installs the
# binary to /usr/sbin, the unit (ExecStart rewritten to /usr/sbin) to
# /lib/systemd/system, the sysusers file to /usr/lib/sysusers.d, the default
# policy to /etc/mptcpd-go (conffiles), the examples to
# /usr/share/doc/mptcpd-go/examples, man pages and completions.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
VERSION=${VERSION:-0.1.0~dev}
ARCH=${ARCH:-$(dpkg --print-architecture)}
MAINTAINER=${MAINTAINER:-mptcpd-go developers <mptcpd-go@users.noreply.github.com>}
BUILDDIR=${BUILDDIR:-$top/build}
GOARCH=$(go env GOARCH)
case "$ARCH" in
"$GOARCH") ;;
*) echo "build-deb.sh: ARCH $ARCH differs from Go's GOARCH $GOARCH; set GOARCH" >&2; exit 1 ;;
esac

root=$BUILDDIR/deb/mptcpd-go_${VERSION}_$ARCH
rm -rf "$root"
mkdir -p "$root"

make --no-print-directory install DESTDIR="$root" BUILDDIR="$BUILDDIR" \
	PREFIX=/usr SYSCONFDIR=/etc \
	UNITDIR=/lib/systemd/system SYSUSERSDIR=/usr/lib/sysusers.d \
	BASHCOMPDIR=/usr/share/bash-completion/completions \
	ZSHCOMPDIR=/usr/share/zsh/vendor-completions >&2

# The unit must run the packaged binary.
unit=$root/lib/systemd/system/mptcpd-go.service
if grep -q /usr/local/ "$unit" || ! grep -q '^ExecStart=/usr/sbin/mptcpd-go daemon$' "$unit"; then
	echo "build-deb.sh: the unit does not run /usr/sbin/mptcpd-go" >&2
	exit 1
fi
# Its header comment names the make-install path.
sed -i 's|^# expected at /usr/local/sbin/mptcpd-go (see README.md, "Install").|# installed at /usr/sbin/mptcpd-go by the Debian package.|' "$unit"

# Debian's documentation conventions: compressed man pages and changelog,
# a copyright file.
doc=$root/usr/share/doc/mptcpd-go
gzip -9n "$root"/usr/share/man/man*/*
sed "s/@VERSION@/$VERSION/; s/@MAINTAINER@/$MAINTAINER/; s/@DATE@/$(date -R -d @${SOURCE_DATE_EPOCH:-0})/" \
	packaging/debian/changelog | gzip -9n > "$doc/changelog.gz"
install -m 0644 packaging/debian/copyright "$doc/copyright"
# Go binaries are static (CGO_ENABLED=0): no shared library dependencies.
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/mptcpd-go"

mkdir -p "$root/DEBIAN"
for f in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$f" "$root/DEBIAN/$f"
done
(cd "$root" && find etc -type f | sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed "s/@VERSION@/$VERSION/; s/@ARCH@/$ARCH/; s/@SIZE@/$size/; s/@MAINTAINER@/$MAINTAINER/" \
	packaging/debian/control > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +

deb=$BUILDDIR/mptcpd-go_${VERSION}_$ARCH.deb
if command -v fakeroot >/dev/null 2>&1 && [ "$(id -u)" != 0 ]; then
	fakeroot dpkg-deb --root-owner-group --build "$root" "$deb" >&2
else
	dpkg-deb --root-owner-group --build "$root" "$deb" >&2
fi
echo "$deb"
