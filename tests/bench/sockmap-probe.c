// SPDX-License-Identifier: MIT
/* sockmap probe: a TCP proxy whose bytes never reach userspace. It answers
 * one question for BENCHMARKS.md: does joining a connection's two sockets in
 * the kernel (sockhash + sk_skb stream verdict, bytes counted in BPF) beat
 * the agent's splice? It is a measuring tool, not a second forwarder: one
 * forked process per connection, no policy.
 *   sockmap-probe PORT UPSTREAM-IP:PORT [SNDBUF]
 * listens on 127.0.0.1:PORT and joins each client to a new connection to the
 * upstream. SNDBUF, when given, is set on both sockets.
 *
 * Joining without reordering or losing a byte:
 * - The sockets are joined before the probe reads anything, so every byte
 *   takes the kernel path. Bytes that arrived before the join sit in the
 *   receive queue; setting SO_RCVLOWAT runs the socket's data_ready, and the
 *   verdict takes them, in order, ahead of anything later.
 * - Both sockets enter smp_targets (no programs) before smp_joined (the
 *   verdict): a redirect never finds its peer missing.
 * - A FIN is not redirected. On the client's FIN the probe waits until the
 *   peer's send queue has taken every byte the verdict counted for it
 *   (bytes_acked + SIOCOUTQ, from where it stood at the join), then shuts
 *   the peer down: the redirect's egress backlog is asynchronous, and a
 *   FIN before it drains would cut the stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sockmap-probe.h"
#include "sockmap-probe.skel.h"

#define DRAIN_TIMEOUT_MS 10000

static struct sockmap_probe_bpf *skel;

static int cookie(int fd, uint64_t *ret)
{
	socklen_t l = sizeof(*ret);
	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, ret, &l) < 0 ? -errno : 0;
}

/* Bytes this socket's send queue has taken since it opened: acknowledged
 * plus still queued (sent or not). Read in that order, an ACK landing in
 * between makes it smaller, never larger: a wait on it cannot end early. */
static uint64_t queued_total(int fd)
{
	struct tcp_info ti = { 0 };
	socklen_t l = sizeof(ti);
	int q = 0;

	getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
	ioctl(fd, SIOCOUTQ, &q);
	return ti.tcpi_bytes_acked + (uint64_t)q;
}

static uint64_t redirected(uint64_t from)
{
	struct smp_pair p = { 0 };
	bpf_map_lookup_elem(bpf_map__fd(skel->maps.smp_pairs), &from, &p);
	return p.bytes;
}

/* Each socket's peer, then both sockets into the targets, then into the
 * verdict's map (in that order: see the top of the file). */
static int join(const int fds[2], const uint64_t ck[2])
{
	int maps[2] = { bpf_map__fd(skel->maps.smp_targets), bpf_map__fd(skel->maps.smp_joined) };

	for (int i = 0; i < 2; i++) {
		struct smp_pair p = { .peer = ck[1 - i] };
		if (bpf_map_update_elem(bpf_map__fd(skel->maps.smp_pairs), &ck[i], &p, BPF_ANY) < 0)
			return -errno;
	}
	for (int m = 0; m < 2; m++)
		for (int i = 0; i < 2; i++) {
			uint64_t v = (uint64_t)fds[i];
			if (bpf_map_update_elem(maps[m], &ck[i], &v, BPF_ANY) < 0)
				return -errno;
		}
	return 0;
}

static void serve(int c, const struct sockaddr_in *up, int sndbuf)
{
	int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	int fds[2] = { c, u };
	uint64_t ck[2], base[2];
	int shut = 0;

	if (u < 0 || connect(u, (const struct sockaddr *)up, sizeof(*up)) < 0) {
		fprintf(stderr, "sockmap-probe: connect upstream: %s\n", strerror(errno));
		return;
	}
	for (int i = 0; i < 2; i++) {
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (sndbuf)
			setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		if (cookie(fds[i], &ck[i]) < 0) {
			fprintf(stderr, "sockmap-probe: SO_COOKIE: %s\n", strerror(errno));
			return;
		}
		base[i] = queued_total(fds[i]);
	}
	int r = join(fds, ck);
	if (r) {
		fprintf(stderr, "sockmap-probe: join: %s\n", strerror(-r));
		return;
	}
	for (int i = 0; i < 2; i++) /* run data_ready: what came before the join */
		setsockopt(fds[i], SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));

	struct pollfd p[2] = { { c, POLLRDHUP, 0 }, { u, POLLRDHUP, 0 } };
	while (shut < 2 && poll(p, 2, -1) >= 0) {
		for (int i = 0; i < 2; i++) {
			if (!p[i].revents)
				continue;
			if (!(p[i].revents & POLLRDHUP))
				return; /* reset: closing resets the other side too */
			int o = 1 - i;
			uint64_t want = redirected(ck[i]);
			for (int ms = 0; queued_total(fds[o]) - base[o] < want; ms++) {
				if (ms == DRAIN_TIMEOUT_MS) {
					fprintf(stderr, "sockmap-probe: %lu bytes never left the backlog\n",
						(unsigned long)(want - (queued_total(fds[o]) - base[o])));
					return;
				}
				usleep(1000);
			}
			shutdown(fds[o], SHUT_WR);
			p[i].fd = -1;
			shut++;
		}
	}
	if (getenv("SMP_VERBOSE"))
		fprintf(stderr, "sockmap-probe: joined connection done: %lu bytes up, %lu down\n",
			(unsigned long)redirected(ck[0]), (unsigned long)redirected(ck[1]));
}

int main(int argc, char **argv)
{
	struct sockaddr_in l = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in up = { .sin_family = AF_INET };
	char host[64];
	int port, ls, one = 1;

	if (argc < 3 || sscanf(argv[2], "%63[^:]:%d", host, &port) != 2 ||
	    inet_pton(AF_INET, host, &up.sin_addr) != 1) {
		fprintf(stderr, "usage: sockmap-probe PORT UPSTREAM-IP:PORT [SNDBUF]\n");
		return 2;
	}
	up.sin_port = htons((uint16_t)port);
	l.sin_port = htons((uint16_t)atoi(argv[1]));
	skel = sockmap_probe_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "sockmap-probe: load: %s\n", strerror(errno));
		return 1;
	}
	if (bpf_prog_attach(bpf_program__fd(skel->progs.smp_verdict), bpf_map__fd(skel->maps.smp_joined),
			    BPF_SK_SKB_STREAM_VERDICT, 0) < 0) {
		fprintf(stderr, "sockmap-probe: attach the verdict: %s\n", strerror(errno));
		return 1;
	}
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&l, sizeof(l)) < 0 || listen(ls, 128) < 0) {
		fprintf(stderr, "sockmap-probe: listen on 127.0.0.1:%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (fork() == 0) {
			close(ls);
			serve(c, &up, argc > 3 ? atoi(argv[3]) : 0);
			_exit(0);
		}
		close(c);
	}
}
