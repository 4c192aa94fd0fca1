// SPDX-License-Identifier: MIT
/* Config snapshots: load and validate, then swap in whole, with what the
 * agent keeps beside each snapshot (TLS contexts, round-robin cursors, the
 * VIP table that keeps VIPs where they were across restarts). A snapshot
 * that does not validate never replaces the one in force. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-t.h"
#include "log.h"
#include "notify.h"
#include "util.h"

void vips_load(struct agent *a)
{
	_cleanup_free_ char *vp = state_path(a, "vips");
	char *text;
	size_t len;

	if (read_file(vp, 64u << 20, &text, &len) == 0) {
		cfg_vip_table_parse(text, &a->vips);
		free(text);
	}
}

static void vips_save(struct agent *a)
{
	_cleanup_free_ char *path = state_path(a, "vips");
	_cleanup_free_ char *text = NULL;
	int r;

	cfg_vip_table_clear(&a->vips);
	cfg_vip_table_from_config(a->cfg, &a->vips);
	text = cfg_vip_table_format(&a->vips);
	if ((r = write_file_atomic(path, text, strlen(text), 0600)) < 0)
		log_warn_errno(r, "save VIPs to %s: %m (VIPs may move on restart)", path);
}

int reload_load(struct agent *a, struct ms_config **ret)
{
	struct cfg_errors errs = { 0 };
	struct cfg_opts co = a->o->cfg;
	int r;

	co.prev = &a->vips;
	if (a->o->config_dir) {
		const char *p = a->o->config_dir;
		r = cfg_load_paths(&p, 1, &co, &errs, ret);
	} else {
		r = cfg_load_buffer(cfg_embedded_default, strlen(cfg_embedded_default), "<embedded default>",
				    &co, &errs, ret);
	}
	char buf[1024];
	/* warnings (what Kuma accepts and meshsplice ignores) are said, not refused */
	for (size_t i = 0; i < errs.n; i++) {
		if (r == 0 || errs.v[i].warning)
			log_warn("config: %s", cfg_err_fmt(&errs.v[i], buf, sizeof(buf)));
		else
			log_error("config: %s", cfg_err_fmt(&errs.v[i], buf, sizeof(buf)));
	}
	if (r < 0) {
		free(a->last_reload_error);
		a->last_reload_error = errs.n ? xstrdup(cfg_err_fmt(&errs.v[0], buf, sizeof(buf))) : xstrdup("unreadable");
	}
	cfg_errors_clear(&errs);
	return r;
}

static void tls_clear(struct route_tls *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].key);
		free(v[i].err);
		tls_ctx_unref(v[i].ctx);
	}
	free(v);
}

static char *svc_key(const struct ms_service *s)
{
	return xasprintf("%s/%s/%s", cfg_kind_name(s->kind), s->mesh, s->name);
}

/* One entry per service of c (key NULL for a service without TLS).
 * Contexts whose settings did not change are kept (and their sessions);
 * changed ones are built anew, so no session crosses a settings change. */
static struct route_tls *tls_build(const struct ms_config *c, const struct ms_config *old,
				   const struct route_tls *was_v)
{
	struct route_tls *v = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*v));

	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ms_service *s = &c->svcs[i], *o;
		uint8_t digest[32];
		if (!s->tls.enabled)
			continue;
		v[i].key = svc_key(s);
		tls_settings_digest(&s->tls, s->ports[0].proto, digest);
		if (old && was_v && (o = cfg_find_service(old, s->kind, s->mesh, s->name))) {
			const struct route_tls *was = &was_v[o - old->svcs];
			if (was->ctx && memcmp(was->ctx->digest, digest, 32) == 0)
				v[i].ctx = tls_ctx_ref(was->ctx);
		}
		if (!v[i].ctx && tls_ctx_new(&s->tls, s->ports[0].proto, &v[i].ctx, &v[i].err) < 0)
			log_error("%s: TLS origination unavailable: %s; its connections are refused", v[i].key,
				  v[i].err);
	}
	return v;
}

/* Swap c in: everything built beside it first, then one pointer. */
void reload_apply(struct agent *a, struct ms_config *c)
{
	struct ms_config *old = a->cfg;
	struct route_tls *tls = tls_build(c, old, a->tls);
	struct route_lb lb;

	route_lb_build(&lb, c, old ? &a->lb : NULL, old);
	tls_clear(a->tls, old ? old->n_svcs : 0);
	route_lb_clear(&a->lb);
	a->cfg = c;
	a->tls = tls;
	a->lb = lb;
	a->steer->ops->svcs_sync(a->steer, c);
	pods_refresh(a);
	vips_save(a);
	cfg_unref(old);
}

void reload(struct agent *a, const char *why)
{
	struct ms_config *c = NULL;
	uint64_t t0 = now_ms();

	/* RELOADING=1, then READY=1 whatever the outcome; not while draining
	 * (STOPPING=1 was said) */
	if (!a->draining)
		(void)notify_reloading();
	if (reload_load(a, &c) < 0) {
		a->st.reloads_failed++;
		log_error("config reload (%s) failed; the last good config stays in force", why);
		if (!a->draining)
			(void)notify_ready();
		return;
	}
	reload_apply(a, c);
	a->st.reloads_ok++;
	free(a->last_reload_error);
	a->last_reload_error = NULL;
	log_info("config reloaded (%s): %zu files, %zu meshes, %zu services in %llu ms", why, c->n_files,
		 c->n_meshes, c->n_svcs, (unsigned long long)(now_ms() - t0));
	if (!a->draining)
		(void)notify_ready();
}

void reload_fini(struct agent *a)
{
	tls_clear(a->tls, a->cfg ? a->cfg->n_svcs : 0);
	a->tls = NULL;
	route_lb_clear(&a->lb);
	cfg_unref(a->cfg);
	a->cfg = NULL;
	cfg_vip_table_clear(&a->vips);
	free(a->last_reload_error);
	a->last_reload_error = NULL;
}
