// SPDX-License-Identifier: MIT
#include "decode.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void d_err(struct dctx *d, const struct ynode *at, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_errors_add(d->errs, d->file, at ? at->line : 0, at ? at->col : 0, path, "%s", msg);
}

void d_warn(struct dctx *d, const struct ynode *at, const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_warn_add(d->errs, d->file, at ? at->line : 0, at ? at->col : 0, path, "%s", msg);
}

const char *d_join(char *buf, const char *path, const char *key)
{
	if (path && *path)
		snprintf(buf, DPATH_MAX, "%s.%s", path, key);
	else
		snprintf(buf, DPATH_MAX, "%s", key);
	return buf;
}

const char *d_index(char *buf, const char *path, size_t i)
{
	snprintf(buf, DPATH_MAX, "%s[%zu]", path, i);
	return buf;
}

bool d_is_map(struct dctx *d, const struct ynode *n, const char *path)
{
	if (n && n->type == YNODE_MAP)
		return true;
	d_err(d, n, path, "expected a mapping, got %s", ynode_type_name(n));
	return false;
}

bool d_is_seq(struct dctx *d, const struct ynode *n, const char *path)
{
	if (n && n->type == YNODE_SEQ)
		return true;
	d_err(d, n, path, "expected a list, got %s", ynode_type_name(n));
	return false;
}

void d_known(struct dctx *d, const struct ynode *map, const char *path,
	     const char *const *allowed)
{
	char p[DPATH_MAX];

	if (!map || map->type != YNODE_MAP)
		return;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->v[i];
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			if (streq(k->str, *a))
				ok = true;
		if (!ok)
			d_warn(d, k, d_join(p, path, log_escape(k->str)), "unknown field (Kuma ignores it)");
	}
}

/* A value (not a key) that YAML 1.1 reads as a boolean or a number is not
 * a string to Kuma: sigs.k8s.io/yaml turns it into JSON true/false before the resource
 * is decoded (Universal) or sent (kubectl), and a string field refuses it.
 * A key becomes "true"/"false" there; we keep the key as written. */
static int scalar_str(struct dctx *d, const struct ynode *n, const char *path, bool key, char **ret)
{
	bool b;

	if (!n || n->type != YNODE_SCALAR || ynode_is_null(n)) {
		d_err(d, n, path, "expected a string, got %s", ynode_type_name(n));
		return -EINVAL;
	}
	if (strlen(n->str) != n->len) {
		d_err(d, n, path, "string contains a NUL byte");
		return -EINVAL;
	}
	if (!key && ynode_bool(n, &b)) {
		d_err(d, n, path, "expected a string, got the boolean %s (YAML 1.1 reads \"%s\" so; quote it)",
		      b ? "true" : "false", log_escape(n->str));
		return -EINVAL;
	}
	if (!key && ynode_number(n)) {
		d_err(d, n, path, "expected a string, got the number %s (quote it)", log_escape(n->str));
		return -EINVAL;
	}
	*ret = xstrdup(n->str);
	return 0;
}

int d_scalar_str(struct dctx *d, const struct ynode *n, const char *path, char **ret)
{
	return scalar_str(d, n, path, false, ret);
}

int d_str(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	  bool required, char **ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	char *s;

	d_join(p, path, key);
	if (!n) {
		if (required) {
			d_err(d, map, p, "required field is missing");
			return -EINVAL;
		}
		return 0;
	}
	if (d_scalar_str(d, n, p, &s) < 0)
		return -EINVAL;
	free(*ret);
	*ret = s;
	return 0;
}

int d_bool(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   bool *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];

	if (!n)
		return 0;
	if (ynode_bool(n, ret))
		return 0;
	d_err(d, n, d_join(p, path, key), "expected true or false, got %s%s%s%s",
	      n->type == YNODE_SCALAR ? "\"" : "",
	      n->type == YNODE_SCALAR ? log_escape(n->str) : ynode_type_name(n),
	      n->type == YNODE_SCALAR ? "\"" : "",
	      n->type == YNODE_SCALAR && !n->plain ? " (a quoted string)" : "");
	return -EINVAL;
}

int d_parse_port(const struct ynode *n, uint16_t *ret)
{
	unsigned long v;
	char *end;

	if (!n || n->type != YNODE_SCALAR || !n->plain || n->len == 0 || n->len > 5)
		return -EINVAL;
	for (size_t i = 0; i < n->len; i++)
		if (!isdigit((unsigned char)n->str[i]))
			return -EINVAL;
	v = strtoul(n->str, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -ERANGE;
	*ret = (uint16_t)v;
	return 0;
}

int d_port(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   bool required, uint16_t *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	int r;

	d_join(p, path, key);
	if (!n) {
		if (required) {
			d_err(d, map, p, "required field is missing");
			return -EINVAL;
		}
		return 0;
	}
	r = d_parse_port(n, ret);
	if (r == -ERANGE)
		d_err(d, n, p, "port %s out of range (1-65535)", log_escape(n->str));
	else if (r < 0)
		d_err(d, n, p, "expected a port number, got %s%s%s",
		      n->type == YNODE_SCALAR ? "\"" : "",
		      n->type == YNODE_SCALAR ? log_escape(n->str) : ynode_type_name(n),
		      n->type == YNODE_SCALAR ? "\"" : "");
	return r < 0 ? -EINVAL : 0;
}

int d_strmap(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	     char ***ret_kv, size_t *ret_n)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX], q[DPATH_MAX];
	char **kv;
	size_t cnt = 0;
	int r = 0;

	if (!n || ynode_is_null(n))
		return 0;
	d_join(p, path, key);
	if (!d_is_map(d, n, p))
		return -EINVAL;
	kv = xcalloc(n->n + 1, sizeof(char *));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		char *k = NULL, *v = NULL;

		if (scalar_str(d, n->v[i], p, true, &k) < 0 ||
		    d_scalar_str(d, n->v[i + 1], d_join(q, p, log_escape(n->v[i]->str)), &v) < 0) {
			free(k);
			free(v);
			r = -EINVAL;
			continue;
		}
		kv[cnt * 2] = k;
		kv[cnt * 2 + 1] = v;
		cnt++;
	}
	if (r < 0) {
		/* nothing half-built leaves here (fuzzing found callers leaking it) */
		for (size_t i = 0; i < 2 * cnt; i++)
			free(kv[i]);
		free(kv);
		return r;
	}
	*ret_kv = kv;
	*ret_n = cnt;
	return 0;
}

int d_pick(struct dctx *d, const struct ynode *map, const char *key, const char *path,
		const char *const *names, size_t n_names, int *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX], list[256] = "";

	if (!n)
		return 0;
	d_join(p, path, key);
	if (n->type == YNODE_SCALAR)
		for (size_t i = 0; i < n_names; i++)
			if (streq(n->str, names[i])) {
				*ret = (int)i;
				return 0;
			}
	for (size_t i = 0; i < n_names; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	d_err(d, n, p, "unknown value %s%s%s (expected one of %s)",
	      n->type == YNODE_SCALAR ? "\"" : "",
	      n->type == YNODE_SCALAR ? log_escape(n->str) : ynode_type_name(n),
	      n->type == YNODE_SCALAR ? "\"" : "", list);
	return -EINVAL;
}

int d_uint(struct dctx *d, const struct ynode *map, const char *key, const char *path,
	   unsigned long min, unsigned long max, unsigned long *ret)
{
	const struct ynode *n = ynode_get(map, key);
	char p[DPATH_MAX];
	unsigned long v;
	char *end;

	if (!n)
		return 0;
	d_join(p, path, key);
	if (n->type != YNODE_SCALAR || !n->plain || !n->len || n->str[0] < '0' || n->str[0] > '9') {
		d_err(d, n, p, "expected a number from %lu to %lu", min, max);
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(n->str, &end, 10);
	if (errno || *end || v < min || v > max) {
		d_err(d, n, p, "%s is out of range (%lu-%lu)", log_escape(n->str), min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}
