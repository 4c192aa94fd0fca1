#!/bin/bash
# SPDX-License-Identifier: MIT
# MeshPassthrough end to end, once per engine (MS_ENGINE): the mode over the
# Mesh's flag, IP and CIDR matches (v4, v6) decided at connect, Domain
# matches read by the forwarder from the first bytes (TLS SNI from openssl
# s_client and Python, HTTP/1 Host from curl, HTTP/2 :authority from curl
# --http2-prior-knowledge), the bytes arriving untouched, a ClientHello in
# several segments, and a client that says nothing. Every refusal is counted
# at a recording server that saw no byte, with a control where it sees some.
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
PP="python3 $SRC/tests/integration/passpeer.py"

for port in 7001 7003 443 80 8080; do
	bg_out "rec$port" $PP record "$port" "$T/rec$port.log" || exit 1
done

# conf MODE: the Mesh with passthrough false and true, and a MeshPassthrough
conf() {
	cat >"$T/conf/mesh.yaml" <<YAML
type: Mesh
name: default
networking:
  outbound:
    passthrough: ${2:-false}
---
type: MeshPassthrough
name: egress
mesh: default
spec:
  targetRef:
    kind: Mesh
  default:
    passthroughMode: $1
    appendMatch:
      - type: IP
        value: 198.18.1.2
        port: 7001
      - type: CIDR
        value: 198.18.3.0/24
        port: 7003
      - type: CIDR
        value: 2001:2:0:1::/64
        port: 7001
      - type: Domain
        value: api.ext.test
        port: 443
        protocol: tls
      - type: Domain
        value: '*.ext.test'
        port: 443
        protocol: tls
      - type: Domain
        value: web.ext.test
        port: 80
        protocol: http
      - type: Domain
        value: h2.ext.test
        port: 8080
        protocol: http2
YAML
	[ -n "$AGENT_PID" ] && ms reload >/dev/null
}

conf Matched
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name test/a --mesh default >/dev/null || exit 1

bytes() { awk '{ n += $1 } END { print n + 0 }' "$T/rec$1.log" 2>/dev/null || echo 0; }
conns() { wc -l <"$T/rec$1.log" 2>/dev/null || echo 0; }
pod() { in_pod "$NS_A" "$@"; }
# refused PORT CMD...: CMD fails and the server on PORT gets no byte
refused() {
	local port=$1 before
	shift
	before=$(bytes "$port")
	if pod "$@"; then
		echo "not refused"
		return 1
	fi
	sleep 0.3
	echo "refused; bytes at the server: $before → $(bytes "$port")"
	[ "$(bytes "$port")" = "$before" ]
}
# allowed PORT CMD...: CMD succeeds and the server on PORT gets bytes
allowed() {
	local port=$1 before
	shift
	before=$(bytes "$port")
	pod "$@" || return 1
	sleep 0.3
	echo "allowed; bytes at the server: $before → $(bytes "$port")"
	[ "$(bytes "$port")" -gt "$before" ]
}
# s_client exits 1 either way (no TLS server): the server's count decides
tls_sees() {
	local before
	before=$(bytes 443)
	pod bash -c "echo | timeout 5 openssl s_client -connect 198.18.1.2:443 -servername $1 >/dev/null 2>&1"
	sleep 0.3
	echo "SNI $1: bytes at the server $before → $(bytes 443)"
	[ "$(bytes 443)" -gt "$before" ]
}

case_ip_allowed() { allowed 7001 $PP send 198.18.1.2 7001 http any.test; }
case_ip_other_port_refused() { refused 7003 $PP send 198.18.1.2 7003 http any.test; }
case_cidr4_allowed() { allowed 7003 $PP send 198.18.3.2 7003 http any.test; }
case_cidr4_other_port_refused() { refused 7001 $PP send 198.18.3.2 7001 http any.test; }
case_cidr6_allowed() { allowed 7001 $PP send 2001:2:0:1::2 7001 http any.test; }
case_cidr6_other_port_refused() { refused 7003 $PP send 2001:2:0:1::2 7003 http any.test; }
case_tls_exact() { tls_sees api.ext.test; }
case_tls_wildcard() { tls_sees a.b.ext.test; }
case_tls_no_match() { ! tls_sees evil.test; }
case_tls_wildcard_not_apex() { ! tls_sees ext.test; }
case_tls_untouched() { allowed 443 $PP send 198.18.1.2 443 tls api.ext.test; }
case_tls_split() { allowed 443 $PP send 198.18.1.2 443 tls x.ext.test 4 0.2; }
case_tls_split_no_match() { refused 443 $PP send 198.18.1.2 443 tls x.other.test 4 0.2; }
# curl gets a sha256 back, not HTTP: its exit says nothing, the server's count does
# host_reaches HOST: curl with that Host header; 0 when bytes reached the server on 80
host_reaches() {
	local before
	before=$(bytes 80)
	pod timeout 5 curl -s -m 4 -o /dev/null -H "Host: $1" http://198.18.1.2:80/
	sleep 0.3
	echo "Host $1: bytes at the server $before → $(bytes 80)"
	[ "$(bytes 80)" -gt "$before" ]
}
case_http_host() { host_reaches web.ext.test; }
case_http_host_no_match() { ! host_reaches other.test; }
case_http_untouched() { allowed 80 $PP send 198.18.1.2 80 http web.ext.test; }
case_http2_authority() {
	local before
	before=$(bytes 8080)
	pod timeout 5 curl -s -m 3 -o /dev/null --http2-prior-knowledge --connect-to h2.ext.test:8080:198.18.1.2:8080 \
		http://h2.ext.test:8080/
	sleep 3.5 # the recorder's 3 s of silence: curl keeps the connection open
	echo "h2c :authority h2.ext.test: bytes at the server $before → $(bytes 8080)"
	[ "$(bytes 8080)" -gt "$before" ]
}
case_http2_no_match() {
	local before
	before=$(bytes 8080)
	pod timeout 5 curl -s -m 3 -o /dev/null --http2-prior-knowledge --connect-to h2.other.test:8080:198.18.1.2:8080 \
		http://h2.other.test:8080/
	sleep 0.3
	echo "h2c :authority h2.other.test: bytes at the server $before → $(bytes 8080)"
	[ "$(bytes 8080)" = "$before" ]
}
# says nothing for 2 s: refused after the 1 s wait, its late bytes never arrive;
# the control is the same client to an address an IP match allows
case_silent_refused() { refused 443 $PP send 198.18.1.2 443 late-tls api.ext.test; }
case_silent_control() { allowed 7001 $PP send 198.18.1.2 7001 late-http any.test; }
# the forwarder's refusals by reason, the engine's at connect, the log naming the rule
case_counters() {
	local n k=0
	n=$(stat refused.passthrough_no_match)
	if [ "${MS_ENGINE:-bpf}" = bpf ]; then
		k=$(stat bpf.deny_passthrough_no_match)
		[ "$k" -gt 0 ] || return 1
	fi
	echo "passthrough_no_match refusals: $n in the forwarder, $k at connect; $(grep -c 'passthrough Domain' "$T/agent.log") Domain allows logged"
	[ "$n" -gt 0 ] && grep -q "appendMatch\[3\] api.ext.test" "$T/agent.log" && grep -q "name evil.test on port 443" "$T/agent.log"
}
# None over passthrough: true refuses what Matched allows; All over false allows it all
case_mode_none() {
	conf None true
	refused 7001 $PP send 198.18.1.2 7001 http any.test
}
case_mode_all() {
	conf All false
	allowed 443 $PP send 198.18.1.2 443 tls evil.test && allowed 7001 $PP send 198.18.3.2 7001 http any.test
}

for c in ip_allowed ip_other_port_refused cidr4_allowed cidr4_other_port_refused cidr6_allowed \
	cidr6_other_port_refused tls_exact tls_wildcard tls_no_match tls_wildcard_not_apex tls_untouched tls_split \
	tls_split_no_match http_host http_host_no_match http_untouched http2_authority http2_no_match silent_refused \
	silent_control counters mode_none mode_all; do
	check "$c" "case_$c"
done
check clean_exit case_clean_exit
finish
