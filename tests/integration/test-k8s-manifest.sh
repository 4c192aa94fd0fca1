#!/bin/bash
# SPDX-License-Identifier: MIT
# deploy/meshsplice-daemonset.yaml through kubectl: `kubectl apply
# --dry-run=client --validate=false`. kubectl 1.2x asks an API server for
# the kinds even then; with none reachable, the objects are decoded by
# kubectl offline instead (`kubectl set env --local`, kubectl's own types),
# and every field of the file must survive the decoding (a misspelt or
# misplaced field is dropped by it, so it fails here). SKIP (77) without kubectl.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
M=$SRC/deploy/meshsplice-daemonset.yaml
command -v kubectl >/dev/null || { echo "kubectl not installed: skipped"; exit 77; }
# kubectl with an empty kubeconfig dials localhost:8080: in a network
# namespace of its own (loopback only), it reaches nothing of the machine's
[ "$(id -u)" -eq 0 ] || { echo "needs root for a network namespace of its own: skipped"; exit 77; }
T=$(mktemp -d /tmp/ms-k8s.XXXX)
trap 'rm -rf "$T"' EXIT
# an empty kubeconfig: never the machine's own cluster
export KUBECONFIG=$T/kubeconfig
: >"$KUBECONFIG"
if timeout 60 unshare -n kubectl apply --dry-run=client --validate=false -f "$M" >"$T/apply.out" 2>&1; then
	grep -q 'daemonset.apps/meshsplice created (dry run)' "$T/apply.out" || { echo "FAIL:"; cat "$T/apply.out"; exit 1; }
	echo "PASS kubectl apply --dry-run=client: $(tr '\n' ' ' <"$T/apply.out")"
	echo "1 passed, 0 failed"
	exit 0
fi
grep -Eq 'connection refused|unable to recognize|no such host|couldn.t get current server' "$T/apply.out" ||
	{ echo "FAIL kubectl apply --dry-run=client:"; cat "$T/apply.out"; exit 1; }
echo "kubectl apply --dry-run=client needs an API server for discovery here (none): decoding offline instead"
# set env takes objects with a pod template only: the DaemonSet's document
python3 -c 'import sys, yaml
print(yaml.safe_dump(next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "DaemonSet")))' "$M" >"$T/ds.yaml"
timeout 60 unshare -n kubectl set env --local -f "$T/ds.yaml" MESHSPLICE_CHECK=1 -o json >"$T/decoded.json" 2>"$T/decoded.err" ||
	{ echo "FAIL kubectl could not decode the manifest:"; cat "$T/decoded.err"; exit 1; }
python3 - "$M" "$T/decoded.json" <<'PY' || exit 1
import json, sys, yaml
src = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = json.load(open(sys.argv[2]))
out = out["items"] if out.get("kind") == "List" else [out]
dec = {(o["kind"], o["metadata"]["name"]): o for o in out}
missing = []
def walk(a, b, path):
    if isinstance(a, dict):
        for k, v in a.items():
            if not isinstance(b, dict) or k not in b:
                missing.append(path + "." + k)
            else:
                walk(v, b[k], path + "." + k)
    elif isinstance(a, list):
        if not isinstance(b, list) or len(b) < len(a):
            missing.append(path)
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, "%s[%d]" % (path, i))
    elif str(a) != str(b) and not (isinstance(a, bool) and str(a).lower() == str(b).lower()):
        missing.append("%s (%r became %r)" % (path, a, b))
n = 0
for d in src:
    key = (d["kind"], d["metadata"]["name"])
    if key not in dec:  # only the DaemonSet was decoded
        continue
    walk(d, dec[key], d["kind"])
    n += 1
assert n >= 1, "the DaemonSet was not decoded"
if missing:
    sys.exit("FAIL fields kubectl dropped or changed: " + ", ".join(missing))
print("PASS kubectl decoded the DaemonSet with every field kept")
PY
echo "1 passed, 0 failed"
