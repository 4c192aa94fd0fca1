// SPDX-License-Identifier: MIT
/* One redirected connection: accept it, learn where it was going, decide
 * (route_decide: pure), then act (refuse with a reset, park it until its
 * endpoints resolve, or hand it to the forwarder). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-t.h"
#include "log.h"
#include "peek.h"
#include "util.h"

static const char *const refuse_names[REFUSE__MAX] = {
	[REFUSE_PASSTHROUGH] = "passthrough_off",
	[REFUSE_EXTERNAL] = "external_forbidden",
	[REFUSE_UNKNOWN_ORIG] = "unknown_original_destination",
	[REFUSE_NO_SERVICE] = "no_service_at_vip",
	[REFUSE_NO_ENDPOINT] = "no_endpoint",
	[REFUSE_TLS] = "tls_unavailable",
	[REFUSE_LOOP] = "loop",
	[REFUSE_LIMIT] = "connection_limit",
	[REFUSE_MESH_GONE] = "mesh_gone",
	[REFUSE_NO_FD] = "out_of_fds",
	[REFUSE_POD_GONE] = "pod_gone",
	[REFUSE_POD_LIMIT] = "pod_connection_limit",
	[REFUSE_PASS_NO_MATCH] = "passthrough_no_match",
};

const char *route_refuse_name(enum refuse_reason r)
{
	return r < REFUSE__MAX ? refuse_names[r] : "?";
}

const char *agent_refuse_name(enum refuse_reason r)
{
	return route_refuse_name(r);
}

/* ---------- round-robin cursors ---------- */

void route_lb_clear(struct route_lb *lb)
{
	for (size_t i = 0; lb->ts && i < lb->n; i++)
		fwd_targets_unref(lb->ts[i]);
	free(lb->ts);
	free(lb->ts_gen);
	free(lb->ts_ms);
	free(lb->next);
	free(lb->base);
	memset(lb, 0, sizeof(*lb));
}

void route_lb_build(struct route_lb *lb, const struct ms_config *c, const struct route_lb *old,
		    const struct ms_config *old_cfg)
{
	size_t n = 0;

	memset(lb, 0, sizeof(*lb));
	lb->base = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(size_t));
	for (size_t i = 0; i < c->n_svcs; i++) {
		lb->base[i] = n;
		n += c->svcs[i].n_ports;
	}
	lb->next = xcalloc(n ? n : 1, sizeof(size_t));
	lb->ts = xcalloc(n ? n : 1, sizeof(*lb->ts));
	lb->ts_gen = xcalloc(n ? n : 1, sizeof(*lb->ts_gen));
	lb->ts_ms = xcalloc(n ? n : 1, sizeof(*lb->ts_ms));
	lb->n_svcs = c->n_svcs;
	lb->n = n;
	if (!old || !old_cfg || !old->next)
		return;
	/* Keep round-robin cursors where the same service-port survives. */
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i];
		const struct ms_service *o = cfg_find_service(old_cfg, s->kind, s->mesh, s->name);
		if (!o)
			continue;
		size_t oi = (size_t)(o - old_cfg->svcs);
		for (size_t p = 0; p < s->n_ports && p < o->n_ports; p++)
			lb->next[lb->base[i] + p] = old->next[old->base[oi] + p];
	}
}

/* ---------- the decision ---------- */

static bool in_vip_range(const struct route_env *env, const struct ms_addr *x)
{
	for (size_t i = 0; i < env->n_vip_cidrs; i++)
		if (cidr_contains(&env->vip_cidrs[i], x))
			return true;
	return false;
}

static void target_ip(struct fwd_target *t, const struct ms_addr *ip, uint16_t port)
{
	memset(t, 0, sizeof(*t));
	t->len = addr_to_sockaddr(ip, port, false, &t->sa);
	t->in_pod = true;
	t->mark = true;
	addr_port_fmt(ip, port, t->label, sizeof(t->label));
}

/* SNI and the names to verify, per endpoint: serverName when given (SNI
 * unless the legacy "" disabled it); else a DNS endpoint's name; an IP
 * endpoint sends no SNI and is checked against IP SANs. */
static void target_tls(struct fwd_target *t, const struct route_tls *st, const struct ms_tls *tls,
		       const struct ms_endpoint *e, const struct ms_addr *ip)
{
	if (!st)
		return;
	t->tls = tls_ctx_ref(st->ctx);
	if (tls->server_name) {
		t->host = xstrdup(tls->server_name);
		if (!tls->sni_disabled)
			t->sni = xstrdup(tls->server_name);
	} else if (e->type == MS_EP_DNS) {
		t->host = xstrdup(e->host);
		if (!tls->sni_disabled)
			t->sni = xstrdup(e->host);
	} else if (ip) {
		char buf[MS_ADDR_STRLEN];
		t->ip = xstrdup(addr_fmt(ip, buf, sizeof(buf)));
	}
}

static void refused(struct route_out *out, enum refuse_reason r, const char *detail)
{
	out->verdict = ROUTE_REFUSE;
	out->reason = r;
	out->detail = detail;
}

/* An endpoint's rank in the failover order: healthy ones first, each half
 * by priority level, then by position. */
struct rank {
	const struct ms_endpoint *eps;
	const bool *down;
};

static int level_cmp(const void *a, const void *b, void *arg)
{
	const struct rank *rk = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int d = (int)rk->down[x] - (int)rk->down[y];

	if (!d)
		d = (int)rk->eps[x].priority - (int)rk->eps[y].priority;
	return d ? d : (x < y ? -1 : x > y);
}

/* The endpoints in the order they are tried: the best priority level that
 * has a healthy endpoint first (its healthy ones; a connection's cursor
 * rotates them, fwd_targets_at); then the healthy ones of the lower levels, each in
 * its order (Kuma: a level serves only while no better one can); then the
 * unhealthy ones, in the same order. Unhealthy endpoints stay in the list,
 * last: a connect costs little next to a refusal, health is a judgement
 * made between connections (an endpoint may be back before its next probe),
 * and with every endpoint unhealthy the forwarder still finds the one that
 * answers (the kernel path, which cannot retry, refuses at once instead).
 * Returns the size of the first group. */
static size_t failover_order(const struct ms_port *sp, const struct health *h, size_t *order)
{
	size_t n = sp->n_eps, best = 0;
	bool small[64], *down = n <= ARRAY_SIZE(small) ? small : xcalloc(n, sizeof(*down));
	struct rank rk = { sp->eps, down };
	bool sorted = true;

	for (size_t i = 0; i < n; i++) {
		const struct ms_endpoint *e = &sp->eps[i];
		order[i] = i;
		down[i] = h && e->type == MS_EP_IP && !health_up(h, &e->ip, e->port);
		sorted &= i == 0 || level_cmp(&order[i - 1], &order[i], &rk) < 0;
	}
	if (!sorted) /* most services have one level of healthy endpoints, already in order */
		qsort_r(order, n, sizeof(*order), level_cmp, &rk);
	while (best < n && down[order[best]] == down[order[0]] &&
	       sp->eps[order[best]].priority == sp->eps[order[0]].priority)
		best++;
	if (down != small)
		free(down);
	return best;
}

/* One service port's targets, in failover order: its endpoints by priority
 * level, each DNS name as the addresses it resolved to. NULL when none
 * (*waiting: a name is still being looked up). */
static struct fwd_targets *port_targets(const struct route_env *env, const struct ms_service *svc,
					const struct ms_port *sp, const struct route_tls *st, bool *waiting, bool *dns)
{
	size_t n_eps = sp->n_eps, n = 0, cap = 0, best = 0;
	size_t *order = xcalloc(n_eps ? n_eps : 1, sizeof(*order));
	size_t best_eps = failover_order(sp, env->health, order);
	struct fwd_target *v = NULL;

	for (size_t k = 0; k < n_eps; k++) {
		const struct ms_endpoint *e = &sp->eps[order[k]];
		const struct ms_addr *addrs = NULL;
		size_t na = 0;

		if (k == best_eps)
			best = n; /* the best level's targets end here */
		if (e->type == MS_EP_DNS) {
			*dns = true;
			int r = env->resolve(env->ctx, e->host, &addrs, &na);
			if (r == -EAGAIN) {
				*waiting = true;
				continue;
			}
			if (r < 0)
				continue;
		} else if (e->type == MS_EP_IP) {
			addrs = &e->ip;
			na = 1;
		}
		if (n + (na ? na : 1) > cap) {
			cap = (n + (na ? na : 1)) * 2;
			v = xrealloc(v, cap, sizeof(*v));
		}
		if (e->type == MS_EP_UNIX) {
			struct fwd_target *t = &v[n++];
			struct sockaddr_un *sun = (struct sockaddr_un *)&t->sa;
			memset(t, 0, sizeof(*t));
			sun->sun_family = AF_UNIX;
			snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", e->host);
			t->len = sizeof(*sun);
			snprintf(t->label, sizeof(t->label), "unix://%s", e->host);
			target_tls(t, st, &svc->tls, e, NULL);
			continue;
		}
		for (size_t i = 0; i < na; i++) {
			struct fwd_target *t = &v[n++];
			target_ip(t, &addrs[i], e->port);
			if (e->type == MS_EP_DNS) {
				char ip[MS_ADDR_STRLEN + 8];
				snprintf(t->label, sizeof(t->label), "%s(%s)", e->host,
					 addr_port_fmt(&addrs[i], e->port, ip, sizeof(ip)));
			}
			target_tls(t, st, &svc->tls, e, &addrs[i]);
		}
	}
	if (best_eps == n_eps)
		best = n;
	free(order);
	if (n == 0) {
		free(v);
		return NULL;
	}
	struct fwd_targets *ts = fwd_targets_new(n);
	memcpy(ts->t, v, n * sizeof(*v));
	free(v);
	/* none of the best level resolved: the rest in order, as failover does */
	ts->best = best ? best : 1;
	for (size_t i = 0; i < n; i++)
		fwd_target_fix(&ts->t[i]);
	return ts;
}

/* A destination outside the mesh: the mesh's mode, then its IP and CIDR
 * matches, then (once the first bytes are seen) its Domain matches. true
 * when it may go; else out says why (refused, or ROUTE_PEEK). */
static bool passthrough_allowed(const struct ms_mesh *mesh, const struct route_in *in, struct route_out *out)
{
	enum ms_pass_mode mode = cfg_pass_mode(mesh);
	const struct ms_pass_match *m;

	if (mode == MS_PASS_ALL)
		return true;
	if (!cfg_pass_matching(mesh)) {
		refused(out, REFUSE_PASSTHROUGH,
			mesh->pass_mode == MS_PASS_NONE ? "MeshPassthrough mode None" : "the mesh has passthrough off");
		return false;
	}
	if ((m = cfg_pass_ip(mesh, &in->orig, in->port))) {
		out->match = m;
		snprintf(out->label, sizeof(out->label), "passthrough %s (%s)", cfg_match_type_name(m->type), m->origin);
		return true;
	}
	if (cfg_pass_has_domain(mesh, in->port)) {
		if (!in->peeked) {
			out->verdict = ROUTE_PEEK;
			return false;
		}
		if (in->name && (m = cfg_pass_domain(mesh, in->name, in->port, in->seen))) {
			out->match = m;
			snprintf(out->label, sizeof(out->label), "passthrough Domain %s (%s %s)", in->name, m->origin,
				 m->domain);
			return true;
		}
		if (in->name)
			snprintf(out->why, sizeof(out->why), "%s name %s on port %u: no MeshPassthrough match allows it",
				 cfg_match_proto_name(in->seen), in->name, in->port);
		else
			snprintf(out->why, sizeof(out->why),
				 "no name in the first bytes (or none within the wait), and no IP or CIDR match allows it");
		refused(out, REFUSE_PASS_NO_MATCH, out->why);
		return false;
	}
	refused(out, REFUSE_PASS_NO_MATCH, "no MeshPassthrough IP or CIDR match allows it");
	return false;
}

void route_decide(const struct route_env *env, const struct route_in *in, struct route_out *out)
{
	const struct ms_config *cfg = env->cfg;
	const struct ms_mesh *mesh = cfg_find_mesh(cfg, in->mesh);
	const struct ms_port *sp = NULL;
	const struct ms_service *svc;

	memset(out, 0, sizeof(*out));
	out->cursor = SIZE_MAX;
	if (!mesh)
		return refused(out, REFUSE_MESH_GONE, in->mesh);
	if (env->full)
		return refused(out, REFUSE_LIMIT, "too many connections");
	if (env->pod_full)
		return refused(out, REFUSE_POD_LIMIT, "the pod holds its share of the connection limit");
	svc = cfg_find_vip(cfg, in->mesh, &in->orig, in->port, &sp);
	if (!svc) {
		if (in_vip_range(env, &in->orig))
			return refused(out, REFUSE_NO_SERVICE, "no service of this mesh has this VIP:port");
		if (!passthrough_allowed(mesh, in, out))
			return;
		if (addr_is_local(&in->orig))
			return refused(out, REFUSE_LOOP, "a loopback destination is never proxied");
		out->targets = fwd_targets_new(1);
		out->targets->best = 1;
		target_ip(&out->targets->t[0], &in->orig, in->port);
		if (!out->match)
			snprintf(out->label, sizeof(out->label), "passthrough");
		out->verdict = ROUTE_FORWARD;
		return;
	}
	if (svc->kind != MS_KIND_MESH_SERVICE && mesh->forbid_external)
		return refused(out, REFUSE_EXTERNAL, "the mesh forbids external services");
	size_t si = (size_t)(svc - cfg->svcs);
	const struct route_tls *st = NULL;
	if (svc->tls.enabled) {
		st = env->tls && env->tls[si].key ? &env->tls[si] : NULL;
		if (!st || !st->ctx)
			return refused(out, REFUSE_TLS, st && st->err ? st->err : "no TLS context");
	}
	snprintf(out->label, sizeof(out->label), "%s/%s", cfg_kind_name(svc->kind), svc->name);

	/* Round robin within the best level: start after the last endpoint
	 * used; the rest are the failover order. */
	size_t cursor = 0, slot = SIZE_MAX;
	const struct route_lb *lb = env->lb;
	if (lb && si < lb->n_svcs) {
		slot = lb->base[si] + (size_t)(sp - svc->ports);
		out->cursor = slot;
		cursor = lb->next[slot];
	}
	if (slot != SIZE_MAX && lb->ts[slot] && lb->ts_gen[slot] == env->targets_gen &&
	    (lb->ts_ms[slot] == UINT64_MAX || env->now_ms - lb->ts_ms[slot] < ROUTE_DNS_TARGETS_MS)) {
		out->targets = fwd_targets_ref(lb->ts[slot]);
		out->start = cursor;
		out->verdict = ROUTE_FORWARD;
		return;
	}
	bool waiting = false, dns = false;
	struct fwd_targets *ts = port_targets(env, svc, sp, st, &waiting, &dns);
	if (waiting && !ts) {
		if (in->timed_out)
			return refused(out, REFUSE_NO_ENDPOINT, "DNS lookup timed out");
		out->verdict = ROUTE_WAIT;
		return;
	}
	if (!ts)
		return refused(out, REFUSE_NO_ENDPOINT, sp->n_eps ? "no endpoint resolved" : "the service has no endpoints");
	if (slot != SIZE_MAX) {
		fwd_targets_unref(lb->ts[slot]);
		lb->ts[slot] = fwd_targets_ref(ts);
		lb->ts_gen[slot] = env->targets_gen;
		lb->ts_ms[slot] = dns ? env->now_ms : UINT64_MAX;
	}
	out->targets = ts;
	out->start = cursor;
	out->verdict = ROUTE_FORWARD;
}

/* ---------- acting on it ---------- */

static int resolve(void *ctx, const char *host, const struct ms_addr **ret, size_t *ret_n)
{
	struct agent *a = ctx;

	return resolver_lookup(a->res, host, ret, ret_n);
}

static void route_refuse(struct agent *a, int cfd, enum refuse_reason r, const struct pod *p,
			 const struct ms_addr *orig, uint16_t port, const char *detail)
{
	char dst[MS_ADDR_STRLEN + 8] = "?";

	if (orig)
		addr_port_fmt(orig, port, dst, sizeof(dst));
	a->st.refused[r]++;
	fwd_reset_fd(cfd);
	log_info("refused %s → %s: %s (%s)", p ? p->name : "?", dst, refuse_names[r], detail);
}

static void peek_start(struct agent *a, int cfd, struct pod *p, const struct ms_addr *orig, uint16_t port);

/* What the first bytes said, for a second decision. */
struct peeked {
	const char *name;
	enum ms_match_proto seen;
};

/* Decide and start, or park the client until its endpoints resolve, or
 * look at its first bytes first (pk: what they said, once looked at). */
static void route_apply_seen(struct agent *a, int cfd, struct pod *p, const struct ms_addr *orig, uint16_t port,
			     uint64_t deadline_ms, const struct peeked *pk)
{
	struct route_env env = {
		.cfg = a->cfg, .tls = a->tls, .lb = &a->lb,
		.vip_cidrs = (const struct ms_cidr[]){ a->o->cfg.mes_cidr, a->o->cfg.ms_cidr, a->o->cfg.gloo_cidr },
		.n_vip_cidrs = 3, .targets_gen = resolver_gen(a->res) + a->health.gen, .now_ms = now_ms(),
		.full = fwd_full(&a->fwd), .pod_full = pod_full(a, p), .resolve = resolve, .ctx = a,
		.health = &a->health,
	};
	struct route_in in = { .mesh = p->mesh, .nsfd = p->nsfd, .orig = *orig, .port = port,
			       .timed_out = deadline_ms && now_ms() >= deadline_ms,
			       .peeked = pk != NULL, .name = pk ? pk->name : NULL, .seen = pk ? pk->seen : MS_MATCH_TCP };
	struct route_out out;
	char dst[MS_ADDR_STRLEN + 8];

	route_decide(&env, &in, &out);
	switch (out.verdict) {
	case ROUTE_REFUSE:
		route_refuse(a, cfd, out.reason, p, orig, port, out.detail);
		return;
	case ROUTE_WAIT: {
		struct pending *pd = xcalloc(1, sizeof(*pd));
		*pd = (struct pending){ .cfd = cfd, .pod = p, .orig = *orig, .port = port,
					.deadline_ms = deadline_ms ? deadline_ms : now_ms() + a->o->connect_timeout_ms,
					.next = a->pending };
		a->pending = pd;
		return;
	}
	case ROUTE_PEEK:
		peek_start(a, cfd, p, orig, port);
		return;
	case ROUTE_FORWARD:
		if (out.cursor != SIZE_MAX)
			a->lb.next[out.cursor]++;
		addr_port_fmt(orig, port, dst, sizeof(dst));
		if (out.match)
			log_info("pod %s → %s: %s", p->name, dst, out.label);
		p->active++; /* back down when the forwarder says it ended (pod_conn_ended) */
		fwd_start(&a->fwd, &(struct fwd_start){ .cfd = cfd, .ts = out.targets, .start = out.start,
							.netns_fd = p->nsfd, .pod = p->name, .orig = dst,
							.service = out.label, .owner = p });
		return;
	}
}

static void route_apply(struct agent *a, int cfd, struct pod *p, const struct ms_addr *orig, uint16_t port,
			uint64_t deadline_ms)
{
	route_apply_seen(a, cfd, p, orig, port, deadline_ms, NULL);
}

/* ---------- MeshPassthrough Domain rules: the first bytes ---------- */

static void peek_unlink(struct agent *a, struct peeking *pk)
{
	for (struct peeking **pp = &a->peeking; *pp; pp = &(*pp)->next)
		if (*pp == pk) {
			*pp = pk->next;
			break;
		}
	ev_del(a->epfd, pk->cfd);
	pk->ev.dead = true;
	ev_defer_free(pk);
}

/* Look at what the client sent so far; decide when it names a host, says
 * it never will, fills PEEK_MAX, or its wait is over. Nothing is read:
 * the forwarder sends these bytes upstream untouched. */
static void peek_try(struct peeking *pk, uint64_t now)
{
	static uint8_t buf[PEEK_MAX];
	struct agent *a = pk->a;
	struct peek res;
	struct peeked seen = { 0 };
	enum peek_result r = PEEK_MORE;
	ssize_t n = recv(pk->cfd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	bool over = now >= pk->deadline_ms;

	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		int cfd = pk->cfd;
		struct pod *p = pk->pod;
		struct ms_addr orig = pk->orig;
		uint16_t port = pk->port;
		peek_unlink(a, pk);
		route_refuse(a, cfd, REFUSE_PASS_NO_MATCH, p, &orig, port, "the client went away before it named a host");
		return;
	}
	if (n <= 0) {
		/* nothing yet (or EOF with nothing): a server-speaks-first client */
		if (n < 0 && now < pk->silent_ms && !over)
			return;
	} else {
		r = peek_name(buf, (size_t)n, &res);
		if (r == PEEK_MORE && (size_t)n < sizeof(buf) && !over)
			return;
	}
	if (r == PEEK_FOUND || r == PEEK_NO_NAME)
		seen.seen = res.proto == PEEK_TLS ? MS_MATCH_TLS : res.proto == PEEK_HTTP1 ? MS_MATCH_HTTP : MS_MATCH_HTTP2;
	if (r == PEEK_FOUND)
		seen.name = res.name;
	int cfd = pk->cfd;
	struct pod *p = pk->pod;
	struct ms_addr orig = pk->orig;
	uint16_t port = pk->port;
	char name[sizeof(res.name)];
	if (seen.name) {
		snprintf(name, sizeof(name), "%s", seen.name);
		seen.name = name;
	}
	peek_unlink(a, pk);
	route_apply_seen(a, cfd, p, &orig, port, 0, &seen);
}

static void on_peek(struct ev *ev, uint32_t events)
{
	(void)events;
	peek_try(container_of(ev, struct peeking, ev), now_ms());
}

static void peek_start(struct agent *a, int cfd, struct pod *p, const struct ms_addr *orig, uint16_t port)
{
	struct peeking *pk = xcalloc(1, sizeof(*pk));
	uint64_t now = now_ms();

	*pk = (struct peeking){ .a = a, .cfd = cfd, .pod = p, .orig = *orig, .port = port,
				.silent_ms = now + PEEK_SILENT_MS, .deadline_ms = now + a->o->connect_timeout_ms,
				.next = a->peeking };
	ev_init(&pk->ev, on_peek);
	if (ev_add(a->epfd, cfd, &pk->ev, EPOLLIN | EPOLLRDHUP | EPOLLET) < 0) {
		free(pk);
		route_refuse(a, cfd, REFUSE_PASS_NO_MATCH, p, orig, port, "cannot wait for the client's first bytes");
		return;
	}
	a->peeking = pk;
}

void route_peek_tick(struct agent *a)
{
	uint64_t now = now_ms();
	struct peeking *next;

	for (struct peeking *pk = a->peeking; pk; pk = next) {
		next = pk->next;
		if (now >= pk->silent_ms || now >= pk->deadline_ms)
			peek_try(pk, now);
	}
}

void route_pending_retry(struct agent *a, bool only_expired)
{
	struct pending *list = a->pending, *next;
	uint64_t now = now_ms();

	a->pending = NULL;
	for (struct pending *pd = list; pd; pd = next) {
		next = pd->next;
		if (only_expired && now < pd->deadline_ms) {
			pd->next = a->pending;
			a->pending = pd;
			continue;
		}
		route_apply(a, pd->cfd, pd->pod, &pd->orig, pd->port, pd->deadline_ms);
		free(pd);
	}
}

/* Parked clients of a pod that goes away are refused now: never started,
 * whatever resolved meanwhile (the pod's netns is closed). */
void route_pending_drop_pod(struct agent *a, const struct pod *p)
{
	for (struct pending **pp = &a->pending; *pp;) {
		struct pending *pd = *pp;
		if (pd->pod != p) {
			pp = &pd->next;
			continue;
		}
		*pp = pd->next;
		route_refuse(a, pd->cfd, REFUSE_POD_GONE, p, &pd->orig, pd->port, "the pod was removed");
		free(pd);
	}
	struct peeking *next;
	for (struct peeking *pk = a->peeking; pk; pk = next) {
		next = pk->next;
		if (pk->pod != p)
			continue;
		int cfd = pk->cfd;
		struct ms_addr orig = pk->orig;
		uint16_t port = pk->port;
		peek_unlink(a, pk);
		route_refuse(a, cfd, REFUSE_POD_GONE, p, &orig, port, "the pod was removed");
	}
}

void route_pending_clear(struct agent *a)
{
	while (a->pending) {
		struct pending *pd = a->pending;
		a->pending = pd->next;
		fwd_reset_fd(pd->cfd);
		free(pd);
	}
	while (a->peeking) {
		int cfd = a->peeking->cfd;
		peek_unlink(a, a->peeking);
		fwd_reset_fd(cfd);
	}
}

/* The client reset the connection while it sat in the backlog: under eBPF its
 * original destination went with its socket, and there is nobody to refuse. */
static bool client_reset(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && (err == ECONNRESET || err == EPIPE);
}

void route_accept(struct ev *ev, uint32_t events)
{
	struct listener *l = container_of(ev, struct listener, ev);
	struct agent *a = l->a;
	struct pod *p = l->pod;
	struct steer_pod sp = pod_ident(p);

	(void)events;
	/* the listener is level-triggered: what is left waits for the next round */
	for (unsigned taken = 0; !a->o->accept_batch || taken < a->o->accept_batch; taken++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct ms_addr peer, orig;
		uint16_t pport, oport;
		int cfd = accept_shed(l->fd, (struct sockaddr *)&ss, &len);

		if (cfd == -EMFILE) {
			/* out of fds: that client was reset; say so at most once a second */
			a->st.refused[REFUSE_NO_FD]++;
			if (now_ms() - a->fd_log_ms >= 1000) {
				a->fd_log_ms = now_ms();
				log_warn("pod %s: out of file descriptors (RLIMIT_NOFILE): resetting new connections; %llu so far",
					 p->name, (unsigned long long)a->st.refused[REFUSE_NO_FD]);
			}
			continue;
		}
		if (cfd < 0) {
			if (cfd != -EAGAIN)
				log_warn_errno(cfd, "pod %s: accept: %m", p->name);
			return;
		}
		a->st.accepted++;
		if (addr_from_sockaddr((struct sockaddr *)&ss, &peer, &pport) < 0 ||
		    a->steer->ops->orig_dst(a->steer, &sp, cfd, &peer, pport, &orig, &oport) < 0 ||
		    addr_is_local(&orig)) {
			if (client_reset(cfd)) {
				a->st.reset_before_accept++;
				log_debug("pod %s: a client reset its connection before it was accepted", p->name);
				close(cfd);
				continue;
			}
			/* Not a redirected connection (someone dialled the listener
			 * directly): never an open relay. */
			route_refuse(a, cfd, REFUSE_UNKNOWN_ORIG, p, NULL, 0, "no original destination recorded");
			continue;
		}
		route_apply(a, cfd, p, &orig, oport, 0);
	}
}

/* ---------- mesh DNS: what the responder asks the agent ---------- */

bool agent_dns_local(void *ctx, void *pod, const char *name, struct ms_addr *ret_vip)
{
	struct agent *a = ctx;
	const struct pod *p = pod;
	const struct ms_service *s = cfg_find_hostname(a->cfg, p->mesh, name);

	if (!s)
		return false;
	*ret_vip = s->vip;
	return true;
}

/* Passthrough off (or the mesh gone): DNS may not carry bytes anywhere. */
bool agent_dns_strict(void *ctx, void *pod)
{
	struct agent *a = ctx;
	const struct pod *p = pod;
	const struct ms_mesh *m = cfg_find_mesh(a->cfg, p->mesh);

	return !m || cfg_pass_mode(m) != MS_PASS_ALL;
}

bool agent_dns_allowed(void *ctx, void *pod, const struct ms_addr *resolver, uint16_t port)
{
	struct agent *a = ctx;
	const struct pod *p = pod;

	if (port != 53)
		return false;
	for (size_t i = 0; i < p->n_dns_servers; i++)
		if (addr_eq(&p->dns_servers[i], resolver))
			return true;
	for (size_t i = 0; i < a->n_dns_upstream; i++)
		if (addr_eq(&a->dns_upstream[i], resolver))
			return true;
	return false;
}

int agent_dns_origin(void *ctx, void *pod, bool tcp, int fd, const struct ms_addr *client, uint16_t cport,
		     const struct ms_addr *self, struct ms_addr *ret, uint16_t *ret_port)
{
	struct agent *a = ctx;
	struct pod *p = pod;
	struct steer_pod sp = pod_ident(p);

	if (tcp)
		return a->steer->ops->orig_dst(a->steer, &sp, fd, client, cport, ret, ret_port);
	return a->steer->ops->dns_origin(a->steer, &sp, client, cport, self, a->o->dns_port, ret, ret_port);
}
