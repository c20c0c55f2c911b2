/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sanity.c - post-load checks (sanity.h).  The listed share of the address
 * space is computed exactly from the nested prefixes (most specific wins,
 * like the verdict table) rather than by sampling, so a 0/0 wildcard and a
 * thousand /9s are caught alike.  After an IXFR the same checks run on the
 * zone's merged set incrementally (moat_sanity_check_delta_set): only the
 * regions the delta touched are recomputed, so a 1,000-change IXFR on a
 * 1M-entry zone costs milliseconds, not a pass over the zone.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lvec.h"
#include "owner.h"
#include "sanity.h"

/* moat_sanity_verdict - most specific match, linear scan */
bool moat_sanity_verdict(const struct moat_listing *l, size_t n,
			 const struct moat_prefix *addr, uint32_t *code)
{
	int best = -1;
	bool excl = false, listed = false;

	for (size_t i = 0; i < n; i++) {
		if (!moat_prefix_contains(&l[i].pfx, addr) || l[i].pfx.plen < best)
			continue;
		if (l[i].pfx.plen > best) {
			best = l[i].pfx.plen;
			excl = listed = false;
		}
		if (l[i].exclude) {
			excl = true;
		} else if (!listed) {
			listed = true;
			if (code)
				*code = l[i].code;
		}
	}
	return listed && !excl;
}

struct item {
	uint8_t addr[16];
	uint8_t plen;
	uint8_t excl;
};

/* item_cmp - address, then shorter prefix first (so parents precede) */
static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);

	if (c)
		return c;
	return (int)x->plen - (int)y->plen;
}

/* contains - does prefix p contain prefix q */
static bool contains(const struct item *p, const struct item *q)
{
	struct moat_prefix a = { .family = MOAT_AF_INET6, .plen = p->plen };
	struct moat_prefix b = { .family = MOAT_AF_INET6, .plen = q->plen };

	memcpy(a.addr, p->addr, 16);
	memcpy(b.addr, q->addr, 16);
	return moat_prefix_contains(&a, &b);
}

struct frame {
	struct item it;
	double childsize, childcov;
};

/* The exact listed share of one family's space, swept over its prefixes
 * in item_cmp order (parents first): one item at a time, so a sorted
 * stream needs no copy of the set. */
struct sweep {
	struct frame st[130];
	size_t sp;
	double total;
};

/* sweep_pop - close the innermost open prefix */
static void sweep_pop(struct sweep *w)
{
	struct frame *f = &w->st[--w->sp];
	double size = ldexp(1.0, -(int)f->it.plen);
	double cov = (f->it.excl ? 0 : size - f->childsize) + f->childcov;

	if (w->sp > 0) {
		w->st[w->sp - 1].childsize += size;
		w->st[w->sp - 1].childcov += cov;
	} else {
		w->total += cov;
	}
}

/* sweep_item - the next prefix (sizes as fractions of the space: 2^-plen) */
static void sweep_item(struct sweep *w, const struct item *it)
{
	/* merge duplicates of one prefix: an exclude wins */
	if (w->sp > 0 && w->st[w->sp - 1].it.plen == it->plen &&
	    !memcmp(w->st[w->sp - 1].it.addr, it->addr, 16)) {
		w->st[w->sp - 1].it.excl |= it->excl;
		return;
	}
	while (w->sp > 0 && !contains(&w->st[w->sp - 1].it, it))
		sweep_pop(w);
	w->st[w->sp].it = *it;
	w->st[w->sp].childsize = w->st[w->sp].childcov = 0;
	w->sp++;
}

/* sweep_end - the share of everything swept */
static double sweep_end(struct sweep *w)
{
	while (w->sp > 0)
		sweep_pop(w);
	return w->total;
}

/* to_item - a listing as a sweep item */
static void to_item(const struct moat_listing *l, struct item *it)
{
	memset(it, 0, sizeof(*it));
	memcpy(it->addr, l->pfx.addr, 16);
	it->plen = l->pfx.plen;
	it->excl = l->exclude;
}

/* share - exact listed share of one family's space (bits = 32 or 128) */
static int share(const struct moat_listing *l, size_t n, uint8_t fam, unsigned bits,
		 double *out)
{
	struct item *it = malloc((n ? n : 1) * sizeof(*it));
	struct sweep w = { .sp = 0 };
	size_t m = 0;

	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (l[i].pfx.family == fam)
			to_item(&l[i], &it[m++]);
	/* a zone's set arrives sorted (family, address, plen: the same
	 * order): skip the O(n log n) sort when it is not needed */
	size_t k = 1;

	while (k < m && item_cmp(&it[k - 1], &it[k]) <= 0)
		k++;
	if (k < m)
		qsort(it, m, sizeof(*it), item_cmp);
	for (size_t i = 0; i < m; i++)
		sweep_item(&w, &it[i]);
	(void)bits;
	free(it);
	*out = sweep_end(&w);
	return 0;
}

/* verdict_fn - the verdict of a set for one address (full check: a linear
 * scan; delta check: binary searches on the parts of the new set) */
typedef bool (*verdict_fn)(const void *set, const struct moat_prefix *addr);

struct plain {
	const struct moat_listing *l;
	size_t n;
};

/* plain_verdict - verdict_fn of a plain array */
static bool plain_verdict(const void *set, const struct moat_prefix *addr)
{
	const struct plain *p = set;

	return moat_sanity_verdict(p->l, p->n, addr, NULL);
}

/* cfg_defaults - fields left 0 take their defaults */
static void cfg_defaults(struct moat_sanity_cfg *cfg)
{
	if (cfg->max_v4_share <= 0)
		cfg->max_v4_share = 0.25;
	if (cfg->max_v6_share <= 0)
		cfg->max_v6_share = 0.001;
	if (!cfg->min_v4_plen)
		cfg->min_v4_plen = 8;
	if (!cfg->min_v6_plen)
		cfg->min_v6_plen = 16;
}

/* final_checks - after the shortest-prefix check: the shares in res
 * against their limits, then the RFC 5782 test points */
static void final_checks(const struct moat_sanity_cfg *cfg, verdict_fn verdict, const void *set,
			 struct moat_sanity_result *res)
{
	static const struct { const char *a; bool want; bool v6; } tps[] = {
		{ "127.0.0.2", true, false }, { "127.0.0.1", false, false },
		{ "::ffff:7f00:2", true, true }, { "::ffff:7f00:1", false, true },
	};
	struct moat_prefix tp;

	if (res->quarantine)
		return;
	for (int v6 = 0; v6 < 2; v6++) {
		double share = v6 ? res->v6_share : res->v4_share;
		double max = v6 ? cfg->max_v6_share : cfg->max_v4_share;

		if (share > max) {
			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "lists the world: %.3g%% of the IPv%d space (limit %.3g%%)",
				 share * 100, v6 ? 6 : 4, max * 100);
			return;
		}
	}
	if (cfg->skip_testpoints)
		return;
	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		if (tps[i].v6 && res->v6 == 0)
			continue; /* an IPv4-only list has no IPv6 test point */
		moat_prefix_parse(tps[i].a, &tp);
		if (verdict(set, &tp) != tps[i].want) {
			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "RFC 5782 test point %s is %s", tps[i].a,
				 tps[i].want ? "not listed" : "listed");
			return;
		}
	}
}

/* count_listing - one listing's part of the result: its prefix length,
 * the counts, and the shortest-prefix check */
static void count_listing(const struct moat_sanity_cfg *cfg, const struct moat_listing *l,
			  struct moat_sanity_result *res)
{
	bool v4 = l->pfx.family == MOAT_AF_INET;
	unsigned min = v4 ? cfg->min_v4_plen : cfg->min_v6_plen;

	res->plens[!v4][l->pfx.plen / 64] |= 1ull << (l->pfx.plen % 64);
	if (l->exclude)
		return;
	if (v4)
		res->v4++;
	else
		res->v6++;
	if (l->pfx.plen < min && !res->quarantine) {
		char p[80];

		res->quarantine = true;
		snprintf(res->reason, sizeof(res->reason), "lists the world: %s is shorter than /%u",
			 moat_prefix_str(&l->pfx, p, sizeof(p)), min);
	}
}

/* moat_sanity_check - test points, shortest prefix, listed share */
int moat_sanity_check(const struct moat_sanity_cfg *cfgin, const struct moat_listing *l,
		      size_t n, struct moat_sanity_result *res)
{
	struct moat_sanity_cfg cfg = *cfgin;

	cfg_defaults(&cfg);
	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < n; i++)
		count_listing(&cfg, &l[i], res);
	if (share(l, n, MOAT_AF_INET, 32, &res->v4_share) ||
	    share(l, n, MOAT_AF_INET6, 128, &res->v6_share))
		return -ENOMEM;
	struct plain set = { l, n };

	final_checks(&cfg, plain_verdict, &set, res);
	return 0;
}

/* The full checks over a sorted stream (sanity.h): counts and prefix
 * lengths per listing, the share swept as it comes, and the test points'
 * verdicts tracked like moat_sanity_verdict's scan. */
static const char *const stream_tp[4] = { "127.0.0.2", "127.0.0.1", "::ffff:7f00:2",
					  "::ffff:7f00:1" };

struct moat_sanity_stream {
	struct moat_sanity_cfg cfg;
	struct moat_sanity_result res;
	struct sweep w[2];               /* IPv4, IPv6 */
	struct moat_prefix tp[4];
	int best[4];
	bool listed[4], excl[4];
	struct moat_listing last;
	bool have_last;
};

/* moat_sanity_stream_new - checks of cfg (0 fields: defaults) over a
 * stream to come; NULL: ENOMEM */
struct moat_sanity_stream *moat_sanity_stream_new(const struct moat_sanity_cfg *cfg)
{
	struct moat_sanity_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->cfg = *cfg;
	cfg_defaults(&st->cfg);
	for (int i = 0; i < 4; i++) {
		moat_prefix_parse(stream_tp[i], &st->tp[i]);
		st->best[i] = -1;
	}
	return st;
}

/* moat_sanity_stream_feed - the next n listings (moat_listing_cmp order
 * across calls); -EINVAL when out of order */
int moat_sanity_stream_feed(struct moat_sanity_stream *st, const struct moat_listing *l,
			    size_t n)
{
	struct moat_sanity_result *res = &st->res;

	for (size_t i = 0; i < n; i++) {
		bool v4 = l[i].pfx.family == MOAT_AF_INET;
		struct item it;

		if (st->have_last && moat_listing_cmp(&st->last, &l[i]) > 0)
			return -EINVAL;
		st->last = l[i];
		st->have_last = true;
		count_listing(&st->cfg, &l[i], res);
		to_item(&l[i], &it);
		sweep_item(&st->w[!v4], &it);
		for (int k = 0; k < 4; k++) {
			if (!moat_prefix_contains(&l[i].pfx, &st->tp[k]) || l[i].pfx.plen < st->best[k])
				continue;
			if (l[i].pfx.plen > st->best[k]) {
				st->best[k] = l[i].pfx.plen;
				st->excl[k] = st->listed[k] = false;
			}
			*(l[i].exclude ? &st->excl[k] : &st->listed[k]) = true;
		}
	}
	return 0;
}

/* stream_verdict - verdict_fn of a finished stream (test points only) */
static bool stream_verdict(const void *set, const struct moat_prefix *addr)
{
	const struct moat_sanity_stream *st = set;

	for (int k = 0; k < 4; k++)
		if (!memcmp(&st->tp[k], addr, sizeof(*addr)))
			return st->listed[k] && !st->excl[k];
	return false;
}

/* moat_sanity_stream_finish - the result of everything fed */
void moat_sanity_stream_finish(struct moat_sanity_stream *st, struct moat_sanity_result *res)
{
	st->res.v4_share = sweep_end(&st->w[0]);
	st->res.v6_share = sweep_end(&st->w[1]);
	final_checks(&st->cfg, stream_verdict, st, &st->res);
	*res = st->res;
}

/* moat_sanity_stream_free - release */
void moat_sanity_stream_free(struct moat_sanity_stream *st)
{
	free(st);
}

#define pfx_cmp moat_prefix_cmp

/* lower_bound - first index of sorted l whose prefix is >= p */
static size_t lower_bound(const struct moat_listing *l, size_t n, const struct moat_prefix *p)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pfx_cmp(&l[mid].pfx, p) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* has_prefix - does sorted l hold exactly prefix p (any code) */
static bool has_prefix(const struct moat_listing *l, size_t n, const struct moat_prefix *p)
{
	size_t i = lower_bound(l, n, p);

	return i < n && pfx_cmp(&l[i].pfx, p) == 0;
}

/* masked - p cut to its first len bits */
static struct moat_prefix masked(const struct moat_prefix *p, unsigned len)
{
	struct moat_prefix m = { .family = p->family, .plen = (uint8_t)len };

	for (unsigned b = 0; b < len; b++)
		if (p->addr[b / 8] & (0x80 >> (b % 8)))
			m.addr[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	return m;
}

/* region_end - end of the run of sorted l, from i, inside prefix r */
static size_t region_end(const struct moat_listing *l, size_t n, size_t i,
			 const struct moat_prefix *r)
{
	size_t lo = i, hi = n;

	while (lo < hi) { /* inside r, then past it: find the first past */
		size_t mid = lo + (hi - lo) / 2;

		if (l[mid].pfx.family == r->family && moat_prefix_contains(r, &l[mid].pfx))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* An IXFR's sets without building either (that is a pass over the
 * whole zone): the new set as queries (sanity.h), the delta's adds and
 * deletes sorted by moat_listing_cmp; the old set is the new one minus
 * add plus del. */
struct view {
	const struct moat_listing *add, *del;
	size_t nadd, ndel;
	const struct moat_sanity_set *set;
};

static bool same_entry(const struct moat_listing *a, const struct moat_listing *b);

/* set_query - the new set's listings inside r (exact: of r itself) into
 * out (emptied first) */
static int set_query(const struct view *v, const struct moat_prefix *r, bool exact,
		     struct moat_lvec *out)
{
	out->n = 0;
	return v->set->range(v->set->ctx, r, exact, out);
}

/* in_sorted - does sorted a hold entry e (ttl and source aside) */
static bool in_sorted(const struct moat_listing *a, size_t n, const struct moat_listing *e)
{
	for (size_t k = lower_bound(a, n, &e->pfx); k < n && pfx_cmp(&a[k].pfx, &e->pfx) == 0;
	     k++)
		if (same_entry(&a[k], e))
			return true;
	return false;
}

/* same_entry - the same listing of a zone (ttl and source aside) */
static bool same_entry(const struct moat_listing *a, const struct moat_listing *b)
{
	return pfx_cmp(&a->pfx, &b->pfx) == 0 && a->exclude == b->exclude && a->code == b->code;
}

/* view_at - the new set's entries with prefix exactly m: any listed, any
 * excluded; false when there are none */
static bool view_at(const struct view *v, const struct moat_prefix *m, bool *listed, bool *excl)
{
	struct moat_lvec q = { 0 };
	bool found = false;

	*listed = *excl = false;
	if (set_query(v, m, true, &q) == 0)
		for (size_t i = 0; i < q.n; i++) {
			found = true;
			*(q.v[i].exclude ? excl : listed) = true;
		}
	moat_lvec_free(&q);
	return found;
}

/* view_verdict - verdict_fn of the new set: the most specific prefix
 * present that contains addr decides, an exclusion there wins */
static bool view_verdict(const void *set, const struct moat_prefix *addr)
{
	const struct view *v = set;
	bool listed, excl;

	for (int len = addr->plen; len >= 0; len--) {
		struct moat_prefix m = masked(addr, (unsigned)len);

		if (view_at(v, &m, &listed, &excl))
			return listed && !excl;
	}
	return false;
}

/* region_share - listed share of the space inside root r, of the old
 * set's entries there (after = false) or of the new set's (after =
 * true): the set's entries inside r are the new ones; the old ones are
 * those not added, plus what the delta deleted there */
static int region_share(const struct view *v, const struct moat_prefix *r, bool after,
			    double *out)
{
	struct moat_lvec q = { 0 };
	int rc = set_query(v, r, false, &q);

	if (rc == 0 && !after) {
		size_t m = 0, d0 = lower_bound(v->del, v->ndel, r);
		size_t d1 = region_end(v->del, v->ndel, d0, r);

		for (size_t i = 0; i < q.n; i++)
			if (!in_sorted(v->add, v->nadd, &q.v[i]))
				q.v[m++] = q.v[i];
		q.n = m;
		for (size_t i = d0; rc == 0 && i < d1; i++)
			rc = moat_lvec_push(&q, &v->del[i]);
	}
	if (rc == 0)
		rc = share(q.v, q.n, r->family, 0, out); /* share() sorts what is not sorted */
	moat_lvec_free(&q);
	return rc;
}

/* view_has - does the old or the new set hold prefix m */
static bool view_has(const struct view *v, const struct moat_prefix *m)
{
	bool listed, excl;

	return view_at(v, m, &listed, &excl) || has_prefix(v->del, v->ndel, m);
}

/* root_cmp - qsort order of struct moat_prefix */
static int root_cmp(const void *a, const void *b)
{
	return pfx_cmp(a, b);
}

/* sorted_copy - a copy of l[0..n) in moat_listing_cmp order (NULL: ENOMEM) */
static struct moat_listing *sorted_copy(const struct moat_listing *l, size_t n)
{
	struct moat_listing *c = malloc((n ? n : 1) * sizeof(*c));

	if (c && n) {
		memcpy(c, l, n * sizeof(*c));
		qsort(c, n, sizeof(*c), moat_listing_cmp);
	}
	return c;
}

/* moat_sanity_check_delta_set - the checks of moat_sanity_check on the
 * set an IXFR makes, incrementally: only the regions the delta touches */
int moat_sanity_check_delta_set(const struct moat_sanity_cfg *cfgin,
				const struct moat_sanity_set *set,
				const struct moat_sanity_result *was,
				const struct moat_listing *addin, size_t nadd,
				const struct moat_listing *delin, size_t ndel,
				struct moat_sanity_result *res)
{
	struct moat_sanity_cfg cfg = *cfgin;
	struct moat_listing *add = sorted_copy(addin, nadd), *del = sorted_copy(delin, ndel);
	struct moat_prefix *roots = malloc((nadd + ndel + 1) * sizeof(*roots));
	struct view v = { add, del, nadd, ndel, set };
	size_t nroots = 0;
	int rc = -ENOMEM;

	if (!add || !del || !roots)
		goto out;
	cfg_defaults(&cfg);
	memset(res, 0, sizeof(*res));
	memcpy(res->plens, was->plens, sizeof(res->plens));
	/* counts: cur's, plus what is added, minus what is deleted */
	long long cnt[2] = { (long long)was->v4, (long long)was->v6 };

	for (size_t i = 0; i < nadd + ndel; i++) {
		const struct moat_listing *l = i < nadd ? &add[i] : &del[i - nadd];
		int v6 = l->pfx.family != MOAT_AF_INET;

		if (i < nadd)
			res->plens[v6][l->pfx.plen / 64] |= 1ull << (l->pfx.plen % 64);
		if (!l->exclude)
			cnt[v6] += i < nadd ? 1 : -1;
	}
	res->v4 = cnt[0] > 0 ? (size_t)cnt[0] : 0;
	res->v6 = cnt[1] > 0 ? (size_t)cnt[1] : 0;
	/* only what the delta adds can be shorter than the minimum (cur
	 * passed this check) */
	for (size_t i = 0; i < nadd && !res->quarantine; i++) {
		bool v4 = add[i].pfx.family == MOAT_AF_INET;
		unsigned min = v4 ? cfg.min_v4_plen : cfg.min_v6_plen;

		if (!add[i].exclude && add[i].pfx.plen < min) {
			char p[80];

			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "lists the world: %s is shorter than /%u",
				 moat_prefix_str(&add[i].pfx, p, sizeof(p)), min);
		}
	}
	/* the coverage can change only below the outermost prefix (of cur or
	 * the added) above each changed one: those regions are disjoint, and
	 * each is recomputed before and after */
	for (size_t i = 0; i < nadd + ndel; i++) {
		const struct moat_prefix *p = i < nadd ? &add[i].pfx : &del[i - nadd].pfx;
		const uint64_t *have = res->plens[p->family != MOAT_AF_INET];

		for (unsigned len = 0; len <= p->plen; len++) {
			if (len < p->plen && !(have[len / 64] & (1ull << (len % 64))))
				continue;
			struct moat_prefix m = masked(p, len);

			if (len == p->plen || view_has(&v, &m)) {
				roots[nroots++] = m;
				break;
			}
		}
	}
	qsort(roots, nroots, sizeof(*roots), root_cmp);
	res->v4_share = was->v4_share;
	res->v6_share = was->v6_share;
	for (size_t i = 0; i < nroots; i++) {
		double before, after;

		if (i > 0 && pfx_cmp(&roots[i - 1], &roots[i]) == 0)
			continue;
		if (region_share(&v, &roots[i], false, &before) ||
		    region_share(&v, &roots[i], true, &after))
			goto out;
		if (roots[i].family == MOAT_AF_INET)
			res->v4_share += after - before;
		else
			res->v6_share += after - before;
	}
	/* sums of differences: clamp the rounding */
	res->v4_share = res->v4_share < 0 ? 0 : res->v4_share > 1 ? 1 : res->v4_share;
	res->v6_share = res->v6_share < 0 ? 0 : res->v6_share > 1 ? 1 : res->v6_share;
	final_checks(&cfg, view_verdict, &v, res);
	rc = 0;
out:
	free(add);
	free(del);
	free(roots);
	return rc;
}
