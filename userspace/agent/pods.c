// SPDX-License-Identifier: MIT
/* The pod registry: which pods are enabled, their listeners (opened in the
 * pod's netns, or handed over by the previous agent), their DNS responder,
 * what the steering engine is told of them, and the state file that lets a
 * restarted agent take them back. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-t.h"
#include "log.h"
#include "netns.h"
#include "tproxy.h"
#include "util.h"

char *state_path(const struct agent *a, const char *name)
{
	return xasprintf("%s/%s", a->o->state_dir, name);
}

json_object *pod_json(const struct agent *a, const struct pod *p, bool for_state)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	json_object *cidrs = json_object_new_array();
	char buf[64];

	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "netns", json_object_new_string(p->netns));
	json_object_object_add(o, "mesh", json_object_new_string(p->mesh));
	if (p->container)
		json_object_object_add(o, "container", json_object_new_string(p->container));
	json_object_object_add(o, "enabled", json_object_new_boolean(p->enabled));
	json_object_object_add(o, "since_unix", json_object_new_int64(p->since));
	for (size_t i = 0; i < p->n_excl_ports; i++)
		json_object_array_add(ports, json_object_new_int(p->excl_ports[i]));
	for (size_t i = 0; i < p->n_excl_cidrs; i++)
		json_object_array_add(cidrs, json_object_new_string(cidr_fmt(&p->excl_cidrs[i], buf, sizeof(buf))));
	json_object_object_add(o, "exclude_ports", ports);
	json_object_object_add(o, "exclude_cidrs", cidrs);
	json_object_object_add(o, "dns", json_object_new_boolean(!p->no_dns));
	json_object *ds = json_object_new_array();
	for (size_t i = 0; i < p->n_dns_servers; i++)
		json_object_array_add(ds, json_object_new_string(addr_fmt(&p->dns_servers[i], buf, sizeof(buf))));
	json_object_object_add(o, CTL_F_DNS_SERVERS, ds);
	if (!for_state) {
		json_object_object_add(o, "dns_responder", json_object_new_boolean(dnsp_pod_is_open(&p->dns)));
		struct tm tm;
		char ts[32];
		gmtime_r(&p->since, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_object_add(o, "state", json_object_new_string(!p->enabled ? "disabled" :
									    p->listen_err || p->dns_err ? "enforced-degraded" : "enabled"));
		if (p->listen_err)
			json_object_object_add(o, "listener_error", json_object_new_string(strerror(-p->listen_err)));
		if (p->dns_err)
			json_object_object_add(o, "dns_responder_error", json_object_new_string(strerror(-p->dns_err)));
		json_object_object_add(o, "engine", json_object_new_string(a->steer->ops->name));
		json_object_object_add(o, "since", json_object_new_string(ts));
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)p->cookie);
		json_object_object_add(o, "netns_cookie", json_object_new_string(buf));
	}
	return o;
}

void pods_save(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "pods.json");
	json_object *arr = json_object_new_array();
	const char *s;
	int r;

	for (struct pod *p = a->pods; p; p = p->next)
		json_object_array_add(arr, pod_json(a, p, true));
	s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY);
	if ((r = write_file_atomic(path, s, strlen(s), 0600)) < 0)
		log_warn_errno(r, "save pod registry to %s: %m", path);
	json_object_put(arr);
}

struct pod *pod_find_name(struct agent *a, const char *name)
{
	for (struct pod *p = a->pods; p; p = p->next)
		if (streq(p->name, name))
			return p;
	return NULL;
}

/* ---------- listeners ---------- */

static void listener_close(struct agent *a, struct listener *l)
{
	if (l->fd < 0)
		return;
	ev_del(a->epfd, l->fd);
	close(l->fd);
	l->fd = -1;
}

/* Listen on fd (a pod's listener, opened or handed over). */
static int listener_adopt(struct agent *a, struct pod *p, struct listener *l, int fd)
{
	if (fd < 0)
		return 0;
	ev_init(&l->ev, route_accept);
	l->a = a;
	l->pod = p;
	l->fd = fd;
	int r = ev_add(a->epfd, fd, &l->ev, EPOLLIN);
	if (r < 0) {
		close(fd);
		l->fd = -1;
	}
	return r;
}

static int listener_open(struct agent *a, struct pod *p, struct listener *l, int family)
{
	int fd = netns_loopback_socket(p->nsfd, family, SOCK_STREAM, a->o->listen_port, 4096);

	if (fd < 0)
		return fd;
	fwd_sockopts(&a->fwd.o, fd); /* inherited by accepted sockets */
	return listener_adopt(a, p, l, fd);
}

/* ---------- what the engine is told ---------- */

struct steer_pod pod_ident(const struct pod *p)
{
	return (struct steer_pod){ .name = p->name, .nsfd = p->nsfd, .cookie = p->cookie };
}

struct steer_pod pod_steer(struct agent *a, const struct pod *p)
{
	const struct ms_mesh *m = cfg_find_mesh(a->cfg, p->mesh);
	struct steer_pod sp = { .name = p->name, .nsfd = p->nsfd, .cookie = p->cookie,
				.excl_cidrs = p->excl_cidrs, .n_excl_cidrs = p->n_excl_cidrs };
	struct ms_pod *v = &sp.v;

	v->listen_port = a->o->listen_port;
	if (m) {
		v->mesh_id = m->id;
		v->flags = (cfg_pass_mode(m) == MS_PASS_ALL ? MS_POD_PASSTHROUGH : 0) |
			   (cfg_pass_matching(m) ? MS_POD_PASS_MATCH : 0) | (m->forbid_external ? MS_POD_FORBID_EXT : 0) |
			   (m->fail_open ? MS_POD_FAIL_OPEN : 0);
		if (steer_mesh_proxied(a->cfg, p->mesh, a->o->datapath_proxy))
			v->flags |= MS_POD_PROXY;
	}
	if (dnsp_pod_is_open(&p->dns)) {
		v->flags |= MS_POD_DNS;
		v->dns_port = a->o->dns_port;
	} else if (p->dns_err) {
		/* wanted, not open: port 53 stays the mesh's (fail_open_dns) */
		v->flags |= MS_POD_DNS | MS_POD_NO_DNS;
		v->dns_port = a->o->dns_port;
	}
	if (p->listen_err)
		v->flags |= MS_POD_NO_LISTENER;
	v->n_excl_ports = (uint16_t)p->n_excl_ports;
	memcpy(v->excl_ports, p->excl_ports, sizeof(v->excl_ports));
	return sp;
}

static int pod_put(struct agent *a, struct pod *p, enum steer_why why, const char **ret_why)
{
	struct steer_pod sp = pod_steer(a, p);
	const char *what = "the steering engine refused the pod";
	int r = a->steer->ops->pod_put(a->steer, &sp, why, &what);

	if (r < 0 && ret_why)
		*ret_why = what;
	else if (r < 0)
		log_warn_errno(r, "pod %s: %s: %m", p->name, what);
	return r;
}

void pod_close_sockets(struct agent *a, struct pod *p)
{
	listener_close(a, &p->l4);
	listener_close(a, &p->l6);
	if (a->dns)
		dnsp_pod_close(a->dns, &p->dns);
}

/* Open or close the pod's DNS responder as the node and the pod want it.
 * Without it the pod keeps its own DNS (nothing is captured). */
static void pod_dns_sync(struct agent *a, struct pod *p)
{
	bool want = a->dns && !p->no_dns;
	const struct ms_mesh *m = cfg_find_mesh(a->cfg, p->mesh);
	int r;

	if (!want)
		p->dns_err = 0;
	if (want == dnsp_pod_is_open(&p->dns))
		return;
	if (!want) {
		dnsp_pod_close(a->dns, &p->dns);
		return;
	}
	if ((r = dnsp_pod_open(a->dns, &p->dns, p->nsfd, p, p->name)) < 0) {
		if (p->dns_err != r)
			log_error_errno(r, "pod %s: no DNS responder on 127.0.0.1:%u: %m; port 53 %s until it opens (retried every second)",
					p->name, a->o->dns_port,
					m && cfg_pass_mode(m) == MS_PASS_ALL ? "goes direct" : "is refused");
		p->dns_err = r;
		return;
	}
	if (p->dns_err)
		log_info("pod %s: DNS responder open on 127.0.0.1:%u", p->name, a->o->dns_port);
	p->dns_err = 0;
}

/* Take the sockets a previous agent handed over for p, if any: the same
 * listeners, so connections queued in them are not lost. */
static bool pod_adopt(struct agent *a, struct pod *p)
{
	struct inherited *in = NULL;

	for (size_t i = 0; i < a->n_inh && !in; i++)
		if (a->inh[i].name && streq(a->inh[i].name, p->name))
			in = &a->inh[i];
	if (!in || in->fds[0] < 0)
		return false;
	listener_adopt(a, p, &p->l4, in->fds[0]);
	listener_adopt(a, p, &p->l6, in->fds[1]);
	in->fds[0] = in->fds[1] = -1;
	if (a->dns && !p->no_dns && in->fds[2] >= 0) {
		if (dnsp_pod_adopt(a->dns, &p->dns, p->nsfd, p, p->name, &in->fds[2]) < 0)
			dnsp_pod_close(a->dns, &p->dns);
		for (int k = 2; k < POD_FDS; k++)
			in->fds[k] = -1;
	}
	log_debug("pod %s: listening on the sockets handed over", p->name);
	return p->l4.fd >= 0;
}

/* Listeners first, then the engine: the first redirected connect finds
 * someone listening. Returns 0 or -errno with *why set. */
int pod_activate(struct agent *a, struct pod *p, bool keep, const char **why)
{
	int r;

	if (p->nsfd < 0) {
		p->nsfd = netns_open(p->netns);
		if (p->nsfd < 0) {
			*why = "cannot open the netns";
			return p->nsfd;
		}
	}
	if ((r = netns_cookie(p->nsfd, &p->cookie)) < 0) {
		*why = "cannot read the netns cookie";
		return r;
	}
	if (pod_adopt(a, p))
		goto listening;
	r = listener_open(a, p, &p->l4, AF_INET);
	if (r == -EADDRNOTAVAIL && tp_lo_up(p->nsfd) == 0) {
		/* The runtime may bring lo up after the CNI chain; we need it now. */
		log_info("pod %s: brought lo up to listen on 127.0.0.1:%u", p->name, a->o->listen_port);
		r = listener_open(a, p, &p->l4, AF_INET);
	}
	if (r < 0 && !keep) {
		*why = "cannot listen on 127.0.0.1 in the pod";
		return r;
	}
	if (r < 0) {
		/* Enforced before (a restart): disabling it would let the pod go
		 * direct. It stays enforced; its proxied connections are refused. */
		log_error_errno(r, "pod %s: cannot listen on 127.0.0.1:%u: %m; the pod stays enforced and its proxied connections are refused until the listener opens (retried every second)",
				p->name, a->o->listen_port);
		p->listen_err = r;
		goto listening;
	}
	p->listen_err = 0;
	if ((r = listener_open(a, p, &p->l6, AF_INET6)) < 0)
		log_info_errno(r, "pod %s: no IPv6 listener on [::1]:%u: %m; IPv6 connections will not be proxied",
			       p->name, a->o->listen_port);
listening:
	pod_dns_sync(a, p);
	if ((r = pod_put(a, p, STEER_ENABLE, why)) < 0) {
		pod_close_sockets(a, p);
		return r;
	}
	if (!p->enabled)
		a->n_enabled++;
	p->enabled = true;
	return 0;
}

void pods_retry(struct agent *a)
{
	for (struct pod *p = a->pods; p; p = p->next) {
		if (!p->enabled || (!p->listen_err && !p->dns_err))
			continue;
		bool changed = false;
		if (p->listen_err) {
			int r = listener_open(a, p, &p->l4, AF_INET);
			if (r == 0) {
				log_info("pod %s: listening on 127.0.0.1:%u now; its connections are proxied again", p->name,
					 a->o->listen_port);
				if (p->l6.fd < 0)
					listener_open(a, p, &p->l6, AF_INET6);
				p->listen_err = 0;
				changed = true;
			} else {
				p->listen_err = r;
			}
		}
		if (p->dns_err) {
			pod_dns_sync(a, p);
			changed |= p->dns_err == 0;
		}
		if (changed)
			pod_put(a, p, STEER_UPDATE, NULL);
	}
}

void pod_deactivate(struct agent *a, struct pod *p)
{
	struct steer_pod sp = pod_steer(a, p);

	/* The engine first: new connects go direct before the listeners close.
	 * Established proxied connections live in the forwarder and go on. */
	a->steer->ops->pod_del(a->steer, &sp);
	pod_close_sockets(a, p);
	fwd_forget_netns(&a->fwd, p->nsfd);
	netns_close(p->nsfd); /* and the sockets made ahead in it */
	p->nsfd = -1;
	if (p->enabled)
		a->n_enabled--;
	p->enabled = false;
	p->listen_err = p->dns_err = 0;
}

void pod_free(struct agent *a, struct pod *p)
{
	fwd_forget_owner(&a->fwd, p); /* its connections go on without it */
	free(p->container);
	free(p->name);
	free(p->netns);
	free(p->mesh);
	/* its listeners' events may still wait in this batch */
	p->l4.ev.dead = p->l6.ev.dead = true;
	p->dns.u4.ev.dead = p->dns.u6.ev.dead = p->dns.t4.ev.dead = p->dns.t6.ev.dead = true;
	ev_defer_free(p);
}

struct pod *pod_new(const char *name, const char *netns, const char *mesh)
{
	struct pod *p = xcalloc(1, sizeof(*p));

	p->name = xstrdup(name);
	p->netns = xstrdup(netns);
	p->mesh = xstrdup(mesh);
	p->nsfd = -1;
	p->l4.fd = p->l6.fd = -1;
	dnsp_pod_init(&p->dns);
	return p;
}

static void set_str(char **dst, const char *v)
{
	if (v && !streq(*dst, v)) {
		free(*dst);
		*dst = xstrdup(v);
	}
}

/* ---------- enable, disable, forget ---------- */

/* The pod rq names: by netns (created when new), else by name (known). */
static char *pod_lookup(struct agent *a, const struct ctl_req *rq, struct pod **ret)
{
	const char *name = rq->name, *netns = rq->netns;
	struct pod *p = NULL;
	int r;

	if (!netns) {
		if (!name)
			return xstrdup("enable needs a pod name or --netns");
		if (!(p = pod_find_name(a, name)))
			return xasprintf("unknown pod %s: enable it once with --netns PATH", log_escape(name));
		*ret = p;
		return NULL;
	}
	_cleanup_close_ int fd = netns_open(netns);
	uint64_t cookie;
	if (fd < 0)
		return xasprintf("netns %s: %s", log_escape(netns),
				 fd == -ENOTSUP ? "not a network namespace (no nsfs mount visible to the agent)" : strerror(-fd));
	if ((r = netns_cookie(fd, &cookie)) < 0)
		return xasprintf("netns %s: cannot read its cookie: %s", log_escape(netns), strerror(-r));
	for (struct pod *q = a->pods; q; q = q->next)
		if ((q->enabled && q->cookie == cookie) || streq(q->netns, netns) || (name && streq(q->name, name)))
			p = q;
	if (!p) {
		char auto_name[64];
		snprintf(auto_name, sizeof(auto_name), "netns/%llx", (unsigned long long)cookie);
		p = pod_new(name ? name : auto_name, netns, rq->mesh ? rq->mesh : "default");
		p->next = a->pods;
		a->pods = p;
	} else if (!streq(p->netns, netns)) {
		/* Same name, new netns (a restarted sandbox): start afresh. */
		if (p->enabled)
			pod_deactivate(a, p);
		set_str(&p->netns, netns);
	}
	*ret = p;
	return NULL;
}

char *pod_enable(struct agent *a, const struct ctl_req *rq, struct pod **ret)
{
	const char *why = "";
	struct pod *p = NULL;
	char *err;
	int r;

	if (rq->mesh && !cfg_find_mesh(a->cfg, rq->mesh))
		return xasprintf("mesh \"%s\" does not exist in the agent's config", log_escape(rq->mesh));
	if ((err = pod_lookup(a, rq, &p)))
		return err;
	set_str(&p->mesh, rq->mesh);
	set_str(&p->container, rq->container);
	/* A new netns starts from what the request says; otherwise each list
	 * given replaces the pod's (an empty one clears it). */
	if (rq->netns || rq->has_excl_ports) {
		memcpy(p->excl_ports, rq->excl_ports, sizeof(p->excl_ports));
		p->n_excl_ports = rq->n_excl_ports;
	}
	if (rq->netns || rq->has_excl_cidrs) {
		memcpy(p->excl_cidrs, rq->excl_cidrs, sizeof(p->excl_cidrs));
		p->n_excl_cidrs = rq->n_excl_cidrs;
	}
	if (rq->dns >= 0)
		p->no_dns = !rq->dns;
	if (rq->netns || rq->has_dns_servers) {
		memcpy(p->dns_servers, rq->dns_servers, sizeof(p->dns_servers));
		p->n_dns_servers = rq->n_dns_servers;
	}
	if (p->enabled) {
		/* Refresh DNS capture, flags and exclusions in place; listeners stay. */
		pod_dns_sync(a, p);
		pod_put(a, p, STEER_UPDATE, NULL);
	} else if ((r = pod_activate(a, p, false, &why)) < 0) {
		log_error_errno(r, "enable pod %s (netns %s): %s: %m", p->name, p->netns, why);
		err = xasprintf("enable %s: %s: %s", p->name, why, strerror(-r));
		pod_deactivate(a, p);
		pods_save(a);
		return err;
	} else {
		p->since = time(NULL);
		log_info("pod %s enabled: netns %s (cookie 0x%llx), mesh %s, listening on port %u", p->name,
			 p->netns, (unsigned long long)p->cookie, p->mesh, a->o->listen_port);
	}
	pods_save(a);
	if (ret)
		*ret = p;
	return NULL;
}

char *pod_disable(struct agent *a, const struct ctl_req *rq)
{
	const char *name = rq->name, *netns = rq->netns;
	struct pod *p = NULL;

	for (struct pod *q = a->pods; q; q = q->next)
		if ((name && streq(q->name, name)) || (netns && streq(q->netns, netns)))
			p = q;
	if (!p)
		return xasprintf("unknown pod %s", log_escape(name ? name : netns ? netns : "?"));
	if (p->enabled) {
		pod_deactivate(a, p);
		p->since = time(NULL);
		log_info("pod %s disabled: new connections go direct; established ones continue", p->name);
	}
	pods_save(a);
	return NULL;
}

/* Forgetting an unknown pod is not an error (CNI DEL). */
void pod_forget(struct agent *a, const struct ctl_req *rq)
{
	const char *name = rq->name, *netns = rq->netns, *container = rq->container;

	for (struct pod **pp = &a->pods; *pp; pp = &(*pp)->next) {
		struct pod *p = *pp;
		if ((container && streq(p->container, container)) || (!container && name && streq(p->name, name)) ||
		    (!container && netns && streq(p->netns, netns))) {
			if (p->enabled)
				pod_deactivate(a, p);
			*pp = p->next;
			log_info("pod %s removed", p->name);
			route_pending_drop_pod(a, p);
			pod_free(a, p);
			pods_save(a);
			return;
		}
	}
}

/* After a reload: the mesh flags the engine holds for each pod. */
void pods_refresh(struct agent *a)
{
	for (struct pod *p = a->pods; p; p = p->next) {
		if (!p->enabled)
			continue;
		if (!cfg_find_mesh(a->cfg, p->mesh))
			log_warn("pod %s: mesh %s no longer exists; its connections are refused", p->name, p->mesh);
		pod_put(a, p, STEER_RELOAD, NULL);
	}
}

/* At exit: the engine keeps the pods (they stay enabled across a restart). */
void pods_close_all(struct agent *a)
{
	for (struct pod *p = a->pods, *next; p; p = next) {
		next = p->next;
		pod_close_sockets(a, p);
		fwd_forget_netns(&a->fwd, p->nsfd);
		netns_close(p->nsfd);
		pod_free(a, p);
	}
	a->pods = NULL;
}

/* Sockets handed over for pods we did not re-enable. */
void inherited_clear(struct agent *a)
{
	for (size_t i = 0; i < a->n_inh; i++) {
		for (int k = 0; k < POD_FDS; k++)
			if (a->inh[i].fds[k] >= 0)
				close(a->inh[i].fds[k]);
		free(a->inh[i].name);
	}
	free(a->inh);
	a->inh = NULL;
	a->n_inh = 0;
}

void pod_conn_ended(void *ctx, void *owner)
{
	struct pod *p = owner;

	(void)ctx;
	p->active--;
}

/* A pod's share of the forwarder: --max-conns-per-pod, else the node's
 * limit split among the enabled pods (at least 64), so that one pod cannot
 * take every other pod's connections. */
bool pod_full(const struct agent *a, const struct pod *p)
{
	unsigned limit = a->o->max_conns_per_pod;

	if (!limit) {
		if (!a->o->max_conns)
			return false;
		limit = a->o->max_conns / (unsigned)(a->n_enabled ? a->n_enabled : 1);
		if (limit < 64)
			limit = 64;
	}
	return p->active >= limit;
}

/* ---------- restore after restart ---------- */

static struct pod *pod_from_state(json_object *x)
{
	const char *name = json_str(x, "name"), *netns = json_str(x, "netns"), *mesh = json_str(x, "mesh");
	json_object *v;

	if (!name || !netns || !mesh)
		return NULL;
	struct pod *p = pod_new(name, netns, mesh);
	if (json_str(x, "container"))
		p->container = xstrdup(json_str(x, "container"));
	if (json_object_object_get_ex(x, "since_unix", &v))
		p->since = (time_t)json_object_get_int64(v);
	if (json_object_object_get_ex(x, "exclude_ports", &v))
		for (size_t k = 0; k < json_object_array_length(v) && k < MS_MAX_EXCL_PORTS; k++)
			p->excl_ports[p->n_excl_ports++] = (uint16_t)json_object_get_int(json_object_array_get_idx(v, k));
	if (json_object_object_get_ex(x, "exclude_cidrs", &v))
		for (size_t k = 0; k < json_object_array_length(v) && k < MAX_EXCL_CIDRS; k++)
			if (cidr_parse(json_object_get_string(json_object_array_get_idx(v, k)),
				       &p->excl_cidrs[p->n_excl_cidrs]) == 0)
				p->n_excl_cidrs++;
	if (json_object_object_get_ex(x, "dns", &v))
		p->no_dns = !json_object_get_boolean(v);
	if (json_object_object_get_ex(x, CTL_F_DNS_SERVERS, &v))
		for (size_t k = 0; k < json_object_array_length(v) && k < CTL_MAX_DNS_SERVERS; k++)
			if (addr_parse(json_object_get_string(json_object_array_get_idx(v, k)),
				       &p->dns_servers[p->n_dns_servers]) == 0)
				p->n_dns_servers++;
	return p;
}

/* Pods a fail-open CNI ADD recorded while we were down. */
static void pods_replay_pending(struct agent *a)
{
	DIR *d = opendir(a->o->state_dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "pending-", 8) != 0)
			continue;
		_cleanup_free_ char *pp = state_path(a, de->d_name);
		char *t = NULL;
		size_t l;
		if (read_file(pp, 1 << 20, &t, &l) == 0) {
			struct ctl_req rq;
			char *err = NULL;
			if (ctl_parse(t, &rq, &err) == 0 && rq.cmd == CTL_ENABLE) {
				_cleanup_free_ char *e = pod_enable(a, &rq, NULL);
				log_info("pending CNI record %s: %s", de->d_name, e ? e : "pod enabled");
			} else {
				log_warn("pending CNI record %s: %s; ignored", de->d_name, err ? err : "not an enable request");
			}
			free(err);
			ctl_req_free(&rq);
			free(t);
		}
		unlink(pp);
	}
	if (d)
		closedir(d);
}

void pods_restore(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "pods.json");
	char *text = NULL;
	size_t len;
	uint64_t *cookies = NULL;
	size_t n_cookies = 0, restored = 0, gone = 0;

	if (read_file(path, 16u << 20, &text, &len) == 0) {
		json_object *arr = json_tokener_parse(text);
		free(text);
		for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++) {
			json_object *x = json_object_array_get_idx(arr, i), *v;
			struct pod *p = pod_from_state(x);
			if (!p)
				continue;
			bool want = json_object_object_get_ex(x, "enabled", &v) && json_object_get_boolean(v);
			int fd = netns_open(p->netns);
			if (fd < 0) {
				log_info("pod %s: netns %s is gone; forgetting the pod", p->name, p->netns);
				gone++;
				pod_free(a, p);
				continue;
			}
			close(fd);
			p->next = a->pods;
			a->pods = p;
			if (want) {
				const char *why = "";
				int r = pod_activate(a, p, true, &why);
				if (r < 0) {
					log_error_errno(r, "pod %s: re-enable after restart: %s: %m", p->name, why);
					pod_deactivate(a, p);
				} else {
					restored++;
				}
			}
		}
		json_object_put(arr);
	}
	pods_replay_pending(a);
	/* Pods the engine still steers that we no longer know: stale, remove. */
	a->steer->ops->pod_list(a->steer, &cookies, &n_cookies);
	for (size_t i = 0; i < n_cookies; i++) {
		bool known = false;
		for (struct pod *p = a->pods; p; p = p->next)
			known |= p->enabled && p->cookie == cookies[i];
		if (!known) {
			a->steer->ops->pod_del_cookie(a->steer, cookies[i]);
			log_info("removed stale pod entry 0x%llx from the pinned map", (unsigned long long)cookies[i]);
		}
	}
	free(cookies);
	if (restored || gone)
		log_info("pod registry: %zu pods re-enabled, %zu forgotten (netns gone)", restored, gone);
	pods_save(a);
}
