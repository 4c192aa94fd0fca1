// SPDX-License-Identifier: MIT
/* First bytes → the name they ask for (see peek.h). Each parser reads only
 * what it has, says PEEK_MORE while the bytes so far are a prefix of
 * something that may still name a host, and bounds every length it reads
 * by what is there. */
#include "peek.h"

#include <stdbool.h>
#include <string.h>

const char *peek_proto_name(enum peek_proto p)
{
	switch (p) {
	case PEEK_TLS:
		return "tls";
	case PEEK_HTTP1:
		return "http";
	case PEEK_HTTP2:
		return "http2";
	}
	return "?";
}

/* A host name as DNS has it (letters, digits, '-', '_', '.'), lower-cased
 * into ret->name without a trailing dot; an IP literal passes too (it then
 * matches no Domain rule). */
static bool set_name(struct peek *ret, const char *s, size_t len)
{
	if (len && s[len - 1] == '.')
		len--;
	if (!len || len >= sizeof(ret->name))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
		if (c == '.' && (i == 0 || s[i - 1] == '.'))
			return false;
		ret->name[i] = c;
	}
	ret->name[len] = '\0';
	return true;
}

/* ---------- TLS ---------- */

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* The ClientHello body hs (n bytes of it so far, total of them in all). */
static enum peek_result client_hello(const uint8_t *hs, size_t n, size_t total, struct peek *ret)
{
	size_t off = 2 + 32, need;

	/* version, random, session id, cipher suites, compression, extensions */
	if (n < off + 1)
		return n < total ? PEEK_MORE : PEEK_NO_NAME;
	off += 1 + hs[off];
	if (n < off + 2)
		return n < total ? PEEK_MORE : PEEK_NO_NAME;
	off += 2 + be16(hs + off);
	if (n < off + 1)
		return n < total ? PEEK_MORE : PEEK_NO_NAME;
	off += 1 + hs[off];
	if (off > total)
		return PEEK_NO_NAME;
	if (off + 2 > total)
		return PEEK_NO_NAME; /* no extensions: no SNI */
	if (n < off + 2)
		return PEEK_MORE;
	size_t end = off + 2 + be16(hs + off);
	if (end > total)
		return PEEK_NO_NAME;
	off += 2;
	while (off + 4 <= end) {
		if (n < off + 4)
			return PEEK_MORE;
		uint32_t type = be16(hs + off), elen = be16(hs + off + 2);
		off += 4;
		if (off + elen > end)
			return PEEK_NO_NAME;
		if (type != 0) {
			off += elen;
			continue;
		}
		need = off + elen;
		if (n < need)
			return PEEK_MORE;
		/* server_name_list: the host_name entry (RFC 6066 §3: at most one) */
		if (elen < 2 || be16(hs + off) + 2 != elen)
			return PEEK_NO_NAME;
		size_t p = off + 2;
		while (p + 3 <= need) {
			uint32_t nt = hs[p], nl = be16(hs + p + 1);
			if (p + 3 + nl > need)
				return PEEK_NO_NAME;
			if (nt == 0)
				return set_name(ret, (const char *)hs + p + 3, nl) ? PEEK_FOUND : PEEK_NO_NAME;
			p += 3 + nl;
		}
		return PEEK_NO_NAME;
	}
	return PEEK_NO_NAME;
}

/* TLS records of type handshake; the ClientHello may span several records
 * (and any number of TCP segments): its bytes are gathered first. */
static enum peek_result peek_tls(const uint8_t *buf, size_t len, struct peek *ret)
{
	uint8_t hs[PEEK_MAX];
	size_t n = 0, off = 0, total = 0;

	ret->proto = PEEK_TLS;
	while (off < len) {
		if (len - off < 5)
			return PEEK_MORE;
		if (buf[off] != 0x16 || buf[off + 1] != 0x03)
			return n ? PEEK_NO_NAME : PEEK_NOT_THIS;
		size_t rl = be16(buf + off + 3);
		if (rl == 0 || rl > 16384 + 256)
			return PEEK_NO_NAME;
		size_t have = len - off - 5 < rl ? len - off - 5 : rl;
		if (n + have > sizeof(hs))
			return PEEK_NO_NAME;
		memcpy(hs + n, buf + off + 5, have);
		n += have;
		off += 5 + have;
		if (n >= 4 && !total) {
			if (hs[0] != 1)
				return PEEK_NO_NAME; /* not a ClientHello */
			total = be24(hs + 1);
			if (total + 4 > sizeof(hs))
				return PEEK_NO_NAME;
		}
		if (total && n >= total + 4)
			break;
		if (have < rl)
			break; /* this record is not all here yet */
	}
	if (n < 4)
		return PEEK_MORE;
	enum peek_result r = client_hello(hs + 4, n - 4 < total ? n - 4 : total, total, ret);
	return r;
}

/* ---------- HTTP/1 ---------- */

static bool tchar(uint8_t c)
{
	return (c >= 'A' && c <= 'Z');
}

static int ci_prefix(const uint8_t *p, size_t n, const char *s)
{
	size_t l = strlen(s);

	if (n < l)
		return 0;
	for (size_t i = 0; i < l; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)s[i])
			return 0;
	}
	return 1;
}

/* The Host header's value without OWS and port: "a.test", "a.test:8080",
 * "[2001:db8::1]:80" (a literal: no name). */
static bool host_value(struct peek *ret, const uint8_t *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n && v[0] == '[')
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] == ':') {
			for (size_t j = i + 1; j < n; j++)
				if (v[j] < '0' || v[j] > '9')
					return false;
			n = i;
			break;
		}
	return set_name(ret, (const char *)v, n);
}

static enum peek_result peek_http1(const uint8_t *buf, size_t len, struct peek *ret)
{
	size_t i = 0, hdr_end = 0, line;
	int hosts = 0;
	struct peek found = { .proto = PEEK_HTTP1 };

	ret->proto = PEEK_HTTP1;
	/* method SP: a token of capitals (GET, POST, CONNECT...) */
	while (i < len && i < 20 && tchar(buf[i]))
		i++;
	if (i == len)
		return i < 20 ? PEEK_MORE : PEEK_NOT_THIS;
	if (i == 0 || buf[i] != ' ')
		return PEEK_NOT_THIS;
	for (size_t k = 0; k + 3 < len; k++)
		if (buf[k] == '\r' && buf[k + 1] == '\n' && buf[k + 2] == '\r' && buf[k + 3] == '\n') {
			hdr_end = k + 2;
			break;
		}
	if (!hdr_end)
		return PEEK_MORE;
	/* past the request line */
	for (line = 0; line + 1 < hdr_end && !(buf[line] == '\r' && buf[line + 1] == '\n'); line++)
		;
	line += 2;
	while (line < hdr_end) {
		size_t e = line;
		while (e + 1 < hdr_end + 2 && !(buf[e] == '\r' && buf[e + 1] == '\n'))
			e++;
		if (ci_prefix(buf + line, e - line, "host:")) {
			hosts++;
			if (!host_value(&found, buf + line + 5, e - line - 5))
				return PEEK_NO_NAME;
		}
		line = e + 2;
	}
	/* two Host headers: which one the server takes is the server's call */
	if (hosts != 1)
		return PEEK_NO_NAME;
	*ret = found;
	return PEEK_FOUND;
}

/* ---------- HTTP/2 and HPACK ---------- */

/* RFC 7541 Appendix B: the code and its length in bits, symbols 0..255
 * then EOS (256). */
static const struct {
	uint32_t code;
	uint8_t bits;
} huff[257] = {
	{ 0x1ff8, 13 }, { 0x7fffd8, 23 }, { 0xfffffe2, 28 }, { 0xfffffe3, 28 },
	{ 0xfffffe4, 28 }, { 0xfffffe5, 28 }, { 0xfffffe6, 28 }, { 0xfffffe7, 28 },
	{ 0xfffffe8, 28 }, { 0xffffea, 24 }, { 0x3ffffffc, 30 }, { 0xfffffe9, 28 },
	{ 0xfffffea, 28 }, { 0x3ffffffd, 30 }, { 0xfffffeb, 28 }, { 0xfffffec, 28 },
	{ 0xfffffed, 28 }, { 0xfffffee, 28 }, { 0xfffffef, 28 }, { 0xffffff0, 28 },
	{ 0xffffff1, 28 }, { 0xffffff2, 28 }, { 0x3ffffffe, 30 }, { 0xffffff3, 28 },
	{ 0xffffff4, 28 }, { 0xffffff5, 28 }, { 0xffffff6, 28 }, { 0xffffff7, 28 },
	{ 0xffffff8, 28 }, { 0xffffff9, 28 }, { 0xffffffa, 28 }, { 0xffffffb, 28 },
	{ 0x14, 6 }, { 0x3f8, 10 }, { 0x3f9, 10 }, { 0xffa, 12 },
	{ 0x1ff9, 13 }, { 0x15, 6 }, { 0xf8, 8 }, { 0x7fa, 11 },
	{ 0x3fa, 10 }, { 0x3fb, 10 }, { 0xf9, 8 }, { 0x7fb, 11 },
	{ 0xfa, 8 }, { 0x16, 6 }, { 0x17, 6 }, { 0x18, 6 },
	{ 0x0, 5 }, { 0x1, 5 }, { 0x2, 5 }, { 0x19, 6 },
	{ 0x1a, 6 }, { 0x1b, 6 }, { 0x1c, 6 }, { 0x1d, 6 },
	{ 0x1e, 6 }, { 0x1f, 6 }, { 0x5c, 7 }, { 0xfb, 8 },
	{ 0x7ffc, 15 }, { 0x20, 6 }, { 0xffb, 12 }, { 0x3fc, 10 },
	{ 0x1ffa, 13 }, { 0x21, 6 }, { 0x5d, 7 }, { 0x5e, 7 },
	{ 0x5f, 7 }, { 0x60, 7 }, { 0x61, 7 }, { 0x62, 7 },
	{ 0x63, 7 }, { 0x64, 7 }, { 0x65, 7 }, { 0x66, 7 },
	{ 0x67, 7 }, { 0x68, 7 }, { 0x69, 7 }, { 0x6a, 7 },
	{ 0x6b, 7 }, { 0x6c, 7 }, { 0x6d, 7 }, { 0x6e, 7 },
	{ 0x6f, 7 }, { 0x70, 7 }, { 0x71, 7 }, { 0x72, 7 },
	{ 0xfc, 8 }, { 0x73, 7 }, { 0xfd, 8 }, { 0x1ffb, 13 },
	{ 0x7fff0, 19 }, { 0x1ffc, 13 }, { 0x3ffc, 14 }, { 0x22, 6 },
	{ 0x7ffd, 15 }, { 0x3, 5 }, { 0x23, 6 }, { 0x4, 5 },
	{ 0x24, 6 }, { 0x5, 5 }, { 0x25, 6 }, { 0x26, 6 },
	{ 0x27, 6 }, { 0x6, 5 }, { 0x74, 7 }, { 0x75, 7 },
	{ 0x28, 6 }, { 0x29, 6 }, { 0x2a, 6 }, { 0x7, 5 },
	{ 0x2b, 6 }, { 0x76, 7 }, { 0x2c, 6 }, { 0x8, 5 },
	{ 0x9, 5 }, { 0x2d, 6 }, { 0x77, 7 }, { 0x78, 7 },
	{ 0x79, 7 }, { 0x7a, 7 }, { 0x7b, 7 }, { 0x7ffe, 15 },
	{ 0x7fc, 11 }, { 0x3ffd, 14 }, { 0x1ffd, 13 }, { 0xffffffc, 28 },
	{ 0xfffe6, 20 }, { 0x3fffd2, 22 }, { 0xfffe7, 20 }, { 0xfffe8, 20 },
	{ 0x3fffd3, 22 }, { 0x3fffd4, 22 }, { 0x3fffd5, 22 }, { 0x7fffd9, 23 },
	{ 0x3fffd6, 22 }, { 0x7fffda, 23 }, { 0x7fffdb, 23 }, { 0x7fffdc, 23 },
	{ 0x7fffdd, 23 }, { 0x7fffde, 23 }, { 0xffffeb, 24 }, { 0x7fffdf, 23 },
	{ 0xffffec, 24 }, { 0xffffed, 24 }, { 0x3fffd7, 22 }, { 0x7fffe0, 23 },
	{ 0xffffee, 24 }, { 0x7fffe1, 23 }, { 0x7fffe2, 23 }, { 0x7fffe3, 23 },
	{ 0x7fffe4, 23 }, { 0x1fffdc, 21 }, { 0x3fffd8, 22 }, { 0x7fffe5, 23 },
	{ 0x3fffd9, 22 }, { 0x7fffe6, 23 }, { 0x7fffe7, 23 }, { 0xffffef, 24 },
	{ 0x3fffda, 22 }, { 0x1fffdd, 21 }, { 0xfffe9, 20 }, { 0x3fffdb, 22 },
	{ 0x3fffdc, 22 }, { 0x7fffe8, 23 }, { 0x7fffe9, 23 }, { 0x1fffde, 21 },
	{ 0x7fffea, 23 }, { 0x3fffdd, 22 }, { 0x3fffde, 22 }, { 0xfffff0, 24 },
	{ 0x1fffdf, 21 }, { 0x3fffdf, 22 }, { 0x7fffeb, 23 }, { 0x7fffec, 23 },
	{ 0x1fffe0, 21 }, { 0x1fffe1, 21 }, { 0x3fffe0, 22 }, { 0x1fffe2, 21 },
	{ 0x7fffed, 23 }, { 0x3fffe1, 22 }, { 0x7fffee, 23 }, { 0x7fffef, 23 },
	{ 0xfffea, 20 }, { 0x3fffe2, 22 }, { 0x3fffe3, 22 }, { 0x3fffe4, 22 },
	{ 0x7ffff0, 23 }, { 0x3fffe5, 22 }, { 0x3fffe6, 22 }, { 0x7ffff1, 23 },
	{ 0x3ffffe0, 26 }, { 0x3ffffe1, 26 }, { 0xfffeb, 20 }, { 0x7fff1, 19 },
	{ 0x3fffe7, 22 }, { 0x7ffff2, 23 }, { 0x3fffe8, 22 }, { 0x1ffffec, 25 },
	{ 0x3ffffe2, 26 }, { 0x3ffffe3, 26 }, { 0x3ffffe4, 26 }, { 0x7ffffde, 27 },
	{ 0x7ffffdf, 27 }, { 0x3ffffe5, 26 }, { 0xfffff1, 24 }, { 0x1ffffed, 25 },
	{ 0x7fff2, 19 }, { 0x1fffe3, 21 }, { 0x3ffffe6, 26 }, { 0x7ffffe0, 27 },
	{ 0x7ffffe1, 27 }, { 0x3ffffe7, 26 }, { 0x7ffffe2, 27 }, { 0xfffff2, 24 },
	{ 0x1fffe4, 21 }, { 0x1fffe5, 21 }, { 0x3ffffe8, 26 }, { 0x3ffffe9, 26 },
	{ 0xffffffd, 28 }, { 0x7ffffe3, 27 }, { 0x7ffffe4, 27 }, { 0x7ffffe5, 27 },
	{ 0xfffec, 20 }, { 0xfffff3, 24 }, { 0xfffed, 20 }, { 0x1fffe6, 21 },
	{ 0x3fffe9, 22 }, { 0x1fffe7, 21 }, { 0x1fffe8, 21 }, { 0x7ffff3, 23 },
	{ 0x3fffea, 22 }, { 0x3fffeb, 22 }, { 0x1ffffee, 25 }, { 0x1ffffef, 25 },
	{ 0xfffff4, 24 }, { 0xfffff5, 24 }, { 0x3ffffea, 26 }, { 0x7ffff4, 23 },
	{ 0x3ffffeb, 26 }, { 0x7ffffe6, 27 }, { 0x3ffffec, 26 }, { 0x3ffffed, 26 },
	{ 0x7ffffe7, 27 }, { 0x7ffffe8, 27 }, { 0x7ffffe9, 27 }, { 0x7ffffea, 27 },
	{ 0x7ffffeb, 27 }, { 0xffffffe, 28 }, { 0x7ffffec, 27 }, { 0x7ffffed, 27 },
	{ 0x7ffffee, 27 }, { 0x7ffffef, 27 }, { 0x7fffff0, 27 }, { 0x3ffffee, 26 },
	{ 0x3fffffff, 30 },
};

int peek_huffman_decode(const uint8_t *in, size_t len, char *out, size_t max)
{
	uint64_t acc = 0;
	unsigned nbits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		nbits += 8;
		/* take every whole symbol: codes are 5..30 bits long */
		for (;;) {
			int sym = -1;
			unsigned l;
			for (l = 5; l <= 30 && l <= nbits && sym < 0; l++) {
				uint32_t c = (uint32_t)((acc >> (nbits - l)) & ((1u << l) - 1));
				for (int s = 0; s < 257; s++)
					if (huff[s].bits == l && huff[s].code == c) {
						sym = s;
						break;
					}
			}
			if (sym < 0) {
				if (nbits >= 30)
					return -1;
				break;
			}
			if (sym == 256)
				return -1; /* EOS in a string is an error */
			nbits -= huff[sym].bits;
			if (n >= max)
				return -1;
			out[n++] = (char)sym;
		}
		acc &= nbits ? (((uint64_t)1 << nbits) - 1) : 0;
	}
	/* padding: fewer than 8 bits, all ones (EOS's first bits) */
	if (nbits > 7 || acc != (((uint64_t)1 << nbits) - 1))
		return -1;
	return (int)n;
}

/* An HPACK integer with an n-bit prefix at *p; -1 when cut or too large. */
static long hpack_int(const uint8_t **p, const uint8_t *end, unsigned n)
{
	unsigned long max = (1u << n) - 1, v;
	unsigned shift = 0;

	if (*p >= end)
		return -1;
	v = **p & max;
	(*p)++;
	if (v < max)
		return (long)v;
	while (*p < end) {
		uint8_t b = **p;
		(*p)++;
		if (shift > 21)
			return -1;
		v += (unsigned long)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return (long)v;
	}
	return -1;
}

/* A string literal, decoded into out; its length or -1. */
static int hpack_str(const uint8_t **p, const uint8_t *end, char *out, size_t max)
{
	if (*p >= end)
		return -1;
	bool h = **p & 0x80;
	long l = hpack_int(p, end, 7);
	if (l < 0 || l > end - *p)
		return -1;
	const uint8_t *s = *p;
	*p += l;
	if (h)
		return peek_huffman_decode(s, (size_t)l, out, max);
	if ((size_t)l > max)
		return -1;
	memcpy(out, s, (size_t)l);
	return (int)l;
}

/* A client's first header block: its dynamic table starts empty, so what
 * an index names is in the static table or was added earlier in this
 * block. Only whether an entry is :authority (or host) and its value is
 * kept; sizes are kept to evict as the decoder would. */
#define DYN_MAX 64
struct dyn {
	struct {
		bool authority;
		size_t size;
		char value[256];
		int vlen;
	} e[DYN_MAX];
	size_t n, size, max;
};

static void dyn_add(struct dyn *d, bool authority, size_t nlen, const char *v, int vlen)
{
	size_t sz = nlen + (size_t)vlen + 32;

	while (d->n && d->size + sz > d->max) {
		d->size -= d->e[d->n - 1].size; /* the oldest is last */
		d->n--;
	}
	if (sz > d->max)
		return;
	if (d->n == DYN_MAX) { /* more entries than we keep: forget the oldest */
		d->size -= d->e[d->n - 1].size;
		d->n--;
	}
	memmove(&d->e[1], &d->e[0], d->n * sizeof(d->e[0]));
	d->e[0].authority = authority;
	d->e[0].size = sz;
	d->e[0].vlen = vlen > 255 ? 255 : vlen;
	memcpy(d->e[0].value, v, (size_t)d->e[0].vlen);
	d->n++;
	d->size += sz;
}

/* Static table (RFC 7541 Appendix A): 1 is :authority, 38 is host; index
 * 1..61. Returns whether index names :authority/host; -1 if out of range. */
static int idx_is_authority(const struct dyn *d, long idx, const char **ret_v, int *ret_vl)
{
	*ret_v = "";
	*ret_vl = 0;
	if (idx <= 0)
		return -1;
	if (idx <= 61)
		return idx == 1 || idx == 38;
	if ((size_t)(idx - 62) >= d->n)
		return -1;
	*ret_v = d->e[idx - 62].value;
	*ret_vl = d->e[idx - 62].vlen;
	return d->e[idx - 62].authority;
}

static enum peek_result hpack_block(const uint8_t *p, const uint8_t *end, struct peek *ret)
{
	struct dyn d;
	char name[256], value[256];
	int found = 0;

	d.n = 0;
	d.size = 0;
	d.max = 4096;
	while (p < end) {
		uint8_t b = *p;
		const char *v;
		int vl, auth;
		if (b & 0x80) { /* indexed */
			long idx = hpack_int(&p, end, 7);
			if ((auth = idx_is_authority(&d, idx, &v, &vl)) < 0)
				return PEEK_NO_NAME;
			if (auth && vl) {
				if (found++ || !host_value(ret, (const uint8_t *)v, (size_t)vl))
					return PEEK_NO_NAME;
			}
			continue;
		}
		if ((b & 0xe0) == 0x20) { /* dynamic table size update */
			long sz = hpack_int(&p, end, 5);
			if (sz < 0 || sz > 4096)
				return PEEK_NO_NAME;
			d.max = (size_t)sz;
			while (d.n && d.size > d.max)
				d.size -= d.e[--d.n].size;
			continue;
		}
		bool incr = (b & 0xc0) == 0x40;
		long idx = hpack_int(&p, end, incr ? 6 : 4);
		int nl = 0;
		if (idx < 0)
			return PEEK_NO_NAME;
		if (idx == 0) {
			if ((nl = hpack_str(&p, end, name, sizeof(name))) < 0)
				return PEEK_NO_NAME;
			auth = (nl == 10 && memcmp(name, ":authority", 10) == 0) || (nl == 4 && memcmp(name, "host", 4) == 0);
		} else if ((auth = idx_is_authority(&d, idx, &v, &vl)) < 0) {
			return PEEK_NO_NAME;
		} else {
			nl = auth ? 10 : 8; /* only the size matters, for eviction; close enough */
		}
		if ((vl = hpack_str(&p, end, value, sizeof(value))) < 0)
			return PEEK_NO_NAME;
		if (auth) {
			if (found++ || !host_value(ret, (const uint8_t *)value, (size_t)vl))
				return PEEK_NO_NAME;
		}
		if (incr)
			dyn_add(&d, auth, (size_t)nl, value, vl);
	}
	return found == 1 ? PEEK_FOUND : PEEK_NO_NAME;
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static enum peek_result peek_http2(const uint8_t *buf, size_t len, struct peek *ret)
{
	uint8_t block[PEEK_MAX];
	size_t off = sizeof(h2_preface) - 1, n = 0;
	bool in_headers = false;

	ret->proto = PEEK_HTTP2;
	for (;;) {
		if (len - off < 9)
			return PEEK_MORE;
		size_t fl = be24(buf + off);
		uint8_t type = buf[off + 3], flags = buf[off + 4];
		if (fl > PEEK_MAX)
			return PEEK_NO_NAME;
		if (len - off - 9 < fl)
			return PEEK_MORE;
		const uint8_t *f = buf + off + 9, *fe = f + fl;
		off += 9 + fl;
		if (in_headers && type != 9)
			return PEEK_NO_NAME; /* CONTINUATION must follow */
		if (type == 1) { /* HEADERS */
			if (flags & 0x08) { /* PADDED */
				if (f >= fe || *f >= fe - f)
					return PEEK_NO_NAME;
				fe -= *f;
				f++;
			}
			if (flags & 0x20) { /* PRIORITY */
				if (fe - f < 5)
					return PEEK_NO_NAME;
				f += 5;
			}
		} else if (type != 9 || !in_headers) {
			continue; /* SETTINGS, WINDOW_UPDATE, PRIORITY, PING before the request */
		}
		if (n + (size_t)(fe - f) > sizeof(block))
			return PEEK_NO_NAME;
		memcpy(block + n, f, (size_t)(fe - f));
		n += (size_t)(fe - f);
		if (flags & 0x04) /* END_HEADERS */
			return hpack_block(block, block + n, ret);
		in_headers = true;
	}
}

enum peek_result peek_name(const uint8_t *buf, size_t len, struct peek *ret)
{
	size_t pl = sizeof(h2_preface) - 1;

	memset(ret, 0, sizeof(*ret));
	if (len > PEEK_MAX)
		len = PEEK_MAX;
	if (!len)
		return PEEK_MORE;
	if (buf[0] == 0x16)
		return peek_tls(buf, len, ret);
	if (memcmp(buf, h2_preface, len < pl ? len : pl) == 0) {
		if (len < pl)
			return PEEK_MORE;
		return peek_http2(buf, len, ret);
	}
	return peek_http1(buf, len, ret);
}
