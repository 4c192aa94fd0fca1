// SPDX-License-Identifier: MIT
/* route_decide without root: every refusal reason, the failover order and
 * the round-robin cursor, DNS endpoints that resolve, wait or fail, unix and
 * TLS endpoints; and the cursors carried across a reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "config.h"
#include "fixtures.h"
#include "route.h"
#include "steer.h"
#include "util.h"

static const char yaml[] =
	"type: Mesh\n"
	"name: open\n"
	"networking:\n  outbound:\n    passthrough: true\n"
	"---\n"
	"type: Mesh\n"
	"name: closed\n"
	"networking:\n  outbound:\n    passthrough: false\n"
	"---\n"
	"type: Mesh\n"
	"name: forbid\n"
	"networking:\n  outbound:\n    passthrough: true\n"
	"routing:\n  defaultForbidMeshExternalServiceAccess: true\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: three\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n"
	"    - address: 198.18.0.1\n      port: 8001\n"
	"    - address: 198.18.0.2\n      port: 8002\n"
	"    - address: 198.18.0.3\n      port: 8003\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: named\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 443\n    protocol: tcp\n"
	"  endpoints:\n"
	"    - address: backend.test\n      port: 9443\n"
	"    - address: unix:///run/backend.sock\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: secure\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 443\n    protocol: tcp\n"
	"  endpoints:\n    - address: 198.18.0.9\n      port: 443\n"
	"  tls:\n    enabled: true\n    verification:\n      serverName: secure.test\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: ext\n  labels:\n    kuma.io/mesh: forbid\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n    - address: 198.18.0.5\n      port: 80\n";

struct fixture {
	struct ms_config *cfg;
	struct cfg_opts co;
	struct route_lb lb;
	struct route_env env;
	/* the fake resolver: what backend.test resolves to, or an error */
	int resolve_rc;
	struct ms_addr addrs[2];
	size_t n_addrs;
	unsigned lookups;
};

static int fake_resolve(void *ctx, const char *host, const struct ms_addr **ret, size_t *ret_n)
{
	struct fixture *f = ctx;

	f->lookups++;
	assert_string_equal(host, "backend.test");
	if (f->resolve_rc < 0)
		return f->resolve_rc;
	*ret = f->addrs;
	*ret_n = f->n_addrs;
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct cfg_errors errs = { 0 };

	cfg_opts_init(&f->co);
	if (cfg_load_buffer(yaml, strlen(yaml), "route.yaml", &f->co, &errs, &f->cfg) < 0) {
		char buf[1024];
		for (size_t i = 0; i < errs.n; i++)
			print_message("%s\n", cfg_err_fmt(&errs.v[i], buf, sizeof(buf)));
		fail_msg("the test config does not load");
	}
	cfg_errors_clear(&errs);
	route_lb_build(&f->lb, f->cfg, NULL, NULL);
	assert_int_equal(addr_parse("198.18.1.1", &f->addrs[0]), 0);
	assert_int_equal(addr_parse("2001:2::1", &f->addrs[1]), 0);
	f->n_addrs = 2;
	f->env = (struct route_env){
		.cfg = f->cfg, .tls = NULL, .lb = &f->lb, .vip_cidrs = NULL, .n_vip_cidrs = 0,
		.resolve = fake_resolve, .ctx = f,
	};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	route_lb_clear(&f->lb);
	cfg_unref(f->cfg);
	free(f);
	return 0;
}

static struct ms_cidr vip_ranges[2];

static void with_vip_ranges(struct fixture *f)
{
	vip_ranges[0] = f->co.mes_cidr;
	vip_ranges[1] = f->co.ms_cidr;
	f->env.vip_cidrs = vip_ranges;
	f->env.n_vip_cidrs = 2;
}

static const struct ms_service *svc(struct fixture *f, const char *mesh, const char *name)
{
	const struct ms_service *s = cfg_find_service(f->cfg, MS_KIND_MESH_EXTERNAL_SERVICE, mesh, name);

	assert_non_null(s);
	return s;
}

static struct route_in to(const char *mesh, const char *ip, uint16_t port)
{
	struct route_in in = { .mesh = mesh, .nsfd = 7, .port = port };

	assert_int_equal(addr_parse(ip, &in.orig), 0);
	return in;
}

static struct route_in to_svc(struct fixture *f, const char *mesh, const char *name, uint16_t port)
{
	struct route_in in = { .mesh = mesh, .nsfd = 7, .port = port, .orig = svc(f, mesh, name)->vip };

	return in;
}

static void expect_refused(struct fixture *f, const struct route_in *in, enum refuse_reason r, const char *detail)
{
	struct route_out out;

	route_decide(&f->env, in, &out);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_string_equal(route_refuse_name(out.reason), route_refuse_name(r));
	if (detail)
		assert_non_null(strstr(out.detail, detail));
	assert_null(out.targets);
}

static void free_out(struct route_out *out)
{
	fwd_targets_unref(out->targets);
}

/* The k-th target the connection tries. */
static const struct fwd_target *tgt(const struct route_out *out, size_t k)
{
	assert_non_null(out->targets);
	assert_true(k < out->targets->n);
	return fwd_targets_at(out->targets, out->start, k);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct route_in in;

	with_vip_ranges(f);
	in = to("gone", "198.18.7.7", 80);
	expect_refused(f, &in, REFUSE_MESH_GONE, "gone");

	f->env.full = true;
	in = to_svc(f, "open", "three", 80);
	expect_refused(f, &in, REFUSE_LIMIT, NULL);
	f->env.full = false;
	f->env.pod_full = true;
	in = to_svc(f, "open", "three", 80);
	expect_refused(f, &in, REFUSE_POD_LIMIT, "share");
	f->env.pod_full = false;

	/* a VIP of the range with nothing behind it, or a port the service lacks */
	in = to("open", "242.255.255.254", 80);
	expect_refused(f, &in, REFUSE_NO_SERVICE, NULL);
	in = to_svc(f, "open", "three", 81);
	expect_refused(f, &in, REFUSE_NO_SERVICE, NULL);
	/* another mesh's VIP is no service of this one */
	in = to_svc(f, "forbid", "ext", 80);
	in.mesh = "open";
	expect_refused(f, &in, REFUSE_NO_SERVICE, NULL);

	in = to("closed", "198.18.7.7", 80);
	expect_refused(f, &in, REFUSE_PASSTHROUGH, "passthrough off");
	in = to("open", "127.0.0.1", 80);
	expect_refused(f, &in, REFUSE_LOOP, NULL);
	in = to("open", "::1", 80);
	expect_refused(f, &in, REFUSE_LOOP, NULL);

	in = to_svc(f, "forbid", "ext", 80);
	expect_refused(f, &in, REFUSE_EXTERNAL, NULL);

	/* TLS without a context: refused, never sent in plaintext */
	in = to_svc(f, "open", "secure", 443);
	expect_refused(f, &in, REFUSE_TLS, "no TLS context");
	struct route_tls tls[64] = { 0 };
	size_t si = (size_t)(svc(f, "open", "secure") - f->cfg->svcs);
	tls[si].key = (char *)"MeshExternalService/open/secure";
	tls[si].err = (char *)"no CA";
	f->env.tls = tls;
	expect_refused(f, &in, REFUSE_TLS, "no CA");
	f->env.tls = NULL;
}

/* The control case of the VIP-range refusal: without the ranges, an unknown
 * VIP is just a destination, and passthrough decides. */
static void test_passthrough(void **state)
{
	struct fixture *f = *state;
	struct route_in in = to("open", "242.255.255.254", 80);
	struct route_out out;

	route_decide(&f->env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_int_equal(out.targets->n, 1);
	assert_string_equal(out.label, "passthrough");
	assert_string_equal(tgt(&out, 0)->label, "242.255.255.254:80");
	assert_int_equal(tgt(&out, 0)->in_pod, true);
	assert_true(tgt(&out, 0)->mark);
	assert_null(tgt(&out, 0)->tls);
	free_out(&out);
}

static void labels(const struct route_out *out, const char *const *want, size_t n)
{
	assert_int_equal(out->targets->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(tgt(out, i)->label, want[i]);
}

static void test_failover_order(void **state)
{
	struct fixture *f = *state;
	struct route_in in = to_svc(f, "open", "three", 80);
	static const char *const r0[] = { "198.18.0.1:8001", "198.18.0.2:8002", "198.18.0.3:8003" };
	static const char *const r1[] = { "198.18.0.2:8002", "198.18.0.3:8003", "198.18.0.1:8001" };
	static const char *const r2[] = { "198.18.0.3:8003", "198.18.0.1:8001", "198.18.0.2:8002" };
	const char *const *rounds[] = { r0, r1, r2, r0 };
	struct route_out out;

	for (size_t k = 0; k < ARRAY_SIZE(rounds); k++) {
		route_decide(&f->env, &in, &out);
		assert_int_equal(out.verdict, ROUTE_FORWARD);
		assert_string_equal(out.label, "MeshExternalService/three");
		labels(&out, rounds[k], 3);
		/* deciding is pure: the cursor moves only when the caller says */
		struct route_out again;
		route_decide(&f->env, &in, &again);
		labels(&again, rounds[k], 3);
		free_out(&again);
		assert_int_not_equal(out.cursor, SIZE_MAX);
		f->lb.next[out.cursor]++;
		free_out(&out);
	}
}

static void test_lb_carried_over_reload(void **state)
{
	struct fixture *f = *state;
	struct ms_config *c2 = NULL;
	struct cfg_errors errs = { 0 };
	struct route_lb lb2;
	struct route_in in = to_svc(f, "open", "three", 80);
	struct route_out out;

	route_decide(&f->env, &in, &out);
	f->lb.next[out.cursor] = 2;
	size_t old_cursor = out.cursor;
	free_out(&out);
	/* the same services, another snapshot (in a different order: a new file first) */
	_cleanup_free_ char *y2 = xasprintf("type: Mesh\nname: aaa\n---\n%s", yaml);
	assert_int_equal(cfg_load_buffer(y2, strlen(y2), "route2.yaml", &f->co, &errs, &c2), 0);
	route_lb_build(&lb2, c2, &f->lb, f->cfg);
	struct route_env env2 = f->env;
	env2.cfg = c2;
	env2.lb = &lb2;
	in.orig = cfg_find_service(c2, MS_KIND_MESH_EXTERNAL_SERVICE, "open", "three")->vip;
	route_decide(&env2, &in, &out);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_string_equal(tgt(&out, 0)->label, "198.18.0.3:8003");
	assert_int_equal(lb2.next[out.cursor], 2);
	(void)old_cursor;
	free_out(&out);
	route_lb_clear(&lb2);
	/* control: without the old cursors the new snapshot starts over */
	route_lb_build(&lb2, c2, NULL, NULL);
	env2.lb = &lb2;
	route_decide(&env2, &in, &out);
	assert_string_equal(tgt(&out, 0)->label, "198.18.0.1:8001");
	free_out(&out);
	route_lb_clear(&lb2);
	cfg_unref(c2);
	cfg_errors_clear(&errs);
}

static void test_dns_and_unix_endpoints(void **state)
{
	struct fixture *f = *state;
	struct route_in in = to_svc(f, "open", "named", 443);
	struct route_out out;
	static const char *const want[] = { "backend.test(198.18.1.1:9443)", "backend.test([2001:2::1]:9443)",
					    "unix:///run/backend.sock" };

	route_decide(&f->env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	labels(&out, want, 3);
	assert_int_equal(tgt(&out, 2)->sa.ss_family, AF_UNIX);
	assert_string_equal(((const struct sockaddr_un *)&tgt(&out, 2)->sa)->sun_path, "/run/backend.sock");
	assert_int_equal(tgt(&out, 2)->in_pod, false);
	assert_int_equal(tgt(&out, 0)->in_pod, true);
	free_out(&out);

	/* the name is being looked up (the resolver's answers changed): the
	 * unix endpoint still serves */
	f->resolve_rc = -EAGAIN;
	f->env.targets_gen++;
	route_decide(&f->env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_int_equal(out.targets->n, 1);
	assert_string_equal(tgt(&out, 0)->label, "unix:///run/backend.sock");
	free_out(&out);
}

static const char yaml_dns_only[] =
	"type: Mesh\nname: open\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: named\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 443\n    protocol: tcp\n"
	"  endpoints:\n    - address: backend.test\n      port: 9443\n";

static void test_dns_wait_and_failure(void **state)
{
	struct fixture *f = *state;
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct route_lb lb;
	struct route_out out;

	assert_int_equal(cfg_load_buffer(yaml_dns_only, strlen(yaml_dns_only), "dns.yaml", &f->co, &errs, &c), 0);
	route_lb_build(&lb, c, NULL, NULL);
	struct route_env env = f->env;
	env.cfg = c;
	env.lb = &lb;
	struct route_in in = { .mesh = "open", .nsfd = 7, .port = 443,
			       .orig = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "open", "named")->vip };

	f->resolve_rc = -EAGAIN;
	route_decide(&env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_WAIT);
	assert_null(out.targets);
	in.timed_out = true;
	route_decide(&env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_int_equal(out.reason, REFUSE_NO_ENDPOINT);
	assert_non_null(strstr(out.detail, "timed out"));

	in.timed_out = false;
	f->resolve_rc = -ENOENT;
	env.targets_gen++;
	route_decide(&env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_int_equal(out.reason, REFUSE_NO_ENDPOINT);
	assert_non_null(strstr(out.detail, "no endpoint resolved"));

	/* control: resolved, it forwards */
	f->resolve_rc = 0;
	env.targets_gen++;
	route_decide(&env, &in, &out);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_int_equal(out.targets->n, 2);
	free_out(&out);
	route_lb_clear(&lb);
	cfg_unref(c);
	cfg_errors_clear(&errs);
}

/* the levels fixture, its last endpoint with its level given */
static const char yaml_levels[] = FIXTURE_LEVELS_IP "      priority: 0\n";

/* Priority levels: round robin within the best level, the lower one last. */
static void test_priority_levels(void **state)
{
	struct fixture *f = *state;
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct route_lb lb;
	struct route_out out;
	static const char *const r0[] = { "198.18.0.1:1", "198.18.0.2:2", "198.18.0.9:9" };
	static const char *const r1[] = { "198.18.0.2:2", "198.18.0.1:1", "198.18.0.9:9" };

	assert_int_equal(cfg_load_buffer(yaml_levels, strlen(yaml_levels), "lv.yaml", &f->co, &errs, &c), 0);
	route_lb_build(&lb, c, NULL, NULL);
	struct route_env env = f->env;
	env.cfg = c;
	env.lb = &lb;
	struct route_in in = { .mesh = "open", .nsfd = 7, .port = 80,
			       .orig = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "open", "levels")->vip };
	route_decide(&env, &in, &out);
	labels(&out, r0, 3);
	lb.next[out.cursor]++;
	free_out(&out);
	route_decide(&env, &in, &out);
	labels(&out, r1, 3);
	lb.next[out.cursor]++;
	free_out(&out);
	route_decide(&env, &in, &out); /* the lower level is never first */
	labels(&out, r0, 3);
	free_out(&out);
	route_lb_clear(&lb);
	cfg_unref(c);
	cfg_errors_clear(&errs);
}

static const char yaml_labelled[] =
	"type: Mesh\nname: open\n"
	"---\n"
	"type: Mesh\nname: proxied\nlabels:\n  meshsplice.io/datapath: proxy\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: plain\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n    - address: 198.18.0.1\n      port: 80\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: asked\n  labels:\n    kuma.io/mesh: open\n    meshsplice.io/datapath: proxy\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n    - address: 198.18.0.1\n      port: 80\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: v6\n  labels:\n    kuma.io/mesh: open\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n    - address: 2001:2::5\n      port: 80\n"
	"---\n"
	"apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
	"metadata:\n  name: inmesh\n  labels:\n    kuma.io/mesh: proxied\n"
	"spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
	"  endpoints:\n    - address: 198.18.0.1\n      port: 80\n";

static int path_of(const struct ms_config *c, const char *mesh, const char *name, bool node_proxy, const char **why)
{
	const struct ms_service *s = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, mesh, name);

	assert_non_null(s);
	return steer_port_path(c, s, 0, node_proxy, why);
}

/* Which service ports the kernel serves, and why the others need the forwarder. */
static void test_kernel_path_choice(void **state)
{
	struct fixture *f = *state;
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	const char *why;

	assert_int_equal(path_of(f->cfg, "open", "three", false, &why), MS_PATH_KERNEL);
	assert_null(why);
	assert_int_equal(path_of(f->cfg, "open", "named", false, &why), MS_PATH_PROXY);
	assert_non_null(strstr(why, "DNS name"));
	assert_int_equal(path_of(f->cfg, "open", "secure", false, &why), MS_PATH_PROXY);
	assert_string_equal(why, "TLS origination");
	/* the operator's choice, node-wide */
	assert_int_equal(path_of(f->cfg, "open", "three", true, &why), MS_PATH_PROXY);
	assert_non_null(strstr(why, "--datapath proxy"));

	assert_int_equal(cfg_load_buffer(yaml_labelled, strlen(yaml_labelled), "l.yaml", &f->co, &errs, &c), 0);
	assert_int_equal(path_of(c, "open", "plain", false, &why), MS_PATH_KERNEL); /* control */
	assert_int_equal(path_of(c, "open", "asked", false, &why), MS_PATH_PROXY);
	assert_non_null(strstr(why, "service is labelled"));
	assert_int_equal(path_of(c, "proxied", "inmesh", false, &why), MS_PATH_PROXY);
	assert_non_null(strstr(why, "mesh is labelled"));
	assert_int_equal(path_of(c, "open", "v6", false, &why), MS_PATH_PROXY);
	assert_non_null(strstr(why, "address family"));
	assert_true(steer_mesh_proxied(c, "proxied", false));
	assert_false(steer_mesh_proxied(c, "open", false));
	assert_true(steer_mesh_proxied(c, "open", true));
	cfg_unref(c);
	cfg_errors_clear(&errs);
}

/* A datapath label that is neither auto nor proxy is refused, located. */
static void test_datapath_label_checked(void **state)
{
	static const char bad[] = "type: Mesh\nname: m\nlabels:\n  meshsplice.io/datapath: kernel\n";
	struct fixture *f = *state;
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;

	assert_true(cfg_load_buffer(bad, strlen(bad), "bad.yaml", &f->co, &errs, &c) < 0);
	assert_true(errs.n >= 1);
	assert_non_null(strstr(errs.v[0].msg, "expected auto or proxy"));
	cfg_errors_clear(&errs);
}

/* One list per service port and snapshot, a cursor per connection (#17
 * item 6): 10,000 endpoints are built once, however many connections wait. */
static void test_targets_shared(void **state)
{
	struct fixture *f = *state;
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct route_lb lb;
	struct route_out outs[20];
	enum { N = 10000 };
	size_t cap = 512 + (size_t)N * 64, len;
	char *y = xcalloc(1, cap);

	len = (size_t)snprintf(y, cap,
			       "type: Mesh\nname: open\n---\n"
			       "apiVersion: kuma.io/v1alpha1\nkind: MeshExternalService\n"
			       "metadata:\n  name: many\n  labels:\n    kuma.io/mesh: open\n"
			       "spec:\n  match:\n    type: HostnameGenerator\n    port: 80\n    protocol: tcp\n"
			       "  endpoints:\n");
	for (unsigned i = 0; i < N; i++)
		len += (size_t)snprintf(y + len, cap - len, "    - address: 198.19.%u.%u\n      port: 80\n", i / 250,
					i % 250 + 1);
	assert_int_equal(cfg_load_buffer(y, len, "many.yaml", &f->co, &errs, &c), 0);
	free(y);
	route_lb_build(&lb, c, NULL, NULL);
	struct route_env env = f->env;
	env.cfg = c;
	env.lb = &lb;
	struct route_in in = { .mesh = "open", .nsfd = 7, .port = 80,
			       .orig = cfg_find_service(c, MS_KIND_MESH_EXTERNAL_SERVICE, "open", "many")->vip };

	for (size_t k = 0; k < ARRAY_SIZE(outs); k++) {
		route_decide(&env, &in, &outs[k]);
		assert_int_equal(outs[k].verdict, ROUTE_FORWARD);
		assert_ptr_equal(outs[k].targets, outs[0].targets);
		lb.next[outs[k].cursor]++;
		/* each connection starts at its own cursor */
		char want[32];
		snprintf(want, sizeof(want), "198.19.0.%zu:80", k + 1);
		assert_string_equal(tgt(&outs[k], 0)->label, want);
	}
	assert_int_equal(outs[0].targets->n, N);
	assert_int_equal(outs[0].targets->refs, 1 + (int)ARRAY_SIZE(outs)); /* the memo's and one each */
	/* the k-th try of a connection wraps around the level */
	assert_string_equal(tgt(&outs[19], N - 1)->label, "198.19.0.19:80");

	/* control: once the resolver or health moves on, a new list is built,
	 * and the connections that hold the old one keep it */
	struct route_out fresh;
	env.targets_gen++;
	route_decide(&env, &in, &fresh);
	assert_ptr_not_equal(fresh.targets, outs[0].targets);
	assert_int_equal(outs[0].targets->refs, (int)ARRAY_SIZE(outs));
	free_out(&fresh);
	for (size_t k = 0; k < ARRAY_SIZE(outs); k++)
		free_out(&outs[k]);
	route_lb_clear(&lb);
	cfg_unref(c);
	cfg_errors_clear(&errs);
}

/* A list with DNS endpoints is asked again at least once a second, so that
 * the resolver sees its names used and refreshes them. */
static void test_dns_targets_refreshed(void **state)
{
	struct fixture *f = *state;
	struct route_in in = to_svc(f, "open", "named", 443);
	struct route_out a, b;

	f->env.now_ms = 5000;
	route_decide(&f->env, &in, &a);
	unsigned lookups = f->lookups;
	f->env.now_ms += ROUTE_DNS_TARGETS_MS - 1;
	route_decide(&f->env, &in, &b);
	assert_ptr_equal(a.targets, b.targets);
	assert_int_equal(f->lookups, lookups);
	free_out(&b);
	f->env.now_ms += 1;
	route_decide(&f->env, &in, &b);
	assert_ptr_not_equal(a.targets, b.targets);
	assert_int_equal(f->lookups, lookups + 1);
	free_out(&a);
	free_out(&b);
}
/* MeshPassthrough: the mode over the Mesh flag, IP and CIDR matches at
 * once, Domain matches after a peek (exact before wildcard, per port and
 * protocol), and what a silent client gets. */
static const char pass_yaml[] =
	"type: Mesh\nname: default\nnetworking:\n  outbound:\n    passthrough: false\n"
	"---\n"
	"type: Mesh\nname: all\nnetworking:\n  outbound:\n    passthrough: false\n"
	"---\n"
	"type: Mesh\nname: none\n"
	"---\n"
	"type: MeshPassthrough\nname: a\nmesh: all\nspec:\n  default:\n    passthroughMode: All\n"
	"---\n"
	"type: MeshPassthrough\nname: nn\nmesh: none\nspec:\n  default:\n    passthroughMode: None\n"
	"    appendMatch:\n    - type: CIDR\n      value: 198.18.0.0/15\n"
	"---\n"
	"type: MeshPassthrough\nname: m\nmesh: default\nspec:\n  default:\n    appendMatch:\n"
	"    - type: IP\n      value: 198.18.0.10\n      port: 8080\n"
	"    - type: CIDR\n      value: 2001:2::/48\n"
	"    - type: Domain\n      value: api.ext.test\n      port: 443\n      protocol: tls\n"
	"    - type: Domain\n      value: '*.ext.test'\n      port: 443\n      protocol: tls\n"
	"    - type: Domain\n      value: web.ext.test\n      port: 80\n      protocol: http\n";

static struct route_out decide_pass(const struct route_env *env, const char *mesh, const char *ip, uint16_t port,
				    bool peeked, const char *name, enum ms_match_proto seen)
{
	struct route_in in = to(mesh, ip, port);
	/* static: a refusal's detail may point into its why, which must outlive
	 * this call for the caller's checks (until the next one) */
	static struct route_out out;

	in.peeked = peeked;
	in.name = name;
	in.seen = seen;
	route_decide(env, &in, &out);
	return out;
}

static void test_meshpassthrough(void **state)
{
	struct cfg_errors errs = { 0 };
	struct ms_config *c = NULL;
	struct cfg_opts co;
	struct route_out out;

	(void)state;
	cfg_opts_init(&co);
	assert_int_equal(cfg_load_buffer(pass_yaml, strlen(pass_yaml), "p.yaml", &co, &errs, &c), 0);
	cfg_errors_clear(&errs);
	struct route_env env = { .cfg = c };

	/* All over passthrough: false; None over passthrough: true */
	out = decide_pass(&env, "all", "198.19.1.1", 5, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_string_equal(out.label, "passthrough");
	free_out(&out);
	out = decide_pass(&env, "none", "198.18.0.10", 8080, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_REFUSE); /* its matches mean nothing under None */
	assert_int_equal(out.reason, REFUSE_PASSTHROUGH);
	assert_non_null(strstr(out.detail, "None"));
	/* an IP match on its port; the same address on another port is refused */
	out = decide_pass(&env, "default", "198.18.0.10", 8080, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_non_null(out.match);
	assert_string_equal(out.label, "passthrough IP (MeshPassthrough/m appendMatch[0])");
	free_out(&out);
	out = decide_pass(&env, "default", "198.18.0.10", 8081, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_int_equal(out.reason, REFUSE_PASS_NO_MATCH);
	/* a CIDR on every port, IPv6 */
	out = decide_pass(&env, "default", "2001:2::99", 9999, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	free_out(&out);
	/* a port with Domain rules: look first */
	out = decide_pass(&env, "default", "198.18.0.20", 443, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_PEEK);
	assert_null(out.targets);
	/* then the name: exact before wildcard */
	out = decide_pass(&env, "default", "198.18.0.20", 443, true, "api.ext.test", MS_MATCH_TLS);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_string_equal(out.match->domain, "api.ext.test");
	assert_non_null(strstr(out.label, "appendMatch[2]"));
	assert_string_equal(tgt(&out, 0)->label, "198.18.0.20:443"); /* the original destination */
	free_out(&out);
	out = decide_pass(&env, "default", "198.18.0.20", 443, true, "a.b.ext.test", MS_MATCH_TLS);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	assert_string_equal(out.match->domain, "*.ext.test");
	free_out(&out);
	/* refused: another name, the right name in another protocol, no name */
	out = decide_pass(&env, "default", "198.18.0.20", 443, true, "evil.test", MS_MATCH_TLS);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_int_equal(out.reason, REFUSE_PASS_NO_MATCH);
	assert_non_null(strstr(out.detail, "evil.test"));
	out = decide_pass(&env, "default", "198.18.0.20", 443, true, "api.ext.test", MS_MATCH_HTTP);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	out = decide_pass(&env, "default", "198.18.0.20", 443, true, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_non_null(strstr(out.detail, "no name"));
	out = decide_pass(&env, "default", "198.18.0.20", 80, true, "web.ext.test", MS_MATCH_HTTP);
	assert_int_equal(out.verdict, ROUTE_FORWARD);
	free_out(&out);
	/* a port with no Domain rule: refused at once, never peeked */
	out = decide_pass(&env, "default", "198.18.0.20", 8443, false, NULL, MS_MATCH_TCP);
	assert_int_equal(out.verdict, ROUTE_REFUSE);
	assert_int_equal(out.reason, REFUSE_PASS_NO_MATCH);
	cfg_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passthrough, setup, teardown),
		cmocka_unit_test(test_meshpassthrough),
		cmocka_unit_test_setup_teardown(test_failover_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lb_carried_over_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_and_unix_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_wait_and_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_path_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priority_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_targets_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dns_targets_refreshed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_datapath_label_checked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
