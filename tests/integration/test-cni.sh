#!/bin/bash
# SPDX-License-Identifier: MIT
# meshsplice-cni driven as a runtime drives it: a "node" netns holds the CNI
# bridge; Debian's bridge + host-local plugins set up each pod, and
# meshsplice-cni, chained after them, enables the pod in the agent.
source "$(dirname "$0")/lib.sh"
require_root
NODE=ms-node-$ID
PODS=()
CNI_BIN_DIR=$T/cni-bin
mkdir -p "$CNI_BIN_DIR" "$T/ipam" "$T/state" "$T/conf" "$CG" "$BPFFS"
mount -t bpf bpf "$BPFFS"
ln -s "$BUILD/userspace/cni/meshsplice-cni" "$CNI_BIN_DIR/meshsplice-cni"
CNIPATH=/usr/lib/cni:$CNI_BIN_DIR
EXTRA_NETNS+=("$NODE")
ip netns add "$NODE" && ip -n "$NODE" link set lo up || exit 1

conflist() { # file [extra meshsplice-cni fields]
	cat >"$1" <<JSON
{"cniVersion": "1.0.0", "name": "mstest", "plugins": [
  {"type": "bridge", "bridge": "msbr$((RANDOM % 1000))", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.20.0/24"}]], "dataDir": "$T/ipam"}},
  {"type": "meshsplice-cni", "controlSocket": "$CTL", "stateDir": "$T/state", "mesh": "default",
   "excludeNamespaces": ["kube-system"]${2:+, $2}}
]}
JSON
}
conflist "$T/net.conflist"
# one bridge for every pod: fix its name
BR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"][0]["bridge"])' "$T/net.conflist")
sed -i "s/\"msbr[0-9]*\"/\"$BR\"/" "$T/net.conflist"
conflist "$T/failopen.conflist" '"failOpen": true'
sed -i "s/\"msbr[0-9]*\"/\"$BR\"/" "$T/failopen.conflist"

cat >"$T/conf/svc.yaml" <<YAML
type: Mesh
name: closed
networking:
  outbound:
    passthrough: false
---
type: MeshExternalService
name: echo
spec:
  match:
    port: 80
  endpoints:
    - address: 198.18.20.1
      port: 8080
status:
  vip:
    ip: 242.0.0.60
YAML

new_pod() { # name → creates netns ms-p-NAME-ID
	local ns=ms-p$1-$ID
	ip netns add "$ns" || return 1
	PODS+=("$ns")
	EXTRA_NETNS+=("$ns")
	echo "$ns"
}
cni() { # CMD POD CID ARGS [conflist]
	local outdir=$T/cni-$3
	mkdir -p "$outdir"
	# as runtimes do, IgnoreUnknown=1 lets plugins skip keys meant for others
	ip netns exec "$NODE" python3 "$SRC/tests/integration/cni-exec.py" "$1" "${5:-$T/net.conflist}" "$3" \
		"/var/run/netns/$2" eth0 "IgnoreUnknown=1${4:+;$4}" "$CNIPATH" "$outdir"
}
plugin() { # raw call of meshsplice-cni: stdin from $1, env from the rest
	local in=$1
	shift
	env -i PATH="$PATH" "$@" "$BUILD/userspace/cni/meshsplice-cni" <"$in"
}
pods_json() { ms -o json pods; }
pod_state() { pods_json | python3 -c 'import json,sys
for p in json.load(sys.stdin)["pods"]:
    if p["name"] == sys.argv[1]: print(p["state"], p["mesh"])' "$1"; }

ip netns exec "$NODE" $PEER serve-echo 8080 >"$T/echo.out" 2>&1 &
BG_PIDS+=($!)
AGENT_NETNS=$NODE # the agent lives in the node too
start_agent || exit 1

case_version() {
	local out
	out=$(CNI_COMMAND=VERSION "$BUILD/userspace/cni/meshsplice-cni" </dev/null) || return 1
	echo "$out"
	echo "$out" | python3 -c 'import json,sys; v = json.load(sys.stdin)["supportedVersions"]; assert {"0.3.1","0.4.0","1.0.0"} <= set(v)'
}
check "VERSION answers 1.0.0, 0.4.0 and 0.3.1" case_version

new_pod 1 >/dev/null && P1=${PODS[-1]}
case_add() {
	cni ADD "$P1" c1 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >"$T/add.out" || { cat "$T/add.out"; return 1; }
	# prevResult passes through unchanged (compared as JSON)
	python3 -c 'import json,sys; a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2])); assert a == b, (a, b)' \
		"$T/cni-c1/0-bridge.json" "$T/cni-c1/1-meshsplice-cni.json" || return 1
	[ "$(pod_state shop/web-1)" = "enabled default" ] || { pods_json; return 1; }
	# the first connection after ADD is already proxied
	in_pod "$P1" $PEER echo 242.0.0.60 80 1000
}
check "ADD through bridge + host-local + meshsplice-cni: prevResult unchanged, pod enabled, VIP reachable" case_add

case_check() {
	cni CHECK "$P1" c1 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >/dev/null || return 1
	ms disable shop/web-1 >/dev/null || return 1
	if cni CHECK "$P1" c1 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >"$T/check.out" 2>&1; then return 1; fi
	grep -o '"msg": "drift[^"]*"' "$T/cni-c1/1-meshsplice-cni.json" || return 1
	ms enable shop/web-1 >/dev/null && cni CHECK "$P1" c1 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >/dev/null
}
check "CHECK passes, reports drift after a disable, passes again after enable" case_check

case_toggle() {
	ms disable shop/web-1 >/dev/null || return 1
	if in_pod "$P1" $PEER echo 242.0.0.60 80 100 2>/dev/null; then echo "VIP answered while disabled"; return 1; fi
	ms enable shop/web-1 >/dev/null || return 1
	in_pod "$P1" $PEER echo 242.0.0.60 80 100
}
check "meshsplice disable/enable NS/POD toggles a CNI pod live" case_toggle

new_pod 2 >/dev/null && P2=${PODS[-1]}
case_excluded() {
	cni ADD "$P2" c2 "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=dns" >/dev/null || return 1
	[ -z "$(pod_state kube-system/dns)" ] || return 1
	cni DEL "$P2" c2 "" >/dev/null
	cni ADD "$P2" c2b "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=optout;MESHSPLICE_OPTOUT=true" >/dev/null || return 1
	[ -z "$(pod_state shop/optout)" ] || return 1
	cni DEL "$P2" c2b "" >/dev/null
	echo "excluded namespace and opt-out both left unproxied"
}
check "excluded namespace and per-pod opt-out: prevResult passed, pod not enabled" case_excluded

new_pod 3 >/dev/null && P3=${PODS[-1]}
case_mesh_override() {
	cni ADD "$P3" c3 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=locked;MESHSPLICE_MESH=closed" >/dev/null || return 1
	[ "$(pod_state shop/locked)" = "enabled closed" ] || { pods_json; return 1; }
	# passthrough off in that mesh: a non-mesh destination is refused
	in_pod "$P3" $PEER refused 198.18.20.1 8080
}
check "mesh overridden per pod through CNI_ARGS" case_mesh_override

case_del() {
	cni DEL "$P3" c3 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=locked" >/dev/null || return 1
	[ -z "$(pod_state shop/locked)" ] || return 1
	cni DEL "$P3" c3 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=locked" >/dev/null || return 1
	ip netns del "$P3"
	cni DEL "$P3" c3 "" >/dev/null || return 1
	echo "DEL twice and DEL of a missing netns: exit 0"
}
check "DEL forgets the pod; DEL is idempotent and tolerates a missing netns" case_del

echo '{"cniVersion": "1.0.0", "name": "x", "type": "meshsplice-cni", "controlSocket": "'"$CTL"'", "prevResult": {"cniVersion": "1.0.0"}}' >"$T/min.json"
errcode() { # expected-code env...
	local want=$1
	shift
	local out
	out=$(plugin "$T/min.json" "$@") && { echo "exit 0: $out"; return 1; }
	echo "$out" | python3 -c 'import json,sys; e = json.load(sys.stdin); print(e["code"], e["msg"]); assert e["code"] == int(sys.argv[1])' "$want"
}
E="CNI_COMMAND=ADD CNI_CONTAINERID=x1 CNI_NETNS=/var/run/netns/$P1 CNI_IFNAME=eth0 CNI_PATH=$CNIPATH"
case_errors() {
	errcode 4 CNI_CONTAINERID=x1 CNI_NETNS=/x CNI_IFNAME=eth0 CNI_PATH=/x || return 1
	errcode 4 CNI_COMMAND=ADD CNI_NETNS=/x CNI_IFNAME=eth0 CNI_PATH=/x || return 1
	errcode 4 CNI_COMMAND=ADD CNI_CONTAINERID=x1 CNI_IFNAME=eth0 CNI_PATH=/x || return 1
	errcode 4 CNI_COMMAND=ADD CNI_CONTAINERID=x1 CNI_NETNS=/x CNI_PATH=/x || return 1
	errcode 4 CNI_COMMAND=ADD CNI_CONTAINERID=x1 CNI_NETNS=/x CNI_IFNAME=eth0 || return 1
	errcode 4 CNI_COMMAND=ADD "CNI_CONTAINERID=../../etc" CNI_NETNS=/x CNI_IFNAME=eth0 CNI_PATH=/x || return 1
	echo 'not json' >"$T/bad.json"
	local out
	out=$(env -i $E "$BUILD/userspace/cni/meshsplice-cni" <"$T/bad.json")
	echo "$out" | grep -q '"code": 6' || { echo "$out"; return 1; }
	echo '{"cniVersion": "9.9.9", "name": "x", "type": "meshsplice-cni"}' >"$T/v.json"
	out=$(env -i $E "$BUILD/userspace/cni/meshsplice-cni" <"$T/v.json")
	echo "$out" | grep -q '"code": 1' || { echo "$out"; return 1; }
	echo '{"cniVersion": "1.0.0", "name": "x", "type": "meshsplice-cni"}' >"$T/noprev.json"
	out=$(env -i $E "$BUILD/userspace/cni/meshsplice-cni" <"$T/noprev.json")
	echo "$out" | grep -q '"code": 7' || { echo "$out"; return 1; }
	echo "$out" | grep -q 'chained plugin'
}
check "error JSON with the spec's codes: each missing CNI_* variable, bad JSON, bad version, no prevResult" case_errors

new_pod 4 >/dev/null && P4=${PODS[-1]}
new_pod 5 >/dev/null && P5=${PODS[-1]}
case_agent_down() {
	stop_agent TERM
	# fail-closed (default): ADD fails with "try again later"
	if cni ADD "$P4" c4 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=closed-fail" >/dev/null 2>&1; then return 1; fi
	grep -q '"code": 11' "$T/cni-c4/1-meshsplice-cni.json" || { cat "$T/cni-c4/1-meshsplice-cni.json"; return 1; }
	cni DEL "$P4" c4 "" >/dev/null || return 1 # DEL with the agent down: fine
	# fail-open: ADD succeeds, the agent enables the pod when it comes up
	cni ADD "$P5" c5 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=late" "$T/failopen.conflist" >/dev/null || return 1
	start_agent || return 1
	[ "$(pod_state shop/late)" = "enabled default" ] || { pods_json; return 1; }
	in_pod "$P5" $PEER echo 242.0.0.60 80 100
}
check "agent down: fail-closed ADD says try again; fail-open ADD is enabled when the agent comes up" case_agent_down

case_restart_gone() {
	stop_agent TERM
	ip netns del "$P5"
	start_agent || return 1
	[ -z "$(pod_state shop/late)" ] || { pods_json; return 1; }
	[ "$(pod_state shop/web-1)" = "enabled default" ] || return 1
	in_pod "$P1" $PEER echo 242.0.0.60 80 100
}
check "agent restart: existing pods re-enabled, a pod deleted meanwhile forgotten" case_restart_gone

cni DEL "$P1" c1 "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1" >/dev/null
for ns in "${PODS[@]}"; do ip netns del "$ns" 2>/dev/null; done
finish
