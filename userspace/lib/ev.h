/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* Every epoll registration points at a struct that starts with struct ev, so
 * the loop can dispatch on kind. */
enum ev_kind {
	EV_CONTROL_LISTEN,
	EV_CONTROL_CLIENT,
	EV_POD_LISTENER,
	EV_FWD_CLIENT,
	EV_FWD_UPSTREAM,
	EV_INOTIFY,
	EV_SIGNAL,
	EV_TIMER,
	EV_RESOLVER,
	EV_METRICS_LISTEN,
	EV_METRICS_CLIENT,
	EV_DNS_UDP,      /* a pod's DNS socket */
	EV_DNS_LISTEN,   /* a pod's DNS-over-TCP listener */
	EV_DNS_UPSTREAM, /* a UDP query sent to the pod's resolver */
	EV_DNS_TCP,      /* a DNS-over-TCP client */
	EV_DNS_TCP_UP,   /* its connection to the pod's resolver */
};

struct ev {
	enum ev_kind kind;
	bool dead; /* its object is freed: skip events still waiting in the batch */
};

/* Free obj (with free(3)) once the current epoll batch is done; the owner
 * marks the object's evs dead first. The loop calls ev_reap after each batch. */
void ev_defer_free(void *obj);
void ev_reap(void);
void ev_fini(void);
