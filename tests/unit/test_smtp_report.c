/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_smtp_report.c - moat-smtpd's moat-controld client (report.c) against
 * a real Unix socket played by the test: smtp.hello goes first, reports
 * carry action/ttl/reason, relayed requests (smtp.stats, rules.reload,
 * unknown, garbage) are answered, lookups reach their session exactly once
 * (answer or timeout), a lost connection is retried with the
 * report queued meanwhile, and the report queue is bounded and never
 * blocks a worker while moat-controld is away.  The cases share report.c's
 * state and run in order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "ctlproto.h"
#include "smtpd.h"

struct smtpd_config *g_cfg;
static struct smtpd_config cfg;
static char dir[48], path[96];
static int lfd = -1, sfd = -1;   /* the test's listener and accepted peer */
static struct ctl_buf sb;

/* stand-ins for session.c: record what a session was told */
static char ctl_got[16];
static int ctl_calls, ctl_live;
/* the e2e tests (test_appliance) cover reports that wait for a lookup */
void session_report_verdict(struct session *s, const char *action)
{
	(void)s;
	(void)action;
}

void session_ctl_done(struct session *s, const char *action, int live_only)
{
	ctl_live = live_only;
	s->ctl_pending = 0;
	snprintf(ctl_got, sizeof(ctl_got), "%s", action);
	ctl_calls++;
}
void session_release(struct session *s) { (void)s; }

static struct worker fw;
static struct session fs;

/* counter - current value of one moat-smtpd counter */
struct cget { const char *name; uint64_t v; };
static void cget_fn(const char *name, uint64_t v, void *arg)
{
	struct cget *c = arg;

	if (!strcmp(name, c->name))
		c->v = v;
}
static uint64_t counter(const char *name)
{
	struct cget c = { name, 0 };

	stats_foreach(cget_fn, &c);
	return c.v;
}

/* listen_now - the test's "moat-controld" socket */
static void listen_now(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
}

/* pump - run moat-smtpd's main-loop side for ms, accepting when asked */
static void pump(int ms, int want_accept)
{
	int64_t end = moat_clock_ms() + ms;

	while (moat_clock_ms() < end) {
		struct pollfd p[2];
		int n = report_pollfds(p);

		poll(p, (nfds_t)n, 10);
		report_tick();
		if (want_accept && sfd < 0 && lfd >= 0) {
			sfd = accept(lfd, NULL, NULL);
			if (sfd >= 0) {
				ctl_buf_free(&sb);
				ctl_buf_init(&sb, CTL_MAX_REPLY);
				return;
			}
		}
	}
}

/* peer_recv - next message moat-smtpd sent, pumping while waiting */
static struct json_object *peer_recv(void)
{
	for (int i = 0; i < 200; i++) {
		struct json_object *m;

		if (ctl_recv(sfd, &sb, &m, 5) == 1)
			return m;
		pump(10, 0);
	}
	fail_msg("moat-smtpd sent nothing in 2 s");
	return NULL;
}

/* peer_send - a line to moat-smtpd */
static void peer_send(const char *line)
{
	assert_int_equal(write(sfd, line, strlen(line)), (ssize_t)strlen(line));
}

static int setup(void **st)
{
	(void)st;
	snprintf(dir, sizeof(dir), "/tmp/moat-report-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	config_defaults(&cfg);
	snprintf(cfg.hostname, sizeof(cfg.hostname), "mx.test");
	snprintf(cfg.controld_socket, sizeof(cfg.controld_socket), "%s", path);
	cfg.report_ttl = 600;
	snprintf(cfg.report_action, sizeof(cfg.report_action), "tarpit");
	cfg.controld_lookup_timeout_ms = 200;
	g_cfg = &cfg;
	pthread_mutex_init(&fw.cq_lock, NULL);
	fw.wake_ev.fd = eventfd(0, EFD_NONBLOCK);
	fs.w = &fw;
	snprintf(fs.ip, sizeof(fs.ip), "192.0.2.44");
	ctl_buf_init(&sb, CTL_MAX_REPLY);
	report_init(&cfg);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	report_fini();
	ctl_buf_free(&sb);
	if (sfd >= 0)
		close(sfd);
	if (lfd >= 0)
		close(lfd);
	unlink(path);
	rmdir(dir);
	close(fw.wake_ev.fd);
	return 0;
}

/* a report made before moat-controld exists waits; hello still goes first */
static void test_hello_first_then_report(void **st)
{
	(void)st;
	report_listed("192.0.2.7", "q.test", "127.0.0.2");
	pump(50, 0); /* no socket yet: nothing blocks, nothing is lost */
	listen_now();
	pump(3000, 1);
	assert_true(sfd >= 0);
	struct json_object *h = peer_recv(), *r = peer_recv();
	const char *got_h = json_object_to_json_string(h), *got_r = json_object_to_json_string(r);

	assert_string_equal(ctl_get_str(h, "cmd"), "smtp.hello");
	assert_string_equal(ctl_get_str(h, "name"), "mx.test");
	assert_string_equal(ctl_get_str(r, "cmd"), "smtp.report");
	int64_t ttl = 0;

	ctl_get_int(r, "ttl", &ttl);
	if (strcmp(ctl_get_str(r, "prefix"), "192.0.2.7") || strcmp(ctl_get_str(r, "action"), "tarpit") ||
	    ttl != 600 || strcmp(ctl_get_str(r, "reason"), "moat-smtpd: dnsbl q.test 127.0.0.2") ||
	    strcmp(ctl_get_str(r, "kind") ? ctl_get_str(r, "kind") : "", "dnsbl"))
		fail_msg("report: got %s (hello %s)", got_r, got_h);
	char line[256];

	snprintf(line, sizeof(line), "{\"id\":%lld,\"ok\":true,\"result\":{\"accept_reports\":true}}\n"
		 "{\"id\":%lld,\"ok\":true,\"result\":{}}\n", (long long)ctl_msg_id(h), (long long)ctl_msg_id(r));
	json_object_put(h);
	json_object_put(r);
	peer_send(line);
	pump(100, 0);
	assert_int_equal(counter("controld.reported"), 1);
}

/* relayed requests: stats flat numbers, reload honest, unknown and garbage */
static void test_relayed_requests(void **st)
{
	static const struct {
		const char *send;
		const char *want;   /* python-free check: substring of the reply */
	} cases[] = {
		{ "{\"id\":77,\"cmd\":\"smtp.stats\"}\n", "\"controld.reported\":1" },
		{ "{\"id\":78,\"cmd\":\"rules.reload\"}\n",
		  "{\"id\":78,\"ok\":true,\"result\":{\"filters\":0,\"reloaded\":0,\"without_rules\":0,\"detail\":\"no content filter configured: nothing to reload\"}}" },
		{ "{\"id\":79,\"cmd\":\"zone.refresh\"}\n", "{\"id\":79,\"ok\":false,\"code\":3," },
		{ "this is not json\n{\"id\":80,\"cmd\":\"ping\"}\n", "{\"id\":80,\"ok\":true,\"result\":{}}" },
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		peer_send(cases[i].send);
		struct json_object *m = peer_recv();
		const char *got = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);

		if (!strstr(got, cases[i].want))
			fail_msg("case %zu: got %s, want %s", i, got, cases[i].want);
		if (i == 0) {
			struct json_object *res;

			json_object_object_get_ex(m, "result", &res);
			json_object_object_foreach(res, k, v)
				if (!json_object_is_type(v, json_type_int))
					fail_msg("smtp.stats %s is not a number", k);
		}
		json_object_put(m);
	}
	assert_int_equal(counter("controld.bad_message"), 1);
}

/* lookups: the answer reaches the session once; no answer is a timeout */
static void test_lookup(void **st)
{
	static const struct {
		const char *answer;  /* what "moat-controld" replies, NULL = nothing */
		const char *want;    /* what the session is told */
		int live;            /* ... and whether only live zones list it */
		const char *counter;
	} cases[] = {
		{ "\"ok\":true,\"result\":{\"addr\":\"192.0.2.44\",\"action\":\"allow\"}", "allow", 0, "controld.lookup_answered" },
		{ "\"ok\":true,\"result\":{\"action\":\"pass\",\"action_with_live\":\"drop\"}", "drop", 1, "controld.lookup_answered" },
		{ "\"ok\":true,\"result\":{\"action\":\"tarpit\",\"action_with_live\":\"tarpit\"}", "tarpit", 0, "controld.lookup_answered" },
		{ "\"ok\":false,\"code\":2,\"error\":\"bad\"", "", 0, "controld.lookup_failed" },
		{ NULL, "", 0, "controld.lookup_timeout" },
	};

	(void)st;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t before = counter(cases[i].counter);

		ctl_calls = 0;
		assert_int_equal(report_lookup(&fs), 1);
		assert_int_equal(fs.refs, 1);
		struct json_object *m = peer_recv();

		if (strcmp(ctl_get_str(m, "cmd"), "lookup") || strcmp(ctl_get_str(m, "addr"), "192.0.2.44"))
			fail_msg("case %zu: sent %s", i, json_object_to_json_string(m));
		if (cases[i].answer) {
			char line[256];

			snprintf(line, sizeof(line), "{\"id\":%lld,%s}\n", (long long)ctl_msg_id(m), cases[i].answer);
			peer_send(line);
		}
		json_object_put(m);
		pump(cases[i].answer ? 50 : 400, 0);
		report_worker_drain(&fw);
		if (ctl_calls != 1 || strcmp(ctl_got, cases[i].want) || ctl_live != cases[i].live || fs.refs != 0 ||
		    counter(cases[i].counter) != before + 1)
			fail_msg("case %zu: calls %d got '%s' want '%s' refs %d", i, ctl_calls, ctl_got,
				 cases[i].want, fs.refs);
	}
}

/* moat-controld goes away: reports queue, the client retries, hello first again */
static void test_reconnect(void **st)
{
	(void)st;
	ctl_calls = 0;
	assert_int_equal(report_lookup(&fs), 1); /* in flight when the peer goes */
	pump(30, 0);
	close(sfd);
	sfd = -1;
	pump(100, 0);
	assert_int_equal(counter("controld.disconnects"), 1);
	report_worker_drain(&fw);
	if (ctl_calls != 1 || ctl_got[0] || fs.refs != 0 || counter("controld.lookup_unanswered") != 1)
		fail_msg("lookup across a lost connection: calls %d got '%s' refs %d", ctl_calls, ctl_got, fs.refs);
	assert_int_equal(report_lookup(&fs), 0); /* not asked while away */
	report_listed("2001:db8::9", "q.test", "127.0.0.3");
	pump(300, 1);
	assert_true(sfd < 0); /* backoff: not before 1 s */
	pump(3000, 1);
	assert_true(sfd >= 0);
	struct json_object *h = peer_recv(), *r = peer_recv();

	assert_string_equal(ctl_get_str(h, "cmd"), "smtp.hello");
	assert_string_equal(ctl_get_str(r, "prefix"), "2001:db8::9");
	json_object_put(h);
	json_object_put(r);
	assert_int_equal(counter("controld.connects"), 2);
}

/* moat-controld down: the queue is bounded and report_listed never waits */
static void test_bounded_queue(void **st)
{
	(void)st;
	close(sfd);
	sfd = -1;
	close(lfd);
	lfd = -1;
	unlink(path);
	pump(100, 0);
	int64_t t0 = moat_clock_ms();

	for (int i = 0; i < 5000; i++)
		report_listed("198.51.100.200", "a-rather-long-zone-name.example.net", "127.0.0.2");
	int64_t dt = moat_clock_ms() - t0;

	pump(50, 0);
	if (counter("controld.report_dropped") < 1000 || dt > 2000)
		fail_msg("5000 reports with controld down: dropped %llu, took %lld ms",
			 (unsigned long long)counter("controld.report_dropped"), (long long)dt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_first_then_report),
		cmocka_unit_test(test_relayed_requests),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_reconnect),
		cmocka_unit_test(test_bounded_queue),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
