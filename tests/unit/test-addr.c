// SPDX-License-Identifier: MIT
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "addr.h"
#include "util.h"

static void test_parse_fmt(void **state)
{
	(void)state;
	struct ms_addr a;
	char buf[64];

	assert_int_equal(addr_parse("198.18.0.1", &a), 0);
	assert_true(addr_is_v4(&a));
	assert_string_equal(addr_fmt(&a, buf, sizeof(buf)), "198.18.0.1");
	assert_string_equal(addr_port_fmt(&a, 80, buf, sizeof(buf)), "198.18.0.1:80");
	assert_int_equal(addr_parse("2001:2::1", &a), 0);
	assert_false(addr_is_v4(&a));
	assert_string_equal(addr_port_fmt(&a, 443, buf, sizeof(buf)), "[2001:2::1]:443");
	assert_int_equal(addr_parse("::ffff:198.18.0.1", &a), 0);
	assert_true(addr_is_v4(&a));
	assert_int_equal(addr_parse("198.18.0.256", &a), -EINVAL);
	assert_int_equal(addr_parse("", &a), -EINVAL);
}

static void test_cidr(void **state)
{
	(void)state;
	struct ms_cidr c;
	struct ms_addr a;
	char buf[64];

	assert_int_equal(cidr_parse("242.0.0.0/8", &c), 0);
	assert_int_equal(cidr_user_plen(&c), 8);
	assert_string_equal(cidr_fmt(&c, buf, sizeof(buf)), "242.0.0.0/8");
	addr_parse("242.9.9.9", &a);
	assert_true(cidr_contains(&c, &a));
	addr_parse("241.9.9.9", &a);
	assert_false(cidr_contains(&c, &a));
	addr_parse("2001:2::1", &a);
	assert_false(cidr_contains(&c, &a));
	assert_int_equal(cidr_parse("242.0.0.1/8", &c), -EINVAL); /* host bits set */
	assert_int_equal(cidr_parse("242.0.0.0/33", &c), -EINVAL);
	assert_int_equal(cidr_parse("242.0.0.0/", &c), -EINVAL);
	assert_int_equal(cidr_parse("2001:2::/48", &c), 0);
	addr_parse("2001:2:0:1::1", &a);
	assert_true(cidr_contains(&c, &a));
}

static void test_local(void **state)
{
	(void)state;
	const char *local[] = { "127.0.0.1", "127.9.9.9", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1" };
	const char *remote[] = { "198.18.0.1", "2001:2::1", "::2", "128.0.0.1" };
	struct ms_addr a;

	for (size_t i = 0; i < ARRAY_SIZE(local); i++) {
		addr_parse(local[i], &a);
		assert_true(addr_is_local(&a));
	}
	for (size_t i = 0; i < ARRAY_SIZE(remote); i++) {
		addr_parse(remote[i], &a);
		assert_false(addr_is_local(&a));
	}
}

static void test_dns_names(void **state)
{
	(void)state;
	assert_true(dns_name_valid("example.com"));
	assert_true(dns_name_valid("mes-tcp.svc.meshext.local"));
	assert_true(dns_name_valid("a_b.test."));
	assert_false(dns_name_valid("1.2.3.4"));
	assert_false(dns_name_valid("-a.test"));
	assert_false(dns_name_valid("a-.test"));
	assert_false(dns_name_valid("a..test"));
	assert_false(dns_name_valid("a b"));
	assert_false(dns_name_valid(""));
	char long_label[80];
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_false(dns_name_valid(long_label));
}

static void test_log_escape(void **state)
{
	(void)state;
	assert_string_equal(log_escape("a\nb\"c"), "a\\x0ab\\x22c");
	const char *x = log_escape("one"), *y = log_escape("two");
	assert_string_equal(x, "one");
	assert_string_equal(y, "two");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fmt), cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_local), cmocka_unit_test(test_dns_names),
		cmocka_unit_test(test_log_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
