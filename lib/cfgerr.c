/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgerr.c - the first configuration error as FILE:LINE: reason, and the
 * shared value parsers (cfgerr.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "cfgerr.h"

int moat_cfg_error(char *err, size_t errlen, int *failed, const char *file, int line,
		   const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*failed || !errlen)
		return 0;
	*failed = 1;
	n = snprintf(err, errlen, "%.200s:%d: ", file, line);
	if (n < 0 || (size_t)n >= errlen)
		return 0;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

int moat_cfg_bool(const char *v, int *out)
{
	static const char *const t[] = { "yes", "true", "on", "1" };
	static const char *const f[] = { "no", "false", "off", "0" };

	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, t[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, f[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}
