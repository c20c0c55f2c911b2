/*
 * test_verdict.c - gate 1's verdict built for userspace, as a userspace
 * backend (DPDK) builds it: the header-only parser (bpf/moat_parse.h),
 * lookup (bpf/moat_lookup.h) and verdict logic (bpf/moat_verdict.h) over
 * plain memory.  Every frame of the shared case table (tests/xdp_frames.h)
 * must get the verdict and bump the counter the bpf suite asserts for the
 * XDP program through BPF_PROG_TEST_RUN, tarpit replies must check out
 * (checksums, swap, ISN = keyed hash), and the tarpit limits and event
 * sampling must act as documented.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "moat_abi.h"
#include "moat_parse.h"
#include "moat_xdp.h"
#include "xdp_frames.h"

static const __u64 test_key[2] = { 0x1111222233334444ull, 0x5555666677778888ull };

/* --- the table: the test table's updates applied to plain memory ------- */
struct utable {
	struct { __u32 idx, val; } t24[16];
	unsigned n24;
	struct moat_group groups[8];
	struct moat_v6_plens_buf plb;
	struct { struct moat_v6_key k; __u32 act; } v6[16];
	unsigned nv6;
};

/* ut_tbl24 - tbl24[idx] (0 when absent) */
static __u32 ut_tbl24(const struct utable *t, __u32 idx)
{
	for (unsigned i = 0; i < t->n24; i++)
		if (t->t24[i].idx == idx)
			return t->t24[i].val;
	return 0;
}

/* ut_group - groups[idx] or NULL */
static const struct moat_group *ut_group(const struct utable *t, __u32 idx)
{
	return idx < sizeof(t->groups) / sizeof(t->groups[0]) ? &t->groups[idx] : NULL;
}

/* ut_v6 - one IPv6 rule or NULL */
static const __u32 *ut_v6(const struct utable *t, const struct moat_v6_key *k)
{
	for (unsigned i = 0; i < t->nv6; i++)
		if (!memcmp(&t->v6[i].k, k, sizeof(*k)))
			return &t->v6[i].act;
	return NULL;
}

#define MOAT_TBL24_GET(ctx, idx) ut_tbl24((const struct utable *)(ctx), (idx))
#define MOAT_GROUP_GET(ctx, idx) ut_group((const struct utable *)(ctx), (idx))
#define MOAT_V6_PLENS_GET(ctx) (&((const struct utable *)(ctx))->plb)
#define MOAT_V6_GET(ctx, kp) ut_v6((const struct utable *)(ctx), (kp))
#include "moat_lookup.h"

/* ut_load - apply the test table's publish sequence */
static void ut_load(struct utable *t)
{
	struct moat_update u[16];
	size_t n = tests_table_updates(u);

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		switch (u[i].kind) {
		case MOAT_UPD_GROUP:
			assert_true(u[i].index < 8);
			t->groups[u[i].index] = u[i].u.group;
			break;
		case MOAT_UPD_TBL24:
			t->t24[t->n24].idx = u[i].index;
			t->t24[t->n24++].val = u[i].value;
			break;
		case MOAT_UPD_V6_PLENS:
			t->plb.slot[0] = u[i].u.plens;
			t->plb.sel = 0;
			break;
		case MOAT_UPD_V6_PUT:
			t->v6[t->nv6].k = u[i].u.key;
			t->v6[t->nv6++].act = u[i].value;
			break;
		default:
			fail();
		}
	}
}

/* --- the per-frame context: what XDP keeps in maps, here in memory ------ */
struct uctx {
	struct utable *tab;
	__u8 *data;
	size_t len;
	__u64 now;
	__u64 limits[MOAT_LIMIT__MAX];
	struct { __u64 key, tat; } src[16];
	unsigned nsrc;
	struct moat_xdp_stat_cpu stats;   /* one CPU */
	struct moat_event ev[64];
	unsigned nev;
};

static struct moat_xdp_config ucfg;

/* u_src - the limiter state of *key, or NULL; u_src_new - created at 0 */
static __u64 *u_src(struct uctx *c, const __u64 *key)
{
	for (unsigned i = 0; i < c->nsrc; i++)
		if (c->src[i].key == *key)
			return &c->src[i].tat;
	return NULL;
}

static __u64 *u_src_new(struct uctx *c, const __u64 *key)
{
	if (c->nsrc == sizeof(c->src) / sizeof(c->src[0]))
		return NULL;
	c->src[c->nsrc].key = *key;
	c->src[c->nsrc].tat = 0;
	return &c->src[c->nsrc++].tat;
}

/* u_row - the counter row of port slot (-1: none) */
static struct moat_xdp_stat_row *u_row(struct uctx *c, int slot)
{
	__u32 k = (__u32)(slot + 1);

	return k < MOAT_XDP_STAT_ROWS ? &c->stats.row[k] : NULL;
}

/* u_set_len - the frame is len bytes now (never longer) */
static int u_set_len(struct uctx *c, int len)
{
	if (len < 0 || (size_t)len > c->len)
		return -1;
	c->len = (size_t)len;
	return 0;
}

/* u_lookup - the table's action for p's source */
static __u32 u_lookup(struct uctx *c, const struct moat_pkt *p)
{
	return p->family == 4 ? moat_lookup_v4(c->tab, p->saddr4) : moat_lookup_v6(c->tab, p->saddr6);
}

#define MOAT_V_CTX struct uctx
#define MOAT_V_CFG ucfg
#define MOAT_V_NOW(ctx) ((ctx)->now)
#define MOAT_V_LIMIT(ctx, which) ((which) < MOAT_LIMIT__MAX ? &(ctx)->limits[(which)] : NULL)
#define MOAT_V_SRC_LIMIT(ctx, keyp) u_src((ctx), (keyp))
#define MOAT_V_SRC_LIMIT_NEW(ctx, keyp) u_src_new((ctx), (keyp))
#define MOAT_V_STAT_ROW(ctx, slot) u_row((ctx), (slot))
#define MOAT_V_DATA(ctx) ((void *)(ctx)->data)
#define MOAT_V_DATA_END(ctx) ((void *)((ctx)->data + (ctx)->len))
#define MOAT_V_SET_LEN(ctx, l) u_set_len((ctx), (l))
#define MOAT_V_IFINDEX(ctx) 7u
#define MOAT_V_EVENT_RESERVE(ctx) \
	((ctx)->nev < sizeof((ctx)->ev) / sizeof((ctx)->ev[0]) ? &(ctx)->ev[(ctx)->nev] : NULL)
#define MOAT_V_EVENT_SUBMIT(ctx, e) ((void)(e), (ctx)->nev++)
#define MOAT_V_LOOKUP(ctx, p) u_lookup((ctx), (p))
#include "moat_verdict.h"

/* cfg_set - the loader's configuration (xdp_backend.c moat_xdp_open) with
 * the bpf suite's knobs: port 25, tarpit bursts of 1000 per source */
static void cfg_set(__u32 src_pps, __u32 src_burst, __u32 event_sample)
{
	memset(&ucfg, 0, sizeof(ucfg));
	ucfg.ports[0] = MOAT_XDP_DEF_PORT;
	ucfg.ports_net[0] = moat_be16(MOAT_XDP_DEF_PORT);
	ucfg.n_ports = 1;
	ucfg.ncpus = 1;
	ucfg.tarpit_src = moat_xdp_budget(src_pps, src_burst);
	ucfg.tarpit_global = moat_xdp_budget(MOAT_XDP_DEF_GLOBAL_PPS, MOAT_XDP_DEF_GLOBAL_BURST);
	ucfg.events = moat_xdp_budget(MOAT_XDP_DEF_EVENT_PPS, MOAT_XDP_DEF_EVENT_PPS);
	ucfg.events_on = event_sample != 0;
	ucfg.event_gap_max = event_sample;
	ucfg.isn_key[0] = test_key[0];
	ucfg.isn_key[1] = test_key[1];
}

/* stat_sum - counters summed over rows */
static void stat_sum(const struct uctx *c, uint64_t out[MOAT_STAT__MAX])
{
	memset(out, 0, MOAT_STAT__MAX * sizeof(out[0]));
	for (int r = 0; r < MOAT_XDP_STAT_ROWS; r++)
		for (int s = 0; s < MOAT_STAT__MAX; s++)
			out[s] += c->stats.row[r].c[s];
}

/* run - one frame (a heap copy: ASan sees overreads) through parse and
 * verdict; the frame as it is afterwards in out/outlen */
static int run(struct uctx *c, const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
	struct moat_pkt p;
	uint8_t *buf = malloc(len);
	int v;

	assert_non_null(buf);
	memcpy(buf, in, len);
	c->data = buf;
	c->len = len;
	v = moat_verdict(c, moat_parse(buf, buf + len, &p), &p, -1);
	if (out) {
		memcpy(out, buf, c->len);
		*outlen = c->len;
	}
	free(buf);
	return v;
}

static void test_case_table(void **state)
{
	struct utable tab;
	struct uctx *c = calloc(1, sizeof(*c));
	uint8_t in[TF_MAX], out[TF_MAX];
	int failed = 0, tarpits = 0;

	(void)state;
	assert_non_null(c);
	ut_load(&tab);
	cfg_set(MOAT_XDP_DEF_SRC_PPS, 1000, MOAT_XDP_DEF_EVENT_SAMPLE);
	c->tab = &tab;
	c->now = 1000000000ull;
	for (size_t i = 0; i < N_TCASES; i++) {
		const struct tcase *tc = &tcases[i];
		uint64_t a[MOAT_STAT__MAX], b[MOAT_STAT__MAX];
		size_t len = tf_build(&tc->f, in), outlen = 0;
		const char *err;
		int got;

		c->now += 1000000;
		stat_sum(c, a);
		got = run(c, in, len, out, &outlen);
		stat_sum(c, b);
		err = tf_check_case(tc, got, a, b, in, len, out, outlen, test_key);
		if (err) {
			print_error("case '%s': %s\n", tc->name, err);
			failed++;
		}
		tarpits += got == MOAT_VERDICT_TX;
	}
	/* at this rate (1 ms apart) every refused SYN and ALLOW is reported */
	assert_true(c->nev > 0);
	for (unsigned i = 0; i < c->nev; i++)
		assert_true(c->ev[i].ifindex == 7 && (c->ev[i].family == 4 || c->ev[i].family == 6));
	free(c);
	assert_true(tarpits >= 5);
	assert_int_equal(failed, 0);
}

/* syn_from - a SYN to port 25 from src into buf */
static size_t syn_from(uint8_t *buf, const char *src)
{
	struct tframe f = { .family = 4, .src = src, .dst = "198.18.1.1", .sport = 40000,
			    .dport = 25, .flags = TF_SYN, .seq = 1000 };

	return tf_build(&f, buf);
}

/* test_tarpit_limit - a source's burst of replies, then DROP and
 * tarpit_limited until time refills the budget; another /24 has its own */
static void test_tarpit_limit(void **state)
{
	struct utable tab;
	struct uctx *c = calloc(1, sizeof(*c));
	uint8_t in[TF_MAX];
	size_t len = syn_from(in, "198.51.100.1");

	(void)state;
	assert_non_null(c);
	ut_load(&tab);
	cfg_set(10, 3, 0);
	c->tab = &tab;
	c->now = 5000000000ull;
	for (int i = 0; i < 3; i++)
		assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_TX);
	assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(c->stats.row[1].c[MOAT_STAT_TARPIT_LIMITED], 1);
	/* the same /24, another address: the same budget */
	len = syn_from(in, "198.51.100.2");
	assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	/* 100 ms later (10 per second): one more */
	c->now += 100000000ull;
	assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_TX);
	assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(c->stats.row[1].c[MOAT_STAT_TARPIT], 4);
	assert_int_equal(c->nev, 0); /* events off */
	free(c);
}

/* test_event_gap - under a flood the gap doubles up to event_sample; after
 * a quiet MOAT_XDP_EVENT_QUIET_NS the next report comes within the gap,
 * and the gap is back to 1 */
static void test_event_gap(void **state)
{
	struct utable tab;
	struct uctx *c = calloc(1, sizeof(*c));
	uint8_t in[TF_MAX];
	size_t len = syn_from(in, "192.0.2.10");

	(void)state;
	assert_non_null(c);
	ut_load(&tab);
	cfg_set(10, 20, 8);
	c->tab = &tab;
	c->now = 5000000000ull;
	/* 40 drops within 10 ms: reported 1st, 2nd, 4th, 8th, then 1 in 8 */
	for (int i = 0; i < 40; i++)
		assert_int_equal(run(c, in, len, NULL, NULL), MOAT_VERDICT_DROP);
	assert_int_equal(c->stats.row[1].c[MOAT_STAT_DROP], 40);
	assert_int_equal(c->nev, 1 + 1 + 1 + 1 + 4);
	assert_int_equal(c->stats.row[1].ev_gap, 8);
	/* quiet, then one: reported, gap back to 1 */
	c->now += 2 * MOAT_XDP_EVENT_QUIET_NS;
	unsigned before = c->nev;

	for (int i = 0; i < 8; i++)
		run(c, in, len, NULL, NULL);
	assert_true(c->nev > before);
	assert_int_equal(c->ev[before].stat, MOAT_STAT_DROP);
	assert_int_equal(c->ev[before].action, MOAT_ACT_DROP);
	assert_int_equal(c->ev[before].saddr[0], 192);
	assert_int_equal(c->stats.row[1].ev_gap, 1);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_table),
		cmocka_unit_test(test_tarpit_limit),
		cmocka_unit_test(test_event_gap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
