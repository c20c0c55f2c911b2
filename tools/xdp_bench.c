/*
 * xdp_bench.c - measurements behind `tools/bench xdp` (tools/bench.d/xdp).
 *
 *   xdp_bench testrun [--repeat N] [--big N] [--rounds N] [--event-sample N]
 *       per-packet cost with BPF_PROG_TEST_RUN of moat_xdp on a listed SYN,
 *       an unlisted SYN and a non-SMTP packet with 1k and N (default 10M)
 *       random /32s listed, against moat_bare_drop (same frame, same
 *       repeat count, --rounds (61) rounds interleaved, medians); then the
 *       lookup's memory cost in-kernel (lookup_bench.bpf.c, bpf_loop over
 *       1M precomputed addresses, half listed and half random as in
 *       bench_table.c) and in userspace over the same table and the same
 *       addresses.  Every round also runs moat_calib (calib.bpf.c), whose
 *       cost tells the host's speed in that round.  Prints "key value"
 *       lines, and "round_pkt_TAG r bare listed unlisted non-SMTP calib" /
 *       "round_lookup_TAG r kernel user calib" lines per round.
 *   xdp_bench lookup6 [--entries N] [--rounds R]
 *       the IPv6 trie lookup in the kernel (cmd_lookup6): N entries
 *       (default 1M) of the bench mix, R rounds (21).
 *   xdp_bench syn6 [--entries N] [--repeat R] [--rounds K]
 *       moat_xdp on a listed and an unlisted IPv6 SYN with N IPv6 entries
 *       published through moat_xdp_publish, against the bare drop
 *       (cmd_syn6).
 *   xdp_bench attach --pin DIR --entries N --sources K --out PREFIX
 *                    --dmac MAC IFACE
 *       fill a pinned moat_xdp table with N random /32s (DROP), attach it
 *       to IFACE, write the first K listed addresses to PREFIX.sources and
 *       a trafgen config of SYNs from them to PREFIX.trafgen; with
 *       --updates FILE also the same table as the update sequence that
 *       builds it (struct moat_update: groups, then tbl24 entries), raw,
 *       for a publisher to moat-dpdk (tools/bench sizes).
 *   xdp_bench frames --src-file FILE --sources K --out PREFIX --dmac MAC
 *       the same two files for the first K addresses of FILE (a table
 *       moat-controld built: tools/bench xdp's veth rounds on it).
 *
 * The table is generated per moat_abi.h in userspace and pushed with
 * batched map updates - the publish path is not what is measured here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "log.h"
#include "moat_bare_drop.skel.h"
#include "moat_calib.skel.h"
#include "moat_lookup_bench.skel.h"
#include "moat_lookup6_bench.skel.h"
#include "moat_spread.skel.h"
#include "moat_parse.h"
#include "xdp_backend.h"
#include "vt_trie6.h"
#include "bench_v6mix.h"

/* userspace accessors for the shared lookup, over the dense copy of the
 * table the benchmark builds before pushing it into the maps */
static const __u32 *u_tbl24;
static const struct moat_group *u_groups;
static __u32 u_groups_max;
#define MOAT_TBL24_GET(ctx, i) ((void)(ctx), u_tbl24[(i)])
#define MOAT_GROUP_GET(ctx, i) ((i) < u_groups_max ? &u_groups[(i)] : NULL)
#define MOAT_V6_PLENS_GET(ctx) ((void)(ctx), (const struct moat_v6_plens_buf *)NULL)
#define MOAT_V6_GET(ctx, kp) ((void)(kp), (const __u32 *)NULL)
#include "moat_lookup.h"

#define N_LOOKUP (1u << 20)
#define LB_CHUNK 1024   /* addresses per map value (lookup_bench.bpf.c) */
#define LB6_CHUNK 64    /* the same, lookup6_bench.bpf.c */
#define RUNS 21        /* rounds of the lookup measurement */
#define PKT_RUNS_MAX 1001

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;
static long event_sample = -1;  /* -1: the default */
static int pkt_runs = 61;       /* rounds of the per-packet measurement */
static int calib_fd = -1;       /* moat_calib (calib.bpf.c): the host's speed */

/* rnd - splitmix64 */
static uint64_t rnd(void)
{
	uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* cmp_d - qsort doubles */
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* median - of n doubles (sorts them) */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* min_d - smallest of n doubles */
static double min_d(const double *v, int n)
{
	double m = v[0];

	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

struct table {
	struct moat_xdp *x;
	__u32 *tbl24;
	struct moat_group *groups;
	__u32 groups_max, ngroups;
	__u32 *listed;      /* the first nlisted addresses put in the table */
	__u32 nlisted;
};

/*
 * table_open - a moat_xdp handle with n random /32s listed as DROP.  The
 * table is built in userspace (dense tbl24, groups): groups copied into
 * the mapped groups value, then tbl24 into the mapped tbl24.
 */
static int table_open(struct table *t, const char *pin, __u32 n, __u32 keep)
{
	struct moat_xdp_opts o;
	int err;

	memset(t, 0, sizeof(*t));
	moat_xdp_opts_default(&o);
	o.pin_dir = pin;
	if (event_sample >= 0)
		o.event_sample = (uint32_t)event_sample;
	/* distinct /24s among n random /32s: 2^24 (1 - e^(-n/2^24)) */
	o.groups_max = n > (1u << 20) ? (1u << 23) : (1u << 20);
	t->groups_max = o.groups_max;
	err = moat_xdp_open(&o, &t->x);
	if (err)
		return err;
	/* malloc + memset: every page really backed, like a filled table */
	t->tbl24 = malloc(MOAT_TBL24_ENTRIES * sizeof(__u32));
	if (t->tbl24)
		memset(t->tbl24, 0, MOAT_TBL24_ENTRIES * sizeof(__u32));
	t->groups = malloc((size_t)t->groups_max * sizeof(struct moat_group));
	t->listed = calloc(keep ? keep : 1, sizeof(__u32));
	if (!t->tbl24 || !t->groups || !t->listed)
		return -ENOMEM;
	for (__u32 i = 0; i < n; i++) {
		__u32 a = (__u32)rnd(), *e = &t->tbl24[a >> 8];

		if (!moat_tbl24_is_group(*e)) {
			if (t->ngroups == t->groups_max)
				break;
			memset(&t->groups[t->ngroups], 0, sizeof(struct moat_group));
			*e = moat_tbl24_make_group(t->ngroups++);
		}
		moat_group_set(&t->groups[moat_tbl24_group(*e)], (__u8)a, MOAT_ACT_DROP);
		if (t->nlisted < keep)
			t->listed[t->nlisted++] = a;
	}
	/* groups into the mapped groups value (one value: no per-group
	 * update), then tbl24, straight into the mapped map */
	size_t glen = (size_t)t->groups_max * sizeof(struct moat_group);
	void *gm = mmap(NULL, glen, PROT_READ | PROT_WRITE, MAP_SHARED,
			moat_xdp_map_fd(t->x, "groups"), 0);

	if (gm == MAP_FAILED) {
		err = -errno;
	} else {
		memcpy(gm, t->groups, (size_t)t->ngroups * sizeof(struct moat_group));
		munmap(gm, glen);
	}
	if (!err)
		memcpy(moat_xdp_tbl24(t->x), t->tbl24, MOAT_TBL24_ENTRIES * sizeof(__u32));
	u_tbl24 = t->tbl24;
	u_groups = t->groups;
	u_groups_max = t->groups_max;
	return err;
}

/* table_close - free and close (pinned state, if any, stays) */
static void table_close(struct table *t)
{
	free(t->tbl24);
	free(t->groups);
	moat_xdp_close(t->x);
	free(t->listed);
	memset(t, 0, sizeof(*t));
}

/* syn_frame - Ethernet/IPv4/TCP SYN from src to 198.18.1.1:dport */
static size_t syn_frame(uint8_t *f, const uint8_t dmac[6], __u32 src,
			uint16_t sport, uint16_t dport)
{
	uint8_t *ip = f + 14, *tcp = f + 34;
	__u32 s;

	memset(f, 0, 54);
	memcpy(f, dmac, 6);
	f[6] = 0x02;
	f[11] = 0x02;
	f[12] = 0x08;
	ip[0] = 0x45;
	moat_wr16(ip + 2, 40);
	moat_wr16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	moat_wr32(ip + 12, src);
	moat_wr32(ip + 16, 0xc6120101);
	moat_wr16(ip + 10, moat_csum_fold(moat_csum_words(ip, 10)));
	moat_wr16(tcp, sport);
	moat_wr16(tcp + 2, dport);
	moat_wr32(tcp + 4, 0x01020304);
	tcp[12] = 0x50;
	tcp[13] = MOAT_TCP_SYN;
	moat_wr16(tcp + 14, 65535);
	s = moat_csum_words(ip + 12, 4) + 6 + 20 + moat_csum_words(tcp, 10);
	moat_wr16(tcp + 16, moat_csum_fold(s));
	return 54;
}

/* ns_one - ns per BPF_PROG_TEST_RUN repeat of prog on one frame */
static double ns_one(int prog, const uint8_t *f, size_t len, __u32 repeat,
		     __u32 want)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f,
		    .data_size_in = (__u32)len, .repeat = repeat);

	if (bpf_prog_test_run_opts(prog, &o) || o.retval != want) {
		fprintf(stderr, "xdp_bench: test run failed (ret %u, want %u)\n",
			o.retval, want);
		exit(1);
	}
	return o.duration;
}

/* ns_calib - ns per repeat of the calibration program (1M repeats) */
static double ns_calib(void)
{
	uint8_t f[64] = { 0 };

	f[12] = 0x08;
	return ns_one(calib_fd, f, sizeof(f), 1000000, XDP_DROP);
}

/* unlisted_near - an unlisted address whose /24 has a group (2 reads) */
static __u32 unlisted_near(__u32 a)
{
	for (__u32 h = 0; h < 256; h++) {
		__u32 b = (a & ~0xffu) | h;

		if (moat_lookup_v4(NULL, b) == MOAT_ACT_PASS)
			return b;
	}
	return a ^ 0x80000000u;
}

/* user_lookups - the userspace baseline: the shared lookup over the
 * precomputed addresses, read in order (the loop of bench_table.c) */
static __attribute__((noinline)) __u64 user_lookups(const __u32 *addrs, __u32 n)
{
	__u64 sum = 0;

	for (__u32 i = 0; i < n; i++)
		sum += moat_lookup_v4(NULL, addrs[i]);
	return sum;
}

/* user_reads - the same loop, addresses only (its own cost) */
static __attribute__((noinline)) __u64 user_reads(const volatile __u32 *addrs, __u32 n)
{
	__u64 sum = 0;

	for (__u32 i = 0; i < n; i++)
		sum += addrs[i] & 3;
	return sum;
}

/* test_run_ns - one BPF_PROG_TEST_RUN of prog (repeat 1); its duration */
static int test_run_ns(int prog, double *ns)
{
	uint8_t f[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = 64,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(prog, &o))
		return -errno;
	*ns = (double)o.duration;
	return 0;
}

/*
 * lookup_costs - in-kernel and userspace ns per lookup over addrs, like
 * for like: the same table (the kernel's maps; userspace's dense copy of
 * it, and the kernel's own pages mapped), the same precomputed addresses
 * read in order on both sides, the same loop shape, rounds interleaved.
 * Each side's loop with the lookup taken out is measured too, so the
 * lookup's own cost (net) can be compared as well as the totals.
 */
static int lookup_costs(struct table *t, const __u32 *addrs, const char *tag)
{
	struct moat_lookup_bench *s = moat_xdp_sec_register() ? NULL
					: moat_lookup_bench__open();
	double kv[RUNS], lv[RUNS], uv[RUNS], ulv[RUNS], mv[RUNS], q[RUNS], qn[RUNS];
	double cv[RUNS];
	size_t gbytes = (size_t)t->groups_max * sizeof(struct moat_group);
	const struct moat_group *kg = mmap(NULL, gbytes, PROT_READ, MAP_SHARED,
					   moat_xdp_map_fd(t->x, "groups"), 0);
	__u64 want = 0, sum;
	int err;

	if (kg == MAP_FAILED)
		perror("xdp_bench: mmap groups");
	if (!s) {
		err = -ENOMEM;
		goto out;
	}
	s->rodata->n_chunks = N_LOOKUP / LB_CHUNK;
	s->rodata->moat_groups_max = t->groups_max;
	if ((err = bpf_map__set_max_entries(s->maps.addrs, N_LOOKUP / LB_CHUNK)) ||
	    (err = bpf_map__reuse_fd(s->maps.tbl24, moat_xdp_map_fd(t->x, "tbl24"))) ||
	    (err = bpf_map__reuse_fd(s->maps.groups, moat_xdp_map_fd(t->x, "groups"))) ||
	    (err = moat_lookup_bench__load(s)))
		goto out;
	/* the addresses, LB_CHUNK to a map value */
	for (__u32 i = 0; i < N_LOOKUP / LB_CHUNK; i++) {
		if (bpf_map_update_elem(bpf_map__fd(s->maps.addrs), &i,
					&addrs[(size_t)i * LB_CHUNK], 0)) {
			err = -errno;
			goto out;
		}
	}
	for (int r = 0; r < RUNS; r++) {
		uint64_t t0;

		if ((err = test_run_ns(bpf_program__fd(s->progs.moat_lookup_bench), &kv[r])) ||
		    (err = test_run_ns(bpf_program__fd(s->progs.moat_lookup_loop), &lv[r])))
			goto out;
		kv[r] /= N_LOOKUP;
		lv[r] /= N_LOOKUP;
		cv[r] = ns_calib();   /* the host's speed, between the two sides */
		t0 = moat_clock_ns();
		sum = user_lookups(addrs, N_LOOKUP);
		uv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
		t0 = moat_clock_ns();
		(void)user_reads(addrs, N_LOOKUP);
		ulv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
		if (r == 0)
			want = sum;
		/* the same lookup from userspace over the kernel's own pages */
		mv[r] = 0;
		if (kg != MAP_FAILED) {
			u_tbl24 = moat_xdp_tbl24(t->x);
			u_groups = kg;
			t0 = moat_clock_ns();
			sum = user_lookups(addrs, N_LOOKUP);
			mv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
			if (sum != want)
				fprintf(stderr, "xdp_bench: lookups over kernel pages disagree\n");
			u_tbl24 = t->tbl24;
			u_groups = t->groups;
		}
		q[r] = kv[r] / (uv[r] > 0 ? uv[r] : 1);
		qn[r] = (kv[r] - lv[r]) / (uv[r] - ulv[r] > 0 ? uv[r] - ulv[r] : 1);
	}
	if (s->bss->result != want)
		fprintf(stderr, "xdp_bench: kernel and userspace lookups disagree "
			"(%llu vs %llu)\n", (unsigned long long)s->bss->result,
			(unsigned long long)want);
	/* every round too: tools/bench.d/xdp sorts them by host speed */
	for (int r = 0; r < RUNS; r++)
		printf("round_lookup_%s %d %.2f %.2f %.2f\n", tag, r, kv[r], uv[r], cv[r]);
	printf("ratio_lookup_bpf_over_user_%s %.3f\n", tag, median(q, RUNS));
	printf("ns_lookup_calib_%s %.2f\n", tag, median(cv, RUNS));
	printf("ratio_lookup_bpf_over_user_net_%s %.3f\n", tag, median(qn, RUNS));
	printf("ns_lookup_bpf_%s %.2f\n", tag, median(kv, RUNS));
	printf("ns_lookup_bpf_loop_%s %.2f\n", tag, median(lv, RUNS));
	printf("ns_lookup_user_%s %.2f\n", tag, median(uv, RUNS));
	printf("ns_lookup_user_loop_%s %.2f\n", tag, median(ulv, RUNS));
	printf("ns_lookup_user_kmem_%s %.2f\n", tag, median(mv, RUNS));
	fflush(stdout);
out:
	if (kg != MAP_FAILED)
		munmap((void *)kg, gbytes);
	moat_lookup_bench__destroy(s);
	return err;
}

/*
 * one_size - every measurement at one table size.  The packet costs are
 * taken round-robin (bare, listed, calibration, unlisted, non-SMTP, bare,
 * ...) so load from elsewhere on the machine and the host's speed hit them
 * alike; every round and the medians are printed.
 */
static int one_size(int bare, __u32 n_entries, const char *tag, __u32 repeat)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 1 };
	static const char *const names[4] = { "bare", "listed_syn", "unlisted_syn",
					      "non_smtp" };
	uint8_t f[4][64];
	size_t len[4];
	__u32 want[4] = { XDP_DROP, XDP_DROP, XDP_PASS, XDP_PASS };
	static double v[4][PKT_RUNS_MAX], q[PKT_RUNS_MAX], cv[PKT_RUNS_MAX];
	struct table t;
	int err, prog, n = pkt_runs;

	err = table_open(&t, NULL, n_entries, N_LOOKUP);
	if (err) {
		fprintf(stderr, "xdp_bench: table of %u: %s\n", n_entries, strerror(-err));
		table_close(&t);
		return err;
	}
	printf("groups_%s %u\n", tag, t.ngroups);
	prog = moat_xdp_prog_fd(t.x);
	len[0] = syn_frame(f[0], dmac, t.listed[0], 1000, 25);
	len[1] = syn_frame(f[1], dmac, t.listed[0], 1000, 25);
	len[2] = syn_frame(f[2], dmac, unlisted_near(t.listed[0]), 1000, 25);
	len[3] = syn_frame(f[3], dmac, t.listed[0], 1000, 80);
	/* round r: bare, listed, the calibration program (which speed the
	 * host gave this round, next to the pair that makes the ratio),
	 * unlisted, non-SMTP */
	for (int r = 0; r < n; r++) {
		for (int k = 0; k < 4; k++) {
			v[k][r] = ns_one(k ? prog : bare, f[k], len[k], repeat, want[k]);
			if (k == 1)
				cv[r] = ns_calib();
		}
	}
	/* ratios per round first: a round's packets saw the same load and
	 * the same host speed */
	for (int r = 0; r < n; r++)
		q[r] = v[1][r] / (v[0][r] > 0 ? v[0][r] : 1);
	/* every round first (tools/bench.d/xdp sorts them by host speed),
	 * then the medians; v[] is sorted by median() */
	for (int r = 0; r < n; r++)
		printf("round_pkt_%s %d %.0f %.0f %.0f %.0f %.0f\n", tag, r, v[0][r],
		       v[1][r], v[2][r], v[3][r], cv[r]);
	printf("ratio_listed_syn_%s_over_bare %.3f\n", tag, median(q, n));
	printf("ns_calib_%s %.2f\n", tag, median(cv, n));
	for (int k = 0; k < 4; k++) {
		printf("ns_%s_%s_min %.2f\n", names[k], tag, min_d(v[k], n));
		printf("ns_%s_%s %.2f\n", names[k], tag, median(v[k], n));
	}
	fflush(stdout);
	/* the lookup's address stream, as bench_table.c builds it: half
	 * listed addresses, half random ones (which mostly miss) */
	__u32 *addrs = malloc(N_LOOKUP * sizeof(*addrs));

	if (!addrs) {
		table_close(&t);
		return -ENOMEM;
	}
	for (__u32 i = 0; i < N_LOOKUP; i++)
		addrs[i] = (i & 1) ? t.listed[rnd() % t.nlisted] : (__u32)rnd();
	err = lookup_costs(&t, addrs, tag);
	free(addrs);
	table_close(&t);
	return err;
}

/* cmd_testrun - the BPF_PROG_TEST_RUN part of the benchmark */
static int cmd_testrun(__u32 repeat, __u32 big)
{
	struct moat_bare_drop *bare = moat_bare_drop__open_and_load();
	struct moat_calib *calib = moat_calib__open_and_load();
	int err;

	if (!bare || !calib) {
		moat_bare_drop__destroy(bare);
		moat_calib__destroy(calib);
		return 1;
	}
	calib_fd = bpf_program__fd(calib->progs.moat_calib);
	printf("repeat %u\n", repeat);
	printf("lookup_addrs %u\n", N_LOOKUP);
	err = one_size(bpf_program__fd(bare->progs.moat_bare_drop), 1000, "1k", repeat);
	if (!err)
		err = one_size(bpf_program__fd(bare->progs.moat_bare_drop), big, "10m",
			       repeat);
	moat_bare_drop__destroy(bare);
	moat_calib__destroy(calib);
	return err ? 1 : 0;
}

/* write_frames - addrs (host order) to PREFIX.sources, and a trafgen
 * config of one SYN to port 25 from each to PREFIX.trafgen; -1 on error */
static int write_frames(const char *out, const uint8_t dmac[6], const __u32 *addrs, __u32 n)
{
	char path[4096];
	uint8_t f[64];
	FILE *fs, *ft;

	snprintf(path, sizeof(path), "%s.sources", out);
	fs = fopen(path, "w");
	snprintf(path, sizeof(path), "%s.trafgen", out);
	ft = fopen(path, "w");
	if (!fs || !ft) {
		if (fs)
			fclose(fs);
		if (ft)
			fclose(ft);
		return -1;
	}
	for (__u32 i = 0; i < n; i++) {
		size_t len = syn_frame(f, dmac, addrs[i], (uint16_t)(1024 + i % 60000), 25);

		fprintf(fs, "%u.%u.%u.%u\n", addrs[i] >> 24, (addrs[i] >> 16) & 255,
			(addrs[i] >> 8) & 255, addrs[i] & 255);
		fputc('{', ft);
		for (size_t j = 0; j < len; j++)
			fprintf(ft, "%s0x%02x", j ? "," : " ", f[j]);
		fputs(" }\n", ft);
	}
	return fclose(fs) | fclose(ft) ? -1 : 0;
}

/* write_updates - t's table as its update sequence (groups before the
 * tbl24 entries that name them) to path, raw; -1 on error */
static int write_updates(const struct table *t, const char *path)
{
	struct moat_update u;
	FILE *f = fopen(path, "w");
	int bad = 0;

	if (!f)
		return -1;
	for (__u32 i = 0; i < t->ngroups && !bad; i++) {
		memset(&u, 0, sizeof(u));
		u.kind = MOAT_UPD_GROUP;
		u.index = i;
		u.u.group = t->groups[i];
		bad = fwrite(&u, sizeof(u), 1, f) != 1;
	}
	for (__u32 i = 0; i < MOAT_TBL24_ENTRIES && !bad; i++) {
		if (!t->tbl24[i])
			continue;
		memset(&u, 0, sizeof(u));
		u.kind = MOAT_UPD_TBL24;
		u.index = i;
		u.value = t->tbl24[i];
		bad = fwrite(&u, sizeof(u), 1, f) != 1;
	}
	return (fclose(f) | bad) ? -1 : 0;
}

/* cmd_attach - pinned table + attach for the veth throughput runs; with
 * upd_path also its update sequence there */
static int cmd_attach(const char *pin, __u32 n, __u32 k, const char *out,
		      const char *dmac_s, const char *ifname, const char *upd_path)
{
	struct table t;
	uint8_t dmac[6];
	int err;

	if (sscanf(dmac_s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1],
		   &dmac[2], &dmac[3], &dmac[4], &dmac[5]) != 6)
		return 2;
	err = table_open(&t, pin, n, k);
	if (err || (err = moat_xdp_attach(t.x, ifname))) {
		fprintf(stderr, "xdp_bench: attach: %s\n", strerror(-err));
		table_close(&t);
		return 1;
	}
	if (write_frames(out, dmac, t.listed, t.nlisted) < 0)
		return 1;
	if (upd_path && write_updates(&t, upd_path) < 0) {
		fprintf(stderr, "xdp_bench: attach: writing %s: %s\n", upd_path, strerror(errno));
		table_close(&t);
		return 1;
	}
	printf("attached %s entries=%u groups=%u sources=%u\n", ifname, n,
	       t.ngroups, t.nlisted);
	table_close(&t);
	return 0;
}

/* read_sources - up to max dotted IPv4 addresses, one a line, into a
 * (network byte order); the count, or -errno (-EINVAL: a bad line) */
static long read_sources(const char *path, __u32 *a, __u32 max)
{
	char line[64];
	long n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (inet_pton(AF_INET, line, &a[n]) != 1) {
			fclose(f);
			return -EINVAL;
		}
		n++;
	}
	fclose(f);
	return n;
}

/* cmd_frames - the veth runs' trafgen config for a table built elsewhere
 * (moat-controld's): the first K addresses of SRC_FILE, as cmd_attach
 * writes them for its own table; 1 on failure */
static int cmd_frames(const char *src_path, __u32 k, const char *out, const char *dmac_s)
{
	uint8_t dmac[6];
	__u32 *a;
	long n;

	if (sscanf(dmac_s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dmac[0], &dmac[1], &dmac[2],
		   &dmac[3], &dmac[4], &dmac[5]) != 6 || !k)
		return 2;
	a = calloc(k, sizeof(*a));
	if (!a)
		return 1;
	n = read_sources(src_path, a, k);
	if (n <= 0) {
		fprintf(stderr, "xdp_bench: frames: %s: %s\n", src_path, n ? strerror((int)-n) : "empty");
		free(a);
		return 1;
	}
	for (long i = 0; i < n; i++)
		a[i] = ntohl(a[i]);
	if (write_frames(out, dmac, a, (__u32)n) < 0) {
		fprintf(stderr, "xdp_bench: frames: writing %s.*: %s\n", out, strerror(errno));
		free(a);
		return 1;
	}
	printf("frames %ld\n", n);
	free(a);
	return 0;
}

/*
 * cmd_spread - the per-packet cost with a different source per packet,
 * spread over the whole table: the program moat-controld attached (from
 * its pinned link, so its own maps: the table it built and published)
 * behind spread.bpf.c, which writes the next source of the file into the
 * frame and tail-calls it, against the same wrapper tail-calling the bare
 * drop.  Every source must be listed (DROP): a PASS fails the run.
 * Rounds alternate the two; per-round ratios, medians.  1 on failure.
 */
static int cmd_spread(const char *link_path, const char *src_path, const char *tag,
		      __u32 repeat)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 1 };
	static double vm[PKT_RUNS_MAX], vb[PKT_RUNS_MAX], q[PKT_RUNS_MAX];
	struct bpf_link_info li = { 0 };
	__u32 lilen = sizeof(li), *src = NULL, *keys = NULL, zero = 0, nb;
	struct moat_bare_drop *bare = NULL;
	struct moat_spread *sp = NULL;
	int link_fd = -1, moat_fd = -1, bare_fd, sp_fd, next_fd, err = 1;
	uint8_t f[64];
	size_t len;
	long n;

	link_fd = bpf_obj_get(link_path);
	if (link_fd < 0 || bpf_obj_get_info_by_fd(link_fd, &li, &lilen) ||
	    (moat_fd = bpf_prog_get_fd_by_id(li.prog_id)) < 0) {
		fprintf(stderr, "xdp_bench: spread: moat's program from %s: %s\n", link_path,
			strerror(errno));
		goto out;
	}
	src = malloc((1u << 22) * sizeof(*src));
	keys = malloc((1u << 22) * sizeof(*keys));
	if (!src || !keys)
		goto out;
	n = read_sources(src_path, src, 1u << 22);
	if (n <= 0) {
		fprintf(stderr, "xdp_bench: spread: %s: %s\n", src_path,
			n ? strerror((int)-n) : "no addresses");
		goto out;
	}
	bare = moat_bare_drop__open_and_load();
	sp = moat_spread__open();
	if (!bare || !sp)
		goto out;
	sp->rodata->nsrc = (__u32)n;
	if (moat_spread__load(sp))
		goto out;
	for (long i = 0; i < n; i++)
		keys[i] = (__u32)i;
	nb = (__u32)n;
	if (bpf_map_update_batch(bpf_map__fd(sp->maps.spread_src), keys, src, &nb, NULL) ||
	    nb != (__u32)n) {
		fprintf(stderr, "xdp_bench: spread: sources into the map: %s\n", strerror(errno));
		goto out;
	}
	bare_fd = bpf_program__fd(bare->progs.moat_bare_drop);
	sp_fd = bpf_program__fd(sp->progs.moat_spread);
	next_fd = bpf_map__fd(sp->maps.spread_next);
	len = syn_frame(f, dmac, ntohl(src[0]), 1000, 25);
	for (int r = 0; r < pkt_runs; r++) {
		if (bpf_map_update_elem(next_fd, &zero, &moat_fd, BPF_ANY)) {
			fprintf(stderr, "xdp_bench: spread: tail call to moat's program: %s\n",
				strerror(errno));
			goto out;
		}
		vm[r] = ns_one(sp_fd, f, len, repeat, XDP_DROP);
		if (bpf_map_update_elem(next_fd, &zero, &bare_fd, BPF_ANY))
			goto out;
		vb[r] = ns_one(sp_fd, f, len, repeat, XDP_DROP);
		q[r] = vm[r] / (vb[r] > 0 ? vb[r] : 1);
		printf("round_spread_%s %d %.0f %.0f\n", tag, r, vb[r], vm[r]);
	}
	printf("spread_sources_%s %ld\n", tag, n);
	printf("ratio_listed_syn_%s_spread_over_bare %.3f\n", tag, median(q, pkt_runs));
	printf("ns_listed_syn_%s_spread %.2f\n", tag, median(vm, pkt_runs));
	printf("ns_bare_spread_%s %.2f\n", tag, median(vb, pkt_runs));
	err = 0;
out:
	if (err)
		fprintf(stderr, "xdp_bench: spread failed\n");
	moat_spread__destroy(sp);
	moat_bare_drop__destroy(bare);
	if (moat_fd >= 0)
		close(moat_fd);
	if (link_fd >= 0)
		close(link_fd);
	free(src);
	free(keys);
	return err;
}

/* rand6 - a random address over 2000::/3 */
static void rand6(uint8_t a[16])
{
	uint64_t x = rnd();

	v6mix_addr(a, x, rnd());
}

/* map_value - the one value of an mmapable array map, mapped rw */
static void *map_value(struct bpf_map *m, size_t bytes)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (bytes + pg - 1) & ~(pg - 1), PROT_READ | PROT_WRITE,
		       MAP_SHARED, bpf_map__fd(m), 0);

	return p == MAP_FAILED ? NULL : p;
}

/* thp_copy - len bytes of p in fresh MADV_HUGEPAGE memory (NULL: out of
 * memory); never freed (the process ends) */
static void *thp_copy(const void *p, size_t len)
{
	size_t hp = 2u << 20, n = (len + hp - 1) & ~(hp - 1);
	void *q = aligned_alloc(hp, n);

	if (!q)
		return NULL;
	(void)madvise(q, n, MADV_HUGEPAGE);
	memcpy(q, p, len);
	return q;
}

static __attribute__((noinline)) uint64_t user_lookups6(const struct vt_trie6_mem *m,
						       uint8_t (*q)[16], size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += vt_trie6_lookup_inline(m, q[i]);
	return s;
}

static const char *tag_of(size_t n, char *buf, size_t len)
{
	if (n % 1000000 == 0)
		snprintf(buf, len, "%zum", n / 1000000);
	else if (n % 1000 == 0)
		snprintf(buf, len, "%zuk", n / 1000);
	else
		snprintf(buf, len, "%zu", n);
	return buf;
}

/*
 * cmd_lookup6 - the IPv6 trie lookup in the kernel: bpf/lookup6_bench.bpf.c
 * over a trie of n entries of the bench mix (bench_v6mix.h, all DROP)
 * written by lib/vt_trie6.c into its maps' mmap'd values; 2^20 addresses,
 * half inside a listed entry, half random over 2000::/3; per round the
 * lookup program, the same loop without the lookup, and the same lookup in
 * userspace over the kernel's pages; medians.  The sums must agree and
 * every listed address be DROP, else 1.  Prints ns_lookup_bpf_v6_TAG,
 * ns_lookup_bpf_v6_loop_TAG, ns_lookup_user_v6_TAG and
 * v6_trie_bytes_per_entry_TAG (TAG: 10k, 100k, 1m, ...).
 */
static int cmd_lookup6(size_t n, int runs)
{
	int err;
	struct moat_lookup6_bench *s;
	struct vt_trie6_mem mem;
	struct vt_trie6 *t;
	struct vt_trie6_stats st;
	uint8_t (*q)[16];
	double kv[RUNS], lv[RUNS], uv[RUNS], hv[RUNS];
	uint64_t usum = 0;
	char tag[32];
	struct vt_trie6_mem hm;
	const char *rbs = getenv("XDP_BENCH_V6_ROOT_BITS");
	size_t rlen;

	mem.nodes_max = (uint32_t)(n / 32 + 16384);
	mem.buckets_max = (uint32_t)(n + n / 2 + 4096);
	/* the root the XDP backend takes for n rules; XDP_BENCH_V6_ROOT_BITS
	 * (16 or 24) forces one, for an A/B of the two in one run */
	mem.root_bits = rbs ? (uint32_t)atoi(rbs) : vt_trie6_root_bits_for(n);
	if (mem.root_bits != MOAT_V6T_ROOT_BITS && mem.root_bits != MOAT_V6T_ROOT_BITS_WIDE) {
		fprintf(stderr, "xdp_bench lookup6: XDP_BENCH_V6_ROOT_BITS: 16 or 24\n");
		return 1;
	}
	rlen = vt_trie6_root_entries(mem.root_bits) * 4;
	if (!(s = moat_lookup6_bench__open())) {
		fprintf(stderr, "xdp_bench lookup6: open: %s\n", strerror(errno));
		return 1;
	}
	s->rodata->moat_v6t_rootbits = mem.root_bits;
	s->rodata->moat_v6t_nodes_max = mem.nodes_max;
	s->rodata->moat_v6t_buckets_max = mem.buckets_max;
	s->rodata->n_chunks = N_LOOKUP / LB6_CHUNK;
	if ((err = bpf_map__set_value_size(s->maps.v6t_root, (__u32)rlen)) ||
	    (err = bpf_map__set_value_size(s->maps.v6t_nodes,
					   mem.nodes_max * sizeof(struct moat_v6_node))) ||
	    (err = bpf_map__set_value_size(s->maps.v6t_buckets,
					   mem.buckets_max * sizeof(struct moat_v6_bucket))) ||
	    (err = bpf_map__set_max_entries(s->maps.addrs6, N_LOOKUP / LB6_CHUNK)) ||
	    (err = moat_lookup6_bench__load(s))) {
		fprintf(stderr, "xdp_bench lookup6: load: %s\n", strerror(-err));
		return 1;
	}
	mem.root = map_value(s->maps.v6t_root, rlen);
	mem.nodes = map_value(s->maps.v6t_nodes, mem.nodes_max * sizeof(struct moat_v6_node));
	mem.buckets = map_value(s->maps.v6t_buckets,
				mem.buckets_max * sizeof(struct moat_v6_bucket));
	q = malloc((size_t)N_LOOKUP * 16);
	uint8_t (*ea)[16] = malloc(n * 16);
	uint8_t *ep = malloc(n);

	if (!mem.root || !mem.nodes || !mem.buckets || !q || !ea || !ep ||
	    !(t = vt_trie6_new(&mem))) {
		fprintf(stderr, "xdp_bench lookup6: mmap/alloc: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		ep[i] = (uint8_t)v6mix_plen(i, rnd());
		rand6(ea[i]);
		if ((err = vt_trie6_put(t, ea[i], ep[i], MOAT_ACT_DROP)) < 0) {
			fprintf(stderr, "xdp_bench lookup6: trie put %zu: %s\n", i, strerror(-err));
			return 1;
		}
	}
	vt_trie6_grace_done(t);
	vt_trie6_stats(t, &st);
	for (uint32_t i = 0; i < N_LOOKUP; i++) {
		if (i & 1) {
			size_t e = rnd() % n;
			uint8_t x[16];

			rand6(x);
			v6mix_inside(ea[e], ep[e], x, q[i]);
		} else {
			rand6(q[i]);
		}
	}
	/* every listed address DROP (checked once, outside the timing) */
	for (uint32_t i = 1; i < N_LOOKUP; i += 2)
		if (vt_trie6_lookup(&mem, q[i]) != MOAT_ACT_DROP) {
			fprintf(stderr, "xdp_bench lookup6: listed address %u not DROP\n", i);
			return 1;
		}
	for (uint32_t i = 0; i < N_LOOKUP / LB6_CHUNK; i++)
		if (bpf_map_update_elem(bpf_map__fd(s->maps.addrs6), &i,
					q[(size_t)i * LB6_CHUNK], 0)) {
			fprintf(stderr, "xdp_bench lookup6: addrs6: %s\n", strerror(errno));
			return 1;
		}
	/* the same trie copied into MADV_HUGEPAGE memory: what the kernel's
	 * 4 KiB pages of the map values cost, told apart from the code */
	hm = mem;
	hm.root = thp_copy(mem.root, rlen);
	hm.nodes = thp_copy(mem.nodes, mem.nodes_max * sizeof(struct moat_v6_node));
	hm.buckets = thp_copy(mem.buckets, mem.buckets_max * sizeof(struct moat_v6_bucket));
	if (!hm.root || !hm.nodes || !hm.buckets) {
		fprintf(stderr, "xdp_bench lookup6: copy: %s\n", strerror(errno));
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		uint64_t t0;

		if ((err = test_run_ns(bpf_program__fd(s->progs.moat_lookup6_bench), &kv[r])) ||
		    (err = test_run_ns(bpf_program__fd(s->progs.moat_lookup6_loop), &lv[r]))) {
			fprintf(stderr, "xdp_bench lookup6: test run: %s\n", strerror(-err));
			return 1;
		}
		kv[r] /= N_LOOKUP;
		lv[r] /= N_LOOKUP;
		t0 = moat_clock_ns();
		usum = user_lookups6(&mem, q, N_LOOKUP);
		uv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
		t0 = moat_clock_ns();
		if (user_lookups6(&hm, q, N_LOOKUP) != usum) {
			fprintf(stderr, "xdp_bench lookup6: the copy disagrees\n");
			return 1;
		}
		hv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
	}
	if (s->bss->result != usum) {
		fprintf(stderr, "xdp_bench lookup6: kernel sum %llu, userspace %llu\n",
			(unsigned long long)s->bss->result, (unsigned long long)usum);
		return 1;
	}
	tag_of(n, tag, sizeof(tag));
	printf("v6_trie_entries_%s %zu\n", tag, st.rules);
	printf("v6_trie_root_bits_%s %u\n", tag, moat_v6t_root_bits(mem.root_bits));
	printf("v6_trie_nodes_%s %u\nv6_trie_buckets_%s %u\n", tag, st.nodes, tag, st.buckets);
	printf("v6_trie_bytes_per_entry_%s %.2f\n", tag, (double)st.bytes / (double)n);
	printf("ns_lookup_bpf_v6_%s %.2f\n", tag, median(kv, runs));
	printf("ns_lookup_bpf_v6_loop_%s %.2f\n", tag, median(lv, runs));
	printf("ns_lookup_user_v6_%s %.2f\n", tag, median(uv, runs));
	printf("ns_lookup_user_v6_thp_%s %.2f\n", tag, median(hv, runs));
	vt_trie6_free(t);
	moat_lookup6_bench__destroy(s);
	free(q);
	free(ea);
	free(ep);
	return 0;
}


/* syn6_frame - Ethernet/IPv6/TCP SYN from src to 2001:db8::1 port dport */
static size_t syn6_frame(uint8_t *f, const uint8_t dmac[6], const uint8_t src[16],
			 uint16_t dport)
{
	uint8_t *ip = f + 14, *tcp = f + 54;
	__u32 s;

	memset(f, 0, 74);
	memcpy(f, dmac, 6);
	f[6] = 0x02;
	f[11] = 0x02;
	f[12] = 0x86;
	f[13] = 0xdd;
	ip[0] = 0x60;
	moat_wr16(ip + 4, 20);
	ip[6] = 6;
	ip[7] = 64;
	memcpy(ip + 8, src, 16);
	ip[24] = 0x20;
	ip[25] = 0x01;
	ip[26] = 0x0d;
	ip[27] = 0xb8;
	ip[39] = 1;
	moat_wr16(tcp, 1000);
	moat_wr16(tcp + 2, dport);
	moat_wr32(tcp + 4, 0x01020304);
	tcp[12] = 0x50;
	tcp[13] = MOAT_TCP_SYN;
	moat_wr16(tcp + 14, 65535);
	s = moat_csum_words(ip + 8, 16) + 6 + 20 + moat_csum_words(tcp, 10);
	moat_wr16(tcp + 16, moat_csum_fold(s));
	return 74;
}

/* by_plen_desc - V6_PUT updates longest prefix first (moat_abi.h
 * PUBLISHING ORDER 3: one grace period per length, not per update) */
static int by_plen_desc(const void *a, const void *b)
{
	const struct moat_update *x = a, *y = b;

	return (int)y->u.key.plen - (int)x->u.key.plen;
}

/*
 * cmd_syn6 - moat_xdp on IPv6 SYN frames with n IPv6 entries of the bench
 * mix (bench_v6mix.h, DROP) published through moat_xdp_publish (the trie
 * and the rules by key, as moat-controld's publishes go), against
 * moat_bare_drop on the same frame: per round bare, listed (a source
 * inside a listed /128), unlisted (a random source); medians.  The
 * listed frame must be dropped and the unlisted one passed, else 1.
 * Prints ns_listed_syn_v6_TAG, ns_unlisted_syn_v6_TAG, ns_bare_v6_TAG,
 * ratio_listed_syn_v6_TAG_over_bare and ms_publish_v6_TAG.
 */
static int cmd_syn6(size_t n, __u32 repeat)
{
	static const uint8_t dmac[6] = { 0x02, 0, 0, 0, 0, 1 };
	struct moat_bare_drop *bare = moat_bare_drop__open_and_load();
	struct moat_xdp_opts o;
	struct moat_xdp *x = NULL;
	struct moat_update *u = calloc(n, sizeof(*u));
	static double vb[PKT_RUNS_MAX], vl[PKT_RUNS_MAX], vu[PKT_RUNS_MAX], q[PKT_RUNS_MAX];
	uint8_t fl[80], fu[80], src[16] = { 0 }, r16[16];
	size_t ll, lu, listed = n;
	char tag[32];
	uint64_t t0;
	int err, prog;

	if (!bare || !u)
		return 1;
	moat_xdp_opts_default(&o);
	o.pin_dir = NULL;   /* nothing pinned: the bench leaves no trace */
	o.v6_max = (uint32_t)(n + n / 8 + 1024);
	if ((err = moat_xdp_open(&o, &x))) {
		fprintf(stderr, "xdp_bench syn6: open: %s\n", strerror(-err));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned plen = v6mix_plen(i, rnd());

		rand6(r16);
		v6mix_inside(r16, plen, (const uint8_t[16]){ 0 }, u[i].u.key.addr);
		u[i].kind = MOAT_UPD_V6_PUT;
		u[i].u.key.plen = plen;
		u[i].value = MOAT_ACT_DROP;
		if (plen == 128 && listed == n)
			listed = i;
	}
	if (listed == n)
		return 1;
	memcpy(src, u[listed].u.key.addr, 16);
	qsort(u, n, sizeof(*u), by_plen_desc);
	t0 = moat_clock_ns();
	if ((err = moat_xdp_publish(x, u, n))) {
		fprintf(stderr, "xdp_bench syn6: publish: %s\n", strerror(-err));
		return 1;
	}
	tag_of(n, tag, sizeof(tag));
	printf("ms_publish_v6_%s %.1f\n", tag, (double)(moat_clock_ns() - t0) / 1e6);
	prog = moat_xdp_prog_fd(x);
	ll = syn6_frame(fl, dmac, src, 25);
	rand6(r16);
	lu = syn6_frame(fu, dmac, r16, 25);
	for (int r = 0; r < pkt_runs; r++) {
		vb[r] = ns_one(bpf_program__fd(bare->progs.moat_bare_drop), fl, ll,
			       repeat, XDP_DROP);
		vl[r] = ns_one(prog, fl, ll, repeat, XDP_DROP);
		vu[r] = ns_one(prog, fu, lu, repeat, XDP_PASS);
		q[r] = vl[r] / (vb[r] > 0 ? vb[r] : 1);
	}
	printf("ratio_listed_syn_v6_%s_over_bare %.3f\n", tag, median(q, pkt_runs));
	printf("ns_bare_v6_%s %.2f\n", tag, median(vb, pkt_runs));
	printf("ns_listed_syn_v6_%s %.2f\n", tag, median(vl, pkt_runs));
	printf("ns_unlisted_syn_v6_%s %.2f\n", tag, median(vu, pkt_runs));
	moat_xdp_close(x);
	moat_bare_drop__destroy(bare);
	free(u);
	return 0;
}

/* usage - the --help text */
static void usage(FILE *f)
{
	fprintf(f, "usage: xdp_bench testrun [--repeat N] [--big N] [--rounds N] "
		   "[--event-sample N]\n"
		   "       xdp_bench attach --pin DIR --entries N --sources K "
		   "--out PREFIX --dmac MAC [--updates FILE] IFACE\n"
		   "       xdp_bench spread --link PINNED_LINK --src-file FILE --tag TAG "
		   "[--repeat N] [--rounds N]\n"
		   "       xdp_bench lookup6 [--entries N] [--rounds N]\n"
		   "       xdp_bench syn6 [--entries N] [--repeat N] [--rounds N]\n"
		   "       xdp_bench frames --src-file FILE --sources K --out PREFIX --dmac MAC\n"
		   "       xdp_bench --help | --version\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "repeat", required_argument, 0, 'r' },
		{ "big", required_argument, 0, 'b' },
		{ "event-sample", required_argument, 0, 'e' },
		{ "rounds", required_argument, 0, 'R' },
		{ "pin", required_argument, 0, 'p' },
		{ "entries", required_argument, 0, 'n' },
		{ "sources", required_argument, 0, 'k' },
		{ "out", required_argument, 0, 'o' },
		{ "dmac", required_argument, 0, 'm' },
		{ "link", required_argument, 0, 'l' },
		{ "src-file", required_argument, 0, 's' },
		{ "tag", required_argument, 0, 't' },
		{ "updates", required_argument, 0, 'u' },
		{ "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, 'V' },
		{ 0, 0, 0, 0 },
	};
	__u32 repeat = 1000000, big = 10000000, n = 1000, k = 1000, n6 = 0;
	int rounds6 = RUNS;
	const char *pin = NULL, *out = NULL, *dmac = NULL, *link = NULL, *srcf = NULL;
	const char *tag = "10m", *upd = NULL;
	int c;

	log_init("xdp_bench", 0);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'r': repeat = (__u32)strtoul(optarg, NULL, 0); break;
		case 'b': big = (__u32)strtoul(optarg, NULL, 0); break;
		case 'e': event_sample = strtol(optarg, NULL, 0); break;
		case 'R':
			pkt_runs = rounds6 = atoi(optarg);
			if (pkt_runs < 1 || pkt_runs > PKT_RUNS_MAX) {
				fprintf(stderr, "xdp_bench: --rounds 1..%d\n", PKT_RUNS_MAX);
				return 2;
			}
			break;
		case 'p': pin = optarg; break;
		case 'n': n = n6 = (__u32)strtoul(optarg, NULL, 0); break;
		case 'k': k = (__u32)strtoul(optarg, NULL, 0); break;
		case 'o': out = optarg; break;
		case 'm': dmac = optarg; break;
		case 'l': link = optarg; break;
		case 's': srcf = optarg; break;
		case 't': tag = optarg; break;
		case 'u': upd = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xdp_bench %s\n", MOAT_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "testrun"))
		return cmd_testrun(repeat, big);
	if (optind < argc && !strcmp(argv[optind], "syn6"))
		return cmd_syn6(n6 ? n6 : 1000000, repeat) ? 1 : 0;
	if (optind < argc && !strcmp(argv[optind], "lookup6"))
		return cmd_lookup6(n6 ? n6 : 1000000, rounds6);
	if (optind < argc && !strcmp(argv[optind], "spread") && link && srcf)
		return cmd_spread(link, srcf, tag, repeat);
	if (optind < argc && !strcmp(argv[optind], "frames") && srcf && out && dmac && k)
		return cmd_frames(srcf, k, out, dmac);
	if (optind + 1 < argc && !strcmp(argv[optind], "attach") && pin && out && dmac)
		return cmd_attach(pin, n, k, out, dmac, argv[optind + 1], upd);
	usage(stderr);
	return 2;
}
