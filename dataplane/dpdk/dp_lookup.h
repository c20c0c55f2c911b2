/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_lookup.h - the verdict lookup moat-dpdk's workers run: the lines of
 * bpf/moat_lookup.h (the lookup the XDP program runs over its maps)
 * expanded over a struct dp_table_view (dp_table.h), as lib/vt_view.h
 * expands them over a userspace image.  One parser, one lookup, one
 * verdict for both backends.
 *
 * A worker takes the view once (dp_table_view(), stable for the table's
 * life) and calls dp_lookup_v4/_v6 between two quiescent states of its
 * QSBR thread id.  This header expands bpf/moat_lookup.h: a file that
 * expands it over other tables cannot include this one too.
 */
#ifndef MOAT_DP_LOOKUP_H
#define MOAT_DP_LOOKUP_H

#include <stdint.h>

#include "dp_table.h"
#include "vt_trie6.h"

#define MOAT_TBL24_GET(ctx, idx) \
	(((const struct dp_table_view *)(ctx))->tbl24[(idx)])
#define MOAT_GROUP_GET(ctx, idx)                                        \
	((idx) < ((const struct dp_table_view *)(ctx))->groups_max ?    \
	 &((const struct dp_table_view *)(ctx))->groups[(idx)] : NULL)
#define MOAT_V6_PLENS_GET(ctx) \
	(((const struct dp_table_view *)(ctx))->v6_plens)
#define MOAT_V6_GET(ctx, keyp) \
	dp_table_v6_get((const struct dp_table_view *)(ctx), (keyp))
#include "moat_lookup.h"
#undef MOAT_TBL24_GET
#undef MOAT_GROUP_GET
#undef MOAT_V6_PLENS_GET
#undef MOAT_V6_GET

/* dp_lookup_v4 - action (enum moat_action) of an IPv4 address in host
 * byte order: one tbl24 read, one group read when the /24 is mixed. */
static inline uint32_t dp_lookup_v4(const struct dp_table_view *v,
				    uint32_t addr_host)
{
	return moat_lookup_v4((void *)(uintptr_t)v, addr_host);
}

/* dp_lookup_v4_entry - the same once tbl24[addr_host >> 8] is read (e):
 * the group read when the /24 is mixed (the burst classifier reads every
 * entry of a burst first, with the groups prefetched). */
static inline uint32_t dp_lookup_v4_entry(const struct dp_table_view *v, uint32_t e,
					  uint32_t addr_host)
{
	return moat_lookup_v4_entry((void *)(uintptr_t)v, e, addr_host);
}

/* dp_lookup_v6 - action of an IPv6 address (16 bytes, network order):
 * moat_lookup_v6t of bpf/moat_trie6.h over the table's trie (root, nodes,
 * bucket: usually 3 dependent reads, at most 16). */
static inline __attribute__((always_inline)) uint32_t
dp_lookup_v6(const struct dp_table_view *v, const uint8_t addr[16])
{
	return vt_trie6_lookup_inline(v->v6t, addr);
}

/* dp_lookup_v6_rules - the same through the rules per prefix length
 * (moat_lookup_v6 of bpf/moat_lookup.h), for tests. */
static inline uint32_t dp_lookup_v6_rules(const struct dp_table_view *v,
					  const uint8_t addr[16])
{
	return moat_lookup_v6((void *)(uintptr_t)v, addr);
}

#endif /* MOAT_DP_LOOKUP_H */
