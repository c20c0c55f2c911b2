/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_ascii.c - a rule as it reads text without a byte past 0x7f
 * (scan_lits.h): the body database's second form (SDB_BODY_ASCII), which
 * scan.c scans ASCII-only body lines with.
 *
 * The expression is copied with every character-class member, range part
 * and literal byte past \x7f removed; an item that can then match nothing
 * removes its branch (or nothing, when it is optional: quantifier with a
 * minimum of 0), a negative lookaround of a branchless body is always true
 * and is dropped.  On ASCII-only text the result matches exactly where the
 * original does: what was removed can only match a byte past 0x7f.  Negated
 * classes, \W, \S, '.' are kept as they are (on such text they read the
 * same bytes).  SpamAssassin's 25_replace.cf rules (FUZZY_*) are the
 * point: their look-alike alternations are mostly UTF-8 sequences, half of
 * the body database's cost, and 96% of the corpus's body bytes are on
 * ASCII-only lines (docs/content-gate.md).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan_lits.h"
#include "scan_rules.h"

/* the input read (p) and a growing output string (scan_str); oom (shared
 * by every buffer of one rewrite) once an allocation failed (1), or
 * AW_BAD once the syntax is not what the rewrite reads (the rule is then
 * kept as written) */
#define AW_BAD 2
struct aw {
	const char *p;
	struct scan_str s;
	int *oom;
};

static void aw_put(struct aw *w, const char *s, size_t n)
{
	if (*w->oom)
		return;
	scan_str_add(&w->s, s, n);
	if (w->s.oom)
		*w->oom = 1;
}

static int aw_alt(struct aw *w, struct aw *out);

/* aw_hex - value of \xHH / \x{HH} at p (after "\x"), its length in *len */
static int aw_hex(const char *p, size_t *len)
{
	unsigned v = 0;
	int k = 0;

	if (*p == '{') {
		const char *q = p + 1;

		while (isxdigit((unsigned char)*q))
			v = v * 16 + (unsigned)(isdigit((unsigned char)*q) ? *q - '0' : (tolower(*q) - 'a' + 10)), q++;
		*len = (size_t)(q - p) + (*q == '}');
		return (int)v;
	}
	while (k < 2 && isxdigit((unsigned char)p[k]))
		v = v * 16 + (unsigned)(isdigit((unsigned char)p[k]) ? p[k] - '0' : (tolower(p[k]) - 'a' + 10)), k++;
	*len = (size_t)k;
	return (int)v;
}

/* aw_class - after '['; 1 possible (text in out), 0 empty */
static int aw_class(struct aw *w, struct aw *out)
{
	int first = 1, members = 0, neg = 0;
	const char *start = w->p - 1;
	size_t at = out->s.len;

	aw_put(out, "[", 1);
	if (*w->p == '^')
		neg = 1, aw_put(out, "^", 1), w->p++;
	for (;;) {
		const char *s = w->p;
		int v, single = 1;
		size_t l = 0;

		if (!*w->p) {
			*w->oom = AW_BAD; /* no ']' */
			return 0;
		}
		if (*w->p == ']' && !first) {
			w->p++;
			break;
		}
		first = 0;
		if (*w->p == '[' && w->p[1] == ':') {
			const char *e = strstr(w->p, ":]");

			w->p = e ? e + 2 : w->p + strlen(w->p);
			aw_put(out, s, (size_t)(w->p - s));
			members++;
			continue;
		}
		if (*w->p == '\\' && w->p[1] == 'x') {
			v = aw_hex(w->p + 2, &l);
			w->p += 2 + l;
		} else if (*w->p == '\\') {
			if (!w->p[1]) {
				*w->oom = AW_BAD; /* a trailing backslash */
				return 0;
			}
			v = (unsigned char)w->p[1];
			w->p += 2;
			if (isalpha(v) && v != 'n' && v != 'r' && v != 't' && v != 'f' && v != 'e' && v != 'a')
				v = 0, single = 0; /* \w, \d...: keep; never a range's start */
		} else {
			v = (unsigned char)*w->p++;
		}
		size_t sl = (size_t)(w->p - s);
		if (single && *w->p == '-' && w->p[1] && w->p[1] != ']') { /* range */
			const char *hs = w->p + 1, *he;
			int hv;

			if (hs[0] == '\\' && hs[1] == 'x') {
				hv = aw_hex(hs + 2, &l);
				he = hs + 2 + l;
			} else if (hs[0] == '\\') {
				if (!hs[1]) {
					*w->oom = AW_BAD; /* a trailing backslash */
					return 0;
				}
				hv = (unsigned char)hs[1];
				he = hs + 2;
			} else {
				hv = (unsigned char)hs[0];
				he = hs + 1;
			}
			w->p = he;
			if (v >= 0x80)
				continue;
			if (hv >= 0x80) {
				char b[16];

				aw_put(out, s, sl);
				snprintf(b, sizeof(b), "-\\x7f");
				aw_put(out, b, strlen(b));
			} else {
				aw_put(out, s, (size_t)(he - s));
			}
			members++;
			continue;
		}
		if (v >= 0x80)
			continue;
		aw_put(out, s, sl);
		members++;
	}
	aw_put(out, "]", 1);
	if (neg) { /* on ASCII text it reads the same bytes as it is */
		out->s.len = at;
		aw_put(out, start, (size_t)(w->p - start));
	}
	return members > 0 || neg;
}

/* aw_concat - one branch; 1 possible */
static int aw_concat(struct aw *w, struct aw *out)
{
	int ok = 1;

	while (*w->p && *w->p != '|' && *w->p != ')') {
		struct aw a = { .oom = w->oom };
		int pos = 1, zero_neg = 0;
		const char *s = w->p;

		aw_put(&a, "", 0);
		if (*w->p == '(') {
			const char *q = w->p + 1;
			size_t pl = 1;

			if (*q == '?') {
				if (q[1] == '!' || (q[1] == '<' && q[2] == '!'))
					zero_neg = 1;
				if (q[1] == '#') { /* a comment: as written */
					const char *e = strchr(q, ')');

					w->p = e ? e + 1 : q + strlen(q);
					aw_put(out, s, (size_t)(w->p - s));
					free(a.s.p);
					continue;
				}
				if (q[1] == '\'') { /* (?'name' */
					const char *e = strchr(q + 2, '\'');

					pl = e ? (size_t)(e + 1 - w->p) : 2;
				} else if (q[1] == ':' || q[1] == '=' || q[1] == '!' || q[1] == '>' ||
					   q[1] == '|')
					pl = 3;
				else if (q[1] == '<' && (q[2] == '=' || q[2] == '!'))
					pl = 4;
				else { /* inline options, names: up to ':' or ')' or '>' */
					const char *e = q + 1;

					while (*e && *e != ':' && *e != ')' && *e != '>')
						e++;
					if (*e == ')') { /* (?i) alone */
						w->p = e + 1;
						aw_put(out, s, (size_t)(w->p - s));
						free(a.s.p);
						continue;
					}
					pl = (size_t)(e + 1 - w->p);
				}
			}
			aw_put(&a, w->p, pl);
			w->p += pl;
			struct aw in = { .oom = w->oom };
			aw_put(&in, "", 0);
			pos = aw_alt(w, &in);
			if (*w->p == ')')
				w->p++;
			if (!pos && zero_neg) { /* (?!never): always true */
				free(in.s.p);
				free(a.s.p);
				a = (struct aw){ .oom = w->oom };
				aw_put(&a, "", 0);
				pos = 1;
			} else {
				aw_put(&a, in.s.p, in.s.len);
				aw_put(&a, ")", 1);
				free(in.s.p);
			}
		} else if (*w->p == '[') {
			w->p++;
			pos = aw_class(w, &a);
		} else if (*w->p == '\\' && w->p[1] == 'x') {
			size_t l;
			int v = aw_hex(w->p + 2, &l);

			w->p += 2 + l;
			pos = v < 0x80;
			aw_put(&a, s, (size_t)(w->p - s));
		} else if (*w->p == '\\') {
			if (!w->p[1]) {
				*w->oom = AW_BAD; /* a trailing backslash */
				free(a.s.p);
				return 0;
			}
			w->p += 2;
			aw_put(&a, s, 2);
		} else {
			pos = (unsigned char)*w->p < 0x80;
			aw_put(&a, w->p, 1);
			w->p++;
		}
		/* quantifier */
		const char *qs = w->p;
		int min = 1;

		if (*w->p == '*' || *w->p == '?')
			min = 0, w->p++;
		else if (*w->p == '+')
			w->p++;
		else if (*w->p == '{' && isdigit((unsigned char)w->p[1])) {
			char *e;
			long m = strtol(w->p + 1, &e, 10);

			if (*e == ',')
				while (isdigit((unsigned char)*++e))
					;
			if (*e == '}') {
				min = m > 0;
				w->p = e + 1;
			}
		}
		if (w->p != qs && (*w->p == '?' || *w->p == '+'))
			w->p++;
		if (pos) {
			aw_put(out, a.s.p, a.s.len);
			aw_put(out, qs, (size_t)(w->p - qs));
		} else if (min) {
			ok = 0;
		}
		free(a.s.p);
	}
	return ok;
}

static int aw_alt(struct aw *w, struct aw *out)
{
	int any = 0;

	for (;;) {
		struct aw b = { .oom = w->oom };

		aw_put(&b, "", 0);
		if (aw_concat(w, &b)) {
			if (any)
				aw_put(out, "|", 1);
			aw_put(out, b.s.p, b.s.len);
			any = 1;
		}
		free(b.s.p);
		if (*w->p != '|')
			break;
		w->p++;
	}
	return any;
}

/* as_written - syntax the rewrite does not model, where dropping a branch
 * could change what the rest means: \Q...\E quoting, (*VERB) / (*UTF8)
 * starts, extended mode (an x among inline options: blanks and #
 * comments), and an unscoped inline option past the start (it also sets
 * the alternatives after it).  Such a rule reads ASCII lines as written. */
static int as_written(const char *p)
{
	if (strstr(p, "\\Q") || strstr(p, "(*"))
		return 1;
	for (const char *q = p; (q = strstr(q, "(?")); q += 2) {
		const char *e = q + 2;
		int opt = 0, x = 0;

		while (isalpha((unsigned char)*e) || *e == '-' || *e == '^') {
			x |= *e == 'x';
			opt = 1;
			e++;
		}
		if (opt && (x || (*e == ')' && q != p)))
			return 1;
	}
	return 0;
}

char *scan_ascii_only(const char *expr, int *oom)
{
	struct aw w = { .p = expr, .oom = oom }, out = { .oom = oom };

	*oom = 0;
	if (as_written(expr)) {
		char *c = strdup(expr);

		*oom = !c;
		return c;
	}
	aw_put(&out, "", 0);
	if (!aw_alt(&w, &out) || *w.p || *oom) {
		int bad = *oom == AW_BAD || (*w.p && !*oom);

		free(out.s.p);
		if (*oom == 1)
			return NULL;
		*oom = 0;
		if (!bad)
			return NULL; /* it cannot match a line without a byte past 0x7f */
		if (!(out.s.p = strdup(expr))) /* not read here: kept as written */
			*oom = 1;
		return out.s.p;
	}
	return out.s.p;
}

