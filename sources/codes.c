/* SPDX-License-Identifier: BSD-2-Clause */
/* codes.c - error-code sets of DNSBL answers (codes.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codes.h"

/* moat_codes_default - the defaults of DESIGN.md */
void moat_codes_default(struct moat_codes *c)
{
	memset(c, 0, sizeof(*c));
	c->r[0].addr = 0x7fffff00u;
	c->r[0].mask = 0xffffff00u;
	c->r[1].addr = 0x7f000001u;
	c->r[1].mask = 0xffffffffu;
	c->n = 2;
}

/* one_entry - "a.b.c.d[/n]" with X wildcards into addr/mask */
static int one_entry(const char *s, size_t len, uint32_t *addr, uint32_t *mask)
{
	char buf[32];
	unsigned plen = 32;
	uint32_t a = 0, m = 0;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	char *sl = strchr(buf, '/');
	if (sl) {
		char *e;
		unsigned long v = strtoul(sl + 1, &e, 10);
		if (*e || e == sl + 1 || v > 32)
			return -EINVAL;
		plen = (unsigned)v;
		*sl = 0;
	}
	char *p = buf;
	for (int i = 0; i < 4; i++) {
		char *e = p;
		uint32_t o = 0, om = 0xff;
		if (*p == 'X' || *p == 'x') {
			om = 0;
			e = p + 1;
		} else {
			unsigned long v = strtoul(p, &e, 10);
			if (e == p || v > 255)
				return -EINVAL;
			o = (uint32_t)v;
		}
		a |= o << (24 - 8 * i);
		m |= om << (24 - 8 * i);
		if (i < 3 && *e != '.')
			return -EINVAL;
		if (i == 3 && *e)
			return -EINVAL;
		p = e + 1;
	}
	uint32_t pm = plen ? 0xffffffffu << (32 - plen) : 0;
	*mask = m & pm;
	*addr = a & *mask;
	return 0;
}

/* moat_codes_parse - a comma-separated list */
int moat_codes_parse(struct moat_codes *c, const char *list)
{
	const char *p = list;

	memset(c, 0, sizeof(*c));
	while (*p) {
		size_t n = strcspn(p, ",");
		while (n && (*p == ' ')) {
			p++;
			n--;
		}
		if (c->n == MOAT_CODES_MAX ||
		    one_entry(p, n, &c->r[c->n].addr, &c->r[c->n].mask))
			return -EINVAL;
		c->n++;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* moat_code_is_error - outside 127/8, or in the set */
bool moat_code_is_error(const struct moat_codes *c, uint32_t code)
{
	if ((code >> 24) != 127)
		return true;
	for (size_t i = 0; c && i < c->n; i++)
		if ((code & c->r[i].mask) == c->r[i].addr)
			return true;
	return false;
}
