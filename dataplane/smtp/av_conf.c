/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * av_conf.c - the antivirus keys of moat-smtpd's configuration (the clamd_*
 * keys of docs/smtpd.md), read by config.c's loader.  Kept apart from
 * av.c so unit tests and moat-smtpd -t load them without the event loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config.h"

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
