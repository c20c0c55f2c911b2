/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_store.c - the listing store of the verdict table: where a db keeps
 * the raw listings of every source, compact, with no allocation per entry.
 *
 *   IPv4 /24../32  a directory of 2^24 u32 (one per /24) pointing at a chunk
 *                  of a single pool of 12-byte entries; chunks come in
 *                  power-of-two size classes with free lists.  O(1) to find
 *                  the entries of a /24, which is what compiling a /24 needs.
 *   IPv4 /0../23   and all IPv6: sorted arrays of 28-byte entries (few of
 *                  them), changed in batches in place: k binary searches
 *                  and one memmove per untouched run.  Covering prefixes
 *                  of an address are found by one binary search per prefix
 *                  length present.
 *
 * Only the data structures live here; what a change means (sources,
 * expiry, counters, dirty /24s) is vt_commit.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

/* ----------------------------------------------------- growable arrays */

/* vt_vec_push - append v; -ENOMEM. */
int vt_vec_push(struct u32vec *a, uint32_t v)
{
	if (a->n == a->cap) {
		size_t c = a->cap ? a->cap * 2 : 64;
		uint32_t *p = realloc(a->v, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		a->v = p;
		a->cap = c;
	}
	a->v[a->n++] = v;
	return 0;
}

/* vt_grow - make *p hold at least want elements of size sz; -ENOMEM. */
int vt_grow(void **p, size_t *cap, size_t want, size_t sz)
{
	size_t c = *cap ? *cap : 16;
	void *q;

	if (want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	q = realloc(*p, c * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

/* ------------------------------------------------------- v4 chunk pool */

/* chunk_alloc - a chunk of 2^cls slots; its offset or 0 on ENOMEM. */
static uint32_t chunk_alloc(struct vt_db *db, unsigned cls)
{
	uint32_t sz = 1u << cls, off;

	if (db->freel[cls].n)
		off = db->freel[cls].v[--db->freel[cls].n];
	else {
		if ((uint64_t)db->pool_n + sz >= 0x7fffffffu)
			return 0;
		if (db->pool_n + sz > db->pool_cap) {
			/* grow by half: the pool is the bulk of the store */
			size_t cap = (size_t)db->pool_cap + db->pool_cap / 2 + sz;
			struct v4e *p;

			if (cap > 0x7fffffffu)
				cap = 0x7fffffffu;
			p = realloc(db->pool, cap * sizeof(*p));
			if (!p)
				return 0;
			vt_thp(p, cap * sizeof(*p));
			db->pool = p;
			db->pool_cap = (uint32_t)cap;
		}
		off = db->pool_n;
		db->pool_n += sz;
	}
	db->pool[off].code = 0;    /* header: count */
	db->pool[off].expiry = cls; /* header: class */
	return off;
}

/* vt_pool_reserve - room for n one-entry chunks in one step, so a big load
 * does not copy the pool at every doubling (best effort). */
void vt_pool_reserve(struct vt_db *db, size_t n)
{
	size_t want = (size_t)db->pool_n + 2 * n + n / 4;
	struct v4e *p;

	if (want >= 0x7fffffffu || want <= db->pool_cap)
		return;
	p = realloc(db->pool, want * sizeof(*p));
	if (p) {
		vt_thp(p, want * sizeof(*p));
		db->pool = p;
		db->pool_cap = (uint32_t)want;
	}
}

/* chunk_free - return a chunk to its class free list. */
static void chunk_free(struct vt_db *db, uint32_t off)
{
	unsigned cls = db->pool[off].expiry;

	/* a failed push only leaks the chunk until the db is freed */
	(void)vt_vec_push(&db->freel[cls], off);
}

/* vt_bucket_add - append e to /24 idx, growing its chunk; -ENOMEM. */
int vt_bucket_add(struct vt_db *db, uint32_t idx, const struct v4e *e)
{
	uint32_t d = db->dir[idx], off = DIR_OFF(d), n = 0, cls = 1, noff;

	if (off) {
		n = db->pool[off].code;
		cls = db->pool[off].expiry;
	}
	if (!off || n + 1 > (1u << cls) - 1) {
		if (off)
			cls++;
		if (cls >= NCLS)
			return -ENOSPC;
		noff = chunk_alloc(db, cls);
		if (!noff)
			return -ENOMEM;
		if (off) {
			memcpy(&db->pool[noff + 1], &db->pool[off + 1],
			       n * sizeof(struct v4e));
			chunk_free(db, off);
		}
		off = noff;
		db->dir[idx] = (d & SHORT_BIT) | off;
	}
	db->pool[off + 1 + n] = *e;
	db->pool[off].code = n + 1;
	return 0;
}

/* vt_bucket_del_at - remove entry i of /24 idx (order not kept). */
void vt_bucket_del_at(struct vt_db *db, uint32_t idx, uint32_t i)
{
	uint32_t off = DIR_OFF(db->dir[idx]), n = db->pool[off].code;

	db->pool[off + 1 + i] = db->pool[off + n];
	db->pool[off].code = --n;
	if (n == 0) {
		chunk_free(db, off);
		db->dir[idx] &= SHORT_BIT;
	}
}

/* v4e_match - stored entry e is rec r of source src. */
static int v4e_match(const struct v4e *e, uint16_t src, const struct rec *r)
{
	return e->source == src && e->host == r->addr[3] &&
	       PF_PLEN(e->pf) == r->plen && !!(e->pf & PF_EXCL) == r->excl &&
	       e->code == r->code;
}

/* vt_v4_find - position of r in its vt_bucket, or -1. */
int vt_v4_find(const struct vt_db *db, uint16_t src, const struct rec *r)
{
	uint32_t n;
	const struct v4e *b = vt_bucket(db, vt_v4_addr(r->addr) >> 8, &n);

	for (uint32_t i = 0; i < n; i++)
		if (v4e_match(&b[i], src, r))
			return (int)i;
	return -1;
}

/* ----------------------------------------------------------- pstore */

/* pe_cmp - store order: address, plen, source, exclude, code. */
static int pe_cmp(const struct pe *a, const struct pe *b)
{
	int c = memcmp(a->addr, b->addr, 16);

	if (c)
		return c;
	if (a->plen != b->plen)
		return a->plen < b->plen ? -1 : 1;
	if (a->source != b->source)
		return a->source < b->source ? -1 : 1;
	if (a->excl != b->excl)
		return a->excl < b->excl ? -1 : 1;
	return a->code < b->code ? -1 : a->code > b->code;
}

/* vt_pe_qcmp - pe_cmp for qsort/bsearch. */
int vt_pe_qcmp(const void *a, const void *b)
{
	return pe_cmp(a, b);
}

/* vt_ps_lower - first index with entry >= key. */
size_t vt_ps_lower(const struct pstore *ps, const struct pe *key)
{
	size_t lo = 0, hi = ps->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pe_cmp(&ps->e[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* vt_ps_prefix_range - entries with exactly this (addr, plen): [*b, *e). */
void vt_ps_prefix_range(const struct pstore *ps, const uint8_t *addr,
			unsigned plen, size_t *b, size_t *e)
{
	struct pe key;
	size_t i;

	memset(&key, 0, sizeof(key));
	vt_mask_bytes(key.addr, addr, plen);
	key.plen = (uint8_t)plen;
	i = vt_ps_lower(ps, &key);
	*b = i;
	while (i < ps->n && ps->e[i].plen == plen &&
	       memcmp(ps->e[i].addr, key.addr, 16) == 0)
		i++;
	*e = i;
}

/* vt_ps_find - index of an identical entry or -1. */
long vt_ps_find(const struct pstore *ps, const struct pe *k)
{
	size_t i = vt_ps_lower(ps, k);

	return i < ps->n && pe_cmp(&ps->e[i], k) == 0 ? (long)i : -1;
}

/* pe_lower - first index in e[lo, hi) not below key. */
static size_t pe_lower(const struct pe *e, size_t lo, size_t hi,
		       const struct pe *key)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pe_cmp(&e[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* vt_ps_apply - delete dels and insert adds (both sorted by pe_cmp) in
 * place: k binary searches, then the untouched runs are moved with one
 * memmove each (deletes close gaps front to back, inserts open them back
 * to front), no per-entry comparison and no new array.  0 or -ENOMEM
 * with the store unchanged. */
int vt_ps_apply(struct pstore *ps, const struct pe *dels, size_t ndel,
		const struct pe *adds, size_t nadd)
{
	size_t w, r, n;

	if (ndel == 0 && nadd == 0)
		return 0;
	if (ps->n + nadd > ps->cap) {
		size_t cap = ps->n + nadd + (ps->n + nadd) / 2;
		struct pe *ne = realloc(ps->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		ps->e = ne;
		ps->cap = cap;
	}
	/* deletes: close each gap, front to back; e[0, w) is done, e[r, n)
	 * not touched yet, and the next delete lies in it */
	w = r = n = ps->n;
	for (size_t d = 0; d < ndel; d++) {
		size_t k = pe_lower(ps->e, w == n ? 0 : r, n, &dels[d]);

		if (k == n || pe_cmp(&ps->e[k], &dels[d]))
			continue; /* cannot happen for validated input */
		if (w == n) {          /* first one: nothing moves before it */
			w = r = k;
		} else {
			memmove(&ps->e[w], &ps->e[r], (k - r) * sizeof(*ps->e));
			w += k - r;
		}
		ps->cnt[ps->e[k].plen]--;
		r = k + 1;
	}
	if (w != n) {
		memmove(&ps->e[w], &ps->e[r], (n - r) * sizeof(*ps->e));
		ps->n = w + (n - r);
	}
	/* inserts: open each slot, back to front */
	n = ps->n;
	r = n;
	w = n + nadd;
	for (size_t j = nadd; j > 0; j--) {
		const struct pe *a = &adds[j - 1];
		size_t lo = pe_lower(ps->e, 0, r, a);

		memmove(&ps->e[w - (r - lo)], &ps->e[lo], (r - lo) * sizeof(*ps->e));
		w -= r - lo;
		ps->e[--w] = *a;
		ps->cnt[a->plen]++;
		r = lo;
	}
	ps->n = n + nadd;
	return 0;
}
