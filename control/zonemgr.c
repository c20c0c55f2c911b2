/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * zonemgr.c - moat-controld's sources and what happens to their data.
 *
 * Every source (a DNSBL zone by AXFR/IXFR, an rbldnsd file, operator and
 * moat-smtpd entries) feeds the verdict table (lib/vtable.h) under one
 * policy built from the configuration.  A load is all or nothing: a source
 * hands over a complete, checked listing set (or an IXFR delta) and only
 * then does the table change; a failed, partial or insane load leaves the
 * previous data serving and says so (state, last_error, logs, metrics).
 * After each change the table publishes a safe diff to the fast path, and
 * the source's new data is persisted (persist.c) so a cold start filters
 * before the first transfer.
 *
 * Timers run off zm_tick() (once a second): refresh by the SOA (clamped by
 * refresh_min/max), retry after failures, expire -> stale (kept up to
 * stale_max, loudly) or dropped, and operator entry expiry.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "controld.h"
#include "log.h"
#include "lvec.h"
#include "prefix.h"
#include "sources.h"

/* id registry: a zone keeps its source id across reloads */
static struct {
	char name[256];
	uint16_t id;
} ids[CFG_MAX_ZONES * 4];
static int nids;

/* zone_id - stable id for a zone name */
static uint16_t zone_id(struct cd *d, const char *name)
{
	for (int i = 0; i < nids; i++)
		if (strcasecmp(ids[i].name, name) == 0)
			return ids[i].id;
	if (nids >= (int)(sizeof(ids) / sizeof(ids[0])))
		return 0;
	snprintf(ids[nids].name, sizeof(ids[nids].name), "%s", name);
	ids[nids].id = d->next_id++;
	return ids[nids++].id;
}

/* zm_state_name - state as shown by moatctl zones and metrics */
const char *zm_state_name(enum cd_zone_state s)
{
	switch (s) {
	case ZS_NEW: return "new";
	case ZS_OK: return "ok";
	case ZS_FAILED: return "failed";
	case ZS_STALE: return "stale";
	case ZS_DROPPED: return "dropped";
	case ZS_QUARANTINED: return "quarantined";
	}
	return "?";
}

/* zm_source_name - name of a source id, for lookup output */
const char *zm_source_name(struct cd *d, uint16_t id)
{
	if (id == CD_SRC_OPERATOR)
		return "operator";
	if (id == CD_SRC_SMTP)
		return "smtp";
	for (int i = 0; i < d->nzones; i++)
		if (d->zones[i]->id == id)
			return d->zones[i]->cfg.name;
	return "?";
}

/* listing_cmp - lvec.h's total order.  Every listing zonemgr keeps or
 * compares is normalised first (ttl 0, source = the zone's id), so equal
 * entries compare equal and the sorted sets transfers hand over need no
 * sorting. */
#define listing_cmp moat_listing_cmp

/* load_kind - kind= of a zone's load log lines */
static const char *load_kind(const struct cd_zone *z, int is_full)
{
	if (z->cfg.type == CFG_SRC_RBLDNSD)
		return "file";
	return is_full ? "axfr" : "ixfr";
}

/* load_seconds - seconds since the current load began (t0 if unknown) */
static double load_seconds(const struct cd_zone *z, double t0)
{
	return (moat_clock_ms_f() - (z->load_started_ms ? z->load_started_ms : t0)) / 1e3;
}

/* build_policy - the vtable policy of a configuration */
static int build_policy(struct cd *d, const struct moat_config *c, struct vt_policy *p,
			uint16_t *zids, char *err, size_t errsz)
{
	struct vt_source s;

	vt_policy_init(p);
	/* tarpit_threshold 0 = no tarpit level: both levels at drop */
	p->drop_at = c->drop_threshold ? c->drop_threshold : (1 << 30);
	p->tarpit_at = c->tarpit_threshold ? c->tarpit_threshold : p->drop_at;
	vt_source_init(&s, CD_SRC_OPERATOR, "operator", VT_SRC_STATIC);
	s.expire_ttl = 0; /* zonemgr expires entries itself: one clock */
	if (vt_policy_add_source(p, &s, err, errsz) < 0)
		return -1;
	vt_source_init(&s, CD_SRC_SMTP, "smtp", VT_SRC_STATIC);
	s.expire_ttl = 0;
	if (vt_policy_add_source(p, &s, err, errsz) < 0)
		return -1;
	for (int i = 0; i < c->nzones; i++) {
		const struct cfg_zone *z = &c->zone[i];
		int allow = 1;

		zids[i] = zone_id(d, z->name);
		if (z->ncode == 0)
			allow = z->weight <= 0;
		for (int k = 0; k < z->ncode; k++)
			if (z->code[k].weight > 0)
				allow = 0;
		vt_source_init(&s, zids[i], z->name, allow ? VT_SRC_ALLOWLIST : VT_SRC_DNSBL);
		/* live answers (zm_live_answer) live as long as their DNS TTL */
		s.expire_ttl = z->type == CFG_SRC_LIVE;
		if (z->ncode == 0) {
			s.nrules = 1;
			s.rules[0] = (struct vt_weight_rule){ 0x7f000000u, 0x7fffffffu, z->weight };
		} else {
			s.nrules = (uint32_t)z->ncode;
			for (int k = 0; k < z->ncode; k++)
				s.rules[k] = (struct vt_weight_rule){ z->code[k].first, z->code[k].last,
								     z->code[k].weight };
		}
		s.errcodes_set = 1;
		s.nerr = (uint32_t)z->nerrcode;
		for (int k = 0; k < z->nerrcode; k++)
			s.err[k] = (struct vt_code_range){ z->errcode[k].addr,
							   z->errcode[k].addr | ~z->errcode[k].mask };
		if (vt_policy_add_source(p, &s, err, errsz) < 0)
			return -1;
	}
	return vt_policy_validate(p, err, errsz) < 0 ? -1 : 0;
}

/* zm_init - an empty table with the configured policy */
int zm_init(struct cd *d, char *err, size_t errsz)
{
	struct vt_policy *p = malloc(sizeof(*p));
	uint16_t zids[CFG_MAX_ZONES];

	if (!p) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	d->next_id = CD_SRC_ZONE_BASE;
	if (build_policy(d, &d->cfg, p, zids, err, errsz) < 0) {
		free(p);
		return -1;
	}
	d->db = vt_db_new(p, err, errsz);
	free(p);
	return d->db ? 0 : -1;
}

/* zone_new - state for a configured zone; loads its last good state */
static struct cd_zone *zone_new(struct cd *d, const struct cfg_zone *cz, uint16_t id)
{
	struct cd_zone *z = calloc(1, sizeof(*z));

	if (!z)
		return NULL;
	z->cfg = *cz;
	z->id = id;
	z->state = ZS_NEW;
	z->next_refresh = 0; /* at once */
	(void)d;
	return z;
}

/* zone_free - release a zone's state */
static void zone_free(struct cd *d, struct cd_zone *z)
{
	src_cancel(d, z);
	free(z);
}

/* load_chunk - listings per table call in big loads (1M); the e2e suite
 * sets MOAT_TEST_LOAD_CHUNK to a tiny value so small zones take the
 * chunked path too */
static size_t load_chunk(void)
{
	static size_t c;

	if (!c) {
		const char *e = getenv("MOAT_TEST_LOAD_CHUNK");

		c = e && atol(e) > 0 ? (size_t)atol(e) : (size_t)1 << 20;
	}
	return c;
}
#define LOAD_CHUNK load_chunk()

static int table_full_stream(struct cd *d, struct cd_zone *z, const struct src_set *set,
			     int dry, uint64_t *added, uint64_t *removed, size_t *n, char *err,
			     size_t errsz);

/* zone_restore - put the persisted data of z into the db (start, new
 * zone): the file's array is walked into the table and freed */
static void zone_restore(struct cd *d, struct cd_zone *z)
{
	struct moat_listing *l = NULL;
	struct src_set set;
	size_t n = 0, nn;
	uint64_t a, rm;
	char err[256];
	int r;

	if (z->cfg.type == CFG_SRC_LIVE)
		return;
	r = persist_load_zone(d, z, &l, &n);
	if (r == -ENOENT) {
		log_info("zone=%s event=restore result=none (no state file; waiting for the first load)",
			 z->cfg.name);
		return;
	}
	if (r < 0) {
		log_warn("zone=%s event=restore result=error error=\"%s\"", z->cfg.name, strerror(-r));
		return;
	}
	/* zstate_load hands it sorted, with the zone's id and ttl 0; freed
	 * once in the table */
	if (src_set_array(l, n, true, &set) < 0) {
		free(l);
		log_warn("zone=%s event=restore result=error error=\"out of memory\"", z->cfg.name);
		return;
	}
	r = table_full_stream(d, z, &set, 0, &a, &rm, &nn, err, sizeof(err));
	log_mem(z->cfg.name, "restored");
	src_set_close(&set);
	if (r < 0) {
		log_warn("zone=%s event=restore result=rejected error=\"%s\"", z->cfg.name, err);
		return;
	}
	z->n = n;
	z->have_data = 1;
	z->from_disk = 1;
	z->state = ZS_OK;
	log_info("zone=%s event=restore serial=%u entries=%zu result=ok (from %s)",
		 z->cfg.name, z->serial, n, d->cfg.state_dir);
	if (z->expires_at && time(NULL) >= z->expires_at) {
		/* already past the SOA expire: zm_tick decides keep or drop, but
		 * it alarms only on the ok -> stale edge, which a restored zone
		 * never crosses; say it now */
		z->state = ZS_STALE;
		log_err("ALARM zone=%s event=expired serial=%u entries=%zu (restored from disk "
			"already past the SOA expire, %llds ago; entries %s)", z->cfg.name, z->serial,
			n, (long long)(time(NULL) - z->expires_at),
			z->cfg.on_expire == CFG_EXPIRE_DROP ? "dropped at once (on_expire=drop)" :
			"KEPT stale up to stale_max (on_expire=keep)");
	}
}

/* zm_apply_config - (re)build the zone list and policy from c.  On error
 * nothing changes. */
int zm_apply_config(struct cd *d, const struct moat_config *c, char *err, size_t errsz)
{
	struct vt_policy *p = malloc(sizeof(*p));
	uint16_t zids[CFG_MAX_ZONES];
	struct cd_zone *nz[CFG_MAX_ZONES] = { 0 };
	int fresh[CFG_MAX_ZONES] = { 0 };

	if (!p) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (build_policy(d, c, p, zids, err, errsz) < 0)
		goto fail;
	for (int i = 0; i < c->nzones; i++) {
		struct cd_zone *old = zm_zone(d, c->zone[i].name);

		if (old) {
			nz[i] = old;
			continue;
		}
		nz[i] = zone_new(d, &c->zone[i], zids[i]);
		if (!nz[i]) {
			snprintf(err, errsz, "out of memory");
			goto fail;
		}
		fresh[i] = 1;
	}
	if (vt_db_set_policy(d->db, p, err, errsz) < 0)
		goto fail;
	/* committed: retire zones no longer configured */
	for (int i = 0; i < d->nzones; i++) {
		int kept = 0;

		for (int k = 0; k < c->nzones; k++)
			if (nz[k] == d->zones[i])
				kept = 1;
		if (!kept) {
			log_info("zone=%s event=removed (no longer in the configuration)",
				 d->zones[i]->cfg.name);
			zone_free(d, d->zones[i]);
		}
	}
	for (int i = 0; i < c->nzones; i++) {
		struct cd_zone *z = nz[i];
		int changed = !fresh[i] && memcmp(&z->cfg, &c->zone[i], sizeof(z->cfg)) != 0;

		z->cfg = c->zone[i];
		d->zones[i] = z;
		if (fresh[i]) {
			zone_restore(d, z);
		} else if (changed) {
			/* new primaries, TSIG key, file...: the transfer state
			 * was made from the old settings; start over (the data
			 * in the table keeps serving until the next load) */
			src_cancel(d, z);
			z->busy = 0;
			z->next_refresh = 0;
		}
	}
	d->nzones = c->nzones;
	free(p);
	return 0;
fail:
	for (int i = 0; i < c->nzones; i++)
		if (fresh[i] && nz[i])
			free(nz[i]);
	free(p);
	return -1;
}

/* zm_zone - zone by name */
struct cd_zone *zm_zone(struct cd *d, const char *name)
{
	size_t l = strlen(name);

	if (l > 1 && name[l - 1] == '.')
		l--;
	for (int i = 0; i < d->nzones; i++)
		if (strlen(d->zones[i]->cfg.name) == l &&
		    strncasecmp(d->zones[i]->cfg.name, name, l) == 0)
			return d->zones[i];
	return NULL;
}

/* fp_mark_dirty - the maps no longer hold the table's live image */
static void fp_mark_dirty(struct cd *d, const char *why, int r)
{
	if (!d->fp_dirty || strcmp(why, "resync") != 0) {
		/* new data (or the first failure): try again on the next tick;
		 * repeated resync failures back off (fp_resync_tick) */
		d->fp_resync_backoff = 1;
		d->fp_resync_at = 0;
	}
	d->fp_dirty = 1;
	log_err("event=publish why=%s fastpath=%s result=error error=\"%s\" "
		"(fast path marked dirty: resync from the maps on the next tick)",
		why, d->fp.name ? d->fp.name : "none", strerror(-r));
}

/* A publish streaming into the fast path: vt_db_publish_cb hands over
 * chunks of VT_EMIT_CHUNK updates (group before the tbl24 entry that
 * points at it, both in one chunk) and makes each chunk live once the fast
 * path took it.  A full publish of a scattered 10M zone is ~15M updates:
 * collected in one array first (80 B each, doubled by realloc) that was a
 * transient of over 1 GiB. */
struct zm_emit {
	struct cd *d;
	double fp_ms;  /* time spent in the fast path's publish */
	int fp_err;    /* the fast path refused a chunk */
};

/* test_chunk_pause - MOAT_TEST_PUBLISH_CHUNK_MS: the e2e suite's kill -9
 * in the middle of a publish (controld_kill) gets a line after each
 * chunk the fast path took and that long to act */
static void test_chunk_pause(size_t n)
{
	static long ms = -1;

	if (ms < 0) {
		const char *v = getenv("MOAT_TEST_PUBLISH_CHUNK_MS");

		ms = v && atol(v) > 0 ? atol(v) : 0;
	}
	if (!ms)
		return;
	log_info("event=publish-chunk updates=%zu (MOAT_TEST_PUBLISH_CHUNK_MS=%ld)", n, ms);
	usleep((useconds_t)ms * 1000);
}

/* zm_emit_chunk - one chunk to the fast path (nothing to do detached) */
static int zm_emit_chunk(void *ctx, const struct moat_update *u, size_t n)
{
	struct zm_emit *e = ctx;
	struct cd *d = e->d;
	double t;
	int r;

	if (!d->fp.publish || d->detached)
		return 0;
	t = moat_clock_ms_f();
	r = d->fp.publish(d->fp.ctx, u, n);
	e->fp_ms += moat_clock_ms_f() - t;
	if (r < 0)
		e->fp_err = r;
	else
		test_chunk_pause(n);
	return r;
}

/* zm_publish - diff the table into the fast path.  After a failed publish
 * (d->fp_dirty) the db first adopts what the maps really hold, so this
 * publish recomputes everything and writes the difference from there: a
 * resync that repairs whatever the failed one left half done. */
int zm_publish(struct cd *d, const char *why)
{
	struct zm_emit e = { d, 0, 0 };
	size_t n = 0;
	double t0 = moat_clock_ms_f();
	int resync = d->fp_dirty && d->fp.publish && !d->detached;
	int r;

	if (resync && (r = fp_resync(d)) < 0) {
		d->fp_resync_errors++;
		log_err("event=resync why=%s result=error error=\"reading the maps: %s\"", why,
			strerror(-r));
		return r;
	}
	r = vt_db_publish_cb(d->db, zm_emit_chunk, &e, &n);
	if (r == 0 && d->fp.publish_done && !d->detached && (r = d->fp.publish_done(d->fp.ctx)) < 0)
		e.fp_err = r;
	d->last_fp_ms = e.fp_ms;
	d->last_compile_ms = moat_clock_ms_f() - t0 - e.fp_ms;
	if (r < 0) {
		/* what the fast path took is live in the db; the rest stays
		 * dirty there.  A refused chunk may be half applied in the
		 * maps: resync reads them back. */
		d->publish_errors++;
		log_err("event=publish why=%s result=error error=\"%s\" updates=%zu", why,
			strerror(-r), n);
		fp_mark_dirty(d, why, e.fp_err < 0 ? e.fp_err : r);
		if (resync)
			d->fp_resync_errors++;
		return r;
	}
	if (resync) {
		d->fp_resyncs++;
		log_warn("event=resync why=%s result=ok updates=%zu (the maps hold the table again)",
			 why, n);
	}
	d->fp_dirty = 0;
	d->publishes++;
	d->publish_updates += n;
	d->last_publish_ms = moat_clock_ms_f() - t0;
	log_debug("event=publish why=%s updates=%zu ms=%.1f", why, n, d->last_publish_ms);
	return r;
}

/* fp_resync_tick - retry a dirty fast path, backing off to once a minute */
static void fp_resync_tick(struct cd *d, time_t now)
{
	if (!d->fp_dirty || now < d->fp_resync_at)
		return;
	if (zm_publish(d, "resync") < 0 && d->fp_dirty) {
		d->fp_resync_backoff = d->fp_resync_backoff < 32 ? d->fp_resync_backoff * 2 : 60;
		d->fp_resync_at = now + d->fp_resync_backoff;
	}
}

/* zm_zone_failed - a load failed: previous data keeps serving */
static void zm_zone_failed(struct cd *d, struct cd_zone *z, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void zm_zone_failed(struct cd *d, struct cd_zone *z, const char *fmt, ...)
{
	va_list ap;
	time_t now = time(NULL);
	uint32_t retry = z->cfg.retry ? z->cfg.retry : (z->soa_retry ? z->soa_retry : 60);
	double dur = z->load_started_ms ? load_seconds(z, 0) : 0;

	(void)d;
	va_start(ap, fmt);
	vsnprintf(z->last_error, sizeof(z->last_error), fmt, ap);
	va_end(ap);
	z->failures++;
	z->busy = 0;
	z->load_started_ms = 0;
	z->notify_ms = 0;
	if (z->state == ZS_OK || z->state == ZS_NEW)
		z->state = z->have_data || z->state == ZS_OK ? ZS_FAILED : ZS_NEW;
	if (z->state == ZS_NEW)
		z->state = ZS_FAILED;
	if (retry < z->cfg.refresh_min)
		retry = z->cfg.refresh_min;
	if (retry > z->cfg.refresh_max)
		retry = z->cfg.refresh_max;
	z->next_refresh = now + retry;
	/* nothing of a failed load reaches the table: added=0 removed=0 */
	log_warn("zone=%s event=load result=failed serial=%u entries=%zu added=0 removed=0 "
		 "duration=%.3fs error=\"%s\" retry_in=%us (previous data keeps serving)",
		 z->cfg.name, z->serial, z->n, dur, z->last_error, retry);
}

/* The undo log of a chunked full load (table_full_stream): every chunk
 * applied, written to an unlinked file in the state directory before it
 * is applied, so a chunk that fails midway can be undone without a copy
 * of the old set in memory (the table was the only one).  Only needed
 * when the source held something before: from empty, undo is clearing. */
struct undo_rec {
	uint64_t nadd, ndel;
};

/* undo_open - an unlinked scratch file (state_dir, else $TMPDIR) */
static int undo_open(const struct cd *d)
{
	int fd = open(d->cfg.state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		FILE *f = tmpfile();

		fd = f ? dup(fileno(f)) : -1;
		if (f)
			fclose(f);
	}
	return fd;
}

/* undo_write - log one chunk before it is applied */
static int undo_write(int fd, const struct moat_listing *add, size_t na,
		      const struct moat_listing *del, size_t nd)
{
	if (fd < 0)
		return 0; /* nothing before: undo is clearing */
	struct undo_rec h = { na, nd };
	struct iovec v[3] = {
		{ &h, sizeof(h) }, { (void *)add, na * sizeof(*add) }, { (void *)del, nd * sizeof(*del) },
	};
	size_t want = sizeof(h) + (na + nd) * sizeof(*add);
	ssize_t w = writev(fd, v, 3);

	return w == (ssize_t)want ? 0 : -EIO;
}

/* undo_apply - apply the inverse of every logged chunk (they touch
 * disjoint prefixes, so order does not matter); 0 or the first error */
static int undo_apply(struct cd *d, struct cd_zone *z, int fd, char *err, size_t errsz)
{
	struct undo_rec h;
	int r = 0;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	while (read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h)) {
		size_t bytes = (size_t)(h.nadd + h.ndel) * sizeof(struct moat_listing);
		struct moat_listing *b = malloc(bytes ? bytes : 1);
		int e;

		if (!b || read(fd, b, bytes) != (ssize_t)bytes) {
			free(b);
			snprintf(err, errsz, "reading the undo log");
			return -EIO;
		}
		/* what was added goes, what was removed comes back */
		e = vt_db_source_apply(d->db, z->id, b + h.nadd, h.ndel, b, h.nadd, err, errsz);
		free(b);
		if (e < 0 && !r)
			r = e;
	}
	return r;
}

/* chunk_apply - one chunk into the table, logged first; a chunk the
 * table refuses changed nothing (vt_db_source_apply is all or nothing):
 * its record goes from the log again */
static int chunk_apply(struct cd *d, struct cd_zone *z, int undo, const struct moat_lvec *ab,
		       const struct moat_lvec *db, char *err, size_t errsz)
{
	off_t at = undo >= 0 ? lseek(undo, 0, SEEK_CUR) : 0;
	int r;

	if (at < 0 || undo_write(undo, ab->v, ab->n, db->v, db->n) < 0) {
		snprintf(err, errsz, "writing the undo log");
		return -EIO;
	}
	r = vt_db_source_apply(d->db, z->id, ab->v, ab->n, db->v, db->n, err, errsz);
	if (r < 0 && undo >= 0 && (ftruncate(undo, at) < 0 || lseek(undo, at, SEEK_SET) < 0))
		log_err("zone=%s event=rollback error=\"cannot cut the undo log: %s\"", z->cfg.name,
			strerror(errno));
	return r;
}

/* same_pfx - the same prefix (a chunk never splits one: a listing and an
 * exclusion of one prefix must change together) */
static int same_pfx(const struct moat_listing *a, const struct moat_listing *b)
{
	return a->pfx.family == b->pfx.family && a->pfx.plen == b->pfx.plen &&
	       !memcmp(a->pfx.addr, b->pfx.addr, 16);
}

/* A sorted stream of the source's listings in the table, in chunks. */
struct tstream {
	struct vt_walk w;
	struct moat_listing *b;
	size_t n, i;
	int end;
};
#define TWALK_CAP 65536

/* ts_head - the next listing of the table's set, NULL at the end */
static const struct moat_listing *ts_head(struct cd *d, struct cd_zone *z, struct tstream *t,
					  int *rc)
{
	while (t->i >= t->n && !t->end) {
		*rc = vt_db_source_walk(d->db, z->id, &t->w, t->b, TWALK_CAP, &t->n);
		t->i = 0;
		if (*rc < 0 || !t->n)
			t->end = 1;
	}
	return t->i < t->n ? &t->b[t->i] : NULL;
}

/* ns_head - the next listing of the new set, NULL at the end */
static const struct moat_listing *ns_head(const struct src_set *set, struct moat_lvec *nb,
					  size_t *ni, int *rc)
{
	if (*ni >= nb->n) {
		nb->n = 0;
		*ni = 0;
		*rc = set->next(set->ctx, nb, TWALK_CAP);
	}
	return *ni < nb->n ? &nb->v[*ni] : NULL;
}

/* table_full_stream - make the source's listings in the table equal the
 * sorted set walked from set, given the table's own (a sorted walk of
 * it, vt_db_source_walk): the difference goes in as deltas of about
 * LOAD_CHUNK entries, so neither side is ever one array and the table's
 * working memory stays O(chunk).  Answers the policy ignores are never in
 * the table: the new set's are handed over (the table counts them) but
 * are no additions.  dry: only count.  Counts added/removed and the new
 * set's size *n.  On error the old set is put back (undo log). */
static int table_full_stream(struct cd *d, struct cd_zone *z, const struct src_set *set,
			     int dry, uint64_t *added, uint64_t *removed, size_t *n, char *err,
			     size_t errsz)
{
	struct moat_lvec ab = { 0 }, db = { 0 }, nb = { 0 };
	struct tstream ts = { .b = malloc(TWALK_CAP * sizeof(struct moat_listing)) };
	struct vt_source_counters sc = { 0 };
	struct moat_listing last;
	size_t ni = 0, ign = 0;
	int r = 0, wr = 0, have_last = 0, applied = 0, undo = -1;

	*added = *removed = 0;
	*n = 0;
	if (!ts.b) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	vt_db_source_counters(d->db, z->id, &sc);
	if (!dry && sc.entries_v4 + sc.entries_v6 && (undo = undo_open(d)) < 0) {
		free(ts.b);
		snprintf(err, errsz, "no undo log: %s", strerror(errno));
		return -EIO;
	}
	set->rewind(set->ctx);
	for (;;) {
		const struct moat_listing *o = ts_head(d, z, &ts, &wr);
		const struct moat_listing *nw = ns_head(set, &nb, &ni, &r);
		const struct moat_listing *next;
		int c;

		if (wr < 0 || r < 0) {
			r = wr < 0 ? wr : r;
			snprintf(err, errsz, "walking the sets: %s", strerror(-r));
			break;
		}
		if (!o && !nw)
			c = 2;
		else
			c = !o ? 1 : !nw ? -1 : listing_cmp(o, nw);
		next = c == 2 ? NULL : c <= 0 ? o : nw;
		/* a full chunk goes in at a prefix boundary (or the end) */
		if (ab.n + db.n >= LOAD_CHUNK && (!next || !have_last || !same_pfx(next, &last))) {
			if (!dry && (r = chunk_apply(d, z, undo, &ab, &db, err, errsz)) < 0)
				break;
			applied = 1;
			ab.n = db.n = 0;
		}
		if (c == 2)
			break;
		if (c == 0) {
			ts.i++;
			ni++;
			++*n;
			continue;
		}
		if (c < 0) {
			r = moat_lvec_push(&db, o);
			ts.i++;
			++*removed;
		} else {
			r = moat_lvec_push(&ab, nw);
			ni++;
			++*n;
			if (vt_db_source_ignores(d->db, z->id, nw))
				ign++;
			else
				++*added;
		}
		if (r < 0) {
			snprintf(err, errsz, "out of memory");
			break;
		}
		last = *next;
		have_last = 1;
	}
	if (!r && !dry && ab.n + db.n) /* the last chunk (smaller than LOAD_CHUNK) */
		applied |= (r = chunk_apply(d, z, undo, &ab, &db, err, errsz)) == 0;
	if (r < 0 && !dry && applied) {
		char e2[160];
		int u;

		/* back to exactly what was there */
		if (undo < 0)
			u = vt_db_source_replace(d->db, z->id, NULL, 0, e2, sizeof(e2));
		else
			u = undo_apply(d, z, undo, e2, sizeof(e2));
		if (u < 0)
			log_err("zone=%s event=rollback error=\"%s\"", z->cfg.name, e2);
		else
			log_warn("zone=%s event=rollback result=ok (the previous data is back)",
				 z->cfg.name);
	}
	(void)ign;
	if (undo >= 0)
		close(undo);
	free(ts.b);
	moat_lvec_free(&ab);
	moat_lvec_free(&db);
	moat_lvec_free(&nb);
	return r;
}

struct persist_out {
	double ms;
	int journaled;
	uint64_t bytes;
};

/* zone_persist - save the zone's new state: an IXFR appends its delta to
 * the journal, a full load rewrites the base from set (persist.c) */
static void zone_persist(struct cd *d, struct cd_zone *z, int is_full, const struct src_set *set,
			 uint32_t serial_from, const struct moat_listing *add, size_t nadd,
			 const struct moat_listing *del, size_t ndel, struct persist_out *po)
{
	double tp = moat_clock_ms_f();
	uint64_t appends = z->persist_appends, jbytes = z->zs.journal_bytes;

	if ((is_full ? persist_save_zone(d, z, set) :
	     persist_save_delta(d, z, serial_from, add, nadd, del, ndel, set)) < 0)
		log_err("zone=%s event=persist result=error (last good state not saved)", z->cfg.name);
	po->ms = moat_clock_ms_f() - tp;
	po->journaled = z->persist_appends != appends;
	po->bytes = po->journaled ? z->zs.journal_bytes - jbytes : z->zs.base_bytes;
	log_mem(z->cfg.name, "persisted");
}

/* zm_zone_load - a source delivers data: a full set (is_full: walked
 * from set) or an IXFR delta (add[0..nadd), del[0..ndel); set is then the
 * zone after it, for the checks and a base rewrite).  Returns 0 when
 * published, -1 when refused (the zone's state says why). */
static int zm_zone_load(struct cd *d, struct cd_zone *z, int is_full, const struct src_set *set,
			uint32_t serial, struct moat_listing *add, size_t nadd,
			struct moat_listing *del, size_t ndel)
{
	double t0 = moat_clock_ms_f();
	char err[256], why[256];
	time_t now = time(NULL);
	uint64_t added = 0, removed = 0;
	size_t nn = 0;
	int r;

	z->busy = 0;
	z->last_attempt = now;
	for (size_t i = 0; i < nadd; i++) {
		add[i].source = z->id;
		add[i].ttl = 0;
	}
	for (size_t i = 0; i < ndel; i++) {
		del[i].source = z->id;
		del[i].ttl = 0;
	}
	log_mem(z->cfg.name, "received");
	/* sanity: test points, "lists the world", size, judged on what the
	 * zone would serve: for an IXFR the zone after the delta (a delta
	 * adding 256 /8s, or deleting 127.0.0.2, fails like the same data by
	 * AXFR).  A full set is streamed through the checks; a delta is
	 * checked on its own against the last result (src_sanity). */
	struct src_delta dl = { .add = add, .nadd = nadd, .del = del, .ndel = ndel };
	struct moat_sanity_result san;
	double tsan = moat_clock_ms_f();
	int checked = is_full ? src_sanity_full(z, set, &nn, &san, why, sizeof(why)) :
			src_sanity(z, set, &dl, &san, why, sizeof(why));

	if (!is_full)
		nn = z->n + nadd >= ndel ? z->n + nadd - ndel : 0;
	if (checked < 0) {
		size_t cnt;

		z->state = ZS_QUARANTINED;
		z->quarantines++;
		z->failures++;
		snprintf(z->last_error, sizeof(z->last_error), "quarantined: %.200s", why);
		z->next_refresh = now + (z->soa_refresh ? z->soa_refresh : z->cfg.refresh_min);
		/* what the refused load would have changed (a delta: its own
		 * counts), and how long it took */
		if (is_full) {
			table_full_stream(d, z, set, 1, &added, &removed, &cnt, err, sizeof(err));
		} else {
			added = nadd;
			removed = ndel;
		}
		log_err("ALARM zone=%s event=quarantine kind=%s serial=%u entries=%zu added=%llu "
			"removed=%llu duration=%.3fs reason=\"%s\" (not published; previous data "
			"keeps serving)", z->cfg.name, load_kind(z, is_full), serial, nn,
			(unsigned long long)added, (unsigned long long)removed,
			load_seconds(z, t0), why);
		z->load_started_ms = 0;
		z->notify_ms = 0;
		return -1;
	}
	log_mem(z->cfg.name, "sanity");
	double sanity_ms = moat_clock_ms_f() - tsan;
	double ts = moat_clock_ms_f();

	if (is_full) {
		r = table_full_stream(d, z, set, 0, &added, &removed, &nn, err, sizeof(err));
	} else {
		r = vt_db_source_apply(d->db, z->id, add, nadd, del, ndel, err, sizeof(err));
		added = nadd;
		removed = ndel;
	}
	if (r < 0) {
		zm_zone_failed(d, z, "rejected by the table: %s", err);
		return -1;
	}
	double replace_ms = moat_clock_ms_f() - ts;

	log_mem(z->cfg.name, "table");
	/* the zone's new state */
	z->last_added = added;
	z->last_removed = removed;
	z->n = nn;
	z->san = san;
	z->san_known = checked == 1; /* the next IXFR's checks start from it */
	z->undecodable = z->load_undecodable;
	uint32_t serial_from = z->serial; /* the journal record's chain link */

	z->serial = serial;
	z->have_data = 1;
	z->from_disk = 0;
	z->state = ZS_OK;
	z->last_success = now;
	z->last_error[0] = 0;
	z->loads++;
	z->expires_at = z->soa_expire ? now + z->soa_expire : 0;
	uint32_t refresh = z->soa_refresh ? z->soa_refresh : z->cfg.refresh_min;

	if (refresh < z->cfg.refresh_min)
		refresh = z->cfg.refresh_min;
	if (refresh > z->cfg.refresh_max)
		refresh = z->cfg.refresh_max;
	if (z->cfg.type == CFG_SRC_RBLDNSD)
		refresh = 1; /* files are checked every tick */
	z->next_refresh = now + refresh;
	/* a set that owns its array (a file's parse) is saved now and freed
	 * before publishing, which grows the mapped maps: the array is not
	 * part of the peak; a zone tree stays anyway, saved after live */
	struct persist_out po = { 0 };

	if (set && set->release) {
		zone_persist(d, z, is_full, set, serial_from, add, nadd, del, ndel, &po);
		set->release(set->ctx);
	}
	zm_publish(d, z->cfg.name);
	log_mem(z->cfg.name, "published");
	double live_at = moat_clock_ms_f();
	double live_ms = live_at - t0;
	/* start of the transfer (or file read) to live in the fast path, and
	 * NOTIFY to live: what tools/bench control measures */
	double src_to_live = z->load_started_ms ? live_at - z->load_started_ms : -1;
	double notify_to_live = z->notify_ms ? live_at - z->notify_ms : -1;
	double started = z->load_started_ms ? z->load_started_ms : t0;

	z->load_started_ms = 0;
	z->notify_ms = 0;
	/* live now: persistence, the log line (merge_ms: no copy of the zone
	 * is merged any more, kept 0 for log readers) */
	double merge_ms = 0;

	if (!(set && set->release))
		zone_persist(d, z, is_full, set, serial_from, add, nadd, del, ndel, &po);
	double persist_ms = po.ms;
	int journaled = po.journaled;
	uint64_t persist_bytes = po.bytes;

	z->last_duration = (moat_clock_ms_f() - started) / 1e3; /* transfer + load + persist */
	log_info("zone=%s event=load kind=%s serial=%u entries=%zu added=%llu removed=%llu "
		 "duration=%.3fs live_ms=%.1f source_to_live_ms=%.1f notify_to_live_ms=%.1f "
		 "merge_ms=%.1f sanity_ms=%.1f table_ms=%.1f compile_ms=%.1f fastpath_ms=%.1f "
		 "persist=%s persist_ms=%.1f persist_bytes=%llu undecodable=%zu", z->cfg.name,
		 load_kind(z, is_full), serial, z->n, (unsigned long long)z->last_added,
		 (unsigned long long)z->last_removed, z->last_duration, live_ms, src_to_live,
		 notify_to_live, merge_ms, sanity_ms, replace_ms, d->last_compile_ms, d->last_fp_ms,
		 journaled ? "journal" : "base", persist_ms, (unsigned long long)persist_bytes,
		 z->undecodable);
	return 0;
}

/* zm_refresh - moatctl zone refresh NAME */
int zm_refresh(struct cd *d, const char *name, int full)
{
	struct cd_zone *z = zm_zone(d, name);

	if (!z)
		return -ENOENT;
	z->refresh_now = 1;
	z->refresh_full |= full;
	z->next_refresh = 0;
	return 0;
}

/* drop_zone_data - stale_max passed / on_expire=drop: stop serving it */
static void drop_zone_data(struct cd *d, struct cd_zone *z, const char *why)
{
	char err[256];

	if (vt_db_source_replace(d->db, z->id, NULL, 0, err, sizeof(err)) < 0) {
		log_err("zone=%s event=drop result=error error=\"%s\"", z->cfg.name, err);
		return;
	}
	zm_publish(d, z->cfg.name);
	log_err("zone=%s event=dropped serial=%u entries_removed=%zu reason=\"%s\"",
		z->cfg.name, z->serial, z->n, why);
	z->n = 0;
	z->have_data = 0;
	z->san_known = 0;
	z->state = ZS_DROPPED;
	persist_save_zone(d, z, NULL);
}

/* entries_expire - operator and smtp entries whose time has come: one
 * publish and one journal record for all of them */
static void entries_expire(struct cd *d, time_t now)
{
	struct cd_entry *gone = NULL;
	size_t ngone = 0, capgone = 0;
	int changed = 0;
	char err[256], pb[64];

	for (size_t i = 0; i < d->nentries;) {
		struct cd_entry *e = &d->entries[i];

		if (!e->expires || e->expires > now) {
			i++;
			continue;
		}
		struct moat_listing l = { .pfx = e->pfx, .code = e->action, .source = e->source };

		if (vt_db_source_apply(d->db, e->source, NULL, 0, &l, 1, err, sizeof(err)) < 0)
			log_err("event=expire prefix=%s error=\"%s\"",
				moat_prefix_str(&e->pfx, pb, sizeof(pb)), err);
		log_info("event=entry-expired source=%s prefix=%s action=%s",
			 zm_source_name(d, e->source), moat_prefix_str(&e->pfx, pb, sizeof(pb)),
			 vt_action_name(e->action));
		if (ngone == capgone) {
			size_t cap = capgone ? capgone * 2 : 16;
			struct cd_entry *ng = realloc(gone, cap * sizeof(*ng));

			if (ng) {
				gone = ng;
				capgone = cap;
			}
		}
		/* without memory for the record the entry is still gone at the
		 * next start: a restore drops expired entries */
		if (ngone < capgone)
			gone[ngone++] = *e;
		zm_entries_remove(d, i);
		changed = 1;
	}
	if (changed) {
		zm_publish(d, "expiry");
		persist_entries_append(d, 1, gone, ngone);
	}
	free(gone);
}

/* live_codes - the codes source src holds for exactly addr (explain) */
static size_t live_codes(struct cd *d, const struct moat_prefix *addr, uint16_t src,
			 struct moat_listing *out, size_t max)
{
	struct vt_explain *ex = malloc(sizeof(*ex));
	size_t n = 0;

	if (!ex)
		return 0;
	if (vt_db_explain(d->db, addr, ex) == 0)
		for (uint32_t i = 0; i < ex->n && n < max; i++)
			if (ex->items[i].source == src && !ex->items[i].exclude &&
			    ex->items[i].pfx.plen == addr->plen)
				out[n++] = (struct moat_listing){ .pfx = *addr, .code = ex->items[i].code,
								  .source = src };
	free(ex);
	return n;
}

/* zm_live_answer - install what the live zones answered for addr, each
 * listing with its answer's TTL (at least 1 s), so the next SYN from addr
 * is refused by the fast path; a zone that answered "not listed" (only
 * known when every zone answered) loses what it held for addr.  Expiry is
 * the table's (vt_db_expire in zm_tick).  Returns how many listings were
 * installed. */
size_t zm_live_answer(struct cd *d, const struct moat_prefix *addr, const struct moat_lvec *l,
		      unsigned nfailed)
{
	struct moat_listing add[16], del[16];
	char err[256], pb[64];
	size_t total = 0;
	int changed = 0;

	vt_db_set_time(d->db, (uint64_t)time(NULL));
	for (int i = 0; i < d->nzones; i++) {
		const struct cd_zone *z = d->zones[i];
		size_t na = 0, nd;
		uint32_t ttl = 0;

		if (z->cfg.type != CFG_SRC_LIVE)
			continue;
		for (size_t k = 0; k < l->n && na < 16; k++) {
			const struct moat_listing *x = &l->v[k];
			size_t j;

			if (x->source != z->id || x->exclude)
				continue;
			for (j = 0; j < na && add[j].code != x->code; j++)
				;
			if (j < na)
				continue; /* the same A twice */
			add[na] = (struct moat_listing){ .pfx = *addr, .code = x->code, .source = z->id,
							 .ttl = x->ttl ? x->ttl : 1 };
			if (!ttl || add[na].ttl < ttl)
				ttl = add[na].ttl;
			na++;
		}
		if (!na && nfailed)
			continue; /* maybe this zone did not answer: keep what it had */
		nd = live_codes(d, addr, z->id, del, 16);
		if (!na && !nd)
			continue;
		/* one TTL per address and zone: the shortest answer's */
		for (size_t j = 0; j < na; j++)
			add[j].ttl = ttl;
		if (vt_db_source_apply(d->db, z->id, add, na, del, nd, err, sizeof(err)) < 0) {
			log_warn("zone=%s event=live addr=%s result=rejected error=\"%s\"", z->cfg.name,
				 moat_prefix_str(addr, pb, sizeof(pb)), err);
			continue;
		}
		changed = 1;
		total += na;
		log_info("zone=%s event=live addr=%s listed=%zu ttl=%u removed=%zu", z->cfg.name,
			 moat_prefix_str(addr, pb, sizeof(pb)), na, ttl, nd);
	}
	if (changed) {
		zm_publish(d, "live");
		d->live_dirty = 1; /* saved on the next tick (persist_save_live) */
	}
	return total;
}

static void zm_zone_uptodate(struct cd *d, struct cd_zone *z, uint32_t serial);

/* zone_apply - what a source's step came to (sources.h src_result): the
 * zone and the table follow it; a load refused after a transfer resets
 * the transfer (the library moved on to data we never published) */
static void zone_apply(struct cd *d, struct cd_zone *z, struct src_result *res)
{
	int r = 0;

	switch (res->kind) {
	case SRC_NONE:
		break;
	case SRC_LOADED:
		r = zm_zone_load(d, z, res->full, &res->set, res->serial, res->add.v, res->add.n,
				 res->del.v, res->del.n);
		break;
	case SRC_UPTODATE:
		zm_zone_uptodate(d, z, res->serial);
		break;
	case SRC_FAILED:
		zm_zone_failed(d, z, "%s", res->error);
		break;
	}
	src_result_free(res);
	if (res->next_in >= 0)
		z->next_refresh = time(NULL) + res->next_in;
	if (r < 0)
		src_reset(d, z);
}

/* zone_start - begin a load of z and apply what came of it at once (a
 * file's data, a failure to start) */
static void zone_start(struct cd *d, struct cd_zone *z, int forced)
{
	struct src_result res;

	src_start(d, z, forced, &res);
	zone_apply(d, z, &res);
}

/* zm_io - a zone's transfer socket is ready (events 0: its deadline) */
void zm_io(struct cd *d, struct cd_zone *z, uint32_t events)
{
	struct src_result res;

	src_io(d, z, events, &res);
	zone_apply(d, z, &res);
}

/* zm_notify_io - a NOTIFY socket is ready: each message the glue answers
 * may name a zone to refresh now (busy: once the transfer ends) */
void zm_notify_io(struct cd *d, struct cd_tag *t)
{
	struct src_notice nt = { 0 };
	int more;

	do {
		more = src_notify_next(d, t, &nt);
		for (size_t i = 0; i < nt.nfailed; i++)
			zm_zone_failed(d, nt.failed[i].zone, "transfer set-up: %s", nt.failed[i].why);
		if (nt.zone && !nt.zone->busy)
			zone_start(d, nt.zone, 1);
		else if (nt.zone)
			nt.zone->refresh_now = 1;
	} while (more);
}

/* zm_tick - timers, once a second */
void zm_tick(struct cd *d, time_t now)
{
	size_t gone;

	fp_resync_tick(d, now);
	entries_expire(d, now);
	/* live answers whose TTL ran out */
	gone = vt_db_expire(d->db, (uint64_t)now);
	if (gone) {
		log_info("event=live-expired listings=%zu", gone);
		zm_publish(d, "live-expiry");
	}
	/* listed live answers to disk (at most every CD_LIVE_SAVE_S: on a
	 * busy MX they change all the time), so a restart keeps filtering
	 * what the lookups found */
	if (d->live_dirty && now >= d->live_saved_at + CD_LIVE_SAVE_S)
		persist_save_live(d);
	/* operator entries a full or failing disk did not take: retried */
	if (d->entries_unsaved && now >= d->entries_retry_at) {
		d->entries_retry_at = now + CD_LIVE_SAVE_S;
		persist_save_entries(d);
	}
	for (int i = 0; i < d->nzones; i++) {
		struct cd_zone *z = d->zones[i];

		if (z->cfg.type == CFG_SRC_LIVE)
			continue;
		/* expiry: no successful refresh for SOA expire */
		if (z->have_data && z->expires_at && now >= z->expires_at) {
			if (z->cfg.on_expire == CFG_EXPIRE_DROP) {
				drop_zone_data(d, z, "expired (on_expire=drop)");
			} else if (now >= z->expires_at + (time_t)z->cfg.stale_max) {
				drop_zone_data(d, z, "stale longer than stale_max");
			} else if (z->state != ZS_STALE) {
				z->state = ZS_STALE;
				log_err("ALARM zone=%s event=expired serial=%u entries=%zu "
					"(no successful refresh for the SOA expire time; entries KEPT "
					"stale for up to %us, on_expire=keep)", z->cfg.name, z->serial,
					z->n, z->cfg.stale_max);
			}
		}
		if (src_due(d, z, now)) {
			int forced = z->refresh_now;

			z->refresh_now = 0;
			zone_start(d, z, forced);
		}
	}
	/* transfers whose peer went silent */
	for (int i = 0; i < d->nzones; i++)
		if (src_timed_out(d->zones[i]))
			zm_io(d, d->zones[i], 0);
}

/* zm_zone_uptodate - the primary has the serial we serve: a success */
static void zm_zone_uptodate(struct cd *d, struct cd_zone *z, uint32_t serial)
{
	time_t now = time(NULL);

	(void)d;
	z->busy = 0;
	z->last_attempt = now;
	/* a NOTIFY for the serial we serve (a primary's repeat, knotc
	 * zone-notify) is answered by this check: it must not become the
	 * start of the next load's notify_to_live_ms */
	z->notify_ms = 0;
	if (!z->have_data || z->serial != serial) {
		/* we serve other data than the primary's (restored from
		 * disk, or dropped): cannot happen with the library's own
		 * serial tracking, but never call it fresh */
		zm_zone_failed(d, z, "up to date at serial %u but serving serial %u", serial, z->serial);
		src_reset(d, z);
		return;
	}
	if (z->state != ZS_OK)
		log_info("zone=%s event=recovered serial=%u state=ok (was %s)", z->cfg.name, serial,
			 zm_state_name(z->state));
	z->state = ZS_OK;
	z->last_success = now;
	z->last_error[0] = 0;
	z->expires_at = z->soa_expire ? now + z->soa_expire : 0;
	log_debug("zone=%s event=refresh serial=%u result=uptodate", z->cfg.name, serial);
}

/* zm_entry_add - add or replace an operator / smtp entry */
int zm_entry_add(struct cd *d, const struct cd_entry *e, char *err, size_t errsz)
{
	ssize_t old = zm_entries_find(d, &e->pfx, e->source);
	struct moat_listing add = { .pfx = e->pfx, .code = e->action, .source = e->source };
	struct moat_listing del = add;
	int r;

	if (old >= 0)
		del.code = d->entries[old].action;
	r = vt_db_source_apply(d->db, e->source, &add, 1, old >= 0 ? &del : NULL,
			       old >= 0 ? 1 : 0, err, errsz);
	if (r < 0)
		return r;
	if (zm_entries_put(d, e) < 0) {
		vt_db_source_apply(d->db, e->source, old >= 0 ? &del : NULL, old >= 0 ? 1 : 0,
				   &add, 1, err, errsz);
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (d->restoring)
		return 0;
	zm_publish(d, e->source == CD_SRC_SMTP ? "smtp-report" : "operator");
	persist_entries_append(d, 0, e, 1);
	return 0;
}

/* zm_entries_restore - the entries persist.c read back into the table
 * (expired ones dropped), published once by the caller */
int zm_entries_restore(struct cd *d)
{
	char path[PATH_MAX], err[256];
	struct cd_entry *e;
	size_t n, ok = 0;
	time_t now = time(NULL);
	int r = persist_load_entries(d, &e, &n, path, sizeof(path));

	if (r < 0)
		return r;
	d->restoring = 1; /* one publish at the end, not one per entry */
	for (size_t i = 0; i < n; i++) {
		if (e[i].expires && e[i].expires <= now)
			continue;
		if (zm_entry_add(d, &e[i], err, sizeof(err)) == 0)
			ok++;
		else
			log_warn("event=restore entry %zu refused: %s", i, err);
	}
	d->restoring = 0;
	free(e);
	log_info("event=restore entries=%zu (operator and moat-smtpd, from %s and its journal)", ok,
		 path);
	/* compacted at every start: the journal begins empty on the base */
	persist_save_entries(d);
	return 0;
}

/* zm_entry_del - remove an entry; -ENOENT when absent */
int zm_entry_del(struct cd *d, const struct moat_prefix *p, uint16_t source, char *err, size_t errsz)
{
	ssize_t i = zm_entries_find(d, p, source);

	if (i < 0) {
		snprintf(err, errsz, "no such entry");
		return -ENOENT;
	}
	struct moat_listing del = { .pfx = *p, .code = d->entries[i].action, .source = source };
	int r = vt_db_source_apply(d->db, source, NULL, 0, &del, 1, err, errsz);

	if (r < 0)
		return r;
	struct cd_entry gone = d->entries[i];

	zm_entries_remove(d, (size_t)i);
	zm_publish(d, "operator");
	persist_entries_append(d, 1, &gone, 1);
	return 0;
}

/* zm_zone_json - one zone for moatctl zones / status */
struct json_object *zm_zone_json(struct cd *d, const struct cd_zone *z, time_t now)
{
	struct json_object *o = json_object_new_object();
	struct vt_source_counters sc = { 0 };

	vt_db_source_counters(d->db, z->id, &sc);
	json_object_object_add(o, "name", json_object_new_string(z->cfg.name));
	json_object_object_add(o, "type", json_object_new_string(cfg_src_type_name(z->cfg.type)));
	json_object_object_add(o, "state", json_object_new_string(zm_state_name(z->state)));
	json_object_object_add(o, "serial", json_object_new_int64(z->serial));
	json_object_object_add(o, "entries", json_object_new_int64((int64_t)z->n));
	json_object_object_add(o, "entries_v4", json_object_new_int64((int64_t)sc.entries_v4));
	json_object_object_add(o, "entries_v6", json_object_new_int64((int64_t)sc.entries_v6));
	json_object_object_add(o, "undecodable", json_object_new_int64((int64_t)z->undecodable));
	json_object_object_add(o, "ignored_codes",
			       json_object_new_int64((int64_t)(sc.ignored_outside + sc.ignored_errcode)));
	json_object_object_add(o, "stale", json_object_new_boolean(z->state == ZS_STALE));
	json_object_object_add(o, "quarantined", json_object_new_boolean(z->state == ZS_QUARANTINED));
	json_object_object_add(o, "from_disk", json_object_new_boolean(z->from_disk));
	json_object_object_add(o, "last_success", json_object_new_int64(z->last_success));
	json_object_object_add(o, "last_attempt", json_object_new_int64(z->last_attempt));
	json_object_object_add(o, "next_refresh_in",
			       json_object_new_int64(z->busy ? 0 : (int64_t)(z->next_refresh > now ?
									    z->next_refresh - now : 0)));
	json_object_object_add(o, "expires_in",
			       json_object_new_int64(z->expires_at ? (int64_t)(z->expires_at - now) : -1));
	json_object_object_add(o, "failures", json_object_new_int64((int64_t)z->failures));
	json_object_object_add(o, "loads", json_object_new_int64((int64_t)z->loads));
	json_object_object_add(o, "last_added", json_object_new_int64((int64_t)z->last_added));
	json_object_object_add(o, "last_removed", json_object_new_int64((int64_t)z->last_removed));
	json_object_object_add(o, "last_duration", json_object_new_double(z->last_duration));
	json_object_object_add(o, "busy", json_object_new_boolean(z->busy));
	json_object_object_add(o, "last_error", json_object_new_string(z->last_error));
	return o;
}

/* zm_free - release every zone and the table */
void zm_free(struct cd *d)
{
	for (int i = 0; i < d->nzones; i++)
		zone_free(d, d->zones[i]);
	d->nzones = 0;
	free(d->entries);
	d->entries = NULL;
	d->nentries = d->capentries = 0;
	ent_index_free(&d->eidx);
	vt_db_free(d->db);
	d->db = NULL;
}
