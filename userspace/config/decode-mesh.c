// SPDX-License-Identifier: MIT
/* Mesh: the fields the data plane acts on. */
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_mesh(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *b = m->body, *net, *out, *routing;
	const char *path = m->k8s ? "spec" : "";
	struct ms_config *c = L->c;
	struct ms_mesh *mesh;
	char p[DPATH_MAX], q[DPATH_MAX];

	for (size_t i = 0; i < c->n_meshes; i++)
		if (streq(c->meshes[i].name, m->name)) {
			d_err(d, m->doc, "name", "duplicate Mesh \"%s\"", log_escape(m->name));
			return;
		}
	c->meshes = xrealloc(c->meshes, c->n_meshes + 1, sizeof(*c->meshes));
	mesh = &c->meshes[c->n_meshes++];
	memset(mesh, 0, sizeof(*mesh));
	mesh->name = xstrdup(m->name);
	mesh->id = fnv1a32(m->name, strlen(m->name), 0) | 1; /* never 0: 0 means "no mesh" */
	mesh->passthrough = true; /* Kuma's default */
	/* Ours, not Kuma's: what the pods of this mesh get while no agent runs. */
	const char *fm = cfg_label(&m->labels, "meshsplice.io/fail-mode");
	if (fm && streq(fm, "open"))
		mesh->fail_open = true;
	else if (fm && !streq(fm, "closed"))
		d_err(d, m->doc, "labels", "meshsplice.io/fail-mode is \"%s\": expected open or closed", log_escape(fm));
	/* Ours too: the kernel path (auto) or every connection through the forwarder. */
	const char *dp = cfg_label(&m->labels, "meshsplice.io/datapath");
	if (dp && streq(dp, "proxy"))
		mesh->datapath_proxy = true;
	else if (dp && !streq(dp, "auto"))
		d_err(d, m->doc, "labels", "meshsplice.io/datapath is \"%s\": expected auto or proxy", log_escape(dp));
	if (!b || ynode_is_null(b))
		return;
	if (!d_is_map(d, b, m->k8s ? "spec" : "document"))
		return;
	rules_mesh(d, b, path);
	if (m->k8s)
		d_known(d, b, path,
			KEYS("networking", "routing", "mtls", "tracing", "logging", "metrics",
			     "constraints", "skipCreatingInitialPolicies", "meshServices"));
	if ((net = ynode_get(b, "networking")) && d_is_map(d, net, d_join(p, path, "networking"))) {
		d_known(d, net, p, KEYS("outbound"));
		if ((out = ynode_get(net, "outbound")) && d_is_map(d, out, d_join(q, p, "outbound"))) {
			d_known(d, out, q, KEYS("passthrough"));
			d_bool(d, out, "passthrough", q, &mesh->passthrough);
		}
	}
	if ((routing = ynode_get(b, "routing")) && d_is_map(d, routing, d_join(p, path, "routing"))) {
		d_known(d, routing, p,
			KEYS("defaultForbidMeshExternalServiceAccess", "localityAwareLoadBalancing",
			     "zoneEgress"));
		d_bool(d, routing, "defaultForbidMeshExternalServiceAccess", p, &mesh->forbid_external);
		bool dummy;
		d_bool(d, routing, "localityAwareLoadBalancing", p, &dummy);
		d_bool(d, routing, "zoneEgress", p, &dummy);
	}
}
