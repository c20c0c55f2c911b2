/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_authres.c - case tables for moat-smtpd's Authentication-Results
 * header (dataplane/smtp/authres.c): which incoming headers are moat's own
 * (removed), the header built for the downstream (layout, unsafe values,
 * truncation), and the dkim_* / dmarc_* keys (authcfg.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "authres.h"
#include "config.h"

static void test_is_ours(void **state)
{
	static const struct {
		const char *h;
		const char *id;
		int want;
	} t[] = {
		{ "Authentication-Results: mx.moat.test; spf=pass", "mx.moat.test", 1 },
		{ "authentication-results:mx.moat.test;dkim=pass", "mx.moat.test", 1 },
		{ "Authentication-Results: \tMX.MOAT.TEST; none", "mx.moat.test", 1 },
		{ "Authentication-Results: mx.moat.test 1; none", "mx.moat.test", 1 },  /* authserv-id version */
		{ "Authentication-Results: mx.moat.test/2; none", "mx.moat.test", 1 },
		{ "Authentication-Results: mx.moat.test", "mx.moat.test", 1 },
		{ "Authentication-Results: mx.moat.test.evil; none", "mx.moat.test", 0 }, /* longer id */
		{ "Authentication-Results: other.example; mx.moat.test", "mx.moat.test", 0 },
		{ "Authentication-Results: mx.moat.tes", "mx.moat.test", 0 },
		{ "X-Authentication-Results: mx.moat.test; none", "mx.moat.test", 0 },
		{ "Authentication-Result: mx.moat.test; none", "mx.moat.test", 0 },
		{ "Authentication-Results: ; none", "", 0 },                           /* empty id never matches */
		{ "", "mx.moat.test", 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = authres_is_ours(t[i].h, strlen(t[i].h), t[i].id);
		if (got != t[i].want)
			fail_msg("case %zu '%s': got %d want %d", i, t[i].h, got, t[i].want);
	}
}

static void test_build(void **state)
{
	char buf[512];
	struct authres_item spf = { "spf", "pass", NULL, "smtp.mailfrom=a@example.com" };
	struct authres_item two[] = {
		{ "dkim", "fail", "body hash did not verify", "header.d=example.com header.s=sel" },
		{ "dmarc", "fail", "p=reject", "header.from=example.com" },
	};
	struct authres_item evil = { "dkim", "permerror", "a (nested) \\ reason\r\nX-Injected: 1", NULL };
	size_t n;

	(void)state;
	/* one result: the layout moat always used for SPF alone */
	n = authres_build(buf, sizeof(buf), "mx.moat.test", &spf, 1);
	assert_string_equal(buf, "Authentication-Results: mx.moat.test;\r\n\tspf=pass smtp.mailfrom=a@example.com\r\n");
	assert_int_equal(n, strlen(buf));
	n = authres_build(buf, sizeof(buf), "mx.moat.test", two, 2);
	assert_string_equal(buf, "Authentication-Results: mx.moat.test;\r\n"
				 "\tdkim=fail (body hash did not verify) header.d=example.com header.s=sel;\r\n"
				 "\tdmarc=fail (p=reject) header.from=example.com\r\n");
	/* nothing to say: "none" (RFC 8601 2.2) */
	n = authres_build(buf, sizeof(buf), "mx.moat.test", NULL, 0);
	assert_string_equal(buf, "Authentication-Results: mx.moat.test; none\r\n");
	/* a comment from outside cannot close itself or break the field */
	authres_build(buf, sizeof(buf), "mx.moat.test", &evil, 1);
	assert_null(strstr(buf, "\r\nX-Injected"));
	assert_non_null(strstr(buf, "dkim=permerror (a  nested    reason  X-Injected: 1)\r\n"));
	/* too small for the second result: it is left out whole */
	n = authres_build(buf, 120, "mx.moat.test", two, 2);
	assert_true(n > 0 && n < 120);
	assert_non_null(strstr(buf, "dkim=fail"));
	assert_null(strstr(buf, "dmarc"));
	assert_string_equal(buf + n - 2, "\r\n");
	/* not even the name fits */
	assert_int_equal(authres_build(buf, 10, "mx.moat.test", &spf, 1), 0);
}

static void test_value(void **state)
{
	static const struct {
		const char *in;
		size_t sz;
		const char *want;
	} t[] = {
		{ "example.com", 64, "example.com" },
		{ "a b;c\r\n(d)", 64, "a?b?c???d?" },
		{ "Ab+/=09", 64, "Ab+/=09" },
		{ "toolongvalue", 5, "tool" },
		{ "", 4, "" },
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		authres_value(out, t[i].sz, t[i].in);
		if (strcmp(out, t[i].want))
			fail_msg("case %zu '%s': got '%s' want '%s'", i, t[i].in, out, t[i].want);
	}
}

static void test_auth_keys(void **state)
{
	static const struct {
		const char *key, *val;
		int want;   /* 0 ok, -1 refused, 1 not an auth key */
	} t[] = {
		{ "dkim", "yes", 0 },
		{ "dkim", "maybe", -1 },
		{ "dmarc", "no", 0 },
		{ "dkim_max_signatures", "5", 0 },
		{ "dkim_max_signatures", "0", -1 },
		{ "dkim_max_signatures", "51", -1 },
		{ "dkim_dns_timeout_ms", "99", -1 },
		{ "dkim_max_key_bits", "16384", 0 },
		{ "dkim_max_key_bits", "16385", -1 },
		{ "dmarc_reject_action", "tempfail", 0 },
		{ "dmarc_reject_action", "bounce", -1 },
		{ "dmarc_quarantine_action", "reject", 0 },
		{ "auth_temperror_action", "accept", 0 },
		{ "dmarc_trusted_forwarders", "192.0.2.0/24, 2001:db8::/32", 0 },
		{ "dmarc_trusted_forwarders", "192.0.2.0/24 nonsense", -1 },
		{ "dmarc_public_suffix_list", "/nonexistent", 0 },
		{ "spf", "yes", 1 },
	};
	struct smtpd_auth_config a;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		config_auth_defaults(&a);
		err[0] = '\0';
		int got = config_auth_set(&a, t[i].key, t[i].val, err, sizeof(err));
		if (got != t[i].want)
			fail_msg("case %zu %s=%s: got %d want %d (%s)", i, t[i].key, t[i].val, got, t[i].want, err);
		if (got == -1 && !strstr(err, t[i].key))
			fail_msg("case %zu: error '%s' does not name the key", i, err);
	}
	config_auth_defaults(&a);
	assert_int_equal(a.max_signatures, 5);
	assert_int_equal(a.dmarc_reject, AUTH_ACT_REJECT);
	assert_int_equal(a.dmarc_quarantine, AUTH_ACT_ACCEPT);
	assert_int_equal(a.temperror, AUTH_ACT_TEMPFAIL);
	/* the keys together */
	a.dmarc = 1;
	assert_int_equal(config_auth_check(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs dkim"));
	a.dkim = 1;
	snprintf(a.public_suffix_list, sizeof(a.public_suffix_list), "/nonexistent/psl.dat");
	assert_int_equal(config_auth_check(&a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "dmarc_public_suffix_list"));
	a.dmarc = 0;
	assert_int_equal(config_auth_check(&a, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_ours),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_value),
		cmocka_unit_test(test_auth_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
