/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_commit.c - a validated change stored: vt_db_source_apply (IXFR,
 * operator add/del), vt_db_source_replace (AXFR, file reload) and expiry
 * (vt_db_expire).  Records from vt_validate.c go into the store
 * (vt_store.c) with their counters and expiry, and every /24 or IPv6 prefix
 * they touch is marked dirty (a bitmap plus a list; changed IPv6 prefixes
 * are remembered) so the next publish recompiles only those.  Per source,
 * the /24s it may hold /24../32 entries in, so a replace or a dump visits
 * those and not all 2^24; a replace leaves unchanged entries quiet (not
 * dirty).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

/* cnt_of - counters of a source id; a scratch slot for ids that just left
 * the policy (their entries are being dropped). */
static struct vt_source_counters *cnt_of(struct vt_db *db, uint16_t id)
{
	uint16_t i = db->sidx[id];

	return i ? &db->cnt[i - 1] : &db->cnt_gone;
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
	if (db->dirty.n >= DIRTY_LIST_MAX || vt_vec_push(&db->dirty, idx) < 0)
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

/* ------------------------------------------------------------- commit */

/* note_expiry - one more expiring entry (in /24 idx, or in a sorted store
 * when idx is UINT32_MAX). */
static void note_expiry(struct vt_db *db, uint32_t idx, uint32_t expiry)
{
	if (!db->nexpiring || expiry < db->next_expiry)
		db->next_expiry = expiry;
	db->nexpiring++;
	if (idx != UINT32_MAX && vt_vec_push(&db->exp24, idx) < 0)
		db->exp24_lost = 1;
}

/* vt_cmp_u32 - qsort order. */
int vt_cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return (a > b) - (a < b);
}

/* src24_has - /24 idx holds an entry of source src. */
static int src24_has(const struct vt_db *db, uint16_t src, uint32_t idx)
{
	uint32_t n;
	const struct v4e *b = vt_bucket(db, idx, &n);

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
		qsort(l->v, l->n, sizeof(*l->v), vt_cmp_u32);
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
	return vt_vec_push(l, idx);
}

/* commit_long_raw - store one /24../32 entry in its vt_bucket, mark dirty. */
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
		rc = vt_bucket_add(db, a >> 8, &e);
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
	return commit_long_raw(db, s, vt_v4_addr(r->addr), r->plen, r->excl,
			       r->code, r->ttl);
}

/* commit_long_del_at - remove entry i of bucket idx, mark dirty. */
static void commit_long_del_at(struct vt_db *db, uint32_t idx, uint32_t i)
{
	uint32_t n;
	struct v4e *b = vt_bucket(db, idx, &n);

	db->nexpiring -= b[i].expiry != 0;
	cnt_of(db, b[i].source)->entries_v4--;
	vt_bucket_del_at(db, idx, i);
	mark24(db, idx);
}

/* mark_pe - dirty what a sorted-store entry touches. */
static void mark_pe(struct vt_db *db, const struct pe *p, int v4)
{
	if (v4) {
		mark_v4_prefix(db, vt_v4_addr(p->addr), p->plen);
		return;
	}
	db->v6_dirty = 1;
	if (db->v6d_overflow)
		return;
	if (db->v6d.n >= V6_DIRTY_MAX ||
	    vt_grow((void **)&db->v6d.v, &db->v6d.cap, db->v6d.n + 1,
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
		qsort(dels, ndel, sizeof(*dels), vt_pe_qcmp);
	if (nadd > 1)
		qsort(adds, nadd, sizeof(*adds), vt_pe_qcmp);
	for (size_t i = 0; i < ndel; i++) {
		long k = vt_ps_find(ps, &dels[i]);

		if (k >= 0)
			dels[i].expiry = ps->e[k].expiry;
	}
	rc = vt_ps_apply(ps, dels, ndel, adds, nadd);
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
			set_short_bits(db, vt_v4_addr(adds[i].addr), adds[i].plen);
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
		if (vt_is_long(&recs[i]) || recs[i].keep)
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
		if (vt_is_long(&recs[i]) || recs[i].keep)
			continue;
		if (recs[i].fam == MOAT_AF_INET)
			vt_rec_to_pe(&recs[i], s->id, expiry_of(db, s, recs[i].ttl),
				     &(*p4)[(*n4)++]);
		else
			vt_rec_to_pe(&recs[i], s->id, expiry_of(db, s, recs[i].ttl),
				     &(*p6)[(*n6)++]);
	}
	return 0;
}

/* lookup_source - the policy source for an id, or an error. */
static const struct vt_source *lookup_source(const struct vt_db *db,
					     uint16_t source, char *err,
					     size_t errsz)
{
	const struct vt_source *s = vt_src_of(db, source);

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
	rc = vt_normalize(db, s, add, nadd, "add", &ra, &na, NULL, NULL, &ign, err,
			  errsz);
	if (rc < 0)
		return rc;
	rc = vt_normalize(db, s, del, ndel, "del", &rd, &nd, NULL, NULL, &igd, err,
			  errsz);
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	/* dels: each must be stored */
	for (size_t i = 0; i < nd; i++) {
		struct moat_prefix p = { .family = rd[i].fam, .plen = rd[i].plen };

		memcpy(p.addr, rd[i].addr, 16);
		if (!vt_store_present(db, source, &rd[i])) {
			VT_ERR(err, errsz, "del: %s code 0x%08x%s is not listed by %s",
			       vt_fmt_prefix(pb, sizeof(pb), &p), rd[i].code,
			       rd[i].excl ? " (exclude)" : "", s->name);
			goto out;
		}
	}
	for (size_t i = 0; i < na; i++) {
		struct moat_prefix p = { .family = ra[i].fam, .plen = ra[i].plen };

		memcpy(p.addr, ra[i].addr, 16);
		if (vt_store_present(db, source, &ra[i]) &&
		    !(nd && bsearch(&ra[i], rd, nd, sizeof(*rd), vt_rec_cmp))) {
			VT_ERR(err, errsz, "add: %s code 0x%08x%s is already listed "
			       "by %s", vt_fmt_prefix(pb, sizeof(pb), &p), ra[i].code,
			       ra[i].excl ? " (exclude)" : "", s->name);
			goto out;
		}
		if (vt_store_has_kind(db, source, &ra[i], !ra[i].excl, rd, nd)) {
			VT_ERR(err, errsz, "add: %s would be both listed and "
			       "excluded by %s", vt_fmt_prefix(pb, sizeof(pb), &p),
			       s->name);
			goto out;
		}
	}
	if (vt_v6_plens_after(db, source, 0, rd, nd, ra, na) > MOAT_V6_MAX_PLENS) {
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
		if (!vt_is_long(&rd[i]))
			continue;
		commit_long_del_at(db, vt_v4_addr(rd[i].addr) >> 8,
				   (uint32_t)vt_v4_find(db, source, &rd[i]));
	}
	big_load(db, na);
	for (size_t i = 0; i < na; i++) {
		if (!vt_is_long(&ra[i]))
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
		int c = vt_lrec_cmp(&r[mid], &k);

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
		qsort(nw, nnew, sizeof(*nw), vt_pe_qcmp);
	dels = malloc((ps->n ? ps->n : 1) * sizeof(*dels));
	adds = malloc((nnew ? nnew : 1) * sizeof(*adds));
	if (!dels || !adds)
		goto out;
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->e[i].source != src)
			continue;
		if (!(nnew && bsearch(&ps->e[i], nw, nnew, sizeof(*nw), vt_pe_qcmp)))
			dels[nd++] = ps->e[i];
	}
	for (size_t i = 0; i < nnew; i++) {
		long k = vt_ps_find(ps, &nw[i]);

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
	rc = vt_normalize(db, s, l, n, "entry", &r, &nr, &lr, &nl, &ign, err,
			  errsz);
	if (rc < 0)
		return rc;
	if (vt_v6_plens_after(db, source, 1, NULL, 0, r, nr) > MOAT_V6_MAX_PLENS) {
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

			b = vt_bucket(db, idx, &bn);
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
				b = vt_bucket(db, idx, &bn);
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
		vt_pool_reserve(db, nl);
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

/* vt_drop_where - remove stored entries matching pred (expiry, unknown
 * source); returns how many. */
size_t vt_drop_where(struct vt_db *db,
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
		b = vt_bucket(db, idx, &bn);
		for (uint32_t i = 0; i < bn; ) {
			if (!pred(db, b[i].source, b[i].expiry)) {
				i++;
				continue;
			}
			cnt_of(db, b[i].source)->expired++;
			commit_long_del_at(db, idx, i);
			dropped++;
			b = vt_bucket(db, idx, &bn);
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
		dropped = vt_drop_where(db, pred_expired, NULL, 0);
		db->exp24_lost = 0;
		for (uint32_t idx = 0; idx < MOAT_TBL24_ENTRIES; idx++) {
			uint32_t bn;
			const struct v4e *b = vt_bucket(db, idx, &bn);

			for (uint32_t j = 0; j < bn; j++)
				if (b[j].expiry) {
					if (vt_vec_push(x, idx) < 0)
						db->exp24_lost = 1;
					break;
				}
		}
	} else {
		if (x->n > 1)
			qsort(x->v, x->n, sizeof(*x->v), vt_cmp_u32);
		for (size_t i = 0; i < x->n; i++)
			if (i == 0 || x->v[i] != x->v[i - 1])
				x->v[k++] = x->v[i];
		x->n = k;
		dropped = vt_drop_where(db, pred_expired, x->v, x->n);
	}
	/* keep the /24s that still hold expiring entries; new lower bound */
	k = 0;
	for (size_t i = 0; i < x->n; i++) {
		uint32_t bn, keep = 0;
		const struct v4e *b = vt_bucket(db, x->v[i], &bn);

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
