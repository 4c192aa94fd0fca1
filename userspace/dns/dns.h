/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"

/* A bounded DNS message codec (RFC 1035, EDNS0 from RFC 6891): every length
 * field checked against the buffer, compression pointers only backwards and
 * at most DNS_MAX_JUMPS of them, names at most 255 bytes, labels at most 63.
 * Groundwork for the mesh DNS responder: parse a query, answer A/AAAA,
 * answer an error. */

#define DNS_HEADER 12
#define DNS_MAX_NAME 255
#define DNS_MAX_JUMPS 32
#define DNS_UDP_DEFAULT 512

enum dns_type { DNS_T_A = 1, DNS_T_AAAA = 28, DNS_T_OPT = 41 };
enum dns_rcode { DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3, DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5 };

/* The largest query a strict responder passes on: one question (255) and an
 * OPT record with room for cookies and padding. */
#define DNS_STRICT_MAX_QUERY 1024

struct dns_query {
	uint16_t id, flags;
	char name[DNS_MAX_NAME + 1]; /* dotted, no trailing dot, as sent (case kept) */
	uint16_t qtype, qclass;
	size_t question_end;  /* offset just past the question */
	bool edns;
	uint16_t udp_size;    /* the client's EDNS payload size, or 512 */
	uint16_t an, ns, ar;  /* record counts after the question */
};

/* Read a (possibly compressed) name at *off into out (dotted). Advances *off
 * past the name as it sits in the message. 0 or -EBADMSG. */
int dns_read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outcap);

/* A standard query with exactly one question (answers, authority, additional
 * records are walked to find EDNS). 0; -EBADMSG when malformed (answer
 * FORMERR if the header was readable: len >= 12); -ENOTSUP when it is not a
 * plain query (a response, another opcode, several questions). */
int dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *ret);

/* An answer to q with addrs (A for IPv4 ones when qtype is A, AAAA for IPv6
 * ones when AAAA; none: NODATA). Sets TC and drops the answers when the
 * message would exceed max_size. Returns the length written or -ENOSPC. */
ssize_t dns_build_answer(const struct dns_query *q, const struct ms_addr *addrs, size_t n,
			 uint32_t ttl, size_t max_size, uint8_t *out, size_t outcap);

/* An error answer (FORMERR, SERVFAIL, NXDOMAIN, NOTIMP): the question is
 * echoed when q is given, else a bare header with id. Length or -ENOSPC. */
ssize_t dns_build_error(const struct dns_query *q, uint16_t id, enum dns_rcode rcode, uint8_t *out,
			size_t outcap);

/* A standard query (RD set) for name (dotted, a trailing dot allowed) and
 * qtype, as a stub resolver sends it. Length or -EINVAL (not a DNS name) /
 * -ENOSPC. */
ssize_t dns_build_query(const char *name, uint16_t qtype, uint16_t id, uint8_t *out, size_t outcap);

/* The responder's decision for one message, without I/O. */
enum dns_verdict {
	DNS_ANSWER,  /* out holds the answer (a mesh name, or FORMERR) */
	DNS_FORWARD, /* not ours: to the pod's resolver, unchanged */
	DNS_DROP,    /* unreadable, or not a query: no answer */
};

/* The VIP of name in the pod's mesh; false when it is not a name of its services. */
typedef bool (*dns_local_fn)(void *ctx, void *pod, const char *name, struct ms_addr *ret_vip);

/* How dns_respond reads a message. */
enum dns_respond_flags {
	DNS_UDP = 1 << 0,    /* it came over UDP: answers truncate (TC) past the client's size */
	DNS_STRICT = 1 << 1, /* the pod's mesh has passthrough off: only plain queries may leave */
};

/* Decide for msg: a response is dropped (never answered: no loops, no
 * reflection); a malformed query with a readable header gets FORMERR; a
 * class IN (or ANY) question for a name local() knows is answered with its
 * VIP (A or AAAA as the family allows, else NODATA) and ttl, truncated (TC)
 * past 512 bytes or the client's EDNS size over UDP; everything else is
 * forwarded. DNS_STRICT: what is not a plain query (another opcode, several
 * questions) is REFUSED, and a query carrying answer or authority records,
 * more than one additional record, or more than DNS_STRICT_MAX_QUERY bytes
 * gets FORMERR: none of them is relayed (a way to carry arbitrary bytes
 * out). ret_q (optional) gets the parsed question, name "" when none. */
enum dns_verdict dns_respond(const uint8_t *msg, size_t len, unsigned flags, uint32_t ttl, dns_local_fn local, void *ctx,
			     void *pod, uint8_t *out, size_t outcap, size_t *ret_len, struct dns_query *ret_q);
