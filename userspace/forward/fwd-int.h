/* SPDX-License-Identifier: MIT */
#pragma once

/* The forwarder's insides, shared by fwd.c (connection life: connect,
 * failover, timers, the one conn_free) and its transports (xprt-splice.c,
 * xprt-tls.c), as HAProxy's connection layer sits over xprt_ops. Nothing
 * outside forward/ includes this. */

#include "fwd.h"

#include <openssl/ssl.h>

struct xprt_ops;

struct fwd_dir {
	int pipe[2];
	size_t in_pipe; /* bytes in the pipe now: splice's EAGAIN alone cannot tell */
	uint64_t bytes; /* bytes delivered to the destination */
	bool eof;       /* source sent FIN */
	bool shut;      /* FIN forwarded (shutdown(SHUT_WR) on the destination) */
	bool ctl;       /* kTLS source: its next record is not data; SSL_read takes it */
};

enum fwd_state { FWD_CONNECTING, FWD_HANDSHAKE, FWD_OPEN };

struct fwd_conn {
	struct ev cev, uev; /* epoll handles for the client and upstream fds */
	struct fwd *f;
	uint64_t id;
	int cfd, ufd;
	bool c_rd, c_wr, u_rd, u_wr; /* edge-triggered readiness we have not consumed */
	uint32_t cmask, umask;       /* the events each fd is registered for now */
	struct fwd_dir up, down;     /* client → upstream, upstream → client */
	enum fwd_state state;
	const struct xprt_ops *xprt; /* how bytes move once connected */
	void *owner;                 /* fwd_start's, told at the end (o.ended) */
	struct fwd_targets *ts; /* shared; NULL once a plain connection is open */
	size_t start, cur;      /* its round-robin cursor, and how many targets it has tried */
	int netns_fd;           /* the pod's, for in_pod targets (FWD_NETNS_GONE once closed) */
	uint64_t created_ms, deadline_ms, last_ms;
	char pod[96], orig[64], service[160];
	char upstream[96]; /* the endpoint's label once a plain connection is open and its targets are gone */
	/* how it ended, set by the transport that ended it (xprt_end) */
	enum fwd_end end_how;
	const char *last_error; /* why the last endpoint's handshake failed (a constant string) */
	bool end_reset_client, end_reset_upstream;
	/* TLS connections move bytes with SSL_read/SSL_write through two bounded buffers. */
	SSL *ssl;
	unsigned char *ubuf, *dbuf;
	size_t ulen, uoff, dlen, doff;
	bool reneg_seen;
	bool reneg_allowed;
	/* kernel TLS took this direction: bytes are spliced, not SSL_write/SSL_read */
	bool ktls_tx, ktls_rx;
	/* the server asked for a TLS 1.3 KeyUpdate while the kernel encrypts
	 * (xprt-tls.c: it cannot be honoured) */
	bool ktls_rekey_asked;
	struct fwd_conn *prev, *next;
};

/* The target c is connecting to, or has connected to. */
static inline const struct fwd_target *fwd_cur(const struct fwd_conn *c)
{
	return fwd_targets_at(c->ts, c->start, c->cur);
}


enum xprt_rc {
	XPRT_AGAIN,  /* waiting for readiness */
	XPRT_READY,  /* handshake: the connection is open */
	XPRT_FAILED, /* handshake: this endpoint failed (logged, counted); try the next */
	XPRT_END,    /* the connection is over: c->end_* say how */
};

/* A transport moves bytes between the client and an upstream socket that is
 * connected. It never frees the connection: it says how it ended. */
struct xprt_ops {
	const char *name;
	bool keeps_targets; /* its state points into the target (TLS: names to verify, the session cache) */
	/* The upstream socket just connected: start (a TLS handshake). */
	enum xprt_rc (*start)(struct fwd *f, struct fwd_conn *c);
	/* An upstream event during the handshake. */
	enum xprt_rc (*handshake)(struct fwd *f, struct fwd_conn *c);
	/* Readiness arrived: move what can move. XPRT_AGAIN or XPRT_END. */
	enum xprt_rc (*run)(struct fwd *f, struct fwd_conn *c);
	/* Drop the transport's state (pipes, SSL, buffers); failed: the
	 * connection was reset, nothing in flight may be reused. */
	void (*release)(struct fwd *f, struct fwd_conn *c, bool failed);
};

extern const struct xprt_ops xprt_splice;
extern const struct xprt_ops xprt_tls;

#define FWD_EVENTS_ALL (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static inline enum xprt_rc xprt_end(struct fwd_conn *c, enum fwd_end how, bool reset_client, bool reset_upstream)
{
	c->end_how = how;
	c->end_reset_client = reset_client;
	c->end_reset_upstream = reset_upstream;
	return XPRT_END;
}

void fwd_touch(struct fwd_conn *c);
const char *fwd_conn_upstream(const struct fwd_conn *c);
/* Bytes a direction holds in its pipe at most. */
size_t fwd_pipe_cap(const struct fwd *f);

enum pump_result { PUMP_OK, PUMP_SRC_RESET, PUMP_DST_RESET, PUMP_ERROR };
enum {
	PUMP_NO_FIN = 1,   /* at the source's EOF leave the FIN to the caller (close_notify first) */
	PUMP_KTLS_SRC = 2, /* the source is a kTLS RX socket: EINVAL/EIO from splice sets d->ctl */
};
/* Move what can move from src to dst through d's pipe (xprt-splice.c).
 * Consumes readiness until the kernel says EAGAIN, as edge-triggered epoll
 * requires. */
enum pump_result fwd_pump(struct fwd *f, struct fwd_conn *c, struct fwd_dir *d, int src, int dst, bool *src_rd,
			  bool *dst_wr, unsigned flags);
/* Give d's pipe back to the pool (closed if it holds bytes or failed). */
void fwd_pipe_put(struct fwd *f, struct fwd_dir *d, bool failed);
