/* test_log.c - log_escape keeps one log line one line, whatever the input. */
#include <stdarg.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_cases),
		cmocka_unit_test(test_escape_never_emits_control),
		cmocka_unit_test(test_parse_level),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
