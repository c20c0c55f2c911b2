/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.h - levelled, printf-checked logging shared by every moat program.
 *
 * Lines go to stderr (or syslog when enabled) as
 *   <program>[pid]: <level>: <message>
 * Messages about a session start with its 16-hex-digit id, then key=value
 * fields (see STYLE.md); log_escape() makes client data safe to print.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, int use_syslog);
void log_set_level(enum log_level lvl);
/* log_set_json - 1: every line one JSON object (ts prog pid level, the
 * message's key=value fields as members, other words in "msg"); 0: text.
 * log_parse_format - "text"/"json" into *json; -1 if neither. */
void log_set_json(int on);
int log_parse_format(const char *s, int *json);
enum log_level log_get_level(void);
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* log_fatal - for broken invariants and start-up errors only, never for
 * untrusted input (STYLE.md trap 7).  Exits 1. */
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                        \
	do {                                                  \
		if (log_get_level() >= LOG_LVL_DEBUG)         \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);  \
	} while (0)

/* log_escape - copy src (len bytes) into dst (size dstsz, NUL-terminated),
 * replacing CR, LF, other control bytes, '\\', '"' and bytes >= 0x7f with
 * \xHH escapes; truncates with "..." when dst is too small.  Returns dst. */
char *log_escape(char *dst, size_t dstsz, const char *src, size_t len);

/* log_mem - the process's VmRSS and VmHWM at a stage of a load of zone
 * ("-": none), as a debug line (nothing below debug level) */
void log_mem(const char *zone, const char *stage);

#endif /* MOAT_LOG_H */
