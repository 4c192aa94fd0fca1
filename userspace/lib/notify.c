// SPDX-License-Identifier: MIT
#include "notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
static bool notify_read;

/* The address in $NOTIFY_SOCKET, once; -EINVAL when it is not an AF_UNIX
 * one (vsock: is not supported), 0 when unset. */
static int notify_addr(struct sockaddr_un *sa, socklen_t *len)
{
	const char *e;
	size_t n;

	if (!notify_read) {
		notify_read = true;
		e = getenv("NOTIFY_SOCKET");
		if (e && *e)
			snprintf(notify_path, sizeof(notify_path), "%s", e);
		unsetenv("NOTIFY_SOCKET");
	}
	if (!notify_path[0])
		return 0;
	if (notify_path[0] != '/' && notify_path[0] != '@')
		return -EAFNOSUPPORT;
	n = strlen(notify_path);
	if (n > sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, notify_path, n);
	if (sa->sun_path[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract: the length says where it ends */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (notify_path[0] == '/'));
	return 1;
}

int notify_send(const char *state)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, r = notify_addr(&sa, &len);
	ssize_t n;

	if (r <= 0)
		return r;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	r = n < 0 ? -errno : 1;
	close(fd);
	return r;
}

int notify_ready(void)
{
	return notify_send("READY=1");
}

int notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	return notify_send(msg);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}
