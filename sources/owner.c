/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * owner.c - DNSBL owner-name decoding (RFC 5782 §2.1, §2.4).  Decoding is
 * strict: a label that is not exactly what a resolver would put in a query
 * ("01", "0x1", "256") is not an address label, because no query for an
 * address would match it.  The prefix helpers the names decode to are
 * lib/prefix.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "owner.h"

/* moat_owner_label - classify one raw label into a label code */
uint16_t moat_owner_label(const uint8_t *lab, size_t len)
{
	if (len == 1) {
		uint8_t c = lab[0];

		if (c >= '0' && c <= '9')
			return (uint16_t)(c - '0');
		if (c >= 'a' && c <= 'f')
			return (uint16_t)(MOAT_LBL_HEX + 10 + (c - 'a'));
		if (c >= 'A' && c <= 'F')
			return (uint16_t)(MOAT_LBL_HEX + 10 + (c - 'A'));
		if (c == '*')
			return MOAT_LBL_STAR;
		return MOAT_LBL_OTHER;
	}
	if (len < 2 || len > 3 || lab[0] == '0')
		return MOAT_LBL_OTHER;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (lab[i] < '0' || lab[i] > '9')
			return MOAT_LBL_OTHER;
		v = v * 10 + (unsigned)(lab[i] - '0');
	}
	return v <= 255 ? (uint16_t)v : MOAT_LBL_OTHER;
}

/* moat_owner_prefix - label codes (apex first) to a prefix of family fam */
int moat_owner_prefix(const uint16_t *codes, size_t n, uint8_t fam,
		      struct moat_prefix *out)
{
	memset(out, 0, sizeof(*out));
	out->family = fam;
	if (fam == MOAT_AF_INET) {
		if (n > MOAT_OWNER_V4_DEPTH)
			return -EINVAL;
		for (size_t i = 0; i < n; i++) {
			int o = moat_lbl_octet(codes[i]);
			if (o < 0)
				return -EINVAL;
			out->addr[i] = (uint8_t)o;
		}
		out->plen = (uint8_t)(8 * n);
		return 0;
	}
	if (fam == MOAT_AF_INET6) {
		if (n > MOAT_OWNER_V6_DEPTH)
			return -EINVAL;
		for (size_t i = 0; i < n; i++) {
			int x = moat_lbl_nibble(codes[i]);
			if (x < 0)
				return -EINVAL;
			out->addr[i / 2] |= (uint8_t)(i % 2 ? x : x << 4);
		}
		out->plen = (uint8_t)(4 * n);
		return 0;
	}
	return -EINVAL;
}

/* moat_owner_decode - presentation-form relative name to v4/v6 readings */
int moat_owner_decode(const char *rel, struct moat_owner *out)
{
	uint16_t codes[MOAT_OWNER_V6_DEPTH + 1];
	size_t n = 0;
	const char *p = rel, *end = rel + strlen(rel);

	memset(out, 0, sizeof(*out));
	if (p == end)
		return -EINVAL;
	/* collect labels left to right, then reverse (apex first) */
	while (p <= end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		const char *le = dot ? dot : end;
		if (n == sizeof(codes) / sizeof(codes[0]))
			return -EINVAL;
		codes[n++] = moat_owner_label((const uint8_t *)p, (size_t)(le - p));
		if (le - p == 0)
			return -EINVAL;
		p = le + 1;
		if (!dot)
			break;
	}
	size_t first = 0;
	if (codes[0] == MOAT_LBL_STAR) {
		out->wildcard = true;
		first = 1;
	}
	size_t m = n - first;
	uint16_t rev[MOAT_OWNER_V6_DEPTH + 1];
	for (size_t i = 0; i < m; i++) {
		rev[i] = codes[n - 1 - i];
		if (rev[i] == MOAT_LBL_STAR || rev[i] == MOAT_LBL_OTHER)
			return -EINVAL;
	}
	if (out->wildcard ? m < MOAT_OWNER_V4_DEPTH : m == MOAT_OWNER_V4_DEPTH)
		out->v4 = moat_owner_prefix(rev, m, MOAT_AF_INET, &out->p4) == 0;
	if (out->wildcard ? m < MOAT_OWNER_V6_DEPTH : m == MOAT_OWNER_V6_DEPTH)
		out->v6 = moat_owner_prefix(rev, m, MOAT_AF_INET6, &out->p6) == 0;
	return out->v4 || out->v6 ? 0 : -EINVAL;
}

/* moat_owner_encode - address to its relative reversed owner name */
int moat_owner_encode(const struct moat_prefix *a, char *buf, size_t bufsz)
{
	int n;

	if (a->family == MOAT_AF_INET) {
		n = snprintf(buf, bufsz, "%u.%u.%u.%u", a->addr[3], a->addr[2],
			     a->addr[1], a->addr[0]);
	} else if (a->family == MOAT_AF_INET6) {
		static const char hex[] = "0123456789abcdef";
		if (bufsz < 64)
			return -ENOSPC;
		n = 0;
		for (int i = 31; i >= 0; i--) {
			uint8_t b = a->addr[i / 2];
			buf[n++] = hex[i % 2 ? b & 15 : b >> 4];
			buf[n++] = i ? '.' : '\0';
		}
		n--;
	} else {
		return -EINVAL;
	}
	return n < 0 || (size_t)n >= bufsz ? -ENOSPC : n;
}
