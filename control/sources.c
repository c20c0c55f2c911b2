/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sources.c - drive libmoatsrc from moat-controld's event loop.
 *
 * Each entry point returns what came of it and leaves the decision to its
 * caller, zonemgr.c: a struct src_result (a load's data, up to date, or a
 * failure) or a struct src_notice (the zone a NOTIFY asks to refresh).
 * Nothing here calls into the zone manager.
 *
 * AXFR/IXFR zones: one struct moat_xfr_zone per configured zone, created
 * lazily with the zone's primaries and TSIG key.  Its socket goes into the
 * daemon's epoll set while a transfer runs; a finished transfer's result
 * is its listings (a full set or a delta), a failed one's its error.  When
 * zonemgr.c refuses a load after the transfer (quarantine, table error) it
 * resets the transfer state (src_reset) so the next attempt is a full AXFR
 * instead of an IXFR against data we never published.
 *
 * rbldnsd files: read whole when their identity (stat) changes.
 *
 * NOTIFY: UDP sockets on [daemon] notify_listen, and TCP on the same
 * addresses; moat_notify_handle() checks and answers each message, and
 * zonemgr.c starts an accepted one's refresh at once (that is the
 * IXFR-to-live path the benchmark measures).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "controld.h"
#include "dnstcp.h"
#include "fleet_rec.h"
#include "fleet_view.h"
#include "log.h"
#include "prefix.h"
#include "rbldnsd.h"
#include "sanity.h"
#include "sources.h"
#include "xfr.h"
#include "zone.h"
#include "zstate.h"

struct zsrc {
	struct cd_tag tag;
	struct moat_xfr_zone *x;
	struct moat_rbl_file *rbl;
	int watched;
	char err[200];            /* why the transfer state could not be set up */
	time_t fleet_next;        /* fleet zone: the next record's exp (0: none) */
	/* fleet zone: the addresses the table holds, with their exp (NULL:
	 * the next load filters the whole zone and builds it) */
	struct moat_fleet_view *fv;
};

static struct cd_tag notify_tags[4];     /* UDP */
static struct cd_tag notify_ltags[4];    /* TCP listeners */

/* A NOTIFY over TCP (Knot sends them that way): framing by dnstcp.c.
 * Each connection holds a 64 KiB reader, so they are bounded: only
 * primaries of a configured zone get one (anyone else is closed at
 * accept, before any allocation), at most NTCP_MAX at a time (the oldest
 * goes when a new one arrives: a real NOTIFY takes milliseconds, so the
 * newest is the one worth serving), and NTCP_IDLE seconds without a
 * message closes one. */
#define NTCP_MAX 8
#define NTCP_IDLE 5
struct ntcp {
	struct cd_tag tag;
	struct moat_dnstcp *c;
	time_t last;              /* accepted, or last message */
	struct ntcp *next;        /* newest first */
};
static struct ntcp *ntcps;
static unsigned nntcp;

/* zsrc_get - the zone's transfer state, created on first use; NULL when
 * it cannot be, *why then the reason (NULL: out of memory before any) */
static struct zsrc *zsrc_get(struct cd_zone *z, const char **why)
{
	struct zsrc *s = z->xfr;
	struct moat_xfr_cfg c;

	*why = NULL;
	if (s && s->x)
		return s;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		s->tag = (struct cd_tag){ TAG_ZONE, z, -1 };
		z->xfr = s;
	}
	memset(&c, 0, sizeof(c));
	c.zone = z->cfg.name;
	for (int i = 0; i < z->cfg.nprimary && i < MOAT_XFR_MAX_PRIMARIES; i++)
		memcpy(&c.primary[i], &z->cfg.primary[i].ss, sizeof(c.primary[i]));
	c.nprimary = (size_t)z->cfg.nprimary;
	c.tsig = z->cfg.tsig[0] ? z->cfg.tsig : NULL;
	c.source = z->id;
	c.no_ixfr = !z->cfg.ixfr;
	c.timeout_ms = z->cfg.timeout * 1000;
	c.refresh_min = z->cfg.refresh_min;
	c.refresh_max = z->cfg.refresh_max;
	if (z->cfg.retry) {
		c.retry_min = z->cfg.retry;
		c.retry_max = z->cfg.retry;
	}
	c.max_records = z->cfg.max_entries;
	c.no_full_listings = true; /* zonemgr walks the tree (src_set_tree) */
	c.keep_txt = z->cfg.fleet != 0; /* exp= and the publisher's id */
	s->x = moat_xfr_zone_new(&c, s->err, sizeof(s->err));
	if (!s->x) {
		*why = s->err;
		return NULL;
	}
	return s;
}

/* res_init - a result with nothing to apply */
static void res_init(struct src_result *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = SRC_NONE;
	r->next_in = -1;
}

/* res_fail - r becomes a failure: the next attempt next_in seconds after
 * it is applied (-1: the zone manager's retry) */
static void res_fail(struct src_result *r, int64_t next_in, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void res_fail(struct src_result *r, int64_t next_in, const char *fmt, ...)
{
	va_list ap;

	r->kind = SRC_FAILED;
	r->next_in = next_in;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

/* src_result_free - release what a result holds */
void src_result_free(struct src_result *r)
{
	if (r->set.ctx)
		src_set_close(&r->set);
	moat_lvec_free(&r->add);
	moat_lvec_free(&r->del);
	r->kind = SRC_NONE;
}

/* unwatch - take the transfer socket out of epoll (it may be closed) */
static void unwatch(struct zsrc *s)
{
	if (s->watched) {
		cd_unwatch(&s->tag);
		s->watched = 0;
	}
}

/* rewatch - put the current transfer socket into epoll */
static void rewatch(struct zsrc *s)
{
	int fd = moat_xfr_fd(s->x);

	unwatch(s);
	if (fd < 0)
		return;
	s->tag.fd = fd;
	if (cd_watch(&s->tag, moat_xfr_events(s->x)) == 0)
		s->watched = 1;
}

/* src_reset - forget the transfer state: the next load is an AXFR */
void src_reset(struct cd *d, struct cd_zone *z)
{
	struct zsrc *s = z->xfr;

	(void)d;
	if (!s)
		return;
	unwatch(s);
	moat_xfr_zone_free(s->x);
	s->x = NULL;
	moat_fleet_view_free(s->fv); /* its zone is gone with the transfer state */
	s->fv = NULL;
	s->fleet_next = 0;
}

/* src_cancel - free everything of the zone's transfer */
void src_cancel(struct cd *d, struct cd_zone *z)
{
	src_reset(d, z);
	if (z->xfr)
		moat_rbl_file_free(((struct zsrc *)z->xfr)->rbl);
	free(z->xfr);
	z->xfr = NULL;
}

/* src_due - is a load due now? */
int src_due(struct cd *d, struct cd_zone *z, time_t now)
{
	(void)d;
	if (z->busy)
		return 0;
	if (z->refresh_now || z->next_refresh == 0)
		return 1;
	if (z->cfg.type == CFG_SRC_AXFR) {
		struct zsrc *s = z->xfr;

		if (!s || !s->x)
			return now >= z->next_refresh;
		if (z->cfg.fleet && s->fleet_next && now >= s->fleet_next)
			return 1; /* a record's exp passed: filter again */
		return moat_xfr_next_ms(s->x, moat_clock_ms()) <= moat_clock_ms();
	}
	if (z->cfg.type == CFG_SRC_RBLDNSD) {
		struct zsrc *s = z->xfr;

		/* a stat() a second: cheap, and catches rsync's rename */
		if (now < z->next_refresh)
			return 0;
		if (z->refresh_full) {
			z->refresh_full = 0;
			if (s && s->rbl) { /* forget the file's identity: read it again */
				moat_rbl_file_free(s->rbl);
				s->rbl = NULL;
			}
			return 1;
		}
		return !s || !s->rbl || moat_rbl_file_changed(s->rbl);
	}
	return 0; /* live: answers per address, nothing to load */
}

/* fleet_filter - a fleet zone's set (docs/fleet.md): its listings less
 * the records whose exp= has passed and those this appliance published
 * itself, as a full array; s->fleet_next gets the next exp to come (the
 * zone is filtered again then, transfer or not).  0 or -ENOMEM. */
static int fleet_filter(struct cd *d, struct cd_zone *z, struct zsrc *s, struct src_result *res)
{
	const struct moat_zone *t = moat_xfr_tree(s->x);
	struct moat_zone_cursor *c = t ? moat_zone_cursor_new(t) : NULL;
	struct moat_lvec all = { 0 }, keep = { 0 };
	size_t expired = 0, own = 0;
	time_t now = time(NULL);
	double t0 = moat_clock_ms_f();
	int r = -ENOMEM;

	if (!c)
		return t ? -ENOMEM : -ENOENT;
	s->fleet_next = 0;
	if (s->fv)
		moat_fleet_view_clear(s->fv);
	else
		s->fv = moat_fleet_view_new(); /* NULL: filtered whole next time too */
	for (;;) {
		all.n = 0;
		if (moat_zone_cursor_next(c, &all, 1 << 16) < 0)
			goto out;
		if (!all.n)
			break;
		for (size_t i = 0; i < all.n; i++) {
			struct moat_listing l = all.v[i];
			struct moat_zone_answer ans;
			time_t exp;
			int host = l.pfx.plen == (l.pfx.family == MOAT_AF_INET ? 32 : 128);

			l.ttl = 0;
			if (host && !l.exclude && moat_xfr_lookup(s->x, &l.pfx, &ans) == 0) {
				enum moat_fleet_verdict v = moat_fleet_judge(ans.txt, d->cfg.fleet.id,
									    now, &exp);

				if (v == MOAT_FLEET_EXPIRED) {
					expired++;
					continue;
				}
				if (v == MOAT_FLEET_OWN) {
					own++;
					continue;
				}
				if (s->fv && moat_fleet_view_set(s->fv, &l.pfx,
								 v == MOAT_FLEET_KEEP ? exp : 0) < 0) {
					moat_fleet_view_free(s->fv);
					s->fv = NULL;
				}
				if (v == MOAT_FLEET_KEEP && (!s->fleet_next || exp < s->fleet_next))
					s->fleet_next = exp;
			}
			if (moat_lvec_push(&keep, &l) < 0)
				goto out;
		}
	}
	log_debug("zone=%s event=fleet-filter kept=%zu expired=%zu own=%zu next_exp_in=%lld ms=%.3f",
		  z->cfg.name, keep.n, expired, own,
		  s->fleet_next ? (long long)(s->fleet_next - now) : -1LL, moat_clock_ms_f() - t0);
	if (src_set_array(keep.v, keep.n, true, &res->set) < 0)
		goto out;
	keep.v = NULL;
	res->kind = SRC_LOADED;
	res->full = 1;
	r = 0;
out:
	if (r < 0) {
		moat_fleet_view_free(s->fv);
		s->fv = NULL;
	}
	moat_zone_cursor_free(c);
	moat_lvec_free(&all);
	moat_lvec_free(&keep);
	return r;
}

/*
 * A fleet zone's later loads are deltas over the addresses they touch
 * (docs/fleet.md): an IXFR's added and deleted listings, the addresses
 * whose TXT (exp=, id) it changed, or the addresses whose exp has come.
 * For each: what the table holds there (the view says whether it was
 * kept; its listings are the zone's now less what the IXFR added plus
 * what it deleted) against what the zone says now, judged again; the
 * difference is the load.  The set zonemgr checks and saves is the tree
 * less what the view does not keep.
 */

static bool is_host(const struct moat_prefix *p)
{
	return p->plen == (p->family == MOAT_AF_INET ? 32 : 128);
}

/* fleet_now - the listings the zone has at host a now (no exclusions),
 * and whether they are kept (*keep), *exp their exp= (0: not a fleet
 * record); counts why not */
static int fleet_now(struct cd *d, struct zsrc *s, const struct moat_zone_cursor *c,
		     const struct moat_prefix *a, time_t now, struct moat_lvec *cur, bool *keep,
		     time_t *exp, size_t *expired, size_t *own)
{
	struct moat_zone_answer ans;
	enum moat_fleet_verdict v = MOAT_FLEET_NOTAG;
	size_t k = 0;

	cur->n = 0;
	*exp = 0;
	if (moat_zone_cursor_range(c, a, true, cur) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < cur->n; i++)
		if (!cur->v[i].exclude && moat_prefix_cmp(&cur->v[i].pfx, a) == 0) {
			cur->v[k] = cur->v[i];
			cur->v[k++].ttl = 0;
		}
	cur->n = k;
	if (k && moat_xfr_lookup(s->x, a, &ans) == 0)
		v = moat_fleet_judge(ans.txt, d->cfg.fleet.id, now, exp);
	*keep = k && (v == MOAT_FLEET_KEEP || v == MOAT_FLEET_NOTAG);
	if (v != MOAT_FLEET_KEEP)
		*exp = 0;
	*expired += k && v == MOAT_FLEET_EXPIRED;
	*own += k && v == MOAT_FLEET_OWN;
	return 0;
}

/* has_code - l[0..n) holds a listing of code at a */
static bool has_code(const struct moat_listing *l, size_t n, uint32_t code)
{
	for (size_t i = 0; i < n; i++)
		if (l[i].code == code && !l[i].exclude)
			return true;
	return false;
}

/* span - the listings of lv at host a: [*lo, *hi) (lv sorted) */
static void span(const struct moat_lvec *lv, const struct moat_prefix *a, size_t *lo, size_t *hi)
{
	size_t l = 0, h = lv->n;

	while (l < h) {
		size_t m = (l + h) / 2;

		if (moat_prefix_cmp(&lv->v[m].pfx, a) < 0)
			l = m + 1;
		else
			h = m;
	}
	*lo = *hi = l;
	while (*hi < lv->n && moat_prefix_cmp(&lv->v[*hi].pfx, a) == 0)
		++*hi;
}

/* fset - the tree as a set, less the hosts the view does not keep */
struct fset {
	struct moat_zone_cursor *c;
	const struct moat_fleet_view *v;
};

static void fset_filter(const struct fset *f, struct moat_lvec *out, size_t from)
{
	size_t k = from;
	time_t e;

	for (size_t i = from; i < out->n; i++)
		if (!is_host(&out->v[i].pfx) || out->v[i].exclude ||
		    moat_fleet_view_get(f->v, &out->v[i].pfx, &e)) {
			out->v[k] = out->v[i];
			out->v[k++].ttl = 0;
		}
	out->n = k;
}

static int fset_next(void *ctx, struct moat_lvec *out, size_t max)
{
	struct fset *f = ctx;
	size_t from = out->n;

	for (;;) { /* nothing appended means the end: skip chunks kept whole out */
		size_t before = out->n;
		int r = moat_zone_cursor_next(f->c, out, max);

		if (r < 0 || out->n == before)
			return r;
		fset_filter(f, out, before);
		if (out->n > from)
			return 0;
	}
}

static void fset_rewind(void *ctx)
{
	moat_zone_cursor_rewind(((struct fset *)ctx)->c);
}

static int fset_range(void *ctx, const struct moat_prefix *r, bool exact, struct moat_lvec *out)
{
	struct fset *f = ctx;
	size_t from = out->n;
	int rc = moat_zone_cursor_range(f->c, r, exact, out);

	if (rc == 0)
		fset_filter(f, out, from);
	return rc;
}

/* src_set_fleet - the fleet zone as the table holds it */
static int src_set_fleet(struct zsrc *zs, struct src_set *s)
{
	const struct moat_zone *t = moat_xfr_tree(zs->x);
	struct fset *f = calloc(1, sizeof(*f));

	memset(s, 0, sizeof(*s));
	if (!f || !t || !(f->c = moat_zone_cursor_new(t))) {
		free(f);
		return -ENOMEM;
	}
	f->v = zs->fv;
	s->ctx = f;
	s->next = fset_next;
	s->rewind = fset_rewind;
	s->range = fset_range;
	s->tree = 2;
	return 0;
}

/* fleet_delta - the load of an IXFR (xr) or, xr NULL, of the exp times
 * that came: res becomes the delta over the addresses touched */
static int fleet_delta(struct cd *d, struct cd_zone *z, struct zsrc *s,
		       const struct moat_xfr_result *xr, struct src_result *res)
{
	const struct moat_zone *t = moat_xfr_tree(s->x);
	struct moat_zone_cursor *c = t ? moat_zone_cursor_new(t) : NULL;
	struct moat_lvec touched = { 0 }, cur = { 0 }, old = { 0 };
	static const struct moat_lvec none;
	const struct moat_lvec *add = xr ? &xr->add : &none, *del = xr ? &xr->del : &none;
	size_t expired = 0, own = 0, ntouched = 0;
	time_t now = time(NULL), exp;
	double t0 = moat_clock_ms_f();
	int r = -ENOMEM;

	if (!c)
		return -ENOMEM;
	/* what the delta touches: hosts judged below, the rest as it comes */
	for (int pass = 0; pass < 2; pass++) {
		const struct moat_lvec *lv = pass ? del : add;
		struct moat_lvec *to = pass ? &res->del : &res->add;

		for (size_t i = 0; i < lv->n; i++) {
			struct moat_listing l = lv->v[i];

			l.ttl = 0;
			if (moat_lvec_push(is_host(&l.pfx) && !l.exclude ? &touched : to, &l) < 0)
				goto out;
		}
	}
	for (size_t i = 0; xr && i < xr->txt.n; i++)
		if (is_host(&xr->txt.v[i].pfx) && moat_lvec_push(&touched, &xr->txt.v[i]) < 0)
			goto out;
	if (!xr) { /* the clock: the addresses whose exp has come */
		struct moat_listing l = { 0 };

		while (moat_fleet_view_pop_due(s->fv, now, &l.pfx, &exp))
			if (moat_lvec_push(&touched, &l) < 0)
				goto out;
	}
	for (size_t i = 0; i < touched.n; i++)
		touched.v[i].code = 0;
	moat_lvec_sort(&touched);
	for (size_t i = 0; i < touched.n; i++) {
		const struct moat_prefix *a = &touched.v[i].pfx;
		size_t a0, a1, d0, d1;
		bool keep;
		time_t oexp;
		int was;

		if (i && moat_prefix_cmp(a, &touched.v[i - 1].pfx) == 0)
			continue;
		ntouched++;
		if (fleet_now(d, s, c, a, now, &cur, &keep, &exp, &expired, &own) < 0)
			goto out;
		was = moat_fleet_view_get(s->fv, a, &oexp);
		/* before: the zone now, less the delta's adds, plus its deletes */
		old.n = 0;
		if (was) {
			span(add, a, &a0, &a1);
			span(del, a, &d0, &d1);
			for (size_t k = 0; k < cur.n; k++)
				if (!has_code(add->v + a0, a1 - a0, cur.v[k].code) &&
				    moat_lvec_push(&old, &cur.v[k]) < 0)
					goto out;
			for (size_t k = d0; k < d1; k++) {
				struct moat_listing l = del->v[k];

				l.ttl = 0;
				if (!l.exclude && !has_code(old.v, old.n, l.code) &&
				    moat_lvec_push(&old, &l) < 0)
					goto out;
			}
		}
		for (size_t k = 0; k < old.n; k++)
			if ((!keep || !has_code(cur.v, cur.n, old.v[k].code)) &&
			    moat_lvec_push(&res->del, &old.v[k]) < 0)
				goto out;
		for (size_t k = 0; keep && k < cur.n; k++)
			if (!has_code(old.v, old.n, cur.v[k].code) &&
			    moat_lvec_push(&res->add, &cur.v[k]) < 0)
				goto out;
		if (!keep)
			moat_fleet_view_del(s->fv, a);
		else if (moat_fleet_view_set(s->fv, a, exp) < 0)
			goto out;
	}
	moat_lvec_sort(&res->add);
	moat_lvec_sort(&res->del);
	s->fleet_next = moat_fleet_view_next(s->fv);
	log_debug("zone=%s event=fleet-delta touched=%zu add=%zu del=%zu expired=%zu own=%zu "
		  "kept=%zu next_exp_in=%lld ms=%.3f", z->cfg.name, ntouched, res->add.n, res->del.n,
		  expired, own, moat_fleet_view_size(s->fv),
		  s->fleet_next ? (long long)(s->fleet_next - now) : -1LL, moat_clock_ms_f() - t0);
	if (!xr && !res->add.n && !res->del.n) {
		res->kind = SRC_UPTODATE; /* exp times moved on: nothing ends yet */
	} else {
		if (src_set_fleet(s, &res->set) < 0)
			goto out;
		res->kind = SRC_LOADED;
		res->full = 0;
	}
	r = 0;
out:
	if (r < 0) { /* the view may be half-updated: the next load filters whole */
		moat_fleet_view_free(s->fv);
		s->fv = NULL;
		moat_lvec_free(&res->add);
		moat_lvec_free(&res->del);
	}
	moat_zone_cursor_free(c);
	moat_lvec_free(&touched);
	moat_lvec_free(&cur);
	moat_lvec_free(&old);
	return r;
}

/* finish - a transfer ended (DONE or FAILED): its result */
static void finish(struct cd *d, struct cd_zone *z, struct zsrc *s, enum moat_xfr_status st,
		   struct src_result *res)
{
	struct moat_xfr_state xs;
	struct moat_xfr_result xr;

	unwatch(s);
	moat_xfr_get_state(s->x, moat_clock_ms(), &xs);
	z->soa_refresh = xs.refresh;
	z->soa_retry = xs.retry;
	z->soa_expire = xs.expire;
	if (st == MOAT_XFR_FAILED) {
		res_fail(res, xs.retry, "%s", xs.last_error[0] ? xs.last_error : "transfer failed");
		return;
	}
	z->load_undecodable = xs.undecodable;
	memset(&xr, 0, sizeof(xr));
	if (moat_xfr_take_result(s->x, &xr) < 0) {
		res_fail(res, -1, "transfer finished without a result");
		return;
	}
	if (z->cfg.fleet && xr.kind != MOAT_XFR_UPTODATE) {
		/* a fleet zone: what it serves depends on the clock too; an
		 * IXFR is a delta over the addresses it touches, an AXFR (or
		 * a view lost) the whole zone filtered */
		int fr = xr.kind == MOAT_XFR_DELTA && s->fv && z->have_data ?
			fleet_delta(d, z, s, &xr, res) : fleet_filter(d, z, s, res);

		moat_lvec_free(&xr.add);
		moat_lvec_free(&xr.del);
		moat_lvec_free(&xr.txt);
		if (fr < 0) {
			res_fail(res, xs.retry, "out of memory filtering the fleet zone");
			src_reset(d, z);
			return;
		}
		res->serial = xr.serial;
		res->next_in = xs.refresh;
		return;
	}
	moat_lvec_free(&xr.txt);
	switch (xr.kind) {
	case MOAT_XFR_FULL:
	case MOAT_XFR_DELTA:
		/* the zone after the transfer: a full load's data, a delta's
		 * sanity checks and base rewrites */
		if (src_set_tree(z, &res->set) < 0) {
			res_fail(res, xs.refresh, "out of memory walking the zone");
			moat_lvec_free(&xr.add);
			moat_lvec_free(&xr.del);
			src_reset(d, z); /* the library moved on to data we refused */
			return;
		}
		res->kind = SRC_LOADED;
		res->full = xr.kind == MOAT_XFR_FULL;
		res->add = xr.add; /* the result's now */
		res->del = xr.del;
		break;
	case MOAT_XFR_UPTODATE:
		res->kind = SRC_UPTODATE;
		moat_lvec_free(&xr.add);
		moat_lvec_free(&xr.del);
		break;
	}
	res->serial = xr.serial;
	res->next_in = xs.refresh;
}

/* rbl_load - read an rbldnsd file: its listings as the result */
static int rbl_load(struct cd_zone *z, struct src_result *res)
{
	struct zsrc *s = z->xfr;
	struct moat_rbl_stats st;
	struct moat_lvec lv = { 0 };
	int r;

	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->tag = (struct cd_tag){ TAG_ZONE, z, -1 };
		z->xfr = s;
	}
	if (!s->rbl) {
		struct moat_rbl_cfg c = {
			.type = moat_rbl_type_parse(z->cfg.format), .path = z->cfg.file,
			.source = z->id,
		};

		s->rbl = moat_rbl_file_new(&c);
		if (!s->rbl) {
			res_fail(res, -1, "out of memory");
			return -ENOMEM;
		}
	}
	memset(&st, 0, sizeof(st));
	z->last_attempt = time(NULL);
	z->load_started_ms = (double)moat_clock_ms();
	log_mem(z->cfg.name, "before-read");
	r = moat_rbl_file_load(s->rbl, &lv, &st);
	log_mem(z->cfg.name, "parsed");
	if (r == -EAGAIN) {
		z->next_refresh = time(NULL) + 1; /* being written: next second */
		moat_lvec_free(&lv);
		return 0;
	}
	if (r < 0) {
		res_fail(res, 5, "%s: %s", z->cfg.file, strerror(-r));
		moat_lvec_free(&lv);
		return r;
	}
	for (size_t i = 0; i < st.errors && i < MOAT_RBL_MAX_ERRS; i++)
		log_warn("zone=%s file=%s line=%u error=\"%s\" (line skipped)", z->cfg.name,
			 z->cfg.file, st.err[i].line, st.err[i].msg);
	/* the file's mtime stands in for a serial */
	struct stat sb;
	uint32_t serial = stat(z->cfg.file, &sb) == 0 ? (uint32_t)sb.st_mtime : 0;

	z->load_undecodable = st.errors; /* lines that did not parse */
	/* the parsed file is an array anyway: walked as the load's set,
	 * freed once loaded (the table and the base file hold it then) */
	for (size_t i = 0; i < lv.n; i++) {
		lv.v[i].source = z->id;
		lv.v[i].ttl = 0;
	}
	moat_lvec_sort(&lv);
	if (src_set_array(lv.v, lv.n, true, &res->set) < 0) {
		res_fail(res, 1, "out of memory");
		moat_lvec_free(&lv);
		return 0;
	}
	res->kind = SRC_LOADED;
	res->full = 1;
	res->serial = serial;
	res->next_in = 1; /* files are polled every second */
	return 0;
}

/* src_start - begin a load of z */
int src_start(struct cd *d, struct cd_zone *z, int forced, struct src_result *res)
{
	const char *why;

	res_init(res);
	if (z->cfg.type == CFG_SRC_RBLDNSD)
		return rbl_load(z, res);
	if (z->cfg.type != CFG_SRC_AXFR) {
		res_fail(res, -1, "source type %s is not supported by this build",
			 cfg_src_type_name(z->cfg.type));
		return -ENOTSUP;
	}
	struct zsrc *s = zsrc_get(z, &why);

	if (!s) {
		if (why)
			res_fail(res, 60, "transfer set-up: %s", why);
		else
			res->next_in = 60;
		return -EINVAL;
	}
	int64_t now = moat_clock_ms();

	if (z->cfg.fleet && s->fleet_next && time(NULL) >= s->fleet_next && !forced &&
	    !z->refresh_full && moat_xfr_next_ms(s->x, now) > now && z->have_data) {
		/* only the clock moved: the addresses whose exp came, judged
		 * again (a view lost: the data we hold, filtered whole) */
		z->last_attempt = time(NULL);
		if ((s->fv ? fleet_delta(d, z, s, NULL, res) : fleet_filter(d, z, s, res)) < 0)
			res_fail(res, 1, "out of memory filtering the fleet zone");
		else
			res->serial = z->serial;
		return 0;
	}
	if (z->refresh_full) {
		moat_xfr_force_axfr(s->x); /* serial went backwards, or to be sure */
		z->refresh_full = 0;
	}
	if (forced)
		moat_xfr_notify(s->x, now);
	int r = moat_xfr_start(s->x, now);

	z->last_attempt = time(NULL);
	if (r == -EALREADY)
		return 0;
	if (r < 0) {
		finish(d, z, s, MOAT_XFR_FAILED, res);
		return r;
	}
	z->busy = 1;
	z->load_started_ms = (double)now;
	log_debug("zone=%s event=transfer-start", z->cfg.name);
	rewatch(s);
	return 0;
}

/* src_io - advance a running transfer */
void src_io(struct cd *d, struct cd_zone *z, uint32_t events, struct src_result *res)
{
	struct zsrc *s = z->xfr;

	res_init(res);
	if (!s || !s->x || !z->busy)
		return;
	unwatch(s); /* the library may close the socket in moat_xfr_io */
	enum moat_xfr_status st = moat_xfr_io(s->x, events, moat_clock_ms());

	if (st == MOAT_XFR_AGAIN) {
		rewatch(s);
		return;
	}
	z->busy = 0;
	finish(d, z, s, st, res);
}

/* src_timed_out - has a running transfer's peer gone silent too long? */
bool src_timed_out(const struct cd_zone *z)
{
	const struct zsrc *s = z->xfr;

	return z->busy && s && s->x && moat_xfr_deadline_ms(s->x) <= moat_clock_ms();
}

/* tree_next, tree_rewind, tree_range - struct src_set of a zone cursor;
 * listings normalised like every set zonemgr compares (ttl 0: zone TTLs
 * are informational, the refresh replaces data) */
static int tree_next(void *ctx, struct moat_lvec *out, size_t max)
{
	size_t from = out->n;
	int r = moat_zone_cursor_next(ctx, out, max);

	for (size_t i = from; i < out->n; i++)
		out->v[i].ttl = 0;
	return r;
}

static void tree_rewind(void *ctx)
{
	moat_zone_cursor_rewind(ctx);
}

static int tree_range(void *ctx, const struct moat_prefix *r, bool exact, struct moat_lvec *out)
{
	return moat_zone_cursor_range(ctx, r, exact, out);
}

/* src_set_tree - a walk over the transfer's current zone */
int src_set_tree(const struct cd_zone *z, struct src_set *s)
{
	const struct zsrc *zs = z->xfr;
	const struct moat_zone *t = zs && zs->x ? moat_xfr_tree(zs->x) : NULL;

	memset(s, 0, sizeof(*s));
	if (!t)
		return -ENOENT;
	if (!(s->ctx = moat_zone_cursor_new(t)))
		return -ENOMEM;
	s->next = tree_next;
	s->rewind = tree_rewind;
	s->range = tree_range;
	s->tree = 1;
	return 0;
}

/* An array as a set (next: zstate_array_next). */
struct arrset {
	struct zstate_array a;    /* first: the zstate_next_fn context */
	struct moat_listing *own; /* freed by the set */
};

/* arr_rewind, arr_release - struct src_set of an array */
static void arr_rewind(void *ctx)
{
	((struct arrset *)ctx)->a.pos = 0;
}

static void arr_release(void *ctx)
{
	struct arrset *s = ctx;

	free(s->own);
	s->own = NULL;
	s->a.l = NULL;
	s->a.n = s->a.pos = 0;
}

/* src_set_array - a walk over l[0..n) */
int src_set_array(struct moat_listing *l, size_t n, bool owned, struct src_set *s)
{
	struct arrset *a = calloc(1, sizeof(*a));

	memset(s, 0, sizeof(*s));
	if (!a)
		return -ENOMEM;
	a->a.l = l;
	a->a.n = n;
	a->own = owned ? l : NULL;
	s->ctx = a;
	s->next = zstate_array_next;
	s->rewind = arr_rewind;
	s->release = owned ? arr_release : NULL;
	return 0;
}

/* src_set_close - release the walk (and an owned array) */
void src_set_close(struct src_set *s)
{
	if (s->tree == 2) { /* src_set_fleet */
		moat_zone_cursor_free(((struct fset *)s->ctx)->c);
		free(s->ctx);
	} else if (s->tree) {
		moat_zone_cursor_free(s->ctx);
	} else if (s->ctx) {
		arr_release(s->ctx);
		free(s->ctx);
	}
	memset(s, 0, sizeof(*s));
}

/* sanity_cfg - the zone's check settings; false when sanity = no */
static bool sanity_cfg(const struct cd_zone *z, struct moat_sanity_cfg *c)
{
	memset(c, 0, sizeof(*c));
	/* rbldnsd files rarely carry the RFC 5782 test points: only the
	 * "lists the world" checks apply to them */
	c->skip_testpoints = z->cfg.type == CFG_SRC_RBLDNSD;
	c->min_v4_plen = z->cfg.max_prefix_v4 ? z->cfg.max_prefix_v4 : 1;
	c->min_v6_plen = z->cfg.max_prefix_v6 ? z->cfg.max_prefix_v6 : 1;
	return z->cfg.sanity;
}

/* src_sanity_full - stream set through the checks (and count it) */
int src_sanity_full(const struct cd_zone *z, const struct src_set *set, size_t *n,
		    struct moat_sanity_result *res, char *why, size_t whysz)
{
	struct moat_sanity_cfg c;
	bool on = sanity_cfg(z, &c);
	struct moat_sanity_stream *st = on ? moat_sanity_stream_new(&c) : NULL;
	struct moat_lvec chunk = { 0 };
	int rc = 0;

	memset(res, 0, sizeof(*res));
	*n = 0;
	if (on && !st) {
		snprintf(why, whysz, "sanity check out of memory");
		return -1;
	}
	set->rewind(set->ctx);
	for (;;) {
		chunk.n = 0;
		if ((rc = set->next(set->ctx, &chunk, 1 << 16)) < 0 || !chunk.n)
			break;
		*n += chunk.n;
		if (st && (rc = moat_sanity_stream_feed(st, chunk.v, chunk.n)) < 0)
			break;
	}
	moat_lvec_free(&chunk);
	if (st && rc == 0)
		moat_sanity_stream_finish(st, res);
	moat_sanity_stream_free(st);
	if (rc < 0) {
		snprintf(why, whysz, "sanity check: %s", rc == -EINVAL ? "set out of order" :
			 "out of memory");
		return -1;
	}
	if (*n > z->cfg.max_entries) {
		snprintf(why, whysz, "%zu entries, more than max_entries %llu", *n,
			 (unsigned long long)z->cfg.max_entries);
		return -1;
	}
	if (!on)
		return 0;
	if (res->quarantine) {
		snprintf(why, whysz, "%s", res->reason);
		return -1;
	}
	return 1;
}

/* src_sanity - quarantine checks of an IXFR delta before it is
 * published.  With the last check's result of the zone's set (z->san)
 * the checks run on the delta, querying the zone after it (set: the
 * tree) where they need more (moat_sanity_check_delta_set); otherwise the
 * whole set after the delta is streamed through the full checks. */
int src_sanity(const struct cd_zone *z, const struct src_set *set,
	       const struct src_delta *dl, struct moat_sanity_result *res, char *why,
	       size_t whysz)
{
	struct moat_sanity_cfg c;
	size_t total = z->n + dl->nadd >= dl->ndel ? z->n + dl->nadd - dl->ndel : 0;
	int rc;

	if (!z->san_known || !set->range) {
		size_t n;

		return src_sanity_full(z, set, &n, res, why, whysz);
	}
	memset(res, 0, sizeof(*res));
	if (total > z->cfg.max_entries) {
		snprintf(why, whysz, "%zu entries, more than max_entries %llu", total,
			 (unsigned long long)z->cfg.max_entries);
		return -1;
	}
	if (!sanity_cfg(z, &c))
		return 0;
	struct moat_sanity_set q = { set->range, set->ctx };

	rc = moat_sanity_check_delta_set(&c, &q, &z->san, dl->add, dl->nadd, dl->del, dl->ndel,
					 res);
	if (rc < 0) {
		snprintf(why, whysz, "sanity check out of memory");
		return -1;
	}
	if (res->quarantine) {
		snprintf(why, whysz, "%s", res->reason);
		return -1;
	}
	return 1;
}

/* notify_answer - check one NOTIFY, build the reply into reply/rl; nt
 * gets the zone it asks to refresh (the caller starts that) */
static void notify_answer(struct cd *d, const uint8_t *msg, size_t n, const struct sockaddr *from,
			  uint8_t *reply, size_t replycap, size_t *rl, struct src_notice *nt)
{
	struct moat_xfr_zone *xz[CFG_MAX_ZONES];
	struct cd_zone *map[CFG_MAX_ZONES];
	size_t nx = 0, idx = 0;

	*rl = 0;
	for (int i = 0; i < d->nzones; i++) {
		struct cd_zone *z = d->zones[i];
		const char *why;

		if (z->cfg.type != CFG_SRC_AXFR)
			continue;
		struct zsrc *s = zsrc_get(z, &why);

		if (s) {
			xz[nx] = s->x;
			map[nx++] = z;
		} else if (why) {
			nt->failed[nt->nfailed].zone = z;
			nt->failed[nt->nfailed++].why = why;
		}
	}
	enum moat_notify_res r = moat_notify_handle(xz, nx, msg, n, from, reply, replycap, rl, &idx);

	if (r == MOAT_NOTIFY_DROP)
		*rl = 0;
	d->notifies++;
	if (r != MOAT_NOTIFY_ACCEPT || idx >= nx) {
		log_info("event=notify result=%s", r == MOAT_NOTIFY_REFUSE ? "refused" : "dropped");
		return;
	}
	struct cd_zone *z = map[idx];

	log_info("zone=%s event=notify result=accepted", z->cfg.name);
	if (!z->notify_ms)
		z->notify_ms = (double)moat_clock_ms();
	moat_xfr_notify(xz[idx], moat_clock_ms());
	nt->zone = z;
}

/* ntcp_free - close a TCP NOTIFY connection */
static void ntcp_free(struct ntcp *c)
{
	for (struct ntcp **pp = &ntcps; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	cd_unwatch(&c->tag);
	moat_dnstcp_free(c->c); /* closes the fd */
	free(c);
	nntcp--;
}

/* notify_peer_ok - is `from` a primary of a configured transfer zone
 * (the only hosts whose NOTIFY can be accepted: moat_notify_handle checks
 * the zone and TSIG per message) */
static int notify_peer_ok(const struct cd *d, const struct sockaddr_storage *from)
{
	for (int i = 0; i < d->nzones; i++) {
		const struct cd_zone *z = d->zones[i];

		if (z->cfg.type != CFG_SRC_AXFR)
			continue;
		for (int k = 0; k < z->cfg.nprimary; k++)
			if (moat_addr_eq((const struct sockaddr *)from, &z->cfg.primary[k].ss))
				return 1;
	}
	return 0;
}

/* ntcp_accept - take one connection from a listener, within the bounds;
 * -1 when there was none to take */
static int ntcp_accept(struct cd *d, int lfd)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	int fd = accept4(lfd, (struct sockaddr *)&from, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ntcp *c;

	if (fd < 0)
		return -1;
	if (!notify_peer_ok(d, &from)) {
		d->notify_tcp_refused++;
		log_debug("event=notify transport=tcp result=refused (not a primary of any zone)");
		close(fd);
		return 0;
	}
	if (nntcp >= NTCP_MAX) {
		struct ntcp *old = ntcps;

		while (old && old->next)
			old = old->next; /* the list is newest first */
		d->notify_tcp_evicted++;
		log_debug("event=notify transport=tcp connections=%u (at the cap: oldest closed)",
			  nntcp);
		if (old)
			ntcp_free(old);
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->c = moat_dnstcp_new(fd))) {
		free(c);
		close(fd);
		return 0;
	}
	c->tag = (struct cd_tag){ TAG_NOTIFY_TCP, c, fd };
	c->last = time(NULL);
	if (cd_watch(&c->tag, EPOLLIN) < 0) {
		moat_dnstcp_free(c->c);
		free(c);
		return 0;
	}
	c->next = ntcps;
	ntcps = c;
	nntcp++;
	return 0;
}

/* notify_tcp - the next message on a TCP NOTIFY connection; 1 when more
 * may wait, 0 when not (the connection may be closed then) */
static int notify_tcp(struct cd *d, struct ntcp *c, struct src_notice *nt)
{
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	uint8_t reply[4096];
	size_t ml, rl = 0;
	const uint8_t *msg;
	int r;

	if (getpeername(c->tag.fd, (struct sockaddr *)&from, &fl) < 0) {
		ntcp_free(c);
		return 0;
	}
	r = moat_dnstcp_read(c->c, &msg, &ml);
	if (r == 1) {
		c->last = time(NULL);
		notify_answer(d, msg, ml, (struct sockaddr *)&from, reply, sizeof(reply), &rl, nt);
		if (!rl || moat_dnstcp_reply(c->c, reply, rl) == 0)
			return 1;
		r = -EPIPE;
	}
	if (r < 0)
		ntcp_free(c); /* EOF, a runt message, or a peer that does not read */
	return 0;
}

/* notify_udp - the next NOTIFY on a UDP socket (at most 64 a wake-up:
 * nt->nread counts them); 1 when more may wait */
static int notify_udp(struct cd *d, int fd, struct src_notice *nt)
{
	uint8_t msg[65535], reply[4096];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, msg, sizeof(msg), 0, (struct sockaddr *)&from, &fl);
	size_t rl = 0;

	if (n < 0)
		return 0;
	notify_answer(d, msg, (size_t)n, (struct sockaddr *)&from, reply, sizeof(reply), &rl, nt);
	if (rl)
		sendto(fd, reply, rl, 0, (struct sockaddr *)&from, fl);
	return ++nt->nread < 64;
}

/* src_notify_next - answer the next NOTIFY on t's socket (a listener
 * accepts connections instead) */
int src_notify_next(struct cd *d, struct cd_tag *t, struct src_notice *nt)
{
	nt->zone = NULL;
	nt->nfailed = 0;
	if (t->kind == TAG_NOTIFY)
		return notify_udp(d, t->fd, nt);
	if (t->ptr == NULL) { /* a TCP listener */
		/* a burst, not an unbounded loop: the rest on the next event */
		for (int k = 0; k < 16 && ntcp_accept(d, t->fd) == 0; k++)
			;
		return 0;
	}
	return notify_tcp(d, t->ptr, nt);
}

/* src_notify_tcp_open - TCP NOTIFY connections open now (status) */
unsigned src_notify_tcp_open(void)
{
	return nntcp;
}

/* src_notify_open - bind the NOTIFY listeners */
int src_notify_open(struct cd *d, char *err, size_t errsz)
{
	for (int i = 0; i < d->cfg.nnotify; i++) {
		const struct cfg_addr *a = &d->cfg.notify_listen[i];
		int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;

		if (fd < 0) {
			snprintf(err, errsz, "notify_listen %s: %s", a->text, strerror(errno));
			return -1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
			snprintf(err, errsz, "notify_listen %s: %s", a->text, strerror(errno));
			close(fd);
			return -1;
		}
		notify_tags[i] = (struct cd_tag){ TAG_NOTIFY, NULL, fd };
		d->notify_fd[i] = fd;
		d->nnotify = i + 1;
		if (cd_watch(&notify_tags[i], EPOLLIN) < 0) {
			snprintf(err, errsz, "epoll: %s", strerror(errno));
			return -1;
		}
		/* and TCP on the same address: Knot sends NOTIFY over TCP */
		fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 16) < 0) {
			snprintf(err, errsz, "notify_listen %s (tcp): %s", a->text, strerror(errno));
			close(fd);
			return -1;
		}
		notify_ltags[i] = (struct cd_tag){ TAG_NOTIFY_TCP, NULL, fd };
		cd_watch(&notify_ltags[i], EPOLLIN);
	}
	return 0;
}

/* src_notify_tick - close TCP NOTIFY connections idle for NTCP_IDLE s */
void src_notify_tick(time_t now)
{
	for (struct ntcp *c = ntcps, *next; c; c = next) {
		next = c->next;
		if (now - c->last > NTCP_IDLE)
			ntcp_free(c);
	}
}

/* src_notify_close - close the NOTIFY listeners */
void src_notify_close(struct cd *d)
{
	for (int i = 0; i < d->nnotify; i++) {
		cd_unwatch(&notify_tags[i]);
		close(d->notify_fd[i]);
		if (notify_ltags[i].kind) {
			cd_unwatch(&notify_ltags[i]);
			close(notify_ltags[i].fd);
		}
	}
	while (ntcps)
		ntcp_free(ntcps);
	d->nnotify = 0;
}
