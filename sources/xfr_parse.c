/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr_parse.c - the answer to an AXFR/IXFR query, one message at a time:
 * id, TSIG on every message (RFC 8945 §5.3.1), rcode (an IXFR the primary
 * refuses falls back to AXFR), then the records.  Messages are parsed,
 * and TSIG verified, with libknot; the record walk tells the answers apart:
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
 * moat_zone batch that is rolled back on any failure (xfr_fail).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "owner.h"
#include "update.h"
#include "xfr_int.h"
#include "zone.h"

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

/* txt_note - an IXFR changes a TXT record at an address name: note the
 * address (keep_txt: a consumer reading TXT texts, the fleet's exp=, must
 * look at the name again even when its A records stay).  0 or -ENOMEM;
 * names that are no single address are not noted. */
static int txt_note(struct moat_xfr_zone *z, const knot_rrset_t *rr)
{
	char own[KNOT_DNAME_TXT_MAXLEN + 1];
	size_t n, an = strlen(z->name);
	struct moat_owner o;

	if (!knot_dname_to_str(own, rr->owner, sizeof(own)))
		return 0;
	n = strlen(own);
	/* "<rel>.<apex>." (z->name ends with its dot) */
	if (n <= an + 1 || own[n - an - 1] != '.' || strcasecmp(own + n - an, z->name))
		return 0;
	own[n - an - 1] = 0;
	if (moat_owner_decode(own, &o) < 0 || o.wildcard)
		return 0;
	struct moat_listing l = { .pfx = o.v4 ? o.p4 : o.p6 };

	return moat_lvec_push(&z->txt_chg, &l) < 0 ? -ENOMEM : 0;
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
		if (rr->type == KNOT_RRTYPE_TXT && z->cfg.keep_txt && txt_note(z, rr) < 0)
			return rec_err(z, "out of memory");
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
		if (rr->type == KNOT_RRTYPE_TXT && z->cfg.keep_txt && txt_note(z, rr) < 0)
			return rec_err(z, "out of memory");
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

/* rcode_fail - end the transfer on a refusal: libknot's rcode name, the
 * number ("rcode N": what logs and tests grep), the TSIG error the primary
 * gave, and for the refusals an operator can fix, what to check (a bare
 * "rcode 9" said nothing) */
static enum moat_xfr_status rcode_fail(struct moat_xfr_zone *z, unsigned rcode, unsigned tsig_err)
{
	const char *hint = "";
	char rc[96];

	if (rcode == KNOT_RCODE_NOTAUTH)
		hint = z->has_key ? ": the primary refused the request's TSIG key: check the key's "
				    "name, algorithm and secret, and the primary's ACL"
				  : ": the primary refused an unsigned request: give the zone the "
				    "TSIG key the primary expects (tsig), or check its ACL";
	else if (rcode == KNOT_RCODE_REFUSED)
		hint = ": the primary does not allow this transfer: check its ACL for this "
		       "address (and key) and that it serves the zone";
	return xfr_fail(z, "%s%s", moat_rcode_describe(rcode, tsig_err, rc, sizeof(rc)), hint);
}

/* xfr_message - one complete DNS message in z->buf + 2 */
enum moat_xfr_status xfr_message(struct moat_xfr_zone *z, size_t len)
{
	knot_pkt_t *pkt = knot_pkt_new(z->buf + 2, (uint16_t)len, NULL);
	enum moat_xfr_status st = MOAT_XFR_AGAIN;
	int r;

	if (!pkt)
		return xfr_fail(z, "out of memory");
	z->nbytes += len + 2;
	r = knot_pkt_parse(pkt, KNOT_PF_NOCANON);
	if (r != KNOT_EOK) {
		knot_pkt_free(pkt);
		return xfr_fail(z, "malformed message %zu: %s", z->nmsg + 1, knot_strerror(r));
	}
	if (knot_wire_get_id(pkt->wire) != z->id || !knot_wire_get_qr(pkt->wire)) {
		knot_pkt_free(pkt);
		return xfr_fail(z, "message %zu: wrong id or not a response", z->nmsg + 1);
	}
	/* TSIG on every message (RFC 8945 §5.3.1); a bad one ends the transfer */
	if (z->has_key) {
		if (!pkt->tsig_rr) {
			knot_pkt_free(pkt);
			return xfr_fail(z, "message %zu is not TSIG-signed", z->nmsg + 1);
		}
		if (z->nmsg == 0)
			r = knot_tsig_client_check(pkt->tsig_rr, pkt->wire, pkt->size,
						   z->digest, z->digestlen, &z->key, 0);
		else
			r = knot_tsig_client_check_next(pkt->tsig_rr, pkt->wire, pkt->size,
							z->digest, z->digestlen, &z->key,
							z->prev_time_signed);
		uint8_t rc = knot_wire_get_rcode(pkt->wire);
		uint16_t te = knot_tsig_rdata_error(pkt->tsig_rr);

		if (r != KNOT_EOK && (rc != KNOT_RCODE_NOERROR || te)) {
			/* the primary's refusal of our key (RFC 8945 §5.3.2:
			 * unsigned, so unverifiable): what it says is the
			 * diagnosis, "failed to verify TSIG" would hide it */
			knot_pkt_free(pkt);
			return rcode_fail(z, rc, te);
		}
		if (r != KNOT_EOK) {
			knot_pkt_free(pkt);
			return xfr_fail(z, "message %zu: TSIG check failed: %s", z->nmsg + 1,
				    knot_strerror(r));
		}
		size_t ml = knot_tsig_rdata_mac_length(pkt->tsig_rr);
		if (ml > sizeof(z->digest)) {
			knot_pkt_free(pkt);
			return xfr_fail(z, "TSIG MAC too long");
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
			return r ? xfr_fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
		}
		return rcode_fail(z, rcode, 0);
	}
	z->nmsg++;
	const knot_pktsection_t *an = knot_pkt_section(pkt, KNOT_ANSWER);
	for (uint16_t i = 0; i < an->count; i++) {
		if (record(z, knot_pkt_rr(an, i))) {
			knot_pkt_free(pkt);
			return xfr_fail(z, "%s", z->last_error);
		}
	}
	knot_pkt_free(pkt);
	if (z->ps == P_END) {
		st = xfr_finish(z, z->batch ? MOAT_XFR_DELTA : MOAT_XFR_FULL);
	} else if (z->ps == P_SECOND && z->nmsg == 1 && z->ixfr &&
		   moat_serial_cmp(z->final_serial, z->serial) <= 0) {
		/* a lone SOA not newer than ours: up to date */
		st = xfr_finish(z, MOAT_XFR_UPTODATE);
	} else if (z->ps == P_SECOND && z->nmsg == 1 && z->ixfr) {
		/* a lone newer SOA: the primary cannot do IXFR here (RFC 1995
		 * §4); ask for the whole zone */
		log_info("xfr: zone=%s IXFR answered with a lone SOA %u: AXFR", z->name,
			 z->final_serial);
		z->ixfr = false;
		r = xfr_open(z);
		st = r ? xfr_fail(z, "reconnect: %s", strerror(-r)) : MOAT_XFR_AGAIN;
	}
	return st;
}
