// SPDX-License-Identifier: MIT
#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool addr_is_v4(const struct ms_addr *a)
{
	return memcmp(a->b, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0;
}

void addr_from_v4(struct ms_addr *a, uint32_t be_ip)
{
	memcpy(a->b, v4mapped_prefix, sizeof(v4mapped_prefix));
	memcpy(a->b + 12, &be_ip, 4);
}

uint32_t addr_to_v4(const struct ms_addr *a)
{
	uint32_t ip;

	memcpy(&ip, a->b + 12, 4);
	return ip;
}

bool addr_eq(const struct ms_addr *a, const struct ms_addr *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

int addr_parse(const char *s, struct ms_addr *ret)
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		addr_from_v4(ret, v4.s_addr);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6) == 1) {
		memcpy(ret->b, &v6, 16);
		return 0;
	}
	return -EINVAL;
}

const char *addr_fmt(const struct ms_addr *a, char *buf, size_t len)
{
	if (addr_is_v4(a))
		inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
	return buf;
}

const char *addr_port_fmt(const struct ms_addr *a, uint16_t port, char *buf, size_t len)
{
	char tmp[MS_ADDR_STRLEN];

	addr_fmt(a, tmp, sizeof(tmp));
	if (addr_is_v4(a))
		snprintf(buf, len, "%s:%u", tmp, port);
	else
		snprintf(buf, len, "[%s]:%u", tmp, port);
	return buf;
}

static void mask_bits(uint8_t *b, unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bit = i * 8;
		if (bit >= plen)
			b[i] = 0;
		else if (plen - bit < 8)
			b[i] &= (uint8_t)(0xff << (8 - (plen - bit)));
	}
}

int cidr_parse(const char *s, struct ms_cidr *ret)
{
	char buf[MS_ADDR_STRLEN];
	const char *slash = s ? strchr(s, '/') : NULL;
	struct ms_addr a, m;
	char *end;
	long plen;

	if (!slash || (size_t)(slash - s) >= sizeof(buf) || !slash[1])
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (addr_parse(buf, &a) < 0)
		return -EINVAL;
	errno = 0;
	plen = strtol(slash + 1, &end, 10);
	if (*end || errno || plen < 0 || !isdigit((unsigned char)slash[1]))
		return -EINVAL;
	if (strchr(buf, ':') == NULL) {
		if (plen > 32)
			return -EINVAL;
		plen += 96;
	} else if (plen > 128) {
		return -EINVAL;
	}
	m = a;
	mask_bits(m.b, (unsigned)plen);
	if (!addr_eq(&m, &a))
		return -EINVAL;
	ret->addr = a;
	ret->plen = (uint8_t)plen;
	return 0;
}

bool cidr_contains(const struct ms_cidr *c, const struct ms_addr *a)
{
	struct ms_addr m = *a;

	mask_bits(m.b, c->plen);
	return addr_eq(&m, &c->addr);
}

unsigned cidr_user_plen(const struct ms_cidr *c)
{
	return addr_is_v4(&c->addr) && c->plen >= 96 ? c->plen - 96u : c->plen;
}

const char *cidr_fmt(const struct ms_cidr *c, char *buf, size_t len)
{
	char tmp[MS_ADDR_STRLEN];

	snprintf(buf, len, "%s/%u", addr_fmt(&c->addr, tmp, sizeof(tmp)), cidr_user_plen(c));
	return buf;
}

bool addr_is_local(const struct ms_addr *a)
{
	static const uint8_t any6[16], lo6[16] = { [15] = 1 };

	if (addr_is_v4(a))
		return a->b[12] == 127 || addr_to_v4(a) == 0;
	return memcmp(a->b, any6, 16) == 0 || memcmp(a->b, lo6, 16) == 0;
}

socklen_t addr_to_sockaddr(const struct ms_addr *a, uint16_t port, bool force6,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (addr_is_v4(a) && !force6) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->b + 12, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a->b, 16);
	return sizeof(*sin6);
}

int addr_from_sockaddr(const struct sockaddr *sa, struct ms_addr *ret_a, uint16_t *ret_port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		addr_from_v4(ret_a, sin->sin_addr.s_addr);
		*ret_port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(ret_a->b, &sin6->sin6_addr, 16);
		*ret_port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

bool dns_name_valid(const char *s)
{
	size_t total = 0, label = 0;
	bool alpha = false;
	char prev = '.';

	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++, total++) {
		char c = *p;
		if (c == '.') {
			if (label == 0 || prev == '-')
				return false;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
			if (label == 0 && c == '-')
				return false;
			if (++label > 63)
				return false;
			if (!isdigit((unsigned char)c))
				alpha = true;
		} else {
			return false;
		}
		prev = c;
	}
	/* A single trailing dot (FQDN) is fine; an empty last label otherwise is not. */
	if (prev == '-')
		return false;
	return total <= 253 && alpha;
}
