/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan.c - the content gate as an SMTP filter (filter.h): Hyperscan
 * streaming scans of a message while it arrives, and a verdict at the dot.
 *
 * Each message holds a reference to the rules (scan_db) live when it was
 * opened and up to two Hyperscan streams: the raw bytes and the current
 * top-level header value (restarted per header, so anchors and header-name
 * scoping mean one header).  Bodies are read as SpamAssassin reads them:
 * the renderer (scan_render.c) turns each decoded part into body lines,
 * rawbody chunks and URIs, each a bounded unit scanned in one block call
 * on its scope's database, so `^` and `\z` anchor per line or URI.  A
 * stream is opened and a kind of unit rendered only when some rule reads
 * it, and the MIME walk runs only when a header, body or exists rule
 * needs it.  The engine feeds one line per call; lines are gathered into a
 * SCAN_CHUNK buffer and each chunk is scanned once on the raw stream and
 * walked once by the MIME walker (scan_mime.c), which decodes on the fly:
 * per-line cost is one memcpy, Hyperscan and the walker see large pieces.  SpamAssassin metas are
 * evaluated at the end by one small block scan of the matched rules' tokens
 * against the meta database's logical combinations.  Scratch is per worker
 * thread, grown when a reload brings bigger databases.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "scan.h"
#include "scan_render.h"

enum { ST_RAW = 0, ST_HDR, ST_N };

/* The engine feeds a line at a time; lines are gathered (bounded) so the
 * raw stream and the MIME walk run per 32 KiB chunk, not per line: the
 * size of a large TCP read.  Each byte is still scanned exactly once, and
 * the verdict (at the dot) comes after the last chunk is flushed. */
#ifndef SCAN_CHUNK
#define SCAN_CHUNK 32768
#endif
/* A header value arrives a folded line at a time; it is gathered so one
 * Hyperscan call covers a whole header (longer ones in several calls). */
#define SCAN_HDR_BUF 2048

struct filter_msg {
	struct scan_db *db;
	hs_stream_t *st[ST_N];
	int walk;              /* headers/bodies needed (some rule reads them) */
	int done;              /* a reject rule matched: stop scanning */
	int subject;           /* the open header is the first Subject */
	int err;               /* a scan failed: -errno for feed/finish */
	long reject;           /* first reject rule matched, -1 none */
	char hname[MIME_NAME_MAX];
	size_t raw_len;        /* bytes waiting in raw[] (not yet scanned/walked) */
	size_t hdr_len;        /* header value bytes waiting in hdr[] */
	uint64_t *hits;        /* one bit per rule */
	/* not zeroed at open: the walker and renderer initialise themselves,
	 * raw[] is a buffer */
	struct mime_walker w;
	struct render rd;
	char hdr[SCAN_HDR_BUF];
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

static __thread hs_scratch_t *tl_scratch;
static __thread uint64_t tl_gen;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

/* scratch_free - thread exit: release the thread's scratch */
static void scratch_free(void *p)
{
	hs_free_scratch(p);
}

/* scratch_key_init - once per process */
static void scratch_key_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

/* scratch_for - this thread's scratch, grown to fit every database of d */
static hs_scratch_t *scratch_for(const struct scan_db *d)
{
	if (tl_scratch && tl_gen == d->gen)
		return tl_scratch;
	for (int i = 0; i < SDB_N; i++)
		if (d->db[i] && hs_alloc_scratch(d->db[i], &tl_scratch) != HS_SUCCESS)
			return NULL;
	if (tl_scratch) {
		pthread_once(&scratch_once, scratch_key_init);
		pthread_setspecific(scratch_key, tl_scratch);
	}
	tl_gen = d->gen;
	return tl_scratch;
}

/* scan_thread_init - per worker thread: scratch for the live rules */
static int scan_thread_init(void)
{
	struct scan_db *d = scan_db_current();
	int rc = 0;

	if (d && d->nrules && !scratch_for(d))
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

/* on_match - Hyperscan callback for every database; non-zero stops the
 * scan (a reject rule decided the message) */
static int on_match(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	struct filter_msg *m = ctx;
	const struct scan_rule *r = &m->db->rules[id];

	(void)from, (void)to, (void)flags;
	if (r->scope == SCOPE_HEADER && r->hname && strcasecmp(r->hname, m->hname) != 0)
		return 0;
	hit(m, id);
	if (r->action == ACT_REJECT) {
		if (m->reject < 0)
			m->reject = id;
		m->done = 1;
		return 1;
	}
	return 0;
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

/* restart - end one header's or part's stream (end-anchored matches
 * report here) and make it ready for the next */
static void restart(struct filter_msg *m, int s)
{
	hs_error_t e;

	if (!m->st[s])
		return;
	e = hs_reset_stream(m->st[s], 0, m->done ? NULL : scratch_for(m->db),
			    m->done ? NULL : on_match, m);
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED && !m->err)
		m->err = -EIO;
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

/* on_header_begin - a top-level header starts: name for scoping, exists rules */
static void on_header_begin(void *ctx, const char *name)
{
	struct filter_msg *m = ctx;

	snprintf(m->hname, sizeof(m->hname), "%s", name);
	/* the first Subject is the first body line (scan_render.h) */
	m->subject = strcasecmp(name, "Subject") == 0;
	if (m->db->nexists)
		exists_hits(m, name);
}

/* hdr_flush - scan the gathered header value bytes */
static void hdr_flush(struct filter_msg *m)
{
	scan_piece(m, ST_HDR, m->hdr, m->hdr_len);
	m->hdr_len = 0;
}

/* on_header_data - unfolded header value bytes, gathered for the header
 * stream */
static void on_header_data(void *ctx, const char *p, size_t n)
{
	struct filter_msg *m = ctx;

	if (m->subject)
		render_subject(&m->rd, p, n);
	if (!m->st[ST_HDR])
		return;
	while (n) {
		size_t k = SCAN_HDR_BUF - m->hdr_len < n ? SCAN_HDR_BUF - m->hdr_len : n;

		memcpy(m->hdr + m->hdr_len, p, k);
		m->hdr_len += k;
		p += k;
		n -= k;
		if (m->hdr_len == SCAN_HDR_BUF)
			hdr_flush(m);
	}
}

/* on_header_end - the header's last bytes, its end-anchored matches, then
 * a fresh stream */
static void on_header_end(void *ctx)
{
	struct filter_msg *m = ctx;

	hdr_flush(m);
	restart(m, ST_HDR);
	m->hname[0] = 0;
	if (m->subject)
		render_subject_end(&m->rd);
	m->subject = 0;
}

/* on_unit - a rendered body line, rawbody chunk or URI: one block scan on
 * its scope's database */
static void on_unit(void *ctx, enum render_unit kind, const char *p, size_t n)
{
	static const int dbi[] = { [RU_BODY] = SDB_BODY, [RU_RAWBODY] = SDB_RAWBODY,
				   [RU_URI] = SDB_URI };
	struct filter_msg *m = ctx;
	const hs_database_t *db = m->db->db[dbi[kind]];
	hs_error_t e;

	if (m->done || !db)
		return;
	scanned_bytes += n;
	e = hs_scan(db, p, (unsigned)n, 0, scratch_for(m->db), on_match, m);
	if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED && !m->err)
		m->err = e == HS_NOMEM ? -ENOMEM : -EIO;
	scan_unit_end(m, kind == RU_BODY ? SCOPE_BODY : kind == RU_RAWBODY ? SCOPE_RAWBODY :
			 SCOPE_URI, p, n);
}

/* scan_unit_end - stand-in: branch saeng defines the confirmation of
 * prefilter hits here (keep theirs at the merge, drop this one) */
void scan_unit_end(struct filter_msg *m, enum scan_scope s, const char *text, size_t len)
{
	(void)m, (void)s, (void)text, (void)len;
}

/* on_part_begin - a decoded leaf part starts (enum mime_ptype) */
static void on_part_begin(void *ctx, int type)
{
	struct filter_msg *m = ctx;

	render_part_begin(&m->rd, (enum render_type)type);
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
	.body_data = on_body_data,
	.part_end = on_part_end,
	.part_skip = on_part_skip,
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
	free(m);
}

/* scan_open - a new message on the rules live now */
static struct filter_msg *scan_open(void)
{
	struct filter_msg *m = malloc(sizeof(*m));
	static const int map[ST_N] = { SDB_RAW, SDB_HEADER };
	unsigned want = 0;

	if (!m)
		return NULL;
	memset(m, 0, offsetof(struct filter_msg, w));
	m->reject = -1;
	m->db = scan_db_current();
	if (!m->db)
		goto fail;
	m->hits = calloc(m->db->nrules / 64 + 1, sizeof(uint64_t));
	if (!m->hits || (m->db->nrules && !scratch_for(m->db)))
		goto fail;
	for (int s = 0; s < ST_N; s++)
		if (m->db->db[map[s]] &&
		    hs_open_stream(m->db->db[map[s]], 0, &m->st[s]) != HS_SUCCESS)
			goto fail;
	want = (m->db->db[SDB_BODY] ? 1u << RU_BODY : 0) |
	       (m->db->db[SDB_RAWBODY] ? 1u << RU_RAWBODY : 0) |
	       (m->db->db[SDB_URI] ? 1u << RU_URI : 0);
	m->walk = m->st[ST_HDR] || want || m->db->nexists;
	mime_init(&m->w, &conf.limits, &scan_sink, m);
	render_init(&m->rd, want, on_unit, m);
	return m;
fail:
	scan_close(m);
	return NULL;
}

/* process - one piece of the message: the raw stream, then the MIME walk */
static void process(struct filter_msg *m, const char *p, size_t n)
{
	/* Hyperscan takes 32-bit lengths */
	for (size_t off = 0; off < n && !m->done; off += 1u << 30)
		scan_piece(m, ST_RAW, p + off, n - off > (1u << 30) ? (1u << 30) : n - off);
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

/* meta_scan - evaluate the metas: one token per matched rule a meta reads */
static int meta_scan(struct filter_msg *m)
{
	const struct scan_db *d = m->db;
	size_t n = 0, k = 0;
	char *buf;
	hs_error_t e;

	for (size_t i = next_hit(m, 0); i < d->nrules; i = next_hit(m, i + 1))
		n += d->rules[i].in_meta;
	buf = malloc(n * 10 + 6);
	if (!buf)
		return -ENOMEM;
	for (size_t i = next_hit(m, 0); i < d->nrules; i = next_hit(m, i + 1))
		if (d->rules[i].in_meta) {
			snprintf(buf + k, 11, "\x1d%08x\x1e", (unsigned)i);
			k += 10;
		}
	memcpy(buf + k, "\x1d" "END\x1e", 5); /* see build_exprs */
	k += 5;
	e = hs_scan(d->db[SDB_META], buf, (unsigned)k, 0, scratch_for(m->db), on_match, m);
	free(buf);
	return e == HS_SUCCESS || e == HS_SCAN_TERMINATED ? 0 : -EIO;
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
	if (!m->err && !m->done && d->db[SDB_META])
		m->err = meta_scan(m);
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
		n += d->stream_size + (d->nrules / 64 + 1) * sizeof(uint64_t);
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
