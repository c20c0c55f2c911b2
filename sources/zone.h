/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zone.h - a DNSBL zone's records turned into listings that give, for every
 * address, the answer a DNS query to the primary would give (RFC 4592
 * wildcards, empty non-terminals included).
 *
 * The zone keeps a tree of owner names (label codes from owner.h) with each
 * node's A records and a count of its other records (full-depth IPv4 names
 * with one A record are kept as compact leaves outside it, zone.c), so
 * incremental changes (IXFR) become listing adds and deletes:
 *
 *   z = moat_zone_new("bl.example.", source);
 *   moat_zone_rr(z, MOAT_ZONE_ADD, owner, type, ttl, rdata, rdlen);  ... (AXFR)
 *   moat_zone_listings(z, &all);
 *
 *   moat_zone_begin(z);                        (IXFR)
 *   moat_zone_rr(z, MOAT_ZONE_DEL / ADD, ...);  ...
 *   moat_zone_commit(z, &add, &del);   or   moat_zone_rollback(z);
 *
 * Listing rules (per family, v4 names have 4 labels, v6 names 32):
 *  - a full-depth name with A records lists its /32 (/128), one listing per
 *    A record (code = the A value, ttl = its TTL);
 *  - "*.P" with A records lists P's prefix, and every existing child C of P
 *    that an address query can reach gets an .exclude listing for C's prefix
 *    (unless C itself lists exactly that prefix): the closest encloser of
 *    queries under C is C or below, so the wildcard at P never answers them
 *    (RFC 4592 §3.3.1); whatever C's subtree lists is more specific.
 *  - a name that exists without A records (TXT only, or an empty
 *    non-terminal) lists nothing and so answers "not listed".
 * SOA records are skipped (the apex always exists).  Names that are not
 * address names still make their ancestors exist; A records at such names are
 * counted in .undecodable and logged at debug level, never guessed at.
 */
#ifndef MOAT_ZONE_H
#define MOAT_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lvec.h"

struct moat_zone;

enum moat_zone_op { MOAT_ZONE_ADD = 1, MOAT_ZONE_DEL = 2 };

struct moat_zone_stats {
	size_t nodes;          /* tree nodes allocated */
	size_t a_records;      /* A records at address names */
	size_t other_records;  /* records of other types (SOA excluded) */
	size_t undecodable;    /* A records whose owner is not an address name */
};

/* moat_zone_new - empty zone for apex (presentation form, e.g.
 * "bl.example" or "bl.example."); listings carry .source = source.
 * Returns NULL on a bad apex or out of memory. */
struct moat_zone *moat_zone_new(const char *apex, uint16_t source);
void moat_zone_free(struct moat_zone *z);

/* moat_zone_apex - the apex in wire form (libknot knot_dname_t). */
const uint8_t *moat_zone_apex(const struct moat_zone *z);

/* moat_zone_rr - add or delete one record.  owner is a wire-format name
 * (uncompressed), rdata the record's wire rdata.  Errors: -EINVAL for an
 * owner outside the zone or an A record whose rdata is not 4 bytes,
 * -ENOENT for a delete of a record the zone does not hold, -ENOMEM.
 * A failed call leaves the zone unchanged. */
int moat_zone_rr(struct moat_zone *z, enum moat_zone_op op, const uint8_t *owner,
		 uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);

/* moat_zone_listings - append every listing of the zone to out, in
 * moat_listing_cmp order (so sorted when out was empty).  0 or -ENOMEM. */
int moat_zone_listings(struct moat_zone *z, struct moat_lvec *out);

/* A sorted walk over the zone's listings in chunks, so a whole zone never
 * needs to be one array (a 10M-entry zone is 305 MiB of listings):
 *   c = moat_zone_cursor_new(z);
 *   while (moat_zone_cursor_next(c, &chunk, 1 << 16) == 0 && chunk.n) ...
 * The zone must not change while a cursor is open.  The tree's own
 * listings (not the compact leaves) are collected once per cursor. */
struct moat_zone_cursor;
struct moat_zone_cursor *moat_zone_cursor_new(const struct moat_zone *z);
void moat_zone_cursor_free(struct moat_zone_cursor *c);
void moat_zone_cursor_rewind(struct moat_zone_cursor *c);
/* moat_zone_cursor_next - append about max of the next listings (whole
 * /16s of leaves) to out; nothing appended at the end.  0 or -ENOMEM. */
int moat_zone_cursor_next(struct moat_zone_cursor *c, struct moat_lvec *out, size_t max);
/* moat_zone_cursor_range - append the listings inside prefix r (exact:
 * of prefix r itself), sorted, to out; the walk does not move.  0 or
 * -ENOMEM. */
int moat_zone_cursor_range(const struct moat_zone_cursor *c, const struct moat_prefix *r,
			   bool exact, struct moat_lvec *out);

/* moat_zone_begin - start a change batch (undo log + affected nodes). */
int moat_zone_begin(struct moat_zone *z);
/* moat_zone_commit - end the batch; append the listings that disappeared to
 * del and the new ones to add (both sorted).  0 or -ENOMEM (then the
 * batch is rolled back). */
int moat_zone_commit(struct moat_zone *z, struct moat_lvec *add,
		     struct moat_lvec *del);
/* moat_zone_rollback - undo every change since moat_zone_begin. */
void moat_zone_rollback(struct moat_zone *z);

void moat_zone_get_stats(const struct moat_zone *z, struct moat_zone_stats *st);

struct moat_codes;
/* moat_zone_error_codes - answers that are never listings (codes.h):
 * their A records give no listing, and a name whose every A record is one
 * gives an .exclude (DNS answers it, so a wildcard above does not list
 * it).  NULL (the default) passes every code on.  Call before adding
 * records, else -EBUSY. */
int moat_zone_error_codes(struct moat_zone *z, const struct moat_codes *c);

/* moat_zone_keep_txt - keep the TXT records of address names (for
 * reasons shown by moat_zone_lookup); call before adding records, else
 * -EBUSY.  Costs memory: off by default. */
int moat_zone_keep_txt(struct moat_zone *z, bool on);

#define MOAT_ZONE_MAX_CODES 16

enum moat_zone_status { MOAT_ZONE_NXDOMAIN = 0, MOAT_ZONE_NODATA = 1, MOAT_ZONE_LISTED = 2 };

struct moat_zone_answer {
	enum moat_zone_status status;
	bool wildcard;                       /* synthesized from a wildcard */
	size_t ncodes;
	uint32_t codes[MOAT_ZONE_MAX_CODES]; /* the A records */
	uint32_t ttl;
	char txt[512];                       /* the TXT strings, when kept */
};

/* moat_zone_lookup - the answer DNS gives for addr (a full-length
 * prefix), computed from the zone tree independently of the listings:
 * for "why is this listed" and as a cross-check.  0 or -EINVAL. */
int moat_zone_lookup(const struct moat_zone *z, const struct moat_prefix *addr,
		     struct moat_zone_answer *ans);

#endif /* MOAT_ZONE_H */
