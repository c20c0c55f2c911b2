/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dp_table.c - moat-dpdk's verdict table (dataplane/dpdk/dp_table.c)
 * in a real EAL (--no-huge --no-pci --no-shconf): every lookup after
 * random update sequences equals lib's userspace image (vt_image_apply)
 * and lib's table (vt_db) for the same sequences; read_image rebuilds
 * the same verdicts; bad updates (-ERANGE, -EINVAL, -ENOSPC) stop the
 * sequence with the prefix applied and nothing after; a reader thread
 * looking up while old->new diffs are published sees only old or new
 * verdicts.  DP_SEED=N repeats a run.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_rcu_qsbr.h>

#include "dp_lookup.h"
#include "dp_test_eal.h"
#include "dp_table.h"
#include "vtable.h"

static uint64_t seed;

/* rnd - xorshift64* */
static uint64_t rnd(void)
{
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return seed * 2685821657736338717ull;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

#define GROUPS_MAX 4096
#define V6_MAX 512
#define N24 256      /* /24s the random sequences touch: 10.0.x.0/24 */
#define NV6 64       /* IPv6 base addresses they use */

static struct dp_table *new_table(uint32_t groups_max, uint32_t v6_max,
				  unsigned readers)
{
	struct dp_table_params p = {
		.groups_max = groups_max, .v6_rules_max = v6_max,
		.n_readers = readers, .socket_id = SOCKET_ID_ANY,
	};
	struct dp_table *t = NULL;

	assert_int_equal(dp_table_create(&p, &t), 0);
	assert_non_null(t);
	return t;
}

static const uint8_t v6_plen_set[] = { 128, 96, 64, 56, 48, 40, 32 };

/* v6_base - the i-th IPv6 base address (2001:db8:i::) */
static void v6_base(unsigned i, uint8_t a[16])
{
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = 0xb8;
	a[4] = (uint8_t)(i >> 8);
	a[5] = (uint8_t)i;
	a[6] = (uint8_t)(i * 7);
	a[8] = (uint8_t)(i * 13);
	a[15] = (uint8_t)i;
}

/* rand_update - one valid update over the small address space above */
static void rand_update(struct moat_update *u)
{
	uint8_t a[16];

	memset(u, 0, sizeof(*u));
	switch (rn(10)) {
	case 0: case 1: case 2:
		u->kind = MOAT_UPD_GROUP;
		u->index = rn(GROUPS_MAX);
		for (unsigned i = 0; i < MOAT_GROUP_BYTES; i++)
			u->u.group.bits[i] = (uint8_t)rnd();
		break;
	case 3: case 4: case 5:
		u->kind = MOAT_UPD_TBL24;
		u->index = (10u << 16) | rn(N24);
		u->value = rn(2) ? rn(4) : moat_tbl24_make_group(rn(GROUPS_MAX));
		break;
	case 6: {
		unsigned k = 0;

		u->kind = MOAT_UPD_V6_PLENS;
		for (unsigned i = 0; i < sizeof(v6_plen_set); i++)
			if (rn(3))
				u->u.plens.len[k++] = v6_plen_set[i];
		u->u.plens.n = k;
		break;
	}
	default:
		u->kind = rn(3) ? MOAT_UPD_V6_PUT : MOAT_UPD_V6_DEL;
		v6_base(rn(NV6), a);
		moat_v6_mask(&u->u.key, a, v6_plen_set[rn(sizeof(v6_plen_set))]);
		u->value = rn(4);
		break;
	}
}

/* v6_probe - an address under base i with random low bits */
static void v6_probe(unsigned i, uint8_t a[16])
{
	v6_base(i, a);
	if (rn(2))
		for (unsigned k = 6 + rn(10); k < 16; k++)
			a[k] = (uint8_t)rnd();
}

/* compare - every address of the touched /24s and IPv6 probes under
 * every base: the table gives what the reference image gives */
static void compare(const struct dp_table *t, const struct vt_image *ref)
{
	const struct dp_table_view *v = dp_table_view(t);
	struct moat_prefix p = { .family = MOAT_AF_INET6, .plen = 128 };

	for (uint32_t s = 0; s < N24; s++)
		for (uint32_t h = 0; h < 256; h++) {
			uint32_t a = (10u << 24) | (s << 8) | h;
			uint32_t got = dp_lookup_v4(v, a), want = vt_image_lookup_v4(ref, a);

			if (got != want)
				fail_msg("v4 %08x: table %u, image %u (DP_SEED chain)", a, got, want);
		}
	for (unsigned i = 0; i < NV6; i++)
		for (unsigned k = 0; k < 8; k++) {
			uint32_t got, want;

			v6_probe(i, p.addr);
			got = dp_table_lookup(t, &p);
			want = vt_image_lookup_v6(ref, p.addr);
			if (got != want)
				fail_msg("v6 base %u: table %u, image %u", i, got, want);
		}
}

/* check_read_image - read_image applied to an empty image gives the
 * reference's verdicts */
static void check_read_image(struct dp_table *t, const struct vt_image *ref)
{
	struct vt_image *back = vt_image_new();
	struct moat_update *u = NULL;
	size_t n = 0;

	assert_non_null(back);
	assert_int_equal(dp_table_read_image(t, &u, &n), 0);
	assert_int_equal(vt_image_apply(back, u, n), 0);
	assert_int_equal(vt_image_equal_verdicts(back, ref), 1);
	free(u);
	vt_image_free(back);
}

/* test_random_sequences - random (valid) update sequences in chunks */
static void test_random_sequences(void **state)
{
	struct dp_table *t = new_table(GROUPS_MAX, V6_MAX, 0);
	struct vt_image *ref = vt_image_new();
	struct moat_update u[256];

	(void)state;
	assert_non_null(ref);
	for (int round = 0; round < 40; round++) {
		size_t n = 1 + rn(256);

		for (size_t i = 0; i < n; i++)
			rand_update(&u[i]);
		assert_int_equal(dp_table_apply(t, u, n), 0);
		assert_int_equal(vt_image_apply(ref, u, n), 0);
		compare(t, ref);
		if (round % 10 == 9)
			check_read_image(t, ref);
	}
	vt_image_free(ref);
	dp_table_free(t);
}

/* L - a listing of the operator source */
static struct moat_listing L(int fam, const uint8_t *a, unsigned plen, uint32_t act)
{
	struct moat_listing l;
	struct moat_v6_key k;

	memset(&l, 0, sizeof(l));
	l.pfx.family = (uint8_t)fam;
	l.pfx.plen = (uint8_t)plen;
	moat_v6_mask(&k, a, plen);
	memcpy(l.pfx.addr, k.addr, fam == MOAT_AF_INET ? 4 : 16);
	l.code = act;
	l.source = 1;
	return l;
}

/* test_db_publishes - what moat-controld really sends: vt_db_publish
 * diffs of a changing operator source; every lookup equals vt_db's */
static void test_db_publishes(void **state)
{
	static const unsigned v4plens[] = { 32, 30, 28, 24, 22, 16 };
	static const unsigned v6plens[] = { 128, 64, 48, 40 };
	struct dp_table *t = new_table(1u << 16, 4096, 0);
	struct moat_listing *have = calloc(2048, sizeof(*have));
	struct vt_policy *pol = malloc(sizeof(*pol));
	struct moat_prefix p;
	struct vt_source s;
	struct vt_db *db;
	char err[256];
	size_t nhave = 0;

	(void)state;
	assert_non_null(have);
	assert_non_null(pol);
	vt_policy_init(pol);
	vt_source_init(&s, 1, "operator", VT_SRC_STATIC);
	assert_int_equal(vt_policy_add_source(pol, &s, err, sizeof(err)), 0);
	db = vt_db_new(pol, err, sizeof(err));
	assert_non_null(db);
	for (int round = 0; round < 30; round++) {
		struct moat_update *u = NULL;
		size_t n = 0;

		for (int k = 0; k < 40; k++) {
			struct moat_listing l;
			uint8_t a[16];
			int r;

			if (nhave && rn(3) == 0) {
				size_t i = rn((unsigned)nhave);

				r = vt_db_source_apply(db, 1, NULL, 0, &have[i], 1,
						       err, sizeof(err));
				assert_int_equal(r, 0);
				have[i] = have[--nhave];
				continue;
			}
			if (rn(3)) {
				uint32_t x = (198u << 24) | (51u << 16) | (rn(16) << 8) | rn(256);

				a[0] = (uint8_t)(x >> 24);
				a[1] = (uint8_t)(x >> 16);
				a[2] = (uint8_t)(x >> 8);
				a[3] = (uint8_t)x;
				l = L(MOAT_AF_INET, a, v4plens[rn(6)], 1 + rn(3));
			} else {
				v6_probe(rn(NV6), a);
				l = L(MOAT_AF_INET6, a, v6plens[rn(4)], 1 + rn(3));
			}
			r = vt_db_source_apply(db, 1, &l, 1, NULL, 0, err, sizeof(err));
			if (r == 0 && nhave < 2048)
				have[nhave++] = l;
			else if (r == 0)
				assert_int_equal(vt_db_source_apply(db, 1, NULL, 0, &l, 1,
								    err, sizeof(err)), 0);
		}
		assert_int_equal(vt_db_publish(db, &u, &n), 0);
		assert_int_equal(dp_table_apply(t, u, n), 0);
		free(u);
		vt_db_grace_done(db);
		/* every listed prefix's first address and neighbours */
		for (size_t i = 0; i < nhave; i++) {
			p = have[i].pfx;
			for (int d = -1; d <= 1; d++) {
				int last = p.family == MOAT_AF_INET ? 3 : 15;

				p.addr[last] = (uint8_t)(have[i].pfx.addr[last] + d);
				p.plen = p.family == MOAT_AF_INET ? 32 : 128;
				uint32_t got = dp_table_lookup(t, &p);
				uint32_t want = p.family == MOAT_AF_INET ?
					vt_lookup_v4(db, (uint32_t)p.addr[0] << 24 |
						     (uint32_t)p.addr[1] << 16 |
						     (uint32_t)p.addr[2] << 8 | p.addr[3]) :
					vt_lookup_v6(db, p.addr);
				if (got != want)
					fail_msg("round %d listing %zu: table %u, db %u",
						 round, i, got, want);
			}
		}
		if (round % 10 == 9)
			check_read_image(t, vt_db_image(db));
	}
	vt_db_free(db);
	free(pol);
	free(have);
	dp_table_free(t);
}

/* one error case: good updates, then the bad one, then one more good */
struct err_case {
	const char *name;
	int want;
	void (*bad)(struct moat_update *u);
};

static void bad_tbl24_index(struct moat_update *u)
{
	u->kind = MOAT_UPD_TBL24;
	u->index = MOAT_TBL24_ENTRIES;
	u->value = MOAT_ACT_DROP;
}

static void bad_tbl24_group(struct moat_update *u)
{
	u->kind = MOAT_UPD_TBL24;
	u->index = 5;
	u->value = moat_tbl24_make_group(GROUPS_MAX);
}

static void bad_group_index(struct moat_update *u)
{
	u->kind = MOAT_UPD_GROUP;
	u->index = GROUPS_MAX;
	memset(&u->u.group, 0xaa, sizeof(u->u.group));
}

static void bad_kind(struct moat_update *u)
{
	u->kind = 99;
}

static void bad_v6_plen(struct moat_update *u)
{
	u->kind = MOAT_UPD_V6_PUT;
	u->u.key.plen = 129;
	u->value = MOAT_ACT_DROP;
}

static void bad_v6_del_plen(struct moat_update *u)
{
	u->kind = MOAT_UPD_V6_DEL;
	u->u.key.plen = 200;
}

static void bad_plens_n(struct moat_update *u)
{
	u->kind = MOAT_UPD_V6_PLENS;
	u->u.plens.n = MOAT_V6_MAX_PLENS + 1;
}

static void bad_plens_len(struct moat_update *u)
{
	u->kind = MOAT_UPD_V6_PLENS;
	u->u.plens.n = 2;
	u->u.plens.len[0] = 130;
	u->u.plens.len[1] = 64;
}

static void bad_plens_order(struct moat_update *u)
{
	u->kind = MOAT_UPD_V6_PLENS;
	u->u.plens.n = 2;
	u->u.plens.len[0] = 48;
	u->u.plens.len[1] = 64;
}

/* a 9th distinct rule in a table of 8 */
static void bad_v6_full(struct moat_update *u)
{
	uint8_t a[16];

	u->kind = MOAT_UPD_V6_PUT;
	v6_base(NV6 + 1, a);
	moat_v6_mask(&u->u.key, a, 64);
	u->value = MOAT_ACT_DROP;
}

static const struct err_case err_cases[] = {
	{ "tbl24 index past the table", -ERANGE, bad_tbl24_index },
	{ "tbl24 entry naming a group past groups_max", -ERANGE, bad_tbl24_group },
	{ "group index past groups_max", -ERANGE, bad_group_index },
	{ "unknown kind", -EINVAL, bad_kind },
	{ "v6 put with plen 129", -EINVAL, bad_v6_plen },
	{ "v6 del with plen 200", -EINVAL, bad_v6_del_plen },
	{ "plens n > MOAT_V6_MAX_PLENS", -EINVAL, bad_plens_n },
	{ "plens length 130", -EINVAL, bad_plens_len },
	{ "plens not longest first", -EINVAL, bad_plens_order },
	{ "v6 rule past v6_rules_max", -ENOSPC, bad_v6_full },
};

/* good_prefix - 8 v6 rules at /64 (filling a table of 8), a group and
 * the tbl24 entry using it, a uniform /24 */
static size_t good_prefix(struct moat_update *u)
{
	size_t n = 0;
	uint8_t a[16];

	memset(u, 0, 12 * sizeof(*u));
	u[n].kind = MOAT_UPD_V6_PLENS;
	u[n].u.plens.n = 1;
	u[n++].u.plens.len[0] = 64;
	for (unsigned i = 0; i < 8; i++) {
		v6_base(i, a);
		u[n].kind = MOAT_UPD_V6_PUT;
		moat_v6_mask(&u[n].u.key, a, 64);
		u[n++].value = MOAT_ACT_TARPIT;
	}
	u[n].kind = MOAT_UPD_GROUP;
	u[n].index = 3;
	moat_group_set(&u[n++].u.group, 7, MOAT_ACT_DROP);
	u[n].kind = MOAT_UPD_TBL24;
	u[n].index = (10u << 16) | 1;
	u[n++].value = moat_tbl24_make_group(3);
	return n;
}

/* test_errors - each bad update stops the sequence: the prefix before it
 * is applied, it and everything after are not */
static void test_errors(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(err_cases) / sizeof(err_cases[0]); c++) {
		struct dp_table *t = new_table(GROUPS_MAX, 8, 0);
		struct vt_image *want = vt_image_new();
		struct moat_update u[16];
		size_t n = good_prefix(u), nb;

		assert_non_null(want);
		assert_int_equal(vt_image_apply(want, u, n), 0);
		memset(&u[n], 0, 2 * sizeof(u[0]));
		err_cases[c].bad(&u[n]);
		nb = n++;
		/* one more good update after the bad one: must not land */
		u[n].kind = MOAT_UPD_TBL24;
		u[n].index = (10u << 16) | 2;
		u[n++].value = MOAT_ACT_DROP;
		int r = dp_table_apply(t, u, n);

		if (r != err_cases[c].want)
			fail_msg("%s: got %d, want %d", err_cases[c].name, r,
				 err_cases[c].want);
		compare(t, want);
		check_read_image(t, want);
		/* positive control: the same sequence without the bad
		 * update applies whole, and the last one lands */
		u[nb] = u[n - 1];
		assert_int_equal(dp_table_apply(t, u, nb + 1), 0);
		assert_int_equal(dp_lookup_v4(dp_table_view(t), (10u << 24) | (2u << 8) | 9),
				 MOAT_ACT_DROP);
		vt_image_free(want);
		dp_table_free(t);
	}
}

/* ------------------------------------------- concurrent reader */

#define NPROBE 4096

struct probe {
	struct moat_prefix p;
	uint8_t a, b;       /* verdict in image A and in image B */
};

struct reader {
	struct dp_table *t;
	const struct probe *pr;
	size_t n;
	volatile int stop;
	uint64_t lookups, bad, saw_a_only, saw_b_only;
	char first_bad[160];
};

/* reader_main - look every probe up, again and again, reporting a
 * quiescent state after each pass (as a worker does after a burst) */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct rte_rcu_qsbr *q = dp_table_qsbr(r->t);

	rte_rcu_qsbr_thread_register(q, 0);
	rte_rcu_qsbr_thread_online(q, 0);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		for (size_t i = 0; i < r->n; i++) {
			uint32_t v = dp_table_lookup(r->t, &r->pr[i].p);

			r->lookups++;
			if (v != r->pr[i].a && v != r->pr[i].b) {
				if (!r->bad++)
					snprintf(r->first_bad, sizeof(r->first_bad),
						 "probe %zu: %u, old/new %u/%u", i, v,
						 r->pr[i].a, r->pr[i].b);
			} else if (r->pr[i].a != r->pr[i].b) {
				if (v == r->pr[i].a)
					r->saw_a_only++;
				else
					r->saw_b_only++;
			}
		}
		rte_rcu_qsbr_quiescent(q, 0);
	}
	rte_rcu_qsbr_thread_offline(q, 0);
	rte_rcu_qsbr_thread_unregister(q, 0);
	return NULL;
}

/* rand_db - a vt_db with n random operator listings (v4 and v6) */
static struct vt_db *rand_db(const struct vt_policy *pol, int n)
{
	static const unsigned v4plens[] = { 32, 29, 26, 24, 20 };
	static const unsigned v6plens[] = { 128, 64, 56, 48 };
	char err[256];
	struct vt_db *db = vt_db_new(pol, err, sizeof(err));

	assert_non_null(db);
	for (int k = 0; k < n; k++) {
		struct moat_listing l;
		uint8_t a[16];

		if (rn(4)) {
			uint32_t x = (203u << 24) | (rn(64) << 8) | rn(256);

			a[0] = (uint8_t)(x >> 24);
			a[1] = (uint8_t)(x >> 16);
			a[2] = (uint8_t)(x >> 8);
			a[3] = (uint8_t)x;
			l = L(MOAT_AF_INET, a, v4plens[rn(5)], 1 + rn(3));
		} else {
			v6_probe(rn(NV6), a);
			l = L(MOAT_AF_INET6, a, v6plens[rn(4)], 1 + rn(3));
		}
		(void)vt_db_source_apply(db, 1, &l, 1, NULL, 0, err, sizeof(err));
	}
	return db;
}

/* test_concurrent_reader - publish A->B->A... diffs while a reader looks
 * up: every verdict it gets is A's or B's */
static void test_concurrent_reader(void **state)
{
	struct dp_table *t = new_table(1u << 16, 8192, 1);
	struct vt_policy *pol = malloc(sizeof(*pol));
	struct probe *pr = calloc(NPROBE, sizeof(*pr));
	struct vt_image *cur = vt_image_new();
	const struct vt_image *img[2];
	struct vt_db *db[2];
	struct reader r = { 0 };
	struct vt_source s;
	pthread_t th;
	char err[256];

	(void)state;
	assert_non_null(pol);
	assert_non_null(pr);
	assert_non_null(cur);
	vt_policy_init(pol);
	vt_source_init(&s, 1, "operator", VT_SRC_STATIC);
	assert_int_equal(vt_policy_add_source(pol, &s, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		struct moat_update *u = NULL;
		size_t n = 0;

		db[i] = rand_db(pol, 3000);
		assert_int_equal(vt_db_publish(db[i], &u, &n), 0);
		free(u);
		img[i] = vt_db_image(db[i]);
	}
	for (size_t i = 0; i < NPROBE; i++) {
		struct moat_prefix *p = &pr[i].p;

		memset(p, 0, sizeof(*p));
		if (i % 4) {
			uint32_t x = (203u << 24) | (rn(64) << 8) | rn(256);

			p->family = MOAT_AF_INET;
			p->plen = 32;
			p->addr[0] = (uint8_t)(x >> 24);
			p->addr[1] = (uint8_t)(x >> 16);
			p->addr[2] = (uint8_t)(x >> 8);
			p->addr[3] = (uint8_t)x;
			pr[i].a = (uint8_t)vt_image_lookup_v4(img[0], x);
			pr[i].b = (uint8_t)vt_image_lookup_v4(img[1], x);
		} else {
			p->family = MOAT_AF_INET6;
			p->plen = 128;
			v6_probe(rn(NV6), p->addr);
			pr[i].a = (uint8_t)vt_image_lookup_v6(img[0], p->addr);
			pr[i].b = (uint8_t)vt_image_lookup_v6(img[1], p->addr);
		}
	}
	/* start from A */
	{
		struct moat_update *u = NULL;
		size_t n = 0;

		assert_int_equal(vt_image_diff(cur, img[0], &u, &n), 0);
		assert_int_equal(dp_table_apply(t, u, n), 0);
		assert_int_equal(vt_image_apply(cur, u, n), 0);
		free(u);
	}
	r.t = t;
	r.pr = pr;
	r.n = NPROBE;
	assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
	for (int flip = 0; flip < 40; flip++) {
		const struct vt_image *to = img[(flip + 1) & 1];
		struct moat_update *u = NULL;
		size_t n = 0;

		assert_int_equal(vt_image_diff(cur, to, &u, &n), 0);
		/* a few updates at a time, so the reader runs between */
		for (size_t i = 0; i < n; i += 16)
			assert_int_equal(dp_table_apply(t, u + i, n - i < 16 ? n - i : 16), 0);
		assert_int_equal(vt_image_apply(cur, u, n), 0);
		free(u);
		/* let the reader pass over the new table at least once */
		rte_rcu_qsbr_synchronize(dp_table_qsbr(t), RTE_QSBR_THRID_INVALID);
		rte_rcu_qsbr_synchronize(dp_table_qsbr(t), RTE_QSBR_THRID_INVALID);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	print_message("# reader: %llu lookups, %llu A-only, %llu B-only verdicts\n",
		      (unsigned long long)r.lookups, (unsigned long long)r.saw_a_only,
		      (unsigned long long)r.saw_b_only);
	if (r.bad)
		fail_msg("%llu verdicts from neither table; first: %s",
			 (unsigned long long)r.bad, r.first_bad);
	/* positive control: the reader did see both tables */
	assert_true(r.saw_a_only > 0);
	assert_true(r.saw_b_only > 0);
	vt_image_free(cur);
	vt_db_free(db[0]);
	vt_db_free(db[1]);
	free(pr);
	free(pol);
	dp_table_free(t);
}

static int eal_setup(void **state)
{
	(void)state;
	return dp_test_eal_up("dp_table", "512");
}

static int eal_teardown(void **state)
{
	(void)state;
	dp_test_eal_down();
	return 0;
}

int main(void)
{
	const char *e = getenv("DP_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_sequences),
		cmocka_unit_test(test_db_publishes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_concurrent_reader),
	};

	seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
	if (!seed)
		seed = 1;
	printf("# DP_SEED=%llu\n", (unsigned long long)seed);
	return cmocka_run_group_tests_name("dp_table", tests, eal_setup, eal_teardown);
}
