// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lookup_bench.bpf.c - the memory cost of the verdict-table lookup inside
 * the kernel: one BPF_PROG_TEST_RUN runs the shared IPv4 lookup
 * (moat_maps.bpf.h, the code moat_xdp runs) over n_addrs addresses from the
 * "addrs" array with bpf_loop.  mode 1 only reads the addresses, so the
 * loop's own cost can be subtracted.  The loader makes tbl24 and groups
 * share moat_xdp's maps (bpf_map__reuse_fd) so both see one table.
 */
#include "moat_maps.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 20);     /* loader resizes */
	__type(key, __u32);
	__type(value, __u32);
} addrs SEC(".maps");

const volatile __u32 n_addrs = 0;
const volatile __u32 mode = 0;      /* 0 lookup, 1 read addresses only */
__u64 result = 0;                   /* sum of actions: keeps the work alive */

/* one_lookup - bpf_loop callback: look up address i */
static long one_lookup(__u32 i, void *ctx)
{
	__u64 *sum = ctx;
	__u32 *a = bpf_map_lookup_elem(&addrs, &i);

	if (!a)
		return 1;
	if (mode == 0)
		*sum += moat_lookup_v4(NULL, *a);
	else
		*sum += *a & 3;
	return 0;
}

SEC("xdp")
int moat_lookup_bench(struct xdp_md *ctx)
{
	__u64 sum = 0;

	bpf_loop(n_addrs, one_lookup, &sum, 0);
	result = sum;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
