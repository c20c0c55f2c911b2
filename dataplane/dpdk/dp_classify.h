/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_classify.h - moat-dpdk's burst classifier: gate 1's parser
 * (bpf/moat_parse.h), lookup (dp_lookup.h over the table) and verdict
 * logic (bpf/moat_verdict.h) run on a burst of mbufs, with the table's
 * lines prefetched across the burst.  The XDP program expands the same
 * headers over its maps: a frame gets the same verdict from both, and a
 * tarpitted SYN is rewritten in place into the same SYN-ACK.
 *
 * State: the configuration is the process's (like the XDP program's
 * .rodata: one per moat-dpdk, set by dp_shared_init before workers run);
 * struct dp_shared is what XDP keeps in maps shared by every CPU (the
 * global GCRA budgets, the per-source limiter, the
 * event ring), written without locks exactly as racily as XDP writes its
 * maps (a lost update admits at most one extra reply per lcore); struct
 * dp_lcore is one worker's own (counter rows, clock, scratch event).
 */
#ifndef MOAT_DP_CLASSIFY_H
#define MOAT_DP_CLASSIFY_H

#include <stdint.h>

#include "moat_abi.h"
#include "moat_parse.h"
#include "moat_xdp.h"
#include "dp_table.h"

struct rte_mbuf;
struct rte_ring;

#define DP_BURST 32

/* One slot of the per-source tarpit limiter: direct-mapped by a hash of
 * the source /24 or /48, so an old source makes room for a new one (XDP:
 * an LRU hash). */
struct dp_src_slot {
	__u64 key;
	__u64 tat;
};

struct dp_shared {
	__u64 limits[MOAT_LIMIT__MAX] __attribute__((aligned(64)));
	struct dp_src_slot *src;              /* src_mask + 1 slots */
	uint32_t src_mask;
	struct rte_ring *events;              /* struct moat_event elements, or NULL */
};

struct dp_lcore {
	struct moat_xdp_stat_cpu stats;       /* rows as XDP's (moat_xdp.h) */
	struct dp_shared *sh;
	const struct dp_table_view *view;     /* this burst's */
	struct rte_mbuf *m;                   /* the frame being decided */
	uint64_t now;                         /* this burst's clock, ns; 0: not
					       * read yet (dp_now) */
	uint64_t (*clock)(void);              /* the coarse clock, ns, read at most
					       * once per burst and only when a
					       * verdict needs it; NULL: now only */
	uint32_t ifindex;                     /* reported in events: the port id */
	struct moat_event ev;                 /* scratch for one event */
};

/* dp_shared_init - configuration from the loader's knobs, as
 * xdp_backend.c sets the XDP program's: ports (host order, 1..
 * MOAT_PORTS_MAX), event_sample (0 or a power of two), the ISN key;
 * tarpit and event budgets at moat_xdp.h's defaults; src_slots (a power
 * of two) limiter slots in src (zeroed by the caller).  Errors: -EINVAL. */
int dp_shared_init(struct dp_shared *sh, const uint16_t *ports, unsigned n_ports,
		   uint32_t event_sample, const __u64 isn_key[2],
		   struct dp_src_slot *src, uint32_t src_slots);

/* dp_set_tarpit_budget - the per-source tarpit budget (pps, burst)
 * instead of moat_xdp.h's default (the unit test's knob, as the bpf suite
 * sets the XDP program's); before workers run */
void dp_set_tarpit_budget(uint32_t src_pps, uint32_t src_burst);

/* dp_set_tarpit_global_budget - the global tarpit budget (pps, burst)
 * instead of moat_xdp.h's default; before workers run */
void dp_set_tarpit_global_budget(uint32_t pps, uint32_t burst);

/*
 * One burst through the classifier's three passes, for a worker that
 * interleaves them with other work (the memory latency of the table's
 * lines hidden behind it):
 *   dp_classify_parse   parse each frame, find its port, prefetch the
 *                       tbl24 line of each IPv4 source to look up; reads
 *                       no table entry, so it may run before the
 *                       quiescent state that precedes the other two;
 *   dp_classify_lookup  read those tbl24 entries, prefetch their groups;
 *   dp_classify_decide  finish the lookups, act (moat_verdict.h) in
 *                       order: verdict[] filled, counters, events, tarpit
 *                       rewrites, as dp_classify_burst below; and the
 *                       frames sorted by what the caller does with them
 *                       (out[DP_OUT_*], in order within each).
 * lookup and decide of a burst run between the same two quiescent
 * states of the worker (what lookup read must not be reclaimed before
 * decide reads the group it points at).  The caller fills m[] and n
 * (<= DP_BURST) before dp_classify_parse.
 */
enum dp_out {
	DP_OUT_KERNEL,                /* MOAT_VERDICT_PASS: to the kernel */
	DP_OUT_WIRE,                  /* MOAT_VERDICT_TX: the reply, sent back */
	DP_OUT_FREE,                  /* MOAT_VERDICT_DROP: freed */
	DP_OUT__MAX
};

struct dp_burst {
	struct rte_mbuf *m[DP_BURST];
	uint16_t n;
	int8_t res[DP_BURST];         /* moat_parse()'s result */
	int8_t slot[DP_BURST];        /* SMTP port slot; -1: nothing to look up */
	uint8_t verdict[DP_BURST];    /* enum moat_verdict, by dp_classify_decide */
	uint32_t ent[DP_BURST];       /* an IPv4 source's tbl24 entry */
	struct moat_pkt p[DP_BURST];
	uint16_t nout[DP_OUT__MAX];   /* by dp_classify_decide */
	struct rte_mbuf *out[DP_OUT__MAX][DP_BURST];
};

void dp_classify_parse(const struct dp_table_view *v, struct dp_burst *b);
void dp_classify_lookup(const struct dp_table_view *v, struct dp_burst *b);
void dp_classify_decide(struct dp_lcore *lc, const struct dp_table_view *v,
			struct dp_burst *b, uint64_t now_ns);
/* (now_ns 0: lc->clock() when a verdict first needs the time, if at all:
 * a tarpit reply, an event report) */

/* dp_classify_burst - the verdict (enum moat_verdict) on each of n <=
 * DP_BURST frames into verdict[]; a MOAT_VERDICT_TX frame has been
 * rewritten into its reply (data_len and pkt_len shortened).  Counters in
 * lc->stats, events into lc->sh->events.  now_ns: a coarse monotonic clock. */
void dp_classify_burst(struct dp_lcore *lc, const struct dp_table_view *v,
		       struct rte_mbuf **m, uint16_t n, uint64_t now_ns, uint8_t *verdict);

/* dp_port_slot - the slot of dport in the configured port set, or -1:
 * moat_verdict.h's moat_port_slot() as the burst classifier finds it */
int dp_port_slot(uint16_t dport);

/* dp_stats_add - add lc's counters (all rows) into out */
void dp_stats_add(const struct dp_lcore *lc, uint64_t out[MOAT_STAT__MAX]);

#endif /* MOAT_DP_CLASSIFY_H */
