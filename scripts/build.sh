#!/bin/bash
# SPDX-License-Identifier: MIT
# Configure (once) and build, warnings as errors. Usage: scripts/build.sh [plain|sanitize|gcc]...
# plain    → build/       (clang, -O2 -g)
# sanitize → build-asan/  (clang, ASan+UBSan, libFuzzer targets)
# gcc      → build-gcc/   (gcc, -O2 -g: the other compiler a packager may use)
# meson's own default leaves -Werror off, so that a packager's newer compiler
# does not fail the build on a new warning; here, and so in CI, it is on.
set -euo pipefail
cd "$(dirname "$0")/.."

build_one() {
	local cc=$1 dir=$2
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		CC=$cc meson setup "$dir" --werror "$@" >/dev/null
	elif ! meson introspect --buildoptions "$dir" | grep -q '"name": "werror", "value": true'; then
		# a directory configured before werror left the defaults
		meson configure "$dir" -Dwerror=true >/dev/null
	fi
	ninja -C "$dir" >/dev/null
	echo "build: $dir ok"
}

for kind in "${@:-plain}"; do
	case $kind in
	plain) build_one clang build ;;
	sanitize) build_one clang build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dfuzzing=true ;;
	gcc) build_one gcc build-gcc ;;
	*) echo "build: unknown kind $kind (plain, sanitize or gcc)" >&2; exit 2 ;;
	esac
done
