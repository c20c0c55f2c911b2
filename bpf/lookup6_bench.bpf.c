// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lookup6_bench.bpf.c - the IPv6 trie lookup (bpf/moat_trie6.h) inside the
 * kernel: one BPF_PROG_TEST_RUN looks up n_chunks * LB6_CHUNK addresses
 * the loader precomputed into "addrs6", over a trie the loader wrote into
 * the mmap'd values of v6t_root, v6t_nodes and v6t_buckets with the
 * writer every reader shares (lib/vt_trie6.c over struct vt_trie6_mem):
 * the maps moat_xdp reads (moat_maps.bpf.h; this object has its own).  bpf_loop over the chunks, a
 * bounded loop over a chunk's addresses; moat_lookup6_loop runs the same
 * loops reading the addresses only, so the loop's own cost is told apart.
 * Proves the verifier takes the shared lookup (at most 15 node reads and
 * one bucket, every index bounded by the loader's nodes/buckets max).
 */
#include "moat_maps.bpf.h"   /* the trie maps and accessors moat_xdp reads */

#define LB6_CHUNK 64

struct lb6_chunk {   /* 8-aligned addresses: moat_lookup_v6t */
	__u8 a[LB6_CHUNK][16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);     /* loader resizes */
	__type(key, __u32);
	__type(value, struct lb6_chunk);
} addrs6 SEC(".maps");

const volatile __u32 n_chunks = 0;
__u64 result = 0;
__u64 result_loop = 0;

static __always_inline long chunk(__u32 i, void *ctx, int lookup)
{
	struct lb6_chunk *c = bpf_map_lookup_elem(&addrs6, &i);
	struct moat_bpf_trie t;
	__u64 *sum = ctx, s = 0;
	int j;

	if (!c || moat_bpf_trie_init(&t))
		return 1;
	for (j = 0; j < LB6_CHUNK; j++)
		s += lookup ? moat_lookup_v6t(&t, c->a[j]) : (c->a[j][15] & 3);
	*sum += s;
	return 0;
}

static long one_chunk(__u32 i, void *ctx)
{
	return chunk(i, ctx, 1);
}

static long read_chunk(__u32 i, void *ctx)
{
	return chunk(i, ctx, 0);
}

SEC("xdp")
int moat_lookup6_bench(struct xdp_md *ctx)
{
	__u64 sum = 0;

	bpf_loop(n_chunks, one_chunk, &sum, 0);
	result = sum;
	return XDP_DROP;
}

SEC("xdp")
int moat_lookup6_loop(struct xdp_md *ctx)
{
	__u64 sum = 0;

	bpf_loop(n_chunks, read_chunk, &sum, 0);
	result_loop = sum;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
