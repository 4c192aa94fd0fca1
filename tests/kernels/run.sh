#!/bin/bash
# SPDX-License-Identifier: MIT
# The integration suites that kernel variance breaks, each run inside its own
# VM on a second kernel (scripts/vm.sh; Debian's 6.1 LTS by default) against
# the host's build, which the guest sees read-only.
#
#   tests/kernels/run.sh [CASE...]
#
# CASE is ktls (the kernel's TLS ULP: tests/kernels/ktls-probe.py), ktls-fwd
# (the forwarder on kernel TLS: tests/kernels/test-ktls.sh) or SUITE-ENGINE,
# SUITE one of datapath tls escape dns faults and ENGINE bpf or iptables
# (tests/integration/test-SUITE.sh with MS_ENGINE=ENGINE). A suffix -noktls
# runs it with the agent's --ktls off (MS_KTLS=off). Without
# CASEs: MS_KERNELS_CASES, or the default set below (what fits CI's budget
# under software emulation; "all" runs every case).
#
# Environment: MS_BUILD_DIR (the host's build, required), MS_KERNEL (a
# series or ABI for vm.sh, default 6.1), MS_KERNELS_TIMEOUT (seconds per case,
# default 1200), MS_SANITIZED (passed on), MS_TIME_SCALE (the suites' short
# waits, multiplied: default 4 here, for software emulation).
# Exit 0 when every case passed, 1 when one failed, 77 when no VM can run here.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MS_BUILD_DIR:?MS_BUILD_DIR: the host build to test}
KERNEL=${MS_KERNEL:-6.1}
TIMEOUT=${MS_KERNELS_TIMEOUT:-1200}
SUITES=(datapath tls escape dns faults)
ENGINES=(bpf iptables)
# Under TCG a suite costs 1-13 minutes (tests/kernels/README.md). The
# default: the kTLS probe, the forwarder on kernel TLS, and the eBPF engine
# (where the kernel matters most) in every suite, whose assertions hold
# under emulation once MS_TIME_SCALE stretches their waits. The forwarder
# with kTLS off (ktls-fwd-noktls) is left to "all": it is what the host,
# which has no kernel TLS, runs in test-tls anyway.
DEFAULT_CASES=(ktls ktls-fwd datapath-bpf escape-bpf dns-bpf tls-bpf faults-bpf)
TIME_SCALE=${MS_TIME_SCALE:-4}
EXIT_SKIP=77

log() { echo "[$(date +%T)] kernels: $*"; }

if [ $# -gt 0 ]; then
	CASES=("$@")
elif [ -n "${MS_KERNELS_CASES:-}" ]; then
	read -r -a CASES <<<"$MS_KERNELS_CASES"
else
	CASES=("${DEFAULT_CASES[@]}")
fi
if [ "${CASES[*]}" = all ]; then
	CASES=(ktls ktls-fwd ktls-fwd-noktls)
	for s in "${SUITES[@]}"; do
		for e in "${ENGINES[@]}"; do CASES+=("$s-$e"); done
	done
	CASES+=(tls-bpf-noktls)
fi

# the command a case runs in the guest
case_cmd() {
	local c=${1%-noktls} ktls=auto s e
	[ "$c" != "$1" ] && ktls=off
	local suite=${c%-*} engine=${c##*-} env=(env "MS_BUILD_DIR=$BUILD" "MS_SANITIZED=${MS_SANITIZED:-none}"
		"MS_TIME_SCALE=$TIME_SCALE" "MS_KTLS=$ktls")
	if [ "$1" = ktls ]; then
		CMD=(python3 "$SRC/tests/kernels/ktls-probe.py")
		return 0
	fi
	if [ "$c" = ktls-fwd ]; then
		CMD=("${env[@]}" MS_ENGINE=bpf bash "$SRC/tests/kernels/test-ktls.sh")
		return 0
	fi
	for s in "${SUITES[@]}"; do
		[ "$s" = "$suite" ] || continue
		for e in "${ENGINES[@]}"; do
			[ "$e" = "$engine" ] || continue
			CMD=("${env[@]}" "MS_ENGINE=$engine" bash "$SRC/tests/integration/test-$suite.sh")
			return 0
		done
	done
	return 1
}

for c in "${CASES[@]}"; do
	case_cmd "$c" || { echo "kernels: unknown case $c" >&2; exit 2; }
done

cd "$SRC" || exit 1
passed=0
failed=0
skipped=0
failures=()
t_all=$SECONDS
for c in "${CASES[@]}"; do
	case_cmd "$c"
	log "$c on $KERNEL: start"
	t0=$SECONDS
	"$SRC/scripts/vm.sh" --kernel "$KERNEL" --timeout "$TIMEOUT" -- "${CMD[@]}"
	rc=$?
	dt=$((SECONDS - t0))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		log "$c on $KERNEL: PASS in ${dt}s"
	elif [ $rc -eq $EXIT_SKIP ] && [ $passed -eq 0 ] && [ $failed -eq 0 ]; then
		# vm.sh's own "no VM here" (or a suite that skips: same meaning here)
		log "$c: no VM can run here, skipping the kernels suite"
		exit $EXIT_SKIP
	elif [ $rc -eq $EXIT_SKIP ]; then
		skipped=$((skipped + 1))
		log "$c on $KERNEL: SKIP"
	else
		failed=$((failed + 1))
		failures+=("$c")
		log "$c on $KERNEL: FAIL (exit $rc) in ${dt}s"
	fi
done
log "kernel $KERNEL: ${#CASES[@]} cases in $((SECONDS - t_all))s${failures:+; failed: ${failures[*]}}"
echo "kernels: ${passed} passed, ${failed} failed, ${skipped} skipped"
[ $failed -eq 0 ]
