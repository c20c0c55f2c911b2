/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dpdk_bench.c - the helpers of tools/bench.d/dpdk:
 *
 *   dpdk_bench pcap1k FILE       1024 SYNs to port 25: every other one from
 *                                a /24 the 1k table lists (dp_client.py
 *                                gen24 1000: 1.0.0.0/24 up), the rest from
 *                                unlisted 100.64.0.0/16
 *   dpdk_bench pcap10m FILE N    N SYNs from N distinct sources, one per
 *                                group of the 10M table (dp_client.py
 *                                groups: /24 index g * 16 + 1), spread over
 *                                the whole tbl24; a host octet listed in
 *                                about 1 in 25 of them
 *   dpdk_bench floor N [thp]     the memory floor: N lookups' worth of
 *                                independent pairs of two dependent random
 *                                reads, a tbl24-sized buffer (64 MiB) then a
 *                                groups-sized one (2^20 x 64 bytes); prints
 *                                ns per pair.  The buffers are malloc's
 *                                (4 KiB pages), with thp on transparent huge
 *                                pages, as moat-dpdk's table under --no-huge
 *                                (dp_table.c)
 * Errors go to stderr with exit 1.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "xdp_frames.h"

#define GROUPS (1u << 20)

/* syn - the SYN from src (host order) to 198.18.1.1:25 that the bpf
 * suite's frame builder (tests/xdp_frames.h) makes; its length */
static size_t syn(uint8_t *f, uint32_t src, uint16_t sport)
{
	char a[INET_ADDRSTRLEN];
	uint32_t be = htonl(src);
	struct tframe t = { .family = 4, .src = a, .dst = "198.18.1.1", .sport = sport,
			    .dport = 25, .flags = TF_SYN, .seq = 1 };

	inet_ntop(AF_INET, &be, a, sizeof(a));
	return tf_build(&t, f);
}

/* write_pcap - n SYNs, source i from src_of(i) */
static int write_pcap(const char *path, uint32_t n, uint32_t (*src_of)(uint32_t))
{
	struct { uint32_t magic; uint16_t maj, min; int32_t tz; uint32_t sig, snap, link; } gh = {
		0xa1b2c3d4, 2, 4, 0, 0, 65535, 1 };
	struct { uint32_t sec, usec, incl, orig; } ph = { 0, 0, 0, 0 };
	uint8_t f[TF_MAX];
	FILE *fp = fopen(path, "wb");

	if (!fp) {
		perror(path);
		return 1;
	}
	fwrite(&gh, sizeof(gh), 1, fp);
	for (uint32_t i = 0; i < n; i++) {
		ph.incl = ph.orig = (uint32_t)syn(f, src_of(i), (uint16_t)(1024 + (i & 0x7fff)));
		fwrite(&ph, sizeof(ph), 1, fp);
		fwrite(f, ph.incl, 1, fp);
	}
	if (fclose(fp)) {
		perror(path);
		return 1;
	}
	return 0;
}

static uint32_t src_1k(uint32_t i)
{
	if (i & 1)
		return 0x64400000u | (i & 0xffff);
	return ((0x010000u + (i / 2) % 1000) << 8) | 7;
}

static uint32_t src_10m(uint32_t i)
{
	/* an odd multiplier permutes 0..2^20-1: one source per group */
	uint32_t g = (i * 0x9e3779b1u) & (GROUPS - 1);

	return ((g * 16 + 1) << 8) | ((i * 37) & 0xff);
}

/* now_s - this thread's CPU time (the machine is shared: time spent
 * descheduled is not the memory's) */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* thp_alloc - n bytes (a multiple of 2 MiB) of anonymous memory, 2 MiB
 * aligned, on transparent huge pages where the kernel gives them; never
 * freed (the process ends) */
static void *thp_alloc(size_t n)
{
	const size_t h = (size_t)2 << 20;
	uint8_t *p = mmap(NULL, n + h, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + h - 1) & ~(uintptr_t)(h - 1));
	madvise(a, n, MADV_HUGEPAGE);
	return a;
}

/* floor_ns - ns per independent pair of dependent random reads */
static double floor_ns(uint64_t n, int thp)
{
	uint32_t *t24 = thp ? thp_alloc((size_t)4 << 24) : malloc((size_t)4 << 24);
	uint8_t *grp = thp ? thp_alloc((size_t)GROUPS * 64) : malloc((size_t)GROUPS * 64);
	uint32_t *addr = malloc(sizeof(uint32_t) << 20);
	uint64_t x = 88172645463325252ull, sink = 0;
	double t0, t1;

	if (!t24 || !grp || !addr) {
		fprintf(stderr, "dpdk_bench: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < (1u << 24); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		t24[i] = (uint32_t)x & (GROUPS - 1);
	}
	memset(grp, 0x55, (size_t)GROUPS * 64);
	for (uint32_t i = 0; i < (1u << 20); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		addr[i] = (uint32_t)x;
	}
	t0 = now_s();
	for (uint64_t k = 0; k < n; k++) {
		uint32_t a = addr[k & ((1u << 20) - 1)];
		uint32_t e = t24[a >> 8];

		sink += grp[(size_t)e * 64 + ((a & 0xff) >> 2)];
	}
	t1 = now_s();
	if (sink == 42)
		fprintf(stderr, "\n");
	if (!thp) {
		free(t24);
		free(grp);
	}
	free(addr);
	return (t1 - t0) * 1e9 / (double)n;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "pcap1k"))
		return write_pcap(argv[2], 1024, src_1k);
	if (argc == 4 && !strcmp(argv[1], "pcap10m"))
		return write_pcap(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), src_10m);
	if ((argc == 3 || (argc == 4 && !strcmp(argv[3], "thp"))) && !strcmp(argv[1], "floor")) {
		printf("%.3f\n", floor_ns(strtoull(argv[2], NULL, 10), argc == 4));
		return 0;
	}
	fprintf(stderr, "usage: dpdk_bench pcap1k FILE | pcap10m FILE N | floor N [thp]\n");
	return 1;
}
