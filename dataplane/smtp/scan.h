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
 * bodies), SpamAssassin meta rules compiled to short-circuit code over the
 * hit bitmap (scan_meta.c), and the rule table.  A message keeps the scan_db it
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
	SCOPE_HEADER,   /* a header view: the values of one header name
			 * (or pseudo-header, or modifier) joined as
			 * SpamAssassin's get() does, or the whole block
			 * (ALL); evaluated at the end of the header section */
	SCOPE_BODY,     /* a line of the rendered body (scan_render.h) */
	SCOPE_META,     /* SpamAssassin meta: boolean over other rules */
	SCOPE_EXISTS,   /* a header of this name is present */
	SCOPE_RAWBODY,  /* a chunk of a text part, decoded, not rendered */
	SCOPE_URI,      /* one URI of the body (HTML links, written URLs) */
	SCOPE_EVAL,     /* a built-in SpamAssassin eval test (enum scan_eval) */
};

/* the SpamAssassin eval tests moat implements (docs/content-gate.md) */
enum scan_eval {
	EVAL_MISSING_TO = 1,  /* check_for_missing_to_header() */
	EVAL_SUBJ_ALL_CAPS,   /* subject_is_all_caps() */
	EVAL_HDR_COUNT,       /* check_header_count_range(hname, ea, eb) */
	EVAL_ILLEGAL_CHARS,   /* check_illegal_chars(hname, ea ratio, eb count) */
	EVAL_TRUNCATED,       /* check_msg_parse_flags('truncated_header') */
};
enum scan_action { ACT_SCORE = 0, ACT_REJECT };

struct scan_rule {
	char *id;
	char *pattern;        /* Hyperscan expression, or the meta expression;
			       * EVAL_RELAYS_HDR: its prefilter in
			       * scan_db.rdb[ea], "" when it has none */
	unsigned flags;       /* HS_FLAG_* */
	enum scan_scope scope;
	char *hname;          /* header name (SCOPE_HEADER/EXISTS), NULL: any;
			       * SpamAssassin views keep their modifiers
			       * ("From:addr", "ToCc", "ALL") */
	int view;             /* index in scan_db.views, -1: any header */
	char *unset;          /* [if-unset: X]: the value of an absent header */
	int prefilter;        /* Hyperscan matches a superset: confirm */
	void *re;             /* pcre2_code * that confirms (prefilter rules) */
	int rstart;           /* a prefilter rule whose Hyperscan form is one
			       * iteration of its final repeat ((?:X){3} -> X):
			       * it fires on far more units than match, so it
			       * is confirmed only where a match can start
			       * (SDB_START), with re_start */
	void *re_start;       /* pcre2_code *: re anchored at its start offset */
	int eval;             /* SCOPE_EVAL: enum scan_eval */
	double ea, eb;        /* its numeric arguments */
	enum scan_action action;
	double score;
	char *reply;          /* reject text */
	char *src;            /* "file:line" */
	int dead;             /* it cannot change a verdict: a score rule
			       * scoring 0 that no meta which counts reads
			       * (scan_rules.c, mark_dead): not compiled,
			       * matched or evaluated, as SpamAssassin does
			       * not run it */
	int side;             /* a uri rule matching "http://www.example.com/":
			       * SDB_URI_SIDE (scan_rules.c, mark_side); a
			       * prefilter rule of the view ALL whose form
			       * fires on an ordinary header block: confirmed
			       * on every block, not compiled (mark_hside) */
	char *gate;           /* a uri rule every match of which holds one of
			       * these literals ("(?:l1|l2)", scan_lits_avoid),
			       * each of SCAN_GATE_MIN bytes or more, none in an
			       * ordinary URI: SDB_URI_GATED, this expression
			       * in SDB_URI (scan_rules.c, mark_gate) */
	unsigned char *bytes; /* a body, rawbody or uri rule that matches one
			       * byte ("[\x80-\xff]", "\S"): the 256 bytes it
			       * matches (1), tested in C on each unit instead
			       * of compiled (scan_rules.c, mark_bytes) */
	unsigned char *run;   /* a full rule "^C{N}" with /m, C one byte class
			       * that does not hold \n (SpamAssassin's
			       * __LONGLINE "^[^\r\n]{998}"): the 256 bytes of
			       * C, tested in C on the raw stream instead of
			       * compiled (scan_rules.c, mark_runs) */
	unsigned run_n;       /* its N */
	int gap;              /* a body rule with "[_\W]{0,3}"-like gaps: in
			       * SDB_BODY_GAP only, scanned where its skeleton
			       * form fires (scan_rules.c, mark_gap) */
	char **skel;          /* gap: its skeleton forms, one per tier of
			       * lines (SDB_SKEL + t; scan_skel), NULL where
			       * it cannot match such a line */
};

/* a rule that could not be imported, and why */
struct scan_skip {
	char *id;
	char *src;
	char *reason;
	int scored;           /* it carries a non-zero score */
};

/* how an imported SpamAssassin rule runs (moat-scan --sa-report) */
enum sa_kind {
	SA_KIND_EXACT = 0, /* Hyperscan matches it exactly */
	SA_KIND_PREFILTER, /* Hyperscan prefilter, confirmed by PCRE2 */
	SA_KIND_META,      /* a meta over imported rules */
	SA_KIND_EVAL,      /* an eval: test moat implements */
	SA_KIND_N
};

/* One database per scope.  raw is streaming (the message); header views,
 * body, rawbody and uri scan bounded units (a view, a rendered line, a
 * chunk, a URI; scan_render.h) each in one block call.
 * SDB_HEADER holds only the header rules of no view (native "header"
 * rules, each header scanned alone); every header view has a database of
 * its own (scan_db.vdb), so each view's scan runs only the rules reading
 * it.  SDB_BODY_ASCII holds the body rules as they read a line without a
 * byte past 0x7f (scan_ascii_only): such lines are scanned with it, the
 * others with SDB_BODY; NULL when it did not compile (SDB_BODY serves).
 * SDB_START holds the rules marked rstart read backwards (scan_reverse),
 * every match reported: a scan of a reversed unit gives where the rule's
 * matches may start; NULL when it did not compile (confirmation then
 * reads the whole unit).  SDB_BODY_ASIDE holds the ASCII forms of the
 * body rules with a group repeated SCAN_ASIDE_REPEAT times or more
 * (scan_aside), left out of SDB_BODY_ASCII: an ASCII line is scanned on
 * both; when either does not compile both are NULL (SDB_BODY serves).
 * SDB_URI_SIDE holds the uri rules that match an ordinary URI
 * (scan_rule.side), left out of SDB_URI: a URI is scanned on both.
 * SDB_BODY_GAP holds the body rules with gaps (scan_rule.gap), left out
 * of the three above: a body line is scanned on it only where their
 * skeleton forms fire on the line's letters and digits: SDB_SKEL + t
 * holds the forms for the lines of tier t, the set of the few bytes
 * outside [A-Za-z0-9] the rules' classes name that the line holds
 * (scan_db.skel; scan.c, gap_gate).
 * SDB_URI_GATED holds the uri rules with a gate (scan_rule.gate), left out
 * of SDB_URI, which holds their gates instead under the id nrules: a URI
 * is scanned on SDB_URI_GATED only when a gate fired on it. */
enum scan_dbi { SDB_RAW = 0, SDB_HEADER, SDB_BODY, SDB_RAWBODY, SDB_URI,
		SDB_BODY_ASCII, SDB_START, SDB_BODY_ASIDE, SDB_URI_SIDE,
		SDB_BODY_GAP, SDB_URI_GATED, SDB_SKEL, SDB_N = SDB_SKEL + 16 /* SCAN_SKEL_TIERS */ };

/* scan_scope_dbi - the database a rule of scope s compiles into; -1 for
 * scopes evaluated without one (meta, exists, eval).  A header rule of a
 * view goes to that view's database instead (scan_rules.c). */
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
	return w == SDB_RAW ? HS_MODE_STREAM : HS_MODE_BLOCK;
}
/* the relay strings EVAL_RELAYS_HDR rules read: SA_RELAYS_N
 * (scan_received.h) X-Spam-Relays-* views, then EnvelopeFrom */
enum { SCAN_NRDB = 5 };
/* full rules tested in C as runs of one byte class (scan_rule.run); more
 * stay compiled */
enum { SCAN_RUNS_MAX = 4 };
enum scan_cache { CACHE_OFF = 0, CACHE_MISS, CACHE_HIT, CACHE_STALE };

/* what a Hyperscan match of a rule needs to know, one byte per rule
 * (scan_db.rflag): the match callback reads this small array, not the
 * rule table (hundreds of KB, a cache miss a match) */
enum { SCAN_RF_PREFILTER = 1, SCAN_RF_HEADER = 2, SCAN_RF_REJECT = 4 };
/* scan_db.skel; a tier is a set of 4 bits: the first three bytes outside
 * [A-Za-z0-9] that the gap rules' classes name get a bit each, the others
 * share the fourth (scan_rules.c, mark_gap) */
enum { SCAN_SK_ALNUM = 1, SCAN_SKEL_TIERS = 16 };
_Static_assert(SDB_N == SDB_SKEL + SCAN_SKEL_TIERS, "one SDB_SKEL database per tier");

struct scan_db {
	atomic_uint refs;
	uint64_t gen;                /* load generation */
	struct scan_rule *rules;     /* Hyperscan id = index */
	size_t nrules, cap;
	uint8_t *rflag;              /* per rule: SCAN_RF_* of rules[i] */
	struct scan_skip *skips;
	size_t nskips, skipcap;
	double threshold;
	hs_database_t *db[SDB_N];    /* NULL when the scope has no rules */
	size_t stream_size;          /* bytes of stream state per message */
	unsigned *exists;            /* SCOPE_EXISTS rule indices */
	size_t nexists;
	char **views;                /* distinct header views rules read,
				      * sorted case-insensitively */
	size_t nviews;
	hs_database_t **vdb;         /* per view: its rules (block mode) */
	hs_database_t *rdb[SCAN_NRDB]; /* per relay string (X-Spam-Relays-*,
				      * then EnvelopeFrom): the prefilters of
				      * the EVAL_RELAYS_HDR rules reading it
				      * (block mode), NULL when none */
	int hdr_any;                 /* some header rule reads every header */
	unsigned *unsets;            /* header rules with [if-unset: ] */
	size_t nunsets;
	unsigned nprefilter;         /* rules confirmed by PCRE2 */
	unsigned *evals;             /* SCOPE_EVAL rule indices */
	size_t nevals;
	unsigned *metas;             /* SCOPE_META rule indices, in order */
	size_t nmetas;
	unsigned *brules;            /* rules with a byte set (scan_rule.bytes) */
	unsigned runs[SCAN_RUNS_MAX]; /* rules with a run (scan_rule.run) */
	unsigned *hsides;            /* the header rules with side, in order */
	size_t nhsides;
	size_t nruns;
	unsigned char skel[256];     /* per byte: SCAN_SK_ALNUM ([A-Za-z0-9],
				      * the skeleton's bytes), or its tier bit
				      * << 1 (a byte the rules' classes name) */
	unsigned char skel_open[SCAN_SKEL_TIERS]; /* a tier some rule's form
				      * would not gate: its lines read
				      * SDB_BODY_GAP */
	int skel_off;                /* a skeleton database did not compile:
				      * SDB_BODY_GAP reads every body line */
	size_t nbrules;
	size_t meta_bad;             /* the rule scan_meta_build refused */
	size_t *moff;                /* meta k's code: mcode[moff[k]..moff[k+1]) */
	uint32_t *mcode;             /* (scan_meta.c), then the index below */
	const uint32_t *mlo, *mlist; /* in mcode: metas reading rule r are
				      * mlist[mlo[r]..mlo[r + 1]) */
	const uint32_t *mempty;      /* in mcode: bit k, meta k with no hit */
	enum scan_cache cache;
	unsigned sa_files;           /* .cf files read */
	unsigned sa_scored_total;    /* scored rules defined in them */
	unsigned sa_scored_imported; /* of those, imported */
	unsigned sa_local_total;     /* scored ones SpamAssassin runs without
				      * network tests and Bayes (not tflags
				      * net/learn, nor metas over them) */
	unsigned sa_local_imported;  /* of those, imported */
	unsigned sa_imported;        /* rules of any kind imported */
	unsigned sa_regex_scored_total;    /* scored body/rawbody/header/uri/full */
	unsigned sa_regex_scored_imported; /* of those, imported */
	unsigned sa_kind[SA_KIND_N];       /* scored imported rules by kind */
};

struct scan_load_opts {
	const char *rules_path;
	const char *sa_dir;
	const char *cache_dir;
	double threshold;
	int keep_all;   /* compile and run every rule, also those that cannot
			 * change a verdict (scan_rule.dead): for tests that
			 * score a rule after loading */
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

/* scan_meta_build - compile every meta's expression (scan_sa.c's
 * "T<rule>"/"F" combination) for scan_meta_eval; 0, -EINVAL (a malformed
 * expression), -E2BIG, -ENOMEM */
int scan_meta_build(struct scan_db *d);
/* scan_meta_eval - the value of meta d->metas[k] given the hit bitmap
 * hits (bit i: rule i hit) */
int scan_meta_eval(const struct scan_db *d, size_t k, const uint64_t *hits);

/* scan_scanned_bytes - bytes the calling thread has passed to Hyperscan
 * streams so far, every scope counted (a byte scanned as raw and as body
 * counts twice): what the benchmark divides by.  Never fails. */
uint64_t scan_scanned_bytes(void);

/* scan_addrs - the addresses (name 0) or display names (name 1) of an
 * address-list header value, as SpamAssassin's :addr/:name read it (RFC
 * 5322 leniently: elements split at commas outside quotes, comments and
 * angle brackets; group names ("list: a, b;") dropped; "Name <addr>" or
 * "addr (Name)"): fn gets each non-empty one, blanks trimmed */
typedef void scan_addr_fn(void *ctx, const char *p, size_t n, int name);
void scan_addrs(const char *v, size_t n, int name, scan_addr_fn *fn, void *ctx);

/* ---- units and confirmation (prefilter rules) ----
 *
 * A rule Hyperscan cannot match exactly is compiled with HS_FLAG_PREFILTER
 * (a superset) and confirmed with PCRE2 on the unit of text it came from:
 * one header view, the header block, one rendered body paragraph.  The
 * owner of a scope calls scan_unit_end at the end of each unit with the
 * unit's text; rules of that scope whose prefilter fired in the unit are
 * confirmed there (within the bounds below) and forgotten.  Confirmation
 * costs nothing when no prefilter fired. */
#define SCAN_BODY_PART_SCAN_SIZE 50000     /* SpamAssassin body_part_scan_size */
#define SCAN_RAWBODY_PART_SCAN_SIZE 500000 /* rawbody_part_scan_size */
#define SCAN_HDR_BLOCK_MAX 65536           /* SpamAssassin MAX_HEADER_LENGTH */
/* SCAN_BODY_UNITS - 1: the body side calls scan_unit_end() at the end of
 * every body line, rawbody chunk and URI (scan.c on_unit), so body rules
 * that need confirmation are imported. */
#ifndef SCAN_BODY_UNITS
#define SCAN_BODY_UNITS 1
#endif

/* scan_unit_end - the unit of scope s (text, len bytes) is complete:
 * confirm the prefilter hits it produced.  Never fails (a confirmation that
 * runs out of PCRE2 match budget counts as no match). */
void scan_unit_end(struct filter_msg *m, enum scan_scope s, const char *text, size_t len);

/* scan_unit_tap - when set (a benchmark tool, never moat-smtpd), called
 * with every rendered unit (kind: enum render_unit) before it is scanned */
typedef void scan_unit_tap_fn(int kind, const char *p, size_t n);
extern scan_unit_tap_fn *scan_unit_tap;

/* scan_msg_db - the db a message was opened with (tests) */
struct scan_db *scan_msg_db(struct filter_msg *m);

#endif /* MOAT_SMTP_SCAN_H */
