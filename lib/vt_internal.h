/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_internal.h - what the files of the verdict table share and nobody
 * outside lib/ sees (the public API is vtable.h and vt_view.h):
 *
 *   vt_policy.c    policy: validation, DNSBL answer filtering, the decision
 *   vt_image.c     compiled images: IPv6 rule hash, apply, diff, lookups
 *   vt_db.c        the db object: new, free, policy change, adopt, share
 *   vt_store.c     the listing store: /24 directory + chunk pool, sorted
 *                  stores, growable arrays
 *   vt_validate.c  a change checked and normalized before it touches the db
 *   vt_commit.c    a change stored: apply, replace, expiry, dirty marking
 *   vt_compile.c   IPv4 compiler: one /24 from the store
 *   vt_compile6.c  IPv6 compiler: the rules under changed prefixes
 *   vt_publish.c   publish: dirty parts recompiled, diffed, streamed, live
 *   vt_query.c     what the db answers without changing: lookup, explain,
 *                  dump, walk, counters
 *
 * One white-box user outside lib/: tests/unit/test_vtable.c reads image
 * fields (tbl24, groups, the plens double buffer) to check publishing
 * order and the plens flip.
 */
#ifndef MOAT_VT_INTERNAL_H
#define MOAT_VT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vtable.h"
#include "vt_trie6.h"

/* One IPv6 rule of a compiled image. */
struct vt_v6rule {
	struct moat_v6_key key;
	uint32_t act;
};

struct vt_image {
	uint32_t *tbl24;            /* MOAT_TBL24_ENTRIES */
	struct moat_group *groups;  /* gcap entries */
	uint32_t gcap;
	uint32_t ghi;               /* high-water mark: indices < ghi exist */
	uint8_t text;               /* tbl24 is the fast path's storage
				     * (vt_db_share_tbl24): not ours to free */
	uint8_t gext;               /* groups is the fast path's storage
				     * (vt_db_share_groups): not ours to
				     * free or grow past gcap */
	struct vt_v6rule *v6;       /* hash, v6cap slots (power of 2 or 0),
				     * linear probing; empty: VT_V6_EMPTY */
	size_t nv6, v6cap;
	uint32_t v6cnt[129];        /* rules per prefix length */
	struct moat_v6_plens_buf plb; /* live plens: vt_image_plens() */
	struct vt_trie6 *t6;        /* the same rules as the IPv6 trie the
				     * lookups read (bpf/moat_trie6.h); NULL
				     * until the first rule */
};

/* Storage reserved (not committed) for an image's IPv6 trie: nodes of
 * 1 KiB and buckets of 64 B, touched as used; at most what the trie's
 * 23-bit indexes reach (MOAT_V6T_INDEX_MAX). */
#define VT_T6_NODES_MAX (1u << 21)
#define VT_T6_BUCKETS_MAX (MOAT_V6T_INDEX_MAX + 1u)

#define VT_V6_EMPTY 0xffffffffu /* key.plen of an empty hash slot */

/* vt_image_plens - the live slot of the image's plens double buffer. */
static inline const struct moat_v6_plens *
vt_image_plens(const struct vt_image *img)
{
	return &img->plb.slot[img->plb.sel & 1];
}

/* vt_image_set_plens - publish a plens set as a fast path does: fill the
 * inactive slot, then flip the selector. */
static inline void vt_image_set_plens(struct vt_image *img,
				      const struct moat_v6_plens *pl)
{
	uint32_t next = (img->plb.sel & 1) ^ 1;

	img->plb.slot[next] = *pl;
	img->plb.sel = next;
}

/* Accumulated verdict inputs for one address; counts so they subtract. */
struct vt_acc {
	int64_t score;
	int32_t nallow, ndrop, ntarpit;
};

/* vt_thp - ask for transparent huge pages on the page-aligned inside of
 * a large block (best effort; parts already touched keep their pages): a
 * big load first-touches the 64 MiB directory and tbl24 and the group
 * array at random places, and 2 MiB pages take 1/512 of the faults. */
void vt_thp(void *p, size_t len);

/* vt_v6key_cmp - order of image rules: address bytes, then plen. */
int vt_v6key_cmp(const struct moat_v6_key *a, const struct moat_v6_key *b);

/* vt_v6rule_qcmp - vt_v6key_cmp of two struct vt_v6rule, for qsort. */
int vt_v6rule_qcmp(const void *x, const void *y);

/* vt_image_grow_groups - make indices < want valid; 0 or -ENOMEM. */
int vt_image_grow_groups(struct vt_image *img, uint32_t want);

/* vt_plens_from_counts - the lengths with a nonzero count, longest first
 * (at most MOAT_V6_MAX_PLENS). */
void vt_plens_from_counts(const int64_t cnt[129], struct moat_v6_plens *out);

/* vt_image_v6_find - the image's rule with exactly this key, or NULL. */
const struct vt_v6rule *vt_image_v6_find(const struct vt_image *img,
					 const struct moat_v6_key *k);

/* vt_image_v6_put - insert or overwrite one rule: 0 or -ENOMEM. */
int vt_image_v6_put(struct vt_image *img, const struct moat_v6_key *k,
		    uint32_t act);

/* vt_image_v6_del - remove one rule if present. */
void vt_image_v6_del(struct vt_image *img, const struct moat_v6_key *k);

/* vt_image_v6_sorted - the image's rules as a malloc'd array sorted by
 * vt_v6key_cmp (*out NULL when there are none): 0 or -ENOMEM. */
int vt_image_v6_sorted(const struct vt_image *img, struct vt_v6rule **out);

/* vt_v6_diff - append to *ups (capacity *cap, count *n) the updates taking
 * rules old[] to new[] in publishing order.  0 or -ENOMEM. */
int vt_v6_diff(const struct vt_v6rule *old, size_t nold,
	       const struct moat_v6_plens *oldpl,
	       const struct vt_v6rule *nw, size_t nnew,
	       const struct moat_v6_plens *newpl,
	       struct moat_update **ups, size_t *n, size_t *cap);

/* vt_ups_push - room for one more update; NULL on ENOMEM. */
struct moat_update *vt_ups_push(struct moat_update **ups, size_t *n,
				size_t *cap);

/* Policy evaluation (vt_policy.c). */

/* vt_source_contrib - add to acc what source s says given the codes at its
 * deciding prefix (ncodes >= 1; callers skip excluded prefixes). */
void vt_source_contrib(const struct vt_source *s, const uint32_t *codes,
		       size_t ncodes, struct vt_acc *acc);

/* vt_code_weight - the weight one code adds through rules not already
 * matched by codes[0..nprev) (for explain). */
int32_t vt_code_weight(const struct vt_source *s, uint32_t code,
		       const uint32_t *prev, size_t nprev);

/* vt_decide - the action from accumulated inputs and thresholds. */
uint32_t vt_decide(const struct vt_policy *p, const struct vt_acc *acc);

/* Why a DNSBL answer is not a listing. */
enum vt_code_class {
	VT_CODE_LISTING = 0,
	VT_CODE_OUTSIDE = 1,  /* not in 127.0.0.0/8 */
	VT_CODE_ERROR = 2,    /* in an error range */
};
enum vt_code_class vt_code_classify(const struct vt_source *s, uint32_t code);

/* ------------------------------------------------------------------ db */

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

/* A sorted store: entries in pe order (vt_store.c). */
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

/* A growable array of u32 (vt_vec_push). */
struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

/* An IPv6 prefix changed since the last publish. */
struct v6dirty {
	uint8_t addr[16];
	uint8_t plen;
};

struct v6dvec {
	struct v6dirty *v;
	size_t n, cap;
};

#define V6_DIRTY_MAX 65536 /* beyond this many changed prefixes: recompile */

/* A group unlinked by a publish, reusable after the grace period. */
struct pending_group {
	uint32_t g;
	uint64_t t_ms;
};

/* The db (vtable.h): policy, listing store, dirty state, live image. */
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

/* A compact IPv4 /24../32 record of a big replace: 16 bytes instead of
 * a struct rec, sorted in place by radix (the transient memory of a 10M
 * load matters as much as its speed). */
struct lrec {
	uint64_t key;   /* addr << 32 | plen << 8 | exclude */
	uint32_t code;
	uint32_t idx;   /* index in the input; LREC_KEEP once matched */
};

#define LREC_KEEP 0x80000000u
#define LREC_ADDR(k) ((uint32_t)((k) >> 32))
#define LREC_PLEN(k) ((unsigned)(((k) >> 8) & 0xff))
#define LREC_EXCL(k) ((int)((k) & 1))

/* Ignored DNSBL answers of one change, by reason. */
struct counts {
	uint64_t outside, errcode;
};

/* A growing array of IPv6 rules (or of rule keys: act unused). */
struct rulevec {
	struct vt_v6rule *v;
	size_t n, cap;
};

/* A changed part of the IPv6 rules: inside the ranges recompiled, the
 * live rules (old) and the recompiled ones (nw), both sorted; outside
 * them nothing changed. */
struct v6change {
	struct rulevec old, nw;
	int64_t cnt[129];        /* rules per length after the change */
};

/* vt_src_of - policy source of an id, or NULL. */
static inline const struct vt_source *vt_src_of(const struct vt_db *db,
						 uint16_t id)
{
	uint16_t i = db->sidx[id];

	return i ? &db->pol.sources[i - 1] : NULL;
}

/* vt_v4_addr - host-order IPv4 address of a prefix. */
static inline uint32_t vt_v4_addr(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
	       (uint32_t)a[2] << 8 | a[3];
}

/* vt_v4_bytes - host-order address into 4 network-order bytes. */
static inline void vt_v4_bytes(uint8_t *a, uint32_t v)
{
	a[0] = (uint8_t)(v >> 24);
	a[1] = (uint8_t)(v >> 16);
	a[2] = (uint8_t)(v >> 8);
	a[3] = (uint8_t)v;
}

/* vt_mask_bytes - addr masked to plen (16 bytes). */
static inline void vt_mask_bytes(uint8_t *dst, const uint8_t *src,
				 unsigned plen)
{
	for (unsigned i = 0; i < 16; i++) {
		int bits = (int)plen - (int)i * 8;

		dst[i] = bits >= 8 ? src[i] : bits <= 0 ? 0 :
			 (uint8_t)(src[i] & (0xff << (8 - bits)));
	}
}

/* vt_bucket - entries of /24 idx (NULL, 0 when none). */
static inline struct v4e *vt_bucket(const struct vt_db *db, uint32_t idx,
				     uint32_t *n)
{
	uint32_t off = DIR_OFF(db->dir[idx]);

	if (!off) {
		*n = 0;
		return NULL;
	}
	*n = db->pool[off].code;
	return &db->pool[off + 1];
}

/* vt_is_long - stored in the /24 directory. */
static inline int vt_is_long(const struct rec *r)
{
	return r->fam == MOAT_AF_INET && r->plen >= 24;
}

/* Growable arrays (vt_store.c). */

/* vt_vec_push - append v; -ENOMEM. */
int vt_vec_push(struct u32vec *a, uint32_t v);

/* vt_grow - make *p hold at least want elements of size sz; -ENOMEM. */
int vt_grow(void **p, size_t *cap, size_t want, size_t sz);

/* The IPv4 /24../32 store (vt_store.c). */

/* vt_pool_reserve - room for n one-entry chunks in one step (best effort). */
void vt_pool_reserve(struct vt_db *db, size_t n);

/* vt_bucket_add - append e to /24 idx, growing its chunk; -ENOMEM or
 * -ENOSPC. */
int vt_bucket_add(struct vt_db *db, uint32_t idx, const struct v4e *e);

/* vt_bucket_del_at - remove entry i of /24 idx (order not kept). */
void vt_bucket_del_at(struct vt_db *db, uint32_t idx, uint32_t i);

/* vt_v4_find - position of r (a /24../32 record of src) in its bucket, or
 * -1. */
int vt_v4_find(const struct vt_db *db, uint16_t src, const struct rec *r);

/* The sorted stores: IPv4 /0../23 and IPv6 (vt_store.c). */

/* vt_pe_qcmp - store order (address, plen, source, exclude, code) for
 * qsort/bsearch. */
int vt_pe_qcmp(const void *a, const void *b);

/* vt_ps_lower - first index with entry >= key. */
size_t vt_ps_lower(const struct pstore *ps, const struct pe *key);

/* vt_ps_prefix_range - entries with exactly this (addr, plen): [*b, *e). */
void vt_ps_prefix_range(const struct pstore *ps, const uint8_t *addr,
			unsigned plen, size_t *b, size_t *e);

/* vt_ps_find - index of an identical entry or -1. */
long vt_ps_find(const struct pstore *ps, const struct pe *k);

/* vt_ps_apply - delete dels and insert adds (both sorted) in place; 0 or
 * -ENOMEM with the store unchanged. */
int vt_ps_apply(struct pstore *ps, const struct pe *dels, size_t ndel,
		const struct pe *adds, size_t nadd);

/* Checking a change (vt_validate.c). */

/* vt_rec_cmp - record order: family, address, plen, exclude, code. */
int vt_rec_cmp(const void *x, const void *y);

/* vt_lrec_cmp - compact record order: key, then code. */
int vt_lrec_cmp(const void *x, const void *y);

/* vt_fmt_prefix - text form of a prefix for messages. */
const char *vt_fmt_prefix(char *buf, size_t sz, const struct moat_prefix *p);

/* vt_normalize - check listings of source s, drop ignored answers (counted
 * in *ign), return them sorted without duplicates: IPv4 /24../32 as compact
 * records in *lout when lout is not NULL, the rest in *out.  0, -EINVAL or
 * -ENOMEM with a message in err.  what = "add"/"del"/"entry". */
int vt_normalize(const struct vt_db *db, const struct vt_source *s,
		 const struct moat_listing *l, size_t n, const char *what,
		 struct rec **out, size_t *nout, struct lrec **lout,
		 size_t *nlout, struct counts *ign, char *err, size_t errsz);

/* vt_rec_to_pe - a record as a sorted-store entry. */
void vt_rec_to_pe(const struct rec *r, uint16_t src, uint32_t expiry,
		  struct pe *p);

/* vt_store_present - r (of src) is stored now. */
int vt_store_present(const struct vt_db *db, uint16_t src,
		     const struct rec *r);

/* vt_store_has_kind - src stores an entry at r's prefix with exclude ==
 * excl that is not among dels. */
int vt_store_has_kind(const struct vt_db *db, uint16_t src,
		      const struct rec *r, int excl,
		      const struct rec *dels, size_t ndel);

/* vt_v6_plens_after - distinct IPv6 lengths if src's v6 entries were
 * replaced (replace) or changed by dels/adds. */
unsigned vt_v6_plens_after(const struct vt_db *db, uint16_t src,
			   int replace, const struct rec *dels, size_t ndel,
			   const struct rec *adds, size_t nadd);

/* Storing a change (vt_commit.c). */

/* vt_cmp_u32 - qsort order of u32. */
int vt_cmp_u32(const void *x, const void *y);

/* vt_drop_where - remove stored entries matching pred (expiry, unknown
 * source), counted as expired and marked dirty; returns how many.  only
 * (nonly /24s) limits the IPv4 /24../32 part, NULL: all. */
size_t vt_drop_where(struct vt_db *db,
		     int (*pred)(const struct vt_db *, uint16_t, uint32_t),
		     const uint32_t *only, size_t nonly);

/* Compiling (vt_compile.c, vt_compile6.c). */

/* vt_ensure_codes - compile scratch for n codes; -ENOMEM. */
int vt_ensure_codes(struct vt_db *db, size_t n);

/* vt_contrib_run - the entries es[b, *end) of one stored prefix that belong
 * to the source of es[b]; the first time the source is met under
 * db->seen_stamp, what it says is added to acc (1), else 0; -ENOMEM. */
int vt_contrib_run(struct vt_db *db, const struct pe *es, size_t b, size_t e,
		   size_t *end, struct vt_acc *acc);

/* vt_compile24 - the verdicts of /24 idx from the store: 1 with *g filled
 * when they differ inside the /24, 0 with the uniform *act, or -ENOMEM. */
int vt_compile24(struct vt_db *db, uint32_t idx, struct moat_group *g,
		 uint32_t *act);

/* vt_compile_v6 - the changed IPv6 rules since the last publish, old and
 * new (ch zeroed by the caller; free ch->old.v and ch->nw.v); 0 or
 * -ENOMEM. */
int vt_compile_v6(struct vt_db *db, struct v6change *ch);

#define VT_ERR(err, errsz, ...)                                     \
	do {                                                        \
		if ((err) && (errsz))                               \
			snprintf((err), (errsz), __VA_ARGS__);      \
	} while (0)

#endif /* MOAT_VT_INTERNAL_H */
