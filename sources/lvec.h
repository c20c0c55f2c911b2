/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lvec.h - a growable array of struct moat_listing, the output type of
 * every source module (zone transfers, rbldnsd files, live lookups).
 * The caller owns the array; moat_lvec_free() releases it.
 */
#ifndef MOAT_LVEC_H
#define MOAT_LVEC_H

#include <stdbool.h>
#include <stddef.h>

#include "listing.h"

struct moat_lvec {
	struct moat_listing *v;
	size_t n, cap;
};

/* moat_lvec_push - append a copy of *l; returns 0 or -ENOMEM. */
int moat_lvec_push(struct moat_lvec *lv, const struct moat_listing *l);
/* moat_lvec_free - release the array and reset to empty. */
void moat_lvec_free(struct moat_lvec *lv);
/* moat_listing_cmp - total order (qsort comparator) on whole listings. */
int moat_listing_cmp(const void *a, const void *b);
/* moat_lvec_sort - sort by moat_listing_cmp (prefix, then the rest). */
void moat_lvec_sort(struct moat_lvec *lv);
/* moat_lvec_equal - same multiset of listings (sorts both). */
bool moat_lvec_equal(struct moat_lvec *a, struct moat_lvec *b);
/* moat_lvec_apply - apply a delta to cur: remove each of del (one
 * occurrence), then append add; cur ends sorted only if add is empty.
 * Returns 0, -ENOENT when del holds a listing cur does not (cur is then
 * unchanged), or -ENOMEM.  Sorts cur and del. */
int moat_lvec_apply(struct moat_lvec *cur, const struct moat_lvec *add,
		    struct moat_lvec *del);

#endif /* MOAT_LVEC_H */
