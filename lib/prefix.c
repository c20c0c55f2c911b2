/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * prefix.c - address prefixes as text and back (prefix.h).  One parser for
 * every place a person types a prefix (controld's zone data and control
 * socket, smtpd's configuration, the tools), so each accepts the same text
 * and refuses it with the same error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "prefix.h"

/* parse_len - decimal digits only (no sign, no blanks), at most max */
static int parse_len(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* moat_prefix_parse - "addr[/len]" to a prefix; see prefix.h for errors */
int moat_prefix_parse(const char *s, struct moat_prefix *out)
{
	char tmp[INET6_ADDRSTRLEN];
	const char *slash;
	size_t alen;
	unsigned plen, max;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if (inet_pton(AF_INET, tmp, out->addr) == 1) {
		out->family = MOAT_AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
		out->family = MOAT_AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	plen = max;
	if (slash && parse_len(slash + 1, max, &plen) < 0)
		goto bad;
	out->plen = (uint8_t)plen;
	for (unsigned b = plen; b < max; b++) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));

		if (out->addr[b / 8] & bit) {
			out->addr[b / 8] &= (uint8_t)~bit;
			r = -EDOM;
		}
	}
	return r;
bad:
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

/* moat_prefix_str - printable prefix */
char *moat_prefix_str(const struct moat_prefix *p, char *buf, size_t bufsz)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(p->family == MOAT_AF_INET ? AF_INET : AF_INET6, p->addr, a,
		  sizeof(a));
	snprintf(buf, bufsz, "%s/%u", a, p->plen);
	return buf;
}

/* moat_prefix_cmp - family, address, plen: the leading keys of
 * moat_listing_cmp */
int moat_prefix_cmp(const struct moat_prefix *a, const struct moat_prefix *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	int c = memcmp(a->addr, b->addr, 16);

	if (c)
		return c;
	return (int)a->plen - (int)b->plen;
}

/* moat_prefix_match - the first p->plen bits of addr are p's */
bool moat_prefix_match(const struct moat_prefix *p, uint8_t fam, const uint8_t *addr)
{
	if (p->family != fam)
		return false;
	unsigned full = p->plen / 8, rem = p->plen % 8;
	if (memcmp(p->addr, addr, full) != 0)
		return false;
	if (rem) {
		uint8_t m = (uint8_t)(0xff << (8 - rem));
		if ((p->addr[full] & m) != (addr[full] & m))
			return false;
	}
	return true;
}

/* moat_prefix_contains - a (any plen) within p */
bool moat_prefix_contains(const struct moat_prefix *p, const struct moat_prefix *a)
{
	return a->plen >= p->plen && moat_prefix_match(p, a->family, a->addr);
}
