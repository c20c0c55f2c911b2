/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr_int.h - the inside of a struct moat_xfr_zone, shared by the files of
 * the transfer code and by nothing else (the public API is xfr.h):
 *   xfr.c         the zone object, SOA timers, a transfer's start and its
 *                 two ends (finish, fail), state and results
 *   xfr_tcp.c     the connection: query, connect, TCP framing, the I/O loop
 *   xfr_parse.c   the answer: TSIG on every message, rcode, the record walk
 *                 that tells AXFR, IXFR and up to date apart
 *   xfr_notify.c  NOTIFY (RFC 1996): check, answer
 */
#ifndef MOAT_XFR_INT_H
#define MOAT_XFR_INT_H

#include <libknot/libknot.h>

#include "codes.h"
#include "xfr.h"

enum conn_state { C_IDLE, C_CONNECT, C_SEND, C_READ };
enum parse_state { P_FIRST, P_SECOND, P_AXFR, P_IXFR_DEL, P_IXFR_ADD, P_END };

struct moat_xfr_zone {
	struct moat_xfr_cfg cfg;
	char name[256];
	uint8_t apex[KNOT_DNAME_MAXLEN];
	knot_tsig_key_t key;
	bool has_key;
	struct moat_zone *zone;   /* current data, NULL before the first success */
	struct moat_codes codes;  /* answers that are never listings */
	size_t next_primary;

	/* timers and state */
	bool have_data, notify_pending, force_axfr;
	uint32_t serial, refresh, retry, expire;
	int64_t last_success_ms, last_attempt_ms;
	uint32_t failures;
	uint64_t ok, failed, n_axfr, n_ixfr;
	char last_error[256];

	/* the running transfer */
	enum conn_state cs;
	int fd;
	uint32_t conn_gen;        /* bumped for every new socket */
	int64_t deadline_ms, now_ms;
	bool ixfr;                /* the query we sent */
	uint16_t id;
	uint8_t *qwire;
	size_t qlen, qoff;
	uint8_t *buf;             /* 2 + 65535 */
	size_t boff, need;        /* bytes in buf, bytes wanted (2 or 2+len) */
	uint8_t digest[64];
	size_t digestlen;
	uint64_t prev_time_signed;
	size_t nmsg;
	enum parse_state ps;
	uint32_t final_serial, cur_to;
	uint32_t new_refresh, new_retry, new_expire;
	uint64_t nrec, nbytes;
	struct moat_zone *newzone;   /* AXFR in progress */
	bool batch;                  /* IXFR batch open on zone */
	struct moat_lvec txt_chg;    /* IXFR, keep_txt: addresses whose TXT changed */
	bool have_result;
	struct moat_xfr_result res;
};

/* xfr_conn_reset - close the socket and drop per-transfer buffers (xfr_tcp.c) */
void xfr_conn_reset(struct moat_xfr_zone *z);
/* xfr_open - (re)connect to the current primary with a fresh query; 0 or
 * -errno (xfr_tcp.c) */
int xfr_open(struct moat_xfr_zone *z);
/* xfr_message - one complete DNS message in z->buf + 2 (xfr_parse.c) */
enum moat_xfr_status xfr_message(struct moat_xfr_zone *z, size_t len);
/* xfr_fail - end the transfer without publishing (xfr.c); always FAILED */
enum moat_xfr_status xfr_fail(struct moat_xfr_zone *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* xfr_finish - the transfer is complete: swap data in, build the result
 * (xfr.c); DONE, or FAILED when the result cannot be built */
enum moat_xfr_status xfr_finish(struct moat_xfr_zone *z, enum moat_xfr_kind kind);

#endif /* MOAT_XFR_INT_H */
