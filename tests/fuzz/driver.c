/*
 * driver.c - bounded fuzz runs without libFuzzer.
 *
 * Every fuzz target defines LLVMFuzzerTestOneInput() (so it also links into
 * a real libFuzzer build with clang -fsanitize=fuzzer).  This driver feeds it
 * random and mutated inputs for a fixed number of iterations from a printed
 * seed, so a CI run is bounded and a failure replays with
 *   FUZZ_SEED=<seed> ./fuzz_x
 * Prints TAP: one case per run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
	const char *s = getenv("FUZZ_SEED");
	const char *n = getenv("FUZZ_ITERS");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	long iters = n ? atol(n) : 200000;
	size_t maxlen = 4096;
	uint8_t *buf = malloc(maxlen);

	(void)argc;
	if (!buf)
		return 1;
	rng_state = seed;
	printf("TAP version 13\n1..1\n# %s seed=%llu iters=%ld\n", argv[0],
	       (unsigned long long)seed, iters);
	fflush(stdout);
	for (long i = 0; i < iters; i++) {
		size_t len = (size_t)(rng() % (i % 64 == 0 ? maxlen : 128));
		/* mix random bytes with a bias toward small and special values */
		for (size_t j = 0; j < len; j++) {
			uint64_t r = rng();
			buf[j] = (r & 3) == 0 ? (uint8_t)"\r\n.\0\xff:"[(r >> 8) % 6]
					      : (uint8_t)(r >> 16);
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("ok 1 - %ld inputs without a crash or sanitizer report\n", iters);
	free(buf);
	return 0;
}
