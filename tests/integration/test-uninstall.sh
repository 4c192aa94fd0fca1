#!/bin/bash
# SPDX-License-Identifier: MIT
# meshspliced --uninstall next to a running agent: refused (its pods would go
# direct), unless --force; a stopped agent's pins go without asking.
source "$(dirname "$0")/lib.sh"
require_root
make_topology || { echo "topology failed"; exit 1; }
start_agent || exit 1
ms enable --netns "/var/run/netns/$NS_A" --name t/a >/dev/null || { echo "enable failed"; exit 1; }

PINS=$BPFFS/meshsplice
# always a state dir of ours: uninstall removes the iptables chains of the
# pods listed there
uninstall() { "$AGENT_BIN" --uninstall --bpffs "$PINS" --state-dir "$T/state" "$@"; }

# what a running agent has in place: its pins (eBPF) or its chain (iptables)
steering_in_place() {
	if [ "${MS_ENGINE:-bpf}" = bpf ]; then
		ls "$PINS" | grep -q '^link_' || { echo "no link pinned in $PINS"; return 1; }
	else
		ip netns exec "$NS_A" iptables-save -t nat | grep -q MESHSPLICE_OUTPUT ||
			{ echo "no MESHSPLICE_OUTPUT chain in the pod"; return 1; }
	fi
	ms pods | grep -q 't/a .* enabled' || { ms pods; return 1; }
}

steering_gone() {
	if [ "${MS_ENGINE:-bpf}" = bpf ]; then
		[ ! -e "$PINS" ] || { echo "left in $PINS:"; ls "$PINS"; return 1; }
	else
		! ip netns exec "$NS_A" iptables-save -t nat | grep -q MESHSPLICE_OUTPUT ||
			{ echo "chain left in the pod"; return 1; }
	fi
}

case_refused_bpffs_lock() {
	# another --control: only the lock on the bpffs can tell
	uninstall --control "$T/nobody.sock" >"$T/u.out" 2>&1
	local rc=$?
	cat "$T/u.out"
	[ $rc -eq 1 ] && grep -q "an agent is running on $PINS" "$T/u.out" && steering_in_place
}

case_refused_control() {
	uninstall --control "$CTL" >"$T/u.out" 2>&1
	local rc=$?
	cat "$T/u.out"
	# under eBPF the lock already refuses; the iptables engine holds no bpffs
	[ $rc -eq 1 ] && grep -q "$PINS; stop it first" "$T/u.out" && steering_in_place
}

# control case: the refusal is about this bpffs, not any agent anywhere
case_other_bpffs_not_refused() {
	mkdir -p "$T/other-state"
	"$AGENT_BIN" --uninstall --bpffs "$BPFFS/other" --state-dir "$T/other-state" --control "$CTL" &&
		steering_in_place
}

case_stopped_agent_uninstalls() {
	stop_agent TERM
	uninstall --control "$CTL" && steering_gone
}

case_force() {
	start_agent || return 1
	ms enable t/a >/dev/null 2>&1 # restored from the state dir, or enabled again now
	steering_in_place || return 1
	uninstall --control "$CTL" --force && steering_gone
}

[ "${MS_ENGINE:-bpf}" = bpf ] && check "uninstall refused while an agent holds the bpffs" case_refused_bpffs_lock
check "uninstall refused while the agent on --control runs on that bpffs" case_refused_control
check "uninstall of another bpffs is not refused" case_other_bpffs_not_refused
check "a stopped agent's steering is uninstalled without --force" case_stopped_agent_uninstalls
check "--force uninstalls under a running agent" case_force
check "SIGTERM: clean exit, no sanitizer report" case_clean_exit
finish
