/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Every epoll registration points at a struct ev embedded in its owner's
 * object, with the owner's callback: the loop calls ev->fn and knows nothing
 * of what the fd is (HAProxy's fd_insert(fd, owner, iocb), systemd's
 * sd_event_add_io). The owner finds itself with container_of. */
struct ev;
typedef void (*ev_fn)(struct ev *ev, uint32_t events);

struct ev {
	ev_fn fn;
	bool dead; /* its object is freed: skip events still waiting in the batch */
};

static inline void ev_init(struct ev *ev, ev_fn fn)
{
	ev->fn = fn;
	ev->dead = false;
}

/* epoll_ctl ADD / MOD of fd for ev; 0 or -errno. */
int ev_add(int epfd, int fd, struct ev *ev, uint32_t events);
int ev_mod(int epfd, int fd, struct ev *ev, uint32_t events);
/* Remove fd from the set (before closing it, if it may have been dup'ed). */
void ev_del(int epfd, int fd);
/* Wait for up to max events (timeout as epoll_wait) and call each live one's
 * callback, then free what was deferred. Returns epoll_wait's count, or
 * -errno (-EINTR included). */
int ev_run_once(int epfd, void *evbuf, int max, int timeout_ms);
/* The buffer ev_run_once needs for max events. */
void *ev_buf_new(int max);

/* Free obj (with free(3)) once the current epoll batch is done; the owner
 * marks the object's evs dead first. */
void ev_defer_free(void *obj);
void ev_reap(void);
void ev_fini(void);
