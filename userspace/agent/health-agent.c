// SPDX-License-Identifier: MIT
/* The I/O half of endpoint health (health.c is the pure machine): feed it
 * the forwarder's connect outcomes, the kernel path's per-endpoint totals
 * and TCP connect probes made from a pod's netns; when an endpoint changes
 * state, the engine rewrites the kernel's endpoint sets (svcs_sync, with
 * its new-set-then-swap discipline) and route_decide orders the proxy
 * path's failover by it. Runs on the agent's timer (TICK_MS). */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-t.h"
#include "log.h"
#include "netns.h"
#include "util.h"

struct probe {
	struct ev ev;
	struct agent *a;
	int fd;
	struct ms_addr addr;
	uint16_t port;
	uint64_t deadline_ms;
	struct probe *prev, *next;
};

static bool health_up_cb(void *ctx, const struct ms_addr *addr, uint16_t port)
{
	const struct agent *a = ctx;

	return health_up(&a->health, addr, port);
}

static void said(const struct agent *a, const struct ms_addr *addr, uint16_t port)
{
	const struct health_ep *e = health_find(&a->health, addr, port);
	char ep[MS_ADDR_STRLEN + 8];

	if (!e)
		return;
	addr_port_fmt(addr, port, ep, sizeof(ep));
	log_info("endpoint %s: %s (%s)", ep, e->healthy ? "healthy" : "unhealthy", health_why_name(e->why));
}

static void report(struct agent *a, const struct ms_addr *addr, uint16_t port, bool ok, enum health_why why)
{
	if (health_report(&a->health, addr, port, ok, why, now_ms()))
		said(a, addr, port);
}

void health_agent_connected(void *ctx, const struct sockaddr *sa, int err)
{
	struct agent *a = ctx;
	struct ms_addr addr;
	uint16_t port;

	if (sa->sa_family == AF_UNIX || addr_from_sockaddr(sa, &addr, &port) < 0)
		return;
	report(a, &addr, port, err == 0, err == 0 ? HEALTH_WHY_CONNECT_OK : HEALTH_WHY_CONNECT_FAILED);
}

/* The kernel's per-endpoint totals; baseline: see health_kernel. */
static void kernel_read(struct agent *a, bool baseline)
{
	struct steer_ep_stat *v = NULL;
	size_t n;

	if (!a->steer->ops->kernel_eps)
		return;
	n = a->steer->ops->kernel_eps(a->steer, &v);
	for (size_t i = 0; i < n; i++)
		if (health_kernel(&a->health, &v[i].addr, v[i].port, v[i].k.opened, v[i].k.failed, baseline, now_ms()))
			said(a, &v[i].addr, v[i].port);
	free(v);
}

void health_agent_init(struct agent *a)
{
	struct health_opts ho = { .unhealthy_after = a->o->health_unhealthy, .healthy_after = a->o->health_healthy,
				  .eject_ms = a->o->health_interval_ms ? 0 : a->o->health_eject_ms };

	health_init(&a->health, &ho);
	if (a->steer->ops->health_set)
		a->steer->ops->health_set(a->steer, health_up_cb, a);
	if (a->o->health_interval_ms)
		log_info("health: TCP probes every %u ms (timeout %u ms), unhealthy after %u failures, healthy after %u successes",
			 a->o->health_interval_ms, a->o->health_timeout_ms, ho.unhealthy_after, ho.healthy_after);
	else
		log_info("health: no probes; an endpoint out after %u failed connects comes back after %u ms",
			 ho.unhealthy_after, a->o->health_eject_ms);
}

static void adopt_down(void *ctx, const struct ms_addr *addr, uint16_t port)
{
	struct agent *a = ctx;

	if (health_assume_down(&a->health, addr, port, HEALTH_WHY_INHERITED, now_ms()))
		said(a, addr, port);
}

void health_agent_config(struct agent *a)
{
	bool first = !a->health_adopted;

	health_sync(&a->health, a->cfg, now_ms());
	/* an agent back after another: health as the kernel's sets froze it */
	if (first && a->steer->ops->health_adopt)
		a->steer->ops->health_adopt(a->steer, a->cfg, adopt_down, a);
	a->health_adopted = true;
	kernel_read(a, true);
	a->health_synced = a->health.gen;
}

static void probe_free(struct probe *p)
{
	struct agent *a = p->a;
	struct health_ep *e = health_get(&a->health, &p->addr, p->port);

	if (e)
		e->probing = false;
	ev_del(a->epfd, p->fd);
	close(p->fd);
	DLIST_REMOVE(a->probes, p);
	free(p);
}

static void probe_event(struct ev *ev, uint32_t events)
{
	struct probe *p = container_of(ev, struct probe, ev);
	int err = 0;
	socklen_t len = sizeof(err);

	if ((events & (EPOLLERR | EPOLLHUP)) && getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if ((events & (EPOLLERR | EPOLLHUP)) && !err)
		err = ECONNREFUSED;
	p->a->st.probes++;
	if (err)
		p->a->st.probes_failed++;
	report(p->a, &p->addr, p->port, !err,
	       !err ? HEALTH_WHY_PROBE_OK : err == ECONNREFUSED ? HEALTH_WHY_PROBE_REFUSED : HEALTH_WHY_PROBE_ERROR);
	probe_free(p);
}

static void probe_start(struct agent *a, int nsfd, const struct ms_addr *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(addr, port, false, &ss);
	int fd = netns_socket_pooled(nsfd, ss.ss_family);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	/* the agent's mark: never steered, never counted as a pod's connect;
	 * closed with a reset: a probe leaves no TIME_WAIT behind */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &a->o->mark, sizeof(a->o->mark)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
		close(fd);
		return;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		int err = errno;
		close(fd);
		a->st.probes++;
		a->st.probes_failed++;
		report(a, addr, port, false, err == ECONNREFUSED ? HEALTH_WHY_PROBE_REFUSED : HEALTH_WHY_PROBE_ERROR);
		return;
	}
	struct probe *p = xcalloc(1, sizeof(*p));
	*p = (struct probe){ .a = a, .fd = fd, .addr = *addr, .port = port,
			     .deadline_ms = now_ms() + a->o->health_timeout_ms };
	ev_init(&p->ev, probe_event);
	if (ev_add(a->epfd, fd, &p->ev, EPOLLOUT | EPOLLERR | EPOLLHUP) < 0) {
		close(fd);
		free(p);
		return;
	}
	DLIST_PUSH(a->probes, p);
	struct health_ep *e = health_get(&a->health, addr, port);
	if (e)
		e->probing = true;
}

/* One round: each IP endpoint of a service that some enabled pod can reach
 * (a pod of its mesh), probed once from the first such pod's netns, unless
 * a probe of it is still in flight. */
static void probe_round(struct agent *a)
{
	const struct ms_config *c = a->cfg;
	const struct pod **from = xcalloc(c->n_meshes ? c->n_meshes : 1, sizeof(*from));

	for (const struct pod *p = a->pods; p; p = p->next) {
		const struct ms_mesh *m = p->enabled && p->nsfd >= 0 ? cfg_find_mesh(c, p->mesh) : NULL;
		if (m && !from[m - c->meshes])
			from[m - c->meshes] = p;
	}
	for (size_t s = 0; s < c->n_svcs; s++) {
		const struct ms_service *sv = &c->svcs[s];
		const struct ms_mesh *m = cfg_find_mesh(c, sv->mesh);
		const struct pod *p = m ? from[m - c->meshes] : NULL;
		for (size_t i = 0; p && i < sv->n_ports; i++)
			for (size_t k = 0; k < sv->ports[i].n_eps; k++) {
				const struct ms_endpoint *e = &sv->ports[i].eps[k];
				const struct health_ep *h = e->type == MS_EP_IP ? health_find(&a->health, &e->ip, e->port) : NULL;
				if (h && !h->probing)
					probe_start(a, p->nsfd, &e->ip, e->port);
			}
	}
	free(from);
}

void health_agent_tick(struct agent *a)
{
	uint64_t now = now_ms();

	for (struct probe *p = a->probes, *next; p; p = next) {
		next = p->next;
		if (now < p->deadline_ms)
			continue;
		a->st.probes++;
		a->st.probes_failed++;
		report(a, &p->addr, p->port, false, HEALTH_WHY_PROBE_TIMEOUT);
		probe_free(p);
	}
	kernel_read(a, false);
	if (health_expire(&a->health, now))
		log_info("health: endpoints passively failed %u ms ago are back in their sets", a->o->health_eject_ms);
	if (a->o->health_interval_ms && !a->draining && now >= a->probe_at) {
		a->probe_at = now + a->o->health_interval_ms;
		probe_round(a);
	}
	if (a->health.gen != a->health_synced) {
		/* new sets for the services whose healthy endpoints changed */
		a->health_synced = a->health.gen;
		a->steer->ops->svcs_sync(a->steer, a->cfg);
	}
}

void health_agent_fini(struct agent *a)
{
	while (a->probes)
		probe_free(a->probes);
	health_fini(&a->health);
}

static int kstat_cmp(const void *x, const void *y)
{
	const struct steer_ep_stat *a = x, *b = y;
	int d = memcmp(a->addr.b, b->addr.b, sizeof(a->addr.b));

	return d ? d : (int)a->port - (int)b->port;
}

/* v sorted by kstat_cmp */
static const struct steer_ep_stat *kernel_of(const struct steer_ep_stat *v, size_t n, const struct ms_addr *a,
					     uint16_t port)
{
	struct steer_ep_stat key = { .addr = *a, .port = port };

	return n ? bsearch(&key, v, n, sizeof(*v), kstat_cmp) : NULL;
}

json_object *health_agent_json(struct agent *a)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();
	const struct ms_config *c = a->cfg;
	struct steer_ep_stat *kv = NULL;
	size_t nk = a->steer->ops->kernel_eps ? a->steer->ops->kernel_eps(a->steer, &kv) : 0;
	uint64_t now = now_ms();

	if (nk > 1)
		qsort(kv, nk, sizeof(*kv), kstat_cmp);

	for (size_t s = 0; s < c->n_svcs; s++) {
		const struct ms_service *sv = &c->svcs[s];
		char svc[200], vip[MS_ADDR_STRLEN + 8], ep[MS_ADDR_STRLEN + 300];
		snprintf(svc, sizeof(svc), "%s/%s/%s", cfg_kind_name(sv->kind), sv->mesh, sv->name);
		for (size_t p = 0; p < sv->n_ports; p++) {
			bool kernel = steer_port_path(c, sv, p, a->o->datapath_proxy, NULL) == MS_PATH_KERNEL &&
				      a->steer->ops->kernel_eps;
			addr_port_fmt(&sv->vip, sv->ports[p].port, vip, sizeof(vip));
			for (size_t k = 0; k < sv->ports[p].n_eps; k++) {
				const struct ms_endpoint *e = &sv->ports[p].eps[k];
				const struct health_ep *h = e->type == MS_EP_IP ? health_find(&a->health, &e->ip, e->port) : NULL;
				const struct steer_ep_stat *ks = e->type == MS_EP_IP ? kernel_of(kv, nk, &e->ip, e->port) : NULL;
				json_object *x = json_object_new_object();
				if (e->type == MS_EP_IP)
					addr_port_fmt(&e->ip, e->port, ep, sizeof(ep));
				else if (e->type == MS_EP_DNS)
					snprintf(ep, sizeof(ep), "%s:%u", e->host, e->port);
				else
					snprintf(ep, sizeof(ep), "unix://%s", e->host);
				json_object_object_add(x, "service", json_object_new_string(svc));
				json_object_object_add(x, "vip", json_object_new_string(vip));
				json_object_object_add(x, "address", json_object_new_string(ep));
				json_object_object_add(x, "level", json_object_new_int(e->priority));
				json_object_object_add(x, "path", json_object_new_string(kernel ? "kernel" : "proxy"));
				json_object_object_add(x, "health",
						       json_object_new_string(!h ? "untracked" : h->healthy ? "healthy" : "unhealthy"));
				json_object_object_add(x, "why", json_object_new_string(h ? health_why_name(h->why) : "-"));
				json_object_object_add(x, "since_ms", json_object_new_int64(h ? (int64_t)(now - h->since_ms) : 0));
				json_object_object_add(x, "failed", json_object_new_int64(h ? (int64_t)h->n_failed : 0));
				json_object_object_add(x, "succeeded", json_object_new_int64(h ? (int64_t)h->n_ok : 0));
				json_object_object_add(x, "kernel_opened", json_object_new_int64(ks ? (int64_t)ks->k.opened : 0));
				json_object_object_add(x, "kernel_failed", json_object_new_int64(ks ? (int64_t)ks->k.failed : 0));
				json_object_object_add(x, "kernel_closed", json_object_new_int64(ks ? (int64_t)ks->k.closed : 0));
				json_object_object_add(x, "kernel_bytes_acked", json_object_new_int64(ks ? (int64_t)ks->k.bytes_acked : 0));
				json_object_object_add(x, "kernel_bytes_received",
						       json_object_new_int64(ks ? (int64_t)ks->k.bytes_received : 0));
				json_object_array_add(arr, x);
			}
		}
	}
	free(kv);
	json_object_object_add(o, "endpoints", arr);
	return o;
}
