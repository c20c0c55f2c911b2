/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_seen.c - the units one message has scanned (scan_seen.h): an open
 * addressing table over an arena of the units' bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "scan_seen.h"

#define REC_HDR 7 /* u32 hash, u16 length, u8 kind */

uint32_t scan_unit_hash(int kind, const char *p, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n << 8) ^ (unsigned)kind, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (i < n) {
		w = 0;
		memcpy(&w, p + i, n - i);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	return (uint32_t)h;
}

int scan_seen_check(struct scan_seen *s, int kind, const char *p, size_t n, uint32_t h)
{
	uint32_t rh;
	uint16_t rn;
	size_t i;

	if (s->off || n > SCAN_SEEN_UNIT_MAX)
		return 0;
	if (!s->slot) {
		s->slot = calloc(SCAN_SEEN_SLOTS, sizeof(*s->slot));
		s->arena = malloc(SCAN_SEEN_BYTES);
		if (!s->slot || !s->arena) {
			scan_seen_free(s);
			s->off = 1;
			return 0;
		}
	}
	for (i = h & (SCAN_SEEN_SLOTS - 1); s->slot[i]; i = (i + 1) & (SCAN_SEEN_SLOTS - 1)) {
		const char *r = s->arena + s->slot[i] - 1;

		memcpy(&rh, r, 4);
		memcpy(&rn, r + 4, 2);
		if (rh == h && rn == n && (unsigned char)r[6] == (unsigned)kind &&
		    memcmp(r + REC_HDR, p, n) == 0)
			return 1;
	}
	/* not seen: keep it while there is room (slot i is free) */
	if (s->n >= SCAN_SEEN_SLOTS / 4 * 3 || s->used + REC_HDR + n > SCAN_SEEN_BYTES)
		return 0;
	char *r = s->arena + s->used;

	rn = (uint16_t)n;
	memcpy(r, &h, 4);
	memcpy(r + 4, &rn, 2);
	r[6] = (char)kind;
	memcpy(r + REC_HDR, p, n);
	s->slot[i] = (uint32_t)s->used + 1;
	s->used += REC_HDR + n;
	s->n++;
	return 0;
}

void scan_seen_free(struct scan_seen *s)
{
	free(s->slot);
	free(s->arena);
	s->slot = NULL;
	s->arena = NULL;
	s->used = 0;
	s->n = 0;
}
