/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_compile6.c - the IPv6 compiler: exact-match rules, one per distinct
 * stored prefix whose action differs from that of its nearest enclosing
 * stored prefix (PASS at the top), read longest length first by the fast
 * path.  Publish recompiles only the ranges under the prefixes changed
 * since the last publish (a stack walk over the sorted store) and diffs
 * the result against the live rules at the same keys only, so k IPv6
 * changes cost O(k log n) plus the entries inside the changed prefixes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt_internal.h"

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
	vt_mask_bytes(m, addr, f->plen);
	return memcmp(m, f->addr, 16) == 0;
}

/* contrib_range - fold the sources of entries[b, e) not seen yet into acc,
 * marking them seen (the most specific prefix of a source decides). */
static int contrib_range(struct vt_db *db, const struct pe *es, size_t b,
			 size_t e, struct vt_acc *acc)
{
	while (b < e) {
		size_t j;

		if (vt_contrib_run(db, es, b, e, &j, acc) < 0)
			return -ENOMEM;
		b = j;
	}
	return 0;
}

/* rv_push - append the rule (p's prefix, act). */
static int rv_push(struct rulevec *rv, const struct pe *p, uint32_t act)
{
	struct vt_v6rule *r;

	if (vt_grow((void **)&rv->v, &rv->cap, rv->n + 1, sizeof(*rv->v)) < 0)
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

	vt_mask_bytes(m, addr, qp);
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
		vt_ps_prefix_range(&db->s6, qa, p, &b, &e);
		if (b < e && v6_frame(db, st, &depth, b, e, 0, r, vis) < 0)
			return -ENOMEM;
	}
	memset(&key, 0, sizeof(key));
	memcpy(key.addr, qa, 16);
	key.plen = (uint8_t)qp;
	i = vt_ps_lower(&db->s6, &key);
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

/* vt_compile_v6 - the changed IPv6 rules.  Whole table dirty: every rule,
 * old and new.  Else per disjoint dirty range: the new rules, and as old
 * the live rules at the range's candidate keys (every distinct stored
 * prefix inside it, and the changed prefixes themselves, which covers
 * rules of prefixes deleted since): O(changes + entries inside the
 * ranges) hash probes, independent of the number of IPv6 rules. */
int vt_compile_v6(struct vt_db *db, struct v6change *ch)
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
			qsort(cand.v, cand.n, sizeof(*cand.v), vt_v6rule_qcmp);
		for (size_t k = 0; k < cand.n; k++) {
			const struct vt_v6rule *r;

			if (k && !vt_v6key_cmp(&cand.v[k].key, &cand.v[k - 1].key))
				continue;
			r = vt_image_v6_find(live, &cand.v[k].key);
			if (!r)
				continue;
			if (vt_grow((void **)&ch->old.v, &ch->old.cap, ch->old.n + 1,
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
