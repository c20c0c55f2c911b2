/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sanity.c - post-load checks (sanity.h).  The listed share of the address
 * space is computed exactly from the nested prefixes (most specific wins,
 * like the verdict table) rather than by sampling, so a 0/0 wildcard and a
 * thousand /9s are caught alike.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* share - exact listed share of one family's space (bits = 32 or 128) */
static int share(const struct moat_listing *l, size_t n, uint8_t fam, unsigned bits,
		 double *out)
{
	struct item *it = malloc((n ? n : 1) * sizeof(*it));
	struct frame st[130];
	size_t m = 0, sp = 0;
	double total = 0;

	if (!it)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (l[i].pfx.family != fam)
			continue;
		memset(&it[m], 0, sizeof(it[m]));
		memcpy(it[m].addr, l[i].pfx.addr, 16);
		it[m].plen = l[i].pfx.plen;
		it[m].excl = l[i].exclude;
		m++;
	}
	/* a zone's set arrives sorted (family, address, plen: the same
	 * order): after an IXFR this check runs on the whole merged set, so
	 * skip the O(n log n) sort when it is not needed */
	size_t k = 1;

	while (k < m && item_cmp(&it[k - 1], &it[k]) <= 0)
		k++;
	if (k < m)
		qsort(it, m, sizeof(*it), item_cmp);
	/* sizes as fractions of the whole space: 2^-plen */
	for (size_t i = 0; i <= m; i++) {
		/* merge duplicates of one prefix: an exclude wins */
		if (i < m && sp > 0 && st[sp - 1].it.plen == it[i].plen &&
		    !memcmp(st[sp - 1].it.addr, it[i].addr, 16)) {
			st[sp - 1].it.excl |= it[i].excl;
			continue;
		}
		while (sp > 0 && (i == m || !contains(&st[sp - 1].it, &it[i]))) {
			struct frame *f = &st[--sp];
			double size = ldexp(1.0, -(int)f->it.plen);
			double cov = (f->it.excl ? 0 : size - f->childsize) + f->childcov;
			if (sp > 0) {
				st[sp - 1].childsize += size;
				st[sp - 1].childcov += cov;
			} else {
				total += cov;
			}
		}
		if (i == m)
			break;
		st[sp].it = it[i];
		st[sp].childsize = st[sp].childcov = 0;
		sp++;
	}
	(void)bits;
	free(it);
	*out = total;
	return 0;
}

/* moat_sanity_check - test points, shortest prefix, listed share */
int moat_sanity_check(const struct moat_sanity_cfg *cfgin, const struct moat_listing *l,
		      size_t n, struct moat_sanity_result *res)
{
	struct moat_sanity_cfg cfg = *cfgin;
	struct moat_prefix tp;

	if (cfg.max_v4_share <= 0)
		cfg.max_v4_share = 0.25;
	if (cfg.max_v6_share <= 0)
		cfg.max_v6_share = 0.001;
	if (!cfg.min_v4_plen)
		cfg.min_v4_plen = 8;
	if (!cfg.min_v6_plen)
		cfg.min_v6_plen = 16;
	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		if (l[i].exclude)
			continue;
		bool v4 = l[i].pfx.family == MOAT_AF_INET;
		unsigned min = v4 ? cfg.min_v4_plen : cfg.min_v6_plen;
		if (v4)
			res->v4++;
		else
			res->v6++;
		if (l[i].pfx.plen < min && !res->quarantine) {
			char p[80];
			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "lists the world: %s is shorter than /%u",
				 moat_prefix_str(&l[i].pfx, p, sizeof(p)), min);
		}
	}
	if (share(l, n, MOAT_AF_INET, 32, &res->v4_share) ||
	    share(l, n, MOAT_AF_INET6, 128, &res->v6_share))
		return -ENOMEM;
	if (res->quarantine)
		return 0;
	for (int v6 = 0; v6 < 2; v6++) {
		double share = v6 ? res->v6_share : res->v4_share;
		double max = v6 ? cfg.max_v6_share : cfg.max_v4_share;
		if (share > max) {
			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "lists the world: %.3g%% of the IPv%d space (limit %.3g%%)",
				 share * 100, v6 ? 6 : 4, max * 100);
			return 0;
		}
	}
	if (cfg.skip_testpoints)
		return 0;
	static const struct { const char *a; bool want; bool v6; } tps[] = {
		{ "127.0.0.2", true, false }, { "127.0.0.1", false, false },
		{ "::ffff:7f00:2", true, true }, { "::ffff:7f00:1", false, true },
	};
	for (size_t i = 0; i < sizeof(tps) / sizeof(tps[0]); i++) {
		if (tps[i].v6 && res->v6 == 0)
			continue; /* an IPv4-only list has no IPv6 test point */
		moat_prefix_parse(tps[i].a, &tp);
		if (moat_sanity_verdict(l, n, &tp, NULL) != tps[i].want) {
			res->quarantine = true;
			snprintf(res->reason, sizeof(res->reason),
				 "RFC 5782 test point %s is %s", tps[i].a,
				 tps[i].want ? "not listed" : "listed");
			return 0;
		}
	}
	return 0;
}
