// SPDX-License-Identifier: MIT
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "addr.h"
#include "util.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static int self_ns = -1;

int netns_init(void)
{
	if (self_ns >= 0)
		return 0;
	self_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	return self_ns < 0 ? -errno : 0;
}

int netns_open(const char *path)
{
	struct statfs sf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* A netns handle is an nsfs inode. A plain file here is usually the
	 * mount point of a netns bind mount this mount namespace cannot see. */
	if (fstatfs(fd, &sf) < 0 || sf.f_type != NSFS_MAGIC) {
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

/* Into netns_fd, and back to our own: every visit is this pair. */
static int netns_enter(int netns_fd)
{
	int r;

	if ((r = netns_init()) < 0)
		return r;
	return setns(netns_fd, CLONE_NEWNET) < 0 ? -errno : 0;
}

static void netns_leave(void)
{
	if (setns(self_ns, CLONE_NEWNET) < 0)
		abort(); /* stuck in a pod's netns: nothing safe left to do */
}

int netns_socket(int netns_fd, int domain, int type, int protocol)
{
	int fd, saved, r;

	type |= SOCK_CLOEXEC | SOCK_NONBLOCK;
	if (netns_fd < 0) {
		fd = socket(domain, type, protocol);
		return fd < 0 ? -errno : fd;
	}
	if ((r = netns_enter(netns_fd)) < 0)
		return r;
	fd = socket(domain, type, protocol);
	saved = errno;
	netns_leave();
	return fd < 0 ? -saved : fd;
}

int netns_call(int netns_fd, int (*fn)(void *ctx), void *ctx)
{
	int r;

	if ((r = netns_enter(netns_fd)) < 0)
		return r;
	r = fn(ctx);
	netns_leave();
	return r;
}

int netns_cookie(int netns_fd, uint64_t *ret)
{
	_cleanup_close_ int fd = netns_socket(netns_fd, AF_INET, SOCK_DGRAM, 0);
	socklen_t len = sizeof(*ret);

	if (fd < 0) {
		fd = netns_socket(netns_fd, AF_UNIX, SOCK_DGRAM, 0);
		if (fd < 0)
			return fd;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, ret, &len) < 0)
		return -errno;
	return 0;
}

int netns_same(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

#define POOL_BATCH 16
#define POOL_SLOTS 64

/* Unconnected sockets made ahead, per (netns fd, family). An fd number can
 * name another netns once closed, hence netns_close. */
struct pool_slot {
	int nsfd, domain;
	int fds[POOL_BATCH];
	int n;
};

static struct pool_slot pool[POOL_SLOTS];
static int pool_used;

static void pool_drain(struct pool_slot *p)
{
	while (p->n > 0)
		close(p->fds[--p->n]);
}

int netns_socket_pooled(int netns_fd, int domain)
{
	struct pool_slot *p = NULL;
	int saved, r;

	if (netns_fd < 0)
		return netns_socket(-1, domain, SOCK_STREAM, 0);
	for (int i = 0; i < pool_used; i++)
		if (pool[i].nsfd == netns_fd && pool[i].domain == domain)
			p = &pool[i];
	if (!p && pool_used < POOL_SLOTS) {
		p = &pool[pool_used++];
		*p = (struct pool_slot){ .nsfd = netns_fd, .domain = domain };
	}
	if (!p)
		return netns_socket(netns_fd, domain, SOCK_STREAM, 0);
	if (p->n > 0)
		return p->fds[--p->n];
	if ((r = netns_enter(netns_fd)) < 0)
		return r;
	int fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	saved = errno;
	for (int i = 0; fd >= 0 && i < POOL_BATCH; i++) {
		int x = socket(domain, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (x < 0)
			break;
		p->fds[p->n++] = x;
	}
	netns_leave();
	return fd < 0 ? -saved : fd;
}

void netns_close(int netns_fd)
{
	if (netns_fd < 0)
		return;
	for (int i = 0; i < pool_used; i++)
		if (pool[i].nsfd == netns_fd) {
			pool_drain(&pool[i]);
			pool[i] = pool[--pool_used];
			i--;
		}
	close(netns_fd);
}

int netns_loopback_socket(int netns_fd, int family, int type, uint16_t port, int backlog)
{
	struct sockaddr_storage ss;
	struct ms_addr lo;
	socklen_t len;
	int fd, one = 1;

	addr_parse(family == AF_INET ? "127.0.0.1" : "::1", &lo);
	len = addr_to_sockaddr(&lo, port, family == AF_INET6, &ss);
	fd = netns_socket(netns_fd, family, type, 0);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (type == SOCK_STREAM && listen(fd, backlog) < 0)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
