// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * calib.bpf.c - the benchmark's yardstick for the host's speed: a program
 * that touches no memory but its context and runs a fixed chain of 64
 * dependent register adds, then drops.  The development VM's vCPUs run at
 * two speeds, switching every 0.1 s to several seconds (the host, not
 * anything in the guest: docs/xdp.md); measured next to every round of
 * xdp_bench, its cost says which speed that round ran at, so rounds can
 * be counted per speed.  Never attached anywhere.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* one add the compiler cannot fold into its neighbours */
#define CALIB_ADD1 __asm__ __volatile__("%[x] += 1" : [x] "+r"(x));
#define CALIB_ADD8 CALIB_ADD1 CALIB_ADD1 CALIB_ADD1 CALIB_ADD1 \
		   CALIB_ADD1 CALIB_ADD1 CALIB_ADD1 CALIB_ADD1

SEC("xdp")
int moat_calib(struct xdp_md *ctx)
{
	__u64 x = ctx->ingress_ifindex;

	CALIB_ADD8 CALIB_ADD8 CALIB_ADD8 CALIB_ADD8
	CALIB_ADD8 CALIB_ADD8 CALIB_ADD8 CALIB_ADD8
	return x == 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
