/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * auth.h - sender authentication at end of data: DKIM (dkim.c) as the
 * message streams in, DMARC (dmarc.c) at the final dot, and the result the
 * session turns into a refusal or an Authentication-Results header.
 *
 * The session feeds every content line; when the header block ends, the
 * DKIM keys and the DMARC records are asked on the worker's c-ares channel,
 * so the answers come while the body is still arriving.  At the final dot
 * auth_ready says whether they are all in; when not, the session waits
 * (W_AUTH) until session_auth_done or the sweep past auth_deadline.
 */
#ifndef MOAT_SMTP_AUTH_H
#define MOAT_SMTP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "authcfg.h"
#include "dkimv.h"

#define AUTH_MAX_Q 24           /* DNS questions per message: keys + 2 DMARC */
#define AUTH_MAX_SIGS 50        /* results kept (dkim_max_signatures <= 50) */
#define AUTH_MAX_HEADER (256 * 1024) /* header block DKIM reads */
#define AUTH_MAX_FIELDS 2000    /* header fields DKIM reads */
#define AUTH_BODY_BUF 16384     /* body bytes collected per canonicaliser call */

enum auth_qkind { AQ_KEY = 0, AQ_DMARC_FROM, AQ_DMARC_ORG };
enum auth_qstat { AQS_PENDING = 0, AQS_OK, AQS_NOTFOUND, AQS_TEMP, AQS_BAD, AQS_TOOBIG };

struct auth_msg;
struct session;

/* one TXT question; outlives its message while c-ares holds it */
struct auth_q {
	struct auth_msg *m;     /* NULL once the message is gone: the answer frees q */
	enum auth_qkind kind;
	enum auth_qstat status;
	char name[320];
	char *txt;              /* the record (AQS_OK) */
	int key_done;           /* key holds txt decoded (or why not) */
	struct dkv_key key;
};

/* one DKIM-Signature field being evaluated */
struct auth_dsig {
	struct dkv_sig p;
	int bhi;                /* its body hash in auth_msg.body (-1: none) */
	int hh_ok;
	unsigned char hh[32];   /* the header hash */
};

/* one evaluated DKIM signature */
struct auth_sig {
	char result[12];        /* RFC 8601: pass fail neutral policy temperror permerror */
	char reason[64];
	char d[256], s[64], b[12], a[16];
	char props[400];
};

struct auth_msg {
	struct session *s;
	int in_body;
	int dkim_dead;          /* DKIM gave up on the message: reason */
	const char *dead_reason;
	char *hb;               /* the header fields so far, back to back */
	size_t hl, hc, htotal;
	size_t fs;              /* where the field being collected starts in hb */
	size_t *foff, *flen;    /* the complete fields */
	int nf, fcap;
	int *sigf;              /* fields that are DKIM-Signatures (the first dkim_max_signatures) */
	int nsigf;
	struct auth_dsig *ds;   /* their evaluation, from the end of the header */
	int nds;
	struct dkv_body body;
	char *bb;               /* body lines not yet canonicalised */
	size_t bl;
	int n_sighdr;           /* DKIM-Signature fields seen */
	int n_ignored;          /* past dkim_max_signatures */
	int n_from;             /* From domains: 1, or 2 for several */
	int n_from_fields;      /* From header fields (RFC 5322: exactly one) */
	char from_domain[256];
	char org_domain[256];
	struct auth_q *q[AUTH_MAX_Q];
	int nq, pending;
	int waiting;            /* the session waits at the final dot */
	int64_t deadline;
	struct auth_sig sig[AUTH_MAX_SIGS];
	int nsig;
	char dkim_none[12];     /* the one dkim result when no signature was evaluated */
	char dmarc_result[12];  /* "" when DMARC was not evaluated */
	char dmarc_reason[96];
	char dmarc_props[300];
};

/* what end of data does with the message */
struct auth_verdict {
	enum auth_action action;
	char domain[256];       /* the RFC 5322 From domain the verdict names */
	char reason[32];        /* log/counter reason: dmarc, auth_temperror */
	char log[512];          /* key=value summary for the transaction's log line */
};

/* dkim.c */
/* auth_init - main thread, before workers: the DMARC library and the public
 * suffix list; 0, or -1 with a reason in err */
int auth_init(const struct smtpd_config *c, char *err, size_t errsz);
/* auth_thread_init - each worker: its key cache; 0 or -1 */
int auth_thread_init(void);
/* auth_thread_fini - each worker, when it stops (no session left) */
void auth_thread_fini(void);
/* auth_open - a message begins (DATA accepted); NULL on no memory */
struct auth_msg *auth_open(struct session *s);
/* auth_feed - one content line, dot-unstuffed, CRLF included */
void auth_feed(struct auth_msg *m, const char *p, size_t len);
/* auth_ready - the final dot: 1 when every answer is in, 0 when the
 * session must wait (session_auth_done follows, or auth_deadline passes) */
int auth_ready(struct auth_msg *m, int64_t now);
int64_t auth_deadline(const struct auth_msg *m);
/* auth_finish - DKIM results, DMARC, the verdict; after auth_ready */
void auth_finish(struct auth_msg *m, struct auth_verdict *v);
/* auth_items - the dkim and dmarc results for authres_build; count */
struct authres_item;
int auth_items(const struct auth_msg *m, struct authres_item *it, int max);
/* auth_close - release; questions in flight are left to c-ares */
void auth_close(struct auth_msg *m);
/* auth_txt_parse - the TXT record of a DNS answer: for DMARC the one record
 * starting "v=DMARC1" (none if several), for a key the first; AQS_OK with
 * *txt (malloc'd) and *ttl, AQS_NOTFOUND, or AQS_BAD */
enum auth_qstat auth_txt_parse(const unsigned char *abuf, int alen, enum auth_qkind kind, char **txt,
			       uint32_t *ttl);

/* dmarc.c */
int dmarc_init(const struct smtpd_config *c, char *err, size_t errsz);
/* dmarc_org_domain - the organizational domain (public suffix list) */
void dmarc_org_domain(const char *domain, char *out, size_t outsz);
/* dmarc_eval - DMARC over m's DKIM results and the session's SPF result;
 * fills v's dmarc item, action and domain */
void dmarc_eval(struct auth_msg *m, struct auth_verdict *v);

/* session.c */
/* session_auth_done - every DNS answer of the message is in */
void session_auth_done(struct session *s);

#endif /* MOAT_SMTP_AUTH_H */
