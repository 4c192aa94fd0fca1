// SPDX-License-Identifier: MIT
/* Gloo Mesh's ExternalService and ExternalEndpoint (networking.gloo.solo.io/v2).
 * An exact host becomes a service with a VIP from the Gloo range and the host
 * as its mesh DNS name; a wildcard host becomes Domain matches and addresses
 * IP/CIDR matches on the resource's mesh, marked registry: allowed even where
 * the mesh lets nothing else out (Istio's REGISTRY_ONLY). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <string.h>

#include "loader.h"
#include "util.h"

#define GLOO_GROUP "networking.gloo.solo.io/"
#define GLOO_API GLOO_GROUP "v2"
#define GLOO_FILE_MAX (1u << 20)

struct gloo_ep_port {
	char *name;
	uint16_t number;
};

struct gloo_ee {
	char *name, *mesh, *ns;
	struct ms_labels labels;
	struct ms_endpoint ep; /* port 0: set per service port */
	struct gloo_ep_port *ports;
	size_t n_ports;
	char *file;
	unsigned line, col;
};

/* An exact host's service, waiting for the ExternalEndpoints its selector picks. */
struct gloo_sel {
	size_t svc;
	struct ms_labels sel; /* empty: selects nothing (Gloo's words) */
	char *host;
	char *file;
	unsigned line, col;
};

struct gloo_match {
	char *mesh;
	struct ms_pass_match m;
};

struct gloo_state {
	struct gloo_ee *ees;
	size_t n_ees;
	struct gloo_sel *sels;
	size_t n_sels;
	struct gloo_match *matches;
	size_t n_matches;
};

/* Gloo's protocols and what each becomes here. */
static const struct {
	const char *name;
	enum ms_proto proto;
	enum ms_match_proto match;
	bool peekable; /* a wildcard host can be told by SNI (TLS), Host (HTTP/1) or :authority (HTTP/2) */
} protos[] = {
	{ "HTTP", MS_PROTO_HTTP, MS_MATCH_HTTP, true },	  { "HTTPS", MS_PROTO_TCP, MS_MATCH_TLS, true },
	{ "GRPC", MS_PROTO_GRPC, MS_MATCH_GRPC, true },	  { "HTTP2", MS_PROTO_HTTP2, MS_MATCH_HTTP2, true },
	{ "MONGO", MS_PROTO_TCP, MS_MATCH_TCP, false },	  { "TCP", MS_PROTO_TCP, MS_MATCH_TCP, false },
	{ "TLS", MS_PROTO_TCP, MS_MATCH_TLS, true },
};

/* One port as written, before it is copied to each exact host's service. */
struct gport {
	char *name;
	uint16_t number, target_num;
	char *target_name;
	int proto;
	size_t index; /* in spec.ports */
	const struct ynode *node;
};

/* clientsideTls, decoded once and copied to each exact host's service. */
struct gtls {
	bool on;
	struct ms_tls t;
	char *cred; /* credentialName */
	unsigned cred_line, cred_col;
	char cred_field[DPATH_MAX];
	char path[DPATH_MAX]; /* spec.ports[i].clientsideTls */
	const struct ynode *node;
};

static struct gloo_state *state(struct loader *L)
{
	if (!L->gloo)
		L->gloo = xcalloc(1, sizeof(*L->gloo));
	return L->gloo;
}

bool gloo_api(const struct ynode *doc)
{
	const struct ynode *api = ynode_get(doc, "apiVersion");

	return api && api->type == YNODE_SCALAR && strncmp(api->str, GLOO_GROUP, strlen(GLOO_GROUP)) == 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void blob_copy(struct ms_blob *dst, const struct ms_blob *src)
{
	*dst = *src;
	if (src->data) {
		dst->data = xcalloc(src->len + 1, 1);
		memcpy(dst->data, src->data, src->len);
	}
	dst->origin = src->origin ? xstrdup(src->origin) : NULL;
}

/* caCertificates, clientCertificate, privateKey: a file path on this node,
 * read now (Istio mounts them into the proxy; here the agent reads them). */
static void read_path(struct dctx *d, const struct ynode *tls, const char *key, const char *path,
		      struct ms_blob *b)
{
	const struct ynode *n = ynode_get(tls, key);
	_cleanup_free_ char *fp = NULL;
	char p[DPATH_MAX];
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (!n || ynode_is_null(n))
		return;
	d_join(p, path, key);
	if (d_scalar_str(d, n, p, &fp) < 0)
		return;
	if (fp[0] != '/') {
		d_err(d, n, p, "\"%s\" is not an absolute file path", log_escape(fp));
		return;
	}
	b->line = n->line;
	b->col = n->col;
	b->origin = xasprintf("file:%s", fp);
	/* stat first: a write after it changes what the watch sees, even when
	 * the read below already took the new bytes */
	if ((r = file_id(fp, &b->file)) < 0 || (r = read_file(fp, GLOO_FILE_MAX, &buf, &len)) < 0) {
		d_err(d, n, p, "cannot read \"%s\": %s", log_escape(fp),
		      r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		return;
	}
	b->data = (unsigned char *)buf;
	b->len = len;
}

static void decode_tls(struct dctx *d, const struct ynode *n, const char *path, struct gtls *g)
{
	static const char *const modes[] = { "SIMPLE", "DISABLE", "MUTUAL", "ISTIO_MUTUAL" };
	int mode = 0;
	bool skip = false;
	char p[DPATH_MAX];

	memset(g, 0, sizeof(*g));
	g->node = n;
	if (!d_is_map(d, n, path))
		return;
	d_known(d, n, path,
		KEYS("mode", "caCertificates", "clientCertificate", "privateKey", "credentialName", "sni",
		     "insecureSkipVerify"));
	/* Istio's DestinationRule default mode is SIMPLE once tls is written */
	if (d_pick(d, n, "mode", path, modes, ARRAY_SIZE(modes), &mode) < 0)
		return;
	if (mode == 1)
		return; /* DISABLE: plaintext */
	if (mode == 3) {
		d_err(d, ynode_get(n, "mode"), d_join(p, path, "mode"),
		      "ISTIO_MUTUAL needs Istio's workload certificates, which meshsplice has not: refused (use SIMPLE or MUTUAL with files or credentialName)");
		return;
	}
	g->on = true;
	g->t.enabled = true;
	if (d_bool(d, n, "insecureSkipVerify", path, &skip) == 0 && skip)
		g->t.mode = MS_VERIFY_SKIP_ALL;
	if (d_str(d, n, "sni", path, false, &g->t.server_name) == 0 && g->t.server_name &&
	    !dns_name_valid(g->t.server_name))
		d_err(d, ynode_get(n, "sni"), d_join(p, path, "sni"), "\"%s\" is not a valid DNS name",
		      log_escape(g->t.server_name));
	read_path(d, n, "caCertificates", path, &g->t.ca);
	const struct ynode *cert = ynode_get(n, "clientCertificate"), *key = ynode_get(n, "privateKey");
	const struct ynode *cred = ynode_get(n, "credentialName");
	if (cred && !ynode_is_null(cred)) {
		d_join(g->cred_field, path, "credentialName");
		if ((cert || key) && !ynode_is_null(cert ? cert : key))
			d_err(d, cred, g->cred_field, "credentialName excludes clientCertificate and privateKey");
		else if (d_scalar_str(d, cred, g->cred_field, &g->cred) == 0) {
			g->cred_line = cred->line;
			g->cred_col = cred->col;
		}
	} else {
		read_path(d, n, "clientCertificate", path, &g->t.cert);
		read_path(d, n, "privateKey", path, &g->t.key);
	}
	bool client = g->cred || g->t.cert.origin || g->t.key.origin;
	if (mode == 2 && !client)
		d_err(d, n, path, "mode MUTUAL requires clientCertificate and privateKey, or credentialName");
	if (mode == 0 && client)
		d_err(d, n, path, "a client certificate is presented only with mode MUTUAL, not SIMPLE");
}

static void gtls_free(struct gtls *g)
{
	free(g->t.server_name);
	cfg_blob_free(&g->t.ca);
	cfg_blob_free(&g->t.cert);
	cfg_blob_free(&g->t.key);
	free(g->cred);
}

static void add_ref(struct loader *L, struct dctx *d, const struct gtls *g, size_t svc, int which)
{
	L->refs = xrealloc(L->refs, L->n_refs + 1, sizeof(*L->refs));
	L->refs[L->n_refs++] = (struct blobref){ .svc = svc, .which = which, .secret = xstrdup(g->cred),
						 .file = xstrdup(d->file), .line = g->cred_line,
						 .col = g->cred_col, .field = xstrdup(g->cred_field) };
}

/* The service's TLS from g; sni defaults to the host it stands for. */
static void apply_tls(struct loader *L, struct dctx *d, const struct gtls *g, char **sans, size_t n_sans,
		      size_t idx, const char *host)
{
	struct ms_tls *t = &L->c->svcs[idx].tls;

	*t = g->t;
	t->server_name = xstrdup(g->t.server_name ? g->t.server_name : host);
	blob_copy(&t->ca, &g->t.ca);
	blob_copy(&t->cert, &g->t.cert);
	blob_copy(&t->key, &g->t.key);
	t->sans = n_sans ? xcalloc(n_sans, sizeof(*t->sans)) : NULL;
	t->n_sans = n_sans;
	for (size_t i = 0; i < n_sans; i++)
		t->sans[i] = (struct ms_san){ .prefix = false, .value = xstrdup(sans[i]) };
	if (g->cred) {
		/* one Secret holds the certificate and its key, PEM (a kubernetes.io/tls
		 * Secret's tls.crt and tls.key put together) */
		t->cert = (struct ms_blob){ .origin = xasprintf("secret:%s", g->cred), .line = g->cred_line,
					    .col = g->cred_col };
		t->key = (struct ms_blob){ .origin = xasprintf("secret:%s", g->cred), .line = g->cred_line,
					   .col = g->cred_col };
		add_ref(L, d, g, idx, 1);
		add_ref(L, d, g, idx, 2);
	}
}

static void add_match(struct loader *L, struct meta *m, struct dctx *d, const struct ynode *at,
		      struct ms_pass_match *pm, const char *what)
{
	struct gloo_state *G = state(L);

	pm->registry = true;
	pm->origin = xasprintf("ExternalService.networking.gloo.solo.io/%s%s%s %s", m->ns ? m->ns : "",
			       m->ns ? "/" : "", m->name, what);
	pm->file = xstrdup(d->file);
	pm->line = at->line;
	pm->col = at->col;
	G->matches = xrealloc(G->matches, G->n_matches + 1, sizeof(*G->matches));
	G->matches[G->n_matches++] = (struct gloo_match){ .mesh = xstrdup(m->mesh), .m = *pm };
}

static void decode_ports(struct dctx *d, const struct ynode *spec, struct gport **ret, size_t *ret_n,
			 struct gtls *tls, size_t *ret_tls_port)
{
	const struct ynode *ports = ynode_get(spec, "ports");
	struct gport *v;
	char p[DPATH_MAX], q[DPATH_MAX], r[DPATH_MAX];

	*ret = NULL;
	*ret_n = 0;
	if (!ports || ynode_is_null(ports)) {
		d_err(d, spec, "spec.ports", "required field is missing");
		return;
	}
	if (!d_is_seq(d, ports, "spec.ports"))
		return;
	if (ports->n == 0) {
		d_err(d, ports, "spec.ports", "at least one port is required");
		return;
	}
	v = xcalloc(ports->n, sizeof(*v));
	for (size_t i = 0; i < ports->n; i++) {
		const struct ynode *n = ports->v[i], *tp, *ct, *eg;
		struct gport *g = &v[*ret_n];
		char *proto = NULL;

		d_index(p, "spec.ports", i);
		if (!d_is_map(d, n, p))
			continue;
		memset(g, 0, sizeof(*g));
		g->node = n;
		g->index = i;
		g->proto = -1;
		d_known(d, n, p, KEYS("name", "number", "protocol", "targetPort", "clientsideTls", "egressGatewayRoutes"));
		if (d_port(d, n, "number", p, true, &g->number) < 0 || d_str(d, n, "name", p, false, &g->name) < 0) {
			free(g->name);
			continue;
		}
		if (d_str(d, n, "protocol", p, true, &proto) == 0 && proto) {
			for (size_t k = 0; k < ARRAY_SIZE(protos); k++)
				if (streq(proto, protos[k].name))
					g->proto = (int)k;
			if (g->proto < 0)
				d_err(d, ynode_get(n, "protocol"), d_join(q, p, "protocol"),
				      "unknown protocol \"%s\" (expected HTTP, HTTPS, GRPC, HTTP2, MONGO, TCP or TLS)",
				      log_escape(proto));
		}
		free(proto);
		for (size_t k = 0; k < *ret_n; k++) {
			if (v[k].number == g->number)
				d_err(d, ynode_get(n, "number"), d_join(q, p, "number"), "port %u is listed twice",
				      g->number);
			if (g->name && v[k].name && streq(v[k].name, g->name))
				d_err(d, ynode_get(n, "name"), d_join(q, p, "name"), "port name \"%s\" is used twice",
				      log_escape(g->name));
		}
		g->target_num = g->number;
		if ((tp = ynode_get(n, "targetPort")) && !ynode_is_null(tp) && d_is_map(d, tp, d_join(q, p, "targetPort"))) {
			d_known(d, tp, q, KEYS("name", "number"));
			bool has_num = ynode_get(tp, "number") != NULL, has_name = ynode_get(tp, "name") != NULL;
			if (has_num && has_name)
				d_err(d, tp, q, "name and number are mutually exclusive");
			else if (has_num)
				d_port(d, tp, "number", q, true, &g->target_num);
			else if (has_name && d_str(d, tp, "name", q, true, &g->target_name) == 0 && g->target_name &&
				 !*g->target_name)
				d_err(d, ynode_get(tp, "name"), d_join(r, q, "name"), "must not be empty");
		}
		if ((eg = ynode_get(n, "egressGatewayRoutes")) && !ynode_is_null(eg))
			d_err(d, eg, d_join(q, p, "egressGatewayRoutes"),
			      "egress gateways are not part of meshsplice: refused (the pod's node sends the traffic itself; remove egressGatewayRoutes)");
		if ((ct = ynode_get(n, "clientsideTls")) && !ynode_is_null(ct)) {
			struct gtls t;
			decode_tls(d, ct, d_join(q, p, "clientsideTls"), &t);
			if (t.on && tls->on) {
				d_err(d, ct, q,
				      "TLS origination is set on port %u already: meshsplice originates TLS per service, so a service that originates TLS has one port (write one ExternalService per TLS port)",
				      v[*ret_tls_port].number);
				gtls_free(&t);
			} else if (t.on) {
				*tls = t;
				snprintf(tls->path, sizeof(tls->path), "%s", q);
				*ret_tls_port = *ret_n;
			} else {
				gtls_free(&t);
			}
		}
		(*ret_n)++;
	}
	*ret = v;
	if (tls->on && *ret_n > 1)
		d_err(d, tls->node, tls->path,
		      "TLS origination applies to the whole service here, and this one has %zu ports: write one ExternalService per TLS port",
		      *ret_n);
}

static void decode_hosts_svc(struct loader *L, struct dctx *d, struct meta *m, const char *host, bool many,
			     const struct gport *gp, size_t n_gp, const struct gtls *tls, char **sans, size_t n_sans,
			     const struct ynode *selector, struct ms_labels *sel)
{
	struct ms_service *s = loader_svc_new(L, MS_KIND_GLOO_EXTERNAL_SERVICE, m, d);
	size_t idx = L->c->n_svcs - 1;
	struct gloo_state *G = state(L);

	if (many) {
		free(s->name);
		s->name = xasprintf("%s:%s", m->name, host);
		free(s->display_name);
		s->display_name = xstrdup(s->name);
	}
	s->hostnames = xcalloc(1, sizeof(char *));
	s->hostnames[s->n_hostnames++] = xstrdup(host);
	s->ports = xcalloc(n_gp, sizeof(*s->ports));
	for (size_t i = 0; i < n_gp; i++) {
		struct ms_port *p = &s->ports[s->n_ports++];
		p->name = gp[i].name ? xstrdup(gp[i].name) : NULL;
		p->port = gp[i].number;
		p->target_port = gp[i].target_num;
		p->target_name = gp[i].target_name ? xstrdup(gp[i].target_name) : NULL;
		p->proto = gp[i].proto >= 0 ? protos[gp[i].proto].proto : MS_PROTO_TCP;
	}
	if (tls->on)
		apply_tls(L, d, tls, sans, n_sans, idx, host);
	G->sels = xrealloc(G->sels, G->n_sels + 1, sizeof(*G->sels));
	struct gloo_sel *x = &G->sels[G->n_sels++];
	memset(x, 0, sizeof(*x));
	x->svc = idx;
	x->host = xstrdup(host);
	x->file = xstrdup(d->file);
	x->line = selector ? selector->line : m->doc->line;
	x->col = selector ? selector->col : m->doc->col;
	for (size_t i = 0; i < sel->n; i++)
		cfg_labels_set(&x->sel, sel->kv[2 * i], sel->kv[2 * i + 1]);
}

static void decode_gloo_es(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *hosts, *addrs, *sn, *seln;
	struct gport *gp = NULL;
	size_t n_gp = 0, tls_port = 0;
	struct gtls tls = { 0 };
	char **sans = NULL, **selkv = NULL;
	size_t n_sans = 0, n_sel = 0;
	char p[DPATH_MAX];

	if (!d_is_map(d, spec, "spec"))
		return;
	d_known(d, spec, "spec", KEYS("hosts", "addresses", "ports", "selector", "subjectAltNames"));
	hosts = ynode_get(spec, "hosts");
	addrs = ynode_get(spec, "addresses");
	if (hosts && ynode_is_null(hosts))
		hosts = NULL;
	if (addrs && ynode_is_null(addrs))
		addrs = NULL;
	if (hosts && addrs) {
		d_err(d, addrs, "spec.addresses", "hosts and addresses are mutually exclusive");
		return;
	}
	if (!hosts && !addrs) {
		d_err(d, spec, "spec.hosts", "one of hosts or addresses is required");
		return;
	}
	decode_ports(d, spec, &gp, &n_gp, &tls, &tls_port);
	if ((sn = ynode_get(spec, "subjectAltNames")) && !ynode_is_null(sn) &&
	    d_is_seq(d, sn, "spec.subjectAltNames")) {
		sans = xcalloc(sn->n ? sn->n : 1, sizeof(char *));
		for (size_t i = 0; i < sn->n; i++)
			if (d_scalar_str(d, sn->v[i], d_index(p, "spec.subjectAltNames", i), &sans[n_sans]) == 0) {
				if (!*sans[n_sans]) {
					d_err(d, sn->v[i], p, "must not be empty");
					free(sans[n_sans]);
				} else {
					n_sans++;
				}
			}
	}
	seln = ynode_get(spec, "selector");
	d_strmap(d, spec, "selector", "spec", &selkv, &n_sel);
	struct ms_labels sel = { .kv = selkv, .n = n_sel };

	if (addrs && d_is_seq(d, addrs, "spec.addresses")) {
		if (tls.on)
			d_err(d, tls.node, tls.path,
			      "TLS origination needs hosts: with addresses the connection goes where the pod sent it");
		if (sel.n)
			d_warn(d, seln, "spec.selector", "ExternalEndpoints are not used with addresses: ignored");
		if (addrs->n == 0)
			d_err(d, addrs, "spec.addresses", "at least one address is required");
		for (size_t i = 0; i < addrs->n; i++) {
			_cleanup_free_ char *a = NULL;
			struct ms_pass_match pm = { 0 };
			struct ms_addr ip;

			d_index(p, "spec.addresses", i);
			if (d_scalar_str(d, addrs->v[i], p, &a) < 0)
				continue;
			if (addr_parse(a, &ip) == 0) {
				pm.type = MS_MATCH_IP;
				pm.cidr.addr = ip;
				pm.cidr.plen = 128;
			} else if (strchr(a, '/') && cidr_parse(a, &pm.cidr) == 0) {
				pm.type = MS_MATCH_CIDR;
			} else {
				d_err(d, addrs->v[i], p,
				      "\"%s\" is not an IPv4 or IPv6 address or a CIDR with its host bits zero",
				      log_escape(a));
				continue;
			}
			for (size_t k = 0; k < n_gp; k++) {
				struct ms_pass_match x = pm;
				char what[DPATH_MAX + 16];
				x.port = gp[k].number;
				x.proto = gp[k].proto >= 0 ? protos[gp[k].proto].match : MS_MATCH_TCP;
				snprintf(what, sizeof(what), "%s port %u", p, gp[k].number);
				add_match(L, m, d, addrs->v[i], &x, what);
			}
		}
	} else if (hosts && d_is_seq(d, hosts, "spec.hosts")) {
		size_t n_exact = 0;
		if (hosts->n == 0)
			d_err(d, hosts, "spec.hosts", "at least one host is required");
		char **names = xcalloc(hosts->n ? hosts->n : 1, sizeof(char *));
		/* validate every host first: the count of exact ones names the services */
		for (size_t i = 0; i < hosts->n; i++) {
			char *h = NULL;
			d_index(p, "spec.hosts", i);
			if (d_scalar_str(d, hosts->v[i], p, &h) < 0)
				continue;
			lower(h);
			const char *base = strncmp(h, "*.", 2) == 0 ? h + 2 : h;
			if (strchr(base, '*') || !dns_name_valid(base)) {
				d_err(d, hosts->v[i], p,
				      "\"%s\" is not a DNS name, or \"*.\" and a DNS name (a wildcard only as the first label)",
				      log_escape(h));
				free(h);
				continue;
			}
			for (size_t k = 0; k < i; k++)
				if (names[k] && streq(names[k], h)) {
					d_err(d, hosts->v[i], p, "host \"%s\" is listed twice", log_escape(h));
					free(h);
					h = NULL;
					break;
				}
			names[i] = h;
			n_exact += h && base == h;
		}
		for (size_t i = 0; i < hosts->n; i++) {
			const char *h = names[i];
			if (!h)
				continue;
			d_index(p, "spec.hosts", i);
			if (h[0] != '*') {
				decode_hosts_svc(L, d, m, h, n_exact > 1, gp, n_gp, &tls, sans, n_sans, seln, &sel);
				continue;
			}
			if (tls.on)
				d_warn(d, tls.node, tls.path,
				       "not used for the wildcard host \"%s\": its connections go where the pod sent them",
				       log_escape(h));
			for (size_t k = 0; k < n_gp; k++) {
				char what[DPATH_MAX + 16], pp[DPATH_MAX], f[DPATH_MAX];
				struct ms_pass_match x = { .type = MS_MATCH_DOMAIN, .port = gp[k].number };
				if (gp[k].proto < 0)
					continue;
				d_index(pp, "spec.ports", gp[k].index);
				if (!protos[gp[k].proto].peekable) {
					d_err(d, ynode_get(gp[k].node, "protocol"), d_join(f, pp, "protocol"),
					      "a wildcard host (\"%s\") needs a port whose name can be read: TLS or HTTPS (SNI), HTTP (Host), HTTP2 or GRPC (:authority), not %s: it would let any destination through",
					      log_escape(h), protos[gp[k].proto].name);
					continue;
				}
				if (gp[k].target_num != gp[k].number || gp[k].target_name)
					d_warn(d, ynode_get(gp[k].node, "targetPort"), d_join(f, pp, "targetPort"),
					       "not used for the wildcard host \"%s\": the connection keeps its port",
					       log_escape(h));
				x.domain = xstrdup(h);
				x.proto = protos[gp[k].proto].match;
				snprintf(what, sizeof(what), "%s port %u", p, gp[k].number);
				add_match(L, m, d, hosts->v[i], &x, what);
			}
		}
		if (n_exact == 0 && sel.n)
			d_warn(d, seln, "spec.selector", "ExternalEndpoints are used by exact hosts only: ignored");
		for (size_t i = 0; i < hosts->n; i++)
			free(names[i]);
		free(names);
	}
	cfg_labels_free(&sel);
	for (size_t i = 0; i < n_sans; i++)
		free(sans[i]);
	free(sans);
	for (size_t i = 0; i < n_gp; i++) {
		free(gp[i].name);
		free(gp[i].target_name);
	}
	free(gp);
	gtls_free(&tls);
}

static void decode_gloo_ee(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *ports;
	struct gloo_state *G = state(L);
	_cleanup_free_ char *addr = NULL;
	struct gloo_ee e = { 0 };
	char p[DPATH_MAX], q[DPATH_MAX];

	if (!d_is_map(d, spec, "spec"))
		return;
	d_known(d, spec, "spec", KEYS("address", "ports", "locality"));
	if (d_str(d, spec, "address", "spec", true, &addr) < 0 || !addr)
		return;
	if (strncmp(addr, "unix://", 7) == 0) {
		const char *sp = addr + 7;
		if (sp[0] != '/' || strlen(sp) < 2 || strlen(sp) >= 108) {
			d_err(d, ynode_get(spec, "address"), "spec.address",
			      "\"%s\" is not unix:///absolute/path (at most 107 bytes)", log_escape(addr));
			return;
		}
		e.ep.type = MS_EP_UNIX;
		e.ep.host = xstrdup(sp);
	} else if (addr_parse(addr, &e.ep.ip) == 0) {
		e.ep.type = MS_EP_IP;
		e.ep.host = xstrdup(addr);
	} else if (!strchr(addr, '*') && dns_name_valid(addr)) {
		e.ep.type = MS_EP_DNS;
		e.ep.host = xstrdup(addr);
	} else {
		d_err(d, ynode_get(spec, "address"), "spec.address",
		      "\"%s\" is not an IPv4 or IPv6 address, a DNS name (no wildcard) or unix:///path", log_escape(addr));
		return;
	}
	if ((ports = ynode_get(spec, "ports")) && !ynode_is_null(ports) && d_is_seq(d, ports, "spec.ports")) {
		e.ports = xcalloc(ports->n ? ports->n : 1, sizeof(*e.ports));
		for (size_t i = 0; i < ports->n; i++) {
			struct gloo_ep_port x = { 0 };
			d_index(p, "spec.ports", i);
			if (!d_is_map(d, ports->v[i], p))
				continue;
			d_known(d, ports->v[i], p, KEYS("name", "number"));
			if (d_port(d, ports->v[i], "number", p, true, &x.number) < 0 ||
			    d_str(d, ports->v[i], "name", p, false, &x.name) < 0)
				continue;
			if (!x.name && ports->n > 1)
				d_err(d, ports->v[i], d_join(q, p, "name"), "required when there is more than one port");
			for (size_t k = 0; x.name && k < e.n_ports; k++)
				if (e.ports[k].name && streq(e.ports[k].name, x.name))
					d_err(d, ynode_get(ports->v[i], "name"), d_join(q, p, "name"),
					      "port name \"%s\" is used twice", log_escape(x.name));
			e.ports[e.n_ports++] = x;
		}
		if (e.ep.type == MS_EP_UNIX && e.n_ports)
			d_warn(d, ports, "spec.ports", "a unix socket endpoint has no port: ports are not used");
	}
	e.name = xstrdup(m->name);
	e.mesh = xstrdup(m->mesh);
	e.ns = m->ns ? xstrdup(m->ns) : NULL;
	e.labels = m->labels;
	memset(&m->labels, 0, sizeof(m->labels));
	e.file = xstrdup(d->file);
	e.line = m->doc->line;
	e.col = m->doc->col;
	G->ees = xrealloc(G->ees, G->n_ees + 1, sizeof(*G->ees));
	G->ees[G->n_ees++] = e;
}

void decode_gloo(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *api = ynode_get(m->doc, "apiVersion"), *mn = ynode_get(m->doc, "mesh");
	const char *lm = cfg_label(&m->labels, "kuma.io/mesh");

	if (!streq(api->str, GLOO_API)) {
		d_err(d, api, "apiVersion", "\"%s\" is not read by meshsplice (only " GLOO_API ")",
		      log_escape(api->str));
		return;
	}
	if (mn) {
		d_err(d, mn, "mesh", "a Gloo resource names its mesh with the label kuma.io/mesh");
		return;
	}
	/* the label, else the agent's --gloo-mesh */
	free(m->mesh);
	m->mesh = xstrdup(lm ? lm : L->o->gloo_mesh ? L->o->gloo_mesh : MS_DEFAULT_GLOO_MESH);
	if (streq(m->kind, "ExternalService"))
		decode_gloo_es(L, d, m);
	else if (streq(m->kind, "ExternalEndpoint"))
		decode_gloo_ee(L, d, m);
	else
		d_err(d, ynode_get(m->doc, "kind"), "kind",
		      "Gloo's %s is not read by meshsplice (only ExternalService and ExternalEndpoint)",
		      log_escape(m->kind));
}

/* The order ms_mesh.matches keeps (Kuma's): IP, CIDR longest first, exact
 * Domain, wildcard Domain; stable, so each keeps the order it was written in. */
static int match_rank(const struct ms_pass_match *x)
{
	if (x->type == MS_MATCH_DOMAIN)
		return x->domain[0] == '*' ? 3 : 2;
	return x->type == MS_MATCH_IP ? 0 : 1;
}

static bool match_before(const struct ms_pass_match *a, const struct ms_pass_match *b)
{
	int ra = match_rank(a), rb = match_rank(b);

	if (ra != rb)
		return ra < rb;
	return ra == 1 && a->cidr.plen > b->cidr.plen;
}

static void add_matches(struct loader *L)
{
	struct gloo_state *G = L->gloo;

	for (size_t i = 0; i < G->n_matches; i++) {
		struct gloo_match *gm = &G->matches[i];
		struct ms_mesh *mesh = NULL;

		for (size_t k = 0; k < L->c->n_meshes; k++)
			if (streq(L->c->meshes[k].name, gm->mesh))
				mesh = &L->c->meshes[k];
		if (!mesh) {
			/* once per host or address, not per port */
			const struct ms_pass_match *prev = i ? &G->matches[i - 1].m : NULL;
			if (!prev || !prev->file || prev->line != gm->m.line || prev->col != gm->m.col)
				cfg_errors_add(L->errs, gm->m.file, gm->m.line, gm->m.col, "mesh",
					       "mesh \"%s\" does not exist", log_escape(gm->mesh));
			continue;
		}
		/* insertion keeps the list sorted: it is short */
		mesh->matches = xrealloc(mesh->matches, mesh->n_matches + 1, sizeof(*mesh->matches));
		size_t at = mesh->n_matches;
		while (at > 0 && match_before(&gm->m, &mesh->matches[at - 1]))
			at--;
		memmove(&mesh->matches[at + 1], &mesh->matches[at], (mesh->n_matches - at) * sizeof(*mesh->matches));
		mesh->matches[at] = gm->m;
		mesh->n_matches++;
		memset(&gm->m, 0, sizeof(gm->m)); /* the mesh owns it now */
	}
}

/* The port of ee that service port sp targets: 0 and false when it has none. */
static bool ee_port(const struct gloo_ee *ee, const struct ms_port *sp, uint16_t *ret)
{
	if (ee->ep.type == MS_EP_UNIX) {
		*ret = 0;
		return true;
	}
	for (size_t i = 0; i < ee->n_ports; i++)
		if (sp->target_name ? ee->ports[i].name && streq(ee->ports[i].name, sp->target_name) :
				      ee->ports[i].number == sp->target_port) {
			*ret = ee->ports[i].number;
			return true;
		}
	/* an ExternalEndpoint without ports takes the number as it is */
	*ret = sp->target_port;
	return !sp->target_name && ee->n_ports == 0;
}

static void link_endpoints(struct loader *L)
{
	struct gloo_state *G = L->gloo;

	for (size_t i = 0; i < G->n_sels; i++) {
		struct gloo_sel *x = &G->sels[i];
		struct ms_service *s = &L->c->svcs[x->svc];
		size_t picked = 0;

		for (size_t e = 0; x->sel.n && e < G->n_ees; e++) {
			const struct gloo_ee *ee = &G->ees[e];
			if (!streq(ee->mesh, s->mesh) || !cfg_labels_match(&x->sel, &ee->labels))
				continue;
			picked++;
			for (size_t p = 0; p < s->n_ports; p++) {
				struct ms_port *sp = &s->ports[p];
				uint16_t port;
				if (!ee_port(ee, sp, &port)) {
					char want[96];
					if (sp->target_name)
						snprintf(want, sizeof(want), "named %s", log_escape(sp->target_name));
					else
						snprintf(want, sizeof(want), "%u", sp->target_port);
					cfg_errors_add(L->errs, ee->file, ee->line, ee->col, "spec.ports",
						       "ExternalEndpoint \"%s\" has no port %s, which ExternalService \"%s\" port %u targets",
						       log_escape(ee->name), want, s->name, sp->port);
					continue;
				}
				sp->eps = xrealloc(sp->eps, sp->n_eps + 1, sizeof(*sp->eps));
				sp->eps[sp->n_eps] = ee->ep;
				sp->eps[sp->n_eps].host = xstrdup(ee->ep.host);
				sp->eps[sp->n_eps].port = port;
				sp->n_eps++;
			}
		}
		if (picked)
			continue;
		/* nothing selected: the host itself, by DNS */
		for (size_t p = 0; p < s->n_ports; p++) {
			struct ms_port *sp = &s->ports[p];
			if (sp->target_name) {
				cfg_errors_add(L->errs, x->file, x->line, x->col, "spec.ports.targetPort.name",
					       "port %u targets \"%s\" by name, and no ExternalEndpoint is selected to have it",
					       sp->port, log_escape(sp->target_name));
				continue;
			}
			sp->eps = xcalloc(1, sizeof(*sp->eps));
			sp->eps[0] = (struct ms_endpoint){ .type = MS_EP_DNS, .host = xstrdup(x->host),
							   .port = sp->target_port };
			sp->n_eps = 1;
		}
	}
}

void gloo_link(struct loader *L)
{
	if (!L->gloo)
		return;
	add_matches(L);
	link_endpoints(L);
}

void gloo_free(struct loader *L)
{
	struct gloo_state *G = L->gloo;

	if (!G)
		return;
	for (size_t i = 0; i < G->n_ees; i++) {
		struct gloo_ee *e = &G->ees[i];
		free(e->name);
		free(e->mesh);
		free(e->ns);
		free(e->file);
		cfg_labels_free(&e->labels);
		cfg_endpoint_free(&e->ep);
		for (size_t k = 0; k < e->n_ports; k++)
			free(e->ports[k].name);
		free(e->ports);
	}
	free(G->ees);
	for (size_t i = 0; i < G->n_sels; i++) {
		cfg_labels_free(&G->sels[i].sel);
		free(G->sels[i].host);
		free(G->sels[i].file);
	}
	free(G->sels);
	for (size_t i = 0; i < G->n_matches; i++) {
		free(G->matches[i].mesh);
		free(G->matches[i].m.domain);
		free(G->matches[i].m.origin);
		free(G->matches[i].m.file);
	}
	free(G->matches);
	free(G);
	L->gloo = NULL;
}
