/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet_view.h - a consumer's view of one fleet zone (docs/fleet.md): the
 * addresses whose listings it passes to the table, each with the exp= it
 * was kept for, and the order in which those times come.  With it an IXFR
 * or a passing exp is applied as a delta over the addresses it touches
 * (control/sources.c), not by filtering the whole zone again.
 *
 * Addresses live in an open-addressing hash (linear probing, deletion by
 * backward shift); their times in a binary min-heap whose stale entries (an
 * address re-kept with another time, or dropped) are skipped when they
 * surface and purged when they outnumber the live ones.
 */
#ifndef MOAT_FLEET_VIEW_H
#define MOAT_FLEET_VIEW_H

#include <stddef.h>
#include <time.h>

#include "listing.h"

struct moat_fleet_view;

struct moat_fleet_view *moat_fleet_view_new(void);
void moat_fleet_view_free(struct moat_fleet_view *v);
/* moat_fleet_view_clear - forget every address (before a full filter) */
void moat_fleet_view_clear(struct moat_fleet_view *v);
/* moat_fleet_view_set - addr is kept until exp (0: no exp, a listing that
 * is not a fleet record); 0 or -ENOMEM */
int moat_fleet_view_set(struct moat_fleet_view *v, const struct moat_prefix *addr, time_t exp);
/* moat_fleet_view_del - addr is no longer kept (absent: nothing) */
void moat_fleet_view_del(struct moat_fleet_view *v, const struct moat_prefix *addr);
/* moat_fleet_view_get - 1 when addr is kept (*exp its time), else 0 */
int moat_fleet_view_get(const struct moat_fleet_view *v, const struct moat_prefix *addr,
			time_t *exp);
/* moat_fleet_view_size - addresses kept */
size_t moat_fleet_view_size(const struct moat_fleet_view *v);
/* moat_fleet_view_next - the earliest exp of a kept address (0: none);
 * may be a stale one, which only wakes the caller early */
time_t moat_fleet_view_next(const struct moat_fleet_view *v);
/* moat_fleet_view_pop_due - the next kept address whose exp <= now: 1
 * (addr, *exp set; it stays kept: the caller decides), 0 when none */
int moat_fleet_view_pop_due(struct moat_fleet_view *v, time_t now, struct moat_prefix *addr,
			    time_t *exp);

#endif /* MOAT_FLEET_VIEW_H */
