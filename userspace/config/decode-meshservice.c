// SPDX-License-Identifier: MIT
/* MeshService: selector and ports; endpoints come from Dataplanes (link.c). */
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_ms(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *sel, *ports;
	struct ms_service *s;
	size_t idx;
	char p[DPATH_MAX];

	if (!d_is_map(d, spec, "spec"))
		return;
	s = loader_svc_new(L, MS_KIND_MESH_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	decode_status_vip(d, m->status, s);
	d_known(d, spec, "spec", KEYS("selector", "ports", "identities", "state"));
	sel = ynode_get(spec, "selector");
	if (!sel) {
		d_err(d, spec, "spec.selector", "required field is missing");
	} else if (d_is_map(d, sel, "spec.selector")) {
		char **kv = NULL;
		size_t n = 0;
		d_known(d, sel, "spec.selector", KEYS("dataplaneTags"));
		if (!ynode_get(sel, "dataplaneTags"))
			d_err(d, sel, "spec.selector.dataplaneTags", "required field is missing");
		else if (d_strmap(d, sel, "dataplaneTags", "spec.selector", &kv, &n) == 0) {
			L->sels = xrealloc(L->sels, L->n_sels + 1, sizeof(*L->sels));
			L->sels[L->n_sels++] = (struct ms_selector){ .svc = idx, .tags = { kv, n } };
		} else {
			struct ms_labels t = { kv, n };
			cfg_labels_free(&t);
		}
	}
	ports = ynode_get(spec, "ports");
	if (!ports) {
		d_err(d, spec, "spec.ports", "required field is missing");
		return;
	}
	if (!d_is_seq(d, ports, "spec.ports"))
		return;
	L->c->svcs[idx].ports = xcalloc(ports->n, sizeof(struct ms_port));
	for (size_t i = 0; i < ports->n; i++) {
		const struct ynode *pn = ports->v[i], *tp;
		struct ms_port *pt = &L->c->svcs[idx].ports[L->c->svcs[idx].n_ports];
		int proto = MS_PROTO_TCP;

		d_index(p, "spec.ports", i);
		if (!d_is_map(d, pn, p))
			continue;
		d_known(d, pn, p, KEYS("name", "port", "targetPort", "appProtocol"));
		memset(pt, 0, sizeof(*pt));
		d_str(d, pn, "name", p, false, &pt->name);
		d_port(d, pn, "port", p, true, &pt->port);
		d_pick(d, pn, "appProtocol", p, cfg_proto_names, ARRAY_SIZE(cfg_proto_names), &proto);
		pt->proto = (enum ms_proto)proto;
		tp = ynode_get(pn, "targetPort");
		if (!tp) {
			pt->target_port = pt->port;
		} else if (d_parse_port(tp, &pt->target_port) < 0) {
			char q[DPATH_MAX];
			d_join(q, p, "targetPort");
			if (tp->type == YNODE_SCALAR && tp->plain && tp->len && tp->str[0] >= '0' &&
			    tp->str[0] <= '9')
				d_err(d, tp, q, "port %s out of range (1-65535)", log_escape(tp->str));
			else if (d_scalar_str(d, tp, q, &pt->target_name) == 0 &&
				 !dns_name_valid(pt->target_name))
				d_err(d, tp, q, "\"%s\" is neither a port number nor a port name",
				      log_escape(pt->target_name));
		}
		for (size_t j = 0; j < L->c->svcs[idx].n_ports; j++)
			if (L->c->svcs[idx].ports[j].port == pt->port && pt->port)
				d_err(d, pn, p, "port %u is listed twice", pt->port);
		L->c->svcs[idx].n_ports++;
	}
}
