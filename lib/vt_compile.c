/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_compile.c - the IPv4 compiler: the verdicts of one /24 from the store,
 * as one action (the tbl24 entry) or a group of 256 2-bit actions when they
 * differ inside it.  The prefixes shorter than /24 that cover it give every
 * source's say on the whole /24; each source's most specific /24../32
 * prefix replaces that say address by address.  The verdict rule is
 * vtable.h's; vt_publish.c calls this for the dirty /24s.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

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

/* vt_ensure_codes - scratch for n codes. */
int vt_ensure_codes(struct vt_db *db, size_t n)
{
	return vt_grow((void **)&db->codes, &db->codescap, n, sizeof(uint32_t));
}

/* vt_contrib_run - the entries es[b, *end) of one prefix of a sorted store
 * that belong to the source of es[b] (*end: where the next source starts,
 * at most e).  The first time that source is met under db->seen_stamp
 * (prefixes are visited longest first: its most specific prefix decides):
 * mark it seen, add what it says to acc (nothing when the prefix is an
 * exclude) and return 1; 0 when it was seen; -ENOMEM. */
int vt_contrib_run(struct vt_db *db, const struct pe *es, size_t b, size_t e,
		   size_t *end, struct vt_acc *acc)
{
	uint16_t src = es[b].source;
	uint16_t si = db->sidx[src] - 1;
	size_t j = b, nc = 0;
	int excl = 0;

	while (j < e && es[j].source == src)
		j++;
	*end = j;
	if (db->seen_gen[si] == db->seen_stamp)
		return 0;
	db->seen_gen[si] = db->seen_stamp;
	if (vt_ensure_codes(db, j - b) < 0)
		return -ENOMEM;
	for (size_t t = b; t < j; t++) {
		excl |= es[t].excl;
		db->codes[nc++] = es[t].code;
	}
	if (!excl)
		vt_source_contrib(&db->pol.sources[si], db->codes, nc, acc);
	return 1;
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
	vt_v4_bytes(a, idx << 8);
	db->seen_stamp++;
	/* longest first, so the first hit per source decides */
	for (int p = 23; p >= 0; p--) {
		size_t b, e;

		if (!db->s4.cnt[p])
			continue;
		vt_ps_prefix_range(&db->s4, a, (unsigned)p, &b, &e);
		if (b < e)
			*found = 1;
		while (b < e) {
			struct vt_acc c = { 0, 0, 0, 0 };
			size_t j;
			int rc = vt_contrib_run(db, db->s4.e, b, e, &j, &c);

			if (rc < 0)
				return -ENOMEM;
			if (rc) {
				out[n].source = db->s4.e[b].source;
				out[n].c = c;
				n++;
			}
			b = j;
		}
	}
	*nout = n;
	return 0;
}

/* vt_compile24 - the verdicts of /24 idx from the store: 1 with *g filled
 * when they differ inside the /24, else 0 with the uniform *act. */
int vt_compile24(struct vt_db *db, uint32_t idx, struct moat_group *g,
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
	b = vt_bucket(db, idx, &bn);
	if (bn == 0) {
		*act = base_act;
		return 0;
	}
	if (vt_grow((void **)&db->scr, &db->scrcap, bn, sizeof(*db->scr)) < 0 ||
	    vt_grow((void **)&db->ctb, &db->ctbcap, bn, sizeof(*db->ctb)) < 0 ||
	    vt_ensure_codes(db, bn) < 0)
		return -ENOMEM;
	memcpy(db->scr, b, bn * sizeof(*b));
	if (bn > 1)
		qsort(db->scr, bn, sizeof(*db->scr), v4e_cmp);
	db->acc_stamp++;
	for (uint32_t i = 0; i < bn; ) {
		uint16_t src = db->scr[i].source;
		const struct vt_source *s = vt_src_of(db, src);
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
