/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vt_view.h - the fast path's lookup, inline, over a compiled image's
 * struct vt_image_view (vtable.h).
 *
 * vt_image_lookup_v4/_v6 (vtable.h) answer through a function call.  A
 * caller that times lookups or runs them in bulk (tools/bench_table.c)
 * takes a view once and calls vt_view_lookup_v4/_v6 below: the lines of
 * bpf/moat_lookup.h, the lookup the XDP program runs over its maps,
 * expanded over the view's arrays in the caller.
 *
 * This header expands bpf/moat_lookup.h: a file that expands it over its
 * own tables cannot include this one too.
 */
#ifndef MOAT_VT_VIEW_H
#define MOAT_VT_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "vtable.h"
#include "vt_trie6.h"

/* bpf/moat_lookup.h over a const struct vt_image_view * (ctx). */
#define MOAT_TBL24_GET(ctx, idx) \
	(((const struct vt_image_view *)(ctx))->tbl24[(idx)])
#define MOAT_GROUP_GET(ctx, idx)                                          \
	((idx) < ((const struct vt_image_view *)(ctx))->ngroups ?         \
	 &((const struct vt_image_view *)(ctx))->groups[(idx)] : NULL)
#define MOAT_V6_PLENS_GET(ctx) \
	(((const struct vt_image_view *)(ctx))->v6_plens)
#define MOAT_V6_GET(ctx, keyp) \
	vt_image_v6_get(((const struct vt_image_view *)(ctx))->img, (keyp))
#include "moat_lookup.h"
#undef MOAT_TBL24_GET
#undef MOAT_GROUP_GET
#undef MOAT_V6_PLENS_GET
#undef MOAT_V6_GET

/**
 * vt_view_lookup_v4 - action of an IPv4 address: moat_lookup_v4() of
 * bpf/moat_lookup.h, inline (one tbl24 read, and one group read when the
 * /24 is not uniform).
 *
 * @view:      from vt_image_view(); not checked (a hot path).
 * @addr_host: the address in host byte order.
 *
 * Returns the action (enum moat_action: MOAT_ACT_PASS, _TARPIT, _DROP or
 * _ALLOW), the same as vt_image_lookup_v4() on the image.
 */
static inline uint32_t vt_view_lookup_v4(const struct vt_image_view *view,
					 uint32_t addr_host)
{
	return moat_lookup_v4((void *)view, addr_host);
}

/**
 * vt_view_lookup_v6 - action of an IPv6 address: moat_lookup_v6t() of
 * bpf/moat_trie6.h, inline (root, nodes, bucket: usually 3 dependent
 * reads, at most 16).
 *
 * @view: from vt_image_view(); not checked.
 * @addr: 16 bytes, network order.
 *
 * Returns the action as vt_view_lookup_v4() does, the same as
 * vt_image_lookup_v6() on the image.
 */
static inline __attribute__((always_inline)) uint32_t
vt_view_lookup_v6(const struct vt_image_view *view, const uint8_t addr[16])
{
	return view->v6t ? vt_trie6_lookup_inline(view->v6t, addr)
			 : MOAT_ACT_PASS;
}

/* vt_view_lookup_v6_rules - the same through moat_lookup_v6() of
 * bpf/moat_lookup.h (a rule probe per prefix length in use, longest
 * first), the layout the XDP and DPDK fast paths read today. */
static inline uint32_t vt_view_lookup_v6_rules(const struct vt_image_view *view,
					       const uint8_t addr[16])
{
	return moat_lookup_v6((void *)view, addr);
}

#endif /* MOAT_VT_VIEW_H */
