#!/bin/bash
# SPDX-License-Identifier: MIT
# Install what running needs, build, and start the agent with a demo that
# shows each headline feature, saying what it does as it goes:
#   a MeshExternalService reached by its generated hostname (mesh DNS) and by
#   VIP, served in the kernel; one with TLS origination to a local TLS server
#   (a demo CA made here); a MeshService with its Dataplane; passthrough
#   allowed, then refused after flipping the Mesh flag live; the CLI's pods,
#   conns and stats; Prometheus metrics on 127.0.0.1.
# Then it keeps the agent running (Ctrl-C stops and cleans up; MS_DEMO_SECONDS
# stops it by itself) and prints commands to try.
#
# Everything lives in namespaces, a cgroup, a bpffs and a directory of its
# own, named after this run: it never touches the node's networking, and two
# demos at once do not meet.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

[ "$(id -u)" -eq 0 ] || { echo "run: needs root (namespaces, cgroups, BPF): sudo $0" >&2; exit 1; }
./scripts/setup.sh --run
./scripts/build.sh plain

trap '' PIPE # a closed stdout must not stop the cleanup
say() { echo "run: $*" 2>/dev/null || true; }
step() { echo 2>/dev/null || true; say "== $*"; }

B=$ROOT/build
ID=$$
D=$(mktemp -d "/tmp/ms-demo-$ID.XXXX")
POD=ms-demo-$ID-pod
OUT=ms-demo-$ID-out
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
[ -n "$CG_ROOT" ] || { say "no cgroup v2 hierarchy in /proc/self/mountinfo"; exit 1; }
CG=$CG_ROOT/ms-demo-$ID
MPORT=$((20000 + ID % 20000))
AGENT=
PIDS=()

cleanup() {
	set +e
	say "stopping and cleaning up"
	[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	"$B/userspace/agent/meshspliced" --uninstall --bpffs "$D/bpffs/meshsplice" --state-dir "$D/state" \
		>/dev/null 2>&1
	umount "$D/bpffs" 2>/dev/null
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$p" 2>/dev/null; done
	sleep 0.2
	rmdir "$CG" 2>/dev/null
	ip netns del "$POD" 2>/dev/null
	ip netns del "$OUT" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT INT TERM

# in_pod CMD...: a process of the pod (its netns, the demo's cgroup, the
# pod's own resolv.conf in a private mount namespace)
in_pod() { "$D/in-pod" "$@"; }

step "topology: pod netns $POD (198.18.0.1) ── veth ── $OUT (198.18.0.2: echo :7000, TLS :8443)"
ip netns add "$POD"
ip netns add "$OUT"
ip link add "msd$ID" netns "$POD" type veth peer name "msdo$ID" netns "$OUT"
ip -n "$POD" addr add 198.18.0.1/24 dev "msd$ID"
ip -n "$OUT" addr add 198.18.0.2/24 dev "msdo$ID"
for ns in "$POD" "$OUT"; do ip -n "$ns" link set lo up; done
ip -n "$POD" link set "msd$ID" up
ip -n "$OUT" link set "msdo$ID" up
ip netns exec "$OUT" socat TCP-LISTEN:7000,fork,reuseaddr PIPE &
PIDS+=($!)
printf 'nameserver 198.18.0.2\noptions timeout:1 attempts:1\n' >"$D/resolv.conf"
cat >"$D/in-pod" <<EOF
#!/bin/sh
echo \$\$ > "$CG/cgroup.procs"
exec ip netns exec "$POD" unshare -m sh -c 'mount --bind "$D/resolv.conf" /etc/resolv.conf && exec "\$@"' sh "\$@"
EOF
chmod +x "$D/in-pod"

say "a demo CA and a certificate for secure.demo, for the TLS server"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=meshsplice-demo-ca -keyout "$D/ca.key" -out "$D/ca.pem" \
	>/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj /CN=secure.demo -keyout "$D/srv.key" -out "$D/srv.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:secure.demo\n' >"$D/san.ext"
openssl x509 -req -in "$D/srv.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 1 -extfile "$D/san.ext" \
	-out "$D/srv.pem" >/dev/null 2>&1
ip netns exec "$OUT" openssl s_server -quiet -accept 8443 -cert "$D/srv.pem" -key "$D/srv.key" -www >/dev/null 2>&1 &
PIDS+=($!)

mkdir -p "$D/conf" "$CG" "$D/bpffs" "$D/state"
mount -t bpf bpf "$D/bpffs"
mesh_yaml() { # passthrough: true|false
	cat >"$D/conf/mesh.yaml" <<YAML
type: Mesh
name: default
networking:
  outbound:
    passthrough: $1
YAML
}
mesh_yaml true
cat >"$D/conf/services.yaml" <<YAML
# Hostnames for every MeshExternalService of the mesh
type: HostnameGenerator
name: demo
mesh: default
spec:
  selector:
    meshExternalService:
      matchLabels:
        kuma.io/origin: zone
  template: "{{ .DisplayName }}.svc.meshext.local"
---
# Plaintext, an IP endpoint: served in the kernel
type: MeshExternalService
name: echo
mesh: default
spec:
  match:
    port: 7000
    protocol: tcp
  endpoints:
    - address: 198.18.0.2
      port: 7000
---
# The pod speaks plaintext; the agent originates TLS, verified against the demo CA
type: MeshExternalService
name: secure
mesh: default
spec:
  match:
    port: 80
    protocol: tcp
  endpoints:
    - address: 198.18.0.2
      port: 8443
  tls:
    enabled: true
    verification:
      serverName: secure.demo
      caCert:
        inline: $(base64 -w0 "$D/ca.pem")
---
type: MeshService
name: web
mesh: default
spec:
  selector:
    dataplaneTags:
      app: web
  ports:
    - port: 80
      targetPort: 7000
status:
  vips:
    - ip: 241.0.0.80
---
type: Dataplane
name: web-1
mesh: default
networking:
  address: 198.18.0.2
  inbound:
    - port: 7000
      tags:
        kuma.io/service: web
        app: web
YAML
"$B/userspace/cli/meshsplice" validate "$D/conf" >/dev/null || { say "the demo config does not validate"; exit 1; }

step "starting meshspliced (config $D/conf, control socket $D/agent.sock, metrics 127.0.0.1:$MPORT)"
"$B/userspace/agent/meshspliced" --config-dir "$D/conf" --cgroup "$CG" --control "$D/agent.sock" \
	--state-dir "$D/state" --bpffs "$D/bpffs/meshsplice" --metrics "127.0.0.1:$MPORT" >"$D/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do [ -S "$D/agent.sock" ] && break; sleep 0.1; done
M="$B/userspace/cli/meshsplice --control $D/agent.sock"
$M status >/dev/null || { say "the agent did not start:"; tail -5 "$D/agent.log"; exit 1; }
$M enable --netns "/var/run/netns/$POD" --name demo/pod --dns-server 198.18.0.2 >/dev/null
$M pods

step "mesh DNS: the generated hostname resolves to the service's VIP, answered by the agent"
in_pod getent hosts echo.svc.meshext.local
in_pod getent hosts secure.svc.meshext.local

step "by hostname, plaintext: rewritten to the endpoint at connect() (kernel path, no proxy)"
in_pod sh -c 'echo "hello by name" | socat -t1 - TCP:echo.svc.meshext.local:7000'
$M -o json stats | grep -o '"kernel_path": *[0-9]*'

step "TLS origination: the pod sends plaintext to the VIP, the agent speaks TLS to 198.18.0.2:8443"
in_pod sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | socat -t2 - TCP:secure.svc.meshext.local:80' | head -1
$M -o json stats | grep -o '"handshakes": *[0-9]*'

step "MeshService web (VIP from the MeshService range) → its Dataplane 198.18.0.2:7000"
in_pod sh -c "echo 'hello web' | socat -t1 - TCP:241.0.0.80:80"

step "passthrough allowed: a non-mesh destination is left alone"
in_pod sh -c 'echo "hello direct" | socat -t1 - TCP:198.18.0.2:7000'

step "the Mesh flag flipped live (passthrough: false): the same connect is refused"
mesh_yaml false
$M reload >/dev/null
if in_pod sh -c 'echo x | socat -t1 - TCP:198.18.0.2:7000' 2>"$D/refused.err"; then
	say "UNEXPECTED: passthrough still allowed"
else
	say "refused: $(grep -o 'Operation not permitted' "$D/refused.err" | head -1)"
fi
say "mesh services still work: $(in_pod sh -c 'echo still | socat -t1 - TCP:echo.svc.meshext.local:7000')"
mesh_yaml true
$M reload >/dev/null

step "what the agent knows"
$M conns
$M stats | head -40
say "metrics: $(exec 3<>"/dev/tcp/127.0.0.1/$MPORT" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
	grep -c '^meshsplice_' <&3) series on http://127.0.0.1:$MPORT/metrics"

echo 2>/dev/null || true
say "agent running. Try, from any directory:"
cat <<EOF 2>/dev/null || true
  $M status
  $M pods
  $M stats
  $M dns lookup echo.svc.meshext.local
  curl -s http://127.0.0.1:$MPORT/metrics
  sh -c 'echo \$\$ > $CG/cgroup.procs; exec ip netns exec $POD socat - TCP:198.18.0.2:7000'
EOF
say "Ctrl-C to stop (set MS_DEMO_SECONDS to stop by itself); the agent's log: $D/agent.log"
if [ -n "${MS_DEMO_SECONDS:-}" ]; then
	sleep "$MS_DEMO_SECONDS"
else
	wait "$AGENT"
fi
