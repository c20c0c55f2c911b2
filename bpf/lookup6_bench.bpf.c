// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lookup6_bench.bpf.c - the IPv6 trie lookup (bpf/moat_trie6.h) inside the
 * kernel: one BPF_PROG_TEST_RUN looks up n_chunks * LB6_CHUNK addresses
 * the loader precomputed into "addrs6", over a trie the loader wrote into
 * the mmap'd values of v6t_root, v6t_nodes and v6t_buckets with the
 * writer every reader shares (lib/vt_trie6.c over struct vt_trie6_mem):
 * the maps a fast path keeps the trie in.  bpf_loop over the chunks, a
 * bounded loop over a chunk's addresses; moat_lookup6_loop runs the same
 * loops reading the addresses only, so the loop's own cost is told apart.
 * Proves the verifier takes the shared lookup (at most 15 node reads and
 * one bucket, every index bounded by the loader's nodes/buckets max).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "moat_trie6.h"

#define LB6_CHUNK 64

struct lb6_chunk {
	__u8 a[LB6_CHUNK][16];
};

struct v6t_root {
	__u32 e[MOAT_V6T_ROOT_ENTRIES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);     /* loader resizes */
	__type(key, __u32);
	__type(value, struct lb6_chunk);
} addrs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct v6t_root);
} v6t_root SEC(".maps");

/* one value of v6t_nodes_max nodes / v6t_buckets_max buckets: the loader
 * sizes the values and sets the two maxima (every index is checked
 * against them, so the verifier bounds each offset) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 1024 * sizeof(struct moat_v6_node));
} v6t_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 1024 * sizeof(struct moat_v6_bucket));
} v6t_buckets SEC(".maps");

const volatile __u32 v6t_nodes_max = 1024;
const volatile __u32 v6t_buckets_max = 1024;
const volatile __u32 n_chunks = 0;
__u64 result = 0;
__u64 result_loop = 0;

struct trie_ctx {
	const struct v6t_root *root;
	const struct moat_v6_node *nodes;
	const struct moat_v6_bucket *buckets;
};

#define MOAT_V6T_ROOT_GET(ctx, i) \
	(((struct trie_ctx *)(ctx))->root->e[(i) & (MOAT_V6T_ROOT_ENTRIES - 1)])
#define MOAT_V6T_NODE_GET(ctx, i) \
	((i) < v6t_nodes_max ? &((struct trie_ctx *)(ctx))->nodes[(i)] : NULL)
#define MOAT_V6T_BUCKET_GET(ctx, i) \
	((i) < v6t_buckets_max ? &((struct trie_ctx *)(ctx))->buckets[(i)] : NULL)
#include "moat_trie6.h"

static __always_inline long chunk(__u32 i, void *ctx, int lookup)
{
	struct lb6_chunk *c = bpf_map_lookup_elem(&addrs6, &i);
	__u32 zero = 0;
	struct trie_ctx t;
	__u64 *sum = ctx, s = 0;
	int j;

	t.root = bpf_map_lookup_elem(&v6t_root, &zero);
	t.nodes = bpf_map_lookup_elem(&v6t_nodes, &zero);
	t.buckets = bpf_map_lookup_elem(&v6t_buckets, &zero);
	if (!c || !t.root || !t.nodes || !t.buckets)
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
