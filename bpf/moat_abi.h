/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_abi.h - the contract between the fast paths and their loaders.
 *
 * This header is included by the XDP program (clang -target bpf), by the
 * userspace loader in dataplane/xdp/, by the verdict-table compiler in lib/,
 * by the DPDK backend and by tests and fuzzers.  It holds only fixed-size
 * types, constants and pure inline helpers: no libc, no libbpf, no kernel
 * headers beyond <linux/types.h>.
 *
 * COMPILED VERDICT TABLE LAYOUT
 *
 * IPv4: two dependent reads at most.
 *
 *   tbl24[addr >> 8]   2^24 entries of __u32 (64 MiB), indexed by the top 24
 *                      bits of the source address (host byte order).
 *       bit 31 clear:  the whole /24 has one action, in bits 0..1
 *                      (MOAT_ACT_*).  Zero = PASS, so an empty table passes.
 *       bit 31 set:    bits 0..30 are the index of a group in groups[].
 *   groups[i]          struct moat_group: 64 bytes, 2 bits of action per
 *                      address of the /24; address byte h (the low octet)
 *                      lives in bits[h >> 2] >> ((h & 3) * 2) & 3.
 *
 * IPv6: exact-match hash tables per prefix length present, longest first.
 * Every reader (the XDP program, moat-dpdk, userspace) looks the same
 * rules up in the trie of moat_trie6.h instead: a bounded number of
 * dependent reads, copy-on-write publishing that needs no grace period
 * between prefix lengths; the rules by key below remain for restart
 * adoption, read_image and tests (moat_lookup_v6).
 *
 *   v6_plens           struct moat_v6_plens_buf, one element: the distinct
 *                      prefix lengths present (struct moat_v6_plens: longest
 *                      first, count in .n <= MOAT_V6_MAX_PLENS), double
 *                      buffered: slot[sel & 1] is the live set.  A reader
 *                      loads sel once, then reads only that slot (the slot's
 *                      address depends on the loaded value, which orders the
 *                      reads).  A writer fills the inactive slot, then flips
 *                      sel with one aligned 4-byte store (release), so a
 *                      reader sees the old set or the new one, never a mix.
 *                      No BPF program reads it any more (the XDP program
 *                      reads the trie, moat_trie6.h), so the XDP writer
 *                      refills a slot without waiting (PUBLISHING ORDER 4).
 *   v6_rules           hash: struct moat_v6_key (prefix length + address
 *                      masked to it) -> __u32 action.  The first (longest)
 *                      prefix length with an entry decides; an entry may say
 *                      PASS to carve an exclusion out of a shorter listing.
 *                      No entry at any length = PASS.
 *
 * PUBLISHING ORDER (no fail-open window)
 *
 *   A reader that sees any finished prefix of an update sequence gets, for
 *   every address, the action the old table gives it or the one the new
 *   table gives it (never a third one, so never a fail-open):
 *     1. group contents are written before the tbl24 entry that points at them;
 *     2. a freed group is not reused before a grace period has passed;
 *     3. IPv6 puts are applied longest prefix first, then deletes shortest
 *        prefix first; plens grows before the puts and shrinks after deletes,
 *        each change one selector flip of the v6_plens double buffer.
 *        Why a prefix is safe: take an address and R, the longest rule
 *        covering it that the reader finds, at length L.  While puts go on
 *        (no delete yet), neither table has a rule longer than L for the
 *        address: a new one would be in already (longest first), an old
 *        one still there or overwritten, and either would have been found.
 *        So if a put wrote R, R decides in the new table, else in the old.
 *        While deletes go on, every new rule is in, and an old rule longer
 *        than L would still be there (shortest first) and been found: if R
 *        is in the new table it decides there, else it decides in the old.
 *        No rule found: PASS, the old table's (puts phase: every old rule
 *        is there) or the new one's (deletes phase: every new rule is in).
 *     4. A lookup is not a moment, though: moat_lookup_v6 probes one rule
 *        per length, longest first, one after another, so without more it
 *        could meet the sequence at two points (e.g. old: /48 DROP; new:
 *        /64 DROP inside it, the /48 gone; a lookup probing /64 before the
 *        put and /48 after the delete PASSes an address DROP in both).  No
 *        order of single-rule updates avoids this (in that example either
 *        order fails).  So a writer waits for a grace period (every lookup
 *        that began before it has ended) between changes at different
 *        prefix lengths and around each plens flip.  Changes at one length
 *        cannot tear a lookup (it probes one key per length, and each key
 *        changes atomically), so every lookup then sees a state that a
 *        prefix of the sequence had, and 3 applies.  Cost: at most two grace
 *        periods per changed IPv6 length and two per plens flip in a
 *        publish, none for IPv4.
 *        The fast paths no longer look up v6_plens/v6_rules: they read the
 *        IPv6 trie (moat_trie6.h), whose lookup reads short prefixes
 *        before long ones, so it needs a grace period only before a change
 *        longer than the one before it (none around flips).  The XDP
 *        backend waits exactly there; moat-dpdk waits at every change of
 *        length (rte_rcu_qsbr_synchronize, dataplane/dpdk/dp_table.c
 *        run_enter).  The rest of 4 holds for a reader of
 *        v6_plens/v6_rules only (userspace, moat_lookup_v6).
 *   struct moat_update below is the unit of such a sequence; the fast-path
 *   interface (lib/fastpath.h) applies a sequence in order.
 */
#ifndef MOAT_ABI_H
#define MOAT_ABI_H

#include <linux/types.h>

/* Actions: 2 bits.  The numeric values are part of the ABI. */
enum moat_action {
	MOAT_ACT_PASS = 0,   /* no listing, or score below every threshold */
	MOAT_ACT_TARPIT = 1, /* zero-window SYN-ACK, then silence */
	MOAT_ACT_DROP = 2,   /* XDP_DROP / freed mbuf */
	MOAT_ACT_ALLOW = 3,  /* operator exemption: passes, counted apart */
	MOAT_ACT__MAX = 4,
};

/* What gate 1 does with a frame, in every backend (bpf/moat_verdict.h).
 * The values are XDP's (XDP_DROP, XDP_PASS, XDP_TX) so the XDP program
 * returns them as they are; the DPDK backend frees the mbuf, hands it to
 * the kernel, or transmits it on the port it came from. */
enum moat_verdict {
	MOAT_VERDICT_DROP = 1,  /* refused: nothing answers */
	MOAT_VERDICT_PASS = 2,  /* to the kernel's stack, untouched */
	MOAT_VERDICT_TX = 3,    /* rewritten in place (tarpit reply): sent back */
};

#define MOAT_TBL24_ENTRIES (1u << 24)
#define MOAT_TBL24_GROUP_BIT 0x80000000u
#define MOAT_TBL24_ACT_MASK 0x3u
#define MOAT_GROUP_BYTES 64
#define MOAT_GROUP_MAX 0x7fffffffu

struct moat_group {
	__u8 bits[MOAT_GROUP_BYTES];
};

#define MOAT_V6_MAX_PLENS 32 /* distinct IPv6 prefix lengths in one table */

struct moat_v6_key {
	__u32 plen;      /* 0..128 */
	__u8 addr[16];   /* network byte order, bits past plen are zero */
};

struct moat_v6_plens {
	__u32 n;                      /* number of valid entries in len[] */
	__u8 len[MOAT_V6_MAX_PLENS];  /* longest first, distinct */
};

/* The v6_plens map value: two plens slots and the selector of the live
 * one (see the layout above).  MOAT_UPD_V6_PLENS carries one plain set; a
 * fast path publishes it into the inactive slot and flips sel. */
struct moat_v6_plens_buf {
	__u32 sel;                        /* slot[sel & 1] is live */
	struct moat_v6_plens slot[2];
};

/* A writer that cannot wait for a real grace period (PUBLISHING ORDER 4)
 * sleeps this long instead: far longer than one packet's lookup. */
#define MOAT_V6_PLENS_GRACE_US 1000

/* moat_v6_plens_live - the live slot of a plens double buffer. */
static inline const struct moat_v6_plens *
moat_v6_plens_live(const struct moat_v6_plens_buf *b)
{
	__u32 sel = *(const volatile __u32 *)&b->sel;

	return &b->slot[sel & 1];
}

/* One step of a publish sequence (see PUBLISHING ORDER above). */
enum moat_update_kind {
	MOAT_UPD_GROUP = 1,     /* groups[index] = group */
	MOAT_UPD_TBL24 = 2,     /* tbl24[index] = value */
	MOAT_UPD_V6_PLENS = 3,  /* live plens := plens (slot + flip) */
	MOAT_UPD_V6_PUT = 4,    /* v6_rules[key] = action */
	MOAT_UPD_V6_DEL = 5,    /* delete v6_rules[key] */
};

struct moat_update {
	__u32 kind;   /* enum moat_update_kind */
	__u32 index;  /* GROUP: group index; TBL24: /24 index */
	__u32 value;  /* TBL24: entry; V6_PUT: action */
	__u32 pad;
	union {
		struct moat_group group;
		struct moat_v6_key key;
		struct moat_v6_plens plens;
	} u;
};

/* Pure helpers, shared by every reader of the layout. */
static inline __u32 moat_tbl24_index(__u32 addr_host)
{
	return addr_host >> 8;
}

static inline int moat_tbl24_is_group(__u32 e)
{
	return (e & MOAT_TBL24_GROUP_BIT) != 0;
}

static inline __u32 moat_tbl24_group(__u32 e)
{
	return e & ~MOAT_TBL24_GROUP_BIT;
}

static inline __u32 moat_tbl24_action(__u32 e)
{
	return e & MOAT_TBL24_ACT_MASK;
}

static inline __u32 moat_tbl24_make_group(__u32 idx)
{
	return idx | MOAT_TBL24_GROUP_BIT;
}

static inline __u32 moat_group_get(const struct moat_group *g, __u8 host)
{
	return (g->bits[host >> 2] >> ((host & 3) * 2)) & 3;
}

static inline void moat_group_set(struct moat_group *g, __u8 host, __u32 act)
{
	__u8 sh = (host & 3) * 2;

	g->bits[host >> 2] = (__u8)((g->bits[host >> 2] & ~(3u << sh)) |
				    ((act & 3u) << sh));
}

/* Stats indices of the per-CPU counter array (map "stats"; the XDP program
 * keeps one row of them per SMTP port, see moat_xdp.h). */
enum moat_stat {
	MOAT_STAT_PASS = 0,      /* SMTP SYN passed, unlisted */
	MOAT_STAT_TARPIT,        /* SYN answered with a tarpit SYN-ACK */
	MOAT_STAT_DROP,          /* SYN dropped by verdict */
	MOAT_STAT_ALLOW,         /* SYN passed by an ALLOW entry */
	MOAT_STAT_TARPIT_LIMITED,/* tarpit over rate limit, dropped instead */
	MOAT_STAT_TARPIT_SILENCE,/* non-SYN segment from a tarpitted source, dropped */
	MOAT_STAT_NOT_SMTP,      /* parsed, not TCP to an SMTP port: passed */
	MOAT_STAT_NON_SYN,       /* TCP to an SMTP port, not a SYN: passed */
	MOAT_STAT_ERR_ETH,       /* truncated Ethernet / VLAN header */
	MOAT_STAT_ERR_VLAN_DEPTH,/* more VLAN tags than supported */
	MOAT_STAT_ERR_IP4,       /* truncated IPv4, bad IHL, bad total length */
	MOAT_STAT_ERR_IP6,       /* truncated IPv6 or extension header */
	MOAT_STAT_ERR_IP6_EXT,   /* too many IPv6 extension headers */
	MOAT_STAT_ERR_TCP,       /* truncated TCP, bad data offset */
	MOAT_STAT_FRAGMENT,      /* IP fragment (not first, or first w/o TCP): passed */
	MOAT_STAT_TARPIT_FAIL,   /* tarpit reply could not be built, dropped */
	MOAT_STAT_EVENT_LOST,    /* sampled event not emitted: ring full or over limit */
	MOAT_STAT_SYN_COOKIE,    /* unlisted SYN answered with a SYN-cookie SYN-ACK (XDP_TX) */
	MOAT_STAT_SYN_COOKIE_KEEP,/* SYN passed to the kernel while cookies are on, so its listener
				  * accepts cookie ACKs (one a second per CPU and port; also in pass) */
	MOAT_STAT_SYN_COOKIE_FAIL,/* cookie or reply could not be made: passed to the kernel (also in pass) */
	MOAT_STAT__MAX,
};

#define MOAT_STAT_NAMES { \
	"pass", "tarpit", "drop", "allow", "tarpit_limited", "tarpit_silence", \
	"not_smtp", "non_syn", "err_eth", "err_vlan_depth", "err_ip4", \
	"err_ip6", "err_ip6_ext", "err_tcp", "fragment", "tarpit_fail", \
	"event_lost", "syn_cookie", "syn_cookie_keep", "syn_cookie_fail" }

/* SYN cookies for unlisted SYNs (the XDP backend's syn_cookies key;
 * bpf/moat_xdp.h, docs/xdp.md) */
enum moat_syn_cookies {
	MOAT_SYN_COOKIES_OFF = 0,
	MOAT_SYN_COOKIES_ON = 1,
	MOAT_SYN_COOKIES_AUTO = 2,
};

/* SMTP ports a fast path filters on: at most this many (slots 0..n-1). */
#define MOAT_PORTS_MAX 8

/*
 * One sampled verdict, as a fast path reports it (XDP: ring buffer map
 * "events").  Emitted for SYN verdicts other than PASS, sampled and
 * rate-limited, so an operator can see what is refused.
 */
struct moat_event {
	__u64 ts_ns;     /* CLOCK_MONOTONIC, coarse (XDP: jiffies resolution) */
	__u32 stat;      /* enum moat_stat: tarpit, drop, allow, tarpit_limited */
	__u32 ifindex;   /* interface the frame arrived on */
	__u8 family;     /* 4 or 6 */
	__u8 action;     /* enum moat_action from the table */
	__u16 sport;     /* host byte order */
	__u16 dport;     /* host byte order */
	__u16 pad;
	__u8 saddr[16];  /* network byte order; IPv4 in the first 4 bytes */
};

#endif /* MOAT_ABI_H */
