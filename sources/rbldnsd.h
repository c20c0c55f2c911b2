/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rbldnsd.h - rbldnsd data files (ip4set, ip4trie, ip6trie) as listings,
 * and the reload logic for files kept fresh by rsync.
 *
 * Syntax (rbldnsd(8) "DATASET FORMATS"):
 *   # or ; comment            $TTL n         (other $ lines ignored)
 *   :A:TXT                    default value for the entries that follow
 *                             (ip6trie: a line whose first word is an IPv6
 *                             address, e.g. "::ffff:7f00:2", is an entry)
 *   [!]ENTRY [VALUE]          ! = exclusion (carves out of a shorter listing)
 *   VALUE = :A:TXT | :A | TXT (TXT alone keeps the default A); A is a
 *           dotted address or a bare number N meaning 127.0.0.N
 *   ip4set / ip4trie ENTRY:   a.b.c.d   a.b.c (=/24)  a.b (=/16)  a (=/8)
 *                             a.b.c.d/n (also incomplete: 10.200/16)
 *                             a.b.c.d-e.f.g.h   a.b.c.d-h (last octet)
 *                             a.b.c-d (ranges of incomplete addresses)
 *   ip6trie ENTRY:            x:y::z[/n]
 * Ranges become the minimal set of CIDR prefixes.  Host bits set after /n,
 * an A outside IPv4, a range whose end precedes its start: the line is an
 * error, counted and reported with its number, and skipped (never guessed).
 */
#ifndef MOAT_RBLDNSD_H
#define MOAT_RBLDNSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lvec.h"

enum moat_rbl_type { MOAT_RBL_IP4SET = 1, MOAT_RBL_IP4TRIE, MOAT_RBL_IP6TRIE };

#define MOAT_RBL_MAX_ERRS 8

struct moat_rbl_stats {
	size_t lines, entries, excludes, errors;
	struct {
		unsigned line;
		char msg[96];
	} err[MOAT_RBL_MAX_ERRS]; /* the first errors, by line number */
};

/* moat_rbl_type_parse - "ip4set" / "ip4trie" / "ip6trie"; 0 if unknown. */
enum moat_rbl_type moat_rbl_type_parse(const char *s);

struct moat_codes;
/* moat_rbl_parse - parse a whole data file held in buf[len] (need not be
 * NUL-terminated), appending listings with .source = source and .ttl from
 * $TTL (else default_ttl).  An entry whose A value is in codes (codes.h;
 * NULL: none) becomes an exclusion.  Returns 0 or -ENOMEM; bad lines are
 * counted in st (never fatal). */
int moat_rbl_parse(enum moat_rbl_type type, const char *buf, size_t len,
		   uint16_t source, uint32_t default_ttl, const struct moat_codes *codes,
		   struct moat_lvec *out, struct moat_rbl_stats *st);

struct moat_rbl_cfg {
	enum moat_rbl_type type;
	const char *path;
	uint16_t source;
	uint32_t ttl;          /* listing TTL when the file has no $TTL; default 0 */
	uint32_t settle_ms;    /* a file modified less than this ago is not read
				* yet (being written in place), default 2000 */
	size_t max_bytes;      /* refuse bigger files, default 1 GiB */
	const struct moat_codes *codes; /* never listings; NULL = the default
					 * set (moat_codes_default), copied */
};

struct moat_rbl_file;

/* moat_rbl_file_new - watch state for one data file (cfg copied). */
struct moat_rbl_file *moat_rbl_file_new(const struct moat_rbl_cfg *cfg);
void moat_rbl_file_free(struct moat_rbl_file *f);

/* moat_rbl_file_changed - stat() the path: true when it differs (device,
 * inode, size, mtime) from the last successful load, or was never loaded.
 * The daemon calls it on a timer (e.g. every 5 s) or on inotify. */
bool moat_rbl_file_changed(struct moat_rbl_file *f);

/* moat_rbl_file_load - read (open + fstat, so a file replaced by rename is
 * read whole from one inode) and parse.  If the file's size or mtime
 * changes while it is read, or it was modified within settle_ms, returns
 * -EAGAIN (written in place: try again later) and nothing is appended.
 * Other errors: -errno from open/read, -EFBIG.  On success the listings are
 * appended to out and the file identity is remembered. */
int moat_rbl_file_load(struct moat_rbl_file *f, struct moat_lvec *out,
		       struct moat_rbl_stats *st);

#endif /* MOAT_RBLDNSD_H */
