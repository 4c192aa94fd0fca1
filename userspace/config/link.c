// SPDX-License-Identifier: MIT
/* Linking: what needs every file read first (secrets, TLS material, MeshService
 * endpoints, meshes), then the passes in order. */
#include <errno.h>
#include <stdarg.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "util.h"

static const struct secret *secret_find(struct loader *L, const char *name, const char *mesh)
{
	for (size_t i = 0; i < L->n_secrets; i++)
		if (streq(L->secrets[i].name, name) && streq(L->secrets[i].mesh, mesh))
			return &L->secrets[i];
	return NULL;
}

static void tls_unusable(struct ms_tls *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tls_unusable(struct ms_tls *t, const char *fmt, ...)
{
	va_list ap;

	if (t->unusable)
		return; /* the first reason is enough */
	va_start(ap, fmt);
	if (vasprintf(&t->unusable, fmt, ap) < 0)
		t->unusable = xstrdup("TLS material unusable");
	va_end(ap);
}

static void link_secrets(struct loader *L)
{
	for (size_t i = 0; i < L->n_refs; i++) {
		struct blobref *r = &L->refs[i];
		struct ms_service *s = &L->c->svcs[r->svc];
		struct ms_blob *b = r->which == 0 ? &s->tls.ca : r->which == 1 ? &s->tls.cert : &s->tls.key;
		const struct secret *sec = secret_find(L, r->secret, s->mesh);

		if (!sec && s->kind == MS_KIND_GLOO_EXTERNAL_SERVICE) { /* Gloo's, not Kuma's: refused */
			cfg_errors_add(L->errs, r->file, r->line, r->col, r->field,
				       "secret \"%s\" not found in mesh \"%s\"", log_escape(r->secret),
				       log_escape(s->mesh));
			continue;
		}
		if (!sec) {
			/* Kuma checks a reference when it is used, not when it is written */
			cfg_warn_add(L->errs, r->file, r->line, r->col, r->field,
				     "secret \"%s\" not found in mesh \"%s\": the service's TLS connections are refused",
				     log_escape(r->secret), log_escape(s->mesh));
			tls_unusable(&s->tls, "%s: secret \"%s\" not found in mesh \"%s\"", r->field,
				     log_escape(r->secret), log_escape(s->mesh));
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
/* TLS material that does not parse: Gloo's files are refused (a located
 * error); Kuma's are accepted as kuma-cp does, said (a warning) and the
 * service's TLS connections refused with the reason at use. */
static void material_bad(struct loader *L, struct ms_service *s, const struct ms_blob *b, bool gloo,
			 const char *field, const char *kuma_name, const char *what, const char *why)
{
	if (gloo) {
		cfg_errors_add(L->errs, s->file, b->line, b->col, field, "%s is not a PEM %s (OpenSSL: %s)", b->origin,
			       what, why);
		return;
	}
	cfg_warn_add(L->errs, s->file, b->line, b->col, field,
		     "%s is not a PEM %s (OpenSSL: %s): the service's TLS connections are refused", b->origin, what, why);
	tls_unusable(&s->tls, "%s: %s is not a PEM %s", kuma_name, b->origin, what);
}

static void check_tls_material(struct loader *L, struct ms_service *s)
{
	bool gloo = s->kind == MS_KIND_GLOO_EXTERNAL_SERVICE;
	const char *base = s->kind == MS_KIND_EXTERNAL_SERVICE ? "networking.tls" :
			   gloo ? "spec.ports.clientsideTls" : "spec.tls.verification";
	const char *f_ca = gloo ? "caCertificates" : "caCert", *f_cert = gloo ? "clientCertificate" : "clientCert",
		   *f_key = gloo ? "privateKey" : "clientKey";
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
			material_bad(L, s, &s->tls.ca, gloo, d_join(field, base, f_ca), "caCert", "certificate", why);
	}
	if (s->tls.cert.data) {
		BIO *bio = BIO_new_mem_buf(s->tls.cert.data, (int)s->tls.cert.len);
		cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!cert) {
			openssl_reason(why, sizeof(why));
			material_bad(L, s, &s->tls.cert, gloo, d_join(field, base, f_cert), "clientCert", "certificate", why);
		}
		BIO_free(bio);
	}
	if (s->tls.key.data) {
		BIO *bio = BIO_new_mem_buf(s->tls.key.data, (int)s->tls.key.len);
		/* No passphrase callback: an encrypted key fails here instead of prompting. */
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
		if (!key) {
			openssl_reason(why, sizeof(why));
			material_bad(L, s, &s->tls.key, gloo, d_join(field, base, f_key), "clientKey", "private key", why);
		}
		BIO_free(bio);
	}
	if (cert && key && X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		if (gloo) {
			cfg_errors_add(L->errs, s->file, s->tls.key.line, s->tls.key.col, d_join(field, base, f_key),
				       "does not match the public key of clientCert");
		} else {
			cfg_warn_add(L->errs, s->file, s->tls.key.line, s->tls.key.col, d_join(field, base, f_key),
				     "does not match the public key of clientCert: the service's TLS connections are refused");
			tls_unusable(&s->tls, "clientKey does not match the public key of clientCert");
		}
	}
	bool has_cert = s->tls.cert.origin != NULL, has_key = s->tls.key.origin != NULL;
	/* named where Kuma names it: the one that is missing, at the one given */
	if (has_cert != has_key && s->kind != MS_KIND_MESH_EXTERNAL_SERVICE) { /* MES: decode_mes_tls */
		const struct ms_blob *given = has_cert ? &s->tls.cert : &s->tls.key;
		cfg_errors_add(L->errs, s->file, given->line, given->col,
			       d_join(field, base, has_cert ? f_key : f_cert),
			       "must be defined when %s is defined (clientCert and clientKey go together)",
			       has_cert ? "clientCert" : "clientKey");
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

/* Does MeshService selector x take inbound ib of dp? */
static bool selects(const struct ms_selector *x, const struct dataplane *dp, const struct inbound *ib)
{
	switch (x->by) {
	case SEL_TAGS:
		return cfg_labels_match(&x->tags, &ib->tags);
	case SEL_LABELS:
		return cfg_labels_match(&x->tags, &dp->labels);
	case SEL_REF:
		if (streq(x->dp_name, dp->name))
			return true;
		/* Kuma names a Kubernetes Dataplane "name.namespace" */
		size_t l = strlen(dp->name);
		return dp->ns && strncmp(x->dp_name, dp->name, l) == 0 && x->dp_name[l] == '.' &&
		       streq(x->dp_name + l + 1, dp->ns);
	}
	return false;
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
					if (!selects(&L->sels[i], dp, ib))
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

static void link_check_meshes(struct loader *L)
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
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i];
		/* where the mesh is named: mesh, or Kubernetes' kuma.io/mesh label */
		if (!cfg_find_mesh(c, s->mesh))
			cfg_errors_add(L->errs, s->file, s->mesh_line ? s->mesh_line : s->line,
				       s->mesh_line ? s->mesh_col : s->col,
				       s->mesh_label ? "metadata.labels.kuma.io/mesh" : "mesh",
				       "mesh \"%s\" does not exist", log_escape(s->mesh));
	}
	for (size_t i = 0; i < c->n_hostgens; i++)
		if (c->hostgens[i].mesh && !cfg_find_mesh(c, c->hostgens[i].mesh))
			cfg_errors_add(L->errs, c->hostgens[i].file, c->hostgens[i].line,
				       c->hostgens[i].col, "mesh", "mesh \"%s\" does not exist",
				       log_escape(c->hostgens[i].mesh));
	/* Kuma takes a Secret of a mesh that does not exist (yet): nothing uses it */
	for (size_t i = 0; i < L->n_secrets; i++)
		if (!cfg_find_mesh(c, L->secrets[i].mesh))
			cfg_warn_add(L->errs, L->secrets[i].file, L->secrets[i].line, L->secrets[i].col,
				     "mesh", "mesh \"%s\" does not exist: the Secret is unused",
				     log_escape(L->secrets[i].mesh));
	for (size_t i = 0; i < c->n_meshes; i++)
		for (size_t j = 0; j < i; j++)
			if (c->meshes[i].id == c->meshes[j].id)
				cfg_errors_add(L->errs, "<config>", 0, 0, "mesh",
					       "meshes \"%s\" and \"%s\" hash to the same id; rename one",
					       c->meshes[i].name, c->meshes[j].name);
}

int loader_finish(struct loader *L, struct ms_config **ret)
{
	link_check_meshes(L);
	gloo_link(L);
	index_check_dup_svcs(L);
	link_secrets(L);
	for (size_t i = 0; i < L->c->n_svcs; i++)
		if (L->c->svcs[i].kind != MS_KIND_MESH_SERVICE)
			check_tls_material(L, &L->c->svcs[i]);
	link_mesh_services(L);
	link_passthrough(L);
	vips_assign(L);
	vips_check_clashes(L);
	hostnames_generate(L);
	index_build_names(L->c);
	index_check_hostname_clashes(L);
	loader_free(L);
	cfg_errors_sort(L->errs);
	if (cfg_errors_count(L->errs) > 0) {
		cfg_config_free(L->c);
		return -EINVAL;
	}
	index_build_vips(L->c);
	*ret = L->c;
	return 0;
}
