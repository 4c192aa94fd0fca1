#!/bin/bash
# SPDX-License-Identifier: MIT
# Configure (once) and build. Usage: scripts/build.sh [plain|sanitize]...
# plain    → build/       (clang, -O2 -g)
# sanitize → build-asan/  (clang, ASan+UBSan, libFuzzer targets)
set -euo pipefail
cd "$(dirname "$0")/.."

build_one() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		CC=clang meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
	echo "build: $dir ok"
}

for kind in "${@:-plain}"; do
	case $kind in
	plain) build_one build ;;
	sanitize) build_one build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dfuzzing=true ;;
	*) echo "build: unknown kind $kind (plain or sanitize)" >&2; exit 2 ;;
	esac
done
