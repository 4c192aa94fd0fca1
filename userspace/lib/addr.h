/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Every address is kept as 16 bytes; IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * the same layout the BPF maps use. */
struct ms_addr {
	uint8_t b[16];
};

struct ms_cidr {
	struct ms_addr addr; /* network address, host bits zero */
	uint8_t plen;        /* prefix length over the 128-bit form */
};

#define MS_ADDR_STRLEN 64

bool addr_is_v4(const struct ms_addr *a);
void addr_from_v4(struct ms_addr *a, uint32_t be_ip);
uint32_t addr_to_v4(const struct ms_addr *a); /* network byte order */
bool addr_eq(const struct ms_addr *a, const struct ms_addr *b);

/* Parse a literal IPv4 or IPv6 address (no brackets, no port). 0 or -EINVAL. */
int addr_parse(const char *s, struct ms_addr *ret);
/* Format an address ("1.2.3.4" or "2001:db8::1"). Returns buf. */
const char *addr_fmt(const struct ms_addr *a, char *buf, size_t len);
/* "1.2.3.4:80" or "[2001:db8::1]:80". */
const char *addr_port_fmt(const struct ms_addr *a, uint16_t port, char *buf, size_t len);

/* "10.0.0.0/8" or "2001:db8::/32"; host bits must be zero. 0 or -EINVAL. */
int cidr_parse(const char *s, struct ms_cidr *ret);
bool cidr_contains(const struct ms_cidr *c, const struct ms_addr *a);
/* Prefix length as the user wrote it (32-based for IPv4). */
unsigned cidr_user_plen(const struct ms_cidr *c);
const char *cidr_fmt(const struct ms_cidr *c, char *buf, size_t len);

/* True for 127/8, ::1, 0.0.0.0 and :: — the pod's own loopback in policy. */
bool addr_is_local(const struct ms_addr *a);

/* sockaddr conversions. to_sockaddr picks AF_INET for mapped addresses
 * unless force6 is set (then it yields ::ffff:a.b.c.d for a dual-stack socket). */
socklen_t addr_to_sockaddr(const struct ms_addr *a, uint16_t port, bool force6,
			   struct sockaddr_storage *ss);
int addr_from_sockaddr(const struct sockaddr *sa, struct ms_addr *ret_a, uint16_t *ret_port);

/* Valid DNS name: labels 1..63 of [A-Za-z0-9-_], not starting/ending with '-',
 * total <= 253, at least one letter somewhere so that it is not an IP literal. */
bool dns_name_valid(const char *s);
