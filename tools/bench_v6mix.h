/*
 * bench_v6mix.h - the documented IPv6 entry mix of tools/bench table and
 * tools/bench xdp, written once: 10% /32../48 (length uniform), 40% /64,
 * 50% /128, addresses random over 2000::/3.  The caller brings the random
 * numbers (each tool has its own generator and seed).
 */
#ifndef MOAT_BENCH_V6MIX_H
#define MOAT_BENCH_V6MIX_H

#include <stddef.h>
#include <stdint.h>

/* v6mix_plen - the prefix length of entry i (r: a random number) */
static inline unsigned v6mix_plen(size_t i, uint64_t r)
{
	unsigned k = (unsigned)(i % 10);

	return k == 0 ? 32 + (unsigned)(r % 17) : k <= 4 ? 64 : 128;
}

/* v6mix_addr - an address over 2000::/3 from two random numbers */
static inline void v6mix_addr(uint8_t a[16], uint64_t x, uint64_t y)
{
	for (int i = 0; i < 8; i++) {
		a[i] = (uint8_t)(x >> (56 - 8 * i));
		a[8 + i] = (uint8_t)(y >> (56 - 8 * i));
	}
	a[0] = (uint8_t)(0x20 | (a[0] & 0x1f));
}

/* v6mix_inside - out = the first plen bits of a, the rest from rnd16 (a
 * listed address when a/plen is an entry); plen 0..128 */
static inline void v6mix_inside(const uint8_t *a, unsigned plen,
				const uint8_t *rnd16, uint8_t out[16])
{
	for (unsigned k = 0; k < 16; k++) {
		int bits = (int)plen - (int)k * 8;
		uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 :
			    (uint8_t)(0xff << (8 - bits));

		out[k] = (uint8_t)((a[k] & m) | (rnd16[k] & ~m));
	}
}

#endif /* MOAT_BENCH_V6MIX_H */
