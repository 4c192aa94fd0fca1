// SPDX-License-Identifier: MIT
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

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

int netns_socket(int netns_fd, int domain, int type, int protocol)
{
	int fd, saved, r;

	type |= SOCK_CLOEXEC | SOCK_NONBLOCK;
	if (netns_fd < 0) {
		fd = socket(domain, type, protocol);
		return fd < 0 ? -errno : fd;
	}
	if ((r = netns_init()) < 0)
		return r;
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return -errno;
	fd = socket(domain, type, protocol);
	saved = errno;
	if (setns(self_ns, CLONE_NEWNET) < 0)
		abort(); /* stuck in a pod's netns: nothing safe left to do */
	return fd < 0 ? -saved : fd;
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
