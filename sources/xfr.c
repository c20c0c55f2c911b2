/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr.c - a DNSBL zone kept by zone transfer: the zone object, its SOA
 * timers (refresh, retry, expire: when the next transfer is due), the
 * start of a transfer and its two ends, state and results (API and
 * failure rules in xfr.h).
 *
 * A transfer ends in finish (the new data is swapped in, the timers take
 * the new SOA's values, the result waits for moat_xfr_take_result) or in
 * fail (nothing is published, the previous data stays, the next attempt
 * waits for the retry timer and is an AXFR after a failed IXFR).  The
 * connection is xfr_tcp.c, the walk of the answer xfr_parse.c, NOTIFY
 * xfr_notify.c (the split of NSD's xfrd.c / xfrd-tcp.c / xfrd-notify.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xfr_int.h"
#include "zone.h"

/* moat_serial_cmp - RFC 1982 */
int moat_serial_cmp(uint32_t a, uint32_t b)
{
	int32_t d = (int32_t)(a - b);

	if (a == b || d == INT32_MIN)
		return 0;
	return d < 0 ? -1 : 1;
}

/* clamp - v into [lo, hi] */
static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* moat_xfr_zone_new - zone from config */
struct moat_xfr_zone *moat_xfr_zone_new(const struct moat_xfr_cfg *cfg,
					char *err, size_t errlen)
{
	struct moat_xfr_zone *z = calloc(1, sizeof(*z));

	if (!z) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	z->cfg = *cfg;
	z->fd = -1;
	if (!cfg->zone || !knot_dname_from_str(z->apex, cfg->zone, sizeof(z->apex))) {
		snprintf(err, errlen, "bad zone name");
		goto fail;
	}
	knot_dname_to_lower(z->apex);
	knot_dname_to_str(z->name, z->apex, sizeof(z->name));
	z->cfg.zone = z->name;
	if (cfg->nprimary == 0 || cfg->nprimary > MOAT_XFR_MAX_PRIMARIES) {
		snprintf(err, errlen, "zone %s: no primary", z->name);
		goto fail;
	}
	if (cfg->tsig) {
		if (knot_tsig_key_init_str(&z->key, cfg->tsig) != KNOT_EOK) {
			snprintf(err, errlen, "zone %s: bad TSIG key (want alg:name:base64)",
				 z->name);
			goto fail;
		}
		z->has_key = true;
	}
	z->cfg.tsig = NULL; /* not kept: the key is */
	if (!cfg->error_codes)
		moat_codes_default(&z->codes);
	else if (moat_codes_parse(&z->codes, cfg->error_codes)) {
		snprintf(err, errlen, "zone %s: bad error_codes %s", z->name, cfg->error_codes);
		goto fail;
	}
	z->cfg.error_codes = NULL;
#define DEF(f, v) if (!z->cfg.f) z->cfg.f = (v)
	DEF(timeout_ms, 30000);
	DEF(refresh_min, 30);
	DEF(refresh_max, 86400);
	DEF(retry_min, 10);
	DEF(retry_max, 3600);
	DEF(max_records, 50000000);
#undef DEF
	z->retry = z->cfg.retry_min;
	z->refresh = z->cfg.refresh_min;
	z->expire = z->cfg.expire_override ? z->cfg.expire_override : 604800;
	return z;
fail:
	moat_xfr_zone_free(z);
	return NULL;
}

/* moat_xfr_zone_name - the apex, presentation form */
const char *moat_xfr_zone_name(const struct moat_xfr_zone *z)
{
	return z->name;
}

/* moat_xfr_zone_free - release */
void moat_xfr_zone_free(struct moat_xfr_zone *z)
{
	if (!z)
		return;
	if (z->batch)
		moat_zone_rollback(z->zone);
	xfr_conn_reset(z);
	moat_zone_free(z->newzone);
	moat_zone_free(z->zone);
	moat_lvec_free(&z->res.add);
	moat_lvec_free(&z->res.del);
	moat_lvec_free(&z->res.txt);
	moat_lvec_free(&z->txt_chg);
	if (z->has_key)
		knot_tsig_key_deinit(&z->key);
	free(z);
}

/* moat_xfr_next_ms - SOA timer logic */
int64_t moat_xfr_next_ms(const struct moat_xfr_zone *z, int64_t now_ms)
{
	if (z->cs != C_IDLE)
		return INT64_MAX;
	if (z->notify_pending)
		return now_ms;
	if (!z->have_data && z->last_attempt_ms == 0)
		return now_ms;
	if (z->failures == 0 && z->have_data)
		return z->last_success_ms + (int64_t)z->refresh * 1000;
	return z->last_attempt_ms + (int64_t)z->retry * 1000;
}

/* moat_xfr_notify - refresh at the next moat_xfr_next_ms() */
void moat_xfr_notify(struct moat_xfr_zone *z, int64_t now_ms)
{
	(void)now_ms;
	z->notify_pending = true;
}

/* moat_xfr_force_axfr - full transfer at the next opportunity */
void moat_xfr_force_axfr(struct moat_xfr_zone *z)
{
	z->force_axfr = true;
	z->notify_pending = true;
}

/* moat_xfr_start - begin a transfer */
int moat_xfr_start(struct moat_xfr_zone *z, int64_t now_ms)
{
	int r;

	if (z->cs != C_IDLE)
		return -EALREADY;
	z->now_ms = now_ms;
	z->last_attempt_ms = now_ms;
	z->notify_pending = false;
	z->ixfr = z->have_data && !z->cfg.no_ixfr && !z->force_axfr;
	moat_lvec_free(&z->res.add);
	moat_lvec_free(&z->res.del);
	moat_lvec_free(&z->res.txt);
	z->txt_chg.n = 0;
	z->have_result = false;
	r = xfr_open(z);
	if (r) {
		snprintf(z->last_error, sizeof(z->last_error), "connect: %s", strerror(-r));
		xfr_conn_reset(z);
		z->failures++;
		z->failed++;
		z->next_primary++;
		return r;
	}
	return 0;
}

/* xfr_fail - end the transfer without publishing; keep previous data */
enum moat_xfr_status xfr_fail(struct moat_xfr_zone *z, const char *fmt, ...)
{
	va_list ap;
	char buf[sizeof(z->last_error)];

	/* via buf: callers pass z->last_error itself as an argument */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(z->last_error, buf, sizeof(buf));
	log_warn("xfr: zone=%s %s failed: %s (previous data kept)", z->name,
		 z->ixfr ? "IXFR" : "AXFR", z->last_error);
	if (z->batch) {
		moat_zone_rollback(z->zone);
		z->batch = false;
	}
	moat_zone_free(z->newzone);
	z->newzone = NULL;
	xfr_conn_reset(z);
	if (z->ixfr)
		z->force_axfr = true;
	z->failures++;
	z->failed++;
	z->next_primary++;
	return MOAT_XFR_FAILED;
}

/* xfr_finish - the transfer is complete: swap data in, build the result */
enum moat_xfr_status xfr_finish(struct moat_xfr_zone *z, enum moat_xfr_kind kind)
{
	struct moat_xfr_result *r = &z->res;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->serial = z->final_serial;
	r->records = z->nrec;
	r->bytes = z->nbytes;
	if (kind == MOAT_XFR_FULL) {
		/* the caller may walk the zone instead (moat_xfr_tree): no
		 * array of the whole zone */
		ret = z->cfg.no_full_listings ? 0 : moat_zone_listings(z->newzone, &r->add);
		if (ret == 0) {
			moat_zone_free(z->zone);
			z->zone = z->newzone;
			z->newzone = NULL;
			z->n_axfr++;
		}
	} else if (kind == MOAT_XFR_DELTA) {
		ret = moat_zone_commit(z->zone, &r->add, &r->del);
		z->batch = false;
		r->txt = z->txt_chg; /* the result's now */
		memset(&z->txt_chg, 0, sizeof(z->txt_chg));
		r->was_ixfr = true;
		z->n_ixfr++;
	}
	if (ret) {
		moat_lvec_free(&r->add);
		moat_lvec_free(&r->del);
		moat_lvec_free(&r->txt);
		return xfr_fail(z, "out of memory building listings");
	}
	xfr_conn_reset(z);
	z->have_data = true;
	z->force_axfr = false;
	z->serial = z->final_serial;
	z->refresh = clamp(z->new_refresh, z->cfg.refresh_min, z->cfg.refresh_max);
	z->retry = clamp(z->new_retry, z->cfg.retry_min, z->cfg.retry_max);
	z->expire = z->cfg.expire_override ? z->cfg.expire_override : z->new_expire;
	if (z->expire < z->refresh)
		z->expire = z->refresh;
	z->last_success_ms = z->now_ms;
	z->failures = 0;
	z->ok++;
	z->have_result = true;
	log_info("xfr: zone=%s serial=%u kind=%s records=%llu bytes=%llu add=%zu del=%zu",
		 z->name, z->serial,
		 kind == MOAT_XFR_FULL ? "full" : kind == MOAT_XFR_DELTA ? "ixfr" : "uptodate",
		 (unsigned long long)z->nrec, (unsigned long long)z->nbytes,
		 r->add.n, r->del.n);
	return MOAT_XFR_DONE;
}

/* moat_xfr_abort - stop */
void moat_xfr_abort(struct moat_xfr_zone *z, int64_t now_ms)
{
	z->now_ms = now_ms;
	if (z->cs != C_IDLE)
		xfr_fail(z, "aborted");
}

/* moat_xfr_take_result - hand the result to the caller */
int moat_xfr_take_result(struct moat_xfr_zone *z, struct moat_xfr_result *res)
{
	if (!z->have_result)
		return -ENOENT;
	*res = z->res;
	memset(&z->res, 0, sizeof(z->res));
	z->have_result = false;
	return 0;
}

/* moat_xfr_tree - the zone's current data */
const struct moat_zone *moat_xfr_tree(const struct moat_xfr_zone *z)
{
	return z->have_data ? z->zone : NULL;
}

/* moat_xfr_listings - every current listing */
int moat_xfr_listings(struct moat_xfr_zone *z, struct moat_lvec *out)
{
	return z->zone ? moat_zone_listings(z->zone, out) : 0;
}

/* moat_xfr_get_state - timers, counters, last error */
void moat_xfr_get_state(const struct moat_xfr_zone *z, int64_t now_ms,
			struct moat_xfr_state *st)
{
	memset(st, 0, sizeof(*st));
	st->have_data = z->have_data;
	st->running = z->cs != C_IDLE;
	st->serial = z->serial;
	st->refresh = z->refresh;
	st->retry = z->retry;
	st->expire = z->expire;
	st->last_success_ms = z->last_success_ms;
	st->last_attempt_ms = z->last_attempt_ms;
	st->failures = z->failures;
	st->transfers_ok = z->ok;
	st->transfers_failed = z->failed;
	st->axfr = z->n_axfr;
	st->ixfr = z->n_ixfr;
	if (z->have_data) {
		st->stale = now_ms > z->last_success_ms + (int64_t)z->refresh * 1000 &&
			    z->failures > 0;
		st->expired = now_ms > z->last_success_ms + (int64_t)z->expire * 1000;
	}
	if (z->zone) {
		struct moat_zone_stats zs;
		moat_zone_get_stats(z->zone, &zs);
		st->a_records = zs.a_records;
		st->undecodable = zs.undecodable;
	}
	snprintf(st->last_error, sizeof(st->last_error), "%s", z->last_error);
}

/* moat_xfr_lookup - one address against the current data */
int moat_xfr_lookup(const struct moat_xfr_zone *z, const struct moat_prefix *addr,
		    struct moat_zone_answer *ans)
{
	if (!z->zone)
		return -ENOENT;
	return moat_zone_lookup(z->zone, addr, ans);
}
