/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgerr.c - the first configuration error as FILE:LINE: reason (cfgerr.h).
 */
#include <stdarg.h>
#include <stdio.h>

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
