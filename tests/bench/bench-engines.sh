#!/bin/bash
# SPDX-License-Identifier: MIT
# Steering cost, eBPF engine vs iptables engine vs direct, same run:
#   pod A: enabled in an agent with --engine bpf      (client in the test cgroup)
#   pod B: enabled in an agent with --engine iptables (client outside it)
# Same forwarder behind both; what differs is how the connect reaches it.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
make_topology || exit 1
for ns in "$NS_A" "$NS_B"; do
	ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
done
bulk_rr_services 198.18.3.2
bg_out rr "$CONNRATE" server 7000 || exit 1
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name bench/bpf >/dev/null || exit 1
# the second agent: iptables engine, its own socket, state and bpffs
mkdir -p "$T/state2"
"$AGENT_BIN" --config-dir "$T/conf" --engine iptables --control "$T/agent2.sock" --state-dir "$T/state2" \
	--bpffs "$BPFFS/ms2" --cgroup "$CG" >>"$T/agent2.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 50); do [ -S "$T/agent2.sock" ] && break; sleep 0.1; done
"$CLI_BIN" --control "$T/agent2.sock" enable --netns "/var/run/netns/$NS_B" --name bench/ipt >/dev/null || exit 1

plain() { ip netns exec "$@"; }
declare -A R
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	R[direct_short]+=" $(plain "$NS_B" "$CONNRATE" short 198.18.3.2 7000 "$SECS" 64 | awk '{print $1}')"
	R[bpf_short]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.51 7000 "$SECS" 64 | awk '{print $1}')"
	R[iptables_short]+=" $(plain "$NS_B" "$CONNRATE" short 242.0.0.51 7000 "$SECS" 64 | awk '{print $1}')"
	R[direct_bulk]+=" $(plain "$NS_B" iperf3 -c 198.18.3.2 -p 5201 -t "$SECS" -J | gbps)"
	R[bpf_bulk]+=" $(in_pod "$NS_A" iperf3 -c 242.0.0.50 -p 5201 -t "$SECS" -J | gbps)"
	R[iptables_bulk]+=" $(plain "$NS_B" iperf3 -c 242.0.0.50 -p 5201 -t "$SECS" -J | gbps)"
done
echo
printf "%-24s %12s %12s %12s %12s %12s\n" "workload (median)" direct ebpf iptables "ebpf/ipt" "ebpf/direct"
for w in short bulk; do
	d=$(echo "${R[direct_$w]}" | median) e=$(echo "${R[bpf_$w]}" | median) i=$(echo "${R[iptables_$w]}" | median)
	printf "%-24s %12s %12s %12s %12s %12s\n" "$w ($([ $w = short ] && echo conn/s || echo Gb/s))" "$d" "$e" "$i" \
		"$(ratio "$e" "$i")" "$(ratio "$e" "$d")"
	printf "%-24s %12s %12s %12s\n" "" "$(echo "${R[direct_$w]}" | minmax)" "$(echo "${R[bpf_$w]}" | minmax)" "$(echo "${R[iptables_$w]}" | minmax)"
done
"$CLI_BIN" --control "$T/agent2.sock" disable bench/ipt >/dev/null
csv_dump engines
finish
