// SPDX-License-Identifier: MIT
/* The iptables engine without root: rendering against golden files, and
 * apply/rollback against fake iptables tools (MESHSPLICE_IPTABLES_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tproxy.h"
#include "util.h"

#ifndef GOLDEN_DIR
#error GOLDEN_DIR must point at tests/golden/iptables
#endif

static void golden(const char *name, const struct tp_opts *o, int family)
{
	char path[512], *want;
	size_t len;
	char *got = tp_rules_render(o, family);

	snprintf(path, sizeof(path), "%s/%s.rules", GOLDEN_DIR, name);
	assert_int_equal(read_file(path, 1 << 20, &want, &len), 0);
	if (!streq(got, want))
		print_message("%s differs:\n--- want\n%s--- got\n%s", name, want, got);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void defaults(struct tp_opts *o)
{
	tp_opts_init(o);
	o->agent_cgroup = "/system.slice/meshsplice.service";
	cidr_parse("242.0.0.0/8", &o->vip_cidrs[0]);
	cidr_parse("241.0.0.0/8", &o->vip_cidrs[1]);
	o->n_vip_cidrs = 2;
}

static void exclusions(struct tp_opts *o, bool v4port8080)
{
	defaults(o);
	o->excl_ports[o->n_excl_ports++] = 22;
	if (v4port8080)
		o->excl_ports[o->n_excl_ports++] = 8080;
	cidr_parse("10.0.0.0/8", &o->excl_cidrs[o->n_excl_cidrs++]);
	cidr_parse("2001:db8::/32", &o->excl_cidrs[o->n_excl_cidrs++]);
	o->excl_uids[o->n_excl_uids++] = 1337;
}

static void test_golden(void **state)
{
	(void)state;
	struct tp_opts o;

	defaults(&o);
	golden("v4-default", &o, AF_INET);
	golden("v6-default", &o, AF_INET6);
	exclusions(&o, true);
	golden("v4-exclusions", &o, AF_INET);
	exclusions(&o, false);
	golden("v6-exclusions", &o, AF_INET6);
	defaults(&o);
	o.capture_all = false;
	golden("v4-no-capture", &o, AF_INET);
	defaults(&o);
	o.dns_port = 15053;
	o.listen_port = 15006;
	o.mark = 0x1234;
	golden("v4-dns", &o, AF_INET);
}

static char fakedir[64];

static void fake(const char *name, const char *script)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", fakedir, name);
	assert_int_equal(write_file_atomic(path, script, strlen(script), 0755), 0);
}

static int setup_fakes(void **state)
{
	(void)state;
	/* Rollback also removes our VIP routes: do that in a namespace of our
	 * own when we may (root), never in the machine's. Unprivileged, the
	 * route dump is read-only and there is nothing of ours to delete. */
	if (geteuid() == 0 && unshare(CLONE_NEWNET) < 0)
		return -1;
	snprintf(fakedir, sizeof(fakedir), "/tmp/ms-fake-ipt-XXXXXX");
	if (!mkdtemp(fakedir))
		return -1;
	setenv("MESHSPLICE_IPTABLES_DIR", fakedir, 1);
	return 0;
}

static int teardown_fakes(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fakedir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_restore_error_names_the_line(void **state)
{
	(void)state;
	struct tp_opts o;
	char *err = NULL;
	char log[256], *text;
	size_t len;

	/* save: an empty nat table; restore v4: fails on line 4; every call logged */
	snprintf(log, sizeof(log), "%s/calls", fakedir);
	char *save = xasprintf("#!/bin/sh\necho \"$0 $*\" >>%s\nprintf '*nat\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n'\n", log);
	char *restore4 = xasprintf("#!/bin/sh\necho \"$0 $*\" >>%s\ncat >/dev/null\n"
				   "echo 'iptables-restore v1.8.9 (nf_tables): RULE_APPEND failed (No such file or directory): rule in chain X' >&2\n"
				   "echo 'Error occurred at line: 4' >&2\necho 'iptables-restore: line 4 failed' >&2\nexit 1\n", log);
	fake("iptables-nft-save", save);
	fake("ip6tables-nft-save", save);
	fake("iptables-nft-restore", restore4);
	fake("ip6tables-nft-restore", restore4);
	defaults(&o);
	assert_true(tp_install(-1, TP_BACKEND_NFT, &o, &err) < 0);
	print_message("error: %s\n", err);
	/* the failing line is quoted back, with the tool's own words */
	assert_non_null(strstr(err, "line 4 failed: \"-A MESHSPLICE_OUTPUT -d 242.0.0.0/8 -p tcp -j REDIRECT --to-ports 15001\""));
	assert_non_null(strstr(err, "RULE_APPEND failed"));
	free(err);
	assert_int_equal(read_file(log, 1 << 20, &text, &len), 0);
	/* nothing was applied, so nothing was applied to IPv6 either */
	assert_null(strstr(text, "ip6tables-nft-restore"));
	free(text);
	free(save);
	free(restore4);
}

static void test_half_applied_rolls_back(void **state)
{
	(void)state;
	struct tp_opts o;
	char *err = NULL, log[256], *text;
	size_t len;

	/* IPv4 succeeds and is then visible in save; IPv6 fails: IPv4 must be taken back out */
	snprintf(log, sizeof(log), "%s/calls2", fakedir);
	char *save4 = xasprintf("#!/bin/sh\nif [ -f %s/applied ]; then printf '*nat\\n:MESHSPLICE_OUTPUT - [0:0]\\n-A OUTPUT -p tcp -j MESHSPLICE_OUTPUT\\nCOMMIT\\n'; "
				"else printf '*nat\\nCOMMIT\\n'; fi\n", fakedir);
	char *restore4 = xasprintf("#!/bin/sh\ncat >>%s\ntouch %s/applied\n", log, fakedir);
	char *restore6 = xstrdup("#!/bin/sh\ncat >/dev/null\necho 'ip6tables-restore: line 2 failed' >&2\nexit 2\n");
	fake("iptables-nft-save", save4);
	fake("ip6tables-nft-save", "#!/bin/sh\nprintf '*nat\\nCOMMIT\\n'\n");
	fake("iptables-nft-restore", restore4);
	fake("ip6tables-nft-restore", restore6);
	defaults(&o);
	assert_true(tp_install(-1, TP_BACKEND_NFT, &o, &err) < 0);
	assert_non_null(strstr(err, "line 2 failed"));
	free(err);
	assert_int_equal(read_file(log, 1 << 20, &text, &len), 0);
	/* the second IPv4 restore removed our jump and our chain */
	assert_non_null(strstr(text, "-D OUTPUT -p tcp -j MESHSPLICE_OUTPUT"));
	assert_non_null(strstr(text, "-X MESHSPLICE_OUTPUT"));
	free(text);
	free(save4);
	free(restore4);
	free(restore6);
}

/* The kernel path under iptables: DNAT rules that spread a VIP's endpoints
 * evenly (rule i takes 1/(n-i) of what is left), with the probabilities
 * written as iptables-save prints them back, so that verify sees no drift;
 * each family gets only its own. */
static void test_dnat_rules(void **state)
{
	struct tp_opts o;
	struct tp_dnat_ep eps[4];
	struct tp_dnat d[2];

	(void)state;
	defaults(&o);
	const char *ips[] = { "198.18.3.2", "198.18.3.3", "198.18.3.4", "2001:2::9" };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(addr_parse(ips[i], &eps[i].ip), 0);
		eps[i].port = (uint16_t)(8080 + i);
	}
	assert_int_equal(addr_parse("242.0.0.60", &d[0].vip), 0);
	d[0].port = 80;
	d[0].eps = eps;
	d[0].n_eps = 3;
	assert_int_equal(addr_parse("2001:2::60", &d[1].vip), 0);
	d[1].port = 443;
	d[1].eps = &eps[3];
	d[1].n_eps = 1;
	o.dnat = d;
	o.n_dnat = 2;
	char *v4 = tp_rules_render(&o, AF_INET), *v6 = tp_rules_render(&o, AF_INET6);
	const char *want4 =
		"-A MESHSPLICE_OUTPUT -d 242.0.0.60/32 -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 198.18.3.2:8080\n"
		"-A MESHSPLICE_OUTPUT -d 242.0.0.60/32 -p tcp -m tcp --dport 80 -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 198.18.3.3:8081\n"
		"-A MESHSPLICE_OUTPUT -d 242.0.0.60/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.18.3.4:8082\n";
	const char *want6 =
		"-A MESHSPLICE_OUTPUT -d 2001:2::60/128 -p tcp -m tcp --dport 443 -j DNAT --to-destination [2001:2::9]:8083\n";
	assert_non_null(strstr(v4, want4));
	assert_null(strstr(v4, "2001:2::"));
	assert_non_null(strstr(v6, want6));
	assert_null(strstr(v6, "242.0.0.60"));
	/* before the VIP ranges' REDIRECT, which would take them otherwise */
	assert_true(strstr(v4, want4) < strstr(v4, "-d 242.0.0.0/8 -p tcp -j REDIRECT"));
	/* control: without them the chain has no DNAT */
	o.n_dnat = 0;
	char *none = tp_rules_render(&o, AF_INET);
	assert_null(strstr(none, "DNAT"));
	free(v4);
	free(v6);
	free(none);
}

/* With health: a VIP none of whose endpoints is healthy gets no DNAT but a
 * RETURN in nat (before the VIP ranges' REDIRECT, which would hand it to the
 * agent) and, like every kernel-path VIP, a REJECT with a reset in the
 * filter table's chain, after the same exemptions as nat's (an excluded
 * port is not refused); a port with no endpoint at all is neither. The
 * filter part has its VIPs whatever their health, so a health change leaves
 * it as it was. */
static void test_dnat_health_rules(void **state)
{
	struct tp_opts o;
	struct tp_dnat_ep ep;
	struct tp_dnat d[3];

	(void)state;
	exclusions(&o, false);
	assert_int_equal(addr_parse("198.18.3.2", &ep.ip), 0);
	ep.port = 8090;
	memset(d, 0, sizeof(d));
	assert_int_equal(addr_parse("242.0.0.53", &d[0].vip), 0);
	d[0].port = 80;
	d[0].unhealthy = true; /* none healthy */
	assert_int_equal(addr_parse("242.0.0.50", &d[1].vip), 0);
	d[1].port = 80;
	d[1].eps = &ep;
	d[1].n_eps = 1;
	assert_int_equal(addr_parse("242.0.0.55", &d[2].vip), 0);
	d[2].port = 81; /* no endpoint, not unhealthy: nothing in nat */
	o.dnat = d;
	o.n_dnat = 3;
	char *nat = tp_rules_render(&o, AF_INET), *filter = tp_refuse_render(&o, AF_INET);
	const char *ret = "-A MESHSPLICE_OUTPUT -d 242.0.0.53/32 -p tcp -m tcp --dport 80 -j RETURN\n";
	assert_non_null(strstr(nat, ret));
	assert_null(strstr(nat, "-d 242.0.0.53/32 -p tcp -m tcp --dport 80 -j DNAT"));
	assert_null(strstr(nat, "242.0.0.55"));
	assert_non_null(strstr(nat, "-d 242.0.0.50/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.18.3.2:8090\n"));
	assert_true(strstr(nat, ret) < strstr(nat, "-d 242.0.0.0/8 -p tcp -j REDIRECT"));
	/* the refusing chain's rules: the exemptions, then each kernel-path VIP:port */
#define REFUSE_RULES                                                                                              \
	"-A MESHSPLICE_REFUSE -m cgroup --path \"/system.slice/meshsplice.service\" -m mark --mark 0x4d53 -j RETURN\n" \
	"-A MESHSPLICE_REFUSE -m owner --uid-owner 1337 -j RETURN\n" \
	"-A MESHSPLICE_REFUSE -p tcp -m tcp --dport 22 -j RETURN\n" \
	"-A MESHSPLICE_REFUSE -d 10.0.0.0/8 -j RETURN\n" \
	"-A MESHSPLICE_REFUSE -d 242.0.0.53/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset\n" \
	"-A MESHSPLICE_REFUSE -d 242.0.0.50/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset\n" \
	"-A MESHSPLICE_REFUSE -d 242.0.0.55/32 -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset\n"
	const char *want_filter = "*filter\n:MESHSPLICE_REFUSE - [0:0]\n" REFUSE_RULES "COMMIT\n";
	assert_string_equal(filter, want_filter);
	/* verify's lines: the SYN-only jump as iptables-save prints it, then the rules */
	char *expected = tp_refuse_expected(&o, AF_INET);
	assert_string_equal(expected,
			    "-A OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j MESHSPLICE_REFUSE\n" REFUSE_RULES);
#undef REFUSE_RULES
	/* health moves (the refused one back, the other out): the filter part is the same */
	d[0].unhealthy = false;
	d[0].eps = &ep;
	d[0].n_eps = 1;
	d[1].n_eps = 0;
	d[1].unhealthy = true;
	char *nat2 = tp_rules_render(&o, AF_INET), *filter2 = tp_refuse_render(&o, AF_INET);
	assert_string_equal(filter2, filter);
	assert_non_null(strstr(nat2, "-A MESHSPLICE_OUTPUT -d 242.0.0.50/32 -p tcp -m tcp --dport 80 -j RETURN\n"));
	assert_non_null(strstr(nat2, "-d 242.0.0.53/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.18.3.2:8090\n"));
	assert_null(strstr(nat2, "-d 242.0.0.53/32 -p tcp -m tcp --dport 80 -j RETURN"));
	/* control: IPv6 has no kernel-path VIP here, and without any the filter table is left alone */
	assert_null(tp_refuse_render(&o, AF_INET6));
	char *expected6 = tp_refuse_expected(&o, AF_INET6);
	assert_string_equal(expected6, "");
	o.n_dnat = 0;
	assert_null(tp_refuse_render(&o, AF_INET));
	char *nat0 = tp_rules_render(&o, AF_INET);
	assert_null(strstr(nat0, "--dport 80 -j RETURN"));
	free(nat);
	free(filter);
	free(expected);
	free(nat2);
	free(filter2);
	free(expected6);
	free(nat0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_dnat_rules),
		cmocka_unit_test(test_dnat_health_rules),
		cmocka_unit_test(test_restore_error_names_the_line),
		cmocka_unit_test(test_half_applied_rolls_back),
	};
	return cmocka_run_group_tests(tests, setup_fakes, teardown_fakes);
}
