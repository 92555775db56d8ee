#!/bin/sh
# churn.sh runs the daemon churn/flood benchmark, bench/churn (issue 7).
#
# It builds the benchmark and the daemon (cmd/mptcpd-go) as the calling
# user, then runs the benchmark as root (through sudo unless already
# root): each run creates two network namespaces
# (mptcpdgo-*-bench-churn|peer) joined by 8 veth pairs and removes them
# when it ends. Arguments go to the benchmark; `bench/churn.sh -h` lists
# them.
#
#   bench/churn.sh                               # churn and flood, 2,000 events each
#   bench/churn.sh -runs 3 > bench/churn-results.txt
#   bench/churn.sh -scenario flood -events 10000
#
# The same by hand, as root, from the repository root:
#
#   go run ./bench/churn
#
# It takes about 30 s with the defaults. Nothing asserts on the figures.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${TMPDIR:-/tmp}/churn-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
go build -o "$tmp/churn" ./bench/churn
go build -o "$tmp/mptcpd-go" ./cmd/mptcpd-go
status=0
if [ "$(id -u)" -eq 0 ]; then
	"$tmp/churn" -daemon "$tmp/mptcpd-go" "$@" || status=$?
else
	sudo "$tmp/churn" -daemon "$tmp/mptcpd-go" "$@" || status=$?
fi
exit "$status"
