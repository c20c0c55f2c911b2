/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_lits.c - the literals every match of a regular expression must
 * contain (scan_lits.h): a cheap Hyperscan superset for a body, rawbody or
 * uri rule whose own automaton costs more per byte than its confirmation.
 *
 * A recursive walk over the PCRE syntax SpamAssassin's rules use.  Each
 * node yields what it knows:
 *   exact - the finite set of strings the node matches (when small),
 *   req   - a set of strings one of which every match contains.
 * Concatenation builds exact runs by cross product (the trailing run is
 * kept apart so `\w+ing now` still yields "ing now"); alternation unions
 * the branches' sets; a repeat of at least one keeps its operand's set,
 * an optional one yields nothing.  Zero-width items (anchors, \b,
 * lookarounds) match "".  Anything not understood (inline options, \Q,
 * verbs, code points past \xff) makes the whole expression fail: no
 * superset is better than a wrong one.  A literal is cut to LIT_MAX bytes:
 * a prefix of a required string is required too.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan_lits.h"

#define LIT_MAX 24 /* bytes kept of a literal */
#define SET_MAX 48 /* strings in a set */

struct lit {
	unsigned char len;
	char b[LIT_MAX];
};

struct lset {
	int ok; /* 0: unknown (any string) */
	int n;
	struct lit v[SET_MAX];
};

struct info {
	struct lset exact, req;
};

struct parser {
	const char *p;
	const char *const *avoid; /* NULL-terminated: see scan_lits_avoid */
	int fold; /* caseless: literals in lower case */
	int fail;
	int depth;
};

static void set_empty(struct lset *s) /* {""} */
{
	s->ok = 1;
	s->n = 1;
	s->v[0].len = 0;
}

static void set_char(struct lset *s, int fold, unsigned char c)
{
	s->ok = 1;
	s->n = 1;
	s->v[0].len = 1;
	s->v[0].b[0] = (char)(fold ? tolower(c) : c);
}

/* set_add - add l unless present; 0, or -1 when the set is full */
static int set_add(struct lset *s, const struct lit *l)
{
	for (int i = 0; i < s->n; i++)
		if (s->v[i].len == l->len && memcmp(s->v[i].b, l->b, l->len) == 0)
			return 0;
	if (s->n == SET_MAX)
		return -1;
	s->v[s->n++] = *l;
	return 0;
}

/* has_empty - "" is in s: as a requirement it requires nothing */
static int has_empty(const struct lset *s)
{
	for (int i = 0; i < s->n; i++)
		if (!s->v[i].len)
			return 1;
	return 0;
}

/* minlen - the shortest string of s (0 when unknown) */
static int minlen(const struct lset *s)
{
	int m = LIT_MAX + 1;

	if (!s->ok || !s->n)
		return 0;
	for (int i = 0; i < s->n; i++)
		m = s->v[i].len < m ? s->v[i].len : m;
	return m;
}

/* avoided - some string of s occurs (case-insensitively) in one of the
 * strings of avoid: text like those would hold it, so as a requirement it
 * selects nothing there */
static int avoided(const struct lset *s, const char *const *avoid)
{
	for (int i = 0; avoid && i < s->n; i++)
		for (int k = 0; avoid[k]; k++)
			for (size_t j = 0, n = strlen(avoid[k]); j + s->v[i].len <= n; j++)
				if (strncasecmp(avoid[k] + j, s->v[i].b, s->v[i].len) == 0)
					return 1;
	return 0;
}

/* better - is a a better requirement than b: not avoided, then longer
 * shortest string, then fewer strings */
static int better(const struct parser *ps, const struct lset *a, const struct lset *b)
{
	if (!a->ok || has_empty(a) || avoided(a, ps->avoid))
		return 0;
	if (!b->ok || has_empty(b) || avoided(b, ps->avoid))
		return 1;
	return minlen(a) > minlen(b) || (minlen(a) == minlen(b) && a->n < b->n);
}

/* take - *dst = the better of itself and s */
static void take(const struct parser *ps, struct lset *dst, const struct lset *s)
{
	if (better(ps, s, dst))
		*dst = *s;
}

/* cross - a·b into out; -1 when it does not fit (out unchanged) */
static int cross(struct lset *out, const struct lset *a, const struct lset *b)
{
	struct lset *r = malloc(sizeof(*r));

	if (!r)
		return -1;
	r->ok = 1;
	r->n = 0;
	for (int i = 0; i < a->n; i++)
		for (int j = 0; j < b->n; j++) {
			struct lit l;

			if (a->v[i].len + b->v[j].len > LIT_MAX || r->n == SET_MAX) {
				free(r);
				return -1;
			}
			l.len = (unsigned char)(a->v[i].len + b->v[j].len);
			memcpy(l.b, a->v[i].b, a->v[i].len);
			memcpy(l.b + a->v[i].len, b->v[j].b, b->v[j].len);
			if (set_add(r, &l) < 0) {
				free(r);
				return -1;
			}
		}
	*out = *r;
	free(r);
	return 0;
}

/* final_req - the best requirement a node gives */
static void final_req(const struct parser *ps, struct info *x)
{
	if (x->exact.ok)
		take(ps, &x->req, &x->exact);
	if (x->req.ok && has_empty(&x->req))
		x->req.ok = 0;
}

static void parse_alt(struct parser *ps, struct info *out);

/* hexval - a hex digit's value, -1 if none */
static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* escape_char - the byte of a character escape at ps->p (after '\'), -1
 * for a class escape (\d, \w...), -2 for zero width, -3 not understood */
static int escape_char(struct parser *ps)
{
	int c = (unsigned char)*ps->p++;

	switch (c) {
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'f': return '\f';
	case 'e': return 0x1b;
	case 'a': return 0x07;
	case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
	case 'h': case 'H': case 'v': case 'V': case 'N': case 'R': case 'X': case 'C':
		return -1;
	case 'b': case 'B': case 'A': case 'z': case 'Z': case 'G':
		return -2;
	case 'x': {
		int v = 0, k = 0;

		if (*ps->p == '{') {
			ps->p++;
			while (hexval((unsigned char)*ps->p) >= 0 && k < 3)
				v = v * 16 + hexval((unsigned char)*ps->p++), k++;
			if (*ps->p != '}' || v > 0xff || !k)
				return -3;
			ps->p++;
			return v;
		}
		while (k < 2 && hexval((unsigned char)*ps->p) >= 0)
			v = v * 16 + hexval((unsigned char)*ps->p++), k++;
		return v;
	}
	case '0': {
		int v = 0, k = 0;

		while (k < 2 && *ps->p >= '0' && *ps->p <= '7')
			v = v * 8 + (*ps->p++ - '0'), k++;
		return v;
	}
	case 0:
		ps->p--;
		return -3;
	default:
		if (isalnum(c))
			return -3; /* \1 backreferences, \p, \Q, \k, \g...: not understood */
		return c;
	}
}

/* parse_class - a bracket expression after '['; its members as single
 * characters when few, else unknown */
static void parse_class(struct parser *ps, struct info *x)
{
	unsigned char mem[256] = { 0 };
	int neg = 0, first = 1, prev = -1, big = 0, esc;

	if (*ps->p == '^')
		neg = 1, ps->p++;
	for (;;) {
		int c = (unsigned char)*ps->p;

		if (!c) {
			ps->fail = 1;
			return;
		}
		if (c == ']' && !first) {
			ps->p++;
			break;
		}
		first = 0;
		esc = 0;
		if (c == '[' && ps->p[1] == ':') { /* [:alpha:] */
			const char *e = strstr(ps->p + 2, ":]");

			if (!e) {
				ps->fail = 1;
				return;
			}
			ps->p = e + 2;
			big = 1;
			prev = -1;
			continue;
		}
		ps->p++;
		if (c == '\\') {
			esc = 1;
			c = escape_char(ps);
			if (c == -2)
				c = 0x08; /* [\b] is backspace */
			if (c == -3) {
				ps->fail = 1;
				return;
			}
			if (c == -1) {
				big = 1;
				prev = -1;
				continue;
			}
		}
		if (c == '-' && !esc && prev >= 0 && *ps->p != ']') { /* a range */
			int hi = (unsigned char)*ps->p++;

			if (hi == '\\') {
				hi = escape_char(ps);
				if (hi < 0) {
					ps->fail = 1;
					return;
				}
			}
			if (hi < prev) {
				ps->fail = 1;
				return;
			}
			for (int k = prev; k <= hi; k++)
				mem[k] = 1;
			prev = -1;
			continue;
		}
		mem[c] = 1;
		prev = c;
	}
	x->req.ok = 0;
	x->exact.ok = 0;
	if (neg || big)
		return;
	x->exact.ok = 1;
	x->exact.n = 0;
	for (int k = 0; k < 256; k++) {
		struct lit l = { 1, { 0 } };

		if (!mem[k] || (ps->fold && isupper(k) && mem[tolower(k)]))
			continue;
		l.b[0] = (char)(ps->fold ? tolower(k) : k);
		if (set_add(&x->exact, &l) < 0 || x->exact.n > 10) {
			x->exact.ok = 0;
			return;
		}
	}
}

/* parse_group - after '(' */
static void parse_group(struct parser *ps, struct info *x)
{
	int zero = 0;

	if (*ps->p == '?') {
		const char *q = ps->p + 1;

		if (*q == ':' || *q == '>' || *q == '|') {
			ps->p = q + 1;
		} else if (*q == '=' || *q == '!') {
			ps->p = q + 1, zero = 1;
		} else if (*q == '<' && (q[1] == '=' || q[1] == '!')) {
			ps->p = q + 2, zero = 1;
		} else if (*q == '#') {
			const char *e = strchr(q, ')');

			if (!e) {
				ps->fail = 1;
				return;
			}
			ps->p = e + 1;
			set_empty(&x->exact);
			x->req.ok = 0;
			return;
		} else if ((*q == 'P' && q[1] == '<') || (*q == '<' && isalpha((unsigned char)q[1])) ||
			   *q == '\'') {
			const char *e = strpbrk(q + 1, ">'");

			if (!e) {
				ps->fail = 1;
				return;
			}
			ps->p = e + 1;
		} else { /* inline options, conditionals, recursion */
			ps->fail = 1;
			return;
		}
	} else if (*ps->p == '*') { /* a verb */
		ps->fail = 1;
		return;
	}
	parse_alt(ps, x);
	if (*ps->p != ')') {
		ps->fail = 1;
		return;
	}
	ps->p++;
	if (zero) { /* a lookaround matches "" wherever it holds */
		set_empty(&x->exact);
		x->req.ok = 0;
	}
}

/* parse_atom - one item without its quantifier; 0 at the end of a branch */
static int parse_atom(struct parser *ps, struct info *x)
{
	int c = (unsigned char)*ps->p;

	x->exact.ok = x->req.ok = 0;
	if (!c || c == '|' || c == ')')
		return 0;
	ps->p++;
	switch (c) {
	case '(':
		if (++ps->depth > 64) {
			ps->fail = 1;
			return 0;
		}
		parse_group(ps, x);
		ps->depth--;
		return 1;
	case '[':
		parse_class(ps, x);
		return 1;
	case '.':
		return 1;
	case '^': case '$':
		set_empty(&x->exact);
		return 1;
	case '\\':
		c = escape_char(ps);
		if (c == -3)
			ps->fail = 1;
		else if (c == -2)
			set_empty(&x->exact);
		else if (c >= 0)
			set_char(&x->exact, ps->fold, (unsigned char)c);
		return 1;
	default:
		set_char(&x->exact, ps->fold, (unsigned char)c);
		return 1;
	}
}

/* parse_quant - a quantifier at ps->p: 1 with *lo, *hi (-1: unbounded) */
static int parse_quant(struct parser *ps, int *lo, int *hi)
{
	const char *q = ps->p;

	switch (*q) {
	case '*': *lo = 0, *hi = -1, q++; break;
	case '+': *lo = 1, *hi = -1, q++; break;
	case '?': *lo = 0, *hi = 1, q++; break;
	case '{': {
		char *e;
		long a, b;

		if (q[1] == ',') { /* "{,n}": a quantifier in newer PCRE2 only */
			ps->fail = 1;
			return 0;
		}
		if (!isdigit((unsigned char)q[1]))
			return 0; /* a literal '{' */
		a = strtol(q + 1, &e, 10);
		b = a;
		if (*e == ',') {
			b = isdigit((unsigned char)e[1]) ? strtol(e + 1, &e, 10) : (e++, -1);
		}
		if (*e != '}')
			return 0;
		*lo = (int)(a > 1000 ? 1000 : a), *hi = (int)(b > 1000 ? 1000 : b);
		q = e + 1;
		break;
	}
	default:
		return 0;
	}
	if (*q == '?' || *q == '+') /* lazy, possessive: the same strings */
		q++;
	ps->p = q;
	return 1;
}

/* repeat - x{lo,hi} */
static void repeat(const struct parser *ps, struct info *x, int lo, int hi)
{
	final_req(ps, x);
	if (lo == 0) {
		x->req.ok = 0;
		if (hi == 1 && x->exact.ok) {
			struct lit e = { 0, { 0 } };

			if (set_add(&x->exact, &e) < 0)
				x->exact.ok = 0;
		} else {
			x->exact.ok = 0;
		}
		return;
	}
	if (x->exact.ok && lo == hi && lo <= 4) {
		struct lset *p = malloc(sizeof(*p));

		if (p) {
			*p = x->exact;
			for (int k = 1; k < lo && x->exact.ok; k++)
				if (cross(&x->exact, &x->exact, p) < 0)
					x->exact.ok = 0;
			free(p);
		} else {
			x->exact.ok = 0;
		}
		final_req(ps, x);
		return;
	}
	x->exact.ok = 0;
}

/* parse_concat - one branch */
static void parse_concat(struct parser *ps, struct info *out)
{
	struct info *it = malloc(sizeof(*it));
	struct lset *tail = malloc(sizeof(*tail));

	if (!it || !tail) {
		ps->fail = 1;
		goto out;
	}
	set_empty(&out->exact);
	out->req.ok = 0;
	set_empty(tail);
	while (!ps->fail && parse_atom(ps, it)) {
		int lo, hi;

		if (parse_quant(ps, &lo, &hi))
			repeat(ps, it, lo, hi);
		if (it->exact.ok) {
			if (out->exact.ok && cross(&out->exact, &out->exact, &it->exact) < 0)
				out->exact.ok = 0;
			if (cross(tail, tail, &it->exact) < 0) {
				take(ps, &out->req, tail);
				*tail = it->exact;
			}
		} else {
			final_req(ps, it);
			take(ps, &out->req, tail);
			take(ps, &out->req, &it->req);
			set_empty(tail);
			out->exact.ok = 0;
		}
	}
	take(ps, &out->req, tail);
out:
	free(it);
	free(tail);
}

/* set_union - dst |= src; unknown when either is or it does not fit */
static void set_union(struct lset *dst, const struct lset *src)
{
	if (!src->ok)
		dst->ok = 0;
	for (int i = 0; dst->ok && i < src->n; i++)
		if (set_add(dst, &src->v[i]) < 0)
			dst->ok = 0;
}

/* parse_alt - branches separated by '|' */
static void parse_alt(struct parser *ps, struct info *out)
{
	struct info *br = malloc(sizeof(*br));
	int first = 1;

	if (!br) {
		ps->fail = 1;
		return;
	}
	for (;;) {
		parse_concat(ps, br);
		if (ps->fail)
			break;
		final_req(ps, br);
		if (first) {
			*out = *br;
			first = 0;
		} else {
			set_union(&out->exact, &br->exact);
			set_union(&out->req, &br->req);
			final_req(ps, out);
		}
		if (*ps->p != '|')
			break;
		ps->p++;
	}
	free(br);
}

/* contains - b occurs in a */
static int contains(const struct lit *a, const struct lit *b)
{
	for (int i = 0; i + b->len <= a->len; i++)
		if (memcmp(a->b + i, b->b, b->len) == 0)
			return 1;
	return 0;
}

/* minimize - drop every literal containing another one: text holding it
 * holds the shorter one too */
static void minimize(struct lset *s)
{
	int k = 0;

	for (int i = 0; i < s->n; i++) {
		int drop = 0;

		for (int j = 0; j < s->n && !drop; j++)
			drop = j != i && contains(&s->v[i], &s->v[j]) &&
			       (s->v[i].len > s->v[j].len || j < i);
		if (!drop)
			s->v[k++] = s->v[i];
	}
	s->n = k;
}

char *scan_lits(const char *expr, int caseless, size_t min_len)
{
	return scan_lits_avoid(expr, caseless, min_len, NULL);
}

char *scan_lits_avoid(const char *expr, int caseless, size_t min_len, const char *const *avoid)
{
	struct parser ps = { .p = expr, .avoid = avoid, .fold = caseless };
	struct info *x = malloc(sizeof(*x));
	char *out = NULL;
	size_t o = 0;

	if (!x)
		return NULL;
	parse_alt(&ps, x);
	if (ps.fail || *ps.p) /* an unbalanced ')' */
		goto done;
	final_req(&ps, x);
	if (!x->req.ok || x->req.n == 0 || (size_t)minlen(&x->req) < min_len ||
	    avoided(&x->req, avoid))
		goto done;
	minimize(&x->req);
	if (!(out = malloc(8 + (size_t)x->req.n * (LIT_MAX * 4 + 1))))
		goto done;
	o += (size_t)sprintf(out, "(?:");
	for (int i = 0; i < x->req.n; i++) {
		if (i)
			out[o++] = '|';
		for (int k = 0; k < x->req.v[i].len; k++) {
			unsigned char c = (unsigned char)x->req.v[i].b[k];

			if (isalnum(c))
				out[o++] = (char)c;
			else
				o += (size_t)sprintf(out + o, "\\x%02x", c);
		}
	}
	strcpy(out + o, ")");
done:
	free(x);
	return out;
}
