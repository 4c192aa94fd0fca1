// SPDX-License-Identifier: MIT
/* TLS origination of external services: MeshExternalService spec.tls and the
 * certificate sources both it and the legacy ExternalService use. */
#include <string.h>

#include "loader.h"
#include "util.h"

/* caCert / clientCert / clientKey: exactly one of inline, inlineString, secret. */
void decode_source(struct loader *L, struct dctx *d, const struct ynode *parent,
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
		L->refs = xrealloc(L->refs, L->n_refs + 1, sizeof(*L->refs));
		L->refs[L->n_refs++] = (struct blobref){ .svc = svc_idx, .which = which, .secret = s,
							 .file = xstrdup(d->file), .line = v->line,
							 .col = v->col, .field = xstrdup(q) };
		b->origin = xasprintf("secret:%s", s);
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
	decode_source(L, d, verif, "caCert", p, idx, 0);
	decode_source(L, d, verif, "clientCert", p, idx, 1);
	decode_source(L, d, verif, "clientKey", p, idx, 2);
}
