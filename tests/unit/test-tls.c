// SPDX-License-Identifier: MIT
/* The known traps of certificate name checking, on certificates made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "tls.h"
#include "util.h"

/* A certificate with the given SANs ("DNS:x", "URI:x", "IP:x"; a DNS value
 * may hold a NUL written as "\\0") and common name cn. */
static X509 *make_cert(const char *cn, const char *const *sans, size_t n)
{
	static EVP_PKEY *key;
	X509 *x = X509_new();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();

	if (!key)
		key = EVP_EC_gen("P-256");
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		const char *v = sans[i] + 4;
		if (strncmp(sans[i], "IP:", 3) == 0) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(sans[i] + 3);
			GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		} else {
			/* "\\0" in the test string stands for a real NUL byte */
			char buf[256];
			size_t len = 0;
			for (const char *p = v; *p && len < sizeof(buf); p++) {
				if (p[0] == '\\' && p[1] == '0') {
					buf[len++] = '\0';
					p++;
				} else {
					buf[len++] = *p;
				}
			}
			ASN1_IA5STRING *s = ASN1_IA5STRING_new();
			ASN1_STRING_set(s, buf, (int)len);
			GENERAL_NAME_set0_value(g, strncmp(sans[i], "URI:", 4) == 0 ? GEN_URI : GEN_DNS, s);
		}
		sk_GENERAL_NAME_push(gens, g);
	}
	if (n)
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT);
	GENERAL_NAMES_free(gens);
	X509_sign(x, key, EVP_sha256());
	return x;
}

static struct tls_ctx *ctx_with(const struct ms_san *sans, size_t n)
{
	static struct tls_ctx c;
	memset(&c, 0, sizeof(c));
	c.mode = MS_VERIFY_SECURED;
	c.sans = (struct ms_san *)sans;
	c.n_sans = n;
	return &c;
}

static bool host_ok(X509 *x, const char *host)
{
	struct tls_target tt = { .host = host };
	return tls_check_cert(ctx_with(NULL, 0), x, &tt) == 0;
}

static bool ip_ok(X509 *x, const char *ip)
{
	struct tls_target tt = { .ip = ip };
	return tls_check_cert(ctx_with(NULL, 0), x, &tt) == 0;
}

static void test_uri_prefix(void **state)
{
	(void)state;
	const char *u1 = "spiffe://mesh.test", *u2 = "spiffe://mesh.test/ns/a", *u3 = "spiffe://mesh.test.evil/ns/a";
	assert_true(tls_uri_prefix_match("spiffe://mesh.test", u1, strlen(u1)));
	assert_true(tls_uri_prefix_match("spiffe://mesh.test", u2, strlen(u2)));
	assert_false(tls_uri_prefix_match("spiffe://mesh.test", u3, strlen(u3)));
	assert_true(tls_uri_prefix_match("spiffe://mesh.test/", u2, strlen(u2)));
	assert_false(tls_uri_prefix_match("spiffe://mesh.test/ns/ab", u2, strlen(u2)));
	/* the length given is what counts, not a NUL inside */
	assert_false(tls_uri_prefix_match("spiffe://mesh.test", u2, 10));
	assert_false(tls_uri_prefix_match("", u1, strlen(u1)));
}

static void test_san_exact_prefix(void **state)
{
	(void)state;
	const char *sans[] = { "DNS:Up.Test", "URI:spiffe://mesh.test/ns/default/sa/up", "IP:198.18.3.2", "IP:2001:2::5" };
	X509 *x = make_cert("ignored", sans, 4);
	struct ms_san exact_dns = { false, "up.test" }, exact_long = { false, "up.test.evil" };
	struct ms_san exact_uri = { false, "spiffe://mesh.test/ns/default/sa/up" };
	struct ms_san exact_uri_short = { false, "spiffe://mesh.test/ns/default" };
	struct ms_san prefix_uri = { true, "spiffe://mesh.test" }, prefix_evil = { true, "spiffe://mesh.tes" };
	struct ms_san ip4 = { false, "198.18.3.2" }, ip6 = { false, "2001:2:0::5" }, ip_other = { false, "198.18.3.20" };

	assert_true(tls_san_match(&exact_dns, 1, x)); /* DNS is case-insensitive */
	assert_false(tls_san_match(&exact_long, 1, x));
	assert_true(tls_san_match(&exact_uri, 1, x));
	assert_false(tls_san_match(&exact_uri_short, 1, x)); /* exact means the whole length */
	assert_true(tls_san_match(&prefix_uri, 1, x));
	assert_false(tls_san_match(&prefix_evil, 1, x)); /* not at a path boundary */
	assert_true(tls_san_match(&ip4, 1, x));
	assert_true(tls_san_match(&ip6, 1, x));     /* compared as addresses */
	assert_false(tls_san_match(&ip_other, 1, x));
	X509_free(x);
}

static void test_nul_in_san(void **state)
{
	(void)state;
	const char *sans[] = { "DNS:up.test\\0.evil.test", "URI:spiffe://mesh.test/\\0x" };
	X509 *x = make_cert("x", sans, 2);
	struct ms_san dns = { false, "up.test" }, pre = { true, "up.test" }, uri = { true, "spiffe://mesh.test" };

	assert_false(tls_san_match(&dns, 1, x));
	assert_false(tls_san_match(&pre, 1, x));
	assert_false(tls_san_match(&uri, 1, x));
	assert_false(host_ok(x, "up.test"));
	X509_free(x);
}

static void test_no_cn_fallback(void **state)
{
	(void)state;
	X509 *x = make_cert("up.test", NULL, 0);
	assert_false(host_ok(x, "up.test"));
	X509_free(x);
}

static void test_wildcards(void **state)
{
	(void)state;
	const char *full[] = { "DNS:*.wild.test" }, *partial[] = { "DNS:s*.wild.test" };
	X509 *a = make_cert("x", full, 1), *b = make_cert("x", partial, 1);

	assert_true(host_ok(a, "a.wild.test"));
	assert_false(host_ok(a, "a.b.wild.test")); /* one label only */
	assert_false(host_ok(a, "wild.test"));
	assert_false(host_ok(b, "sa.wild.test")); /* no partial wildcards */
	X509_free(a);
	X509_free(b);
}

static void test_ip_never_dns(void **state)
{
	(void)state;
	const char *dns_ip[] = { "DNS:198.18.3.2" }, *ip[] = { "IP:198.18.3.2" };
	X509 *a = make_cert("198.18.3.2", dns_ip, 1), *b = make_cert("x", ip, 1);

	assert_false(ip_ok(a, "198.18.3.2")); /* an IP is checked against IP SANs only */
	assert_true(ip_ok(b, "198.18.3.2"));
	assert_false(ip_ok(b, "198.18.3.3"));
	assert_false(host_ok(b, "198.18.3.2"));
	X509_free(a);
	X509_free(b);
}

static void test_sans_replace_name_check(void **state)
{
	(void)state;
	const char *sans[] = { "DNS:up.test", "URI:spiffe://mesh.test/sa/up" };
	X509 *x = make_cert("x", sans, 2);
	struct ms_san want = { false, "spiffe://mesh.test/sa/up" }, miss = { false, "other.test" };
	struct tls_target tt = { .host = "nomatch.test" };

	/* given SANs: the host is not consulted */
	assert_int_equal(tls_check_cert(ctx_with(&want, 1), x, &tt), 0);
	assert_int_equal(tls_check_cert(ctx_with(&miss, 1), x, &tt), -EPERM);
	/* no name at all to check: fail closed */
	struct tls_target none = { 0 };
	assert_int_equal(tls_check_cert(ctx_with(NULL, 0), x, &none), -EPERM);
	X509_free(x);
}

static void test_settings_digest(void **state)
{
	(void)state;
	struct ms_tls a = { .enabled = true, .mode = MS_VERIFY_SECURED }, b = a;
	uint8_t da[32], db[32];

	tls_settings_digest(&a, MS_PROTO_TCP, da);
	tls_settings_digest(&b, MS_PROTO_TCP, db);
	assert_memory_equal(da, db, 32);
	b.mode = MS_VERIFY_SKIP_CA;
	tls_settings_digest(&b, MS_PROTO_TCP, db);
	assert_memory_not_equal(da, db, 32);
	b = a;
	tls_settings_digest(&b, MS_PROTO_HTTP2, db);
	assert_memory_not_equal(da, db, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_prefix),      cmocka_unit_test(test_san_exact_prefix),
		cmocka_unit_test(test_nul_in_san),      cmocka_unit_test(test_no_cn_fallback),
		cmocka_unit_test(test_wildcards),       cmocka_unit_test(test_ip_never_dns),
		cmocka_unit_test(test_sans_replace_name_check), cmocka_unit_test(test_settings_digest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
