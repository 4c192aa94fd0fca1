// SPDX-License-Identifier: MIT
/* HostnameGenerator: a template and what it selects. */
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_hostgen(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *spec = m->body, *sel, *ext;
	struct ms_config *c = L->c;
	struct ms_hostgen *h;
	char *err = NULL;

	if (!d_is_map(d, spec, "spec"))
		return;
	c->hostgens = xrealloc(c->hostgens, c->n_hostgens + 1, sizeof(*c->hostgens));
	h = &c->hostgens[c->n_hostgens++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(m->name);
	/* Kuma scopes a HostnameGenerator globally: unless it names a mesh, it
	 * names every mesh's services (m->mesh is "default" when none is given) */
	bool named = ynode_get(m->doc, "mesh") || (m->k8s && cfg_label(&m->labels, "kuma.io/mesh"));
	h->mesh = named ? xstrdup(m->mesh) : NULL;
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
	if (h->tmpl && !*h->tmpl)
		d_err(d, ynode_get(spec, "template"), "spec.template", "must not be empty");
	ext = ynode_get(spec, "extension");
	if (ext && !ynode_is_null(ext) && d_is_map(d, ext, "spec.extension")) {
		char *ty = NULL;
		if (d_str(d, ext, "type", "spec.extension", false, &ty) == 0 && (!ty || !*ty))
			d_err(d, ynode_get(ext, "type") ? ynode_get(ext, "type") : ext, "spec.extension.type",
			      "must not be empty");
		free(ty);
	}
	sel = ynode_get(spec, "selector");
	if (!sel) {
		d_err(d, spec, "spec.selector", "required field is missing");
		return;
	}
	if (!d_is_map(d, sel, "spec.selector"))
		return;
	d_known(d, sel, "spec.selector", KEYS("meshExternalService", "meshService", "meshMultiZoneService"));
	int set = 0;
	for (const char *const *k = KEYS("meshExternalService", "meshService", "meshMultiZoneService"); *k; k++)
		set += ynode_get(sel, *k) && !ynode_is_null(ynode_get(sel, *k));
	if (set != 1) {
		d_err(d, sel, "spec.selector",
		      "exact one selector (meshService, meshExternalService or meshMultiZoneService) must be defined, %d given",
		      set);
		return;
	}
	for (int which = 0; which < 2; which++) {
		const char *key = which ? "meshService" : "meshExternalService";
		const struct ynode *s = ynode_get(sel, key);
		char p[DPATH_MAX];
		char **kv = NULL;
		size_t n = 0;

		if (!s || ynode_is_null(s))
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
}
