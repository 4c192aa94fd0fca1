// SPDX-License-Identifier: MIT
/* VIPs: handed out from the ranges, kept across reloads (the persisted table),
 * never two services on one VIP and port. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

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

/* The range a service's VIP comes from. */
static const struct ms_cidr *svc_cidr(const struct loader *L, const struct ms_service *s)
{
	if (s->kind == MS_KIND_MESH_SERVICE)
		return &L->o->ms_cidr;
	return s->kind == MS_KIND_GLOO_EXTERNAL_SERVICE ? &L->o->gloo_cidr : &L->o->mes_cidr;
}

int vips_assign(struct loader *L)
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
		const struct ms_cidr *cidr = svc_cidr(L, s);
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
		const struct ms_cidr *cidr = svc_cidr(L, s);
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

void vips_check_clashes(struct loader *L)
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

void cfg_vip_table_clear(struct ms_vip_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

char *cfg_vip_key(const struct ms_service *s)
{
	return xasprintf("%s/%s/%s", cfg_kind_name(s->kind), s->mesh, s->name);
}

void cfg_vip_table_from_config(const struct ms_config *c, struct ms_vip_table *ret)
{
	ret->v = xcalloc(c->n_svcs, sizeof(*ret->v));
	ret->n = 0;
	for (size_t i = 0; i < c->n_svcs; i++) {
		if (c->svcs[i].vip_explicit)
			continue;
		ret->v[ret->n].key = cfg_vip_key(&c->svcs[i]);
		ret->v[ret->n].vip = c->svcs[i].vip;
		ret->n++;
	}
}

/* One "key address" per line. Lines that do not parse are skipped: the file
 * is ours, and losing a line only means that VIP may be handed out anew. */
int cfg_vip_table_parse(const char *text, struct ms_vip_table *ret)
{
	const char *p = text;

	memset(ret, 0, sizeof(*ret));
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512], key[400], ip[64];
		struct ms_addr a;

		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			if (sscanf(line, "%399s %63s", key, ip) == 2 && addr_parse(ip, &a) == 0) {
				ret->v = xrealloc(ret->v, ret->n + 1, sizeof(*ret->v));
				ret->v[ret->n].key = xstrdup(key);
				ret->v[ret->n].vip = a;
				ret->n++;
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

char *cfg_vip_table_format(const struct ms_vip_table *t)
{
	size_t cap = 64 + t->n * 96, o = 0;
	char *out = xcalloc(cap, 1);

	for (size_t i = 0; i < t->n; i++) {
		char ip[MS_ADDR_STRLEN];
		size_t need = strlen(t->v[i].key) + MS_ADDR_STRLEN + 4;

		while (o + need >= cap)
			out = xrealloc(out, cap *= 2, 1);
		o += (size_t)snprintf(out + o, cap - o, "%s %s\n", t->v[i].key,
				      addr_fmt(&t->v[i].vip, ip, sizeof(ip)));
	}
	return out;
}
