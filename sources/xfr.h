/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr.h - DNSBL zones kept by zone transfer from a primary: AXFR (RFC 5936),
 * IXFR (RFC 1995) with fallback to AXFR, TSIG (RFC 8945, via libknot) on
 * every message, SOA refresh/retry/expire timing and NOTIFY (RFC 1996).
 *
 * One struct moat_xfr_zone per configured zone.  The daemon drives it from
 * its event loop; nothing here blocks (except moat_xfr_run_blocking, for
 * tools and tests):
 *
 *   z = moat_xfr_zone_new(&cfg, err, sizeof(err));
 *   loop:
 *     t = moat_xfr_next_ms(z, now)          when to start the next transfer
 *     at t: moat_xfr_start(z, now)          opens a non-blocking TCP socket
 *     epoll: moat_xfr_fd(z) with moat_xfr_events(z) (EPOLLIN / EPOLLOUT);
 *            also wake at moat_xfr_deadline_ms(z)
 *     on readiness or deadline: st = moat_xfr_io(z, events, now)
 *       MOAT_XFR_AGAIN:  re-read events (EPOLL_CTL_MOD); when
 *                        moat_xfr_conn_gen(z) changed, the library opened a
 *                        new socket (IXFR fell back to AXFR): EPOLL_CTL_ADD
 *                        moat_xfr_fd(z) - the number may equal the old one
 *       MOAT_XFR_DONE:   moat_xfr_take_result(z, &res) -> publish
 *       MOAT_XFR_FAILED: nothing to publish; keep the previous data
 *     (the socket is closed by the library before DONE / FAILED return:
 *      remove it from epoll before calling moat_xfr_io, or use EPOLL_CTL_DEL
 *      tolerant of EBADF)
 *   NOTIFY on the daemon's UDP/TCP listener: moat_notify_handle() -> reply,
 *   and moat_xfr_notify(zone, now) makes moat_xfr_next_ms return now.
 *
 * A transfer that fails midway (connection lost, timeout, rcode, unsigned
 * or bad-MAC message, malformed record, broken IXFR serial chain, a delete
 * of a record we do not hold) publishes nothing and leaves the zone state
 * as it was; the next attempt after a failed IXFR is an AXFR.
 */
#ifndef MOAT_XFR_H
#define MOAT_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lvec.h"

#define MOAT_XFR_MAX_PRIMARIES 8

struct moat_xfr_cfg {
	const char *zone;      /* apex, e.g. "bl.example" (required) */
	struct sockaddr_storage primary[MOAT_XFR_MAX_PRIMARIES]; /* with port */
	size_t nprimary;       /* >= 1; tried in turn, next one after a failure */
	struct sockaddr_storage notify_allow[MOAT_XFR_MAX_PRIMARIES];
	size_t nnotify_allow;  /* extra NOTIFY sources besides the primaries */
	const char *tsig;      /* "hmac-sha256:name:base64secret" or NULL */
	uint16_t source;       /* listing .source */
	bool no_ixfr;          /* always AXFR (default: IXFR when we have data) */
	bool keep_txt;         /* keep TXT texts for moat_xfr_lookup (memory) */
	const char *error_codes; /* never listings, see codes.h; NULL = the
				  * default "127.255.255.0/24,127.0.0.1",
				  * "" = only answers outside 127/8 */
	uint32_t timeout_ms;   /* idle limit per connect/read, default 30000 */
	uint32_t refresh_min, refresh_max; /* clamp SOA refresh, default 30 / 86400 s */
	uint32_t retry_min, retry_max;     /* clamp SOA retry, default 10 / 3600 s */
	uint32_t expire_override;          /* 0 = SOA expire, else this (s) */
	uint64_t max_records;  /* records per transfer, default 50000000 */
	bool no_full_listings; /* a full transfer's result carries no listings
				* (res.add empty): the caller walks
				* moat_xfr_tree() instead of one array */
};

enum moat_xfr_status {
	MOAT_XFR_AGAIN = 0,   /* in progress: wait for the fd / deadline */
	MOAT_XFR_DONE = 1,    /* finished: take the result */
	MOAT_XFR_FAILED = 2,  /* failed: nothing to publish (see last_error) */
};

enum moat_xfr_kind {
	MOAT_XFR_FULL = 1,    /* res.add is the whole zone: replace the source */
	MOAT_XFR_DELTA = 2,   /* res.del then res.add: apply incrementally */
	MOAT_XFR_UPTODATE = 3 /* serial unchanged: nothing to do */
};

struct moat_xfr_result {
	enum moat_xfr_kind kind;
	uint32_t serial;
	struct moat_lvec add, del; /* caller frees with moat_lvec_free */
	/* DELTA with keep_txt: the addresses whose TXT records the delta
	 * changed (unsorted, may repeat; .pfx only), for a consumer that
	 * reads them (the fleet's exp=); caller frees */
	struct moat_lvec txt;
	uint64_t records;          /* RRs received */
	uint64_t bytes;            /* wire bytes received */
	bool was_ixfr;             /* the answer was incremental */
};

struct moat_xfr_state {
	bool have_data;        /* a transfer succeeded once */
	bool running;
	bool stale;            /* refresh overdue: last attempts failed */
	bool expired;          /* SOA expire passed without success: the
				* daemon should withdraw this zone's listings */
	uint32_t serial;
	uint32_t refresh, retry, expire; /* effective, seconds */
	int64_t last_success_ms, last_attempt_ms;
	uint32_t failures;     /* consecutive */
	uint64_t transfers_ok, transfers_failed, axfr, ixfr;
	size_t a_records, undecodable;
	char last_error[256];
};

struct moat_xfr_zone;

/* moat_xfr_zone_new - a zone from config (copied).  NULL on error, with a
 * reason in err (bad apex, bad TSIG key, no primary). */
struct moat_xfr_zone *moat_xfr_zone_new(const struct moat_xfr_cfg *cfg,
					char *err, size_t errlen);
void moat_xfr_zone_free(struct moat_xfr_zone *z);
const char *moat_xfr_zone_name(const struct moat_xfr_zone *z);

/* moat_xfr_next_ms - when (same clock as moat_clock_ms()) the
 * next transfer should start; <= now means now; INT64_MAX while running. */
int64_t moat_xfr_next_ms(const struct moat_xfr_zone *z, int64_t now_ms);
/* moat_xfr_notify - a valid NOTIFY arrived: refresh as soon as possible. */
void moat_xfr_notify(struct moat_xfr_zone *z, int64_t now_ms);
/* moat_xfr_force_axfr - the next transfer is a full AXFR, as soon as
 * possible (operator "refresh --full", e.g. after the primary's serial
 * went backwards, which IXFR answers as up to date). */
void moat_xfr_force_axfr(struct moat_xfr_zone *z);

/* moat_xfr_start - open the connection and queue the query.  0, -EALREADY
 * when a transfer runs, or -errno (counted as a failed attempt). */
int moat_xfr_start(struct moat_xfr_zone *z, int64_t now_ms);
/* moat_xfr_fd - the transfer's socket, -1 when none. */
int moat_xfr_fd(const struct moat_xfr_zone *z);
/* moat_xfr_conn_gen - bumped each time the library opens a new socket. */
uint32_t moat_xfr_conn_gen(const struct moat_xfr_zone *z);
/* moat_xfr_events - EPOLLIN and/or EPOLLOUT the state machine waits for. */
uint32_t moat_xfr_events(const struct moat_xfr_zone *z);
/* moat_xfr_deadline_ms - when the running transfer times out. */
int64_t moat_xfr_deadline_ms(const struct moat_xfr_zone *z);
/* moat_xfr_io - advance: read/write what the socket allows, check the
 * deadline.  events may be 0 (timer wake-up). */
enum moat_xfr_status moat_xfr_io(struct moat_xfr_zone *z, uint32_t events,
				 int64_t now_ms);
/* moat_xfr_abort - stop a running transfer (counted as failed). */
void moat_xfr_abort(struct moat_xfr_zone *z, int64_t now_ms);
/* moat_xfr_take_result - move the finished transfer's result out.  0, or
 * -ENOENT when there is none. */
int moat_xfr_take_result(struct moat_xfr_zone *z, struct moat_xfr_result *res);
struct moat_zone;
/* moat_xfr_tree - the zone's current data (zone.h: walk it with a
 * moat_zone_cursor), NULL before the first success.  Valid until the next
 * moat_xfr_io / moat_xfr_zone_free. */
const struct moat_zone *moat_xfr_tree(const struct moat_xfr_zone *z);
/* moat_xfr_listings - all current listings of the zone (after a success). */
int moat_xfr_listings(struct moat_xfr_zone *z, struct moat_lvec *out);

void moat_xfr_get_state(const struct moat_xfr_zone *z, int64_t now_ms,
			struct moat_xfr_state *st);

struct moat_zone_answer;
/* moat_xfr_lookup - what the zone answers for one address (codes, TXT when
 * keep_txt): moat_zone_lookup on the current data.  -ENOENT before the
 * first success, -EINVAL for a non-address prefix. */
int moat_xfr_lookup(const struct moat_xfr_zone *z, const struct moat_prefix *addr,
		    struct moat_zone_answer *ans);

/* moat_xfr_run_blocking - start and drive one transfer with poll() until
 * it ends (tools and tests).  Returns DONE or FAILED. */
enum moat_xfr_status moat_xfr_run_blocking(struct moat_xfr_zone *z);

/* NOTIFY (RFC 1996) ------------------------------------------------------ */

enum moat_notify_res {
	MOAT_NOTIFY_ACCEPT = 0,  /* reply built; refresh zones[*zone_idx] */
	MOAT_NOTIFY_REFUSE = 1,  /* reply built (REFUSED / NOTAUTH / NOTIMP /
				  * BADSIG...): send it, do nothing else */
	MOAT_NOTIFY_DROP = 2,    /* not a DNS query we answer: no reply */
};

/* moat_notify_handle - check one NOTIFY message (UDP payload, or a TCP
 * message without its 2-byte length) from `from`: opcode NOTIFY for a
 * configured zone, from one of its primaries or notify_allow addresses
 * (port ignored), TSIG-signed with the zone's key when it has one.  Builds
 * the reply (signed when the query was) into reply[replycap].  On ACCEPT
 * the caller calls moat_xfr_notify(zones[*zone_idx], now). */
enum moat_notify_res moat_notify_handle(struct moat_xfr_zone *const *zones,
					size_t nzones, const uint8_t *msg, size_t len,
					const struct sockaddr *from, uint8_t *reply,
					size_t replycap, size_t *replylen,
					size_t *zone_idx);

/* moat_addr_eq - a and b are the same IP address (ports ignored). */
bool moat_addr_eq(const struct sockaddr *a, const struct sockaddr_storage *b);

/* moat_serial_cmp - RFC 1982 serial comparison: <0, 0, >0 (2^31 apart: 0). */
int moat_serial_cmp(uint32_t a, uint32_t b);

#endif /* MOAT_XFR_H */
