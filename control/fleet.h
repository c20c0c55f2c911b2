/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet.h - moat-controld publishes its shared entries to the fleet's DNS
 * primary as TSIG-signed RFC 2136 UPDATEs of its own zone (docs/fleet.md).
 * Other appliances read that zone as an ordinary axfr source ("fleet =
 * yes", control/sources.c); nothing here reads the fleet zones.
 *
 * The entries stay enforced locally whatever happens here: this module
 * only mirrors the shared ones into the zone, through a bounded queue
 * with back-off, and removes its own records when they expire or are
 * deleted (and, at start, the stale ones its state file remembers).
 */
#ifndef MOAT_CONTROLD_FLEET_H
#define MOAT_CONTROLD_FLEET_H

#include <time.h>

struct cd;
struct cd_entry;
struct cd_tag;
struct json_object;
struct moat_prefix;
struct moat_sbuf;

/* Learned-entry kinds (moat-smtpd's refusals), [fleet] learn_* order. */
enum fleet_kind { FLEET_DNSBL = 0, FLEET_PREGREET, FLEET_PROTOCOL, FLEET_CONTENT };

/* fleet_kind_parse - "dnsbl", "pregreet", "protocol", "content"; -1 if
 * none (NULL: dnsbl, what moat-smtpd reports today) */
int fleet_kind_parse(const char *s);

/* fleet_open - start publishing when [fleet] id is set (after the state
 * directory exists, before the loop): load the state file, queue the
 * sweep of stale records.  0, or -1 with err (bad key, bad zone). */
int fleet_open(struct cd *d, char *err, size_t errsz);
void fleet_close(struct cd *d);
/* fleet_reload - after a reload: set up again from the new [fleet] (the
 * queue and records carried through the state file); like fleet_open */
int fleet_reload(struct cd *d, char *err, size_t errsz);

/* fleet_entry_add - entry e was added locally: share it when share is 1
 * (operator: --share; -1: the [fleet] default for its source and kind),
 * withdraw a shared record of the same address when it is not shared any
 * more.  Never fails the local add: refusals are logged and counted. */
void fleet_entry_add(struct cd *d, const struct cd_entry *e, int share, int kind);
/* fleet_entry_del - the entry of (p, source) was deleted locally */
void fleet_entry_del(struct cd *d, const struct moat_prefix *p, unsigned source);

/* fleet_io - the UPDATE socket is ready (TAG_FLEET) */
void fleet_io(struct cd *d, struct cd_tag *t, unsigned events);
/* fleet_tick - once a second: expiry sweep, refreshes, timeouts, retry,
 * state file */
void fleet_tick(struct cd *d, time_t now);
/* fleet_metrics - the publishing counters as Prometheus text (metrics.c;
 * nothing when [fleet] is off) */
void fleet_metrics(struct cd *d, struct moat_sbuf *b);
/* fleet_json - moatctl fleet: NULL when [fleet] is off */
struct json_object *fleet_json(struct cd *d, int list);

#endif /* MOAT_CONTROLD_FLEET_H */
