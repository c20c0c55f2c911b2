/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * vtable.h - the verdict table: many DNSBL listings in, one action per
 * source address out, compiled into the layout of bpf/moat_abi.h.
 *
 * Three layers:
 *   policy   sources (DNSBL zones, allowlists, operator entries) with
 *            weights per return-code range and two thresholds, modelled on
 *            Postfix postscreen dnsbl_sites / postscreen_dnsbl_threshold;
 *   db       the raw listings of every source (struct moat_listing,
 *            lib/listing.h), replaced per source (AXFR, file reload) or
 *            changed incrementally (IXFR, operator add/del), and the live
 *            compiled image the fast paths hold;
 *   image    the compiled form (tbl24 + 2-bit groups + IPv6 exact-match
 *            rules), diffed into safely ordered struct moat_update
 *            sequences (bpf/moat_abi.h "PUBLISHING ORDER").
 *
 * Verdict of one address a (the same in the compiler, vt_db_explain and
 * the reference model of the tests):
 *   for every source s: the entries of s whose prefix contains a; the
 *     longest of them decide (several entries with the same prefix = several
 *     A records).  If the deciding prefix is an .exclude entry, s says
 *     nothing.  Otherwise, with C the set of codes at the deciding prefix:
 *       DNSBL / ALLOWLIST: score += weight of every rule of s that matches
 *                          at least one code of C (each rule counts once);
 *       STATIC:            codes are enum moat_action: ALLOW, DROP, TARPIT.
 *   any STATIC ALLOW                          -> ALLOW (beats everything)
 *   else max(static action, score action) where score >= drop_at -> DROP,
 *        score >= tarpit_at -> TARPIT, else PASS  (PASS < TARPIT < DROP).
 *
 * DNSBL input filtering (DNSBL and ALLOWLIST sources): a code outside
 * 127.0.0.0/8 or inside one of the source's error ranges (default
 * 127.255.255.0/24 and 127.0.0.1) is not a listing: it is dropped and
 * counted (struct vt_source_counters), not an error.
 *
 * Threading: a db is not thread safe; one owner thread (moat-controld's
 * main loop) calls everything.  Images handed out are read-only snapshots
 * until the next call that changes the db.
 */
#ifndef MOAT_VTABLE_H
#define MOAT_VTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "listing.h"
#include "moat_abi.h"

/* ---------------------------------------------------------------- policy */

enum vt_source_kind {
	VT_SRC_DNSBL = 1,     /* listings with A-record codes, positive weights */
	VT_SRC_ALLOWLIST = 2, /* like DNSBL, weights must be <= 0 (dnswl.org) */
	VT_SRC_STATIC = 3,    /* operator entries: code = enum moat_action */
};

#define VT_NAME_MAX 64
#define VT_MAX_RULES 16     /* weight rules per source */
#define VT_MAX_ERRCODES 8   /* error-code ranges per source */
#define VT_MAX_SOURCES 256  /* sources per policy; ids are any uint16 */

/* Codes are A-record answers in host byte order: 127.0.0.2 = 0x7f000002. */
struct vt_code_range {
	uint32_t lo, hi; /* inclusive */
};

/* postscreen "zone=127.0.0.[2..3]*3": codes lo..hi add weight. */
struct vt_weight_rule {
	uint32_t lo, hi; /* inclusive */
	int32_t weight;
};

struct vt_source {
	uint16_t id;                 /* moat_listing.source */
	char name[VT_NAME_MAX];      /* zone or file name, for logs/explain */
	enum vt_source_kind kind;
	/* DNSBL/ALLOWLIST: no rules = one rule 127.0.0.0..127.255.255.255
	 * with weight +1 (DNSBL) or -1 (ALLOWLIST). STATIC: ignored. */
	uint32_t nrules;
	struct vt_weight_rule rules[VT_MAX_RULES];
	/* Error codes: errcodes_set == 0 means the defaults
	 * (127.255.255.0/24 and 127.0.0.1); set it to 1 with nerr == 0 for
	 * "no error codes".  STATIC: ignored. */
	uint8_t errcodes_set;
	uint32_t nerr;
	struct vt_code_range err[VT_MAX_ERRCODES];
	/* 1: a listing with ttl > 0 expires ttl seconds after it was added
	 * (operator entries with expiry, live lookups).  0: ttl is only
	 * informational (zone data; the zone refresh replaces it). */
	uint8_t expire_ttl;
};

struct vt_policy {
	uint32_t nsources;
	struct vt_source sources[VT_MAX_SOURCES];
	int32_t tarpit_at; /* score >= tarpit_at -> TARPIT; must be >= 1 */
	int32_t drop_at;   /* score >= drop_at -> DROP; must be >= tarpit_at */
	/* Groups freed by a publish are reused only after grace_ms
	 * (CLOCK_MONOTONIC) or after vt_db_grace_done(); 0 = VT_GRACE_DEFAULT_MS. */
	uint32_t grace_ms;
};

#define VT_GRACE_DEFAULT_MS 100
#define VT_TARPIT_AT_DEFAULT 3  /* postscreen_dnsbl_threshold default 1; */
#define VT_DROP_AT_DEFAULT 5    /* moat splits it into two levels */

/* vt_policy_init - empty policy with default thresholds and grace. */
void vt_policy_init(struct vt_policy *p);

/* vt_source_init - a source with defaults (no rules = default weight,
 * default error codes, no expiry; STATIC kind sets expire_ttl = 1). */
void vt_source_init(struct vt_source *s, uint16_t id, const char *name,
		    enum vt_source_kind kind);

/* vt_policy_add_source - append a copy of s; -ENOSPC when full, -EEXIST on
 * a duplicate id (err gets the text). */
int vt_policy_add_source(struct vt_policy *p, const struct vt_source *s,
			 char *err, size_t errsz);

/* vt_policy_validate - 0 or -EINVAL with a message in err: duplicate ids,
 * empty or unterminated names, lo > hi, allowlist with a positive weight,
 * more rules than VT_MAX_RULES, thresholds, and weights whose sum over all
 * sources could overflow int32 (|sum of all weights| must be < 2^31). */
int vt_policy_validate(const struct vt_policy *p, char *err, size_t errsz);

/* -------------------------------------------------------------- image */

/*
 * A compiled image: what one fast path holds.  The db owns its live image;
 * callers may also build images from update sequences (vt_image_apply),
 * e.g. to adopt the maps a previous moat-controld pinned.
 */
struct vt_image;

/* vt_image_new - an empty image (everything PASS); NULL on ENOMEM. */
struct vt_image *vt_image_new(void);
void vt_image_free(struct vt_image *img);
/* vt_image_clone - deep copy; NULL on ENOMEM. */
struct vt_image *vt_image_clone(const struct vt_image *img);

/* vt_image_apply - apply n updates in order, as a fast path would.
 * 0, -EINVAL (bad kind, index out of range, plens malformed) or -ENOMEM;
 * the updates before the bad one stay applied. */
int vt_image_apply(struct vt_image *img, const struct moat_update *u,
		   size_t n);

/* vt_image_lookup_v4 / _v6 - action of one address through the inline
 * lookup of bpf/moat_lookup.h (the code the fast path runs), one call per
 * address; vt_view.h has the same inline in the caller. */
uint32_t vt_image_lookup_v4(const struct vt_image *img, uint32_t addr_host);
uint32_t vt_image_lookup_v6(const struct vt_image *img, const uint8_t addr[16]);

/* vt_image_lookup_v6_rules - the same answer through moat_lookup_v6() of
 * bpf/moat_lookup.h (one rule probe per prefix length present), the IPv6
 * layout the XDP and DPDK fast paths read; vt_image_lookup_v6 reads the
 * trie of bpf/moat_trie6.h. */
uint32_t vt_image_lookup_v6_rules(const struct vt_image *img,
				  const uint8_t addr[16]);

/*
 * The arrays of a compiled image (bpf/moat_abi.h layout) as the fast path
 * reads them, read-only: for the inline lookups of vt_view.h (the lines of
 * bpf/moat_lookup.h with no call in between, as DPDK's rte_lpm_lookup() is
 * inline over the public tables of struct rte_lpm).  Pointers into the
 * image's own storage, or into the fast path's when the db shares it
 * (vt_db_share_groups, vt_db_share_tbl24).
 */
struct vt_trie6_mem;

struct vt_image_view {
	const uint32_t *tbl24;               /* MOAT_TBL24_ENTRIES entries */
	const struct moat_group *groups;     /* ngroups entries */
	uint32_t ngroups;                    /* group indices >= ngroups are
					      * absent: the address PASSes */
	const struct moat_v6_plens_buf *v6_plens; /* IPv6 prefix lengths in
						   * use, double-buffered */
	const struct vt_image *img;          /* IPv6 rules: vt_image_v6_get() */
	const struct vt_trie6_mem *v6t;      /* IPv6 trie (bpf/moat_trie6.h),
					      * NULL: no IPv6 rule */
};

/**
 * vt_image_view - the view of a compiled image.
 *
 * @img:  a compiled image (vt_db_image(), vt_image_new(), ...); not NULL.
 * @view: filled in.
 *
 * The view reads img's storage in place: it is valid until img changes or
 * goes (for the live image of a db: vt_db_publish/_cb, vt_db_adopt,
 * vt_db_share_*, vt_db_unshare, vt_db_free; else vt_image_apply,
 * vt_image_free).  Take it outside the loop that looks up.  Cannot fail.
 */
void vt_image_view(const struct vt_image *img, struct vt_image_view *view);

/**
 * vt_image_v6_get - the action word of the IPv6 rule with exactly this key
 * (what the XDP program's v6_rules map holds for it): MOAT_V6_GET of the
 * view's lookup.
 *
 * @img: a compiled image; not NULL.
 * @key: prefix length and the address masked to it.
 *
 * Returns a pointer into img (valid as long as a view of img), or NULL when
 * img has no rule with this key.
 */
const uint32_t *vt_image_v6_get(const struct vt_image *img,
				const struct moat_v6_key *key);

struct vt_image_stats {
	uint32_t groups_used;   /* groups referenced from tbl24 */
	uint32_t groups_hiwater;/* highest group index ever used + 1: size the
				 * fast path's group array at least this big */
	uint32_t tbl24_nonzero; /* tbl24 entries != 0 */
	uint32_t v6_rules;
	uint32_t v6_plens;
	uint64_t bytes;         /* tbl24 + groups in use + v6 rules (20+4 B) */
	uint64_t v6_trie_bytes; /* the IPv6 trie: root + nodes + buckets in use */
	uint32_t v6_trie_nodes, v6_trie_buckets;
};
void vt_image_stats(const struct vt_image *img, struct vt_image_stats *st);

/* vt_image_diff - the minimal update sequence turning old into new, in
 * publishing order.  Group indices of new are not kept: changed /24s get
 * groups allocated at indices unused by old (>= old's high-water mark), so
 * the sequence is safe against a reader of old.  *ups is malloc'd (free()
 * it); 0 or -ENOMEM. */
int vt_image_diff(const struct vt_image *old, const struct vt_image *new_img,
		  struct moat_update **ups, size_t *n);

/* vt_image_full - the whole image as updates for an empty fast path
 * (groups, then nonzero tbl24 entries, plens, v6 puts longest first). */
int vt_image_full(const struct vt_image *img, struct moat_update **ups,
		  size_t *n);

/* vt_image_equal_verdicts - 1 when both images give every IPv4 address and
 * every IPv6 rule key the same action (group indices may differ). */
int vt_image_equal_verdicts(const struct vt_image *a, const struct vt_image *b);

/* ----------------------------------------------------------------- db */

struct vt_db;

/* vt_db_new - a db with a copy of the policy (validated; NULL with a message
 * in err when invalid or on ENOMEM).  The live image starts empty. */
struct vt_db *vt_db_new(const struct vt_policy *p, char *err, size_t errsz);
void vt_db_free(struct vt_db *db);

/* vt_db_set_policy - replace the policy (sources may come and go; listings
 * of a source no longer in the policy are dropped).  Everything is
 * recomputed on the next publish.  0 or -EINVAL/-ENOMEM, db unchanged. */
int vt_db_set_policy(struct vt_db *db, const struct vt_policy *p,
		     char *err, size_t errsz);

/* vt_db_set_time - the wall clock (seconds) used for listings with expiry:
 * a listing added with ttl t expires at now + t.  vt_db_expire() sets it
 * too.  Starts at time(NULL). */
void vt_db_set_time(struct vt_db *db, uint64_t now);

/*
 * Listing changes.  Every entry must name `source` in .source, be a valid
 * prefix (family 4 or 6, plen <= 32/128, no host bits, pad zero), and for
 * STATIC sources have code TARPIT, DROP or ALLOW.  Duplicates (same prefix,
 * code and exclude flag twice, or a listing and an exclude on the same
 * prefix) are errors.  On any error: -EINVAL (or -ENOENT for an unknown
 * source, -ENOMEM), a message naming the entry in err, and the db is
 * exactly as before.  Ignored DNSBL answers are not errors (counted).
 * At most MOAT_V6_MAX_PLENS distinct IPv6 prefix lengths may be present
 * in the whole db (-E2BIG otherwise).
 */

/* vt_db_source_replace - all listings of source become l[0..n). */
int vt_db_source_replace(struct vt_db *db, uint16_t source,
			 const struct moat_listing *l, size_t n,
			 char *err, size_t errsz);

/* vt_db_source_apply - delete del[0..ndel) (each must be present, unless
 * its code is an ignored answer), then add add[0..nadd) (each must be
 * absent after the deletes; del+add of the same entry refreshes its
 * expiry).  Cost O(k log n). */
int vt_db_source_apply(struct vt_db *db, uint16_t source,
		       const struct moat_listing *add, size_t nadd,
		       const struct moat_listing *del, size_t ndel,
		       char *err, size_t errsz);

/* vt_db_source_dump - the stored listings of a source (ignored answers are
 * not stored), IPv4 then IPv6, in no particular order within a family;
 * .ttl is the time left for expiring entries, else 0.  *out malloc'd
 * (free() it).  0, -ENOENT or -ENOMEM.  Walks the whole store. */
int vt_db_source_dump(const struct vt_db *db, uint16_t source,
		      struct moat_listing **out, size_t *n);

/* vt_db_source_walk - the stored listings of a source in moat_listing_cmp
 * order (the order a zone's sorted set has), a chunk per call: w starts
 * zeroed; each call fills out[0..*n) with at most cap listings (whole
 * /24s; cap >= 512), *n = 0 at the end.  The position is a key, not an
 * index: changes to the source below the position between calls (a
 * chunked diff applying as it walks) do not disturb the walk.  .ttl as in
 * vt_db_source_dump.  0, -ENOENT, -ENOSPC (cap too small for one /24). */
struct vt_walk_key {
	uint8_t addr[16];
	uint8_t plen, excl;
	uint32_t code;
};
struct vt_walk {
	uint32_t next24;           /* IPv4 /24s below are done */
	int phase;                 /* 0 IPv4, 1 IPv6, 2 done */
	int have4, have6;          /* last4 / last6 hold the last emitted */
	struct vt_walk_key last4, last6;
};
int vt_db_source_walk(const struct vt_db *db, uint16_t source, struct vt_walk *w,
		      struct moat_listing *out, size_t cap, size_t *n);

/* vt_db_source_ignores - 1 when l is an answer source's policy ignores
 * (outside its rules, or an error code): never stored. */
int vt_db_source_ignores(const struct vt_db *db, uint16_t source, const struct moat_listing *l);

/* vt_db_expire - set the clock to now and drop listings whose expiry has
 * passed (expiry <= now).  Returns how many were dropped. */
size_t vt_db_expire(struct vt_db *db, uint64_t now);

/* vt_db_publish - recompute what changed since the last publish (dirty /24s
 * and dirty IPv6 prefixes only), make it the live image and return the
 * updates that take a fast path from the previous live image to the new
 * one, in publishing order (*ups malloc'd, free() it; *n may be 0).
 * Groups freed by this publish are not reused before the grace period.
 * 0, -ENOMEM or -ENOSPC (2^31 groups); on error *ups (free() it too)
 * holds the updates that were made live (a safe prefix: hand them to the
 * fast path as well), the rest stays dirty. */
int vt_db_publish(struct vt_db *db, struct moat_update **ups, size_t *n);

/*
 * vt_db_publish_cb - the same, streamed: the updates go to emit(ctx, u, n)
 * in order, in chunks of at most VT_EMIT_CHUNK, so a full 10M publish
 * (~15M updates, 1.2 GB as one array) needs no big buffer.  emit returns 0
 * or -errno.  After each chunk emit accepted, the live image includes it;
 * if emit (or memory) fails, the publish stops there and returns the
 * error: what was emitted stays live (every prefix of the sequence is
 * safe), the rest stays dirty for the next publish.  *count (may be NULL)
 * gets the number of updates emitted.  vt_db_publish() is this with an
 * emit that collects into one array.
 */
#define VT_EMIT_CHUNK 4096
typedef int (*vt_emit_fn)(void *ctx, const struct moat_update *u, size_t n);
int vt_db_publish_cb(struct vt_db *db, vt_emit_fn emit, void *ctx,
		     size_t *count);

/*
 * struct vt_updates, vt_updates_collect - a vt_emit_fn (or any emit of the
 * same shape, e.g. dp_table_walk_image's) that appends every chunk to one
 * growing malloc'd array: start from { NULL, 0, 0 }, free(.u) after.
 * Returns 0 or -ENOMEM (then .u keeps what was appended before).
 */
struct vt_updates {
	struct moat_update *u;
	size_t n, cap;
};
int vt_updates_collect(void *ctx, const struct moat_update *u, size_t n);

/* vt_db_grace_done - every reader has moved past all publishes so far
 * (e.g. the fast path confirmed): freed groups become reusable now.
 * Without it they become reusable grace_ms after the publish that freed
 * them. */
void vt_db_grace_done(struct vt_db *db);

/* vt_db_full_image - the live image as updates for an empty fast path
 * (a new XDP attach, the DPDK process starting).  Same as vt_image_full on
 * vt_db_image(). */
int vt_db_full_image(const struct vt_db *db, struct moat_update **ups,
		     size_t *n);

/* vt_db_image - the live image (read-only; valid until the next publish). */
const struct vt_image *vt_db_image(const struct vt_db *db);

/* vt_db_adopt - take img (e.g. rebuilt from pinned maps) as the live image:
 * the next publish diffs against it.  Copies img; 0 or -ENOMEM. */
int vt_db_adopt(struct vt_db *db, const struct vt_image *img);

/* vt_db_share_groups - the live image keeps its groups in store[0..cap)
 * (the fast path's mmap'd group map) instead of its own copy: saves one
 * copy of every group (a scattered 10M zone: ~480 MiB).  store must hold
 * every group the live image references (after vt_db_adopt of what the
 * maps hold, or with an empty image) and every publish must reach it
 * (the fast path writes groups there before the db records them).
 * -EINVAL when store differs, -ENOSPC when the image is bigger, -EALREADY;
 * a publish needing a group index >= cap then fails with -ERANGE.
 * vt_db_share_tbl24 - the same for tbl24 (MOAT_TBL24_ENTRIES entries, the
 * fast path's mmap'd tbl24; saves 64 MiB).
 * vt_db_unshare - private copies again: call before the stores go. */
int vt_db_share_groups(struct vt_db *db, struct moat_group *store,
		       uint32_t cap);
int vt_db_share_tbl24(struct vt_db *db, uint32_t *tbl);
int vt_db_unshare(struct vt_db *db);

/* vt_lookup_v4 / _v6 - action of one address in the live image. */
uint32_t vt_lookup_v4(const struct vt_db *db, uint32_t addr_host);
uint32_t vt_lookup_v6(const struct vt_db *db, const uint8_t addr[16]);

/* -------------------------------------------------------------- explain */

#define VT_EXPLAIN_MAX 64

struct vt_explain_item {
	uint16_t source;
	struct moat_prefix pfx; /* the deciding prefix of this source */
	uint32_t code;          /* one code at that prefix */
	int32_t weight;         /* sum of the rules this code matched first */
	uint8_t exclude;        /* 1: source excludes the address */
};

struct vt_explain {
	uint32_t action;        /* from the listings (what publish will give) */
	uint32_t live_action;   /* from the live compiled image */
	int64_t score;
	uint32_t n;             /* items used; truncated at VT_EXPLAIN_MAX */
	uint32_t truncated;
	struct vt_explain_item items[VT_EXPLAIN_MAX];
};

/* vt_db_explain - why addr (a /32 or /128 moat_prefix; a shorter prefix is
 * explained for its first address) gets its action.  0 or -EINVAL. */
int vt_db_explain(const struct vt_db *db, const struct moat_prefix *addr,
		  struct vt_explain *out);

/* ------------------------------------------------------------- counters */

struct vt_source_counters {
	uint64_t ignored_outside;  /* answers outside 127.0.0.0/8 */
	uint64_t ignored_errcode;  /* answers in an error-code range */
	uint64_t entries_v4;       /* listings stored now */
	uint64_t entries_v6;
	uint64_t expired;          /* dropped by vt_db_expire */
};

/* vt_db_source_counters - 0 or -ENOENT. */
int vt_db_source_counters(const struct vt_db *db, uint16_t source,
			  struct vt_source_counters *out);

struct vt_db_stats {
	uint64_t entries;          /* all stored listings */
	uint64_t store_bytes;      /* memory of the listing store */
	uint64_t publishes;
	uint64_t groups_pending;   /* freed, waiting for the grace period */
};
void vt_db_stats(const struct vt_db *db, struct vt_db_stats *st);

/* vt_prefix_check - 0 or -EINVAL with a message: family, plen range, host
 * bits, pad.  Shared with parsers that want to reject early. */
int vt_prefix_check(const struct moat_prefix *p, char *err, size_t errsz);

/* vt_action_name - "pass", "tarpit", "drop", "allow" or "?". */
const char *vt_action_name(uint32_t act);
/* vt_action_parse - one of those names, in any case, into *act; 0, or
 * -EINVAL (NULL or another word; *act untouched).  Callers that take only
 * some actions (operator entries: no "pass") check the result. */
int vt_action_parse(const char *s, uint32_t *act);

#endif /* MOAT_VTABLE_H */
