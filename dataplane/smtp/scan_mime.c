/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_mime.c - streaming MIME walker and transfer decoders.
 *
 * The content gate scans headers and decoded part bodies as the message
 * arrives, so the MIME structure is followed line by line with no message
 * buffer: a line is classified from its first MIME_LINE_MAX bytes (a header
 * start, a fold, a blank line, a boundary), the rest of a longer line passes
 * straight through.  base64 and quoted-printable bodies are decoded on the
 * fly into a small output buffer handed to the sink.  Everything the sender
 * controls is bounded: nesting (max_depth), leaf parts (max_parts), boundary
 * length (MIME_BOUNDARY_MAX); past a limit the content is still scanned as
 * raw bytes, just not decoded or followed further.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "scan_mime.h"

enum mime_state {
	ST_HEADERS = 0, /* reading an entity's header section */
	ST_LEAF,        /* body of a leaf part */
	ST_PREAMBLE,    /* multipart before its first boundary */
	ST_EPILOGUE,    /* after a close delimiter */
};

enum line_mode { LM_IGNORE = 0, LM_HDR, LM_BODY };

/* mode of the line being passed through (long lines); kept in state bits */
#define LM_SHIFT 8

/* base64 alphabet value + 1; 0: not in the alphabet */
static const unsigned char b64_tab[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* hexval - value of a hex digit, -1 if not one */
static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* out_flush - hand the decode buffer to the sink */
static void out_flush(struct mime_walker *w)
{
	if (w->out_len && w->sink->body_data)
		w->sink->body_data(w->ctx, w->out, w->out_len);
	w->out_len = 0;
}

/* out_put - append bytes to the decode buffer, flushing when full */
static void out_put(struct mime_walker *w, const char *p, size_t n)
{
	while (n) {
		size_t room = MIME_OUT_MAX - w->out_len;
		size_t k = n < room ? n : room;

		memcpy(w->out + w->out_len, p, k);
		w->out_len += k;
		p += k;
		n -= k;
		if (w->out_len == MIME_OUT_MAX)
			out_flush(w);
	}
}

/* out_byte - append one byte */
static inline void out_byte(struct mime_walker *w, char c)
{
	if (w->out_len == MIME_OUT_MAX)
		out_flush(w);
	w->out[w->out_len++] = c;
}

/* mime_init - start a message in the top-level header section */
void mime_init(struct mime_walker *w, const struct mime_limits *lim,
	       const struct mime_sink *sink, void *ctx)
{
	/* only the scalars: the buffers need no zeroing (a message is opened
	 * per DATA, and small messages should not pay for 10 KB of memset) */
	memset(w, 0, offsetof(struct mime_walker, ctype));
	w->ctype_len = 0;
	w->cte_len = 0;
	w->cd_len = 0;
	w->cid_len = w->cloc_len = 0;
	w->leaf_count = w->leaf_qp = w->ll_spam = w->body_cr = 0;
	w->line_end = w->body_from = NULL;
	w->ll = 0;
	w->line_len = 0;
	w->long_line = 0;
	w->depth = 0;
	w->b64_acc = 0;
	w->b64_n = 0;
	w->out_len = 0;
	w->sink = sink;
	w->ctx = ctx;
	w->lim.max_depth = lim && lim->max_depth ? lim->max_depth : MIME_DEFAULT_DEPTH;
	if (w->lim.max_depth > MIME_DEPTH_HARD)
		w->lim.max_depth = MIME_DEPTH_HARD;
	w->lim.max_parts = lim && lim->max_parts ? lim->max_parts : MIME_DEFAULT_PARTS;
	w->state = ST_HEADERS;
	w->top = 1;
}

/* skip_ws - advance over blanks (and folding leftovers) */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i;
}

int mime_mh_index(const char *name)
{
	static const char *const nm[MH_N] = { "Content-Type", "Content-Transfer-Encoding",
					      "Content-Disposition", "Content-ID",
					      "Content-Location" };

	for (int i = 0; i < MH_N; i++)
		if (strcasecmp(name, nm[i]) == 0)
			return i;
	return -1;
}

const char *mime_entity_header(const struct mime_walker *w, enum mime_mh mh, size_t *len)
{
	const char *const v[MH_N] = { w->ctype, w->cte, w->cd, w->cid, w->cloc };
	const size_t l[MH_N] = { w->ctype_len, w->cte_len, w->cd_len, w->cid_len, w->cloc_len };

	if ((unsigned)mh >= MH_N || !(w->ent_hdrs & 1u << mh))
		return NULL;
	*len = l[mh];
	while (*len && isspace((unsigned char)v[mh][*len - 1]))
		--*len;
	return v[mh];
}

/* mime_parse_boundary - the boundary parameter of a multipart Content-Type */
int mime_parse_boundary(const char *ct, size_t n, char *out)
{
	size_t i = skip_ws(ct, 0, n);

	if (n - i < 10 || strncasecmp(ct + i, "multipart/", 10) != 0)
		return 0;
	/* walk parameters: ; name = value|"quoted" */
	while (i < n) {
		while (i < n && ct[i] != ';' && ct[i] != '"')
			i++;
		if (i < n && ct[i] == '"') { /* quoted junk outside a param */
			for (i++; i < n && ct[i] != '"'; i++)
				if (ct[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (i >= n)
			break;
		i = skip_ws(ct, i + 1, n);
		size_t ns = i;
		while (i < n && ct[i] != '=' && ct[i] != ';' && ct[i] != ' ' && ct[i] != '\t')
			i++;
		size_t nl = i - ns;
		i = skip_ws(ct, i, n);
		if (i >= n || ct[i] != '=')
			continue;
		i = skip_ws(ct, i + 1, n);
		if (!(nl == 8 && strncasecmp(ct + ns, "boundary", 8) == 0))
			continue;
		size_t len = 0;
		if (i < n && ct[i] == '"') {
			for (i++; i < n && ct[i] != '"'; i++) {
				if (ct[i] == '\\' && i + 1 < n)
					i++;
				if (len == MIME_BOUNDARY_MAX)
					return -1;
				out[len++] = ct[i];
			}
		} else {
			for (; i < n && ct[i] != ';' && ct[i] != ' ' && ct[i] != '\t' &&
			       ct[i] != '\r' && ct[i] != '\n'; i++) {
				if (len == MIME_BOUNDARY_MAX)
					return -1;
				out[len++] = ct[i];
			}
		}
		/* trailing blanks are not part of a boundary (RFC 2046 bchars) */
		while (len && out[len - 1] == ' ')
			len--;
		return len ? (int)len : -1;
	}
	return 0;
}

/* header_close - end of the open header: tell the sink */
static void header_close(struct mime_walker *w)
{
	if (w->in_header && w->top && w->sink->header_end)
		w->sink->header_end(w->ctx);
	w->in_header = 0;
	w->cur_hdr = 0;
}

/* part_close - end of the open leaf part */
static void part_close(struct mime_walker *w, int keep_eol)
{
	if (!w->part_open)
		return;
	if (keep_eol && w->pending_eol && w->enc != ENC_BASE64)
		out_byte(w, '\n');
	out_flush(w);
	if (w->sink->part_end)
		w->sink->part_end(w->ctx);
	w->part_open = 0;
	w->pending_eol = 0;
}

/* is_text - a part whose body is text for the body scope: text/...,
 * message/..., a multipart read as text (nesting cap), or no Content-Type
 * (RFC 2045 default text/plain).  Attachments (application/..., image/...)
 * stay in the raw scope only, like SpamAssassin's body rules. */
static int is_text(const char *ct, size_t n)
{
	size_t i = skip_ws(ct, 0, n);

	return i == n || (n - i >= 5 && strncasecmp(ct + i, "text/", 5) == 0) ||
	       (n - i >= 8 && strncasecmp(ct + i, "message/", 8) == 0) ||
	       (n - i >= 10 && strncasecmp(ct + i, "multipart/", 10) == 0);
}

/* part_type - enum mime_ptype of a decoded part's Content-Type */
static int part_type(const char *ct, size_t n)
{
	size_t i = skip_ws(ct, 0, n), k;

	if (i == n)
		return MPT_PLAIN;
	for (k = i; k < n && ct[k] != ';' && ct[k] != ' ' && ct[k] != '\t' &&
		    ct[k] != '\r' && ct[k] != '\n'; k++)
		;
	if (k - i == 10 && strncasecmp(ct + i, "text/plain", 10) == 0)
		return MPT_PLAIN;
	if (k - i == 9 && strncasecmp(ct + i, "text/html", 9) == 0)
		return MPT_HTML;
	if (k - i == 13 && strncasecmp(ct + i, "text/calendar", 13) == 0)
		return MPT_CALENDAR;
	return MPT_TEXT;
}

/* sa_ctype - SpamAssassin's parse_content_type type of a Content-Type
 * value, lower case, into t (bounded): text/plain when absent, and for
 * text types other than x-vcard, calendar and html */
static void sa_ctype(const char *ct, size_t n, char *t, size_t cap)
{
	size_t i = skip_ws(ct, 0, n), k = 0;

	for (; i < n && ct[i] != ';' && !isspace((unsigned char)ct[i]) && k < cap - 1; i++)
		t[k++] = (char)tolower((unsigned char)ct[i]);
	t[k] = 0;
	if (!k || (strncmp(t, "text", 4) == 0 && !isalnum((unsigned char)t[4]) && t[4] != '_' &&
		   strcmp(t, "text/x-vcard") && strcmp(t, "text/calendar") &&
		   strcmp(t, "text/html")))
		snprintf(t, cap, "text/plain");
}

/* sa_charset - the charset parameter as parse_content_type reads it
 * (/\bcharset\s*=\s*["']?(.*?)["']?(?:;|$)/i), lower case; 0 if none */
static int sa_charset(const char *ct, size_t n, char *cs, size_t cap)
{
	for (size_t i = 0; i + 7 <= n; i++) {
		size_t j, k = 0, e;

		if (strncasecmp(ct + i, "charset", 7) ||
		    (i && (isalnum((unsigned char)ct[i - 1]) || ct[i - 1] == '_')))
			continue;
		j = i + 7;
		while (j < n && isspace((unsigned char)ct[j]))
			j++;
		if (j == n || ct[j] != '=')
			continue;
		j++;
		while (j < n && isspace((unsigned char)ct[j]))
			j++;
		if (j < n && (ct[j] == '"' || ct[j] == '\''))
			j++;
		for (e = j; e < n && ct[e] != ';'; e++)
			;
		if (e > j && (ct[e - 1] == '"' || ct[e - 1] == '\''))
			e--;
		for (; j < e && k < cap - 1; j++)
			cs[k++] = (char)tolower((unsigned char)ct[j]);
		cs[k] = 0;
		return 1;
	}
	cs[0] = 0;
	return 0;
}

/* dbcs_charset - the charset of Content-Type ct is one where a byte
 * 0x81-0xFE starts a two-byte character (what Encode decodes a text/html
 * part of it into: HTML.pm's length counts those characters) */
static int dbcs_charset(const char *ct, size_t n)
{
	static const char *const dbcs[] = { "big5", "big5-hkscs", "gbk", "gb2312", "euc-cn",
					     "cp936", "euc-kr", "cp949", "cp950", "ks_c_5601-1987" };
	char cs[64];

	if (!sa_charset(ct, n, cs, sizeof(cs)))
		return 0;
	for (size_t i = 0; i < sizeof(dbcs) / sizeof(dbcs[0]); i++)
		if (strcmp(cs, dbcs[i]) == 0)
			return 1;
	return 0;
}

/* entity_stats - MIMEEval's _check_mime_header for one entity, and the
 * leaf counters (_check_attachments) when it is a leaf */
static void entity_stats(struct mime_walker *w, int leaf)
{
	static const char *const ascii[] = { "us", "ascii", "ansi_x3.4-1968", "iso-ir-6",
					     "ansi_x3.4-1986", "iso_646.irv:1991", "ibm367",
					     "cp367" };
	char t[64], cs[64], cte[64], cd[sizeof(w->cd) + 1];
	size_t k;
	int attach, b64;

	sa_ctype(w->ctype, w->ctype_len, t, sizeof(t));
	for (k = 0; k < w->cte_len && k < sizeof(cte) - 1; k++)
		cte[k] = (char)tolower((unsigned char)w->cte[k]);
	while (k && isspace((unsigned char)cte[k - 1]))
		k--;
	cte[k] = 0;
	for (k = 0; k < w->cd_len; k++)
		cd[k] = (char)tolower((unsigned char)w->cd[k]);
	cd[k] = 0;
	attach = strstr(cd, "attachment") != NULL;
	w->st.attach_count += attach;
	b64 = strstr(cte, "base64") != NULL;
	w->st.b64_count += b64;
	w->st.qp_entities += !b64 && strstr(cte, "quoted-printable");
	if (strcmp(t, "multipart/alternative") == 0)
		w->st.alt = 1;
	if (strcmp(t, "text/html") == 0)
		w->st.html_count++;
	else if (strncmp(t, "text", 4) == 0)
		w->st.text_count++;
	if (strncmp(t, "text", 4) == 0 && b64 &&
	    strncmp(cd, "attachment", 10) && strncmp(cd, "inline", 6)) {
		int ok = !sa_charset(w->ctype, w->ctype_len, cs, sizeof(cs)) || !cs[0];

		for (size_t i = 0; i < sizeof(ascii) / sizeof(ascii[0]) && !ok; i++)
			ok = strstr(cs, ascii[i]) != NULL;
		if (ok)
			w->st.b64_text = 1;
	}
	if (!leaf)
		return;
	w->leaf_qp = strcmp(cte, "quoted-printable") == 0;
	w->leaf_count = 0;
	w->ll = 0;
	if (attach)
		return;
	if (strcmp(t, "text/plain") == 0) {
		w->st.last_text_set = 1;
		w->st.last_text_bytes = 0;
		w->leaf_count = w->st.alt ? 1 : 0;
	} else if (strcmp(t, "text/html") == 0) {
		w->st.last_html_set = 1;
		w->st.last_html_bytes = 0;
		w->leaf_count = w->st.alt ? 2 : 0;
	}
}

static int hexu(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* qp_count - MIMEEval's count of QP-encoded characters in a piece of a
 * line, m/=(?:09|3[0-9ABCEF]|[2456][0-9A-F]|7[0-9A-E])/g, less the
 * trailing =09/=20 run of the line (allowed blanks) */
static void qp_count(struct mime_walker *w, const char *p, size_t n, int ends)
{
	uint64_t c = 0;
	size_t e = n;

	if (!memchr(p, '=', n))
		return;
	for (size_t i = 0; i + 2 < n; i++) {
		char a = p[i + 1], b = p[i + 2];

		if (p[i] != '=' || !hexu(b))
			continue;
		if ((a == '0' && b == '9') || (a == '3' && b != 'D') ||
		    (a >= '2' && a <= '6' && a != '3') || (a == '7' && b != 'F'))
			c++;
	}
	if (c && ends) {
		while (e && isspace((unsigned char)p[e - 1]))
			e--;
		while (e >= 3 && p[e - 3] == '=' && ((p[e - 2] == '0' && p[e - 1] == '9') ||
						     (p[e - 2] == '2' && p[e - 1] == '0')) && c) {
			c--;
			e -= 3;
		}
	}
	w->st.qp_chars += c;
}

/* leaf_line - raw bytes of a leaf's body line (CRLF counts as LF, as in
 * SpamAssassin's parser): MIMEEval's per-line counters */
static void leaf_line(struct mime_walker *w, const char *p, size_t n, int ends)
{
	if (w->leaf_qp)
		qp_count(w, p, n, ends);
	if (!w->ll)
		w->ll_spam = n >= 6 && memcmp(p, "SPAM: ", 6) == 0;
	w->ll += n;
	if (!ends)
		return;
	if (n >= 2 && p[n - 2] == '\r' && p[n - 1] == '\n')
		w->ll--;
	if (w->leaf_qp && w->ll > 79 && !w->ll_spam)
		w->st.qp_long_line = 1;
	if (w->leaf_qp && !w->ll_spam)
		w->st.qp_bytes += w->ll;
	if (w->leaf_count == 1)
		w->st.last_text_bytes += w->ll;
	else if (w->leaf_count == 2)
		w->st.last_html_bytes += w->ll;
	w->ll = 0;
}

/* headers_end - the entity's header section is over: multipart or leaf? */
static void headers_end(struct mime_walker *w)
{
	char b[MIME_BOUNDARY_MAX];
	int bl;

	header_close(w);
	if (w->top)
		w->body_from = w->line_end;
	if (w->top && w->sink->headers_done)
		w->sink->headers_done(w->ctx);
	w->top = 0;
	bl = mime_parse_boundary(w->ctype, w->ctype_len, b);
	if (bl < 0)
		w->st.bad_boundary++;
	entity_stats(w, !(bl > 0 && w->depth < w->lim.max_depth));
	if (w->sink->entity_headers)
		w->sink->entity_headers(w->ctx);
	if (bl > 0 && w->depth < w->lim.max_depth) {
		struct mime_level *l = &w->lv[w->depth++];

		memcpy(l->boundary, b, (size_t)bl);
		l->blen = (uint8_t)bl;
		if (w->depth > w->st.max_depth)
			w->st.max_depth = w->depth;
		w->state = ST_PREAMBLE;
	} else {
		if (bl > 0)
			w->st.depth_capped++;
		w->state = ST_LEAF;
		w->enc = ENC_IDENTITY;
		if (w->cte_len >= 6 && strncasecmp(w->cte, "base64", 6) == 0)
			w->enc = ENC_BASE64;
		else if (w->cte_len >= 16 &&
			 strncasecmp(w->cte, "quoted-printable", 16) == 0)
			w->enc = ENC_QP;
		w->st.parts++;
		w->decode = w->st.parts <= w->lim.max_parts;
		if (!w->decode)
			w->st.parts_capped++;
		else if (!is_text(w->ctype, w->ctype_len)) {
			w->st.parts_binary++;
			w->decode = 0;
		}
		w->b64_acc = 0;
		w->b64_n = 0;
		w->pending_eol = 0;
		if (w->decode) {
			w->part_open = 1;
			w->leaf_dbcs = dbcs_charset(w->ctype, w->ctype_len);
			if (w->sink->part_begin)
				w->sink->part_begin(w->ctx, part_type(w->ctype, w->ctype_len));
		} else if (w->sink->part_skip) {
			w->sink->part_skip(w->ctx);
		}
	}
	w->ctype_len = 0;
	w->cte_len = 0;
	w->cd_len = 0;
	w->cid_len = w->cloc_len = 0;
	w->ent_hdrs = 0;
}

/* capture - append header value bytes to the captured header, bounded */
static void capture(struct mime_walker *w, const char *p, size_t n)
{
	char *dst;
	size_t *len, cap;

	if (w->cur_hdr == 1) {
		dst = w->ctype, len = &w->ctype_len, cap = sizeof(w->ctype);
	} else if (w->cur_hdr == 3) {
		dst = w->cd, len = &w->cd_len, cap = sizeof(w->cd);
	} else if (w->cur_hdr == 4) {
		dst = w->cid, len = &w->cid_len, cap = sizeof(w->cid);
	} else if (w->cur_hdr == 5) {
		dst = w->cloc, len = &w->cloc_len, cap = sizeof(w->cloc);
	} else {
		dst = w->cte, len = &w->cte_len, cap = sizeof(w->cte);
	}
	if (n > cap - *len)
		n = cap - *len;
	memcpy(dst + *len, p, n);
	*len += n;
}

/* hdr_data - a piece of header value (no line end) */
static void hdr_data(struct mime_walker *w, const char *p, size_t n)
{
	if (!w->in_header)
		return;
	if (w->hdr_skipws) {
		while (n && (*p == ' ' || *p == '\t'))
			p++, n--;
		if (!n)
			return;
		w->hdr_skipws = 0;
	}
	if (w->cur_hdr)
		capture(w, p, n);
	if (w->top && w->sink->header_data)
		w->sink->header_data(w->ctx, p, n);
}

/* qp_decode - decode a quoted-printable line piece into the output */
static void qp_decode(struct mime_walker *w, const char *p, size_t n)
{
	/* b64_n doubles as the QP escape state: 0 none, 1 '=', 2 '=' + digit */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (w->b64_n == 0) {
			if (c == '=') {
				w->b64_n = 1;
				continue;
			}
			/* copy the run of plain bytes up to the next '=' at once */
			const char *eq = memchr(p + i, '=', n - i);
			size_t j = eq ? (size_t)(eq - p) : n;

			out_put(w, p + i, j - i);
			i = j - 1;
			continue;
		}
		int v = hexval(c);
		if (w->b64_n == 1) {
			if (v < 0) { /* not an escape: keep it literally */
				out_byte(w, '=');
				w->b64_n = 0;
				i--;
				continue;
			}
			w->b64_acc = (uint32_t)v;
			w->b64_n = 2;
			continue;
		}
		if (v < 0) {
			out_byte(w, '=');
			out_byte(w, "0123456789ABCDEF"[w->b64_acc & 15]);
			w->b64_n = 0;
			i--;
			continue;
		}
		out_byte(w, (char)(w->b64_acc << 4 | (uint32_t)v));
		w->b64_n = 0;
	}
}

/* b64_bulk - decode whole quanta of four alphabet characters straight
 * into the output buffer; stops at the first byte outside the alphabet
 * (line end, padding) or when the buffer is full.  Returns bytes read. */
static size_t b64_bulk(struct mime_walker *w, const unsigned char *p, size_t n)
{
	size_t i = 0;
	char *o = w->out + w->out_len, *end = w->out + MIME_OUT_MAX - 3;

	while (i + 4 <= n && o <= end) {
		unsigned a = b64_tab[p[i]], b = b64_tab[p[i + 1]], c = b64_tab[p[i + 2]],
			 d = b64_tab[p[i + 3]];

		if (!a || !b || !c || !d)
			break;
		uint32_t v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6 | (d - 1);
		o[0] = (char)(v >> 16);
		o[1] = (char)(v >> 8);
		o[2] = (char)v;
		o += 3;
		i += 4;
	}
	w->out_len = (size_t)(o - w->out);
	return i;
}

/* b64_decode - decode base64 characters, ignoring everything else */
static void b64_decode(struct mime_walker *w, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (w->b64_n == 0) { /* on a quantum boundary: the fast path */
			if (w->out_len > MIME_OUT_MAX - 3)
				out_flush(w);
			i += b64_bulk(w, (const unsigned char *)p + i, n - i);
			if (i >= n)
				break;
		}
		int v = b64_tab[(unsigned char)p[i]] - 1;

		if (v < 0) {
			if (p[i] == '=') { /* padding: the quantum ends early */
				if (w->b64_n == 2)
					out_byte(w, (char)(w->b64_acc >> 4));
				else if (w->b64_n == 3)
					out_put(w, (char[]){ (char)(w->b64_acc >> 10),
							     (char)(w->b64_acc >> 2) }, 2);
				w->b64_n = 0;
				w->b64_acc = 0;
			}
			continue;
		}
		w->b64_acc = w->b64_acc << 6 | (uint32_t)v;
		if (++w->b64_n == 4) {
			char t[3] = { (char)(w->b64_acc >> 16), (char)(w->b64_acc >> 8),
				      (char)w->b64_acc };
			out_put(w, t, 3);
			w->b64_n = 0;
			w->b64_acc = 0;
		}
	}
}

/* body_data - a piece of a leaf body line; ends: it closes the line */
static void body_data(struct mime_walker *w, const char *p, size_t n, int ends)
{
	leaf_line(w, p, n, ends);
	if (!w->part_open)
		return;
	if (ends) { /* strip the line end */
		if (n && p[n - 1] == '\n')
			n--;
		if (n && p[n - 1] == '\r')
			n--;
	}
	switch (w->enc) {
	case ENC_BASE64:
		b64_decode(w, p, n);
		return;
	case ENC_QP:
		if (w->pending_eol)
			out_byte(w, '\n');
		w->pending_eol = 0;
		/* RFC 2045 6.7 (3): trailing blanks of an encoded line are
		 * transport padding, deleted when decoding (SpamAssassin too) */
		while (ends && n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		qp_decode(w, p, n);
		if (ends) {
			if (w->b64_n == 1) { /* soft line break */
				w->b64_n = 0;
				return;
			}
			if (w->b64_n == 2) {
				out_byte(w, '=');
				out_byte(w, "0123456789ABCDEF"[w->b64_acc & 15]);
			}
			w->b64_n = 0;
			w->pending_eol = 1;
		}
		return;
	case ENC_IDENTITY:
		if (w->pending_eol)
			out_byte(w, '\n');
		out_put(w, p, n);
		w->pending_eol = ends;
		return;
	}
}

/* line_piece - the rest of a line in the mode it was classified in */
static void line_piece(struct mime_walker *w, int mode, const char *p, size_t n,
		       int ends)
{
	if (mode == LM_BODY) {
		body_data(w, p, n, ends);
	} else if (mode == LM_HDR) {
		if (ends) {
			if (n && p[n - 1] == '\n')
				n--;
			if (n && p[n - 1] == '\r')
				n--;
		}
		hdr_data(w, p, n);
	}
}

/* boundary_match - level index the line delimits, -1 if none; *close set
 * for a close delimiter ("--b--") */
static int boundary_match(struct mime_walker *w, const char *s, size_t n, int *close)
{
	for (int i = (int)w->depth - 1; i >= 0; i--) {
		const struct mime_level *l = &w->lv[i];
		size_t k;

		if (n < 2 + (size_t)l->blen || memcmp(s + 2, l->boundary, l->blen) != 0)
			continue;
		k = 2 + l->blen;
		*close = 0;
		if (n - k >= 2 && s[k] == '-' && s[k + 1] == '-') {
			*close = 1;
			k += 2;
		}
		while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
			k++;
		if (k == n)
			return i;
	}
	return -1;
}

/* header_start - classify a header-section line; returns the line mode or
 * -1 when the line is not a header (the section ended) */
static int header_start(struct mime_walker *w, const char *s, size_t n, size_t *vstart)
{
	size_t i = 0;

	while (i < n && s[i] != ':' && (unsigned char)s[i] > 32 && (unsigned char)s[i] < 127)
		i++;
	if (i == 0 || i >= n || s[i] != ':')
		return -1;
	header_close(w);
	w->in_header = 1;
	w->hdr_skipws = 1;
	w->cur_hdr = 0;
	if (i == 12 && strncasecmp(s, "Content-Type", 12) == 0)
		w->cur_hdr = 1;
	else if (i == 25 && strncasecmp(s, "Content-Transfer-Encoding", 25) == 0)
		w->cur_hdr = 2;
	else if (i == 19 && strncasecmp(s, "Content-Disposition", 19) == 0)
		w->cur_hdr = 3;
	else if (i == 10 && strncasecmp(s, "Content-ID", 10) == 0)
		w->cur_hdr = 4, w->cid_len = 0;
	else if (i == 16 && strncasecmp(s, "Content-Location", 16) == 0)
		w->cur_hdr = 5, w->cloc_len = 0;
	if (w->cur_hdr)
		w->ent_hdrs |= 1u << (w->cur_hdr - 1);
	if (w->top && w->sink->header_begin) {
		char name[MIME_NAME_MAX];
		size_t k = i < MIME_NAME_MAX - 1 ? i : MIME_NAME_MAX - 1;

		memcpy(name, s, k);
		name[k] = 0;
		w->sink->header_begin(w->ctx, name);
	}
	*vstart = i + 1;
	return LM_HDR;
}

/* process_line - classify a line from its first n bytes (complete: they end
 * with LF) and handle them; returns the mode for the rest of the line */
static int process_line(struct mime_walker *w, const char *s, size_t n, int complete)
{
	if (w->state == ST_HEADERS) {
		size_t v = 0;
		int m;

		if (complete && (n == 1 || (n == 2 && s[0] == '\r'))) {
			headers_end(w);
			return LM_IGNORE;
		}
		if (s[0] == ' ' || s[0] == '\t') { /* folded: unfold by dropping the CRLF */
			line_piece(w, LM_HDR, s, n, complete);
			return LM_HDR;
		}
		m = header_start(w, s, n, &v);
		if (m < 0) { /* not a header: the body starts on this line */
			headers_end(w);
			return process_line(w, s, n, complete);
		}
		line_piece(w, m, s + v, n - v, complete);
		return m;
	}
	if (w->depth && n >= 2 && s[0] == '-' && s[1] == '-') {
		int close = 0, lvl = complete ? boundary_match(w, s, n, &close) : -1;

		if (lvl >= 0) {
			/* the line end before a delimiter belongs to it (RFC
			 * 2046), but SpamAssassin keeps it in the part */
			part_close(w, 1);
			if (close) {
				w->depth = (unsigned)lvl;
				w->state = ST_EPILOGUE;
			} else {
				w->depth = (unsigned)lvl + 1;
				w->state = ST_HEADERS;
				w->ctype_len = 0;
				w->cte_len = 0;
				w->cd_len = 0;
				w->cid_len = w->cloc_len = 0;
				w->ent_hdrs = 0;
			}
			return LM_IGNORE;
		}
	}
	if (w->state == ST_LEAF) {
		body_data(w, s, n, complete);
		return LM_BODY;
	}
	return LM_IGNORE;
}

/* skipping - nothing of the current content is reported: only a boundary
 * line can change that */
static inline int skipping(const struct mime_walker *w)
{
	return w->state == ST_PREAMBLE || w->state == ST_EPILOGUE ||
	       (w->state == ST_LEAF && !w->part_open);
}

/* body_count - pristine_body_length, bounded: CRLF counts as LF (the wire
 * has CRLF; SpamAssassin is usually handed LF) */
static void body_count(struct mime_walker *w, const char *p, size_t n)
{
	/* a byte adds one, an LF after a CR none: the next MAX - len bytes
	 * are all counted, their CRLFs found a line at a time */
	while (n && w->st.body_len < MIME_BODY_LEN_MAX) {
		size_t m = MIME_BODY_LEN_MAX - w->st.body_len < n ?
				   (size_t)(MIME_BODY_LEN_MAX - w->st.body_len) : n;
		size_t crlf = 0;
		const char *e = p + m;

		for (const char *q = p; (q = memchr(q, '\n', (size_t)(e - q))); q++)
			crlf += q > p ? q[-1] == '\r' : w->body_cr;
		w->st.body_len += m - crlf;
		w->body_cr = p[m - 1] == '\r';
		p += m;
		n -= m;
	}
}

/* mime_feed - split pieces into lines (bounded) and classify each */
void mime_feed(struct mime_walker *w, const char *p, size_t len)
{
	const char *end = p + len;

	if (!w->top)
		body_count(w, p, len);
	w->body_from = NULL;
	while (len > 0) {
		if (w->line_len == 0 && !w->long_line && skipping(w)) {
			/* attachments, preambles: jump from line start to the
			 * next line that starts with '-', without visiting each */
			const char *q = NULL, *s = p, *e = p + len;

			if (!w->depth)
				break; /* no boundary can come: nothing to do */
			if (p[0] != '-') {
				/* jump to the first "\n-": search for '-', which
				 * base64 never contains, instead of visiting every
				 * line end; else to just after the last '\n' */
				while ((s = memchr(s, '-', (size_t)(e - s))) && s[-1] != '\n')
					s++;
				if (s) {
					q = s - 1;
				} else {
					for (s = e; s > p && s[-1] != '\n'; s--)
						;
					q = s > p ? s - 1 : NULL;
				}
				if (q) {
					len -= (size_t)(q + 1 - p);
					p = q + 1;
					continue;
				}
			}
		}
		if (w->long_line) {
			const char *nl = memchr(p, '\n', len);
			size_t n = nl ? (size_t)(nl - p) + 1 : len;

			line_piece(w, w->long_line >> LM_SHIFT, p, n, nl != NULL);
			if (nl)
				w->long_line = 0;
			p += n;
			len -= n;
			continue;
		}
		if (w->line_len == 0) {
			const char *nl = memchr(p, '\n', len);

			if (nl) {
				size_t n = (size_t)(nl - p) + 1;

				w->line_end = p + n;
				process_line(w, p, n, 1);
				p += n;
				len -= n;
				continue;
			}
			if (len < MIME_LINE_MAX) {
				memcpy(w->line, p, len);
				w->line_len = len;
				break;
			}
			w->long_line = 1 | process_line(w, p, MIME_LINE_MAX, 0) << LM_SHIFT;
			p += MIME_LINE_MAX;
			len -= MIME_LINE_MAX;
			continue;
		}
		const char *nl = memchr(p, '\n', len);
		size_t want = nl ? (size_t)(nl - p) + 1 : len;
		size_t room = MIME_LINE_MAX - w->line_len;

		if (want <= room) {
			memcpy(w->line + w->line_len, p, want);
			w->line_len += want;
			p += want;
			len -= want;
			if (nl) {
				size_t n = w->line_len;

				w->line_len = 0;
				w->line_end = p;
				process_line(w, w->line, n, 1);
			}
			continue;
		}
		memcpy(w->line + w->line_len, p, room);
		p += room;
		len -= room;
		w->line_len = 0;
		w->long_line = 1 | process_line(w, w->line, MIME_LINE_MAX, 0) << LM_SHIFT;
	}
	if (w->body_from) /* the header section ended in this piece */
		body_count(w, w->body_from, (size_t)(end - w->body_from));
	w->body_from = NULL;
	/* decoded bytes wait in the buffer (bounded, MIME_OUT_MAX) until it
	 * fills or the part ends: the engine feeds line by line, and one
	 * Hyperscan call per 8 KiB costs far less than one per line */
}

/* mime_finish - the last partial line, then close what is open */
void mime_finish(struct mime_walker *w)
{
	if (w->line_len) { /* last line without a line end */
		size_t n = w->line_len;

		w->line_len = 0;
		process_line(w, w->line, n, 0);
	}
	w->long_line = 0;
	if (w->state == ST_HEADERS && w->top) {
		header_close(w);
		if (w->sink->headers_done)
			w->sink->headers_done(w->ctx);
		w->top = 0;
	}
	/* a part the message ended in keeps its last line end */
	part_close(w, w->depth == 0);
	out_flush(w);
}
