/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_seen.h - the units one message has scanned, so that an exact repeat
 * is not scanned again.
 *
 * A body line, rawbody chunk or URI is scanned in one block call
 * (scan_render.h), and what it yields (the rules whose Hyperscan form
 * matched, then the confirmation of the prefilter ones on the same unit)
 * depends on its bytes alone; a rule counts once per message (hits are a
 * set: scan_sa.c refuses metas over hit counts).  A unit of the same kind
 * and bytes as one already scanned in the message therefore adds nothing.
 * Mail repeats units: HTML links the same URI many times (36% of the
 * corpus's URI units), SpamAssassin's own URI list holds each URI once.
 *
 * The set keeps the bytes themselves (a hash only picks the slot; a match
 * is compared byte for byte), so no crafted collision hides a unit.  It is
 * bounded: SCAN_SEEN_BYTES of kept units and SCAN_SEEN_SLOTS units; past
 * either, units are not kept and are always scanned.
 */
#ifndef MOAT_SCAN_SEEN_H
#define MOAT_SCAN_SEEN_H

#include <stddef.h>
#include <stdint.h>

enum {
	SCAN_SEEN_SLOTS = 1024,         /* table slots; at most 3/4 used */
	SCAN_SEEN_BYTES = 32 * 1024,    /* unit bytes kept per message */
	SCAN_SEEN_UNIT_MAX = 4096,      /* a longer unit is not kept */
};

struct scan_seen {
	uint32_t *slot;   /* 0 empty, else 1 + offset of the record in arena;
			   * allocated at the first unit (NULL before) */
	char *arena;      /* records: u32 hash, u16 length, u8 kind, bytes */
	size_t used;      /* arena bytes used */
	unsigned n;       /* units kept */
	int off;          /* allocation failed: keep nothing more */
};

/* scan_seen_check - 1 when a unit of this kind and bytes (h: its
 * scan_unit_hash) was kept before in this message (scan it no more); else
 * 0, and the unit is kept when the bounds allow.  Never fails: without
 * memory nothing is kept and every unit is scanned. */
int scan_seen_check(struct scan_seen *s, int kind, const char *p, size_t n, uint32_t h);

/* scan_unit_hash - of a unit's kind and bytes, 8 at a time: picks a slot,
 * proves nothing (scan_seen, scan_ucache: computed once a unit) */
uint32_t scan_unit_hash(int kind, const char *p, size_t n);

/* scan_seen_free - release the set (a zeroed set is empty and valid) */
void scan_seen_free(struct scan_seen *s);

#endif
