// SPDX-License-Identifier: MIT
/* MeshService: selector and ports; endpoints come from Dataplanes (link.c). */
#include <string.h>
#include <strings.h>

#include "loader.h"
#include "util.h"

/* Kuma does not check appProtocol (its webhook takes TCP, or a protocol of
 * its own): one we do not know is plain TCP here, with a warning. */
static void decode_app_protocol(struct dctx *d, const struct ynode *port, const char *path, int *ret)
{
	const struct ynode *n = ynode_get(port, "appProtocol");
	char p[DPATH_MAX];

	if (!n || ynode_is_null(n))
		return;
	if (n->type == YNODE_SCALAR)
		for (size_t i = 0; i < ARRAY_SIZE(cfg_proto_names); i++)
			if (strcasecmp(n->str, cfg_proto_names[i]) == 0) {
				*ret = (int)i;
				return;
			}
	d_warn(d, n, d_join(p, path, "appProtocol"), "%s%s%s is not a protocol meshsplice knows: taken as tcp",
	       n->type == YNODE_SCALAR ? "\"" : "", n->type == YNODE_SCALAR ? log_escape(n->str) : ynode_type_name(n),
	       n->type == YNODE_SCALAR ? "\"" : "");
}

/* One of dataplaneTags (inbound tags), dataplaneRef (a Dataplane by name)
 * or dataplaneLabels (Dataplanes by their labels), as Kuma's validator says;
 * what it selects is resolved in link.c once every Dataplane is read. */
static void decode_selector(struct loader *L, struct dctx *d, const struct ynode *sel, size_t idx)
{
	struct ms_selector x = { .svc = idx };
	const struct ynode *n;
	int set = 0;

	d_known(d, sel, "spec.selector", KEYS("dataplaneTags", "dataplaneRef", "dataplaneLabels"));
	for (const char *const *k = KEYS("dataplaneTags", "dataplaneRef", "dataplaneLabels"); *k; k++)
		set += (n = ynode_get(sel, *k)) && !ynode_is_null(n);
	if (set > 1) {
		d_err(d, sel, "spec.selector", "must specify only one of: dataplaneTags, dataplaneRef, or dataplaneLabels");
		return;
	}
	if ((n = ynode_get(sel, "dataplaneTags")) && !ynode_is_null(n)) {
		x.by = SEL_TAGS;
		if (d_strmap(d, sel, "dataplaneTags", "spec.selector", &x.tags.kv, &x.tags.n) < 0)
			return;
	} else if ((n = ynode_get(sel, "dataplaneRef")) && !ynode_is_null(n)) {
		x.by = SEL_REF;
		if (!d_is_map(d, n, "spec.selector.dataplaneRef"))
			return;
		d_known(d, n, "spec.selector.dataplaneRef", KEYS("name"));
		if (d_str(d, n, "name", "spec.selector.dataplaneRef", false, &x.dp_name) < 0 || !x.dp_name)
			return; /* Kuma does not require the name; it selects nothing then */
	} else if ((n = ynode_get(sel, "dataplaneLabels")) && !ynode_is_null(n)) {
		x.by = SEL_LABELS;
		if (!d_is_map(d, n, "spec.selector.dataplaneLabels"))
			return;
		d_known(d, n, "spec.selector.dataplaneLabels", KEYS("matchLabels"));
		if (d_strmap(d, n, "matchLabels", "spec.selector.dataplaneLabels", &x.tags.kv, &x.tags.n) < 0)
			return;
	} else {
		return;
	}
	L->sels = xrealloc(L->sels, L->n_sels + 1, sizeof(*L->sels));
	L->sels[L->n_sels++] = x;
}

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
	if (sel && !ynode_is_null(sel) && d_is_map(d, sel, "spec.selector"))
		decode_selector(L, d, sel, idx);
	/* Optional in Kuma: a MeshService without ports (or selector) is valid;
	 * it has nothing to be reached at. */
	ports = ynode_get(spec, "ports");
	if (!ports || ynode_is_null(ports) || !d_is_seq(d, ports, "spec.ports"))
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
		decode_app_protocol(d, pn, p, &proto);
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
