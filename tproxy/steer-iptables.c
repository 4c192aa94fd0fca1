// SPDX-License-Identifier: MIT
/* The iptables engine behind steer_ops: a chain of ours in each pod's netns
 * REDIRECTs to the listener; the original destination comes from conntrack
 * (SO_ORIGINAL_DST for TCP, a conntrack lookup for UDP DNS). The policy is
 * decided in userspace for every redirected connection, so the rules depend
 * on the pod alone, never on the config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

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
	char desc[128];
};

static struct steer_ipt *ipt(struct steer *s)
{
	return container_of(s, struct steer_ipt, s);
}

static void si_close(struct steer *s)
{
	free(ipt(s));
}

static int si_pod_put(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why)
{
	struct steer_ipt *t = ipt(s);
	struct tp_opts to;
	char *err = NULL;
	int r;

	if (why == STEER_RELOAD)
		return 0; /* the rules do not depend on the config */
	tp_opts_init(&to);
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
	if ((r = tp_install(p->nsfd, t->backend, &to, &err)) < 0) {
		log_error("pod %s: iptables: %s", p->name, err ? err : "install failed");
		*ret_why = "cannot install the iptables rules";
	}
	free(err);
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
	(void)s;
	(void)c;
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
