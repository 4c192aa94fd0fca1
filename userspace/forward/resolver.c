// SPDX-License-Identifier: MIT
#include "resolver.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define NEGATIVE_TTL_MS 5000
#define MAX_ADDRS 16

struct entry {
	char *name;
	struct ms_addr *addrs, *next_addrs;
	size_t n, next_n;
	uint64_t expires_ms;
	bool busy;   /* queued or being resolved */
	bool done;   /* worker finished; results in next_* */
	int next_err;
	int err;     /* last result: 0 or -EHOSTUNREACH */
	bool known;  /* at least one answer (or failure) so far */
};

struct resolver {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	int efd;
	unsigned refresh_ms;
	struct entry *v;
	size_t n;
	uint64_t gen; /* bumped by every answer applied (the loop's thread only) */
};

static void *worker(void *arg)
{
	struct resolver *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		size_t i;
		for (i = 0; i < r->n; i++)
			if (r->v[i].busy && !r->v[i].done)
				break;
		if (r->stop)
			break;
		if (i == r->n) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		char *name = xstrdup(r->v[i].name);
		pthread_mutex_unlock(&r->mu);

		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
		struct addrinfo *res = NULL, *ai;
		struct ms_addr *addrs = xcalloc(MAX_ADDRS, sizeof(*addrs));
		size_t n = 0;
		int gai = getaddrinfo(name, NULL, &hints, &res);
		for (ai = res; gai == 0 && ai && n < MAX_ADDRS; ai = ai->ai_next) {
			uint16_t port;
			if (addr_from_sockaddr(ai->ai_addr, &addrs[n], &port) == 0)
				n++;
		}
		if (res)
			freeaddrinfo(res);
		if (gai != 0)
			log_info("resolve %s: %s", log_escape(name), gai_strerror(gai));

		pthread_mutex_lock(&r->mu);
		for (i = 0; i < r->n; i++)
			if (streq(r->v[i].name, name))
				break;
		free(name);
		if (i < r->n) {
			free(r->v[i].next_addrs);
			r->v[i].next_addrs = addrs;
			r->v[i].next_n = n;
			r->v[i].next_err = n ? 0 : -EHOSTUNREACH;
			r->v[i].done = true;
		} else {
			free(addrs);
		}
		uint64_t one = 1;
		if (write(r->efd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow in practice; nothing to do */
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int resolver_new(unsigned refresh_ms, struct resolver **ret)
{
	struct resolver *r = xcalloc(1, sizeof(*r));
	int e;

	r->refresh_ms = refresh_ms;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		e = -errno;
		free(r);
		return e;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if ((e = pthread_create(&r->thread, NULL, worker, r)) != 0) {
		close(r->efd);
		free(r);
		return -e;
	}
	*ret = r;
	return 0;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].addrs);
		free(r->v[i].next_addrs);
	}
	free(r->v);
	close(r->efd);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

int resolver_fd(const struct resolver *r)
{
	return r->efd;
}

int resolver_lookup(struct resolver *r, const char *name, const struct ms_addr **ret,
		    size_t *ret_n)
{
	uint64_t now = now_ms();
	struct entry *e = NULL;
	int res;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (streq(r->v[i].name, name))
			e = &r->v[i];
	if (!e) {
		r->v = xrealloc(r->v, r->n + 1, sizeof(*r->v));
		e = &r->v[r->n++];
		memset(e, 0, sizeof(*e));
		e->name = xstrdup(name);
	}
	if (!e->busy && (!e->known || now >= e->expires_ms)) {
		e->busy = true;
		e->done = false;
		pthread_cond_signal(&r->cv);
	}
	if (e->known && e->n > 0) {
		*ret = e->addrs; /* possibly stale while the refresh runs */
		*ret_n = e->n;
		res = 0;
	} else if (e->known && e->err < 0 && !e->busy) {
		res = e->err;
	} else {
		res = -EAGAIN;
	}
	pthread_mutex_unlock(&r->mu);
	return res;
}

void resolver_drain(struct resolver *r)
{
	uint64_t v;

	if (read(r->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious wake-up */
	}
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++) {
		struct entry *e = &r->v[i];
		if (!e->done)
			continue;
		e->done = e->busy = false;
		/* a refresh that brings the same answer changes nobody's targets */
		if (!e->known || e->err != e->next_err ||
		    (e->next_n > 0 && (e->next_n != e->n || memcmp(e->next_addrs, e->addrs, e->n * sizeof(*e->addrs)))))
			r->gen++;
		e->known = true;
		e->err = e->next_err;
		if (e->next_n > 0) {
			free(e->addrs);
			e->addrs = e->next_addrs;
			e->n = e->next_n;
			e->expires_ms = now_ms() + r->refresh_ms;
		} else {
			free(e->next_addrs);
			/* Keep serving the last good answer, if any; retry soon. */
			e->expires_ms = now_ms() + NEGATIVE_TTL_MS;
		}
		e->next_addrs = NULL;
		e->next_n = 0;
	}
	pthread_mutex_unlock(&r->mu);
}

uint64_t resolver_gen(const struct resolver *r)
{
	return r ? r->gen : 0;
}
