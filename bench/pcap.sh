#!/bin/sh
# pcap.sh compares `mptcpd-go pcap summary` with tshark's MPTCP analysis
# on the same capture of kernel MPTCP traffic.
#
# It builds mptcpd-go and bench/pcap, installs tshark and ethtool when
# missing (Debian: apt-get), and as root (sudo unless already root)
# records a bulk transfer over two veth paths between two throw-away
# namespaces (removed at the end) with `pcap capture -i any`. Then, on
# that one file, it times
#   (a) tshark with MPTCP analysis (mappings and cross-subflow
#       retransmissions on) extracting per-packet MPTCP fields, and
#   (b) mptcpd-go pcap summary,
# both pinned to CPU 0 (taskset -c 0; GOMAXPROCS=1 for ours), best of
# $RUNS runs, and prints packets per second and the ratio.
#
#   bench/pcap.sh                      # ~600 k packets
#   BYTES=200000000 bench/pcap.sh      # smaller transfer
#   PCAP=/tmp/x.pcap bench/pcap.sh     # reuse an existing capture
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BYTES=${BYTES:-600000000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pcap-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

need=""
command -v tshark >/dev/null 2>&1 || need="$need tshark"
command -v ethtool >/dev/null 2>&1 || need="$need ethtool"
if [ -n "$need" ]; then
	$sudo apt-get update
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $need
fi

go build -o "$tmp/mptcpd-go" ./cmd/mptcpd-go
go build -o "$tmp/gen" ./bench/pcap
file=${PCAP:-}
if [ -z "$file" ]; then
	file="$tmp/bulk.pcap"
	$sudo "$tmp/gen" -cli "$tmp/mptcpd-go" -w "$file" -bytes "$BYTES"
	$sudo chown "$(id -u)" "$file"
fi

# Packets in the file: tshark counts every frame.
packets=$(tshark -r "$file" -T fields -e frame.number 2>/dev/null | wc -l)
echo "capture: $file, $packets packets, $(du -h "$file" | cut -f1)"

# best_of CMD...: the fastest wall time in seconds of $RUNS runs.
best_of() {
	best=""
	for _ in $(seq "$RUNS"); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" -eq 1 ]; then best=$t; fi
	done
	echo "$best"
}

tshark_cmd="taskset -c 0 tshark -r $file -o mptcp.analyze_mptcp:TRUE -o mptcp.analyze_mappings:TRUE -o mptcp.intersubflows_retransmission:TRUE -o mptcp.relative_sequence_numbers:TRUE -T fields -e frame.number -e mptcp.stream -e tcp.options.mptcp.subtype -e tcp.options.mptcp.rawdataseqno -e tcp.options.mptcp.rawdataack -e mptcp.dss.dsn -e mptcp.reinjection_of"
ours_cmd="taskset -c 0 env GOMAXPROCS=1 $tmp/mptcpd-go pcap summary $file"
# shellcheck disable=SC2086
t_tshark=$(best_of $tshark_cmd)
# shellcheck disable=SC2086
t_ours=$(best_of $ours_cmd)
pps_tshark=$(echo "$packets / $t_tshark" | bc -l)
pps_ours=$(echo "$packets / $t_ours" | bc -l)
ratio=$(echo "$pps_ours / $pps_tshark" | bc -l)
printf 'tshark (a):              %8.3f s  %12.0f packets/s\n' "$t_tshark" "$pps_tshark"
printf 'mptcpd-go pcap summary:  %8.3f s  %12.0f packets/s\n' "$t_ours" "$pps_ours"
printf 'ratio: %.1fx (target >= 50x)\n' "$ratio"
echo "commands:"
echo "  $tshark_cmd"
echo "  $ours_cmd"
echo "summary of the capture:"
"$tmp/mptcpd-go" pcap summary "$file" | sed 's/^/  /'
