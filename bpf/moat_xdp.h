/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_xdp.h - what the XDP program (moat_xdp.bpf.c) and its loader
 * (dataplane/xdp/) share beyond moat_abi.h: the read-only configuration the
 * loader sets before load, its defaults, and map sizing.
 */
#ifndef MOAT_XDP_H
#define MOAT_XDP_H

#include <linux/types.h>

#include "moat_abi.h"

/* Defaults; every one can be changed by the loader before load. */
#define MOAT_XDP_DEF_PORT 25
#define MOAT_XDP_DEF_GROUPS_MAX (1u << 20)   /* 64 MiB of groups */
#define MOAT_XDP_DEF_V6_MAX (1u << 16)
#define MOAT_XDP_DEF_RL_SRC_MAX (1u << 16)   /* sources tracked by the limiter */
#define MOAT_XDP_DEF_SRC_PPS 10              /* tarpit replies per /24 or /48 */
#define MOAT_XDP_DEF_SRC_BURST 20
#define MOAT_XDP_DEF_GLOBAL_PPS 10000        /* tarpit replies in total */
#define MOAT_XDP_DEF_GLOBAL_BURST 20000
#define MOAT_XDP_DEF_EVENT_SAMPLE 1          /* 1 in N refused SYNs reported */
#define MOAT_XDP_DEF_EVENT_PPS 1000          /* events per second at most */
#define MOAT_XDP_EVENTS_BYTES (256 * 1024)   /* ring buffer size */

/* Slots of the "limits" array map: GCRA state (next allowed time, ns). */
enum moat_xdp_limit {
	MOAT_LIMIT_TARPIT = 0,   /* global tarpit reply budget */
	MOAT_LIMIT_EVENTS = 1,   /* event stream budget */
	MOAT_LIMIT__MAX,
};

/*
 * Read-only configuration (the program's .rodata, fixed at load).  A rate
 * of 0 disables: tarpit rate 0 answers no SYN (tarpit sources are dropped),
 * event_sample 0 reports nothing.
 */
struct moat_xdp_config {
	__u16 ports[MOAT_PORTS_MAX];  /* SMTP ports filtered, host order */
	__u32 n_ports;                /* valid entries in ports[] */
	__u32 tarpit_src_pps;         /* per source /24 (IPv4) or /48 (IPv6) */
	__u32 tarpit_src_burst;
	__u32 tarpit_global_pps;
	__u32 tarpit_global_burst;
	__u32 event_sample;           /* report 1 in N refused SYNs */
	__u32 event_max_pps;
	__u32 pad;
	__u64 isn_key[2];             /* SipHash key of the tarpit ISN */
};

/* moat_xdp_src_key - the rate limiter's key: source /24 or /48 */
static inline __u64 moat_xdp_src_key(__u8 family, __u32 saddr4,
				     const __u8 *saddr6)
{
	if (family == 4)
		return (4ull << 56) | (saddr4 >> 8);
	return (6ull << 56) | (__u64)saddr6[0] << 40 | (__u64)saddr6[1] << 32 |
	       (__u64)saddr6[2] << 24 | (__u64)saddr6[3] << 16 |
	       (__u64)saddr6[4] << 8 | saddr6[5];
}

#endif /* MOAT_XDP_H */
