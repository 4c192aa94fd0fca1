// SPDX-License-Identifier: MIT
#include "ev.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "util.h"

/* The objects freed during one epoll batch: events for them may still wait
 * further down the batch, so their memory (and its dead flags) lives until
 * the batch is done. Single-threaded, like the loop. */
static void **grave;
static size_t n_grave, cap_grave;

static int ev_ctl(int epfd, int op, int fd, struct ev *ev, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.ptr = ev };

	return epoll_ctl(epfd, op, fd, &ee) < 0 ? -errno : 0;
}

int ev_add(int epfd, int fd, struct ev *ev, uint32_t events)
{
	return ev_ctl(epfd, EPOLL_CTL_ADD, fd, ev, events);
}

int ev_mod(int epfd, int fd, struct ev *ev, uint32_t events)
{
	return ev_ctl(epfd, EPOLL_CTL_MOD, fd, ev, events);
}

void ev_del(int epfd, int fd)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

void *ev_buf_new(int max)
{
	return xcalloc((size_t)max, sizeof(struct epoll_event));
}

int ev_run_once(int epfd, void *evbuf, int max, int timeout_ms)
{
	struct epoll_event *evs = evbuf;
	int n = epoll_wait(epfd, evs, max, timeout_ms);

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct ev *ev = evs[i].data.ptr;
		if (!ev->dead) /* else freed by an event earlier in this batch */
			ev->fn(ev, evs[i].events);
	}
	ev_reap();
	return n;
}

void ev_defer_free(void *obj)
{
	if (n_grave == cap_grave) {
		cap_grave = cap_grave ? cap_grave * 2 : 64;
		grave = xrealloc(grave, cap_grave, sizeof(*grave));
	}
	grave[n_grave++] = obj;
}

void ev_reap(void)
{
	for (size_t i = 0; i < n_grave; i++)
		free(grave[i]);
	n_grave = 0;
}

void ev_fini(void)
{
	ev_reap();
	free(grave);
	grave = NULL;
	cap_grave = 0;
}
