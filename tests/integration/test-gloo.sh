#!/bin/bash
# SPDX-License-Identifier: MIT
# Gloo Mesh's ExternalService end to end, in a mesh whose passthrough is off
# (Istio's REGISTRY_ONLY): an exact host resolves to its VIP through mesh DNS
# and reaches a local HTTP server standing in for it (an ExternalEndpoint);
# TLS origination from port 80 to 443 against openssl s_server; mutual TLS
# with the certificate files named by path. Run once per engine (MS_ENGINE).
# Wildcard hosts and addresses become Domain and IP/CIDR matches, enforced
# as MeshPassthrough's: a wildcard host opens its port only to a matching
# TLS SNI (never to raw TCP, the bypass Gloo's document warns of with
# Istio), an address only its own port.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
command -v dig >/dev/null || { echo "dig missing (bind9-dnsutils; scripts/setup.sh installs it)"; exit 1; }
mkdir -p "$T/pki"
make_certs "$T/pki" || exit 1
P=$T/pki

# the stand-ins, all on 198.18.3.2 in the outside netns
mkdir -p "$T/www" && echo "meshsplice gloo test page" >"$T/www/index.html"
bg_out www sh -c 'echo ready; exec python3 -u -m http.server --bind 198.18.3.2 --directory "$0" 8080' "$T/www" || exit 1
# plain TLS on 443 (good: DNS up.test and *.wild.test), and one that asks for a client certificate on 8443
bg_out tls443 sh -c 'echo ready; exec openssl s_server -accept 443 -www -quiet -cert "$0" -key "$1"' \
	"$P/good.pem" "$P/good.key" || exit 1
bg_out mtls8443 sh -c 'echo ready; exec openssl s_server -accept 8443 -www -quiet -Verify 1 -verify_return_error -CAfile "$2" -cert "$0" -key "$1"' \
	"$P/good.pem" "$P/good.key" "$P/ca1.pem" || exit 1
# the agent resolves the hosts without ExternalEndpoints through its /etc/hosts
printf '198.18.3.2 up.test\n' >"$T/hosts"

es_tls() { # name host port-yaml-extra
	cat <<YAML
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata:
  name: $1
  namespace: ext
spec:
  hosts: [$2]
  ports:
    - name: http
      number: 80
      protocol: HTTP
$3
YAML
}
{
	cat <<YAML
type: Mesh
name: default
networking:
  outbound:
    passthrough: false
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata:
  name: www
  namespace: ext
spec:
  hosts: [www.ext.test]
  ports:
    - name: http
      number: 80
      protocol: HTTP
      targetPort:
        name: web
  selector:
    app: www
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata:
  name: www-1
  namespace: ext
  labels:
    app: www
spec:
  address: 198.18.3.2
  ports:
    - name: web
      number: 8080
YAML
	# no ExternalEndpoint: the host itself (up.test, through DNS), port 443
	es_tls origin up.test "      targetPort:
        number: 443
      clientsideTls:
        mode: SIMPLE
        caCertificates: $P/ca1.pem"
	# the control: the same server, another CA to trust
	es_tls origin-wrongca wrongca.wild.test "      targetPort:
        name: https
      clientsideTls:
        mode: SIMPLE
        sni: up.test
        caCertificates: $P/ca2.pem
  selector:
    app: tls"
	es_tls mtls secure.wild.test "      targetPort:
        name: https
      clientsideTls:
        mode: MUTUAL
        caCertificates: $P/ca1.pem
        clientCertificate: $P/client.pem
        privateKey: $P/client.key
  selector:
    app: secure"
	es_tls mtls-nocert nocert.wild.test "      targetPort:
        name: https
      clientsideTls:
        mode: SIMPLE
        caCertificates: $P/ca1.pem
  selector:
    app: secure"
	cat <<YAML
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata:
  name: tls-1
  namespace: ext
  labels:
    app: tls
spec:
  address: 198.18.3.2
  ports:
    - name: https
      number: 443
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalEndpoint
metadata:
  name: secure-1
  namespace: ext
  labels:
    app: secure
spec:
  address: 198.18.3.2
  ports:
    - name: https
      number: 8443
YAML
	cat <<YAML
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata:
  name: img-wildcard
  namespace: ext
spec:
  hosts: ['*.img.test']
  ports:
    - name: https
      number: 443
      protocol: HTTPS
---
apiVersion: networking.gloo.solo.io/v2
kind: ExternalService
metadata:
  name: secure-range
  namespace: ext
spec:
  addresses: [198.18.3.2/32]
  ports:
    - name: tcp
      number: 8443
      protocol: TCP
YAML
} >"$T/conf/gloo.yaml"
"$CLI_BIN" validate --gloo-vip-cidr 241.240.0.0/16 "$T/conf" || exit 1

# VIPs from the test range: MeshService's and Gloo's halves of 241/8
start_agent --ms-cidr 241.0.0.0/16 --gloo-vip-cidr 241.240.0.0/16 || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name gloo/a --mesh default >/dev/null || exit 1

vip_of() { # service name → its VIP, as the agent has it
	ms -o json get | python3 -c 'import json,sys
print([s["vip"] for s in json.load(sys.stdin)["config"]["services"] if s["name"] == sys.argv[1]][0])' "$1"
}
dig_a() { in_pod "$NS_A" dig +short +time=2 +tries=1 @198.18.1.2 "$1" A; }
curl_vip() { # host vip [curl args]: http://host/ with the host pinned to vip
	local h=$1 v=$2
	shift 2
	in_pod "$NS_A" curl -s --max-time 5 --resolve "$h:80:$v" "$@" "http://$h/"
}

case_dns() {
	local vip out
	vip=$(vip_of www) || return 1
	out=$(dig_a www.ext.test)
	echo "www.ext.test: mesh DNS $out, agent $vip"
	[[ $vip == 241.240.* ]] && [ "$out" = "$vip" ]
}
check "exact host: mesh DNS answers www.ext.test with its VIP from --gloo-vip-cidr" case_dns
case_http() {
	local vip page
	vip=$(dig_a www.ext.test) && [ -n "$vip" ] || return 1
	page=$(curl_vip www.ext.test "$vip") || return 1
	echo "$page"
	[ "$page" = "meshsplice gloo test page" ] && grep -q '"GET / HTTP/1.1" 200' "$T/www.err"
}
check "exact host: http://www.ext.test/ through the VIP reaches the ExternalEndpoint (198.18.3.2:8080, targetPort by name)" case_http
# plaintext with an IP endpoint: the kernel path (eBPF: connect() rewritten;
# iptables: DNAT in the pod's chain), the forwarder for the TLS one
case_path() {
	local before mid after
	before=$(stat forwarder.started)
	curl_vip www.ext.test "$(vip_of www)" >/dev/null || return 1
	mid=$(stat forwarder.started)
	curl_vip up.test "$(vip_of origin)" >/dev/null || return 1
	after=$(stat forwarder.started)
	echo "forwarder started $before → $mid (plain, IP endpoint) → $after (TLS)"
	[ "$after" -eq $((mid + 1)) ] || return 1
	[ "$mid" -eq "$before" ]
}
check "path: plaintext with an IP ExternalEndpoint takes the kernel path, TLS origination the forwarder" case_path
# A wildcard host: TLS to any address on 443 goes only with a matching SNI,
# the ClientHello forwarded untouched (the server's certificate comes back);
# raw TCP on the same port is refused with nothing at the server.
sclient() { # sni: what openssl s_client in pod A got from 198.18.3.2:443
	in_pod "$NS_A" timeout 8 openssl s_client -connect 198.18.3.2:443 -servername "$1" </dev/null 2>&1
}
case_wildcard_sni() {
	local out
	out=$(sclient a.img.test)
	echo "$out" | grep -q "BEGIN CERTIFICATE" || { echo "a.img.test: $(echo "$out" | tail -3)"; return 1; }
	out=$(sclient deep.a.img.test)
	echo "$out" | grep -q "BEGIN CERTIFICATE" || return 1
	echo "SNI a.img.test and deep.a.img.test: the server's certificate came back"
}
check "wildcard host *.img.test: TLS with a matching SNI reaches the server on 443" case_wildcard_sni
case_wildcard_refused() {
	local out
	out=$(sclient evil.test)
	echo "$out" | grep -q "BEGIN CERTIFICATE" && { echo "evil.test got through"; return 1; }
	out=$(sclient img.test)
	echo "$out" | grep -q "BEGIN CERTIFICATE" && { echo "img.test (the bare suffix) got through"; return 1; }
	# raw TCP with bytes that are no ClientHello, and a client that sends nothing
	in_pod "$NS_A" python3 - <<'PY' || return 1
import socket, time
for payload in (b"GET / HTTP/1.0\r\n\r\n", b""):
    s = socket.create_connection(("198.18.3.2", 443), timeout=5)
    if payload:
        s.sendall(payload)
    try:
        got = s.recv(100)
    except (ConnectionResetError, socket.timeout):
        got = b""
    assert got == b"", "raw TCP got %r" % got
    print("raw TCP %s: reset, nothing back" % ("with bytes" if payload else "silent"))
PY
	grep -q "no MeshPassthrough match allows it\\|no name in the first bytes" "$T/agent.log"
}
check "wildcard host: another SNI, the bare suffix and raw TCP on 443 are refused (no raw-TCP bypass)" case_wildcard_refused
# Addresses: the range is open on its own port only.
case_addresses() {
	in_pod "$NS_A" python3 -c 'import socket
s = socket.create_connection(("198.18.3.2", 8443), timeout=5); print("198.18.3.2:8443 connected")' || return 1
	# the same address on another port (8080: the www stand-in) stays closed
	in_pod "$NS_A" $PEER refused 198.18.3.2 8080
}
check "addresses 198.18.3.2/32 on 8443: that port connects, the address's other ports stay refused" case_addresses
case_direct_refused() {
	local before
	before=$(grep -c GET "$T/www.err")
	in_pod "$NS_A" $PEER refused 198.18.3.2 8080 || return 1
	# nothing arrived at the server
	[ "$(grep -c GET "$T/www.err")" -eq "$before" ]
}
check "control: the same server dialled directly is refused (passthrough off)" case_direct_refused
case_origin() {
	local vip page
	vip=$(dig_a up.test) && [ -n "$vip" ] || return 1
	echo "up.test → $vip"
	page=$(curl_vip up.test "$vip") || return 1
	echo "$page" | head -3
	# s_server -www answers with its status page: it spoke TLS, and the name verified
	echo "$page" | grep -q "s_server"
}
check "clientsideTls SIMPLE: plain HTTP on 80 → TLS to up.test:443 (no ExternalEndpoint: the host by DNS), CA from a file" case_origin
# no_page HOST SERVICE: s_server's status page does not come back through SERVICE
no_page() {
	local page
	page=$(curl_vip "$1" "$(vip_of "$2")")
	echo "page: ${page:0:60}"
	! echo "$page" | grep -q "s_server"
}
case_origin_wrongca() { no_page wrongca.wild.test origin-wrongca; }
check "control: the same server with caCertificates of another CA gets no page" case_origin_wrongca
case_mtls() {
	local page
	page=$(curl_vip secure.wild.test "$(vip_of mtls)") || return 1
	echo "$page" | grep -m1 -i "client certificate\|s_server"
	echo "$page" | grep -q "s_server"
}
check "clientsideTls MUTUAL: the client certificate and key read from their paths, accepted by s_server -Verify" case_mtls
case_mtls_nocert() { no_page nocert.wild.test mtls-nocert; }
check "control: the same server without a client certificate gets no page" case_mtls_nocert
case_render() {
	ms -o json get | python3 -c 'import json,sys
s = {x["name"]: x for x in json.load(sys.stdin)["config"]["services"]}
w, m = s["www"], s["mtls"]
print(w["kind"], w["namespace"], w["hostnames"], w["vip"])
assert w["kind"] == "GlooExternalService" and w["hostnames"] == ["www.ext.test"]
assert m["tls"]["clientCert"]["source"].startswith("file:") and m["tls"]["serverName"] == "secure.wild.test"'
}
check "the agent shows them as GlooExternalService with namespace, host and VIP; TLS files by path" case_render

# The certificate files are watched: the CA file of up.test replaced by
# another CA's, the agent reloads and the server no longer verifies; put
# back, it does again.
reloads_for_files() { grep -c "config reloaded (certificate file $P/ca1.pem changed)" "$T/agent.log"; }
case_cert_file_reload() {
	local n0 page
	n0=$(reloads_for_files)
	cp "$P/ca1.pem" "$T/ca1.keep" && cp "$P/ca2.pem" "$P/ca1.pem"
	for _ in $(seq 50); do [ "$(reloads_for_files)" -gt "$n0" ] && break; sleep 0.1; done
	[ "$(reloads_for_files)" -gt "$n0" ] || { cp "$T/ca1.keep" "$P/ca1.pem"; echo "no reload within 5 s"; return 1; }
	page=$(curl_vip up.test "$(vip_of origin)")
	cp "$T/ca1.keep" "$P/ca1.pem"
	echo "$page" | grep -q "s_server" && { echo "still verified with the other CA"; return 1; }
	for _ in $(seq 50); do [ "$(reloads_for_files)" -gt $((n0 + 1)) ] && break; sleep 0.1; done
	page=$(curl_vip up.test "$(vip_of origin)") || return 1
	echo "$page" | grep -q "s_server" || { echo "not verified again: ${page:0:80}"; return 1; }
	echo "CA file swapped: reloaded, refused; put back: reloaded, verified"
}
check "clientsideTls files by path are watched: a CA file replaced is reloaded and used (refused), put back it verifies again" case_cert_file_reload
check "SIGTERM: clean exit, no sanitizer report" case_clean_exit
finish
