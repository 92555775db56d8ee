#!/bin/sh
# upm.sh runs the userspace path manager load benchmark, bench/upm.
#
# It builds the benchmark and the daemon (cmd/mptcpd-go) as the calling
# user, then runs the benchmark as root (through sudo unless already
# root): it creates two network namespaces (mptcpdgo-*-bench-client|server) joined by
# two veth paths and removes them when it ends, also on Ctrl-C.
# Arguments go to the benchmark; `bench/upm.sh --help` lists them.
#
#   bench/upm.sh                     # 250 and 1000 conn/s, 10 s each, signal off and on
#   bench/upm.sh --json > upm.json   # the same, for machines
#   bench/upm.sh --daemon off --profile /tmp/upm-prof
#                                    # pathmgr.Manager in a re-executed upm
#                                    # process: latency breakdown, CPU profiles
#
# The same by hand, as root, from the repository root:
#
#   go run ./bench/upm
#
# It takes about 2 minutes with the defaults. The results are benchmark
# figures with target verdicts; nothing asserts on them.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/upm-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
go build -o "$tmp/upm" ./bench/upm
# The daemon is used when it runs mode = "userspace"; without a binary
# the benchmark tries to build one itself (--daemon auto).
set -- --daemon auto "$@"
if go build -o "$tmp/mptcpd-go" ./cmd/mptcpd-go; then
	shift 2
	set -- --daemon "$tmp/mptcpd-go" "$@"
fi
status=0
if [ "$(id -u)" -eq 0 ]; then
	"$tmp/upm" "$@" || status=$?
else
	sudo "$tmp/upm" "$@" || status=$?
fi
exit "$status"
