/* test_sanity.c - RFC 5782 test points and "lists the world" detection on
 * listing sets; the listed share is exact. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* arr_range - moat_sanity_set over a sorted array (the new set) */
static int arr_range(void *ctx, const struct moat_prefix *r, bool exact, struct moat_lvec *out)
{
	const struct moat_lvec *lv = ctx;

	for (size_t i = 0; i < lv->n; i++)
		if (moat_prefix_contains(r, &lv->v[i].pfx) && (!exact || lv->v[i].pfx.plen == r->plen))
			if (moat_lvec_push(out, &lv->v[i]))
				return -1;
	return 0;
}

/* stream_check - moat_sanity_stream over lv in chunks of k */
static void stream_check(const struct moat_sanity_cfg *cfg, const struct moat_lvec *lv, size_t k,
			 struct moat_sanity_result *r)
{
	struct moat_sanity_stream *st = moat_sanity_stream_new(cfg);

	assert_non_null(st);
	for (size_t i = 0; i < lv->n; i += k)
		assert_int_equal(moat_sanity_stream_feed(st, lv->v + i, lv->n - i < k ? lv->n - i : k),
				 0);
	moat_sanity_stream_finish(st, r);
	moat_sanity_stream_free(st);
}

/* same_result - two results agree (shares to rounding; plens: want's
 * lengths all in got) */
static void same_result(const char *what, int round, const struct moat_sanity_result *got,
			const struct moat_sanity_result *want)
{
	if (fabs(got->v4_share - want->v4_share) > 1e-12 ||
	    fabs(got->v6_share - want->v6_share) > 1e-12 || got->quarantine != want->quarantine ||
	    strcmp(got->reason, want->reason) != 0 || got->v4 != want->v4 || got->v6 != want->v6)
		fail_msg("%s round %d: got share %.15g q=%d '%s' v4=%zu, want %.15g q=%d '%s' v4=%zu",
			 what, round, got->v4_share, got->quarantine, got->reason, got->v4,
			 want->v4_share, want->quarantine, want->reason, want->v4);
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
		/* streamed in order: the same verdict */
		moat_lvec_sort(&lv);
		stream_check(&cfg, &lv, 1, &r);
		if (r.quarantine != c->quarantine || !strstr(r.reason, c->reason))
			fail_msg("case %s (stream): got quarantine=%d '%s', want %d '%s'", c->name,
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

/* apply_delta - sorted copy of cur minus del plus add (zonemgr's merge) */
static void apply_delta(const struct moat_lvec *cur, const struct moat_lvec *a,
			const struct moat_lvec *d, struct moat_lvec *out)
{
	for (size_t i = 0; i < cur->n; i++) {
		size_t k;

		for (k = 0; k < d->n && moat_listing_cmp(&d->v[k], &cur->v[i]); k++)
			;
		if (k == d->n)
			moat_lvec_push(out, &cur->v[i]);
	}
	for (size_t i = 0; i < a->n; i++)
		moat_lvec_push(out, &a->v[i]);
	moat_lvec_sort(out);
}

struct dcase {
	const char *name;
	const char *cur[6], *add[6], *del[6];
	int quarantine;
	const char *reason;
};

/* the IXFRs the daemon must refuse like the same data by AXFR */
static const struct dcase dcases[] = {
	{ "add a listing", { "127.0.0.2/32", "192.0.2.10/32" }, { "192.0.2.11/32" }, { NULL }, 0, "" },
	{ "delete the test point", { "127.0.0.2/32", "192.0.2.10/32" }, { NULL }, { "127.0.0.2/32" },
	  1, "127.0.0.2 is not listed" },
	{ "list 127.0.0.1", { "127.0.0.2/32" }, { "127.0.0.0/24" }, { NULL }, 1, "127.0.0.1 is listed" },
	{ "add 0/0", { "127.0.0.2/32" }, { "0.0.0.0/0" }, { NULL }, 1, "is shorter than /8" },
	{ "exclude the test point", { "127.0.0.0/8", "!127.0.0.1/32" }, { "!127.0.0.2/32" }, { NULL },
	  1, "127.0.0.2 is not listed" },
	{ "v6 test point dropped", { "127.0.0.2/32", "2001:db8::1/128", "::ffff:7f00:2/128" },
	  { NULL }, { "::ffff:7f00:2/128" }, 1, "::ffff:7f00:2 is not listed" },
	{ "last v6 gone: no v6 test point", { "127.0.0.2/32", "2001:db8::1/128", "::ffff:7f00:2/128" },
	  { NULL }, { "::ffff:7f00:2/128", "2001:db8::1/128" }, 0, "" },
};

static void fill(struct moat_lvec *lv, const char *const *l)
{
	for (size_t j = 0; j < 6 && l[j]; j++)
		add(lv, l[j]);
}

static void test_delta_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];
		struct moat_lvec cur = { 0 }, a = { 0 }, d = { 0 }, next = { 0 };
		struct moat_sanity_cfg cfg = { 0 };
		struct moat_sanity_result r0, r;

		fill(&cur, c->cur);
		fill(&a, c->add);
		fill(&d, c->del);
		moat_lvec_sort(&cur);
		apply_delta(&cur, &a, &d, &next);
		assert_int_equal(moat_sanity_check(&cfg, cur.v, cur.n, &r0), 0);
		struct moat_sanity_set q = { arr_range, &next };

		assert_int_equal(moat_sanity_check_delta_set(&cfg, &q, &r0, a.v, a.n, d.v, d.n, &r),
				 0);
		if (r.quarantine != c->quarantine || !strstr(r.reason, c->reason))
			fail_msg("case %s (set): got quarantine=%d '%s', want %d '%s'", c->name,
				 r.quarantine, r.reason, c->quarantine, c->reason);
		/* the streamed full check on the set after the delta agrees */
		stream_check(&cfg, &next, 2, &r);
		if (r.quarantine != c->quarantine || !strstr(r.reason, c->reason))
			fail_msg("case %s (stream): got quarantine=%d '%s', want %d '%s'", c->name,
				 r.quarantine, r.reason, c->quarantine, c->reason);
		moat_lvec_free(&cur);
		moat_lvec_free(&a);
		moat_lvec_free(&d);
		moat_lvec_free(&next);
	}
}

/* rnd_listing - a random prefix in a few /8s (so they nest), /12../32, or
 * /8../15 when shortish */
static struct moat_listing rnd_listing(unsigned *seed, int shortish)
{
	struct moat_listing l = { .code = 0x7f000002, .source = 1 };
	unsigned plen = shortish ? 8 + rand_r(seed) % 8 : 12 + rand_r(seed) % 21;

	l.pfx.family = MOAT_AF_INET;
	l.pfx.addr[0] = (uint8_t)(10 + rand_r(seed) % 4);
	l.pfx.addr[1] = (uint8_t)(rand_r(seed) % 4 * 64);
	l.pfx.addr[2] = (uint8_t)(rand_r(seed) % 3);
	l.pfx.addr[3] = (uint8_t)(rand_r(seed) % 5);
	l.pfx = (struct moat_prefix){ .family = MOAT_AF_INET, .plen = (uint8_t)plen,
				      .addr = { l.pfx.addr[0], l.pfx.addr[1], l.pfx.addr[2], l.pfx.addr[3] } };
	for (unsigned b = plen; b < 32; b++) /* host bits off */
		l.pfx.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
	l.exclude = rand_r(seed) % 5 == 0;
	if (l.exclude)
		l.code = 0;
	return l;
}

/* plens_cover - every length in want is in got (the delta keeps lengths
 * a delete may have emptied: a superset) */
static int plens_cover(const uint64_t got[2][3], const uint64_t want[2][3])
{
	for (int f = 0; f < 2; f++)
		for (int w = 0; w < 3; w++)
			if ((got[f][w] & want[f][w]) != want[f][w])
				return 0;
	return 1;
}

/* the incremental check agrees with the full one on the merged set:
 * random nested sets (excludes, duplicates, /8s) and random deltas */
static void test_delta_differential(void **state)
{
	unsigned seed = 5;

	(void)state;
	for (int round = 0; round < 400; round++) {
		struct moat_lvec cur = { 0 }, a = { 0 }, d = { 0 }, next = { 0 };
		struct moat_sanity_cfg cfg = { .max_v4_share = 0.0012, .min_v4_plen = 10 };
		struct moat_sanity_result r0, rf;
		int n = 1 + rand_r(&seed) % 40;

		add(&cur, "127.0.0.2/32");
		for (int i = 0; i < n; i++) {
			struct moat_listing l = rnd_listing(&seed, 0);
			moat_lvec_push(&cur, &l);
		}
		moat_lvec_sort(&cur);
		/* dedupe: a zone set holds each listing once */
		size_t o = 0;
		for (size_t i = 0; i < cur.n; i++)
			if (!o || moat_listing_cmp(&cur.v[o - 1], &cur.v[i]))
				cur.v[o++] = cur.v[i];
		cur.n = o;
		for (int i = 0, k = rand_r(&seed) % 8; i < k; i++) {
			struct moat_listing l = rnd_listing(&seed, rand_r(&seed) % 3 == 0);
			size_t j;
			for (j = 0; j < cur.n && moat_listing_cmp(&cur.v[j], &l); j++)
				;
			if (j == cur.n)
				moat_lvec_push(&a, &l);
		}
		for (int i = 0, k = rand_r(&seed) % 6; i < k && cur.n; i++) {
			const struct moat_listing *l = &cur.v[rand_r(&seed) % cur.n];
			size_t j;
			for (j = 0; j < d.n && moat_listing_cmp(&d.v[j], l); j++)
				;
			if (j == d.n)
				moat_lvec_push(&d, l);
		}
		/* a delta that adds a listing twice is not an IXFR: dedupe adds */
		moat_lvec_sort(&a);
		o = 0;
		for (size_t i = 0; i < a.n; i++)
			if (!o || moat_listing_cmp(&a.v[o - 1], &a.v[i]))
				a.v[o++] = a.v[i];
		a.n = o;
		apply_delta(&cur, &a, &d, &next);
		assert_int_equal(moat_sanity_check(&cfg, cur.v, cur.n, &r0), 0);
		if (!r0.quarantine) {
			assert_int_equal(moat_sanity_check(&cfg, next.v, next.n, &rf), 0);
			/* the delta check, the new set as queries (a zone tree) */
			struct moat_sanity_set q = { arr_range, &next };
			struct moat_sanity_result rs;

			assert_int_equal(moat_sanity_check_delta_set(&cfg, &q, &r0, a.v, a.n, d.v, d.n,
								     &rs), 0);
			same_result("delta_set", round, &rs, &rf);
			assert_true(plens_cover(rs.plens, rf.plens));
		}
		/* the streamed full check equals the whole-array one */
		struct moat_sanity_result rstr;

		stream_check(&cfg, &next, 1 + (size_t)round % 7, &rstr);
		assert_int_equal(moat_sanity_check(&cfg, next.v, next.n, &rf), 0);
		same_result("stream", round, &rstr, &rf);
		assert_memory_equal(rstr.plens, rf.plens, sizeof(rf.plens));
		moat_lvec_free(&cur);
		moat_lvec_free(&a);
		moat_lvec_free(&d);
		moat_lvec_free(&next);
	}
}

/* a stream out of order is refused, not judged */
static void test_stream_order(void **state)
{
	struct moat_lvec lv = { 0 };
	struct moat_sanity_cfg cfg = { 0 };
	struct moat_sanity_stream *st = moat_sanity_stream_new(&cfg);

	(void)state;
	add(&lv, "192.0.2.10/32");
	add(&lv, "127.0.0.2/32");
	assert_int_equal(moat_sanity_stream_feed(st, lv.v, 2), -EINVAL);
	moat_sanity_stream_free(st);
	moat_lvec_free(&lv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_skip_testpoints),
		cmocka_unit_test(test_delta_cases),
		cmocka_unit_test(test_delta_differential),
		cmocka_unit_test(test_stream_order),
	};
	return cmocka_run_group_tests_name("sanity", tests, NULL, NULL);
}
