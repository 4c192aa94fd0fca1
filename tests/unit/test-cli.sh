#!/bin/bash
# SPDX-License-Identifier: MIT
# The CLI's contract, without root or an agent: every command has --help
# (and runs nothing then), version, and the exit codes 0 ok, 1 problems
# found, 2 usage.
set -uo pipefail
CLI=$1
EXAMPLES=$2
passed=0
failed=0

# expect RC DESCRIPTION CMD...: the exit status, and the output kept for a failure
expect() {
	local want=$1 what=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL $what: exit $rc, expected $want: $*"
		echo "$out" | head -5 | sed 's/^/    /'
	fi
}

# every command the help lists answers --help with its own usage
cmds=$("$CLI" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ && on { on = 0 }')
[ "$(echo "$cmds" | wc -w)" -ge 14 ] || { echo "FAIL: only $(echo $cmds) in the help"; exit 1; }
for c in $cmds; do
	expect 0 "$c --help" "$CLI" "$c" --help
	"$CLI" "$c" -h | head -1 | grep -q "^Usage: meshsplice \[GLOBAL OPTIONS\] $c" ||
		{ failed=$((failed + 1)); echo "FAIL $c -h: no usage line for $c"; }
done
# --help is help, not a file to read; a file of that name still is one
expect 0 "validate --help reads no file" "$CLI" validate --help
expect 1 "validate ./--help is a (missing) file" "$CLI" validate ./--help
expect 0 "help COMMAND" "$CLI" help enable
expect 2 "help for an unknown command" "$CLI" help nosuch

expect 0 "version" "$CLI" version
expect 0 "--version" "$CLI" --version
"$CLI" version | head -1 | grep -qE '^meshsplice [0-9]+\.[0-9]+\.[0-9]+ \(commit [^)]+\)$' ||
	{ failed=$((failed + 1)); echo "FAIL version line: $("$CLI" version | head -1)"; }
"$CLI" --version | grep -q '^libbpf .*OpenSSL' ||
	{ failed=$((failed + 1)); echo "FAIL no library versions in --version"; }

expect 0 "valid examples" "$CLI" validate "$EXAMPLES"
expect 1 "invalid examples: problems found" "$CLI" validate "$EXAMPLES/invalid"
expect 2 "validate without a path" "$CLI" validate
expect 2 "unknown command" "$CLI" nosuch
expect 2 "no command" "$CLI"
expect 2 "bad -o" "$CLI" -o xml validate "$EXAMPLES"
expect 2 "bad option of a command" "$CLI" pods --nosuch
expect 2 "iptables: bad port" "$CLI" iptables render --port abc
expect 0 "iptables render needs no root" "$CLI" iptables render
expect 1 "no agent: a problem, not a usage error" "$CLI" --control /nonexistent/agent.sock pods
expect 1 "global options after the command too" "$CLI" pods --control /nonexistent/agent.sock

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
