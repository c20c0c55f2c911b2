/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * owner.h - DNSBL owner names <-> address prefixes.
 *
 * A DNSBL lists an address under its reversed octets (IPv4, RFC 5782 §2.1)
 * or its 32 reversed nibbles (IPv6, §2.4) below the zone apex; rbldnsd -d
 * dumps whole blocks as wildcards ("*.3.2.1" = 1.2.3.0/24, nibble-aligned
 * prefixes for IPv6).  Labels are classified one at a time into small codes
 * so the zone tree (zone.c) can key nodes without keeping label strings.
 */
#ifndef MOAT_OWNER_H
#define MOAT_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listing.h"
#include "prefix.h" /* moat_prefix_*: what owner names decode to */

/* Label codes: 0..255 a canonical decimal octet ("0".."255", no leading
 * zero; "0".."9" are also the nibbles 0..9), MOAT_LBL_HEX+10..15 the nibble
 * letters a..f (either case), MOAT_LBL_STAR the wildcard label "*",
 * MOAT_LBL_OTHER any other label (it can never be part of an address name). */
#define MOAT_LBL_HEX 0x100
#define MOAT_LBL_STAR 0x200
#define MOAT_LBL_OTHER 0x300

/* Depth limits: an IPv4 address name has 4 labels, an IPv6 one 32. */
#define MOAT_OWNER_V4_DEPTH 4
#define MOAT_OWNER_V6_DEPTH 32

/* moat_owner_label - classify one label (raw bytes, len 0..63). */
uint16_t moat_owner_label(const uint8_t *lab, size_t len);

/* moat_lbl_octet - octet value of a label code, -1 if not an octet. */
static inline int moat_lbl_octet(uint16_t c)
{
	return c <= 255 ? (int)c : -1;
}

/* moat_lbl_nibble - nibble value of a label code, -1 if not a nibble. */
static inline int moat_lbl_nibble(uint16_t c)
{
	if (c <= 9)
		return (int)c;
	if (c >= MOAT_LBL_HEX + 10 && c <= MOAT_LBL_HEX + 15)
		return (int)(c - MOAT_LBL_HEX);
	return -1;
}

/* moat_owner_prefix - the prefix named by label codes codes[0..n-1], given
 * from the apex down (codes[0] is the first octet / nibble), in family fam
 * (MOAT_AF_INET or MOAT_AF_INET6).  Returns 0, or -EINVAL when the labels
 * are not an address prefix of that family. */
int moat_owner_prefix(const uint16_t *codes, size_t n, uint8_t fam,
		      struct moat_prefix *out);

/* Result of decoding a relative owner name in presentation form. */
struct moat_owner {
	bool wildcard;          /* first label was "*" */
	bool v4, v6;            /* which of v4 / v6 below are valid */
	struct moat_prefix p4;  /* IPv4 reading (exact name: /32; wildcard: /8k) */
	struct moat_prefix p6;  /* IPv6 reading (exact: /128; wildcard: /4k) */
};

/* moat_owner_decode - decode a name relative to the zone apex, e.g.
 * "2.0.0.127", "*.3.2.1" or 32 dotted nibbles; a trailing dot is not
 * allowed (the name is relative).  An exact name decodes only at full depth
 * (4 octets / 32 nibbles); a wildcard names the block of its parent (a
 * wildcard "*.1.2" is both 2.1.0.0/16 and 2100::/8 in DNS, so both
 * readings are given).  Returns 0 when at least one reading is valid,
 * -EINVAL otherwise (the caller counts and logs it, never guesses). */
int moat_owner_decode(const char *rel, struct moat_owner *out);

/* moat_owner_encode - the relative owner name of an address (no wildcard):
 * "d.c.b.a" or 32 nibbles.  Returns the length written, or -ENOSPC. */
int moat_owner_encode(const struct moat_prefix *addr, char *buf, size_t bufsz);

#endif /* MOAT_OWNER_H */
