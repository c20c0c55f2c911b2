/*
 * test_dp_classify.c - moat-dpdk's burst classifier (dataplane/dpdk/
 * dp_classify.c) on real mbufs from an rte_pktmbuf_pool (EAL with
 * --no-huge --no-pci, in memory), over a real dp_table loaded with the
 * bpf suite's publish sequence.  Every frame of the shared case table
 * (tests/xdp_frames.h) must get the verdict and bump the counter the bpf
 * suite asserts for the XDP program; a tarpitted SYN must come out as the
 * bytes the shared builder (moat_tarpit_build, the XDP program's) makes of
 * it; bursts of 32 must decide exactly as frames one at a time (the
 * prefetch passes change nothing, nor the next burst parsed between a
 * burst's lookup and its decision, as moat-dpdk's worker runs them); and the tarpit limit, the event ring
 * and a frame that cannot be rewritten act as documented.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dp_classify.h"
#include "dp_test_eal.h"
#include "xdp_frames.h"

static const __u64 test_key[2] = { 0x1111222233334444ull, 0x5555666677778888ull };

static struct rte_mempool *pool;
static struct dp_table *table;
static struct rte_ring *events;
static struct dp_src_slot src[1024];
static struct dp_shared sh;

/* mk - an mbuf holding len bytes of frame */
static struct rte_mbuf *mk(const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	char *d;

	assert_non_null(m);
	d = rte_pktmbuf_append(m, (uint16_t)len);
	assert_non_null(d);
	memcpy(d, frame, len);
	return m;
}

/* fresh - a new lcore state over fresh shared state: port 25, the bpf
 * suite's knobs (tarpit bursts of src_burst per source) */
static void fresh(struct dp_lcore *lc, uint32_t src_pps, uint32_t src_burst,
		  uint32_t event_sample)
{
	static const uint16_t ports[] = { 25 };
	struct moat_event e;

	memset(src, 0, sizeof(src));
	memset(lc, 0, sizeof(*lc));
	while (rte_ring_dequeue_elem(events, &e, sizeof(struct moat_event)) == 0)
		;
	assert_int_equal(dp_shared_init(&sh, ports, 1, event_sample, test_key, src, 1024), 0);
	dp_set_tarpit_budget(src_pps, src_burst);
	sh.events = events;
	lc->sh = &sh;
	lc->ifindex = 7;
}

/* want_reply - the XDP program's reply to the SYN in (the shared builder
 * on a plain copy); its length, or -1 */
static int want_reply(const uint8_t *in, size_t len, uint8_t *out)
{
	struct moat_pkt p = { 0 }; /* the parser fills what the family uses */

	memcpy(out, in, len);
	if (moat_parse(out, out + len, &p) != MOAT_PARSE_TCP)
		return -1;
	return moat_tarpit_build(out, out + len, &p, moat_tarpit_isn(test_key, &p));
}

static void sum(const struct dp_lcore *lc, uint64_t out[MOAT_STAT__MAX])
{
	memset(out, 0, MOAT_STAT__MAX * sizeof(out[0]));
	dp_stats_add(lc, out);
}

/* test_case_table - one frame per burst: verdict, counter, reply bytes */
static void test_case_table(void **state)
{
	const struct dp_table_view *v = dp_table_view(table);
	struct dp_lcore *lc = calloc(1, sizeof(*lc));
	uint8_t in[TF_MAX], want[TF_MAX];
	uint64_t now = 1000000000ull;
	int failed = 0, tarpits = 0;

	(void)state;
	assert_non_null(lc);
	fresh(lc, MOAT_XDP_DEF_SRC_PPS, 1000, MOAT_XDP_DEF_EVENT_SAMPLE);
	for (size_t i = 0; i < N_TCASES; i++) {
		const struct tcase *tc = &tcases[i];
		uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];
		size_t len = tf_build(&tc->f, in);
		struct rte_mbuf *m = mk(in, len);
		uint8_t got;
		const char *err;

		now += 1000000;
		sum(lc, a);
		dp_classify_burst(lc, v, &m, 1, now, &got);
		sum(lc, b);
		err = tf_check_case(tc, got, a, b, in, len, rte_pktmbuf_mtod(m, uint8_t *),
				    rte_pktmbuf_data_len(m), test_key);
		if (err) {
			print_error("case '%s': %s\n", tc->name, err);
			failed++;
		}
		if (got == MOAT_VERDICT_TX) {
			int wl = want_reply(in, len, want);

			if (wl != (int)rte_pktmbuf_pkt_len(m) ||
			    memcmp(want, rte_pktmbuf_mtod(m, uint8_t *), (size_t)wl)) {
				print_error("case '%s': reply is not the XDP program's bytes\n",
					    tc->name);
				failed++;
			}
			tarpits++;
		}
		rte_pktmbuf_free(m);
	}
	/* at this rate (1 ms apart) refused SYNs are reported, into the ring */
	assert_true(rte_ring_count(events) > 0);
	free(lc);
	assert_true(tarpits >= 5);
	assert_int_equal(failed, 0);
}

/* check_out - decide's out[] holds the burst's frames sorted by verdict,
 * each in burst order; the number of frames out of place */
static int check_out(const struct dp_burst *b)
{
	static const uint8_t verdict_of[DP_OUT__MAX] = {
		[DP_OUT_KERNEL] = MOAT_VERDICT_PASS,
		[DP_OUT_WIRE] = MOAT_VERDICT_TX,
		[DP_OUT_FREE] = MOAT_VERDICT_DROP,
	};
	int bad = 0;

	for (int o = 0; o < DP_OUT__MAX; o++) {
		uint16_t k = 0;

		for (uint16_t i = 0; i < b->n; i++)
			if (b->verdict[i] == verdict_of[o] && (k >= b->nout[o] || b->out[o][k++] != b->m[i]))
				bad++;
		if (k != b->nout[o])
			bad++;
	}
	if (bad)
		print_error("a burst's out[] does not match its verdicts (%d)\n", bad);
	return bad;
}

/* test_bursts - the whole table in bursts of up to 32 (three passes with
 * prefetch) decides every frame as one at a time did, and the counters
 * add up the same */
static void test_bursts(void **state)
{
	const struct dp_table_view *v = dp_table_view(table);
	struct dp_lcore *one = calloc(1, sizeof(*one)), *bur = calloc(1, sizeof(*bur));
	struct rte_mbuf *ms[N_TCASES], *m1;
	uint8_t want_v[N_TCASES], got_v[N_TCASES], in[TF_MAX];
	uint8_t *want_b[N_TCASES];
	size_t want_l[N_TCASES];
	uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];
	int failed = 0;

	(void)state;
	assert_non_null(one);
	assert_non_null(bur);
	fresh(one, MOAT_XDP_DEF_SRC_PPS, 1000, 0);
	for (size_t i = 0; i < N_TCASES; i++) {
		size_t len = tf_build(&tcases[i].f, in);

		m1 = mk(in, len);
		dp_classify_burst(one, v, &m1, 1, 2000000000ull, &want_v[i]);
		want_l[i] = rte_pktmbuf_data_len(m1);
		want_b[i] = malloc(want_l[i]);
		assert_non_null(want_b[i]);
		memcpy(want_b[i], rte_pktmbuf_mtod(m1, uint8_t *), want_l[i]);
		rte_pktmbuf_free(m1);
		ms[i] = mk(in, len);
	}
	fresh(bur, MOAT_XDP_DEF_SRC_PPS, 1000, 0);
	/* as moat-dpdk's worker runs the passes: the next burst parsed
	 * between this one's lookup and its decision */
	{
		static struct dp_burst bb[2];
		struct dp_burst *cur = &bb[0], *next = &bb[1], *t;
		size_t at = 0, cur_at = 0;

		cur->n = 0;
		for (;;) {
			uint16_t n = N_TCASES - at < DP_BURST ? (uint16_t)(N_TCASES - at) : DP_BURST;

			if (cur->n)
				dp_classify_lookup(v, cur);
			next->n = n;
			memcpy(next->m, &ms[at], n * sizeof(ms[0]));
			if (n)
				dp_classify_parse(v, next);
			if (cur->n) {
				dp_classify_decide(bur, v, cur, 2000000000ull);
				memcpy(&got_v[cur_at], cur->verdict, cur->n);
				failed += check_out(cur);
			}
			if (!n && !cur->n)
				break;
			cur_at = at;
			at += n;
			t = cur;
			cur = next;
			next = t;
		}
	}
	for (size_t i = 0; i < N_TCASES; i++) {
		if (got_v[i] != want_v[i] || rte_pktmbuf_data_len(ms[i]) != want_l[i] ||
		    memcmp(rte_pktmbuf_mtod(ms[i], uint8_t *), want_b[i], want_l[i])) {
			print_error("case '%s': in a burst %d, alone %d (or other bytes)\n",
				    tcases[i].name, got_v[i], want_v[i]);
			failed++;
		}
		rte_pktmbuf_free(ms[i]);
		free(want_b[i]);
	}
	sum(one, a);
	sum(bur, b);
	assert_memory_equal(a, b, sizeof(a));
	free(one);
	free(bur);
	assert_int_equal(failed, 0);
}

/* syn_from - a SYN to port 25 from src into buf */
static size_t syn_from(uint8_t *buf, const char *s)
{
	struct tframe f = { .family = 4, .src = s, .dst = "198.18.1.1", .sport = 40000,
			    .dport = 25, .flags = TF_SYN, .seq = 1000 };

	return tf_build(&f, buf);
}

/* run1 - one SYN from s at now through the classifier; its verdict */
static int run1(struct dp_lcore *lc, const char *s, uint64_t now)
{
	uint8_t in[TF_MAX], v;
	struct rte_mbuf *m = mk(in, syn_from(in, s));

	dp_classify_burst(lc, dp_table_view(table), &m, 1, now, &v);
	rte_pktmbuf_free(m);
	return v;
}

/* test_tarpit_limit - a source's burst of replies, then DROP and
 * tarpit_limited until time refills the budget (the XDP limits) */
static void test_tarpit_limit(void **state)
{
	struct dp_lcore *lc = calloc(1, sizeof(*lc));
	uint64_t now = 5000000000ull;

	(void)state;
	assert_non_null(lc);
	fresh(lc, 10, 3, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(run1(lc, "198.51.100.1", now), MOAT_VERDICT_TX);
	assert_int_equal(run1(lc, "198.51.100.1", now), MOAT_VERDICT_DROP);
	assert_int_equal(lc->stats.row[1].c[MOAT_STAT_TARPIT_LIMITED], 1);
	/* the same /24: the same budget */
	assert_int_equal(run1(lc, "198.51.100.2", now), MOAT_VERDICT_DROP);
	now += 100000000ull;
	assert_int_equal(run1(lc, "198.51.100.2", now), MOAT_VERDICT_TX);
	assert_int_equal(run1(lc, "198.51.100.2", now), MOAT_VERDICT_DROP);
	assert_int_equal(lc->stats.row[1].c[MOAT_STAT_TARPIT], 4);
	assert_int_equal(rte_ring_count(events), 0); /* events off */
	free(lc);
}

/* test_events - a drop is reported into the ring with the port id as
 * ifindex; a full ring counts event_lost */
static void test_events(void **state)
{
	struct dp_lcore *lc = calloc(1, sizeof(*lc));
	struct moat_event e;
	struct rte_ring *small = rte_ring_create_elem("t_small", sizeof(struct moat_event), 2,
						      SOCKET_ID_ANY, RING_F_EXACT_SZ);

	(void)state;
	assert_non_null(lc);
	assert_non_null(small);
	fresh(lc, 10, 20, 1);
	assert_int_equal(run1(lc, "203.0.113.9", 1000000000ull), MOAT_VERDICT_DROP);
	assert_int_equal(rte_ring_dequeue_elem(events, &e, sizeof(e)), 0);
	assert_int_equal(e.stat, MOAT_STAT_DROP);
	assert_int_equal(e.action, MOAT_ACT_DROP);
	assert_int_equal(e.ifindex, 7);
	assert_int_equal(e.saddr[0], 203);
	assert_int_equal(e.dport, 25);
	/* a full ring: the event is counted lost, the verdict stands */
	sh.events = small;
	for (int i = 0; i < 3; i++)
		assert_int_equal(run1(lc, "203.0.113.9", 2000000000ull + i * 20000000ull),
				 MOAT_VERDICT_DROP);
	assert_int_equal(rte_ring_count(small), 2);
	assert_int_equal(lc->stats.row[0].c[MOAT_STAT_EVENT_LOST], 1);
	rte_ring_free(small);
	free(lc);
}

static unsigned clock_reads;

static uint64_t test_clock(void)
{
	clock_reads++;
	return 7000000000ull;
}

/* test_lazy_clock - with now_ns 0 the burst reads lc->clock only when a
 * verdict needs the time, once per burst: not for a passed SYN, once
 * for a burst of reported drops (the event carries the clock's time) */
static void test_lazy_clock(void **state)
{
	struct dp_lcore *lc = calloc(1, sizeof(*lc));
	struct rte_mbuf *m[4];
	uint8_t in[TF_MAX], v[4];
	struct moat_event e;

	(void)state;
	assert_non_null(lc);
	fresh(lc, 10, 20, 1);
	lc->clock = test_clock;
	clock_reads = 0;
	m[0] = mk(in, syn_from(in, "192.0.2.1"));       /* unlisted: passed */
	dp_classify_burst(lc, dp_table_view(table), m, 1, 0, v);
	assert_int_equal(v[0], MOAT_VERDICT_PASS);
	assert_int_equal(clock_reads, 0);
	rte_pktmbuf_free(m[0]);
	for (int i = 0; i < 4; i++)
		m[i] = mk(in, syn_from(in, "203.0.113.9"));   /* listed DROP */
	dp_classify_burst(lc, dp_table_view(table), m, 4, 0, v);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(v[i], MOAT_VERDICT_DROP);
		rte_pktmbuf_free(m[i]);
	}
	assert_int_equal(clock_reads, 1);
	assert_int_equal(rte_ring_dequeue_elem(events, &e, sizeof(e)), 0);
	assert_int_equal(e.ts_ns, 7000000000ull);
	free(lc);
}

/* test_chained - a SYN in a two-segment mbuf cannot be rewritten in place:
 * dropped and counted tarpit_fail, as XDP does when its reply fails */
static void test_chained(void **state)
{
	struct dp_lcore *lc = calloc(1, sizeof(*lc));
	uint8_t in[TF_MAX], v;
	struct rte_mbuf *m = mk(in, syn_from(in, "198.51.100.7"));
	struct rte_mbuf *tail = rte_pktmbuf_alloc(pool);

	(void)state;
	assert_non_null(lc);
	assert_non_null(tail);
	assert_non_null(rte_pktmbuf_append(tail, 4));
	assert_int_equal(rte_pktmbuf_chain(m, tail), 0);
	fresh(lc, 10, 20, 0);
	dp_classify_burst(lc, dp_table_view(table), &m, 1, 1000000000ull, &v);
	assert_int_equal(v, MOAT_VERDICT_DROP);
	assert_int_equal(lc->stats.row[1].c[MOAT_STAT_TARPIT_FAIL], 1);
	rte_pktmbuf_free(m);
	free(lc);
}

static int setup(void **state)
{
	struct dp_table_params tp = { .groups_max = 8, .v6_rules_max = 64, .n_readers = 1,
				      .socket_id = SOCKET_ID_ANY };
	struct moat_update u[16];
	size_t n;

	(void)state;
	if (dp_test_eal_up("dp_classify", "160"))
		return -1;
	pool = rte_pktmbuf_pool_create("t_pool", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	events = rte_ring_create_elem("t_events", sizeof(struct moat_event), 1024,
				      SOCKET_ID_ANY, 0);
	if (!pool || !events || dp_table_create(&tp, &table) != 0)
		return -1;
	n = tests_table_updates(u);
	return dp_table_apply(table, u, n) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	dp_table_free(table);
	rte_ring_free(events);
	rte_mempool_free(pool);
	dp_test_eal_down();
	return 0;
}

/* test_port_slots - the classifier's port table gives every port the
 * slot moat_verdict.h's walk of the port set gives it (first match; a
 * port listed twice keeps its first slot), and -1 to the rest */
static void test_port_slots(void **state)
{
	static const uint16_t ports[] = { 25, 587, 25, 465, 2525 };
	const unsigned n = sizeof(ports) / sizeof(ports[0]);
	unsigned bad = 0;

	(void)state;
	assert_int_equal(dp_shared_init(&sh, ports, n, 0, test_key, src, 1024), 0);
	for (uint32_t d = 0; d < 65536; d++) {
		int want = -1;

		for (unsigned i = 0; i < n && want < 0; i++)
			if (ports[i] == d)
				want = (int)i;
		if (dp_port_slot((uint16_t)d) != want) {
			if (bad++ < 5)
				print_error("port %u: slot %d, the walk gives %d\n", d,
					    dp_port_slot((uint16_t)d), want);
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal(dp_port_slot(465), 3);
	assert_int_equal(dp_port_slot(26), -1);
	/* a new configuration replaces the old table */
	assert_int_equal(dp_shared_init(&sh, &ports[1], 1, 0, test_key, src, 1024), 0);
	assert_int_equal(dp_port_slot(587), 0);
	assert_int_equal(dp_port_slot(25), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_table),
		cmocka_unit_test(test_bursts),
		cmocka_unit_test(test_tarpit_limit),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_lazy_clock),
		cmocka_unit_test(test_chained),
		cmocka_unit_test(test_port_slots),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
