// SPDX-License-Identifier: MIT
#include "fwd-int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>


#include "log.h"
#include "netns.h"
#include "util.h"

void fwd_target_fix(struct fwd_target *t)
{
	t->tt.sni = t->sni;
	t->tt.host = t->host;
	t->tt.ip = t->ip;
	t->tt.endpoint = t->label;
}

struct fwd_targets *fwd_targets_new(size_t n)
{
	struct fwd_targets *ts = xcalloc(1, sizeof(*ts) + n * sizeof(ts->t[0]));

	ts->refs = 1;
	ts->n = n;
	return ts;
}

struct fwd_targets *fwd_targets_ref(struct fwd_targets *ts)
{
	if (ts)
		ts->refs++;
	return ts;
}

void fwd_targets_unref(struct fwd_targets *ts)
{
	if (!ts || --ts->refs > 0)
		return;
	for (size_t i = 0; i < ts->n; i++) {
		tls_ctx_unref(ts->t[i].tls);
		free(ts->t[i].sni);
		free(ts->t[i].host);
		free(ts->t[i].ip);
	}
	free(ts);
}

static void conn_event(struct fwd_conn *c, bool client, uint32_t events);

static void on_client(struct ev *ev, uint32_t events)
{
	conn_event(container_of(ev, struct fwd_conn, cev), true, events);
}

static void on_upstream(struct ev *ev, uint32_t events)
{
	conn_event(container_of(ev, struct fwd_conn, uev), false, events);
}

void fwd_init(struct fwd *f, int epfd, const struct fwd_opts *o)
{
	memset(f, 0, sizeof(*f));
	f->epfd = epfd;
	f->o = *o;
	f->pool = xcalloc(f->o.pipe_pool ? f->o.pipe_pool : 1, sizeof(*f->pool));
}

bool fwd_full(const struct fwd *f)
{
	return f->o.max_conns && f->st.active >= f->o.max_conns;
}

void fwd_reset_fd(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

void fwd_sockopts(const struct fwd_opts *o, int fd)
{
	int one = 1;

	if (!o->no_nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->sockbuf > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->sockbuf, sizeof(o->sockbuf));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sockbuf, sizeof(o->sockbuf));
	}
}

size_t fwd_pipe_cap(const struct fwd *f)
{
	return f->o.pipe_size > 0 ? (size_t)f->o.pipe_size : 65536;
}

/* Every connection ends here, counted under exactly one how. */
static void conn_free(struct fwd *f, struct fwd_conn *c, enum fwd_end how, bool reset_client, bool reset_upstream)
{
	f->st.ended[how]++;
	DLIST_REMOVE(f->head, c);
	if (c->owner && f->o.ended)
		f->o.ended(f->o.ended_ctx, c->owner);
	if (c->xprt)
		c->xprt->release(f, c, reset_client || reset_upstream);
	if (reset_client)
		fwd_reset_fd(c->cfd);
	else if (c->cfd >= 0)
		close(c->cfd);
	if (reset_upstream)
		fwd_reset_fd(c->ufd);
	else if (c->ufd >= 0)
		close(c->ufd);
	fwd_targets_unref(c->ts);
	f->st.active--;
	c->cev.dead = c->uev.dead = true;
	ev_defer_free(c);
}

const char *fwd_conn_upstream(const struct fwd_conn *c)
{
	if (c->ts && c->cur < c->ts->n)
		return fwd_cur(c)->label;
	return c->upstream[0] ? c->upstream : "-";
}

const char *fwd_end_name(enum fwd_end e)
{
	static const char *const names[FWD_END__MAX] = {
		[FWD_END_COMPLETED] = "completed",
		[FWD_END_RESET_CLIENT] = "reset_client",
		[FWD_END_RESET_UPSTREAM] = "reset_upstream",
		[FWD_END_CONNECT_FAILED] = "connect_failed",
		[FWD_END_CONNECT_TIMEOUT] = "connect_timeout",
		[FWD_END_IDLE_TIMEOUT] = "idle_timeout",
		[FWD_END_HALFCLOSE_TIMEOUT] = "halfclose_timeout",
		[FWD_END_ERROR] = "error",
		[FWD_END_SHUTDOWN] = "shutdown",
	};
	return e < FWD_END__MAX ? names[e] : "?";
}

void fwd_foreach(const struct fwd *f, void (*fn)(const struct fwd_conn_info *c, void *ctx), void *ctx)
{
	uint64_t now = now_ms();

	for (const struct fwd_conn *c = f->head; c; c = c->next) {
		struct fwd_conn_info i = {
			.id = c->id, .pod = c->pod, .orig = c->orig, .service = c->service,
			.upstream = fwd_conn_upstream(c), .open = c->state == FWD_OPEN,
			.tx_bytes = c->up.bytes, .rx_bytes = c->down.bytes, .age_ms = now - c->created_ms,
		};
		fn(&i, ctx);
	}
}

/* A plain connection, once open, needs nothing of its targets but a label:
 * the shared list can go with the config snapshot that made it. (A TLS
 * connection keeps it: its SSL points into its target.) */
static void drop_targets(struct fwd_conn *c)
{
	snprintf(c->upstream, sizeof(c->upstream), "%s", fwd_cur(c)->label);
	fwd_targets_unref(c->ts);
	c->ts = NULL;
	c->cur = 0;
}

void fwd_touch(struct fwd_conn *c)
{
	c->last_ms = now_ms();
}

/* A transport said the connection is over. */
static void conn_ended(struct fwd *f, struct fwd_conn *c)
{
	conn_free(f, c, c->end_how, c->end_reset_client, c->end_reset_upstream);
}

static void conn_run(struct fwd *f, struct fwd_conn *c)
{
	if (c->xprt->run(f, c) == XPRT_END)
		conn_ended(f, c);
}

void fwd_forget_owner(struct fwd *f, const void *owner)
{
	for (struct fwd_conn *c = f->head; c; c = c->next)
		if (c->owner == owner)
			c->owner = NULL;
}

void fwd_forget_netns(struct fwd *f, int netns_fd)
{
	for (struct fwd_conn *c = f->head; c; c = c->next)
		if (c->netns_fd == netns_fd)
			c->netns_fd = FWD_NETNS_GONE;
}

static int try_connect(struct fwd *f, struct fwd_conn *c)
{
	while (c->ts && c->cur < c->ts->n) {
		const struct fwd_target *t = fwd_cur(c);
		int nsfd = t->in_pod ? c->netns_fd : -1;
		if (nsfd == FWD_NETNS_GONE) {
			c->cur++; /* the pod's netns handle is gone */
			continue;
		}
		int fd = t->sa.ss_family == AF_UNIX ? netns_socket(-1, AF_UNIX, SOCK_STREAM, 0) :
						       netns_socket_pooled(nsfd, t->sa.ss_family);

		if (fd < 0) {
			log_warn_errno(fd, "conn %llu: socket for %s: %m", (unsigned long long)c->id, t->label);
			c->cur++;
			continue;
		}
		if (t->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &f->o.mark, sizeof(f->o.mark)) < 0) {
			/* Without the mark our own connect would be steered back to us. */
			log_error_errno(errno, "conn %llu: SO_MARK: %m", (unsigned long long)c->id);
			close(fd);
			return -EPERM;
		}
		if (t->sa.ss_family != AF_UNIX)
			fwd_sockopts(&f->o, fd);
		if (connect(fd, (struct sockaddr *)&t->sa, t->len) < 0 && errno != EINPROGRESS) {
			int err = errno;
			log_info_errno(err, "conn %llu: connect %s: %m", (unsigned long long)c->id, t->label);
			if (f->o.connected)
				f->o.connected(f->o.ended_ctx, (struct sockaddr *)&t->sa, err);
			close(fd);
			f->st.connect_retries++;
			c->cur++;
			continue;
		}
		int r = ev_add(f->epfd, fd, &c->uev, FWD_EVENTS_ALL);
		if (r < 0) {
			close(fd);
			return r;
		}
		c->ufd = fd;
		c->umask = FWD_EVENTS_ALL;
		c->u_rd = c->u_wr = false;
		return 0;
	}
	return -EHOSTUNREACH;
}

static void connect_failed(struct fwd *f, struct fwd_conn *c, enum fwd_end how, const char *why)
{
	log_info("conn %llu: %s → %s: no endpoint answered (%s); resetting the client",
		 (unsigned long long)c->id, c->pod, c->service, why);
	conn_free(f, c, how, true, false);
}

/* What a transport's start or handshake said. */
static void handshake_done(struct fwd *f, struct fwd_conn *c, enum xprt_rc rc)
{
	switch (rc) {
	case XPRT_AGAIN:
		c->state = FWD_HANDSHAKE;
		return;
	case XPRT_READY:
		c->state = FWD_OPEN;
		fwd_touch(c);
		if (!c->xprt->keeps_targets)
			drop_targets(c);
		conn_run(f, c);
		return;
	case XPRT_FAILED:
		/* this endpoint failed (the transport said why): the next one */
		c->xprt->release(f, c, true);
		c->xprt = NULL;
		fwd_reset_fd(c->ufd);
		c->ufd = -1;
		c->cur++;
		c->state = FWD_CONNECTING;
		if (now_ms() >= c->deadline_ms || try_connect(f, c) < 0)
			connect_failed(f, c, FWD_END_CONNECT_FAILED, c->last_error ? c->last_error : "handshake failed");
		return;
	case XPRT_END:
		conn_ended(f, c);
		return;
	}
}

/* The upstream socket became writable (or failed) while connecting.
 * Writable without EPOLLERR/EPOLLHUP means connected: no SO_ERROR read. */
static void connect_done(struct fwd *f, struct fwd_conn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if ((events & (EPOLLERR | EPOLLHUP)) &&
	    getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if ((events & (EPOLLERR | EPOLLHUP)) && err == 0)
		err = ECONNREFUSED;
	if (f->o.connected)
		f->o.connected(f->o.ended_ctx, (const struct sockaddr *)&fwd_cur(c)->sa, err);
	if (err == 0) {
		log_debug("conn %llu: connected to %s", (unsigned long long)c->id, fwd_cur(c)->label);
		c->xprt = fwd_cur(c)->tls ? &xprt_tls : &xprt_splice;
		handshake_done(f, c, c->xprt->start(f, c));
		return;
	}
	log_info("conn %llu: connect %s: %s; trying the next endpoint", (unsigned long long)c->id,
		 fwd_cur(c)->label, strerror(err));
	close(c->ufd);
	c->ufd = -1;
	c->cur++;
	f->st.connect_retries++;
	if (now_ms() >= c->deadline_ms || try_connect(f, c) < 0)
		connect_failed(f, c, FWD_END_CONNECT_FAILED, strerror(err));
}

int fwd_start(struct fwd *f, const struct fwd_start *s)
{
	int cfd = s->cfd;
	struct fwd_conn *c = xcalloc(1, sizeof(*c));
	int r;

	c->f = f;
	c->owner = s->owner;
	c->id = ++f->next_id;
	ev_init(&c->cev, on_client);
	ev_init(&c->uev, on_upstream);
	c->cfd = cfd;
	c->ufd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->ts = s->ts;
	c->start = s->start;
	c->netns_fd = s->netns_fd;
	c->created_ms = c->last_ms = now_ms();
	c->deadline_ms = c->created_ms + f->o.connect_timeout_ms;
	snprintf(c->pod, sizeof(c->pod), "%s", s->pod);
	snprintf(c->orig, sizeof(c->orig), "%s", s->orig);
	snprintf(c->service, sizeof(c->service), "%s", s->service);
	DLIST_PUSH(f->head, c);
	f->st.started++;
	f->st.active++;
	/* Socket options come with the socket: the pod listener has them. A
	 * plain connection's client socket is writable now and is watched for
	 * writability only once a write to it cannot complete (conn_interest). */
	bool tls = c->ts && c->ts->n > 0 && c->ts->t[0].tls;
	c->cmask = tls ? FWD_EVENTS_ALL : (uint32_t)(EPOLLIN | EPOLLRDHUP | EPOLLET);
	c->c_wr = !tls;
	if ((r = ev_add(f->epfd, cfd, &c->cev, c->cmask)) < 0) {
		conn_free(f, c, FWD_END_ERROR, true, false);
		return r;
	}
	if ((r = try_connect(f, c)) < 0) {
		connect_failed(f, c, FWD_END_CONNECT_FAILED, strerror(-r));
		return r;
	}
	return 0;
}

static void conn_event(struct fwd_conn *c, bool client, uint32_t events)
{
	struct fwd *f = c->f;

	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		if (client)
			c->c_rd = true;
		else
			c->u_rd = true;
	}
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
		if (client)
			c->c_wr = true;
		else
			c->u_wr = true;
	}
	if (c->state == FWD_HANDSHAKE) {
		if (!client)
			handshake_done(f, c, c->xprt->handshake(f, c));
		else if (events & (EPOLLERR | EPOLLHUP))
			conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
		return;
	}
	if (c->state == FWD_CONNECTING) {
		if (!client && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			connect_done(f, c, events);
			return;
		}
		if (client && (events & (EPOLLERR | EPOLLHUP))) {
			/* Client gone before the upstream answered. */
			conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
		}
		return;
	}
	conn_run(f, c);
}

void fwd_tick(struct fwd *f)
{
	uint64_t now = now_ms();
	struct fwd_conn *c = f->head, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->state != FWD_OPEN && now >= c->deadline_ms) {
			if (c->state == FWD_CONNECTING && c->ufd >= 0 && c->ts && c->cur < c->ts->n && f->o.connected)
				f->o.connected(f->o.ended_ctx, (const struct sockaddr *)&fwd_cur(c)->sa, ETIMEDOUT);
			connect_failed(f, c, FWD_END_CONNECT_TIMEOUT, c->state == FWD_HANDSHAKE ? "TLS handshake timeout" : "connect timeout");
		} else if (c->state == FWD_OPEN && f->o.halfclose_timeout_ms && (c->up.shut || c->down.shut) &&
			   now - c->last_ms >= f->o.halfclose_timeout_ms) {
			log_info("conn %llu: %s → %s half-closed and silent for %u ms; closing", (unsigned long long)c->id,
				 c->pod, c->service, f->o.halfclose_timeout_ms);
			conn_free(f, c, FWD_END_HALFCLOSE_TIMEOUT, true, true);
		} else if (c->state == FWD_OPEN && f->o.idle_timeout_ms &&
			   now - c->last_ms >= f->o.idle_timeout_ms) {
			log_info("conn %llu: %s → %s idle for %u ms; closing", (unsigned long long)c->id,
				 c->pod, c->service, f->o.idle_timeout_ms);
			conn_free(f, c, FWD_END_IDLE_TIMEOUT, true, true);
		}
	}
}

void fwd_fini(struct fwd *f)
{
	while (f->head)
		conn_free(f, f->head, FWD_END_SHUTDOWN, false, false);
	for (size_t i = 0; i < f->n_pool; i++) {
		close(f->pool[i][0]);
		close(f->pool[i][1]);
	}
	free(f->pool);
	f->pool = NULL;
	f->n_pool = f->st.pipes_pooled = 0;
}
