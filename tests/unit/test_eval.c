/* test_eval.c - scan_eval.c: SpamAssassin's eval tests in C, against the
 * values Debian's SpamAssassin 4.0.1 gives (perl -MMail::SpamAssassin::Util
 * -e 'print parse_rfc822_date(...)', HeaderEval's date_diff, MIMEEval's
 * counters), and the MIME walker's counters they read. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scan.h"
#include "scan_eval.h"
#include "scan_received.h"
#include "scan_mime.h"
#include "scan_render.h"
#include "scan_rules.h"

static int64_t dp(const char *s)
{
	return sa_date_parse(s, strlen(s));
}

/* parse_rfc822_date: each value printed by SpamAssassin's own function */
static void test_date_parse(void **state)
{
	(void)state;
	assert_int_equal(dp("Tue, 3 Sep 2002 12:00:00 +0200"), 1031047200);
	assert_int_equal(dp("Wed, 04 Sep 02 01:02:03 EST"), 1031119323);
	/* the asctime form: the time goes with the date match, so 00:00 */
	assert_int_equal(dp("Sep  5 10:11:12 2002"), 1031184000);
	assert_int_equal(dp("1 Jan 99 00:00 GMT"), 915148800);
	/* day past the month's end: the first of the next month */
	assert_int_equal(dp("31 Feb 2003 10:00:00 -0000"), 1046512800);
	/* an unknown zone name reads as -0000 */
	assert_int_equal(dp("Mon, 2 Dec 2002 23:59:59 XYZ"), 1038873599);
	/* years past 2037 are 2037 */
	assert_int_equal(dp("12 Mar 2040 10:00:00 +0000"), 2120464800);
	assert_int_equal(dp("garbage"), -1);
	assert_int_equal(dp("0 Jan 2003 10:00:00"), -1);
}

static int64_t dd(const char *hb)
{
	return sa_date_diff(hb, strlen(hb));
}

/* date_diff: Date minus the closest Received date */
static void test_date_diff(void **state)
{
	(void)state;
	/* 2 h ahead of the only relay */
	assert_int_equal(dd("Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), 7200);
	/* the closest of two, whatever the sign */
	assert_int_equal(dd("Received: from a by b; Tue, 3 Sep 2002 15:00:00 +0000\n"
			    "Received: from c by d; Tue, 3 Sep 2002 11:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), 3600);
	/* Resent-Date first */
	assert_int_equal(dd("Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"
			    "Resent-Date: Tue, 3 Sep 2002 09:00:00 +0000\n"), -3600);
	/* no Received, or no Date: 0 (archived mail) */
	assert_int_equal(dd("Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), 0);
	assert_int_equal(dd("Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000\n"), 0);
	/* the last Received equal to Date is left out when there are others */
	assert_int_equal(dd("Received: from a by b; Tue, 3 Sep 2002 17:00:00 +0000\n"
			    "Received: from c by d; Tue, 3 Sep 2002 12:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), -18000);
	/* fetchmail's own line first (and qmail's above it): not a relay's time */
	assert_int_equal(dd("Received: from a by localhost with POP3 (fetchmail-5.9.0) for x; "
			    "Tue, 3 Sep 2002 11:30:00 +0000\n"
			    "Received: from c by d; Tue, 3 Sep 2002 10:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), 7200);
	assert_int_equal(dd("Received: (qmail 123 invoked by uid 0); Tue, 3 Sep 2002 11:45:00 +0000\n"
			    "Received: from a by localhost with POP3 (fetchmail-5.9.0) for x; "
			    "Tue, 3 Sep 2002 11:30:00 +0000\n"
			    "Received: from c by d; Tue, 3 Sep 2002 10:00:00 +0000\n"
			    "Date: Tue, 3 Sep 2002 12:00:00 +0000\n"), 7200);
}

/* check_for_shifted_date: the rule ranges */
static void test_shifted(void **state)
{
	struct scan_rule r = { 0 };
	const char *hb = "Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000\n"
			 "Date: Tue, 3 Sep 2002 14:00:00 +0000\n"; /* +4 h */

	(void)state;
	assert_int_equal(scan_eval_lookup("check_for_shifted_date('3', '6')", 0, NULL, &r), 1);
	assert_true(scan_eval_is_header(&r));
	assert_true(scan_eval_header(&r, hb, strlen(hb)));
	assert_int_equal(scan_eval_lookup("check_for_shifted_date('6', '12')", 0, NULL, &r), 1);
	assert_false(scan_eval_header(&r, hb, strlen(hb)));
	assert_int_equal(scan_eval_lookup("check_for_shifted_date('undef', '-96')", 0, NULL, &r), 1);
	assert_true(isnan(r.ea));
	assert_false(scan_eval_header(&r, hb, strlen(hb)));
	/* lists: never true without entries, not imported with them */
	assert_int_equal(scan_eval_lookup("check_from_in_welcomelist()", 0, NULL, &r), 1);
	assert_false(scan_eval_header(&r, hb, strlen(hb)));
	assert_int_equal(scan_eval_lookup("check_from_in_welcomelist()", 1, NULL, &r), 0);
	assert_int_equal(scan_eval_lookup("check_for_forged_gmail_received_headers()", 0, NULL, &r), 0);
}

static void walk(struct mime_walker *w, const char *msg)
{
	static const struct mime_sink none = { 0 };

	mime_init(w, NULL, &none, NULL);
	/* in two pieces, to cross a line */
	size_t n = strlen(msg), h = n / 2;

	mime_feed(w, msg, h);
	mime_feed(w, msg + h, n - h);
	mime_finish(w);
}

static int body_eval(const char *call, const char *msg)
{
	static struct mime_walker w;
	struct render_stats rs = { 0 };
	struct scan_rule r = { 0 };
	const char *e = strstr(msg, "\r\n\r\n");
	char hb[1024];
	size_t k = 0;

	assert_int_equal(scan_eval_lookup(call, 0, NULL, &r), 1);
	assert_false(scan_eval_is_header(&r));
	walk(&w, msg);
	/* the header block: "Name: value\n" (these tests fold nothing) */
	for (const char *p = msg; p < e; p++)
		if (*p != '\r')
			hb[k++] = *p;
	hb[k++] = '\n';
	rs.parts_html = w.st.html_count;
	return scan_eval_body(&r, hb, k, &w.st, &rs);
}

#define ALT(plain, html)                                                              \
	"From: a@b\r\nContent-Type: multipart/alternative; boundary=\"XX\"\r\n\r\n"      \
	"--XX\r\nContent-Type: text/plain\r\n\r\n" plain "--XX\r\n"                    \
	"Content-Type: text/html\r\n\r\n" html "--XX--\r\n"

/* MIMEEval: html only, multipart ratio, QP long lines, base64 text */
static void test_mime(void **state)
{
	(void)state;
	assert_true(body_eval("check_for_mime_html_only()",
			      "Content-Type: text/html\r\n\r\n<p>hi</p>\r\n"));
	assert_false(body_eval("check_for_mime_html_only()",
			       "Content-Type: text/plain\r\n\r\nhi\r\n"));
	assert_false(body_eval("check_for_mime_html_only()", ALT("hi\r\n", "<p>hi</p>\r\n")));
	assert_true(body_eval("check_for_mime_html_only()",
			      "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
			      "Content-Type: text/html\r\n\r\n<b>x</b>\r\n--XX--\r\n"));
	/* text/plain empty beside a long HTML: ratio 0 (MIME_HTML_MOSTLY) */
	assert_true(body_eval("check_mime_multipart_ratio('0.00','0.01')",
			      ALT("", "<p>a long enough html part to weigh</p>\r\n"
				      "<p>a long enough html part to weigh</p>\r\n"
				      "<p>a long enough html part to weigh</p>\r\n")));
	assert_false(body_eval("check_mime_multipart_ratio('0.00','0.01')",
			       ALT("same\r\n", "<p>same</p>\r\n")));
	/* a QP line of 80 bytes with its LF: long; 79: not */
	char qp[512];

	snprintf(qp, sizeof(qp), "Content-Transfer-Encoding: quoted-printable\r\n\r\n%.79s\r\n",
		 "0123456789012345678901234567890123456789012345678901234567890123456789"
		 "0123456789");
	assert_true(body_eval("check_for_mime('mime_qp_long_line')", qp));
	snprintf(qp, sizeof(qp), "Content-Transfer-Encoding: quoted-printable\r\n\r\n%.78s\r\n",
		 "0123456789012345678901234567890123456789012345678901234567890123456789"
		 "0123456789");
	assert_false(body_eval("check_for_mime('mime_qp_long_line')", qp));
	assert_true(body_eval("check_for_mime('mime_base64_encoded_text')",
			      "Content-Type: text/plain; charset=us-ascii\r\n"
			      "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"));
	assert_false(body_eval("check_for_mime('mime_base64_encoded_text')",
			       "Content-Type: text/plain; charset=iso-8859-1\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"));
	assert_false(body_eval("check_for_mime('mime_base64_encoded_text')",
			       "Content-Type: text/plain\r\nContent-Disposition: inline\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"));
}

/* check_body_length: the body after the blank line, CRLF as LF, in
 * whatever pieces it comes */
static void test_body_length(void **state)
{
	static struct mime_walker w;
	static const struct mime_sink none = { 0 };
	const char *msg = "Subject: x\r\nTo: y\r\n\r\nline one\r\nline two\r\n";

	(void)state;
	for (size_t cut = 0; cut <= strlen(msg); cut++) {
		mime_init(&w, NULL, &none, NULL);
		mime_feed(&w, msg, cut);
		mime_feed(&w, msg + cut, strlen(msg) - cut);
		mime_finish(&w);
		assert_int_equal(w.st.body_len, 18);
	}
	assert_true(body_eval("check_body_length('18')", msg));
	assert_false(body_eval("check_body_length('17')", msg));
}

static int hdr_eval(const char *call, const char *hb)
{
	struct scan_rule r = { 0 };

	assert_int_equal(scan_eval_lookup(call, 0, NULL, &r), 1);
	assert_true(scan_eval_is_header(&r));
	return scan_eval_header(&r, hb, strlen(hb));
}

/* HeaderEval: gated_through_received_hdr_remover, check_unresolved_template,
 * check_ratware_name_id */
static void test_header_evals(void **state)
{
	(void)state;
	assert_true(hdr_eval("gated_through_received_hdr_remover()", "From: a@b\n"));
	assert_false(hdr_eval("gated_through_received_hdr_remover()",
			      "Received: from a by b; Tue, 3 Sep 2002 10:00:00 +0000\n"));
	assert_true(hdr_eval("gated_through_received_hdr_remover()",
			     "Received: from groups.msn.com (tk2.msn.com [1.2.3.4]) by x\n"));
	assert_true(hdr_eval("gated_through_received_hdr_remover()",
			     "Mailing-List: contact x-help@l.org; run by ezmlm\n"
			     "Delivered-To: mailing list x@l.org\n"
			     "Received: (qmail 123 invoked from network); 3 Sep 2002 10:00:00 -0000\n"));
	/* an ezmlm list without qmail's line: the Received header counts */
	assert_false(hdr_eval("gated_through_received_hdr_remover()",
			      "Mailing-List: contact x-help@l.org; run by ezmlm\n"
			      "Delivered-To: mailing list x@l.org\n"
			      "Received: from a by b\n"));
	assert_true(hdr_eval("check_unresolved_template()", "X-Campaign: %CAMPAIGN_ID\n"));
	assert_false(hdr_eval("check_unresolved_template()", "Subject: 100%OFF %FREE\n"));
	assert_false(hdr_eval("check_unresolved_template()", "X-Rate: 50%off\n"));
	const char *mid = "Message-Id: <ABCDEFGHIJKLMNOPQRSTUVWXYZAB.joe@x.com>\n";
	char hb[512];

	snprintf(hb, sizeof(hb), "%sFrom: \"Joe\" <joe@x.com>\n", mid);
	assert_true(hdr_eval("check_ratware_name_id()", hb));
	snprintf(hb, sizeof(hb), "%sFrom: Joe <joe@x.com>\n", mid);
	assert_false(hdr_eval("check_ratware_name_id()", hb));
	snprintf(hb, sizeof(hb), "%sFrom: \"Joe\" <jim@x.com>\n", mid);
	assert_false(hdr_eval("check_ratware_name_id()", hb));
	/* check_for_to_in_subject('user'): the first To address's local part */
	static const char *const lp = "check_for_to_in_subject('user')";

	assert_true(hdr_eval(lp, "To: Joe <joe@x.com>, ann@y.com\nSubject: Re: hello joe\n"));
	assert_true(hdr_eval(lp, "To: joe@x.com\nSubject: joe, you won!\n"));
	assert_false(hdr_eval(lp, "To: joe@x.com\nSubject: JOE, you won!\n")); /* (?-i:) */
	assert_false(hdr_eval(lp, "To: joe@x.com\nSubject: great news, JOE!\n")); /* ^ */
	assert_true(hdr_eval(lp, "To: joe@x.com\nSubject: , JOE!\n"));
	assert_true(hdr_eval(lp, "To: j.o+e@x.com\nSubject: FW: j.o+e\n"));
	assert_false(hdr_eval(lp, "To: joe@x.com\nSubject: jxe\n"));
	assert_false(hdr_eval(lp, "To: ann@y.com, joe@x.com\nSubject: joe\n"));
	assert_false(hdr_eval(lp, "To: joe@x.com\nSubject: hello joe and ann\n"));
	assert_false(hdr_eval(lp, "Subject: joe\n"));
	/* the branches without (?-i:) ignore case: the local part is looked
	 * for in the Subject in any case before the expression is built */
	assert_true(hdr_eval(lp, "To: JOE@x.com\nSubject: Re: hello joe\n"));
	assert_true(hdr_eval(lp, "To: joe@x.com\nSubject: JOE\n"));
	assert_false(hdr_eval(lp, "To: joe@x.com\nSubject: hello\n"));
	/* the VBounce tests: a list of the welcomelist kind, empty */
	assert_false(hdr_eval("check_welcomelist_bounce_relays()", "From: a@b\n"));
	assert_false(hdr_eval("have_any_bounce_relays()", "From: a@b\n"));
}

/* a message through the walker and the renderer, as scan.c feeds them */
struct rmsg {
	struct mime_walker w;
	struct render r;
	struct scan_rule *mh; /* a mimeheader rule to try on each entity */
	int mh_hit;
};

static void rm_begin(void *ctx, int t)
{
	struct rmsg *m = ctx;

	render_part_begin(&m->r, (enum render_type)t);
	render_part_charset(&m->r, m->w.leaf_dbcs);
}

static void rm_data(void *ctx, const char *p, size_t n)
{
	render_data(&((struct rmsg *)ctx)->r, p, n);
}

static void rm_end(void *ctx)
{
	render_part_end(&((struct rmsg *)ctx)->r);
}

static void rm_skip(void *ctx)
{
	render_part_begin(&((struct rmsg *)ctx)->r, RT_SKIP);
}

static void rm_entity(void *ctx)
{
	struct rmsg *m = ctx;

	if (m->mh && scan_eval_entity(m->mh, &m->w))
		m->mh_hit = 1;
}

static void rm_unit(void *ctx, enum render_unit k, const char *p, size_t n)
{
	(void)ctx, (void)k, (void)p, (void)n;
}

static void rwalk(struct rmsg *m, const char *msg)
{
	static const struct mime_sink sink = {
		.part_begin = rm_begin, .body_data = rm_data, .part_end = rm_end,
		.part_skip = rm_skip, .entity_headers = rm_entity,
	};

	mime_init(&m->w, NULL, &sink, m);
	render_init(&m->r, 1u << RU_BODY | 1u << RU_URI, rm_unit, m);
	mime_feed(&m->w, msg, strlen(msg));
	mime_finish(&m->w);
	render_finish(&m->r);
}

static int html_eval(const char *call, const char *msg)
{
	static struct rmsg m;
	struct scan_rule r = { 0 };

	assert_int_equal(scan_eval_lookup(call, 0, NULL, &r), 1);
	assert_false(scan_eval_is_header(&r));
	m.mh = NULL;
	rwalk(&m, msg);
	return scan_eval_body(&r, "", 0, &m.w.st, &m.r.st);
}

#define HTML(cs, body) "Content-Type: text/html; charset=" cs "\r\n\r\n" body

/* HTMLEval over each text/html part: length in characters (HTML.pm's
 * length with normalize_charset on), images, anchors, comments */
static void test_html_evals(void **state)
{
	static const struct {
		const char *call, *msg;
		int want;
	} c[] = {
		/* 10 bytes with the LF (CRLF counts as LF) */
		{ "html_range('length', '9', '10')", HTML("us-ascii", "<b>ab</b>\r\n"), 1 },
		{ "html_range('length', '10', '20')", HTML("us-ascii", "<b>ab</b>\r\n"), 0 },
		/* valid UTF-8: "\xc3\xa9" is one character, 9 in all */
		{ "html_range('length', '8', '9')", HTML("utf-8", "<b>\xc3\xa9</b>\r\n"), 1 },
		/* not UTF-8, a single-byte charset: bytes */
		{ "html_range('length', '9', '10')", HTML("iso-8859-1", "<b>\xe9\xe9</b>\r\n"), 1 },
		/* Big5: two bytes, one character */
		{ "html_range('length', '8', '9')", HTML("big5", "<b>\xa4\xa4</b>\r\n"), 1 },
		/* a lead byte without a trail byte: Encode croaks, bytes */
		{ "html_range('length', '9', '10')", HTML("big5", "<b>\x85:</b>\r\n"), 1 },
		{ "html_eval('length', '< 11')", HTML("us-ascii", "<b>ab</b>\r\n"), 1 },
		{ "html_eval('length', '< 10')", HTML("us-ascii", "<b>ab</b>\r\n"), 0 },
		/* html_image_only: an <img> and a length in (min, max] */
		{ "html_image_only('0000','0400')", HTML("us-ascii", "<img src=\"http://x/a.gif\">\r\n"), 1 },
		{ "html_image_only('0000','0400')", HTML("us-ascii", "<b>no</b>\r\n"), 0 },
		{ "html_image_only('0400','0800')", HTML("us-ascii", "<img src=\"http://x/a.gif\">\r\n"), 0 },
		/* an image inside a link; after </a> it is not */
		{ "html_text_match('anchor', '<img>')",
		  HTML("us-ascii", "<a href=\"http://x/\"><img src=a.gif></a>\r\n"), 1 },
		{ "html_text_match('anchor', '<img>')",
		  HTML("us-ascii", "<a href=\"http://x/\">x</a><img src=a.gif>\r\n"), 0 },
		/* comments: "<!" and ">" on one line; a bogus "<!x>" is a
		 * comment, a declaration is not; a comment whose first line
		 * has no ">" */
		{ "html_text_match('comment', '<!.*?>')", HTML("us-ascii", "a<!-- c -->b\r\n"), 1 },
		{ "html_text_match('comment', '<!.*?>')", HTML("us-ascii", "a<!5122qHW>b\r\n"), 1 },
		{ "html_text_match('comment', '<!.*?>')", HTML("us-ascii", "<!DOCTYPE html>a\r\n"), 0 },
		{ "html_text_match('comment', '<!.*?>')",
		  HTML("us-ascii", "a<!-- one\r\ntwo -->b\r\n"), 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (html_eval(c[i].call, c[i].msg) != c[i].want)
			fail_msg("case %zu: %s on %s: want %d", i, c[i].call, c[i].msg, c[i].want);
}

/* mh_fires - does mimeheader rule def fire on some entity of msg */
static int mh_fires(const char *def, const char *msg)
{
	static struct rmsg m;
	struct scan_rule r = { 0 };
	char why[160];

	assert_int_equal(scan_eval_mimeheader(def, &r, why, sizeof(why)), 1);
	m.mh = &r;
	m.mh_hit = 0;
	rwalk(&m, msg);
	scan_rule_free(&r);
	return m.mh_hit;
}

/* mimeheader rules: PCRE2 on each entity's headers, the message's own
 * included; get_header's value ends in "\n" */
static void test_mimeheader(void **state)
{
	struct scan_rule r = { 0 };
	char why[160];
	const char *msg = "Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
			  "--XX\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
			  "--XX\r\nContent-Type: application/octet-stream;\r\n"
			  "\tname=\"invoice.pdf\"\r\nContent-ID: <abc@x>\r\n\r\nAAAA\r\n--XX--\r\n";

	(void)state;
	assert_true(mh_fires("Content-Type =~ m,\\bapplication/octet-stream\\b.+\\.pdf\\b,i", msg));
	/* the value is "...\n": $ matches before it; the top entity counts */
	assert_true(mh_fires("Content-Type =~ /^multipart\\/mixed; boundary=XX$/", msg));
	assert_true(mh_fires("Content-ID =~ /^<abc\\@x>$/", msg));
	assert_false(mh_fires("Content-Disposition =~ /attachment/", msg));
	/* refused, with the reason */
	assert_int_equal(scan_eval_mimeheader("Content-Type:raw =~ /x/", &r, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "raw"));
	assert_int_equal(scan_eval_mimeheader("X-Foo =~ /x/", &r, why, sizeof(why)), 0);
	assert_int_equal(scan_eval_mimeheader("Content-Type !~ /x/", &r, why, sizeof(why)), 0);
}

/* FreeMail's check_freemail_header over a few freemail_domains words: plain
 * domains match the text after the last "@" whole, wildcards as the
 * plugin's regex ("*" [^.]*, "?" one character), the default welcomelist
 * (info@, postmaster@ ...) never counts, the rule regex on top */
static int fm_eval(const char *call, const char *hb)
{
	static const char dom[] = " GMail.com hotmail.* *.att.ne.jp aol.co*.* mail.r?\n"
				  "bad_domain! yahoo.com";
	struct scan_rule r = { 0 };
	int hit;

	assert_int_equal(scan_eval_lookup(call, 0, dom, &r), 1);
	assert_true(scan_eval_is_header(&r));
	hit = scan_eval_header(&r, hb, strlen(hb));
	scan_rule_free(&r);
	return hit;
}

static void test_freemail(void **state)
{
	static const char *const c = "check_freemail_header('Reply-To')";
	struct scan_rule r = { 0 };

	(void)state;
	assert_true(fm_eval(c, "Reply-To: \"Joe\" <joe@gmail.com>\n"));
	assert_true(fm_eval(c, "Reply-To: Joe.Bloggs@GMAIL.COM\n"));
	assert_true(fm_eval(c, "From: a@b.com\nReply-To: a@b.com, c (C) <c@yahoo.com>\n"));
	assert_true(fm_eval(c, "Reply-To: a@b.com\nReply-To: c@yahoo.com\n"));
	assert_false(fm_eval(c, "From: joe@gmail.com\n"));
	assert_false(fm_eval(c, "Reply-To: joe@mail.gmail.com\n"));
	assert_false(fm_eval(c, "Reply-To: joe@gmail.com.example\n"));
	/* $email_welcomelist */
	assert_false(fm_eval(c, "Reply-To: info@gmail.com\n"));
	assert_false(fm_eval(c, "Reply-To: a=b=c@gmail.com\n"));
	assert_true(fm_eval(c, "Reply-To: a=b@gmail.com\n"));
	/* wildcards */
	assert_true(fm_eval(c, "Reply-To: joe@hotmail.de\n"));
	assert_false(fm_eval(c, "Reply-To: joe@hotmail.co.uk\n"));
	assert_true(fm_eval(c, "Reply-To: joe@x.att.ne.jp\n"));
	assert_false(fm_eval(c, "Reply-To: joe@att.ne.jp\n"));
	assert_true(fm_eval(c, "Reply-To: joe@aol.com.ar\n"));
	assert_true(fm_eval(c, "Reply-To: joe@mail.ru\n"));
	assert_false(fm_eval(c, "Reply-To: joe@mail.rus\n"));
	/* a word with other characters is dropped, as the plugin warns */
	assert_false(fm_eval(c, "Reply-To: joe@bad_domain!\n"));
	/* the rule regex: FREEMAIL_REPLYTO_END_DIGIT */
	assert_true(fm_eval("check_freemail_header('Reply-To', '\\d@')",
			    "Reply-To: joe77@gmail.com\n"));
	assert_false(fm_eval("check_freemail_header('Reply-To', '\\d@')",
			     "Reply-To: joe@gmail.com\nReply-To: 77@b.com\n"));
	assert_true(fm_eval("check_freemail_header('Disposition-Notification-To')",
			    "Disposition-Notification-To: <x@yahoo.com>\n"));
	/* not implemented: no domains, pseudo-headers, the other evals */
	assert_int_equal(scan_eval_lookup(c, 0, NULL, &r), 0);
	assert_int_equal(scan_eval_lookup("check_freemail_header('EnvelopeFrom', '\\d@')",
					  SCAN_EVAL_TRUST_CFG, "gmail.com", &r), 0);
	assert_int_equal(scan_eval_lookup("check_freemail_header('Reply-To:addr')", 0,
					  "gmail.com", &r), 0);
	assert_int_equal(scan_eval_lookup("check_freemail_replyto('reply')", 0, "gmail.com", &r),
			 0);
}

/* the plain domains are binary-searched (fm_plain): a list given out of
 * order finds every one of its domains, and no near miss */
static void test_freemail_many(void **state)
{
	static const char *const dom[] = {
		"zz.example", "gmail.com", "a.example", "mail.example", "gmx.de", "yahoo.co.uk",
		"yahoo.com", "aol.com", "m.example", "gmail.co", "b.example", "web.de",
		"hotmail.com", "e.example", "y.example", "c.example", "outlook.com", "qq.com",
	};
	static const char *const miss[] = {
		"gmail.comm", "gmail.c", "a.exampl", "zzz.example", "0.example", "yahoo.co",
		"b.example.org", "aaa", "zzzz",
	};
	char words[1024] = "", call[] = "check_freemail_header('Reply-To')", hb[256];
	struct scan_rule r = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(dom) / sizeof(dom[0]); i++) {
		strcat(words, i % 3 ? " " : "\n ");
		strcat(words, dom[i]);
	}
	assert_int_equal(scan_eval_lookup(call, 0, words, &r), 1);
	for (size_t i = 0; i < sizeof(dom) / sizeof(dom[0]); i++) {
		snprintf(hb, sizeof(hb), "Reply-To: joe@%s\n", dom[i]);
		if (!scan_eval_header(&r, hb, strlen(hb)))
			fail_msg("%s not found", dom[i]);
	}
	for (size_t i = 0; i < sizeof(miss) / sizeof(miss[0]); i++) {
		snprintf(hb, sizeof(hb), "Reply-To: joe@%s\n", miss[i]);
		if (scan_eval_header(&r, hb, strlen(hb)))
			fail_msg("%s found", miss[i]);
	}
	scan_rule_free(&r);
}

/* SpamAssassin's parse_received_line (Received.pm): each expected string is
 * what SpamAssassin 4.0.1 printed for the same line (tools/sa-relays.pl) */
static void test_received_line(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *as;
	} t[] = {
		{ "from mail1.insuranceiq.com (host66.insuranceiq.com [65.217.159.66] (may be "
		  "forged)) by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856 for "
		  "<jm@jmason.org>; Sat, 15 Mar 2003 00:38:03 GMT",
		  1, "[ ip=65.217.159.66 rdns=host66.insuranceiq.com helo=mail1.insuranceiq.com "
		     "by=dogma.slashnull.org ident= envfrom= intl=0 id=h2F0c2x31856 auth= msa=0 ]" },
		/* Postfix: "unknown" rDNS is none */
		{ "from localhost (unknown [127.0.0.1])\n\tby cabbage.jmason.org (Postfix) with "
		  "ESMTP id A96E18BD97\n\tfor <jm@localhost>; Thu, 13 Mar 2003 15:23:15 -0500 (EST)",
		  1, "[ ip=127.0.0.1 rdns= helo=localhost by=cabbage.jmason.org ident= envfrom= "
		     "intl=0 id=A96E18BD97 auth= msa=0 ]" },
		/* CommuniGate: an authentication token, "[...]" HELO flagged with "!" */
		{ "from [192.168.1.104] (account nazgul HELO [192.168.1.104]) by somewhere.com "
		  "(CommuniGate Pro SMTP 3.5.7) with ESMTP-TLS id 2088434; Fri, 07 Mar 2003 "
		  "13:05:06 -0500",
		  1, "[ ip=192.168.1.104 rdns= helo=!192.168.1.104! by=somewhere.com ident= "
		     "envfrom= intl=0 id=2088434 auth=Communigate msa=0 ]" },
		/* qmail-ldap: ident and the envelope sender */
		{ "from unknown (HELO terpsichore.farfalle.com) (jdavid@[216.254.40.70]) "
		  "(envelope-sender <jdavid@farfalle.com>) by mail13.speakeasy.net "
		  "(qmail-ldap-1.03) with SMTP for <jm@jmason.org>; 12 Feb 2003 18:23:19 -0000",
		  1, "[ ip=216.254.40.70 rdns= helo=terpsichore.farfalle.com by=mail13.speakeasy.net "
		     "ident=jdavid envfrom=jdavid@farfalle.com intl=0 id= auth= msa=0 ]" },
		/* Exim: helo= in the comment, rDNS first */
		{ "from sc8-sf-list1-b.sourceforge.net ([10.3.1.13] helo=sc8-sf-list1.sourceforge.net)"
		  " by sc8-sf-list2.sourceforge.net with esmtp (Exim 3.31-VA-mm2 #1 (Debian)) id "
		  "18t301-0007Bh-00; Wed, 12 Mar 2003 01:58:13 -0800",
		  1, "[ ip=10.3.1.13 rdns=sc8-sf-list1-b.sourceforge.net "
		     "helo=sc8-sf-list1.sourceforge.net by=sc8-sf-list2.sourceforge.net ident= "
		     "envfrom= intl=0 id=18t301-0007Bh-00 auth= msa=0 ]" },
		{ "from roissy (p573.as1.exs.dublin.eircom.net [159.134.226.61]) (authenticated "
		  "bits=0) by slate.dublin.wbtsystems.com (8.12.6/8.12.6) with ESMTP id "
		  "g9MFWcvb068860 for <jm@jmason.org>; Tue, 22 Oct 2002 16:32:39 +0100 (IST)",
		  1, "[ ip=159.134.226.61 rdns=p573.as1.exs.dublin.eircom.net helo=roissy "
		     "by=slate.dublin.wbtsystems.com ident= envfrom= intl=0 id=g9MFWcvb068860 "
		     "auth=Sendmail msa=0 ]" },
		/* skipped: not "from", a local pickup, a fetchmail handover */
		{ "by oak.ein.cz (Postfix, from userid 1002) id DABBD1BED3; Thu, 13 Feb 2003", 0, "" },
		{ "from mail pickup service by mail1.insuranceiq.com with Microsoft SMTPSVC; Thu, 13 "
		  "Feb 2003 19:05:39 -0500", 0, "" },
		{ "from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for "
		  "jm@localhost (single-drop); Thu, 13 Mar 2003 20:39:56 -0800 (PST)", 0, "" },
		/* unparseable: no IP */
		{ "from foo.example.com by bar", -1, "" },
		/* ")by " made ") by ": only then does the line hold ") by "
		 * (the gate scans it again); moat's parse before the gate */
		{ "from [192.0.2.9] (ident=joe helo=x)by relay.example.net (8.12.6); Sat, 15 Mar "
		  "2003 00:38:03 GMT",
		  1, "[ ip=192.0.2.9 rdns= helo=x by=relay.example.net ident=joe envfrom= intl=0 "
		     "id= auth= msa=0 ]" },
	};
	char out[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		out[0] = 0;
		assert_int_equal(sa_received_line(t[i].line, strlen(t[i].line), out, sizeof(out)),
				 t[i].rc);
		if (t[i].rc == 1)
			assert_string_equal(out, t[i].as);
	}
}

/* the Received parse's gate skips PCRE2 only for a pattern that cannot
 * match: over lines that hit the gated patterns, as the parse holds them
 * (whole, the "from " cut, upper case for the caseless ones), no pattern
 * matches that the gate skips */
static void test_relays_gate(void **state)
{
	static const char *const lines[] = {
		"from mail1.insuranceiq.com (host66.insuranceiq.com [65.217.159.66] (may be "
		"forged)) by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856 for "
		"<jm@jmason.org>; Sat, 15 Mar 2003 00:38:03 GMT",
		"from localhost (unknown [127.0.0.1]) by cabbage.jmason.org (Postfix) with ESMTP "
		"id A96E18BD97 for <jm@localhost>; Thu, 13 Mar 2003 15:23:15 -0500 (EST)",
		"from [192.168.1.104] (account nazgul HELO [192.168.1.104]) by somewhere.com "
		"(CommuniGate Pro SMTP 3.5.7) with ESMTP-TLS id 2088434",
		"from unknown (HELO terpsichore.farfalle.com) (jdavid@[216.254.40.70]) "
		"(envelope-sender <jdavid@farfalle.com>) by mail13.speakeasy.net (qmail-ldap-1.03) "
		"with SMTP for <jm@jmason.org>",
		"from sc8-sf-list1-b.sourceforge.net ([10.3.1.13] helo=sc8-sf-list1.sourceforge.net)"
		" by sc8-sf-list2.sourceforge.net with esmtp (Exim 3.31-VA-mm2 #1 (Debian)) id "
		"18t301-0007Bh-00",
		"from roissy (p573.as1.exs.dublin.eircom.net [159.134.226.61]) (authenticated "
		"bits=0) by slate.dublin.wbtsystems.com (8.12.6/8.12.6) with ESMTP id g9MFWcvb068860",
		"from mail pickup service by mail1.insuranceiq.com with Microsoft SMTPSVC",
		"from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for "
		"jm@localhost (single-drop)",
		"from x.example ([IPv6:2001:db8::1]) by y.example with Microsoft SMTP Server (TLS) id "
		"14.3.123.3; Sat, 15 Mar 2003 00:38:03 GMT",
		"from x.example (Authenticated sender: joe) by mail.example (Postfix) with ESMTPA id 1",
		"from 10.0.0.1 (SquirrelMail authenticated user joe) by webmail.example with HTTP",
		"from x.example (envelope-from <a@b.example>) by y.example with local-esmtp id 1",
		"from x.example ([192.0.2.1]) by y.example (via HTTP) id 2; Sat, 15 Mar 2003",
		"from [192.0.2.9] (helo=x) by relay.example.net (8.12.6)",
		"from qmail 1234 invoked by uid 0 by x.example with qmail-scanner-1.2",
		"from x.example (x.example [192.0.2.2]) by y.example (Lotus Domino Release 5.0.8) "
		"with ESMTP id 2003031500",
		"from y.example (HELO y) (192.0.2.3) by z.example (qpsmtpd/0.40) with ESMTP",
		"from y.example ([192.0.2.4]:4567) by z.example with [XMail 1.22 ESMTP Server] id "
		"<S1> for <a@b> from <c@d>",
		"(from a@localhost) by x.example (8.9.3)",
		"from [192.0.2.5] by mx.google.com with ESMTPS id a1sm123abc.0.2003.03.15.00.38.03 "
		"(version=TLSv1/SSLv3 cipher=RC4-MD5)",
		"from x (AUTH: LOGIN joe, SSL) by mail.gmx.net (mp001) with ESMTPA",
	};
	char v[1024];
	unsigned gated = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = strlen(lines[i]);

		assert_true(n < sizeof(v));
		for (int form = 0; form < 4; form++) {
			const char *l = lines[i];
			size_t ln = n;

			if (form & 1) { /* the "from " cut off, as the parse does */
				l += strncmp(l, "(from ", 6) == 0 ? 6 : 5;
				ln -= (size_t)(l - lines[i]);
			}
			for (size_t k = 0; k < ln; k++)
				v[k] = form & 2 ? (char)toupper((unsigned char)l[k]) : l[k];
			if (sa_relays_gate_check(v, ln, &gated) != 0)
				fail_msg("the gate skips a pattern that matches \"%.*s\"", (int)ln, v);
		}
	}
	assert_true(gated > 100); /* the gate is there */
}

/* a relay whose fields are 450 bytes each: its X-Spam-Relays-* string is
 * whole (it ended at 1,791 bytes, without "auth=", so rules anchored on
 * the end, e.g. __LAST_EXTERNAL_RELAY_NO_AUTH, missed it); a 4,095-byte
 * line with ")by " does not overrun the line buffer */
static void test_relay_long_fields(void **state)
{
	char helo[451], rdns[451], by[451], id[451], *hb, out[8192];
	struct sa_relays rl;
	size_t n;

	(void)state;
	memset(helo, 'h', 442), memcpy(helo + 442, ".example", 9);
	memset(rdns, 'r', 442), memcpy(rdns + 442, ".example", 9);
	memset(by, 'b', 442), memcpy(by + 442, ".example", 9);
	memset(id, 'I', 450), id[450] = 0;
	hb = malloc(4096);
	assert_non_null(hb);
	/* the header block as the scanner keeps it: one line a header */
	n = (size_t)snprintf(hb, 4096, "Received: from %s (%s [203.0.113.9]) by %s "
			     "(Postfix) with ESMTP id %s for <a@b.example>; "
			     "Thu, 13 Mar 2003 15:23:15 -0500\n", helo, rdns, by, id);
	assert_true(n < 4096);
	assert_int_equal(sa_relays_parse(hb, n, &rl), 0);
	assert_int_equal(rl.untrusted, 1);
	assert_true(rl.len[SA_RELAYS_UNTRUSTED] > 1800);
	assert_non_null(strstr(rl.str[SA_RELAYS_UNTRUSTED], by));
	assert_non_null(strstr(rl.str[SA_RELAYS_UNTRUSTED], " auth= msa=0 ]"));
	sa_relays_free(&rl);
	/* ")by " at the end of a line of the buffer's length */
	memset(hb, 'x', 4095);
	memcpy(hb, "from (x)by ", 11);
	assert_true(sa_received_line(hb, 4095, out, sizeof(out)) >= -1);
	free(hb);
}

/* hdr_fires - a header eval (scan_eval_lookup call, or "relays:" and a
 * header X-Spam-Relays-* definition) over a header block */
static int hdr_fires(const char *call, const char *hb)
{
	struct scan_rule r = { 0 };
	char why[200];
	int hit;

	if (strncmp(call, "relays:", 7) == 0)
		assert_int_equal(scan_eval_relays(call + 7, 0, &r, why, sizeof(why)), 1);
	else
		assert_int_equal(scan_eval_lookup(call, 0, "gmail.com yahoo.com", &r), 1);
	assert_true(scan_eval_is_header(&r));
	hit = scan_eval_header(&r, hb, strlen(hb));
	scan_rule_free(&r);
	return hit;
}

/* the trust path with no trusted_networks (private IPs and authenticated
 * relays are trusted until the first other one), RelayEval's counts, the
 * pseudo-headers, EnvelopeFrom and all_from_addrs: each expectation is
 * SpamAssassin's hit on the same message (tools/sa-eval-check) */
static void test_relay_evals(void **state)
{
	static const char pub[] =
		"Received: from mail1.example.com (host66.example.com [65.217.159.66]) by "
		"mx.example.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856; Sat, 15 Mar 2003 "
		"00:38:03 GMT\nFrom: a@b.com\n";
	static const char trusted[] =
		"Received: from localhost (unknown [127.0.0.1]) by cabbage.jmason.org (Postfix) "
		"with ESMTP id A96E18BD97; Thu, 13 Mar 2003 15:23:15 -0500 (EST)\n"
		"Received: from [192.168.1.104] (account nazgul HELO [192.168.1.104]) by "
		"somewhere.com (CommuniGate Pro SMTP 3.5.7) with ESMTP-TLS id 2088434; Fri, 07 Mar "
		"2003 13:05:06 -0500\nFrom: a@b.com\n";
	static const char qmail[] =
		"Received: from unknown (HELO terpsichore.farfalle.com) (jdavid@[216.254.40.70]) "
		"(envelope-sender <jdavid7@yahoo.com>) by mail13.speakeasy.net (qmail-ldap-1.03) "
		"with SMTP for <jm@jmason.org>; 12 Feb 2003 18:23:19 -0000\n"
		"From: Joe <joe@example.com>\nReturn-Path: <bounce@list.example>\n";
	static const char unparse[] = "Received: from foo.example.com by bar\n"
				      "Received: from [10.0.0.9] by x.example with SMTP; 1 Jan 2003 "
				      "00:00:00 -0000\nFrom: a@b.com\n";
	static const char fetch[] =
		"Received: from cabbage.jmason.org [127.0.0.1] by localhost with IMAP "
		"(fetchmail-5.9.0) for jm@localhost (single-drop); Thu, 13 Mar 2003 20:39:56 -0800\n"
		"Received: from [10.0.0.1] by x.example with SMTP; 1 Jan 2003 00:00:00 -0000\n"
		"X-Sender: a@b.com\nReturn-Path: <env@gmail.com>\nFrom: a@b.com\n";
	static const char xenv[] = "X-Envelope-From: <env@gmail.com>\nReceived: from [10.0.0.1] "
				   "by x.example with SMTP; 1 Jan 2003 00:00:00 -0000\n"
				   "From: env@GMail.com\n";
	static const char ntld[] = "From: Bob <Bob@Example.TOP>\nReturn-Path: <b@x.com>\n";
	char env[SA_ADDR_MAX];
	struct scan_rule r = { 0 };

	(void)state;
	assert_false(hdr_fires("check_all_trusted()", pub));
	assert_true(hdr_fires("check_all_trusted()", trusted));
	assert_false(hdr_fires("check_no_relays()", trusted));
	assert_true(hdr_fires("check_no_relays()", "From: a@b.com\n"));
	/* an X-Originating-IP header is a relay of its own, the oldest */
	assert_true(hdr_fires("check_all_trusted()", "X-Originating-IP: [10.1.2.3]\n"));
	assert_false(hdr_fires("check_all_trusted()", "X-Originating-IP: [8.8.8.8]\n"));
	assert_true(hdr_fires("check_relays_unparseable()", unparse));
	assert_false(hdr_fires("check_all_trusted()", unparse));
	assert_false(hdr_fires("check_relays_unparseable()", pub));
	/* __RDNS_NONE, __LAST_EXTERNAL_RELAY_NO_AUTH, RCVD_ILLEGAL_IP-style */
	assert_true(hdr_fires("relays:X-Spam-Relays-External =~ /^[^\\]]+ rdns= /", qmail));
	assert_false(hdr_fires("relays:X-Spam-Relays-External =~ /^[^\\]]+ rdns= /", pub));
	assert_true(hdr_fires("relays:X-Spam-Relays-Untrusted =~ /^[^\\]]+ auth= /", pub));
	assert_false(hdr_fires("relays:X-Spam-Relays-Untrusted =~ /./", trusted));
	assert_true(hdr_fires("relays:X-Spam-Relays-Trusted =~ /auth=Communigate/", trusted));
	assert_true(hdr_fires("relays:X-Spam-Relays-Internal =~ / intl=1 /", trusted));
	/* header EnvelopeFrom =~ (TVD_ENVFROM_APOST-style): undefined matches nothing */
	assert_true(hdr_fires("relays:EnvelopeFrom =~ /^jdavid7\\@yahoo\\.com$/", qmail));
	assert_false(hdr_fires("relays:EnvelopeFrom =~ /^/", pub));
	/* EnvelopeFrom: the last untrusted relay's envelope sender first */
	assert_int_equal(sa_envelope_from(qmail, strlen(qmail), env), 1);
	assert_string_equal(env, "jdavid7@yahoo.com");
	assert_int_equal(sa_envelope_from(pub, strlen(pub), env), 0);
	/* X-Sender and a fetchmail line: no envelope sender at all */
	assert_int_equal(sa_envelope_from(fetch, strlen(fetch), env), 0);
	/* X-Envelope-From above every Received header */
	assert_int_equal(sa_envelope_from(xenv, strlen(xenv), env), 1);
	assert_string_equal(env, "env@gmail.com");
	assert_int_equal(sa_envelope_from(ntld, strlen(ntld), env), 1);
	assert_string_equal(env, "b@x.com");
	/* FreeMail over all_from_addrs (From and EnvelopeFrom) */
	assert_true(hdr_fires("check_freemail_from()", qmail));
	assert_false(hdr_fires("check_freemail_from()", pub));
	assert_true(hdr_fires("check_freemail_from()", xenv));
	assert_true(hdr_fires("check_freemail_from('\\d@')", qmail));
	assert_true(hdr_fires("check_freemail_header('EnvelopeFrom', '\\d@')", qmail));
	assert_false(hdr_fires("check_freemail_header('EnvelopeFrom')", fetch));
	assert_true(hdr_fires("check_for_matching_env_and_hdr_from()", xenv));
	assert_false(hdr_fires("check_for_matching_env_and_hdr_from()", qmail));
	/* two absent addresses match */
	assert_true(hdr_fires("check_for_matching_env_and_hdr_from()", "Subject: x\n"));
	/* check_from_in_list over enlist_addrlist globs, case-blind */
	assert_int_equal(scan_eval_from_in_list("\n*@*.top\n*@*.xyz\n", 0, &r), 1);
	assert_true(scan_eval_header(&r, ntld, strlen(ntld)));
	assert_false(scan_eval_header(&r, pub, strlen(pub)));
	assert_false(scan_eval_header(&r, "From: a@top.com\n", 16));
	scan_rule_free(&r);
	/* "?" one character, "*" any string (empty too), the whole address;
	 * many stars against a long address answer (one pass, no blow-up) */
	assert_int_equal(scan_eval_from_in_list("\na?c@b.com\n*x*y*z*w*v*u*@q\n", 0, &r), 1);
	assert_true(scan_eval_header(&r, "From: abc@b.com\n", 16));
	assert_false(scan_eval_header(&r, "From: ac@b.com\n", 15));
	assert_false(scan_eval_header(&r, "From: abc@b.comx\n", 17));
	assert_true(scan_eval_header(&r, "From: xyzwvu@q\n", 15));
	{
		char hb[600];
		int l = snprintf(hb, sizeof(hb), "From: %.*s@q\n", 480,
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv"
				 "xyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwvxyzwv");

		assert_false(scan_eval_header(&r, hb, (size_t)l)); /* no "u" */
	}
	scan_rule_free(&r);
	/* with trusted networks configured none of them is imported */
	assert_int_equal(scan_eval_lookup("check_all_trusted()", SCAN_EVAL_TRUST_CFG, NULL, &r), 0);
	assert_int_equal(scan_eval_from_in_list("\n*@*.top\n", SCAN_EVAL_TRUST_CFG, &r), 0);
}

/* meta_db - a db of nleaf leaf rules, then one meta per expression */
static struct scan_db *meta_db(size_t nleaf, const char *const *x, size_t nx)
{
	struct scan_db *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->nrules = nleaf + nx;
	d->rules = calloc(d->nrules, sizeof(*d->rules));
	assert_non_null(d->rules);
	for (size_t i = 0; i < nleaf; i++)
		d->rules[i].scope = SCOPE_BODY;
	for (size_t i = 0; i < nx; i++) {
		d->rules[nleaf + i].scope = SCOPE_META;
		d->rules[nleaf + i].pattern = (char *)x[i];
	}
	return d;
}

static void meta_db_free(struct scan_db *d)
{
	free(d->metas);
	free(d->moff);
	free(d->mcode);
	free(d->rules);
	free(d);
}

/* meta_value - meta k of d with the leaves in bits set */
static int meta_value(const struct scan_db *d, size_t k, uint64_t bits)
{
	uint64_t hits[2] = { bits, 0 };

	return scan_meta_eval(d, k, hits);
}

/* scan_meta.c: scan_sa.c's combinations (precedence ! over & over |, F,
 * nesting) against a reference evaluation on every assignment of 4 leaves */
static void test_meta_eval(void **state)
{
	static const char *const x[] = {
		"T0 & T1 | T2",          /* (0 & 1) | 2 */
		"T0 | T1 & T2",          /* 0 | (1 & 2) */
		"!T0 & !(T1 | T2)",
		"(T0) | F",
		"!F",
		"((T0 & (T1 | T2)) | !T3) & !(T0 & T3)",
		"!!T2",
		"F & T0 | T3",
		"((T0 & (T1 | T2 | T3)) | ((T1 & T2) | (T1 & T3) | (T2 & T3)))",
	};
	struct scan_db *d = meta_db(4, x, sizeof(x) / sizeof(x[0]));

	(void)state;
	assert_int_equal(scan_meta_build(d), 0);
	assert_int_equal(d->nmetas, sizeof(x) / sizeof(x[0]));
	assert_int_equal(d->metas[0], 4);
	for (unsigned b = 0; b < 16; b++) {
		int a0 = b & 1, a1 = b >> 1 & 1, a2 = b >> 2 & 1, a3 = b >> 3 & 1;
		int want[] = { (a0 && a1) || a2, a0 || (a1 && a2), !a0 && !(a1 || a2), a0, 1,
			       ((a0 && (a1 || a2)) || !a3) && !(a0 && a3), a2, a3,
			       a0 + a1 + a2 + a3 >= 2 };

		for (size_t k = 0; k < d->nmetas; k++)
			if (meta_value(d, k, b) != want[k]) {
				print_error("meta %zu (%s) leaves %x: got %d\n", k, x[k], b, !want[k]);
				fail();
			}
	}
	/* the index meta_eval runs by: each leaf's readers once, in order,
	 * and the value of every meta with no hit */
	static const uint32_t r0[] = { 0, 1, 2, 3, 5, 7, 8 }, r3[] = { 5, 7, 8 };
	assert_int_equal(d->mlo[1] - d->mlo[0], 7);
	assert_memory_equal(d->mlist + d->mlo[0], r0, sizeof(r0));
	assert_int_equal(d->mlo[4] - d->mlo[3], 3);
	assert_memory_equal(d->mlist + d->mlo[3], r3, sizeof(r3));
	for (size_t k = 0; k < d->nmetas; k++)
		assert_int_equal(d->mempty[k / 32] >> (k % 32) & 1, meta_value(d, k, 0));
	meta_db_free(d);
}

/* a chain longer than one patch list (64 jumps), malformed expressions,
 * and a leaf that is a meta (scan_sa.c inlines nested metas) refused */
static void test_meta_build(void **state)
{
	char big[2048] = "", *bad[] = { "T0 &", "(T0", "T0 T1", "T9", "T4", "X", "" };
	struct scan_db *d;
	size_t o = 0;

	(void)state;
	for (int i = 0; i < 150; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%sT%d", i ? " & " : "", i % 2 ? 1 : 0);
	const char *x[] = { big };
	d = meta_db(2, x, 1);
	assert_int_equal(scan_meta_build(d), 0);
	assert_int_equal(meta_value(d, 0, 3), 1);
	assert_int_equal(meta_value(d, 0, 1), 0);
	assert_int_equal(meta_value(d, 0, 2), 0);
	for (size_t i = 0; big[i]; i++)
		if (big[i] == '&')
			big[i] = '|';
	meta_db_free(d);
	d = meta_db(2, x, 1);
	assert_int_equal(scan_meta_build(d), 0);
	assert_int_equal(meta_value(d, 0, 0), 0);
	assert_int_equal(meta_value(d, 0, 2), 1);
	meta_db_free(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *y[] = { "T0", bad[i] };

		d = meta_db(4, y, 2);
		assert_int_equal(scan_meta_build(d), -EINVAL);
		assert_int_equal(d->meta_bad, 5); /* the second meta, named in the error */
		meta_db_free(d);
	}
}

/* sa_relays_pin: one parse for the pinned block, answered without a
 * compare; other blocks still parsed; after unpin the same bytes at the
 * same address with other content parse again */
static void test_relays_pin(void **state)
{
	static const char a[] = "Received: from unknown (HELO t.example) (jd@[216.254.40.70]) "
				"(envelope-sender <one@yahoo.com>) by m.example (qmail-ldap-1.03) "
				"with SMTP for <jm@jmason.org>; 12 Feb 2003 18:23:19 -0000\n";
	static const char b[] = "Received: from unknown (HELO t.example) (jd@[216.254.40.70]) "
				"(envelope-sender <two@yahoo.com>) by m.example (qmail-ldap-1.03) "
				"with SMTP for <jm@jmason.org>; 12 Feb 2003 18:23:19 -0000\n";
	static const char other[] = "Return-Path: <x@y.org>\n";
	char buf[sizeof(a)];
	const struct sa_relays *r1, *r2;
	char env[SA_ADDR_MAX];

	(void)state;
	memcpy(buf, a, sizeof(a));
	sa_relays_pin(buf, sizeof(a) - 1);
	r1 = sa_relays_of(buf, sizeof(a) - 1);
	assert_non_null(r1);
	assert_string_equal(r1->env, "one@yahoo.com");
	assert_int_equal(sa_envelope_from(other, strlen(other), env), 1); /* not the pinned one */
	assert_string_equal(env, "x@y.org");
	r2 = sa_relays_of(buf, sizeof(a) - 1);
	assert_ptr_equal(r1, r2);
	assert_string_equal(r2->env, "one@yahoo.com");
	sa_relays_unpin();
	memcpy(buf, b, sizeof(b));
	assert_int_equal(sa_envelope_from(buf, sizeof(b) - 1, env), 1);
	assert_string_equal(env, "two@yahoo.com");
	sa_relays_pin(buf, sizeof(b) - 1);
	assert_string_equal(sa_relays_of(buf, sizeof(b) - 1)->env, "two@yahoo.com");
	sa_relays_unpin();
}

/* every expression of the Received parse compiles at load, and every
 * call site is in section moat_rx (sa_relays_compile) */
static void test_relays_compile(void **state)
{
	(void)state;
	assert_int_equal(sa_relays_compile(), 0);
	assert_int_equal(sa_relays_compile(), 0); /* again: already compiled */
}

/* sa_hdr_each over a pinned block (its headers listed once) yields what
 * the walk over the same bytes elsewhere yields: a line without ':'
 * skipped, an empty value, a last line without "\n"; unpinned, the list
 * is not read (the block changed at the same address) */
static void test_hdr_each_pinned(void **state)
{
	static const char blk[] = "From: a@b.example\nno colon here\nX-Empty:\n"
				  "Received: from x by y; 1 Jan 2020\nSubject: last";
	char pinned[sizeof(blk)], copy[sizeof(blk)];
	size_t n = sizeof(blk) - 1, o1 = 0, o2 = 0, nl1, nl2, vl1, vl2, k = 0;
	const char *h1, *h2, *v1, *v2;

	(void)state;
	memcpy(pinned, blk, sizeof(blk));
	memcpy(copy, blk, sizeof(blk));
	sa_relays_pin(pinned, n);
	do {
		h1 = sa_hdr_each(pinned, n, &o1, &nl1, &v1, &vl1);
		h2 = sa_hdr_each(copy, n, &o2, &nl2, &v2, &vl2);
		assert_true(!h1 == !h2);
		if (!h1)
			break;
		k++;
		assert_int_equal(h1 - pinned, h2 - copy);
		assert_int_equal(nl1, nl2);
		assert_int_equal(v1 - pinned, v2 - copy);
		assert_int_equal(vl1, vl2);
	} while (1);
	assert_int_equal(k, 4);
	assert_int_equal(o1, 4); /* pinned: *off counts headers */
	sa_relays_unpin();
	memcpy(pinned, "Only: one", 10);
	o1 = 0;
	assert_non_null(sa_hdr_each(pinned, 9, &o1, &nl1, &v1, &vl1));
	assert_int_equal(nl1, 4);
	assert_null(sa_hdr_each(pinned, 9, &o1, &nl1, &v1, &vl1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relays_compile),
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_date_diff),
		cmocka_unit_test(test_shifted),
		cmocka_unit_test(test_mime),
		cmocka_unit_test(test_body_length),
		cmocka_unit_test(test_header_evals),
		cmocka_unit_test(test_html_evals),
		cmocka_unit_test(test_mimeheader),
		cmocka_unit_test(test_freemail),
		cmocka_unit_test(test_freemail_many),
		cmocka_unit_test(test_received_line),
		cmocka_unit_test(test_relays_gate),
		cmocka_unit_test(test_relay_evals),
		cmocka_unit_test(test_relay_long_fields),
		cmocka_unit_test(test_meta_eval),
		cmocka_unit_test(test_meta_build),
		cmocka_unit_test(test_relays_pin),
		cmocka_unit_test(test_hdr_each_pinned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
