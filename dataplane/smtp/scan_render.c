/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_render.c - SpamAssassin's body, rawbody and uri texts, streaming.
 *
 * SpamAssassin builds each text from the whole parsed message; here every
 * step is a byte-at-a-time transformation with a fixed amount of state, so
 * the content gate can render while the message arrives:
 *
 *   decoded part --+--> rawbody cut (500,000) --> 2-4 KiB chunks    [rawbody]
 *                  |
 *                  +--> HTML tokenizer (text/html only)
 *                          --> body cut (50,000) --> whitespace
 *                          --> lines of <= 2,048 bytes              [body]
 *                                       \--> URLs in the text      [uri]
 *                  HTML href/src/action/background values           [uri]
 *
 * Each stage mirrors one piece of Mail::SpamAssassin::Message
 * (get_body_text_array_common, get_decoded_body_text_array,
 * split_into_array_of_short_lines / _paragraphs), HTML.pm (html_text,
 * display_text, html_whitespace, html_uri) and PerMsgStatus.pm
 * (_process_text_uri_list) and Util.pm (uri_list_canonicalize); the
 * differences are listed in docs/content-gate.md.
 */
#include <string.h>
#include <strings.h>

#include "scan_render.h"

enum html_state {
	HS_TEXT = 0, HS_ENT, HS_LT, HS_TAGNAME, HS_ATTRS, HS_ANAME, HS_AFTERNAME,
	HS_AVAL_START, HS_AVAL, HS_BANG, HS_COMMENT, HS_DECL, HS_RAW,
};

/* Perl's \s on bytes: space, \t, \n, \v, \f, \r */
static inline int is_ws(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static inline int is_alnum(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

/* ------------------------------------------------------------ output */

/* emit - one unit to the sink */
static void emit(struct render *r, enum render_unit k, const char *p, size_t n)
{
	if (r->want & 1u << k)
		r->unit(r->ctx, k, p, n);
}

static void text_uris(struct render *r, const char *p, size_t n);

/* body_unit - a body line: to the sink, and searched for URLs */
static void body_unit(struct render *r, const char *p, size_t n)
{
	r->st.body_units++;
	emit(r, RU_BODY, p, n);
	if (r->want & 1u << RU_URI)
		text_uris(r, p, n);
}

/* line_split - the line outgrew RENDER_LINE_MAX: SpamAssassin cuts after
 * the last space at or before byte 2,048, or at 2,048 when there is none
 * (split_into_array_of_short_lines) */
static void line_split(struct render *r)
{
	size_t k = RENDER_LINE_MAX + 1, cut;

	while (k > 0 && r->line[k - 1] != ' ')
		k--;
	cut = k ? k : RENDER_LINE_MAX;
	body_unit(r, r->line, cut);
	memmove(r->line, r->line + cut, r->line_len - cut);
	r->line_len -= cut;
}

static inline void line_put(struct render *r, char c)
{
	r->line[r->line_len++] = c;
	if (r->line_len == RENDER_LINE_MAX + 1)
		line_split(r);
}

/* line_puts - line_put of each byte of p[0..n), a copy at a time */
static void line_puts(struct render *r, const char *p, size_t n)
{
	while (n) {
		size_t k = RENDER_LINE_MAX + 1 - r->line_len;

		if (k > n)
			k = n;
		memcpy(r->line + r->line_len, p, k);
		r->line_len += k;
		p += k;
		n -= k;
		if (r->line_len == RENDER_LINE_MAX + 1)
			line_split(r);
	}
}

/* line_end - the line (with its '\n', when it has one) is complete */
static void line_end(struct render *r)
{
	if (r->line_len)
		body_unit(r, r->line, r->line_len);
	r->line_len = 0;
}

/* ws_flush - a whitespace run ends: SpamAssassin turns "\n+\s*\n+" into a
 * paragraph break and any other run into one space */
static void ws_flush(struct render *r)
{
	if (!r->ws_run)
		return;
	if (r->ws_nl >= 2) {
		if (r->ws_pre)
			line_put(r, ' ');
		line_put(r, '\n');
		line_end(r);
		if (r->ws_post)
			line_put(r, ' ');
	} else {
		line_put(r, ' ');
	}
	r->ws_run = r->ws_pre = r->ws_nl = r->ws_post = 0;
}

/* body_put - rendered text of a part, after its cut: whitespace handling
 * of get_body_text_array_common, then lines */
static void body_put(struct render *r, const char *p, size_t n)
{
	if (n)
		r->any_text = 1;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];

		if (is_ws(c)) {
			r->ws_run = 1;
			if (c == '\n') {
				r->ws_nl++;
				r->ws_post = 0;
			} else if (r->ws_nl) {
				r->ws_post = 1;
			} else {
				r->ws_pre = 1;
			}
			i++;
			continue;
		}
		if (r->ws_run)
			ws_flush(r);
		/* the run of non-blank bytes, and single spaces between them
		 * (a space run ws_flush makes one space of), goes to the line
		 * in one copy */
		size_t j = i + 1;

		for (;;) {
			while (j < n && !is_ws((unsigned char)p[j]))
				j++;
			if (j + 1 < n && p[j] == ' ' && !is_ws((unsigned char)p[j + 1])) {
				j += 2;
				continue;
			}
			break;
		}
		line_puts(r, p + i, j - i);
		i = j;
	}
}

/* subject_flush - the Subject is the first body line ("\n" without one) */
static void subject_flush(struct render *r)
{
	if (r->subject_done)
		return;
	r->subject_done = 1;
	for (size_t i = 0; i < r->subject_len; i++)
		line_put(r, r->subject[i]);
	line_put(r, '\n');
	line_end(r);
}

/* ------------------------------------------------------------ cuts */

typedef void (*out_fn)(struct render *r, const char *p, size_t n);

/* trunc_decide - the slack is full or the part ended without a first-choice
 * cut character: cut after the first later choice, or at the limit */
static void trunc_decide(struct render *r, struct render_trunc *t, out_fn out)
{
	for (const char *c = t->cuts + 1; *c; c++) {
		const char *x = memchr(t->tail, *c, t->tlen);

		if (x) {
			out(r, t->tail, (size_t)(x - t->tail) + 1);
			break;
		}
	}
	t->done = 1;
}

/* trunc_feed - pass a part's bytes up to its scan size, then up to the
 * cut SpamAssassin would choose */
static void trunc_feed(struct render *r, struct render_trunc *t, const char *p, size_t n,
		       out_fn out, unsigned *cut)
{
	if (t->done)
		return;
	if (t->seen < t->limit) {
		size_t k = t->limit - t->seen < n ? (size_t)(t->limit - t->seen) : n;

		out(r, p, k);
		t->seen += k;
		p += k;
		n -= k;
	}
	if (n && !t->tlen)
		(*cut)++;
	while (n && !t->done) {
		char c = *p++;

		n--;
		t->seen++;
		t->tail[t->tlen++] = c;
		if (c == t->cuts[0]) {
			out(r, t->tail, t->tlen);
			t->done = 1;
		} else if (t->tlen == sizeof(t->tail)) {
			trunc_decide(r, t, out);
		}
	}
}

/* trunc_end - the part ended while bytes were held past the limit */
static void trunc_end(struct render *r, struct render_trunc *t, out_fn out)
{
	if (!t->done && t->tlen)
		trunc_decide(r, t, out);
}

static void trunc_init(struct render_trunc *t, size_t limit, const char *cuts)
{
	t->seen = 0;
	t->limit = limit;
	t->cuts = cuts;
	t->tlen = 0;
	t->done = 0;
}

/* ------------------------------------------------------------ rawbody */

/* raw_split - more than 4,096 bytes wait: the next chunk ends at the first
 * '\n', else '>', else ' ' from byte 2,048 on that keeps it within 4,096
 * bytes, else at 2,049 bytes (split_into_array_of_short_paragraphs) */
static void raw_split(struct render *r)
{
	static const char pref[] = "\n> ";
	size_t j = RENDER_LINE_MAX;

	for (const char *c = pref; *c; c++) {
		const char *x = memchr(r->raw + RENDER_LINE_MAX, *c,
				       2 * RENDER_LINE_MAX - RENDER_LINE_MAX);

		if (x) {
			j = (size_t)(x - r->raw);
			break;
		}
	}
	r->st.rawbody_units++;
	emit(r, RU_RAWBODY, r->raw, j + 1);
	memmove(r->raw, r->raw + j + 1, r->raw_len - j - 1);
	r->raw_len -= j + 1;
}

/* raw_put - decoded bytes of a part after its cut */
static void raw_put(struct render *r, const char *p, size_t n)
{
	while (n) {
		size_t k = sizeof(r->raw) - r->raw_len < n ? sizeof(r->raw) - r->raw_len : n;

		memcpy(r->raw + r->raw_len, p, k);
		r->raw_len += k;
		p += k;
		n -= k;
		if (r->raw_len == sizeof(r->raw))
			raw_split(r);
	}
}

/* ------------------------------------------------------------ uri */

/* hexv - value of a hex digit or -1 */
static int hexv(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* render_uri - a URI as SpamAssassin's uri rules see it: the raw string,
 * and when it differs, the canonical form of uri_list_canonicalize's basic
 * steps (backslashes, "http:/" slashes, %xx of printable characters, a
 * missing scheme, a path before '?'/'#', &#NN; dots) */
void render_uri(struct render *r, const char *p, size_t n)
{
	char c[RENDER_URI_MAX + 16];
	size_t o = 0, i;

	while (n && (is_ws((unsigned char)*p)))
		p++, n--;
	while (n && is_ws((unsigned char)p[n - 1]))
		n--;
	/* the raw value counts even when it is no URI ("", "#top") */
	r->st.uris++;
	emit(r, RU_URI, p, n);
	if (n <= 1 || *p == '#' || *p == '?' || *p == '&' ||
	    (*p == '/' && !(n > 1 && p[1] == '/')))
		return;
	/* mailto: and user@host: SpamAssassin adds only address variants */
	for (i = 0; i < n && p[i] != ':' && p[i] != '@'; i++)
		;
	if ((n >= 7 && strncasecmp(p, "mailto:", 7) == 0) || (i < n && p[i] == '@'))
		return;
	/* scheme: "http:" with 0-2 slashes becomes "http://" */
	for (i = 0; i < n && (is_alnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '_'); i++)
		;
	int scheme = i > 0 && i < n && p[i] == ':';
	size_t s = 0;
	if (scheme && ((i == 4 && strncasecmp(p, "http", 4) == 0) ||
		       (i == 5 && strncasecmp(p, "https", 5) == 0))) {
		memcpy(c, p, i + 1);
		o = i + 1;
		s = i + 1;
		for (int k = 0; k < 2 && s < n && (p[s] == '/' || p[s] == '\\'); k++)
			s++;
		memcpy(c + o, "//", 2);
		o += 2;
	} else if (!scheme) {
		const char *pre = n >= 4 && strncmp(p, "ftp.", 4) == 0 ? "ftp://" : "http://";

		memcpy(c, pre, strlen(pre));
		o = strlen(pre);
	}
	size_t host_end = 0;
	for (; s < n && o < RENDER_URI_MAX + 8; s++) {
		unsigned char ch = (unsigned char)p[s];
		int a, b;

		if (ch == '\\')
			ch = '/';
		if (ch == '%' && s + 2 < n && (a = hexv((unsigned char)p[s + 1])) >= 0 &&
		    (b = hexv((unsigned char)p[s + 2])) >= 0 && (a << 4 | b) > 0x20 &&
		    (a << 4 | b) < 0x7f) {
			ch = (unsigned char)(a << 4 | b);
			s += 2;
		} else if (ch == '&' && s + 3 < n && p[s + 1] == '#') {
			size_t e = s + 2;
			unsigned v = 0;
			int hex = e < n && (p[e] | 0x20) == 'x';

			e += hex;
			while (e < n && e - s < 10 && (hex ? hexv((unsigned char)p[e]) >= 0
							   : p[e] >= '0' && p[e] <= '9'))
				v = v * (hex ? 16 : 10) + (unsigned)hexv((unsigned char)p[e++]);
			if (e < n && p[e] == ';' && ((v >= 33 && v <= 126) || v == 12290 ||
						     v == 65294 || v == 65377)) {
				ch = v > 126 ? '.' : (unsigned char)v;
				s = e;
			}
		}
		/* "http://host?x" gets a path: "http://host/?x" */
		if (!host_end && o >= 7 && (ch == '/' || ch == '?' || ch == '#')) {
			const char *sl = memchr(c, '/', o);

			host_end = 1;
			if (sl && sl + 1 < c + o && sl[1] == '/' && ch != '/' &&
			    (size_t)(sl - c) + 2 < o)
				c[o++] = '/';
		}
		c[o++] = (char)ch;
	}
	if (o != n || memcmp(c, p, n) != 0)
		emit(r, RU_URI, c, o);
}

/* email_delim - a byte that cannot be in a written address (Thunderbird's
 * end delimiters for mail, non-ASCII included) */
static inline int email_delim(unsigned char c)
{
	return c >= 0x80 || is_ws(c) || strchr("><\"`}]{[|,('\x1b", c) != NULL;
}

/* text_email - a bare address around the '@' at p[at]: SpamAssassin makes
 * it "mailto:local@domain" when the domain ends in a plausible TLD (its
 * TLD list is approximated by two or more letters); returns where the
 * address ends, at when there is none */
static size_t text_email(struct render *r, const char *p, size_t n, size_t at)
{
	size_t s = at, e = at + 1, d;
	char u[2 * 251 + 16];

	while (s > 0 && at - s < 251 && !email_delim((unsigned char)p[s - 1]) && p[s - 1] != '@')
		s--;
	while (e < n && e - at - 1 < 251 && !email_delim((unsigned char)p[e]))
		e++;
	while (e > at + 1 && strchr("-~!@#^&*()_+=:;'?,.", p[e - 1]))
		e--;
	if (s == at || e <= at + 1 || !memchr(p + at + 2, '.', e - at - 2 > 0 ? e - at - 2 : 0))
		return at;
	for (d = e; d > at && p[d - 1] != '.'; d--)
		if (!is_alpha((unsigned char)p[d - 1]))
			return at;
	if (e - d < 2 || memmem(p + s, e - s, "&nbsp;", 6))
		return at;
	memcpy(u, "mailto:", 7);
	memcpy(u + 7, p + s, e - s);
	render_uri(r, u, 7 + e - s);
	return e;
}

/* text_uris - URLs written in a body line, as Thunderbird would linkify
 * them: a scheme (http, https, ftp, mailto) or www./ftp. at a word start,
 * up to an end delimiter, without the trailing punctuation it ignores.
 * Schemeless host names and bare addresses (which need the TLD list) are
 * not looked for. */
/* uri_pfx - p[0..n) starts with the lower-case ASCII prefix s, case-blind
 * as strncasecmp (letters fold; the other bytes of s are not letters) */
static inline int uri_pfx(const char *p, size_t n, const char *s, size_t sl)
{
	if (n < sl)
		return 0;
	for (size_t i = 0; i < sl; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((is_alpha(c) ? c | 0x20 : c) != (unsigned char)s[i])
			return 0;
	}
	return 1;
}

#define URI_PFX(p, n, lit) uri_pfx(p, n, lit, sizeof(lit) - 1)

/* byte classes of text_uris: 1, a byte after which no link starts (a
 * word character, '.', '-', '/', '@'); 2, a link's possible first byte
 * (h, f, m, w in either case); 4, '@' */
static const unsigned char uri_cls[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
	['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 3, ['G'] = 1,
	['H'] = 3, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 3, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 3, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 3, ['g'] = 1,
	['h'] = 3, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 3, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 3, ['x'] = 1, ['y'] = 1, ['z'] = 1,
	['_'] = 1, ['.'] = 1, ['-'] = 1, ['/'] = 1, ['@'] = 1 | 4,
};

static void text_uris(struct render *r, const char *p, size_t n)
{
	static const char enddelim[] = "><\"`}]{[| \t\n\r\f\v\x1b";

	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		unsigned cl = uri_cls[(unsigned char)p[i]];

		if (!(cl & 6)) /* neither '@' nor a link's first byte */
			continue;
		if (cl & 4) {
			i = text_email(r, p, n, i);
			continue;
		}
		if (i && (uri_cls[(unsigned char)p[i - 1]] & 1))
			continue;
		/* every prefix below starts with h, f, m or w in either case */
		if (URI_PFX(p + i, n - i, "http://"))
			k = 7;
		else if (URI_PFX(p + i, n - i, "https://"))
			k = 8;
		else if (URI_PFX(p + i, n - i, "ftp://"))
			k = 6;
		else if (URI_PFX(p + i, n - i, "mailto:"))
			k = 7;
		else if (n - i >= 4 && (URI_PFX(p + i, n - i, "www") ||
					URI_PFX(p + i, n - i, "ftp."))) {
			size_t d = i + 3;

			while (d < n && d - i < 5 && p[d] >= '0' && p[d] <= '9')
				d++;
			if (d < n && p[d] == '.')
				k = d + 1 - i;
		}
		if (!k)
			continue;
		size_t e = i + k;
		while (e < n && e - i - k < RENDER_URI_MAX && !memchr(enddelim, p[e], sizeof(enddelim) - 1))
			e++;
		if (e == i + k)
			continue;
		/* ')' ends it when no '(' comes before; then trailing punctuation */
		const char *cp = memchr(p + i, ')', e - i);
		if (cp && !memchr(p + i, '(', (size_t)(cp - (p + i))))
			e = (size_t)(cp - p);
		while (e > i && strchr("-~!@#^&*()_+=:;'?,.", p[e - 1]))
			e--;
		if (e > i + k) {
			if (URI_PFX(p + i, n - i, "www") || URI_PFX(p + i, n - i, "ftp.")) {
				char u[RENDER_URI_MAX + 16];
				const char *pre = (p[i] | 0x20) == 'f' ? "ftp://" : "http://";
				size_t pl = strlen(pre);

				memcpy(u, pre, pl);
				memcpy(u + pl, p + i, e - i);
				render_uri(r, u, pl + e - i);
			} else {
				render_uri(r, p + i, e - i);
			}
		}
		i = e;
	}
}

/* ------------------------------------------------------------ HTML */

/* html_rec - 1 when the text/html part being read has an html_part record */
static inline int html_rec(const struct render *r)
{
	return r->type == RT_HTML && r->st.parts_html <= RENDER_HTML_PARTS;
}

/* hout - rendered HTML text, to the body cut */
static void body_cut_out(struct render *r, const char *p, size_t n);

static inline void hout(struct render *r, const char *p, size_t n)
{
	r->st.html_rendered += n;
	for (size_t i = 0; i < n; i++)
		r->st.html_nonspace += !is_ws((unsigned char)p[i]);
	trunc_feed(r, &r->btr, p, n, body_cut_out, &r->st.body_cut);
}

/* text_byte - one byte of an HTML text node (entities decoded): runs of
 * whitespace and NBSP are one space (display_text).  Each node is an
 * element of SpamAssassin's text list: a whitespace element (<br>, <p>...)
 * drops the last element's trailing space and the next node's leading
 * one, so a node's trailing space waits (h_sp) until the next node starts
 * or a whitespace element drops it */
static void text_byte(struct render *r, unsigned char c)
{
	if (r->h_nbsp) {
		r->h_nbsp = 0;
		if (c == 0xa0) {
			c = ' ';
		} else {
			text_byte(r, 0xc2);
			if (c == 0xc2) {
				r->h_nbsp = 1;
				return;
			}
		}
	} else if (c == 0xc2) {
		r->h_nbsp = 1;
		return;
	}
	if (!r->h_node) { /* a new element: the last one keeps its space */
		if (r->h_sp)
			hout(r, " ", 1);
		r->h_sp = 0;
		r->h_node = 1;
	}
	if (is_ws(c)) {
		if (!(r->h_wselem && r->h_node < 2))
			r->h_sp = 1;
		return;
	}
	r->h_node = 2;
	if (r->h_sp) {
		hout(r, " ", 1);
		r->h_sp = 0;
	}
	char b = (char)c;
	hout(r, &b, 1);
}

/* text_str - decoded entity bytes */
static void text_str(struct render *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		text_byte(r, (unsigned char)s[i]);
}

/* node_end - markup ended the text node (HTML::Parser's text event) */
static void node_end(struct render *r)
{
	if (r->h_nbsp) {
		r->h_nbsp = 0;
		text_byte(r, 0xc2);
	}
	if (r->h_node)
		r->h_wselem = 0;
	r->h_node = 0;
}

/* utf8_put - code point as HTML::Parser decodes it in SpamAssassin's byte
 * mode: below 256 one byte (Latin-1), above as UTF-8; returns bytes
 * written (0: invalid) */
static size_t utf8_put(unsigned v, char *o)
{
	if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	if (v < 0x100) {
		o[0] = (char)v;
		return 1;
	}
	if (v < 0x800) {
		o[0] = (char)(0xc0 | v >> 6);
		o[1] = (char)(0x80 | (v & 63));
		return 2;
	}
	if (v < 0x10000) {
		o[0] = (char)(0xe0 | v >> 12);
		o[1] = (char)(0x80 | (v >> 6 & 63));
		o[2] = (char)(0x80 | (v & 63));
		return 3;
	}
	o[0] = (char)(0xf0 | v >> 18);
	o[1] = (char)(0x80 | (v >> 12 & 63));
	o[2] = (char)(0x80 | (v >> 6 & 63));
	o[3] = (char)(0x80 | (v & 63));
	return 4;
}

/* the named entities HTML mail uses most; others stay literal */
static const struct { const char *name; unsigned cp; } entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
	{ "nbsp", ' ' }, { "copy", 0xa9 }, { "reg", 0xae }, { "trade", 0x2122 },
	{ "euro", 0x20ac }, { "pound", 0xa3 }, { "yen", 0xa5 }, { "cent", 0xa2 },
	{ "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "laquo", 0xab }, { "raquo", 0xbb }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
	{ "ldquo", 0x201c }, { "rdquo", 0x201d }, { "bull", 0x2022 }, { "middot", 0xb7 },
	{ "shy", 0xad }, { "zwnj", 0x200c }, { "zwj", 0x200d }, { "eacute", 0xe9 },
	{ "egrave", 0xe8 }, { "aacute", 0xe1 }, { "agrave", 0xe0 }, { "uuml", 0xfc },
	{ "ouml", 0xf6 }, { "auml", 0xe4 }, { "szlig", 0xdf }, { "ccedil", 0xe7 },
	{ "deg", 0xb0 }, { "times", 0xd7 }, { "iexcl", 0xa1 }, { "sect", 0xa7 },
};

/* entity_decode - "name" or "#NN"/"#xHH" (without '&' ';') to UTF-8 in o;
 * returns the length, 0 when unknown */
static size_t entity_decode(const char *e, size_t n, char *o)
{
	if (n >= 2 && e[0] == '#') {
		int hex = (e[1] | 0x20) == 'x';
		unsigned v = 0;
		size_t i = 1 + (size_t)hex;

		if (i >= n)
			return 0;
		for (; i < n; i++) {
			int d = hex ? hexv((unsigned char)e[i]) : (e[i] >= '0' && e[i] <= '9' ? e[i] - '0' : -1);

			if (d < 0 || v > 0x10ffff)
				return 0;
			v = v * (hex ? 16 : 10) + (unsigned)d;
		}
		return utf8_put(v, o);
	}
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
		if (strlen(entities[i].name) == n && memcmp(entities[i].name, e, n) == 0)
			return utf8_put(entities[i].cp, o);
	return 0;
}

/* entity_end - the entity ended (by ';' when semi; HTML::Parser decodes a
 * known one without it too): decoded or literal */
static void entity_end(struct render *r, int semi)
{
	char o[4];
	size_t k = entity_decode(r->h_ent, r->h_ent_len, o);

	if (k) {
		text_str(r, o, k);
		return;
	}
	text_byte(r, '&');
	text_str(r, r->h_ent, r->h_ent_len);
	if (semi)
		text_byte(r, ';');
}

/* is_uri_attr - the attribute holds a URI SpamAssassin extracts (html_uri) */
static int is_uri_attr(const char *tag, const char *an)
{
	/* most attributes are none of the four: one byte tells */
	if (an[0] != 'h' && an[0] != 's' && an[0] != 'b' && an[0] != 'a')
		return 0;
	if (!strcmp(an, "href"))
		return !strcmp(tag, "a") || !strcmp(tag, "area") || !strcmp(tag, "link");
	if (!strcmp(an, "src"))
		return !strcmp(tag, "img") || !strcmp(tag, "frame") || !strcmp(tag, "iframe") ||
		       !strcmp(tag, "embed") || !strcmp(tag, "script") || !strcmp(tag, "bgsound");
	if (!strcmp(an, "background"))
		return !strcmp(tag, "body") || !strcmp(tag, "table") || !strcmp(tag, "tr") ||
		       !strcmp(tag, "td");
	if (!strcmp(an, "action"))
		return !strcmp(tag, "form");
	return 0;
}

/* value_done - an attribute value ended: a URI attribute is reported with
 * its entities decoded (HTML::Parser decodes attribute values) */
static void value_done(struct render *r)
{
	char u[RENDER_URI_MAX];
	size_t o = 0;

	if (!r->h_attr || r->h_end)
		return;
	for (size_t i = 0; i < r->h_av_len; i++) {
		if (r->h_av[i] == '&') {
			size_t j = i + 1;
			char d[4];
			size_t k;

			while (j < r->h_av_len && j - i < 11 && (is_alnum((unsigned char)r->h_av[j]) ||
								 r->h_av[j] == '#'))
				j++;
			if (j < r->h_av_len && r->h_av[j] == ';' &&
			    (k = entity_decode(r->h_av + i + 1, j - i - 1, d)) > 0) {
				memcpy(u + o, d, k);
				o += k;
				i = j;
				continue;
			}
		}
		u[o++] = r->h_av[i];
	}
	render_uri(r, u, o);
}

/* not "script": SpamAssassin's {inside}{script} disagreed with moat's tags
 * on 9 of 10 corpus messages (tools/sa-eval-check), so it stays skipped;
 * tag_class() gives each its bit (1 << index): keep the two in step */
const char *const render_tag_names[] = { "html", "head", "body", "meta", "style",
					"center", "bgsound", NULL };

/* what tag_done does with a tag: the low bits are 1 << i of
 * render_tag_names[i] */
enum {
	TG_IMG = 1u << 8, TG_A = 1u << 9, TG_SCRIPT = 1u << 10, TG_STYLE = 1u << 11,
	TG_NL = 1u << 12,   /* renders as "\n" */
	TG_SP = 1u << 13,   /* " " */
	TG_PARA = 1u << 14, /* "\n\n" */
};

#define TAG_IS(lit) (n == sizeof(lit) - 1 && memcmp(t, lit, n) == 0)

/* tag_class - the TG_* bits and render_tag_names bit of tag t (n bytes,
 * lower case): one switch on the length instead of a strcmp per name */
static unsigned tag_class(const char *t, size_t n)
{
	switch (n) {
	case 1:
		return t[0] == 'a' ? TG_A : t[0] == 'p' ? TG_PARA : 0;
	case 2:
		if (TAG_IS("br"))
			return TG_NL;
		if (TAG_IS("li") || TAG_IS("th") || TAG_IS("td") || TAG_IS("dt") || TAG_IS("dd") ||
		    (t[0] == 'h' && t[1] >= '1' && t[1] <= '9'))
			return TG_SP;
		return TAG_IS("hr") ? TG_PARA : 0;
	case 3:
		if (TAG_IS("img"))
			return TG_IMG;
		if (TAG_IS("div"))
			return TG_NL;
		return TAG_IS("pre") || TAG_IS("xmp") ? TG_PARA : 0;
	case 4:
		return TAG_IS("html") ? 1u << 0 : TAG_IS("head") ? 1u << 1 : TAG_IS("body") ? 1u << 2 :
		       TAG_IS("meta") ? 1u << 3 : 0;
	case 5:
		return TAG_IS("style") ? 1u << 4 | TG_STYLE : TAG_IS("embed") ? TG_SP :
		       TAG_IS("title") ? TG_PARA : 0;
	case 6:
		return TAG_IS("center") ? 1u << 5 : TAG_IS("script") ? TG_SCRIPT : 0;
	case 7:
		return TAG_IS("bgsound") ? 1u << 6 : TAG_IS("listing") ? TG_PARA : 0;
	case 9:
		return TAG_IS("plaintext") ? TG_PARA : 0;
	case 10:
		return TAG_IS("blockquote") ? TG_PARA : 0;
	}
	return 0;
}

#undef TAG_IS

/* tag_done - '>' closed a tag: counters, script/style skipping, the
 * whitespace an element renders as (html_whitespace) */
static void tag_done(struct render *r)
{
	const char *t = r->h_tag;
	unsigned k = tag_class(t, r->h_tag_len);

	node_end(r);
	r->hs = HS_TEXT;
	r->st.html_tags++;
	r->st.tags_seen |= k & 0xffu;
	if (!r->h_end) {
		if (k & TG_IMG) {
			r->st.html_images++;
			if (html_rec(r))
				r->st.html_part[r->st.html_nparts - 1].imgs++;
			if (r->h_in_a) /* HTML.pm: anchor text gets "<img>\n" */
				r->st.img_in_anchor = 1;
		}
		if (k & TG_A)
			r->h_in_a++;
		if (k & (TG_SCRIPT | TG_STYLE)) {
			r->st.html_scripts += !!(k & TG_SCRIPT);
			strcpy(r->h_raw, t);
			r->h_raw_len = r->h_tag_len;
			r->h_match = 0;
			r->hs = HS_RAW;
		}
	} else if ((k & TG_A) && r->h_in_a) { /* inside{a}, floored at 0 */
		r->h_in_a--;
	}
	if (k & (TG_NL | TG_SP | TG_PARA)) {
		r->h_sp = 0; /* trailing space of the text before is trimmed */
		if (k & TG_NL)
			hout(r, "\n", 1);
		else if (k & TG_SP)
			hout(r, " ", 1);
		else
			hout(r, "\n\n", 2);
		r->h_wselem = 1;
	}
}

/* markup_end - a comment or declaration ended */
static void markup_end(struct render *r)
{
	node_end(r);
	r->hs = HS_TEXT;
}

/* html_byte - the HTML tokenizer, one decoded byte at a time */
static void html_byte(struct render *r, unsigned char c)
{
	switch (r->hs) {
	case HS_TEXT:
		if (c == '<') {
			r->hs = HS_LT;
		} else if (c == '&') {
			r->hs = HS_ENT;
			r->h_ent_len = 0;
		} else {
			text_byte(r, c);
		}
		return;
	case HS_ENT:
		if ((is_alnum(c) || (c == '#' && !r->h_ent_len)) && r->h_ent_len < sizeof(r->h_ent)) {
			r->h_ent[r->h_ent_len++] = (char)c;
			return;
		}
		r->hs = HS_TEXT;
		entity_end(r, c == ';');
		if (c != ';')
			html_byte(r, c);
		return;
	case HS_LT:
		if (c == '!') {
			r->hs = HS_BANG;
			r->h_dash = 0;
		} else if (c == '?') {
			r->hs = HS_DECL;
		} else if (c == '/' || is_alpha(c)) {
			r->h_end = c == '/';
			r->h_tag_len = 0;
			r->h_tag[0] = 0;
			r->hs = HS_TAGNAME;
			if (c != '/')
				html_byte(r, c);
		} else {
			r->hs = HS_TEXT;
			text_byte(r, '<');
			html_byte(r, c);
		}
		return;
	case HS_TAGNAME:
		if (is_alnum(c) || (r->h_tag_len && (c == ':' || c == '-' || c == '_' || c == '.'))) {
			if (r->h_tag_len < sizeof(r->h_tag) - 1) {
				r->h_tag[r->h_tag_len++] = (char)(c | (is_alpha(c) ? 0x20 : 0));
				r->h_tag[r->h_tag_len] = 0;
			}
			return;
		}
		if (!r->h_tag_len) { /* "</" and no name: text */
			r->hs = HS_TEXT;
			text_str(r, "</", 2);
			html_byte(r, c);
			return;
		}
		r->hs = HS_ATTRS;
		/* fall through */
	case HS_ATTRS:
		if (c == '>')
			tag_done(r);
		else if (!is_ws(c) && c != '/') {
			r->h_an_len = 0;
			r->hs = HS_ANAME;
			html_byte(r, c);
		}
		return;
	case HS_ANAME:
		if (c == '=') {
			r->hs = HS_AVAL_START;
		} else if (c == '>') {
			tag_done(r);
		} else if (is_ws(c)) {
			r->hs = HS_AFTERNAME;
		} else if (c == '/' && !r->h_an_len) {
			r->hs = HS_ATTRS;
		} else if (r->h_an_len < sizeof(r->h_an) - 1) {
			r->h_an[r->h_an_len++] = (char)(is_alpha(c) ? c | 0x20 : c);
		}
		r->h_an[r->h_an_len] = 0;
		return;
	case HS_AFTERNAME:
		if (c == '=') {
			r->hs = HS_AVAL_START;
		} else if (c == '>') {
			tag_done(r);
		} else if (!is_ws(c)) {
			r->hs = HS_ATTRS;
			html_byte(r, c);
		}
		return;
	case HS_AVAL_START:
		if (is_ws(c))
			return;
		if (c == '>') {
			tag_done(r);
			return;
		}
		r->h_attr = is_uri_attr(r->h_tag, r->h_an);
		r->h_av_len = 0;
		r->h_quote = c == '"' || c == '\'' ? c : 0;
		r->hs = HS_AVAL;
		if (!r->h_quote)
			html_byte(r, c);
		return;
	case HS_AVAL:
		if (r->h_quote ? c == r->h_quote : is_ws(c) || c == '>') {
			value_done(r);
			r->hs = HS_ATTRS;
			if (c == '>')
				tag_done(r);
			return;
		}
		if (r->h_attr && r->h_av_len < sizeof(r->h_av))
			r->h_av[r->h_av_len++] = (char)c;
		return;
	case HS_BANG:
		if (c == '-' && r->h_dash < 2) {
			if (++r->h_dash == 2) {
				r->hs = HS_COMMENT;
				r->h_dash = 0;
				r->st.html_comments++;
				r->h_cm_bang = 1, r->h_cm_lt = 0; /* "<!--": a "<!" */
			}
			return;
		}
		r->hs = HS_DECL;
		/* "<!" not followed by "--" or a name: HTML::Parser's bogus
		 * comment, "<!" to ">" as the comment's text */
		r->h_cm_bogus = !r->h_dash && !is_alpha(c);
		r->h_cm_bang = 1;
		html_byte(r, c);
		return;
	case HS_COMMENT:
		/* html_text_match('comment', '<!.*?>'): a "<!" and a ">" after it
		 * on one line of the comment's text */
		if (c == '>' && r->h_cm_bang)
			r->st.comment_match = 1;
		if (c == '\n')
			r->h_cm_bang = 0;
		else if (c == '!' && r->h_cm_lt)
			r->h_cm_bang = 1;
		r->h_cm_lt = c == '<';
		if (c == '>' && r->h_dash >= 2)
			markup_end(r);
		else
			r->h_dash = c == '-' ? r->h_dash + 1 : 0;
		return;
	case HS_DECL:
		if (c == '>' && r->h_cm_bogus && r->h_cm_bang)
			r->st.comment_match = 1;
		if (c == '\n')
			r->h_cm_bang = 0;
		if (c == '>')
			markup_end(r);
		return;
	case HS_RAW: {
		/* inside <script>/<style>: nothing is text until "</name" */
		size_t nl = r->h_raw_len;
		unsigned char want = r->h_match == 0 ? '<' : r->h_match == 1 ? '/' :
				     (unsigned char)r->h_raw[r->h_match - 2];

		if ((is_alpha(c) ? c | 0x20 : c) == want) {
			if (++r->h_match == nl + 2) {
				r->h_end = 1;
				memcpy(r->h_tag, r->h_raw, nl + 1);
				r->h_tag_len = nl;
				r->hs = HS_TAGNAME;
			}
		} else {
			r->h_match = c == '<';
		}
		return;
	}
	}
}

/* bytes that end a run of plain HTML text: markup, entities, a possible
 * NBSP lead byte and whitespace (text_byte does more than copy them) */
static const unsigned char text_stop[256] = {
	['<'] = 1, ['&'] = 1, [0xc2] = 1, [' '] = 1, ['\t'] = 1, ['\n'] = 1,
	['\v'] = 1, ['\f'] = 1, ['\r'] = 1,
};

/* the bytes HS_COMMENT does more with than reset h_cm_lt and h_dash */
static const unsigned char comment_stop[256] = {
	['<'] = 1, ['!'] = 1, ['-'] = 1, ['>'] = 1, ['\n'] = 1,
};

/* text_run - text_byte over p[0..k), none of them a text_stop byte but
 * single spaces between two that are not: after the first, each is
 * copied out as it is (a space waits in h_sp and goes out before the next
 * byte), so while the body cut cannot be reached they go out in one
 * piece; returns the bytes consumed */
static size_t text_run(struct render *r, const char *p, size_t k)
{
	size_t m = 1;

	text_byte(r, (unsigned char)p[0]);
	if (k > 1 && !r->btr.done && r->btr.seen + (k - 1) <= r->btr.limit) {
		hout(r, p + 1, k - 1);
		return k;
	}
	for (; m < k && !r->btr.done; m++)
		text_byte(r, (unsigned char)p[m]);
	return m;
}

/* html_bytes - html_byte over p[0..n) until the body cut is made; runs of
 * plain text, of a skipped script or style and of a quoted attribute
 * value are taken at once */
static void html_bytes(struct render *r, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && !r->btr.done) {
		if (r->hs == HS_TEXT && !r->h_nbsp && !text_stop[(unsigned char)p[i]]) {
			size_t j = i + 1;

			for (;;) { /* a single space between two such bytes too */
				while (j < n && !text_stop[(unsigned char)p[j]])
					j++;
				if (j + 1 < n && p[j] == ' ' && !text_stop[(unsigned char)p[j + 1]]) {
					j += 2;
					continue;
				}
				break;
			}
			i += text_run(r, p + i, j - i);
			continue;
		}
		if (r->hs == HS_COMMENT && !comment_stop[(unsigned char)p[i]]) {
			/* bytes that are none of "<!->\n" only reset these two */
			while (i < n && !comment_stop[(unsigned char)p[i]])
				i++;
			r->h_cm_lt = 0;
			r->h_dash = 0;
			continue;
		}
		if (r->hs == HS_RAW && !r->h_match) { /* nothing matters before '<' */
			const char *q = memchr(p + i, '<', n - i);

			if (!q)
				return;
			i = (size_t)(q - p);
		} else if (r->hs == HS_AVAL && r->h_quote && p[i] != r->h_quote) {
			const char *q = memchr(p + i, r->h_quote, n - i);
			size_t j = q ? (size_t)(q - p) : n;

			if (r->h_attr) {
				size_t k = sizeof(r->h_av) - r->h_av_len;

				if (k > j - i)
					k = j - i;
				memcpy(r->h_av + r->h_av_len, p + i, k);
				r->h_av_len += k;
			}
			i = j;
			continue;
		}
		html_byte(r, (unsigned char)p[i++]);
	}
}

/* ------------------------------------------------------------ parts */

/* body_cut_out - rendered text within body_part_scan_size */
static void body_cut_out(struct render *r, const char *p, size_t n)
{
	body_put(r, p, n);
}

void render_init(struct render *r, unsigned want, render_unit_fn unit, void *ctx)
{
	/* the scalars only: buffers are written before they are read */
	memset(r, 0, offsetof(struct render, subject));
	r->subject_len = 0;
	r->subject_seen = r->subject_done = 0;
	r->any_text = 0;
	r->ws_run = r->ws_pre = r->ws_nl = r->ws_post = 0;
	r->line_len = 0;
	r->type = RT_SKIP;
	r->raw_len = 0;
	r->want = want;
	r->unit = unit;
	r->ctx = ctx;
}

void render_subject(struct render *r, const char *p, size_t n)
{
	if (r->subject_seen || r->subject_done)
		return;
	if (n > sizeof(r->subject) - r->subject_len)
		n = sizeof(r->subject) - r->subject_len;
	memcpy(r->subject + r->subject_len, p, n);
	r->subject_len += n;
}

void render_subject_end(struct render *r)
{
	r->subject_seen = 1;
}

void render_part_begin(struct render *r, enum render_type t)
{
	if (!(r->want & (1u << RU_BODY | 1u << RU_URI)))
		r->subject_done = 1;
	subject_flush(r);
	/* get_body_text_array_common: "\n" between parts, every leaf */
	if (r->any_text)
		body_put(r, "\n", 1);
	r->type = t;
	trunc_init(&r->btr, RENDER_BODY_SCAN, "\n ");
	trunc_init(&r->rtr, RENDER_RAW_SCAN, "\n> ");
	r->raw_len = 0;
	r->cr = 0;
	r->hs = HS_TEXT;
	r->h_sp = r->h_wselem = r->h_node = r->h_nbsp = 0;
	r->h_dbcs = r->h_8bit = r->h_u8bad = r->h_dblead = r->h_dbbad = 0;
	r->h_in_a = 0;
	r->h_u8need = 0;
	r->h_u8cont = r->h_dbtrail = 0;
	if (t == RT_PLAIN)
		r->st.parts_plain++;
	else if (t == RT_HTML && r->st.parts_html++ < RENDER_HTML_PARTS)
		r->st.html_nparts++;
}


void render_part_charset(struct render *r, int dbcs)
{
	r->h_dbcs = dbcs;
}

/* html_chars - count a text/html part's bytes, and what makes them
 * characters: a UTF-8 check (RFC 3629: no overlong forms, surrogates or
 * code points past U+10FFFF, as Encode's strict decode) and the two-byte
 * characters of a double-byte charset */
static void html_chars(struct render *r, const char *p, size_t n)
{
	r->st.html_part[r->st.html_nparts - 1].len += n;
	for (size_t i = 0; i < n; i++) {
		/* ASCII outside a double-byte charset and a UTF-8 sequence
		 * changes nothing: eight such bytes at a time */
		while (!r->h_dbcs && !r->h_u8need && i + 8 <= n) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i == n)
			break;
		unsigned char c = (unsigned char)p[i];

		if (!r->h_dbcs) {
			/* a single-byte or UTF-8 charset: no pairs to count */
		} else if (r->h_dblead) { /* a trail byte, or Encode's FB_CROAK fails */
			r->h_dblead = 0;
			r->h_dbtrail++;
			if (c < 0x40 || c == 0x7f || c == 0xff)
				r->h_dbbad = 1;
		} else if (c >= 0x81 && c <= 0xfe) {
			r->h_dblead = 1;
		} else if (c >= 0x80) {
			r->h_dbbad = 1;
		}
		if (c < 0x80 && !r->h_u8need)
			continue;
		r->h_8bit = 1;
		if (r->h_u8bad)
			continue;
		if (r->h_u8need) {
			if ((c & 0xc0) != 0x80) {
				r->h_u8bad = 1;
				continue;
			}
			r->h_u8cont++;
			r->h_u8cp = r->h_u8cp << 6 | (c & 0x3f);
			if (--r->h_u8need == 0 &&
			    (r->h_u8cp < r->h_u8min || r->h_u8cp > 0x10ffff ||
			     (r->h_u8cp >= 0xd800 && r->h_u8cp <= 0xdfff)))
				r->h_u8bad = 1;
		} else if ((c & 0xe0) == 0xc0) {
			r->h_u8need = 1, r->h_u8cp = c & 0x1f, r->h_u8min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			r->h_u8need = 2, r->h_u8cp = c & 0x0f, r->h_u8min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			r->h_u8need = 3, r->h_u8cp = c & 0x07, r->h_u8min = 0x10000;
		} else {
			r->h_u8bad = 1;
		}
	}
}

/* html_chars_end - the part's length in characters (Node::rendered:
 * all ASCII, bytes; valid UTF-8, its characters; else the declared
 * charset's: two-byte ones counted once, single-byte ones as bytes; a
 * two-byte text that does not decode (a lead byte without a trail byte
 * Big5, GBK or CP949 could take) stays bytes, as when Encode croaks) */
static void html_chars_end(struct render *r)
{
	uint64_t *len = &r->st.html_part[r->st.html_nparts - 1].len;

	if (!r->h_8bit)
		return;
	if (!r->h_u8bad && !r->h_u8need)
		*len -= r->h_u8cont;
	else if (r->h_dbcs && !r->h_dbbad && !r->h_dblead)
		*len -= r->h_dbtrail;
}

/* part_bytes - decoded bytes of a text part, CRLF already LF */
static void part_bytes(struct render *r, const char *p, size_t n)
{
	if (!n)
		return;
	if (r->want & 1u << RU_RAWBODY)
		trunc_feed(r, &r->rtr, p, n, raw_put, &r->st.raw_cut);
	if (!(r->want & (1u << RU_BODY | 1u << RU_URI)))
		return;
	if (r->type == RT_PLAIN) {
		r->st.plain_bytes += n;
		trunc_feed(r, &r->btr, p, n, body_cut_out, &r->st.body_cut);
	} else if (r->type == RT_HTML) {
		r->st.html_bytes += n;
		if (html_rec(r))
			html_chars(r, p, n);
		html_bytes(r, p, n);
	}
}

/* render_data - decoded bytes of the part; CRLF becomes LF as SpamAssassin
 * does for decoded text parts (a CR at a piece's end waits for the next) */
void render_data(struct render *r, const char *p, size_t n)
{
	if (r->type == RT_SKIP)
		return;
	while (n) {
		const char *q;
		size_t k;

		if (r->cr) {
			r->cr = 0;
			if (*p != '\n')
				part_bytes(r, "\r", 1);
		}
		q = memchr(p, '\r', n);
		k = q ? (size_t)(q - p) : n;
		part_bytes(r, p, k);
		if (!q)
			return;
		r->cr = 1;
		p += k + 1;
		n -= k + 1;
	}
}

void render_part_end(struct render *r)
{
	if (r->type == RT_SKIP)
		return;
	if (r->cr)
		part_bytes(r, "\r", 1);
	r->cr = 0;
	if (r->type == RT_HTML) {
		/* an unclosed entity or tag at the end: HTML::Parser keeps the
		 * text it can, the rest is dropped */
		if (r->hs == HS_ENT)
			entity_end(r, 0);
		node_end(r);
		if (r->h_sp)
			hout(r, " ", 1);
		r->h_sp = 0;
		if (html_rec(r))
			html_chars_end(r);
	}
	if (r->type == RT_PLAIN || r->type == RT_HTML)
		trunc_end(r, &r->btr, body_cut_out);
	trunc_end(r, &r->rtr, raw_put);
	if (r->raw_len) {
		r->st.rawbody_units++;
		emit(r, RU_RAWBODY, r->raw, r->raw_len);
	}
	r->raw_len = 0;
	r->type = RT_SKIP;
}

void render_finish(struct render *r)
{
	if (r->type != RT_SKIP)
		render_part_end(r);
	if (!(r->want & (1u << RU_BODY | 1u << RU_URI)))
		return;
	subject_flush(r);
	ws_flush(r);
	line_end(r);
}
