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

/* --- maps: the verdict table (moat_abi.h) ------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_tbl24);   /* all of it: see moat_xdp.h */
} tbl24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MOAT_XDP_DEF_GROUPS_MAX); /* loader resizes */
	__type(key, __u32);
	__type(value, struct moat_group);
} groups SEC(".maps");

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

/* --- table lookup -------------------------------------------------------
 * The shared lookup (bpf/moat_lookup.h) reads the maps through these
 * accessor macros.  Its ctx is a struct moat_bpf_tables: tbl24 is one map
 * value, looked up once by the caller (moat_bpf_tables_init), so an entry
 * is one load; a group is one array lookup of its own.
 */
struct moat_bpf_tables {
	const struct moat_tbl24 *tbl24;   /* never NULL once initialised */
};

/* moat_bpf_tables_init - look tbl24 up (key 0); 0, or -1 if it is absent
 * (it never is: an array map's elements always exist) */
static __always_inline int moat_bpf_tables_init(struct moat_bpf_tables *t)
{
	__u32 zero = 0;

	t->tbl24 = bpf_map_lookup_elem(&tbl24, &zero);
	return t->tbl24 ? 0 : -1;
}

/* moat_map_group - groups[i], or NULL past the end */
static __always_inline const struct moat_group *moat_map_group(__u32 i)
{
	return bpf_map_lookup_elem(&groups, &i);
}

/* moat_map_plens - the IPv6 prefix-length double buffer */
static __always_inline const struct moat_v6_plens_buf *moat_map_plens(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&v6_plens, &zero);
}

#define MOAT_TBL24_GET(ctx, i) \
	(((const struct moat_bpf_tables *)(ctx))->tbl24->e[(i) & (MOAT_TBL24_ENTRIES - 1)])
#define MOAT_GROUP_GET(ctx, i) moat_map_group(i)
#define MOAT_V6_PLENS_GET(ctx) moat_map_plens()
#define MOAT_V6_GET(ctx, kp) ((const __u32 *)bpf_map_lookup_elem(&v6_rules, (kp)))
#include "moat_lookup.h"

#endif /* MOAT_MAPS_BPF_H */
