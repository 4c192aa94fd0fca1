// SPDX-License-Identifier: MIT
/* Dataplane: the inbounds that serve MeshServices. */
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_dataplane(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *b = m->body, *net, *in;
	const char *path = m->k8s ? "spec" : "";
	_cleanup_free_ char *address = NULL;
	struct dataplane *dp;
	struct ms_addr base = { 0 };
	char p[DPATH_MAX], q[DPATH_MAX];

	if (!d_is_map(d, b, m->k8s ? "spec" : "document"))
		return;
	if (m->k8s)
		d_known(d, b, path, KEYS("networking", "metrics", "probes"));
	net = ynode_get(b, "networking");
	d_join(p, path, "networking");
	if (!net) {
		d_err(d, b, p, "required field is missing");
		return;
	}
	if (!d_is_map(d, net, p))
		return;
	d_known(d, net, p,
		KEYS("address", "advertisedAddress", "inbound", "outbound", "gateway",
		     "transparentProxying", "admin", "listeners"));
	rules_dataplane(d, b, path);
	if (d_str(d, net, "address", p, false, &address) < 0 || !address || !*address)
		return; /* the rules said why */
	if (addr_parse(address, &base) < 0) {
		/* Kuma takes a DNS name; the endpoints of a MeshService are addresses */
		if (r_is_dns_name(address))
			d_warn(d, ynode_get(net, "address"), d_join(q, p, "address"),
			       "\"%s\" is a DNS name, not an IP address: this Dataplane's inbounds serve no MeshService here",
			       log_escape(address));
		return;
	}
	for (size_t i = 0; i < L->n_dps; i++)
		if (streq(L->dps[i].name, m->name) && streq(L->dps[i].mesh, m->mesh))
			d_err(d, m->doc, "name", "duplicate Dataplane \"%s\" in mesh \"%s\"",
			      log_escape(m->name), log_escape(m->mesh));
	L->dps = xrealloc(L->dps, L->n_dps + 1, sizeof(*L->dps));
	dp = &L->dps[L->n_dps++];
	memset(dp, 0, sizeof(*dp));
	dp->name = xstrdup(m->name);
	dp->mesh = xstrdup(m->mesh);
	dp->ns = m->ns ? xstrdup(m->ns) : NULL;
	for (size_t i = 0; i < m->labels.n; i++)
		cfg_labels_set(&dp->labels, m->labels.kv[2 * i], m->labels.kv[2 * i + 1]);
	cfg_labels_set(&dp->labels, "kuma.io/mesh", dp->mesh);
	if (dp->ns && !cfg_label(&dp->labels, "k8s.kuma.io/namespace"))
		cfg_labels_set(&dp->labels, "k8s.kuma.io/namespace", dp->ns);
	in = ynode_get(net, "inbound");
	if (!in)
		return;
	if (!d_is_seq(d, in, d_join(q, p, "inbound")))
		return;
	dp->in = xcalloc(in->n, sizeof(*dp->in));
	for (size_t i = 0; i < in->n; i++) {
		char ip[DPATH_MAX];
		const struct ynode *e = in->v[i];
		struct inbound *ib = &dp->in[dp->n_in];
		_cleanup_free_ char *a = NULL;
		uint16_t port = 0, sport = 0;
		char **kv = NULL;
		size_t n = 0;

		d_index(ip, q, i);
		if (!d_is_map(d, e, ip))
			continue;
		d_known(d, e, ip, KEYS("port", "servicePort", "serviceAddress", "address", "name", "tags", "health", "state",
				     "serviceProbe", "protocol"));
		if (d_port(d, e, "port", ip, true, &port) < 0 ||
		    d_port(d, e, "servicePort", ip, false, &sport) < 0)
			continue;
		memset(ib, 0, sizeof(*ib));
		ib->addr = base;
		if (d_str(d, e, "address", ip, false, &a) == 0 && a && addr_parse(a, &ib->addr) < 0) {
			char r[DPATH_MAX];
			d_err(d, ynode_get(e, "address"), d_join(r, ip, "address"),
			      "\"%s\" is not an IP address", log_escape(a));
			continue;
		}
		/* No inbound proxy on the far side: the endpoint is the service itself. */
		ib->port = sport ? sport : port;
		d_str(d, e, "name", ip, false, &ib->name);
		if (d_strmap(d, e, "tags", ip, &kv, &n) == 0) {
			ib->tags.kv = kv;
			ib->tags.n = n;
		} else {
			struct ms_labels t = { kv, n };
			cfg_labels_free(&t);
		}
		dp->n_in++;
	}
}
