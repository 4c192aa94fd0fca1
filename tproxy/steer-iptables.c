// SPDX-License-Identifier: MIT
/* The iptables engine behind steer_ops: a chain of ours in each pod's netns
 * DNATs kernel-path VIPs to their endpoints and REDIRECTs the rest to the
 * listener; the original destination comes from conntrack (SO_ORIGINAL_DST
 * for TCP, a conntrack lookup for UDP DNS). What is redirected is decided in
 * userspace; the DNAT rules follow the config, so a reload rewrites each
 * pod's chain (one iptables-restore: the chain is replaced whole, never seen
 * half-written). */
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

struct steer_ipt {
	struct steer s;
	enum tp_backend backend;
	struct steer_opts o;
	struct ms_config *cfg; /* the last svcs_sync's: what the DNAT rules follow */
	char desc[128];
};

static struct steer_ipt *ipt(struct steer *s)
{
	return container_of(s, struct steer_ipt, s);
}

static void si_close(struct steer *s)
{
	cfg_unref(ipt(s)->cfg);
	free(ipt(s));
}

/* The kernel-path service ports of the pod's mesh (steer_port_path, as the
 * eBPF engine chooses them), each with the IP endpoints of its best
 * priority level. A service the mesh forbids stays redirected: the agent
 * refuses it with its reason. */
static size_t dnat_build(const struct steer_ipt *t, const struct steer_pod *p, struct tp_dnat **ret,
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
			uint8_t best = UINT8_MAX;
			for (size_t e = 0; e < sp->n_eps; e++)
				best = MS_MIN(best, sp->eps[e].priority);
			if (n == cap)
				v = xrealloc(v, cap = cap ? cap * 2 : 16, sizeof(*v));
			v[n] = (struct tp_dnat){ .vip = s->vip, .port = sp->port, .eps = (const void *)(uintptr_t)n_eps };
			for (size_t e = 0; e < sp->n_eps; e++) {
				if (sp->eps[e].priority != best)
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

static int si_pod_put(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why)
{
	struct steer_ipt *t = ipt(s);
	struct tp_opts to;
	char *err = NULL;
	int r;

	/* the DNAT rules follow the config: rewritten on every call */
	tp_opts_init(&to);
	to.keep_on_failure = why != STEER_ENABLE;
	to.mark = t->o.mark;
	to.agent_cgroup = t->o.agent_cgroup;
	to.listen_port = p->v.listen_port;
	to.n_excl_ports = MS_MIN((size_t)p->v.n_excl_ports, (size_t)TP_MAX_ITEMS);
	memcpy(to.excl_ports, p->v.excl_ports, to.n_excl_ports * sizeof(uint16_t));
	to.n_excl_cidrs = MS_MIN(p->n_excl_cidrs, (size_t)TP_MAX_ITEMS);
	memcpy(to.excl_cidrs, p->excl_cidrs, to.n_excl_cidrs * sizeof(struct ms_cidr));
	memcpy(to.vip_cidrs, t->o.vip_cidrs, t->o.n_vip_cidrs * sizeof(struct ms_cidr));
	to.n_vip_cidrs = t->o.n_vip_cidrs;
	to.dns_port = (p->v.flags & MS_POD_DNS) ? p->v.dns_port : 0;
	/* Without its listener or responder (MS_POD_NO_LISTENER, MS_POD_NO_DNS)
	 * the pod keeps its REDIRECTs: what they reach stays inside the pod's
	 * netns, whoever holds the port, so nothing leaves. DNS alone goes
	 * direct where the mesh lets anything out, as with the eBPF engine. */
	if ((p->v.flags & MS_POD_NO_DNS) && (p->v.flags & MS_POD_PASSTHROUGH))
		to.dns_port = 0;
	/* passthrough the mesh allows needs nothing from the agent: only the
	 * VIP ranges are redirected (unless every connection is to be proxied) */
	to.capture_all = !(p->v.flags & MS_POD_PASSTHROUGH) || (p->v.flags & MS_POD_PROXY);
	struct tp_dnat_ep *eps;
	struct tp_dnat *dnat;
	to.n_dnat = dnat_build(t, p, &dnat, &eps);
	to.dnat = dnat;
	if ((r = tp_install(p->nsfd, t->backend, &to, &err)) < 0) {
		log_error("pod %s: iptables: %s", p->name, err ? err : "install failed");
		*ret_why = "cannot install the iptables rules";
	}
	free(err);
	free(dnat);
	free(eps);
	return r;
}

/* Rules and VIP routes both go, so VIPs fail at once (ENETUNREACH) as with
 * the eBPF engine. Unlike it, REDIRECTed connections already established do
 * not survive the rules' removal (tested, documented). */
static void si_pod_del(struct steer *s, const struct steer_pod *p)
{
	char *err = NULL;

	if (p->nsfd < 0)
		return;
	if (tp_uninstall(p->nsfd, ipt(s)->backend, &err) < 0)
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

static int si_svcs_sync(struct steer *s, const struct ms_config *c)
{
	struct steer_ipt *t = ipt(s);

	/* the pods' chains follow at their pod_put (STEER_RELOAD) */
	cfg_unref(t->cfg);
	t->cfg = cfg_ref((struct ms_config *)c);
	return 0;
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

static size_t si_counters(struct steer *s, struct steer_counter *ret, size_t max)
{
	(void)s;
	(void)ret;
	(void)max;
	return 0;
}

static const char *si_describe(struct steer *s)
{
	return ipt(s)->desc;
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
