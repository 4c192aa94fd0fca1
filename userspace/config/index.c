// SPDX-License-Identifier: MIT
/* Indexes of a config: services by identity, (mesh, VIP, port), (mesh, hostname);
 * a clash is a run of one key. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loader.h"
#include "util.h"

/* Indexes of the services, sorted by cmp with the index breaking ties: the
 * checks across all services below compare neighbours, not every pair, so
 * 10,000 services load in milliseconds. */
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

uint32_t *svcs_sorted(const struct ms_config *c, svc_cmp_fn *cmp)
{
	uint32_t *v = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*v));
	struct svc_sort ss = { c->svcs, cmp };

	for (size_t i = 0; i < c->n_svcs; i++)
		v[i] = (uint32_t)i;
	qsort_r(v, c->n_svcs, sizeof(*v), sorted_cmp, &ss);
	return v;
}

int svc_identity_cmp(const struct ms_service *a, const struct ms_service *b)
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
void index_check_dup_svcs(struct loader *L)
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

void index_build_vips(struct ms_config *c)
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

/* One name, one service per mesh: in the name index (sorted by mesh, name,
 * then service) a clash is a run. */
void index_check_hostname_clashes(struct loader *L)
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

/* Every service's hostnames, those of a service whose mesh is missing under
 * mesh id 0 (such a config is refused, but its clashes are still reported). */
void index_build_names(struct ms_config *c)
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
