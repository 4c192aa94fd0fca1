#!/bin/bash
# SPDX-License-Identifier: MIT
# Install meshsplice on a node: binaries, the agent's systemd unit, the CNI
# plugin in the CNI bin dir, and meshsplice-cni chained into the node's CNI
# conflist (the rest of the file kept as it is). --uninstall undoes it all.
#
#   sudo ./scripts/install.sh [--uninstall] [--root DIR] [--prefix /usr/local]
#        [--cni-bin-dir /opt/cni/bin] [--cni-conf-dir /etc/cni/net.d]
#        [--build-dir build] [--cni-only] [--no-systemd]
# --root installs into a staging tree (tests, images); nothing outside it is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT= PREFIX=/usr/local CNI_BIN=/opt/cni/bin CNI_CONF=/etc/cni/net.d BUILD=build
UNINSTALL=0 CNI_ONLY=0 SYSTEMD=1
while [ $# -gt 0 ]; do
	case $1 in
	--uninstall) UNINSTALL=1 ;;
	--root) ROOT=$2; shift ;;
	--prefix) PREFIX=$2; shift ;;
	--cni-bin-dir) CNI_BIN=$2; shift ;;
	--cni-conf-dir) CNI_CONF=$2; shift ;;
	--build-dir) BUILD=$2; shift ;;
	--cni-only) CNI_ONLY=1 ;;
	--no-systemd) SYSTEMD=0 ;;
	*) echo "install: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
R() { echo "$ROOT$1"; }
say() { echo "install: $*"; }

# The conflist to chain into: the first *.conflist in lexical order, as the
# kubelet and CRI runtimes pick it.
conflist() {
	local f
	for f in "$(R "$CNI_CONF")"/*.conflist; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# Edit the conflist as JSON: add or remove our plugin entry only. Written to
# a temp file and renamed, so a runtime never reads half a file.
edit_conflist() { # add|remove FILE
	python3 - "$1" "$2" <<'PY'
import json, os, sys
op, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    text = f.read()
conf = json.loads(text)
plugins = conf.get("plugins")
if not isinstance(plugins, list):
    sys.exit("install: %s has no plugins list" % path)
ours = [p for p in plugins if p.get("type") == "meshsplice-cni"]
if op == "add":
    if ours:
        print("install: %s already chains meshsplice-cni" % path)
        sys.exit(0)
    plugins.append({"type": "meshsplice-cni", "controlSocket": "/run/meshsplice/agent.sock",
                    "mesh": "default", "excludeNamespaces": ["kube-system"], "failOpen": False})
else:
    if not ours:
        sys.exit(0)
    conf["plugins"] = [p for p in plugins if p.get("type") != "meshsplice-cni"]
indent = 2
for line in text.splitlines()[1:]:
    stripped = line.lstrip(" ")
    if stripped and len(line) != len(stripped):
        indent = len(line) - len(stripped)
        break
tmp = path + ".meshsplice.tmp"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=indent)
    f.write("\n")
os.chmod(tmp, os.stat(path).st_mode & 0o777)
os.rename(tmp, path)
print("install: %s %s meshsplice-cni" % (path, "chains" if op == "add" else "no longer chains"))
PY
}

UNIT=$(R /etc/systemd/system/meshspliced.service)
if [ "$UNINSTALL" = 1 ]; then
	if f=$(conflist); then edit_conflist remove "$f"; fi
	if [ "$CNI_ONLY" = 0 ]; then
		if [ -z "$ROOT" ] && [ "$SYSTEMD" = 1 ] && command -v systemctl >/dev/null && [ -f "$UNIT" ]; then
			systemctl disable --now meshspliced.service || true
		fi
		[ -x "$(R "$PREFIX/sbin/meshspliced")" ] && [ -z "$ROOT" ] && "$PREFIX/sbin/meshspliced" --uninstall || true
		rm -f "$UNIT" "$(R "$PREFIX/sbin/meshspliced")" "$(R "$PREFIX/bin/meshsplice")"
	fi
	rm -f "$(R "$CNI_BIN/meshsplice-cni")"
	say "uninstalled"
	exit 0
fi

for b in userspace/agent/meshspliced userspace/cli/meshsplice userspace/cni/meshsplice-cni; do
	[ -x "$BUILD/$b" ] || { echo "install: $BUILD/$b missing: run scripts/build.sh first" >&2; exit 1; }
done
install -D -m 0755 "$BUILD/userspace/cni/meshsplice-cni" "$(R "$CNI_BIN/meshsplice-cni")"
say "CNI plugin in $(R "$CNI_BIN")"
if f=$(conflist); then
	edit_conflist add "$f"
else
	say "no *.conflist in $(R "$CNI_CONF") yet: add meshsplice-cni to it once the primary CNI writes one"
fi
[ "$CNI_ONLY" = 1 ] && exit 0
install -D -m 0755 "$BUILD/userspace/agent/meshspliced" "$(R "$PREFIX/sbin/meshspliced")"
install -D -m 0755 "$BUILD/userspace/cli/meshsplice" "$(R "$PREFIX/bin/meshsplice")"
install -d -m 0755 "$(R /etc/meshsplice)"
install -D -m 0644 /dev/stdin "$UNIT" <<UNITFILE
[Unit]
Description=meshsplice node agent (transparent proxy for pods' outbound TCP)
Documentation=file://$PWD/README.md
After=network-online.target

[Service]
ExecStart=$PREFIX/sbin/meshspliced --config-dir /etc/meshsplice --metrics 127.0.0.1:9102
Restart=always
RestartSec=1
# SIGTERM: the pods stay enabled in the pinned maps while it restarts
KillSignal=SIGTERM
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNITFILE
say "agent in $(R "$PREFIX/sbin"), unit $UNIT, config dir $(R /etc/meshsplice)"
if [ -z "$ROOT" ] && [ "$SYSTEMD" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	systemctl daemon-reload && systemctl enable --now meshspliced.service && say "meshspliced started"
else
	say "start it with: $PREFIX/sbin/meshspliced --config-dir /etc/meshsplice"
fi
