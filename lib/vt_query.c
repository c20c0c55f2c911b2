/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_query.c - what the db answers without changing: lookups in the live
 * image, explain (the listings and weights behind an address's action, by
 * the same rule the compiler applies), the stored listings of a source
 * (dump, and the chunked walk in listing order a zone diff reads), and
 * counters and sizes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

/* -------------------------------------------------------------- lookup */

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
		vt_ps_prefix_range(ps, a, p, &lo, &hi);
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
		uint32_t v = vt_v4_addr(a), bn;
		const struct v4e *b = vt_bucket(db, v >> 8, &bn);

		for (uint32_t i = 0; i < bn; i++) {
			unsigned pl = PF_PLEN(b[i].pf);
			uint8_t pa[16] = { 0 };

			if ((v & 0xff) >> (32 - pl) != (uint32_t)b[i].host >> (32 - pl))
				continue;
			vt_v4_bytes(pa, (v & ~0xffu) | b[i].host);
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

/* wk_put - one stored listing as the dump and the walk give it: .ttl is
 * the time left for expiring entries, else 0. */
static void wk_put(const struct vt_db *db, struct moat_listing *l, int fam,
		   const uint8_t *addr, unsigned plen, uint32_t code,
		   uint32_t expiry, uint16_t src, int excl)
{
	memset(l, 0, sizeof(*l));
	l->pfx.family = (uint8_t)fam;
	l->pfx.plen = (uint8_t)plen;
	memcpy(l->pfx.addr, addr, fam == MOAT_AF_INET ? 4 : 16);
	l->code = code;
	l->ttl = expiry == 0 ? 0 : expiry > db->now ?
		 (uint32_t)(expiry - db->now) : 1;
	l->source = src;
	l->exclude = (uint8_t)excl;
}

/* dump_one - append one stored listing to the dump. */
static int dump_one(const struct vt_db *db, struct moat_listing **out,
		    size_t *n, size_t *cap, int fam, const uint8_t *addr,
		    unsigned plen, uint32_t code, uint32_t expiry, uint16_t src,
		    int excl)
{
	if (vt_grow((void **)out, cap, *n + 1, sizeof(**out)) < 0)
		return -ENOMEM;
	wk_put(db, &(*out)[(*n)++], fam, addr, plen, code, expiry, src, excl);
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
		/* the /24s the source may hold entries in, ascending (none
		 * when all its IPv4 entries are shorter than /24) */
		if (sl->n)
			memcpy(l24, sl->v, sl->n * sizeof(*l24));
		if (sl->n > 1)
			qsort(l24, sl->n, sizeof(*l24), vt_cmp_u32);
		for (size_t v = 0; v < sl->n; v++) {
			uint32_t bn, idx = l24[v];
			const struct v4e *b;

			if (v && l24[v - 1] == idx)
				continue;
			b = vt_bucket(db, idx, &bn);
			for (uint32_t i = 0; i < bn; i++) {
				uint8_t a[16] = { 0 };

				if (b[i].source != source)
					continue;
				vt_v4_bytes(a, idx << 8 | b[i].host);
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
	i = vt_ps_lower(ps, &key);
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
			b = vt_bucket(db, idx, &bn);
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

			vt_v4_bytes(a, idx << 8 | tmp[i].host);
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
	const struct vt_source *s = vt_src_of(db, source);
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
