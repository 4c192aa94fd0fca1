// SPDX-License-Identifier: MIT
/* peek.c: the name a client's first bytes ask for. The fixtures are what
 * openssl s_client -servername api.ext.test, curl http://a.ext.test:8080/
 * and curl --http2-prior-knowledge http://API.ext.test:8080/x (Huffman-coded
 * :authority) sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "peek.h"

static const unsigned char fx_tls[] = {
  0x16, 0x03, 0x01, 0x01, 0x39, 0x01, 0x00, 0x01, 0x35, 0x03, 0x03, 0x7f,
  0xd9, 0x2a, 0x8f, 0x59, 0xf3, 0xf4, 0xc2, 0x63, 0x3d, 0xff, 0x84, 0x8d,
  0xeb, 0x7a, 0x69, 0x97, 0x61, 0x0e, 0x82, 0xe3, 0xe1, 0x34, 0x2d, 0x8a,
  0x6a, 0xa4, 0xc8, 0x72, 0xc5, 0xba, 0x39, 0x20, 0xdd, 0x24, 0x93, 0xc3,
  0x30, 0xb0, 0x0c, 0x1d, 0x42, 0x22, 0xc0, 0x8d, 0x49, 0x3e, 0xf6, 0x36,
  0x71, 0x5b, 0x12, 0xe9, 0x3e, 0xbd, 0x6c, 0x63, 0x94, 0x44, 0x58, 0x1e,
  0xfc, 0xb6, 0xbb, 0xf9, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
  0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
  0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
  0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
  0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
  0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xae,
  0x00, 0x00, 0x00, 0x11, 0x00, 0x0f, 0x00, 0x00, 0x0c, 0x61, 0x70, 0x69,
  0x2e, 0x65, 0x78, 0x74, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x00, 0x0b, 0x00,
  0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00,
  0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01,
  0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00,
  0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00,
  0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08,
  0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04,
  0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
  0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04,
  0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01,
  0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0xb7, 0xf5,
  0x00, 0x10, 0x4a, 0x12, 0x24, 0x34, 0x28, 0x31, 0x69, 0xac, 0x2a, 0x99,
  0xac, 0x38, 0x58, 0xd0, 0x6d, 0x8e, 0xf8, 0x33, 0xd0, 0xd5, 0x37, 0xac,
  0xd0, 0xf6, 0x75, 0x41, 0x52, 0x6e
};
static const unsigned int fx_tls_len = 318;
static const unsigned char fx_h2[] = {
  0x50, 0x52, 0x49, 0x20, 0x2a, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x32,
  0x2e, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x53, 0x4d, 0x0d, 0x0a, 0x0d, 0x0a,
  0x00, 0x00, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00,
  0x00, 0x00, 0x64, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x01, 0xff, 0x00, 0x01, 0x00, 0x00, 0x24, 0x01, 0x05, 0x00, 0x00, 0x00,
  0x01, 0x82, 0x04, 0x02, 0x2f, 0x78, 0x86, 0x41, 0x8d, 0x87, 0x5e, 0x45,
  0xcb, 0xe5, 0x2b, 0xa4, 0xa8, 0x4d, 0xc7, 0x80, 0xf0, 0x3f, 0x7a, 0x88,
  0x25, 0xb6, 0x50, 0xc3, 0xab, 0xbc, 0xf2, 0xe1, 0x53, 0x03, 0x2a, 0x2f,
  0x2a
};
static const unsigned int fx_h2_len = 109;
static const unsigned char fx_h1[] = {
  0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31,
  0x2e, 0x31, 0x0d, 0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x61, 0x2e,
  0x65, 0x78, 0x74, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x3a, 0x38, 0x30, 0x38,
  0x30, 0x0d, 0x0a, 0x55, 0x73, 0x65, 0x72, 0x2d, 0x41, 0x67, 0x65, 0x6e,
  0x74, 0x3a, 0x20, 0x63, 0x75, 0x72, 0x6c, 0x2f, 0x37, 0x2e, 0x38, 0x38,
  0x2e, 0x31, 0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x3a, 0x20,
  0x2a, 0x2f, 0x2a, 0x0d, 0x0a, 0x0d, 0x0a
};
static const unsigned int fx_h1_len = 79;


static enum peek_result pk(const void *b, size_t n, struct peek *p)
{
	/* a copy of exactly n bytes: ASan sees any read past them */
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, b, n);
	enum peek_result r = peek_name(c, n, p);
	free(c);
	return r;
}

/* Every cut of buf short of its end: more is needed, or the right name. */
static void every_prefix(const uint8_t *buf, size_t len, const char *name)
{
	struct peek p;

	for (size_t n = 0; n < len; n++) {
		enum peek_result r = pk(buf, n, &p);
		if (r != PEEK_MORE && !(r == PEEK_FOUND && strcmp(p.name, name) == 0))
			fail_msg("prefix of %zu bytes: %d (%s)", n, r, p.name);
	}
}

static void test_tls(void **state)
{
	struct peek p;

	(void)state;
	assert_int_equal(pk(fx_tls, fx_tls_len, &p), PEEK_FOUND);
	assert_int_equal(p.proto, PEEK_TLS);
	assert_string_equal(p.name, "api.ext.test");
	every_prefix(fx_tls, fx_tls_len, "api.ext.test");
}

/* The same ClientHello in records of 7 bytes each (TCP segments are cut
 * anywhere: every_prefix; TLS records too). */
static void test_tls_split_records(void **state)
{
	size_t hl = fx_tls_len - 5, n = 0;
	uint8_t *b = malloc(fx_tls_len + (hl / 7 + 1) * 5);
	struct peek p;

	(void)state;
	for (size_t off = 0; off < hl; off += 7) {
		size_t l = hl - off < 7 ? hl - off : 7;
		b[n++] = 0x16, b[n++] = 0x03, b[n++] = 0x01, b[n++] = 0, b[n++] = (uint8_t)l;
		memcpy(b + n, fx_tls + 5 + off, l);
		n += l;
	}
	assert_int_equal(pk(b, n, &p), PEEK_FOUND);
	assert_string_equal(p.name, "api.ext.test");
	every_prefix(b, n, "api.ext.test");
	/* control: an alert record in the middle ends it */
	b[5 + 7] = 0x15;
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
	free(b);
}

static void test_tls_malformed(void **state)
{
	/* a ClientHello with no extensions: no name */
	static const uint8_t noext[] = { 0x16, 3, 1, 0, 42, 1, 0, 0, 38, 3, 3, [11 ... 42] = 0, 0, 0, 2, 0, 0x2f, 1, 0 };
	uint8_t b[512];
	struct peek p;

	(void)state;
	assert_int_equal(pk(noext, sizeof(noext) - 4, &p), PEEK_MORE);
	/* the declared lengths say it is whole without extensions */
	uint8_t whole[5 + 4 + 2 + 32 + 1 + 4 + 2];
	size_t n = 0;
	whole[n++] = 0x16, whole[n++] = 3, whole[n++] = 1, whole[n++] = 0, whole[n++] = 4 + 2 + 32 + 1 + 4 + 2;
	whole[n++] = 1, whole[n++] = 0, whole[n++] = 0, whole[n++] = 2 + 32 + 1 + 4 + 2;
	whole[n++] = 3, whole[n++] = 3;
	memset(whole + n, 0, 32), n += 32;
	whole[n++] = 0;                                  /* session id */
	whole[n++] = 0, whole[n++] = 2, whole[n++] = 0, whole[n++] = 0x2f; /* one suite */
	whole[n++] = 1, whole[n++] = 0;                  /* null compression */
	assert_int_equal(n, sizeof(whole));
	assert_int_equal(pk(whole, n, &p), PEEK_NO_NAME);
	assert_int_equal(p.proto, PEEK_TLS);
	/* lengths past the end, a record length of 0, a ServerHello */
	memcpy(b, fx_tls, fx_tls_len);
	b[3] = 0, b[4] = 0;
	assert_int_equal(pk(b, fx_tls_len, &p), PEEK_NO_NAME);
	memcpy(b, fx_tls, fx_tls_len);
	b[5] = 2;
	assert_int_equal(pk(b, fx_tls_len, &p), PEEK_NO_NAME);
	memcpy(b, fx_tls, fx_tls_len);
	b[6] = 0xff; /* handshake longer than PEEK_MAX */
	assert_int_equal(pk(b, fx_tls_len, &p), PEEK_NO_NAME);
	/* a name with a byte DNS does not have */
	memcpy(b, fx_tls, fx_tls_len);
	for (size_t i = 0; i + 12 <= fx_tls_len; i++)
		if (memcmp(b + i, "api.ext.test", 12) == 0)
			b[i + 3] = '/';
	assert_int_equal(pk(b, fx_tls_len, &p), PEEK_NO_NAME);
}

static void test_http1(void **state)
{
	struct peek p;

	(void)state;
	assert_int_equal(pk(fx_h1, fx_h1_len, &p), PEEK_FOUND);
	assert_int_equal(p.proto, PEEK_HTTP1);
	assert_string_equal(p.name, "a.ext.test"); /* the port is not the name */
	every_prefix(fx_h1, fx_h1_len, "a.ext.test");
	const char *h = "POST /x HTTP/1.1\r\nhOsT:  Web.Ext.Test. \r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_FOUND);
	assert_string_equal(p.name, "web.ext.test");
	h = "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NO_NAME);
	h = "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NO_NAME); /* which one is the server's */
	h = "GET / HTTP/1.1\r\nHost: [2001:2::1]:80\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NO_NAME);
	h = "GET / HTTP/1.1\r\nHost: a.test:8x\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NO_NAME);
	h = "GET / HTTP/1.1\r\nX-Host: a.test\r\n\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NO_NAME);
	/* not HTTP: a server-speaks-first banner, binary */
	h = "SSH-2.0-OpenSSH_9.2\r\n";
	assert_int_equal(pk(h, strlen(h), &p), PEEK_NOT_THIS);
	assert_int_equal(pk("\x00\x01\x02", 3, &p), PEEK_NOT_THIS);
	assert_int_equal(pk("get / HTTP/1.1\r\n", 16, &p), PEEK_NOT_THIS);
	assert_int_equal(pk("", 0, &p), PEEK_MORE);
}

static void test_huffman(void **state)
{
	/* RFC 7541 C.4.1 */
	static const uint8_t www[] = { 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff };
	static const uint8_t nocache[] = { 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf };
	char out[64];
	uint8_t b[sizeof(www)];

	(void)state;
	assert_int_equal(peek_huffman_decode(www, sizeof(www), out, sizeof(out)), 15);
	assert_memory_equal(out, "www.example.com", 15);
	assert_int_equal(peek_huffman_decode(nocache, sizeof(nocache), out, sizeof(out)), 8);
	assert_memory_equal(out, "no-cache", 8);
	assert_int_equal(peek_huffman_decode(www, sizeof(www), out, 14), -1); /* too long */
	b[0] = 0x07; /* '0' (00000), padding 111 */
	assert_int_equal(peek_huffman_decode(b, 1, out, sizeof(out)), 1);
	assert_int_equal(out[0], '0');
	b[0] = 0x00; /* '0', padding 000: not all ones */
	assert_int_equal(peek_huffman_decode(b, 1, out, sizeof(out)), -1);
	static const uint8_t eos[] = { 0xff, 0xff, 0xff, 0xff }; /* EOS (30 ones) is an error */
	assert_int_equal(peek_huffman_decode(eos, sizeof(eos), out, sizeof(out)), -1);
	assert_int_equal(peek_huffman_decode(www, 0, out, sizeof(out)), 0);
}

/* An HTTP/2 client: preface, SETTINGS, then one HEADERS frame of block. */
static size_t h2(uint8_t *b, const uint8_t *block, size_t n, uint8_t flags)
{
	static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	size_t o = 0;

	memcpy(b, pre, 24), o = 24;
	memcpy(b + o, "\0\0\0\x04\0\0\0\0\0", 9), o += 9; /* empty SETTINGS */
	b[o++] = 0, b[o++] = 0, b[o++] = (uint8_t)n, b[o++] = 1, b[o++] = flags;
	memcpy(b + o, "\0\0\0\x01", 4), o += 4;
	memcpy(b + o, block, n);
	return o + n;
}

static void test_http2(void **state)
{
	uint8_t b[256];
	struct peek p;
	size_t n;

	(void)state;
	assert_int_equal(pk(fx_h2, fx_h2_len, &p), PEEK_FOUND);
	assert_int_equal(p.proto, PEEK_HTTP2);
	assert_string_equal(p.name, "api.ext.test"); /* curl sent API.ext.test:8080, Huffman-coded */
	every_prefix(fx_h2, fx_h2_len, "api.ext.test");
	/* literal :authority (static index 1), not Huffman, never indexed */
	static const uint8_t lit[] = { 0x82, 0x11, 6, 'a', '.', 't', 'e', 's', 't', 0x84 };
	n = h2(b, lit, sizeof(lit), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_FOUND);
	assert_string_equal(p.name, "a.test");
	/* a literal name ":authority" */
	static const uint8_t litname[] = { 0x00, 10, ':', 'a', 'u', 't', 'h', 'o', 'r', 'i', 't', 'y', 3, 'x', '.', 'y' };
	n = h2(b, litname, sizeof(litname), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_FOUND);
	assert_string_equal(p.name, "x.y");
	/* added to the dynamic table, then named by index 62: two authorities */
	static const uint8_t twice[] = { 0x41, 3, 'x', '.', 'y', 0xbe };
	n = h2(b, twice, sizeof(twice), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
	/* an index past both tables */
	static const uint8_t far[] = { 0xbf };
	n = h2(b, far, sizeof(far), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
	/* no END_HEADERS: a CONTINUATION must follow; until it does, more */
	n = h2(b, lit, sizeof(lit), 0x00);
	assert_int_equal(pk(b, n, &p), PEEK_MORE);
	memcpy(b + n, "\0\0\0\x09\x04\0\0\0\x01", 9);
	assert_int_equal(pk(b, n + 9, &p), PEEK_FOUND);
	assert_string_equal(p.name, "a.test");
	/* padded: the pad length past the frame */
	static const uint8_t pad[] = { 200, 0x82 };
	n = h2(b, pad, sizeof(pad), 0x0c);
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
	/* no :authority at all */
	static const uint8_t none[] = { 0x82, 0x84 };
	n = h2(b, none, sizeof(none), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
	/* a cut integer */
	static const uint8_t cut[] = { 0x82, 0x7f };
	n = h2(b, cut, sizeof(cut), 0x04);
	assert_int_equal(pk(b, n, &p), PEEK_NO_NAME);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_tls_split_records),
		cmocka_unit_test(test_tls_malformed),
		cmocka_unit_test(test_http1),
		cmocka_unit_test(test_huffman),
		cmocka_unit_test(test_http2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
