/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * xfr_notify.c - NOTIFY (RFC 1996) for the transfer zones: is the message
 * a NOTIFY for one of them, from one of its primaries (or notify_allow
 * addresses), signed with its key when it has one (RFC 8945 §5.2); the
 * reply (signed when the query was, TSIG errors as RFC 8945 §5.3.2 says).
 * The caller refreshes the zone (moat_xfr_notify) and sends the reply.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xfr_int.h"

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
