/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "meshsplice.h"

/* The steering engine, as the agent sees it: whatever puts a pod's
 * connections onto its listener (eBPF hooks on a cgroup, or iptables rules
 * in the pod's netns) and tells where each was going. The agent never asks
 * which engine it has; each engine implements these ops (HAProxy's
 * xprt_ops, networkd's link ops). */

struct ms_config;
struct ms_service;

struct steer_opts {
	const char *engine; /* bpf | iptables | auto */
	const char *bpffs_dir;
	const char *cgroup;
	uint32_t mark;
	const char *agent_cgroup;  /* the agent's cgroup v2 path (NULL: unknown), and its id: */
	uint64_t agent_cgroup_id;  /* with the mark, what makes a socket the agent's */
	uint16_t listen_port;
	struct ms_cidr vip_cidrs[3]; /* MES, MeshService and Gloo ExternalService ranges */
	size_t n_vip_cidrs;
	bool node_proxy; /* --datapath proxy: every connection through the forwarder */
};

/* What an engine is told of a pod. */
struct steer_pod {
	const char *name;
	int nsfd;
	uint64_t cookie;
	struct ms_pod v; /* mesh flags, listener and DNS ports, excluded ports */
	const struct ms_cidr *excl_cidrs;
	size_t n_excl_cidrs;
};

/* Why pod_put is called: an engine may have nothing to do for some. */
enum steer_why {
	STEER_ENABLE, /* the pod's listeners are up: steer it */
	STEER_UPDATE, /* its exclusions or DNS capture changed */
	STEER_RELOAD, /* the config changed (mesh flags may have) */
};

struct steer_counter {
	const char *name;
	uint64_t value;
	bool verdict; /* a connect() verdict (a counter); else a gauge */
};

#define STEER_MAX_COUNTERS 48 /* the BPF counters (MS_CNT_SLOTS at most) and the map sizes */

struct steer;

/* Whether an endpoint is healthy (the agent's health checks). */
typedef bool (*steer_health_fn)(void *ctx, const struct ms_addr *addr, uint16_t port);

/* The kernel path's counters (struct ms_kstat: opened, failed, closed,
 * bytes at close), as the engine keeps them without the agent. */
struct steer_ep_stat {
	struct ms_addr addr;
	uint16_t port;
	struct ms_kstat k;
};

struct steer_svc_stat {
	uint32_t mesh_id;
	struct ms_addr vip;
	uint16_t port;
	struct ms_kstat k;
};

/* One entry of the kernel's counters: a service port and an endpoint.
 * The folds below turn them into the views the agent reads: per endpoint
 * (health), per service port (metrics), a total; each a malloc'd array
 * sorted by its key, one entry a key, and its length. */
struct steer_kstat {
	struct ms_kstat_key key;
	struct ms_kstat k;
};

/* t += v, field by field. */
void steer_kstat_add(struct ms_kstat *t, const struct ms_kstat *v);
size_t steer_kstats_by_ep(const struct steer_kstat *v, size_t n, struct steer_ep_stat **ret);
size_t steer_kstats_by_svc(const struct steer_kstat *v, size_t n, struct steer_svc_stat **ret);
void steer_kstats_total(const struct steer_kstat *v, size_t n, struct ms_kstat *ret);

struct steer_ops {
	const char *name;
	void (*close)(struct steer *s);
	/* 0, or -errno with *ret_why: what could not be done (a constant string). */
	int (*pod_put)(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why);
	/* Stop steering p: new connects go direct (or fail, for VIPs). */
	void (*pod_del)(struct steer *s, const struct steer_pod *p);
	/* Cookies of pods the engine still steers from an earlier agent (pinned state). */
	int (*pod_list)(struct steer *s, uint64_t **ret, size_t *ret_n);
	void (*pod_del_cookie)(struct steer *s, uint64_t cookie);
	int (*svcs_sync)(struct steer *s, const struct ms_config *c);
	/* Where an accepted connection (cfd, from peer:pport) was going; a
	 * loopback answer means it was not redirected. Consumes the record. */
	int (*orig_dst)(struct steer *s, const struct steer_pod *p, int cfd, const struct ms_addr *peer,
			uint16_t pport, struct ms_addr *ret, uint16_t *ret_port);
	/* The resolver a pod's UDP DNS datagram from client:cport (received on
	 * self:self_port) was meant for. */
	int (*dns_origin)(struct steer *s, const struct steer_pod *p, const struct ms_addr *client, uint16_t cport,
			  const struct ms_addr *self, uint16_t self_port, struct ms_addr *ret, uint16_t *ret_port);
	size_t (*counters)(struct steer *s, struct steer_counter *ret, size_t max);
	/* Optional (NULL: the engine has no kernel path). health_set: the sets
	 * svcs_sync writes hold only endpoints up() says are healthy (the
	 * caller calls svcs_sync again when health changes). kernel_eps and
	 * kernel_svcs: the kernel path's totals per endpoint and per service
	 * port (malloc'd array, its length); kernel_total: over every pod. */
	void (*health_set)(struct steer *s, steer_health_fn up, void *ctx);
	size_t (*kernel_eps)(struct steer *s, struct steer_ep_stat **ret);
	size_t (*kernel_svcs)(struct steer *s, struct steer_svc_stat **ret);
	void (*kernel_total)(struct steer *s, struct ms_kstat *ret);
	/* Optional: pod p's live kernel-path connections, one call of fn each
	 * (bytes as they are now). How many, or -errno (-EOPNOTSUPP: this
	 * kernel cannot list them). */
	int (*kernel_conns)(struct steer *s, const struct steer_pod *p,
			    void (*fn)(const struct ms_kconn *k, void *ctx), void *ctx);
	/* Before the first svcs_sync: down() for each endpoint of c's
	 * kernel-path ports that the sets already in the kernel (an earlier
	 * agent's) leave out while they are at its level or a lower-numbered one
	 * (it was unhealthy when that agent last wrote them). */
	void (*health_adopt)(struct steer *s, const struct ms_config *c,
			     void (*down)(void *ctx, const struct ms_addr *addr, uint16_t port), void *ctx);
	/* A line for `status` (back end, attach point). */
	const char *(*describe)(struct steer *s);
};

struct steer {
	const struct steer_ops *ops;
};

/* The path the connections to port p of s take (enum ms_svc_path): the
 * kernel path when nothing needs the forwarder (no TLS, IP endpoints of the
 * VIP's family, a port of its own, nobody asked for the proxy), else the
 * proxy path, with *why (when asked) saying what needs it. Pure. */
int steer_port_path(const struct ms_config *c, const struct ms_service *s, size_t p, bool node_proxy,
		    const char **why);
/* Whether an operator asked for every connection of a mesh's pods through
 * the forwarder: --datapath proxy or the mesh's label. */
bool steer_mesh_proxied(const struct ms_config *c, const char *mesh, bool node_proxy);

/* Pick and open the engine o->engine names ("auto": eBPF where the kernel
 * loads cgroup programs, else iptables). 0 or -errno (logged). */
int steer_open(const struct steer_opts *o, struct steer **ret);
/* Remove what every engine left: iptables rules in each of the netns
 * paths, and the pinned programs and maps in bpffs_dir. */
int steer_uninstall(const char *bpffs_dir, const char *const *netns, size_t n_netns);

static inline void steer_close(struct steer *s)
{
	if (s)
		s->ops->close(s);
}

/* The engines. */
int steer_bpf_open(const struct steer_opts *o, struct steer **ret);
int steer_iptables_open(const struct steer_opts *o, struct steer **ret);
