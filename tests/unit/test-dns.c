// SPDX-License-Identifier: MIT
/* The DNS codec: queries, names with compression, every bound, answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "util.h"

/* A query for name/type, RD set, optionally with an OPT record. */
static size_t make_query(uint8_t *b, const char *name, uint16_t type, int edns_size)
{
	size_t o = 12;
	memset(b, 0, 12);
	b[0] = 0x12;
	b[1] = 0x34;
	b[2] = 0x01; /* RD */
	b[5] = 1;    /* QDCOUNT */
	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		b[o++] = (uint8_t)l;
		memcpy(b + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	b[o++] = 0;
	b[o++] = (uint8_t)(type >> 8);
	b[o++] = (uint8_t)type;
	b[o++] = 0;
	b[o++] = 1; /* IN */
	if (edns_size) {
		b[11] = 1; /* ARCOUNT */
		uint8_t opt[11] = { 0, 0, 41, (uint8_t)(edns_size >> 8), (uint8_t)edns_size, 0, 0, 0, 0, 0, 0 };
		memcpy(b + o, opt, 11);
		o += 11;
	}
	return o;
}

static void test_parse_query(void **state)
{
	(void)state;
	uint8_t b[512];
	struct dns_query q;
	size_t n = make_query(b, "Mes-TCP.svc.meshext.local", DNS_T_A, 4096);

	assert_int_equal(dns_parse_query(b, n, &q), 0);
	assert_int_equal(q.id, 0x1234);
	assert_string_equal(q.name, "Mes-TCP.svc.meshext.local");
	assert_int_equal(q.qtype, DNS_T_A);
	assert_int_equal(q.qclass, 1);
	assert_true(q.edns);
	assert_int_equal(q.udp_size, 4096);
	n = make_query(b, "a.test", DNS_T_AAAA, 0);
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	assert_false(q.edns);
	assert_int_equal(q.udp_size, 512);
}

static void test_not_a_query(void **state)
{
	(void)state;
	uint8_t b[512];
	struct dns_query q;
	size_t n = make_query(b, "a.test", DNS_T_A, 0);

	assert_int_equal(dns_parse_query(b, 11, &q), -EBADMSG);
	assert_int_equal(dns_parse_query(b, n - 1, &q), -EBADMSG); /* truncated question */
	b[2] |= 0x80; /* a response */
	assert_int_equal(dns_parse_query(b, n, &q), -ENOTSUP);
	b[2] = 0x01;
	b[5] = 2; /* two questions */
	assert_int_equal(dns_parse_query(b, n, &q), -ENOTSUP);
	b[5] = 1;
	b[7] = 1; /* an answer record that is not there */
	assert_int_equal(dns_parse_query(b, n, &q), -EBADMSG);
}

static void test_names(void **state)
{
	(void)state;
	char out[DNS_MAX_NAME + 1];
	size_t off;
	/* 12: "a.b", then at 17: "c" + pointer to 12 */
	uint8_t m[32] = { [12] = 1, 'a', 1, 'b', 0, 1, 'c', 0xc0, 12 };

	off = 17;
	assert_int_equal(dns_read_name(m, 21, &off, out, sizeof(out)), 0);
	assert_string_equal(out, "c.a.b");
	assert_int_equal(off, 21); /* just past the pointer */
	/* a pointer to itself, and a forward pointer */
	uint8_t loop[16] = { [12] = 0xc0, 12 };
	off = 12;
	assert_int_equal(dns_read_name(loop, 14, &off, out, sizeof(out)), -EBADMSG);
	uint8_t fwd[20] = { [12] = 0xc0, 16, 0, 0, 1, 'x', 0 };
	off = 12;
	assert_int_equal(dns_read_name(fwd, 19, &off, out, sizeof(out)), -EBADMSG);
	/* reserved label type, a label past the end, a 64-byte label */
	uint8_t bad[16] = { [12] = 0x40, 0 };
	off = 12;
	assert_int_equal(dns_read_name(bad, 14, &off, out, sizeof(out)), -EBADMSG);
	uint8_t past[16] = { [12] = 5, 'a', 'b' };
	off = 12;
	assert_int_equal(dns_read_name(past, 15, &off, out, sizeof(out)), -EBADMSG);
	uint8_t big[128] = { [12] = 64 };
	memset(big + 13, 'a', 64);
	off = 12;
	assert_int_equal(dns_read_name(big, 78, &off, out, sizeof(out)), -EBADMSG);
	/* longer than 255 in total: five 63-byte labels */
	uint8_t long_name[512] = { 0 };
	size_t o = 12;
	for (int i = 0; i < 5; i++) {
		long_name[o++] = 63;
		memset(long_name + o, 'x', 63);
		o += 63;
	}
	long_name[o++] = 0;
	off = 12;
	assert_int_equal(dns_read_name(long_name, o, &off, out, sizeof(out)), -EBADMSG);
	/* control characters and dots inside a label */
	uint8_t ctl[20] = { [12] = 3, 'a', '\n', 'b', 0 };
	off = 12;
	assert_int_equal(dns_read_name(ctl, 17, &off, out, sizeof(out)), -EBADMSG);
}

static void test_answer(void **state)
{
	(void)state;
	uint8_t b[512], out[1024];
	struct dns_query q;
	struct ms_addr a[3];
	size_t n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 1232);

	addr_parse("242.0.0.1", &a[0]);
	addr_parse("2001:2::1", &a[1]);
	addr_parse("242.0.0.2", &a[2]);
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	ssize_t len = dns_build_answer(&q, a, 3, 30, q.udp_size, out, sizeof(out));
	assert_true(len > 0);
	assert_int_equal(out[0], 0x12);
	assert_int_equal(out[1], 0x34);
	assert_true(out[2] & 0x80);  /* QR */
	assert_true(out[2] & 0x04);  /* AA */
	assert_true(out[2] & 0x01);  /* RD echoed */
	assert_int_equal(out[3] & 0x0f, 0);
	assert_int_equal(out[7], 2); /* two A records, the AAAA skipped */
	assert_int_equal(out[11], 1); /* OPT echoed */
	size_t rr = q.question_end;
	assert_int_equal(out[rr], 0xc0);
	assert_int_equal(out[rr + 1], 12);
	assert_int_equal(out[rr + 3], DNS_T_A);
	assert_int_equal(out[rr + 9], 30); /* TTL */
	assert_int_equal(out[rr + 11], 4);
	assert_memory_equal(out + rr + 12, a[0].b + 12, 4);
	/* AAAA: only the IPv6 one */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_AAAA, 0);
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	len = dns_build_answer(&q, a, 3, 30, 512, out, sizeof(out));
	assert_int_equal(out[7], 1);
	assert_int_equal(out[q.question_end + 11], 16);
	/* NODATA: an A query for a name with IPv6 only */
	n = make_query(b, "v6.test", DNS_T_A, 0);
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	len = dns_build_answer(&q, &a[1], 1, 30, 512, out, sizeof(out));
	assert_int_equal(len, (ssize_t)q.question_end);
	assert_int_equal(out[7], 0);
	assert_int_equal(out[3] & 0x0f, 0);
}

static void test_truncation(void **state)
{
	(void)state;
	uint8_t b[512], out[4096];
	struct dns_query q;
	struct ms_addr a[64];
	size_t n = make_query(b, "many.test", DNS_T_A, 0);

	for (int i = 0; i < 64; i++)
		addr_from_v4(&a[i], htonl(0xf2000001u + (uint32_t)i));
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	/* 64 × 16 bytes do not fit in 512: TC, no answers */
	ssize_t len = dns_build_answer(&q, a, 64, 30, 512, out, sizeof(out));
	assert_int_equal(len, (ssize_t)q.question_end);
	assert_true(out[2] & 0x02);
	assert_int_equal(out[7], 0);
	/* over TCP (no limit but the buffer) they all fit */
	len = dns_build_answer(&q, a, 64, 30, sizeof(out), out, sizeof(out));
	assert_int_equal(out[7], 64);
	assert_false(out[2] & 0x02);
}

static void test_errors(void **state)
{
	(void)state;
	uint8_t b[512], out[512];
	struct dns_query q;
	size_t n = make_query(b, "gone.test", DNS_T_A, 0);

	ssize_t len = dns_build_error(NULL, 0xbeef, DNS_R_FORMERR, out, sizeof(out));
	assert_int_equal(len, 12);
	assert_int_equal(out[0], 0xbe);
	assert_int_equal(out[1], 0xef);
	assert_true(out[2] & 0x80);
	assert_int_equal(out[3] & 0x0f, DNS_R_FORMERR);
	assert_int_equal(dns_parse_query(b, n, &q), 0);
	len = dns_build_error(&q, 0, DNS_R_NXDOMAIN, out, sizeof(out));
	assert_int_equal(len, (ssize_t)q.question_end);
	assert_int_equal(out[5], 1); /* the question echoed */
	assert_memory_equal(out + 12, b + 12, q.question_end - 12);
	assert_int_equal(out[3] & 0x0f, DNS_R_NXDOMAIN);
	assert_true(dns_build_error(&q, 0, DNS_R_SERVFAIL, out, 20) < 0); /* -ENOSPC, no overflow */
}

/* The responder's decision: a mesh hostname table of one name per mesh. */
static bool fake_local(void *ctx, void *pod, const char *name, struct ms_addr *ret)
{
	const char *mesh = pod;
	(void)ctx;
	if (strcmp(mesh, "default") != 0 || strcasecmp(name, "mes-tcp.svc.meshext.local") != 0)
		return false;
	addr_parse("242.0.0.7", ret);
	return true;
}

static void test_respond(void **state)
{
	(void)state;
	uint8_t b[512], out[1024];
	struct dns_query q;
	size_t n, len = 0;

	/* a mesh name (any case) in the pod's mesh: answered, AA, TTL as given */
	n = make_query(b, "MES-tcp.svc.meshext.local", DNS_T_A, 0);
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[7], 1);
	assert_memory_equal(out + len - 4, "\xf2\x00\x00\x07", 4);
	assert_memory_equal(out + len - 10, "\x00\x00\x00\x2a", 4); /* TTL 42 */
	assert_string_equal(q.name, "MES-tcp.svc.meshext.local");
	/* the same name from a pod of another mesh, or another name: forwarded */
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "other", out, sizeof(out), &len, &q),
			 DNS_FORWARD);
	n = make_query(b, "example.test", DNS_T_A, 1232);
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_FORWARD);
	/* AAAA of an IPv4 VIP: NODATA */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_AAAA, 0);
	assert_int_equal(dns_respond(b, n, false, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[7], 0);
	assert_int_equal(out[3] & 0x0f, DNS_R_NOERROR);
	/* class CH: not ours */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 0);
	b[n - 1] = 3;
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_FORWARD);
	/* a response is never answered; a short message is dropped; garbage after a header: FORMERR */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 0);
	b[2] |= 0x80;
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, NULL),
			 DNS_DROP);
	assert_int_equal(dns_respond(b, 5, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, NULL),
			 DNS_DROP);
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 0);
	b[12] = 0xc0; /* a pointer to itself */
	b[13] = 12;
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_FORMERR);
	assert_int_equal(q.name[0], '\0');
	/* two questions: another kind of message, the resolver's business */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 0);
	b[5] = 2;
	assert_int_equal(dns_respond(b, n, true, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_FORWARD);
}

/* Passthrough off: what could carry bytes out is answered here, never relayed. */
static void test_respond_strict(void **state)
{
	(void)state;
	uint8_t b[2048], out[1024];
	struct dns_query q;
	size_t n, len = 0;
	const unsigned S = DNS_UDP | DNS_STRICT;

	/* control: a plain query for another name is forwarded, strict or not */
	n = make_query(b, "example.test", DNS_T_A, 1232);
	assert_int_equal(dns_respond(b, n, S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q), DNS_FORWARD);
	/* mesh names are still answered */
	n = make_query(b, "mes-tcp.svc.meshext.local", DNS_T_A, 0);
	assert_int_equal(dns_respond(b, n, S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q), DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_NOERROR);
	/* two questions, or another opcode (UPDATE): REFUSED; without strict: forwarded */
	n = make_query(b, "example.test", DNS_T_A, 0);
	b[5] = 2;
	assert_int_equal(dns_respond(b, n, DNS_UDP, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_FORWARD);
	assert_int_equal(dns_respond(b, n, S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q), DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_REFUSED);
	n = make_query(b, "example.test", DNS_T_A, 0);
	b[2] = (uint8_t)((b[2] & 0x87) | (5 << 3));
	assert_int_equal(dns_respond(b, n, S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q), DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_REFUSED);
	/* a query with an answer record in it (data riding along): FORMERR strict, forwarded otherwise */
	n = make_query(b, "example.test", DNS_T_A, 0);
	static const uint8_t rr[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 4, 'd', 'a', 't', 'a' };
	memcpy(b + n, rr, sizeof(rr));
	b[7] = 1; /* ANCOUNT */
	assert_int_equal(dns_respond(b, n + sizeof(rr), DNS_UDP, 42, fake_local, NULL, "default", out, sizeof(out), &len,
				     &q),
			 DNS_FORWARD);
	assert_int_equal(dns_respond(b, n + sizeof(rr), S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_FORMERR);
	b[7] = 0;
	b[9] = 1; /* the same as authority */
	assert_int_equal(dns_respond(b, n + sizeof(rr), S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_FORMERR);
	/* oversized: an OPT record padded past the bound */
	n = make_query(b, "example.test", DNS_T_A, 1232);
	size_t opt = n - 11; /* the OPT record make_query appended: its RDLENGTH is the last two bytes */
	size_t pad = DNS_STRICT_MAX_QUERY;
	memset(b + n, 0, 4 + pad);
	b[n + 1] = 12; /* option PADDING */
	b[n + 2] = (uint8_t)(pad >> 8);
	b[n + 3] = (uint8_t)pad;
	b[opt + 9] = (uint8_t)((4 + pad) >> 8);
	b[opt + 10] = (uint8_t)(4 + pad);
	assert_int_equal(dns_respond(b, n + 4 + pad, DNS_UDP, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_FORWARD); /* control: a well-formed, if large, query */
	assert_int_equal(dns_respond(b, n + 4 + pad, S, 42, fake_local, NULL, "default", out, sizeof(out), &len, &q),
			 DNS_ANSWER);
	assert_int_equal(out[3] & 0x0f, DNS_R_FORMERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_query), cmocka_unit_test(test_not_a_query),
		cmocka_unit_test(test_names),       cmocka_unit_test(test_answer),
		cmocka_unit_test(test_truncation),  cmocka_unit_test(test_errors),
		cmocka_unit_test(test_respond),     cmocka_unit_test(test_respond_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
