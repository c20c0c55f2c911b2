/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.c - levelled logging to stderr or syslog, and escaping of untrusted
 * text so one log line stays one line whatever a client sends.  With
 * log_set_json(1) each line is one JSON object instead: ts, prog, pid,
 * level, every key=value (or key="escaped value") field of the message as
 * a string member, and the words that are not fields joined in "msg".
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "moat";
static int log_syslog;
static enum log_level log_level = LOG_LVL_INFO;
static int log_json;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

/* log_init - set the program name and the sink */
void log_init(const char *progname, int use_syslog)
{
	const char *slash = strrchr(progname, '/');

	log_prog = slash ? slash + 1 : progname;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_json(int on)
{
	log_json = on;
}

/* log_parse_format - "text" or "json" to log_set_json's argument; -1 if unknown */
int log_parse_format(const char *s, int *json)
{
	if (strcmp(s, "text") && strcmp(s, "json"))
		return -1;
	*json = strcmp(s, "json") == 0;
	return 0;
}

/* field_len - length of a key=value field at p (key [a-z0-9_.-]+, value
 * up to the next space, or "..." with the quotes), 0 when p starts none;
 * *klen and the value's start and length are set */
static size_t field_len(const char *p, size_t *klen, const char **v, size_t *vlen)
{
	size_t k = 0;

	while ((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z') ||
	       (p[k] >= '0' && p[k] <= '9') || p[k] == '_' || p[k] == '.' || p[k] == '-')
		k++;
	if (k == 0 || p[k] != '=')
		return 0;
	*klen = k;
	if (p[k + 1] == '"') {
		const char *q = p + k + 2, *end = q;

		while (*end && *end != '"') /* log_escape leaves no '"' inside */
			end++;
		if (!*end)
			return 0;
		*v = q;
		*vlen = (size_t)(end - q);
		return (size_t)(end + 1 - p);
	}
	*v = p + k + 1;
	*vlen = strcspn(*v, " ");
	return k + 1 + *vlen;
}

/* json_line - the message as one JSON object (log_set_json) */
static void json_line(const char *ts, enum log_level lvl, const char *buf)
{
	struct json_object *o = json_object_new_object(), *msg = NULL;
	char rest[2048];
	size_t rl = 0;

	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "prog", json_object_new_string(log_prog));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "level", json_object_new_string(level_names[lvl]));
	for (const char *p = buf; *p;) {
		size_t klen, vlen, n;
		const char *v;

		if (*p == ' ') {
			p++;
			continue;
		}
		n = field_len(p, &klen, &v, &vlen);
		if (n && (p[n] == ' ' || !p[n])) {
			char key[64];

			snprintf(key, sizeof(key), "%.*s", (int)(klen < 63 ? klen : 63), p);
			json_object_object_add(o, key, json_object_new_string_len(v, (int)vlen));
			p += n;
			continue;
		}
		n = strcspn(p, " ");
		if (rl + n + 2 < sizeof(rest)) {
			if (rl)
				rest[rl++] = ' ';
			memcpy(rest + rl, p, n);
			rl += n;
		}
		p += n;
	}
	if (rl)
		msg = json_object_new_string_len(rest, (int)rl);
	if (msg)
		json_object_object_add(o, "msg", msg);
	fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level log_get_level(void)
{
	return log_level;
}

/* log_parse_level - "error|warning|info|debug" to a level; -1 if unknown */
int log_parse_level(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[2048];

	if (lvl > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s", buf);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char tbuf[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_json) {
		char stamp[48];

		snprintf(stamp, sizeof(stamp), "%s.%03ldZ", tbuf, ts.tv_nsec / 1000000);
		json_line(stamp, lvl, buf);
		return;
	}
	fprintf(stderr, "%s.%03ldZ %s[%d]: %s: %s\n", tbuf, ts.tv_nsec / 1000000,
		log_prog, (int)getpid(), level_names[lvl], buf);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

char *log_escape(char *dst, size_t dstsz, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstsz == 0)
		return dst;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		int plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '"';
		size_t need = plain ? 1 : 4;

		if (o + need + 4 > dstsz) { /* room for "..." and NUL */
			if (o + 4 <= dstsz) {
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}

/* log_mem - VmRSS/VmHWM at a stage of a big load, at debug level (the
 * memory budget of loading a zone; a no-op unless debugging) */
void log_mem(const char *zone, const char *stage)
{
	char line[128];
	long rss = -1, hwm = -1;
	FILE *f;

	if (log_get_level() < LOG_LVL_DEBUG || !(f = fopen("/proc/self/status", "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", &rss);
		sscanf(line, "VmHWM: %ld", &hwm);
	}
	fclose(f);
	log_debug("zone=%s mem stage=%s rss_mb=%ld hwm_mb=%ld", zone, stage, rss / 1024, hwm / 1024);
}
