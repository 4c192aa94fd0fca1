#!/bin/bash
# SPDX-License-Identifier: MIT
# The eBPF data path end to end: pods in network namespaces, real servers in
# an outside namespace, the agent in between.
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }

cat >"$T/conf/meshes.yaml" <<YAML
type: Mesh
name: default
---
type: Mesh
name: closed
networking:
  outbound:
    passthrough: false
routing:
  defaultForbidMeshExternalServiceAccess: true
YAML
mes() { # name vip endpoints-yaml [mesh] [datapath label]
	cat >"$T/conf/$1.yaml" <<YAML
type: MeshExternalService
name: $1
mesh: ${4:-default}
labels:
  meshsplice.io/datapath: ${5:-auto}
spec:
  match:
    port: 80
    protocol: tcp
  endpoints:
$3
status:
  vip:
    ip: $2
YAML
}
mes echo-ip 242.0.0.10 "    - address: 198.18.3.2
      port: 8080"
mes echo-dns 242.0.0.11 "    - address: echo.test
      port: 8080"
mes echo-unix 242.0.0.12 "    - address: unix://$T/echo.sock"
# connect-time failover is the forwarder's: the kernel path has no retry
mes failover 242.0.0.13 "    - address: 198.18.3.2
      port: 8081
    - address: 198.18.3.2
      port: 8080" default proxy
mes switch 242.0.0.16 "    - address: 198.18.3.2
      port: 8080"
mes halfclose 242.0.0.14 "    - address: 198.18.3.2
      port: 8082"
mes record 242.0.0.15 "    - address: 198.18.3.2
      port: 8083"
mes ext-closed 242.0.0.30 "    - address: 198.18.3.2
      port: 8083" closed
cat >"$T/conf/web.yaml" <<YAML
type: MeshService
name: web
spec:
  selector:
    dataplaneTags:
      app: web
  ports:
    - port: 80
      targetPort: 8080
status:
  vips:
    - ip: 241.0.0.20
---
type: MeshService
name: web
mesh: closed
spec:
  selector:
    dataplaneTags:
      app: web
  ports:
    - port: 80
      targetPort: 8080
status:
  vips:
    - ip: 241.0.0.31
---
type: MeshService
name: nobody
spec:
  selector:
    dataplaneTags:
      app: nobody
  ports:
    - port: 80
      targetPort: 8080
status:
  vips:
    - ip: 241.0.0.40
---
type: Dataplane
name: web-1
networking:
  address: 198.18.3.2
  inbound:
    - port: 8080
      tags:
        app: web
---
type: Dataplane
name: web-1
mesh: closed
networking:
  address: 198.18.3.2
  inbound:
    - port: 8080
      tags:
        app: web
YAML

bg_out echo $PEER serve-echo 8080 || exit 1
bg_out halfclose $PEER serve-halfclose 8082 || exit 1
bg_out record $PEER serve-record 8083 "$T/record.log" || exit 1
bg_out unix $PEER serve-unix-echo "$T/echo.sock" || exit 1
echo "198.18.3.2 echo.test" >"$T/hosts"

start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name test/a --mesh default >/dev/null || exit 1
ms enable --netns "/var/run/netns/$NS_B" --name test/b --mesh closed >/dev/null || exit 1

started() { stat forwarder.started; }
records() { if [ -f "$T/record.log" ]; then wc -l <"$T/record.log"; else echo 0; fi; }
wait_for() { # seconds cmd...
	local n=$(($1 * 10))
	shift
	for _ in $(seq $n); do "$@" && return 0; sleep 0.1; done
	return 1
}

case_vip_ip() {
	local out
	out=$(in_pod "$NS_A" $PEER echo 242.0.0.10 80 5000) || return 1
	echo "$out"
	# getpeername shows the VIP, not the listener
	echo "$out" | grep -q "peer 242.0.0.10 80"
}
check "VIP → endpoint by IP, getpeername shows the VIP" case_vip_ip
check "VIP → endpoint by DNS name (hosts file)" in_pod "$NS_A" $PEER echo 242.0.0.11 80 5000
check "VIP → endpoint by unix socket" in_pod "$NS_A" $PEER echo 242.0.0.12 80 5000
check "MeshService VIP → Dataplane endpoint" in_pod "$NS_A" $PEER echo 241.0.0.20 80 5000
check "endpoint failover: first refuses, second answers" in_pod "$NS_A" $PEER echo 242.0.0.13 80 100

# The path a connection takes: the eBPF engine serves what needs nothing of
# the forwarder in the kernel; the iptables engine proxies everything.
kernel_path() { [ "${MS_ENGINE:-bpf}" = bpf ]; }

case_passthrough_on() {
	local before after
	before=$(started)
	in_pod "$NS_A" $PEER echo 198.18.3.2 8080 3000 || return 1
	after=$(started)
	echo "forwarder started $before → $after"
	if kernel_path; then
		[ "$after" -eq "$before" ] # allowed passthrough is left alone
	else
		[ "$after" -eq $((before + 1)) ] # it went through the proxy
	fi
}
check "passthrough on: real destination reached (eBPF: left alone; iptables: through the proxy)" case_passthrough_on

# A plaintext VIP with IP endpoints: the forwarder never sees it (eBPF), the
# endpoint sees the pod's own address, getpeername shows the VIP; a TLS,
# DNS-name or unix one (and one labelled proxy) still goes through it.
case_kernel_path() {
	local before after out
	before=$(started)
	out=$(in_pod "$NS_A" $PEER echo 242.0.0.10 80 1000) || return 1
	echo "$out" | grep -q "peer 242.0.0.10 80" || return 1
	in_pod "$NS_A" $PEER echo 241.0.0.20 80 1000 >/dev/null || return 1
	after=$(started)
	echo "forwarder started $before → $after for a MES and a MeshService VIP; $out"
	if kernel_path; then
		[ "$after" -eq "$before" ] || return 1
		[ "$(stat bpf.kernel_path)" -ge 2 ] || return 1
	else
		[ "$after" -eq $((before + 2)) ] || return 1
	fi
	# control: the unix endpoint and the labelled service take the proxy path
	before=$(started)
	in_pod "$NS_A" $PEER echo 242.0.0.12 80 100 >/dev/null || return 1
	in_pod "$NS_A" $PEER echo 242.0.0.13 80 100 >/dev/null || return 1
	after=$(started)
	echo "proxy path: forwarder started $before → $after"
	[ "$after" -eq $((before + 2)) ]
}
check "kernel path: a plaintext IP VIP never reaches the forwarder (eBPF), getpeername shows the VIP; unix and labelled ones do" case_kernel_path

case_upstream_sees_pod() {
	local before=$(records)
	in_pod "$NS_A" $PEER reset 242.0.0.15 80 || return 1
	wait_for 3 [ "$(records)" -gt "$before" ] || return 1
	tail -1 "$T/record.log"
	tail -1 "$T/record.log" | grep -q '^198\.18\.1\.' # pod A's own address, not the agent's
}
check "the endpoint sees the pod's own address" case_upstream_sees_pod

case_no_endpoint() {
	in_pod "$NS_A" $PEER timed-refused 241.0.0.40 80 0.5 || return 1
	if kernel_path; then
		in_pod "$NS_A" python3 -c 'import socket, errno
s = socket.socket()
try:
    s.connect(("241.0.0.40", 80))
except ConnectionRefusedError:
    print("ECONNREFUSED at connect"); raise SystemExit(0)
raise SystemExit("connected")' || return 1
		[ "$(stat bpf.kernel_path_no_endpoint)" -ge 1 ]
	fi
}
check "a service with no endpoint: refused at once (eBPF: ECONNREFUSED at connect)" case_no_endpoint

case_reload_endpoints() {
	local before=$(records)
	in_pod "$NS_A" $PEER echo 242.0.0.16 80 100 >/dev/null || return 1
	[ "$(records)" -eq "$before" ] || return 1
	# the same VIP, another endpoint: every connection after the reload goes there
	sed -i 's/port: 8080/port: 8083/' "$T/conf/switch.yaml"
	ms reload >/dev/null || return 1
	for i in 1 2 3 4 5; do
		in_pod "$NS_A" $PEER reset 242.0.0.16 80 >/dev/null || return 1
	done
	wait_for 3 [ "$(records)" -eq $((before + 5)) ] || { echo "records $before → $(records)"; return 1; }
	echo "5 connections after the reload, 5 at the new endpoint"
	sed -i 's/port: 8083/port: 8080/' "$T/conf/switch.yaml"
	ms reload >/dev/null || return 1
	in_pod "$NS_A" $PEER echo 242.0.0.16 80 100
}
check "a reload that changes a VIP's endpoints: the next connections go to the new one" case_reload_endpoints

case_passthrough_off() {
	local before=$(records)
	in_pod "$NS_B" $PEER refused 198.18.3.2 8083 || return 1
	sleep 0.5
	[ "$(records)" -eq "$before" ] || { echo "the server saw a connection"; return 1; }
}
check "passthrough off: refused, zero bytes and no connection at the server" case_passthrough_off

case_forbidden() {
	local before=$(records)
	in_pod "$NS_B" $PEER refused 242.0.0.30 80 || return 1
	sleep 0.5
	[ "$(records)" -eq "$before" ] || { echo "the server saw a connection"; return 1; }
}
check "external services forbidden: refused, nothing reaches the server" case_forbidden
check "MeshService still allowed in the closed mesh" in_pod "$NS_B" $PEER echo 241.0.0.31 80 1000

case_ipv6() {
	local out
	out=$(in_pod "$NS_A" $PEER echo 2001:2:0:1::2 8080 3000) || return 1
	echo "$out" | grep -q "peer 2001:2:0:1::2 8080" || return 1
	out=$(in_pod "$NS_A" $PEER echo ::ffff:242.0.0.10 80 3000) || return 1
	echo "$out"
	echo "$out" | grep -q "peer ::ffff:242.0.0.10 80"
}
check "IPv6 passthrough and an IPv4-mapped VIP on a dual-stack socket" case_ipv6
check "half-close: client shuts down writing, still reads the full reply" in_pod "$NS_A" $PEER halfclose 242.0.0.14 80 300000

case_reset() {
	in_pod "$NS_A" $PEER reset 242.0.0.15 80 || return 1
	wait_for 3 grep -q " reset$" "$T/record.log" || { cat "$T/record.log"; return 1; }
	tail -1 "$T/record.log"
}
check "a client reset reaches the server as a reset" case_reset

case_not_relay() {
	local before=$(stat refused.unknown_original_destination)
	in_pod "$NS_A" $PEER refused 127.0.0.1 15001 || return 1
	[ "$(stat refused.unknown_original_destination)" -eq $((before + 1)) ]
}
check "a direct connection to the listener is refused (not an open relay)" case_not_relay

# Clients that reset while their connection waits in the backlog: nobody to
# refuse, no log line each (under eBPF their original destination went with
# their socket; under iptables conntrack still knows it and the forwarder
# finds the client gone).
case_reset_in_backlog() {
	local refused gone rc
	refused=$(stat refused.unknown_original_destination) gone=$(stat forwarder.reset_before_accept)
	kill -STOP "$AGENT_PID"
	# a proxy-path VIP (the unix endpoint): only those wait in the listener
	in_pod "$NS_A" python3 -c 'import socket, struct
for i in range(20):
    s = socket.create_connection(("242.0.0.12", 80), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()'
	rc=$?
	kill -CONT "$AGENT_PID"
	[ $rc -eq 0 ] || return 1
	sleep 0.5
	refused=$(($(stat refused.unknown_original_destination) - refused))
	gone=$(($(stat forwarder.reset_before_accept) - gone))
	echo "20 resets in the backlog: $refused refused, $gone counted as reset before accept"
	[ "$refused" -eq 0 ] || return 1
	[ "${MS_ENGINE:-bpf}" = iptables ] || [ "$gone" -eq 20 ]
}
check "clients that reset in the backlog: no refusal, no log line each" case_reset_in_backlog

case_toggle() {
	local before after
	in_pod "$NS_A" $PEER hold 242.0.0.10 80 2 >"$T/hold.out" 2>&1 &
	local hold=$!
	wait_for 3 grep -q held "$T/hold.out" || return 1
	ms disable test/a || return 1
	before=$(started)
	in_pod "$NS_A" $PEER echo 198.18.3.2 8080 100 || return 1
	after=$(started)
	[ "$after" -eq "$before" ] || { echo "still proxied after disable"; return 1; }
	if in_pod "$NS_A" $PEER echo 242.0.0.10 80 100 2>/dev/null; then
		echo "VIP still answers after disable"
		return 1
	fi
	if [ "${MS_ENGINE:-bpf}" = iptables ]; then
		# A real difference between the engines: a REDIRECTed connection does
		# not survive the removal of the nat rules; the eBPF engine's does.
		if wait $hold; then
			echo "iptables: expected the held connection to be cut (documented difference)"
			return 1
		fi
		echo "iptables engine: established connection cut by disable, as documented"
	else
		wait $hold || { echo "established connection cut by disable: $(cat "$T/hold.out")"; return 1; }
	fi
	ms enable test/a || return 1
	in_pod "$NS_A" $PEER echo 242.0.0.10 80 100
}
check "disable: direct, VIPs stop, established survive (eBPF; cut under iptables); enable: proxied again" case_toggle

check "1,000 concurrent connections, every byte checked" in_pod "$NS_A" $PEER many 242.0.0.10 80 1000 1000 20000

case_restart() {
	stop_agent KILL
	# the pods stay enabled in the pinned map while the agent is down
	local t0=$(date +%s%N)
	start_agent || return 1
	wait_for 1 in_pod "$NS_A" $PEER echo 242.0.0.10 80 100 >/dev/null || return 1
	local ms_taken=$((($(date +%s%N) - t0) / 1000000))
	echo "agent restarted and serving in ${ms_taken} ms"
	ms pods | grep -q "test/b.*enabled"
}
check "agent killed and restarted: pods stay enabled, new connections work within 1 s" case_restart

# The kernel path needs no agent: with the agent killed (the mesh is
# fail-closed), its VIPs keep working, established and new, and the policy
# still holds; the proxy path is refused.
case_kernel_path_agent_down() {
	kernel_path || { echo "iptables engine: no kernel path"; return 0; }
	in_pod "$NS_A" $PEER hold 242.0.0.10 80 2 >"$T/khold.out" 2>&1 &
	local hold=$!
	wait_for 3 grep -q held "$T/khold.out" || return 1
	stop_agent KILL
	local rc=0
	in_pod "$NS_A" $PEER echo 242.0.0.10 80 100 >/dev/null || rc=1
	in_pod "$NS_A" $PEER echo 241.0.0.20 80 100 >/dev/null || rc=1
	in_pod "$NS_B" $PEER refused 198.18.3.2 8083 >/dev/null || rc=1
	in_pod "$NS_A" $PEER timed-refused 242.0.0.12 80 0.5 >/dev/null || rc=1
	wait $hold || rc=1
	start_agent || return 1
	[ $rc -eq 0 ] && echo "agent down: kernel-path VIPs served, established one kept, passthrough-off refused, proxy path refused"
	[ $rc -eq 0 ] && in_pod "$NS_A" $PEER echo 242.0.0.12 80 100
}
check "agent killed: kernel-path VIPs keep working (new and established), policy holds" case_kernel_path_agent_down

case_metrics() {
	local m
	in_pod "$NS_A" $PEER echo 242.0.0.12 80 100 >/dev/null || return 1 # a proxied one since the restart
	m=$(curl -s --max-time 3 "http://127.0.0.1:$MPORT/metrics") || return 1
	echo "$m" | grep -E '^meshsplice_connections_opened_total\{path="proxy"\} [1-9]' || return 1
	echo "$m" | grep -q '^meshsplice_connections_refused_total{reason="passthrough_off"}' || return 1
	echo "$m" | grep -q '^meshsplice_pod_connections_active{pod="test/a",mesh="default"}' || return 1
	echo "$m" | grep -q '^meshsplice_bytes_total{direction="up",path="proxy"} [1-9]' || return 1
	echo "$m" | grep -q '^meshsplice_service_connections_active{service="MeshExternalService/echo-ip",mesh="default"} ' || return 1
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nope")" = 404 ] || return 1
	# never on a non-loopback address
	if "$AGENT_BIN" --metrics 198.18.1.1:9100 --control "$T/x.sock" --state-dir "$T/x" --bpffs "$BPFFS/x" \
		--cgroup "$CG" >"$T/m.out" 2>&1; then return 1; fi
	grep -q "binds loopback only" "$T/m.out"
}
check "Prometheus metrics on loopback: counters, refusals by reason, per-pod gauge; other addresses refused" case_metrics

agent_fds() { ls "/proc/$AGENT_PID/fd" | wc -l; }
agent_rss() { awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status"; }
case_no_growth() {
	in_pod "$NS_A" $PEER many 242.0.0.10 80 1000 100 100 >/dev/null || return 1
	sleep 0.5
	local fd0=$(agent_fds) rss0=$(agent_rss)
	in_pod "$NS_A" $PEER many 242.0.0.10 80 10000 100 100 || return 1
	sleep 0.5
	local fd1=$(agent_fds) rss1=$(agent_rss)
	echo "fds $fd0 → $fd1, RSS ${rss0} → ${rss1} KiB"
	# up to 16 unconnected upstream sockets wait in the per-netns batch, so the
	# count moves within that window; a leak over 10,000 connections would not
	[ "$fd1" -le $((fd0 + 16)) ] || return 1
	# ASan keeps freed memory in its quarantine by design: the RSS bound holds
	# for the real binary (plain build); under ASan leaks are LeakSanitizer's job.
	case ${MS_SANITIZED:-none} in
	none | "") [ $((rss1 - rss0)) -lt 2048 ] ;;
	*) echo "RSS bound not asserted under $MS_SANITIZED" ;;
	esac
}
check "no fd or memory growth after 10,000 connections" case_no_growth

# Every connection that ends is counted under exactly one how: started =
# active + the sum of ended, in `stats` and in Prometheus alike.
case_ended_adds_up() {
	local j m
	in_pod "$NS_A" $PEER echo 242.0.0.12 80 100 >/dev/null || return 1
	sleep 0.3
	j=$(ms -o json stats) || return 1
	echo "$j" | python3 -c 'import json,sys
f = json.load(sys.stdin)["forwarder"]
hows = ["completed", "reset_client", "reset_upstream", "connect_failed", "connect_timeout",
        "idle_timeout", "halfclose_timeout", "error", "shutdown"]
ended = sum(f[h] for h in hows)
print("stats: started %d = active %d + ended %d" % (f["started"], f["active"], ended))
sys.exit(0 if f["started"] == f["active"] + ended and f["started"] > 0 else 1)' || return 1
	m=$(curl -s --max-time 3 "http://127.0.0.1:$MPORT/metrics") || return 1
	echo "$m" | python3 -c 'import re,sys
t = sys.stdin.read()
started = int(re.search(r"^meshsplice_connections_opened_total\{path=\"proxy\"\} (\d+)$", t, re.M).group(1))
active = int(re.search(r"^meshsplice_connections_active (\d+)$", t, re.M).group(1))
ended = sum(int(v) for v in re.findall(r"^meshsplice_connections_ended_total\{how=\"\w+\"\} (\d+)$", t, re.M))
print("metrics: started %d = active %d + ended %d" % (started, active, ended))
# the same counters the same moment, give or take connections that ended between the two reads
sys.exit(0 if started == active + ended else 1)'
}
check "ended connections add up: started = active + ended, in stats and Prometheus" case_ended_adds_up

# An exclusion given at enable can be taken back (and a list not given is kept).
case_exclusions_cleared() {
	ms enable test/a --exclude-port 9999 --exclude-cidr 198.18.99.0/24 >/dev/null || return 1
	ms -o json pods | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin)["pods"] if p["name"] == "test/a"][0]
sys.exit(0 if p["exclude_ports"] == [9999] and p["exclude_cidrs"] == ["198.18.99.0/24"] else 1)' || return 1
	ms enable test/a --exclude-port 9998 >/dev/null || return 1
	# control: only the ports were replaced, the CIDR stays
	ms -o json pods | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin)["pods"] if p["name"] == "test/a"][0]
sys.exit(0 if p["exclude_ports"] == [9998] and p["exclude_cidrs"] == ["198.18.99.0/24"] else 1)' || return 1
	ms enable test/a --no-exclusions >/dev/null || return 1
	ms -o json pods | python3 -c 'import json,sys
p = [p for p in json.load(sys.stdin)["pods"] if p["name"] == "test/a"][0]
print("after --no-exclusions:", p["exclude_ports"], p["exclude_cidrs"])
sys.exit(0 if p["exclude_ports"] == [] and p["exclude_cidrs"] == [] else 1)' || return 1
	in_pod "$NS_A" $PEER echo 242.0.0.10 80 100
}
check "a pod's exclusions can be cleared (--no-exclusions), a list not given is kept" case_exclusions_cleared

check "SIGTERM: the agent exits 0, no sanitizer report (leaks, UB)" case_clean_exit

finish
