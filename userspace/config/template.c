// SPDX-License-Identifier: MIT
/* Hostname templates (Kuma's subset) and the hostnames they give each service. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "util.h"

/* Kuma's template subset: {{ .DisplayName }} {{ .Namespace }} {{ .Zone }}
 * {{ .Mesh }} {{ label "key" }}. svc == NULL renders Kuma's stub values
 * (name, displayname, ... and "label"). */
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
			val = svc ? svc->display_name : "displayname";
		} else if (streq(what, ".Name")) {
			val = svc ? svc->name : "name";
		} else if (streq(what, ".Namespace")) {
			val = svc ? svc->ns : "namespace";
		} else if (streq(what, ".Zone")) {
			val = svc ? zone : "zone";
		} else if (streq(what, ".Mesh")) {
			val = svc ? svc->mesh : "mesh";
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
			val = svc ? cfg_label(&svc->labels, q + 1) : "label";
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
	_cleanup_free_ char *r = template_run(tmpl, NULL, NULL, ret_err);
	const char *why;

	if (!r)
		return -EINVAL;
	/* Kuma renders it with its stub values and wants a DNS-1123 subdomain */
	if ((why = cfg_name_check(r))) {
		*ret_err = xasprintf("template renders to \"%s\" which is not a valid DNS name: %s", log_escape(r), why);
		return -EINVAL;
	}
	return 0;
}

void hostnames_generate(struct loader *L)
{
	struct ms_config *c = L->c;

	for (size_t i = 0; i < c->n_svcs; i++) {
		struct ms_service *s = &c->svcs[i];
		for (size_t g = 0; g < c->n_hostgens; g++) {
			const struct ms_hostgen *h = &c->hostgens[g];
			char *err = NULL, *name;
			bool kind_ok = (s->kind == MS_KIND_MESH_EXTERNAL_SERVICE && h->for_mes) ||
				       (s->kind == MS_KIND_MESH_SERVICE && h->for_ms);

			if (!kind_ok || !h->tmpl || (h->mesh && !streq(h->mesh, s->mesh)))
				continue;
			if (!cfg_labels_match(&h->match, &s->labels))
				continue;
			name = cfg_template_render(h->tmpl, s, L->o->zone, &err);
			if (!name) {
				/* Kuma leaves such a service without this hostname; so do we. */
				free(err);
				continue;
			}
			bool dup = false;
			for (size_t k = 0; k < s->n_hostnames; k++)
				dup |= streq(s->hostnames[k], name);
			if (dup) {
				free(name);
				continue;
			}
			s->hostnames = xrealloc(s->hostnames, s->n_hostnames + 1, sizeof(char *));
			s->hostnames[s->n_hostnames++] = name;
		}
		/* Legacy ExternalService: Kuma's "<kuma.io/service>.mesh" name. */
		if (s->kind == MS_KIND_EXTERNAL_SERVICE) {
			const char *svc = cfg_label(&s->labels, "kuma.io/service");
			if (svc) {
				char *name = xasprintf("%s.mesh", svc);
				if (dns_name_valid(name)) {
					s->hostnames = xrealloc(s->hostnames, s->n_hostnames + 1, sizeof(char *));
					s->hostnames[s->n_hostnames++] = name;
				} else {
					free(name);
				}
			}
		}
	}
}
