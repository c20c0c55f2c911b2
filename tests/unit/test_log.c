/* test_log.c - log_escape keeps one log line one line, whatever the input;
 * --log-format json makes each line one JSON object with the fields. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

struct esc_case {
	const char *name;
	const char *in;
	size_t inlen;
	size_t dstsz;
	const char *want;
};

static const struct esc_case esc_cases[] = {
	{ "plain", "mail.example", 12, 64, "mail.example" },
	{ "crlf", "a\r\nb", 4, 64, "a\\x0d\\x0ab" },
	{ "nul inside", "a\0b", 3, 64, "a\\x00b" },
	{ "quote and backslash", "\"\\", 2, 64, "\\x22\\x5c" },
	{ "high bytes", "\xff\x80", 2, 64, "\\xff\\x80" },
	{ "truncated", "abcdefghijkl", 12, 8, "abcd..." },
	{ "empty", "", 0, 4, "" },
	{ "tiny dst", "abc", 3, 1, "" },
};

static void test_escape_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
		const struct esc_case *c = &esc_cases[i];
		char dst[128];

		memset(dst, 'Z', sizeof(dst));
		log_escape(dst, c->dstsz, c->in, c->inlen);
		if (strcmp(dst, c->want) != 0)
			fail_msg("case %s: got \"%s\" want \"%s\"", c->name, dst, c->want);
		assert_true(strlen(dst) < c->dstsz);
	}
}

static void test_escape_never_emits_control(void **state)
{
	char in[256], out[1200];

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (char)i;
	log_escape(out, sizeof(out), in, sizeof(in));
	for (const char *p = out; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	assert_int_equal(strlen(out), 95 - 2 + 163 * 4);
}

static void test_parse_level(void **state)
{
	enum log_level l;

	(void)state;
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_parse_level("WARNING", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_parse_level("loud", &l), -1);
}

/* logged - the line log_info(fmt...) writes to stderr, in buf */
static void logged(char *buf, size_t sz, const char *client)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	char esc[64];

	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	log_escape(esc, sizeof(esc), client, strlen(client));
	log_info("0123456789abcdef result=reject stage=rcpt code=550 helo=\"%s\" "
		 "(free text) n=3", esc);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	assert_non_null(fgets(buf, (int)sz, f));
	fclose(f);
}

static void test_json_format(void **state)
{
	char line[4096];
	int json;

	(void)state;
	assert_int_equal(log_parse_format("json", &json), 0);
	assert_int_equal(json, 1);
	assert_int_equal(log_parse_format("xml", &json), -1);
	log_set_json(1);
	logged(line, sizeof(line), "evil\r\n\"} {\"level\":\"x");
	log_set_json(0);
	/* one line, one object: the client's bytes cannot end or forge it */
	assert_non_null(strchr(line, '\n'));
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
	struct json_object *o = json_tokener_parse(line), *v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "level", &v));
	assert_string_equal(json_object_get_string(v), "info");
	assert_true(json_object_object_get_ex(o, "result", &v));
	assert_string_equal(json_object_get_string(v), "reject");
	assert_true(json_object_object_get_ex(o, "code", &v));
	assert_string_equal(json_object_get_string(v), "550");
	assert_true(json_object_object_get_ex(o, "helo", &v));
	assert_string_equal(json_object_get_string(v), "evil\\x0d\\x0a\\x22} {\\x22level\\x22:\\x22x");
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v), "0123456789abcdef (free text)");
	assert_true(json_object_object_get_ex(o, "ts", &v));
	assert_true(json_object_object_get_ex(o, "prog", &v));
	json_object_put(o);
	/* text again: the same call, the usual line */
	logged(line, sizeof(line), "x");
	assert_non_null(strstr(line, ": info: 0123456789abcdef result=reject stage=rcpt"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_format),
		cmocka_unit_test(test_escape_cases),
		cmocka_unit_test(test_escape_never_emits_control),
		cmocka_unit_test(test_parse_level),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
