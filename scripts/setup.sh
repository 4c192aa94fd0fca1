#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages meshsplice needs to build and test.
# Idempotent: when every package is present it only checks, in well under a second.
set -euo pipefail

BUILD_PKGS=(
	meson ninja-build pkg-config gcc clang llvm bpftool linux-libc-dev
	libbpf-dev libelf-dev zlib1g-dev libssl-dev libnl-3-dev libnl-route-3-dev
	libyaml-dev libjson-c-dev libcmocka-dev libclang-rt-14-dev libfuzzer-14-dev
)
TEST_PKGS=(
	iproute2 iptables socat ncat iperf3 bind9-dnsutils netcat-openbsd openssl curl procps psmisc valgrind
	python3 nginx-light containernetworking-plugins
	podman runc conmon busybox-static containers-storage
)

# Peers the benchmarks compare against (scripts/bench.sh passes --bench).
BENCH_PKGS=(haproxy nginx-light libnginx-mod-stream wrk)
WANT=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
[ "${1:-}" = "--bench" ] && WANT+=("${BENCH_PKGS[@]}")

missing=()
for p in "${WANT[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#WANT[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: installed ${#missing[@]} packages"
