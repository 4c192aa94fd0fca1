// SPDX-License-Identifier: MIT
/* The model's life: names of enums, labels, freeing, reference counting. */
#include <openssl/crypto.h>
#include <string.h>

#include "loader.h"
#include "util.h"

const char cfg_embedded_default[] = "# meshsplice embedded default\n"
				    "type: Mesh\n"
				    "name: default\n"
				    "networking:\n"
				    "  outbound:\n"
				    "    passthrough: true\n";

void cfg_opts_init(struct cfg_opts *o)
{
	memset(o, 0, sizeof(*o));
	cidr_parse(MS_DEFAULT_MES_CIDR, &o->mes_cidr);
	cidr_parse(MS_DEFAULT_MS_CIDR, &o->ms_cidr);
	o->zone = "zone";
	cidr_parse(MS_DEFAULT_GLOO_CIDR, &o->gloo_cidr);
	o->gloo_mesh = MS_DEFAULT_GLOO_MESH;
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
	case MS_KIND_GLOO_EXTERNAL_SERVICE:
		return "GlooExternalService";
	}
	return "?";
}

const char *const cfg_proto_names[5] = { "tcp", "http", "http2", "grpc", "kafka" };
const char *const cfg_mode_names[4] = { "Secured", "SkipSAN", "SkipCA", "SkipAll" };
const char *const cfg_tlsver_names[5] = { "TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13" };

const char *cfg_proto_name(enum ms_proto p)
{
	return (size_t)p < ARRAY_SIZE(cfg_proto_names) ? cfg_proto_names[p] : "?";
}

const char *cfg_mode_name(enum ms_verify_mode m)
{
	return (size_t)m < ARRAY_SIZE(cfg_mode_names) ? cfg_mode_names[m] : "?";
}

const char *cfg_tls_version_name(enum ms_tls_version v)
{
	return (size_t)v < ARRAY_SIZE(cfg_tlsver_names) ? cfg_tlsver_names[v] : "?";
}

void cfg_labels_free(struct ms_labels *l)
{
	for (size_t i = 0; i < 2 * l->n; i++)
		free(l->kv[i]);
	free(l->kv);
	l->kv = NULL;
	l->n = 0;
}

void cfg_labels_set(struct ms_labels *l, const char *k, const char *v)
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
bool cfg_labels_match(const struct ms_labels *sel, const struct ms_labels *l)
{
	for (size_t i = 0; i < sel->n; i++)
		if (!streq(cfg_label(l, sel->kv[2 * i]), sel->kv[2 * i + 1]))
			return false;
	return true;
}

void cfg_blob_free(struct ms_blob *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->len);
	free(b->data);
	free(b->origin);
	memset(b, 0, sizeof(*b));
}

void cfg_endpoint_free(struct ms_endpoint *e)
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
	cfg_labels_free(&s->labels);
	for (size_t i = 0; i < s->n_ports; i++) {
		free(s->ports[i].name);
		free(s->ports[i].target_name);
		for (size_t j = 0; j < s->ports[i].n_eps; j++)
			cfg_endpoint_free(&s->ports[i].eps[j]);
		free(s->ports[i].eps);
	}
	free(s->ports);
	free(s->tls.server_name);
	for (size_t i = 0; i < s->tls.n_sans; i++)
		free(s->tls.sans[i].value);
	free(s->tls.sans);
	cfg_blob_free(&s->tls.ca);
	cfg_blob_free(&s->tls.cert);
	cfg_blob_free(&s->tls.key);
	free(s->tls.unusable);
	for (size_t i = 0; i < s->n_hostnames; i++)
		free(s->hostnames[i]);
	free(s->hostnames);
}

void cfg_config_free(struct ms_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_meshes; i++) {
		struct ms_mesh *m = &c->meshes[i];

		for (size_t j = 0; j < m->n_matches; j++) {
			free(m->matches[j].domain);
			free(m->matches[j].origin);
			free(m->matches[j].file);
		}
		free(m->matches);
		free(m->name);
	}
	free(c->meshes);
	for (size_t i = 0; i < c->n_svcs; i++)
		service_free(&c->svcs[i]);
	free(c->svcs);
	for (size_t i = 0; i < c->n_hostgens; i++) {
		free(c->hostgens[i].name);
		free(c->hostgens[i].mesh);
		free(c->hostgens[i].tmpl);
		free(c->hostgens[i].file);
		cfg_labels_free(&c->hostgens[i].match);
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
		cfg_config_free(c);
}

void loader_free(struct loader *L)
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
		free(L->dps[i].ns);
		cfg_labels_free(&L->dps[i].labels);
		for (size_t j = 0; j < L->dps[i].n_in; j++) {
			free(L->dps[i].in[j].name);
			cfg_labels_free(&L->dps[i].in[j].tags);
		}
		free(L->dps[i].in);
	}
	free(L->dps);
	for (size_t i = 0; i < L->n_sels; i++) {
		cfg_labels_free(&L->sels[i].tags);
		free(L->sels[i].dp_name);
	}
	free(L->sels);
	gloo_free(L);
	for (size_t i = 0; i < L->n_passes; i++)
		pass_doc_free(&L->passes[i]);
	free(L->passes);
}

void doc_meta_free(struct meta *m)
{
	free(m->name);
	free(m->mesh);
	free(m->ns);
	cfg_labels_free(&m->labels);
}

const char *cfg_label(const struct ms_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->kv[2 * i], key))
			return l->kv[2 * i + 1];
	return NULL;
}
