/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sources.h - moat-controld's glue to the source library (libmoatsrc:
 * sources/xfr.h, zone.h, sanity.h): start and drive transfers from the
 * event loop, answer NOTIFY, run sanity checks.  zonemgr.c decides what a
 * finished load means for the table.
 */
#ifndef MOAT_CONTROLD_SOURCES_H
#define MOAT_CONTROLD_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cd;
struct cd_zone;
struct moat_listing;

/* src_due - 1 when zone z should start a load now */
int src_due(struct cd *d, struct cd_zone *z, time_t now);
/* src_start - begin a load; completion calls zm_zone_load/zm_zone_failed.
 * 0 or -errno (already reported through zm_zone_failed). */
int src_start(struct cd *d, struct cd_zone *z, int forced);
/* src_cancel - abort and free the zone's transfer state */
void src_cancel(struct cd *d, struct cd_zone *z);
/* src_io - the zone's transfer socket is ready (events 0: deadline check) */
void src_io(struct cd *d, struct cd_zone *z, uint32_t events);
/* src_tick - deadlines of running transfers */
void src_tick(struct cd *d, time_t now);
/* src_reset - forget transfer state (next load is a full AXFR) */
void src_reset(struct cd *d, struct cd_zone *z);
/* src_sanity - an IXFR delta's checks, set the zone after it (the tree);
 * 1 when the checks ran and passed (res: their result), 0 when the load
 * may be published unchecked (sanity = no), -1 with a reason */
struct src_delta {
	const struct moat_listing *add, *del;
	size_t nadd, ndel;
};
int src_sanity(const struct cd_zone *z, const struct src_set *set,
	       const struct src_delta *dl, struct moat_sanity_result *res, char *why,
	       size_t whysz);
/* A zone's set as a sorted source, walked in chunks (no whole copy):
 * the zone tree of a transfer (src_set_tree) or an array (src_set_array:
 * an rbldnsd file's parse, a restore from disk).  next appends about max
 * listings to out in moat_listing_cmp order (none: the end), rewind
 * starts over, range (tree only, else NULL) answers the sanity checks'
 * queries (sanity.h moat_sanity_set). */
struct moat_lvec;
struct moat_prefix;
struct src_set {
	int (*next)(void *ctx, struct moat_lvec *out, size_t max);
	void (*rewind)(void *ctx);
	int (*range)(void *ctx, const struct moat_prefix *r, bool exact, struct moat_lvec *out);
	/* an array the set owns: zonemgr frees it as soon as the table and
	 * the base file have it (before publishing: the mapped maps grow
	 * then), see zm_zone_load; NULL otherwise */
	void (*release)(void *ctx);
	void *ctx;
	int tree;
};
/* src_set_tree - the transfer's current zone; -ENOENT without one */
int src_set_tree(const struct cd_zone *z, struct src_set *s);
/* src_set_array - l[0..n) (sorted, normalised; not copied); owned: the
 * set frees l (release, or src_set_close) */
int src_set_array(struct moat_listing *l, size_t n, bool owned, struct src_set *s);
void src_set_close(struct src_set *s);
/* src_sanity_full - a full load's checks, streamed over set; *n gets its
 * size.  Returns like src_sanity. */
int src_sanity_full(const struct cd_zone *z, const struct src_set *set, size_t *n,
		    struct moat_sanity_result *res, char *why, size_t whysz);

/* src_notify_open - UDP listeners for NOTIFY (before the privilege drop) */
int src_notify_open(struct cd *d, char *err, size_t errsz);
/* src_notify_io - a NOTIFY socket is readable */
void src_notify_io(struct cd *d, int fd);
void src_notify_close(struct cd *d);
struct cd_tag;
/* src_notify_tcp_io - a TCP NOTIFY listener or connection is ready */
void src_notify_tcp_io(struct cd *d, struct cd_tag *t);
/* src_notify_tick - close stalled TCP NOTIFY connections */
void src_notify_tick(time_t now);
/* src_notify_tcp_open - TCP NOTIFY connections held now (at most 8) */
unsigned src_notify_tcp_open(void);

#endif /* MOAT_CONTROLD_SOURCES_H */
