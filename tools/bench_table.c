/*
 * bench_table.c - benchmark of the verdict table (tools/bench table).
 *
 * For 1k, 1M and 10M random IPv4 /32s (plus 50k random /20../31 prefixes
 * and 100k IPv6 entries in the same table): build (replace + full publish)
 * time, compiled memory, bytes per entry, lookup time through the inline
 * lookup of bpf/moat_lookup.h, and in the same run two memory floors,
 * same loop shape, their buffers given huge pages the way the table's are
 * (vt_thp: MADV_HUGEPAGE from 4 MiB up; the JSON says whether the kernel
 * honours it, thp_madvise):
 *   mem_floor_ns       independent random 4-byte reads from a buffer as
 *                      large as the compiled table (one read per lookup)
 *   mem_floor_dep2_ns  independent pairs of dependent random reads: a
 *                      4-byte read from a tbl24-sized buffer gives the index
 *                      of a group in a buffer the size of the table's group
 *                      array, one byte of which is read (what a lookup of
 *                      an address in a non-uniform /24 does)
 * At 10M also the time to apply and publish 1,000 changes.
 *
 * IPv6 alone at 10k, 100k and 1M entries (v6_*): the mix 10% /32../48
 * (length uniform), 40% /64, 50% /128, addresses random over 2000::/3,
 * all listed DROP; lookups half listed (a random address inside a random
 * entry), half random over 2000::/3, through the trie every reader uses
 * (vt_view_lookup_v6, bpf/moat_trie6.h) and, as the baseline, the
 * per-prefix-length rules the XDP and DPDK paths still read
 * (vt_view_lookup_v6_rules), timed in CPU time (the machine is shared:
 * wall time counts preemption).  v6_bytes_per_entry is the trie's memory
 * (root + nodes + buckets in use) per entry; v6_over_v4_10m the trie's
 * lookup at 1M over the IPv4 lookup at 10M, both in CPU time, batch by
 * batch: the 10M IPv4 table is kept, and each IPv6 1M batch follows an
 * IPv4 batch of the same shape (batch4: addresses made, then timed; the
 * per-length rules are timed in a pass of their own after), the median
 * of the 11 per-batch ratios (target <= 1.5;
 * v4_10m_lookup_cpu_ns_beside_v6 the IPv4 side; v6_over_v4_10m_apart the
 * older figure, against lookup_cpu_ns_10m of the IPv4 phase).  Every
 * listed address must come out DROP and both layouts agree on every
 * address looked up, else the bench fails.
 *
 * Prints a table and writes flat JSON to argv[1].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "vt_internal.h" /* vt_thp: the floors get the table's pages */
#include "vtable.h"
#include "vt_view.h" /* the fast path's lookup over the image, inline */
#include "bench_v6mix.h"

#define BATCH (1u << 20)
#define NBATCH 11

static uint64_t rs = 0x853c49e6748fea9bull;

/* rnd - xorshift64*. */
static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 2685821657736338717ull;
}

/* now_s - monotonic seconds. */
static double now_s(void)
{
	return (double)moat_clock_ns() * 1e-9;
}

/* cpu_s - CPU seconds of this process (less noisy than wall time on a
 * shared machine). */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* cmp_dbl / cmp_u32 - qsort helpers. */
static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* cmp_u32 / cmp_u64 - ascending. */
static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* median - of n doubles (sorts them). */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return v[n / 2];
}

/* file_mb - the "key: N kB" line of a /proc file in MB. */
static double file_mb(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[256];
	double kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    sscanf(line + strlen(key), "%lf", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/* status_mb - the "key: N kB" line of /proc/self/status in MB. */
static double status_mb(const char *key)
{
	return file_mb("/proc/self/status", key);
}

/* thp_mb - anonymous memory on huge pages now (which page kind the
 * tables a lookup loop reads got: the IPv4 and IPv6 ratios compare like
 * with like only when both are on huge pages, or both not) */
static double thp_mb(void)
{
	return file_mb("/proc/self/smaps_rollup", "AnonHugePages:");
}

/* rss_mb - resident set size now. */
static double rss_mb(void)
{
	return status_mb("VmRSS:");
}

/* count_emit - a fast path that takes every chunk (the updates are
 * counted by vt_db_publish_cb). */
static int count_emit(void *ctx, const struct moat_update *u, size_t n)
{
	(void)ctx;
	(void)u;
	(void)n;
	return 0;
}

/* touch_floor - seconds to malloc and first-touch bytes (page faults
 * are a large part of building a big table on a fresh heap). */
static double touch_floor(double bytes)
{
	size_t n = bytes > 0 ? (size_t)bytes : 0;
	double t0 = now_s();
	volatile char *p = n ? malloc(n) : NULL;

	for (size_t i = 0; p && i < n; i += 4096)
		p[i] = 1;
	t0 = now_s() - t0;
	free((void *)p);
	return t0;
}

/* l4 - an IPv4 listing. */
static void l4(struct moat_listing *l, uint16_t src, uint32_t a, unsigned plen,
	       uint32_t code)
{
	memset(l, 0, sizeof(*l));
	l->pfx.family = MOAT_AF_INET;
	l->pfx.plen = (uint8_t)plen;
	l->pfx.addr[0] = (uint8_t)(a >> 24);
	l->pfx.addr[1] = (uint8_t)(a >> 16);
	l->pfx.addr[2] = (uint8_t)(a >> 8);
	l->pfx.addr[3] = (uint8_t)a;
	l->code = code;
	l->source = src;
}

/* uniq_addrs - n distinct random IPv4 addresses, sorted then shuffled. */
static uint32_t *uniq_addrs(size_t n)
{
	uint32_t *a = malloc((n + n / 8 + 16) * sizeof(*a));
	size_t k = 0, m = n + n / 8 + 16;

	if (!a)
		return NULL;
	for (;;) {
		for (size_t i = k; i < m; i++)
			a[i] = (uint32_t)rnd();
		qsort(a, m, sizeof(*a), cmp_u32);
		k = 0;
		for (size_t i = 0; i < m; i++)
			if (i == 0 || a[i] != a[k - 1])
				a[k++] = a[i];
		if (k >= n)
			break;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1);
		uint32_t t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
	return a;
}

struct result {
	double apply6_ms, build_cpu_s, build_s, fault_floor_s, extras_s, replace_s, publish_s, compiled_mb, bpe, lookup_ns,
	       floor_ns, ratio, rss_mb, store_mb, apply_ms, v6_lookup_ns, dep2_ns, ratio_dep2,
	       lookup_cpu_ns, thp_mb;
	size_t updates;
};

/* batch4 - one batch of IPv4 lookups: BATCH addresses into q, half
 * listed, then the timed loop; mean ns per lookup, wall and CPU time. */
static uint32_t batch4(const struct vt_image_view *v, const uint32_t *listed,
		       size_t nlisted, uint32_t *q, double *ns, double *cpu_ns)
{
	uint32_t acc = 0;
	double t0, c0;

	for (size_t i = 0; i < BATCH; i++)
		q[i] = (i & 1) ? listed[rnd() % nlisted] : (uint32_t)rnd();
	t0 = now_s();
	c0 = cpu_s();
	for (size_t i = 0; i < BATCH; i++)
		acc += vt_view_lookup_v4(v, q[i]);
	*ns = (now_s() - t0) * 1e9 / BATCH;
	*cpu_ns = (cpu_s() - c0) * 1e9 / BATCH;
	return acc;
}

/* bench_lookup - median over batches of the mean ns per lookup; half the
 * addresses listed. */
static double bench_lookup(const struct vt_image *img, const uint32_t *listed,
			   size_t nlisted, uint32_t *sink, double *cpu_ns)
{
	uint32_t *q = malloc(BATCH * sizeof(*q));
	double t[NBATCH], tc[NBATCH];
	uint32_t acc = 0;
	struct vt_image_view v;

	vt_image_view(img, &v);
	for (int b = 0; b < NBATCH; b++)
		acc += batch4(&v, listed, nlisted, q, &t[b], &tc[b]);
	*sink += acc;
	free(q);
	*cpu_ns = median(tc, NBATCH);
	return median(t, NBATCH);
}

/* bench_floor - same loop shape over a buffer of bytes size: independent
 * random 4-byte reads. */
static double bench_floor(size_t bytes, uint32_t *sink)
{
	size_t n = bytes / 4;
	uint32_t *buf = malloc(n * sizeof(*buf));
	uint32_t *q = malloc(BATCH * sizeof(*q));
	double t[NBATCH];
	uint32_t acc = 0;

	vt_thp(buf, n * sizeof(*buf));
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint32_t)i;
	for (int b = 0; b < NBATCH; b++) {
		double t0;

		for (size_t i = 0; i < BATCH; i++)
			q[i] = (uint32_t)(rnd() % n);
		t0 = now_s();
		for (size_t i = 0; i < BATCH; i++)
			acc += buf[q[i]];
		t[b] = (now_s() - t0) * 1e9 / BATCH;
	}
	*sink += acc;
	free(buf);
	free(q);
	return median(t, NBATCH);
}

/* bench_floor_dep2 - independent pairs of dependent random reads: tbl24
 * (MOAT_TBL24_ENTRIES 4-byte entries holding random group indices), then
 * one byte of that group in an array of ngroups groups; the same loop shape
 * and huge-page advice as the table.  Median ns per pair. */
static double bench_floor_dep2(uint32_t ngroups, uint32_t *sink)
{
	uint32_t *t24 = malloc(MOAT_TBL24_ENTRIES * sizeof(*t24));
	struct moat_group *g;
	uint32_t *q = malloc(BATCH * sizeof(*q));
	double t[NBATCH];
	uint32_t acc = 0;

	if (!ngroups)
		ngroups = 1;
	g = malloc((size_t)ngroups * sizeof(*g));
	if (!t24 || !g || !q) {
		free(t24);
		free(g);
		free(q);
		return -1;
	}
	vt_thp(t24, MOAT_TBL24_ENTRIES * sizeof(*t24));
	vt_thp(g, (size_t)ngroups * sizeof(*g));
	for (size_t i = 0; i < MOAT_TBL24_ENTRIES; i++)
		t24[i] = (uint32_t)(rnd() % ngroups);
	for (size_t i = 0; i < ngroups; i++)
		memset(g[i].bits, (int)i, sizeof(g[i].bits));
	for (int b = 0; b < NBATCH; b++) {
		double t0;

		for (size_t i = 0; i < BATCH; i++)
			q[i] = (uint32_t)rnd();
		t0 = now_s();
		for (size_t i = 0; i < BATCH; i++)
			acc += g[t24[q[i] >> 8]].bits[q[i] & (MOAT_GROUP_BYTES - 1)];
		t[b] = (now_s() - t0) * 1e9 / BATCH;
	}
	*sink += acc;
	free(t24);
	free(g);
	free(q);
	return median(t, NBATCH);
}

/* thp_madvise - 1 when the kernel gives huge pages to MADV_HUGEPAGE
 * ranges (transparent_hugepage "always" or "madvise"), else 0 */
static int thp_madvise(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	return strstr(buf, "[always]") || strstr(buf, "[madvise]");
}

/* The IPv4 table of the largest size, kept for run6 when keep4 is set:
 * the IPv6 1M batches are timed beside IPv4 10M batches of the same
 * process, moment and loop shape (batch4). */
static int keep4;
static struct vt_db *kept_db;
static uint32_t *kept_addrs;
static size_t kept_n;

/* run - one table size. */
static int run(size_t n32, int changes, struct result *r, uint32_t *sink)
{
	struct vt_policy *p = malloc(sizeof(*p));
	struct vt_source s;
	struct vt_db *db;
	struct moat_listing *l;
	struct moat_update *u = NULL;
	size_t nu = 0, npfx = 50000, n6 = 100000;
	uint32_t *addrs;
	char err[256];
	struct vt_image_stats st;
	struct vt_db_stats ds;
	double t0, c0, rss0;

	memset(r, 0, sizeof(*r));
	vt_policy_init(p);
	p->tarpit_at = 3;
	p->drop_at = 5;
	vt_source_init(&s, 1, "bl32", VT_SRC_DNSBL);
	s.nrules = 2;
	s.rules[0] = (struct vt_weight_rule){ 0x7f000002u, 0x7f000003u, 3 };
	s.rules[1] = (struct vt_weight_rule){ 0x7f000004u, 0x7f000007u, 5 };
	vt_policy_add_source(p, &s, err, sizeof(err));
	s.id = 2;
	snprintf(s.name, sizeof(s.name), "nets");
	vt_policy_add_source(p, &s, err, sizeof(err));
	s.id = 3;
	snprintf(s.name, sizeof(s.name), "v6");
	vt_policy_add_source(p, &s, err, sizeof(err));
	db = vt_db_new(p, err, sizeof(err));
	if (!db) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	addrs = uniq_addrs(n32 + changes);
	l = malloc((n32 > n6 ? n32 : n6) * sizeof(*l));
	if (!addrs || !l)
		return -ENOMEM;
	for (size_t i = 0; i < n32; i++)
		l4(&l[i], 1, addrs[i], 32, (i & 1) ? 0x7f000002u : 0x7f000004u);
	rss0 = rss_mb();
	/* the build publish streams to a fast path (here: one that only
	 * counts), as moat-controld does with vt_db_publish_cb */
	c0 = cpu_s();
	t0 = now_s();
	if (vt_db_source_replace(db, 1, l, n32, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	r->replace_s = now_s() - t0;
	t0 = now_s();
	if (vt_db_publish_cb(db, count_emit, NULL, &nu) < 0)
		return -1;
	u = NULL;
	r->publish_s = now_s() - t0;
	r->build_s = r->replace_s + r->publish_s;
	r->build_cpu_s = cpu_s() - c0;
	r->updates = nu;
	/* page-fault floor: first touch of as much memory as the build took */
	r->fault_floor_s = touch_floor((rss_mb() - rss0) * (1 << 20));
	free(u);
	vt_db_grace_done(db);
	/* 50k prefixes /20../31 and 100k IPv6: a second publish */
	t0 = now_s();
	{
		uint64_t *key = malloc(npfx * sizeof(*key));
		size_t k = 0;

		for (size_t i = 0; i < npfx; i++) {
			unsigned plen = 20 + (unsigned)(rnd() % 12);
			uint32_t a = (uint32_t)rnd() & (~0u << (32 - plen));

			key[i] = (uint64_t)a << 8 | plen;
		}
		qsort(key, npfx, sizeof(*key), cmp_u64);
		for (size_t i = 0; i < npfx; i++)
			if (i == 0 || key[i] != key[i - 1])
				l4(&l[k++], 2, (uint32_t)(key[i] >> 8),
				   (unsigned)(key[i] & 0xff), 0x7f000004u);
		free(key);
		if (vt_db_source_replace(db, 2, l, k, err, sizeof(err)) < 0)
			fprintf(stderr, "bench: nets: %s\n", err);
		for (size_t i = 0; i < n6; i++) {
			static const uint8_t pl[] = { 40, 48, 56, 64, 128 };
			unsigned plen = pl[i % 5];

			memset(&l[i], 0, sizeof(l[i]));
			l[i].pfx.family = MOAT_AF_INET6;
			l[i].pfx.plen = (uint8_t)plen;
			l[i].pfx.addr[0] = 0x20;
			l[i].pfx.addr[1] = 0x01;
			for (unsigned b = 2; b < plen / 8; b++)
				l[i].pfx.addr[b] = (uint8_t)rnd();
			/* the index in bytes 2..4 keeps entries distinct */
			l[i].pfx.addr[2] = (uint8_t)(i >> 16);
			l[i].pfx.addr[3] = (uint8_t)(i >> 8);
			l[i].pfx.addr[4] = (uint8_t)i;
			l[i].code = 0x7f000004u;
			l[i].source = 3;
		}
		if (vt_db_source_replace(db, 3, l, n6, err, sizeof(err)) < 0)
			fprintf(stderr, "bench: v6: %s\n", err);
		if (vt_db_publish(db, &u, &nu) < 0)
			return -1;
		free(u);
		vt_db_grace_done(db);
		r->extras_s = now_s() - t0;
		/* 1,000 IPv6 changes (500 deleted, 500 new) on the 100k */
		{
			double tv[5];

			for (int rep = 0; rep < 5; rep++) {
				struct moat_listing add6[500];

				for (int i = 0; i < 500; i++) {
					size_t kk = n6 + (size_t)rep * 500 + (size_t)i;

					add6[i] = l[i];
					add6[i].pfx.addr[2] = (uint8_t)(kk >> 16);
					add6[i].pfx.addr[3] = (uint8_t)(kk >> 8);
					add6[i].pfx.addr[4] = (uint8_t)kk;
				}
				t0 = now_s();
				if (vt_db_source_apply(db, 3, add6, 500,
						       l + rep * 500, 500, err,
						       sizeof(err)) < 0) {
					fprintf(stderr, "bench: v6 apply: %s\n", err);
					return -1;
				}
				if (vt_db_publish(db, &u, &nu) < 0)
					return -1;
				tv[rep] = (now_s() - t0) * 1e3;
				free(u);
				vt_db_grace_done(db);
			}
			r->apply6_ms = median(tv, 5);
		}
	}
	vt_image_stats(vt_db_image(db), &st);
	vt_db_stats(db, &ds);
	r->compiled_mb = (double)st.bytes / (1 << 20);
	r->bpe = (double)st.bytes / (double)n32;
	r->store_mb = (double)ds.store_bytes / (1 << 20);
	r->rss_mb = rss_mb();
	if (getenv("BENCH_BUILD_ONLY")) {
		vt_db_free(db);
		free(addrs);
		free(l);
		free(p);
		return 0;
	}
	r->lookup_ns = bench_lookup(vt_db_image(db), addrs, n32, sink,
				    &r->lookup_cpu_ns);
	r->thp_mb = thp_mb();
	r->floor_ns = bench_floor((size_t)st.bytes, sink);
	r->ratio = r->lookup_ns / r->floor_ns;
	{
		struct vt_image_view v;

		vt_image_view(vt_db_image(db), &v);
		r->dep2_ns = bench_floor_dep2(v.ngroups, sink);
		if (r->dep2_ns <= 0)
			return -ENOMEM;
		r->ratio_dep2 = r->lookup_ns / r->dep2_ns;
	}
	{
		uint8_t a6[16] = { 0x20, 0x01 };
		double t1 = now_s();

		for (int i = 0; i < 200000; i++) {
			a6[2] = (uint8_t)rnd();
			a6[3] = (uint8_t)rnd();
			a6[9] = (uint8_t)rnd();
			*sink += vt_image_lookup_v6(vt_db_image(db), a6);
		}
		r->v6_lookup_ns = (now_s() - t1) * 1e9 / 200000;
	}
	if (changes) {
		double t[7];

		for (int rep = 0; rep < 7; rep++) {
			struct moat_listing add[500], del[500];

			/* delete 500 listed, add 500 new, publish */
			for (int i = 0; i < 500; i++) {
				size_t k = (size_t)rep * 500 + (size_t)i;

				l4(&del[i], 1, addrs[k], 32,
				   (k & 1) ? 0x7f000002u : 0x7f000004u);
				l4(&add[i], 1, addrs[n32 + k % (size_t)changes], 32,
				   0x7f000004u);
			}
			t0 = now_s();
			if (vt_db_source_apply(db, 1, add, 500, del, 500, err,
					       sizeof(err)) < 0) {
				fprintf(stderr, "bench: apply: %s\n", err);
				return -1;
			}
			if (vt_db_publish(db, &u, &nu) < 0)
				return -1;
			t[rep] = (now_s() - t0) * 1e3;
			free(u);
		}
		r->apply_ms = median(t, 7);
	}
	if (keep4) {
		kept_db = db;
		kept_addrs = addrs;
		kept_n = n32;
		free(l);
		free(p);
		return 0;
	}
	vt_db_free(db);
	free(addrs);
	free(l);
	free(p);
	return 0;
}

struct result6 {
	double build_s, trie_ns, rules_ns, bpe, trie_mb, thp_mb;
	double v4_beside_ns, ratio_beside;   /* with a kept IPv4 table: 0 if none */
	uint32_t nodes, buckets;
	size_t entries;
};

/* rand6 - a random address over 2000::/3. */
static void rand6(uint8_t a[16])
{
	uint64_t x = rnd();

	v6mix_addr(a, x, rnd());
}

/* gen6 - a batch of IPv6 addresses: odd ones inside a random entry of
 * l[0, n), even ones random over 2000::/3. */
static void gen6(uint8_t (*q)[16], const struct moat_listing *l, size_t n)
{
	for (size_t i = 0; i < BATCH; i++) {
		if (i & 1) {
			const struct moat_listing *e = &l[rnd() % n];
			uint8_t x[16];

			rand6(x);
			v6mix_inside(e->pfx.addr, e->pfx.plen, x, q[i]);
		} else {
			rand6(q[i]);
		}
	}
}

/* check6 - the answers of a gen6 batch: listed DROP, and the trie and
 * the per-length rules agree on every address; -1 (printed) if not. */
static int check6(const struct vt_image_view *v, uint8_t (*q)[16])
{
	for (size_t i = 0; i < BATCH; i++) {
		uint32_t a = vt_view_lookup_v6(v, q[i]);

		if (((i & 1) && a != MOAT_ACT_DROP) ||
		    a != vt_view_lookup_v6_rules(v, q[i])) {
			fprintf(stderr, "bench: v6 lookup %zu: trie %u, rules %u\n",
				i, a, vt_view_lookup_v6_rules(v, q[i]));
			return -1;
		}
	}
	return 0;
}

/* run6 - n IPv6 entries of the documented mix: build, memory, lookups. */
static int run6(size_t n, struct result6 *r, uint32_t *sink)
{
	struct vt_policy *p = malloc(sizeof(*p));
	struct moat_listing *l = calloc(n, sizeof(*l));
	uint8_t (*q)[16] = malloc((size_t)BATCH * 16);
	struct vt_source s;
	struct vt_db *db;
	struct moat_update *u = NULL;
	struct vt_image_view v;
	struct vt_image_stats st;
	size_t nu = 0;
	char err[256];
	double t0, tt[NBATCH], tr[NBATCH], t4[NBATCH], rt[NBATCH];
	struct vt_image_view v4;
	uint32_t *q4 = NULL;

	memset(r, 0, sizeof(*r));
	if (!p || !l || !q)
		return -ENOMEM;
	vt_policy_init(p);
	p->tarpit_at = 3;
	p->drop_at = 5;
	vt_source_init(&s, 3, "v6", VT_SRC_DNSBL);
	s.nrules = 1;
	s.rules[0] = (struct vt_weight_rule){ 0x7f000004u, 0x7f000007u, 5 };
	vt_policy_add_source(p, &s, err, sizeof(err));
	if (!(db = vt_db_new(p, err, sizeof(err)))) {
		fprintf(stderr, "bench: %s\n", err);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned plen = v6mix_plen(i, rnd());

		l[i].pfx.family = MOAT_AF_INET6;
		l[i].pfx.plen = (uint8_t)plen;
		rand6(l[i].pfx.addr);
		for (unsigned b = plen; b < 128; b++)
			l[i].pfx.addr[b / 8] &= (uint8_t)~(0x80 >> (b % 8));
		l[i].code = 0x7f000004u;
		l[i].source = 3;
	}
	t0 = now_s();
	if (vt_db_source_replace(db, 3, l, n, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench: v6: %s\n", err);
		return -1;
	}
	if (vt_db_publish_cb(db, count_emit, NULL, &nu) < 0)
		return -1;
	r->build_s = now_s() - t0;
	free(u);
	vt_db_grace_done(db);
	vt_image_stats(vt_db_image(db), &st);
	r->entries = st.v6_rules;
	r->bpe = (double)st.v6_trie_bytes / (double)n;
	r->trie_mb = (double)st.v6_trie_bytes / (1 << 20);
	r->nodes = st.v6_trie_nodes;
	r->buckets = st.v6_trie_buckets;
	vt_image_view(vt_db_image(db), &v);
	if (kept_db) {
		vt_image_view(vt_db_image(kept_db), &v4);
		if (!(q4 = malloc(BATCH * sizeof(*q4))))
			return -ENOMEM;
	}
	/* pass 0: the trie, each batch after an IPv4 batch over the kept
	 * table in the same loop shape (addresses made, then timed), so each
	 * side follows the other; pass 1: the per-length rules (2 s a batch
	 * at 1M, which would leave caches and TLB cold for what follows) */
	for (int pass = 0; pass < 2; pass++)
		for (int b = 0; b < NBATCH; b++) {
			uint32_t acc = 0;
			double wall;

			if (q4 && pass == 0)
				acc += batch4(&v4, kept_addrs, kept_n, q4, &wall, &t4[b]);
			gen6(q, l, n);
			t0 = cpu_s();
			if (pass == 0) {
				for (size_t i = 0; i < BATCH; i++)
					acc += vt_view_lookup_v6(&v, q[i]);
				tt[b] = (cpu_s() - t0) * 1e9 / BATCH;
				if (q4)
					rt[b] = tt[b] / t4[b];
			} else {
				for (size_t i = 0; i < BATCH; i++)
					acc += vt_view_lookup_v6_rules(&v, q[i]);
				tr[b] = (cpu_s() - t0) * 1e9 / BATCH;
			}
			*sink += acc;
			if (pass == 1 && b == 0 && check6(&v, q) < 0)
				return -1;
		}
	r->trie_ns = median(tt, NBATCH);
	r->rules_ns = median(tr, NBATCH);
	if (q4) {
		r->v4_beside_ns = median(t4, NBATCH);
		r->ratio_beside = median(rt, NBATCH);
		free(q4);
	}
	r->thp_mb = thp_mb();
	vt_db_free(db);
	free(l);
	free(q);
	free(p);
	return 0;
}

/* main - run the sizes, print the table, write the JSON. */
int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1000, 1000000, 10000000 };
	static const char *const names[] = { "1k", "1m", "10m" };
	static const size_t sizes6[] = { 10000, 100000, 1000000 };
	static const char *const names6[] = { "10k", "100k", "1m" };
	struct result r[3];
	struct result6 r6[3];
	uint32_t sink = 0;
	size_t nsz = 3;
	FILE *f;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: bench_table OUT.json [max-size]\n"
		       "Builds, compiles and looks up verdict tables of 1k, 1M and "
		       "10M /32s; writes flat JSON.\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("bench_table %s\n", MOAT_VERSION);
		return 0;
	}
	if (argc > 2)
		nsz = (size_t)atoi(argv[2]);
	if (nsz > 3)
		nsz = 3;
	printf("build = replace + publish of the /32s; extras = 50k prefixes + 100k IPv6 added after\n");
	printf("floor_ns: one random read; dep2_ns: two dependent reads (tbl24, group); huge pages %s\n",
	       thp_madvise() ? "on for both" : "off for both");
	printf("%-5s %9s %9s %9s %8s %8s %10s %8s %9s %9s %6s %9s %6s %9s %8s %10s\n", "size",
	       "replace_s", "publish_s", "build_s", "cpu_s", "fault_s", "compiled", "B/entry",
	       "lookup_ns", "floor_ns", "ratio", "dep2_ns", "ratio", "v6_ns", "rss_MB", "apply1k_ms");
	for (size_t i = 0; i < nsz; i++) {
		if (i == 1)
			printf("IPv6: 1,000 changes on 100k entries + publish: %.2f ms\n",
			       r[0].apply6_ms);
		keep4 = i == 2;
		if (run(sizes[i], i == 2 ? 3500 : 0, &r[i], &sink) < 0)
			return 1;
		keep4 = 0;
		if (i < 2) {
			/* builds are noisy on a shared machine: median of 3 */
			double b[3] = { r[i].build_s, 0, 0 };
			double c[3] = { r[i].build_cpu_s, 0, 0 };
			struct result x;

			setenv("BENCH_BUILD_ONLY", "1", 1);
			for (int k = 1; k < 3; k++) {
				if (run(sizes[i], 0, &x, &sink) < 0)
					return 1;
				b[k] = x.build_s;
				c[k] = x.build_cpu_s;
			}
			r[i].build_cpu_s = median(c, 3);
			unsetenv("BENCH_BUILD_ONLY");
			r[i].build_s = median(b, 3);
		}
		printf("%-5s %9.3f %9.3f %9.3f %8.3f %8.3f %8.1fMB %8.1f %9.2f %9.2f %6.2f %9.2f %6.2f %9.1f %8.0f %10.2f\n",
		       names[i], r[i].replace_s, r[i].publish_s, r[i].build_s,
		       r[i].build_cpu_s, r[i].fault_floor_s,
		       r[i].compiled_mb, r[i].bpe, r[i].lookup_ns, r[i].floor_ns,
		       r[i].ratio, r[i].dep2_ns, r[i].ratio_dep2, r[i].v6_lookup_ns, r[i].rss_mb,
		       r[i].apply_ms);
		fflush(stdout);
	}
	printf("IPv6 alone: 10%% /32../48, 40%% /64, 50%% /128 over 2000::/3; "
	       "lookups half listed\n%-5s %8s %9s %8s %8s %9s %10s %8s %8s\n",
	       "v6", "entries", "build_s", "trie_MB", "B/entry", "nodes",
	       "buckets", "trie_ns", "rules_ns");
	for (size_t i = 0; i < 3; i++) {
		struct vt_db *k = kept_db;

		if (i < 2)     /* the IPv4 10M table beside IPv6 1M only */
			kept_db = NULL;
		if (run6(sizes6[i], &r6[i], &sink) < 0)
			return 1;
		kept_db = k;
		printf("%-5s %8zu %9.3f %8.1f %8.1f %9u %10u %8.2f %8.2f\n",
		       names6[i], r6[i].entries, r6[i].build_s, r6[i].trie_mb,
		       r6[i].bpe, r6[i].nodes, r6[i].buckets, r6[i].trie_ns,
		       r6[i].rules_ns);
		fflush(stdout);
	}
	if (nsz == 3) {
		printf("v6 trie lookup at 1M / IPv4 lookup at 10M, batches side by side "
		       "(CPU time, median of the %d per-batch ratios; IPv4 %.2f ns): "
		       "%.2f (target <= 1.5)\n", NBATCH, r6[2].v4_beside_ns,
		       r6[2].ratio_beside);
		printf("the same against the IPv4 phase above (%.2f ns): %.2f; anonymous "
		       "huge pages while they ran: %.0f MB (IPv4 10M), %.0f MB (IPv6 1M "
		       "with IPv4 10M)\n", r[2].lookup_cpu_ns,
		       r6[2].trie_ns / r[2].lookup_cpu_ns, r[2].thp_mb, r6[2].thp_mb);
	}
	if (kept_db) {
		vt_db_free(kept_db);
		free(kept_addrs);
	}
	f = fopen(argc > 1 ? argv[1] : "table.json", "w");
	if (!f)
		return 1;
	fprintf(f, "{\n");
	for (size_t i = 0; i < nsz; i++) {
		fprintf(f, "  \"build_s_%s\": %.4f,\n", names[i], r[i].build_s);
		fprintf(f, "  \"compile_s_%s\": %.4f,\n", names[i], r[i].build_s);
		fprintf(f, "  \"compile_cpu_s_%s\": %.4f,\n", names[i], r[i].build_cpu_s);
		fprintf(f, "  \"replace_s_%s\": %.4f,\n", names[i], r[i].replace_s);
		fprintf(f, "  \"publish_s_%s\": %.4f,\n", names[i], r[i].publish_s);
		fprintf(f, "  \"extras_build_s_%s\": %.4f,\n", names[i], r[i].extras_s);
		fprintf(f, "  \"build_fault_floor_s_%s\": %.4f,\n", names[i], r[i].fault_floor_s);
		fprintf(f, "  \"compiled_mb_%s\": %.2f,\n", names[i], r[i].compiled_mb);
		fprintf(f, "  \"bytes_per_entry_%s\": %.2f,\n", names[i], r[i].bpe);
		fprintf(f, "  \"store_mb_%s\": %.2f,\n", names[i], r[i].store_mb);
		fprintf(f, "  \"rss_mb_%s\": %.1f,\n", names[i], r[i].rss_mb);
		fprintf(f, "  \"lookup_ns_%s\": %.3f,\n", names[i], r[i].lookup_ns);
		fprintf(f, "  \"lookup_cpu_ns_%s\": %.3f,\n", names[i], r[i].lookup_cpu_ns);
		fprintf(f, "  \"mem_floor_ns_%s\": %.3f,\n", names[i], r[i].floor_ns);
		fprintf(f, "  \"lookup_over_floor_%s\": %.3f,\n", names[i], r[i].ratio);
		fprintf(f, "  \"mem_floor_dep2_ns_%s\": %.3f,\n", names[i], r[i].dep2_ns);
		fprintf(f, "  \"lookup_over_dep2_floor_%s\": %.3f,\n", names[i], r[i].ratio_dep2);
		fprintf(f, "  \"v6_100k_lookup_ns_%s\": %.1f,\n", names[i], r[i].v6_lookup_ns);
		fprintf(f, "  \"full_publish_updates_%s\": %zu,\n", names[i], r[i].updates);
	}
	if (nsz == 3) {
		fprintf(f, "  \"ms_apply_1k_changes_10m\": %.3f,\n", r[2].apply_ms);
		fprintf(f, "  \"thp_mb_10m\": %.1f,\n", r[2].thp_mb);
	}
	fprintf(f, "  \"ms_apply_1k_v6_changes_100k\": %.3f,\n", r[0].apply6_ms);
	for (size_t i = 0; i < 3; i++) {
		fprintf(f, "  \"v6_entries_%s\": %zu,\n", names6[i], r6[i].entries);
		fprintf(f, "  \"v6_build_s_%s\": %.4f,\n", names6[i], r6[i].build_s);
		fprintf(f, "  \"v6_lookup_ns_%s\": %.3f,\n", names6[i], r6[i].trie_ns);
		fprintf(f, "  \"v6_rules_lookup_ns_%s\": %.3f,\n", names6[i], r6[i].rules_ns);
		fprintf(f, "  \"v6_bytes_per_entry_%s\": %.2f,\n", names6[i], r6[i].bpe);
		fprintf(f, "  \"v6_thp_mb_%s\": %.1f,\n", names6[i], r6[i].thp_mb);
	}
	if (nsz == 3) {
		fprintf(f, "  \"v6_over_v4_10m\": %.3f,\n", r6[2].ratio_beside);
		fprintf(f, "  \"v4_10m_lookup_cpu_ns_beside_v6\": %.3f,\n", r6[2].v4_beside_ns);
		fprintf(f, "  \"v6_over_v4_10m_apart\": %.3f,\n",
			r6[2].trie_ns / r[2].lookup_cpu_ns);
	}
	fprintf(f, "  \"peak_rss_mb\": %.1f,\n", status_mb("VmHWM:"));
	fprintf(f, "  \"thp_madvise\": %d,\n", thp_madvise());
	fprintf(f, "  \"sink\": %u\n}\n", sink & 1);
	fclose(f);
	return 0;
}
