// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pktgen_rx.bpf.c - the generator side of moat-pktgen (tools/moat-pktgen.c).
 *
 * moat_pktgen_xdp: on veth, frames the appliance sends with XDP_TX (tarpit
 * and SYN-cookie SYN-ACKs) reach this side only when an XDP program runs
 * here; moat-pktgen attaches this one when the interface has none.  It
 * passes everything, or with xdp_drop_replies (moat-pktgen --no-rx, fire
 * and forget) drops the replies to probes (the test of moat_pktgen_tc) at
 * once: no skb, no packet tap, no tc, none of the generator's kernel, as a
 * spoofing attacker never receives them.
 *
 * moat_pktgen_tc: tc ingress.  Drops the appliance's replies to probes
 * (TCP from the target port to a port of the probe range) after the packet
 * socket taps saw them: in __netif_receive_skb_core the AF_PACKET taps
 * (ptype_all) run before tc ingress, while XDP runs before both.  So
 * moat-pktgen's RX ring gets every reply and the generator's kernel none:
 * it sends no RST to the appliance for a SYN-ACK it never asked for.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* set by moat-pktgen before load */
const volatile __u16 target_port = 25;
const volatile __u16 sport_lo = 1024; /* probe source ports [lo, hi] */
const volatile __u16 sport_hi = 32767;
const volatile __u8 xdp_drop_replies = 0;

SEC("xdp")
int moat_pktgen_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data, *t;
	__u32 l4;
	__u16 sp, dp;

	if (!xdp_drop_replies)
		return XDP_PASS;
	/* untagged IPv4 or IPv6, TCP (what the appliance sends back) */
	if (data + 14 + 40 > end)
		return XDP_PASS;
	if (p[12] == 0x08 && p[13] == 0x00) {
		if (p[14 + 9] != 6)
			return XDP_PASS;
		l4 = 14 + (p[14] & 0xf) * 4;
	} else if (p[12] == 0x86 && p[13] == 0xdd) {
		if (p[14 + 6] != 6)
			return XDP_PASS;
		l4 = 14 + 40;
	} else {
		return XDP_PASS;
	}
	if (l4 > 14 + 60)
		return XDP_PASS;
	t = p + l4;
	if ((void *)(t + 4) > end)
		return XDP_PASS;
	sp = (__u16)(t[0] << 8 | t[1]);
	dp = (__u16)(t[2] << 8 | t[3]);
	if (sp != target_port || dp < sport_lo || dp > sport_hi)
		return XDP_PASS;
	return XDP_DROP;
}

SEC("tc")
int moat_pktgen_tc(struct __sk_buff *skb)
{
	__u32 off = 12, l4;
	__u16 proto, ports[2];
	__u8 b[2];

	if (bpf_skb_load_bytes(skb, off, &proto, 2))
		return TC_ACT_OK;
	if (proto == bpf_htons(0x8100) || proto == bpf_htons(0x88a8)) {
		off += 4;
		if (bpf_skb_load_bytes(skb, off, &proto, 2))
			return TC_ACT_OK;
	}
	off += 2;
	if (proto == bpf_htons(0x0800)) {
		if (bpf_skb_load_bytes(skb, off, b, 1))
			return TC_ACT_OK;
		if (bpf_skb_load_bytes(skb, off + 9, b + 1, 1) || b[1] != 6)
			return TC_ACT_OK;
		l4 = off + (b[0] & 0xf) * 4;
	} else if (proto == bpf_htons(0x86dd)) {
		if (bpf_skb_load_bytes(skb, off + 6, b, 1) || b[0] != 6)
			return TC_ACT_OK;
		l4 = off + 40;
	} else {
		return TC_ACT_OK;
	}
	if (bpf_skb_load_bytes(skb, l4, ports, 4))
		return TC_ACT_OK;
	if (bpf_ntohs(ports[0]) != target_port)
		return TC_ACT_OK;
	if (bpf_ntohs(ports[1]) < sport_lo || bpf_ntohs(ports[1]) > sport_hi)
		return TC_ACT_OK;
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
