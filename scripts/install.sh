#!/bin/bash
# SPDX-License-Identifier: MIT
# Install meshsplice on a node: binaries, the agent's systemd unit, man pages,
# shell completion, the CNI plugin in the CNI bin dir, and meshsplice-cni
# chained into the CNI config file the runtime uses (the rest of the file kept
# as it is). Every file written is listed in a manifest, and --uninstall
# removes those and nothing else.
#
#   sudo ./scripts/install.sh [--uninstall] [--destdir DIR] [--prefix /usr/local]
#        [--cni-bin-dir /opt/cni/bin] [--cni-conf-dir /etc/cni/net.d]
#        [--unit-dir DIR] [--build-dir build] [--cni-only] [--no-systemd]
#
# DESTDIR and PREFIX may also come from the environment, as distro packaging
# passes them (options win). DESTDIR (--root is its old name) stages into a
# tree: paths written into the files are PREFIX's, nothing outside DESTDIR is
# touched and no service is started. The manifest is
# $DESTDIR$PREFIX/share/meshsplice/manifest.
#
# CNI: libcni and the CRI runtimes load the lexicographically first *.conf,
# *.conflist or *.json of the conf dir. A conflist gets our plugin appended to
# its "plugins". A single-plugin .conf (or .json) is converted, as Istio's and
# Cilium's chaining do: NAME.conflist is written with the original plugin then
# ours, and the original is renamed aside to NAME.conf.meshsplice-orig (no
# extension a runtime loads); --uninstall deletes NAME.conflist and renames the
# original back.
#
# --cni-only installs only the plugin and its chaining; with --uninstall it
# undoes only the chaining (the node's pods then start without us) and leaves
# every file, the agent and its programs as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

DESTDIR=${DESTDIR:-} PREFIX=${PREFIX:-/usr/local} CNI_BIN=/opt/cni/bin CNI_CONF=/etc/cni/net.d
BUILD=build UNITDIR= UNINSTALL=0 CNI_ONLY=0 SYSTEMD=1
while [ $# -gt 0 ]; do
	case $1 in
	--uninstall) UNINSTALL=1 ;;
	--destdir | --root) DESTDIR=$2; shift ;;
	--prefix) PREFIX=$2; shift ;;
	--cni-bin-dir) CNI_BIN=$2; shift ;;
	--cni-conf-dir) CNI_CONF=$2; shift ;;
	--unit-dir) UNITDIR=$2; shift ;;
	--build-dir) BUILD=$2; shift ;;
	--cni-only) CNI_ONLY=1 ;;
	--no-systemd) SYSTEMD=0 ;;
	-h | --help) sed -n '2,/^set -e/{/^#/s/^# \?//p}' "$0"; exit 0 ;;
	*) echo "install: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
case $PREFIX in /*) ;; *) echo "install: --prefix must be absolute" >&2; exit 2 ;; esac
# A distribution's own prefix takes the package unit dir, a local one the admin's.
[ -n "$UNITDIR" ] || if [ "$PREFIX" = /usr ]; then UNITDIR=/usr/lib/systemd/system; else UNITDIR=/etc/systemd/system; fi
R() { echo "$DESTDIR$1"; }
say() { echo "install: $*"; }
LIVE=0 # a real install on this machine: services may be started and stopped
[ -z "$DESTDIR" ] && [ "$SYSTEMD" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ] && LIVE=1

MANIFEST=$PREFIX/share/meshsplice/manifest
NEW_ENTRIES=()
# Manifest lines (paths without DESTDIR): "f PATH" a file we wrote, "d PATH" a
# directory we made, "chain PATH" our entry added to a conflist, "conv ORIG NEW"
# a .conf converted to NEW and renamed aside to ORIG.meshsplice-orig.
record() { NEW_ENTRIES+=("$*"); }
manifest_write() {
	local m old=()
	m=$(R "$MANIFEST")
	[ -f "$m" ] && mapfile -t old <"$m"
	mkd "$(dirname "$MANIFEST")"
	printf '%s\n' "${old[@]}" "${NEW_ENTRIES[@]}" "f $MANIFEST" | awk 'NF && !seen[$0]++' >"$m.tmp"
	mv "$m.tmp" "$m"
	say "manifest $m ($(wc -l <"$m") entries)"
}
put() { # MODE SRC DEST: install a file and record it, with the directories made for it
	mkd "$(dirname "$3")"
	install -m "$1" "$2" "$(R "$3")"
	record f "$3"
}
putgen() { # MODE DEST CMD...: install what CMD prints (not in a pipe: record must run here)
	local mode=$1 dest=$2 t
	shift 2
	t=$(mktemp)
	"$@" >"$t" || { rm -f "$t"; echo "install: $* failed" >&2; exit 1; }
	put "$mode" "$t" "$dest"
	rm -f "$t"
}
mkd() { # DIR: make a directory and its parents, each recorded only when it did not exist
	[ -d "$(R "$1")" ] && return 0
	[ "$1" = / ] || mkd "$(dirname "$1")"
	install -d -m 0755 "$(R "$1")"
	record d "$1"
}

# The file the runtime loads: lexicographically first of *.conf, *.conflist, *.json.
cni_conf_file() {
	local dir f
	dir=$(R "$CNI_CONF")
	[ -d "$dir" ] || return 1
	f=$(find "$dir" -maxdepth 1 -type f \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) \
		-printf '%f\n' | LC_ALL=C sort | head -n1)
	[ -n "$f" ] && echo "$dir/$f"
}

# Edit CNI config as JSON: add our entry to a conflist, convert a single
# plugin config to a conflist with our entry, or remove our entry. Written to a
# temp file and renamed, so a runtime never reads half a file.
# chain FILE | convert FILE NEWFILE | remove FILE; prints what it did, exits 3
# when there was nothing to do.
cni_edit() {
	python3 - "$@" <<'PY'
import json, os, sys
op, path = sys.argv[1], sys.argv[2]
out = sys.argv[3] if op == "convert" else path
with open(path) as f:
    text = f.read()
conf = json.loads(text)
ours = {"type": "meshsplice-cni", "controlSocket": "/run/meshsplice/agent.sock",
        "mesh": "default", "excludeNamespaces": ["kube-system"], "failOpen": False}
plugins = conf.get("plugins")
if op == "convert":
    if isinstance(plugins, list):
        sys.exit("install: %s already has a plugins list" % path)
    single = {k: v for k, v in conf.items() if k not in ("cniVersion", "name")}
    conf = {"cniVersion": conf.get("cniVersion", "0.4.0"), "name": conf.get("name", "meshsplice"),
            "plugins": [single, ours]}
elif not isinstance(plugins, list):
    sys.exit("install: %s has no plugins list" % path)
elif op == "chain":
    if any(p.get("type") == "meshsplice-cni" for p in plugins):
        sys.exit(3)
    plugins.append(ours)
else:
    if not any(p.get("type") == "meshsplice-cni" for p in plugins):
        sys.exit(3)
    conf["plugins"] = [p for p in plugins if p.get("type") != "meshsplice-cni"]
indent = 2
for line in text.splitlines()[1:]:
    stripped = line.lstrip(" ")
    if stripped and len(line) != len(stripped):
        indent = len(line) - len(stripped)
        break
tmp = out + ".meshsplice.tmp"
with open(tmp, "w") as f:
    json.dump(conf, f, indent=indent)
    f.write("\n")
os.chmod(tmp, os.stat(path).st_mode & 0o777)
os.rename(tmp, out)
PY
}

cni_chain() {
	local f new r=0
	if ! f=$(cni_conf_file); then
		say "no *.conf, *.conflist or *.json in $(R "$CNI_CONF") yet: run this again once the primary CNI writes one"
		return 0
	fi
	case $f in
	*.conflist | *.json)
		if python3 -c 'import json,sys; sys.exit(0 if isinstance(json.load(open(sys.argv[1])).get("plugins"), list) else 1)' "$f"; then
			cni_edit chain "$f" || r=$?
			case $r in
			0) say "$f chains meshsplice-cni"; record chain "${f#"$DESTDIR"}" ;;
			3) say "$f already chains meshsplice-cni" ;;
			*) return 1 ;;
			esac
			return 0
		fi
		;;
	esac
	new=${f%.*}.conflist
	[ "$new" = "$f" ] && new=$f.conflist
	cni_edit convert "$f" "$new"
	mv "$f" "$f.meshsplice-orig"
	record conv "${f#"$DESTDIR"}" "${new#"$DESTDIR"}"
	say "$f converted to $new with meshsplice-cni chained; the original kept as $f.meshsplice-orig"
}

# Undo one conversion: our conflist deleted, the original renamed back.
cni_unconvert() { # ORIG NEW (with DESTDIR)
	if [ -f "$1.meshsplice-orig" ]; then
		rm -f "$2"
		mv "$1.meshsplice-orig" "$1"
		say "$1 restored, $2 removed"
	fi
}

# Without a manifest (a container's install-cni: its manifest went with the
# container) the CNI part is still ours to undo: our entry in any conflist,
# any .meshsplice-orig beside our conversion.
cni_unchain_scan() {
	local f new
	for f in "$(R "$CNI_CONF")"/*.meshsplice-orig; do
		[ -f "$f" ] || continue
		f=${f%.meshsplice-orig}
		new=${f%.*}.conflist
		[ "$new" = "$f" ] && new=$f.conflist
		cni_unconvert "$f" "$new"
	done
	for f in "$(R "$CNI_CONF")"/*.conflist "$(R "$CNI_CONF")"/*.json; do
		[ -f "$f" ] || continue
		cni_edit remove "$f" 2>/dev/null && say "$f no longer chains meshsplice-cni"
	done
	return 0
}

if [ "$UNINSTALL" = 1 ] && [ "$CNI_ONLY" = 1 ]; then
	m=$(R "$MANIFEST")
	if [ -f "$m" ]; then
		while read -r kind a b; do
			case $kind in
			chain) [ -f "$(R "$a")" ] && { cni_edit remove "$(R "$a")" && say "$(R "$a") no longer chains meshsplice-cni" || true; } ;;
			conv) cni_unconvert "$(R "$a")" "$(R "$b")" ;;
			esac
		done <"$m"
		# what is undone leaves the manifest; the files it lists stay in it
		grep -v -e '^chain ' -e '^conv ' "$m" >"$m.tmp" || true
		mv "$m.tmp" "$m"
	else
		cni_unchain_scan
	fi
	say "the CNI chaining is undone; files, the agent and its programs are left as they are"
	exit 0
fi
if [ "$UNINSTALL" = 1 ]; then
	m=$(R "$MANIFEST")
	if [ ! -f "$m" ]; then
		say "no manifest $m: only the CNI chaining is undone (files are removed only when the manifest lists them)"
		cni_unchain_scan
		exit 0
	fi
	mapfile -t entries <"$m"
	if [ "$LIVE" = 1 ] && grep -qx "f $UNITDIR/meshspliced.service" "$m"; then
		systemctl disable --now meshspliced.service || true
	fi
	if [ -z "$DESTDIR" ] && [ -x "$PREFIX/sbin/meshspliced" ] && grep -qx "f $PREFIX/sbin/meshspliced" "$m"; then
		"$PREFIX/sbin/meshspliced" --uninstall || true
	fi
	dirs=()
	for e in "${entries[@]}"; do
		read -r kind a b <<<"$e"
		case $kind in
		f) rm -f "$(R "$a")" ;;
		d) dirs=("$a" "${dirs[@]}") ;;
		chain) [ -f "$(R "$a")" ] && { cni_edit remove "$(R "$a")" && say "$(R "$a") no longer chains meshsplice-cni" || true; } ;;
		conv) cni_unconvert "$(R "$a")" "$(R "$b")" ;;
		esac
	done
	# made by us and now empty: removed; anything someone put there stays
	for d in "${dirs[@]}"; do rmdir "$(R "$d")" 2>/dev/null || say "$(R "$d") not empty: kept"; done
	[ "$LIVE" = 1 ] && systemctl daemon-reload
	say "uninstalled (${#entries[@]} manifest entries)"
	exit 0
fi

for b in userspace/agent/meshspliced userspace/cli/meshsplice userspace/cni/meshsplice-cni; do
	[ -x "$BUILD/$b" ] || { echo "install: $BUILD/$b missing: run scripts/build.sh first" >&2; exit 1; }
done
put 0755 "$BUILD/userspace/cni/meshsplice-cni" "$CNI_BIN/meshsplice-cni"
say "CNI plugin in $(R "$CNI_BIN")"
cni_chain
if [ "$CNI_ONLY" = 1 ]; then
	manifest_write
	exit 0
fi
put 0755 "$BUILD/userspace/agent/meshspliced" "$PREFIX/sbin/meshspliced"
put 0755 "$BUILD/userspace/cli/meshsplice" "$PREFIX/bin/meshsplice"
mkd /etc/meshsplice
putgen 0644 "$UNITDIR/meshspliced.service" sed "s|@PREFIX@|$PREFIX|g" deploy/meshspliced.service
for p in docs/man/*.8; do
	[ -f "$p" ] && put 0644 "$p" "$PREFIX/share/man/man8/$(basename "$p")"
done
putgen 0644 "$PREFIX/share/bash-completion/completions/meshsplice" "$BUILD/userspace/cli/meshsplice" completion bash
putgen 0644 "$PREFIX/share/zsh/site-functions/_meshsplice" "$BUILD/userspace/cli/meshsplice" completion zsh
manifest_write
say "agent in $(R "$PREFIX/sbin"), unit $(R "$UNITDIR/meshspliced.service"), config dir $(R /etc/meshsplice)"
if [ "$LIVE" = 1 ]; then
	systemctl daemon-reload && systemctl enable --now meshspliced.service && say "meshspliced started"
else
	say "start it with: $PREFIX/sbin/meshspliced --config-dir /etc/meshsplice"
fi
