/* test_render.c - scan_render.c: SpamAssassin's body, rawbody and uri
 * units, whatever the pieces the decoded text arrives in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scan_render.h"

struct got {
	char s[3][1 << 20]; /* units of each kind, each ended by '|' */
	size_t n[3];
};

static void on_unit(void *ctx, enum render_unit k, const char *p, size_t n)
{
	struct got *g = ctx;

	assert_true(g->n[k] + n + 1 < sizeof(g->s[k]));
	memcpy(g->s[k] + g->n[k], p, n);
	g->n[k] += n;
	g->s[k][g->n[k]++] = '|';
	g->s[k][g->n[k]] = 0;
}

struct part {
	enum render_type t;
	const char *text;
};

struct rcase {
	const char *name;
	const char *subject; /* NULL: no Subject header */
	struct part parts[3];
	const char *body, *rawbody, *uri; /* NULL: not checked */
};

static const struct rcase cases[] = {
	{ "paragraphs joined, whitespace collapsed", "Hi there",
	  { { RT_PLAIN, "one\r\ntwo  three\n\n\nfour\n \t\nfive\n" } },
	  "Hi there\n|one two three\n|four\n|five |", "one\ntwo  three\n\n\nfour\n \t\nfive\n|", "" },
	{ "no subject: an empty first line", NULL, { { RT_PLAIN, "x" } }, "\n|x|", NULL, NULL },
	{ "blanks around a paragraph break stay", "s", { { RT_PLAIN, "a \n\n b" } },
	  "s\n|a \n| b|", NULL, NULL },
	{ "comment inside a word", "s",
	  { { RT_HTML, "<p>Gua<!--S-->ranteed <b>FREE</b></p>" } },
	  "s\n|\n|Guaranteed FREE\n|", NULL, "" },
	{ "entities and nbsp", "s",
	  { { RT_HTML, "a&amp;b&nbsp;c&#65;&#x42;&lt;&eacute;&bogus; &#160;d" } },
	  "s\n|a&b cAB<\xe9&bogus; \xa0" "d|", NULL, NULL },
	{ "block elements break paragraphs, <br> alone does not", "s",
	  { { RT_HTML, "one<br>two<br><br>three<div>four</div><li>five</li><p>six" } },
	  "s\n|one two\n|three four five \n|six|", NULL, NULL },
	{ "script, style and title", "s",
	  { { RT_HTML, "<head><title>T</title><style>p{x:1}</style></head>"
		       "<script>var a='<p>no</p>';</script>vis<SCRIPT>x</SCRIPT >ible" } },
	  "s\n|\n|T\n|visible|", NULL, NULL },
	{ "a tag's attributes never render; links are uri units", "s",
	  { { RT_HTML, "<a href=\"http://x.example/a?b=1&amp;c=2\" title='a>b'>click</a>"
		       "<img src=http://img.example/p.gif alt=\"\"><a href=\"\">e</a>" } },
	  "s\n|clicke|", NULL,
	  "http://x.example/a?b=1&c=2|http://img.example/p.gif||" },
	{ "URLs and addresses in text", "see www.example.com/x.",
	  { { RT_PLAIN, "go to http://a.example.com/p?q=1, or mail bob@b.example.org!\n"
			"(http://c.example.net/) HTTP:/D.EXAMPLE.COM\\e" } },
	  NULL, NULL,
	  "http://www.example.com/x|http://a.example.com/p?q=1|mailto:bob@b.example.org|"
	  "http://c.example.net/|" },
	{ "canonical forms", "s",
	  { { RT_HTML, "<a href=\" http://h.example?x \">1</a><a href=\"www.e.example/%41\">2</a>"
		       "<a href=\"#top\">3</a>" } },
	  NULL, NULL,
	  "http://h.example?x|http://h.example/?x|www.e.example/%41|http://www.e.example/A|#top|" },
	{ "parts: separator line end, rawbody per part, calendar skipped", "s",
	  { { RT_PLAIN, "a" }, { RT_SKIP, "BEGIN:VCALENDAR" }, { RT_HTML, "<b>b</b>\n" } },
	  "s\n|a\n|b |", "a|<b>b</b>\n|", NULL },
	{ "other text parts: rawbody only", "s", { { RT_TEXT, "x y" } }, "s\n|", "x y|", NULL },
	{ "unclosed tag and entity at the end", "s", { { RT_HTML, "ab&amp<i" } }, "s\n|ab&|",
	  NULL, NULL },
};

/* run - the case, each part's text fed in pieces of step bytes */
static void run(const struct rcase *c, size_t step, struct got *g)
{
	static struct render r;

	memset(g->n, 0, sizeof(g->n));
	for (int k = 0; k < 3; k++)
		g->s[k][0] = 0;
	render_init(&r, 7, on_unit, g);
	if (c->subject) {
		render_subject(&r, c->subject, strlen(c->subject));
		render_subject_end(&r);
	}
	for (int i = 0; i < 3 && c->parts[i].text; i++) {
		const char *t = c->parts[i].text;
		size_t len = strlen(t);

		render_part_begin(&r, c->parts[i].t);
		for (size_t o = 0; o < len; o += step)
			render_data(&r, t + o, len - o < step ? len - o : step);
		render_part_end(&r);
	}
	render_finish(&r);
}

static void test_cases(void **state)
{
	static struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *c = &cases[i];
		const char *want[3] = { c->body, c->rawbody, c->uri };

		for (size_t step = 1; step <= 64; step++) {
			run(c, step, &g);
			for (int k = 0; k < 3; k++)
				if (want[k] && strcmp(g.s[k], want[k]) != 0)
					fail_msg("case \"%s\" pieces of %zu: %s got \"%s\" want \"%s\"",
						 c->name, step, k == 0 ? "body" : k == 1 ? "rawbody" : "uri",
						 g.s[k], want[k]);
		}
	}
}

/* count - units of a kind and their total length */
static size_t count(const char *s, size_t *total)
{
	size_t n = 0;

	*total = 0;
	for (; *s; s++) {
		if (*s == '|')
			n++;
		else
			(*total)++;
	}
	return n;
}

/* the scan sizes and line lengths bound what is kept, as in SpamAssassin */
static void test_bounds(void **state)
{
	static char text[700000];
	static struct got g;
	struct rcase c = { "bounds", "s", { { RT_PLAIN, text } }, NULL, NULL, NULL };
	size_t total, n;

	(void)state;
	/* words of 9 letters + space: a 2,048-byte line is cut after the last
	 * space (2,040 bytes), the part after the first space from 50,000 on */
	for (size_t i = 0; i < 600000; i++)
		text[i] = i % 10 == 9 ? ' ' : 'a';
	text[600000] = 0;
	run(&c, 4093, &g);
	n = count(g.s[0], &total);
	assert_int_equal(total, 2 + 50010);       /* "s\n" + up to the space at 50,009 */
	assert_int_equal(n, 1 + (50010 + 2039) / 2040);
	for (const char *p = g.s[0] + 3, *q; (q = strchr(p, '|')); p = q + 1)
		assert_true((size_t)(q - p) <= RENDER_LINE_MAX);
	/* rawbody: 500,000 bytes then up to the first space (at 500,009) */
	n = count(g.s[1], &total);
	assert_int_equal(total, 500010);
	/* a line without a space is cut at 2,048; rawbody at 2,049 without
	 * '\n', '>' or ' ' */
	memset(text, 'b', 10000);
	text[10000] = 0;
	run(&c, 777, &g);
	assert_int_equal(strchr(g.s[0] + 3, '|') - (g.s[0] + 3), RENDER_LINE_MAX);
	assert_int_equal(strchr(g.s[1], '|') - g.s[1], RENDER_LINE_MAX + 1);
	/* rawbody prefers a '\n' from byte 2,048 on */
	memset(text, 'c', 10000);
	text[3000] = '\n';
	text[2500] = '>';
	run(&c, 1000, &g);
	assert_int_equal(strchr(g.s[1], '|') - g.s[1], 3001);
	/* a cut past body_part_scan_size prefers '\n' within 1,024 bytes */
	memset(text, 'd', 60000);
	text[50500] = ' ';
	text[50900] = '\n';
	text[60000] = 0;
	run(&c, 999, &g);
	count(g.s[0], &total);
	assert_int_equal(total, 2 + 50901); /* up to the '\n' (then a space) */
}

/* HTML split anywhere: a tag, a comment, an entity across pieces give the
 * same text as in one piece (the case table runs every piece size; here a
 * long document at prime sizes) */
static void test_html_pieces(void **state)
{
	static char html[40000];
	static struct got g, ref;
	struct rcase c = { "html", "s", { { RT_HTML, html } }, NULL, NULL, NULL };
	size_t o = 0;

	(void)state;
	while (o < sizeof(html) - 200)
		o += (size_t)snprintf(html + o, sizeof(html) - o,
				      "<p class=\"x\">Wo<!-- c -->rd&amp;%zu <a href='http://e.example/%zu'>l</a>"
				      "<br/>&#x41;<style>.a{}</style>\r\n", o, o);
	run(&c, sizeof(html), &ref);
	for (size_t step = 1; step < 200; step += 37) {
		run(&c, step, &g);
		for (int k = 0; k < 3; k++)
			assert_string_equal(g.s[k], ref.s[k]);
	}
	assert_non_null(strstr(ref.s[0], "Word&0 l A\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_html_pieces),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
