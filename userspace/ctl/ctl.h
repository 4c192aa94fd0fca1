/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

/* The agent's control protocol: one JSON object per line each way over a
 * unix stream socket. Requests carry "cmd"; replies carry "ok" and, when
 * ok is false, "error". */

#define CTL_MAX_MSG (4u << 20)

/* Where the agent listens unless told otherwise (meshspliced --control,
 * meshsplice --control, the CNI config's controlSocket). */
#define MS_DEFAULT_CONTROL "/run/meshsplice/agent.sock"

/* Request fields. */
#define CTL_F_CMD "cmd"
#define CTL_F_NAME "name"
#define CTL_F_NETNS "netns"
#define CTL_F_MESH "mesh"
#define CTL_F_CONTAINER "container"
#define CTL_F_DNS "dns"
#define CTL_F_TYPE "type"
#define CTL_F_EXCL_PORTS "exclude_ports"
#define CTL_F_EXCL_CIDRS "exclude_cidrs"
#define CTL_F_DNS_SERVERS "dns_servers" /* the pod's own resolvers (its resolv.conf) */
/* Reply fields every reply has. */
#define CTL_F_OK "ok"
#define CTL_F_ERROR "error"
/* Replies of pods (and hand-over: one entry per pod). */
#define CTL_F_PODS "pods"

enum ctl_cmd {
	CTL_ENABLE,
	CTL_DISABLE,
	CTL_FORGET,
	CTL_PODS,
	CTL_CONNS,
	CTL_STATS,
	CTL_STATUS,
	CTL_GET,
	CTL_RELOAD,
	CTL_DNS_LOOKUP,
	CTL_HANDOVER,
	CTL_ENDPOINTS,
	CTL__MAX,
};

/* The command's name on the wire; ctl_cmd_parse: its number, or -1. */
const char *ctl_cmd_name(enum ctl_cmd c);
int ctl_cmd_parse(const char *name);
/* A new request {"cmd": name of c}. */
json_object *ctl_request(enum ctl_cmd c);

/* Send req (not consumed) and wait up to timeout_ms for the reply.
 * Returns 0 and a reply the caller owns, or a negative errno
 * (-ENOENT/-ECONNREFUSED: no agent; -ETIMEDOUT; -EPROTO: bad reply). */
int ctl_call(const char *path, json_object *req, int timeout_ms, json_object **ret);
