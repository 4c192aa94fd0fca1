// SPDX-License-Identifier: MIT
/* YAML documents → validated ms_config. Decoding records every problem and
 * carries on, so that one run reports all of them; nothing is returned
 * unless the whole set is valid. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "decode.h"
#include "util.h"
#include "yaml-dom.h"

const char cfg_embedded_default[] = "# meshsplice embedded default\n"
				    "type: Mesh\n"
				    "name: default\n"
				    "networking:\n"
				    "  outbound:\n"
				    "    passthrough: true\n";

struct secret {
	char *name, *mesh;
	unsigned char *data;
	size_t len;
	char *file;
	unsigned line, col;
};

/* A secret: reference, resolved once every file is read. */
struct blobref {
	size_t svc;
	int which; /* 0 ca, 1 cert, 2 key */
	char *secret;
	char *file;
	unsigned line, col;
	char *field;
};

struct inbound {
	uint16_t port;
	char *name;
	struct ms_addr addr;
	struct ms_labels tags;
};

struct dataplane {
	char *name, *mesh;
	struct inbound *in;
	size_t n_in;
};

/* MeshService selector, kept aside until Dataplanes are known. */
struct ms_selector {
	size_t svc;
	struct ms_labels tags;
};

struct loader {
	const struct cfg_opts *o;
	struct cfg_errors *errs;
	struct ms_config *c;
	struct secret *secrets;
	size_t n_secrets;
	struct blobref *refs;
	size_t n_refs;
	struct dataplane *dps;
	size_t n_dps;
	struct ms_selector *sels;
	size_t n_sels;
};

/* What a document says about itself, in either style. */
struct meta {
	const char *kind;
	char *name, *mesh, *ns;
	struct ms_labels labels;
	const struct ynode *body; /* spec (k8s/new resources) or the document (legacy universal) */
	const struct ynode *doc;
	const struct ynode *status;
	bool k8s;
};

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })

void cfg_opts_init(struct cfg_opts *o)
{
	memset(o, 0, sizeof(*o));
	cidr_parse(MS_DEFAULT_MES_CIDR, &o->mes_cidr);
	cidr_parse(MS_DEFAULT_MS_CIDR, &o->ms_cidr);
	o->zone = "zone";
}

const char *cfg_kind_name(enum ms_kind k)
{
	switch (k) {
	case MS_KIND_MESH_EXTERNAL_SERVICE:
		return "MeshExternalService";
	case MS_KIND_MESH_SERVICE:
		return "MeshService";
	case MS_KIND_EXTERNAL_SERVICE:
		return "ExternalService";
	}
	return "?";
}

static const char *const proto_names[] = { "tcp", "http", "http2", "grpc", "kafka" };
static const char *const mode_names[] = { "Secured", "SkipSAN", "SkipCA", "SkipAll" };
static const char *const tlsver_names[] = { "TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13" };

const char *cfg_proto_name(enum ms_proto p)
{
	return (size_t)p < ARRAY_SIZE(proto_names) ? proto_names[p] : "?";
}

const char *cfg_mode_name(enum ms_verify_mode m)
{
	return (size_t)m < ARRAY_SIZE(mode_names) ? mode_names[m] : "?";
}

const char *cfg_tls_version_name(enum ms_tls_version v)
{
	return (size_t)v < ARRAY_SIZE(tlsver_names) ? tlsver_names[v] : "?";
}

static int pick(struct dctx *d, const struct ynode *map, const char *key, const char *path,
		const char *const *names, size_t n_names, int *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX], list[256] = "";

	if (!n)
		return 0;
	d_join(p, path, key);
	if (n->type == YNODE_SCALAR)
		for (size_t i = 0; i < n_names; i++)
			if (streq(n->str, names[i])) {
				*ret = (int)i;
				return 0;
			}
	for (size_t i = 0; i < n_names; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	d_err(d, n, p, "unknown value %s%s%s (expected one of %s)",
	      n->type == YNODE_SCALAR ? "\"" : "",
	      n->type == YNODE_SCALAR ? log_escape(n->str) : ynode_type_name(n),
	      n->type == YNODE_SCALAR ? "\"" : "", list);
	return -EINVAL;
}

static void labels_free(struct ms_labels *l)
{
	for (size_t i = 0; i < 2 * l->n; i++)
		free(l->kv[i]);
	free(l->kv);
	l->kv = NULL;
	l->n = 0;
}

static void labels_set(struct ms_labels *l, const char *k, const char *v)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->kv[2 * i], k)) {
			free(l->kv[2 * i + 1]);
			l->kv[2 * i + 1] = xstrdup(v);
			return;
		}
	l->kv = xrealloc(l->kv, 2 * (l->n + 1), sizeof(char *));
	l->kv[2 * l->n] = xstrdup(k);
	l->kv[2 * l->n + 1] = xstrdup(v);
	l->n++;
}

/* Every pair of sel is in l. */
static bool labels_match(const struct ms_labels *sel, const struct ms_labels *l)
{
	for (size_t i = 0; i < sel->n; i++)
		if (!streq(cfg_label(l, sel->kv[2 * i]), sel->kv[2 * i + 1]))
			return false;
	return true;
}

static void blob_free(struct ms_blob *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->len);
	free(b->data);
	free(b->origin);
	memset(b, 0, sizeof(*b));
}

static void endpoint_free(struct ms_endpoint *e)
{
	free(e->host);
}

static void service_free(struct ms_service *s)
{
	free(s->name);
	free(s->mesh);
	free(s->ns);
	free(s->display_name);
	free(s->file);
	labels_free(&s->labels);
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_name);
		for (size_t j = 0; j < s->ports[i].n_eps; j++)
			endpoint_free(&s->ports[i].eps[j]);
		free(s->ports[i].eps);
	}
	free(s->ports);
	free(s->tls.server_name);
	for (size_t i = 0; i < s->tls.n_sans; i++)
		free(s->tls.sans[i].value);
	free(s->tls.sans);
	blob_free(&s->tls.ca);
	blob_free(&s->tls.cert);
	blob_free(&s->tls.key);
	for (size_t i = 0; i < s->n_hostnames; i++)
		free(s->hostnames[i]);
	free(s->hostnames);
}

static void config_free(struct ms_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_meshes; i++)
		free(c->meshes[i].name);
	free(c->meshes);
	for (size_t i = 0; i < c->n_svcs; i++)
		service_free(&c->svcs[i]);
	free(c->svcs);
	for (size_t i = 0; i < c->n_hostgens; i++) {
		free(c->hostgens[i].name);
		free(c->hostgens[i].mesh);
		free(c->hostgens[i].tmpl);
		free(c->hostgens[i].file);
		labels_free(&c->hostgens[i].match);
	}
	free(c->hostgens);
	free(c->vidx);
	free(c->nidx);
	free(c->sidx);
	free(c);
}

struct ms_config *cfg_ref(struct ms_config *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void cfg_unref(struct ms_config *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

static void loader_free(struct loader *L)
{
	for (size_t i = 0; i < L->n_secrets; i++) {
		free(L->secrets[i].name);
		free(L->secrets[i].mesh);
		free(L->secrets[i].file);
		if (L->secrets[i].data)
			OPENSSL_cleanse(L->secrets[i].data, L->secrets[i].len);
		free(L->secrets[i].data);
	}
	free(L->secrets);
	for (size_t i = 0; i < L->n_refs; i++) {
		free(L->refs[i].secret);
		free(L->refs[i].file);
		free(L->refs[i].field);
	}
	free(L->refs);
	for (size_t i = 0; i < L->n_dps; i++) {
		free(L->dps[i].name);
		free(L->dps[i].mesh);
		for (size_t j = 0; j < L->dps[i].n_in; j++) {
			free(L->dps[i].in[j].name);
			labels_free(&L->dps[i].in[j].tags);
		}
		free(L->dps[i].in);
	}
	free(L->dps);
	for (size_t i = 0; i < L->n_sels; i++)
		labels_free(&L->sels[i].tags);
	free(L->sels);
}

static struct ms_service *svc_new(struct loader *L, enum ms_kind k, struct meta *m,
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
	/* Labels Kuma's zone control plane puts on every resource it stores. */
	labels_set(&s->labels, "kuma.io/mesh", s->mesh);
	if (!cfg_label(&s->labels, "kuma.io/origin"))
		labels_set(&s->labels, "kuma.io/origin", "zone");
	if (s->ns && !cfg_label(&s->labels, "k8s.kuma.io/namespace"))
		labels_set(&s->labels, "k8s.kuma.io/namespace", s->ns);
	const char *dn = cfg_label(&s->labels, "kuma.io/display-name");
	s->display_name = xstrdup(dn ? dn : s->name);
	return s;
}

/* endpoints[i]: IPv4, IPv6, DNS name or unix:///abs/path. */
static int decode_endpoint(struct dctx *d, const struct ynode *n, const char *path,
			   struct ms_endpoint *ret)
{
	_cleanup_free_ char *addr = NULL;
	char p[DPATH_MAX];
	uint16_t port = 0;
	int r = 0;

	/* First of all: the caller frees *ret on every failure (fuzzing found a
	 * double free when an early return left it holding the last endpoint). */
	memset(ret, 0, sizeof(*ret));
	if (!d_is_map(d, n, path))
		return -EINVAL;
	d_known(d, n, path, KEYS("address", "port"));
	if (d_str(d, n, "address", path, true, &addr) < 0 || !addr)
		return -EINVAL;
	if (d_port(d, n, "port", path, false, &port) < 0)
		r = -EINVAL;
	memset(ret, 0, sizeof(*ret));
	d_join(p, path, "address");
	if (strncmp(addr, "unix://", 7) == 0) {
		const char *sp = addr + 7;
		if (sp[0] != '/' || strlen(sp) < 2 || strlen(sp) >= 108) {
			d_err(d, ynode_get(n, "address"), p,
			      "\"%s\" is not unix:///absolute/path (at most 107 bytes)", log_escape(addr));
			return -EINVAL;
		}
		if (port) {
			d_err(d, ynode_get(n, "port"), d_join(p, path, "port"),
			      "a unix socket endpoint has no port");
			return -EINVAL;
		}
		ret->type = MS_EP_UNIX;
		ret->host = xstrdup(sp);
		return r;
	}
	if (addr_parse(addr, &ret->ip) == 0) {
		ret->type = MS_EP_IP;
	} else if (dns_name_valid(addr)) {
		ret->type = MS_EP_DNS;
	} else {
		d_err(d, ynode_get(n, "address"), p,
		      "\"%s\" is not an IPv4 or IPv6 address, a DNS name or unix:///path",
		      log_escape(addr));
		return -EINVAL;
	}
	if (!port && r == 0) {
		d_err(d, n, d_join(p, path, "port"), "required field is missing (address is not a unix socket)");
		r = -EINVAL;
	}
	ret->host = TAKE_PTR(addr);
	ret->port = port;
	return r;
}

/* caCert / clientCert / clientKey: exactly one of inline, inlineString, secret. */
static void decode_source(struct loader *L, struct dctx *d, const struct ynode *parent,
			  const char *key, const char *path, size_t svc_idx, int which)
{
	const struct ynode *n = ynode_get(parent, key);
	struct ms_blob *b;
	char p[DPATH_MAX], q[DPATH_MAX];
	const struct ynode *v;
	int set = 0;

	if (!n || ynode_is_null(n))
		return;
	d_join(p, path, key);
	if (!d_is_map(d, n, p))
		return;
	d_known(d, n, p, KEYS("inline", "inlineString", "secret"));
	for (const char *const *k = KEYS("inline", "inlineString", "secret"); *k; k++)
		set += ynode_get(n, *k) != NULL;
	if (set != 1) {
		d_err(d, n, p, "exactly one of inline, inlineString or secret is required (%d given)", set);
		return;
	}
	b = which == 0 ? &L->c->svcs[svc_idx].tls.ca :
	    which == 1 ? &L->c->svcs[svc_idx].tls.cert :
			 &L->c->svcs[svc_idx].tls.key;
	b->line = n->line;
	b->col = n->col;
	if ((v = ynode_get(n, "inline"))) {
		_cleanup_free_ char *s = NULL;
		if (d_scalar_str(d, v, d_join(q, p, "inline"), &s) < 0)
			return;
		if (cfg_base64_decode(s, strlen(s), &b->data, &b->len) < 0 || b->len == 0) {
			d_err(d, v, q, "not valid base64");
			return;
		}
		b->origin = xstrdup("inline");
	} else if ((v = ynode_get(n, "inlineString"))) {
		char *s = NULL;
		if (d_scalar_str(d, v, d_join(q, p, "inlineString"), &s) < 0)
			return;
		b->data = (unsigned char *)s;
		b->len = strlen(s);
		b->origin = xstrdup("inlineString");
	} else {
		v = ynode_get(n, "secret");
		char *s = NULL;
		if (d_scalar_str(d, v, d_join(q, p, "secret"), &s) < 0)
			return;
		L->refs = xrealloc(L->refs, L->n_refs + 1, sizeof(*L->refs));
		L->refs[L->n_refs++] = (struct blobref){ .svc = svc_idx, .which = which, .secret = s,
							 .file = xstrdup(d->file), .line = v->line,
							 .col = v->col, .field = xstrdup(q) };
		b->origin = xasprintf("secret:%s", s);
	}
}

static void decode_mes_tls(struct loader *L, struct dctx *d, const struct ynode *tls,
			   const char *path, size_t idx)
{
	struct ms_tls *t = &L->c->svcs[idx].tls;
	const struct ynode *ver, *verif, *sans;
	char p[DPATH_MAX], q[DPATH_MAX];
	int v;

	if (!tls || ynode_is_null(tls) || !d_is_map(d, tls, path))
		return;
	d_known(d, tls, path, KEYS("enabled", "version", "allowRenegotiation", "verification"));
	d_bool(d, tls, "enabled", path, &t->enabled);
	d_bool(d, tls, "allowRenegotiation", path, &t->allow_renegotiation);
	if ((ver = ynode_get(tls, "version")) && d_is_map(d, ver, d_join(p, path, "version"))) {
		d_known(d, ver, p, KEYS("min", "max"));
		v = MS_TLS_AUTO;
		if (pick(d, ver, "min", p, tlsver_names, ARRAY_SIZE(tlsver_names), &v) == 0)
			t->min = (enum ms_tls_version)v;
		v = MS_TLS_AUTO;
		if (pick(d, ver, "max", p, tlsver_names, ARRAY_SIZE(tlsver_names), &v) == 0)
			t->max = (enum ms_tls_version)v;
		if (t->min != MS_TLS_AUTO && t->max != MS_TLS_AUTO && t->min > t->max)
			d_err(d, ver, p, "min %s is above max %s", tlsver_names[t->min], tlsver_names[t->max]);
	}
	verif = ynode_get(tls, "verification");
	if (!verif || ynode_is_null(verif) || !d_is_map(d, verif, d_join(p, path, "verification")))
		return;
	d_known(d, verif, p,
		KEYS("mode", "serverName", "subjectAltNames", "caCert", "clientCert", "clientKey"));
	v = MS_VERIFY_SECURED;
	if (pick(d, verif, "mode", p, mode_names, ARRAY_SIZE(mode_names), &v) == 0)
		t->mode = (enum ms_verify_mode)v;
	if (d_str(d, verif, "serverName", p, false, &t->server_name) == 0 && t->server_name &&
	    !dns_name_valid(t->server_name)) {
		d_err(d, ynode_get(verif, "serverName"), d_join(q, p, "serverName"),
		      "\"%s\" is not a valid DNS name", log_escape(t->server_name));
	}
	if ((sans = ynode_get(verif, "subjectAltNames")) &&
	    d_is_seq(d, sans, d_join(q, p, "subjectAltNames"))) {
		t->sans = xcalloc(sans->n, sizeof(*t->sans));
		for (size_t i = 0; i < sans->n; i++) {
			char ip[DPATH_MAX];
			const struct ynode *e = sans->v[i];
			static const char *const types[] = { "Exact", "Prefix" };
			int ty = -1;
			char *val = NULL;

			d_index(ip, q, i);
			if (!d_is_map(d, e, ip))
				continue;
			d_known(d, e, ip, KEYS("type", "value"));
			if (!ynode_get(e, "type"))
				d_err(d, e, ip, "type: required field is missing (Exact or Prefix)");
			if (pick(d, e, "type", ip, types, 2, &ty) < 0 || ty < 0)
				continue;
			if (d_str(d, e, "value", ip, true, &val) < 0 || !val)
				continue;
			if (!*val) {
				d_err(d, ynode_get(e, "value"), ip, "value must not be empty");
				free(val);
				continue;
			}
			t->sans[t->n_sans++] = (struct ms_san){ .prefix = ty == 1, .value = val };
		}
	}
	decode_source(L, d, verif, "caCert", p, idx, 0);
	decode_source(L, d, verif, "clientCert", p, idx, 1);
	decode_source(L, d, verif, "clientKey", p, idx, 2);
}

static void status_vip(struct dctx *d, const struct ynode *status, struct ms_service *s)
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

static void decode_mes(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *match, *eps;
	struct ms_service *s;
	size_t idx;
	char p[DPATH_MAX];
	int proto = MS_PROTO_TCP;

	if (!d_is_map(d, spec, "spec"))
		return;
	s = svc_new(L, MS_KIND_MESH_EXTERNAL_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	status_vip(d, m->status, s);
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->n_ports = 1;
	d_known(d, spec, "spec", KEYS("match", "endpoints", "tls", "extension"));
	match = ynode_get(spec, "match");
	if (!match) {
		d_err(d, spec, "spec.match", "required field is missing");
	} else if (d_is_map(d, match, "spec.match")) {
		char *ty = NULL;
		d_known(d, match, "spec.match", KEYS("type", "port", "protocol"));
		if (d_str(d, match, "type", "spec.match", false, &ty) == 0 && ty &&
		    !streq(ty, "HostnameGenerator"))
			d_err(d, ynode_get(match, "type"), "spec.match.type",
			      "unknown value \"%s\" (the only type is HostnameGenerator)", log_escape(ty));
		free(ty);
		d_port(d, match, "port", "spec.match", false, &s->ports[0].port);
		pick(d, match, "protocol", "spec.match", proto_names, 4, &proto);
		s->ports[0].proto = (enum ms_proto)proto;
	}
	eps = ynode_get(spec, "endpoints");
	if (!eps) {
		d_err(d, spec, "spec.endpoints", "required field is missing");
	} else if (d_is_seq(d, eps, "spec.endpoints")) {
		if (eps->n == 0)
			d_err(d, eps, "spec.endpoints", "at least one endpoint is required");
		s->ports[0].eps = xcalloc(eps->n, sizeof(struct ms_endpoint));
		for (size_t i = 0; i < eps->n; i++) {
			struct ms_endpoint e = { 0 };
			if (decode_endpoint(d, eps->v[i], d_index(p, "spec.endpoints", i), &e) == 0)
				L->c->svcs[idx].ports[0].eps[L->c->svcs[idx].ports[0].n_eps++] = e;
			else
				endpoint_free(&e);
		}
	}
	decode_mes_tls(L, d, ynode_get(spec, "tls"), "spec.tls", idx);
}

/* Legacy ExternalService: networking.address host:port + networking.tls. */
static void decode_es(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *body = m->body, *net, *tls;
	struct ms_service *s;
	_cleanup_free_ char *address = NULL;
	char **tags = NULL;
	size_t n_tags = 0, idx;
	const char *path = m->k8s ? "spec" : "";
	char p[DPATH_MAX], q[DPATH_MAX];
	int proto = MS_PROTO_TCP;

	if (!d_is_map(d, body, m->k8s ? "spec" : "document"))
		return;
	s = svc_new(L, MS_KIND_EXTERNAL_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	if (m->k8s)
		d_known(d, body, path, KEYS("tags", "networking"));
	s->ports = xcalloc(1, sizeof(*s->ports));
	s->n_ports = 1;
	if (d_strmap(d, body, "tags", path, &tags, &n_tags) == 0) {
		struct ms_labels t = { .kv = tags, .n = n_tags };
		const char *svcname = cfg_label(&t, "kuma.io/service");
		const struct ynode *tn = ynode_get(body, "tags");
		if (!svcname)
			d_err(d, tn ? tn : body, d_join(p, path, "tags"),
			      "the tag kuma.io/service is required");
		const char *pr = cfg_label(&t, "kuma.io/protocol");
		if (pr) {
			bool found = false;
			for (size_t i = 0; i < ARRAY_SIZE(proto_names); i++)
				if (streq(pr, proto_names[i])) {
					proto = (int)i;
					found = true;
				}
			if (!found)
				d_err(d, tn, d_join(p, path, "tags.kuma.io/protocol"),
				      "unknown protocol \"%s\" (expected tcp, http, http2, grpc or kafka)",
				      log_escape(pr));
		}
		for (size_t i = 0; i < n_tags; i++)
			labels_set(&L->c->svcs[idx].labels, tags[2 * i], tags[2 * i + 1]);
		labels_free(&t);
	}
	L->c->svcs[idx].ports[0].proto = (enum ms_proto)proto;
	net = ynode_get(body, "networking");
	d_join(p, path, "networking");
	if (!net) {
		d_err(d, body, p, "required field is missing");
		return;
	}
	if (!d_is_map(d, net, p))
		return;
	d_known(d, net, p, KEYS("address", "tls", "disableHostDNSEntry"));
	if (d_str(d, net, "address", p, true, &address) == 0 && address) {
		/* host:port, [v6]:port */
		char *colon = strrchr(address, ':');
		struct ms_endpoint e = { 0 };
		struct ynode fake = { .type = YNODE_SCALAR, .plain = true };
		const struct ynode *an = ynode_get(net, "address");
		if (!colon || colon == address) {
			d_err(d, an, d_join(q, p, "address"), "\"%s\" is not host:port", log_escape(address));
		} else {
			*colon = '\0';
			char *host = address;
			if (host[0] == '[' && colon[-1] == ']') {
				host++;
				colon[-1] = '\0';
			}
			fake.str = colon + 1;
			fake.len = strlen(colon + 1);
			if (d_parse_port(&fake, &e.port) < 0)
				d_err(d, an, d_join(q, p, "address"), "port \"%s\" is not 1-65535",
				      log_escape(colon + 1));
			else if (addr_parse(host, &e.ip) == 0)
				e.type = MS_EP_IP;
			else if (dns_name_valid(host))
				e.type = MS_EP_DNS;
			else
				d_err(d, an, d_join(q, p, "address"),
				      "\"%s\" is not an IP address or a DNS name", log_escape(host));
			if (e.port && (e.type == MS_EP_IP || dns_name_valid(host))) {
				e.host = xstrdup(host);
				L->c->svcs[idx].ports[0].eps = xcalloc(1, sizeof(e));
				L->c->svcs[idx].ports[0].eps[0] = e;
				L->c->svcs[idx].ports[0].n_eps = 1;
				/* Kuma serves a legacy ExternalService on its own port. */
				L->c->svcs[idx].ports[0].port = e.port;
			}
		}
	}
	tls = ynode_get(net, "tls");
	d_join(q, p, "tls");
	if (tls && !ynode_is_null(tls) && d_is_map(d, tls, q)) {
		struct ms_tls *t = &L->c->svcs[idx].tls;
		const struct ynode *sn;
		d_known(d, tls, q,
			KEYS("enabled", "allowRenegotiation", "serverName", "caCert", "clientCert",
			     "clientKey"));
		d_bool(d, tls, "enabled", q, &t->enabled);
		d_bool(d, tls, "allowRenegotiation", q, &t->allow_renegotiation);
		if ((sn = ynode_get(tls, "serverName")) && sn->type == YNODE_SCALAR && sn->len == 0 &&
		    !sn->plain) {
			t->sni_disabled = true; /* serverName: "" */
		} else if (d_str(d, tls, "serverName", q, false, &t->server_name) == 0 &&
			   t->server_name && !dns_name_valid(t->server_name)) {
			char r[DPATH_MAX];
			d_err(d, sn, d_join(r, q, "serverName"), "\"%s\" is not a valid DNS name",
			      log_escape(t->server_name));
		}
		decode_source(L, d, tls, "caCert", q, idx, 0);
		decode_source(L, d, tls, "clientCert", q, idx, 1);
		decode_source(L, d, tls, "clientKey", q, idx, 2);
	}
}

static void decode_ms(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *sel, *ports;
	struct ms_service *s;
	size_t idx;
	char p[DPATH_MAX];

	if (!d_is_map(d, spec, "spec"))
		return;
	s = svc_new(L, MS_KIND_MESH_SERVICE, m, d);
	idx = L->c->n_svcs - 1;
	status_vip(d, m->status, s);
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
			labels_free(&t);
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
		pick(d, pn, "appProtocol", p, proto_names, ARRAY_SIZE(proto_names), &proto);
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

static void decode_hostgen(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *sel;
	struct ms_config *c = L->c;
	struct ms_hostgen *h;
	char *err = NULL;

	if (!d_is_map(d, spec, "spec"))
		return;
	c->hostgens = xrealloc(c->hostgens, c->n_hostgens + 1, sizeof(*c->hostgens));
	h = &c->hostgens[c->n_hostgens++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(m->name);
	h->mesh = m->mesh ? xstrdup(m->mesh) : NULL;
	h->file = xstrdup(d->file);
	h->line = m->doc->line;
	h->col = m->doc->col;
	for (size_t i = 0; i + 1 < c->n_hostgens; i++)
		if (streq(c->hostgens[i].name, h->name))
			d_err(d, m->doc, "name", "duplicate HostnameGenerator \"%s\" (first defined at %s:%u)",
			      log_escape(h->name), c->hostgens[i].file, c->hostgens[i].line);
	d_known(d, spec, "spec", KEYS("selector", "template", "extension"));
	if (d_str(d, spec, "template", "spec", true, &h->tmpl) == 0 && h->tmpl &&
	    cfg_template_check(h->tmpl, &err) < 0) {
		d_err(d, ynode_get(spec, "template"), "spec.template", "%s", err);
		free(err);
	}
	sel = ynode_get(spec, "selector");
	if (!sel) {
		d_err(d, spec, "spec.selector", "required field is missing");
		return;
	}
	if (!d_is_map(d, sel, "spec.selector"))
		return;
	d_known(d, sel, "spec.selector", KEYS("meshExternalService", "meshService", "meshMultiZoneService"));
	for (int which = 0; which < 2; which++) {
		const char *key = which ? "meshService" : "meshExternalService";
		const struct ynode *s = ynode_get(sel, key);
		char p[DPATH_MAX];
		char **kv = NULL;
		size_t n = 0;

		if (!s)
			continue;
		d_join(p, "spec.selector", key);
		if (!d_is_map(d, s, p))
			continue;
		d_known(d, s, p, KEYS("matchLabels"));
		if (d_strmap(d, s, "matchLabels", p, &kv, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				labels_set(&h->match, kv[2 * i], kv[2 * i + 1]);
		}
		struct ms_labels t = { kv, n };
		labels_free(&t);
		if (which)
			h->for_ms = true;
		else
			h->for_mes = true;
	}
	if (!h->for_mes && !h->for_ms && !ynode_get(sel, "meshMultiZoneService"))
		d_err(d, sel, "spec.selector", "selects nothing (expected meshExternalService or meshService)");
}

static void decode_mesh(struct loader *L, struct dctx *d, struct meta *m)
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

static void decode_secret(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *data = ynode_get(m->doc, "data");
	const struct ynode *v = data;
	struct secret *s;
	char path[DPATH_MAX] = "data";

	if (m->k8s) {
		d_known(d, m->doc, "", KEYS("apiVersion", "kind", "metadata", "data", "type", "mesh"));
		if (data && d_is_map(d, data, "data")) {
			d_known(d, data, "data", KEYS("value"));
			v = ynode_get(data, "value");
			snprintf(path, sizeof(path), "data.value");
			if (!v)
				d_err(d, data, path, "required field is missing");
		} else {
			v = NULL;
			if (!data)
				d_err(d, m->doc, "data", "required field is missing");
		}
	} else if (!data) {
		d_err(d, m->doc, "data", "required field is missing");
	}
	if (!v)
		return;
	for (size_t i = 0; i < L->n_secrets; i++)
		if (streq(L->secrets[i].name, m->name) && streq(L->secrets[i].mesh, m->mesh)) {
			d_err(d, m->doc, "name", "duplicate Secret \"%s\" in mesh \"%s\"",
			      log_escape(m->name), log_escape(m->mesh));
			return;
		}
	_cleanup_free_ char *b64 = NULL;
	if (d_scalar_str(d, v, path, &b64) < 0)
		return;
	L->secrets = xrealloc(L->secrets, L->n_secrets + 1, sizeof(*L->secrets));
	s = &L->secrets[L->n_secrets];
	memset(s, 0, sizeof(*s));
	if (cfg_base64_decode(b64, strlen(b64), &s->data, &s->len) < 0) {
		d_err(d, v, path, "not valid base64");
		return;
	}
	s->name = xstrdup(m->name);
	s->mesh = xstrdup(m->mesh);
	s->file = xstrdup(d->file);
	s->line = m->doc->line;
	s->col = m->doc->col;
	L->n_secrets++;
}

static void decode_dataplane(struct loader *L, struct dctx *d, struct meta *m)
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
		     "transparentProxying", "admin"));
	if (d_str(d, net, "address", p, true, &address) == 0 && address &&
	    addr_parse(address, &base) < 0) {
		d_err(d, ynode_get(net, "address"), d_join(q, p, "address"),
		      "\"%s\" is not an IP address", log_escape(address));
		return;
	}
	if (!address)
		return;
	for (size_t i = 0; i < L->n_dps; i++)
		if (streq(L->dps[i].name, m->name) && streq(L->dps[i].mesh, m->mesh))
			d_err(d, m->doc, "name", "duplicate Dataplane \"%s\" in mesh \"%s\"",
			      log_escape(m->name), log_escape(m->mesh));
	L->dps = xrealloc(L->dps, L->n_dps + 1, sizeof(*L->dps));
	dp = &L->dps[L->n_dps++];
	memset(dp, 0, sizeof(*dp));
	dp->name = xstrdup(m->name);
	dp->mesh = xstrdup(m->mesh);
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
		d_known(d, e, ip, KEYS("port", "servicePort", "serviceAddress", "address", "name", "tags", "health", "state"));
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
			labels_free(&t);
		}
		dp->n_in++;
	}
}

static const char *const universal_common[] = { "type", "name", "mesh", "labels",
						  "creationTime", "modificationTime", NULL };

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
		if (!streq(m->kind, "Secret") && !streq(m->kind, "Mesh") && !streq(m->kind, "ExternalService") &&
		    !streq(m->kind, "Dataplane"))
			d_known(d, doc, "", KEYS("apiVersion", "kind", "metadata", "spec", "status", "mesh"));
		else if (!streq(m->kind, "Secret"))
			d_known(d, doc, "", KEYS("apiVersion", "kind", "metadata", "spec", "mesh"));
		m->body = ynode_get(doc, "spec");
		m->status = ynode_get(doc, "status");
		d_str(d, doc, "mesh", "", false, &s);
		const char *lm = cfg_label(&m->labels, "kuma.io/mesh");
		m->mesh = xstrdup(s ? s : lm ? lm : "default");
		free(s);
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
	m->body = ynode_get(doc, "spec");
	m->status = ynode_get(doc, "status");
	/* Legacy Universal resources keep their fields at the top level. */
	if (streq(m->kind, "Mesh") || streq(m->kind, "ExternalService") ||
	    streq(m->kind, "Dataplane"))
		m->body = doc;
	return 0;
}

static void meta_free(struct meta *m)
{
	free(m->name);
	free(m->mesh);
	free(m->ns);
	labels_free(&m->labels);
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

static void decode_doc(struct loader *L, struct dctx *d, const struct ynode *doc)
{
	struct meta m;

	if (!doc || ynode_is_null(doc))
		return; /* empty document */
	if (doc->type != YNODE_MAP) {
		d_err(d, doc, "", "a resource must be a mapping, got %s", ynode_type_name(doc));
		return;
	}
	if (decode_meta(d, doc, &m) < 0) {
		meta_free(&m);
		return;
	}
	if (!m.k8s)
		check_universal_keys(d, &m);
	if (streq(m.kind, "Mesh"))
		decode_mesh(L, d, &m);
	else if (streq(m.kind, "MeshExternalService"))
		decode_mes(L, d, &m);
	else if (streq(m.kind, "MeshService"))
		decode_ms(L, d, &m);
	else if (streq(m.kind, "HostnameGenerator"))
		decode_hostgen(L, d, &m);
	else if (streq(m.kind, "ExternalService"))
		decode_es(L, d, &m);
	else if (streq(m.kind, "Secret"))
		decode_secret(L, d, &m);
	else if (streq(m.kind, "Dataplane"))
		decode_dataplane(L, d, &m);
	else
		d_err(d, ynode_get(doc, m.k8s ? "kind" : "type"), m.k8s ? "kind" : "type",
		      "unknown resource \"%s\" (expected Mesh, MeshExternalService, MeshService, HostnameGenerator, ExternalService, Secret or Dataplane)",
		      log_escape(m.kind));
	meta_free(&m);
}

static void load_one(struct loader *L, const char *buf, size_t len, const char *name)
{
	struct dctx d = { .file = name, .errs = L->errs };
	struct ydoc *docs = NULL;
	int n = ydom_parse(buf, len, name, L->errs, &docs);

	if (n < 0)
		return;
	for (int i = 0; i < n; i++)
		decode_doc(L, &d, docs[i].root);
	ydom_free_docs(docs, (size_t)n);
	L->c->n_files++;
}

/* ---- linking: everything that needs all files ---- */

static const struct secret *secret_find(struct loader *L, const char *name, const char *mesh)
{
	for (size_t i = 0; i < L->n_secrets; i++)
		if (streq(L->secrets[i].name, name) && streq(L->secrets[i].mesh, mesh))
			return &L->secrets[i];
	return NULL;
}

static void link_secrets(struct loader *L)
{
	for (size_t i = 0; i < L->n_refs; i++) {
		struct blobref *r = &L->refs[i];
		struct ms_service *s = &L->c->svcs[r->svc];
		struct ms_blob *b = r->which == 0 ? &s->tls.ca : r->which == 1 ? &s->tls.cert : &s->tls.key;
		const struct secret *sec = secret_find(L, r->secret, s->mesh);

		if (!sec) {
			cfg_errors_add(L->errs, r->file, r->line, r->col, r->field,
				       "secret \"%s\" not found in mesh \"%s\"", log_escape(r->secret),
				       log_escape(s->mesh));
			continue;
		}
		b->data = xcalloc(sec->len + 1, 1);
		memcpy(b->data, sec->data, sec->len);
		b->len = sec->len;
	}
}

static void openssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", reason ? reason : "unknown error");
	ERR_clear_error();
}

/* PEM checks for one service; errors point at the service document. */
static void check_tls_material(struct loader *L, struct ms_service *s)
{
	const char *base = s->kind == MS_KIND_EXTERNAL_SERVICE ? "networking.tls" : "spec.tls.verification";
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char why[256], field[DPATH_MAX];

	if (s->tls.ca.data) {
		BIO *bio = BIO_new_mem_buf(s->tls.ca.data, (int)s->tls.ca.len);
		int count = 0;
		X509 *x;
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			count++;
			X509_free(x);
		}
		openssl_reason(why, sizeof(why));
		BIO_free(bio);
		if (count == 0)
			cfg_errors_add(L->errs, s->file, s->tls.ca.line, s->tls.ca.col, d_join(field, base, "caCert"),
				       "%s is not a PEM certificate (OpenSSL: %s)", s->tls.ca.origin, why);
	}
	if (s->tls.cert.data) {
		BIO *bio = BIO_new_mem_buf(s->tls.cert.data, (int)s->tls.cert.len);
		cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!cert) {
			openssl_reason(why, sizeof(why));
			cfg_errors_add(L->errs, s->file, s->tls.cert.line, s->tls.cert.col, d_join(field, base, "clientCert"),
				       "%s is not a PEM certificate (OpenSSL: %s)", s->tls.cert.origin, why);
		}
		BIO_free(bio);
	}
	if (s->tls.key.data) {
		BIO *bio = BIO_new_mem_buf(s->tls.key.data, (int)s->tls.key.len);
		/* No passphrase callback: an encrypted key fails here instead of prompting. */
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
		if (!key) {
			openssl_reason(why, sizeof(why));
			cfg_errors_add(L->errs, s->file, s->tls.key.line, s->tls.key.col, d_join(field, base, "clientKey"),
				       "%s is not a PEM private key (OpenSSL: %s)", s->tls.key.origin, why);
		}
		BIO_free(bio);
	}
	if (cert && key && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		cfg_errors_add(L->errs, s->file, s->tls.key.line, s->tls.key.col, d_join(field, base, "clientKey"),
			       "does not match the public key of clientCert");
	}
	bool has_cert = s->tls.cert.origin != NULL, has_key = s->tls.key.origin != NULL;
	if (has_cert != has_key)
		cfg_errors_add(L->errs, s->file, s->line, s->col, base,
			       "clientCert and clientKey go together (%s given alone)",
			       has_cert ? "clientCert" : "clientKey");
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

static void link_mesh_services(struct loader *L)
{
	for (size_t i = 0; i < L->n_sels; i++) {
		struct ms_service *s = &L->c->svcs[L->sels[i].svc];
		for (size_t p = 0; p < s->n_ports; p++) {
			struct ms_port *pt = &s->ports[p];
			for (size_t d = 0; d < L->n_dps; d++) {
				struct dataplane *dp = &L->dps[d];
				if (!streq(dp->mesh, s->mesh))
					continue;
				for (size_t k = 0; k < dp->n_in; k++) {
					struct inbound *ib = &dp->in[k];
					if (!labels_match(&L->sels[i].tags, &ib->tags))
						continue;
					if (pt->target_name ? !streq(ib->name, pt->target_name) :
							      ib->port != pt->target_port)
						continue;
					char ip[MS_ADDR_STRLEN];
					pt->eps = xrealloc(pt->eps, pt->n_eps + 1, sizeof(*pt->eps));
					pt->eps[pt->n_eps++] = (struct ms_endpoint){
						.type = MS_EP_IP,
						.host = xstrdup(addr_fmt(&ib->addr, ip, sizeof(ip))),
						.ip = ib->addr,
						.port = ib->port,
					};
				}
			}
		}
	}
}

/* Indexes of the services, sorted by cmp with the index breaking ties: the
 * checks across all services below compare neighbours, not every pair, so
 * 10,000 services load in milliseconds. */
typedef int svc_cmp_fn(const struct ms_service *, const struct ms_service *);
struct svc_sort {
	const struct ms_service *svcs;
	svc_cmp_fn *cmp;
};

static int sorted_cmp(const void *a, const void *b, void *arg)
{
	const struct svc_sort *ss = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int r = ss->cmp(&ss->svcs[x], &ss->svcs[y]);
	return r ? r : (x > y) - (x < y);
}

static uint32_t *svcs_sorted(const struct ms_config *c, svc_cmp_fn *cmp)
{
	uint32_t *v = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*v));
	struct svc_sort ss = { c->svcs, cmp };

	for (size_t i = 0; i < c->n_svcs; i++)
		v[i] = (uint32_t)i;
	qsort_r(v, c->n_svcs, sizeof(*v), sorted_cmp, &ss);
	return v;
}

static int svc_identity_cmp(const struct ms_service *a, const struct ms_service *b)
{
	int r;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if ((r = strcmp(a->mesh, b->mesh)))
		return r;
	return strcmp(a->name, b->name);
}

/* One kind/mesh/name, one service: every later definition is an error that
 * points at the first. */
static void check_dup_svcs(struct loader *L)
{
	struct ms_config *c = L->c;
	const uint32_t *v = c->sidx = svcs_sorted(c, svc_identity_cmp); /* kept: cfg_find_service */

	for (size_t i = 1, first = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[v[i]], *f = &c->svcs[v[first]];
		if (svc_identity_cmp(s, f) != 0) {
			first = i;
			continue;
		}
		cfg_errors_add(L->errs, s->file, s->line, s->col, "name",
			       "duplicate %s \"%s\" in mesh \"%s\" (first defined at %s:%u)", cfg_kind_name(s->kind),
			       log_escape(s->name), log_escape(s->mesh), f->file, f->line);
	}
}

/* A set of addresses (open addressing): the VIPs taken so far. */
struct addr_set {
	struct ms_addr *v;
	bool *used;
	size_t mask;
};

static void addr_set_init(struct addr_set *set, size_t n)
{
	size_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	set->v = xcalloc(cap, sizeof(*set->v));
	set->used = xcalloc(cap, sizeof(*set->used));
	set->mask = cap - 1;
}

/* true if a was in the set; adds it when add */
static bool addr_set_has(struct addr_set *set, const struct ms_addr *a, bool add)
{
	size_t i = fnv1a32(a->b, sizeof(a->b), 0) & set->mask;

	for (; set->used[i]; i = (i + 1) & set->mask)
		if (addr_eq(&set->v[i], a))
			return true;
	if (add) {
		set->v[i] = *a;
		set->used[i] = true;
	}
	return false;
}

static void addr_set_free(struct addr_set *set)
{
	free(set->v);
	free(set->used);
}

static int prev_cmp(const void *a, const void *b, void *arg)
{
	const struct ms_vip_table *prev = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int r = strcmp(prev->v[x].key, prev->v[y].key);
	return r ? r : (x > y) - (x < y);
}

/* The first entry of prev for key whose VIP lies in cidr, or NULL. by_key:
 * prev's indexes sorted by key, then by position. */
static const struct ms_vip_entry *prev_find(const struct ms_vip_table *prev, const uint32_t *by_key,
					    const char *key, const struct ms_cidr *cidr)
{
	size_t lo = 0, hi = prev->n;

	while (lo < hi) { /* the first entry not below key */
		size_t mid = (lo + hi) / 2;
		if (strcmp(key, prev->v[by_key[mid]].key) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < prev->n && streq(key, prev->v[by_key[lo]].key); lo++)
		if (cidr_contains(cidr, &prev->v[by_key[lo]].vip))
			return &prev->v[by_key[lo]];
	return NULL;
}

/* host number n (1 .. size-2) inside cidr → address */
static void cidr_host(const struct ms_cidr *c, uint64_t n, struct ms_addr *ret)
{
	*ret = c->addr;
	for (int i = 15; i >= 0 && n; i--) {
		uint64_t sum = ret->b[i] + (n & 0xff);
		ret->b[i] = (uint8_t)sum;
		n = (n >> 8) + (sum >> 8);
	}
}

static int assign_vips(struct loader *L)
{
	struct ms_config *c = L->c;
	const struct ms_vip_table *prev = L->o->prev;
	bool *done = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(bool));
	uint32_t *by_key = NULL;
	struct addr_set taken;

	addr_set_init(&taken, c->n_svcs);
	/* 1. Explicit VIPs, then VIPs handed out before (if still in range and free). */
	for (size_t i = 0; i < c->n_svcs; i++)
		if (c->svcs[i].vip_explicit) {
			done[i] = true;
			addr_set_has(&taken, &c->svcs[i].vip, true);
		}
	if (prev && prev->n) {
		by_key = xcalloc(prev->n, sizeof(*by_key));
		for (size_t j = 0; j < prev->n; j++)
			by_key[j] = (uint32_t)j;
		qsort_r(by_key, prev->n, sizeof(*by_key), prev_cmp, (void *)prev);
	}
	for (size_t i = 0; by_key && i < c->n_svcs; i++) {
		struct ms_service *s = &c->svcs[i];
		const struct ms_cidr *cidr = s->kind == MS_KIND_MESH_SERVICE ? &L->o->ms_cidr : &L->o->mes_cidr;
		_cleanup_free_ char *key = NULL;
		if (done[i])
			continue;
		key = cfg_vip_key(s);
		const struct ms_vip_entry *e = prev_find(prev, by_key, key, cidr);
		if (e && !addr_set_has(&taken, &e->vip, true)) {
			s->vip = e->vip;
			done[i] = true;
		}
	}
	/* 2. New services: a hash of kind/mesh/name picks the slot, so neither the
	 * order of files nor other services move it; probe on collision. */
	for (size_t i = 0; i < c->n_svcs; i++) {
		struct ms_service *s = &c->svcs[i];
		const struct ms_cidr *cidr = s->kind == MS_KIND_MESH_SERVICE ? &L->o->ms_cidr : &L->o->mes_cidr;
		unsigned bits = 128u - cidr->plen;
		uint64_t size = bits >= 32 ? (1ull << 32) : (1ull << bits);
		_cleanup_free_ char *key = NULL;

		if (done[i])
			continue;
		if (size < 4) {
			cfg_errors_add(L->errs, s->file, s->line, s->col, "", "VIP range too small");
			continue;
		}
		key = cfg_vip_key(s);
		uint64_t h = fnv1a32(key, strlen(key), 0) % (size - 2);
		for (uint64_t tries = 0; tries < size - 2; tries++) {
			struct ms_addr a;
			cidr_host(cidr, 1 + (h + tries) % (size - 2), &a);
			if (!addr_set_has(&taken, &a, true)) {
				s->vip = a;
				done[i] = true;
				break;
			}
		}
		if (!done[i]) {
			char buf[64];
			cfg_errors_add(L->errs, s->file, s->line, s->col, "",
				       "no free VIP left in %s", cidr_fmt(cidr, buf, sizeof(buf)));
		}
	}
	addr_set_free(&taken);
	free(by_key);
	free(done);
	return 0;
}

static int svc_vip_cmp(const struct ms_service *a, const struct ms_service *b)
{
	return memcmp(a->vip.b, b->vip.b, sizeof(a->vip.b));
}

static void check_vip_clashes(struct loader *L)
{
	struct ms_config *c = L->c;
	uint32_t *v = svcs_sorted(c, svc_vip_cmp);

	/* within each run of one VIP, every later service against every earlier one */
	for (size_t i = 0, run = 0; i < c->n_svcs; i++) {
		if (!addr_eq(&c->svcs[v[i]].vip, &c->svcs[v[run]].vip))
			run = i;
		for (size_t j = run; j < i; j++) {
			struct ms_service *a = &c->svcs[v[i]], *b = &c->svcs[v[j]];
			for (size_t p = 0; p < a->n_ports; p++)
				for (size_t q = 0; q < b->n_ports; q++) {
					uint16_t pa = a->ports[p].port, pb = b->ports[q].port;
					if (pa && pb && pa != pb)
						continue;
					char ip[MS_ADDR_STRLEN];
					cfg_errors_add(L->errs, a->file, a->line, a->col, "status.vip",
						       "%s \"%s\" claims %s port %u, already used by %s \"%s\" (%s:%u)",
						       cfg_kind_name(a->kind), a->name,
						       addr_fmt(&a->vip, ip, sizeof(ip)), pa ? pa : pb,
						       cfg_kind_name(b->kind), b->name, b->file, b->line);
					goto next;
				}
next:;
		}
	}
	free(v);
}

static void gen_hostnames(struct loader *L)
{
	struct ms_config *c = L->c;

	for (size_t i = 0; i < c->n_svcs; i++) {
		struct ms_service *s = &c->svcs[i];
		for (size_t g = 0; g < c->n_hostgens; g++) {
			const struct ms_hostgen *h = &c->hostgens[g];
			char *err = NULL, *name;
			bool kind_ok = (s->kind == MS_KIND_MESH_EXTERNAL_SERVICE && h->for_mes) ||
				       (s->kind == MS_KIND_MESH_SERVICE && h->for_ms);

			if (!kind_ok || !h->tmpl || (h->mesh && !streq(h->mesh, s->mesh)))
				continue;
			if (!labels_match(&h->match, &s->labels))
				continue;
			name = cfg_template_render(h->tmpl, s, L->o->zone, &err);
			if (!name) {
				/* Kuma leaves such a service without this hostname; so do we. */
				free(err);
				continue;
			}
			bool dup = false;
			for (size_t k = 0; k < s->n_hostnames; k++)
				dup |= streq(s->hostnames[k], name);
			if (dup) {
				free(name);
				continue;
			}
			s->hostnames = xrealloc(s->hostnames, s->n_hostnames + 1, sizeof(char *));
			s->hostnames[s->n_hostnames++] = name;
		}
		/* Legacy ExternalService: Kuma's "<kuma.io/service>.mesh" name. */
		if (s->kind == MS_KIND_EXTERNAL_SERVICE) {
			const char *svc = cfg_label(&s->labels, "kuma.io/service");
			if (svc) {
				char *name = xasprintf("%s.mesh", svc);
				if (dns_name_valid(name)) {
					s->hostnames = xrealloc(s->hostnames, s->n_hostnames + 1, sizeof(char *));
					s->hostnames[s->n_hostnames++] = name;
				} else {
					free(name);
				}
			}
		}
	}
}

static int nidx_cmp(const void *a, const void *b);

/* One name, one service per mesh: in the name index (sorted by mesh, name,
 * then service) a clash is a run. */
static void check_hostname_clashes(struct loader *L)
{
	const struct ms_config *c = L->c;
	const struct ms_name_index *v = c->nidx;

	for (size_t i = 0, run = 0; i < c->n_nidx; i++) {
		if (nidx_cmp(&v[i], &v[run]))
			run = i;
		for (size_t j = run; j < i; j++) {
			const struct ms_service *x = &c->svcs[v[i].svc], *y = &c->svcs[v[j].svc];
			if (v[i].svc == v[j].svc || !streq(x->mesh, y->mesh))
				continue;
			cfg_errors_add(L->errs, x->file, x->line, x->col, "hostnames",
				       "hostname \"%s\" is generated for both %s \"%s\" and %s \"%s\" (%s:%u)", v[i].name,
				       cfg_kind_name(x->kind), x->name, cfg_kind_name(y->kind), y->name, y->file,
				       y->line);
		}
	}
}

static void check_meshes(struct loader *L)
{
	struct ms_config *c = L->c;

	if (!cfg_find_mesh(c, "default")) {
		c->meshes = xrealloc(c->meshes, c->n_meshes + 1, sizeof(*c->meshes));
		c->meshes[c->n_meshes++] = (struct ms_mesh){
			.name = xstrdup("default"),
			.id = fnv1a32("default", 7, 0) | 1,
			.passthrough = true,
			.implicit = true,
		};
	}
	for (size_t i = 0; i < c->n_svcs; i++)
		if (!cfg_find_mesh(c, c->svcs[i].mesh))
			cfg_errors_add(L->errs, c->svcs[i].file, c->svcs[i].line, c->svcs[i].col, "mesh",
				       "mesh \"%s\" does not exist", log_escape(c->svcs[i].mesh));
	for (size_t i = 0; i < c->n_hostgens; i++)
		if (c->hostgens[i].mesh && !cfg_find_mesh(c, c->hostgens[i].mesh))
			cfg_errors_add(L->errs, c->hostgens[i].file, c->hostgens[i].line,
				       c->hostgens[i].col, "mesh", "mesh \"%s\" does not exist",
				       log_escape(c->hostgens[i].mesh));
	for (size_t i = 0; i < L->n_secrets; i++)
		if (!cfg_find_mesh(c, L->secrets[i].mesh))
			cfg_errors_add(L->errs, L->secrets[i].file, L->secrets[i].line, L->secrets[i].col,
				       "mesh", "mesh \"%s\" does not exist", log_escape(L->secrets[i].mesh));
	for (size_t i = 0; i < c->n_meshes; i++)
		for (size_t j = 0; j < i; j++)
			if (c->meshes[i].id == c->meshes[j].id)
				cfg_errors_add(L->errs, "<config>", 0, 0, "mesh",
					       "meshes \"%s\" and \"%s\" hash to the same id; rename one",
					       c->meshes[i].name, c->meshes[j].name);
}

static void build_vip_index(struct ms_config *c);
static void build_name_index(struct ms_config *c);

static int finish(struct loader *L, struct ms_config **ret)
{
	check_meshes(L);
	check_dup_svcs(L);
	link_secrets(L);
	for (size_t i = 0; i < L->c->n_svcs; i++)
		if (L->c->svcs[i].kind != MS_KIND_MESH_SERVICE)
			check_tls_material(L, &L->c->svcs[i]);
	link_mesh_services(L);
	assign_vips(L);
	check_vip_clashes(L);
	gen_hostnames(L);
	build_name_index(L->c);
	check_hostname_clashes(L);
	loader_free(L);
	if (L->errs->n > 0) {
		cfg_errors_sort(L->errs);
		config_free(L->c);
		return -EINVAL;
	}
	build_vip_index(L->c);
	*ret = L->c;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
	size_t l = strlen(n);
	if (n[0] == '.')
		return false; /* editors' swap files, our own temp files */
	return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static void load_path(struct loader *L, const char *path, int *ret_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len;
	int r;

	if (stat(path, &st) < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s", strerror(errno));
		*ret_r = -errno;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(path);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (!dir) {
			cfg_errors_add(L->errs, path, 0, 0, "", "cannot open directory: %s", strerror(errno));
			*ret_r = -errno;
			return;
		}
		while ((de = readdir(dir))) {
			if (!is_yaml_name(de->d_name))
				continue;
			names = xrealloc(names, n + 1, sizeof(char *));
			names[n++] = xasprintf("%s/%s", path, de->d_name);
		}
		closedir(dir);
		if (n > 1) /* names is NULL for a directory without YAML files */
			qsort(names, n, sizeof(char *), name_cmp);
		for (size_t i = 0; i < n; i++) {
			load_path(L, names[i], ret_r);
			free(names[i]);
		}
		free(names);
		return;
	}
	r = read_file(path, MS_CONFIG_MAX_FILE, &buf, &len);
	if (r < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s",
			       r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		*ret_r = r;
		return;
	}
	load_one(L, buf, len, path);
	free(buf);
}

int cfg_load_paths(const char *const *paths, size_t n, const struct cfg_opts *o,
		   struct cfg_errors *errs, struct ms_config **ret)
{
	struct loader L = { .o = o, .errs = errs };
	int r = 0;

	L.c = xcalloc(1, sizeof(*L.c));
	L.c->refs = 1;
	for (size_t i = 0; i < n; i++)
		load_path(&L, paths[i], &r);
	if (r < 0) {
		loader_free(&L);
		config_free(L.c);
		return r;
	}
	return finish(&L, ret);
}

int cfg_load_buffer(const char *buf, size_t len, const char *name, const struct cfg_opts *o,
		    struct cfg_errors *errs, struct ms_config **ret)
{
	struct loader L = { .o = o, .errs = errs };

	L.c = xcalloc(1, sizeof(*L.c));
	L.c->refs = 1;
	load_one(&L, buf, len, name);
	return finish(&L, ret);
}

const struct ms_service *cfg_find_service(const struct ms_config *c, enum ms_kind kind, const char *mesh,
					  const char *name)
{
	const struct ms_service key = { .kind = kind, .mesh = (char *)mesh, .name = (char *)name };
	size_t lo = 0, hi = c->n_svcs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = svc_identity_cmp(&key, &c->svcs[c->sidx[mid]]);
		if (r == 0)
			return &c->svcs[c->sidx[mid]];
		if (r > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct ms_mesh *cfg_find_mesh(const struct ms_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_meshes; i++)
		if (streq(c->meshes[i].name, name))
			return &c->meshes[i];
	return NULL;
}

static int vidx_cmp(const void *a, const void *b)
{
	const struct ms_vip_index *x = a, *y = b;
	int r;

	if (x->mesh_id != y->mesh_id)
		return x->mesh_id < y->mesh_id ? -1 : 1;
	if ((r = memcmp(x->vip.b, y->vip.b, 16)))
		return r;
	return x->port < y->port ? -1 : x->port > y->port;
}

static void build_vip_index(struct ms_config *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_svcs; i++)
		n += c->svcs[i].n_ports;
	c->vidx = xcalloc(n ? n : 1, sizeof(*c->vidx));
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_mesh *m = cfg_find_mesh(c, c->svcs[i].mesh);
		for (size_t p = 0; m && p < c->svcs[i].n_ports; p++)
			c->vidx[c->n_vidx++] = (struct ms_vip_index){ .mesh_id = m->id, .port = c->svcs[i].ports[p].port,
								     .vip = c->svcs[i].vip, .svc = (uint32_t)i,
								     .svc_port = (uint32_t)p };
	}
	if (c->n_vidx > 1)
		qsort(c->vidx, c->n_vidx, sizeof(*c->vidx), vidx_cmp);
}

static int nidx_cmp(const void *a, const void *b)
{
	const struct ms_name_index *x = a, *y = b;

	if (x->mesh_id != y->mesh_id)
		return x->mesh_id < y->mesh_id ? -1 : 1;
	return strcasecmp(x->name, y->name);
}

static int nidx_sort_cmp(const void *a, const void *b)
{
	const struct ms_name_index *x = a, *y = b;
	int r = nidx_cmp(a, b);

	return r ? r : (x->svc > y->svc) - (x->svc < y->svc);
}

/* Every service's hostnames, those of a service whose mesh is missing under
 * mesh id 0 (such a config is refused, but its clashes are still reported). */
static void build_name_index(struct ms_config *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_svcs; i++)
		n += c->svcs[i].n_hostnames;
	c->nidx = xcalloc(n ? n : 1, sizeof(*c->nidx));
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_mesh *m = cfg_find_mesh(c, c->svcs[i].mesh);
		for (size_t h = 0; h < c->svcs[i].n_hostnames; h++)
			c->nidx[c->n_nidx++] = (struct ms_name_index){ .mesh_id = m ? m->id : 0,
								      .name = c->svcs[i].hostnames[h],
								      .svc = (uint32_t)i };
	}
	if (c->n_nidx > 1)
		qsort(c->nidx, c->n_nidx, sizeof(*c->nidx), nidx_sort_cmp);
}

const struct ms_service *cfg_find_hostname(const struct ms_config *c, const char *mesh, const char *name)
{
	const struct ms_mesh *m = cfg_find_mesh(c, mesh);
	char buf[256];
	size_t len = strlen(name);
	struct ms_name_index key = { .name = buf }, *hit;

	if (!m || c->n_nidx == 0 || len == 0 || len >= sizeof(buf))
		return NULL;
	/* a fully qualified query ends with a dot; the names do not */
	memcpy(buf, name, len + 1);
	if (buf[len - 1] == '.')
		buf[len - 1] = '\0';
	key.mesh_id = m->id;
	hit = bsearch(&key, c->nidx, c->n_nidx, sizeof(key), nidx_cmp);
	return hit ? &c->svcs[hit->svc] : NULL;
}

const struct ms_service *cfg_find_vip(const struct ms_config *c, const char *mesh,
				      const struct ms_addr *vip, uint16_t port,
				      const struct ms_port **ret_port)
{
	const struct ms_mesh *m = cfg_find_mesh(c, mesh);
	struct ms_vip_index key = { .vip = *vip, .port = port };
	const struct ms_vip_index *hit;

	if (!m || c->n_vidx == 0)
		return NULL;
	key.mesh_id = m->id;
	/* the exact port first, then the service that takes every port */
	hit = bsearch(&key, c->vidx, c->n_vidx, sizeof(key), vidx_cmp);
	if (!hit && port) {
		key.port = 0;
		hit = bsearch(&key, c->vidx, c->n_vidx, sizeof(key), vidx_cmp);
	}
	if (!hit)
		return NULL;
	if (ret_port)
		*ret_port = &c->svcs[hit->svc].ports[hit->svc_port];
	return &c->svcs[hit->svc];
}
