#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the meshsplice image with podman (or buildah) from a Debian 12 root
# made by debootstrap from Debian's archive: no registry is needed.
#   sudo deploy/build-image.sh [--tag meshsplice:0.1.0] [--build-dir build]
#        [--mirror URL] [--cache DIR] [--storage DIR] [--keep DIR] [--dry-run]
#        [--print-mirror] [-- PODMAN-BUILD-OPTIONS...]
# --mirror   the Debian archive (default: the one this machine's apt uses for
#            bookworm, from /etc/apt/sources.list*, else deb.debian.org)
# --cache    keep the Debian root (rootfs.tar) there and use it again while
#            the package list, suite and mirror are the same
# --storage  podman's (or buildah's) storage under DIR (DIR/root, DIR/run),
#            not the machine's default; the image stays there
# --keep     the build context in DIR, not removed at the end
# --dry-run  prints the steps and checks the inputs, building nothing.
# --print-mirror  prints the archive the root would come from, and exits.
# Podman keeps a blob-info cache in /var/lib/containers/cache whatever
# --storage says (tests/integration/test-image.sh hides it in an overlay).
# Needs debootstrap and podman or buildah (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

# The first Debian archive apt's sources name for bookworm (deb822 .sources
# or one-line .list), so the root comes from where this machine's packages do.
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		/(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && /(^|\n)Components:[^\n]*main/ && !/(^|\n)Enabled: *no/ {
			for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); if (u[2] !~ /security/) { print u[2]; exit } }
		}' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++
			if ($(i + 1) == "bookworm" && $i !~ /security/) print $i }'
	return 0
}
MIRROR=$(apt_mirror 2>/dev/null | head -n1) || MIRROR=
TAG=meshsplice:0.1.0 BUILD=build MIRROR=${MIRROR:-http://deb.debian.org/debian} KEEP= DRY=0 CACHE= STORAGE= PRINT_MIRROR=0
while [ $# -gt 0 ]; do
	case $1 in
	--tag) TAG=$2; shift ;;
	--build-dir) BUILD=$2; shift ;;
	--mirror) MIRROR=$2; shift ;;
	--cache) CACHE=$2; shift ;;
	--storage) STORAGE=$2; shift ;;
	--keep) KEEP=$2; shift ;;
	--dry-run) DRY=1 ;;
	--print-mirror) PRINT_MIRROR=1 ;;
	--) shift; break ;;
	*) echo "build-image: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$PRINT_MIRROR" = 0 ] || { echo "$MIRROR"; exit 0; }
# What the binaries link and the scripts run: libbpf, OpenSSL, json-c,
# libyaml, libelf, zlib, libnl (the iptables engine), iptables, iproute2,
# python3 (install.sh edits CNI config as JSON), procps.
PKGS=libbpf1,libssl3,libjson-c5,libyaml-0-2,libelf1,zlib1g,libnl-3-200,libnl-route-3-200,iptables,iproute2,python3,procps,ca-certificates
BINS=(userspace/agent/meshspliced userspace/cli/meshsplice userspace/cni/meshsplice-cni)

for b in "${BINS[@]}"; do
	[ -x "$BUILD/$b" ] || { echo "build-image: $BUILD/$b missing: run scripts/build.sh first" >&2; exit 1; }
done
# podman and buildah both take --root and --runroot before the command;
# podman's own run-time files go to --tmpdir (else /run/libpod)
STORE=()
[ -n "$STORAGE" ] && STORE=(--root "$STORAGE/root" --runroot "$STORAGE/run")
if command -v podman >/dev/null; then
	[ -n "$STORAGE" ] && STORE+=(--tmpdir "$STORAGE/tmp")
	BUILDER=(podman "${STORE[@]}" build)
elif command -v buildah >/dev/null; then
	BUILDER=(buildah "${STORE[@]}" bud)
else
	BUILDER=()
fi
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

# The Debian root, or the cached one made from the same inputs. Only a
# complete root is cached: the tar is renamed into place last.
KEY="bookworm minbase slim $MIRROR $PKGS"
if [ -n "$CACHE" ] && [ -f "$CACHE/rootfs.tar" ] && [ "$(cat "$CACHE/rootfs.key" 2>/dev/null)" = "$KEY" ]; then
	echo "build-image: Debian root from $CACHE/rootfs.tar"
	[ "$DRY" = 1 ] || ln -f "$CACHE/rootfs.tar" "$CTX/rootfs.tar" 2>/dev/null || cp "$CACHE/rootfs.tar" "$CTX/rootfs.tar"
else
	run debootstrap --variant=minbase --include="$PKGS" bookworm "$CTX/root" "$MIRROR"
	# no apt lists, translations, manuals or docs (the copyright files stay),
	# and dpkg told to leave them out of any later install, as Debian's slim
	# images do: 188 MB became 139 MB
	run chroot "$CTX/root" sh -c 'apt-get clean && rm -rf /var/lib/apt/lists/* &&
		printf "path-exclude /usr/share/%s/*\n" locale man info doc >/etc/dpkg/dpkg.cfg.d/meshsplice-slim &&
		echo "path-include /usr/share/doc/*/copyright" >>/etc/dpkg/dpkg.cfg.d/meshsplice-slim &&
		rm -rf /usr/share/locale/* /usr/share/man/* /usr/share/info/* &&
		find /usr/share/doc -type f ! -name copyright -delete && find /usr/share/doc -type l -delete &&
		find /usr/share/doc -mindepth 1 -type d -empty -delete'
	run tar -C "$CTX/root" --numeric-owner -cf "$CTX/rootfs.tar" .
	run rm -rf "$CTX/root"
	if [ -n "$CACHE" ] && [ "$DRY" = 0 ]; then
		mkdir -p "$CACHE"
		rm -f "$CACHE/rootfs.key"
		cp "$CTX/rootfs.tar" "$CACHE/rootfs.tar.tmp" && mv "$CACHE/rootfs.tar.tmp" "$CACHE/rootfs.tar"
		echo "$KEY" >"$CACHE/rootfs.key"
		echo "build-image: Debian root cached in $CACHE"
	fi
fi
# RUN needs no network: install.sh only copies files
run "${BUILDER[@]:-podman build}" --network none "$@" -f deploy/Containerfile -t "$TAG" "$CTX"
echo "build-image: $TAG built; run it with: ${BUILDER[0]:-podman} ${STORE[*]} run --rm $TAG --version"
