/* SPDX-License-Identifier: MIT */
#pragma once

/* The agent's types and the functions its rooms share. Each file owns a
 * concern: agent.c (start, loop, signals, timer), pods.c (registry,
 * listeners, state file), route.c (deciding and acting on one connection),
 * reload.c (config snapshots), control.c (the control socket and hand-over),
 * clients.c (line clients of control and metrics), metrics.c (counters).
 *
 * What one event loop owns (and a loop per core would each own): the
 * forwarder's connections, pipes and TLS sessions, the listeners' accept
 * side, the pending clients and the line clients. What all share read-only:
 * the config snapshot (refcounted, immutable), the TLS contexts built for it
 * and the pinned maps. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "agent.h"
#include "ctlproto.h"
#include "dnsproxy.h"
#include "ev.h"
#include "fwd.h"
#include "health.h"
#include "resolver.h"
#include "route.h"
#include "steer.h"

#define MAX_EXCL_CIDRS CTL_MAX_EXCL_CIDRS

struct agent;
struct pod;

struct listener {
	struct ev ev;
	struct agent *a;
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
	struct ms_addr dns_servers[CTL_MAX_DNS_SERVERS]; /* its own resolvers, as enable gave them */
	size_t n_dns_servers;
	struct dnsp_pod dns;
	unsigned active; /* its connections in the forwarder */
	/* Enforced without its listener or DNS responder (-errno of the last try,
	 * 0 when open): what needs them is refused, and the timer retries. */
	int listen_err, dns_err;
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

/* A client whose destination only a MeshPassthrough Domain match may
 * allow: its first bytes are looked at (MSG_PEEK) before anything goes
 * upstream. Silent for PEEK_SILENT_MS (a server-speaks-first protocol):
 * decided without a name; at most PEEK_MAX bytes and the connect timeout. */
#define PEEK_SILENT_MS 1000
struct peeking {
	struct ev ev;
	struct agent *a;
	int cfd;
	struct pod *pod;
	struct ms_addr orig;
	uint16_t port;
	uint64_t silent_ms, deadline_ms;
	struct peeking *next;
};

/* A control or metrics client: one request, one answer, within
 * CLIENT_TIMEOUT_MS; at most MAX_CLIENTS of each kind at once. */
#define CLIENT_TIMEOUT_MS 5000
#define MAX_CLIENTS 64
#define CLIENT_BUF 65536

enum client_kind { CLIENT_CONTROL, CLIENT_METRICS, CLIENT__MAX };

struct line_client;
/* Is c->buf a whole request yet? Then serve it (the client is closed after). */
typedef bool (*client_done_fn)(const struct line_client *c);
typedef void (*client_fn)(struct line_client *c);

struct line_client {
	struct ev ev;
	struct agent *a;
	enum client_kind kind;
	client_done_fn done;
	client_fn serve;
	int fd;
	uint64_t deadline;
	struct line_client *prev, *next;
	size_t len;
	char buf[CLIENT_BUF];
};

/* A pod's sockets as one agent hands them to the next: its two listeners,
 * then the DNS responder's u4, u6, t4, t6 (-1 where there is none). */
#define POD_FDS 6
struct inherited {
	char *name;
	int fds[POD_FDS];
};

/* Counters of the agent itself (the forwarder and engines keep theirs). */
struct agent_stats {
	uint64_t refused[REFUSE__MAX];
	uint64_t accepted;
	uint64_t reset_before_accept; /* client gone (reset) before we accepted */
	uint64_t reloads_ok, reloads_failed;
	uint64_t probes, probes_failed; /* active health probes done, and those that failed */
};

struct agent {
	const struct agent_opts *o;
	int epfd;
	struct steer *steer;
	struct ev ctl_ev, metrics_ev, ino_ev, sig_ev, timer_ev, res_ev;
	int ctl_fd, metrics_fd, ino_fd, sig_fd, timer_fd;
	/* config in force, and what the agent keeps beside it */
	struct ms_config *cfg;
	struct route_tls *tls; /* one per service of cfg */
	struct route_lb lb;    /* round-robin cursors, per service port of cfg */
	struct ms_vip_table vips;
	uint64_t reload_at;
	struct reload_job *job; /* the load under way, or NULL */
	bool reload_again;      /* asked for while job ran */
	int *reload_waiters;    /* control clients waiting for the next load */
	size_t n_reload_waiters;
	uint64_t ticks; /* of the timer, since start */
	uint64_t files_reload_ms; /* when reload_watch_files last asked */
	char *last_reload_error;
	struct fwd fwd;
	struct resolver *res;
	struct dnsp *dns; /* NULL: DNS capture off on this node */
	struct line_client *clients;
	size_t n_clients[CLIENT__MAX];
	bool draining;     /* no new connections; exit when the last one ends */
	bool handed_over;  /* a new agent has our listeners and control socket path */
	uint64_t drain_deadline;
	struct inherited *inh; /* sockets a previous agent handed over, by pod */
	size_t n_inh;
	struct pod *pods;
	size_t n_enabled;
	struct pending *pending;
	struct peeking *peeking;
	struct agent_stats st;
	struct health health;   /* endpoint health (health-agent.c feeds it) */
	uint64_t health_synced; /* health.gen the engine's sets were last written for */
	bool health_adopted;    /* the pinned sets' health taken over (at the first config) */
	struct probe *probes;   /* active probes in flight */
	uint64_t probe_at;      /* the next probe round */
	uint64_t fd_log_ms;
	/* resolvers any pod may use: --dns-upstream, else the node's resolv.conf */
	struct ms_addr dns_upstream[CTL_MAX_DNS_SERVERS];
	size_t n_dns_upstream;
	time_t started;
	bool stop;
};

/* agent.c */
void agent_drain_start(struct agent *a, const char *why);
void agent_close_fd_ev(struct agent *a, int *fd);

/* pods.c */
struct pod *pod_new(const char *name, const char *netns, const char *mesh);
void pod_free(struct agent *a, struct pod *p);
/* fwd_opts.ended: one of the pod's connections ended */
void pod_conn_ended(void *ctx, void *owner);
/* The pod holds its share of the forwarder's connections. */
bool pod_full(const struct agent *a, const struct pod *p);
struct pod *pod_find_name(struct agent *a, const char *name);
struct steer_pod pod_steer(struct agent *a, const struct pod *p);
/* Only who the pod is (name, netns, cookie): what an engine needs to find a
 * connection's destination, without the mesh lookup pod_steer makes. */
struct steer_pod pod_ident(const struct pod *p);
/* keep: a pod that was enforced stays so when its listener cannot open
 * (pods_retry opens it later); otherwise that fails the activation. */
int pod_activate(struct agent *a, struct pod *p, bool keep, const char **why);
/* From the timer: open the listeners and responders enforced pods lack. */
void pods_retry(struct agent *a);
void pod_deactivate(struct agent *a, struct pod *p);
void pod_close_sockets(struct agent *a, struct pod *p);
/* Enable (or refresh) a pod as a control request or a CNI record asks;
 * NULL on success, else a message the caller frees. */
char *pod_enable(struct agent *a, const struct ctl_req *rq, struct pod **ret);
/* NULL, or an error message (freed by the caller). */
char *pod_disable(struct agent *a, const struct ctl_req *rq);
void pod_forget(struct agent *a, const struct ctl_req *rq);
json_object *pod_json(const struct agent *a, const struct pod *p, bool for_state);
void pods_save(struct agent *a);
void pods_restore(struct agent *a);
void pods_refresh(struct agent *a); /* after a reload */
void pods_close_all(struct agent *a);
void inherited_clear(struct agent *a);
char *state_path(const struct agent *a, const char *name);

/* route.c (the I/O half; the decision is route_decide in route.h) */
void route_accept(struct ev *ev, uint32_t events);
void route_pending_retry(struct agent *a, bool only_expired);
void route_pending_drop_pod(struct agent *a, const struct pod *p);
void route_pending_clear(struct agent *a);
/* Decide for the peeking clients whose wait is over (the timer). */
void route_peek_tick(struct agent *a);
bool agent_dns_local(void *ctx, void *pod, const char *name, struct ms_addr *ret_vip);
bool agent_dns_strict(void *ctx, void *pod);
bool agent_dns_allowed(void *ctx, void *pod, const struct ms_addr *resolver, uint16_t port);
int agent_dns_origin(void *ctx, void *pod, bool tcp, int fd, const struct ms_addr *client, uint16_t cport,
		     const struct ms_addr *self, struct ms_addr *ret, uint16_t *ret_port);

/* reload.c */
int reload_load(struct agent *a, struct ms_config **ret);
void reload_apply(struct agent *a, struct ms_config *c);
/* Reload on the loader thread; reply_fd (a control client, or -1) gets
 * {"ok":...} once the result is in force or refused. */
void reload(struct agent *a, const char *why);
void reload_request(struct agent *a, const char *why, int reply_fd);
bool reload_busy(const struct agent *a);
/* From the timer: reload when a certificate file the config names changed. */
void reload_watch_files(struct agent *a);
void reload_fini(struct agent *a);
void vips_load(struct agent *a);

/* control.c */
int control_open(struct agent *a);
void control_takeover(struct agent *a);
json_object *reply_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_object *reply_ok(void);
const char *json_str(json_object *o, const char *k);

/* clients.c: one request line in, one answer out */
/* Track a new client of kind (at the cap, the oldest one goes). */
void client_add(struct agent *a, int fd, enum client_kind kind, client_done_fn done, client_fn serve);
/* Accept what waits on lfd as clients of kind. */
void client_accept(struct agent *a, int lfd, enum client_kind kind, client_done_fn done, client_fn serve);
void client_close(struct line_client *c);
void clients_expire(struct agent *a);
void clients_close_all(struct agent *a);
void client_send(int fd, const char *s, size_t len);
void client_send_json(int fd, json_object *resp);

/* health-agent.c */
void health_agent_init(struct agent *a);
void health_agent_config(struct agent *a); /* a->cfg changed */
void health_agent_tick(struct agent *a);
void health_agent_fini(struct agent *a);
/* fwd_opts.connected: a connect to an endpoint succeeded (err 0) or failed */
void health_agent_connected(void *ctx, const struct sockaddr *sa, int err);
/* `endpoints`: each endpoint of each service port, its level, path and health */
json_object *health_agent_json(struct agent *a);

/* metrics.c */
int metrics_open(struct agent *a);
json_object *metrics_stats_json(struct agent *a);
char *metrics_text(struct agent *a);
