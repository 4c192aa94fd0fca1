// SPDX-License-Identifier: MIT
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define MAX_SESSIONS 64
/* How long a verified chain is accepted again without building it anew, at
 * most (and never past a certificate's notAfter). */
#define VERIFIED_TTL_S 300

static int ctx_index = -1; /* SSL_CTX ex_data: struct tls_ctx * */
static int ssl_index = -1; /* SSL ex_data: endpoint key (const char *) */

static const char *const fail_names[TLS_FAIL__MAX] = {
	[TLS_FAIL_UNKNOWN_CA] = "unknown_ca",
	[TLS_FAIL_NAME_MISMATCH] = "name_mismatch",
	[TLS_FAIL_EXPIRED] = "expired",
	[TLS_FAIL_PROTOCOL_VERSION] = "protocol_version",
	[TLS_FAIL_RENEGOTIATION] = "renegotiation",
	[TLS_FAIL_KTLS_KEY_UPDATE] = "ktls_key_update",
	[TLS_FAIL_HANDSHAKE] = "handshake",
};

const char *tls_fail_name(enum tls_fail f)
{
	return f < TLS_FAIL__MAX ? fail_names[f] : "?";
}

static int version_of(enum ms_tls_version v)
{
	switch (v) {
	case MS_TLS10:
		return TLS1_VERSION;
	case MS_TLS11:
		return TLS1_1_VERSION;
	case MS_TLS12:
		return TLS1_2_VERSION;
	case MS_TLS13:
		return TLS1_3_VERSION;
	default:
		return 0;
	}
}

static bool trust_error(int err)
{
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_INVALID_CA:
		return true;
	default:
		return false;
	}
}

/* SkipCA: accept a chain that does not lead to a trusted CA; every other
 * check (expiry, signatures, names) still applies. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_ctx *c = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index) : NULL;

	if (!ok && c && c->mode == MS_VERIFY_SKIP_CA && trust_error(X509_STORE_CTX_get_error(x))) {
		X509_STORE_CTX_set_error(x, X509_V_OK);
		return 1;
	}
	return ok;
}

static bool ktls_off;
static int ktls_kernel = -1; /* -1: not probed yet; 0: no TLS ULP; 1: it is there */

void tls_ktls_set(bool on)
{
	ktls_off = !on;
}

/* Once per process and silent where the kernel has no TLS (a debug line):
 * the ULP needs an established socket, so an unconnected one tells whether
 * it exists without setting it up (the module loads on demand here). */
bool tls_ktls_usable(void)
{
	if (ktls_off)
		return false;
	if (ktls_kernel < 0) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;
		if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
			e = errno;
		if (fd >= 0)
			close(fd);
		ktls_kernel = fd >= 0 && e != ENOENT && e != ENOPROTOOPT;
		log_debug("kTLS: the kernel %s the TLS ULP (%s)", ktls_kernel ? "offers" : "lacks",
			  fd < 0 ? "no socket" : e ? strerror(e) : "set");
	}
	return ktls_kernel == 1;
}

static uint64_t verify_cached;

uint64_t tls_verify_cached(void)
{
	return verify_cached;
}

/* SHA-256 over the DER of the certificates the server sent, in order. SSL
 * passes the whole peer chain as the untrusted stack, leaf first; the leaf is
 * hashed once. */
static int chain_digest(X509_STORE_CTX *x, uint8_t out[32])
{
	STACK_OF(X509) *rest = X509_STORE_CTX_get0_untrusted(x);
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 32;
	int ok = md && leaf && EVP_DigestInit_ex(md, EVP_sha256(), NULL);

	for (int i = -1; ok && i < sk_X509_num(rest); i++) {
		X509 *cert = i < 0 ? leaf : sk_X509_value(rest, i);
		if (i >= 0 && cert == leaf)
			continue;
		unsigned char *der = NULL;
		int n = i2d_X509(cert, &der);
		ok = n > 0 && EVP_DigestUpdate(md, &n, sizeof(n)) && EVP_DigestUpdate(md, der, (size_t)n);
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
	return ok ? 0 : -EINVAL;
}

/* The earliest notAfter of a verified chain (trust anchor included). */
static int64_t chain_not_after(X509_STORE_CTX *x)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(x);
	int64_t min = INT64_MAX;

	for (int i = 0; i < sk_X509_num(chain); i++) {
		struct tm tm;
		if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) != 1)
			return 0; /* unreadable: do not keep it */
		int64_t t = (int64_t)timegm(&tm);
		if (t < min)
			min = t;
	}
	return chain ? min : 0;
}

/* X509_verify_cert with a memory. A server sends the same chain on every
 * full handshake; building and checking it (an ECDSA verification per CA
 * signature, about 64 us each here, plus OpenSSL's chain building) is the
 * part of the client's work that does not change between handshakes. A
 * chain this context accepted before, byte for byte the same DER, is
 * accepted again while each of its certificates is valid, for
 * VERIFIED_TTL_S at most. Only successes are kept. The cache lives in the
 * context, which a change of trust or verification settings replaces; the
 * server still proves its key (CertificateVerify) and names are still
 * checked after every handshake. */
int tls_verify_chain(X509_STORE_CTX *x, void *arg)
{
	struct tls_ctx *c = arg;
	int64_t now = (int64_t)time(NULL);
	uint8_t key[32];
	bool keyed = chain_digest(x, key) == 0;

	for (size_t i = 0; keyed && i < c->n_verified; i++)
		if (memcmp(c->verified[i].chain, key, sizeof(key)) == 0 && now < c->verified[i].until) {
			verify_cached++;
			X509_STORE_CTX_set_error(x, X509_V_OK);
			return 1;
		}
	int ok = X509_verify_cert(x);
	int64_t until = ok == 1 && keyed ? chain_not_after(x) : 0;
	if (until > now + VERIFIED_TTL_S)
		until = now + VERIFIED_TTL_S;
	if (until > now) {
		size_t slot = 0;
		while (slot < c->n_verified && memcmp(c->verified[slot].chain, key, sizeof(key)) != 0)
			slot++; /* the same chain, expired: refresh it */
		if (slot == c->n_verified)
			slot = c->n_verified < TLS_VERIFIED_MAX ? c->n_verified++ : c->next_verified++ % TLS_VERIFIED_MAX;
		memcpy(c->verified[slot].chain, key, sizeof(key));
		c->verified[slot].until = until;
	}
	return ok;
}

void tls_session_store(struct tls_ctx *c, const char *endpoint, SSL_SESSION *s)
{
	if (c->no_resume || !SSL_SESSION_is_resumable(s))
		return;
	for (size_t i = 0; i < c->n_sessions; i++)
		if (streq(c->sessions[i].endpoint, endpoint)) {
			SSL_SESSION_free(c->sessions[i].sess);
			SSL_SESSION_up_ref(s);
			c->sessions[i].sess = s;
			return;
		}
	if (c->n_sessions >= MAX_SESSIONS)
		return;
	SSL_SESSION_up_ref(s);
	c->sessions[c->n_sessions].endpoint = xstrdup(endpoint);
	c->sessions[c->n_sessions].sess = s;
	c->n_sessions++;
}

/* New sessions, TLS 1.3 tickets included (they arrive after the handshake). */
static int new_session_cb(SSL *ssl, SSL_SESSION *s)
{
	struct tls_ctx *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	const char *ep = SSL_get_ex_data(ssl, ssl_index);

	if (c && ep)
		tls_session_store(c, ep, s);
	return 0; /* we took our own reference */
}

void tls_settings_digest(const struct ms_tls *t, enum ms_proto proto, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 32;
	int v[] = { t->enabled, (int)t->min, (int)t->max, t->allow_renegotiation, (int)t->mode,
		    t->sni_disabled, (int)proto };

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, v, sizeof(v));
	EVP_DigestUpdate(md, t->server_name ? t->server_name : "", t->server_name ? strlen(t->server_name) + 1 : 0);
	EVP_DigestUpdate(md, t->unusable ? t->unusable : "", t->unusable ? strlen(t->unusable) + 1 : 0);
	for (size_t i = 0; i < t->n_sans; i++) {
		EVP_DigestUpdate(md, &t->sans[i].prefix, sizeof(t->sans[i].prefix));
		EVP_DigestUpdate(md, t->sans[i].value, strlen(t->sans[i].value) + 1);
	}
	const struct ms_blob *blobs[] = { &t->ca, &t->cert, &t->key };
	for (size_t i = 0; i < ARRAY_SIZE(blobs); i++) {
		EVP_DigestUpdate(md, &blobs[i]->len, sizeof(blobs[i]->len));
		if (blobs[i]->len)
			EVP_DigestUpdate(md, blobs[i]->data, blobs[i]->len);
	}
	const char *env = getenv("MESHSPLICE_SYSTEM_CA_PATH");
	if (!t->ca.len && env)
		EVP_DigestUpdate(md, env, strlen(env));
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

static char *ssl_err_line(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return xasprintf("%s%s%s", what, *buf ? ": " : "", buf);
}

static int load_ca(SSL_CTX *ctx, const struct ms_tls *t, char **ret_err)
{
	const char *env = getenv("MESHSPLICE_SYSTEM_CA_PATH");

	if (t->ca.len) {
		X509_STORE *st = SSL_CTX_get_cert_store(ctx);
		BIO *bio = BIO_new_mem_buf(t->ca.data, (int)t->ca.len);
		X509 *x;
		int n = 0;
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			X509_STORE_add_cert(st, x);
			X509_free(x);
			n++;
		}
		BIO_free(bio);
		ERR_clear_error();
		if (n == 0) {
			*ret_err = xstrdup("caCert holds no PEM certificate");
			return -EINVAL;
		}
		return 0;
	}
	if (env && *env) {
		struct stat st;
		bool dir = stat(env, &st) == 0 && S_ISDIR(st.st_mode);
		if (SSL_CTX_load_verify_locations(ctx, dir ? NULL : env, dir ? env : NULL) != 1) {
			*ret_err = ssl_err_line("MESHSPLICE_SYSTEM_CA_PATH: cannot load the CA bundle");
			return -EINVAL;
		}
		return 0;
	}
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		*ret_err = ssl_err_line("cannot load the system CA bundle");
		return -EINVAL;
	}
	return 0;
}

static int load_client_cert(SSL_CTX *ctx, const struct ms_tls *t, char **ret_err)
{
	BIO *bio;
	X509 *x;
	EVP_PKEY *k;
	int r = 0;

	if (!t->cert.len)
		return 0;
	bio = BIO_new_mem_buf(t->cert.data, (int)t->cert.len);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
		*ret_err = ssl_err_line("clientCert");
		r = -EINVAL;
	}
	X509_free(x);
	while (r == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		SSL_CTX_add0_chain_cert(ctx, x); /* takes ownership */
	BIO_free(bio);
	ERR_clear_error();
	if (r < 0 || !t->key.len)
		return r;
	bio = BIO_new_mem_buf(t->key.data, (int)t->key.len);
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (!k || SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		*ret_err = ssl_err_line("clientKey");
		r = -EINVAL;
	}
	EVP_PKEY_free(k);
	return r;
}

int tls_ctx_new(const struct ms_tls *t, enum ms_proto proto, struct tls_ctx **ret, char **ret_err)
{
	struct tls_ctx *c;
	SSL_CTX *ctx;
	int r;

	if (t->unusable) { /* the config said why, with a warning */
		*ret_err = xstrdup(t->unusable);
		return -EINVAL;
	}
	if (ctx_index < 0) {
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		*ret_err = ssl_err_line("SSL_CTX_new");
		return -ENOMEM;
	}
	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->ctx = ctx;
	c->mode = t->mode;
	c->allow_renegotiation = t->allow_renegotiation;
	c->server_name = t->server_name ? xstrdup(t->server_name) : NULL;
	c->sni_disabled = t->sni_disabled;
	c->sans = xcalloc(t->n_sans ? t->n_sans : 1, sizeof(*c->sans));
	for (size_t i = 0; i < t->n_sans; i++)
		c->sans[i] = (struct ms_san){ .prefix = t->sans[i].prefix, .value = xstrdup(t->sans[i].value) };
	c->n_sans = t->n_sans;
	c->sessions = xcalloc(MAX_SESSIONS, sizeof(*c->sessions));
	tls_settings_digest(t, proto, c->digest);
	SSL_CTX_set_ex_data(ctx, ctx_index, c);

	int min = t->min == MS_TLS_AUTO ? TLS1_2_VERSION : version_of(t->min);
	int max = version_of(t->max);
	if (min <= TLS1_1_VERSION)
		SSL_CTX_set_security_level(ctx, 0); /* OpenSSL 3 refuses TLS 1.0/1.1 above level 0 */
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	/* Never legacy (insecure) renegotiation; secure renegotiation only when allowed. */
	SSL_CTX_clear_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
	if (!t->allow_renegotiation)
		SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* A peer's EOF without close_notify is forwarded as a FIN (one documented way;
	 * counted by the forwarder), like most HTTP clients treat it. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_ENABLE_KTLS
	/* Kernel TLS cannot renegotiate (OpenSSL refuses once a direction is in
	 * the kernel): a service that allows renegotiation stays in userspace. */
	c->ktls = tls_ktls_usable() && !t->allow_renegotiation;
	if (c->ktls)
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS); /* the kernel takes each direction it can */
#endif
	/* read several records per recv(2) instead of header, then body */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 65536);
	/* MESHSPLICE_TLS_NO_RESUME=1 (benchmarks: full handshakes every time) */
	const char *nores = getenv("MESHSPLICE_TLS_NO_RESUME");
	c->no_resume = nores && streq(nores, "1");
	if (c->no_resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	}
	if (t->mode == MS_VERIFY_SKIP_ALL) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		SSL_CTX_set_cert_verify_callback(ctx, tls_verify_chain, c);
	}
	if (proto == MS_PROTO_HTTP2 || proto == MS_PROTO_GRPC)
		SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3);
	else if (proto == MS_PROTO_HTTP)
		SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
	if ((t->mode != MS_VERIFY_SKIP_ALL && (r = load_ca(ctx, t, ret_err)) < 0) ||
	    (r = load_client_cert(ctx, t, ret_err)) < 0) {
		tls_ctx_unref(c);
		return r;
	}
	*ret = c;
	return 0;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
	if (c)
		c->refs++;
	return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
	if (!c || --c->refs > 0)
		return;
	SSL_CTX_free(c->ctx);
	for (size_t i = 0; i < c->n_sessions; i++) {
		free(c->sessions[i].endpoint);
		SSL_SESSION_free(c->sessions[i].sess);
	}
	free(c->sessions);
	for (size_t i = 0; i < c->n_sans; i++)
		free(c->sans[i].value);
	free(c->sans);
	free(c->server_name);
	free(c);
}

SSL *tls_ssl_new(struct tls_ctx *c, int fd, const struct tls_target *tt)
{
	SSL *ssl = SSL_new(c->ctx);

	if (!ssl)
		return NULL;
	SSL_set_fd(ssl, fd);
	SSL_set_connect_state(ssl);
	SSL_set_ex_data(ssl, ssl_index, (void *)tt->endpoint);
	/* SNI and the verified name are set apart: SNI here, names after the handshake. */
	if (tt->sni)
		SSL_set_tlsext_host_name(ssl, tt->sni);
	for (size_t i = 0; i < c->n_sessions; i++)
		if (streq(c->sessions[i].endpoint, tt->endpoint)) {
			SSL_set_session(ssl, c->sessions[i].sess);
			break;
		}
	return ssl;
}

/* A URI prefix matches whole path segments: "spiffe://mesh.test" matches
 * "spiffe://mesh.test" and "spiffe://mesh.test/ns/a", never
 * "spiffe://mesh.test.evil/...". */
bool tls_uri_prefix_match(const char *prefix, const char *uri, size_t uri_len)
{
	size_t pl = strlen(prefix);

	if (pl == 0 || uri_len < pl || memcmp(uri, prefix, pl) != 0)
		return false;
	return uri_len == pl || prefix[pl - 1] == '/' || uri[pl] == '/';
}

static bool dns_eq(const char *a, size_t al, const char *b)
{
	return al == strlen(b) && strncasecmp(a, b, al) == 0;
}

bool tls_san_match(const struct ms_san *want, size_t n, X509 *cert)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool ok = false;

	for (int i = 0; gens && !ok && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const char *s = NULL;
		size_t len = 0;
		char ip[INET6_ADDRSTRLEN] = "";
		int type = g->type;

		if (type == GEN_DNS || type == GEN_URI) {
			const ASN1_IA5STRING *a = type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
			s = (const char *)ASN1_STRING_get0_data(a);
			len = (size_t)ASN1_STRING_length(a);
			if (memchr(s, '\0', len))
				continue; /* an embedded NUL never matches anything */
		} else if (type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *b = ASN1_STRING_get0_data(g->d.iPAddress);
			if (l == 4)
				inet_ntop(AF_INET, b, ip, sizeof(ip));
			else if (l == 16)
				inet_ntop(AF_INET6, b, ip, sizeof(ip));
			else
				continue;
			s = ip;
			len = strlen(ip);
		} else {
			continue;
		}
		for (size_t w = 0; w < n && !ok; w++) {
			const char *v = want[w].value;
			if (type == GEN_URI)
				ok = want[w].prefix ? tls_uri_prefix_match(v, s, len) : (len == strlen(v) && memcmp(s, v, len) == 0);
			else if (type == GEN_DNS)
				ok = want[w].prefix ? (len >= strlen(v) && strncasecmp(s, v, strlen(v)) == 0) : dns_eq(s, len, v);
			else {
				struct ms_addr a, b;
				ok = addr_parse(v, &a) == 0 && addr_parse(s, &b) == 0 && addr_eq(&a, &b);
			}
		}
	}
	GENERAL_NAMES_free(gens);
	return ok;
}

int tls_check_names(struct tls_ctx *c, SSL *ssl, const struct tls_target *tt)
{
	if (c->mode == MS_VERIFY_SKIP_SAN || c->mode == MS_VERIFY_SKIP_ALL)
		return 0;
	return tls_check_cert(c, SSL_get0_peer_certificate(ssl), tt);
}

int tls_check_cert(const struct tls_ctx *c, X509 *cert, const struct tls_target *tt)
{
	bool ok;

	if (!cert)
		return -EPERM;
	if (c->n_sans)
		ok = tls_san_match(c->sans, c->n_sans, cert); /* given SANs replace the name check */
	else if (tt->host)
		/* Only 1 counts (0 no match, negative errors); no CN fallback, no s*.x wildcards. */
		ok = X509_check_host(cert, tt->host, 0,
				     X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				     NULL) == 1;
	else if (tt->ip)
		ok = X509_check_ip_asc(cert, tt->ip, 0) == 1; /* IP SANs only, never DNS SANs */
	else
		ok = false; /* nothing to check a name against: fail closed */
	ERR_clear_error();
	return ok ? 0 : -EPERM;
}

enum tls_fail tls_classify(SSL *ssl, int ssl_err, char *buf, size_t len)
{
	long vr = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_error();
	int reason = e ? ERR_GET_REASON(e) : 0;
	enum tls_fail f = TLS_FAIL_HANDSHAKE;
	size_t o = 0;

	buf[0] = '\0';
	if (vr != X509_V_OK) {
		o += (size_t)snprintf(buf, len, "certificate: %s", X509_verify_cert_error_string(vr));
		if (vr == X509_V_ERR_CERT_HAS_EXPIRED || vr == X509_V_ERR_CERT_NOT_YET_VALID)
			f = TLS_FAIL_EXPIRED;
		else if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
			f = TLS_FAIL_NAME_MISMATCH;
		else
			f = TLS_FAIL_UNKNOWN_CA;
	} else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
		   reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_NO_PROTOCOLS_AVAILABLE ||
		   reason == SSL_R_VERSION_TOO_LOW || reason == SSL_R_VERSION_TOO_HIGH) {
		f = TLS_FAIL_PROTOCOL_VERSION;
	} else if (reason == SSL_R_NO_RENEGOTIATION) {
		f = TLS_FAIL_RENEGOTIATION;
	} else if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA) {
		f = TLS_FAIL_UNKNOWN_CA;
	}
	while ((e = ERR_get_error()) != 0 && o + 4 < len) {
		char one[256];
		ERR_error_string_n(e, one, sizeof(one));
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "; " : "", one);
	}
	if (!buf[0])
		snprintf(buf, len, "%s", ssl_err == SSL_ERROR_SYSCALL ? "connection closed during the handshake" :
					 "handshake failed");
	ERR_clear_error();
	return f;
}
