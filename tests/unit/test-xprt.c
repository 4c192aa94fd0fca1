// SPDX-License-Identifier: MIT
/* The transport interface on real sockets, without root: the splice
 * transport moves bytes both ways, forwards a FIN after the bytes before
 * it, says how a connection ended (never frees it), and gives its pipes
 * back to the pool. TCP pairs on loopback: a reset needs TCP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fwd-int.h"
#include "util.h"

/* A connected TCP pair on 127.0.0.1: *a is the dialler, *b the accepted end. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(*b >= 0);
	close(l);
}

struct rig {
	struct fwd f;
	struct fwd_conn c;
	int app, server; /* the pod's end and the endpoint's end */
};

static void rig_open(struct rig *r)
{
	struct fwd_opts o = { .pipe_size = 65536, .pipe_pool = 4 };
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	memset(r, 0, sizeof(*r));
	fwd_init(&r->f, epfd, &o);
	r->c.f = &r->f;
	r->c.up.pipe[0] = r->c.up.pipe[1] = r->c.down.pipe[0] = r->c.down.pipe[1] = -1;
	tcp_pair(&r->app, &r->c.cfd);
	tcp_pair(&r->server, &r->c.ufd);
	r->c.xprt = &xprt_splice;
	r->c.state = FWD_OPEN;
	assert_int_equal(ev_add(epfd, r->c.cfd, &r->c.cev, FWD_EVENTS_ALL), 0);
	assert_int_equal(ev_add(epfd, r->c.ufd, &r->c.uev, FWD_EVENTS_ALL), 0);
	assert_int_equal(r->c.xprt->start(&r->f, &r->c), XPRT_READY);
}

static void rig_close(struct rig *r)
{
	r->c.xprt->release(&r->f, &r->c, false);
	close(r->c.cfd);
	close(r->c.ufd);
	close(r->app);
	close(r->server);
	int epfd = r->f.epfd;
	fwd_fini(&r->f);
	close(epfd);
}

/* Run the transport as the loop would, readiness all round, until it ends
 * or stops making progress. */
static enum xprt_rc run(struct rig *r)
{
	enum xprt_rc rc = XPRT_AGAIN;

	for (int i = 0; i < 50 && rc == XPRT_AGAIN; i++) {
		struct pollfd p[2] = { { r->c.cfd, POLLIN, 0 }, { r->c.ufd, POLLIN, 0 } };
		poll(p, 2, 10);
		r->c.c_rd = r->c.u_rd = r->c.c_wr = r->c.u_wr = true;
		rc = r->c.xprt->run(&r->f, &r->c);
	}
	return rc;
}

static void read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, 0);
		assert_true(k > 0);
		got += (size_t)k;
	}
}

static void test_splice_both_ways_then_fin(void **state)
{
	struct rig r;
	char big[200000], back[200000];

	(void)state;
	rig_open(&r);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + 1);
	/* more than a pipe holds: the transport must come back for the rest */
	size_t sent = 0;
	while (sent < sizeof(big)) {
		ssize_t k = send(r.app, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
		if (k > 0)
			sent += (size_t)k;
		assert_int_equal(run(&r), XPRT_AGAIN);
		/* the endpoint reads what arrived so far */
		ssize_t g;
		static size_t at;
		while ((g = recv(r.server, back + at, sizeof(back) - at, MSG_DONTWAIT)) > 0)
			at += (size_t)g;
		if (sent == sizeof(big) && at == sizeof(big))
			break;
	}
	assert_memory_equal(big, back, sizeof(big));
	assert_int_equal(r.c.up.bytes, sizeof(big));

	assert_int_equal(send(r.server, "pong", 4, 0), 4);
	assert_int_equal(run(&r), XPRT_AGAIN);
	char four[4];
	read_exact(r.app, four, 4);
	assert_memory_equal(four, "pong", 4);

	/* half-close: the app's FIN reaches the endpoint, the reverse stays open */
	shutdown(r.app, SHUT_WR);
	assert_int_equal(run(&r), XPRT_AGAIN);
	assert_true(r.c.up.shut);
	assert_int_equal(recv(r.server, four, 1, 0), 0);
	assert_int_equal(send(r.server, "late", 4, 0), 4);
	shutdown(r.server, SHUT_WR);
	assert_int_equal(run(&r), XPRT_END);
	assert_int_equal(r.c.end_how, FWD_END_COMPLETED);
	assert_false(r.c.end_reset_client);
	assert_false(r.c.end_reset_upstream);
	read_exact(r.app, four, 4);
	assert_memory_equal(four, "late", 4);
	/* idle pipes went back to the pool, none leaked */
	assert_int_equal(r.c.up.pipe[0], -1);
	assert_int_equal(r.c.down.pipe[0], -1);
	assert_true(r.f.st.pipes_pooled >= 1);
	assert_int_equal(r.f.st.pipes_pooled, r.f.n_pool);
	rig_close(&r);
}

static void rst(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void test_splice_reset_by_either_side(void **state)
{
	struct rig r;

	(void)state;
	rig_open(&r);
	assert_int_equal(send(r.app, "x", 1, 0), 1);
	assert_int_equal(run(&r), XPRT_AGAIN);
	rst(r.app);
	r.app = -1;
	assert_int_equal(run(&r), XPRT_END);
	assert_int_equal(r.c.end_how, FWD_END_RESET_CLIENT);
	assert_true(r.c.end_reset_upstream); /* the endpoint must see the reset too */
	assert_false(r.c.end_reset_client);
	rig_close(&r);

	rig_open(&r);
	rst(r.server);
	r.server = -1;
	assert_int_equal(send(r.app, "y", 1, 0), 1);
	assert_int_equal(run(&r), XPRT_END);
	assert_int_equal(r.c.end_how, FWD_END_RESET_UPSTREAM);
	assert_true(r.c.end_reset_client);
	rig_close(&r);
}

/* The control case: without any event on either side the transport neither
 * ends nor moves a byte. */
static void test_splice_idle_stays(void **state)
{
	struct rig r;

	(void)state;
	rig_open(&r);
	assert_int_equal(run(&r), XPRT_AGAIN);
	assert_int_equal(r.c.up.bytes + r.c.down.bytes, 0);
	assert_int_equal(r.c.up.pipe[0], -1); /* an idle connection holds no pipe */
	rig_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splice_both_ways_then_fin),
		cmocka_unit_test(test_splice_reset_by_either_side),
		cmocka_unit_test(test_splice_idle_stays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
