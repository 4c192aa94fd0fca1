// SPDX-License-Identifier: MIT
/* meshspliced: one event loop for the control socket, the pods' listeners,
 * the forwarder, config reloads and DNS lookups of endpoints. */
#include "agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "bpf-engine.h"
#include "tproxy.h"
#include "log.h"
#include "ctlproto.h"
#include "dnsproxy.h"
#include "fdpass.h"
#include "ms-build.h"
#include "netns.h"
#include "render.h"
#include "strbuf.h"
#include "resolver.h"
#include "util.h"

#define TICK_MS 250
#define RELOAD_DEBOUNCE_MS 200
#define CTL_BUF 65536
#define MAX_EXCL_CIDRS CTL_MAX_EXCL_CIDRS

struct pod;

struct listener {
	struct ev ev;
	struct pod *pod;
	int fd;
};

struct pod {
	char *container; /* CNI container id, or NULL */
	char *name;  /* NS/POD */
	char *netns; /* path */
	char *mesh;
	int nsfd;
	uint64_t cookie;
	bool enabled;
	time_t since;
	uint16_t excl_ports[MS_MAX_EXCL_PORTS];
	size_t n_excl_ports;
	struct ms_cidr excl_cidrs[MAX_EXCL_CIDRS];
	size_t n_excl_cidrs;
	struct listener l4, l6;
	bool no_dns; /* DNS capture turned off for this pod */
	struct dnsp_pod dns;
	struct pod *next;
};

/* A client whose endpoints wait for DNS. */
struct pending {
	int cfd;
	struct pod *pod;
	struct ms_addr orig;
	uint16_t port;
	uint64_t deadline_ms;
	struct pending *next;
};

/* A control or metrics client: one request, one answer, within
 * CLIENT_TIMEOUT_MS; at most MAX_CLIENTS of each kind at once. */
#define CLIENT_TIMEOUT_MS 5000
#define MAX_CLIENTS 64

struct ctl_client {
	struct ev ev;
	int fd;
	uint64_t deadline;
	struct ctl_client *prev, *next;
	size_t len;
	char buf[CTL_BUF];
};

/* The TLS context of each service with tls.enabled, for the current config. */
struct svc_tls {
	char *key; /* kind/mesh/name */
	struct tls_ctx *ctx; /* NULL when it could not be built: err says why */
	char *err;
};

enum engine { ENGINE_BPF, ENGINE_IPTABLES };

/* A pod's sockets as one agent hands them to the next: its two listeners,
 * then the DNS responder's u4, u6, t4, t6 (-1 where there is none). */
#define POD_FDS 6
struct inherited {
	char *name;
	int fds[POD_FDS];
};

struct agent {
	const struct agent_opts *o;
	struct ev metrics_ev;
	int metrics_fd;
	enum engine engine;
	enum tp_backend backend;
	struct svc_tls *tls;
	size_t n_tls;
	int epfd;
	struct ev ctl_ev, ino_ev, sig_ev, timer_ev, res_ev;
	int ctl_fd, ino_fd, sig_fd, timer_fd;
	struct ms_config *cfg;
	struct ms_vip_table vips;
	uint64_t reload_at;
	uint64_t reloads_ok, reloads_failed;
	char *last_reload_error;
	struct bpf_engine *bpf;
	struct fwd fwd;
	struct resolver *res;
	struct dnsp *dns; /* NULL: DNS capture off on this node */
	struct ctl_client *clients;
	size_t n_clients[2]; /* control, metrics */
	bool draining;     /* no new connections; exit when the last one ends */
	bool handed_over;  /* a new agent has our listeners and control socket path */
	uint64_t drain_deadline;
	struct inherited *inh; /* sockets a previous agent handed over, by pod */
	size_t n_inh;
	struct pod *pods;
	struct pending *pending;
	uint64_t refused[REFUSE__MAX];
	uint64_t accepted;
	uint64_t reset_before_accept; /* client gone (reset) before we accepted */
	uint64_t fd_log_ms;
	time_t started;
	bool stop;
};

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
};

const char *agent_refuse_name(enum refuse_reason r)
{
	return r < REFUSE__MAX ? refuse_names[r] : "?";
}

static int ep_add(struct agent *a, int fd, struct ev *ev, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.ptr = ev };
	return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ee) < 0 ? -errno : 0;
}

/* ---------- state: pods and VIPs survive restarts ---------- */

static char *state_path(struct agent *a, const char *name)
{
	return xasprintf("%s/%s", a->o->state_dir, name);
}

static void save_vips(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "vips");
	_cleanup_free_ char *text = NULL;
	int r;

	cfg_vip_table_clear(&a->vips);
	cfg_vip_table_from_config(a->cfg, &a->vips);
	text = cfg_vip_table_format(&a->vips);
	if ((r = write_file_atomic(path, text, strlen(text), 0600)) < 0)
		log_warn_errno(r, "save VIPs to %s: %m (VIPs may move on restart)", path);
}

static const char *engine_name = "bpf";

static json_object *pod_json(const struct pod *p, bool for_state)
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
	if (!for_state) {
		json_object_object_add(o, "dns_responder", json_object_new_boolean(dnsp_pod_is_open(&p->dns)));
		struct tm tm;
		char ts[32];
		gmtime_r(&p->since, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_object_add(o, "state", json_object_new_string(p->enabled ? "enabled" : "disabled"));
		json_object_object_add(o, "engine", json_object_new_string(engine_name));
		json_object_object_add(o, "since", json_object_new_string(ts));
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)p->cookie);
		json_object_object_add(o, "netns_cookie", json_object_new_string(buf));
	}
	return o;
}

static void save_pods(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "pods.json");
	json_object *arr = json_object_new_array();
	const char *s;
	int r;

	for (struct pod *p = a->pods; p; p = p->next)
		json_object_array_add(arr, pod_json(p, true));
	s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY);
	if ((r = write_file_atomic(path, s, strlen(s), 0600)) < 0)
		log_warn_errno(r, "save pod registry to %s: %m", path);
	json_object_put(arr);
}

/* ---------- pods ---------- */

static struct pod *pod_find_name(struct agent *a, const char *name)
{
	for (struct pod *p = a->pods; p; p = p->next)
		if (streq(p->name, name))
			return p;
	return NULL;
}

static void listener_close(struct agent *a, struct listener *l)
{
	if (l->fd < 0)
		return;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	l->fd = -1;
}

/* Listen on fd (a pod's listener, opened or handed over). */
static int listener_adopt(struct agent *a, struct pod *p, struct listener *l, int fd)
{
	if (fd < 0)
		return 0;
	l->ev.kind = EV_POD_LISTENER;
	l->pod = p;
	l->fd = fd;
	int r = ep_add(a, fd, &l->ev, EPOLLIN);
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

static struct ms_pod pod_value(struct agent *a, const struct pod *p)
{
	const struct ms_mesh *m = cfg_find_mesh(a->cfg, p->mesh);
	struct ms_pod v = { .listen_port = a->o->listen_port };

	if (m) {
		v.mesh_id = m->id;
		v.flags = (m->passthrough ? MS_POD_PASSTHROUGH : 0) | (m->forbid_external ? MS_POD_FORBID_EXT : 0) |
			  (m->fail_open ? MS_POD_FAIL_OPEN : 0);
	}
	if (dnsp_pod_is_open(&p->dns)) {
		v.flags |= MS_POD_DNS;
		v.dns_port = a->o->dns_port;
	}
	v.n_excl_ports = (uint16_t)p->n_excl_ports;
	memcpy(v.excl_ports, p->excl_ports, sizeof(v.excl_ports));
	return v;
}

/* The iptables engine's steering for p (idempotent: also refreshes the
 * exclusions of an enabled pod). 0 or -errno, logged. */
static int pod_iptables_install(struct agent *a, struct pod *p)
{
	struct tp_opts to;
	char *err = NULL;
	int r;

	tp_opts_init(&to);
	to.mark = a->o->mark;
	to.listen_port = a->o->listen_port;
	memcpy(to.excl_ports, p->excl_ports, p->n_excl_ports * sizeof(uint16_t));
	to.n_excl_ports = p->n_excl_ports;
	to.n_excl_cidrs = MS_MIN(p->n_excl_cidrs, (size_t)TP_MAX_ITEMS);
	memcpy(to.excl_cidrs, p->excl_cidrs, to.n_excl_cidrs * sizeof(struct ms_cidr));
	to.vip_cidrs[0] = a->o->cfg.mes_cidr;
	to.vip_cidrs[1] = a->o->cfg.ms_cidr;
	to.n_vip_cidrs = 2;
	to.dns_port = dnsp_pod_is_open(&p->dns) ? a->o->dns_port : 0;
	if ((r = tp_install(p->nsfd, a->backend, &to, &err)) < 0)
		log_error("pod %s: iptables: %s", p->name, err ? err : "install failed");
	free(err);
	return r;
}

static void pod_close_sockets(struct agent *a, struct pod *p)
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
	int r;

	if (want == dnsp_pod_is_open(&p->dns))
		return;
	if (!want) {
		dnsp_pod_close(a->dns, &p->dns);
		return;
	}
	if ((r = dnsp_pod_open(a->dns, &p->dns, p->nsfd, p, p->name)) < 0)
		log_warn_errno(r, "pod %s: no DNS responder on 127.0.0.1:%u: %m; the pod's DNS is not captured",
			       p->name, a->o->dns_port);
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

/* Listeners first, then the map entry: the first redirected connect finds
 * someone listening. Returns 0 or -errno with *why set. */
static int pod_activate(struct agent *a, struct pod *p, const char **why)
{
	struct ms_pod v;
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
	if (r < 0) {
		*why = "cannot listen on 127.0.0.1 in the pod";
		return r;
	}
	if ((r = listener_open(a, p, &p->l6, AF_INET6)) < 0)
		log_info_errno(r, "pod %s: no IPv6 listener on [::1]:%u: %m; IPv6 connections will not be proxied",
			       p->name, a->o->listen_port);
listening:
	pod_dns_sync(a, p);
	if (a->engine == ENGINE_IPTABLES) {
		if ((r = pod_iptables_install(a, p)) < 0) {
			*why = "cannot install the iptables rules";
			pod_close_sockets(a, p);
			return r;
		}
		p->enabled = true;
		return 0;
	}
	v = pod_value(a, p);
	if ((r = bpf_engine_pod_put(a->bpf, p->cookie, &v)) < 0) {
		*why = "cannot update the BPF pods map";
		pod_close_sockets(a, p);
		return r;
	}
	if ((r = bpf_engine_excl_set(a->bpf, p->cookie, p->excl_cidrs, p->n_excl_cidrs)) < 0) {
		*why = "cannot update the BPF exclusions map";
		return r;
	}
	p->enabled = true;
	return 0;
}

static void pod_deactivate(struct agent *a, struct pod *p)
{
	/* Map entry first: new connects go direct before the listeners close.
	 * Established proxied connections live in the forwarder and go on. */
	if (a->engine == ENGINE_IPTABLES && p->nsfd >= 0) {
		char *err = NULL;
		/* Rules and VIP routes both go, so VIPs fail at once (ENETUNREACH) as
		 * with the eBPF engine. Unlike it, REDIRECTed connections already
		 * established do not survive the rules' removal (tested, documented). */
		int r = tp_uninstall(p->nsfd, a->backend, &err);
		if (r < 0)
			log_warn("pod %s: iptables uninstall: %s", p->name, err ? err : "failed");
		free(err);
	} else if (a->bpf && p->cookie) {
		bpf_engine_pod_del(a->bpf, p->cookie);
	}
	pod_close_sockets(a, p);
	fwd_forget_netns(&a->fwd, p->nsfd);
	netns_close(p->nsfd); /* and the sockets made ahead in it */
	p->nsfd = -1;
	p->enabled = false;
}

static void pod_free(struct pod *p)
{
	free(p->container);
	free(p->name);
	free(p->netns);
	free(p->mesh);
	/* its listeners' events may still wait in this batch */
	p->l4.ev.dead = p->l6.ev.dead = true;
	p->dns.u4.ev.dead = p->dns.u6.ev.dead = p->dns.t4.ev.dead = p->dns.t6.ev.dead = true;
	ev_defer_free(p);
}

static struct pod *pod_new(const char *name, const char *netns, const char *mesh)
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

/* ---------- policy ---------- */

static const struct svc_tls *svc_tls_find(struct agent *a, const struct ms_service *s);

static void refuse(struct agent *a, int cfd, enum refuse_reason r, const struct pod *p,
		   const struct ms_addr *orig, uint16_t port, const char *detail)
{
	char dst[MS_ADDR_STRLEN + 8] = "?";

	if (orig)
		addr_port_fmt(orig, port, dst, sizeof(dst));
	a->refused[r]++;
	fwd_reset_fd(cfd);
	log_info("refused %s → %s: %s (%s)", p ? p->name : "?", dst, refuse_names[r], detail);
}

static bool in_vip_range(struct agent *a, const struct ms_addr *x)
{
	return cidr_contains(&a->o->cfg.mes_cidr, x) || cidr_contains(&a->o->cfg.ms_cidr, x);
}

static void target_ip(struct fwd_target *t, const struct ms_addr *ip, uint16_t port, int nsfd)
{
	memset(t, 0, sizeof(*t));
	t->len = addr_to_sockaddr(ip, port, false, &t->sa);
	t->netns_fd = nsfd;
	t->mark = true;
	addr_port_fmt(ip, port, t->label, sizeof(t->label));
}

/* SNI and the names to verify, per endpoint: serverName when given (SNI
 * unless the legacy "" disabled it); else a DNS endpoint's name; an IP
 * endpoint sends no SNI and is checked against IP SANs. */
static void target_tls(struct fwd_target *t, const struct svc_tls *st, const struct ms_tls *tls,
		       const struct ms_endpoint *e, const struct ms_addr *ip)
{
	if (!st)
		return;
	t->tls = tls_ctx_ref(st->ctx);
	if (tls->server_name) {
		snprintf(t->host, sizeof(t->host), "%s", tls->server_name);
		if (!tls->sni_disabled)
			snprintf(t->sni, sizeof(t->sni), "%s", tls->server_name);
	} else if (e->type == MS_EP_DNS) {
		snprintf(t->host, sizeof(t->host), "%s", e->host);
		if (!tls->sni_disabled)
			snprintf(t->sni, sizeof(t->sni), "%s", e->host);
	} else if (ip) {
		addr_fmt(ip, t->ip, sizeof(t->ip));
	}
}

/* Decide and start, or park the client until its endpoints resolve. */
static void dispatch(struct agent *a, int cfd, struct pod *p, const struct ms_addr *orig, uint16_t port,
		     uint64_t deadline_ms)
{
	const struct ms_mesh *mesh = cfg_find_mesh(a->cfg, p->mesh);
	const struct ms_port *sp = NULL;
	const struct ms_service *svc;
	char dst[MS_ADDR_STRLEN + 8], label[160];

	addr_port_fmt(orig, port, dst, sizeof(dst));
	if (!mesh)
		return refuse(a, cfd, REFUSE_MESH_GONE, p, orig, port, p->mesh);
	if (fwd_full(&a->fwd))
		return refuse(a, cfd, REFUSE_LIMIT, p, orig, port, "too many connections");
	svc = cfg_find_vip(a->cfg, p->mesh, orig, port, &sp);
	if (!svc) {
		if (in_vip_range(a, orig))
			return refuse(a, cfd, REFUSE_NO_SERVICE, p, orig, port, "no service of this mesh has this VIP:port");
		if (!mesh->passthrough)
			return refuse(a, cfd, REFUSE_PASSTHROUGH, p, orig, port, "the mesh has passthrough off");
		if (addr_is_local(orig))
			return refuse(a, cfd, REFUSE_LOOP, p, orig, port, "a loopback destination is never proxied");
		struct fwd_target *t = xcalloc(1, sizeof(*t));
		target_ip(t, orig, port, p->nsfd);
		fwd_start(&a->fwd, cfd, t, 1, p->name, dst, "passthrough");
		return;
	}
	if (svc->kind != MS_KIND_MESH_SERVICE && mesh->forbid_external)
		return refuse(a, cfd, REFUSE_EXTERNAL, p, orig, port, "the mesh forbids external services");
	const struct svc_tls *st = NULL;
	if (svc->tls.enabled) {
		st = svc_tls_find(a, svc);
		if (!st || !st->ctx)
			return refuse(a, cfd, REFUSE_TLS, p, orig, port, st && st->err ? st->err : "no TLS context");
	}
	snprintf(label, sizeof(label), "%s/%s", cfg_kind_name(svc->kind), svc->name);

	/* Round robin: start after the last endpoint used; the rest are the failover order. */
	size_t n_eps = sp->n_eps, n = 0;
	struct fwd_target *ts = NULL;
	bool waiting = false;
	struct ms_port *msp = (struct ms_port *)sp;
	size_t start = n_eps ? msp->n_eps_rr++ % n_eps : 0;
	for (size_t k = 0; k < n_eps; k++) {
		const struct ms_endpoint *e = &sp->eps[(start + k) % n_eps];
		const struct ms_addr *addrs;
		size_t na = 0;

		if (e->type == MS_EP_DNS) {
			int r = resolver_lookup(a->res, e->host, &addrs, &na);
			if (r == -EAGAIN) {
				waiting = true;
				continue;
			}
			if (r < 0)
				continue;
		} else if (e->type == MS_EP_IP) {
			addrs = &e->ip;
			na = 1;
		}
		/* exactly as many targets as there are: the connection keeps them
		 * (they are large), and services have a few endpoints at most */
		ts = xrealloc(ts, n + (na ? na : 1), sizeof(*ts));
		if (e->type == MS_EP_UNIX) {
			struct sockaddr_un *sun = (struct sockaddr_un *)&ts[n].sa;
			memset(&ts[n], 0, sizeof(ts[n]));
			sun->sun_family = AF_UNIX;
			snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", e->host);
			ts[n].len = sizeof(*sun);
			ts[n].netns_fd = -1;
			snprintf(ts[n].label, sizeof(ts[n].label), "unix://%s", e->host);
			target_tls(&ts[n], st, &svc->tls, e, NULL);
			n++;
			continue;
		}
		for (size_t i = 0; i < na; i++) {
			target_ip(&ts[n], &addrs[i], e->port, p->nsfd);
			if (e->type == MS_EP_DNS) {
				char ip[MS_ADDR_STRLEN + 8];
				snprintf(ts[n].label, sizeof(ts[n].label), "%s(%s)", e->host,
					 addr_port_fmt(&addrs[i], e->port, ip, sizeof(ip)));
			}
			target_tls(&ts[n], st, &svc->tls, e, &addrs[i]);
			n++;
		}
	}
	if (waiting && n == 0) {
		free(ts);
		if (deadline_ms && now_ms() >= deadline_ms)
			return refuse(a, cfd, REFUSE_NO_ENDPOINT, p, orig, port, "DNS lookup timed out");
		struct pending *pd = xcalloc(1, sizeof(*pd));
		*pd = (struct pending){ .cfd = cfd, .pod = p, .orig = *orig, .port = port,
					.deadline_ms = deadline_ms ? deadline_ms : now_ms() + a->o->connect_timeout_ms,
					.next = a->pending };
		a->pending = pd;
		return;
	}
	if (n == 0) {
		free(ts);
		return refuse(a, cfd, REFUSE_NO_ENDPOINT, p, orig, port,
			      n_eps ? "no endpoint resolved" : "the service has no endpoints");
	}
	for (size_t i = 0; i < n; i++)
		fwd_target_fix(&ts[i]);
	fwd_start(&a->fwd, cfd, ts, n, p->name, dst, label);
}

static void pending_retry(struct agent *a, bool only_expired)
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
		dispatch(a, pd->cfd, pd->pod, &pd->orig, pd->port, pd->deadline_ms);
		free(pd);
	}
}

#define MS_SO_ORIGINAL_DST 80      /* SOL_IP, <linux/netfilter_ipv4.h> */
#define MS_IP6T_SO_ORIGINAL_DST 80 /* SOL_IPV6, <linux/netfilter_ipv6/ip6_tables.h> */

/* Where the client meant to go: the eBPF engine's map, or conntrack's
 * record of the REDIRECT. A loopback answer means it was not redirected. */
static int original_dst(struct agent *a, struct pod *p, int cfd, bool v6, const struct ms_addr *peer,
			uint16_t pport, struct ms_addr *ret, uint16_t *ret_port)
{
	if (a->engine == ENGINE_BPF)
		return bpf_engine_conn_take(a->bpf, p->cookie, peer, pport, ret, ret_port);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockopt(cfd, v6 ? SOL_IPV6 : SOL_IP, v6 ? MS_IP6T_SO_ORIGINAL_DST : MS_SO_ORIGINAL_DST, &ss,
		       &len) < 0)
		return -errno;
	return addr_from_sockaddr((struct sockaddr *)&ss, ret, ret_port);
}

/* The client reset the connection while it sat in the backlog: under eBPF its
 * original destination went with its socket, and there is nobody to refuse. */
static bool client_reset(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && (err == ECONNRESET || err == EPIPE);
}

static void pod_accept(struct agent *a, struct listener *l)
{
	struct pod *p = l->pod;

	/* the listener is level-triggered: what is left waits for the next round */
	for (unsigned taken = 0; !a->o->accept_batch || taken < a->o->accept_batch; taken++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct ms_addr peer, orig;
		uint16_t pport, oport;
		int cfd = accept_shed(l->fd, (struct sockaddr *)&ss, &len);

		if (cfd == -EMFILE) {
			/* out of fds: that client was reset; say so at most once a second */
			a->refused[REFUSE_NO_FD]++;
			if (now_ms() - a->fd_log_ms >= 1000) {
				a->fd_log_ms = now_ms();
				log_warn("pod %s: out of file descriptors (RLIMIT_NOFILE): resetting new connections; %llu so far",
					 p->name, (unsigned long long)a->refused[REFUSE_NO_FD]);
			}
			continue;
		}
		if (cfd < 0) {
			if (cfd != -EAGAIN)
				log_warn_errno(cfd, "pod %s: accept: %m", p->name);
			return;
		}
		a->accepted++;
		if (addr_from_sockaddr((struct sockaddr *)&ss, &peer, &pport) < 0 ||
		    original_dst(a, p, cfd, l == &p->l6, &peer, pport, &orig, &oport) < 0 ||
		    addr_is_local(&orig)) {
			if (client_reset(cfd)) {
				a->reset_before_accept++;
				log_debug("pod %s: a client reset its connection before it was accepted", p->name);
				close(cfd);
				continue;
			}
			/* Not a redirected connection (someone dialled the listener
			 * directly): never an open relay. */
			refuse(a, cfd, REFUSE_UNKNOWN_ORIG, p, NULL, 0, "no original destination recorded");
			continue;
		}
		dispatch(a, cfd, p, &orig, oport, 0);
	}
}

/* ---------- mesh DNS ---------- */

static bool dns_local(void *ctx, void *pod, const char *name, struct ms_addr *ret_vip)
{
	struct agent *a = ctx;
	const struct pod *p = pod;
	const struct ms_service *s = cfg_find_hostname(a->cfg, p->mesh, name);

	if (!s)
		return false;
	*ret_vip = s->vip;
	return true;
}

static int dns_origin(void *ctx, void *pod, bool tcp, int fd, const struct ms_addr *client, uint16_t cport,
		      const struct ms_addr *self, struct ms_addr *ret, uint16_t *ret_port)
{
	struct agent *a = ctx;
	struct pod *p = pod;

	if (tcp)
		return original_dst(a, p, fd, !addr_is_v4(client), client, cport, ret, ret_port);
	if (a->engine == ENGINE_BPF)
		return bpf_engine_dns_origin(a->bpf, p->cookie, cport, ret, ret_port);
	return tp_conntrack_orig_dst(p->nsfd, IPPROTO_UDP, client, cport, self, a->o->dns_port, ret, ret_port);
}

/* ---------- config ---------- */

static int load_config(struct agent *a, struct ms_config **ret)
{
	struct cfg_errors errs = { 0 };
	struct cfg_opts co = a->o->cfg;
	int r;

	co.prev = &a->vips;
	if (a->o->config_dir) {
		const char *p = a->o->config_dir;
		r = cfg_load_paths(&p, 1, &co, &errs, ret);
	} else {
		r = cfg_load_buffer(cfg_embedded_default, strlen(cfg_embedded_default), "<embedded default>",
				    &co, &errs, ret);
	}
	if (r < 0) {
		char buf[1024];
		for (size_t i = 0; i < errs.n; i++)
			log_error("config: %s", cfg_err_fmt(&errs.v[i], buf, sizeof(buf)));
		free(a->last_reload_error);
		a->last_reload_error = errs.n ? xstrdup(cfg_err_fmt(&errs.v[0], buf, sizeof(buf))) : xstrdup("unreadable");
	}
	cfg_errors_clear(&errs);
	return r;
}

static void svc_tls_clear(struct svc_tls *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].err);
		tls_ctx_unref(v[i].ctx);
	}
	free(v);
}

static char *svc_key(const struct ms_service *s)
{
	return xasprintf("%s/%s/%s", cfg_kind_name(s->kind), s->mesh, s->name);
}

/* One entry per service of the config in force (a->tls[i] for svcs[i]; key
 * NULL for a service without TLS). Contexts whose settings did not change are
 * kept (and their sessions); changed ones are built anew, so no session
 * crosses a settings change. */
static void build_tls(struct agent *a, const struct ms_config *c, const struct ms_config *old)
{
	struct svc_tls *v = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*v));

	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i], *o;
		uint8_t digest[32];
		if (!s->tls.enabled)
			continue;
		v[i].key = svc_key(s);
		tls_settings_digest(&s->tls, s->ports[0].proto, digest);
		if (old && (o = cfg_find_service(old, s->kind, s->mesh, s->name))) {
			const struct svc_tls *was = &a->tls[o - old->svcs];
			if (was->ctx && memcmp(was->ctx->digest, digest, 32) == 0)
				v[i].ctx = tls_ctx_ref(was->ctx);
		}
		if (!v[i].ctx && tls_ctx_new(&s->tls, s->ports[0].proto, &v[i].ctx, &v[i].err) < 0)
			log_error("%s: TLS origination unavailable: %s; its connections are refused", v[i].key,
				  v[i].err);
	}
	svc_tls_clear(a->tls, a->n_tls);
	a->tls = v;
	a->n_tls = c->n_svcs;
}

/* s: a service of the config in force */
static const struct svc_tls *svc_tls_find(struct agent *a, const struct ms_service *s)
{
	size_t i = (size_t)(s - a->cfg->svcs);

	return i < a->n_tls && a->tls[i].key ? &a->tls[i] : NULL;
}

static void apply_config(struct agent *a, struct ms_config *c)
{
	struct ms_config *old = a->cfg;

	a->cfg = c;
	/* Keep round-robin cursors where the same service-port survives. */
	if (old)
		for (size_t i = 0; i < c->n_svcs; i++) {
			const struct ms_service *s = &c->svcs[i];
			const struct ms_service *o = cfg_find_service(old, s->kind, s->mesh, s->name);
			for (size_t p = 0; o && p < s->n_ports && p < o->n_ports; p++)
				s->ports[p].n_eps_rr = o->ports[p].n_eps_rr;
		}
	build_tls(a, c, old);
	if (a->bpf)
		bpf_engine_svcs_sync(a->bpf, c);
	for (struct pod *p = a->pods; p; p = p->next) {
		if (!p->enabled)
			continue;
		if (!a->bpf)
			continue; /* iptables rules do not depend on the config */
		if (!cfg_find_mesh(c, p->mesh))
			log_warn("pod %s: mesh %s no longer exists; its connections are refused", p->name, p->mesh);
		struct ms_pod v = pod_value(a, p);
		bpf_engine_pod_put(a->bpf, p->cookie, &v);
	}
	save_vips(a);
	cfg_unref(old);
}

static void reload(struct agent *a, const char *why)
{
	struct ms_config *c = NULL;
	uint64_t t0 = now_ms();

	if (load_config(a, &c) < 0) {
		a->reloads_failed++;
		log_error("config reload (%s) failed; the last good config stays in force", why);
		return;
	}
	apply_config(a, c);
	a->reloads_ok++;
	free(a->last_reload_error);
	a->last_reload_error = NULL;
	log_info("config reloaded (%s): %zu files, %zu meshes, %zu services in %llu ms", why, c->n_files,
		 c->n_meshes, c->n_svcs, (unsigned long long)(now_ms() - t0));
}

/* ---------- control ---------- */

static json_object *reply_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *reply_err(const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static json_object *reply_ok(void)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static const char *req_str(json_object *req, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(req, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *do_enable(struct agent *a, const struct ctl_req *rq)
{
	const char *name = rq->name, *netns = rq->netns, *mesh = rq->mesh;
	struct pod *p = NULL;
	const char *why = "";
	int r;

	if (mesh && !cfg_find_mesh(a->cfg, mesh))
		return reply_err("mesh \"%s\" does not exist in the agent's config", log_escape(mesh));

	if (!netns) {
		if (!name)
			return reply_err("enable needs a pod name or --netns");
		p = pod_find_name(a, name);
		if (!p)
			return reply_err("unknown pod %s: enable it once with --netns PATH", log_escape(name));
	} else {
		_cleanup_close_ int fd = netns_open(netns);
		uint64_t cookie;
		if (fd < 0)
			return reply_err("netns %s: %s", log_escape(netns),
					 fd == -ENOTSUP ? "not a network namespace (no nsfs mount visible to the agent)" : strerror(-fd));
		if ((r = netns_cookie(fd, &cookie)) < 0)
			return reply_err("netns %s: cannot read its cookie: %s", log_escape(netns), strerror(-r));
		for (struct pod *q = a->pods; q; q = q->next)
			if ((q->enabled && q->cookie == cookie) || streq(q->netns, netns) || (name && streq(q->name, name)))
				p = q;
		if (!p) {
			char auto_name[64];
			snprintf(auto_name, sizeof(auto_name), "netns/%llx", (unsigned long long)cookie);
			p = pod_new(name ? name : auto_name, netns, mesh ? mesh : "default");
			p->next = a->pods;
			a->pods = p;
		} else if (!streq(p->netns, netns)) {
			/* Same name, new netns (a restarted sandbox): start afresh. */
			if (p->enabled)
				pod_deactivate(a, p);
			free(p->netns);
			p->netns = xstrdup(netns);
		}
	}
	if (mesh && !streq(p->mesh, mesh)) {
		free(p->mesh);
		p->mesh = xstrdup(mesh);
	}
	const char *container = rq->container;
	if (container && !streq(p->container, container)) {
		free(p->container);
		p->container = xstrdup(container);
	}
	if (netns || rq->n_excl_ports || rq->n_excl_cidrs) {
		memcpy(p->excl_ports, rq->excl_ports, sizeof(p->excl_ports));
		p->n_excl_ports = rq->n_excl_ports;
		memcpy(p->excl_cidrs, rq->excl_cidrs, sizeof(p->excl_cidrs));
		p->n_excl_cidrs = rq->n_excl_cidrs;
	}
	if (rq->dns >= 0)
		p->no_dns = !rq->dns;
	if (p->enabled)
		pod_dns_sync(a, p);
	if (p->enabled && a->bpf) {
		/* Refresh flags and exclusions in place. */
		struct ms_pod v = pod_value(a, p);
		bpf_engine_pod_put(a->bpf, p->cookie, &v);
		bpf_engine_excl_set(a->bpf, p->cookie, p->excl_cidrs, p->n_excl_cidrs);
	} else if (p->enabled) {
		pod_iptables_install(a, p); /* new exclusions; listeners stay as they are */
	} else if ((r = pod_activate(a, p, &why)) < 0) {
		log_error_errno(r, "enable pod %s (netns %s): %s: %m", p->name, p->netns, why);
		json_object *e = reply_err("enable %s: %s: %s", p->name, why, strerror(-r));
		pod_deactivate(a, p);
		save_pods(a);
		return e;
	} else {
		p->since = time(NULL);
		log_info("pod %s enabled: netns %s (cookie 0x%llx), mesh %s, listening on port %u", p->name,
			 p->netns, (unsigned long long)p->cookie, p->mesh, a->o->listen_port);
	}
	save_pods(a);
	json_object *o = reply_ok();
	json_object_object_add(o, "pod", pod_json(p, false));
	json_object_object_add(o, "message", json_object_new_string("enabled"));
	return o;
}

static json_object *do_disable(struct agent *a, const struct ctl_req *rq)
{
	const char *name = rq->name, *netns = rq->netns;
	struct pod *p = NULL;

	for (struct pod *q = a->pods; q; q = q->next)
		if ((name && streq(q->name, name)) || (netns && streq(q->netns, netns)))
			p = q;
	if (!p)
		return reply_err("unknown pod %s", log_escape(name ? name : netns ? netns : "?"));
	if (p->enabled) {
		pod_deactivate(a, p);
		p->since = time(NULL);
		log_info("pod %s disabled: new connections go direct; established ones continue", p->name);
	}
	save_pods(a);
	json_object *o = reply_ok();
	json_object_object_add(o, "message", json_object_new_string("disabled"));
	return o;
}

static json_object *do_forget(struct agent *a, const struct ctl_req *rq)
{
	const char *name = rq->name, *netns = rq->netns, *container = rq->container;
	struct pod **pp;

	for (pp = &a->pods; *pp; pp = &(*pp)->next) {
		struct pod *p = *pp;
		if ((container && streq(p->container, container)) || (!container && name && streq(p->name, name)) ||
		    (!container && netns && streq(p->netns, netns))) {
			if (p->enabled)
				pod_deactivate(a, p);
			*pp = p->next;
			log_info("pod %s removed", p->name);
			/* parked clients of this pod are refused now */
			for (struct pending *pd = a->pending; pd; pd = pd->next)
				if (pd->pod == p)
					pd->deadline_ms = 0;
			pending_retry(a, true);
			pod_free(p);
			save_pods(a);
			return reply_ok();
		}
	}
	return reply_ok(); /* forgetting an unknown pod is not an error (CNI DEL) */
}

static json_object *do_pods(struct agent *a)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();

	for (struct pod *p = a->pods; p; p = p->next)
		json_object_array_add(arr, pod_json(p, false));
	json_object_object_add(o, "pods", arr);
	return o;
}

static json_object *do_conns(struct agent *a)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();
	uint64_t now = now_ms();

	for (struct fwd_conn *c = a->fwd.head; c; c = c->next) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "id", json_object_new_int64((int64_t)c->id));
		json_object_object_add(x, "pod", json_object_new_string(c->pod));
		json_object_object_add(x, "original", json_object_new_string(c->orig));
		json_object_object_add(x, "service", json_object_new_string(c->service));
		json_object_object_add(x, "upstream", json_object_new_string(fwd_conn_upstream(c)));
		json_object_object_add(x, "state", json_object_new_string(c->state == FWD_OPEN ? "open" : "connecting"));
		json_object_object_add(x, "tx_bytes", json_object_new_int64((int64_t)c->up.bytes));
		json_object_object_add(x, "rx_bytes", json_object_new_int64((int64_t)c->down.bytes));
		json_object_object_add(x, "age_ms", json_object_new_int64((int64_t)(now - c->created_ms)));
		json_object_array_add(arr, x);
	}
	json_object_object_add(o, "connections", arr);
	return o;
}

static json_object *do_stats(struct agent *a)
{
	json_object *o = reply_ok(), *fw = json_object_new_object(), *ref = json_object_new_object();
	json_object *bp = json_object_new_object();
	uint64_t cnt[MS_CNT__MAX];
	const struct fwd_stats *s = &a->fwd.st;

#define F(name) json_object_object_add(fw, #name, json_object_new_int64((int64_t)s->name))
	F(started);
	F(active);
	F(completed);
	F(reset_client);
	F(reset_upstream);
	F(connect_failed);
	F(connect_retries);
	F(connect_timeout);
	F(idle_timeout);
	F(halfclose_timeout);
	F(bytes_up);
	F(bytes_down);
	F(pipes_created);
	F(pipe_errors);
#undef F
	json_object_object_add(fw, "pipes_pooled", json_object_new_int64((int64_t)a->fwd.n_pool));
	json_object *tl = json_object_new_object(), *tf = json_object_new_object();
	json_object_object_add(tl, "handshakes", json_object_new_int64((int64_t)s->tls_handshakes));
	json_object_object_add(tl, "resumed", json_object_new_int64((int64_t)s->tls_resumed));
	json_object_object_add(tl, "ktls", json_object_new_int64((int64_t)s->tls_ktls));
	json_object_object_add(tl, "verify_cached", json_object_new_int64((int64_t)tls_verify_cached()));
	for (int i = 0; i < TLS_FAIL__MAX; i++)
		json_object_object_add(tf, tls_fail_name((enum tls_fail)i), json_object_new_int64((int64_t)s->tls_fail[i]));
	json_object_object_add(tl, "failures", tf);
	json_object_object_add(o, "tls", tl);
	json_object_object_add(fw, "accepted", json_object_new_int64((int64_t)a->accepted));
	json_object_object_add(fw, "reset_before_accept", json_object_new_int64((int64_t)a->reset_before_accept));
	for (int i = 0; i < REFUSE__MAX; i++)
		json_object_object_add(ref, refuse_names[i], json_object_new_int64((int64_t)a->refused[i]));
	if (a->bpf) {
		bpf_engine_counters(a->bpf, cnt);
		for (int i = 0; i < MS_CNT__MAX; i++)
			json_object_object_add(bp, bpf_counter_name(i), json_object_new_int64((int64_t)cnt[i]));
		size_t nc, nd;
		bpf_engine_map_sizes(a->bpf, &nc, &nd);
		json_object_object_add(bp, "conns_map_entries", json_object_new_int64((int64_t)nc));
		json_object_object_add(bp, "dns_map_entries", json_object_new_int64((int64_t)nd));
	}
	json_object_object_add(o, "forwarder", fw);
	json_object_object_add(o, "refused", ref);
	if (a->dns) {
		struct dnsp_stats ds = dnsp_get_stats(a->dns);
		json_object *dj = json_object_new_object();
		json_object_object_add(dj, "local", json_object_new_int64((int64_t)ds.local));
		json_object_object_add(dj, "forwarded", json_object_new_int64((int64_t)ds.forwarded));
		json_object_object_add(dj, "failed", json_object_new_int64((int64_t)ds.failed));
		json_object_object_add(dj, "malformed", json_object_new_int64((int64_t)ds.malformed));
		json_object_object_add(o, "dns", dj);
	}
	json_object_object_add(o, "bpf", bp);
	return o;
}

static json_object *do_status(struct agent *a)
{
	json_object *o = reply_ok();
	size_t enabled = 0, known = 0;

	for (struct pod *p = a->pods; p; p = p->next) {
		known++;
		enabled += p->enabled;
	}
	json_object_object_add(o, "version", json_object_new_string(MS_VERSION));
	json_object_object_add(o, "engine", json_object_new_string(engine_name));
	if (a->engine == ENGINE_IPTABLES)
		json_object_object_add(o, "iptables_backend", json_object_new_string(a->backend == TP_BACKEND_NFT ? "nft" : "legacy"));
	json_object_object_add(o, "cgroup", json_object_new_string(a->o->cgroup));
	json_object_object_add(o, "bpffs", json_object_new_string(a->o->bpffs));
	json_object_object_add(o, "config", json_object_new_string(a->o->config_dir ? a->o->config_dir : "<embedded default>"));
	json_object_object_add(o, "meshes", json_object_new_int((int)a->cfg->n_meshes));
	json_object_object_add(o, "services", json_object_new_int((int)a->cfg->n_svcs));
	json_object_object_add(o, "reloads_ok", json_object_new_int64((int64_t)a->reloads_ok));
	json_object_object_add(o, "reloads_failed", json_object_new_int64((int64_t)a->reloads_failed));
	if (a->last_reload_error)
		json_object_object_add(o, "last_reload_error", json_object_new_string(a->last_reload_error));
	json_object_object_add(o, "pods_enabled", json_object_new_int((int)enabled));
	json_object_object_add(o, "pods_known", json_object_new_int((int)known));
	json_object_object_add(o, "connections", json_object_new_int64((int64_t)a->fwd.st.active));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(time(NULL) - a->started)));
	return o;
}

/* `meshsplice dns lookup`: what a pod of mesh would be told. */
static json_object *do_dns_lookup(struct agent *a, const struct ctl_req *rq)
{
	struct pod fake = { .mesh = (char *)(rq->mesh ? rq->mesh : "default") };
	const char *name = rq->name;
	uint16_t qtype = rq->qtype;
	size_t qlen = rq->query_len, alen = 0;
	uint8_t abuf[512];
	struct dns_query q;

	if (!cfg_find_mesh(a->cfg, fake.mesh))
		return reply_err("mesh \"%s\" does not exist in the agent's config", log_escape(fake.mesh));
	json_object *o = reply_ok();
	json_object *addrs = json_object_new_array();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "mesh", json_object_new_string(fake.mesh));
	json_object_object_add(o, "type", json_object_new_string(qtype == DNS_T_A ? "A" : "AAAA"));
	switch (dns_respond(rq->query, qlen, true, a->o->dns_ttl, dns_local, a, &fake, abuf, sizeof(abuf), &alen, &q)) {
	case DNS_ANSWER: {
		/* the answers are A or AAAA records at fixed offsets after the question */
		size_t ancount = (size_t)(abuf[6] << 8 | abuf[7]), off = qlen;
		for (size_t i = 0; i < ancount && off + 12 <= alen; i++) {
			uint16_t rdlen = (uint16_t)(abuf[off + 10] << 8 | abuf[off + 11]);
			struct ms_addr x = { 0 };
			char buf[MS_ADDR_STRLEN];
			if (off + 12 + rdlen > alen)
				break;
			if (rdlen == 4) {
				uint32_t v4;
				memcpy(&v4, abuf + off + 12, 4);
				addr_from_v4(&x, v4);
			} else {
				memcpy(x.b, abuf + off + 12, 16);
			}
			json_object_array_add(addrs, json_object_new_string(addr_fmt(&x, buf, sizeof(buf))));
			off += 12 + rdlen;
		}
		json_object_object_add(o, "answer", json_object_new_string("local"));
		json_object_object_add(o, "ttl", json_object_new_int64(a->o->dns_ttl));
		break;
	}
	case DNS_FORWARD:
		json_object_object_add(o, "answer", json_object_new_string("forwarded"));
		break;
	case DNS_DROP:
		json_object_object_add(o, "answer", json_object_new_string("dropped"));
		break;
	}
	json_object_object_add(o, "addresses", addrs);
	if (!a->dns)
		json_object_object_add(o, "note", json_object_new_string("DNS capture is off on this node"));
	return o;
}

/* ---------- hand-over and drain ---------- */

static void ctl_send(struct ctl_client *c, json_object *resp);
static int ctl_open(struct agent *a);
static int metrics_open(struct agent *a);

static void drain_start(struct agent *a, const char *why)
{
	a->draining = true;
	a->drain_deadline = now_ms() + a->o->drain_timeout_ms;
	log_info("%s: draining %llu connections (at most %u ms), taking no new ones", why,
		 (unsigned long long)a->fwd.st.active, a->o->drain_timeout_ms);
}

static void close_fd_ev(struct agent *a, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* A new agent asks for our sockets: send every enabled pod's listeners and
 * DNS sockets, stop taking anything new, and drain. Our copies stay open
 * (answers to DNS queries in flight leave through them) until we exit. */
static void do_handover(struct agent *a, struct ctl_client *c)
{
	json_object *o = reply_ok(), *arr = json_object_new_array();
	int *fds = NULL;
	size_t n = 0, pods = 0;

	for (struct pod *p = a->pods; p; p = p->next) {
		if (!p->enabled || p->l4.fd < 0)
			continue;
		int slot[POD_FDS] = { p->l4.fd, p->l6.fd };
		json_object *po = json_object_new_object(), *sl = json_object_new_array();
		dnsp_pod_fds(&p->dns, &slot[2]);
		for (int k = 0; k < POD_FDS; k++) {
			if (slot[k] >= 0) {
				fds = xrealloc(fds, n + 1, sizeof(int));
				fds[n] = slot[k];
				json_object_array_add(sl, json_object_new_int((int)n++));
			} else {
				json_object_array_add(sl, json_object_new_int(-1));
			}
		}
		json_object_object_add(po, "name", json_object_new_string(p->name));
		json_object_object_add(po, "fds", sl);
		json_object_array_add(arr, po);
		pods++;
	}
	json_object_object_add(o, "pods", arr);
	json_object_object_add(o, "nfds", json_object_new_int((int)n));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	/* Free the control socket path and the metrics port before the new
	 * agent holds the fds: it binds both as soon as it has them. */
	close_fd_ev(a, &a->ctl_fd);
	close_fd_ev(a, &a->metrics_fd);
	ctl_send(c, o);
	json_object_put(o);
	int r = fdpass_send(c->fd, fds, n);
	free(fds);
	if (r < 0) {
		log_error_errno(r, "hand-over to a new agent failed: %m; this agent carries on");
		if (ctl_open(a) < 0 || (a->o->metrics && metrics_open(a) < 0))
			log_error("after the failed hand-over the control socket or metrics could not be reopened");
		return;
	}
	for (struct pod *p = a->pods; p; p = p->next) {
		if (p->l4.fd >= 0)
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, p->l4.fd, NULL);
		if (p->l6.fd >= 0)
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, p->l6.fd, NULL);
		if (a->dns)
			dnsp_pod_release(a->dns, &p->dns);
	}
	a->handed_over = true;
	log_info("handed %zu pods' sockets (%zu fds) to a new agent", pods, n);
	drain_start(a, "hand-over");
}

/* At start: if an agent answers on our control socket, take its sockets
 * (it drains and exits); the pods are then re-enabled on them, so not one
 * connection queued in a listener is lost. No agent there: nothing to do. */
static void takeover(struct agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	static const char req[] = "{\"cmd\":\"handover\"}\n";
	_cleanup_close_ int fd = -1;
	json_object *resp = NULL, *pods = NULL, *v;
	int *fds = NULL, nfds = 0, r;
	size_t cap = 4u << 20;
	char *line = NULL;

	if (strlen(a->o->control) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	line = xcalloc(1, cap);
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0 || (r = (int)fdpass_read_line(fd, line, cap)) < 0) {
		log_warn("an agent answers at %s but the hand-over failed: %s", a->o->control, strerror(errno));
		goto out;
	}
	resp = json_tokener_parse(line);
	if (!resp || !json_object_object_get_ex(resp, "ok", &v) || !json_object_get_boolean(v) ||
	    !json_object_object_get_ex(resp, "pods", &pods) || !json_object_is_type(pods, json_type_array) ||
	    !json_object_object_get_ex(resp, "nfds", &v) || (nfds = json_object_get_int(v)) < 0 || nfds > 65536) {
		log_warn("the agent at %s refused the hand-over: %s", a->o->control,
			 resp ? log_escape(req_str(resp, "error")) : "malformed answer");
		goto out;
	}
	fds = xcalloc((size_t)nfds + 1, sizeof(int));
	if ((r = fdpass_recv(fd, fds, (size_t)nfds)) < 0) {
		log_warn_errno(r, "hand-over: receiving the sockets failed: %m");
		goto out;
	}
	a->n_inh = json_object_array_length(pods);
	a->inh = xcalloc(a->n_inh + 1, sizeof(*a->inh));
	for (size_t i = 0; i < a->n_inh; i++) {
		json_object *po = json_object_array_get_idx(pods, i), *sl = NULL;
		const char *name = req_str(po, "name");
		a->inh[i].name = xstrdup(name ? name : "");
		json_object_object_get_ex(po, "fds", &sl);
		for (int k = 0; k < POD_FDS; k++) {
			int idx = sl ? json_object_get_int(json_object_array_get_idx(sl, (size_t)k)) : -1;
			a->inh[i].fds[k] = idx >= 0 && idx < nfds ? fds[idx] : -1;
			if (idx >= 0 && idx < nfds)
				fds[idx] = -1;
		}
	}
	for (int i = 0; i < nfds; i++) /* named by no pod: not ours to keep */
		if (fds[i] >= 0)
			close(fds[i]);
	json_object *pid = NULL;
	json_object_object_get_ex(resp, "pid", &pid);
	log_info("took over the sockets of %zu pods from the running agent (pid %d); it drains and exits", a->n_inh,
		 pid ? json_object_get_int(pid) : 0);
out:
	free(fds);
	free(line);
	json_object_put(resp);
}

/* Sockets handed over for pods we did not re-enable. */
static void inherited_clear(struct agent *a)
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

/* One request line; NULL when the answer was sent already (a hand-over). */
static json_object *handle_request(struct agent *a, const char *line, struct ctl_client *c)
{
	struct ctl_req rq;
	json_object *resp = NULL;
	char *err = NULL;

	if (ctl_parse(line, &rq, &err) < 0) {
		resp = reply_err("%s", err ? err : "malformed request");
		free(err);
		ctl_req_free(&rq);
		return resp;
	}
	switch (rq.cmd) {
	case CTL_ENABLE: resp = do_enable(a, &rq); break;
	case CTL_DISABLE: resp = do_disable(a, &rq); break;
	case CTL_FORGET: resp = do_forget(a, &rq); break;
	case CTL_PODS: resp = do_pods(a); break;
	case CTL_CONNS: resp = do_conns(a); break;
	case CTL_STATS: resp = do_stats(a); break;
	case CTL_STATUS: resp = do_status(a); break;
	case CTL_DNS_LOOKUP: resp = do_dns_lookup(a, &rq); break;
	case CTL_GET:
		resp = reply_ok();
		json_object_object_add(resp, "config", cfg_render_json(a->cfg));
		break;
	case CTL_RELOAD: {
		uint64_t before = a->reloads_ok;
		reload(a, "requested");
		resp = a->reloads_ok > before ? reply_ok() :
						reply_err("reload failed: %s", a->last_reload_error ? a->last_reload_error : "?");
		break;
	}
	case CTL_HANDOVER:
		if (!c || a->draining)
			resp = reply_err("this agent is draining already");
		else
			do_handover(a, c);
		break;
	}
	ctl_req_free(&rq);
	return resp;
}

static void ctl_close(struct agent *a, struct ctl_client *c)
{
	DLIST_REMOVE(a->clients, c);
	a->n_clients[c->ev.kind == EV_METRICS_CLIENT]--;
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->ev.dead = true;
	ev_defer_free(c);
}

/* Track a new client of kind, or close fd when there are too many. */
static void client_add(struct agent *a, int fd, enum ev_kind kind)
{
	size_t *n = &a->n_clients[kind == EV_METRICS_CLIENT];

	if (*n >= MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct ctl_client *c = xcalloc(1, sizeof(*c));
	c->ev.kind = kind;
	c->fd = fd;
	c->deadline = now_ms() + CLIENT_TIMEOUT_MS;
	if (ep_add(a, fd, &c->ev, EPOLLIN) < 0) {
		close(fd);
		free(c);
		return;
	}
	DLIST_PUSH(a->clients, c);
	(*n)++;
}

/* Clients that sent no whole request in time (slowloris) are closed. */
static void clients_expire(struct agent *a)
{
	uint64_t now = now_ms();

	for (struct ctl_client *c = a->clients, *next; c; c = next) {
		next = c->next;
		if (now >= c->deadline)
			ctl_close(a, c);
	}
}

/* Replies are small: sent in one go, blocking for at most a second; a client
 * that does not read by then loses its reply. */
static void client_send(int fd, const char *s, size_t len)
{
	struct timeval tv = { .tv_sec = 1 };
	size_t off = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n <= 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Read what is there into c->buf: 1 when bytes arrived, 0 when the client
 * has nothing more for now, -1 when it is gone. */
static int client_fill(struct ctl_client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		return 1;
	}
}

static void ctl_send(struct ctl_client *c, json_object *resp)
{
	const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *line = xasprintf("%s\n", s);

	client_send(c->fd, line, strlen(line));
}

static void ctl_readable(struct agent *a, struct ctl_client *c)
{
	for (;;) {
		int f = client_fill(c);
		if (f == 0)
			return;
		if (f < 0)
			break;
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl || c->len >= sizeof(c->buf) - 1) {
			json_object *resp;
			if (!nl)
				resp = reply_err("request longer than %d bytes", CTL_BUF - 1);
			else {
				*nl = '\0';
				resp = handle_request(a, c->buf, c);
			}
			if (resp)
				ctl_send(c, resp);
			json_object_put(resp);
			break;
		}
	}
	ctl_close(a, c);
}

static void ctl_accept(struct agent *a)
{
	for (;;) {
		int fd = accept_shed(a->ctl_fd, NULL, NULL);
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (fd == -EMFILE)
			continue;
		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != 0 && cred.uid != geteuid())) {
			log_warn("control: refused a client with uid %u (root only)", (unsigned)cred.uid);
			json_object *e = reply_err("permission denied: the control socket is for root");
			struct ctl_client tmp = { .fd = fd };
			ctl_send(&tmp, e);
			json_object_put(e);
			close(fd);
			continue;
		}
		client_add(a, fd, EV_CONTROL_CLIENT);
	}
}

static int ctl_open(struct agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *dir = xstrdup(a->o->control);
	char *slash = strrchr(dir, '/');
	mode_t old;
	int fd;

	if (strlen(a->o->control) >= sizeof(sa.sun_path))
		return log_error_errno(ENAMETOOLONG, "control socket path %s: %m", a->o->control);
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_error_errno(errno, "mkdir %s: %m", dir);
	}
	strcpy(sa.sun_path, a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a dead agent: remove it only if nobody answers. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return log_error_errno(EADDRINUSE, "another agent is running at %s", a->o->control);
	}
	close(fd);
	unlink(a->o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		close(fd);
		return log_error_errno(errno, "bind %s: %m", a->o->control);
	}
	umask(old);
	if (listen(fd, 64) < 0) {
		close(fd);
		return -errno;
	}
	a->ctl_fd = fd;
	a->ctl_ev.kind = EV_CONTROL_LISTEN;
	return ep_add(a, fd, &a->ctl_ev, EPOLLIN);
}

/* ---------- Prometheus metrics (loopback only) ---------- */

/* Label values are ours (pod names checked at enable, fixed reason names),
 * still escaped as the exposition format requires. */
static const char *mlabel(const char *s)
{
	/* a ring: several labels go into one line */
	static char ring[4][600];
	static unsigned next;
	char *buf = ring[next++ % 4];
	size_t o = 0;

	for (; s && *s && o + 3 < sizeof(ring[0]); s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = '\0';
	return buf;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* How many of the sorted strings v equal key (two binary searches). */
static size_t count_sorted(const char **v, size_t n, const char *key)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

static char *metrics_text(struct agent *a)
{
	const struct fwd_stats *s = &a->fwd.st;
	struct strbuf b = { 0 };
	size_t enabled = 0;

	strbuf_printf(&b, "# HELP meshsplice_connections_opened_total Proxied connections started.\n"
		 "# TYPE meshsplice_connections_opened_total counter\nmeshsplice_connections_opened_total %llu\n",
	     (unsigned long long)s->started);
	strbuf_printf(&b, "# HELP meshsplice_connections_active Proxied connections open now.\n"
		 "# TYPE meshsplice_connections_active gauge\nmeshsplice_connections_active %llu\n",
	     (unsigned long long)s->active);
	strbuf_printf(&b, "# HELP meshsplice_connections_refused_total Connections refused, by reason.\n"
		 "# TYPE meshsplice_connections_refused_total counter\n");
	for (int i = 0; i < REFUSE__MAX; i++)
		strbuf_printf(&b, "meshsplice_connections_refused_total{reason=\"%s\"} %llu\n", refuse_names[i],
		     (unsigned long long)a->refused[i]);
	strbuf_printf(&b, "# HELP meshsplice_connections_ended_total Proxied connections ended, by how.\n"
		 "# TYPE meshsplice_connections_ended_total counter\n"
		 "meshsplice_connections_ended_total{how=\"completed\"} %llu\n"
		 "meshsplice_connections_ended_total{how=\"reset_client\"} %llu\n"
		 "meshsplice_connections_ended_total{how=\"reset_upstream\"} %llu\n"
		 "meshsplice_connections_ended_total{how=\"connect_failed\"} %llu\n"
		 "meshsplice_connections_ended_total{how=\"idle_timeout\"} %llu\n",
	     (unsigned long long)s->completed, (unsigned long long)s->reset_client,
	     (unsigned long long)s->reset_upstream, (unsigned long long)s->connect_failed,
	     (unsigned long long)s->idle_timeout);
	strbuf_printf(&b, "# HELP meshsplice_bytes_total Bytes forwarded (up: pod to upstream).\n"
		 "# TYPE meshsplice_bytes_total counter\nmeshsplice_bytes_total{direction=\"up\"} %llu\n"
		 "meshsplice_bytes_total{direction=\"down\"} %llu\n",
	     (unsigned long long)s->bytes_up, (unsigned long long)s->bytes_down);
	strbuf_printf(&b, "# HELP meshsplice_tls_handshakes_total TLS handshakes to endpoints.\n"
		 "# TYPE meshsplice_tls_handshakes_total counter\nmeshsplice_tls_handshakes_total{resumed=\"false\"} %llu\n"
		 "meshsplice_tls_handshakes_total{resumed=\"true\"} %llu\n",
	     (unsigned long long)(s->tls_handshakes - s->tls_resumed), (unsigned long long)s->tls_resumed);
	strbuf_printf(&b, "# HELP meshsplice_tls_failures_total TLS failures, by reason.\n"
		 "# TYPE meshsplice_tls_failures_total counter\n");
	for (int i = 0; i < TLS_FAIL__MAX; i++)
		strbuf_printf(&b, "meshsplice_tls_failures_total{reason=\"%s\"} %llu\n", tls_fail_name((enum tls_fail)i),
		     (unsigned long long)s->tls_fail[i]);
	if (a->dns) {
		struct dnsp_stats ds = dnsp_get_stats(a->dns);
		strbuf_printf(&b, "# HELP meshsplice_dns_queries_total DNS queries of enabled pods, by outcome.\n"
			 "# TYPE meshsplice_dns_queries_total counter\n"
			 "meshsplice_dns_queries_total{result=\"local\"} %llu\n"
			 "meshsplice_dns_queries_total{result=\"forwarded\"} %llu\n"
			 "meshsplice_dns_queries_total{result=\"failed\"} %llu\n"
			 "meshsplice_dns_queries_total{result=\"malformed\"} %llu\n",
		     (unsigned long long)ds.local, (unsigned long long)ds.forwarded, (unsigned long long)ds.failed,
		     (unsigned long long)ds.malformed);
	}
	strbuf_printf(&b, "# HELP meshsplice_pod_connections_active Open connections per enabled pod.\n"
		 "# TYPE meshsplice_pod_connections_active gauge\n");
	/* one pass over the connections, sorted labels, a count per label */
	size_t n_conns = 0, k = 0;
	for (struct fwd_conn *c = a->fwd.head; c; c = c->next)
		n_conns++;
	const char **pods = xcalloc(n_conns ? n_conns : 1, sizeof(char *));
	const char **svcs = xcalloc(n_conns ? n_conns : 1, sizeof(char *));
	for (struct fwd_conn *c = a->fwd.head; c; c = c->next, k++) {
		pods[k] = c->pod;
		svcs[k] = c->service;
	}
	if (n_conns > 1) {
		qsort(pods, n_conns, sizeof(char *), str_cmp);
		qsort(svcs, n_conns, sizeof(char *), str_cmp);
	}
	for (struct pod *p = a->pods; p; p = p->next) {
		enabled += p->enabled;
		if (p->enabled)
			strbuf_printf(&b, "meshsplice_pod_connections_active{pod=\"%s\",mesh=\"%s\"} %zu\n",
				      mlabel(p->name), p->mesh, count_sorted(pods, n_conns, p->name));
	}
	/* per service: bounded by the config, not by traffic */
	strbuf_printf(&b, "# HELP meshsplice_service_connections_active Open connections per service.\n"
		      "# TYPE meshsplice_service_connections_active gauge\n");
	for (size_t i = 0; i < a->cfg->n_svcs; i++) {
		const struct ms_service *sv = &a->cfg->svcs[i];
		char label[160];
		snprintf(label, sizeof(label), "%s/%s", cfg_kind_name(sv->kind), sv->name);
		strbuf_printf(&b, "meshsplice_service_connections_active{service=\"%s\",mesh=\"%s\"} %zu\n",
			      mlabel(label), mlabel(sv->mesh), count_sorted(svcs, n_conns, label));
	}
	free(pods);
	free(svcs);
	strbuf_printf(&b, "# HELP meshsplice_pods_enabled Pods whose traffic is steered.\n"
		 "# TYPE meshsplice_pods_enabled gauge\nmeshsplice_pods_enabled %zu\n", enabled);
	strbuf_printf(&b, "# HELP meshsplice_config_reloads_total Config reloads, by result.\n"
		 "# TYPE meshsplice_config_reloads_total counter\nmeshsplice_config_reloads_total{result=\"ok\"} %llu\n"
		 "meshsplice_config_reloads_total{result=\"failed\"} %llu\n",
	     (unsigned long long)a->reloads_ok, (unsigned long long)a->reloads_failed);
	if (a->bpf) {
		uint64_t cnt[MS_CNT__MAX];
		bpf_engine_counters(a->bpf, cnt);
		strbuf_printf(&b, "# HELP meshsplice_bpf_connect_total connect() calls seen by the BPF hooks, by verdict.\n"
			 "# TYPE meshsplice_bpf_connect_total counter\n");
		for (int i = 0; i < MS_CNT__MAX; i++)
			strbuf_printf(&b, "meshsplice_bpf_connect_total{verdict=\"%s\"} %llu\n", bpf_counter_name(i),
			     (unsigned long long)cnt[i]);
	}
	return b.s;
}

static void metrics_readable(struct agent *a, struct ctl_client *c)
{
	for (;;) {
		int f = client_fill(c);
		if (f == 0)
			return;
		if (f < 0)
			break;
		if (!strstr(c->buf, "\r\n\r\n") && !strstr(c->buf, "\n\n") && c->len < 8192)
			continue;
		bool get = strncmp(c->buf, "GET /metrics ", 13) == 0 || strncmp(c->buf, "GET / ", 6) == 0;
		_cleanup_free_ char *body = get ? metrics_text(a) : xstrdup("not found\n");
		_cleanup_free_ char *head = xasprintf("HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
						      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
						      get ? "200 OK" : "404 Not Found", strlen(body));
		client_send(c->fd, head, strlen(head));
		client_send(c->fd, body, strlen(body));
		break;
	}
	ctl_close(a, c);
}

static void metrics_accept(struct agent *a)
{
	for (;;) {
		int fd = accept_shed(a->metrics_fd, NULL, NULL);
		if (fd == -EMFILE)
			continue;
		if (fd < 0)
			return;
		client_add(a, fd, EV_METRICS_CLIENT);
	}
}

/* host:port on loopback only: metrics say which pods talk to what. */
int agent_parse_metrics(const char *spec, struct sockaddr_storage *ss, socklen_t *ret_len, char **ret_err)
{
	char host[128];
	const char *colon = strrchr(spec, ':');
	struct ms_addr ad;
	unsigned long port;
	char *end;

	if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
		*ret_err = xasprintf("--metrics %s: expected HOST:PORT", spec);
		return -EINVAL;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (host[0] == '[' && strlen(host) > 2 && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	port = strtoul(colon + 1, &end, 10);
	if (addr_parse(host, &ad) < 0 || *end || !colon[1] || port == 0 || port > 65535) {
		*ret_err = xasprintf("--metrics %s: expected an IP literal and a port", spec);
		return -EINVAL;
	}
	if (!addr_is_local(&ad) || (addr_is_v4(&ad) ? addr_to_v4(&ad) == 0 : ad.b[15] == 0)) {
		*ret_err = xasprintf("--metrics %s: binds loopback only (127.0.0.0/8 or ::1)", spec);
		return -EINVAL;
	}
	*ret_len = addr_to_sockaddr(&ad, (uint16_t)port, false, ss);
	return 0;
}

static int metrics_open(struct agent *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *err = NULL;
	int fd, one = 1;

	if (agent_parse_metrics(a->o->metrics, &ss, &len, &err) < 0) {
		log_error("%s", err);
		free(err);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "--metrics %s: %m", a->o->metrics);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		int r = log_error_errno(errno, "--metrics %s: %m", a->o->metrics);
		close(fd);
		return r;
	}
	a->metrics_fd = fd;
	a->metrics_ev.kind = EV_METRICS_LISTEN;
	log_info("metrics on http://%s/metrics", a->o->metrics);
	return ep_add(a, fd, &a->metrics_ev, EPOLLIN);
}

/* ---------- restore after restart ---------- */

static void restore_pods(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "pods.json");
	char *text = NULL;
	size_t len;
	json_object *arr;
	uint64_t *cookies = NULL;
	size_t n_cookies = 0, restored = 0, gone = 0;

	if (read_file(path, 16u << 20, &text, &len) == 0) {
		arr = json_tokener_parse(text);
		free(text);
		for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++) {
			json_object *x = json_object_array_get_idx(arr, i), *v;
			const char *name = req_str(x, "name"), *netns = req_str(x, "netns"), *mesh = req_str(x, "mesh");
			if (!name || !netns || !mesh)
				continue;
			struct pod *p = pod_new(name, netns, mesh);
			if (req_str(x, "container"))
				p->container = xstrdup(req_str(x, "container"));
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
			bool want = json_object_object_get_ex(x, "enabled", &v) && json_object_get_boolean(v);
			int fd = netns_open(netns);
			if (fd < 0) {
				log_info("pod %s: netns %s is gone; forgetting the pod", name, netns);
				gone++;
				pod_free(p);
				continue;
			}
			close(fd);
			p->next = a->pods;
			a->pods = p;
			if (want) {
				const char *why = "";
				int r = pod_activate(a, p, &why);
				if (r < 0) {
					log_error_errno(r, "pod %s: re-enable after restart: %s: %m", name, why);
					pod_deactivate(a, p);
				} else {
					restored++;
				}
			}
		}
		json_object_put(arr);
	}
	/* Pods a fail-open CNI ADD recorded while we were down. */
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
				json_object *resp = do_enable(a, &rq);
				json_object *ok = NULL;
				json_object_object_get_ex(resp, "ok", &ok);
				log_info("pending CNI record %s: %s", de->d_name,
					 ok && json_object_get_boolean(ok) ? "pod enabled" : req_str(resp, "error"));
				json_object_put(resp);
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
	/* Pods in the pinned map that we no longer know: stale, remove. */
	if (a->bpf)
		bpf_engine_pod_list(a->bpf, &cookies, &n_cookies);
	for (size_t i = 0; i < n_cookies; i++) {
		bool known = false;
		for (struct pod *p = a->pods; p; p = p->next)
			known |= p->enabled && p->cookie == cookies[i];
		if (!known) {
			bpf_engine_pod_del(a->bpf, cookies[i]);
			log_info("removed stale pod entry 0x%llx from the pinned map", (unsigned long long)cookies[i]);
		}
	}
	free(cookies);
	if (restored || gone)
		log_info("pod registry: %zu pods re-enabled, %zu forgotten (netns gone)", restored, gone);
	save_pods(a);
}

/* ---------- main loop ---------- */

static void signals_block(sigset_t *ss)
{
	/* Before any thread exists: threads inherit the mask, and a process
	 * signal goes to any thread that does not block it. */
	sigemptyset(ss);
	sigaddset(ss, SIGTERM);
	sigaddset(ss, SIGINT);
	sigaddset(ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, ss, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int setup_fds(struct agent *a, const sigset_t *ss)
{
	struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L }, .it_value = { 0, TICK_MS * 1000000L } };

	a->sig_fd = signalfd(-1, ss, SFD_CLOEXEC | SFD_NONBLOCK);
	a->sig_ev.kind = EV_SIGNAL;
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	timerfd_settime(a->timer_fd, 0, &its, NULL);
	a->timer_ev.kind = EV_TIMER;
	a->res_ev.kind = EV_RESOLVER;
	if (a->sig_fd < 0 || a->timer_fd < 0)
		return -errno;
	ep_add(a, a->sig_fd, &a->sig_ev, EPOLLIN);
	ep_add(a, a->timer_fd, &a->timer_ev, EPOLLIN);
	ep_add(a, resolver_fd(a->res), &a->res_ev, EPOLLIN);
	a->ino_fd = -1;
	if (a->o->config_dir) {
		a->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (a->ino_fd < 0 ||
		    inotify_add_watch(a->ino_fd, a->o->config_dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0)
			log_warn_errno(errno, "watch %s: %m; reload with SIGHUP or 'meshsplice reload'", a->o->config_dir);
		else {
			a->ino_ev.kind = EV_INOTIFY;
			ep_add(a, a->ino_fd, &a->ino_ev, EPOLLIN);
		}
	}
	return 0;
}

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(a, "SIGHUP");
		} else if (a->draining || a->fwd.st.active == 0) {
			log_info("%s: stopping; pods stay enabled in the pinned maps",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			a->stop = true;
		} else {
			/* New connections are refused (fail-closed) or go direct
			 * (fail-open) from now on; the established ones finish. */
			for (struct pod *p = a->pods; p; p = p->next)
				pod_close_sockets(a, p);
			/* a new agent may start (and listen) while we drain */
			if (a->ctl_fd >= 0) {
				close_fd_ev(a, &a->ctl_fd);
				unlink(a->o->control);
			}
			close_fd_ev(a, &a->metrics_fd);
			drain_start(a, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		}
	}
}

static void on_inotify(struct agent *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(a->ino_fd, buf, sizeof(buf)) > 0)
		;
	a->reload_at = now_ms() + RELOAD_DEBOUNCE_MS;
}

static void on_timer(struct agent *a)
{
	uint64_t n;

	if (read(a->timer_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing expired */
	}
	fwd_tick(&a->fwd);
	clients_expire(a);
	if (a->draining && (a->fwd.st.active == 0 || now_ms() >= a->drain_deadline)) {
		if (a->fwd.st.active)
			log_warn("drain timeout: resetting %llu connections still open",
				 (unsigned long long)a->fwd.st.active);
		else
			log_info("drained: every connection ended");
		a->stop = true;
	}
	if (a->dns)
		dnsp_tick(a->dns);
	if (a->pending)
		pending_retry(a, true);
	if (a->reload_at && now_ms() >= a->reload_at && !a->draining) {
		a->reload_at = 0;
		reload(a, "config directory changed");
	}
}

/* Each proxied connection holds two fds (three or four while a pipe is
 * lent to it): take the soft RLIMIT_NOFILE up to the hard one, as servers
 * do, and say when even that cannot carry --max-conns. */
static void raise_nofile(const struct agent_opts *o)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)was,
				  (unsigned long long)rl.rlim_max);
		else
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2 * (rlim_t)o->max_conns + 256)
		log_warn("RLIMIT_NOFILE is %llu: room for about %llu connections, fewer than --max-conns %u; "
			 "past that new connections are reset (raise LimitNOFILE)",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur > 256 ? (rl.rlim_cur - 256) / 2 : 0),
			 o->max_conns);
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .o = o, .ctl_fd = -1, .ino_fd = -1, .sig_fd = -1, .timer_fd = -1, .metrics_fd = -1 };
	struct bpf_engine_opts bo = { .bpffs_dir = o->bpffs, .cgroup = o->cgroup, .mark = o->mark };
	struct fwd_opts fo = { .mark = o->mark, .pipe_size = o->pipe_size, .no_nodelay = o->no_nodelay,
			       .sockbuf = o->sockbuf, .pipe_pool = o->pipe_pool,
			       .connect_timeout_ms = o->connect_timeout_ms, .idle_timeout_ms = o->idle_timeout_ms,
			       .halfclose_timeout_ms = o->halfclose_timeout_ms,
			       .max_conns = o->max_conns };
	struct ms_config *c = NULL;
	struct epoll_event *evs = NULL;
	sigset_t ss;
	int r;

	signals_block(&ss);
	a.started = time(NULL);
	raise_nofile(o);
	if ((r = netns_init()) < 0)
		return log_error_errno(r, "open own netns: %m");
	if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(errno, "state dir %s: %m", o->state_dir);
	{
		_cleanup_free_ char *vp = state_path(&a, "vips");
		char *text;
		size_t len;
		if (read_file(vp, 64u << 20, &text, &len) == 0) {
			cfg_vip_table_parse(text, &a.vips);
			free(text);
		}
	}
	if (load_config(&a, &c) < 0) {
		log_error("no valid config: not starting (fix the files above)");
		r = -EINVAL;
		goto out;
	}
	log_info("config: %s: %zu files, %zu meshes, %zu services", o->config_dir ? o->config_dir : "<embedded default>",
		 c->n_files, c->n_meshes, c->n_svcs);
	if (streq(o->engine, "iptables") || (streq(o->engine, "auto") && !bpf_engine_supported())) {
		a.engine = ENGINE_IPTABLES;
		engine_name = "iptables";
		if (tp_detect_backend(-1, &a.backend) < 0) {
			r = log_error_errno(ENOENT, "iptables engine: no iptables-nft-save or iptables-legacy-save found");
			cfg_unref(c);
			goto out;
		}
		log_info("iptables engine%s: %s back end, REDIRECT to port %u in each pod's netns, agent mark 0x%x",
			 streq(o->engine, "auto") ? " (cgroup BPF unavailable)" : "",
			 a.backend == TP_BACKEND_NFT ? "nft" : "legacy", o->listen_port, o->mark);
	} else {
		if ((r = bpf_engine_open(&bo, &a.bpf)) < 0) {
			cfg_unref(c);
			goto out;
		}
		log_info("bpf engine: programs attached to %s, state pinned in %s, agent mark 0x%x", o->cgroup,
			 o->bpffs, o->mark);
	}
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	fwd_init(&a.fwd, a.epfd, &fo);
	if ((r = resolver_new(o->dns_refresh_ms, &a.res)) < 0) {
		log_error_errno(r, "start the resolver thread: %m");
		cfg_unref(c);
		goto out;
	}
	if (!o->no_dns) {
		struct dnsp_opts dno = { .mark = o->mark, .port = o->dns_port, .ttl = o->dns_ttl,
					 .timeout_ms = o->dns_timeout_ms, .max_pending = 4096, .max_tcp = 256 };
		struct dnsp_hooks h = { .ctx = &a, .local = dns_local, .origin = dns_origin };
		dnsp_new(a.epfd, &dno, &h, &a.dns);
		log_info("mesh DNS: UDP and TCP port 53 of enabled pods answered on port %u of their loopback (TTL %u s)",
			 o->dns_port, o->dns_ttl);
	}
	apply_config(&a, c);
	takeover(&a);
	if ((r = setup_fds(&a, &ss)) < 0 || (r = ctl_open(&a)) < 0 ||
	    (o->metrics && (r = metrics_open(&a)) < 0))
		goto out;
	restore_pods(&a);
	inherited_clear(&a);
	log_info("meshspliced %s ready: control socket %s", MS_VERSION, o->control);

	unsigned batch = o->epoll_batch ? o->epoll_batch : 256;
	evs = xcalloc(batch, sizeof(*evs));
	while (!a.stop) {
		int n = epoll_wait(a.epfd, evs, (int)batch, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = log_error_errno(errno, "epoll_wait: %m");
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;
			if (ev->dead)
				continue; /* freed by an event earlier in this batch */
			switch (ev->kind) {
			case EV_FWD_CLIENT:
			case EV_FWD_UPSTREAM:
				fwd_event(&a.fwd, ev, evs[i].events);
				break;
			case EV_POD_LISTENER:
				pod_accept(&a, (struct listener *)ev);
				break;
			case EV_CONTROL_LISTEN:
				ctl_accept(&a);
				break;
			case EV_CONTROL_CLIENT:
				ctl_readable(&a, (struct ctl_client *)ev);
				break;
			case EV_INOTIFY:
				on_inotify(&a);
				break;
			case EV_SIGNAL:
				on_signal(&a);
				break;
			case EV_TIMER:
				on_timer(&a);
				break;
			case EV_METRICS_LISTEN:
				metrics_accept(&a);
				break;
			case EV_METRICS_CLIENT:
				metrics_readable(&a, (struct ctl_client *)ev);
				break;
			case EV_RESOLVER:
				resolver_drain(a.res);
				pending_retry(&a, false);
				break;
			case EV_DNS_UDP:
			case EV_DNS_LISTEN:
			case EV_DNS_UPSTREAM:
			case EV_DNS_TCP:
			case EV_DNS_TCP_UP:
				dnsp_event(a.dns, ev, evs[i].events);
				break;
			}
		}
		ev_reap();
	}
	r = 0;
out:
	free(evs);
	while (a.pending) {
		struct pending *pd = a.pending;
		a.pending = pd->next;
		fwd_reset_fd(pd->cfd);
		free(pd);
	}
	for (struct pod *p = a.pods, *next; p; p = next) {
		next = p->next;
		/* Keep the map entries: pods stay enabled across the restart. */
		pod_close_sockets(&a, p);
		fwd_forget_netns(&a.fwd, p->nsfd);
		netns_close(p->nsfd);
		pod_free(p);
	}
	while (a.clients)
		ctl_close(&a, a.clients);
	dnsp_free(a.dns);
	if (a.epfd > 0)
		fwd_fini(&a.fwd);
	resolver_free(a.res);
	bpf_engine_close(a.bpf);
	if (a.ctl_fd >= 0) {
		close(a.ctl_fd);
		unlink(o->control);
	}
	inherited_clear(&a);
	if (a.ino_fd >= 0)
		close(a.ino_fd);
	if (a.metrics_fd >= 0)
		close(a.metrics_fd);
	if (a.sig_fd >= 0)
		close(a.sig_fd);
	if (a.timer_fd >= 0)
		close(a.timer_fd);
	if (a.epfd > 0)
		close(a.epfd);
	svc_tls_clear(a.tls, a.n_tls);
	cfg_unref(a.cfg);
	cfg_vip_table_clear(&a.vips);
	free(a.last_reload_error);
	ev_fini();
	return r;
}

int agent_uninstall(const struct agent_opts *o)
{
	_cleanup_free_ char *path = xasprintf("%s/pods.json", o->state_dir);
	char *text = NULL;
	size_t len;

	/* iptables rules live in the pods' netns: remove them there */
	if (read_file(path, 16u << 20, &text, &len) == 0) {
		json_object *arr = json_tokener_parse(text);
		for (size_t i = 0; arr && json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++) {
			const char *ns = req_str(json_object_array_get_idx(arr, i), "netns");
			enum tp_backend b;
			int fd = ns ? netns_open(ns) : -1;
			char *err = NULL;
			if (fd < 0)
				continue;
			if (tp_detect_backend(fd, &b) == 0 && tp_uninstall(fd, b, &err) < 0)
				log_warn("uninstall iptables rules in %s: %s", ns, err ? err : "failed");
			free(err);
			close(fd);
		}
		json_object_put(arr);
		free(text);
	}
	int r = bpf_engine_uninstall(o->bpffs);

	if (r < 0)
		return log_error_errno(r, "uninstall %s: %m", o->bpffs);
	log_info("uninstalled: programs detached, maps and links unpinned from %s", o->bpffs);
	return 0;
}

int agent_find_cgroup2(char **ret)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint opts ... - fstype source superopts */
		char root[PATH_MAX], mnt[PATH_MAX];
		const char *dash = strstr(line, " - ");
		if (!dash || strncmp(dash + 3, "cgroup2 ", 8) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) == 2 && streq(root, "/")) {
			fclose(f);
			*ret = xstrdup(mnt);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}
