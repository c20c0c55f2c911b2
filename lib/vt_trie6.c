/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_trie6.c - the IPv6 verdict trie's writer (vt_trie6.h; the layout and
 * its publishing argument are in bpf/moat_trie6.h).
 *
 * Beside the reader-visible storage it keeps: every rule in a hash (to
 * find the next longest rule of a node when one is deleted), per node its
 * prefix, depth, counts and the length of each entry's own rule, and the
 * free lists.  A put or delete walks the path of its prefix: at most one
 * root, 14 nodes and a bucket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vt_internal.h" /* vt_grow */
#include "vt_trie6.h"

#define NOPLEN 0xff
#define OWN_NONE 0       /* own lengths: 0 none, else the rule's length + 1 */

struct rule {            /* hash slot; plen NOPLEN = empty */
	__u64 hi, lo;
	uint8_t plen, act;
};

struct shnode {          /* writer's side of a node */
	__u64 hi, lo;     /* the node's prefix (masked to depth) */
	uint8_t depth;       /* bits before its byte: 16..120 */
	uint16_t nrules;     /* rules held in its entries' own bits */
	uint16_t nchild;     /* entries with a node or bucket below */
	uint8_t ownplen[MOAT_V6T_NODE_ENTRIES];   /* OWN_NONE or plen + 1 */
};

struct freelist {
	uint32_t *v;
	size_t n, cap;
};

struct vt_trie6 {
	struct vt_trie6_mem m;
	int owned;
	struct rule *h;      /* rule hash, hcap slots, linear probing */
	size_t hn, hcap;
	unsigned rb;         /* the root's bits, R (16 or 24: moat_trie6.h) */
	uint8_t *root_own;   /* per root entry its own length (OWN_NONE or plen + 1) */
	struct shnode *sh;   /* per node index, shcap */
	size_t shcap;
	uint32_t nhw, bhw;   /* high-water marks */
	uint32_t nused, bused;
	struct freelist nfree, bfree, npend, bpend;
};

/* --- small helpers ------------------------------------------------------- */

static void mask2(__u64 *hi, __u64 *lo, unsigned plen)
{
	*hi &= moat_v6t_mask_hi(plen);
	*lo &= moat_v6t_mask_lo(plen);
}

static void store_entry(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static uint32_t with_own(uint32_t e, int own, uint32_t act)
{
	e &= ~(MOAT_V6T_OWN | 3u << MOAT_V6T_ACT_SHIFT);
	return e | moat_v6t_entry(0, own, act, 0);
}

/* with_child - entry e with what is below it replaced by child word c
 * (kind, skip bits and index; its own bits are ignored) */
static uint32_t with_child(uint32_t e, uint32_t c)
{
	uint32_t ownbits = MOAT_V6T_OWN | 3u << MOAT_V6T_ACT_SHIFT;

	return (e & ownbits) | (c & ~ownbits);
}

/* bucket_skip - the skip bits (moat_trie6.h) of a bucket holding rules
 * r[0, n) below an entry of range depth d (every rule longer than d): a
 * rule of length d + 1 covers two quarters, a longer one one */
static uint32_t bucket_skip(unsigned d, const struct rule *r, unsigned n)
{
	uint32_t covered = 0;

	for (unsigned i = 0; i < n; i++) {
		uint32_t q = moat_v6t_next2(r[i].hi, r[i].lo, d);

		if (r[i].plen <= d)       /* not in a built bucket: no skip */
			covered = 0xf;
		covered |= r[i].plen == d + 1 ? 3u << (q & 2) : 1u << q;
	}
	return (~covered & 0xfu) << MOAT_V6T_SKIP_SHIFT;
}

static int fl_push(struct freelist *f, uint32_t i)
{
	if (vt_grow((void **)&f->v, &f->cap, f->n + 1, sizeof(*f->v)) < 0)
		return -ENOMEM;
	f->v[f->n++] = i;
	return 0;
}

/* --- rule hash ----------------------------------------------------------- */

static size_t rhash(__u64 hi, __u64 lo, unsigned plen, size_t cap)
{
	__u64 x = hi * 0x9e3779b97f4a7c15ULL ^ (lo + plen) * 0xc2b2ae3d27d4eb4fULL;

	x ^= x >> 31;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 29;
	return (size_t)x & (cap - 1);
}

static struct rule *rfind(const struct vt_trie6 *t, __u64 hi, __u64 lo,
			  unsigned plen)
{
	size_t i;

	if (!t->hcap)
		return NULL;
	for (i = rhash(hi, lo, plen, t->hcap);; i = (i + 1) & (t->hcap - 1)) {
		struct rule *r = &t->h[i];

		if (r->plen == NOPLEN)
			return NULL;
		if (r->plen == plen && r->hi == hi && r->lo == lo)
			return r;
	}
}

static void rinsert_new(struct rule *h, size_t cap, const struct rule *r)
{
	size_t i = rhash(r->hi, r->lo, r->plen, cap);

	while (h[i].plen != NOPLEN)
		i = (i + 1) & (cap - 1);
	h[i] = *r;
}

static int rgrow(struct vt_trie6 *t)
{
	size_t cap = t->hcap ? t->hcap * 2 : 1024;
	struct rule *h = malloc(cap * sizeof(*h));

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		h[i].plen = NOPLEN;
	for (size_t i = 0; i < t->hcap; i++)
		if (t->h[i].plen != NOPLEN)
			rinsert_new(h, cap, &t->h[i]);
	free(t->h);
	t->h = h;
	t->hcap = cap;
	return 0;
}

/* rdel - backward-shift deletion of slot r. */
static void rdel(struct vt_trie6 *t, struct rule *r)
{
	size_t mask = t->hcap - 1, i = (size_t)(r - t->h), j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (t->h[j].plen == NOPLEN)
			break;
		k = rhash(t->h[j].hi, t->h[j].lo, t->h[j].plen, t->hcap);
		/* move j back to i unless its home k lies cyclically in (i, j] */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->h[i] = t->h[j];
		i = j;
	}
	t->h[i].plen = NOPLEN;
	t->hn--;
}

/* --- allocation ---------------------------------------------------------- */

static int shnode_room(struct vt_trie6 *t, uint32_t idx)
{
	if (idx < t->shcap)
		return 0;
	size_t c = t->shcap ? t->shcap * 2 : 64;
	struct shnode *s;

	while (c <= idx)
		c *= 2;
	if (!(s = realloc(t->sh, c * sizeof(*s))))
		return -ENOMEM;
	t->sh = s;
	t->shcap = c;
	return 0;
}

/* node_alloc - a fresh node at depth d on prefix hi/lo, entries zero. */
static int node_alloc(struct vt_trie6 *t, unsigned d, __u64 hi, __u64 lo,
		      uint32_t *out)
{
	uint32_t i;
	struct shnode *s;

	if (t->nfree.n)
		i = t->nfree.v[--t->nfree.n];
	else if (t->nhw < t->m.nodes_max && t->nhw <= MOAT_V6T_INDEX_MAX)
		i = t->nhw++;
	else
		return -ENOSPC;
	if (shnode_room(t, i) < 0) {
		if (i == t->nhw - 1)
			t->nhw--;
		else
			t->nfree.v[t->nfree.n++] = i;
		return -ENOMEM;
	}
	memset(&t->m.nodes[i], 0, sizeof(t->m.nodes[i]));
	s = &t->sh[i];
	s->hi = hi;
	s->lo = lo;
	mask2(&s->hi, &s->lo, d);
	s->depth = (uint8_t)d;
	s->nrules = 0;
	s->nchild = 0;
	memset(s->ownplen, OWN_NONE, sizeof(s->ownplen));
	t->nused++;
	*out = i;
	return 0;
}

static int bucket_alloc(struct vt_trie6 *t, uint32_t *out)
{
	if (t->bfree.n)
		*out = t->bfree.v[--t->bfree.n];
	else if (t->bhw < t->m.buckets_max && t->bhw <= MOAT_V6T_INDEX_MAX)
		*out = t->bhw++;
	else
		return -ENOSPC;
	memset(&t->m.buckets[*out], 0, sizeof(t->m.buckets[*out]));
	t->bused++;
	return 0;
}

/* release - free what entry e points at (itself only: callers free a
 * subtree node by node), reusable after the next grace. */
static int release(struct vt_trie6 *t, uint32_t e)
{
	switch (moat_v6t_kind(e)) {
	case MOAT_V6T_KIND_NODE:
		t->nused--;
		return fl_push(&t->npend, moat_v6t_index(e));
	case MOAT_V6T_KIND_BUCKET:
		t->bused--;
		return fl_push(&t->bpend, moat_v6t_index(e));
	}
	return 0;
}

/* unbuild - give back a subtree built in fresh memory (never published). */
static void unbuild(struct vt_trie6 *t, uint32_t e)
{
	if (moat_v6t_kind(e) == MOAT_V6T_KIND_NODE) {
		const struct moat_v6_node *n = &t->m.nodes[moat_v6t_index(e)];

		for (int i = 0; i < MOAT_V6T_NODE_ENTRIES; i++)
			unbuild(t, n->e[i]);
		t->nused--;
		(void)fl_push(&t->nfree, moat_v6t_index(e)); /* else leaked */
	} else if (moat_v6t_kind(e) == MOAT_V6T_KIND_BUCKET) {
		t->bused--;
		(void)fl_push(&t->bfree, moat_v6t_index(e));
	}
}

/* --- construction -------------------------------------------------------- */

/* The new rules of a bucket being rebuilt, longest first. */
struct rset {
	struct rule r[MOAT_V6T_BUCKET_RULES + 1];
	unsigned n;
};

static void bucket_fill(struct moat_v6_bucket *b, const struct rule *r,
			unsigned n)
{
	b->n = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		b->hi[i] = r[i].hi;
		b->lo[i] = r[i].lo;
		b->plen[i] = r[i].plen;
		b->act[i] = r[i].act;
	}
}

/* paint_new - in a node not yet published: rule r (length within the
 * node) into the own bits of the entries it covers, longest wins. */
static void paint_new(struct vt_trie6 *t, uint32_t ni, const struct rule *r)
{
	struct shnode *s = &t->sh[ni];
	unsigned span = s->depth + 8 - r->plen;
	unsigned first = moat_v6t_byte(r->hi, r->lo, s->depth);

	for (unsigned i = first; i < first + (1u << span); i++) {
		uint32_t *e = &t->m.nodes[ni].e[i];

		if (s->ownplen[i] <= r->plen + 1) {
			s->ownplen[i] = (uint8_t)(r->plen + 1);
			*e = with_own(*e, 1, r->act);
		}
	}
	s->nrules++;
}

/* build - a bucket or (past 3 rules) a node for rules r[0, n) below an
 * entry of range depth d (every rule longer than d), in fresh memory:
 * the entry's kind and index in *out (own bits clear). */
static int build(struct vt_trie6 *t, unsigned d, const struct rule *r,
		 unsigned n, uint32_t *out)
{
	uint32_t ni;
	int rc;

	if (n <= MOAT_V6T_BUCKET_RULES) {
		uint32_t bi;

		if ((rc = bucket_alloc(t, &bi)) < 0)
			return rc;
		bucket_fill(&t->m.buckets[bi], r, n);
		*out = moat_v6t_entry(MOAT_V6T_KIND_BUCKET, 0, 0, bi) |
		       bucket_skip(d, r, n);
		return 0;
	}
	if ((rc = node_alloc(t, d, r[0].hi, r[0].lo, &ni)) < 0)
		return rc;
	/* own rules shortest first, so longer ones paint over */
	for (unsigned p = d + 1; p <= d + 8; p++)
		for (unsigned i = 0; i < n; i++)
			if (r[i].plen == p)
				paint_new(t, ni, &r[i]);
	for (unsigned i = 0; i < n; i++) {
		struct rule g[MOAT_V6T_BUCKET_RULES + 1]; /* n <= 4: from a bucket */
		unsigned gn = 0, byte = moat_v6t_byte(r[i].hi, r[i].lo, d);
		uint32_t *e = &t->m.nodes[ni].e[byte], sub;
		int dup = 0;

		if (r[i].plen <= d + 8)
			continue;
		for (unsigned j = 0; j < i; j++)
			if (r[j].plen > d + 8 &&
			    moat_v6t_byte(r[j].hi, r[j].lo, d) == byte)
				dup = 1;
		if (dup)
			continue;
		for (unsigned j = i; j < n; j++)
			if (r[j].plen > d + 8 &&
			    moat_v6t_byte(r[j].hi, r[j].lo, d) == byte)
				g[gn++] = r[j];
		if ((rc = build(t, d + 8, g, gn, &sub)) < 0) {
			unbuild(t, moat_v6t_entry(MOAT_V6T_KIND_NODE, 0, 0, ni));
			return rc;
		}
		*e = with_child(*e, sub);
		t->sh[ni].nchild++;
	}
	*out = moat_v6t_entry(MOAT_V6T_KIND_NODE, 0, 0, ni);
	return 0;
}

/* --- live changes -------------------------------------------------------- */

/* root_depth - the bits the root entry of an address (high half hi)
 * consumes: 16, or 24 in 2000::/3 under the wide root */
static unsigned root_depth(const struct vt_trie6 *t, __u64 hi)
{
	__u32 d;

	(void)moat_v6t_root_slot(hi, t->rb, &d);
	return d;
}

/* root_addr - the address (high half) of root entry i, *d the bits it
 * consumes (moat_v6t_root_slot's inverse) */
static __u64 root_addr(const struct vt_trie6 *t, size_t i, unsigned *d)
{
	if (t->rb == MOAT_V6T_ROOT_BITS_WIDE && i < MOAT_V6T_WIDE_IN_ENTRIES) {
		*d = MOAT_V6T_ROOT_BITS_WIDE;
		return (__u64)MOAT_V6T_WIDE_PREFIX << 61 | (__u64)i << 40;
	}
	if (t->rb == MOAT_V6T_ROOT_BITS_WIDE)
		i -= MOAT_V6T_WIDE_IN_ENTRIES;
	*d = MOAT_V6T_ROOT_BITS;
	return (__u64)i << 48;
}

struct span {
	unsigned first, count;
};

/* root_spans - the root entries rule hi/plen covers (plen at most its
 * root_depth): one range, or two in the wide root for a rule of /0../3
 * that covers 2000::/3 (all of the part for 2000::/3, and its range of
 * the other part).  Returns how many. */
static unsigned root_spans(const struct vt_trie6 *t, __u64 hi, unsigned plen,
			   struct span sp[2])
{
	__u64 in = (__u64)MOAT_V6T_WIDE_PREFIX << 61;
	unsigned n = 0;

	if (t->rb != MOAT_V6T_ROOT_BITS_WIDE) {
		sp[0].first = (unsigned)(hi >> 48);
		sp[0].count = 1u << (MOAT_V6T_ROOT_BITS - plen);
		return 1;
	}
	if (plen <= 3 && ((hi ^ in) & moat_v6t_mask_hi(plen)) == 0) {
		sp[n].first = 0;
		sp[n++].count = MOAT_V6T_WIDE_IN_ENTRIES;
	} else if (plen > 3 && (hi >> 61) == MOAT_V6T_WIDE_PREFIX) {
		sp[n].first = (unsigned)(hi >> 40) & (MOAT_V6T_WIDE_IN_ENTRIES - 1);
		sp[n++].count = 1u << (MOAT_V6T_ROOT_BITS_WIDE - plen);
	}
	if (plen <= 3 || (hi >> 61) != MOAT_V6T_WIDE_PREFIX) {
		sp[n].first = MOAT_V6T_WIDE_IN_ENTRIES + (unsigned)(hi >> 48);
		sp[n++].count = 1u << (MOAT_V6T_ROOT_BITS - plen);
	}
	return n;
}

/* entry_addr - the address of entry i of node s (or of the root). */
static void entry_addr(const struct vt_trie6 *t, const struct shnode *s,
		       unsigned i, __u64 *hi, __u64 *lo)
{
	if (!s) {
		unsigned d;

		*hi = root_addr(t, i, &d);
		*lo = 0;
		return;
	}
	*hi = s->hi;
	*lo = s->lo;
	if (s->depth < 64)
		*hi |= (__u64)i << (56 - s->depth);
	else
		*lo |= (__u64)i << (120 - s->depth);
}

/* spans - the entries rule hi/lo/plen covers in node s (NULL: the root) */
static unsigned spans(const struct vt_trie6 *t, const struct shnode *s,
		      __u64 hi, __u64 lo, unsigned plen, struct span sp[2])
{
	if (!s)
		return root_spans(t, hi, plen, sp);
	sp[0].first = moat_v6t_byte(hi, lo, s->depth);
	sp[0].count = 1u << (s->depth + 8 - plen);
	return 1;
}

/* repaint_span - repaint's work over one span of entries */
static void repaint_span(struct vt_trie6 *t, const struct shnode *s,
			 uint32_t *ents, uint8_t *ownp, struct span sp,
			 unsigned plen, const struct rule *r)
{
	unsigned minlen = s ? s->depth + 1u : 0;

	for (unsigned i = sp.first; i < sp.first + sp.count; i++) {
		if (r) {
			if (ownp[i] > plen + 1)
				continue;
			ownp[i] = (uint8_t)(plen + 1);
			store_entry(&ents[i], with_own(ents[i], 1, r->act));
			continue;
		}
		if (ownp[i] != plen + 1)
			continue;
		/* the next longest rule of this node covering entry i */
		__u64 eh, el;
		const struct rule *best = NULL;

		entry_addr(t, s, i, &eh, &el);
		for (unsigned l = plen; l-- > minlen && !best;) {
			__u64 mh = eh, ml = el;

			mask2(&mh, &ml, l);
			best = rfind(t, mh, ml, l);
		}
		ownp[i] = best ? (uint8_t)(best->plen + 1) : OWN_NONE;
		store_entry(&ents[i], with_own(ents[i], best != NULL,
					       best ? best->act : 0));
	}
}

/* repaint - the own bits of the entries rule hi/lo/plen covers in node s
 * (NULL: the root; entries ents, own lengths ownp, lengths lo_len..): after
 * a put (r != NULL) or the delete of that rule (r == NULL). */
static void repaint(struct vt_trie6 *t, const struct shnode *s, uint32_t *ents,
		    uint8_t *ownp, __u64 hi, __u64 lo, unsigned plen,
		    const struct rule *r)
{
	struct span sp[2];
	unsigned nsp = spans(t, s, hi, lo, plen, sp);

	for (unsigned j = 0; j < nsp; j++)
		repaint_span(t, s, ents, ownp, sp[j], plen, r);
}

struct step {            /* one entry on a rule's path */
	uint32_t *e;         /* the entry */
	int32_t owner;       /* node holding it; -1: the root */
};

/* walk - the path of rule hi/lo/plen (plen > root_depth) from the root: path[0..k],
 * the last either the entry of the node holding plen in its own bits
 * (*node = that node) or the node-less entry where a bucket is or goes
 * (*node = -1, *range = the entry's range). */
static int walk(struct vt_trie6 *t, __u64 hi, __u64 lo, unsigned plen,
		struct step *path, int32_t *node, unsigned *range)
{
	__u32 d;
	int k = 0;

	path[0].e = &t->m.root[moat_v6t_root_slot(hi, t->rb, &d)];
	path[0].owner = -1;
	for (;;) {
		uint32_t e = *path[k].e;

		if (moat_v6t_kind(e) != MOAT_V6T_KIND_NODE) {
			*node = -1;
			*range = d;
			return k;
		}
		if (plen <= d + 8) {
			*node = (int32_t)moat_v6t_index(e);
			return k;
		}
		path[k + 1].e = &t->m.nodes[moat_v6t_index(e)].e[moat_v6t_byte(hi, lo, d)];
		path[k + 1].owner = (int32_t)moat_v6t_index(e);
		k++;
		d += 8;
	}
}

/* collapse - after path[k]'s entry lost its child: a node left without
 * rules and children is unlinked from its parent, upwards. */
static int collapse(struct vt_trie6 *t, struct step *path, int k)
{
	while (k > 0) {
		int32_t o = path[k].owner;

		if (moat_v6t_kind(*path[k].e) != MOAT_V6T_KIND_NONE)
			return 0;
		if (--t->sh[o].nchild || t->sh[o].nrules)
			return 0;
		uint32_t pe = *path[k - 1].e;

		store_entry(path[k - 1].e, with_child(pe, 0));
		if (release(t, pe) < 0)
			return -ENOMEM;
		k--;
	}
	return 0;
}

int vt_trie6_put(struct vt_trie6 *t, const uint8_t addr[16], unsigned plen,
		 uint32_t act)
{
	struct step path[MOAT_V6T_MAX_NODES_DEEP + 2];
	struct rule nr, *old;
	int32_t node;
	unsigned range;
	int k, rc;

	if (plen > 128)
		return -EINVAL;
	moat_v6t_halves(addr, &nr.hi, &nr.lo);
	mask2(&nr.hi, &nr.lo, plen);
	nr.plen = (uint8_t)plen;
	nr.act = (uint8_t)(act & 3);
	if ((old = rfind(t, nr.hi, nr.lo, plen)) && old->act == nr.act)
		return 0;
	if (!old && (t->hn + 1) * 4 > t->hcap * 3 && (rc = rgrow(t)) < 0)
		return rc;
	if (plen <= root_depth(t, nr.hi)) {
		repaint(t, NULL, t->m.root, t->root_own, nr.hi, nr.lo, plen, &nr);
		goto stored;
	}
	k = walk(t, nr.hi, nr.lo, plen, path, &node, &range);
	if (node >= 0) {
		repaint(t, &t->sh[node], t->m.nodes[node].e, t->sh[node].ownplen,
			nr.hi, nr.lo, plen, &nr);
		if (!old)
			t->sh[node].nrules++;
		goto stored;
	}
	/* a bucket: rebuilt with the rule, or split */
	{
		uint32_t e = *path[k].e, sub;
		struct rset s = { .n = 0 };

		if (moat_v6t_kind(e) == MOAT_V6T_KIND_BUCKET) {
			const struct moat_v6_bucket *b =
				&t->m.buckets[moat_v6t_index(e)];

			for (unsigned i = 0; i < b->n; i++) {
				struct rule *x = &s.r[s.n];

				x->hi = b->hi[i];
				x->lo = b->lo[i];
				x->plen = b->plen[i];
				x->act = b->act[i];
				if (x->plen == plen && x->hi == nr.hi && x->lo == nr.lo)
					continue; /* overwritten below */
				s.n++;
			}
		}
		/* insert longest first */
		unsigned at = s.n;

		while (at > 0 && s.r[at - 1].plen < plen) {
			s.r[at] = s.r[at - 1];
			at--;
		}
		s.r[at] = nr;
		s.n++;
		if ((rc = build(t, range, s.r, s.n, &sub)) < 0)
			return rc;
		store_entry(path[k].e, with_child(e, sub));
		if (moat_v6t_kind(e) == MOAT_V6T_KIND_NONE && k > 0)
			t->sh[path[k].owner].nchild++;
		if ((rc = release(t, e)) < 0)
			return rc;
	}
stored:
	if (old) {
		old->act = nr.act;
	} else {
		rinsert_new(t->h, t->hcap, &nr);
		t->hn++;
	}
	return 0;
}

int vt_trie6_del(struct vt_trie6 *t, const uint8_t addr[16], unsigned plen)
{
	struct step path[MOAT_V6T_MAX_NODES_DEEP + 2];
	__u64 hi, lo;
	struct rule *old;
	int32_t node;
	unsigned range;
	int k, rc;

	if (plen > 128)
		return -EINVAL;
	moat_v6t_halves(addr, &hi, &lo);
	mask2(&hi, &lo, plen);
	if (!(old = rfind(t, hi, lo, plen)))
		return 0;
	rdel(t, old);   /* first: repaint must not find it */
	if (plen <= root_depth(t, hi)) {
		repaint(t, NULL, t->m.root, t->root_own, hi, lo, plen, NULL);
		return 0;
	}
	k = walk(t, hi, lo, plen, path, &node, &range);
	if (node >= 0) {
		struct shnode *s = &t->sh[node];

		repaint(t, s, t->m.nodes[node].e, s->ownplen, hi, lo, plen, NULL);
		if (--s->nrules || s->nchild)
			return 0;
		/* the node is empty: unlink it (its entry is path[k]) */
		uint32_t e = *path[k].e;

		store_entry(path[k].e, with_child(e, 0));
		if ((rc = release(t, e)) < 0)
			return rc;
		return collapse(t, path, k);
	}
	uint32_t e = *path[k].e, sub = 0;
	struct rset s = { .n = 0 };

	if (moat_v6t_kind(e) != MOAT_V6T_KIND_BUCKET)
		return 0;   /* not reached: the rule was in the hash */
	const struct moat_v6_bucket *b = &t->m.buckets[moat_v6t_index(e)];

	for (unsigned i = 0; i < b->n; i++) {
		if (b->plen[i] == plen && b->hi[i] == hi && b->lo[i] == lo)
			continue;
		s.r[s.n].hi = b->hi[i];
		s.r[s.n].lo = b->lo[i];
		s.r[s.n].plen = b->plen[i];
		s.r[s.n].act = b->act[i];
		s.n++;
	}
	if (s.n && (rc = build(t, range, s.r, s.n, &sub)) < 0)
		return rc;
	store_entry(path[k].e, with_child(e, sub));
	if ((rc = release(t, e)) < 0)
		return rc;
	return s.n ? 0 : collapse(t, path, k);
}

/* --- adopting a trie a former writer left (pinned maps) ----------------- */

struct adopt {
	uint8_t *nseen, *bseen;
	struct rule *brules;   /* the rules found in buckets */
	size_t nb, cap;
};

/* adopt_walk - the nodes and buckets reachable from entry *ep (range
 * depth d, prefix hi/lo): node shadows rebuilt (own lengths unknown yet),
 * bucket rules collected, a bucket entry's skip bits made what its rules
 * say (one store; the bucket is as it was).  -EINVAL on an index past the
 * storage or met twice. */
static int adopt_walk(struct vt_trie6 *t, struct adopt *a, uint32_t *ep,
		      unsigned d, __u64 hi, __u64 lo)
{
	uint32_t e = *ep, idx = moat_v6t_index(e);

	if (moat_v6t_kind(e) == MOAT_V6T_KIND_BUCKET) {
		const struct moat_v6_bucket *b;
		size_t first = a->nb;
		uint32_t skip;

		if (idx >= t->m.buckets_max || a->bseen[idx])
			return -EINVAL;
		a->bseen[idx] = 1;
		t->bused++;
		if (idx >= t->bhw)
			t->bhw = idx + 1;
		b = &t->m.buckets[idx];
		for (unsigned i = 0; i < b->n && i < MOAT_V6T_BUCKET_RULES; i++) {
			if (vt_grow((void **)&a->brules, &a->cap, a->nb + 1,
				    sizeof(*a->brules)) < 0)
				return -ENOMEM;
			a->brules[a->nb].hi = b->hi[i];
			a->brules[a->nb].lo = b->lo[i];
			a->brules[a->nb].plen = b->plen[i] > 128 ? 128 : b->plen[i];
			a->brules[a->nb].act = b->act[i] & 3;
			a->nb++;
		}
		skip = bucket_skip(d, &a->brules[first], (unsigned)(a->nb - first));
		if ((e & MOAT_V6T_SKIP_MASK) != skip)
			store_entry(ep, (e & ~MOAT_V6T_SKIP_MASK) | skip);
		return 0;
	}
	if (moat_v6t_kind(e) != MOAT_V6T_KIND_NODE)
		return 0;
	if (idx >= t->m.nodes_max || a->nseen[idx] || d > 120 ||
	    shnode_room(t, idx) < 0)
		return -EINVAL;
	a->nseen[idx] = 1;
	t->nused++;
	if (idx >= t->nhw)
		t->nhw = idx + 1;
	struct shnode *s = &t->sh[idx];

	s->hi = hi;
	s->lo = lo;
	mask2(&s->hi, &s->lo, d);
	s->depth = (uint8_t)d;
	s->nrules = s->nchild = 0;
	memset(s->ownplen, OWN_NONE, sizeof(s->ownplen));
	for (unsigned i = 0; i < MOAT_V6T_NODE_ENTRIES; i++) {
		uint32_t *ce = &t->m.nodes[idx].e[i];
		__u64 ch, cl;
		int rc;

		if (moat_v6t_kind(*ce) == MOAT_V6T_KIND_NONE)
			continue;
		t->sh[idx].nchild++;
		entry_addr(t, &t->sh[idx], i, &ch, &cl);
		if ((rc = adopt_walk(t, a, ce, d + 8, ch, cl)) < 0)
			return rc;
	}
	return 0;
}

/* paint_shadow - own length of the entries rule r covers in node s (NULL:
 * the root), longest wins: the writer's side only */
static void paint_shadow(struct vt_trie6 *t, struct shnode *s, const struct rule *r)
{
	uint8_t *ownp = s ? s->ownplen : t->root_own;
	struct span sp[2];
	unsigned nsp = spans(t, s, r->hi, r->lo, r->plen, sp);

	for (unsigned j = 0; j < nsp; j++)
		for (unsigned i = sp[j].first; i < sp[j].first + sp[j].count; i++)
			if (ownp[i] <= r->plen + 1)
				ownp[i] = (uint8_t)(r->plen + 1);
}

/* own_fix - entries of node s (NULL: root) whose own bits are not what
 * the own lengths and the rules say get them, one store each */
static void own_fix(struct vt_trie6 *t, struct shnode *s, uint32_t *ents,
		    size_t count)
{
	const uint8_t *ownp = s ? s->ownplen : t->root_own;

	for (size_t i = 0; i < count; i++) {
		const struct rule *r = NULL;
		uint32_t want;

		if (ownp[i] != OWN_NONE) {
			__u64 eh, el;

			entry_addr(t, s, i, &eh, &el);
			mask2(&eh, &el, ownp[i] - 1u);
			r = rfind(t, eh, el, ownp[i] - 1u);
		}
		want = with_own(ents[i], r != NULL, r ? r->act : 0);
		if (want != ents[i])
			store_entry(&ents[i], want);
	}
}

struct vt_trie6 *vt_trie6_adopt(const struct vt_trie6_mem *mem,
				const struct vt_trie6_rule *rules, size_t n,
				size_t *fixed, int *err)
{
	struct vt_trie6 *t = vt_trie6_new(mem), *want = NULL;
	struct adopt a = { NULL, NULL, NULL, 0, 0 };
	size_t nfix = 0;
	int rc = -ENOMEM;

	if (!t || !(a.nseen = calloc(mem->nodes_max, 1)) ||
	    !(a.bseen = calloc(mem->buckets_max, 1)) ||
	    !(want = vt_trie6_new(mem)))
		goto out;
	/* 1. the structure: what is in use, node shadows, bucket rules */
	for (size_t i = 0; i < vt_trie6_root_entries(t->rb); i++) {
		unsigned d;
		__u64 hi = root_addr(t, i, &d);

		if ((rc = adopt_walk(t, &a, &mem->root[i], d, hi, 0)) < 0)
			goto out;
	}
	rc = -ENOMEM;
	for (uint32_t i = 0; i < t->nhw; i++)
		if (!a.nseen[i] && fl_push(&t->nfree, i) < 0)
			goto out;
	for (uint32_t i = 0; i < t->bhw; i++)
		if (!a.bseen[i] && fl_push(&t->bfree, i) < 0)
			goto out;
	for (size_t i = 0; i < a.nb; i++) {
		if ((t->hn + 1) * 4 > t->hcap * 3 && rgrow(t) < 0)
			goto out;
		if (!rfind(t, a.brules[i].hi, a.brules[i].lo, a.brules[i].plen)) {
			rinsert_new(t->h, t->hcap, &a.brules[i]);
			t->hn++;
		}
	}
	/* 2. the rules wanted; those of the root's and the nodes' lengths
	 * are taken as the own bits' (checked in 3) */
	for (size_t i = 0; i < n; i++) {
		struct rule r;
		struct step path[MOAT_V6T_MAX_NODES_DEEP + 2];
		int32_t node = -1;
		unsigned range;
		struct rule *x;

		if (rules[i].plen > 128)
			continue;
		moat_v6t_halves(rules[i].addr, &r.hi, &r.lo);
		mask2(&r.hi, &r.lo, rules[i].plen);
		r.plen = (uint8_t)rules[i].plen;
		r.act = (uint8_t)(rules[i].act & 3);
		if ((want->hn + 1) * 4 > want->hcap * 3 && rgrow(want) < 0)
			goto out;
		if ((x = rfind(want, r.hi, r.lo, r.plen)))
			x->act = r.act;
		else {
			rinsert_new(want->h, want->hcap, &r);
			want->hn++;
		}
		if (r.plen > root_depth(t, r.hi) &&
		    (walk(t, r.hi, r.lo, r.plen, path, &node, &range), node < 0))
			continue;   /* a bucket's: 4 */
		if ((t->hn + 1) * 4 > t->hcap * 3 && rgrow(t) < 0)
			goto out;
		if ((x = rfind(t, r.hi, r.lo, r.plen))) {
			x->act = r.act;
			continue;
		}
		rinsert_new(t->h, t->hcap, &r);
		t->hn++;
		paint_shadow(t, node >= 0 ? &t->sh[node] : NULL, &r);
		if (node >= 0)
			t->sh[node].nrules++;
	}
	/* 3. own bits as the rules say */
	own_fix(t, NULL, t->m.root, vt_trie6_root_entries(t->rb));
	for (uint32_t i = 0; i < t->nhw; i++)
		if (a.nseen[i])
			own_fix(t, &t->sh[i], t->m.nodes[i].e, MOAT_V6T_NODE_ENTRIES);
	/* 4. bucket rules: missing or changed ones put, extra ones deleted,
	 * each an ordinary copy-on-write change */
	for (size_t i = 0; i < want->hcap; i++) {
		const struct rule *r = &want->h[i], *x;
		uint8_t addr[16];

		if (r->plen == NOPLEN)
			continue;
		if ((x = rfind(t, r->hi, r->lo, r->plen)) && x->act == r->act)
			continue;
		for (int k = 0; k < 8; k++) {
			addr[k] = (uint8_t)(r->hi >> (56 - 8 * k));
			addr[8 + k] = (uint8_t)(r->lo >> (56 - 8 * k));
		}
		if ((rc = vt_trie6_put(t, addr, r->plen, r->act)) < 0)
			goto out;
		nfix++;
	}
	for (size_t i = 0; i < a.nb; i++) {
		const struct rule *r = &a.brules[i];
		uint8_t addr[16];

		if (rfind(want, r->hi, r->lo, r->plen))
			continue;
		for (int k = 0; k < 8; k++) {
			addr[k] = (uint8_t)(r->hi >> (56 - 8 * k));
			addr[8 + k] = (uint8_t)(r->lo >> (56 - 8 * k));
		}
		if ((rc = vt_trie6_del(t, addr, r->plen)) < 0)
			goto out;
		nfix++;
	}
	rc = 0;
out:
	free(a.nseen);
	free(a.bseen);
	free(a.brules);
	vt_trie6_free(want);
	if (rc < 0) {
		vt_trie6_free(t);
		t = NULL;
	}
	if (fixed)
		*fixed = nfix;
	*err = rc;
	return t;
}

size_t vt_trie6_pending(const struct vt_trie6 *t)
{
	return t->npend.n + t->bpend.n;
}

void vt_trie6_grace_done(struct vt_trie6 *t)
{
	/* pending lists move to the free lists (room: grow once) */
	struct { struct freelist *from, *to; } mv[2] = {
		{ &t->npend, &t->nfree }, { &t->bpend, &t->bfree } };

	for (int j = 0; j < 2; j++) {
		while (mv[j].from->n) {
			if (fl_push(mv[j].to, mv[j].from->v[mv[j].from->n - 1]) < 0)
				break;   /* keep it pending: retried next time */
			mv[j].from->n--;
		}
	}
}

/* --- setup --------------------------------------------------------------- */

struct vt_trie6 *vt_trie6_new(const struct vt_trie6_mem *mem)
{
	struct vt_trie6 *t;

	if (mem->root_bits && mem->root_bits != MOAT_V6T_ROOT_BITS &&
	    mem->root_bits != MOAT_V6T_ROOT_BITS_WIDE)
		return NULL;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	t->m = *mem;
	t->rb = moat_v6t_root_bits(mem->root_bits);
	/* zero pages until a short rule paints them (OWN_NONE is 0) */
	if (!(t->root_own = calloc(vt_trie6_root_entries(t->rb), 1))) {
		free(t);
		return NULL;
	}
	return t;
}

/* reserve - len bytes of address space, from 2 MiB on starting on a 2 MiB
 * boundary: the kernel aligns an anonymous mapping only when its length
 * is a multiple of 2 MiB, and the wide root's 8.25 MiB is not, so its
 * 2000::/3 part (8 MiB, read at random) could straddle a 2 MiB cell at
 * an end of the mapping that no huge page can back (up to 2 MiB of it on
 * 4 KiB pages, where it started decided); aligned, it is four huge pages */
static void *reserve(size_t len)
{
	const size_t huge = 2u << 20, pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t extra, head;
	uint8_t *p;

	len = (len + pg - 1) & ~(pg - 1); /* the tail's munmap needs a page-aligned start */
	extra = len >= huge ? huge : 0;
	p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (!extra)
		return p;
	head = (huge - ((uintptr_t)p & (huge - 1))) & (huge - 1);
	if (head)
		munmap(p, head);
	if (extra - head)
		munmap(p + head + len, extra - head);
	return p + head;
}

struct vt_trie6 *vt_trie6_new_owned(uint32_t nodes_max, uint32_t buckets_max)
{
	return vt_trie6_new_owned_root(0, nodes_max, buckets_max);
}

struct vt_trie6 *vt_trie6_new_owned_root(uint32_t root_bits, uint32_t nodes_max,
					 uint32_t buckets_max)
{
	struct vt_trie6_mem m = { .nodes_max = nodes_max,
				  .buckets_max = buckets_max,
				  .root_bits = root_bits };
	size_t rlen = vt_trie6_root_entries(root_bits) * sizeof(uint32_t);
	struct vt_trie6 *t = NULL;

	m.root = reserve(rlen);
	m.nodes = reserve((size_t)nodes_max * sizeof(struct moat_v6_node));
	m.buckets = reserve((size_t)buckets_max * sizeof(struct moat_v6_bucket));
	if (!m.root || !m.nodes || !m.buckets || !(t = vt_trie6_new(&m))) {
		if (m.root)
			munmap(m.root, rlen);
		if (m.nodes)
			munmap(m.nodes, (size_t)nodes_max * sizeof(struct moat_v6_node));
		if (m.buckets)
			munmap(m.buckets, (size_t)buckets_max * sizeof(struct moat_v6_bucket));
		return NULL;
	}
	t->owned = 1;
	/* huge pages where the kernel gives them, as for tbl24 (vt_thp); the
	 * wide root too (8.25 MiB, its 2000::/3 part read at random, like tbl24) */
	if (rlen > (2u << 20))
		(void)madvise(m.root, rlen, MADV_HUGEPAGE);
	(void)madvise(m.nodes, (size_t)nodes_max * sizeof(struct moat_v6_node),
		      MADV_HUGEPAGE);
	(void)madvise(m.buckets, (size_t)buckets_max * sizeof(struct moat_v6_bucket),
		      MADV_HUGEPAGE);
	return t;
}

void vt_trie6_free(struct vt_trie6 *t)
{
	if (!t)
		return;
	if (t->owned) {
		munmap(t->m.root, vt_trie6_root_entries(t->rb) * sizeof(uint32_t));
		munmap(t->m.nodes, (size_t)t->m.nodes_max * sizeof(struct moat_v6_node));
		munmap(t->m.buckets, (size_t)t->m.buckets_max * sizeof(struct moat_v6_bucket));
	}
	free(t->root_own);
	free(t->h);
	free(t->sh);
	free(t->nfree.v);
	free(t->bfree.v);
	free(t->npend.v);
	free(t->bpend.v);
	free(t);
}

const struct vt_trie6_mem *vt_trie6_storage(const struct vt_trie6 *t)
{
	return &t->m;
}

void vt_trie6_stats(const struct vt_trie6 *t, struct vt_trie6_stats *st)
{
	st->rules = t->hn;
	st->nodes = t->nused;
	st->buckets = t->bused;
	st->nodes_hw = t->nhw;
	st->buckets_hw = t->bhw;
	st->bytes = vt_trie6_root_entries(t->rb) * sizeof(uint32_t) +
		    (size_t)t->nused * sizeof(struct moat_v6_node) +
		    (size_t)t->bused * sizeof(struct moat_v6_bucket);
}

uint32_t vt_trie6_lookup(const struct vt_trie6_mem *m, const uint8_t addr[16])
{
	return vt_trie6_lookup_inline(m, addr);
}
