/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan-unitbench.c - where the content gate's body, rawbody and uri
 * Hyperscan time goes: renders message files with the real filter (the
 * units captured through scan_unit_tap), then times each scope's database
 * over the captured units, and each rule of those scopes compiled alone
 * with the flags it has in the database, printing the costliest rules.
 *
 *   scan-unitbench -s SA_DIR [-c CACHE] [-r RULES] [-n TOP] [-R REPEAT]
 *                  [-x N]... [-X WORD,WORD]... [-g | -w] [-a] [-o] FILE...
 *
 *   -n TOP   the TOP costliest rules alone (0: skip the per-rule pass)
 *   -R N     best of N passes (3)
 *   -x N     the database without its N costliest rules
 *   -X WORDS the database without the rules whose id holds a word
 *   -g       each rule with required literals (scan_lits, 3..8 bytes)
 *            replaced by them, PCRE2 confirming: Hyperscan and total time
 *   -w       the same with exact rules' bounded repeats widened instead
 *   -a       the ASCII-line body database against the full one
 *   -M PCT   what groups of rules cost inside the database (body: the
 *            ASCII forms on ASCII lines), a group costing PCT% or more
 *            split again (-m WAYS, 8)
 *   -K KIND  only scope KIND (0 body, 1 rawbody, 2 uri)
 *   -D DIR   write the units and the rules to DIR (units, rules) and stop
 *   -o       every unit on the database the filter uses, in the filter's
 *            order, per message grouped by kind, and by kind (caches)
 *
 * Not installed; a measuring aid (docs/content-gate.md, "Speed").
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"
#include "scan.h"
#include "scan_lits.h"
#include "scan_rules.h"
#include "scan_render.h"
#include "scan_feed.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

struct unit {
	int kind;
	unsigned msg;
	char *p;
	size_t n;
};

static struct unit *units;
static size_t nunits, ucap;
static unsigned cur_msg;

/* tap - keep a copy of every unit */
static void tap(int kind, const char *p, size_t n)
{
	if (nunits == ucap) {
		ucap = ucap ? ucap * 2 : 4096;
		units = realloc(units, ucap * sizeof(*units));
		if (!units)
			exit(2);
	}
	units[nunits].kind = kind;
	units[nunits].msg = cur_msg;
	units[nunits].n = n;
	if (!(units[nunits].p = malloc(n ? n : 1)))
		exit(2);
	memcpy(units[nunits].p, p, n);
	nunits++;
}

/* feed_file - one message through the filter, CRLF line ends */
static void feed_file(const char *path)
{
	FILE *f = fopen(path, "r");
	struct filter_msg *m;
	struct filter_verdict v;

	if (!f || !(m = scan_filter_ops.open())) {
		fprintf(stderr, "scan-unitbench: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	scan_feed_file(m, f);
	fclose(f);
	scan_filter_ops.finish(m, &v);
	scan_filter_ops.close(m);
}

static unsigned long long nmatch;

static int count_cb(unsigned id, unsigned long long from, unsigned long long to,
		    unsigned flags, void *ctx)
{
	(void)id, (void)from, (void)to, (void)flags;
	(*(unsigned *)ctx)++;
	nmatch++;
	return 0;
}

/* gate: each rule of a scope either as in the database, or replaced by
 * its required literals (scan_lits) and confirmed by PCRE2 */
struct gate_ctx {
	unsigned char *cand; /* per rule: fired in this unit */
	unsigned *list;
	size_t n;
};

static int gate_cb(unsigned id, unsigned long long from, unsigned long long to,
		   unsigned flags, void *ctx)
{
	struct gate_ctx *g = ctx;

	(void)from, (void)to, (void)flags;
	if (!g->cand[id]) {
		g->cand[id] = 1;
		g->list[g->n++] = id;
	}
	return 0;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* time_db - seconds to scan every unit of kind k on db, best of rep;
 * *fired: units where something matched */
static double time_db(const hs_database_t *db, int k, int rep, hs_scratch_t **s,
		      unsigned *fired)
{
	double best = 1e30;

	if (hs_alloc_scratch(db, s) != HS_SUCCESS)
		exit(2);
	for (int r = 0; r < rep; r++) {
		double t0 = now();

		*fired = 0;
		for (size_t i = 0; i < nunits; i++) {
			unsigned c = 0;

			if (units[i].kind != k)
				continue;
			hs_scan(db, units[i].p, (unsigned)units[i].n, 0, *s, count_cb, &c);
			*fired += c > 0;
		}
		double t = now() - t0;
		best = t < best ? t : best;
	}
	return best;
}

struct cost {
	size_t id;
	double t;
	unsigned fired;
};

static int cost_cmp(const void *a, const void *b)
{
	double x = ((const struct cost *)a)->t, y = ((const struct cost *)b)->t;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* excluded - rule id holds one of the comma-separated words of ex */
static int excluded(const char *id, const char *ex)
{
	char w[128];

	for (const char *p = ex; p && *p;) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);

		snprintf(w, sizeof(w), "%.*s", (int)n, p);
		if (n && strstr(id, w))
			return 1;
		p = c ? c + 1 : NULL;
	}
	return 0;
}

/* time_without - scope k's rules cs[from..nr) (ex: all but those
 * excluded) compiled together, timed over the units */
static void time_without(const struct scan_db *d, int k, const struct cost *cs, size_t nr,
			 size_t from, const char *ex, int rep, hs_scratch_t **s)
{
	static const char *const kname[] = { "body", "rawbody", "uri" };
	const char **e = calloc(nr, sizeof(char *));
	unsigned *fl = calloc(nr, sizeof(unsigned)), *ids = calloc(nr, sizeof(unsigned));
	size_t ne = 0;
	hs_database_t *rest = NULL;
	hs_compile_error_t *ce = NULL;

	for (size_t i = from; i < nr; i++) {
		const struct scan_rule *r = &d->rules[cs[i].id];

		if (ex && excluded(r->id, ex))
			continue;
		e[ne] = r->pattern;
		fl[ne] = r->flags | HS_FLAG_SINGLEMATCH | (r->prefilter ? HS_FLAG_PREFILTER : 0);
		ids[ne++] = (unsigned)cs[i].id;
	}
	double t0 = now();
	if (ne && hs_compile_multi(e, fl, ids, (unsigned)ne, HS_MODE_BLOCK, NULL, &rest, &ce) ==
		  HS_SUCCESS) {
		double tc = now() - t0;
		unsigned f;
		double t = time_db(rest, k, rep, s, &f);

		if (ex)
			printf("%s: without the %zu rules matching %s: %.1f ms (compile %.1f s)\n",
			       kname[k], nr - ne, ex, t * 1e3, tc);
		else
			printf("%s: without the costliest %zu: %.1f ms (compile %.1f s)\n", kname[k],
			       from, t * 1e3, tc);
		hs_free_database(rest);
	}
	hs_free_compile_error(ce);
	free(e), free(fl), free(ids);
}


static int mark_cb(unsigned id, unsigned long long from, unsigned long long to,
		   unsigned flags, void *ctx)
{
	(void)from, (void)to, (void)flags;
	((unsigned char *)ctx)[id] = 1;
	return 0;
}

/* ascii_db - scope k's rules rewritten for ASCII-only units: that
 * database over those units and the full one over the rest, against the
 * full one over all; and whether each rule fires on the same units */
static void ascii_db(const struct scan_db *d, int k, enum scan_scope sc, int rep, hs_scratch_t **s)
{
	const char **e = calloc(d->nrules, sizeof(char *)), **f = calloc(d->nrules, sizeof(char *));
	unsigned *fl = calloc(d->nrules, sizeof(unsigned)), *ids = calloc(d->nrules, sizeof(unsigned));
	unsigned *fl2 = calloc(d->nrules, sizeof(unsigned)), *ids2 = calloc(d->nrules, sizeof(unsigned));
	unsigned char *m1 = calloc(d->nrules, 1), *m2 = calloc(d->nrules, 1);
	size_t ne = 0, nf = 0, gone = 0, diff = 0;
	hs_database_t *adb = NULL, *fdb = NULL;
	hs_compile_error_t *ce = NULL;

	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];
		unsigned flg = r->flags | HS_FLAG_SINGLEMATCH | (r->prefilter ? HS_FLAG_PREFILTER : 0);

		if (r->scope != sc || r->dead)
			continue;
		f[nf] = r->pattern, fl2[nf] = flg, ids2[nf++] = (unsigned)i;
		int oom;

		if (!(e[ne] = scan_ascii_only(r->pattern, &oom))) {
			gone++;
			continue;
		}
		fl[ne] = flg, ids[ne++] = (unsigned)i;
	}
	if (hs_compile_multi(e, fl, ids, (unsigned)ne, HS_MODE_BLOCK, NULL, &adb, &ce) != HS_SUCCESS ||
	    hs_compile_multi(f, fl2, ids2, (unsigned)nf, HS_MODE_BLOCK, NULL, &fdb, &ce) != HS_SUCCESS) {
		printf("ascii: compile: %s (expression %d)\n", ce ? ce->message : "?", ce ? ce->expression : -1);
		return;
	}
	if (hs_alloc_scratch(adb, s) != HS_SUCCESS || hs_alloc_scratch(fdb, s) != HS_SUCCESS)
		exit(2);
	double best = 1e30;
	for (int r = 0; r < rep; r++) {
		double t0 = now();

		for (size_t i = 0; i < nunits; i++) {
			int hi = 0;
			unsigned c = 0;

			if (units[i].kind != k)
				continue;
			for (size_t j = 0; j < units[i].n && !hi; j++)
				hi = (unsigned char)units[i].p[j] >= 0x80;
			hs_scan(hi ? fdb : adb, units[i].p, (unsigned)units[i].n, 0, *s, count_cb, &c);
		}
		double t = now() - t0;
		best = t < best ? t : best;
	}
	for (size_t i = 0; i < nunits; i++) { /* the same rules fire? */
		int hi = 0;

		if (units[i].kind != k)
			continue;
		for (size_t j = 0; j < units[i].n && !hi; j++)
			hi = (unsigned char)units[i].p[j] >= 0x80;
		if (hi)
			continue;
		memset(m1, 0, d->nrules), memset(m2, 0, d->nrules);
		hs_scan(adb, units[i].p, (unsigned)units[i].n, 0, *s, mark_cb, m1);
		hs_scan(fdb, units[i].p, (unsigned)units[i].n, 0, *s, mark_cb, m2);
		diff += memcmp(m1, m2, d->nrules) != 0;
	}
	printf("ascii: %zu rules rewritten, %zu cannot match ASCII; ASCII db on ASCII units + full "
	       "db on the rest %.1f ms; units firing differently %zu\n", ne, gone, best * 1e3, diff);
	for (size_t i = 0; i < ne; i++)
		free((char *)e[i]);
	hs_free_database(adb), hs_free_database(fdb);
	free(e), free(f), free(fl), free(ids), free(fl2), free(ids2), free(m1), free(m2);
}

/* unit_db - the database the filter scans unit u with */
static const hs_database_t *unit_db(const struct scan_db *d, const struct unit *u)
{
	static const int kdb[] = { SDB_BODY, SDB_RAWBODY, SDB_URI };
	int hi = 0;

	for (size_t j = 0; u->kind == 0 && j < u->n && !hi; j++)
		hi = (unsigned char)u->p[j] >= 0x80;
	if (u->kind == 0 && !hi && d->db[SDB_BODY_ASCII])
		return d->db[SDB_BODY_ASCII];
	return d->db[kdb[u->kind]];
}

/* time_order - every unit on the database the filter uses, in the order
 * the filter scans them (kinds interleaved), against each message's units
 * grouped by kind, against each kind over all messages: what the order
 * costs (caches) */
static void time_order(const struct scan_db *d, int rep, hs_scratch_t **s)
{
	double best[3] = { 1e30, 1e30, 1e30 };

	for (int i = 0; i < SDB_N; i++)
		if (d->db[i] && hs_alloc_scratch(d->db[i], s) != HS_SUCCESS)
			exit(2);
	for (int r = 0; r < rep; r++) {
		unsigned c = 0;
		double t0 = now();

		for (size_t i = 0; i < nunits; i++)
			hs_scan(unit_db(d, &units[i]), units[i].p, (unsigned)units[i].n, 0, *s, count_cb, &c);
		double t = now() - t0;
		best[0] = t < best[0] ? t : best[0];
		t0 = now();
		for (size_t i = 0; i < nunits;) {
			size_t e = i;

			while (e < nunits && units[e].msg == units[i].msg)
				e++;
			for (int k = 0; k < 3; k++)
				for (size_t j = i; j < e; j++)
					if (units[j].kind == k)
						hs_scan(unit_db(d, &units[j]), units[j].p, (unsigned)units[j].n, 0,
							*s, count_cb, &c);
			i = e;
		}
		t = now() - t0;
		best[1] = t < best[1] ? t : best[1];
		t0 = now();
		for (int k = 0; k < 3; k++)
			for (size_t j = 0; j < nunits; j++)
				if (units[j].kind == k)
					hs_scan(unit_db(d, &units[j]), units[j].p, (unsigned)units[j].n, 0, *s,
						count_cb, &c);
		t = now() - t0;
		best[2] = t < best[2] ? t : best[2];
	}
	printf("order: as scanned %.1f ms; per message by kind %.1f ms; per kind %.1f ms\n",
	       best[0] * 1e3, best[1] * 1e3, best[2] * 1e3);
}

/* marginal - what groups of scope k's rules cost inside the whole
 * database (-M): the database without a group against the whole, the
 * groups split -m ways and the costly ones split again down to single
 * rules; body: the ASCII forms over the ASCII-only lines (SDB_BODY_ASCII) */
struct mg {
	const char **e;
	unsigned *fl, *ids;
	size_t n;
	int k, ascii, rep;
	hs_scratch_t **s;
};

static int unit_ascii(const struct unit *u)
{
	for (size_t j = 0; j < u->n; j++)
		if ((unsigned char)u->p[j] >= 0x80)
			return 0;
	return 1;
}

/* mg_time - the rules of g->e not in [a, b) (b == a: all), over the units */
static double mg_time(struct mg *g, size_t a, size_t b, double *tc)
{
	const char **e = calloc(g->n, sizeof(char *));
	unsigned *fl = calloc(g->n, sizeof(unsigned)), *ids = calloc(g->n, sizeof(unsigned));
	size_t ne = 0;
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;
	double best = 1e30;

	for (size_t i = 0; i < g->n; i++)
		if (i < a || i >= b)
			e[ne] = g->e[i], fl[ne] = g->fl[i], ids[ne++] = g->ids[i];
	double t0 = now();
	if (hs_compile_multi(e, fl, ids, (unsigned)ne, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
		printf("marginal: compile: %s\n", ce ? ce->message : "?");
		exit(2);
	}
	*tc = now() - t0;
	if (hs_alloc_scratch(db, g->s) != HS_SUCCESS)
		exit(2);
	int lk = getenv("UNITBENCH_LOCK") ? open(getenv("UNITBENCH_LOCK"), O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;

	if (lk >= 0) /* the timing alone under the bench lock, not the compile */
		flock(lk, LOCK_EX);
	for (int r = 0; r < g->rep; r++) {
		t0 = now();
		for (size_t i = 0; i < nunits; i++) {
			unsigned c = 0;

			if (units[i].kind != g->k || (g->ascii && !unit_ascii(&units[i])))
				continue;
			hs_scan(db, units[i].p, (unsigned)units[i].n, 0, *g->s, count_cb, &c);
		}
		double t = now() - t0;
		best = t < best ? t : best;
	}
	if (lk >= 0)
		close(lk);
	hs_free_database(db);
	free(e), free(fl), free(ids);
	return best;
}

static void mg_split(struct mg *g, const struct scan_db *d, size_t a, size_t b, double all,
		     int ways, double min, int depth)
{
	size_t n = b - a, step = (n + (size_t)ways - 1) / (size_t)ways;

	for (size_t x = a; x < b; x += step) {
		size_t y = x + step < b ? x + step : b;
		double tc, t = mg_time(g, x, y, &tc), m = all - t;

		printf("%*s[%zu,%zu) %zu rules: %+.1f ms (%.1f%%)%s%s\n", depth * 2, "", x, y, y - x,
		       m * 1e3, 100 * m / all, y - x == 1 ? " " : "",
		       y - x == 1 ? d->rules[g->ids[x]].id : "");
		if (y - x == 1)
			printf("%*s  /%s/ %s\n", depth * 2, "", g->e[x],
			       d->rules[g->ids[x]].prefilter ? "P" : "E");
		fflush(stdout);
		if (m >= min && y - x > 1)
			mg_split(g, d, x, y, all, ways, min, depth + 1);
	}
}

static void marginal(const struct scan_db *d, int k, enum scan_scope sc, int rep, hs_scratch_t **s,
		     int ways, double minpct)
{
	struct mg g = { calloc(d->nrules, sizeof(char *)), calloc(d->nrules, sizeof(unsigned)),
			calloc(d->nrules, sizeof(unsigned)), 0, k, sc == SCOPE_BODY, rep, s };

	for (size_t i = 0; i < d->nrules; i++) {
		const struct scan_rule *r = &d->rules[i];
		int oom;

		if (r->scope != sc || r->dead)
			continue;
		if (g.ascii) {
			if (!(g.e[g.n] = scan_ascii_only(r->pattern, &oom)))
				continue;
		} else {
			g.e[g.n] = r->pattern;
		}
		g.fl[g.n] = r->flags | HS_FLAG_SINGLEMATCH | (r->prefilter ? HS_FLAG_PREFILTER : 0);
		g.ids[g.n++] = (unsigned)i;
	}
	double tc, all = mg_time(&g, 0, 0, &tc);

	printf("marginal %s%s: %zu rules, whole %.1f ms (compile %.1f s)\n",
	       g.ascii ? "ascii " : "", sc == SCOPE_BODY ? "body" : sc == SCOPE_URI ? "uri" : "rawbody",
	       g.n, all * 1e3, tc);
	mg_split(&g, d, 0, g.n, all, ways, all * minpct / 100, 1);
	free(g.e), free(g.fl), free(g.ids);
}

/* dump - the captured units (kind, length, bytes) to DIR/units and each
 * scope's rules as compiled (body: also the ASCII forms) to DIR/rules,
 * one "scope<TAB>ascii<TAB>id<TAB>flags<TAB>name<TAB>expression" a line (-D) */
static void dump(const struct scan_db *d, const char *dir)
{
	static const enum scan_scope kscope[] = { SCOPE_BODY, SCOPE_RAWBODY, SCOPE_URI };
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/units", dir);
	if (!(f = fopen(path, "w")))
		exit(2);
	for (size_t i = 0; i < nunits; i++) {
		uint32_t h[3] = { (uint32_t)units[i].kind, units[i].msg, (uint32_t)units[i].n };

		fwrite(h, sizeof(h), 1, f);
		fwrite(units[i].p, 1, units[i].n, f);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/rules", dir);
	if (!(f = fopen(path, "w")))
		exit(2);
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < d->nrules; i++) {
			const struct scan_rule *r = &d->rules[i];
			unsigned fl = r->flags | HS_FLAG_SINGLEMATCH | (r->prefilter ? HS_FLAG_PREFILTER : 0);
			int oom;

			if (r->scope != kscope[k] || r->dead)
				continue;
			fprintf(f, "%d\t0\t%zu\t%u\t%s\t%s\n", k, i, fl, r->id, r->pattern);
			if (k == 0) {
				char *a = scan_ascii_only(r->pattern, &oom);

				if (a)
					fprintf(f, "%d\t1\t%zu\t%u\t%s\t%s\n", k, i, fl, r->id, a);
				free(a);
			}
		}
	fclose(f);
}

int main(int argc, char **argv)
{
	static const char *const kname[] = { "body", "rawbody", "uri" };
	static const int kdb[] = { SDB_BODY, SDB_RAWBODY, SDB_URI };
	static const enum scan_scope kscope[] = { SCOPE_BODY, SCOPE_RAWBODY, SCOPE_URI };
	struct scan_load_opts o = { 0 };
	char err[512] = "";
	struct scan_db *d;
	hs_scratch_t *s = NULL;
	int mways = 8, only = -1;
	const char *dumpdir = NULL;
	double mpct = -1;
	int c, top = 25, rep = 3, gate = 0, widen = 0, nx = 0, ascii = 0, order = 0;
	const char *excl[4];
	int drop[8] = { -1 }, nd = 0;

	log_init("scan-unitbench", 0);
	log_set_level(LOG_LVL_WARN);
	while ((c = getopt(argc, argv, "s:c:r:n:R:x:X:gwaoM:m:K:D:")) != -1) {
		switch (c) {
		case 's': o.sa_dir = optarg; break;
		case 'c': o.cache_dir = optarg; break;
		case 'r': o.rules_path = optarg; break;
		case 'n': top = atoi(optarg); break;
		case 'R': rep = atoi(optarg); break;
		case 'g': gate = 1; break;
		case 'w': gate = widen = 1; break;
		case 'a': ascii = 1; break;
		case 'o': order = 1; break;
		case 'M': mpct = atof(optarg); break;
		case 'm': mways = atoi(optarg); break;
		case 'K': only = atoi(optarg); break;
		case 'D': dumpdir = optarg; break;
		case 'X': if (nx < 4) excl[nx++] = optarg; break;
		case 'x': if (nd < 7) drop[nd++] = atoi(optarg), drop[nd] = -1; break;
		default:
			fprintf(stderr, "usage: scan-unitbench -s SA_DIR [-c CACHE] [-r RULES] [-n TOP] "
				"[-R N] [-x N]... [-X WORDS]... [-g | -w] [-a] [-o] FILE...\n");
			return 2;
		}
	}
	if (scan_db_load(&o, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "scan-unitbench: %s\n", err);
		return 2;
	}
	scan_db_install(scan_db_ref(d));
	scan_unit_tap = tap;
	for (int i = optind; i < argc; i++, cur_msg++)
		feed_file(argv[i]);
	scan_unit_tap = NULL;
	scan_db_install(NULL);
	if (dumpdir) {
		dump(d, dumpdir);
		return 0;
	}

	if (order)
		time_order(d, rep, &s);
	for (int k = 0; k < 3; k++) {
		const hs_database_t *db = d->db[kdb[k]];
		size_t nu = 0, bytes = 0, nr = 0;
		unsigned fired;

		if (!db || (only >= 0 && k != only))
			continue;
		size_t nascii = 0, bascii = 0;

		for (size_t i = 0; i < nunits; i++) {
			int hi = 0;

			if (units[i].kind != k)
				continue;
			nu++, bytes += units[i].n;
			for (size_t j = 0; j < units[i].n && !hi; j++)
				hi = (unsigned char)units[i].p[j] >= 0x80;
			nascii += !hi, bascii += hi ? 0 : units[i].n;
		}
		printf("%s: %zu of %zu units (%zu of %zu bytes) without a byte >= 0x80\n", kname[k],
		       nascii, nu, bascii, bytes);
		double whole = time_db(db, k, rep, &s, &fired);
		printf("%s: %zu units, %zu bytes, %u messages; whole db %.1f ms "
		       "(%.0f ns/unit, %.2f ns/byte)\n",
		       kname[k], nu, bytes, cur_msg, whole * 1e3, whole * 1e9 / (double)(nu ? nu : 1),
		       whole * 1e9 / (double)(bytes ? bytes : 1));
		/* per-call overhead: each message's units joined by "\n" in
		 * one call, and one call of one byte per unit */
		{
			char *buf = malloc(bytes + nu + 1);
			double best = 1e30, best1 = 1e30;

			for (int r = 0; r < rep; r++) {
				double t0 = now();

				for (size_t i = 0; i < nunits;) {
					size_t l = 0;
					unsigned msg = units[i].msg, cc = 0;

					for (; i < nunits && units[i].msg == msg; i++) {
						if (units[i].kind != k)
							continue;
						memcpy(buf + l, units[i].p, units[i].n);
						l += units[i].n;
						buf[l++] = '\n';
					}
					if (l)
						hs_scan(db, buf, (unsigned)l, 0, s, count_cb, &cc);
				}
				double t = now() - t0;
				best = t < best ? t : best;
				t0 = now();
				for (size_t i = 0; i < nunits; i++) {
					unsigned cc = 0;

					if (units[i].kind == k)
						hs_scan(db, "x", 1, 0, s, count_cb, &cc);
				}
				t = now() - t0;
				best1 = t < best1 ? t : best1;
			}
			printf("%s: joined per message %.1f ms; one byte per unit %.1f ms\n",
			       kname[k], best * 1e3, best1 * 1e3);
			free(buf);
		}
		for (int ml = 0; ml <= 8 && gate; ml += ml ? 1 : 3) { /* 0: as built; 3, 4, 5 */
			const char **ex = calloc(d->nrules, sizeof(char *));
			unsigned *fl = calloc(d->nrules, sizeof(unsigned)), *ids = calloc(d->nrules, sizeof(unsigned));
			pcre2_code **re = calloc(d->nrules, sizeof(*re));
			char **own = calloc(d->nrules, sizeof(char *));
			struct gate_ctx g = { calloc(d->nrules, 1), calloc(d->nrules, sizeof(unsigned)), 0 };
			pcre2_match_data *md = pcre2_match_data_create(1, NULL);
			double *ctime = calloc(d->nrules, sizeof(double));
			unsigned *ccnt = calloc(d->nrules, sizeof(unsigned)), *cok = calloc(d->nrules, sizeof(unsigned));
			size_t ne = 0, ngated = 0;
			hs_database_t *gdb = NULL;
			hs_compile_error_t *ce = NULL;

			for (size_t i = 0; i < d->nrules; i++) {
				const struct scan_rule *r = &d->rules[i];
				char *lit = NULL;

				if (r->scope != kscope[k] || r->dead)
					continue;
				re[i] = r->re;
				fl[ne] = r->flags | HS_FLAG_SINGLEMATCH | (r->prefilter ? HS_FLAG_PREFILTER : 0);
				ex[ne] = r->pattern;
				if (widen && ml && !r->prefilter) {
					int exact;

					lit = scan_widen(r->pattern, 0, &exact);
					if (lit && !strcmp(lit, r->pattern))
						free(lit), lit = NULL;
				} else if (widen) {
					lit = NULL;
				} else if (ml) {
					lit = scan_lits(r->pattern, !!(r->flags & HS_FLAG_CASELESS), (size_t)ml);
				}
				if (lit) {
					if (!re[i]) {
						int ec;
						PCRE2_SIZE eo;
						uint32_t opt = (r->flags & HS_FLAG_CASELESS ? PCRE2_CASELESS : 0) |
							       (r->flags & HS_FLAG_DOTALL ? PCRE2_DOTALL : 0) |
							       (r->flags & HS_FLAG_MULTILINE ? PCRE2_MULTILINE : 0);

						re[i] = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
								      opt, &ec, &eo, NULL);
						if (re[i])
							pcre2_jit_compile(re[i], PCRE2_JIT_COMPLETE);
					}
					if (re[i]) {
						own[i] = lit;
						ex[ne] = lit;
						fl[ne] = widen ? r->flags | HS_FLAG_SINGLEMATCH | HS_FLAG_PREFILTER :
							 (r->flags & HS_FLAG_CASELESS) | HS_FLAG_SINGLEMATCH;
						ngated++;
						if (top < 0)
							printf("    gate %s /%s/ -> /%s/\n", r->id, r->pattern, lit);
					} else {
						free(lit);
					}
				}
				ids[ne++] = (unsigned)i;
			}
			if (hs_compile_multi(ex, fl, ids, (unsigned)ne, HS_MODE_BLOCK, NULL, &gdb, &ce) != HS_SUCCESS) {
				printf("%s: min %d: compile: %s\n", kname[k], ml, ce ? ce->message : "?");
				continue;
			}
			if (hs_alloc_scratch(gdb, &s) != HS_SUCCESS)
				exit(2);
			double bh = 1e30, bt = 1e30;
			unsigned long long ncand = 0, nconf = 0;

			for (int rr = 0; rr < rep; rr++) {
				double th = 0, t0 = now();

				ncand = nconf = 0;
				for (size_t i = 0; i < nunits; i++) {
					if (units[i].kind != k)
						continue;
					double a = now();
					hs_scan(gdb, units[i].p, (unsigned)units[i].n, 0, s, gate_cb, &g);
					th += now() - a;
					for (size_t j = 0; j < g.n; j++) {
						unsigned id = g.list[j];

						g.cand[id] = 0;
						if (!re[id])
							continue; /* exact */
						ncand++;
						double c0 = now();
						int ok = pcre2_match(re[id], (PCRE2_SPTR)units[i].p, units[i].n, 0, 0, md,
								     NULL) >= 0;
						nconf += ok;
						if (!rr) {
							ctime[id] += now() - c0;
							ccnt[id]++;
							cok[id] += ok;
						}
					}
					g.n = 0;
				}
				double t = now() - t0;
				bh = th < bh ? th : bh;
				bt = t < bt ? t : bt;
			}
			if (ml == 0) {
				for (int t = 0; t < 12; t++) {
					size_t bi = 0;

					for (size_t i = 0; i < d->nrules; i++)
						if (ctime[i] > ctime[bi])
							bi = i;
					if (ctime[bi] <= 0)
						break;
					char *lit = scan_lits(d->rules[bi].pattern,
							      !!(d->rules[bi].flags & HS_FLAG_CASELESS), 3);
					printf("  confirm %6.2f ms %5u cand %4u ok %s %.100s lits %s\n",
					       ctime[bi] * 1e3, ccnt[bi], cok[bi], d->rules[bi].id,
					       d->rules[bi].pattern, lit ? lit : "-");
					free(lit);
					ctime[bi] = 0;
				}
			}
			printf("%s: min literal %d: %zu rules gated; hs %.1f ms, hs+confirm %.1f ms "
			       "(%llu candidates, %llu confirmed)\n",
			       kname[k], ml, ngated, bh * 1e3, bt * 1e3, ncand, nconf);
			hs_free_database(gdb);
			for (size_t i = 0; i < d->nrules; i++) {
				if (own[i]) {
					free(own[i]);
					if (re[i] != d->rules[i].re)
						pcre2_code_free(re[i]);
				}
			}
			free(ex), free(fl), free(ids), free(re), free(own), free(g.cand), free(g.list);
			pcre2_match_data_free(md);
			free(ctime), free(ccnt), free(cok);
		}
		if (ascii)
			ascii_db(d, k, kscope[k], rep, &s);
		if (mpct >= 0) {
			marginal(d, k, kscope[k], rep, &s, mways, mpct);
			continue;
		}
		if (!top && !nd && !nx)
			continue;
		struct cost *cs = calloc(d->nrules, sizeof(*cs));
		double sum = 0;

		for (size_t i = 0; i < d->nrules; i++) {
			const struct scan_rule *r = &d->rules[i];
			hs_database_t *one = NULL;
			hs_compile_error_t *ce = NULL;
			unsigned fl = r->flags | HS_FLAG_SINGLEMATCH |
				      (r->prefilter ? HS_FLAG_PREFILTER : 0);

			if (r->scope != kscope[k] || r->dead)
				continue;
			if (hs_compile(r->pattern, fl, HS_MODE_BLOCK, NULL, &one, &ce) != HS_SUCCESS) {
				fprintf(stderr, "%s: %s\n", r->id, ce ? ce->message : "?");
				hs_free_compile_error(ce);
				continue;
			}
			cs[nr].id = i;
			cs[nr].t = time_db(one, k, rep, &s, &cs[nr].fired);
			sum += cs[nr].t;
			nr++;
			hs_free_database(one);
		}
		qsort(cs, nr, sizeof(*cs), cost_cmp);
		/* the database without its costliest rules, or without the
		 * rules whose id holds one of -X's words: what they cost
		 * together with the rest */
		for (int x = 0; drop[x] >= 0; x++)
			time_without(d, k, cs, nr, (size_t)drop[x], NULL, rep, &s);
		for (int x = 0; x < nx; x++)
			time_without(d, k, cs, nr, 0, excl[x], rep, &s);
		printf("%s: %zu rules alone sum %.1f ms\n", kname[k], nr, sum * 1e3);
		for (size_t i = 0; i < nr && (int)i < top; i++) {
			const struct scan_rule *r = &d->rules[cs[i].id];

			char *lit = scan_lits(r->pattern, !!(r->flags & HS_FLAG_CASELESS), 3);

			printf("  %7.2f ms %5.1f%% fired %6u %s%s %s /%s/ %s\n", cs[i].t * 1e3,
			       100 * cs[i].t / sum, cs[i].fired, r->prefilter ? "P" : "E", lit ? "G" : "-",
			       r->id, r->pattern, lit ? lit : "");
			free(lit);
		}
		free(cs);
	}
	hs_free_scratch(s);
	scan_db_unref(d);
	return 0;
}
