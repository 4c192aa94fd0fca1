#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every libFuzzer target at length, on demand (CI runs each for 30 s in
# scripts/test.sh). New interesting inputs are kept in tests/fuzz/corpus/;
# a crash or leak is left as ./crash-* / ./leak-* with the command to replay it.
#   ./scripts/fuzz.sh [SECONDS per target, default 600] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
shift || true
./scripts/setup.sh >/dev/null
./scripts/build.sh sanitize
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=($(cd build-asan/tests/fuzz && ls fuzz-* | grep -v -e replay -e '\.p$'))
rc=0
for t in "${targets[@]}"; do
	corpus=tests/fuzz/corpus/${t#fuzz-}
	mkdir -p "$corpus"
	echo "fuzz: $t for ${SECS}s on $corpus"
	if ! build-asan/tests/fuzz/"$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 "$corpus"; then
		echo "fuzz: $t found a problem; replay with: build-asan/tests/fuzz/$t ./crash-* (or ./leak-*)"
		rc=1
	fi
done
exit $rc
