/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet_rec.h - the fleet zone's record format (docs/fleet.md), shared by the
 * appliance that publishes its entries (control/fleet.c, RFC 2136 UPDATEs
 * built by update.h) and by every appliance that transfers the fleet's
 * zones as ordinary axfr sources (control/sources.c, zone "fleet = yes").
 *
 * One address, one owner name in an ordinary DNSBL zone (reversed IPv4
 * octets, IPv6 nibbles; owner.h), holding:
 *   A    127.0.0.<code>            the reason (enum moat_fleet_code)
 *   TXT  "moat:<id> exp=<unix-time> reason=<word>"
 * Each appliance writes only its own zone, so the TXT's id is a
 * cross-check (an appliance ignores records naming itself).  exp is
 * absolute: every consumer ignores a record once its time has passed,
 * even while it is still in the zone.
 */
#ifndef MOAT_FLEET_REC_H
#define MOAT_FLEET_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "listing.h"

/* Return codes (A record 127.0.0.N), one per reason. */
enum moat_fleet_code {
	MOAT_FLEET_OP_DROP = 2,    /* operator entry, action drop */
	MOAT_FLEET_OP_TARPIT = 3,  /* operator entry, action tarpit */
	MOAT_FLEET_DNSBL = 4,      /* learned: moat-smtpd's live DNSBL hit */
	MOAT_FLEET_PREGREET = 5,   /* learned: talked before the banner */
	MOAT_FLEET_PROTOCOL = 6,   /* learned: SMTP protocol abuse */
	MOAT_FLEET_CONTENT = 7,    /* learned: content refused at DATA */
};

#define MOAT_FLEET_ID_MAX 32      /* appliance id: [A-Za-z0-9_-], 1..32 */
#define MOAT_FLEET_TXT_MAX 200

/* moat_fleet_code_name - "operator-drop", "dnsbl", ... ("?" if unknown) */
const char *moat_fleet_code_name(uint32_t code);

/* moat_fleet_id_valid - id is 1..32 of [A-Za-z0-9_-] */
bool moat_fleet_id_valid(const char *id);

/* moat_fleet_txt - the TXT text for a record; returns its length or
 * -ENOSPC */
int moat_fleet_txt(const char *id, time_t exp, uint32_t code, char *buf, size_t bufsz);

/* moat_fleet_txt_parse - read "moat:<id> exp=<t> ..." from the text of a
 * record's TXT strings (zone.h moat_zone_answer.txt: joined by spaces).
 * id gets the appliance id (bufsz >= MOAT_FLEET_ID_MAX + 1).  0, or
 * -EINVAL when the text carries no moat: tag or no exp=. */
int moat_fleet_txt_parse(const char *txt, char *id, size_t idsz, time_t *exp);

/* Why a consumer keeps or drops one record (moat_fleet_judge). */
enum moat_fleet_verdict {
	MOAT_FLEET_KEEP = 0,
	MOAT_FLEET_EXPIRED,   /* exp passed */
	MOAT_FLEET_OWN,       /* published by this appliance */
	MOAT_FLEET_NOTAG,     /* no moat: TXT: not a fleet record */
};

/* moat_fleet_judge - a consumer's decision for a listing whose name holds
 * txt (may be NULL), at now, for appliance own_id ("" = none) */
enum moat_fleet_verdict moat_fleet_judge(const char *txt, const char *own_id, time_t now,
					 time_t *exp);

#endif /* MOAT_FLEET_REC_H */
