#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmarks, on demand (not in CI): installs the peers, builds, runs every
# benchmark in tests/bench. ROUNDS and SECS tune the length.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root: sudo $0" >&2; exit 1; }
./scripts/setup.sh --bench
./scripts/build.sh plain
meson test -C build --benchmark --verbose "$@"
