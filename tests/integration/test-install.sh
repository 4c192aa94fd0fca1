#!/bin/bash
# SPDX-License-Identifier: MIT
# scripts/install.sh into staging roots (DESTDIR), never the machine's own
# dirs: binaries, unit, man pages, completion, a manifest; the CNI file the
# runtime loads edited as JSON (our entry added once, removed exactly, the
# rest unchanged; a single-plugin .conf converted and restored); --uninstall
# removes what the manifest lists and nothing else.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MS_BUILD_DIR:-$SRC/build}
INSTALL=$SRC/scripts/install.sh
T=$(mktemp -d /tmp/ms-install.XXXX)
trap 'rm -rf "$T"' EXIT
PASS=0
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; PASS=$((PASS + 1)); }
tree() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort); }
# the JSON of two files is equal
same_json() { python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2"; }
bridge_conflist() {
	cat <<'JSON'
{
    "cniVersion": "1.0.0",
    "name": "k8s-pod-network",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local", "subnet": "198.18.0.0/16"}},
        {"type": "portmap", "capabilities": {"portMappings": true}}
    ]
}
JSON
}

# 1. --root (DESTDIR's old name), twice, then --uninstall: the conflist chains
# us once and comes back as it was.
mkdir -p "$T/root/etc/cni/net.d"
bridge_conflist >"$T/root/etc/cni/net.d/10-bridge.conflist"
cp "$T/root/etc/cni/net.d/10-bridge.conflist" "$T/orig.json"
"$INSTALL" --root "$T/root" --build-dir "$BUILD" >/dev/null || fail "install"
"$INSTALL" --root "$T/root" --build-dir "$BUILD" >/dev/null || fail "install twice"
for f in usr/local/sbin/meshspliced usr/local/bin/meshsplice opt/cni/bin/meshsplice-cni \
	etc/systemd/system/meshspliced.service usr/local/share/meshsplice/manifest \
	usr/local/share/bash-completion/completions/meshsplice usr/local/share/zsh/site-functions/_meshsplice \
	usr/local/share/man/man8/meshsplice.8 usr/local/share/man/man8/meshspliced.8 \
	usr/local/share/man/man8/meshsplice-cni.8; do
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
grep -q '^ExecStart=/usr/local/sbin/meshspliced ' "$T/root/etc/systemd/system/meshspliced.service" || fail "unit's ExecStart"
grep -q "$T" "$T/root/etc/systemd/system/meshspliced.service" && fail "the staging root written into the unit"
[ "$(grep -c '' "$T/root/usr/local/share/meshsplice/manifest")" = "$(sort -u "$T/root/usr/local/share/meshsplice/manifest" | grep -c '')" ] ||
	fail "manifest has duplicates after a second install"
"$INSTALL" --root "$T/root" --uninstall >/dev/null || fail "uninstall"
same_json "$T/root/etc/cni/net.d/10-bridge.conflist" "$T/orig.json" || fail "conflist not restored"
[ "$(tree "$T/root")" = "$(printf '%s\n' ./etc ./etc/cni ./etc/cni/net.d ./etc/cni/net.d/10-bridge.conflist)" ] ||
	fail "uninstall left: $(tree "$T/root" | tr '\n' ' ')"
ok "--root, twice, --uninstall: chained once, conflist restored, nothing left"

# 2. DESTDIR and PREFIX from the environment (a package build): files under
# DESTDIR/usr, the unit in /usr/lib/systemd/system, paths inside without DESTDIR.
mkdir -p "$T/pkg/etc/cni/net.d"
bridge_conflist >"$T/pkg/etc/cni/net.d/10-bridge.conflist"
DESTDIR=$T/pkg PREFIX=/usr "$INSTALL" --build-dir "$BUILD" >/dev/null || fail "DESTDIR install"
for f in usr/sbin/meshspliced usr/bin/meshsplice usr/lib/systemd/system/meshspliced.service \
	usr/share/meshsplice/manifest usr/share/bash-completion/completions/meshsplice usr/share/man/man8/meshspliced.8; do
	[ -f "$T/pkg/$f" ] || fail "DESTDIR: $f not installed"
done
[ ! -e "$T/pkg/usr/local" ] && [ ! -e "$T/pkg/etc/systemd" ] || fail "DESTDIR: something went to the default prefix"
grep -q '^ExecStart=/usr/sbin/meshspliced ' "$T/pkg/usr/lib/systemd/system/meshspliced.service" || fail "DESTDIR: ExecStart"
grep -q "$T" "$T/pkg/usr/share/meshsplice/manifest" && fail "DESTDIR written into the manifest"
grep -qx 'f /usr/sbin/meshspliced' "$T/pkg/usr/share/meshsplice/manifest" || fail "manifest lacks /usr/sbin/meshspliced"
ok "DESTDIR and PREFIX from the environment: staged under DESTDIR, paths inside are PREFIX's"

# 3. --uninstall removes only what the manifest lists: an admin's config in
# /etc/meshsplice and a foreign binary beside ours stay (control: ours go).
echo 'kind: Mesh' >"$T/pkg/etc/meshsplice/mesh.yaml"
echo foreign >"$T/pkg/usr/bin/other-tool"
DESTDIR=$T/pkg PREFIX=/usr "$INSTALL" --uninstall >/dev/null || fail "DESTDIR uninstall"
[ -f "$T/pkg/etc/meshsplice/mesh.yaml" ] && [ -f "$T/pkg/usr/bin/other-tool" ] || fail "uninstall removed a file it did not install"
[ ! -e "$T/pkg/usr/sbin/meshspliced" ] && [ ! -e "$T/pkg/usr/bin/meshsplice" ] && [ ! -e "$T/pkg/usr/share/meshsplice" ] ||
	fail "uninstall left its own files"
python3 -c 'import json,sys; assert [p["type"] for p in json.load(open(sys.argv[1]))["plugins"]] == ["bridge", "portmap"]' \
	"$T/pkg/etc/cni/net.d/10-bridge.conflist" || fail "DESTDIR uninstall: still chained"
ok "--uninstall: ours removed, the admin's config and a foreign file kept"

# 4. The runtime's file is the lexicographically first of *.conf, *.conflist,
# *.json: a single-plugin 05-flannel.conf before 10-bridge.conflist is
# converted (flannel then us), renamed aside, and restored byte for byte;
# the conflist the runtime does not load is left alone (its control).
mkdir -p "$T/conv/etc/cni/net.d"
D=$T/conv/etc/cni/net.d
bridge_conflist >"$D/10-bridge.conflist"
printf '{\n  "cniVersion": "0.4.0",\n  "name": "cbr0",\n  "type": "flannel",\n  "delegate": {"hairpinMode": true}\n}\n' >"$D/05-flannel.conf"
cp "$D/05-flannel.conf" "$T/flannel.orig"
cp "$D/10-bridge.conflist" "$T/bridge.orig"
"$INSTALL" --root "$T/conv" --cni-only --build-dir "$BUILD" >/dev/null || fail "install (.conf)"
[ ! -e "$D/05-flannel.conf" ] && cmp -s "$D/05-flannel.conf.meshsplice-orig" "$T/flannel.orig" || fail ".conf not renamed aside"
python3 - "$D/05-flannel.conflist" <<'PY' || fail "converted conflist"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["cniVersion"] == "0.4.0" and c["name"] == "cbr0", c
assert [p["type"] for p in c["plugins"]] == ["flannel", "meshsplice-cni"], c
assert c["plugins"][0] == {"type": "flannel", "delegate": {"hairpinMode": True}}, c
PY
cmp -s "$D/10-bridge.conflist" "$T/bridge.orig" || fail "a conflist the runtime does not load was edited"
[ "$(cd "$D" && ls *.conf *.conflist *.json 2>/dev/null | LC_ALL=C sort | head -n1)" = 05-flannel.conflist ] ||
	fail "the runtime would not load the converted conflist first"
"$INSTALL" --root "$T/conv" --cni-only --build-dir "$BUILD" >/dev/null || fail "install again (.conf)"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["plugins"]))' "$D/05-flannel.conflist")" = 2 ] ||
	fail "chained twice"
"$INSTALL" --root "$T/conv" --cni-only --uninstall >/dev/null || fail "uninstall (.conf)"
cmp -s "$D/05-flannel.conf" "$T/flannel.orig" && [ ! -e "$D/05-flannel.conflist" ] && [ ! -e "$D/05-flannel.conf.meshsplice-orig" ] ||
	fail ".conf not restored"
cmp -s "$D/10-bridge.conflist" "$T/bridge.orig" || fail "10-bridge.conflist changed"
# --cni-only: the chaining only; the plugin the manifest lists stays
[ -f "$T/conv/opt/cni/bin/meshsplice-cni" ] || fail "--cni-only --uninstall removed the plugin"
ok "first file a .conf: converted to a conflist, original aside, restored at uninstall (--cni-only: the plugin stays); the later conflist untouched"

# 5. A .json in conflist form first ("00-a.json" < "10-bridge.conflist"): chained in place.
bridge_conflist >"$D/00-a.json"
"$INSTALL" --root "$T/conv" --cni-only --build-dir "$BUILD" >/dev/null || fail "install (.json)"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["plugins"][-1]["type"] == "meshsplice-cni"' "$D/00-a.json" ||
	fail ".json conflist not chained"
grep -q meshsplice "$D/05-flannel.conf" "$D/10-bridge.conflist" && fail "a file after the first was chained"
# 6. No manifest (a container's install-cni: it went with the container): the
# CNI chaining is still undone, found by our entry.
rm "$T/conv/usr/local/share/meshsplice/manifest"
"$INSTALL" --root "$T/conv" --cni-only --uninstall >/dev/null || fail "uninstall without manifest"
same_json "$D/00-a.json" "$T/bridge.orig" || fail "no manifest: .json still chained"
[ -f "$T/conv/opt/cni/bin/meshsplice-cni" ] || fail "no manifest: a file was removed without being listed"
ok ".json conflist first: chained in place; without a manifest uninstall unchains and removes no file"

# 7. An empty conf dir: nothing to chain, said, not an error.
mkdir -p "$T/empty/etc/cni/net.d"
out=$("$INSTALL" --root "$T/empty" --cni-only --build-dir "$BUILD") || fail "install (no CNI config)"
grep -q 'no \*.conf' <<<"$out" || fail "no CNI config not said"
ok "no CNI config yet: said, installs the plugin"

echo "$PASS passed, 0 failed"
