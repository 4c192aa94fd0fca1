// SPDX-License-Identifier: MIT
#include "fwd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "netns.h"
#include "util.h"

/* Plaintext staging per direction: 64 KiB from the client becomes four TLS
 * records; up to four records from the server go to the client in one send. */
#define TLS_BUF 65536
#define TLS_RECORD 16384 /* the largest plaintext of one record */

void fwd_target_fix(struct fwd_target *t)
{
	t->tt.sni = t->sni[0] ? t->sni : NULL;
	t->tt.host = t->host[0] ? t->host : NULL;
	t->tt.ip = t->ip[0] ? t->ip : NULL;
	t->tt.endpoint = t->label;
}

static void tls_start(struct fwd *f, struct fwd_conn *c);
static void tls_handshake(struct fwd *f, struct fwd_conn *c);
static void tls_run(struct fwd *f, struct fwd_conn *c);

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

/* Bytes a direction holds in its pipe at most. */
static size_t pipe_cap(const struct fwd *f)
{
	return f->o.pipe_size > 0 ? (size_t)f->o.pipe_size : 65536;
}

static int pipe_get(struct fwd *f, struct fwd_dir *d)
{
	if (d->pipe[0] >= 0)
		return 0;
	if (f->n_pool > 0) {
		f->st.pipes_pooled = --f->n_pool;
		d->pipe[0] = f->pool[f->n_pool][0];
		d->pipe[1] = f->pool[f->n_pool][1];
		return 0;
	}
	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		d->pipe[0] = d->pipe[1] = -1;
		f->st.pipe_errors++;
		return -errno;
	}
	if (f->o.pipe_size > 0)
		fcntl(d->pipe[0], F_SETPIPE_SZ, f->o.pipe_size); /* best effort: the default works */
	f->st.pipes_created++;
	return 0;
}

/* An empty pipe goes back to the pool; one with bytes in it or that failed
 * is closed (its content cannot be trusted to belong to nobody). */
static void pipe_put(struct fwd *f, struct fwd_dir *d, bool failed)
{
	if (d->pipe[0] < 0)
		return;
	if (!failed && d->in_pipe == 0 && f->n_pool < f->o.pipe_pool) {
		f->pool[f->n_pool][0] = d->pipe[0];
		f->pool[f->n_pool][1] = d->pipe[1];
		f->st.pipes_pooled = ++f->n_pool;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->in_pipe = 0;
}

/* Every connection ends here, counted under exactly one how. */
static void conn_free(struct fwd *f, struct fwd_conn *c, enum fwd_end how, bool reset_client, bool reset_upstream)
{
	f->st.ended[how]++;
	DLIST_REMOVE(f->head, c);
	if (c->ssl) {
		/* However the connection ended, its session stays resumable (RFC
		 * 5246 7.2.1, from TLS 1.1 on). Without this OpenSSL marks the
		 * session not resumable when no close_notify was sent, and every
		 * later connection sharing the stored session pays a full handshake. */
		if (SSL_is_init_finished(c->ssl) && SSL_version(c->ssl) >= TLS1_1_VERSION)
			SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
	}
	free(c->ubuf);
	free(c->dbuf);
	for (size_t i = 0; i < c->n_targets; i++)
		tls_ctx_unref(c->targets[i].tls);
	if (reset_client)
		fwd_reset_fd(c->cfd);
	else if (c->cfd >= 0)
		close(c->cfd);
	if (reset_upstream)
		fwd_reset_fd(c->ufd);
	else if (c->ufd >= 0)
		close(c->ufd);
	pipe_put(f, &c->up, reset_client || reset_upstream);
	pipe_put(f, &c->down, reset_client || reset_upstream);
	free(c->targets);
	f->st.active--;
	c->cev.dead = c->uev.dead = true;
	ev_defer_free(c);
}

const char *fwd_conn_upstream(const struct fwd_conn *c)
{
	if (c->cur < c->n_targets)
		return c->targets[c->cur].label;
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
 * they are most of an idle connection's memory. (A TLS connection keeps
 * them: its SSL points into its target.) */
static void drop_targets(struct fwd_conn *c)
{
	snprintf(c->upstream, sizeof(c->upstream), "%s", c->targets[c->cur].label);
	for (size_t i = 0; i < c->n_targets; i++)
		tls_ctx_unref(c->targets[i].tls);
	free(c->targets);
	c->targets = NULL;
	c->n_targets = 0;
	c->cur = 0;
}

static void touch(struct fwd_conn *c)
{
	c->last_ms = now_ms();
}

enum pump_result { PUMP_OK, PUMP_SRC_RESET, PUMP_DST_RESET, PUMP_ERROR };

/* Move what can move from src to dst through d's pipe. Consumes readiness
 * until the kernel says EAGAIN, as edge-triggered epoll requires. */
static enum pump_result pump(struct fwd *f, struct fwd_conn *c, struct fwd_dir *d, int src,
			     int dst, bool *src_rd, bool *dst_wr)
{
	size_t cap = pipe_cap(f);

	for (;;) {
		bool progress = false;

		if (!d->eof && *src_rd && d->in_pipe < cap) {
			if (pipe_get(f, d) < 0)
				return PUMP_ERROR;
			ssize_t n = splice(src, NULL, d->pipe[1], NULL, cap - d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe += (size_t)n;
				progress = true;
			} else if (n == 0) {
				d->eof = true;
				progress = true;
			} else if (errno == EAGAIN) {
				/* Empty socket, or a pipe out of slots before cap bytes: only
				 * an empty pipe proves the socket is empty. */
				if (d->in_pipe == 0)
					*src_rd = false;
			} else if (errno == EINTR) {
				progress = true;
			} else if (errno == ECONNRESET || errno == ETIMEDOUT || errno == EPIPE) {
				return PUMP_SRC_RESET;
			} else {
				return PUMP_ERROR;
			}
		}
		if (d->in_pipe > 0 && *dst_wr) {
			ssize_t n = splice(d->pipe[0], NULL, dst, NULL, d->in_pipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				d->bytes += (uint64_t)n;
				if (d == &c->up)
					f->st.bytes_up += (uint64_t)n;
				else
					f->st.bytes_down += (uint64_t)n;
				progress = true;
			} else if (n < 0 && errno == EAGAIN) {
				*dst_wr = false;
			} else if (n < 0 && errno == EINTR) {
				progress = true;
			} else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
				return PUMP_DST_RESET;
			} else if (n < 0) {
				return PUMP_ERROR;
			}
		}
		if (!progress)
			break;
	}
	/* FIN goes only after every byte before it. */
	if (d->eof && d->in_pipe == 0 && !d->shut) {
		shutdown(dst, SHUT_WR);
		d->shut = true;
	}
	if (d->in_pipe == 0)
		pipe_put(f, d, false); /* idle connections hold no pipe */
	return PUMP_OK;
}

#define FWD_EVENTS_ALL (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

static void interest(struct fwd *f, struct ev *ev, int fd, uint32_t *cur, bool rd, bool wr)
{
	uint32_t want = EPOLLRDHUP | EPOLLET | (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0);
	if (want != *cur && ev_mod(f->epfd, fd, ev, want) == 0)
		*cur = want;
}

/* A plain connection listens only for what it can act on: writability while
 * bytes wait for a socket, readability while there is room to read into.
 * Otherwise every segment that lands behind a full pipe and every ACK that
 * frees send buffer wakes the loop for nothing (measured: agent CPU per GB of
 * bulk about halves). epoll_ctl MOD reports a readiness that is already
 * there, so nothing is missed. */
static void conn_interest(struct fwd *f, struct fwd_conn *c)
{
	size_t cap = pipe_cap(f);

	interest(f, &c->cev, c->cfd, &c->cmask, !c->up.eof && c->up.in_pipe < cap, c->down.in_pipe > 0);
	interest(f, &c->uev, c->ufd, &c->umask, !c->down.eof && c->down.in_pipe < cap, c->up.in_pipe > 0);
}

static void conn_run(struct fwd *f, struct fwd_conn *c)
{
	if (c->ssl) {
		tls_run(f, c);
		return;
	}
	uint64_t before = c->up.bytes + c->down.bytes;
	bool up_eof = c->up.eof, down_eof = c->down.eof;
	enum pump_result up, down = PUMP_OK;
	bool client_reset = false, upstream_reset = false;

	up = pump(f, c, &c->up, c->cfd, c->ufd, &c->c_rd, &c->u_wr);
	if (up == PUMP_OK)
		down = pump(f, c, &c->down, c->ufd, c->cfd, &c->u_rd, &c->c_wr);
	if (c->up.bytes + c->down.bytes != before || c->up.eof != up_eof || c->down.eof != down_eof)
		touch(c);
	/* Client → upstream: the source is the client; upstream → client: the reverse. */
	client_reset = up == PUMP_SRC_RESET || down == PUMP_DST_RESET;
	upstream_reset = up == PUMP_DST_RESET || down == PUMP_SRC_RESET;
	if (client_reset) {
		log_debug("conn %llu: client reset; resetting upstream %s", (unsigned long long)c->id,
			  fwd_conn_upstream(c));
		conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
		return;
	}
	if (upstream_reset) {
		log_debug("conn %llu: upstream %s reset; resetting the client", (unsigned long long)c->id,
			  fwd_conn_upstream(c));
		conn_free(f, c, FWD_END_RESET_UPSTREAM, true, false);
		return;
	}
	if (up == PUMP_ERROR || down == PUMP_ERROR) {
		log_warn_errno(errno, "conn %llu: splice failed: %m; resetting both sides",
			       (unsigned long long)c->id);
		conn_free(f, c, FWD_END_ERROR, true, true);
		return;
	}
	if (c->up.shut && c->down.shut) {
		conn_free(f, c, FWD_END_COMPLETED, false, false);
		return;
	}
	conn_interest(f, c);
}

void fwd_forget_netns(struct fwd *f, int netns_fd)
{
	for (struct fwd_conn *c = f->head; c; c = c->next)
		for (size_t i = 0; i < c->n_targets; i++)
			if (c->targets[i].netns_fd == netns_fd)
				c->targets[i].netns_fd = FWD_NETNS_GONE;
}

static int try_connect(struct fwd *f, struct fwd_conn *c)
{
	while (c->cur < c->n_targets) {
		struct fwd_target *t = &c->targets[c->cur];
		if (t->netns_fd == FWD_NETNS_GONE) {
			c->cur++; /* the pod's netns handle is gone */
			continue;
		}
		int fd = t->sa.ss_family == AF_UNIX ? netns_socket(-1, AF_UNIX, SOCK_STREAM, 0) :
						       netns_socket_pooled(t->netns_fd, t->sa.ss_family);

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
			log_info_errno(errno, "conn %llu: connect %s: %m", (unsigned long long)c->id, t->label);
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
	if (err == 0 && c->targets[c->cur].tls) {
		tls_start(f, c);
		return;
	}
	if (err == 0) {
		c->state = FWD_OPEN;
		touch(c);
		log_debug("conn %llu: connected to %s", (unsigned long long)c->id, c->targets[c->cur].label);
		drop_targets(c);
		conn_run(f, c);
		return;
	}
	log_info("conn %llu: connect %s: %s; trying the next endpoint", (unsigned long long)c->id,
		 c->targets[c->cur].label, strerror(err));
	close(c->ufd);
	c->ufd = -1;
	c->cur++;
	f->st.connect_retries++;
	if (now_ms() >= c->deadline_ms || try_connect(f, c) < 0)
		connect_failed(f, c, FWD_END_CONNECT_FAILED, strerror(err));
}

/* ---------- TLS origination ---------- */

/* Renegotiation is off: SSL_OP_NO_RENEGOTIATION makes OpenSSL answer a
 * server's HelloRequest with a warning and go on; we see the request here and
 * fail the connection, as the config asks. */
static void tls_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	struct fwd_conn *c = arg;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 && c->state == FWD_OPEN &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_HELLO_REQUEST)
		c->reneg_seen = true;
}

static void tls_failed(struct fwd *f, struct fwd_conn *c, enum tls_fail why, const char *detail)
{
	const struct fwd_target *t = &c->targets[c->cur];

	f->st.tls_fail[why]++;
	log_info("conn %llu: %s → %s: TLS to %s (sni %s) failed: %s: %s", (unsigned long long)c->id, c->pod,
		 c->service, log_escape(t->label), t->tt.sni ? log_escape(t->tt.sni) : "none",
		 tls_fail_name(why), log_escape(detail));
	SSL_free(c->ssl);
	c->ssl = NULL;
	fwd_reset_fd(c->ufd);
	c->ufd = -1;
	c->cur++;
	c->state = FWD_CONNECTING;
	if (now_ms() >= c->deadline_ms || try_connect(f, c) < 0)
		connect_failed(f, c, FWD_END_CONNECT_FAILED, tls_fail_name(why));
}

static void tls_start(struct fwd *f, struct fwd_conn *c)
{
	struct fwd_target *t = &c->targets[c->cur];

	c->ssl = tls_ssl_new(t->tls, c->ufd, &t->tt);
	if (!c->ssl) {
		tls_failed(f, c, TLS_FAIL_HANDSHAKE, "SSL_new failed");
		return;
	}
	c->reneg_allowed = t->tls->allow_renegotiation;
	SSL_set_msg_callback(c->ssl, tls_msg_cb);
	SSL_set_msg_callback_arg(c->ssl, c);
	c->state = FWD_HANDSHAKE;
	tls_handshake(f, c);
}

static void tls_handshake(struct fwd *f, struct fwd_conn *c)
{
	struct fwd_target *t = &c->targets[c->cur];
	char why[512];
	int r = SSL_do_handshake(c->ssl), e;

	if (r == 1) {
		if (tls_check_names(t->tls, c->ssl, &t->tt) < 0) {
			snprintf(why, sizeof(why), "certificate does not match %s%s",
				 t->tls->n_sans ? "the configured subjectAltNames" : t->tt.host ? t->tt.host :
				 t->tt.ip ? t->tt.ip : "any name (set serverName)", "");
			tls_failed(f, c, TLS_FAIL_NAME_MISMATCH, why);
			return;
		}
		f->st.tls_handshakes++;
		if (SSL_session_reused(c->ssl))
			f->st.tls_resumed++;
#ifdef BIO_get_ktls_send
		if (BIO_get_ktls_send(SSL_get_wbio(c->ssl)))
			f->st.tls_ktls++;
#endif
		/* A full handshake's session is kept for the next connection; a
		 * resumed one would only put back the ticket it just used (TLS 1.3
		 * tickets arrive later, through the new-session callback). */
		SSL_SESSION *sess = SSL_session_reused(c->ssl) ? NULL : SSL_get1_session(c->ssl);
		if (sess) {
			tls_session_store(t->tls, t->label, sess);
			SSL_SESSION_free(sess);
		}
		c->state = FWD_OPEN;
		c->u_rd = c->u_wr = true; /* OpenSSL may hold decrypted bytes already */
		touch(c);
		log_debug("conn %llu: TLS %s to %s%s", (unsigned long long)c->id, SSL_get_version(c->ssl),
			  log_escape(t->label), SSL_session_reused(c->ssl) ? " (resumed)" : "");
		tls_run(f, c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	enum tls_fail fail = tls_classify(c->ssl, e, why, sizeof(why));
	tls_failed(f, c, fail, why);
}

static void tls_run(struct fwd *f, struct fwd_conn *c)
{
	for (;;) {
		bool progress = false;
		int n, e;

		/* client → upstream */
		if (!c->up.eof && c->ulen == 0 && c->c_rd) {
			if (!c->ubuf)
				c->ubuf = xrealloc(NULL, TLS_BUF, 1); /* not zeroed: filled before read */
			ssize_t r = recv(c->cfd, c->ubuf, TLS_BUF, 0);
			if (r > 0) {
				c->ulen = (size_t)r;
				c->uoff = 0;
				progress = true;
			} else if (r == 0) {
				c->up.eof = true;
				progress = true;
			} else if (errno == EAGAIN) {
				c->c_rd = false;
			} else if (errno != EINTR) {
				conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
				return;
			}
			if (c->ulen == 0) {
				free(c->ubuf); /* nothing came: an idle connection holds no buffer */
				c->ubuf = NULL;
			}
		}
		/* SSL_write returns after each record (partial writes on): write
		 * them all now, not one per turn of the loop. */
		while (c->ulen > c->uoff) {
			n = SSL_write(c->ssl, c->ubuf + c->uoff, (int)(c->ulen - c->uoff));
			if (n > 0) {
				c->uoff += (size_t)n;
				c->up.bytes += (uint64_t)n;
				f->st.bytes_up += (uint64_t)n;
				if (c->uoff == c->ulen)
					c->ulen = c->uoff = 0;
				progress = true;
			} else if ((e = SSL_get_error(c->ssl, n)) == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				break;
			} else {
				ERR_clear_error();
				conn_free(f, c, FWD_END_RESET_UPSTREAM, true, false);
				return;
			}
		}
		if (c->up.eof && c->ulen == 0 && !c->up.shut) {
			/* close_notify, then FIN: TLS half-close. Into a full send
			 * buffer the alert goes only in part (WANT_WRITE): a FIN after
			 * half an alert is a truncated record, and the server drops
			 * what it still had to send. Finish the alert on writability
			 * first; SSL_shutdown resumes the pending write. */
			int r = SSL_shutdown(c->ssl);
			bool again = r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE;
			ERR_clear_error();
			if (!again) {
				shutdown(c->ufd, SHUT_WR);
				c->up.shut = true;
				progress = true;
			}
		}
		/* upstream → client */
		/* SSL_read gives a record at a time: gather records while the buffer
		 * has room for one, so the client gets them in one send. Only read
		 * when the socket said readable or OpenSSL holds bytes already (a
		 * read that would block costs a syscall per record otherwise). */
		while (!c->down.eof && c->doff == 0 && TLS_BUF - c->dlen >= TLS_RECORD &&
		       (c->u_rd || SSL_has_pending(c->ssl))) {
			if (!c->dbuf)
				c->dbuf = xrealloc(NULL, TLS_BUF, 1);
			n = SSL_read(c->ssl, c->dbuf + c->dlen, (int)(TLS_BUF - c->dlen));
			if (c->reneg_seen && !c->reneg_allowed) {
				f->st.tls_fail[TLS_FAIL_RENEGOTIATION]++;
				log_info("conn %llu: %s → %s: the server asked to renegotiate and allowRenegotiation is off; resetting",
					 (unsigned long long)c->id, c->pod, c->service);
				conn_free(f, c, FWD_END_ERROR, true, true);
				return;
			}
			if (n > 0) {
				c->dlen += (size_t)n;
				progress = true;
				continue;
			}
			if ((e = SSL_get_error(c->ssl, n)) == SSL_ERROR_ZERO_RETURN) {
				c->down.eof = true; /* close_notify, or EOF without it (documented) */
				progress = true;
			} else if (e == SSL_ERROR_WANT_READ) {
				c->u_rd = false; /* edge-triggered: the next EPOLLIN sets it */
			} else if (e != SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				conn_free(f, c, FWD_END_RESET_UPSTREAM, true, false);
				return;
			}
			break;
		}
		if (c->dlen == 0 && c->dbuf) {
			free(c->dbuf); /* an idle connection holds no buffer */
			c->dbuf = NULL;
		}
		if (c->dlen > c->doff && c->c_wr) {
			ssize_t r = send(c->cfd, c->dbuf + c->doff, c->dlen - c->doff, MSG_NOSIGNAL);
			if (r > 0) {
				c->doff += (size_t)r;
				c->down.bytes += (uint64_t)r;
				f->st.bytes_down += (uint64_t)r;
				if (c->doff == c->dlen)
					c->dlen = c->doff = 0;
				progress = true;
			} else if (errno == EAGAIN) {
				c->c_wr = false;
			} else if (errno != EINTR) {
				conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
				return;
			}
		}
		if (c->down.eof && c->dlen == 0 && !c->down.shut) {
			shutdown(c->cfd, SHUT_WR);
			c->down.shut = true;
			progress = true;
		}
		if (!progress)
			break;
		touch(c);
	}
	if (c->up.shut && c->down.shut) {
		conn_free(f, c, FWD_END_COMPLETED, false, false);
	}
}

int fwd_start(struct fwd *f, int cfd, struct fwd_target *targets, size_t n, const char *pod,
	      const char *orig, const char *service)
{
	struct fwd_conn *c = xcalloc(1, sizeof(*c));
	int r;

	c->f = f;
	c->id = ++f->next_id;
	ev_init(&c->cev, on_client);
	ev_init(&c->uev, on_upstream);
	c->cfd = cfd;
	c->ufd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->targets = targets;
	c->n_targets = n;
	c->created_ms = c->last_ms = now_ms();
	c->deadline_ms = c->created_ms + f->o.connect_timeout_ms;
	snprintf(c->pod, sizeof(c->pod), "%s", pod);
	snprintf(c->orig, sizeof(c->orig), "%s", orig);
	snprintf(c->service, sizeof(c->service), "%s", service);
	DLIST_PUSH(f->head, c);
	f->st.started++;
	f->st.active++;
	/* Socket options come with the socket: the pod listener has them. A
	 * plain connection's client socket is writable now and is watched for
	 * writability only once a write to it cannot complete (conn_interest). */
	bool tls = c->n_targets > 0 && c->targets[0].tls;
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
			tls_handshake(f, c);
		else if (events & (EPOLLERR | EPOLLHUP)) {
			conn_free(f, c, FWD_END_RESET_CLIENT, false, true);
		}
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
