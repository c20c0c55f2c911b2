/*
 * test_parse.c - the fast path's parser and tarpit builder (bpf/moat_parse.h)
 * built as ordinary userspace C: the shared case table, every truncation of
 * three frames including those shorter than Ethernet (which
 * BPF_PROG_TEST_RUN cannot take), and tarpit replies checked with an
 * independent checksum.  Built twice: as is (the parser the XDP program
 * has) and as test_parse_simd with -mssse3 (the fast case's SIMD variant,
 * the one moat-dpdk compiles).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "moat_parse.h"
#include "xdp_frames.h"

/* test_parse_simd: this file over the fast case moat-dpdk compiles */
#if defined(MOAT_TEST_PARSE_SIMD) && !defined(MOAT_PARSE_SIMD)
#error "MOAT_TEST_PARSE_SIMD: moat_parse.h did not take its SIMD fast case"
#endif

static const char *const res_names[] = {
	"TCP", "OTHER", "FRAGMENT", "ERR_ETH", "ERR_VLAN_DEPTH", "ERR_IP4",
	"ERR_IP6", "ERR_IP6_EXT", "ERR_TCP",
};

/* parse_copy - parse len bytes from a heap copy, so ASan sees overreads */
static int parse_copy(const uint8_t *buf, size_t len, struct moat_pkt *p)
{
	uint8_t *c = malloc(len ? len : 1);
	int r;

	assert_non_null(c);
	memcpy(c, buf, len);
	r = moat_parse(c, c + len, p);
	free(c);
	return r;
}

static void test_case_table(void **state)
{
	uint8_t buf[TF_MAX];
	int failed = 0;

	(void)state;
	for (size_t i = 0; i < N_TCASES; i++) {
		struct moat_pkt p;
		size_t len = tf_build(&tcases[i].f, buf);
		int got = parse_copy(buf, len, &p);

		if (got != tcases[i].want_parse) {
			print_error("case '%s': got %s, want %s\n", tcases[i].name,
				    res_names[got], res_names[tcases[i].want_parse]);
			failed++;
			continue;
		}
		if (got == MOAT_PARSE_TCP &&
		    (p.dport != tcases[i].f.dport || p.sport != tcases[i].f.sport ||
		     p.tcp_flags != tcases[i].f.flags || p.seq != tcases[i].f.seq ||
		     p.l3_off != tf_l3off(&tcases[i].f) ||
		     p.nvlan != tcases[i].f.nvlan)) {
			print_error("case '%s': fields got sport=%u dport=%u flags=%#x "
				    "seq=%u l3=%u nvlan=%u\n", tcases[i].name, p.sport,
				    p.dport, p.tcp_flags, p.seq, p.l3_off, p.nvlan);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

static void test_truncation(void **state)
{
	uint8_t buf[TF_MAX];
	int failed = 0;

	(void)state;
	for (size_t f = 0; f < N_TCUT; f++) {
		size_t full = tf_build(&tcut_frames[f], buf);
		struct moat_pkt p;

		assert_int_equal(parse_copy(buf, full, &p), MOAT_PARSE_TCP);
		for (size_t len = 0; len < full; len++) {
			int got = parse_copy(buf, len, &p);
			int want = tcut_want(&tcut_frames[f], tf_l3off(&tcut_frames[f]), len);

			if (got != want) {
				print_error("frame %zu cut to %zu of %zu: got %s, want %s\n",
					    f, len, full, res_names[got], res_names[want]);
				failed++;
			}
		}
	}
	assert_int_equal(failed, 0);
}

/* same_pkt - the fields a TCP parse fills are equal */
static int same_pkt(const struct moat_pkt *a, const struct moat_pkt *b)
{
	return a->l3_off == b->l3_off && a->l4_off == b->l4_off &&
	       a->family == b->family && a->nvlan == b->nvlan &&
	       a->tcp_flags == b->tcp_flags && a->sport == b->sport &&
	       a->dport == b->dport && a->seq == b->seq &&
	       a->saddr4 == b->saddr4 && a->daddr4 == b->daddr4;
}

/* fast_agrees - moat_parse (fast case first) and moat_parse_general
 * decide one frame alike; counts frames the fast case took in *fast */
static int fast_agrees(const uint8_t *buf, size_t len, int *fast)
{
	struct moat_pkt a, b, c;
	int ra, rb, rc;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	ra = parse_copy(buf, len, &a);
	rb = moat_parse_general(buf, buf + len, &b);
	/* the fast case into a struct of its own: a frame it takes must be
	 * a TCP frame the general walk fills field for field the same */
	rc = moat_parse_fast4(buf, buf + len, &c);
	if (rc)
		(*fast)++;
	return ra == rb && (ra != MOAT_PARSE_TCP || same_pkt(&a, &b)) &&
	       (!rc || (rb == MOAT_PARSE_TCP && same_pkt(&c, &b)));
}

/* Every case-table frame, every truncation of them, and variants of the
 * plain IPv4 SYN with each header byte the fast case tests changed: the
 * fast case takes only frames the general walk parses the same way. */
static void test_fast_matches_general(void **state)
{
	static const size_t bytes[] = { 12, 13, 14, 16, 17, 20, 21, 23, 46 };
	static const uint8_t vals[] = { 0x00, 0x05, 0x06, 0x08, 0x14, 0x20,
					0x28, 0x3f, 0x40, 0x45, 0x46, 0x50,
					0x60, 0x81, 0xf0, 0xff };
	uint8_t buf[TF_MAX], v[TF_MAX];
	int failed = 0, fast = 0;

	(void)state;
	for (size_t i = 0; i < N_TCASES; i++) {
		size_t len = tf_build(&tcases[i].f, buf);

		for (size_t cut = 0; cut <= len; cut++) {
			if (!fast_agrees(buf, cut, &fast)) {
				print_error("case '%s' cut to %zu: fast and general "
					    "parse disagree\n", tcases[i].name, cut);
				failed++;
			}
		}
		if (tcases[i].f.nvlan || tcases[i].f.family != 4)
			continue;
		for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++) {
			if (bytes[b] >= len)
				continue;
			for (size_t k = 0; k < sizeof(vals); k++) {
				memcpy(v, buf, len);
				v[bytes[b]] = vals[k];
				if (!fast_agrees(v, len, &fast)) {
					print_error("case '%s' byte %zu = %#x: fast and "
						    "general parse disagree\n",
						    tcases[i].name, bytes[b], vals[k]);
					failed++;
				}
			}
		}
	}
	assert_int_equal(failed, 0);
	assert_true(fast > 10);   /* the fast case was really exercised */
}

static void test_tarpit_replies(void **state)
{
	static const __u64 key[2] = { 0x0123456789abcdefull, 0xfedcba9876543210ull };
	uint8_t buf[TF_MAX], syn[TF_MAX];
	int n = 0;

	(void)state;
	for (size_t i = 0; i < N_TCASES; i++) {
		struct moat_pkt p = { 0 }; /* the parser fills what the family uses */
		size_t len;
		const char *msg;
		uint32_t isn = 0;

		if (tcases[i].want_stat != MOAT_STAT_TARPIT)
			continue;
		len = tf_build(&tcases[i].f, buf);
		memcpy(syn, buf, len);
		assert_int_equal(moat_parse(buf, buf + len, &p), MOAT_PARSE_TCP);
		int rlen = moat_tarpit_build(buf, buf + len, &p, moat_tarpit_isn(key, &p));
		assert_true(rlen > 0);
		msg = tf_check_tarpit(syn, len, buf, (size_t)rlen, &isn);
		if (msg)
			fail_msg("case '%s': %s", tcases[i].name, msg);
		assert_int_equal(isn, moat_tarpit_isn(key, &p));
		n++;
	}
	assert_true(n >= 5);
}

static void test_isn_keyed(void **state)
{
	static const __u64 k1[2] = { 1, 2 }, k2[2] = { 1, 3 };
	struct moat_pkt p, q;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.family = 4;
	p.saddr4 = 0xc000020b;
	p.daddr4 = 0xc6120101;
	p.sport = 40000;
	p.dport = 25;
	q = p;
	q.sport = 40001;
	assert_int_equal(moat_tarpit_isn(k1, &p), moat_tarpit_isn(k1, &p));
	assert_int_not_equal(moat_tarpit_isn(k1, &p), moat_tarpit_isn(k1, &q));
	assert_int_not_equal(moat_tarpit_isn(k1, &p), moat_tarpit_isn(k2, &p));
}

static void test_siphash_vector(void **state)
{
	/* SipHash-2-4 reference: key 00..0f, message 00..0f (16 bytes) */
	__u64 key[2], m[2];
	uint8_t kb[16], mb[16];

	(void)state;
	for (int i = 0; i < 16; i++)
		kb[i] = mb[i] = (uint8_t)i;
	memcpy(key, kb, 16);
	memcpy(m, mb, 16);
	assert_true(moat_siphash(key, m, 2) == 0x3f2acc7f57c29bdbull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_table),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_fast_matches_general),
		cmocka_unit_test(test_tarpit_replies),
		cmocka_unit_test(test_isn_keyed),
		cmocka_unit_test(test_siphash_vector),
	};
	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
