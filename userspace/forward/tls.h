/* SPDX-License-Identifier: MIT */
#pragma once

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "config-t.h"

/* TLS origination towards one service: the SSL_CTX built from its tls
 * settings, what to verify, and its session cache (one session per
 * endpoint). A context is keyed by a digest of the settings: when they
 * change the agent builds a new context, so a session is never resumed
 * across a change of verification settings. */

enum tls_fail {
	TLS_FAIL_UNKNOWN_CA,
	TLS_FAIL_NAME_MISMATCH,
	TLS_FAIL_EXPIRED,
	TLS_FAIL_PROTOCOL_VERSION,
	TLS_FAIL_RENEGOTIATION,
	TLS_FAIL_KTLS_KEY_UPDATE, /* a KeyUpdate asked of a TLS 1.3 sending direction the kernel cannot rekey */
	TLS_FAIL_HANDSHAKE, /* anything else: alerts, resets, bad records */
	TLS_FAIL__MAX,
};

struct tls_session_slot {
	char *endpoint; /* host:port */
	SSL_SESSION *sess;
};

/* A chain this context verified, by the SHA-256 of its certificates' DER. */
struct tls_verified {
	uint8_t chain[32];
	int64_t until; /* accepted again until then (time(2) seconds) */
};
#define TLS_VERIFIED_MAX 8

struct tls_ctx {
	int refs;
	SSL_CTX *ctx;
	uint8_t digest[32]; /* of the settings that shape verification and the handshake */
	enum ms_verify_mode mode;
	bool allow_renegotiation;
	bool no_resume; /* MESHSPLICE_TLS_NO_RESUME=1: full handshakes (benchmarks) */
	bool ktls;      /* asked OpenSSL for kernel TLS (tls_ktls_usable) */
	char *server_name; /* NULL: the endpoint's DNS name */
	bool sni_disabled;
	struct ms_san *sans;
	size_t n_sans;
	struct tls_session_slot *sessions;
	size_t n_sessions;
	struct tls_verified verified[TLS_VERIFIED_MAX];
	size_t n_verified, next_verified; /* next_verified: the slot to replace */
};

/* What one connection verifies against, fixed when it starts. */
struct tls_target {
	const char *sni;        /* NULL: no SNI (IP endpoint, or disabled) */
	const char *host;       /* DNS name to check, or NULL */
	const char *ip;         /* IP literal to check (IP endpoint without serverName), or NULL */
	const char *endpoint;   /* session cache key */
};

/* Build the context for t (proto picks ALPN). Returns 0, or -EINVAL with a
 * one-line reason in *ret_err (caller frees). */
int tls_ctx_new(const struct ms_tls *t, enum ms_proto proto, struct tls_ctx **ret, char **ret_err);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx *c);
/* Digest of the settings (to reuse a context across reloads when unchanged). */
void tls_settings_digest(const struct ms_tls *t, enum ms_proto proto, uint8_t out[32]);

/* A new SSL for fd, with SNI, session and verification set up. */
SSL *tls_ssl_new(struct tls_ctx *c, int fd, const struct tls_target *tt);
/* After a successful handshake: the name check of the mode. 0, or -EPERM. */
int tls_check_names(struct tls_ctx *c, SSL *ssl, const struct tls_target *tt);
/* Keep the session for resumption (also called for TLS 1.3 tickets). */
void tls_session_store(struct tls_ctx *c, const char *endpoint, SSL_SESSION *s);
/* Why a handshake failed, from the verify result and the error queue;
 * drains the queue into buf (one line). */
enum tls_fail tls_classify(SSL *ssl, int ssl_err, char *buf, size_t len);
const char *tls_fail_name(enum tls_fail f);
/* Full handshakes whose chain was accepted from the verification cache. */
uint64_t tls_verify_cached(void);
/* The contexts' certificate verification (SSL_CTX_set_cert_verify_callback;
 * arg is the struct tls_ctx): X509_verify_cert, remembering the chains it
 * accepted. Exposed for the unit tests. */
int tls_verify_chain(X509_STORE_CTX *x, void *arg);

/* The name check alone, on a certificate (mode not consulted). */
int tls_check_cert(const struct tls_ctx *c, X509 *cert, const struct tls_target *tt);

/* Kernel TLS: with it on (the default) and a kernel that offers the TLS ULP
 * (probed once: TCP_ULP "tls" on an unconnected socket gives ENOTCONN where
 * the ULP exists, ENOENT where it does not), contexts ask OpenSSL for kTLS
 * (SSL_OP_ENABLE_KTLS) and the forwarder splices what went to the kernel.
 * Call before the first tls_ctx_new. */
void tls_ktls_set(bool on);
/* Whether new contexts ask for kTLS (the option, and the kernel's answer). */
bool tls_ktls_usable(void);

/* Pure matchers, exposed for the unit tests. */
bool tls_san_match(const struct ms_san *want, size_t n, X509 *cert);
bool tls_uri_prefix_match(const char *prefix, const char *uri, size_t uri_len);
