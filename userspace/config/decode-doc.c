// SPDX-License-Identifier: MIT
/* One YAML document: its kind, name, mesh and labels in either style (Kubernetes
 * or Universal), then the decoder of its kind. */
#include <stdio.h>
#include <errno.h>
#include <string.h>

#include "loader.h"
#include "util.h"

struct ms_service *loader_svc_new(struct loader *L, enum ms_kind k, struct meta *m,
				  struct dctx *d)
{
	struct ms_config *c = L->c;
	struct ms_service *s;

	c->svcs = xrealloc(c->svcs, c->n_svcs + 1, sizeof(*c->svcs));
	s = &c->svcs[c->n_svcs++];
	memset(s, 0, sizeof(*s));
	s->kind = k;
	s->name = xstrdup(m->name);
	s->mesh = xstrdup(m->mesh);
	s->ns = m->ns ? xstrdup(m->ns) : NULL;
	s->labels = m->labels;
	memset(&m->labels, 0, sizeof(m->labels));
	const char *dp = cfg_label(&s->labels, "meshsplice.io/datapath");
	if (dp && !streq(dp, "proxy") && !streq(dp, "auto"))
		d_err(d, m->doc, "labels", "meshsplice.io/datapath is \"%s\": expected auto or proxy", log_escape(dp));
	s->file = xstrdup(d->file);
	s->line = m->doc->line;
	s->col = m->doc->col;
	const struct ynode *mn = ynode_get(m->doc, "mesh");
	if (!mn && m->k8s)
		mn = ynode_get(ynode_get(ynode_get(m->doc, "metadata"), "labels"), "kuma.io/mesh");
	if (mn) {
		s->mesh_label = !ynode_get(m->doc, "mesh");
		s->mesh_line = mn->line;
		s->mesh_col = mn->col;
	}
	/* Labels Kuma's zone control plane puts on every resource it stores. */
	cfg_labels_set(&s->labels, "kuma.io/mesh", s->mesh);
	if (!cfg_label(&s->labels, "kuma.io/origin"))
		cfg_labels_set(&s->labels, "kuma.io/origin", "zone");
	if (s->ns && !cfg_label(&s->labels, "k8s.kuma.io/namespace"))
		cfg_labels_set(&s->labels, "k8s.kuma.io/namespace", s->ns);
	const char *dn = cfg_label(&s->labels, "kuma.io/display-name");
	s->display_name = xstrdup(dn ? dn : s->name);
	return s;
}

void decode_status_vip(struct dctx *d, const struct ynode *status, struct ms_service *s)
{
	const struct ynode *vip, *vips;
	char ip[64] = "";
	const struct ynode *at = NULL;

	if (!status || status->type != YNODE_MAP)
		return;
	/* MeshExternalService: status.vip.ip; MeshService: status.vips[0].ip */
	if ((vip = ynode_get(status, "vip")) && ynode_get(vip, "ip"))
		at = ynode_get(vip, "ip");
	else if ((vips = ynode_get(status, "vips")) && vips->type == YNODE_SEQ && vips->n > 0 &&
		 ynode_get(vips->v[0], "ip"))
		at = ynode_get(vips->v[0], "ip");
	if (!at)
		return;
	if (at->type == YNODE_SCALAR)
		snprintf(ip, sizeof(ip), "%s", at->str);
	if (addr_parse(ip, &s->vip) < 0) {
		d_err(d, at, "status.vip", "\"%s\" is not an IP address", log_escape(at->str ? at->str : ""));
		return;
	}
	s->vip_explicit = true;
}

static const char *const universal_common[] = { "type", "name", "mesh", "labels",
						  "creationTime", "modificationTime", NULL };

/* Kuma's checks of every resource's name, mesh and labels (its API server
 * and Kubernetes' apply the same ones to a Kubernetes resource). owner is
 * the map that holds name and labels: metadata, or a Universal document. */
static void check_meta(struct dctx *d, const struct meta *m, const struct ynode *owner)
{
	const char *pre = m->k8s ? "metadata." : "";
	const struct ynode *ln = ynode_get(owner, "labels"), *mn = ynode_get(m->doc, "mesh");
	char p[DPATH_MAX], q[DPATH_MAX];
	const char *why;

	snprintf(p, sizeof(p), "%sname", pre);
	if ((why = cfg_name_check(m->name)))
		d_err(d, ynode_get(owner, "name"), p, "%s", why);
	/* MeshService and MeshExternalService names become DNS labels */
	if (streq(m->kind, "MeshExternalService") || streq(m->kind, "MeshService")) {
		const char *dn = cfg_label(&m->labels, "kuma.io/display-name");
		if (strlen(dn ? dn : m->name) > 63)
			d_err(d, ynode_get(owner, "name"), p, "value length must be less or equal %d", 63);
	}
	if (!streq(m->kind, "Mesh") && !streq(m->kind, "HostnameGenerator") && (why = cfg_mesh_name_check(m->mesh)))
		d_err(d, mn ? mn : owner, "mesh", "%s", why);
	if (!ln || ln->type != YNODE_MAP)
		return;
	snprintf(p, sizeof(p), "%slabels", pre);
	for (size_t i = 0; i + 1 < ln->n; i += 2) {
		const struct ynode *k = ln->v[i], *v = ln->v[i + 1];
		if (k->type != YNODE_SCALAR || v->type != YNODE_SCALAR)
			continue; /* d_strmap said so */
		d_join(q, p, log_escape(k->str));
		if ((why = cfg_label_key_check(k->str)))
			d_err(d, k, q, "%s", why);
		if ((why = cfg_label_value_check(v->str)))
			d_err(d, v, q, "%s", why);
		if (streq(k->str, "kuma.io/origin") && !streq(v->str, "zone") && !streq(v->str, "global"))
			d_err(d, v, q, "resource origin \"%s\" is neither zone nor global", log_escape(v->str));
		if (streq(k->str, "kuma.io/mesh") && mn && !streq(v->str, m->mesh))
			d_err(d, v, q, "kuma.io/mesh label must not differ from mesh set on resource");
	}
}

/* Check the top level of a document and fill meta. Returns 0 or -EINVAL. */
static int decode_meta(struct dctx *d, const struct ynode *doc, struct meta *m)
{
	const struct ynode *kind = ynode_get(doc, "kind"), *type = ynode_get(doc, "type");
	const struct ynode *api = ynode_get(doc, "apiVersion");
	char *s = NULL;

	memset(m, 0, sizeof(*m));
	m->doc = doc;
	if (api || kind) {
		const struct ynode *md = ynode_get(doc, "metadata");
		m->k8s = true;
		if (!kind || kind->type != YNODE_SCALAR) {
			d_err(d, kind ? kind : doc, "kind", kind ? "expected a string" : "required field is missing");
			return -EINVAL;
		}
		m->kind = kind->str;
		if (!md) {
			d_err(d, doc, "metadata", "required field is missing");
			return -EINVAL;
		}
		if (!d_is_map(d, md, "metadata"))
			return -EINVAL;
		d_known(d, md, "metadata",
			KEYS("name", "namespace", "labels", "annotations", "uid", "resourceVersion",
			     "generation", "creationTimestamp", "ownerReferences", "finalizers",
			     "managedFields"));
		if (d_str(d, md, "name", "metadata", true, &m->name) < 0 || !m->name)
			return -EINVAL;
		d_str(d, md, "namespace", "metadata", false, &m->ns);
		d_strmap(d, md, "labels", "metadata", &m->labels.kv, &m->labels.n);
		if (!streq(m->kind, "Secret") && !streq(m->kind, "Mesh") &&
		    (!streq(m->kind, "ExternalService") || gloo_api(doc)) && !streq(m->kind, "Dataplane"))
			d_known(d, doc, "", KEYS("apiVersion", "kind", "metadata", "spec", "status", "mesh"));
		else if (!streq(m->kind, "Secret"))
			d_known(d, doc, "", KEYS("apiVersion", "kind", "metadata", "spec", "mesh"));
		m->body = ynode_get(doc, "spec");
		m->status = ynode_get(doc, "status");
		d_str(d, doc, "mesh", "", false, &s);
		const char *lm = cfg_label(&m->labels, "kuma.io/mesh");
		m->mesh = xstrdup(s ? s : lm ? lm : "default");
		free(s);
		check_meta(d, m, md);
		if (!m->body && !streq(m->kind, "Secret") && !streq(m->kind, "Mesh")) {
			d_err(d, doc, "spec", "required field is missing");
			return -EINVAL;
		}
		return 0;
	}
	if (!type) {
		d_err(d, doc, "", "neither type (Universal) nor apiVersion/kind (Kubernetes): not a resource");
		return -EINVAL;
	}
	if (type->type != YNODE_SCALAR) {
		d_err(d, type, "type", "expected a string, got %s", ynode_type_name(type));
		return -EINVAL;
	}
	m->kind = type->str;
	if (d_str(d, doc, "name", "", true, &m->name) < 0 || !m->name)
		return -EINVAL;
	d_str(d, doc, "mesh", "", false, &s);
	m->mesh = xstrdup(s ? s : "default");
	free(s);
	d_strmap(d, doc, "labels", "", &m->labels.kv, &m->labels.n);
	check_meta(d, m, doc);
	m->body = ynode_get(doc, "spec");
	m->status = ynode_get(doc, "status");
	/* Legacy Universal resources keep their fields at the top level. */
	if (streq(m->kind, "Mesh") || streq(m->kind, "ExternalService") ||
	    streq(m->kind, "Dataplane"))
		m->body = doc;
	return 0;
}

static void check_universal_keys(struct dctx *d, const struct meta *m)
{
	static const char *const extra_mesh[] = { "networking", "routing", "mtls", "tracing",
						  "logging", "metrics", "constraints",
						  "skipCreatingInitialPolicies", "meshServices" };
	static const char *const extra_es[] = { "tags", "networking" };
	static const char *const extra_dp[] = { "networking", "metrics", "probes" };
	static const char *const extra_spec[] = { "spec", "status" };
	static const char *const extra_secret[] = { "data" };
	const char *const *extra = extra_spec;
	size_t n_extra = ARRAY_SIZE(extra_spec);
	const char *allowed[32];
	size_t n = 0;

	if (streq(m->kind, "Mesh"))
		extra = extra_mesh, n_extra = ARRAY_SIZE(extra_mesh);
	else if (streq(m->kind, "ExternalService"))
		extra = extra_es, n_extra = ARRAY_SIZE(extra_es);
	else if (streq(m->kind, "Dataplane"))
		extra = extra_dp, n_extra = ARRAY_SIZE(extra_dp);
	else if (streq(m->kind, "Secret"))
		extra = extra_secret, n_extra = ARRAY_SIZE(extra_secret);
	for (const char *const *u = universal_common; *u; u++)
		allowed[n++] = *u;
	for (size_t i = 0; i < n_extra; i++)
		allowed[n++] = extra[i];
	allowed[n] = NULL;
	d_known(d, m->doc, "", allowed);
}

typedef void decode_fn(struct loader *L, struct dctx *d, struct meta *m);

static const struct {
	const char *kind;
	decode_fn *decode;
} decoders[] = {
	{ "Mesh", decode_mesh },
	{ "MeshExternalService", decode_mes },
	{ "MeshService", decode_ms },
	{ "HostnameGenerator", decode_hostgen },
	{ "ExternalService", decode_es },
	{ "Secret", decode_secret },
	{ "Dataplane", decode_dataplane },
	{ "MeshPassthrough", decode_passthrough },
};

/* Kuma's other kinds (v2.14: pkg/core/resources/apis, pkg/plugins/policies):
 * kuma-cp accepts them and the data plane meshsplice implements has nothing
 * to do for them, so a config that holds them is not refused for it. Status
 * kinds (insights, overviews) are never written by users and stay unknown. */
static const char *const ignored_kinds[] = {
	"MeshAccessLog", "MeshCircuitBreaker", "MeshFaultInjection", "MeshHealthCheck",
	"MeshHTTPRoute", "MeshLoadBalancingStrategy", "MeshMetric", "MeshProxyPatch",
	"MeshRateLimit", "MeshRetry", "MeshTCPRoute", "MeshTimeout", "MeshTLS", "MeshTrace",
	"MeshTrafficPermission", "MeshGateway", "MeshGatewayRoute", "MeshIdentity",
	"MeshMultiZoneService", "MeshOpenTelemetryBackend", "MeshTrust", "MeshZoneAddress",
	"CircuitBreaker", "FaultInjection", "HealthCheck", "ProxyTemplate", "RateLimit", "Retry",
	"Timeout", "TrafficLog", "TrafficPermission", "TrafficRoute", "TrafficTrace",
	"VirtualOutbound", "ZoneEgress", "ZoneIngress", "Zone", "GlobalSecret", "Workload",
};

/* The kind a document names (kind, or Universal's type), before anything
 * else is checked: an unknown kind is the first thing to say about it. */
static const struct ynode *doc_kind(const struct ynode *doc, const char **ret_field)
{
	const struct ynode *k = ynode_get(doc, "kind");

	*ret_field = "kind";
	if (k || ynode_get(doc, "apiVersion"))
		return k;
	*ret_field = "type";
	return ynode_get(doc, "type");
}

static void decode_doc(struct loader *L, struct dctx *d, const struct ynode *doc, bool in_list);

/* Kubernetes' List (apiVersion: v1, kind: List, items: [...], as kubectl get
 * -o yaml writes it): each item is a document of its own, its problems at
 * its own lines. */
static void decode_list(struct loader *L, struct dctx *d, const struct ynode *doc)
{
	const struct ynode *items = ynode_get(doc, "items");

	d_known(d, doc, "", KEYS("apiVersion", "kind", "metadata", "items"));
	if (!items || ynode_is_null(items))
		return;
	if (!d_is_seq(d, items, "items"))
		return;
	for (size_t i = 0; i < items->n; i++)
		decode_doc(L, d, items->v[i], true);
}

static void decode_doc(struct loader *L, struct dctx *d, const struct ynode *doc, bool in_list)
{
	const struct ynode *kn;
	const char *kfield;
	decode_fn *decode = NULL;
	struct meta m;

	if (!doc || ynode_is_null(doc))
		return; /* empty document */
	if (doc->type != YNODE_MAP) {
		d_err(d, doc, "", "a resource must be a mapping, got %s", ynode_type_name(doc));
		return;
	}
	kn = doc_kind(doc, &kfield);
	if (kn && kn->type == YNODE_SCALAR && streq(kn->str, "List") && streq(kfield, "kind") && !in_list) {
		decode_list(L, d, doc);
		return;
	}
	/* Gloo's kinds by their apiVersion: its ExternalService is not Kuma's */
	if (kn && kn->type == YNODE_SCALAR && gloo_api(doc))
		decode = decode_gloo;
	if (kn && kn->type == YNODE_SCALAR) {
		for (size_t i = 0; i < ARRAY_SIZE(decoders) && !decode; i++)
			if (streq(kn->str, decoders[i].kind))
				decode = decoders[i].decode;
		for (size_t i = 0; i < ARRAY_SIZE(ignored_kinds) && !decode; i++)
			if (streq(kn->str, ignored_kinds[i])) {
				d_warn(d, kn, kfield, "%s is a Kuma resource that meshsplice does not act on: ignored",
				       ignored_kinds[i]);
				return;
			}
		if (!decode) {
			d_err(d, kn, kfield,
			      "unknown resource \"%s\" (expected Mesh, MeshExternalService, MeshService, HostnameGenerator, ExternalService, Secret, Dataplane or another Kuma kind)",
			      log_escape(kn->str));
			return;
		}
	}
	if (decode_meta(d, doc, &m) < 0) {
		doc_meta_free(&m);
		return;
	}
	if (!m.k8s)
		check_universal_keys(d, &m);
	decode(L, d, &m);
	doc_meta_free(&m);
}

void load_one(struct loader *L, const char *buf, size_t len, const char *name)
{
	struct dctx d = { .file = name, .errs = L->errs };
	struct ydoc *docs = NULL;
	int n = ydom_parse(buf, len, name, L->errs, &docs);

	if (n < 0)
		return;
	for (int i = 0; i < n; i++)
		decode_doc(L, &d, docs[i].root, false);
	ydom_free_docs(docs, (size_t)n);
	L->c->n_files++;
}
