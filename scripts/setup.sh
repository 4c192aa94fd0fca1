#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages meshsplice needs to build and test.
#   setup.sh          build and test (scripts/test.sh)
#   setup.sh --run    build and run the demo only (scripts/run.sh): no test toolchain
#   setup.sh --bench  build, test, and the benchmarks' peers
# Idempotent: when every package is present it only checks, in well under a second.
set -euo pipefail

BUILD_PKGS=(
	meson ninja-build pkg-config gcc clang llvm bpftool linux-libc-dev
	libbpf-dev libelf-dev zlib1g-dev libssl-dev libnl-3-dev libnl-route-3-dev
	libyaml-dev libjson-c-dev libcmocka-dev
)
# The sanitizer and fuzzer builds (scripts/test.sh).
SANITIZE_PKGS=(libclang-rt-14-dev libfuzzer-14-dev)
# What the demo runs: namespaces, a plain and a TLS server.
RUN_PKGS=(iproute2 socat openssl procps)
TEST_PKGS=(
	iproute2 iptables socat ncat iperf3 bind9-dnsutils netcat-openbsd openssl curl procps psmisc valgrind
	python3 nginx-light containernetworking-plugins
	podman runc conmon busybox-static containers-storage
	debootstrap python3-yaml
)

# Peers the benchmarks compare against (scripts/bench.sh passes --bench).
BENCH_PKGS=(haproxy nginx-light libnginx-mod-stream wrk)
case "${1:-}" in
--run) WANT=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}") ;;
--bench) WANT=("${BUILD_PKGS[@]}" "${SANITIZE_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
"") WANT=("${BUILD_PKGS[@]}" "${SANITIZE_PKGS[@]}" "${TEST_PKGS[@]}") ;;
*) echo "setup: unknown option $1 (--run or --bench)" >&2; exit 2 ;;
esac

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
