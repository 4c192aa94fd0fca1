// SPDX-License-Identifier: MIT
/* Secret: what secret: references resolve to. */
#include <stdio.h>
#include <string.h>

#include "loader.h"
#include "util.h"

void decode_secret(struct loader *L, struct dctx *d, struct meta *m)
{
	const struct ynode *data = ynode_get(m->doc, "data");
	const struct ynode *v = data;
	struct secret *s;
	char path[DPATH_MAX] = "data";

	if (m->k8s) {
		d_known(d, m->doc, "", KEYS("apiVersion", "kind", "metadata", "data", "type", "mesh"));
		if (data && d_is_map(d, data, "data")) {
			d_known(d, data, "data", KEYS("value"));
			v = ynode_get(data, "value");
			snprintf(path, sizeof(path), "data.value");
			if (!v)
				d_err(d, data, path, "required field is missing");
		} else {
			v = NULL;
			if (!data) /* Kuma names the value it misses */
				d_err(d, m->doc, "data.value", "required field is missing");
		}
	} else if (!data) {
		d_err(d, m->doc, "data", "required field is missing");
	}
	/* Kuma's webhook: a global secret has no mesh */
	if (m->k8s) {
		const struct ynode *ty = ynode_get(m->doc, "type");
		const struct ynode *ml = ynode_get(ynode_get(ynode_get(m->doc, "metadata"), "labels"), "kuma.io/mesh");
		if (ty && ty->type == YNODE_SCALAR && streq(ty->str, "system.kuma.io/global-secret") && ml)
			d_err(d, ml, "metadata.labels.kuma.io/mesh", "mesh cannot be set on global secret");
	}
	if (!v)
		return;
	if (m->k8s && v->type == YNODE_SCALAR && (ynode_is_null(v) || !v->len)) {
		d_err(d, v, path, "cannot be empty."); /* Kuma's words */
		return;
	}
	for (size_t i = 0; i < L->n_secrets; i++)
		if (streq(L->secrets[i].name, m->name) && streq(L->secrets[i].mesh, m->mesh)) {
			d_err(d, m->doc, "name", "duplicate Secret \"%s\" in mesh \"%s\"",
			      log_escape(m->name), log_escape(m->mesh));
			return;
		}
	_cleanup_free_ char *b64 = NULL;
	if (d_scalar_str(d, v, path, &b64) < 0)
		return;
	L->secrets = xrealloc(L->secrets, L->n_secrets + 1, sizeof(*L->secrets));
	s = &L->secrets[L->n_secrets];
	memset(s, 0, sizeof(*s));
	if (cfg_base64_decode(b64, strlen(b64), &s->data, &s->len) < 0) {
		d_err(d, v, path, "not valid base64");
		return;
	}
	s->name = xstrdup(m->name);
	s->mesh = xstrdup(m->mesh);
	s->file = xstrdup(d->file);
	s->line = m->doc->line;
	s->col = m->doc->col;
	L->n_secrets++;
}
