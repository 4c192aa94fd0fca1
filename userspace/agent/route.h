/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "agent.h"
#include "config.h"
#include "fwd.h"
#include "health.h"

/* What happens to one redirected connection, decided without I/O over the
 * config snapshot and the agent's own state (HAProxy's assign_server()
 * apart from connect_server()): route_decide is pure and unit-tested;
 * route_apply (route.c) refuses, parks or starts the forwarder. */

/* The TLS context of each service with tls.enabled, for the current config. */
struct route_tls {
	char *key;           /* kind/mesh/name; NULL for a service without TLS */
	struct tls_ctx *ctx; /* NULL when it could not be built: err says why */
	char *err;
};

/* Per service port of the config (index base[i] + p for port p of service
 * i), agent-owned so that the config snapshot itself stays immutable:
 * - next: the round-robin cursor;
 * - ts: the port's target list, built by the first connection that needs it
 *   and shared by the following ones (a memo: route_decide gives the same
 *   answer without it). It is rebuilt when gen (the resolver's and health's
 *   generation) moves on, and a list with DNS endpoints at least once a
 *   second, so that the resolver sees its names asked for and refreshes them. */
struct route_lb {
	size_t *next;
	size_t *base;
	struct fwd_targets **ts;
	uint64_t *ts_gen, *ts_ms;
	size_t n_svcs, n;
};

#define ROUTE_DNS_TARGETS_MS 1000

/* Cursors for c, carried over from old (for c's predecessor, or NULL)
 * where the same service port survives. */
void route_lb_build(struct route_lb *lb, const struct ms_config *c, const struct route_lb *old,
		    const struct ms_config *old_cfg);
void route_lb_clear(struct route_lb *lb);

struct route_env {
	const struct ms_config *cfg;
	const struct route_tls *tls; /* one per service of cfg, or NULL */
	const struct route_lb *lb;
	const struct ms_cidr *vip_cidrs;
	size_t n_vip_cidrs;
	uint64_t targets_gen; /* see struct route_lb */
	uint64_t now_ms;
	bool full;     /* the forwarder holds its maximum of connections */
	bool pod_full; /* the pod holds its share of them */
	const struct health *health; /* endpoint health (NULL: every endpoint healthy) */
	/* A DNS endpoint's addresses: 0, -EAGAIN while a lookup runs, -errno. */
	int (*resolve)(void *ctx, const char *host, const struct ms_addr **ret, size_t *ret_n);
	void *ctx;
};

struct route_in {
	const char *mesh; /* the pod's */
	int nsfd;         /* the pod's netns: upstream sockets are made there */
	struct ms_addr orig;
	uint16_t port;
	bool timed_out; /* its DNS wait is over */
	/* MeshPassthrough Domain rules: the forwarder has looked at the first
	 * bytes (peeked); name is what they ask for (NULL: none, or nothing
	 * came within the wait), seen the protocol they speak */
	bool peeked;
	const char *name;
	enum ms_match_proto seen;
};

/* ROUTE_PEEK: only a Domain match may allow it: look at the client's first
 * bytes (without consuming them), then decide again with the name. */
enum route_verdict { ROUTE_REFUSE, ROUTE_FORWARD, ROUTE_WAIT, ROUTE_PEEK };

struct route_out {
	enum route_verdict verdict;
	enum refuse_reason reason; /* ROUTE_REFUSE */
	const char *detail;
	/* ROUTE_FORWARD: the targets (a reference, the caller's) and the cursor
	 * the connection starts its walk of them at */
	struct fwd_targets *targets;
	size_t start;
	char label[160]; /* kind/name, or "passthrough" (and the MeshPassthrough rule that allowed it) */
	char why[224];   /* backs detail when it names a rule */
	const struct ms_pass_match *match; /* the MeshPassthrough rule that allowed it, or NULL */
	/* the cursor route_apply advances: lb->next[cursor] (SIZE_MAX: none) */
	size_t cursor;
};

void route_decide(const struct route_env *env, const struct route_in *in, struct route_out *out);
const char *route_refuse_name(enum refuse_reason r);
