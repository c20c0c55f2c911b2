/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan.h - moat's content gate: Hyperscan rules over a message in flight.
 *
 * The SMTP engine registers scan_filter_ops (filter.h) as filter "scan"
 * after scan_init(), and calls scan_reload() on SIGHUP / "rules reload".
 *
 * Rules come from a native rules file (docs/content-gate.md) and optionally
 * from SpamAssassin .cf files.  They compile into one refcounted scan_db:
 * a streaming Hyperscan database per scope (raw message, headers, decoded
 * bodies), a block database evaluating SpamAssassin meta rules as Hyperscan
 * logical combinations, and the rule table.  A message keeps the scan_db it
 * was opened with, so a reload never changes the rules under a message.
 */
#ifndef MOAT_SMTP_SCAN_H
#define MOAT_SMTP_SCAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hs/hs.h>

#include "filter.h"
#include "scan_mime.h"

extern const struct filter_ops scan_filter_ops;

/* Configuration the engine passes (config keys in docs/content-gate.md). */
struct scan_config {
	const char *rules_path; /* scan_rules: native rules file (required) */
	const char *sa_dir;     /* scan_sa_dir: SpamAssassin .cf dir, or NULL */
	const char *cache_dir;  /* scan_cache_dir: compiled db cache, or NULL */
	double threshold;       /* scan_threshold: default 5.0 when 0 */
	struct mime_limits limits; /* scan_max_depth, scan_max_parts */
};

/* scan_init - load the rules (from cache when valid) and make them live.
 * 0 or -errno; on error err says why (file:line: rule ID: message). */
int scan_init(const struct scan_config *cfg, char *err, size_t errsz);
/* scan_reload - load again (path NULL: the configured rules file) and swap
 * for new messages; on error the old rules stay live.  Thread-safe. */
int scan_reload(const char *path, char *err, size_t errsz);
/* scan_fini - drop the live rules (messages in flight keep theirs). */
void scan_fini(void);

/* ---- rules and compiled databases ---- */

enum scan_scope {
	SCOPE_RAW = 0,  /* the message bytes as received */
	SCOPE_HEADER,   /* one top-level header value, unfolded */
	SCOPE_BODY,     /* a line of the rendered body (scan_render.h) */
	SCOPE_META,     /* SpamAssassin meta: boolean over other rules */
	SCOPE_EXISTS,   /* a header of this name is present */
	SCOPE_RAWBODY,  /* a chunk of a text part, decoded, not rendered */
	SCOPE_URI,      /* one URI of the body (HTML links, written URLs) */
};
enum scan_action { ACT_SCORE = 0, ACT_REJECT };

struct scan_rule {
	char *id;
	char *pattern;        /* Hyperscan expression, or the meta expression */
	unsigned flags;       /* HS_FLAG_* */
	enum scan_scope scope;
	char *hname;          /* header name (SCOPE_HEADER/EXISTS), NULL: any */
	enum scan_action action;
	double score;
	char *reply;          /* reject text */
	char *src;            /* "file:line" */
	int in_meta;          /* some meta reads this rule */
};

/* a rule that could not be imported, and why */
struct scan_skip {
	char *id;
	char *src;
	char *reason;
	int scored;           /* it carries a non-zero score */
};

/* One database per scope.  raw and header are streaming (a message, a
 * header); body, rawbody and uri scan bounded units (a rendered line, a
 * chunk, a URI; scan_render.h) each in one block call, like meta. */
enum scan_dbi { SDB_RAW = 0, SDB_HEADER, SDB_BODY, SDB_META, SDB_RAWBODY, SDB_URI,
		SDB_N };

/* scan_scope_dbi - the database a rule of scope s compiles into; -1 for
 * scopes evaluated without one (meta, exists) */
static inline int scan_scope_dbi(enum scan_scope s)
{
	switch (s) {
	case SCOPE_RAW: return SDB_RAW;
	case SCOPE_HEADER: return SDB_HEADER;
	case SCOPE_BODY: return SDB_BODY;
	case SCOPE_RAWBODY: return SDB_RAWBODY;
	case SCOPE_URI: return SDB_URI;
	default: return -1;
	}
}

/* scan_dbi_mode - HS_MODE_STREAM or HS_MODE_BLOCK for database w */
static inline unsigned scan_dbi_mode(int w)
{
	return w == SDB_RAW || w == SDB_HEADER ? HS_MODE_STREAM : HS_MODE_BLOCK;
}
enum scan_cache { CACHE_OFF = 0, CACHE_MISS, CACHE_HIT, CACHE_STALE };

struct scan_db {
	atomic_uint refs;
	uint64_t gen;                /* load generation */
	struct scan_rule *rules;     /* Hyperscan id = index */
	size_t nrules, cap;
	struct scan_skip *skips;
	size_t nskips, skipcap;
	double threshold;
	hs_database_t *db[SDB_N];    /* NULL when the scope has no rules */
	size_t stream_size;          /* bytes of stream state per message */
	unsigned *exists;            /* SCOPE_EXISTS rule indices */
	size_t nexists;
	enum scan_cache cache;
	unsigned sa_files;           /* .cf files read */
	unsigned sa_scored_total;    /* scored rules defined in them */
	unsigned sa_scored_imported; /* of those, imported */
	unsigned sa_imported;        /* rules of any kind imported */
};

struct scan_load_opts {
	const char *rules_path;
	const char *sa_dir;
	const char *cache_dir;
	double threshold;
};

/* scan_db_load - parse, validate, compile (or load from cache) a db.
 * Native rules must all be valid; SpamAssassin rules that are not are
 * listed in db->skips.  0 or -errno with err filled. */
int scan_db_load(const struct scan_load_opts *o, struct scan_db **out,
		 char *err, size_t errsz);
/* scan_db_ref / scan_db_unref - refcount; the last unref frees */
struct scan_db *scan_db_ref(struct scan_db *d);
void scan_db_unref(struct scan_db *d);
/* scan_db_current - a reference to the live db (NULL if none) */
struct scan_db *scan_db_current(void);
/* scan_db_install - make d live (takes the caller's reference) */
void scan_db_install(struct scan_db *d);

/* scan_scanned_bytes - bytes the calling thread has passed to Hyperscan
 * streams so far, every scope counted (a byte scanned as raw and as body
 * counts twice): what the benchmark divides by.  Never fails. */
uint64_t scan_scanned_bytes(void);

/* ---- units and confirmation (prefilter rules) ----
 * Declaration copied from branch saeng (commit ddc0439), which defines it;
 * this branch calls it at the end of every body line, rawbody chunk and
 * URI (scan.c on_unit) and has a no-op stand-in until the merge. */
/* SCAN_BODY_UNITS - 1 once the body side calls scan_unit_end(SCOPE_BODY)
 * at the end of each unit: this branch does. */
#ifndef SCAN_BODY_UNITS
#define SCAN_BODY_UNITS 1
#endif

/* scan_unit_end - the unit of scope s (text, len bytes) is complete:
 * confirm the prefilter hits it produced.  Never fails (a confirmation that
 * runs out of PCRE2 match budget counts as no match). */
void scan_unit_end(struct filter_msg *m, enum scan_scope s, const char *text, size_t len);

/* scan_msg_db - the db a message was opened with (tests) */
struct scan_db *scan_msg_db(struct filter_msg *m);

#endif /* MOAT_SMTP_SCAN_H */
