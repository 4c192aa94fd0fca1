#!/bin/bash
# SPDX-License-Identifier: MIT
# Mesh DNS end to end: dig, the C library resolver and nc inside enabled
# pods; a test resolver (dnsd.py) in the outside netns for every other
# name. Run once per engine (MS_ENGINE).
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
command -v dig >/dev/null || { echo "dig missing (bind9-dnsutils; scripts/setup.sh installs it)"; exit 1; }

NAME=mes-tcp.svc.meshext.local
cat >"$T/conf/dns.yaml" <<YAML
type: Mesh
name: default
---
type: Mesh
name: other
---
type: Mesh
name: closed
networking:
  outbound:
    passthrough: false
---
type: HostnameGenerator
name: meshext
mesh: default
spec:
  selector:
    meshExternalService:
      matchLabels:
        kuma.io/origin: zone
  template: "{{ .DisplayName }}.svc.meshext.local"
---
type: MeshExternalService
name: mes-tcp
mesh: default
labels:
  kuma.io/origin: zone
spec:
  match:
    type: HostnameGenerator
    port: 4242
    protocol: tcp
  endpoints:
    - address: 198.18.3.2
      port: 4242
---
type: MeshExternalService
name: mes-tcp
mesh: other
labels:
  kuma.io/origin: zone
spec:
  match:
    type: HostnameGenerator
    port: 4242
    protocol: tcp
  endpoints:
    - address: 198.18.3.2
      port: 4242
YAML

bg_out echo $PEER serve-echo 4242 || exit 1
bg_out dnsd python3 "$SRC/tests/integration/dnsd.py" 198.18.1.2 2001:2:0:1::2 198.18.2.2 2001:2:0:2::2 || exit 1
# a resolver the pods were never given: what a tunnel would talk to
ip -n "$NS_O" addr add 198.18.3.3/32 dev lo
bg_out tunnel python3 "$SRC/tests/integration/dnsd.py" 198.18.3.3 || exit 1
printf 'nameserver 198.18.1.2\noptions timeout:2 attempts:1\n' >"$T/resolv-a.conf"
printf 'nameserver 2001:2:0:1::2\noptions timeout:2 attempts:1\n' >"$T/resolv-a6.conf"

start_agent --dns-ttl 42 --dns-timeout 1500 || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name test/a --mesh default >/dev/null || exit 1
ms enable --netns "/var/run/netns/$NS_B" --name test/b --mesh other >/dev/null || exit 1

# the pod's view of /etc/resolv.conf, in a private mount namespace
with_resolv() {
	local ns=$1 conf=$2
	shift 2
	in_pod "$ns" unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$conf" "$@"
}
VIP=$(ms -o json dns lookup "$NAME" --mesh default | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"][0])')
seen() { grep -c "query $1 $2 " "$T/dnsd.out"; } # transport name: queries the test resolver saw

case_lookup_cli() {
	echo "dns lookup: $VIP"
	[[ $VIP == 242.* ]] || return 1
	ms dns lookup "$NAME" --mesh other | grep -q "not a hostname of mesh other" &&
		ms dns lookup "$NAME" --mesh default | grep -q "$VIP"
}
case_udp4() {
	local before out
	before=$(seen udp "$NAME")
	out=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 "$NAME" A)
	echo "dig udp: $out (TTL $(in_pod "$NS_A" dig +noall +answer +time=2 +tries=1 @198.18.1.2 "$NAME" | awk '{print $2}'))"
	[ "$out" = "$VIP" ] && [ "$(seen udp "$NAME")" = "$before" ] &&
		in_pod "$NS_A" dig +noall +answer +time=2 +tries=1 @198.18.1.2 "$NAME" | awk '{exit $2 != 42}'
}
case_tcp4() {
	local out
	out=$(in_pod "$NS_A" dig +tcp +short +time=2 +tries=1 @198.18.1.2 "$NAME" A)
	echo "dig tcp: $out"
	[ "$out" = "$VIP" ] && [ "$(seen tcp "$NAME")" = 0 ]
}
case_v6() {
	local u t
	u=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @2001:2:0:1::2 "$NAME" A)
	t=$(in_pod "$NS_A" dig +tcp +short +time=2 +tries=1 @2001:2:0:1::2 "$NAME" A)
	echo "over IPv6: udp $u, tcp $t"
	[ "$u" = "$VIP" ] && [ "$t" = "$VIP" ]
}
case_aaaa_nodata() {
	local out
	out=$(in_pod "$NS_A" dig +time=2 +tries=1 @198.18.1.2 "$NAME" AAAA)
	echo "$out" | grep -E "status:|ANSWER:" | head -2
	echo "$out" | grep -q "status: NOERROR" && echo "$out" | grep -q "ANSWER: 0"
}
case_getent() {
	local out out6
	out=$(with_resolv "$NS_A" "$T/resolv-a.conf" getent hosts "$NAME")
	out6=$(with_resolv "$NS_A" "$T/resolv-a6.conf" getent ahostsv4 "$NAME" | head -1)
	echo "getent: $out / via IPv6 resolver: $out6"
	[[ $out == "$VIP "* ]] && [[ $out6 == "$VIP "* ]]
}
case_nc() {
	local out
	out=$(echo 'echo this' | with_resolv "$NS_A" "$T/resolv-a.conf" nc.openbsd -q 3 "$NAME" 4242)
	echo "nc: $out"
	[ "$out" = "echo this" ]
}
case_forward() {
	local u t e txt direct
	u=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 ext.test A)
	t=$(in_pod "$NS_A" dig +tcp +short +time=2 +tries=1 @198.18.1.2 ext.test A)
	txt=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @2001:2:0:1::2 txt.test TXT)
	direct=$(ip netns exec "$NS_O" dig +short +time=2 +tries=1 @198.18.1.2 txt.test TXT)
	e=$(grep "query udp ext.test 1 " "$T/dnsd.out" | tail -1)
	echo "forwarded: udp $u, tcp $t, txt $txt (direct $direct); resolver saw: $e"
	[ "$u" = 198.18.3.2 ] && [ "$t" = 198.18.3.2 ] && [ "$txt" = "$direct" ] && [ -n "$txt" ] &&
		[[ $e == *"edns=1 from=198.18.1.1" ]] && [ "$(seen tcp ext.test)" -ge 1 ]
}
case_servfail() {
	local out
	out=$(in_pod "$NS_A" dig +time=2 +tries=1 @198.18.1.2 fail.test A | grep -o "status: [A-Z]*")
	echo "$out"
	[ "$out" = "status: SERVFAIL" ]
}
case_timeout() {
	local rc start=$SECONDS
	in_pod "$NS_A" dig +time=3 +tries=1 @198.18.1.2 slow.test A >"$T/slow.out"
	rc=$?
	echo "dig exit $rc after $((SECONDS - start)) s: $(grep -o "timed out\|no servers could be reached" "$T/slow.out" | head -1)"
	[ $rc = 9 ]
}
case_upstream_down() {
	local out
	# nothing serves DNS at 198.18.3.2: the resolver is down
	out=$(in_pod "$NS_A" dig +time=3 +tries=1 @198.18.3.2 ext.test A | grep -o "status: [A-Z]*")
	echo "resolver down: ${out:-no answer}"
	[ "$out" = "status: SERVFAIL" ]
}
case_other_mesh() {
	local out before
	before=$(seen udp "$NAME")
	out=$(in_pod "$NS_B" dig +time=2 +tries=1 @198.18.2.2 "$NAME" A | grep -o "status: [A-Z]*")
	echo "pod of mesh other: $out, forwarded to its resolver: $(($(seen udp "$NAME") - before))"
	[ "$out" = "status: NXDOMAIN" ] && [ "$(seen udp "$NAME")" = $((before + 1)) ]
}
case_malformed() {
	in_pod "$NS_A" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", ("198.18.1.2", 53))
r, peer = s.recvfrom(512)
rcode = r[3] & 15
print("answer from", peer[0], "rcode", rcode)
assert r[:2] == b"\x12\x34" and rcode == 1 and peer[0] == "198.18.1.2"
' && [ "$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 "$NAME" A)" = "$VIP" ]
}
case_metrics() {
	local m
	m=$(curl -s "http://127.0.0.1:$MPORT/metrics" | grep '^meshsplice_dns_queries_total')
	echo "$m" | tr '\n' ' '
	echo "$m" | awk '$2 > 0 { n++ } END { exit n != 4 }'
}
case_pod_off() {
	local out
	ms enable test/a --no-dns >/dev/null || return 1
	out=$(in_pod "$NS_A" dig +time=2 +tries=1 @198.18.1.2 "$NAME" A | grep -o "status: [A-Z]*")
	echo "capture off for the pod: $out"
	[ "$out" = "status: NXDOMAIN" ] || return 1
	ms enable test/a --dns >/dev/null || return 1
	out=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 "$NAME" A)
	echo "capture on again: $out"
	[ "$out" = "$VIP" ]
}
case_restart() {
	# a restarted agent serves DNS again for the pods it re-enables
	stop_agent TERM
	start_agent --dns-ttl 42 --dns-timeout 1500 || return 1
	local out
	out=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 "$NAME" A)
	echo "after restart: $out"
	[ "$out" = "$VIP" ]
}

check "meshsplice dns lookup answers as a pod of each mesh would be" case_lookup_cli
check "dig over UDP: the generated name → its VIP, TTL as configured, answered locally" case_udp4
check "dig over TCP: the same answer, the resolver never asked" case_tcp4
check "an IPv6 resolver, UDP and TCP" case_v6
check "AAAA for an IPv4 VIP: NODATA" case_aaaa_nodata
check "the C library resolver (getent) through resolv.conf, IPv4 and IPv6 resolver" case_getent
check "the docs' example: echo 'echo this' | nc -q 3 $NAME 4242" case_nc
check "other names go to the pod's resolver, unchanged (EDNS kept, from the pod's address)" case_forward
check "SERVFAIL from the resolver reaches the client as SERVFAIL" case_servfail
check "a resolver that never answers: the client times out" case_timeout
check "a resolver that is down: SERVFAIL" case_upstream_down
check "a pod of another mesh does not get the name" case_other_mesh
check "a malformed query: FORMERR, from the resolver's address; the responder goes on" case_malformed
check "metrics: answered locally, forwarded, failed, malformed" case_metrics
check "capture off for one pod, then on again" case_pod_off
check "after a restart the responder is back" case_restart
# Passthrough off: mesh DNS is no way around it. Pod B moves to a closed mesh
# with its own resolver 198.18.2.2; 198.18.3.3 runs a resolver it was never
# given (its queries are counted there).
tunnel_seen() { grep -c "query " "$T/tunnel.out"; }
case_tunnel_control() {
	# control: with passthrough on, a query to any resolver is relayed, so
	# the counter sees what a tunnel would send
	local before=$(tunnel_seen) out
	out=$(in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.3.3 ext.test A)
	out6=$(in_pod "$NS_A" dig +tcp +short +time=2 +tries=1 @198.18.3.3 ext.test A)
	echo "passthrough on: udp $out, tcp $out6; the other resolver saw $(($(tunnel_seen) - before))"
	[ "$(tunnel_seen)" -eq $((before + 2)) ]
}
case_tunnel_refused() {
	ms enable test/b --mesh closed --dns-server 198.18.2.2 >/dev/null || return 1
	local before=$(tunnel_seen) u t own
	u=$(in_pod "$NS_B" dig +time=2 +tries=1 @198.18.3.3 secret-token-1.ext.test A)
	t=$(in_pod "$NS_B" dig +tcp +time=2 +tries=1 @198.18.3.3 secret-token-2.ext.test A)
	echo "$u" | grep -q "status: REFUSED" || { echo "udp: $u"; return 1; }
	echo "$t" | grep -q "status: REFUSED" || { echo "tcp: $t"; return 1; }
	[ "$(tunnel_seen)" -eq "$before" ] || { echo "the other resolver saw $(($(tunnel_seen) - before)) queries"; return 1; }
	# its own resolver still answers, and mesh names still resolve
	own=$(in_pod "$NS_B" dig +short +time=2 +tries=1 @198.18.2.2 ext.test A)
	[ "$own" = 198.18.3.2 ] || { echo "own resolver: $own"; return 1; }
	echo "REFUSED over UDP and TCP, nothing reached 198.18.3.3; the pod's own resolver answered $own"
}
# Five framed 1 KB messages of arbitrary bytes over one TCP connection to
# X:53: none is relayed (not one reaches a resolver), each gets an answer
# from the responder or the connection ends.
case_tunnel_bytes() {
	local before=$(tunnel_seen)
	in_pod "$NS_B" python3 -c 'import socket, struct, os, sys
s = socket.create_connection(("198.18.3.3", 53), timeout=3)
got = 0
for i in range(5):
    m = struct.pack(">H", 0x4242 + i) + os.urandom(1022)
    try:
        s.sendall(struct.pack(">H", len(m)) + m)
        h = s.recv(2)
    except (ConnectionResetError, BrokenPipeError):
        break
    if len(h) < 2:
        break
    n = struct.unpack(">H", h)[0]
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            break
        b += c
    rcode = b[3] & 15 if len(b) >= 4 else -1
    if rcode not in (1, 5):
        sys.exit("message %d answered with rcode %d" % (i, rcode))
    got += 1
print("%d of 5 arbitrary messages answered FORMERR/REFUSED locally" % got)' || return 1
	[ "$(tunnel_seen)" -eq "$before" ]
}
# A message that is not a plain query (another opcode) is refused, not relayed.
case_tunnel_opcode() {
	local before=$(tunnel_seen)
	in_pod "$NS_B" python3 -c 'import socket, struct
q = struct.pack(">HHHHHH", 0x1234, 0x2800, 1, 0, 0, 0) + b"\x03ext\x04test\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("198.18.2.2", 53))
b, _ = s.recvfrom(512)
assert b[3] & 15 == 5, "rcode %d" % (b[3] & 15)
print("an UPDATE to its own resolver: REFUSED by the responder")' || return 1
	[ "$(tunnel_seen)" -eq "$before" ] && [ "$(stat dns.refused)" -ge 3 ]
}
check "passthrough on: a query to any resolver is relayed (the tunnel detector's control)" case_tunnel_control
check "passthrough off: a query to a resolver the pod was not given is REFUSED, nothing relayed" case_tunnel_refused
check "passthrough off: arbitrary framed bytes to X:53 over TCP are never relayed" case_tunnel_bytes
check "passthrough off: a message that is not a plain query is REFUSED" case_tunnel_opcode

check "SIGTERM: clean exit, sanitizers quiet" case_clean_exit
finish
