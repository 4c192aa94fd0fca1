#!/bin/bash
# SPDX-License-Identifier: MIT
# What each forwarder setting moves: the agent (eBPF engine) restarted with
# one setting changed at a time, the variants alternating within every round,
# on bulk (1 stream: Gb/s and the agent's CPU-seconds per GB), short
# connections (64 clients) and keep-alive p99. Ratios are to the defaults,
# measured in the same run. Topology as bench-datapath's.
#   KNOBS: "label|agent flags" lines to try instead of the list below.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
KNOBS=${KNOBS:-"defaults|
pipes of 64 KiB|--pipe-size 65536
pipes of 1 MiB|--pipe-size 1048576
no pipe pool|--pipe-pool 0
Nagle on|--no-nodelay
256 KiB socket buffers|--sockbuf 262144
1 event per epoll_wait|--epoll-batch 1
1 accept per wake-up|--accept-batch 1"}
make_topology || exit 1
ip netns exec "$NS_A" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
bulk_rr_services 198.18.1.2
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
bg_out rr "$CONNRATE" server 7000 || exit 1

declare -A R
mapfile -t VARIANTS <<<"$KNOBS"
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	for i in "${!VARIANTS[@]}"; do
		flags=${VARIANTS[$i]#*|}
		stop_agent TERM
		# shellcheck disable=SC2086 # flags are words
		start_agent $flags || exit 1
		ms enable --netns "/var/run/netns/$NS_A" --name bench/knobs >/dev/null || exit 1
		t0=$(cpu_ticks "$AGENT_PID")
		json=$(in_pod "$NS_A" iperf3 -c 242.0.0.50 -p 5201 -t "$SECS" -J)
		t1=$(cpu_ticks "$AGENT_PID")
		R[${i}_bulk]+=" $(echo "$json" | gbps)"
		R[${i}_cpugb]+=" $(echo "$json" | cpu_per_gb "$t1" "$t0")"
		R[${i}_short]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.51 7000 "$SECS" 64 | awk '{print $1}')"
		R[${i}_p99]+=" $(in_pod "$NS_A" "$CONNRATE" rr 242.0.0.51 7000 "$SECS" | awk '{print $5}')"
	done
done
echo
printf "%-26s %9s %7s %9s %7s %9s %7s %9s %7s\n" "workload (median)" "bulk Gb/s" ratio "CPU-s/GB" ratio "short/s" ratio "p99 ms" ratio
for i in "${!VARIANTS[@]}"; do
	row=()
	for w in bulk cpugb short p99; do
		m=$(echo "${R[${i}_$w]}" | median)
		row+=("$m" "$(ratio "$m" "$(echo "${R[0_$w]}" | median)")")
	done
	printf "%-26s %9s %7s %9s %7s %9s %7s %9s %7s\n" "${VARIANTS[$i]%%|*}" "${row[@]}"
done
echo "(ratios to the first line; CPU-s/GB and p99: lower is better; min..max in bench-results.csv)"
if [ -n "${BENCH_CSV:-}" ]; then
	for k in "${!R[@]}"; do
		i=${k%%_*} mm=$(echo "${R[$k]}" | minmax)
		echo "knobs,${k#*_},\"${VARIANTS[$i]%%|*}\",$(echo "${R[$k]}" | median),${mm%%..*},${mm##*..}" >>"$BENCH_CSV"
	done
fi
finish
