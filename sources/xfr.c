/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr.c - zone transfers (AXFR/IXFR over TCP with TSIG) and NOTIFY, driven
 * by the daemon's event loop (API and failure rules in xfr.h).
 *
 * Messages are built, parsed, signed and verified with libknot; this file
 * only frames them on TCP (2-byte length prefix) and walks the records:
 *
 *   first record   SOA (new serial S)
 *   second record  SOA with our serial  -> IXFR: (SOA old, deletes, SOA new,
 *                                          adds)* then SOA S
 *                  SOA S                -> AXFR of a zone with only a SOA
 *                  anything else        -> AXFR-style answer (full zone)
 *   only the SOA, S not newer than ours -> up to date
 *
 * An AXFR builds a fresh struct moat_zone that replaces the old one only
 * when the closing SOA arrived; an IXFR changes the live zone inside a
 * moat_zone batch that is rolled back on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "codes.h"
#include "log.h"
#include "xfr.h"
#include "zone.h"

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
	char last_error[160];

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
	bool have_result;
	struct moat_xfr_result res;
};

/* moat_serial_cmp - RFC 1982 */
int moat_serial_cmp(uint32_t a, uint32_t b)
{
	int32_t d = (int32_t)(a - b);

	if (a == b || d == INT32_MIN)
		return 0;
	return d < 0 ? -1 : 1;
}

/* clamp - v into [lo, hi] */
static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* moat_xfr_zone_new - zone from config */
struct moat_xfr_zone *moat_xfr_zone_new(const struct moat_xfr_cfg *cfg,
					char *err, size_t errlen)
{
	struct moat_xfr_zone *z = calloc(1, sizeof(*z));

	if (!z) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	z->cfg = *cfg;
	z->fd = -1;
	if (!cfg->zone || !knot_dname_from_str(z->apex, cfg->zone, sizeof(z->apex))) {
		snprintf(err, errlen, "bad zone name");
		goto fail;
	}
	knot_dname_to_lower(z->apex);
	knot_dname_to_str(z->name, z->apex, sizeof(z->name));
	z->cfg.zone = z->name;
	if (cfg->nprimary == 0 || cfg->nprimary > MOAT_XFR_MAX_PRIMARIES) {
		snprintf(err, errlen, "zone %s: no primary", z->name);
		goto fail;
	}
	if (cfg->tsig) {
		if (knot_tsig_key_init_str(&z->key, cfg->tsig) != KNOT_EOK) {
			snprintf(err, errlen, "zone %s: bad TSIG key (want alg:name:base64)",
				 z->name);
			goto fail;
		}
		z->has_key = true;
	}
	z->cfg.tsig = NULL; /* not kept: the key is */
	if (!cfg->error_codes)
		moat_codes_default(&z->codes);
	else if (moat_codes_parse(&z->codes, cfg->error_codes)) {
		snprintf(err, errlen, "zone %s: bad error_codes %s", z->name, cfg->error_codes);
		goto fail;
	}
	z->cfg.error_codes = NULL;
#define DEF(f, v) if (!z->cfg.f) z->cfg.f = (v)
	DEF(timeout_ms, 30000);
	DEF(refresh_min, 30);
	DEF(refresh_max, 86400);
	DEF(retry_min, 10);
	DEF(retry_max, 3600);
	DEF(max_records, 50000000);
#undef DEF
	z->retry = z->cfg.retry_min;
	z->refresh = z->cfg.refresh_min;
	z->expire = z->cfg.expire_override ? z->cfg.expire_override : 604800;
	return z;
fail:
	moat_xfr_zone_free(z);
	return NULL;
}

/* moat_xfr_zone_name - the apex, presentation form */
const char *moat_xfr_zone_name(const struct moat_xfr_zone *z)
{
	return z->name;
}

/* conn_reset - close the socket and drop per-transfer buffers */
static void conn_reset(struct moat_xfr_zone *z)
{
	if (z->fd >= 0)
		close(z->fd);
	z->fd = -1;
	z->cs = C_IDLE;
	free(z->qwire);
	z->qwire = NULL;
	free(z->buf);
	z->buf = NULL;
}

/* moat_xfr_zone_free - release */
void moat_xfr_zone_free(struct moat_xfr_zone *z)
{
	if (!z)
		return;
	if (z->batch)
		moat_zone_rollback(z->zone);
	conn_reset(z);
	moat_zone_free(z->newzone);
	moat_zone_free(z->zone);
	moat_lvec_free(&z->res.add);
	moat_lvec_free(&z->res.del);
	if (z->has_key)
		knot_tsig_key_deinit(&z->key);
	free(z);
}

/* moat_xfr_next_ms - SOA timer logic */
int64_t moat_xfr_next_ms(const struct moat_xfr_zone *z, int64_t now_ms)
{
	if (z->cs != C_IDLE)
		return INT64_MAX;
	if (z->notify_pending)
		return now_ms;
	if (!z->have_data && z->last_attempt_ms == 0)
		return now_ms;
	if (z->failures == 0 && z->have_data)
		return z->last_success_ms + (int64_t)z->refresh * 1000;
	return z->last_attempt_ms + (int64_t)z->retry * 1000;
}

/* moat_xfr_notify - refresh at the next moat_xfr_next_ms() */
void moat_xfr_notify(struct moat_xfr_zone *z, int64_t now_ms)
{
	(void)now_ms;
	z->notify_pending = true;
}

/* moat_xfr_force_axfr - full transfer at the next opportunity */
void moat_xfr_force_axfr(struct moat_xfr_zone *z)
{
	z->force_axfr = true;
	z->notify_pending = true;
}

/* moat_xfr_fd - the running transfer's socket or -1 */
int moat_xfr_fd(const struct moat_xfr_zone *z)
{
	return z->fd;
}

/* moat_xfr_conn_gen - sockets opened so far (a change means re-register) */
uint32_t moat_xfr_conn_gen(const struct moat_xfr_zone *z)
{
	return z->conn_gen;
}

/* moat_xfr_events - what the state machine waits for */
uint32_t moat_xfr_events(const struct moat_xfr_zone *z)
{
	switch (z->cs) {
	case C_CONNECT:
	case C_SEND:
		return EPOLLOUT;
	case C_READ:
		return EPOLLIN;
	default:
		return 0;
	}
}

/* moat_xfr_deadline_ms - when the running transfer times out */
int64_t moat_xfr_deadline_ms(const struct moat_xfr_zone *z)
{
	return z->cs == C_IDLE ? INT64_MAX : z->deadline_ms;
}

/* build_query - the AXFR/IXFR query (TSIG-signed when keyed), framed */
static int build_query(struct moat_xfr_zone *z)
{
	knot_pkt_t *pkt = knot_pkt_new(NULL, 1024, NULL);
	knot_rrset_t *soa = NULL;
	int ret = -ENOMEM;

	if (!pkt)
		return -ENOMEM;
	z->id = (uint16_t)(random() & 0xffff);
	knot_wire_set_id(pkt->wire, z->id);
	if (z->has_key && knot_pkt_reserve(pkt, (uint16_t)knot_tsig_wire_size(&z->key)))
		goto out;
	if (knot_pkt_put_question(pkt, z->apex, KNOT_CLASS_IN,
				  z->ixfr ? KNOT_RRTYPE_IXFR : KNOT_RRTYPE_AXFR))
		goto out;
	if (z->ixfr) {
		/* authority: our SOA (only the serial matters, RFC 1995 §3) */
		uint8_t rd[22] = { 0 };
		soa = knot_rrset_new(z->apex, KNOT_RRTYPE_SOA, KNOT_CLASS_IN, 0, NULL);
		if (!soa)
			goto out;
		knot_wire_write_u32(rd + 2, z->serial);
		if (knot_rrset_add_rdata(soa, rd, sizeof(rd), NULL) ||
		    knot_pkt_begin(pkt, KNOT_AUTHORITY) || knot_pkt_put(pkt, 0, soa, 0))
			goto out;
	}
	if (z->has_key) {
		z->digestlen = sizeof(z->digest);
		if (knot_tsig_sign(pkt->wire, &pkt->size, pkt->max_size, NULL, 0,
				   z->digest, &z->digestlen, &z->key, 0, 0) != KNOT_EOK)
			goto out;
	}
	z->qlen = pkt->size + 2;
	z->qwire = malloc(z->qlen);
	if (!z->qwire)
		goto out;
	z->qwire[0] = (uint8_t)(pkt->size >> 8);
	z->qwire[1] = (uint8_t)pkt->size;
	memcpy(z->qwire + 2, pkt->wire, pkt->size);
	z->qoff = 0;
	ret = 0;
out:
	knot_pkt_free(pkt);
	knot_rrset_free(soa, NULL); /* put() copied it to the wire */
	return ret;
}

/* xfr_open - socket + non-blocking connect to the current primary */
static int xfr_open(struct moat_xfr_zone *z)
{
	const struct sockaddr_storage *ss = &z->cfg.primary[z->next_primary % z->cfg.nprimary];
	socklen_t sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int one = 1, r;

	conn_reset(z);
	z->buf = malloc(2 + 65535);
	if (!z->buf)
		return -ENOMEM;
	r = build_query(z);
	if (r)
		return r;
	z->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (z->fd < 0)
		return -errno;
	z->conn_gen++;
	setsockopt(z->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(z->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS)
		return -errno;
	z->cs = C_CONNECT;
	z->boff = 0;
	z->need = 2;
	z->nmsg = 0;
	z->prev_time_signed = 0;
	z->ps = P_FIRST;
	z->nrec = z->nbytes = 0;
	z->deadline_ms = z->now_ms + z->cfg.timeout_ms;
	return 0;
}

/* moat_xfr_start - begin a transfer */
int moat_xfr_start(struct moat_xfr_zone *z, int64_t now_ms)
{
	int r;

	if (z->cs != C_IDLE)
		return -EALREADY;
	z->now_ms = now_ms;
	z->last_attempt_ms = now_ms;
	z->notify_pending = false;
	z->ixfr = z->have_data && !z->cfg.no_ixfr && !z->force_axfr;
	moat_lvec_free(&z->res.add);
	moat_lvec_free(&z->res.del);
	z->have_result = false;
	r = xfr_open(z);
	if (r) {
		snprintf(z->last_error, sizeof(z->last_error), "connect: %s", strerror(-r));
		conn_reset(z);
		z->failures++;
		z->failed++;
		z->next_primary++;
		return r;
	}
	return 0;
}

/* fail - end the transfer without publishing; keep previous data */
static enum moat_xfr_status fail(struct moat_xfr_zone *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static enum moat_xfr_status fail(struct moat_xfr_zone *z, const char *fmt, ...)
{
	va_list ap;
	char buf[sizeof(z->last_error)];

	/* via buf: callers pass z->last_error itself as an argument */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(z->last_error, buf, sizeof(buf));
	log_warn("xfr: zone=%s %s failed: %s (previous data kept)", z->name,
		 z->ixfr ? "IXFR" : "AXFR", z->last_error);
	if (z->batch) {
		moat_zone_rollback(z->zone);
		z->batch = false;
	}
	moat_zone_free(z->newzone);
	z->newzone = NULL;
	conn_reset(z);
	if (z->ixfr)
		z->force_axfr = true;
	z->failures++;
	z->failed++;
	z->next_primary++;
	return MOAT_XFR_FAILED;
}

/* finish - the transfer is complete: swap data in, build the result */
static enum moat_xfr_status finish(struct moat_xfr_zone *z, enum moat_xfr_kind kind)
{
	struct moat_xfr_result *r = &z->res;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->serial = z->final_serial;
	r->records = z->nrec;
	r->bytes = z->nbytes;
	if (kind == MOAT_XFR_FULL) {
		/* the caller may walk the zone instead (moat_xfr_tree): no
		 * array of the whole zone */
		ret = z->cfg.no_full_listings ? 0 : moat_zone_listings(z->newzone, &r->add);
		if (ret == 0) {
			moat_zone_free(z->zone);
			z->zone = z->newzone;
			z->newzone = NULL;
			z->n_axfr++;
		}
	} else if (kind == MOAT_XFR_DELTA) {
		ret = moat_zone_commit(z->zone, &r->add, &r->del);
		z->batch = false;
		r->was_ixfr = true;
		z->n_ixfr++;
	}
	if (ret) {
		moat_lvec_free(&r->add);
		moat_lvec_free(&r->del);
		return fail(z, "out of memory building listings");
	}
	conn_reset(z);
	z->have_data = true;
	z->force_axfr = false;
	z->serial = z->final_serial;
	z->refresh = clamp(z->new_refresh, z->cfg.refresh_min, z->cfg.refresh_max);
	z->retry = clamp(z->new_retry, z->cfg.retry_min, z->cfg.retry_max);
	z->expire = z->cfg.expire_override ? z->cfg.expire_override : z->new_expire;
	if (z->expire < z->refresh)
		z->expire = z->refresh;
	z->last_success_ms = z->now_ms;
	z->failures = 0;
	z->ok++;
	z->have_result = true;
	log_info("xfr: zone=%s serial=%u kind=%s records=%llu bytes=%llu add=%zu del=%zu",
		 z->name, z->serial,
		 kind == MOAT_XFR_FULL ? "full" : kind == MOAT_XFR_DELTA ? "ixfr" : "uptodate",
		 (unsigned long long)z->nrec, (unsigned long long)z->nbytes,
		 r->add.n, r->del.n);
	return MOAT_XFR_DONE;
}

/* is_apex_soa - an SOA record at the zone apex; sets *serial and timers */
static bool is_apex_soa(struct moat_xfr_zone *z, const knot_rrset_t *rr, uint32_t *serial)
{
	if (rr->type != KNOT_RRTYPE_SOA || rr->rrs.count != 1 ||
	    !knot_dname_is_case_equal(rr->owner, z->apex))
		return false;
	const knot_rdata_t *rd = rr->rrs.rdata;
	if (rd->len < 22)
		return false;
	*serial = knot_soa_serial(rd);
	return true;
}

/* zone_rr - feed every rdata of one parsed rrset to a zone */
static int zone_rr(struct moat_zone *zn, enum moat_zone_op op, const knot_rrset_t *rr)
{
	const knot_rdata_t *rd = rr->rrs.rdata;

	for (uint16_t i = 0; i < rr->rrs.count; i++) {
		int r = moat_zone_rr(zn, op, rr->owner, rr->type, rr->ttl, rd->data, rd->len);
		if (r)
			return r;
		rd = knot_rdataset_next((knot_rdata_t *)rd);
	}
	return 0;
}

/* new_zone - an empty zone for an AXFR, with this zone's settings */
static struct moat_zone *new_zone(const struct moat_xfr_zone *z)
{
	struct moat_zone *zn = moat_zone_new(z->name, z->cfg.source);

	if (zn) {
		moat_zone_keep_txt(zn, z->cfg.keep_txt);
		moat_zone_error_codes(zn, &z->codes);
	}
	return zn;
}

/* rec_err - set last_error for record(); returns 1 (fail) */
static int rec_err(struct moat_xfr_zone *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int rec_err(struct moat_xfr_zone *z, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(z->last_error, sizeof(z->last_error), fmt, ap);
	va_end(ap);
	return 1;
}

/* record - advance the record-level parse state with one RR; 0, or 1 to
 * fail with z->last_error set */
static int record(struct moat_xfr_zone *z, const knot_rrset_t *rr)
{
	uint32_t s;
	int r = 0;
	bool soa = is_apex_soa(z, rr, &s);
	const char *what = "add";

	if (++z->nrec > z->cfg.max_records)
		return rec_err(z, "more than %llu records", (unsigned long long)z->cfg.max_records);
	if (rr->type == KNOT_RRTYPE_SOA && !soa)
		return rec_err(z, "SOA record not at the apex");
	switch (z->ps) {
	case P_FIRST:
		if (!soa)
			return rec_err(z, "answer does not start with the SOA");
		z->final_serial = s;
		z->new_refresh = knot_soa_refresh(rr->rrs.rdata);
		z->new_retry = knot_soa_retry(rr->rrs.rdata);
		z->new_expire = knot_soa_expire(rr->rrs.rdata);
		z->ps = P_SECOND;
		return 0;
	case P_SECOND:
		if (soa && s == z->final_serial) {
			/* AXFR of a zone that is only its SOA */
			z->newzone = new_zone(z);
			z->ps = P_END;
			return z->newzone ? 0 : rec_err(z, "out of memory");
		}
		if (soa) {
			if (!z->ixfr || s != z->serial)
				return rec_err(z, "IXFR starts at serial %u, we have %u", s, z->serial);
			if (moat_zone_begin(z->zone))
				return rec_err(z, "zone busy");
			z->batch = true;
			z->ps = P_IXFR_DEL;
			return 0;
		}
		z->newzone = new_zone(z);
		if (!z->newzone)
			return rec_err(z, "out of memory");
		z->ps = P_AXFR;
		/* this record is the first of a full zone */
		/* FALLTHROUGH */
	case P_AXFR:
		if (soa) {
			if (s != z->final_serial)
				return rec_err(z, "AXFR closing SOA serial %u, opened with %u", s,
					       z->final_serial);
			z->ps = P_END;
			return 0;
		}
		r = zone_rr(z->newzone, MOAT_ZONE_ADD, rr);
		break;
	case P_IXFR_DEL:
		if (soa) {
			z->cur_to = s;
			z->ps = P_IXFR_ADD;
			return 0;
		}
		r = zone_rr(z->zone, MOAT_ZONE_DEL, rr);
		what = "delete";
		break;
	case P_IXFR_ADD:
		if (soa) {
			if (s == z->final_serial && z->cur_to == z->final_serial) {
				z->ps = P_END;
				return 0;
			}
			if (s != z->cur_to)
				return rec_err(z, "IXFR serial chain broken: diff from %u after diff to %u",
					       s, z->cur_to);
			z->ps = P_IXFR_DEL;
			return 0;
		}
		r = zone_rr(z->zone, MOAT_ZONE_ADD, rr);
		break;
	case P_END:
		return rec_err(z, "records after the closing SOA");
	}
	if (r) {
		char own[KNOT_DNAME_TXT_MAXLEN + 1] = "?", esc[400];
		knot_dname_to_str(own, rr->owner, sizeof(own));
		return rec_err(z, "bad record (%s %s type %u): %s", what,
			       log_escape(esc, 100, own, strlen(own)), rr->type,
			       r == -ENOENT ? "not in our copy"
			       : r == -ENOMEM ? "out of memory" : "malformed");
	}
	return 0;
}

/* message - one complete DNS message in z->buf + 2 */
static enum moat_xfr_status message(struct moat_xfr_zone *z, size_t len)
{
	knot_pkt_t *pkt = knot_pkt_new(z->buf + 2, (uint16_t)len, NULL);
	enum moat_xfr_status st = MOAT_XFR_AGAIN;
	int r;

	if (!pkt)
		return fail(z, "out of memory");
	z->nbytes += len + 2;
	r = knot_pkt_parse(pkt, KNOT_PF_NOCANON);
	if (r != KNOT_EOK) {
		knot_pkt_free(pkt);
		return fail(z, "malformed message %zu: %s", z->nmsg + 1, knot_strerror(r));
	}
	if (knot_wire_get_id(pkt->wire) != z->id || !knot_wire_get_qr(pkt->wire)) {
		knot_pkt_free(pkt);
		return fail(z, "message %zu: wrong id or not a response", z->nmsg + 1);
	}
	/* TSIG on every message (RFC 8945 §5.3.1); a bad one ends the transfer */
	if (z->has_key) {
		if (!pkt->tsig_rr) {
			knot_pkt_free(pkt);
			return fail(z, "message %zu is not TSIG-signed", z->nmsg + 1);
		}
		if (z->nmsg == 0)
			r = knot_tsig_client_check(pkt->tsig_rr, pkt->wire, pkt->size,
						   z->digest, z->digestlen, &z->key, 0);
		else
			r = knot_tsig_client_check_next(pkt->tsig_rr, pkt->wire, pkt->size,
							z->digest, z->digestlen, &z->key,
							z->prev_time_signed);
		if (r != KNOT_EOK) {
			knot_pkt_free(pkt);
			return fail(z, "message %zu: TSIG check failed: %s", z->nmsg + 1,
				    knot_strerror(r));
		}
		size_t ml = knot_tsig_rdata_mac_length(pkt->tsig_rr);
		if (ml > sizeof(z->digest)) {
			knot_pkt_free(pkt);
			return fail(z, "TSIG MAC too long");
		}
		memcpy(z->digest, knot_tsig_rdata_mac(pkt->tsig_rr), ml);
		z->digestlen = ml;
		z->prev_time_signed = knot_tsig_rdata_time_signed(pkt->tsig_rr);
	}
	uint8_t rcode = knot_wire_get_rcode(pkt->wire);
	if (rcode != KNOT_RCODE_NOERROR) {
		knot_pkt_free(pkt);
		if (z->nmsg == 0 && z->ixfr &&
		    (rcode == KNOT_RCODE_NOTIMPL || rcode == KNOT_RCODE_REFUSED ||
		     rcode == KNOT_RCODE_FORMERR)) {
			log_info("xfr: zone=%s IXFR refused (rcode %u): falling back to AXFR",
				 z->name, rcode);
			z->ixfr = false;
			r = xfr_open(z);
			return r ? fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
		}
		return fail(z, "rcode %u", rcode);
	}
	z->nmsg++;
	const knot_pktsection_t *an = knot_pkt_section(pkt, KNOT_ANSWER);
	for (uint16_t i = 0; i < an->count; i++) {
		if (record(z, knot_pkt_rr(an, i))) {
			knot_pkt_free(pkt);
			return fail(z, "%s", z->last_error);
		}
	}
	knot_pkt_free(pkt);
	if (z->ps == P_END) {
		st = finish(z, z->batch ? MOAT_XFR_DELTA : MOAT_XFR_FULL);
	} else if (z->ps == P_SECOND && z->nmsg == 1 && z->ixfr &&
		   moat_serial_cmp(z->final_serial, z->serial) <= 0) {
		/* a lone SOA not newer than ours: up to date */
		st = finish(z, MOAT_XFR_UPTODATE);
	} else if (z->ps == P_SECOND && z->nmsg == 1 && z->ixfr) {
		/* a lone newer SOA: the primary cannot do IXFR here (RFC 1995
		 * §4); ask for the whole zone */
		log_info("xfr: zone=%s IXFR answered with a lone SOA %u: AXFR", z->name,
			 z->final_serial);
		z->ixfr = false;
		r = xfr_open(z);
		st = r ? fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
	}
	return st;
}

/* moat_xfr_io - drive the connection; events is a hint only: every step
 * tries its syscall and treats EAGAIN as "wait" */
enum moat_xfr_status moat_xfr_io(struct moat_xfr_zone *z, uint32_t events,
				 int64_t now_ms)
{
	(void)events;
	z->now_ms = now_ms;
	if (z->cs == C_IDLE)
		return MOAT_XFR_FAILED;
	if (now_ms >= z->deadline_ms)
		return fail(z, "timeout (%u ms without progress)", z->cfg.timeout_ms);
	if (z->cs == C_CONNECT) {
		int e = 0;
		socklen_t el = sizeof(e);
		if (getsockopt(z->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e == EINPROGRESS || e == EALREADY)
			return MOAT_XFR_AGAIN;
		if (e)
			return fail(z, "connect: %s", strerror(e));
		z->cs = C_SEND;
	}
	if (z->cs == C_SEND) {
		while (z->qoff < z->qlen) {
			ssize_t n = send(z->fd, z->qwire + z->qoff, z->qlen - z->qoff,
					 MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return MOAT_XFR_AGAIN;
				if (errno == ENOTCONN)
					return MOAT_XFR_AGAIN; /* connect still pending */
				return fail(z, "send: %s", strerror(errno));
			}
			z->qoff += (size_t)n;
			z->deadline_ms = now_ms + z->cfg.timeout_ms;
		}
		z->cs = C_READ;
	}
	/* C_READ: as many messages as the socket has */
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = recv(z->fd, z->buf + z->boff, z->need - z->boff, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return MOAT_XFR_AGAIN;
			return fail(z, "recv: %s", strerror(errno));
		}
		if (n == 0) {
			if (z->ixfr && z->ps == P_SECOND && z->nmsg == 1) {
				z->ixfr = false;
				int r = xfr_open(z);
				return r ? fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
			}
			return fail(z, "connection closed by the primary after %llu records",
				    (unsigned long long)z->nrec);
		}
		z->deadline_ms = now_ms + z->cfg.timeout_ms;
		z->boff += (size_t)n;
		if (z->boff < z->need)
			continue;
		if (z->need == 2) {
			size_t len = (size_t)z->buf[0] << 8 | z->buf[1];
			if (len < 12)
				return fail(z, "message of %zu bytes", len);
			z->need = 2 + len;
			continue;
		}
		enum moat_xfr_status st = message(z, z->need - 2);
		if (st != MOAT_XFR_AGAIN || z->cs != C_READ)
			return st;
		z->boff = 0;
		z->need = 2;
	}
	return MOAT_XFR_AGAIN;
}

/* moat_xfr_abort - stop */
void moat_xfr_abort(struct moat_xfr_zone *z, int64_t now_ms)
{
	z->now_ms = now_ms;
	if (z->cs != C_IDLE)
		fail(z, "aborted");
}

/* moat_xfr_take_result - hand the result to the caller */
int moat_xfr_take_result(struct moat_xfr_zone *z, struct moat_xfr_result *res)
{
	if (!z->have_result)
		return -ENOENT;
	*res = z->res;
	memset(&z->res, 0, sizeof(z->res));
	z->have_result = false;
	return 0;
}

/* moat_xfr_tree - the zone's current data */
const struct moat_zone *moat_xfr_tree(const struct moat_xfr_zone *z)
{
	return z->have_data ? z->zone : NULL;
}

/* moat_xfr_listings - every current listing */
int moat_xfr_listings(struct moat_xfr_zone *z, struct moat_lvec *out)
{
	return z->zone ? moat_zone_listings(z->zone, out) : 0;
}

/* moat_xfr_get_state - timers, counters, last error */
void moat_xfr_get_state(const struct moat_xfr_zone *z, int64_t now_ms,
			struct moat_xfr_state *st)
{
	memset(st, 0, sizeof(*st));
	st->have_data = z->have_data;
	st->running = z->cs != C_IDLE;
	st->serial = z->serial;
	st->refresh = z->refresh;
	st->retry = z->retry;
	st->expire = z->expire;
	st->last_success_ms = z->last_success_ms;
	st->last_attempt_ms = z->last_attempt_ms;
	st->failures = z->failures;
	st->transfers_ok = z->ok;
	st->transfers_failed = z->failed;
	st->axfr = z->n_axfr;
	st->ixfr = z->n_ixfr;
	if (z->have_data) {
		st->stale = now_ms > z->last_success_ms + (int64_t)z->refresh * 1000 &&
			    z->failures > 0;
		st->expired = now_ms > z->last_success_ms + (int64_t)z->expire * 1000;
	}
	if (z->zone) {
		struct moat_zone_stats zs;
		moat_zone_get_stats(z->zone, &zs);
		st->a_records = zs.a_records;
		st->undecodable = zs.undecodable;
	}
	snprintf(st->last_error, sizeof(st->last_error), "%s", z->last_error);
}

/* moat_xfr_lookup - one address against the current data */
int moat_xfr_lookup(const struct moat_xfr_zone *z, const struct moat_prefix *addr,
		    struct moat_zone_answer *ans)
{
	if (!z->zone)
		return -ENOENT;
	return moat_zone_lookup(z->zone, addr, ans);
}

/* mono_ms - CLOCK_MONOTONIC in ms */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* moat_xfr_run_blocking - one transfer, poll()-driven */
enum moat_xfr_status moat_xfr_run_blocking(struct moat_xfr_zone *z)
{
	enum moat_xfr_status st;

	if (moat_xfr_start(z, mono_ms()))
		return MOAT_XFR_FAILED;
	do {
		struct pollfd pfd = { .fd = moat_xfr_fd(z) };
		uint32_t ev = moat_xfr_events(z);
		int64_t wait = moat_xfr_deadline_ms(z) - mono_ms();
		pfd.events = (short)((ev & EPOLLIN ? POLLIN : 0) | (ev & EPOLLOUT ? POLLOUT : 0));
		if (wait < 0)
			wait = 0;
		int n = poll(&pfd, 1, (int)(wait > 60000 ? 60000 : wait));
		if (n < 0 && errno != EINTR) {
			moat_xfr_abort(z, mono_ms());
			return MOAT_XFR_FAILED;
		}
		st = moat_xfr_io(z, n > 0 ? ev : 0, mono_ms());
	} while (st == MOAT_XFR_AGAIN);
	return st;
}

/* moat_addr_eq - same IP address (ports ignored) */
bool moat_addr_eq(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family == AF_INET && b->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6 && b->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
	return false;
}

/* notify_allowed - from a primary or a notify_allow address */
static bool notify_allowed(const struct moat_xfr_zone *z, const struct sockaddr *from)
{
	for (size_t i = 0; i < z->cfg.nprimary; i++)
		if (moat_addr_eq(from, &z->cfg.primary[i]))
			return true;
	for (size_t i = 0; i < z->cfg.nnotify_allow; i++)
		if (moat_addr_eq(from, &z->cfg.notify_allow[i]))
			return true;
	return false;
}

/* tsig_error_name - the RFC 8945 name of a TSIG error */
static const char *tsig_error_name(uint16_t e)
{
	switch (e) {
	case KNOT_RCODE_BADSIG: return "BADSIG";
	case KNOT_RCODE_BADKEY: return "BADKEY";
	case KNOT_RCODE_BADTIME: return "BADTIME";
	default: return "?";
	}
}

/* notify_tsig_check - verify a signed NOTIFY (RFC 8945 §5.2): the TSIG
 * error for the reply (NOERROR, BADKEY, BADSIG, BADTIME) and whether the
 * reply is signed (a good request and BADTIME: the request's MAC was good).
 * A zone without a key does not know the request's key: BADKEY. */
static uint16_t notify_tsig_check(const struct moat_xfr_zone *z, const knot_pkt_t *q, bool *sign)
{
	int r;

	*sign = false;
	if (!z->has_key)
		return KNOT_RCODE_BADKEY;
	r = knot_tsig_server_check(q->tsig_rr, q->wire, q->size, &z->key);
	switch (r) {
	case KNOT_EOK:
		*sign = true;
		return KNOT_RCODE_NOERROR;
	case KNOT_TSIG_EBADTIME:
		*sign = true;
		return KNOT_RCODE_BADTIME;
	case KNOT_TSIG_EBADKEY:
		return KNOT_RCODE_BADKEY;
	default: /* bad MAC, truncated or malformed TSIG */
		return KNOT_RCODE_BADSIG;
	}
}

/* moat_notify_handle - check a NOTIFY and build the reply */
enum moat_notify_res moat_notify_handle(struct moat_xfr_zone *const *zones,
					size_t nzones, const uint8_t *msg, size_t len,
					const struct sockaddr *from, uint8_t *reply,
					size_t replycap, size_t *replylen,
					size_t *zone_idx)
{
	uint8_t *wire;
	knot_pkt_t *q = NULL, *resp = NULL;
	enum moat_notify_res res = MOAT_NOTIFY_DROP;
	uint8_t rcode = KNOT_RCODE_NOERROR;
	struct moat_xfr_zone *z = NULL;
	bool sign = false;
	uint16_t tsig_error = KNOT_RCODE_NOERROR;

	*replylen = 0;
	if (len < KNOT_WIRE_HEADER_SIZE || len > 65535 || replycap < 512)
		return MOAT_NOTIFY_DROP;
	wire = malloc(len);
	if (!wire)
		return MOAT_NOTIFY_DROP;
	memcpy(wire, msg, len);
	q = knot_pkt_new(wire, (uint16_t)len, NULL);
	if (!q || knot_wire_get_qr(wire))
		goto out; /* never answer a response */
	if (knot_pkt_parse(q, 0) != KNOT_EOK) {
		if (knot_pkt_parse_question(q) != KNOT_EOK)
			goto out;
		rcode = KNOT_RCODE_FORMERR;
	} else if (knot_wire_get_opcode(wire) != KNOT_OPCODE_NOTIFY) {
		rcode = KNOT_RCODE_NOTIMPL;
	} else if (knot_wire_get_qdcount(wire) != 1 || knot_pkt_qtype(q) != KNOT_RRTYPE_SOA) {
		rcode = KNOT_RCODE_FORMERR;
	} else {
		for (size_t i = 0; i < nzones; i++)
			if (knot_dname_is_case_equal(knot_pkt_qname(q), zones[i]->apex)) {
				z = zones[i];
				*zone_idx = i;
				break;
			}
		if (!z) {
			rcode = KNOT_RCODE_NOTAUTH;
		} else if (!notify_allowed(z, from)) {
			rcode = KNOT_RCODE_REFUSED;
		} else if (z->has_key && !q->tsig_rr) {
			rcode = KNOT_RCODE_REFUSED; /* policy: this zone's NOTIFYs are signed */
		} else if (q->tsig_rr) {
			tsig_error = notify_tsig_check(z, q, &sign);
			if (tsig_error != KNOT_RCODE_NOERROR)
				rcode = KNOT_RCODE_NOTAUTH;
		}
	}
	resp = knot_pkt_new(NULL, KNOT_WIRE_MAX_PKTSIZE, NULL);
	if (!resp || knot_pkt_init_response(resp, q) != KNOT_EOK)
		goto out;
	if (sign)
		knot_pkt_reserve(resp, (uint16_t)knot_tsig_wire_size(&z->key));
	knot_wire_set_aa(resp->wire);
	knot_wire_set_rcode(resp->wire, rcode);
	if (sign) {
		/* a good request, or BADTIME (its MAC was good): signed with
		 * the request's MAC; BADTIME carries the request's time and
		 * ours in Other Data (knot_tsig_sign does both) */
		uint8_t d[64];
		size_t dl = sizeof(d);
		if (knot_tsig_sign(resp->wire, &resp->size, resp->max_size,
				   knot_tsig_rdata_mac(q->tsig_rr),
				   knot_tsig_rdata_mac_length(q->tsig_rr), d, &dl, &z->key,
				   tsig_error, knot_tsig_rdata_time_signed(q->tsig_rr)) != KNOT_EOK)
			goto out;
	} else if (tsig_error != KNOT_RCODE_NOERROR) {
		/* BADKEY, BADSIG: a TSIG RR with the error, the request's key
		 * name and algorithm, and no MAC (RFC 8945 §5.3.2: such an
		 * error MUST NOT be signed) */
		if (knot_tsig_add(resp->wire, &resp->size, resp->max_size, tsig_error,
				  q->tsig_rr) != KNOT_EOK)
			goto out;
	}
	if (resp->size > replycap)
		goto out;
	memcpy(reply, resp->wire, resp->size);
	*replylen = resp->size;
	res = rcode == KNOT_RCODE_NOERROR ? MOAT_NOTIFY_ACCEPT : MOAT_NOTIFY_REFUSE;
	if (z && res == MOAT_NOTIFY_REFUSE) {
		char a[64] = "?";
		if (from->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->sin_addr, a, sizeof(a));
		else if (from->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)from)->sin6_addr, a, sizeof(a));
		log_warn("xfr: zone=%s NOTIFY from %s refused (rcode %u%s%s)", z->name, a, rcode,
			 tsig_error ? ", TSIG error " : "", tsig_error ? tsig_error_name(tsig_error) : "");
	}
out:
	knot_pkt_free(resp);
	knot_pkt_free(q);
	free(wire);
	return res;
}
