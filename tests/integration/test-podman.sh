#!/bin/bash
# SPDX-License-Identifier: MIT
# A real container runtime: podman (CNI back end, runc) in a node netns runs
# a busybox container on a conflist that chains meshsplice-cni; from inside
# it a VIP is reached through meshsplice; disable/enable toggles it live;
# podman rm leaves nothing behind. Everything podman keeps (config, storage,
# run dir, CNI plugins, IPAM) is under the test's temp dir.
source "$(dirname "$0")/lib.sh"
require_root
NODE=ms-node-$ID
EXTRA_NETNS+=("$NODE")
mkdir -p "$CG" "$BPFFS" "$T/state" "$T/conf" "$T/cni-bin" "$T/cni-conf" "$T/rootfs/bin" "$T/ipam"
mount -t bpf bpf "$BPFFS"
ip netns add "$NODE" && ip -n "$NODE" link set lo up || exit 1
ln -s "$BUILD/userspace/cni/meshsplice-cni" "$T/cni-bin/meshsplice-cni"
for p in bridge host-local loopback portmap firewall tuning; do ln -s "/usr/lib/cni/$p" "$T/cni-bin/$p"; done
BR=msbr$((RANDOM % 900 + 100))
cat >"$T/cni-conf/mstest.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "mstest-$ID", "plugins": [
  {"type": "bridge", "bridge": "$BR", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.30.0/24"}]], "dataDir": "$T/ipam"}},
  {"type": "meshsplice-cni", "controlSocket": "$CTL", "stateDir": "$T/state", "mesh": "default"}
]}
JSON
cat >"$T/containers.conf" <<CONF
[network]
network_backend = "cni"
cni_plugin_dirs = ["$T/cni-bin"]
network_config_dir = "$T/cni-conf"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
CONF
cp /bin/busybox "$T/rootfs/bin/busybox"
for a in sh nc echo sleep cat; do ln -s busybox "$T/rootfs/bin/$a"; done
cat >"$T/conf/svc.yaml" <<YAML
type: MeshExternalService
name: echo
labels:
  meshsplice.io/datapath: proxy # the assertion below counts proxied connections
spec:
  match:
    port: 80
  endpoints:
    - address: 198.18.30.1
      port: 8080
status:
  vip:
    ip: 242.0.0.80
YAML
ip netns exec "$NODE" $PEER serve-echo 8080 >"$T/echo.out" 2>&1 &
BG_PIDS+=($!)
AGENT_NETNS=$NODE # the agent lives in the node too
start_agent || exit 1
# nsenter, not ip netns exec: that one remounts /sys and would hide the cgroups.
# --rootfs is a flag: every option goes before it. The machine cannot raise
# RLIMIT_NOFILE or RLIMIT_NPROC, so both are set explicitly.
pm() { nsenter --net="/run/netns/$NODE" env CONTAINERS_CONF="$T/containers.conf" \
	podman --storage-driver vfs --root "$T/storage" --runroot "$T/run" --tmpdir "$T/tmp" "$@"; }
# The containers, then the cgroups the runtime made under --cgroup-parent: on
# a hybrid host a directory in each v1 hierarchy too, which outlives them.
# The test's own cgroup ($CG, one of them) goes last, in lib.sh's cleanup.
podman_cleanup() {
	local d
	pm rm -f -a >/dev/null 2>&1
	for d in /sys/fs/cgroup/*/ms-test-"$ID"; do
		[ -d "$d" ] || continue
		find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
		[ "$d" -ef "$CG" ] || rmdir "$d" 2>/dev/null
	done
}
trap 'rc=$?; podman_cleanup; (exit $rc); cleanup' EXIT INT TERM
CNAME=web-$ID

case_run() {
	pm run -d --name "$CNAME" --network "mstest-$ID" --cgroup-parent "/ms-test-$ID" \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --rootfs "$T/rootfs" /bin/sleep 300 >/dev/null || return 1
	ms pods
	[ "$(ms -o json pods | python3 -c 'import json,sys; print(len([p for p in json.load(sys.stdin)["pods"] if p["state"] == "enabled"]))')" = 1 ]
}
check "podman run: the CNI chain enables the container's pod before it starts" case_run
POD=$(ms -o json pods | python3 -c 'import json,sys; print(json.load(sys.stdin)["pods"][0]["name"])' 2>/dev/null)

vip_from_container() { pm exec "$CNAME" /bin/sh -c 'echo hello-from-container | nc -w 3 242.0.0.80 80'; }
case_vip() {
	local before after out
	before=$(stat forwarder.started)
	out=$(vip_from_container) || return 1
	after=$(stat forwarder.started)
	echo "$out; forwarder started $before → $after"
	[ "$out" = hello-from-container ] && [ "$after" -gt "$before" ]
}
check "from inside the container the VIP is reached through meshsplice" case_vip

case_toggle() {
	ms disable "$POD" >/dev/null || return 1
	if [ "$(vip_from_container 2>/dev/null)" = hello-from-container ]; then echo "VIP answered while disabled"; return 1; fi
	ms enable "$POD" >/dev/null || return 1
	[ "$(vip_from_container)" = hello-from-container ] && echo "disabled: VIP down; enabled: VIP back, same container"
}
check "meshsplice disable then enable toggles the running container live" case_toggle

case_rm() {
	local ns
	ns=$(ms -o json pods | python3 -c 'import json,sys; print(json.load(sys.stdin)["pods"][0]["netns"])')
	pm rm -f "$CNAME" >/dev/null || return 1
	[ "$(ms -o json pods | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pods"]))')" = 0 ] || { ms pods; return 1; }
	[ ! -e "$ns" ] || { echo "netns $ns left"; return 1; }
	ip link show "$BR" >/dev/null 2>&1 && { echo "bridge in the root netns"; return 1; }
	[ -z "$(ls "$T/ipam/mstest-$ID" 2>/dev/null | grep -v -e lock -e last_reserved)" ] || { ls "$T/ipam/mstest-$ID"; return 1; }
	echo "pod forgotten, netns gone, address released, no bridge outside the node netns"
}
check "podman rm: the agent forgets the pod; nothing is left behind" case_rm
finish
