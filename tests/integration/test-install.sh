#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/install.sh into a staging root: binaries, unit, and the conflist
# edited as JSON (our entry added once, removed exactly, the rest unchanged).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MS_BUILD_DIR:-$SRC/build}
T=$(mktemp -d /tmp/ms-install.XXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/root/etc/cni/net.d"
cat >"$T/root/etc/cni/net.d/10-bridge.conflist" <<'JSON'
{
    "cniVersion": "1.0.0",
    "name": "k8s-pod-network",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "198.18.0.0/16"}},
        {"type": "portmap", "capabilities": {"portMappings": true}}
    ]
}
JSON
cp "$T/root/etc/cni/net.d/10-bridge.conflist" "$T/orig.json"
fail() { echo "FAIL: $*"; exit 1; }
"$SRC/scripts/install.sh" --root "$T/root" --build-dir "$BUILD" || fail "install"
"$SRC/scripts/install.sh" --root "$T/root" --build-dir "$BUILD" || fail "install twice"
for f in usr/local/sbin/meshspliced usr/local/bin/meshsplice opt/cni/bin/meshsplice-cni etc/systemd/system/meshspliced.service; do
	[ -f "$T/root/$f" ] || fail "$f not installed"
done
python3 - "$T/root/etc/cni/net.d/10-bridge.conflist" "$T/orig.json" <<'PY' || fail "conflist"
import json, sys
new, orig = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
types = [p["type"] for p in new["plugins"]]
assert types == ["bridge", "portmap", "meshsplice-cni"], types
assert new["plugins"][:2] == orig["plugins"] and {k: v for k, v in new.items() if k != "plugins"} == \
    {k: v for k, v in orig.items() if k != "plugins"}
PY
"$SRC/scripts/install.sh" --root "$T/root" --uninstall || fail "uninstall"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))' \
	"$T/root/etc/cni/net.d/10-bridge.conflist" "$T/orig.json" || fail "conflist not restored"
[ ! -e "$T/root/usr/local/sbin/meshspliced" ] && [ ! -e "$T/root/opt/cni/bin/meshsplice-cni" ] || fail "files left"
echo "install, install again, uninstall: conflist restored, nothing left"
echo "1 passed, 0 failed"
