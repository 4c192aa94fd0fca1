// SPDX-License-Identifier: MIT
/* Kuma's shared checks (pkg/core/resources/apis/mesh/validators.go and the
 * helpers its validators call: Go's net and url parsers, govalidator) on the
 * YAML as written, for the fields Kuma validates whether or not meshsplice
 * acts on them. Each problem names the field Kuma names. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "util.h"

const char *r_text(struct dctx *d, const struct ynode *map, const char *key, const char *path,
		   bool *bad)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	char *s = NULL;

	if (!n || ynode_is_null(n))
		return "";
	if (d_scalar_str(d, n, d_join(p, path, key), &s) < 0) {
		if (bad)
			*bad = true;
		return NULL;
	}
	free(s);
	return n->str;
}

const char *r_peek(const struct ynode *map, const char *key)
{
	const struct ynode *n = ynode_get(map, key);
	bool b;

	if (!n || ynode_is_null(n))
		return "";
	if (n->type != YNODE_SCALAR || strlen(n->str) != n->len || ynode_bool(n, &b) || ynode_number(n))
		return NULL;
	return n->str;
}

int r_peek_uint(const struct ynode *map, const char *key, unsigned long *ret)
{
	struct cfg_errors quiet = { 0 };
	struct dctx q = { .file = "", .errs = &quiet };
	int r = r_uint(&q, map, key, "", ret);

	cfg_errors_clear(&quiet);
	return r;
}

int r_uint(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   unsigned long *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	unsigned long v;
	char *end;

	*ret = 0;
	if (!n || ynode_is_null(n))
		return 0;
	/* protobuf's JSON takes a number or a string holding one */
	if (n->type == YNODE_SCALAR && n->len && n->len <= 10 && isdigit((unsigned char)n->str[0])) {
		errno = 0;
		v = strtoul(n->str, &end, 10);
		if (!errno && !*end && v <= 0xffffffffUL) {
			*ret = v;
			return 0;
		}
	}
	d_err(d, n, d_join(p, path, key), "expected a number from 0 to 4294967295");
	return -EINVAL;
}

bool r_port_ok(unsigned long port)
{
	return port >= 1 && port <= 65535;
}

void r_port(struct dctx *d, const struct ynode *map, const char *key, const char *path)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	unsigned long v;

	if (r_uint(d, map, key, path, &v) < 0)
		return;
	if (!r_port_ok(v))
		d_err(d, n ? n : map, d_join(p, path, key), "port must be in the range [1, 65535]");
}

bool r_is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool r_is_unspecified(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return a4.s_addr == 0;
	return inet_pton(AF_INET6, s, &a6) == 1 && IN6_IS_ADDR_UNSPECIFIED(&a6);
}

/* govalidator.IsDNSName: labels of [A-Za-z0-9_][A-Za-z0-9_-]{0,62} joined by
 * dots, an optional final dot or underscore, at most 255 without the dots,
 * and not an IP address. */
bool r_is_dns_name(const char *s)
{
	size_t len = strlen(s), label = 0, chars = 0;

	if (!len || r_is_ip(s))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool last = i == len - 1;

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		chars++;
		if (c == '_' && last && label > 0)
			break;
		if (!isalnum(c) && c != '_' && (c != '-' || label == 0))
			return false;
		if (++label > 63)
			return false;
	}
	return chars <= 255;
}

int r_split_host_port(const char *s, char *host, size_t hlen, const char **port)
{
	const char *colon, *close;
	size_t n;

	if (s[0] == '[') {
		close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		colon = close + 1;
		if (n >= hlen)
			return -EINVAL;
		memcpy(host, s + 1, n);
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (memchr(s, ':', n) || n >= hlen)
			return -EINVAL; /* too many colons */
		memcpy(host, s, n);
	}
	host[n] = '\0';
	*port = colon + 1;
	return strpbrk(*port, "[]") ? -EINVAL : 0;
}

/* Go's url.ParseRequestURI: an absolute path, or an absolute URL (a scheme
 * then ":"); *port gets the URL's explicit port ("" when none). */
bool r_request_uri(const char *s, char *port, size_t plen)
{
	const char *p = s, *host, *end, *colon;

	port[0] = '\0';
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == ' ')
			return false;
	if (s[0] == '/')
		return true;
	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':')
		return false;
	if (strncmp(p + 1, "//", 2) != 0)
		return p[1] == '/'; /* scheme:/path; scheme:opaque is not a request URI */
	host = p + 3;
	end = host + strcspn(host, "/?#");
	if (memchr(host, '@', (size_t)(end - host)))
		host = (const char *)memchr(host, '@', (size_t)(end - host)) + 1;
	if (host < end && *host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (!close)
			return false;
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
	}
	if (colon) {
		size_t n = (size_t)(end - colon - 1);
		for (size_t i = 0; i < n; i++)
			if (!isdigit((unsigned char)colon[1 + i]))
				return false; /* invalid port */
		if (n >= plen)
			return false;
		memcpy(port, colon + 1, n);
		port[n] = '\0';
	}
	return true;
}

/* protobuf's JSON Duration: "-?[0-9]+(.[0-9]{1,9})?s". */
int r_pb_duration(const char *s, bool *positive)
{
	const char *p = s;
	bool nonzero = false, neg = false;

	if (*p == '-')
		neg = true, p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		nonzero |= *p != '0';
	if (*p == '.') {
		size_t n = 0;
		for (p++; isdigit((unsigned char)*p); p++, n++)
			nonzero |= *p != '0';
		if (n == 0 || n > 9)
			return -EINVAL;
	}
	if (strcmp(p, "s") != 0)
		return -EINVAL;
	*positive = nonzero && !neg;
	return 0;
}

static bool charset(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

static const char *const kuma_protocols[] = { "http", "http2", "tcp", "tls", "grpc", "kafka", "mysql" };

bool r_protocol_known(const char *v)
{
	char low[16];
	size_t n = strlen(v);

	if (n >= sizeof(low))
		return false;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)v[i]);
	for (size_t i = 0; i < ARRAY_SIZE(kuma_protocols); i++)
		if (streq(low, kuma_protocols[i]))
			return true;
	return false;
}

int r_tags(struct dctx *d, const struct ynode *owner, const char *key, const char *path,
	   unsigned flags)
{
	const struct ynode *t = ynode_get(owner, key), *at;
	char p[DPATH_MAX], q[DPATH_MAX];
	size_t before = cfg_errors_count(d->errs);
	bool service = false;
	size_t n = 0;

	d_join(p, path, key);
	if (t && !ynode_is_null(t) && !d_is_map(d, t, p))
		return 1;
	at = t ? t : owner;
	for (size_t i = 0; t && i + 1 < t->n; i += 2) {
		const struct ynode *k = t->v[i], *v = t->v[i + 1];
		char *vs = NULL;
		const char *val = "";

		n++;
		if (k->type != YNODE_SCALAR) {
			d_err(d, k, p, "a tag name must be a string");
			continue;
		}
		d_join(q, p, log_escape(k->str));
		if (!ynode_is_null(v)) {
			if (d_scalar_str(d, v, q, &vs) < 0)
				continue;
			val = v->str;
			free(vs);
		}
		if (!k->len)
			d_err(d, k, q, "tag name must be non-empty");
		if (!charset(k->str, ".-_:/"))
			d_err(d, k, q, "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores");
		if (!*val)
			d_err(d, v, q, "tag value must be non-empty");
		else if ((flags & R_TAGS_SELECTOR) && !streq(val, "*") && !charset(val, ".-_:/"))
			d_err(d, v, q, "tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be \"*\"");
		else if (!(flags & R_TAGS_SELECTOR) && !charset(val, ".-_:"))
			d_err(d, v, q, "tag value must consist of alphanumeric characters, dots, dashes and underscores");
		if (streq(k->str, "kuma.io/service"))
			service = true;
		if (streq(k->str, "kuma.io/protocol") && *val) {
			if ((flags & R_TAGS_PROTOCOL) && !r_protocol_known(val))
				d_err(d, v, q, "tag \"kuma.io/protocol\" has an invalid value \"%s\". Allowed values: grpc, http, http2, kafka, tcp",
				      log_escape(val));
			if ((flags & R_TAGS_TCP_ONLY) && !streq(val, "tcp") && !streq(val, "TCP"))
				d_err(d, v, q, "other values than tcp are not allowed, provided value \"%s\"", log_escape(val));
		}
	}
	if ((flags & R_TAGS_ONE) && n == 0)
		d_err(d, at, p, "must have at least one tag");
	if ((flags & R_TAGS_SERVICE) && !service)
		d_err(d, at, p, "mandatory tag \"kuma.io/service\" is missing");
	return (int)(cfg_errors_count(d->errs) - before);
}

/* A backend (logging, tracing, metrics) whose type is none of those Kuma
 * knows: said at its type, or at the backend when it has none. path is the
 * backend's; known lists the types, quoted, as Kuma's message does. */
void r_unknown_backend(struct dctx *d, const struct ynode *be, const char *path, const char *known)
{
	const struct ynode *t = ynode_get(be, "type");
	char p[DPATH_MAX];

	d_err(d, t ? t : be, d_join(p, path, "type"), "unknown backend type. Available backends: %s", known);
}

/* PrometheusMetricsBackendConfig (a Mesh's metrics backend, a Dataplane's
 * metrics): path is the conf field's. */
void r_prometheus_conf(struct dctx *d, const struct ynode *conf, const char *path)
{
	const struct ynode *skip, *tls, *agg;
	char p[DPATH_MAX], q[DPATH_MAX];

	if (!conf || ynode_is_null(conf))
		return;
	if (!d_is_map(d, conf, path))
		return;
	skip = ynode_get(conf, "skipMTLS");
	tls = ynode_get(conf, "tls");
	if (skip && !ynode_is_null(skip) && tls && !ynode_is_null(tls)) {
		bool sk = false;
		const char *mode = "activeMTLSBackend";
		if (d_bool(d, conf, "skipMTLS", path, &sk) < 0 || !d_is_map(d, tls, d_join(p, path, "tls")))
			return;
		if (ynode_get(tls, "mode") && !(mode = r_text(d, tls, "mode", p, NULL)))
			return;
		if (!*mode)
			mode = "activeMTLSBackend";
		if (!((!sk && streq(mode, "activeMTLSBackend")) || (sk && streq(mode, "disabled")))) {
			d_err(d, conf, path, "skipMTLS and tls configuration cannot be defined together");
			return;
		}
	}
	agg = ynode_get(conf, "aggregate");
	d_join(p, path, "aggregate");
	if (!agg || ynode_is_null(agg) || !d_is_seq(d, agg, p))
		return;
	for (size_t i = 0; i < agg->n; i++) {
		const struct ynode *e = agg->v[i];
		const char *name;
		bool dup = false;

		d_index(q, p, i);
		if (!d_is_map(d, e, q) || !(name = r_text(d, e, "name", q, NULL)))
			continue;
		for (size_t j = 0; j < i && !dup; j++) {
			const struct ynode *o = agg->v[j];
			const struct ynode *on = o->type == YNODE_MAP ? ynode_get(o, "name") : NULL;
			const char *os = !on || ynode_is_null(on) ? "" : on->type == YNODE_SCALAR ? on->str : NULL;
			dup = os && streq(os, name);
		}
		if (dup) {
			char r[DPATH_MAX];
			const struct ynode *nn = ynode_get(e, "name");
			d_err(d, nn ? nn : e, d_join(r, q, "name"),
			      "duplicate entry: %s, values have to be unique", log_escape(name));
		}
	}
}
