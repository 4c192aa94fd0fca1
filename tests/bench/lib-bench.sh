# SPDX-License-Identifier: MIT
# Shared by the benchmarks (sourced after ../integration/lib.sh): root, the
# round and duration defaults, the load generator; medians and ranges of the
# values of a round list.
require_root
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
CONNRATE=$BUILD/tests/bench/connrate
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minmax() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
gbps() { python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
cpu_ticks() { # utime + stime + the reaped children's, of every pid given
	local p t=0
	for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat"))); done
	echo $t
}
# cpu_per_gb TICKS_AFTER TICKS_BEFORE < iperf3 JSON: CPU-seconds (clock ticks
# apart) per GB that iperf3 received
cpu_per_gb() {
	python3 -c 'import json, os, sys
gb = json.load(sys.stdin)["end"]["sum_received"]["bytes"] / 1e9
print("%.3f" % ((int(sys.argv[1]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK") / gb))' "$1" "$2"
}

# csv_dump BENCH: each round list of the bench's R array (keys CONTENDER_WORKLOAD)
# as "bench,workload,contender,median,min,max" lines appended to $BENCH_CSV.
csv_dump() {
	[ -n "${BENCH_CSV:-}" ] || return 0
	local k mm
	for k in "${!R[@]}"; do
		mm=$(echo "${R[$k]}" | minmax)
		echo "$1,${k#*_},${k%%_*},$(echo "${R[$k]}" | median),${mm%%..*},${mm##*..}" >>"$BENCH_CSV"
	done
}

# bulk_rr_services ENDPOINT: the MeshExternalServices the plaintext benches
# dial, all to ENDPOINT. Proxy path (labelled so: the forwarder in every
# connection): iperf (VIP 242.0.0.50, port 5201) and rr (242.0.0.51, port
# 7000, a connrate server). Kernel path (rewritten at connect, the agent
# never sees them): iperf-k (242.0.0.60) and rr-k (242.0.0.61).
bulk_rr_services() {
	local name vip port path
	: >"$T/conf/bench.yaml"
	for spec in iperf:242.0.0.50:5201:proxy rr:242.0.0.51:7000:proxy iperf-k:242.0.0.60:5201:auto rr-k:242.0.0.61:7000:auto; do
		IFS=: read -r name vip port path <<<"$spec"
		cat >>"$T/conf/bench.yaml" <<YAML
---
type: MeshExternalService
name: $name
labels:
  meshsplice.io/datapath: $path
spec:
  match:
    port: $port
  endpoints:
    - address: $1
      port: $port
status:
  vip:
    ip: $vip
YAML
	done
}
