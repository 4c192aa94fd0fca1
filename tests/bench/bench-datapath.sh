#!/bin/bash
# SPDX-License-Identifier: MIT
# Direct vs meshsplice (eBPF engine) vs haproxy 2.6 (tuned splice), same
# topology, same run, alternating rounds; prints medians and ratios.
#   client: pod netns ── veth ── outside netns: iperf3 -s, connrate server
#   meshsplice: client in the test cgroup dials a VIP, the agent forwards from the pod netns
#   haproxy:    runs in the pod netns on 127.0.0.1, the client dials it
# Both cores are shared by client, proxy and server (no pinning): the figure
# is what two TCP hops cost on this machine.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
require_root
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNRATE=$BUILD/tests/bench/connrate
make_topology || exit 1
# Short connections leave the client's ports in TIME_WAIT; without reuse the
# 28k default ports cap every contender at ~500 conn/s. The pod netns is ours.
ip netns exec "$NS_A" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"

cat >"$T/conf/bench.yaml" <<YAML
type: MeshExternalService
name: iperf
spec:
  match:
    port: 5201
  endpoints:
    - address: 198.18.1.2
      port: 5201
status:
  vip:
    ip: 242.0.0.50
---
type: MeshExternalService
name: rr
spec:
  match:
    port: 7000
  endpoints:
    - address: 198.18.1.2
      port: 7000
status:
  vip:
    ip: 242.0.0.51
YAML
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
bg_out rr "$CONNRATE" server 7000 || exit 1
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name bench/a >/dev/null || exit 1
for p in 5201 7000; do
	sed -e "s/@LISTEN@/1$p/" -e "s/@UPSTREAM@/198.18.1.2:$p/" "$(dirname "$0")/haproxy.cfg.in" >"$T/haproxy-$p.cfg"
	ip netns exec "$NS_A" haproxy -f "$T/haproxy-$p.cfg" -D -p "$T/haproxy-$p.pid" || exit 1
	BG_PIDS+=($(cat "$T/haproxy-$p.pid"))
done

plain() { ip netns exec "$NS_A" "$@"; }  # not in the test cgroup: never steered
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A R
run_round() {
	R[direct_bulk]+=" $(plain iperf3 -c 198.18.1.2 -p 5201 -t "$SECS" -J | gbps)"
	R[meshsplice_bulk]+=" $(in_pod "$NS_A" iperf3 -c 242.0.0.50 -p 5201 -t "$SECS" -J | gbps)"
	R[haproxy_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 15201 -t "$SECS" -J | gbps)"
	R[direct_short]+=" $(plain "$CONNRATE" short 198.18.1.2 7000 "$SECS" 64 | awk '{print $1}')"
	R[meshsplice_short]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.51 7000 "$SECS" 64 | awk '{print $1}')"
	R[haproxy_short]+=" $(plain "$CONNRATE" short 127.0.0.1 17000 "$SECS" 64 | awk '{print $1}')"
	R[direct_p99]+=" $(plain "$CONNRATE" rr 198.18.1.2 7000 "$SECS" | awk '{print $5}')"
	R[meshsplice_p99]+=" $(in_pod "$NS_A" "$CONNRATE" rr 242.0.0.51 7000 "$SECS" | awk '{print $5}')"
	R[haproxy_p99]+=" $(plain "$CONNRATE" rr 127.0.0.1 17000 "$SECS" | awk '{print $5}')"
}
a0=$(cpu_ticks "$AGENT_PID")
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	run_round
done
echo
printf "%-28s %12s %12s %12s %14s %14s\n" "workload (median, min..max)" direct meshsplice haproxy "ms/direct" "ms/haproxy"
for w in bulk short p99; do
	d=$(echo "${R[direct_$w]}" | median) m=$(echo "${R[meshsplice_$w]}" | median) h=$(echo "${R[haproxy_$w]}" | median)
	unit=$([ $w = bulk ] && echo "Gb/s" || ([ $w = short ] && echo "conn/s" || echo "ms p99"))
	printf "%-28s %12s %12s %12s %14s %14s\n" "$w ($unit)" "$d" "$m" "$h" \
		"$(ratio "$m" "$d")" "$(ratio "$m" "$h")"
	printf "%-28s %12s %12s %12s\n" "" "$(echo "${R[direct_$w]}" | minmax)" "$(echo "${R[meshsplice_$w]}" | minmax)" "$(echo "${R[haproxy_$w]}" | minmax)"
done
echo "agent CPU over the whole run: $(( $(cpu_ticks "$AGENT_PID") - a0 )) ticks"
csv_dump datapath
finish
