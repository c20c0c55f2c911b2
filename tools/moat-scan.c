/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat-scan.c - the content gate's rules from the command line: check a
 * rules file as moat-smtpd would load it, list the SpamAssassin rules an
 * import skips and why, and scan message files with the real filter code.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "scan.h"
#include "scan_feed.h"
#include "scan_ucache.h"

/* usage - the --help text */
static void usage(FILE *o)
{
	fprintf(o,
		"usage: moat-scan [OPTIONS] check\n"
		"       moat-scan [OPTIONS] skipped\n"
		"       moat-scan [OPTIONS] rules\n"
		"       moat-scan [OPTIONS] [--json] scan FILE...\n"
		"       moat-scan -s DIR --sa-report [--json]\n"
		"\n"
		"  check      load the rules, print counts and SpamAssassin coverage\n"
		"  skipped    list the SpamAssassin rules not imported, with the reason\n"
		"  rules      list the rules loaded: id, scope, score, source\n"
		"  scan       scan message files (LF or CRLF) and print each verdict\n"
		"\n"
		"  -r, --rules FILE       native rules file (scan_rules)\n"
		"  -s, --sa-dir DIR       SpamAssassin .cf directory (scan_sa_dir)\n"
		"  -c, --cache DIR        compiled database cache (scan_cache_dir)\n"
		"  -t, --threshold N      score threshold (scan_threshold, default 5)\n"
		"  -j, --json             scan: one JSON object per file (every scored\n"
		"                         rule that matched, score, verdict, microseconds);\n"
		"                         --sa-report: the report as JSON\n"
		"      --no-unit-cache    scan: scan every body line and URI, also those an\n"
		"                         earlier message held (the per-thread unit cache,\n"
		"                         scan_ucache: the same verdicts, for comparison)\n"
		"      --sa-report        SpamAssassin coverage: scored rules imported by\n"
		"                         kind (exact, prefilter+confirm, meta, eval) and\n"
		"                         the skipped ones by reason\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n"
		"\n"
		"Exit status: 0 ok (scan: every message accepted), 1 a message refused,\n"
		"2 usage or load error (the message names file:line and the rule).\n");
}

static int json;            /* --json: machine-readable scan output */
static double json_threshold; /* the real threshold while the db's is lifted */

/* json_str - print s as a JSON string */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* json_verdict - {"file","reject","score","rules":[...],"truncated","us"};
 * the rules come from the X-Moat-Scan header, which lists them all as the
 * db's threshold is lifted out of reach in this mode (a reject rule, which
 * stops the scan, is reported alone) */
static void json_verdict(const char *path, const struct filter_verdict *v, double us)
{
	const char *r = v->reject ? v->rule : strstr(v->header, " rules=");
	int trunc = 0;

	printf("{\"file\": ");
	json_str(path);
	printf(", \"reject\": %d, \"score\": %.3f, \"rules\": [",
	       v->reject || v->score >= json_threshold, v->score);
	if (r && !v->reject)
		r += strlen(" rules=");
	if (r && strcmp(r, "none")) {
		char *dup = strdup(r), *save = NULL;
		int first = 1;

		for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t;
		     t = strtok_r(NULL, ",", &save)) {
			if (!strcmp(t, "...")) {
				trunc = 1;
				continue;
			}
			printf("%s", first ? "" : ", ");
			json_str(t);
			first = 0;
		}
		free(dup);
	}
	printf("], \"truncated\": %d, \"us\": %.1f}\n", trunc, us);
}

/* scan_file - feed one file through the filter, CRLF line ends */
static int scan_file(const char *path)
{
	struct timespec t0, t1;
	FILE *f = fopen(path, "r");
	struct filter_msg *m;
	struct filter_verdict v;

	if (!f) {
		fprintf(stderr, "moat-scan: %s: %s\n", path, strerror(errno));
		return 2;
	}
	/* a message in one or two reads rather than 4 KiB at a time (one
	 * buffer for every file: one file is open at a time) */
	static char iobuf[64 * 1024];

	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	if (!(m = scan_filter_ops.open())) {
		fclose(f);
		fprintf(stderr, "moat-scan: out of memory\n");
		return 2;
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	scan_feed_file(m, f);
	fclose(f);
	int rc = scan_filter_ops.finish(m, &v);
	scan_filter_ops.close(m);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	if (rc < 0) {
		fprintf(stderr, "moat-scan: %s: scan failed: %s\n", path, strerror(-rc));
		return 2;
	}
	if (json) {
		json_verdict(path, &v, (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
					       (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
		return v.reject || v.score >= json_threshold;
	}
	if (v.reject)
		printf("%s: reject 550 5.7.1 %s\n", path, v.reply);
	else
		printf("%s: accept %s: %s\n", path, v.header_name, v.header);
	return v.reject ? 1 : 0;
}

/* skip_class - the reason class a skipped rule is counted under */
static const char *skip_class(const char *why)
{
	static const struct { const char *needle, *cls; } map[] = {
		{ "uses ", "meta over a rule not imported" },
		{ "eval:", "eval test (Perl code, not built in)" },
		{ "mimeheader", "mimeheader (MIME part headers)" },
		{ "pseudo-header", "pseudo-header from relay/trust parsing" },
		{ "modifier", "header modifier (:host/:domain/:ip)" },
		{ "no prefilter: body units", "needs body confirmation (not wired)" },
		{ "no prefilter: a full", "full rule Hyperscan cannot match exactly" },
		{ "prefilter:", "regex neither exact nor prefilter" },
		{ "pcre2:", "regex PCRE2 refuses" },
		{ "hit counts", "meta over hit counts" },
		{ "arithmetic meta", "arithmetic meta" },
		{ "meta", "meta (other)" },
		{ "exists:", "exists: on a pseudo-header" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strstr(why, map[i].needle))
			return map[i].cls;
	return "other";
}

/* sa_report - the coverage figures of an import, as text or JSON */
static void sa_report(const struct scan_db *d, int as_json)
{
	static const char *const kind[SA_KIND_N] = { "exact", "prefilter", "meta", "eval" };
	const char *cls[64];
	unsigned cnt[64] = { 0 }, ncls = 0, skipped = 0;

	for (size_t i = 0; i < d->nskips; i++) {
		const char *c;
		unsigned k;

		if (!d->skips[i].scored)
			continue;
		skipped++;
		c = skip_class(d->skips[i].reason);
		for (k = 0; k < ncls && strcmp(cls[k], c) != 0; k++)
			;
		if (k == ncls && ncls < 64)
			cls[ncls++] = c;
		if (k < 64)
			cnt[k]++;
	}
	if (as_json) {
		printf("{\"sa_files\": %u, \"sa_scored_total\": %u, \"sa_scored_imported\": %u, "
		       "\"sa_local_scored_total\": %u, \"sa_local_scored_imported\": %u, "
		       "\"sa_regex_scored_total\": %u, \"sa_regex_scored_imported\": %u, "
		       "\"header_views\": %zu, \"confirm_rules\": %u, \"by_kind\": {",
		       d->sa_files, d->sa_scored_total, d->sa_scored_imported,
		       d->sa_local_total, d->sa_local_imported, d->sa_regex_scored_total, d->sa_regex_scored_imported, d->nviews,
		       d->nprefilter);
		for (int k = 0; k < SA_KIND_N; k++)
			printf("%s\"%s\": %u", k ? ", " : "", kind[k], d->sa_kind[k]);
		printf("}, \"skipped\": %u, \"skipped_by_reason\": {", skipped);
		for (unsigned k = 0; k < ncls; k++)
			printf("%s\"%s\": %u", k ? ", " : "", cls[k], cnt[k]);
		printf("}}\n");
		return;
	}
	printf("SpamAssassin rules: %u files\n", d->sa_files);
	printf("scored rules imported  %u of %u (%.1f%%)\n", d->sa_scored_imported,
	       d->sa_scored_total,
	       d->sa_scored_total ? 100.0 * d->sa_scored_imported / d->sa_scored_total : 0);
	printf("  without network/Bayes %u of %u (%.1f%%) (not tflags net/learn, nor metas "
	       "over them:\n                         what score set 0 with -L can fire)\n",
	       d->sa_local_imported, d->sa_local_total,
	       d->sa_local_total ? 100.0 * d->sa_local_imported / d->sa_local_total : 0);
	printf("scored regex rules     %u of %u (%.1f%%) (body, rawbody, header, uri, full)\n",
	       d->sa_regex_scored_imported, d->sa_regex_scored_total,
	       d->sa_regex_scored_total ?
	       100.0 * d->sa_regex_scored_imported / d->sa_regex_scored_total : 0);
	printf("imported, by kind:\n");
	for (int k = 0; k < SA_KIND_N; k++)
		printf("  %-22s %u\n", k == SA_KIND_PREFILTER ? "prefilter+confirm" :
		       k == SA_KIND_EXACT ? "exact (Hyperscan)" : kind[k], d->sa_kind[k]);
	printf("skipped (scored): %u\n", skipped);
	for (unsigned k = 0; k < ncls; k++)
		printf("  %-40s %u\n", cls[k], cnt[k]);
	printf("header views scanned per message: %zu; rules confirmed by PCRE2: %u\n",
	       d->nviews, d->nprefilter);
}

/* main - parse options, load the rules, run the command */
int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rules", required_argument, NULL, 'r' },
		{ "sa-dir", required_argument, NULL, 's' },
		{ "cache", required_argument, NULL, 'c' },
		{ "threshold", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "sa-report", no_argument, NULL, 'R' },
		{ "no-unit-cache", no_argument, NULL, 'U' },
		{ 0 },
	};
	struct scan_load_opts o = { 0 };
	char err[512] = "";
	struct scan_db *d;
	int c, rc = 0, report = 0;

	log_init("moat-scan", 0);
	log_set_level(LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "r:s:c:t:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rules_path = optarg; break;
		case 's': o.sa_dir = optarg; break;
		case 'c': o.cache_dir = optarg; break;
		case 't': o.threshold = strtod(optarg, NULL); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moat-scan %s\n", MOAT_VERSION); return 0;
		case 'R': report = 1; break;
		case 'U': scan_ucache_enable(0); break;
		default: usage(stderr); return 2;
		}
	}
	if (report) {
		if (!o.sa_dir || optind < argc) {
			usage(stderr);
			return 2;
		}
		if (scan_db_load(&o, &d, err, sizeof(err)) < 0) {
			fprintf(stderr, "moat-scan: %s\n", err);
			return 2;
		}
		sa_report(d, json);
		scan_db_unref(d);
		return 0;
	}
	if (optind >= argc || (!o.rules_path && !o.sa_dir)) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind++];
	if (strcmp(cmd, "check") && strcmp(cmd, "skipped") && strcmp(cmd, "scan") &&
	    strcmp(cmd, "rules")) {
		fprintf(stderr, "moat-scan: unknown command '%s'\n", cmd);
		return 2;
	}
	if (scan_db_load(&o, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "moat-scan: %s\n", err);
		return 2;
	}
	if (!strcmp(cmd, "check")) {
		size_t per[SCOPE_EVAL + 1] = { 0 }, dead[SCOPE_EVAL + 1] = { 0 }, ndead = 0;

		for (size_t i = 0; i < d->nrules; i++) {
			per[d->rules[i].scope]++;
			dead[d->rules[i].scope] += d->rules[i].dead != 0;
			ndead += d->rules[i].dead != 0;
		}
		printf("rules %zu (raw %zu, header %zu, body %zu, rawbody %zu, uri %zu, meta %zu, "
		       "exists %zu, eval %zu)\nthreshold %.1f\ncache %s\nstate_bytes_streams %zu\n",
		       d->nrules, per[SCOPE_RAW], per[SCOPE_HEADER], per[SCOPE_BODY],
		       per[SCOPE_RAWBODY], per[SCOPE_URI], per[SCOPE_META], per[SCOPE_EXISTS],
		       per[SCOPE_EVAL], d->threshold,
		       d->cache == CACHE_HIT ? "hit" : d->cache == CACHE_MISS ? "miss" :
		       d->cache == CACHE_STALE ? "stale (rewritten)" : "off", d->stream_size);
		printf("rules_dead %zu (raw %zu, header %zu, body %zu, rawbody %zu, uri %zu, "
		       "meta %zu, exists %zu, eval %zu)\n", ndead, dead[SCOPE_RAW], dead[SCOPE_HEADER],
		       dead[SCOPE_BODY], dead[SCOPE_RAWBODY], dead[SCOPE_URI], dead[SCOPE_META],
		       dead[SCOPE_EXISTS], dead[SCOPE_EVAL]);
		if (o.sa_dir)
			printf("sa_files %u\nsa_imported %u\nsa_skipped %zu\n"
			       "sa_scored_imported %u of %u\n",
			       d->sa_files, d->sa_imported, d->nskips, d->sa_scored_imported,
			       d->sa_scored_total);
	} else if (!strcmp(cmd, "skipped")) {
		for (size_t i = 0; i < d->nskips; i++)
			printf("%s\t%s\t%s%s\n", d->skips[i].src, d->skips[i].id,
			       d->skips[i].scored ? "[scored] " : "", d->skips[i].reason);
	} else if (!strcmp(cmd, "rules")) {
		static const char *const scope[] = { "raw", "header", "body", "meta", "exists", "rawbody", "uri", "eval" };

		for (size_t i = 0; i < d->nrules; i++) {
			const struct scan_rule *r = &d->rules[i];

			printf("%s\t%s\t%g\t%s\n", r->id,
			       (size_t)r->scope < sizeof(scope) / sizeof(*scope) ? scope[r->scope] : "other",
			       r->action == ACT_SCORE ? r->score : INFINITY, r->src);
		}
	} else {
		if (json) { /* every matched rule in the header: no score verdict */
			json_threshold = d->threshold;
			d->threshold = HUGE_VAL;
		}
		scan_db_install(d);
		d = NULL;
		for (int i = optind; i < argc; i++) {
			int r = scan_file(argv[i]);

			rc = r > rc ? r : rc;
		}
		scan_db_install(NULL);
	}
	scan_db_unref(d);
	return rc;
}
