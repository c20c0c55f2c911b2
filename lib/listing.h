/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * listing.h - what every blocklist source contributes: a prefix, the DNSBL
 * return code it answers with, a TTL and the source it came from.
 *
 * Zone transfers, rbldnsd files, live lookups and operator entries all turn
 * their data into arrays of struct moat_listing; the verdict table
 * (lib/vtable.h) merges them by policy.  Within one source the most
 * specific prefix decides, and an entry with .exclude set carves its prefix
 * out of a less specific listing of the same source (rbldnsd "!" lines, the
 * names below a DNS wildcard).
 */
#ifndef MOAT_LISTING_H
#define MOAT_LISTING_H

#include <stdint.h>

#define MOAT_AF_INET 4
#define MOAT_AF_INET6 6

struct moat_prefix {
	uint8_t family;   /* MOAT_AF_INET or MOAT_AF_INET6 */
	uint8_t plen;     /* 0..32 or 0..128 */
	uint8_t pad[2];
	uint8_t addr[16]; /* network byte order; IPv4 in addr[0..3]; host bits zero */
};

struct moat_listing {
	struct moat_prefix pfx;
	uint32_t code;    /* A record answer, host byte order (127.0.0.2 = 0x7f000002);
			   * for operator entries: the enum moat_action */
	uint32_t ttl;     /* seconds; 0 = no expiry */
	uint16_t source;  /* source id, see lib/vtable.h */
	uint8_t exclude;  /* 1: this prefix is not listed by this source */
	uint8_t pad;
};

#endif /* MOAT_LISTING_H */
