/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_controld_config.c - moat-controld's configuration parser
 * (control/config.c: libinih, every key's value parser, the checks across
 * keys) on arbitrary text through cfg_load_string(), as cfg_load() reads a
 * file.  Invariants: a refusal always says why (a non-empty message naming
 * the file), an accepted configuration has every zone named.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct moat_config c;
	char err[CFG_ERRLEN];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	err[0] = 0;
	if (cfg_load_string(&c, "fuzz.conf", text, err) != 0) {
		if (strncmp(err, "fuzz.conf", 9) || !memchr(err, 0, sizeof(err)))
			abort();
	} else {
		for (int i = 0; i < c.nzones; i++)
			if (!c.zone[i].name[0])
				abort();
	}
	free(text);
	return 0;
}
