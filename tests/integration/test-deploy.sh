#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/: the agent container's entrypoint (the host's cgroup v2 found on a
# pure and a hybrid host, refused on neither; SIGTERM passed on; the CNI
# plugin unchained only with MESHSPLICE_CNI_UNINSTALL=true, its control
# without), the image recipe's inputs (build-image.sh --dry-run makes every
# file the Containerfile copies), and the DaemonSet's fields as YAML (what
# "works as shipped" needs). kubectl's own check is test-k8s-manifest.sh.
# Mounts only in its temp dir (a cgroup2 and tmpfs), removed on exit.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MS_BUILD_DIR:-$SRC/build}
EP=$SRC/deploy/entrypoint.sh
[ "$(id -u)" = 0 ] || { echo "needs root (mounts)"; exit 77; }
T=$(mktemp -d /tmp/ms-deploy.XXXX)
cleanup() {
	for m in "$T/hybrid/unified" "$T/hybrid" "$T/pure" "$T/none"; do mountpoint -q "$m" && umount "$m"; done
	rm -rf "$T"
}
trap cleanup EXIT
PASS=0 FAIL=0
check() {
	local name=$1
	shift
	if out=$("$@" 2>&1); then
		PASS=$((PASS + 1))
		echo "PASS $name: $(tail -1 <<<"$out")"
	else
		FAIL=$((FAIL + 1))
		echo "FAIL $name"
		sed 's/^/    /' <<<"$out" | tail -15
	fi
}

mkdir -p "$T/pure" "$T/hybrid" "$T/none"
mount -t cgroup2 none "$T/pure"
mount -t tmpfs none "$T/hybrid" && mkdir "$T/hybrid/unified" && mount -t cgroup2 none "$T/hybrid/unified"
mount -t tmpfs none "$T/none"

case_cgroup() { # HOST_CGROUP EXPECTED (empty: refused)
	local got rc
	got=$(MESHSPLICE_HOST_CGROUP=$1 "$EP" --print-cgroup 2>&1)
	rc=$?
	if [ -z "$2" ]; then
		[ $rc = 1 ] && grep -q 'no cgroup v2' <<<"$got" || { echo "rc $rc: $got"; return 1; }
		echo "refused: $got"
	else
		[ $rc = 0 ] && [ "$got" = "$2" ] || { echo "rc $rc: got '$got', want '$2'"; return 1; }
		echo "$got"
	fi
}
check "entrypoint: pure cgroup v2 host" case_cgroup "$T/pure" "$T/pure"
check "entrypoint: hybrid host (unified)" case_cgroup "$T/hybrid" "$T/hybrid/unified"
check "entrypoint: no cgroup v2 (control)" case_cgroup "$T/none" ""

# A stand-in agent: records its arguments and the signal it got, exits 0.
cat >"$T/fake-agent" <<'SH'
#!/bin/bash
echo "$*" >"$FAKE_OUT.args"
trap 'echo TERM >"$FAKE_OUT.sig"; exit 0' TERM
while :; do sleep 0.05; done
SH
chmod +x "$T/fake-agent"
case_stop() { # UNINSTALL(true|false) CHAINED-AFTER(yes|no)
	local d=$T/cni-$1 pid rc
	mkdir -p "$d/conf" "$d/bin"
	printf '{"cniVersion": "1.0.0", "name": "k8s", "plugins": [{"type": "bridge"}]}\n' >"$d/conf/10-bridge.conflist"
	DESTDIR= "$SRC/scripts/install.sh" --cni-only --build-dir "$BUILD" --prefix "$d/prefix" \
		--cni-bin-dir "$d/bin" --cni-conf-dir "$d/conf" >/dev/null || return 1
	grep -q meshsplice-cni "$d/conf/10-bridge.conflist" || { echo "not chained by install-cni"; return 1; }
	# the container's manifest is not there: it went with install-cni's container
	rm -rf "$d/prefix"
	FAKE_OUT=$d/agent MESHSPLICE_HOST_CGROUP=$T/pure MESHSPLICE_AGENT=$T/fake-agent MESHSPLICE_INSTALL=$SRC/scripts/install.sh MESHSPLICE_CNI_UNINSTALL=$1 \
		MESHSPLICE_CNI_BIN_DIR=$d/bin MESHSPLICE_CNI_CONF_DIR=$d/conf "$EP" --config-dir /etc/meshsplice >"$d/ep.out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do [ -f "$d/agent.args" ] && break; sleep 0.05; done
	kill -TERM $pid
	wait $pid
	rc=$?
	[ $rc = 0 ] || { echo "entrypoint exit $rc: $(cat "$d/ep.out")"; return 1; }
	[ "$(cat "$d/agent.args")" = "--cgroup $T/pure --config-dir /etc/meshsplice" ] || { echo "args: $(cat "$d/agent.args")"; return 1; }
	[ "$(cat "$d/agent.sig" 2>/dev/null)" = TERM ] || { echo "SIGTERM not passed on"; return 1; }
	if grep -q meshsplice-cni "$d/conf/10-bridge.conflist"; then
		[ "$2" = yes ] || { echo "still chained: $(cat "$d/ep.out")"; return 1; }
	else
		[ "$2" = no ] || { echo "unchained on a plain stop"; return 1; }
	fi
	echo "SIGTERM passed on, exit 0, CNI chained after: $2"
}
check "entrypoint: a stop (upgrade) keeps the CNI plugin chained" case_stop false yes
check "entrypoint: MESHSPLICE_CNI_UNINSTALL=true unchains" case_stop true no

case_image_inputs() {
	"$SRC/deploy/build-image.sh" --dry-run --build-dir "$BUILD" --keep "$T/ctx" >"$T/dry.out" || { cat "$T/dry.out"; return 1; }
	python3 - "$SRC/deploy/Containerfile" "$T/ctx" "$T/dry.out" <<'PY'
import os, re, sys
cf, ctx, dry = open(sys.argv[1]).read(), sys.argv[2], open(sys.argv[3]).read()
srcs = [l.split()[1] for l in cf.splitlines() if re.match(r"(ADD|COPY) ", l)]
assert srcs == ["rootfs.tar", "meshsplice"], srcs
assert "rootfs.tar" in dry and "debootstrap --variant=minbase" in dry and " bookworm " in dry, dry
for p in ["meshsplice/scripts/install.sh", "meshsplice/deploy/entrypoint.sh", "meshsplice/deploy/meshspliced.service",
          "meshsplice/build/userspace/agent/meshspliced", "meshsplice/build/userspace/cni/meshsplice-cni"]:
    assert os.path.exists(os.path.join(ctx, p)), p
print("Containerfile's sources staged; debootstrap bookworm, then", dry.splitlines()[-2].split(": ", 1)[1].split()[0])
PY
}
check "image recipe: build-image.sh --dry-run stages what the Containerfile copies" case_image_inputs

case_manifest() {
	python3 - "$SRC/deploy/meshsplice-daemonset.yaml" "$SRC" <<'PY'
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
src = sys.argv[2]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
assert ds["apiVersion"] == "apps/v1" and ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
pod = ds["spec"]["template"]["spec"]
assert pod["hostNetwork"] and pod["hostPID"]
vols = {v["name"]: v for v in pod["volumes"]}
init = pod["initContainers"][0]
agent = next(c for c in pod["containers"] if c["name"] == "agent")
def image_path(p):  # /opt/meshsplice/X is the repository's X in the image
    assert p.startswith("/opt/meshsplice/"), p
    assert os.access(os.path.join(src, p[len("/opt/meshsplice/"):]), os.X_OK), p
image_path(init["command"][0]); image_path(agent["command"][0])
assert "--cni-only" in init["command"] and "--uninstall" not in init["command"]
# no unchaining at a stop: no preStop running an uninstall
assert "--uninstall" not in str(agent.get("lifecycle", {})), agent.get("lifecycle")
env = {e["name"]: e for e in agent["env"]}
assert env["MESHSPLICE_CNI_UNINSTALL"]["value"] == "false"
# cgroups: the host's hierarchy where the entrypoint looks for it
cg = next(m for m in agent["volumeMounts"] if m["name"] == "cgroup")
assert cg["mountPath"] == env["MESHSPLICE_HOST_CGROUP"]["value"] and vols["cgroup"]["hostPath"]["path"] == "/sys/fs/cgroup"
assert cg.get("mountPropagation") == "HostToContainer"
bpf = next(m for m in agent["volumeMounts"] if m["name"] == "bpffs")
assert bpf["mountPath"] == "/sys/fs/bpf" and bpf["mountPropagation"] == "Bidirectional"
# metrics on the node's address only with the explicit flag; probes on that port
args = agent["args"]
m = args[args.index("--metrics") + 1]
host, port = m.rsplit(":", 1)
assert host == "$(NODE_IP)" and "--metrics-allow-remote" in args and env["NODE_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    g = agent[probe]["httpGet"]
    assert g["path"] == path and str(g["port"]) == port, (probe, g)
assert pod["terminationGracePeriodSeconds"] > 30  # the default --drain-timeout
for c in [init, agent]:
    for vm in c["volumeMounts"]:
        assert vm["name"] in vols, vm
print("DaemonSet: %d volumes, probes %s and %s on :%s, CNI uninstall off by default" % (len(vols), "/healthz", "/readyz", port))
PY
}
check "DaemonSet fields (YAML)" case_manifest

case_manifest_args() {
	# the agent takes the DaemonSet's args (NODE_IP as a test address, the
	# config dir made here): parsed with --help after them, which exits 0
	python3 - "$SRC/deploy/meshsplice-daemonset.yaml" <<'PY' >"$T/args"
import sys, yaml
ds = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet"][0]
a = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "agent")["args"]
print("\n".join(x.replace("$(NODE_IP)", "198.18.0.1") for x in a))
PY
	mapfile -t args <"$T/args"
	"$BUILD/userspace/agent/meshspliced" "${args[@]}" --help >/dev/null || { echo "args refused: ${args[*]}"; return 1; }
	echo "meshspliced ${args[*]}: accepted"
}
check "the DaemonSet's agent args parse" case_manifest_args
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
