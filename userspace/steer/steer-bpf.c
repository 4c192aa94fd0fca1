// SPDX-License-Identifier: MIT
/* The eBPF engine behind steer_ops: programs on a cgroup, state in pinned
 * maps keyed by the pod's netns cookie (bpf-engine.c does the BPF work). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpf-engine.h"
#include "log.h"
#include "steer.h"
#include "util.h"

struct steer_bpf {
	struct steer s;
	struct bpf_engine *e;
	char desc[512];
};

static struct bpf_engine *eng(struct steer *s)
{
	return container_of(s, struct steer_bpf, s)->e;
}

static void sb_close(struct steer *s)
{
	struct steer_bpf *b = container_of(s, struct steer_bpf, s);

	bpf_engine_close(b->e);
	free(b);
}

/* The map entry carries the mesh's flags, so a reload rewrites it too. */
static int sb_pod_put(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why)
{
	int r;

	if ((r = bpf_engine_pod_put(eng(s), p->cookie, &p->v)) < 0) {
		*ret_why = "cannot update the BPF pods map";
		return r;
	}
	if (why == STEER_RELOAD)
		return 0; /* exclusions come from the pod, not the config */
	if ((r = bpf_engine_excl_set(eng(s), p->cookie, p->excl_cidrs, p->n_excl_cidrs)) < 0) {
		*ret_why = "cannot update the BPF exclusions map";
		return r;
	}
	return 0;
}

static void sb_pod_del(struct steer *s, const struct steer_pod *p)
{
	if (p->cookie)
		bpf_engine_pod_del(eng(s), p->cookie);
}

static int sb_pod_list(struct steer *s, uint64_t **ret, size_t *ret_n)
{
	return bpf_engine_pod_list(eng(s), ret, ret_n);
}

static void sb_pod_del_cookie(struct steer *s, uint64_t cookie)
{
	bpf_engine_pod_del(eng(s), cookie);
}

static int sb_svcs_sync(struct steer *s, const struct ms_config *c)
{
	int r = bpf_engine_svcs_sync(eng(s), c), q = bpf_engine_pass_sync(eng(s), c);

	return r < 0 ? r : q;
}

static int sb_orig_dst(struct steer *s, const struct steer_pod *p, int cfd, const struct ms_addr *peer,
		       uint16_t pport, struct ms_addr *ret, uint16_t *ret_port)
{
	(void)cfd;
	return bpf_engine_conn_take(eng(s), p->cookie, peer, pport, ret, ret_port);
}

static int sb_dns_origin(struct steer *s, const struct steer_pod *p, const struct ms_addr *client, uint16_t cport,
			 const struct ms_addr *self, uint16_t self_port, struct ms_addr *ret, uint16_t *ret_port)
{
	(void)client;
	(void)self;
	(void)self_port;
	return bpf_engine_dns_origin(eng(s), p->cookie, cport, ret, ret_port);
}

_Static_assert(STEER_MAX_COUNTERS >= MS_CNT__MAX + 3, "room for every BPF counter and the three map sizes");

static size_t sb_counters(struct steer *s, struct steer_counter *ret, size_t max)
{
	uint64_t cnt[MS_CNT__MAX];
	size_t n = 0, nc, nd, nk;

	bpf_engine_counters(eng(s), cnt);
	for (int i = 0; i < MS_CNT__MAX && n < max; i++)
		ret[n++] = (struct steer_counter){ bpf_counter_name(i), cnt[i], true };
	bpf_engine_map_sizes(eng(s), &nc, &nd, &nk);
	if (n + 3 <= max) {
		ret[n++] = (struct steer_counter){ "conns_map_entries", nc, false };
		ret[n++] = (struct steer_counter){ "dns_map_entries", nd, false };
		ret[n++] = (struct steer_counter){ "kpath_map_entries", nk, false };
	}
	return n;
}

static void sb_health_set(struct steer *s, steer_health_fn up, void *ctx)
{
	bpf_engine_health_set(eng(s), up, ctx);
}

/* An array filled one entry at a time, its room doubled when full. */
struct grow {
	void *v;
	size_t n, cap, size;
};

static void *grow_one(struct grow *g)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 64;
		g->v = xrealloc(g->v, g->cap, g->size);
	}
	return (char *)g->v + g->n++ * g->size;
}

static void kstat_one(const void *key, const struct ms_kstat *v, void *ctx)
{
	struct steer_kstat *x = grow_one(ctx);

	memcpy(&x->key, key, sizeof(x->key));
	x->k = *v;
}

/* Every (service port, endpoint) entry of the kernel's counters. */
static size_t kstats(struct steer *s, struct steer_kstat **ret)
{
	struct grow g = { .size = sizeof(**ret) };

	bpf_engine_kstats(eng(s), kstat_one, &g);
	*ret = g.v;
	return g.n;
}

static size_t sb_kernel_eps(struct steer *s, struct steer_ep_stat **ret)
{
	struct steer_kstat *v;
	size_t n = kstats(s, &v), r = steer_kstats_by_ep(v, n, ret);

	free(v);
	return r;
}

static size_t sb_kernel_svcs(struct steer *s, struct steer_svc_stat **ret)
{
	struct steer_kstat *v;
	size_t n = kstats(s, &v), r = steer_kstats_by_svc(v, n, ret);

	free(v);
	return r;
}

static void sb_kernel_total(struct steer *s, struct ms_kstat *ret)
{
	struct steer_kstat *v;
	size_t n = kstats(s, &v);

	steer_kstats_total(v, n, ret);
	free(v);
}

static int sb_kernel_conns(struct steer *s, const struct steer_pod *p,
			   void (*fn)(const struct ms_kconn *k, void *ctx), void *ctx)
{
	return bpf_engine_kconns(eng(s), p->nsfd, fn, ctx);
}

static void sb_health_adopt(struct steer *s, const struct ms_config *c,
			    void (*down)(void *ctx, const struct ms_addr *addr, uint16_t port), void *ctx)
{
	bpf_engine_health_adopt(eng(s), c, down, ctx);
}

static const char *sb_describe(struct steer *s)
{
	return container_of(s, struct steer_bpf, s)->desc;
}

static const struct steer_ops steer_bpf_ops = {
	.name = "bpf",
	.close = sb_close,
	.pod_put = sb_pod_put,
	.pod_del = sb_pod_del,
	.pod_list = sb_pod_list,
	.pod_del_cookie = sb_pod_del_cookie,
	.svcs_sync = sb_svcs_sync,
	.orig_dst = sb_orig_dst,
	.dns_origin = sb_dns_origin,
	.counters = sb_counters,
	.describe = sb_describe,
	.health_set = sb_health_set,
	.kernel_eps = sb_kernel_eps,
	.kernel_svcs = sb_kernel_svcs,
	.kernel_total = sb_kernel_total,
	.kernel_conns = sb_kernel_conns,
	.health_adopt = sb_health_adopt,
};

int steer_bpf_open(const struct steer_opts *o, struct steer **ret)
{
	struct bpf_engine_opts bo = { .bpffs_dir = o->bpffs_dir, .cgroup = o->cgroup, .mark = o->mark,
				      .vip_cidrs = { o->vip_cidrs[0], o->vip_cidrs[1], o->vip_cidrs[2] }, .n_vip_cidrs = o->n_vip_cidrs,
				      .node_proxy = o->node_proxy,
				      .agent_cgroup_id = o->agent_cgroup_id };
	struct steer_bpf *b = xcalloc(1, sizeof(*b));
	int r;

	if ((r = bpf_engine_open(&bo, &b->e)) < 0) {
		free(b);
		return r;
	}
	b->s.ops = &steer_bpf_ops;
	snprintf(b->desc, sizeof(b->desc), "programs attached to %s, state pinned in %s", o->cgroup, o->bpffs_dir);
	log_info("bpf engine: %s, agent mark 0x%x", b->desc, o->mark);
	*ret = &b->s;
	return 0;
}
