// SPDX-License-Identifier: MIT
/* The pod registry's transitions against a steering engine of the test's
 * own (it records what the registry asks of it): enable, refresh, disable,
 * enable again, an engine that refuses, forget, and a restart that restores
 * the registry and drops the engine's stale pods. The pod is a network
 * namespace the test makes for itself (unshare), so it needs root; without
 * it the test says skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "agent-t.h"
#include "config.h"
#include "netns.h"
#include "util.h"

/* ---------- an engine that records ---------- */

struct fake {
	struct steer s;
	unsigned puts[3], dels, del_cookies;
	enum steer_why last_why;
	struct ms_pod last;
	size_t last_excl;
	int fail_put; /* -errno for the next pod_put */
	uint64_t stale; /* a cookie pod_list reports as still steered */
};

static struct fake *fk(struct steer *s)
{
	return container_of(s, struct fake, s);
}

static void f_close(struct steer *s)
{
	(void)s;
}

static int f_put(struct steer *s, const struct steer_pod *p, enum steer_why why, const char **ret_why)
{
	struct fake *f = fk(s);

	if (f->fail_put) {
		int r = f->fail_put;
		f->fail_put = 0;
		*ret_why = "the fake engine refused";
		return r;
	}
	f->puts[why]++;
	f->last_why = why;
	f->last = p->v;
	f->last_excl = p->n_excl_cidrs;
	return 0;
}

static void f_del(struct steer *s, const struct steer_pod *p)
{
	(void)p;
	fk(s)->dels++;
}

static int f_list(struct steer *s, uint64_t **ret, size_t *ret_n)
{
	struct fake *f = fk(s);

	*ret_n = f->stale ? 1 : 0;
	*ret = xcalloc(1, sizeof(uint64_t));
	(*ret)[0] = f->stale;
	return 0;
}

static void f_del_cookie(struct steer *s, uint64_t cookie)
{
	struct fake *f = fk(s);

	if (cookie == f->stale)
		f->del_cookies++;
}

static int f_sync(struct steer *s, const struct ms_config *c)
{
	(void)s;
	(void)c;
	return 0;
}

static const char *f_describe(struct steer *s)
{
	(void)s;
	return "fake";
}

static const struct steer_ops fake_ops = {
	.name = "fake", .close = f_close, .pod_put = f_put, .pod_del = f_del, .pod_list = f_list,
	.pod_del_cookie = f_del_cookie, .svcs_sync = f_sync, .describe = f_describe,
};

/* ---------- an agent around it ---------- */

struct rig {
	struct agent a;
	struct agent_opts o;
	struct fake f;
	char dir[64];
};

static const char yaml[] = "type: Mesh\nname: default\n---\ntype: Mesh\nname: closed\n"
			   "networking:\n  outbound:\n    passthrough: false\n";

static void rig_open(struct rig *r, const char *dir)
{
	struct cfg_errors errs = { 0 };

	memset(&r->a, 0, sizeof(r->a));
	r->o = (struct agent_opts){ .listen_port = 15001, .dns_port = 15053, .state_dir = dir, .max_conns = 100 };
	cfg_opts_init(&r->o.cfg);
	r->a.o = &r->o;
	r->a.steer = &r->f.s;
	r->a.ctl_fd = r->a.metrics_fd = -1;
	r->a.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct fwd_opts fo = { .max_conns = 100 };
	fwd_init(&r->a.fwd, r->a.epfd, &fo);
	assert_int_equal(cfg_load_buffer(yaml, strlen(yaml), "t.yaml", &r->o.cfg, &errs, &r->a.cfg), 0);
	cfg_errors_clear(&errs);
}

static void rig_close(struct rig *r)
{
	pods_close_all(&r->a);
	fwd_fini(&r->a.fwd);
	close(r->a.epfd);
	cfg_unref(r->a.cfg);
	ev_fini();
}

static struct ctl_req req(const char *json)
{
	struct ctl_req rq;
	char *err = NULL;

	assert_int_equal(ctl_parse(json, &rq, &err), 0);
	return rq;
}

static char *enable(struct rig *r, const char *json)
{
	struct ctl_req rq = req(json);
	char *e = pod_enable(&r->a, &rq, NULL);

	ctl_req_free(&rq);
	return e;
}

static void test_transitions(void **state)
{
	struct rig r = { 0 };
	char dir[] = "/tmp/ms-test-pods.XXXXXX";
	struct pod *p;
	char *e;

	(void)state;
	assert_non_null(mkdtemp(dir));
	r.f.s.ops = &fake_ops;
	rig_open(&r, dir);

	/* enable: listeners first, then the engine is told, once */
	e = enable(&r, "{\"cmd\":\"enable\",\"netns\":\"/proc/self/ns/net\",\"name\":\"t/a\",\"dns\":false}");
	assert_null(e);
	p = pod_find_name(&r.a, "t/a");
	assert_non_null(p);
	assert_true(p->enabled);
	assert_true(p->l4.fd >= 0);
	assert_int_equal(r.f.puts[STEER_ENABLE], 1);
	assert_int_equal(r.a.n_enabled, 1);
	assert_int_equal(r.f.last.listen_port, 15001);
	assert_true(r.f.last.flags & MS_POD_PASSTHROUGH);

	/* the same pod again, new exclusions and another mesh: refreshed in place */
	int l4 = p->l4.fd;
	e = enable(&r, "{\"cmd\":\"enable\",\"name\":\"t/a\",\"mesh\":\"closed\",\"exclude_ports\":[9000],"
		       "\"exclude_cidrs\":[\"198.18.9.0/24\"]}");
	assert_null(e);
	assert_int_equal(r.f.puts[STEER_UPDATE], 1);
	assert_int_equal(r.f.puts[STEER_ENABLE], 1);
	assert_int_equal(p->l4.fd, l4); /* the listener stays */
	assert_false(r.f.last.flags & MS_POD_PASSTHROUGH);
	assert_int_equal(r.f.last.n_excl_ports, 1);
	assert_int_equal(r.f.last_excl, 1);
	assert_int_equal(r.a.n_enabled, 1);

	/* a reload tells the engine again, for the mesh flags */
	pods_refresh(&r.a);
	assert_int_equal(r.f.puts[STEER_RELOAD], 1);

	/* disable: the engine first, then the listeners; the pod stays known */
	struct ctl_req rq = req("{\"cmd\":\"disable\",\"name\":\"t/a\"}");
	assert_null(pod_disable(&r.a, &rq));
	ctl_req_free(&rq);
	assert_false(p->enabled);
	assert_int_equal(p->l4.fd, -1);
	assert_int_equal(r.f.dels, 1);
	assert_int_equal(r.a.n_enabled, 0);
	/* a disabled pod is not refreshed on reload */
	pods_refresh(&r.a);
	assert_int_equal(r.f.puts[STEER_RELOAD], 1);

	/* enable by name: steered again, with what it had */
	e = enable(&r, "{\"cmd\":\"enable\",\"name\":\"t/a\"}");
	assert_null(e);
	assert_true(p->enabled);
	assert_int_equal(r.f.puts[STEER_ENABLE], 2);
	assert_int_equal(r.f.last.n_excl_ports, 1);

	/* an engine that refuses: the pod is not enabled, its listeners closed, the why said */
	rq = req("{\"cmd\":\"disable\",\"name\":\"t/a\"}");
	assert_null(pod_disable(&r.a, &rq));
	ctl_req_free(&rq);
	r.f.fail_put = -EIO;
	e = enable(&r, "{\"cmd\":\"enable\",\"name\":\"t/a\"}");
	assert_non_null(e);
	assert_non_null(strstr(e, "the fake engine refused"));
	free(e);
	assert_false(p->enabled);
	assert_int_equal(p->l4.fd, -1);
	assert_int_equal(r.a.n_enabled, 0);

	/* enabled again, then a restart: the registry comes back from the state
	 * file, the pod is steered again, and a pod the engine still had that
	 * nobody knows is dropped */
	assert_null(enable(&r, "{\"cmd\":\"enable\",\"name\":\"t/a\"}"));
	rig_close(&r);
	struct rig r2 = { 0 };
	r2.f.s.ops = &fake_ops;
	r2.f.stale = 0xdeadbeef;
	rig_open(&r2, dir);
	pods_restore(&r2.a);
	p = pod_find_name(&r2.a, "t/a");
	assert_non_null(p);
	assert_true(p->enabled);
	assert_string_equal(p->mesh, "closed");
	assert_int_equal(p->n_excl_ports, 1);
	assert_int_equal(r2.f.puts[STEER_ENABLE], 1);
	assert_int_equal(r2.f.del_cookies, 1);

	/* forget: gone from the registry and the engine; an unknown pod is fine */
	rq = req("{\"cmd\":\"forget\",\"name\":\"t/a\"}");
	pod_forget(&r2.a, &rq);
	ctl_req_free(&rq);
	assert_null(pod_find_name(&r2.a, "t/a"));
	assert_int_equal(r2.f.dels, 1);
	rq = req("{\"cmd\":\"forget\",\"name\":\"t/nobody\"}");
	pod_forget(&r2.a, &rq);
	ctl_req_free(&rq);
	rig_close(&r2);

	_cleanup_free_ char *cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
	};

	/* a network namespace of our own: the pod, its loopback our listener's */
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
		printf("test-pods: skipped (needs root for a network namespace of its own)\n");
		return 77;
	}
	if (netns_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
