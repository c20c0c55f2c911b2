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
 *   PASS    SYN -> XDP_PASS, or with syn_cookies a SYN-ACK whose ISN is
 *           the kernel's SYN cookie via XDP_TX (moat_verdict.h
 *           moat_cookie_reply); the client's ACK passes to the kernel
 *   ALLOW   -> XDP_PASS
 * Everything else passes untouched.  Per-CPU counters per verdict, per port
 * and per parse failure; refused SYNs are sampled into a ring buffer.
 * What is done with a parsed frame (verdict, tarpit limits, event
 * sampling) is moat_verdict.h, shared with userspace backends; this file
 * gives it maps and helpers, and keeps the fast case of the common frame.
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

/* rl_src_new - the tarpit limiter's state of source *key, created at 0
 * (an LRU hash: old sources make room) */
static __always_inline __u64 *rl_src_new(const __u64 *key)
{
	__u64 init = 0;

	bpf_map_update_elem(&rl_src, key, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&rl_src, key);
}

/* limit_tat - the GCRA state of a global limit (the limits array) */
static __always_inline __u64 *limit_tat(__u32 which)
{
	return bpf_map_lookup_elem(&limits, &which);
}

/* table_lookup - the table's action for p's source (moat_maps.bpf.h) */
static __always_inline __u32 table_lookup(const struct moat_pkt *p)
{
	struct moat_bpf_tables tb;
	struct moat_bpf_trie tr;

	if (p->family == 4)
		return moat_bpf_tables_init(&tb) ? MOAT_ACT_PASS :
		       moat_lookup_v4(&tb, p->saddr4);
	/* IPv6: the trie (moat_trie6.h), a bounded walk */
	if (moat_bpf_trie_init(&tr))
		return MOAT_ACT_PASS;
	return moat_lookup_v6t(&tr, p->saddr6);
}

/* Written by the loader while the program runs (moat_xdp.h): the .bss,
 * mmap'd by the skeleton */
struct moat_xdp_live moat_live;

/*
 * syn_cookie - the kernel's SYN cookie for the parsed SYN p (the ISN of
 * the answer; the MSS it encodes in bits 32..47), or < 0.  The helpers read a whole IP header and a TCP
 * header of exactly its data offset; both are copied to the stack first
 * (bpf_xdp_load_bytes), where the variable TCP length needs no packet
 * bounds proof.  The hash covers the addresses, ports, the client's ISN
 * and the MSS class of its MSS option, and the kernel's minute counter;
 * the kernel's listener checks it on the ACK (cookie_v4_check).  -2:
 * the SYN is the kernel's (a socket of its 4-tuple, or none listening).
 */
static __attribute__((noinline)) __s64 syn_cookie(struct xdp_md *ctx,
						   const struct moat_pkt *p)
{
	struct bpf_sock_tuple tu;
	struct bpf_sock *sk;
	__u8 ip[40], th[60];
	__u32 l3 = p->l3_off, l4 = p->l4_off, tl, state;
	__s64 v;

	/* The kernel's socket for this 4-tuple first: a cookie only where
	 * its listener would take the SYN. A TIME_WAIT socket of the same
	 * 4-tuple (a client reusing its port within the server's 60 s)
	 * takes a new SYN on its own (TCP_TW_SYN) but not the ACK of a
	 * cookie it never saw: the session would hang, the client waiting
	 * for a greeting. Nothing listening: the kernel's RST, not a
	 * SYN-ACK. Both go to the kernel (-2). */
	__builtin_memset(&tu, 0, sizeof(tu));
	if (p->family == 4) {
		tu.ipv4.saddr = moat_be32(p->saddr4);
		tu.ipv4.daddr = moat_be32(p->daddr4);
		tu.ipv4.sport = moat_be16(p->sport);
		tu.ipv4.dport = moat_be16(p->dport);
		sk = bpf_skc_lookup_tcp(ctx, &tu, sizeof(tu.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(tu.ipv6.saddr, p->saddr6, 16);
		__builtin_memcpy(tu.ipv6.daddr, p->daddr6, 16);
		tu.ipv6.sport = moat_be16(p->sport);
		tu.ipv6.dport = moat_be16(p->dport);
		sk = bpf_skc_lookup_tcp(ctx, &tu, sizeof(tu.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return -2;
	state = sk->state;
	bpf_sk_release(sk);
	if (state != BPF_TCP_LISTEN)
		return -2;
	__builtin_memset(ip, 0, sizeof(ip));
	__builtin_memset(th, 0, sizeof(th));
	if (bpf_xdp_load_bytes(ctx, l4, th, 20))
		return -1;
	tl = (__u32)(th[12] >> 4) * 4;
	if (tl < 20 || tl > 60 || bpf_xdp_load_bytes(ctx, l4, th, tl))
		return -1;
	if (p->family == 4) {
		if (bpf_xdp_load_bytes(ctx, l3, ip, 20))
			return -1;
		v = bpf_tcp_raw_gen_syncookie_ipv4((void *)ip, (void *)th, tl);
	} else {
		if (bpf_xdp_load_bytes(ctx, l3, ip, 40))
			return -1;
		v = bpf_tcp_raw_gen_syncookie_ipv6((void *)ip, (void *)th, tl);
	}
	if (v < 0)
		return v;
	return v & 0xffffffffffffll;  /* the cookie, the MSS class above it */
}

/* --- the shared verdict logic (moat_verdict.h) over this program's maps,
 * ring buffer and frame ------------------------------------------------ */
#define MOAT_V_CTX struct xdp_md
#define MOAT_V_CFG moat_cfg
#define MOAT_V_NOW(ctx) bpf_ktime_get_coarse_ns()
#define MOAT_V_LIMIT(ctx, which) limit_tat(which)
#define MOAT_V_SRC_LIMIT(ctx, keyp) ((__u64 *)bpf_map_lookup_elem(&rl_src, (keyp)))
#define MOAT_V_SRC_LIMIT_NEW(ctx, keyp) rl_src_new(keyp)
#define MOAT_V_STAT_ROW(ctx, slot) stat_row(slot)
#define MOAT_V_DATA(ctx) ((void *)(long)(ctx)->data)
#define MOAT_V_DATA_END(ctx) ((void *)(long)(ctx)->data_end)
#define MOAT_V_SET_LEN(ctx, len) bpf_xdp_adjust_tail((ctx), (len) - (int)bpf_xdp_get_buff_len(ctx))
#define MOAT_V_IFINDEX(ctx) ((ctx)->ingress_ifindex)
#define MOAT_V_EVENT_RESERVE(ctx) \
	((struct moat_event *)bpf_ringbuf_reserve(&events, sizeof(struct moat_event), 0))
#define MOAT_V_EVENT_SUBMIT(ctx, e) bpf_ringbuf_submit((e), 0)
#define MOAT_V_LOOKUP(ctx, p) table_lookup(p)
#define MOAT_V_SYN_COOKIE(ctx, p) syn_cookie((ctx), (p))
#define MOAT_V_COOKIES_HELD(ctx) (*(volatile __u32 *)&moat_live.cookies_held)
#include "moat_verdict.h"

_Static_assert(MOAT_VERDICT_DROP == XDP_DROP && MOAT_VERDICT_PASS == XDP_PASS &&
		       MOAT_VERDICT_TX == XDP_TX,
	       "enum moat_verdict is returned as the XDP action");

/*
 * moat_general - every frame the fast case does not decide alone: parse
 * it in full (moat_parse) and act (moat_verdict).  known_act >= 0: the
 * fast case has the verdict already (a SYN to tarpit, to allow, or a drop
 * to report: they need the whole packet); the port slot is found again
 * there, so the fast case need not keep it.  A subprogram of its own (a
 * BPF call, only on these paths) so the fast case's registers are not
 * spent on keeping this path's state.
 */
static __attribute__((noinline)) int moat_general(struct xdp_md *ctx,
						  int known_act)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct moat_pkt p;
	int res;

	res = moat_parse(data, data_end, &p);
	return moat_verdict(ctx, res, &p, known_act);
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
		return moat_non_syn(act, row);
	if (act == MOAT_ACT_PASS) {
		/* SYN cookies off: moat_cfg is read-only data, the verifier
		 * drops this branch */
		if (moat_cfg.syn_cookies)
			return moat_general(ctx, (int)act);
		row->c[MOAT_STAT_PASS]++;
		return XDP_PASS;
	}
	return moat_general(ctx, (int)act);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
