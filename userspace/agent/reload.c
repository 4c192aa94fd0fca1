// SPDX-License-Identifier: MIT
/* Config snapshots: load and validate, then swap in whole, with what the
 * agent keeps beside each snapshot (TLS contexts, round-robin cursors, the
 * VIP table that keeps VIPs where they were across restarts). A snapshot
 * that does not validate never replaces the one in force. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

/* Read and validate the config: no agent state is touched but a read of the
 * VIP table (written only by reload_apply, never while a load runs), so it
 * runs on the reload thread as well as at start-up. */
static int load(const struct agent_opts *o, const struct ms_vip_table *vips, struct cfg_errors *errs,
		struct ms_config **ret)
{
	struct cfg_opts co = o->cfg;

	co.prev = vips;
	if (o->config_dir) {
		const char *p = o->config_dir;
		return cfg_load_paths(&p, 1, &co, errs, ret);
	}
	return cfg_load_buffer(cfg_embedded_default, strlen(cfg_embedded_default), "<embedded default>", &co, errs,
			       ret);
}

/* On the loop: say what the load found. */
static void load_report(struct agent *a, int r, struct cfg_errors *errs)
{
	char buf[1024];

	/* warnings (what Kuma accepts and meshsplice ignores) are said, not refused */
	for (size_t i = 0; i < errs->n; i++) {
		if (r == 0 || errs->v[i].warning)
			log_warn("config: %s", cfg_err_fmt(&errs->v[i], buf, sizeof(buf)));
		else
			log_error("config: %s", cfg_err_fmt(&errs->v[i], buf, sizeof(buf)));
	}
	if (r < 0) {
		free(a->last_reload_error);
		a->last_reload_error = errs->n ? xstrdup(cfg_err_fmt(&errs->v[0], buf, sizeof(buf))) : xstrdup("unreadable");
	}
	cfg_errors_clear(errs);
}

int reload_load(struct agent *a, struct ms_config **ret)
{
	struct cfg_errors errs = { 0 };
	int r = load(a->o, &a->vips, &errs, ret);

	load_report(a, r, &errs);
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
	health_agent_config(a);
	a->steer->ops->svcs_sync(a->steer, c);
	pods_refresh(a);
	vips_save(a);
	cfg_unref(old);
}

/* ---------- reloads off the event loop ----------
 *
 * A reload reads and validates the config on a thread of its own, so the
 * forwarder, DNS and the control socket never wait for the files (many, or
 * large, or on a slow disk); the loop only swaps the finished snapshot in
 * (reload_apply). One load at a time: a reload asked for while one runs is
 * done once more after it, for everyone who asked meanwhile (the running
 * one may have read the files before their change). */
struct reload_job {
	struct agent *a;
	pthread_t thread;
	int efd;
	struct ev ev;
	char *why;
	uint64_t t0;
	/* the thread's result */
	int r;
	struct ms_config *cfg;
	struct cfg_errors errs;
	/* control clients waiting for the answer (dup'ed fds) */
	int *waiters;
	size_t n_waiters;
};

static void *load_thread(void *arg)
{
	struct reload_job *j = arg;
	uint64_t one = 1;

	j->r = load(j->a->o, &j->a->vips, &j->errs, &j->cfg);
	if (write(j->efd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only on overflow: it is readable then */
	}
	return NULL;
}

static void waiters_answer(int *fds, size_t n, const char *err)
{
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(!err));
		if (err)
			json_object_object_add(o, "error", json_object_new_string(err));
		client_send_json(fds[i], o);
		json_object_put(o);
		close(fds[i]);
	}
	free(fds);
}

static void job_start(struct agent *a, const char *why);

static void job_done(struct ev *ev, uint32_t events)
{
	struct reload_job *j = container_of(ev, struct reload_job, ev);
	struct agent *a = j->a;
	char *err = NULL;

	(void)events;
	pthread_join(j->thread, NULL);
	ev_del(a->epfd, j->efd);
	close(j->efd);
	a->job = NULL;
	load_report(a, j->r, &j->errs);
	if (j->r < 0) {
		a->st.reloads_failed++;
		log_error("config reload (%s) failed; the last good config stays in force", j->why);
		err = xasprintf("reload failed: %s", a->last_reload_error ? a->last_reload_error : "?");
	} else if (a->draining) {
		cfg_unref(j->cfg);
		err = xstrdup("the agent is draining");
	} else {
		struct ms_config *c = j->cfg;
		reload_apply(a, c);
		a->st.reloads_ok++;
		free(a->last_reload_error);
		a->last_reload_error = NULL;
		log_info("config reloaded (%s): %zu files, %zu meshes, %zu services in %llu ms", j->why, c->n_files,
			 c->n_meshes, c->n_svcs, (unsigned long long)(now_ms() - j->t0));
	}
	/* READY=1 whatever the outcome; not while draining (STOPPING=1 was said) */
	if (!a->draining)
		(void)notify_ready();
	waiters_answer(j->waiters, j->n_waiters, err);
	free(err);
	free(j->why);
	j->ev.dead = true;
	ev_defer_free(j);
	if (a->draining) { /* those who asked during this load: no other follows */
		waiters_answer(a->reload_waiters, a->n_reload_waiters, "the agent is draining: no reload");
		a->reload_waiters = NULL;
		a->n_reload_waiters = 0;
	} else if (a->reload_again) {
		a->reload_again = false;
		job_start(a, "asked for during the last one");
	}
	a->reload_again = false;
}

static void job_start(struct agent *a, const char *why)
{
	struct reload_job *j = xcalloc(1, sizeof(*j));
	int r;

	j->a = a;
	j->why = xstrdup(why);
	j->t0 = now_ms();
	j->waiters = a->reload_waiters;
	j->n_waiters = a->n_reload_waiters;
	a->reload_waiters = NULL;
	a->n_reload_waiters = 0;
	ev_init(&j->ev, job_done);
	if (!a->draining)
		(void)notify_reloading();
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0 || (r = ev_add(a->epfd, j->efd, &j->ev, EPOLLIN)) < 0 ||
	    (r = -pthread_create(&j->thread, NULL, load_thread, j)) < 0) {
		log_error_errno(j->efd < 0 ? -errno : r, "config reload (%s): cannot start the loader: %m", why);
		if (j->efd >= 0) {
			ev_del(a->epfd, j->efd);
			close(j->efd);
		}
		a->st.reloads_failed++;
		if (!a->draining)
			(void)notify_ready();
		waiters_answer(j->waiters, j->n_waiters, "reload failed: cannot start the loader");
		free(j->why);
		free(j);
		return;
	}
	a->job = j;
}

void reload(struct agent *a, const char *why)
{
	reload_request(a, why, -1);
}

void reload_request(struct agent *a, const char *why, int reply_fd)
{
	if (a->draining) /* a load now would be thrown away at exit; control answers its client */
		return;
	if (reply_fd >= 0) {
		int fd = fcntl(reply_fd, F_DUPFD_CLOEXEC, 3);
		if (fd >= 0) {
			a->reload_waiters = xrealloc(a->reload_waiters, a->n_reload_waiters + 1, sizeof(int));
			a->reload_waiters[a->n_reload_waiters++] = fd;
		}
	}
	if (a->job) {
		a->reload_again = true;
		return;
	}
	job_start(a, why);
}

bool reload_busy(const struct agent *a)
{
	return a->job != NULL;
}

/* Certificate files named by path (Gloo's clientsideTls) are part of the
 * config: when one no longer holds what the snapshot read, reload. Looked at
 * every couple of seconds: a stat, and a read only of a file that was
 * written or replaced since (a Secret volume swaps its symlink) to see
 * whether its bytes changed; after a failed reload (a half-written key, say)
 * at most every 10 s, until one succeeds. */
static bool blob_changed(const struct ms_blob *b, const char **ret_path)
{
	struct ms_file_id id;
	char *buf = NULL;
	size_t len = 0;

	if (!b->origin || strncmp(b->origin, "file:", 5) != 0)
		return false;
	*ret_path = b->origin + 5;
	if (file_id(b->origin + 5, &id) < 0)
		return true;
	if (file_id_eq(&id, &b->file))
		return false;
	if (read_file(b->origin + 5, 1u << 20, &buf, &len) < 0)
		return true;
	bool changed = len != b->len || memcmp(buf, b->data, len) != 0;
	free(buf);
	return changed;
}

void reload_watch_files(struct agent *a)
{
	const char *path = NULL;

	if (!a->cfg || a->job || a->draining || (a->last_reload_error && now_ms() - a->files_reload_ms < 10000))
		return;
	for (size_t i = 0; i < a->cfg->n_svcs && !path; i++) {
		const struct ms_tls *t = &a->cfg->svcs[i].tls;
		const char *p = NULL;
		if (blob_changed(&t->ca, &p) || blob_changed(&t->cert, &p) || blob_changed(&t->key, &p))
			path = p;
	}
	if (!path)
		return;
	char why[320];
	snprintf(why, sizeof(why), "certificate file %s changed", path);
	a->files_reload_ms = now_ms();
	reload(a, why);
}

void reload_fini(struct agent *a)
{
	if (a->job) { /* a load under way at exit: wait for it, drop its result */
		struct reload_job *j = a->job;
		pthread_join(j->thread, NULL);
		ev_del(a->epfd, j->efd);
		close(j->efd);
		cfg_errors_clear(&j->errs);
		cfg_unref(j->cfg);
		waiters_answer(j->waiters, j->n_waiters, "the agent is stopping");
		free(j->why);
		free(j);
		a->job = NULL;
	}
	waiters_answer(a->reload_waiters, a->n_reload_waiters, "the agent is stopping");
	a->reload_waiters = NULL;
	a->n_reload_waiters = 0;
	tls_clear(a->tls, a->cfg ? a->cfg->n_svcs : 0);
	a->tls = NULL;
	route_lb_clear(&a->lb);
	cfg_unref(a->cfg);
	a->cfg = NULL;
	cfg_vip_table_clear(&a->vips);
	free(a->last_reload_error);
	a->last_reload_error = NULL;
}
