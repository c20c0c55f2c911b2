/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fleet_rec.c - the fleet zone's TXT record: written by the publishing
 * appliance, read by every consumer to ignore expired and own records
 * (see fleet.h, docs/fleet.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_rec.h"

/* moat_fleet_code_name - the reason word of a return code */
const char *moat_fleet_code_name(uint32_t code)
{
	switch (code & 0xff) {
	case MOAT_FLEET_OP_DROP:
		return "operator-drop";
	case MOAT_FLEET_OP_TARPIT:
		return "operator-tarpit";
	case MOAT_FLEET_DNSBL:
		return "dnsbl";
	case MOAT_FLEET_PREGREET:
		return "pregreet";
	case MOAT_FLEET_PROTOCOL:
		return "protocol";
	case MOAT_FLEET_CONTENT:
		return "content";
	}
	return "?";
}

/* moat_fleet_id_valid - letters, digits, '-' and '_', 1..32 of them */
bool moat_fleet_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > MOAT_FLEET_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* moat_fleet_txt - "moat:<id> exp=<t> reason=<word>" */
int moat_fleet_txt(const char *id, time_t exp, uint32_t code, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "moat:%s exp=%" PRId64 " reason=%s", id, (int64_t)exp,
			 moat_fleet_code_name(code));

	return n < 0 || (size_t)n >= bufsz ? -ENOSPC : n;
}

/* moat_fleet_txt_parse - the id and exp of a fleet TXT (other TXT strings
 * at the same name may come first: the tag is searched for) */
int moat_fleet_txt_parse(const char *txt, char *id, size_t idsz, time_t *exp)
{
	const char *p = txt ? strstr(txt, "moat:") : NULL;
	size_t n = 0;

	if (!p || (p != txt && p[-1] != ' '))
		return -EINVAL;
	p += 5;
	while (p[n] && p[n] != ' ')
		n++;
	if (n == 0 || n >= idsz)
		return -EINVAL;
	memcpy(id, p, n);
	id[n] = 0;
	const char *e = strstr(p + n, " exp=");

	if (!e)
		return -EINVAL;
	char *end;
	long long v = strtoll(e + 5, &end, 10);

	if (end == e + 5 || (*end && *end != ' ') || v <= 0)
		return -EINVAL;
	*exp = (time_t)v;
	return 0;
}

/* moat_fleet_judge - keep, or why not */
enum moat_fleet_verdict moat_fleet_judge(const char *txt, const char *own_id, time_t now,
					 time_t *exp)
{
	char id[MOAT_FLEET_ID_MAX + 1];

	*exp = 0;
	if (moat_fleet_txt_parse(txt, id, sizeof(id), exp) < 0)
		return MOAT_FLEET_NOTAG;
	if (own_id && *own_id && strcmp(id, own_id) == 0)
		return MOAT_FLEET_OWN;
	if (*exp <= now)
		return MOAT_FLEET_EXPIRED;
	return MOAT_FLEET_KEEP;
}
