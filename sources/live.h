/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * live.h - live DNSBL lookups with c-ares: for an address, query
 * <reversed address>.<zone> A in every configured zone in parallel; the
 * answers become listings (prefix = the address, code = each A, ttl = the
 * answer's TTL) that the daemon installs like any other source's.
 *
 * Non-blocking; the daemon's epoll watches c-ares' sockets:
 *   lv = moat_live_new(&cfg, sock_cb, arg, err, errlen);
 *     sock_cb(arg, fd, readable, writable) is called whenever c-ares opens,
 *     changes or closes a socket (both false: remove fd from epoll)
 *   moat_live_lookup(lv, &addr, done_cb, arg)      any number in flight
 *   on fd readiness: moat_live_process(lv, fd, events)
 *   on timer:        moat_live_process(lv, -1, 0) at moat_live_timeout_ms()
 *   done_cb(arg, &addr, &listings, nfailed) once per lookup, when every
 *   zone answered or timed out (nfailed: zones without an answer; the daemon
 *   must not treat those as "not listed" for long).
 * An answer that is an error code (outside 127/8, or in cfg.codes: e.g.
 * 127.255.255.254 "use a registered resolver") gives no listing and counts
 * that zone in nfailed.
 */
#ifndef MOAT_LIVE_H
#define MOAT_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "lvec.h"

#define MOAT_LIVE_MAX_ZONES 16

struct moat_live_cfg {
	const char *resolver;   /* "ADDR[@PORT]" (several: comma-separated);
				 * NULL = /etc/resolv.conf */
	uint32_t timeout_ms;    /* per try, default 1000 */
	unsigned tries;         /* default 2 */
	const struct moat_codes *codes; /* answers that are errors, not
					 * listings (codes.h); NULL = default */
	size_t nzones;
	struct {
		const char *zone;   /* e.g. "zen.example" */
		uint16_t source;
	} zones[MOAT_LIVE_MAX_ZONES];
};

struct moat_codes;
typedef void (*moat_live_sock_cb)(void *arg, int fd, bool readable, bool writable);
typedef void (*moat_live_done_cb)(void *arg, const struct moat_prefix *addr,
				  const struct moat_lvec *listings, unsigned nfailed);

struct moat_live;

/* moat_live_new - a c-ares channel for the configured zones.  NULL with a
 * reason in err on a bad resolver address or c-ares failure. */
struct moat_live *moat_live_new(const struct moat_live_cfg *cfg, moat_live_sock_cb scb,
				void *sarg, char *err, size_t errlen);
/* moat_live_free - cancels lookups in flight (their done_cb runs with
 * every zone failed) and releases everything. */
void moat_live_free(struct moat_live *lv);

/* moat_live_lookup - start one lookup of addr (full-length prefix) in
 * every zone.  0, -EINVAL, -ENOMEM. */
int moat_live_lookup(struct moat_live *lv, const struct moat_prefix *addr,
		     moat_live_done_cb cb, void *arg);

/* moat_live_process - fd ready (events: EPOLLIN/EPOLLOUT), or fd = -1 for
 * timeouts only. */
void moat_live_process(struct moat_live *lv, int fd, uint32_t events);
/* moat_live_timeout_ms - ms until c-ares needs moat_live_process(lv,-1,0);
 * -1 when nothing is in flight. */
int moat_live_timeout_ms(struct moat_live *lv);
/* moat_live_pending - lookups in flight. */
unsigned moat_live_pending(const struct moat_live *lv);

#endif /* MOAT_LIVE_H */
