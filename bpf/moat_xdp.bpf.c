// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * moat_xdp.bpf.c - gate 1 of moat: refuse SYNs from listed sources at the
 * NIC.  Parses the frame (moat_parse.h), looks the source up in the
 * compiled verdict table (layout in moat_abi.h) and, for TCP to one of the
 * configured SMTP ports:
 *   DROP    SYN -> XDP_DROP
 *   TARPIT  SYN -> zero-window SYN-ACK via XDP_TX (rate-limited per source
 *           /24 or /48 and globally; over the limit -> XDP_DROP); every
 *           other segment from the source -> XDP_DROP.  No state, no RST.
 *   PASS, ALLOW -> XDP_PASS
 * Everything else passes untouched.  Per-CPU counters per verdict, per port
 * and per parse failure; refused SYNs are sampled into a ring buffer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "moat_abi.h"
#include "moat_parse.h"
#include "moat_xdp.h"

/* --- maps: the verdict table (moat_abi.h) ------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MOAT_TBL24_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} tbl24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MOAT_XDP_DEF_GROUPS_MAX); /* loader resizes */
	__type(key, __u32);
	__type(value, struct moat_group);
} groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct moat_v6_plens);
} v6_plens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MOAT_XDP_DEF_V6_MAX);    /* loader resizes */
	__type(key, struct moat_v6_key);
	__type(value, __u32);
} v6_rules SEC(".maps");

/* --- maps: counters, limiter state, events ------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MOAT_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MOAT_PORTS_MAX * MOAT_STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} port_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MOAT_XDP_DEF_RL_SRC_MAX);
	__type(key, __u64);
	__type(value, __u64);
} rl_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MOAT_LIMIT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MOAT_XDP_EVENTS_BYTES);
} events SEC(".maps");

const volatile struct moat_xdp_config moat_cfg = {
	.ports = { MOAT_XDP_DEF_PORT },
	.n_ports = 1,
	.tarpit_src_pps = MOAT_XDP_DEF_SRC_PPS,
	.tarpit_src_burst = MOAT_XDP_DEF_SRC_BURST,
	.tarpit_global_pps = MOAT_XDP_DEF_GLOBAL_PPS,
	.tarpit_global_burst = MOAT_XDP_DEF_GLOBAL_BURST,
	.event_sample = MOAT_XDP_DEF_EVENT_SAMPLE,
	.event_max_pps = MOAT_XDP_DEF_EVENT_PPS,
};

/* --- table lookup -------------------------------------------------------
 * Accessor macros through which the shared lookup reads the maps.  The
 * lookup itself is moat_lookup_local.h until bpf/moat_lookup.h (branch
 * `table`) replaces it; both read the same macros.
 */
static __always_inline const __u32 *moat_map_tbl24(__u32 i)
{
	return bpf_map_lookup_elem(&tbl24, &i);
}

static __always_inline const struct moat_group *moat_map_group(__u32 i)
{
	return bpf_map_lookup_elem(&groups, &i);
}

static __always_inline const struct moat_v6_plens *moat_map_plens(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&v6_plens, &zero);
}

#define MOAT_TBL24_GET(i) moat_map_tbl24(i)
#define MOAT_GROUP_GET(i) moat_map_group(i)
#define MOAT_V6_PLENS_GET() moat_map_plens()
#define MOAT_V6_RULE_GET(kp) ((const __u32 *)bpf_map_lookup_elem(&v6_rules, (kp)))
#include "moat_lookup_local.h"

/* stat_inc - bump a global counter and, for slot >= 0, the port's one */
static __always_inline void stat_inc(__u32 idx, int slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
	if (slot >= 0 && slot < MOAT_PORTS_MAX) {
		__u32 k = (__u32)slot * MOAT_STAT__MAX + idx;

		v = bpf_map_lookup_elem(&port_stats, &k);
		if (v)
			*v += 1;
	}
}

/*
 * gcra_allow - generic cell rate algorithm on one 64-bit state word (the
 * earliest time the next event conforms).  Racy across CPUs on purpose: a
 * lost update admits at most one extra event per CPU.
 */
static __always_inline int gcra_allow(__u64 *tat, __u64 now, __u32 pps,
				      __u32 burst)
{
	__u64 interval, tau, t = *tat;

	if (pps == 0)
		return 0;
	interval = 1000000000ull / pps;
	tau = interval * (burst > 1 ? burst - 1 : 0);
	if (t < now)
		t = now;
	if (t - now > tau)
		return 0;
	*tat = t + interval;
	return 1;
}

/* limit_global - one GCRA budget from the limits array */
static __always_inline int limit_global(__u32 which, __u64 now, __u32 pps,
					__u32 burst)
{
	__u64 *tat = bpf_map_lookup_elem(&limits, &which);

	return tat && gcra_allow(tat, now, pps, burst);
}

/* tarpit_allowed - may this SYN get a reply: source, then global budget */
static __always_inline int tarpit_allowed(const struct moat_pkt *p)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 key = moat_xdp_src_key(p->family, p->saddr4, p->saddr6);
	__u64 *tat = bpf_map_lookup_elem(&rl_src, &key);

	if (!tat) {
		__u64 init = 0;

		bpf_map_update_elem(&rl_src, &key, &init, BPF_NOEXIST);
		tat = bpf_map_lookup_elem(&rl_src, &key);
		if (!tat)
			return 0;
	}
	if (!gcra_allow(tat, now, moat_cfg.tarpit_src_pps,
			moat_cfg.tarpit_src_burst))
		return 0;
	return limit_global(MOAT_LIMIT_TARPIT, now, moat_cfg.tarpit_global_pps,
			    moat_cfg.tarpit_global_burst);
}

/* report - sample one refused SYN into the event ring buffer */
static __always_inline void report(struct xdp_md *ctx,
				   const struct moat_pkt *p, __u32 act,
				   __u32 stat)
{
	struct moat_event *e;
	__u64 now;

	if (moat_cfg.event_sample == 0)
		return;
	if (moat_cfg.event_sample > 1 &&
	    bpf_get_prandom_u32() % moat_cfg.event_sample != 0)
		return;
	now = bpf_ktime_get_ns();
	if (!limit_global(MOAT_LIMIT_EVENTS, now, moat_cfg.event_max_pps,
			  moat_cfg.event_max_pps)) {
		stat_inc(MOAT_STAT_EVENT_LOST, -1);
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(MOAT_STAT_EVENT_LOST, -1);
		return;
	}
	e->ts_ns = now;
	e->stat = stat;
	e->ifindex = ctx->ingress_ifindex;
	e->family = p->family;
	e->action = (__u8)act;
	e->sport = p->sport;
	e->dport = p->dport;
	e->pad = 0;
	if (p->family == 4) {
		__u32 a = moat_be32(p->saddr4);

		__builtin_memset(e->saddr, 0, sizeof(e->saddr));
		__builtin_memcpy(e->saddr, &a, 4);
	} else {
		__builtin_memcpy(e->saddr, p->saddr6, 16);
	}
	bpf_ringbuf_submit(e, 0);
}

/* port_slot - index of dport in the configured port set, or -1 */
static __always_inline int port_slot(__u16 dport)
{
	int i;

	for (i = 0; i < MOAT_PORTS_MAX; i++) {
		if ((__u32)i >= moat_cfg.n_ports)
			break;
		if (moat_cfg.ports[i] == dport)
			return i;
	}
	return -1;
}

/* tarpit - answer the SYN in place and send it back out (XDP_TX) */
static __always_inline int tarpit(struct xdp_md *ctx, struct moat_pkt *p,
				  int slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 key[2] = { moat_cfg.isn_key[0], moat_cfg.isn_key[1] };
	int len;

	if (!tarpit_allowed(p)) {
		stat_inc(MOAT_STAT_TARPIT_LIMITED, slot);
		report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT_LIMITED);
		return XDP_DROP;
	}
	len = moat_tarpit_build(data, data_end, p, moat_tarpit_isn(key, p));
	if (len < 0 ||
	    bpf_xdp_adjust_tail(ctx, len - (int)bpf_xdp_get_buff_len(ctx))) {
		stat_inc(MOAT_STAT_TARPIT_FAIL, slot);
		return XDP_DROP;
	}
	stat_inc(MOAT_STAT_TARPIT, slot);
	report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT);
	return XDP_TX;
}

SEC("xdp")
int moat_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct moat_pkt p;
	__u32 act;
	int res, slot;

	res = moat_parse(data, data_end, &p);
	if (res != MOAT_PARSE_TCP) {
		stat_inc(moat_parse_res_stat(res), -1);
		return XDP_PASS;
	}
	slot = port_slot(p.dport);
	if (slot < 0) {
		stat_inc(MOAT_STAT_NOT_SMTP, -1);
		return XDP_PASS;
	}
	act = p.family == 4 ? moat_lookup_v4(p.saddr4)
			    : moat_lookup_v6(p.saddr6);
	if ((p.tcp_flags & (MOAT_TCP_SYN | MOAT_TCP_ACK)) != MOAT_TCP_SYN) {
		/* after a tarpit SYN-ACK: silence, never a RST */
		if (act == MOAT_ACT_TARPIT) {
			stat_inc(MOAT_STAT_TARPIT_SILENCE, slot);
			return XDP_DROP;
		}
		stat_inc(MOAT_STAT_NON_SYN, slot);
		return XDP_PASS;
	}
	switch (act) {
	case MOAT_ACT_DROP:
		stat_inc(MOAT_STAT_DROP, slot);
		report(ctx, &p, act, MOAT_STAT_DROP);
		return XDP_DROP;
	case MOAT_ACT_TARPIT:
		return tarpit(ctx, &p, slot);
	case MOAT_ACT_ALLOW:
		stat_inc(MOAT_STAT_ALLOW, slot);
		report(ctx, &p, act, MOAT_STAT_ALLOW);
		return XDP_PASS;
	default:
		stat_inc(MOAT_STAT_PASS, slot);
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
