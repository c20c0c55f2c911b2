/* test_scan.c - the content gate: streaming matches, scopes, MIME decoding,
 * rule loading, cache, reload and SpamAssassin import. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "scan.h"
#include "scan_ucache.h"
#include "scan_received.h"
#include "scan_render.h"
#include "scan_rules.h"
#include "scan_seen.h"

static char tmpdir[] = "/tmp/moat-test-scan-XXXXXX";

/* tap_note - a status line as a TAP comment (cmocka's print_message has no '#') */
#define tap_note(...) (fputs("# ", stdout), printf(__VA_ARGS__), fflush(stdout))

/* write_file - create tmpdir/name with text; returns the path (static) */
static const char *write_file(const char *name, const char *text)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* use_rules - make text the live rules */
static void use_rules(const char *text)
{
	struct scan_config c = { .rules_path = write_file("t.rules", text) };
	char err[512] = "";

	if (scan_init(&c, err, sizeof(err)) != 0)
		fail_msg("scan_init: %s", err);
}

/* run_pieces - scan msg fed in pieces of the given sizes (0-terminated,
 * repeated); fills v */
static void run_pieces(const char *msg, size_t len, const size_t *sizes,
		       struct filter_verdict *v)
{
	struct filter_msg *m = scan_filter_ops.open();
	size_t off = 0, k = 0;

	assert_non_null(m);
	while (off < len) {
		size_t n = sizes ? sizes[k] : len;

		if (sizes && !sizes[++k])
			k = 0;
		if (n > len - off)
			n = len - off;
		assert_int_equal(scan_filter_ops.feed(m, msg + off, n), 0);
		off += n;
	}
	assert_int_equal(scan_filter_ops.finish(m, v), 0);
	scan_filter_ops.close(m);
}

/* matched - did the verdict name rule id (in the header, reply or rule) */
static int matched(const struct filter_verdict *v, const char *id)
{
	const char *s[3] = { v->header, v->reply, v->rule };

	for (int i = 0; i < 3; i++) {
		const char *p = s[i];
		size_t l = strlen(id);

		while ((p = strstr(p, id))) {
			char b = p == s[i] ? ',' : p[-1], a = p[l];

			if ((b == ',' || b == '=' || b == ' ') &&
			    (a == 0 || a == ',' || a == ')'))
				return 1;
			p += l;
		}
	}
	return 0;
}

static const char *scope_rules =
	"threshold 100\n"
	"HDR_SUBJ   header:Subject score 1 /needle/\n"
	"HDR_ANY    header         score 1 /haystack-h/\n"
	"HDR_ANCH   header:Subject score 1 /^Exactly this$/\n"
	"BODY_N     body           score 1 /needle/\n"
	"RAW_N      raw            score 1 /rawmark/\n"
	"SPLIT      body           score 1 /a pattern split across chunks/i\n"
	"FOLDED     header:Subject score 1 /folded subject line/\n"
	"ASIDE      body           score 1 /\\b(?:[a-z]{3,}\\s+){5}/\n"
	"ONEB       body           score 1 /[#]/\n"
	"GAP        body           score 1 /\\b_{0,3}t[_\\W]?[e3][_\\W]?n[_\\W]?u[_\\W]?[a4@][_\\W]?t[_\\W]?[e3]\\b/i\n"
	"USIDE      uri            score 1 /^\\w+:\\/\\//\n"
	"UOTHER     uri            score 1 /example\\.org/\n"
	"UGATE      uri            score 1 /:\\/\\/[^\\/?]+\\.gatehost\\.com\\//\n"
	"UGATEI     uri            score 1 /\\/Path-Gate\\//i\n";

static int setup_scope(void **state)
{
	(void)state;
	use_rules(scope_rules);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	scan_fini();
	return 0;
}

struct scope_case {
	const char *name;
	const char *msg;
	const char *want;    /* space-separated rules that must match */
	const char *notwant; /* and must not */
};

static const struct scope_case scope_cases[] = {
	/* SpamAssassin's body text starts with the Subject */
	{ "subject needle", "Subject: a needle here\r\nFrom: a@b\r\n\r\nnothing\r\n",
	  "HDR_SUBJ BODY_N", "" },
	{ "needle in other header", "X-Other: needle\r\nSubject: hi\r\n\r\nbody\r\n",
	  "", "HDR_SUBJ BODY_N" },
	{ "needle in body only", "Subject: hi\r\n\r\nthe needle\r\n", "BODY_N", "HDR_SUBJ" },
	{ "any header", "X-Foo: haystack-h\r\n\r\nx\r\n", "HDR_ANY", "BODY_N" },
	{ "anchors mean one header", "Subject: Exactly this\r\nX: y\r\n\r\nb\r\n",
	  "HDR_ANCH", "" },
	{ "anchor not met", "Subject: Not Exactly this\r\n\r\nb\r\n", "", "HDR_ANCH" },
	{ "raw scope", "Subject: x\r\n\r\nrawmark\r\n", "RAW_N", "BODY_N" },
	{ "raw sees part headers",
	  "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nX-Part: rawmark\r\n\r\n"
	  "x\r\n--q--\r\n", "RAW_N", "" },
	{ "folded header unfolded",
	  "Subject: a folded\r\n subject line\r\n\r\nb\r\n", "FOLDED", "" },
	{ "folded with tab", "Subject: a folded\r\n\tsubject line\r\n\r\nb\r\n", "", "FOLDED" },
	{ "body not in headers", "X-N: needle\r\n\r\nclean\r\n", "", "BODY_N HDR_SUBJ" },
	/* a group repeated 5+ times: its own database (SDB_BODY_ASIDE) on
	 * ASCII lines, SDB_BODY on the others */
	{ "aside, ASCII line", "Subject: x\r\n\r\nthese seven words should match this rule\r\n", "ASIDE",
	  "BODY_N" },
	{ "aside, other line", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "caf\xc3\xa9 these seven words should match this rule\r\n", "ASIDE", "" },
	{ "aside, too few", "Subject: x\r\n\r\nfour words are here\r\n", "", "ASIDE" },
	/* a rule matching one byte is tested in C (mark_bytes), a uri rule
	 * matching an ordinary URI scanned in SDB_URI_SIDE (mark_side) */
	{ "one-byte rule", "Subject: x\r\n\r\nnumber #1\r\n", "ONEB", "" },
	{ "one-byte rule, UTF-8 line", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
	  "\r\ncaf\xc3\xa9 #1\r\n", "ONEB", "" },
	{ "one-byte rule, none", "Subject: x\r\n\r\nnumber 1\r\n", "", "ONEB" },
	{ "uri side", "Subject: x\r\n\r\nsee http://www.example.org/a\r\n", "USIDE UOTHER", "ONEB" },
	{ "uri side, no uri", "Subject: x\r\n\r\nsee nothing\r\n", "", "USIDE UOTHER" },
	/* a rule with gaps: SDB_BODY_GAP, where its skeleton form fires on the
	 * line's letters and digits (the stricter form without '@') */
	{ "gap, plain", "Subject: x\r\n\r\nbuy Tenuate now\r\n", "GAP", "" },
	{ "gap, gaps", "Subject: x\r\n\r\nbuy t.e.n.u.a.t.e now\r\n", "GAP", "" },
	{ "gap, in the Subject", "Subject: t_e_n_u_4_t_3\r\n\r\nnothing\r\n", "GAP", "" },
	{ "gap, a byte of the looser form", "Subject: x\r\n\r\nme@example.org: t-e-n-u-@-t-e\r\n",
	  "GAP", "" },
	{ "gap, UTF-8 line", "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "caf\xc3\xa9 t e n u a t e\r\n", "GAP", "" },
	{ "gap, the gate fires, the rule does not", "Subject: x\r\n\r\nt e n u a t every\r\n", "",
	  "GAP" },
	{ "gap, none", "Subject: x\r\n\r\na tenuous tale\r\n", "", "GAP" },
	/* a uri rule with a gate runs only where its literal is
	 * (SDB_URI_GATED, mark_gate): the gate fires, the rule matches */
	{ "uri gate", "Subject: x\r\n\r\nsee http://a.gatehost.com/x\r\n", "UGATE USIDE",
	  "UOTHER UGATEI" },
	{ "uri gate, caseless", "Subject: x\r\n\r\nsee http://a.b/PATH-gate/y\r\n", "UGATEI USIDE",
	  "UGATE UOTHER" },
	{ "uri gate, literal but no match", "Subject: x\r\n\r\nsee http://a.b/?.gatehost.com/\r\n",
	  "USIDE", "UGATE" },
	{ "uri gate, two URIs", "Subject: x\r\n\r\nsee http://www.example.org/ and "
	  "https://x.gatehost.com/\r\n", "UGATE UOTHER USIDE", "UGATEI" },
};

static void check_words(const char *cname, const struct filter_verdict *v, const char *words,
			int want);

/* scan_skel: the projection matches the skeleton of every subject the rule
 * matches (PCRE2), for any line and for lines without the bytes given */
static void test_skel(void **state)
{
	static const unsigned char alnum_only[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	static const struct {
		const char *expr;
		int ci;
		const char *lack; /* NULL: any line */
		int minlen;       /* or SCAN_SKEL_NONE / SCAN_SKEL_NEVER */
		const char *hit[4], *miss[4]; /* subjects: the form fires on the
					       * first's skeleton, not the second's */
	} t[] = {
		{ "\\b_{0,3}t[_\\W]?[e3][_\\W]?n\\b", 1, NULL, 3, { "T.E.N", "t3n", "x tEn y" }, { "tan", "en" } },
		{ "V[_\\W]{0,3}[i1!|l][_\\W]{0,3}x", 0, NULL, 2, { "V!x", "V. i x", "Vix" }, { "vix", "Vy" } },
		{ "V[_\\W]{0,3}[i1!|l][_\\W]{0,3}x", 0, "!|", 3, { "V. i x", "V1x" }, { "Vx", "V.x" } },
		{ "(?:\\\\\\/|V)[_\\W]?[a4@][_\\W]?g", 1, "@", 2, { "\\/a g", "v4g", "\\/-a-g" }, { "vg", "g" } },
		{ "(?:\\b|\\s)[_\\W]{0,3}x+[_\\W]?(?=y)", 0, NULL, 1, { " xx-y", "x" }, { "y" } },
		{ "a[_\\W]?!b", 0, "!", SCAN_SKEL_NEVER, { NULL }, { NULL } },
		{ "tenuate", 1, NULL, SCAN_SKEL_NONE, { NULL }, { NULL } },        /* no gap */
		{ "(t)[_\\W]?\\1", 0, NULL, SCAN_SKEL_NONE, { NULL }, { NULL } }, /* a backreference */
		{ "(?i)t[_\\W]?e", 0, NULL, SCAN_SKEL_NONE, { NULL }, { NULL } },  /* inline options */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned char lack[256] = { 0 };
		int len, err;
		PCRE2_SIZE eo;
		char *f;

		for (const char *c = t[i].lack; c && *c; c++)
			lack[(unsigned char)*c] = 1;
		f = scan_skel(t[i].expr, t[i].ci, t[i].lack ? lack : NULL, &len);
		if (len != t[i].minlen)
			fail_msg("%s: minlen %d, want %d (%s)", t[i].expr, len, t[i].minlen, f ? f : "-");
		if (!f) {
			assert_true(len < 0);
			continue;
		}
		pcre2_code *rule = pcre2_compile((PCRE2_SPTR)t[i].expr, PCRE2_ZERO_TERMINATED,
						 t[i].ci ? PCRE2_CASELESS : 0, &err, &eo, NULL);
		pcre2_code *form = pcre2_compile((PCRE2_SPTR)f, PCRE2_ZERO_TERMINATED, 0, &err, &eo, NULL);
		pcre2_match_data *md = pcre2_match_data_create(1, NULL);

		assert_non_null(rule);
		if (!form)
			fail_msg("%s: form %s does not compile", t[i].expr, f);
		for (int w = 0; w < 2; w++)
			for (int j = 0; j < 4 && (w ? t[i].miss[j] : t[i].hit[j]); j++) {
				const char *subj = w ? t[i].miss[j] : t[i].hit[j];
				char sk[64];
				size_t k = 0;

				for (const char *c = subj; *c && k < sizeof(sk); c++)
					if (strchr((const char *)alnum_only, *c))
						sk[k++] = *c;
				int rm = pcre2_match(rule, (PCRE2_SPTR)subj, strlen(subj), 0, 0, md, NULL) >= 0;
				int fm = pcre2_match(form, (PCRE2_SPTR)sk, k, 0, 0, md, NULL) >= 0;

				if (rm && !fm) /* the one property that must hold */
					fail_msg("%s: %s matches, its form %s misses skeleton %.*s", t[i].expr,
						 subj, f, (int)k, sk);
				if (fm != !w)
					fail_msg("%s: form %s on %s: %d", t[i].expr, f, subj, fm);
			}
		pcre2_match_data_free(md);
		pcre2_code_free(rule);
		pcre2_code_free(form);
		free(f);
	}

	unsigned char set[256] = { 0 };
	int n = 0;

	assert_int_equal(scan_skel_bytes("[i1!|l][_\\W]?x[a@]", 1, set), 0);
	for (int c = 0; c < 256; c++)
		n += set[c];
	assert_int_equal(n, 3);
	assert_true(set['!'] && set['|'] && set['@']);

	/* a repeat past 10000 is not read as a literal '{' (its digits would
	 * be required letters): the rule is left alone */
	int len;
	char *f = scan_skel("x{10001}[_\\W]?yz", 0, NULL, &len);

	assert_null(f);
	assert_int_equal(len, SCAN_SKEL_NONE);
	/* nested repeats: the least length is capped, no int overflow */
	f = scan_skel("(?:(?:(?:ab){9999}){9999}){9999}[_\\W]?c", 0, NULL, &len);
	assert_non_null(f);
	assert_int_equal(len, 65536);
	free(f);
}

/* mark_gap: which rules go to SDB_BODY_GAP, and its databases */
static void test_gap_load(void **state)
{
	struct scan_load_opts o = { 0 };
	struct scan_db *d;
	char err[512] = "";

	(void)state;
	o.rules_path = write_file("g.rules",
				  "G1 body score 1 /\\bd[_\\W]?[i1!|l][_\\W]?d[_\\W]?r[_\\W]?[e3]x/i\n"
				  "SHORT body score 1 /a[_\\W]?b/\n"
				  "NOGAP body score 1 /d[i1]drex/\n"
				  "REJ body reject \"no\" /x[_\\W]?y[_\\W]?z[_\\W]?w/\n");
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->rules[scan_find_rule(d, "G1")].gap, 1);
	assert_non_null(d->rules[scan_find_rule(d, "G1")].skel);
	assert_int_equal(d->rules[scan_find_rule(d, "SHORT")].gap, 0);  /* "[a]{0,1}b"... */
	assert_int_equal(d->rules[scan_find_rule(d, "NOGAP")].gap, 0);
	assert_int_equal(d->rules[scan_find_rule(d, "REJ")].gap, 0);    /* rejects keep their order */
	assert_non_null(d->db[SDB_BODY_GAP]);
	assert_non_null(d->db[SDB_SKEL]);     /* lines without '!' or '|' */
	assert_non_null(d->db[SDB_SKEL + 3]); /* with both */
	assert_int_equal(d->skel_off, 0);
	assert_int_equal(d->skel['!'], 1 << 1); /* the first tier bit */
	assert_int_equal(d->skel['|'], 2 << 1);
	assert_int_equal(d->skel['@'], 0);
	assert_int_equal(d->skel['Q'], SCAN_SK_ALNUM);
	assert_int_equal(d->skel['_'], 0);
	for (int t = 0; t < SCAN_SKEL_TIERS; t++)
		assert_int_equal(d->skel_open[t], 0);
	scan_db_unref(d);

	/* "vx" on a line with '!' and '@' would not gate: that tier is open */
	o.rules_path = write_file("g.rules", "W body score 1 /\\bv[_\\W]?[i!][_\\W]?[a@]x/\n");
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->rules[scan_find_rule(d, "W")].gap, 1);
	assert_int_equal(d->skel_open[3], 1);
	assert_int_equal(d->skel_open[1], 0);
	assert_int_equal(d->skel_open[2], 0);
	assert_int_equal(d->skel_open[0], 0);
	scan_db_unref(d);
	/* W: that open tier; G1: the only body rule (SDB_BODY is empty, the
	 * lines are still rendered and read) */
	static const struct {
		const char *name, *rules, *msg;
		int want;
	} c[] = {
		{ "open tier", "W body score 1 /\\bv[_\\W]?[i!][_\\W]?[a@]x/\n", "see v!@x here", 1 },
		{ "open tier: other tiers", "W body score 1 /\\bv[_\\W]?[i!][_\\W]?[a@]x/\n",
		  "see v!ax, v-iax or via", 1 },
		{ "gap only", "G1 body score 1 /\\bd[_\\W]?[i1!|l][_\\W]?d[_\\W]?r[_\\W]?[e3]x/i\n",
		  "see D!d-r.ex here", 1 },
		{ "gap only, none", "G1 body score 1 /\\bd[_\\W]?[i1!|l][_\\W]?d[_\\W]?r[_\\W]?[e3]x/i\n",
		  "see d.i.d.r.e here", 0 },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char rules[256], msg[256];
		struct filter_verdict v;

		snprintf(rules, sizeof(rules), "threshold 100\n%s", c[i].rules);
		snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n%s\r\n", c[i].msg);
		use_rules(rules);
		run_pieces(msg, strlen(msg), NULL, &v);
		check_words(c[i].name, &v, c[i].rules[0] == 'W' ? "W" : "G1", c[i].want);
		scan_fini();
	}
}

/* mark_gate: which uri rules are gated, and by what (scan_rule.gate) */
static void test_uri_gate(void **state)
{
	static const struct {
		const char *id, *gate; /* NULL: in SDB_URI itself */
	} want[] = {
		{ "G_HOST", "(?:\\x2eytimg\\x2ecom\\x2f)" },
		{ "G_CASE", "(?:\\x2fland\\x2f)" },
		{ "G_SCHEME", NULL },  /* only "http://": every URI has it */
		{ "G_SHORT", NULL },   /* ".php": shorter than SCAN_GATE_MIN */
		{ "G_SIDE", NULL },    /* matches an ordinary URI: SDB_URI_SIDE */
		{ "G_REJECT", NULL },  /* reject rules stay */
		{ "G_BODY", NULL },    /* not a uri rule */
	};
	struct scan_load_opts o = { 0 };
	char err[512] = "";
	struct scan_db *d;

	(void)state;
	o.rules_path = write_file("g.rules",
				  "G_HOST   uri  score 1 /:\\/\\/[^\\/?]+\\.ytimg\\.com\\//\n"
				  "G_CASE   uri  score 1 /\\/LAND\\//i\n"
				  "G_SCHEME uri  score 1 /^https?:\\/\\/[^\\/]*\\d/\n"
				  "G_SHORT  uri  score 1 /[a-z]\\.php/\n"
				  "G_SIDE   uri  score 1 /^http:\\/\\/www\\./\n"
				  "G_REJECT uri  reject \"no\" /\\.rejecthost\\.com/\n"
				  "G_BODY   body score 1 /\\.ytimg\\.com/\n");
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		long i = scan_find_rule(d, want[k].id);

		assert_true(i >= 0);
		if (!want[k].gate != !d->rules[i].gate ||
		    (want[k].gate && strcmp(want[k].gate, d->rules[i].gate) != 0))
			fail_msg("%s: gate %s, want %s", want[k].id,
				 d->rules[i].gate ? d->rules[i].gate : "none",
				 want[k].gate ? want[k].gate : "none");
	}
	assert_non_null(d->db[SDB_URI]);
	assert_non_null(d->db[SDB_URI_GATED]);
	scan_db_unref(d);
}

/* scan_aside: a group (not a class, not an escaped parenthesis) repeated
 * SCAN_ASIDE_REPEAT times or more */
static void test_aside(void **state)
{
	(void)state;
	assert_true(scan_aside("\\b(?:[a-z]{8,}[\\s.]+){6}"));
	assert_true(scan_aside("(?:x){5,}"));
	assert_true(scan_aside("(?:x){29,40}"));
	assert_false(scan_aside("(?:x){4}"));
	assert_false(scan_aside("(?:x){4,}"));
	assert_false(scan_aside("x{9}"));
	assert_false(scan_aside("\\){9}"));
	assert_false(scan_aside("[)]{9}"));
	assert_false(scan_aside("[^])]{9}"));
	assert_false(scan_aside("(?:x)\\{9}"));
}

/* check_words - every word of list is (want=1) / is not matched */
static void check_words(const char *cname, const struct filter_verdict *v,
			const char *list, int want)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		if (matched(v, w) != want)
			fail_msg("case %s: rule %s: got %s want %s (header \"%s\")", cname, w,
				 want ? "no match" : "match", want ? "match" : "no match",
				 v->header);
}

static void test_scopes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(scope_cases) / sizeof(scope_cases[0]); i++) {
		const struct scope_case *c = &scope_cases[i];
		struct filter_verdict v;

		run_pieces(c->msg, strlen(c->msg), NULL, &v);
		assert_int_equal(v.reject, 0);
		check_words(c->name, &v, c->want, 1);
		check_words(c->name, &v, c->notwant, 0);
	}
}

/* every split point of the message, and byte by byte */
static void test_split_everywhere(void **state)
{
	const char *msg = "Subject: a needle in a folded\r\n subject line\r\n"
			  "\r\nline one\r\nhere is A PATTERN SPLIT ACROSS CHUNKS ok\r\n"
			  "rawmark and needle\r\n";
	size_t len = strlen(msg);
	const char *want = "HDR_SUBJ FOLDED SPLIT RAW_N BODY_N";

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		size_t sizes[3] = { cut ? cut : len, len, 0 };
		struct filter_verdict v;
		char name[32];

		run_pieces(msg, len, sizes, &v);
		snprintf(name, sizeof(name), "cut at %zu", cut);
		check_words(name, &v, want, 1);
	}
	for (size_t step = 1; step <= 7; step++) {
		size_t sizes[2] = { step, 0 };
		struct filter_verdict v;
		char name[32];

		run_pieces(msg, len, sizes, &v);
		snprintf(name, sizeof(name), "pieces of %zu", step);
		check_words(name, &v, want, 1);
	}
}

/* a pattern split over every boundary of a base64 body, too */
static void test_split_base64(void **state)
{
	/* "needle in base64" */
	const char *msg = "Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
			  "bm\r\nVlZGxlIGluIGJhc2U2NA==\r\n";
	size_t len = strlen(msg);

	(void)state;
	for (size_t cut = 1; cut < len; cut++) {
		size_t sizes[3] = { cut, len, 0 };
		struct filter_verdict v;

		run_pieces(msg, len, sizes, &v);
		if (!matched(&v, "BODY_N"))
			fail_msg("cut at %zu: got no match want BODY_N", cut);
	}
}

static const char *mime_rules =
	"threshold 100\n"
	"B64   body score 1 /secret base64 words/\n"
	"QP    body score 1 /caf\xc3\xa9 = soft-broken line/\n"
	"DEEP  body score 1 /deep inside/\n"
	"PRE   body score 1 /preamble text/\n"
	"BND   body score 1 /--outer/\n"
	/* the part's last line end is a space in the rendered paragraph */
	"TAIL  body score 1 /end of part ?$/m\n";

static int setup_mime(void **state)
{
	(void)state;
	use_rules(mime_rules);
	return 0;
}

static const struct scope_case mime_cases[] = {
	{ "base64 part",
	  "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
	  "preamble text\r\n--outer\r\nContent-Type: text/plain\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n"
	  "c2VjcmV0IGJh\r\nc2U2NCB3b3Jkcw==\r\n--outer--\r\n",
	  "B64", "PRE BND" },
	{ "base64 not decoded outside its part",
	  "Subject: x\r\n\r\nc2VjcmV0IGJhc2U2NCB3b3Jkcw==\r\n", "", "B64" },
	{ "quoted-printable with soft break",
	  "Content-Type: multipart/alternative; boundary=\"b 1\"\r\n\r\n--b 1\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	  "caf=C3=A9 =3D soft-=\r\nbroken line\r\n--b 1--\r\n",
	  "QP", "" },
	{ "nested multiparts",
	  "Content-Type: multipart/mixed; boundary=\"A\"\r\n\r\n--A\r\n"
	  "Content-Type: multipart/alternative;\r\n boundary=\"B\"\r\n\r\n--B\r\n"
	  "Content-Type: multipart/related; boundary=C\r\n\r\n--C\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\nZGVlcCBpbnNpZGU=\r\n--C--\r\n"
	  "--B--\r\n--A--\r\n",
	  "DEEP", "" },
	{ "delimiter line end belongs to the boundary",
	  "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\n"
	  "end of part\r\n--z--\r\n",
	  "TAIL", "BND" },
	{ "inner boundary closed by outer",
	  "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
	  "Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n"
	  "--o\r\nContent-Transfer-Encoding: base64\r\n\r\nZGVlcCBpbnNpZGU=\r\n--o--\r\n",
	  "DEEP", "" },
};

static void test_mime(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mime_cases) / sizeof(mime_cases[0]); i++) {
		const struct scope_case *c = &mime_cases[i];
		size_t len = strlen(c->msg);

		for (size_t step = 1; step <= len; step = step < 8 ? step + 1 : step * 3) {
			size_t sizes[2] = { step, 0 };
			struct filter_verdict v;
			char name[128];

			run_pieces(c->msg, len, sizes, &v);
			snprintf(name, sizeof(name), "%s (pieces of %zu)", c->name, step);
			check_words(name, &v, c->want, 1);
			check_words(name, &v, c->notwant, 0);
		}
	}
}

/* ---- the MIME walker alone ---- */

struct collect {
	char body[8192];
	size_t blen;
	int parts;
	char hdrs[1024];
	size_t hlen;
};

static void c_body(void *ctx, const char *p, size_t n)
{
	struct collect *c = ctx;

	assert_true(c->blen + n < sizeof(c->body));
	memcpy(c->body + c->blen, p, n);
	c->blen += n;
}

static void c_part_end(void *ctx)
{
	struct collect *c = ctx;

	c->parts++;
	c_body(ctx, "|", 1);
}

static void c_hbegin(void *ctx, const char *name)
{
	struct collect *c = ctx;

	c->hlen += (size_t)snprintf(c->hdrs + c->hlen, sizeof(c->hdrs) - c->hlen, "[%s]", name);
}

static void c_hdata(void *ctx, const char *p, size_t n)
{
	struct collect *c = ctx;

	assert_true(c->hlen + n < sizeof(c->hdrs));
	memcpy(c->hdrs + c->hlen, p, n);
	c->hlen += n;
	c->hdrs[c->hlen] = 0;
}

static const struct mime_sink collect_sink = {
	.header_begin = c_hbegin, .header_data = c_hdata,
	.body_data = c_body, .part_end = c_part_end,
};

struct walk_case {
	const char *name;
	const char *msg;
	const char *body;    /* decoded bodies, parts ended by '|' */
	const char *headers; /* "[Name]value" per top-level header */
};

static const struct walk_case walk_cases[] = {
	{ "plain", "A: 1\r\nB:  two\r\n\r\nl1\r\nl2\r\n", "l1\nl2\n|", "[A]1[B]two" },
	{ "fold", "S: a\r\n  b\r\n\tc\r\n\r\n", "|", "[S]a  b\tc" },
	{ "no body", "S: x\r\n", "", "[S]x" },
	{ "non-header line starts body", "S: x\r\nnot a header\r\nmore\r\n",
	  "not a header\nmore\n|", "[S]x" },
	{ "base64 with junk", "Content-Transfer-Encoding: BASE64\r\n\r\naGVs\r\n*bG8=\r\n",
	  "hello|", "[Content-Transfer-Encoding]BASE64" },
	{ "base64 padding then more", "Content-Transfer-Encoding: base64\r\n\r\nYQ==Yg==\r\n",
	  "ab|", NULL },
	{ "qp", "Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db=\r\nc =XY=4\r\n",
	  "a=bc =XY=4\n|", NULL },
	/* a part keeps the line end before its delimiter, as in SpamAssassin
	 * (where "a" + "\n" + "b" across parts is one paragraph, "a\n" +
	 * "\n" + "b" two) */
	{ "multipart drops preamble and epilogue",
	  "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\npre\r\n--q\r\n\r\none\r\n"
	  "--q \r\nContent-Type: text/html\r\n\r\ntwo\r\n\r\n--q--\r\nepilogue\r\n",
	  "one\n|two\n\n|", NULL },
	{ "boundary prefix is not a boundary",
	  "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n--qq\r\n--q--\r\n",
	  "--qq\n|", NULL },
	{ "bare LF line ends", "A: 1\n\nx\ny\n", "x\ny\n|", "[A]1" },
	{ "attachments stay raw",
	  "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\ntext\r\n--q\r\n"
	  "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "aGVsbG8=\r\n--q\r\nContent-Type: TEXT/html\r\n\r\nhtml\r\n--q--\r\n",
	  "text\n|html\n|", NULL },
};

/* walk - run the walker over msg in pieces of step bytes */
static void walk(const char *msg, size_t step, const struct mime_limits *lim,
		 struct collect *c, struct mime_stats *st)
{
	static struct mime_walker w; /* large: keep it off the stack */
	size_t len = strlen(msg);

	memset(c, 0, sizeof(*c));
	mime_init(&w, lim, &collect_sink, c);
	for (size_t off = 0; off < len; off += step)
		mime_feed(&w, msg + off, len - off < step ? len - off : step);
	mime_finish(&w);
	c->body[c->blen] = 0;
	if (st)
		*st = w.st;
}

static void test_walker(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(walk_cases) / sizeof(walk_cases[0]); i++) {
		const struct walk_case *wc = &walk_cases[i];

		for (size_t step = 1; step <= strlen(wc->msg); step++) {
			struct collect c;

			walk(wc->msg, step, NULL, &c, NULL);
			if (strcmp(c.body, wc->body) != 0)
				fail_msg("case %s step %zu: body got \"%s\" want \"%s\"",
					 wc->name, step, c.body, wc->body);
			if (wc->headers && strcmp(c.hdrs, wc->headers) != 0)
				fail_msg("case %s step %zu: headers got \"%s\" want \"%s\"",
					 wc->name, step, c.hdrs, wc->headers);
		}
	}
}

/* hostile structure is bounded: deep nesting, absurd boundaries, many
 * parts, lines longer than the line buffer */
static void test_walker_bounds(void **state)
{
	static char msg[64 * 1024];
	size_t o = 0;
	struct collect c;
	struct mime_stats st;
	struct mime_limits lim = { .max_depth = 4, .max_parts = 3 };

	(void)state;
	for (int d = 0; d < 30; d++)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o,
				      "Content-Type: multipart/mixed; boundary=L%d\r\n\r\n--L%d\r\n",
				      d, d);
	o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\r\ndeepest\r\n");
	walk(msg, 97, &lim, &c, &st);
	assert_int_equal(st.max_depth, 4);
	assert_true(st.depth_capped >= 1);
	/* the capped multipart is read as text, so its content is still seen */
	assert_non_null(strstr(c.body, "deepest"));

	char b[400];
	memset(b, 'x', sizeof(b) - 1);
	b[sizeof(b) - 1] = 0;
	snprintf(msg, sizeof(msg), "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
		 "--%s\r\n\r\nbody\r\n", b, b);
	walk(msg, 13, &lim, &c, &st);
	assert_int_equal(st.bad_boundary, 1);
	assert_non_null(strstr(c.body, "body"));

	o = (size_t)snprintf(msg, sizeof(msg), "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 0; i < 10; i++)
		o += (size_t)snprintf(msg + o, sizeof(msg) - o, "--p\r\n\r\npart%d\r\n", i);
	walk(msg, 1000, &lim, &c, &st);
	assert_int_equal(st.parts, 10);
	assert_int_equal(st.parts_capped, 7);
	assert_int_equal(c.parts, 3);
	assert_null(strstr(c.body, "part3"));

	/* a 5000-byte line, then a boundary: still found */
	o = (size_t)snprintf(msg, sizeof(msg), "Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\n\r\n");
	memset(msg + o, '-', 5000);
	o += 5000;
	o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\r\n--p\r\n\r\nafter\r\n--p--\r\n");
	walk(msg, 700, NULL, &c, &st);
	assert_int_equal(c.parts, 2);
	/* "\n|after\n|": line ends before delimiters kept, as SpamAssassin does */
	assert_int_equal(c.blen, 5000 + 1 + 1 + 5 + 1 + 1);
}

/* the engine delivers unstuffed lines, often one write per line or per
 * network read; ".." at a line start arrives as "." */
static void test_engine_pieces(void **state)
{
	const char *lines[] = {
		"Subject: x\r\n", "\r\n", ".leading dot stays\r\n",
		"needle on a line\r\n", ".\r\n", "last\r\n",
	};
	struct filter_msg *m;
	struct filter_verdict v;

	(void)state;
	m = scan_filter_ops.open();
	assert_non_null(m);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_int_equal(scan_filter_ops.feed(m, lines[i], strlen(lines[i])), 0);
	assert_int_equal(scan_filter_ops.finish(m, &v), 0);
	scan_filter_ops.close(m);
	assert_true(matched(&v, "BODY_N"));
	assert_string_equal(v.header_name, "X-Moat-Scan");
	assert_non_null(strstr(v.header, "score=1.0"));
}

/* feed_lines - msg to a new message one CRLF line per call (as
 * moat-smtpd's data_line() does), or in step-byte pieces (step != 0) */
static void feed_lines(const char *msg, size_t len, size_t step, struct filter_verdict *v)
{
	struct filter_msg *m = scan_filter_ops.open();

	assert_non_null(m);
	for (size_t o = 0; o < len;) {
		const char *nl = memchr(msg + o, '\n', len - o);
		size_t n = step ? (len - o < step ? len - o : step)
				: nl ? (size_t)(nl - msg) + 1 - o : len - o;

		assert_int_equal(scan_filter_ops.feed(m, msg + o, n), 0);
		o += n;
	}
	assert_int_equal(scan_filter_ops.finish(m, v), 0);
	scan_filter_ops.close(m);
}

static const char *chunk_rules =
	"threshold 100\n"
	"RAW_X   raw            score 1 /chunk tail\\r\\nchunk head/\n"
	"BODY_X  body           score 1 /^chunk tail chunk head$/\n"
	"B64_X   body           score 1 /^decoded tail decoded head$/\n"
	"RAWB_X  rawbody        score 1 /decoded head/\n"
	"HDR_X   header:X-Long  score 1 /longheadermark/\n"
	"HDR_END header:X-Long  score 1 /lastword$/\n";

/* filler - append CRLF lines of 'x' to msg at *o until it reaches to */
static void filler(char *msg, size_t *o, size_t to)
{
	while (*o + 2 < to) {
		size_t n = to - *o - 2 < 76 ? to - *o - 2 : 76;

		memset(msg + *o, 'x', n);
		*o += n;
		memcpy(msg + *o, "\r\n", 2);
		*o += 2;
	}
}

/* a pattern over a line end, placed around the filter's chunk boundaries
 * (32 KiB gather) and the walker's decode buffer, fed line by line and in
 * pieces: every byte is scanned once and streams carry over.  Body rules
 * read the rendered paragraph (the marks are paragraphs of their own) and,
 * as in SpamAssassin, only the first 50,000 rendered bytes of a part. */
static void test_chunk_boundary(void **state)
{
	static char msg[200 * 1024];
	const size_t marks[] = { 32768, 65536, 98304 };

	(void)state;
	use_rules(chunk_rules);
	for (size_t mi = 0; mi < sizeof(marks) / sizeof(marks[0]); mi++) {
		static const size_t shifts[] = { 0, 11, 22, 33, 43, 44, 45, 46, 47, 55, 66, 77, 90 };

		for (size_t si = 0; si < sizeof(shifts) / sizeof(shifts[0]); si++) {
			size_t shift = shifts[si], o = 0, at = marks[mi] - 45 + shift;
			struct filter_verdict v;
			char name[64];

			o += (size_t)snprintf(msg, sizeof(msg),
					      "Subject: t\r\nContent-Type: multipart/mixed; boundary=q\r\n"
					      "\r\n--q\r\n\r\n");
			filler(msg, &o, at);
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\r\nchunk tail\r\nchunk head\r\n\r\n"
					      "--q\r\nContent-Transfer-Encoding: base64\r\n\r\n");
			/* the second part's decoded bytes cross the decode buffer
			 * too: "x" * k then the marker, base64 with 76-char lines */
			static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			static unsigned char plain[70000];
			size_t pl = 0, col = 0;
			size_t k = marks[mi] - 40 + shift;

			if (k > sizeof(plain) - 64)
				k = sizeof(plain) - 64;
			memset(plain, 'y', k);
			pl = k;
			memcpy(plain + pl, "\n\ndecoded tail\ndecoded head\n\n", 30);
			pl += 30;
			for (size_t i = 0; i < pl; i += 3) {
				uint32_t t = (uint32_t)plain[i] << 16 |
					     (uint32_t)(i + 1 < pl ? plain[i + 1] : 0) << 8 |
					     (i + 2 < pl ? plain[i + 2] : 0);
				msg[o++] = al[t >> 18 & 63];
				msg[o++] = al[t >> 12 & 63];
				msg[o++] = i + 1 < pl ? al[t >> 6 & 63] : '=';
				msg[o++] = i + 2 < pl ? al[t & 63] : '=';
				if ((col += 4) == 76) {
					memcpy(msg + o, "\r\n", 2);
					o += 2;
					col = 0;
				}
			}
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\r\n--q--\r\n");
			assert_true(o < sizeof(msg));
			for (size_t step = 0; step <= 4099; step += 4099) {
				feed_lines(msg, o, step, &v);
				snprintf(name, sizeof(name), "mark %zu shift %zu step %zu", marks[mi],
					 shift, step);
				check_words(name, &v, "RAW_X RAWB_X", 1);
				/* body_part_scan_size: 50,000 rendered bytes */
				check_words(name, &v, "BODY_X", at < RENDER_BODY_SCAN);
				check_words(name, &v, "B64_X", k < RENDER_BODY_SCAN);
			}
		}
	}

	/* a header longer than the header gather buffer, folded, with the
	 * mark across its 2 KiB point and an end anchor on the last word */
	for (size_t shift = 2000; shift <= 2100; shift += 7) {
		size_t o = (size_t)snprintf(msg, sizeof(msg), "X-Long: ");
		struct filter_verdict v;
		char name[64];

		while (o < shift) {
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, "word word word\r\n ");
		}
		o += (size_t)snprintf(msg + o, sizeof(msg) - o,
				      "longheadermark and more\r\n\tthe lastword\r\nSubject: s\r\n\r\nb\r\n");
		feed_lines(msg, o, 0, &v);
		snprintf(name, sizeof(name), "long header %zu", shift);
		check_words(name, &v, "HDR_X HDR_END", 1);
	}
	scan_fini();
}

struct sel_case {
	const char *name;
	const char *rules;   /* one scope only: only its stream is opened */
	const char *msg;
	const char *want, *notwant;
};

/* Streams are opened only for scopes that have rules (and the MIME walk
 * only when headers or bodies are read): each scope alone must still see
 * everything it covers. */
static const struct sel_case sel_cases[] = {
	{ "raw only: attachment bytes", "R raw score 1 /Zm9vYmFy/\n",
	  "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
	  "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "Zm9vYmFy\r\n--q--\r\n", "R", "" },
	{ "raw only: headers and body", "R raw score 1 /subj-mark[^\\n]*\\n.*body-mark/s\n",
	  "Subject: subj-mark\r\n\r\nbody-mark\r\n", "R", "" },
	{ "header only", "H header:Subject score 1 /subj-mark/\n",
	  "From: x\r\nSubject: a\r\n subj-mark\r\n\r\nsubj-mark in body\r\n", "H", "" },
	{ "header only: not the body", "H header:Subject score 1 /subj-mark/\n",
	  "Subject: a\r\n\r\nsubj-mark in body\r\n", "", "H" },
	{ "any header only", "A header score 1 /hdr-mark$/\n",
	  "X-A: 1\r\nX-B: hdr-mark\r\n\r\nb\r\n", "A", "" },
	{ "body only: quoted-printable", "B body score 1 /body=mark/\n",
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\nbody=3Dma=\r\nrk\r\n", "B", "" },
	{ "body only: not headers", "B body score 1 /body-mark/\n",
	  "X-Other: body-mark\r\n\r\nclean\r\n", "", "B" },
	{ "body only: the Subject is its first line", "B body score 1 /^body-mark$/\n",
	  "X-Other: x\r\nSubject: body-mark\r\n\r\nclean\r\n", "B", "" },
	{ "rawbody only: decoded, not rendered", "R rawbody score 1 /a\\n\\nb <i>c/\n",
	  "Subject: s\r\nContent-Type: text/html\r\n\r\na\r\n\r\nb <i>c</i>\r\n", "R", "" },
	{ "uri only: the link, not its text", "U uri score 1 /^http:\\/\\/x\\.example\\/p$/\n",
	  "Content-Type: text/html\r\n\r\n<a href=\"http://x.example/p\">http://y.example/</a>\r\n",
	  "U", "" },
};

static void test_scope_selection(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sel_cases) / sizeof(sel_cases[0]); i++) {
		const struct sel_case *c = &sel_cases[i];
		char rules[512];

		snprintf(rules, sizeof(rules), "threshold 100\n%s", c->rules);
		use_rules(rules);
		for (size_t step = 0; step <= 5; step++) {
			struct filter_verdict v;
			char name[96];

			feed_lines(c->msg, strlen(c->msg), step, &v);
			snprintf(name, sizeof(name), "%s (step %zu)", c->name, step);
			check_words(name, &v, c->want, 1);
			check_words(name, &v, c->notwant, 0);
		}
		scan_fini();
	}
}

/* repeats: a URI or body line repeated in a message is scanned once
 * (scan_seen.h), and the hits are those of the message without repeats */
static void test_repeats(void **state)
{
	static const char *rules = "threshold 100\n"
		"U_EVIL uri score 1 /evil\\.example/\n"
		"U_PLAIN uri score 1 /^http:\\/\\/plain\\.example\\/$/\n"
		"B_LINE body score 1 /^see http/\n"
		"B_LAST body score 1 /last words/\n";
	char msg[2][4096];
	uint64_t bytes[2];

	(void)state;
	use_rules(rules);
	for (int k = 0; k < 2; k++) {
		struct filter_verdict v;
		int o = snprintf(msg[k], sizeof(msg[k]), "Subject: s\r\n\r\n");

		/* 1 or 40 paragraphs with the same link, one other, the first again */
		for (int i = 0; i < (k ? 40 : 1); i++)
			o += snprintf(msg[k] + o, sizeof(msg[k]) - (size_t)o,
				      "see http://plain.example/\r\n\r\n");
		o += snprintf(msg[k] + o, sizeof(msg[k]) - (size_t)o,
			      "and http://evil.example/x\r\n\r\nsee http://plain.example/\r\n\r\n"
			      "last words\r\n");
		uint64_t s0 = scan_scanned_bytes();
		run_pieces(msg[k], (size_t)o, NULL, &v);
		bytes[k] = scan_scanned_bytes() - s0;
		check_words(k ? "40 repeats" : "1 repeat", &v, "U_EVIL U_PLAIN B_LINE B_LAST", 1);
	}
	/* no raw rule: only units are scanned, and the repeats not again */
	assert_true(bytes[0] > 0);
	assert_int_equal(bytes[1], bytes[0]);
	scan_fini();
}

/* scan_ucache: a body line or URI met in an earlier message replays the
 * hits it had, the same as a scan, and is not scanned; a unit whose hits
 * could not all be known is not kept; a reject is not cut short; a reload
 * leaves the old entries unused */
static void unit_cache_msgs(const char *const *msgs, size_t n, struct filter_verdict *v)
{
	for (size_t i = 0; i < n; i++)
		run_pieces(msgs[i], strlen(msgs[i]), NULL, &v[i]);
}

static void test_unit_cache(void **state)
{
	static const char *rules =
		"threshold 100\n"
		"KILL   body reject \"refused\" /kill switch/\n"
		"B_X    body score 1 /alpha beta/\n"
		"ONEB   body score 1 /[#]/\n"
		"U_X    uri  score 1 /evil\\.example/\n"
		"U_G    uri  score 1 /:\\/\\/[^\\/?]+\\.gatehost\\.com\\//\n";
	static const char *const msgs[] = {
		/* 0: every kind on one line and one URI */
		"Subject: a\r\n\r\nalpha beta gamma # http://evil.example/x\r\n\r\n"
		"http://www.gatehost.com/p\r\n",
		/* 1: the same units: from the cache */
		"Subject: b\r\n\r\nalpha beta gamma # http://evil.example/x\r\n\r\n"
		"http://www.gatehost.com/p\r\n",
		/* 2: P_LA hit first, then a new line that also holds it: that
		 * line's own P_LA is not confirmed, so the line is not kept */
		"Subject: c\r\n\r\ngamma ray\r\n\r\ngamma again\r\n",
		/* 3: that line alone: P_LA must still hit */
		"Subject: d\r\n\r\ngamma again\r\n",
		/* 4, 5: a reject, twice */
		"Subject: e\r\n\r\nkill switch alpha beta\r\n",
		"Subject: f\r\n\r\nkill switch alpha beta\r\n",
		/* 6: a line that confirms nothing, kept empty; 7: again */
		"Subject: g\r\n\r\ngamma delta\r\n",
		"Subject: h\r\n\r\ngamma delta\r\n",
		/* 8: a line whose exact and one-byte rules the message had
		 * already hit is kept with them; 9: that line alone */
		"Subject: i\r\n\r\nalpha beta #\r\n\r\nmore alpha beta # here\r\n",
		"Subject: j\r\n\r\nmore alpha beta # here\r\n",
	};
	enum { N = sizeof(msgs) / sizeof(msgs[0]) };
	struct filter_verdict on[N], off[N];
	uint64_t h0, l0, h1, l1;

	char sadir[300], err[512] = "";
	struct scan_config c = { 0 };

	(void)state;
	/* P_LA has a lookahead: a SpamAssassin rule, a prefilter confirmed by
	 * PCRE2 on the unit */
	snprintf(sadir, sizeof(sadir), "%s/ucsa", tmpdir);
	assert_int_equal(mkdir(sadir, 0700), 0);
	write_file("ucsa/50_uc.cf", "body P_LA /gamma(?! delta)/\nscore P_LA 1\n");
	c.rules_path = write_file("uc.rules", rules);
	c.sa_dir = sadir;
	if (scan_init(&c, err, sizeof(err)) != 0)
		fail_msg("scan_init: %s", err);
	scan_ucache_stats(&h0, &l0);
	unit_cache_msgs(msgs, N, on);
	scan_ucache_stats(&h1, &l1);
	check_words("first", &on[0], "B_X P_LA ONEB U_X U_G", 1);
	check_words("from the cache", &on[1], "B_X P_LA ONEB U_X U_G", 1);
	check_words("unknown, not kept", &on[3], "P_LA", 1);
	assert_int_equal(on[4].reject, 1);
	assert_string_equal(on[4].rule, "KILL");
	assert_int_equal(on[5].reject, 1);
	assert_string_equal(on[5].rule, "KILL");
	check_words("nothing confirmed", &on[7], "P_LA", 0);
	check_words("kept with rules hit before", &on[9], "B_X ONEB", 1);
	/* message 1's line and two URIs, message 7's and 9's lines came from it */
	assert_true(h1 - h0 >= 5);
	assert_true(l1 - l0 > h1 - h0);

	scan_ucache_enable(0);
	unit_cache_msgs(msgs, N, off);
	scan_ucache_enable(1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(on[i].reject, off[i].reject);
		assert_string_equal(on[i].header, off[i].header);
		assert_string_equal(on[i].rule, off[i].rule);
	}
	scan_fini();

	/* another rule set: the entries of the old one match nothing */
	use_rules("threshold 100\nB_X body score 1 /alpha gamma/\nU_X uri score 1 /evil\\.org/\n");
	run_pieces(msgs[1], strlen(msgs[1]), NULL, &on[0]);
	check_words("after a reload", &on[0], "B_X U_X", 0);
	scan_fini();
}

/* scan_seen itself: kind and bytes both count; the bounds keep what they
 * kept and stop keeping more; a long unit is never kept */
/* seen_check - scan_seen_check with the unit's hash, as on_unit passes it */
static int seen_check(struct scan_seen *s, int kind, const char *p, size_t n)
{
	return scan_seen_check(s, kind, p, n, scan_unit_hash(kind, p, n));
}

static void test_seen_set(void **state)
{
	struct scan_seen s = { 0 };
	char u[64], big[SCAN_SEEN_UNIT_MAX + 1];
	unsigned kept = 0;

	(void)state;
	assert_int_equal(seen_check(&s, 1, "abc", 3), 0);
	assert_int_equal(seen_check(&s, 1, "abc", 3), 1);
	assert_int_equal(seen_check(&s, 2, "abc", 3), 0); /* another kind */
	assert_int_equal(seen_check(&s, 1, "abd", 3), 0);
	assert_int_equal(seen_check(&s, 1, "ab", 2), 0);
	assert_int_equal(seen_check(&s, 1, "", 0), 0);
	assert_int_equal(seen_check(&s, 1, "", 0), 1);
	memset(big, 'x', sizeof(big));
	assert_int_equal(seen_check(&s, 1, big, sizeof(big)), 0);
	assert_int_equal(seen_check(&s, 1, big, sizeof(big)), 0); /* not kept */
	/* fill: units of 64 bytes until the arena is full */
	for (unsigned i = 0; i < 2 * SCAN_SEEN_BYTES / sizeof(u); i++) {
		memset(u, 'a' + (int)(i % 26), sizeof(u));
		memcpy(u, &i, sizeof(i));
		assert_int_equal(seen_check(&s, 3, u, sizeof(u)), 0);
		kept += seen_check(&s, 3, u, sizeof(u));
	}
	assert_true(kept > 0 && kept < 2 * SCAN_SEEN_BYTES / sizeof(u));
	assert_true(s.used <= SCAN_SEEN_BYTES);
	assert_int_equal(seen_check(&s, 1, "abc", 3), 1); /* still there */
	memset(u, '#', sizeof(u));
	assert_int_equal(seen_check(&s, 1, u, sizeof(u)), 0);
	assert_int_equal(seen_check(&s, 1, u, sizeof(u)), 0); /* full: not kept */
	scan_seen_free(&s);
	assert_int_equal(seen_check(&s, 1, "abc", 3), 0); /* empty again */
	scan_seen_free(&s);
}

/* close at any point: before feeding, mid-header, mid-part */
static void test_close_anywhere(void **state)
{
	const char *msg = "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\nbmVlZGxl\r\n";

	(void)state;
	for (size_t cut = 0; cut <= strlen(msg); cut++) {
		struct filter_msg *m = scan_filter_ops.open();

		assert_non_null(m);
		assert_int_equal(scan_filter_ops.feed(m, msg, cut), 0);
		scan_filter_ops.close(m);
	}
	assert_true(scan_filter_ops.state_size() > sizeof(struct mime_walker));
}

/* ---- verdicts ---- */

static void test_verdicts(void **state)
{
	const char *rules =
		"threshold 3\n"
		"GTUBE body reject \"Test spam refused\" /XJS\\*C4JDBQADN1/\n"
		"S1 body score 2 /alpha/\n"
		"S2 body score 1.5 /beta/\n"
		"NEG body score -1 /gamma/\n";
	struct filter_verdict v;
	const char *m1 = "S: x\r\n\r\nXJS*C4JDBQADN1 alpha\r\n";
	const char *m2 = "S: x\r\n\r\nalpha beta\r\n";
	const char *m3 = "S: x\r\n\r\nalpha beta gamma\r\n";

	(void)state;
	use_rules(rules);
	run_pieces(m1, strlen(m1), NULL, &v);
	assert_int_equal(v.reject, 1);
	assert_string_equal(v.rule, "GTUBE");
	assert_string_equal(v.reply, "Test spam refused (rule GTUBE)");

	run_pieces(m2, strlen(m2), NULL, &v);
	assert_int_equal(v.reject, 1);
	assert_string_equal(v.rule, "S1");
	assert_non_null(strstr(v.reply, "score 3.5"));
	assert_non_null(strstr(v.reply, "S1,S2"));

	run_pieces(m3, strlen(m3), NULL, &v);
	assert_int_equal(v.reject, 0);
	assert_string_equal(v.header, "score=2.5 threshold=3.0 rules=S1,S2,NEG");
	scan_fini();
}

/* the shipped default rules refuse GTUBE, also when base64-encoded */
static void test_default_gtube(void **state)
{
	struct scan_config c = { .rules_path = SCAN_RULES_DIR "/default.rules" };
	char err[512] = "";
	struct filter_verdict v;
	const char *plain =
		"From: a@example.org\r\nSubject: test\r\n\r\n"
		"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
	const char *b64 =
		"From: a@example.org\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		"WEpTKkM0SkRCUUFETjEuTlNCTjMqMklETkVOKkdUVUJFLVNUQU5EQVJELUFOVEktVUJFLVRFU1Qt\r\n"
		"RU1BSUwqQy4zNFg=\r\n";
	const char *ham = "From: a@example.org\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n";

	(void)state;
	if (scan_init(&c, err, sizeof(err)) != 0)
		fail_msg("default rules: %s", err);
	run_pieces(plain, strlen(plain), NULL, &v);
	assert_int_equal(v.reject, 1);
	assert_string_equal(v.rule, "GTUBE");
	run_pieces(b64, strlen(b64), NULL, &v);
	assert_int_equal(v.reject, 1);
	assert_string_equal(v.rule, "GTUBE");
	run_pieces(ham, strlen(ham), NULL, &v);
	assert_int_equal(v.reject, 0);
	assert_string_equal(v.header, "score=0.0 threshold=5.0 rules=none");
	scan_fini();
}

/* ---- loading, reload, cache ---- */

struct bad_case {
	const char *name;
	const char *text;
	const char *want; /* substring of the error after the path */
};

static const struct bad_case bad_cases[] = {
	{ "lookbehind", "OK body score 1 /fine/\nLB body score 1 /(?<=a)b/\n",
	  ":2: rule LB: " },
	{ "backreference", "BR body score 1 /(a)\\1/\n", ":1: rule BR: " },
	{ "bad scope", "\n\nX nowhere score 1 /a/\n", ":3: rule X: scope" },
	{ "bad action", "X body punish /a/\n", ":1: rule X: action" },
	{ "no pattern", "X body score 1 a\n", ":1: rule X: pattern" },
	{ "unknown flag", "X body score 1 /a/q\n", ":1: rule X: unknown flag" },
	{ "duplicate", "X body score 1 /a/\nX body score 1 /b/\n", ":2: rule X: duplicate" },
	{ "bad threshold", "threshold -1\n", ":1: threshold" },
};

static void test_invalid_rules(void **state)
{
	(void)state;
	use_rules("GOOD body score 1 /needle/\n");
	struct scan_db *before = scan_db_current();

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		const char *p = write_file("bad.rules", c->text);
		char err[512] = "", want[512];

		assert_int_not_equal(scan_reload(p, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "%s%s", p, c->want);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %s: got \"%s\" want prefix \"%s\"", c->name, err, want);
		struct scan_db *now = scan_db_current();
		assert_ptr_equal(now, before); /* the old db stays live */
		scan_db_unref(now);
	}
	/* and Hyperscan's own message comes through */
	char err[512] = "";
	assert_int_not_equal(scan_reload(write_file("bad.rules", "LB body score 1 /(?<=a)b/\n"),
					 err, sizeof(err)), 0);
	assert_non_null(strstr(err, "Zero-width assertions are not supported"));

	struct filter_verdict v;
	run_pieces("S: x\r\n\r\nneedle\r\n", 17, NULL, &v);
	assert_true(matched(&v, "GOOD"));
	scan_db_unref(before);
	scan_fini();
}

static void test_reload_in_flight(void **state)
{
	const char *old_rules = "OLD body score 1 /needle/\n";
	const char *new_rules = "NEW body score 1 /needle/\n";
	const char *head = "Subject: x\r\n\r\nfirst ";
	const char *tail = "needle\r\n";
	struct filter_verdict v;
	char err[512] = "";

	(void)state;
	use_rules(old_rules);
	struct filter_msg *m1 = scan_filter_ops.open();
	assert_non_null(m1);
	assert_int_equal(scan_filter_ops.feed(m1, head, strlen(head)), 0);
	uint64_t g1 = scan_msg_db(m1)->gen;

	assert_int_equal(scan_reload(write_file("new.rules", new_rules), err, sizeof(err)), 0);
	struct filter_msg *m2 = scan_filter_ops.open();
	assert_non_null(m2);
	assert_true(scan_msg_db(m2)->gen > g1);
	assert_int_equal(scan_filter_ops.feed(m2, head, strlen(head)), 0);

	/* old message finishes on the old rules, new one on the new */
	assert_int_equal(scan_filter_ops.feed(m1, tail, strlen(tail)), 0);
	assert_int_equal(scan_filter_ops.finish(m1, &v), 0);
	assert_true(matched(&v, "OLD"));
	assert_false(matched(&v, "NEW"));
	scan_filter_ops.close(m1);
	assert_int_equal(scan_filter_ops.feed(m2, tail, strlen(tail)), 0);
	assert_int_equal(scan_filter_ops.finish(m2, &v), 0);
	assert_true(matched(&v, "NEW"));
	assert_false(matched(&v, "OLD"));
	scan_filter_ops.close(m2);

	/* reload with no path re-reads the configured (now the new) file */
	assert_int_equal(scan_reload(NULL, err, sizeof(err)), 0);
	run_pieces("S: x\r\n\r\nneedle\r\n", 17, NULL, &v);
	assert_true(matched(&v, "NEW"));
	scan_fini();
}

/* worker threads scan while the main thread reloads: every message ends
 * with the verdict of the rules it was opened with */
static atomic_int stress_stop;
static atomic_int stress_bad, stress_msgs;

static void *stress_worker(void *arg)
{
	const char *msg = "Subject: x\r\n\r\nsome text\r\nwith the needle\r\n";

	(void)arg;
	if (scan_filter_ops.thread_init() != 0)
		atomic_fetch_add(&stress_bad, 1);
	while (!atomic_load(&stress_stop)) {
		struct filter_msg *m = scan_filter_ops.open();
		struct filter_verdict v;

		if (!m) {
			atomic_fetch_add(&stress_bad, 1);
			continue;
		}
		const char *want = scan_msg_db(m)->rules[0].id;
		for (const char *p = msg; *p; p += 7)
			scan_filter_ops.feed(m, p, strnlen(p, 7));
		if (scan_filter_ops.finish(m, &v) != 0 || !v.reject || strcmp(v.rule, want) != 0)
			atomic_fetch_add(&stress_bad, 1);
		scan_filter_ops.close(m);
		atomic_fetch_add(&stress_msgs, 1);
	}
	return NULL;
}

static void test_reload_threads(void **state)
{
	pthread_t t[3];
	char err[512];

	(void)state;
	use_rules("R0 body reject \"r0\" /needle/\n");
	atomic_store(&stress_stop, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, stress_worker, NULL), 0);
	for (int gen = 1; gen <= 20; gen++) {
		char text[128];

		snprintf(text, sizeof(text), "R%d body reject \"r\" /needle/\nX%d raw score 1 /x%d/\n",
			 gen, gen, gen);
		assert_int_equal(scan_reload(write_file("stress.rules", text), err, sizeof(err)), 0);
		usleep(2000);
	}
	atomic_store(&stress_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	tap_note("%d messages across 21 rule sets\n", atomic_load(&stress_msgs));
	assert_int_equal(atomic_load(&stress_bad), 0);
	assert_true(atomic_load(&stress_msgs) > 0);
	scan_fini();
}

static void test_cache(void **state)
{
	char cdir[300], err[512] = "";
	struct scan_load_opts o = { 0 };
	struct scan_db *d;

	(void)state;
	snprintf(cdir, sizeof(cdir), "%s/cache", tmpdir);
	assert_int_equal(mkdir(cdir, 0700), 0);
	o.cache_dir = cdir;
	o.rules_path = write_file("c.rules", "A body score 1 /alpha/\nB header score 2 /beta/i\n");

	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->cache, CACHE_MISS);
	scan_db_unref(d);
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->cache, CACHE_HIT);
	assert_non_null(d->db[SDB_BODY]);
	assert_non_null(d->db[SDB_HEADER]);
	assert_null(d->db[SDB_RAW]);
	scan_db_unref(d);

	/* changed rules: a different key, so a miss, never the old file */
	o.rules_path = write_file("c.rules", "A body score 1 /alpha2/\nB header score 2 /beta/i\n");
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->cache, CACHE_MISS);
	scan_db_unref(d);

	/* a damaged file under the right name is stale: recompiled, rewritten */
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "for f in %s/scan-*.hsdb; do "
		 "dd if=/dev/urandom of=$f bs=1 count=64 seek=60 conv=notrunc 2>/dev/null; done",
		 cdir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->cache, CACHE_STALE);
	scan_db_unref(d);
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	assert_int_equal(d->cache, CACHE_HIT);

	/* and the cached db matches */
	scan_db_install(d);
	struct filter_verdict v;
	run_pieces("X: BETA\r\n\r\nalpha2\r\n", 20, NULL, &v);
	assert_true(matched(&v, "A"));
	assert_true(matched(&v, "B"));
	scan_db_install(NULL);
}

/* ---- SpamAssassin import ---- */

static const char *sa_cf =
	"# test rules\n"
	"body     __SUB_A   /alpha\\b/i\n"
	"body     __SUB_B   /bravo/\n"
	"header   __SUB_H   Subject =~ /^urgent/i\n"
	"header   __HAS_XM  exists:X-Mailer\n"
	"rawbody  __SUB_C   /charlie/\n"
	"body     __LOOK    /foo(?=bar)/\n"
	"body     EVALR     eval:check_something()\n"
	"meta     M_AND     __SUB_A && __SUB_B\n"
	"meta     M_NOT     __SUB_A && !__SUB_C\n"
	"meta     M_NEST    (M_AND || __SUB_H) && __HAS_XM\n"
	"meta     M_LOOK    __SUB_A && __LOOK\n"
	"meta     M_ARITH   (__SUB_A + __SUB_B) > 1\n"
	"meta     M_UNDEF   __SUB_A || __NOT_DEFINED_ANYWHERE\n"
	"header   __NEG     Subject !~ /^hello/i\n"
	"meta     M_NEG     __NEG && __SUB_A\n"
	"score M_NEG 0.2\n"
	"ifplugin Mail::SpamAssassin::Plugin::Foo\n"
	"body     PLAIN     /plain words/\n"
	"endif\n"
	"if !plugin(Mail::SpamAssassin::Plugin::Foo)\n"
	"body     OFF       /never imported/\n"
	"endif\n"
	"score M_AND 2.0 2.0 2.0 2.0\n"
	"score M_NOT 1.0\n"
	"score M_NEST 1.5\n"
	"score M_LOOK 1.0\n"
	"score M_ARITH 1.0\n"
	"score M_UNDEF 0.5\n"
	"score EVALR 3\n"
	"score PLAIN 0.1\n"
	/* rules that cannot change a verdict (scan_rule.dead) */
	"body     ZERO_ALONE /zulu/\n"
	"score    ZERO_ALONE 0\n"
	"body     __ZSUB    /yankee/\n"
	"meta     M_ZERO    __ZSUB && __SUB_A\n"
	"score    M_ZERO    0\n"
	"header   ZERO_HDR  X-Zero =~ /z/\n"
	"score    ZERO_HDR  0\n"
	/* counting metas: exact boolean forms over 0/1 rules */
	"meta     M_GE2     __SUB_A + __SUB_B + __SUB_C >= 2\n"
	"meta     M_NONE    (__SUB_A + __SUB_B + __SUB_C) < 1 && __SUB_H\n"
	"meta     M_ONE     __SUB_A + __SUB_B + __SUB_C == 1\n"
	"body     __MULT    /alpha/\n"
	"tflags   __MULT    multiple\n"
	"meta     M_MULT    __MULT > 1\n"
	"meta     __SUM     __SUB_A + __SUB_B\n"
	"meta     M_SUMSUM  __SUM + __SUB_C > 1\n"
	"meta     M_MINUS   __SUB_A - __SUB_B > 0\n"
	"meta     __MSUM    __MULT + __SUB_B\n"
	"meta     M_MSUM    __MSUM > 1\n"
	"score M_MSUM 0.1\n"
	"score M_GE2 0.1\nscore M_NONE 0.1\nscore M_ONE 0.1\nscore M_MULT 0.1\n"
	"score M_SUMSUM 0.1\nscore M_MINUS 0.1\n"
	/* ReplaceTags, as the plugin expands them */
	"replace_tag   F     f\n"
	"replace_tag   O     [o0]\n"
	"replace_tag   OO    <O><O>\n"
	"replace_inter W1    \\W?\n"
	"replace_post  P2    {1,2}\n"
	"body     RT_FOO    /<inter W1><post P2><F><O><O>/i\n"
	"body     RT_NEST   /\\bz<OO>m\\b/\n"
	"body     RT_NONE   /<NOPE>x/\n"
	"replace_rules RT_FOO RT_NEST\n"
	"replace_rules RT_NONE\n"
	"score RT_FOO 0.1\nscore RT_NEST 0.1\nscore RT_NONE 0.1\n";

/* skip_reason - reason an SA rule was skipped, or NULL */
static const char *skip_reason(const struct scan_db *d, const char *id)
{
	for (size_t i = 0; i < d->nskips; i++)
		if (strcmp(d->skips[i].id, id) == 0)
			return d->skips[i].reason;
	return NULL;
}

static void test_sa_import_small(void **state)
{
	char sadir[300], err[512] = "";
	struct scan_load_opts o = { 0 };
	struct scan_db *d;
	struct filter_verdict v;

	(void)state;
	snprintf(sadir, sizeof(sadir), "%s/sa", tmpdir);
	assert_int_equal(mkdir(sadir, 0700), 0);
	write_file("sa/50_test.cf", sa_cf);
	write_file("sa/init.pre", "loadplugin Mail::SpamAssassin::Plugin::Foo\n");
	o.sa_dir = sadir;
	o.threshold = 100;
	assert_int_equal(scan_db_load(&o, &d, err, sizeof(err)), 0);
	/* scored: M_AND M_NOT M_NEST M_LOOK M_ARITH M_UNDEF M_NEG EVALR PLAIN,
	 * M_GE2 M_NONE M_ONE M_MULT M_SUMSUM M_MINUS M_MSUM, RT_FOO RT_NEST
	 * RT_NONE; not imported: EVALR M_MULT M_MINUS M_MSUM (M_LOOK is: its
	 * __LOOK lookahead runs as a prefilter confirmed by PCRE2) */
	assert_int_equal(d->sa_scored_total, 19);
	if (d->sa_scored_imported != 15) {
		for (size_t i = 0; i < d->nskips; i++)
			fprintf(stderr, "# skipped %s: %s\n", d->skips[i].id, d->skips[i].reason);
		fail_msg("scored imported: got %u want 15", d->sa_scored_imported);
	}
	assert_non_null(strstr(skip_reason(d, "EVALR"), "eval"));
	assert_null(skip_reason(d, "M_ARITH"));
	assert_non_null(strstr(skip_reason(d, "M_MULT"), "hit counts"));
	assert_null(skip_reason(d, "M_SUMSUM")); /* A + B + C > 1 */
	assert_non_null(strstr(skip_reason(d, "M_MSUM"), "hit counts"));
	assert_non_null(strstr(skip_reason(d, "M_MINUS"), "operator '-'"));
	{ /* the plugin's expansion, character for character */
		const char *want[][2] = {
			{ "RT_FOO", "\\W?f{1,2}\\W?[o0]{1,2}\\W?[o0]{1,2}" },
			{ "RT_NEST", "\\bz[o0][o0]m\\b" },
			{ "RT_NONE", "<NOPE>x" }, /* an undefined tag stays literal */
		};
		for (size_t k = 0; k < 3; k++) {
			size_t i = 0;

			while (i < d->nrules && strcmp(d->rules[i].id, want[k][0]) != 0)
				i++;
			if (i == d->nrules)
				fail_msg("rule %s: not imported (%s)", want[k][0],
					 skip_reason(d, want[k][0]));
			if (strcmp(d->rules[i].pattern, want[k][1]) != 0)
				fail_msg("rule %s: got /%s/ want /%s/", want[k][0],
					 d->rules[i].pattern, want[k][1]);
		}
	}
	assert_null(skip_reason(d, "__LOOK"));
	assert_null(skip_reason(d, "M_LOOK"));
	for (size_t i = 0; i < d->nrules; i++)
		if (!strcmp(d->rules[i].id, "__LOOK"))
			assert_true(d->rules[i].prefilter);
	assert_null(skip_reason(d, "OFF"));
	{ /* dead: scored 0 and read by no meta that counts; not compiled,
	   * and ZERO_HDR's header not even made a view.  keep_all keeps them */
		static const char *const dead[] = { "ZERO_ALONE", "__ZSUB", "M_ZERO", "ZERO_HDR",
						    "__MULT" };
		static const char *const live[] = { "__SUB_A", "__SUB_B", "__SUB_C", "__SUB_H",
						    "__HAS_XM", "__LOOK", "M_AND", "M_NEG", "PLAIN" };
		struct scan_load_opts ko = o;
		struct scan_db *dk;

		for (size_t k = 0; k < sizeof(dead) / sizeof(dead[0]); k++) {
			long i = scan_find_rule(d, dead[k]);

			if (i < 0 || !d->rules[i].dead)
				fail_msg("%s: want dead (%ld)", dead[k], i);
		}
		for (size_t k = 0; k < sizeof(live) / sizeof(live[0]); k++) {
			long i = scan_find_rule(d, live[k]);

			if (i < 0 || d->rules[i].dead)
				fail_msg("%s: want live (%ld)", live[k], i);
		}
		for (size_t w = 0; w < d->nviews; w++)
			if (!strcasecmp(d->views[w], "X-Zero"))
				fail_msg("the view of a dead rule was built");
		ko.keep_all = 1;
		assert_int_equal(scan_db_load(&ko, &dk, err, sizeof(err)), 0);
		size_t xz = 0;

		for (size_t i = 0; i < dk->nrules; i++)
			assert_false(dk->rules[i].dead);
		for (size_t w = 0; w < dk->nviews; w++)
			xz += !strcasecmp(dk->views[w], "X-Zero");
		assert_int_equal(xz, 1);
		scan_db_unref(dk);
	}
	/* with a cache dir, the replace_tags compile checks are remembered:
	 * one line per checked pattern, and a second load agrees */
	{
		char vpath[400], line[256];
		struct scan_db *d2;
		unsigned lines = 0, ok = 0;
		FILE *f;

		o.cache_dir = tmpdir;
		assert_int_equal(scan_db_load(&o, &d2, err, sizeof(err)), 0);
		scan_db_unref(d2);
		snprintf(vpath, sizeof(vpath), "%s/scan-verdicts", tmpdir);
		assert_non_null(f = fopen(vpath, "r"));
		while (fgets(line, sizeof(line), f)) {
			lines++;
			ok += strlen(line) == 67 && line[65] == '1';
		}
		fclose(f);
		assert_int_equal(lines, 3); /* RT_FOO RT_NEST RT_NONE */
		assert_int_equal(ok, 3);
		assert_int_equal(scan_db_load(&o, &d2, err, sizeof(err)), 0);
		assert_int_equal(d2->sa_scored_imported, d->sa_scored_imported);
		scan_db_unref(d2);
		assert_non_null(f = fopen(vpath, "r"));
		for (lines = 0; fgets(line, sizeof(line), f);)
			lines++;
		fclose(f);
		assert_int_equal(lines, 3); /* nothing checked twice */
		o.cache_dir = NULL;
	}
	scan_db_install(d);

	struct { const char *msg, *want, *notwant; } cases[] = {
		{ "Subject: hi\r\n\r\nalpha bravo\r\n", "M_AND M_NOT M_UNDEF", "M_NEST" },
		{ "Subject: hi\r\nX-Zero: z\r\n\r\nalpha bravo zulu yankee\r\n", "M_AND",
		  "ZERO_ALONE M_ZERO ZERO_HDR __ZSUB" },
		{ "Subject: hi\r\n\r\nalpha charlie\r\n", "M_UNDEF", "M_AND M_NOT" },
		{ "Subject: Urgent!\r\nX-Mailer: x\r\n\r\nnothing\r\n", "M_NEST", "M_AND M_UNDEF" },
		{ "Subject: hi\r\nX-Mailer: x\r\n\r\nalpha bravo\r\n", "M_NEST M_AND", "" },
		{ "Subject: Urgent\r\n\r\nalpha bravo\r\n", "M_AND", "M_NEST" },
		{ "Subject: hi\r\n\r\nplain words\r\n", "PLAIN", "M_UNDEF" },
		{ "Subject: hello you\r\n\r\nalpha\r\n", "M_UNDEF", "M_NEG" },
		{ "Subject: hi hello\r\n\r\nalpha\r\n", "M_NEG", "" },
		{ "X-No-Subject: 1\r\n\r\nalpha\r\n", "M_NEG", "" },
		{ "Subject: hi\r\n\r\nalpha bravo\r\n", "M_ARITH M_GE2", "M_ONE M_NONE" },
		{ "Subject: hi\r\n\r\nalpha charlie\r\n", "M_GE2 M_SUMSUM", "M_ARITH M_ONE" },
		{ "Subject: hi\r\n\r\nalpha bravo charlie\r\n", "M_GE2 M_ARITH", "M_ONE" },
		{ "Subject: hi\r\n\r\nonly bravo\r\n", "M_ONE", "M_GE2 M_ARITH M_NONE M_SUMSUM" },
		{ "Subject: urgent\r\n\r\nnothing\r\n", "M_NONE", "M_ONE M_GE2" },
		{ "Subject: hi\r\n\r\nff.0o and z0om\r\n", "RT_FOO RT_NEST", "RT_NONE" },
		{ "Subject: hi\r\n\r\nfxoo zoom <NOPE>x\r\n", "RT_NEST RT_NONE", "RT_FOO" },
		/* a body lookahead: prefilter, then PCRE2 on the rendered line */
		{ "Subject: hi\r\n\r\nalpha foobar\r\n", "M_LOOK", "" },
		{ "Subject: hi\r\n\r\nalpha foobaz\r\n", "M_UNDEF", "M_LOOK" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "sa case %zu", i);
		run_pieces(cases[i].msg, strlen(cases[i].msg), NULL, &v);
		check_words(name, &v, cases[i].want, 1);
		check_words(name, &v, cases[i].notwant, 0);
	}
	scan_db_install(NULL);
}

struct sa_case {
	const char *name, *msg, *want, *notwant;
};

/* run_sa_cases - each message against the live rules: the rules of want
 * are listed in the verdict, those of notwant are not */
static void run_sa_cases(const struct sa_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct filter_verdict v;

		run_pieces(c[i].msg, strlen(c[i].msg), NULL, &v);
		check_words(c[i].name, &v, c[i].want, 1);
		check_words(c[i].name, &v, c[i].notwant, 0);
	}
}

/* headers as SpamAssassin reads them, with Debian's own rules:
 * :addr, prefilter + PCRE2 (lookahead, lookbehind), [if-unset], MESSAGEID,
 * ALL with names and /m, ToCc */
static void sa_debian_header_cases(void)
{
	static const struct sa_case c[] = {
		{ "From:addr", "From: 12345abc@example.com\r\n\r\nx\r\n",
		  "FROM_STARTS_WITH_NUMS", "" },
		{ "From:addr not the name",
		  "From: \"12345abc\" <joe@example.com>\r\n\r\nx\r\n", "",
		  "FROM_STARTS_WITH_NUMS" },
		{ "prefilter confirmed", "From: Deals <news@greatoffers.com>\r\n\r\nx\r\n",
		  "FROM_OFFERS", "" },
		{ "prefilter refused by PCRE2",
		  "From: Deals <news@mail.offersen>\r\n\r\nx\r\n", "", "FROM_OFFERS" },
		{ "lookahead in Subject", "Subject: c i a l i s now\r\n\r\nx\r\n",
		  "SUBJECT_DRUG_GAP_C", "" },
		{ "lookahead refuses", "Subject: a cialist\r\n\r\nx\r\n", "",
		  "SUBJECT_DRUG_GAP_C" },
		{ "if-unset: absent To reads as a valid address",
		  "From: a@example.com\r\n\r\nx\r\n", "", "TO_MALFORMED" },
		{ "malformed To", "From: a@example.com\r\nTo: garbage\r\n\r\nx\r\n",
		  "TO_MALFORMED", "" },
		{ "MESSAGEID joins the resent id",
		  "Message-Id: <0123456789abcdef@long.example.com>\r\n"
		  "Resent-Message-Id: <ab@x>\r\n\r\nx\r\n", "MSGID_SHORT", "" },
		{ "MESSAGEID long only", "Message-Id: <0123456789abcdef@long.example.com>\r\n"
		  "\r\nx\r\n", "", "MSGID_SHORT" },
		{ "lookahead and $ before the value's newline",
		  "Subject: x\r\nDate: Mon, 1 Jan 2024 10:00:00 +2500\r\n\r\nx\r\n",
		  "INVALID_DATE_TZ_ABSURD", "" },
		{ "lookahead refuses a real zone",
		  "Subject: x\r\nDate: Mon, 1 Jan 2024 10:00:00 +0200\r\n\r\nx\r\n",
		  "", "INVALID_DATE_TZ_ABSURD" },
		{ "embedded ^ dropped for the prefilter, kept by PCRE2",
		  "Message-ID: <ABC@spam.example>\r\n\r\nx\r\n", "MSGID_SPAM_CAPS", "" },
		{ "the lookahead's exception", "Message-ID: <ABC@mailcity.com>\r\n\r\nx\r\n",
		  "", "MSGID_SPAM_CAPS" },
		{ "ALL: a line end inside the block",
		  "Subject: foo [123\r\nX-A: y\r\n\r\nx\r\n", "UNCLOSED_BRACKET", "" },
		{ "ALL: closed bracket", "Subject: foo [123]\r\nX-A: y\r\n\r\nx\r\n", "",
		  "UNCLOSED_BRACKET" },
		{ "eval: missing To", "From: a@b.example\r\n\r\nx\r\n", "MISSING_HEADERS", "" },
		{ "eval: To present", "From: a@b.example\r\nTo: c@d.example\r\n\r\nx\r\n", "",
		  "MISSING_HEADERS" },
		{ "eval: subject all caps", "Subject: Re: BUY THIS NOW\r\n\r\nx\r\n",
		  "SUBJ_ALL_CAPS", "" },
		{ "eval: subject mixed", "Subject: Buy THIS NOW\r\n\r\nx\r\n", "",
		  "SUBJ_ALL_CAPS" },
		{ "ALL /m a later header's name", "Subject: s\r\nX-Company-City: Paris\r\n"
		  "\r\nx\r\n", "HEADER_SPAM", "" },
		{ "ToCc:addr", "To: a@b.example\r\nCc: o'brien@c.example\r\n\r\nx\r\n",
		  "APOSTROPHE_TOCC", "" },
		{ "ToCc:addr not the name", "To: \"O'Brien\" <ob@c.example>\r\n\r\nx\r\n",
		  "", "APOSTROPHE_TOCC" },
	};
	run_sa_cases(c, sizeof(c) / sizeof(c[0]));
}

static const char *sa_hdr_cf =
	"header  H_RCVD   Received =~ /^from a\\b/\n"
	"header  H_RCVD2  Received =~ /by x\\nfrom a/\n"
	"header  H_ALLID  ALL =~ /\\nMessage-Id: /i\n"
	/* SpamAssassin's __TO_EQ_FROM_1: its form without the backreference
	 * fires on an ordinary header block (mark_hside) */
	"header  H_TOFROM ALL =~ /\\nFrom: (?:[^\\n<]{0,80}<)?([^\\n\\s>]+)>?\\n+(?:[^\\n]{1,100}\\n+)*"
	"To: (?:[^\\n]{0,80}<)?\\1[>,\\s\\n]/ism\n"
	"header  H_UNSET  X-Foo =~ /^UNSET$/ [if-unset: UNSET]\n"
	"header  H_NAME   From:name =~ /^Joe Bloggs$/\n"
	"header  H_FIRST  Received:first =~ /from b/\n"
	"header  H_LAST   Received:last =~ /from b/\n"
	"header  H_LOOK   Subject =~ /free(?!dom)/i\n"
	"header  __H_BACK Subject =~ /(\\w)\\1\\1/\n"
	"meta    M_PF     H_LOOK && __H_BACK\n"
	"body    B_NICE   /nicebody/\n"
	"tflags  B_NICE   nice\n"
	"if can(Mail::SpamAssassin::Conf::feature_bug6558_free)\n"
	"body    B_CAN    /canbody/\n"
	"endif\n"
	"if can(Mail::SpamAssassin::Conf::feature_no_such_thing)\n"
	"body    B_NOCAN  /nocan/\n"
	"endif\n"
	"if (version >= 4.000000)\n"
	"body    B_VER    /verbody/\n"
	"endif\n"
	"if (version >= 9.000000)\n"
	"body    B_VER9   /ver9/\n"
	"endif\n"
	"ifplugin Mail::SpamAssassin::Plugin::NotLoaded\n"
	"body    B_NOPLUG /noplug/\n"
	"endif\n"
	"mimeheader MH_CT Content-Type =~ /foo/\n"
	"score MH_CT 1\n"
	"mimeheader MH_RAW Content-Type:raw =~ /foo/\n"
	"score MH_RAW 1\n"
	/* Debian's originating_ip_headers: anything else skips relay rules */
	"clear_originating_ip_headers\n"
	"originating_ip_headers X-Yahoo-Post-IP X-Originating-IP X-Apparently-From\n"
	"originating_ip_headers X-SenderIP X-AOL-IP\n"
	"originating_ip_headers X-MS-Exchange-CrossTenant-OriginalAttributedTenantConnectingIp\n"
	"header  R_HELO   X-Spam-Relays-Untrusted =~ /helo=\\S*terpsichore/i\n"
	"header  R_NOTHELO X-Spam-Relays-Untrusted =~ / helo=(?!terpsichore)\\S+ /\n"
	"header  R_EMPTY  X-Spam-Relays-Untrusted =~ /^$/\n"
	"score   R_EMPTY  0.01\n"
	"header  R_ENV    EnvelopeFrom =~ /\\@yahoo\\.com$/\n"
	"header  R_EXT    X-Spam-Relays-External =~ /^[^\\]]+ rdns= /\n";

/* the header semantics and rule-file semantics on small rules */
static void test_sa_headers(void **state)
{
	char sadir[300], err[512] = "";
	struct scan_load_opts o = { .threshold = 1e9 };
	struct scan_db *d;
	long i;

	(void)state;
	snprintf(sadir, sizeof(sadir), "%s/sahdr", tmpdir);
	assert_int_equal(mkdir(sadir, 0700), 0);
	write_file("sahdr/50_hdr.cf", sa_hdr_cf);
	write_file("sahdr/init.pre", "loadplugin Mail::SpamAssassin::Plugin::Check\n");
	o.sa_dir = sadir;
	if (scan_db_load(&o, &d, err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	/* tflags nice without a score line: -1 */
	assert_true((i = scan_find_rule(d, "B_NICE")) >= 0);
	assert_true(d->rules[i].score == -1.0);
	assert_true(scan_find_rule(d, "B_CAN") >= 0);
	assert_true(scan_find_rule(d, "B_VER") >= 0);
	assert_true(scan_find_rule(d, "B_NOCAN") < 0);
	assert_true(scan_find_rule(d, "B_VER9") < 0);
	assert_true(scan_find_rule(d, "B_NOPLUG") < 0);
	assert_null(skip_reason(d, "B_NOCAN")); /* a false block: never defined */
	/* mimeheader: PCRE2 on each MIME entity's headers; :raw refused */
	assert_true((i = scan_find_rule(d, "MH_CT")) >= 0);
	assert_true(d->rules[i].scope == SCOPE_EVAL);
	assert_non_null(skip_reason(d, "MH_RAW"));
	assert_non_null(strstr(skip_reason(d, "MH_RAW"), "mimeheader"));
	assert_true((i = scan_find_rule(d, "H_LOOK")) >= 0);
	assert_true(d->rules[i].prefilter);
	assert_true((i = scan_find_rule(d, "__H_BACK")) >= 0);
	assert_true(d->rules[i].prefilter);
	assert_true(scan_find_rule(d, "M_PF") >= 0);
	assert_true(d->sa_kind[SA_KIND_PREFILTER] >= 1);
	/* H_TOFROM is confirmed on every header block, outside ALL's
	 * database; the exact H_ALLID keeps that database */
	assert_true((i = scan_find_rule(d, "H_TOFROM")) >= 0);
	assert_true(d->rules[i].prefilter && d->rules[i].side);
	assert_int_equal(d->nhsides, 1);
	assert_int_equal(d->hsides[0], (unsigned)i);
	assert_non_null(d->vdb[d->rules[i].view]);
	/* relay rules: a Hyperscan prefilter per relay string, PCRE2 on its
	 * candidates; one that matches "" has none (PCRE2 on every message) */
	assert_true((i = scan_find_rule(d, "R_HELO")) >= 0);
	assert_true(d->rules[i].scope == SCOPE_EVAL && d->rules[i].pattern[0]);
	assert_true((i = scan_find_rule(d, "R_EMPTY")) >= 0);
	assert_string_equal(d->rules[i].pattern, "");
	assert_non_null(d->rdb[SA_RELAYS_UNTRUSTED]);
	assert_non_null(d->rdb[SA_RELAYS_EXTERNAL]);
	assert_non_null(d->rdb[SA_RELAYS_N]);
	assert_null(d->rdb[SA_RELAYS_TRUSTED]);
	scan_db_install(d);

	static const struct sa_case c[] = {
		{ "Received joined: ^ anchors once",
		  "Received: from b by x\r\nReceived: from a by y\r\n\r\nz\r\n",
		  "H_RCVD2 H_FIRST", "H_RCVD H_LAST" },
		{ "Received first", "Received: from a by y\r\nReceived: from b by x\r\n\r\nz\r\n",
		  "H_RCVD H_LAST", "H_RCVD2 H_FIRST" },
		{ "ALL has names", "Subject: s\r\nMessage-Id: <x@y>\r\n\r\nz\r\n", "H_ALLID", "" },
		{ "ALL: the first header has no newline before it",
		  "Message-Id: <x@y>\r\nSubject: s\r\n\r\nz\r\n", "", "H_ALLID" },
		{ "ALL, To equals From", "Subject: s\r\nFrom: Al <al@example.org>\r\nX: y\r\n"
		  "To: al@example.org\r\n\r\nz\r\n", "H_TOFROM", "" },
		{ "ALL, To differs", "Subject: s\r\nFrom: Al <al@example.org>\r\n"
		  "To: bo@example.org\r\n\r\nz\r\n", "", "H_TOFROM" },
		{ "ALL, no To", "Subject: s\r\nFrom: al@example.org\r\n\r\nz\r\n", "", "H_TOFROM" },
		{ "ALL, From first (no newline before it)",
		  "From: al@example.org\r\nTo: al@example.org\r\n\r\nz\r\n", "", "H_TOFROM" },
		{ "if-unset used", "Subject: s\r\n\r\nz\r\n", "H_UNSET", "" },
		{ "if-unset not used when present", "X-Foo: bar\r\n\r\nz\r\n", "", "H_UNSET" },
		{ "From:name", "From: \"Joe  Bloggs\" <joe@example.com>\r\n\r\nz\r\n",
		  "H_NAME", "" },
		{ "From:name addr only", "From: joe@example.com\r\n\r\nz\r\n", "", "H_NAME" },
		{ "prefilter + meta", "Subject: free stuff aaa\r\n\r\nz\r\n", "H_LOOK M_PF", "" },
		{ "mimeheader on a part's Content-Type",
		  "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
		  "Content-Type: application/foo\r\n\r\nAAAA\r\n--B--\r\n", "MH_CT", "" },
		{ "mimeheader: no part has it",
		  "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
		  "Content-Type: text/plain\r\n\r\nfoo\r\n--B--\r\n", "", "MH_CT" },
		{ "prefilter refused", "Subject: freedom aaa\r\n\r\nz\r\n", "", "H_LOOK M_PF" },
		{ "backreference refused", "Subject: free abc\r\n\r\nz\r\n", "H_LOOK", "M_PF" },
		{ "nice", "Subject: s\r\n\r\nnicebody canbody verbody\r\n",
		  "B_NICE B_CAN B_VER", "" },
		{ "relays: prefilters fire, PCRE2 confirms (and refuses the lookahead)",
		  "Received: from unknown (HELO terpsichore.farfalle.com) "
		  "(jdavid@[216.254.40.70]) (envelope-sender <jdavid7@yahoo.com>) by "
		  "mail13.speakeasy.net (qmail-ldap-1.03) with SMTP for <jm@jmason.org>; "
		  "12 Feb 2003 18:23:19 -0000\r\n\r\nz\r\n", "R_HELO R_ENV R_EXT",
		  "R_NOTHELO R_EMPTY" },
		{ "relays: another helo",
		  "Received: from mail1.example.com (host66.example.com [65.217.159.66]) by "
		  "mx.example.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856; Sat, 15 Mar 2003 "
		  "00:38:03 GMT\r\n\r\nz\r\n", "R_NOTHELO",
		  "R_HELO R_ENV R_EXT R_EMPTY" },
		{ "relays: none (the empty string, EnvelopeFrom undefined)",
		  "Subject: s\r\n\r\nz\r\n", "R_EMPTY", "R_HELO R_NOTHELO R_ENV R_EXT" },
	};
	run_sa_cases(c, sizeof(c) / sizeof(c[0]));
	struct filter_verdict v;
	const char *nm = "Subject: s\r\nX-Foo: y\r\n\r\nnicebody\r\n";
	run_pieces(nm, strlen(nm), NULL, &v);
	assert_true(v.score < 0);
	scan_db_install(NULL);
}

/* sa_cache_dir - where test_sa_import_debian keeps the compiled SA set
 * between runs: $MOAT_TEST_SCAN_CACHE, else SCAN_TEST_CACHE (this build's
 * tests/unit/scan-cache); created if missing */
static const char *sa_cache_dir(void)
{
	const char *dir = getenv("MOAT_TEST_SCAN_CACHE");

	if (!dir || !*dir)
		dir = SCAN_TEST_CACHE;
	if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0)
		fail_msg("cache dir %s: cannot create or write", dir);
	return dir;
}

static const char *const cache_names[] = { "off", "miss", "hit", "stale" };

/* the real Debian files: a large imported set, skips with reasons, and
 * the sample spam scores above the sample ham.  Compiling the set takes
 * Hyperscan minutes of CPU (as long in the normal build as under ASan),
 * so the compiled databases are kept in the product's own cache between
 * runs: its key is a SHA-256 over the Hyperscan version, the platform and
 * every expression with its flags and id, so a hit holds exactly the
 * bytes a compile would give, and any change to the rules, the import or
 * Hyperscan is a miss that compiles.  The import itself (parsing,
 * skips, expressions) runs on every load. */
static void sa_debian_start_cases(struct scan_db *d);

static void test_sa_import_debian(void **state)
{
	/* keep_all: the cases below score rules that count for nothing in
	 * Debian's set (__FILL_THIS_FORM_SHORT2...) after the load */
	struct scan_load_opts o = { .sa_dir = "/usr/share/spamassassin", .threshold = 1e9,
				    .keep_all = 1 };
	char err[512] = "";
	struct scan_db *d, *d2;
	size_t with_reason = 0;

	(void)state;
	if (access("/usr/share/spamassassin/72_active.cf", R_OK) != 0)
		fail_msg("spamassassin is not installed (tools/setup installs it)");
	o.cache_dir = sa_cache_dir();
	if (scan_db_load(&o, &d, err, sizeof(err)) != 0)
		fail_msg("SA import: %s", err);
	tap_note("SA: %u files, scored %u/%u imported, %u rules imported, %zu skipped, "
		      "cache %s (%s)\n", d->sa_files, d->sa_scored_imported, d->sa_scored_total,
		      d->sa_imported, d->nskips, cache_names[d->cache], o.cache_dir);
	assert_true(d->cache == CACHE_MISS || d->cache == CACHE_HIT || d->cache == CACHE_STALE);
	if (d->cache != CACHE_HIT) { /* keep only the set just compiled */
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "cd '%s' && ls -t scan-*.hsdb | tail -n +2 | xargs -r rm -f",
			 o.cache_dir);
		assert_int_equal(system(cmd), 0);
	}
	/* a second load is a hit and imports the same set */
	assert_int_equal(scan_db_load(&o, &d2, err, sizeof(err)), 0);
	assert_int_equal(d2->cache, CACHE_HIT);
	assert_int_equal(d2->sa_imported, d->sa_imported);
	assert_int_equal(d2->sa_scored_imported, d->sa_scored_imported);
	assert_int_equal(d2->nskips, d->nskips);
	scan_db_unref(d2);
	assert_true(d->sa_files > 40);
	assert_true(d->sa_scored_total > 500);
	assert_true(d->sa_scored_imported > 100);
	assert_true(d->sa_imported > 500);
	assert_true(d->nskips > 100);
	for (size_t i = 0; i < d->nskips; i++)
		with_reason += d->skips[i].reason && d->skips[i].reason[0] &&
			       strchr(d->skips[i].src, ':');
	assert_int_equal(with_reason, d->nskips);
	/* a relay rule runs over SpamAssassin's Received parser (scan_received.c);
	 * the registry-of-domains eval stays skipped with its reason */
	assert_true(scan_find_rule(d, "DOS_RCVD_IP_TWICE_C") >= 0);
	assert_true(scan_find_rule(d, "ALL_TRUSTED") >= 0);
	assert_non_null(skip_reason(d, "__RP_MATCHES_RCVD"));
	assert_true(d->nmetas > 0);
	scan_db_install(d);

	double score[2];
	const char *files[2] = { "/usr/share/doc/spamassassin/examples/sample-spam.txt",
				 "/usr/share/doc/spamassassin/examples/sample-nonspam.txt" };
	for (int k = 0; k < 2; k++) {
		FILE *f = fopen(files[k], "r");
		static char buf[65536];
		static char crlf[2 * 65536];
		size_t n, o2 = 0;
		struct filter_verdict v;

		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		for (size_t i = 0; i < n; i++) { /* as on the wire: CRLF */
			if (buf[i] == '\n')
				crlf[o2++] = '\r';
			crlf[o2++] = buf[i];
		}
		size_t sizes[4] = { 1, 77, 4096, 0 };
		run_pieces(crlf, o2, sizes, &v);
		score[k] = v.score;
		tap_note("%s: score %.2f reject %d rule %s header %s\n", files[k], v.score,
			      v.reject, v.rule, v.header);
	}
	/* sample-spam.txt carries GTUBE: SpamAssassin's own GTUBE rule, 1000 */
	assert_true(score[0] >= 999);
	assert_true(score[1] < 5.0);
	sa_debian_header_cases();
	sa_debian_start_cases(d);
	scan_db_install(NULL);
}

/* the reaper: a child that removes tmpdir once the test process is gone,
 * however it ends (teardown, a failed assert, SIGTERM from meson's timeout,
 * SIGKILL).  It waits for EOF on a pipe whose only write end this process
 * holds (close-on-exec, so no system() child keeps it open). */
static int reaper_fd = -1;
static pid_t reaper_pid = -1;

static int group_setup(void **state)
{
	int fd[2];
	char c;

	(void)state;
	if (!mkdtemp(tmpdir) || pipe2(fd, O_CLOEXEC) != 0)
		return -1;
	reaper_pid = fork();
	if (reaper_pid < 0)
		return -1;
	if (reaper_pid == 0) {
		close(fd[1]);
		setsid(); /* out of the test's process group: a group kill leaves it to clean */
		for (;;) {
			ssize_t r = read(fd[0], &c, 1);

			if (r == 0 || (r < 0 && errno != EINTR))
				break;
		}
		execlp("rm", "rm", "-rf", "--", tmpdir, (char *)NULL);
		_exit(127);
	}
	close(fd[0]);
	reaper_fd = fd[1];
	return 0;
}

static int group_teardown(void **state)
{
	int st = 0;

	(void)state;
	close(reaper_fd); /* EOF: the reaper removes tmpdir */
	reaper_fd = -1;
	if (waitpid(reaper_pid, &st, 0) != reaper_pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 && access(tmpdir, F_OK) != 0 ? 0 : -1;
}

/* scan_widen: bounded repeats widen outside classes, escapes and
 * lookarounds; a final repeat is cut only on request and only when m >= 1;
 * *exact says whether Hyperscan may take the result exactly */
static void test_widen(void **state)
{
	static const struct {
		const char *in, *out, *cut;
		int exact;
	} t[] = {
		{ "a{1,3}b", "a{1,}b", "a{1,}b", 1 },
		{ "(?:x\\s{0,2}y){3}", "(?:x\\s{0,}y){3}", "(?:x\\s{0,}y)", 1 },
		{ "(?:ab){2,5}", "(?:ab){2,}", "(?:ab)", 1 },
		{ "(?:ab){0,5}", "(?:ab){0,}", "(?:ab){0,}", 1 },   /* m = 0: no cut */
		{ "a{3}", "a{3}", "a", 1 },
		{ "[a{1,2}]x\\{1,2}", "[a{1,2}]x\\{1,2}", "[a{1,2}]x\\{1,2}", 1 },
		{ "[]{1,2}]{1,2}", "[]{1,2}]{1,}", "[]{1,2}]", 1 },
		{ "\\x{41}{1,2}", "\\x{41}{1,}", "\\x{41}", 1 },
		{ "(?!ab{1,2})c{1,2}", "(?!ab{1,2})c{1,}", "(?!ab{1,2})c", 0 },
		{ "(?<=x{1,2})y", "(?<=x{1,2})y", "(?<=x{1,2})y", 0 },
		{ "(a)\\1{1,2}", "(a)\\1{1,}", "(a)\\1", 0 },
		{ "(?>a{1,2})b", "(?>a{1,})b", "(?>a{1,})b", 0 },
		{ "\\Qa{1,2}\\E", "\\Qa{1,2}\\E", "\\Qa{1,2}\\E", 0 },
		{ "a{1,2}?b", "a{1,}?b", "a{1,}?b", 1 },
		/* blanks or a sign in the braces: text to PCRE2, not a repeat */
		{ "x{ 2,5}", "x{ 2,5}", "x{ 2,5}", 1 },
		{ "x{+2,5}", "x{+2,5}", "x{+2,5}", 1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int exact = -1;
		char *w = scan_widen(t[i].in, 0, &exact), *c = scan_widen(t[i].in, 1, &exact);

		assert_non_null(w);
		assert_non_null(c);
		if (strcmp(w, t[i].out) || strcmp(c, t[i].cut) || exact != t[i].exact)
			fail_msg("scan_widen(%s): %s / %s / %d", t[i].in, w, c, exact);
		free(w);
		free(c);
	}
}

/* starts_pcre2 - the offsets where a match of re_s starts in s (bit p of
 * the result, s shorter than 64), by PCRE2 anchored at each offset; with
 * rev, where a match of re_s ends in s (anchored at both ends of a
 * prefix), which is where matches start when re_s and s are reversed */
static uint64_t starts_pcre2(const char *re_s, const char *s, int rev)
{
	int ec;
	PCRE2_SIZE eo;
	size_t n = strlen(s);
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)re_s, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	uint64_t at = 0;

	if (!re)
		fail_msg("PCRE2 refuses /%s/", re_s);
	assert_true(n < 64);
	for (size_t p = 0; p <= n; p++) {
		int hit = rev ? pcre2_match(re, (PCRE2_SPTR)s, p, 0, PCRE2_ENDANCHORED, md, NULL) >= 0 :
			  pcre2_match(re, (PCRE2_SPTR)s, n, p, PCRE2_ANCHORED, md, NULL) >= 0;

		at |= (uint64_t)hit << (rev ? n - p : p);
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return at;
}

/* scan_reverse: the expression read backwards, checked character for
 * character, and by PCRE2: a match of it ends in the reversed subject
 * exactly where a match of the original starts in the subject (what
 * confirm_starts relies on); what it does not model is refused */
/* run rules (scan_rules.c, mark_runs): a raw rule "^C{N}" with /m is
 * tested in C when another raw rule keeps the stream's database, and
 * compiled when it would be the only one.  The two must agree on every
 * message: lines of random length around N from a small alphabet (bytes
 * in and out of the class, CR, LF), some after 32 KiB of short lines so
 * that the filter's 32 KiB gather ends a piece inside them, some with a
 * line of about 32,760 bytes across pieces, some without a final LF; fed
 * a line a call, in random steps, a byte a call and whole. */
static void runs_pass(const char *rules, size_t want_runs, uint8_t (*got)[3], size_t nmsg,
		      unsigned seed)
{
	static const char alpha[] = "aaaaBbz- \r\xe9";
	static char msg[128 * 1024];

	use_rules(rules);
	struct scan_db *d = scan_db_current();
	assert_int_equal(d->nruns, want_runs);
	scan_db_unref(d);
	for (size_t i = 0; i < nmsg; i++) {
		size_t o = 0, lines = 1 + (size_t)(rand_r(&seed) % 8), step;
		int big = i % 2, mode = (int)(i / 2 % 4);
		struct filter_verdict v;

		o += (size_t)snprintf(msg, sizeof(msg), "X-T: 1\r\n\r\n");
		if (big) { /* the gather's end falls in the lines below */
			size_t to = 32768 - (size_t)(rand_r(&seed) % 80);

			while (o + 12 <= to) {
				memcpy(msg + o, "0123456789\r\n", 12);
				o += 12;
			}
		}
		for (size_t l = 0; l < lines; l++) {
			size_t len = (size_t)(rand_r(&seed) % 40);

			if (l == 1 && i % 7 == 3) /* a line across pieces */
				len = 32750 + (size_t)(rand_r(&seed) % 21);
			for (size_t k = 0; k < len; k++)
				msg[o++] = len > 40 ? 'a' : alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
			if (l + 1 == lines && i % 5 == 0)
				break; /* no final line end */
			if (rand_r(&seed) % 2)
				msg[o++] = '\r';
			msg[o++] = '\n';
		}
		step = mode == 0 ? 0 : mode == 1 ? 1 + (size_t)(rand_r(&seed) % (big ? 5000 : 40)) :
		       mode == 2 ? (big ? 4093 : 1) : o;
		feed_lines(msg, o, step, &v);
		got[i][0] = (uint8_t)matched(&v, "LONG");
		got[i][1] = (uint8_t)matched(&v, "LOWER");
		got[i][2] = (uint8_t)matched(&v, "HUGE");
	}
	scan_fini();
}

static void test_runs(void **state)
{
	enum { NMSG = 1400 };
	static uint8_t native[NMSG][3], compiled[NMSG][3];
	const char *runs = "threshold 100\n"
			   "LONG   raw score 1 /^[^\\r\\n]{20}/m\n"
			   "LOWER  raw score 1 /^[a-z]{6,}/mi\n"
			   "HUGE   raw score 1 /^[^\\r\\n]{32760}/m\n";
	char with_other[512];
	size_t hit[3] = { 0 };

	(void)state;
	snprintf(with_other, sizeof(with_other), "%sOTHER  raw score 1 /rawmark/\n", runs);
	runs_pass(with_other, 3, native, NMSG, 19);
	runs_pass(runs, 0, compiled, NMSG, 19);
	for (size_t i = 0; i < NMSG; i++) {
		for (int k = 0; k < 3; k++) {
			if (native[i][k] != compiled[i][k])
				fail_msg("message %zu: native LONG=%d LOWER=%d HUGE=%d, compiled %d %d %d", i,
					 native[i][0], native[i][1], native[i][2], compiled[i][0],
					 compiled[i][1], compiled[i][2]);
			hit[k] += native[i][k];
		}
	}
	/* both outcomes occur often enough to tell */
	tap_note("runs: LONG on %zu, LOWER on %zu, HUGE on %zu of %d messages\n", hit[0], hit[1],
		 hit[2], NMSG);
	assert_true(hit[0] > NMSG / 10 && hit[0] < NMSG * 9 / 10);
	assert_true(hit[1] > NMSG / 10 && hit[1] < NMSG * 9 / 10);
	assert_true(hit[2] > NMSG / 40 && hit[2] < NMSG / 5);
	/* not a run: unanchored, a class holding \n, a group, not /m */
	use_rules("threshold 100\n"
		  "A raw score 1 /[^\\r]{20}/m\n"
		  "B raw score 1 /^[^\\r]{20}/m\n"
		  "C raw score 1 /^(?:ab){20}/m\n"
		  "D raw score 1 /^[^\\r\\n]{20}/\n"
		  "E raw score 1 /^\\S{20}x/m\n");
	struct scan_db *d = scan_db_current();
	assert_int_equal(d->nruns, 0);
	scan_db_unref(d);
	scan_fini();
}

static void test_reverse(void **state)
{
	static const struct {
		const char *in, *out, *subj[4];
	} t[] = {
		{ "abc", "cba", { "xxabcabc", "ab", NULL } },
		{ "a(?:bc|de)f", "f(?:cb|ed)a", { "abcf adef", "abdf", NULL } },
		{ "(?:ab){2,}c?", "c?(?:ba){2,}", { "ababab", "abxab", NULL } },
		{ "x[a-c\\]]{1,3}+y", NULL, { NULL } }, /* possessive */
		{ "x[a-c\\]]{1,3}?y", "y[a-c\\]]{1,3}?x", { "xa]by xcy", "xy", NULL } },
		{ "\\xe9\\x41b\\x{42}", "\\x{42}b\\x41\\xe9", { "x\xe9" "AbB", NULL } },
		{ "(?i:ab)\\s+\\bcd", "dc\\b\\s+(?i:ba)", { "AB  cd", "ab xcd", NULL } },
		{ "a{2}b{", "{ba{2}", { "aab{", "aab", NULL } },
		{ "[[:alpha:]]1|[^]x]2", "1[[:alpha:]]|2[^]x]", { "a1 q2 ]2", NULL } },
		{ "(a(b(c)d)e)", "(e(d(c)b)a)", { "abcde", NULL } },
		{ "a|", "a|", { "b", NULL } },
		{ "^ab", NULL, { NULL } },
		{ "ab$", NULL, { NULL } },
		{ "a(?=b)", NULL, { NULL } },
		{ "(a)\\1", NULL, { NULL } },
		{ "(?>ab)", NULL, { NULL } },
		{ "(?i)ab", NULL, { NULL } },
		{ "(?x:a b)", NULL, { NULL } },
		{ "\\Qab\\E", NULL, { NULL } },
		{ "a\\Kb", NULL, { NULL } },
		{ "\\101", NULL, { NULL } },
		{ "\\cA", NULL, { NULL } },
		{ "\\Aab", NULL, { NULL } },
		{ "ab\\z", NULL, { NULL } },
		{ "(ab", NULL, { NULL } },
		{ "[ab", NULL, { NULL } },
		{ "ab\\", NULL, { NULL } },
	};
	char deep[3 * 70 + 72] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got = scan_reverse(t[i].in);

		if (!t[i].out != !got || (got && strcmp(got, t[i].out) != 0))
			fail_msg("scan_reverse(%s): got %s want %s", t[i].in, got ? got : "(refused)",
				 t[i].out ? t[i].out : "(refused)");
		for (int j = 0; got && t[i].subj[j]; j++) {
			const char *s = t[i].subj[j];
			size_t n = strlen(s);
			char r[64];

			for (size_t k = 0; k < n; k++)
				r[k] = s[n - 1 - k];
			r[n] = 0;
			if (starts_pcre2(t[i].in, s, 0) != starts_pcre2(got, r, 1))
				fail_msg("/%s/ -> /%s/: starts differ on \"%s\"", t[i].in, got, s);
		}
		free(got);
	}
	/* nesting past 64 is refused, not followed */
	for (int i = 0; i < 70; i++)
		strcat(deep, "(?:");
	strcat(deep, "a");
	for (int i = 0; i < 70; i++)
		strcat(deep, ")");
	assert_null(scan_reverse(deep));
}

/* __FILL_THIS_FORM_SHORT1 and SHORT2 pending on one line share one scan
 * of the reversed line (scan.c unit_starts): each rule must read its own
 * starts, so each is listed exactly when PCRE2 over the line matches it */
static void sa_debian_two_starts(struct scan_db *d)
{
	static const struct {
		const char *body;
		int want1, want2;
	} t[] = {
		{ "1. name, 2. address, 3. phone, and your name, address, phone", 1, 1 },
		{ "1) full name 2) address 3) telephone; your name, address and phone", 1, 1 },
		{ "1) name, 2) address, 3) phone number", 1, 0 },
		{ "1) name: 2) address: 3) phone:", 1, 0 },
		{ "then your name, address, phone number and 1) age", 0, 1 },
		{ "a page of ages: 1) name, then nothing, 2) age", 0, 0 },
	};
	static const char *const ids[2] = { "__FILL_THIS_FORM_SHORT1", "__FILL_THIS_FORM_SHORT2" };
	long id[2];
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);

	for (int j = 0; j < 2; j++) {
		assert_true((id[j] = scan_find_rule(d, ids[j])) >= 0);
		assert_true(d->rules[id[j]].rstart);
		d->rules[id[j]].score = 0.001; /* listed in the verdict */
	}
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		char msg[1024], name[64];
		struct filter_verdict v;
		int want[2] = { t[k].want1, t[k].want2 };

		for (int j = 0; j < 2; j++)
			if ((pcre2_match(d->rules[id[j]].re, (PCRE2_SPTR)t[k].body, strlen(t[k].body),
					 0, 0, md, NULL) >= 0) != want[j])
				fail_msg("two starts case %zu: PCRE2 disagrees on %s", k, ids[j]);
		snprintf(msg, sizeof(msg), "Subject: hi\r\n\r\n%s\r\n", t[k].body);
		snprintf(name, sizeof(name), "two starts case %zu", k);
		run_pieces(msg, strlen(msg), NULL, &v);
		for (int j = 0; j < 2; j++)
			check_words(name, &v, ids[j], want[j]);
	}
	for (int j = 0; j < 2; j++)
		d->rules[id[j]].score = 0;
	pcre2_match_data_free(md);
}

/* confirm_starts (scan.c) on Debian's __FILL_THIS_FORM_SHORT2, whose
 * Hyperscan form is one iteration of its {3}: it fires on nearly every
 * paragraph, and PCRE2 runs only where a match may start.  Each body is
 * checked against PCRE2 over the whole line first (the old confirmation),
 * then through the filter with the rule scored so the verdict lists it */
static void sa_debian_start_cases(struct scan_db *d)
{
	static const struct {
		const char *body;
		int want;
		int rep; /* the lone iterations put before it, past confirm_starts'
			  * 64 anchored tries: the rest of the line is one call */
	} t[] = {
		/* the match starts at the line's first byte */
		{ "name, address, phone number and date of birth are needed", 1 },
		/* after 80 candidate starts that fail: found by the fallback */
		{ "please send your full name, home address, phone number", 1, 80 },
		{ "and then nothing else here at all, sorry", 0, 80 },
		/* it starts late, after text the one-iteration form fires on */
		{ "the message page said the usage was average, then a page of ages; "
		  "and at last please send your full name, home address, phone number", 1 },
		/* it starts right where a lone iteration ends */
		{ "ages: full name, address, phone, x", 1 },
		/* only lone iterations: the prefilter fires, nothing matches */
		{ "the message page said the usage was average, then a page of ages", 0 },
		{ "your name and then nothing else here at all, sorry", 0 },
	};
	long i = scan_find_rule(d, "__FILL_THIS_FORM_SHORT2");
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);

	assert_true(i >= 0);
	assert_true(d->rules[i].prefilter);
	assert_true(d->rules[i].rstart);
	assert_non_null(d->rules[i].re_start);
	assert_non_null(d->db[SDB_START]);
	d->rules[i].score = 0.001; /* listed in the verdict */
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		char msg[4096], body[4096] = "", name[64];
		struct filter_verdict v;

		for (int r = 0; r < t[k].rep; r++)
			strcat(body, "a page of ages; ");
		strcat(body, t[k].body);
		if ((pcre2_match(d->rules[i].re, (PCRE2_SPTR)body, strlen(body), 0, 0, md,
				 NULL) >= 0) != t[k].want)
			fail_msg("case %zu: PCRE2 over the line disagrees with the case", k);
		snprintf(msg, sizeof(msg), "Subject: hi\r\n\r\n%s\r\n", body);
		snprintf(name, sizeof(name), "start case %zu", k);
		run_pieces(msg, strlen(msg), NULL, &v);
		check_words(name, &v, "__FILL_THIS_FORM_SHORT2", t[k].want);
	}
	d->rules[i].score = 0;
	pcre2_match_data_free(md);
	sa_debian_two_starts(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scopes, setup_scope, teardown),
		cmocka_unit_test_setup_teardown(test_split_everywhere, setup_scope, teardown),
		cmocka_unit_test_setup_teardown(test_split_base64, setup_scope, teardown),
		cmocka_unit_test_setup_teardown(test_engine_pieces, setup_scope, teardown),
		cmocka_unit_test_setup_teardown(test_close_anywhere, setup_scope, teardown),
		cmocka_unit_test_setup_teardown(test_mime, setup_mime, teardown),
		cmocka_unit_test(test_aside),
		cmocka_unit_test(test_skel),
		cmocka_unit_test(test_gap_load),
		cmocka_unit_test(test_uri_gate),
		cmocka_unit_test(test_chunk_boundary),
		cmocka_unit_test(test_scope_selection),
		cmocka_unit_test(test_repeats),
		cmocka_unit_test(test_unit_cache),
		cmocka_unit_test(test_seen_set),
		cmocka_unit_test(test_walker),
		cmocka_unit_test(test_walker_bounds),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_default_gtube),
		cmocka_unit_test(test_invalid_rules),
		cmocka_unit_test(test_reload_in_flight),
		cmocka_unit_test(test_reload_threads),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_sa_import_small),
		cmocka_unit_test(test_sa_headers),
		cmocka_unit_test(test_sa_import_debian),
		cmocka_unit_test(test_widen),
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_runs),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
