// SPDX-License-Identifier: MIT
/* The mesh DNS responder. UDP: one datagram in, at most one out; a
 * forwarded query gets a connected socket of its own in the pod's netns
 * (a fresh random source port, and only the resolver's answers reach it).
 * TCP: one query at a time per client, forwarded over one upstream
 * connection per client, opened on the first query that needs it. */
#include "dnsproxy.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"
#include "util.h"

#define DNS_MSG_MAX 65535
#define TCP_IDLE_MS 10000 /* a client between queries (RFC 7766 suggests seconds) */
#define UDP_BATCH 64

/* A UDP query waiting for the pod's resolver. */
struct dns_up {
	struct ev ev; /* its answer */
	struct dnsp *d;
	int fd;
	struct dnsp_sock *via; /* the pod socket the answer leaves from */
	struct sockaddr_storage client;
	socklen_t client_len;
	uint16_t id;
	bool have_q;
	struct dns_query q; /* for a SERVFAIL that echoes the question */
	uint64_t deadline;
	struct dns_up *prev, *next;
};

enum tcp_state {
	T_READ_CLIENT, /* reading a length-prefixed query */
	T_CONNECT_UP,  /* upstream connect in progress */
	T_WRITE_UP,
	T_READ_UP,
	T_WRITE_CLIENT,
};

struct dns_tcp {
	struct ev ev;    /* the client */
	struct ev up_ev; /* its connection to the pod's resolver */
	struct dnsp *d;
	int fd, up_fd;
	struct dnsp_sock *via;
	struct ms_addr orig;
	uint16_t oport;
	enum tcp_state st;
	uint8_t *buf; /* 2 + DNS_MSG_MAX: the message in flight, framed */
	size_t len, off;
	uint16_t id; /* of the query in flight */
	bool have_q;
	struct dns_query q;
	uint64_t deadline;
	struct dns_tcp *prev, *next;
};

struct dnsp {
	int epfd;
	struct dnsp_opts o;
	struct dnsp_hooks h;
	struct dns_up *ups;
	size_t n_ups;
	struct dns_tcp *tcps;
	size_t n_tcps;
	struct dnsp_stats st;
	uint8_t buf[DNS_MSG_MAX], out[DNS_MSG_MAX];
};

static void ep_del(struct dnsp *d, int fd)
{
	ev_del(d->epfd, fd);
}

static void udp_readable(struct dnsp *d, struct dnsp_sock *s);
static void tcp_accept(struct dnsp *d, struct dnsp_sock *s);
static void up_readable(struct dnsp *d, struct dns_up *u);
static void tcp_client_event(struct dnsp *d, struct dns_tcp *t, uint32_t events);
static void tcp_up_event(struct dnsp *d, struct dns_tcp *t, uint32_t events);

static void on_udp(struct ev *ev, uint32_t events)
{
	struct dnsp_sock *s = container_of(ev, struct dnsp_sock, ev);

	(void)events;
	udp_readable(s->pod->d, s);
}

static void on_listen(struct ev *ev, uint32_t events)
{
	struct dnsp_sock *s = container_of(ev, struct dnsp_sock, ev);

	(void)events;
	tcp_accept(s->pod->d, s);
}

static void on_up(struct ev *ev, uint32_t events)
{
	struct dns_up *u = container_of(ev, struct dns_up, ev);

	(void)events;
	up_readable(u->d, u);
}

static void on_tcp(struct ev *ev, uint32_t events)
{
	struct dns_tcp *t = container_of(ev, struct dns_tcp, ev);

	tcp_client_event(t->d, t, events);
}

static void on_tcp_up(struct ev *ev, uint32_t events)
{
	struct dns_tcp *t = container_of(ev, struct dns_tcp, up_ev);

	tcp_up_event(t->d, t, events);
}

int dnsp_new(int epfd, const struct dnsp_opts *o, const struct dnsp_hooks *h, struct dnsp **ret)
{
	struct dnsp *d = xcalloc(1, sizeof(*d));

	d->epfd = epfd;
	d->o = *o;
	d->h = *h;
	*ret = d;
	return 0;
}

void dnsp_pod_init(struct dnsp_pod *p)
{
	memset(p, 0, sizeof(*p));
	p->u4.fd = p->u6.fd = p->t4.fd = p->t6.fd = -1;
	p->nsfd = -1;
}

bool dnsp_pod_is_open(const struct dnsp_pod *p)
{
	return p->u4.fd >= 0;
}

/* ---------- pod sockets ---------- */

static int sock_adopt(struct dnsp *d, struct dnsp_pod *p, struct dnsp_sock *s, int fd, bool v6, bool udp);

static int sock_open(struct dnsp *d, struct dnsp_pod *p, struct dnsp_sock *s, int family, int type)
{
	int fd = netns_loopback_socket(p->nsfd, family, type, d->o.port, 1024);

	if (fd < 0)
		return fd;
	return sock_adopt(d, p, s, fd, family == AF_INET6, type == SOCK_DGRAM);
}

static void sock_close(struct dnsp *d, struct dnsp_sock *s)
{
	if (s->fd < 0)
		return;
	ep_del(d, s->fd);
	close(s->fd);
	s->fd = -1;
}

int dnsp_pod_open(struct dnsp *d, struct dnsp_pod *p, int nsfd, void *owner, const char *name)
{
	int r;

	p->nsfd = nsfd;
	p->owner = owner;
	p->d = d;
	p->name = name;
	if ((r = sock_open(d, p, &p->u4, AF_INET, SOCK_DGRAM)) < 0)
		return r;
	if ((r = sock_open(d, p, &p->t4, AF_INET, SOCK_STREAM)) < 0)
		log_warn_errno(r, "pod %s: no DNS over TCP on 127.0.0.1:%u: %m", name, d->o.port);
	if ((r = sock_open(d, p, &p->u6, AF_INET6, SOCK_DGRAM)) < 0 ||
	    (r = sock_open(d, p, &p->t6, AF_INET6, SOCK_STREAM)) < 0)
		log_info_errno(r, "pod %s: no DNS responder on [::1]:%u: %m; IPv6 resolvers are not served", name,
			       d->o.port);
	return 0;
}

static int sock_adopt(struct dnsp *d, struct dnsp_pod *p, struct dnsp_sock *s, int fd, bool v6, bool udp)
{
	if (fd < 0)
		return 0;
	ev_init(&s->ev, udp ? on_udp : on_listen);
	s->pod = p;
	s->v6 = v6;
	s->fd = fd;
	int r = ev_add(d->epfd, fd, &s->ev, EPOLLIN);
	if (r < 0) {
		close(fd);
		s->fd = -1;
	}
	return r;
}

int dnsp_pod_adopt(struct dnsp *d, struct dnsp_pod *p, int nsfd, void *owner, const char *name, const int fds[4])
{
	p->nsfd = nsfd;
	p->owner = owner;
	p->d = d;
	p->name = name;
	sock_adopt(d, p, &p->u6, fds[1], true, true);
	sock_adopt(d, p, &p->t4, fds[2], false, false);
	sock_adopt(d, p, &p->t6, fds[3], true, false);
	if (fds[0] < 0)
		return -EBADF;
	return sock_adopt(d, p, &p->u4, fds[0], false, true);
}

void dnsp_pod_fds(const struct dnsp_pod *p, int fds[4])
{
	fds[0] = p->u4.fd;
	fds[1] = p->u6.fd;
	fds[2] = p->t4.fd;
	fds[3] = p->t6.fd;
}

void dnsp_pod_release(struct dnsp *d, struct dnsp_pod *p)
{
	struct dnsp_sock *socks[] = { &p->u4, &p->u6, &p->t4, &p->t6 };

	for (size_t i = 0; i < ARRAY_SIZE(socks); i++)
		if (socks[i]->fd >= 0)
			ep_del(d, socks[i]->fd);
}

size_t dnsp_busy(const struct dnsp *d)
{
	return d->n_ups + d->n_tcps;
}

static void up_free(struct dnsp *d, struct dns_up *u);
static void tcp_free(struct dnsp *d, struct dns_tcp *t);

void dnsp_pod_close(struct dnsp *d, struct dnsp_pod *p)
{
	for (struct dns_up *u = d->ups, *next; u; u = next) {
		next = u->next;
		if (u->via->pod == p)
			up_free(d, u);
	}
	for (struct dns_tcp *t = d->tcps, *next; t; t = next) {
		next = t->next;
		if (t->via->pod == p)
			tcp_free(d, t);
	}
	sock_close(d, &p->u4);
	sock_close(d, &p->u6);
	sock_close(d, &p->t4);
	sock_close(d, &p->t6);
}

/* The socket the query goes upstream from: in the pod's netns, with the
 * agent's mark (so neither engine captures it again). */
static int upstream_socket(struct dnsp *d, struct dnsp_pod *p, const struct ms_addr *dst, uint16_t port,
			   int type, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = netns_socket(p->nsfd, addr_is_v4(dst) ? AF_INET : AF_INET6, type, 0);

	if (fd < 0)
		return fd;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &d->o.mark, sizeof(d->o.mark)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*len = addr_to_sockaddr(dst, port, false, ss);
	return fd;
}

/* Where the query was going, refusing our own responder (no loops). */
static int origin(struct dnsp *d, struct dnsp_pod *p, bool tcp, int fd, const struct ms_addr *client,
		  uint16_t cport, const struct ms_addr *self, struct ms_addr *ret, uint16_t *ret_port)
{
	int r = d->h.origin(d->h.ctx, p->owner, tcp, fd, client, cport, self, ret, ret_port);

	if (r < 0)
		return r;
	if (addr_is_local(ret) && *ret_port == d->o.port)
		return -ELOOP;
	return 0;
}

/* ---------- UDP ---------- */

static void up_free(struct dnsp *d, struct dns_up *u)
{
	DLIST_REMOVE(d->ups, u);
	ep_del(d, u->fd);
	close(u->fd);
	d->n_ups--;
	u->ev.dead = true;
	ev_defer_free(u);
}

static void udp_reply(struct dnsp_sock *s, const struct sockaddr_storage *to, socklen_t tolen, const uint8_t *m,
		      size_t n)
{
	if (sendto(s->fd, m, n, MSG_DONTWAIT, (const struct sockaddr *)to, tolen) < 0)
		log_debug("pod %s: DNS answer not sent: %s", s->pod->name, strerror(errno));
}

static void udp_servfail(struct dnsp *d, struct dnsp_sock *s, const struct sockaddr_storage *to, socklen_t tolen,
			 const struct dns_query *q, uint16_t id)
{
	ssize_t n = dns_build_error(q, id, DNS_R_SERVFAIL, d->out, sizeof(d->out));

	d->st.failed++;
	if (n > 0)
		udp_reply(s, to, tolen, d->out, (size_t)n);
}

/* Passthrough off: a query leaves only for the pod's own resolvers. */
static bool upstream_refused(struct dnsp *d, struct dnsp_pod *p, const struct ms_addr *dst, uint16_t port,
			     const struct dns_query *q)
{
	char where[MS_ADDR_STRLEN + 8];

	if (!d->h.strict || !d->h.strict(d->h.ctx, p->owner) || d->h.allowed(d->h.ctx, p->owner, dst, port))
		return false;
	d->st.refused++;
	log_info("pod %s: DNS query for %s to %s refused: not one of the pod's resolvers and the mesh has passthrough off",
		 p->name, q ? log_escape(q->name) : "?", addr_port_fmt(dst, port, where, sizeof(where)));
	return true;
}

static unsigned respond_flags(struct dnsp *d, struct dnsp_pod *p, bool udp)
{
	bool strict = d->h.strict && d->h.strict(d->h.ctx, p->owner);

	return (udp ? DNS_UDP : 0) | (strict ? DNS_STRICT : 0);
}

static void udp_forward(struct dnsp *d, struct dnsp_sock *s, const struct sockaddr_storage *from, socklen_t fromlen,
			const uint8_t *msg, size_t len, const struct dns_query *q)
{
	struct ms_addr client, self, dst;
	uint16_t cport, dport, id = (uint16_t)(msg[0] << 8 | msg[1]);
	struct sockaddr_storage ss;
	socklen_t sl = 0; /* upstream_socket() sets it; gcc -O3 cannot see that */
	char where[MS_ADDR_STRLEN + 8];
	int fd, r;

	addr_from_sockaddr((const struct sockaddr *)from, &client, &cport);
	addr_parse(s->v6 ? "::1" : "127.0.0.1", &self);
	if ((r = origin(d, s->pod, false, -1, &client, cport, &self, &dst, &dport)) < 0) {
		log_info("pod %s: DNS query for %s: no original resolver known (%s): SERVFAIL", s->pod->name,
			 q ? log_escape(q->name) : "?", r == -ELOOP ? "it was this responder" : strerror(-r));
		udp_servfail(d, s, from, fromlen, q, id);
		return;
	}
	if (upstream_refused(d, s->pod, &dst, dport, q)) {
		ssize_t rn = dns_build_error(q, id, DNS_R_REFUSED, d->out, sizeof(d->out));
		if (rn > 0)
			udp_reply(s, from, fromlen, d->out, (size_t)rn);
		return;
	}
	if (d->n_ups >= d->o.max_pending) {
		log_debug("pod %s: %zu DNS queries upstream already: dropped", s->pod->name, d->n_ups);
		d->st.failed++;
		return;
	}
	fd = upstream_socket(d, s->pod, &dst, dport, SOCK_DGRAM, &ss, &sl);
	if (fd >= 0 && (connect(fd, (struct sockaddr *)&ss, sl) < 0 || send(fd, msg, len, 0) < 0)) {
		r = -errno;
		close(fd);
		fd = r;
	}
	if (fd < 0) {
		log_info_errno(fd, "pod %s: DNS query to %s: %m: SERVFAIL", s->pod->name,
			       addr_port_fmt(&dst, dport, where, sizeof(where)));
		udp_servfail(d, s, from, fromlen, q, id);
		return;
	}
	struct dns_up *u = xcalloc(1, sizeof(*u));
	ev_init(&u->ev, on_up);
	u->d = d;
	u->fd = fd;
	u->via = s;
	memcpy(&u->client, from, fromlen);
	u->client_len = fromlen;
	u->id = id;
	if (q) {
		u->q = *q;
		u->have_q = true;
	}
	u->deadline = now_ms() + d->o.timeout_ms;
	DLIST_PUSH(d->ups, u);
	d->n_ups++;
	if (ev_add(d->epfd, fd, &u->ev, EPOLLIN) < 0)
		up_free(d, u);
}

static void udp_readable(struct dnsp *d, struct dnsp_sock *s)
{
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		struct dns_query q = { 0 };
		size_t olen = 0;
		ssize_t n = recvfrom(s->fd, d->buf, sizeof(d->buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);

		if (n < 0)
			return; /* EAGAIN, or an ICMP error queued on the socket: nothing to answer */
		q.name[0] = '\0';
		switch (dns_respond(d->buf, (size_t)n, respond_flags(d, s->pod, true), d->o.ttl, d->h.local, d->h.ctx,
				    s->pod->owner, d->out,
				    sizeof(d->out), &olen, &q)) {
		case DNS_ANSWER:
			if (q.name[0])
				d->st.local++;
			else if (olen >= 4 && (d->out[3] & 0x0f) == DNS_R_REFUSED)
				d->st.refused++;
			else
				d->st.malformed++;
			udp_reply(s, &from, fromlen, d->out, olen);
			break;
		case DNS_FORWARD:
			udp_forward(d, s, &from, fromlen, d->buf, (size_t)n, q.name[0] ? &q : NULL);
			break;
		case DNS_DROP:
			d->st.malformed++;
			break;
		}
	}
}

static void up_readable(struct dnsp *d, struct dns_up *u)
{
	ssize_t n = recv(u->fd, d->buf, sizeof(d->buf), MSG_DONTWAIT);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* ECONNREFUSED and friends: the resolver is not there */
		log_info("pod %s: DNS resolver error for %s: %s: SERVFAIL", u->via->pod->name,
			 u->have_q ? log_escape(u->q.name) : "?", strerror(errno));
		udp_servfail(d, u->via, &u->client, u->client_len, u->have_q ? &u->q : NULL, u->id);
		up_free(d, u);
		return;
	}
	/* Only the answer to this query; anything else on the socket is ignored. */
	if (n < DNS_HEADER || (uint16_t)(d->buf[0] << 8 | d->buf[1]) != u->id || !(d->buf[2] & 0x80))
		return;
	d->st.forwarded++;
	udp_reply(u->via, &u->client, u->client_len, d->buf, (size_t)n);
	up_free(d, u);
}

/* ---------- TCP ---------- */

static void tcp_free(struct dnsp *d, struct dns_tcp *t)
{
	DLIST_REMOVE(d->tcps, t);
	ep_del(d, t->fd);
	close(t->fd);
	if (t->up_fd >= 0) {
		ep_del(d, t->up_fd);
		close(t->up_fd);
	}
	d->n_tcps--;
	free(t->buf);
	t->buf = NULL;
	t->ev.dead = t->up_ev.dead = true;
	ev_defer_free(t);
}

static void tcp_want(struct dnsp *d, struct dns_tcp *t, enum tcp_state st)
{
	t->st = st;
	ev_mod(d->epfd, t->fd, &t->ev,
	       st == T_READ_CLIENT ? EPOLLIN : st == T_WRITE_CLIENT ? EPOLLOUT : 0);
	if (t->up_fd >= 0)
		ev_mod(d->epfd, t->up_fd, &t->up_ev,
		       st == T_READ_UP ? EPOLLIN : (st == T_CONNECT_UP || st == T_WRITE_UP) ? EPOLLOUT : 0);
	t->deadline = now_ms() + (st == T_READ_CLIENT || st == T_WRITE_CLIENT ? TCP_IDLE_MS : d->o.timeout_ms);
}

static void tcp_answer(struct dnsp *d, struct dns_tcp *t, const uint8_t *m, size_t n)
{
	t->buf[0] = (uint8_t)(n >> 8);
	t->buf[1] = (uint8_t)n;
	if (m != t->buf + 2)
		memcpy(t->buf + 2, m, n);
	t->len = 2 + n;
	t->off = 0;
	tcp_want(d, t, T_WRITE_CLIENT);
}

static void tcp_servfail(struct dnsp *d, struct dns_tcp *t)
{
	ssize_t n = dns_build_error(t->have_q ? &t->q : NULL, t->id, DNS_R_SERVFAIL, d->out, sizeof(d->out));
	d->st.failed++;
	if (n < 0) {
		tcp_free(d, t);
		return;
	}
	if (t->up_fd >= 0) {
		ep_del(d, t->up_fd);
		close(t->up_fd);
		t->up_fd = -1;
	}
	tcp_answer(d, t, d->out, (size_t)n);
}

/* Read until buf holds a whole framed message. 1: complete, 0: more to
 * come, -1: EOF or error. */
static int read_framed(int fd, struct dns_tcp *t)
{
	for (;;) {
		size_t want = t->len < 2 ? 2 : 2 + (size_t)(t->buf[0] << 8 | t->buf[1]);
		if (t->len >= 2 && want == 2)
			return -1; /* a zero-length message */
		if (t->len == want)
			return 1;
		ssize_t n = read(fd, t->buf + t->len, want - t->len);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		t->len += (size_t)n;
	}
}

/* Write what is left of buf. 1: all written (buf emptied), 0: more to
 * come, -1: error. */
static int write_framed(int fd, struct dns_tcp *t)
{
	ssize_t n = write(fd, t->buf + t->off, t->len - t->off);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	t->off += (size_t)n;
	if (t->off < t->len)
		return 0;
	t->len = t->off = 0;
	return 1;
}

static void tcp_query(struct dnsp *d, struct dns_tcp *t)
{
	size_t olen = 0;

	t->q.name[0] = '\0';
	switch (dns_respond(t->buf + 2, t->len - 2, respond_flags(d, t->via->pod, false), d->o.ttl, d->h.local, d->h.ctx,
			    t->via->pod->owner, d->out,
			    sizeof(d->out), &olen, &t->q)) {
	case DNS_ANSWER:
		if (t->q.name[0])
			d->st.local++;
		else if (olen >= 4 && (d->out[3] & 0x0f) == DNS_R_REFUSED)
			d->st.refused++;
		else
			d->st.malformed++;
		tcp_answer(d, t, d->out, olen);
		return;
	case DNS_DROP:
		d->st.malformed++;
		tcp_free(d, t);
		return;
	case DNS_FORWARD:
		break;
	}
	t->have_q = t->q.name[0] != '\0';
	t->id = (uint16_t)(t->buf[2] << 8 | t->buf[3]);
	t->off = 0;
	if (upstream_refused(d, t->via->pod, &t->orig, t->oport, t->have_q ? &t->q : NULL)) {
		ssize_t rn = dns_build_error(t->have_q ? &t->q : NULL, t->id, DNS_R_REFUSED, d->out, sizeof(d->out));
		if (rn < 0)
			tcp_free(d, t);
		else
			tcp_answer(d, t, d->out, (size_t)rn);
		return;
	}
	if (t->up_fd >= 0) {
		tcp_want(d, t, T_WRITE_UP);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl = 0; /* upstream_socket() sets it; gcc -O3 cannot see that */
	int fd = upstream_socket(d, t->via->pod, &t->orig, t->oport, SOCK_STREAM, &ss, &sl);
	if (fd < 0) {
		tcp_servfail(d, t);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		close(fd);
		tcp_servfail(d, t);
		return;
	}
	t->up_fd = fd;
	ev_init(&t->up_ev, on_tcp_up);
	if (ev_add(d->epfd, fd, &t->up_ev, EPOLLOUT) < 0) {
		tcp_servfail(d, t);
		return;
	}
	tcp_want(d, t, T_CONNECT_UP);
}

static void tcp_client_event(struct dnsp *d, struct dns_tcp *t, uint32_t events)
{
	if (t->st == T_READ_CLIENT) {
		int r = read_framed(t->fd, t);
		if (r < 0) {
			tcp_free(d, t);
			return;
		}
		if (r == 1)
			tcp_query(d, t);
		return;
	}
	if (t->st == T_WRITE_CLIENT) {
		int r = write_framed(t->fd, t);
		if (r < 0)
			tcp_free(d, t);
		else if (r == 1)
			tcp_want(d, t, T_READ_CLIENT);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		tcp_free(d, t); /* the client left while its query was upstream */
}

static void tcp_up_event(struct dnsp *d, struct dns_tcp *t, uint32_t events)
{
	(void)events;
	if (t->st == T_CONNECT_UP) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(t->up_fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			log_info("pod %s: DNS over TCP to the resolver: %s: SERVFAIL", t->via->pod->name, strerror(err));
			tcp_servfail(d, t);
			return;
		}
		tcp_want(d, t, T_WRITE_UP);
		/* fall through to the write */
	}
	if (t->st == T_WRITE_UP) {
		int r = write_framed(t->up_fd, t);
		if (r < 0)
			tcp_servfail(d, t);
		else if (r == 1)
			tcp_want(d, t, T_READ_UP);
		return;
	}
	if (t->st == T_READ_UP) {
		int r = read_framed(t->up_fd, t);
		if (r < 0) {
			tcp_servfail(d, t);
			return;
		}
		if (r == 1) {
			d->st.forwarded++;
			t->off = 0;
			tcp_want(d, t, T_WRITE_CLIENT);
		}
		return;
	}
	/* readable or hung up while idle: the resolver closed; reopen on the next query */
	ep_del(d, t->up_fd);
	close(t->up_fd);
	t->up_fd = -1;
}

static void tcp_accept(struct dnsp *d, struct dnsp_sock *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct ms_addr client, orig;
		uint16_t cport, oport;
		int fd = accept_shed(s->fd, (struct sockaddr *)&ss, &len);

		if (fd == -EMFILE) {
			d->st.failed++;
			continue;
		}
		if (fd < 0)
			return;
		addr_from_sockaddr((struct sockaddr *)&ss, &client, &cport);
		if (d->n_tcps >= d->o.max_tcp ||
		    origin(d, s->pod, true, fd, &client, cport, NULL, &orig, &oport) < 0 || addr_is_local(&orig)) {
			/* full, or not a captured connection: never an open relay */
			log_info("pod %s: DNS over TCP from port %u refused: %s", s->pod->name, cport,
				 d->n_tcps >= d->o.max_tcp ? "too many clients" : "no original resolver recorded");
			d->st.failed++;
			close(fd);
			continue;
		}
		struct dns_tcp *t = xcalloc(1, sizeof(*t));
		ev_init(&t->ev, on_tcp);
		t->d = d;
		t->fd = fd;
		t->up_fd = -1;
		t->via = s;
		t->orig = orig;
		t->oport = oport;
		t->buf = xcalloc(1, 2 + DNS_MSG_MAX);
		DLIST_PUSH(d->tcps, t);
		d->n_tcps++;
		if (ev_add(d->epfd, fd, &t->ev, EPOLLIN) < 0) {
			tcp_free(d, t);
			continue;
		}
		tcp_want(d, t, T_READ_CLIENT);
	}
}

/* ---------- loop glue ---------- */


void dnsp_tick(struct dnsp *d)
{
	uint64_t now = now_ms();

	for (struct dns_up *u = d->ups, *next; u; u = next) {
		next = u->next;
		if (now >= u->deadline) {
			/* a silent resolver stays silent: the client times out as it would */
			log_info("pod %s: DNS resolver did not answer %s within %u ms", u->via->pod->name,
				 u->have_q ? log_escape(u->q.name) : "?", d->o.timeout_ms);
			d->st.failed++;
			up_free(d, u);
		}
	}
	for (struct dns_tcp *t = d->tcps, *next; t; t = next) {
		next = t->next;
		if (now >= t->deadline) {
			if (t->st != T_READ_CLIENT && t->st != T_WRITE_CLIENT)
				d->st.failed++;
			tcp_free(d, t);
		}
	}
}

struct dnsp_stats dnsp_get_stats(const struct dnsp *d)
{
	return d->st;
}

void dnsp_free(struct dnsp *d)
{
	if (!d)
		return;
	while (d->ups)
		up_free(d, d->ups);
	while (d->tcps)
		tcp_free(d, d->tcps);
	free(d);
}
