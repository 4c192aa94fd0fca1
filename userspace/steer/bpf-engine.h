/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "config.h"
#include "meshsplice.h"

/* The eBPF steering engine: programs attached to a cgroup through pinned
 * links, maps pinned beside them, so that they outlive the agent. */
struct bpf_engine;

struct bpf_engine_opts {
	const char *bpffs_dir; /* e.g. /sys/fs/bpf/meshsplice */
	const char *cgroup;    /* cgroup v2 directory */
	uint32_t mark;
	struct ms_cidr vip_cidrs[3];
	size_t n_vip_cidrs;
	bool node_proxy; /* --datapath proxy: no kernel path */
	uint64_t agent_cgroup_id; /* the agent's own cgroup v2 (its sockets: this cgroup and the mark) */
};

/* Load the programs (reusing pinned maps), then attach them, or swap the
 * new programs into links already pinned by an earlier agent. */
int bpf_engine_open(const struct bpf_engine_opts *o, struct bpf_engine **ret);
/* Close fds; pinned links and maps stay. Accepts NULL. */
void bpf_engine_close(struct bpf_engine *e);
/* 1 when a running agent's engine holds dir (the lock bpf_engine_open
 * takes), 0 when none does or dir does not exist, or -errno. */
int bpf_engine_in_use(const char *dir);
/* Remove every pin (links detach when unpinned) and the directory. */
int bpf_engine_uninstall(const char *bpffs_dir);
/* Can this kernel load cgroup sock_addr programs? (for --engine auto) */
bool bpf_engine_supported(void);

int bpf_engine_pod_put(struct bpf_engine *e, uint64_t cookie, const struct ms_pod *pod);
int bpf_engine_pod_del(struct bpf_engine *e, uint64_t cookie);
/* Cookies in the pods map (so a restarted agent can drop pods it no longer knows). */
int bpf_engine_pod_list(struct bpf_engine *e, uint64_t **ret, size_t *ret_n);
/* Replace the pod's CIDR exclusions. */
int bpf_engine_excl_set(struct bpf_engine *e, uint64_t cookie, const struct ms_cidr *cidrs,
			size_t n);
/* Whether an endpoint is healthy; the sets svcs_sync writes hold only those. */
typedef bool (*bpf_engine_health_fn)(void *ctx, const struct ms_addr *addr, uint16_t port);
void bpf_engine_health_set(struct bpf_engine *e, bpf_engine_health_fn up, void *ctx);
/* See steer_ops.health_adopt. */
void bpf_engine_health_adopt(struct bpf_engine *e, const struct ms_config *c,
			     void (*down)(void *ctx, const struct ms_addr *addr, uint16_t port), void *ctx);
/* Make ms_services hold exactly the VIPs of c, and ms_endpoints the
 * endpoint sets of the kernel-path ones (healthy endpoints only). */
int bpf_engine_svcs_sync(struct bpf_engine *e, const struct ms_config *c);
/* Make ms_pass hold c's MeshPassthrough IP/CIDR matches (and a port-wide
 * entry where a Domain match may apply), swapped in whole. */
int bpf_engine_pass_sync(struct bpf_engine *e, const struct ms_config *c);
/* Look up and delete the original destination of an accepted connection. */
int bpf_engine_conn_take(struct bpf_engine *e, uint64_t cookie, const struct ms_addr *client,
			 uint16_t client_port, struct ms_addr *ret_addr, uint16_t *ret_port);
/* The resolver a pod's UDP DNS query from client_port was meant for. */
int bpf_engine_dns_origin(struct bpf_engine *e, uint64_t cookie, uint16_t client_port,
			  struct ms_addr *ret_addr, uint16_t *ret_port);
/* Entries now in the original-destination maps (TCP connections not yet
 * accepted or not yet closed; UDP DNS sockets) and in the kernel path's
 * socket records (its connections not yet closed). */
void bpf_engine_map_sizes(struct bpf_engine *e, size_t *ret_conns, size_t *ret_dns, size_t *ret_kpath);
int bpf_engine_counters(struct bpf_engine *e, uint64_t ret[MS_CNT__MAX]);
const char *bpf_counter_name(int idx);
/* The kernel path's counters, one call of fn per (service port, endpoint)
 * entry (key: a struct ms_kstat_key), summed over CPUs. */
int bpf_engine_kstats(struct bpf_engine *e, void (*fn)(const void *key, const struct ms_kstat *v, void *ctx),
		      void *ctx);
/* The live kernel-path connections of the netns netns_fd (a pod's), one
 * call of fn each, read through the TCP socket iterator: how many, or
 * -EOPNOTSUPP when this kernel could not load it, or -errno. */
int bpf_engine_kconns(struct bpf_engine *e, int netns_fd, void (*fn)(const struct ms_kconn *k, void *ctx), void *ctx);
