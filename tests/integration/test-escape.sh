#!/bin/bash
# SPDX-License-Identifier: MIT
# Policy cannot be escaped: a pod in a mesh with passthrough off tries every
# way out it has; no SYN and no byte may reach the outside. SYNs are counted
# by a rule in the outside netns (ours), bytes by the listener.
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
cat >"$T/conf/closed.yaml" <<YAML
type: Mesh
name: closed
networking:
  outbound:
    passthrough: false
YAML
bg_out record $PEER serve-record 8083 "$T/record.log" || exit 1
# count every SYN that reaches the outside netns, both families
ip netns exec "$NS_O" iptables -w -A INPUT -p tcp --syn -j ACCEPT
ip netns exec "$NS_O" ip6tables -w -A INPUT -p tcp --syn -j ACCEPT
syns() {
	echo $(($(ip netns exec "$NS_O" iptables -w -L INPUT -v -x -n | awk '/tcp flags/ { s += $1 } END { print s + 0 }') +
		$(ip netns exec "$NS_O" ip6tables -w -L INPUT -v -x -n | awk '/tcp flags/ { s += $1 } END { print s + 0 }')))
}
records() { if [ -f "$T/record.log" ]; then wc -l <"$T/record.log"; else echo 0; fi; }
start_agent || exit 1

# a socket made before the pod is enabled, used after
in_pod "$NS_A" $PEER hold-socket-then 198.18.1.2 8083 "$T/enabled.flag" >"$T/pre.out" 2>&1 &
PRE=$!
for _ in $(seq 30); do grep -q "socket made" "$T/pre.out" && break; sleep 0.1; done
ms enable --netns "/var/run/netns/$NS_A" --name esc/a --mesh closed >/dev/null || exit 1
touch "$T/enabled.flag"

no_escape() { # how host port
	local s0 r0
	s0=$(syns)
	r0=$(records)
	in_pod "$NS_A" $PEER escape "$1" "$2" "$3" || return 1
	sleep 0.3
	echo "SYNs at the outside: $s0 → $(syns), connections recorded: $r0 → $(records)"
	[ "$(syns)" -eq "$s0" ] && [ "$(records)" -eq "$r0" ]
}
case_control() { # the counters see a real attempt: pod B is not enabled
	local s0=$(syns)
	ip netns exec "$NS_B" $PEER echo 198.18.2.2 8083 10 >/dev/null 2>&1
	sleep 0.3
	echo "SYNs $s0 → $(syns)"
	[ "$(syns)" -gt "$s0" ]
}
check "control: an unenabled pod's SYN is counted at the outside" case_control
check "IPv4 connect" no_escape connect 198.18.1.2 8083
check "IPv6 connect" no_escape connect 2001:2:0:1::2 8083
check "IPv4-mapped IPv6 on a dual-stack socket" no_escape connect ::ffff:198.18.1.2 8083
check "bind, then connect" no_escape bind 198.18.1.2 8083
check "TCP Fast Open (sendto MSG_FASTOPEN)" no_escape tfo 198.18.1.2 8083
check "another port, another host of the outside" no_escape connect 198.18.3.2 8083
case_premade() {
	wait $PRE || { cat "$T/pre.out"; return 1; }
	cat "$T/pre.out"
	# nothing from pod A (198.18.1.1) ever reached the listener
	! grep -q '^198.18.1.1 ' "$T/record.log" 2>/dev/null
}
check "a socket made before the pod was enabled" case_premade
case_loopback() {
	# 0.0.0.0 and 127/8 are the pod's own loopback: never steered, never refused
	ip netns exec "$NS_A" $PEER serve-banner 9999 own >"$T/own.out" 2>&1 &
	BG_PIDS+=($!)
	for _ in $(seq 30); do grep -q ready "$T/own.out" && break; sleep 0.1; done
	in_pod "$NS_A" $PEER read 0.0.0.0 9999 | grep -q own && in_pod "$NS_A" $PEER read 127.0.0.2 9999 | grep -q own
}
check "0.0.0.0 and 127/8 reach the pod itself (its own loopback)" case_loopback

# Documented limits, tested as such (docs/SECURITY.md, "Limits").
raw_syn() { # a SYN crafted on a raw socket: needs CAP_NET_RAW
	python3 -c '
import socket, struct, sys
src, dst, port = "198.18.1.1", sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
tcp = struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
d = pseudo + tcp
c = sum(struct.unpack("!%dH" % (len(d) // 2), d))
while c >> 16:
    c = (c & 0xffff) + (c >> 16)
tcp = tcp[:16] + struct.pack("!H", ~c & 0xffff) + tcp[18:]
s.sendto(tcp, (dst, 0))
print("raw SYN sent")' "$@"
}
case_raw_unprivileged() {
	# without CAP_NET_RAW (Kubernetes drops it in restricted pods) there is no raw socket
	! in_pod "$NS_A" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		bash -c "$(declare -f raw_syn); raw_syn 198.18.1.2 8083" 2>"$T/raw.err" &&
		grep -q PermissionError "$T/raw.err" && echo "unprivileged: $(tail -1 "$T/raw.err")"
}
case_raw_privileged() {
	local s0=$(syns)
	in_pod "$NS_A" bash -c "$(declare -f raw_syn); raw_syn 198.18.1.2 8083" || return 1
	sleep 0.3
	if [ "${MS_ENGINE:-bpf}" = iptables ]; then
		# nat OUTPUT sees every packet: the crafted SYN is REDIRECTed to the listener too
		echo "iptables: a crafted SYN is redirected like any other: SYNs $s0 → $(syns)"
		[ "$(syns)" -eq "$s0" ]
	else
		# LIMIT: the cgroup hooks see connects, not packets
		echo "LIMIT (documented): with CAP_NET_RAW a crafted SYN passes the eBPF engine: SYNs $s0 → $(syns)"
		[ "$(syns)" -gt "$s0" ]
	fi
}
case_udp_out_of_scope() {
	# POLICY (documented): UDP other than DNS is out of scope: neither steered nor refused
	ip netns exec "$NS_O" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.1.2", 9998)); print("ready", flush=True)
s.settimeout(5); print("got", s.recvfrom(100)[0].decode(), flush=True)' >"$T/udp.out" 2>&1 &
	BG_PIDS+=($!)
	for _ in $(seq 30); do grep -q ready "$T/udp.out" && break; sleep 0.1; done
	in_pod "$NS_A" python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"udp-9998", ("198.18.1.2", 9998))'
	sleep 0.3
	echo "UDP to port 9998 from a passthrough-off pod: $(grep got "$T/udp.out")"
	grep -q "got udp-9998" "$T/udp.out"
}
case_listener_not_reachable() {
	# the listener lives on the pod's loopback: the node and other pods cannot dial it
	ip netns exec "$NS_O" $PEER timed-refused 198.18.1.1 15001 1 || return 1
	ip netns exec "$NS_B" python3 -c '
import socket
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("198.18.1.1", 15001))
except OSError as e:
    print("from the node: refused; from pod B:", e)
else:
    raise SystemExit("pod B reached the listener")'
}
check "no raw socket without CAP_NET_RAW" case_raw_unprivileged
check "CAP_NET_RAW: a crafted SYN gets out under eBPF (LIMIT, documented), not under iptables" case_raw_privileged
check "POLICY: UDP to other ports is out of scope, passes unchanged (documented)" case_udp_out_of_scope
check "the pod's listener cannot be dialled from the node or another pod" case_listener_not_reachable
finish
