// SPDX-License-Identifier: MIT
/* TLS origination of external services: MeshExternalService spec.tls and the
 * certificate sources both it and the legacy ExternalService use. */
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

static void add_ref(struct loader *L, struct dctx *d, const struct ynode *v, const char *field,
		    size_t svc_idx, int which, struct ms_blob *b, char *name)
{
	L->refs = xrealloc(L->refs, L->n_refs + 1, sizeof(*L->refs));
	L->refs[L->n_refs++] = (struct blobref){ .svc = svc_idx, .which = which, .secret = name,
						 .file = xstrdup(d->file), .line = v->line,
						 .col = v->col, .field = xstrdup(field) };
	b->origin = xasprintf("secret:%s", name);
}

/* Kuma 3.0's SecureDataSource (MeshExternalService): type Secret with
 * secretRef {kind: Secret, name}, or InsecureInline with insecureInline.value
 * (PEM text); File and EnvVar are refused, as Kuma refuses them to a
 * MeshExternalService author (they read the control plane's own files). */
static void decode_secure_source(struct loader *L, struct dctx *d, const struct ynode *n, const char *p,
				 size_t svc_idx, int which, struct ms_blob *b)
{
	const struct ynode *tn = ynode_get(n, "type"), *sub;
	char q[DPATH_MAX], r[DPATH_MAX];
	char *type = NULL, *s = NULL;

	d_known(d, n, p, KEYS("type", "secretRef", "insecureInline", "file", "envVar"));
	if (d_scalar_str(d, tn, d_join(q, p, "type"), &type) < 0)
		return;
	if (streq(type, "Secret")) {
		sub = ynode_get(n, "secretRef");
		d_join(q, p, "secretRef");
		if (!sub || ynode_is_null(sub)) {
			d_err(d, n, q, "must be defined");
		} else if (d_is_map(d, sub, q)) {
			const struct ynode *kn = ynode_get(sub, "kind");
			d_known(d, sub, q, KEYS("kind", "name"));
			if (!kn || kn->type != YNODE_SCALAR || !streq(kn->str, "Secret"))
				d_err(d, kn ? kn : sub, d_join(r, q, "kind"), "must be one of: Secret");
			if (d_str(d, sub, "name", q, false, &s) == 0) {
				if (!s || !*s)
					d_err(d, ynode_get(sub, "name") ? ynode_get(sub, "name") : sub,
					      d_join(r, q, "name"), "must be defined");
				else if (kn && kn->type == YNODE_SCALAR && streq(kn->str, "Secret"))
					add_ref(L, d, ynode_get(sub, "name"), d_join(r, q, "name"), svc_idx, which, b,
						TAKE_PTR(s));
			}
		}
	} else if (streq(type, "InsecureInline")) {
		sub = ynode_get(n, "insecureInline");
		d_join(q, p, "insecureInline");
		if (!sub || ynode_is_null(sub)) {
			d_err(d, n, q, "must be defined");
		} else if (d_is_map(d, sub, q)) {
			d_known(d, sub, q, KEYS("value"));
			if (d_str(d, sub, "value", q, false, &s) == 0) {
				if (!s || !*s) {
					d_err(d, ynode_get(sub, "value") ? ynode_get(sub, "value") : sub,
					      d_join(r, q, "value"), "must be defined");
				} else {
					b->len = strlen(s);
					b->data = (unsigned char *)TAKE_PTR(s);
					b->origin = xstrdup("insecureInline");
				}
			}
		}
	} else {
		d_err(d, tn, d_join(q, p, "type"), "\"%s\" must be one of: Secret, InsecureInline%s",
		      log_escape(type),
		      streq(type, "File") || streq(type, "EnvVar") ? " (a MeshExternalService may not read the control plane's files or environment)" : "");
	}
	free(type);
	free(s);
}

/* caCert / clientCert / clientKey: exactly one of inline, inlineString,
 * secret; in a MeshExternalService (secure) Kuma 3.0's typed form too. */
void decode_source(struct loader *L, struct dctx *d, const struct ynode *parent,
			  const char *key, const char *path, size_t svc_idx, int which, bool secure)
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
	b = which == 0 ? &L->c->svcs[svc_idx].tls.ca :
	    which == 1 ? &L->c->svcs[svc_idx].tls.cert :
			 &L->c->svcs[svc_idx].tls.key;
	if (secure && ynode_get(n, "type")) {
		b->line = n->line;
		b->col = n->col;
		decode_secure_source(L, d, n, p, svc_idx, which, b);
		/* given, even when broken: the clientCert/clientKey pairing counts it */
		if (!b->origin)
			b->origin = xstrdup("invalid");
		return;
	}
	d_known(d, n, p, KEYS("inline", "inlineString", "secret"));
	for (const char *const *k = KEYS("inline", "inlineString", "secret"); *k; k++)
		set += ynode_get(n, *k) != NULL;
	if (set != 1) {
		d_err(d, n, p, "exactly one of inline, inlineString or secret is required (%d given)", set);
		return;
	}
	b->line = n->line;
	b->col = n->col;
	if ((v = ynode_get(n, "inline"))) {
		_cleanup_free_ char *s = NULL;
		if (d_scalar_str(d, v, d_join(q, p, "inline"), &s) < 0)
			return;
		if (!*s) { /* Kuma's words, at the source */
			d_err(d, n, p, "data source cannot be empty");
			return;
		}
		if (cfg_base64_decode(s, strlen(s), &b->data, &b->len) < 0 || b->len == 0) {
			free(b->data); /* nothing half-decoded is left to check as PEM */
			b->data = NULL;
			b->len = 0;
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
		add_ref(L, d, v, q, svc_idx, which, b, s);
	}
}

void decode_mes_tls(struct loader *L, struct dctx *d, const struct ynode *tls,
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
		if (d_pick(d, ver, "min", p, cfg_tlsver_names, ARRAY_SIZE(cfg_tlsver_names), &v) == 0)
			t->min = (enum ms_tls_version)v;
		v = MS_TLS_AUTO;
		if (d_pick(d, ver, "max", p, cfg_tlsver_names, ARRAY_SIZE(cfg_tlsver_names), &v) == 0)
			t->max = (enum ms_tls_version)v;
		if (t->min != MS_TLS_AUTO && t->max != MS_TLS_AUTO && t->min > t->max)
			d_err(d, ynode_get(ver, "min"), d_join(q, p, "min"), "min %s is above max %s",
			      cfg_tlsver_names[t->min], cfg_tlsver_names[t->max]);
	}
	verif = ynode_get(tls, "verification");
	if (!verif || ynode_is_null(verif) || !d_is_map(d, verif, d_join(p, path, "verification")))
		return;
	d_known(d, verif, p,
		KEYS("mode", "serverName", "subjectAltNames", "caCert", "clientCert", "clientKey"));
	v = MS_VERIFY_SECURED;
	if (d_pick(d, verif, "mode", p, cfg_mode_names, ARRAY_SIZE(cfg_mode_names), &v) == 0)
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
			if (d_pick(d, e, "type", ip, types, 2, &ty) < 0 || ty < 0)
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
	decode_source(L, d, verif, "caCert", p, idx, 0, true);
	decode_source(L, d, verif, "clientCert", p, idx, 1, true);
	decode_source(L, d, verif, "clientKey", p, idx, 2, true);
	/* Kuma names the one missing, which is missing from verification */
	bool has_cert = ynode_get(verif, "clientCert"), has_key = ynode_get(verif, "clientKey");
	if (has_cert != has_key)
		d_err(d, verif, d_join(q, p, has_cert ? "clientKey" : "clientCert"),
		      "must be defined when %s is defined (clientCert and clientKey go together)",
		      has_cert ? "clientCert" : "clientKey");
}
