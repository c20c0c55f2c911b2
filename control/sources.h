/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sources.h - moat-controld's glue to the source library (libmoatsrc:
 * sources/xfr.h, zone.h, sanity.h): start and drive transfers from the
 * event loop, read rbldnsd files, answer NOTIFY, run sanity checks.  Its
 * entry points return what happened (struct src_result, struct
 * src_notice); zonemgr.c, their caller, decides what that means for the
 * zone and the table.  The glue never calls into the zone manager: calls
 * go one way, zonemgr.c -> sources.c -> sources/ (libmoatsrc) -> lib/.
 */
#ifndef MOAT_CONTROLD_SOURCES_H
#define MOAT_CONTROLD_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "lvec.h"

struct cd;
struct cd_tag;
struct cd_zone;
struct moat_listing;
struct moat_lvec;
struct moat_prefix;
struct moat_sanity_result;

/* A zone's set as a sorted source, walked in chunks (no whole copy):
 * the zone tree of a transfer (src_set_tree) or an array (src_set_array:
 * an rbldnsd file's parse, a restore from disk).  next appends about max
 * listings to out in moat_listing_cmp order (none: the end), rewind
 * starts over, range (tree only, else NULL) answers the sanity checks'
 * queries (sanity.h moat_sanity_set). */
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

/* What a step of a zone's load came to.  The glue never calls into the
 * zone manager: zonemgr.c applies the result (the table, the zone's
 * state, persistence) and then frees it with src_result_free. */
enum src_kind {
	SRC_NONE = 0,   /* nothing to apply: a transfer runs, a file is being
			 * written or could not be looked at */
	SRC_LOADED,     /* data: a full set, or an IXFR delta (add, del) */
	SRC_UPTODATE,   /* the primary has the serial we serve */
	SRC_FAILED,     /* the load failed (error); previous data keeps serving */
};
struct src_result {
	enum src_kind kind;
	int full;               /* LOADED: set is the whole new data */
	struct src_set set;     /* LOADED: the zone after the load (a delta's
				 * checks and base rewrite walk it) */
	uint32_t serial;        /* LOADED, UPTODATE */
	struct moat_lvec add, del; /* LOADED delta (empty for a full set) */
	int64_t next_in;        /* >= 0: the next attempt this many seconds
				 * after the result is applied (the source's
				 * own timer: SOA refresh/retry, a file's
				 * poll); -1: as the zone manager set it */
	char error[256];        /* FAILED */
};
/* src_result_free - close the set, free the delta; kind back to NONE */
void src_result_free(struct src_result *r);

/* src_due - 1 when zone z should start a load now */
int src_due(struct cd *d, struct cd_zone *z, time_t now);
/* src_start - begin a load: an rbldnsd file is read at once (res: LOADED
 * or FAILED), a transfer is started (res: NONE, its end comes through
 * src_io) or fails to start (FAILED).  0 or -errno; res always set. */
int src_start(struct cd *d, struct cd_zone *z, int forced, struct src_result *res);
/* src_cancel - abort and free the zone's transfer state */
void src_cancel(struct cd *d, struct cd_zone *z);
/* src_io - the zone's transfer socket is ready (events 0: deadline
 * check); res: NONE while it runs, else how the transfer ended */
void src_io(struct cd *d, struct cd_zone *z, uint32_t events, struct src_result *res);
/* src_timed_out - the zone's running transfer is past its deadline
 * (src_io with events 0 ends it) */
bool src_timed_out(const struct cd_zone *z);
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

/* What one NOTIFY message asks of the zone manager (the glue has checked
 * and answered it). */
struct src_notice {
	unsigned nread;         /* UDP messages read since the caller zeroed
				 * the notice (at most 64 a wake-up) */
	struct cd_zone *zone;   /* accepted: refresh this zone now (NULL:
				 * refused, dropped, or no message) */
	/* transfer zones whose state could not be set up to match the
	 * message against: each a failed load, why says why */
	size_t nfailed;
	struct {
		struct cd_zone *zone;
		const char *why;
	} failed[CFG_MAX_ZONES];
};
/* src_notify_open - UDP and TCP listeners for NOTIFY (before the
 * privilege drop) */
int src_notify_open(struct cd *d, char *err, size_t errsz);
/* src_notify_next - a NOTIFY socket (t: TAG_NOTIFY, or TAG_NOTIFY_TCP, a
 * listener or a connection) is readable: answer the next message waiting
 * there, *nt says what it asks (a listener accepts connections and
 * answers nothing).  Zero *nt before the first call of a wake-up.  1
 * when more may wait (call again, same t), 0 when not for now: t may be
 * gone then (a closed connection); *nt holds what the call answered
 * either way. */
int src_notify_next(struct cd *d, struct cd_tag *t, struct src_notice *nt);
void src_notify_close(struct cd *d);
/* src_notify_tick - close stalled TCP NOTIFY connections */
void src_notify_tick(time_t now);
/* src_notify_tcp_open - TCP NOTIFY connections held now (at most 8) */
unsigned src_notify_tcp_open(void);

#endif /* MOAT_CONTROLD_SOURCES_H */
