/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * codes.h - DNSBL answers that are never listings (DESIGN.md "Verdicts"):
 * anything outside 127.0.0.0/8, and per source a set of error codes
 * (default 127.255.255.0/24 and 127.0.0.1; dnswl.org uses 127.0.X.255).
 *
 * Sources apply them where DNS semantics need it: a name whose every A
 * record is an error code is an explicit "not listed" (an .exclude
 * listing), so a wildcard above it cannot list it once policy drops the
 * error answer.
 */
#ifndef MOAT_CODES_H
#define MOAT_CODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOAT_CODES_MAX 16

struct moat_codes {
	size_t n;
	struct {
		uint32_t addr, mask; /* host byte order */
	} r[MOAT_CODES_MAX];
};

/* moat_codes_default - 127.255.255.0/24 and 127.0.0.1/32. */
void moat_codes_default(struct moat_codes *c);
/* moat_codes_parse - comma-separated "a.b.c.d[/n]" entries; an octet "X"
 * matches any value ("127.0.X.255").  "" = only the outside-127/8 rule.
 * 0 or -EINVAL. */
int moat_codes_parse(struct moat_codes *c, const char *list);
/* moat_code_is_error - code (host order) is never a listing. */
bool moat_code_is_error(const struct moat_codes *c, uint32_t code);

#endif /* MOAT_CODES_H */
