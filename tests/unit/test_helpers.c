/* test_helpers.c - lib's small shared helpers as case tables: prefix text
 * both ways (lib/prefix.c), its order and containment, action names
 * (lib/vt_policy.c), the configuration boolean (lib/cfgerr.c) and the
 * monotonic clock (lib/clock.h).  Every bad input
 * has a row and the error it must get. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cfgerr.h"
#include "clock.h"
#include "prefix.h"
#include "vtable.h"

/* test_prefix_parse - text to prefix: result, and the prefix printed back */
static void test_prefix_parse(void **state)
{
	static const struct {
		const char *s;
		int ret;          /* 0, -EINVAL or -EDOM */
		const char *want; /* moat_prefix_str of the result (0 and -EDOM) */
	} cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8" },
		{ "1.2.3.4", 0, "1.2.3.4/32" },
		{ "0.0.0.0/0", 0, "0.0.0.0/0" },
		{ "255.255.255.255/32", 0, "255.255.255.255/32" },
		{ "192.0.2.0/024", 0, "192.0.2.0/24" },          /* leading zero: still decimal */
		{ "2001:db8::/32", 0, "2001:db8::/32" },
		{ "2001:DB8::1", 0, "2001:db8::1/128" },
		{ "::/0", 0, "::/0" },
		{ "::ffff:127.0.0.2", 0, "::ffff:127.0.0.2/128" },
		/* bits past the length: the network, flagged */
		{ "10.0.0.1/8", -EDOM, "10.0.0.0/8" },
		{ "192.0.2.255/25", -EDOM, "192.0.2.128/25" },
		{ "2001:db8::1/32", -EDOM, "2001:db8::/32" },
		{ "1.2.3.4/0", -EDOM, "0.0.0.0/0" },
		/* not a prefix */
		{ "", -EINVAL, NULL },
		{ "x", -EINVAL, NULL },
		{ "/24", -EINVAL, NULL },
		{ "1.2.3", -EINVAL, NULL },
		{ "1.2.3.256", -EINVAL, NULL },
		{ "1.2.3.4/", -EINVAL, NULL },
		{ "1.2.3.4/a", -EINVAL, NULL },
		{ "1.2.3.4/33", -EINVAL, NULL },
		{ "1.2.3.4/-0", -EINVAL, NULL },
		{ "1.2.3.4/+8", -EINVAL, NULL },
		{ "1.2.3.4/ 8", -EINVAL, NULL },
		{ "1.2.3.4/8 ", -EINVAL, NULL },
		{ "1.2.3.4/99999999999999999999", -EINVAL, NULL },
		{ "1.2.3.4/8/8", -EINVAL, NULL },
		{ " 1.2.3.4", -EINVAL, NULL },
		{ "2001:db8::/129", -EINVAL, NULL },
		{ "2001:db8:::/32", -EINVAL, NULL },
		{ "0000:0000:0000:0000:0000:0000:0000:0000:0000/1", -EINVAL, NULL }, /* too long */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct moat_prefix p, zero = { 0 };
		char got[MOAT_PREFIX_STRLEN];
		int r = moat_prefix_parse(cases[i].s, &p);

		if (r != cases[i].ret)
			fail_msg("parse '%s': got %d want %d", cases[i].s, r, cases[i].ret);
		if (!cases[i].want) {
			if (memcmp(&p, &zero, sizeof(p)))
				fail_msg("parse '%s': failed but left a prefix behind", cases[i].s);
			continue;
		}
		moat_prefix_str(&p, got, sizeof(got));
		if (strcmp(got, cases[i].want))
			fail_msg("parse '%s': got %s want %s", cases[i].s, got, cases[i].want);
	}
	struct moat_prefix p;
	assert_int_equal(moat_prefix_parse(NULL, &p), -EINVAL);
}

/* test_prefix_str - the longest prefix fits MOAT_PREFIX_STRLEN; a short
 * buffer is cut, never overrun */
static void test_prefix_str(void **state)
{
	struct moat_prefix p;
	char buf[MOAT_PREFIX_STRLEN], small[8];

	(void)state;
	assert_int_equal(moat_prefix_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", &p), 0);
	moat_prefix_str(&p, buf, sizeof(buf));
	assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	assert_int_equal(moat_prefix_parse("192.0.2.0/24", &p), 0);
	assert_string_equal(moat_prefix_str(&p, small, sizeof(small)), "192.0.2");
}

/* test_prefix_order - moat_prefix_cmp: family, then address, then length */
static void test_prefix_order(void **state)
{
	static const struct { const char *a, *b; int want; } cases[] = {
		{ "10.0.0.0/8", "10.0.0.0/8", 0 },
		{ "10.0.0.0/8", "10.0.0.0/16", -1 },
		{ "10.0.0.0/16", "10.0.0.0/8", 1 },
		{ "10.0.0.0/8", "11.0.0.0/8", -1 },
		{ "11.0.0.0/8", "10.0.0.0/16", 1 },
		{ "255.255.255.255", "::/0", -1 },     /* IPv4 first */
		{ "2001:db8::/32", "2001:db8::/48", -1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct moat_prefix a, b;

		assert_int_equal(moat_prefix_parse(cases[i].a, &a), 0);
		assert_int_equal(moat_prefix_parse(cases[i].b, &b), 0);
		int got = moat_prefix_cmp(&a, &b);
		got = got < 0 ? -1 : got > 0;
		if (got != cases[i].want)
			fail_msg("cmp %s %s: got %d want %d", cases[i].a, cases[i].b, got, cases[i].want);
	}
}

/* test_prefix_contains - moat_prefix_contains and moat_prefix_match */
static void test_prefix_contains(void **state)
{
	static const struct { const char *p, *a; int want; } cases[] = {
		{ "127.255.255.0/24", "127.255.255.254", 1 },
		{ "127.255.255.0/24", "127.255.254.1", 0 },
		{ "127.0.0.1", "127.0.0.1", 1 },
		{ "127.0.0.1", "127.0.0.2", 0 },
		{ "0.0.0.0/0", "1.2.3.4", 1 },
		{ "127.0.0.0/31", "127.0.0.1", 1 },
		{ "127.0.0.0/31", "127.0.0.2", 0 },
		{ "10.0.0.0/8", "10.1.0.0/16", 1 },     /* a longer prefix inside */
		{ "10.1.0.0/16", "10.0.0.0/8", 0 },     /* a shorter one is not */
		{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/33", "2001:db8:8000::1", 0 },
		{ "::/0", "1.2.3.4", 0 },               /* other family */
		{ "0.0.0.0/0", "::1", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct moat_prefix p, a;

		assert_int_equal(moat_prefix_parse(cases[i].p, &p), 0);
		assert_int_equal(moat_prefix_parse(cases[i].a, &a), 0);
		int got = moat_prefix_contains(&p, &a);
		if (got != cases[i].want)
			fail_msg("%s contains %s: got %d want %d", cases[i].p, cases[i].a, got,
				 cases[i].want);
		int full = a.plen == (a.family == MOAT_AF_INET ? 32 : 128);
		if (full && moat_prefix_match(&p, a.family, a.addr) != cases[i].want)
			fail_msg("%s matches %s: got %d want %d", cases[i].p, cases[i].a, !got,
				 cases[i].want);
	}
}

/* test_action_names - vt_action_name and vt_action_parse, both ways */
static void test_action_names(void **state)
{
	static const struct { const char *s; int ret; uint32_t act; } cases[] = {
		{ "pass", 0, MOAT_ACT_PASS },
		{ "tarpit", 0, MOAT_ACT_TARPIT },
		{ "drop", 0, MOAT_ACT_DROP },
		{ "allow", 0, MOAT_ACT_ALLOW },
		{ "DROP", 0, MOAT_ACT_DROP },
		{ "Tarpit", 0, MOAT_ACT_TARPIT },
		{ "", -EINVAL, 0 },
		{ "dro", -EINVAL, 0 },
		{ "drops", -EINVAL, 0 },
		{ " drop", -EINVAL, 0 },
		{ "?", -EINVAL, 0 },
		{ NULL, -EINVAL, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t a = 99;
		int r = vt_action_parse(cases[i].s, &a);

		if (r != cases[i].ret)
			fail_msg("parse '%s': got %d want %d", cases[i].s ? cases[i].s : "(null)", r,
				 cases[i].ret);
		if (r == 0 && a != cases[i].act)
			fail_msg("parse '%s': got %u want %u", cases[i].s, a, cases[i].act);
		if (r != 0 && a != 99)
			fail_msg("parse '%s': failed but wrote %u", cases[i].s ? cases[i].s : "(null)", a);
	}
	for (uint32_t a = 0; a < MOAT_ACT__MAX; a++) {
		uint32_t back;

		assert_int_equal(vt_action_parse(vt_action_name(a), &back), 0);
		assert_int_equal(back, a);
	}
	assert_string_equal(vt_action_name(MOAT_ACT__MAX), "?");
	assert_string_equal(vt_action_name(UINT32_MAX), "?");
}

/* test_cfg_bool - the one boolean moat-controld and moat-smtpd read */
static void test_cfg_bool(void **state)
{
	static const struct {
		const char *s;
		int ret, want; /* want: the value when ret is 0 */
	} cases[] = {
		{ "yes", 0, 1 }, { "true", 0, 1 }, { "on", 0, 1 }, { "1", 0, 1 },
		{ "no", 0, 0 },  { "false", 0, 0 }, { "off", 0, 0 }, { "0", 0, 0 },
		{ "YES", 0, 1 }, { "True", 0, 1 }, { "oN", 0, 1 },
		{ "NO", 0, 0 },  { "False", 0, 0 }, { "OFF", 0, 0 },
		{ "", -1, 0 },   { "maybe", -1, 0 }, { "2", -1, 0 }, { "-1", -1, 0 },
		{ "yes ", -1, 0 }, { " yes", -1, 0 }, { "ye", -1, 0 }, { "yess", -1, 0 },
		{ "01", -1, 0 }, { "o", -1, 0 }, { "y", -1, 0 }, { "n", -1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int v = 42, r = moat_cfg_bool(cases[i].s, &v);

		if (r != cases[i].ret)
			fail_msg("'%s': got %d want %d", cases[i].s, r, cases[i].ret);
		if (r == 0 && v != cases[i].want)
			fail_msg("'%s': value %d want %d", cases[i].s, v, cases[i].want);
		if (r != 0 && v != 42)
			fail_msg("'%s': refused but wrote %d", cases[i].s, v);
	}
}

/* test_clock - never goes back, and the three units agree */
static void test_clock(void **state)
{
	(void)state;
	uint64_t n0 = moat_clock_ns();
	int64_t m0 = moat_clock_ms();
	double f0 = moat_clock_ms_f();
	uint64_t n1 = moat_clock_ns();
	int64_t m1 = moat_clock_ms();
	double f1 = moat_clock_ms_f();

	assert_true(n1 >= n0 && m1 >= m0 && f1 >= f0);
	assert_true(m0 >= (int64_t)(n0 / 1000000));
	assert_true(m0 <= (int64_t)(n1 / 1000000));
	assert_true(f0 >= (double)m0 && f0 < (double)m1 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse),
		cmocka_unit_test(test_prefix_str),
		cmocka_unit_test(test_prefix_order),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_action_names),
		cmocka_unit_test(test_cfg_bool),
		cmocka_unit_test(test_clock),
	};
	return cmocka_run_group_tests_name("helpers", tests, NULL, NULL);
}
