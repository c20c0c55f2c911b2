/* test_zone.c - a zone's listings give every address the answer DNS gives
 * (RFC 4592 wildcards, empty non-terminals), checked three ways: a case
 * table, an independent RFC 4592 resolver model over random zones, and
 * IXFR-style batches whose deltas must add up to the listings of a zone
 * built from scratch (and roll back exactly). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <errno.h>

#include <libknot/libknot.h>

#include "codes.h"
#include "owner.h"
#include "sanity.h"
#include "zone.h"

#define APEX "bl.test."

/* add_rr - "owner TYPE value" with a relative owner ("@" = apex) */
static int zone_line(struct moat_zone *z, enum moat_zone_op op, const char *line)
{
	char owner[300], type[16], val[100], full[400];
	uint8_t wire[KNOT_DNAME_MAXLEN], rd[64];
	uint16_t rdlen = 0, t;

	if (sscanf(line, "%299s %15s %99s", owner, type, val) != 3)
		return -100;
	snprintf(full, sizeof(full), "%s%s%s", strcmp(owner, "@") ? owner : "",
		 strcmp(owner, "@") ? "." : "", APEX);
	if (!knot_dname_from_str(wire, full, sizeof(wire)))
		return -101;
	if (!strcmp(type, "A")) {
		unsigned a, b, c, d;
		t = KNOT_RRTYPE_A;
		if (sscanf(val, "%u.%u.%u.%u", &a, &b, &c, &d) != 4)
			return -102;
		rd[0] = (uint8_t)a, rd[1] = (uint8_t)b, rd[2] = (uint8_t)c, rd[3] = (uint8_t)d;
		rdlen = 4;
	} else if (!strcmp(type, "TXT")) {
		t = KNOT_RRTYPE_TXT;
		rd[0] = (uint8_t)strlen(val);
		memcpy(rd + 1, val, strlen(val));
		rdlen = (uint16_t)(1 + strlen(val));
	} else if (!strcmp(type, "BADA")) {
		t = KNOT_RRTYPE_A;
		rdlen = 3;
		memset(rd, 127, 3);
	} else {
		return -103;
	}
	return moat_zone_rr(z, op, wire, t, 300, rd, rdlen);
}

/* fmt - listings as sorted "prefix code|exclude" lines joined by ';' */
static void fmt(struct moat_lvec *lv, char *buf, size_t bufsz)
{
	size_t n = 0;

	moat_lvec_sort(lv);
	buf[0] = 0;
	for (size_t i = 0; i < lv->n; i++) {
		char p[80];
		const struct moat_listing *l = &lv->v[i];
		moat_prefix_str(&l->pfx, p, sizeof(p));
		if (l->exclude)
			n += (size_t)snprintf(buf + n, bufsz - n, "%s%s !", n ? ";" : "", p);
		else
			n += (size_t)snprintf(buf + n, bufsz - n, "%s%s %u", n ? ";" : "", p,
					      l->code & 0xff);
		if (n >= bufsz)
			break;
	}
}

struct sem_case {
	const char *name;
	const char *rrs[8];
	const char *want; /* ';'-joined; code = last octet of the A value */
};

static const struct sem_case sem_cases[] = {
	{ "single /32", { "2.0.0.127 A 127.0.0.2" }, "127.0.0.2/32 2" },
	{ "two codes", { "5.2.0.192 A 127.0.0.2", "5.2.0.192 A 127.0.0.4" },
	  "192.0.2.5/32 2;192.0.2.5/32 4" },
	{ "wildcard /24", { "*.113.0.203 A 127.0.0.2" }, "203.0.113.0/24 2" },
	{ "explicit below wildcard keeps its answer",
	  { "*.113.0.203 A 127.0.0.2", "99.113.0.203 A 127.0.0.10" },
	  "203.0.113.0/24 2;203.0.113.99/32 10" },
	{ "TXT-only name below wildcard is not listed",
	  { "*.113.0.203 A 127.0.0.2", "7.113.0.203 TXT x" },
	  "203.0.113.0/24 2;203.0.113.7/32 !" },
	{ "ENT below a /16 wildcard blocks its /24",
	  { "*.51.198 A 127.0.0.3", "20.100.51.198 A 127.0.0.4" },
	  "198.51.0.0/16 3;198.51.100.0/24 !;198.51.100.20/32 4" },
	{ "wildcard below wildcard",
	  { "*.10 A 127.0.0.5", "*.3.1.10 A 127.0.0.6" },
	  "10.0.0.0/8 5;10.1.0.0/16 !;10.1.3.0/24 6" }, /* "10": no nibble */
	{ "wildcard without A answers NODATA",
	  { "*.77.100 TXT x", "1.1.77.100 A 127.0.0.2" }, "100.77.1.1/32 2" },
	{ "name deeper than an address makes the /32 an ENT",
	  { "x.4.4.4.4 A 127.0.0.2", "*.4.4.4 A 127.0.0.8" },
	  "4.4.4.0/24 8;4.4.4.4/32 !;4440::/12 8;4444::/16 !" },
	{ "literal * mid-name: ENT wildcard, nothing listed", { "5.*.9 A 127.0.0.2" }, "" },
	{ "apex wildcard lists the world, minus existing children",
	  { "* A 127.0.0.2", "2.0.0.127 A 127.0.0.2", "ns A 198.18.2.2" },
	  "0.0.0.0/0 2;127.0.0.0/8 !;127.0.0.2/32 2;::/0 2" },
	{ "error codes are passed on", { "12.2.0.192 A 127.255.255.254" }, "192.0.2.12/32 254" },
	{ "undecodable A records are not listings",
	  { "01.2.0.192 A 127.0.0.2", "ns A 198.18.2.2", "2.0.192 A 127.0.0.2" }, "" },
	{ "v6 /128 and a /48 nibble wildcard with override",
	  { "*.0.0.1.0.8.b.d.0.1.0.0.2 A 127.0.0.2",
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.8.b.d.0.1.0.0.2 A 127.0.0.9" },
	  "2001:db8:100::/48 2;2001:db8:100::/52 !;2001:db8:100::1/128 9" },
	{ "uppercase nibbles and apex case",
	  { "F.F.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.8.B.D.0.1.0.0.2 A 127.0.0.3" },
	  "2001:db8:200::ff/128 3" },
};

static void test_semantics_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sem_cases) / sizeof(sem_cases[0]); i++) {
		const struct sem_case *c = &sem_cases[i];
		struct moat_zone *z = moat_zone_new(APEX, 7);
		struct moat_lvec lv = { 0 };
		char got[2048];

		assert_non_null(z);
		for (size_t j = 0; j < 8 && c->rrs[j]; j++) {
			int r = zone_line(z, MOAT_ZONE_ADD, c->rrs[j]);
			if (r)
				fail_msg("case %s: add '%s' = %d", c->name, c->rrs[j], r);
		}
		assert_int_equal(moat_zone_listings(z, &lv), 0);
		for (size_t j = 0; j < lv.n; j++)
			assert_int_equal(lv.v[j].source, 7);
		fmt(&lv, got, sizeof(got));
		if (strcmp(got, c->want))
			fail_msg("case %s:\n got  %s\n want %s", c->name, got, c->want);
		moat_lvec_free(&lv);
		moat_zone_free(z);
	}
}

static void test_errors(void **state)
{
	struct moat_zone *z = moat_zone_new(APEX, 1);
	uint8_t w[KNOT_DNAME_MAXLEN];
	uint8_t a[4] = { 127, 0, 0, 2 };
	struct moat_zone_stats st;

	(void)state;
	knot_dname_from_str(w, "1.2.3.4.other.test.", sizeof(w));
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 1, a, 4), -EINVAL);
	knot_dname_from_str(w, "test.", sizeof(w));
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 1, a, 4), -EINVAL);
	assert_int_equal(zone_line(z, MOAT_ZONE_ADD, "1.2.3.4 BADA x"), -EINVAL);
	assert_int_equal(zone_line(z, MOAT_ZONE_DEL, "1.2.3.4 A 127.0.0.2"), -ENOENT);
	assert_int_equal(zone_line(z, MOAT_ZONE_ADD, "1.2.3.4 A 127.0.0.2"), 0);
	assert_int_equal(zone_line(z, MOAT_ZONE_DEL, "1.2.3.4 A 127.0.0.3"), -ENOENT);
	assert_int_equal(zone_line(z, MOAT_ZONE_DEL, "1.2.3.4 TXT x"), -ENOENT);
	/* the apex is found whatever its case */
	knot_dname_from_str(w, "1.2.3.4.BL.Test.", sizeof(w));
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_DEL, w, KNOT_RRTYPE_A, 1, a, 4), 0);
	assert_int_equal(zone_line(z, MOAT_ZONE_ADD, "ns A 198.18.2.2"), 0);
	moat_zone_get_stats(z, &st);
	assert_int_equal(st.a_records, 0);
	assert_int_equal(st.undecodable, 1);
	assert_null(moat_zone_new("bad..name", 1));
	moat_zone_free(z);
}

/* --- an independent model: RFC 4592 lookup over a record list --- */

#define MAXREC 64
struct rec {
	char lab[6][4]; /* apex first */
	int n;
	int txt;        /* TXT instead of A */
	unsigned code;  /* last octet; TXT: distinguishes records */
};

struct model {
	struct rec r[MAXREC];
	int n;
};

static uint64_t rs = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (unsigned)(rs % n);
}

static void rand_rec(struct rec *r)
{
	static const char *labs[] = { "1", "2", "3", "*", "x", "1", "2" };
	memset(r, 0, sizeof(*r));
	r->n = 1 + (int)rnd(5);
	for (int i = 0; i < r->n; i++)
		strcpy(r->lab[i], labs[rnd(7)]);
	r->txt = rnd(5) == 0;
	r->code = 2 + rnd(3);
}

static void rec_line(const struct rec *r, char *buf, size_t sz)
{
	size_t n = 0;
	for (int i = r->n - 1; i >= 0; i--)
		n += (size_t)snprintf(buf + n, sz - n, "%s%s", r->lab[i], i ? "." : "");
	if (r->txt)
		snprintf(buf + n, sz - n, " TXT t%u", r->code);
	else
		snprintf(buf + n, sz - n, " A 127.0.0.%u", r->code);
}

static int same_rec(const struct rec *a, const struct rec *b)
{
	if (a->n != b->n || a->txt != b->txt || a->code != b->code)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->lab[i], b->lab[i]))
			return 0;
	return 1;
}

/* m_exists - a name (apex-first labels q[0..n-1]) exists in the model */
static int m_exists(const struct model *m, char q[][4], int n)
{
	for (int i = 0; i < m->n; i++) {
		if (m->r[i].n < n)
			continue;
		int k = 0;
		while (k < n && !strcasecmp(m->r[i].lab[k], q[k]))
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

/* m_codes - A codes of records owned exactly by q (bitmask of last octet) */
static unsigned m_codes(const struct model *m, char q[][4], int n)
{
	unsigned mask = 0;
	for (int i = 0; i < m->n; i++) {
		if (m->r[i].n != n || m->r[i].txt)
			continue;
		int k = 0;
		while (k < n && !strcasecmp(m->r[i].lab[k], q[k]))
			k++;
		if (k == n)
			mask |= 1u << m->r[i].code;
	}
	return mask;
}

/* m_answer - the A codes DNS answers for query name q (32 labels max) */
static unsigned m_answer(const struct model *m, char q[][4], int n)
{
	if (m_exists(m, q, n))
		return m_codes(m, q, n);
	int ce = n - 1;
	while (ce > 0 && !m_exists(m, q, ce))
		ce--;
	char w[33][4];
	memcpy(w, q, sizeof(w[0]) * (size_t)ce);
	strcpy(w[ce], "*");
	if (ce + 1 <= 5 && m_exists(m, w, ce + 1))
		return m_codes(m, w, ce + 1);
	return 0;
}

/* l_answer - the codes the listings give an address (most specific wins) */
static unsigned l_answer(const struct moat_lvec *lv, const struct moat_prefix *a)
{
	int best = -1;
	unsigned mask = 0;
	int excl = 0;
	for (size_t i = 0; i < lv->n; i++) {
		const struct moat_listing *l = &lv->v[i];
		if (!moat_prefix_contains(&l->pfx, a) || l->pfx.plen < best)
			continue;
		if (l->pfx.plen > best) {
			best = l->pfx.plen;
			mask = 0;
			excl = 0;
		}
		if (l->exclude)
			excl = 1;
		else
			mask |= 1u << (l->code & 0xff);
	}
	return excl ? 0 : mask;
}

/* z_answer - the codes moat_zone_lookup gives (bitmask of last octet) */
static unsigned z_answer(const struct moat_zone *z, const struct moat_prefix *a)
{
	struct moat_zone_answer ans;
	unsigned mask = 0;

	assert_int_equal(moat_zone_lookup(z, a, &ans), 0);
	for (size_t i = 0; i < ans.ncodes; i++)
		mask |= 1u << (ans.codes[i] & 0xff);
	if ((ans.status == MOAT_ZONE_LISTED) != (mask != 0))
		fail_msg("lookup status %d with codes %#x", ans.status, mask);
	return mask;
}

/* check_model - every address over the labels 1..4 answers as the model,
 * both from the listings and from moat_zone_lookup */
static void check_model(const struct model *m, const struct moat_zone *z,
			const struct moat_lvec *lv, int round)
{
	char q[33][4];
	/* IPv4: all of {1,2,3,4}^4 */
	for (unsigned v = 0; v < 256; v++) {
		struct moat_prefix a = { .family = MOAT_AF_INET, .plen = 32 };
		for (int i = 0; i < 4; i++) {
			unsigned o = 1 + ((v >> (2 * i)) & 3);
			snprintf(q[i], 4, "%u", o);
			a.addr[i] = (uint8_t)o;
		}
		unsigned want = m_answer(m, q, 4), got = l_answer(lv, &a);
		if (want != got || want != z_answer(z, &a)) {
			char p[80];
			fail_msg("round %d: %s: model %#x listings %#x", round,
				 moat_prefix_str(&a, p, sizeof(p)), want, got);
		}
	}
	/* IPv6: first 6 nibbles from {1,2,3,4}, the rest 0 */
	for (unsigned v = 0; v < 4096; v += 7) {
		struct moat_prefix a = { .family = MOAT_AF_INET6, .plen = 128 };
		for (int i = 0; i < 32; i++) {
			unsigned x = i < 6 ? 1 + ((v >> (2 * i)) & 3) : 0;
			snprintf(q[i], 4, "%x", x);
			a.addr[i / 2] |= (uint8_t)(i % 2 ? x : x << 4);
		}
		unsigned want = m_answer(m, q, 32), got = l_answer(lv, &a);
		if (want != got || want != z_answer(z, &a)) {
			char p[80];
			fail_msg("round %d: %s: model %#x listings %#x", round,
				 moat_prefix_str(&a, p, sizeof(p)), want, got);
		}
	}
}

/* model_add_random - add a random record not already in the model to
 * both the model and the zone (nothing when it draws a duplicate) */
static void model_add_random(struct model *m, struct moat_zone *z)
{
	struct rec r;
	char line[100];

	rand_rec(&r);
	for (int i = 0; i < m->n; i++)
		if (same_rec(&r, &m->r[i]))
			return;
	m->r[m->n++] = r;
	rec_line(&r, line, sizeof(line));
	assert_int_equal(zone_line(z, MOAT_ZONE_ADD, line), 0);
}

/* check_cursor - a chunked walk gives the zone's listings (all, in
 * order: lv from moat_zone_listings), and range queries give the part of
 * them inside each listing's prefix and its shorter masks */
static void check_cursor(const struct moat_zone *z, const struct moat_lvec *lv, const char *what)
{
	for (size_t max = 1; max <= 5; max += 4) {
		struct moat_zone_cursor *c = moat_zone_cursor_new(z);
		struct moat_lvec w = { 0 };
		size_t before;

		assert_non_null(c);
		do {
			before = w.n;
			assert_int_equal(moat_zone_cursor_next(c, &w, max), 0);
		} while (w.n > before);
		if (w.n != lv->n)
			fail_msg("%s: cursor gave %zu listings, want %zu", what, w.n, lv->n);
		for (size_t i = 0; i < w.n; i++)
			if (moat_listing_cmp(&w.v[i], &lv->v[i]))
				fail_msg("%s: cursor listing %zu differs", what, i);
		moat_zone_cursor_rewind(c);
		w.n = 0;
		assert_int_equal(moat_zone_cursor_next(c, &w, lv->n + 1), 0);
		assert_int_equal(w.n, lv->n);
		for (size_t i = 0; i < lv->n; i++) {
			for (int m = 0; m < 3; m++) {
				struct moat_prefix r = lv->v[i].pfx;
				bool exact = m == 0;

				/* the prefix, and masks around it: a label shorter, and
				 * not a whole number of labels */
				if (m && r.plen >= 8)
					r.plen = (uint8_t)(r.plen - (m == 1 ? 8 : 3));
				for (unsigned b = r.plen; b < 128; b++)
					r.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
				w.n = 0;
				assert_int_equal(moat_zone_cursor_range(c, &r, exact, &w), 0);
				size_t k = 0;

				for (size_t j = 0; j < lv->n; j++) {
					if (!moat_prefix_contains(&r, &lv->v[j].pfx) ||
					    (exact && lv->v[j].pfx.plen != r.plen))
						continue;
					if (k >= w.n || moat_listing_cmp(&w.v[k], &lv->v[j]))
						fail_msg("%s: range %zu (exact %d) differs at %zu", what,
							 i, exact, k);
					k++;
				}
				if (k != w.n)
					fail_msg("%s: range %zu (exact %d) gave %zu, want %zu", what, i,
						 exact, w.n, k);
			}
		}
		moat_lvec_free(&w);
		moat_zone_cursor_free(c);
	}
}

static void test_model_random_zones(void **state)
{
	(void)state;
	for (int round = 0; round < 300; round++) {
		struct model m = { .n = 0 };
		struct moat_zone *z = moat_zone_new(APEX, 1);
		struct moat_lvec lv = { 0 };
		int nrec = 1 + (int)rnd(14);
		while (m.n < nrec)
			model_add_random(&m, z);
		assert_int_equal(moat_zone_listings(z, &lv), 0);
		check_model(&m, z, &lv, round);
		check_cursor(z, &lv, "random zone");
		moat_lvec_free(&lv);
		moat_zone_free(z);
	}
}

static void test_incremental_batches(void **state)
{
	(void)state;
	for (int run = 0; run < 40; run++) {
		struct model m = { .n = 0 };
		struct moat_zone *z = moat_zone_new(APEX, 3);
		struct moat_lvec cur = { 0 };
		/* every other run keeps TXT: deletes then match their data */
		assert_int_equal(moat_zone_keep_txt(z, run % 2), 0);
		for (int batch = 0; batch < 25; batch++) {
			struct moat_lvec add = { 0 }, del = { 0 }, fresh = { 0 }, before = { 0 };
			int rollback = rnd(6) == 0;
			struct model saved = m;
			assert_int_equal(moat_zone_listings(z, &before), 0);
			assert_int_equal(moat_zone_begin(z), 0);
			int ops = 1 + (int)rnd(6);
			for (int k = 0; k < ops; k++) {
				char line[100];
				if (m.n > 0 && (rnd(2) || m.n == MAXREC)) {
					int i = (int)rnd((unsigned)m.n);
					rec_line(&m.r[i], line, sizeof(line));
					assert_int_equal(zone_line(z, MOAT_ZONE_DEL, line), 0);
					m.r[i] = m.r[--m.n];
				} else {
					model_add_random(&m, z);
				}
			}
			if (rollback) {
				moat_zone_rollback(z);
				m = saved;
				assert_int_equal(moat_zone_listings(z, &fresh), 0);
				if (!moat_lvec_equal(&fresh, &before))
					fail_msg("run %d batch %d: rollback changed the listings", run, batch);
			} else {
				assert_int_equal(moat_zone_commit(z, &add, &del), 0);
				if (moat_lvec_apply(&cur, &add, &del))
					fail_msg("run %d batch %d: delta deletes a listing we do not have",
						 run, batch);
				assert_int_equal(moat_zone_listings(z, &fresh), 0);
				if (!moat_lvec_equal(&fresh, &cur))
					fail_msg("run %d batch %d: deltas (%zu+, %zu-) do not add up", run,
						 batch, add.n, del.n);
			}
			check_model(&m, z, &fresh, run * 100 + batch);
			moat_lvec_free(&add);
			moat_lvec_free(&del);
			moat_lvec_free(&fresh);
			moat_lvec_free(&before);
		}
		/* a zone built from scratch from the model has the same listings */
		struct moat_zone *z2 = moat_zone_new(APEX, 3);
		struct moat_lvec l2 = { 0 };
		for (int i = 0; i < m.n; i++) {
			char line[100];
			rec_line(&m.r[i], line, sizeof(line));
			assert_int_equal(zone_line(z2, MOAT_ZONE_ADD, line), 0);
		}
		assert_int_equal(moat_zone_listings(z2, &l2), 0);
		if (!moat_lvec_equal(&l2, &cur))
			fail_msg("run %d: IXFR-maintained listings differ from a fresh build", run);
		moat_lvec_free(&l2);
		moat_zone_free(z2);
		moat_lvec_free(&cur);
		moat_zone_free(z);
	}
}

/* many names: the node hash grows several times, incrementally (old and
 * new table searched while slots move); every name stays findable, and
 * lookups and listings agree with what was added, also after deletes made
 * while a move was running */
static void test_hash_growth(void **state)
{
	struct moat_zone *z = moat_zone_new(APEX, 1);
	struct moat_lvec lv = { 0 };
	struct moat_prefix a;
	char line[64];
	const unsigned n = 70000; /* past 2^16 nodes: rehashes at 2^11 .. 2^16 */

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%u.%u.%u.10 A 127.0.0.2", i & 255, (i >> 8) & 255, i >> 16);
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, line), 0);
		if (i % 7 == 3) { /* delete an older one: found through either table */
			unsigned j = i / 2;
			snprintf(line, sizeof(line), "%u.%u.%u.10 A 127.0.0.2", j & 255, (j >> 8) & 255,
				 j >> 16);
			int r = zone_line(z, MOAT_ZONE_DEL, line);
			if (r == -ENOENT) /* deleted before */
				continue;
			assert_int_equal(r, 0);
		}
	}
	/* what is left: every i not deleted (j = i/2 for i % 7 == 3) */
	static bool gone[70000];
	size_t want = 0;
	memset(gone, 0, sizeof(gone));
	for (unsigned i = 0; i < n; i++)
		if (i % 7 == 3)
			gone[i / 2] = true;
	for (unsigned i = 0; i < n; i++)
		want += !gone[i];
	assert_int_equal(moat_zone_listings(z, &lv), 0);
	if (lv.n != want)
		fail_msg("listings %zu, want %zu", lv.n, want);
	for (unsigned i = 0; i < n; i += 97) {
		snprintf(line, sizeof(line), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		moat_prefix_parse(line, &a);
		if ((z_answer(z, &a) != 0) != !gone[i])
			fail_msg("%s: listed %d, want %d", line, z_answer(z, &a) != 0, !gone[i]);
	}
	moat_lvec_free(&lv);
	moat_zone_free(z);
}

/* the node hash's incremental growth with names that need nodes (leaves
 * promoted by a kept TXT): every name findable while slots move */
static void test_hash_growth_nodes(void **state)
{
	struct moat_zone *z = moat_zone_new(APEX, 1);
	struct moat_zone_stats st;
	struct moat_lvec lv = { 0 };
	struct moat_prefix a;
	char line[64];
	const unsigned n = 70000;

	(void)state;
	assert_int_equal(moat_zone_keep_txt(z, true), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%u.%u.%u.10 A 127.0.0.2", i & 255, (i >> 8) & 255, i >> 16);
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, line), 0);
		snprintf(line, sizeof(line), "%u.%u.%u.10 TXT r", i & 255, (i >> 8) & 255, i >> 16);
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, line), 0);
		if (i % 5 == 4) { /* delete an older one's A: found through either table */
			unsigned j = i / 2;
			snprintf(line, sizeof(line), "%u.%u.%u.10 A 127.0.0.2", j & 255, (j >> 8) & 255,
				 j >> 16);
			assert_int_equal(zone_line(z, MOAT_ZONE_DEL, line), 0);
		}
	}
	moat_zone_get_stats(z, &st);
	assert_true(st.nodes > n);
	assert_int_equal(st.a_records, n - n / 5);
	assert_int_equal(moat_zone_listings(z, &lv), 0);
	assert_int_equal(lv.n, n - n / 5);
	for (size_t j = 1; j < lv.n; j++) /* sorted: no leaves, the tree's */
		assert_true(moat_listing_cmp(&lv.v[j - 1], &lv.v[j]) <= 0);
	for (unsigned i = 1; i < n; i += 89) {
		bool gone = i < n / 2 && (i % 5 == 2 || i % 5 == 4); /* i/2 of 5k+4 */
		snprintf(line, sizeof(line), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		moat_prefix_parse(line, &a);
		if ((z_answer(z, &a) != 0) == gone)
			fail_msg("%s: listed %d, want %d", line, z_answer(z, &a) != 0, !gone);
	}
	moat_lvec_free(&lv);
	moat_zone_free(z);
}

static void test_lookup_txt(void **state)
{
	static const char *const rrs[] = {
		"*.113.0.203 A 127.0.0.2", "*.113.0.203 TXT wildcard-reason",
		"99.113.0.203 A 127.0.0.10", "99.113.0.203 TXT explicit", "7.113.0.203 TXT noA",
	};
	struct moat_zone *z = moat_zone_new(APEX, 1);
	struct moat_zone_answer ans;
	struct moat_prefix a;

	(void)state;
	assert_int_equal(moat_zone_keep_txt(z, true), 0);
	for (size_t i = 0; i < sizeof(rrs) / sizeof(rrs[0]); i++)
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, rrs[i]), 0);
	assert_int_equal(moat_zone_keep_txt(z, false), -EBUSY);
	moat_prefix_parse("203.0.113.5", &a);
	assert_int_equal(moat_zone_lookup(z, &a, &ans), 0);
	assert_int_equal(ans.status, MOAT_ZONE_LISTED);
	assert_true(ans.wildcard);
	assert_int_equal(ans.codes[0], 0x7f000002);
	assert_string_equal(ans.txt, "wildcard-reason");
	moat_prefix_parse("203.0.113.99", &a);
	moat_zone_lookup(z, &a, &ans);
	assert_false(ans.wildcard);
	assert_string_equal(ans.txt, "explicit");
	moat_prefix_parse("203.0.113.7", &a);
	moat_zone_lookup(z, &a, &ans);
	assert_int_equal(ans.status, MOAT_ZONE_NODATA);
	assert_string_equal(ans.txt, "noA");
	moat_prefix_parse("203.0.114.1", &a);
	moat_zone_lookup(z, &a, &ans);
	assert_int_equal(ans.status, MOAT_ZONE_NXDOMAIN);
	moat_prefix_parse("203.0.113.0/24", &a);
	assert_int_equal(moat_zone_lookup(z, &a, &ans), -EINVAL);
	/* a TXT delete needs the exact text; rollback restores it */
	assert_int_equal(moat_zone_begin(z), 0);
	assert_int_equal(zone_line(z, MOAT_ZONE_DEL, "99.113.0.203 TXT other"), -ENOENT);
	assert_int_equal(zone_line(z, MOAT_ZONE_DEL, "99.113.0.203 TXT explicit"), 0);
	moat_prefix_parse("203.0.113.99", &a);
	moat_zone_lookup(z, &a, &ans);
	assert_string_equal(ans.txt, "");
	moat_zone_rollback(z);
	moat_zone_lookup(z, &a, &ans);
	assert_string_equal(ans.txt, "explicit");
	moat_zone_free(z);
}

static void test_error_codes(void **state)
{
	static const char *const rrs[] = {
		"*.2.0.192 A 127.0.0.2", "12.2.0.192 A 127.255.255.254",
		"5.2.0.192 A 127.0.0.4", "5.2.0.192 A 127.255.255.254", "6.2.0.192 A 10.0.0.1",
		"*.1.1 A 127.0.0.1",
	};
	struct moat_codes c;
	struct moat_zone *z = moat_zone_new(APEX, 1);
	struct moat_lvec lv = { 0 };
	char got[1024];

	(void)state;
	moat_codes_default(&c);
	assert_int_equal(moat_zone_error_codes(z, &c), 0);
	for (size_t i = 0; i < sizeof(rrs) / sizeof(rrs[0]); i++)
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, rrs[i]), 0);
	assert_int_equal(moat_zone_error_codes(z, NULL), -EBUSY);
	assert_int_equal(moat_zone_listings(z, &lv), 0);
	fmt(&lv, got, sizeof(got));
	/* the error answers are "not listed" below the wildcard, a mixed name
	 * keeps its real code, a wildcard of errors lists nothing */
	assert_string_equal(got, "1.1.0.0/16 !;192.0.2.0/24 2;192.0.2.5/32 4;192.0.2.6/32 !;"
				 "192.0.2.12/32 !;1100::/8 !");
	moat_lvec_free(&lv);
	moat_zone_free(z);

	static const struct { const char *list; int ok; uint32_t code; int err; } cases[] = {
		{ "127.255.255.0/24,127.0.0.1", 1, 0x7fffff05, 1 },
		{ "127.255.255.0/24,127.0.0.1", 1, 0x7f000002, 0 },
		{ "127.0.X.255", 1, 0x7f0005ff, 1 },
		{ "127.0.X.255", 1, 0x7f0005fe, 0 },
		{ "", 1, 0x0a000001, 1 },   /* outside 127/8: always */
		{ "", 1, 0x7fffffff, 0 },
		{ "127.0.0.256", 0, 0, 0 }, { "127.0.0", 0, 0, 0 }, { "1.2.3.4/33", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = moat_codes_parse(&c, cases[i].list);
		if ((r == 0) != cases[i].ok)
			fail_msg("codes '%s': parse %d", cases[i].list, r);
		if (r == 0 && moat_code_is_error(&c, cases[i].code) != cases[i].err)
			fail_msg("codes '%s': %#x error=%d", cases[i].list, cases[i].code, !cases[i].err);
	}
}

/* regression (fuzz_zone): an A record added again with another TTL inside
 * a batch that is rolled back kept the new TTL */
static void test_regress_ttl_rollback(void **state)
{
	struct moat_zone *z = moat_zone_new(APEX, 1);
	struct moat_lvec lv = { 0 }, add = { 0 }, del = { 0 };
	uint8_t w[KNOT_DNAME_MAXLEN], rd[4] = { 127, 0, 0, 2 };

	(void)state;
	knot_dname_from_str(w, "4.3.2.1." APEX, sizeof(w));
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 300, rd, 4), 0);
	assert_int_equal(moat_zone_begin(z), 0);
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 60, rd, 4), 0);
	moat_zone_rollback(z);
	assert_int_equal(moat_zone_listings(z, &lv), 0);
	assert_int_equal(lv.n, 1);
	assert_int_equal(lv.v[0].ttl, 300);
	/* committed, the TTL change is a delta */
	assert_int_equal(moat_zone_begin(z), 0);
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 60, rd, 4), 0);
	assert_int_equal(moat_zone_commit(z, &add, &del), 0);
	assert_int_equal(add.n, 1);
	assert_int_equal(del.n, 1);
	assert_int_equal(add.v[0].ttl, 60);
	moat_lvec_free(&lv);
	moat_lvec_free(&add);
	moat_lvec_free(&del);
	moat_zone_free(z);
}

static void test_lvec_apply(void **state)
{
	struct moat_lvec cur = { 0 }, add = { 0 }, del = { 0 };
	struct moat_listing l = { .pfx = { .family = MOAT_AF_INET, .plen = 32 }, .code = 2 };

	(void)state;
	for (int i = 0; i < 4; i++) {
		l.pfx.addr[3] = (uint8_t)i;
		moat_lvec_push(&cur, &l);
	}
	l.pfx.addr[3] = 9; /* not in cur */
	moat_lvec_push(&del, &l);
	assert_int_equal(moat_lvec_apply(&cur, &add, &del), -ENOENT);
	assert_int_equal(cur.n, 4);
	del.n = 0;
	l.pfx.addr[3] = 2;
	moat_lvec_push(&del, &l);
	l.pfx.addr[3] = 7;
	moat_lvec_push(&add, &l);
	assert_int_equal(moat_lvec_apply(&cur, &add, &del), 0);
	assert_int_equal(cur.n, 4);
	for (size_t i = 0; i < cur.n; i++)
		assert_int_not_equal(cur.v[i].pfx.addr[3], 2);
	assert_int_equal(cur.v[3].pfx.addr[3], 7);
	moat_lvec_free(&cur);
	moat_lvec_free(&add);
	moat_lvec_free(&del);
}

/* compact leaves (zone.c): a full IPv4 name with one A record (and at
 * most one other record) lives outside the tree, and its /24 exists
 * without a node; wildcards at every level still see them, and a name
 * that needs more is promoted to a node with the same answers */
static const struct sem_case leaf_cases[] = {
	{ "leaves under a /24 wildcard",
	  { "*.2.0.192 A 127.0.0.9", "5.2.0.192 A 127.0.0.2", "6.2.0.192 TXT x" },
	  "192.0.2.0/24 9;192.0.2.5/32 2;192.0.2.6/32 !" },
	{ "leaves under a /16 wildcard: their /24s are excluded",
	  { "*.0.192 A 127.0.0.9", "5.2.0.192 A 127.0.0.2", "7.3.0.192 TXT x" },
	  "192.0.0.0/16 9;192.0.2.0/24 !;192.0.2.5/32 2;192.0.3.0/24 !" },
	{ "leaves under a /8 wildcard", { "*.192 A 127.0.0.9", "5.2.0.192 A 127.0.0.2" },
	  "192.0.0.0/8 9;192.0.0.0/16 !;192.0.2.5/32 2" },
	{ "leaves under the apex wildcard", { "* A 127.0.0.9", "5.2.0.192 A 127.0.0.2" },
	  "0.0.0.0/0 9;192.0.0.0/8 !;192.0.2.5/32 2;::/0 9" },
	{ "all-digit leaves are IPv6 names too (/16 wildcard)",
	  { "*.3.2 A 127.0.0.9", "4.3.3.2 A 127.0.0.5" },
	  "2.3.0.0/16 9;2.3.3.0/24 !;2.3.3.4/32 5;2300::/8 9;2330::/12 !" },
	{ "all-digit leaves are IPv6 names too (/24 wildcard)",
	  { "*.3.3.2 A 127.0.0.9", "4.3.3.2 A 127.0.0.5" },
	  "2.3.3.0/24 9;2.3.3.4/32 5;2330::/12 9;2334::/16 !" },
	{ "a second A code promotes the leaf",
	  { "5.2.0.192 A 127.0.0.2", "5.2.0.192 A 127.0.0.4", "*.2.0.192 A 127.0.0.9" },
	  "192.0.2.0/24 9;192.0.2.5/32 2;192.0.2.5/32 4" },
	{ "a second TXT promotes the leaf",
	  { "5.2.0.192 A 127.0.0.2", "5.2.0.192 TXT a", "5.2.0.192 TXT b", "*.0.192 A 127.0.0.9" },
	  "192.0.0.0/16 9;192.0.2.0/24 !;192.0.2.5/32 2" },
	{ "a name below the leaf promotes it",
	  { "5.2.0.192 A 127.0.0.2", "x.5.2.0.192 TXT a", "*.2.0.192 A 127.0.0.9" },
	  "192.0.2.0/24 9;192.0.2.5/32 2" },
};

static void test_leaf_semantics(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(leaf_cases) / sizeof(leaf_cases[0]); i++) {
		const struct sem_case *c = &leaf_cases[i];
		for (int keep = 0; keep < 2; keep++) {
			struct moat_zone *z = moat_zone_new(APEX, 7);
			struct moat_lvec lv = { 0 };
			char got[2048];

			assert_int_equal(moat_zone_keep_txt(z, keep), 0);
			for (size_t j = 0; j < 8 && c->rrs[j]; j++)
				if (zone_line(z, MOAT_ZONE_ADD, c->rrs[j]))
					fail_msg("case %s: add '%s' failed", c->name, c->rrs[j]);
			assert_int_equal(moat_zone_listings(z, &lv), 0);
			for (size_t j = 1; j < lv.n; j++)
				if (moat_listing_cmp(&lv.v[j - 1], &lv.v[j]) > 0)
					fail_msg("case %s: listings not sorted at %zu", c->name, j);
			fmt(&lv, got, sizeof(got));
			if (strcmp(got, c->want))
				fail_msg("case %s (keep_txt %d):\n got  %s\n want %s", c->name, keep,
					 got, c->want);
			check_cursor(z, &lv, c->name);
			moat_lvec_free(&lv);
			moat_zone_free(z);
		}
	}
}

/* batch - apply lines (prefix '-' deletes) as one batch; commit (delta
 * into add/del as fmt strings) or roll back */
static void batch(struct moat_zone *z, const char *const *lines, size_t n, bool commit,
		  char *add, char *del, size_t sz)
{
	struct moat_lvec a = { 0 }, d = { 0 };

	assert_int_equal(moat_zone_begin(z), 0);
	for (size_t i = 0; i < n; i++) {
		bool rm = lines[i][0] == '-';
		if (zone_line(z, rm ? MOAT_ZONE_DEL : MOAT_ZONE_ADD, lines[i] + rm))
			fail_msg("batch: '%s' failed", lines[i]);
	}
	if (!commit) {
		moat_zone_rollback(z);
		return;
	}
	assert_int_equal(moat_zone_commit(z, &a, &d), 0);
	fmt(&a, add, sz);
	fmt(&d, del, sz);
	moat_lvec_free(&a);
	moat_lvec_free(&d);
}

/* fresh_equal - the zone's listings equal those of a zone built from rrs */
static void fresh_equal(struct moat_zone *z, const char *const *rrs, size_t n, bool keep)
{
	struct moat_zone *f = moat_zone_new(APEX, 7);
	struct moat_lvec a = { 0 }, b = { 0 };
	char ga[2048], gb[2048];

	assert_int_equal(moat_zone_keep_txt(f, keep), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(zone_line(f, MOAT_ZONE_ADD, rrs[i]), 0);
	assert_int_equal(moat_zone_listings(z, &a), 0);
	assert_int_equal(moat_zone_listings(f, &b), 0);
	fmt(&a, ga, sizeof(ga));
	fmt(&b, gb, sizeof(gb));
	if (strcmp(ga, gb))
		fail_msg("zone %s\nfresh %s", ga, gb);
	moat_lvec_free(&a);
	moat_lvec_free(&b);
	moat_zone_free(f);
}

static void test_leaf_batches(void **state)
{
	static const char *const base[] = {
		"*.0.192 A 127.0.0.9", "5.2.0.192 A 127.0.0.2", "7.3.0.192 A 127.0.0.3",
	};
	struct moat_zone *z = moat_zone_new(APEX, 7);
	struct moat_zone_answer ans;
	struct moat_prefix a;
	char add[2048], del[2048];

	(void)state;
	assert_int_equal(moat_zone_keep_txt(z, true), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(zone_line(z, MOAT_ZONE_ADD, base[i]), 0);
	/* the last leaf of a /24 goes: so does the wildcard's exclude */
	static const char *const b1[] = { "-7.3.0.192 A 127.0.0.3" };
	batch(z, b1, 1, true, add, del, sizeof(add));
	assert_string_equal(add, "");
	assert_string_equal(del, "192.0.3.0/24 !;192.0.3.7/32 3");
	moat_prefix_parse("192.0.3.7", &a);
	assert_int_equal(moat_zone_lookup(z, &a, &ans), 0);
	assert_true(ans.wildcard);
	/* and comes back with the first leaf of a /24 */
	static const char *const b2[] = { "8.3.0.192 A 127.0.0.4" };
	batch(z, b2, 1, true, add, del, sizeof(add));
	assert_string_equal(add, "192.0.3.0/24 !;192.0.3.8/32 4");
	assert_string_equal(del, "");
	/* rolled back: new leaf, a kept TXT promoting a leaf, its A deleted
	 * and added back, a leaf deleted, a TTL changed */
	static const char *const b3[] = {
		"9.3.0.192 A 127.0.0.5", "5.2.0.192 TXT why", "-5.2.0.192 A 127.0.0.2",
		"5.2.0.192 A 127.0.0.6", "-8.3.0.192 A 127.0.0.4", "1.1.0.192 A 127.0.0.7",
		"*.1.0.192 A 127.0.0.8",
	};
	uint8_t w[KNOT_DNAME_MAXLEN], rd[4] = { 127, 0, 0, 2 };
	struct moat_lvec l1 = { 0 }, l2 = { 0 };
	assert_int_equal(moat_zone_listings(z, &l1), 0);
	batch(z, b3, 7, false, add, del, sizeof(add));
	assert_int_equal(moat_zone_begin(z), 0);
	knot_dname_from_str(w, "5.2.0.192." APEX, sizeof(w));
	assert_int_equal(moat_zone_rr(z, MOAT_ZONE_ADD, w, KNOT_RRTYPE_A, 60, rd, 4), 0);
	moat_zone_rollback(z);
	assert_int_equal(moat_zone_listings(z, &l2), 0);
	if (!moat_lvec_equal(&l1, &l2))
		fail_msg("rollback changed the listings");
	moat_prefix_parse("192.0.2.5", &a);
	assert_int_equal(moat_zone_lookup(z, &a, &ans), 0);
	assert_int_equal(ans.status, MOAT_ZONE_LISTED);
	assert_int_equal(ans.ttl, 300);
	assert_string_equal(ans.txt, "");
	/* the same batch committed: the delta adds up to a fresh build */
	batch(z, b3, 7, true, add, del, sizeof(add));
	assert_string_equal(add, "192.0.1.0/24 8;192.0.1.1/32 7;192.0.2.5/32 6;192.0.3.9/32 5");
	assert_string_equal(del, "192.0.2.5/32 2;192.0.3.8/32 4");
	static const char *const all[] = {
		"*.0.192 A 127.0.0.9", "9.3.0.192 A 127.0.0.5", "5.2.0.192 TXT why",
		"5.2.0.192 A 127.0.0.6", "1.1.0.192 A 127.0.0.7", "*.1.0.192 A 127.0.0.8",
	};
	fresh_equal(z, all, 6, true);
	moat_prefix_parse("192.0.2.5", &a);
	assert_int_equal(moat_zone_lookup(z, &a, &ans), 0);
	assert_string_equal(ans.txt, "why");
	moat_lvec_free(&l1);
	moat_lvec_free(&l2);
	moat_zone_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semantics_table),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_model_random_zones),
		cmocka_unit_test(test_incremental_batches),
		cmocka_unit_test(test_lvec_apply),
		cmocka_unit_test(test_lookup_txt),
		cmocka_unit_test(test_hash_growth),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_regress_ttl_rollback),
		cmocka_unit_test(test_leaf_semantics),
		cmocka_unit_test(test_leaf_batches),
		cmocka_unit_test(test_hash_growth_nodes),
	};
	return cmocka_run_group_tests_name("zone", tests, NULL, NULL);
}
