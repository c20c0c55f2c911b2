/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgerr.h - the first error of a configuration file, as FILE:LINE: reason:
 * the one line moat-controld (control/config.c) and moat-dpdk
 * (dataplane/dpdk/dp_config.c) refuse to start with.
 */
#ifndef MOAT_CFGERR_H
#define MOAT_CFGERR_H

#include <stddef.h>

/* moat_cfg_error - unless *failed, write "FILE:LINE: " and the message
 * into err (errlen bytes, truncated to fit) and set *failed: later errors
 * are the first one's consequences.  Returns 0, inih's "stop" from a
 * handler. */
int moat_cfg_error(char *err, size_t errlen, int *failed, const char *file, int line,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif /* MOAT_CFGERR_H */
