// SPDX-License-Identifier: MIT
/* The endpoint health machine without root: thresholds both ways, why and
 * since, the kernel's totals read as deltas (baseline, reset), ejection
 * expiry, config sync keeping survivors; and route_decide's failover order
 * with unhealthy endpoints (skipped to the end, lower levels while no
 * better one is healthy). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixtures.h"
#include "health.h"
#include "steer.h"
#include "route.h"
#include "util.h"

/* the levels fixture and an endpoint known by name (no level: 0) */
static const char yaml[] = FIXTURE_LEVELS_IP "    - address: backend.test\n      port: 3\n";

static const char yaml_two[] =
	"type: Mesh\nname: open\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: two\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n"
	"    - address: 198.18.0.1\n      port: 1\n"
	"    - address: 198.18.0.7\n      port: 7\n";

static struct ms_config *load(const char *text)
{
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct cfg_opts co;

	cfg_opts_init(&co);
	assert_int_equal(cfg_load_buffer(text, strlen(text), "health.yaml", &co, &errs, &c), 0);
	cfg_errors_clear(&errs);
	return c;
}

static struct ms_addr A(const char *s)
{
	struct ms_addr a;

	assert_int_equal(addr_parse(s, &a), 0);
	return a;
}

static void test_thresholds(void **state)
{
	struct health_opts o = { .unhealthy_after = 3, .healthy_after = 2 };
	struct ms_config *c = load(yaml);
	struct ms_addr a1 = A("198.18.0.1"), other = A("198.18.9.9");
	struct health h;
	const struct health_ep *e;

	(void)state;
	health_init(&h, &o);
	assert_int_equal(health_sync(&h, c, 100), 3); /* IP endpoints only: the DNS name is not tracked */
	assert_int_equal(h.n, 3);
	e = health_find(&h, &a1, 1);
	assert_non_null(e);
	assert_true(e->healthy);
	assert_int_equal(e->why, HEALTH_WHY_NEW);
	assert_int_equal(e->since_ms, 100);
	assert_null(health_find(&h, &a1, 2)); /* the port is part of the key */
	assert_true(health_up(&h, &other, 1)); /* unknown: healthy */
	/* two failures, a success, two failures: never three in a row */
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_REFUSED, 200));
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_REFUSED, 210));
	assert_false(health_report(&h, &a1, 1, true, HEALTH_WHY_PROBE_OK, 220));
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_TIMEOUT, 230));
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_TIMEOUT, 240));
	assert_true(health_up(&h, &a1, 1));
	uint64_t gen = h.gen;
	assert_true(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_TIMEOUT, 250));
	assert_false(health_up(&h, &a1, 1));
	assert_int_equal(e->why, HEALTH_WHY_PROBE_TIMEOUT);
	assert_int_equal(e->since_ms, 250);
	assert_int_equal(h.gen, gen + 1);
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_REFUSED, 260)); /* already down */
	assert_int_equal(e->why, HEALTH_WHY_PROBE_TIMEOUT);
	/* back after two successes in a row, not one */
	assert_false(health_report(&h, &a1, 1, true, HEALTH_WHY_PROBE_OK, 300));
	assert_false(health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_REFUSED, 310));
	assert_false(health_report(&h, &a1, 1, true, HEALTH_WHY_PROBE_OK, 320));
	assert_false(health_up(&h, &a1, 1));
	assert_true(health_report(&h, &a1, 1, true, HEALTH_WHY_PROBE_OK, 330));
	assert_true(health_up(&h, &a1, 1));
	assert_int_equal(e->why, HEALTH_WHY_PROBE_OK);
	assert_int_equal(e->since_ms, 330);
	assert_int_equal(e->n_failed, 7);
	assert_int_equal(e->n_ok, 4);
	assert_false(health_report(&h, &other, 1, false, HEALTH_WHY_PROBE_REFUSED, 340)); /* unknown: ignored */
	assert_string_equal(health_why_name(HEALTH_WHY_PROBE_REFUSED), "probe_refused");
	health_fini(&h);
	cfg_unref(c);
}

/* The kernel keeps one entry a (service port, endpoint); the views fold
 * them: an endpoint behind two services counts once with both's sums, a
 * service with two endpoints likewise, and the total is everything. */
static void test_kstats_fold(void **state)
{
	struct ms_addr vip1 = A("241.0.0.1"), vip2 = A("241.0.0.2"), e1 = A("198.18.0.1"), e2 = A("198.18.0.2");
	struct steer_kstat v[4] = {};
	struct steer_ep_stat *ep;
	struct steer_svc_stat *svc;
	struct ms_kstat t;
	size_t n;

	(void)state;
	/* vip1:80 → e1:8080 and e2:8080; vip2:80 → e1:8080; vip1:80 of mesh 2 → e2:8080 */
	const struct { const struct ms_addr *vip, *ep; uint32_t mesh; uint64_t opened, failed, acked; } in[4] = {
		{ &vip1, &e1, 1, 1, 0, 100 }, { &vip1, &e2, 1, 2, 1, 200 },
		{ &vip2, &e1, 1, 4, 2, 400 }, { &vip1, &e2, 2, 8, 0, 800 },
	};
	for (int i = 0; i < 4; i++) {
		memcpy(v[i].key.vip, in[i].vip->b, 16);
		memcpy(v[i].key.ep, in[i].ep->b, 16);
		v[i].key.mesh_id = in[i].mesh;
		v[i].key.vip_port = 80;
		v[i].key.ep_port = 8080;
		v[i].k = (struct ms_kstat){ .opened = in[i].opened, .failed = in[i].failed, .bytes_acked = in[i].acked };
	}
	n = steer_kstats_by_ep(v, 4, &ep);
	assert_int_equal(n, 2);
	assert_memory_equal(ep[0].addr.b, e1.b, 16);
	assert_int_equal(ep[0].k.opened, 5);
	assert_int_equal(ep[0].k.failed, 2);
	assert_memory_equal(ep[1].addr.b, e2.b, 16);
	assert_int_equal(ep[1].k.opened, 10);
	assert_int_equal(ep[1].k.bytes_acked, 1000);
	free(ep);
	n = steer_kstats_by_svc(v, 4, &svc);
	assert_int_equal(n, 3);
	assert_int_equal(svc[0].mesh_id, 1);
	assert_memory_equal(svc[0].vip.b, vip1.b, 16);
	assert_int_equal(svc[0].k.opened, 3);
	assert_int_equal(svc[0].k.failed, 1);
	assert_memory_equal(svc[1].vip.b, vip2.b, 16);
	assert_int_equal(svc[1].k.opened, 4);
	assert_int_equal(svc[2].mesh_id, 2);
	assert_int_equal(svc[2].k.opened, 8);
	free(svc);
	steer_kstats_total(v, 4, &t);
	assert_int_equal(t.opened, 15);
	assert_int_equal(t.failed, 3);
	assert_int_equal(t.bytes_acked, 1500);
	/* nothing in, nothing out */
	assert_int_equal(steer_kstats_by_ep(v, 0, &ep), 0);
	free(ep);
}

static void test_kernel_totals(void **state)
{
	struct health_opts o = { .unhealthy_after = 2, .healthy_after = 1 };
	struct ms_config *c = load(yaml);
	struct ms_addr a1 = A("198.18.0.1"), a2 = A("198.18.0.2");
	struct health h;

	(void)state;
	health_init(&h, &o);
	health_sync(&h, c, 0);
	/* the baseline judges nothing, however many failures it holds */
	assert_false(health_kernel(&h, &a1, 1, 10, 50, true, 1));
	assert_true(health_up(&h, &a1, 1));
	/* one more failure: one in a row */
	assert_false(health_kernel(&h, &a1, 1, 10, 51, false, 2));
	/* baseline has no effect on an endpoint already read: the second failure in a row */
	assert_true(health_kernel(&h, &a1, 1, 10, 52, true, 3));
	assert_false(health_up(&h, &a1, 1));
	assert_int_equal(health_find(&h, &a1, 1)->why, HEALTH_WHY_CONNECT_FAILED);
	/* an open resets the run and brings it back (healthy_after 1) */
	assert_true(health_kernel(&h, &a1, 1, 11, 52, false, 4));
	assert_true(health_up(&h, &a1, 1));
	/* opens and failures in one read: the opens first, failures still count */
	assert_true(health_kernel(&h, &a1, 1, 12, 54, false, 5));
	assert_false(health_up(&h, &a1, 1));
	/* totals never read (the entry appeared after the baseline) count whole */
	assert_true(health_kernel(&h, &a2, 2, 0, 2, false, 6));
	assert_false(health_up(&h, &a2, 2));
	/* a total that went down (aged out and back) counts whole */
	assert_true(health_kernel(&h, &a2, 2, 1, 2, false, 7));
	assert_true(health_up(&h, &a2, 2));
	assert_true(health_kernel(&h, &a2, 2, 1, 2 + 1, false, 8) == false); /* one failure: one in a row */
	assert_true(health_kernel(&h, &a2, 2, 0, 1, false, 9));               /* reset: 1 counted whole */
	assert_false(health_up(&h, &a2, 2));
	health_fini(&h);
	cfg_unref(c);
}

static void test_expire_and_sync(void **state)
{
	struct health_opts o = { .unhealthy_after = 1, .healthy_after = 1, .eject_ms = 1000 };
	struct ms_config *c = load(yaml), *c2 = load(yaml_two);
	struct ms_addr a1 = A("198.18.0.1"), a2 = A("198.18.0.2"), a7 = A("198.18.0.7");
	struct health h;

	(void)state;
	health_init(&h, &o);
	health_sync(&h, c, 0);
	assert_true(health_report(&h, &a1, 1, false, HEALTH_WHY_CONNECT_FAILED, 100));
	assert_true(health_report(&h, &a2, 2, false, HEALTH_WHY_PROBE_REFUSED, 100));
	assert_int_equal(health_expire(&h, 99), 0); /* a clock read before the failure: not 2^64 ms later */
	assert_int_equal(health_expire(&h, 1099), 0);
	/* only a passive judgement expires: a probe's stands until a probe says otherwise */
	assert_int_equal(health_expire(&h, 1100), 1);
	/* inherited from an earlier agent's sets: down without outcomes, expires like a passive one */
	struct ms_addr a9 = A("198.18.0.9");
	assert_true(health_assume_down(&h, &a9, 9, HEALTH_WHY_INHERITED, 1100));
	assert_false(health_assume_down(&h, &a9, 9, HEALTH_WHY_INHERITED, 1100)); /* already down */
	assert_false(health_assume_down(&h, &a7, 7, HEALTH_WHY_INHERITED, 1100)); /* not tracked */
	assert_false(health_up(&h, &a9, 9));
	assert_int_equal(health_expire(&h, 2100), 1);
	assert_true(health_up(&h, &a9, 9));
	assert_true(health_up(&h, &a1, 1));
	assert_int_equal(health_find(&h, &a1, 1)->why, HEALTH_WHY_EJECT_OVER);
	assert_false(health_up(&h, &a2, 2));
	/* control: with eject_ms 0 nothing expires */
	struct health h0;
	struct health_opts o0 = { .unhealthy_after = 1, .healthy_after = 1 };
	health_init(&h0, &o0);
	health_sync(&h0, c, 0);
	assert_true(health_report(&h0, &a1, 1, false, HEALTH_WHY_CONNECT_FAILED, 100));
	assert_int_equal(health_expire(&h0, 1u << 30), 0);
	assert_false(health_up(&h0, &a1, 1));
	health_fini(&h0);
	/* a new config: 198.18.0.1:1 survives with its state, .2 and .9 go, .7 comes */
	assert_true(health_report(&h, &a1, 1, false, HEALTH_WHY_CONNECT_FAILED, 2000));
	assert_int_equal(health_sync(&h, c2, 3000), 3);
	assert_int_equal(h.n, 2);
	assert_false(health_up(&h, &a1, 1));
	assert_int_equal(health_find(&h, &a1, 1)->since_ms, 2000);
	assert_null(health_find(&h, &a2, 2));
	assert_non_null(health_find(&h, &a7, 7));
	assert_true(health_up(&h, &a7, 7));
	assert_int_equal(health_sync(&h, c2, 4000), 0);
	health_fini(&h);
	cfg_unref(c);
	cfg_unref(c2);
}

/* An endpoint two services name is tracked once; the counts say what came
 * and went, the order does not matter. */
static void test_sync_named_twice(void **state)
{
	static const char twice[] = FIXTURE_LEVELS_IP
		"---\n"
		"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
		"metadata:\n  name: again\n  labels:\n    kuma.io/mesh: open\n"
		"spec:\n  match:\n    type: HostnameGenerator\n    port: 81\n    protocol: tcp\n"
		"  endpoints:\n"
		"    - address: 198.18.0.2\n      port: 2\n"
		"    - address: 198.18.0.1\n      port: 1\n"
		"    - address: 198.18.0.3\n      port: 3\n";
	struct health_opts o = { .unhealthy_after = 1, .healthy_after = 1 };
	struct ms_config *c = load(twice), *c1 = load(FIXTURE_LEVELS_IP);
	struct ms_addr a1 = A("198.18.0.1"), a3 = A("198.18.0.3");
	struct health h;

	(void)state;
	health_init(&h, &o);
	assert_int_equal(health_sync(&h, c1, 0), 3);
	assert_true(health_report(&h, &a1, 1, false, HEALTH_WHY_CONNECT_FAILED, 10));
	/* .3 comes; .1 and .2, named twice now, stay once each, .1 still down */
	assert_int_equal(health_sync(&h, c, 20), 1);
	assert_int_equal(h.n, 4);
	assert_false(health_up(&h, &a1, 1));
	assert_non_null(health_find(&h, &a3, 3));
	for (size_t i = 1; i < h.n; i++) { /* sorted, each once: health_find's binary search needs it */
		int d = memcmp(h.v[i - 1].addr.b, h.v[i].addr.b, 16);
		assert_true(d < 0 || (d == 0 && h.v[i - 1].port < h.v[i].port));
	}
	/* back to the first config: .3 goes, nothing else changes */
	assert_int_equal(health_sync(&h, c1, 30), 1);
	assert_int_equal(h.n, 3);
	assert_false(health_up(&h, &a1, 1));
	health_fini(&h);
	cfg_unref(c);
	cfg_unref(c1);
}

static int fake_resolve(void *ctx, const char *host, const struct ms_addr **ret, size_t *ret_n)
{
	static struct ms_addr a;

	(void)ctx;
	(void)host;
	a = A("198.18.5.5");
	*ret = &a;
	*ret_n = 1;
	return 0;
}

static void labels(const struct route_out *out, const char *const *want, size_t n)
{
	assert_int_equal(out->verdict, ROUTE_FORWARD);
	assert_int_equal(out->targets->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(fwd_targets_at(out->targets, out->start, i)->label, want[i]);
}

static void decide(const struct route_env *env, const struct ms_config *c, struct route_out *out)
{
	struct route_in in = { .mesh = "open", .nsfd = -1, .port = 80,
			       .orig = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "open", "levels")->vip };

	struct route_env e = *env;

	/* a change of health moves the targets' generation on (route.h) */
	e.targets_gen = env->health ? env->health->gen : 0;
	route_decide(&e, &in, out);
}

static void free_out(struct route_out *out)
{
	fwd_targets_unref(out->targets);
}

/* The proxy path's order: healthy endpoints of the best level that has any,
 * then the lower levels' healthy ones, then every unhealthy one. */
static void test_failover_skip(void **state)
{
	struct health_opts o = { .unhealthy_after = 1, .healthy_after = 1 };
	struct ms_config *c = load(yaml);
	struct ms_addr a1 = A("198.18.0.1"), a2 = A("198.18.0.2"), a9 = A("198.18.0.9");
	struct route_lb lb;
	struct route_out out;
	struct health h;
	static const char *const all_up[] = { "198.18.0.1:1", "198.18.0.2:2", "backend.test(198.18.5.5:3)",
					      "198.18.0.9:9" };
	static const char *const one_down[] = { "198.18.0.2:2", "backend.test(198.18.5.5:3)", "198.18.0.9:9",
						"198.18.0.1:1" };
	static const char *const one_down_next[] = { "backend.test(198.18.5.5:3)", "198.18.0.2:2", "198.18.0.9:9",
						     "198.18.0.1:1" };
	static const char *const all_down[] = { "198.18.0.9:9", "198.18.0.1:1", "198.18.0.2:2" };
	static const char *const ip_down[] = { "backend.test(198.18.5.5:3)", "198.18.0.9:9", "198.18.0.1:1",
					       "198.18.0.2:2" };

	(void)state;
	health_init(&h, &o);
	health_sync(&h, c, 0);
	route_lb_build(&lb, c, NULL, NULL);
	struct route_env env = { .cfg = c, .lb = &lb, .resolve = fake_resolve, .health = &h };
	/* control: all healthy, as without health */
	decide(&env, c, &out);
	labels(&out, all_up, 4);
	free_out(&out);
	env.health = NULL;
	decide(&env, c, &out);
	labels(&out, all_up, 4);
	free_out(&out);
	env.health = &h;
	/* .1 down: last; round robin among the healthy of level 0 */
	health_report(&h, &a1, 1, false, HEALTH_WHY_PROBE_REFUSED, 1);
	decide(&env, c, &out);
	labels(&out, one_down, 4);
	lb.next[out.cursor]++;
	free_out(&out);
	decide(&env, c, &out);
	labels(&out, one_down_next, 4);
	lb.next[out.cursor]--;
	free_out(&out);
	/* level 0's IP endpoints down, the DNS name (untracked) still first */
	health_report(&h, &a2, 2, false, HEALTH_WHY_PROBE_REFUSED, 1);
	decide(&env, c, &out);
	labels(&out, ip_down, 4);
	free_out(&out);
	/* a service of IP endpoints only, the better level down: the lower one
	 * first, the unhealthy better ones after it, in their order */
	static const char yaml_ip[] = FIXTURE_LEVELS_IP;
	struct ms_config *ci = load(yaml_ip);
	struct route_lb lbi;
	route_lb_build(&lbi, ci, NULL, NULL);
	health_sync(&h, ci, 2);
	struct route_env envi = { .cfg = ci, .lb = &lbi, .resolve = fake_resolve, .health = &h };
	decide(&envi, ci, &out);
	labels(&out, all_down, 3);
	free_out(&out);
	/* all down: every one still tried, in level order */
	health_report(&h, &a9, 9, false, HEALTH_WHY_PROBE_TIMEOUT, 3);
	static const char *const every[] = { "198.18.0.1:1", "198.18.0.2:2", "198.18.0.9:9" };
	decide(&envi, ci, &out);
	labels(&out, every, 3);
	free_out(&out);
	route_lb_clear(&lbi);
	cfg_unref(ci);
	route_lb_clear(&lb);
	health_fini(&h);
	cfg_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_kernel_totals),
		cmocka_unit_test(test_kstats_fold),
		cmocka_unit_test(test_expire_and_sync),
		cmocka_unit_test(test_sync_named_twice),
		cmocka_unit_test(test_failover_skip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
