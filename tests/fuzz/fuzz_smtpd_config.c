/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_smtpd_config.c - moat-smtpd's configuration parser
 * (dataplane/smtp/config.c: libinih and config_set's value parsers: DNSBL
 * zone lists, networks, addresses, limits) on arbitrary text through
 * config_load_string(), as config_load() reads a file.  Invariants: a
 * refusal says why, naming the file; an accepted configuration has a local
 * domain (moat is never an open relay) and a hostname for its greeting.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtpd_config c;
	char err[512];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	config_defaults(&c);
	err[0] = 0;
	if (config_load_string(&c, "fuzz.conf", text, err, sizeof(err)) != 0) {
		if (strncmp(err, "fuzz.conf", 9))
			abort();
	} else if (c.n_local_domains == 0 || !c.hostname[0] || !c.authserv_id[0]) {
		abort();
	}
	free(text);
	return 0;
}
