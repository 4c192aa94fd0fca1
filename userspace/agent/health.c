// SPDX-License-Identifier: MIT
#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

static const char *const why_names[HEALTH_WHY__MAX] = {
	[HEALTH_WHY_NEW] = "new",
	[HEALTH_WHY_CONNECT_FAILED] = "connect_failed",
	[HEALTH_WHY_CONNECT_OK] = "connect_ok",
	[HEALTH_WHY_PROBE_OK] = "probe_ok",
	[HEALTH_WHY_PROBE_TIMEOUT] = "probe_timeout",
	[HEALTH_WHY_PROBE_REFUSED] = "probe_refused",
	[HEALTH_WHY_PROBE_ERROR] = "probe_error",
	[HEALTH_WHY_EJECT_OVER] = "ejection_over",
	[HEALTH_WHY_INHERITED] = "inherited",
};

const char *health_why_name(enum health_why w)
{
	return w < HEALTH_WHY__MAX ? why_names[w] : "?";
}

void health_init(struct health *h, const struct health_opts *o)
{
	memset(h, 0, sizeof(*h));
	h->o = *o;
	if (!h->o.unhealthy_after)
		h->o.unhealthy_after = 1;
	if (!h->o.healthy_after)
		h->o.healthy_after = 1;
}

void health_fini(struct health *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

static int key_cmp(const struct ms_addr *a, uint16_t ap, const struct ms_addr *b, uint16_t bp)
{
	int d = memcmp(a->b, b->b, sizeof(a->b));

	return d ? d : (int)ap - (int)bp;
}

static int ep_cmp(const void *x, const void *y)
{
	const struct health_ep *a = x, *b = y;

	return key_cmp(&a->addr, a->port, &b->addr, b->port);
}

static struct health_ep *find(const struct health *h, const struct ms_addr *a, uint16_t port)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = key_cmp(&h->v[mid].addr, h->v[mid].port, a, port);
		if (!d)
			return &h->v[mid];
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct health_ep *health_find(const struct health *h, const struct ms_addr *a, uint16_t port)
{
	return find(h, a, port);
}

struct health_ep *health_get(struct health *h, const struct ms_addr *a, uint16_t port)
{
	return find(h, a, port);
}

bool health_up(const struct health *h, const struct ms_addr *a, uint16_t port)
{
	const struct health_ep *e = find(h, a, port);

	return !e || e->healthy;
}

/* The config's IP endpoints, sorted and each once, merged with the sorted
 * entries already known: a known one keeps its state, a new one starts
 * healthy, one no longer named goes. O(n log n) in the endpoints. */
size_t health_sync(struct health *h, const struct ms_config *c, uint64_t now_ms)
{
	size_t n = 0, m = 0, changed = 0, old = 0;
	struct health_ep *v;

	for (size_t s = 0; s < c->n_svcs; s++)
		for (size_t p = 0; p < c->svcs[s].n_ports; p++)
			n += c->svcs[s].ports[p].n_eps;
	v = xcalloc(n ? n : 1, sizeof(*v));
	n = 0;
	for (size_t s = 0; s < c->n_svcs; s++)
		for (size_t p = 0; p < c->svcs[s].n_ports; p++)
			for (size_t k = 0; k < c->svcs[s].ports[p].n_eps; k++) {
				const struct ms_endpoint *e = &c->svcs[s].ports[p].eps[k];
				if (e->type == MS_EP_IP)
					v[n++] = (struct health_ep){ .addr = e->ip, .port = e->port, .healthy = true,
								     .why = HEALTH_WHY_NEW, .since_ms = now_ms };
			}
	if (n > 1)
		qsort(v, n, sizeof(*v), ep_cmp);
	for (size_t i = 0; i < n; i++) {
		if (m && !ep_cmp(&v[m - 1], &v[i]))
			continue; /* named again: once is enough */
		while (old < h->n && ep_cmp(&h->v[old], &v[i]) < 0) {
			old++; /* gone from the config */
			changed++;
		}
		if (old < h->n && !ep_cmp(&h->v[old], &v[i]))
			v[m++] = h->v[old++];
		else {
			v[m++] = v[i];
			changed++;
		}
	}
	changed += h->n - old;
	free(h->v);
	h->v = v;
	h->n = m;
	return changed;
}

static bool outcome(struct health *h, struct health_ep *e, bool ok, enum health_why why, uint64_t now_ms)
{
	if (ok) {
		e->n_ok++;
		e->fails = 0;
		if (e->oks < UINT32_MAX)
			e->oks++;
		if (e->healthy || e->oks < h->o.healthy_after)
			return false;
	} else {
		e->n_failed++;
		e->oks = 0;
		if (e->fails < UINT32_MAX)
			e->fails++;
		if (!e->healthy || e->fails < h->o.unhealthy_after)
			return false;
	}
	e->healthy = ok;
	e->why = why;
	e->since_ms = now_ms;
	h->gen++;
	return true;
}

bool health_report(struct health *h, const struct ms_addr *a, uint16_t port, bool ok, enum health_why why,
		   uint64_t now_ms)
{
	struct health_ep *e = find(h, a, port);

	return e && outcome(h, e, ok, why, now_ms);
}

bool health_kernel(struct health *h, const struct ms_addr *a, uint16_t port, uint64_t opened, uint64_t failed,
		   bool baseline, uint64_t now_ms)
{
	struct health_ep *e = find(h, a, port);
	uint64_t d_open, d_fail;
	bool changed = false;

	if (!e)
		return false;
	if (!e->k_seen && baseline) {
		e->k_opened = opened;
		e->k_failed = failed;
		e->k_seen = true;
		return false;
	}
	d_open = opened >= e->k_opened ? opened - e->k_opened : opened;
	d_fail = failed >= e->k_failed ? failed - e->k_failed : failed;
	e->k_opened = opened;
	e->k_failed = failed;
	e->k_seen = true;
	/* past a threshold more outcomes of the same kind change nothing */
	for (uint64_t i = 0; i < d_open && i < h->o.healthy_after; i++)
		changed |= outcome(h, e, true, HEALTH_WHY_CONNECT_OK, now_ms);
	for (uint64_t i = 0; i < d_fail && i < h->o.unhealthy_after; i++)
		changed |= outcome(h, e, false, HEALTH_WHY_CONNECT_FAILED, now_ms);
	return changed;
}

bool health_assume_down(struct health *h, const struct ms_addr *a, uint16_t port, enum health_why why,
			uint64_t now_ms)
{
	struct health_ep *e = find(h, a, port);

	if (!e || !e->healthy)
		return false;
	e->healthy = false;
	e->why = why;
	e->since_ms = now_ms;
	e->fails = e->oks = 0;
	h->gen++;
	return true;
}

size_t health_expire(struct health *h, uint64_t now_ms)
{
	size_t n = 0;

	if (!h->o.eject_ms)
		return 0;
	for (size_t i = 0; i < h->n; i++) {
		struct health_ep *e = &h->v[i];
		/* since_ms may be later than now_ms: a caller's clock read earlier */
		if (e->healthy || (e->why != HEALTH_WHY_CONNECT_FAILED && e->why != HEALTH_WHY_INHERITED) || now_ms < e->since_ms ||
		    now_ms - e->since_ms < h->o.eject_ms)
			continue;
		e->healthy = true;
		e->why = HEALTH_WHY_EJECT_OVER;
		e->since_ms = now_ms;
		e->fails = e->oks = 0;
		h->gen++;
		n++;
	}
	return n;
}
