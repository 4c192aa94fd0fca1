// SPDX-License-Identifier: MIT
/* The known traps of certificate name checking, and the verification cache,
 * on certificates made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

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
	/* unusable material (a secret not there) is not the system CAs */
	b = a;
	b.unusable = "caCert.secret: secret \"s\" not found in mesh \"default\"";
	tls_settings_digest(&b, MS_PROTO_TCP, db);
	assert_memory_not_equal(da, db, 32);
}

/* The config said why this TLS cannot work: no context, that reason (the
 * connections are refused with it); control: the same settings without it
 * build a context. */
static void test_unusable_refused(void **state)
{
	(void)state;
	struct ms_tls t = { .enabled = true, .mode = MS_VERIFY_SECURED, .unusable = "caCert: inline is not a PEM certificate" };
	struct tls_ctx *c = NULL;
	char *err = NULL;

	assert_int_equal(tls_ctx_new(&t, MS_PROTO_TCP, &c, &err), -EINVAL);
	assert_null(c);
	assert_string_equal(err, "caCert: inline is not a PEM certificate");
	free(err);
	err = NULL;
	t.unusable = NULL;
	assert_int_equal(tls_ctx_new(&t, MS_PROTO_TCP, &c, &err), 0);
	assert_non_null(c);
	tls_ctx_unref(c);
}

/* ---------- the verification cache ---------- */

static EVP_PKEY *key_p256(void)
{
	static EVP_PKEY *key;
	if (!key)
		key = EVP_EC_gen("P-256");
	return key;
}

/* A certificate for cn valid for secs, signed by issuer (NULL: self-signed,
 * a CA). */
static X509 *issue(const char *cn, X509 *issuer, long secs)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	static long serial;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ++serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	X509_set_pubkey(x, key_p256());
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, issuer ? "CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, bc, -1);
	X509_EXTENSION_free(bc);
	X509_sign(x, key_p256(), EVP_sha256());
	return x;
}

static struct tls_ctx *ctx_trusting(X509 *ca)
{
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	struct tls_ctx *c = NULL;
	char *err = NULL;

	PEM_write_bio_X509(b, ca);
	BIO_get_mem_ptr(b, &mem);
	struct ms_tls t = { .enabled = true, .mode = MS_VERIFY_SECURED,
			    .ca = { .data = (unsigned char *)mem->data, .len = mem->length } };
	assert_int_equal(tls_ctx_new(&t, MS_PROTO_TCP, &c, &err), 0);
	BIO_free(b);
	return c;
}

/* What SSL does with a server's chain: the context's verification on it. */
static int verify(struct tls_ctx *c, X509 *leaf)
{
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = sk_X509_new_null();

	sk_X509_push(chain, leaf);
	X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(c->ctx), leaf, chain);
	int r = tls_verify_chain(x, c);
	X509_STORE_CTX_free(x);
	sk_X509_free(chain);
	return r;
}

static void test_verify_cache(void **state)
{
	(void)state;
	X509 *ca = issue("test CA", NULL, 3600), *other_ca = issue("other CA", NULL, 3600);
	X509 *a = issue("a", ca, 3600), *b = issue("b", ca, 3600), *stranger = issue("a", other_ca, 3600);
	X509 *brief = issue("brief", ca, 60);
	struct tls_ctx *c = ctx_trusting(ca);
	uint64_t hits = tls_verify_cached();
	int64_t now = (int64_t)time(NULL);

	/* first sight: verified, then remembered */
	assert_int_equal(verify(c, a), 1);
	assert_int_equal(tls_verify_cached(), hits);
	assert_int_equal(verify(c, a), 1);
	assert_int_equal(tls_verify_cached(), hits + 1);
	/* another chain under the same CA is verified on its own */
	assert_int_equal(verify(c, b), 1);
	assert_int_equal(tls_verify_cached(), hits + 1);
	assert_int_equal(c->n_verified, 2);
	/* a failure is never kept: refused again, and again by verification */
	assert_int_equal(verify(c, stranger), 0);
	assert_int_equal(verify(c, stranger), 0);
	assert_int_equal(tls_verify_cached(), hits + 1);
	assert_int_equal(c->n_verified, 2);
	/* an entry lasts 5 minutes at most, and never past a notAfter */
	assert_true(c->verified[0].until <= now + 300 + 1);
	assert_int_equal(verify(c, brief), 1);
	assert_true(c->verified[2].until <= now + 60 + 1);
	/* expired: verified anew, and its own entry refreshed, not a second one */
	c->verified[0].until = now - 1;
	assert_int_equal(verify(c, a), 1);
	assert_int_equal(tls_verify_cached(), hits + 1);
	assert_int_equal(c->n_verified, 3);
	assert_true(c->verified[0].until > now);
	/* bounded: more chains than slots replace the oldest */
	X509 *many[TLS_VERIFIED_MAX];
	for (size_t i = 0; i < TLS_VERIFIED_MAX; i++) {
		many[i] = issue("many", ca, 3600);
		assert_int_equal(verify(c, many[i]), 1);
	}
	assert_int_equal(c->n_verified, TLS_VERIFIED_MAX);
	assert_int_equal(verify(c, many[TLS_VERIFIED_MAX - 1]), 1);
	assert_int_equal(tls_verify_cached(), hits + 2);
	for (size_t i = 0; i < TLS_VERIFIED_MAX; i++)
		X509_free(many[i]);
	X509_free(ca), X509_free(other_ca), X509_free(a), X509_free(b), X509_free(stranger), X509_free(brief);
	tls_ctx_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_prefix),      cmocka_unit_test(test_san_exact_prefix),
		cmocka_unit_test(test_nul_in_san),      cmocka_unit_test(test_no_cn_fallback),
		cmocka_unit_test(test_wildcards),       cmocka_unit_test(test_ip_never_dns),
		cmocka_unit_test(test_sans_replace_name_check), cmocka_unit_test(test_settings_digest),
		cmocka_unit_test(test_unusable_refused),
		cmocka_unit_test(test_verify_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
