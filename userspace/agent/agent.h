/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "addr.h"
#include "config.h"
#include "ctl.h"
#include "ev.h"
#include "fwd.h"
#include "meshsplice.h"

#define MS_DEFAULT_STATE_DIR "/var/lib/meshsplice"
#define MS_DEFAULT_BPFFS "/sys/fs/bpf/meshsplice"

struct agent_opts {
	const char *config_dir; /* NULL: the embedded default */
	const char *cgroup;
	const char *engine; /* bpf | iptables | auto */
	bool datapath_proxy; /* --datapath proxy: no kernel path, every connection through the forwarder */
	const char *control;
	const char *state_dir;
	const char *bpffs;
	const char *metrics; /* loopback host:port, or NULL */
	bool metrics_allow_remote; /* --metrics on any address */
	uint32_t mark;
	uint16_t listen_port;
	int pipe_size;
	bool no_nodelay; /* TCP_NODELAY off on proxied sockets (to measure what it costs) */
	int sockbuf;     /* SO_RCVBUF and SO_SNDBUF of proxied sockets; 0: the kernel's autotuning */
	unsigned pipe_pool;    /* empty pipes kept for reuse (0: a pipe per transfer) */
	unsigned epoll_batch;  /* events taken per epoll_wait */
	unsigned accept_batch; /* connections accepted per listener wake-up (0: until the backlog is empty) */
	unsigned connect_timeout_ms, idle_timeout_ms, halfclose_timeout_ms, max_conns, dns_refresh_ms;
	unsigned max_conns_per_pod; /* 0: a fair share of max_conns (split among enabled pods, at least 64) */
	bool no_dns;     /* node-wide: capture no pod's DNS */
	uint16_t dns_port; /* the responder's port on each pod's loopback */
	const char *dns_upstream; /* comma-separated resolvers every pod may use (passthrough off), or NULL */
	uint32_t dns_ttl;
	unsigned dns_timeout_ms;
	unsigned drain_timeout_ms; /* SIGTERM or hand-over: how long established connections may finish */
	unsigned health_interval_ms; /* active TCP probes of endpoints (0: passive checks only) */
	unsigned health_timeout_ms;
	unsigned health_unhealthy, health_healthy; /* consecutive outcomes that change an endpoint's health */
	unsigned health_eject_ms; /* probes off: how long a passively failed endpoint stays out */
	struct cfg_opts cfg;
	const char *self_cgroup;  /* the agent's own cgroup v2, as /proc/self/cgroup names it */
	uint64_t self_cgroup_id;  /* and its id: with the mark, what makes a socket the agent's */
};

enum refuse_reason {
	REFUSE_PASSTHROUGH,  /* mesh has passthrough off */
	REFUSE_EXTERNAL,     /* mesh forbids external services */
	REFUSE_UNKNOWN_ORIG, /* no original destination: not a redirected connection */
	REFUSE_NO_SERVICE,   /* a VIP with no service behind it in the pod's mesh */
	REFUSE_NO_ENDPOINT,  /* the service has no endpoint that resolves */
	REFUSE_TLS,          /* TLS origination not available */
	REFUSE_LOOP,         /* destination is the pod's own loopback */
	REFUSE_LIMIT,        /* connection limit */
	REFUSE_MESH_GONE,    /* the pod's mesh no longer exists */
	REFUSE_NO_FD,        /* out of file descriptors: reset at accept */
	REFUSE_POD_GONE,     /* the pod was removed while its client waited for DNS */
	REFUSE_POD_LIMIT,    /* the pod holds its share of the connection limit */
	REFUSE_PASS_NO_MATCH, /* MeshPassthrough: no IP, CIDR or Domain match allows it */
	REFUSE__MAX,
};

int agent_run(const struct agent_opts *o);
/* Check a --metrics value (loopback IP literal, any with allow_remote, and
 * port); -EINVAL with *ret_err. */
int agent_parse_metrics(const char *spec, bool allow_remote, struct sockaddr_storage *ss, socklen_t *ret_len,
			char **ret_err);
int agent_uninstall(const struct agent_opts *o);
/* The root of the unified cgroup v2 hierarchy, from /proc/self/mountinfo. */
int agent_find_cgroup2(char **ret);
/* The agent's own cgroup v2: its path (from /proc/self/cgroup; NULL unless
 * it holds only [A-Za-z0-9_.:@/+=,-], as it goes into an iptables rule) and
 * its id (the directory's inode under the unified hierarchy). Caller frees. */
int agent_self_cgroup(char **ret_path, uint64_t *ret_id);
const char *agent_refuse_name(enum refuse_reason r);
