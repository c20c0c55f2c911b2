/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * authres.c - build the Authentication-Results header moat prepends for the
 * downstream (RFC 8601), and recognise one of moat's own authserv-id
 * arriving from outside (2.1 "Removing existing fields": a forged one would
 * tell the downstream moat checked what it did not).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "authres.h"

/* authres_is_ours - Authentication-Results: <id>[;/ space] ? */
int authres_is_ours(const char *h, size_t len, const char *id)
{
	static const char name[] = "Authentication-Results:";
	size_t nl = sizeof(name) - 1, i, idl = strlen(id);

	if (!idl || len < nl || strncasecmp(h, name, nl) != 0)
		return 0;
	for (i = nl; i < len && (h[i] == ' ' || h[i] == '\t'); i++)
		;
	if (len - i < idl || strncasecmp(h + i, id, idl) != 0)
		return 0;
	i += idl;
	return i == len || h[i] == ';' || h[i] == ' ' || h[i] == '\t' || h[i] == '/';
}

/* authres_value - keep what a value may hold; everything else becomes '?' */
void authres_value(char *out, size_t sz, const char *in)
{
	size_t o = 0;

	if (!sz)
		return;
	for (; in && *in && o + 1 < sz; in++) {
		unsigned char c = (unsigned char)*in;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			 strchr(".-_@+=/:", c);
		out[o++] = ok ? (char)c : '?';
	}
	out[o] = '\0';
}

/* comment - a reason as an RFC 5322 comment: no parentheses, backslashes
 * or control characters inside */
static void comment(char *out, size_t sz, const char *in)
{
	size_t o = 0;

	for (; in && *in && o + 1 < sz; in++) {
		unsigned char c = (unsigned char)*in;
		out[o++] = (c < ' ' || c >= 127 || c == '(' || c == ')' || c == '\\') ? ' ' : (char)c;
	}
	out[o] = '\0';
}

/* authres_build - "Authentication-Results: id;\r\n\tm=r (reason) props;..." */
size_t authres_build(char *buf, size_t sz, const char *id, const struct authres_item *it, int n)
{
	char idv[256], c[200], one[1024];
	int k = 0;
	size_t o;

	authres_value(idv, sizeof(idv), id);
	int w = snprintf(buf, sz, "Authentication-Results: %s;", idv);
	if (w < 0 || (size_t)w >= sz)
		return 0;
	o = (size_t)w;
	for (int i = 0; i < n; i++) {
		comment(c, sizeof(c), it[i].reason);
		int l = snprintf(one, sizeof(one), "%s\r\n\t%s=%s%s%s%s%s%s", k ? ";" : "", it[i].method, it[i].result,
				 c[0] ? " (" : "", c, c[0] ? ")" : "", it[i].props && it[i].props[0] ? " " : "",
				 it[i].props ? it[i].props : "");
		if (l < 0 || (size_t)l >= sizeof(one) || o + (size_t)l + 3 > sz)
			continue;
		memcpy(buf + o, one, (size_t)l);
		o += (size_t)l;
		k++;
	}
	if (!k) {
		if (o + 8 > sz)
			return 0;
		memcpy(buf + o, " none", 5);
		o += 5;
	}
	memcpy(buf + o, "\r\n", 3);
	return o + 2;
}
