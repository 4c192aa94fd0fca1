#!/bin/bash
# SPDX-License-Identifier: MIT
# TLS origination: meshsplice vs haproxy 2.6 vs nginx stream, same run.
# Plaintext from the pod, TLS to an nginx terminating in the outside netns
# (in front of iperf3 and connrate). Bulk, full handshakes/s (resumption off
# in every contender) and resumed handshakes/s (resumption on).
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
# nginx stream: bulk, resumed, full
for n in "25201 9443 on bulk" "27000 9444 on rr" "27001 9444 off full"; do
	read -r lp up reuse name <<<"$n"
	sub -e "s|@LISTEN@|$lp|" -e "s|@UPSTREAM@|198.18.1.2:$up|" -e "s|@REUSE@|$reuse|" -e "s|@NAME@|$name|" \
		"$PEERS/nginx-tls-client.conf.in" >"$T/nc-$name.conf"
	ip netns exec "$NS_A" nginx -c "$T/nc-$name.conf" &
	BG_PIDS+=($!)
done
sleep 0.5
agent() { # resume|full
	stop_agent TERM
	if [ "$1" = full ]; then MESHSPLICE_TLS_NO_RESUME=1 start_agent; else start_agent; fi || exit 1
	ms enable --netns "/var/run/netns/$NS_A" --name bench/tls >/dev/null || exit 1
}
plain() { ip netns exec "$NS_A" "$@"; }
rate() { awk '{print $1}'; }
declare -A R
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	agent resume
	R[ms_bulk]+=" $(in_pod "$NS_A" iperf3 -c 242.0.0.70 -p 5201 -t "$SECS" -J | gbps)"
	R[ms_resumed]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.71 7000 "$SECS" 16 | rate)"
	log "meshsplice resumed phase: $(stat tls.handshakes) handshakes, $(stat tls.resumed) resumed"
	agent full
	R[ms_full]+=" $(in_pod "$NS_A" "$CONNRATE" short 242.0.0.71 7000 "$SECS" 16 | rate)"
	R[haproxy_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 15201 -t "$SECS" -J | gbps)"
	R[haproxy_resumed]+=" $(plain "$CONNRATE" short 127.0.0.1 17000 "$SECS" 16 | rate)"
	R[haproxy_full]+=" $(plain "$CONNRATE" short 127.0.0.1 17001 "$SECS" 16 | rate)"
	R[nginx_bulk]+=" $(plain iperf3 -c 127.0.0.1 -p 25201 -t "$SECS" -J | gbps)"
	R[nginx_resumed]+=" $(plain "$CONNRATE" short 127.0.0.1 27000 "$SECS" 16 | rate)"
	R[nginx_full]+=" $(plain "$CONNRATE" short 127.0.0.1 27001 "$SECS" 16 | rate)"
done
echo
printf "%-30s %12s %12s %12s %10s %10s\n" "workload (median)" meshsplice haproxy nginx "ms/hap" "ms/nginx"
for w in bulk full resumed; do
	m=$(echo "${R[ms_$w]}" | median) h=$(echo "${R[haproxy_$w]}" | median) n=$(echo "${R[nginx_$w]}" | median)
	printf "%-30s %12s %12s %12s %10s %10s\n" \
		"$([ $w = bulk ] && echo 'TLS bulk (Gb/s)' || echo "$w handshakes (conn/s)")" "$m" "$h" "$n" \
		"$(ratio "$m" "$h")" "$(ratio "$m" "$n")"
	printf "%-30s %12s %12s %12s\n" "" "$(echo "${R[ms_$w]}" | minmax)" "$(echo "${R[haproxy_$w]}" | minmax)" "$(echo "${R[nginx_$w]}" | minmax)"
done
echo "TLS stats of the last agent: $(stat tls.handshakes) handshakes, $(stat tls.resumed) resumed, $(stat tls.verify_cached) chains from the verification cache"
csv_dump tls
finish
