#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the meshsplice image with podman (or buildah) from a Debian 12 root
# made by debootstrap from Debian's archive: no registry is needed.
#   sudo deploy/build-image.sh [--tag meshsplice:0.1.0] [--build-dir build]
#        [--mirror http://deb.debian.org/debian] [--keep DIR] [--dry-run]
# --dry-run prints the steps and checks the inputs, building nothing.
# Needs debootstrap and podman or buildah (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=meshsplice:0.1.0 BUILD=build MIRROR=http://deb.debian.org/debian KEEP= DRY=0
while [ $# -gt 0 ]; do
	case $1 in
	--tag) TAG=$2; shift ;;
	--build-dir) BUILD=$2; shift ;;
	--mirror) MIRROR=$2; shift ;;
	--keep) KEEP=$2; shift ;;
	--dry-run) DRY=1 ;;
	*) echo "build-image: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
# What the binaries link and the scripts run: libbpf, OpenSSL, json-c,
# libyaml, libelf, zlib, libnl (the iptables engine), iptables, iproute2,
# python3 (install.sh edits CNI config as JSON), procps.
PKGS=libbpf1,libssl3,libjson-c5,libyaml-0-2,libelf1,zlib1g,libnl-3-200,libnl-route-3-200,iptables,iproute2,python3,procps,ca-certificates
BINS=(userspace/agent/meshspliced userspace/cli/meshsplice userspace/cni/meshsplice-cni)

for b in "${BINS[@]}"; do
	[ -x "$BUILD/$b" ] || { echo "build-image: $BUILD/$b missing: run scripts/build.sh first" >&2; exit 1; }
done
if command -v podman >/dev/null; then BUILDER=(podman build); elif command -v buildah >/dev/null; then BUILDER=(buildah bud); else BUILDER=(); fi
run() {
	echo "build-image: $*"
	[ "$DRY" = 1 ] || "$@"
}
if [ "$DRY" = 0 ]; then
	command -v debootstrap >/dev/null || { echo "build-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
	[ ${#BUILDER[@]} -gt 0 ] || { echo "build-image: neither podman nor buildah" >&2; exit 1; }
	[ "$(id -u)" = 0 ] || { echo "build-image: debootstrap needs root" >&2; exit 1; }
fi
CTX=${KEEP:-$(mktemp -d /tmp/ms-image.XXXX)}
[ -n "$KEEP" ] || trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/meshsplice/build"

# the context (made with --dry-run too): the scripts and deploy files, the
# three binaries where install.sh looks
cp -r scripts deploy docs "$CTX/meshsplice/"
for b in "${BINS[@]}"; do
	install -D -m 0755 "$BUILD/$b" "$CTX/meshsplice/build/$b"
done
echo "build-image: context in $CTX"
run debootstrap --variant=minbase --include="$PKGS" bookworm "$CTX/root" "$MIRROR"
run chroot "$CTX/root" sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/*'
run tar -C "$CTX/root" --numeric-owner -cf "$CTX/rootfs.tar" .
run "${BUILDER[@]:-podman build}" -f deploy/Containerfile -t "$TAG" "$CTX"
echo "build-image: $TAG built; run it with: podman run --rm $TAG --version"
