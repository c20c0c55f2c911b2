/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * update.h - RFC 2136 dynamic UPDATEs of one zone, TSIG-signed (RFC 8945),
 * over TCP, one message at a time, non-blocking: what an appliance uses to
 * publish its fleet entries (control/fleet.c) to the fleet's primary.
 * libknot builds, signs and parses the messages.
 *
 *   u = moat_upd_new(&cfg, err, sizeof(err));
 *   n = moat_upd_start(u, rr, nrr, now)    builds one UPDATE of the first n
 *                                          records that fit, connects
 *   epoll moat_upd_fd(u) for moat_upd_events(u); wake at moat_upd_deadline_ms
 *   st = moat_upd_io(u, events, now)       AGAIN / DONE / REFUSED / FAILED
 *
 * Each record is a whole name: "set" deletes every RRset at the name, then
 * adds the A and TXT records (a re-publish replaces, never duplicates);
 * "del" deletes every RRset at the name.  Both are idempotent, so a batch
 * sent twice (the reply was lost) leaves the zone as sent once.
 */
#ifndef MOAT_UPDATE_H
#define MOAT_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "listing.h"

struct moat_upd_cfg {
	const char *zone;                 /* apex */
	struct sockaddr_storage primary;  /* with port */
	const char *tsig;                 /* "alg:name:secret" or NULL */
	uint32_t timeout_ms;              /* idle limit, default 10000 */
};

struct moat_upd_rr {
	struct moat_prefix addr;          /* a /32 or /128 */
	bool del;                         /* delete the name */
	uint32_t code;                    /* set: A 127.0.0.code (low byte) */
	uint32_t ttl;                     /* set: records' TTL */
	const char *txt;                  /* set: the TXT string (<= 255) */
};

enum moat_upd_status {
	MOAT_UPD_AGAIN = 0,   /* in progress */
	MOAT_UPD_DONE,        /* NOERROR: the primary applied the batch */
	MOAT_UPD_REFUSED,     /* the primary answered an error RCODE (REFUSED,
			       * NOTAUTH, BADSIG...): moat_upd_error says which */
	MOAT_UPD_FAILED,      /* no answer (connect, timeout, bad reply) */
};

struct moat_upd;

/* moat_upd_new - NULL with a reason in err (bad zone, bad key) */
struct moat_upd *moat_upd_new(const struct moat_upd_cfg *cfg, char *err, size_t errlen);
void moat_upd_free(struct moat_upd *u);

/* moat_upd_start - build one UPDATE of rr[0..k) (as many as fit one
 * message) and open the connection.  Returns k >= 1, -EBUSY while one
 * runs, -EINVAL for a record that is not an address, or -errno. */
int moat_upd_start(struct moat_upd *u, const struct moat_upd_rr *rr, size_t n, int64_t now_ms);
int moat_upd_fd(const struct moat_upd *u);
uint32_t moat_upd_events(const struct moat_upd *u);
/* moat_upd_deadline_ms - INT64_MAX when idle */
int64_t moat_upd_deadline_ms(const struct moat_upd *u);
/* moat_upd_io - advance; the socket is closed before a final status */
enum moat_upd_status moat_upd_io(struct moat_upd *u, uint32_t events, int64_t now_ms);
/* moat_upd_error - why the last exchange was refused or failed */
const char *moat_upd_error(const struct moat_upd *u);
/* moat_upd_rcode - the last answer's RCODE (0 NOERROR), or -1 */
int moat_upd_rcode(const struct moat_upd *u);
/* moat_upd_bytes - size of the last UPDATE message built */
size_t moat_upd_bytes(const struct moat_upd *u);

/* moat_rcode_describe - "NOTAUTH (rcode 9), TSIG error BADSIG": libknot's
 * names for an RCODE and a TSIG error (0: none); returns buf */
char *moat_rcode_describe(unsigned rcode, unsigned tsig_err, char *buf, size_t bufsz);

#endif /* MOAT_UPDATE_H */
