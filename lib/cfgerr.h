/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgerr.h - the first error of a configuration file, as FILE:LINE: reason:
 * the one line moat-controld (control/config.c) and moat-dpdk
 * (dataplane/dpdk/dp_config.c) refuse to start with; and the value
 * parsers more than one configuration file shares.
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

/* moat_cfg_bool - a boolean value: yes/true/on/1 or no/false/off/0, any
 * case; *out 1 or 0.  Returns 0, or -1 (and *out untouched) for anything
 * else; the caller words the error (moat-controld and moat-smtpd each keep
 * their own). */
int moat_cfg_bool(const char *v, int *out);

#endif /* MOAT_CFGERR_H */
