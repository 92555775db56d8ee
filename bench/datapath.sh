#!/bin/sh
# datapath.sh runs the userspace data path benchmark, bench/datapath:
# plain TCP, kernel MPTCP and package datapath over two veth links,
# shaped (2 x 100 Mbit/s) and unshaped, a link cut, CPU per GB and memory
# per idle connection (see the doc comment of bench/datapath/main.go).
#
# It builds the benchmark as the calling user, then runs it as root
# (through sudo unless already root): it creates two network namespaces
# (mptcpdgo-*-bench-client|server) and removes them when it ends, also on
# Ctrl-C. The output goes to stdout and to bench/datapath-results.txt;
# further arguments go to the benchmark (a later -o wins):
#
#   bench/datapath.sh                 # full run, about 105 s
#   bench/datapath.sh -quick          # quick check, about 35 s
#   bench/datapath.sh -sections cut -dp-dead-after 500ms
#   bench/datapath.sh -help
#
# The same by hand, as root, from the repository root:
#
#   go run ./bench/datapath -o bench/datapath-results.txt
#
# The figures are measurements with target verdicts; the benchmark exits
# 0 whatever the verdicts.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/datapath-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
go build -o "$tmp/datapath" ./bench/datapath
set -- -o "$PWD/bench/datapath-results.txt" "$@"
status=0
if [ "$(id -u)" -eq 0 ]; then
	"$tmp/datapath" "$@" || status=$?
else
	sudo "$tmp/datapath" "$@" || status=$?
fi
exit "$status"
