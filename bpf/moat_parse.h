/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * moat_parse.h - the fast path's frame parser and tarpit reply builder,
 * header-only so the same code runs in the XDP program (clang -target bpf),
 * in the DPDK backend, in unit tests and in the fuzzer.
 *
 * moat_parse() takes the common frame (untagged IPv4 without options,
 * TCP) with one bounds check (moat_parse_fast4) and otherwise walks
 * Ethernet, up to MOAT_VLAN_MAX 802.1Q/802.1ad tags, IPv4 (with options) or IPv6 (with up to MOAT_IP6_MAX_EXT extension
 * headers) and TCP, and fills struct moat_pkt.  It never reads a byte past
 * data_end: every read is preceded by a bounds check written the way the
 * BPF verifier needs it (pointer + constant <= data_end after the offset
 * has a known upper bound).
 *
 * moat_tarpit_build() turns a parsed SYN in place into the stateless tarpit
 * answer: a SYN-ACK with window 0 and the given ISN, addresses and ports
 * swapped, VLAN tags kept, IP options and extension headers dropped, both
 * checksums computed.  The caller trims the frame to the returned length.
 * moat_cookie_build() writes the SYN-cookie answer the same way (the ISN
 * a kernel SYN cookie, a window and an MSS option).
 *
 * Only <linux/types.h> and compiler builtins: no libc, no kernel headers.
 */
#ifndef MOAT_PARSE_H
#define MOAT_PARSE_H

#include <linux/types.h>

#include "moat_abi.h"

/* MOAT_PARSE_SIMD - userspace with SSSE3 (DPDK's baseline; not BPF): the
 * fast case compares and copies its header bytes 16 at a time
 * (moat_parse_fast4); the only header beyond the compiler's own */
#if !defined(__BPF__) && defined(__SSSE3__) && \
	__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(MOAT_PARSE_NO_SIMD)
#define MOAT_PARSE_SIMD 1
#include <tmmintrin.h>
#endif

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define MOAT_VLAN_MAX 2     /* 802.1ad outer + 802.1Q inner */
#define MOAT_IP6_MAX_EXT 6  /* extension headers walked before giving up */
#define MOAT_HDR_MAX_OFF 1024 /* no header of interest starts past this */

#define MOAT_ETH_HLEN 14
#define MOAT_ETH_P_IP 0x0800
#define MOAT_ETH_P_IPV6 0x86dd
#define MOAT_ETH_P_8021Q 0x8100
#define MOAT_ETH_P_8021AD 0x88a8
#define MOAT_IPPROTO_TCP 6

#define MOAT_TCP_FIN 0x01
#define MOAT_TCP_SYN 0x02
#define MOAT_TCP_RST 0x04
#define MOAT_TCP_ACK 0x10

/* Outcome of moat_parse(); each value but OK maps to one moat_stat. */
enum moat_parse_res {
	MOAT_PARSE_TCP = 0,     /* TCP header complete, struct filled */
	MOAT_PARSE_OTHER,       /* well-formed, not TCP (or not IP) */
	MOAT_PARSE_FRAGMENT,    /* IP fragment without a TCP header of its own */
	MOAT_PARSE_ERR_ETH,     /* frame shorter than its Ethernet/VLAN headers */
	MOAT_PARSE_ERR_VLAN_DEPTH,
	MOAT_PARSE_ERR_IP4,
	MOAT_PARSE_ERR_IP6,
	MOAT_PARSE_ERR_IP6_EXT,
	MOAT_PARSE_ERR_TCP,
};

/* What the fast path needs from a frame; ports and seq in host order. */
struct moat_pkt {
	__u16 l3_off;    /* start of the IP header */
	__u16 l4_off;    /* start of the TCP header */
	__u8 family;     /* 4 or 6 */
	__u8 nvlan;      /* VLAN tags seen */
	__u8 tcp_flags;  /* TCP flags byte (FIN..CWR) */
	__u8 pad;
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u32 saddr4;    /* host order (IPv4) */
	__u32 daddr4;
	__u8 saddr6[16] __attribute__((aligned(8))); /* network order (IPv6); 8-aligned: moat_lookup_v6t */
	__u8 daddr6[16] __attribute__((aligned(4)));
};

/* Byte order without libc: the fast paths run on little-endian hosts, the
 * check keeps a big-endian build correct too. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define moat_be16(x) __builtin_bswap16(x)
#define moat_be32(x) __builtin_bswap32(x)
#define moat_be64(x) __builtin_bswap64(x)
#else
#define moat_be16(x) (x)
#define moat_be32(x) (x)
#define moat_be64(x) (x)
#endif

/*
 * moat_rd16 - big-endian 16-bit field at p: one load and a byte swap.  In
 * BPF a plain load (the verifier allows unaligned packet reads on hosts
 * with efficient unaligned access; clang would split a memcpy into byte
 * loads); elsewhere memcpy, which compilers turn into one load.
 */
static __always_inline __u16 moat_rd16(const __u8 *p)
{
	__u16 v;

#ifdef __BPF__
	v = *(const __u16 *)p;
#else
	__builtin_memcpy(&v, p, 2);
#endif
	return moat_be16(v);
}

/* moat_ld32 - the 32 bits at p as they lie in memory (no byte swap): for
 * compares against constants swapped at compile time (moat_be32(K)) */
static __always_inline __u32 moat_ld32(const __u8 *p)
{
	__u32 v;

#ifdef __BPF__
	v = *(const __u32 *)p;
#else
	__builtin_memcpy(&v, p, 4);
#endif
	return v;
}

/* moat_rd32 - big-endian 32-bit field at p */
static __always_inline __u32 moat_rd32(const __u8 *p)
{
	return moat_be32(moat_ld32(p));
}

/* moat_copy16 - copy an IPv6 address out of the frame (4-byte aligned dst);
 * in BPF as four word loads, not sixteen byte loads */
static __always_inline void moat_copy16(__u8 *dst, const __u8 *src)
{
#ifdef __BPF__
	__u32 *d = (__u32 *)dst;
	const __u32 *q = (const __u32 *)src;

	d[0] = q[0];
	d[1] = q[1];
	d[2] = q[2];
	d[3] = q[3];
#else
	__builtin_memcpy(dst, src, 16);
#endif
}

/*
 * MOAT_PKT_BARRIER - the end of a parser's stores into struct moat_pkt on
 * one path of moat_parse().  In BPF, without it clang may sink the same
 * field's load from the fast and the general parser into one load after
 * they join, through a pointer the verifier has no bounds for; an empty
 * asm with a memory clobber keeps each load on its own, checked path.
 * Nothing in userspace.
 */
#ifdef __BPF__
#define MOAT_PKT_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define MOAT_PKT_BARRIER() do { } while (0)
#endif

/* moat_parse_res_stat - the counter a non-TCP parse outcome goes to */
static __always_inline __u32 moat_parse_res_stat(int res)
{
	switch (res) {
	case MOAT_PARSE_FRAGMENT: return MOAT_STAT_FRAGMENT;
	case MOAT_PARSE_ERR_ETH: return MOAT_STAT_ERR_ETH;
	case MOAT_PARSE_ERR_VLAN_DEPTH: return MOAT_STAT_ERR_VLAN_DEPTH;
	case MOAT_PARSE_ERR_IP4: return MOAT_STAT_ERR_IP4;
	case MOAT_PARSE_ERR_IP6: return MOAT_STAT_ERR_IP6;
	case MOAT_PARSE_ERR_IP6_EXT: return MOAT_STAT_ERR_IP6_EXT;
	case MOAT_PARSE_ERR_TCP: return MOAT_STAT_ERR_TCP;
	default: return MOAT_STAT_NOT_SMTP;
	}
}

/* moat_parse_tcp - TCP header at off, which must end within lim */
static __always_inline int moat_parse_tcp(const __u8 *data, const __u8 *end,
					  __u32 off, __u32 lim,
					  struct moat_pkt *p)
{
	const __u8 *t;
	__u32 doff;

	if (off > MOAT_HDR_MAX_OFF)
		return MOAT_PARSE_ERR_TCP;
	t = data + off;
	if (t + 20 > end || off + 20 > lim)
		return MOAT_PARSE_ERR_TCP;
	doff = (__u32)(t[12] >> 4) * 4;
	if (doff < 20 || off + doff > lim)
		return MOAT_PARSE_ERR_TCP;
	p->l4_off = (__u16)off;
	p->sport = moat_rd16(t);
	p->dport = moat_rd16(t + 2);
	p->seq = moat_rd32(t + 4);
	p->tcp_flags = t[13];
	MOAT_PKT_BARRIER();
	return MOAT_PARSE_TCP;
}

/* moat_parse_ip4 - IPv4 header at off (options allowed), then TCP */
static __always_inline int moat_parse_ip4(const __u8 *data, const __u8 *end,
					  __u32 off, struct moat_pkt *p)
{
	const __u8 *h = data + off;
	__u32 ihl, tot, lim;

	if (h + 20 > end)
		return MOAT_PARSE_ERR_IP4;
	ihl = (__u32)(h[0] & 0x0f) * 4;
	if ((h[0] >> 4) != 4 || ihl < 20)
		return MOAT_PARSE_ERR_IP4;
	tot = moat_rd16(h + 2);
	/* the datagram must hold its header and fit in the frame */
	if (tot < ihl || h + tot > end)
		return MOAT_PARSE_ERR_IP4;
	p->family = 4;
	p->saddr4 = moat_rd32(h + 12);
	p->daddr4 = moat_rd32(h + 16);
	if (moat_rd16(h + 6) & 0x1fff)
		return MOAT_PARSE_FRAGMENT;      /* not the first fragment */
	if (h[9] != MOAT_IPPROTO_TCP)
		return MOAT_PARSE_OTHER;
	lim = off + tot;
	/* a first fragment too short for TCP is a fragment, not an error */
	if ((moat_rd16(h + 6) & 0x2000) && tot < ihl + 20)
		return MOAT_PARSE_FRAGMENT;
	return moat_parse_tcp(data, end, off + ihl, lim, p);
}

/* moat_parse_ip6 - IPv6 header at off, extension headers, then TCP */
static __always_inline int moat_parse_ip6(const __u8 *data, const __u8 *end,
					  __u32 off, struct moat_pkt *p)
{
	const __u8 *h = data + off;
	__u32 nh, lim, i;

	if (h + 40 > end || (h[0] >> 4) != 6)
		return MOAT_PARSE_ERR_IP6;
	lim = off + 40 + moat_rd16(h + 4);
	if (h + 40 + moat_rd16(h + 4) > end)
		return MOAT_PARSE_ERR_IP6;
	p->family = 6;
	moat_copy16(p->saddr6, h + 8);
	moat_copy16(p->daddr6, h + 24);
	nh = h[6];
	off += 40;
	for (i = 0; i < MOAT_IP6_MAX_EXT + 1; i++) {
		const __u8 *x;
		__u32 len;

		if (nh == MOAT_IPPROTO_TCP)
			return moat_parse_tcp(data, end, off, lim, p);
		if (nh != 0 && nh != 43 && nh != 44 && nh != 51 && nh != 60)
			return MOAT_PARSE_OTHER;     /* ESP, UDP, ICMPv6, none... */
		if (i == MOAT_IP6_MAX_EXT)
			break;
		if (off > MOAT_HDR_MAX_OFF)
			return MOAT_PARSE_ERR_IP6_EXT;
		x = data + off;
		if (x + 8 > end || off + 8 > lim)
			return MOAT_PARSE_ERR_IP6;
		if (nh == 44) {                   /* fragment header */
			if (moat_rd16(x + 2) & 0xfff8)
				return MOAT_PARSE_FRAGMENT;
			len = 8;
		} else if (nh == 51) {            /* AH: 4-octet units */
			len = ((__u32)x[1] + 2) * 4;
		} else {
			len = ((__u32)x[1] + 1) * 8;
		}
		nh = x[0];
		off += len;
		if (off > lim)
			return MOAT_PARSE_ERR_IP6;
	}
	return MOAT_PARSE_ERR_IP6_EXT;
}

/*
 * moat_parse_general - parse the frame [data, end) into p, every case
 * (VLAN tags, IP options, IPv6 extension headers, fragments, errors).
 * Returns enum moat_parse_res; p's addresses are valid from the IP layer
 * on even when the result is not MOAT_PARSE_TCP (fragments), ports only
 * for TCP.  moat_parse() below is what callers use.
 */
static __always_inline int moat_parse_general(const void *data_,
					      const void *end_,
					      struct moat_pkt *p)
{
	const __u8 *data = (const __u8 *)data_;
	const __u8 *end = (const __u8 *)end_;
	__u32 off = 12, i;
	__u16 proto;

	p->nvlan = 0;
	p->family = 0;
	p->l3_off = 0;
	p->l4_off = 0;
	if (data + MOAT_ETH_HLEN > end)
		return MOAT_PARSE_ERR_ETH;
	proto = moat_rd16(data + 12);
	for (i = 0; i < MOAT_VLAN_MAX + 1; i++) {
		const __u8 *v;

		if (proto != MOAT_ETH_P_8021Q && proto != MOAT_ETH_P_8021AD)
			break;
		if (i == MOAT_VLAN_MAX)
			return MOAT_PARSE_ERR_VLAN_DEPTH;
		off += 4;
		v = data + off;
		if (v + 2 > end)
			return MOAT_PARSE_ERR_ETH;
		proto = moat_rd16(v);
		p->nvlan++;
	}
	off += 2;
	p->l3_off = (__u16)off;
	if (proto == MOAT_ETH_P_IP)
		return moat_parse_ip4(data, end, off, p);
	if (proto == MOAT_ETH_P_IPV6)
		return moat_parse_ip6(data, end, off, p);
	return MOAT_PARSE_OTHER;
}

/*
 * moat_parse_fast4 - the common frame with one bounds check: untagged
 * Ethernet, IPv4 without options, neither a fragment nor a first fragment
 * (MF and offset clear), TCP with a sane data offset, all within the
 * frame.  Returns 1 with p filled exactly as moat_parse_general() fills it
 * for such a frame (MOAT_PARSE_TCP), 0 for anything else, which then goes
 * the general way (so errors and odd frames are decided in one place).
 * Few, wide loads against byte-swapped constants: bytes 12..15 (EtherType,
 * version and IHL) and 20..23 (flags, fragment offset, protocol) are one
 * masked compare each.  20 <= doff and 20 + doff <= tot imply tot >= 40,
 * so that is not tested apart.  With MOAT_PARSE_SIMD the two compares are
 * one of bytes 12..27 against a template, and bytes 26..41 (addresses,
 * ports, sequence number) go into p with one byte shuffle and one store,
 * in struct moat_pkt's order, host byte order: the same fields, the same
 * values (unit test parse_simd runs test_parse.c over this variant).
 */
static __always_inline int moat_parse_fast4(const __u8 *data, const __u8 *end,
					    struct moat_pkt *p)
{
	const __u8 *h = data + MOAT_ETH_HLEN;
	const __u8 *t = h + 20;
	__u32 tot, doff, b;

	if (data + MOAT_ETH_HLEN + 40 > end)
		return 0;
#ifdef MOAT_PARSE_SIMD
	{
		/* bytes 12..27 as the two compares below: 08 00 45, then
		 * (flags & 0x3f) 00, TTL free, 06; the rest free */
		const __m128i m = _mm_setr_epi8(-1, -1, -1, 0, 0, 0, 0, 0,
						0x3f, -1, 0, -1, 0, 0, 0, 0);
		const __m128i want = _mm_setr_epi8(0x08, 0x00, 0x45, 0, 0, 0, 0, 0,
						   0, 0, 0, MOAT_IPPROTO_TCP, 0, 0, 0, 0);
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(data + 12));

		if (_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(a, m), want)) != 0xffff)
			return 0;
	}
#else
	/* 08 00 45 xx: IPv4, version 4, IHL 5 (the TOS byte is free) */
	if ((moat_ld32(data + 12) & moat_be32(0xffffff00u)) != moat_be32(0x08004500u))
		return 0;
	/* fragment flags and offset (DF free), TTL free, protocol TCP */
	if ((moat_ld32(h + 6) & moat_be32(0x3fff00ffu)) != moat_be32(MOAT_IPPROTO_TCP))
		return 0;
#endif
	b = t[12];
	if (b < 0x50)               /* data offset < 5 words */
		return 0;
	tot = moat_rd16(h + 2);
	doff = (b >> 2) & 0x3c;
	if (20 + doff > tot || h + tot > end)
		return 0;
#ifdef MOAT_PARSE_SIMD
	{
		/* bytes 26..41: saddr daddr sport dport seq, big-endian; into
		 * bytes 8..23 of p: sport dport seq saddr4 daddr4, host order */
		const __m128i shuf = _mm_setr_epi8(9, 8, 11, 10, 15, 14, 13, 12,
						   3, 2, 1, 0, 7, 6, 5, 4);
		__m128i f = _mm_loadu_si128((const __m128i *)(const void *)(h + 12));
		/* bytes 0..7: l3_off l4_off family nvlan tcp_flags pad */
		__u64 w = MOAT_ETH_HLEN | (__u64)(MOAT_ETH_HLEN + 20) << 16 |
			  (__u64)4 << 32 | (__u64)t[13] << 48;

		_Static_assert(__builtin_offsetof(struct moat_pkt, l4_off) == 2 &&
			       __builtin_offsetof(struct moat_pkt, family) == 4 &&
			       __builtin_offsetof(struct moat_pkt, nvlan) == 5 &&
			       __builtin_offsetof(struct moat_pkt, tcp_flags) == 6 &&
			       __builtin_offsetof(struct moat_pkt, sport) == 8 &&
			       __builtin_offsetof(struct moat_pkt, dport) == 10 &&
			       __builtin_offsetof(struct moat_pkt, seq) == 12 &&
			       __builtin_offsetof(struct moat_pkt, saddr4) == 16 &&
			       __builtin_offsetof(struct moat_pkt, daddr4) == 20,
			       "struct moat_pkt: the layout the shuffle writes");
		__builtin_memcpy(p, &w, 8);
		_mm_storeu_si128((__m128i *)(void *)((__u8 *)p + 8), _mm_shuffle_epi8(f, shuf));
		return 1;
	}
#else
	p->nvlan = 0;
	p->family = 4;
	p->l3_off = MOAT_ETH_HLEN;
	p->l4_off = MOAT_ETH_HLEN + 20;
	p->saddr4 = moat_rd32(h + 12);
	p->daddr4 = moat_rd32(h + 16);
	p->sport = moat_rd16(t);
	p->dport = moat_rd16(t + 2);
	p->seq = moat_rd32(t + 4);
	p->tcp_flags = t[13];
	return 1;
#endif
}

/*
 * moat_parse - parse the frame [data, end) into p: the fast case first,
 * then the general walk.  Same contract as moat_parse_general() (the unit
 * tests and the fuzzer check that both agree on every frame).
 */
static __always_inline int moat_parse(const void *data, const void *end,
				      struct moat_pkt *p)
{
	if (moat_parse_fast4((const __u8 *)data, (const __u8 *)end, p)) {
		MOAT_PKT_BARRIER();
		return MOAT_PARSE_TCP;
	}
	return moat_parse_general(data, end, p);
}

/* moat_csum_fold - fold a 32-bit one's-complement sum, complemented */
static __always_inline __u16 moat_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* moat_csum_words - one's-complement sum of n big-endian 16-bit words */
static __always_inline __u32 moat_csum_words(const __u8 *b, __u32 n)
{
	__u32 s = 0, i;

	for (i = 0; i < n; i++)
		s += (__u32)b[2 * i] << 8 | b[2 * i + 1];
	return s;
}

/* moat_siphash_round - one SipRound */
#define MOAT_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define MOAT_SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = MOAT_ROTL(v1, 13); v1 ^= v0; v0 = MOAT_ROTL(v0, 32); \
	v2 += v3; v3 = MOAT_ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = MOAT_ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = MOAT_ROTL(v1, 17); v1 ^= v2; v2 = MOAT_ROTL(v2, 32); \
	} while (0)

/* moat_siphash - SipHash-2-4 of n 64-bit words under a 128-bit key */
static __always_inline __u64 moat_siphash(const __u64 key[2], const __u64 *m,
					  __u32 n)
{
	__u64 v0 = 0x736f6d6570736575ull ^ key[0];
	__u64 v1 = 0x646f72616e646f6dull ^ key[1];
	__u64 v2 = 0x6c7967656e657261ull ^ key[0];
	__u64 v3 = 0x7465646279746573ull ^ key[1];
	__u64 b = (__u64)(n * 8) << 56;
	__u32 i;

	for (i = 0; i < n; i++) {
		v3 ^= m[i];
		MOAT_SIPROUND(v0, v1, v2, v3);
		MOAT_SIPROUND(v0, v1, v2, v3);
		v0 ^= m[i];
	}
	v3 ^= b;
	MOAT_SIPROUND(v0, v1, v2, v3);
	MOAT_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	MOAT_SIPROUND(v0, v1, v2, v3);
	MOAT_SIPROUND(v0, v1, v2, v3);
	MOAT_SIPROUND(v0, v1, v2, v3);
	MOAT_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/*
 * moat_tarpit_isn - the tarpit's initial sequence number: a keyed hash of
 * the 4-tuple, so a retransmitted SYN gets the same answer and nobody
 * without the key can predict it.
 */
static __always_inline __u32 moat_tarpit_isn(const __u64 key[2],
					     const struct moat_pkt *p)
{
	__u64 m[5];
	__u64 ports = (__u64)p->family << 32 | (__u32)p->sport << 16 | p->dport;

	if (p->family == 4) {
		m[0] = (__u64)p->saddr4 << 32 | p->daddr4;
		m[1] = ports;
		return (__u32)moat_siphash(key, m, 2);
	}
	__builtin_memcpy(&m[0], p->saddr6, 16);
	__builtin_memcpy(&m[2], p->daddr6, 16);
	m[4] = ports;
	return (__u32)moat_siphash(key, m, 5);
}

/* Reply headers, built on the stack then copied into the frame: the
 * tarpit's TCP header is 20 bytes, a SYN cookie's 24 (an MSS option). */
struct moat_tp4 {
	__u8 ip[20];
	__u8 tcp[20];
};

struct moat_tp6 {
	__u8 ip[40];
	__u8 tcp[20];
};

struct moat_ck4 {
	__u8 ip[20];
	__u8 tcp[24];
};

struct moat_ck6 {
	__u8 ip[40];
	__u8 tcp[24];
};

/* moat_wr16 - store a big-endian 16-bit field */
static __always_inline void moat_wr16(__u8 *b, __u16 v)
{
	b[0] = (__u8)(v >> 8);
	b[1] = (__u8)v;
}

/* moat_wr32 - store a big-endian 32-bit field */
static __always_inline void moat_wr32(__u8 *b, __u32 v)
{
	b[0] = (__u8)(v >> 24);
	b[1] = (__u8)(v >> 16);
	b[2] = (__u8)(v >> 8);
	b[3] = (__u8)v;
}

/* moat_synack_tcp - the SYN-ACK's TCP header, checksum left zero: tcplen
 * 20 (no option) or 24 (the MSS option mss) */
static __always_inline void moat_synack_tcp(__u8 *t, const struct moat_pkt *p,
					    __u32 isn, __u16 win, __u32 tcplen,
					    __u16 mss)
{
	moat_wr16(t, p->dport);
	moat_wr16(t + 2, p->sport);
	moat_wr32(t + 4, isn);
	moat_wr32(t + 8, p->seq + 1);
	t[12] = (__u8)((tcplen / 4) << 4);
	t[13] = MOAT_TCP_SYN | MOAT_TCP_ACK;
	moat_wr16(t + 14, win);
	moat_wr16(t + 16, 0);
	moat_wr16(t + 18, 0);
	if (tcplen == 24) {
		t[20] = 2;                    /* kind MSS, length 4 */
		t[21] = 4;
		moat_wr16(t + 22, mss);
	}
}

/*
 * MOAT_SYNACK_BUILD4/6 - moat_synack_frame's reply for one struct R
 * (moat_tp4/6, moat_ck4/6; the TCP header is sizeof(r.tcp) long): IP
 * header, TCP header, checksums, copy into the frame at h.  A macro so every size is a constant (BPF copies with
 * constant lengths only).
 */
#define MOAT_SYNACK_BUILD4(R, h, end, p, isn, win, mss) do { \
	R r; \
	__u32 s_; \
	if ((h) + sizeof(r) > (end)) \
		return -1; \
	__builtin_memset(&r, 0, sizeof(r)); \
	r.ip[0] = 0x45; \
	moat_wr16(r.ip + 2, sizeof(r)); \
	moat_wr16(r.ip + 6, 0x4000);          /* DF */ \
	r.ip[8] = 64; \
	r.ip[9] = MOAT_IPPROTO_TCP; \
	moat_wr32(r.ip + 12, (p)->daddr4); \
	moat_wr32(r.ip + 16, (p)->saddr4); \
	moat_wr16(r.ip + 10, moat_csum_fold(moat_csum_words(r.ip, 10))); \
	moat_synack_tcp(r.tcp, (p), (isn), (win), sizeof(r.tcp), (mss)); \
	/* pseudo header: addresses, protocol, TCP length */ \
	s_ = moat_csum_words(r.ip + 12, 4) + MOAT_IPPROTO_TCP + sizeof(r.tcp) + \
	     moat_csum_words(r.tcp, sizeof(r.tcp) / 2); \
	moat_wr16(r.tcp + 16, moat_csum_fold(s_)); \
	__builtin_memcpy((h), &r, sizeof(r)); \
} while (0)

#define MOAT_SYNACK_BUILD6(R, h, end, p, isn, win, mss) do { \
	R r; \
	__u32 s_; \
	if ((h) + sizeof(r) > (end)) \
		return -1; \
	__builtin_memset(&r, 0, sizeof(r)); \
	r.ip[0] = 0x60; \
	moat_wr16(r.ip + 4, sizeof(r.tcp)); \
	r.ip[6] = MOAT_IPPROTO_TCP; \
	r.ip[7] = 64; \
	__builtin_memcpy(r.ip + 8, (p)->daddr6, 16); \
	__builtin_memcpy(r.ip + 24, (p)->saddr6, 16); \
	moat_synack_tcp(r.tcp, (p), (isn), (win), sizeof(r.tcp), (mss)); \
	s_ = moat_csum_words(r.ip + 8, 16) + MOAT_IPPROTO_TCP + sizeof(r.tcp) + \
	     moat_csum_words(r.tcp, sizeof(r.tcp) / 2); \
	moat_wr16(r.tcp + 16, moat_csum_fold(s_)); \
	__builtin_memcpy((h), &r, sizeof(r)); \
} while (0)

/* moat_swap_mac - Ethernet: back to where it came from (VLAN tags stay) */
static __always_inline void moat_swap_mac(__u8 *data)
{
	__u8 mac[6];

	__builtin_memcpy(mac, data, 6);
	__builtin_memcpy(data, data + 6, 6);
	__builtin_memcpy(data + 6, mac, 6);
}

/* moat_synack_frame - the body of moat_tarpit_build and moat_cookie_build:
 * with_mss (a constant at each call) picks the reply's shape, 20-byte TCP
 * header (tarpit) or 24 with the MSS option (SYN cookie) */
static __always_inline int moat_synack_frame(void *data_, const void *end_,
					     const struct moat_pkt *p, __u32 isn,
					     __u16 win, __u16 mss, const int with_mss)
{
	__u8 *data = (__u8 *)data_;
	const __u8 *end = (const __u8 *)end_;
	__u32 l3 = p->l3_off;
	__u8 *h;

	if (l3 > MOAT_ETH_HLEN + 4 * MOAT_VLAN_MAX || data + MOAT_ETH_HLEN > end)
		return -1;
	h = data + l3;
	if (p->family == 4 && with_mss)
		MOAT_SYNACK_BUILD4(struct moat_ck4, h, end, p, isn, win, mss);
	else if (p->family == 4)
		MOAT_SYNACK_BUILD4(struct moat_tp4, h, end, p, isn, win, mss);
	else if (with_mss)
		MOAT_SYNACK_BUILD6(struct moat_ck6, h, end, p, isn, win, mss);
	else
		MOAT_SYNACK_BUILD6(struct moat_tp6, h, end, p, isn, win, mss);
	moat_swap_mac(data);
	if (with_mss)
		return (int)(l3 + (p->family == 4 ? sizeof(struct moat_ck4)
						  : sizeof(struct moat_ck6)));
	return (int)(l3 + (p->family == 4 ? sizeof(struct moat_tp4)
					  : sizeof(struct moat_tp6)));
}

/*
 * moat_tarpit_build - rewrite the parsed SYN in [data, end) into its tarpit
 * SYN-ACK.  Returns the new frame length (the caller trims the frame to
 * it), or -1 when the frame is too short to hold the reply (cannot happen
 * for a frame moat_parse() accepted as TCP, checked again for the verifier).
 */
static __always_inline int moat_tarpit_build(void *data_, const void *end_,
					     const struct moat_pkt *p, __u32 isn)
{
	return moat_synack_frame(data_, end_, p, isn, 0, 0, 0);
}

/* moat_cookie_len - the length of p's SYN-cookie SYN-ACK frame */
static __always_inline __u32 moat_cookie_len(const struct moat_pkt *p)
{
	return p->l3_off + (p->family == 4 ? sizeof(struct moat_ck4)
					   : sizeof(struct moat_ck6));
}

/*
 * moat_cookie_layout - may the parsed SYN p in [data, end) be answered
 * with a SYN cookie from the fast path (moat_cookie_build)?  Only the
 * plain layouts: VLAN tags (kept in the answer, as the tarpit's) over
 * IPv4 without options, not a fragment, or IPv6 without extension
 * headers.  The rest is the kernel's to answer: IPv4 options (it echoes
 * them reversed in its SYN-ACK, refuses source routes by
 * accept_source_route, drops malformed ones), IPv6 extension headers
 * (options it must process, a routing header not done, a fragment
 * header, AH under IPsec policy), and an IPv4 first fragment (MF set: the
 * SYN is whole only once reassembled).  Such SYNs are rare and the
 * kernel, with tcp_syncookies = 2, answers them with its own cookies.
 */
static __always_inline int moat_cookie_layout(const void *data_, const void *end_,
					      const struct moat_pkt *p)
{
	const __u8 *data = (const __u8 *)data_;
	const __u8 *end = (const __u8 *)end_;
	__u32 l3 = p->l3_off;
	const __u8 *h;

	if (l3 > MOAT_ETH_HLEN + 4 * MOAT_VLAN_MAX)
		return 0;
	if (p->family == 6)
		return p->l4_off == l3 + 40;
	h = data + l3;
	if (h + 20 > end)
		return 0;
	return p->l4_off == l3 + 20 && !(h[6] & 0x20);   /* MF */
}

/*
 * moat_cookie_build - write the SYN-ACK of a SYN cookie for the parsed SYN
 * p into the frame [data, end), which the caller has made
 * moat_cookie_len(p) long first (the reply can be longer than a SYN
 * without options): ISN isn (the cookie), window win, an MSS option mss
 * and no other (no timestamps: the kernel then takes the cookie ACK
 * without window scaling and SACK, see docs/xdp.md).  Returns the frame
 * length, or -1 when the frame is too short.
 */
static __always_inline int moat_cookie_build(void *data_, const void *end_,
					     const struct moat_pkt *p, __u32 isn,
					     __u16 win, __u16 mss)
{
	return moat_synack_frame(data_, end_, p, isn, win, mss, 1);
}

#endif /* MOAT_PARSE_H */
