// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bare_drop.bpf.c - the floor every XDP benchmark compares against: parse
 * nothing, drop everything.  Also used to sink traffic in lab tests.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int moat_bare_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
