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
 * tbl24, groups and stats are addressed as map values, never looked up
 * (SEC(MOAT_XDP_SEC), see moat_maps.bpf.h).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "moat_abi.h"
#include "moat_parse.h"
#include "moat_xdp.h"

#include "moat_maps.bpf.h"

/* --- maps: counters, limiter state, events ------------------------------ */
/* counters: one value, a struct moat_xdp_stat_cpu per possible CPU (see
 * moat_xdp.h; the loader sets the size), addressed directly */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct moat_xdp_stat_cpu)); /* x CPUs */
} stats SEC(".maps");

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

/* Filled by the loader (moat_xdp_open); these are only what a bare load
 * (bpftool) gets: port 25, no tarpit replies, no events. */
const volatile struct moat_xdp_config moat_cfg = {
	.ports = { MOAT_XDP_DEF_PORT },
	.ports_net = { moat_be16(MOAT_XDP_DEF_PORT) },
	.n_ports = 1,
};

/* moat_cpu_id - bpf_get_smp_processor_id() declared as returning 64
 * bits: the id is a u32 in a zero-extended register either way, and the
 * compiler then adds no zero extension (two instructions without 32-bit
 * ALU ops) */
static __u64 (*const moat_cpu_id)(void) = (void *)BPF_FUNC_get_smp_processor_id;

/* stats_value - the counters' one value: the map reference is its
 * address (see moat_maps.bpf.h); the empty asm hides the map
 * definition's own size from the compiler */
static __always_inline struct moat_xdp_stat_cpu *stats_value(void)
{
	struct moat_xdp_stat_cpu *c = (void *)&stats;

	__asm__ __volatile__("" : "+r"(c));
	if (!c)
		__builtin_unreachable();    /* a map value's address */
	return c;
}

/* stat_cpu - this CPU's counter rows; NULL only past the CPUs the loader
 * sized the map for (never) */
static __always_inline struct moat_xdp_stat_cpu *stat_cpu(void)
{
	__u64 cpu = moat_cpu_id();

	if (cpu >= moat_cfg.ncpus)
		return NULL;
	return &stats_value()[cpu];
}

/* stat_row - this CPU's counter row of port slot (-1: no port), or NULL */
static __always_inline struct moat_xdp_stat_row *stat_row(int slot)
{
	struct moat_xdp_stat_cpu *c = stat_cpu();
	__u32 k = (__u32)(slot + 1);

	if (!c || k >= MOAT_XDP_STAT_ROWS)
		return NULL;
	return &c->row[k];
}

/* row_inc - bump counter idx of row r; returns its new per-CPU value (0 if
 * there is no row) */
static __always_inline __u64 row_inc(struct moat_xdp_stat_row *r, __u32 idx)
{
	if (!r || idx >= MOAT_STAT__MAX)
		return 0;
	return ++r->c[idx];
}

/* stat_inc - bump counter idx in the row of port slot (-1: no port) */
static __always_inline __u64 stat_inc(__u32 idx, int slot)
{
	return row_inc(stat_row(slot), idx);
}

/*
 * gcra_allow - generic cell rate algorithm on one 64-bit state word (the
 * earliest time the next event conforms).  Racy across CPUs on purpose: a
 * lost update admits at most one extra event per CPU.
 */
static __always_inline int gcra_allow(__u64 *tat, __u64 now, __u64 interval,
				      __u64 tau)
{
	__u64 t = *tat;

	if (interval == 0)
		return 0;
	if (t < now)
		t = now;
	if (t - now > tau)
		return 0;
	*tat = t + interval;
	return 1;
}

/* limit_global - one GCRA budget from the limits array */
static __always_inline int limit_global(__u32 which, __u64 now, __u64 interval,
					__u64 tau)
{
	__u64 *tat = bpf_map_lookup_elem(&limits, &which);

	return tat && gcra_allow(tat, now, interval, tau);
}

/*
 * tarpit_allowed - may this SYN get a reply: the global budget must have
 * room (checked first, without spending it: under a flood that is the
 * cheap test), then the source's budget is spent, then the global one.
 */
static __always_inline int tarpit_allowed(const struct moat_pkt *p)
{
	/* coarse clock (jiffies resolution): ample for these budgets, and a
	 * fraction of bpf_ktime_get_ns()'s cost */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 which = MOAT_LIMIT_TARPIT;
	__u64 *gtat = bpf_map_lookup_elem(&limits, &which);
	__u64 key, *tat, t;

	if (!gtat || moat_cfg.tarpit_global.interval_ns == 0)
		return 0;
	t = *gtat > now ? *gtat : now;
	if (t - now > moat_cfg.tarpit_global.tau_ns)
		return 0;
	key = moat_xdp_src_key(p->family, p->saddr4, p->saddr6);
	tat = bpf_map_lookup_elem(&rl_src, &key);
	if (!tat) {
		__u64 init = 0;

		bpf_map_update_elem(&rl_src, &key, &init, BPF_NOEXIST);
		tat = bpf_map_lookup_elem(&rl_src, &key);
		if (!tat)
			return 0;
	}
	if (!gcra_allow(tat, now, moat_cfg.tarpit_src.interval_ns,
			moat_cfg.tarpit_src.tau_ns))
		return 0;
	return gcra_allow(gtat, now, moat_cfg.tarpit_global.interval_ns,
			  moat_cfg.tarpit_global.tau_ns);
}

/* event_skip - count one refused SYN against row's event gap: 1 while
 * it is skipped, 0 when it is to be reported (no row: never) */
static __always_inline int event_skip(struct moat_xdp_stat_row *row)
{
	__u64 left;

	if (!row)
		return 1;
	left = row->ev_left;
	if (!left)
		return 0;
	row->ev_left = left - 1;
	return 1;
}

/*
 * event_regap - a report is due in row: set how many refused SYNs of the
 * row (per CPU) the next reports skip.  A report within
 * MOAT_XDP_EVENT_QUIET_NS of the row's last one doubles the gap (up to
 * event_gap_max), a later one resets it to 1: at a low rate every refused
 * SYN is reported (within the global budget), under a flood one in
 * event_gap_max, so the fast case goes to moat_general that rarely.  After
 * a flood the next report comes within event_gap_max SYNs of the row.
 */
static __always_inline void event_regap(struct moat_xdp_stat_row *row,
					__u64 now)
{
	__u64 gap = 1;

	if (now - row->ev_last_ns < MOAT_XDP_EVENT_QUIET_NS) {
		gap = row->ev_gap * 2;
		if (gap > moat_cfg.event_gap_max)
			gap = moat_cfg.event_gap_max;
		if (gap == 0)
			gap = 1;
	}
	row->ev_gap = gap;
	row->ev_last_ns = now;
	row->ev_left = gap - 1;
}

/*
 * report - sample one refused SYN (counted in row) into the event ring
 * buffer: when its row's gap says so (event_skip, event_regap), then
 * within the global event budget.  No division, no random number.
 */
static __always_inline void report(struct xdp_md *ctx,
				   const struct moat_pkt *p, __u32 act,
				   __u32 stat, struct moat_xdp_stat_row *row)
{
	struct moat_event *e;
	__u64 now;

	/* events off: the row's countdown is left alone (a loader with
	 * events on adopts these counters: parking the row would silence it) */
	if (!moat_cfg.events_on || event_skip(row))
		return;
	now = bpf_ktime_get_coarse_ns();
	event_regap(row, now);
	if (!limit_global(MOAT_LIMIT_EVENTS, now, moat_cfg.events.interval_ns,
			  moat_cfg.events.tau_ns)) {
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
				  struct moat_xdp_stat_row *row)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 key[2] = { moat_cfg.isn_key[0], moat_cfg.isn_key[1] };
	int len;

	if (!tarpit_allowed(p)) {
		row_inc(row, MOAT_STAT_TARPIT_LIMITED);
		report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT_LIMITED, row);
		return XDP_DROP;
	}
	len = moat_tarpit_build(data, data_end, p, moat_tarpit_isn(key, p));
	if (len < 0 ||
	    bpf_xdp_adjust_tail(ctx, len - (int)bpf_xdp_get_buff_len(ctx))) {
		row_inc(row, MOAT_STAT_TARPIT_FAIL);
		return XDP_DROP;
	}
	row_inc(row, MOAT_STAT_TARPIT);
	report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT, row);
	return XDP_TX;
}

/* syn_verdict - act on a SYN to SMTP port row's slot: count, report,
 * drop, tarpit or pass */
static __always_inline int syn_verdict(struct xdp_md *ctx, struct moat_pkt *p,
				       __u32 act, struct moat_xdp_stat_row *row)
{
	switch (act) {
	case MOAT_ACT_DROP:
		row_inc(row, MOAT_STAT_DROP);
		report(ctx, p, act, MOAT_STAT_DROP, row);
		return XDP_DROP;
	case MOAT_ACT_TARPIT:
		return tarpit(ctx, p, row);
	case MOAT_ACT_ALLOW:
		row_inc(row, MOAT_STAT_ALLOW);
		report(ctx, p, act, MOAT_STAT_ALLOW, row);
		return XDP_PASS;
	default:
		row_inc(row, MOAT_STAT_PASS);
		return XDP_PASS;
	}
}

/* non_syn - any other segment to an SMTP port: silence after a tarpit
 * SYN-ACK (never a RST), else the kernel's */
static __always_inline int non_syn(__u32 act, struct moat_xdp_stat_row *row)
{
	if (act == MOAT_ACT_TARPIT) {
		row_inc(row, MOAT_STAT_TARPIT_SILENCE);
		return XDP_DROP;
	}
	row_inc(row, MOAT_STAT_NON_SYN);
	return XDP_PASS;
}

/*
 * moat_general - every frame the fast case does not decide alone: parse
 * it in full (moat_parse) and act.  known_act >= 0: the fast case has the
 * verdict already (a SYN to tarpit, to allow, or a drop to report: they
 * need the whole packet); the port slot is found again here, so the fast
 * case need not keep it.  A subprogram of its own (a BPF call, only on
 * these paths) so the fast case's registers are not spent on keeping this
 * path's state.
 */
static __attribute__((noinline)) int moat_general(struct xdp_md *ctx,
						  int known_act)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct moat_xdp_stat_row *row;
	struct moat_bpf_tables tb;
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
	if (known_act >= 0)
		act = (__u32)known_act;
	else if (moat_bpf_tables_init(&tb))
		act = MOAT_ACT_PASS;
	else if (p.family == 4)
		act = moat_lookup_v4(&tb, p.saddr4);
	else
		act = moat_lookup_v6(&tb, p.saddr6);
	if (slot >= MOAT_PORTS_MAX)
		return XDP_PASS;
	row = stat_row(slot);
	if ((p.tcp_flags & (MOAT_TCP_SYN | MOAT_TCP_ACK)) != MOAT_TCP_SYN)
		return non_syn(act, row);
	return syn_verdict(ctx, &p, act, row);
}

/* port_row_net - for a port in network order, the byte offset of its
 * counter row (slot + 1) in a struct moat_xdp_stat_cpu, or 0 (row 0: no
 * SMTP port); against the swapped copy of the port set, slot 0 always
 * there (n_ports >= 1).  An offset, not a slot: a constant per match, so
 * no multiplication follows. */
static __always_inline __u32 port_row_net(__u16 dport_net)
{
	int i;

	if (moat_cfg.ports_net[0] == dport_net)
		return sizeof(struct moat_xdp_stat_row);
	for (i = 1; i < MOAT_PORTS_MAX; i++) {
		if ((__u32)i >= moat_cfg.n_ports)
			break;
		if (moat_cfg.ports_net[i] == dport_net)
			return (__u32)(i + 1) * sizeof(struct moat_xdp_stat_row);
	}
	return 0;
}

/*
 * moat_xdp - the program.  The common frame (untagged IPv4 without
 * options, TCP: moat_parse_fast4) is decided from registers and without a
 * map lookup: the CPU id (inlined), one bounds check, the port compare (in
 * network order), the counter row's address in the stats value (computed
 * before the table reads: it depends only on the port), at most two table
 * reads from the tbl24 and groups values, one compare of flags and
 * verdict, one increment (and the event countdown).  The parsed fields
 * stay in registers because nothing takes the address of f.  What needs
 * the whole packet - a tarpit reply, a sampled event, an ALLOW - and
 * every other frame go to moat_general.
 */
SEC(MOAT_XDP_SEC)
int moat_xdp(struct xdp_md *ctx)
{
	/* the CPU id first: a call as far as the compiler knows, and
	 * nothing but ctx is live yet */
	__u64 cpu = moat_cpu_id();
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct moat_xdp_stat_row *row;
	struct moat_bpf_tables tb;
	struct moat_pkt f;
	__u32 act, syn, off;

	if (cpu >= moat_cfg.ncpus || !moat_parse_fast4(data, data_end, &f))
		return moat_general(ctx, -1);
	/* the TCP destination port as it lies in the frame (checked above) */
	off = port_row_net(*(const __u16 *)(data + MOAT_ETH_HLEN + 20 + 2));
	if (!off) {
		stats_value()[cpu].row[0].c[MOAT_STAT_NOT_SMTP]++;
		return XDP_PASS;
	}
	/* the asm keeps the row's address computed here, before the table
	 * reads, not once per verdict branch */
	row = (void *)((char *)&stats_value()[cpu] + off);
	__asm__ __volatile__("" : "+r"(row));
	act = moat_bpf_tables_init(&tb) ? MOAT_ACT_PASS
					: moat_lookup_v4(&tb, f.saddr4);
	/* the refused SYN first, with one compare: SYN without ACK, DROP */
	syn = f.tcp_flags & (MOAT_TCP_SYN | MOAT_TCP_ACK);
	if ((syn | act << 8) == (MOAT_TCP_SYN | MOAT_ACT_DROP << 8)) {
		if (row->ev_left) {
			row->ev_left--;         /* event_skip() */
			row->c[MOAT_STAT_DROP]++;
			return XDP_DROP;
		}
		/* events off: moat_cfg is read-only data, so the verifier
		 * drops this branch, or the call below, when it loads */
		if (!moat_cfg.events_on) {
			row->c[MOAT_STAT_DROP]++;
			return XDP_DROP;
		}
		return moat_general(ctx, (int)act);
	}
	if (syn != MOAT_TCP_SYN)
		return non_syn(act, row);
	if (act == MOAT_ACT_PASS) {
		row->c[MOAT_STAT_PASS]++;
		return XDP_PASS;
	}
	return moat_general(ctx, (int)act);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
