/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * av_proto.c - the pure parts of the antivirus check: its configuration
 * keys (the clamd_* keys of docs/smtpd.md, read by config.c's loader) and
 * the parsing of clamd's answers (a scan verdict, VERSION).  No I/O here:
 * unit tests drive it directly; av.c does the talking.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "config.h"

/* av_result_name - the log and counter name of a result */
const char *av_result_name(enum av_result r)
{
	switch (r) {
	case AV_CLEAN: return "clean";
	case AV_VIRUS: return "virus";
	case AV_UNAVAILABLE: return "unavailable";
	case AV_TIMEOUT: return "timeout";
	case AV_ERROR: return "error";
	}
	return "?";
}

/* av_config_defaults - every antivirus key's default (clamd off) */
void av_config_defaults(struct smtpd_av_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = AV_MODE_AUTO;
	c->timeout_ms = 30000;
	c->pass_unavailable = 0;
	c->db_max_age_h = 48;
	c->db_check_s = 600;
}

/* av_int - an integer in lo..hi; 0 or -1 with the reason */
static int av_int(const char *key, const char *val, long lo, long hi, int *out, char *err, size_t errsz)
{
	char *end;
	errno = 0;
	long x = strtol(val, &end, 10);
	if (errno || end == val || *end || x < lo || x > hi) {
		snprintf(err, errsz, "%s must be an integer in %ld..%ld", key, lo, hi);
		return -1;
	}
	*out = (int)x;
	return 0;
}

/* av_config_set - one key; 0 taken, -1 bad value (reason in err), 1 not ours */
int av_config_set(struct smtpd_av_config *c, const char *key, const char *val, char *err, size_t errsz)
{
	if (!strcmp(key, "clamd")) {
		const char *p = !strncmp(val, "unix:", 5) ? val + 5 : val;
		if (strlen(val) >= sizeof(c->clamd)) {
			snprintf(err, errsz, "clamd: value too long");
			return -1;
		}
		memset(&c->addr, 0, sizeof(c->addr));
		c->is_unix = 0;
		c->addr_len = 0;
		if (p[0] == '/') {
			struct sockaddr_un *un = (struct sockaddr_un *)&c->addr;
			if (strlen(p) >= sizeof(un->sun_path)) {
				snprintf(err, errsz, "clamd: socket path longer than %zu bytes", sizeof(un->sun_path) - 1);
				return -1;
			}
			un->sun_family = AF_UNIX;
			strcpy(un->sun_path, p);
			c->addr_len = sizeof(*un);
			c->is_unix = 1;
		} else if (val[0] && sockaddr_parse(val, 3310, &c->addr, &c->addr_len) != 0) {
			snprintf(err, errsz, "clamd: want a unix socket path or ip:port");
			return -1;
		}
		if (c->mode == AV_MODE_FILDES && val[0] && !c->is_unix) {
			snprintf(err, errsz, "clamd: clamd_mode = fildes needs a unix socket");
			return -1;
		}
		strcpy(c->clamd, val);
		return 0;
	}
	if (!strcmp(key, "clamd_mode")) {
		if (!strcmp(val, "auto"))
			c->mode = AV_MODE_AUTO;
		else if (!strcmp(val, "fildes"))
			c->mode = AV_MODE_FILDES;
		else if (!strcmp(val, "instream"))
			c->mode = AV_MODE_INSTREAM;
		else {
			snprintf(err, errsz, "clamd_mode must be auto, fildes or instream");
			return -1;
		}
		if (c->mode == AV_MODE_FILDES && c->clamd[0] && !c->is_unix) {
			snprintf(err, errsz, "clamd_mode = fildes needs a unix socket in clamd");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "clamd_timeout_ms"))
		return av_int(key, val, 100, 600000, &c->timeout_ms, err, errsz);
	if (!strcmp(key, "clamd_unavailable")) {
		if (strcmp(val, "tempfail") && strcmp(val, "pass")) {
			snprintf(err, errsz, "clamd_unavailable must be tempfail or pass");
			return -1;
		}
		c->pass_unavailable = !strcmp(val, "pass");
		return 0;
	}
	if (!strcmp(key, "clamd_db_max_age_h"))
		return av_int(key, val, 0, 100000, &c->db_max_age_h, err, errsz);
	if (!strcmp(key, "clamd_db_check_s"))
		return av_int(key, val, 1, 86400, &c->db_check_s, err, errsz);
	return 1;
}

/* av_parse_reply - one clamd scan answer, NUL or newline terminated
 * ("stream: OK", "fd[12]: Eicar-Signature FOUND", "... ERROR"): AV_CLEAN,
 * AV_VIRUS with the signature's name (printable, no spaces or quotes) in
 * name, or AV_ERROR with the answer (printable, no quotes) in name */
enum av_result av_parse_reply(const char *reply, size_t len, char *name, size_t namesz)
{
	size_t n = strnlen(reply, len), o = 0;
	const char *v = reply;

	while (n && (reply[n - 1] == '\n' || reply[n - 1] == '\r'))
		n--;
	const char *colon = memmem(reply, n, ": ", 2);
	if (colon)
		v = colon + 2;
	size_t vl = n - (size_t)(v - reply);
	enum av_result r = AV_ERROR;
	if (vl == 2 && !memcmp(v, "OK", 2)) {
		r = AV_CLEAN;
		vl = 0;
	} else if (vl > 6 && !memcmp(v + vl - 6, " FOUND", 6)) {
		r = AV_VIRUS;
		vl -= 6;
	} else {
		v = reply;
		vl = n;
	}
	for (size_t i = 0; i < vl && o + 1 < namesz; i++) {
		unsigned char ch = (unsigned char)v[i];
		/* a name has no spaces; an error text keeps them */
		int ok = (ch > 32 || (ch == 32 && r == AV_ERROR)) && ch < 127 && ch != '"' && ch != '\\';
		name[o++] = ok ? (char)ch : '_';
	}
	if (namesz)
		name[o] = '\0';
	if (r == AV_VIRUS && !o)
		r = AV_ERROR; /* " FOUND" without a name */
	return r;
}

/* av_parse_version - the database's build time from clamd's VERSION
 * answer ("ClamAV 1.4.6/27100/Thu Dec  3 09:12:00 2026", the date in
 * clamd's local time, ctime(3) format); 0 with *when, -1 when the answer
 * has no database date (clamd with local databases only) */
int av_parse_version(const char *v, time_t *when)
{
	struct tm tm;
	const char *slash = strchr(v, '/');
	const char *date = slash ? strchr(slash + 1, '/') : NULL;

	memset(&tm, 0, sizeof(tm));
	if (!date)
		return -1;
	const char *end = strptime(date + 1, "%a %b %d %H:%M:%S %Y", &tm);
	if (!end || (*end && *end != '\n'))
		return -1;
	tm.tm_isdst = -1;
	*when = mktime(&tm);
	return *when == (time_t)-1 ? -1 : 0;
}
