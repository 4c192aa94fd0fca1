#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what is missing, build (plain and sanitize with clang, and gcc so
# that both compilers are checked), run every test in the clang builds, fuzz
# for a bounded time, and print "N passed, N failed, N skipped" last.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
passed=0
failed=0
skipped=0

if [ "$(id -u)" -ne 0 ]; then
	echo "test: integration tests need root (network namespaces, cgroups, BPF); run: sudo $0" >&2
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

./scripts/setup.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
./scripts/build.sh plain sanitize gcc || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# Count meson's per-test results from its JSON log.
count() {
	local log=$1/meson-logs/testlog.json
	[ -f "$log" ] || return
	local p f s
	p=$(grep -c -E '"result": "(OK|EXPECTEDFAIL)"' "$log" || true)
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
	s=$(grep -c '"result": "SKIP"' "$log" || true)
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	echo "test: $1: $p passed, $f failed, $s skipped"
}

for dir in build build-asan; do
	echo "test: running the suite in $dir"
	meson test -C "$dir" --print-errorlogs --num-processes 1 || true
	count "$dir"
done

# Fuzz each target for a bounded time on a scratch copy of its corpus.
fuzzers=0
for fz in build-asan/tests/fuzz/fuzz-*; do
	[ -f "$fz" ] && [ -x "$fz" ] || continue
	case $fz in *-replay) continue ;; esac
	fuzzers=$((fuzzers + 1))
	name=$(basename "$fz")
	scratch=$(mktemp -d)
	corpus=tests/fuzz/corpus/${name#fuzz-}
	[ -d "$corpus" ] && cp -r "$corpus/." "$scratch/"
	# the config fuzzer also starts from every example, valid or not
	[ "$name" = fuzz-config ] && cp examples/*.yaml examples/*/*.yaml "$scratch/"
	# a fixed seed: CI replays the same exploration from the committed corpus;
	# scripts/fuzz.sh explores with fresh seeds, at length
	if "$fz" -seed=1 -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 "$scratch" \
		>"$scratch.log" 2>&1; then
		echo "test: $name: fuzzed ${FUZZ_SECONDS}s, no crash"
		passed=$((passed + 1))
	else
		echo "test: $name: FAILED"
		tail -40 "$scratch.log"
		failed=$((failed + 1))
	fi
	rm -rf "$scratch" "$scratch.log"
done
if [ "$fuzzers" -eq 0 ]; then
	echo "test: no libFuzzer targets in build-asan (a clang with libFuzzer builds them): skipped"
	skipped=$((skipped + 1))
fi

echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
