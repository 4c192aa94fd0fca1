#!/bin/bash
# SPDX-License-Identifier: MIT
# Scale: the cost of steering a connect() with 10 and with 10,000 services
# configured, eBPF engine vs iptables engine, and how long a config reload of
# 10,000 services takes. Two agents read the same config directory: one with
# --engine bpf, one with --engine iptables. Every measurement runs in a pod
# netns made for it and removed after it, so REDIRECT's conntrack entries
# never carry over from one run to the next.
#   connect cost: `connrate connect` times N blocking connect()s to a VIP, one
#   after another, each closed with a reset; the hook or the nat rule runs
#   inside that call, so its p50/mean is the steering cost plus a loopback
#   handshake.
#   reload: wall time of `meshsplice reload` (the agent answers once the new
#   config is parsed, indexed and in the BPF maps), after the file changed.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
CONNECTS=${CONNECTS:-3000}
SCALES=${SCALES:-"10 10000"}
CTL2=$T/agent2.sock
make_topology || exit 1

# services: the measured one (rr, 242.0.0.51:7000) and N-1 others
write_config() { # N
	python3 - "$1" >"$T/conf/bench.yaml.tmp" <<'PY'
import sys
n = int(sys.argv[1])
doc = """type: MeshExternalService
name: %s
spec:
  match:
    port: 7000
  endpoints:
    - address: 198.18.3.2
      port: 7000
status:
  vip:
    ip: %s
"""
out = [doc % ("rr", "242.0.0.51")]
for i in range(1, n):
    out.append(doc % ("svc-%d" % i, "242.1.%d.%d" % (i // 250, i % 250 + 1)))
print("---\n".join(out), end="")
PY
	mv "$T/conf/bench.yaml.tmp" "$T/conf/bench.yaml"
}

# a pod made for one run: its own netns and veth, routed to the endpoint
POD_N=0
fresh_pod() {
	POD_N=$((POD_N + 1))
	POD=ms-s$POD_N-$ID
	EXTRA_NETNS+=("$POD")
	ip netns add "$POD" || return 1
	ip link add "vs$POD_N-$ID" netns "$POD" type veth peer name "os$POD_N-$ID" netns "$NS_O" || return 1
	ip -n "$POD" addr add "198.18.$((100 + POD_N)).1/24" dev "vs$POD_N-$ID"
	ip -n "$NS_O" addr add "198.18.$((100 + POD_N)).2/24" dev "os$POD_N-$ID"
	ip -n "$POD" link set "vs$POD_N-$ID" up
	ip -n "$POD" link set lo up
	ip -n "$NS_O" link set "os$POD_N-$ID" up
	ip -n "$POD" route add 198.18.3.0/24 via "198.18.$((100 + POD_N)).2"
}
drop_pod() {
	ip netns del "$POD"
	unset 'EXTRA_NETNS[-1]'
}

bg_out rr "$CONNRATE" server 7000 || exit 1
write_config 10
start_agent || exit 1
mkdir -p "$T/state2"
"$AGENT_BIN" --config-dir "$T/conf" --engine iptables --control "$CTL2" --state-dir "$T/state2" \
	--bpffs "$BPFFS/ms2" --cgroup "$CG" >>"$T/agent2.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 100); do "$CLI_BIN" --control "$CTL2" status >/dev/null 2>&1 && break; sleep 0.05; done

# one connect-cost run in $POD, enabled on the engine's agent
measure() { # engine -> "p50 mean" in us
	local ctl=$CTL run=()
	if [ "$1" = bpf ]; then run=(in_pod "$POD"); else ctl=$CTL2 run=(ip netns exec "$POD"); fi
	"$CLI_BIN" --control "$ctl" enable --netns "/var/run/netns/$POD" --name "bench/$POD" >/dev/null || return 1
	"${run[@]}" "$CONNRATE" connect 242.0.0.51 7000 "$CONNECTS" | awk '{ print $2, $8 }'
	"$CLI_BIN" --control "$ctl" disable "bench/$POD" >/dev/null
}
reload_ms() { # ctl -> ms
	local t0 t1
	t0=$(date +%s%N)
	"$CLI_BIN" --control "$1" reload >/dev/null || return 1
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

declare -A R
for r in $(seq "$ROUNDS"); do
	log "round $r of $ROUNDS"
	for n in $SCALES; do
		write_config "$n"
		R[bpf_reload$n]+=" $(reload_ms "$CTL")"
		R[iptables_reload$n]+=" $(reload_ms "$CTL2")"
		sleep 0.5 # past the directory watch's debounce: no reload during the run
		for e in bpf iptables; do
			fresh_pod || exit 1
			read -r p50 mean < <(measure $e) || exit 1
			drop_pod
			R[${e}_p50at$n]+=" $p50"
			R[${e}_meanat$n]+=" $mean"
		done
	done
done
echo
printf "%-36s %14s %14s %10s\n" "workload (median, min..max)" ebpf iptables "ebpf/ipt"
row() { # key label
	local e i
	e=$(echo "${R[bpf_$1]}" | median) i=$(echo "${R[iptables_$1]}" | median)
	printf "%-36s %14s %14s %10s\n" "$2" "$e" "$i" "$(ratio "$e" "$i")"
	printf "%-36s %14s %14s\n" "" "$(echo "${R[bpf_$1]}" | minmax)" "$(echo "${R[iptables_$1]}" | minmax)"
}
for n in $SCALES; do
	row "p50at$n" "connect p50, $n services (us)"
	row "meanat$n" "connect mean, $n services (us)"
done
for n in $SCALES; do row "reload$n" "reload to $n services (ms)"; done
first=${SCALES%% *} last=${SCALES##* }
for e in bpf iptables; do
	echo "$e: connect mean with $last services / with $first: $(ratio "$(echo "${R[${e}_meanat$last]}" | median)" \
		"$(echo "${R[${e}_meanat$first]}" | median)")"
done
csv_dump scale
"$CLI_BIN" --control "$CTL2" status >/dev/null || exit 1
finish
