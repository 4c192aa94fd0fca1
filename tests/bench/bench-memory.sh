#!/bin/bash
# SPDX-License-Identifier: MIT
# Memory per idle proxied connection: the agent's RSS and the kernel's slab
# with 1k and 10k idle connections held through meshsplice, and haproxy 2.6
# holding the same connections in the same run. Idle connections hold no
# pipe (they come from a pool only while bytes are in flight).
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/lib-bench.sh"
# 10,000 would need about 20,050 fds in the agent (two per connection); this
# machine's hard RLIMIT_NOFILE is 20,000 and cannot be raised (no
# CAP_SYS_RESOURCE), so the default stops at 9,900. Set COUNTS where the
# limit allows.
COUNTS=${COUNTS:-"1000 9900"}
PEERS=$(dirname "$0")/peers
make_topology || exit 1
ip netns exec "$NS_A" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
cat >"$T/conf/idle.yaml" <<YAML
type: MeshExternalService
name: idle
spec:
  match:
    port: 80
    protocol: tcp
  endpoints:
    - address: 198.18.3.2
      port: 8080
status:
  vip:
    ip: 242.0.0.90
YAML
bg_out echo $PEER serve-echo 8080 || exit 1
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name bench/mem >/dev/null || exit 1
sed "s|@PORT@|18080|" "$PEERS/haproxy-idle.cfg.in" >"$T/haproxy.cfg"
ip netns exec "$NS_A" haproxy -D -f "$T/haproxy.cfg" -p "$T/haproxy.pid" || exit 1

rss_kib() { awk '/VmRSS/ { s += $2 } END { print s }' $(for p in "$@"; do echo "/proc/$p/status"; done); }
slab_kib() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
# hold N connections to host:port from pod A; prints "held N" once all echo
hold() { # how(proxied|plain) n host port
	local run=(in_pod "$NS_A")
	[ "$1" = plain ] && run=(ip netns exec "$NS_A")
	"${run[@]}" python3 -c '
import resource, socket, struct, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    # closed with a reset when the holder is killed: no half-closed
    # connection lingers in the proxy into the next count
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    socks.append(s)
print("held", n, flush=True)
time.sleep(3600)' "$2" "$3" "$4" "ms-hold-$ID" >"$T/hold.out" 2>&1 &
	HOLDER=$!
	for _ in $(seq 600); do grep -q held "$T/hold.out" && return 0; kill -0 $HOLDER 2>/dev/null || break; sleep 0.1; done
	cat "$T/hold.out"
	return 1
}
release() { # pids: wait until they have let go of the connections
	local p
	# the python under in_pod, not only the shell that started it
	pkill -f -- "ms-hold-$ID"
	kill "$HOLDER" 2>/dev/null
	wait "$HOLDER" 2>/dev/null
	for _ in $(seq 100); do
		[ "$(for p in "$@"; do ls "/proc/$p/fd"; done | wc -l)" -lt 200 ] && break
		sleep 0.1
	done
	sleep 1
}

HAP_PIDS=$(cat "$T/haproxy.pid")
printf "%-10s %-12s %14s %14s %16s %10s\n" conns proxy "RSS +KiB" "B/conn (RSS)" "slab B/conn" fds
printf "%-10s %-12s %14s\n" 0 meshsplice "$(rss_kib $AGENT_PID) (RSS)" 0 haproxy "$(rss_kib $HAP_PIDS) (RSS)"
for n in $COUNTS; do
	for who in meshsplice haproxy; do
		if [ $who = meshsplice ]; then pids=$AGENT_PID; how=proxied; host=242.0.0.90; port=80
		else pids=$HAP_PIDS; how=plain; host=127.0.0.1; port=18080; fi
		r0=$(rss_kib $pids)
		s0=$(slab_kib)
		hold $how "$n" $host $port || { echo "could not hold $n connections through $who"; exit 1; }
		sleep 1
		r1=$(rss_kib $pids)
		s1=$(slab_kib)
		fds=$(for p in $pids; do ls "/proc/$p/fd"; done | wc -l)
		release $pids
		printf "%-10s %-12s %14s %14s %16s %10s\n" "$n" $who $((r1 - r0)) $(((r1 - r0) * 1024 / n)) $(((s1 - s0) * 1024 / n)) "$fds"
		[ -n "${BENCH_CSV:-}" ] && echo "memory,idle_bytes_per_conn_at_$n,$who,$(((r1 - r0) * 1024 / n)),," >>"$BENCH_CSV"
	done
done
echo "(slab: the whole machine's, both ends of every connection: client, proxy and server sockets)"
kill "$(cat "$T/haproxy.pid")" 2>/dev/null
finish
