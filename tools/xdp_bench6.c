/*
 * xdp_bench6.c - the IPv6 trie lookup in the kernel (tools/bench xdp).
 *
 *   xdp_bench6 [--entries N] [--rounds R]
 *
 * Loads bpf/lookup6_bench.bpf.c, writes a trie of N IPv6 entries (default
 * 1M; the mix of tools/bench table: 10% /32../48, 40% /64, 50% /128,
 * random over 2000::/3, all DROP) into its maps' mmap'd values with the
 * shared writer (lib/vt_trie6.c), and 2^20 addresses (half inside a
 * listed entry, half random over 2000::/3) into "addrs6".  Each round
 * runs the lookup program once (BPF_PROG_TEST_RUN: bpf_loop over the
 * addresses), the same loop without the lookup, and the same lookup in
 * userspace over the kernel's own pages; medians.  The kernel's and
 * userspace's sums of actions must agree and every listed address must
 * be DROP, else exit 1.  Prints "key value" lines (TAG = 1m, 100k, ...):
 *   ns_lookup_bpf_v6_TAG       in-kernel ns per lookup, loop included
 *   ns_lookup_bpf_v6_loop_TAG  the loop alone
 *   ns_lookup_user_v6_TAG      userspace, same pages, same loop shape
 *   v6_trie_bytes_per_entry_TAG
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "moat_lookup6_bench.skel.h"
#include "vt_trie6.h"

#define N_LOOKUP (1u << 20)
#define LB6_CHUNK 64     /* lookup6_bench.bpf.c */
#define RUNS_MAX 101

static uint64_t rng_s = 0x2545f4914f6cdd1dull;

/* rnd - splitmix64 */
static uint64_t rnd(void)
{
	uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* rand6 - a random address over 2000::/3 */
static void rand6(uint8_t a[16])
{
	uint64_t x = rnd(), y = rnd();

	for (int i = 0; i < 8; i++) {
		a[i] = (uint8_t)(x >> (56 - 8 * i));
		a[8 + i] = (uint8_t)(y >> (56 - 8 * i));
	}
	a[0] = (uint8_t)(0x20 | (a[0] & 0x1f));
}

/* inside - a random address inside a/plen */
static void inside(const uint8_t *a, unsigned plen, uint8_t out[16])
{
	uint8_t x[16];

	rand6(x);
	for (unsigned k = 0; k < 16; k++) {
		int bits = (int)plen - (int)k * 8;
		uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));

		out[k] = (uint8_t)((a[k] & m) | (x[k] & ~m));
	}
}

/* map_value - the one value of an mmapable array map, mapped rw */
static void *map_value(struct bpf_map *m, size_t bytes)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (bytes + pg - 1) & ~(pg - 1), PROT_READ | PROT_WRITE,
		       MAP_SHARED, bpf_map__fd(m), 0);

	return p == MAP_FAILED ? NULL : p;
}

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

static __attribute__((noinline)) uint64_t user_lookups(const struct vt_trie6_mem *m,
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

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "entries", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ 0, 0, 0, 0 } };
	size_t n = 1000000;
	int runs = 21, c, err;
	struct moat_lookup6_bench *s;
	struct vt_trie6_mem mem;
	struct vt_trie6 *t;
	struct vt_trie6_stats st;
	uint8_t (*q)[16];
	double kv[RUNS_MAX], lv[RUNS_MAX], uv[RUNS_MAX];
	uint64_t usum = 0;
	char tag[32];

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'n')
			n = strtoull(optarg, NULL, 10);
		else if (c == 'r')
			runs = atoi(optarg);
		else
			return 2;
	}
	if (n == 0 || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "usage: xdp_bench6 [--entries N>0] [--rounds 1..%d]\n", RUNS_MAX);
		return 2;
	}
	mem.nodes_max = (uint32_t)(n / 32 + 4096);
	mem.buckets_max = (uint32_t)(n + n / 4 + 4096);
	if (!(s = moat_lookup6_bench__open())) {
		fprintf(stderr, "xdp_bench6: open: %s\n", strerror(errno));
		return 1;
	}
	s->rodata->v6t_nodes_max = mem.nodes_max;
	s->rodata->v6t_buckets_max = mem.buckets_max;
	s->rodata->n_chunks = N_LOOKUP / LB6_CHUNK;
	if ((err = bpf_map__set_value_size(s->maps.v6t_nodes,
					   mem.nodes_max * sizeof(struct moat_v6_node))) ||
	    (err = bpf_map__set_value_size(s->maps.v6t_buckets,
					   mem.buckets_max * sizeof(struct moat_v6_bucket))) ||
	    (err = bpf_map__set_max_entries(s->maps.addrs6, N_LOOKUP / LB6_CHUNK)) ||
	    (err = moat_lookup6_bench__load(s))) {
		fprintf(stderr, "xdp_bench6: load: %s\n", strerror(-err));
		return 1;
	}
	mem.root = map_value(s->maps.v6t_root, MOAT_V6T_ROOT_ENTRIES * 4);
	mem.nodes = map_value(s->maps.v6t_nodes, mem.nodes_max * sizeof(struct moat_v6_node));
	mem.buckets = map_value(s->maps.v6t_buckets,
				mem.buckets_max * sizeof(struct moat_v6_bucket));
	q = malloc((size_t)N_LOOKUP * 16);
	uint8_t (*ea)[16] = malloc(n * 16);
	uint8_t *ep = malloc(n);

	if (!mem.root || !mem.nodes || !mem.buckets || !q || !ea || !ep ||
	    !(t = vt_trie6_new(&mem))) {
		fprintf(stderr, "xdp_bench6: mmap/alloc: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(i % 10);

		ep[i] = (uint8_t)(k == 0 ? 32 + rnd() % 17 : k <= 4 ? 64 : 128);
		rand6(ea[i]);
		if ((err = vt_trie6_put(t, ea[i], ep[i], MOAT_ACT_DROP)) < 0) {
			fprintf(stderr, "xdp_bench6: trie put %zu: %s\n", i, strerror(-err));
			return 1;
		}
	}
	vt_trie6_grace_done(t);
	vt_trie6_stats(t, &st);
	for (uint32_t i = 0; i < N_LOOKUP; i++) {
		if (i & 1) {
			size_t e = rnd() % n;

			inside(ea[e], ep[e], q[i]);
		} else {
			rand6(q[i]);
		}
	}
	/* every listed address DROP (checked once, outside the timing) */
	for (uint32_t i = 1; i < N_LOOKUP; i += 2)
		if (vt_trie6_lookup(&mem, q[i]) != MOAT_ACT_DROP) {
			fprintf(stderr, "xdp_bench6: listed address %u not DROP\n", i);
			return 1;
		}
	for (uint32_t i = 0; i < N_LOOKUP / LB6_CHUNK; i++)
		if (bpf_map_update_elem(bpf_map__fd(s->maps.addrs6), &i,
					q[(size_t)i * LB6_CHUNK], 0)) {
			fprintf(stderr, "xdp_bench6: addrs6: %s\n", strerror(errno));
			return 1;
		}
	for (int r = 0; r < runs; r++) {
		uint64_t t0;

		if ((err = test_run_ns(bpf_program__fd(s->progs.moat_lookup6_bench), &kv[r])) ||
		    (err = test_run_ns(bpf_program__fd(s->progs.moat_lookup6_loop), &lv[r]))) {
			fprintf(stderr, "xdp_bench6: test run: %s\n", strerror(-err));
			return 1;
		}
		kv[r] /= N_LOOKUP;
		lv[r] /= N_LOOKUP;
		t0 = moat_clock_ns();
		usum = user_lookups(&mem, q, N_LOOKUP);
		uv[r] = (double)(moat_clock_ns() - t0) / N_LOOKUP;
	}
	if (s->bss->result != usum) {
		fprintf(stderr, "xdp_bench6: kernel sum %llu, userspace %llu\n",
			(unsigned long long)s->bss->result, (unsigned long long)usum);
		return 1;
	}
	tag_of(n, tag, sizeof(tag));
	printf("v6_trie_entries_%s %zu\n", tag, st.rules);
	printf("v6_trie_bytes_per_entry_%s %.2f\n", tag, (double)st.bytes / (double)n);
	printf("ns_lookup_bpf_v6_%s %.2f\n", tag, median(kv, runs));
	printf("ns_lookup_bpf_v6_loop_%s %.2f\n", tag, median(lv, runs));
	printf("ns_lookup_user_v6_%s %.2f\n", tag, median(uv, runs));
	vt_trie6_free(t);
	moat_lookup6_bench__destroy(s);
	free(q);
	free(ea);
	free(ep);
	return 0;
}
