// SPDX-License-Identifier: MIT
/* A TLS 1.3 echo server that sends a KeyUpdate after it has echoed AFTER
 * bytes of a connection: what a server that rekeys mid-stream looks like to
 * the forwarder (Python's ssl cannot send one; openssl s_server's `K` works
 * only from an interactive stdin, see tests/kernels/README.md).
 *
 *   keyupdate-peer PORT CERT KEY AFTER requested|not-requested|none LOG
 *
 * requested asks the client to update its sending key too (RFC 8446 4.6.3:
 * it must answer with a KeyUpdate of its own before its next data);
 * not-requested updates the server's key only; none is the control. One
 * connection at a time, blocking; each one appends a line to LOG:
 *   conn N: in X out Y key_update sent S received R end ok|<error>
 * "received" counts the client's KeyUpdates, which proves the client's new
 * key: whatever it sent after one was decrypted under that key. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct counts {
	unsigned sent, received;
};

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct counts *n = arg;

	(void)version;
	(void)ssl;
	if (content_type != SSL3_RT_HANDSHAKE || len == 0 || ((const unsigned char *)buf)[0] != SSL3_MT_KEY_UPDATE)
		return;
	if (write_p)
		n->sent++;
	else
		n->received++;
}

/* Why an SSL_*_ex call failed, into end: OpenSSL's reason, or what a
 * failure with an empty error queue means (the peer's EOF or reset). */
static void failed(SSL *ssl, char *end, size_t len)
{
	int e = SSL_get_error(ssl, 0);

	if (ERR_peek_error())
		ERR_error_string_n(ERR_peek_error(), end, len);
	else
		snprintf(end, len, "eof or reset (SSL error %d)", e);
}

/* One connection: echo until the client's close_notify or EOF; rekey once
 * after `after` bytes; the result line goes to log. */
static void serve(SSL_CTX *ctx, int fd, unsigned long id, long long after, int mode, FILE *log)
{
	static unsigned char buf[1 << 16];
	struct counts n = { 0, 0 };
	long long in = 0, out = 0;
	bool updated = mode == SSL_KEY_UPDATE_NONE;
	char end[256] = "ok";
	SSL *ssl = SSL_new(ctx);

	if (!ssl) {
		close(fd);
		return;
	}
	SSL_set_fd(ssl, fd);
	SSL_set_msg_callback(ssl, msg_cb);
	SSL_set_msg_callback_arg(ssl, &n);
	if (SSL_accept(ssl) != 1) {
		snprintf(end, sizeof(end), "handshake failed");
		goto out;
	}
	for (;;) {
		size_t got, put;

		if (!SSL_read_ex(ssl, buf, sizeof(buf), &got)) {
			if (SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN)
				SSL_shutdown(ssl);
			else
				failed(ssl, end, sizeof(end));
			break;
		}
		in += (long long)got;
		if (!SSL_write_ex(ssl, buf, got, &put)) {
			failed(ssl, end, sizeof(end));
			break;
		}
		out += (long long)put;
		/* the KeyUpdate goes out before the next data written */
		if (!updated && out >= after) {
			if (!SSL_key_update(ssl, mode)) {
				failed(ssl, end, sizeof(end));
				break;
			}
			updated = true;
		}
	}
out:
	fprintf(log, "conn %lu: in %lld out %lld key_update sent %u received %u end %s\n", id, in, out, n.sent,
		n.received, end[0] ? end : "error");
	fflush(log);
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned long id = 0;
	int mode, s, one = 1;
	SSL_CTX *ctx;
	FILE *log;

	if (argc != 7) {
		fprintf(stderr, "usage: %s PORT CERT KEY AFTER requested|not-requested|none LOG\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[5], "requested"))
		mode = SSL_KEY_UPDATE_REQUESTED;
	else if (!strcmp(argv[5], "not-requested"))
		mode = SSL_KEY_UPDATE_NOT_REQUESTED;
	else if (!strcmp(argv[5], "none"))
		mode = SSL_KEY_UPDATE_NONE;
	else
		return 2;
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	log = fopen(argv[6], "a");
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!log || s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		perror("keyupdate-peer");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			serve(ctx, fd, ++id, atoll(argv[4]), mode, log);
	}
}
