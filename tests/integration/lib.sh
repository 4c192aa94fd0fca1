# SPDX-License-Identifier: MIT
# Shared by the integration tests: a throw-away world of network namespaces,
# a cgroup and a bpffs of the test's own, an agent on its own control socket
# and state dir, and cleanup of all of it on exit, also on failure.
#
# Topology (addresses from 198.18.0.0/15 and 2001:2::/48, no route out):
#   pod A  ms-a-ID  198.18.1.1/24 2001:2:0:1::1/64 ── veth ── out 198.18.1.2 2001:2:0:1::2
#   pod B  ms-b-ID  198.18.2.1/24 2001:2:0:2::1/64 ── veth ── out 198.18.2.2 2001:2:0:2::2
#   out    ms-o-ID  also 198.18.3.2 (a second endpoint) on its lo
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${MS_BUILD_DIR:-$SRC/build}
AGENT_BIN=$BUILD/userspace/agent/meshspliced
CLI_BIN=$BUILD/userspace/cli/meshsplice
PEER="python3 $SRC/tests/integration/peer.py"

ID=$(printf '%04x%02x' $$ $((RANDOM % 256)))
T=$(mktemp -d "/tmp/ms-it-$ID.XXXX")
NS_A=ms-a-$ID
NS_B=ms-b-$ID
NS_O=ms-o-$ID
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
CG=$CG_ROOT/ms-test-$ID
BPFFS=$T/bpffs
CTL=$T/agent.sock
MPORT=$((20000 + RANDOM % 20000)) # metrics, on the root netns's loopback
AGENT_PID=
PASSED=0
FAILED=0
BG_PIDS=()
EXTRA_NETNS=() # more namespaces a test made; removed on exit too

log() { echo "[$(date +%T)] $*"; }

# MS_TIME_SCALE (default 1): the factor a slow machine needs on the suites'
# short waits and deadlines (tests/kernels/run.sh sets 4 under emulation).
TIME_SCALE=${MS_TIME_SCALE:-1}
ts() { awk -v t="$1" -v k="$TIME_SCALE" 'BEGIN { print t * k }'; } # seconds (or ms), scaled
tsleep() { sleep "$(ts "$1")"; }

cleanup() {
	local rc=$?
	set +e
	[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	# any agent of this test still around (started in a subshell, say): its
	# control socket lives in our temp dir, so it is ours to stop
	pkill -TERM -f -- "--control $T/" 2>/dev/null && sleep 0.3
	# processes left in the test cgroup or the namespaces
	if [ -d "$CG" ]; then
		for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	fi
	for ns in "$NS_A" "$NS_B" "$NS_O" "${EXTRA_NETNS[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	done
	sleep 0.2
	# ours only: our pins, our state dir (its pods' iptables chains), our control socket
	"$AGENT_BIN" --uninstall --bpffs "$BPFFS/meshsplice" --state-dir "$T/state" --control "$CTL" >/dev/null 2>&1
	mountpoint -q "$BPFFS" && umount "$BPFFS"
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	for ns in "$NS_A" "$NS_B" "$NS_O" "${EXTRA_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	if [ "$FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
		echo "---- agent log (last 60 lines) ----"
		tail -60 "$T/agent.log" 2>/dev/null
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM

require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "integration tests need root"
		exit 77
	fi
}

make_topology() {
	ip netns add "$NS_A" && ip netns add "$NS_B" && ip netns add "$NS_O" || return 1
	local i ns
	for i in 1 2; do
		ns=$NS_A
		[ $i = 2 ] && ns=$NS_B
		ip link add "v$i-$ID" netns "$ns" type veth peer name "o$i-$ID" netns "$NS_O" || return 1
		ip -n "$ns" addr add "198.18.$i.1/24" dev "v$i-$ID"
		ip -n "$ns" addr add "2001:2:0:$i::1/64" dev "v$i-$ID" nodad
		ip -n "$NS_O" addr add "198.18.$i.2/24" dev "o$i-$ID"
		ip -n "$NS_O" addr add "2001:2:0:$i::2/64" dev "o$i-$ID" nodad
		ip -n "$ns" link set "v$i-$ID" up
		ip -n "$ns" link set lo up
		ip -n "$NS_O" link set "o$i-$ID" up
	done
	ip -n "$NS_O" link set lo up
	# a second endpoint address, on lo (no dummy module everywhere)
	ip -n "$NS_O" addr add 198.18.3.2/32 dev lo
	# the pods reach 198.18.3.0/24 through the outside netns, and nothing else
	ip -n "$NS_A" route add 198.18.3.0/24 via 198.18.1.2
	ip -n "$NS_B" route add 198.18.3.0/24 via 198.18.2.2
	ip netns exec "$NS_O" sysctl -qw net.ipv4.ip_forward=0
	mkdir -p "$CG" "$BPFFS" "$T/state" "$T/conf"
	mount -t bpf bpf "$BPFFS"
}

# mes_yaml NAME VIP ADDRESS PORT [DATAPATH]: a MeshExternalService on port 80
# with one endpoint, on stdout (DATAPATH: the meshsplice.io/datapath label)
mes_yaml() {
	echo "type: MeshExternalService"
	echo "name: $1"
	[ -n "${5:-}" ] && printf 'labels:\n  meshsplice.io/datapath: %s\n' "$5"
	printf 'spec:\n  match:\n    port: 80\n  endpoints:\n    - address: %s\n      port: %s\n' "$3" "$4"
	printf 'status:\n  vip:\n    ip: %s\n' "$2"
}

# run CMD in the outside netns in the background; waits for "ready" on stdout
bg_out() {
	local name=$1
	shift
	ip netns exec "$NS_O" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG_PIDS+=($!)
	for _ in $(seq 50); do
		grep -q ready "$T/$name.out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "server $name did not start: $(cat "$T/$name.err")"
	return 1
}

# run CMD inside pod netns $1 as a process of the test cgroup (so the hooks apply)
in_pod() {
	local ns=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$@"' "$CG" "$ns" "$@"
}

# The agent sees the test's hosts file as /etc/hosts (private mount namespace).
# Health probes are off (they would be connections the tests' servers count)
# unless MS_AGENT_HEALTH says otherwise; a case passes its own --health-* after.
start_agent() {
	touch "$T/hosts"
	# AGENT_NETNS: run the agent inside that netns (a test's "node"); nsenter,
	# not ip netns exec, which would remount /sys and hide the cgroups
	local in_ns=()
	[ -n "${AGENT_NETNS:-}" ] && in_ns=(nsenter "--net=/run/netns/$AGENT_NETNS")
	# AGENT_WRAP: a command the agent runs under (prlimit, say)
	"${in_ns[@]}" unshare -m --propagation slave sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$T/hosts" \
		${AGENT_WRAP:-} "$AGENT_BIN" --config-dir "$T/conf" --cgroup "$CG" --control "$CTL" \
		--state-dir "$T/state" --bpffs "$BPFFS/meshsplice" --connect-timeout 2000 --engine "${MS_ENGINE:-bpf}" --metrics "127.0.0.1:$MPORT" \
		--log-level "${MS_LOG_LEVEL:-info}" ${MS_AGENT_HEALTH---health-interval 0} "$@" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	for _ in $(seq "${MS_START_TRIES:-100}"); do
		[ -S "$CTL" ] && "$CLI_BIN" --control "$CTL" status >/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "agent did not start:"
	tail -20 "$T/agent.log"
	return 1
}

stop_agent() {
	local sig=${1:-TERM}
	[ -n "$AGENT_PID" ] || return 0
	kill "-$sig" "$AGENT_PID" 2>/dev/null
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

ms() { "$CLI_BIN" --control "$CTL" "$@"; }

# stat KEY.PATH: one number from `meshsplice stats -o json`
stat() {
	ms -o json stats | python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# check NAME CMD...: one case; output kept for the log
check() {
	local name=$1
	shift
	# not in a subshell: a case may restart the agent and must keep its PID
	if "$@" >"$T/case.out" 2>&1; then
		PASSED=$((PASSED + 1))
		log "PASS $name: $(tail -1 "$T/case.out")"
	else
		FAILED=$((FAILED + 1))
		log "FAIL $name"
		sed 's/^/    /' "$T/case.out" | tail -20
	fi
}

# The last case of a suite: SIGTERM, exit 0, and nothing from the sanitizers.
case_clean_exit() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	local rc=$?
	AGENT_PID=
	echo "agent exit status $rc"
	[ $rc -eq 0 ] && ! grep -E "Sanitizer|runtime error" "$T/agent.log"
}

finish() {
	log "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
