/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "dns.h"
#include "ev.h"

/* Mesh DNS at the node: in each enabled pod's netns, a UDP socket and a TCP
 * listener on 127.0.0.1:port and [::1]:port receive the DNS the steering
 * engine captured. A query for a name generated for a service of the pod's
 * mesh is answered with its VIP; anything else goes, unchanged, to the
 * resolver the pod asked, from a socket in the pod's netns carrying the
 * agent's mark, and its answer comes back unchanged. */

struct dnsp;

struct dnsp_opts {
	uint32_t mark;
	uint16_t port;        /* on the pod's loopback */
	uint32_t ttl;         /* of local answers, seconds */
	unsigned timeout_ms;  /* an upstream's answer; past it the client gets none, as from a silent resolver */
	unsigned max_pending; /* UDP queries upstream at once; more are dropped */
	unsigned max_tcp;     /* TCP clients at once; more are closed */
};

/* What the agent tells the responder. pod is the agent's own pod pointer. */
struct dnsp_hooks {
	void *ctx;
	/* The VIP of name in the pod's mesh; false when the name is not one of its services'. */
	dns_local_fn local;
	/* The resolver a query was meant for. tcp: fd is the accepted client
	 * socket; udp: client and self are the datagram's addresses. 0 or -errno. */
	int (*origin)(void *ctx, void *pod, bool tcp, int fd, const struct ms_addr *client, uint16_t cport,
		      const struct ms_addr *self, struct ms_addr *ret, uint16_t *ret_port);
	/* The pod's mesh has passthrough off: only plain queries leave, and
	 * only to resolvers allowed() accepts; the rest is answered REFUSED. */
	bool (*strict)(void *ctx, void *pod);
	bool (*allowed)(void *ctx, void *pod, const struct ms_addr *resolver, uint16_t port);
};

struct dnsp_sock {
	struct ev ev; /* a UDP socket or a TCP listener */
	struct dnsp_pod *pod;
	int fd;
	bool v6;
};

/* A pod's sockets; lives in the agent's pod. */
struct dnsp_pod {
	struct dnsp_sock u4, u6, t4, t6;
	struct dnsp *d;
	void *owner;
	const char *name; /* for logs; owned by the agent */
	int nsfd;
};

struct dnsp_stats {
	uint64_t local;     /* answered with a VIP, or NODATA for a mesh name */
	uint64_t forwarded; /* sent to the pod's resolver and answered */
	uint64_t failed;    /* SERVFAIL from us, upstream timeout or error */
	uint64_t malformed; /* FORMERR or dropped */
	uint64_t refused;   /* REFUSED: not a plain query, or not to the pod's resolvers (passthrough off) */
};

int dnsp_new(int epfd, const struct dnsp_opts *o, const struct dnsp_hooks *h, struct dnsp **ret);
void dnsp_free(struct dnsp *d);

void dnsp_pod_init(struct dnsp_pod *p);
/* Open the pod's four sockets in netns nsfd. The IPv4 UDP socket is
 * required; the others are best effort (logged). 0 or -errno. */
int dnsp_pod_open(struct dnsp *d, struct dnsp_pod *p, int nsfd, void *owner, const char *name);
/* Take sockets handed over by another agent (fds: u4, u6, t4, t6; -1 for
 * none) instead of opening them. The IPv4 UDP one is required. */
int dnsp_pod_adopt(struct dnsp *d, struct dnsp_pod *p, int nsfd, void *owner, const char *name, const int fds[4]);
/* The pod's sockets (u4, u6, t4, t6), for a hand-over. */
void dnsp_pod_fds(const struct dnsp_pod *p, int fds[4]);
/* Stop taking queries on the pod's sockets (another agent has them now);
 * answers to queries in flight still leave through them. */
void dnsp_pod_release(struct dnsp *d, struct dnsp_pod *p);
/* Queries in flight and TCP clients. */
size_t dnsp_busy(const struct dnsp *d);
/* Close them, and drop the pod's queries in flight and TCP clients. */
void dnsp_pod_close(struct dnsp *d, struct dnsp_pod *p);
bool dnsp_pod_is_open(const struct dnsp_pod *p);

/* Expire queries and TCP clients past their deadline. */
void dnsp_tick(struct dnsp *d);
struct dnsp_stats dnsp_get_stats(const struct dnsp *d);
