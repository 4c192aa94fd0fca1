// SPDX-License-Identifier: MIT
/* Line clients: the control socket's and the metrics port's. One request in,
 * one answer out, within CLIENT_TIMEOUT_MS; at most MAX_CLIENTS of each kind
 * at once (a new one sheds the oldest). Replies are small and sent blocking, for a second at most. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent-t.h"
#include "util.h"


/* Read what is there into c->buf: 1 when bytes arrived, 0 when the client
 * has nothing more for now, -1 when it is gone. */
static int client_fill(struct line_client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		return 1;
	}
}

/* Read what is there; a whole request (or a full buffer) is served, and
 * the client closed: one request, one answer. */
static void on_client(struct ev *ev, uint32_t events)
{
	struct line_client *c = container_of(ev, struct line_client, ev);

	(void)events;
	for (;;) {
		int f = client_fill(c);
		if (f == 0)
			return;
		if (f < 0)
			break;
		if (c->done(c) || c->len >= sizeof(c->buf) - 1) {
			c->serve(c);
			break;
		}
	}
	client_close(c);
}

void client_close(struct line_client *c)
{
	struct agent *a = c->a;

	DLIST_REMOVE(a->clients, c);
	a->n_clients[c->kind]--;
	ev_del(a->epfd, c->fd);
	close(c->fd);
	c->ev.dead = true;
	ev_defer_free(c);
}

/* At the cap, the oldest client of that kind makes room: idle clients can
 * delay an operator's command by a second at most, never lock it out. */
static void shed_oldest(struct agent *a, enum client_kind kind)
{
	struct line_client *oldest = NULL;

	for (struct line_client *c = a->clients; c; c = c->next)
		if (c->kind == kind && (!oldest || c->deadline < oldest->deadline))
			oldest = c;
	if (oldest)
		client_close(oldest);
}

void client_add(struct agent *a, int fd, enum client_kind kind, client_done_fn done, client_fn serve)
{
	size_t *n = &a->n_clients[kind];

	if (*n >= MAX_CLIENTS)
		shed_oldest(a, kind);
	struct line_client *c = xcalloc(1, sizeof(*c));
	ev_init(&c->ev, on_client);
	c->a = a;
	c->kind = kind;
	c->done = done;
	c->serve = serve;
	c->fd = fd;
	c->deadline = now_ms() + CLIENT_TIMEOUT_MS;
	if (ev_add(a->epfd, fd, &c->ev, EPOLLIN) < 0) {
		close(fd);
		free(c);
		return;
	}
	DLIST_PUSH(a->clients, c);
	(*n)++;
}

void client_accept(struct agent *a, int lfd, enum client_kind kind, client_done_fn done, client_fn serve)
{
	for (;;) {
		int fd = accept_shed(lfd, NULL, NULL);
		if (fd == -EMFILE)
			continue;
		if (fd < 0)
			return;
		client_add(a, fd, kind, done, serve);
	}
}

/* Clients that sent no whole request in time (slowloris) are closed. */
void clients_expire(struct agent *a)
{
	uint64_t now = now_ms();

	for (struct line_client *c = a->clients, *next; c; c = next) {
		next = c->next;
		if (now >= c->deadline)
			client_close(c);
	}
}

void clients_close_all(struct agent *a)
{
	while (a->clients)
		client_close(a->clients);
}

/* A client that does not read within a second loses its reply. */
void client_send(int fd, const char *s, size_t len)
{
	struct timeval tv = { .tv_sec = 1 };
	size_t off = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		if (n <= 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

void client_send_json(int fd, json_object *resp)
{
	const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *line = xasprintf("%s\n", s);

	client_send(fd, line, strlen(line));
}

