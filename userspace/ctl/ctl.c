// SPDX-License-Identifier: MIT
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static const char *const cmd_names[CTL__MAX] = {
	[CTL_ENABLE] = "enable", [CTL_DISABLE] = "disable", [CTL_FORGET] = "forget",
	[CTL_PODS] = "pods",     [CTL_CONNS] = "conns",     [CTL_STATS] = "stats",
	[CTL_STATUS] = "status", [CTL_GET] = "get",         [CTL_RELOAD] = "reload",
	[CTL_DNS_LOOKUP] = "dns-lookup", [CTL_HANDOVER] = "handover",
	[CTL_ENDPOINTS] = "endpoints",
};

const char *ctl_cmd_name(enum ctl_cmd c)
{
	return c < CTL__MAX ? cmd_names[c] : "?";
}

int ctl_cmd_parse(const char *name)
{
	for (int i = 0; i < CTL__MAX; i++)
		if (streq(cmd_names[i], name))
			return i;
	return -1;
}

json_object *ctl_request(enum ctl_cmd c)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, CTL_F_CMD, json_object_new_string(ctl_cmd_name(c)));
	return req;
}

static int wait_fd(int fd, short ev, unsigned long long deadline)
{
	for (;;) {
		unsigned long long now = now_ms();
		struct pollfd p = { .fd = fd, .events = ev };
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 0;
	}
}

int ctl_call(const char *path, json_object *req, int timeout_ms, json_object **ret)
{
	unsigned long long deadline = now_ms() + (unsigned long long)timeout_ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	const char *msg;
	size_t len, off = 0, cap = 0;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A unix socket's connect does not complete later: EAGAIN means the
	 * agent's backlog is full (it is shedding idle clients), so try again
	 * until the deadline. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(10 * 1000);
	}
	msg = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	len = strlen(msg);
	while (off <= len) {
		/* the request and its newline */
		const char *p = off < len ? msg + off : "\n";
		size_t n = off < len ? len - off : 1;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN) {
				if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
					return r;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)w;
	}
	off = 0;
	for (;;) {
		if (off + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > CTL_MAX_MSG)
				return -EPROTO;
			buf = xrealloc(buf, cap, 1);
		}
		ssize_t n = recv(fd, buf + off, cap - off - 1, 0);
		if (n < 0) {
			if (errno == EAGAIN) {
				if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
					return r;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (memchr(buf + off - (size_t)n, '\n', (size_t)n))
			break;
	}
	if (off == 0)
		return -EPROTO;
	buf[off] = '\0';
	json_object *o = json_tokener_parse(buf);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EPROTO;
	}
	*ret = o;
	return 0;
}
