/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_scan_rules.c - the content gate's rule loaders on arbitrary text:
 * the native rules file (dataplane/smtp/scan_rules.c) or, built with
 * -DFUZZ_SA, a SpamAssassin .cf file (scan_sa.c: conditionals, rule kinds,
 * tflags, meta expressions, replace_tags) through scan_db_load(), with the
 * Hyperscan compile of whatever was accepted.  The text is written to a
 * private temporary directory removed after every input.  Invariants: a
 * refused file says why; an accepted database has a threshold and releases
 * cleanly (ASan: no leak, no double free).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[] = "/tmp/moat-fuzz-rules-XXXXXX", path[64], err[512];
	struct scan_db *d = NULL;
	FILE *f;
	int r;

	if (!mkdtemp(dir))
		abort();
#ifdef FUZZ_SA
	snprintf(path, sizeof(path), "%s/50_fuzz.cf", dir);
	struct scan_load_opts o = { .sa_dir = dir, .threshold = 5 };
#else
	snprintf(path, sizeof(path), "%s/fuzz.rules", dir);
	struct scan_load_opts o = { .rules_path = path };
#endif
	f = fopen(path, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	err[0] = 0;
	r = scan_db_load(&o, &d, err, sizeof(err));
	unlink(path);
	rmdir(dir);
	if (r == 0) {
		if (!d)
			abort();
		scan_db_unref(d);
	} else if (d || !err[0]) {
		abort(); /* refused without a reason */
	}
	return 0;
}
