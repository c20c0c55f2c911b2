/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_smtp_proto.c - case tables for moat-smtpd's protocol core: the
 * CRLF-only line machine (smuggling variants, split input, long lines),
 * dot-unstuffing and re-stuffing, command and path parsing, and config
 * value validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "proto.h"

/* run_lines - feed input in chunks of `chunk` bytes; describe events as a
 * string, up to the first framing error */
static void run_lines(const char *in, size_t len, size_t chunk, size_t cap, char *out, size_t outsz)
{
	char buf[64];
	struct line_sm sm;
	size_t o = 0, off = 0;

	line_sm_init(&sm, buf, cap);
	out[0] = '\0';
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk, used = 0;
		enum line_res r = line_sm_feed(&sm, in + off, n, &used);
		off += used;
		switch (r) {
		case LINE_NEED_MORE:
			break;
		case LINE_DONE:
			o += (size_t)snprintf(out + o, outsz - o, "[%.*s%s]", (int)sm.len, sm.buf, sm.too_long ? "+" : "");
			line_sm_reset(&sm);
			break;
		case LINE_BARE_LF: /* the session refuses and closes: stop here too */
			snprintf(out + o, outsz - o, "<LF>");
			return;
		case LINE_BARE_CR:
			snprintf(out + o, outsz - o, "<CR>");
			return;
		}
	}
}

static void test_line_sm(void **state)
{
	static const struct {
		const char *in;
		size_t cap;
		const char *want;
	} cases[] = {
		{ "EHLO a\r\n", 32, "[EHLO a]" },
		{ "a\r\nb\r\n", 32, "[a][b]" },
		{ "\r\n", 32, "[]" },
		{ "partial", 32, "" },
		{ "a\nb\r\n", 32, "<LF>" },            /* bare LF */
		{ "x\r\n.\n", 32, "[x]<LF>" },            /* <LF>.<LF> smuggling */
		{ "x\n.\r\n", 32, "<LF>" },            /* <LF>.<CR><LF> */
		{ "x\r.\r", 32, "<CR>" },                 /* <CR>.<CR>: CR then '.' */
		{ "a\r\nb\r\n.\r\n", 32, "[a][b][.]" },
		{ "x\r\r\n", 32, "<CR>" },                /* CR CR LF: first CR is bare */
		{ "0123456789\r\n", 4, "[0123+]" },       /* too long: cut, flagged */
		{ "0123\r\n", 4, "[0123]" },              /* exactly cap */
		{ ".\r\n", 32, "[.]" },
	};
	char out[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t chunk = 1; chunk <= 7; chunk += 6) {
			run_lines(cases[i].in, strlen(cases[i].in), chunk, cases[i].cap, out, sizeof(out));
			if (strcmp(out, cases[i].want) != 0)
				fail_msg("case %zu chunk %zu: got '%s' want '%s'", i, chunk, out, cases[i].want);
		}
	}
}

static void test_data_lines(void **state)
{
	static const struct {
		const char *line;
		int end;
		const char *content;   /* after unstuffing */
		const char *wire;      /* moat's rebuilt form */
	} cases[] = {
		{ ".", 1, "", "" },
		{ "..", 0, ".", "..\r\n" },
		{ "...", 0, "..", "...\r\n" },
		{ ".x", 0, "x", "x\r\n" },
		{ "x.", 0, "x.", "x.\r\n" },
		{ "", 0, "", "\r\n" },
		{ " .", 0, " .", " .\r\n" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t skip;
		const char *l = cases[i].line;
		enum data_line_kind k = smtp_data_line(l, strlen(l), &skip);
		if ((k == DATA_END) != cases[i].end)
			fail_msg("case %zu '%s': end got %d want %d", i, l, k == DATA_END, cases[i].end);
		if (k == DATA_END)
			continue;
		if (strcmp(l + skip, cases[i].content) != 0)
			fail_msg("case %zu '%s': content got '%s' want '%s'", i, l, l + skip, cases[i].content);
		char w[64];
		size_t n = smtp_stuff_line(l + skip, strlen(l + skip), w);
		w[n] = '\0';
		if (strcmp(w, cases[i].wire) != 0)
			fail_msg("case %zu '%s': wire got '%s' want '%s'", i, l, w, cases[i].wire);
	}
}

static void test_commands(void **state)
{
	static const struct {
		const char *line;
		enum smtp_cmd cmd;
		const char *arg;
	} cases[] = {
		{ "EHLO client.example", CMD_EHLO, "client.example" },
		{ "ehlo   x  ", CMD_EHLO, "x" },
		{ "MAIL FROM:<a@b>", CMD_MAIL, "FROM:<a@b>" },
		{ "rcpt TO:<a@b>", CMD_RCPT, "TO:<a@b>" },
		{ "DATA", CMD_DATA, "" },
		{ "STARTTLS", CMD_STARTTLS, "" },
		{ "QUIT", CMD_QUIT, "" },
		{ "VRFY x", CMD_VRFY, "x" },
		{ "DATAX", CMD_UNKNOWN, "" },
		{ "", CMD_UNKNOWN, "" },
		{ "MAI", CMD_UNKNOWN, "" },
		{ "HELP", CMD_HELP, "" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_command c;
		smtp_parse_command(cases[i].line, strlen(cases[i].line), &c);
		if (c.cmd != cases[i].cmd)
			fail_msg("'%s': cmd got %d want %d", cases[i].line, c.cmd, cases[i].cmd);
		if (c.cmd != CMD_UNKNOWN &&
		    (c.arglen != strlen(cases[i].arg) || memcmp(c.arg, cases[i].arg, c.arglen) != 0))
			fail_msg("'%s': arg got '%.*s' want '%s'", cases[i].line, (int)c.arglen, c.arg, cases[i].arg);
	}
}

static void test_paths(void **state)
{
	static const struct {
		const char *arg;
		int is_mail;
		enum path_err want;
		const char *addr;
		const char *domain;
		uint64_t size;
		int b8;
	} cases[] = {
		{ "FROM:<a@b.example>", 1, PATH_OK, "a@b.example", "b.example", 0, 0 },
		{ "from:<>", 1, PATH_OK, "", "", 0, 0 },
		{ "FROM: <a@b.example>", 1, PATH_OK, "a@b.example", "b.example", 0, 0 },
		{ "FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", 1, PATH_OK, "a@b.example", "b.example", 1000, 1 },
		{ "FROM:<a@b.example> BODY=7BIT", 1, PATH_OK, "a@b.example", "b.example", 0, 0 },
		{ "FROM:<a@b.example> SIZE=x", 1, PATH_BAD_PARAM, NULL, NULL, 0, 0 },
		{ "FROM:<a@b.example> AUTH=<>", 1, PATH_BAD_PARAM, NULL, NULL, 0, 0 },
		{ "FROM:a@b.example", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<a@b.example", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<a@>", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },   /* empty domain (OpenSMTPD trap) */
		{ "FROM:<@b.example>", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<a..b@c.example>", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<a@b..example>", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<a@-b.example>", 1, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<\"a b\"@c.example>", 1, PATH_OK, "\"a b\"@c.example", "c.example", 0, 0 },
		{ "FROM:<a@[192.0.2.1]>", 1, PATH_OK, "a@[192.0.2.1]", "[192.0.2.1]", 0, 0 },
		{ "FROM:<@r1,@r2:a@b.example>", 1, PATH_OK, "a@b.example", "b.example", 0, 0 },
		{ "TO:<x@moat.test>", 0, PATH_OK, "x@moat.test", "moat.test", 0, 0 },
		{ "TO:<Postmaster>", 0, PATH_OK, "Postmaster", "", 0, 0 },
		{ "TO:<someone>", 0, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "TO:<>", 0, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "TO:<x@moat.test> NOTIFY=NEVER", 0, PATH_BAD_PARAM, NULL, NULL, 0, 0 },
		{ "FROM:<x@moat.test>", 0, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "TO:<a\x01@b.example>", 0, PATH_SYNTAX, NULL, NULL, 0, 0 },
		{ "FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example>", 1,
		  PATH_TOO_LONG, NULL, NULL, 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_path p;
		enum path_err e = smtp_parse_path(cases[i].arg, strlen(cases[i].arg), cases[i].is_mail, &p);
		if (e != cases[i].want)
			fail_msg("'%s': got err %d want %d", cases[i].arg, e, cases[i].want);
		if (e != PATH_OK)
			continue;
		if (strcmp(p.addr, cases[i].addr) || strcmp(p.domain, cases[i].domain))
			fail_msg("'%s': got addr '%s' domain '%s' want '%s' '%s'", cases[i].arg, p.addr, p.domain,
				 cases[i].addr, cases[i].domain);
		if (p.size != cases[i].size || p.body_8bit != cases[i].b8)
			fail_msg("'%s': size %llu 8bit %d", cases[i].arg, (unsigned long long)p.size, p.body_8bit);
	}
}

static void test_config_values(void **state)
{
	static const struct {
		const char *key, *val;
		int ok;
	} cases[] = {
		{ "workers", "4", 1 },
		{ "workers", "0", 0 },
		{ "workers", "4x", 0 },
		{ "listen", "0.0.0.0:25, [::]:25", 1 },
		{ "listen", "nohost:25", 0 },
		{ "relay", "198.18.3.2:25", 1 },
		{ "relay", "198.18.3.2:0", 0 },
		{ "max_line_length", "511", 0 },
		{ "max_line_length", "512", 1 },
		{ "dnsbl_zones", "zen.example*2, bl.example=127.0.0.2*1, al.example*-5", 1 },
		{ "dnsbl_zones", "bl.example=notanip", 0 },
		{ "dnsbl_ignore", "127.255.255.0/24, 127.0.0.1", 1 },
		{ "dnsbl_ignore", "127.0.0.1/33", 0 },
		{ "dnsbl_ignore", "127.0.0.5/24", 1 },  /* the network 127.0.0.5 is in */
		{ "dnsbl_ignore", "127.0.0.1/", 0 },
		{ "dnsbl_zones", "bl.example=127.0.0.3/31*1", 1 },
		{ "dnsbl_zones", "bl.example=::1*1", 0 },  /* answers are IPv4 */
		{ "spf_softfail", "reject", 1 },
		{ "spf_softfail", "maybe", 0 },
		{ "spf", "yes", 1 },
		{ "spf", "perhaps", 0 },
		{ "local_domains", "moat.test, example.org", 1 },
		{ "local_domains", "bad..domain", 0 },
		{ "no_such_key", "1", 0 },
		{ "relay_data_timeout", "600", 0 },   /* must stay well inside 10 minutes */
	};
	struct smtpd_config c;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_defaults(&c);
		err[0] = '\0';
		int r = config_set(&c, cases[i].key, cases[i].val, err, sizeof(err));
		if ((r == 0) != cases[i].ok)
			fail_msg("%s = %s: got %s want %s (%s)", cases[i].key, cases[i].val, r == 0 ? "ok" : "error",
				 cases[i].ok ? "ok" : "error", err);
		if (r != 0 && !err[0])
			fail_msg("%s = %s: error without a reason", cases[i].key, cases[i].val);
	}
	/* a boolean (lib/cfgerr.c moat_cfg_bool): any case, and this message */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "spf", "OFF", err, sizeof(err)), 0);
	assert_int_equal(c.spf, 0);
	assert_int_equal(config_set(&c, "spf", "True", err, sizeof(err)), 0);
	assert_int_equal(c.spf, 1);
	assert_int_not_equal(config_set(&c, "spf", "2", err, sizeof(err)), 0);
	assert_string_equal(err, "spf must be yes or no");
	assert_int_equal(c.spf, 1); /* the last good value stays */
	/* parsed zone fields */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "dnsbl_zones", "a.example=127.0.0.2*3", err, sizeof(err)), 0);
	assert_int_equal(c.n_zones, 1);
	assert_string_equal(c.zones[0].name, "a.example");
	assert_true(c.zones[0].weight == 3.0);
	assert_true(c.zones[0].have_filter);
}

/* test_net - dnsbl_ignore prefixes as smtpd reads them, and what they hold */
static void test_net(void **state)
{
	static const struct {
		const char *net;
		uint8_t a[4];
		int in;
	} cases[] = {
		{ "127.255.255.0/24", { 127, 255, 255, 254 }, 1 },
		{ "127.255.255.0/24", { 127, 255, 254, 1 }, 0 },
		{ "127.0.0.1", { 127, 0, 0, 1 }, 1 },
		{ "127.0.0.1", { 127, 0, 0, 2 }, 0 },
		{ "127.0.0.0/8", { 127, 9, 9, 9 }, 1 },
		{ "0.0.0.0/0", { 1, 2, 3, 4 }, 1 },
		{ "127.0.0.0/31", { 127, 0, 0, 1 }, 1 },
		{ "127.0.0.0/31", { 127, 0, 0, 2 }, 0 },
		{ "127.0.0.5/24", { 127, 0, 0, 200 }, 1 },
		{ "127.0.0.5/24", { 127, 0, 1, 5 }, 0 },
	};
	struct smtpd_config c;
	char err[256];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_defaults(&c);
		assert_int_equal(config_set(&c, "dnsbl_ignore", cases[i].net, err, sizeof(err)), 0);
		assert_int_equal(c.n_dnsbl_ignore, 1);
		if (moat_prefix_match(&c.dnsbl_ignore[0], MOAT_AF_INET, cases[i].a) != cases[i].in)
			fail_msg("%s contains %u.%u.%u.%u: got %d", cases[i].net, cases[i].a[0], cases[i].a[1],
				 cases[i].a[2], cases[i].a[3], !cases[i].in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_sm),
		cmocka_unit_test(test_data_lines),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_net),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
