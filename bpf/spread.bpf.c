// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * spread.bpf.c - the benchmark's wrapper for a flood from many sources
 * (xdp_bench spread): BPF_PROG_TEST_RUN repeats one frame, so this program
 * writes the next source address of spread_src (network byte order; the
 * index from a per-CPU counter, modulo nsrc) into the frame's IPv4 source
 * and tail-calls spread_next[0]: moat's program, or the bare drop for the
 * floor.  Both measurements pay for the wrapper alike.  Expects an
 * untagged Ethernet/IPv4 frame; never attached anywhere.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SPREAD_MAX (1u << 22)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SPREAD_MAX);
	__type(key, __u32);
	__type(value, __u32);
} spread_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spread_ctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} spread_next SEC(".maps");

const volatile __u32 nsrc = 1; /* addresses in spread_src, 1..SPREAD_MAX */

SEC("xdp")
int moat_spread(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0, *c, *src, i;

	if (data + 34 > data_end)
		return XDP_ABORTED;
	c = bpf_map_lookup_elem(&spread_ctr, &zero);
	if (!c)
		return XDP_ABORTED;
	i = *c;
	*c = i + 1 < nsrc ? i + 1 : 0;
	src = bpf_map_lookup_elem(&spread_src, &i);
	if (!src)
		return XDP_ABORTED;
	*(__u32 *)(data + 26) = *src; /* iph->saddr */
	bpf_tail_call(ctx, &spread_next, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
