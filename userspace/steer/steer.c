// SPDX-License-Identifier: MIT
#include "steer.h"

#include <errno.h>
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
