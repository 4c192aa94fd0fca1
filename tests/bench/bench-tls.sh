#!/bin/bash
# SPDX-License-Identifier: MIT
# TLS origination: meshsplice vs haproxy 2.6 vs nginx stream, same run.
# Plaintext from the pod, TLS to an nginx terminating in the outside netns
# (in front of iperf3 and connrate). Bulk up (client → TLS server: the
# encrypting direction) and down (iperf3 -R), with each proxy's CPU seconds
# per GB; full handshakes/s (resumption off in every contender) and resumed
# handshakes/s (resumption on).
# kTLS: meshsplice with --ktls auto (ms) and off (msnoktls), nginx with
# `proxy_ssl_conf_command Options KTLS` (nginxktls) beside the plain one;
# haproxy 2.6 has no kTLS. On a kernel without the TLS ULP (6.18 here) the
# kTLS contenders run in userspace; on Linux 6.1 (scripts/vm.sh -- bash
# tests/bench/bench-tls.sh, tests/kernels/README.md) with OpenSSL 3.0 TLS 1.3
# offloads only the sending direction. The kTLS counters show what went to
# the kernel.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
source "$(dirname "$0")/../integration/certs.sh"
PEERS=$(dirname "$0")/peers
make_topology || exit 1
ip netns exec "$NS_A" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
mkdir -p "$T/pki" && make_certs "$T/pki" || exit 1
echo "198.18.1.2 up.test" >"$T/hosts"
cat >"$T/conf/tls.yaml" <<YAML
type: MeshExternalService
name: tls-bulk
spec:
  match:
    port: 5201
  endpoints:
    - address: up.test
      port: 9443
  tls:
    enabled: true
    verification:
      caCert:
        inline: $(base64 -w0 "$T/pki/ca1.pem")
status:
  vip:
    ip: 242.0.0.70
---
type: MeshExternalService
name: tls-rr
spec:
  match:
    port: 7000
  endpoints:
    - address: up.test
      port: 9444
  tls:
    enabled: true
    verification:
      caCert:
        inline: $(base64 -w0 "$T/pki/ca1.pem")
status:
  vip:
    ip: 242.0.0.71
YAML
sub() { sed -e "s|@T@|$T|g" -e "s|@CA@|$T/pki/ca1.pem|g" -e "s|@CERT@|$T/pki/good.pem|g" -e "s|@KEY@|$T/pki/good.key|g" "$@"; }
bg_out iperf sh -c 'echo ready; exec iperf3 -s -p 5201' || exit 1
bg_out rr "$CONNRATE" server 7000 || exit 1
sub "$PEERS/nginx-tls-server.conf.in" >"$T/nginx-server.conf"
ip netns exec "$NS_O" nginx -c "$T/nginx-server.conf" &
BG_PIDS+=($!)
# haproxy: bulk and resumed (its default server session reuse), full (no-ssl-reuse)
for h in "15201 9443 " "17000 9444 " "17001 9444 no-ssl-reuse"; do
	read -r lp up reuse <<<"$h"
	sub -e "s|@LISTEN@|$lp|" -e "s|@UPSTREAM@|198.18.1.2:$up|" -e "s|@REUSE@|$reuse|" "$PEERS/haproxy-tls.cfg.in" >"$T/h$lp.cfg"
	ip netns exec "$NS_A" haproxy -f "$T/h$lp.cfg" -D -p "$T/h$lp.pid" || exit 1
	BG_PIDS+=($(cat "$T/h$lp.pid"))
done
# nginx stream: bulk, resumed, full; and bulk with kTLS (@CONF@: the OpenSSL
# option line, empty for the others)
for n in "25201 9443 on bulk" "27000 9444 on rr" "27001 9444 off full" "25202 9443 on ktls"; do
	read -r lp up reuse name <<<"$n"
	conf=""
	[ "$name" = ktls ] && conf="proxy_ssl_conf_command Options KTLS;"
	sub -e "s|@LISTEN@|$lp|" -e "s|@UPSTREAM@|198.18.1.2:$up|" -e "s|@REUSE@|$reuse|" -e "s|@NAME@|$name|" \
		-e "s|@CONF@|$conf|" "$PEERS/nginx-tls-client.conf.in" >"$T/nc-$name.conf"
	ip netns exec "$NS_A" nginx -c "$T/nc-$name.conf" &
	BG_PIDS+=($!)
done
tsleep 0.5
# the processes whose CPU a contender's bulk costs: haproxy's, nginx's worker
HAPROXY_PID=$(cat "$T/h15201.pid")
worker() { # nginx pid file → its worker's pid (one worker)
	local m
	for _ in $(seq "$(ts 50)"); do
		m=$(cat "$1" 2>/dev/null) && [ -n "$m" ] && pgrep -P "$m" && return 0
		sleep 0.1
	done
	return 1
}
NGINX_PID=$(worker "$T/nginx-client-bulk.pid") || { echo "nginx did not start"; exit 1; }
NGINXKTLS_PID=$(worker "$T/nginx-client-ktls.pid") || { echo "nginx (kTLS) did not start"; exit 1; }
agent() { # resume|full [agent options]
	local mode=$1
	shift
	stop_agent TERM
	if [ "$mode" = full ]; then MESHSPLICE_TLS_NO_RESUME=1 start_agent "$@"; else start_agent "$@"; fi || exit 1
	ms enable --netns "/var/run/netns/$NS_A" --name bench/tls >/dev/null || exit 1
}
plain() { ip netns exec "$NS_A" "$@"; }
rate() { awk '{print $1}'; }
# kernel TLS directions set up so far in netns NS (TlsTxSw + TlsRxSw of its
# /proc/net/tls_stat; 0 without the ULP)
ktls_socks() { ip netns exec "$1" cat /proc/net/tls_stat 2>/dev/null | awk '/^TlsTxSw|^TlsRxSw/ { n += $2 } END { print n + 0 }'; }
declare -A R
# bulk CONTENDER PIDS RUN...: up and down, Gb/s and the CPU seconds per GB of PIDS
bulk() {
	local c=$1 pids=$2 dir t0 j
	shift 2
	for dir in up down; do
		t0=$(cpu_ticks $pids)
		j=$("$@" -t "$SECS" -J $([ $dir = down ] && echo -R))
		if ! echo "$j" | python3 -c 'import json, sys; sys.exit("sum_received" not in json.load(sys.stdin)["end"])' 2>/dev/null; then
			log "$c bulk $dir failed: $(echo "$j" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("error"))' 2>&1)"
			continue
		fi
		R[${c}_bulk$dir]+=" $(echo "$j" | gbps)"
		R[${c}_cpugb$dir]+=" $(echo "$j" | cpu_per_gb "$(cpu_ticks $pids)" "$t0")"
	done
}
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	agent resume
	bulk ms "$AGENT_PID" in_pod "$NS_A" iperf3 -c 242.0.0.70 -p 5201
	R[ms_resumed]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.71 7000 "$SECS" 16 | rate)"
	log "meshsplice: $(stat tls.handshakes) handshakes, $(stat tls.resumed) resumed, kTLS tx $(stat tls.ktls_tx) rx $(stat tls.ktls_rx) userspace $(stat tls.ktls_userspace)"
	agent resume --ktls off
	bulk msnoktls "$AGENT_PID" in_pod "$NS_A" iperf3 -c 242.0.0.70 -p 5201
	agent full
	R[ms_full]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.71 7000 "$SECS" 16 | rate)"
	bulk haproxy "$HAPROXY_PID" plain iperf3 -c 127.0.0.1 -p 15201
	R[haproxy_resumed]+=" $(plain "$CONNRATE" short 127.0.0.1 17000 "$SECS" 16 | rate)"
	R[haproxy_full]+=" $(plain "$CONNRATE" short 127.0.0.1 17001 "$SECS" 16 | rate)"
	bulk nginx "$NGINX_PID" plain iperf3 -c 127.0.0.1 -p 25201
	k=$(ktls_socks "$NS_A")
	bulk nginxktls "$NGINXKTLS_PID" plain iperf3 -c 127.0.0.1 -p 25202
	log "nginx with Options KTLS: $(($(ktls_socks "$NS_A") - k)) kernel TLS directions set up"
	R[nginx_resumed]+=" $(plain "$CONNRATE" short 127.0.0.1 27000 "$SECS" 16 | rate)"
	R[nginx_full]+=" $(plain "$CONNRATE" short 127.0.0.1 27001 "$SECS" 16 | rate)"
done
echo
echo "kernel $(uname -r); the ms column is --ktls auto, msnoktls --ktls off, nginxktls nginx with Options KTLS"
C=(ms msnoktls haproxy nginx nginxktls)
printf "%-26s" "workload (median)"
printf " %10s" "${C[@]}" "ms/noktls" "ms/hap" "ms/nginx" "ms/ngktls"
echo
for w in bulkup bulkdown cpugbup cpugbdown full resumed; do
	declare -A M=()
	for c in "${C[@]}"; do M[$c]=$(echo "${R[${c}_$w]:-}" | median); done
	case $w in
	bulkup) printf "%-26s" "TLS bulk up (Gb/s)" ;;
	bulkdown) printf "%-26s" "TLS bulk down (Gb/s)" ;;
	cpugbup) printf "%-26s" "  CPU s per GB, up" ;;
	cpugbdown) printf "%-26s" "  CPU s per GB, down" ;;
	*) printf "%-26s" "$w handshakes (conn/s)" ;;
	esac
	for c in "${C[@]}"; do printf " %10s" "${M[$c]:--}"; done
	for c in msnoktls haproxy nginx nginxktls; do
		if [ -n "${M[ms]}" ] && [ -n "${M[$c]}" ]; then printf " %10s" "$(ratio "${M[ms]}" "${M[$c]}")"; else printf " %10s" -; fi
	done
	echo
done
echo "TLS stats of the last agent: $(stat tls.handshakes) handshakes, $(stat tls.resumed) resumed, $(stat tls.verify_cached) chains from the verification cache"
csv_dump tls
finish
