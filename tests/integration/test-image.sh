#!/bin/bash
# SPDX-License-Identifier: MIT
# The container image, built and run as the DaemonSet runs it.
# - deploy/build-image.sh builds it with podman from a Debian 12 root made by
#   debootstrap; the root is cached in the build dir ($MS_BUILD_DIR/image-cache),
#   so a second run in the same build dir skips debootstrap.
# - install-cni chains the plugin into a CNI conf dir of the test's.
# - The agent runs privileged in the node's network and PID namespaces with
#   the manifest's mounts: the host's /sys/fs/cgroup, bpffs, /var/run/netns
#   and the hostPath dirs. Here the node is a netns of the test's and every
#   hostPath is in its temp dir: bpffs, control socket, state and config dir,
#   CNI dirs. MESHSPLICE_HOST_CGROUP names the test's cgroup, shaped as the
#   host's (pure v2, or hybrid with it as "unified"), so programs attach there
#   and nowhere else.
# - A pod (netns + the test cgroup) enabled with the image's CLI reaches a
#   VIP's endpoint on the kernel path and through the forwarder.
# - Stopping the agent leaves the pod enforced (pins kept) and the plugin
#   chained, as an upgrade needs; MESHSPLICE_CNI_UNINSTALL=true unchains it;
#   the image's meshspliced --uninstall detaches everything.
# All podman state is in the temp dir; podman's blob-info cache, which it
# keeps in /var/lib/containers whatever --root says, goes to an overlay of
# /var/lib in a mount namespace of the test's own.
# SKIP (77) without debootstrap or podman, or without the Debian archive when
# no root is cached.
set -uo pipefail
if [ -z "${MS_IMAGE_MNTNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "integration tests need root"; exit 77; }
	for t in debootstrap podman bpftool curl; do
		command -v "$t" >/dev/null || { echo "SKIP: $t missing (scripts/setup.sh installs it)"; exit 77; }
	done
	# MS_IMAGE_MIRROR: another Debian archive (default: build-image.sh's, this machine's apt's)
	MIRROR=${MS_IMAGE_MIRROR:-$("$(dirname "$0")/../../deploy/build-image.sh" --print-mirror)}
	CACHE=${MS_BUILD_DIR:-$(dirname "$0")/../../build}/image-cache
	if [ ! -f "$CACHE/rootfs.tar" ] && ! curl -sf --max-time 15 -o /dev/null "$MIRROR/dists/bookworm/Release"; then
		echo "SKIP: the Debian archive $MIRROR does not answer and no root is cached in $CACHE"
		exit 77
	fi
	MS_IMAGE_MNTNS=1 MS_IMAGE_MIRROR=$MIRROR exec unshare -m --propagation slave bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
MIRROR=$MS_IMAGE_MIRROR
CACHE=$BUILD/image-cache
for b in userspace/agent/meshspliced userspace/cli/meshsplice userspace/cni/meshsplice-cni; do
	[ -x "$BUILD/$b" ] || { echo "$BUILD/$b missing: build first"; exit 1; }
done

NODE=ms-node-$ID
POD=ms-pod-$ID
EXTRA_NETNS+=("$NODE" "$POD")
NODE_IP=198.18.40.1
IMG=localhost/meshsplice-test:$ID
C=ms-agent-$ID
PMCG=ms-test-$ID-pm # the containers' cgroup parent (every hierarchy: v1 ones too on a hybrid host)
CTL=$T/run/agent.sock # /run/meshsplice/agent.sock in the container
mkdir -p "$T/pm/tmp" "$T/varlib/up" "$T/varlib/work" "$T/run" "$T/state" "$T/conf" "$T/cni-bin" "$T/cni-conf" \
	"$CG" "$BPFFS" "$T/hostcg"
cat >"$T/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
CONF
export CONTAINERS_CONF=$T/containers.conf TMPDIR=$T/pm/tmp
PM_STORE=(--root "$T/pm/root" --runroot "$T/pm/run" --tmpdir "$T/pm/tmp")
# podman in the node's netns (nsenter: ip netns exec would remount /sys).
# The machine cannot raise RLIMIT_NPROC, so every container's is explicit.
pm() {
	local in_ns=()
	[ -e "/run/netns/$NODE" ] && in_ns=(nsenter --net="/run/netns/$NODE")
	"${in_ns[@]}" podman "${PM_STORE[@]}" "$@"
}
ULIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=1024:1024)

image_cleanup() {
	set +e
	if [ -d "$T/pm/root" ]; then
		pm logs "$C" >>"$T/agent.log" 2>&1
		pm rm -f -a -t 5 >/dev/null 2>&1
		pm rmi -a -f >/dev/null 2>&1
	fi
	# podman's cgroups: the parent in every hierarchy, its children first
	local d
	for d in /sys/fs/cgroup/*/"$PMCG" /sys/fs/cgroup/"$PMCG"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	# what podman left mounted under the temp dir (lib.sh unmounts the bpffs)
	awk -v t="$T/pm/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
	umount /var/lib 2>/dev/null
}
trap 'rc=$?; image_cleanup; (exit $rc); cleanup' EXIT INT TERM
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$T/varlib/up,workdir=$T/varlib/work" /var/lib || exit 1
mount -t bpf bpf "$BPFFS"

ip netns add "$NODE" && ip netns add "$POD" || exit 1
ip link add "n-$ID" netns "$NODE" type veth peer name "p-$ID" netns "$POD" || exit 1
ip -n "$NODE" addr add "$NODE_IP/24" dev "n-$ID"
ip -n "$POD" addr add 198.18.40.2/24 dev "p-$ID"
for ns in "$NODE" "$POD"; do
	ip -n "$ns" link set lo up
done
ip -n "$NODE" link set "n-$ID" up
ip -n "$POD" link set "p-$ID" up
ip netns exec "$NODE" $PEER serve-echo 8080 >"$T/echo.out" 2>&1 &
BG_PIDS+=($!)

# The test's cgroup where the entrypoint looks for the host's: on a hybrid host
# as its "unified" below a plain dir, on a pure v2 host as itself.
if [ "$(command stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
	CG_MOUNTS=(-v "$CG:/host/test-cgroup")
	CG_SHAPE=pure
else
	mkdir -p "$T/hostcg/unified"
	CG_MOUNTS=(-v "$T/hostcg:/host/test-cgroup" -v "$CG:/host/test-cgroup/unified")
	CG_SHAPE=hybrid
fi
# the DaemonSet's agent container, hostPaths in the temp dir
AGENT_RUN=(--privileged --network host --pid host --cgroup-parent "/$PMCG" "${ULIMITS[@]}"
	-v "$BPFFS:/sys/fs/bpf" -v /sys/fs/cgroup:/host/sys/fs/cgroup:rslave "${CG_MOUNTS[@]}"
	-v /run/netns:/var/run/netns:rslave -v "$T/run:/run/meshsplice" -v "$T/state:/var/lib/meshsplice"
	-v "$T/conf:/etc/meshsplice" -v "$T/cni-bin:/host/opt/cni/bin" -v "$T/cni-conf:/host/etc/cni/net.d"
	-e MESHSPLICE_HOST_CGROUP=/host/test-cgroup)
AGENT_ARGS=(--config-dir /etc/meshsplice --log-format json --metrics "$NODE_IP:9102" --metrics-allow-remote
	--health-interval 0 ${MS_ENGINE:+--engine "$MS_ENGINE"})

{ mes_yaml echo-kernel 242.0.0.80 "$NODE_IP" 8080; echo ---; mes_yaml echo-proxy 242.0.0.81 "$NODE_IP" 8080 proxy; } >"$T/conf/svc.yaml"

case_build() {
	local t0 from="made by debootstrap" size
	t0=$(date +%s)
	"$SRC/deploy/build-image.sh" --build-dir "$BUILD" --mirror "$MIRROR" --cache "$CACHE" --storage "$T/pm" --keep "$T/ctx" --tag "$IMG" \
		-- --cgroup-parent "/$PMCG" "${ULIMITS[@]}" >"$T/build.log" 2>&1 || { tail -30 "$T/build.log"; return 1; }
	size=$(pm image inspect --format '{{.Size}}' "$IMG") || return 1
	grep -q "Debian root from $CACHE" "$T/build.log" && from="cached in $CACHE"
	echo "built $IMG in $(($(date +%s) - t0)) s, the Debian root $from ($MIRROR), $((size / 1000000)) MB"
}
check "build-image.sh builds the image (podman, Debian 12 root, storage in the temp dir)" case_build

case_binaries() {
	local out
	out=$(pm run --rm "${ULIMITS[@]}" --network none --entrypoint /bin/sh "$IMG" -c \
		'ldd /usr/local/sbin/meshspliced /usr/local/bin/meshsplice /opt/meshsplice/build/userspace/cni/meshsplice-cni | grep "not found"
		 /usr/local/sbin/meshspliced --version && /usr/local/bin/meshsplice version >/dev/null && echo cli-ok') || { echo "$out"; return 1; }
	echo "$out"
	! grep -q "not found" <<<"$out" && grep -q '^meshspliced ' <<<"$out" && grep -q cli-ok <<<"$out"
}
check "the image's binaries find their libraries and run" case_binaries

chained() { python3 -c 'import json,sys; print(sum(p.get("type") == "meshsplice-cni" for p in json.load(open(sys.argv[1]))["plugins"]))' "$1"; }
case_install_cni() {
	local f=$T/cni-conf/10-bridge.conflist out
	printf '{"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [{"type": "bridge"}]}\n' >"$f"
	[ "$(chained "$f")" = 0 ] || return 1
	# the DaemonSet's initContainer: its command and mounts
	pm run --rm --privileged --network host --cgroup-parent "/$PMCG" "${ULIMITS[@]}" \
		-v "$T/cni-bin:/host/opt/cni/bin" -v "$T/cni-conf:/host/etc/cni/net.d" \
		--entrypoint /opt/meshsplice/scripts/install.sh "$IMG" --cni-only --build-dir /opt/meshsplice/build \
		--cni-bin-dir /host/opt/cni/bin --cni-conf-dir /host/etc/cni/net.d || return 1
	[ "$(chained "$f")" = 1 ] && [ -x "$T/cni-bin/meshsplice-cni" ] || { cat "$f"; ls -l "$T/cni-bin"; return 1; }
	# a restart of the init container: still one entry
	out=$(pm run --rm --privileged --network host --cgroup-parent "/$PMCG" "${ULIMITS[@]}" \
		-v "$T/cni-bin:/host/opt/cni/bin" -v "$T/cni-conf:/host/etc/cni/net.d" \
		--entrypoint /opt/meshsplice/scripts/install.sh "$IMG" --cni-only --build-dir /opt/meshsplice/build \
		--cni-bin-dir /host/opt/cni/bin --cni-conf-dir /host/etc/cni/net.d) || return 1
	[ "$(chained "$f")" = 1 ] || return 1
	echo "10-bridge.conflist chains meshsplice-cni once (before: 0), again after a second run: $(grep -o 'already chains' <<<"$out")"
}
check "install-cni chains the plugin into the CNI conf dir" case_install_cni

start_container() { # [podman run options]: the agent container, up once its control socket answers
	rm -f "$CTL"
	pm run -d --name "$C" "${AGENT_RUN[@]}" "$@" "$IMG" "${AGENT_ARGS[@]}" >/dev/null || return 1
	for _ in $(seq 200); do
		[ -S "$CTL" ] && ms status >/dev/null 2>&1 && return 0
		[ "$(pm inspect --format '{{.State.Running}}' "$C" 2>/dev/null)" = true ] || break
		sleep 0.05
	done
	echo "the agent did not start:"
	pm logs "$C" 2>&1 | tail -20
	return 1
}
attached() { bpftool cgroup show "$CG" 2>/dev/null | awk 'NR > 1 && NF' | wc -l; }
# the iptables engine's hold on the pod: its chain in the pod's netns
chained_pod() { ip netns exec "$POD" iptables-save -t nat 2>/dev/null | grep -c '^:MESHSPLICE_OUTPUT'; }

case_agent() {
	[ "$(attached)" = 0 ] || { echo "programs on the test cgroup before the agent"; return 1; }
	start_container || return 1
	local cg engine
	cg=$(ms -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["cgroup"])')
	engine=$(ms -o json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["engine"])')
	case $CG_SHAPE in
	pure) [ "$cg" = /host/test-cgroup ] || { echo "cgroup $cg"; return 1; } ;;
	hybrid) [ "$cg" = /host/test-cgroup/unified ] || { echo "cgroup $cg"; return 1; } ;;
	esac
	if [ "$engine" = bpf ]; then
		[ "$(attached)" -gt 0 ] && [ -n "$(ls "$BPFFS/meshsplice")" ] || { echo "nothing attached or pinned"; return 1; }
		echo "agent up in $C: engine bpf, cgroup $cg ($CG_SHAPE host), $(attached) programs on the test cgroup, pins in the test bpffs"
	else
		echo "agent up in $C: engine $engine, cgroup $cg ($CG_SHAPE host), $(attached) programs on the test cgroup"
	fi
}
check "the agent starts in the container as the DaemonSet runs it" case_agent

http() { ip netns exec "$NODE" curl -s --max-time 3 -o "$T/http.body" -w '%{http_code}' "http://$NODE_IP:9102$1"; }
case_probes() {
	local h r n
	h=$(http /healthz) && [ "$h" = 200 ] && grep -qx ok "$T/http.body" || { echo "/healthz $h"; return 1; }
	r=$(http /readyz) && [ "$r" = 200 ] && grep -qx ready "$T/http.body" || { echo "/readyz $r"; return 1; }
	n=$(http /nothing-here)
	[ "$n" = 404 ] || { echo "/nothing-here $n"; return 1; }
	http /metrics >/dev/null && grep -q '^meshsplice_' "$T/http.body" || { echo "no metrics"; return 1; }
	echo "on $NODE_IP:9102: /healthz $h, /readyz $r, /metrics served, control /nothing-here $n"
}
check "liveness and readiness probes answer on the node IP" case_probes

case_not_enabled() {
	in_pod "$POD" $PEER refused 242.0.0.80 80 || return 1
}
check "control: a pod not enabled reaches nothing at the VIP" case_not_enabled

case_enable() {
	pm exec "$C" meshsplice enable --netns "/var/run/netns/$POD" --name test/pod || return 1
	[ "$(ms -o json pods | python3 -c 'import json,sys; print([p["state"] for p in json.load(sys.stdin)["pods"]])')" = "['enabled']" ] ||
		{ ms pods; return 1; }
	echo "enabled with the image's CLI"
}
check "the image's CLI enables the pod" case_enable

case_kernel_path() {
	local before after out
	before=$(stat forwarder.started)
	out=$(in_pod "$POD" $PEER echo 242.0.0.80 80) || { echo "$out"; return 1; }
	after=$(stat forwarder.started)
	echo "$out; forwarder started $before → $after"
	[ "$after" = "$before" ]
}
check "a plaintext VIP reaches its endpoint on the kernel path" case_kernel_path

case_proxy_path() {
	local before after out
	before=$(stat forwarder.started)
	out=$(in_pod "$POD" $PEER echo 242.0.0.81 80) || { echo "$out"; return 1; }
	after=$(stat forwarder.started)
	echo "$out; forwarder started $before → $after"
	[ "$after" -gt "$before" ]
}
check "a VIP reaches its endpoint through the forwarder in the container" case_proxy_path

case_stop() {
	local rc n
	pm stop -t 40 "$C" >/dev/null || return 1
	rc=$(pm inspect --format '{{.State.ExitCode}}' "$C")
	pm logs "$C" >>"$T/agent.log" 2>&1
	pm rm "$C" >/dev/null || return 1
	[ "$rc" = 0 ] || { echo "exit code $rc"; return 1; }
	[ "$(chained "$T/cni-conf/10-bridge.conflist")" = 1 ] || { echo "unchained on a plain stop"; return 1; }
	if [ "${MS_ENGINE:-bpf}" = bpf ]; then
		n=$(attached)
		[ "$n" -gt 0 ] || { echo "programs detached on stop"; return 1; }
		n="$n programs still attached, pins kept"
	else
		[ "$(chained_pod)" = 1 ] || { echo "the pod's chain went with the agent"; return 1; }
		n="the pod's MESHSPLICE_OUTPUT chain kept"
	fi
	echo "exit 0; plugin still chained; $n (the pod stays enforced until the next agent)"
}
check "SIGTERM (an upgrade): the agent drains and exits 0, the plugin stays chained" case_stop

case_uninstall_rollout() {
	start_container -e MESHSPLICE_CNI_UNINSTALL=true || return 1
	[ "$(ms -o json pods | python3 -c 'import json,sys; print([p["state"] for p in json.load(sys.stdin)["pods"]])')" = "['enabled']" ] ||
		{ echo "the pod was not restored"; ms pods; return 1; }
	in_pod "$POD" $PEER echo 242.0.0.81 80 || return 1
	pm stop -t 40 "$C" >/dev/null || return 1
	local rc
	rc=$(pm inspect --format '{{.State.ExitCode}}' "$C")
	pm logs "$C" >>"$T/agent.log" 2>&1
	pm rm "$C" >/dev/null || return 1
	[ "$rc" = 0 ] || { echo "exit code $rc"; return 1; }
	[ "$(chained "$T/cni-conf/10-bridge.conflist")" = 0 ] || { cat "$T/cni-conf/10-bridge.conflist"; return 1; }
	echo "the next agent restored the pod from the state dir; with MESHSPLICE_CNI_UNINSTALL=true its stop unchained the plugin"
}
check "MESHSPLICE_CNI_UNINSTALL=true: the stop unchains the plugin" case_uninstall_rollout

case_uninstall() {
	pm run --rm --name "$C-uninstall" "${AGENT_RUN[@]}" "$IMG" --uninstall >"$T/uninstall.out" 2>&1 ||
		{ cat "$T/uninstall.out"; return 1; }
	[ "$(attached)" = 0 ] || { bpftool cgroup show "$CG"; return 1; }
	[ "$(chained_pod)" = 0 ] || { echo "the pod's chain left"; return 1; }
	# (maps.debug and progs.debug are the kernel's, in every bpffs)
	[ -z "$(ls -A "$BPFFS" | grep -v -e '^maps.debug$' -e '^progs.debug$')" ] || { ls -R "$BPFFS"; return 1; }
	[ -z "$(pm ps -a -q)" ] || { pm ps -a; return 1; }
	[ -z "$(ls /sys/fs/cgroup/*/"$PMCG" /sys/fs/cgroup/"$PMCG" 2>/dev/null | grep libpod)" ] || { echo "container cgroups left"; return 1; }
	in_pod "$POD" $PEER refused 242.0.0.81 80 >/dev/null || { echo "the VIP still answers"; return 1; }
	echo "nothing attached to the test cgroup, no chain in the pod, the bpffs empty, no container or container cgroup left, the VIP gone"
}
check "meshspliced --uninstall from the image: nothing left behind" case_uninstall
finish
