/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The name a client's first bytes ask for, read without consuming them
 * (MeshPassthrough Domain matches): a TLS ClientHello's server_name, an
 * HTTP/1 request's Host header, or an HTTP/2 request's :authority (HPACK,
 * Huffman coded or not). Pure: no I/O, no allocation; any input is safe. */

#define PEEK_MAX 16384 /* bytes the forwarder looks at, at most */

enum peek_result {
	PEEK_FOUND = 0,      /* proto and name set */
	PEEK_MORE = 1,       /* a prefix of something that may name a host: wait for more bytes */
	PEEK_NO_NAME = -1,   /* proto set, but no usable name (no SNI, no Host, two Hosts, a bad name) */
	PEEK_NOT_THIS = -2,  /* neither TLS nor HTTP */
};

enum peek_proto { PEEK_TLS, PEEK_HTTP1, PEEK_HTTP2 };

struct peek {
	enum peek_proto proto;
	char name[256]; /* lower case, no port, no trailing dot */
};

enum peek_result peek_name(const uint8_t *buf, size_t len, struct peek *ret);
const char *peek_proto_name(enum peek_proto p);
/* HPACK (RFC 7541) Huffman decoding of in into out (at most max bytes).
 * Returns the length, or -1 (bad code, EOS, padding, too long). */
int peek_huffman_decode(const uint8_t *in, size_t len, char *out, size_t max);
