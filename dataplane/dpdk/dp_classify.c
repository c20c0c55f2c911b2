/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dp_classify.c - gate 1 on a burst of mbufs: bpf/moat_verdict.h expanded
 * over moat-dpdk's per-lcore state (dp_classify.h), the lookup of
 * dp_lookup.h, and three passes over the burst so that the table's lines
 * are in cache when the verdict needs them (the shape of DPDK's
 * rte_lpm_lookupx4 and l3fwd's burst loop): parse every frame and
 * prefetch its tbl24 entry; read the entries and prefetch the groups they
 * point at; then decide each frame in order.  The three passes are three
 * calls, so a worker can run other work between them (moat_dpdk.c parses
 * the next burst while this one's groups arrive).
 */
#include <errno.h>
#include <string.h>

#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dp_classify.h"
#include "dp_lookup.h"
#include "moat_parse.h"

/* the configuration: the XDP program's .rodata (moat_verdict.h reads it
 * without a context) */
static struct moat_xdp_config dp_cfg;

/* port_slot1[dport] - moat_port_slot(dport) + 1 (0: not an SMTP port),
 * one load instead of a walk of the port set per frame; built from
 * dp_cfg.ports by dp_shared_init, the first slot of a port winning as in
 * the walk */
static uint8_t port_slot1[65536];

/* frames ahead of the parser whose bytes are prefetched (l3fwd's
 * PREFETCH_OFFSET); -DDP_PREFETCH_AHEAD=0: none (docs/dpdk.md's A/B) */
#ifndef DP_PREFETCH_AHEAD
#define DP_PREFETCH_AHEAD 4
#endif

/* frame_hint - where m's frame usually starts, for a prefetch: behind the
 * mbuf header and the headroom, as rte_pktmbuf_alloc() leaves a mbuf of
 * a pool without a private area (moat-dpdk's).  A hint computed from the
 * mbuf's address alone: it waits for no load of the mbuf's header (which
 * may not be in the cache yet either), and a wrong guess costs a line. */
static inline const void *frame_hint(const struct rte_mbuf *m)
{
	return (const char *)(m + 1) + RTE_PKTMBUF_HEADROOM;
}

/* src_slot - the limiter slot of key (Fibonacci hash) */
static inline struct dp_src_slot *src_slot(struct dp_lcore *lc, uint64_t key)
{
	struct dp_shared *sh = lc->sh;

	return &sh->src[(uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & sh->src_mask];
}

/* src_get - the GCRA state of source key, or NULL when its slot holds
 * another source */
static inline __u64 *src_get(struct dp_lcore *lc, const __u64 *key)
{
	struct dp_src_slot *s = src_slot(lc, *key);

	return s->key == *key ? &s->tat : NULL;
}

/* src_new - the slot of key, taken over at 0 (the older source loses its
 * state: XDP's LRU makes room the same way) */
static inline __u64 *src_new(struct dp_lcore *lc, const __u64 *key)
{
	struct dp_src_slot *s = src_slot(lc, *key);

	s->tat = 0;
	s->key = *key;
	return &s->tat;
}

/* stat_row - lc's counter row of port slot (-1: no port) */
static inline struct moat_xdp_stat_row *stat_row(struct dp_lcore *lc, int slot)
{
	unsigned k = (unsigned)(slot + 1);

	return k < MOAT_XDP_STAT_ROWS ? &lc->stats.row[k] : NULL;
}

/* set_len - the frame is len bytes now: only shorter, one segment */
static inline int set_len(struct rte_mbuf *m, int len)
{
	if (len < 0 || m->nb_segs != 1 || (uint32_t)len > rte_pktmbuf_data_len(m))
		return -1;
	m->data_len = (uint16_t)len;
	m->pkt_len = (uint32_t)len;
	m->ol_flags = 0;   /* checksums are complete: no TX offload asked */
	return 0;
}

/* event_submit - hand the scratch event to the ring; full: counted lost */
static inline void event_submit(struct dp_lcore *lc, const struct moat_event *e)
{
	if (rte_ring_mp_enqueue_elem(lc->sh->events, (void *)e, sizeof(*e)) != 0)
		lc->stats.row[0].c[MOAT_STAT_EVENT_LOST]++;
}

/* dp_now - this burst's clock: read once, when first needed */
static inline uint64_t dp_now(struct dp_lcore *lc)
{
	if (unlikely(!lc->now) && lc->clock)
		lc->now = lc->clock();
	return lc->now;
}

static inline uint32_t lookup(struct dp_lcore *lc, const struct moat_pkt *p)
{
	return p->family == 4 ? dp_lookup_v4(lc->view, p->saddr4) :
				dp_lookup_v6(lc->view, p->saddr6);
}

#define MOAT_V_CTX struct dp_lcore
#define MOAT_V_CFG dp_cfg
#define MOAT_V_NOW(ctx) dp_now(ctx)
#define MOAT_V_LIMIT(ctx, which) \
	((which) < MOAT_LIMIT__MAX ? &(ctx)->sh->limits[(which)] : NULL)
#define MOAT_V_SRC_LIMIT(ctx, keyp) src_get((ctx), (keyp))
#define MOAT_V_SRC_LIMIT_NEW(ctx, keyp) src_new((ctx), (keyp))
#define MOAT_V_STAT_ROW(ctx, slot) stat_row((ctx), (slot))
#define MOAT_V_DATA(ctx) rte_pktmbuf_mtod((ctx)->m, void *)
#define MOAT_V_DATA_END(ctx) \
	((void *)(rte_pktmbuf_mtod((ctx)->m, char *) + rte_pktmbuf_data_len((ctx)->m)))
#define MOAT_V_SET_LEN(ctx, len) set_len((ctx)->m, (len))
#define MOAT_V_IFINDEX(ctx) ((ctx)->ifindex)
#define MOAT_V_EVENT_RESERVE(ctx) ((ctx)->sh->events ? &(ctx)->ev : NULL)
#define MOAT_V_EVENT_SUBMIT(ctx, e) event_submit((ctx), (e))
#define MOAT_V_LOOKUP(ctx, p) lookup((ctx), (p))
/* a due event report and a tarpit reply out of line: the decision loop
 * keeps its registers for the common frame */
#define MOAT_V_RARE __attribute__((noinline, cold))
#include "moat_verdict.h"

/* lookup_v6 - an IPv6 source's action, out of the decision loop (the
 * trie walk inlined there would cost the IPv4 frames registers) */
static __attribute__((noinline)) uint32_t lookup_v6(const struct dp_table_view *v,
						    const uint8_t addr[16])
{
	return dp_lookup_v6(v, addr);
}

int dp_shared_init(struct dp_shared *sh, const uint16_t *ports, unsigned n_ports,
		   uint32_t event_sample, const __u64 isn_key[2],
		   struct dp_src_slot *src, uint32_t src_slots)
{
	struct moat_xdp_config *c = &dp_cfg;

	if (!n_ports || n_ports > MOAT_PORTS_MAX || !src || !src_slots ||
	    (src_slots & (src_slots - 1)) || (event_sample & (event_sample - 1)))
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < n_ports; i++) {
		c->ports[i] = ports[i];
		c->ports_net[i] = rte_cpu_to_be_16(ports[i]);
	}
	c->n_ports = n_ports;
	memset(port_slot1, 0, sizeof(port_slot1));
	for (unsigned i = n_ports; i-- > 0;)
		port_slot1[ports[i]] = (uint8_t)(i + 1);
	c->ncpus = 1;
	c->tarpit_src = moat_xdp_budget(MOAT_XDP_DEF_SRC_PPS, MOAT_XDP_DEF_SRC_BURST);
	c->tarpit_global = moat_xdp_budget(MOAT_XDP_DEF_GLOBAL_PPS, MOAT_XDP_DEF_GLOBAL_BURST);
	c->events = moat_xdp_budget(MOAT_XDP_DEF_EVENT_PPS, MOAT_XDP_DEF_EVENT_PPS);
	c->events_on = event_sample != 0;
	c->event_gap_max = event_sample;
	c->isn_key[0] = isn_key[0];
	c->isn_key[1] = isn_key[1];
	memset(sh->limits, 0, sizeof(sh->limits));
	sh->src = src;
	sh->src_mask = src_slots - 1;
	return 0;
}

void dp_set_tarpit_budget(uint32_t src_pps, uint32_t src_burst)
{
	dp_cfg.tarpit_src = moat_xdp_budget(src_pps, src_burst);
}

void dp_set_tarpit_global_budget(uint32_t pps, uint32_t burst)
{
	dp_cfg.tarpit_global = moat_xdp_budget(pps, burst);
}

int dp_port_slot(uint16_t dport)
{
	return (int)port_slot1[dport] - 1;
}

/* parse_general - moat_parse()'s general walk, out of the parse loop
 * (inlined there twice, it would crowd the common frame's code) */
static __attribute__((noinline)) int parse_general(const uint8_t *d, const uint8_t *end,
						   struct moat_pkt *p)
{
	return moat_parse_general(d, end, p);
}

/* parse_one - frame i of b: moat_parse(), its two halves apart (after the
 * fast one the fields are at hand, not reloaded), its port slot, the
 * prefetch of its tbl24 line; the results stored last (an int8_t store
 * may alias anything the caller reads) */
static __rte_always_inline void parse_one(const uint32_t *tbl24, struct dp_burst *b, unsigned i)
{
	const struct rte_mbuf *m = b->m[i];
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	const uint8_t *end = d + rte_pktmbuf_data_len(m);
	struct moat_pkt *p = &b->p[i];
	int r, s;

	if (likely(moat_parse_fast4(d, end, p))) {
		r = MOAT_PARSE_TCP;
		s = (int)port_slot1[p->dport] - 1;
		if (s >= 0)
			rte_prefetch0(&tbl24[p->saddr4 >> 8]);
	} else {
		r = parse_general(d, end, p);
		s = r == MOAT_PARSE_TCP ? (int)port_slot1[p->dport] - 1 : -1;
		if (s >= 0 && p->family == 4)
			rte_prefetch0(&tbl24[p->saddr4 >> 8]);
	}
	b->res[i] = (int8_t)r;
	b->slot[i] = (int8_t)s;
}

void dp_classify_parse(const struct dp_table_view *v, struct dp_burst *b)
{
	const uint32_t *tbl24 = v->tbl24;
	unsigned i = 0, n = b->n < DP_BURST ? b->n : DP_BURST;

	b->n = (uint16_t)n;
#if DP_PREFETCH_AHEAD > 0
	for (; i < n && i < DP_PREFETCH_AHEAD; i++)
		rte_prefetch0(frame_hint(b->m[i]));
	/* the frames with one DP_PREFETCH_AHEAD behind them, then the rest */
	for (i = 0; i + DP_PREFETCH_AHEAD < n; i++) {
		rte_prefetch0(frame_hint(b->m[i + DP_PREFETCH_AHEAD]));
		parse_one(tbl24, b, i);
	}
#endif
	for (; i < n; i++)
		parse_one(tbl24, b, i);
}

void dp_classify_lookup(const struct dp_table_view *v, struct dp_burst *b)
{
	const uint32_t *tbl24 = v->tbl24;
	const struct moat_group *groups = v->groups;
	uint32_t groups_max = v->groups_max;
	unsigned n = b->n;

	for (unsigned i = 0; i < n; i++) {
		uint32_t e;

		if (b->slot[i] < 0 || b->p[i].family != 4)
			continue;
		e = tbl24[b->p[i].saddr4 >> 8];
		b->ent[i] = e;
		if (moat_tbl24_is_group(e) && moat_tbl24_group(e) < groups_max)
			rte_prefetch0(&groups[moat_tbl24_group(e)]);
	}
}

void dp_classify_decide(struct dp_lcore *lc, const struct dp_table_view *v,
			struct dp_burst *b, uint64_t now_ns)
{
	/* the next free place of each out[] (pointers, not counts: fewer
	 * registers in the loop) */
	struct rte_mbuf **ok = b->out[DP_OUT_KERNEL], **ow = b->out[DP_OUT_WIRE],
			**of = b->out[DP_OUT_FREE];
	unsigned n = b->n;
	/* the verdicts, stored into b->verdict at the end: a uint8_t store
	 * into b could alias anything the loop reads */
	uint8_t vd[DP_BURST];

	lc->view = v;
	lc->now = now_ns;
	for (unsigned i = 0; i < n; i++) {
		struct moat_pkt *p = &b->p[i];
		struct rte_mbuf *m = b->m[i];
		int slot = b->slot[i];
		uint32_t act;
		int verdict;

		if (slot < 0) {
			moat_stat_inc(lc, b->res[i] == MOAT_PARSE_TCP ? MOAT_STAT_NOT_SMTP :
				      moat_parse_res_stat(b->res[i]), -1);
			verdict = MOAT_VERDICT_PASS;
		} else {
			act = p->family == 4 ? dp_lookup_v4_entry(v, b->ent[i], p->saddr4) :
					       lookup_v6(v, p->saddr6);
			lc->m = m;
			verdict = moat_verdict_smtp(lc, p, slot, act);
		}
		vd[i] = (uint8_t)verdict;
		/* a branch on a verdict the inlined verdict code has just
		 * branched on: the compiler threads it into those paths */
		if (verdict == MOAT_VERDICT_PASS)
			*ok++ = m;
		else if (verdict == MOAT_VERDICT_TX)
			*ow++ = m;
		else
			*of++ = m;
	}
	memcpy(b->verdict, vd, n);
	b->nout[DP_OUT_KERNEL] = (uint16_t)(ok - b->out[DP_OUT_KERNEL]);
	b->nout[DP_OUT_WIRE] = (uint16_t)(ow - b->out[DP_OUT_WIRE]);
	b->nout[DP_OUT_FREE] = (uint16_t)(of - b->out[DP_OUT_FREE]);
	lc->m = NULL;
}

void dp_classify_burst(struct dp_lcore *lc, const struct dp_table_view *v,
		       struct rte_mbuf **m, uint16_t n, uint64_t now_ns, uint8_t *verdict)
{
	struct dp_burst b;

	b.n = n < DP_BURST ? n : DP_BURST;
	memcpy(b.m, m, b.n * sizeof(m[0]));
	dp_classify_parse(v, &b);
	dp_classify_lookup(v, &b);
	dp_classify_decide(lc, v, &b, now_ns);
	memcpy(verdict, b.verdict, b.n);
}

void dp_stats_add(const struct dp_lcore *lc, uint64_t out[MOAT_STAT__MAX])
{
	for (int r = 0; r < MOAT_XDP_STAT_ROWS; r++)
		for (int s = 0; s < MOAT_STAT__MAX; s++)
			out[s] += lc->stats.row[r].c[s];
}
