// SPDX-License-Identifier: MIT
/* Load generator and server for the benchmarks, C so that the tool is never
 * the bottleneck it measures.
 *   connrate server PORT                 accept; read 100 bytes; write 100; close (or keep going)
 *   connrate short HOST PORT SECS CONC   new connection per request; prints conns/s
 *   connrate rr HOST PORT SECS           one kept-alive connection; prints p50/p99 latency
 *   connrate connect HOST PORT N         N blocking connect()s one after another, each
 *                                        closed with a reset; prints the connect() call's
 *                                        p50/p99/mean in microseconds (the steering cost:
 *                                        the hook or the nat rule runs inside that call) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 100

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static socklen_t mkaddr(const char *host, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &s4->sin_addr);
	return sizeof(*s4);
}

struct sconn {
	int fd;
	int got;
};

static int server(int port)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	char buf[4096], reply[MSG];

	memset(reply, 'r', sizeof(reply));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		perror("listen");
		return 1;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;
			if (!c) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			ssize_t r = read(c->fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(c->fd);
				free(c);
				continue;
			}
			c->got += (int)r;
			while (c->got >= MSG) {
				c->got -= MSG;
				if (write(c->fd, reply, MSG) != MSG) {
					/* a 100-byte write to an empty socket buffer does not block */
				}
			}
		}
	}
}

static int short_conns(const char *host, int port, double secs, int conc)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(host, port, &ss);
	int ep = epoll_create1(0), one = 1;
	long done = 0, fails = 0;
	char req[MSG], buf[MSG * 2];
	double end = now_s() + secs;
	int *got = calloc(65536, sizeof(int));

	memset(req, 'q', sizeof(req));
	for (int i = 0; i < conc; i++) {
	start:;
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
			close(fd);
			fails++;
			if (fails > 1000) {
				fprintf(stderr, "connect: %s\n", strerror(errno));
				free(got);
				return 1;
			}
			goto start;
		}
		got[fd] = -1; /* connecting */
		struct epoll_event e = { .events = EPOLLOUT | EPOLLIN, .data.fd = fd };
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
	}
	while (now_s() < end) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (got[fd] == -1 && (evs[i].events & EPOLLOUT)) {
				int err = 0;
				socklen_t l = sizeof(err);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
				if (err || write(fd, req, MSG) != MSG) {
					fails++;
					goto reopen;
				}
				got[fd] = 0;
				struct epoll_event e = { .events = EPOLLIN, .data.fd = fd };
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				fails++;
				goto reopen;
			}
			got[fd] += (int)r;
			if (got[fd] < MSG)
				continue;
			done++;
		reopen:
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
			fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
				close(fd);
				fails++;
				continue;
			}
			got[fd] = -1;
			struct epoll_event e = { .events = EPOLLOUT | EPOLLIN, .data.fd = fd };
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
		}
	}
	printf("%.0f conns/s (%ld done, %ld failed)\n", (double)done / secs, done, fails);
	free(got);
	close(ep);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rr(const char *host, int port, double secs)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(host, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
	char req[MSG], buf[MSG];
	size_t cap = 1 << 20, n = 0;
	double *lat = malloc(cap * sizeof(double)), end = now_s() + secs;

	memset(req, 'q', sizeof(req));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		perror("connect");
		return 1;
	}
	while (now_s() < end && n < cap) {
		double t0 = now_s();
		if (write(fd, req, MSG) != MSG)
			return 1;
		int got = 0;
		while (got < MSG) {
			ssize_t r = read(fd, buf, sizeof(buf) - (size_t)got);
			if (r <= 0)
				return 1;
			got += (int)r;
		}
		lat[n++] = now_s() - t0;
	}
	qsort(lat, n, sizeof(double), cmp_d);
	printf("p50 %.3f ms p99 %.3f ms (%zu requests)\n", lat[n / 2] * 1e3, lat[n * 99 / 100] * 1e3, n);
	return 0;
}

static int connects(const char *host, int port, int n)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(host, port, &ss);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	double *lat = calloc((size_t)n, sizeof(double)), sum = 0;

	for (int i = 0; i < n; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM, 0);
		double t0 = now_s();
		if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
			perror("connect");
			free(lat);
			return 1;
		}
		lat[i] = now_s() - t0;
		sum += lat[i];
		/* a reset, not a FIN: no TIME_WAIT, and a short-lived conntrack entry */
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_d);
	printf("p50 %.1f us p99 %.1f us mean %.1f us (%d connects)\n", lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6,
	       sum / n * 1e6, n);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "server") == 0)
		return server(atoi(argv[2]));
	if (argc >= 6 && strcmp(argv[1], "short") == 0)
		return short_conns(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]));
	if (argc >= 5 && strcmp(argv[1], "rr") == 0)
		return rr(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc >= 5 && strcmp(argv[1], "connect") == 0 && atoi(argv[4]) > 0)
		return connects(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: connrate server PORT | short HOST PORT SECS CONC | rr HOST PORT SECS | connect HOST PORT N\n");
	return 2;
}
