/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_trie6 - the IPv6 verdict trie (bpf/moat_trie6.h, lib/vt_trie6.c)
 * against a brute-force longest-prefix reference: the layout's edges (/0,
 * /128, the root's /16 and the halves' /64 boundary, prefixes overlapping
 * across node boundaries, bucket splits and collapses), random churn, and
 * lookups from another thread while a publish sequence runs copy-on-write
 * (every verdict the old or the new table's).  Every test runs over the
 * default root (16 bits) and again over the wide one (24 bits in 2000::/3,
 * 16 elsewhere), whose own edges (/24 the root's last length, buckets
 * right below the root, the boundary between its two parts) have tests
 * of their own.
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
#include <unistd.h>
#include <cmocka.h>

#include "vt_trie6.h"

struct r6 {
	uint8_t a[16];
	unsigned plen;
	uint32_t act;
};

static uint64_t rng = 88172645463325252ULL;

/* the root of the tries the tests make: 0 (the default) or 24 (wide) */
static uint32_t test_rb;

static struct vt_trie6 *new_trie(uint32_t nodes_max, uint32_t buckets_max)
{
	return vt_trie6_new_owned_root(test_rb, nodes_max, buckets_max);
}

static int wide_setup(void **state)
{
	(void)state;
	test_rb = MOAT_V6T_ROOT_BITS_WIDE;
	return 0;
}

static int wide_teardown(void **state)
{
	(void)state;
	test_rb = 0;
	return 0;
}

static uint64_t xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void mask(uint8_t *a, unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		int bits = (int)plen - (int)i * 8;

		if (bits <= 0)
			a[i] = 0;
		else if (bits < 8)
			a[i] &= (uint8_t)(0xff << (8 - bits));
	}
}

static int covers(const struct r6 *r, const uint8_t *addr)
{
	uint8_t m[16];

	memcpy(m, addr, 16);
	mask(m, r->plen);
	return memcmp(m, r->a, 16) == 0;
}

/* ref - the longest rule of v[0, n) covering addr decides; none: PASS */
static uint32_t ref(const struct r6 *v, size_t n, const uint8_t *addr)
{
	int best = -1;
	uint32_t act = MOAT_ACT_PASS;

	for (size_t i = 0; i < n; i++)
		if ((int)v[i].plen > best && covers(&v[i], addr)) {
			best = (int)v[i].plen;
			act = v[i].act;
		}
	return act;
}

/* set_rule - v (a rule set without duplicate keys) with r put. */
static size_t set_rule(struct r6 *v, size_t n, const struct r6 *r)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].plen == r->plen && !memcmp(v[i].a, r->a, 16)) {
			v[i].act = r->act;
			return n;
		}
	v[n] = *r;
	return n + 1;
}

static size_t del_rule(struct r6 *v, size_t n, const struct r6 *r)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].plen == r->plen && !memcmp(v[i].a, r->a, 16)) {
			v[i] = v[n - 1];
			return n - 1;
		}
	return n;
}

/* probe - addresses around rule r: its first and last address, one
 * random inside, and the neighbours just outside. */
static void probes(const struct r6 *r, uint8_t out[5][16])
{
	for (int k = 0; k < 5; k++) {
		memcpy(out[k], r->a, 16);
		for (unsigned b = r->plen; b < 128; b++) {
			int bit;

			if (k == 0)
				bit = 0;
			else if (k == 1)
				bit = 1;
			else
				bit = (int)(xr() & 1);
			if (bit)
				out[k][b / 8] |= (uint8_t)(0x80 >> (b % 8));
		}
		if (k >= 3 && r->plen > 0) {   /* flip the last prefix bit */
			unsigned b = r->plen - 1;

			out[k][b / 8] ^= (uint8_t)(0x80 >> (b % 8));
		}
	}
}

static void check_all(struct vt_trie6 *t, const struct r6 *v, size_t n)
{
	const struct vt_trie6_mem *m = vt_trie6_storage(t);

	for (size_t i = 0; i < n; i++) {
		uint8_t p[5][16];

		probes(&v[i], p);
		for (int k = 0; k < 5; k++) {
			uint32_t want = ref(v, n, p[k]), got = vt_trie6_lookup(m, p[k]);

			if (want != got) {
				char buf[64];

				for (int j = 0; j < 16; j++)
					snprintf(buf + 2 * j, 3, "%02x", p[k][j]);
				fail_msg("rule %zu/%u probe %d %s: got %u want %u",
					 i, v[i].plen, k, buf, got, want);
			}
		}
	}
}

static void put(struct vt_trie6 *t, const struct r6 *r)
{
	assert_int_equal(vt_trie6_put(t, r->a, r->plen, r->act), 0);
	vt_trie6_grace_done(t);
}

static void del(struct vt_trie6 *t, const struct r6 *r)
{
	assert_int_equal(vt_trie6_del(t, r->a, r->plen), 0);
	vt_trie6_grace_done(t);
}

/* put_check / del_check - r put (deleted) in t and in the set v[0, n),
 * every rule's probes checked; the set's new size */
static size_t put_check(struct vt_trie6 *t, struct r6 *v, size_t n,
			const struct r6 *r)
{
	put(t, r);
	n = set_rule(v, n, r);
	check_all(t, v, n);
	return n;
}

static size_t del_check(struct vt_trie6 *t, struct r6 *v, size_t n,
			const struct r6 *r)
{
	del(t, r);
	n = del_rule(v, n, r);
	check_all(t, v, n);
	return n;
}

/* assert_emptied - no rule, node or bucket left, every root entry 0 */
static void assert_emptied(struct vt_trie6 *t)
{
	const struct vt_trie6_mem *m = vt_trie6_storage(t);
	struct vt_trie6_stats st;

	vt_trie6_stats(t, &st);
	assert_int_equal(st.rules, 0);
	assert_int_equal(st.nodes, 0);     /* every node collapsed */
	assert_int_equal(st.buckets, 0);
	for (size_t i = 0; i < vt_trie6_root_entries(m->root_bits); i++)
		if (m->root[i])
			fail_msg("root entry %zu left: %#x", i, m->root[i]);
}

/* assert_act_bits_own_only - every root and node entry has zero action
 * bits unless its own bit is set: the BPF walk takes the root entry's
 * bits 28..27 as its default without testing the own bit (PASS is 0). */
static void assert_act_bits_own_only(struct vt_trie6 *t)
{
	const struct vt_trie6_mem *m = vt_trie6_storage(t);
	struct vt_trie6_stats st;
	uint32_t bad = 0, e;

	vt_trie6_stats(t, &st);
	for (size_t i = 0; i < vt_trie6_root_entries(m->root_bits); i++)
		if (!((e = m->root[i]) & MOAT_V6T_OWN) && (e >> MOAT_V6T_ACT_SHIFT & 3))
			bad = e;
	for (uint32_t n = 0; n < st.nodes_hw; n++)
		for (int i = 0; i < MOAT_V6T_NODE_ENTRIES; i++)
			if (!((e = m->nodes[n].e[i]) & MOAT_V6T_OWN) &&
			    (e >> MOAT_V6T_ACT_SHIFT & 3))
				bad = e;
	if (bad)
		fail_msg("entry %#x: action bits without its own bit", bad);
}

/* bit b of the address (hi, lo) */
static unsigned abit(uint64_t hi, uint64_t lo, unsigned b)
{
	return (unsigned)(b < 64 ? hi >> (63 - b) : lo >> (127 - b)) & 1;
}

/* skip_want - the skip bits a bucket below an entry of range d must have:
 * quarter q skipped when no rule of the bucket agrees with q on the bits
 * d, d + 1 it fixes (computed here bit by bit, not as the writer does) */
static uint32_t skip_want(const struct moat_v6_bucket *b, unsigned d)
{
	uint32_t skip = 0;

	for (unsigned q = 0; q < 4; q++) {
		int any = 0;

		for (unsigned i = 0; i < b->n; i++) {
			int agree = 1;

			for (unsigned j = d; j < d + 2 && j < b->plen[i]; j++)
				if (abit(b->hi[i], b->lo[i], j) != ((q >> (1 - (j - d))) & 1))
					agree = 0;
			any |= agree;
		}
		if (!any)
			skip |= 1u << q;
	}
	return skip;
}

/* skip_check_entry - the skip bits of entry e (range d) and below */
static void skip_check_entry(const struct vt_trie6_mem *m, uint32_t e, unsigned d,
			     size_t *buckets)
{
	uint32_t got = (e & MOAT_V6T_SKIP_MASK) >> MOAT_V6T_SKIP_SHIFT;

	if (moat_v6t_kind(e) == MOAT_V6T_KIND_NODE) {
		assert_int_equal(got, 0);
		for (int i = 0; i < MOAT_V6T_NODE_ENTRIES; i++)
			skip_check_entry(m, m->nodes[moat_v6t_index(e)].e[i], d + 8, buckets);
	} else if (moat_v6t_kind(e) == MOAT_V6T_KIND_BUCKET) {
		uint32_t want = skip_want(&m->buckets[moat_v6t_index(e)], d);

		if (got != want)
			fail_msg("bucket %u below range %u: skip %#x, want %#x",
				 moat_v6t_index(e), d, got, want);
		(*buckets)++;
	} else {
		assert_int_equal(got, 0);
	}
}

/* assert_skip_exact - every bucket entry's skip bits are what its rules
 * say (none skips a quarter a rule covers, none misses one it could
 * skip), other entries have none; the buckets reached */
static size_t assert_skip_exact(struct vt_trie6 *t)
{
	const struct vt_trie6_mem *m = vt_trie6_storage(t);
	size_t nb = 0;

	for (size_t i = 0; i < vt_trie6_root_entries(m->root_bits); i++) {
		unsigned d = m->root_bits == MOAT_V6T_ROOT_BITS_WIDE &&
			     i < MOAT_V6T_WIDE_IN_ENTRIES ? 24 : 16;

		skip_check_entry(m, m->root[i], d, &nb);
	}
	return nb;
}

static struct r6 rule(const char *hex, unsigned plen, uint32_t act)
{
	struct r6 r = { .plen = plen, .act = act };

	for (int i = 0; i < 16 && hex[2 * i]; i++)
		sscanf(hex + 2 * i, "%2hhx", &r.a[i]);
	mask(r.a, plen);
	return r;
}

/* the layout's edges, each put, checked, then deleted in another order */
static void test_edges(void **state)
{
	(void)state;
	struct vt_trie6 *t = new_trie(1024, 4096);
	struct r6 v[64];
	size_t n = 0;
	const char *base = "20010db8000000010000000000000001";
	uint8_t zero[16] = { 0 };

	assert_non_null(t);
	assert_int_equal(vt_trie6_lookup(vt_trie6_storage(t), zero), MOAT_ACT_PASS);
	assert_int_equal(vt_trie6_put(t, zero, 129, 1), -EINVAL);
	struct r6 e[] = {
		rule(base, 0, MOAT_ACT_TARPIT),      /* everything */
		rule(base, 128, MOAT_ACT_PASS),      /* one exclusion in it */
		rule(base, 16, MOAT_ACT_DROP),       /* the root's last length */
		rule(base, 17, MOAT_ACT_ALLOW),      /* the first node's first */
		rule(base, 15, MOAT_ACT_PASS),
		rule(base, 24, MOAT_ACT_TARPIT),     /* node boundary */
		rule(base, 25, MOAT_ACT_DROP),
		rule(base, 20, MOAT_ACT_DROP),       /* across 16 | 24 */
		rule(base, 63, MOAT_ACT_ALLOW),      /* the halves' boundary */
		rule(base, 64, MOAT_ACT_DROP),
		rule(base, 65, MOAT_ACT_TARPIT),
		rule(base, 127, MOAT_ACT_DROP),
		rule(base, 120, MOAT_ACT_ALLOW),     /* the deepest node */
		rule(base, 121, MOAT_ACT_TARPIT),
		rule("20010db8000000010000000000000002", 128, MOAT_ACT_DROP),
		rule("20010db8000000010000000000000003", 128, MOAT_ACT_ALLOW),
		rule("20010db8000000010000000000000004", 128, MOAT_ACT_TARPIT),
		rule("20010db8000000010000000000000005", 128, MOAT_ACT_DROP),
		rule("20010db8000000020000000000000000", 48, MOAT_ACT_DROP),
		rule("20010db8000000020000000000000000", 56, MOAT_ACT_PASS),
		rule("20010db8000000020001000000000000", 64, MOAT_ACT_TARPIT),
		rule("ffffffffffffffffffffffffffffffff", 128, MOAT_ACT_DROP),
		rule("ffffffffffffffffffffffffffffffff", 1, MOAT_ACT_ALLOW),
		rule("00000000000000000000000000000000", 128, MOAT_ACT_DROP),
	};
	size_t ne = sizeof(e) / sizeof(e[0]);

	for (size_t i = 0; i < ne; i++)
		n = put_check(t, v, n, &e[i]);
	/* overwrite each action */
	for (size_t i = 0; i < ne; i++) {
		e[i].act = (e[i].act + 1) & 3;
		n = put_check(t, v, n, &e[i]);
	}
	/* delete from the middle out */
	for (size_t k = 0; k < ne; k++) {
		size_t i = (k * 7) % ne;

		n = del_check(t, v, n, &e[i]);
		del(t, &e[i]);   /* absent: still 0 */
	}
	assert_int_equal(n, 0);
	assert_emptied(t);
	vt_trie6_free(t);
}

/* rand_rule - clustered under a few /32s so rules overlap, share nodes,
 * fill and split buckets */
static struct r6 rand_rule(void)
{
	static const unsigned lens[] = { 0, 8, 16, 17, 23, 24, 32, 33, 40, 47,
		48, 56, 60, 63, 64, 65, 72, 96, 112, 120, 121, 127, 128 };
	struct r6 r;
	uint64_t x = xr(), y = xr();

	r.a[0] = 0x20;
	r.a[1] = 0x01;
	r.a[2] = 0x0d;
	r.a[3] = (uint8_t)(x & 3);
	for (int i = 4; i < 16; i++)
		r.a[i] = (uint8_t)((y >> (i * 3)) & ((i == 7 || i == 15) ? 0xff : 0x01));
	if ((x >> 8) % 16 == 0)
		r.a[0] = (uint8_t)(x >> 16);
	r.plen = lens[(x >> 24) % (sizeof(lens) / sizeof(lens[0]))];
	r.act = (uint32_t)(x >> 40) & 3;
	mask(r.a, r.plen);
	return r;
}

static void test_random_churn(void **state)
{
	(void)state;
	struct vt_trie6 *t = new_trie(1 << 14, 1 << 16);
	struct r6 *v = calloc(4096, sizeof(*v));
	size_t n = 0;
	struct vt_trie6_stats st;

	assert_non_null(t);
	for (int round = 0; round < 40; round++) {
		for (int k = 0; k < 100; k++) {
			struct r6 r = rand_rule();

			if (n && (xr() % 3) == 0) {
				r = v[xr() % n];
				del(t, &r);
				n = del_rule(v, n, &r);
			} else if (n < 4000) {
				put(t, &r);
				n = set_rule(v, n, &r);
			}
		}
		check_all(t, v, n);
	}
	vt_trie6_stats(t, &st);
	assert_int_equal(st.rules, n);
	assert_act_bits_own_only(t);
	assert_int_equal(assert_skip_exact(t), st.buckets);
	print_message("# %zu rules: %u nodes, %u buckets, %zu bytes\n", n,
		      st.nodes, st.buckets, st.bytes);
	while (n) {
		struct r6 r = v[n - 1];

		del(t, &r);
		n--;
	}
	vt_trie6_stats(t, &st);
	assert_int_equal(st.nodes, 0);
	assert_int_equal(st.buckets, 0);
	free(v);
	vt_trie6_free(t);
}

/* full storage: -ENOSPC, the trie unchanged and serving */
static void test_enospc(void **state)
{
	(void)state;
	struct vt_trie6 *t = new_trie(2, 3);
	struct r6 v[16];
	size_t n = 0;
	int rc = 0, i;

	assert_non_null(t);
	for (i = 0; i < 16 && rc == 0; i++) {
		struct r6 r = rule("20010db8000000000000000000000000", 128,
				   MOAT_ACT_DROP);

		r.a[15] = (uint8_t)i;
		r.a[3] = (uint8_t)(i % 4);   /* spread over nodes */
		rc = vt_trie6_put(t, r.a, r.plen, r.act);
		vt_trie6_grace_done(t);
		if (rc == 0)
			n = set_rule(v, n, &r);
	}
	assert_int_equal(rc, -ENOSPC);
	check_all(t, v, n);
	vt_trie6_free(t);
}

/* adopt: a writer over a trie another writer left, brought to a rule set
 * (the same one, another one, or from an empty trie), then churned */
static void test_adopt(void **state)
{
	(void)state;
	struct vt_trie6_mem m = { .nodes_max = 1 << 12, .buckets_max = 1 << 14,
				  .root_bits = test_rb };
	struct r6 *v = calloc(4096, sizeof(*v)), *w = calloc(4096, sizeof(*w));
	struct vt_trie6_rule *tr = calloc(4096, sizeof(*tr));
	size_t n = 0, nw = 0, fixed = 99;
	struct vt_trie6 *t;
	int err;

	m.root = calloc(vt_trie6_root_entries(test_rb), sizeof(uint32_t));
	m.nodes = calloc(m.nodes_max, sizeof(struct moat_v6_node));
	m.buckets = calloc(m.buckets_max, sizeof(struct moat_v6_bucket));
	assert_non_null(t = vt_trie6_new(&m));
	for (int k = 0; k < 1500; k++) {
		struct r6 r = rand_rule();

		put(t, &r);
		n = set_rule(v, n, &r);
	}
	vt_trie6_free(t);   /* the storage stays, as pinned maps do */
	for (int round = 0; round < 3; round++) {
		const struct r6 *src = round == 1 ? w : v;
		size_t ns = round == 1 ? nw : n;

		if (round == 1) {   /* another rule set: half kept, some new */
			for (size_t i = 0; i < n; i += 2)
				nw = set_rule(w, nw, &v[i]);
			for (int k = 0; k < 300; k++)
				nw = set_rule(w, nw, (struct r6[]){ rand_rule() });
			src = w;
			ns = nw;
		}
		if (round == 2) {   /* an empty trie, the rules given */
			memset(m.root, 0, vt_trie6_root_entries(test_rb) * sizeof(uint32_t));
		}
		for (size_t i = 0; i < ns; i++) {
			memcpy(tr[i].addr, src[i].a, 16);
			tr[i].plen = src[i].plen;
			tr[i].act = src[i].act;
		}
		t = vt_trie6_adopt(&m, tr, ns, &fixed, &err);
		assert_non_null(t);
		assert_int_equal(err, 0);
		if (round == 0)
			assert_int_equal(fixed, 0);   /* nothing to change */
		else
			assert_true(fixed > 0);
		vt_trie6_grace_done(t);
		check_all(t, src, ns);
		/* the adopted writer's side is right: churn, check */
		struct r6 *cur = round == 1 ? w : v;
		size_t nc = ns;

		for (int k = 0; k < 400; k++) {
			struct r6 r = rand_rule();

			if (nc && (xr() % 2)) {
				r = cur[xr() % nc];
				del(t, &r);
				nc = del_rule(cur, nc, &r);
			} else {
				put(t, &r);
				nc = set_rule(cur, nc, &r);
			}
		}
		check_all(t, cur, nc);
		if (round == 1)
			nw = nc;
		else
			n = nc;
		vt_trie6_free(t);
	}
	/* skip bits a former writer left wrong (all set: every lookup
	 * would stop before its bucket; none: no harm but speed) are made
	 * right by the adoption, rules unchanged */
	for (size_t i = 0, k = 0; i < vt_trie6_root_entries(test_rb); i++)
		if (moat_v6t_kind(m.root[i]) == MOAT_V6T_KIND_BUCKET)
			m.root[i] = k++ % 2 ? m.root[i] | MOAT_V6T_SKIP_MASK
					    : m.root[i] & ~MOAT_V6T_SKIP_MASK;
	for (size_t i = 0; i < n; i++) {
		memcpy(tr[i].addr, v[i].a, 16);
		tr[i].plen = v[i].plen;
		tr[i].act = v[i].act;
	}
	t = vt_trie6_adopt(&m, tr, n, &fixed, &err);
	assert_non_null(t);
	assert_int_equal(fixed, 0);
	assert_true(assert_skip_exact(t) > 0);
	check_all(t, v, n);
	vt_trie6_free(t);
	/* a damaged trie: an index past the storage */
	m.root[7] = moat_v6t_entry(MOAT_V6T_KIND_NODE, 0, 0, m.nodes_max + 5);
	assert_null(vt_trie6_adopt(&m, tr, 0, NULL, &err));
	assert_int_equal(err, -EINVAL);
	free(m.root);
	free(m.nodes);
	free(m.buckets);
	free(v);
	free(w);
	free(tr);
}

/* --- lookups while a publish runs ---------------------------------------- */

struct race {
	struct vt_trie6 *t;
	uint8_t (*addr)[16];
	uint32_t *ok_a, *ok_b;   /* the two verdicts each address may get */
	size_t naddr;
	volatile int stop;
	uint64_t done;           /* lookups finished (the reader's QSBR) */
	uint64_t bad, lookups;
	uint64_t saw_a, saw_b;   /* lookups of a differing address that got
				  * the old one's, the new one's verdict */
};

static void *reader(void *arg)
{
	struct race *r = arg;
	const struct vt_trie6_mem *m = vt_trie6_storage(r->t);
	size_t i = 0;

	while (!r->stop) {
		uint32_t a = vt_trie6_lookup(m, r->addr[i]);

		if (a != r->ok_a[i] && a != r->ok_b[i])
			r->bad++;
		else if (r->ok_a[i] != r->ok_b[i])
			*(a == r->ok_a[i] ? &r->saw_a : &r->saw_b) += 1;
		r->lookups++;
		__atomic_add_fetch(&r->done, 1, __ATOMIC_RELEASE);
		i = (i + 1) % r->naddr;
	}
	return NULL;
}

/* grace - every lookup begun before now has ended, then reuse. */
static void grace(struct race *r)
{
	uint64_t q = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);

	while (__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) <= q)
		sched_yield();
	vt_trie6_grace_done(r->t);
}

static int by_plen_desc(const void *x, const void *y)
{
	const struct r6 *a = x, *b = y;

	return (int)b->plen - (int)a->plen;
}

/* publish - take the trie from rule set from[] to to[]: puts longest
 * first, then deletes shortest first (moat_abi.h PUBLISHING ORDER 3),
 * a grace period after each change. */
static void publish(struct race *rc, const struct r6 *from, size_t nf,
		    const struct r6 *to, size_t nt)
{
	struct r6 *p = calloc(nt + nf + 1, sizeof(*p));
	size_t np = 0, nd = 0;

	for (size_t i = 0; i < nt; i++) {
		int same = 0;

		for (size_t j = 0; j < nf; j++)
			if (from[j].plen == to[i].plen && !memcmp(from[j].a, to[i].a, 16))
				same = from[j].act == to[i].act;
		if (!same)
			p[np++] = to[i];
	}
	qsort(p, np, sizeof(*p), by_plen_desc);
	for (size_t i = 0; i < np; i++) {
		assert_int_equal(vt_trie6_put(rc->t, p[i].a, p[i].plen, p[i].act), 0);
		grace(rc);
	}
	for (size_t j = 0; j < nf; j++) {
		int kept = 0;

		for (size_t i = 0; i < nt; i++)
			if (from[j].plen == to[i].plen && !memcmp(from[j].a, to[i].a, 16))
				kept = 1;
		if (!kept)
			p[nd++] = from[j];
	}
	qsort(p, nd, sizeof(*p), by_plen_desc);
	for (size_t i = nd; i-- > 0;) {
		assert_int_equal(vt_trie6_del(rc->t, p[i].a, p[i].plen), 0);
		grace(rc);
	}
	free(p);
}

static void test_publish_while_reading(void **state)
{
	(void)state;
	enum { NR = 300, NA = 4096 };
	struct r6 *a = calloc(NR, sizeof(*a)), *b = calloc(NR, sizeof(*b));
	size_t na = 0, nb = 0;
	struct race rc = { 0 };
	pthread_t th;
	time_t end;
	int pubs = 0;

	rc.t = new_trie(1 << 14, 1 << 16);
	assert_non_null(rc.t);
	/* the counterexample of moat_abi.h PUBLISHING ORDER 4: old /48 DROP,
	 * new /64 DROP inside it with the /48 gone */
	a[na++] = rule("20010db8000100000000000000000000", 48, MOAT_ACT_DROP);
	b[nb++] = rule("20010db8000100000000000000000000", 64, MOAT_ACT_DROP);
	while (na < NR)
		na = set_rule(a, na, (struct r6[]){ rand_rule() });
	while (nb < NR)
		nb = set_rule(b, nb, (struct r6[]){ rand_rule() });
	rc.addr = calloc(NA, 16);
	rc.naddr = NA;
	rc.ok_a = calloc(NA, sizeof(uint32_t));
	rc.ok_b = calloc(NA, sizeof(uint32_t));
	for (size_t i = 0; i < NA; i++) {
		const struct r6 *r = (i & 1) ? &a[xr() % na] : &b[xr() % nb];
		uint8_t p[5][16];

		probes(r, p);
		memcpy(rc.addr[i], p[xr() % 5], 16);
		if (i < 64)   /* inside the /64 of the counterexample */
			memcpy(rc.addr[i], b[0].a, 16), rc.addr[i][15] = (uint8_t)i;
		rc.ok_a[i] = ref(a, na, rc.addr[i]);
		rc.ok_b[i] = ref(b, nb, rc.addr[i]);
	}
	assert_int_equal(rc.ok_a[5], MOAT_ACT_DROP);
	assert_int_equal(rc.ok_b[5], MOAT_ACT_DROP);
	for (size_t i = 0; i < na; i++)
		assert_int_equal(vt_trie6_put(rc.t, a[i].a, a[i].plen, a[i].act), 0);
	vt_trie6_grace_done(rc.t);
	assert_int_equal(pthread_create(&th, NULL, reader, &rc), 0);
	end = time(NULL) + 3;
	while (time(NULL) < end) {
		publish(&rc, a, na, b, nb);
		publish(&rc, b, nb, a, na);
		pubs += 2;
	}
	rc.stop = 1;
	pthread_join(th, NULL);
	print_message("# %d publishes, %llu lookups (%llu old, %llu new verdict "
		      "where they differ), %llu wrong\n", pubs,
		      (unsigned long long)rc.lookups, (unsigned long long)rc.saw_a,
		      (unsigned long long)rc.saw_b, (unsigned long long)rc.bad);
	assert_true(pubs >= 2);
	assert_true(rc.lookups > 1000);
	/* positive control: the reader did meet both tables (the publishes
	 * ran under it), so a torn state had its chance to show */
	assert_true(rc.saw_a > 0 && rc.saw_b > 0);
	assert_int_equal(rc.bad, 0);
	vt_trie6_free(rc.t);
	free(rc.addr);
	free(rc.ok_a);
	free(rc.ok_b);
	free(a);
	free(b);
}

/* the wide root's own edges: lengths around its 24 bits, rules going
 * straight into buckets below root entries (no node), a fourth rule
 * splitting such a bucket into a node at depth 24, a /64 with /128s in
 * its bucket, neighbours differing in bit 24 only, a /24 outside
 * 2000::/3 (a node at depth 16), a /0 painting both parts of the root */
static void test_wide_edges(void **state)
{
	(void)state;
	struct vt_trie6 *t = vt_trie6_new_owned_root(MOAT_V6T_ROOT_BITS_WIDE, 64, 256);
	struct r6 v[64];
	size_t n = 0;
	struct vt_trie6_stats st;
	const char *base = "20010d00000000010000000000000001";
	struct r6 e[] = {
		rule(base, 23, MOAT_ACT_TARPIT),     /* two root entries */
		rule(base, 24, MOAT_ACT_DROP),       /* the root's last length */
		rule("20010c00000000000000000000000000", 24, MOAT_ACT_DROP),
		/* a bucket right below the root: a /64 and /128s in it */
		rule("20010d00000000010000000000000000", 64, MOAT_ACT_DROP),
		rule("20010d00000000010000000000000002", 128, MOAT_ACT_PASS),
		rule("20010d00000000010000000000000003", 128, MOAT_ACT_ALLOW),
		/* the fourth rule below 2001:0d00::/24: a node at depth 24 */
		rule(base, 25, MOAT_ACT_ALLOW),
		rule("20010d00000000020000000000000000", 48, MOAT_ACT_TARPIT),
		rule(base, 31, MOAT_ACT_PASS),       /* the node's own lengths */
		rule(base, 32, MOAT_ACT_DROP),
		rule(base, 33, MOAT_ACT_TARPIT),     /* the node's buckets */
		rule("20010dff000000000000000000000000", 32, MOAT_ACT_ALLOW),
		rule("20010e00000000000000000000000000", 25, MOAT_ACT_DROP),
		rule("20010e80000000000000000000000000", 25, MOAT_ACT_TARPIT),
		rule("ffffff00000000000000000000000000", 24, MOAT_ACT_DROP),
		rule("ffffffffffffffffffffffffffffffff", 128, MOAT_ACT_ALLOW),
		rule("00000000000000000000000000000000", 8, MOAT_ACT_DROP),
		rule("00000000000000000000000000000000", 0, MOAT_ACT_TARPIT),
	};
	size_t ne = sizeof(e) / sizeof(e[0]);

	assert_non_null(t);
	assert_int_equal(vt_trie6_storage(t)->root_bits, MOAT_V6T_ROOT_BITS_WIDE);
	for (size_t i = 0; i < 6; i++)
		n = put_check(t, v, n, &e[i]);
	vt_trie6_stats(t, &st);
	assert_int_equal(st.nodes, 0);       /* root and buckets only */
	assert_int_equal(st.bytes, MOAT_V6T_ROOT_ENTRIES_WIDE * 4u +
			 st.buckets * sizeof(struct moat_v6_bucket));
	assert_int_equal(st.buckets, 1);
	n = put_check(t, v, n, &e[6]);
	vt_trie6_stats(t, &st);
	assert_int_equal(st.nodes, 1);       /* the split */
	for (size_t i = 7; i < ne; i++)
		n = put_check(t, v, n, &e[i]);
	assert_act_bits_own_only(t);
	for (size_t k = 0; k < ne; k++)
		n = del_check(t, v, n, &e[(k * 5) % ne]);
	assert_emptied(t);
	vt_trie6_free(t);
	/* only 0, 16 and 24 are roots */
	assert_null(vt_trie6_new_owned_root(20, 4, 4));
}

/* the boundary of the wide root's two parts (2000::/3 at depth 24, the
 * rest at depth 16): rules of /0../3 covering entries in both parts, a
 * /3 that is exactly 2000::/3, /4s and /16s on either side of it, /17../24
 * outside it (nodes at depth 16) and inside it (root entries), buckets
 * right below the root in both parts; after every put and delete each
 * rule's probes and the addresses at the boundary (1fff:ffff..., 2000::,
 * 3fff:ffff..., 4000::, ::, ffff:...) look up as the reference says */
static void check_bounds(struct vt_trie6 *t, const struct r6 *v, size_t n)
{
	static const char *const at[] = {
		"00000000000000000000000000000000",
		"1fffffffffffffffffffffffffffffff",
		"1fffff00000000000000000000000000",
		"20000000000000000000000000000000",
		"20000000000000000000000000000001",
		"200000ffffffffffffffffffffffffff",
		"3fffff00000000000000000000000000",
		"3fffffffffffffffffffffffffffffff",
		"40000000000000000000000000000000",
		"7fffffffffffffffffffffffffffffff",
		"ffffffffffffffffffffffffffffffff",
	};

	check_all(t, v, n);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct r6 p = rule(at[i], 128, 0);

		if (vt_trie6_lookup(vt_trie6_storage(t), p.a) != ref(v, n, p.a))
			fail_msg("%s: got %u want %u", at[i],
				 vt_trie6_lookup(vt_trie6_storage(t), p.a), ref(v, n, p.a));
	}
}

static void test_split_edges(void **state)
{
	(void)state;
	struct vt_trie6 *t = vt_trie6_new_owned_root(MOAT_V6T_ROOT_BITS_WIDE, 64, 256);
	struct r6 v[64];
	size_t n = 0;
	struct vt_trie6_stats st;
	struct r6 e[] = {
		rule("20000000000000000000000000000000", 3, MOAT_ACT_DROP),   /* 2000::/3 */
		rule("00000000000000000000000000000000", 2, MOAT_ACT_TARPIT), /* ::/2 */
		rule("00000000000000000000000000000000", 1, MOAT_ACT_ALLOW),  /* ::/1 */
		rule("00000000000000000000000000000000", 0, MOAT_ACT_DROP),   /* ::/0 */
		rule("40000000000000000000000000000000", 3, MOAT_ACT_TARPIT), /* 4000::/3 */
		rule("10000000000000000000000000000000", 4, MOAT_ACT_ALLOW),  /* outside */
		rule("30000000000000000000000000000000", 4, MOAT_ACT_TARPIT), /* inside */
		rule("1fff0000000000000000000000000000", 16, MOAT_ACT_DROP),
		rule("20000000000000000000000000000000", 16, MOAT_ACT_ALLOW),
		rule("3fff0000000000000000000000000000", 16, MOAT_ACT_ALLOW),
		rule("40000000000000000000000000000000", 16, MOAT_ACT_DROP),
		/* four rules below 1fff::/16: a node at depth 16 */
		rule("1fffff00000000000000000000000000", 24, MOAT_ACT_TARPIT),
		rule("1fff8000000000000000000000000000", 17, MOAT_ACT_ALLOW),
		rule("1fff0000000000010000000000000000", 64, MOAT_ACT_DROP),
		rule("200000ff000000000000000000000000", 32, MOAT_ACT_DROP),
		rule("3fffff00000000000000000000000000", 24, MOAT_ACT_DROP),
		rule("3fffffffffffffffffffffffffffffff", 128, MOAT_ACT_TARPIT),
		rule("1fffffffffffffffffffffffffffffff", 128, MOAT_ACT_ALLOW),
		rule("40000000000000000000000000000000", 128, MOAT_ACT_ALLOW),
		rule("20000000000000000000000000000000", 64, MOAT_ACT_TARPIT),
		rule("e0000000000000000000000000000000", 3, MOAT_ACT_ALLOW),
		rule("00000000000000000000000000000000", 3, MOAT_ACT_TARPIT),
	};
	size_t ne = sizeof(e) / sizeof(e[0]);

	assert_non_null(t);
	assert_int_equal(vt_trie6_root_entries(MOAT_V6T_ROOT_BITS_WIDE),
			 (1u << 21) + (1u << 16));
	for (size_t i = 0; i < ne; i++)
		check_bounds(t, v, n = put_check(t, v, n, &e[i]));
	vt_trie6_stats(t, &st);
	assert_int_equal(st.rules, ne);
	assert_int_equal(st.nodes, 1);   /* 1fff::/16's, at depth 16 */
	assert_act_bits_own_only(t);
	/* changed actions over both parts */
	for (size_t i = 0; i < 4; i++) {
		struct r6 r = e[i];

		r.act = (r.act + 1) & 3;
		check_bounds(t, v, n = put_check(t, v, n, &r));
	}
	for (size_t k = 0; k < ne; k++)
		check_bounds(t, v, n = del_check(t, v, n, &e[(k * 7) % ne]));
	assert_emptied(t);
	vt_trie6_free(t);
}

/* the skip bits of one entry's bucket as its rules come and go: a rule
 * one bit past the entry covers two quarters, a longer one one, three
 * rules three at most; addresses in every quarter looked up (each rule's
 * probes flip its last bit, and the four quarters are probed here) */
static void test_skip_bits(void **state)
{
	(void)state;
	struct vt_trie6 *t = new_trie(64, 256);
	const struct vt_trie6_mem *m;
	struct r6 v[16];
	size_t n = 0;
	unsigned d = test_rb == MOAT_V6T_ROOT_BITS_WIDE ? 24 : 16;
	struct r6 e[4];
	uint8_t a[16];
	uint32_t slot, got;
	__u32 dd;
	__u64 hi, lo;

	assert_non_null(t);
	m = vt_trie6_storage(t);
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 4; i++) {
		e[i] = rule("2001db80000000000000000000000000", 128, 0);
		e[i].act = (uint32_t)(i % 3) + 1;
	}
	/* below 2001:db8::/d (d 16 or 24): quarter 2 (bits d, d+1 = 10) /d+1
	 * over quarters 2, 3; a /64 in quarter 1; a /128 in quarter 3 */
	e[0].plen = d + 1;
	e[0].a[d / 8] = 0x80;
	mask(e[0].a, e[0].plen);
	e[1].plen = 64;
	e[1].a[d / 8] = 0x40;
	e[1].a[7] = 9;
	mask(e[1].a, e[1].plen);
	e[2].plen = 128;
	e[2].a[d / 8] = 0xc0;
	e[2].a[15] = 1;
	moat_v6t_halves(e[0].a, &hi, &lo);
	slot = moat_v6t_root_slot(hi, moat_v6t_root_bits(test_rb), &dd);
	assert_int_equal(dd, d);
	n = put_check(t, v, n, &e[1]);
	assert_int_equal((m->root[slot] & MOAT_V6T_SKIP_MASK) >> MOAT_V6T_SKIP_SHIFT,
			 0xd);      /* only quarter 1 read */
	n = put_check(t, v, n, &e[0]);
	assert_int_equal((m->root[slot] & MOAT_V6T_SKIP_MASK) >> MOAT_V6T_SKIP_SHIFT,
			 0x1);      /* 1, 2, 3 */
	n = put_check(t, v, n, &e[2]);
	assert_int_equal((m->root[slot] & MOAT_V6T_SKIP_MASK) >> MOAT_V6T_SKIP_SHIFT,
			 0x1);
	for (unsigned q = 0; q < 4; q++) {
		memcpy(a, e[0].a, 16);
		a[d / 8] = (uint8_t)(q << 6);
		a[7] = 9;
		got = vt_trie6_lookup(m, a);
		assert_int_equal(got, ref(v, n, a));
	}
	n = del_check(t, v, n, &e[0]);
	assert_int_equal((m->root[slot] & MOAT_V6T_SKIP_MASK) >> MOAT_V6T_SKIP_SHIFT,
			 0x5);      /* 1 and 3 */
	assert_int_equal(assert_skip_exact(t), 1);
	/* a fourth rule splits the bucket into a node: no skip bits on it,
	 * its buckets get their own */
	n = put_check(t, v, n, &e[0]);
	e[3] = e[1];
	e[3].a[7] = 10;
	n = put_check(t, v, n, &e[3]);
	assert_int_equal(moat_v6t_kind(m->root[slot]), MOAT_V6T_KIND_NODE);
	assert_true(assert_skip_exact(t) >= 1);
	for (size_t k = 0; k < 4; k++)
		n = del_check(t, v, n, &e[(k * 3) % 4]);
	assert_emptied(t);
	vt_trie6_free(t);
}

int main(void)
{
#define WIDE(f) cmocka_unit_test_setup_teardown(f, wide_setup, wide_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_random_churn),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_publish_while_reading),
		cmocka_unit_test(test_wide_edges),
		cmocka_unit_test(test_split_edges),
		cmocka_unit_test(test_skip_bits),
		WIDE(test_skip_bits),
		WIDE(test_edges),
		WIDE(test_random_churn),
		WIDE(test_enospc),
		WIDE(test_adopt),
		WIDE(test_publish_while_reading),
	};


	return cmocka_run_group_tests(tests, NULL, NULL);
}
