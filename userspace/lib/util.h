/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The object that holds member at ptr. */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define MS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MS_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) _p_ = (p);   \
		(p) = NULL;                \
		_p_;                       \
	})
#define TAKE_FD(fd)                        \
	({                                 \
		int _fd_ = (fd);           \
		(fd) = -1;                 \
		_fd_;                      \
	})

/* Intrusive doubly linked lists: the item has prev and next members. */
#define DLIST_PUSH(head, item)                \
	do {                                  \
		(item)->prev = NULL;          \
		(item)->next = (head);        \
		if (head)                     \
			(head)->prev = (item); \
		(head) = (item);              \
	} while (0)
#define DLIST_REMOVE(head, item)                           \
	do {                                               \
		if ((item)->prev)                          \
			(item)->prev->next = (item)->next; \
		else                                       \
			(head) = (item)->next;             \
		if ((item)->next)                          \
			(item)->next->prev = (item)->prev; \
	} while (0)

static inline bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Allocation failure is not recoverable in this program: abort loudly. */
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n, size_t sz);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* accept4(SOCK_CLOEXEC|SOCK_NONBLOCK) that survives fd exhaustion: out of
 * fds (EMFILE/ENFILE), it frees a reserve fd, accepts the connection at the
 * head of the backlog, resets it and takes the reserve back, so a
 * level-triggered listener cannot spin the loop and the client learns at
 * once. Returns the fd, -EAGAIN when nothing is pending, -EMFILE after
 * shedding one connection (call again), or another -errno. */
int accept_shed(int lfd, struct sockaddr *sa, socklen_t *len);
/* How many connections accept_shed has reset for want of an fd. */
unsigned long long accept_shed_count(void);

/* Monotonic clock in milliseconds. */
unsigned long long now_ms(void);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer.
 * Returns 0 and hands the buffer to the caller, or a negative errno
 * (-EFBIG when the file is larger than max). */
int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len);
/* The same from an open fd, read to its end; the caller keeps the fd. */
int read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len);

/* A file as stat(2) shows it (the link followed): a file that keeps all of
 * these has not been written or replaced since. */
struct ms_file_id {
	unsigned long long dev, ino, size;
	long long mtime_ns, ctime_ns;
};
int file_id(const char *path, struct ms_file_id *ret);
bool file_id_eq(const struct ms_file_id *a, const struct ms_file_id *b);

/* Write data to path atomically (temp file + rename). */
int write_file_atomic(const char *path, const void *data, size_t len, int mode);

/* 32-bit FNV-1a, used for stable identifiers (mesh ids, VIP hashing). */
unsigned int fnv1a32(const void *data, size_t len, unsigned int seed);

/* Escape a string for a log line: non-printable bytes as \xNN, at most max
 * input bytes. Returns one of four per-thread buffers (valid until the
 * fourth next call). */
const char *log_escape(const char *s);
