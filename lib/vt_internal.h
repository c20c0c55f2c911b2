/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_internal.h - what the verdict-table modules (vt_policy.c, vt_image.c,
 * vt_db.c) share and nobody else sees.
 */
#ifndef MOAT_VT_INTERNAL_H
#define MOAT_VT_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#include "vtable.h"

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
};

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

#define VT_ERR(err, errsz, ...)                                     \
	do {                                                        \
		if ((err) && (errsz))                               \
			snprintf((err), (errsz), __VA_ARGS__);      \
	} while (0)

#endif /* MOAT_VT_INTERNAL_H */
