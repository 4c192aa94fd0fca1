#!/bin/bash
# SPDX-License-Identifier: MIT
# Does joining a connection's sockets in the kernel beat splice? The sockmap
# probe (sockmap-probe.c: sockhash + sk_skb stream verdict, bytes counted in
# BPF, no userspace copy or wake-up per chunk) against the agent's splice and
# haproxy's, on iperf3 bulk, same run, alternating rounds. Also with 4 MiB
# send buffers: the redirect's egress backlog only sends while the peer's
# send queue is under half its buffer.
# CPU is the whole machine's (user + system + irq + softirq of both cores,
# /proc/stat) per GB: the probe's work runs in kworkers and softirq, which a
# per-process figure would not see.
# First, 50 MB through the probe each way, compared byte for byte.
#   client: pod netns; probe, haproxy: pod netns on 127.0.0.1; agent: VIP
#   upstream: iperf3 -s in the outside netns
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
PROBE=$BUILD/tests/bench/sockmap-probe
make_topology || exit 1

bulk_rr_services 198.18.1.2
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name bench/a >/dev/null || exit 1
sed -e "s/@LISTEN@/15201/" -e "s/@UPSTREAM@/198.18.1.2:5201/" "$(dirname "$0")/peers/haproxy-splice.cfg.in" >"$T/haproxy.cfg"
ip netns exec "$NS_A" haproxy -f "$T/haproxy.cfg" -D -p "$T/haproxy.pid" || exit 1
BG_PIDS+=($(cat "$T/haproxy.pid"))
probe() { # name port upstream [sndbuf]
	local name=$1
	shift
	ip netns exec "$NS_A" "$PROBE" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG_PIDS+=($!)
	for _ in $(seq 50); do grep -q ready "$T/$name.out" 2>/dev/null && return 0; sleep 0.1; done
	echo "sockmap probe did not start: $(cat "$T/$name.err")"
	exit 1
}
probe sockmap 25201 198.18.1.2:5201
probe sockmap4m 35201 198.18.1.2:5201 4194304

# integrity, through the probe: 50 MB up (to a file), 50 MB down (from it)
head -c 50000000 /dev/urandom >"$T/blob"
bg_out sink sh -c "echo ready; exec socat -u TCP-LISTEN:5301,reuseaddr OPEN:$T/got-up,creat,trunc" || exit 1
probe check-up 25301 198.18.1.2:5301
ip netns exec "$NS_A" socat -u "OPEN:$T/blob" TCP:127.0.0.1:25301 || exit 1
bg_out source sh -c "echo ready; exec socat -u OPEN:$T/blob TCP-LISTEN:5302,reuseaddr" || exit 1
probe check-down 25302 198.18.1.2:5302
ip netns exec "$NS_A" socat -u TCP:127.0.0.1:25302 "OPEN:$T/got-down,creat,trunc" || exit 1
sleep 0.5
for d in up down; do
	if ! cmp -s "$T/blob" "$T/got-$d"; then
		echo "sockmap probe: 50 MB $d did not arrive intact ($(stat -c %s "$T/got-$d") bytes)"
		cat "$T"/check-*.err
		exit 1
	fi
done
log "sockmap probe: 50 MB up and 50 MB down arrived intact"

plain() { ip netns exec "$NS_A" "$@"; }
CONTENDERS="meshsplice haproxy sockmap sockmap4m"
declare -A RUN=([meshsplice]="in_pod $NS_A" [haproxy]=plain [sockmap]=plain [sockmap4m]=plain)
declare -A HOST=([meshsplice]=242.0.0.50 [haproxy]=127.0.0.1 [sockmap]=127.0.0.1 [sockmap4m]=127.0.0.1)
declare -A PORT=([meshsplice]=5201 [haproxy]=15201 [sockmap]=25201 [sockmap4m]=35201)
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
declare -A R
bulk() { # contender workload iperf3-args...
	local c=$1 w=$2 b0 b1 json
	shift 2
	b0=$(busy)
	json=$(${RUN[$c]} iperf3 -c "${HOST[$c]}" -p "${PORT[$c]}" -t "$SECS" -J "$@")
	b1=$(busy)
	R[${c}_$w]+=" $(echo "$json" | gbps)"
	R[${c}_cpu$w]+=" $(echo "$json" | cpu_per_gb "$b1" "$b0")"
}
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	for c in $CONTENDERS; do bulk $c bulk1; done
	for c in $CONTENDERS; do bulk $c bulk4 -P 4; done
	for c in $CONTENDERS; do bulk $c bulk1r -R; done
done
echo
printf "%-32s %11s %11s %11s %11s %10s %10s\n" "workload (median, min..max)" meshsplice haproxy sockmap "sockmap 4M" "smap/ms" "smap4M/ms"
declare -A LABEL=([bulk1]="bulk 1 stream (Gb/s)" [bulk4]="bulk 4 streams (Gb/s)" [bulk1r]="bulk 1 stream down (Gb/s)"
	[cpubulk1]="machine CPU-s per GB, 1 up" [cpubulk4]="machine CPU-s per GB, 4 up" [cpubulk1r]="machine CPU-s per GB, 1 down")
for w in bulk1 bulk4 bulk1r cpubulk1 cpubulk4 cpubulk1r; do
	declare -A M=()
	for c in $CONTENDERS; do M[$c]=$(echo "${R[${c}_$w]}" | median); done
	printf "%-32s %11s %11s %11s %11s %10s %10s\n" "${LABEL[$w]}" "${M[meshsplice]}" "${M[haproxy]}" "${M[sockmap]}" "${M[sockmap4m]}" \
		"$(ratio "${M[sockmap]}" "${M[meshsplice]}")" "$(ratio "${M[sockmap4m]}" "${M[meshsplice]}")"
	printf "%-32s %11s %11s %11s %11s\n" "" "$(echo "${R[meshsplice_$w]}" | minmax)" "$(echo "${R[haproxy_$w]}" | minmax)" \
		"$(echo "${R[sockmap_$w]}" | minmax)" "$(echo "${R[sockmap4m_$w]}" | minmax)"
done
echo "(sockmap: the probe; CPU-s per GB counts both cores, kworkers and softirq included)"
csv_dump sockmap
finish
