// SPDX-License-Identifier: MIT
/* The iptables engine behind steer_ops: a chain of ours in each pod's netns
 * DNATs kernel-path VIPs to their healthy endpoints and REDIRECTs the rest
 * to the listener; the original destination comes from conntrack
 * (SO_ORIGINAL_DST for TCP, a conntrack lookup for UDP DNS). What is
 * redirected is decided in userspace; the DNAT rules follow the config and
 * the endpoints' health, so a reload or a health change renders each pod's
 * rules again and installs them where they changed (one iptables-restore
 * per family: the chain is replaced whole, never seen half-written). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "config.h"
#include "log.h"
#include "steer.h"
#include "tproxy.h"
#include "util.h"

#define MS_SO_ORIGINAL_DST 80      /* SOL_IP, <linux/netfilter_ipv4.h> */
#define MS_IP6T_SO_ORIGINAL_DST 80 /* SOL_IPV6, <linux/netfilter_ipv6/ip6_tables.h> */

/* A pod the engine steers: what its rules are rendered from, so that a
 * health change can render them again, and what was last installed, so that
 * a rendering that changes nothing is not installed again (an
 * iptables-restore per family and pod is most of a reload's time). */
struct ipt_pod {
	char *name;
	int nsfd; /* the agent's */
	struct ms_pod v;
	struct ms_cidr excl_cidrs[TP_MAX_ITEMS];
	size_t n_excl_cidrs;
	char *applied;        /* the rules last installed, both families; NULL: none (or it failed) */
	char *applied_filter; /* their filter part (its REJECT counters restart when it changes) */
	bool refuses;  /* what was installed refuses a VIP (none of its endpoints healthy) */
	bool refusing; /* its REJECT rules may hold counts not yet in refused */
	struct ipt_pod *prev, *next;
};

struct steer_ipt {
	struct steer s;
	enum tp_backend backend;
	struct steer_opts o;
	struct ms_config *cfg; /* the last svcs_sync's: what the DNAT rules follow */
	steer_health_fn up;    /* endpoint health (NULL: every endpoint healthy) */
	void *up_ctx;
	struct ipt_pod *pods;
	uint64_t refused;          /* counted by REJECT rules since replaced, or whose pod is gone */
	uint64_t applied, skipped; /* pod rewrites installed, and not needed */
	char desc[128];
};

static struct steer_ipt *ipt(struct steer *s)
{
	return container_of(s, struct steer_ipt, s);
}

static void pod_free(struct ipt_pod *r)
{
	free(r->name);
	free(r->applied);
	free(r->applied_filter);
	free(r);
}

static void si_close(struct steer *s)
{
	struct steer_ipt *t = ipt(s);

	while (t->pods) {
		struct ipt_pod *r = t->pods;
		DLIST_REMOVE(t->pods, r);
		pod_free(r);
	}
	cfg_unref(t->cfg);
	free(t);
}

static bool ep_up(const struct steer_ipt *t, const struct ms_endpoint *e)
{
	return !t->up || t->up(t->up_ctx, &e->ip, e->port);
}

/* The kernel-path service ports of the pod's mesh (steer_port_path, as the
 * eBPF engine chooses them), each with the IP endpoints the eBPF engine's
 * sets hold: the healthy ones of the best priority level that has one
 * (eps_of in bpf-engine.c); none healthy: marked unhealthy, refused. A
 * service the mesh forbids stays redirected: the agent refuses it with its
 * reason. */
static size_t dnat_build(const struct steer_ipt *t, const struct ipt_pod *p, struct tp_dnat **ret,
			 struct tp_dnat_ep **ret_eps)
{
	const struct ms_config *c = t->cfg;
	size_t n = 0, n_eps = 0, cap = 0, cap_eps = 0;
	struct tp_dnat *v = NULL;
	struct tp_dnat_ep *eps = NULL;

	*ret = NULL;
	*ret_eps = NULL;
	if (!c || (p->v.flags & MS_POD_PROXY))
		return 0;
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i];
		const struct ms_mesh *m = cfg_find_mesh(c, s->mesh);
		if (!m || m->id != p->v.mesh_id)
			continue;
		if (s->kind != MS_KIND_MESH_SERVICE && (p->v.flags & MS_POD_FORBID_EXT))
			continue;
		for (size_t k = 0; k < s->n_ports; k++) {
			const struct ms_port *sp = &s->ports[k];
			if (steer_port_path(c, s, k, t->o.node_proxy, NULL) != MS_PATH_KERNEL || sp->n_eps == 0)
				continue;
			unsigned best = 256;
			for (size_t e = 0; e < sp->n_eps; e++)
				if (sp->eps[e].priority < best && ep_up(t, &sp->eps[e]))
					best = sp->eps[e].priority;
			if (n == cap)
				v = xrealloc(v, cap = cap ? cap * 2 : 16, sizeof(*v));
			v[n] = (struct tp_dnat){ .vip = s->vip, .port = sp->port, .eps = (const void *)(uintptr_t)n_eps,
						 .unhealthy = best == 256 };
			for (size_t e = 0; e < sp->n_eps; e++) {
				if (sp->eps[e].priority != best || !ep_up(t, &sp->eps[e]))
					continue;
				if (n_eps == cap_eps)
					eps = xrealloc(eps, cap_eps = cap_eps ? cap_eps * 2 : 64, sizeof(*eps));
				eps[n_eps++] = (struct tp_dnat_ep){ .ip = sp->eps[e].ip, .port = sp->eps[e].port };
				v[n].n_eps++;
			}
			n++;
		}
	}
	/* offsets to pointers, now that eps no longer moves */
	for (size_t i = 0; i < n; i++)
		v[i].eps = eps + (uintptr_t)v[i].eps;
	*ret = v;
	*ret_eps = eps;
	return n;
}

static void pod_opts(const struct steer_ipt *t, const struct ipt_pod *p, struct tp_opts *to)
{
	tp_opts_init(to);
	to->mark = t->o.mark;
	to->agent_cgroup = t->o.agent_cgroup;
	to->listen_port = p->v.listen_port;
	to->n_excl_ports = MS_MIN((size_t)p->v.n_excl_ports, (size_t)TP_MAX_ITEMS);
	memcpy(to->excl_ports, p->v.excl_ports, to->n_excl_ports * sizeof(uint16_t));
	to->n_excl_cidrs = p->n_excl_cidrs;
	memcpy(to->excl_cidrs, p->excl_cidrs, to->n_excl_cidrs * sizeof(struct ms_cidr));
	memcpy(to->vip_cidrs, t->o.vip_cidrs, t->o.n_vip_cidrs * sizeof(struct ms_cidr));
	to->n_vip_cidrs = t->o.n_vip_cidrs;
	to->dns_port = (p->v.flags & MS_POD_DNS) ? p->v.dns_port : 0;
	/* Without its listener or responder (MS_POD_NO_LISTENER, MS_POD_NO_DNS)
	 * the pod keeps its REDIRECTs: what they reach stays inside the pod's
	 * netns, whoever holds the port, so nothing leaves. DNS alone goes
	 * direct where the mesh lets anything out, as with the eBPF engine. */
	if ((p->v.flags & MS_POD_NO_DNS) && (p->v.flags & MS_POD_PASSTHROUGH))
		to->dns_port = 0;
	/* passthrough the mesh allows needs nothing from the agent: only the
	 * VIP ranges are redirected (unless every connection is to be proxied) */
	to->capture_all = !(p->v.flags & MS_POD_PASSTHROUGH) || (p->v.flags & MS_POD_PROXY);
}

/* Render p's rules from the config and health as they are now and install
 * them, unless they are what was installed last (force: install anyway,
 * which also repairs what someone else changed). */
static int pod_apply(struct steer_ipt *t, struct ipt_pod *p, bool force, const char **ret_why)
{
	struct tp_opts to;
	struct tp_dnat_ep *eps;
	struct tp_dnat *dnat;
	char *err = NULL;
	bool refusing = false;
	int r = 0;

	if (p->nsfd < 0) { /* never this netns: the node's own rules are not ours */
		*ret_why = "the pod has no network namespace";
		return -EBADF;
	}
	pod_opts(t, p, &to);
	to.n_dnat = dnat_build(t, p, &dnat, &eps);
	to.dnat = dnat;
	for (size_t i = 0; i < to.n_dnat; i++)
		refusing |= dnat[i].unhealthy;
	char *r4 = tp_rules_render(&to, AF_INET), *r6 = tp_rules_render(&to, AF_INET6);
	char *f4 = tp_refuse_render(&to, AF_INET), *f6 = tp_refuse_render(&to, AF_INET6);
	char *filter = xasprintf("%s%s", f4 ? f4 : "", f6 ? f6 : "");
	char *text = xasprintf("%s%s%s", r4, r6, filter);
	free(r4);
	free(r6);
	free(f4);
	free(f6);
	if (!force && p->applied && streq(p->applied, text)) {
		t->skipped++;
		log_debug("pod %s: iptables rules unchanged, not installed again", p->name);
		free(text);
		free(filter);
		goto out;
	}
	/* over rules this agent installed, a failure leaves them in force */
	to.keep_on_failure = p->applied != NULL;
	free(p->applied);
	p->applied = NULL;
	if ((r = tp_install_counted(p->nsfd, t->backend, &to, &t->refused, &err)) < 0) {
		log_error("pod %s: iptables: %s", p->name, err ? err : "install failed");
		*ret_why = "cannot install the iptables rules";
		free(text);
		free(filter);
		goto out;
	}
	t->applied++;
	log_debug("pod %s: iptables rules installed", p->name);
	/* a filter part rewritten starts its counters from 0, the old ones taken into refused */
	if (!p->applied_filter || !streq(p->applied_filter, filter))
		p->refusing = false;
	p->refusing |= refusing;
	p->refuses = refusing;
	p->applied = text;
	free(p->applied_filter);
	p->applied_filter = filter;
out:
	free(err);
	free(dnat);
	free(eps);
	return r;
}

static struct ipt_pod *pod_find(struct steer_ipt *t, const char *name)
{
	for (struct ipt_pod *r = t->pods; r; r = r->next)
		if (streq(r->name, name))
			return r;
	return NULL;
}

static int si_pod_put(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why)
{
	struct steer_ipt *t = ipt(s);
	struct ipt_pod *r = pod_find(t, p->name);

	if (!r) {
		r = xcalloc(1, sizeof(*r));
		r->name = xstrdup(p->name);
		/* rules an earlier agent left may have counted refusals: read them once */
		r->refusing = true;
		DLIST_PUSH(t->pods, r);
	}
	if (r->nsfd != p->nsfd) {
		free(r->applied);
		r->applied = NULL;
	}
	r->nsfd = p->nsfd;
	r->v = p->v;
	r->n_excl_cidrs = MS_MIN(p->n_excl_cidrs, (size_t)TP_MAX_ITEMS);
	memcpy(r->excl_cidrs, p->excl_cidrs, r->n_excl_cidrs * sizeof(struct ms_cidr));
	/* a reload installs only what changed; enabling (an agent's start
	 * included) and new exclusions install whatever was there */
	int rc = pod_apply(t, r, why != STEER_RELOAD, ret_why);
	if (rc < 0 && why == STEER_ENABLE) { /* not enabled: the agent will not tell us of it again */
		DLIST_REMOVE(t->pods, r);
		pod_free(r);
	}
	return rc;
}

/* Rules and VIP routes both go, so VIPs fail at once (ENETUNREACH) as with
 * the eBPF engine. Unlike it, REDIRECTed connections already established do
 * not survive the rules' removal (tested, documented). */
static void si_pod_del(struct steer *s, const struct steer_pod *p)
{
	struct steer_ipt *t = ipt(s);
	struct ipt_pod *r = pod_find(t, p->name);
	char *err = NULL;
	uint64_t n;

	if (r) {
		if (r->refusing && p->nsfd >= 0 && tp_refused(p->nsfd, t->backend, &n, &err) == 0)
			t->refused += n;
		DLIST_REMOVE(t->pods, r);
		pod_free(r);
		free(err);
		err = NULL;
	}
	if (p->nsfd < 0)
		return;
	if (tp_uninstall(p->nsfd, t->backend, &err) < 0)
		log_warn("pod %s: iptables uninstall: %s", p->name, err ? err : "failed");
	free(err);
}

/* Nothing outlives the agent but the rules in each pod's netns, which the
 * pod registry names. */
static int si_pod_list(struct steer *s, uint64_t **ret, size_t *ret_n)
{
	(void)s;
	*ret = NULL;
	*ret_n = 0;
	return 0;
}

static void si_pod_del_cookie(struct steer *s, uint64_t cookie)
{
	(void)s;
	(void)cookie;
}

/* A new config: the pods' rules follow at their pod_put (STEER_RELOAD),
 * with the pods' new mesh flags. The config already held: health moved
 * (the agent's tick calls this when health's generation does, as it does
 * for the eBPF engine's sets), so every pod's rules are rendered again and
 * installed where they changed: the pods that can reach a service whose
 * healthy set moved. */
static int si_svcs_sync(struct steer *s, const struct ms_config *c)
{
	struct steer_ipt *t = ipt(s);
	const char *why;
	int r = 0;

	if (c != t->cfg) {
		cfg_unref(t->cfg);
		t->cfg = cfg_ref((struct ms_config *)c);
		return 0;
	}
	for (struct ipt_pod *p = t->pods; p; p = p->next)
		if (pod_apply(t, p, false, &why) < 0)
			r = -EIO;
	return r;
}

static int si_orig_dst(struct steer *s, const struct steer_pod *p, int cfd, const struct ms_addr *peer,
		       uint16_t pport, struct ms_addr *ret, uint16_t *ret_port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	bool v6 = !addr_is_v4(peer);

	(void)s;
	(void)p;
	(void)pport;
	if (getsockopt(cfd, v6 ? SOL_IPV6 : SOL_IP, v6 ? MS_IP6T_SO_ORIGINAL_DST : MS_SO_ORIGINAL_DST, &ss,
		       &len) < 0)
		return -errno;
	return addr_from_sockaddr((struct sockaddr *)&ss, ret, ret_port);
}

static int si_dns_origin(struct steer *s, const struct steer_pod *p, const struct ms_addr *client, uint16_t cport,
			 const struct ms_addr *self, uint16_t self_port, struct ms_addr *ret, uint16_t *ret_port)
{
	(void)s;
	return tp_conntrack_orig_dst(p->nsfd, IPPROTO_UDP, client, cport, self, self_port, ret, ret_port);
}

/* kernel_path_unhealthy, as the eBPF engine names it: the SYNs the REJECT
 * rules refused (what was counted by rules since replaced, plus what the
 * installed ones count; read only from pods whose rules may have counted
 * some). And how many pod rewrites a reload or a health change installed,
 * and how many it found unchanged. */
static size_t si_counters(struct steer *s, struct steer_counter *ret, size_t max)
{
	struct steer_ipt *t = ipt(s);
	uint64_t refused = t->refused;
	size_t n = 0;

	for (struct ipt_pod *p = t->pods; p; p = p->next) {
		char *err = NULL;
		uint64_t k;
		if (!p->refusing || p->nsfd < 0)
			continue;
		if (tp_refused(p->nsfd, t->backend, &k, &err) == 0) {
			refused += k;
			/* nothing counted and nothing refused now: nothing to read until it is */
			if (k == 0 && !p->refuses)
				p->refusing = false;
		}
		free(err);
	}
	if (n < max)
		ret[n++] = (struct steer_counter){ .name = "kernel_path_unhealthy", .value = refused };
	if (n < max)
		ret[n++] = (struct steer_counter){ .name = "iptables_rewrites_applied", .value = t->applied };
	if (n < max)
		ret[n++] = (struct steer_counter){ .name = "iptables_rewrites_skipped", .value = t->skipped };
	return n;
}

static const char *si_describe(struct steer *s)
{
	return ipt(s)->desc;
}

static void si_health_set(struct steer *s, steer_health_fn up, void *ctx)
{
	ipt(s)->up = up;
	ipt(s)->up_ctx = ctx;
}

static const struct steer_ops steer_iptables_ops = {
	.name = "iptables",
	.close = si_close,
	.pod_put = si_pod_put,
	.pod_del = si_pod_del,
	.pod_list = si_pod_list,
	.pod_del_cookie = si_pod_del_cookie,
	.svcs_sync = si_svcs_sync,
	.orig_dst = si_orig_dst,
	.dns_origin = si_dns_origin,
	.counters = si_counters,
	.health_set = si_health_set,
	.describe = si_describe,
};

int steer_iptables_open(const struct steer_opts *o, struct steer **ret)
{
	struct steer_ipt *t = xcalloc(1, sizeof(*t));

	if (tp_detect_backend(-1, &t->backend) < 0) {
		free(t);
		return log_error_errno(ENOENT, "iptables engine: no iptables-nft-save or iptables-legacy-save found");
	}
	t->s.ops = &steer_iptables_ops;
	t->o = *o;
	snprintf(t->desc, sizeof(t->desc), "%s", t->backend == TP_BACKEND_NFT ? "nft" : "legacy");
	log_info("iptables engine: %s back end, REDIRECT to port %u in each pod's netns, agent mark 0x%x", t->desc,
		 o->listen_port, o->mark);
	*ret = &t->s;
	return 0;
}
