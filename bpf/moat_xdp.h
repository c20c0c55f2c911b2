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

/* The section of the programs that read tbl24 directly (moat_maps.bpf.h):
 * a libbpf handler of the loader's (moat_xdp_sec_register()) loads them as
 * XDP programs with the map reference rewritten. */
#define MOAT_XDP_SEC "xdp.moat"

/* Defaults; every one can be changed by the loader before load. */
#define MOAT_XDP_DEF_PORT 25
#define MOAT_XDP_DEF_GROUPS_MAX (1u << 20)   /* 64 MiB of groups */
#define MOAT_XDP_GROUPS_MAX ((1u << 24) - 1) /* one per /24, less one (moat_map_group) */
#define MOAT_GROUPS_HALF (1u << 23)          /* groups a variable offset reaches */
#define MOAT_XDP_DEF_V6_MAX (1u << 16)
/* the IPv6 trie's storage for v6_max rules (moat_xdp_v6t_size) */
#define MOAT_XDP_DEF_V6T_NODES (MOAT_XDP_DEF_V6_MAX / 32 + 16384)
#define MOAT_XDP_DEF_V6T_BUCKETS (MOAT_XDP_DEF_V6_MAX + MOAT_XDP_DEF_V6_MAX / 2 + 1024)
#define MOAT_XDP_DEF_RL_SRC_MAX (1u << 16)   /* sources tracked by the limiter */
#define MOAT_XDP_DEF_SRC_PPS 10              /* tarpit replies per /24 or /48 */
#define MOAT_XDP_DEF_SRC_BURST 20
#define MOAT_XDP_DEF_GLOBAL_PPS 10000        /* tarpit replies in total */
#define MOAT_XDP_DEF_GLOBAL_BURST 20000
#define MOAT_XDP_DEF_EVENT_SAMPLE 1024       /* under a flood 1 in N refused SYNs reported, per CPU and port */
#define MOAT_XDP_EVENT_QUIET_NS 10000000ull  /* reports of a row further apart: low rate, gap 1 */
#define MOAT_XDP_DEF_EVENT_PPS 1000          /* events per second at most */
#define MOAT_XDP_EVENTS_BYTES (256 * 1024)   /* ring buffer size */

/* SYN cookies (syn_cookies = off|on|auto, docs/xdp.md "SYN cookies"): an
 * unlisted SYN to an SMTP port is answered in XDP with a SYN-ACK whose ISN
 * is the kernel's own SYN cookie (bpf_tcp_raw_gen_syncookie_ipv4/6), and
 * the client's ACK goes to the kernel's listener, which checks the cookie.
 * The listener accepts cookie ACKs only within 2 minutes of a cookie of its
 * own (tcp_synq_no_recent_overflow), so one SYN a second per CPU, port and
 * destination address still goes to the kernel (MOAT_XDP_COOKIE_KEEP_NS),
 * which answers it with a cookie when net.ipv4.tcp_syncookies is 2.  The
 * stamp is per listener, and each listen address of a port is a listener
 * of its own (an IPv6 one beside the IPv4 one): a keep SYN per port alone
 * would go to whichever address a flood hits, and the others' listeners
 * would refuse every cookie ACK after 2 minutes.  A destination the row
 * does not track (more than MOAT_XDP_COOKIE_KEEP_DST addresses, e.g. a
 * flood spread over a prefix) replaces the least recent one and its SYN
 * goes to the kernel: spraying destinations buys the kernel's own SYN
 * handling, never a listener without its stamp.  auto: cookies only while
 * this CPU saw more than syn_cookie_threshold unlisted SYNs to the port in
 * the current or the last window of MOAT_XDP_COOKIE_WIN_NS.  The modes:
 * enum moat_syn_cookies (moat_abi.h). */
#define MOAT_XDP_COOKIE_WIN_NS 1000000000ull  /* auto: the SYN-rate window */
#define MOAT_XDP_COOKIE_KEEP_NS 1000000000ull /* a SYN to the kernel at least this often */
#define MOAT_XDP_COOKIE_KEEP_DST 4            /* destinations a row tracks (listen addresses) */
#define MOAT_XDP_DEF_COOKIE_THRESHOLD 1000    /* auto: SYNs per window, CPU and port */
#define MOAT_XDP_DEF_COOKIE_MSS 1460          /* MSS the cookie SYN-ACK offers (IPv4; IPv6 20 less) */

/* MOAT_XDP_KNOBS_DEFAULT - the defaults above into the knobs every gate-1
 * backend takes from its configuration, fields of these names in both the
 * XDP loader's moat_xdp_opts and moat-dpdk's dp_config: one definition,
 * so the backends cannot drift apart (moat-controld's config.c names the
 * same constants) */
#define MOAT_XDP_KNOBS_DEFAULT(o) do { \
	(o)->ports[0] = MOAT_XDP_DEF_PORT; \
	(o)->n_ports = 1; \
	(o)->event_sample = MOAT_XDP_DEF_EVENT_SAMPLE; \
	(o)->groups_max = MOAT_XDP_DEF_GROUPS_MAX; \
	(o)->v6_max = MOAT_XDP_DEF_V6_MAX; \
	(o)->tarpit_src_pps = MOAT_XDP_DEF_SRC_PPS; \
	(o)->tarpit_src_burst = MOAT_XDP_DEF_SRC_BURST; \
	(o)->tarpit_global_pps = MOAT_XDP_DEF_GLOBAL_PPS; \
	(o)->tarpit_global_burst = MOAT_XDP_DEF_GLOBAL_BURST; \
} while (0)

/*
 * Map "stats": per-CPU counters in one array value (an array map of one
 * element, addressed directly by the program like tbl24, so a counter row
 * costs no map lookup): a struct moat_xdp_stat_cpu per possible CPU, each
 * on its own cache lines, indexed by the CPU's id (the loader sizes the
 * value for libbpf_num_possible_cpus()).  In each, MOAT_XDP_STAT_ROWS rows
 * of MOAT_STAT__MAX u64 counters: row 0 counts what belongs to no SMTP
 * port (parse failures, other traffic, lost events), row 1 + s the
 * verdicts for port slot s.  A counter's total is the sum over rows and
 * CPUs.  A pinned per-CPU array "stats" of older versions is refused.
 */
#define MOAT_XDP_STAT_ROWS (1 + MOAT_PORTS_MAX)

struct moat_xdp_stat_row {
	__u64 c[MOAT_STAT__MAX];
	/* event sampling state of this row (not counters, not read as
	 * such): refused SYNs still to skip before the next report, the gap
	 * between reports, the last report's time (see report()) */
	__u64 ev_left;
	__u64 ev_gap;
	__u64 ev_last_ns;
	/* SYN cookies (see above): start of the current window and the
	 * unlisted SYNs counted in it and in the window before; per
	 * destination address (IPv4 as ::ffff:a.b.c.d), the last SYN left
	 * to the kernel, the least recent replaced by a new destination */
	__u64 ck_win_ns;
	__u64 ck_win_n;
	__u64 ck_prev_n;
	__u64 ck_keep_ns[MOAT_XDP_COOKIE_KEEP_DST];
	__u32 ck_keep_dst[MOAT_XDP_COOKIE_KEEP_DST][4];
};

struct moat_xdp_stat_cpu {
	struct moat_xdp_stat_row row[MOAT_XDP_STAT_ROWS];
} __attribute__((aligned(64)));

/*
 * Map "tbl24" holds the 2^24 u32 entries of moat_abi.h as one 64 MiB
 * value (an array map of one element): the program looks the value up
 * once (a constant key) and then reads tbl24[i] with one load, no map
 * lookup per entry; a BPF array stores values at an 8-byte stride, so
 * one entry per value would take 128 MiB.  The map is mmap-able and,
 * mapped, is exactly the dense u32[2^24] of moat_abi.h; the loader
 * publishes an entry with one aligned 32-bit store, which readers see
 * whole (never a torn group index).
 */
struct moat_tbl24 {
	__u32 e[MOAT_TBL24_ENTRIES];
};

/*
 * Map "groups" holds groups_max struct moat_group (64 bytes each) as one
 * value (an array map of one element, BPF_F_MMAPABLE): mapped, it is the
 * dense groups[] of moat_abi.h, exactly what an array of groups_max
 * 64-byte values maps to, and the program addresses a group without a map
 * lookup (moat_map_group).  groups_max is at most MOAT_XDP_GROUPS_MAX
 * (the verifier's reach into one value, see moat_map_group); a pinned
 * "groups" of the older layout (one group per value) is refused.
 */

/* Slots of the "limits" array map: GCRA state (next allowed time, ns). */
enum moat_xdp_limit {
	MOAT_LIMIT_TARPIT = 0,   /* global tarpit reply budget */
	MOAT_LIMIT_EVENTS = 1,   /* event stream budget */
	MOAT_LIMIT__MAX,
};

/* A GCRA budget: one event per interval_ns, bursts of tau_ns / interval_ns
 * + 1; interval_ns 0 = nothing conforms.  Derived by the loader from a rate
 * and a burst (moat_xdp_budget()) so the program never divides. */
struct moat_xdp_budget {
	__u64 interval_ns;
	__u64 tau_ns;
};

/*
 * Read-only configuration (the program's .rodata, fixed at load).
 */
struct moat_xdp_config {
	__u16 ports[MOAT_PORTS_MAX];  /* SMTP ports filtered, host order */
	__u16 ports_net[MOAT_PORTS_MAX]; /* the same in network order */
	__u32 n_ports;                /* valid entries in ports[] (>= 1) */
	__u32 ncpus;                  /* CPUs in the stats value */
	__u32 event_gap_max;          /* report at least 1 in this many */
	__u32 events_on;              /* 0: no events at all */
	__u32 syn_cookies;            /* enum moat_syn_cookies */
	__u32 cookie_threshold;       /* auto: SYNs per window, CPU and port */
	__u16 cookie_mss4;            /* MSS option of a cookie SYN-ACK at most, IPv4 */
	__u16 cookie_mss6;            /* IPv6 */
	struct moat_xdp_budget tarpit_src;     /* per source /24 or /48 */
	struct moat_xdp_budget tarpit_global;
	struct moat_xdp_budget events;
	__u64 isn_key[2];             /* SipHash key of the tarpit ISN */
};

/*
 * Run-time state the loader writes while the program runs: the program's
 * .bss (mmap-able, each loaded program its own, never pinned), written
 * with single aligned stores (moat_xdp_cookies_hold).
 */
struct moat_xdp_live {
	/* nonzero: SYN cookies suspended, every unlisted SYN goes to the
	 * kernel (moat-controld sets it while net.ipv4.tcp_syncookies is
	 * not 2: the listener would refuse the cookie ACKs) */
	__u32 cookies_held;
	__u32 pad;
};

/* moat_xdp_budget - GCRA parameters for pps events per second, bursts of
 * burst (pps 0: nothing allowed) */
static inline struct moat_xdp_budget moat_xdp_budget(__u32 pps, __u32 burst)
{
	struct moat_xdp_budget b = { 0, 0 };

	if (pps == 0)
		return b;
	b.interval_ns = 1000000000ull / pps;
	if (b.interval_ns == 0)
		b.interval_ns = 1;
	b.tau_ns = b.interval_ns * (burst > 1 ? burst - 1 : 0);
	return b;
}

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
