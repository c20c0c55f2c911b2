/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_skel.c - a rule as it reads a line's letters and digits alone
 * (scan_rules.h): the gate in front of SDB_BODY_GAP.
 *
 * SpamAssassin's obfuscation rules (__DRUGS_*) put "[_\W]{0,3}" between
 * look-alike classes ("V[_\W]{0,3}[i1!|l][_\W]{0,3}[a4@]...").  They have
 * no literal Hyperscan can start from, so their automata run on every
 * byte of every body line: a third of SDB_BODY_ASCII's time on text that
 * never matches (docs/content-gate.md, session 17).  The skeleton of a
 * line is its bytes [A-Za-z0-9] in order.  A match of a rule is a run of
 * the line; its letters and digits are a run of the skeleton.  The
 * projection written here matches that run, for a line known to lack the
 * bytes of a set L (none when L is NULL):
 *   - an item (literal, class, escape, '.') without letters or digits
 *     matches nothing of the skeleton: it is left out, unless all its
 *     bytes are in L and it is not optional (it cannot match such a line:
 *     its branch is dropped);
 *   - an item with letters or digits becomes the class of those, with its
 *     quantifier when its other bytes are all in L ("[i1!|l]" on a line
 *     without '!' and '|' is "[i1l]"), optional ({0,hi}) otherwise;
 *   - anchors, \b and lookarounds match the empty string: left out;
 *   - groups, alternation and repeats are kept around their projections
 *     (a branch projected to nothing makes its alternation optional).
 * So every match of the rule in a line without a byte of L gives a match
 * of the projection in the line's skeleton: where the projection does not
 * fire, the rule cannot match.  The projections are runs of letter classes,
 * which Hyperscan finds by their literals (the rules' gaps were what kept
 * it from that).  Sets are over-approximated where that is simpler
 * (caseless letters both ways, '.' every byte): a larger set only makes
 * the projection looser.  Syntax not read here (backreferences, inline
 * options, \Q, verbs, POSIX classes, \p) makes the rule ineligible: it
 * stays where it was.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan_rules.h"

#define SK_IMP (-1)     /* cannot match a line without a byte of L */
#define SK_LEN_MAX 65536 /* least lengths are capped here (a form needs 3):
			  * nested repeats of 10000 cannot overflow */
#define SK_SMALL 16     /* an item with letters or digits and this many
			 * other bytes or fewer gives them to L
			 * (scan_skel_bytes) */

struct sk {
	const char *p;
	const unsigned char *lack; /* bytes the line lacks, NULL: none known */
	unsigned char *collect;  /* scan_skel_bytes: L being gathered */
	int bad;                 /* syntax not read here */
	int gap;                 /* an optional run of any non-alnum byte */
	int fold;                /* caseless */
	int depth;
};

static int is_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void sput(struct scan_str *o, const char *s)
{
	scan_str_add(o, s, strlen(s));
}

/* esc_set - the set of the escape at k->p (after '\'), in or out of a
 * class; 1 a set, 0 zero-width (outside a class), -1 not read */
static int esc_set(struct sk *k, unsigned char set[256], int in_class)
{
	int c = (unsigned char)*k->p;

	if (!c)
		return -1;
	k->p++;
	memset(set, 0, 256);
	switch (c) {
	case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
		for (int i = 0; i < 256; i++) {
			int in = c == 'd' || c == 'D' ? (i >= '0' && i <= '9') :
				 c == 'w' || c == 'W' ? (is_alnum(i) || i == '_') :
				 (i == ' ' || (i >= 9 && i <= 13));
			set[i] = (unsigned char)(islower(c) ? in : !in);
		}
		return 1;
	case 'b':
		if (in_class) {
			set[8] = 1;
			return 1;
		}
		return 0;
	case 'B': case 'A': case 'z': case 'Z':
		return in_class ? -1 : 0;
	case 'n': set['\n'] = 1; return 1;
	case 't': set['\t'] = 1; return 1;
	case 'r': set['\r'] = 1; return 1;
	case 'f': set['\f'] = 1; return 1;
	case 'e': set[27] = 1; return 1;
	case 'a': set[7] = 1; return 1;
	case 'x': {
		unsigned v = 0;
		int n = 0;

		if (*k->p == '{') {
			k->p++;
			while (isxdigit((unsigned char)*k->p) && n < 3)
				v = v * 16 + (unsigned)(isdigit((unsigned char)*k->p) ? *k->p - '0' :
							tolower((unsigned char)*k->p) - 'a' + 10), k->p++, n++;
			if (*k->p != '}' || !n || v > 0xff)
				return -1;
			k->p++;
		} else {
			while (n < 2 && isxdigit((unsigned char)*k->p))
				v = v * 16 + (unsigned)(isdigit((unsigned char)*k->p) ? *k->p - '0' :
							tolower((unsigned char)*k->p) - 'a' + 10), k->p++, n++;
		}
		set[v] = 1;
		return 1;
	}
	default:
		if (is_alnum(c) || c >= 0x80)
			return -1; /* \1, \p, \Q, \G, \h, \v, octal...: not read here */
		set[c] = 1;    /* an escaped punctuation byte */
		return 1;
	}
}

/* class_set - after '[': the class's bytes; -1 not read */
static int class_set(struct sk *k, unsigned char set[256])
{
	int neg = 0, first = 1;

	memset(set, 0, 256);
	if (*k->p == '^')
		neg = 1, k->p++;
	for (;;) {
		unsigned char one[256];
		int lo, hi;

		if (!*k->p)
			return -1;
		if (*k->p == ']' && !first) {
			k->p++;
			break;
		}
		first = 0;
		if (k->p[0] == '[' && (k->p[1] == ':' || k->p[1] == '.' || k->p[1] == '='))
			return -1;
		if (*k->p == '\\') {
			k->p++;
			if (esc_set(k, one, 1) != 1)
				return -1;
			int n = 0;
			for (int i = 0; i < 256; i++)
				if (one[i])
					lo = i, n++;
			if (n != 1) { /* \w, \s...: not a range's end */
				for (int i = 0; i < 256; i++)
					set[i] |= one[i];
				continue;
			}
		} else {
			lo = (unsigned char)*k->p++;
		}
		hi = lo;
		if (*k->p == '-' && k->p[1] && k->p[1] != ']') {
			k->p++;
			if (*k->p == '\\') {
				int n = 0;

				k->p++;
				if (esc_set(k, one, 1) != 1)
					return -1;
				for (int i = 0; i < 256; i++)
					if (one[i])
						hi = i, n++;
				if (n != 1)
					return -1;
			} else {
				hi = (unsigned char)*k->p++;
			}
			if (hi < lo)
				return -1;
		}
		for (int i = lo; i <= hi; i++)
			set[i] = 1;
	}
	if (neg)
		for (int i = 0; i < 256; i++)
			set[i] = !set[i];
	return 0;
}

/* quant - a quantifier at k->p: lo, hi (-1: unbounded); none is {1,1} */
static void quant(struct sk *k, int *lo, int *hi)
{
	*lo = *hi = 1;
	if (*k->p == '*')
		*lo = 0, *hi = -1, k->p++;
	else if (*k->p == '+')
		*hi = -1, k->p++;
	else if (*k->p == '?')
		*lo = 0, k->p++;
	else if (*k->p == '{' && isdigit((unsigned char)k->p[1])) {
		char *e;
		long a = strtol(k->p + 1, &e, 10), b = a;

		if (*e == ',') {
			if (isdigit((unsigned char)e[1]))
				b = strtol(e + 1, &e, 10);
			else
				b = -1, e++;
		}
		if (*e != '}')
			return; /* a literal '{' (read by the caller) */
		if (a > 10000 || b > 10000 || (b >= 0 && b < a)) {
			k->bad = 1; /* a repeat not read here: the rule is not gated */
			return;
		}
		*lo = (int)a, *hi = (int)b;
		k->p = e + 1;
	} else {
		return;
	}
	if (*k->p == '?' || *k->p == '+') /* lazy, possessive: the same runs or fewer */
		k->p++;
}

static void put_quant(struct scan_str *o, int lo, int hi)
{
	char b[32];

	if (lo == 1 && hi == 1)
		return;
	if (hi < 0)
		snprintf(b, sizeof(b), "{%d,}", lo);
	else
		snprintf(b, sizeof(b), "{%d,%d}", lo, hi);
	sput(o, b);
}

/* set_item - a one-byte item of set S repeated {lo,hi}: its projection
 * into o, its least length, or SK_IMP */
static int set_item(struct sk *k, unsigned char set[256], int lo, int hi, struct scan_str *o)
{
	int na = 0, nn = 0, nn_lack = 0, nonalnum = 0;

	if (k->fold)
		for (int c = 'a'; c <= 'z'; c++)
			set[c] = set[c - 32] = set[c] | set[c - 32];
	for (int i = 0; i < 256; i++) {
		if (is_alnum(i)) {
			na += set[i] != 0;
		} else {
			nonalnum++;
			nn += set[i] != 0;
			nn_lack += set[i] && k->lack && k->lack[i];
		}
	}
	if (!na) {
		if (lo == 0 && nn == nonalnum)
			k->gap = 1; /* [_\W]{0,n} */
		return lo && nn == nn_lack ? SK_IMP : 0; /* only bytes the line lacks */
	}
	if (k->collect && nn > 0 && nn <= SK_SMALL)
		for (int i = 0; i < 256; i++)
			if (set[i] && !is_alnum(i))
				k->collect[i] = 1;
	sput(o, "[");
	for (int i = 0; i < 256; i++)
		if (set[i] && is_alnum(i)) {
			char b[2] = { (char)i, 0 };

			sput(o, b);
		}
	sput(o, "]");
	if (nn == nn_lack) { /* its other bytes are not in the line */
		put_quant(o, lo, hi);
		return lo;
	}
	put_quant(o, 0, hi);
	return 0;
}

static int sk_alt(struct sk *k, struct scan_str *o);

/* sk_concat - one branch into o: its least length, or SK_IMP */
static int sk_concat(struct sk *k, struct scan_str *o)
{
	int total = 0, imp = 0;

	while (*k->p && *k->p != '|' && *k->p != ')' && !k->bad) {
		unsigned char set[256];
		int lo, hi, len = 0, kind; /* kind 0 zero-width, 1 set, 2 group */
		struct scan_str in = { 0 };

		if (*k->p == '(') {
			int look = 0;

			k->p++;
			if (*k->p == '?') {
				if (k->p[1] == ':')
					k->p += 2;
				else if (k->p[1] == '=' || k->p[1] == '!')
					k->p += 2, look = 1;
				else if (k->p[1] == '<' && (k->p[2] == '=' || k->p[2] == '!'))
					k->p += 3, look = 1;
				else {
					k->bad = 1; /* options, names, atomic groups... */
					break;
				}
			}
			if (++k->depth > 64) {
				k->bad = 1;
				break;
			}
			len = sk_alt(k, &in);
			k->depth--;
			if (*k->p != ')' || in.oom) {
				k->bad = 1;
				free(in.p);
				break;
			}
			k->p++;
			kind = look ? 0 : 2;
		} else if (*k->p == '[') {
			k->p++;
			if (class_set(k, set) < 0) {
				k->bad = 1;
				break;
			}
			kind = 1;
		} else if (*k->p == '\\') {
			k->p++;
			kind = esc_set(k, set, 0);
			if (kind < 0) {
				k->bad = 1;
				break;
			}
		} else if (*k->p == '^' || *k->p == '$') {
			k->p++;
			kind = 0;
		} else if (*k->p == '.') {
			k->p++;
			memset(set, 1, 256);
			kind = 1;
		} else if (*k->p == '*' || *k->p == '+' || *k->p == '?') {
			k->bad = 1;
			break;
		} else {
			memset(set, 0, 256);
			set[(unsigned char)*k->p++] = 1;
			kind = 1;
		}
		quant(k, &lo, &hi);
		if (kind == 0) {
			free(in.p);
			continue;
		}
		if (kind == 1) {
			len = set_item(k, set, lo, hi, o);
		} else if (len == SK_IMP) {
			len = lo ? SK_IMP : 0;
		} else if (in.len) {
			sput(o, "(?:");
			scan_str_add(o, in.p, in.len);
			sput(o, ")");
			put_quant(o, lo, hi);
			len = (int)((long long)len * lo > SK_LEN_MAX ? SK_LEN_MAX : (long long)len * lo);
		} else {
			len = 0;
		}
		free(in.p);
		if (len == SK_IMP)
			imp = 1;
		else
			total = total + len > SK_LEN_MAX ? SK_LEN_MAX : total + len;
	}
	return imp ? SK_IMP : total;
}

/* sk_alt - an alternation into o: the least length of the branches that
 * can match, or SK_IMP when none can.  A branch that projects to nothing
 * is left out and makes the rest optional: "(?:\b|\s)" gives "", and
 * "(?:\\\/|V)" gives "(?:V){0,1}" */
static int sk_alt(struct sk *k, struct scan_str *o)
{
	struct scan_str all = { 0 };
	int best = SK_IMP, n = 0, empty = 0;

	for (;;) {
		struct scan_str b = { 0 };
		int len = sk_concat(k, &b);

		if (b.oom)
			k->bad = 1;
		if (len != SK_IMP) {
			if (!b.len) {
				empty = 1;
			} else {
				if (n++)
					sput(&all, "|");
				scan_str_add(&all, b.p, b.len);
			}
			best = best == SK_IMP || len < best ? len : best;
		}
		free(b.p);
		if (*k->p != '|')
			break;
		k->p++;
	}
	if (all.oom)
		k->bad = 1;
	if (n == 1 && !empty)
		scan_str_add(o, all.p, all.len);
	else if (n) {
		sput(o, "(?:");
		scan_str_add(o, all.p, all.len);
		sput(o, empty ? "){0,1}" : ")");
	}
	free(all.p);
	return best;
}

char *scan_skel(const char *expr, int caseless, const unsigned char *lack, int *minlen)
{
	struct sk k = { .p = expr, .lack = lack, .fold = caseless };
	struct scan_str o = { 0 };
	int len = sk_alt(&k, &o);

	*minlen = len;
	if (k.bad || *k.p || o.oom || !k.gap) {
		free(o.p);
		*minlen = SCAN_SKEL_NONE;
		return NULL;
	}
	if (len == SK_IMP) {
		free(o.p);
		*minlen = SCAN_SKEL_NEVER;
		return NULL;
	}
	sput(&o, "");
	if (o.oom) {
		free(o.p);
		*minlen = SCAN_SKEL_NONE;
		return NULL;
	}
	return o.p;
}

int scan_skel_bytes(const char *expr, int caseless, unsigned char set[256])
{
	struct sk k = { .p = expr, .collect = set, .fold = caseless };
	struct scan_str o = { 0 };

	sk_alt(&k, &o);
	free(o.p);
	return k.bad || *k.p ? -1 : 0;
}
