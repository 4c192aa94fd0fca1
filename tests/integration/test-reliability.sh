#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults, slow peers and hostile clients of the agent (a first part of the
# reliability issue): each case is a promise in docs/SECURITY.md.
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
# The forwarder's own reliability (timeouts, reloads under load): its VIPs
# take the proxy path.
mes() { mes_yaml "$1" "$2" "$3" "$4" proxy >"$T/conf/$1.yaml"; } # name vip address port
mes echo 242.0.0.10 198.18.3.2 8080
mes blackhole 242.0.0.11 198.18.3.99 80 # routed to the outside netns, no such host: SYNs vanish
mes closed 242.0.0.12 198.18.3.2 8089   # nothing listens: refused at once
mes silent 242.0.0.13 198.18.3.2 8090   # reads to EOF, then says nothing and keeps the connection
# the outside netns answers nothing for 198.18.3.99 (it is not its address)
bg_out echo $PEER serve-echo 8080 || exit 1
bg_out silent $PEER serve-silent 8090 || exit 1
start_agent --idle-timeout 5000 --halfclose-timeout 4000 || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name rel/a >/dev/null || exit 1

check "50 MiB through a reader paused 3 s arrives intact (sha256)" in_pod "$NS_A" $PEER slow-reader 242.0.0.10 80 50 3
case_memory_bounded() {
	local rss0 rss1
	rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")
	in_pod "$NS_A" $PEER slow-reader 242.0.0.10 80 20 2 >/dev/null || return 1
	rss1=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status")
	echo "agent RSS $rss0 → $rss1 KiB while 20 MiB waited on a paused reader (bytes wait in pipes and socket buffers, not in the agent)"
	case ${MS_SANITIZED:-none} in none | "") [ $((rss1 - rss0)) -lt 4096 ] ;; *) true ;; esac
}
check "bounded agent memory behind a paused reader" case_memory_bounded
case_no_spin() {
	# while the reader is paused, every buffer is full: the agent must sleep, not retry EAGAIN
	in_pod "$NS_A" $PEER slow-reader 242.0.0.10 80 20 4 >"$T/spin.out" 2>&1 &
	local reader=$! c0 c1 ticks
	ticks=$(getconf CLK_TCK)
	sleep 1.5
	c0=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
	sleep 2
	c1=$(awk '{print $14 + $15}' "/proc/$AGENT_PID/stat")
	wait $reader || { cat "$T/spin.out"; return 1; }
	echo "agent CPU over 2 s of a paused reader: $(((c1 - c0) * 1000 / ticks)) ms; $(cat "$T/spin.out")"
	[ $(((c1 - c0) * 1000 / ticks)) -lt 200 ]
}
check "no EAGAIN spin behind a paused reader" case_no_spin
check "a destination equal to the pod's own listener port on its address is refused, no loop" \
	in_pod "$NS_A" $PEER timed-refused 198.18.1.1 15001 1
check "connect timeout: a black-holed endpoint resets the client within the timeout (2 s)" \
	in_pod "$NS_A" $PEER timed-refused 242.0.0.11 80 4
check "an endpoint that refuses: the client is reset at once" in_pod "$NS_A" $PEER timed-refused 242.0.0.12 80 1
check "idle timeout (5 s) closes a silent connection" in_pod "$NS_A" $PEER idle 242.0.0.10 80 9
case_halfclosed() {
	in_pod "$NS_A" $PEER halfclosed 242.0.0.13 80 6 && [ "$(stat forwarder.halfclose_timeout)" -ge 1 ]
}
check "half-closed timeout (4 s; longer than the paused reader above): the client's FIN forwarded, a silent server, the connection closed" case_halfclosed

case_ctl_root_only() {
	local out
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CLI_BIN" --control "$CTL" status 2>&1) && return 1
	echo "$out"
	echo "$out" | grep -qE "permission denied|Permission denied"
}
check "the control socket answers root only" case_ctl_root_only

case_ctl_malformed() {
	python3 - "$CTL" <<'PY' || return 1
import json, socket, sys
def ask(raw):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    try:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (ConnectionResetError, BrokenPipeError):
        # an oversized request: the agent answers and closes with bytes unread
        return None
    return out
for raw in [b"not json\n", b"[1,2]\n", b'{"cmd": 42}\n', b'{"cmd": "bogus"}\n', b"{" * 10000 + b"\n",
            b'{"cmd": "enable", "netns": "/nonexistent"}\n', b'{"cmd": "enable", "name": "x y"}\n',
            b'{"cmd": "enable", "netns": "/proc/self/ns/net", "exclude_ports": [0]}\n', b"x" * 70000, b""]:
    r = ask(raw)
    if r and raw:
        o = json.loads(r)
        assert o["ok"] is False and o["error"], (raw[:40], o)
print("every malformed request got an error; the agent is still up")
PY
	ms status >/dev/null
}
check "malformed control requests get an error, never a crash" case_ctl_malformed

case_bad_config() {
	local before
	before=$(stat refused.no_service_at_vip)
	printf 'type: MeshExternalService\nname: broken\nspec:\n  match:\n    port: 99999\n' >"$T/conf/zz-broken.yaml"
	sleep 1
	grep -q 'zz-broken.yaml:5:11: spec.match.port: port 99999 out of range' "$T/agent.log" || return 1
	ms status | grep -q 'last_reload_error: .*zz-broken.yaml:[0-9]*:[0-9]*: ' || { ms status; return 1; }
	# the last good config is still in force
	in_pod "$NS_A" $PEER echo 242.0.0.10 80 100 || return 1
	rm "$T/conf/zz-broken.yaml"
	sleep 1
	ms status | grep -q 'last_reload_error' && return 1
	echo "broken file reported with file:line:col, old config kept, recovered when removed"
}
check "a broken file keeps the last good config and is reported; fixing it recovers" case_bad_config

case_atomic_replace() {
	in_pod "$NS_A" $PEER many 242.0.0.10 80 3000 50 2000 >"$T/many.out" 2>&1 &
	local m=$!
	for i in 1 2 3 4 5; do
		sed "s/name: echo/name: echo/" "$T/conf/echo.yaml" >"$T/conf/.echo.tmp" && mv "$T/conf/.echo.tmp" "$T/conf/echo.yaml"
		mes "extra$i" "242.0.1.$i" 198.18.3.2 8080
		sleep 0.2
	done
	wait $m || { cat "$T/many.out"; return 1; }
	cat "$T/many.out"
	[ "$(stat forwarder.reset_client)" -eq 0 ] || { echo "client resets during reloads"; return 1; }
}
check "config replaced atomically mid-traffic: no connection dropped" case_atomic_replace

check "SIGTERM: clean exit, no sanitizer report" case_clean_exit
finish
