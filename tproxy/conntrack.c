// SPDX-License-Identifier: MIT
/* Where a REDIRECTed UDP datagram was going. SO_ORIGINAL_DST is TCP only,
 * so ask conntrack (ctnetlink, in the pod's netns) for the entry whose
 * reply tuple is (us → client) and read its original destination. */
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netns.h"
#include "tproxy.h"
#include "util.h"

#define NLA_ALIGN4(n) (((n) + 3u) & ~3u)

struct nlbuf {
	uint8_t b[512];
	size_t len;
};

static struct nlattr *attr_put(struct nlbuf *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(m->b + m->len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy(m->b + m->len + NLA_HDRLEN, data, len);
	m->len += NLA_ALIGN4(NLA_HDRLEN + len);
	return a;
}

static void nest_end(struct nlbuf *m, struct nlattr *a)
{
	a->nla_len = (uint16_t)(m->b + m->len - (uint8_t *)a);
}

/* The first attribute of type in [p, p+len), or NULL. */
static const struct nlattr *attr_find(const uint8_t *p, size_t len, uint16_t type)
{
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		size_t step = NLA_ALIGN4(a->nla_len);
		if (step >= len)
			return NULL;
		p += step;
		len -= step;
	}
	return NULL;
}

static const uint8_t *attr_data(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}

static size_t attr_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

int tp_conntrack_orig_dst(int netns_fd, int l4proto, const struct ms_addr *client, uint16_t cport,
			  const struct ms_addr *local, uint16_t lport, struct ms_addr *ret, uint16_t *ret_port)
{
	bool v4 = addr_is_v4(client);
	struct nlbuf m = { 0 };
	struct nlmsghdr *h = (struct nlmsghdr *)m.b;
	struct nfgenmsg *g;
	uint8_t proto = (uint8_t)l4proto, resp[4096];
	uint16_t sp = htons(lport), dp = htons(cport);
	_cleanup_close_ int fd = -1;
	ssize_t n;

	m.len = NLMSG_HDRLEN;
	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = 1;
	g = (struct nfgenmsg *)(m.b + m.len);
	g->nfgen_family = v4 ? AF_INET : AF_INET6;
	g->version = NFNETLINK_V0;
	m.len += NLMSG_ALIGN(sizeof(*g));
	/* the reply direction: from our socket back to the client */
	struct nlattr *tuple = attr_put(&m, CTA_TUPLE_REPLY | NLA_F_NESTED, NULL, 0);
	struct nlattr *ip = attr_put(&m, CTA_TUPLE_IP | NLA_F_NESTED, NULL, 0);
	if (v4) {
		attr_put(&m, CTA_IP_V4_SRC, local->b + 12, 4);
		attr_put(&m, CTA_IP_V4_DST, client->b + 12, 4);
	} else {
		attr_put(&m, CTA_IP_V6_SRC, local->b, 16);
		attr_put(&m, CTA_IP_V6_DST, client->b, 16);
	}
	nest_end(&m, ip);
	struct nlattr *pr = attr_put(&m, CTA_TUPLE_PROTO | NLA_F_NESTED, NULL, 0);
	attr_put(&m, CTA_PROTO_NUM, &proto, 1);
	attr_put(&m, CTA_PROTO_SRC_PORT, &sp, 2);
	attr_put(&m, CTA_PROTO_DST_PORT, &dp, 2);
	nest_end(&m, pr);
	nest_end(&m, tuple);
	h->nlmsg_len = (uint32_t)m.len;

	fd = netns_socket(netns_fd, AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	if (fd < 0)
		return fd;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, m.b, m.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	/* the kernel answers within sendto: the reply is queued already */
	n = recv(fd, resp, sizeof(resp), 0);
	if (n < 0)
		return -errno;
	for (struct nlmsghdr *r = (struct nlmsghdr *)resp; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
		if (r->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(r);
			if (r->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error)
				return e->error;
			continue;
		}
		if (r->nlmsg_type != ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW))
			continue;
		const uint8_t *attrs = (const uint8_t *)NLMSG_DATA(r) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
		size_t alen = r->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct nfgenmsg)));
		const struct nlattr *orig = attr_find(attrs, alen, CTA_TUPLE_ORIG);
		const struct nlattr *oip = orig ? attr_find(attr_data(orig), attr_len(orig), CTA_TUPLE_IP) : NULL;
		const struct nlattr *opr = orig ? attr_find(attr_data(orig), attr_len(orig), CTA_TUPLE_PROTO) : NULL;
		const struct nlattr *dst = oip ? attr_find(attr_data(oip), attr_len(oip), v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST) : NULL;
		const struct nlattr *port = opr ? attr_find(attr_data(opr), attr_len(opr), CTA_PROTO_DST_PORT) : NULL;
		if (!dst || !port || attr_len(dst) != (v4 ? 4u : 16u) || attr_len(port) != 2)
			return -EBADMSG;
		uint16_t p;
		if (v4) {
			uint32_t a4;
			memcpy(&a4, attr_data(dst), 4);
			addr_from_v4(ret, a4);
		} else {
			memcpy(ret->b, attr_data(dst), 16);
		}
		memcpy(&p, attr_data(port), 2);
		*ret_port = ntohs(p);
		return 0;
	}
	return -ENOENT;
}
