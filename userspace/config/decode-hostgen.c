// SPDX-License-Identifier: MIT
/* HostnameGenerator: a template and what it selects. */
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_hostgen(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *sel;
	struct ms_config *c = L->c;
	struct ms_hostgen *h;
	char *err = NULL;

	if (!d_is_map(d, spec, "spec"))
		return;
	c->hostgens = xrealloc(c->hostgens, c->n_hostgens + 1, sizeof(*c->hostgens));
	h = &c->hostgens[c->n_hostgens++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(m->name);
	h->mesh = m->mesh ? xstrdup(m->mesh) : NULL;
	h->file = xstrdup(d->file);
	h->line = m->doc->line;
	h->col = m->doc->col;
	for (size_t i = 0; i + 1 < c->n_hostgens; i++)
		if (streq(c->hostgens[i].name, h->name))
			d_err(d, m->doc, "name", "duplicate HostnameGenerator \"%s\" (first defined at %s:%u)",
			      log_escape(h->name), c->hostgens[i].file, c->hostgens[i].line);
	d_known(d, spec, "spec", KEYS("selector", "template", "extension"));
	if (d_str(d, spec, "template", "spec", true, &h->tmpl) == 0 && h->tmpl &&
	    cfg_template_check(h->tmpl, &err) < 0) {
		d_err(d, ynode_get(spec, "template"), "spec.template", "%s", err);
		free(err);
	}
	sel = ynode_get(spec, "selector");
	if (!sel) {
		d_err(d, spec, "spec.selector", "required field is missing");
		return;
	}
	if (!d_is_map(d, sel, "spec.selector"))
		return;
	d_known(d, sel, "spec.selector", KEYS("meshExternalService", "meshService", "meshMultiZoneService"));
	for (int which = 0; which < 2; which++) {
		const char *key = which ? "meshService" : "meshExternalService";
		const struct ynode *s = ynode_get(sel, key);
		char p[DPATH_MAX];
		char **kv = NULL;
		size_t n = 0;

		if (!s)
			continue;
		d_join(p, "spec.selector", key);
		if (!d_is_map(d, s, p))
			continue;
		d_known(d, s, p, KEYS("matchLabels"));
		if (d_strmap(d, s, "matchLabels", p, &kv, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				cfg_labels_set(&h->match, kv[2 * i], kv[2 * i + 1]);
		}
		struct ms_labels t = { kv, n };
		cfg_labels_free(&t);
		if (which)
			h->for_ms = true;
		else
			h->for_mes = true;
	}
	if (!h->for_mes && !h->for_ms && !ynode_get(sel, "meshMultiZoneService"))
		d_err(d, sel, "spec.selector", "selects nothing (expected meshExternalService or meshService)");
}
