#!/bin/bash
# SPDX-License-Identifier: MIT
# The agent under valgrind for a short load (plain, TLS, refused connections,
# a reload), then SIGTERM: no invalid access, no leak.
source "$(dirname "$0")/lib.sh"
require_root
case ${MS_SANITIZED:-none} in
none | "") ;;
*) echo "valgrind does not run ASan binaries: this test belongs to the plain build"; exit 77 ;;
esac
make_topology || exit 1
source "$(dirname "$0")/certs.sh"
mkdir -p "$T/pki" && make_certs "$T/pki" || exit 1
echo "198.18.3.2 up.test" >"$T/hosts"
cat >"$T/conf/svc.yaml" <<YAML
type: Mesh
name: closed
networking:
  outbound:
    passthrough: false
---
type: MeshExternalService
name: echo
spec:
  match:
    port: 80
  endpoints:
    - address: up.test
      port: 8080
status:
  vip:
    ip: 242.0.0.10
---
type: MeshExternalService
name: tls
spec:
  match:
    port: 443
  endpoints:
    - address: up.test
      port: 9001
  tls:
    enabled: true
    verification:
      caCert:
        inline: $(base64 -w0 "$T/pki/ca1.pem")
status:
  vip:
    ip: 242.0.0.11
YAML
bg_out echo $PEER serve-echo 8080 || exit 1
bg_out tls $PEER serve-tls 9001 "$T/pki/good.pem" "$T/pki/good.key" "$T/tls.log" || exit 1
# start_agent, with the agent under valgrind
AGENT_BIN_REAL=$AGENT_BIN
AGENT_BIN=$T/agent-under-valgrind
cat >"$AGENT_BIN" <<SH
#!/bin/sh
exec valgrind --quiet --suppressions='$SRC/tests/valgrind.supp' --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \\
	--error-exitcode=99 --log-file="$T/valgrind.log" "$AGENT_BIN_REAL" "\$@"
SH
chmod +x "$AGENT_BIN"
MS_START_TRIES=1200 start_agent || { cat "$T/valgrind.log"; exit 1; }
AGENT_BIN=$AGENT_BIN_REAL
ms enable --netns "/var/run/netns/$NS_A" --name vg/a >/dev/null || exit 1
ms enable --netns "/var/run/netns/$NS_B" --name vg/b --mesh closed >/dev/null || exit 1

case_load() {
	in_pod "$NS_A" $PEER many 242.0.0.10 80 300 20 1000 || return 1
	in_pod "$NS_A" $PEER echo-exact 242.0.0.11 443 1000 || return 1
	in_pod "$NS_A" $PEER echo-exact 242.0.0.11 443 1000 || return 1
	in_pod "$NS_B" $PEER refused 198.18.2.2 8080 || return 1
	in_pod "$NS_A" $PEER refused 127.0.0.1 15001 || return 1
	touch "$T/conf/svc.yaml" && sleep 0.6
	ms disable vg/b >/dev/null && ms pods >/dev/null && ms conns >/dev/null && ms stats >/dev/null
}
check "traffic under valgrind: plain, TLS (full and resumed), refusals, a reload, the CLI" case_load
case_exit() {
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID"
	local rc=$?
	AGENT_PID=
	# valgrind warns about bpf commands it does not model; that is not an error
	grep -v "WARNING: unhandled eBPF command" "$T/valgrind.log"
	echo "exit status $rc (99: valgrind found an error)"
	[ $rc -eq 0 ] && ! grep -qE "definitely lost: [1-9]|indirectly lost: [1-9]|Invalid (read|write)|uninitialised" "$T/valgrind.log"
}
check "SIGTERM under valgrind: exit 0, no invalid access, no leak" case_exit
finish
