// SPDX-License-Identifier: MIT
#include "steer.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf-engine.h"
#include "config.h"
#include "log.h"
#include "netns.h"
#include "tproxy.h"
#include "util.h"

#define DATAPATH_LABEL "meshsplice.io/datapath"

bool steer_mesh_proxied(const struct ms_config *c, const char *mesh, bool node_proxy)
{
	const struct ms_mesh *m = cfg_find_mesh(c, mesh);

	return node_proxy || (m && m->datapath_proxy);
}

int steer_port_path(const struct ms_config *c, const struct ms_service *s, size_t p, bool node_proxy,
		    const char **why)
{
	const struct ms_port *port = &s->ports[p];
	const char *w = NULL, *label = cfg_label(&s->labels, DATAPATH_LABEL);

	if (node_proxy)
		w = "--datapath proxy";
	else if (steer_mesh_proxied(c, s->mesh, false))
		w = "the mesh is labelled " DATAPATH_LABEL ": proxy";
	else if (label && streq(label, "proxy"))
		w = "the service is labelled " DATAPATH_LABEL ": proxy";
	else if (s->tls.enabled)
		w = "TLS origination";
	else if (port->port == 0)
		w = "a VIP with every port";
	for (size_t i = 0; !w && i < port->n_eps; i++) {
		const struct ms_endpoint *e = &port->eps[i];
		if (e->type != MS_EP_IP)
			w = e->type == MS_EP_DNS ? "an endpoint by DNS name" : "a unix socket endpoint";
		else if (addr_is_v4(&e->ip) != addr_is_v4(&s->vip))
			w = "an endpoint of another address family than the VIP";
	}
	if (why)
		*why = w;
	return w ? MS_PATH_PROXY : MS_PATH_KERNEL;
}

int steer_open(const struct steer_opts *o, struct steer **ret)
{
	if (streq(o->engine, "bpf"))
		return steer_bpf_open(o, ret);
	if (streq(o->engine, "iptables"))
		return steer_iptables_open(o, ret);
	if (!bpf_engine_supported()) {
		log_info("engine auto: cgroup BPF unavailable; using iptables");
		return steer_iptables_open(o, ret);
	}
	return steer_bpf_open(o, ret);
}

int steer_uninstall(const char *bpffs_dir, const char *const *netns, size_t n_netns)
{
	/* iptables rules live in the pods' netns: remove them there */
	for (size_t i = 0; i < n_netns; i++) {
		enum tp_backend b;
		int fd = netns_open(netns[i]);
		char *err = NULL;
		if (fd < 0)
			continue;
		if (tp_detect_backend(fd, &b) == 0 && tp_uninstall(fd, b, &err) < 0)
			log_warn("uninstall iptables rules in %s: %s", netns[i], err ? err : "failed");
		free(err);
		close(fd);
	}
	return bpf_engine_uninstall(bpffs_dir);
}

void steer_kstat_add(struct ms_kstat *t, const struct ms_kstat *v)
{
	t->opened += v->opened;
	t->failed += v->failed;
	t->closed += v->closed;
	t->bytes_acked += v->bytes_acked;
	t->bytes_received += v->bytes_received;
}

static int ep_stat_cmp(const void *x, const void *y)
{
	const struct steer_ep_stat *a = x, *b = y;
	int c = memcmp(a->addr.b, b->addr.b, 16);

	return c ? c : (a->port > b->port) - (a->port < b->port);
}

static int svc_stat_cmp(const void *x, const void *y)
{
	const struct steer_svc_stat *a = x, *b = y;
	int c = (a->mesh_id > b->mesh_id) - (a->mesh_id < b->mesh_id);

	if (!c)
		c = memcmp(a->vip.b, b->vip.b, 16);
	return c ? c : (a->port > b->port) - (a->port < b->port);
}

/* Sort v (n entries of size bytes, a struct ms_kstat at k_off) by cmp and
 * add up the entries cmp calls equal: the number left. */
static size_t fold(void *v, size_t n, size_t size, size_t k_off, int (*cmp)(const void *, const void *))
{
	char *b = v;
	size_t m = 0;

	if (!n)
		return 0;
	qsort(v, n, size, cmp);
	for (size_t i = 1; i < n; i++) {
		if (cmp(b + m * size, b + i * size) == 0) {
			steer_kstat_add((struct ms_kstat *)(void *)(b + m * size + k_off),
				   (const struct ms_kstat *)(const void *)(b + i * size + k_off));
			continue;
		}
		if (++m != i)
			memcpy(b + m * size, b + i * size, size);
	}
	return m + 1;
}

size_t steer_kstats_by_ep(const struct steer_kstat *v, size_t n, struct steer_ep_stat **ret)
{
	struct steer_ep_stat *x = n ? xcalloc(n, sizeof(*x)) : NULL;

	for (size_t i = 0; i < n; i++) {
		memcpy(x[i].addr.b, v[i].key.ep, 16);
		x[i].port = v[i].key.ep_port;
		x[i].k = v[i].k;
	}
	*ret = x;
	return fold(x, n, sizeof(*x), offsetof(struct steer_ep_stat, k), ep_stat_cmp);
}

size_t steer_kstats_by_svc(const struct steer_kstat *v, size_t n, struct steer_svc_stat **ret)
{
	struct steer_svc_stat *x = n ? xcalloc(n, sizeof(*x)) : NULL;

	for (size_t i = 0; i < n; i++) {
		x[i].mesh_id = v[i].key.mesh_id;
		memcpy(x[i].vip.b, v[i].key.vip, 16);
		x[i].port = v[i].key.vip_port;
		x[i].k = v[i].k;
	}
	*ret = x;
	return fold(x, n, sizeof(*x), offsetof(struct steer_svc_stat, k), svc_stat_cmp);
}

void steer_kstats_total(const struct steer_kstat *v, size_t n, struct ms_kstat *ret)
{
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++)
		steer_kstat_add(ret, &v[i].k);
}
