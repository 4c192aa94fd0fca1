#!/bin/bash
# SPDX-License-Identifier: MIT
# Kernel TLS after the handshake (run inside the 6.1 VM by run.sh; on a
# kernel without the TLS ULP it checks that nothing went to the kernel).
# MS_KTLS=auto|off is the agent's --ktls: with off, every case still passes
# and the kTLS counters stay 0 (the control).
#
# Servers: socat TLS echo (TLS 1.3, TLS 1.2, TLS 1.2 with a CBC suite the
# kernel cannot take), Python's ssl sink (half-close), keyupdate-peer (a
# TLS 1.3 echo that sends a KeyUpdate mid-stream).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/certs.sh"
require_root
KTLS=${MS_KTLS:-auto}
make_topology || { echo "topology failed"; exit 1; }
mkdir -p "$T/pki"
make_certs "$T/pki" || exit 1
P=$T/pki
CA1=$(base64 -w0 "$P/ca1.pem")
# kernel TLS here? (TCP_ULP "tls" on an unconnected socket: ENOTCONN where it exists)
ULP=$(python3 -c 'import socket, errno
s = socket.socket()
try:
    s.setsockopt(socket.IPPROTO_TCP, 31, b"tls")
except OSError as e:
    print("yes" if e.errno == errno.ENOTCONN else "no")')
log "kernel $(uname -r): TLS ULP $ULP, --ktls $KTLS"

echo_srv() { # name port socat-openssl-options
	bg_out "$1" sh -c 'echo ready; exec socat -t 30 OPENSSL-LISTEN:$0,reuseaddr,fork,verify=0,cert=$1,key=$2$3 EXEC:cat' \
		"$2" "$P/good.pem" "$P/good.key" "${3:+,$3}"
}
echo_srv e13 9031 "" || exit 1
echo_srv e12 9032 "openssl-max-proto-version=TLS1.2" || exit 1
echo_srv cbc 9033 "openssl-max-proto-version=TLS1.2,cipher=ECDHE-ECDSA-AES128-SHA" || exit 1
bg_out sink9034 $PEER serve-tls-sink 9034 "$P/good.pem" "$P/good.key" 1.5 || exit 1
# TLS 1.3 echoes that send a KeyUpdate after 1 MiB (tests/integration/keyupdate-peer.c)
KU_LOG=$T/keyupdate.log
bg_out ku9035 "$BUILD/tests/keyupdate-peer" 9035 "$P/good.pem" "$P/good.key" 1048576 requested "$KU_LOG.9035" || exit 1
bg_out ku9036 "$BUILD/tests/keyupdate-peer" 9036 "$P/good.pem" "$P/good.key" 1048576 not-requested "$KU_LOG.9036" || exit 1
printf '198.18.3.2 up.test\n' >"$T/hosts"

svc() { # name vip port
	cat >"$T/conf/$1.yaml" <<YAML
type: MeshExternalService
name: $1
spec:
  match:
    port: 443
    protocol: tcp
  endpoints:
    - address: up.test
      port: $3
  tls:
    enabled: true
    verification:
      mode: Secured
      caCert:
        inline: $CA1
status:
  vip:
    ip: $2
YAML
}
svc e13 242.0.3.1 9031
svc e12 242.0.3.2 9032
svc cbc 242.0.3.3 9033
svc sink 242.0.3.4 9034
svc keyupdate 242.0.3.5 9035
svc keyupdate-own 242.0.3.6 9036

start_agent --ktls "$KTLS" || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name ktls/a >/dev/null || exit 1

tx() { stat tls.ktls_tx; }
rx() { stat tls.ktls_rx; }
us() { stat tls.ktls_userspace; }
# expect_ktls TX0 RX0 US0 dTX dRX dUS: the counters moved by these (when the
# kernel and the option allow kTLS; else by nothing)
expect_ktls() {
	local t=$(tx) r=$(rx) u=$(us)
	echo "ktls tx $1→$t rx $2→$r userspace $3→$u"
	if [ "$ULP" = yes ] && [ "$KTLS" = auto ]; then
		[ $((t - $1)) -eq "$4" ] && [ $((r - $2)) -eq "$5" ] && [ $((u - $3)) -eq "$6" ]
	else
		[ "$t" -eq "$1" ] && [ "$r" -eq "$2" ] && [ "$u" -eq "$3" ]
	fi
}
bulk() { # vip dTX dRX dUS: 16 MiB each way, sha256
	local t=$(tx) r=$(rx) u=$(us)
	in_pod "$NS_A" $PEER slow-reader "$1" 443 16 0 || return 1
	expect_ktls "$t" "$r" "$u" "$2" "$3" "$4"
}
# OpenSSL 3.0 has no TLS 1.3 kTLS receive: TLS 1.3 is TX only
check "TLS 1.3 AES-GCM: 16 MiB each way intact (sha256), TX spliced into kTLS" bulk 242.0.3.1 1 0 0
check "TLS 1.2 AES-GCM: 16 MiB each way intact (sha256), both ways spliced through kTLS" bulk 242.0.3.2 1 1 0
check "TLS 1.2 AES-CBC (no kTLS cipher): 16 MiB each way intact, in userspace (counted)" bulk 242.0.3.3 0 0 1
case_halfclose() {
	local t=$(tx) r=$(rx) u=$(us)
	in_pod "$NS_A" $PEER halfclose 242.0.3.4 443 3000000 || return 1
	expect_ktls "$t" "$r" "$u" 1 0 0
}
check "half-close: client FIN → close_notify after 3 MB a slow server had not read; its reply arrives" case_halfclose
case_reset() { # vip
	local rc=$(stat forwarder.reset_client)
	in_pod "$NS_A" $PEER reset "$1" 443 || return 1
	sleep 0.5
	echo "ended.reset_client $rc→$(stat forwarder.reset_client)"
	[ "$(stat forwarder.reset_client)" -gt "$rc" ] || return 1
	in_pod "$NS_A" $PEER echo-exact "$1" 443 100000 # still served
}
check "TLS 1.3: a client reset mid-stream resets the upstream; the next connection is served" case_reset 242.0.3.1
check "TLS 1.2: a client reset mid-stream resets the upstream; the next connection is served" case_reset 242.0.3.2
# openssl s_server sends its TLS 1.3 NewSessionTickets after the handshake,
# behind the client's first data; the ticket is taken by SSL_read and resumes
case_ticket() {
	local t=$(tx) r=$(rx) u=$(us) res=$(stat tls.resumed)
	in_pod "$NS_A" $PEER echo-exact 242.0.3.1 443 200000 || return 1
	sleep 0.2
	in_pod "$NS_A" $PEER echo-exact 242.0.3.1 443 200000 || return 1
	echo "resumed $res→$(stat tls.resumed)"
	[ "$(stat tls.resumed)" -gt "$res" ] || return 1
	expect_ktls "$t" "$r" "$u" 2 0 0
}
check "TLS 1.3: the NewSessionTickets sent after the handshake (behind the first data) are read while TX is spliced; the next connection resumes" case_ticket
# A TLS 1.3 server's KeyUpdate after 1 MiB of 4 MiB echoed a MiB at a time
# (the client sends again only after it). Not requested:
# only the receiving key changes (userspace in OpenSSL 3.0): TX stays
# spliced and every byte arrives. Requested: we must send a KeyUpdate and
# encrypt under the next key, which Linux 6.1's kTLS cannot take (TLS_TX is
# set once) and OpenSSL 3.0 would send only at an SSL_write, which a spliced
# direction never makes: the connection is reset (both sides), counted
# tls.failures.ktls_key_update, none sent. With --ktls off it completes and
# the server counts our KeyUpdate (the control).
case_keyupdate() { # vip port requested(0|1)
	local t=$(tx) r=$(rx) u=$(us) k=$(stat tls.failures.ktls_key_update) rc=0
	local n=$(cat "$KU_LOG.$2" 2>/dev/null | wc -l)
	in_pod "$NS_A" $PEER lockstep "$1" 443 4 || rc=1
	# the server's line comes once it saw the end (a reset may be quicker)
	for _ in $(seq "$(ts 50)"); do [ "$(wc -l <"$KU_LOG.$2")" -gt "$n" ] && break; sleep 0.1; done
	local line=$(tail -1 "$KU_LOG.$2")
	expect_ktls "$t" "$r" "$u" 1 0 0 || return 1
	echo "server: $line; failures.ktls_key_update $k→$(stat tls.failures.ktls_key_update)"
	if [ "$3" = 1 ] && [ "$ULP" = yes ] && [ "$KTLS" = auto ]; then
		[ $rc -ne 0 ] && [ "$(stat tls.failures.ktls_key_update)" -eq $((k + 1)) ] &&
			[[ $line == *"key_update sent 1 received 0 "* ]] && [[ $line != *"end ok" ]]
		return
	fi
	[ $rc -eq 0 ] && [ "$(stat tls.failures.ktls_key_update)" -eq "$k" ] &&
		[[ $line == *"in 4194304 out 4194304 key_update sent 1 received $3 end ok" ]]
}
check "TLS 1.3 server KeyUpdate, not requested: TX stays spliced, 4 MiB each way intact" case_keyupdate 242.0.3.6 9036 0
check "TLS 1.3 server KeyUpdate, update_requested: kTLS TX cannot be rekeyed: reset, counted (--ktls off: intact, ours seen by the server)" \
	case_keyupdate 242.0.3.5 9035 1
check "SIGTERM: clean exit, no sanitizer report" case_clean_exit
finish
