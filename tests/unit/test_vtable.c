/*
 * test_vtable.c - the verdict table (lib/vtable.h): policy and DNSBL
 * semantics as case tables, bad input, a randomized differential test
 * against a linear-scan reference, the publishing-order property of diffs,
 * and incremental publish == full recompile.  VT_SEED=<n> replays a run.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "vtable.h"
#include "vt_view.h"
/* white-box, the one user of lib internals outside lib/: the order check
 * reads tbl24, test_plens_flip the plens double buffer, test_shared_groups
 * where the live image keeps its groups and tbl24 */
#include "vt_internal.h"

#define A4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | \
			(uint32_t)(c) << 8 | (uint32_t)(d))
#define C(x) (0x7f000000u | (x)) /* 127.0.0.x style codes: C(2) */

enum { S_ZEN = 1, S_BAR = 2, S_WL = 3, S_OP = 4 };

static uint64_t seed, seed0;

/* rnd - xorshift64*, reproducible from VT_SEED. */
static uint64_t rnd(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return seed * 2685821657736338717ull;
}

/* test_policy - zen-like weights, a default-weight list, an allowlist
 * with dnswl-style error code, operator entries; tarpit 3, drop 6. */
static void test_policy(struct vt_policy *p)
{
	struct vt_source s;
	char err[256];

	vt_policy_init(p);
	p->tarpit_at = 3;
	p->drop_at = 6;
	vt_source_init(&s, S_ZEN, "zen.example", VT_SRC_DNSBL);
	s.nrules = 2;
	s.rules[0] = (struct vt_weight_rule){ C(2), C(3), 3 };
	s.rules[1] = (struct vt_weight_rule){ C(4), C(7), 5 };
	assert_int_equal(vt_policy_add_source(p, &s, err, sizeof(err)), 0);
	vt_source_init(&s, S_BAR, "bar.example", VT_SRC_DNSBL);
	assert_int_equal(vt_policy_add_source(p, &s, err, sizeof(err)), 0);
	vt_source_init(&s, S_WL, "wl.example", VT_SRC_ALLOWLIST);
	s.nrules = 1;
	s.rules[0] = (struct vt_weight_rule){ C(0), 0x7f00ffffu, -4 };
	s.errcodes_set = 1;
	s.nerr = 1;
	s.err[0] = (struct vt_code_range){ 0x7f0000ffu, 0x7f0000ffu };
	assert_int_equal(vt_policy_add_source(p, &s, err, sizeof(err)), 0);
	vt_source_init(&s, S_OP, "operator", VT_SRC_STATIC);
	assert_int_equal(vt_policy_add_source(p, &s, err, sizeof(err)), 0);
}

/* L4 / L6 - listing builders. */
static struct moat_listing L4(uint16_t src, uint32_t a, unsigned plen,
			      uint32_t code, int excl)
{
	struct moat_listing l;

	memset(&l, 0, sizeof(l));
	l.pfx.family = MOAT_AF_INET;
	l.pfx.plen = (uint8_t)plen;
	l.pfx.addr[0] = (uint8_t)(a >> 24);
	l.pfx.addr[1] = (uint8_t)(a >> 16);
	l.pfx.addr[2] = (uint8_t)(a >> 8);
	l.pfx.addr[3] = (uint8_t)a;
	l.code = code;
	l.source = src;
	l.exclude = (uint8_t)excl;
	return l;
}

static struct moat_listing L6(uint16_t src, const uint8_t *a, unsigned plen,
			      uint32_t code, int excl)
{
	struct moat_listing l;

	memset(&l, 0, sizeof(l));
	l.pfx.family = MOAT_AF_INET6;
	l.pfx.plen = (uint8_t)plen;
	for (unsigned i = 0; i < 16; i++) {
		int bits = (int)plen - (int)i * 8;

		l.pfx.addr[i] = bits >= 8 ? a[i] : bits <= 0 ? 0 :
			(uint8_t)(a[i] & (0xff << (8 - bits)));
	}
	l.code = code;
	l.source = src;
	l.exclude = (uint8_t)excl;
	return l;
}

/* publish_check - publish, apply to a shadow image, and check the shadow
 * (what a fast path holds) gives the same verdicts as the live image. */
static void publish(struct vt_db *db)
{
	struct moat_update *u = NULL;
	size_t n = 0;

	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	free(u);
	vt_db_grace_done(db);
}

/* ------------------------------------------------------- case tables */

/* A listing spec constant enough for a static table. */
struct spec4 {
	uint16_t src;
	uint32_t a;
	uint8_t plen;
	uint32_t code;
	uint8_t excl;
};
#define S4(s, a, p, c, e) { (s), (a), (p), (c), (e) }

struct sem_case {
	const char *name;
	struct spec4 l[6];
	size_t n;
	uint32_t probe;   /* address, host order */
	uint32_t want;
};

#define NET A4(192, 0, 2, 0)

static const struct sem_case sem_cases[] = {
	{ "unlisted passes", { { 0 } }, 0, NET + 1, MOAT_ACT_PASS },
	{ "zen 127.0.0.2 weight 3 = tarpit",
	  { S4(S_ZEN, NET + 1, 32, C(2), 0) }, 1, NET + 1, MOAT_ACT_TARPIT },
	{ "zen 127.0.0.4 weight 5 = tarpit",
	  { S4(S_ZEN, NET + 1, 32, C(4), 0) }, 1, NET + 1, MOAT_ACT_TARPIT },
	{ "zen .2 and .4 at one name: 3+5 = drop",
	  { S4(S_ZEN, NET + 1, 32, C(2), 0), S4(S_ZEN, NET + 1, 32, C(4), 0) },
	  2, NET + 1, MOAT_ACT_DROP },
	{ "zen .2 and .3: one rule counts once",
	  { S4(S_ZEN, NET + 1, 32, C(2), 0), S4(S_ZEN, NET + 1, 32, C(3), 0) },
	  2, NET + 1, MOAT_ACT_TARPIT },
	{ "zen code .9 matches no rule: pass",
	  { S4(S_ZEN, NET + 1, 32, C(9), 0) }, 1, NET + 1, MOAT_ACT_PASS },
	{ "bar default weight 1: below tarpit",
	  { S4(S_BAR, NET + 1, 32, C(2), 0) }, 1, NET + 1, MOAT_ACT_PASS },
	{ "zen 5 + bar 1 = drop",
	  { S4(S_ZEN, NET + 1, 32, C(4), 0), S4(S_BAR, NET, 24, C(2), 0) },
	  2, NET + 1, MOAT_ACT_DROP },
	{ "allowlist -4 lowers zen 5+1 to pass",
	  { S4(S_ZEN, NET + 1, 32, C(4), 0), S4(S_BAR, NET, 24, C(2), 0),
	    S4(S_WL, NET, 28, A4(127, 0, 5, 2), 0) },
	  3, NET + 1, MOAT_ACT_PASS },
	{ "allowlist error code 127.0.0.255 ignored",
	  { S4(S_ZEN, NET + 1, 32, C(4), 0), S4(S_WL, NET, 28, C(255), 0) },
	  2, NET + 1, MOAT_ACT_TARPIT },
	{ "answer outside 127/8 ignored",
	  { S4(S_ZEN, NET + 1, 32, A4(10, 0, 0, 2), 0) }, 1, NET + 1,
	  MOAT_ACT_PASS },
	{ "default error 127.0.0.1 ignored",
	  { S4(S_ZEN, NET + 1, 32, C(1), 0) }, 1, NET + 1, MOAT_ACT_PASS },
	{ "default error 127.255.255.254 ignored",
	  { S4(S_ZEN, NET + 1, 32, 0x7ffffffeu, 0) }, 1, NET + 1,
	  MOAT_ACT_PASS },
	{ "ignored answer does not shadow a shorter listing",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_ZEN, NET + 1, 32, C(1), 0) },
	  2, NET + 1, MOAT_ACT_TARPIT },
	{ "most specific of a source decides: /32 .2 under /24 .4",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_ZEN, NET + 1, 32, C(9), 0) },
	  2, NET + 1, MOAT_ACT_PASS },
	{ "exclusion carves a /30 out of a /24",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_ZEN, NET, 30, 0, 1) },
	  2, NET + 2, MOAT_ACT_PASS },
	{ "exclusion leaves the rest listed",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_ZEN, NET, 30, 0, 1) },
	  2, NET + 4, MOAT_ACT_TARPIT },
	{ "exclusion of one source does not touch another",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_BAR, NET, 24, C(2), 0),
	    S4(S_BAR, NET, 30, 0, 1) },
	  3, NET + 2, MOAT_ACT_TARPIT },
	{ "relisting inside an exclusion",
	  { S4(S_ZEN, NET, 24, C(4), 0), S4(S_ZEN, NET, 30, 0, 1),
	    S4(S_ZEN, NET + 2, 32, C(2), 0) },
	  3, NET + 2, MOAT_ACT_TARPIT },
	{ "/8 listing covers a /24 far away",
	  { S4(S_ZEN, A4(192, 0, 0, 0), 8, C(4), 0) }, 1,
	  A4(192, 200, 7, 9), MOAT_ACT_TARPIT },
	{ "/16 exclusion under a /8",
	  { S4(S_ZEN, A4(192, 0, 0, 0), 8, C(4), 0),
	    S4(S_ZEN, A4(192, 200, 0, 0), 16, 0, 1) }, 2,
	  A4(192, 200, 7, 9), MOAT_ACT_PASS },
	{ "operator drop",
	  { S4(S_OP, NET + 1, 32, MOAT_ACT_DROP, 0) }, 1, NET + 1,
	  MOAT_ACT_DROP },
	{ "operator tarpit beats a lower score",
	  { S4(S_OP, NET, 24, MOAT_ACT_TARPIT, 0),
	    S4(S_BAR, NET + 1, 32, C(2), 0) }, 2, NET + 1, MOAT_ACT_TARPIT },
	{ "operator tarpit loses to a drop score",
	  { S4(S_OP, NET, 24, MOAT_ACT_TARPIT, 0),
	    S4(S_ZEN, NET + 1, 32, C(2), 0), S4(S_ZEN, NET + 1, 32, C(4), 0) },
	  3, NET + 1, MOAT_ACT_DROP },
	{ "ALLOW beats drop score and operator drop",
	  { S4(S_OP, NET, 24, MOAT_ACT_ALLOW, 0),
	    S4(S_ZEN, NET + 1, 32, C(2), 0), S4(S_ZEN, NET + 1, 32, C(4), 0),
	    S4(S_BAR, NET + 1, 32, C(2), 0) },
	  4, NET + 1, MOAT_ACT_ALLOW },
	{ "operator /32 drop under operator /24 allow: most specific",
	  { S4(S_OP, NET, 24, MOAT_ACT_ALLOW, 0),
	    S4(S_OP, NET + 9, 32, MOAT_ACT_DROP, 0) }, 2, NET + 9,
	  MOAT_ACT_DROP },
	{ "/0 listing", { S4(S_ZEN, 0, 0, C(4), 0) }, 1, A4(8, 8, 8, 8),
	  MOAT_ACT_TARPIT },
	{ "/25 upper half only",
	  { S4(S_ZEN, NET + 128, 25, C(4), 0) }, 1, NET + 127, MOAT_ACT_PASS },
	{ "/25 upper half",
	  { S4(S_ZEN, NET + 128, 25, C(4), 0) }, 1, NET + 255,
	  MOAT_ACT_TARPIT },
};

/* test_semantics - every case through publish + lookup and explain. */
static void test_semantics(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];

	(void)state;
	test_policy(p);
	for (size_t i = 0; i < sizeof(sem_cases) / sizeof(sem_cases[0]); i++) {
		const struct sem_case *c = &sem_cases[i];
		struct vt_db *db = vt_db_new(p, err, sizeof(err));
		struct vt_explain ex;
		struct moat_prefix pr;
		uint32_t got;

		assert_non_null(db);
		for (size_t j = 0; j < c->n; j++) {
			struct moat_listing l = L4(c->l[j].src, c->l[j].a,
						   c->l[j].plen, c->l[j].code,
						   c->l[j].excl);
			int rc = vt_db_source_apply(db, l.source, &l, 1, NULL, 0,
						    err, sizeof(err));
			if (rc)
				fail_msg("%s: apply %zu: %s", c->name, j, err);
		}
		publish(db);
		got = vt_lookup_v4(db, c->probe);
		if (got != c->want)
			fail_msg("case \"%s\": got %s, want %s", c->name,
				 vt_action_name(got), vt_action_name(c->want));
		memset(&pr, 0, sizeof(pr));
		pr.family = MOAT_AF_INET;
		pr.plen = 32;
		pr.addr[0] = (uint8_t)(c->probe >> 24);
		pr.addr[1] = (uint8_t)(c->probe >> 16);
		pr.addr[2] = (uint8_t)(c->probe >> 8);
		pr.addr[3] = (uint8_t)c->probe;
		assert_int_equal(vt_db_explain(db, &pr, &ex), 0);
		if (ex.action != c->want || ex.live_action != c->want)
			fail_msg("case \"%s\": explain got %s/%s, want %s", c->name,
				 vt_action_name(ex.action),
				 vt_action_name(ex.live_action),
				 vt_action_name(c->want));
		vt_db_free(db);
	}
	free(p);
}

/* test_explain - reasons and counters for one address. */
static void test_explain(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	struct vt_explain ex;
	struct vt_source_counters sc;
	struct moat_listing l[] = {
		L4(S_ZEN, NET + 1, 32, C(2), 0), L4(S_ZEN, NET + 1, 32, C(4), 0),
		L4(S_ZEN, NET, 24, C(3), 0), L4(S_ZEN, NET + 7, 32, C(1), 0),
		L4(S_ZEN, NET + 8, 32, A4(1, 2, 3, 4), 0),
	};
	struct moat_prefix pr = { .family = MOAT_AF_INET, .plen = 32,
				  .addr = { 192, 0, 2, 1 } };

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, 5, err, sizeof(err)), 0);
	publish(db);
	assert_int_equal(vt_db_explain(db, &pr, &ex), 0);
	assert_int_equal(ex.action, MOAT_ACT_DROP);
	assert_int_equal(ex.score, 8);
	assert_int_equal(ex.n, 2); /* the /24 is shadowed by the /32 */
	assert_int_equal(ex.items[0].source, S_ZEN);
	assert_int_equal(ex.items[0].pfx.plen, 32);
	assert_int_equal(ex.items[0].weight + ex.items[1].weight, 8);
	assert_int_equal(vt_db_source_counters(db, S_ZEN, &sc), 0);
	assert_int_equal(sc.ignored_errcode, 1);
	assert_int_equal(sc.ignored_outside, 1);
	assert_int_equal(sc.entries_v4, 3);
	assert_int_equal(vt_db_source_counters(db, 999, &sc), -ENOENT);
	vt_db_free(db);
	free(p);
}

/* --------------------------------------------------------- bad input */

struct bad_case {
	const char *name;
	struct moat_listing l;
	int del;    /* 1: as a delete */
	int want;   /* -errno */
};

static struct bad_case bad_cases[] = {
	{ "host bits set", { { 0 } }, 0, -EINVAL },
	{ "IPv4 plen 33", { { 0 } }, 0, -EINVAL },
	{ "IPv6 plen 129", { { 0 } }, 0, -EINVAL },
	{ "family 5", { { 0 } }, 0, -EINVAL },
	{ "source mismatch", { { 0 } }, 0, -EINVAL },
	{ "duplicate of a stored entry", { { 0 } }, 0, -EINVAL },
	{ "exclude over a stored listing", { { 0 } }, 0, -EINVAL },
	{ "delete of an absent entry", { { 0 } }, 1, -EINVAL },
	{ "operator action PASS", { { 0 } }, 0, -EINVAL },
	{ "IPv4 bytes past addr[3]", { { 0 } }, 0, -EINVAL },
	{ "exclude flag 2", { { 0 } }, 0, -EINVAL },
};

/* fill_bad - the listings of bad_cases (non-constant initializers). */
static void fill_bad(void)
{
	bad_cases[0].l = L4(S_ZEN, NET + 1, 24, C(2), 0);
	bad_cases[0].l.pfx.addr[3] = 1;
	bad_cases[1].l = L4(S_ZEN, NET + 1, 32, C(2), 0);
	bad_cases[1].l.pfx.plen = 33;
	bad_cases[2].l = L6(S_ZEN, (const uint8_t[16]){ 0x20, 1 }, 128, C(2), 0);
	bad_cases[2].l.pfx.plen = 129;
	bad_cases[3].l = L4(S_ZEN, NET + 1, 32, C(2), 0);
	bad_cases[3].l.pfx.family = 5;
	bad_cases[4].l = L4(S_BAR, NET + 1, 32, C(2), 0);
	bad_cases[5].l = L4(S_ZEN, NET + 5, 32, C(2), 0);
	bad_cases[6].l = L4(S_ZEN, NET + 5, 32, 0, 1);
	bad_cases[7].l = L4(S_ZEN, NET + 6, 32, C(2), 0);
	bad_cases[8].l = L4(S_OP, NET + 6, 32, MOAT_ACT_PASS, 0);
	bad_cases[9].l = L4(S_ZEN, NET + 5, 32, C(2), 0);
	bad_cases[9].l.pfx.addr[9] = 1;
	bad_cases[10].l = L4(S_ZEN, NET + 9, 32, C(2), 0);
	bad_cases[10].l.exclude = 2;
}

/* test_bad_input - each case: an error, a message, nothing changed. */
static void test_bad_input(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	struct moat_listing good[] = {
		L4(S_ZEN, NET + 5, 32, C(2), 0), L4(S_ZEN, NET, 24, C(4), 0),
	};
	struct moat_listing dup[2];
	struct moat_update *u;
	size_t n;

	(void)state;
	fill_bad();
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, good, 2, err, sizeof(err)), 0);
	publish(db);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		uint16_t src = c->l.source == S_OP ? S_OP : S_ZEN;
		/* a good entry in the same batch must not land either */
		struct moat_listing batch[2] = { L4(src, NET + 77, 32,
						     src == S_OP ? MOAT_ACT_DROP :
						     C(4), 0), c->l };
		int rc;

		err[0] = 0;
		rc = c->del ? vt_db_source_apply(db, src, NULL, 0, batch + 1, 1,
						 err, sizeof(err)) :
			vt_db_source_apply(db, src, batch, 2, NULL, 0, err,
					   sizeof(err));
		if (rc != c->want)
			fail_msg("case \"%s\": got rc %d, want %d (%s)", c->name,
				 rc, c->want, err);
		if (err[0] == 0)
			fail_msg("case \"%s\": no error message", c->name);
		assert_int_equal(vt_db_publish(db, &u, &n), 0);
		free(u);
		if (n != 0)
			fail_msg("case \"%s\": table changed (%zu updates)",
				 c->name, n);
		/* the replace path must refuse the same entries */
		if (!c->del && i < 5) {
			rc = vt_db_source_replace(db, src, batch, 2, err, sizeof(err));
			if (rc != c->want)
				fail_msg("case \"%s\" (replace): got %d (%s)",
					 c->name, rc, err);
			assert_int_equal(vt_db_publish(db, &u, &n), 0);
			free(u);
			assert_int_equal(n, 0);
		}
	}
	/* duplicates inside one batch */
	dup[0] = dup[1] = L4(S_ZEN, NET + 100, 32, C(2), 0);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, dup, 2, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "duplicate"));
	dup[1].exclude = 1;
	dup[1].code = 0;
	assert_int_equal(vt_db_source_apply(db, S_ZEN, dup, 2, NULL, 0, err,
					    sizeof(err)), -EINVAL);
	assert_int_equal(vt_db_source_apply(db, 77, dup, 1, NULL, 0, err,
					    sizeof(err)), -ENOENT);
	assert_int_equal(vt_lookup_v4(db, NET + 5), MOAT_ACT_TARPIT);
	assert_int_equal(vt_lookup_v4(db, NET + 77), MOAT_ACT_TARPIT);
	assert_int_equal(vt_lookup_v4(db, NET + 100), MOAT_ACT_TARPIT);
	vt_db_free(db);
	free(p);
}

/* test_bad_policy - validation messages. */
static void test_bad_policy(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_source s;

	(void)state;
	test_policy(p);
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), 0);
	p->drop_at = 2;
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), -EINVAL);
	assert_null(vt_db_new(p, err, sizeof(err)));
	p->drop_at = 6;
	p->tarpit_at = 0;
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), -EINVAL);
	p->tarpit_at = 3;
	p->sources[2].rules[0].weight = 1; /* allowlist with positive weight */
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), -EINVAL);
	p->sources[2].rules[0].weight = -4;
	p->sources[0].rules[0].weight = INT32_MAX;
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "overflow"));
	p->sources[0].rules[0].weight = 3;
	p->sources[0].rules[1].lo = C(9);
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), -EINVAL);
	p->sources[0].rules[1].lo = C(4);
	vt_source_init(&s, S_ZEN, "again", VT_SRC_DNSBL);
	assert_int_equal(vt_policy_add_source(p, &s, err, sizeof(err)), -EEXIST);
	assert_int_equal(vt_policy_validate(p, err, sizeof(err)), 0);
	free(p);
}

/* test_expiry - operator entries with a ttl go at their time. */
static void test_expiry(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	struct moat_listing l = L4(S_OP, NET + 3, 32, MOAT_ACT_DROP, 0);
	struct moat_listing z = L4(S_ZEN, NET + 3, 32, C(2), 0);

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	vt_db_set_time(db, 1000);
	l.ttl = 60;
	z.ttl = 60; /* zone data: ttl informational, no expiry */
	assert_int_equal(vt_db_source_apply(db, S_OP, &l, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_source_apply(db, S_ZEN, &z, 1, NULL, 0, err, sizeof(err)), 0);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, NET + 3), MOAT_ACT_DROP);
	assert_int_equal(vt_db_expire(db, 1059), 0);
	assert_int_equal(vt_db_expire(db, 1060), 1);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, NET + 3), MOAT_ACT_TARPIT);
	/* refresh by del+add moves the expiry */
	l.ttl = 10;
	assert_int_equal(vt_db_source_apply(db, S_OP, &l, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_source_apply(db, S_OP, &l, 1, &l, 1, err, sizeof(err)), 0);
	vt_db_set_time(db, 1100);
	assert_int_equal(vt_db_source_apply(db, S_OP, &l, 1, &l, 1, err, sizeof(err)), 0);
	assert_int_equal(vt_db_expire(db, 1105), 0);
	assert_int_equal(vt_db_expire(db, 1110), 1);
	/* short IPv4 prefixes and IPv6 expire too; a replace refreshes */
	{
		uint8_t a6[16] = { 0x20, 1, 0xd, 0xb8 };
		struct moat_listing s[2] = {
			L4(S_OP, A4(198, 18, 0, 0), 15, MOAT_ACT_DROP, 0),
			L6(S_OP, a6, 32, MOAT_ACT_DROP, 0),
		};
		struct vt_source_counters sc;

		s[0].ttl = 100;
		s[1].ttl = 200;
		assert_int_equal(vt_db_source_replace(db, S_OP, s, 2, err, sizeof(err)), 0);
		publish(db);
		assert_int_equal(vt_lookup_v4(db, A4(198, 19, 4, 4)), MOAT_ACT_DROP);
		assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_DROP);
		vt_db_set_time(db, 1150);
		s[0].ttl = 100; /* now expires at 1250 */
		assert_int_equal(vt_db_source_replace(db, S_OP, s, 2, err, sizeof(err)), 0);
		assert_int_equal(vt_db_expire(db, 1210), 0);
		assert_int_equal(vt_db_expire(db, 1250), 1);
		publish(db);
		assert_int_equal(vt_lookup_v4(db, A4(198, 19, 4, 4)), MOAT_ACT_PASS);
		assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_DROP);
		assert_int_equal(vt_db_expire(db, 1350), 1);
		publish(db);
		assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_PASS);
		assert_int_equal(vt_db_source_counters(db, S_OP, &sc), 0);
		assert_int_equal(sc.entries_v4 + sc.entries_v6, 0);
		assert_int_equal(sc.expired, 4);
	}
	vt_db_free(db);
	free(p);
}

/* -------------------------------------------------- randomized tests */

#define NSRC 4
static const uint16_t src_ids[NSRC] = { S_ZEN, S_BAR, S_WL, S_OP };

struct model {
	struct moat_listing *l;
	size_t n, cap;
};

/* ref_source_weight - the reference's own reading of the policy. */
static void ref_contrib(const struct vt_source *s, const uint32_t *codes,
			size_t nc, int64_t *score, int *al, int *dr, int *ta)
{
	if (s->kind == VT_SRC_STATIC) {
		for (size_t i = 0; i < nc; i++) {
			*al |= codes[i] == MOAT_ACT_ALLOW;
			*dr |= codes[i] == MOAT_ACT_DROP;
			*ta |= codes[i] == MOAT_ACT_TARPIT;
		}
		return;
	}
	if (s->nrules == 0) {
		*score += s->kind == VT_SRC_ALLOWLIST ? -1 : 1;
		return;
	}
	for (uint32_t r = 0; r < s->nrules; r++)
		for (size_t i = 0; i < nc; i++)
			if (codes[i] >= s->rules[r].lo && codes[i] <= s->rules[r].hi) {
				*score += s->rules[r].weight;
				break;
			}
}

/* ref_ignored - the reference's DNSBL filter. */
static int ref_ignored(const struct vt_source *s, const struct moat_listing *l)
{
	if (l->exclude || s->kind == VT_SRC_STATIC)
		return 0;
	if ((l->code >> 24) != 127)
		return 1;
	if (!s->errcodes_set)
		return (l->code >= 0x7fffff00u) || l->code == 0x7f000001u;
	for (uint32_t i = 0; i < s->nerr; i++)
		if (l->code >= s->err[i].lo && l->code <= s->err[i].hi)
			return 1;
	return 0;
}

/* contains - prefix of l contains address a (16 bytes; v4 in a[0..3]). */
static int contains(const struct moat_listing *l, int fam, const uint8_t *a)
{
	unsigned full = l->pfx.plen / 8, rest = l->pfx.plen % 8;

	if (l->pfx.family != fam || memcmp(a, l->pfx.addr, full) != 0)
		return 0;
	return rest == 0 ||
	       ((a[full] ^ l->pfx.addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* ref_eval - linear scan over all listings (two passes: the longest
 * prefix per source, then the codes at it). */
static uint32_t ref_eval(const struct vt_policy *p, const struct model *m,
			 int fam, const uint8_t *a)
{
	int64_t score = 0;
	int al = 0, dr = 0, ta = 0;
	int best[NSRC], excl[NSRC] = { 0 };
	uint32_t codes[NSRC][64];
	size_t nc[NSRC] = { 0 };
	const struct vt_source *srcs[NSRC];

	assert_int_equal(p->nsources, NSRC);
	for (int s = 0; s < NSRC; s++) {
		best[s] = -1;
		srcs[s] = &p->sources[s];
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct moat_listing *l = &m->l[i];
		int s = l->source - 1; /* ids are 1..NSRC in policy order */

		if (l->pfx.plen > best[s] && contains(l, fam, a) &&
		    !ref_ignored(srcs[s], l))
			best[s] = l->pfx.plen;
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct moat_listing *l = &m->l[i];
		int s = l->source - 1;

		if (l->pfx.plen != best[s] || !contains(l, fam, a) ||
		    ref_ignored(srcs[s], l))
			continue;
		excl[s] |= l->exclude;
		if (nc[s] < 64)
			codes[s][nc[s]++] = l->code;
	}
	for (int s = 0; s < NSRC; s++)
		if (best[s] >= 0 && !excl[s])
			ref_contrib(srcs[s], codes[s], nc[s], &score, &al, &dr, &ta);
	if (al)
		return MOAT_ACT_ALLOW;
	if (dr || score >= p->drop_at)
		return MOAT_ACT_DROP;
	if (ta || score >= p->tarpit_at)
		return MOAT_ACT_TARPIT;
	return MOAT_ACT_PASS;
}

static const uint32_t dnsbl_codes[] = {
	C(2), C(3), C(4), C(5), C(10), C(1), 0x7fffff02u, A4(10, 0, 0, 1),
	A4(127, 0, 3, 7), C(255),
};
static const uint8_t v6_plens[] = { 32, 40, 48, 56, 64, 96, 112, 120, 124, 128 };

/* rand_listing - a random listing in a small space so they overlap:
 * IPv4 in 10.0.0.0/14 (shorter prefixes too), IPv6 in 2001:db8::/32. */
static struct moat_listing rand_listing(void)
{
	uint16_t src = src_ids[rnd() % NSRC];
	uint32_t code = src == S_OP ? 1 + (uint32_t)(rnd() % 3) :
		dnsbl_codes[rnd() % (sizeof(dnsbl_codes) / 4)];
	int excl = rnd() % 10 == 0;

	if (rnd() % 4) {
		static const uint8_t pl[] = { 12, 16, 20, 22, 23, 24, 25, 26,
					      28, 29, 30, 31, 32, 32, 32, 32 };
		unsigned plen = pl[rnd() % sizeof(pl)];
		uint32_t a = A4(10, 0, 0, 0) | (uint32_t)(rnd() & 0x3ffff);

		if (rnd() % 2)
			a &= 0xfffffc3fu; /* crowd into few /24s */
		a &= plen ? ~0u << (32 - plen) : 0;
		return L4(src, a, plen, excl ? 0 : code, excl);
	}
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	unsigned plen = v6_plens[rnd() % sizeof(v6_plens)];

	a6[4] = (uint8_t)(rnd() % 4);
	a6[5] = (uint8_t)(rnd() % 2);
	a6[6] = (uint8_t)(rnd() % 3);
	a6[15] = (uint8_t)(rnd() % 4);
	a6[12] = (uint8_t)(rnd() % 2);
	return L6(src, a6, plen, excl ? 0 : code, excl);
}

/* same_entry - identity of a listing (prefix, code, exclude, source). */
static int same_entry(const struct moat_listing *a, const struct moat_listing *b)
{
	return a->source == b->source && a->exclude == b->exclude &&
	       (a->exclude || a->code == b->code) &&
	       memcmp(&a->pfx, &b->pfx, sizeof(a->pfx)) == 0;
}

/* conflicts - adding l to m would duplicate or mix listing and exclude. */
static int conflicts(const struct model *m, const struct moat_listing *l)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->l[i].source == l->source &&
		    memcmp(&m->l[i].pfx, &l->pfx, sizeof(l->pfx)) == 0 &&
		    (m->l[i].exclude != l->exclude || same_entry(&m->l[i], l)))
			return 1;
	return 0;
}

/* v6_plens_ok - the model would stay within MOAT_V6_MAX_PLENS (always true
 * with v6_plens[] having 10 lengths; kept for clarity). */
static void model_add(struct model *m, const struct moat_listing *l)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->l = realloc(m->l, m->cap * sizeof(*m->l));
		assert_non_null(m->l);
	}
	m->l[m->n++] = *l;
}

/* rand_addr - an address to probe: inside a random listing or near. */
static void rand_addr(const struct model *m, int *fam, uint8_t *a)
{
	memset(a, 0, 16);
	if (m->n && rnd() % 2) {
		const struct moat_listing *l = &m->l[rnd() % m->n];

		*fam = l->pfx.family;
		memcpy(a, l->pfx.addr, 16);
		for (unsigned b = l->pfx.plen; b < (*fam == 4 ? 32u : 128u); b++)
			if (rnd() % 2)
				a[b / 8] |= (uint8_t)(0x80 >> (b % 8));
		return;
	}
	if (rnd() % 4) {
		uint32_t v = A4(10, 0, 0, 0) | (uint32_t)(rnd() & 0x3ffff);

		*fam = 4;
		a[0] = (uint8_t)(v >> 24);
		a[1] = (uint8_t)(v >> 16);
		a[2] = (uint8_t)(v >> 8);
		a[3] = (uint8_t)v;
		return;
	}
	*fam = 6;
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(rnd() % 4);
	a[5] = (uint8_t)(rnd() % 2);
	a[6] = (uint8_t)(rnd() % 3);
	a[12] = (uint8_t)(rnd() % 2);
	a[15] = (uint8_t)rnd();
}

/* check_against_ref - n probes: live lookup (called, and inline through
 * vt_view.h) == explain == reference. */
static void check_against_ref(const struct vt_policy *p, struct vt_db *db,
			      const struct model *m, size_t n)
{
	struct vt_image_view v;

	vt_image_view(vt_db_image(db), &v);
	for (size_t i = 0; i < n; i++) {
		uint8_t a[16];
		int fam;
		uint32_t want, got, inl;

		rand_addr(m, &fam, a);
		want = ref_eval(p, m, fam, a);
		if (fam == 4) {
			uint32_t h = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
				     (uint32_t)a[2] << 8 | a[3];

			got = vt_lookup_v4(db, h);
			inl = vt_view_lookup_v4(&v, h);
		} else {
			got = vt_lookup_v6(db, a);
			inl = vt_view_lookup_v6(&v, a);
			/* the trie and the per-length rules agree */
			if (vt_view_lookup_v6_rules(&v, a) != inl)
				inl = MOAT_ACT__MAX;
		}
		if (got != want || inl != got) {
			char buf[64];

			if (fam == 4)
				snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a[0],
					 a[1], a[2], a[3]);
			else
				snprintf(buf, sizeof(buf), "%02x%02x:%02x%02x:"
					 "%02x%02x:%02x%02x::%02x..%02x", a[0],
					 a[1], a[2], a[3], a[4], a[5], a[6],
					 a[7], a[12], a[15]);
			fail_msg("seed %llu: %s got %s (inline view %s), want %s",
				 (unsigned long long)seed0, buf,
				 vt_action_name(got), vt_action_name(inl),
				 vt_action_name(want));
		}
	}
}

/* by_source - listings of one source from the model. */
static size_t by_source(const struct model *m, uint16_t src,
			struct moat_listing *out)
{
	size_t k = 0;

	for (size_t i = 0; i < m->n; i++)
		if (m->l[i].source == src)
			out[k++] = m->l[i];
	return k;
}

/* model_fill - n draws of gen, each kept unless it conflicts. */
static void model_fill(struct model *m, int n, struct moat_listing (*gen)(void))
{
	for (int i = 0; i < n; i++) {
		struct moat_listing l = gen();

		if (!conflicts(m, &l))
			model_add(m, &l);
	}
}

/* load_model - every source of the db replaced by its listings in m. */
static void load_model(struct vt_db *db, const struct model *m,
		       struct moat_listing *tmp)
{
	char err[256];

	for (int s = 0; s < NSRC; s++) {
		size_t k = by_source(m, src_ids[s], tmp);

		if (vt_db_source_replace(db, src_ids[s], tmp, k, err, sizeof(err)))
			fail_msg("seed %llu: replace: %s",
				 (unsigned long long)seed0, err);
	}
}

/* check_order - apply ups one by one to a copy of old: every IPv4 address
 * of a touched /24 shows its old or its new action at each step, no group
 * write hits a group referenced since the sequence began, and IPv6 probes
 * listed in both stay listed; at the end the copy equals new. */
static void check_order(const struct vt_image *old, const struct vt_image *nw,
			const struct moat_update *u, size_t n,
			const struct model *m)
{
	struct vt_image *cur = vt_image_clone(old);
	struct vt_image_stats st;
	uint8_t *refd;
	size_t ng;
	uint8_t (*probe)[16];
	uint32_t *pold, *pnew;
	size_t np = 0;

	assert_non_null(cur);
	vt_image_stats(old, &st);
	ng = (size_t)st.groups_hiwater + n + 1;
	refd = calloc(ng, 1);
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (moat_tbl24_is_group(old->tbl24[i]) &&
		    moat_tbl24_group(old->tbl24[i]) < ng)
			refd[moat_tbl24_group(old->tbl24[i])] = 1;
	probe = calloc(m->n * 2 + 1, 16);
	pold = calloc(m->n * 2 + 1, 4);
	pnew = calloc(m->n * 2 + 1, 4);
	for (size_t i = 0; i < m->n; i++) {
		if (m->l[i].pfx.family != MOAT_AF_INET6)
			continue;
		for (int k = 0; k < 2; k++) {
			memcpy(probe[np], m->l[i].pfx.addr, 16);
			if (k)
				probe[np][15] ^= (uint8_t)(1 + rnd() % 255);
			pold[np] = vt_image_lookup_v6(old, probe[np]);
			pnew[np] = vt_image_lookup_v6(nw, probe[np]);
			np++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(vt_image_apply(cur, &u[i], 1), 0);
		if (u[i].kind == MOAT_UPD_TBL24) {
			uint32_t base = u[i].index << 8;

			for (uint32_t h = 0; h < 256; h++) {
				uint32_t a = vt_image_lookup_v4(cur, base | h);
				uint32_t o = vt_image_lookup_v4(old, base | h);
				uint32_t w = vt_image_lookup_v4(nw, base | h);

				if (a != o && a != w)
					fail_msg("seed %llu: step %zu: %08x shows %s, "
						 "old %s new %s",
						 (unsigned long long)seed0, i,
						 base | h, vt_action_name(a),
						 vt_action_name(o), vt_action_name(w));
			}
		} else if (u[i].kind == MOAT_UPD_GROUP) {
			/* the /24s that point at this group before the
			 * write must not change verdict */
			if (u[i].index < ng && refd[u[i].index])
				fail_msg("seed %llu: step %zu rewrites group %u "
					 "that was in use", (unsigned long long)seed0,
					 i, u[i].index);
		} else {
			for (size_t k = 0; k < np; k++) {
				uint32_t a = vt_image_lookup_v6(cur, probe[k]);

				if (pold[k] != MOAT_ACT_PASS &&
				    pnew[k] != MOAT_ACT_PASS && a == MOAT_ACT_PASS)
					fail_msg("seed %llu: step %zu: IPv6 probe %zu "
						 "unlisted in between",
						 (unsigned long long)seed0, i, k);
			}
		}
		if (u[i].kind == MOAT_UPD_TBL24 &&
		    moat_tbl24_is_group(u[i].value) &&
		    moat_tbl24_group(u[i].value) < ng)
			refd[moat_tbl24_group(u[i].value)] = 1;
	}
	if (!vt_image_equal_verdicts(cur, nw))
		fail_msg("seed %llu: old + updates != new", (unsigned long long)seed0);
	free(refd);
	free(probe);
	free(pold);
	free(pnew);
	vt_image_free(cur);
}

/* test_random - random listings and changes, every publish checked against
 * the reference, the order property, and a fresh full compile. */
static void walk_is_sorted_dump(const struct vt_db *db, uint16_t src, size_t cap);

static void test_random(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	struct model m = { NULL, 0, 0 };
	struct moat_listing *tmp;
	char err[256];
	struct vt_db *db;
	size_t probes_per_round = 12000, rounds = 9;

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	assert_non_null(db);
	tmp = calloc(20000, sizeof(*tmp));
	/* initial: full replace per source */
	model_fill(&m, 700, rand_listing);
	load_model(db, &m, tmp);
	publish(db);
	check_against_ref(p, db, &m, probes_per_round);
	for (size_t r = 0; r < rounds; r++) {
		struct vt_image *old = vt_image_clone(vt_db_image(db));
		struct moat_update *u = NULL;
		size_t n = 0;

		/* a few sources change incrementally, one by full replace */
		for (int s = 0; s < NSRC; s++) {
			uint16_t src = src_ids[s];
			struct moat_listing add[64], del[64];
			size_t na = 0, nd = 0;

			if (r % NSRC == (size_t)s) {
				/* replace: keep most, drop some, add some */
				size_t k = 0;

				for (size_t i = 0; i < m.n; ) {
					if (m.l[i].source == src && rnd() % 4 == 0) {
						m.l[i] = m.l[--m.n];
						continue;
					}
					i++;
				}
				for (int i = 0; i < 60; i++) {
					struct moat_listing l = rand_listing();

					l.source = src;
					if (src == S_OP && !l.exclude)
						l.code = 1 + (uint32_t)(rnd() % 3);
					if (src != S_OP && !l.exclude &&
					    l.code <= 3)
						l.code = C(2);
					if (!conflicts(&m, &l))
						model_add(&m, &l);
				}
				k = by_source(&m, src, tmp);
				if (vt_db_source_replace(db, src, tmp, k, err,
							 sizeof(err)))
					fail_msg("seed %llu: replace: %s",
						 (unsigned long long)seed0, err);
				continue;
			}
			for (size_t i = 0; i < m.n && nd < 20; ) {
				if (m.l[i].source == src && rnd() % 8 == 0) {
					del[nd++] = m.l[i];
					m.l[i] = m.l[--m.n];
					continue;
				}
				i++;
			}
			for (int i = 0; i < 30; i++) {
				struct moat_listing l = rand_listing();

				if (l.source != src || conflicts(&m, &l))
					continue;
				add[na++] = l;
				model_add(&m, &l);
			}
			if (vt_db_source_apply(db, src, add, na, del, nd, err,
					       sizeof(err)))
				fail_msg("seed %llu: apply: %s",
					 (unsigned long long)seed0, err);
		}
		assert_int_equal(vt_db_publish(db, &u, &n), 0);
		check_order(old, vt_db_image(db), u, n, &m);
		/* the standalone diff has the same property */
		{
			struct moat_update *d = NULL;
			size_t dn = 0;

			assert_int_equal(vt_image_diff(old, vt_db_image(db), &d, &dn), 0);
			check_order(old, vt_db_image(db), d, dn, &m);
			free(d);
		}
		free(u);
		vt_image_free(old);
		vt_db_grace_done(db);
		check_against_ref(p, db, &m, probes_per_round);
	}
	/* incremental == full recompile */
	{
		struct vt_db *fresh = vt_db_new(p, err, sizeof(err));
		struct moat_update *u = NULL;
		size_t n = 0;
		struct vt_image *img = vt_image_new();

		load_model(fresh, &m, tmp);
		publish(fresh);
		if (!vt_image_equal_verdicts(vt_db_image(db), vt_db_image(fresh)))
			fail_msg("seed %llu: incremental != full",
				 (unsigned long long)seed0);
		/* the sorted walk is the dump, sorted */
		for (int s = 0; s < NSRC; s++)
			walk_is_sorted_dump(db, src_ids[s], 512);
		/* a dump reloads into the same table */
		{
			struct vt_db *again = vt_db_new(p, err, sizeof(err));

			for (int s = 0; s < NSRC; s++) {
				struct moat_listing *d = NULL;
				size_t dn = 0;

				assert_int_equal(vt_db_source_dump(db, src_ids[s],
								   &d, &dn), 0);
				assert_int_equal(vt_db_source_replace(again,
								      src_ids[s], d, dn, err,
								      sizeof(err)), 0);
				free(d);
			}
			publish(again);
			assert_true(vt_image_equal_verdicts(vt_db_image(again),
							    vt_db_image(db)));
			vt_db_free(again);
		}
		/* the full image, applied to an empty fast path, is the same */
		assert_int_equal(vt_db_full_image(db, &u, &n), 0);
		assert_int_equal(vt_image_apply(img, u, n), 0);
		assert_true(vt_image_equal_verdicts(img, vt_db_image(db)));
		free(u);
		vt_image_free(img);
		vt_db_free(fresh);
	}
	vt_db_free(db);
	free(tmp);
	free(m.l);
	free(p);
}

/* rand_v6_listing - a random IPv6 listing of rand_listing()'s kind. */
static struct moat_listing rand_v6_listing(void)
{
	for (;;) {
		struct moat_listing l = rand_listing();

		if (l.pfx.family == MOAT_AF_INET6)
			return l;
	}
}

/* full_recompile - a db with m's listings compiled by the whole-table
 * path (a policy change marks everything dirty). */
static struct vt_db *full_recompile(const struct vt_policy *p,
				    const struct model *m,
				    struct moat_listing *tmp)
{
	char err[256];
	struct vt_db *f = vt_db_new(p, err, sizeof(err));

	assert_non_null(f);
	load_model(f, m, tmp);
	assert_int_equal(vt_db_set_policy(f, p, err, sizeof(err)), 0);
	publish(f);
	return f;
}

/* test_v6_incremental - IPv6 only, many small changes to heavily nested
 * prefixes: each publish diffs only the changed ranges against the live
 * rules; every publish is checked against the reference and for the
 * publishing order, and the live rules equal (exactly: same keys, no
 * stale ones) a whole-table recompile every few rounds. */
static void test_v6_incremental(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	struct model m = { NULL, 0, 0 };
	struct moat_listing *tmp = calloc(4000, sizeof(*tmp));
	char err[256];
	struct vt_db *db;
	const size_t rounds = 24;

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	assert_non_null(db);
	model_fill(&m, 400, rand_v6_listing);
	load_model(db, &m, tmp);
	publish(db);
	for (size_t r = 0; r < rounds; r++) {
		struct vt_image *old = vt_image_clone(vt_db_image(db));
		struct moat_update *u = NULL;
		size_t n = 0;
		uint16_t src = src_ids[rnd() % NSRC];
		struct moat_listing add[16], del[16];
		size_t na = 0, nd = 0;

		/* a handful of deletes and adds of one source */
		for (size_t i = 0; i < m.n && nd < 1 + r % 6; i++) {
			if (m.l[i].source == src && rnd() % 6 == 0) {
				del[nd++] = m.l[i];
				m.l[i--] = m.l[--m.n];
			}
		}
		for (int i = 0; i < 40 && na < 1 + (r * 7) % 9; i++) {
			struct moat_listing l = rand_v6_listing();

			if (l.source != src || conflicts(&m, &l))
				continue;
			add[na++] = l;
			model_add(&m, &l);
		}
		if (vt_db_source_apply(db, src, add, na, del, nd, err, sizeof(err)))
			fail_msg("seed %llu: apply: %s", (unsigned long long)seed0, err);
		assert_int_equal(vt_db_publish(db, &u, &n), 0);
		/* O(k): a few changes never rewrite the whole rule set */
		if (n > 8 * (na + nd) + 2 && n > vt_db_image(db)->nv6 / 2)
			fail_msg("seed %llu: %zu updates for %zu changes",
				 (unsigned long long)seed0, n, na + nd);
		check_order(old, vt_db_image(db), u, n, &m);
		free(u);
		vt_image_free(old);
		vt_db_grace_done(db);
		check_against_ref(p, db, &m, 3000);
		if (r % 8 == 7) {
			struct vt_db *f = full_recompile(p, &m, tmp);

			if (!vt_image_equal_verdicts(vt_db_image(db), vt_db_image(f)))
				fail_msg("seed %llu: round %zu: incremental IPv6 "
					 "rules != full recompile",
					 (unsigned long long)seed0, r);
			vt_db_free(f);
		}
	}
	vt_db_free(db);
	free(tmp);
	free(m.l);
	free(p);
}

/* test_v6_basics - exclusions and plens order in IPv6. */
static void test_v6_basics(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1 };
	struct moat_listing l[] = {
		L6(S_ZEN, a, 48, C(4), 0), L6(S_ZEN, a, 64, 0, 1),
	};
	struct moat_update *u;
	size_t n;
	uint8_t probe[16];

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, 2, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	/* plens first, longest put first */
	assert_int_equal(n, 3);
	assert_int_equal(u[0].kind, MOAT_UPD_V6_PLENS);
	assert_int_equal(u[0].u.plens.n, 2);
	assert_int_equal(u[0].u.plens.len[0], 64);
	assert_int_equal(u[1].kind, MOAT_UPD_V6_PUT);
	assert_int_equal(u[1].u.key.plen, 64);
	assert_int_equal(u[1].value, MOAT_ACT_PASS);
	assert_int_equal(u[2].u.key.plen, 48);
	free(u);
	memcpy(probe, a, 16);
	probe[15] = 9;
	assert_int_equal(vt_lookup_v6(db, probe), MOAT_ACT_PASS);
	probe[7] = 1;
	assert_int_equal(vt_lookup_v6(db, probe), MOAT_ACT_TARPIT);
	/* removing the /48: delete /48 before narrowing plens */
	assert_int_equal(vt_db_source_apply(db, S_ZEN, NULL, 0, l, 1, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	assert_int_equal(n, 3); /* the exclusion alone is PASS: no rule */
	assert_int_equal(u[0].kind, MOAT_UPD_V6_DEL);
	assert_int_equal(u[0].u.key.plen, 48);
	assert_int_equal(u[1].kind, MOAT_UPD_V6_DEL);
	assert_int_equal(u[1].u.key.plen, 64);
	assert_int_equal(u[2].kind, MOAT_UPD_V6_PLENS);
	assert_int_equal(u[2].u.plens.n, 0);
	free(u);
	assert_int_equal(vt_lookup_v6(db, probe), MOAT_ACT_PASS);
	vt_db_free(db);
	free(p);
}

/* test_plens_flip - the image's plens double buffer, read through the
 * shared lookup: an update fills the inactive slot and flips the selector;
 * the lookup reads the selected slot only. */
static void test_plens_flip(void **state)
{
	struct vt_image *img = vt_image_new();
	struct moat_update u[2];
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 7 };

	(void)state;
	assert_non_null(img);
	memset(u, 0, sizeof(u));
	u[0].kind = MOAT_UPD_V6_PLENS;
	u[0].u.plens.n = 1;
	u[0].u.plens.len[0] = 64;
	u[1].kind = MOAT_UPD_V6_PUT;
	u[1].u.key.plen = 64;
	memcpy(u[1].u.key.addr, a, 8);
	u[1].value = MOAT_ACT_DROP;
	assert_int_equal(img->plb.sel, 0);
	assert_int_equal(vt_image_apply(img, u, 2), 0);
	assert_int_equal(img->plb.sel, 1);           /* flipped */
	assert_int_equal(img->plb.slot[0].n, 0);     /* old slot untouched */
	assert_int_equal(img->plb.slot[1].n, 1);
	a[15] = 1;
	assert_int_equal(vt_image_lookup_v6_rules(img, a), MOAT_ACT_DROP);
	/* the inactive slot is not read, whatever it holds */
	memset(&img->plb.slot[0], 0xff, sizeof(img->plb.slot[0]));
	assert_int_equal(vt_image_lookup_v6_rules(img, a), MOAT_ACT_DROP);
	img->plb.slot[0].n = 0;
	img->plb.sel = 2;                            /* selector bit 0 only */
	assert_int_equal(vt_image_lookup_v6_rules(img, a), MOAT_ACT_PASS);
	/* the next update fills slot 1 again and flips back */
	assert_int_equal(vt_image_apply(img, u, 1), 0);
	assert_int_equal(img->plb.sel, 1);
	assert_int_equal(vt_image_lookup_v6_rules(img, a), MOAT_ACT_DROP);
	vt_image_free(img);
}

/* test_image_widen - an image's IPv6 trie moves to the wide root once it
 * holds VT_TRIE6_WIDE_MIN rules (rebuilt from the rules, moat_trie6.h):
 * every verdict the same before and after, and through deletes after. */
static void widen_key(struct moat_v6_key *k, uint64_t i, unsigned plen)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL;

	memset(k, 0, sizeof(*k));
	k->plen = plen;
	for (int b = 0; b < 8; b++)
		k->addr[b] = (uint8_t)(x >> (56 - 8 * b));
	k->addr[0] = (uint8_t)(0x20 | (k->addr[0] & 0x1f));
	if (plen == 128)
		k->addr[15] = 7;
}

static void widen_check(const struct vt_image *img, uint64_t n, uint64_t gone)
{
	for (uint64_t i = 0; i < n; i += 97) {
		struct moat_v6_key k;
		uint32_t in, at7;

		widen_key(&k, i, 64);
		k.addr[15] = 9;
		in = vt_image_lookup_v6(img, k.addr);
		k.addr[15] = 7;
		at7 = vt_image_lookup_v6(img, k.addr);
		if (i < gone) {
			assert_int_equal(in, MOAT_ACT_PASS);
			assert_int_equal(at7, MOAT_ACT_PASS);
		} else {
			assert_int_equal(in, MOAT_ACT_DROP);
			assert_int_equal(at7, i % 10 ? MOAT_ACT_DROP : MOAT_ACT_ALLOW);
		}
		k.addr[7] ^= 0x01;   /* the neighbouring /64: not listed */
		assert_int_equal(vt_image_lookup_v6(img, k.addr), MOAT_ACT_PASS);
	}
	/* the /24 at the root (the wide root's last length) and an address
	 * below it */
	uint8_t a[16] = { 0x3f, 0xfe, 0x01, 0x02 };

	assert_int_equal(vt_image_lookup_v6(img, a), MOAT_ACT_TARPIT);
}

static void test_image_widen(void **state)
{
	struct vt_image *img = vt_image_new();
	struct moat_v6_key k;
	uint64_t n = 0, target = VT_TRIE6_WIDE_MIN + 4096;
	struct vt_image_stats st;

	(void)state;
	assert_non_null(img);
	memset(&k, 0, sizeof(k));
	k.plen = 24;
	k.addr[0] = 0x3f;
	k.addr[1] = 0xfe;
	k.addr[2] = 0x01;
	assert_int_equal(vt_image_v6_put(img, &k, MOAT_ACT_TARPIT), 0);
	for (uint64_t i = 0; img->nv6 < target; i++) {
		widen_key(&k, i, 64);
		assert_int_equal(vt_image_v6_put(img, &k, MOAT_ACT_DROP), 0);
		if (i % 10 == 0) {
			widen_key(&k, i, 128);
			assert_int_equal(vt_image_v6_put(img, &k, MOAT_ACT_ALLOW), 0);
		}
		n = i + 1;
		if (img->nv6 == VT_TRIE6_WIDE_MIN - 2) {
			assert_int_equal(vt_trie6_storage(img->t6)->root_bits, 0);
			widen_check(img, n, 0);
		}
	}
	assert_int_equal(vt_trie6_storage(img->t6)->root_bits, MOAT_V6T_ROOT_BITS_WIDE);
	widen_check(img, n, 0);
	vt_image_stats(img, &st);
	assert_true(st.v6_trie_bytes >= (uint64_t)MOAT_V6T_ROOT_ENTRIES_WIDE * 4);
	/* deletes over the wide root */
	for (uint64_t i = 0; i < 2000; i++) {
		widen_key(&k, i, 64);
		vt_image_v6_del(img, &k);
		if (i % 10 == 0) {
			widen_key(&k, i, 128);
			vt_image_v6_del(img, &k);
		}
	}
	widen_check(img, n, 2000);
	vt_image_free(img);
}

/* test_grace - a freed group is not reused before grace_done. */
static void test_grace(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	struct moat_listing a = L4(S_ZEN, NET + 1, 32, C(4), 0);
	struct moat_listing b = L4(S_ZEN, NET + 2, 32, C(4), 0);
	struct moat_update *u;
	size_t n;
	uint32_t g1, g2, g3;

	(void)state;
	test_policy(p);
	p->grace_ms = 60000;
	db = vt_db_new(p, err, sizeof(err));
	assert_int_equal(vt_db_source_apply(db, S_ZEN, &a, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(u[0].kind, MOAT_UPD_GROUP);
	assert_int_equal(u[1].kind, MOAT_UPD_TBL24);
	g1 = u[0].index;
	free(u);
	assert_int_equal(vt_db_source_apply(db, S_ZEN, &b, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	g2 = u[0].index;
	free(u);
	assert_int_not_equal(g1, g2); /* copy on write, g1 waits for grace */
	assert_int_equal(vt_db_source_apply(db, S_ZEN, NULL, 0, &b, 1, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	g3 = u[0].index;
	free(u);
	assert_true(g3 != g1 && g3 != g2);
	vt_db_grace_done(db);
	assert_int_equal(vt_db_source_apply(db, S_ZEN, &b, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &n), 0);
	assert_true(u[0].index == g1 || u[0].index == g2);
	free(u);
	vt_db_free(db);
	free(p);
}

/* test_replace_after_churn - a replace and a dump find the source's
 * /24../32 entries after adds and deletes in many /24s (the per-source
 * /24 list goes stale and is compacted), and nothing of other sources. */
static void test_replace_after_churn(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	const size_t n = 1500;
	struct moat_listing *l = calloc(n, sizeof(*l)), *d = NULL;
	struct moat_listing keep[3], other;
	char err[256];
	struct vt_db *db;
	size_t dn = 0;

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	other = L4(S_BAR, A4(10, 1, 0, 9), 32, C(2), 0);
	assert_int_equal(vt_db_source_apply(db, S_BAR, &other, 1, NULL, 0, err,
					    sizeof(err)), 0);
	for (int round = 0; round < 3; round++) {
		/* one /32 in each of n /24s, then all of them deleted */
		for (size_t i = 0; i < n; i++)
			l[i] = L4(S_ZEN, A4(10, (uint32_t)round, 0, 0) +
				  ((uint32_t)i << 8) + 9, 32, C(4), 0);
		assert_int_equal(vt_db_source_apply(db, S_ZEN, l, n, NULL, 0, err,
						    sizeof(err)), 0);
		publish(db);
		assert_int_equal(vt_lookup_v4(db, A4(10, (uint32_t)round, 5, 9)),
				 MOAT_ACT_TARPIT);
		if (round < 2)
			assert_int_equal(vt_db_source_apply(db, S_ZEN, NULL, 0, l,
							    n, err, sizeof(err)), 0);
	}
	/* round 2's entries are stored: a replace keeps two, drops the rest,
	 * adds one in a /24 never used */
	keep[0] = l[3];
	keep[1] = l[n - 1];
	keep[2] = L4(S_ZEN, A4(10, 200, 0, 1), 32, C(4), 0);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, keep, 3, err,
					      sizeof(err)), 0);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, A4(10, 2, 3, 9)), MOAT_ACT_TARPIT);
	assert_int_equal(vt_lookup_v4(db, A4(10, 2, 4, 9)), MOAT_ACT_PASS);
	assert_int_equal(vt_lookup_v4(db, A4(10, 0, 3, 9)), MOAT_ACT_PASS);
	assert_int_equal(vt_lookup_v4(db, A4(10, 200, 0, 1)), MOAT_ACT_TARPIT);
	assert_int_equal(vt_db_source_dump(db, S_BAR, &d, &dn), 0);
	assert_int_equal(dn, 1);  /* the other source's entry stays */
	free(d);
	assert_int_equal(vt_db_source_dump(db, S_ZEN, &d, &dn), 0);
	assert_int_equal(dn, 3);
	for (size_t i = 0; i < dn; i++)
		assert_int_equal(d[i].source, S_ZEN);
	/* ascending, as the /24 order of the store */
	assert_memory_equal(d[0].pfx.addr, keep[0].pfx.addr, 4);
	assert_memory_equal(d[1].pfx.addr, keep[1].pfx.addr, 4);
	assert_memory_equal(d[2].pfx.addr, keep[2].pfx.addr, 4);
	free(d);
	vt_db_free(db);
	free(l);
	free(p);
}

/* test_big_replace - the radix path of a big load: duplicates and
 * listed+excluded pairs are found, a reload keeps unchanged entries quiet. */
/* wcmp - listing order (family, address, plen, exclude, code, ttl) */
static int wcmp(const void *x, const void *y)
{
	const struct moat_listing *a = x, *b = y;
	int c;

	if (a->pfx.family != b->pfx.family)
		return a->pfx.family < b->pfx.family ? -1 : 1;
	if ((c = memcmp(a->pfx.addr, b->pfx.addr, 16)))
		return c;
	if (a->pfx.plen != b->pfx.plen)
		return a->pfx.plen < b->pfx.plen ? -1 : 1;
	if (a->exclude != b->exclude)
		return a->exclude < b->exclude ? -1 : 1;
	if (a->code != b->code)
		return a->code < b->code ? -1 : 1;
	return a->ttl < b->ttl ? -1 : a->ttl > b->ttl;
}

/* walk_is_sorted_dump - vt_db_source_walk in chunks of cap gives the
 * source's dump in listing order */
static void walk_is_sorted_dump(const struct vt_db *db, uint16_t src, size_t cap)
{
	struct moat_listing *d = NULL, *w = malloc(cap * sizeof(*w));
	struct vt_walk wk;
	size_t dn = 0, got = 0, n;

	memset(&wk, 0, sizeof(wk));
	assert_int_equal(vt_db_source_dump(db, src, &d, &dn), 0);
	if (dn > 1)
		qsort(d, dn, sizeof(*d), wcmp);
	do {
		assert_int_equal(vt_db_source_walk(db, src, &wk, w, cap, &n), 0);
		for (size_t i = 0; i < n; i++, got++) {
			if (got >= dn)
				fail_msg("source %u: walk gives more than the dump's %zu", src, dn);
			if (wcmp(&w[i], &d[got]) || w[i].source != src)
				fail_msg("source %u: walk[%zu] differs from the sorted dump", src, got);
		}
	} while (n);
	if (got != dn)
		fail_msg("source %u: walk gave %zu, dump %zu", src, got, dn);
	free(d);
	free(w);
}

/* the walk's position is a key: deletes and adds below it between
 * chunks (a chunked diff applying as it walks) neither repeat nor skip
 * anything above it; short prefixes interleave with the /24s */
static void test_walk_under_change(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	size_t n = 5000, nw, got = 0;
	struct moat_listing *l = calloc(n, sizeof(*l)), *w = malloc(512 * sizeof(*w));
	struct vt_walk wk;

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	for (size_t i = 0; i < n; i++)
		l[i] = i % 50 == 0 ? L4(S_ZEN, A4(20, (uint32_t)(i / 50), 0, 0), 16, C(2), 0) :
		       L4(S_ZEN, A4(20, (uint32_t)(i % 97), (uint32_t)(i % 211), (uint32_t)(i % 13)), 32,
			  C(2), 0);
	qsort(l, n, sizeof(*l), wcmp);
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (!o || wcmp(&l[o - 1], &l[i]))
			l[o++] = l[i];
	n = o;
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n, err, sizeof(err)), 0);
	walk_is_sorted_dump(db, S_ZEN, 512);
	memset(&wk, 0, sizeof(wk));
	do {
		assert_int_equal(vt_db_source_walk(db, S_ZEN, &wk, w, 512, &nw), 0);
		for (size_t i = 0; i < nw; i++, got++)
			if (got >= n || wcmp(&w[i], &l[got]))
				fail_msg("walk[%zu] under change differs", got);
		if (nw) {
			/* delete the chunk's first listing, add one below it */
			struct moat_listing add = L4(S_ZEN, A4(1, 2, 3, 4) + (uint32_t)got * 256, 32,
						     C(3), 0);

			assert_int_equal(vt_db_source_apply(db, S_ZEN, &add, 1, &w[0], 1, err,
							    sizeof(err)), 0);
		}
	} while (nw);
	if (got != n)
		fail_msg("walk under change gave %zu, want %zu", got, n);
	vt_db_free(db);
	free(l);
	free(w);
	free(p);
}

static void test_big_replace(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	size_t n = 20000;
	struct moat_listing *l = calloc(n, sizeof(*l));
	struct moat_update *u;
	size_t nu;

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	for (size_t i = 0; i < n; i++)
		l[i] = L4(S_ZEN, A4(100, 64, 0, 0) + (uint32_t)(i * 7919 % 1000000),
			  32, i % 3 ? C(2) : C(4), 0);
	l[n - 1] = l[17]; /* duplicate */
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "duplicate"));
	l[n - 1] = l[17];
	l[n - 1].exclude = 1;
	l[n - 1].code = 0;
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "listed and excluded"));
	assert_int_equal(vt_db_publish(db, &u, &nu), 0);
	free(u);
	assert_int_equal(nu, 0);
	l[n - 1] = L4(S_ZEN, A4(100, 64, 0, 0) + 1000001, 32, C(4), 0);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n, err, sizeof(err)), 0);
	publish(db);
	for (size_t i = 0; i < n; i += 97) {
		uint32_t a = A4(l[i].pfx.addr[0], l[i].pfx.addr[1],
				l[i].pfx.addr[2], l[i].pfx.addr[3]);

		/* weight 3 or 5: tarpit either way */
		assert_int_equal(vt_lookup_v4(db, a), MOAT_ACT_TARPIT);
	}
	/* the same load again: nothing to publish */
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &nu), 0);
	free(u);
	assert_int_equal(nu, 0);
	/* a big IPv6 batch goes through the radix sort of struct rec */
	{
		size_t m = 6000;
		struct moat_listing *v = calloc(m, sizeof(*v));
		uint8_t a6[16] = { 0x20, 1, 0xd, 0xb8 };

		for (size_t i = 0; i < m; i++) {
			a6[6] = (uint8_t)(i >> 8);
			a6[7] = (uint8_t)i;
			v[i] = L6(S_BAR, a6, 64, C(2), 0);
		}
		v[m - 1] = v[5];
		assert_int_equal(vt_db_source_apply(db, S_BAR, v, m, NULL, 0, err,
						    sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "duplicate"));
		a6[6] = 0xff;
		v[m - 1] = L6(S_BAR, a6, 64, C(2), 0);
		assert_int_equal(vt_db_source_apply(db, S_BAR, v, m, NULL, 0, err,
						    sizeof(err)), 0);
		assert_int_equal(vt_db_source_replace(db, S_BAR, v, m, err,
						      sizeof(err)), 0);
		free(v);
	}
	/* one entry less: one /24 changes */
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n - 1, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish(db, &u, &nu), 0);
	free(u);
	assert_true(nu >= 1 && nu <= 2);
	vt_db_free(db);
	free(l);
	free(p);
}

struct shadow {
	struct vt_image *img;
	int calls, fail_at;
	size_t n;
};

/* shadow_emit - a fast path that takes chunks until told to fail. */
static int shadow_emit(void *ctx, const struct moat_update *u, size_t n)
{
	struct shadow *sh = ctx;

	if (++sh->calls == sh->fail_at)
		return -EIO;
	assert_true(n > 0 && n <= VT_EMIT_CHUNK);
	assert_int_equal(vt_image_apply(sh->img, u, n), 0);
	sh->n += n;
	return 0;
}

/* test_publish_stream - chunked publish; a fast path failing half way
 * leaves the live image equal to what it took, the next publish ends it. */
static void test_publish_stream(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	size_t n = 10000, cnt = 0;
	struct moat_listing *l = calloc(n + 1, sizeof(*l));
	struct shadow sh = { vt_image_new(), 0, 3, 0 };
	uint8_t a6[16] = { 0x20, 1, 0xd, 0xb8 };

	(void)state;
	test_policy(p);
	db = vt_db_new(p, err, sizeof(err));
	for (size_t i = 0; i < n; i++)
		l[i] = L4(S_ZEN, A4(20, 0, 0, 5) + (uint32_t)(i << 8), 32, C(4), 0);
	l[n] = L6(S_ZEN, a6, 32, C(4), 0);
	assert_int_equal(vt_db_source_replace(db, S_ZEN, l, n + 1, err, sizeof(err)), 0);
	assert_int_equal(vt_db_publish_cb(db, shadow_emit, &sh, &cnt), -EIO);
	assert_int_equal(cnt, 2 * (VT_EMIT_CHUNK / 2) * 2);
	assert_int_equal(cnt, sh.n);
	assert_true(vt_image_equal_verdicts(sh.img, vt_db_image(db)));
	assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_PASS);
	/* the rest goes out next time */
	sh.fail_at = -1;
	assert_int_equal(vt_db_publish_cb(db, shadow_emit, &sh, &cnt), 0);
	assert_int_equal(sh.n, 2 * n + 2); /* + plens + the IPv6 put */
	assert_true(vt_image_equal_verdicts(sh.img, vt_db_image(db)));
	for (size_t i = 0; i < n; i += 101)
		assert_int_equal(vt_lookup_v4(db, A4(20, 0, 0, 5) + (uint32_t)(i << 8)),
				 MOAT_ACT_TARPIT);
	assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_TARPIT);
	/* a failure inside the IPv6 part keeps the emitted prefix live */
	{
		struct moat_listing d[2] = { L6(S_ZEN, a6, 32, C(4), 0),
					     L6(S_ZEN, a6, 48, C(4), 0) };

		a6[5] = 1;
		d[1] = L6(S_ZEN, a6, 48, C(2), 0);
		assert_int_equal(vt_db_source_apply(db, S_ZEN, d + 1, 1, d, 1, err,
						    sizeof(err)), 0);
		sh.calls = 0;
		sh.fail_at = 1; /* plens, put, del, plens in one chunk: all or nothing */
		assert_int_equal(vt_db_publish_cb(db, shadow_emit, &sh, &cnt), -EIO);
		assert_true(vt_image_equal_verdicts(sh.img, vt_db_image(db)));
		sh.fail_at = -1;
		assert_int_equal(vt_db_publish_cb(db, shadow_emit, &sh, &cnt), 0);
		assert_true(vt_image_equal_verdicts(sh.img, vt_db_image(db)));
		assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_TARPIT);
	}
	vt_image_free(sh.img);
	vt_db_free(db);
	free(l);
	free(p);
}

/* A fast path whose group array the db shares (fp_xdp's mapping). */
struct fpshare {
	struct vt_image *img;     /* what the fast path holds (own groups) */
	struct moat_group *store; /* its group array: the db's live groups */
	uint32_t cap;
	uint32_t *tbl;            /* its tbl24: the db's live tbl24 */
};

/* fpshare_emit - groups into store (and the model), the rest into the model */
static int fpshare_emit(void *ctx, const struct moat_update *u, size_t n)
{
	struct fpshare *f = ctx;

	for (size_t i = 0; i < n; i++) {
		if (u[i].kind == MOAT_UPD_GROUP) {
			if (u[i].index >= f->cap)
				return -ERANGE;
			f->store[u[i].index] = u[i].u.group;
		}
		if (u[i].kind == MOAT_UPD_TBL24)
			f->tbl[u[i].index] = u[i].value;
		assert_int_equal(vt_image_apply(f->img, &u[i], 1), 0);
	}
	return 0;
}

/* test_shared_groups - a db whose live groups are the fast path's array
 * gives the same verdicts as one with its own copy, through changes,
 * adoption of what the maps hold, and back to a private copy. */
static void test_shared_groups(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *sh, *own;
	struct fpshare f = { vt_image_new(), calloc(512, sizeof(struct moat_group)), 512,
			     calloc(MOAT_TBL24_ENTRIES, sizeof(uint32_t)) };
	struct moat_listing l[300];
	struct moat_update *u = NULL;
	size_t n = 0, cnt;

	(void)state;
	test_policy(p);
	sh = vt_db_new(p, err, sizeof(err));
	own = vt_db_new(p, err, sizeof(err));
	assert_int_equal(vt_db_share_groups(sh, f.store, f.cap), 0);
	assert_int_equal(vt_db_share_groups(sh, f.store, f.cap), -EALREADY);
	assert_int_equal(vt_db_share_tbl24(sh, f.tbl), 0);
	assert_int_equal(vt_db_share_tbl24(sh, f.tbl), -EALREADY);
	for (int round = 0; round < 4; round++) {
		/* 300 addresses over ~100 /24s; each round moves a third */
		for (uint32_t i = 0; i < 300; i++)
			l[i] = L4(S_ZEN, A4(10, round, (i * 7 + round * (i % 3 == 0)) % 100,
					    i * 13 % 251),
				  32, C(2 + (i + round) % 3 * 2), 0);
		assert_int_equal(vt_db_source_replace(sh, S_ZEN, l, 300, err, sizeof(err)), 0);
		assert_int_equal(vt_db_source_replace(own, S_ZEN, l, 300, err, sizeof(err)), 0);
		assert_int_equal(vt_db_publish_cb(sh, fpshare_emit, &f, &cnt), 0);
		publish(own);
		vt_db_grace_done(sh);
		assert_true(cnt > 0);
		assert_true(vt_db_image(sh)->groups == f.store);
		assert_true(vt_db_image(sh)->tbl24 == f.tbl);
		assert_true(vt_image_equal_verdicts(vt_db_image(sh), vt_db_image(own)));
		assert_true(vt_image_equal_verdicts(f.img, vt_db_image(own)));
		for (uint32_t i = 0; i < 300; i++)
			assert_int_equal(vt_lookup_v4(sh, l[i].pfx.addr[0] << 24 |
							  l[i].pfx.addr[1] << 16 |
							  l[i].pfx.addr[2] << 8 | l[i].pfx.addr[3]),
					 vt_lookup_v4(own, l[i].pfx.addr[0] << 24 |
							   l[i].pfx.addr[1] << 16 |
							   l[i].pfx.addr[2] << 8 | l[i].pfx.addr[3]));
	}
	/* a resync adopts what the maps hold: still shared */
	assert_int_equal(vt_db_full_image(sh, &u, &n), 0);
	{
		struct vt_image *maps = vt_image_new();

		assert_int_equal(vt_image_apply(maps, u, n), 0);
		assert_int_equal(vt_db_adopt(sh, maps), 0);
		assert_true(vt_db_image(sh)->groups == f.store);
		assert_true(vt_db_image(sh)->tbl24 == f.tbl);
		vt_image_free(maps);
	}
	free(u);
	assert_int_equal(vt_db_publish_cb(sh, fpshare_emit, &f, &cnt), 0);
	assert_true(vt_image_equal_verdicts(vt_db_image(sh), vt_db_image(own)));
	/* back to a private copy: the store may go */
	assert_int_equal(vt_db_unshare(sh), 0);
	assert_true(vt_db_image(sh)->groups != f.store);
	assert_true(vt_db_image(sh)->tbl24 != f.tbl);
	memset(f.store, 0xff, f.cap * sizeof(struct moat_group));
	memset(f.tbl, 0, MOAT_TBL24_ENTRIES * sizeof(uint32_t));
	assert_true(vt_image_equal_verdicts(vt_db_image(sh), vt_db_image(own)));
	/* a store that does not hold the live groups is refused */
	assert_int_equal(vt_db_share_groups(sh, f.store, f.cap), -EINVAL);
	assert_int_equal(vt_db_share_tbl24(sh, f.tbl), -EINVAL);
	/* a store too small for what publish needs: ERANGE (as the fast path) */
	memset(f.store, 0, f.cap * sizeof(struct moat_group));
	{
		struct vt_db *small = vt_db_new(p, err, sizeof(err));

		assert_int_equal(vt_db_share_groups(small, f.store, 4), 0);
		assert_int_equal(vt_db_source_replace(small, S_ZEN, l, 300, err, sizeof(err)), 0);
		assert_int_equal(vt_db_publish_cb(small, fpshare_emit, &f, &cnt), -ERANGE);
		vt_db_free(small);
	}
	vt_image_free(f.img);
	free(f.store);
	free(f.tbl);
	vt_db_free(sh);
	vt_db_free(own);
	free(p);
}

/* test_set_policy - sources leave, thresholds move, counters stay. */
static void test_set_policy(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db;
	struct vt_source_counters sc;
	struct moat_listing z = L4(S_ZEN, NET + 1, 32, C(2), 0);
	struct moat_listing b = L4(S_BAR, NET + 1, 32, C(2), 0);
	struct moat_listing b6 = L6(S_BAR, (const uint8_t[16]){ 0x20, 1, 0xd, 0xb8 },
				    32, C(2), 0);
	uint8_t a6[16] = { 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

	(void)state;
	test_policy(p);
	p->tarpit_at = 4;
	db = vt_db_new(p, err, sizeof(err));
	assert_int_equal(vt_db_source_apply(db, S_ZEN, &z, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_source_apply(db, S_BAR, &b, 1, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(vt_db_source_apply(db, S_BAR, &b6, 1, NULL, 0, err, sizeof(err)), 0);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, NET + 1), MOAT_ACT_TARPIT); /* 3+1 */
	/* drop BAR (the last source) and lower the tarpit threshold */
	p->nsources--;
	p->sources[1] = p->sources[2];
	p->sources[2] = p->sources[3];
	p->tarpit_at = 3;
	p->drop_at = 3;
	assert_int_equal(vt_db_set_policy(db, p, err, sizeof(err)), 0);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, NET + 1), MOAT_ACT_DROP);
	assert_int_equal(vt_lookup_v6(db, a6), MOAT_ACT_PASS);
	assert_int_equal(vt_db_source_counters(db, S_ZEN, &sc), 0);
	assert_int_equal(sc.entries_v4, 1);
	assert_int_equal(vt_db_source_counters(db, S_BAR, &sc), -ENOENT);
	assert_int_equal(vt_db_source_apply(db, S_BAR, &b, 1, NULL, 0, err, sizeof(err)),
			 -ENOENT);
	/* an invalid policy leaves everything as it was */
	p->drop_at = 1;
	assert_int_equal(vt_db_set_policy(db, p, err, sizeof(err)), -EINVAL);
	publish(db);
	assert_int_equal(vt_lookup_v4(db, NET + 1), MOAT_ACT_DROP);
	vt_db_free(db);
	free(p);
}

/* test_adopt - a restarted control plane rebuilds the image of the pinned
 * maps, adopts it, and publishes only the difference, safely ordered. */
static void test_adopt(void **state)
{
	struct vt_policy *p = malloc(sizeof(*p));
	char err[256];
	struct vt_db *db1, *db2;
	struct moat_update *u = NULL;
	size_t n = 0;
	struct vt_image *pinned = vt_image_new();
	struct model m = { NULL, 0, 0 };
	struct moat_listing l[64];
	uint8_t a6[16] = { 0x20, 1, 0xd, 0xb8, 0, 7 };
	size_t k = 0;

	(void)state;
	test_policy(p);
	db1 = vt_db_new(p, err, sizeof(err));
	db2 = vt_db_new(p, err, sizeof(err));
	for (uint32_t i = 0; i < 40; i++)
		l[k++] = L4(S_ZEN, A4(198, 51, i, 7 * i), 32, C(4), 0);
	l[k++] = L6(S_ZEN, a6, 48, C(4), 0);
	assert_int_equal(vt_db_source_replace(db1, S_ZEN, l, k, err, sizeof(err)), 0);
	publish(db1);
	/* the pinned maps, as a loader would rebuild them */
	assert_int_equal(vt_db_full_image(db1, &u, &n), 0);
	assert_int_equal(vt_image_apply(pinned, u, n), 0);
	free(u);
	/* the new process: same data but one entry gone, one added */
	l[0] = L4(S_ZEN, A4(198, 51, 200, 1), 32, C(4), 0);
	assert_int_equal(vt_db_source_replace(db2, S_ZEN, l, k, err, sizeof(err)), 0);
	assert_int_equal(vt_db_adopt(db2, pinned), 0);
	assert_int_equal(vt_db_publish(db2, &u, &n), 0);
	/* /24 198.51.0 goes back to PASS (1 update), 198.51.200 gets a group
	 * (2 updates) */
	assert_int_equal(n, 3);
	for (size_t i = 0; i < k; i++)
		model_add(&m, &l[i]);
	check_order(pinned, vt_db_image(db2), u, n, &m);
	free(u);
	free(m.l);
	vt_image_free(pinned);
	vt_db_free(db1);
	vt_db_free(db2);
	free(p);
}

/* test_image_apply_bad - a fast-path model refuses malformed updates. */
static void test_image_apply_bad(void **state)
{
	struct vt_image *img = vt_image_new();
	struct moat_update u;

	(void)state;
	memset(&u, 0, sizeof(u));
	u.kind = 99;
	assert_int_equal(vt_image_apply(img, &u, 1), -EINVAL);
	u.kind = MOAT_UPD_TBL24;
	u.index = MOAT_TBL24_ENTRIES;
	assert_int_equal(vt_image_apply(img, &u, 1), -EINVAL);
	u.kind = MOAT_UPD_V6_PLENS;
	u.u.plens.n = MOAT_V6_MAX_PLENS + 1;
	assert_int_equal(vt_image_apply(img, &u, 1), -EINVAL);
	u.kind = MOAT_UPD_V6_PUT;
	memset(&u.u, 0, sizeof(u.u));
	u.u.key.plen = 129;
	assert_int_equal(vt_image_apply(img, &u, 1), -EINVAL);
	vt_image_free(img);
}

int main(void)
{
	const char *e = getenv("VT_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_bad_policy),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_v6_basics),
		cmocka_unit_test(test_plens_flip),
		cmocka_unit_test(test_v6_incremental),
		cmocka_unit_test(test_grace),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_walk_under_change),
		cmocka_unit_test(test_big_replace),
		cmocka_unit_test(test_replace_after_churn),
		cmocka_unit_test(test_publish_stream),
		cmocka_unit_test(test_shared_groups),
		cmocka_unit_test(test_set_policy),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_image_apply_bad),
		cmocka_unit_test(test_image_widen),
	};

	seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
	if (!seed)
		seed = 1;
	seed0 = seed;
	printf("# VT_SEED=%llu\n", (unsigned long long)seed0);
	return cmocka_run_group_tests_name("vtable", tests, NULL, NULL);
}
