/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_trie6.h - the IPv6 verdict trie: layout and lookup, written once for
 * every reader (the XDP program over BPF map values, lib/ over a userspace
 * image, moat-dpdk over its own memory).  Header-only, no libc.  The
 * writer is lib/vt_trie6.c; docs/table-layout.md has the design and the
 * measured figures.
 *
 * LAYOUT (bounded: at most 1 + 14 + 1 dependent reads, usually 2 or 3)
 *
 *   root[]       __u32 entries, one of two roots (the storage says which):
 *                small (R = 16, the default): 2^16 entries (256 KiB)
 *                indexed by the top 16 bits of the address, 16 bits
 *                consumed;
 *                wide (R = 24, for large tables): 2^21 + 2^16 entries
 *                (8.25 MiB), in two parts.  An address in 2000::/3 (top
 *                bits 001: all of global unicast, so all DNSBL data)
 *                indexes entry bits 3..23 of the address, 24 bits
 *                consumed: it then needs the root and one bucket, no
 *                node.  Any other address indexes 2^21 + its top 16
 *                bits, 16 bits consumed, as in the small root (entries
 *                2^21 + 0x2000..0x3fff are never read).  A rule of /0../3
 *                covering 2000::/3 is in both parts.  The walk picks the
 *                part with one compare (moat_v6t_root_slot), predictable
 *                for real traffic.  It replaced a root of 2^24 entries
 *                (64 MiB) indexed by the top 24 bits of every address,
 *                7/8 of which no unicast address reads.
 *   nodes[]      struct moat_v6_node: 256 __u32 entries (1 KiB), indexed by
 *                the next address byte.  A node sits at depth d (D, D + 8,
 *                ..., 120 bits consumed before its byte; D the bits its
 *                root entry consumed, 16 or 24).
 *   buckets[]    struct moat_v6_bucket: 64 bytes, at most 3 rules (any
 *                length past the entry's range), longest first.
 *
 *   An entry (__u32):
 *     bits 31..30  kind: 0 = nothing below, 1 = node, 2 = bucket
 *     bit  29      own: the entry carries an action of its own
 *     bits 28..27  that action (enum moat_action); zero when bit 29 is
 *                  clear, so with PASS 0 the root entry's bits 28..27
 *                  are the walk's first default as they are
 *     bits 26..23  skip (bucket entries only, else 0): bit q set means no
 *                  rule of the bucket covers the addresses whose two bits
 *                  after the entry's range are q, so the walk stops there
 *                  without reading the bucket (moat_v6t_skip).  Most
 *                  buckets hold one rule: an address that reaches a used
 *                  entry without being listed reads its bucket one time
 *                  in four, not always (that read, a cache miss, and the
 *                  branch on what it held were the cost of unlisted
 *                  addresses).  Written with the index in the one store
 *                  that publishes the bucket.
 *     bits 22..0   node or bucket index (so at most 2^23 of each:
 *                  VT_TRIE6_RULES_MAX rules)
 *   The root map of the XDP program carries MOAT_V6T_LAYOUT in its size
 *   (xdp_backend.c): pins of another layout differ in shape and are
 *   rebuilt, never read as this one.
 *   The root holds every rule of length 0..D, a node at depth d every rule
 *   of length d+1..d+8 on its path: an entry's own action is the one of the
 *   longest such rule covering the entry's range (prefix expansion inside
 *   one node only, never pushed into the nodes below).  Rules longer than
 *   the entries on their path live in the bucket at the end of it, until a
 *   fourth one splits the bucket into a node.
 *
 *   Lookup: walk root, nodes, bucket; remember the last own action met;
 *   the first bucket rule matching decides, else the remembered action,
 *   else PASS.  So the deepest rule on the path wins: longest prefix.
 *
 * PUBLISHING (copy on write, one store per change and address)
 *
 *   Entries, nodes and buckets a reader may reach are never rewritten but
 *   by one aligned 4-byte store of an entry.  A rule at the root or in a
 *   node changes the own bits of the entries it covers, one store each
 *   (every address reads one of them); a bucket changes by a new bucket,
 *   a split by a new node (and what is below it), filled first and then
 *   published by the one entry store; what it replaces is freed after a
 *   grace period only.  So each update of a sequence touches one entry on
 *   any address's path.  A lookup reads that path from short prefixes to
 *   long ones, at different moments: if a change at a short length comes
 *   before one at a longer length, a lookup can read the short entry
 *   before the first and the long one after the second, a state no prefix
 *   of the sequence had (old {/40 DROP, /56 ALLOW} -> new {/32 ALLOW}:
 *   put /32, delete /40, delete /56; an address in the /56 read as DROP).
 *   Changes of decreasing length cannot tear it: a lookup that reads the
 *   longer entry after its change reads the shorter one later still.  So
 *   the writer waits for a grace period before each change longer than
 *   the one before it; then every lookup sees a finished prefix, and with
 *   PUBLISHING ORDER 3 of moat_abi.h (puts longest first, then deletes
 *   shortest first) that prefix gives the old or the new verdict.  Puts
 *   alone wait for none; deletes wait once per longer length.
 *
 * The includer defines, before including this file:
 *   MOAT_V6T_ROOT_GET(ctx, i)    -> __u32 root[i] (i < moat_v6t_root_entries(R))
 *   MOAT_V6T_ROOT_BITS_GET(ctx)  -> R, 16 or 24 (optional: 16)
 *   MOAT_V6T_NODE_GET(ctx, i)    -> const struct moat_v6_node *, or NULL
 *   MOAT_V6T_BUCKET_GET(ctx, i)  -> const struct moat_v6_bucket *, or NULL
 * (NULL: index past the end, the address passes).
 */
#ifndef MOAT_TRIE6_H
#define MOAT_TRIE6_H

#include "moat_abi.h"

#define MOAT_V6T_ROOT_BITS 16          /* the default root */
#define MOAT_V6T_ROOT_ENTRIES (1u << MOAT_V6T_ROOT_BITS)
#define MOAT_V6T_ROOT_BITS_WIDE 24     /* the wide root (24 bits in 2000::/3) */
#define MOAT_V6T_WIDE_IN_ENTRIES (1u << 21)   /* its part for 2000::/3 */
#define MOAT_V6T_ROOT_ENTRIES_WIDE (MOAT_V6T_WIDE_IN_ENTRIES + MOAT_V6T_ROOT_ENTRIES)
#define MOAT_V6T_WIDE_PREFIX 1u        /* 2000::/3: top 3 bits 001 */
#define MOAT_V6T_NODE_ENTRIES 256
#define MOAT_V6T_BUCKET_RULES 3
#define MOAT_V6T_MAX_NODES_DEEP 14   /* depths 16, 24, ..., 120 (R = 16) */

/* moat_v6t_root_bits - R from a storage's setting: 16 or 24 (0 means the
 * default, 16; 16 | 24 == 24, 0 | 16 == 16: one or, no branch) */
static inline __u32 moat_v6t_root_bits(__u32 setting)
{
	return setting | MOAT_V6T_ROOT_BITS;
}

/* moat_v6t_root_entries - the root's entries for a setting (0, 16, 24) */
static inline __u32 moat_v6t_root_entries(__u32 setting)
{
	return moat_v6t_root_bits(setting) == MOAT_V6T_ROOT_BITS_WIDE
		       ? MOAT_V6T_ROOT_ENTRIES_WIDE : MOAT_V6T_ROOT_ENTRIES;
}

/* moat_v6t_root_slot - the root entry of an address (its high half hi,
 * host order) in a root of R bits (16 or 24, not the setting), and in
 * *depth the bits that entry consumes: 24 for 2000::/3 in the wide root,
 * else 16.  The index is below moat_v6t_root_entries(R) whatever hi is
 * (in BPF the verifier bounds each branch's index on its own). */
static inline __attribute__((always_inline)) __u32
moat_v6t_root_slot(__u64 hi, __u32 rb, __u32 *depth)
{
	if (rb == MOAT_V6T_ROOT_BITS_WIDE) {
		if ((hi >> 61) == MOAT_V6T_WIDE_PREFIX) {
			*depth = MOAT_V6T_ROOT_BITS_WIDE;
			return (__u32)(hi >> 40) & (MOAT_V6T_WIDE_IN_ENTRIES - 1);
		}
		*depth = MOAT_V6T_ROOT_BITS;
		return MOAT_V6T_WIDE_IN_ENTRIES + (__u32)(hi >> 48);
	}
	*depth = MOAT_V6T_ROOT_BITS;
	return (__u32)(hi >> 48);
}

#define MOAT_V6T_KIND_SHIFT 30
#define MOAT_V6T_KIND_NONE 0u
#define MOAT_V6T_KIND_NODE 1u
#define MOAT_V6T_KIND_BUCKET 2u
#define MOAT_V6T_OWN 0x20000000u
#define MOAT_V6T_ACT_SHIFT 27
#define MOAT_V6T_SKIP_SHIFT 23
#define MOAT_V6T_SKIP_MASK (0xfu << MOAT_V6T_SKIP_SHIFT)
#define MOAT_V6T_INDEX_MASK 0x007fffffu
#define MOAT_V6T_INDEX_MAX MOAT_V6T_INDEX_MASK
/* MOAT_V6T_LAYOUT - the entry format's version (2: skip bits; 1 had a
 * 27-bit index and none) */
#define MOAT_V6T_LAYOUT 2

struct moat_v6_node {
	__u32 e[MOAT_V6T_NODE_ENTRIES];
};

/* One cache line: rule i is the prefix (hi[i], lo[i]) / plen[i] (the
 * address as two host-order 64-bit halves, masked to plen), action act[i];
 * n rules, longest first. */
struct moat_v6_bucket {
	__u64 hi[MOAT_V6T_BUCKET_RULES];
	__u64 lo[MOAT_V6T_BUCKET_RULES];
	__u8 plen[MOAT_V6T_BUCKET_RULES];
	__u8 act[MOAT_V6T_BUCKET_RULES];
	__u8 n;
	__u8 pad[9];
} __attribute__((aligned(64)));

static inline __u32 moat_v6t_kind(__u32 e)
{
	return e >> MOAT_V6T_KIND_SHIFT;
}

static inline __u32 moat_v6t_index(__u32 e)
{
	return e & MOAT_V6T_INDEX_MASK;
}

static inline __u32 moat_v6t_entry(__u32 kind, int own, __u32 act, __u32 idx)
{
	return kind << MOAT_V6T_KIND_SHIFT | (own ? MOAT_V6T_OWN : 0) |
	       (own ? (act & 3u) << MOAT_V6T_ACT_SHIFT : 0) |
	       (idx & MOAT_V6T_INDEX_MASK);
}

/* moat_v6t_next2 - the two address bits at bit depth d (a multiple of 8,
 * at most 120): which quarter of an entry of range d the address is in */
static inline __u32 moat_v6t_next2(__u64 hi, __u64 lo, __u32 d)
{
	if (d < 64)
		return (__u32)(hi >> (62 - d)) & 3;
	return (__u32)(lo >> (126 - (d & 127))) & 3;
}

/* moat_v6t_skip - is the bucket of entry e no match for an address whose
 * two bits after the entry's range are q (0..3)? */
static inline __u32 moat_v6t_skip(__u32 e, __u32 q)
{
	return (e >> (MOAT_V6T_SKIP_SHIFT + (q & 3))) & 1;
}

/* moat_v6t_mask_hi / _lo - the halves of a /plen netmask (host order). */
static inline __u64 moat_v6t_mask_hi(__u32 plen)
{
	if (plen >= 64)
		return ~0ULL;
	return plen ? ~0ULL << (64 - plen) : 0;
}

static inline __u64 moat_v6t_mask_lo(__u32 plen)
{
	if (plen <= 64)
		return 0;
	return plen >= 128 ? ~0ULL : ~0ULL << (128 - plen);
}

/* moat_v6t_mask_tab - [p] the halves of the /p netmask, p 0..128 (129..255:
 * /128, so a byte indexes it whatever it holds): a bucket rule is matched
 * with two loads from this 4 KiB table (in L1) instead of 8 to 20
 * instructions computing the masks from p, with no branch on p (/64 and
 * /128 rules are mixed in buckets). */
#define MOAT_V6T_MH(p) ((p) >= 64 ? ~0ULL : (p) ? ~0ULL << ((64 - (p)) & 63) : 0ULL)
#define MOAT_V6T_ML(p) ((p) >= 128 ? ~0ULL : (p) > 64 ? ~0ULL << ((128 - (p)) & 63) : 0ULL)
#define MOAT_V6T_M1(p) { MOAT_V6T_MH(p), MOAT_V6T_ML(p) }
#define MOAT_V6T_M4(p) MOAT_V6T_M1(p), MOAT_V6T_M1((p) + 1), MOAT_V6T_M1((p) + 2), \
	MOAT_V6T_M1((p) + 3)
#define MOAT_V6T_M16(p) MOAT_V6T_M4(p), MOAT_V6T_M4((p) + 4), MOAT_V6T_M4((p) + 8), \
	MOAT_V6T_M4((p) + 12)
#define MOAT_V6T_M64(p) MOAT_V6T_M16(p), MOAT_V6T_M16((p) + 16), \
	MOAT_V6T_M16((p) + 32), MOAT_V6T_M16((p) + 48)
static const __u64 moat_v6t_mask_tab[256][2] __attribute__((aligned(64))) = {
	MOAT_V6T_M64(0), MOAT_V6T_M64(64), MOAT_V6T_M64(128), MOAT_V6T_M64(192)
};

/* moat_v6t_bmatch - does (hi, lo) fall in rule i of bucket b? */
#define moat_v6t_bmatch(b, i, hi, lo)                                        \
	(((((hi) ^ (b)->hi[i]) & moat_v6t_mask_tab[(b)->plen[i]][0]) |      \
	  (((lo) ^ (b)->lo[i]) & moat_v6t_mask_tab[(b)->plen[i]][1])) == 0)

/* moat_v6t_bucket_from - the action of the first (longest) rule of
 * bucket b from rule i0 on that covers (hi, lo), else def */
static inline __attribute__((always_inline)) __u32
moat_v6t_bucket_from(const struct moat_v6_bucket *b, __u32 i0, __u64 hi, __u64 lo,
		     __u32 def)
{
	for (__u32 i = i0; i < MOAT_V6T_BUCKET_RULES; i++) {
		if (i >= b->n)
			break;
		if (moat_v6t_bmatch(b, i, hi, lo))
			return b->act[i] & 3;
	}
	return def;
}

/* moat_v6t_bucket_act - the same from rule 0 (what the BPF walk uses) */
static inline __attribute__((always_inline)) __u32
moat_v6t_bucket_act(const struct moat_v6_bucket *b, __u64 hi, __u64 lo, __u32 def)
{
	return moat_v6t_bucket_from(b, 0, hi, lo, def);
}

/* moat_v6t_halves - the address (16 bytes, network order) as two
 * host-order halves: two loads and two byte swaps (a byte loop here made
 * the whole lookup 2.4 times slower in userspace).  In BPF the address
 * must be 8-byte aligned (struct moat_pkt's saddr6, a map value): there a
 * memcpy from a byte pointer compiles to sixteen byte loads and the
 * shifts that join them, 45 instructions a lookup that made the in-kernel
 * lookup twice the userspace one over the same pages. */
static inline void moat_v6t_halves(const __u8 *a, __u64 *hi, __u64 *lo)
{
	__u64 h, l;

#ifdef __BPF__
	h = ((const __u64 *)a)[0];
	l = ((const __u64 *)a)[1];
#else
	__builtin_memcpy(&h, a, 8);
	__builtin_memcpy(&l, a + 8, 8);
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	*hi = h;
	*lo = l;
#else
	*hi = __builtin_bswap64(h);
	*lo = __builtin_bswap64(l);
#endif
}

/* moat_v6t_shr - x >> s for s in 0..64 (64 gives 0), without a branch:
 * two shifts of at most 32 each (a shift by 64 is undefined in C). */
static inline __u64 moat_v6t_shr(__u64 x, __u64 s)
{
	return (x >> (s >> 1)) >> (s - (s >> 1));
}

/* MOAT_V6T_OPAQUE - hides a value's origin from the compiler, in BPF
 * only, where clang turns arithmetic on a comparison's result back into
 * a jump (BPF has no conditional move). */
#ifdef __BPF__
#define MOAT_V6T_OPAQUE(x) __asm__ __volatile__("" : "+r"(x))
#else
#define MOAT_V6T_OPAQUE(x) ((void)0)
#endif

/* moat_v6t_match - does (hi, lo) fall in the rule (bhi, blo)/p, p in
 * 0..128?  Arithmetic only, no branch but the result's (BPF has no
 * conditional move: the old per-half tests on p were one to three
 * unpredictable jumps per rule, /64 and /128 rules being mixed). */
static inline int moat_v6t_match(__u64 hi, __u64 lo, __u64 bhi, __u64 blo, __u64 p)
{
	/* bits of the high half the rule fixes: min(p, 64); of the low
	 * half: max(p, 64) - 64 */
	__u64 over, qh, ql;

	MOAT_V6T_OPAQUE(p);
	over = (64 - p) >> 63;                    /* p > 64 */
	qh = p - ((p - 64) & (0 - over));
	ql = (p - 64) & (0 - over);

	return (moat_v6t_shr(hi ^ bhi, 64 - qh) |
		moat_v6t_shr(lo ^ blo, 64 - ql)) == 0;
}

/* moat_v6t_own - def, or the entry's own action when it has one: a mask,
 * not a jump (in BPF a jump per level also doubles the verifier's paths
 * at every level). */
static inline __u32 moat_v6t_own(__u32 e, __u32 def)
{
	__u32 m = (e >> 29) & 1;    /* MOAT_V6T_OWN */

	MOAT_V6T_OPAQUE(m);
	m = 0 - m;
	return (def & ~m) | ((e >> MOAT_V6T_ACT_SHIFT) & 3 & m);
}

/* moat_v6t_byte - the address byte at bit depth d (a multiple of 8). */
static inline __u32 moat_v6t_byte(__u64 hi, __u64 lo, __u32 d)
{
	if (d < 64)
		return (__u32)(hi >> (56 - d)) & 0xff;
	return (__u32)(lo >> (120 - (d & 127))) & 0xff;
}

#endif /* MOAT_TRIE6_H */

/* The lookup, once per includer that defines the accessors. */
#if defined(MOAT_V6T_ROOT_GET) && defined(MOAT_V6T_NODE_GET) && \
	defined(MOAT_V6T_BUCKET_GET) && !defined(MOAT_TRIE6_LOOKUP_H)
#define MOAT_TRIE6_LOOKUP_H
/* moat_lookup_v6t - action for an IPv6 address (16 bytes, network order;
 * 8-byte aligned in BPF): the longest rule covering it, PASS when none
 * does.  The walk shifts the address through k (the next byte is always
 * its top one) so a level is a load, a mask and a few shifts; the address
 * halves are read again for the bucket only.  That is the BPF version;
 * compiled for the host (userspace, moat-dpdk) the straightforward walk
 * below it is faster (gcc's conditional moves: the BPF version cost 30 %
 * more there, xdp_bench lookup6 ns_lookup_user_v6_1m 66-76 vs 88-99 ns,
 * same run).  Both are checked against each other by xdp_bench lookup6
 * (kernel and userspace sums) and each by its tests. */
#ifndef MOAT_V6T_ROOT_BITS_GET
#define MOAT_V6T_ROOT_BITS_GET(ctx) MOAT_V6T_ROOT_BITS
#endif
#ifdef __BPF__
static inline __u32 moat_lookup_v6t(void *ctx, const __u8 *addr)
{
	__u64 hi, lo, kh, kl, rb;
	__u32 def, e, k, lvl, d;
	const struct moat_v6_bucket *b;

	moat_v6t_halves(addr, &hi, &lo);
	e = MOAT_V6T_ROOT_GET(ctx, moat_v6t_root_slot(hi, MOAT_V6T_ROOT_BITS_GET(ctx), &d));
	rb = d;
	/* an entry without its own action has zero action bits and PASS is
	 * 0: the root's own action is a shift and a mask */
	_Static_assert(MOAT_ACT_PASS == 0, "moat_lookup_v6t: PASS must be 0");
	def = (e >> MOAT_V6T_ACT_SHIFT) & 3;
	k = moat_v6t_kind(e);
	/* the address past the bits consumed so far: its top two bits pick
	 * the skip bit of a bucket entry */
	kh = hi << rb | lo >> (64 - rb);
	/* the nodes at depth R, R + 8, ..., 120, walked only when the root
	 * entry is a node (the wide root's usual path is root, bucket); the
	 * loop's counter is dead after it, so the verifier checks what
	 * follows once, not once per level */
	if (k == MOAT_V6T_KIND_NODE) {
		kl = lo << rb;
		for (lvl = 0;; lvl++) {
			const struct moat_v6_node *n;

			if (lvl >= MOAT_V6T_MAX_NODES_DEEP)   /* depth 128 */
				return def;
			n = MOAT_V6T_NODE_GET(ctx, moat_v6t_index(e));
			if (!n)
				return def;
			e = n->e[kh >> 56];
			kh = kh << 8 | kl >> 56;
			kl <<= 8;
			def = moat_v6t_own(e, def);
			k = moat_v6t_kind(e);
			if (k != MOAT_V6T_KIND_NODE)
				break;
		}
	}
	if (k != MOAT_V6T_KIND_BUCKET || moat_v6t_skip(e, (__u32)(kh >> 62)))
		return def;
	b = MOAT_V6T_BUCKET_GET(ctx, moat_v6t_index(e));
	if (!b)
		return def;
	moat_v6t_halves(addr, &hi, &lo);
	return moat_v6t_bucket_act(b, hi, lo, def);
}
#else
/* moat_v6t_bucket_act_host - moat_v6t_bucket_act with rule 0 taken by a
 * select: the bucket is the lookup's last miss, and a jump on what it
 * holds (does rule 0 match?  is there a rule 1?) mispredicts for the
 * addresses that fall in a bucket without being listed, flushing the
 * lookups after it that were already waiting for their own misses.  Most
 * buckets hold one rule; rules 1 and 2 keep the loop.  Userspace, same
 * run (a harness over bench table's 1M IPv6 and 10M IPv4 tables, 11
 * batches, 5 Dec 14:05): 47.4 / 39.7 ns against 50.9 / 44.1 with the
 * loop from rule 0. */
static inline __attribute__((always_inline)) __u32
moat_v6t_bucket_act_host(const struct moat_v6_bucket *b, __u64 hi, __u64 lo, __u32 def)
{
	__u32 n = b->n, a0 = b->act[0] & 3u, m;
	int m0 = moat_v6t_bmatch(b, 0, hi, lo) & (n != 0);

	if (__builtin_expect(n > 1, 0) && !m0)
		return moat_v6t_bucket_from(b, 1, hi, lo, def);
	/* a mask, not m0 ? a0 : def (gcc made that a jump on the bucket's
	 * miss, the load of act[0] being under it) */
	m = 0u - (__u32)m0;
	return (a0 & m) | (def & ~m);
}

/* The host walk: root, then nodes only when the root entry is one (a
 * loop of its own, out of the usual path), then the bucket.  The usual
 * path of a large table (the wide root, an address in 2000::/3: all
 * global unicast) is written out first with its constants (24 bits
 * consumed, the skip quarter at a fixed shift): gcc laid the general
 * root index (moat_v6t_root_slot: R read, two compares, three taken
 * jumps) and a loop with the bit depth variable in front of every
 * lookup.  Always inline, as the IPv4 lookup is by its size: gcc left
 * this one a call in bench table's loop.  Same-process harness (bench
 * table's 1M IPv6 and 10M IPv4 tables, each IPv6 batch cold after an
 * IPv4 batch as the bench times it, this walk and the former one in
 * alternate batches, 15 each, 5 Dec 20:56, load 1.7): IPv6 / IPv4 median
 * 1.273 against 1.410. */
static inline __attribute__((always_inline)) __u32
moat_lookup_v6t(void *ctx, const __u8 *addr)
{
	__u64 hi, lo;
	__u32 def, e, d, q, rb;
	const struct moat_v6_bucket *b;

	moat_v6t_halves(addr, &hi, &lo);
	rb = MOAT_V6T_ROOT_BITS_GET(ctx);
	if (__builtin_expect(rb == MOAT_V6T_ROOT_BITS_WIDE &&
			     (hi >> 61) == MOAT_V6T_WIDE_PREFIX, 1)) {
		e = MOAT_V6T_ROOT_GET(ctx, (__u32)(hi >> 40) & (MOAT_V6T_WIDE_IN_ENTRIES - 1));
		d = MOAT_V6T_ROOT_BITS_WIDE;
		q = (__u32)(hi >> (62 - MOAT_V6T_ROOT_BITS_WIDE)) & 3;
	} else {
		e = MOAT_V6T_ROOT_GET(ctx, moat_v6t_root_slot(hi, rb, &d));
		q = (__u32)(hi >> (62 - MOAT_V6T_ROOT_BITS)) & 3;
	}
	/* the root's own action: a shift and a mask, as in the BPF walk
	 * (action bits zero without own, PASS 0; the writer and adopt keep
	 * it so); the nodes below keep the select */
	_Static_assert(MOAT_ACT_PASS == 0, "moat_lookup_v6t: PASS must be 0");
	def = (e >> MOAT_V6T_ACT_SHIFT) & 3;
	if (__builtin_expect(moat_v6t_kind(e) == MOAT_V6T_KIND_NODE, 0)) {
		__u32 lvl;

		for (lvl = 0; lvl < MOAT_V6T_MAX_NODES_DEEP; lvl++) {
			const struct moat_v6_node *n = MOAT_V6T_NODE_GET(ctx, moat_v6t_index(e));

			if (!n || d > 120)
				return def;
			e = n->e[moat_v6t_byte(hi, lo, d)];
			d += 8;
			def = (e & MOAT_V6T_OWN) ? (e >> MOAT_V6T_ACT_SHIFT) & 3 : def;
			if (moat_v6t_kind(e) != MOAT_V6T_KIND_NODE)
				break;
		}
		/* a bucket's range ends at 120 bits at most: past a node
		 * at 120 (d 128) only an entry's own action, and next2
		 * has no bits to read there */
		if (moat_v6t_kind(e) != MOAT_V6T_KIND_BUCKET)
			return def;
		q = moat_v6t_next2(hi, lo, d);
	}
	/* an unlisted address mostly stops here, on the entry read: a jump
	 * that mispredicts resolves before the bucket's miss */
	if (moat_v6t_kind(e) != MOAT_V6T_KIND_BUCKET || moat_v6t_skip(e, q))
		return def;
	b = MOAT_V6T_BUCKET_GET(ctx, moat_v6t_index(e));
	if (!b)
		return def;
	return moat_v6t_bucket_act_host(b, hi, lo, def);
}
#endif /* __BPF__ */
#endif /* MOAT_TRIE6_LOOKUP_H */
