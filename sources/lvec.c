/* SPDX-License-Identifier: BSD-2-Clause */
/* lvec.c - growable listing arrays shared by the source modules. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lvec.h"

/* moat_lvec_push - append, doubling the array when full */
int moat_lvec_push(struct moat_lvec *lv, const struct moat_listing *l)
{
	if (lv->n == lv->cap) {
		size_t nc = lv->cap ? lv->cap * 2 : 64;
		struct moat_listing *nv = realloc(lv->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		lv->v = nv;
		lv->cap = nc;
	}
	lv->v[lv->n++] = *l;
	return 0;
}

/* moat_lvec_free - release */
void moat_lvec_free(struct moat_lvec *lv)
{
	free(lv->v);
	memset(lv, 0, sizeof(*lv));
}

/* moat_listing_cmp - family, address, plen, exclude, code, ttl, source */
int moat_listing_cmp(const void *a, const void *b)
{
	const struct moat_listing *x = a, *y = b;
	int c;

	if (x->pfx.family != y->pfx.family)
		return x->pfx.family < y->pfx.family ? -1 : 1;
	c = memcmp(x->pfx.addr, y->pfx.addr, 16);
	if (c)
		return c;
	if (x->pfx.plen != y->pfx.plen)
		return x->pfx.plen < y->pfx.plen ? -1 : 1;
	if (x->exclude != y->exclude)
		return x->exclude < y->exclude ? -1 : 1;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	if (x->ttl != y->ttl)
		return x->ttl < y->ttl ? -1 : 1;
	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	return 0;
}

/* moat_lvec_sort - sort in place */
void moat_lvec_sort(struct moat_lvec *lv)
{
	if (lv->n > 1)
		qsort(lv->v, lv->n, sizeof(lv->v[0]), moat_listing_cmp);
}

/* moat_lvec_equal - sort both, compare element by element */
bool moat_lvec_equal(struct moat_lvec *a, struct moat_lvec *b)
{
	if (a->n != b->n)
		return false;
	moat_lvec_sort(a);
	moat_lvec_sort(b);
	for (size_t i = 0; i < a->n; i++)
		if (moat_listing_cmp(&a->v[i], &b->v[i]))
			return false;
	return true;
}

/* moat_lvec_apply - merge-remove del from sorted cur, then append add */
int moat_lvec_apply(struct moat_lvec *cur, const struct moat_lvec *add,
		    struct moat_lvec *del)
{
	size_t i = 0, j = 0, k = 0;

	moat_lvec_sort(cur);
	moat_lvec_sort(del);
	/* first check every delete has a match, so a failure changes nothing */
	while (j < del->n) {
		if (i == cur->n)
			return -ENOENT;
		int c = moat_listing_cmp(&cur->v[i], &del->v[j]);
		if (c > 0)
			return -ENOENT;
		i++;
		if (c == 0)
			j++;
	}
	for (i = 0, j = 0; i < cur->n; i++) {
		if (j < del->n && !moat_listing_cmp(&cur->v[i], &del->v[j])) {
			j++;
			continue;
		}
		cur->v[k++] = cur->v[i];
	}
	cur->n = k;
	for (i = 0; i < add->n; i++)
		if (moat_lvec_push(cur, &add->v[i]))
			return -ENOMEM;
	return 0;
}
