/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * update.c - one RFC 2136 UPDATE at a time to a zone's primary (update.h):
 * build and TSIG-sign it with libknot, send it over a non-blocking TCP
 * connection, read the answer (framing by dnstcp.c), check its TSIG and
 * RCODE.  RCODE and TSIG error names come from libknot's tables, as in a
 * refused transfer (xfr_parse.c uses moat_rcode_describe too).
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "dnstcp.h"
#include "owner.h"
#include "update.h"

enum ustate { U_IDLE, U_CONNECT, U_SEND, U_READ };

struct moat_upd {
	struct moat_upd_cfg cfg;
	uint8_t apex[KNOT_DNAME_MAXLEN];
	knot_tsig_key_t key;
	bool has_key;
	enum ustate st;
	int fd;
	struct moat_dnstcp *rd;   /* owns fd while reading */
	int64_t deadline_ms;
	uint16_t id;
	uint8_t *q;               /* framed query */
	size_t qlen, qoff, msglen;
	uint8_t digest[64];
	size_t digestlen;
	int rcode;
	char err[256];
};

/* moat_rcode_describe - RCODE and TSIG error names, for logs and tests */
char *moat_rcode_describe(unsigned rcode, unsigned tsig_err, char *buf, size_t bufsz)
{
	const knot_lookup_t *l = knot_lookup_by_id(knot_rcode_names, (int)rcode);
	/* knot_tsig_rcode_names holds only where TSIG differs (16 = BADSIG,
	 * not BADVERS); BADKEY and BADTIME are in knot_rcode_names */
	const knot_lookup_t *t = knot_lookup_by_id(knot_tsig_rcode_names, (int)tsig_err);

	if (!t)
		t = knot_lookup_by_id(knot_rcode_names, (int)tsig_err);
	if (tsig_err)
		snprintf(buf, bufsz, "%s (rcode %u), TSIG error %s", l ? l->name : "unknown", rcode,
			 t ? t->name : "unknown");
	else
		snprintf(buf, bufsz, "%s (rcode %u)", l ? l->name : "unknown", rcode);
	return buf;
}

/* moat_upd_new - the zone's apex and key */
struct moat_upd *moat_upd_new(const struct moat_upd_cfg *cfg, char *err, size_t errlen)
{
	struct moat_upd *u = calloc(1, sizeof(*u));

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->cfg = *cfg;
	u->fd = -1;
	u->rcode = -1;
	if (!u->cfg.timeout_ms)
		u->cfg.timeout_ms = 10000;
	if (!cfg->zone || !knot_dname_from_str(u->apex, cfg->zone, sizeof(u->apex))) {
		snprintf(err, errlen, "'%s' is not a zone name", cfg->zone ? cfg->zone : "");
		free(u);
		return NULL;
	}
	knot_dname_to_lower(u->apex);
	if (cfg->tsig) {
		if (knot_tsig_key_init_str(&u->key, cfg->tsig) != KNOT_EOK) {
			snprintf(err, errlen, "bad TSIG key (want alg:name:base64)");
			free(u);
			return NULL;
		}
		u->has_key = true;
	}
	u->cfg.tsig = NULL; /* not kept: the key is */
	u->cfg.zone = NULL;
	return u;
}

/* reset - close the connection, drop the query */
static void reset(struct moat_upd *u)
{
	if (u->rd)
		moat_dnstcp_free(u->rd); /* closes fd */
	else if (u->fd >= 0)
		close(u->fd);
	u->rd = NULL;
	u->fd = -1;
	free(u->q);
	u->q = NULL;
	u->st = U_IDLE;
}

void moat_upd_free(struct moat_upd *u)
{
	if (!u)
		return;
	reset(u);
	if (u->has_key)
		knot_tsig_key_deinit(&u->key);
	free(u);
}

/* put_rr - one record into the update section; 0, KNOT_ESPACE, or an
 * error */
static int put_rr(knot_pkt_t *pkt, const uint8_t *owner, uint16_t type, uint16_t cls,
		  uint32_t ttl, const uint8_t *rd, uint16_t rdlen)
{
	knot_rrset_t *rr = knot_rrset_new(owner, type, cls, ttl, NULL);
	int r;

	if (!rr)
		return KNOT_ENOMEM;
	r = knot_rrset_add_rdata(rr, rd, rdlen, NULL);
	if (r == KNOT_EOK)
		r = knot_pkt_put(pkt, 0, rr, 0);
	knot_rrset_free(rr, NULL);
	return r;
}

/* put_one - the records of one moat_upd_rr; 0, KNOT_ESPACE, -EINVAL */
static int put_one(struct moat_upd *u, knot_pkt_t *pkt, const struct moat_upd_rr *r)
{
	char rel[128], full[128 + KNOT_DNAME_TXT_MAXLEN];
	char apex[KNOT_DNAME_TXT_MAXLEN];
	uint8_t owner[KNOT_DNAME_MAXLEN];
	int ret;

	if (r->addr.plen != (r->addr.family == MOAT_AF_INET ? 32 : 128) ||
	    moat_owner_encode(&r->addr, rel, sizeof(rel)) < 0 ||
	    !knot_dname_to_str(apex, u->apex, sizeof(apex)))
		return -EINVAL;
	snprintf(full, sizeof(full), "%s.%s", rel, apex);
	if (!knot_dname_from_str(owner, full, sizeof(owner)))
		return -EINVAL;
	/* delete all RRsets at the name (class ANY, type ANY, RFC 2136 2.5.3) */
	ret = put_rr(pkt, owner, KNOT_RRTYPE_ANY, KNOT_CLASS_ANY, 0, NULL, 0);
	if (ret || r->del)
		return ret;
	uint8_t a[4] = { 127, 0, 0, (uint8_t)(r->code & 0xff) };

	ret = put_rr(pkt, owner, KNOT_RRTYPE_A, KNOT_CLASS_IN, r->ttl, a, sizeof(a));
	if (ret)
		return ret;
	uint8_t t[256];
	size_t tl = r->txt ? strlen(r->txt) : 0;

	if (tl > 255)
		tl = 255;
	t[0] = (uint8_t)tl;
	memcpy(t + 1, r->txt ? r->txt : "", tl);
	return put_rr(pkt, owner, KNOT_RRTYPE_TXT, KNOT_CLASS_IN, r->ttl, t, (uint16_t)(tl + 1));
}

/* build - the UPDATE of as many of rr as fit, signed and framed; k or
 * -errno */
static int build(struct moat_upd *u, const struct moat_upd_rr *rr, size_t n)
{
	knot_pkt_t *pkt = knot_pkt_new(NULL, KNOT_WIRE_MAX_PKTSIZE, NULL);
	size_t k = 0;
	int ret = -ENOMEM;

	if (!pkt)
		return -ENOMEM;
	u->id = (uint16_t)(random() & 0xffff);
	knot_wire_set_id(pkt->wire, u->id);
	knot_wire_set_opcode(pkt->wire, KNOT_OPCODE_UPDATE);
	if (u->has_key && knot_pkt_reserve(pkt, (uint16_t)knot_tsig_wire_size(&u->key)))
		goto out;
	/* zone section = the question: the apex, SOA (RFC 2136 2.3) */
	if (knot_pkt_put_question(pkt, u->apex, KNOT_CLASS_IN, KNOT_RRTYPE_SOA) ||
	    knot_pkt_begin(pkt, KNOT_AUTHORITY)) /* the update section */
		goto out;
	for (; k < n; k++) {
		size_t size = pkt->size;
		uint16_t cnt = knot_wire_get_nscount(pkt->wire);
		int r = put_one(u, pkt, &rr[k]);

		if (r == KNOT_ESPACE) {
			/* what fit of this name comes out again: a name's
			 * records never straddle two messages */
			pkt->size = size;
			knot_wire_set_nscount(pkt->wire, cnt);
			break;
		}
		if (r == -EINVAL) {
			ret = -EINVAL;
			goto out;
		}
		if (r) {
			ret = -ENOMEM;
			goto out;
		}
	}
	if (k == 0) {
		ret = -EMSGSIZE;
		goto out;
	}
	if (u->has_key) {
		u->digestlen = sizeof(u->digest);
		if (knot_tsig_sign(pkt->wire, &pkt->size, pkt->max_size, NULL, 0, u->digest,
				   &u->digestlen, &u->key, 0, 0) != KNOT_EOK) {
			ret = -EIO;
			goto out;
		}
	}
	u->msglen = pkt->size;
	u->qlen = pkt->size + 2;
	u->q = malloc(u->qlen);
	if (!u->q)
		goto out;
	u->q[0] = (uint8_t)(pkt->size >> 8);
	u->q[1] = (uint8_t)pkt->size;
	memcpy(u->q + 2, pkt->wire, pkt->size);
	u->qoff = 0;
	ret = (int)k;
out:
	knot_pkt_free(pkt);
	return ret;
}

/* moat_upd_start - build and connect */
int moat_upd_start(struct moat_upd *u, const struct moat_upd_rr *rr, size_t n, int64_t now_ms)
{
	const struct sockaddr_storage *ss = &u->cfg.primary;
	socklen_t sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);
	int one = 1, k;

	if (u->st != U_IDLE)
		return -EBUSY;
	if (n == 0)
		return -EINVAL;
	u->rcode = -1;
	u->err[0] = 0;
	k = build(u, rr, n);
	if (k < 0)
		return k;
	u->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		int e = -errno;

		reset(u);
		return e;
	}
	setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(u->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		int e = -errno;

		reset(u);
		return e;
	}
	u->st = U_CONNECT;
	u->deadline_ms = now_ms + u->cfg.timeout_ms;
	return k;
}

int moat_upd_fd(const struct moat_upd *u)
{
	return u->fd;
}

uint32_t moat_upd_events(const struct moat_upd *u)
{
	return u->st == U_READ ? EPOLLIN : u->st == U_IDLE ? 0 : EPOLLOUT;
}

int64_t moat_upd_deadline_ms(const struct moat_upd *u)
{
	return u->st == U_IDLE ? INT64_MAX : u->deadline_ms;
}

const char *moat_upd_error(const struct moat_upd *u)
{
	return u->err;
}

int moat_upd_rcode(const struct moat_upd *u)
{
	return u->rcode;
}

size_t moat_upd_bytes(const struct moat_upd *u)
{
	return u->msglen;
}

/* fail - end the exchange with a reason */
static enum moat_upd_status fail(struct moat_upd *u, enum moat_upd_status st, const char *fmt,
				 ...) __attribute__((format(printf, 3, 4)));
static enum moat_upd_status fail(struct moat_upd *u, enum moat_upd_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->err, sizeof(u->err), fmt, ap);
	va_end(ap);
	reset(u);
	return st;
}

/* answer - check the reply: id, TSIG, RCODE */
static enum moat_upd_status answer(struct moat_upd *u, const uint8_t *msg, size_t len)
{
	uint8_t *copy = malloc(len);
	knot_pkt_t *pkt;
	enum moat_upd_status st;
	char rc[96];

	if (!copy)
		return fail(u, MOAT_UPD_FAILED, "out of memory");
	memcpy(copy, msg, len);
	pkt = knot_pkt_new(copy, (uint16_t)len, NULL);
	if (!pkt || knot_pkt_parse(pkt, KNOT_PF_NOCANON) != KNOT_EOK) {
		knot_pkt_free(pkt);
		free(copy);
		return fail(u, MOAT_UPD_FAILED, "malformed answer");
	}
	if (knot_wire_get_id(pkt->wire) != u->id || !knot_wire_get_qr(pkt->wire)) {
		knot_pkt_free(pkt);
		free(copy);
		return fail(u, MOAT_UPD_FAILED, "answer with another id");
	}
	unsigned rcode = knot_wire_get_rcode(pkt->wire);
	unsigned te = pkt->tsig_rr ? knot_tsig_rdata_error(pkt->tsig_rr) : 0;

	u->rcode = (int)rcode;
	if (rcode != KNOT_RCODE_NOERROR || te) {
		/* an error answer to a bad key is unsigned (RFC 8945 5.3.2):
		 * its RCODE is reported as given, never acted on beyond that */
		moat_rcode_describe(rcode, te, rc, sizeof(rc));
		st = fail(u, MOAT_UPD_REFUSED, "%s", rc);
	} else if (u->has_key &&
		   (!pkt->tsig_rr || knot_tsig_client_check(pkt->tsig_rr, pkt->wire, pkt->size,
							    u->digest, u->digestlen, &u->key,
							    0) != KNOT_EOK)) {
		st = fail(u, MOAT_UPD_FAILED, "answer not signed with our key");
	} else {
		reset(u);
		st = MOAT_UPD_DONE;
	}
	knot_pkt_free(pkt);
	free(copy);
	return st;
}

/* moat_upd_io - connect, send, read the one answer */
enum moat_upd_status moat_upd_io(struct moat_upd *u, uint32_t events, int64_t now_ms)
{
	(void)events;
	if (u->st == U_IDLE)
		return MOAT_UPD_FAILED;
	if (now_ms >= u->deadline_ms)
		return fail(u, MOAT_UPD_FAILED, "timeout (%u ms without progress)", u->cfg.timeout_ms);
	if (u->st == U_CONNECT) {
		int e = 0;
		socklen_t el = sizeof(e);

		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e == EINPROGRESS || e == EALREADY)
			return MOAT_UPD_AGAIN;
		if (e)
			return fail(u, MOAT_UPD_FAILED, "connect: %s", strerror(e));
		u->st = U_SEND;
	}
	if (u->st == U_SEND) {
		while (u->qoff < u->qlen) {
			ssize_t n = send(u->fd, u->q + u->qoff, u->qlen - u->qoff, MSG_NOSIGNAL);

			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)
					return MOAT_UPD_AGAIN;
				return fail(u, MOAT_UPD_FAILED, "send: %s", strerror(errno));
			}
			u->qoff += (size_t)n;
			u->deadline_ms = now_ms + u->cfg.timeout_ms;
		}
		u->rd = moat_dnstcp_new(u->fd);
		if (!u->rd)
			return fail(u, MOAT_UPD_FAILED, "out of memory");
		u->st = U_READ;
	}
	const uint8_t *msg;
	size_t len;
	int r = moat_dnstcp_read(u->rd, &msg, &len);

	if (r == 0)
		return MOAT_UPD_AGAIN;
	if (r < 0)
		return fail(u, MOAT_UPD_FAILED, "%s",
			    r == -ECONNRESET ? "connection closed by the primary" : strerror(-r));
	return answer(u, msg, len);
}
