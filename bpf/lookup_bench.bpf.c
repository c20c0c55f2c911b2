// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lookup_bench.bpf.c - the memory cost of the verdict-table lookup inside
 * the kernel: one BPF_PROG_TEST_RUN runs the shared IPv4 lookup
 * (moat_maps.bpf.h, the code moat_xdp runs) over n_chunks * LB_CHUNK
 * addresses precomputed by the loader into the "addrs" array and read in
 * order, as the userspace baseline reads its precomputed array: bpf_loop
 * over the chunks, a plain bounded loop over a chunk's addresses (so
 * independent lookups overlap their cache misses, as a userspace loop's
 * do; one callback per address costs 50 % more on the test machine).
 * tbl24 and groups are map values addressed directly, as in moat_xdp
 * (moat_bpf_tables_init, moat_map_group; SEC(MOAT_XDP_SEC), so the loader
 * must call moat_xdp_sec_register() and set moat_groups_max), so every
 * address is the shared moat_lookup_v4: one tbl24 load, and a bounds
 * check and one load from the group when the /24 has a group.
 * moat_lookup_loop runs the same loop and only reads the addresses, so the
 * loop's own cost can be told apart.  Two programs of one object: they
 * share the maps, and neither reads a mode flag per address.  The loader
 * makes tbl24 and groups share moat_xdp's maps (bpf_map__reuse_fd) so the
 * benchmark and the fast path see one table.
 */
#include "moat_maps.bpf.h"

#define LB_CHUNK 1024

struct lb_chunk {
	__u32 a[LB_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);     /* loader resizes */
	__type(key, __u32);
	__type(value, struct lb_chunk);
} addrs SEC(".maps");

const volatile __u32 n_chunks = 0;
__u64 result = 0;                   /* sum of actions: keeps the work alive */
__u64 result_loop = 0;

/* chunk - the addresses of chunk i summed into *ctx: their actions
 * (lookup) or their low bits (the loop alone); lookup is a constant at
 * each call, so each callback below is one straight loop */
static __always_inline long chunk(__u32 i, void *ctx, int lookup)
{
	struct lb_chunk *c = bpf_map_lookup_elem(&addrs, &i);
	struct moat_bpf_tables tb;
	__u64 *sum = ctx, s = 0;
	int j;

	if (!c || moat_bpf_tables_init(&tb))
		return 1;
	for (j = 0; j < LB_CHUNK; j++)
		s += lookup ? moat_lookup_v4(&tb, c->a[j]) : (c->a[j] & 3);
	*sum += s;
	return 0;
}

/* one_chunk - bpf_loop callback: look up the addresses of chunk i */
static long one_chunk(__u32 i, void *ctx)
{
	return chunk(i, ctx, 1);
}

/* read_chunk - bpf_loop callback: the same loop, addresses only */
static long read_chunk(__u32 i, void *ctx)
{
	return chunk(i, ctx, 0);
}

SEC(MOAT_XDP_SEC)
int moat_lookup_bench(struct xdp_md *ctx)
{
	__u64 sum = 0;

	bpf_loop(n_chunks, one_chunk, &sum, 0);
	result = sum;
	return XDP_DROP;
}

SEC(MOAT_XDP_SEC)
int moat_lookup_loop(struct xdp_md *ctx)
{
	__u64 sum = 0;

	bpf_loop(n_chunks, read_chunk, &sum, 0);
	result_loop = sum;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
