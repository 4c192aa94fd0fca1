#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is missing, build, and start the agent on its embedded default
# (one Mesh "default", passthrough on) with a demo pod: a network namespace
# whose outbound TCP goes through meshsplice. Ctrl-C stops and cleans up.
#
# The demo lives in its own namespaces (ms-demo-pod, ms-demo-out), its own
# cgroup and bpffs under /tmp: it never touches the node's own networking.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "run: needs root (namespaces, cgroups, BPF): sudo $0" >&2; exit 1; }
./scripts/setup.sh
./scripts/build.sh plain

B=build
D=$(mktemp -d /tmp/ms-demo.XXXX)
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
CG=$CG_ROOT/ms-demo
AGENT=
SERVER=

cleanup() {
	set +e
	echo "run: stopping and cleaning up"
	[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
	"$B/userspace/agent/meshspliced" --uninstall --bpffs "$D/bpffs/meshsplice" >/dev/null 2>&1
	umount "$D/bpffs" 2>/dev/null
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null; done
	sleep 0.2
	rmdir "$CG" 2>/dev/null
	ip netns del ms-demo-pod 2>/dev/null
	ip netns del ms-demo-out 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT INT TERM

echo "run: demo topology: pod netns ms-demo-pod (198.18.0.1) ── veth ── ms-demo-out (198.18.0.2, an echo server on :7000)"
ip netns add ms-demo-pod
ip netns add ms-demo-out
ip link add ms-demo0 netns ms-demo-pod type veth peer name ms-demo1 netns ms-demo-out
ip -n ms-demo-pod addr add 198.18.0.1/24 dev ms-demo0
ip -n ms-demo-out addr add 198.18.0.2/24 dev ms-demo1
for ns in ms-demo-pod ms-demo-out; do ip -n $ns link set lo up; done
ip -n ms-demo-pod link set ms-demo0 up
ip -n ms-demo-out link set ms-demo1 up
ip netns exec ms-demo-out socat TCP-LISTEN:7000,fork,reuseaddr PIPE &
SERVER=$!
mkdir -p "$CG" "$D/bpffs" "$D/state"
mount -t bpf bpf "$D/bpffs"

echo "run: starting meshspliced on its embedded default config"
"$B/userspace/agent/meshspliced" --cgroup "$CG" --control "$D/agent.sock" --state-dir "$D/state" \
	--bpffs "$D/bpffs/meshsplice" &
AGENT=$!
for _ in $(seq 50); do [ -S "$D/agent.sock" ] && break; sleep 0.1; done
M="$B/userspace/cli/meshsplice --control $D/agent.sock"
$M enable --netns /var/run/netns/ms-demo-pod --name demo/pod
$M pods
echo "run: the pod says hello to 198.18.0.2:7000; passthrough carries it through meshsplice:"
sh -c 'echo $$ > "$0/cgroup.procs"; exec ip netns exec ms-demo-pod sh -c "echo hello through meshsplice | socat -t1 - TCP:198.18.0.2:7000"' "$CG"
$M stats | grep -E 'forwarder.(started|bytes)|bpf.redirected'
echo
echo "run: agent running. Try, in another shell:"
echo "  $M status"
echo "  sh -c 'echo \$\$ > $CG/cgroup.procs; exec ip netns exec ms-demo-pod socat - TCP:198.18.0.2:7000'"
echo "  $M conns"
echo "run: Ctrl-C to stop (set MS_DEMO_SECONDS to stop by itself)"
if [ -n "${MS_DEMO_SECONDS:-}" ]; then
	sleep "$MS_DEMO_SECONDS"
else
	wait "$AGENT"
fi
