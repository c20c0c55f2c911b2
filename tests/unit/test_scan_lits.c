/* test_scan_lits.c - scan_lits.c: the literals every match of a regex must
 * contain.  Each case gives the expected set, and subjects: wherever PCRE2
 * finds a match, one of the literals must occur (the superset property); a
 * set with one literal removed must break the property on the same
 * subjects (the check has teeth).  And scan_ascii.c: a rule as it reads
 * ASCII-only text, matching where the original does on such text. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "scan_lits.h"

/* split - the literals of "(?:a|b\x2c)" into lits (decoded); their count */
static int split(const char *e, char lits[][64], int max)
{
	int n = 0, k = 0;

	assert_true(strncmp(e, "(?:", 3) == 0);
	for (const char *p = e + 3; *p && *p != ')'; p++) {
		if (*p == '|') {
			lits[n++][k] = 0;
			k = 0;
			assert_true(n < max);
			continue;
		}
		if (*p == '\\' && p[1] == 'x') {
			unsigned v;

			assert_int_equal(sscanf(p + 2, "%2x", &v), 1);
			lits[n][k++] = (char)v;
			p += 3;
			continue;
		}
		lits[n][k++] = *p;
	}
	lits[n++][k] = 0;
	return n;
}

/* holds - every subject PCRE2 matches contains one of lits (skip: the
 * literal left out); 0 when some subject breaks it */
static int holds(const char *re_s, int caseless, const char *const *subj, char lits[][64],
		 int n, int skip)
{
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)re_s, PCRE2_ZERO_TERMINATED,
				       caseless ? PCRE2_CASELESS : 0, &ec, &eo, NULL);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int ok = 1, matched = 0;

	assert_non_null(re);
	for (int i = 0; subj[i]; i++) {
		char low[256];
		int found = 0;

		if (pcre2_match(re, (PCRE2_SPTR)subj[i], strlen(subj[i]), 0, 0, md, NULL) < 0)
			continue;
		matched++;
		snprintf(low, sizeof(low), "%s", subj[i]);
		for (char *c = low; caseless && *c; c++)
			*c = (char)tolower((unsigned char)*c);
		for (int j = 0; j < n; j++)
			found |= j != skip && strstr(low, lits[j]) != NULL;
		ok &= found;
	}
	assert_true(matched > 0); /* the subjects exercise the regex */
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return ok;
}

struct tcase {
	const char *re;
	int caseless;
	const char *want; /* NULL: no set */
	const char *subj[6];
};

static const struct tcase cases[] = {
	{ "foo(?:bar|baz)qux", 0, "(?:foobarqux|foobazqux)",
	  { "a foobarqux", "foobazqux!", NULL } },
	{ "\\bhello\\s+world", 0, "(?:hello)", { "hello   world", "say hello\tworld", NULL } },
	{ "[Vv]iagra", 0, "(?:Viagra|viagra)", { "buy Viagra", "viagra now", NULL } },
	{ "V[i1]agra", 1, "(?:v1agra|viagra)", { "VIAGRA", "v1agra", NULL } },
	{ "(?!money)m[o0]ney", 0, "(?:m0ney|money)", { "m0ney", "money", NULL } },
	{ "a{0,3}bcd", 0, "(?:bcd)", { "aabcd", "bcd", NULL } },
	{ "(?:abc)?def", 0, "(?:def)", { "abcdef", "xdef", NULL } },
	{ "\\w+ing now", 0, "(?:ing\\x20now)", { "running now", "sing now!", NULL } },
	{ "(?:foo|.)bar", 0, "(?:bar)", { "foobar", "xbar", NULL } },
	{ "[^abc]defg", 0, "(?:defg)", { "xdefg", NULL } },
	{ "\\x41BC", 0, "(?:ABC)", { "xABC", NULL } },
	{ "fo{2}d", 0, "(?:food)", { "food", NULL } },
	{ "(?:ab){2}c", 0, "(?:ababc)", { "ababc", NULL } },
	{ "[\\-x]yz", 0, "(?:\\x2dyz|xyz)", { "-yz", "xyz", NULL } },
	{ "(?:red|green)\\s(?:apple|pear)s?", 0, "(?:apple|pear)",
	  { "red apple", "green pears", NULL } },
	{ "(?:abc)+de", 0, "(?:abc)", { "abcabcde", NULL } },
	{ "x.y", 0, NULL, { "xzy", NULL } },
	{ "a|b", 0, NULL, { "a", NULL } },
	{ "(?i)foobar", 0, NULL, { "FOOBAR", NULL } },     /* inline options: refused */
	{ "(foo)bar\\1", 0, NULL, { "foobarfoo", NULL } }, /* backreference: refused */
	{ "(?:foo)?(?:bar)?", 0, NULL, { "", NULL } },
};

static void test_sets(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		char *got = scan_lits(t->re, t->caseless, 3);

		if (!t->want) {
			if (got)
				fail_msg("%s: want none, got %s", t->re, got);
			continue;
		}
		if (!got || strcmp(got, t->want) != 0)
			fail_msg("%s: want %s, got %s", t->re, t->want, got ? got : "(none)");
		free(got);
	}
}

static void test_superset(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		char *got = scan_lits(t->re, t->caseless, 3), lits[64][64];
		int n;

		if (!got)
			continue;
		n = split(got, lits, 64);
		if (!holds(t->re, t->caseless, t->subj, lits, n, -1))
			fail_msg("%s: %s misses a match", t->re, got);
		/* a mutation: drop each literal in turn; a set the subjects
		 * cover entirely must then miss one of them */
		if (n > 1) {
			int broke = 0;

			for (int j = 0; j < n; j++)
				broke |= !holds(t->re, t->caseless, t->subj, lits, n, j);
			if (!broke)
				fail_msg("%s: no subject needs the whole set %s", t->re, got);
		}
		free(got);
	}
}

/* min_len: shorter literals give no set; long literals are cut (a prefix
 * of a required string is required) */
static void test_bounds(void **state)
{
	char *s;

	(void)state;
	assert_null(scan_lits("ab", 0, 3));
	assert_non_null(s = scan_lits("ab", 0, 2));
	assert_string_equal(s, "(?:ab)");
	free(s);
	assert_non_null(s = scan_lits("abcdefghijklmnopqrstuvwxyz0123456789", 0, 3));
	assert_string_equal(s, "(?:abcdefghijklmnopqrstuvwx)");
	free(s);
	assert_null(scan_lits("abc(", 0, 3));
	assert_null(scan_lits("abc)", 0, 3));
	assert_null(scan_lits("[abc", 0, 3));
	assert_null(scan_lits("abcx{,2}", 0, 3)); /* a quantifier or not: refused */
	assert_non_null(s = scan_lits("abc{x}", 0, 3)); /* a literal brace */
	assert_string_equal(s, "(?:abc\\x7bx\\x7d)");
	free(s);
}

/* scan_lits_avoid: among the sets a rule requires, one none of whose
 * literals an avoided string holds (mark_gate: ordinary URIs); none when
 * every set has such a literal */
static void test_avoid(void **state)
{
	static const char *const avoid[] = { "http://www.example.com/", "mailto:user@example.com", NULL };
	static const struct {
		const char *re;
		int caseless;
		const char *want, *plain; /* with avoid, without */
	} t[] = {
		{ "^https?://[^/]*\\.gov/", 0, "(?:\\x2egov\\x2f)",
		  "(?:https\\x3a\\x2f\\x2f|http\\x3a\\x2f\\x2f)" },
		{ "^https?://[^/]+/", 0, NULL, "(?:https\\x3a\\x2f\\x2f|http\\x3a\\x2f\\x2f)" },
		{ "://(?:www|ftp)\\.", 0, NULL, "(?:\\x3a\\x2f\\x2fwww\\x2e|\\x3a\\x2f\\x2fftp\\x2e)" },
		{ "/WWW\\.Example\\.", 1, NULL, "(?:\\x2fwww\\x2eexample\\x2e)" },
		{ "^mailto:[^@]+@evil\\.example", 0, "(?:\\x40evil\\x2eexample)", "(?:\\x40evil\\x2eexample)" },
		{ "(?:spam|www)\\.example\\.com/", 0, NULL,
		  "(?:spam\\x2eexample\\x2ecom\\x2f|www\\x2eexample\\x2ecom\\x2f)" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (int a = 0; a < 2; a++) {
			char *got = scan_lits_avoid(t[i].re, t[i].caseless, 3, a ? avoid : NULL);
			const char *want = a ? t[i].want : t[i].plain;

			if (!want != !got || (want && strcmp(got, want) != 0))
				fail_msg("%s%s: want %s, got %s", t[i].re, a ? " (avoid)" : "",
					 want ? want : "(none)", got ? got : "(none)");
			free(got);
		}
}

/* scan_ascii_only: the rewrite, and on ASCII subjects the same matches as
 * the original (PCRE2), on a few subjects each */
static void test_ascii(void **state)
{
	static const struct {
		const char *re, *want, *subj[6];
	} t[] = {
		{ "abc", "abc", { "xabc", "ab", NULL } },
		{ "[a\\xe9]b", "[a]b", { "ab", "xb", NULL } },
		{ "(?:x|\\xc3\\xa9)y", "(?:x)y", { "xy", "y", NULL } },
		{ "a\\xe9?b", "ab", { "ab", "a b", NULL } },
		{ "(?!\\xe9)ab", "ab", { "ab", NULL } },
		{ "[a-\\xff]z", "[a-\\x7f]z", { "qz", "Az", "~z", NULL } },
		{ "[^\\xe9]z", "[^\\xe9]z", { "qz", "z", NULL } },
		{ "(?:[mM\\xcc]|rn|[\\xc9][\\xb1])(?:[o0]|[\\xc3][\\x92])", "(?:[mM]|rn)(?:[o0])",
		  { "rn0", "Mo", "mx", NULL } },
		{ "\\bfoo[\\s\\xa0]{1,3}bar\\b", "\\bfoo[\\s]{1,3}bar\\b", { "foo  bar", "foobar", NULL } },
		{ "x(?:\\xe9|\\xea)+y|z", "z", { "xy", "z", NULL } },
		{ "a(?#\xe9: note)b", "a(?#\xe9: note)b", { "ab", NULL } },
		{ "(?'n'a|\\xe9)b", "(?'n'a)b", { "ab", "b", NULL } },
		{ "(?i)a\\xe9?b", "(?i)ab", { "AB", "ab", "a b", NULL } },
		/* syntax the rewrite does not model: kept as written */
		{ "\\Q[\\E\\xe9|b", "\\Q[\\E\\xe9|b", { "b", "[", NULL } },
		{ "(?x) a \\xe9 ?", "(?x) a \\xe9 ?", { "a", "b", NULL } },
		{ "(?x)ab # caf\xc3\xa9\n c", "(?x)ab # caf\xc3\xa9\n c", { "abc", "ab", NULL } },
		{ "(?:(?i)\\xe9|b)c", "(?:(?i)\\xe9|b)c", { "Bc", "bc", NULL } },
		{ "x(?i)\\xe9|abc", "x(?i)\\xe9|abc", { "ABC", "x", NULL } },
	};
	int oom;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got = scan_ascii_only(t[i].re, &oom);
		int ec;
		PCRE2_SIZE eo;
		pcre2_code *a, *b;
		pcre2_match_data *md;

		if (!got || strcmp(got, t[i].want) != 0)
			fail_msg("%s: want %s, got %s", t[i].re, t[i].want, got ? got : "(none)");
		a = pcre2_compile((PCRE2_SPTR)t[i].re, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
		b = pcre2_compile((PCRE2_SPTR)got, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
		if (!a || !b)
			fail_msg("%s -> %s: PCRE2 refuses %s", t[i].re, got, !a ? "the rule" : "the rewrite");
		md = pcre2_match_data_create(1, NULL);
		for (int j = 0; t[i].subj[j]; j++) {
			const char *x = t[i].subj[j];

			if ((pcre2_match(a, (PCRE2_SPTR)x, strlen(x), 0, 0, md, NULL) >= 0) !=
			    (pcre2_match(b, (PCRE2_SPTR)x, strlen(x), 0, 0, md, NULL) >= 0))
				fail_msg("%s -> %s: differs on \"%s\"", t[i].re, got, x);
		}
		pcre2_match_data_free(md);
		pcre2_code_free(a);
		pcre2_code_free(b);
		free(got);
	}
	/* as written, where PCRE2 has no reading to compare: a trailing
	 * backslash (read to the end, never past it: ASan), a (*UTF8) start */
	{
		static const char *const raw[] = { "\\Qab\\", "ab\\", "[a\\", "[ab\\xe9", "(*UTF8)(?i)\\x{212a}" };

		for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
			char *got = scan_ascii_only(raw[i], &oom);

			assert_int_equal(oom, 0);
			assert_non_null(got);
			assert_string_equal(got, raw[i]);
			free(got);
		}
	}
	/* a class shorthand starts no range (Hyperscan reads "[\w-\xff]" as
	 * \w, "-" and \xff; PCRE2 refuses it): "-" stays itself, and no
	 * "-\x7f" range lets DEL in */
	{
		char *got = scan_ascii_only("[\\w-\\xff]z", &oom);

		assert_non_null(got);
		assert_string_equal(got, "[\\w-]z");
		free(got);
	}
	/* what needs a byte past 0x7f cannot match ASCII text */
	assert_null(scan_ascii_only("\\xc3\\xa9", &oom));
	assert_int_equal(oom, 0);
	assert_null(scan_ascii_only("[\\x80-\\xff]+", &oom));
	assert_null(scan_ascii_only("a(?:\\xe9|\\xea)b", &oom));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_superset),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_avoid),
		cmocka_unit_test(test_ascii),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
