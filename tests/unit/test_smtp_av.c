/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_smtp_av.c - case tables for the pure parts of moat-smtpd's antivirus
 * check (dataplane/smtp/av_proto.c): the clamd_* keys, clamd's scan answers
 * and its VERSION line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* test_av_keys - each key's accepted and refused values, through config_set */
static void test_av_keys(void **state)
{
	static const struct {
		const char *pre_key, *pre_val; /* set first, or NULL */
		const char *key, *val;
		int ok;
		int is_unix;
	} cases[] = {
		{ NULL, NULL, "clamd", "/run/clamav/clamd.ctl", 1, 1 },
		{ NULL, NULL, "clamd", "unix:/run/clamav/clamd.ctl", 1, 1 },
		{ NULL, NULL, "clamd", "127.0.0.1:3310", 1, 0 },
		{ NULL, NULL, "clamd", "127.0.0.1", 1, 0 },       /* port 3310 */
		{ NULL, NULL, "clamd", "[::1]:3310", 1, 0 },
		{ NULL, NULL, "clamd", "", 1, 0 },                /* off */
		{ NULL, NULL, "clamd", "clamd.example:3310", 0, 0 }, /* no name lookups */
		{ NULL, NULL, "clamd", "/a/very/long/path/that/does/not/fit/in/sun_path/because/it/is/longer/than/one/hundred/and/eight/bytes/which/is/the/limit/of/a/unix/socket/path", 0, 0 },
		{ NULL, NULL, "clamd_mode", "auto", 1, 0 },
		{ NULL, NULL, "clamd_mode", "instream", 1, 0 },
		{ NULL, NULL, "clamd_mode", "fildes", 1, 0 },
		{ NULL, NULL, "clamd_mode", "scan", 0, 0 },
		{ "clamd", "127.0.0.1:3310", "clamd_mode", "fildes", 0, 0 }, /* FILDES needs a unix socket */
		{ "clamd_mode", "fildes", "clamd", "127.0.0.1:3310", 0, 0 },
		{ "clamd_mode", "fildes", "clamd", "/run/clamd.sock", 1, 1 },
		{ NULL, NULL, "clamd_timeout_ms", "99", 0, 0 },
		{ NULL, NULL, "clamd_timeout_ms", "100", 1, 0 },
		{ NULL, NULL, "clamd_timeout_ms", "600001", 0, 0 },
		{ NULL, NULL, "clamd_timeout_ms", "3s", 0, 0 },
		{ NULL, NULL, "clamd_unavailable", "tempfail", 1, 0 },
		{ NULL, NULL, "clamd_unavailable", "pass", 1, 0 },
		{ NULL, NULL, "clamd_unavailable", "accept", 0, 0 },
		{ NULL, NULL, "clamd_db_max_age_h", "0", 1, 0 },
		{ NULL, NULL, "clamd_db_max_age_h", "-1", 0, 0 },
		{ NULL, NULL, "clamd_db_check_s", "0", 0, 0 },
		{ NULL, NULL, "clamd_db_check_s", "86400", 1, 0 },
		{ NULL, NULL, "metrics_listen", "127.0.0.1:9465", 1, 0 },
		{ NULL, NULL, "metrics_listen", "off", 1, 0 },
		{ NULL, NULL, "metrics_listen", "localhost:9465", 0, 0 },
	};
	struct smtpd_config c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_defaults(&c);
		if (cases[i].pre_key)
			assert_int_equal(config_set(&c, cases[i].pre_key, cases[i].pre_val, err, sizeof(err)), 0);
		err[0] = '\0';
		int r = config_set(&c, cases[i].key, cases[i].val, err, sizeof(err));
		if ((r == 0) != cases[i].ok)
			fail_msg("%s = %s: got %s want %s (%s)", cases[i].key, cases[i].val, r == 0 ? "ok" : "error",
				 cases[i].ok ? "ok" : "error", err);
		if (r != 0 && !err[0])
			fail_msg("%s = %s: error without a reason", cases[i].key, cases[i].val);
		if (r == 0 && !strcmp(cases[i].key, "clamd") && c.av.is_unix != cases[i].is_unix)
			fail_msg("%s = %s: is_unix %d", cases[i].key, cases[i].val, c.av.is_unix);
	}
	/* the defaults the documentation states */
	config_defaults(&c);
	assert_string_equal(c.av.clamd, "");
	assert_int_equal(c.av.mode, AV_MODE_AUTO);
	assert_int_equal(c.av.timeout_ms, 30000);
	assert_int_equal(c.av.pass_unavailable, 0);
	assert_int_equal(c.av.db_max_age_h, 48);
	assert_int_equal(c.av.db_check_s, 600);
	assert_string_equal(c.metrics_text, "127.0.0.1:9465");
	assert_true(c.metrics_len > 0);
	assert_int_equal(config_set(&c, "metrics_listen", "off", err, sizeof(err)), 0);
	assert_int_equal(c.metrics_len, 0);
}

/* test_replies - clamd's scan answers */
static void test_replies(void **state)
{
	static const struct {
		const char *reply;
		size_t len;              /* 0: strlen + 1 (the NUL of z-commands) */
		enum av_result want;
		const char *name;
	} cases[] = {
		{ "stream: OK", 0, AV_CLEAN, "" },
		{ "fd[12]: OK", 0, AV_CLEAN, "" },
		{ "stream: OK\n", 0, AV_CLEAN, "" },
		{ "stream: Moat.Test.EICAR.UNOFFICIAL FOUND", 0, AV_VIRUS, "Moat.Test.EICAR.UNOFFICIAL" },
		{ "fd[10]: Win.Test.EICAR_HDB-1 FOUND", 0, AV_VIRUS, "Win.Test.EICAR_HDB-1" },
		{ "stream: Evil \"name\"\\x FOUND", 0, AV_VIRUS, "Evil__name__x" },
		{ "stream:  FOUND", 0, AV_ERROR, "stream:  FOUND" },
		{ "INSTREAM size limit exceeded. ERROR", 0, AV_ERROR, "INSTREAM size limit exceeded. ERROR" },
		{ "fd[3]: \"quoted\"\n ERROR", 0, AV_ERROR, "fd[3]: _quoted__ ERROR" },
		{ "fd[10]: lstat() failed: No such file or directory. ERROR", 0, AV_ERROR, NULL },
		{ "", 0, AV_ERROR, "" },
		{ "stream: OKAY", 0, AV_ERROR, "stream: OKAY" },
		{ "stream: OK", 6, AV_ERROR, "stream" }, /* cut: only what was read counts */
	};
	char name[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].reply) + 1;
		enum av_result r = av_parse_reply(cases[i].reply, len, name, sizeof(name));
		if (r != cases[i].want)
			fail_msg("'%s': got %s want %s", cases[i].reply, av_result_name(r), av_result_name(cases[i].want));
		if (cases[i].name && strcmp(name, cases[i].name))
			fail_msg("'%s': name '%s' want '%s'", cases[i].reply, name, cases[i].name);
	}
	/* a long name is cut, still NUL-terminated */
	char small[8];
	assert_int_equal(av_parse_reply("stream: Very.Long.Signature.Name FOUND", 40, small, sizeof(small)), AV_VIRUS);
	assert_string_equal(small, "Very.Lo");
}

/* test_version - clamd's VERSION line */
static void test_version(void **state)
{
	static const struct {
		const char *v;
		int ok;
	} cases[] = {
		{ "ClamAV 1.4.6/27100/Thu Dec  3 09:12:00 2026", 1 },
		{ "ClamAV 1.4.6/7/Thu Nov  5 00:32:33 2026\n", 1 },
		{ "ClamAV 1.4.6", 0 },            /* local databases only */
		{ "ClamAV 1.4.6/27100/", 0 },
		{ "ClamAV 1.4.6/27100/yesterday", 0 },
		{ "ClamAV 1.4.6/27100/Thu Dec  3 09:12:00 2026 trailing", 0 },
		{ "", 0 },
	};
	time_t t;

	(void)state;
	setenv("TZ", "UTC", 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = av_parse_version(cases[i].v, &t);
		if ((r == 0) != cases[i].ok)
			fail_msg("'%s': got %d", cases[i].v, r);
	}
	assert_int_equal(av_parse_version("ClamAV 1.4.6/27100/Thu Dec  3 09:12:00 2026", &t), 0);
	assert_int_equal((long long)t, 1796289120LL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_av_keys),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
