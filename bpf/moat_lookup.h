/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_lookup.h - the verdict lookup, written once for every reader of the
 * compiled table (bpf/moat_abi.h layout): the XDP program expands it over
 * BPF maps, lib/vt_image.c and lib/vt_view.h over the plain arrays of a
 * userspace image, the DPDK backend over its own tables.  Header-only, no
 * libc.
 *
 * The includer defines, before including this file:
 *
 *   MOAT_TBL24_GET(ctx, idx)   -> __u32: tbl24[idx] (idx < 2^24); 0 when
 *                                 the read fails
 *   MOAT_GROUP_GET(ctx, idx)   -> const struct moat_group *: groups[idx], or
 *                                 NULL when absent (then the address PASSes)
 *   MOAT_V6_PLENS_GET(ctx)     -> const struct moat_v6_plens_buf *: the
 *                                 plens double buffer, or NULL; the lookup
 *                                 loads its selector once, then reads only
 *                                 the slot it selects
 *   MOAT_V6_GET(ctx, keyp)     -> const __u32 *: v6_rules[*keyp] (keyp is a
 *                                 struct moat_v6_key * on the stack), or NULL
 *
 * For BPF: each macro can be a statement expression around
 * bpf_map_lookup_elem(); all loops have constant bounds.
 */
#ifndef MOAT_LOOKUP_H
#define MOAT_LOOKUP_H

#include "moat_abi.h"

#if !defined(MOAT_TBL24_GET) || !defined(MOAT_GROUP_GET) || \
	!defined(MOAT_V6_PLENS_GET) || !defined(MOAT_V6_GET)
#error "define MOAT_TBL24_GET, MOAT_GROUP_GET, MOAT_V6_PLENS_GET, MOAT_V6_GET first"
#endif

/* moat_lookup_v4_entry - the second half of moat_lookup_v4: the action
 * for addr_host once its tbl24 entry e is read (a burst reader reads the
 * entries of a whole burst first, then finishes each lookup here). */
static inline __u32 moat_lookup_v4_entry(void *ctx, __u32 e, __u32 addr_host)
{
	const struct moat_group *g;

	(void)ctx;
	if (!moat_tbl24_is_group(e))
		return moat_tbl24_action(e);
	g = MOAT_GROUP_GET(ctx, moat_tbl24_group(e));
	if (!g)
		return MOAT_ACT_PASS;
	return moat_group_get(g, (__u8)(addr_host & 0xff));
}

/* moat_lookup_v4 - action for an IPv4 address in host byte order: one
 * tbl24 read, and one group read when the /24 is not uniform. */
static inline __u32 moat_lookup_v4(void *ctx, __u32 addr_host)
{
	return moat_lookup_v4_entry(ctx, MOAT_TBL24_GET(ctx, addr_host >> 8), addr_host);
}

/* moat_v6_mask - key = addr (network order) masked to plen bits. */
static inline void moat_v6_mask(struct moat_v6_key *key, const __u8 *addr,
				__u32 plen)
{
	int i;

	key->plen = plen;
	for (i = 0; i < 16; i++) {
		int bits = (int)plen - i * 8;
		__u8 m;

		if (bits >= 8)
			m = 0xff;
		else if (bits <= 0)
			m = 0;
		else
			m = (__u8)(0xff << (8 - bits));
		key->addr[i] = addr[i] & m;
	}
}

/* moat_lookup_v6 - action for an IPv6 address (16 bytes, network order):
 * probe the rules at each present prefix length, longest first; the first
 * hit decides (it may be PASS, an exclusion); no hit = PASS. */
static inline __u32 moat_lookup_v6(void *ctx, const __u8 *addr)
{
	const struct moat_v6_plens_buf *pb = MOAT_V6_PLENS_GET(ctx);
	const struct moat_v6_plens *pl;
	struct moat_v6_key key;
	__u32 n, i;

	if (!pb)
		return MOAT_ACT_PASS;
	pl = moat_v6_plens_live(pb); /* one selector load, then that slot */
	n = pl->n;
	if (n > MOAT_V6_MAX_PLENS)
		n = MOAT_V6_MAX_PLENS;
	for (i = 0; i < MOAT_V6_MAX_PLENS; i++) {
		const __u32 *act;
		__u32 plen;

		if (i >= n)
			break;
		plen = pl->len[i];
		if (plen > 128)
			break;
		moat_v6_mask(&key, addr, plen);
		act = MOAT_V6_GET(ctx, &key);
		if (act)
			return *act & MOAT_TBL24_ACT_MASK;
	}
	return MOAT_ACT_PASS;
}

#endif /* MOAT_LOOKUP_H */
