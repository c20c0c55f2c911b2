/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_maps.bpf.h - the compiled verdict table as BPF maps (layout in
 * moat_abi.h), the accessor macros the shared lookup reads them through,
 * and the lookup itself.  Included by every BPF program that looks sources
 * up: moat_xdp.bpf.c and the lookup benchmark (lookup_bench.bpf.c), so the
 * benchmark measures exactly the code the fast path runs.
 */
#ifndef MOAT_MAPS_BPF_H
#define MOAT_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "moat_abi.h"
#include "moat_xdp.h"
#include "moat_trie6.h"

/* --- maps: the verdict table (moat_abi.h) ------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_tbl24);   /* all of it: see moat_xdp.h */
} tbl24 SEC(".maps");

/* groups: one value of groups_max struct moat_group, addressed directly
 * (see moat_xdp.h); the loader sizes the value */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MOAT_XDP_DEF_GROUPS_MAX * sizeof(struct moat_group));
} groups SEC(".maps");

/* the groups in the groups value: set by the loader (the verifier bounds
 * every group index by it) */
const volatile __u32 moat_groups_max = MOAT_XDP_DEF_GROUPS_MAX;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);  /* the selector flip is one store */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_v6_plens_buf);
} v6_plens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MOAT_XDP_DEF_V6_MAX);    /* loader resizes */
	__type(key, struct moat_v6_key);
	__type(value, __u32);
} v6_rules SEC(".maps");

/* the IPv6 trie (moat_trie6.h): root, nodes and buckets, one value each
 * (mmapable: the loader writes them with lib/vt_trie6.c); the loader sizes
 * the three values and sets the root's bits (16 or 24) and the two
 * maxima, against which every node and bucket index is checked (so the
 * verifier bounds each offset).  The root index is not masked: the
 * verifier reads moat_v6t_rootbits from the frozen .rodata as a constant,
 * so moat_v6t_root_slot's index is bounded by the root's entries (2^16,
 * or 2^21 + 2^16 in each of its two branches), and a root value smaller
 * than that fails the load.  (The mask and the 16-or-24 select
 * the root index had before: xdp_bench lookup6 at 1M, the same lookup
 * 74.4 ns with them, 60.9 ns without, consecutive runs, 5 Dec 14:01.) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MOAT_V6T_ROOT_ENTRIES * sizeof(__u32));
} v6t_root SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MOAT_XDP_DEF_V6T_NODES * sizeof(struct moat_v6_node));
} v6t_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MOAT_XDP_DEF_V6T_BUCKETS * sizeof(struct moat_v6_bucket));
} v6t_buckets SEC(".maps");

const volatile __u32 moat_v6t_rootbits = MOAT_V6T_ROOT_BITS;  /* 16 or 24 */
const volatile __u32 moat_v6t_nodes_max = MOAT_XDP_DEF_V6T_NODES;
const volatile __u32 moat_v6t_buckets_max = MOAT_XDP_DEF_V6T_BUCKETS;

/* The trie's accessors: ctx is a struct moat_bpf_trie */
struct moat_bpf_trie {
	const __u32 *root;   /* 2^moat_v6t_root_bits entries */
	const struct moat_v6_node *nodes;
	const struct moat_v6_bucket *buckets;
};

/* moat_bpf_trie_init - the three values; -1 when one is missing */
static __always_inline int moat_bpf_trie_init(struct moat_bpf_trie *t)
{
	__u32 zero = 0;

	t->root = bpf_map_lookup_elem(&v6t_root, &zero);
	t->nodes = bpf_map_lookup_elem(&v6t_nodes, &zero);
	t->buckets = bpf_map_lookup_elem(&v6t_buckets, &zero);
	return t->root && t->nodes && t->buckets ? 0 : -1;
}

#define MOAT_V6T_ROOT_GET(ctx, i) \
	(((const struct moat_bpf_trie *)(ctx))->root[(i)])
#define MOAT_V6T_ROOT_BITS_GET(ctx) moat_v6t_rootbits
#define MOAT_V6T_NODE_GET(ctx, i) \
	((i) < moat_v6t_nodes_max ? &((const struct moat_bpf_trie *)(ctx))->nodes[(i)] : NULL)
#define MOAT_V6T_BUCKET_GET(ctx, i) \
	((i) < moat_v6t_buckets_max ? &((const struct moat_bpf_trie *)(ctx))->buckets[(i)] : NULL)
#include "moat_trie6.h"

/* --- table lookup -------------------------------------------------------
 * The shared lookup (bpf/moat_lookup.h) reads the maps through these
 * accessor macros.  Its ctx is a struct moat_bpf_tables: tbl24 and groups
 * are one map value each, addressed directly (moat_bpf_tables_init,
 * moat_map_group), so an entry is one load and a group one bounds check
 * and an address computation.
 *
 * Programs that read the table live in SEC(MOAT_XDP_SEC): the loader
 * (moat_xdp_sec_register() in dataplane/xdp/) rewrites every reference to
 * the maps "tbl24", "groups" and "stats" (arrays of one element) into the
 * address of their one value (BPF_PSEUDO_MAP_VALUE: what libbpf does for
 * global variables), so no map lookup, no key on the stack and no NULL
 * test is left per packet.
 * Without that rewrite the verifier refuses the program (a load through
 * a map pointer): it never runs half-converted.
 */
struct moat_bpf_tables {
	const struct moat_tbl24 *tbl24;   /* never NULL */
};

/* moat_bpf_tables_init - tbl24's value (see above); always 0.  The empty
 * asm hides the map definition's own size from the compiler, which would
 * otherwise bound the index by it. */
static __always_inline int moat_bpf_tables_init(struct moat_bpf_tables *t)
{
	const struct moat_tbl24 *p = (const void *)&tbl24;

	__asm__ __volatile__("" : "+r"(p));
	t->tbl24 = p;
	return 0;
}

/*
 * moat_map_group - groups[i], or NULL past the end.  The verifier bounds
 * a variable offset into a map value below 2^29 (BPF_MAX_VAR_OFF), which
 * is 2^23 groups; a fixed offset has the same bound and does not count
 * against it, so the groups from MOAT_GROUPS_HALF on are reached from a
 * pointer to group MOAT_GROUPS_HALF - 1 (a fixed offset) plus what is
 * left.  The empty asms keep the compiler from folding the two back into
 * one variable offset (and hide the map definition's own size from it).
 */
static __always_inline const struct moat_group *moat_map_group(__u64 i)
{
	const struct moat_group *g = (const void *)&groups;

	__asm__ __volatile__("" : "+r"(g));
	if (!g)
		__builtin_unreachable();    /* a map value's address */
	if (i >= moat_groups_max)
		return NULL;
	if (i < MOAT_GROUPS_HALF)
		return &g[i];
	g = &g[MOAT_GROUPS_HALF - 1];
	__asm__ __volatile__("" : "+r"(g));
	if (!g)
		__builtin_unreachable();
	return &g[i - (MOAT_GROUPS_HALF - 1)];
}

/* moat_map_plens - the IPv6 prefix-length double buffer */
static __always_inline const struct moat_v6_plens_buf *moat_map_plens(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&v6_plens, &zero);
}

#define MOAT_TBL24_GET(ctx, i) \
	(((const struct moat_bpf_tables *)(ctx))->tbl24->e[(i) & (MOAT_TBL24_ENTRIES - 1)])
/* the index masked to its 31 bits again in 64: the compiler knows the
 * upper half is zero and adds no zero extension */
#define MOAT_GROUP_GET(ctx, i) moat_map_group((__u64)(i) & MOAT_GROUP_MAX)
#define MOAT_V6_PLENS_GET(ctx) moat_map_plens()
#define MOAT_V6_GET(ctx, kp) ((const __u32 *)bpf_map_lookup_elem(&v6_rules, (kp)))
#include "moat_lookup.h"

#endif /* MOAT_MAPS_BPF_H */
