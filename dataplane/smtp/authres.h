/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * authres.h - the Authentication-Results header (RFC 8601) moat-smtpd adds
 * for the downstream, and the check that removes one claiming moat's
 * authserv-id arriving from outside.  Pure: unit-tested under ASan.
 */
#ifndef MOAT_SMTP_AUTHRES_H
#define MOAT_SMTP_AUTHRES_H

#include <stddef.h>

/* one "method=result (reason) props" result */
struct authres_item {
	const char *method;  /* "spf", "dkim", "dmarc" */
	const char *result;  /* "pass", "fail", "none", ... */
	const char *reason;  /* comment text or NULL */
	const char *props;   /* "header.d=example.com header.s=sel" or NULL */
};

/* authres_is_ours - is the header field h[0..len) (first line, name
 * included) an Authentication-Results claiming authserv-id id? */
int authres_is_ours(const char *h, size_t len, const char *id);

/* authres_build - the whole header field with CRLFs, one result per
 * folded line; "none" when n is 0.  Results that would not fit in sz are
 * left out whole.  Returns bytes written (NUL not counted), 0 when not even
 * the header name and id fit. */
size_t authres_build(char *buf, size_t sz, const char *id, const struct authres_item *it, int n);

/* authres_value - a property value made safe for the header: characters
 * outside the RFC 8601 value set are replaced by '?', at most sz-1 bytes */
void authres_value(char *out, size_t sz, const char *in);

#endif /* MOAT_SMTP_AUTHRES_H */
