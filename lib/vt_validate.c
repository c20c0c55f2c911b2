/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_validate.c - a change to the listings of a source, checked before it
 * touches the db: each listing's source, prefix, flags and (operator
 * entries) action; DNSBL answers the source's policy ignores are dropped
 * and counted, not refused; the rest sorted (a radix sort on a 64-bit key
 * for big loads, 16-byte compact records for IPv4 /24../32) and refused on
 * duplicates.  Then the change against the store: a delete must be stored,
 * an add must not be, a prefix is never both listed and excluded, at most
 * MOAT_V6_MAX_PLENS IPv6 lengths.  Nothing here changes the db, so a change
 * that fails leaves it exactly as it was (vtable.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

/* vt_rec_cmp - family, address, plen, exclude, code. */
int vt_rec_cmp(const void *x, const void *y)
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

/* vt_fmt_prefix - text form of a prefix for messages. */
const char *vt_fmt_prefix(char *buf, size_t sz, const struct moat_prefix *p)
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

/* sort_ties - after a radix sort by key: items[0..n) (of size sz) in
 * order of the 16-byte keys[] that start with a uint64_t (keys[i] is item
 * i's), each run of equal keys sorted by cmp. */
static void sort_ties(void *items, size_t sz, const void *keys, size_t n,
		      int (*cmp)(const void *, const void *))
{
	for (size_t i = 0; i < n; ) {
		size_t j = i + 1;

		while (j < n && key16(keys, j) == key16(keys, i))
			j++;
		if (j - i > 1)
			qsort((unsigned char *)items + i * sz, j - i, sz, cmp);
		i = j;
	}
}

/* A sort key for records: 64 bits that order them, ties broken by
 * vt_rec_cmp (codes, and IPv6 low bits). */
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
 * then vt_rec_cmp within equal keys; returns the sorted array (r itself, or a
 * new one with r freed); falls back to qsort in place without memory. */
static struct rec *sort_recs(struct rec *r, size_t n)
{
	struct sortkey *a;
	struct rec *out;

	if (n < 4096) {
		if (n > 1)
			qsort(r, n, sizeof(*r), vt_rec_cmp);
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
		qsort(r, n, sizeof(*r), vt_rec_cmp);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = r[a[i].i];
	free(r);
	sort_ties(out, sizeof(*out), a, n, vt_rec_cmp);
	free(a);
	return out;
}

_Static_assert(sizeof(struct lrec) == 16 && offsetof(struct lrec, key) == 0,
	       "radix16 sorts 16-byte items by a leading uint64_t");

/* vt_lrec_cmp - key, then code. */
int vt_lrec_cmp(const void *x, const void *y)
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
			qsort(a, n, sizeof(*a), vt_lrec_cmp);
		return;
	}
	sort_ties(a, sizeof(*a), a, n, vt_lrec_cmp);
}

/* vt_normalize - check listings, drop ignored answers (counted in *ign), and
 * return sorted records without duplicates.  what = "add"/"del"/"entry". */
int vt_normalize(const struct vt_db *db, const struct vt_source *s,
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
			       vt_fmt_prefix(pb, sizeof(pb), &m->pfx), e2);
			goto bad;
		}
		if (m->exclude > 1 || m->pad) {
			VT_ERR(err, errsz, "%s %zu (%s): bad exclude flag or padding",
			       what, i, vt_fmt_prefix(pb, sizeof(pb), &m->pfx));
			goto bad;
		}
		if (!m->exclude && s->kind == VT_SRC_STATIC &&
		    m->code != MOAT_ACT_TARPIT && m->code != MOAT_ACT_DROP &&
		    m->code != MOAT_ACT_ALLOW) {
			VT_ERR(err, errsz, "%s %zu (%s): operator action %u is not "
			       "tarpit, drop or allow", what, i,
			       vt_fmt_prefix(pb, sizeof(pb), &m->pfx), m->code);
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
			lr[nl].key = (uint64_t)vt_v4_addr(m->pfx.addr) << 32 |
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
		if (vt_rec_cmp(&r[i - 1], &r[i]) == 0) {
			VT_ERR(err, errsz, "%s: duplicate entry %s code 0x%08x%s",
			       what, vt_fmt_prefix(pb, sizeof(pb), &p), r[i].code,
			       r[i].excl ? " (exclude)" : "");
			goto bad;
		}
		if (rec_same_prefix(&r[i - 1], &r[i]) &&
		    r[i - 1].excl != r[i].excl) {
			VT_ERR(err, errsz, "%s: %s both listed and excluded",
			       what, vt_fmt_prefix(pb, sizeof(pb), &p));
			goto bad;
		}
	}
	sort_lrecs(lr, nl);
	for (size_t i = 1; i < nl; i++) {
		if ((lr[i].key >> 8) != (lr[i - 1].key >> 8))
			continue;
		if (vt_lrec_cmp(&lr[i - 1], &lr[i]) == 0) {
			VT_ERR(err, errsz, "%s: duplicate entry %s code 0x%08x%s",
			       what, vt_fmt_prefix(pb, sizeof(pb), &l[lr[i].idx].pfx),
			       lr[i].code, LREC_EXCL(lr[i].key) ? " (exclude)" : "");
			goto bad;
		}
		if (lr[i].key != lr[i - 1].key) {
			VT_ERR(err, errsz, "%s: %s both listed and excluded", what,
			       vt_fmt_prefix(pb, sizeof(pb), &l[lr[i].idx].pfx));
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

/* vt_rec_to_pe - a record as a sorted-store entry. */
void vt_rec_to_pe(const struct rec *r, uint16_t src, uint32_t expiry,
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

/* vt_store_present - r (of src) is stored now. */
int vt_store_present(const struct vt_db *db, uint16_t src,
		     const struct rec *r)
{
	struct pe k;

	if (vt_is_long(r))
		return vt_v4_find(db, src, r) >= 0;
	vt_rec_to_pe(r, src, 0, &k);
	return vt_ps_find(r->fam == MOAT_AF_INET ? &db->s4 : &db->s6, &k) >= 0;
}

/* vt_store_has_kind - src stores an entry at r's prefix with exclude == excl
 * that is not among dels. */
int vt_store_has_kind(const struct vt_db *db, uint16_t src,
		      const struct rec *r, int excl,
		      const struct rec *dels, size_t ndel)
{
	struct rec t = *r;

	t.excl = (uint8_t)excl; /* keys are copied with *r */
	if (vt_is_long(r)) {
		uint32_t n;
		const struct v4e *b = vt_bucket(db, vt_v4_addr(r->addr) >> 8, &n);

		for (uint32_t i = 0; i < n; i++) {
			if (b[i].source != src || b[i].host != r->addr[3] ||
			    PF_PLEN(b[i].pf) != r->plen ||
			    !!(b[i].pf & PF_EXCL) != excl)
				continue;
			t.code = b[i].code;
			if (!(ndel && bsearch(&t, dels, ndel, sizeof(*dels), vt_rec_cmp)))
				return 1;
		}
		return 0;
	}
	const struct pstore *ps = r->fam == MOAT_AF_INET ? &db->s4 : &db->s6;
	size_t b, e;

	vt_ps_prefix_range(ps, r->addr, r->plen, &b, &e);
	for (size_t i = b; i < e; i++) {
		if (ps->e[i].source != src || ps->e[i].excl != excl)
			continue;
		t.code = ps->e[i].code;
		if (!(ndel && bsearch(&t, dels, ndel, sizeof(*dels), vt_rec_cmp)))
			return 1;
	}
	return 0;
}

/* vt_v6_plens_after - distinct IPv6 lengths if src's v6 entries were
 * replaced (replace) or changed by dels/adds. */
unsigned vt_v6_plens_after(const struct vt_db *db, uint16_t src,
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
