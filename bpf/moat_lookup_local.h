/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_lookup_local.h - STAND-IN verdict-table lookup, to be replaced by
 * bpf/moat_lookup.h from the verdict-table branch (`table`).  It reads the
 * layout fixed in moat_abi.h through accessor macros the includer defines,
 * so the same code runs on BPF maps and on plain userspace arrays:
 *
 *   MOAT_TBL24_GET(idx)    const __u32 *              (NULL: out of range)
 *   MOAT_GROUP_GET(idx)    const struct moat_group *  (NULL: out of range)
 *   MOAT_V6_PLENS_GET()    const struct moat_v6_plens * (NULL: none)
 *   MOAT_V6_RULE_GET(kp)   const __u32 *  for const struct moat_v6_key *kp
 *
 * Functions: moat_lookup_v4(addr_host), moat_lookup_v6(addr16) -> action.
 */
#ifndef MOAT_LOOKUP_LOCAL_H
#define MOAT_LOOKUP_LOCAL_H

#include "moat_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* moat_lookup_v4 - action for an IPv4 source (host byte order) */
static __always_inline __u32 moat_lookup_v4(__u32 addr)
{
	const __u32 *e = MOAT_TBL24_GET(moat_tbl24_index(addr));
	const struct moat_group *g;

	if (!e)
		return MOAT_ACT_PASS;
	if (!moat_tbl24_is_group(*e))
		return moat_tbl24_action(*e);
	g = MOAT_GROUP_GET(moat_tbl24_group(*e));
	if (!g)
		return MOAT_ACT_PASS;
	return moat_group_get(g, (__u8)addr);
}

/* moat_v6_mask64 - the top plen bits of a 64-bit half (plen may be <0, >64) */
static __always_inline __u64 moat_v6_mask64(int plen)
{
	if (plen <= 0)
		return 0;
	if (plen >= 64)
		return ~0ull;
	return ~0ull << (64 - plen);
}

/* moat_lookup_v6 - action for an IPv6 source (network byte order) */
static __always_inline __u32 moat_lookup_v6(const __u8 *addr)
{
	const struct moat_v6_plens *pl = MOAT_V6_PLENS_GET();
	struct moat_v6_key k;
	__u64 hi = 0, lo = 0, m;
	__u32 i, n;
	int j;

	if (!pl)
		return MOAT_ACT_PASS;
	n = pl->n;
	if (n > MOAT_V6_MAX_PLENS)
		n = MOAT_V6_MAX_PLENS;
	for (j = 0; j < 8; j++) {
		hi = hi << 8 | addr[j];
		lo = lo << 8 | addr[8 + j];
	}
	for (i = 0; i < MOAT_V6_MAX_PLENS; i++) {
		const __u32 *v;
		__u32 plen;

		if (i >= n)
			break;
		plen = pl->len[i];
		if (plen > 128)
			continue;
		k.plen = plen;
		m = moat_v6_mask64((int)plen) & hi;
		for (j = 0; j < 8; j++)
			k.addr[j] = (__u8)(m >> (56 - 8 * j));
		m = moat_v6_mask64((int)plen - 64) & lo;
		for (j = 0; j < 8; j++)
			k.addr[8 + j] = (__u8)(m >> (56 - 8 * j));
		v = MOAT_V6_RULE_GET(&k);
		if (v)
			return *v & MOAT_TBL24_ACT_MASK;
	}
	return MOAT_ACT_PASS;
}

#endif /* MOAT_LOOKUP_LOCAL_H */
