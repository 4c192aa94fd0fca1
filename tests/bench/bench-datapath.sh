#!/bin/bash
# SPDX-License-Identifier: MIT
# Direct vs meshsplice's kernel path (a plaintext VIP rewritten at connect)
# vs its proxy path (eBPF engine, the forwarder in the connection) vs haproxy 2.6 (tuned splice) vs nginx
# stream (256 KiB buffers) vs socat (-b 262144), same topology, same run,
# alternating rounds; prints medians and ratios to direct and to the best peer.
# Workloads: iperf3 bulk with 1 and 4 streams, up and down (-R); short
# connections (connect, 100-byte request, 100-byte reply, close) with 64 and
# with 1 concurrent client; p50/p99 of 100-byte request/response on one
# kept-alive connection; the proxy's CPU-seconds per GB moved (1 stream up).
# Agent flags to try (pipe sizes, say): MS_AGENT_ARGS="--pipe-size 65536".
#   client: pod netns ── veth ── outside netns: iperf3 -s, connrate server
#   meshsplice: client in the test cgroup dials a VIP, the agent forwards from the pod netns
#   haproxy, nginx, socat: run in the pod netns on 127.0.0.1, the client dials them
# Both cores are shared by client, proxy and server (no pinning): the figure
# is what two TCP hops cost on this machine.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
make_topology || exit 1
# Short connections leave the client's ports in TIME_WAIT; without reuse the
# 28k default ports cap every contender at ~500 conn/s. The pod netns is ours.
ip netns exec "$NS_A" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"

bulk_rr_services 198.18.1.2
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
bg_out rr "$CONNRATE" server 7000 || exit 1
start_agent ${MS_AGENT_ARGS:-} || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name bench/a >/dev/null || exit 1
for p in 5201 7000; do
	sed -e "s/@LISTEN@/1$p/" -e "s/@UPSTREAM@/198.18.1.2:$p/" "$(dirname "$0")/peers/haproxy-splice.cfg.in" >"$T/haproxy-$p.cfg"
	ip netns exec "$NS_A" haproxy -f "$T/haproxy-$p.cfg" -D -p "$T/haproxy-$p.pid" || exit 1
	BG_PIDS+=($(cat "$T/haproxy-$p.pid"))
done

sed "s|@T@|$T|g" "$(dirname "$0")/peers/nginx-stream.conf.in" >"$T/nginx-stream.conf"
ip netns exec "$NS_A" nginx -c "$T/nginx-stream.conf" &
BG_PIDS+=($!)
for p in 5201 7000; do
	ip netns exec "$NS_A" socat -b 262144 "TCP-LISTEN:3$p,bind=127.0.0.1,fork,reuseaddr" "TCP:198.18.1.2:$p" 2>>"$T/socat.err" &
	BG_PIDS+=($!)
	[ $p = 5201 ] && SOCAT_BULK=$!
done
sleep 0.5

plain() { ip netns exec "$NS_A" "$@"; }  # not in the test cgroup: never steered
# Each contender: how its client runs, where it dials, and its processes
# (whose CPU time, children's included, gives CPU-seconds per GB).
CONTENDERS="direct kernel meshsplice haproxy nginx socat"
declare -A RUN=([direct]=plain [kernel]="in_pod $NS_A" [meshsplice]="in_pod $NS_A" [haproxy]=plain [nginx]=plain [socat]=plain)
declare -A HOST=([direct]=198.18.1.2 [kernel]=242.0.0.60 [meshsplice]=242.0.0.50 [haproxy]=127.0.0.1 [nginx]=127.0.0.1 [socat]=127.0.0.1)
declare -A RRHOST=([direct]=198.18.1.2 [kernel]=242.0.0.61 [meshsplice]=242.0.0.51 [haproxy]=127.0.0.1 [nginx]=127.0.0.1 [socat]=127.0.0.1)
declare -A PFX=([direct]="" [kernel]="" [meshsplice]="" [haproxy]=1 [nginx]=2 [socat]=3)
nginx_master=$(cat "$T/nginx-stream.pid" 2>/dev/null)
declare -A PIDS=([direct]="" [kernel]="" [meshsplice]="$AGENT_PID" [haproxy]="$(cat "$T/haproxy-5201.pid")"
	[nginx]="$nginx_master $(pgrep -P "$nginx_master" | tr '\n' ' ')" [socat]="$SOCAT_BULK")

declare -A R
# bulk CONTENDER WORKLOAD iperf3-args...: Gb/s; for 1 stream up, CPU-seconds per GB too
bulk() {
	local c=$1 w=$2 t0 t1 json
	shift 2
	t0=$(cpu_ticks ${PIDS[$c]})
	json=$(${RUN[$c]} iperf3 -c "${HOST[$c]}" -p "${PFX[$c]}5201" -t "$SECS" -J "$@")
	t1=$(cpu_ticks ${PIDS[$c]})
	R[${c}_$w]+=" $(echo "$json" | gbps)"
	[ "$w" = bulk1 ] && [ -n "${PIDS[$c]}" ] && R[${c}_cpugb]+=" $(echo "$json" | cpu_per_gb "$t1" "$t0")"
	return 0
}
run_round() {
	local c
	for c in $CONTENDERS; do bulk $c bulk1; done
	for c in $CONTENDERS; do bulk $c bulk4 -P 4; done
	for c in $CONTENDERS; do bulk $c bulk1r -R; done
	for c in $CONTENDERS; do bulk $c bulk4r -P 4 -R; done
	for c in $CONTENDERS; do
		R[${c}_short64]+=" $(${RUN[$c]} "$CONNRATE" short "${RRHOST[$c]}" "${PFX[$c]}7000" "$SECS" 64 | awk '{print $1}')"
	done
	for c in $CONTENDERS; do
		R[${c}_short1]+=" $(${RUN[$c]} "$CONNRATE" short "${RRHOST[$c]}" "${PFX[$c]}7000" "$SECS" 1 | awk '{print $1}')"
	done
	for c in $CONTENDERS; do
		read -r p50 p99 < <(${RUN[$c]} "$CONNRATE" rr "${RRHOST[$c]}" "${PFX[$c]}7000" "$SECS" | awk '{print $2, $5}')
		R[${c}_p50]+=" $p50"
		R[${c}_p99]+=" $p99"
	done
}
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	run_round
done
echo
printf "%-28s %11s %11s %11s %11s %11s %11s %10s %10s %10s\n" "workload (median, min..max)" direct kernel proxy haproxy nginx socat \
	"kern/direct" "proxy/dir" "proxy/best"
declare -A LABEL=([bulk1]="bulk 1 stream (Gb/s)" [bulk4]="bulk 4 streams (Gb/s)" [bulk1r]="bulk 1 stream down (Gb/s)"
	[bulk4r]="bulk 4 streams down (Gb/s)" [short64]="short, 64 clients (conn/s)" [short1]="short, 1 client (conn/s)"
	[p50]="keep-alive p50 (ms)" [p99]="keep-alive p99 (ms)" [cpugb]="proxy CPU-s per GB, 1 up")
for w in bulk1 bulk4 bulk1r bulk4r short64 short1 p50 p99 cpugb; do
	declare -A M=()
	for c in $CONTENDERS; do M[$c]=$(echo "${R[${c}_$w]:-}" | median); done
	# the best peer: most for rates, least for latency and CPU
	best=$(for c in haproxy nginx socat; do echo "${M[$c]}"; done | sort -g | { case $w in p*|cpugb) head -1 ;; *) tail -1 ;; esac; })
	vs_direct=$([ -n "${M[direct]}" ] && ratio "${M[meshsplice]}" "${M[direct]}" || echo -)
	k_direct=$([ -n "${M[direct]}" ] && [ -n "${M[kernel]}" ] && ratio "${M[kernel]}" "${M[direct]}" || echo -)
	printf "%-28s %11s %11s %11s %11s %11s %11s %10s %10s %10s\n" "${LABEL[$w]}" "${M[direct]:--}" "${M[kernel]:--}" \
		"${M[meshsplice]}" "${M[haproxy]}" "${M[nginx]}" "${M[socat]}" "$k_direct" "$vs_direct" "$(ratio "${M[meshsplice]}" "$best")"
	printf "%-28s %11s %11s %11s %11s %11s %11s\n" "" "$(echo "${R[direct_$w]:-}" | minmax)" "$(echo "${R[kernel_$w]:-}" | minmax)" \
		"$(echo "${R[meshsplice_$w]}" | minmax)" "$(echo "${R[haproxy_$w]}" | minmax)" "$(echo "${R[nginx_$w]}" | minmax)" \
		"$(echo "${R[socat_$w]}" | minmax)"
done
echo "(the client, the proxy and the server share both cores; CPU-s per GB counts the proxy's processes only)"
csv_dump datapath
finish
