/* test_xfr.c - the transfer state machine against canned DNS messages
 * built and TSIG-signed with libknot, served over loopback TCP by the test
 * itself: AXFR, IXFR (good, broken chain, bad delete, refused -> AXFR,
 * up to date), TSIG on every message (good, unsigned, wrong key), malformed
 * answers, timeouts, SOA timers, and NOTIFY handling. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "clock.h"
#include "owner.h"
#include "xfr.h"

#define ZONE "bl.test."
#define SECRET "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
#define KEYSTR "hmac-sha256:xfrkey:" SECRET
#define BADKEYSTR "hmac-sha256:xfrkey:d3JvbmctZnJvbmctd3Jvbmctd3JvbmctMTIzNDU2Nzg="

struct srv {
	int lfd, cfd;
	uint16_t port;
	knot_tsig_key_t key, bad;
	uint8_t digest[64];
	size_t dlen;
	uint8_t qwire[65535];
	knot_pkt_t *q;
	uint16_t qtype;
	uint32_t qserial; /* IXFR: the serial in the query's authority SOA */
	int signed_q;
};

static void srv_init(struct srv *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->cfd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	getsockname(s->lfd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
	assert_int_equal(knot_tsig_key_init_str(&s->key, KEYSTR), KNOT_EOK);
	assert_int_equal(knot_tsig_key_init_str(&s->bad, BADKEYSTR), KNOT_EOK);
}

static void srv_close(struct srv *s)
{
	if (s->cfd >= 0)
		close(s->cfd);
	close(s->lfd);
	knot_pkt_free(s->q);
	knot_tsig_key_deinit(&s->key);
	knot_tsig_key_deinit(&s->bad);
}

static struct moat_xfr_zone *zone_for(struct srv *s, const char *key)
{
	struct moat_xfr_cfg cfg = { .zone = ZONE, .nprimary = 1, .tsig = key, .source = 4,
				    .timeout_ms = 2000 };
	struct sockaddr_in *a = (struct sockaddr_in *)&cfg.primary[0];
	char err[200];

	a->sin_family = AF_INET;
	a->sin_port = htons(s->port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct moat_xfr_zone *z = moat_xfr_zone_new(&cfg, err, sizeof(err));
	if (!z)
		fail_msg("zone: %s", err);
	return z;
}

/* recv_all - blocking read of n bytes */
static int recv_all(int fd, uint8_t *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, b + got, n - got, 0);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* srv_query - let the client send its query, accept it and parse it */
static void srv_query(struct srv *s, struct moat_xfr_zone *z)
{
	for (int i = 0; i < 100 && moat_xfr_events(z) != EPOLLIN; i++) {
		struct pollfd p = { .fd = moat_xfr_fd(z), .events = POLLOUT };
		poll(&p, 1, 100);
		assert_int_equal(moat_xfr_io(z, EPOLLOUT, moat_clock_ms()), MOAT_XFR_AGAIN);
	}
	assert_int_equal(moat_xfr_events(z), EPOLLIN);
	if (s->cfd >= 0)
		close(s->cfd);
	s->cfd = accept(s->lfd, NULL, NULL);
	assert_true(s->cfd >= 0);
	uint8_t lb[2];
	assert_int_equal(recv_all(s->cfd, lb, 2), 0);
	size_t len = (size_t)lb[0] << 8 | lb[1];
	assert_int_equal(recv_all(s->cfd, s->qwire, len), 0);
	knot_pkt_free(s->q);
	s->q = knot_pkt_new(s->qwire, (uint16_t)len, NULL);
	assert_int_equal(knot_pkt_parse(s->q, 0), KNOT_EOK);
	s->qtype = knot_pkt_qtype(s->q);
	s->signed_q = s->q->tsig_rr != NULL;
	if (s->signed_q) {
		assert_int_equal(knot_tsig_server_check(s->q->tsig_rr, s->q->wire, s->q->size,
							&s->key), KNOT_EOK);
		s->dlen = knot_tsig_rdata_mac_length(s->q->tsig_rr);
		memcpy(s->digest, knot_tsig_rdata_mac(s->q->tsig_rr), s->dlen);
	}
	s->qserial = 0;
	const knot_pktsection_t *au = knot_pkt_section(s->q, KNOT_AUTHORITY);
	if (au->count == 1 && knot_pkt_rr(au, 0)->type == KNOT_RRTYPE_SOA)
		s->qserial = knot_soa_serial(knot_pkt_rr(au, 0)->rrs.rdata);
}

/* make_rr - "owner TYPE value" (owner relative, "@" apex; SOA value = serial) */
static knot_rrset_t *make_rr(const char *text)
{
	char owner[300], type[16], val[64], full[400];
	uint8_t rd[64];
	uint16_t rdlen, t;

	assert_int_equal(sscanf(text, "%299s %15s %63s", owner, type, val), 3);
	snprintf(full, sizeof(full), "%s%s%s", strcmp(owner, "@") ? owner : "",
		 strcmp(owner, "@") ? "." : "", ZONE);
	knot_dname_t *o = knot_dname_from_str_alloc(full);
	if (!strcmp(type, "SOA")) {
		t = KNOT_RRTYPE_SOA;
		memset(rd, 0, 22);
		knot_wire_write_u32(rd + 2, (uint32_t)strtoul(val, NULL, 10));
		knot_wire_write_u32(rd + 6, 60);
		knot_wire_write_u32(rd + 10, 30);
		knot_wire_write_u32(rd + 14, 600);
		knot_wire_write_u32(rd + 18, 60);
		rdlen = 22;
	} else if (!strcmp(type, "A")) {
		struct in_addr ia;
		t = KNOT_RRTYPE_A;
		inet_pton(AF_INET, val, &ia);
		memcpy(rd, &ia, 4);
		rdlen = 4;
	} else {
		t = KNOT_RRTYPE_TXT;
		rd[0] = (uint8_t)strlen(val);
		memcpy(rd + 1, val, strlen(val));
		rdlen = (uint16_t)(strlen(val) + 1);
	}
	knot_rrset_t *rr = knot_rrset_new(o, t, KNOT_CLASS_IN, 300, NULL);
	knot_dname_free(o, NULL);
	assert_int_equal(knot_rrset_add_rdata(rr, rd, rdlen, NULL), KNOT_EOK);
	return rr;
}

enum sign { S_NONE, S_GOOD, S_BADKEY };

/* srv_msg - one response message (first: with the question) */
static void srv_msg(struct srv *s, const char *const *rrs, int first, enum sign sg,
		    uint8_t rcode, int id_delta)
{
	knot_pkt_t *r = knot_pkt_new(NULL, 65535, NULL);

	if (first) {
		assert_int_equal(knot_pkt_init_response(r, s->q), KNOT_EOK);
	} else {
		knot_wire_set_id(r->wire, knot_wire_get_id(s->q->wire));
		knot_wire_set_qr(r->wire);
	}
	knot_wire_set_id(r->wire, (uint16_t)(knot_wire_get_id(r->wire) + id_delta));
	knot_wire_set_rcode(r->wire, rcode);
	if (sg != S_NONE)
		knot_pkt_reserve(r, (uint16_t)knot_tsig_wire_size(&s->key));
	knot_pkt_begin(r, KNOT_ANSWER);
	knot_rrset_t *made[16];
	size_t nm = 0;
	for (size_t i = 0; rrs && rrs[i] && nm < 16; i++) {
		made[nm] = make_rr(rrs[i]);
		assert_int_equal(knot_pkt_put(r, 0, made[nm], 0), KNOT_EOK);
		nm++;
	}
	if (sg != S_NONE) {
		const knot_tsig_key_t *k = sg == S_GOOD ? &s->key : &s->bad;
		size_t dl = sizeof(s->digest);
		int ret;
		if (first)
			ret = knot_tsig_sign(r->wire, &r->size, r->max_size, s->digest, s->dlen,
					     s->digest, &dl, k, 0, 0);
		else
			ret = knot_tsig_sign_next(r->wire, &r->size, r->max_size, s->digest,
						  s->dlen, s->digest, &dl, k, r->wire, r->size);
		assert_int_equal(ret, KNOT_EOK);
		s->dlen = dl;
	}
	uint8_t lb[2] = { (uint8_t)(r->size >> 8), (uint8_t)r->size };
	assert_int_equal(send(s->cfd, lb, 2, 0), 2);
	assert_int_equal(send(s->cfd, r->wire, r->size, 0), (ssize_t)r->size);
	knot_pkt_free(r);
	for (size_t i = 0; i < nm; i++)
		knot_rrset_free(made[i], NULL);
}

/* run - drive the client until it finishes */
static enum moat_xfr_status run(struct moat_xfr_zone *z)
{
	enum moat_xfr_status st = MOAT_XFR_AGAIN;
	for (int i = 0; i < 200 && st == MOAT_XFR_AGAIN; i++) {
		struct pollfd p = { .fd = moat_xfr_fd(z), .events = POLLIN };
		if (moat_xfr_events(z) != EPOLLIN)
			return MOAT_XFR_AGAIN; /* reconnecting: caller serves it */
		poll(&p, 1, 50);
		st = moat_xfr_io(z, EPOLLIN, moat_clock_ms());
	}
	return st;
}

static const char *const base1[] = { "@ SOA 5", "2.0.0.127 A 127.0.0.2", "*.113.0.203 A 127.0.0.3", NULL };
static const char *const base2[] = { "10.2.0.192 A 127.0.0.2", "@ SOA 5", NULL };

/* axfr - a full transfer of the base zone (serial 5) */
static void axfr(struct srv *s, struct moat_xfr_zone *z, enum sign sg)
{
	struct moat_xfr_result res;

	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(s, z);
	assert_int_equal(s->qtype, KNOT_RRTYPE_AXFR);
	srv_msg(s, base1, 1, sg, 0, 0);
	srv_msg(s, base2, 0, sg, 0, 0);
	assert_int_equal(run(z), MOAT_XFR_DONE);
	assert_int_equal(moat_xfr_take_result(z, &res), 0);
	assert_int_equal(res.kind, MOAT_XFR_FULL);
	assert_int_equal(res.serial, 5);
	assert_int_equal(res.add.n, 3);
	for (size_t i = 0; i < res.add.n; i++)
		assert_int_equal(res.add.v[i].source, 4);
	moat_lvec_free(&res.add);
	moat_lvec_free(&res.del);
}

/* loaded - a server and a zone that has done one AXFR of the base zone */
static struct moat_xfr_zone *loaded(struct srv *s, const char *key)
{
	srv_init(s);
	struct moat_xfr_zone *z = zone_for(s, key);
	axfr(s, z, key ? S_GOOD : S_NONE);
	return z;
}

static void expect_fail(struct moat_xfr_zone *z, const char *what)
{
	struct moat_xfr_state st;
	enum moat_xfr_status r = run(z);

	moat_xfr_get_state(z, moat_clock_ms(), &st);
	if (r != MOAT_XFR_FAILED || !strstr(st.last_error, what))
		fail_msg("want FAILED with '%s', got status %d error '%s'", what, r, st.last_error);
}

static void test_axfr_plain_and_signed(void **state)
{
	(void)state;
	for (int keyed = 0; keyed < 2; keyed++) {
		struct srv s;
		srv_init(&s);
		struct moat_xfr_zone *z = zone_for(&s, keyed ? KEYSTR : NULL);
		axfr(&s, z, keyed ? S_GOOD : S_NONE);
		assert_int_equal(s.signed_q, keyed);
		moat_xfr_zone_free(z);
		srv_close(&s);
	}
}

/* tsig_fault - first message as sg1, second as sg2: must fail with what */
static void tsig_fault(enum sign sg1, enum sign sg2, const char *what)
{
	struct srv s;
	struct moat_lvec lv = { 0 };
	srv_init(&s);
	struct moat_xfr_zone *z = zone_for(&s, KEYSTR);
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	srv_msg(&s, base1, 1, sg1, 0, 0);
	srv_msg(&s, base2, 0, sg2, 0, 0);
	expect_fail(z, what);
	assert_int_equal(moat_xfr_listings(z, &lv), 0);
	assert_int_equal(lv.n, 0); /* nothing published */
	moat_xfr_zone_free(z);
	srv_close(&s);
}

/* test_notauth_keyed - a signed NOTAUTH to a keyed request: the key is
 * what the primary refused, and the error says what to check */
static void test_notauth_keyed(void **state)
{
	struct srv s;
	srv_init(&s);
	struct moat_xfr_zone *z = zone_for(&s, KEYSTR);

	(void)state;
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	srv_msg(&s, NULL, 1, S_GOOD, KNOT_RCODE_NOTAUTH, 0);
	expect_fail(z, "NOTAUTH (rcode 9): the primary refused the request's TSIG key: check the "
		    "key's name, algorithm and secret, and the primary's ACL");
	moat_xfr_zone_free(z);
	srv_close(&s);
}

/* test_notauth_badkey - a key the primary does not know: NOTAUTH with an
 * unsigned TSIG error RR (RFC 8945 §5.3.2), said as such, not as "failed
 * to verify TSIG" */
static void test_notauth_badkey(void **state)
{
	struct srv s;
	srv_init(&s);
	struct moat_xfr_zone *z = zone_for(&s, KEYSTR);
	knot_pkt_t *r = knot_pkt_new(NULL, 65535, NULL);

	(void)state;
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(knot_pkt_init_response(r, s.q), KNOT_EOK);
	knot_wire_set_rcode(r->wire, KNOT_RCODE_NOTAUTH);
	assert_int_equal(knot_tsig_add(r->wire, &r->size, r->max_size, KNOT_RCODE_BADKEY,
				       s.q->tsig_rr), KNOT_EOK);
	uint8_t lb[2] = { (uint8_t)(r->size >> 8), (uint8_t)r->size };
	assert_int_equal(send(s.cfd, lb, 2, 0), 2);
	assert_int_equal(send(s.cfd, r->wire, r->size, 0), (ssize_t)r->size);
	knot_pkt_free(r);
	expect_fail(z, "NOTAUTH (rcode 9), TSIG error BADKEY: the primary refused the request's "
		    "TSIG key: check");
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_tsig_faults(void **state)
{
	(void)state;
	tsig_fault(S_GOOD, S_NONE, "message 2 is not TSIG-signed");
	tsig_fault(S_GOOD, S_BADKEY, "message 2: TSIG check failed");
	tsig_fault(S_BADKEY, S_GOOD, "message 1: TSIG check failed");
	tsig_fault(S_NONE, S_NONE, "message 1 is not TSIG-signed");
}

static void test_ixfr(void **state)
{
	struct srv s;
	struct moat_xfr_result res;
	struct moat_lvec lv = { 0 };
	(void)state;
	struct moat_xfr_zone *z = loaded(&s, KEYSTR);

	/* two diffs: 5 -> 6 (-10.2.0.192 +11.2.0.192), 6 -> 7 (+TXT-only 7.113.0.203) */
	static const char *const m1[] = { "@ SOA 7", "@ SOA 5", "10.2.0.192 A 127.0.0.2",
					   "@ SOA 6", "11.2.0.192 A 127.0.0.4", NULL };
	static const char *const m2[] = { "@ SOA 6", "@ SOA 7", "7.113.0.203 TXT x", "@ SOA 7", NULL };
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_IXFR);
	assert_int_equal(s.qserial, 5);
	srv_msg(&s, m1, 1, S_GOOD, 0, 0);
	srv_msg(&s, m2, 0, S_GOOD, 0, 0);
	assert_int_equal(run(z), MOAT_XFR_DONE);
	assert_int_equal(moat_xfr_take_result(z, &res), 0);
	assert_int_equal(res.kind, MOAT_XFR_DELTA);
	assert_int_equal(res.serial, 7);
	assert_int_equal(res.add.n, 2); /* 192.0.2.11, exclude 203.0.113.7 */
	assert_int_equal(res.del.n, 1); /* 192.0.2.10 */
	char p[80];
	assert_string_equal(moat_prefix_str(&res.del.v[0].pfx, p, sizeof(p)), "192.0.2.10/32");
	moat_lvec_free(&res.add);
	moat_lvec_free(&res.del);

	/* up to date: a lone SOA with our serial */
	static const char *const soa7[] = { "@ SOA 7", NULL };
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(s.qserial, 7);
	srv_msg(&s, soa7, 1, S_GOOD, 0, 0);
	assert_int_equal(run(z), MOAT_XFR_DONE);
	assert_int_equal(moat_xfr_take_result(z, &res), 0);
	assert_int_equal(res.kind, MOAT_XFR_UPTODATE);

	/* broken chain: nothing changes, the next attempt is an AXFR */
	assert_int_equal(moat_xfr_listings(z, &lv), 0);
	size_t before = lv.n;
	static const char *const gap[] = { "@ SOA 9", "@ SOA 7", "@ SOA 8", "12.2.0.192 A 127.0.0.2",
					    "@ SOA 10", "@ SOA 9", "@ SOA 9", NULL };
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	srv_msg(&s, gap, 1, S_GOOD, 0, 0);
	expect_fail(z, "serial chain");
	lv.n = 0;
	assert_int_equal(moat_xfr_listings(z, &lv), 0);
	assert_int_equal(lv.n, before);
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_AXFR);
	moat_xfr_abort(z, moat_clock_ms());
	moat_lvec_free(&lv);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_ixfr_bad_delete_rolls_back(void **state)
{
	struct srv s;
	struct moat_lvec a = { 0 }, b = { 0 };
	(void)state;
	struct moat_xfr_zone *z = loaded(&s, NULL);
	moat_xfr_listings(z, &a);
	/* adds one record, then deletes one we never had */
	static const char *const m[] = { "@ SOA 7", "@ SOA 5", "2.0.0.127 A 127.0.0.2", "@ SOA 6",
					  "13.2.0.192 A 127.0.0.2", "@ SOA 6",
					  "99.99.99.99 A 127.0.0.2", NULL };
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	srv_msg(&s, m, 1, S_NONE, 0, 0);
	expect_fail(z, "not in our copy");
	moat_xfr_listings(z, &b);
	moat_lvec_sort(&a);
	moat_lvec_sort(&b);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(moat_listing_cmp(&a.v[i], &b.v[i]), 0);
	moat_lvec_free(&a);
	moat_lvec_free(&b);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_ixfr_refused_falls_back(void **state)
{
	struct srv s;
	struct moat_xfr_result res;
	(void)state;
	struct moat_xfr_zone *z = loaded(&s, NULL);
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_IXFR);
	uint32_t gen = moat_xfr_conn_gen(z);
	srv_msg(&s, NULL, 1, S_NONE, KNOT_RCODE_REFUSED, 0);
	assert_int_equal(run(z), MOAT_XFR_AGAIN); /* reconnecting */
	assert_int_not_equal(moat_xfr_conn_gen(z), gen);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_AXFR);
	srv_msg(&s, base1, 1, S_NONE, 0, 0);
	srv_msg(&s, base2, 0, S_NONE, 0, 0);
	assert_int_equal(run(z), MOAT_XFR_DONE);
	assert_int_equal(moat_xfr_take_result(z, &res), 0);
	assert_int_equal(res.kind, MOAT_XFR_FULL);
	moat_lvec_free(&res.add);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_ixfr_answered_with_full_zone(void **state)
{
	struct srv s;
	struct moat_xfr_result res;
	(void)state;
	struct moat_xfr_zone *z = loaded(&s, NULL);
	static const char *const full[] = { "@ SOA 8", "2.0.0.127 A 127.0.0.2", "1.1.1.1 A 127.0.0.3",
					     "@ SOA 8", NULL };
	assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_IXFR);
	srv_msg(&s, full, 1, S_NONE, 0, 0);
	assert_int_equal(run(z), MOAT_XFR_DONE);
	assert_int_equal(moat_xfr_take_result(z, &res), 0);
	assert_int_equal(res.kind, MOAT_XFR_FULL); /* replaces everything */
	assert_int_equal(res.serial, 8);
	assert_int_equal(res.add.n, 2);
	moat_lvec_free(&res.add);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_primary_rotation(void **state)
{
	struct srv s;
	struct moat_xfr_cfg cfg = { .zone = ZONE, .nprimary = 2, .timeout_ms = 2000, .source = 4 };
	struct sockaddr_in *a0 = (struct sockaddr_in *)&cfg.primary[0];
	struct sockaddr_in *a1 = (struct sockaddr_in *)&cfg.primary[1];
	char err[100];
	(void)state;
	srv_init(&s);
	/* the first primary: a port nobody listens on (bound, not listening) */
	int dead = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t dl = sizeof(d);
	bind(dead, (struct sockaddr *)&d, sizeof(d));
	getsockname(dead, (struct sockaddr *)&d, &dl);
	*a0 = d;
	a1->sin_family = AF_INET;
	a1->sin_port = htons(s.port);
	a1->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct moat_xfr_zone *z = moat_xfr_zone_new(&cfg, err, sizeof(err));
	assert_non_null(z);
	int r = moat_xfr_start(z, moat_clock_ms());
	if (r == 0) {
		struct pollfd p = { .fd = moat_xfr_fd(z), .events = POLLOUT };
		poll(&p, 1, 1000);
		assert_int_equal(moat_xfr_io(z, EPOLLOUT, moat_clock_ms()), MOAT_XFR_FAILED);
	}
	struct moat_xfr_state st;
	moat_xfr_get_state(z, moat_clock_ms(), &st);
	assert_non_null(strstr(st.last_error, "refused"));
	/* the next attempt goes to the second primary */
	axfr(&s, z, S_NONE);
	close(dead);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

static void test_malformed_answers(void **state)
{
	static const struct {
		const char *name;
		const char *const rrs[6];
		int id_delta;
		uint8_t rcode;
		const char *err;
	} cases[] = {
		{ "closing SOA serial differs", { "@ SOA 5", "1.2.3.4 A 127.0.0.2", "@ SOA 6" }, 0, 0,
		  "closing SOA" },
		{ "records after the end", { "@ SOA 5", "@ SOA 5", "1.2.3.4 A 127.0.0.2" }, 0, 0,
		  "after the closing SOA" },
		{ "no SOA first", { "1.2.3.4 A 127.0.0.2", "@ SOA 5" }, 0, 0, "does not start" },
		{ "SOA not at apex", { "@ SOA 5", "x SOA 5", "@ SOA 5" }, 0, 0, "not at the apex" },
		{ "wrong id", { "@ SOA 5", "@ SOA 5" }, 1, 0, "wrong id" },
		{ "SERVFAIL", { NULL }, 0, KNOT_RCODE_SERVFAIL, "SERVFAIL (rcode 2)" },
		/* a primary that wants TSIG refuses an unsigned request: named,
		 * with what to check, not a bare "rcode 9" */
		{ "NOTAUTH unsigned", { NULL }, 0, KNOT_RCODE_NOTAUTH,
		  "NOTAUTH (rcode 9): the primary refused an unsigned request: give the zone "
		  "the TSIG key" },
		{ "REFUSED", { NULL }, 0, KNOT_RCODE_REFUSED, "REFUSED (rcode 5): the primary "
		  "does not allow this transfer: check its ACL" },
		{ "unnamed rcode", { NULL }, 0, 15, "unknown (rcode 15)" },
		{ "connection closed midway", { "@ SOA 5", "1.2.3.4 A 127.0.0.2" }, 0, 0, "closed" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s;
		srv_init(&s);
		struct moat_xfr_zone *z = zone_for(&s, NULL);
		assert_int_equal(moat_xfr_start(z, moat_clock_ms()), 0);
		srv_query(&s, z);
		srv_msg(&s, cases[i].rrs, 1, S_NONE, cases[i].rcode, cases[i].id_delta);
		shutdown(s.cfd, SHUT_WR);
		struct moat_xfr_state st;
		enum moat_xfr_status r = run(z);
		moat_xfr_get_state(z, moat_clock_ms(), &st);
		if (r != MOAT_XFR_FAILED || !strstr(st.last_error, cases[i].err))
			fail_msg("case %s: got %d '%s', want FAILED '%s'", cases[i].name, r,
				 st.last_error, cases[i].err);
		assert_false(st.have_data);
		assert_int_equal(st.failures, 1);
		moat_xfr_zone_free(z);
		srv_close(&s);
	}
}

static void test_timeout_and_timers(void **state)
{
	struct srv s;
	struct moat_xfr_state st;
	(void)state;
	srv_init(&s);
	struct moat_xfr_zone *z = zone_for(&s, NULL);
	int64_t t0 = moat_clock_ms();
	assert_true(moat_xfr_next_ms(z, t0) <= t0); /* never loaded: now */
	axfr(&s, z, S_NONE);
	moat_xfr_get_state(z, moat_clock_ms(), &st);
	/* SOA refresh 60, retry 30 (clamped to >= 10), expire 600 */
	assert_int_equal(st.refresh, 60);
	assert_int_equal(st.retry, 30);
	assert_int_equal(st.expire, 600);
	int64_t ok = st.last_success_ms;
	assert_int_equal(moat_xfr_next_ms(z, ok), ok + 60000);
	moat_xfr_notify(z, ok);
	assert_int_equal(moat_xfr_next_ms(z, ok + 5), ok + 5);
	/* forced: the next query is an AXFR although we have data */
	moat_xfr_force_axfr(z);
	assert_int_equal(moat_xfr_start(z, ok + 10), 0);
	srv_query(&s, z);
	assert_int_equal(s.qtype, KNOT_RRTYPE_AXFR);
	moat_xfr_abort(z, ok + 20);
	/* a transfer that gets no answer times out at its deadline */
	int64_t t1 = ok + 1000;
	assert_int_equal(moat_xfr_start(z, t1), 0);
	assert_int_equal(moat_xfr_start(z, t1), -EALREADY);
	assert_int_equal(moat_xfr_next_ms(z, t1), INT64_MAX);
	int64_t dl = moat_xfr_deadline_ms(z);
	assert_int_equal(dl, t1 + 2000);
	assert_int_equal(moat_xfr_io(z, 0, dl), MOAT_XFR_FAILED);
	moat_xfr_get_state(z, dl, &st);
	assert_non_null(strstr(st.last_error, "timeout"));
	assert_int_equal(moat_xfr_next_ms(z, dl), t1 + 30000); /* retry */
	moat_xfr_get_state(z, ok + 61000, &st);
	assert_true(st.stale);
	assert_false(st.expired);
	moat_xfr_get_state(z, ok + 601000, &st);
	assert_true(st.expired);
	moat_xfr_zone_free(z);
	srv_close(&s);
}

/* notify_msg - a NOTIFY query for qname, optionally signed */
static size_t notify_msg(uint8_t *buf, const char *qname, const knot_tsig_key_t *key, uint8_t *mac,
			 size_t *maclen)
{
	memset(buf, 0, 1024); /* knot_pkt_new over a buffer takes it as wire */
	knot_pkt_t *q = knot_pkt_new(buf, 1024, NULL);
	knot_dname_t *n = knot_dname_from_str_alloc(qname);
	knot_wire_set_id(q->wire, 0x4242);
	knot_wire_set_opcode(q->wire, KNOT_OPCODE_NOTIFY);
	knot_wire_set_aa(q->wire);
	if (key)
		knot_pkt_reserve(q, (uint16_t)knot_tsig_wire_size(key));
	assert_int_equal(knot_pkt_put_question(q, n, KNOT_CLASS_IN, KNOT_RRTYPE_SOA), KNOT_EOK);
	knot_dname_free(n, NULL);
	if (key)
		assert_int_equal(knot_tsig_sign(q->wire, &q->size, q->max_size, NULL, 0, mac, maclen,
						key, 0, 0), KNOT_EOK);
	size_t sz = q->size;
	knot_pkt_free(q);
	return sz;
}

/* notify_msg_at - a NOTIFY for qname signed with key as of `when` (the
 * TSIG's time signed; knot_tsig_sign takes a time only for a BADTIME
 * error RR, so the request carries that error field: servers ignore it) */
static size_t notify_msg_at(uint8_t *buf, const char *qname, const knot_tsig_key_t *key,
			    uint64_t when)
{
	uint8_t mac[64];
	size_t ml = sizeof(mac);

	memset(buf, 0, 1024);
	knot_pkt_t *q = knot_pkt_new(buf, 1024, NULL);
	knot_dname_t *n = knot_dname_from_str_alloc(qname);
	knot_wire_set_id(q->wire, 0x4343);
	knot_wire_set_opcode(q->wire, KNOT_OPCODE_NOTIFY);
	knot_pkt_reserve(q, (uint16_t)knot_tsig_wire_size(key) + 6);
	assert_int_equal(knot_pkt_put_question(q, n, KNOT_CLASS_IN, KNOT_RRTYPE_SOA), KNOT_EOK);
	knot_dname_free(n, NULL);
	assert_int_equal(knot_tsig_sign(q->wire, &q->size, q->max_size, NULL, 0, mac, &ml, key,
					KNOT_RCODE_BADTIME, when), KNOT_EOK);
	size_t sz = q->size;
	knot_pkt_free(q);
	return sz;
}

/* a NOTIFY whose TSIG fails gets NOTAUTH and a TSIG RR with the error
 * (RFC 8945 §5.2, §5.3.2): BADKEY and BADSIG unsigned (MAC size 0, the
 * request's key name), BADTIME signed with the request's MAC, the
 * request's time signed and ours in Other Data */
static void test_notify_tsig_errors(void **state)
{
	struct srv s;
	knot_tsig_key_t other;
	uint8_t q[1024], rep[1024], mac[64];
	size_t rl, idx, ml;
	struct sockaddr_in prim = { .sin_family = AF_INET, .sin_port = htons(53000),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	enum { BADSIG_K, BADKEY_NAME, BADKEY_KEYLESS, BADTIME_OLD, GOOD };
	static const struct {
		const char *name;
		int kind;
		uint16_t want_err;      /* TSIG error in the reply's TSIG RR */
		bool want_mac;          /* the reply is signed */
	} cases[] = {
		{ "wrong secret, same key name", BADSIG_K, KNOT_RCODE_BADSIG, false },
		{ "a key name the zone does not have", BADKEY_NAME, KNOT_RCODE_BADKEY, false },
		{ "signed NOTIFY for a zone without a key", BADKEY_KEYLESS, KNOT_RCODE_BADKEY, false },
		{ "good key, signed an hour ago", BADTIME_OLD, KNOT_RCODE_BADTIME, true },
		{ "good key, now", GOOD, KNOT_RCODE_NOERROR, true },
	};

	(void)state;
	srv_init(&s);
	assert_int_equal(knot_tsig_key_init_str(&other, "hmac-sha256:otherkey:" SECRET), KNOT_EOK);
	struct moat_xfr_zone *zs[2] = { zone_for(&s, NULL), NULL };
	struct moat_xfr_cfg cfg = { .zone = "keyed.test", .nprimary = 1, .tsig = KEYSTR };
	char err[100];

	memcpy(&cfg.primary[0], &prim, sizeof(prim));
	zs[1] = moat_xfr_zone_new(&cfg, err, sizeof(err));
	assert_non_null(zs[1]);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const knot_tsig_key_t *k = cases[i].kind == BADSIG_K ? &s.bad :
					   cases[i].kind == BADKEY_NAME ? &other : &s.key;
		const char *zone = cases[i].kind == BADKEY_KEYLESS ? ZONE : "keyed.test.";
		size_t n;

		ml = sizeof(mac);
		if (cases[i].kind == BADTIME_OLD)
			n = notify_msg_at(q, zone, k, (uint64_t)time(NULL) - 3600);
		else
			n = notify_msg(q, zone, k, mac, &ml);
		rl = 0;
		enum moat_notify_res res = moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim,
							      rep, sizeof(rep), &rl, &idx);
		knot_pkt_t *r = knot_pkt_new(rep, (uint16_t)rl, NULL);

		assert_non_null(r);
		if (rl < 12 || knot_pkt_parse(r, 0) != KNOT_EOK || !r->tsig_rr)
			fail_msg("%s: reply of %zu bytes without a TSIG RR", cases[i].name, rl);
		uint16_t got_err = knot_tsig_rdata_error(r->tsig_rr);
		size_t got_ml = knot_tsig_rdata_mac_length(r->tsig_rr);
		uint8_t rc = knot_wire_get_rcode(rep);
		uint8_t want_rc = cases[i].want_err ? KNOT_RCODE_NOTAUTH : KNOT_RCODE_NOERROR;

		if (got_err != cases[i].want_err || (got_ml > 0) != cases[i].want_mac ||
		    rc != want_rc ||
		    res != (cases[i].want_err ? MOAT_NOTIFY_REFUSE : MOAT_NOTIFY_ACCEPT) ||
		    !knot_dname_is_equal(r->tsig_rr->owner, k->name))
			fail_msg("%s: got rcode %u TSIG error %u mac %zu bytes res %d, want rcode %u "
				 "error %u %s", cases[i].name, rc, got_err, got_ml, res, want_rc,
				 cases[i].want_err, cases[i].want_mac ? "signed" : "unsigned");
		if (cases[i].kind == BADTIME_OLD) {
			/* our time in Other Data (6 octets), the request's time kept,
			 * and a MAC the client verifies (its time check then says
			 * BADTIME: the MAC is checked first) */
			int64_t ours = 0;
			const uint8_t *od = knot_tsig_rdata_other_data(r->tsig_rr);

			assert_int_equal(knot_tsig_rdata_other_data_length(r->tsig_rr), 6);
			for (int b = 0; b < 6; b++)
				ours = ours << 8 | od[b];
			assert_true(llabs(ours - (int64_t)time(NULL)) <= 2);
			assert_true(llabs((int64_t)knot_tsig_rdata_time_signed(r->tsig_rr) -
					  ((int64_t)time(NULL) - 3600)) <= 2);
		}
		knot_pkt_free(r);
	}
	knot_tsig_key_deinit(&other);
	moat_xfr_zone_free(zs[0]);
	moat_xfr_zone_free(zs[1]);
	srv_close(&s);
}

static void test_notify(void **state)
{
	struct srv s;
	uint8_t q[1024], rep[1024], mac[64];
	size_t rl, idx = 99, ml = sizeof(mac);
	struct sockaddr_in prim = { .sin_family = AF_INET, .sin_port = htons(53000),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in other = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201) };

	(void)state;
	srv_init(&s);
	struct moat_xfr_zone *zs[2] = { zone_for(&s, NULL), NULL };
	{
		/* a second zone with a key */
		struct moat_xfr_cfg cfg = { .zone = "keyed.test", .nprimary = 1, .tsig = KEYSTR };
		memcpy(&cfg.primary[0], &prim, sizeof(prim));
		char err[100];
		zs[1] = moat_xfr_zone_new(&cfg, err, sizeof(err));
		assert_non_null(zs[1]);
	}
	size_t n = notify_msg(q, ZONE, NULL, NULL, NULL);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_ACCEPT);
	assert_int_equal(idx, 0);
	assert_true(rl >= 12);
	assert_int_equal(knot_wire_get_id(rep), 0x4242);
	assert_true(knot_wire_get_qr(rep));
	assert_int_equal(knot_wire_get_opcode(rep), KNOT_OPCODE_NOTIFY);
	assert_int_equal(knot_wire_get_rcode(rep), KNOT_RCODE_NOERROR);
	/* from an address that is not a primary */
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&other, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_REFUSE);
	assert_int_equal(knot_wire_get_rcode(rep), KNOT_RCODE_REFUSED);
	/* a zone we do not have */
	n = notify_msg(q, "other.test.", NULL, NULL, NULL);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_REFUSE);
	assert_int_equal(knot_wire_get_rcode(rep), KNOT_RCODE_NOTAUTH);
	/* keyed zone: unsigned refused, signed accepted with a signed reply */
	n = notify_msg(q, "keyed.test.", NULL, NULL, NULL);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_REFUSE);
	n = notify_msg(q, "keyed.test.", &s.key, mac, &ml);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_ACCEPT);
	assert_int_equal(idx, 1);
	knot_pkt_t *r = knot_pkt_new(rep, (uint16_t)rl, NULL);
	assert_int_equal(knot_pkt_parse(r, 0), KNOT_EOK);
	assert_non_null(r->tsig_rr);
	assert_int_equal(knot_tsig_client_check(r->tsig_rr, r->wire, r->size, mac, ml, &s.key, 0),
			 KNOT_EOK);
	knot_pkt_free(r);
	ml = sizeof(mac);
	n = notify_msg(q, "keyed.test.", &s.bad, mac, &ml);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_REFUSE);
	assert_int_equal(knot_wire_get_rcode(rep), KNOT_RCODE_NOTAUTH);
	/* garbage and responses get no reply */
	assert_int_equal(moat_notify_handle(zs, 2, (const uint8_t *)"\1\2\3", 3,
					    (struct sockaddr *)&prim, rep, sizeof(rep), &rl, &idx),
			 MOAT_NOTIFY_DROP);
	n = notify_msg(q, ZONE, NULL, NULL, NULL);
	knot_wire_set_qr(q);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_DROP);
	/* a plain query is answered NOTIMP */
	n = notify_msg(q, ZONE, NULL, NULL, NULL);
	knot_wire_set_opcode(q, KNOT_OPCODE_QUERY);
	assert_int_equal(moat_notify_handle(zs, 2, q, n, (struct sockaddr *)&prim, rep, sizeof(rep),
					    &rl, &idx), MOAT_NOTIFY_REFUSE);
	assert_int_equal(knot_wire_get_rcode(rep), KNOT_RCODE_NOTIMPL);
	moat_xfr_zone_free(zs[0]);
	moat_xfr_zone_free(zs[1]);
	srv_close(&s);
}

static void test_config_errors(void **state)
{
	struct moat_xfr_cfg cfg = { .zone = "bl.test", .nprimary = 0 };
	char err[200];
	(void)state;
	assert_null(moat_xfr_zone_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "no primary"));
	cfg.nprimary = 1;
	cfg.tsig = "nonsense";
	assert_null(moat_xfr_zone_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "TSIG"));
	cfg.tsig = NULL;
	cfg.zone = "a..b";
	assert_null(moat_xfr_zone_new(&cfg, err, sizeof(err)));
	assert_int_equal(moat_serial_cmp(1, 2), -1);
	assert_int_equal(moat_serial_cmp(0xffffffffu, 1), -1);
	assert_int_equal(moat_serial_cmp(5, 5), 0);
	assert_int_equal(moat_serial_cmp(0x80000005u, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_axfr_plain_and_signed),
		cmocka_unit_test(test_tsig_faults),
		cmocka_unit_test(test_notauth_keyed),
		cmocka_unit_test(test_notauth_badkey),
		cmocka_unit_test(test_ixfr),
		cmocka_unit_test(test_ixfr_bad_delete_rolls_back),
		cmocka_unit_test(test_ixfr_refused_falls_back),
		cmocka_unit_test(test_ixfr_answered_with_full_zone),
		cmocka_unit_test(test_primary_rotation),
		cmocka_unit_test(test_malformed_answers),
		cmocka_unit_test(test_timeout_and_timers),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_notify_tsig_errors),
		cmocka_unit_test(test_config_errors),
	};
	return cmocka_run_group_tests_name("xfr", tests, NULL, NULL);
}
