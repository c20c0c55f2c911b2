/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_image.c - compiled verdict images (bpf/moat_abi.h layout) in userspace:
 * the live copy moat-controld diffs against, lookups through the very
 * inline code of bpf/moat_lookup.h, applying update sequences as a fast path
 * would, and the safely ordered diff between two images.  IPv6 rules live
 * in an open-addressing hash (as in the XDP map), so applying k updates
 * costs O(k) whatever the table size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vt_internal.h"

#define THP_MIN (4u << 20) /* smaller blocks: not worth a syscall */

/* vt_thp - MADV_HUGEPAGE over the pages of [p, p + len).  The whole
 * mapping of a big malloc block, not its 2 MiB-aligned middle: advising a
 * part splits the mapping, mremap() cannot move a split one, and realloc()
 * then copies (a 10M-entry pool grown by half: a transient copy of ~200
 * MiB).  The kernel uses huge pages where the range is aligned anyway. */
void vt_thp(void *p, size_t len)
{
	const uintptr_t page = 4096;
	uintptr_t b = (uintptr_t)p & ~(page - 1);
	uintptr_t e = ((uintptr_t)p + len + page - 1) & ~(page - 1);

	if (!p || len < THP_MIN)
		return;
	(void)madvise((void *)b, e - b, MADV_HUGEPAGE);
}

/* vt_v6key_cmp - address bytes, then plen. */
int vt_v6key_cmp(const struct moat_v6_key *a, const struct moat_v6_key *b)
{
	int c = memcmp(a->addr, b->addr, 16);

	if (c)
		return c;
	return a->plen < b->plen ? -1 : a->plen > b->plen;
}

/* v6_hash - slot hash of a rule key (all 20 bytes). */
static uint64_t v6_hash(const struct moat_v6_key *k)
{
	uint64_t a, b;

	memcpy(&a, k->addr, 8);
	memcpy(&b, k->addr + 8, 8);
	a = (a ^ (uint64_t)k->plen * 0x9e3779b97f4a7c15ull) * 0xff51afd7ed558ccdull;
	a ^= a >> 29;
	a = (a ^ b) * 0xc4ceb9fe1a85ec53ull;
	return a ^ (a >> 32);
}

/* vt_image_v6_find - probe from the key's slot to its first empty one. */
const struct vt_v6rule *vt_image_v6_find(const struct vt_image *img,
					 const struct moat_v6_key *k)
{
	size_t mask = img->v6cap - 1, i;

	if (!img->nv6)
		return NULL;
	for (i = (size_t)v6_hash(k) & mask; img->v6[i].key.plen != VT_V6_EMPTY;
	     i = (i + 1) & mask)
		if (memcmp(&img->v6[i].key, k, sizeof(*k)) == 0)
			return &img->v6[i];
	return NULL;
}

/* v6_slots - a table of cap empty slots. */
static struct vt_v6rule *v6_slots(size_t cap)
{
	struct vt_v6rule *t = malloc(cap * sizeof(*t));

	if (t)
		for (size_t i = 0; i < cap; i++)
			t[i].key.plen = VT_V6_EMPTY;
	return t;
}

/* v6_insert_new - place a rule known to be absent (room guaranteed). */
static void v6_insert_new(struct vt_v6rule *t, size_t cap,
			  const struct vt_v6rule *r)
{
	size_t i = (size_t)v6_hash(&r->key) & (cap - 1);

	while (t[i].key.plen != VT_V6_EMPTY)
		i = (i + 1) & (cap - 1);
	t[i] = *r;
}

/* v6_rehash - move the rules into a table of cap slots. */
static int v6_rehash(struct vt_image *img, size_t cap)
{
	struct vt_v6rule *t = v6_slots(cap);

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < img->v6cap; i++)
		if (img->v6[i].key.plen != VT_V6_EMPTY)
			v6_insert_new(t, cap, &img->v6[i]);
	free(img->v6);
	img->v6 = t;
	img->v6cap = cap;
	return 0;
}

/* t6_widen - the image's trie rebuilt over the wide root (moat_trie6.h)
 * from its rules, once they reach VT_TRIE6_WIDE_MIN: a large table looks
 * its addresses up in the root and one bucket; a small one keeps the
 * 256 KiB root.  The old trie stays on any failure. */
static int t6_widen(struct vt_image *img)
{
	struct vt_trie6 *w = vt_trie6_new_owned_root(MOAT_V6T_ROOT_BITS_WIDE,
						     VT_T6_NODES_MAX,
						     VT_T6_BUCKETS_MAX);
	int rc = 0;

	if (!w)
		return -ENOMEM;
	for (size_t i = 0; i < img->v6cap && rc == 0; i++)
		if (img->v6[i].key.plen != VT_V6_EMPTY)
			rc = vt_trie6_put(w, img->v6[i].key.addr,
					  img->v6[i].key.plen, img->v6[i].act);
	if (rc < 0) {
		vt_trie6_free(w);
		return rc;
	}
	vt_trie6_grace_done(w);
	vt_trie6_free(img->t6);
	img->t6 = w;
	return 0;
}

/* t6_put - rule k := act in the image's trie (made on first use, widened
 * at VT_TRIE6_WIDE_MIN rules).  The image has no concurrent reader: freed
 * trie memory is reusable at once. */
static int t6_put(struct vt_image *img, const struct moat_v6_key *k,
		  uint32_t act)
{
	int rc;

	if (!img->t6 &&
	    !(img->t6 = vt_trie6_new_owned(VT_T6_NODES_MAX, VT_T6_BUCKETS_MAX)))
		return -ENOMEM;
	if (img->nv6 >= VT_TRIE6_WIDE_MIN &&
	    vt_trie6_storage(img->t6)->root_bits != MOAT_V6T_ROOT_BITS_WIDE &&
	    (rc = t6_widen(img)) < 0)
		return rc;
	rc = vt_trie6_put(img->t6, k->addr, k->plen, act);
	vt_trie6_grace_done(img->t6);
	return rc;
}

/* vt_image_v6_put - overwrite in place, or insert (load kept <= 1/2); the
 * trie too.  0, -ENOMEM or -ENOSPC (trie full), the image unchanged. */
int vt_image_v6_put(struct vt_image *img, const struct moat_v6_key *k,
		    uint32_t act)
{
	struct vt_v6rule r;
	struct vt_v6rule *f = (struct vt_v6rule *)vt_image_v6_find(img, k);
	int rc;

	if (f) {
		if ((rc = t6_put(img, k, act)) < 0)
			return rc;
		f->act = act;
		return 0;
	}
	if (2 * (img->nv6 + 1) > img->v6cap &&
	    v6_rehash(img, img->v6cap ? img->v6cap * 2 : 64) < 0)
		return -ENOMEM;
	if ((rc = t6_put(img, k, act)) < 0)
		return rc;
	r.key = *k;
	r.act = act;
	v6_insert_new(img->v6, img->v6cap, &r);
	img->nv6++;
	img->v6cnt[k->plen]++;
	return 0;
}

/* vt_image_v6_del - backward-shift deletion: no tombstones, so probes
 * stay short however many rules come and go. */
void vt_image_v6_del(struct vt_image *img, const struct moat_v6_key *k)
{
	const struct vt_v6rule *f = vt_image_v6_find(img, k);
	size_t mask = img->v6cap - 1, i, j;

	if (!f)
		return;
	/* a delete that rebuilds a bucket allocates one: it fails only when
	 * the reservation (VT_T6_BUCKETS_MAX) or malloc is exhausted, and
	 * then the trie keeps the rule (vt_image_lookup_v6 still answers
	 * with it; not reported: this function returns nothing) */
	(void)vt_trie6_del(img->t6, k->addr, k->plen);
	vt_trie6_grace_done(img->t6);
	img->v6cnt[k->plen]--;
	img->nv6--;
	i = (size_t)(f - img->v6);
	for (j = (i + 1) & mask; img->v6[j].key.plen != VT_V6_EMPTY;
	     j = (j + 1) & mask) {
		size_t h = (size_t)v6_hash(&img->v6[j].key) & mask;

		/* j may move to the hole at i unless its home lies in (i, j] */
		if (((j - h) & mask) >= ((j - i) & mask)) {
			img->v6[i] = img->v6[j];
			i = j;
		}
	}
	img->v6[i].key.plen = VT_V6_EMPTY;
}

/* vt_v6rule_qcmp - qsort order of rules: vt_v6key_cmp. */
int vt_v6rule_qcmp(const void *x, const void *y)
{
	return vt_v6key_cmp(&((const struct vt_v6rule *)x)->key,
			    &((const struct vt_v6rule *)y)->key);
}

/* vt_image_v6_sorted - collect and sort (whole-image operations only). */
int vt_image_v6_sorted(const struct vt_image *img, struct vt_v6rule **out)
{
	struct vt_v6rule *r;
	size_t n = 0;

	*out = NULL;
	if (!img->nv6)
		return 0;
	r = malloc(img->nv6 * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < img->v6cap; i++)
		if (img->v6[i].key.plen != VT_V6_EMPTY)
			r[n++] = img->v6[i];
	qsort(r, n, sizeof(*r), vt_v6rule_qcmp);
	*out = r;
	return 0;
}

/* The shared lookup, expanded over this file's arrays. */
#define MOAT_TBL24_GET(ctx, idx) (((const struct vt_image *)(ctx))->tbl24[(idx)])
#define MOAT_GROUP_GET(ctx, idx)                                         \
	((idx) < ((const struct vt_image *)(ctx))->ghi ?                 \
	 &((const struct vt_image *)(ctx))->groups[(idx)] : NULL)
#define MOAT_V6_PLENS_GET(ctx) (&((const struct vt_image *)(ctx))->plb)
#define MOAT_V6_GET(ctx, keyp)                                             \
	({                                                                 \
		const struct vt_v6rule *r_ =                               \
			vt_image_v6_find((const struct vt_image *)(ctx), (keyp)); \
		r_ ? &r_->act : NULL;                                      \
	})
#include "moat_lookup.h"

/* vt_image_lookup_v4 - one IPv4 address through moat_lookup_v4(). */
uint32_t vt_image_lookup_v4(const struct vt_image *img, uint32_t addr_host)
{
	return moat_lookup_v4((void *)img, addr_host);
}

/* vt_image_lookup_v6 - one IPv6 address through moat_lookup_v6t(). */
uint32_t vt_image_lookup_v6(const struct vt_image *img, const uint8_t addr[16])
{
	return img->t6 ? vt_trie6_lookup(vt_trie6_storage(img->t6), addr)
		       : MOAT_ACT_PASS;
}

/* vt_image_lookup_v6_rules - the same through moat_lookup_v6(): the rules
 * per prefix length, as the XDP and DPDK fast paths still read them. */
uint32_t vt_image_lookup_v6_rules(const struct vt_image *img,
				  const uint8_t addr[16])
{
	return moat_lookup_v6((void *)img, addr);
}

/* vt_image_v6_get - the action word of the rule with this key, or NULL. */
const uint32_t *vt_image_v6_get(const struct vt_image *img,
				const struct moat_v6_key *key)
{
	const struct vt_v6rule *r = vt_image_v6_find(img, key);

	return r ? &r->act : NULL;
}

/* vt_image_view - the image's arrays for the inline lookups of vt_view.h. */
void vt_image_view(const struct vt_image *img, struct vt_image_view *view)
{
	view->tbl24 = img->tbl24;
	view->groups = img->groups;
	view->ngroups = img->ghi;
	view->v6_plens = &img->plb;
	view->img = img;
	view->v6t = img->t6 ? vt_trie6_storage(img->t6) : NULL;
}

/* vt_image_new - all-PASS image; tbl24 by calloc (lazily zeroed pages). */
struct vt_image *vt_image_new(void)
{
	struct vt_image *img = calloc(1, sizeof(*img));

	if (!img)
		return NULL;
	img->tbl24 = calloc(MOAT_TBL24_ENTRIES, sizeof(uint32_t));
	if (!img->tbl24) {
		free(img);
		return NULL;
	}
	return img;
}

/* vt_image_free - release everything. */
void vt_image_free(struct vt_image *img)
{
	if (!img)
		return;
	if (!img->text)
		free(img->tbl24);
	if (!img->gext)
		free(img->groups);
	free(img->v6);
	vt_trie6_free(img->t6);
	free(img);
}

/* vt_image_clone - deep copy. */
struct vt_image *vt_image_clone(const struct vt_image *img)
{
	struct vt_image *c = vt_image_new();

	if (!c)
		return NULL;
	memcpy(c->tbl24, img->tbl24, MOAT_TBL24_ENTRIES * sizeof(uint32_t));
	if (img->ghi && vt_image_grow_groups(c, img->ghi) < 0)
		goto fail;
	if (img->ghi)
		memcpy(c->groups, img->groups, img->ghi * sizeof(*c->groups));
	c->ghi = img->ghi;
	if (img->v6cap) {
		c->v6 = malloc(img->v6cap * sizeof(*c->v6));
		if (!c->v6)
			goto fail;
		memcpy(c->v6, img->v6, img->v6cap * sizeof(*c->v6));
		c->nv6 = img->nv6;
		c->v6cap = img->v6cap;
		for (size_t i = 0; i < img->v6cap; i++)
			if (img->v6[i].key.plen != VT_V6_EMPTY &&
			    t6_put(c, &img->v6[i].key, img->v6[i].act) < 0)
				goto fail;
	}
	memcpy(c->v6cnt, img->v6cnt, sizeof(c->v6cnt));
	c->plb = img->plb;
	return c;
fail:
	vt_image_free(c);
	return NULL;
}

/* vt_image_grow_groups - capacity for indices < want (doubling). */
int vt_image_grow_groups(struct vt_image *img, uint32_t want)
{
	uint32_t cap = img->gcap ? img->gcap : 1024;
	struct moat_group *g;

	if (want <= img->gcap)
		return 0;
	if (img->gext)
		return -ERANGE; /* beyond the fast path's map: what it says too */
	if (want > MOAT_GROUP_MAX)
		return -ENOSPC;
	while (cap < want)
		cap = cap > MOAT_GROUP_MAX / 2 ? MOAT_GROUP_MAX : cap * 2;
	g = realloc(img->groups, (size_t)cap * sizeof(*g));
	if (!g)
		return -ENOMEM;
	vt_thp(g, (size_t)cap * sizeof(*g));
	memset(g + img->gcap, 0, (size_t)(cap - img->gcap) * sizeof(*g));
	img->groups = g;
	img->gcap = cap;
	return 0;
}

/* vt_image_apply - apply updates in order, as a fast path would. */
int vt_image_apply(struct vt_image *img, const struct moat_update *u,
		   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc;

		switch (u[i].kind) {
		case MOAT_UPD_GROUP:
			if (u[i].index > MOAT_GROUP_MAX)
				return -EINVAL;
			rc = vt_image_grow_groups(img, u[i].index + 1);
			if (rc < 0)
				return rc;
			img->groups[u[i].index] = u[i].u.group;
			if (u[i].index >= img->ghi)
				img->ghi = u[i].index + 1;
			break;
		case MOAT_UPD_TBL24:
			if (u[i].index >= MOAT_TBL24_ENTRIES)
				return -EINVAL;
			img->tbl24[u[i].index] = u[i].value;
			break;
		case MOAT_UPD_V6_PLENS:
			if (u[i].u.plens.n > MOAT_V6_MAX_PLENS)
				return -EINVAL;
			vt_image_set_plens(img, &u[i].u.plens);
			break;
		case MOAT_UPD_V6_PUT:
			if (u[i].u.key.plen > 128)
				return -EINVAL;
			rc = vt_image_v6_put(img, &u[i].u.key, u[i].value);
			if (rc < 0)
				return rc;
			break;
		case MOAT_UPD_V6_DEL:
			if (u[i].u.key.plen > 128)
				return -EINVAL;
			vt_image_v6_del(img, &u[i].u.key);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* vt_image_stats - sizes for metrics and for sizing fast-path maps. */
void vt_image_stats(const struct vt_image *img, struct vt_image_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		uint32_t e = img->tbl24[i];

		if (!e)
			continue;
		st->tbl24_nonzero++;
		st->groups_used += moat_tbl24_is_group(e);
	}
	st->groups_hiwater = img->ghi;
	st->v6_rules = (uint32_t)img->nv6;
	st->v6_plens = vt_image_plens(img)->n;
	if (img->t6) {
		struct vt_trie6_stats ts;

		vt_trie6_stats(img->t6, &ts);
		st->v6_trie_bytes = ts.bytes;
		st->v6_trie_nodes = ts.nodes;
		st->v6_trie_buckets = ts.buckets;
	}
	st->bytes = (uint64_t)MOAT_TBL24_ENTRIES * 4 +
		    (uint64_t)st->groups_used * MOAT_GROUP_BYTES +
		    (uint64_t)img->nv6 * (sizeof(struct moat_v6_key) + 4);
}

/* vt_ups_push - append one zeroed update slot. */
struct moat_update *vt_ups_push(struct moat_update **ups, size_t *n,
				size_t *cap)
{
	struct moat_update *u;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct moat_update *p = realloc(*ups, c * sizeof(*p));

		if (!p)
			return NULL;
		*ups = p;
		*cap = c;
	}
	u = &(*ups)[(*n)++];
	memset(u, 0, sizeof(*u));
	return u;
}

/* vt_plens_from_counts - lengths with a positive count, longest first. */
void vt_plens_from_counts(const int64_t cnt[129], struct moat_v6_plens *out)
{
	memset(out, 0, sizeof(*out));
	for (int l = 128; l >= 0; l--)
		if (cnt[l] > 0 && out->n < MOAT_V6_MAX_PLENS)
			out->len[out->n++] = (uint8_t)l;
}

/* plens_union - distinct lengths of a and b, longest first (capped). */
static void plens_union(const struct moat_v6_plens *a,
			const struct moat_v6_plens *b, struct moat_v6_plens *out)
{
	uint8_t seen[129] = { 0 };

	for (uint32_t i = 0; i < a->n && i < MOAT_V6_MAX_PLENS; i++)
		seen[a->len[i]] = 1;
	for (uint32_t i = 0; i < b->n && i < MOAT_V6_MAX_PLENS; i++)
		seen[b->len[i]] = 1;
	memset(out, 0, sizeof(*out));
	for (int l = 128; l >= 0; l--)
		if (seen[l] && out->n < MOAT_V6_MAX_PLENS)
			out->len[out->n++] = (uint8_t)l;
}

/* plens_eq - same lengths in the same order. */
static int plens_eq(const struct moat_v6_plens *a, const struct moat_v6_plens *b)
{
	return a->n == b->n && memcmp(a->len, b->len, a->n) == 0;
}

/* cmp_upd_plen_desc / _asc - order puts longest first, deletes shortest
 * first; ties by address so the order is deterministic. */
static int cmp_upd_plen_desc(const void *x, const void *y)
{
	const struct moat_update *a = x, *b = y;

	if (a->u.key.plen != b->u.key.plen)
		return a->u.key.plen > b->u.key.plen ? -1 : 1;
	return memcmp(a->u.key.addr, b->u.key.addr, 16);
}

/* cmp_upd_plen_asc - deletes: shortest prefix first. */
static int cmp_upd_plen_asc(const void *x, const void *y)
{
	return -cmp_upd_plen_desc(x, y);
}

/* vt_v6_diff - puts (longest first) then deletes (shortest first), with
 * plens widened before and narrowed after. */
int vt_v6_diff(const struct vt_v6rule *old, size_t nold,
	       const struct moat_v6_plens *oldpl,
	       const struct vt_v6rule *nw, size_t nnew,
	       const struct moat_v6_plens *newpl,
	       struct moat_update **ups, size_t *n, size_t *cap)
{
	struct moat_v6_plens uni;
	struct moat_update *u;
	size_t i = 0, j = 0, put0, del0;

	plens_union(oldpl, newpl, &uni);
	if (!plens_eq(&uni, oldpl)) {
		if (!(u = vt_ups_push(ups, n, cap)))
			return -ENOMEM;
		u->kind = MOAT_UPD_V6_PLENS;
		u->u.plens = uni;
	}
	put0 = *n;
	while (j < nnew) {
		int c = i < nold ? vt_v6key_cmp(&old[i].key, &nw[j].key) : 1;

		if (c < 0) {
			i++;
			continue;
		}
		if (c == 0 && old[i].act == nw[j].act) {
			i++;
			j++;
			continue;
		}
		if (!(u = vt_ups_push(ups, n, cap)))
			return -ENOMEM;
		u->kind = MOAT_UPD_V6_PUT;
		u->value = nw[j].act;
		u->u.key = nw[j].key;
		if (c == 0)
			i++;
		j++;
	}
	if (*n - put0 > 1)
		qsort(*ups + put0, *n - put0, sizeof(**ups), cmp_upd_plen_desc);
	del0 = *n;
	for (i = 0, j = 0; i < nold; ) {
		int c = j < nnew ? vt_v6key_cmp(&old[i].key, &nw[j].key) : -1;

		if (c > 0) {
			j++;
			continue;
		}
		if (c < 0) {
			if (!(u = vt_ups_push(ups, n, cap)))
				return -ENOMEM;
			u->kind = MOAT_UPD_V6_DEL;
			u->u.key = old[i].key;
		} else {
			j++;
		}
		i++;
	}
	if (*n - del0 > 1)
		qsort(*ups + del0, *n - del0, sizeof(**ups), cmp_upd_plen_asc);
	if (!plens_eq(&uni, newpl)) {
		if (!(u = vt_ups_push(ups, n, cap)))
			return -ENOMEM;
		u->kind = MOAT_UPD_V6_PLENS;
		u->u.plens = *newpl;
	}
	return 0;
}

/* entry_group - the group an entry points at in img, or NULL. */
static const struct moat_group *entry_group(const struct vt_image *img,
					    uint32_t e)
{
	uint32_t g = moat_tbl24_group(e);

	return g < img->ghi ? &img->groups[g] : NULL;
}

/* same_verdicts - two tbl24 entries (of two images) give every address of
 * the /24 the same action. */
static int same_verdicts(const struct vt_image *a, uint32_t ea,
			 const struct vt_image *b, uint32_t eb)
{
	const struct moat_group *ga, *gb;
	struct moat_group ta, tb;

	if (!moat_tbl24_is_group(ea) && !moat_tbl24_is_group(eb))
		return ea == eb;
	ga = moat_tbl24_is_group(ea) ? entry_group(a, ea) : NULL;
	gb = moat_tbl24_is_group(eb) ? entry_group(b, eb) : NULL;
	if (!ga) {
		memset(&ta, moat_tbl24_is_group(ea) ? 0 :
		       (int)(moat_tbl24_action(ea) * 0x55u), sizeof(ta));
		ga = &ta;
	}
	if (!gb) {
		memset(&tb, moat_tbl24_is_group(eb) ? 0 :
		       (int)(moat_tbl24_action(eb) * 0x55u), sizeof(tb));
		gb = &tb;
	}
	return memcmp(ga, gb, sizeof(*ga)) == 0;
}

/* vt_image_diff - updates taking old to new_img; new groups go to indices
 * at or above old's high-water mark, never over a group old may use. */
int vt_image_diff(const struct vt_image *old, const struct vt_image *new_img,
		  struct moat_update **ups, size_t *n)
{
	size_t cnt = 0, cap = 0;
	struct moat_update *out = NULL, *u;
	struct vt_v6rule *ro = NULL, *rn = NULL;
	uint32_t next = old->ghi;

	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		uint32_t eo = old->tbl24[i], en = new_img->tbl24[i];

		if (eo == 0 && en == 0)
			continue;
		if (same_verdicts(old, eo, new_img, en))
			continue;
		if (moat_tbl24_is_group(en)) {
			const struct moat_group *g = entry_group(new_img, en);

			if (next > MOAT_GROUP_MAX)
				goto nomem;
			if (!(u = vt_ups_push(&out, &cnt, &cap)))
				goto nomem;
			u->kind = MOAT_UPD_GROUP;
			u->index = next;
			if (g)
				u->u.group = *g;
			en = moat_tbl24_make_group(next++);
		}
		if (!(u = vt_ups_push(&out, &cnt, &cap)))
			goto nomem;
		u->kind = MOAT_UPD_TBL24;
		u->index = i;
		u->value = en;
	}
	if (vt_image_v6_sorted(old, &ro) < 0 ||
	    vt_image_v6_sorted(new_img, &rn) < 0 ||
	    vt_v6_diff(ro, old->nv6, vt_image_plens(old), rn, new_img->nv6,
		       vt_image_plens(new_img), &out, &cnt, &cap) < 0)
		goto nomem;
	free(ro);
	free(rn);
	*ups = out;
	*n = cnt;
	return 0;
nomem:
	free(ro);
	free(rn);
	free(out);
	return -ENOMEM;
}

/* vt_image_full - the image as updates for an empty fast path. */
int vt_image_full(const struct vt_image *img, struct moat_update **ups,
		  size_t *n)
{
	struct vt_image *empty = calloc(1, sizeof(*empty));
	size_t cnt = 0, cap = 0;
	struct moat_update *out = NULL, *u;
	struct vt_v6rule *r = NULL;
	int rc = -ENOMEM;

	if (!empty)
		return -ENOMEM;
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++) {
		uint32_t e = img->tbl24[i];

		if (!e)
			continue;
		if (moat_tbl24_is_group(e)) {
			const struct moat_group *g = entry_group(img, e);

			if (!(u = vt_ups_push(&out, &cnt, &cap)))
				goto out;
			u->kind = MOAT_UPD_GROUP;
			u->index = moat_tbl24_group(e);
			if (g)
				u->u.group = *g;
		}
		if (!(u = vt_ups_push(&out, &cnt, &cap)))
			goto out;
		u->kind = MOAT_UPD_TBL24;
		u->index = i;
		u->value = e;
	}
	if (vt_image_v6_sorted(img, &r) < 0 ||
	    vt_v6_diff(NULL, 0, vt_image_plens(empty), r, img->nv6,
		       vt_image_plens(img), &out, &cnt, &cap) < 0)
		goto out;
	*ups = out;
	*n = cnt;
	out = NULL;
	rc = 0;
out:
	free(out);
	free(r);
	free(empty);
	return rc;
}

/* vt_image_equal_verdicts - same action everywhere (group indices aside). */
int vt_image_equal_verdicts(const struct vt_image *a, const struct vt_image *b)
{
	for (uint32_t i = 0; i < MOAT_TBL24_ENTRIES; i++)
		if (!same_verdicts(a, a->tbl24[i], b, b->tbl24[i]))
			return 0;
	if (a->nv6 != b->nv6 || !plens_eq(vt_image_plens(a), vt_image_plens(b)))
		return 0;
	for (size_t i = 0; i < a->v6cap; i++) {
		const struct vt_v6rule *r;

		if (a->v6[i].key.plen == VT_V6_EMPTY)
			continue;
		r = vt_image_v6_find(b, &a->v6[i].key);
		if (!r || r->act != a->v6[i].act)
			return 0;
	}
	return 1;
}
