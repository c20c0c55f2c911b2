/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zstate.h - a zone's last good state on disk: a base file with every
 * listing, and a journal of the IXFR deltas applied since (like Knot's
 * zone journal), so a small IXFR costs one appended record, not a rewrite
 * of the whole zone.
 *
 *   zstate_save_base(base, journal, ...)  after an AXFR / file load / drop:
 *                                          the base rewritten (tmp + fsync +
 *                                          rename), the journal emptied
 *   zstate_append(journal, ...)           after an IXFR: one checksummed
 *                                          record appended and fsync'd
 *   zstate_compact_due(&info)             the caller's cue to rewrite the base
 *   zstate_load(base, journal, ...)       at start: the base, then every
 *                                          journal record that continues its
 *                                          serial chain
 *
 * A journal problem never loses the base: a torn or corrupt record (a crash
 * mid-append), a record of another base, or a serial gap ends the replay
 * there with a log line; the state up to the last good record is served and
 * the journal is cut back to it so later appends continue the chain.
 *
 * Also the plain whole-file helpers persist.c uses for its other files.
 */
#ifndef MOAT_ZSTATE_H
#define MOAT_ZSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "listing.h"

/* What a state carries besides the listings (struct cd_zone's fields). */
struct zstate_meta {
	uint32_t serial;
	uint32_t state;                /* enum cd_zone_state */
	int64_t last_success, expires_at;
	uint32_t soa_refresh, soa_retry, soa_expire;
	uint32_t pad;                  /* zero: the struct is written to disk */
};

/* What the files hold now: kept by the caller between calls. */
struct zstate_info {
	int valid;                /* base written or loaded by this process */
	uint32_t serial;          /* the serial the base + journal end at */
	uint64_t base_sum;        /* checksum of the base: journal records name it */
	uint64_t base_bytes;
	uint64_t journal_bytes;   /* good records only */
	uint64_t journal_records;
};

/* What zstate_load found in the journal. */
struct zstate_replay {
	uint64_t applied;         /* records replayed */
	uint64_t dropped_bytes;   /* cut off the journal's end (torn, corrupt, gap) */
	const char *stop;         /* why replay ended early, or NULL */
};

/* Compaction rule: rewrite the base once the journal is larger than a
 * quarter of the base and larger than ZSTATE_JOURNAL_MIN (small zones
 * would otherwise rewrite on every IXFR), or holds more than
 * ZSTATE_JOURNAL_MAX_RECORDS records (bounds the replay at start). */
#define ZSTATE_JOURNAL_MIN (1u << 20)
#define ZSTATE_JOURNAL_MAX_RECORDS 10000u

/* zstate_save_base - write the base (name, meta, l[0..n)) atomically, then
 * empty the journal.  info updated.  0 or -errno (the old files stay). */
int zstate_save_base(const char *base, const char *journal, const char *name,
		     const struct zstate_meta *m, const struct moat_listing *l, size_t n,
		     struct zstate_info *info);

/* zstate_save_base_stream - zstate_save_base with the listings from a
 * sorted source in chunks instead of one array (a zone tree's walk):
 * next(ctx, out, max) appends about max listings to out, none at the end;
 * exactly n must come (-EIO otherwise: the old files stay). */
struct moat_lvec;
typedef int (*zstate_next_fn)(void *ctx, struct moat_lvec *out, size_t max);
int zstate_save_base_stream(const char *base, const char *journal, const char *name,
			    const struct zstate_meta *m, size_t n, zstate_next_fn next,
			    void *ctx, struct zstate_info *info);
/* An array as a zstate_next_fn source (pos starts 0). */
struct zstate_array {
	const struct moat_listing *l;
	size_t n, pos;
};
int zstate_array_next(void *ctx, struct moat_lvec *out, size_t max);

/* zstate_append - one delta record (serial_from -> m->serial, add and del
 * as applied) appended to the journal and fsync'd.  -ESTALE when info says
 * the files do not end at serial_from (the caller saves the base instead);
 * on a write error the journal is cut back to its previous end. */
int zstate_append(const char *journal, uint32_t serial_from, const struct zstate_meta *m,
		  const struct moat_listing *add, size_t nadd,
		  const struct moat_listing *del, size_t ndel, struct zstate_info *info);

/* zstate_compact_due - does the journal call for a base rewrite? */
int zstate_compact_due(const struct zstate_info *info);

/* zstate_load - the base and the journal replayed on it: *l (sorted,
 * malloc'd, .source = source and .ttl = 0 on every listing), *n, meta.
 * -ENOENT without a base file, -EBADMSG for a damaged base (logged),
 * -ENOMEM.  rep may be NULL. */
int zstate_load(const char *base, const char *journal, const char *name, uint16_t source,
		struct zstate_meta *m, struct moat_listing **l, size_t *n,
		struct zstate_info *info, struct zstate_replay *rep);

/* zstate_write_file - header + body + checksum to path (tmp, fsync,
 * rename), created with mode; *sum (if not NULL) gets the checksum. */
int zstate_write_file(const char *path, mode_t mode, const void *hdr, size_t hl,
		      const void *body, size_t bl, uint64_t *sum);
/* zstate_read_file - a file written by zstate_write_file, its checksum
 * verified: *data (malloc'd) and *len without the checksum.  -errno,
 * -EINVAL (shorter than a checksum), -EBADMSG (checksum), -EISDIR or
 * -ENODEV (not a regular file, see zstate_open). */
int zstate_read_file(const char *path, void **data, size_t *len, uint64_t *sum);

/* zstate_open - a state file or journal opened with flags (O_RDONLY, or
 * O_WRONLY | O_CREAT | O_APPEND with mode) only when it is a regular file
 * (after links): a FIFO would block the daemon (opened O_NONBLOCK, then
 * refused), a directory or device is no state file.  The fd (O_CLOEXEC),
 * or -errno: -EISDIR (a directory), -ENODEV (a FIFO, device or socket).
 * Such a path is left alone: never read, replaced or moved. */
int zstate_open(const char *path, int flags, mode_t mode);

/* zstate_checksum - the checksum these files use (FNV-1a) over p[0..n),
 * continuing h (ZSTATE_CHECKSUM_INIT to start): for other record files */
#define ZSTATE_CHECKSUM_INIT 0xcbf29ce484222325ULL
uint64_t zstate_checksum(uint64_t h, const void *p, size_t n);

#endif /* MOAT_ZSTATE_H */
