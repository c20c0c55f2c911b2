/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xdp_frames.h - test frames for the fast path: a small builder for
 * Ethernet / VLAN / IPv4 (options) / IPv6 (extension headers) / TCP or UDP
 * frames with correct lengths and checksums, the shared case table (unit
 * tests of the userspace parser and of parse + lookup + verdict built for
 * userspace, BPF_PROG_TEST_RUN test of the XDP program, fuzz seeds) with
 * backend-neutral verdicts (enum moat_verdict), and an independent checker
 * for tarpit replies.
 *
 * The verdict table every test publishes (tests_table_updates()):
 *   192.0.2.10 DROP  192.0.2.11 TARPIT  192.0.2.12 ALLOW  (one group)
 *   198.51.100.0/24 TARPIT  203.0.113.0/24 DROP  (tbl24 entries)
 *   2001:db8:100::/48 TARPIT, 2001:db8:100:1::/64 DROP,
 *   2001:db8:100:1::5/128 PASS (carved out), 2001:db8:200::1/128 ALLOW
 */
#ifndef MOAT_TEST_XDP_FRAMES_H
#define MOAT_TEST_XDP_FRAMES_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "moat_abi.h"
#include "moat_parse.h"

#define TF_MAX 1600

struct tframe {
	int family;          /* 4 or 6 */
	int nvlan;           /* 0..3 tags: first 802.1ad when 2+, then 802.1Q */
	const char *src, *dst;
	uint16_t sport, dport;
	uint8_t flags;       /* TCP flags */
	uint32_t seq;
	uint8_t proto;       /* 0 = TCP */
	int ip4_opts;        /* bytes of IPv4 options (multiple of 4) */
	const uint8_t *ext;  /* IPv6 extension header types, 0xff-terminated */
	uint16_t frag;       /* IPv4 flags+offset field / IPv6 frag off+M */
	int tcp_opts;        /* bytes of TCP options (multiple of 4) */
	int payload;
	int doff_override;   /* nonzero: TCP data offset field (words) */
	int ihl_override;    /* nonzero: IPv4 IHL field */
	int totlen_delta;    /* added to IPv4 total / IPv6 payload length */
};

/* tf_sum - one's-complement sum of a byte range (odd length padded) */
static inline uint32_t tf_sum(const uint8_t *b, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

/* tf_fold - folded complemented checksum */
static inline uint16_t tf_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* tf_build - write the frame into buf; returns its length */
static inline size_t tf_build(const struct tframe *t, uint8_t *buf)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const uint8_t smac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	uint8_t proto = t->proto ? t->proto : 6;
	size_t off = 12, l3, l4, l4len, n_ext = 0;
	int tcp = proto == 6;

	memset(buf, 0, TF_MAX);
	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	for (int i = 0; i < t->nvlan; i++) {
		uint16_t tpid = (t->nvlan >= 2 && i == 0) ? 0x88a8 : 0x8100;

		buf[off] = tpid >> 8;
		buf[off + 1] = tpid & 0xff;
		buf[off + 2] = 0x00;
		buf[off + 3] = (uint8_t)(100 + i); /* VLAN id */
		off += 4;
	}
	buf[off] = t->family == 4 ? 0x08 : 0x86;
	buf[off + 1] = t->family == 4 ? 0x00 : 0xdd;
	l3 = off + 2;
	l4len = (tcp ? 20 + t->tcp_opts : 8) + t->payload;
	if (t->family == 4) {
		size_t ihl = 20 + t->ip4_opts;
		uint8_t *h = buf + l3;
		uint16_t tot = (uint16_t)(ihl + l4len + t->totlen_delta);

		h[0] = (uint8_t)(0x40 | (t->ihl_override ? t->ihl_override : (int)(ihl / 4)));
		h[2] = tot >> 8;
		h[3] = tot & 0xff;
		h[6] = t->frag >> 8;
		h[7] = t->frag & 0xff;
		h[8] = 64;
		h[9] = proto;
		inet_pton(AF_INET, t->src, h + 12);
		inet_pton(AF_INET, t->dst, h + 16);
		for (int i = 0; i < t->ip4_opts; i++)
			h[20 + i] = 1; /* NOP options */
		uint16_t c = tf_fold(tf_sum(h, ihl));
		h[10] = c >> 8;
		h[11] = c & 0xff;
		l4 = l3 + ihl;
	} else {
		uint8_t *h = buf + l3;
		size_t x = l3 + 40;
		uint8_t *prev = h + 6;

		h[0] = 0x60;
		h[7] = 64;
		inet_pton(AF_INET6, t->src, h + 8);
		inet_pton(AF_INET6, t->dst, h + 24);
		for (const uint8_t *e = t->ext; e && *e != 0xff; e++) {
			uint8_t *xh = buf + x;

			*prev = *e;
			prev = xh;
			if (*e == 44) {
				xh[2] = t->frag >> 8;
				xh[3] = t->frag & 0xff;
				x += 8;
			} else if (*e == 51) {
				xh[1] = 2;          /* (2+2)*4 = 16 bytes */
				x += 16;
			} else {
				xh[1] = 1;          /* (1+1)*8 = 16 bytes */
				xh[2] = 1;          /* PadN */
				xh[3] = 12;
				x += 16;
			}
			n_ext++;
		}
		*prev = proto;
		l4 = x;
		uint16_t pl = (uint16_t)(l4 - l3 - 40 + l4len + t->totlen_delta);
		h[4] = pl >> 8;
		h[5] = pl & 0xff;
	}
	(void)n_ext;
	uint8_t *th = buf + l4;
	th[0] = t->sport >> 8;
	th[1] = t->sport & 0xff;
	th[2] = t->dport >> 8;
	th[3] = t->dport & 0xff;
	if (tcp) {
		int doff = t->doff_override ? t->doff_override : (20 + t->tcp_opts) / 4;

		th[4] = t->seq >> 24;
		th[5] = (t->seq >> 16) & 0xff;
		th[6] = (t->seq >> 8) & 0xff;
		th[7] = t->seq & 0xff;
		th[12] = (uint8_t)(doff << 4);
		th[13] = t->flags;
		th[14] = 0xff;             /* window 65535 */
		th[15] = 0xff;
		for (int i = 0; i < t->tcp_opts; i++)
			th[20 + i] = 1;
	} else {
		th[4] = (uint8_t)(l4len >> 8);
		th[5] = (uint8_t)l4len;
	}
	return l4 + l4len;
}

/* One case: a frame and what each layer must make of it. */
struct tcase {
	const char *name;
	struct tframe f;
	int want_parse;      /* enum moat_parse_res */
	int want_verdict;    /* enum moat_verdict, the same from every backend */
	int want_stat;       /* enum moat_stat bumped by one */
};

#define TF_SYN MOAT_TCP_SYN
#define TF_ACK MOAT_TCP_ACK
#define TF_FIN MOAT_TCP_FIN
#define TF_RST MOAT_TCP_RST

static const uint8_t ext_hop_dst[] = { 0, 60, 0xff };
static const uint8_t ext_routing[] = { 43, 0xff };
static const uint8_t ext_frag0[] = { 44, 0xff };
static const uint8_t ext_ah[] = { 0, 51, 0xff };
static const uint8_t ext_six[] = { 0, 60, 43, 60, 51, 60, 0xff };
static const uint8_t ext_seven[] = { 0, 60, 43, 60, 51, 60, 60, 0xff };

#define V4P(s, fl, port) .family = 4, .src = s, .dst = "198.18.1.1", \
	.sport = 40000, .dport = port, .flags = fl, .seq = 1000
#define V6P(s, fl, port) .family = 6, .src = s, .dst = "2001:db8:1::1", \
	.sport = 40000, .dport = port, .flags = fl, .seq = 1000
#define V4(s, fl) V4P(s, fl, 25)
#define V6(s, fl) V6P(s, fl, 25)

static const struct tcase tcases[] = {
	/* verdicts, IPv4 */
	{ "v4 unlisted SYN", { V4("192.0.2.13", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
	{ "v4 /32 DROP SYN", { V4("192.0.2.10", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v4 /32 TARPIT SYN", { V4("192.0.2.11", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "v4 /32 ALLOW SYN", { V4("192.0.2.12", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ALLOW },
	{ "v4 /24 TARPIT SYN", { V4("198.51.100.77", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "v4 /24 DROP SYN", { V4("203.0.113.5", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v4 unlisted outside every entry", { V4("10.1.2.3", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
	{ "v4 DROP source, ACK segment passes", { V4("192.0.2.10", TF_ACK) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_NON_SYN },
	{ "v4 TARPIT source, ACK segment dropped", { V4("192.0.2.11", TF_ACK) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_TARPIT_SILENCE },
	{ "v4 TARPIT source, data segment dropped", { V4("198.51.100.9", TF_ACK | 0x08), .payload = 100 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_TARPIT_SILENCE },
	{ "v4 TARPIT source, SYN-ACK dropped", { V4("198.51.100.9", TF_SYN | TF_ACK) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_TARPIT_SILENCE },
	{ "v4 unlisted ACK", { V4("192.0.2.13", TF_ACK) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_NON_SYN },
	{ "v4 DROP source to port 80", { V4P("192.0.2.10", TF_SYN, 80) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_NOT_SMTP },
	{ "v4 DROP source to port 587 (off by default)", { V4P("192.0.2.10", TF_SYN, 587) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_NOT_SMTP },
	{ "v4 DROP source, UDP to 25", { V4("192.0.2.10", 0), .proto = 17 }, MOAT_PARSE_OTHER, MOAT_VERDICT_PASS, MOAT_STAT_NOT_SMTP },
	{ "v4 IP options, DROP SYN", { V4("192.0.2.10", TF_SYN), .ip4_opts = 40 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v4 IP options, TARPIT SYN", { V4("192.0.2.11", TF_SYN), .ip4_opts = 12, .tcp_opts = 20 }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "v4 TCP options, DROP SYN", { V4("192.0.2.10", TF_SYN), .tcp_opts = 40 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	/* VLAN */
	{ "802.1Q DROP SYN", { V4("192.0.2.10", TF_SYN), .nvlan = 1 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "QinQ DROP SYN", { V4("192.0.2.10", TF_SYN), .nvlan = 2 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "QinQ TARPIT SYN", { V4("192.0.2.11", TF_SYN), .nvlan = 2 }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "802.1Q v6 TARPIT SYN", { V6("2001:db8:100:7::1", TF_SYN), .nvlan = 1 }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "three VLAN tags", { V4("192.0.2.10", TF_SYN), .nvlan = 3 }, MOAT_PARSE_ERR_VLAN_DEPTH, MOAT_VERDICT_PASS, MOAT_STAT_ERR_VLAN_DEPTH },
	/* IPv6 */
	{ "v6 unlisted SYN", { V6("2001:db8:300::1", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
	{ "v6 /48 TARPIT SYN", { V6("2001:db8:100:2::9", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "v6 /64 DROP beats /48 TARPIT", { V6("2001:db8:100:1::9", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v6 /128 PASS carved out of /64 DROP", { V6("2001:db8:100:1::5", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_PASS },
	{ "v6 /128 ALLOW", { V6("2001:db8:200::1", TF_SYN) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ALLOW },
	{ "v6 TARPIT source, ACK dropped", { V6("2001:db8:100:2::9", TF_ACK) }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_TARPIT_SILENCE },
	{ "v6 hop-by-hop + dstopts, DROP SYN", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_hop_dst }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v6 routing header, TARPIT SYN", { V6("2001:db8:100:2::9", TF_SYN), .ext = ext_routing }, MOAT_PARSE_TCP, MOAT_VERDICT_TX, MOAT_STAT_TARPIT },
	{ "v6 AH, DROP SYN", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_ah }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v6 first fragment (offset 0), DROP SYN", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_frag0, .frag = 1 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v6 six extension headers, DROP SYN", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_six }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v6 seven extension headers", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_seven }, MOAT_PARSE_ERR_IP6_EXT, MOAT_VERDICT_PASS, MOAT_STAT_ERR_IP6_EXT },
	{ "v6 DROP source to port 465", { V6P("2001:db8:100:1::9", TF_SYN, 465) }, MOAT_PARSE_TCP, MOAT_VERDICT_PASS, MOAT_STAT_NOT_SMTP },
	{ "v6 UDP", { V6("2001:db8:100:1::9", 0), .proto = 17 }, MOAT_PARSE_OTHER, MOAT_VERDICT_PASS, MOAT_STAT_NOT_SMTP },
	/* fragments */
	{ "v4 non-first fragment", { V4("192.0.2.10", TF_SYN), .frag = 0x0010 }, MOAT_PARSE_FRAGMENT, MOAT_VERDICT_PASS, MOAT_STAT_FRAGMENT },
	{ "v4 first fragment with TCP header, DROP SYN", { V4("192.0.2.10", TF_SYN), .frag = 0x2000 }, MOAT_PARSE_TCP, MOAT_VERDICT_DROP, MOAT_STAT_DROP },
	{ "v4 first fragment shorter than TCP", { V4("192.0.2.10", TF_SYN), .frag = 0x2000, .totlen_delta = -12 }, MOAT_PARSE_FRAGMENT, MOAT_VERDICT_PASS, MOAT_STAT_FRAGMENT },
	{ "v6 non-first fragment", { V6("2001:db8:100:1::9", TF_SYN), .ext = ext_frag0, .frag = 0x0100 }, MOAT_PARSE_FRAGMENT, MOAT_VERDICT_PASS, MOAT_STAT_FRAGMENT },
	/* malformed */
	{ "v4 IHL 4", { V4("192.0.2.10", TF_SYN), .ihl_override = 4 }, MOAT_PARSE_ERR_IP4, MOAT_VERDICT_PASS, MOAT_STAT_ERR_IP4 },
	{ "v4 IHL 15 beyond total length", { V4("192.0.2.10", TF_SYN), .ihl_override = 15 }, MOAT_PARSE_ERR_IP4, MOAT_VERDICT_PASS, MOAT_STAT_ERR_IP4 },
	{ "v4 total length past the frame", { V4("192.0.2.10", TF_SYN), .totlen_delta = 8 }, MOAT_PARSE_ERR_IP4, MOAT_VERDICT_PASS, MOAT_STAT_ERR_IP4 },
	{ "v4 total length cuts TCP header", { V4("192.0.2.10", TF_SYN), .totlen_delta = -8 }, MOAT_PARSE_ERR_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ERR_TCP },
	{ "TCP data offset 4", { V4("192.0.2.10", TF_SYN), .doff_override = 4 }, MOAT_PARSE_ERR_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ERR_TCP },
	{ "TCP data offset 15 past the segment", { V4("192.0.2.10", TF_SYN), .doff_override = 15 }, MOAT_PARSE_ERR_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ERR_TCP },
	{ "v6 payload length past the frame", { V6("2001:db8:100:1::9", TF_SYN), .totlen_delta = 4 }, MOAT_PARSE_ERR_IP6, MOAT_VERDICT_PASS, MOAT_STAT_ERR_IP6 },
	{ "v6 data offset 2", { V6("2001:db8:100:1::9", TF_SYN), .doff_override = 2 }, MOAT_PARSE_ERR_TCP, MOAT_VERDICT_PASS, MOAT_STAT_ERR_TCP },
};

#define N_TCASES (sizeof(tcases) / sizeof(tcases[0]))

/* Frames the truncation sweep cuts at every length below their own. */
static const struct tframe tcut_frames[] = {
	{ V4("192.0.2.10", TF_SYN), .ip4_opts = 8 },
	{ V4("192.0.2.10", TF_SYN), .nvlan = 2 },
	{ V6("2001:db8:100:1::9", TF_SYN), .ext = ext_hop_dst, .nvlan = 1 },
};

#define N_TCUT (sizeof(tcut_frames) / sizeof(tcut_frames[0]))

/* tcut_want - the parse outcome of frame f (l3 at l3off) cut to len bytes */
static inline int tcut_want(const struct tframe *f, size_t l3off, size_t len)
{
	if (len < l3off)
		return MOAT_PARSE_ERR_ETH;
	return f->family == 4 ? MOAT_PARSE_ERR_IP4 : MOAT_PARSE_ERR_IP6;
}

/* tf_l3off - where the IP header of f starts */
static inline size_t tf_l3off(const struct tframe *f)
{
	return 14 + 4 * (size_t)f->nvlan;
}

/* The verdict table above as a publish sequence (groups before tbl24). */
static inline size_t tests_table_updates(struct moat_update *u)
{
	size_t n = 0;
	struct moat_v6_plens pl = { 3, { 128, 64, 48 } };

	memset(u, 0, 16 * sizeof(*u));
	u[n].kind = MOAT_UPD_GROUP;
	u[n].index = 3;
	moat_group_set(&u[n].u.group, 10, MOAT_ACT_DROP);
	moat_group_set(&u[n].u.group, 11, MOAT_ACT_TARPIT);
	moat_group_set(&u[n].u.group, 12, MOAT_ACT_ALLOW);
	n++;
	u[n].kind = MOAT_UPD_TBL24;
	u[n].index = 0xc00002;               /* 192.0.2.0/24 */
	u[n].value = moat_tbl24_make_group(3);
	n++;
	u[n].kind = MOAT_UPD_TBL24;
	u[n].index = 0xc63364;               /* 198.51.100.0/24 */
	u[n].value = MOAT_ACT_TARPIT;
	n++;
	u[n].kind = MOAT_UPD_TBL24;
	u[n].index = 0xcb0071;               /* 203.0.113.0/24 */
	u[n].value = MOAT_ACT_DROP;
	n++;
	u[n].kind = MOAT_UPD_V6_PLENS;
	u[n].u.plens = pl;
	n++;
	static const struct { const char *a; unsigned plen, act; } v6[] = {
		{ "2001:db8:100:1::5", 128, MOAT_ACT_PASS },
		{ "2001:db8:200::1", 128, MOAT_ACT_ALLOW },
		{ "2001:db8:100:1::", 64, MOAT_ACT_DROP },
		{ "2001:db8:100::", 48, MOAT_ACT_TARPIT },
	};
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		u[n].kind = MOAT_UPD_V6_PUT;
		u[n].u.key.plen = v6[i].plen;
		inet_pton(AF_INET6, v6[i].a, u[n].u.key.addr);
		u[n].value = v6[i].act;
		n++;
	}
	return n;
}

/*
 * tf_check_tarpit - check a tarpit reply against the SYN it answers, with
 * checksums recomputed here independently of moat_parse.h.  Returns NULL
 * or a message (static buffer).
 */
static inline const char *tf_check_tarpit(const uint8_t *syn, size_t synlen,
					  const uint8_t *r, size_t rlen,
					  uint32_t *isn_out)
{
	static char msg[160];
	struct moat_pkt a, b;

	if (moat_parse(syn, syn + synlen, &a) != MOAT_PARSE_TCP)
		return "SYN does not parse";
	if (moat_parse(r, r + rlen, &b) != MOAT_PARSE_TCP)
		return "reply does not parse as TCP";
	if (memcmp(r, syn + 6, 6) || memcmp(r + 6, syn, 6))
		return "MAC addresses not swapped";
	if (a.l3_off != b.l3_off || memcmp(r + 12, syn + 12, a.l3_off - 12))
		return "VLAN tags / ethertype not preserved";
	size_t want = b.l3_off + (a.family == 4 ? 40 : 60);
	if (rlen != want) {
		snprintf(msg, sizeof(msg), "reply length %zu, want %zu", rlen, want);
		return msg;
	}
	const uint8_t *ip = r + b.l3_off, *tcp = r + b.l4_off;
	uint32_t ps;
	if (a.family == 4) {
		if (b.saddr4 != a.daddr4 || b.daddr4 != a.saddr4)
			return "IPv4 addresses not swapped";
		if (tf_fold(tf_sum(ip, 20)) != 0)
			return "IPv4 header checksum wrong";
		if (ip[0] != 0x45 || ip[9] != 6)
			return "IPv4 header not minimal TCP";
		ps = tf_sum(ip + 12, 8) + 6 + 20;
	} else {
		if (memcmp(b.saddr6, a.daddr6, 16) || memcmp(b.daddr6, a.saddr6, 16))
			return "IPv6 addresses not swapped";
		if (ip[6] != 6 || ip[4] != 0 || ip[5] != 20)
			return "IPv6 next header / payload length wrong";
		ps = tf_sum(ip + 8, 32) + 6 + 20;
	}
	if (tf_fold(ps + tf_sum(tcp, 20)) != 0)
		return "TCP checksum wrong";
	if (b.sport != a.dport || b.dport != a.sport)
		return "ports not swapped";
	if (b.tcp_flags != (MOAT_TCP_SYN | MOAT_TCP_ACK))
		return "flags are not SYN|ACK";
	if (tcp[14] || tcp[15])
		return "window is not 0";
	if (moat_rd32(tcp + 8) != a.seq + 1)
		return "ack is not seq + 1";
	if ((tcp[12] >> 4) != 5)
		return "TCP header carries options";
	if (isn_out)
		*isn_out = b.seq;
	return NULL;
}

/*
 * tf_check_stats - counters a (before) and b (after one frame): exactly
 * counter want moved, by one (event_lost aside: its budget is timing).
 * NULL or a message (static buffer) naming the first counter that did not.
 */
static inline const char *tf_check_stats(const uint64_t *a, const uint64_t *b, int want)
{
	static const char *const names[] = MOAT_STAT_NAMES;
	static char msg[120];

	for (int s = 0; s < MOAT_STAT__MAX; s++) {
		uint64_t d = b[s] - a[s], w = s == want;

		if (s != MOAT_STAT_EVENT_LOST && d != w) {
			snprintf(msg, sizeof(msg), "counter %s moved by %llu, want %llu", names[s],
				 (unsigned long long)d, (unsigned long long)w);
			return msg;
		}
	}
	return NULL;
}

/*
 * tf_check_case_out - what a backend made of case frame in (len bytes) with
 * verdict v, out (outlen bytes) being the frame afterwards: a TX must be a
 * correct tarpit reply whose ISN is the keyed hash of key, a PASS must
 * leave the frame as it was.  NULL or a message (static buffer).
 */
static inline const char *tf_check_case_out(int v, const uint8_t *in, size_t len,
					    const uint8_t *out, size_t outlen,
					    const __u64 key[2])
{
	static char msg[200];
	struct moat_pkt p = { 0 }; /* the parser fills what the family uses */
	uint32_t isn = 0;
	const char *err;

	if (v == MOAT_VERDICT_PASS && (outlen != len || memcmp(in, out, len)))
		return "passed frame was modified";
	if (v != MOAT_VERDICT_TX)
		return NULL;
	err = tf_check_tarpit(in, len, out, outlen, &isn);
	if (err) {
		snprintf(msg, sizeof(msg), "tarpit reply: %s", err);
		return msg;
	}
	if (moat_parse(in, in + len, &p) != MOAT_PARSE_TCP)
		return "SYN does not parse";
	if (isn != moat_tarpit_isn(key, &p)) {
		snprintf(msg, sizeof(msg), "ISN %u is not the keyed hash", isn);
		return msg;
	}
	return NULL;
}

/*
 * tf_check_case - everything a backend's run of case tc must show: got
 * is the verdict it gave the frame in (len bytes), a/b its counters
 * before and after, out (outlen bytes) the frame afterwards.  NULL or the
 * first thing wrong (static buffer).
 */
static inline const char *tf_check_case(const struct tcase *tc, int got, const uint64_t *a,
					const uint64_t *b, const uint8_t *in, size_t len,
					const uint8_t *out, size_t outlen, const __u64 key[2])
{
	static char msg[80];
	const char *err;

	if (got != tc->want_verdict) {
		snprintf(msg, sizeof(msg), "verdict got %d, want %d", got, tc->want_verdict);
		return msg;
	}
	err = tf_check_stats(a, b, tc->want_stat);
	return err ? err : tf_check_case_out(got, in, len, out, outlen, key);
}

#endif /* MOAT_TEST_XDP_FRAMES_H */
