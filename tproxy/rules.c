// SPDX-License-Identifier: MIT
/* Rendering: every value is typed (ports, uids, CIDRs formatted here), so no
 * string from a config file or a CNI call ever reaches a rule set. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tproxy.h"
#include "util.h"

struct buf {
	char *s;
	size_t len, cap;
};

static void add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!b->s) { /* never pointer arithmetic on NULL */
		b->cap = 512;
		b->s = xcalloc(b->cap, 1);
	}

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n + 64;
		b->s = xrealloc(b->s, b->cap, 1);
	}
	b->len += (size_t)n;
}

void tp_opts_init(struct tp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mark = 0x4d53;
	o->listen_port = 15001;
	o->capture_all = true;
}

static bool fam_match(const struct ms_cidr *c, int family)
{
	return (family == AF_INET) == addr_is_v4(&c->addr);
}

/* The chain's rules, in the order iptables-save prints them. */
static void chain_rules(struct buf *b, const struct tp_opts *o, int family)
{
	char cidr[80];
	const char *lo = family == AF_INET ? "127.0.0.0/8" : "::1/128";

	add(b, "-A %s -m mark --mark 0x%x -j RETURN\n", TP_CHAIN, o->mark);
	for (size_t i = 0; i < o->n_excl_uids; i++)
		add(b, "-A %s -m owner --uid-owner %u -j RETURN\n", TP_CHAIN, o->excl_uids[i]);
	for (size_t i = 0; i < o->n_excl_ports; i++)
		add(b, "-A %s -p tcp -m tcp --dport %u -j RETURN\n", TP_CHAIN, o->excl_ports[i]);
	for (size_t i = 0; i < o->n_excl_cidrs; i++)
		if (fam_match(&o->excl_cidrs[i], family))
			add(b, "-A %s -d %s -j RETURN\n", TP_CHAIN, cidr_fmt(&o->excl_cidrs[i], cidr, sizeof(cidr)));
	if (o->dns_port) {
		add(b, "-A %s -p udp -m udp --dport 53 -j REDIRECT --to-ports %u\n", TP_CHAIN, o->dns_port);
		add(b, "-A %s -p tcp -m tcp --dport 53 -j REDIRECT --to-ports %u\n", TP_CHAIN, o->dns_port);
	}
	for (size_t i = 0; i < o->n_vip_cidrs; i++)
		if (fam_match(&o->vip_cidrs[i], family))
			add(b, "-A %s -d %s -p tcp -j REDIRECT --to-ports %u\n", TP_CHAIN,
			    cidr_fmt(&o->vip_cidrs[i], cidr, sizeof(cidr)), o->listen_port);
	/* Loopback that is not to a VIP: the pod talking to itself. */
	add(b, "-A %s -o lo -j RETURN\n", TP_CHAIN);
	add(b, "-A %s -d %s -j RETURN\n", TP_CHAIN, lo);
	if (o->capture_all)
		add(b, "-A %s -p tcp -j REDIRECT --to-ports %u\n", TP_CHAIN, o->listen_port);
}

static void jumps(struct buf *b, const struct tp_opts *o, const char *verb)
{
	add(b, "%s OUTPUT -p tcp -j %s\n", verb, TP_CHAIN);
	if (o->dns_port)
		add(b, "%s OUTPUT -p udp -j %s\n", verb, TP_CHAIN);
}

char *tp_rules_render(const struct tp_opts *o, int family)
{
	struct buf b = { 0 };

	add(&b, "*nat\n:%s - [0:0]\n", TP_CHAIN);
	chain_rules(&b, o, family);
	jumps(&b, o, "-A");
	add(&b, "COMMIT\n");
	return b.s;
}

char *tp_rules_expected(const struct tp_opts *o, int family)
{
	struct buf b = { 0 };

	jumps(&b, o, "-A");
	chain_rules(&b, o, family);
	return b.s;
}
