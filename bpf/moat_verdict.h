/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_verdict.h - what gate 1 does with a parsed frame, written once for
 * every backend: the port set, the SYN verdict (count, report, drop,
 * tarpit or pass), the tarpit reply's rate limits (GCRA per source /24 or
 * /48 and global), silence after a tarpit (every other segment of the
 * source dropped, never a RST), and event sampling (the adaptive gap).
 * The XDP program (moat_xdp.bpf.c) expands it over its maps and ring
 * buffer; a userspace backend (DPDK) over its own per-lcore state; the
 * unit test tests/unit/test_verdict.c over plain memory, with the frame
 * case table the bpf suite runs through BPF_PROG_TEST_RUN.  Header-only,
 * no libc (the way moat_lookup.h is shared; xdp-tools' xdpfilt_prog.h is
 * the model).
 *
 * The includer includes moat_parse.h and moat_xdp.h (configuration and
 * counter-row layout) and defines, before including this file:
 *
 *   MOAT_V_CTX                  the per-frame context type (struct xdp_md)
 *   MOAT_V_CFG                  an lvalue of struct moat_xdp_config: the
 *                               read-only configuration
 *   MOAT_V_NOW(ctx)             -> __u64: a coarse monotonic clock, ns
 *   MOAT_V_LIMIT(ctx, which)    -> __u64 *: the GCRA state of global limit
 *                               which (enum moat_xdp_limit), or NULL
 *   MOAT_V_SRC_LIMIT(ctx, keyp) -> __u64 *: the GCRA state of source *keyp
 *                               (moat_xdp_src_key; keyp is a __u64 * on
 *                               the stack), or NULL when absent
 *   MOAT_V_SRC_LIMIT_NEW(ctx, keyp)
 *                               -> __u64 *: the same, created at 0 (a
 *                               bounded LRU: old sources make room); NULL
 *                               when it cannot be
 *   MOAT_V_STAT_ROW(ctx, slot)  -> struct moat_xdp_stat_row *: this CPU's
 *                               counter row of port slot (-1: no port), or
 *                               NULL
 *   MOAT_V_DATA(ctx), MOAT_V_DATA_END(ctx)
 *                               -> void *: the frame's bytes
 *   MOAT_V_SET_LEN(ctx, len)    -> int: make the frame len bytes long (the
 *                               tarpit reply is shorter); 0 or an error
 *   MOAT_V_IFINDEX(ctx)         -> __u32: the interface it came in on
 *   MOAT_V_EVENT_RESERVE(ctx)   -> struct moat_event *: room for one event,
 *                               or NULL (counted as lost)
 *   MOAT_V_EVENT_SUBMIT(ctx, e) hand the filled event over
 *   MOAT_V_LOOKUP(ctx, p)       -> __u32: the table's action for the
 *                               source of p (moat_lookup.h)
 *
 * Optional (the XDP program; a backend without it never answers with
 * SYN cookies, whatever the configuration says):
 *
 *   MOAT_V_SYN_COOKIE(ctx, p)   -> __s64: the kernel's SYN cookie for the
 *                               parsed SYN p, >= 0: the ISN in the low 32
 *                               bits, the MSS the cookie encodes in the
 *                               next 16 (bpf_tcp_raw_gen_syncookie_ipv4/6:
 *                               the client's MSS option rounded down to
 *                               the kernel's table, 536 / 1220 without
 *                               one); -2 when the SYN is the kernel's (a
 *                               socket of its 4-tuple other than a
 *                               listener, or none listening); other < 0
 *                               when there is no cookie (an old kernel,
 *                               no CONFIG_SYN_COOKIES)
 *   MOAT_V_COOKIES_HELD(ctx)    -> nonzero while SYN cookies are suspended
 *                               at run time (every unlisted SYN to the
 *                               kernel); 0 when not defined
 *
 * Verdicts are enum moat_verdict (moat_abi.h).  The entry point is
 * moat_verdict(): a frame moat_parse() has parsed, and the table's action
 * when the caller knows it already.
 */
#ifndef MOAT_VERDICT_H
#define MOAT_VERDICT_H

#include "moat_abi.h"
#include "moat_parse.h"
#include "moat_xdp.h"

#if !defined(MOAT_V_CTX) || !defined(MOAT_V_CFG) || !defined(MOAT_V_NOW) || \
	!defined(MOAT_V_LIMIT) || !defined(MOAT_V_SRC_LIMIT) || !defined(MOAT_V_SRC_LIMIT_NEW) || !defined(MOAT_V_STAT_ROW) || \
	!defined(MOAT_V_DATA) || !defined(MOAT_V_DATA_END) || !defined(MOAT_V_SET_LEN) || \
	!defined(MOAT_V_IFINDEX) || !defined(MOAT_V_EVENT_RESERVE) || \
	!defined(MOAT_V_EVENT_SUBMIT) || !defined(MOAT_V_LOOKUP)
#error "define the MOAT_V_* accessors first (see moat_verdict.h)"
#endif

/* moat_row_inc - bump counter idx of row r; returns its new per-CPU value
 * (0 if there is no row) */
static __always_inline __u64 moat_row_inc(struct moat_xdp_stat_row *r, __u32 idx)
{
	if (!r || idx >= MOAT_STAT__MAX)
		return 0;
	return ++r->c[idx];
}

/* moat_stat_inc - bump counter idx in the row of port slot (-1: no port) */
static __always_inline __u64 moat_stat_inc(MOAT_V_CTX *ctx, __u32 idx, int slot)
{
	(void)ctx;
	return moat_row_inc(MOAT_V_STAT_ROW(ctx, slot), idx);
}

/*
 * moat_gcra_allow - generic cell rate algorithm on one 64-bit state word
 * (the earliest time the next event conforms).  Racy across CPUs on
 * purpose: a lost update admits at most one extra event per CPU.
 */
static __always_inline int moat_gcra_allow(__u64 *tat, __u64 now, __u64 interval, __u64 tau)
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

/* moat_limit_global - one GCRA budget of the global limits */
static __always_inline int moat_limit_global(MOAT_V_CTX *ctx, __u32 which, __u64 now,
					     __u64 interval, __u64 tau)
{
	__u64 *tat = MOAT_V_LIMIT(ctx, which);

	(void)ctx;
	return tat && moat_gcra_allow(tat, now, interval, tau);
}

/*
 * moat_tarpit_allowed - may this SYN get a reply: the global budget must
 * have room (checked first, without spending it: under a flood that is the
 * cheap test), then the source's budget is spent, then the global one.
 */
static __always_inline int moat_tarpit_allowed(MOAT_V_CTX *ctx, const struct moat_pkt *p)
{
	/* coarse clock (XDP: jiffies resolution): ample for these budgets,
	 * and a fraction of a precise clock's cost */
	__u64 now = MOAT_V_NOW(ctx);
	__u64 *gtat = MOAT_V_LIMIT(ctx, MOAT_LIMIT_TARPIT);
	__u64 key, *tat, t;

	(void)ctx;
	if (!gtat || MOAT_V_CFG.tarpit_global.interval_ns == 0)
		return 0;
	t = *gtat > now ? *gtat : now;
	if (t - now > MOAT_V_CFG.tarpit_global.tau_ns)
		return 0;
	key = moat_xdp_src_key(p->family, p->saddr4, p->saddr6);
	tat = MOAT_V_SRC_LIMIT(ctx, &key);
	if (!tat) {
		tat = MOAT_V_SRC_LIMIT_NEW(ctx, &key);
		if (!tat)
			return 0;
	}
	if (!moat_gcra_allow(tat, now, MOAT_V_CFG.tarpit_src.interval_ns,
			     MOAT_V_CFG.tarpit_src.tau_ns))
		return 0;
	return moat_gcra_allow(gtat, now, MOAT_V_CFG.tarpit_global.interval_ns,
			       MOAT_V_CFG.tarpit_global.tau_ns);
}

/* moat_event_skip - count one refused SYN against row's event gap: 1
 * while it is skipped, 0 when it is to be reported (no row: never) */
static __always_inline int moat_event_skip(struct moat_xdp_stat_row *row)
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
 * moat_event_regap - a report is due in row: set how many refused SYNs of
 * the row (per CPU) the next reports skip.  A report within
 * MOAT_XDP_EVENT_QUIET_NS of the row's last one doubles the gap (up to
 * event_gap_max), a later one resets it to 1: at a low rate every refused
 * SYN is reported (within the global budget), under a flood one in
 * event_gap_max, so the XDP fast case goes to moat_general that rarely.
 * After a flood the next report comes within event_gap_max SYNs of the row.
 */
static __always_inline void moat_event_regap(struct moat_xdp_stat_row *row, __u64 now)
{
	__u64 gap = 1;

	if (now - row->ev_last_ns < MOAT_XDP_EVENT_QUIET_NS) {
		gap = row->ev_gap * 2;
		if (gap > MOAT_V_CFG.event_gap_max)
			gap = MOAT_V_CFG.event_gap_max;
		if (gap == 0)
			gap = 1;
	}
	row->ev_gap = gap;
	row->ev_last_ns = now;
	row->ev_left = gap - 1;
}

/*
 * MOAT_V_RARE - how the rarely taken halves below (a report that is due,
 * a tarpit reply) are compiled: inlined unless the includer says
 * otherwise (the XDP program inlines everything; a userspace backend may
 * keep them out of its per-frame loop, where they would only cost
 * registers).  The same code either way.
 */
#ifndef MOAT_V_RARE
#define MOAT_V_RARE __always_inline
#endif

/* moat_report_due - moat_report() once the row's gap says to report */
static MOAT_V_RARE void moat_report_due(MOAT_V_CTX *ctx, const struct moat_pkt *p, __u32 act,
					__u32 stat, struct moat_xdp_stat_row *row)
{
	struct moat_event *e;
	__u64 now;

	now = MOAT_V_NOW(ctx);
	moat_event_regap(row, now);
	if (!moat_limit_global(ctx, MOAT_LIMIT_EVENTS, now, MOAT_V_CFG.events.interval_ns,
			       MOAT_V_CFG.events.tau_ns)) {
		moat_stat_inc(ctx, MOAT_STAT_EVENT_LOST, -1);
		return;
	}
	e = MOAT_V_EVENT_RESERVE(ctx);
	if (!e) {
		moat_stat_inc(ctx, MOAT_STAT_EVENT_LOST, -1);
		return;
	}
	e->ts_ns = now;
	e->stat = stat;
	e->ifindex = MOAT_V_IFINDEX(ctx);
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
	MOAT_V_EVENT_SUBMIT(ctx, e);
}

/*
 * moat_report - sample one refused SYN (counted in row) into the event
 * stream: when its row's gap says so (moat_event_skip, moat_event_regap),
 * then within the global event budget.  No division, no random number.
 */
static __always_inline void moat_report(MOAT_V_CTX *ctx, const struct moat_pkt *p, __u32 act,
					__u32 stat, struct moat_xdp_stat_row *row)
{
	/* events off: the row's countdown is left alone (a loader with
	 * events on adopts these counters: parking the row would silence it) */
	if (!MOAT_V_CFG.events_on || moat_event_skip(row))
		return;
	moat_report_due(ctx, p, act, stat, row);
}

/* moat_port_slot - index of dport in the configured port set, or -1 */
static __always_inline int moat_port_slot(__u16 dport)
{
	int i;

	for (i = 0; i < MOAT_PORTS_MAX; i++) {
		if ((__u32)i >= MOAT_V_CFG.n_ports)
			break;
		if (MOAT_V_CFG.ports[i] == dport)
			return i;
	}
	return -1;
}

/* moat_tarpit_reply - answer the SYN in place with the zero-window
 * SYN-ACK, within the limits (over them: drop) */
static MOAT_V_RARE int moat_tarpit_reply(MOAT_V_CTX *ctx, struct moat_pkt *p,
					     struct moat_xdp_stat_row *row)
{
	void *data = MOAT_V_DATA(ctx);
	void *data_end = MOAT_V_DATA_END(ctx);
	__u64 key[2] = { MOAT_V_CFG.isn_key[0], MOAT_V_CFG.isn_key[1] };
	int len;

	if (!moat_tarpit_allowed(ctx, p)) {
		moat_row_inc(row, MOAT_STAT_TARPIT_LIMITED);
		moat_report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT_LIMITED, row);
		return MOAT_VERDICT_DROP;
	}
	len = moat_tarpit_build(data, data_end, p, moat_tarpit_isn(key, p));
	if (len < 0 || MOAT_V_SET_LEN(ctx, len)) {
		moat_row_inc(row, MOAT_STAT_TARPIT_FAIL);
		return MOAT_VERDICT_DROP;
	}
	moat_row_inc(row, MOAT_STAT_TARPIT);
	moat_report(ctx, p, MOAT_ACT_TARPIT, MOAT_STAT_TARPIT, row);
	return MOAT_VERDICT_TX;
}

#ifdef MOAT_V_SYN_COOKIE
#ifndef MOAT_V_COOKIES_HELD
#define MOAT_V_COOKIES_HELD(ctx) 0
#endif

/*
 * moat_cookie_keep - is the unlisted SYN p the one its destination address
 * leaves to the kernel this second (row: this CPU and port)?  Records it
 * when it is, or always with force (the kernel answers it anyway).  The
 * destinations are compared whole; an untracked one replaces the least
 * recent (moat_xdp.h "SYN cookies").
 */
static __always_inline int moat_cookie_keep(struct moat_xdp_stat_row *row, const struct moat_pkt *p,
					    __u64 now, int force)
{
	__u32 k[4];
	__u64 old = ~0ull;
	int i;

	if (p->family == 4) {
		k[0] = 0;
		k[1] = 0;
		k[2] = moat_be32(0xffff);
		k[3] = p->daddr4;
	} else {
		__builtin_memcpy(k, p->daddr6, 16);
	}
#pragma unroll
	for (i = 0; i < MOAT_XDP_COOKIE_KEEP_DST; i++) {
		if (row->ck_keep_dst[i][0] == k[0] && row->ck_keep_dst[i][1] == k[1] &&
		    row->ck_keep_dst[i][2] == k[2] && row->ck_keep_dst[i][3] == k[3]) {
			if (!force && now - row->ck_keep_ns[i] < MOAT_XDP_COOKIE_KEEP_NS)
				return 0;
			row->ck_keep_ns[i] = now;
			return 1;
		}
		if (row->ck_keep_ns[i] < old)
			old = row->ck_keep_ns[i];
	}
#pragma unroll
	for (i = 0; i < MOAT_XDP_COOKIE_KEEP_DST; i++) {
		if (row->ck_keep_ns[i] == old) {
			__builtin_memcpy(row->ck_keep_dst[i], k, 16);
			row->ck_keep_ns[i] = now;
			break;
		}
	}
	return 1;
}

/*
 * moat_cookie_want - should this unlisted SYN p (counted in row: this CPU
 * and port) get a SYN cookie from us, or go to the kernel?  The kernel
 * gets one SYN a second per CPU, port and destination address while
 * cookies are on: its listener accepts cookie ACKs only within 2 minutes
 * of a cookie of its own (moat_xdp.h).  auto: cookies only while the row
 * counted more than cookie_threshold SYNs in the current window or the one
 * before (so the mode lasts one window past the flood); below it, every
 * SYN goes to the kernel.  Per CPU and racy on purpose, like the other
 * counters.
 */
static __always_inline int moat_cookie_want(MOAT_V_CTX *ctx, const struct moat_pkt *p,
					    struct moat_xdp_stat_row *row)
{
	__u64 now = MOAT_V_NOW(ctx);

	(void)ctx;
	if (!row)
		return 0;
	if (now - row->ck_win_ns >= MOAT_XDP_COOKIE_WIN_NS) {
		/* a new window: the one that ended is the last one only
		 * if it ended just now */
		row->ck_prev_n = now - row->ck_win_ns < 2 * MOAT_XDP_COOKIE_WIN_NS ?
				 row->ck_win_n : 0;
		row->ck_win_n = 0;
		row->ck_win_ns = now;
	}
	row->ck_win_n++;
	if (MOAT_V_CFG.syn_cookies == MOAT_SYN_COOKIES_AUTO &&
	    row->ck_win_n <= MOAT_V_CFG.cookie_threshold &&
	    row->ck_prev_n <= MOAT_V_CFG.cookie_threshold) {
		moat_cookie_keep(row, p, now, 1); /* the kernel answers this one */
		return 0;
	}
	if (moat_cookie_keep(row, p, now, 0)) {
		moat_row_inc(row, MOAT_STAT_SYN_COOKIE_KEEP);
		return 0;
	}
	return 1;
}

/*
 * moat_cookie_reply - answer the unlisted SYN p in place with a SYN-ACK
 * whose ISN is the kernel's SYN cookie; the client's ACK then goes to the
 * kernel's listener (moat_non_syn passes it), which checks the cookie.
 * When no cookie or no reply can be made the SYN goes to the kernel
 * (counted syn_cookie_fail and pass): the kernel's own handling is the
 * fallback, never a drop.
 */
static MOAT_V_RARE int moat_cookie_reply(MOAT_V_CTX *ctx, struct moat_pkt *p,
					 struct moat_xdp_stat_row *row)
{
	__s64 ck = MOAT_V_SYN_COOKIE(ctx, p);
	__u32 len = moat_cookie_len(p);
	void *data, *data_end;
	__u16 mss, ck_mss;

	if (ck == -2) { /* the kernel's: a socket of its 4-tuple, or none listening */
		moat_row_inc(row, MOAT_STAT_PASS);
		return MOAT_VERDICT_PASS;
	}
	if (ck < 0 || MOAT_V_SET_LEN(ctx, (int)len))
		goto fail;
	data = MOAT_V_DATA(ctx);
	data_end = MOAT_V_DATA_END(ctx);
	/* the MSS offered: syn_cookie_mss, but never more than the class
	 * of the client's own MSS the cookie encodes (what the kernel will
	 * send it): a client that announced less (a tunnel, PPPoE) or none
	 * is not offered full-size segments its path may not carry */
	mss = p->family == 4 ? MOAT_V_CFG.cookie_mss4 : MOAT_V_CFG.cookie_mss6;
	ck_mss = (__u16)((__u64)ck >> 32);
	if (ck_mss && ck_mss < mss)
		mss = ck_mss;
	/* a frame made longer but not rewritten would be sent as it is:
	 * moat_cookie_build cannot fail on a frame of len bytes, and if it
	 * did, the frame is dropped, not passed.  The window: 65535 rounded
	 * down to the MSS, as the kernel's SYN-ACK without window scaling */
	if (moat_cookie_build(data, data_end, p, (__u32)ck, (__u16)(65535u / mss * mss),
			      mss) < 0) {
		moat_row_inc(row, MOAT_STAT_SYN_COOKIE_FAIL);
		return MOAT_VERDICT_DROP;
	}
	moat_row_inc(row, MOAT_STAT_SYN_COOKIE);
	return MOAT_VERDICT_TX;
fail:
	moat_row_inc(row, MOAT_STAT_SYN_COOKIE_FAIL);
	moat_row_inc(row, MOAT_STAT_PASS);
	return MOAT_VERDICT_PASS;
}
#endif

/* moat_syn_verdict - act on a SYN to SMTP port row's slot: count, report,
 * drop, tarpit, answer with a SYN cookie or pass */
static __always_inline int moat_syn_verdict(MOAT_V_CTX *ctx, struct moat_pkt *p, __u32 act,
					    struct moat_xdp_stat_row *row)
{
	switch (act) {
	case MOAT_ACT_DROP:
		moat_row_inc(row, MOAT_STAT_DROP);
		moat_report(ctx, p, act, MOAT_STAT_DROP, row);
		return MOAT_VERDICT_DROP;
	case MOAT_ACT_TARPIT:
		return moat_tarpit_reply(ctx, p, row);
	case MOAT_ACT_ALLOW:
		moat_row_inc(row, MOAT_STAT_ALLOW);
		moat_report(ctx, p, act, MOAT_STAT_ALLOW, row);
		return MOAT_VERDICT_PASS;
	default:
#ifdef MOAT_V_SYN_COOKIE
		/* SYN with FIN or RST: the kernel's listener discards it;
		 * no answer from us either.  Held (tcp_syncookies no longer
		 * 2), or a layout the answer would not honour
		 * (moat_cookie_layout): the kernel's, not counted in the
		 * auto window */
		if (MOAT_V_CFG.syn_cookies && !MOAT_V_COOKIES_HELD(ctx) &&
		    !(p->tcp_flags & (MOAT_TCP_FIN | MOAT_TCP_RST)) &&
		    moat_cookie_layout(MOAT_V_DATA(ctx), MOAT_V_DATA_END(ctx), p) &&
		    moat_cookie_want(ctx, p, row))
			return moat_cookie_reply(ctx, p, row);
#endif
		moat_row_inc(row, MOAT_STAT_PASS);
		return MOAT_VERDICT_PASS;
	}
}

/* moat_non_syn - any other segment to an SMTP port: silence after a
 * tarpit SYN-ACK (never a RST), else the kernel's */
static __always_inline int moat_non_syn(__u32 act, struct moat_xdp_stat_row *row)
{
	if (act == MOAT_ACT_TARPIT) {
		moat_row_inc(row, MOAT_STAT_TARPIT_SILENCE);
		return MOAT_VERDICT_DROP;
	}
	moat_row_inc(row, MOAT_STAT_NON_SYN);
	return MOAT_VERDICT_PASS;
}

/*
 * moat_verdict_smtp - the verdict on a TCP segment to SMTP port slot
 * (moat_port_slot(p->dport), 0 <= slot < MOAT_PORTS_MAX) whose source the
 * table gives act: silence or pass a non-SYN, act on a SYN.  The second
 * half of moat_verdict(), for a caller that has parsed, found the port
 * and looked up a whole burst first (the DPDK backend).
 */
static __always_inline int moat_verdict_smtp(MOAT_V_CTX *ctx, struct moat_pkt *p, int slot,
					     __u32 act)
{
	struct moat_xdp_stat_row *row = MOAT_V_STAT_ROW(ctx, slot);

	if ((p->tcp_flags & (MOAT_TCP_SYN | MOAT_TCP_ACK)) != MOAT_TCP_SYN)
		return moat_non_syn(act, row);
	return moat_syn_verdict(ctx, p, act, row);
}

/*
 * moat_verdict - the verdict on a frame moat_parse() returned res for (p
 * filled when res is MOAT_PARSE_TCP): count what does not parse or is not
 * SMTP, and pass it; look the source up (unless known_act >= 0: the
 * caller has the table's action already) and act on it.
 */
static __always_inline int moat_verdict(MOAT_V_CTX *ctx, int res, struct moat_pkt *p,
					int known_act)
{
	__u32 act;
	int slot;

	if (res != MOAT_PARSE_TCP) {
		moat_stat_inc(ctx, moat_parse_res_stat(res), -1);
		return MOAT_VERDICT_PASS;
	}
	slot = moat_port_slot(p->dport);
	if (slot < 0) {
		moat_stat_inc(ctx, MOAT_STAT_NOT_SMTP, -1);
		return MOAT_VERDICT_PASS;
	}
	if (known_act >= 0)
		act = (__u32)known_act;
	else
		act = MOAT_V_LOOKUP(ctx, p);
	if (slot >= MOAT_PORTS_MAX)
		return MOAT_VERDICT_PASS;
	return moat_verdict_smtp(ctx, p, slot, act);
}

#endif /* MOAT_VERDICT_H */
