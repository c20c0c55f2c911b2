/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan.c - the content gate as an SMTP filter (filter.h): Hyperscan
 * streaming scans of a message while it arrives, and a verdict at the dot.
 *
 * Each message holds a reference to the rules (scan_db) live when it was
 * opened and one Hyperscan stream, over the raw bytes.  Bodies are read as SpamAssassin
 * reads them, the renderer (scan_render.c) turning each decoded part into
 * body lines, rawbody chunks and URIs, each a bounded unit scanned in one
 * block call on its scope's database, so `^` and `\z` anchor per line or
 * URI.  Headers are gathered into one bounded block (SCAN_HDR_BLOCK_MAX,
 * SpamAssassin's own bound) and evaluated as SpamAssassin sees them when
 * the header section ends: each header view a rule reads (one name's
 * values joined, a pseudo-header, an :addr/:name view, the whole block as
 * ALL) is one block scan.  Every unit (view, line, chunk, URI) is followed
 * by PCRE2 confirmation of the prefilter rules that fired on it.  A kind
 * of unit is rendered only when some rule reads it, and the MIME walk runs
 * only when a header, body or exists rule needs it.  The engine feeds one
 * line per call; lines are gathered into a
 * SCAN_CHUNK buffer and each chunk is scanned once on the raw stream and
 * walked once by the MIME walker (scan_mime.c), which decodes on the fly:
 * per-line cost is one memcpy, Hyperscan and the walker see large pieces.  SpamAssassin metas are
 * evaluated at the end over the hit bitmap, each compiled at load to a few
 * words of short-circuit code (scan_meta.c).  Scratch is per worker
 * thread, grown when a reload brings bigger databases.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "log.h"
#include "scan.h"
#include "scan_eval.h"
#include "scan_received.h"
#include "scan_render.h"
#include "scan_rules.h"
#include "scan_seen.h"
#include "scan_ucache.h"

enum { ST_RAW = 0, ST_N };

/* The engine feeds a line at a time; lines are gathered (bounded) so the
 * raw stream and the MIME walk run per 32 KiB chunk, not per line: the
 * size of a large TCP read.  Each byte is still scanned exactly once, and
 * the verdict (at the dot) comes after the last chunk is flushed. */
#ifndef SCAN_CHUNK
#define SCAN_CHUNK 32768
#endif
/* one header of the gathered block: "Name: value\n" at name_off */
struct hdr_ent {
	uint32_t name_off, val_off, val_len;
	uint16_t name_len;
};

struct filter_msg {
	struct scan_db *db;
	hs_stream_t *st[ST_N];
	int walk;              /* headers/bodies needed (some rule reads them) */
	int done;              /* a reject rule matched: stop scanning */
	int subject;           /* the open header is the first Subject */
	int err;               /* a scan failed: -errno for feed/finish */
	long reject;           /* first reject rule matched, -1 none */
	size_t raw_len;        /* bytes waiting in raw[] (not yet scanned/walked) */
	uint64_t *hits;        /* one bit per rule */
	uint64_t *pend;        /* prefilter fired in the current unit */
	uint64_t *rcand;       /* relay rules whose prefilter fired */
	unsigned rscanned;     /* relay strings scanned (bit per rdb) */
	int date_done;         /* date_diff holds sa_date_diff of hb */
	int64_t date_diff;
	unsigned *plist;       /* those rules, in firing order */
	size_t npend, pcap;
	/* the header block, "Name: value\n" per header (SpamAssassin's ALL) */
	char *hb;
	size_t hb_len, hb_cap;
	struct hdr_ent *hx;
	size_t nhx, hxcap;
	size_t cur_start;      /* the open header's first byte in hb */
	int cur_drop;          /* the open header is not kept */
	int hdr_trunc;         /* the block reached SCAN_HDR_BLOCK_MAX */
	int view;              /* header view being scanned, -1: any header */
	const char *unset;     /* scanning an [if-unset: ] value */
	char *vb;              /* a view's value */
	size_t vb_len, vb_cap;
	int vb_oom;
	struct scan_seen seen; /* body lines and URIs scanned (scan_seen.h) */
	int gate;              /* a gate fired in this URI (SDB_URI_GATED) */
	/* the unit being scanned is noted for scan_ucache (on_unit): every
	 * rule it hits, in the order found, whatever was hit before */
	int rec;               /* noting */
	int rec_bad;           /* a hit cannot be known here: keep nothing */
	unsigned rec_n;
	unsigned rec_ids[SCAN_UCACHE_IDS_MAX];
	/* the raw stream's run rules (scan_runs), per scan_db.runs: the
	 * bytes of the open line so far, all in the rule's class, or a byte
	 * outside it came first (no match on this line) */
	uint32_t run_len[SCAN_RUNS_MAX];
	uint8_t run_off[SCAN_RUNS_MAX];
	/* not zeroed at open: the walker and renderer initialise themselves,
	 * raw[] is a buffer */
	struct mime_walker w;
	struct render rd;
	char raw[SCAN_CHUNK];
};

/* ------------------------------------------------------------ live db */

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static struct scan_db *live;
static struct scan_config conf;
static char *conf_rules, *conf_sa, *conf_cache;

/* scan_db_current - a reference to the live rules (scan.h) */
struct scan_db *scan_db_current(void)
{
	struct scan_db *d;

	pthread_mutex_lock(&live_mu);
	d = scan_db_ref(live);
	pthread_mutex_unlock(&live_mu);
	return d;
}

/* scan_db_install - swap the live rules; the old set lives on in its messages */
void scan_db_install(struct scan_db *d)
{
	struct scan_db *old;

	pthread_mutex_lock(&live_mu);
	old = live;
	live = d;
	pthread_mutex_unlock(&live_mu);
	scan_db_unref(old); /* messages in flight keep their own reference */
}

/* load_and_install - build a db from the configuration and make it live */
static int load_and_install(const char *rules, char *err, size_t errsz)
{
	struct scan_load_opts o = {
		.rules_path = rules, .sa_dir = conf_sa, .cache_dir = conf_cache,
		.threshold = conf.threshold,
	};
	struct scan_db *d;
	int rc = scan_db_load(&o, &d, err, errsz);

	if (rc < 0)
		return rc;
	log_info("scan: rules=%zu skipped=%zu sa_scored=%u/%u cache=%s gen=%llu "
		 "stream_bytes=%zu",
		 d->nrules, d->nskips, d->sa_scored_imported, d->sa_scored_total,
		 d->cache == CACHE_HIT ? "hit" : d->cache == CACHE_MISS ? "miss" :
		 d->cache == CACHE_STALE ? "stale" : "off",
		 (unsigned long long)d->gen, d->stream_size);
	scan_db_install(d);
	return 0;
}

/* scan_init - remember the configuration and load the first rules */
int scan_init(const struct scan_config *cfg, char *err, size_t errsz)
{
	int rc;

	if (!cfg->rules_path) {
		snprintf(err, errsz, "scan_rules is not set");
		return -EINVAL;
	}
	pthread_mutex_lock(&load_mu);
	free(conf_rules);
	free(conf_sa);
	free(conf_cache);
	conf = *cfg;
	conf_rules = strdup(cfg->rules_path);
	conf_sa = cfg->sa_dir ? strdup(cfg->sa_dir) : NULL;
	conf_cache = cfg->cache_dir ? strdup(cfg->cache_dir) : NULL;
	if (!conf_rules || (cfg->sa_dir && !conf_sa) || (cfg->cache_dir && !conf_cache)) {
		snprintf(err, errsz, "out of memory");
		rc = -ENOMEM;
	} else {
		rc = load_and_install(conf_rules, err, errsz);
	}
	pthread_mutex_unlock(&load_mu);
	return rc;
}

/* scan_reload - load again; only a complete new set replaces the old */
int scan_reload(const char *path, char *err, size_t errsz)
{
	int rc;

	pthread_mutex_lock(&load_mu);
	if (!conf_rules) {
		snprintf(err, errsz, "scan_init was not called");
		rc = -EINVAL;
	} else if ((rc = load_and_install(path ? path : conf_rules, err, errsz)) == 0 &&
		   path && strcmp(path, conf_rules) != 0) {
		char *p = strdup(path);

		if (p) {
			free(conf_rules);
			conf_rules = p;
		}
	}
	pthread_mutex_unlock(&load_mu);
	if (rc < 0)
		log_warn("scan: reload refused, old rules stay live: %s", err);
	return rc;
}

/* scan_fini - drop the live rules and the configuration */
void scan_fini(void)
{
	pthread_mutex_lock(&load_mu);
	scan_db_install(NULL);
	free(conf_rules);
	free(conf_sa);
	free(conf_cache);
	conf_rules = conf_sa = conf_cache = NULL;
	pthread_mutex_unlock(&load_mu);
}

/* ------------------------------------------------------------ scratch */

/* PCRE2 steps one confirmation may take (its match_limit) */
#define SCAN_CONFIRM_MATCH_LIMIT 1000000
/* anchored tries one confirm_starts makes, each within this share of the
 * budget; past them, or when one runs out, the rest of the unit is one
 * unanchored call with the whole budget: a hostile line (a candidate
 * start at every byte) costs at most twice confirm's bound */
#define SCAN_START_TRIES 64
/* a body line longer than this skips the skeleton gate (gap_gate) and
 * is scanned on SDB_BODY_GAP as it is (rendered lines are 2,048 bytes at
 * most, scan_render.h) */
#define SCAN_GATE_MAX 4096

static __thread hs_scratch_t *tl_scratch;
static __thread uint64_t tl_gen;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static __thread pcre2_match_data *tl_md;
static pthread_key_t md_key;
static pcre2_match_context *confirm_ctx; /* the match budget, shared */
static pcre2_match_context *start_ctx;   /* an anchored try's share of it */

/* scratch_free - thread exit: release the thread's scratch */
static void scratch_free(void *p)
{
	hs_free_scratch(p);
}

/* md_free - thread exit: release the thread's PCRE2 match data */
static void md_free(void *p)
{
	pcre2_match_data_free(p);
}

/* scratch_key_init - once per process */
static void scratch_key_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
	pthread_key_create(&md_key, md_free);
	/* a bound on backtracking: SpamAssassin has none, but a hostile
	 * message must not buy unbounded CPU; past it the rule does not hit */
	confirm_ctx = pcre2_match_context_create(NULL);
	if (confirm_ctx)
		pcre2_set_match_limit(confirm_ctx, SCAN_CONFIRM_MATCH_LIMIT);
	start_ctx = pcre2_match_context_create(NULL);
	if (start_ctx)
		pcre2_set_match_limit(start_ctx, SCAN_CONFIRM_MATCH_LIMIT / SCAN_START_TRIES);
}

/* scratch_for - this thread's scratch, grown to fit every database of d */
static hs_scratch_t *scratch_for(const struct scan_db *d)
{
	if (tl_scratch && tl_gen == d->gen)
		return tl_scratch;
	for (int i = 0; i < SDB_N; i++)
		if (d->db[i] && hs_alloc_scratch(d->db[i], &tl_scratch) != HS_SUCCESS)
			return NULL;
	for (size_t i = 0; i < d->nviews; i++)
		if (d->vdb[i] && hs_alloc_scratch(d->vdb[i], &tl_scratch) != HS_SUCCESS)
			return NULL;
	for (int i = 0; i < SCAN_NRDB; i++)
		if (d->rdb[i] && hs_alloc_scratch(d->rdb[i], &tl_scratch) != HS_SUCCESS)
			return NULL;
	if (tl_scratch) {
		pthread_once(&scratch_once, scratch_key_init);
		pthread_setspecific(scratch_key, tl_scratch);
	}
	tl_gen = d->gen;
	return tl_scratch;
}

/* scratch_ok - this thread has scratch for every database of d; true also
 * when d has none (eval, exists and meta rules only), where scratch_for
 * has nothing to allocate and returns NULL */
static int scratch_ok(const struct scan_db *d)
{
	if (scratch_for(d))
		return 1;
	for (int i = 0; i < SDB_N; i++)
		if (d->db[i])
			return 0;
	for (size_t i = 0; i < d->nviews; i++)
		if (d->vdb[i])
			return 0;
	for (int i = 0; i < SCAN_NRDB; i++)
		if (d->rdb[i])
			return 0;
	return 1;
}

/* scan_thread_init - per worker thread: scratch for the live rules */
static int scan_thread_init(void)
{
	struct scan_db *d = scan_db_current();
	int rc = 0;

	if (d && !scratch_ok(d))
		rc = -ENOMEM;
	scan_db_unref(d);
	return rc;
}

/* ---------------------------------------------------------- matching */

/* hit - record that rule id matched */
static inline void hit(struct filter_msg *m, unsigned id)
{
	m->hits[id / 64] |= 1ull << (id % 64);
}

/* next_hit - the first matched rule at or after i, or nrules: the end of
 * message walks only the matches, not every rule */
static size_t next_hit(const struct filter_msg *m, size_t i)
{
	size_t n = m->db->nrules;

	while (i < n) {
		uint64_t w = m->hits[i / 64] >> (i % 64);

		if (w)
			return i + (size_t)__builtin_ctzll(w) < n ? i + (size_t)__builtin_ctzll(w) : n;
		i = (i / 64 + 1) * 64;
	}
	return n;
}

/* rule_hit - rule id matched (confirmed): record it; 1 when a reject
 * rule decided the message */
static int rule_hit(struct filter_msg *m, unsigned id)
{
	hit(m, id);
	if (m->db->rules[id].action == ACT_REJECT) {
		if (m->reject < 0)
			m->reject = id;
		m->done = 1;
		return 1;
	}
	return 0;
}

/* pend_add - a prefilter rule fired in the current unit: confirm it at
 * the unit's end (once, however often it fired) */
static void pend_add(struct filter_msg *m, unsigned id)
{
	if (m->pend[id / 64] & (1ull << (id % 64)))
		return;
	if (scan_grow(&m->plist, m->npend, &m->pcap, sizeof(m->plist[0])) < 0) {
		if (!m->err)
			m->err = -ENOMEM;
		return;
	}
	m->pend[id / 64] |= 1ull << (id % 64);
	m->plist[m->npend++] = id;
}

/* rec_add - the unit being noted hits rule id (on_unit, scan_ucache) */
static void rec_add(struct filter_msg *m, unsigned id)
{
	for (unsigned i = 0; i < m->rec_n; i++)
		if (m->rec_ids[i] == id)
			return;
	if (m->rec_n == SCAN_UCACHE_IDS_MAX)
		m->rec_bad = 1;
	else
		m->rec_ids[m->rec_n++] = id;
}

/* on_match - Hyperscan callback for every database; non-zero stops the
 * scan (a reject rule decided the message) */
static int on_match(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	struct filter_msg *m = ctx;
	unsigned rf;

	(void)from, (void)to, (void)flags;
	if (id >= m->db->nrules) { /* a uri rule's gate (scan_rules.c, mark_gate) */
		m->gate = 1;
		return 0;
	}
	rf = m->db->rflag[id];
	if (m->rec) { /* a prefilter hit is noted once confirmed */
		if (!(rf & SCAN_RF_PREFILTER))
			rec_add(m, id);
		else if (m->hits[id / 64] & (1ull << (id % 64)))
			m->rec_bad = 1; /* it is not confirmed again */
	}
	if (m->hits[id / 64] & (1ull << (id % 64)))
		return 0; /* a rule counts once a message: nothing more to learn */
	if (rf & SCAN_RF_HEADER) {
		const struct scan_rule *r = &m->db->rules[id];

		if (r->view != m->view)
			return 0; /* a guard: each view scans its own database */
		if (m->unset && (!r->unset || strcmp(r->unset, m->unset) != 0))
			return 0; /* an absent header reads only as its own default */
	}
	if (rf & SCAN_RF_PREFILTER) {
		pend_add(m, id);
		return 0;
	}
	hit(m, id);
	if (rf & SCAN_RF_REJECT)
		return rule_hit(m, id);
	return 0;
}

/* match_data - this thread's PCRE2 match data, NULL on ENOMEM */
static pcre2_match_data *match_data(void)
{
	if (!tl_md) {
		pthread_once(&scratch_once, scratch_key_init);
		if (!(tl_md = pcre2_match_data_create(1, NULL)))
			return NULL;
		pthread_setspecific(md_key, tl_md);
	}
	return tl_md;
}

/* a confirmation failed other than by not matching or by its budget (no
 * memory): its answer may differ next time, so scan_ucache keeps no unit
 * that saw one (scan_unit_end) */
static _Thread_local int confirm_odd;

static int note_rc(int rc)
{
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && rc != PCRE2_ERROR_MATCHLIMIT)
		confirm_odd = 1;
	return rc;
}

/* confirm - does rule r's PCRE2 match text?  A match that runs out of its
 * budget (or any PCRE2 error) is no match */
static int confirm(const struct scan_rule *r, const char *text, size_t len)
{
	if (!match_data()) {
		confirm_odd = 1;
		return 0;
	}
	return note_rc(pcre2_match(r->re, (PCRE2_SPTR)text, len, 0, 0, tl_md, confirm_ctx)) >= 0;
}

/* where the pending rstart rules of one unit may start: for each rule
 * id[k], a bitmap of n + 1 bits at at + k * words (bit i: a match of the
 * rule read backwards ends at n - i in the reversed unit) */
struct starts {
	const unsigned *id;
	size_t nid;
	size_t n, words;
	uint64_t *at;
};

/* on_start - SDB_START callback: mark where rule id may start */
static int on_start(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	struct starts *c = ctx;

	(void)from, (void)flags;
	if (to > c->n)
		return 0;
	for (size_t k = 0; k < c->nid; k++)
		if (c->id[k] == id)
			c->at[k * c->words + (c->n - to) / 64] |= 1ull << ((c->n - to) % 64);
	return 0;
}

/* unit_starts - one reversal of the unit and one scan of SDB_START fill
 * c->at for every rule of c->id (every match of a rule starts where one
 * of its Hyperscan form does); -1 (c->at NULL) when that cannot run */
static int unit_starts(const struct scan_db *d, const char *text, size_t len, struct starts *c)
{
	char *rev = malloc(len ? len : 1);
	hs_scratch_t *sc = scratch_for(d);

	c->n = len;
	c->words = len / 64 + 1;
	c->at = calloc(c->nid * c->words, sizeof(uint64_t));
	for (size_t i = 0; rev && i < len; i++)
		rev[i] = text[len - 1 - i];
	if (!c->at || !rev || !sc ||
	    hs_scan(d->db[SDB_START], rev, (unsigned)len, 0, sc, on_start, c) != HS_SUCCESS) {
		free(c->at);
		c->at = NULL;
	}
	free(rev);
	return c->at ? 0 : -1;
}

/* confirm_at - confirm rstart rule r on text as confirm does, trying the
 * anchored expression only at the starts in at (unit_starts) */
static int confirm_at(const struct scan_rule *r, const char *text, size_t len, const uint64_t *at)
{
	if (!match_data())
		return confirm(r, text, len);
	for (size_t w = 0, tries = 0; w <= len / 64; w++)
		for (uint64_t b = at[w]; b; b &= b - 1) {
			size_t off = w * 64 + (size_t)__builtin_ctzll(b);
			int rc = start_ctx ? note_rc(pcre2_match(r->re_start, (PCRE2_SPTR)text, len, off,
								  0, tl_md, start_ctx)) :
					     PCRE2_ERROR_MATCHLIMIT;

			if (rc < 0 && rc != PCRE2_ERROR_MATCHLIMIT && ++tries < SCAN_START_TRIES)
				continue; /* no match starts at off */
			/* a hit, or the tries' share of the budget spent: no
			 * match starts before off, the rest is one call as
			 * confirm makes */
			return rc >= 0 || note_rc(pcre2_match(r->re, (PCRE2_SPTR)text, len, off, 0,
							      tl_md, confirm_ctx)) >= 0;
		}
	return 0;
}

/* wants_confirm - rule id of scope s is pending in the unit and still
 * needs its confirmation */
static int wants_confirm(const struct filter_msg *m, unsigned id, enum scan_scope s)
{
	return m->db->rules[id].scope == s && !m->done && !(m->hits[id / 64] & (1ull << (id % 64)));
}

/* scan_unit_end - confirm the prefilter hits of scope s on the unit just
 * ended (scan.h); the rstart rules among them share one scan of the
 * reversed unit */
void scan_unit_end(struct filter_msg *m, enum scan_scope s, const char *text, size_t len)
{
	const struct scan_db *d = m->db;
	struct starts c = { 0 };
	unsigned *sid = NULL;
	size_t k = 0, ns = 0;

	if (s == SCOPE_BODY && len > SCAN_RAWBODY_PART_SCAN_SIZE)
		len = SCAN_RAWBODY_PART_SCAN_SIZE;
	confirm_odd = 0;
	for (size_t i = 0; i < m->npend && d->db[SDB_START]; i++)
		ns += d->rules[m->plist[i]].rstart && wants_confirm(m, m->plist[i], s);
	if (ns && (sid = malloc(ns * sizeof(*sid)))) {
		for (size_t i = 0; i < m->npend; i++)
			if (d->rules[m->plist[i]].rstart && wants_confirm(m, m->plist[i], s))
				sid[c.nid++] = m->plist[i];
		c.id = sid;
		unit_starts(d, text, len, &c);
	}
	if (ns && !c.at) /* no memory: confirm, not confirm_at, answers */
		m->rec_bad |= m->rec;
	for (size_t i = 0; i < m->npend; i++) {
		unsigned id = m->plist[i];
		const struct scan_rule *r = &d->rules[id];
		size_t slot = 0;

		if (r->scope != s) { /* another scope's unit is still open */
			m->plist[k++] = id;
			continue;
		}
		m->pend[id / 64] &= ~(1ull << (id % 64));
		if (!wants_confirm(m, id, s)) {
			m->rec_bad |= m->rec; /* unknown for the unit */
			continue;
		}
		while (r->rstart && c.at && slot < c.nid && sid[slot] != id)
			slot++;
		if (r->rstart && c.at && slot < c.nid ?
		    confirm_at(r, text, len, c.at + slot * c.words) : confirm(r, text, len)) {
			if (m->rec)
				rec_add(m, id);
			rule_hit(m, id);
		}
	}
	m->npend = k;
	m->rec_bad |= m->rec && confirm_odd;
	free(c.at);
	free(sid);
}

static _Thread_local uint64_t scanned_bytes; /* scan_scanned_bytes() */

uint64_t scan_scanned_bytes(void)
{
	return scanned_bytes;
}

/* scan_piece - scan bytes on one stream, keeping the first error */
static void scan_piece(struct filter_msg *m, int s, const char *p, size_t n)
{
	hs_error_t e;

	if (m->done || !m->st[s] || !n)
		return;
	scanned_bytes += n;
	e = hs_scan_stream(m->st[s], p, (unsigned)n, 0, scratch_for(m->db), on_match, m);
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED && !m->err)
		m->err = e == HS_NOMEM ? -ENOMEM : -EIO;
}

/* exists_hits - mark header-exists rules for a header name */
static void exists_hits(struct filter_msg *m, const char *name)
{
	const struct scan_db *d = m->db;
	size_t lo = 0, hi = d->nexists;

	while (lo < hi) { /* first entry >= name */
		size_t mid = (lo + hi) / 2;

		if (strcasecmp(d->rules[d->exists[mid]].hname, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < d->nexists && strcasecmp(d->rules[d->exists[lo]].hname, name) == 0; lo++)
		hit(m, d->exists[lo]);
}

/* hdr_needed - some rule reads the header block */
static int hdr_needed(const struct scan_db *d)
{
	return d->db[SDB_HEADER] || d->nviews || d->nevals;
}

/* buf_add - append n bytes to a growing buffer of at most max bytes;
 * -1 when it would pass max or memory runs out (nothing appended) */
static int buf_add(char **b, size_t *len, size_t *cap, size_t max, const char *p, size_t n)
{
	if (!n)
		return 0; /* an empty value: nothing to append (the buffer may not exist yet) */
	if (*len + n > max)
		return -1;
	if (*len + n > *cap) {
		size_t nc = *cap ? *cap : 1024;
		char *nb;

		while (nc < *len + n)
			nc *= 2;
		if (nc > max)
			nc = max;
		if (!(nb = realloc(*b, nc)))
			return -1;
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	return 0;
}

/* hb_add - append to the header block, bounded by SCAN_HDR_BLOCK_MAX
 * (SpamAssassin's MAX_HEADER_LENGTH); what does not fit drops the open
 * header */
static void hb_add(struct filter_msg *m, const char *p, size_t n)
{
	if (!m->cur_drop && buf_add(&m->hb, &m->hb_len, &m->hb_cap, SCAN_HDR_BLOCK_MAX, p, n) < 0)
		m->cur_drop = 1;
}

/* vb_add - append to the view buffer (bounded like the block) */
static void vb_add(struct filter_msg *m, const char *p, size_t n)
{
	if (!m->vb_oom &&
	    buf_add(&m->vb, &m->vb_len, &m->vb_cap, SCAN_HDR_BLOCK_MAX + 1, p, n) < 0)
		m->vb_oom = 1;
}

/* trim - strip blanks at both ends of [*p, *p + *n) */
static void trim(const char **p, size_t *n)
{
	while (*n && isspace((unsigned char)**p))
		(*p)++, (*n)--;
	while (*n && isspace((unsigned char)(*p)[*n - 1]))
		(*n)--;
}

/* vb_ctx - where vb_item appends (scan_addrs' callback) */
struct vb_ctx {
	struct filter_msg *m;
	int *count;
};

/* vb_item - one :addr/:name result, "\n"-separated as SpamAssassin's
 * Check joins results that do not end in a newline; name results have
 * their whitespace collapsed and one pair of quotes removed */
static void vb_item(void *ctx, const char *p, size_t n, int name)
{
	struct filter_msg *m = ((struct vb_ctx *)ctx)->m;
	int *count = ((struct vb_ctx *)ctx)->count;

	if (name && n >= 2 && ((p[0] == '"' && p[n - 1] == '"') ||
			       (p[0] == '\'' && p[n - 1] == '\'')))
		p++, n -= 2;
	if (!n)
		return;
	if (*count)
		vb_add(m, "\n", 1);
	(*count)++;
	if (!name) {
		vb_add(m, p, n);
		return;
	}
	for (size_t i = 0; i < n;) { /* s/\s+/ /g */
		if (isspace((unsigned char)p[i])) {
			vb_add(m, " ", 1);
			while (i < n && isspace((unsigned char)p[i]))
				i++;
		} else {
			vb_add(m, p + i++, 1);
		}
	}
}

/* addr_item - one result of scan_addrs, blanks trimmed */
static void addr_item(scan_addr_fn *fn, void *ctx, const char *p, size_t n, int name)
{
	trim(&p, &n);
	if (n)
		fn(ctx, p, n, name);
}

void scan_addrs(const char *v, size_t n, int name, scan_addr_fn *fn, void *ctx)
{
	size_t i = 0;

	while (i < n) {
		size_t s = i, lt = SIZE_MAX, gt = SIZE_MAX, po = SIZE_MAX, pc = SIZE_MAX;
		int q = 0, par = 0, ang = 0;

		for (; i < n; i++) {
			char c = v[i];

			if (c == '\\' && i + 1 < n) {
				i++;
				continue;
			}
			if (q) {
				q = c != '"';
				continue;
			}
			if (c == '"' && !par)
				q = 1;
			else if (c == '(') {
				if (!par++ && po == SIZE_MAX)
					po = i;
			} else if (c == ')' && par) {
				if (!--par && pc == SIZE_MAX)
					pc = i;
			} else if (c == '<' && !par && !ang) {
				ang = 1;
				lt = i;
			} else if (c == '>' && !par && ang) {
				ang = 0;
				gt = i;
			} else if (c == ':' && !par && !ang && lt == SIZE_MAX) {
				s = i + 1; /* a group's name */
			} else if ((c == ',' || c == ';') && !par && !ang) {
				break;
			}
		}
		size_t e = i++;
		if (lt != SIZE_MAX && lt >= s) {
			if (name)
				addr_item(fn, ctx, v + s, lt - s, 1);
			else if (gt != SIZE_MAX && gt > lt)
				addr_item(fn, ctx, v + lt + 1, gt - lt - 1, 0);
		} else if (po != SIZE_MAX && po >= s && pc != SIZE_MAX && pc > po) {
			if (name)
				addr_item(fn, ctx, v + po + 1, pc - po - 1, 1);
			else
				addr_item(fn, ctx, v + s, po - s, 0);
		} else if (!name) {
			addr_item(fn, ctx, v + s, e - s, 0);
		}
	}
}

/* view_value - the value SpamAssassin's get(view) gives, into m->vb:
 * the values of the header(s) named, each ending in "\n" (an :addr or
 * :name view: its results joined by "\n"), or the whole block for ALL.
 * Pseudo-headers: ToCc (To then Cc), MESSAGEID (the Message-Id headers
 * resending lists use, non-empty).  0 when the view is absent. */
static int view_value(struct filter_msg *m, const char *view)
{
	static const char *const tocc[] = { "To", "Cc", NULL };
	static const char *const msgid[] = {
		"X-Message-Id", "Resent-Message-Id", "X-Original-Message-ID", "Message-Id", NULL,
	};
	const char *one[2] = { view, NULL }, *const *names = one;
	const char *colon = strchr(view, ':');
	size_t bl = colon ? (size_t)(colon - view) : strlen(view);
	int addr = 0, name = 0, first = 0, last = 0, nonempty = 0, count = 0;
	size_t n1 = 0, found = 0;
	char base[MIME_NAME_MAX];

	m->vb_len = 0;
	m->vb_oom = 0;
	if (bl >= sizeof(base))
		return 0;
	memcpy(base, view, bl);
	base[bl] = 0;
	one[0] = base;
	for (const char *c = colon; c; c = strchr(c + 1, ':')) {
		addr |= strncmp(c, ":addr", 5) == 0;
		name |= strncmp(c, ":name", 5) == 0;
		first |= strncmp(c, ":first", 6) == 0;
		last |= strncmp(c, ":last", 5) == 0;
	}
	if (strcmp(base, "ALL") == 0) {
		vb_add(m, m->hb, m->hb_len);
		return m->hb_len > 0 && !m->vb_oom;
	}
	if (strcasecmp(base, "ToCc") == 0)
		names = tocc;
	else if (strcmp(base, "MESSAGEID") == 0)
		names = msgid, nonempty = 1;
	for (int k = 0; last && names[k]; k++) { /* :last needs the count first */
		size_t nl = strlen(names[k]);
		unsigned char c0 = (unsigned char)names[k][0] | 0x20;

		for (size_t i = 0; i < m->nhx; i++)
			n1 += m->hx[i].name_len == nl &&
			      ((unsigned char)m->hb[m->hx[i].name_off] | 0x20) == c0 &&
			      strncasecmp(m->hb + m->hx[i].name_off, names[k], nl) == 0;
	}
	for (int k = 0; names[k]; k++) {
		size_t nl = strlen(names[k]);
		unsigned char c0 = (unsigned char)names[k][0] | 0x20;

		for (size_t i = 0; i < m->nhx; i++) {
			const struct hdr_ent *h = &m->hx[i];
			const char *v = m->hb + h->val_off;

			/* the first byte, case-blind, before the call: names
			 * are letters, digits and '-', where | 0x20 folds only
			 * letters (and '-' stays '-') */
			if (h->name_len != nl || ((unsigned char)m->hb[h->name_off] | 0x20) != c0 ||
			    strncasecmp(m->hb + h->name_off, names[k], nl) != 0)
				continue;
			found++;
			if ((first && found != 1) || (last && found != n1))
				continue;
			if (nonempty && !h->val_len)
				continue;
			if (addr || name) {
				struct vb_ctx c = { m, &count };

				scan_addrs(v, h->val_len, name, vb_item, &c);
			} else {
				vb_add(m, v, h->val_len);
				vb_add(m, "\n", 1);
				count++;
			}
		}
	}
	return count > 0 && !m->vb_oom;
}

/* hdr_scan - one header unit: a block scan of the view's own database (of
 * the no-view header database for view -1), the if-unset value deciding
 * which rules count, then the confirmation of what the prefilter found */
static void hdr_scan(struct filter_msg *m, int view, const char *unset, const char *p,
		     size_t n)
{
	hs_error_t e;

	if (m->done)
		return;
	m->view = view;
	m->unset = unset;
	scanned_bytes += n;
	const hs_database_t *db = view >= 0 ? m->db->vdb[view] : m->db->db[SDB_HEADER];

	if (!db && !m->db->nhsides)
		return;
	e = db ? hs_scan(db, p, (unsigned)n, 0, scratch_for(m->db), on_match, m) : HS_SUCCESS;
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED && !m->err)
		m->err = e == HS_NOMEM ? -ENOMEM : -EIO;
	for (size_t i = 0; i < m->db->nhsides && !m->done; i++) /* confirmed on every block */
		if (m->db->rules[m->db->hsides[i]].view == view)
			on_match(m->db->hsides[i], 0, 0, 0, m);
	scan_unit_end(m, SCOPE_HEADER, p, n);
	m->unset = NULL;
}

/* unset_scans - view v is absent: each distinct [if-unset: ] value its
 * rules give is scanned as the header's value */
static void unset_scans(struct filter_msg *m, int v)
{
	const struct scan_db *d = m->db;

	for (size_t i = 0; i < d->nunsets && !m->done; i++) {
		const struct scan_rule *r = &d->rules[d->unsets[i]];
		int dup = 0;

		if (r->view != v)
			continue;
		for (size_t j = 0; j < i && !dup; j++) /* once per distinct value */
			dup = d->rules[d->unsets[j]].view == v &&
			      strcmp(d->rules[d->unsets[j]].unset, r->unset) == 0;
		if (!dup)
			hdr_scan(m, v, r->unset, r->unset, strlen(r->unset));
	}
}

/* on_header_begin - a top-level header starts: exists rules, and its
 * "Name: " opens an entry of the header block */
static void on_header_begin(void *ctx, const char *name)
{
	struct filter_msg *m = ctx;
	size_t nl = strlen(name);

	/* the first Subject is the first body line (scan_render.h) */
	m->subject = (name[0] | 0x20) == 's' && strcasecmp(name, "Subject") == 0;
	if (m->db->nexists)
		exists_hits(m, name);
	m->cur_drop = 1;
	if (!hdr_needed(m->db) || m->hdr_trunc)
		return;
	m->cur_start = m->hb_len;
	m->cur_drop = 0;
	hb_add(m, name, nl);
	hb_add(m, ": ", 2);
}

/* on_header_data - unfolded header value bytes, into the block */
static void on_header_data(void *ctx, const char *p, size_t n)
{
	struct filter_msg *m = ctx;

	if (m->subject)
		render_subject(&m->rd, p, n);
	if (!m->cur_drop)
		hb_add(m, p, n);
}

/* on_header_end - the entry is complete; a header that did not fit ends
 * the block, as SpamAssassin's get_all_headers stops at its bound */
static void on_header_end(void *ctx)
{
	struct filter_msg *m = ctx;
	size_t nl;

	if (m->subject)
		render_subject_end(&m->rd);
	m->subject = 0;
	if (m->cur_drop) {
		if (hdr_needed(m->db) && !m->hdr_trunc && m->hb) {
			m->hb_len = m->cur_start;
			m->hdr_trunc = 1;
		}
		return;
	}
	hb_add(m, "\n", 1);
	if (m->cur_drop || scan_grow(&m->hx, m->nhx, &m->hxcap, sizeof(m->hx[0])) < 0) {
		m->hb_len = m->cur_start;
		m->hdr_trunc = 1;
		m->cur_drop = 1;
		return;
	}
	nl = (size_t)((char *)memchr(m->hb + m->cur_start, ':', m->hb_len - m->cur_start) -
		      (m->hb + m->cur_start));
	m->hx[m->nhx].name_off = (uint32_t)m->cur_start;
	m->hx[m->nhx].name_len = (uint16_t)nl;
	m->hx[m->nhx].val_off = (uint32_t)(m->cur_start + nl + 2);
	m->hx[m->nhx].val_len = (uint32_t)(m->hb_len - 1 - (m->cur_start + nl + 2));
	m->nhx++;
	m->cur_drop = 1;
}

/* utf8_valid - is p[0..n) well-formed UTF-8 (Perl's is_valid_utf_8)? */
static int utf8_valid(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t k = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (!k || c < 0xc2 || i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
		i += k + 1;
	}
	return 1;
}

/* on_relay - a relay rule's prefilter fired */
static int on_relay(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	struct filter_msg *m = ctx;

	(void)from, (void)to, (void)flags;
	m->rcand[id / 64] |= 1ull << (id % 64);
	return 0;
}

/* relay_scan - each relay string against its rules' prefilters (one block
 * scan where each rule's PCRE2 ran on every message): the candidates into
 * m->rcand, the strings scanned into m->rscanned.  A string not scanned
 * (no database, a scan error) leaves its rules to PCRE2 alone */
static void relay_scan(struct filter_msg *m)
{
	const struct scan_db *d = m->db;
	const struct sa_relays *rl = NULL;

	for (int v = 0; v < SCAN_NRDB; v++) {
		const char *s;
		size_t n;

		if (!d->rdb[v])
			continue;
		if (!rl && !(rl = sa_relays_of(m->hb, m->hb_len)))
			return;
		if (v == SA_RELAYS_N && !rl->env_def) { /* relays_hdr: no match */
			m->rscanned |= 1u << v;
			continue;
		}
		s = v < SA_RELAYS_N ? rl->str[v] : rl->env;
		n = v < SA_RELAYS_N ? rl->len[v] : strlen(rl->env);
		if (hs_scan(d->rdb[v], s, (unsigned)n, 0, scratch_for(d), on_relay, m) == HS_SUCCESS)
			m->rscanned |= 1u << v;
	}
}

/* relay_miss - relay rule r cannot match: its string was scanned and
 * its prefilter did not fire */
static int relay_miss(const struct filter_msg *m, const struct scan_rule *r)
{
	size_t id = (size_t)(r - m->db->rules);

	return r->pattern[0] && (m->rscanned >> (int)r->ea & 1) && !(m->rcand[id / 64] >> (id % 64) & 1);
}

/* eval_rule - a built-in SpamAssassin eval test, as the Perl in
 * Mail::SpamAssassin::Plugin::HeaderEval computes it over the views */
static int eval_rule(struct filter_msg *m, const struct scan_rule *r)
{
	switch (r->eval) {
	case EVAL_MISSING_TO: /* get('To') || get('Apparently-To') is '' */
		return !view_value(m, "To") && !view_value(m, "Apparently-To");
	case EVAL_TRUNCATED:
		return m->hdr_trunc;
	case EVAL_HDR_COUNT: { /* distinct values of the header */
		size_t nl = strlen(r->hname);
		unsigned cnt = 0;

		for (size_t i = 0; i < m->nhx; i++) {
			const struct hdr_ent *h = &m->hx[i];
			int dup = 0;

			if (h->name_len != nl || strncasecmp(m->hb + h->name_off, r->hname, nl))
				continue;
			for (size_t j = 0; j < i && !dup; j++)
				dup = m->hx[j].name_len == nl &&
				      !strncasecmp(m->hb + m->hx[j].name_off, r->hname, nl) &&
				      m->hx[j].val_len == h->val_len &&
				      !memcmp(m->hb + m->hx[j].val_off, m->hb + h->val_off, h->val_len);
			cnt += !dup;
		}
		return cnt >= r->ea && cnt <= r->eb;
	}
	case EVAL_SUBJ_ALL_CAPS: {
		const char *p;
		size_t n, letters = 0, upper = 0;
		int space = 0;

		if (!view_value(m, "Subject"))
			return 0;
		p = m->vb;
		n = m->vb_len;
		trim(&p, &n);
		for (;;) { /* (?:(?:Re|Fwd|Fw|Aw|Antwort|WG|SV|VB|VS|VL):\s*)+ */
			static const char *const pre[] = { "Re:", "Fwd:", "Fw:", "Aw:", "Antwort:",
							   "WG:", "SV:", "VB:", "VS:", "VL:" };
			size_t k = 0;

			for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]) && !k; i++)
				if (n >= strlen(pre[i]) && !strncasecmp(p, pre[i], strlen(pre[i])))
					k = strlen(pre[i]);
			if (!k)
				break;
			p += k, n -= k;
			while (n && isspace((unsigned char)*p))
				p++, n--;
		}
		for (size_t i = 0; i < n; i++) {
			space |= isspace((unsigned char)p[i]);
			letters += isalpha((unsigned char)p[i]) && (unsigned char)p[i] < 0x80;
			upper += p[i] >= 'A' && p[i] <= 'Z';
		}
		if (!space || n < 10 || !letters)
			return 0;
		/* subjects in charsets that look like capitals: not tested */
		if (memmem(m->vb, m->vb_len, "=?", 2)) {
			static const char *const fp[] = { "koi", "jp", "jis", "euc", "gb", "big5",
							  "isoir", "cp1251", "windows-1251",
							  "georgianps", "pt154", "tis" };
			for (size_t i = 0; i < sizeof(fp) / sizeof(fp[0]); i++)
				if (strcasestr(m->vb, fp[i]))
					return 0;
		}
		return letters == upper;
	}
	case EVAL_ILLEGAL_CHARS: {
		const unsigned char *p;
		size_t n, ill = 0, nonascii = 0, ctl = 0, exempt = 0, graph = 0;

		if (!view_value(m, r->hname))
			return 0;
		p = (const unsigned char *)m->vb;
		n = m->vb_len;
		for (size_t i = 0; i < n; i++) {
			nonascii += p[i] >= 0x80;
			ctl += p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r';
			ill += (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') ||
			       p[i] >= 0x7f;
			exempt += p[i] == 0xa2 || p[i] == 0xa3 || p[i] == 0xae;
			graph += !isspace(p[i]);
		}
		if (!graph || (nonascii && !ctl && utf8_valid(p, n)))
			return 0;
		if (ill && strcasecmp(r->hname, "Subject") == 0 && exempt == 1)
			ill--;
		return n && (double)ill / (double)n >= r->ea && ill >= r->eb;
	}
	case EVAL_RELAYS_HDR:
		if (relay_miss(m, r))
			return 0;
		break;
	case EVAL_SHIFTED_DATE: /* the DATE_IN_* rules of a message read one parse */
		if (!m->date_done) {
			m->date_diff = sa_date_diff(m->hb, m->hb_len);
			m->date_done = 1;
		}
		return scan_eval_date_in(r, m->date_diff);
	}
	return scan_eval_is_header(r) && scan_eval_header(r, m->hb, m->hb_len); /* scan_eval.c */
}

/* headers_eval - every view a rule reads, each scanned once; absent
 * headers read as their [if-unset: ] value */
static void headers_eval(struct filter_msg *m)
{
	const struct scan_db *d = m->db;

	relay_scan(m);
	for (size_t i = 0; i < d->nevals && !m->done; i++)
		if (eval_rule(m, &d->rules[d->evals[i]]))
			rule_hit(m, d->evals[i]);
	if (!d->db[SDB_HEADER] && !d->nviews)
		return;
	for (size_t v = 0; v < d->nviews && !m->done; v++) {
		if (view_value(m, d->views[v]))
			hdr_scan(m, (int)v, NULL, m->vb, m->vb_len);
		else if (d->nunsets)
			unset_scans(m, (int)v);
	}
	if (d->hdr_any) /* native "header" rules: every header alone */
		for (size_t i = 0; i < m->nhx && !m->done; i++)
			hdr_scan(m, -1, NULL, m->hb + m->hx[i].val_off, m->hx[i].val_len);
}

/* on_headers_done - the header section is over: its rules and evals, with
 * the block's Received parse done once for all of them (scan_received.h) */
static void on_headers_done(void *ctx)
{
	struct filter_msg *m = ctx;

	sa_relays_pin(m->hb, m->hb_len);
	headers_eval(m);
	sa_relays_unpin();
}

scan_unit_tap_fn *scan_unit_tap; /* scan.h: tools/scan-unitbench */

/* ascii_only - no byte of p[0..n) is past 0x7f */
static int ascii_only(const char *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)p[i];
	return !(acc & 0x8080808080808080ull);
}

/* has_byte - some byte of p[0..n) is in set (256 flags) */
static int has_byte(const unsigned char *set, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[(unsigned char)p[i]])
			return 1;
	return 0;
}

/* gate_hit - a skeleton form fired: the line goes to SDB_BODY_GAP */
static int gate_hit(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags, (void)ctx;
	return 1;
}

/* gap_gate - may a rule of SDB_BODY_GAP match the body line p[0..n)?  Its
 * skeleton (its bytes [A-Za-z0-9] in order) scanned on the forms of the
 * line's tier, the set of the bytes the rules' classes name that it
 * holds (scan_rules.c, mark_gap); yes when in doubt */
static int gap_gate(struct filter_msg *m, const char *p, size_t n)
{
	const struct scan_db *d = m->db;
	char sk[SCAN_GATE_MAX];
	size_t k = 0;
	unsigned any = 0, t;
	const hs_database_t *g;

	if (d->skel_off || n > sizeof(sk))
		return 1;
	for (size_t i = 0; i < n; i++) {
		unsigned c = d->skel[(unsigned char)p[i]];

		sk[k] = p[i];
		k += c & SCAN_SK_ALNUM;
		any |= c;
	}
	t = (any >> 1) & (SCAN_SKEL_TIERS - 1);
	if (d->skel_open[t])
		return 1;
	g = d->db[SDB_SKEL + t];
	if (!g || !k) /* no form for such a line; every form needs a byte */
		return 0;
	return hs_scan(g, sk, (unsigned)k, 0, scratch_for(d), gate_hit, NULL) != HS_SUCCESS;
}

/* on_unit - a rendered body line, rawbody chunk or URI: one block scan on
 * its scope's database */
static void on_unit(void *ctx, enum render_unit kind, const char *p, size_t n)
{
	static const int dbi[] = { [RU_BODY] = SDB_BODY, [RU_RAWBODY] = SDB_RAWBODY,
				   [RU_URI] = SDB_URI };
	struct filter_msg *m = ctx;
	const hs_database_t *db = m->db->db[dbi[kind]], *aside = NULL;
	hs_error_t e;
	enum scan_scope scope = kind == RU_BODY ? SCOPE_BODY : kind == RU_RAWBODY ? SCOPE_RAWBODY :
				SCOPE_URI;

	if (m->done || (!db && !(kind == RU_BODY && m->db->db[SDB_BODY_GAP])))
		return;
	/* a repeat adds no hit (scan_seen.h); rawbody chunks do not repeat.
	 * One hash for both tables (a longer unit is in neither) */
	_Static_assert(SCAN_UCACHE_UNIT_MAX <= SCAN_SEEN_UNIT_MAX, "one hash for both tables");
	uint32_t h = kind != RU_RAWBODY && n <= SCAN_SEEN_UNIT_MAX ? scan_unit_hash((int)kind, p, n) : 0;

	if (kind != RU_RAWBODY && scan_seen_check(&m->seen, (int)kind, p, n, h))
		return;
	if (kind != RU_RAWBODY && scan_ucache_enabled()) { /* met in an earlier message? */
		size_t nk;
		const unsigned *k = scan_ucache_get(m->db->gen, (int)kind, p, n, h, &nk);

		if (k) {
			if (scan_unit_tap)
				scan_unit_tap((int)kind, p, n);
			scanned_bytes += n;
			for (size_t i = 0; i < nk && !m->done; i++)
				if (!(m->hits[k[i] / 64] >> (k[i] % 64) & 1))
					rule_hit(m, k[i]);
			return;
		}
		m->rec = n <= SCAN_UCACHE_UNIT_MAX; /* what scan_ucache_put keeps */
		m->rec_bad = 0;
		m->rec_n = 0;
	}
	if (kind == RU_BODY && (m->db->db[SDB_BODY_ASCII] || m->db->db[SDB_BODY_ASIDE]) &&
	    ascii_only(p, n)) { /* the same hits on such a line */
		db = m->db->db[SDB_BODY_ASCII];
		aside = m->db->db[SDB_BODY_ASIDE];
		if (!db)
			db = aside, aside = NULL;
	}
	if (kind == RU_URI)
		aside = m->db->db[SDB_URI_SIDE];
	if (scan_unit_tap)
		scan_unit_tap((int)kind, p, n);
	scanned_bytes += n;
	m->gate = 0;
	e = db ? hs_scan(db, p, (unsigned)n, 0, scratch_for(m->db), on_match, m) : HS_SUCCESS;
	if (aside && (e == HS_SUCCESS || e == HS_SCAN_TERMINATED) && !m->done)
		e = hs_scan(aside, p, (unsigned)n, 0, scratch_for(m->db), on_match, m);
	if (kind == RU_BODY && m->db->db[SDB_BODY_GAP] && (e == HS_SUCCESS || e == HS_SCAN_TERMINATED) &&
	    !m->done && gap_gate(m, p, n))
		e = hs_scan(m->db->db[SDB_BODY_GAP], p, (unsigned)n, 0, scratch_for(m->db), on_match, m);
	if (m->gate && m->db->db[SDB_URI_GATED] && (e == HS_SUCCESS || e == HS_SCAN_TERMINATED) &&
	    !m->done) /* a gated uri rule may match here */
		e = hs_scan(m->db->db[SDB_URI_GATED], p, (unsigned)n, 0, scratch_for(m->db), on_match, m);
	for (size_t i = 0; i < m->db->nbrules && !m->done; i++) { /* one-byte rules */
		unsigned id = m->db->brules[i];
		const struct scan_rule *r = &m->db->rules[id];

		if (r->scope == scope && (m->rec || !(m->hits[id / 64] >> (id % 64) & 1)) &&
		    has_byte(r->bytes, p, n))
			on_match(id, 0, 0, 0, m);
	}
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED && !m->err)
		m->err = e == HS_NOMEM ? -ENOMEM : -EIO;
	scan_unit_end(m, scope, p, n);
	if (m->rec) {
		m->rec = 0;
		if (!m->rec_bad && !m->done && !m->err)
			scan_ucache_put(m->db->gen, (int)kind, p, n, h, m->rec_ids, m->rec_n);
	}
}

/* on_entity_headers - an entity's headers are over: the mimeheader rules
 * (scan_eval.c) that have not hit yet, on them */
static void on_entity_headers(void *ctx)
{
	struct filter_msg *m = ctx;
	const struct scan_db *d = m->db;
	char v[MIME_HDRVAL_MAX + 1];

	for (size_t i = 0; i < d->nevals; i++) {
		const struct scan_rule *r = &d->rules[d->evals[i]];

		if (r->eval == EVAL_MIMEHEADER &&
		    !(m->hits[d->evals[i] / 64] >> (d->evals[i] % 64) & 1) &&
		    confirm(r, v, scan_eval_entity_value(r, &m->w, v)))
			rule_hit(m, d->evals[i]);
	}
}

/* on_part_begin - a decoded leaf part starts (enum mime_ptype) */
static void on_part_begin(void *ctx, int type)
{
	struct filter_msg *m = ctx;

	render_part_begin(&m->rd, (enum render_type)type);
	render_part_charset(&m->rd, m->w.leaf_dbcs);
}

/* on_body_data - decoded body bytes to the renderer */
static void on_body_data(void *ctx, const char *p, size_t n)
{
	struct filter_msg *m = ctx;

	render_data(&m->rd, p, n);
}

/* on_part_end - the part's last units */
static void on_part_end(void *ctx)
{
	struct filter_msg *m = ctx;

	render_part_end(&m->rd);
}

/* on_part_skip - an attachment: only the separator SpamAssassin puts
 * between parts */
static void on_part_skip(void *ctx)
{
	struct filter_msg *m = ctx;

	render_part_begin(&m->rd, RT_SKIP);
}

static const struct mime_sink scan_sink = {
	.header_begin = on_header_begin,
	.header_data = on_header_data,
	.header_end = on_header_end,
	.part_begin = on_part_begin,
	.headers_done = on_headers_done,
	.body_data = on_body_data,
	.part_end = on_part_end,
	.part_skip = on_part_skip,
	.entity_headers = on_entity_headers,
};

/* ------------------------------------------------------- filter ops */

/* scan_close - release a message at any point of its life */
static void scan_close(struct filter_msg *m)
{
	if (!m)
		return;
	for (int s = 0; s < ST_N; s++)
		if (m->st[s])
			hs_close_stream(m->st[s], NULL, NULL, NULL);
	scan_db_unref(m->db);
	free(m->hits);
	free(m->plist);
	free(m->hb);
	free(m->hx);
	free(m->vb);
	scan_seen_free(&m->seen);
	free(m);
}

/* scan_open - a new message on the rules live now */
static struct filter_msg *scan_open(void)
{
	struct filter_msg *m = malloc(sizeof(*m));
	static const int map[ST_N] = { SDB_RAW };
	unsigned want = 0;

	if (!m)
		return NULL;
	memset(m, 0, offsetof(struct filter_msg, w));
	m->reject = -1;
	m->db = scan_db_current();
	if (!m->db)
		goto fail;
	m->hits = calloc(3 * (m->db->nrules / 64 + 1), sizeof(uint64_t));
	if (m->hits) {
		m->pend = m->hits + m->db->nrules / 64 + 1;
		m->rcand = m->pend + m->db->nrules / 64 + 1;
	}
	if (!m->hits || !scratch_ok(m->db))
		goto fail;
	for (int s = 0; s < ST_N; s++)
		if (m->db->db[map[s]] &&
		    hs_open_stream(m->db->db[map[s]], 0, &m->st[s]) != HS_SUCCESS)
			goto fail;
	want = (m->db->db[SDB_BODY] || m->db->db[SDB_BODY_GAP] ? 1u << RU_BODY : 0) |
	       (m->db->db[SDB_RAWBODY] ? 1u << RU_RAWBODY : 0) |
	       (m->db->db[SDB_URI] ? 1u << RU_URI : 0);
	m->walk = hdr_needed(m->db) || want || m->db->nexists;
	mime_init(&m->w, &conf.limits, &scan_sink, m);
	render_init(&m->rd, want, on_unit, m);
	return m;
fail:
	scan_close(m);
	return NULL;
}

/* scan_runs - the run rules (scan_rule.run) over the next bytes of the
 * raw stream: a line whose first run_n bytes are all in the rule's
 * class, where Hyperscan's "^C{N}" with /m matches (C does not hold \n,
 * so a match starts at a line's start).  A line that ends before its
 * N-th byte cannot match and is only passed over with memchr. */
static void scan_runs(struct filter_msg *m, const char *p, size_t n)
{
	const struct scan_db *d = m->db;

	for (size_t k = 0; k < d->nruns && !m->done; k++) {
		unsigned id = d->runs[k];
		const struct scan_rule *r = &d->rules[id];

		if (m->hits[id / 64] >> (id % 64) & 1)
			continue;
		for (size_t pos = 0; pos < n;) {
			const char *nl = memchr(p + pos, '\n', n - pos);
			size_t end = nl ? (size_t)(nl - p) : n, seg = end - pos;

			if (!m->run_off[k] && (!nl || m->run_len[k] + seg >= r->run_n)) {
				size_t want = r->run_n - m->run_len[k], lim = seg < want ? seg : want, j;

				for (j = 0; j < lim && r->run[(unsigned char)p[pos + j]]; j++)
					;
				if (j < lim) {
					m->run_off[k] = 1;
				} else if ((m->run_len[k] += (uint32_t)lim) >= r->run_n) {
					on_match(id, 0, 0, 0, m);
					break;
				}
			}
			if (!nl)
				break;
			pos = end + 1; /* a new line: "^" matches here */
			m->run_len[k] = 0;
			m->run_off[k] = 0;
		}
	}
}

/* process - one piece of the message: the raw stream, then the MIME walk */
static void process(struct filter_msg *m, const char *p, size_t n)
{
	/* Hyperscan takes 32-bit lengths */
	for (size_t off = 0; off < n && !m->done; off += 1u << 30)
		scan_piece(m, ST_RAW, p + off, n - off > (1u << 30) ? (1u << 30) : n - off);
	if (m->db->nruns && !m->done)
		scan_runs(m, p, n);
	if (m->walk && !m->done)
		mime_feed(&m->w, p, n);
}

/* raw_flush - process the gathered bytes */
static void raw_flush(struct filter_msg *m)
{
	if (m->raw_len)
		process(m, m->raw, m->raw_len);
	m->raw_len = 0;
}

/* scan_feed - the next bytes: gathered into chunks, processed per chunk */
static int scan_feed(struct filter_msg *m, const char *data, size_t len)
{
	if (m->err)
		return m->err;
	if (m->done || !(m->st[ST_RAW] || m->walk))
		return 0; /* decided, or no rule reads anything: nothing to do */
	if (len <= SCAN_CHUNK - m->raw_len) {
		memcpy(m->raw + m->raw_len, data, len);
		m->raw_len += len;
		if (m->raw_len == SCAN_CHUNK)
			raw_flush(m);
		return m->err;
	}
	raw_flush(m);
	if (len < SCAN_CHUNK) {
		memcpy(m->raw, data, len);
		m->raw_len = len;
	} else {
		process(m, data, len); /* a big piece: no copy */
	}
	return m->err;
}

/* meta_eval - every meta over the final hits (scan_meta.c), in rule order;
 * a reject meta stops the rest */
static void meta_eval(struct filter_msg *m)
{
	const struct scan_db *d = m->db;
	uint64_t want[64]; /* metas to run: one a hit touched, or true unhit */
	size_t nw = d->nmetas / 64 + 1;

	if (nw > sizeof(want) / sizeof(want[0]) || !d->mlo) { /* every meta */
		for (size_t k = 0; k < d->nmetas && !m->done; k++)
			if (scan_meta_eval(d, k, m->hits))
				rule_hit(m, d->metas[k]);
		return;
	}
	for (size_t w = 0; w < nw; w++)
		want[w] = (uint64_t)d->mempty[2 * w] |
			  (2 * w + 1 < d->nmetas / 32 + 1 ? (uint64_t)d->mempty[2 * w + 1] << 32 : 0);
	/* no meta reads a meta: the hits so far are its rules' */
	for (size_t i = next_hit(m, 0); i < d->nrules; i = next_hit(m, i + 1))
		for (uint32_t j = d->mlo[i]; j < d->mlo[i + 1]; j++)
			want[d->mlist[j] / 64] |= 1ull << (d->mlist[j] % 64);
	for (size_t w = 0; w < nw && !m->done; w++)
		for (uint64_t b = want[w]; b && !m->done; b &= b - 1) {
			size_t k = w * 64 + (size_t)__builtin_ctzll(b);

			if (scan_meta_eval(d, k, m->hits))
				rule_hit(m, d->metas[k]);
		}
}

/* list_rules - "A,B,C" of the matched rules that count, bounded */
static void list_rules(const struct filter_msg *m, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = 0;
	for (size_t i = next_hit(m, 0); i < m->db->nrules; i = next_hit(m, i + 1)) {
		const struct scan_rule *r = &m->db->rules[i];
		int w;

		if (r->action == ACT_SCORE && r->score == 0)
			continue;
		w = snprintf(out + o, cap - o, "%s%s", o ? "," : "", r->id);
		if (w < 0 || (size_t)w >= cap - o) {
			if (cap > 4)
				memcpy(out + (o < cap - 4 ? o : cap - 4), "...", 4);
			return;
		}
		o += (size_t)w;
	}
}

/* scan_finish - end of data: flush every stream, evaluate, decide */
static int scan_finish(struct filter_msg *m, struct filter_verdict *v)
{
	const struct scan_db *d = m->db;
	double score = 0, best = 0;
	long top = -1;
	char rules[sizeof(v->header) - 64];

	memset(v, 0, sizeof(*v));
	raw_flush(m); /* the last chunk: raw stream and walk */
	if (m->walk && !m->done)
		mime_finish(&m->w);
	if (m->walk && !m->done)
		render_finish(&m->rd);
	if (m->st[ST_RAW] && !m->err) {
		hs_error_t e = hs_close_stream(m->st[ST_RAW], m->done ? NULL : scratch_for(d),
					       m->done ? NULL : on_match, m);
		m->st[ST_RAW] = NULL;
		if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED)
			m->err = -EIO;
	}
	sa_relays_pin(m->hb, m->hb_len); /* the headers listed once for all */
	for (size_t i = 0; i < d->nevals && !m->done && m->walk; i++) /* scan_eval.c */
		if (!scan_eval_is_header(&d->rules[d->evals[i]]) &&
		    scan_eval_body(&d->rules[d->evals[i]], m->hb, m->hb_len, &m->w.st, &m->rd.st))
			rule_hit(m, d->evals[i]);
	sa_relays_unpin();
	if (!m->err && !m->done)
		meta_eval(m);
	if (m->err)
		return m->err;
	for (size_t i = next_hit(m, 0); i < d->nrules; i = next_hit(m, i + 1)) {
		const struct scan_rule *r = &d->rules[i];

		if (r->action != ACT_SCORE)
			continue;
		score += r->score;
		if (r->score > best) {
			best = r->score;
			top = (long)i;
		}
	}
	v->score = score;
	list_rules(m, rules, sizeof(rules));
	snprintf(v->header_name, sizeof(v->header_name), "X-Moat-Scan");
	if (m->reject >= 0) {
		const struct scan_rule *r = &d->rules[m->reject];

		v->reject = 1;
		snprintf(v->rule, sizeof(v->rule), "%s", r->id);
		snprintf(v->reply, sizeof(v->reply), "%s (rule %s)", r->reply, r->id);
	} else if (score >= d->threshold) {
		v->reject = 1;
		snprintf(v->rule, sizeof(v->rule), "%s", top >= 0 ? d->rules[top].id : "score");
		snprintf(v->reply, sizeof(v->reply),
			 "Message content rejected as spam (score %.1f, threshold %.1f, rules %.150s)",
			 score, d->threshold, rules);
	} else {
		snprintf(v->header, sizeof(v->header), "score=%.1f threshold=%.1f rules=%s",
			 score, d->threshold, rules[0] ? rules : "none");
	}
	return 0;
}

/* scan_state_size - per-message bytes with the live rules */
static size_t scan_state_size(void)
{
	struct scan_db *d = scan_db_current();
	size_t n = sizeof(struct filter_msg);

	if (d) {
		n += d->stream_size + 3 * (d->nrules / 64 + 1) * sizeof(uint64_t);
		scan_db_unref(d);
	}
	return n;
}

/* scan_msg_db - the rules a message was opened with (tests) */
struct scan_db *scan_msg_db(struct filter_msg *m)
{
	return m->db;
}

const struct filter_ops scan_filter_ops = {
	.name = "scan",
	.thread_init = scan_thread_init,
	.open = scan_open,
	.feed = scan_feed,
	.finish = scan_finish,
	.close = scan_close,
	.state_size = scan_state_size,
};
