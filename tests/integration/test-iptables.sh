#!/bin/bash
# SPDX-License-Identifier: MIT
# The iptables engine's own promises, per back end (nft and legacy), in a
# netns that already holds rules and routes of someone else.
source "$(dirname "$0")/lib.sh"
require_root
NS=ms-ipt-$ID
NSP=/var/run/netns/$NS
M() { "$CLI_BIN" "$@"; }
cleanup_ns() { ip netns del "$NS" 2>/dev/null; }

snapshot() { # backend → file: both families' full rulesets and the routes
	local b=$1
	{
		ip netns exec "$NS" "iptables-$b-save" | grep -v '^#'
		ip netns exec "$NS" "ip6tables-$b-save" | grep -v '^#'
		ip -n "$NS" route
		ip -n "$NS" -6 route
	} >"$2"
}

fresh_ns() { # backend: a netns with foreign rules in that back end
	local b=$1
	cleanup_ns
	ip netns add "$NS" || return 1
	ip -n "$NS" link set lo up
	ip -n "$NS" route add 198.18.200.0/24 dev lo
	ip netns exec "$NS" "iptables-$b" -t nat -A OUTPUT -p tcp --dport 9999 -j RETURN
	ip netns exec "$NS" "iptables-$b" -t nat -N FOREIGN
	ip netns exec "$NS" "iptables-$b" -t nat -A FOREIGN -d 198.18.0.0/15 -j RETURN
	ip netns exec "$NS" "iptables-$b" -A OUTPUT -p udp --dport 9 -j DROP
	ip netns exec "$NS" "ip6tables-$b" -t nat -A OUTPUT -p tcp --dport 9999 -j RETURN
}

for b in nft legacy; do
	case_roundtrip() {
		fresh_ns $b || return 1
		snapshot $b "$T/before"
		M iptables install --netns "$NSP" --exclude-port 22 || return 1
		M iptables install --netns "$NSP" --exclude-port 22 || return 1
		local jumps
		jumps=$(ip netns exec "$NS" "iptables-$b-save" -t nat | grep -c -- '-j MESHSPLICE_OUTPUT')
		[ "$jumps" -eq 1 ] || { echo "install twice left $jumps jumps"; return 1; }
		M iptables verify --netns "$NSP" --exclude-port 22 || return 1
		M iptables uninstall --netns "$NSP" || return 1
		snapshot $b "$T/after"
		diff "$T/before" "$T/after" && echo "rulesets and routes byte-identical after uninstall"
	}
	check "$b: install twice = once; uninstall leaves the netns byte-identical (foreign rules kept)" case_roundtrip

	case_detect() {
		fresh_ns $b || return 1
		M iptables install --netns "$NSP" | tee "$T/detect.out" || return 1
		grep -q "($b back end)" "$T/detect.out" && ip netns exec "$NS" "iptables-$b-save" -t nat | grep -q MESHSPLICE_OUTPUT
	}
	check "$b: the back end holding the node's rules is detected and used" case_detect

	case_drift() {
		fresh_ns $b || return 1
		M iptables install --netns "$NSP" || return 1
		ip netns exec "$NS" "iptables-$b" -t nat -D MESHSPLICE_OUTPUT -o lo -j RETURN
		if M iptables verify --netns "$NSP" 2>"$T/drift.err"; then echo "verify missed a deleted rule"; return 1; fi
		cat "$T/drift.err"
		grep -q 'expected "-A MESHSPLICE_OUTPUT -o lo -j RETURN"' "$T/drift.err" || return 1
		M iptables install --netns "$NSP" && M iptables verify --netns "$NSP" || return 1
		ip netns exec "$NS" "iptables-$b" -t nat -I MESHSPLICE_OUTPUT 1 -p tcp --dport 1 -j RETURN
		if M iptables verify --netns "$NSP" 2>/dev/null; then echo "verify missed an added rule"; return 1; fi
		ip -n "$NS" route del 242.0.0.0/8
		M iptables install --netns "$NSP" || return 1
		M iptables verify --netns "$NSP"
	}
	check "$b: verify catches a deleted rule, an added rule; install repairs" case_drift
done

case_bad_netns() {
	if M iptables install --netns /nonexistent/netns 2>"$T/bad.err"; then return 1; fi
	cat "$T/bad.err"
	grep -q "netns /nonexistent/netns" "$T/bad.err"
}
check "a missing netns is a clear error" case_bad_netns
cleanup_ns
finish
