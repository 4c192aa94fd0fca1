// SPDX-License-Identifier: MIT
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int fdpass_send(int sock, const int *fds, size_t n)
{
	while (n > 0) {
		size_t k = MS_MIN(n, (size_t)FDPASS_BATCH);
		char byte = 'F';
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDPASS_BATCH)];
			struct cmsghdr align;
		} u;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = CMSG_SPACE(sizeof(int) * k) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);

		memset(u.buf, 0, sizeof(u.buf));
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * k);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * k);
		ssize_t r;
		do
			r = sendmsg(sock, &m, MSG_NOSIGNAL);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		fds += k;
		n -= k;
	}
	return 0;
}

int fdpass_recv(int sock, int *fds, size_t n)
{
	size_t got = 0;
	int r = 0;

	while (got < n) {
		char byte;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDPASS_BATCH)];
			struct cmsghdr align;
		} u;
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf) };
		ssize_t k = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k == 0 ? -EPIPE : -errno;
			break;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int in[FDPASS_BATCH];
			memcpy(in, CMSG_DATA(c), cnt * sizeof(int));
			for (size_t i = 0; i < cnt; i++) {
				if (got < n)
					fds[got++] = in[i];
				else
					close(in[i]); /* more than announced: not ours to keep */
			}
		}
		if (m.msg_flags & MSG_CTRUNC) {
			r = -EMSGSIZE;
			break;
		}
	}
	if (r < 0)
		for (size_t i = 0; i < got; i++)
			close(fds[i]);
	return r;
}

ssize_t fdpass_read_line(int sock, char *buf, size_t cap)
{
	size_t len = 0;

	for (;;) {
		if (len + 1 >= cap)
			return -E2BIG;
		ssize_t n = recv(sock, buf + len, cap - 1 - len, MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EPIPE : -errno;
		char *nl = memchr(buf + len, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - (buf + len)) + 1 : (size_t)n;
		ssize_t k = recv(sock, buf + len, take, 0);
		if (k < 0)
			return -errno;
		len += (size_t)k;
		if (len > 0 && buf[len - 1] == '\n') {
			buf[len - 1] = '\0';
			return (ssize_t)(len - 1);
		}
	}
}
