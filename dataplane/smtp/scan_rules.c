/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan_rules.c - the content gate's rules compiler: the native rules file,
 * Hyperscan compilation, the on-disk cache and the refcounted live
 * database.  SpamAssassin .cf files are imported by scan_sa.c into the same
 * scan_db between reading the native file and compiling.
 *
 * A load builds a complete scan_db off to the side; only a db whose every
 * native rule validated and whose databases compiled is ever installed, so
 * a bad rules file leaves the old rules live.  Compiled databases are cached
 * under a SHA-256 of everything that decides the compiled bytes (expressions,
 * flags, ids, Hyperscan version, platform), so a restart skips compilation
 * and a stale file can never be used (its key does not match).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "log.h"
#include "outfile.h"
#include "scan.h"
#include "scan_eval.h"
#include "scan_lits.h"
#include "scan_received.h"
#include "scan_rules.h"

#define CACHE_MAGIC "MOATHSDB11\n" /* 5: one database per header view after the SDB_N;
				      * 6: SDB_BODY_ASCII; 7: and no SDB_META
				      * (metas run over the hit bitmap); 8: SDB_START;
				      * 9: SDB_BODY_ASIDE; 10: SDB_BODY_GAP and
				      * the SDB_SKEL tiers, or SDB_URI_GATED;
				      * 11: both */

static atomic_uint_fast64_t load_gen;

/* ---------------------------------------------------------------- utils */

/* scan_errf - format an error message into err */
void scan_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* scan_strndup - strndup that the caller checks */
char *scan_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* scan_srcloc - "file:line" */
char *scan_srcloc(const char *file, unsigned line)
{
	char *s = NULL;

	if (asprintf(&s, "%s:%u", file, line) < 0)
		return NULL;
	return s;
}

/* scan_grow - make room for one more element in the array *pv of n elements
 * (capacity *cap, doubling); 0 or -ENOMEM */
int scan_grow(void *pv, size_t n, size_t *cap, size_t size)
{
	void **v = pv;

	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, nc * size);

	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = nc;
	return 0;
}

/* scan_str_add - append n bytes to a growing string (scan_rules.h) */
void scan_str_add(struct scan_str *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = (b->len + n + 1) * 2;
		char *np = realloc(b->p, nc);

		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* scan_rule_add - append a zeroed rule; NULL on ENOMEM */
struct scan_rule *scan_rule_add(struct scan_db *d)
{
	if (scan_grow(&d->rules, d->nrules, &d->cap, sizeof(d->rules[0])) < 0)
		return NULL;
	memset(&d->rules[d->nrules], 0, sizeof(d->rules[0]));
	return &d->rules[d->nrules++];
}

/* scan_rule_free - release one rule's strings */
void scan_rule_free(struct scan_rule *r)
{
	free(r->id);
	free(r->pattern);
	free(r->hname);
	free(r->reply);
	free(r->src);
	free(r->unset);
	pcre2_code_free(r->re);
	pcre2_code_free(r->re_start);
	free(r->gate);
	free(r->bytes);
	free(r->run);
	for (int t = 0; r->skel && t < SCAN_SKEL_TIERS; t++)
		free(r->skel[t]);
	free(r->skel);
}

/* db_free - release everything of a db */
static void db_free(struct scan_db *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nrules; i++)
		scan_rule_free(&d->rules[i]);
	for (size_t i = 0; i < d->nskips; i++) {
		free(d->skips[i].id);
		free(d->skips[i].src);
		free(d->skips[i].reason);
	}
	for (int i = 0; i < SDB_N; i++)
		if (d->db[i])
			hs_free_database(d->db[i]);
	for (size_t i = 0; d->vdb && i < d->nviews; i++)
		if (d->vdb[i])
			hs_free_database(d->vdb[i]);
	free(d->vdb);
	for (int i = 0; i < SCAN_NRDB; i++)
		if (d->rdb[i])
			hs_free_database(d->rdb[i]);
	free(d->rules);
	free(d->rflag);
	free(d->skips);
	free(d->exists);
	for (size_t i = 0; i < d->nviews; i++)
		free(d->views[i]);
	free(d->views);
	free(d->unsets);
	free(d->evals);
	free(d->metas);
	free(d->brules);
	free(d->hsides);
	free(d->moff);
	free(d->mcode);
	free(d);
}

/* scan_find_rule - index of rule id, -1 if none (linear: load time only) */
long scan_find_rule(const struct scan_db *d, const char *id)
{
	for (size_t i = 0; i < d->nrules; i++)
		if (strcmp(d->rules[i].id, id) == 0)
			return (long)i;
	return -1;
}

/* scan_validate - ask Hyperscan whether it can compile an expression; on
 * failure msg gets its message */
int scan_validate(const char *expr, unsigned flags, char *msg, size_t msgsz)
{
	hs_expr_info_t *info = NULL;
	hs_compile_error_t *ce = NULL;

	if (hs_expression_info(expr, flags, &info, &ce) != HS_SUCCESS) {
		snprintf(msg, msgsz, "%s", ce && ce->message ? ce->message : "invalid");
		hs_free_compile_error(ce);
		return -1;
	}
	free(info);
	return 0;
}

/* skip_escape - the length of the escape at p ("\\x", "\\x{..}", "\\p{..}") */
static size_t skip_escape(const char *p)
{
	if (!p[1])
		return 1;
	if (strchr("xpPNog", p[1]) && p[2] == '{') {
		const char *e = strchr(p + 3, '}');

		return e ? (size_t)(e - p) + 1 : 2;
	}
	return 2;
}

char *scan_widen(const char *expr, int drop_last, int *exact)
{
	size_t n = strlen(expr), o = 0;
	char *out = malloc(n + 1);
	int cls = 0, look = 0;    /* inside a class; lookaround depth (as parens) */
	int depth = 0, lookat[64]; /* paren depth; depths where lookarounds opened */
	size_t last_q = 0;        /* where the expression's final quantifier starts */

	if (!out)
		return NULL;
	*exact = 1;
	if (strstr(expr, "\\Q") || strstr(expr, "[:")) { /* quoting, POSIX classes: as is */
		*exact = 0;
		memcpy(out, expr, n + 1);
		return out;
	}
	for (size_t i = 0; i < n;) {
		const char *p = expr + i;

		if (*p == '\\') {
			size_t k = skip_escape(p);

			*exact &= !(p[1] >= '1' && p[1] <= '9') && p[1] != 'g' && p[1] != 'k';
			memcpy(out + o, p, k);
			o += k, i += k;
			continue;
		}
		if (cls) {
			cls = !(*p == ']' && !(p[-1] == '[' || (p[-1] == '^' && p[-2] == '[')));
		} else if (*p == '[') {
			cls = 1;
		} else if (*p == '(') {
			int la = p[1] == '?' && (p[2] == '=' || p[2] == '!' ||
						 (p[2] == '<' && (p[3] == '=' || p[3] == '!')));

			*exact &= !la && !(p[1] == '?' && (p[2] == '>' || p[2] == 'P' || p[2] == '#')) &&
				  p[1] != '*';
			if (la && look < 64)
				lookat[look++] = depth;
			depth++;
		} else if (*p == ')') {
			depth--;
			if (look && lookat[look - 1] == depth)
				look--;
		} else if (*p == '{' && !look) {
			unsigned long m, mx;
			char *e;

			/* digits only: strtoul's blanks and sign are text to
			 * PCRE2 ("x{ 2,5}" is a literal) */
			m = p[1] >= '0' && p[1] <= '9' ? strtoul(p + 1, &e, 10) : (e = (char *)(uintptr_t)(p + 1), 0);
			if (e > p + 1 && *e == ',' && e[1] >= '0' && e[1] <= '9') {
				char *f;

				mx = strtoul(e + 1, &f, 10);
				if (*f == '}' && mx > m) { /* {m,n} -> {m,} */
					last_q = o;
					o += (size_t)sprintf(out + o, "{%lu,}", m);
					i = (size_t)(f - expr) + 1;
					continue;
				}
			}
			last_q = o;
		}
		out[o++] = expr[i++];
	}
	out[o] = 0;
	/* the expression ends in a quantifier {m}, {m,} or {m,n} with m >= 1:
	 * keep one iteration of what it repeats */
	if (drop_last && last_q && out[last_q] == '{' && out[o - 1] == '}' &&
	    strchr(out + last_q, '}') == out + o - 1 && out[last_q + 1] >= '1' &&
	    out[last_q + 1] <= '9' && strspn(out + last_q + 1, "0123456789,") == o - last_q - 2 &&
	    strtoul(out + last_q + 1, NULL, 10) >= 1)
		out[last_q] = 0;
	return out;
}

/* ----------------------------------------------------- reversed rules */

/* rv_escape_len - bytes of the escape at p; 0 when refused: what does
 * not read one byte or one position the same both ways (backreferences,
 * anchors, \K, quoting, \c, octal, \R, \X) */
static size_t rv_escape_len(const char *p)
{
	size_t k = 2;

	if (!p[1] || strchr("0123456789gkAzZGKQEcRXoN", p[1]))
		return 0;
	if (p[1] == 'x' && p[2] != '{') {
		while (k < 4 && isxdigit((unsigned char)p[k]))
			k++;
		return k;
	}
	if ((p[1] == 'p' || p[1] == 'P') && p[2] != '{')
		return p[2] ? 3 : 0;
	return skip_escape(p);
}

/* rv_class_end - past the class opening at p, NULL when unterminated */
static const char *rv_class_end(const char *p)
{
	const char *q = p + 1;

	if (*q == '^')
		q++;
	if (*q == ']')
		q++;
	while (*q && *q != ']') {
		if (*q == '\\' && q[1]) {
			q += 2;
		} else if (*q == '[' && q[1] == ':') {
			const char *e = strstr(q + 2, ":]");

			if (!e)
				return NULL;
			q = e + 2;
		} else {
			q++;
		}
	}
	return *q ? q + 1 : NULL;
}

/* rv_quant_end - past the quantifier at p (p when there is none); NULL
 * for a possessive one */
static const char *rv_quant_end(const char *p)
{
	const char *q = p;

	if (*q == '?' || *q == '*' || *q == '+') {
		q++;
	} else if (*q == '{' && q[1] >= '0' && q[1] <= '9') {
		const char *e = q + 1;

		while (*e >= '0' && *e <= '9')
			e++;
		if (*e == ',')
			for (e++; *e >= '0' && *e <= '9'; e++)
				;
		if (*e != '}')
			return p; /* "{" is a literal here */
		q = e + 1;
	} else {
		return p;
	}
	if (*q == '+')
		return NULL;
	return *q == '?' ? q + 1 : q;
}

#define RV_DEPTH 64

static const char *rv_alt(const char *p, struct scan_str *o, int depth);

/* rv_branch - the branch at p with its items in reverse order, into o;
 * returns where it ends ('|', ')' or the NUL), NULL when refused */
static const char *rv_branch(const char *p, struct scan_str *o, int depth)
{
	struct item {
		const char *a, *ae, *qe; /* atom, its end, its quantifier's end */
		char *inner;             /* a group's body, reversed */
		size_t pre;              /* a group's "(" or "(?i:" */
	} *it = NULL;
	size_t n = 0, cap = 0;
	const char *ret = NULL;

	while (*p && *p != '|' && *p != ')') {
		struct item x = { p, NULL, NULL, NULL, 0 };

		if (n == cap) {
			struct item *ni = realloc(it, (cap = cap ? cap * 2 : 16) * sizeof(*it));

			if (!ni) {
				o->oom = 1;
				goto out;
			}
			it = ni;
		}
		if (*p == '(') {
			const char *b = p + 1;
			struct scan_str in = { 0 };

			if (*b == '?') { /* a plain or scoped-flag group only */
				for (b++; *b == 'i' || *b == 's' || *b == 'm' || *b == '-'; b++)
					;
				if (*b != ':')
					goto out;
				b++;
			}
			x.pre = (size_t)(b - p);
			scan_str_add(&in, "", 0);
			x.ae = depth < RV_DEPTH ? rv_alt(b, &in, depth + 1) : NULL;
			if (!x.ae || *x.ae != ')' || in.oom) {
				o->oom |= in.oom;
				free(in.p);
				goto out;
			}
			x.ae++;
			x.inner = in.p;
		} else if (*p == '[') {
			if (!(x.ae = rv_class_end(p)))
				goto out;
		} else if (*p == '\\') {
			size_t k = rv_escape_len(p);

			if (!k)
				goto out;
			x.ae = p + k;
		} else if (*p == '^' || *p == '$' || *p == '*' || *p == '+' || *p == '?') {
			goto out; /* anchors; a quantifier with nothing to repeat */
		} else {
			x.ae = p + 1;
		}
		it[n++] = x;
		if (!(x.qe = rv_quant_end(x.ae)))
			goto out;
		it[n - 1].qe = x.qe;
		p = x.qe;
	}
	for (size_t i = n; i-- > 0;) {
		if (it[i].inner) {
			scan_str_add(o, it[i].a, it[i].pre);
			scan_str_add(o, it[i].inner, strlen(it[i].inner));
			scan_str_add(o, ")", 1);
		} else {
			scan_str_add(o, it[i].a, (size_t)(it[i].ae - it[i].a));
		}
		scan_str_add(o, it[i].ae, (size_t)(it[i].qe - it[i].ae));
	}
	ret = p;
out:
	for (size_t i = 0; i < n; i++)
		free(it[i].inner);
	free(it);
	return ret;
}

/* rv_alt - the alternation at p, each branch reversed in place */
static const char *rv_alt(const char *p, struct scan_str *o, int depth)
{
	for (;;) {
		if (!(p = rv_branch(p, o, depth)))
			return NULL;
		if (*p != '|')
			return p;
		scan_str_add(o, "|", 1);
		p++;
	}
}

char *scan_reverse(const char *expr)
{
	struct scan_str o = { 0 };
	const char *e;

	scan_str_add(&o, "", 0);
	e = rv_alt(expr, &o, 0);
	if (!e || *e || o.oom) {
		free(o.p);
		return NULL;
	}
	return o.p;
}

/* --------------------------------------------------------- native rules */

/* parse_scope - "raw", "body", "rawbody", "uri", "header", "header:Name" */
static int parse_scope(const char *s, enum scan_scope *scope, char **hname)
{
	*hname = NULL;
	if (strcmp(s, "raw") == 0)
		*scope = SCOPE_RAW;
	else if (strcmp(s, "body") == 0)
		*scope = SCOPE_BODY;
	else if (strcmp(s, "rawbody") == 0)
		*scope = SCOPE_RAWBODY;
	else if (strcmp(s, "uri") == 0)
		*scope = SCOPE_URI;
	else if (strcmp(s, "header") == 0)
		*scope = SCOPE_HEADER;
	else if (strncmp(s, "header:", 7) == 0 && s[7]) {
		*scope = SCOPE_HEADER;
		*hname = strdup(s + 7);
		if (!*hname)
			return -ENOMEM;
		if (strlen(*hname) >= MIME_NAME_MAX) {
			free(*hname);
			*hname = NULL;
			return -EINVAL;
		}
	} else
		return -EINVAL;
	return 0;
}

/* scan_next_word - split off the next blank-separated word of *pp */
char *scan_next_word(char **pp)
{
	char *p = *pp, *w;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return NULL;
	w = p;
	while (*p && *p != ' ' && *p != '\t')
		p++;
	if (*p)
		*p++ = 0;
	*pp = p;
	return w;
}

/* native_line - parse one rules-file line into d; errors name file:line */
static int native_line(struct scan_db *d, char *line, const char *file,
		       unsigned ln, char *err, size_t errsz)
{
	char *p = line, *id, *scope_s, *act, *slash, *last, msg[256];
	struct scan_rule r = { 0 };
	unsigned flags = 0;
	int rc = -EINVAL;

	id = scan_next_word(&p);
	if (!id || id[0] == '#')
		return 0;
	if (strcmp(id, "threshold") == 0) {
		char *v = scan_next_word(&p), *end;

		d->threshold = v ? strtod(v, &end) : 0;
		if (!v || *end || d->threshold <= 0) {
			scan_errf(err, errsz, "%s:%u: threshold: want a positive number", file, ln);
			return -EINVAL;
		}
		return 0;
	}
	for (const char *c = id; *c; c++)
		if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= '0' && *c <= '9') ||
		      ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z'))) {
			scan_errf(err, errsz, "%s:%u: rule %s: bad character in rule id", file, ln, id);
			return -EINVAL;
		}
	if (strlen(id) >= sizeof(((struct filter_verdict *)0)->rule)) {
		scan_errf(err, errsz, "%s:%u: rule %s: id longer than 63 bytes", file, ln, id);
		return -EINVAL;
	}
	if (scan_find_rule(d, id) >= 0) {
		scan_errf(err, errsz, "%s:%u: rule %s: duplicate rule id", file, ln, id);
		return -EINVAL;
	}
	scope_s = scan_next_word(&p);
	if (!scope_s || parse_scope(scope_s, &r.scope, &r.hname) < 0) {
		scan_errf(err, errsz, "%s:%u: rule %s: scope must be raw, body, rawbody, uri, header or header:NAME",
		     file, ln, id);
		goto out;
	}
	act = scan_next_word(&p);
	if (act && strcmp(act, "score") == 0) {
		char *v = scan_next_word(&p), *end;

		r.action = ACT_SCORE;
		r.score = v ? strtod(v, &end) : 0;
		if (!v || *end) {
			scan_errf(err, errsz, "%s:%u: rule %s: score needs a number", file, ln, id);
			goto out;
		}
	} else if (act && strcmp(act, "reject") == 0) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '"') {
			scan_errf(err, errsz, "%s:%u: rule %s: reject needs a \"reply text\"", file, ln, id);
			goto out;
		}
		char *q = ++p, *o = p;
		for (; *q && *q != '"'; q++) {
			if (*q == '\\' && q[1])
				q++;
			*o++ = *q;
		}
		if (*q != '"') {
			scan_errf(err, errsz, "%s:%u: rule %s: unterminated reply text", file, ln, id);
			goto out;
		}
		*o = 0;
		for (char *c = p; *c; c++)
			if ((unsigned char)*c < 32 || *c == 127) {
				scan_errf(err, errsz, "%s:%u: rule %s: control byte in reply text",
				     file, ln, id);
				goto out;
			}
		r.action = ACT_REJECT;
		r.reply = strdup(p);
		if (!r.reply) {
			rc = -ENOMEM;
			goto out;
		}
		p = q + 1;
	} else {
		scan_errf(err, errsz, "%s:%u: rule %s: action must be score N or reject \"text\"",
		     file, ln, id);
		goto out;
	}
	slash = strchr(p, '/');
	last = strrchr(p, '/');
	if (!slash || last == slash) {
		scan_errf(err, errsz, "%s:%u: rule %s: pattern must be /regex/flags", file, ln, id);
		goto out;
	}
	for (char *f = last + 1; *f && *f != '\n' && *f != '\r'; f++) {
		switch (*f) {
		case 'i': flags |= HS_FLAG_CASELESS; break;
		case 's': flags |= HS_FLAG_DOTALL; break;
		case 'm': flags |= HS_FLAG_MULTILINE; break;
		case '1': flags |= HS_FLAG_SINGLEMATCH; break;
		case ' ': case '\t': break;
		default:
			scan_errf(err, errsz, "%s:%u: rule %s: unknown flag '%c' (i s m 1)",
			     file, ln, id, *f);
			goto out;
		}
	}
	r.pattern = scan_strndup(slash + 1, (size_t)(last - slash - 1));
	r.id = strdup(id);
	r.src = scan_srcloc(file, ln);
	r.flags = flags;
	if (!r.pattern || !r.id || !r.src) {
		rc = -ENOMEM;
		goto out;
	}
	if (scan_validate(r.pattern, r.flags | HS_FLAG_SINGLEMATCH, msg, sizeof(msg)) < 0) {
		scan_errf(err, errsz, "%s:%u: rule %s: %s", file, ln, id, msg);
		goto out;
	}
	struct scan_rule *nr = scan_rule_add(d);
	if (!nr) {
		rc = -ENOMEM;
		goto out;
	}
	*nr = r;
	return 0;
out:
	scan_rule_free(&r);
	return rc;
}

/* load_native - read the native rules file into d (all or nothing) */
static int load_native(struct scan_db *d, const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned ln = 0;
	int rc = 0;

	if (!f) {
		rc = -errno;
		scan_errf(err, errsz, "%s: %s", path, strerror(errno));
		return rc;
	}
	while (getline(&line, &cap, f) >= 0) {
		size_t n = strlen(line);

		ln++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		rc = native_line(d, line, path, ln, err, errsz);
		if (rc < 0)
			break;
	}
	free(line);
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------ compiling */

struct expr_set {
	char **expr;
	unsigned *flags;
	unsigned *ids;
	size_t n;
};

/* expr_set_free - release an expression list */
static void expr_set_free(struct expr_set *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->expr[i]);
	free(e->expr);
	free(e->flags);
	free(e->ids);
	memset(e, 0, sizeof(*e));
}

/* scan_aside - expr has a group repeated SCAN_ASIDE_REPEAT times or more
 * ("(?:[a-z]{8,}[\s.]+){6}", SpamAssassin's __LONGWORDS_*): Hyperscan
 * makes such a rule cost far more inside the large ASCII body database
 * than in a small one of its own (docs/content-gate.md, session 16), so
 * it goes to SDB_BODY_ASIDE.  Only where it runs changes, not what it
 * matches: a lexical look for ")" then "{n" or "{n," with n at least the
 * bound, escapes and classes skipped. */
int scan_aside(const char *expr)
{
	int cls = 0;

	for (const char *p = expr; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				break;
			p++;
			continue;
		}
		if (cls) {
			cls = *p != ']';
			continue;
		}
		if (*p == '[') {
			cls = 1;
			if (p[1] == '^')
				p++;
			if (p[1] == ']')
				p++;
			continue;
		}
		if (*p == ')' && p[1] == '{' && p[2] >= '0' && p[2] <= '9') {
			char *e;
			unsigned long n = strtoul(p + 2, &e, 10);

			if ((*e == '}' || *e == ',') && n >= SCAN_ASIDE_REPEAT)
				return 1;
		}
	}
	return 0;
}

/* in_db - does rule r compile into database k (k < SDB_N: enum scan_dbi,
 * SDB_HEADER holding only the rules of no view, which read each header
 * alone; SDB_N + v: header view v's own database; SDB_N + nviews + s:
 * the prefilters of the relay rules reading relay string s) */
static int in_db(const struct scan_db *d, const struct scan_rule *r, size_t k)
{
	if (r->dead || r->bytes || r->run)
		return 0;
	if (k >= SDB_N + d->nviews)
		return r->scope == SCOPE_EVAL && r->eval == EVAL_RELAYS_HDR && r->pattern[0] &&
		       (size_t)r->ea == k - SDB_N - d->nviews;
	if (k == SDB_START)
		return r->rstart;
	if (k == SDB_BODY_GAP)
		return r->gap;
	if (k >= SDB_SKEL && k < SDB_SKEL + SCAN_SKEL_TIERS)
		return r->gap && r->skel[k - SDB_SKEL];
	if (r->gap)
		return 0;
	if (r->scope == SCOPE_HEADER)
		return !r->side && (r->view < 0 ? k == SDB_HEADER : k == SDB_N + (size_t)r->view);
	if (k == SDB_BODY_ASCII || k == SDB_BODY_ASIDE)
		return r->scope == SCOPE_BODY && scan_aside(r->pattern) == (k == SDB_BODY_ASIDE);
	if (k == SDB_URI_SIDE || k == SDB_URI)
		return r->scope == SCOPE_URI && r->side == (k == SDB_URI_SIDE) && !r->gate;
	if (k == SDB_URI_GATED)
		return r->scope == SCOPE_URI && r->gate;
	return k < SDB_N && scan_scope_dbi(r->scope) == (int)k;
}

/* build_exprs - the expression list of database k (in_db) */
static int build_exprs(const struct scan_db *d, size_t k, struct expr_set *e)
{
	size_t cap = 2;

	for (size_t i = 0; i < d->nrules; i++) /* a view's set is small */
		cap += (size_t)in_db(d, &d->rules[i], k) +
		       (size_t)(k == SDB_URI && d->rules[i].gate && !d->rules[i].dead);

	e->expr = calloc(cap, sizeof(char *));
	e->flags = calloc(cap, sizeof(unsigned));
	e->ids = calloc(cap, sizeof(unsigned));
	e->n = 0;
	if (!e->expr || !e->flags || !e->ids)
		return -ENOMEM;
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		if (!in_db(d, r, k))
			continue;
		if (k == SDB_BODY_ASCII || k == SDB_BODY_ASIDE) { /* the rule on ASCII-only lines */
			int oom;

			if (!(e->expr[e->n] = scan_ascii_only(r->pattern, &oom))) {
				if (oom)
					return -ENOMEM;
				continue; /* it cannot match such a line */
			}
		} else if (k >= SDB_SKEL && k < SDB_SKEL + SCAN_SKEL_TIERS) { /* on a line's skeleton */
			if (!(e->expr[e->n] = strdup(r->skel[k - SDB_SKEL])))
				return -ENOMEM;
			e->flags[e->n] = HS_FLAG_SINGLEMATCH;
			e->ids[e->n++] = (unsigned)i;
			continue;
		} else if (k == SDB_START) { /* read backwards, every match */
			if (!(e->expr[e->n] = scan_reverse(r->pattern)))
				return -ENOMEM; /* the import checked that it reverses */
			e->flags[e->n] = r->flags;
			e->ids[e->n++] = (unsigned)i;
			continue;
		} else if (!(e->expr[e->n] = strdup(r->pattern))) {
			return -ENOMEM;
		}
		/* every rule counts once per message (per header unit for
		 * header rules).  A prefilter rule's first candidate in a
		 * block-mode unit is all it needs: it confirms the whole unit
		 * (scan_unit_end), and a later candidate would only confirm
		 * it again; in a stream it reports every candidate, since a
		 * false first one would hide a later true match */
		e->flags[e->n] = r->flags | (r->scope == SCOPE_EVAL ? HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH :
					     !r->prefilter ? HS_FLAG_SINGLEMATCH :
					     k < SDB_N && scan_dbi_mode((int)k) == HS_MODE_STREAM ?
					     HS_FLAG_PREFILTER : HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH);
		e->ids[e->n] = (unsigned)i;
		e->n++;
	}
	for (size_t i = 0; k == SDB_URI && i < d->nrules; i++) { /* the gates (mark_gate) */
		const struct scan_rule *r = &d->rules[i];

		if (!r->gate || r->dead)
			continue;
		if (!(e->expr[e->n] = strdup(r->gate)))
			return -ENOMEM;
		e->flags[e->n] = (r->flags & HS_FLAG_CASELESS) | HS_FLAG_SINGLEMATCH;
		e->ids[e->n++] = (unsigned)d->nrules;
	}
	return 0;
}

/* cache_key - SHA-256 over everything that determines the compiled bytes */
static int cache_key(struct expr_set *es, size_t ndb, unsigned char key[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	hs_platform_info_t plat;
	const char *v = hs_version();
	unsigned kl = 0;
	int ok;

	if (!c)
		return -ENOMEM;
	memset(&plat, 0, sizeof(plat));
	hs_populate_platform(&plat);
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(c, CACHE_MAGIC, sizeof(CACHE_MAGIC)) &&
	     EVP_DigestUpdate(c, v, strlen(v) + 1) &&
	     EVP_DigestUpdate(c, &plat, sizeof(plat));
	uint64_t nd = ndb;
	ok = ok && EVP_DigestUpdate(c, &nd, sizeof(nd));
	for (size_t w = 0; ok && w < ndb; w++) {
		uint64_t n = es[w].n;

		ok = EVP_DigestUpdate(c, &n, sizeof(n));
		for (size_t i = 0; ok && i < es[w].n; i++)
			ok = EVP_DigestUpdate(c, es[w].expr[i], strlen(es[w].expr[i]) + 1) &&
			     EVP_DigestUpdate(c, &es[w].flags[i], sizeof(unsigned)) &&
			     EVP_DigestUpdate(c, &es[w].ids[i], sizeof(unsigned));
	}
	ok = ok && EVP_DigestFinal_ex(c, key, &kl);
	EVP_MD_CTX_free(c);
	return ok && kl == 32 ? 0 : -EIO;
}

/* cache_path - "<dir>/scan-<hex key>.hsdb" */
static char *cache_path(const char *dir, const unsigned char key[32])
{
	char hex[65], *p = NULL;

	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	if (asprintf(&p, "%s/scan-%s.hsdb", dir, hex) < 0)
		return NULL;
	return p;
}

/* read_full - read exactly n bytes */
static int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* cache_load - the cached databases for key; CACHE_HIT, CACHE_MISS (no
 * file) or CACHE_STALE (a file that does not verify, ignored) */
static enum scan_cache cache_load(const char *path, const unsigned char key[32],
				  hs_database_t **db, size_t ndb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char magic[sizeof(CACHE_MAGIC) - 1];
	unsigned char fkey[32];
	enum scan_cache res = CACHE_STALE;

	if (fd < 0)
		return CACHE_MISS;
	if (read_full(fd, magic, sizeof(magic)) < 0 ||
	    memcmp(magic, CACHE_MAGIC, sizeof(magic)) != 0 ||
	    read_full(fd, fkey, 32) < 0 || memcmp(fkey, key, 32) != 0)
		goto out;
	for (size_t i = 0; i < ndb; i++) {
		uint64_t len;
		char *buf;

		if (read_full(fd, &len, sizeof(len)) < 0 || len > (1ull << 31))
			goto out;
		if (!len)
			continue;
		if (!(buf = malloc(len)))
			goto out;
		if (read_full(fd, buf, len) < 0 ||
		    hs_deserialize_database(buf, len, &db[i]) != HS_SUCCESS) {
			db[i] = NULL;
			free(buf);
			goto out;
		}
		free(buf);
	}
	char extra;
	if (read(fd, &extra, 1) == 0)
		res = CACHE_HIT;
out:
	close(fd);
	if (res != CACHE_HIT)
		for (size_t i = 0; i < ndb; i++)
			if (db[i]) {
				hs_free_database(db[i]);
				db[i] = NULL;
			}
	return res;
}

/* cache_store - write the databases atomically (temporary + rename; a
 * path that is not a regular file is refused, never replaced) */
static int cache_store(const char *path, const unsigned char key[32],
		       hs_database_t **db, size_t ndb)
{
	struct moat_outfile o;
	FILE *f;
	int rc;

	rc = moat_outfile_open(&o, path, 0644, MOAT_OUT_PID_TMP);
	if (rc)
		return rc;
	if (!(f = moat_outfile_fdopen(&o)))
		return -errno;
	rc = -EIO;
	if (fwrite(CACHE_MAGIC, 1, sizeof(CACHE_MAGIC) - 1, f) != sizeof(CACHE_MAGIC) - 1 ||
	    fwrite(key, 1, 32, f) != 32)
		goto out;
	for (size_t i = 0; i < ndb; i++) {
		char *bytes = NULL;
		size_t len = 0;
		uint64_t l64;

		if (db[i] && hs_serialize_database(db[i], &bytes, &len) != HS_SUCCESS)
			goto out;
		l64 = len;
		int ok = fwrite(&l64, sizeof(l64), 1, f) == 1 &&
			 (!len || fwrite(bytes, 1, len, f) == len);
		free(bytes);
		if (!ok)
			goto out;
	}
	if (fflush(f) == 0)
		rc = 0;
out:
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc == 0)
		return moat_outfile_commit(&o, 1);
	moat_outfile_abort(&o);
	return rc;
}

/* compile_all - compile (or load from cache) the per-scope databases and
 * one per header view: a view's unit is scanned only against the rules
 * that read it (a single header database ran every header rule, ~530 in
 * SpamAssassin's set, over every view present) */
static int compile_all(struct scan_db *d, const char *cache_dir, char *err, size_t errsz)
{
	size_t ndb = SDB_N + d->nviews + SCAN_NRDB;
	struct expr_set *es = calloc(ndb, sizeof(*es));
	hs_database_t **db = calloc(ndb, sizeof(*db));
	unsigned char key[32];
	char *path = NULL;
	int rc = 0;

	if (!es || !db || (d->nviews && !(d->vdb = calloc(d->nviews, sizeof(*d->vdb))))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t w = 0; w < ndb; w++)
		if ((rc = build_exprs(d, w, &es[w])) < 0)
			goto out;
	d->cache = CACHE_OFF;
	if (cache_dir) {
		if ((rc = cache_key(es, ndb, key)) < 0)
			goto out;
		if (!(path = cache_path(cache_dir, key))) {
			rc = -ENOMEM;
			goto out;
		}
		d->cache = cache_load(path, key, db, ndb);
		if (d->cache == CACHE_HIT)
			goto out;
	}
	for (size_t w = 0; w < ndb; w++) {
		hs_compile_error_t *ce = NULL;

		if (!es[w].n)
			continue;
		if (hs_compile_multi((const char *const *)es[w].expr, es[w].flags, es[w].ids,
				     (unsigned)es[w].n,
				     w < SDB_N ? scan_dbi_mode((int)w) : HS_MODE_BLOCK,
				     NULL, &db[w], &ce) == HS_SUCCESS)
			continue;
		if (w >= SDB_SKEL && w < SDB_SKEL + SCAN_SKEL_TIERS) { /* the gate: SDB_BODY_GAP reads every line */
			log_warn("scan: skeleton forms: %s", ce && ce->message ? ce->message : "?");
			hs_free_compile_error(ce);
			db[w] = NULL;
		} else if (w >= SDB_N + d->nviews || w == SDB_BODY_ASCII || w == SDB_BODY_ASIDE ||
		    w == SDB_START) {
			/* a relay string's prefilters: without them each
			 * rule's PCRE2 runs on every message, as before; the
			 * ASCII body database: SDB_BODY reads every line; the
			 * start database: confirmation reads the whole unit */
			log_warn("scan: %s: %s", w == SDB_BODY_ASCII || w == SDB_BODY_ASIDE ? "ascii body" :
				 w == SDB_START ? "match starts" : "relay prefilters",
				 ce && ce->message ? ce->message : "?");
			hs_free_compile_error(ce);
			db[w] = NULL;
		} else {
			int x = ce ? ce->expression : -1;
			unsigned id = x >= 0 && (size_t)x < es[w].n ? es[w].ids[x] : 0;
			const struct scan_rule *r = id < d->nrules ? &d->rules[id] : NULL;

			scan_errf(err, errsz, "%s: rule %s: %s", r ? r->src : "?", r ? r->id : "?",
			     ce && ce->message ? ce->message : "compile failed");
			hs_free_compile_error(ce);
			db[w] = NULL;
			rc = -EINVAL;
			goto out;
		}
	}
	/* the ASCII body rules are split over two databases: both or none
	 * (SDB_BODY then reads every line) */
	if ((es[SDB_BODY_ASCII].n && !db[SDB_BODY_ASCII]) || (es[SDB_BODY_ASIDE].n && !db[SDB_BODY_ASIDE])) {
		if (db[SDB_BODY_ASCII])
			hs_free_database(db[SDB_BODY_ASCII]);
		if (db[SDB_BODY_ASIDE])
			hs_free_database(db[SDB_BODY_ASIDE]);
		db[SDB_BODY_ASCII] = db[SDB_BODY_ASIDE] = NULL;
	}
	if (path) {
		int src = cache_store(path, key, db, ndb);
		if (src < 0)
			log_warn("scan: cache write %s: %s", path, strerror(-src));
	}
out:
	if (rc == 0) /* compiled now or not (the cache keeps a failed one as empty) */
		for (int t = 0; t < SCAN_SKEL_TIERS; t++)
			d->skel_off |= es[SDB_SKEL + t].n && !db[SDB_SKEL + t];
	if (db) { /* the db owns them now (db_free), also on failure */
		for (size_t w = 0; w < ndb; w++) {
			if (w < SDB_N)
				d->db[w] = db[w];
			else if (w >= SDB_N + d->nviews)
				d->rdb[w - SDB_N - d->nviews] = db[w];
			else if (d->vdb)
				d->vdb[w - SDB_N] = db[w];
			else if (db[w])
				hs_free_database(db[w]);
		}
	}
	free(db);
	free(path);
	for (size_t w = 0; es && w < ndb; w++)
		expr_set_free(&es[w]);
	free(es);
	return rc;
}

/* exists_cmp - order EXISTS rules by header name, case-insensitively */
static int exists_cmp(const void *a, const void *b, void *arg)
{
	const struct scan_db *d = arg;

	return strcasecmp(d->rules[*(const unsigned *)a].hname,
			  d->rules[*(const unsigned *)b].hname);
}

/* build_exists - the sorted index of header-exists rules */
static int build_exists(struct scan_db *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->nrules; i++)
		n += d->rules[i].scope == SCOPE_EXISTS && !d->rules[i].dead;
	if (!n)
		return 0;
	if (!(d->exists = malloc(n * sizeof(unsigned))))
		return -ENOMEM;
	for (size_t i = 0; i < d->nrules; i++)
		if (d->rules[i].scope == SCOPE_EXISTS && !d->rules[i].dead)
			d->exists[d->nexists++] = (unsigned)i;
	qsort_r(d->exists, d->nexists, sizeof(unsigned), exists_cmp, d);
	return 0;
}

/* view_cmp - order header views case-insensitively */
static int view_cmp(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

/* build_views - the distinct header views the rules read (each scanned
 * once per message), every header rule's index into them, and the list
 * of rules with an [if-unset: ] value */
static int build_views(struct scan_db *d)
{
	size_t n = 0, nu = 0, n_evcap = 0;

	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];

		r->view = -1;
		if (r->scope != SCOPE_HEADER || r->dead)
			continue;
		n += r->hname != NULL;
		nu += r->unset != NULL;
		d->hdr_any |= !r->hname;
		d->nprefilter += r->prefilter != 0;
	}
	for (size_t i = 0; i < d->nrules; i++) {
		if (d->rules[i].dead)
			continue;
		d->nprefilter += d->rules[i].scope != SCOPE_HEADER && d->rules[i].prefilter;
		if (d->rules[i].scope == SCOPE_EVAL) {
			if (scan_grow(&d->evals, d->nevals, &n_evcap, sizeof(unsigned)) < 0)
				return -ENOMEM;
			d->evals[d->nevals++] = (unsigned)i;
		}
	}
	if ((n && !(d->views = calloc(n, sizeof(char *)))) ||
	    (nu && !(d->unsets = calloc(nu, sizeof(unsigned)))))
		return -ENOMEM;
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_HEADER || !r->hname || r->dead)
			continue;
		if (!(d->views[d->nviews++] = strdup(r->hname)))
			return -ENOMEM;
		if (r->unset)
			d->unsets[d->nunsets++] = (unsigned)i;
	}
	if (d->nviews)
		qsort(d->views, d->nviews, sizeof(char *), view_cmp);
	n = 0;
	for (size_t i = 0; i < d->nviews; i++) {
		if (n && strcasecmp(d->views[n - 1], d->views[i]) == 0) {
			free(d->views[i]);
			continue;
		}
		d->views[n++] = d->views[i];
	}
	d->nviews = n;
	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];
		char **v;

		if (r->scope != SCOPE_HEADER || !r->hname || r->dead)
			continue;
		v = bsearch(&r->hname, d->views, d->nviews, sizeof(char *), view_cmp);
		r->view = (int)(v - d->views);
	}
	return 0;
}

/* side_cb - a rule's form fired on the ordinary unit (mark_side, mark_hside) */
static int side_cb(unsigned id, unsigned long long from, unsigned long long to,
		   unsigned flags, void *ctx)
{
	(void)from, (void)to, (void)flags;
	((struct scan_db *)ctx)->rules[id].side = 1;
	return 0;
}

/* mark_hside - the live prefilter score rules of the view ALL (the header
 * block, scanned once a message) whose Hyperscan form fires on an
 * ordinary header block: SpamAssassin's __SUBJ_HAS_TO_*, __TO_EQ_FROM_*
 * and the like, "\nTo: ...([^\n\s>]+)...Subject: ...\1", whose forms
 * without the backreference fire on nearly every message, so that
 * Hyperscan's time on them (a third of the view's database) bought no
 * confirmation less.  They are left out of the view's database and
 * confirmed on every header block (hdr_scan); what they match does not
 * change (docs/content-gate.md, session 19).  The forms are compiled as
 * the view's database compiles them, in one database at each load.  The
 * view keeps them when no other rule would be left in its database; on
 * any failure nothing is marked (only slower). */
static void mark_hside(struct scan_db *d)
{
	static const char block[] =
		"Return-Path: <alice@example.org>\n"
		"Received: from mx.example.com (localhost [127.0.0.1])\n"
		"\tby mx.example.com (Postfix) with ESMTP id 4B2C1D0F\n"
		"\tfor <bob@example.com>; Mon,  2 Sep 2002 10:00:02 +0100 (IST)\n"
		"Received: from mail.example.org (mail.example.org [192.0.2.10]) by mx.example.com "
		"(Postfix) with ESMTP id 4B2C1D0F for <bob@example.com>; Mon,  2 Sep 2002 10:00:00 +0100\n"
		"From: Alice Example <alice@example.org>\n"
		"To: Bob <bob@example.com>\n"
		"Subject: Re: the meeting\n"
		"Date: Mon, 2 Sep 2002 09:59:58 +0100\n"
		"Message-Id: <20020902085958.GA1234@example.org>\n"
		"MIME-Version: 1.0\n"
		"Content-Type: text/plain; charset=us-ascii\n";
	const char *key = "ALL";
	char **vp = d->nviews ? bsearch(&key, d->views, d->nviews, sizeof(char *), view_cmp) : NULL;
	struct expr_set es = { 0 };
	hs_database_t *db = NULL;
	hs_scratch_t *s = NULL;
	hs_compile_error_t *ce = NULL;
	size_t v, np = 0, left = 0, n = 0;

	if (!vp)
		return;
	v = (size_t)(vp - d->views);
	if (build_exprs(d, SDB_N + v, &es) < 0)
		goto out;
	for (size_t i = 0; i < es.n; i++) { /* the prefilter score rules, in place */
		const struct scan_rule *r = &d->rules[es.ids[i]];

		if (r->prefilter && r->action == ACT_SCORE) {
			char *x = es.expr[np];
			unsigned f = es.flags[np], id = es.ids[np];

			es.expr[np] = es.expr[i], es.expr[i] = x;
			es.flags[np] = es.flags[i], es.flags[i] = f;
			es.ids[np] = es.ids[i], es.ids[i] = id;
			np++;
		}
	}
	if (np && hs_compile_multi((const char *const *)es.expr, es.flags, es.ids, (unsigned)np,
				   HS_MODE_BLOCK, NULL, &db, &ce) == HS_SUCCESS &&
	    hs_alloc_scratch(db, &s) == HS_SUCCESS &&
	    hs_scan(db, block, sizeof(block) - 1, 0, s, side_cb, d) == HS_SUCCESS)
		for (size_t i = 0; i < np; i++) {
			n += d->rules[es.ids[i]].side != 0;
			left += !d->rules[es.ids[i]].side;
		}
	left += es.n - np; /* the view's other rules */
	if (n && left && (d->hsides = calloc(n, sizeof(unsigned)))) {
		for (size_t i = 0; i < np; i++)
			if (d->rules[es.ids[i]].side)
				d->hsides[d->nhsides++] = es.ids[i];
	} else {
		for (size_t i = 0; i < np; i++) /* none, or an answer in part */
			d->rules[es.ids[i]].side = 0;
	}
out:
	hs_free_compile_error(ce);
	hs_free_scratch(s);
	hs_free_database(db);
	expr_set_free(&es);
}

/* counts - a rule whose hit can change a verdict by itself: a reject
 * rule, or a score rule with a score */
static int counts(const struct scan_rule *r)
{
	return r->action != ACT_SCORE || r->score != 0;
}

/* mark_dead - every rule that cannot change a verdict: a score rule
 * scoring 0 (SpamAssassin's switch to turn a rule off, and its default
 * for "__" sub-rules) that no meta which counts reads.  A meta's
 * expression names its leaves as "T<index>" with nested metas inlined
 * (scan_sa.c), so the leaves of the metas that count are all that must
 * run besides the rules that count.  Such a rule's hit would add 0 to the
 * score, is not listed (list_rules) and decides nothing, so it is not
 * compiled, matched or evaluated: in SpamAssassin's rule set about 45% of
 * the body rules (the sub-rules of metas scored 0, rules scored 0). */
static void mark_dead(struct scan_db *d)
{
	for (size_t i = 0; i < d->nrules; i++)
		d->rules[i].dead = !counts(&d->rules[i]);
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_META || r->dead || !r->pattern)
			continue;
		for (const char *p = r->pattern; (p = strchr(p, 'T'));) {
			char *end;
			unsigned long k;

			if (p[1] < '0' || p[1] > '9') {
				p++;
				continue;
			}
			k = strtoul(p + 1, &end, 10);
			if (k < d->nrules)
				d->rules[k].dead = 0;
			p = end;
		}
	}
}

/* item_end - past the item that starts e and matches one byte: ".", an
 * escape, or a bracket class without a nested "[" (POSIX classes); NULL
 * when e starts with none */
static const char *item_end(const char *e)
{
	const char *p = e + 1;

	if (e[0] == '.')
		return p;
	if (e[0] == '\\')
		return e[1] ? e + 2 : NULL;
	if (e[0] != '[')
		return NULL;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	for (; *p && *p != ']'; p++) {
		if (*p == '[')
			return NULL;
		if (*p == '\\' && !*++p)
			return NULL;
	}
	return *p == ']' ? p + 1 : NULL;
}

/* one_byte - expr is one item that matches one byte: ".", a class
 * shorthand, or a bracket class (item_end); no anchor, quantifier or
 * anything else */
static int one_byte(const char *e)
{
	const char *q = item_end(e);

	return q && !*q && (e[0] != '\\' || strchr("sSdDwW", e[1]));
}

static int byte_cb(unsigned id, unsigned long long from, unsigned long long to,
		   unsigned flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags;
	*(int *)ctx = 1;
	return 1;
}

/* mark_side - the live uri rules that match an ordinary URI: they match
 * (or are candidates) on nearly every URI, and a match reported inside
 * SDB_URI costs far more than in a small database of their own
 * (SDB_URI_SIDE; docs/content-gate.md, session 16).  Only where a rule
 * runs changes, not what it matches.  An exact rule is tried with PCRE2
 * (what it matches), a prefilter rule as Hyperscan compiles it (what it
 * fires on: one database of them all, compiled once, so a load does not
 * pay a compile per rule).  A scope keeps them when no other rule would
 * be left. */
static void mark_side(struct scan_db *d)
{
	static const char uri[] = "http://www.example.com/";
	const char **e = calloc(d->nrules ? d->nrules : 1, sizeof(*e));
	unsigned *fl = calloc(d->nrules ? d->nrules : 1, sizeof(*fl));
	unsigned *ids = calloc(d->nrules ? d->nrules : 1, sizeof(*ids));
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	hs_database_t *db = NULL;
	hs_scratch_t *s = NULL;
	hs_compile_error_t *ce = NULL;
	size_t np = 0, left = 0;

	if (!e || !fl || !ids || !md)
		goto out; /* no side database: only slower */
	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];
		pcre2_code *re;
		int ec;
		PCRE2_SIZE eo;

		if (r->scope != SCOPE_URI || r->dead || r->bytes)
			continue;
		if (r->prefilter) {
			e[np] = r->pattern;
			fl[np] = r->flags | HS_FLAG_SINGLEMATCH | HS_FLAG_PREFILTER;
			ids[np++] = (unsigned)i;
			continue;
		}
		re = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
				   (r->flags & HS_FLAG_CASELESS ? PCRE2_CASELESS : 0) |
				   (r->flags & HS_FLAG_DOTALL ? PCRE2_DOTALL : 0) |
				   (r->flags & HS_FLAG_MULTILINE ? PCRE2_MULTILINE : 0), &ec, &eo, NULL);
		r->side = re && pcre2_match(re, (PCRE2_SPTR)uri, sizeof(uri) - 1, 0, 0, md, NULL) >= 0;
		pcre2_code_free(re);
	}
	if (np && hs_compile_multi(e, fl, ids, (unsigned)np, HS_MODE_BLOCK, NULL, &db, &ce) == HS_SUCCESS &&
	    hs_alloc_scratch(db, &s) == HS_SUCCESS)
		hs_scan(db, uri, sizeof(uri) - 1, 0, s, side_cb, d);
	hs_free_compile_error(ce);
	hs_free_scratch(s);
	hs_free_database(db);
	for (size_t i = 0; i < d->nrules; i++)
		left += d->rules[i].scope == SCOPE_URI && !d->rules[i].dead && !d->rules[i].bytes &&
			!d->rules[i].side;
	for (size_t i = 0; i < d->nrules && !left; i++)
		d->rules[i].side = 0;
out:
	free(e), free(fl), free(ids);
	pcre2_match_data_free(md);
}

/* mark_gate - the live uri score rules (not in SDB_URI_SIDE, not tested in
 * C) every match of which holds one of a few literals of SCAN_GATE_MIN
 * bytes or more that ordinary URIs do not hold (scan_lits_avoid): they go
 * to SDB_URI_GATED, their literal sets to SDB_URI, and a URI is scanned
 * on SDB_URI_GATED only when one of those fired on it.  Most uri rules
 * look for a host or a path ("://[^/?]+\.ytimg\.com/"); in SDB_URI each
 * one runs an automaton from the "://" of every URI, in SDB_URI_GATED only
 * on the few URIs that hold their literal (docs/content-gate.md, session
 * 17).  Only where a rule runs changes, not what it matches.  Reject
 * rules stay (the first reject reported must not change), and so do rules
 * Hyperscan reads as UTF-8 (its case folding there is not bytewise). */
static void mark_gate(struct scan_db *d)
{
	static const char *const ordinary[] = { "http://www.example.com/", "https://www.example.com/",
						"mailto:user@example.com", NULL };

	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_URI || r->dead || r->bytes || r->side || r->action != ACT_SCORE ||
		    (r->flags & (HS_FLAG_UTF8 | HS_FLAG_UCP)))
			continue;
		r->gate = scan_lits_avoid(r->pattern, !!(r->flags & HS_FLAG_CASELESS), SCAN_GATE_MIN,
					  ordinary); /* NULL (also on ENOMEM): ungated */
	}
}

/* byte_set - the 256 bytes expr matches alone with flags, as Hyperscan
 * compiles it: a unit matches it when it holds one of them; NULL when it
 * does not compile */
static unsigned char *byte_set(const char *expr, unsigned flags)
{
	hs_database_t *db = NULL;
	hs_scratch_t *s = NULL;
	hs_compile_error_t *ce = NULL;
	unsigned char *set = NULL;

	if (hs_compile(expr, flags | HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK, NULL, &db, &ce) !=
	    HS_SUCCESS) {
		hs_free_compile_error(ce);
		return NULL;
	}
	if (hs_alloc_scratch(db, &s) == HS_SUCCESS && (set = calloc(256, 1))) {
		for (int b = 0; b < 256; b++) {
			char c = (char)b;
			int m = 0;
			hs_error_t e = hs_scan(db, &c, 1, 0, s, byte_cb, &m);

			if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED) {
				free(set);
				set = NULL;
				break;
			}
			set[b] = (unsigned char)m;
		}
	}
	hs_free_scratch(s);
	hs_free_database(db);
	return set;
}

/* mark_bytes - the live exact score rules of body, rawbody and uri that
 * match one byte (one_byte) are tested in C (scan.c): such a rule matches
 * on almost every unit (SpamAssassin's __NONEMPTY_BODY "\S",
 * __L_BODY_8BITS "[\x80-\xff]"), and a match reported inside the large
 * databases costs far more than the rule (docs/content-gate.md, session
 * 16).  A scope keeps them compiled when no other rule would be left in
 * its database.  -ENOMEM or 0. */
static int mark_bytes(struct scan_db *d)
{
	static const enum scan_scope sc[] = { SCOPE_BODY, SCOPE_RAWBODY, SCOPE_URI };
	size_t left[3] = { 0 }, nb = 0;

	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];
		int k = r->scope == SCOPE_BODY ? 0 : r->scope == SCOPE_RAWBODY ? 1 :
			r->scope == SCOPE_URI ? 2 : -1;

		if (k < 0 || r->dead)
			continue;
		if (!r->prefilter && r->action == ACT_SCORE && !(r->flags & HS_FLAG_UTF8) &&
		    one_byte(r->pattern) && (r->bytes = byte_set(r->pattern, r->flags)))
			nb++;
		else
			left[k]++;
	}
	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];

		for (int k = 0; k < 3 && r->bytes; k++)
			if (r->scope == sc[k] && !left[k]) {
				free(r->bytes);
				r->bytes = NULL;
				nb--;
			}
	}
	if (nb && !(d->brules = calloc(nb, sizeof(*d->brules))))
		return -ENOMEM;
	for (size_t i = 0; i < d->nrules; i++)
		if (d->rules[i].bytes)
			d->brules[d->nbrules++] = (unsigned)i;
	return 0;
}

/* run_form - expr is "^C{N}" or "^C{N,}", C one item that matches one
 * byte (one_byte): C copied to item (size isz) and N, or 0 */
static int run_form(const char *e, char *item, size_t isz, unsigned long *n)
{
	const char *p = e + 1, *q = e[0] == '^' ? item_end(p) : NULL;
	char *end;

	if (!q || *q != '{' || q[1] < '0' || q[1] > '9' || (size_t)(q - p) >= isz)
		return 0;
	*n = strtoul(q + 1, &end, 10);
	if (*end == ',')
		end++;
	if (*end != '}' || end[1])
		return 0;
	memcpy(item, p, (size_t)(q - p));
	item[q - p] = '\0';
	return one_byte(item);
}

/* mark_runs - the live exact score full rules "^C{N}" with /m, C a class
 * of one byte without \n, are tested in C on the raw stream (scan.c,
 * scan_runs): a line whose first N bytes are all in C.  Hyperscan runs
 * SpamAssassin's __LONGLINE "^[^\r\n]{998}" as a bounded repeat that
 * costs about 3 cycles a byte of every message, most of the raw
 * stream's time (docs/content-gate.md, session 19); a line's length is
 * found with memchr.  At most SCAN_RUNS_MAX; the scope keeps them
 * compiled when no other rule would be left in its database. */
static void mark_runs(struct scan_db *d)
{
	size_t left = 0;
	char item[256];
	unsigned long n;

	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];

		if (r->scope != SCOPE_RAW || r->dead)
			continue;
		if (d->nruns < SCAN_RUNS_MAX && !r->prefilter && r->action == ACT_SCORE &&
		    (r->flags & HS_FLAG_MULTILINE) && !(r->flags & (HS_FLAG_UTF8 | HS_FLAG_UCP)) &&
		    run_form(r->pattern, item, sizeof(item), &n) && n >= 2 && n <= 1ul << 24 &&
		    (r->run = byte_set(item, r->flags & ~HS_FLAG_MULTILINE))) {
			if (r->run['\n']) { /* a match could start inside the run */
				free(r->run);
				r->run = NULL;
				left++;
				continue;
			}
			r->run_n = (unsigned)n;
			d->runs[d->nruns++] = (unsigned)i;
		} else {
			left++;
		}
	}
	if (!left) { /* the raw stream would have no database */
		for (size_t k = 0; k < d->nruns; k++) {
			free(d->rules[d->runs[k]].run);
			d->rules[d->runs[k]].run = NULL;
		}
		d->nruns = 0;
	}
}

/* gap_candidate - a live exact score body rule, not one-byte nor aside,
 * read byte by byte (no UTF-8 or Unicode classes) */
static int gap_candidate(const struct scan_rule *r)
{
	return r->scope == SCOPE_BODY && !r->dead && !r->bytes && !r->prefilter &&
	       r->action == ACT_SCORE && !(r->flags & (HS_FLAG_UTF8 | HS_FLAG_UCP)) &&
	       !scan_aside(r->pattern);
}

/* mark_gap - the body rules with gaps ("V[_\W]{0,3}[i1!|l][_\W]{0,3}...",
 * SpamAssassin's __DRUGS_*) go to SDB_BODY_GAP, scanned on a line only
 * where one of their skeleton forms (scan_skel) fires on the line's
 * skeleton: they have no literal, so inside SDB_BODY_ASCII their automata
 * ran on every byte (docs/content-gate.md, session 17).  The few bytes
 * outside [A-Za-z0-9] their classes name (scan_skel_bytes: '!', '|', '@',
 * look-alikes past 0x7f) make the tiers: a rule's form for tier t assumes
 * the line lacks the bytes of the tiers not in t ("[i1!|l]" is "[1ILil]"
 * on a line without '!' and '|').  A form that needs fewer than
 * SCAN_GAP_MINLEN letters or digits would not gate: its tier is open (its
 * lines read SDB_BODY_GAP), and a rule whose form for lines without any of
 * those bytes is such stays where it was.  Score rules only (a reject is
 * reported in rule order); on ENOMEM a rule stays where it was. */
#define SCAN_GAP_MINLEN 3
static void mark_gap(struct scan_db *d)
{
	unsigned char lack[256] = { 0 }, tier[256] = { 0 };
	int n = 0, len, nascii = 0;

	for (size_t i = 0; i < d->nrules; i++) {
		struct scan_rule *r = &d->rules[i];
		int ci = (r->flags & HS_FLAG_CASELESS) != 0;
		char *s;

		if (gap_candidate(r) && (s = scan_skel(r->pattern, ci, NULL, &len))) {
			n += scan_skel_bytes(r->pattern, ci, lack) == 0;
			free(s);
		}
	}
	for (int c = 0; c < 256; c++) {
		if (lack[c])
			tier[c] = (unsigned char)(1u << (c < 0x80 && nascii < 3 ? nascii++ : 3));
		d->skel[c] = (unsigned char)(((c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') ?
					      SCAN_SK_ALNUM : 0) | tier[c] << 1);
	}
	for (size_t i = 0; i < d->nrules && n; i++) {
		struct scan_rule *r = &d->rules[i];
		unsigned char weak[SCAN_SKEL_TIERS] = { 0 };
		int ok = 1, ci = (r->flags & HS_FLAG_CASELESS) != 0;
		char *s;

		if (!gap_candidate(r) || !(s = scan_skel(r->pattern, ci, NULL, &len)))
			continue;
		free(s);
		if (!(r->skel = calloc(SCAN_SKEL_TIERS, sizeof(char *))))
			continue;
		for (int t = 0; t < SCAN_SKEL_TIERS && ok; t++) {
			unsigned char l[256];

			for (int c = 0; c < 256; c++)
				l[c] = lack[c] && !(tier[c] & t);
			r->skel[t] = scan_skel(r->pattern, ci, l, &len);
			if (!r->skel[t] && len == SCAN_SKEL_NONE)
				ok = 0; /* ENOMEM */
			else if (r->skel[t] && len < SCAN_GAP_MINLEN)
				weak[t] = 1;
		}
		if (!ok || weak[0]) { /* where it was */
			for (int t = 0; t < SCAN_SKEL_TIERS; t++)
				free(r->skel[t]);
			free(r->skel);
			r->skel = NULL;
			continue;
		}
		r->gap = 1;
		for (int t = 0; t < SCAN_SKEL_TIERS; t++) {
			d->skel_open[t] |= weak[t];
			if (weak[t]) {
				free(r->skel[t]);
				r->skel[t] = NULL;
			}
		}
	}
}

/* build_metas - every meta compiled for scan_meta_eval (scan_meta.c) */
static int build_metas(struct scan_db *d, char *err, size_t errsz)
{
	int rc = scan_meta_build(d);

	if (rc < 0)
		scan_errf(err, errsz, "meta %s: %s", rc == -ENOMEM ? "expressions" :
			  d->rules[d->meta_bad].id, strerror(-rc));
	return rc;
}

/* stream_size - bytes of stream state a message needs */
static size_t stream_size(const struct scan_db *d)
{
	size_t total = 0;

	for (int w = 0; w < SDB_N; w++) {
		size_t s = 0;

		if (d->db[w] && scan_dbi_mode(w) == HS_MODE_STREAM && hs_stream_size(d->db[w], &s) == HS_SUCCESS)
			total += s;
	}
	return total;
}

/* scan_db_load - native rules, then SpamAssassin, then compile or cache */
int scan_db_load(const struct scan_load_opts *o, struct scan_db **out,
		 char *err, size_t errsz)
{
	struct scan_db *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	atomic_init(&d->refs, 1);
	d->threshold = o->threshold > 0 ? o->threshold : 5.0;
	if (o->rules_path && (rc = load_native(d, o->rules_path, err, errsz)) < 0)
		goto fail;
	if (o->sa_dir && (rc = scan_sa_load(d, o->sa_dir, o->cache_dir, err, errsz)) < 0)
		goto fail;
	if (!o->keep_all)
		mark_dead(d);
	if ((rc = mark_bytes(d)) < 0 || (mark_runs(d), 0) || (mark_gap(d), 0) || (mark_side(d), mark_gate(d), 0) ||
	    (rc = build_exists(d)) < 0 || (rc = build_views(d)) < 0 || (mark_hside(d), 0) ||
	    (rc = build_metas(d, err, errsz)) < 0 || (rc = compile_all(d, o->cache_dir, err, errsz)) < 0)
		goto fail;
	if (!(d->rflag = calloc(d->nrules ? d->nrules : 1, 1))) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];

		d->rflag[i] = (uint8_t)((r->prefilter ? SCAN_RF_PREFILTER : 0) |
					(r->scope == SCOPE_HEADER ? SCAN_RF_HEADER : 0) |
					(r->action == ACT_REJECT ? SCAN_RF_REJECT : 0));
	}
	if (o->sa_dir) {
		/* the relay parse's and the evals' own expressions: at load,
		 * not in the first messages */
		if (sa_relays_compile() < 0)
			log_warn("scan: an expression of the Received parse did not compile");
		scan_eval_compile();
	}
	d->stream_size = stream_size(d);
	d->gen = atomic_fetch_add(&load_gen, 1) + 1;
	*out = d;
	return 0;
fail:
	if (rc == -ENOMEM && err && !err[0])
		scan_errf(err, errsz, "out of memory");
	db_free(d);
	return rc;
}

/* scan_db_ref - one more user of d */
struct scan_db *scan_db_ref(struct scan_db *d)
{
	if (d)
		atomic_fetch_add(&d->refs, 1);
	return d;
}

/* scan_db_unref - one user less; the last frees */
void scan_db_unref(struct scan_db *d)
{
	if (d && atomic_fetch_sub(&d->refs, 1) == 1)
		db_free(d);
}
