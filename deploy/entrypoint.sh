#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent container's entrypoint (meshsplice-daemonset.yaml):
# - the host's cgroup v2 is found under MESHSPLICE_HOST_CGROUP (the host's
#   /sys/fs/cgroup, mounted at /host/sys/fs/cgroup): itself on a pure v2
#   host, its "unified" on a hybrid one. The container's own /sys/fs/cgroup
#   is its cgroup namespace's, not the node's, so the agent is told (--cgroup).
# - meshspliced runs as a child; SIGTERM and SIGINT are passed on (it drains).
# - the CNI plugin is unchained only when MESHSPLICE_CNI_UNINSTALL=true (a
#   real uninstall, set on the DaemonSet before deleting it), never on an
#   upgrade or restart, as Cilium's cni-uninstall option does.
#   entrypoint.sh [--print-cgroup] [MESHSPLICED OPTIONS]
set -uo pipefail
HOST_CG=${MESHSPLICE_HOST_CGROUP:-/host/sys/fs/cgroup}
AGENT=${MESHSPLICE_AGENT:-/usr/local/sbin/meshspliced}
INSTALL=${MESHSPLICE_INSTALL:-/opt/meshsplice/scripts/install.sh}
CNI_BIN=${MESHSPLICE_CNI_BIN_DIR:-/host/opt/cni/bin}
CNI_CONF=${MESHSPLICE_CNI_CONF_DIR:-/host/etc/cni/net.d}

cgroup2_dir() {
	local d
	for d in "$HOST_CG" "$HOST_CG/unified"; do
		if [ "$(stat -fc %T "$d" 2>/dev/null)" = cgroup2fs ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

if ! CG=$(cgroup2_dir); then
	echo "entrypoint: no cgroup v2 at $HOST_CG or $HOST_CG/unified (mount the host's /sys/fs/cgroup there)" >&2
	exit 1
fi
if [ "${1:-}" = --print-cgroup ]; then
	echo "$CG"
	exit 0
fi

"$AGENT" --cgroup "$CG" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM
trap 'kill -INT "$pid" 2>/dev/null' INT
# wait returns early when a trapped signal arrives: wait again for the exit
while :; do
	wait "$pid"
	rc=$?
	kill -0 "$pid" 2>/dev/null || break
done
if [ "${MESHSPLICE_CNI_UNINSTALL:-false}" = true ]; then
	echo "entrypoint: MESHSPLICE_CNI_UNINSTALL=true: unchaining meshsplice-cni"
	"$INSTALL" --uninstall --cni-only --cni-bin-dir "$CNI_BIN" --cni-conf-dir "$CNI_CONF" || rc=1
fi
exit "$rc"
