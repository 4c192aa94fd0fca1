// SPDX-License-Identifier: MIT
/* MeshPassthrough: which destinations outside the mesh a mesh lets through
 * (passthroughMode, appendMatch[]), checked as Kuma v2.14 checks it
 * (pkg/plugins/policies/meshpassthrough/api/v1alpha1/validator.go); the
 * link pass puts every policy of a mesh on the mesh, in Kuma's order. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

static const char *const mode_names[] = { "None", "Matched", "All" };
static const enum ms_pass_mode mode_vals[] = { MS_PASS_NONE, MS_PASS_MATCHED, MS_PASS_ALL };
static const char *const type_names[] = { "IP", "CIDR", "Domain" };
const char *const cfg_match_proto_names[6] = { "tcp", "tls", "http", "http2", "grpc", "mysql" };

static bool proto_is_l7(enum ms_match_proto p)
{
	return p == MS_MATCH_HTTP || p == MS_MATCH_HTTP2 || p == MS_MATCH_GRPC;
}

/* An address with an optional host part after the prefix, as Go's
 * net.ParseCIDR takes it ("1.2.3.4/24" is valid in Kuma): the network
 * address is kept. */
static int parse_cidr_loose(const char *s, struct ms_cidr *ret)
{
	char buf[MS_ADDR_STRLEN];
	const char *slash = strchr(s, '/');
	char *end;
	long plen;

	if (!slash || (size_t)(slash - s) >= sizeof(buf) || !isdigit((unsigned char)slash[1]))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (addr_parse(buf, &ret->addr) < 0)
		return -EINVAL;
	errno = 0;
	plen = strtol(slash + 1, &end, 10);
	if (*end || errno || plen < 0 || plen > (strchr(buf, ':') ? 128 : 32) || end - slash > 4)
		return -EINVAL;
	if (!strchr(buf, ':'))
		plen += 96;
	for (unsigned i = 0; i < 128; i++)
		if (i >= (unsigned)plen)
			ret->addr.b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
	ret->plen = (uint8_t)plen;
	return 0;
}

/* Kuma's ValidateTargetRef for the kinds MeshPassthrough names: Mesh, and
 * MeshSubset and Dataplane, which this meshsplice does not apply. */
static int decode_target_ref(struct dctx *d, const struct ynode *spec)
{
	const struct ynode *tr = ynode_get(spec, "targetRef"), *kn;
	char p[DPATH_MAX];

	if (!tr || ynode_is_null(tr))
		return 0; /* Kuma: the whole mesh */
	if (!d_is_map(d, tr, "spec.targetRef"))
		return -EINVAL;
	d_known(d, tr, "spec.targetRef",
		KEYS("kind", "name", "mesh", "tags", "labels", "namespace", "sectionName", "proxyTypes"));
	kn = ynode_get(tr, "kind");
	if (!kn || ynode_is_null(kn) || (kn->type == YNODE_SCALAR && !*kn->str)) {
		d_err(d, kn ? kn : tr, "spec.targetRef.kind", "must be defined");
		return -EINVAL;
	}
	if (kn->type != YNODE_SCALAR) {
		d_err(d, kn, "spec.targetRef.kind", "expected a string, got %s", ynode_type_name(kn));
		return -EINVAL;
	}
	if (streq(kn->str, "Dataplane") || streq(kn->str, "MeshSubset")) {
		/* Kuma accepts them; applying the policy to the whole mesh instead
		 * would open (or close) what it does not name */
		d_err(d, kn, "spec.targetRef.kind",
		      "targetRef kind %s is not supported by this meshsplice (only Mesh): refused, not ignored", kn->str);
		return -EINVAL;
	}
	if (!streq(kn->str, "Mesh")) {
		d_err(d, kn, "spec.targetRef.kind", "value '%s' is not supported", log_escape(kn->str));
		return -EINVAL;
	}
	int r = 0;
	for (const char *const *k = KEYS("name", "mesh", "tags", "labels", "namespace", "sectionName"); *k; k++) {
		const struct ynode *v = ynode_get(tr, *k);
		if (!v || ynode_is_null(v) || (v->type == YNODE_SCALAR && !*v->str) ||
		    (v->type != YNODE_SCALAR && v->n == 0))
			continue;
		d_join(p, "spec.targetRef", *k);
		if (streq(*k, "name"))
			d_err(d, v, p, "using name with kind Mesh is not yet supported");
		else
			d_err(d, v, p, "must not be set with kind Mesh");
		r = -EINVAL;
	}
	return r;
}

/* appendMatch[i]'s value for its type; 0 or an error at value. */
static int match_value(struct dctx *d, const struct ynode *n, const char *path, const char *v,
		       struct ms_pass_match *m)
{
	char p[DPATH_MAX];
	const char *dom = v;

	d_join(p, path, "value");
	switch (m->type) {
	case MS_MATCH_IP:
		if (addr_parse(v, &m->cidr.addr) < 0) {
			d_err(d, n, p, "provided IP has incorrect value");
			return -EINVAL;
		}
		m->cidr.plen = 128;
		return 0;
	case MS_MATCH_CIDR:
		if (parse_cidr_loose(v, &m->cidr) < 0) {
			d_err(d, n, p, "provided CIDR has incorrect value");
			return -EINVAL;
		}
		return 0;
	case MS_MATCH_DOMAIN:
		if (v[0] == '*' && v[1] && v[1] != '.') {
			d_err(d, n, p, "provided DNS has incorrect value, partial wildcard is currently not supported");
			return -EINVAL;
		}
		if (strncmp(v, "*.", 2) == 0)
			dom = v + 2;
		/* "*" alone is every name, as Kuma takes it */
		if (!streq(v, "*") && (dom[0] == '*' || !dns_name_valid(dom))) {
			d_err(d, n, p, "provided DNS has incorrect value");
			return -EINVAL;
		}
		m->domain = xstrdup(v);
		for (char *c = m->domain; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		return 0;
	}
	return -EINVAL;
}

struct seen {
	uint16_t port;
	enum ms_match_proto proto;
	const char *value;
};

static int decode_match(struct dctx *d, const struct ynode *n, const char *path, const char *origin,
			struct ms_pass_match *m)
{
	_cleanup_free_ char *value = NULL;
	char p[DPATH_MAX];
	int t = -1, proto = MS_MATCH_TCP, r = 0;
	unsigned long port = 0;
	const struct ynode *pn;

	memset(m, 0, sizeof(*m));
	if (!d_is_map(d, n, path))
		return -EINVAL;
	d_known(d, n, path, KEYS("type", "value", "port", "protocol"));
	const struct ynode *tn = ynode_get(n, "type");
	if (!tn) {
		d_err(d, n, d_join(p, path, "type"), "required field is missing");
		r = -EINVAL;
	} else if (tn->type != YNODE_SCALAR ||
		   (t = streq(tn->str, "IP") ? 0 : streq(tn->str, "CIDR") ? 1 : streq(tn->str, "Domain") ? 2 : -1) < 0) {
		d_err(d, tn, d_join(p, path, "type"),
		      "provided type %s is not supported, one of Domain, IP, or CIDR is supported",
		      tn->type == YNODE_SCALAR ? log_escape(tn->str) : ynode_type_name(tn));
		r = -EINVAL;
	}
	if (d_str(d, n, "value", path, true, &value) < 0 || !value)
		r = -EINVAL;
	pn = ynode_get(n, "port");
	if (pn && !ynode_is_null(pn)) {
		if (d_uint(d, n, "port", path, 0, 4294967295UL, &port) < 0) {
			r = -EINVAL;
		} else if (port == 0 || port > 65535) {
			d_err(d, pn, d_join(p, path, "port"), "port must be a valid (1-65535)");
			r = -EINVAL;
		}
	}
	const struct ynode *prn = ynode_get(n, "protocol");
	if (prn && prn->type == YNODE_SCALAR && !*prn->str)
		; /* Kubernetes' default: tcp */
	else if (prn && (prn->type != YNODE_SCALAR ||
			 d_pick(d, n, "protocol", path, cfg_match_proto_names, 6, &proto) < 0)) {
		if (prn->type != YNODE_SCALAR)
			d_err(d, prn, d_join(p, path, "protocol"),
			      "\"protocol\" must be one of [\"tcp\", \"tls\", \"grpc\", \"http\", \"http2\", \"mysql\"]");
		r = -EINVAL;
	}
	if (proto == MS_MATCH_MYSQL && !port && !(pn && !ynode_is_null(pn))) {
		d_err(d, n, d_join(p, path, "port"), "port must be defined for Mysql protocol");
		r = -EINVAL;
	}
	m->port = (uint16_t)(port <= 65535 ? port : 0);
	m->proto = (enum ms_match_proto)proto;
	if (t < 0)
		return -EINVAL;
	m->type = (enum ms_match_type)t;
	if (m->type == MS_MATCH_DOMAIN && (m->proto == MS_MATCH_TCP || m->proto == MS_MATCH_MYSQL)) {
		d_err(d, prn ? prn : n, d_join(p, path, "protocol"), "protocol %s is not supported for a domain",
		      cfg_match_proto_names[m->proto]);
		r = -EINVAL;
	}
	if (value && match_value(d, ynode_get(n, "value"), path, value, m) < 0)
		r = -EINVAL;
	if (m->type == MS_MATCH_DOMAIN && value && value[0] == '*' && !m->port && proto_is_l7(m->proto)) {
		d_err(d, n, d_join(p, path, "port"), "wildcard domains doesn't work for all ports and layer 7 protocol");
		r = -EINVAL;
	}
	m->origin = xstrdup(origin);
	m->file = xstrdup(d->file);
	m->line = n->line;
	m->col = n->col;
	return r;
}

static void match_free(struct ms_pass_match *m)
{
	free(m->domain);
	free(m->origin);
	free(m->file);
	memset(m, 0, sizeof(*m));
}

void decode_passthrough(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *def, *am;
	struct pass_doc pd = { 0 };
	char p[DPATH_MAX], origin[DPATH_MAX + 64];
	int bad = 0;

	if (!d_is_map(d, spec, "spec"))
		return;
	d_known(d, spec, "spec", KEYS("targetRef", "default"));
	if (decode_target_ref(d, spec) < 0)
		bad = 1;
	pd.mode = MS_PASS_MATCHED; /* Kuma: unset means Matched */
	def = ynode_get(spec, "default");
	if (def && !ynode_is_null(def) && d_is_map(d, def, "spec.default")) {
		int mode = -1;
		d_known(d, def, "spec.default", KEYS("passthroughMode", "appendMatch"));
		if (d_pick(d, def, "passthroughMode", "spec.default", mode_names, ARRAY_SIZE(mode_names), &mode) < 0)
			bad = 1;
		else if (mode >= 0)
			pd.mode = mode_vals[mode], pd.mode_set = true;
		am = ynode_get(def, "appendMatch");
		if (am && !ynode_is_null(am) && d_is_seq(d, am, "spec.default.appendMatch")) {
			struct seen *seen = xcalloc(am->n ? am->n : 1, sizeof(*seen));
			/* Kuma's map port → the protocol first given for it */
			struct { uint16_t port; enum ms_match_proto proto; } *pp = xcalloc(am->n ? am->n : 1, sizeof(*pp));
			size_t n_seen = 0, n_pp = 0;

			pd.matches = xcalloc(am->n ? am->n : 1, sizeof(*pd.matches));
			for (size_t i = 0; i < am->n; i++) {
				struct ms_pass_match x;
				d_index(p, "spec.default.appendMatch", i);
				snprintf(origin, sizeof(origin), "MeshPassthrough/%s appendMatch[%zu]", m->name, i);
				if (decode_match(d, am->v[i], p, origin, &x) < 0) {
					match_free(&x);
					bad = 1;
					continue;
				}
				char q[DPATH_MAX];
				if (x.port) {
					size_t k;
					for (k = 0; k < n_pp && pp[k].port != x.port; k++)
						;
					if (k < n_pp && pp[k].proto != x.proto && proto_is_l7(x.proto)) {
						d_err(d, ynode_get(am->v[i], "port"), d_join(q, p, "port"),
						      "using the same port in multiple matches requires the same protocol for the following protocols: [grpc http http2]");
						bad = 1;
					} else if (k < n_pp) {
						pp[k].proto = x.proto;
					} else {
						pp[n_pp].port = x.port;
						pp[n_pp++].proto = x.proto;
					}
					const char *v = ynode_get(am->v[i], "value")->str;
					for (k = 0; k < n_seen; k++)
						if (seen[k].port == x.port && seen[k].proto == x.proto && streq(seen[k].value, v))
							break;
					if (k < n_seen) {
						d_err(d, ynode_get(am->v[i], "value"), d_join(q, p, "value"),
						      "value %s is already defiend for this port and protocol", log_escape(v));
						bad = 1;
					} else {
						seen[n_seen++] = (struct seen){ x.port, x.proto, v };
					}
				}
				pd.matches[pd.n_matches++] = x;
			}
			free(seen);
			free(pp);
		}
	}
	if (bad) {
		pass_doc_free(&pd);
		return;
	}
	pd.name = xstrdup(m->name);
	pd.mesh = xstrdup(m->mesh);
	pd.file = xstrdup(d->file);
	pd.line = m->doc->line;
	pd.col = m->doc->col;
	L->passes = xrealloc(L->passes, L->n_passes + 1, sizeof(*L->passes));
	L->passes[L->n_passes++] = pd;
}

void pass_doc_free(struct pass_doc *pd)
{
	for (size_t i = 0; i < pd->n_matches; i++)
		match_free(&pd->matches[i]);
	free(pd->matches);
	free(pd->name);
	free(pd->mesh);
	free(pd->file);
	memset(pd, 0, sizeof(*pd));
}

/* Kuma's order (plugin/xds/order.go): IP before CIDR (longest prefix
 * first), exact Domain before wildcard (longer first); then as written. */
static int match_rank(const struct ms_pass_match *m)
{
	if (m->type == MS_MATCH_IP)
		return 0;
	if (m->type == MS_MATCH_CIDR)
		return 1;
	return m->domain[0] == '*' ? 3 : 2;
}

static int match_cmp(const void *a, const void *b)
{
	const struct ms_pass_match *x = a, *y = b;
	int rx = match_rank(x), ry = match_rank(y);

	if (rx != ry)
		return rx - ry;
	if (rx == 1 && x->cidr.plen != y->cidr.plen)
		return (int)y->cidr.plen - (int)x->cidr.plen;
	if (rx >= 2 && strlen(x->domain) != strlen(y->domain))
		return strlen(x->domain) < strlen(y->domain) ? 1 : -1;
	/* qsort is not stable: the origin (policy name, then index) decides */
	return strcmp(x->origin, y->origin);
}

void cfg_sort_matches(struct ms_pass_match *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), match_cmp);
}

static int pass_doc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pass_doc *)a)->name, ((const struct pass_doc *)b)->name);
}

/* Every MeshPassthrough of a mesh: Kuma merges them (ordered by name, the
 * last mode given wins, appendMatch lists are appended). */
void link_passthrough(struct loader *L)
{
	struct ms_config *c = L->c;

	if (L->n_passes > 1)
		qsort(L->passes, L->n_passes, sizeof(*L->passes), pass_doc_cmp);
	for (size_t i = 0; i < L->n_passes; i++) {
		struct pass_doc *pd = &L->passes[i];
		struct ms_mesh *mesh = NULL;

		for (size_t j = 0; j < c->n_meshes && !mesh; j++)
			if (streq(c->meshes[j].name, pd->mesh))
				mesh = &c->meshes[j];
		if (!mesh) {
			cfg_errors_add(L->errs, pd->file, pd->line, pd->col, "mesh", "mesh \"%s\" does not exist",
				       log_escape(pd->mesh));
			continue;
		}
		if (mesh->pass_mode == MS_PASS_UNSET || pd->mode_set)
			mesh->pass_mode = pd->mode;
		mesh->matches = xrealloc(mesh->matches, mesh->n_matches + pd->n_matches + 1, sizeof(*mesh->matches));
		if (pd->n_matches)
			memcpy(mesh->matches + mesh->n_matches, pd->matches, pd->n_matches * sizeof(*pd->matches));
		mesh->n_matches += pd->n_matches;
		pd->n_matches = 0;
	}
	for (size_t j = 0; j < c->n_meshes; j++)
		cfg_sort_matches(c->meshes[j].matches, c->meshes[j].n_matches);
}

enum ms_pass_mode cfg_pass_mode(const struct ms_mesh *m)
{
	if (m->pass_mode != MS_PASS_UNSET)
		return m->pass_mode;
	return m->passthrough ? MS_PASS_ALL : MS_PASS_NONE;
}

bool cfg_pass_matching(const struct ms_mesh *m)
{
	enum ms_pass_mode mode = cfg_pass_mode(m);

	if (mode == MS_PASS_MATCHED)
		return true;
	for (size_t i = 0; mode == MS_PASS_NONE && i < m->n_matches; i++)
		if (m->matches[i].registry)
			return true;
	return false;
}

/* (with ALL no match needs to: everything is let through) */
bool cfg_match_live(const struct ms_mesh *mesh, const struct ms_pass_match *m)
{
	return m->registry || cfg_pass_mode(mesh) == MS_PASS_MATCHED;
}

static bool port_ok(const struct ms_pass_match *m, uint16_t port)
{
	return !m->port || m->port == port;
}

bool cfg_match_is_v4(const struct ms_pass_match *m)
{
	return m->cidr.plen >= 96 && addr_is_v4(&m->cidr.addr);
}

bool cfg_match_contains(const struct ms_pass_match *m, const struct ms_addr *a)
{
	/* an IPv6 prefix does not take IPv4 (kept IPv4-mapped) unless it is one */
	if (addr_is_v4(a) != cfg_match_is_v4(m))
		return false;
	return cidr_contains(&m->cidr, a);
}

const struct ms_pass_match *cfg_pass_ip(const struct ms_mesh *mesh, const struct ms_addr *a, uint16_t port)
{
	for (size_t i = 0; i < mesh->n_matches; i++) {
		const struct ms_pass_match *m = &mesh->matches[i];
		if (m->type != MS_MATCH_DOMAIN && cfg_match_live(mesh, m) && port_ok(m, port) && cfg_match_contains(m, a))
			return m;
	}
	return NULL;
}

bool cfg_domain_match(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern), nl = strlen(name);

	if (nl && name[nl - 1] == '.')
		nl--; /* a fully qualified name */
	if (streq(pattern, "*"))
		return nl > 0;
	if (pattern[0] == '*') {
		/* Envoy's "*.example.com": any deeper name, not example.com itself */
		const char *suffix = pattern + 1; /* ".example.com" */
		size_t sl = pl - 1;
		return nl > sl && strncasecmp(name + nl - sl, suffix, sl) == 0;
	}
	return nl == pl && strncasecmp(name, pattern, nl) == 0;
}

static bool proto_fits(enum ms_match_proto rule, enum ms_match_proto seen)
{
	if (rule == seen)
		return true;
	/* a gRPC request is HTTP/2: nothing before its headers tells them apart */
	return (rule == MS_MATCH_GRPC && seen == MS_MATCH_HTTP2) || (rule == MS_MATCH_HTTP2 && seen == MS_MATCH_GRPC);
}

const struct ms_pass_match *cfg_pass_domain(const struct ms_mesh *mesh, const char *name, uint16_t port,
					    enum ms_match_proto seen)
{
	/* exact names first (they sort before wildcards), the port-specific
	 * ones among equals as Envoy's port match does */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < mesh->n_matches; i++) {
			const struct ms_pass_match *m = &mesh->matches[i];
			if (m->type != MS_MATCH_DOMAIN || !cfg_match_live(mesh, m) || !proto_fits(m->proto, seen))
				continue;
			if ((pass == 0 ? m->port != port : m->port != 0) || !cfg_domain_match(m->domain, name))
				continue;
			return m;
		}
	return NULL;
}

bool cfg_pass_has_domain(const struct ms_mesh *mesh, uint16_t port)
{
	for (size_t i = 0; i < mesh->n_matches; i++) {
		const struct ms_pass_match *m = &mesh->matches[i];
		if (m->type == MS_MATCH_DOMAIN && cfg_match_live(mesh, m) && port_ok(m, port))
			return true;
	}
	return false;
}

const char *cfg_match_proto_name(enum ms_match_proto p)
{
	return (unsigned)p < ARRAY_SIZE(cfg_match_proto_names) ? cfg_match_proto_names[p] : "?";
}

const char *cfg_match_type_name(enum ms_match_type t)
{
	return (unsigned)t < ARRAY_SIZE(type_names) ? type_names[t] : "?";
}
