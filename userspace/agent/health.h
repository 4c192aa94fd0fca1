/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* Endpoint health, without I/O: one state machine per endpoint address and
 * port (every input is about the destination: the kernel path's failed
 * connects, the forwarder's connect outcomes and the agent's probes, so two
 * services naming one address agree by construction, and one probe serves
 * both). Healthy or not, with consecutive-outcome thresholds, why and since
 * when. The agent feeds it (agent.c's timer, fwd's connect outcomes) and the
 * engines read it (steer_health_fn) when they write endpoint sets. */

struct ms_config;

enum health_why {
	HEALTH_WHY_NEW,            /* not judged yet: healthy until an outcome says otherwise */
	HEALTH_WHY_CONNECT_FAILED, /* passive: pods' connects failed (kernel path or forwarder) */
	HEALTH_WHY_CONNECT_OK,     /* passive: pods' connects succeeded */
	HEALTH_WHY_PROBE_OK,
	HEALTH_WHY_PROBE_TIMEOUT,
	HEALTH_WHY_PROBE_REFUSED,
	HEALTH_WHY_PROBE_ERROR,
	HEALTH_WHY_EJECT_OVER, /* probes off: a passively failed endpoint back after the ejection time */
	HEALTH_WHY_INHERITED,  /* out of the kernel's set an earlier agent left (pinned) */
	HEALTH_WHY__MAX,
};

struct health_opts {
	unsigned unhealthy_after; /* consecutive failures that make an endpoint unhealthy (at least 1) */
	unsigned healthy_after;   /* consecutive successes that make it healthy again (at least 1) */
	uint64_t eject_ms;        /* probes off: how long a passively failed endpoint stays out; 0: until it succeeds */
};

struct health_ep {
	struct ms_addr addr;
	uint16_t port;
	bool healthy;
	enum health_why why; /* of the current state */
	uint64_t since_ms;   /* when it entered it (now_ms clock) */
	unsigned fails, oks; /* consecutive outcomes */
	uint64_t n_failed, n_ok; /* every outcome seen */
	uint64_t k_opened, k_failed; /* the kernel's totals as last read */
	bool k_seen;
	bool probing; /* a probe of the agent's is in flight */
};

struct health {
	struct health_opts o;
	struct health_ep *v; /* sorted by (addr, port) */
	size_t n;
	uint64_t gen; /* bumped on each change of state: the engines' sets follow it */
};

void health_init(struct health *h, const struct health_opts *o);
void health_fini(struct health *h);
/* Track exactly the IP endpoints of c: new ones healthy, survivors keep
 * their state. Returns how many were added or dropped. */
size_t health_sync(struct health *h, const struct ms_config *c, uint64_t now_ms);
const struct health_ep *health_find(const struct health *h, const struct ms_addr *a, uint16_t port);
/* The same, to change (NULL: not tracked). */
struct health_ep *health_get(struct health *h, const struct ms_addr *a, uint16_t port);
/* An endpoint nobody tracks (a DNS name's address, a passthrough peer) is healthy. */
bool health_up(const struct health *h, const struct ms_addr *a, uint16_t port);
/* One outcome for a:port (why: of the failure or success). true when the
 * endpoint changed state. */
bool health_report(struct health *h, const struct ms_addr *a, uint16_t port, bool ok, enum health_why why,
		   uint64_t now_ms);
/* The kernel's running totals for a:port (connections opened, connects
 * failed): the increase since the last read is reported, opens first (a
 * success resets the failure run, so the failures of the same tick still
 * count). baseline: for an endpoint whose totals were never read, only
 * remember them (what happened before the agent started, or before the
 * config named the endpoint, is not judged); otherwise totals never read
 * count whole, as does a total smaller than the last (the entry aged out
 * and came back). true when the endpoint changed state. */
bool health_kernel(struct health *h, const struct ms_addr *a, uint16_t port, uint64_t opened, uint64_t failed,
		   bool baseline, uint64_t now_ms);
/* Take a:port as unhealthy for why without outcomes (what an earlier
 * agent's pinned sets say); true when it changed state. */
bool health_assume_down(struct health *h, const struct ms_addr *a, uint16_t port, enum health_why why,
			uint64_t now_ms);
/* Endpoints passively failed (or inherited) for eject_ms come back (probes off). Returns how many. */
size_t health_expire(struct health *h, uint64_t now_ms);
const char *health_why_name(enum health_why w);
