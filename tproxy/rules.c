// SPDX-License-Identifier: MIT
/* Rendering: every value is typed (ports, uids, CIDRs formatted here), so no
 * string from a config file or a CNI call ever reaches a rule set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "strbuf.h"
#include "tproxy.h"
#include "util.h"

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

/* -m statistic keeps a probability as a 31-bit fraction and iptables-save
 * prints it back with 11 decimals: render what it will print, so that the
 * rules verify as written. */
static double statistic_probability(size_t left)
{
	uint32_t v = (uint32_t)((0x80000000ull + left / 2) / left); /* rounded, as iptables does */

	return (double)v / (double)0x80000000u;
}

/* One endpoint of n in turn: rule i takes 1/(n-i) of what is left, so each
 * endpoint gets 1/n; the last takes the rest. None healthy: RETURN, before
 * the VIP ranges' REDIRECT, so that the SYN meets its REJECT in the filter
 * table. */
static void dnat_rules(struct strbuf *b, const struct tp_dnat *d, int family)
{
	char vip[MS_ADDR_STRLEN], ep[MS_ADDR_STRLEN + 8];
	bool v4 = family == AF_INET;

	if (addr_is_v4(&d->vip) != v4)
		return;
	addr_fmt(&d->vip, vip, sizeof(vip));
	if (d->n_eps == 0 && d->unhealthy)
		strbuf_printf(b, "-A %s -d %s/%u -p tcp -m tcp --dport %u -j RETURN\n", TP_CHAIN, vip, v4 ? 32 : 128,
			      d->port);
	for (size_t i = 0; i < d->n_eps; i++) {
		const struct tp_dnat_ep *e = &d->eps[i];
		if (addr_is_v4(&e->ip) != v4)
			continue;
		addr_port_fmt(&e->ip, e->port, ep, sizeof(ep));
		strbuf_printf(b, "-A %s -d %s/%u -p tcp -m tcp --dport %u", TP_CHAIN, vip, v4 ? 32 : 128, d->port);
		if (i + 1 < d->n_eps)
			strbuf_printf(b, " -m statistic --mode random --probability %.11f",
				      statistic_probability(d->n_eps - i));
		strbuf_printf(b, " -j DNAT --to-destination %s\n", ep);
	}
}

/* What neither chain touches: the agent's sockets and the pod's exclusions. */
static void exemptions(struct strbuf *b, const struct tp_opts *o, int family, const char *chain)
{
	char cidr[80];

	/* The agent's sockets: its cgroup and its mark. The mark alone is not
	 * the agent's (CAP_NET_RAW or CAP_NET_ADMIN set SO_MARK on any socket);
	 * the cgroup a pod cannot join. The path comes from the kernel
	 * (/proc/self/cgroup), checked for plain characters by the agent;
	 * quoted as iptables-save prints it. */
	if (o->agent_cgroup)
		strbuf_printf(b, "-A %s -m cgroup --path \"%s\" -m mark --mark 0x%x -j RETURN\n", chain,
			      o->agent_cgroup, o->mark);
	else
		strbuf_printf(b, "-A %s -m mark --mark 0x%x -j RETURN\n", chain, o->mark);
	for (size_t i = 0; i < o->n_excl_uids; i++)
		strbuf_printf(b, "-A %s -m owner --uid-owner %u -j RETURN\n", chain, o->excl_uids[i]);
	for (size_t i = 0; i < o->n_excl_ports; i++)
		strbuf_printf(b, "-A %s -p tcp -m tcp --dport %u -j RETURN\n", chain, o->excl_ports[i]);
	for (size_t i = 0; i < o->n_excl_cidrs; i++)
		if (fam_match(&o->excl_cidrs[i], family))
			strbuf_printf(b, "-A %s -d %s -j RETURN\n", chain, cidr_fmt(&o->excl_cidrs[i], cidr, sizeof(cidr)));
}

/* The chain's rules, in the order iptables-save prints them. */
static void chain_rules(struct strbuf *b, const struct tp_opts *o, int family)
{
	char cidr[80];
	const char *lo = family == AF_INET ? "127.0.0.0/8" : "::1/128";

	exemptions(b, o, family, TP_CHAIN);
	if (o->dns_port) {
		strbuf_printf(b, "-A %s -p udp -m udp --dport 53 -j REDIRECT --to-ports %u\n", TP_CHAIN, o->dns_port);
		strbuf_printf(b, "-A %s -p tcp -m tcp --dport 53 -j REDIRECT --to-ports %u\n", TP_CHAIN, o->dns_port);
	}
	for (size_t i = 0; i < o->n_dnat; i++)
		dnat_rules(b, &o->dnat[i], family);
	for (size_t i = 0; i < o->n_vip_cidrs; i++)
		if (fam_match(&o->vip_cidrs[i], family))
			strbuf_printf(b, "-A %s -d %s -p tcp -j REDIRECT --to-ports %u\n", TP_CHAIN,
			    cidr_fmt(&o->vip_cidrs[i], cidr, sizeof(cidr)), o->listen_port);
	/* Loopback that is not to a VIP: the pod talking to itself. */
	strbuf_printf(b, "-A %s -o lo -j RETURN\n", TP_CHAIN);
	strbuf_printf(b, "-A %s -d %s -j RETURN\n", TP_CHAIN, lo);
	if (o->capture_all)
		strbuf_printf(b, "-A %s -p tcp -j REDIRECT --to-ports %u\n", TP_CHAIN, o->listen_port);
}

static void jumps(struct strbuf *b, const struct tp_opts *o, const char *verb)
{
	strbuf_printf(b, "%s OUTPUT -p tcp -j %s\n", verb, TP_CHAIN);
	if (o->dns_port)
		strbuf_printf(b, "%s OUTPUT -p udp -j %s\n", verb, TP_CHAIN);
}

char *tp_rules_render(const struct tp_opts *o, int family)
{
	struct strbuf b = { 0 };

	strbuf_printf(&b, "*nat\n:%s - [0:0]\n", TP_CHAIN);
	chain_rules(&b, o, family);
	jumps(&b, o, "-A");
	strbuf_printf(&b, "COMMIT\n");
	return b.s;
}

char *tp_rules_expected(const struct tp_opts *o, int family)
{
	struct strbuf b = { 0 };

	jumps(&b, o, "-A");
	chain_rules(&b, o, family);
	return b.s;
}

/* The filter table's chain: the same exemptions as the nat chain (what nat
 * leaves alone by choice is not refused), then a REJECT per kernel-path
 * vip:port of the family. Reached by a SYN still bound for the VIP, which
 * nat DNATs whenever the VIP has a healthy endpoint. */
static bool refuse_rules(struct strbuf *b, const struct tp_opts *o, int family)
{
	char vip[MS_ADDR_STRLEN];
	bool v4 = family == AF_INET, any = false;

	for (size_t i = 0; i < o->n_dnat; i++)
		any |= addr_is_v4(&o->dnat[i].vip) == v4;
	if (!any)
		return false;
	exemptions(b, o, family, TP_REFUSE_CHAIN);
	for (size_t i = 0; i < o->n_dnat; i++) {
		const struct tp_dnat *d = &o->dnat[i];
		if (addr_is_v4(&d->vip) != v4)
			continue;
		addr_fmt(&d->vip, vip, sizeof(vip));
		strbuf_printf(b, "-A %s -d %s/%u -p tcp -m tcp --dport %u -j REJECT --reject-with tcp-reset\n",
			      TP_REFUSE_CHAIN, vip, v4 ? 32 : 128, d->port);
	}
	return true;
}

char *tp_refuse_render(const struct tp_opts *o, int family)
{
	struct strbuf b = { 0 };

	strbuf_printf(&b, "*filter\n:%s - [0:0]\n", TP_REFUSE_CHAIN);
	if (!refuse_rules(&b, o, family)) {
		free(b.s);
		return NULL;
	}
	strbuf_printf(&b, "COMMIT\n");
	return b.s;
}

char *tp_refuse_expected(const struct tp_opts *o, int family)
{
	struct strbuf b = { 0 };

	strbuf_printf(&b, "%s\n", TP_REFUSE_JUMP);
	if (!refuse_rules(&b, o, family)) {
		free(b.s);
		return xstrdup("");
	}
	return b.s;
}
