#!/bin/bash
# SPDX-License-Identifier: MIT
# Direct vs meshsplice (eBPF engine) vs haproxy 2.6 (tuned splice) vs nginx
# stream (256 KiB buffers) vs socat (-b 262144), same topology, same run,
# alternating rounds; prints medians and ratios to direct and to the best peer.
#   client: pod netns ── veth ── outside netns: iperf3 -s, connrate server
#   meshsplice: client in the test cgroup dials a VIP, the agent forwards from the pod netns
#   haproxy, nginx, socat: run in the pod netns on 127.0.0.1, the client dials them
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

sed "s|@T@|$T|g" "$(dirname "$0")/peers/nginx-stream.conf.in" >"$T/nginx-stream.conf"
ip netns exec "$NS_A" nginx -c "$T/nginx-stream.conf" &
BG_PIDS+=($!)
for p in 5201 7000; do
	ip netns exec "$NS_A" socat -b 262144 "TCP-LISTEN:3$p,bind=127.0.0.1,fork,reuseaddr" "TCP:198.18.1.2:$p" 2>>"$T/socat.err" &
	BG_PIDS+=($!)
done
sleep 0.5

plain() { ip netns exec "$NS_A" "$@"; }  # not in the test cgroup: never steered
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A R
run_round() {
	R[direct_bulk]+=" $(plain iperf3 -c 198.18.1.2 -p 5201 -t "$SECS" -J | gbps)"
	R[meshsplice_bulk]+=" $(in_pod "$NS_A" iperf3 -c 242.0.0.50 -p 5201 -t "$SECS" -J | gbps)"
	R[haproxy_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 15201 -t "$SECS" -J | gbps)"
	R[nginx_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 25201 -t "$SECS" -J | gbps)"
	R[socat_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 35201 -t "$SECS" -J | gbps)"
	R[direct_short]+=" $(plain "$CONNRATE" short 198.18.1.2 7000 "$SECS" 64 | awk '{print $1}')"
	R[meshsplice_short]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.51 7000 "$SECS" 64 | awk '{print $1}')"
	R[haproxy_short]+=" $(plain "$CONNRATE" short 127.0.0.1 17000 "$SECS" 64 | awk '{print $1}')"
	R[nginx_short]+=" $(plain "$CONNRATE" short 127.0.0.1 27000 "$SECS" 64 | awk '{print $1}')"
	R[socat_short]+=" $(plain "$CONNRATE" short 127.0.0.1 37000 "$SECS" 64 | awk '{print $1}')"
	R[direct_p99]+=" $(plain "$CONNRATE" rr 198.18.1.2 7000 "$SECS" | awk '{print $5}')"
	R[meshsplice_p99]+=" $(in_pod "$NS_A" "$CONNRATE" rr 242.0.0.51 7000 "$SECS" | awk '{print $5}')"
	R[haproxy_p99]+=" $(plain "$CONNRATE" rr 127.0.0.1 17000 "$SECS" | awk '{print $5}')"
	R[nginx_p99]+=" $(plain "$CONNRATE" rr 127.0.0.1 27000 "$SECS" | awk '{print $5}')"
	R[socat_p99]+=" $(plain "$CONNRATE" rr 127.0.0.1 37000 "$SECS" | awk '{print $5}')"
}
a0=$(cpu_ticks "$AGENT_PID")
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	run_round
done
echo
printf "%-24s %11s %11s %11s %11s %11s %10s %10s\n" "workload (median, min..max)" direct meshsplice haproxy nginx socat "ms/direct" "ms/best"
for w in bulk short p99; do
	declare -A M=()
	for c in direct meshsplice haproxy nginx socat; do M[$c]=$(echo "${R[${c}_$w]}" | median); done
	# the best peer: most for rates, least for latency
	best=$(for c in haproxy nginx socat; do echo "${M[$c]}"; done | sort -g | { [ $w = p99 ] && head -1 || tail -1; })
	unit=$([ $w = bulk ] && echo "Gb/s" || ([ $w = short ] && echo "conn/s" || echo "ms p99"))
	printf "%-24s %11s %11s %11s %11s %11s %10s %10s\n" "$w ($unit)" "${M[direct]}" "${M[meshsplice]}" "${M[haproxy]}" \
		"${M[nginx]}" "${M[socat]}" "$(ratio "${M[meshsplice]}" "${M[direct]}")" "$(ratio "${M[meshsplice]}" "$best")"
	printf "%-24s %11s %11s %11s %11s %11s\n" "" "$(echo "${R[direct_$w]}" | minmax)" "$(echo "${R[meshsplice_$w]}" | minmax)" \
		"$(echo "${R[haproxy_$w]}" | minmax)" "$(echo "${R[nginx_$w]}" | minmax)" "$(echo "${R[socat_$w]}" | minmax)"
done
echo "agent CPU over the whole run: $(( $(cpu_ticks "$AGENT_PID") - a0 )) ticks"
csv_dump datapath
finish
