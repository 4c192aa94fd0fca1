// SPDX-License-Identifier: MIT
/* The TLS transport: the forwarder originates TLS to the endpoint (OpenSSL 3;
 * tls.c builds the contexts and verifies); plaintext from the client is
 * staged in bounded buffers and goes out with SSL_write, and the reverse.
 * Where OpenSSL handed a direction to kernel TLS after the handshake
 * (SSL_OP_ENABLE_KTLS: TLS 1.2 both ways, TLS 1.3 sending only with
 * OpenSSL 3.0), that direction's bytes are spliced as in xprt-splice.c:
 * plaintext into the kTLS socket, plaintext out of it. A record splice
 * cannot take (an alert, a handshake message) is read with SSL_read, whose
 * kTLS path takes it with recvmsg and its record-type cmsg; then splicing
 * resumes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "fwd-int.h"
#include "log.h"
#include "util.h"

/* Plaintext staging per direction: 64 KiB from the client becomes four TLS
 * records; up to four records from the server go to the client in one send. */
#define TLS_BUF 65536
#define TLS_RECORD 16384 /* the largest plaintext of one record */

/* Renegotiation is off: SSL_OP_NO_RENEGOTIATION makes OpenSSL answer a
 * server's HelloRequest with a warning and go on; we see the request here and
 * fail the connection, as the config asks.
 * A TLS 1.3 KeyUpdate with update_requested asks us to send a KeyUpdate of
 * our own, and to encrypt under the next key, before our next data (RFC 8446
 * 4.6.3). OpenSSL 3.0 sends it at the next SSL_write. With the sending
 * direction in the kernel there is no SSL_write: the reply would never go
 * and the kernel would go on under the old key, and Linux 6.1 cannot take a
 * new TX key on a socket anyway (TLS_TX is set once). The request cannot be
 * honoured, so tls_run ends the connection, counted, rather than ignore it.
 * In userspace OpenSSL does it all. */
static void tls_msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	const unsigned char *msg = buf;
	struct fwd_conn *c = arg;

	(void)version;
	(void)ssl;
	if (write_p || content_type != SSL3_RT_HANDSHAKE || len == 0 || c->state != FWD_OPEN)
		return;
	if (msg[0] == SSL3_MT_HELLO_REQUEST)
		c->reneg_seen = true;
	/* type, 24-bit length, request_update */
	if (msg[0] == SSL3_MT_KEY_UPDATE && len >= 5 && msg[4] == SSL_KEY_UPDATE_REQUESTED && c->ktls_tx)
		c->ktls_rekey_asked = true;
}

/* This endpoint's handshake failed: say why; fwd.c tries the next. */
static enum xprt_rc tls_failed(struct fwd *f, struct fwd_conn *c, enum tls_fail why, const char *detail)
{
	const struct fwd_target *t = fwd_cur(c);

	f->st.tls_fail[why]++;
	c->last_error = tls_fail_name(why);
	log_info("conn %llu: %s → %s: TLS to %s (sni %s) failed: %s: %s", (unsigned long long)c->id, c->pod,
		 c->service, log_escape(t->label), t->tt.sni ? log_escape(t->tt.sni) : "none",
		 tls_fail_name(why), log_escape(detail));
	return XPRT_FAILED;
}

static enum xprt_rc tls_handshake(struct fwd *f, struct fwd_conn *c);

static enum xprt_rc tls_start(struct fwd *f, struct fwd_conn *c)
{
	const struct fwd_target *t = fwd_cur(c);

	c->ssl = tls_ssl_new(t->tls, c->ufd, &t->tt);
	if (!c->ssl)
		return tls_failed(f, c, TLS_FAIL_HANDSHAKE, "SSL_new failed");
	c->reneg_allowed = t->tls->allow_renegotiation;
	SSL_set_msg_callback(c->ssl, tls_msg_cb);
	SSL_set_msg_callback_arg(c->ssl, c);
	return tls_handshake(f, c);
}

static enum xprt_rc tls_handshake(struct fwd *f, struct fwd_conn *c)
{
	const struct fwd_target *t = fwd_cur(c);
	char why[512];
	int r = SSL_do_handshake(c->ssl), e;

	if (r == 1) {
		if (tls_check_names(t->tls, c->ssl, &t->tt) < 0) {
			snprintf(why, sizeof(why), "certificate does not match %s%s",
				 t->tls->n_sans ? "the configured subjectAltNames" : t->tt.host ? t->tt.host :
				 t->tt.ip ? t->tt.ip : "any name (set serverName)", "");
			return tls_failed(f, c, TLS_FAIL_NAME_MISMATCH, why);
		}
		f->st.tls_handshakes++;
		if (SSL_session_reused(c->ssl))
			f->st.tls_resumed++;
#ifdef BIO_get_ktls_send
		c->ktls_tx = BIO_get_ktls_send(SSL_get_wbio(c->ssl));
		c->ktls_rx = BIO_get_ktls_recv(SSL_get_rbio(c->ssl));
#endif
		f->st.tls_ktls_tx += c->ktls_tx;
		f->st.tls_ktls_rx += c->ktls_rx;
		if (t->tls->ktls && !c->ktls_tx && !c->ktls_rx)
			f->st.tls_ktls_userspace++;
		/* Records OpenSSL read ahead before the kernel took over go through
		 * SSL_read first. */
		c->down.ctl = c->ktls_rx && SSL_has_pending(c->ssl);
		/* A full handshake's session is kept for the next connection; a
		 * resumed one would only put back the ticket it just used (TLS 1.3
		 * tickets arrive later, through the new-session callback). */
		SSL_SESSION *sess = SSL_session_reused(c->ssl) ? NULL : SSL_get1_session(c->ssl);
		if (sess) {
			tls_session_store(t->tls, t->label, sess);
			SSL_SESSION_free(sess);
		}
		c->u_rd = c->u_wr = true; /* OpenSSL may hold decrypted bytes already */
		log_debug("conn %llu: TLS %s %s to %s%s%s%s", (unsigned long long)c->id, SSL_get_version(c->ssl),
			  SSL_get_cipher_name(c->ssl), log_escape(t->label),
			  SSL_session_reused(c->ssl) ? " (resumed)" : "", c->ktls_tx ? ", kTLS TX" : "",
			  c->ktls_rx ? ", kTLS RX" : "");
		return XPRT_READY;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return XPRT_AGAIN;
	enum tls_fail fail = tls_classify(c->ssl, e, why, sizeof(why));
	return tls_failed(f, c, fail, why);
}

/* A spliced direction failed; up: client → upstream. */
static enum xprt_rc ktls_failed(struct fwd_conn *c, enum pump_result r, bool up)
{
	if (r == (up ? PUMP_SRC_RESET : PUMP_DST_RESET))
		return xprt_end(c, FWD_END_RESET_CLIENT, false, true);
	if (r == (up ? PUMP_DST_RESET : PUMP_SRC_RESET))
		return xprt_end(c, FWD_END_RESET_UPSTREAM, true, false);
	log_warn_errno(errno, "conn %llu: splice %s kTLS failed: %m; resetting both sides", (unsigned long long)c->id,
		       up ? "into" : "out of");
	return xprt_end(c, FWD_END_ERROR, true, true);
}

/* What a spliced direction changes besides bytes (the loop goes on while
 * anything moves). */
static unsigned ktls_flags(const struct fwd_conn *c)
{
	return (unsigned)c->up.eof | (unsigned)c->down.eof << 1 | (unsigned)c->down.ctl << 2 |
	       (unsigned)(c->up.in_pipe > 0) << 3 | (unsigned)(c->down.in_pipe > 0) << 4;
}

static enum xprt_rc tls_run(struct fwd *f, struct fwd_conn *c)
{
	for (;;) {
		bool progress = false;
		uint64_t moved = c->up.bytes + c->down.bytes;
		unsigned eofs = ktls_flags(c);
		int n, e;

		/* client → upstream */
		if (c->ktls_tx) {
			enum pump_result r = fwd_pump(f, c, &c->up, c->cfd, c->ufd, &c->c_rd, &c->u_wr, PUMP_NO_FIN);
			if (r != PUMP_OK)
				return ktls_failed(c, r, true);
		} else if (!c->up.eof && c->ulen == 0 && c->c_rd) {
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
				return xprt_end(c, FWD_END_RESET_CLIENT, false, true);
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
				return xprt_end(c, FWD_END_RESET_UPSTREAM, true, false);
			}
		}
		if (c->up.eof && c->ulen == 0 && c->up.in_pipe == 0 && !c->up.shut) {
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
		if (c->ktls_rx && !c->down.ctl && c->dlen == 0) {
			enum pump_result r = fwd_pump(f, c, &c->down, c->ufd, c->cfd, &c->u_rd, &c->c_wr, PUMP_KTLS_SRC);
			if (r != PUMP_OK)
				return ktls_failed(c, r, false);
		}
		/* kTLS RX: SSL_read only for a record splice refused, once the
		 * pipe holds nothing that came before it. */
		bool ssl_rd = !c->ktls_rx || (c->down.ctl && c->down.in_pipe == 0 && c->dlen == 0);
		bool ctl = ssl_rd && c->ktls_rx, read = false;
		while (ssl_rd && !c->down.eof && c->doff == 0 && TLS_BUF - c->dlen >= TLS_RECORD &&
		       (c->u_rd || SSL_has_pending(c->ssl))) {
			read = true;
			if (!c->dbuf)
				c->dbuf = xrealloc(NULL, TLS_BUF, 1);
			n = SSL_read(c->ssl, c->dbuf + c->dlen, (int)(TLS_BUF - c->dlen));
			if (c->reneg_seen && !c->reneg_allowed) {
				f->st.tls_fail[TLS_FAIL_RENEGOTIATION]++;
				log_info("conn %llu: %s → %s: the server asked to renegotiate and allowRenegotiation is off; resetting",
					 (unsigned long long)c->id, c->pod, c->service);
				return xprt_end(c, FWD_END_ERROR, true, true);
			}
			if (c->ktls_rekey_asked) {
				/* reset both sides: nothing more may go to the server
				 * under the old key, and a client must not take a cut
				 * stream for a complete one */
				f->st.tls_fail[TLS_FAIL_KTLS_KEY_UPDATE]++;
				log_info("conn %llu: %s → %s: the server asked for a TLS 1.3 KeyUpdate and the kernel encrypts this connection (kTLS TX cannot be rekeyed here); resetting",
					 (unsigned long long)c->id, c->pod, c->service);
				return xprt_end(c, FWD_END_ERROR, true, true);
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
				char why[256] = "";
				ERR_error_string_n(ERR_peek_error(), why, sizeof(why));
				log_debug("conn %llu: TLS read from %s failed (%d): %s", (unsigned long long)c->id,
					  fwd_conn_upstream(c), e, why);
				ERR_clear_error();
				return xprt_end(c, FWD_END_RESET_UPSTREAM, true, false);
			}
			break;
		}
		if (ctl && read) {
			c->down.ctl = false; /* taken (with any data after it): splice again */
			progress = true;
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
				return xprt_end(c, FWD_END_RESET_CLIENT, false, true);
			}
		}
		if (c->down.eof && c->dlen == 0 && c->down.in_pipe == 0 && !c->down.shut) {
			shutdown(c->cfd, SHUT_WR);
			c->down.shut = true;
			progress = true;
		}
		if (moved != c->up.bytes + c->down.bytes || eofs != ktls_flags(c))
			progress = true;
		if (!progress)
			break;
		fwd_touch(c);
	}
	if (c->up.shut && c->down.shut)
		return xprt_end(c, FWD_END_COMPLETED, false, false);
	return XPRT_AGAIN;
}

static void tls_release(struct fwd *f, struct fwd_conn *c, bool failed)
{
	fwd_pipe_put(f, &c->up, failed);
	fwd_pipe_put(f, &c->down, failed);
	c->ktls_tx = c->ktls_rx = c->down.ctl = c->ktls_rekey_asked = false;
	if (c->ssl) {
		/* However the connection ended, its session stays resumable (RFC
		 * 5246 7.2.1, from TLS 1.1 on). Without this OpenSSL marks the
		 * session not resumable when no close_notify was sent, and every
		 * later connection sharing the stored session pays a full handshake. */
		if (SSL_is_init_finished(c->ssl) && SSL_version(c->ssl) >= TLS1_1_VERSION)
			SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	free(c->ubuf);
	free(c->dbuf);
	c->ubuf = c->dbuf = NULL;
	c->ulen = c->uoff = c->dlen = c->doff = 0;
}

const struct xprt_ops xprt_tls = {
	.name = "tls",
	.keeps_targets = true,
	.start = tls_start,
	.handshake = tls_handshake,
	.run = tls_run,
	.release = tls_release,
};
