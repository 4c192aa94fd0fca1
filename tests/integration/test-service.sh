#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent as a service: the NOTIFY_SOCKET readiness protocol (READY=1 only
# once the control socket answers, RELOADING=1 then READY=1 around a SIGHUP,
# STOPPING=1 at SIGTERM; abstract and path sockets; nothing sent and nothing
# failing without NOTIFY_SOCKET), log lines under journald (JOURNAL_STREAM:
# a <priority> prefix, no timestamp; control: a JOURNAL_STREAM that is not
# stderr changes nothing) and --log-format json (every line parses, no key
# material). In a cgroup, bpffs and control socket of its own (lib.sh).
. "$(dirname "$0")/lib.sh"
require_root
make_topology || exit 1
NOTIFY_PY="python3 $SRC/tests/integration/notify-listen.py"

# listen ADDR OUT: a notify listener in the background
listen() {
	$NOTIFY_PY "$1" "$CLI_BIN" "$CTL" "$2" >"$T/listen.out" 2>"$T/listen.err" &
	BG_PIDS+=($!)
	LISTEN_PID=$!
	for _ in $(seq 50); do
		grep -q ready "$T/listen.out" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "listener did not start: $(cat "$T/listen.err")"
	return 1
}
# wait_msg OUT KEY=VALUE: until the listener wrote a datagram with it
wait_msg() {
	for _ in $(seq 100); do
		python3 -c 'import json,sys
k, v = sys.argv[2].split("=", 1)
sys.exit(0 if any(json.loads(l).get(k) == v for l in open(sys.argv[1])) else 1)' "$1" "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "no $2 in $(cat "$1" 2>/dev/null)"
	return 1
}

case_notify() { # ADDR
	local out=$T/notify-$RANDOM.json
	: >"$out"
	listen "$1" "$out" || return 1
	NOTIFY_SOCKET=$1 start_agent || return 1
	wait_msg "$out" READY=1 || return 1
	python3 - "$out" <<'PY' || return 1
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert len(m) == 1 and m[0]["READY"] == "1" and m[0]["status_answered"], m
PY
	kill -HUP "$AGENT_PID"
	for _ in $(seq 100); do [ "$(grep -c READY "$out")" = 2 ] && break; sleep 0.05; done
	python3 - "$out" <<'PY' || return 1
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
assert [("RELOADING" in x, "READY" in x) for x in m] == [(False, True), (True, False), (False, True)], m
assert int(m[1]["MONOTONIC_USEC"]) > 0 and m[2]["status_answered"], m
PY
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	local rc=$?
	AGENT_PID=
	wait_msg "$out" STOPPING=1 || return 1
	kill "$LISTEN_PID"
	[ $rc = 0 ] || { echo "exit status $rc"; return 1; }
	echo "$1: READY=1 (status answered), RELOADING=1 + READY=1 at SIGHUP, STOPPING=1 at SIGTERM, exit 0"
}
check "notify, abstract socket" case_notify "@ms-notify-$ID"
check "notify, path socket" case_notify "$T/notify.sock"

case_no_notify() {
	local out=$T/notify-none.json
	: >"$out"
	listen "@ms-notify-none-$ID" "$out" || return 1
	: >"$T/agent.log"
	unset NOTIFY_SOCKET
	start_agent || return 1
	kill -HUP "$AGENT_PID"
	sleep 0.5
	stop_agent
	kill "$LISTEN_PID"
	[ ! -s "$out" ] || { echo "sent without NOTIFY_SOCKET: $(cat "$out")"; return 1; }
	! grep -q NOTIFY "$T/agent.log" || { grep NOTIFY "$T/agent.log"; return 1; }
	grep -q ready "$T/agent.log" || return 1
	echo "no NOTIFY_SOCKET: nothing sent, no warning, started and stopped"
}
check "no NOTIFY_SOCKET (control)" case_no_notify

# JOURNAL_STREAM naming the agent's stderr (the log file: start_agent appends
# to $T/agent.log), as systemd sets it
case_journal() {
	: >"$T/agent.log"
	JOURNAL_STREAM=$(command stat -c '%d:%i' "$T/agent.log") start_agent || return 1
	stop_agent
	python3 - "$T/agent.log" <<'PY' || return 1
import re, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l]
assert lines, "no log"
for l in lines:
    assert re.match(r"<[3467]>", l), l
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", l), l
assert any(l.startswith("<6>meshspliced") for l in lines), lines
PY
	echo "$(grep -c '' "$T/agent.log") lines, each <N>message, no timestamp"
}
check "journald: priority prefix, no timestamp" case_journal

case_journal_other() {
	: >"$T/agent.log"
	: >"$T/other"
	JOURNAL_STREAM=$(command stat -c '%d:%i' "$T/other") start_agent || return 1
	stop_agent
	grep -q '^<' "$T/agent.log" && { echo "prefix with another file's JOURNAL_STREAM"; return 1; }
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info ' "$T/agent.log" || return 1
	echo "JOURNAL_STREAM not stderr: timestamps, no prefix"
}
check "journald: a JOURNAL_STREAM that is not stderr (control)" case_journal_other

# --log-format json at debug: every line an object with ts, level, msg; the
# config has Secrets (TLS key and cert): neither's data in the log
case_json() {
	: >"$T/agent.log"
	cp "$SRC/examples/mes-tls-options.yaml" "$T/conf/"
	MS_LOG_LEVEL=debug start_agent --log-format json || return 1
	ms reload >/dev/null
	stop_agent
	rm "$T/conf/mes-tls-options.yaml"
	python3 - "$T/agent.log" "$SRC/examples/mes-tls-options.yaml" <<'PY' || return 1
import base64, json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) > 3, lines
for l in lines:
    o = json.loads(l)
    assert set(o) >= {"ts", "level", "msg"} and o["level"] in ("error", "warn", "info", "debug"), o
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["ts"]), o
assert any(json.loads(l)["level"] == "debug" for l in lines), "no debug line"
text = open(sys.argv[1]).read()
for data in re.findall(r"(?:data|value): (\S{40,})", open(sys.argv[2]).read()):
    pem = base64.b64decode(data).decode()
    body = "".join(pem.splitlines()[1:-1])
    for secret in (data, body[:32], body[-32:]):
        assert secret not in text, "secret in the log"
print(len(lines), "lines")
PY
}
check "--log-format json: every line parses, no secret" case_json

# The unit's LimitNOFILE carries the default --max-conns: no start-up
# warning under it; control: under 1024 the warning is there. The unit's
# formula is 6 fds a connection plus 1536; where this machine's hard limit is
# below the unit's (no CAP_SYS_RESOURCE to raise it), the same formula is
# checked at the largest --max-conns the hard limit takes.
case_nofile() { # LIMIT WARNED(0|1) [AGENT ARGS]
	local limit=$1 warned=$2
	shift 2
	: >"$T/agent.log"
	AGENT_WRAP="prlimit --nofile=$limit:$limit" start_agent "$@" || return 1
	stop_agent
	if grep -q 'RLIMIT_NOFILE is' "$T/agent.log"; then
		[ "$warned" = 1 ] || { grep 'RLIMIT_NOFILE' "$T/agent.log"; return 1; }
	else
		[ "$warned" = 0 ] || { echo "no warning under $limit"; return 1; }
	fi
	echo "LimitNOFILE=$limit $*: warning $([ "$warned" = 1 ] && echo said || echo absent)"
}
UNIT_NOFILE=$(sed -n 's/^LimitNOFILE=//p' "$SRC/deploy/meshspliced.service")
[ "$UNIT_NOFILE" = $((6 * 65536 + 512 + 1024)) ] || { echo "FAIL: LimitNOFILE $UNIT_NOFILE is not 6 * 65536 + 1536"; FAILED=$((FAILED + 1)); }
HARD=$(ulimit -Hn)
if [ "$HARD" = unlimited ] || [ "$HARD" -ge "$UNIT_NOFILE" ]; then
	check "the unit's LimitNOFILE ($UNIT_NOFILE): no start-up warning" case_nofile "$UNIT_NOFILE" 0
else
	N=$(((HARD - 1536) / 6))
	log "hard RLIMIT_NOFILE $HARD < $UNIT_NOFILE here: the unit's formula at --max-conns $N"
	check "6 * max-conns + 1536 ($((6 * N + 1536))): no start-up warning" case_nofile $((6 * N + 1536)) 0 --max-conns "$N"
fi
check "LimitNOFILE 1024: the warning (control)" case_nofile 1024 1

# http GET URL [NETNS]: "STATUS BODY"
http() {
	local pre=()
	[ -n "${2:-}" ] && pre=(ip netns exec "$2")
	"${pre[@]}" python3 -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=3)
    print(r.status, r.read().decode().strip()[:40])
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip()[:40])' "$1"
}

# Probes on the metrics listener; --metrics on a non-loopback address only
# with --metrics-allow-remote (control: refused without it, usage 2). The
# remote case runs the agent in the outside netns, bound to its 198.18.1.2.
case_probes() {
	start_agent || return 1
	local h r n
	h=$(http "http://127.0.0.1:$MPORT/healthz")
	r=$(http "http://127.0.0.1:$MPORT/readyz")
	n=$(http "http://127.0.0.1:$MPORT/nothing")
	stop_agent
	[ "$h" = "200 ok" ] && [ "$r" = "200 ready" ] && [ "${n%% *}" = 404 ] || { echo "healthz '$h' readyz '$r' other '$n'"; return 1; }
	echo "/healthz $h, /readyz $r, /nothing ${n%% *}"
}
check "/healthz and /readyz on the metrics listener" case_probes

case_remote() {
	local rc
	"$AGENT_BIN" --metrics 198.18.1.2:9102 --control "$T/none.sock" --bpffs "$BPFFS/none" --state-dir "$T/none" --cgroup "$CG" >"$T/err" 2>&1
	rc=$?
	[ $rc = 2 ] && grep -q 'metrics-allow-remote' "$T/err" || { echo "without the flag: rc $rc $(cat "$T/err")"; return 1; }
	AGENT_NETNS=$NS_O start_agent --metrics "198.18.1.2:$MPORT" --metrics-allow-remote || return 1
	local m
	m=$(http "http://198.18.1.2:$MPORT/metrics" "$NS_A")
	stop_agent
	[ "${m%% *}" = 200 ] || { echo "from pod A: $m"; return 1; }
	echo "non-loopback refused without the flag (2); with it scraped from another netns: ${m%% *}"
}
check "--metrics on a non-loopback address needs --metrics-allow-remote" case_remote

case_json_bad() {
	"$AGENT_BIN" --log-format xml >/dev/null 2>"$T/err"
	local rc=$?
	[ $rc = 2 ] && grep -q 'text or json' "$T/err" || { echo "rc $rc: $(cat "$T/err")"; return 1; }
	echo "--log-format xml: usage, 2"
}
check "--log-format xml refused" case_json_bad
finish
