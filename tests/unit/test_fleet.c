/* test_fleet.c - the fleet zone's TXT (sources/fleet_rec.c) read as every
 * consumer reads it, and RFC 2136 UPDATEs (sources/update.c) as a primary
 * sees them: opcode, zone, records, TSIG; answers NOERROR, REFUSED and
 * unsigned; a batch larger than one message is split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "clock.h"
#include "fleet_rec.h"
#include "fleet_view.h"
#include "prefix.h"
#include "update.h"

struct judge_case {
	const char *txt;
	const char *own;
	time_t now;
	enum moat_fleet_verdict want;
	time_t exp;
};

static const struct judge_case judge_cases[] = {
	{ "moat:a exp=2000 reason=dnsbl", "b", 1000, MOAT_FLEET_KEEP, 2000 },
	{ "moat:a exp=2000 reason=dnsbl", "b", 2000, MOAT_FLEET_EXPIRED, 2000 },
	{ "moat:a exp=2000 reason=dnsbl", "b", 3000, MOAT_FLEET_EXPIRED, 2000 },
	{ "moat:a exp=2000 reason=dnsbl", "a", 1000, MOAT_FLEET_OWN, 2000 },
	{ "moat:a exp=2000", "", 1000, MOAT_FLEET_KEEP, 2000 },
	/* another TXT string first (joined by a space) */
	{ "listed by hand moat:a exp=2000", "b", 1000, MOAT_FLEET_KEEP, 2000 },
	{ "RFC 5782 test point", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ NULL, "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "moat:a reason=dnsbl", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "moat:a exp=", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "moat:a exp=12x", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "moat:a exp=-5", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "moat: exp=2000", "b", 1000, MOAT_FLEET_NOTAG, 0 },
	{ "xmoat:a exp=2000", "b", 1000, MOAT_FLEET_NOTAG, 0 },
};

static void test_judge_table(void **st)
{
	(void)st;
	for (size_t i = 0; i < sizeof(judge_cases) / sizeof(judge_cases[0]); i++) {
		const struct judge_case *c = &judge_cases[i];
		time_t exp;
		enum moat_fleet_verdict got = moat_fleet_judge(c->txt, c->own, c->now, &exp);

		if (got != c->want || (c->want != MOAT_FLEET_NOTAG && exp != c->exp))
			fail_msg("case %zu \"%s\": got %d exp %lld, want %d exp %lld", i,
				 c->txt ? c->txt : "(null)", got, (long long)exp, c->want,
				 (long long)c->exp);
	}
}

static void test_txt_roundtrip(void **st)
{
	char buf[MOAT_FLEET_TXT_MAX], id[MOAT_FLEET_ID_MAX + 1], small[10];
	time_t exp;

	(void)st;
	assert_true(moat_fleet_txt("mx-7", 1800000000, MOAT_FLEET_CONTENT, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "moat:mx-7 exp=1800000000 reason=content");
	assert_int_equal(moat_fleet_txt_parse(buf, id, sizeof(id), &exp), 0);
	assert_string_equal(id, "mx-7");
	assert_int_equal(exp, 1800000000);
	assert_int_equal(moat_fleet_txt("a", 1, 2, small, sizeof(small)), -ENOSPC);
	assert_true(moat_fleet_id_valid("a_b-9"));
	assert_false(moat_fleet_id_valid(""));
	assert_false(moat_fleet_id_valid("a b"));
	assert_false(moat_fleet_id_valid("a:b"));
	assert_false(moat_fleet_id_valid("123456789012345678901234567890123"));
}

#define KEY "hmac-sha256:key_a:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="

/* listener - a TCP socket on 127.0.0.1, its address in ss */
static int listener(struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	socklen_t sl = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &sl), 0);
	return fd;
}

/* drive - moat_upd_io until it leaves AGAIN, serving the primary's side
 * with serve() once the message is in */
static enum moat_upd_status drive(struct moat_upd *u, int lfd,
				  void (*serve)(int cfd, const uint8_t *q, size_t n))
{
	enum moat_upd_status s;
	int cfd = -1;
	uint8_t buf[70000];
	size_t have = 0;

	for (int i = 0; i < 2000; i++) {
		s = moat_upd_io(u, 0, moat_clock_ms());
		if (s != MOAT_UPD_AGAIN)
			break;
		if (cfd < 0) {
			struct pollfd p = { .fd = lfd, .events = POLLIN };

			if (poll(&p, 1, 5) == 1)
				cfd = accept(lfd, NULL, NULL);
			continue;
		}
		struct pollfd p = { .fd = cfd, .events = POLLIN };

		if (poll(&p, 1, 5) == 1) {
			ssize_t n = recv(cfd, buf + have, sizeof(buf) - have, 0);

			if (n > 0)
				have += (size_t)n;
			if (have >= 2 && have == 2 + ((size_t)buf[0] << 8 | buf[1])) {
				serve(cfd, buf + 2, have - 2);
				have = 0;
			}
		}
	}
	if (cfd >= 0)
		close(cfd);
	return s;
}

static knot_tsig_key_t key;
static int nrecords, nanswer;

/* send_framed - one DNS message with its length */
static void send_framed(int fd, const uint8_t *m, size_t n)
{
	uint8_t out[2 + 65535];

	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	memcpy(out + 2, m, n);
	assert_int_equal(send(fd, out, n + 2, 0), (ssize_t)(n + 2));
}

/* check_query - an UPDATE of zone fleet.test, signed with the key */
static knot_pkt_t *check_query(uint8_t *copy, const uint8_t *q, size_t n)
{
	knot_pkt_t *pkt;

	memcpy(copy, q, n);
	pkt = knot_pkt_new(copy, (uint16_t)n, NULL);
	assert_non_null(pkt);
	assert_int_equal(knot_pkt_parse(pkt, 0), KNOT_EOK);
	assert_int_equal(knot_wire_get_opcode(pkt->wire), KNOT_OPCODE_UPDATE);
	assert_int_equal(knot_pkt_qtype(pkt), KNOT_RRTYPE_SOA);
	assert_non_null(pkt->tsig_rr);
	assert_int_equal(knot_tsig_server_check(pkt->tsig_rr, pkt->wire, pkt->size, &key), KNOT_EOK);
	nrecords = knot_wire_get_nscount(pkt->wire);
	return pkt;
}

/* serve_ok - a signed NOERROR answer */
static void serve_ok(int cfd, const uint8_t *q, size_t n)
{
	uint8_t copy[65535], ans[512], digest[64];
	knot_pkt_t *pkt = check_query(copy, q, n);
	size_t dl = sizeof(digest), al = KNOT_WIRE_HEADER_SIZE;

	memcpy(ans, q, KNOT_WIRE_HEADER_SIZE);
	knot_wire_set_qr(ans);
	knot_wire_set_qdcount(ans, 0);
	knot_wire_set_nscount(ans, 0);
	knot_wire_set_arcount(ans, 0);
	assert_int_equal(knot_tsig_sign(ans, &al, sizeof(ans), knot_tsig_rdata_mac(pkt->tsig_rr),
					knot_tsig_rdata_mac_length(pkt->tsig_rr), digest, &dl, &key, 0,
					knot_tsig_rdata_time_signed(pkt->tsig_rr)),
			 KNOT_EOK);
	knot_pkt_free(pkt);
	send_framed(cfd, ans, al);
	nanswer++;
}

/* serve_plain - an unsigned answer with this rcode: REFUSED is what an
 * ACL miss gives; NOERROR unsigned must not be taken as applied */
static void serve_plain(int cfd, const uint8_t *q, uint8_t rcode)
{
	uint8_t ans[KNOT_WIRE_HEADER_SIZE];

	memcpy(ans, q, sizeof(ans));
	knot_wire_set_qr(ans);
	knot_wire_set_rcode(ans, rcode);
	knot_wire_set_qdcount(ans, 0);
	knot_wire_set_nscount(ans, 0);
	knot_wire_set_arcount(ans, 0);
	send_framed(cfd, ans, sizeof(ans));
	nanswer++;
}

static void serve_refused(int cfd, const uint8_t *q, size_t n)
{
	(void)n;
	serve_plain(cfd, q, KNOT_RCODE_REFUSED);
}

static void serve_unsigned(int cfd, const uint8_t *q, size_t n)
{
	(void)n;
	serve_plain(cfd, q, KNOT_RCODE_NOERROR);
}

static void test_update_exchange(void **st)
{
	struct moat_upd_cfg c = { .zone = "fleet.test", .tsig = KEY, .timeout_ms = 3000 };
	struct moat_upd_rr rr[3];
	char err[256];
	int lfd = listener(&c.primary), k;
	struct moat_upd *u;

	(void)st;
	assert_int_equal(knot_tsig_key_init_str(&key, KEY), KNOT_EOK);
	u = moat_upd_new(&c, err, sizeof(err));
	assert_non_null(u);
	memset(rr, 0, sizeof(rr));
	moat_prefix_parse("192.0.2.10", &rr[0].addr);
	rr[0].code = MOAT_FLEET_OP_DROP;
	rr[0].ttl = 60;
	rr[0].txt = "moat:a exp=2000000000 reason=operator-drop";
	moat_prefix_parse("2001:db8::1", &rr[1].addr);
	rr[1].code = MOAT_FLEET_DNSBL;
	rr[1].txt = "moat:a exp=2000000000 reason=dnsbl";
	moat_prefix_parse("192.0.2.11", &rr[2].addr);
	rr[2].del = true;

	/* NOERROR, signed: DONE; 2 sets x 3 records + 1 delete */
	k = moat_upd_start(u, rr, 3, moat_clock_ms());
	assert_int_equal(k, 3);
	assert_int_equal(moat_upd_start(u, rr, 3, moat_clock_ms()), -EBUSY);
	assert_int_equal(drive(u, lfd, serve_ok), MOAT_UPD_DONE);
	assert_int_equal(nrecords, 7);
	assert_int_equal(moat_upd_rcode(u), 0);

	/* REFUSED: its name in the error */
	assert_int_equal(moat_upd_start(u, rr, 1, moat_clock_ms()), 1);
	assert_int_equal(drive(u, lfd, serve_refused), MOAT_UPD_REFUSED);
	assert_int_equal(moat_upd_rcode(u), KNOT_RCODE_REFUSED);
	assert_non_null(strstr(moat_upd_error(u), "REFUSED (rcode 5)"));

	/* NOERROR without our TSIG: not taken as applied */
	assert_int_equal(moat_upd_start(u, rr, 1, moat_clock_ms()), 1);
	assert_int_equal(drive(u, lfd, serve_unsigned), MOAT_UPD_FAILED);
	assert_non_null(strstr(moat_upd_error(u), "not signed"));

	/* a record that is not one address */
	struct moat_upd_rr bad = { .code = 2 };

	moat_prefix_parse("192.0.2.0/24", &bad.addr);
	assert_int_equal(moat_upd_start(u, &bad, 1, moat_clock_ms()), -EINVAL);

	/* 2000 records do not fit one message: a prefix of them does */
	struct moat_upd_rr *many = calloc(2000, sizeof(*many));

	for (int i = 0; i < 2000; i++) {
		many[i].addr.family = MOAT_AF_INET;
		many[i].addr.plen = 32;
		many[i].addr.addr[0] = 100;
		many[i].addr.addr[1] = 64;
		many[i].addr.addr[2] = (uint8_t)(i / 200);
		many[i].addr.addr[3] = (uint8_t)(i % 200 + 1);
		many[i].code = 4;
		many[i].txt = "moat:a exp=2000000000 reason=dnsbl";
	}
	k = moat_upd_start(u, many, 2000, moat_clock_ms());
	assert_true(k > 100 && k < 2000);
	assert_true(moat_upd_bytes(u) <= 65535);
	assert_int_equal(drive(u, lfd, serve_ok), MOAT_UPD_DONE);
	assert_int_equal(nrecords, 4 * k - k); /* ANY delete, A, TXT per name */
	free(many);

	/* no primary listening: FAILED, never REFUSED */
	close(lfd);
	assert_int_equal(moat_upd_start(u, rr, 1, moat_clock_ms()), 1);
	enum moat_upd_status s;

	for (int i = 0; i < 200 && (s = moat_upd_io(u, 0, moat_clock_ms())) == MOAT_UPD_AGAIN; i++)
		usleep(5000);
	assert_int_equal(s, MOAT_UPD_FAILED);
	moat_upd_free(u);
	knot_tsig_key_deinit(&key);

	/* bad configuration */
	c.tsig = "nonsense";
	assert_null(moat_upd_new(&c, err, sizeof(err)));
}

/* the view against a plain array model: 20,000 random set/del/get over
 * 3,000 addresses (IPv4 and IPv6, so probe runs collide and deletions
 * shift), then the due times popped in order, stale ones skipped */
static void test_view_model(void **state)
{
	enum { N = 3000, OPS = 20000 };
	static struct moat_prefix a[N];
	static time_t want[N]; /* -1: not kept */
	struct moat_fleet_view *v = moat_fleet_view_new();
	unsigned seed = 7;

	(void)state;
	assert_non_null(v);
	for (int i = 0; i < N; i++) {
		a[i] = (struct moat_prefix){ .family = i % 3 ? MOAT_AF_INET : MOAT_AF_INET6,
					     .plen = i % 3 ? 32 : 128 };
		a[i].addr[0] = (uint8_t)(i >> 8);
		a[i].addr[1] = (uint8_t)i;
		want[i] = -1;
	}
	for (int k = 0; k < OPS; k++) {
		int i = (int)(rand_r(&seed) % N), op = (int)(rand_r(&seed) % 3);
		time_t e;

		if (op == 0) {
			e = (time_t)(rand_r(&seed) % 1000); /* 0: kept, no time */
			assert_int_equal(moat_fleet_view_set(v, &a[i], e), 0);
			want[i] = e;
		} else if (op == 1) {
			moat_fleet_view_del(v, &a[i]);
			want[i] = -1;
		} else {
			int got = moat_fleet_view_get(v, &a[i], &e);

			assert_int_equal(got, want[i] >= 0);
			if (got)
				assert_int_equal(e, want[i]);
		}
	}
	size_t kept = 0, timed = 0;

	for (int i = 0; i < N; i++) {
		time_t e;

		kept += want[i] >= 0;
		timed += want[i] > 0;
		assert_int_equal(moat_fleet_view_get(v, &a[i], &e), want[i] >= 0);
	}
	assert_int_equal(moat_fleet_view_size(v), kept);
	/* every timed address comes out once, in time order, the others never */
	struct moat_prefix p;
	time_t e, last = 0;
	size_t n = 0;

	assert_true(moat_fleet_view_next(v) <= 1000);
	while (moat_fleet_view_pop_due(v, 1000, &p, &e)) {
		assert_true(e >= last);
		last = e;
		for (int i = 0; i < N; i++)
			if (moat_prefix_cmp(&a[i], &p) == 0)
				assert_int_equal(want[i], e);
		moat_fleet_view_del(v, &p); /* what the consumer does with an ended one */
		n++;
	}
	assert_int_equal(n, timed);
	assert_int_equal(moat_fleet_view_size(v), kept - timed);
	moat_fleet_view_clear(v);
	assert_int_equal(moat_fleet_view_size(v), 0);
	assert_int_equal(moat_fleet_view_get(v, &a[1], &e), 0);
	moat_fleet_view_free(v);
}

/* a time re-set later is not due at the old one; one not yet due stays */
static void test_view_due(void **state)
{
	struct moat_fleet_view *v = moat_fleet_view_new();
	struct moat_prefix x, y, p;
	time_t e;

	(void)state;
	assert_int_equal(moat_prefix_parse("192.0.2.1", &x), 0);
	assert_int_equal(moat_prefix_parse("2001:db8::1", &y), 0);
	assert_int_equal(moat_fleet_view_set(v, &x, 100), 0);
	assert_int_equal(moat_fleet_view_set(v, &y, 150), 0);
	assert_int_equal(moat_fleet_view_next(v), 100);
	assert_int_equal(moat_fleet_view_set(v, &x, 200), 0); /* refreshed */
	assert_int_equal(moat_fleet_view_pop_due(v, 120, &p, &e), 0); /* x's 100 is stale */
	assert_int_equal(moat_fleet_view_pop_due(v, 160, &p, &e), 1);
	assert_int_equal(moat_prefix_cmp(&p, &y), 0);
	assert_int_equal(e, 150);
	moat_fleet_view_del(v, &y);
	assert_int_equal(moat_fleet_view_pop_due(v, 199, &p, &e), 0);
	assert_int_equal(moat_fleet_view_pop_due(v, 200, &p, &e), 1);
	assert_int_equal(moat_prefix_cmp(&p, &x), 0);
	assert_int_equal(moat_fleet_view_get(v, &x, &e), 1); /* popped, still kept */
	moat_fleet_view_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge_table),
		cmocka_unit_test(test_view_model),
		cmocka_unit_test(test_view_due),
		cmocka_unit_test(test_txt_roundtrip),
		cmocka_unit_test(test_update_exchange),
	};
	return cmocka_run_group_tests_name("fleet", tests, NULL, NULL);
}
