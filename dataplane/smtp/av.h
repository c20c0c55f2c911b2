/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * av.h - the antivirus check at end of data: the held message handed to a
 * ClamAV daemon (clamd) on the session's worker loop, FILDES (the message's
 * descriptor passed over clamd's unix socket) when clamd is local, INSTREAM
 * otherwise; and the thread that watches the age of clamd's signature
 * database.  docs/smtpd.md "Antivirus".
 */
#ifndef MOAT_SMTP_AV_H
#define MOAT_SMTP_AV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

enum av_mode { AV_MODE_AUTO = 0, AV_MODE_FILDES, AV_MODE_INSTREAM };

/* the antivirus keys of moat-smtpd's configuration (av_proto.c) */
struct smtpd_av_config {
	char clamd[256];                /* "" off; "/path" unix socket; "host:port" TCP */
	int is_unix;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	enum av_mode mode;              /* auto: FILDES over a unix socket, INSTREAM over TCP */
	int timeout_ms;                 /* whole scan: connect, send, verdict */
	int pass_unavailable;           /* 0: 451 when clamd cannot answer; 1: pass with a header */
	int db_max_age_h;               /* alarm past this age, 0 = no alarm */
	int db_check_s;                 /* how often clamd's VERSION is asked */
};

/* av_config_defaults - every antivirus key's default (clamd off) */
void av_config_defaults(struct smtpd_av_config *c);
/* av_config_set - one key; 0 taken, -1 bad value (reason in err), 1 not
 * an antivirus key */
int av_config_set(struct smtpd_av_config *c, const char *key, const char *val, char *err, size_t errsz);

/* what clamd said about one message */
enum av_result {
	AV_CLEAN = 0,
	AV_VIRUS,           /* the signature's name comes with it */
	AV_UNAVAILABLE,     /* no connection to clamd */
	AV_TIMEOUT,         /* no verdict before clamd_timeout_ms */
	AV_ERROR,           /* clamd answered an error (size limit, I/O, ...) */
};
const char *av_result_name(enum av_result r);
/* av_parse_reply - one clamd scan answer ("stream: OK", "fd[12]: NAME
 * FOUND", "... ERROR"): AV_CLEAN, AV_VIRUS with the signature's name
 * (printable, no spaces or quotes) in name, or AV_ERROR with the answer
 * (printable, no quotes) in name */
enum av_result av_parse_reply(const char *reply, size_t len, char *name, size_t namesz);
/* av_parse_version - the database's build time from clamd's VERSION
 * answer ("ClamAV 1.4.6/27100/Thu Dec  3 09:12:00 2026"); 0 with *when,
 * -1 when it has no database date */
int av_parse_version(const char *v, time_t *when);

struct session;
struct av_scan;

/* av_start - scan s's held message; hdr/hlen are moat's headers for the
 * relay, kept and handed back.  0: the scan runs, session_av_done follows
 * exactly once (possibly before av_start returns); 1: antivirus is off */
int av_start(struct session *s, const char *hdr, size_t hlen);
/* av_on_event - readiness on a scan's clamd connection (EV_AV) */
void av_on_event(struct av_scan *a, uint32_t events);
/* av_check_timeout - the session sweep: end a scan past its deadline */
void av_check_timeout(struct session *s, int64_t now);
/* av_cancel - the session closes: drop its scan, no answer follows */
void av_cancel(struct session *s);
/* session_av_done - session.c: clamd's verdict (virus: its name, else "");
 * hdr/hlen as given to av_start, valid during the call */
void session_av_done(struct session *s, enum av_result r, const char *virus, const char *hdr, size_t hlen);

/* av_monitor_start - the thread asking clamd's VERSION every db_check_s
 * and raising the database-age alarm; 0 or -errno (nothing to do: 0) */
int av_monitor_start(const struct smtpd_av_config *c);
void av_monitor_stop(void);
/* av_db_age_s - age of clamd's signature database at the last check,
 * -1 unknown; av_db_stale - 1 while the alarm is raised */
int64_t av_db_age_s(void);
int av_db_stale(void);

#endif /* MOAT_SMTP_AV_H */
