/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ev.h"
#include "tls.h"

/* The splice forwarder: one client socket, one upstream socket, a pipe per
 * direction taken from a pool only while bytes are in flight. Single-threaded,
 * edge-triggered epoll. Policy is decided before fwd_start; this moves bytes. */

struct fwd_target {
	struct sockaddr_storage sa;
	socklen_t len;
	bool in_pod; /* the socket is made in the connection's netns, else in the agent's */
	bool mark;   /* set the agent's SO_MARK (IP sockets) */
	char label[96];
	/* TLS origination: tls == NULL for plain TCP. The strings (malloc'd,
	 * NULL when unset; a plain target has none) back tt. */
	struct tls_ctx *tls;
	struct tls_target tt;
	char *sni, *host, *ip;
};

/* Fill t->tt from the strings (call after copying a target). */
void fwd_target_fix(struct fwd_target *t);

/* The endpoints of one service port in failover order, built once per
 * config snapshot and shared (read-only, reference-counted) by every
 * connection to it: a connection holds a reference and a cursor, not a copy
 * (10,000 endpoints cost their ~1 KB each once, not once per connection).
 * The first `best` targets are the best priority level, which a connection
 * walks starting at its round-robin cursor; the rest follow in order. */
struct fwd_targets {
	int refs;
	size_t n, best;
	struct fwd_target t[];
};

struct fwd_targets *fwd_targets_new(size_t n);
struct fwd_targets *fwd_targets_ref(struct fwd_targets *ts);
void fwd_targets_unref(struct fwd_targets *ts);
/* The k-th target a connection starting at cursor start tries. */
static inline const struct fwd_target *fwd_targets_at(const struct fwd_targets *ts, size_t start, size_t k)
{
	return k < ts->best ? &ts->t[(start + k) % ts->best] : &ts->t[k];
}

struct fwd_opts {
	uint32_t mark;
	int pipe_size;
	bool no_nodelay; /* leave Nagle on (TCP_NODELAY is the default) */
	int sockbuf;     /* SO_RCVBUF/SO_SNDBUF, 0: autotuning */
	unsigned pipe_pool; /* empty pipes kept for reuse */
	unsigned connect_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned halfclose_timeout_ms; /* one direction closed, nothing moving: close (0: only the idle timeout) */
	unsigned max_conns;
	/* told when a connection whose owner is not NULL ends (the agent counts per pod) */
	void (*ended)(void *ctx, void *owner);
	void *ended_ctx;
	/* told of each connect to a target's address: 0 (connected) or the
	 * errno it failed with (ETIMEDOUT: the connect timeout); ended_ctx */
	void (*connected)(void *ctx, const struct sockaddr *sa, int err);
};

struct fwd;
struct fwd_conn; /* private to forward/ (fwd-int.h) */

/* How a connection ended: each one is counted under exactly one. */
enum fwd_end {
	FWD_END_COMPLETED,         /* FIN both ways */
	FWD_END_RESET_CLIENT,      /* the pod reset it (or went away) */
	FWD_END_RESET_UPSTREAM,    /* the endpoint reset it */
	FWD_END_CONNECT_FAILED,    /* no endpoint answered (or TLS failed on each) */
	FWD_END_CONNECT_TIMEOUT,   /* none answered within the connect timeout */
	FWD_END_IDLE_TIMEOUT,
	FWD_END_HALFCLOSE_TIMEOUT,
	FWD_END_ERROR,             /* a local failure (splice, epoll) or a refused renegotiation */
	FWD_END_SHUTDOWN,          /* the agent exited under it */
	FWD_END__MAX,
};

const char *fwd_end_name(enum fwd_end e);

struct fwd_stats {
	uint64_t started, active;
	uint64_t ended[FWD_END__MAX];
	uint64_t connect_retries;
	uint64_t bytes_up, bytes_down;
	uint64_t pipes_created, pipes_pooled, pipe_errors;
	uint64_t tls_handshakes, tls_resumed;
	/* connections whose TX (to the endpoint) or RX went to kernel TLS; with
	 * kTLS usable, those that stayed in userspace both ways (a cipher or
	 * version the kernel or OpenSSL cannot hand over) */
	uint64_t tls_ktls_tx, tls_ktls_rx, tls_ktls_userspace;
	uint64_t tls_fail[TLS_FAIL__MAX];
};

struct fwd {
	int epfd;
	struct fwd_opts o;
	int (*pool)[2];
	size_t n_pool;
	struct fwd_conn *head;
	uint64_t next_id;
	struct fwd_stats st;
};

void fwd_init(struct fwd *f, int epfd, const struct fwd_opts *o);
/* Close every connection (resetting none: FIN both ways) and the pool. */
void fwd_fini(struct fwd *f);
/* Take cfd and a reference to ts, and connect to the first target (in the
 * order a cursor of start gives) that answers within the connect timeout;
 * sockets of in_pod targets are made in netns_fd. pod/orig/service label the
 * connection for `meshsplice conns`. 0 or -errno (cfd is closed with a reset
 * on error). */
struct fwd_start {
	int cfd;
	struct fwd_targets *ts; /* a reference, the connection's from now on */
	size_t start;
	int netns_fd;
	const char *pod, *orig, *service;
	void *owner;
};
int fwd_start(struct fwd *f, const struct fwd_start *s);
/* owner is going away: its connections go on, nobody is told when they end. */
void fwd_forget_owner(struct fwd *f, const void *owner);
/* Apply connect and idle timeouts; call a few times a second. */
void fwd_tick(struct fwd *f);
/* The socket options of a proxied TCP socket (TCP_NODELAY, buffers); the pod
 * listeners get them too, and their accepted sockets inherit them. */
void fwd_sockopts(const struct fwd_opts *o, int fd);
/* Close fd so that the peer sees a reset, not a FIN. */
void fwd_reset_fd(int fd);
bool fwd_full(const struct fwd *f);
/* One connection, as listings and metrics see it. */
struct fwd_conn_info {
	uint64_t id;
	const char *pod, *orig, *service, *upstream;
	bool open; /* else connecting (or in its TLS handshake) */
	uint64_t tx_bytes, rx_bytes, age_ms;
};

/* Call fn for every connection (none may end meanwhile). */
void fwd_foreach(const struct fwd *f, void (*fn)(const struct fwd_conn_info *c, void *ctx), void *ctx);
/* A pod's netns handle is about to close: targets that still name it (in
 * connections not yet connected) must never use the number again. */
void fwd_forget_netns(struct fwd *f, int netns_fd);

#define FWD_NETNS_GONE (-2)
