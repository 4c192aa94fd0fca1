// SPDX-License-Identifier: MIT
/* base64, hostname templates, labels and the persisted VIP table. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util.h"

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int cfg_base64_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len)
{
	unsigned char *out = xcalloc(len / 4 * 3 + 4, 1);
	unsigned quad[4];
	size_t o = 0, q = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			if (q < 2 || q + pad > 4)
				goto bad;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		v = b64_val(c);
		if (v < 0)
			goto bad;
		quad[q++] = (unsigned)v;
		if (q == 4) {
			out[o++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
			out[o++] = (unsigned char)(quad[1] << 4 | quad[2] >> 2);
			out[o++] = (unsigned char)(quad[2] << 6 | quad[3]);
			q = 0;
		}
	}
	if (q == 1 || (q && q + pad != 4))
		goto bad;
	if (q >= 2)
		out[o++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
	if (q == 3)
		out[o++] = (unsigned char)(quad[1] << 4 | quad[2] >> 2);
	*ret = out;
	*ret_len = o;
	return 0;
bad:
	free(out);
	return -EINVAL;
}

const char *cfg_label(const struct ms_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->kv[2 * i], key))
			return l->kv[2 * i + 1];
	return NULL;
}

/* Kuma's template subset: {{ .DisplayName }} {{ .Namespace }} {{ .Zone }}
 * {{ .Mesh }} {{ label "key" }}. svc == NULL only checks the syntax. */
static char *template_run(const char *tmpl, const struct ms_service *svc, const char *zone,
			  char **ret_err)
{
	size_t cap = strlen(tmpl) + 64, o = 0;
	_cleanup_free_ char *out = xcalloc(cap, 1);
	const char *p = tmpl;

	while (*p) {
		const char *val = NULL;
		char what[96];

		if (p[0] == '}' && p[1] == '}') {
			*ret_err = xstrdup("\"}}\" without a matching \"{{\"");
			return NULL;
		}
		if (p[0] != '{' || p[1] != '{') {
			if (o + 2 >= cap)
				out = xrealloc(out, cap *= 2, 1);
			out[o++] = *p++;
			continue;
		}
		const char *end = strstr(p + 2, "}}");
		if (!end) {
			*ret_err = xstrdup("\"{{\" without a matching \"}}\"");
			return NULL;
		}
		const char *a = p + 2, *b = end;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		size_t n = (size_t)(b - a);
		snprintf(what, sizeof(what), "%.*s", (int)MS_MIN(n, 80), a);
		if (streq(what, ".DisplayName")) {
			val = svc ? svc->display_name : "x";
		} else if (streq(what, ".Name")) {
			val = svc ? svc->name : "x";
		} else if (streq(what, ".Namespace")) {
			val = svc ? svc->ns : "x";
		} else if (streq(what, ".Zone")) {
			val = svc ? zone : "x";
		} else if (streq(what, ".Mesh")) {
			val = svc ? svc->mesh : "x";
		} else if (strncmp(what, "label", 5) == 0 && isspace((unsigned char)what[5])) {
			char *q = what + 5;
			while (isspace((unsigned char)*q))
				q++;
			size_t ql = strlen(q);
			if (ql < 3 || q[0] != '"' || q[ql - 1] != '"' || memchr(q + 1, '"', ql - 2)) {
				*ret_err = xasprintf("label needs one quoted key, as in {{ label \"app\" }}, got {{ %s }}",
						     what);
				return NULL;
			}
			q[ql - 1] = '\0';
			val = svc ? cfg_label(&svc->labels, q + 1) : "x";
			if (svc && !val) {
				*ret_err = xasprintf("service has no label \"%s\"", q + 1);
				return NULL;
			}
		} else {
			*ret_err = xasprintf("unknown template expression {{ %s }} (expected .DisplayName, .Namespace, .Zone, .Mesh or label \"key\")",
					     log_escape(what));
			return NULL;
		}
		if (!val || !*val) {
			*ret_err = xasprintf("{{ %s }} is empty for this service", what);
			return NULL;
		}
		size_t vl = strlen(val);
		while (o + vl + 2 >= cap)
			out = xrealloc(out, cap *= 2, 1);
		memcpy(out + o, val, vl);
		o += vl;
		p = end + 2;
	}
	out[o] = '\0';
	return TAKE_PTR(out);
}

char *cfg_template_render(const char *tmpl, const struct ms_service *svc, const char *zone,
			  char **ret_err)
{
	char *r = template_run(tmpl, svc, zone, ret_err);

	if (r && !dns_name_valid(r)) {
		*ret_err = xasprintf("\"%s\" is not a valid DNS name", log_escape(r));
		free(r);
		return NULL;
	}
	return r;
}

int cfg_template_check(const char *tmpl, char **ret_err)
{
	char *r = template_run(tmpl, NULL, NULL, ret_err);

	if (!r)
		return -EINVAL;
	free(r);
	return 0;
}

void cfg_vip_table_clear(struct ms_vip_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

char *cfg_vip_key(const struct ms_service *s)
{
	return xasprintf("%s/%s/%s", cfg_kind_name(s->kind), s->mesh, s->name);
}

void cfg_vip_table_from_config(const struct ms_config *c, struct ms_vip_table *ret)
{
	ret->v = xcalloc(c->n_svcs, sizeof(*ret->v));
	ret->n = 0;
	for (size_t i = 0; i < c->n_svcs; i++) {
		if (c->svcs[i].vip_explicit)
			continue;
		ret->v[ret->n].key = cfg_vip_key(&c->svcs[i]);
		ret->v[ret->n].vip = c->svcs[i].vip;
		ret->n++;
	}
}

/* One "key address" per line. Lines that do not parse are skipped: the file
 * is ours, and losing a line only means that VIP may be handed out anew. */
int cfg_vip_table_parse(const char *text, struct ms_vip_table *ret)
{
	const char *p = text;

	memset(ret, 0, sizeof(*ret));
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512], key[400], ip[64];
		struct ms_addr a;

		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			if (sscanf(line, "%399s %63s", key, ip) == 2 && addr_parse(ip, &a) == 0) {
				ret->v = xrealloc(ret->v, ret->n + 1, sizeof(*ret->v));
				ret->v[ret->n].key = xstrdup(key);
				ret->v[ret->n].vip = a;
				ret->n++;
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return 0;
}

char *cfg_vip_table_format(const struct ms_vip_table *t)
{
	size_t cap = 64 + t->n * 96, o = 0;
	char *out = xcalloc(cap, 1);

	for (size_t i = 0; i < t->n; i++) {
		char ip[MS_ADDR_STRLEN];
		size_t need = strlen(t->v[i].key) + MS_ADDR_STRLEN + 4;

		while (o + need >= cap)
			out = xrealloc(out, cap *= 2, 1);
		o += (size_t)snprintf(out + o, cap - o, "%s %s\n", t->v[i].key,
				      addr_fmt(&t->v[i].vip, ip, sizeof(ip)));
	}
	return out;
}
