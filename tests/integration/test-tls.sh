#!/bin/bash
# SPDX-License-Identifier: MIT
# TLS origination: plaintext from the pod to a VIP, TLS from meshsplice to
# real servers in the outside netns, with a PKI the test makes.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
mkdir -p "$T/pki"
make_certs "$T/pki" || exit 1
P=$T/pki
b64() { base64 -w0 "$1"; }
CA1=$(b64 "$P/ca1.pem")

# servers on 198.18.3.2 (reached from the pod as up.test and friends)
srv() { # port cert [opts...]
	local port=$1 cert=$2
	shift 2
	bg_out "tls$port" $PEER serve-tls "$port" "$P/$cert.pem" "$P/$cert.key" "$T/tls-$port.log" "$@"
}
srv 9001 good || exit 1
srv 9014 good max=TLS12 || exit 1
srv 9002 wrongca || exit 1
srv 9003 wrongname || exit 1
srv 9004 expired || exit 1
srv 9005 selfsigned || exit 1
srv 9006 evil || exit 1
# openssl s_server where the alerts matter: Python's TLS server closes
# without the protocol_version alert. Its stdin (a FIFO) drives renegotiation.
sserver() { # port fifo extra-args...
	local port=$1 fifo=$2
	shift 2
	mkfifo "$fifo"
	# read-write open never blocks, and keeps s_server from seeing EOF
	exec {fd}<>"$fifo"
	bg_out "s$port" sh -c 'port=$0 cert=$1 key=$2 fifo=$3; shift 3; echo ready
		exec openssl s_server -accept "$port" -cert "$cert" -key "$key" "$@" <"$fifo"' \
		"$port" "$P/good.pem" "$P/good.key" "$fifo" "$@" || return 1
	FIFO_FDS+=($fd)
}
FIFO_FDS=()
sserver 9007 "$T/f9007" -tls1_2 -quiet || exit 1
sserver 9012 "$T/f9012" -tls1_2 || exit 1
sserver 9013 "$T/f9013" -tls1_2 || exit 1
srv 9008 good "ca=$P/ca1.pem" || exit 1
srv 9009 good alpn=h2,http/1.1 || exit 1
srv 9010 partial || exit 1
srv 9011 cnonly || exit 1
# socat echoes over TLS and keeps echoing after the client's close_notify
# (Python's asyncio server stops writing once it has one).
bg_out echo9015 sh -c 'echo ready; exec socat -t 30 OPENSSL-LISTEN:9015,reuseaddr,fork,verify=0,cert=$0,key=$1 EXEC:cat' \
	"$P/good.pem" "$P/good.key" || exit 1
# reads nothing for 1.5 s, then up to the client's close_notify
bg_out sink9016 $PEER serve-tls-sink 9016 "$P/good.pem" "$P/good.key" 1.5 || exit 1
# TLS 1.3 echoes that send a KeyUpdate after 1 MiB (tests/integration/keyupdate-peer.c):
# asking the forwarder to update its key too, and the control that does not ask
KU_LOG=$T/keyupdate.log
bg_out ku9018 "$BUILD/tests/keyupdate-peer" 9018 "$P/good.pem" "$P/good.key" 1048576 requested "$KU_LOG.9018" || exit 1
bg_out ku9019 "$BUILD/tests/keyupdate-peer" 9019 "$P/good.pem" "$P/good.key" 1048576 not-requested "$KU_LOG.9019" || exit 1
mkdir -p "$T/www" && echo "<h1>meshsplice nginx test page</h1>" >"$T/www/index.html"
cat >"$T/nginx.conf" <<NGX
daemon off;
user root;
pid $T/nginx.pid;
error_log $T/nginx.err;
events {}
http {
  access_log off;
  client_body_temp_path $T/www;
  server {
    listen 198.18.3.2:9443 ssl;
    ssl_certificate $P/good.pem;
    ssl_certificate_key $P/good.key;
    root $T/www;
  }
}
NGX
ip netns exec "$NS_O" nginx -c "$T/nginx.conf" &
BG_PIDS+=($!)
printf '198.18.3.2 up.test a.wild.test sa.wild.test\n' >"$T/hosts"

svc() { # name vip port endpoint-address endpoint-port tls-yaml [protocol]
	cat >"$T/conf/$1.yaml" <<YAML
type: MeshExternalService
name: $1
spec:
  match:
    port: $3
    protocol: ${7:-tcp}
  endpoints:
    - address: $4
      port: $5
  tls:
    enabled: true
$6
status:
  vip:
    ip: $2
YAML
}
verif() { # mode [extra lines]
	printf '    verification:\n      mode: %s\n      caCert:\n        inline: %s\n%s' "$1" "$CA1" "${2:-}"
}
modes=(Secured SkipSAN SkipCA SkipAll)
servers=(good wrongca wrongname expired selfsigned)
for m in 0 1 2 3; do
	for s in 0 1 2 3 4; do
		# resource names are RFC 1123 (Kuma's rule): lowercase
		svc "m-${modes[$m],,}-${servers[$s]}" "242.0.1.$((10 * (m + 1) + s + 1))" 443 up.test $((9001 + s)) "$(verif "${modes[$m]}")"
	done
done
svc san-exact-hit 242.0.2.1 443 up.test 9001 "$(verif Secured '      subjectAltNames:
        - type: Exact
          value: spiffe://mesh.test/ns/default/sa/up
')"
svc san-exact-miss 242.0.2.2 443 up.test 9001 "$(verif Secured '      subjectAltNames:
        - type: Exact
          value: spiffe://mesh.test/ns/default
')"
svc san-prefix-hit 242.0.2.3 443 up.test 9001 "$(verif Secured '      subjectAltNames:
        - type: Prefix
          value: spiffe://mesh.test
')"
svc san-prefix-evil 242.0.2.4 443 up.test 9006 "$(verif Secured '      subjectAltNames:
        - type: Prefix
          value: spiffe://mesh.test
')"
svc ip-endpoint 242.0.2.5 443 198.18.3.2 9001 "$(verif Secured)"
svc wildcard 242.0.2.6 443 a.wild.test 9001 "$(verif Secured)"
svc partial-wildcard 242.0.2.7 443 sa.wild.test 9010 "$(verif Secured)"
svc cn-only 242.0.2.8 443 up.test 9011 "$(verif Secured)"
svc version 242.0.2.9 443 up.test 9007 "    version:
      min: TLS13
$(verif Secured)"
svc mtls-ok 242.0.2.10 443 up.test 9008 "$(verif Secured "      clientCert:
        inline: $(b64 "$P/client.pem")
      clientKey:
        inline: $(b64 "$P/client.key")
")"
svc mtls-missing 242.0.2.11 443 up.test 9008 "$(verif Secured)"
svc alpn 242.0.2.12 443 up.test 9009 "$(verif Secured)" http2
svc system-ca 242.0.2.13 443 up.test 9001 "    verification:
      mode: Secured"
svc resume 242.0.2.14 443 up.test 9001 "$(verif Secured)"
svc resume12 242.0.2.18 443 up.test 9014 "$(verif Secured)"
svc bulk 242.0.2.19 443 up.test 9015 "$(verif Secured)"
svc sink 242.0.2.20 443 up.test 9016 "$(verif Secured)"
svc vcache 242.0.2.21 443 up.test 9017 "$(verif Secured)"
svc keyupdate 242.0.2.22 443 up.test 9018 "$(verif Secured)"
svc keyupdate-own 242.0.2.23 443 up.test 9019 "$(verif Secured)"
svc nginx 242.0.2.15 80 up.test 9443 "$(verif Secured)" http
svc reneg-off 242.0.2.16 443 up.test 9012 "    allowRenegotiation: false
$(verif Secured)"
svc reneg-on 242.0.2.17 443 up.test 9013 "    allowRenegotiation: true
$(verif Secured)"
cat >"$T/conf/legacy.yaml" <<YAML
type: ExternalService
name: legacy-nosni
tags:
  kuma.io/service: legacy-nosni
networking:
  address: up.test:9001
  tls:
    enabled: true
    serverName: ""
    caCert:
      inline: $CA1
YAML

# MS_KTLS: the agent's --ktls (auto: kernel TLS where the kernel has it)
MESHSPLICE_SYSTEM_CA_PATH=$P/ca1.pem start_agent --ktls "${MS_KTLS:-auto}" || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name tls/a >/dev/null || exit 1

last() { tail -1 "$T/tls-$1.log" 2>/dev/null; }
ok() { in_pod "$NS_A" $PEER echo-exact "$1" "${2:-443}" 2000; }
refused() { in_pod "$NS_A" $PEER refused "$1" "${2:-443}"; }

# every verification mode × {good, wrong CA, wrong name, expired, self-signed}
#            good wrongca wrongname expired selfsigned
expect=("ok   fail    fail      fail    fail"   # Secured: chain and name
	"ok   fail    ok        fail    fail"   # SkipSAN: chain only
	"ok   ok      fail      fail    ok"     # SkipCA: names only (expiry still checked)
	"ok   ok      ok        ok      ok")    # SkipAll
for m in 0 1 2 3; do
	read -r -a row <<<"${expect[$m]}"
	for s in 0 1 2 3 4; do
		vip="242.0.1.$((10 * (m + 1) + s + 1))"
		if [ "${row[$s]}" = ok ]; then
			check "${modes[$m]} × ${servers[$s]}: connects" ok "$vip"
		else
			check "${modes[$m]} × ${servers[$s]}: refused" refused "$vip"
		fi
	done
done

tls_fail() { stat "tls.failures.$1"; }
case_reasons() {
	local u=$(tls_fail unknown_ca) n=$(tls_fail name_mismatch) e=$(tls_fail expired)
	refused 242.0.1.12 && refused 242.0.1.13 && refused 242.0.1.14 || return 1
	echo "unknown_ca $u→$(tls_fail unknown_ca) name_mismatch $n→$(tls_fail name_mismatch) expired $e→$(tls_fail expired)"
	[ "$(tls_fail unknown_ca)" -gt "$u" ] && [ "$(tls_fail name_mismatch)" -gt "$n" ] && [ "$(tls_fail expired)" -gt "$e" ]
}
check "each failure counted under its reason (unknown CA, name, expired)" case_reasons
check "SAN Exact hit (URI)" ok 242.0.2.1
check "SAN Exact miss" refused 242.0.2.2
check "SAN Prefix hit (spiffe://mesh.test)" ok 242.0.2.3
check "SAN Prefix does not match spiffe://mesh.test.evil/..." refused 242.0.2.4
case_ip() {
	ok 242.0.2.5 || return 1
	last 9001
	last 9001 | grep -q '"sni": null'
}
check "IP endpoint: checked against IP SANs, no SNI sent" case_ip
case_sni() {
	ok 242.0.1.11 || return 1
	last 9001
	last 9001 | grep -q '"sni": "up.test"'
}
check "DNS endpoint: SNI is the endpoint's name (seen at the server)" case_sni
case_legacy() {
	local vip
	vip=$(ms -o json get | python3 -c 'import json,sys
print([s["vip"] for s in json.load(sys.stdin)["config"]["services"] if s["name"] == "legacy-nosni"][0])')
	ok "$vip" 9001 || return 1
	last 9001 | grep -q '"sni": null'
}
check "legacy ExternalService serverName \"\": no SNI" case_legacy
check "wildcard *.wild.test matches a.wild.test" ok 242.0.2.6
check "partial wildcard s*.wild.test is not accepted" refused 242.0.2.7
check "no CN fallback: a cert with the name only in its CN is refused" refused 242.0.2.8
case_version() {
	local v=$(tls_fail protocol_version)
	refused 242.0.2.9 || return 1
	[ "$(tls_fail protocol_version)" -gt "$v" ]
}
check "version bounds: min TLS13 against a TLS 1.2-only server fails (protocol_version)" case_version
case_mtls() {
	ok 242.0.2.10 || return 1
	last 9008 | grep -q '"client": "client-1"'
}
check "mTLS: client certificate accepted by the server" case_mtls
check "mTLS: without a client certificate the server refuses" refused 242.0.2.11
# Bulk both ways behind a paused reader: records gathered into one send to
# the client, SSL_write held back by a full upstream buffer, and the bytes intact.
check "16 MiB echoed through TLS behind a reader paused 2 s arrive intact (sha256)" \
	in_pod "$NS_A" $PEER slow-reader 242.0.2.19 443 16 2
# The client's FIN becomes close_notify then FIN, after every byte, also when
# the server reads late; the server answers after it, and the reply still flows.
check "client half-close → close_notify after 3 MB a slow TLS server had not read yet; its reply arrives" \
	in_pod "$NS_A" $PEER halfclose 242.0.2.20 443 3000000
# A TLS 1.3 server's KeyUpdate after 1 MiB, 4 MiB echoed a MiB at a time
# (lockstep: the client sends after the KeyUpdate came, else there would be
# nothing to answer it before; sha256). With
# update_requested the forwarder answers with a KeyUpdate of its own (the
# server counts it) and the rest arrives under its new key; not requested,
# it sends none (the control: the count detects a missing one). Where the
# kernel encrypts (kTLS TX, Linux 6.1) the request cannot be honoured: the
# connection is reset, counted (tests/kernels/test-ktls.sh).
case_keyupdate() { # vip port key-updates-from-the-forwarder
	local tx=$(stat tls.ktls_tx) ku=$(tls_fail ktls_key_update) rc=0
	local n=$(cat "$KU_LOG.$2" 2>/dev/null | wc -l)
	in_pod "$NS_A" $PEER lockstep "$1" 443 4 || rc=1
	# the server's line comes once it saw the end (a reset may be quicker)
	for _ in $(seq "$(ts 50)"); do [ "$(wc -l <"$KU_LOG.$2")" -gt "$n" ] && break; sleep 0.1; done
	local line=$(tail -1 "$KU_LOG.$2")
	echo "server: $line; ktls_tx $tx→$(stat tls.ktls_tx), failures.ktls_key_update $ku→$(tls_fail ktls_key_update)"
	if [ "$(stat tls.ktls_tx)" -gt "$tx" ] && [ "$3" -gt 0 ]; then
		[ $rc -ne 0 ] && [ "$(tls_fail ktls_key_update)" -eq $((ku + 1)) ] &&
			[[ $line == *"key_update sent 1 received 0 "* ]] && [[ $line != *"end ok" ]]
		return
	fi
	[ $rc -eq 0 ] && [ "$(tls_fail ktls_key_update)" -eq "$ku" ] &&
		[[ $line == *"in 4194304 out 4194304 key_update sent 1 received $3 end ok" ]]
}
check "TLS 1.3 server KeyUpdate (update_requested) mid-stream: the forwarder updates its key too, 4 MiB each way intact (kTLS TX: reset, counted)" \
	case_keyupdate 242.0.2.22 9018 1
check "TLS 1.3 server KeyUpdate (update_not_requested): no KeyUpdate back; 4 MiB each way intact" \
	case_keyupdate 242.0.2.23 9019 0
case_alpn() {
	ok 242.0.2.12 || return 1
	last 9009
	last 9009 | grep -q '"alpn": "h2"'
}
check "ALPN h2 for protocol http2, seen by the server" case_alpn
check "system CA default through MESHSPLICE_SYSTEM_CA_PATH" ok 242.0.2.13
case_resume() {
	ok 242.0.2.14 && sleep 0.2 && ok 242.0.2.14 || return 1
	last 9001
	last 9001 | grep -q '"resumed": true'
}
check "session resumed on the second connection (seen by the server)" case_resume
case_resume_after_reset() {
	# TLS 1.2: the stored session is the very object a connection resumed
	# with; its client resetting must not spoil it for the next one
	ok 242.0.2.18 && sleep 0.2 || return 1
	in_pod "$NS_A" $PEER reset 242.0.2.18 443 >/dev/null || return 1
	sleep 0.3
	ok 242.0.2.18 || return 1
	tail -3 "$T/tls-9014.log"
	last 9014 | grep -q '"resumed": true'
}
check "a connection that ends in a reset leaves the session resumable (TLS 1.2)" case_resume_after_reset
# Full handshakes only (no tickets, no session cache at the server): the
# second one takes the chain from the verification cache; a different chain
# at the same endpoint (another CA) is verified anew and refused.
www() { # cert: openssl s_server -www on 9017
	bg_out "www-$1" sh -c 'echo ready; exec openssl s_server -accept 9017 -www -no_ticket -no_cache -quiet -cert "$0" -key "$1"' \
		"$P/$1.pem" "$P/$1.key"
}
case_verify_cache() {
	local before page
	www good || return 1
	before=$(stat tls.verify_cached)
	for _ in 1 2 3; do
		page=$(in_pod "$NS_A" curl -s --max-time 5 http://242.0.2.21:443/) || return 1
		echo "$page" | grep -q "s_server" || { echo "no s_server page: $page"; return 1; }
	done
	echo "verify_cached $before → $(stat tls.verify_cached), resumed $(stat tls.resumed)"
	[ "$(stat tls.verify_cached)" -ge $((before + 2)) ] || return 1
	kill "${BG_PIDS[-1]}" && sleep 0.3
	www wrongca || return 1
	before=$(stat tls.failures.unknown_ca)
	refused 242.0.2.21 || return 1
	[ "$(stat tls.failures.unknown_ca)" -gt "$before" ]
}
check "full handshakes: a chain verified once is accepted from the cache; another chain at the endpoint is verified and refused" case_verify_cache
case_curl() {
	local page
	page=$(in_pod "$NS_A" curl -s --max-time 5 http://242.0.2.15/) || return 1
	echo "$page"
	echo "$page" | grep -q "meshsplice nginx test page"
}
check "curl http://VIP through a MeshExternalService with TLS returns the nginx page" case_curl

reneg() { # vip port expect(ok|fail)
	in_pod "$NS_A" $PEER until "$1" 443 after "$(ts 5)" >"$T/reneg.out" 2>&1 &
	local c=$!
	for _ in $(seq "$(ts 30)"); do grep -q connected "$T/reneg.out" && break; sleep 0.1; done
	tsleep 0.3
	echo r >"$T/f$2"   # s_server: renegotiate
	tsleep 0.5
	echo after >"$T/f$2"
	wait $c
	local rc=$?
	cat "$T/reneg.out"
	if [ "$3" = ok ]; then [ $rc -eq 0 ]; else [ $rc -ne 0 ]; fi
}
case_reneg_off() {
	local v=$(tls_fail renegotiation)
	reneg 242.0.2.16 9012 fail || return 1
	[ "$(tls_fail renegotiation)" -gt "$v" ]
}
check "allowRenegotiation false: the server's renegotiation fails the connection" case_reneg_off
check "allowRenegotiation true: renegotiation succeeds (TLS 1.2), data flows after it" reneg 242.0.2.17 9013 ok

check "SIGTERM: clean exit, no sanitizer report" case_clean_exit
finish
