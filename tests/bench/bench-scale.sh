#!/bin/bash
# SPDX-License-Identifier: MIT
# Scale: the cost of steering a connect() with 10 and with 10,000 services of
# EPS (16) endpoints each, eBPF engine vs iptables engine, against the same
# connect() with no steering at all, and how long a config reload of 10,000
# services takes. Two agents read the same config directory: one with
# --engine bpf, one with --engine iptables. Every measurement runs in a pod
# netns made for it and removed after it, so DNAT's conntrack entries never
# carry over from one run to the next.
#   connect cost: `connrate connect` times N blocking connect()s, one after
#   another, each closed with a reset; the hook or the nat rule runs inside
#   that call, so its p50/mean is the steering cost plus a handshake over a
#   veth. Three contenders per engine:
#     direct      the endpoint's address from a pod that is not enabled
#     passthrough the endpoint's address from an enabled pod (allowed, so
#                 the hook looks and leaves it alone)
#     kernel      the service's VIP from an enabled pod: the kernel path
#                 rewrites it to one of the EPS endpoints
#     proxy       the same endpoints behind a VIP labelled for the proxy
#                 path (242.0.0.52): connect() reaches the agent's
#                 listener, so only its BPF figure compares
#   "over direct" is the kernel path's mean minus direct's, in microseconds.
#   ENGINES: the engines measured ("bpf iptables").
#   PERF=1: each run is also recorded with perf (its timings then include
#   perf's cost: read them for where the time goes, not for the figures),
#   and the busiest kernel symbols of the eBPF kernel path's connects are
#   printed at the end.
#   reload: wall time of `meshsplice reload` (the agent answers once the new
#   config is parsed, indexed and in the BPF maps or the chains), after the
#   file changed.
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
CONNECTS=${CONNECTS:-3000}
SCALES=${SCALES:-"10 10000"}
EPS=${EPS:-16}
ENGINES=${ENGINES:-"bpf iptables"}
BPFSTATS=$BUILD/tests/bench/bpfstats
CTL2=$T/agent2.sock
make_topology || exit 1
# the measured service's endpoints: 198.18.3.2 .. 198.18.3.(EPS+1), port 7000,
# all answered by one connrate server in the outside netns
for i in $(seq 3 $((EPS + 1))); do ip -n "$NS_O" addr add "198.18.3.$i/32" dev lo || exit 1; done

# services: the measured one (rr, 242.0.0.51:7000) and N-1 others, 1,000 to
# a file (a file's node limit is 500,000), each file renamed into place
write_config() { # N
	python3 - "$1" "$EPS" "$T/conf" <<'PY'
import glob, os, sys
n, eps, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def svc(name, vip, eps_list):
    lines = ["type: MeshExternalService", "name: %s" % name, "spec:", "  match:",
             "    port: 7000", "  endpoints:"]
    for a, p in eps_list:
        lines += ["    - address: %s" % a, "      port: %d" % p]
    lines += ["status:", "  vip:", "    ip: %s" % vip]
    return "\n".join(lines) + "\n"
out = [svc("rr", "242.0.0.51", [("198.18.3.%d" % (2 + e), 7000) for e in range(eps)]),
       svc("rr-proxy", "242.0.0.52", [("198.18.3.%d" % (2 + e), 7000) for e in range(eps)]).replace(
           "spec:", "labels:\n  meshsplice.io/datapath: proxy\nspec:", 1)]
for i in range(2, n):
    # never dialled: their endpoints are in 198.19/16, one address per service
    a = "198.19.%d.%d" % (i // 250, i % 250 + 1)
    out.append(svc("svc-%d" % i, "242.1.%d.%d" % (i // 250, i % 250 + 1),
                   [(a, 7000 + e) for e in range(eps)]))
files = set()
for k in range(0, len(out), 1000):
    f = os.path.join(d, "bench-%03d.yaml" % (k // 1000))
    with open(f + ".tmp", "w") as fh:
        fh.write("---\n".join(out[k:k + 1000]))
    os.rename(f + ".tmp", f)
    files.add(f)
for f in glob.glob(os.path.join(d, "bench-*.yaml")):
    if f not in files:
        os.unlink(f)
PY
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

# one connect-cost run in $POD: measure ENGINE CONTENDER -> "p50 mean bpf"
# in us, bpf being what the cgroup's BPF programs took per connect (the
# kernel's run-time statistics, bpfstats), none when nothing of ours ran.
# Two runs: p50 and mean from one without the statistics (they cost a clock
# read a program run, and a connect runs our programs ten to twelve times),
# bpf from one with them.
measure() {
	local ctl=$CTL dst=242.0.0.51 bpf cmd=()
	[ "$1" = iptables ] && ctl=$CTL2
	[ "$2" = proxy ] && dst=242.0.0.52
	[ "$2" = kernel ] || [ "$2" = proxy ] || dst=198.18.3.2
	cmd=(ip netns exec "$POD" "$CONNRATE" connect "$dst" 7000 "$CONNECTS")
	if [ "$2" != direct ]; then
		"$CLI_BIN" --control "$ctl" enable --netns "/var/run/netns/$POD" --name "bench/$POD" >/dev/null || return 1
		# the eBPF engine's hooks apply to the processes of its cgroup
		[ "$1" = bpf ] && cmd=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "${cmd[@]}")
	fi
	[ -n "${PERF:-}" ] && cmd=(perf record -q -g -e cpu-clock -o "$T/perf-$1-$2-$n.data" -- "${cmd[@]}")
	"${cmd[@]}" >"$T/connrate.out" || return 1
	"$BPFSTATS" "$CG" -- "${cmd[@]}" 2>"$T/bpfstats.err" >/dev/null || { cat "$T/bpfstats.err"; return 1; }
	bpf=$(awk -v n="$CONNECTS" '/^bpfstats: total ns/ { printf "%.3f", $4 / n / 1000 }' "$T/bpfstats.err")
	cp "$T/bpfstats.err" "$T/bpfstats-$1-$2-$n.txt"
	echo "$(awk '{ print $2, $8 }' "$T/connrate.out") $bpf"
	[ "$2" = direct ] || "$CLI_BIN" --control "$ctl" disable "bench/$POD" >/dev/null
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
		for e in $ENGINES; do
			for c in direct passthrough kernel proxy; do
				fresh_pod || exit 1
				read -r p50 mean bpf < <(measure $e $c) || exit 1
				drop_pod
				[ -n "$bpf" ] || { echo "bench-scale: no figure for $e $c at $n services"; exit 1; }
				R[${e}-${c}_p50at$n]+=" $p50"
				R[${e}-${c}_meanat$n]+=" $mean"
				R[${e}-${c}_bpfat$n]+=" $bpf"
			done
		done
	done
done
echo
med() { echo "${R[$1]}" | median; }
printf "%-40s %12s %12s %12s %12s %12s\n" "connect() in us (median of rounds)" direct passthrough kernel "over direct" proxy
for e in $ENGINES; do
	for n in $SCALES; do
		for m in p50 mean bpf; do
			d=$(med "$e-direct_${m}at$n") p=$(med "$e-passthrough_${m}at$n") k=$(med "$e-kernel_${m}at$n")
			printf "%-40s %12s %12s %12s %12s %12s\n" "$e, $n services x $EPS endpoints, ${m/bpf/in BPF}" "$d" "$p" "$k" \
				"$(python3 -c "import sys; print('%+.1f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$k" "$d")" \
				"$(med "$e-proxy_${m}at$n")"
		done
	done
done
echo
printf "%-36s %14s %14s\n" "reload (ms, median, min..max)" ebpf iptables
for n in $SCALES; do
	printf "%-36s %14s %14s\n" "to $n services" "$(med "bpf_reload$n")" "$(med "iptables_reload$n")"
	printf "%-36s %14s %14s\n" "" "$(echo "${R[bpf_reload$n]}" | minmax)" "$(echo "${R[iptables_reload$n]}" | minmax)"
done
echo
for n in $SCALES; do
	for c in passthrough kernel proxy; do
		echo "eBPF, $c, $n services: per program (last round, $CONNECTS connects)"
		sed 's/^bpfstats: /  /' "$T/bpfstats-bpf-$c-$n.txt"
	done
done
first=${SCALES%% *} last=${SCALES##* }
if [ -n "${PERF:-}" ]; then
	for c in direct kernel; do
		echo "eBPF, $c, $last services: busiest symbols, self time (perf, last round)"
		perf report -q -i "$T/perf-bpf-$c-$last.data" --no-children -g none --sort sym --percent-limit 1 2>/dev/null |
			grep -v '^$' | head -30
	done
fi
for e in $ENGINES; do
	echo "$e: kernel-path connect mean with $last services / with $first: $(ratio "$(med "$e-kernel_meanat$last")" \
		"$(med "$e-kernel_meanat$first")")"
done
csv_dump scale
"$CLI_BIN" --control "$CTL2" status >/dev/null || exit 1
finish
