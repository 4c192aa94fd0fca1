// SPDX-License-Identifier: MIT
#include "dns.h"

#include <errno.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap)
{
	size_t pos = *off, o = 0, end = 0;
	int jumps = 0;
	bool jumped = false;

	if (outcap == 0)
		return -EBADMSG;
	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len)
				return -EBADMSG;
			size_t target = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
			/* only backwards, and boundedly: no loops, no forward games */
			if (target >= pos || ++jumps > DNS_MAX_JUMPS)
				return -EBADMSG;
			if (!jumped)
				end = pos + 2;
			jumped = true;
			pos = target;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG; /* 0x40/0x80: reserved label types */
		if (l == 0) {
			if (!jumped)
				end = pos + 1;
			break;
		}
		if (pos + 1 + l > len)
			return -EBADMSG;
		/* dotted length so far + dot + label, within 255 and the buffer */
		if (o + (o ? 1 : 0) + l > DNS_MAX_NAME || o + (o ? 1 : 0) + l + 1 > outcap)
			return -EBADMSG;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[pos + 1 + i];
			/* a name we will compare and log: printable, no dot inside a label */
			if (c == '.' || c < 0x21 || c > 0x7e)
				return -EBADMSG;
			out[o++] = (char)c;
		}
		pos += 1 + (size_t)l;
	}
	out[o] = '\0';
	*off = end;
	return 0;
}

/* Skip one resource record; report an OPT record's payload size. */
static int skip_rr(const uint8_t *msg, size_t len, size_t *off, bool *is_opt, uint16_t *udp_size)
{
	char name[DNS_MAX_NAME + 1];
	size_t pos = *off;

	if (dns_read_name(msg, len, &pos, name, sizeof(name)) < 0)
		return -EBADMSG;
	if (pos + 10 > len)
		return -EBADMSG;
	uint16_t type = get16(msg + pos), rdlen = get16(msg + pos + 8);
	if (pos + 10 + rdlen > len)
		return -EBADMSG;
	*is_opt = type == DNS_T_OPT && name[0] == '\0';
	if (*is_opt)
		*udp_size = get16(msg + pos + 2);
	*off = pos + 10 + rdlen;
	return 0;
}

int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *ret)
{
	size_t off = DNS_HEADER;
	uint16_t qd, an, ns, ar;

	memset(ret, 0, sizeof(*ret));
	if (len < DNS_HEADER)
		return -EBADMSG;
	ret->id = get16(msg);
	ret->flags = get16(msg + 2);
	qd = get16(msg + 4);
	an = get16(msg + 6);
	ns = get16(msg + 8);
	ar = get16(msg + 10);
	ret->an = an;
	ret->ns = ns;
	ret->ar = ar;
	ret->udp_size = DNS_UDP_DEFAULT;
	if ((ret->flags & 0x8000) || ((ret->flags >> 11) & 0xf) != 0 || qd != 1)
		return -ENOTSUP; /* a response, not QUERY, or not exactly one question */
	if (dns_read_name(msg, len, &off, ret->name, sizeof(ret->name)) < 0 || off + 4 > len)
		return -EBADMSG;
	ret->qtype = get16(msg + off);
	ret->qclass = get16(msg + off + 2);
	off += 4;
	ret->question_end = off;
	/* a query carries no answers normally, but walk whatever is there */
	for (unsigned i = 0; i < (unsigned)an + ns + ar; i++) {
		bool opt = false;
		uint16_t size = 0;
		if (skip_rr(msg, len, &off, &opt, &size) < 0)
			return -EBADMSG;
		if (opt && i >= (unsigned)an + ns) {
			if (ret->edns)
				return -EBADMSG; /* two OPT records: RFC 6891 says FORMERR */
			ret->edns = true;
			ret->udp_size = size < DNS_UDP_DEFAULT ? DNS_UDP_DEFAULT : size;
		}
	}
	return 0;
}

/* The name again in wire form (uncompressed): what the question echoes. */
static ssize_t put_name(const char *name, uint8_t *out, size_t cap)
{
	size_t o = 0;
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || o + 1 + l >= cap)
			return -ENOSPC;
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	if (o + 1 > cap)
		return -ENOSPC;
	out[o++] = 0;
	return (ssize_t)o;
}

static ssize_t header_question(const struct dns_query *q, uint16_t id, uint16_t flags, uint8_t *out,
			       size_t cap)
{
	ssize_t n;

	if (cap < DNS_HEADER)
		return -ENOSPC;
	memset(out, 0, DNS_HEADER);
	put16(out, id);
	put16(out + 2, flags);
	if (!q)
		return DNS_HEADER;
	put16(out + 4, 1);
	n = put_name(q->name, out + DNS_HEADER, cap - DNS_HEADER);
	if (n < 0 || (size_t)n + DNS_HEADER + 4 > cap)
		return -ENOSPC;
	put16(out + DNS_HEADER + n, q->qtype);
	put16(out + DNS_HEADER + n + 2, q->qclass);
	return DNS_HEADER + n + 4;
}

/* QR, the client's opcode bits (always QUERY here) and RD, then AA and RA. */
static uint16_t reply_flags(const struct dns_query *q, uint16_t rcode)
{
	return (uint16_t)(0x8000 | 0x0400 | (q ? (q->flags & 0x0100) : 0) | 0x0080 | (rcode & 0xf));
}

/* End a message of o bytes: an OPT record when the query had one (ARCOUNT
 * 1). Returns the whole length or -ENOSPC. */
static ssize_t finish_opt(const struct dns_query *q, uint8_t *out, size_t cap, ssize_t o)
{
	if (!q || !q->edns)
		return o;
	if (cap - (size_t)o < 11)
		return -ENOSPC;
	out[o] = 0; /* root */
	put16(out + o + 1, DNS_T_OPT);
	put16(out + o + 3, 1232); /* our payload size: the usual safe figure */
	memset(out + o + 5, 0, 6); /* extended rcode, version, flags, rdlen */
	put16(out + 10, 1);
	return o + 11;
}

ssize_t dns_build_answer(const struct dns_query *q, const struct ms_addr *addrs, size_t n,
			 uint32_t ttl, size_t max_size, uint8_t *out, size_t outcap)
{
	ssize_t o = header_question(q, q->id, reply_flags(q, DNS_R_NOERROR), out, outcap);
	uint16_t an = 0;

	if (o < 0)
		return o;
	size_t limit = outcap < max_size ? outcap : max_size;
	size_t opt_len = q->edns ? 11 : 0;
	for (size_t i = 0; i < n; i++) {
		bool v4 = addr_is_v4(&addrs[i]);
		size_t rdlen = v4 ? 4 : 16;
		if ((q->qtype == DNS_T_A) != v4 || (q->qtype != DNS_T_A && q->qtype != DNS_T_AAAA))
			continue;
		if ((size_t)o + 12 + rdlen + opt_len > limit) {
			/* does not fit: header and question only, with TC; never a partial set */
			o = header_question(q, q->id, (uint16_t)(reply_flags(q, DNS_R_NOERROR) | 0x0200), out, outcap);
			an = 0;
			break;
		}
		out[o] = 0xc0; /* pointer to the question's name */
		out[o + 1] = DNS_HEADER;
		put16(out + o + 2, v4 ? DNS_T_A : DNS_T_AAAA);
		put16(out + o + 4, 1); /* IN */
		put16(out + o + 6, (uint16_t)(ttl >> 16));
		put16(out + o + 8, (uint16_t)ttl);
		put16(out + o + 10, (uint16_t)rdlen);
		memcpy(out + o + 12, v4 ? addrs[i].b + 12 : addrs[i].b, rdlen);
		o += (ssize_t)(12 + rdlen);
		an++;
	}
	put16(out + 6, an);
	return finish_opt(q, out, outcap, o);
}

ssize_t dns_build_error(const struct dns_query *q, uint16_t id, enum dns_rcode rcode, uint8_t *out,
			size_t outcap)
{
	ssize_t o = header_question(q, q ? q->id : id, reply_flags(q, rcode), out, outcap);

	if (o < 0)
		return o;
	return finish_opt(q, out, outcap, o);
}

enum dns_verdict dns_respond(const uint8_t *msg, size_t len, unsigned flags, uint32_t ttl, dns_local_fn local, void *ctx,
			     void *pod, uint8_t *out, size_t outcap, size_t *ret_len, struct dns_query *ret_q)
{
	struct dns_query q;
	struct ms_addr vip;
	ssize_t n;
	int r;

	if (ret_q)
		ret_q->name[0] = '\0';
	if (len >= 3 && (msg[2] & 0x80))
		return DNS_DROP;
	bool udp = flags & DNS_UDP, strict = flags & DNS_STRICT;
	r = dns_parse_query(msg, len, &q);
	if (r == -ENOTSUP && !strict)
		return DNS_FORWARD; /* another opcode or several questions: the resolver's business */
	if (r == -ENOTSUP) {
		n = dns_build_error(NULL, (uint16_t)(msg[0] << 8 | msg[1]), DNS_R_REFUSED, out, outcap);
		if (n < 0)
			return DNS_DROP;
		*ret_len = (size_t)n;
		return DNS_ANSWER;
	}
	if (r == 0 && strict && (q.an || q.ns || q.ar > 1 || len > DNS_STRICT_MAX_QUERY))
		r = -EBADMSG; /* a query is a question and at most an OPT record */
	if (r < 0) {
		if (len < DNS_HEADER)
			return DNS_DROP;
		n = dns_build_error(NULL, (uint16_t)(msg[0] << 8 | msg[1]), DNS_R_FORMERR, out, outcap);
		if (n < 0)
			return DNS_DROP;
		*ret_len = (size_t)n;
		return DNS_ANSWER;
	}
	if (ret_q)
		*ret_q = q;
	if ((q.qclass != 1 && q.qclass != 255) || !local(ctx, pod, q.name, &vip))
		return DNS_FORWARD;
	size_t max = 65535;
	if (udp)
		max = q.edns && q.udp_size > DNS_UDP_DEFAULT ? q.udp_size : DNS_UDP_DEFAULT;
	n = dns_build_answer(&q, &vip, 1, ttl, max, out, outcap);
	if (n < 0)
		return DNS_DROP;
	*ret_len = (size_t)n;
	return DNS_ANSWER;
}

ssize_t dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out, size_t outcap)
{
	size_t o = DNS_HEADER, total = 0;

	if (outcap < DNS_HEADER + 1 + 4 || !*name)
		return outcap < DNS_HEADER + 1 + 4 ? -ENOSPC : -EINVAL;
	memset(out, 0, DNS_HEADER);
	put16(out, id);
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* one question */
	for (const char *l = name; *l;) {
		const char *dot = strchr(l, '.');
		size_t n = dot ? (size_t)(dot - l) : strlen(l);
		if (n == 0 || n > 63)
			return -EINVAL; /* an empty label ("a..b", ".") or an overlong one */
		total += n + 1;
		if (total > DNS_MAX_NAME)
			return -EINVAL;
		if (o + 1 + n + 5 > outcap)
			return -ENOSPC;
		for (size_t i = 0; i < n; i++)
			if ((uint8_t)l[i] < 0x21 || (uint8_t)l[i] > 0x7e)
				return -EINVAL;
		out[o++] = (uint8_t)n;
		memcpy(out + o, l, n);
		o += n;
		l += n;
		if (*l == '.')
			l++;
	}
	out[o++] = 0;
	put16(out + o, qtype);
	put16(out + o + 2, 1); /* IN */
	return (ssize_t)(o + 4);
}
