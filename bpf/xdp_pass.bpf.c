// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_pass.bpf.c - pass everything.  On veth, frames a peer sends with
 * XDP_TX (moat's tarpit SYN-ACKs) are delivered only when the receiving
 * veth has an XDP program attached; the lab attaches this one there.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int moat_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
