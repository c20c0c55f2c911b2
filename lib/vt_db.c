/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_db.c - the listing store and the incremental compiler of the verdict
 * table.
 *
 * Store (compact, no allocation per entry):
 *   IPv4 /24../32  a directory of 2^24 u32 (one per /24) pointing at a chunk
 *                  of a single pool of 12-byte entries; chunks come in
 *                  power-of-two size classes with free lists.  O(1) to find
 *                  the entries of a /24, which is what compiling a /24 needs.
 *   IPv4 /0../23   and all IPv6: sorted arrays of 28-byte entries (few of
 *                  them), changed in batches in place: k binary searches
 *                  and one memmove per untouched run.  Covering prefixes
 *                  of an address are found by one binary search per prefix
 *                  length present.
 *   per source     the /24s it may hold /24../32 entries in, so a replace
 *                  or a dump visits those and not all 2^24.
 * Changes mark /24s dirty (a bitmap plus a list); publish recompiles only
 * those, compares each with the live image and emits group-then-tbl24
 * updates.  Changed IPv6 prefixes are remembered too: publish recompiles
 * the ranges under them (a stack walk over the sorted array) and diffs
 * the result against the live rules at the same keys only, so k IPv6
 * changes cost O(k log n) plus the entries inside the changed prefixes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vt_internal.h"

#define SHORT_BIT 0x80000000u  /* dir: a prefix shorter than /24 may cover */
#define DIR_OFF(d) ((d) & ~SHORT_BIT)
#define PF_EXCL 0x80
#define PF_PLEN(pf) ((pf) & 0x3f)
#define NCLS 24                /* chunk classes: 2^cls slots, slot 0 header */
#define DIRTY_LIST_MAX (1u << 21) /* beyond this many /24s: rescan all */

/* A listing of a /24../32 IPv4 prefix, stored in the /24's chunk. */
struct v4e {
	uint32_t code;
	uint32_t expiry;   /* wall-clock seconds, 0 = never */
	uint16_t source;
	uint8_t host;      /* first address of the prefix, low octet */
	uint8_t pf;        /* plen | PF_EXCL */
};

/* A listing in a sorted store (IPv4 shorter than /24, IPv6). */
struct pe {
	uint8_t addr[16];
	uint32_t code;
	uint32_t expiry;
	uint16_t source;
	uint8_t plen;
	uint8_t excl;
};

struct pstore {
	struct pe *e;
	size_t n, cap;
	uint32_t cnt[129];  /* entries per prefix length */
};

/* A validated, normalized input listing. */
struct rec {
	uint64_t k0, k1;  /* addr as two big-endian integers: fast sorting */
	uint8_t fam, plen, excl, keep;
	uint8_t addr[16];
	uint32_t code;
	uint32_t ttl;
};

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

struct v6dirty {
	uint8_t addr[16];
	uint8_t plen;
};

struct v6dvec {
	struct v6dirty *v;
	size_t n, cap;
};

#define V6_DIRTY_MAX 65536 /* beyond this many changed prefixes: recompile */

struct pending_group {
	uint32_t g;
	uint64_t t_ms;
};

struct vt_db {
	struct vt_policy pol;
	uint16_t sidx[65536];      /* source id -> policy index + 1 */
	struct vt_source_counters cnt[VT_MAX_SOURCES];
	struct vt_source_counters cnt_gone;
	uint64_t now;
	/* IPv4 /24../32 */
	uint32_t *dir;
	struct v4e *pool;
	uint32_t pool_n, pool_cap;
	struct u32vec freel[NCLS];
	/* IPv4 /0../23 and IPv6 */
	struct pstore s4, s6;
	/* expiry */
	uint64_t nexpiring;
	uint32_t next_expiry;      /* no expiry before this (a lower bound) */
	struct u32vec exp24;       /* /24s that may hold expiring entries */
	int exp24_lost;            /* exp24 incomplete: walk everything */
	/* per source id: the /24s it may hold /24../32 entries in (a
	 * superset: deletes leave stale indices, duplicates possible) */
	struct u32vec *src24;
	/* dirty state */
	uint64_t *dirtybits;
	struct u32vec dirty;
	int dirty_all, v6_dirty;
	int thp;                   /* directory and live tbl24 advised THP */
	struct v6dvec v6d;         /* changed IPv6 prefixes since publish */
	int v6d_overflow;
	/* compiled */
	struct vt_image *live;
	struct u32vec ready;
	struct pending_group *pend;
	size_t npend, pendcap;
	uint64_t publishes;
	/* compile scratch */
	struct v4e *scr;
	size_t scrcap;
	uint32_t *codes;
	size_t codescap;
	struct vt_acc *ctb;
	size_t ctbcap;
	struct vt_acc acc[256];
	uint32_t acc_gen[256], paint_gen[256];
	int16_t bestplen[256];
	uint16_t best[256];
	uint32_t gen;
	uint32_t seen_gen[VT_MAX_SOURCES], seen_stamp;
	uint32_t acc_stamp;
};

/* ---------------------------------------------------------------- utils */

/* vec_push - append v; -ENOMEM. */
static int vec_push(struct u32vec *a, uint32_t v)
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

/* grow - make *p hold at least want elements of size sz; -ENOMEM. */
static int grow(void **p, size_t *cap, size_t want, size_t sz)
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

/* src_of - policy source of an id, or NULL. */
static const struct vt_source *src_of(const struct vt_db *db, uint16_t id)
{
	uint16_t i = db->sidx[id];

	return i ? &db->pol.sources[i - 1] : NULL;
}

/* cnt_of - counters of a source id; a scratch slot for ids that just left
 * the policy (their entries are being dropped). */
static struct vt_source_counters *cnt_of(struct vt_db *db, uint16_t id)
{
	uint16_t i = db->sidx[id];

	return i ? &db->cnt[i - 1] : &db->cnt_gone;
}

/* v4_addr - host-order IPv4 address of a prefix. */
static uint32_t v4_addr(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	       (uint32_t)a[2] << 8 | a[3];
}

/* v4_bytes - host-order address into 4 network-order bytes. */
static void v4_bytes(uint8_t *a, uint32_t v)
{
	a[0] = (uint8_t)(v >> 24);
	a[1] = (uint8_t)(v >> 16);
	a[2] = (uint8_t)(v >> 8);
	a[3] = (uint8_t)v;
}

/* mask_bytes - addr masked to plen (16 bytes). */
static void mask_bytes(uint8_t *dst, const uint8_t *src, unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		int bits = (int)plen - (int)i * 8;

		dst[i] = bits >= 8 ? src[i] : bits <= 0 ? 0 :
			 (uint8_t)(src[i] & (0xff << (8 - bits)));
	}
}

/* expiry_of - absolute expiry for a listing of source s. */
static uint32_t expiry_of(const struct vt_db *db, const struct vt_source *s,
			  uint32_t ttl)
{
	uint64_t e;

	if (!s->expire_ttl || ttl == 0)
		return 0;
	e = db->now + ttl;
	return e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

/* ---------------------------------------------------------------- dirty */

/* mark24 - /24 idx needs recompiling. */
static void mark24(struct vt_db *db, uint32_t idx)
{
	uint64_t bit = 1ull << (idx & 63);

	if (db->dirty_all || (db->dirtybits[idx >> 6] & bit))
		return;
	db->dirtybits[idx >> 6] |= bit;
	if (db->dirty.n >= DIRTY_LIST_MAX || vec_push(&db->dirty, idx) < 0)
		db->dirty_all = 1;
}

/* mark_v4_prefix - every /24 a prefix touches. */
static void mark_v4_prefix(struct vt_db *db, uint32_t addr, unsigned plen)
{
	uint32_t first = addr >> 8, n;

	if (plen >= 24) {
		mark24(db, first);
		return;
	}
	n = 1u << (24 - plen);
	if (n > DIRTY_LIST_MAX / 2) {
		db->dirty_all = 1;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		mark24(db, first + i);
}

/* set_short_bits - note that a short prefix may cover these /24s. */
static void set_short_bits(struct vt_db *db, uint32_t addr, unsigned plen)
{
	uint32_t first = addr >> 8, n = 1u << (24 - plen);

	for (uint32_t i = 0; i < n; i++)
		db->dir[first + i] |= SHORT_BIT;
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

/* pool_reserve - room for n one-entry chunks in one step, so a big load
 * does not copy the pool at every doubling (best effort). */
static void pool_reserve(struct vt_db *db, size_t n)
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
	(void)vec_push(&db->freel[cls], off);
}

/* bucket - entries of /24 idx (NULL, 0 when none). */
static struct v4e *bucket(const struct vt_db *db, uint32_t idx, uint32_t *n)
{
	uint32_t off = DIR_OFF(db->dir[idx]);

	if (!off) {
		*n = 0;
		return NULL;
	}
	*n = db->pool[off].code;
	return &db->pool[off + 1];
}

/* bucket_add - append e to /24 idx, growing its chunk; -ENOMEM. */
static int bucket_add(struct vt_db *db, uint32_t idx, const struct v4e *e)
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

/* bucket_del_at - remove entry i of /24 idx (order not kept). */
static void bucket_del_at(struct vt_db *db, uint32_t idx, uint32_t i)
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

/* v4_find - position of r in its bucket, or -1. */
static int v4_find(const struct vt_db *db, uint16_t src, const struct rec *r)
{
	uint32_t n;
	const struct v4e *b = bucket(db, v4_addr(r->addr) >> 8, &n);

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

/* pe_qcmp - pe_cmp for qsort/bsearch. */
static int pe_qcmp(const void *a, const void *b)
{
	return pe_cmp(a, b);
}

/* ps_lower - first index with entry >= key. */
static size_t ps_lower(const struct pstore *ps, const struct pe *key)
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

/* ps_prefix_range - entries with exactly this (addr, plen): [*b, *e). */
static void ps_prefix_range(const struct pstore *ps, const uint8_t *addr,
			    unsigned plen, size_t *b, size_t *e)
{
	struct pe key;
	size_t i;

	memset(&key, 0, sizeof(key));
	mask_bytes(key.addr, addr, plen);
	key.plen = (uint8_t)plen;
	i = ps_lower(ps, &key);
	*b = i;
	while (i < ps->n && ps->e[i].plen == plen &&
	       memcmp(ps->e[i].addr, key.addr, 16) == 0)
		i++;
	*e = i;
}

/* ps_find - index of an identical entry or -1. */
static long ps_find(const struct pstore *ps, const struct pe *k)
{
	size_t i = ps_lower(ps, k);

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

/* ps_apply - delete dels and insert adds (both sorted by pe_cmp) in
 * place: k binary searches, then the untouched runs are moved with one
 * memmove each (deletes close gaps front to back, inserts open them back
 * to front), no per-entry comparison and no new array.  0 or -ENOMEM
 * with the store unchanged. */
static int ps_apply(struct pstore *ps, const struct pe *dels, size_t ndel,
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

/* --------------------------------------------------------- validation */

/* rec_cmp - family, address, plen, exclude, code. */
static int rec_cmp(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;

	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	if (a->k0 != b->k0)
		return a->k0 < b->k0 ? -1 : 1;
	if (a->k1 != b->k1)
		return a->k1 < b->k1 ? -1 : 1;
	if (a->plen != b->plen)
		return a->plen < b->plen ? -1 : 1;
	if (a->excl != b->excl)
		return a->excl < b->excl ? -1 : 1;
	return a->code < b->code ? -1 : a->code > b->code;
}

/* rec_keys - fill the integer sort keys from addr. */
static void rec_keys(struct rec *r)
{
	r->k0 = r->k1 = 0;
	for (int i = 0; i < 8; i++) {
		r->k0 = r->k0 << 8 | r->addr[i];
		r->k1 = r->k1 << 8 | r->addr[8 + i];
	}
}

/* rec_same_prefix - same family, address and plen. */
static int rec_same_prefix(const struct rec *a, const struct rec *b)
{
	return a->fam == b->fam && a->plen == b->plen && a->k0 == b->k0 &&
	       a->k1 == b->k1;
}

/* fmt_prefix - text form of a prefix for messages. */
static const char *fmt_prefix(char *buf, size_t sz, const struct moat_prefix *p)
{
	if (p->family == MOAT_AF_INET)
		snprintf(buf, sz, "%u.%u.%u.%u/%u", p->addr[0], p->addr[1],
			 p->addr[2], p->addr[3], p->plen);
	else {
		size_t o = 0;

		for (int i = 0; i < 16 && o < sz; i += 2)
			o += (size_t)snprintf(buf + o, sz - o, "%s%x",
					      i ? ":" : "",
					      p->addr[i] << 8 | p->addr[i + 1]);
		if (o < sz)
			snprintf(buf + o, sz - o, "/%u", p->plen);
	}
	return buf;
}

/* key16 - the uint64_t at the start of 16-byte item i. */
static uint64_t key16(const unsigned char *base, size_t i)
{
	uint64_t k;

	memcpy(&k, base + i * 16, sizeof(k));
	return k;
}

/* radix16 - stable LSD radix sort of n 16-byte items by the uint64_t they
 * start with: one pass counts all eight bytes, then one scatter pass per
 * byte that varies.  0, or -ENOMEM with the items untouched. */
static int radix16(void *base, size_t n)
{
	unsigned char *src = base, *dst, *tmp;
	size_t (*cnt)[256];

	if (n < 2)
		return 0;
	cnt = calloc(8, sizeof(*cnt));
	dst = malloc(n * 16);
	if (!cnt || !dst) {
		free(cnt);
		free(dst);
		return -ENOMEM;
	}
	tmp = dst;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = key16(src, i);

		for (unsigned b = 0; b < 8; b++)
			cnt[b][(k >> (8 * b)) & 0xff]++;
	}
	for (unsigned b = 0; b < 8; b++) {
		unsigned sh = 8 * b;
		size_t pos = 0;
		unsigned char *t;

		if (cnt[b][(key16(src, 0) >> sh) & 0xff] == n)
			continue; /* this byte is the same everywhere */
		for (int d = 0; d < 256; d++) {
			size_t c = cnt[b][d];

			cnt[b][d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			memcpy(dst + 16 * cnt[b][(key16(src, i) >> sh) & 0xff]++,
			       src + 16 * i, 16);
		t = src;
		src = dst;
		dst = t;
	}
	if (src != base)
		memcpy(base, src, n * 16);
	free(tmp);
	free(cnt);
	return 0;
}

/* A sort key for records: 64 bits that order them, ties broken by
 * rec_cmp (codes, and IPv6 low bits). */
struct sortkey {
	uint64_t k;
	uint64_t i;
};

_Static_assert(sizeof(struct sortkey) == 16 && offsetof(struct sortkey, k) == 0,
	       "radix16 sorts 16-byte items by a leading uint64_t");

/* rec_pk - the primary key: IPv4 by address, plen, exclude; IPv6 after
 * all IPv4, by the top 63 address bits. */
static uint64_t rec_pk(const struct rec *r)
{
	if (r->fam == MOAT_AF_INET)
		return (r->k0 >> 32) << 24 | (uint64_t)r->plen << 16 |
		       (uint64_t)r->excl << 8;
	return 1ull << 63 | r->k0 >> 1;
}

/* sort_recs - LSD radix sort on the primary key (bytes that vary only),
 * then rec_cmp within equal keys; returns the sorted array (r itself, or a
 * new one with r freed); falls back to qsort in place without memory. */
static struct rec *sort_recs(struct rec *r, size_t n)
{
	struct sortkey *a;
	struct rec *out;

	if (n < 4096) {
		if (n > 1)
			qsort(r, n, sizeof(*r), rec_cmp);
		return r;
	}
	a = malloc(n * sizeof(*a));
	out = malloc(n * sizeof(*out));
	if (a)
		for (size_t i = 0; i < n; i++) {
			a[i].k = rec_pk(&r[i]);
			a[i].i = i;
		}
	if (!a || !out || radix16(a, n) < 0) {
		free(a);
		free(out);
		qsort(r, n, sizeof(*r), rec_cmp);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = r[a[i].i];
	free(r);
	for (size_t i = 0; i < n; ) {
		size_t j = i + 1;

		while (j < n && a[j].k == a[i].k)
			j++;
		if (j - i > 1)
			qsort(out + i, j - i, sizeof(*out), rec_cmp);
		i = j;
	}
	free(a);
	return out;
}

/* A compact IPv4 /24../32 record of a big replace: 16 bytes instead of
 * a struct rec, sorted in place by radix (the transient memory of a 10M
 * load matters as much as its speed). */
struct lrec {
	uint64_t key;   /* addr << 32 | plen << 8 | exclude */
	uint32_t code;
	uint32_t idx;   /* index in the input; LREC_KEEP once matched */
};

_Static_assert(sizeof(struct lrec) == 16 && offsetof(struct lrec, key) == 0,
	       "radix16 sorts 16-byte items by a leading uint64_t");

#define LREC_KEEP 0x80000000u
#define LREC_ADDR(k) ((uint32_t)((k) >> 32))
#define LREC_PLEN(k) ((unsigned)(((k) >> 8) & 0xff))
#define LREC_EXCL(k) ((int)((k) & 1))

/* lrec_cmp - key, then code. */
static int lrec_cmp(const void *x, const void *y)
{
	const struct lrec *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->code < b->code ? -1 : a->code > b->code;
}

/* sort_lrecs - radix on key, then codes within equal keys; qsort when
 * there is no memory for the second buffer. */
static void sort_lrecs(struct lrec *a, size_t n)
{
	if (n < 4096 || radix16(a, n) < 0) {
		if (n > 1)
			qsort(a, n, sizeof(*a), lrec_cmp);
		return;
	}
	for (size_t i = 0; i < n; ) {
		size_t j = i + 1;

		while (j < n && a[j].key == a[i].key)
			j++;
		if (j - i > 1)
			qsort(a + i, j - i, sizeof(*a), lrec_cmp);
		i = j;
	}
}

struct counts {
	uint64_t outside, errcode;
};

/* normalize - check listings, drop ignored answers (counted in *ign), and
 * return sorted records without duplicates.  what = "add"/"del"/"entry". */
static int normalize(const struct vt_db *db, const struct vt_source *s,
		     const struct moat_listing *l, size_t n, const char *what,
		     struct rec **out, size_t *nout, struct lrec **lout,
		     size_t *nlout, struct counts *ign, char *err, size_t errsz)
{
	struct rec *r = NULL;
	struct lrec *lr = NULL;
	size_t k = 0, nl = 0, nlong = 0;
	char pb[64], e2[160];

	(void)db;
	*out = NULL;
	*nout = 0;
	if (lout) {
		*lout = NULL;
		*nlout = 0;
		for (size_t i = 0; i < n; i++)
			nlong += l[i].pfx.family == MOAT_AF_INET &&
				 l[i].pfx.plen >= 24;
		if (nlong && !(lr = malloc(nlong * sizeof(*lr)))) {
			VT_ERR(err, errsz, "out of memory for %zu listings", n);
			return -ENOMEM;
		}
	}
	if (n - nlong) {
		r = malloc((n - nlong) * sizeof(*r));
		if (!r) {
			free(lr);
			VT_ERR(err, errsz, "out of memory for %zu listings", n);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct moat_listing *m = &l[i];

		if (m->source != s->id) {
			VT_ERR(err, errsz, "%s %zu: source %u, expected %u (%s)",
			       what, i, m->source, s->id, s->name);
			goto bad;
		}
		if (vt_prefix_check(&m->pfx, e2, sizeof(e2)) < 0) {
			VT_ERR(err, errsz, "%s %zu (%s): %s", what, i,
			       fmt_prefix(pb, sizeof(pb), &m->pfx), e2);
			goto bad;
		}
		if (m->exclude > 1 || m->pad) {
			VT_ERR(err, errsz, "%s %zu (%s): bad exclude flag or padding",
			       what, i, fmt_prefix(pb, sizeof(pb), &m->pfx));
			goto bad;
		}
		if (!m->exclude && s->kind == VT_SRC_STATIC &&
		    m->code != MOAT_ACT_TARPIT && m->code != MOAT_ACT_DROP &&
		    m->code != MOAT_ACT_ALLOW) {
			VT_ERR(err, errsz, "%s %zu (%s): operator action %u is not "
			       "tarpit, drop or allow", what, i,
			       fmt_prefix(pb, sizeof(pb), &m->pfx), m->code);
			goto bad;
		}
		if (!m->exclude && s->kind != VT_SRC_STATIC) {
			enum vt_code_class c = vt_code_classify(s, m->code);

			if (c == VT_CODE_OUTSIDE) {
				ign->outside++;
				continue;
			}
			if (c == VT_CODE_ERROR) {
				ign->errcode++;
				continue;
			}
		}
		if (lr && m->pfx.family == MOAT_AF_INET && m->pfx.plen >= 24) {
			lr[nl].key = (uint64_t)v4_addr(m->pfx.addr) << 32 |
				     (uint64_t)m->pfx.plen << 8 | m->exclude;
			lr[nl].code = m->exclude ? 0 : m->code;
			lr[nl].idx = (uint32_t)i;
			nl++;
			continue;
		}
		r[k].fam = m->pfx.family;
		r[k].keep = 0;
		r[k].plen = m->pfx.plen;
		r[k].excl = m->exclude;
		memcpy(r[k].addr, m->pfx.addr, 16);
		r[k].code = m->exclude ? 0 : m->code;
		r[k].ttl = m->ttl;
		rec_keys(&r[k]);
		k++;
	}
	r = sort_recs(r, k);
	for (size_t i = 1; i < k; i++) {
		struct moat_prefix p = { .family = r[i].fam, .plen = r[i].plen };

		if (!rec_same_prefix(&r[i - 1], &r[i]))
			continue;
		memcpy(p.addr, r[i].addr, 16);
		if (rec_cmp(&r[i - 1], &r[i]) == 0) {
			VT_ERR(err, errsz, "%s: duplicate entry %s code 0x%08x%s",
			       what, fmt_prefix(pb, sizeof(pb), &p), r[i].code,
			       r[i].excl ? " (exclude)" : "");
			goto bad;
		}
		if (rec_same_prefix(&r[i - 1], &r[i]) &&
		    r[i - 1].excl != r[i].excl) {
			VT_ERR(err, errsz, "%s: %s both listed and excluded",
			       what, fmt_prefix(pb, sizeof(pb), &p));
			goto bad;
		}
	}
	sort_lrecs(lr, nl);
	for (size_t i = 1; i < nl; i++) {
		if ((lr[i].key >> 8) != (lr[i - 1].key >> 8))
			continue;
		if (lrec_cmp(&lr[i - 1], &lr[i]) == 0) {
			VT_ERR(err, errsz, "%s: duplicate entry %s code 0x%08x%s",
			       what, fmt_prefix(pb, sizeof(pb), &l[lr[i].idx].pfx),
			       lr[i].code, LREC_EXCL(lr[i].key) ? " (exclude)" : "");
			goto bad;
		}
		if (lr[i].key != lr[i - 1].key) {
			VT_ERR(err, errsz, "%s: %s both listed and excluded", what,
			       fmt_prefix(pb, sizeof(pb), &l[lr[i].idx].pfx));
			goto bad;
		}
	}
	*out = r;
	*nout = k;
	if (lout) {
		*lout = lr;
		*nlout = nl;
	}
	return 0;
bad:
	free(r);
	free(lr);
	return -EINVAL;
}

/* rec_to_pe - a record as a sorted-store entry. */
static void rec_to_pe(const struct rec *r, uint16_t src, uint32_t expiry,
		      struct pe *p)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->addr, r->addr, 16);
	p->plen = r->plen;
	p->source = src;
	p->excl = r->excl;
	p->code = r->code;
	p->expiry = expiry;
}

/* is_long - stored in the /24 directory. */
static int is_long(const struct rec *r)
{
	return r->fam == MOAT_AF_INET && r->plen >= 24;
}

/* store_present - r (of src) is stored now. */
static int store_present(const struct vt_db *db, uint16_t src,
			 const struct rec *r)
{
	struct pe k;

	if (is_long(r))
		return v4_find(db, src, r) >= 0;
	rec_to_pe(r, src, 0, &k);
	return ps_find(r->fam == MOAT_AF_INET ? &db->s4 : &db->s6, &k) >= 0;
}

/* store_has_kind - src stores an entry at r's prefix with exclude == excl
 * that is not among dels. */
static int store_has_kind(const struct vt_db *db, uint16_t src,
			  const struct rec *r, int excl,
			  const struct rec *dels, size_t ndel)
{
	struct rec t = *r;

	t.excl = (uint8_t)excl; /* keys are copied with *r */
	if (is_long(r)) {
		uint32_t n;
		const struct v4e *b = bucket(db, v4_addr(r->addr) >> 8, &n);

		for (uint32_t i = 0; i < n; i++) {
			if (b[i].source != src || b[i].host != r->addr[3] ||
			    PF_PLEN(b[i].pf) != r->plen ||
			    !!(b[i].pf & PF_EXCL) != excl)
				continue;
			t.code = b[i].code;
			if (!(ndel && bsearch(&t, dels, ndel, sizeof(*dels), rec_cmp)))
				return 1;
		}
		return 0;
	}
	const struct pstore *ps = r->fam == MOAT_AF_INET ? &db->s4 : &db->s6;
	size_t b, e;

	ps_prefix_range(ps, r->addr, r->plen, &b, &e);
	for (size_t i = b; i < e; i++) {
		if (ps->e[i].source != src || ps->e[i].excl != excl)
			continue;
		t.code = ps->e[i].code;
		if (!(ndel && bsearch(&t, dels, ndel, sizeof(*dels), rec_cmp)))
			return 1;
	}
	return 0;
}

/* v6_plens_after - distinct IPv6 lengths if src's v6 entries were
 * replaced (replace) or changed by dels/adds. */
static unsigned v6_plens_after(const struct vt_db *db, uint16_t src,
			       int replace, const struct rec *dels, size_t ndel,
			       const struct rec *adds, size_t nadd)
{
	int64_t c[129];
	unsigned k = 0;

	for (int i = 0; i <= 128; i++)
		c[i] = db->s6.cnt[i];
	if (replace) {
		for (size_t i = 0; i < db->s6.n; i++)
			if (db->s6.e[i].source == src)
				c[db->s6.e[i].plen]--;
	}
	for (size_t i = 0; i < ndel; i++)
		if (dels[i].fam == MOAT_AF_INET6)
			c[dels[i].plen]--;
	for (size_t i = 0; i < nadd; i++)
		if (adds[i].fam == MOAT_AF_INET6)
			c[adds[i].plen]++;
	for (int i = 0; i <= 128; i++)
		k += c[i] > 0;
	return k;
}

/* ------------------------------------------------------------- commit */

/* note_expiry - one more expiring entry (in /24 idx, or in a sorted store
 * when idx is UINT32_MAX). */
static void note_expiry(struct vt_db *db, uint32_t idx, uint32_t expiry)
{
	if (!db->nexpiring || expiry < db->next_expiry)
		db->next_expiry = expiry;
	db->nexpiring++;
	if (idx != UINT32_MAX && vec_push(&db->exp24, idx) < 0)
		db->exp24_lost = 1;
}

/* cmp_u32 - qsort order. */
static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

/* src24_has - /24 idx holds an entry of source src. */
static int src24_has(const struct vt_db *db, uint16_t src, uint32_t idx)
{
	uint32_t n;
	const struct v4e *b = bucket(db, idx, &n);

	for (uint32_t i = 0; i < n; i++)
		if (b[i].source == src)
			return 1;
	return 0;
}

/* src24_compact - the source's /24 list sorted, unique, and without the
 * /24s it no longer holds entries in. */
static void src24_compact(struct vt_db *db, uint16_t src)
{
	struct u32vec *l = &db->src24[src];
	size_t o = 0;

	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
	for (size_t i = 0; i < l->n; i++)
		if ((o == 0 || l->v[o - 1] != l->v[i]) &&
		    src24_has(db, src, l->v[i]))
			l->v[o++] = l->v[i];
	l->n = o;
}

/* src24_note - src is about to store an entry in /24 idx: remember the
 * /24 (consecutive adds to one /24, the common case of a sorted load,
 * are noted once; the list is compacted when stale indices dominate). */
static int src24_note(struct vt_db *db, uint16_t src, uint32_t idx)
{
	struct u32vec *l = &db->src24[src];

	if (l->n && l->v[l->n - 1] == idx)
		return 0;
	if (l->n >= 1024 && l->n > 2 * cnt_of(db, src)->entries_v4 + 1024) {
		src24_compact(db, src);
		if (l->n && l->v[l->n - 1] == idx)
			return 0;
	}
	return vec_push(l, idx);
}

/* commit_long_raw - store one /24../32 entry in its bucket, mark dirty. */
static int commit_long_raw(struct vt_db *db, const struct vt_source *s,
			   uint32_t a, unsigned plen, int excl, uint32_t code,
			   uint32_t ttl)
{
	struct v4e e;
	int rc;

	e.code = code;
	e.expiry = expiry_of(db, s, ttl);
	e.source = s->id;
	e.host = (uint8_t)a;
	e.pf = (uint8_t)(plen | (excl ? PF_EXCL : 0));
	rc = src24_note(db, s->id, a >> 8);
	if (rc == 0)
		rc = bucket_add(db, a >> 8, &e);
	if (rc < 0)
		return rc;
	if (e.expiry)
		note_expiry(db, a >> 8, e.expiry);
	cnt_of(db, s->id)->entries_v4++;
	mark24(db, a >> 8);
	return 0;
}

/* commit_long_add - a record into its bucket. */
static int commit_long_add(struct vt_db *db, const struct vt_source *s,
			   const struct rec *r)
{
	return commit_long_raw(db, s, v4_addr(r->addr), r->plen, r->excl,
			       r->code, r->ttl);
}

/* commit_long_del_at - remove entry i of bucket idx, mark dirty. */
static void commit_long_del_at(struct vt_db *db, uint32_t idx, uint32_t i)
{
	uint32_t n;
	struct v4e *b = bucket(db, idx, &n);

	db->nexpiring -= b[i].expiry != 0;
	cnt_of(db, b[i].source)->entries_v4--;
	bucket_del_at(db, idx, i);
	mark24(db, idx);
}

/* mark_pe - dirty what a sorted-store entry touches. */
static void mark_pe(struct vt_db *db, const struct pe *p, int v4)
{
	if (v4) {
		mark_v4_prefix(db, v4_addr(p->addr), p->plen);
		return;
	}
	db->v6_dirty = 1;
	if (db->v6d_overflow)
		return;
	if (db->v6d.n >= V6_DIRTY_MAX ||
	    grow((void **)&db->v6d.v, &db->v6d.cap, db->v6d.n + 1,
		 sizeof(*db->v6d.v)) < 0) {
		db->v6d_overflow = 1;
		return;
	}
	memcpy(db->v6d.v[db->v6d.n].addr, p->addr, 16);
	db->v6d.v[db->v6d.n].plen = p->plen;
	db->v6d.n++;
}

/* ps_commit - apply batches to one sorted store with dirty marking and
 * counters. */
static int ps_commit(struct vt_db *db, struct pstore *ps, int v4,
		     struct pe *dels, size_t ndel, struct pe *adds, size_t nadd)
{
	int rc;

	if (ndel > 1)
		qsort(dels, ndel, sizeof(*dels), pe_qcmp);
	if (nadd > 1)
		qsort(adds, nadd, sizeof(*adds), pe_qcmp);
	for (size_t i = 0; i < ndel; i++) {
		long k = ps_find(ps, &dels[i]);

		if (k >= 0)
			dels[i].expiry = ps->e[k].expiry;
	}
	rc = ps_apply(ps, dels, ndel, adds, nadd);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ndel; i++) {
		struct vt_source_counters *c = cnt_of(db, dels[i].source);

		db->nexpiring -= dels[i].expiry != 0;
		if (v4)
			c->entries_v4--;
		else
			c->entries_v6--;
		mark_pe(db, &dels[i], v4);
	}
	for (size_t i = 0; i < nadd; i++) {
		struct vt_source_counters *c = cnt_of(db, adds[i].source);

		if (adds[i].expiry)
			note_expiry(db, UINT32_MAX, adds[i].expiry);
		if (v4) {
			c->entries_v4++;
			set_short_bits(db, v4_addr(adds[i].addr), adds[i].plen);
		} else {
			c->entries_v6++;
		}
		mark_pe(db, &adds[i], v4);
	}
	return 0;
}

/* split_pe - the sorted-store records of recs as pe arrays per family. */
static int split_pe(const struct vt_db *db, const struct vt_source *s,
		    const struct rec *recs, size_t n, struct pe **p4,
		    size_t *n4, struct pe **p6, size_t *n6)
{
	size_t c4 = 1, c6 = 1;

	for (size_t i = 0; i < n; i++) {
		if (is_long(&recs[i]) || recs[i].keep)
			continue;
		if (recs[i].fam == MOAT_AF_INET)
			c4++;
		else
			c6++;
	}
	*p4 = malloc(c4 * sizeof(**p4));
	*p6 = malloc(c6 * sizeof(**p6));
	*n4 = *n6 = 0;
	if (!*p4 || !*p6) {
		free(*p4);
		free(*p6);
		*p4 = *p6 = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (is_long(&recs[i]) || recs[i].keep)
			continue;
		if (recs[i].fam == MOAT_AF_INET)
			rec_to_pe(&recs[i], s->id, expiry_of(db, s, recs[i].ttl),
				  &(*p4)[(*n4)++]);
		else
			rec_to_pe(&recs[i], s->id, expiry_of(db, s, recs[i].ttl),
				  &(*p6)[(*n6)++]);
	}
	return 0;
}

/* lookup_source - the policy source for an id, or an error. */
static const struct vt_source *lookup_source(const struct vt_db *db,
					     uint16_t source, char *err,
					     size_t errsz)
{
	const struct vt_source *s = src_of(db, source);

	if (!s)
		VT_ERR(err, errsz, "unknown source id %u", source);
	return s;
}

#define THP_LOAD 65536 /* /24../32 entries: a load worth huge pages */

/* big_load - n /24../32 entries are coming: past THP_LOAD, back the
 * directory and the live tbl24 with huge pages (a small table keeps 4 KiB
 * pages: huge ones would make its few random /24s cost 128 MiB). */
static void big_load(struct vt_db *db, size_t n)
{
	if (db->thp || n < THP_LOAD)
		return;
	vt_thp(db->dir, MOAT_TBL24_ENTRIES * sizeof(uint32_t));
	vt_thp(db->live->tbl24, MOAT_TBL24_ENTRIES * sizeof(uint32_t));
	db->thp = 1;
}

/* vt_db_source_apply - validated incremental change of one source. */
int vt_db_source_apply(struct vt_db *db, uint16_t source,
		       const struct moat_listing *add, size_t nadd,
		       const struct moat_listing *del, size_t ndel,
		       char *err, size_t errsz)
{
	const struct vt_source *s = lookup_source(db, source, err, errsz);
	struct rec *ra = NULL, *rd = NULL;
	size_t na = 0, nd = 0, n4d = 0, n6d = 0, n4a = 0, n6a = 0;
	struct pe *p4d = NULL, *p6d = NULL, *p4a = NULL, *p6a = NULL;
	struct counts ign = { 0, 0 }, igd = { 0, 0 };
	char pb[64];
	int rc;

	if (!s)
		return -ENOENT;
	rc = normalize(db, s, add, nadd, "add", &ra, &na, NULL, NULL, &ign, err,
		       errsz);
	if (rc < 0)
		return rc;
	rc = normalize(db, s, del, ndel, "del", &rd, &nd, NULL, NULL, &igd, err,
		       errsz);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	/* dels: each must be stored */
	for (size_t i = 0; i < nd; i++) {
		struct moat_prefix p = { .family = rd[i].fam, .plen = rd[i].plen };

		memcpy(p.addr, rd[i].addr, 16);
		if (!store_present(db, source, &rd[i])) {
			VT_ERR(err, errsz, "del: %s code 0x%08x%s is not listed by %s",
			       fmt_prefix(pb, sizeof(pb), &p), rd[i].code,
			       rd[i].excl ? " (exclude)" : "", s->name);
			goto out;
		}
	}
	for (size_t i = 0; i < na; i++) {
		struct moat_prefix p = { .family = ra[i].fam, .plen = ra[i].plen };

		memcpy(p.addr, ra[i].addr, 16);
		if (store_present(db, source, &ra[i]) &&
		    !(nd && bsearch(&ra[i], rd, nd, sizeof(*rd), rec_cmp))) {
			VT_ERR(err, errsz, "add: %s code 0x%08x%s is already listed "
			       "by %s", fmt_prefix(pb, sizeof(pb), &p), ra[i].code,
			       ra[i].excl ? " (exclude)" : "", s->name);
			goto out;
		}
		if (store_has_kind(db, source, &ra[i], !ra[i].excl, rd, nd)) {
			VT_ERR(err, errsz, "add: %s would be both listed and "
			       "excluded by %s", fmt_prefix(pb, sizeof(pb), &p),
			       s->name);
			goto out;
		}
	}
	if (v6_plens_after(db, source, 0, rd, nd, ra, na) > MOAT_V6_MAX_PLENS) {
		VT_ERR(err, errsz, "more than %d distinct IPv6 prefix lengths",
		       MOAT_V6_MAX_PLENS);
		rc = -E2BIG;
		goto out;
	}
	/* commit */
	rc = split_pe(db, s, rd, nd, &p4d, &n4d, &p6d, &n6d);
	if (rc == 0)
		rc = split_pe(db, s, ra, na, &p4a, &n4a, &p6a, &n6a);
	if (rc < 0) {
		VT_ERR(err, errsz, "out of memory");
		goto out;
	}
	rc = ps_commit(db, &db->s4, 1, p4d, n4d, p4a, n4a);
	if (rc == 0)
		rc = ps_commit(db, &db->s6, 0, p6d, n6d, p6a, n6a);
	if (rc < 0) {
		VT_ERR(err, errsz, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nd; i++) {
		if (!is_long(&rd[i]))
			continue;
		commit_long_del_at(db, v4_addr(rd[i].addr) >> 8,
				   (uint32_t)v4_find(db, source, &rd[i]));
	}
	big_load(db, na);
	for (size_t i = 0; i < na; i++) {
		if (!is_long(&ra[i]))
			continue;
		rc = commit_long_add(db, s, &ra[i]);
		if (rc < 0) {
			VT_ERR(err, errsz, "out of memory in the IPv4 store");
			goto out;
		}
	}
	db->cnt[db->sidx[source] - 1].ignored_outside += ign.outside;
	db->cnt[db->sidx[source] - 1].ignored_errcode += ign.errcode;
	rc = 0;
out:
	free(ra);
	free(rd);
	free(p4d);
	free(p6d);
	free(p4a);
	free(p6a);
	return rc;
}

/* long_find - the new record equal to a stored /24../32 entry, or -1. */
static long long_find(const struct lrec *r, size_t n, const struct v4e *e,
		      uint32_t idx)
{
	struct lrec k;
	size_t lo = 0, hi = n;

	k.key = (uint64_t)(idx << 8 | e->host) << 32 |
		(uint64_t)PF_PLEN(e->pf) << 8 | !!(e->pf & PF_EXCL);
	k.code = e->code;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = lrec_cmp(&r[mid], &k);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ps_replace_source - the sorted-store half of a replace: entries of src not
 * in new[] go, new ones come; unchanged ones keep quiet (not dirty). */
static int ps_replace_source(struct vt_db *db, struct pstore *ps, int v4,
			     uint16_t src, struct pe *nw, size_t nnew)
{
	struct pe *dels = NULL, *adds = NULL;
	size_t nd = 0, na = 0;
	int rc = -ENOMEM;

	if (nnew > 1)
		qsort(nw, nnew, sizeof(*nw), pe_qcmp);
	dels = malloc((ps->n ? ps->n : 1) * sizeof(*dels));
	adds = malloc((nnew ? nnew : 1) * sizeof(*adds));
	if (!dels || !adds)
		goto out;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->e[i].source != src)
			continue;
		if (!(nnew && bsearch(&ps->e[i], nw, nnew, sizeof(*nw), pe_qcmp)))
			dels[nd++] = ps->e[i];
	}
	for (size_t i = 0; i < nnew; i++) {
		long k = ps_find(ps, &nw[i]);

		if (k >= 0) { /* refreshed, same verdict */
			db->nexpiring -= ps->e[k].expiry != 0;
			ps->e[k].expiry = nw[i].expiry;
			if (nw[i].expiry)
				note_expiry(db, UINT32_MAX, nw[i].expiry);
		} else
			adds[na++] = nw[i];
	}
	rc = ps_commit(db, ps, v4, dels, nd, adds, na);
out:
	free(dels);
	free(adds);
	return rc;
}

/* vt_db_source_replace - all listings of a source become l[]. */
int vt_db_source_replace(struct vt_db *db, uint16_t source,
			 const struct moat_listing *l, size_t n,
			 char *err, size_t errsz)
{
	const struct vt_source *s = lookup_source(db, source, err, errsz);
	struct rec *r = NULL;
	struct lrec *lr = NULL;
	size_t nr = 0, nl = 0, n4 = 0, n6 = 0;
	struct pe *p4 = NULL, *p6 = NULL;
	struct counts ign = { 0, 0 };
	struct vt_source_counters *c;
	int rc;

	if (!s)
		return -ENOENT;
	c = &db->cnt[db->sidx[source] - 1];
	rc = normalize(db, s, l, n, "entry", &r, &nr, &lr, &nl, &ign, err,
		       errsz);
	if (rc < 0)
		return rc;
	if (v6_plens_after(db, source, 1, NULL, 0, r, nr) > MOAT_V6_MAX_PLENS) {
		VT_ERR(err, errsz, "more than %d distinct IPv6 prefix lengths",
		       MOAT_V6_MAX_PLENS);
		rc = -E2BIG;
		goto out;
	}
	/* IPv4 /24../32: visit the /24s the source may hold entries in */
	if (c->entries_v4) {
		src24_compact(db, source);
		for (size_t v = 0; v < db->src24[source].n; v++) {
			uint32_t bn, idx = db->src24[source].v[v];
			struct v4e *b;

			b = bucket(db, idx, &bn);
			for (uint32_t i = 0; i < bn; ) {
				long k;

				if (b[i].source != source) {
					i++;
					continue;
				}
				k = long_find(lr, nl, &b[i], idx);
				if (k >= 0) {
					uint32_t ex = s->expire_ttl ? expiry_of(db, s,
						l[lr[k].idx & ~LREC_KEEP].ttl) : 0;

					db->nexpiring -= b[i].expiry != 0;
					if (ex)
						note_expiry(db, idx, ex);
					b[i].expiry = ex;
					lr[k].idx |= LREC_KEEP;
					i++;
					continue;
				}
				commit_long_del_at(db, idx, i);
				b = bucket(db, idx, &bn);
			}
		}
	}
	big_load(db, nl);
	rc = split_pe(db, s, r, nr, &p4, &n4, &p6, &n6);
	if (rc == 0)
		rc = ps_replace_source(db, &db->s4, 1, source, p4, n4);
	if (rc == 0)
		rc = ps_replace_source(db, &db->s6, 0, source, p6, n6);
	if (rc == 0)
		pool_reserve(db, nl);
	for (size_t i = 0; rc == 0 && i < nl; i++)
		if (!(lr[i].idx & LREC_KEEP))
			rc = commit_long_raw(db, s, LREC_ADDR(lr[i].key),
					     LREC_PLEN(lr[i].key),
					     LREC_EXCL(lr[i].key), lr[i].code,
					     /* a random read: only when used */
					     s->expire_ttl ? l[lr[i].idx].ttl : 0);
	if (rc < 0) {
		VT_ERR(err, errsz, "out of memory replacing source %s", s->name);
		goto out;
	}
	c->ignored_outside += ign.outside;
	c->ignored_errcode += ign.errcode;
out:
	free(r);
	free(lr);
	free(p4);
	free(p6);
	return rc;
}

/* drop_where - remove stored entries matching pred (expiry, unknown
 * source); returns how many. */
static size_t drop_where(struct vt_db *db,
			 int (*pred)(const struct vt_db *, uint16_t, uint32_t),
			 const uint32_t *only, size_t nonly)
{
	size_t dropped = 0;
	size_t nvisit = only ? nonly : MOAT_TBL24_ENTRIES;

	for (size_t v = 0; v < nvisit; v++) {
		uint32_t idx = only ? only[v] : (uint32_t)v;
		uint32_t bn;
		struct v4e *b;

		if (!DIR_OFF(db->dir[idx]))
			continue;
		b = bucket(db, idx, &bn);
		for (uint32_t i = 0; i < bn; ) {
			if (!pred(db, b[i].source, b[i].expiry)) {
				i++;
				continue;
			}
			cnt_of(db, b[i].source)->expired++;
			commit_long_del_at(db, idx, i);
			dropped++;
			b = bucket(db, idx, &bn);
		}
	}
	for (int v4 = 0; v4 < 2; v4++) {
		struct pstore *ps = v4 ? &db->s4 : &db->s6;
		size_t o = 0;

		for (size_t i = 0; i < ps->n; i++) {
			struct pe *p = &ps->e[i];

			if (!pred(db, p->source, p->expiry)) {
				ps->e[o++] = *p;
				continue;
			}
			{
				struct vt_source_counters *c =
					cnt_of(db, p->source);

				c->expired++;
				if (v4)
					c->entries_v4--;
				else
					c->entries_v6--;
			}
			db->nexpiring -= p->expiry != 0;
			ps->cnt[p->plen]--;
			mark_pe(db, p, v4);
			dropped++;
		}
		ps->n = o;
	}
	return dropped;
}

/* pred_expired - expiry passed. */
static int pred_expired(const struct vt_db *db, uint16_t src, uint32_t ex)
{
	(void)src;
	return ex != 0 && ex <= db->now;
}


/* vt_db_expire - drop listings whose time has come: only the /24s that
 * got expiring entries are visited, and nothing before the earliest
 * expiry. */
size_t vt_db_expire(struct vt_db *db, uint64_t now)
{
	struct u32vec *x = &db->exp24;
	size_t dropped, k = 0;
	uint32_t next = UINT32_MAX;

	db->now = now;
	if (!db->nexpiring || now < db->next_expiry)
		return 0;
	if (db->exp24_lost) {
		/* rebuild the list while walking everything once */
		x->n = 0;
		dropped = drop_where(db, pred_expired, NULL, 0);
		db->exp24_lost = 0;
		for (uint32_t idx = 0; idx < MOAT_TBL24_ENTRIES; idx++) {
			uint32_t bn;
			const struct v4e *b = bucket(db, idx, &bn);

			for (uint32_t j = 0; j < bn; j++)
				if (b[j].expiry) {
					if (vec_push(x, idx) < 0)
						db->exp24_lost = 1;
					break;
				}
		}
	} else {
		if (x->n > 1)
			qsort(x->v, x->n, sizeof(*x->v), cmp_u32);
		for (size_t i = 0; i < x->n; i++)
			if (i == 0 || x->v[i] != x->v[i - 1])
				x->v[k++] = x->v[i];
		x->n = k;
		dropped = drop_where(db, pred_expired, x->v, x->n);
	}
	/* keep the /24s that still hold expiring entries; new lower bound */
	k = 0;
	for (size_t i = 0; i < x->n; i++) {
		uint32_t bn, keep = 0;
		const struct v4e *b = bucket(db, x->v[i], &bn);

		for (uint32_t j = 0; j < bn; j++) {
			if (b[j].expiry) {
				keep = 1;
				if (b[j].expiry < next)
					next = b[j].expiry;
			}
		}
		if (keep)
			x->v[k++] = x->v[i];
	}
	x->n = k;
	for (int v4 = 0; v4 < 2; v4++) {
		const struct pstore *ps = v4 ? &db->s4 : &db->s6;

		for (size_t i = 0; i < ps->n; i++)
			if (ps->e[i].expiry && ps->e[i].expiry < next)
				next = ps->e[i].expiry;
	}
	db->next_expiry = next;
	return dropped;
}

/* vt_db_set_time - the clock for new expiring listings. */
void vt_db_set_time(struct vt_db *db, uint64_t now)
{
	db->now = now;
}

/* ------------------------------------------------------------ compile */

/* v4e_cmp - bucket scratch order: source, host, plen, exclude, code. */
static int v4e_cmp(const void *x, const void *y)
{
	const struct v4e *a = x, *b = y;

	if (a->source != b->source)
		return a->source < b->source ? -1 : 1;
	if (a->host != b->host)
		return a->host < b->host ? -1 : 1;
	if (PF_PLEN(a->pf) != PF_PLEN(b->pf))
		return PF_PLEN(a->pf) < PF_PLEN(b->pf) ? -1 : 1;
	if (a->pf != b->pf)
		return a->pf < b->pf ? -1 : 1;
	return a->code < b->code ? -1 : a->code > b->code;
}

/* acc_add / acc_sub - accumulate one source's contribution. */
static void acc_add(struct vt_acc *a, const struct vt_acc *b)
{
	a->score += b->score;
	a->nallow += b->nallow;
	a->ndrop += b->ndrop;
	a->ntarpit += b->ntarpit;
}

/* acc_sub - take one source's contribution back out. */
static void acc_sub(struct vt_acc *a, const struct vt_acc *b)
{
	a->score -= b->score;
	a->nallow -= b->nallow;
	a->ndrop -= b->ndrop;
	a->ntarpit -= b->ntarpit;
}

/* ensure_codes - scratch for n codes. */
static int ensure_codes(struct vt_db *db, size_t n)
{
	return grow((void **)&db->codes, &db->codescap, n, sizeof(uint32_t));
}

/* What one source says about a whole /24 through shorter prefixes. */
struct short_src {
	uint16_t source;
	struct vt_acc c;
};

/* short_cover - per source, what the prefixes shorter than /24 covering
 * /24 idx say (the longest of each source decides): out[0..*nout);
 * *found when any covers.  0 or -ENOMEM. */

static int short_cover(struct vt_db *db, uint32_t idx, struct short_src *out,
		       uint32_t *nout, int *found)
{
	uint8_t a[16] = { 0 };
	uint32_t n = 0;

	*found = 0;
	v4_bytes(a, idx << 8);
	db->seen_stamp++;
	/* longest first, so the first hit per source decides */
	for (int p = 23; p >= 0; p--) {
		size_t b, e;

		if (!db->s4.cnt[p])
			continue;
		ps_prefix_range(&db->s4, a, (unsigned)p, &b, &e);
		if (b < e)
			*found = 1;
		while (b < e) {
			const struct pe *q = &db->s4.e[b];
			uint16_t si = db->sidx[q->source] - 1;
			size_t j = b, nc = 0;
			int excl = 0;

			while (j < e && db->s4.e[j].source == q->source)
				j++;
			if (db->seen_gen[si] != db->seen_stamp) {
				db->seen_gen[si] = db->seen_stamp;
				if (ensure_codes(db, j - b) < 0)
					return -ENOMEM;
				for (size_t t = b; t < j; t++) {
					excl |= db->s4.e[t].excl;
					db->codes[nc++] = db->s4.e[t].code;
				}
				memset(&out[n].c, 0, sizeof(out[n].c));
				out[n].source = q->source;
				if (!excl)
					vt_source_contrib(&db->pol.sources[si],
							  db->codes, nc, &out[n].c);
				n++;
			}
			b = j;
		}
	}
	*nout = n;
	return 0;
}

/* compile24 - the verdicts of /24 idx from the store: 1 with *g filled
 * when they differ inside the /24, else 0 with the uniform *act. */
static int compile24(struct vt_db *db, uint32_t idx, struct moat_group *g,
		     uint32_t *act)
{
	struct short_src ss[VT_MAX_SOURCES];
	uint32_t nss = 0, bn, base_act, touched[256], ntouch = 0;
	uint32_t painted[256];
	struct vt_acc base = { 0, 0, 0, 0 };
	const struct v4e *b;
	int found = 0, uniform = 1;

	if (db->dir[idx] & SHORT_BIT) {
		if (short_cover(db, idx, ss, &nss, &found) < 0)
			return -ENOMEM;
		if (!found)
			db->dir[idx] &= ~SHORT_BIT; /* stale hint */
		for (uint32_t i = 0; i < nss; i++)
			acc_add(&base, &ss[i].c);
	}
	base_act = vt_decide(&db->pol, &base);
	b = bucket(db, idx, &bn);
	if (bn == 0) {
		*act = base_act;
		return 0;
	}
	if (grow((void **)&db->scr, &db->scrcap, bn, sizeof(*db->scr)) < 0 ||
	    grow((void **)&db->ctb, &db->ctbcap, bn, sizeof(*db->ctb)) < 0 ||
	    ensure_codes(db, bn) < 0)
		return -ENOMEM;
	memcpy(db->scr, b, bn * sizeof(*b));
	if (bn > 1)
		qsort(db->scr, bn, sizeof(*db->scr), v4e_cmp);
	db->acc_stamp++;
	for (uint32_t i = 0; i < bn; ) {
		uint16_t src = db->scr[i].source;
		const struct vt_source *s = src_of(db, src);
		struct vt_acc sc = { 0, 0, 0, 0 };
		uint32_t j = i, nd = 0, npaint = 0;

		for (uint32_t k = 0; k < nss; k++)
			if (ss[k].source == src)
				sc = ss[k].c;
		db->gen++; /* painting generation of this source */
		while (j < bn && db->scr[j].source == src) {
			/* one distinct prefix: scr[j..k) */
			uint32_t k = j, nc = 0, host = db->scr[j].host;
			unsigned plen = PF_PLEN(db->scr[j].pf), span;
			int excl = 0;

			while (k < bn && db->scr[k].source == src &&
			       db->scr[k].host == host &&
			       PF_PLEN(db->scr[k].pf) == plen) {
				excl |= !!(db->scr[k].pf & PF_EXCL);
				db->codes[nc++] = db->scr[k].code;
				k++;
			}
			memset(&db->ctb[nd], 0, sizeof(db->ctb[nd]));
			if (!excl)
				vt_source_contrib(s, db->codes, nc, &db->ctb[nd]);
			span = 1u << (32 - plen);
			for (uint32_t h = host; h < host + span && h < 256; h++) {
				if (db->paint_gen[h] != db->gen) {
					db->paint_gen[h] = db->gen;
					db->bestplen[h] = -1;
					painted[npaint++] = h;
				}
				if (db->bestplen[h] < (int)plen) {
					db->bestplen[h] = (int16_t)plen;
					db->best[h] = (uint16_t)nd;
				}
			}
			nd++;
			j = k;
		}
		/* this source's most specific prefix replaces its short one */
		for (uint32_t t = 0; t < npaint; t++) {
			uint32_t h = painted[t];

			if (db->acc_gen[h] != db->acc_stamp) {
				db->acc_gen[h] = db->acc_stamp;
				db->acc[h] = base;
				touched[ntouch++] = h;
			}
			acc_sub(&db->acc[h], &sc);
			acc_add(&db->acc[h], &db->ctb[db->best[h]]);
		}
		i = j;
	}
	memset(g, (int)(base_act * 0x55u), sizeof(*g));
	for (uint32_t t = 0; t < ntouch; t++) {
		uint32_t h = touched[t];
		uint32_t a = vt_decide(&db->pol, &db->acc[h]);

		moat_group_set(g, (uint8_t)h, a);
		uniform &= a == base_act;
	}
	if (uniform) {
		*act = base_act;
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------- IPv6 */

struct v6frame {
	size_t b, e;        /* entries of this prefix in s6 */
	uint8_t addr[16];
	unsigned plen;
	uint32_t act;
};

/* frame_contains - prefix f contains (addr, plen). */
static int frame_contains(const struct v6frame *f, const uint8_t *addr,
			  unsigned plen)
{
	uint8_t m[16];

	if (f->plen > plen)
		return 0;
	mask_bytes(m, addr, f->plen);
	return memcmp(m, f->addr, 16) == 0;
}

/* contrib_range - fold the sources of entries[b, e) not seen yet into acc,
 * marking them seen (the most specific prefix of a source decides). */
static int contrib_range(struct vt_db *db, const struct pe *es, size_t b,
			 size_t e, struct vt_acc *acc)
{
	while (b < e) {
		uint16_t src = es[b].source;
		uint16_t si = db->sidx[src] - 1;
		size_t j = b, nc = 0;
		int excl = 0;

		while (j < e && es[j].source == src)
			j++;
		if (db->seen_gen[si] != db->seen_stamp) {
			db->seen_gen[si] = db->seen_stamp;
			if (ensure_codes(db, j - b) < 0)
				return -ENOMEM;
			for (size_t t = b; t < j; t++) {
				excl |= es[t].excl;
				db->codes[nc++] = es[t].code;
			}
			if (!excl)
				vt_source_contrib(&db->pol.sources[si], db->codes,
						  nc, acc);
		}
		b = j;
	}
	return 0;
}

/* A growing array of IPv6 rules (or of rule keys: act unused). */
struct rulevec {
	struct vt_v6rule *v;
	size_t n, cap;
};

/* rv_push - append the rule (p's prefix, act). */
static int rv_push(struct rulevec *rv, const struct pe *p, uint32_t act)
{
	struct vt_v6rule *r;

	if (grow((void **)&rv->v, &rv->cap, rv->n + 1, sizeof(*rv->v)) < 0)
		return -ENOMEM;
	r = &rv->v[rv->n++];
	memset(r, 0, sizeof(*r));
	r->key.plen = p->plen;
	memcpy(r->key.addr, p->addr, 16);
	r->act = act;
	return 0;
}

/* v6_frame - evaluate the distinct prefix es[i, j) under the stack, push
 * it, and append its rule to r when emit and its action differs from its
 * parent's.  0 or -ENOMEM. */
static int v6_frame(struct vt_db *db, struct v6frame *st, int *depth,
		    size_t i, size_t j, int emit, struct rulevec *r,
		    struct rulevec *vis)
{
	const struct pe *es = db->s6.e;
	struct vt_acc acc = { 0, 0, 0, 0 };
	uint32_t a, parent;

	db->seen_stamp++;
	if (contrib_range(db, es, i, j, &acc) < 0)
		return -ENOMEM;
	for (int d = *depth - 1; d >= 0; d--)
		if (contrib_range(db, es, st[d].b, st[d].e, &acc) < 0)
			return -ENOMEM;
	a = vt_decide(&db->pol, &acc);
	parent = *depth ? st[*depth - 1].act : MOAT_ACT_PASS;
	if (emit && a != parent && rv_push(r, &es[i], a) < 0)
		return -ENOMEM;
	if (emit && vis && rv_push(vis, &es[i], a) < 0)
		return -ENOMEM;
	if (*depth < 129) {
		st[*depth].b = i;
		st[*depth].e = j;
		memcpy(st[*depth].addr, es[i].addr, 16);
		st[*depth].plen = es[i].plen;
		st[*depth].act = a;
		(*depth)++;
	}
	return 0;
}

/* in_prefix - addr lies inside qa/qp. */
static int in_prefix(const uint8_t *addr, const uint8_t *qa, unsigned qp)
{
	uint8_t m[16];

	mask_bytes(m, addr, qp);
	return memcmp(m, qa, 16) == 0;
}

/* compile_v6_range - append to r the IPv6 rules of the distinct stored
 * prefixes inside qa/qp (qp = 0: all): a rule for each prefix whose action
 * differs from that of its nearest enclosing stored prefix (or from PASS
 * at the top).  The enclosing prefixes of qa/qp seed the stack.  vis (if
 * not NULL) gets every distinct stored prefix inside qa/qp.  Both come out
 * sorted by vt_v6key_cmp (the store's order). */
static int compile_v6_range(struct vt_db *db, const uint8_t *qa, unsigned qp,
			    struct rulevec *r, struct rulevec *vis)
{
	struct v6frame st[130];
	int depth = 0;
	const struct pe *es = db->s6.e;
	struct pe key;
	size_t i;

	for (unsigned p = 0; p < qp; p++) {
		size_t b, e;

		if (!db->s6.cnt[p])
			continue;
		ps_prefix_range(&db->s6, qa, p, &b, &e);
		if (b < e && v6_frame(db, st, &depth, b, e, 0, r, vis) < 0)
			return -ENOMEM;
	}
	memset(&key, 0, sizeof(key));
	memcpy(key.addr, qa, 16);
	key.plen = (uint8_t)qp;
	i = ps_lower(&db->s6, &key);
	while (i < db->s6.n && in_prefix(es[i].addr, qa, qp)) {
		size_t j = i;

		while (j < db->s6.n && es[j].plen == es[i].plen &&
		       memcmp(es[j].addr, es[i].addr, 16) == 0)
			j++;
		while (depth > 0 &&
		       !frame_contains(&st[depth - 1], es[i].addr, es[i].plen))
			depth--;
		if (v6_frame(db, st, &depth, i, j, 1, r, vis) < 0)
			return -ENOMEM;
		i = j;
	}
	return 0;
}

/* v6d_cmp - dirty IPv6 prefixes by address, then length. */
static int v6d_cmp(const void *x, const void *y)
{
	const struct v6dirty *a = x, *b = y;
	int c = memcmp(a->addr, b->addr, 16);

	return c ? c : (a->plen > b->plen) - (a->plen < b->plen);
}

/* rule_qcmp - rules by vt_v6key_cmp. */
static int rule_qcmp(const void *x, const void *y)
{
	return vt_v6key_cmp(&((const struct vt_v6rule *)x)->key,
			    &((const struct vt_v6rule *)y)->key);
}

/* A changed part of the IPv6 rules: inside the ranges recompiled, the
 * live rules (old) and the recompiled ones (nw), both sorted; outside
 * them nothing changed. */
struct v6change {
	struct rulevec old, nw;
	int64_t cnt[129];        /* rules per length after the change */
};

/* compile_v6 - the changed IPv6 rules.  Whole table dirty: every rule,
 * old and new.  Else per disjoint dirty range: the new rules, and as old
 * the live rules at the range's candidate keys (every distinct stored
 * prefix inside it, and the changed prefixes themselves, which covers
 * rules of prefixes deleted since): O(changes + entries inside the
 * ranges) hash probes, independent of the number of IPv6 rules. */
static int compile_v6(struct vt_db *db, struct v6change *ch)
{
	const struct vt_image *live = db->live;
	static const uint8_t zero[16];
	struct v6dirty *d = db->v6d.v;
	struct rulevec cand = { NULL, 0, 0 };
	size_t nraw = db->v6d.n;

	for (int l = 0; l <= 128; l++)
		ch->cnt[l] = live->v6cnt[l];
	if (db->dirty_all || db->v6d_overflow) {
		struct vt_v6rule *o = NULL;

		if (vt_image_v6_sorted(live, &o) < 0)
			goto nomem;
		ch->old.v = o;
		ch->old.n = ch->old.cap = live->nv6;
		if (compile_v6_range(db, zero, 0, &ch->nw, NULL) < 0)
			goto nomem;
		goto count;
	}
	if (nraw > 1)
		qsort(d, nraw, sizeof(*d), v6d_cmp);
	for (size_t i = 0; i < nraw; ) {
		/* d[i] starts a disjoint range; d[i + 1 .. j) lie inside it */
		size_t j = i + 1;

		while (j < nraw && in_prefix(d[j].addr, d[i].addr, d[i].plen) &&
		       d[j].plen >= d[i].plen)
			j++;
		cand.n = 0;
		if (compile_v6_range(db, d[i].addr, d[i].plen, &ch->nw, &cand) < 0)
			goto nomem;
		for (size_t k = i; k < j; k++) {
			struct pe p;

			memset(&p, 0, sizeof(p));
			memcpy(p.addr, d[k].addr, 16);
			p.plen = d[k].plen;
			if (rv_push(&cand, &p, 0) < 0)
				goto nomem;
		}
		if (cand.n > 1)
			qsort(cand.v, cand.n, sizeof(*cand.v), rule_qcmp);
		for (size_t k = 0; k < cand.n; k++) {
			const struct vt_v6rule *r;

			if (k && !vt_v6key_cmp(&cand.v[k].key, &cand.v[k - 1].key))
				continue;
			r = vt_image_v6_find(live, &cand.v[k].key);
			if (!r)
				continue;
			if (grow((void **)&ch->old.v, &ch->old.cap, ch->old.n + 1,
				 sizeof(*ch->old.v)) < 0)
				goto nomem;
			ch->old.v[ch->old.n++] = *r;
		}
		i = j;
	}
count:
	for (size_t k = 0; k < ch->old.n; k++)
		ch->cnt[ch->old.v[k].key.plen]--;
	for (size_t k = 0; k < ch->nw.n; k++)
		ch->cnt[ch->nw.v[k].key.plen]++;
	free(cand.v);
	return 0;
nomem:
	free(cand.v);
	return -ENOMEM;
}

/* ------------------------------------------------------------ publish */

/* release_groups - groups whose grace period is over become reusable. */
static void release_groups(struct vt_db *db, uint64_t t, int all)
{
	size_t o = 0;
	uint32_t grace = db->pol.grace_ms ? db->pol.grace_ms : VT_GRACE_DEFAULT_MS;

	for (size_t i = 0; i < db->npend; i++) {
		if (all || db->pend[i].t_ms + grace <= t) {
			if (vec_push(&db->ready, db->pend[i].g) == 0)
				continue;
		}
		db->pend[o++] = db->pend[i];
	}
	db->npend = o;
}

/* vt_db_grace_done - every reader moved on: freed groups are reusable. */
void vt_db_grace_done(struct vt_db *db)
{
	release_groups(db, 0, 1);
}

/* A publish in progress: updates go out in chunks through emit; each
 * chunk the fast path took is made live at once, so the live image is
 * always exactly what the fast path holds. */
struct pub {
	struct vt_db *db;
	vt_emit_fn emit;
	void *ctx;
	struct moat_update buf[VT_EMIT_CHUNK];
	size_t n;
	struct u32vec freed;     /* groups unlinked by buf */
	struct u32vec taken;     /* ready groups used by buf */
	uint32_t next_new;       /* next never-used group index */
	uint64_t t;
	size_t emitted;
};

/* pub_flush - hand buf to the fast path, then make it live: groups and
 * tbl24 entries, unlinked groups wait for the grace period. */
static int pub_flush(struct pub *pb)
{
	struct vt_db *db = pb->db;
	struct vt_image *live = db->live;
	int rc;

	if (!pb->n)
		return 0;
	if (pb->next_new > live->ghi &&
	    (rc = vt_image_grow_groups(live, pb->next_new)) < 0)
		return rc;
	rc = pb->emit(pb->ctx, pb->buf, pb->n);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < pb->n; i++) {
		const struct moat_update *u = &pb->buf[i];

		if (u->kind == MOAT_UPD_GROUP) {
			live->groups[u->index] = u->u.group;
			if (u->index >= live->ghi)
				live->ghi = u->index + 1;
		} else if (u->kind == MOAT_UPD_TBL24) {
			live->tbl24[u->index] = u->value;
		}
	}
	for (size_t i = 0; i < pb->freed.n; i++) {
		if (grow((void **)&db->pend, &db->pendcap, db->npend + 1,
			 sizeof(*db->pend)) < 0)
			break; /* leaks the index: never reused early */
		db->pend[db->npend].g = pb->freed.v[i];
		db->pend[db->npend].t_ms = pb->t;
		db->npend++;
	}
	pb->emitted += pb->n;
	pb->n = 0;
	pb->freed.n = 0;
	pb->taken.n = 0;
	return 0;
}

/* pub_unwind - a failed publish gives back the groups of the unsent chunk. */
static void pub_unwind(struct pub *pb)
{
	for (size_t i = pb->taken.n; i > 0; i--)
		(void)vec_push(&pb->db->ready, pb->taken.v[i - 1]);
	pb->taken.n = 0;
}

/* publish_one - compare /24 idx with the live image and queue updates;
 * new groups come from the ready list or above the high-water mark. */
static int publish_one(struct pub *pb, uint32_t idx)
{
	struct vt_db *db = pb->db;
	struct moat_group g;
	uint32_t act = 0, old = db->live->tbl24[idx], nv;
	struct moat_update *u;
	int rc;

	if (pb->n + 2 > VT_EMIT_CHUNK && (rc = pub_flush(pb)) < 0)
		return rc;
	rc = compile24(db, idx, &g, &act);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		nv = act;
		if (old == nv)
			return 0;
	} else {
		uint32_t gi;

		if (moat_tbl24_is_group(old) &&
		    moat_tbl24_group(old) < db->live->ghi &&
		    memcmp(&db->live->groups[moat_tbl24_group(old)], &g,
			   sizeof(g)) == 0)
			return 0;
		if (db->ready.n) {
			gi = db->ready.v[--db->ready.n];
			if (vec_push(&pb->taken, gi) < 0) {
				db->ready.n++;
				return -ENOMEM;
			}
		} else if (pb->next_new <= MOAT_GROUP_MAX) {
			gi = pb->next_new++;
		} else {
			return -ENOSPC;
		}
		u = &pb->buf[pb->n++];
		memset(u, 0, sizeof(*u));
		u->kind = MOAT_UPD_GROUP;
		u->index = gi;
		u->u.group = g;
		nv = moat_tbl24_make_group(gi);
	}
	if (moat_tbl24_is_group(old) && vec_push(&pb->freed, moat_tbl24_group(old)) < 0)
		return -ENOMEM;
	u = &pb->buf[pb->n++];
	memset(u, 0, sizeof(*u));
	u->kind = MOAT_UPD_TBL24;
	u->index = idx;
	u->value = nv;
	return 0;
}

/* publish_v6 - the IPv6 part: the changed rules, diffed and emitted in
 * chunks; the live image takes exactly what went out. */
static int publish_v6(struct pub *pb)
{
	struct vt_db *db = pb->db;
	struct v6change ch;
	struct moat_update *ups = NULL;
	size_t nu = 0, cap = 0, sent = 0;
	struct moat_v6_plens pl;
	int rc;

	memset(&ch, 0, sizeof(ch));
	rc = compile_v6(db, &ch);
	if (rc == 0) {
		vt_plens_from_counts(ch.cnt, &pl);
		rc = vt_v6_diff(ch.old.v, ch.old.n, vt_image_plens(db->live),
				ch.nw.v, ch.nw.n, &pl, &ups, &nu, &cap);
	}
	while (rc == 0 && sent < nu) {
		size_t k = nu - sent < VT_EMIT_CHUNK ? nu - sent : VT_EMIT_CHUNK;

		rc = pb->emit(pb->ctx, ups + sent, k);
		if (rc == 0) {
			sent += k;
			pb->emitted += k;
		}
	}
	/* the fast path holds what was sent: so does the live image */
	if (sent) {
		int arc = vt_image_apply(db->live, ups, sent);

		if (rc == 0)
			rc = arc;
	}
	free(ups);
	free(ch.old.v);
	free(ch.nw.v);
	return rc;
}

/* vt_db_publish_cb - recompile what changed, hand the updates over in
 * chunks, keep the live image equal to what was handed over. */
int vt_db_publish_cb(struct vt_db *db, vt_emit_fn emit, void *ctx,
		     size_t *count)
{
	struct pub *pb = malloc(sizeof(*pb)); /* buf needs no zeroing */
	int rc = 0;

	if (count)
		*count = 0;
	if (!pb)
		return -ENOMEM;
	memset(&pb->freed, 0, sizeof(pb->freed));
	memset(&pb->taken, 0, sizeof(pb->taken));
	pb->n = 0;
	pb->emitted = 0;
	pb->db = db;
	pb->emit = emit;
	pb->ctx = ctx;
	pb->t = (uint64_t)moat_clock_ms();
	pb->next_new = db->live->ghi;
	release_groups(db, pb->t, 0);
	if (db->dirty_all) {
		for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES && rc == 0; i++)
			rc = publish_one(pb, i);
	} else {
		for (size_t i = 0; i < db->dirty.n && rc == 0; i++)
			rc = publish_one(pb, db->dirty.v[i]);
	}
	if (rc == 0)
		rc = pub_flush(pb);
	if (rc == 0 && (db->v6_dirty || db->dirty_all))
		rc = publish_v6(pb);
	if (rc < 0) {
		/* what went out is live; everything stays dirty */
		pub_unwind(pb);
		goto out;
	}
	if (db->dirty_all)
		memset(db->dirtybits, 0, (MOAT_TBL24_ENTRIES / 64) * 8);
	else
		for (size_t i = 0; i < db->dirty.n; i++)
			db->dirtybits[db->dirty.v[i] >> 6] = 0;
	db->dirty.n = 0;
	db->dirty_all = 0;
	db->v6_dirty = 0;
	db->v6d.n = 0;
	db->v6d_overflow = 0;
	db->publishes++;
out:
	if (count)
		*count = pb->emitted;
	free(pb->freed.v);
	free(pb->taken.v);
	free(pb);
	return rc;
}

struct collect {
	struct moat_update *u;
	size_t n, cap;
};

/* collect_emit - the array form of publish: append a chunk. */
static int collect_emit(void *ctx, const struct moat_update *u, size_t n)
{
	struct collect *c = ctx;

	if (grow((void **)&c->u, &c->cap, c->n + n, sizeof(*u)) < 0)
		return -ENOMEM;
	memcpy(c->u + c->n, u, n * sizeof(*u));
	c->n += n;
	return 0;
}

/* vt_db_publish - the same, as one malloc'd array. */
int vt_db_publish(struct vt_db *db, struct moat_update **ups, size_t *n)
{
	struct collect c = { NULL, 0, 0 };
	int rc = vt_db_publish_cb(db, collect_emit, &c, NULL);

	*ups = c.u;
	*n = c.n;
	return rc;
}

/* ------------------------------------------------------------ db life */

/* index_policy - source id map for a validated policy. */
static void index_policy(struct vt_db *db)
{
	memset(db->sidx, 0, sizeof(db->sidx));
	for (uint32_t i = 0; i < db->pol.nsources; i++)
		db->sidx[db->pol.sources[i].id] = (uint16_t)(i + 1);
}

/* vt_db_new - empty db with a validated copy of the policy. */
struct vt_db *vt_db_new(const struct vt_policy *p, char *err, size_t errsz)
{
	struct vt_db *db;

	if (vt_policy_validate(p, err, errsz) < 0)
		return NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		goto nomem;
	db->pol = *p;
	index_policy(db);
	db->now = (uint64_t)time(NULL);
	db->dir = calloc(MOAT_TBL24_ENTRIES, sizeof(uint32_t));
	db->dirtybits = calloc(MOAT_TBL24_ENTRIES / 64, sizeof(uint64_t));
	db->src24 = calloc(65536, sizeof(*db->src24));
	db->live = vt_image_new();
	db->pool_cap = 1024;
	db->pool = malloc(db->pool_cap * sizeof(*db->pool));
	if (!db->dir || !db->dirtybits || !db->src24 || !db->live || !db->pool)
		goto nomem;
	db->pool_n = 1; /* offset 0 means "no chunk" */
	return db;
nomem:
	VT_ERR(err, errsz, "out of memory");
	vt_db_free(db);
	return NULL;
}

/* vt_db_free - release everything. */
void vt_db_free(struct vt_db *db)
{
	if (!db)
		return;
	free(db->dir);
	free(db->pool);
	for (int i = 0; i < NCLS; i++)
		free(db->freel[i].v);
	free(db->s4.e);
	free(db->s6.e);
	free(db->dirtybits);
	if (db->src24)
		for (uint32_t i = 0; i < 65536; i++)
			free(db->src24[i].v);
	free(db->src24);
	free(db->dirty.v);
	free(db->v6d.v);
	free(db->exp24.v);
	vt_image_free(db->live);
	free(db->ready.v);
	free(db->pend);
	free(db->scr);
	free(db->codes);
	free(db->ctb);
	free(db);
}

/* pred_unknown - the entry's source left the policy. */
static int pred_unknown(const struct vt_db *db, uint16_t src, uint32_t ex)
{
	(void)ex;
	return db->sidx[src] == 0;
}

/* vt_db_set_policy - new policy; listings of vanished sources go. */
int vt_db_set_policy(struct vt_db *db, const struct vt_policy *p,
		     char *err, size_t errsz)
{
	struct vt_source_counters old[VT_MAX_SOURCES];
	uint16_t prev_ids[VT_MAX_SOURCES];
	uint32_t nprev = db->pol.nsources;
	int rc = vt_policy_validate(p, err, errsz);

	if (rc < 0)
		return rc;
	for (uint32_t j = 0; j < nprev; j++)
		prev_ids[j] = db->pol.sources[j].id;
	memcpy(old, db->cnt, sizeof(old));
	memset(db->cnt, 0, sizeof(db->cnt));
	for (uint32_t i = 0; i < p->nsources; i++)
		for (uint32_t j = 0; j < nprev; j++)
			if (prev_ids[j] == p->sources[i].id)
				db->cnt[i] = old[j];
	db->pol = *p;
	index_policy(db);
	drop_where(db, pred_unknown, NULL, 0);
	db->dirty_all = 1;
	db->v6_dirty = 1;
	return 0;
}

/* vt_db_image - the live image. */
const struct vt_image *vt_db_image(const struct vt_db *db)
{
	return db->live;
}

/* vt_db_full_image - the live image as updates for an empty fast path. */
int vt_db_full_image(const struct vt_db *db, struct moat_update **ups,
		     size_t *n)
{
	return vt_image_full(db->live, ups, n);
}

/* image_share - img's groups become store[0..cap) when store already
 * holds every group img's tbl24 references (nothing is written to store:
 * a reader may be using it); -EINVAL when it does not. */
static int image_share(struct vt_image *img, struct moat_group *store,
		       uint32_t cap)
{
	if (img->ghi > cap)
		return -ENOSPC;
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		uint32_t e = img->tbl24[i], g = moat_tbl24_group(e);

		if (moat_tbl24_is_group(e) && g < img->ghi &&
		    memcmp(&store[g], &img->groups[g], sizeof(*store)) != 0)
			return -EINVAL;
	}
	if (!img->gext)
		free(img->groups);
	img->groups = store;
	img->gcap = cap;
	img->gext = 1;
	return 0;
}

/* vt_db_share_groups - keep the live image's groups in the fast path's
 * own (mapped) group array instead of a copy: publish writes each group
 * there through the fast path first, and the live image must equal it. */
int vt_db_share_groups(struct vt_db *db, struct moat_group *store,
		       uint32_t cap)
{
	if (db->live->gext)
		return -EALREADY;
	return image_share(db->live, store, cap);
}

/* image_share_tbl24 - img's tbl24 becomes tbl when tbl holds the same
 * entries (nothing is written to it); -EINVAL when not. */
static int image_share_tbl24(struct vt_image *img, uint32_t *tbl)
{
	if (memcmp(tbl, img->tbl24, MOAT_TBL24_ENTRIES * sizeof(*tbl)) != 0)
		return -EINVAL;
	if (!img->text)
		free(img->tbl24);
	img->tbl24 = tbl;
	img->text = 1;
	return 0;
}

/* vt_db_share_tbl24 - the same for tbl24 (the fast path's mmap'd one). */
int vt_db_share_tbl24(struct vt_db *db, uint32_t *tbl)
{
	if (db->live->text)
		return -EALREADY;
	return image_share_tbl24(db->live, tbl);
}

/* vt_db_unshare - back to private copies (before the stores go). */
int vt_db_unshare(struct vt_db *db)
{
	struct vt_image *live = db->live;

	if (live->gext) {
		struct moat_group *g = malloc((live->ghi ? live->ghi : 1) * sizeof(*g));

		if (!g)
			return -ENOMEM;
		memcpy(g, live->groups, (size_t)live->ghi * sizeof(*g));
		live->groups = g;
		live->gcap = live->ghi;
		live->gext = 0;
	}
	if (live->text) {
		uint32_t *t = malloc(MOAT_TBL24_ENTRIES * sizeof(*t));

		if (!t)
			return -ENOMEM;
		memcpy(t, live->tbl24, MOAT_TBL24_ENTRIES * sizeof(*t));
		live->tbl24 = t;
		live->text = 0;
	}
	return 0;
}

/* vt_db_adopt - diff the next publish against img. */
int vt_db_adopt(struct vt_db *db, const struct vt_image *img)
{
	struct vt_image *c = vt_image_clone(img);
	uint8_t *used;

	if (!c)
		return -ENOMEM;
	/* a shared live image stays shared when img is what the store holds
	 * (a resync reads img from it); otherwise c keeps its own copy */
	if (db->live->gext)
		(void)image_share(c, db->live->groups, db->live->gcap);
	if (db->live->text)
		(void)image_share_tbl24(c, db->live->tbl24);
	used = calloc(c->ghi ? c->ghi : 1, 1);
	if (!used) {
		vt_image_free(c);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (moat_tbl24_is_group(c->tbl24[i]) &&
		    moat_tbl24_group(c->tbl24[i]) < c->ghi)
			used[moat_tbl24_group(c->tbl24[i])] = 1;
	vt_image_free(db->live);
	db->live = c;
	db->thp = 0;
	db->ready.n = 0;
	db->npend = 0;
	/* unreferenced groups of the adopted image: reusable after grace */
	for (uint32_t g = 0; g < c->ghi; g++) {
		if (used[g])
			continue;
		if (grow((void **)&db->pend, &db->pendcap, db->npend + 1,
			 sizeof(*db->pend)) < 0)
			break;
		db->pend[db->npend].g = g;
		db->pend[db->npend].t_ms = (uint64_t)moat_clock_ms();
		db->npend++;
	}
	free(used);
	db->dirty_all = 1;
	db->v6_dirty = 1;
	return 0;
}

/* vt_lookup_v4 - live image, IPv4. */
uint32_t vt_lookup_v4(const struct vt_db *db, uint32_t addr_host)
{
	return vt_image_lookup_v4(db->live, addr_host);
}

/* vt_lookup_v6 - live image, IPv6. */
uint32_t vt_lookup_v6(const struct vt_db *db, const uint8_t addr[16])
{
	return vt_image_lookup_v6(db->live, addr);
}

/* ------------------------------------------------------------ explain */

/* A listing covering the explained address. */
struct hit {
	uint16_t source;
	uint8_t plen, excl;
	uint8_t addr[16];
	uint32_t code;
};

/* add_hit - append (bounded). */
static void add_hit(struct hit *h, size_t *n, size_t max, uint16_t src,
		    unsigned plen, int excl, const uint8_t *addr, uint32_t code)
{
	if (*n >= max)
		return;
	h[*n].source = src;
	h[*n].plen = (uint8_t)plen;
	h[*n].excl = (uint8_t)excl;
	memcpy(h[*n].addr, addr, 16);
	h[*n].code = code;
	(*n)++;
}

#define EXPLAIN_HITS 4096

/* ps_hits - entries of a sorted store whose prefix (length <= maxlen)
 * contains address a. */
static void ps_hits(const struct pstore *ps, const uint8_t *a, unsigned maxlen,
		    struct hit *h, size_t *nh)
{
	for (unsigned p = 0; p <= maxlen; p++) {
		size_t lo, hi;

		if (!ps->cnt[p])
			continue;
		ps_prefix_range(ps, a, p, &lo, &hi);
		for (size_t i = lo; i < hi; i++)
			add_hit(h, nh, EXPLAIN_HITS, ps->e[i].source, p,
				ps->e[i].excl, ps->e[i].addr, ps->e[i].code);
	}
}

/* vt_db_explain - action and the listings that made it. */
int vt_db_explain(const struct vt_db *db, const struct moat_prefix *addr,
		  struct vt_explain *out)
{
	struct hit *h;
	size_t nh = 0;
	uint8_t a[16] = { 0 };
	struct vt_acc acc = { 0, 0, 0, 0 };

	memset(out, 0, sizeof(*out));
	if (addr->family != MOAT_AF_INET && addr->family != MOAT_AF_INET6)
		return -EINVAL;
	h = malloc(EXPLAIN_HITS * sizeof(*h)); /* only written ones are read */
	if (!h)
		return -ENOMEM;
	memcpy(a, addr->addr, addr->family == MOAT_AF_INET ? 4 : 16);
	if (addr->family == MOAT_AF_INET) {
		uint32_t v = v4_addr(a), bn;
		const struct v4e *b = bucket(db, v >> 8, &bn);

		for (uint32_t i = 0; i < bn; i++) {
			unsigned pl = PF_PLEN(b[i].pf);
			uint8_t pa[16] = { 0 };

			if ((v & 0xff) >> (32 - pl) != (uint32_t)b[i].host >> (32 - pl))
				continue;
			v4_bytes(pa, (v & ~0xffu) | b[i].host);
			add_hit(h, &nh, EXPLAIN_HITS, b[i].source, pl,
				!!(b[i].pf & PF_EXCL), pa, b[i].code);
		}
		ps_hits(&db->s4, a, 23, h, &nh);
		out->live_action = vt_lookup_v4(db, v);
	} else {
		ps_hits(&db->s6, a, 128, h, &nh);
		out->live_action = vt_lookup_v6(db, a);
	}
	/* per source: the longest prefix decides */
	for (uint32_t si = 0; si < db->pol.nsources; si++) {
		const struct vt_source *s = &db->pol.sources[si];
		int best = -1, excl = 0;
		uint32_t codes[64];
		size_t nc = 0;

		for (size_t i = 0; i < nh; i++)
			if (h[i].source == s->id && h[i].plen > best)
				best = h[i].plen;
		if (best < 0)
			continue;
		for (size_t i = 0; i < nh; i++)
			if (h[i].source == s->id && h[i].plen == best)
				excl |= h[i].excl;
		for (size_t i = 0; i < nh; i++) {
			struct vt_explain_item *it;

			if (h[i].source != s->id || h[i].plen != best)
				continue;
			if (!excl && nc < 64)
				codes[nc++] = h[i].code;
			if (out->n >= VT_EXPLAIN_MAX) {
				out->truncated = 1;
				continue;
			}
			it = &out->items[out->n++];
			it->source = s->id;
			it->pfx.family = addr->family;
			it->pfx.plen = h[i].plen;
			memcpy(it->pfx.addr, h[i].addr, 16);
			it->code = h[i].code;
			it->exclude = h[i].excl;
			it->weight = excl ? 0 :
				vt_code_weight(s, h[i].code, codes, nc - 1);
			if (excl)
				break;
		}
		if (!excl)
			vt_source_contrib(s, codes, nc, &acc);
	}
	out->score = acc.score;
	out->action = vt_decide(&db->pol, &acc);
	free(h);
	return 0;
}

/* ------------------------------------------------------------- dump */

/* dump_one - append one stored listing to the dump. */
static int dump_one(const struct vt_db *db, struct moat_listing **out,
		    size_t *n, size_t *cap, int fam, const uint8_t *addr,
		    unsigned plen, uint32_t code, uint32_t expiry, uint16_t src,
		    int excl)
{
	struct moat_listing *l;

	if (grow((void **)out, cap, *n + 1, sizeof(**out)) < 0)
		return -ENOMEM;
	l = &(*out)[(*n)++];
	memset(l, 0, sizeof(*l));
	l->pfx.family = (uint8_t)fam;
	l->pfx.plen = (uint8_t)plen;
	memcpy(l->pfx.addr, addr, fam == MOAT_AF_INET ? 4 : 16);
	l->code = code;
	l->ttl = expiry == 0 ? 0 : expiry > db->now ?
		 (uint32_t)(expiry - db->now) : 1;
	l->source = src;
	l->exclude = (uint8_t)excl;
	return 0;
}

/* vt_db_source_dump - every stored listing of a source. */
int vt_db_source_dump(const struct vt_db *db, uint16_t source,
		      struct moat_listing **out, size_t *n)
{
	struct moat_listing *o = NULL;
	size_t k = 0, cap = 0;
	uint32_t *l24 = NULL;

	*out = NULL;
	*n = 0;
	if (!db->sidx[source])
		return -ENOENT;
	if (db->cnt[db->sidx[source] - 1].entries_v4) {
		const struct u32vec *sl = &db->src24[source];

		l24 = malloc((sl->n ? sl->n : 1) * sizeof(*l24));
		if (!l24)
			goto nomem;
		/* the /24s the source may hold entries in, ascending */
		memcpy(l24, sl->v, sl->n * sizeof(*l24));
		if (sl->n > 1)
			qsort(l24, sl->n, sizeof(*l24), cmp_u32);
		for (size_t v = 0; v < sl->n; v++) {
			uint32_t bn, idx = l24[v];
			const struct v4e *b;

			if (v && l24[v - 1] == idx)
				continue;
			b = bucket(db, idx, &bn);
			for (uint32_t i = 0; i < bn; i++) {
				uint8_t a[16] = { 0 };

				if (b[i].source != source)
					continue;
				v4_bytes(a, idx << 8 | b[i].host);
				if (dump_one(db, &o, &k, &cap, MOAT_AF_INET, a,
					     PF_PLEN(b[i].pf), b[i].code,
					     b[i].expiry, source,
					     !!(b[i].pf & PF_EXCL)) < 0)
					goto nomem;
			}
		}
	}
	for (int v4 = 1; v4 >= 0; v4--) {
		const struct pstore *ps = v4 ? &db->s4 : &db->s6;

		for (size_t i = 0; i < ps->n; i++) {
			const struct pe *p = &ps->e[i];

			if (p->source != source)
				continue;
			if (dump_one(db, &o, &k, &cap,
				     v4 ? MOAT_AF_INET : MOAT_AF_INET6, p->addr,
				     p->plen, p->code, p->expiry, source,
				     p->excl) < 0)
				goto nomem;
		}
	}
	free(l24);
	*out = o;
	*n = k;
	return 0;
nomem:
	free(l24);
	free(o);
	return -ENOMEM;
}

/* wk_cmp - listing order within one source and family: address, plen,
 * exclude, code */
static int wk_cmp(const uint8_t *a, unsigned ap, unsigned ae, uint32_t ac,
		  const uint8_t *b, unsigned bp, unsigned be, uint32_t bc)
{
	int c = memcmp(a, b, 16);

	if (c)
		return c;
	if (ap != bp)
		return ap < bp ? -1 : 1;
	if (ae != be)
		return ae < be ? -1 : 1;
	return ac < bc ? -1 : ac > bc;
}

/* wk_v4e_cmp - qsort order of one /24's entries (same source) */
static int wk_v4e_cmp(const void *x, const void *y)
{
	const struct v4e *a = x, *b = y;

	if (a->host != b->host)
		return a->host < b->host ? -1 : 1;
	if (PF_PLEN(a->pf) != PF_PLEN(b->pf))
		return PF_PLEN(a->pf) < PF_PLEN(b->pf) ? -1 : 1;
	if ((a->pf & PF_EXCL) != (b->pf & PF_EXCL))
		return (a->pf & PF_EXCL) ? 1 : -1;
	return a->code < b->code ? -1 : a->code > b->code;
}

/* wk_put - one listing to the walk's output */
static void wk_put(const struct vt_db *db, struct moat_listing *l, int fam, const uint8_t *addr,
		   unsigned plen, uint32_t code, uint32_t expiry, uint16_t src, int excl)
{
	memset(l, 0, sizeof(*l));
	l->pfx.family = (uint8_t)fam;
	l->pfx.plen = (uint8_t)plen;
	memcpy(l->pfx.addr, addr, fam == MOAT_AF_INET ? 4 : 16);
	l->code = code;
	l->ttl = expiry == 0 ? 0 : expiry > db->now ? (uint32_t)(expiry - db->now) : 1;
	l->source = src;
	l->exclude = (uint8_t)excl;
}

/* wk_store - entries of src in a sorted store after the walk's last one
 * (*have: one was emitted) and, for IPv4, whose address is at most lim:
 * appended while room; 1 when stopped for room */
static int wk_store(const struct vt_db *db, const struct pstore *ps, uint16_t src, int fam,
		    struct vt_walk_key *last, int *have, uint64_t lim,
		    struct moat_listing *out, size_t cap, size_t *n)
{
	struct pe key;
	size_t i;

	memset(&key, 0, sizeof(key));
	if (*have) {
		memcpy(key.addr, last->addr, 16);
		key.plen = last->plen;
	}
	i = ps_lower(ps, &key);
	for (; i < ps->n; i++) {
		const struct pe *p = &ps->e[i];

		if (fam == MOAT_AF_INET &&
		    ((uint64_t)p->addr[0] << 24 | (uint64_t)p->addr[1] << 16 |
		     (uint64_t)p->addr[2] << 8 | p->addr[3]) > lim)
			break;
		if (p->source != src)
			continue;
		if (*have && wk_cmp(p->addr, p->plen, p->excl, p->code, last->addr,
				    last->plen, last->excl, last->code) <= 0)
			continue;
		if (*n >= cap)
			return 1;
		wk_put(db, &out[(*n)++], fam, p->addr, p->plen, p->code, p->expiry, src, p->excl);
		memcpy(last->addr, p->addr, 16);
		last->plen = p->plen;
		last->excl = p->excl;
		last->code = p->code;
		*have = 1;
	}
	return 0;
}

/* vt_db_source_walk - the stored listings of a source in listing order,
 * a chunk per call (vtable.h) */
int vt_db_source_walk(const struct vt_db *db, uint16_t source, struct vt_walk *w,
		      struct moat_listing *out, size_t cap, size_t *n)
{
	struct v4e *tmp = NULL;
	size_t tcap = 0;
	int rc = 0;

	*n = 0;
	if (!db->sidx[source])
		return -ENOENT;
	while (w->phase == 0) {
		uint32_t idx = w->next24, bn, k = 0;
		const struct v4e *b = NULL;

		/* the next /24 holding entries of the source */
		for (; idx < MOAT_TBL24_ENTRIES; idx++) {
			if (!DIR_OFF(db->dir[idx]))
				continue;
			b = bucket(db, idx, &bn);
			if (bn > tcap) {
				free(tmp);
				tcap = bn < 64 ? 64 : bn;
				if (!(tmp = malloc(tcap * sizeof(*tmp))))
					return -ENOMEM;
			}
			for (uint32_t i = 0; i < bn; i++)
				if (b[i].source == source)
					tmp[k++] = b[i];
			if (k)
				break;
		}
		/* shorter prefixes first: their addresses are at most idx's */
		if (wk_store(db, &db->s4, source, MOAT_AF_INET, &w->last4, &w->have4,
			     idx >= MOAT_TBL24_ENTRIES ? UINT32_MAX : (uint64_t)idx << 8, out,
			     cap, n))
			goto out;
		if (idx >= MOAT_TBL24_ENTRIES) {
			w->phase = 1;
			break;
		}
		if (*n + k > cap) {
			rc = *n ? 0 : -ENOSPC;
			goto out;
		}
		if (k > 1)
			qsort(tmp, k, sizeof(tmp[0]), wk_v4e_cmp);
		for (uint32_t i = 0; i < k; i++) {
			uint8_t a[16] = { 0 };

			v4_bytes(a, idx << 8 | tmp[i].host);
			wk_put(db, &out[(*n)++], MOAT_AF_INET, a, PF_PLEN(tmp[i].pf), tmp[i].code,
			       tmp[i].expiry, source, !!(tmp[i].pf & PF_EXCL));
		}
		w->next24 = idx + 1;
	}
	if (w->phase == 1) {
		if (wk_store(db, &db->s6, source, MOAT_AF_INET6, &w->last6, &w->have6, 0, out, cap,
			     n))
			goto out;
		w->phase = 2;
	}
out:
	free(tmp);
	return rc;
}

/* vt_db_source_ignores - is l an answer the source's policy ignores (not
 * stored by vt_db_source_apply/replace)? */
int vt_db_source_ignores(const struct vt_db *db, uint16_t source, const struct moat_listing *l)
{
	const struct vt_source *s = src_of(db, source);
	enum vt_code_class c;

	if (!s || l->exclude || s->kind == VT_SRC_STATIC)
		return 0;
	c = vt_code_classify(s, l->code);
	return c == VT_CODE_OUTSIDE || c == VT_CODE_ERROR;
}

/* ----------------------------------------------------------- counters */

/* vt_db_source_counters - one source's counters. */
int vt_db_source_counters(const struct vt_db *db, uint16_t source,
			  struct vt_source_counters *out)
{
	if (!db->sidx[source])
		return -ENOENT;
	*out = db->cnt[db->sidx[source] - 1];
	return 0;
}

/* vt_db_stats - store totals. */
void vt_db_stats(const struct vt_db *db, struct vt_db_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < db->pol.nsources; i++)
		st->entries += db->cnt[i].entries_v4 + db->cnt[i].entries_v6;
	st->store_bytes = (uint64_t)MOAT_TBL24_ENTRIES * 4 +
			  (uint64_t)db->pool_cap * sizeof(struct v4e) +
			  (db->s4.cap + db->s6.cap) * sizeof(struct pe);
	st->publishes = db->publishes;
	st->groups_pending = db->npend;
}
