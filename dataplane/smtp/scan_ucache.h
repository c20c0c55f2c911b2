/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_ucache.h - what a body line or URI hit, kept across messages: one
 * table per thread (scan_ucache.c).
 *
 * A body line's or URI's hits depend on its bytes and the rules alone (a
 * block scan of the unit, its confirmations on the unit, its gates on the
 * unit), and mail repeats them: list footers, tracking images, signature
 * lines.  On the SpamAssassin corpus a process saw about 39% of its URIs
 * and 25% of its body lines before (docs/content-gate.md, session 18).
 * A unit met again is not scanned: its kept hits are replayed, in the
 * order they were found.  The table is direct-mapped (a new unit replaces
 * the one in its slot), holds the unit's bytes to compare (the hash only
 * picks the slot), and belongs to one rule set (scan_db.gen): after a
 * reload an old entry matches nothing and is freed when its slot is next
 * looked up.
 * A thread's table is 128 KiB of slots and at most SCAN_UCACHE_BYTES of
 * entries; a unit that would pass that is not kept.
 */
#ifndef MOAT_SCAN_UCACHE_H
#define MOAT_SCAN_UCACHE_H

#include <stddef.h>
#include <stdint.h>

#define SCAN_UCACHE_SLOTS 16384        /* per thread, a power of two */
#define SCAN_UCACHE_UNIT_MAX 4096      /* longer units are not kept */
#define SCAN_UCACHE_IDS_MAX 32         /* a unit with more hits is not kept */
#define SCAN_UCACHE_BYTES (4u << 20)   /* entries' bytes a thread, at most */

/* scan_ucache_get - the hits kept for a unit of this kind and bytes (h:
 * its scan_unit_hash) under rule set gen: *nids ids (NULL: not kept; the
 * pointer lives until the next put on this thread) */
const unsigned *scan_ucache_get(uint64_t gen, int kind, const char *p, size_t n, uint32_t h,
				size_t *nids);

/* scan_ucache_put - keep a unit's hits (every rule it hits, whatever the
 * message had hit before).  Without memory nothing is kept. */
void scan_ucache_put(uint64_t gen, int kind, const char *p, size_t n, uint32_t h,
		     const unsigned *ids, size_t nids);

/* scan_ucache_enable - on (the default) or off for the whole process */
void scan_ucache_enable(int on);
int scan_ucache_enabled(void);

/* scan_ucache_stats - this thread's lookups that found a unit, and all */
void scan_ucache_stats(uint64_t *hits, uint64_t *lookups);

#endif
