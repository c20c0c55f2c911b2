/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sanity.h - checks run on a source's listings after every load, before the
 * daemon publishes them: RFC 5782 §5 test points and "lists the world"
 * detection.  A failed check quarantines the load (the daemon keeps the
 * previous data and reports the reason).
 */
#ifndef MOAT_SANITY_H
#define MOAT_SANITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listing.h"

struct moat_sanity_cfg {
	bool skip_testpoints;  /* default false: 127.0.0.2 must be listed,
				* 127.0.0.1 not; for IPv6 (when the source
				* lists any IPv6) ::ffff:7f00:2 / ::ffff:7f00:1 */
	double max_v4_share;   /* share of the IPv4 space listed, default 0.25 */
	double max_v6_share;   /* share of the IPv6 space listed, default 0.001 */
	unsigned min_v4_plen;  /* a listing shorter than this, default 8 */
	unsigned min_v6_plen;  /* same for IPv6, default 16 */
};

struct moat_sanity_result {
	bool quarantine;
	char reason[200];      /* why, "" when fine */
	double v4_share, v6_share; /* exact share of each space listed */
	size_t v4, v6;         /* listings (excludes not counted) */
	uint64_t plens[2][3];  /* prefix lengths present (bit per length), v4 / v6 */
};

/* moat_sanity_verdict - the answer the listings give for an address (full
 * length prefix): the most specific containing prefix decides, an exclude
 * there wins; returns true when listed and the first code in *code. */
bool moat_sanity_verdict(const struct moat_listing *l, size_t n,
			 const struct moat_prefix *addr, uint32_t *code);

/* moat_sanity_check - run every check; cfg fields left 0 take defaults.
 * Returns 0, or -ENOMEM. */
int moat_sanity_check(const struct moat_sanity_cfg *cfg, const struct moat_listing *l,
		      size_t n, struct moat_sanity_result *res);

/* moat_sanity_check_delta_set - the same checks on the set an IXFR
 * makes, without building it or passing over it: set->range appends to
 * out the new set's listings inside prefix r, or with exact those of
 * prefix r itself, sorted; 0 or -ENOMEM (the zone tree, zone.h: no copy of
 * the zone is kept).  The old set is the new one minus add plus del,
 * wherever a check needs it; was is its own result (shares, counts, prefix
 * lengths).  Only the regions the delta touches are recomputed, and only
 * what the delta adds is held against the minimum prefix length.  res as
 * moat_sanity_check's for the new set (the counts assume every deleted
 * listing was in the old set).  Returns 0, or -ENOMEM. */
struct moat_lvec;
struct moat_sanity_set {
	int (*range)(void *ctx, const struct moat_prefix *r, bool exact, struct moat_lvec *out);
	void *ctx;
};
int moat_sanity_check_delta_set(const struct moat_sanity_cfg *cfg,
				const struct moat_sanity_set *set,
				const struct moat_sanity_result *was,
				const struct moat_listing *add, size_t nadd,
				const struct moat_listing *del, size_t ndel,
				struct moat_sanity_result *res);

/* The checks of moat_sanity_check over a set that comes in chunks, in
 * moat_listing_cmp order (a zone walked with moat_zone_cursor_next): no
 * copy of the set, O(1) memory.  The result equals moat_sanity_check's on
 * the whole set.  feed returns -EINVAL for a listing out of order. */
struct moat_sanity_stream;
struct moat_sanity_stream *moat_sanity_stream_new(const struct moat_sanity_cfg *cfg);
int moat_sanity_stream_feed(struct moat_sanity_stream *st, const struct moat_listing *l,
			    size_t n);
void moat_sanity_stream_finish(struct moat_sanity_stream *st, struct moat_sanity_result *res);
void moat_sanity_stream_free(struct moat_sanity_stream *st);

#endif /* MOAT_SANITY_H */
