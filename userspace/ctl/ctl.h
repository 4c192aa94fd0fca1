/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

/* The agent's control protocol: one JSON object per line each way over a
 * unix stream socket. Requests carry "cmd"; replies carry "ok" and, when
 * ok is false, "error". */

#define CTL_MAX_MSG (4u << 20)

/* Send req (not consumed) and wait up to timeout_ms for the reply.
 * Returns 0 and a reply the caller owns, or a negative errno
 * (-ENOENT/-ECONNREFUSED: no agent; -ETIMEDOUT; -EPROTO: bad reply). */
int ctl_call(const char *path, json_object *req, int timeout_ms, json_object **ret);
