/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * prefix.h - an address prefix as text and back, and the order and
 * containment every table, source and filter agrees on.
 *
 * struct moat_prefix (lib/listing.h) is the one prefix type of moat:
 * moat-controld's sources and control socket, the verdict table, moatctl's
 * tools and moat-smtpd's configuration all parse and print it here, so
 * "192.0.2.0/24" means the same to each of them.
 */
#ifndef MOAT_PREFIX_H
#define MOAT_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listing.h"

/* longest text moat_prefix_str writes: INET6_ADDRSTRLEN + "/128" */
#define MOAT_PREFIX_STRLEN 50

/* moat_prefix_parse - "a.b.c.d[/n]" or "x::y[/n]" into *out; without /n a
 * host route (/32, /128).  n is decimal digits only, at most the family's
 * length.  Returns:
 *   0        out holds the prefix;
 *   -EINVAL  s is NULL, not an IPv4/IPv6 address, or its length is missing,
 *            not a number or too long for the family; out is zeroed;
 *   -EDOM    the address has bits set past the length ("192.0.2.1/24"):
 *            out holds the prefix with those bits cleared, so a caller that
 *            reads the text as "the network of this address" may go on,
 *            and one that wants the canonical form refuses it. */
int moat_prefix_parse(const char *s, struct moat_prefix *out);

/* moat_prefix_str - "192.0.2.0/24" / "2001:db8::/32" into buf (at least
 * MOAT_PREFIX_STRLEN bytes for any prefix; shorter is cut); returns buf. */
char *moat_prefix_str(const struct moat_prefix *p, char *buf, size_t bufsz);

/* moat_prefix_cmp - order of prefixes: family, address, plen (the
 * leading keys of moat_listing_cmp); <0, 0, >0. */
int moat_prefix_cmp(const struct moat_prefix *a, const struct moat_prefix *b);

/* moat_prefix_contains - is a (any plen) inside p? */
bool moat_prefix_contains(const struct moat_prefix *p, const struct moat_prefix *a);

/* moat_prefix_match - is the address addr of family fam (MOAT_AF_INET:
 * 4 bytes, MOAT_AF_INET6: 16) inside p? */
bool moat_prefix_match(const struct moat_prefix *p, uint8_t fam, const uint8_t *addr);

#endif /* MOAT_PREFIX_H */
