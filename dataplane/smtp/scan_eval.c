/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_eval.c - SpamAssassin eval: tests in C (scan_eval.h).
 *
 * Each function follows the Perl it names (Debian's SpamAssassin 4.0.1,
 * the Plugin modules under /usr/share/perl5/Mail/SpamAssassin); where the Perl uses a
 * regular expression, the same expression runs here through PCRE2, so the
 * corner cases (what \S or .? accept) are SpamAssassin's own.
 */
#include "scan_eval.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "scan.h"
#include "scan_received.h"

/* ---- the regular expressions of Util::parse_rfc822_date and HeaderEval */

enum {
	RX_DATE1, RX_DATE2, RX_DATE3, RX_TIME, RX_TZNUM, RX_TZNAME,
	RX_RCVD_DATE, RX_LOCAL1, RX_LOCAL2, RX_FETCHMAIL,
	RX_EZMLM, RX_DLTO_LIST, RX_QMAIL_INVOKED, RX_MSN_GROUPS,
	RX_TEMPLATE, RX_TEMPLATE_OK, RX_RATWARE_MID, RX_FM_WELCOME, RX_N
};
static const char *const rx_src[RX_N] = {
	[RX_DATE1] = " (\\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\\d{4}) ",
	[RX_DATE2] = " (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\\d+) \\d+:\\d+:\\d+ (\\d{4}) ",
	[RX_DATE3] = " (\\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\\d{2,3}) ",
	[RX_TIME] = " (\\d?\\d):(\\d\\d)(:(\\d\\d))? ",
	[RX_TZNUM] = " ([-+]\\d{4}) ",
	[RX_TZNAME] = "\\b([A-Z]{2,4}(?:-DST)?)\\b",
	[RX_RCVD_DATE] = "(\\s.?\\d+ \\S\\S\\S \\d+ \\d+:\\d+:\\d+ \\S+)",
	[RX_LOCAL1] = "\\bfrom (?:localhost\\s|(?:\\S+ ){1,2}\\S*\\b127\\.0\\.0\\.1\\b)",
	[RX_LOCAL2] = "qmail \\d+ invoked by uid \\d+",
	[RX_FETCHMAIL] = "\\bby localhost with \\w+ \\(fetchmail-[\\d.]+",
	/* HeaderEval gated_through_received_hdr_remover */
	[RX_EZMLM] = "(?m)^contact \\S+\\@\\S+\\; run by ezmlm$",
	[RX_DLTO_LIST] = "(?m)^mailing list \\S+\\@\\S+",
	[RX_QMAIL_INVOKED] = "qmail \\d+ invoked (?:from network|by .{3,20})\\); \\d+ ... \\d+",
	[RX_MSN_GROUPS] = "from groups\\.msn\\.com \\(\\S+\\.msn\\.com ",
	/* check_unresolved_template */
	[RX_TEMPLATE] = "%[A-Z][A-Z_-]",
	[RX_TEMPLATE_OK] = "(?i)^(?:X-VMS-To|X-UIDL|X-Face|To|Cc|From|Subject|References|"
			   "In-Reply-To|(?:X-|Resent-|X-Original-)?Message-Id):",
	/* check_ratware_name_id */
	[RX_RATWARE_MID] = "<[A-Z]{28}\\.([^>]+?)>",
	/* FreeMail's $email_welcomelist (its /x comments left out) */
	[RX_FM_WELCOME] = "(?i)^(?:abuse|support|sales|info|helpdesk|contact|kontakt"
			  "|(?:post|host|domain)master|undisclosed.*|request-[a-f0-9]{16}"
			  "|bounced?-|[a-f0-9]{8}(?:\\.[a-f0-9]{8}|-[a-f0-9]{4}-[a-f0-9]{4}"
			  "-[a-f0-9]{4}-[a-f0-9]{12})|.+=.+=.+)\\@",
};
/* a string each match of the expression contains (case as written: none
 * of these is caseless), looked for before PCRE2 is: most subjects lack
 * it (a PCRE2 call that fails costs 100-300 cycles; %[A-Z] alone was run
 * on 21,661 header lines of the 1,000-message subset and matched none) */
static const char *const rx_need[RX_N] = {
	[RX_LOCAL2] = " invoked by uid ",
	[RX_FETCHMAIL] = " (fetchmail-",
	[RX_EZMLM] = "; run by ezmlm",
	[RX_DLTO_LIST] = "mailing list ",
	[RX_QMAIL_INVOKED] = " invoked ",
	[RX_MSN_GROUPS] = "from groups.msn.com (",
	[RX_TEMPLATE] = "%",
};
static pcre2_code *rx[RX_N];
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;
static pthread_key_t rx_md_key; /* each thread's match data, freed at its exit */

static void rx_md_free(void *md)
{
	pcre2_match_data_free(md);
}

static void rx_init(void)
{
	for (int i = 0; i < RX_N; i++) {
		int ec;
		PCRE2_SIZE eo;
		uint32_t opt = i <= RX_DATE3 ? PCRE2_CASELESS : 0;

		rx[i] = pcre2_compile((PCRE2_SPTR)rx_src[i], PCRE2_ZERO_TERMINATED, opt, &ec, &eo,
				      NULL);
		if (rx[i])
			pcre2_jit_compile(rx[i], PCRE2_JIT_COMPLETE);
	}
	pthread_key_create(&rx_md_key, rx_md_free);
}

/* rx_md - this thread's match data for rx_find (5 pairs), made once
 * rather than per call; NULL on no memory */
static pcre2_match_data *rx_md(void)
{
	pcre2_match_data *md = pthread_getspecific(rx_md_key);

	if (!md && (md = pcre2_match_data_create(5, NULL)) &&
	    pthread_setspecific(rx_md_key, md) != 0) {
		pcre2_match_data_free(md);
		md = NULL;
	}
	return md;
}

void scan_eval_compile(void)
{
	pthread_once(&rx_once, rx_init);
}

/* rx_find - match expression i in s[0..n): 1 and ov[] (start, end pairs
 * of the match and its groups, PCRE2_UNSET for unset ones) or 0 */
static int rx_find(int i, const char *s, size_t n, PCRE2_SIZE ov[10])
{
	pcre2_match_data *md;
	int rc;

	pthread_once(&rx_once, rx_init);
	if (!rx[i] || (rx_need[i] && !memmem(s, n, rx_need[i], strlen(rx_need[i]))) ||
	    !(md = rx_md()))
		return 0;
	rc = pcre2_match(rx[i], (PCRE2_SPTR)s, n, 0, 0, md, NULL);
	if (rc > 0) {
		PCRE2_SIZE *v = pcre2_get_ovector_pointer(md);
		uint32_t k = pcre2_get_ovector_count(md);

		for (uint32_t j = 0; j < 10; j++)
			ov[j] = j < 2 * k ? v[j] : PCRE2_UNSET;
		for (uint32_t j = 2 * (uint32_t)rc; j < 10; j++)
			ov[j] = PCRE2_UNSET;
	}
	return rc > 0;
}

/* rx_cut - s =~ s/RE/ / for a match found by rx_find */
static void rx_cut(char *s, size_t *n, const PCRE2_SIZE ov[10])
{
	memmove(s + ov[0] + 1, s + ov[1], *n - ov[1]);
	s[ov[0]] = ' ';
	*n = *n - (ov[1] - ov[0]) + 1;
	s[*n] = 0;
}

static long num(const char *s, const PCRE2_SIZE ov[10], int g)
{
	long v = 0;

	if (ov[2 * g] == PCRE2_UNSET)
		return 0;
	for (PCRE2_SIZE i = ov[2 * g]; i < ov[2 * g + 1] && v < 100000000; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static int month(const char *p)
{
	static const char m[] = "janfebmaraprmayjunjulaugsepoctnovdec";

	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, m + 3 * i, 3) == 0)
			return i + 1;
	return 0;
}

static const struct {
	const char *name;
	int off; /* minutes, signed */
} tz_tab[] = {
	{ "UT", 0 }, { "UTC", 0 }, { "NDT", -150 }, { "AST", -240 }, { "ADT", -180 },
	{ "NST", -210 }, { "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
	{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 }, { "HST", -600 },
	{ "AKST", -540 }, { "AKDT", -480 }, { "HADT", -540 }, { "HAST", -600 }, { "GMT", 0 },
	{ "BST", 60 }, { "IST", 60 }, { "WET", 0 }, { "WEST", 60 }, { "CET", 60 },
	{ "CEST", 120 }, { "EET", 120 }, { "EEST", 180 }, { "MSK", 180 }, { "MSD", 240 },
	{ "MET", 60 }, { "MEZ", 60 }, { "MEST", 120 }, { "MESZ", 120 }, { "BRST", -120 },
	{ "BRT", -180 }, { "AEST", 600 }, { "AEDT", 660 }, { "ACST", 570 }, { "ACDT", 630 },
	{ "AWST", 480 }, { "NZST", 720 }, { "NZDT", 780 }, { "JST", 540 }, { "KST", 540 },
	{ "HKT", 480 }, { "SGT", 480 }, { "PHT", 480 }, { "IDT", 180 },
};

/* days_from_civil - days since 1970-01-01 of y-m-d (proleptic Gregorian) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

int64_t sa_date_parse(const char *p, size_t n)
{
	char s[1024];
	size_t k = 0;
	PCRE2_SIZE ov[10];
	long yyyy, dd, hh = 0, mi = 0, ss = 0;
	int mon, tzoff = 0, tzset = 0;

	/* $_ = " $date ", a comma and the blanks after it one blank, every
	 * run of whitespace one blank */
	if (n > sizeof(s) - 3)
		n = sizeof(s) - 3;
	s[k++] = ' ';
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (c == ',') {
			while (i + 1 < n && p[i + 1] == ' ')
				i++;
			c = ' ';
		}
		if (isspace((unsigned char)c)) {
			if (s[k - 1] != ' ')
				s[k++] = ' ';
			continue;
		}
		s[k++] = c;
	}
	if (s[k - 1] != ' ')
		s[k++] = ' ';
	s[k] = 0;
	if (rx_find(RX_DATE1, s, k, ov)) {
		dd = num(s, ov, 1), mon = month(s + ov[4]), yyyy = num(s, ov, 3);
	} else if (rx_find(RX_DATE2, s, k, ov)) {
		dd = num(s, ov, 2), mon = month(s + ov[2]), yyyy = num(s, ov, 3);
	} else if (rx_find(RX_DATE3, s, k, ov)) {
		dd = num(s, ov, 1), mon = month(s + ov[4]), yyyy = num(s, ov, 3);
	} else {
		return -1;
	}
	size_t ylen = ov[7] - ov[6];

	rx_cut(s, &k, ov);
	if (ylen == 2 && yyyy < 50)
		yyyy += 2000;
	else if (ylen != 4)
		yyyy += 1900;
	if (rx_find(RX_TIME, s, k, ov)) {
		hh = num(s, ov, 1), mi = num(s, ov, 2), ss = num(s, ov, 4);
		rx_cut(s, &k, ov);
	}
	if (rx_find(RX_TZNUM, s, k, ov)) {
		const char *z = s + ov[2];

		tzoff = ((z[1] - '0') * 10 + (z[2] - '0')) * 60 + (z[3] - '0') * 10 + (z[4] - '0');
		if (z[0] == '-')
			tzoff = -tzoff;
		tzset = 1;
	} else if (rx_find(RX_TZNAME, s, k, ov)) {
		size_t zl = ov[3] - ov[2];

		for (size_t i = 0; i < sizeof(tz_tab) / sizeof(tz_tab[0]); i++)
			if (strlen(tz_tab[i].name) == zl && !memcmp(tz_tab[i].name, s + ov[2], zl)) {
				tzoff = tz_tab[i].off;
				tzset = 1;
			}
	}
	(void)tzset; /* absent or unknown: "-0000", no shift */
	if (ss > 59)
		ss = 59;
	if (mi > 59)
		mi = 59;
	if (hh > 23)
		hh = 23;
	int max_dd = 31;

	if (mon == 4 || mon == 6 || mon == 9 || mon == 11)
		max_dd = 30;
	else if (mon == 2)
		max_dd = (!(yyyy % 4) && ((yyyy % 100) || !(yyyy % 400))) ? 29 : 28;
	if (dd > max_dd) {
		dd = 1;
		if (++mon > 12) {
			mon = 1;
			yyyy++;
		}
	}
	if (yyyy > 2037)
		yyyy = 2037;
	else if (yyyy < 1970)
		yyyy = 1970;
	if (dd < 1)
		return -1; /* Time::Local croaks: the date does not parse */
	int64_t t = days_from_civil(yyyy, mon, (int)dd) * 86400 + hh * 3600 + mi * 60 + ss;

	if (tzoff < 0) {
		t += (int64_t)-tzoff * 60;
	} else if (tzoff > 0) {
		t = t < (int64_t)tzoff * 60 ? 0 : t - (int64_t)tzoff * 60;
	}
	return t;
}

/* hdr_next - the next header of the block at *off named name (NULL: any):
 * its value, or NULL at the end */
static const char *hdr_next(const char *hb, size_t n, size_t *off, const char *name,
			    size_t *vlen)
{
	size_t nl = name ? strlen(name) : 0, hl, vl;
	const char *h, *v;

	while ((h = sa_hdr_each(hb, n, off, &hl, &v, &vl))) {
		if (name && (hl != nl || strncasecmp(h, name, nl) != 0))
			continue;
		if (vl && *v == ' ')
			v++, vl--;
		*vlen = vl;
		return v;
	}
	return NULL;
}

/* hdr_any - some value of header name matches expression i (the joined
 * get(name) string, for an expression that cannot match across the "\n"
 * between two values: anchored per line with /m, no class that takes
 * "\n"); *count: instances seen */
static int hdr_any(const char *hb, size_t n, const char *name, int i, int *count)
{
	size_t off = 0, vl;
	const char *v;
	PCRE2_SIZE ov[10];

	*count = 0;
	while ((v = hdr_next(hb, n, &off, name, &vl))) {
		++*count;
		if (rx_find(i, v, vl, ov))
			return 1;
	}
	return 0;
}

/* gated_through_received_hdr_remover - HeaderEval's: ezmlm lists and
 * MSN groups strip Received headers; no Received header at all counts */
static int gated_rcvd(const char *hb, size_t n)
{
	int c;

	if (hdr_any(hb, n, "Mailing-List", RX_EZMLM, &c) &&
	    hdr_any(hb, n, "Delivered-To", RX_DLTO_LIST, &c) &&
	    hdr_any(hb, n, "Received", RX_QMAIL_INVOKED, &c))
		return 1;
	if (hdr_any(hb, n, "Received", RX_MSN_GROUPS, &c))
		return 1;
	return c == 0;
}

/* check_unresolved_template - a header line (ALL split on "\n") with a
 * "%TEMPLATE" left in it, outside the headers that may carry one */
static int unresolved_tpl(const char *hb, size_t n)
{
	PCRE2_SIZE ov[10];

	for (size_t off = 0; off < n;) {
		const char *l = hb + off, *e = memchr(l, '\n', n - off);
		size_t len = e ? (size_t)(e - l) : n - off;

		off += len + 1;
		if (rx_find(RX_TEMPLATE, l, len, ov) && !rx_find(RX_TEMPLATE_OK, l, len, ov))
			return 1;
	}
	return 0;
}

/* check_ratware_name_id - MESSAGEID =~ /<[A-Z]{28}\.([^>]+?)>/ and From
 * =~ /"[^"]+"\s*<\Q$1\E>/ */
static int ratware_name_id(const char *hb, size_t n)
{
	static const char *const mh[] = { "X-Message-Id", "Resent-Message-Id",
					  "X-Original-Message-ID", "Message-Id" };
	char *mid = malloc(2 * n + 2), *from = mid + n + 1;
	size_t ml = 0, fl = 0, vl, off;
	const char *v;
	PCRE2_SIZE ov[10];
	int hit = 0;

	if (!mid)
		return 0;

	/* get('MESSAGEID'): every value of the four, each followed by "\n"
	 * (n + 1 bytes hold them all) */
	for (size_t i = 0; i < sizeof(mh) / sizeof(mh[0]); i++)
		for (off = 0; (v = hdr_next(hb, n, &off, mh[i], &vl));) {
			memcpy(mid + ml, v, vl);
			ml += vl;
			mid[ml++] = '\n';
		}
	if (!rx_find(RX_RATWARE_MID, mid, ml, ov)) {
		free(mid);
		return 0;
	}
	const char *id = mid + ov[2];
	size_t il = ov[3] - ov[2];

	for (off = 0; (v = hdr_next(hb, n, &off, "From", &vl));) {
		memcpy(from + fl, v, vl);
		fl += vl;
		from[fl++] = '\n';
	}
	for (size_t i = 1; !hit && i + il < fl; i++) {
		if (from[i - 1] != '<' || memcmp(from + i, id, il) != 0 || from[i + il] != '>')
			continue;
		size_t k = i - 1; /* before "<": \s*, then a quoted "[^"]+" */

		while (k > 0 && isspace((unsigned char)from[k - 1]))
			k--;
		if (k < 3 || from[k - 1] != '"')
			continue;
		const char *q = memrchr(from, '"', k - 1);

		hit = q && (size_t)(q - from) + 1 < k - 1;
	}
	free(mid);
	return hit;
}

#define RCVD_MAX 64

int64_t sa_date_diff(const char *hb, size_t n)
{
	static const char *const dh[] = { "Resent-Date", "Date" };
	int64_t date = -1, times[RCVD_MAX];
	const char *rv[RCVD_MAX];
	size_t rl[RCVD_MAX], nr = 0, nt = 0, off, vl;
	const char *v;
	PCRE2_SIZE ov[10];

	for (int k = 0; k < 2 && date < 0; k++)
		for (off = 0; date < 0 && (v = hdr_next(hb, n, &off, dh[k], &vl));)
			if (vl)
				date = sa_date_parse(v, vl);
	if (date < 0)
		return 0;
	/* get('Received') split on "\n", the lines with a non-blank */
	for (off = 0; nr < RCVD_MAX && (v = hdr_next(hb, n, &off, "Received", &vl));) {
		int blank = 1;

		for (size_t i = 0; i < vl && blank; i++)
			blank = isspace((unsigned char)v[i]);
		if (blank)
			continue;
		rv[nr] = v;
		rl[nr++] = vl;
	}
	size_t first = 0;

	/* fetchmail: the first one or two are local, not the relays' times */
	if (nr && (rx_find(RX_LOCAL1, rv[0], rl[0], ov) || rx_find(RX_LOCAL2, rv[0], rl[0], ov))) {
		first = 1;
		if (!(nr > 1 && rx_find(RX_FETCHMAIL, rv[1], rl[1], ov)))
			first = 0; /* put back */
		else
			first = 2;
	} else if (nr && rx_find(RX_FETCHMAIL, rv[0], rl[0], ov)) {
		first = 1;
	}
	for (size_t i = first; i < nr; i++) {
		if (!rx_find(RX_RCVD_DATE, rv[i], rl[i], ov))
			continue;
		int64_t t = sa_date_parse(rv[i] + ov[2], ov[3] - ov[2]);

		if (t >= 0)
			times[nt++] = t;
	}
	if (!nt)
		return 0;
	if (nt > 1 && date - times[nt - 1] == 0)
		nt--;
	int64_t best = date - times[0];

	for (size_t i = 1; i < nt; i++) { /* stable: the first of equal ones */
		int64_t d = date - times[i];

		if ((d < 0 ? -d : d) < (best < 0 ? -best : best))
			best = d;
	}
	return best;
}

/* ---- FreeMail (Plugin::FreeMail, Debian's 20_freemail*.cf) */

/* fm_cmp - order of two domains (bytes, a prefix first) */
static int fm_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : an < bn ? -1 : an > bn;
}

struct fm_word {
	const char *p;
	size_t n;
};

static int fm_word_cmp(const void *x, const void *y)
{
	const struct fm_word *a = x, *b = y;

	return fm_cmp(a->p, a->n, b->p, b->n);
}

enum { FM_LEN_DIGITS = 10 };

/* fm_domains - the freemail_domains words as parse_config keeps them,
 * after the length of the rest in FM_LEN_DIGITS decimal digits (the list
 * is searched for every address: no strlen of it each time):
 * lower-cased, one a line between "\n"s ("\nDOMAIN\n...\n"): the ones
 * with "*" or "?" (finish_parsing_end's wildcard list) first, an empty
 * line, then the plain ones sorted (fm_is_domain's binary search); words
 * with other characters than [a-zA-Z0-9.*?-] dropped (parse_config warns
 * and drops them); NULL when memory runs out */
static char *fm_domains(const char *domains)
{
	size_t len = strlen(domains);
	/* the length, "\n", words and "\n"s, the empty line, NUL */
	char *d = malloc(FM_LEN_DIGITS + len + 4), *low = malloc(len + 1);
	struct fm_word *w = calloc(len / 2 + 1, sizeof(*w));
	size_t k = 0, nw = 0;

	if (!d || !low || !w) {
		free(d), free(low), free(w);
		return NULL;
	}
	for (size_t i = 0; i <= len; i++)
		low[i] = (char)tolower((unsigned char)domains[i]);
	k = FM_LEN_DIGITS; /* the length, written at the end */
	d[k++] = '\n';
	for (int wild = 1; wild >= 0; wild--) {
		for (const char *p = low; *p;) {
			size_t n;
			int ok = 1;

			while (isspace((unsigned char)*p))
				p++;
			for (n = 0; p[n] && !isspace((unsigned char)p[n]); n++)
				ok &= isalnum((unsigned char)p[n]) || strchr(".*?-", p[n]) != NULL;
			if (n && ok && (memchr(p, '*', n) || memchr(p, '?', n)) == wild) {
				if (wild) {
					memcpy(d + k, p, n);
					k += n;
					d[k++] = '\n';
				} else { /* a word is at least a byte and a blank */
					w[nw].p = p;
					w[nw++].n = n;
				}
			}
			p += n;
		}
		if (wild)
			d[k++] = '\n';
	}
	qsort(w, nw, sizeof(*w), fm_word_cmp);
	for (size_t i = 0; i < nw; i++) {
		memcpy(d + k, w[i].p, w[i].n);
		k += w[i].n;
		d[k++] = '\n';
	}
	d[k] = 0;
	char lenbuf[FM_LEN_DIGITS + 1];

	snprintf(lenbuf, sizeof(lenbuf), "%0*zu", FM_LEN_DIGITS, k - FM_LEN_DIGITS);
	memcpy(d, lenbuf, FM_LEN_DIGITS);
	free(low);
	free(w);
	return d;
}

/* fm_plain - is dom one of the sorted lines of [lo, hi) (each ending in
 * "\n")?  A binary search: the list holds thousands of domains */
static int fm_plain(const char *lo, const char *hi, const char *dom, size_t dl)
{
	while (lo < hi) {
		const char *mid = lo + (hi - lo) / 2, *e;
		int c;

		while (mid > lo && mid[-1] != '\n')
			mid--;
		e = memchr(mid, '\n', (size_t)(hi - mid));
		if (!(c = fm_cmp(dom, dl, mid, (size_t)(e - mid))))
			return 1;
		if (c < 0)
			hi = mid;
		else
			lo = e + 1;
	}
	return 0;
}

/* fm_glob - s[0..sn) matches a wildcard domain g[0..gn) whole, as the
 * regex finish_parsing_end makes of it: "?" any character, "*" [^.]* */
static int fm_glob(const char *g, size_t gn, const char *s, size_t sn)
{
	if (!gn)
		return !sn;
	if (*g == '*') {
		for (size_t i = 0;; i++) {
			if (fm_glob(g + 1, gn - 1, s + i, sn - i))
				return 1;
			if (i == sn || s[i] == '.')
				return 0;
		}
	}
	return sn && (*g == '?' || *g == *s) && fm_glob(g + 1, gn - 1, s + 1, sn - 1);
}

/* fm_is_domain - _is_freemail's domain test on a lower-cased address:
 * the text after its last "@" is a plain domain, or the address matches
 * /\@(?:WILDCARDS)$/ */
static int fm_is_domain(const char *doms, const char *a, size_t n)
{
	const char *at = memrchr(a, '@', n);
	const char *dom = at ? at + 1 : a;
	size_t dl = (size_t)(a + n - dom), len = 0;

	for (int i = 0; i < FM_LEN_DIGITS; i++)
		len = len * 10 + (size_t)(doms[i] - '0');
	doms += FM_LEN_DIGITS;
	const char *l = doms + 1, *end = doms + len;

	for (; *l && *l != '\n';) { /* the wildcards, up to the empty line */
		const char *e = strchr(l, '\n');
		size_t ll = (size_t)(e - l);

		for (const char *q = a; (q = memchr(q, '@', (size_t)(a + n - q))); q++)
			if (fm_glob(l, ll, q + 1, (size_t)(a + n - q - 1)))
				return 1;
		l = e + 1;
	}
	if (!*l)
		return 0;
	return fm_plain(l + 1, end, dom, dl);
}

struct fm_ctx {
	const struct scan_rule *r;
	int hit;
};

/* fm_addr - _is_freemail of one address (lower-cased, as the plugin's
 * map(lc, ...)), and the rule regex */
static void fm_addr(void *ctx, const char *p, size_t n, int name)
{
	struct fm_ctx *c = ctx;
	char buf[512], *a = buf;
	PCRE2_SIZE ov[10];
	pcre2_match_data *md;

	(void)name;
	if (c->hit || (n >= sizeof(buf) && !(a = malloc(n + 1))))
		return;
	for (size_t i = 0; i < n; i++)
		a[i] = (char)tolower((unsigned char)p[i]);
	a[n] = 0;
	if (n && !rx_find(RX_FM_WELCOME, a, n, ov) && fm_is_domain(c->r->pattern, a, n)) {
		c->hit = 1;
		if (c->r->re && (md = pcre2_match_data_create(1, NULL))) {
			c->hit = pcre2_match(c->r->re, (PCRE2_SPTR)a, n, 0, 0, md, NULL) >= 0;
			pcre2_match_data_free(md);
		}
	}
	if (a != buf)
		free(a);
}

/* check_freemail_header - some address of get("$header:addr") is freemail
 * (and matches the rule regex) */
static int freemail_hdr(const struct scan_rule *r, const char *hb, size_t n)
{
	struct fm_ctx c = { r, 0 };
	size_t off = 0, vl;
	const char *v;

	if (strcasecmp(r->hname, "EnvelopeFrom") == 0) { /* derived from the relays */
		char env[SA_ADDR_MAX];

		if (sa_envelope_from(hb, n, env))
			scan_addrs(env, strlen(env), 0, fm_addr, &c);
		return c.hit;
	}
	while (!c.hit && (v = hdr_next(hb, n, &off, r->hname, &vl)))
		scan_addrs(v, vl, 0, fm_addr, &c);
	return c.hit;
}

static void fm_from(void *ctx, const char *a, size_t n)
{
	fm_addr(ctx, a, n, 0);
}

/* check_freemail_from([regex]) - some address of all_from_addrs (From,
 * EnvelopeFrom...) is freemail (and matches the regex) */
static int freemail_from(const struct scan_rule *r, const char *hb, size_t n)
{
	struct fm_ctx c = { r, 0 };

	sa_all_from_addrs(hb, n, fm_from, &c);
	return c.hit;
}

/* list_glob - add_to_addrlist's regex: "*" any string, "?" one character,
 * the rest literal, over the whole address; one pass that restarts after
 * the last "*" (O(gn * sn) on a hostile address, never exponential) */
static int list_glob(const char *g, size_t gn, const char *s, size_t sn)
{
	size_t gi = 0, si = 0, star = (size_t)-1, mark = 0;

	while (si < sn) {
		if (gi < gn && (g[gi] == '?' || (g[gi] != '*' && g[gi] == s[si]))) {
			gi++, si++;
		} else if (gi < gn && g[gi] == '*') {
			star = gi++, mark = si;
		} else if (star != (size_t)-1) {
			gi = star + 1, si = ++mark;
		} else {
			return 0;
		}
	}
	while (gi < gn && g[gi] == '*')
		gi++;
	return gi == gn;
}

struct list_ctx {
	const char *globs; /* "\nglob\nglob\n" */
	int hit;
};

/* list_addr - WLBLEval's _check_welcomelist on lc(addr) */
static void list_addr(void *ctx, const char *a, size_t n)
{
	struct list_ctx *c = ctx;
	char lc[SA_ADDR_MAX];

	if (c->hit || n >= sizeof(lc))
		return;
	for (size_t i = 0; i < n; i++)
		lc[i] = (char)tolower((unsigned char)a[i]);
	for (const char *l = c->globs + 1; *l;) {
		const char *e = strchr(l, '\n');

		if (list_glob(l, (size_t)(e - l), lc, n)) {
			c->hit = 1;
			return;
		}
		l = e + 1;
	}
}

/* check_from_in_list(NAME) - some address of all_from_addrs is in the
 * enlist_addrlist (NAME) entries (r->pattern) */
static int from_in_list(const struct scan_rule *r, const char *hb, size_t n)
{
	struct list_ctx c = { r->pattern, 0 };

	sa_all_from_addrs(hb, n, list_addr, &c);
	return c.hit;
}

static void first_addr(void *ctx, const char *p, size_t n, int name);

/* check_for_matching_env_and_hdr_from - lc get('EnvelopeFrom:addr') eq
 * lc get('From:addr') (the first address of each, '' when none) */
static int env_hdr_from(const char *hb, size_t n)
{
	char env[SA_ADDR_MAX], *from = NULL;
	size_t off = 0, vl;
	const char *v;
	int eq;

	sa_envelope_from_addr(hb, n, env);
	while (!from && (v = hdr_next(hb, n, &off, "From", &vl)))
		scan_addrs(v, vl, 0, first_addr, &from);
	eq = strcasecmp(env, from ? from : "") == 0;
	free(from);
	return eq;
}

/* first_addr - keep the first address scan_addrs gives */
static void first_addr(void *ctx, const char *p, size_t n, int name)
{
	char **a = ctx;

	(void)name;
	if (!*a && (*a = malloc(n + 1))) {
		memcpy(*a, p, n);
		(*a)[n] = 0;
	}
}

/* has_ci - does h[0..hn) contain n[0..nn) ignoring ASCII case (PCRE2's
 * caseless matching without UTF)? */
static int has_ci(const char *h, size_t hn, const char *n, size_t nn)
{
	for (size_t i = 0; i + nn <= hn; i++)
		if (strncasecmp(h + i, n, nn) == 0)
			return 1;
	return 0;
}

/* check_for_to_in_subject('user') - the local part of the first To:addr
 * (up to its first "@") as HeaderEval places it in the Subject: the
 * Perl expression with \Q$to\E, run over get('Subject') (every value and
 * its "\n"), not over the trimmed copy it makes and never reads */
static int localpart_subj(const char *hb, size_t n)
{
	static const char *const alt[] = {
		"(?i)^(?:(?:re|fw):\\s*(?:\\w+\\s+)?", "$|(?-i:", ")\\s*[,:;!?-](?:$|\\s)|",
		"$|,\\s*", "[,:;!?-]$)",
	};
	char *to = NULL, *pat = NULL, *subj = NULL;
	size_t off = 0, vl, k = 0, sl = 0, tl;
	const char *v;
	int hit = 0, ec;
	PCRE2_SIZE eo;
	pcre2_code *re;
	pcre2_match_data *md;

	while (!to && (v = hdr_next(hb, n, &off, "To", &vl)))
		scan_addrs(v, vl, 0, first_addr, &to);
	if (!to)
		return 0;
	tl = strcspn(to, "@");
	if (!(pat = malloc(8 * tl + 128)) || !(subj = malloc(n + 1)))
		goto out;
	for (int i = 0; i < 5; i++) {
		size_t al = strlen(alt[i]);

		memcpy(pat + k, alt[i], al);
		k += al;
		for (size_t j = 0; i < 4 && j < tl; j++) { /* quotemeta */
			if (!isalnum((unsigned char)to[j]) && to[j] != '_')
				pat[k++] = '\\';
			pat[k++] = to[j];
		}
	}
	for (off = 0; (v = hdr_next(hb, n, &off, "Subject", &vl));) {
		memcpy(subj + sl, v, vl);
		sl += vl;
		subj[sl++] = '\n';
	}
	/* every branch holds \Q$to\E: without the local part in the
	 * Subject (a Subject almost never has it) the Perl cannot match, and
	 * the expression is not compiled */
	if (tl && !has_ci(subj, sl, to, tl))
		goto out;
	if (!(re = pcre2_compile((PCRE2_SPTR)pat, k, 0, &ec, &eo, NULL)))
		goto out;
	if ((md = pcre2_match_data_create(1, NULL))) {
		hit = pcre2_match(re, (PCRE2_SPTR)subj, sl, 0, 0, md, NULL) >= 0;
		pcre2_match_data_free(md);
	}
	pcre2_code_free(re);
out:
	free(to);
	free(pat);
	free(subj);
	return hit;
}

/* ---- the evals */

static int args(const char *p, char a[3][64])
{
	int n = 0;

	while (*p == ' ')
		p++;
	if (*p++ != '(')
		return -1;
	for (;;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			return n;
		if (n == 3)
			return -1;
		char q = *p;
		size_t k = 0;

		if (q == '\'' || q == '"') {
			for (p++; *p && *p != q; p++)
				if (k < 63)
					a[n][k++] = *p;
			if (*p++ != q)
				return -1;
		} else {
			for (; *p && *p != ',' && *p != ')' && *p != ' '; p++)
				if (k < 63)
					a[n][k++] = *p;
		}
		a[n++][k] = 0;
		if (!*p)
			return -1;
	}
}

static double num_arg(const char *s)
{
	return strcmp(s, "undef") == 0 ? NAN : strtod(s, NULL);
}

int scan_eval_lookup(const char *call, int flags, const char *freemail, struct scan_rule *r)
{
	int lists = flags & SCAN_EVAL_LISTS;
	/* SpamAssassin's pseudo-headers: not the header of that name */
	static const char *const pseudo[] = { "ALL", "ToCc", "EnvelopeFrom", "MESSAGEID",
					      "X-Spam-Relays-", "ALL-" };
	static const char *const list_evals[] = {
		"check_from_in_blocklist", "check_from_in_welcomelist", "check_to_in_all_spam",
		"check_to_in_blocklist", "check_to_in_more_spam", "check_to_in_welcomelist",
		"check_subject_in_blocklist", "check_subject_in_welcomelist",
		"check_uri_host_in_blocklist", "check_uri_host_in_welcomelist",
		"check_from_in_blacklist", "check_from_in_whitelist", "check_to_in_blacklist",
		"check_to_in_whitelist",
		/* VBounce: welcomelist_bounce_relays, a list of the same gate */
		"check_welcomelist_bounce_relays", "check_whitelist_bounce_relays",
		"have_any_bounce_relays",
	};
	char a[3][64];
	size_t nl = strcspn(call, "( ");
	int n = args(call + nl, a);

#define IS(x) (nl == strlen(x) && strncmp(call, x, nl) == 0)
	for (size_t i = 0; i < sizeof(list_evals) / sizeof(list_evals[0]); i++)
		if (IS(list_evals[i]) && n == 0) {
			if (lists)
				return 0;
			r->eval = EVAL_LIST_EMPTY;
			return 1;
		}
	if (IS("check_freemail_header") && (n == 1 || n == 2) && freemail &&
	    !strchr(a[0], ':')) {
		int env = strcasecmp(a[0], "EnvelopeFrom") == 0; /* scan_received.c */

		for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
			if (strncasecmp(a[0], pseudo[i], strlen(pseudo[i])) == 0 &&
			    (pseudo[i][strlen(pseudo[i]) - 1] == '-' || !a[0][strlen(pseudo[i])]) &&
			    !(env && !(flags & SCAN_EVAL_TRUST_CFG)))
				return 0;
		int ec;
		PCRE2_SIZE eo;

		if (n == 2 && !(r->re = pcre2_compile((PCRE2_SPTR)a[1], PCRE2_ZERO_TERMINATED, 0,
						      &ec, &eo, NULL)))
			return 0;
		r->eval = EVAL_FREEMAIL_HDR;
		if (!(r->pattern = fm_domains(freemail)) || !(r->hname = strdup(a[0])))
			return -ENOMEM; /* the caller frees the rule */
		return 1;
	}
	if ((IS("check_all_trusted") || IS("check_no_relays") || IS("check_relays_unparseable")) &&
	    n == 0 && !(flags & SCAN_EVAL_TRUST_CFG)) {
		r->eval = IS("check_all_trusted") ? EVAL_ALL_TRUSTED :
			  IS("check_no_relays")   ? EVAL_NO_RELAYS :
						    EVAL_RELAYS_UNPARSEABLE;
		return 1;
	}
	if (IS("check_freemail_from") && n <= 1 && freemail && !(flags & SCAN_EVAL_TRUST_CFG)) {
		int ec;
		PCRE2_SIZE eo;

		if (n == 1 && !(r->re = pcre2_compile((PCRE2_SPTR)a[0], PCRE2_ZERO_TERMINATED, 0,
						      &ec, &eo, NULL)))
			return 0;
		r->eval = EVAL_FREEMAIL_FROM;
		if (!(r->pattern = fm_domains(freemail)))
			return -ENOMEM;
		return 1;
	}
	if (IS("check_for_matching_env_and_hdr_from") && n == 0 && !(flags & SCAN_EVAL_TRUST_CFG)) {
		r->eval = EVAL_ENV_HDR_FROM;
		return 1;
	}
	if (IS("check_for_to_in_subject") && n == 1 && strcmp(a[0], "user") == 0) {
		r->eval = EVAL_LOCALPART_SUBJ;
		return 1;
	}
	if (IS("check_for_shifted_date") && n == 2) {
		r->eval = EVAL_SHIFTED_DATE;
		r->ea = num_arg(a[0]);
		r->eb = num_arg(a[1]);
		return 1;
	}
	if (IS("check_for_mime_html_only") && n == 0) {
		r->eval = EVAL_MIME_HTML_ONLY;
		return 1;
	}
	if (IS("check_mime_multipart_ratio") && n == 2) {
		r->eval = EVAL_MIME_MP_RATIO;
		r->ea = strtod(a[0], NULL);
		r->eb = strtod(a[1], NULL);
		return 1;
	}
	if (IS("check_for_mime") && n == 1 && strcmp(a[0], "mime_qp_long_line") == 0) {
		r->eval = EVAL_MIME_QP_LONG;
		return 1;
	}
	if (IS("check_for_mime") && n == 1 && strcmp(a[0], "mime_base64_encoded_text") == 0) {
		r->eval = EVAL_MIME_B64_TEXT;
		return 1;
	}
	if (IS("check_for_mime") && n == 1 && strcmp(a[0], "mime_base64_count") == 0) {
		r->eval = EVAL_MIME_B64_COUNT;
		return 1;
	}
	if (IS("check_for_mime") && n == 1 && strcmp(a[0], "mime_attachment") == 0) {
		r->eval = EVAL_MIME_ATTACH;
		return 1;
	}
	if (IS("check_body_length") && n == 1 && strtod(a[0], NULL) < MIME_BODY_LEN_MAX) {
		r->eval = EVAL_BODY_LENGTH;
		r->ea = strtod(a[0], NULL);
		return 1;
	}
	if (IS("check_for_mime") && n == 1 && strcmp(a[0], "mime_qp_count") == 0) {
		r->eval = EVAL_MIME_QP_COUNT;
		return 1;
	}
	if (IS("check_for_mime_html") && n == 0) {
		r->eval = EVAL_MIME_HTML;
		return 1;
	}
	if (IS("html_tag_exists") && n == 1)
		for (int i = 0; render_tag_names[i]; i++)
			if (strcmp(a[0], render_tag_names[i]) == 0) {
				r->eval = EVAL_TAG_EXISTS;
				r->ea = i;
				return 1;
			}
	if (IS("html_test") && n == 1 && strcmp(a[0], "html") == 0) {
		r->eval = EVAL_HTML_MESSAGE;
		return 1;
	}
	if (IS("html_text_match") && n == 2 && strcmp(a[0], "anchor") == 0 &&
	    strcmp(a[1], "<img>") == 0) {
		r->eval = EVAL_LINK_IMAGE;
		return 1;
	}
	if (IS("html_text_match") && n == 2 && strcmp(a[0], "comment") == 0 &&
	    strcmp(a[1], "<!.*?>") == 0) {
		r->eval = EVAL_COMMENT_EXISTS;
		return 1;
	}
	if (IS("gated_through_received_hdr_remover") && n == 0) {
		r->eval = EVAL_GATED_RCVD;
		return 1;
	}
	if (IS("check_unresolved_template") && n == 0) {
		r->eval = EVAL_UNRESOLVED_TPL;
		return 1;
	}
	if (IS("check_ratware_name_id") && n == 0) {
		r->eval = EVAL_RATWARE_NAME_ID;
		return 1;
	}
	if (IS("html_image_only") && n == 2) {
		r->eval = EVAL_HTML_IMAGE_ONLY;
		r->ea = strtod(a[0], NULL);
		r->eb = strtod(a[1], NULL);
		return 1;
	}
	if (IS("html_range") && n == 3 && strcmp(a[0], "length") == 0) {
		r->eval = EVAL_HTML_LENGTH;
		r->ea = strtod(a[1], NULL);
		r->eb = strcmp(a[2], "inf") == 0 ? INFINITY : strtod(a[2], NULL);
		return 1;
	}
	if (IS("html_eval") && n == 2 && strcmp(a[0], "length") == 0) {
		/* "$val < N" over an integer length: the range (-inf, ceil(N) - 1] */
		const char *x = a[1];
		char *end;
		int lt = *x == '<';

		if (!lt && *x != '>')
			return 0;
		x++;
		double v = strtod(x, &end);

		if (end == x || *x == '=' || *end)
			return 0;
		r->eval = EVAL_HTML_LENGTH;
		r->ea = lt ? -INFINITY : v;
		r->eb = lt ? ceil(v) - 1 : INFINITY;
		return 1;
	}
#undef IS
	return 0;
}

/* eval_regex - "=~ /re/flags" at p (blanks before it skipped) compiled
 * into *re: 1, 0 not possible (why says why, prefixed with what), -ENOMEM.
 * With hs, also its Hyperscan form into hs->pattern and hs->flags
 * (NULL on ENOMEM) */
static int eval_regex(const char *p, pcre2_code **re, const char *what, char *why, size_t whysz,
		      struct scan_rule *hs)
{
	const char *q;
	char open, close;
	uint32_t opt = 0;
	int ec;
	PCRE2_SIZE eo;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "=~", 2) != 0) {
		snprintf(why, whysz, "%s: only =~ tests", what);
		return 0;
	}
	p += 2;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == 'm' && p[1] && !isalnum((unsigned char)p[1]) && p[1] != ' ')
		p++;
	open = *p++;
	close = open == '{' ? '}' : open == '(' ? ')' : open == '<' ? '>' : open;
	if (!open || isalnum((unsigned char)open) || open == ' ') {
		snprintf(why, whysz, "%s: not a /regex/", what);
		return 0;
	}
	for (q = p; *q && *q != close; q++)
		if (*q == '\\' && q[1])
			q++;
	if (*q != close) {
		snprintf(why, whysz, "%s: not a /regex/", what);
		return 0;
	}
	const char *f = q + 1;

	for (; *f && *f != ' ' && *f != '\t'; f++) {
		if (*f == 'i')
			opt |= PCRE2_CASELESS;
		else if (*f == 's')
			opt |= PCRE2_DOTALL;
		else if (*f == 'm')
			opt |= PCRE2_MULTILINE;
		else if (*f == 'x')
			opt |= PCRE2_EXTENDED;
		else {
			snprintf(why, whysz, "%s: regex flag %c", what, *f);
			return 0;
		}
	}
	while (*f == ' ' || *f == '\t')
		f++;
	if (*f) { /* [if-unset: ...]: none in Debian's rules */
		snprintf(why, whysz, "%s: text after the regex", what);
		return 0;
	}
	if (!(*re = pcre2_compile((PCRE2_SPTR)p, (PCRE2_SIZE)(q - p), opt, &ec, &eo, NULL))) {
		PCRE2_UCHAR m[120];

		pcre2_get_error_message(ec, m, sizeof(m));
		snprintf(why, whysz, "%s: pcre2: %s", what, (char *)m);
		return ec == PCRE2_ERROR_NOMEMORY ? -ENOMEM : 0;
	}
	pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE);
	if (hs) {
		hs->flags = (opt & PCRE2_CASELESS ? HS_FLAG_CASELESS : 0) |
			    (opt & PCRE2_DOTALL ? HS_FLAG_DOTALL : 0) |
			    (opt & PCRE2_MULTILINE ? HS_FLAG_MULTILINE : 0);
		if (asprintf(&hs->pattern, "%s%.*s", opt & PCRE2_EXTENDED ? "(?x)" : "",
			     (int)(q - p), p) < 0)
			hs->pattern = NULL;
	}
	return 1;
}

/* def_name - the header name at the start of a rule's definition */
static const char *def_name(const char *p, char name[MIME_NAME_MAX])
{
	size_t nl = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	while (*p && *p != ' ' && *p != '\t' && *p != '=' && *p != '!' && nl < MIME_NAME_MAX - 1)
		name[nl++] = *p++;
	name[nl] = 0;
	return p;
}

int scan_eval_mimeheader(const char *def, struct scan_rule *r, char *why, size_t whysz)
{
	char name[MIME_NAME_MAX];
	const char *p = def_name(def, name);
	size_t nl = strlen(name);
	pcre2_code *re = NULL;
	int mh, rc;

	if (nl > 4 && strcasecmp(name + nl - 4, ":raw") == 0) {
		snprintf(why, whysz, "mimeheader: raw (folded) part headers are not kept");
		return 0;
	}
	if ((mh = mime_mh_index(name)) < 0) {
		snprintf(why, whysz, "mimeheader: part header %s is not kept", name);
		return 0;
	}
	if ((rc = eval_regex(p, &re, "mimeheader", why, whysz, NULL)) <= 0)
		return rc;
	r->re = re;
	r->eval = EVAL_MIMEHEADER;
	r->ea = mh;
	return 1;
}

int scan_eval_relays(const char *def, int flags, struct scan_rule *r, char *why, size_t whysz)
{
	char name[MIME_NAME_MAX];
	const char *p = def_name(def, name);
	pcre2_code *re = NULL;
	int v, rc;

	if (strcmp(name, "EnvelopeFrom") == 0) /* get_envelope_from, as it is */
		v = SA_RELAYS_N;
	else if ((v = sa_relay_view_index(name)) < 0) {
		snprintf(why, whysz, "SpamAssassin pseudo-header %s is not derived", name);
		return 0;
	}
	if (flags & SCAN_EVAL_TRUST_CFG) {
		snprintf(why, whysz, "X-Spam-Relays-*: trusted/internal networks configured");
		return 0;
	}
	if ((rc = eval_regex(p, &re, "X-Spam-Relays-*", why, whysz, r)) <= 0)
		return rc;
	r->re = re;
	r->eval = EVAL_RELAYS_HDR;
	r->ea = v;
	/* a prefilter Hyperscan takes (a superset: its candidates are
	 * confirmed by re, scan.c), or none: re alone on every message.
	 * None either for one that can match "" (Hyperscan refuses those at
	 * compile time, which hs_expression_info does not check) */
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *ce = NULL;

	if (!r->pattern)
		return -ENOMEM;
	if (hs_expression_info(r->pattern, r->flags | HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH,
			       &info, &ce) != HS_SUCCESS || !info->min_width) {
		free(r->pattern);
		r->pattern = strdup("");
	}
	hs_free_compile_error(ce);
	free(info);
	return r->pattern ? 1 : -ENOMEM;
}

/* relays_hdr - get('X-Spam-Relays-...') =~ re: the relay string as it is;
 * get('EnvelopeFrom') =~ re (ea SA_RELAYS_N): no match when undefined */
_Static_assert(SA_RELAYS_N + 1 == SCAN_NRDB, "scan_db.rdb: a database per relay string");

static int relays_hdr(const struct scan_rule *r, const char *hb, size_t n)
{
	static __thread pcre2_match_data *md; /* one per thread, for every rule */
	const struct sa_relays *rl = sa_relays_of(hb, n);
	int v = (int)r->ea;

	if (!rl || (v == SA_RELAYS_N && !rl->env_def) ||
	    (!md && !(md = pcre2_match_data_create(1, NULL))))
		return 0;
	if (v == SA_RELAYS_N)
		return pcre2_match(r->re, (PCRE2_SPTR)rl->env, strlen(rl->env), 0, 0, md, sa_match_ctx()) >= 0;
	return pcre2_match(r->re, (PCRE2_SPTR)rl->str[v], rl->len[v], 0, 0, md, sa_match_ctx()) >= 0;
}

/* relay_count - RelayEval's check_all_trusted, check_no_relays,
 * check_relays_unparseable over num_relays_* */
static int relay_count(const struct scan_rule *r, const char *hb, size_t n)
{
	const struct sa_relays *rl = sa_relays_of(hb, n);

	if (!rl)
		return 0;
	switch (r->eval) {
	case EVAL_ALL_TRUSTED:
		return rl->trusted && !rl->untrusted && !rl->unparseable;
	case EVAL_NO_RELAYS:
		return !rl->trusted && !rl->untrusted && !rl->unparseable;
	default:
		return rl->unparseable > 0;
	}
}

size_t scan_eval_entity_value(const struct scan_rule *r, const struct mime_walker *w,
			      char buf[MIME_HDRVAL_MAX + 1])
{
	size_t n = 0;
	const char *v = mime_entity_header(w, (enum mime_mh)(int)r->ea, &n);

	if (!v)
		return 0; /* absent: undef, the if-unset value '' */
	memcpy(buf, v, n); /* get_header: the value, then "\n" */
	buf[n++] = '\n';
	return n;
}

int scan_eval_entity(const struct scan_rule *r, const struct mime_walker *w)
{
	char buf[MIME_HDRVAL_MAX + 1];
	size_t n = scan_eval_entity_value(r, w, buf);
	pcre2_match_data *md;
	int rc;

	if (!(md = pcre2_match_data_create(1, NULL)))
		return 0;
	rc = pcre2_match(r->re, (PCRE2_SPTR)buf, n, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

int scan_eval_is_header(const struct scan_rule *r)
{
	return r->eval < EVAL_EXT_FIRST || r->eval <= EVAL_HDR_LAST;
}

int scan_eval_date_in(const struct scan_rule *r, int64_t diff)
{
	double d = (double)diff;

	return (isnan(r->ea) || d >= 3600 * r->ea) && (isnan(r->eb) || d < 3600 * r->eb);
}

int scan_eval_header(const struct scan_rule *r, const char *hb, size_t n)
{
	switch (r->eval) {
	case EVAL_SHIFTED_DATE:
		return scan_eval_date_in(r, sa_date_diff(hb, n));
	case EVAL_LIST_EMPTY:
		return 0;
	case EVAL_GATED_RCVD:
		return gated_rcvd(hb, n);
	case EVAL_UNRESOLVED_TPL:
		return unresolved_tpl(hb, n);
	case EVAL_RATWARE_NAME_ID:
		return ratware_name_id(hb, n);
	case EVAL_FREEMAIL_HDR:
		return freemail_hdr(r, hb, n);
	case EVAL_LOCALPART_SUBJ:
		return localpart_subj(hb, n);
	case EVAL_RELAYS_HDR:
		return relays_hdr(r, hb, n);
	case EVAL_FREEMAIL_FROM:
		return freemail_from(r, hb, n);
	case EVAL_FROM_IN_LIST:
		return from_in_list(r, hb, n);
	case EVAL_ENV_HDR_FROM:
		return env_hdr_from(hb, n);
	case EVAL_ALL_TRUSTED:
	case EVAL_NO_RELAYS:
	case EVAL_RELAYS_UNPARSEABLE:
		return relay_count(r, hb, n);
	}
	return 0;
}

/* top_html - get('Content-Type') =~ m{^text/html}i: the first header */
static int top_html(const char *hb, size_t n)
{
	size_t off = 0, vl = 0;
	const char *v = hdr_next(hb, n, &off, "Content-Type", &vl);

	while (v && vl && isspace((unsigned char)*v))
		v++, vl--;
	return v && vl >= 9 && strncasecmp(v, "text/html", 9) == 0;
}

int scan_eval_body(const struct scan_rule *r, const char *hb, size_t n,
		   const struct mime_stats *ms, const struct render_stats *rs)
{
	switch (r->eval) {
	case EVAL_MIME_HTML_ONLY:
		if (top_html(hb, n))
			return 1;
		return ms->html_count > 0 && ms->text_count == 0;
	case EVAL_MIME_HTML:
		return top_html(hb, n) || ms->html_count > 0;
	case EVAL_MIME_B64_COUNT:
		return ms->b64_count > 0;
	case EVAL_MIME_ATTACH:
		return ms->attach_count > 0;
	case EVAL_MIME_QP_COUNT: /* the encoded characters once a QP line was read */
		return ms->qp_bytes ? ms->qp_chars > 0 : ms->qp_entities > 0;
	case EVAL_BODY_LENGTH:
		return (double)ms->body_len <= r->ea;
	case EVAL_TAG_EXISTS:
		return (rs->tags_seen >> (int)r->ea) & 1;
	case EVAL_MIME_MP_RATIO: {
		double ratio = 1.0;

		if (ms->alt && ms->last_text_set && ms->last_html_set && ms->last_html_bytes > 0)
			ratio = (double)ms->last_text_bytes / (double)ms->last_html_bytes;
		return ratio >= r->ea && ratio < r->eb;
	}
	case EVAL_MIME_QP_LONG:
		return ms->qp_long_line;
	case EVAL_MIME_B64_TEXT:
		return ms->b64_text;
	case EVAL_HTML_MESSAGE:
		return rs->parts_html > 0;
	case EVAL_LINK_IMAGE:
		return rs->img_in_anchor;
	case EVAL_COMMENT_EXISTS:
		return rs->comment_match;
	case EVAL_HTML_IMAGE_ONLY: /* some text/html part with an <img> */
	case EVAL_HTML_LENGTH:
		for (unsigned i = 0; i < rs->html_nparts; i++) {
			double len = (double)rs->html_part[i].len;

			if ((r->eval == EVAL_HTML_LENGTH || rs->html_part[i].imgs) && len > r->ea &&
			    len <= r->eb)
				return 1;
		}
		return 0;
	}
	return 0;
}

int scan_eval_from_in_list(const char *globs, int flags, struct scan_rule *r)
{
	if (flags & SCAN_EVAL_TRUST_CFG)
		return 0;
	if (!(r->pattern = strdup(globs)))
		return -ENOMEM;
	r->eval = EVAL_FROM_IN_LIST;
	return 1;
}
