/* sa_import.c - the SpamAssassin import alone, without the Hyperscan
 * compile (minutes for Debian's whole set on a loaded machine): the
 * coverage figures of moat-scan --sa-report and, with -v, every rule
 * imported (NAME<TAB>kind) and skipped (NAME<TAB>[scored] reason).
 *   sa_import [-v] DIR [CACHE]   (CACHE: remembered compile verdicts) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"
#include "scan_rules.h"

int main(int argc, char **argv)
{
	static const char *const kind[SA_KIND_N] = { "exact", "prefilter", "meta", "eval" };
	struct scan_db *d = calloc(1, sizeof(*d));
	int v = argc > 1 && strcmp(argv[1], "-v") == 0;
	const char *dir = argc > 1 + v ? argv[1 + v] : NULL;
	const char *cache = argc > 2 + v ? argv[2 + v] : NULL;
	char err[512];

	if (!d || !dir) {
		fprintf(stderr, "usage: sa_import [-v] DIR [CACHE]\n");
		return 2;
	}
	if (scan_sa_load(d, dir, cache, err, sizeof(err)) < 0) {
		fprintf(stderr, "sa_import: %s\n", err);
		return 2;
	}
	printf("scored %u of %u; without network/Bayes %u of %u; regex %u of %u\n",
	       d->sa_scored_imported, d->sa_scored_total, d->sa_local_imported, d->sa_local_total,
	       d->sa_regex_scored_imported, d->sa_regex_scored_total);
	for (int k = 0; k < SA_KIND_N; k++)
		printf("%s %u\n", kind[k], d->sa_kind[k]);
	if (v) {
		for (size_t i = 0; i < d->nrules; i++)
			printf("I\t%s\t%d\t%g\n", d->rules[i].id, d->rules[i].scope, d->rules[i].score);
		for (size_t i = 0; i < d->nskips; i++)
			printf("S\t%s\t%s%s\n", d->skips[i].id, d->skips[i].scored ? "[scored] " : "",
			       d->skips[i].reason);
	}
	return 0;
}
