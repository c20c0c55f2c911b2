/* test_owner.c - DNSBL owner names decode to exactly the prefixes a
 * resolver's query names would reach, and nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "owner.h"

struct dec_case {
	const char *name;
	int ret;          /* 0 or -EINVAL (as -1 here) */
	const char *v4;   /* expected IPv4 reading or NULL */
	const char *v6;   /* expected IPv6 reading or NULL */
	int wildcard;
};

#define NIB_TP "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"

static const struct dec_case dec_cases[] = {
	{ "2.0.0.127", 0, "127.0.0.2/32", NULL, 0 },
	{ "10.2.0.192", 0, "192.0.2.10/32", NULL, 0 },
	{ "255.255.255.255", 0, "255.255.255.255/32", NULL, 0 },
	{ "0.0.0.0", 0, "0.0.0.0/32", NULL, 0 },
	{ NIB_TP, 0, NULL, "::ffff:127.0.0.2/128", 0 },
	{ "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.b.d.0.1.0.0.2", 0, NULL,
	  "2001:db8:100::10/128", 0 },
	{ "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.B.D.0.1.0.0.2", 0, NULL,
	  "2001:db8:100::10/128", 0 },
	{ "*.3.2.1", 0, "1.2.3.0/24", "1230::/12", 1 },
	{ "*.113.0.203", 0, "203.0.113.0/24", NULL, 1 },
	{ "*.2.1", 0, "1.2.0.0/16", "1200::/8", 1 },
	{ "*.10", 0, "10.0.0.0/8", NULL, 1 },
	{ "*.0.0.1.0.8.b.d.0.1.0.0.2", 0, NULL, "2001:db8:100::/48", 1 },
	{ "*.a", 0, NULL, "a000::/4", 1 },
	{ "*", 0, "0.0.0.0/0", "::/0", 1 },
	/* not address names */
	{ "01.2.0.192", -1, NULL, NULL, 0 },
	{ "256.2.0.192", -1, NULL, NULL, 0 },
	{ "2.0.192", -1, NULL, NULL, 0 },          /* 3 labels: not an address */
	{ "5.4.3.2.1", -1, NULL, NULL, 0 },        /* 5 labels */
	{ "*.4.3.2.1", 0, NULL, "1234::/16", 1 }, /* below a v4 /32: only a v6 block */
	{ "1.*.2.1", -1, NULL, NULL, 0 },          /* "*" in the middle */
	{ "x.2.0.192", -1, NULL, NULL, 0 },
	{ "ns", -1, NULL, NULL, 0 },
	{ "", -1, NULL, NULL, 0 },
	{ "1..2.3", -1, NULL, NULL, 0 },
	{ "2.0.0.127.", -1, NULL, NULL, 0 },       /* relative names only */
	{ "-1.2.3.4", -1, NULL, NULL, 0 },
	{ "0x1.2.3.4", -1, NULL, NULL, 0 },
	{ "g.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0", -1, NULL, NULL, 0 },
	{ "10.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0", -1, NULL, NULL, 0 },
	{ "0." NIB_TP, -1, NULL, NULL, 0 },        /* 33 nibbles */
	{ "*." NIB_TP, -1, NULL, NULL, 0 },
};

static void test_decode_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
		const struct dec_case *c = &dec_cases[i];
		struct moat_owner o;
		char b4[80] = "-", b6[80] = "-";
		int r = moat_owner_decode(c->name, &o);

		if (o.v4)
			moat_prefix_str(&o.p4, b4, sizeof(b4));
		if (o.v6)
			moat_prefix_str(&o.p6, b6, sizeof(b6));
		if ((r == 0) != (c->ret == 0) || strcmp(b4, c->v4 ? c->v4 : "-") ||
		    strcmp(b6, c->v6 ? c->v6 : "-") || (r == 0 && o.wildcard != c->wildcard))
			fail_msg("case '%s': got ret=%d v4=%s v6=%s wild=%d, want ret=%d v4=%s v6=%s wild=%d",
				 c->name, r, b4, b6, o.wildcard, c->ret, c->v4 ? c->v4 : "-",
				 c->v6 ? c->v6 : "-", c->wildcard);
	}
}

static void test_label_codes(void **state)
{
	static const struct { const char *l; uint16_t want; } cases[] = {
		{ "0", 0 }, { "9", 9 }, { "10", 10 }, { "255", 255 }, { "256", MOAT_LBL_OTHER },
		{ "00", MOAT_LBL_OTHER }, { "a", MOAT_LBL_HEX + 10 }, { "F", MOAT_LBL_HEX + 15 },
		{ "g", MOAT_LBL_OTHER }, { "*", MOAT_LBL_STAR }, { "**", MOAT_LBL_OTHER },
		{ "1000", MOAT_LBL_OTHER }, { "", MOAT_LBL_OTHER },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t got = moat_owner_label((const uint8_t *)cases[i].l, strlen(cases[i].l));
		if (got != cases[i].want)
			fail_msg("label '%s': got %#x want %#x", cases[i].l, got, cases[i].want);
	}
}

static void test_encode_roundtrip(void **state)
{
	static const char *addrs[] = { "192.0.2.10", "0.0.0.0", "255.255.255.255",
				       "2001:db8:100::10", "::ffff:127.0.0.2", "ffff::1" };
	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct moat_prefix a;
		struct moat_owner o;
		char name[80];
		assert_int_equal(moat_prefix_parse(addrs[i], &a), 0);
		assert_true(moat_owner_encode(&a, name, sizeof(name)) > 0);
		assert_int_equal(moat_owner_decode(name, &o), 0);
		const struct moat_prefix *got = a.family == MOAT_AF_INET ? &o.p4 : &o.p6;
		if (memcmp(got, &a, sizeof(a)))
			fail_msg("roundtrip %s via %s failed", addrs[i], name);
	}
	struct moat_prefix a;
	char small[8];
	moat_prefix_parse("192.0.2.10", &a);
	assert_int_equal(moat_owner_encode(&a, small, sizeof(small)), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_table),
		cmocka_unit_test(test_label_codes),
		cmocka_unit_test(test_encode_roundtrip),
	};
	return cmocka_run_group_tests_name("owner", tests, NULL, NULL);
}
