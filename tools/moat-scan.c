/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * moat-scan.c - the content gate's rules from the command line: check a
 * rules file as moat-smtpd would load it, list the SpamAssassin rules an
 * import skips and why, and scan message files with the real filter code.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scan.h"

/* usage - the --help text */
static void usage(FILE *o)
{
	fprintf(o,
		"usage: moat-scan [OPTIONS] check\n"
		"       moat-scan [OPTIONS] skipped\n"
		"       moat-scan [OPTIONS] scan FILE...\n"
		"       moat-scan -s DIR --sa-report [--json]\n"
		"\n"
		"  check      load the rules, print counts and SpamAssassin coverage\n"
		"  skipped    list the SpamAssassin rules not imported, with the reason\n"
		"  scan       scan message files (LF or CRLF) and print each verdict\n"
		"\n"
		"  -r, --rules FILE       native rules file (scan_rules)\n"
		"  -s, --sa-dir DIR       SpamAssassin .cf directory (scan_sa_dir)\n"
		"  -c, --cache DIR        compiled database cache (scan_cache_dir)\n"
		"  -t, --threshold N      score threshold (scan_threshold, default 5)\n"
		"      --sa-report        SpamAssassin coverage: scored rules imported by\n"
		"                         kind (exact, prefilter+confirm, meta, eval) and\n"
		"                         the skipped ones by reason\n"
		"      --json             --sa-report as JSON\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n"
		"\n"
		"Exit status: 0 ok (scan: every message accepted), 1 a message refused,\n"
		"2 usage or load error (the message names file:line and the rule).\n");
}

/* scan_file - feed one file through the filter, CRLF line ends */
static int scan_file(const char *path)
{
	FILE *f = fopen(path, "r");
	struct filter_msg *m;
	struct filter_verdict v;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		fprintf(stderr, "moat-scan: %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (!(m = scan_filter_ops.open())) {
		fclose(f);
		fprintf(stderr, "moat-scan: out of memory\n");
		return 2;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		size_t l = (size_t)n;

		if (line[l - 1] == '\n') { /* as on the wire: CRLF */
			l--;
			if (l && line[l - 1] == '\r')
				l--;
			scan_filter_ops.feed(m, line, l);
			scan_filter_ops.feed(m, "\r\n", 2);
		} else {
			scan_filter_ops.feed(m, line, l);
		}
	}
	free(line);
	fclose(f);
	int rc = scan_filter_ops.finish(m, &v);
	scan_filter_ops.close(m);
	if (rc < 0) {
		fprintf(stderr, "moat-scan: %s: scan failed: %s\n", path, strerror(-rc));
		return 2;
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
static void sa_report(const struct scan_db *d, int json)
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
	if (json) {
		printf("{\"sa_files\": %u, \"sa_scored_total\": %u, \"sa_scored_imported\": %u, "
		       "\"sa_regex_scored_total\": %u, \"sa_regex_scored_imported\": %u, "
		       "\"header_views\": %zu, \"confirm_rules\": %u, \"by_kind\": {",
		       d->sa_files, d->sa_scored_total, d->sa_scored_imported,
		       d->sa_regex_scored_total, d->sa_regex_scored_imported, d->nviews,
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "sa-report", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'J' },
		{ 0 },
	};
	struct scan_load_opts o = { 0 };
	char err[512] = "";
	struct scan_db *d;
	int c, rc = 0, report = 0, json = 0;

	log_init("moat-scan", 0);
	log_set_level(LOG_LVL_WARN);
	while ((c = getopt_long(argc, argv, "r:s:c:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'r': o.rules_path = optarg; break;
		case 's': o.sa_dir = optarg; break;
		case 'c': o.cache_dir = optarg; break;
		case 't': o.threshold = strtod(optarg, NULL); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("moat-scan %s\n", MOAT_VERSION); return 0;
		case 'R': report = 1; break;
		case 'J': json = 1; break;
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
	if (strcmp(cmd, "check") && strcmp(cmd, "skipped") && strcmp(cmd, "scan")) {
		fprintf(stderr, "moat-scan: unknown command '%s'\n", cmd);
		return 2;
	}
	if (scan_db_load(&o, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "moat-scan: %s\n", err);
		return 2;
	}
	if (!strcmp(cmd, "check")) {
		size_t per[SCOPE_EVAL + 1] = { 0 };

		for (size_t i = 0; i < d->nrules; i++)
			per[d->rules[i].scope]++;
		printf("rules %zu (raw %zu, header %zu, body %zu, meta %zu, exists %zu, eval %zu)\n"
		       "threshold %.1f\ncache %s\nstate_bytes_streams %zu\n",
		       d->nrules, per[SCOPE_RAW], per[SCOPE_HEADER], per[SCOPE_BODY],
		       per[SCOPE_META], per[SCOPE_EXISTS], per[SCOPE_EVAL], d->threshold,
		       d->cache == CACHE_HIT ? "hit" : d->cache == CACHE_MISS ? "miss" :
		       d->cache == CACHE_STALE ? "stale (rewritten)" : "off", d->stream_size);
		if (o.sa_dir)
			printf("sa_files %u\nsa_imported %u\nsa_skipped %zu\n"
			       "sa_scored_imported %u of %u\n",
			       d->sa_files, d->sa_imported, d->nskips, d->sa_scored_imported,
			       d->sa_scored_total);
	} else if (!strcmp(cmd, "skipped")) {
		for (size_t i = 0; i < d->nskips; i++)
			printf("%s\t%s\t%s%s\n", d->skips[i].src, d->skips[i].id,
			       d->skips[i].scored ? "[scored] " : "", d->skips[i].reason);
	} else {
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
