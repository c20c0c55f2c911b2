/* test_sanity.c - RFC 5782 test points and "lists the world" detection on
 * listing sets; the listed share is exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "lvec.h"
#include "owner.h"
#include "sanity.h"

/* L - build a listing from "prefix" or "!prefix" */
static void add(struct moat_lvec *lv, const char *s)
{
	struct moat_listing l = { .code = 0x7f000002, .source = 1 };

	if (*s == '!') {
		l.exclude = 1;
		l.code = 0;
		s++;
	}
	assert_int_equal(moat_prefix_parse(s, &l.pfx), 0);
	moat_lvec_push(lv, &l);
}

struct scase {
	const char *name;
	const char *l[6];
	int quarantine;
	const char *reason; /* substring */
};

static const struct scase scases[] = {
	{ "fine", { "127.0.0.2/32", "192.0.2.10/32", "203.0.113.0/24" }, 0, "" },
	{ "no test point", { "192.0.2.10/32" }, 1, "127.0.0.2 is not listed" },
	{ "empty", { NULL }, 1, "127.0.0.2 is not listed" },
	{ "127.0.0.1 listed", { "127.0.0.0/24", "192.0.2.10/32" }, 1, "127.0.0.1 is listed" },
	{ "127.0.0.1 carved out", { "127.0.0.0/24", "!127.0.0.1/32" }, 0, "" },
	{ "0/0 wildcard", { "0.0.0.0/0", "127.0.0.2/32" }, 1, "0.0.0.0/0 is shorter than /8" },
	{ "v6 ::/0", { "::/0", "127.0.0.2/32" }, 1, "::/0 is shorter than /16" },
	{ "v6 without its test point", { "127.0.0.2/32", "2001:db8::1/128" }, 1,
	  "::ffff:7f00:2 is not listed" },
	{ "v6 with test points", { "127.0.0.2/32", "2001:db8::1/128", "::ffff:7f00:2/128" }, 0, "" },
	{ "excluded test point", { "127.0.0.0/8", "!127.0.0.0/24" }, 1, "127.0.0.2 is not listed" },
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		const struct scase *c = &scases[i];
		struct moat_lvec lv = { 0 };
		struct moat_sanity_cfg cfg = { 0 };
		struct moat_sanity_result r;
		for (size_t j = 0; j < 6 && c->l[j]; j++)
			add(&lv, c->l[j]);
		assert_int_equal(moat_sanity_check(&cfg, lv.v, lv.n, &r), 0);
		if (r.quarantine != c->quarantine || !strstr(r.reason, c->reason))
			fail_msg("case %s: got quarantine=%d '%s', want %d '%s'", c->name,
				 r.quarantine, r.reason, c->quarantine, c->reason);
		moat_lvec_free(&lv);
	}
}

static void test_share(void **state)
{
	struct moat_lvec lv = { 0 };
	struct moat_sanity_cfg cfg = { 0 };
	struct moat_sanity_result r;
	char p[32];

	(void)state;
	add(&lv, "127.0.0.2/32");
	add(&lv, "10.0.0.0/8");
	add(&lv, "!10.0.0.0/9");
	add(&lv, "10.1.0.0/16"); /* inside the exclusion: listed again */
	add(&lv, "10.1.0.0/16"); /* duplicate: counted once */
	assert_int_equal(moat_sanity_check(&cfg, lv.v, lv.n, &r), 0);
	double want = ldexp(1, -32) + ldexp(1, -9) + ldexp(1, -16);
	if (fabs(r.v4_share - want) > 1e-15)
		fail_msg("share %.12g want %.12g", r.v4_share, want);
	assert_false(r.quarantine);
	/* 300 distinct /10s: 29% of the space */
	for (int i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "%d.%d.0.0/10", 1 + i / 4, (i % 4) * 64);
		add(&lv, p);
	}
	assert_int_equal(moat_sanity_check(&cfg, lv.v, lv.n, &r), 0);
	assert_true(r.quarantine);
	assert_non_null(strstr(r.reason, "of the IPv4 space"));
	cfg.max_v4_share = 0.5;
	assert_int_equal(moat_sanity_check(&cfg, lv.v, lv.n, &r), 0);
	assert_false(r.quarantine);
	moat_lvec_free(&lv);
}

static void test_skip_testpoints(void **state)
{
	struct moat_lvec lv = { 0 };
	struct moat_sanity_cfg cfg = { .skip_testpoints = true };
	struct moat_sanity_result r;

	(void)state;
	add(&lv, "192.0.2.1/32");
	assert_int_equal(moat_sanity_check(&cfg, lv.v, lv.n, &r), 0);
	assert_false(r.quarantine);
	moat_lvec_free(&lv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_skip_testpoints),
	};
	return cmocka_run_group_tests_name("sanity", tests, NULL, NULL);
}
