// SPDX-License-Identifier: MIT
/* The plain transport: bytes move socket → pipe → socket with splice(2),
 * never through userspace; a pipe per direction is lent from the pool only
 * while bytes are in flight. The TLS transport pumps the directions the
 * kernel's TLS took over with the same loop (fwd_pump). */
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fwd-int.h"
#include "log.h"
#include "util.h"

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
void fwd_pipe_put(struct fwd *f, struct fwd_dir *d, bool failed)
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

enum pump_result fwd_pump(struct fwd *f, struct fwd_conn *c, struct fwd_dir *d, int src, int dst, bool *src_rd,
			  bool *dst_wr, unsigned flags)
{
	size_t cap = fwd_pipe_cap(f);

	for (;;) {
		bool progress = false;

		if (!d->eof && !d->ctl && *src_rd && d->in_pipe < cap) {
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
			} else if ((flags & PUMP_KTLS_SRC) && (errno == EINVAL || errno == EIO)) {
				/* kTLS: the next record is not data (an alert, a
				 * handshake message); the pipe drains first, then
				 * the caller reads it with recvmsg (SSL_read). */
				d->ctl = true;
				progress = true;
			} else if ((flags & PUMP_KTLS_SRC) && errno == EBADMSG) {
				return PUMP_SRC_RESET; /* a record that does not decrypt: as SSL_read's failure */
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
	if (!(flags & PUMP_NO_FIN) && d->eof && d->in_pipe == 0 && !d->shut) {
		shutdown(dst, SHUT_WR);
		d->shut = true;
	}
	if (d->in_pipe == 0)
		fwd_pipe_put(f, d, false); /* idle connections hold no pipe */
	return PUMP_OK;
}

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
	size_t cap = fwd_pipe_cap(f);

	interest(f, &c->cev, c->cfd, &c->cmask, !c->up.eof && c->up.in_pipe < cap, c->down.in_pipe > 0);
	interest(f, &c->uev, c->ufd, &c->umask, !c->down.eof && c->down.in_pipe < cap, c->up.in_pipe > 0);
}

static enum xprt_rc splice_run(struct fwd *f, struct fwd_conn *c)
{
	uint64_t before = c->up.bytes + c->down.bytes;
	bool up_eof = c->up.eof, down_eof = c->down.eof;
	enum pump_result up, down = PUMP_OK;
	bool client_reset = false, upstream_reset = false;

	up = fwd_pump(f, c, &c->up, c->cfd, c->ufd, &c->c_rd, &c->u_wr, 0);
	if (up == PUMP_OK)
		down = fwd_pump(f, c, &c->down, c->ufd, c->cfd, &c->u_rd, &c->c_wr, 0);
	if (c->up.bytes + c->down.bytes != before || c->up.eof != up_eof || c->down.eof != down_eof)
		fwd_touch(c);
	/* Client → upstream: the source is the client; upstream → client: the reverse. */
	client_reset = up == PUMP_SRC_RESET || down == PUMP_DST_RESET;
	upstream_reset = up == PUMP_DST_RESET || down == PUMP_SRC_RESET;
	if (client_reset) {
		log_debug("conn %llu: client reset; resetting upstream %s", (unsigned long long)c->id,
			  fwd_conn_upstream(c));
		return xprt_end(c, FWD_END_RESET_CLIENT, false, true);
	}
	if (upstream_reset) {
		log_debug("conn %llu: upstream %s reset; resetting the client", (unsigned long long)c->id,
			  fwd_conn_upstream(c));
		return xprt_end(c, FWD_END_RESET_UPSTREAM, true, false);
	}
	if (up == PUMP_ERROR || down == PUMP_ERROR) {
		log_warn_errno(errno, "conn %llu: splice failed: %m; resetting both sides",
			       (unsigned long long)c->id);
		return xprt_end(c, FWD_END_ERROR, true, true);
	}
	if (c->up.shut && c->down.shut)
		return xprt_end(c, FWD_END_COMPLETED, false, false);
	conn_interest(f, c);
	return XPRT_AGAIN;
}

/* Connected: nothing to set up, the pipes come with the first bytes. */
static enum xprt_rc splice_start(struct fwd *f, struct fwd_conn *c)
{
	(void)f;
	(void)c;
	return XPRT_READY;
}

static void splice_release(struct fwd *f, struct fwd_conn *c, bool failed)
{
	fwd_pipe_put(f, &c->up, failed);
	fwd_pipe_put(f, &c->down, failed);
}

const struct xprt_ops xprt_splice = {
	.name = "splice",
	.start = splice_start,
	.handshake = splice_start,
	.run = splice_run,
	.release = splice_release,
};
