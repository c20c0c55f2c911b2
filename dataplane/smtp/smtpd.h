/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smtpd.h - moat-smtpd's shared types: workers (one epoll loop per thread,
 * each with its own SO_REUSEPORT listener), sessions, the downstream relay
 * client, and the hooks between them.  Everything a session touches runs
 * on its worker's thread; only the SPF pool and the stats/report queue
 * cross threads, through the locked queues declared here.
 */
#ifndef MOAT_SMTPD_H
#define MOAT_SMTPD_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ares.h>
#include <openssl/ssl.h>

#include "config.h"
#include "filter.h"
#include "proto.h"

extern struct smtpd_config *g_cfg;

/* a client socket's send buffer (set on the listeners, inherited by every
 * accepted socket; the kernel doubles it) */
#define CLIENT_SNDBUF 4096
/* SO_RCVBUF of a session while its replies wait unread (the kernel doubles
 * it): the client's window closes, so its pipelined commands stop at the
 * appliance's door instead of filling a buffer that autotunes upwards */
#define UNREAD_RCVBUF 4096

enum ev_kind { EV_LISTEN = 1, EV_CLIENT, EV_RELAY, EV_WAKE, EV_ARES, EV_AV };

struct ev {             /* what epoll's data.ptr points at */
	enum ev_kind kind;
	int fd;
	void *ptr;
	uint32_t events;    /* current interest */
};

struct spf_job;
struct ctl_lookup;

struct worker {
	int id;
	int epfd;
	struct ev listen_ev[CFG_MAX_LISTEN];
	int n_listen;
	struct ev wake_ev;          /* eventfd: SPF completions */
	pthread_t thr;
	pthread_mutex_t cq_lock;
	struct spf_job *cq_head;    /* completed SPF jobs for this worker */
	struct ctl_lookup *lk_head; /* answered moat-controld lookups (report.c) */
	struct session *sessions;   /* all live sessions (timeout sweep) */
	struct session *zombies;    /* closed, freed after the event batch */
	ares_channel ares;
	struct ev ares_ev[16];
	int64_t now_ms;
	int64_t last_sweep;
	int64_t accept_paused_until; /* listeners out of epoll until then (EMFILE) */
	volatile int stop;
};

/* hold buffer: the rebuilt (dot-stuffed CRLF) message, memory then file */
struct hold {
	char *mem;
	size_t len, cap;
	int fd;             /* -1 while in memory */
	uint64_t total;     /* bytes held */
};

enum sess_state {
	S_CONNECT = 0,      /* greet delay / DNSBL pending, banner not sent */
	S_CMD,              /* reading commands */
	S_DATA,             /* reading message lines */
	S_TLS,              /* TLS handshake in progress */
	S_CLOSING,          /* flush output, then close */
};

enum sess_wait {        /* which asynchronous answer the session waits for */
	W_NONE = 0, W_DNSBL, W_SPF, W_RELAY_MAIL, W_RELAY_RCPT, W_RELAY_EOD,
	W_AUTH,             /* DKIM keys / DMARC records at the final dot (auth.h) */
	W_AV,               /* clamd's verdict (av.c) */
};

struct relay;
struct auth_msg;

struct session {
	struct ev ev;
	struct worker *w;
	struct session *next, *prev;
	uint64_t id;
	char sid[17];
	int family;
	uint8_t addr[16];
	char ip[64];
	int ip_held;            /* counted in the per-IP table */

	enum sess_state state;
	enum sess_wait wait;
	int dead;               /* closed; freed when no async work holds it */
	int refs;               /* async work (DNSBL queries, SPF job) in flight */
	int in_process;         /* inside process(): answers must not re-enter it */

	SSL *ssl;
	int tls;                /* TLS active */
	int ssl_want_write;

	char *ibuf;
	size_t ilen, icap;
	size_t iconsumed;       /* bytes of ibuf already handled in this pass */
	char *obuf;
	size_t olen, ocap;

	struct line_sm lsm;
	char *lbuf;
	size_t lbuf_cap;
	int discard_line;       /* line too long: skipping to its end */

	int64_t deadline;       /* command/data timeout */
	int64_t unread_since;   /* replies waiting unread past OBUF_HIGH since (0: not) */
	int rcvbuf_saved;       /* SO_RCVBUF before the unread clamp (0: not clamped) */
	int64_t close_by;       /* closing with output unsent: abort at this time */
	int64_t greet_at;       /* banner time (greet delay) */
	int64_t spf_deadline;
	int errors;
	int helo_seen, esmtp;
	char helo[256];

	/* DNSBL */
	int dnsbl_pending;
	double dnsbl_score;
	char dnsbl_zone[256];
	char dnsbl_code[20];
	int dnsbl_done;
	int ctl_pending;        /* a lookup at moat-controld is out */
	int ctl_verdict;        /* its answer: 0 none/pass, 1 allow, 2 drop/tarpit */
	int ctl_live;           /* 2 came from moat-controld's live zones only */
	const char *report_kind; /* a report waiting for that answer, or NULL */
	char report_why[96];

	/* transaction */
	int has_from;
	struct smtp_path from;
	char **rcpts;
	int nrcpt;
	char spf_result[16];
	char spf_comment[256];
	struct spf_job *spf_job;
	uint64_t msg_size;
	int size_exceeded, line_too_long, in_headers, skip_header, hold_err;
	struct hold hold;
	struct filter_msg *fm[CFG_MAX_FILTERS];
	int n_fm;
	struct auth_msg *auth;  /* DKIM/DMARC of the message (auth.h), NULL when off */
	char *eod_hdr;          /* the filters' added headers while end of data waits */
	char pending_rcpt[SMTP_ADDR_MAX + 1];

	struct relay *relay;
	struct av_scan *av;     /* clamd scan in flight (av.c) */
	uint64_t scan_ns;       /* time in the content filters (metrics) */
};

/* session.c */
void session_accept(struct worker *w, int lfd);
void session_accept_resume(struct worker *w);
void session_on_event(struct session *s, uint32_t events);
void session_sweep(struct worker *w);
void session_release(struct session *s);
void session_free_zombies(struct worker *w);
/* worker_pass - one turn of a worker's event loop: wait up to timeout_ms,
 * dispatch every event to its owner (listener, client, relay, wake-up,
 * resolver, clamd), free the sessions that ended; the events handled.
 * moat-smtpd's workers and the smtpd_session fuzz target both run it. */
int worker_pass(struct worker *w, int timeout_ms);
int session_shutdown_idle(struct worker *w);
void session_shutdown_all(struct worker *w);
/* session_relay_reply - the relay finished what the session waited for:
 * code is the downstream reply (0: unavailable, -1: timed out after the
 * whole message was sent), text its first line without the code */
void session_relay_reply(struct session *s, int code, const char *text);
void session_dnsbl_done(struct session *s);
void session_ctl_done(struct session *s, const char *action, int live_only);
/* session_report_verdict - the lookup answered (action, "" = none): send a
 * report that waited for it unless the answer is allow (also for a session
 * already closed) */
void session_report_verdict(struct session *s, const char *action);
void session_spf_done(struct session *s, struct spf_job *j);
/* session_count - sessions open in the process (all workers) */
int session_count(void);

/* relay.c */
enum relay_goal { RG_NONE = 0, RG_MAIL, RG_RCPT, RG_EOD, RG_RSET };
struct relay *relay_new(struct session *s);
void relay_close(struct relay *r);            /* session closed: drop the connection */
void relay_free(struct relay *r);
void relay_mail(struct relay *r);              /* open if needed, MAIL FROM */
void relay_rcpt(struct relay *r, const char *rcpt);
void relay_eod(struct relay *r, const char *headers, size_t hlen);
void relay_rset(struct relay *r);
void relay_on_event(struct relay *r, uint32_t events);
void relay_check_timeout(struct relay *r, int64_t now);
int relay_busy(const struct relay *r);

/* dnsbl.c */
int dns_set_server(ares_channel ch);       /* ask dns_server only */
int dnsbl_worker_init(struct worker *w);
void dnsbl_worker_fini(struct worker *w);
int dnsbl_start(struct session *s);       /* 0: queries sent; 1: nothing to do */
void dnsbl_on_event(struct worker *w, struct ev *e, uint32_t events);
void dnsbl_tick(struct worker *w);
/* dnsbl_reverse - "d.c.b.a" / nibbles for an address; 0 or -1 */
int dnsbl_reverse(int family, const uint8_t *addr, char *out, size_t outsz);
/* dnsbl_answer_counts - does an A answer count as a listing for zone z? */
int dnsbl_answer_counts(const struct smtpd_config *c, const struct smtpd_dnsbl_zone *z, const uint8_t a[4]);

/* spf.c */
struct spf_job {
	struct spf_job *next;
	struct session *s;
	struct worker *w;
	int orphan;             /* the session gave up on it */
	int family;
	uint8_t addr[16];
	char helo[256];
	char from[SMTP_ADDR_MAX + 1];
	int result;             /* SPF_result_t */
	char result_str[16];
	char comment[256];
	uint64_t id;            /* request id between engine and SPF worker */
	int64_t sent_ms;        /* when it went to the worker */
};
int spf_pool_start(int nthreads);
void spf_pool_stop(void);
int spf_submit(struct spf_job *j);
void spf_worker_drain(struct worker *w);
/* spf_worker_main - the SPF worker process (moat-smtpd --spf-worker FD) */
int spf_worker_main(int argc, char **argv);

/* tls.c */
int tls_init(const struct smtpd_config *c);
SSL_CTX *tls_ctx(void);

/* filter.c */
const struct filter_ops *filter_find(const char *name);
int filters_resolve(const struct smtpd_config *c, char *err, size_t errsz);
int filters_thread_init(void);
/* filters_reload - SIGHUP / "rules reload": filters re-read their rules */
void filters_reload(void);
extern const struct filter_ops *g_filters[CFG_MAX_FILTERS];
extern int g_n_filters;
/* filters_reload_rules - "moatctl rules reload": call each filter's reload hook */
int filters_reload_rules(int *reloaded, int *no_hook, char *err, size_t errsz);

/* metrics.c: Prometheus exposition (docs/smtpd.md "Metrics") */
int smtpd_metrics_start(const struct smtpd_config *c, char *err, size_t errsz);
void smtpd_metrics_update(void);
void smtpd_metrics_stop(void);

/* stats.c */
void stats_inc(const char *stage, const char *reason);
void stats_add(const char *name, uint64_t n);
int stats_format(char *buf, size_t sz, int json);
int stats_write_file(const char *path);
void stats_foreach(void (*fn)(const char *name, uint64_t v, void *arg), void *arg);
/* ip limits */
int iplimit_acquire(int family, const uint8_t *addr, int64_t now);  /* 0, -1 concurrency, -2 rate */
void iplimit_release(int family, const uint8_t *addr);
void iplimit_sweep(int64_t now);
/* recipient map */
int rcptmap_load(const char *path, char *err, size_t errsz);
int rcptmap_lookup(const char *addr);   /* 1 known, 0 unknown, -1 no map */

/* report.c: optional, non-blocking client of moat-controld
 * (docs/control-protocol.md): reports, relayed rules.reload / smtp.stats */
void report_init(const struct smtpd_config *c);
void report_listed(const char *ip, const char *zone, const char *code);
void report_refused(const char *ip, const char *kind, const char *reason);
/* report_lookup - worker: ask moat-controld's verdict on the session's
 * client; 1 when asked (session_ctl_done follows, exactly once), 0 when not */
int report_lookup(struct session *s);
void report_worker_drain(struct worker *w);
/* report_pollfds - fill up to 2 pollfds the main loop waits on; count */
int report_pollfds(struct pollfd *p);
int report_wait_ms(int max);
void report_tick(void);
void report_stop(void);
void report_fini(void);

#endif /* MOAT_SMTPD_H */
